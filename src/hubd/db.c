/*
 * db.c: hubd's libpq layer (see db.h).  The only file that calls libpq for
 * requests; the long-poll listener (longpoll.c) keeps its own connection.
 *
 * Each worker thread owns one connection, created on first use and kept in
 * thread-local storage; a pthread key destructor closes it when the thread
 * ends.  The connection stays in pipeline mode: a request's statements
 * (API-key check with SET LOCAL ROLE, then the work, then e.g. the revision
 * just written) are sent back to back and run as one implicit transaction
 * that ends at the pipeline's sync, so a failing statement rolls the whole
 * request back and nothing after it runs.
 */
#include "db.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* A lost connection is retried at most this often per thread. */
#define DB_RECONNECT_MS 250

typedef struct DbStatementDef
{
	const char *name;
	const char *sql;
} DbStatementDef;

/*
 * Every statement hubd runs.  All values arrive as parameters: nothing from
 * a request is ever spliced into SQL text.
 */
static const DbStatementDef db_statements[STMT_COUNT] = {
	[STMT_AUTH] = {"hubd_auth",
		"SELECT k.name, set_config('role', k.role, true),"
		" set_config('central_hub.actor', k.name, true)"
	" FROM hub.api_key_authenticate($1) k"},
	[STMT_NO_AUTH] = {"hubd_no_auth",
	"SELECT set_config('central_hub.actor', $1, true)"},
	[STMT_AUTH_CONFIG_GET] = {"hubd_auth_config_get",
		"SELECT c.config_json::text, c.version,"
		" (extract(epoch FROM c.updated_at) * 1000)::int8, k.name,"
		" set_config('role', k.role, true),"
		" set_config('central_hub.actor', k.name, true)"
		" FROM hub.api_key_authenticate($1) k"
	" LEFT JOIN hub.service_configs c ON c.service_name = $2"},
	[STMT_CONFIG_GET] = {"hubd_config_get",
		"SELECT config_json::text, version,"
		" (extract(epoch FROM updated_at) * 1000)::int8"
	" FROM hub.service_configs WHERE service_name = $1"},
	[STMT_CONFIG_PATCH] = {"hubd_config_patch",
		"SELECT hub.patch_config(service_name => $1, patch => $2::jsonb,"
		" version => $3, reason => $4, expected_version => $5)"},
	[STMT_CONFIG_PUT] = {"hubd_config_put",
		"SELECT hub.put_config(service_name => $1, config => $2::jsonb,"
		" version => $3, reason => $4, expected_version => $5)"},
	[STMT_CONFIG_DELETE] = {"hubd_config_delete",
		"SELECT hub.delete_config(service_name => $1, reason => $2,"
	" expected_version => $3)"},
	[STMT_CONFIG_ROLLBACK] = {"hubd_config_rollback",
		"SELECT hub.rollback_config(service_name => $1,"
		" target_version => $2::jsonb ->> 'version',"
	" expected_version => $3)"},
	[STMT_CONFIG_LAST_CHANGE] = {"hubd_config_last_change",
		"SELECT id, previous_version,"
		" xmin::text::int8 = pg_current_xact_id()::text::int8 % 4294967296,"
		" action"
		" FROM hub.config_audit_log WHERE service_name = $1"
	" ORDER BY id DESC LIMIT 1"},
	[STMT_CONFIG_HISTORY] = {"hubd_config_history",
		"SELECT h.revision, h.version, h.previous_version, h.action,"
		" h.changed_by, (extract(epoch FROM h.changed_at) * 1000)::int8,"
		" h.change_reason, h.config::text,"
		" (SELECT count(*) FROM hub.config_audit_log l"
		"  WHERE l.service_name = $1)"
	" FROM hub.get_config_history($1, $2::int) h"},
	[STMT_STATUS] = {"hubd_status",
		"SELECT (SELECT count(*) FROM hub.outbox),"
		" (SELECT count(*) FROM hub.outbox WHERE notified_at IS NULL),"
		" (SELECT coalesce(extract(epoch FROM now() - min(queued_at)), 0)"
		"  FROM hub.outbox),"
	" (SELECT count(*) FROM hub.service_configs)"},
	[STMT_INSTANCES_BY_STATUS] = {"hubd_instances_by_status",
		"SELECT status, count(*),"
		" (SELECT count(DISTINCT service_name) FROM hub.service_instances)"
	" FROM hub.service_instances GROUP BY status"},
	[STMT_REGISTER] = {"hubd_register",
		"SELECT hub.register_service("
		" service_name => coalesce(b ->> 'service_name', b ->> 'name'),"
		" host => b ->> 'host', port => (b ->> 'port')::int,"
		" health_endpoint => coalesce(b ->> 'health_endpoint', '/health'),"
		" metadata => coalesce(b -> 'metadata', '{}'::jsonb),"
		" instance_id => coalesce(b ->> 'instance_id',"
		"                         b -> 'metadata' ->> 'instance_id'),"
		" ttl_seconds => (b ->> 'ttl_seconds')::int,"
		" protocol => coalesce(b ->> 'protocol', 'http')),"
		" coalesce(b ->> 'service_name', b ->> 'name')"
	" FROM (SELECT $1::jsonb AS b) s"},
	[STMT_DEREGISTER] = {"hubd_deregister",
	"SELECT hub.deregister_service(service_name => $1, instance_id => $2)"},
	[STMT_HEARTBEAT] = {"hubd_heartbeat",
	"SELECT hub.heartbeat(service_name => $1, instance_id => $2)"},
	[STMT_DISCOVER] = {"hubd_discover",
		"SELECT d.instance_id, d.url, d.status, d.metadata::text"
	" FROM hub.discover($1) d"},
	[STMT_DISCOVER_ALL] = {"hubd_discover_all",
		"SELECT s.service_name, d.instance_id, d.url, d.status,"
		" d.metadata::text"
		" FROM (SELECT DISTINCT service_name FROM hub.service_instances) s,"
		" LATERAL hub.discover(s.service_name) d"
	" ORDER BY s.service_name"},
	[STMT_HEALTH_SUMMARY] = {"hubd_health_summary",
	"SELECT hub.health_summary()::text"},
};

typedef struct DbConn
{
	PGconn	   *conn;
	bool		prepared[STMT_COUNT];	/* false: the schema lacks it */
	struct timespec last_attempt;
	bool		used;			/* has served a request since it connected */
} DbConn;

static const char *db_conninfo;
static pthread_key_t db_conn_key;
static unsigned long db_connects;
static unsigned long db_connect_failures;

static void
db_conn_destroy(void *arg)
{
	DbConn	   *c = arg;

	if (c->conn)
		PQfinish(c->conn);
	free(c);
}

void
db_setup(const char *conninfo)
{
	db_conninfo = conninfo;
	pthread_key_create(&db_conn_key, db_conn_destroy);
}

unsigned long
db_connects_total(void)
{
	return __atomic_load_n(&db_connects, __ATOMIC_RELAXED);
}

unsigned long
db_connect_failures_total(void)
{
	return __atomic_load_n(&db_connect_failures, __ATOMIC_RELAXED);
}

static long
db_ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

/*
 * Opens the thread's connection and prepares every statement.  A statement
 * the schema cannot prepare (e.g. the registry is not installed) is marked
 * missing; requests that need it then get 501, the others work.
 */
static bool
db_connect(DbConn *c)
{
	const char *const keys[] = {"application_name", "connect_timeout", "dbname", NULL};
	const char *const values[] = {"hubd", "5", db_conninfo, NULL};

	clock_gettime(CLOCK_MONOTONIC, &c->last_attempt);
	c->used = false;
	c->conn = PQconnectdbParams(keys, values, 1);
	if (PQstatus(c->conn) != CONNECTION_OK)
	{
		__atomic_add_fetch(&db_connect_failures, 1, __ATOMIC_RELAXED);
		hubd_log(LOG_WARNING, "database connection failed: %s",
				 PQerrorMessage(c->conn));
		PQfinish(c->conn);
		c->conn = NULL;
		return false;
	}
	for (int i = 0; i < STMT_COUNT; i++)
	{
		PGresult   *res = PQprepare(c->conn, db_statements[i].name,
									db_statements[i].sql, 0, NULL);

		c->prepared[i] = PQresultStatus(res) == PGRES_COMMAND_OK;
		if (!c->prepared[i])
			hubd_log(LOG_DEBUG, "statement %s not available: %s",
					 db_statements[i].name, PQresultErrorMessage(res));
		PQclear(res);
	}
	if (PQstatus(c->conn) != CONNECTION_OK || !PQenterPipelineMode(c->conn))
	{
		__atomic_add_fetch(&db_connect_failures, 1, __ATOMIC_RELAXED);
		PQfinish(c->conn);
		c->conn = NULL;
		return false;
	}
	__atomic_add_fetch(&db_connects, 1, __ATOMIC_RELAXED);
	return true;
}

static DbConn *
db_thread_conn(void)
{
	DbConn	   *c = pthread_getspecific(db_conn_key);

	if (c == NULL)
	{
		c = calloc(1, sizeof(DbConn));
		if (c == NULL)
			return NULL;
		pthread_setspecific(db_conn_key, c);
	}
	if (c->conn != NULL && PQstatus(c->conn) != CONNECTION_OK)
	{
		PQfinish(c->conn);
		c->conn = NULL;
	}
	if (c->conn == NULL)
	{
		if (c->last_attempt.tv_sec != 0 &&
			db_ms_since(&c->last_attempt) < DB_RECONNECT_MS)
			return NULL;
		if (!db_connect(c))
			return NULL;
	}
	return c;
}

/* Connection-level failures: the request gets 503 and the thread reconnects. */
static bool
db_sqlstate_is_connection_loss(const char *sqlstate)
{
	return sqlstate[0] == '\0' ||
		strncmp(sqlstate, "08", 2) == 0 ||
		strcmp(sqlstate, "57P01") == 0 ||	/* admin_shutdown */
		strcmp(sqlstate, "57P02") == 0 ||	/* crash_shutdown */
		strcmp(sqlstate, "57P03") == 0;		/* cannot_connect_now */
}

static void
db_drop(DbConn *c, DbOutcome *out)
{
	out->unavailable = true;
	PQfinish(c->conn);
	c->conn = NULL;
	c->last_attempt.tv_sec = 0;	/* the next request may reconnect at once */
}

static void
db_record_failure(DbOutcome *out, int call, const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (out->failed_call >= 0)
		return;
	out->failed_call = call;
	snprintf(out->sqlstate, sizeof(out->sqlstate), "%s", state ? state : "");
	snprintf(out->message, sizeof(out->message), "%s",
			 msg ? msg : PQresultErrorMessage(res));
}

/*
 * One attempt at running calls; *reused tells whether the connection had
 * served requests before (a server restart shows only when it is used).
 */
static bool
db_execute_once(const DbCall *calls, int ncalls, DbOutcome *out, bool *reused)
{
	DbConn	   *c;
	PGresult   *res;

	memset(out, 0, sizeof(*out));
	out->failed_call = -1;
	out->ncalls = ncalls;
	*reused = false;

	c = db_thread_conn();
	if (c == NULL)
	{
		out->unavailable = true;
		snprintf(out->message, sizeof(out->message), "database unavailable");
		return false;
	}
	*reused = c->used;
	c->used = true;
	for (int i = 0; i < ncalls; i++)
	{
		if (!c->prepared[calls[i].stmt])
		{
			out->failed_call = i;
			snprintf(out->sqlstate, sizeof(out->sqlstate), "0A000");
			snprintf(out->message, sizeof(out->message),
					 "this database's central_hub has no %s",
					 db_statements[calls[i].stmt].name);
			return false;
		}
	}
	for (int i = 0; i < ncalls; i++)
	{
		if (!PQsendQueryPrepared(c->conn, db_statements[calls[i].stmt].name,
								 calls[i].nparams, calls[i].params,
								 NULL, NULL, 0))
		{
			hubd_log(LOG_WARNING, "database send failed: %s",
					 PQerrorMessage(c->conn));
			db_drop(c, out);
			return false;
		}
	}
	if (!PQpipelineSync(c->conn))
	{
		db_drop(c, out);
		return false;
	}

	for (int i = 0; i < ncalls; i++)
	{
		res = PQgetResult(c->conn);
		if (res == NULL)
		{
			db_drop(c, out);
			return false;
		}
		switch (PQresultStatus(res))
		{
			case PGRES_TUPLES_OK:
			case PGRES_COMMAND_OK:
				out->results[i] = res;
				break;
			case PGRES_FATAL_ERROR:
				db_record_failure(out, i, res);
				PQclear(res);
				break;
			default:			/* PGRES_PIPELINE_ABORTED */
				PQclear(res);
				break;
		}
		/* each statement's results end with NULL */
		while ((res = PQgetResult(c->conn)) != NULL)
		{
			if (PQresultStatus(res) == PGRES_FATAL_ERROR)
				db_record_failure(out, i, res);
			PQclear(res);
			if (PQstatus(c->conn) != CONNECTION_OK)
				break;
		}
		if (PQstatus(c->conn) != CONNECTION_OK)
		{
			db_drop(c, out);
			return false;
		}
	}
	res = PQgetResult(c->conn);
	if (res == NULL || PQresultStatus(res) != PGRES_PIPELINE_SYNC)
	{
		if (res)
			PQclear(res);
		db_drop(c, out);
		return false;
	}
	PQclear(res);

	if (out->failed_call >= 0 && db_sqlstate_is_connection_loss(out->sqlstate))
	{
		db_drop(c, out);
		return false;
	}
	return out->failed_call < 0;
}

/*
 * Run calls in one pipeline on this thread's connection.  A connection that
 * turns out to be dead when it is reused (the database restarted while it was
 * idle) is replaced and the calls are sent once more; the hub's writes are
 * safe to repeat (a repeated change is a no-op), and a pipeline is one
 * transaction, so a lost one left nothing behind.
 */
bool
db_execute(const DbCall *calls, int ncalls, DbOutcome *out)
{
	bool		reused;

	if (db_execute_once(calls, ncalls, out, &reused) || !out->unavailable ||
		!reused)
		return out->failed_call < 0 && !out->unavailable;
	db_outcome_clear(out);
	return db_execute_once(calls, ncalls, out, &reused);
}

void
db_outcome_clear(DbOutcome *out)
{
	for (int i = 0; i < out->ncalls && i < DB_MAX_CALLS; i++)
	{
		if (out->results[i])
			PQclear(out->results[i]);
		out->results[i] = NULL;
	}
}

int
db_ntuples(const DbOutcome *out, int call)
{
	if (call < 0 || call >= out->ncalls || out->results[call] == NULL)
		return 0;
	return PQntuples(out->results[call]);
}

const char *
db_value(const DbOutcome *out, int call, int row, int col)
{
	const PGresult *res;

	if (call < 0 || call >= out->ncalls || (res = out->results[call]) == NULL ||
		row >= PQntuples(res) || col >= PQnfields(res) ||
		PQgetisnull(res, row, col))
		return NULL;
	return PQgetvalue(res, row, col);
}
