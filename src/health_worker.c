/*-------------------------------------------------------------------------
 * health_worker.c
 *	  The health background worker: every central_hub.health_interval it
 *	  checks the polled instances of hub.service_instances concurrently and
 *	  records their status, and it expires heartbeat (TTL) instances.
 *
 * One cycle (drawn in src/README.health_worker.md):
 *	1. read the polled instances in a short transaction, commit; slowest
 *	   first (new ones, then by last latency), so that the timeouts of
 *	   hanging endpoints run alongside the others' checks, not after them;
 *	2. check them all with http_probe_run (no transaction open: the network
 *	   is slow and hostile), the latch in the wait set;
 *	3. write the whole cycle in one transaction: every instance's counters
 *	   and status, TTL expiry, one hub.health_events row and one hub.outbox
 *	   row per status transition (the relay worker turns those into NOTIFY
 *	   hub_health and NATS health.<service>), central_hub.deregister_after.
 * An ERROR in a cycle is logged and the cycle retried at the next
 * interval; the worker itself only ends on SIGTERM or postmaster death.
 *
 * Also here: the worker's settings (GUCs), its figures in shared memory
 * and hub.health_worker_stats() that shows them.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "central_hub.h"
#include "hub_spi.h"
#include "health_check.h"
#include "health_worker.h"
#include "http_probe.h"
#include "outbox.h"

PG_FUNCTION_INFO_V1(hub_health_worker_stats);

#define HEALTH_ERROR_MAX	500		/* bytes of last_error kept */

/* Settings (all reloadable with SIGHUP). */
static int	health_interval_ms = 10000;
static int	health_timeout_ms = 2000;
static int	health_concurrency = 64;
static int	health_unhealthy_threshold = 3;
static int	health_healthy_threshold = 2;
static char *health_allowed_hosts = NULL;
static int	health_deregister_after_s = 0;

/* The worker's figures, in shared memory for hub.health_worker_stats(). */
typedef struct HealthShared
{
	slock_t		mutex;
	int			pid;			/* 0 when not running */
	int64		cycles;
	TimestampTz last_cycle_start;
	double		last_cycle_ms;
	int			last_checks;
	int			last_failures;
	int			last_transitions;
	int64		total_checks;
	int64		total_failures;
	int64		failed_cycles;
} HealthShared;

static HealthShared *health_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* A polled instance in the current cycle: as read, then as checked. */
typedef struct HealthTarget
{
	char	   *service;
	char	   *instance;
	char	   *host;
	int32		port;
	char	   *protocol;
	char	   *endpoint;
	const char *status;			/* read, then the new one */
	const char *old_status;
	int32		failures;
	int32		successes;
	bool		checked;
	HealthVerdict verdict;
	double		latency_ms;
	TimestampTz checked_at;
	char	   *error;
} HealthTarget;

/* One status transition to record. */
typedef struct HealthTransition
{
	char	   *service;
	char	   *instance;
	const char *previous;
	const char *status;
	char	   *error;
} HealthTransition;

typedef struct HealthCycle
{
	HealthTarget *targets;
	int			ntargets;
	int			nfailures;
	HealthTransition *transitions;
	int			ntransitions;
	int			maxtransitions;
} HealthCycle;

/* A kept SPI plan, prepared on first use. */
static HubPlan plan_extension = {
	"SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'central_hub'",
	0, {InvalidOid}
};
static HubPlan plan_read = {
	"SELECT service_name, instance_id, host, port, protocol, health_endpoint,"
	" status, consecutive_failures, consecutive_successes"
	" FROM hub.service_instances WHERE ttl_seconds IS NULL"
	" ORDER BY last_latency_ms DESC NULLS FIRST",
	0, {InvalidOid}
};
static HubPlan plan_write_polled = {
	"UPDATE hub.service_instances si SET"
	" status = r.status,"
	" status_since = CASE WHEN si.status IS DISTINCT FROM r.status"
	"   THEN r.checked_at ELSE si.status_since END,"
	" last_check_at = r.checked_at, last_latency_ms = r.latency_ms,"
	" consecutive_failures = r.failures, consecutive_successes = r.successes,"
	" last_error = r.error"
	" FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
	"   WITH ORDINALITY AS r(service_name, instance_id, host, port, protocol,"
	"   health_endpoint, status, checked_at, latency_ms, failures, successes,"
	"   error, ord)"
	" WHERE si.service_name = r.service_name AND si.instance_id = r.instance_id"
	"   AND si.host = r.host AND si.port = r.port AND si.protocol = r.protocol"
	"   AND si.health_endpoint = r.health_endpoint AND si.ttl_seconds IS NULL"
	" RETURNING r.ord",
	12, {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID, TEXTARRAYOID,
		TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, FLOAT8ARRAYOID,
	INT4ARRAYOID, INT4ARRAYOID, TEXTARRAYOID}
};
static HubPlan plan_write_ttl = {
	"UPDATE hub.service_instances si SET"
	" status = n.new_status,"
	" status_since = CASE WHEN n.old_status <> n.new_status THEN now()"
	"   ELSE si.status_since END,"
	" last_check_at = now(),"
	" last_error = CASE WHEN n.new_status = 'unhealthy'"
	"   THEN 'no heartbeat within ' || si.ttl_seconds || ' s' END,"
	" consecutive_failures = CASE WHEN n.new_status = 'unhealthy'"
	"   THEN least(si.consecutive_failures, 2147483646) + 1 ELSE 0 END,"
	" consecutive_successes = CASE WHEN n.new_status = 'healthy'"
	"   THEN least(si.consecutive_successes, 2147483646) + 1 ELSE 0 END"
	" FROM (SELECT service_name, instance_id, status AS old_status,"
	"   CASE WHEN last_heartbeat >= now() - make_interval(secs => ttl_seconds)"
	"     THEN 'healthy' ELSE 'unhealthy' END AS new_status"
	"   FROM hub.service_instances WHERE ttl_seconds IS NOT NULL FOR UPDATE) n"
	" WHERE si.service_name = n.service_name AND si.instance_id = n.instance_id"
	" RETURNING si.service_name, si.instance_id, n.old_status, n.new_status,"
	"   si.last_error",
	0, {InvalidOid}
};
static HubPlan plan_events = {
	"WITH t AS (SELECT * FROM unnest($1, $2, $3, $4, $5) WITH ORDINALITY"
	"   AS t(service_name, instance_id, previous_status, status, error, ord)),"
	" ev AS (INSERT INTO hub.health_events (service_name, instance_id,"
	"   previous_status, status, service_status, error)"
	"   SELECT t.service_name, t.instance_id, t.previous_status, t.status,"
	"     coalesce(hs.service_status, 'unknown'), t.error"
	"   FROM t LEFT JOIN hub.health_status hs ON hs.service_name = t.service_name"
	"   ORDER BY t.ord RETURNING id, service_name)"
	" INSERT INTO hub.outbox (topic, service_name, ref_id)"
	" SELECT 'health', service_name, id FROM ev ORDER BY id",
	5, {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID}
};
static HubPlan plan_deregister = {
	"DELETE FROM hub.service_instances"
	" WHERE status = 'unhealthy' AND status_since < now() - make_interval(secs => $1)"
	" RETURNING service_name, instance_id",
	1, {FLOAT8OID}
};

static MemoryContext health_cycle_cxt = NULL;

/*
 * Settings, shared memory and the worker's registration.
 */

static bool
health_check_allowed_hosts(char **newval, void **extra, GucSource source)
{
	char		errbuf[256];

	if (!http_probe_allowed_hosts_valid(*newval, errbuf, sizeof(errbuf)))
	{
		GUC_check_errdetail("%s", errbuf);
		return false;
	}
	return true;
}

static void
health_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(HealthShared)));
}

static void
health_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	health_shared = ShmemInitStruct("central_hub health worker",
									sizeof(HealthShared), &found);
	if (!found)
	{
		memset(health_shared, 0, sizeof(HealthShared));
		SpinLockInit(&health_shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
health_worker_init(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("central_hub.health_interval",
							"Time between the starts of two health check cycles.",
							NULL, &health_interval_ms, 10000, 10, 86400000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("central_hub.health_timeout",
							"Longest a health request may take (connect and answer).",
							NULL, &health_timeout_ms, 2000, 10, 600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("central_hub.health_concurrency",
							"Health requests in flight at once.",
							NULL, &health_concurrency, 64, 1, 4096,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("central_hub.health_unhealthy_threshold",
							"Failed checks in a row that make an instance unhealthy.",
							NULL, &health_unhealthy_threshold, 3, 1, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("central_hub.health_healthy_threshold",
							"Passing checks in a row that make an instance healthy.",
							NULL, &health_healthy_threshold, 2, 1, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("central_hub.health_allowed_hosts",
							   "Where health requests may connect: comma-separated CIDR blocks, IP addresses, host names and .domain suffixes; empty allows any.",
							   "Addresses are checked after name resolution, before connecting.",
							   &health_allowed_hosts, "",
							   PGC_SIGHUP, 0, health_check_allowed_hosts, NULL, NULL);
	DefineCustomIntVariable("central_hub.deregister_after",
							"Removes instances unhealthy for longer than this; 0 keeps them.",
							NULL, &health_deregister_after_s, 0, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = health_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = health_shmem_startup;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "central_hub");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "health_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "central_hub health worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "central_hub health worker");
	RegisterBackgroundWorker(&worker);
}

/*
 * SPI helpers.
 */


static void
health_begin(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
health_commit(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* Text column of the current SPI result, copied into the cycle context. */
static char *
health_text(HeapTuple tuple, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);
	char	   *s;
	MemoryContext old;

	if (isnull)
		return NULL;
	old = MemoryContextSwitchTo(health_cycle_cxt);
	s = TextDatumGetCString(d);
	MemoryContextSwitchTo(old);
	return s;
}

static int32
health_int4(HeapTuple tuple, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

/* The status names as constants, so that they outlive the transaction. */
static const char *
health_status_constant(const char *s)
{
	static const char *const names[] = {"unknown", "healthy", "degraded", "unhealthy"};

	for (int i = 0; i < lengthof(names); i++)
		if (s != NULL && strcmp(s, names[i]) == 0)
			return names[i];
	return names[0];
}

/*
 * Phase 1: read the polled instances (false when the extension is not
 * created in this database: nothing to do).
 */
static bool
health_read_targets(HealthCycle *cycle)
{
	bool		installed;

	health_begin("health: reading instances");
	hub_plan_run(&plan_extension, NULL, NULL, true);
	installed = SPI_processed == 1;
	if (installed)
	{
		hub_plan_run(&plan_read, NULL, NULL, true);
		cycle->ntargets = (int) SPI_processed;
		cycle->targets = MemoryContextAllocZero(health_cycle_cxt,
												sizeof(HealthTarget) * Max(cycle->ntargets, 1));
		for (int i = 0; i < cycle->ntargets; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			HealthTarget *t = &cycle->targets[i];

			t->service = health_text(tup, desc, 1);
			t->instance = health_text(tup, desc, 2);
			t->host = health_text(tup, desc, 3);
			t->port = health_int4(tup, desc, 4);
			t->protocol = health_text(tup, desc, 5);
			t->endpoint = health_text(tup, desc, 6);
			t->status = health_status_constant(health_text(tup, desc, 7));
			t->old_status = t->status;
			t->failures = health_int4(tup, desc, 8);
			t->successes = health_int4(tup, desc, 9);
		}
	}
	health_commit();
	return installed;
}

static void
health_add_transition(HealthCycle *cycle, char *service, char *instance,
					  const char *previous, const char *status, char *error)
{
	HealthTransition *tr;

	if (cycle->ntransitions == cycle->maxtransitions)
	{
		int			n = Max(16, cycle->maxtransitions * 2);

		if (cycle->transitions == NULL)
			cycle->transitions = MemoryContextAlloc(health_cycle_cxt,
													sizeof(HealthTransition) * n);
		else
			cycle->transitions = repalloc(cycle->transitions,
										  sizeof(HealthTransition) * n);
		cycle->maxtransitions = n;
	}
	tr = &cycle->transitions[cycle->ntransitions++];
	tr->service = service;
	tr->instance = instance;
	tr->previous = previous;
	tr->status = status;
	tr->error = error;
}

/*
 * Called by http_probe_run as each check ends (in the cycle context, never
 * from within libcurl): classify and move the thresholds.
 */
static void
health_probe_done(int index, const HttpProbeResult *r, void *arg)
{
	HealthCycle *cycle = (HealthCycle *) arg;
	HealthTarget *t = &cycle->targets[index];
	char	   *reason = NULL;

	if (r->outcome == HTTP_PROBE_RESPONSE)
		t->verdict = health_classify_response(r->http_status, r->body, r->body_len, &reason);
	else
	{
		t->verdict = HEALTH_FAIL;
		reason = pstrdup(r->error ? r->error : "request failed");
	}
	/* reasons quote libcurl and servers: keep them short, printable ASCII */
	if (reason != NULL)
	{
		if (strlen(reason) > HEALTH_ERROR_MAX)
			reason[HEALTH_ERROR_MAX] = '\0';
		for (unsigned char *p = (unsigned char *) reason; *p; p++)
			if (*p < 0x20 || *p > 0x7e)
				*p = '?';
	}

	t->checked = true;
	t->error = reason;
	t->latency_ms = r->latency_ms;
	t->checked_at = GetCurrentTimestamp();
	t->status = health_next_status(t->old_status, t->verdict, &t->failures, &t->successes,
								   health_unhealthy_threshold, health_healthy_threshold);
	if (t->verdict == HEALTH_FAIL)
		cycle->nfailures++;
}

/* Phase 2: check every polled instance, concurrently. */
static void
health_check_targets(HealthCycle *cycle)
{
	HttpProbeRequest *requests;

	if (cycle->ntargets == 0)
		return;
	requests = palloc(sizeof(HttpProbeRequest) * cycle->ntargets);
	for (int i = 0; i < cycle->ntargets; i++)
	{
		HealthTarget *t = &cycle->targets[i];
		bool		v6 = strchr(t->host, ':') != NULL;

		requests[i].url = psprintf("%s://%s%s%s:%d%s", t->protocol, v6 ? "[" : "",
								   t->host, v6 ? "]" : "", t->port, t->endpoint);
		requests[i].host = t->host;
		requests[i].https = strcmp(t->protocol, "https") == 0;
	}
	pgstat_report_activity(STATE_RUNNING, "health: checking instances");
	http_probe_run(requests, cycle->ntargets, health_concurrency, health_timeout_ms,
				   health_allowed_hosts, health_probe_done, cycle);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* A one-dimensional array Datum of n elements (nulls may be NULL). */
static Datum
health_array(Datum *elems, bool *nulls, int n, Oid elemtype)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs,
											  elemtype, typlen, typbyval, typalign));
}

/* Phase 3a: write every checked instance's result in one statement. */
static void
health_write_polled(HealthCycle *cycle)
{
	int			n = 0;
	Datum	   *cols[12];
	bool	   *errnulls;
	Datum		args[12];
	static const Oid elemtypes[12] = {TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID,
		TEXTOID, TEXTOID, TIMESTAMPTZOID, FLOAT8OID, INT4OID, INT4OID, TEXTOID};
	int		   *index_of;

	for (int c = 0; c < 12; c++)
		cols[c] = palloc(sizeof(Datum) * Max(cycle->ntargets, 1));
	errnulls = palloc(sizeof(bool) * Max(cycle->ntargets, 1));
	index_of = palloc(sizeof(int) * Max(cycle->ntargets, 1));

	for (int i = 0; i < cycle->ntargets; i++)
	{
		HealthTarget *t = &cycle->targets[i];

		if (!t->checked)
			continue;
		cols[0][n] = CStringGetTextDatum(t->service);
		cols[1][n] = CStringGetTextDatum(t->instance);
		cols[2][n] = CStringGetTextDatum(t->host);
		cols[3][n] = Int32GetDatum(t->port);
		cols[4][n] = CStringGetTextDatum(t->protocol);
		cols[5][n] = CStringGetTextDatum(t->endpoint);
		cols[6][n] = CStringGetTextDatum(t->status);
		cols[7][n] = TimestampTzGetDatum(t->checked_at);
		cols[8][n] = Float8GetDatum(t->latency_ms);
		cols[9][n] = Int32GetDatum(t->failures);
		cols[10][n] = Int32GetDatum(t->successes);
		cols[11][n] = t->error ? CStringGetTextDatum(t->error) : (Datum) 0;
		errnulls[n] = t->error == NULL;
		index_of[n] = i;
		n++;
	}
	if (n == 0)
		return;

	for (int c = 0; c < 12; c++)
		args[c] = health_array(cols[c], c == 11 ? errnulls : NULL, n, elemtypes[c]);
	hub_plan_run(&plan_write_polled, args, NULL, false);

	/* a transition counts only where the row was still there to update */
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int64		ord = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r],
													  SPI_tuptable->tupdesc, 1, &isnull));
		HealthTarget *t;

		if (isnull || ord < 1 || ord > n)
			continue;
		t = &cycle->targets[index_of[ord - 1]];
		if (strcmp(t->status, t->old_status) != 0)
			health_add_transition(cycle, t->service, t->instance, t->old_status,
								  t->status, t->error);
	}
}

/* Phase 3b: heartbeat (TTL) instances are healthy while their TTL runs. */
static void
health_write_ttl(HealthCycle *cycle)
{
	hub_plan_run(&plan_write_ttl, NULL, NULL, false);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *previous = health_text(tup, desc, 3);
		char	   *status = health_text(tup, desc, 4);

		if (previous != NULL && status != NULL && strcmp(previous, status) != 0)
			health_add_transition(cycle, health_text(tup, desc, 1),
								  health_text(tup, desc, 2),
								  health_status_constant(previous),
								  health_status_constant(status),
								  health_text(tup, desc, 5));
	}
}

/* Phase 3c: one health_events row and one outbox row per transition. */
static void
health_write_events(HealthCycle *cycle)
{
	int			n = cycle->ntransitions;
	Datum	   *cols[5];
	bool	   *errnulls;
	Datum		args[5];

	if (n == 0)
		return;
	for (int c = 0; c < 5; c++)
		cols[c] = palloc(sizeof(Datum) * n);
	errnulls = palloc(sizeof(bool) * n);
	for (int i = 0; i < n; i++)
	{
		HealthTransition *tr = &cycle->transitions[i];

		cols[0][i] = CStringGetTextDatum(tr->service);
		cols[1][i] = CStringGetTextDatum(tr->instance);
		cols[2][i] = CStringGetTextDatum(tr->previous);
		cols[3][i] = CStringGetTextDatum(tr->status);
		cols[4][i] = tr->error ? CStringGetTextDatum(tr->error) : (Datum) 0;
		errnulls[i] = tr->error == NULL;
	}
	for (int c = 0; c < 5; c++)
		args[c] = health_array(cols[c], c == 4 ? errnulls : NULL, n, TEXTOID);
	hub_plan_run(&plan_events, args, NULL, false);
	if (SPI_processed != (uint64) n)
		elog(ERROR, "health worker queued %lu outbox rows for %d transitions",
			 (unsigned long) SPI_processed, n);
	outbox_wake_relay_at_commit();

	for (int i = 0; i < n; i++)
	{
		HealthTransition *tr = &cycle->transitions[i];

		ereport(LOG,
				(errmsg("central_hub health: instance \"%s\" of service \"%s\" is now %s (was %s)",
						tr->instance, tr->service, tr->status, tr->previous),
				 tr->error ? errdetail("%s", tr->error) : 0));
	}
}

/* Phase 3d: central_hub.deregister_after. */
static void
health_deregister_stale(void)
{
	Datum		args[1];

	if (health_deregister_after_s <= 0)
		return;
	args[0] = Float8GetDatum((double) health_deregister_after_s);
	hub_plan_run(&plan_deregister, args, NULL, false);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		ereport(LOG,
				(errmsg("central_hub health: deregistered instance \"%s\" of service \"%s\", unhealthy for more than %d s",
						health_text(tup, desc, 2), health_text(tup, desc, 1),
						health_deregister_after_s)));
	}
}

static void
health_publish_figures(TimestampTz start, const HealthCycle *cycle, bool failed)
{
	TimestampTz end = GetCurrentTimestamp();

	if (health_shared == NULL)
		return;
	SpinLockAcquire(&health_shared->mutex);
	if (failed)
		health_shared->failed_cycles++;
	else
	{
		health_shared->cycles++;
		health_shared->last_cycle_start = start;
		health_shared->last_cycle_ms = (double) (end - start) / 1000.0;
		health_shared->last_checks = cycle->ntargets;
		health_shared->last_failures = cycle->nfailures;
		health_shared->last_transitions = cycle->ntransitions;
		health_shared->total_checks += cycle->ntargets;
		health_shared->total_failures += cycle->nfailures;
	}
	SpinLockRelease(&health_shared->mutex);
}

/* One whole cycle; an ERROR propagates to health_run_cycle_guarded. */
static void
health_run_cycle(TimestampTz start)
{
	HealthCycle cycle;

	memset(&cycle, 0, sizeof(cycle));
	MemoryContextSwitchTo(health_cycle_cxt);

	if (!health_read_targets(&cycle))
		return;
	MemoryContextSwitchTo(health_cycle_cxt);
	health_check_targets(&cycle);

	health_begin("health: writing results");
	health_write_polled(&cycle);
	health_write_ttl(&cycle);
	health_write_events(&cycle);
	health_deregister_stale();
	health_commit();
	MemoryContextSwitchTo(health_cycle_cxt);

	health_publish_figures(start, &cycle, false);
}

/*
 * Run a cycle; an ERROR is logged, its transaction rolled back, and the
 * worker goes on with the next cycle.
 */
static void
health_run_cycle_guarded(TimestampTz start)
{
	PG_TRY();
	{
		health_run_cycle(start);
	}
	PG_CATCH();
	{
		HealthCycle none;

		MemoryContextSwitchTo(TopMemoryContext);
		EmitErrorReport();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
		memset(&none, 0, sizeof(none));
		health_publish_figures(start, &none, true);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(TopMemoryContext);
}

static void
health_reload_if_pending(void)
{
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

static void
health_on_exit(int code, Datum arg)
{
	http_probe_shutdown();
	if (health_shared != NULL)
	{
		SpinLockAcquire(&health_shared->mutex);
		health_shared->pid = 0;
		SpinLockRelease(&health_shared->mutex);
	}
}

/*
 * Sleep until health_interval after `start` has passed, serving SIGHUP (a
 * new interval applies at once) and SIGTERM.
 */
static void
health_sleep_after(TimestampTz start)
{
	for (;;)
	{
		TimestampTz until = TimestampTzPlusMilliseconds(start, health_interval_ms);
		long		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until);

		if (remaining <= 0)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 remaining, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		health_reload_if_pending();
	}
}

/*
 * Entry point of the health worker.
 */
void
health_worker_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(hub_worker_database, NULL, 0);
	before_shmem_exit(health_on_exit, (Datum) 0);

	if (health_shared != NULL)
	{
		SpinLockAcquire(&health_shared->mutex);
		health_shared->pid = MyProcPid;
		SpinLockRelease(&health_shared->mutex);
	}
	health_cycle_cxt = AllocSetContextCreate(TopMemoryContext, "central_hub health cycle",
											 ALLOCSET_DEFAULT_SIZES);
	ereport(LOG,
			(errmsg("central_hub health worker started on database \"%s\"",
					hub_worker_database)));

	for (;;)
	{
		TimestampTz start;

		CHECK_FOR_INTERRUPTS();
		health_reload_if_pending();

		start = GetCurrentTimestamp();
		if (!RecoveryInProgress())
			health_run_cycle_guarded(start);
		MemoryContextReset(health_cycle_cxt);
		health_sleep_after(start);
	}
}

/*
 * hub.health_worker_stats(): the worker's figures.
 */
Datum
hub_health_worker_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[10];
	bool		nulls[10];
	HealthShared copy;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "hub.health_worker_stats must return a record");
	desc = BlessTupleDesc(desc);

	memset(&copy, 0, sizeof(copy));
	if (health_shared != NULL)
	{
		SpinLockAcquire(&health_shared->mutex);
		copy = *health_shared;
		SpinLockRelease(&health_shared->mutex);
	}
	memset(nulls, 0, sizeof(nulls));
	values[0] = Int32GetDatum(copy.pid);
	nulls[0] = copy.pid == 0;
	values[1] = Int64GetDatum(copy.cycles);
	values[2] = TimestampTzGetDatum(copy.last_cycle_start);
	nulls[2] = copy.cycles == 0;
	values[3] = Float8GetDatum(copy.last_cycle_ms);
	nulls[3] = copy.cycles == 0;
	values[4] = Int32GetDatum(copy.last_checks);
	values[5] = Int32GetDatum(copy.last_failures);
	values[6] = Int32GetDatum(copy.last_transitions);
	values[7] = Int64GetDatum(copy.total_checks);
	values[8] = Int64GetDatum(copy.total_failures);
	values[9] = Int64GetDatum(copy.failed_cycles);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
