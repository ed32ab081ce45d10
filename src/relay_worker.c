/*-------------------------------------------------------------------------
 * relay_worker.c
 *	  The relay background worker: every committed outbox row becomes a
 *	  NOTIFY (hub_config / hub_health) and, when NATS is configured, one NATS
 *	  message, delivered at least once and in queue order.
 *
 * Writers queue a row in hub.outbox and set our latch when they commit
 * (outbox.c).  Each cycle reads one bounded batch in a short transaction,
 * sends its NOTIFYs in that same transaction (one notifying commit per
 * batch), publishes the batch to NATS outside any transaction, waits for
 * NATS to confirm it, and only then deletes the rows.  What was notified is
 * tracked apart from what NATS confirmed (hub.outbox.notified_at), so psql
 * listeners hear about every change promptly even while NATS is down, and
 * a restart after a crash re-sends (duplicates, detectable by revision)
 * rather than loses.  See src/README.relay_worker.md for the loop drawn.
 *
 * The worker runs only on a primary; it is started after recovery ends, so
 * a promoted standby relays what the old primary had not sent.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "central_hub.h"
#include "nats_client.h"
#include "outbox.h"
#include "relay_worker.h"

PG_FUNCTION_INFO_V1(hub_relay_worker_status);

/* Async_Notify refuses payloads of this length or more (async.c). */
#define RELAY_NOTIFY_PAYLOAD_MAX	(BLCKSZ - NAMEDATALEN - 128)
/* Room kept for NATS headers (Nats-Msg-Id) below the server's max payload. */
#define RELAY_HEADER_ROOM			512
/* Pause after a failed cycle, and while NOTIFY is refused (queue full). */
#define RELAY_ERROR_PAUSE_MS		1000
/* First pause after NATS failed to confirm a batch; doubles per failure. */
#define RELAY_NATS_BACKOFF_FIRST_MS	250

/*
 * Under load, a cycle is started at most this often after one that relayed
 * several changes: a wake-up within it waits the rest, so that a cycle's fixed
 * costs (two short transactions, a NOTIFY commit, a NATS round trip) are
 * shared by the commits of about a millisecond instead of paid per commit.
 */
#define RELAY_COALESCE_US			1000

/* Largest central_hub.relay_batch_size */
#define RELAY_BATCH_MAX				100000

/* GUCs */
static char *relay_nats_url = NULL;
static char *relay_subject_prefix = NULL;
static char *relay_nats_stream = NULL;
static int	relay_batch_size = 1000;
static int	relay_interval_ms = 5000;
static int	relay_confirm_timeout_ms = 2000;

/* Worker state (only in the relay process) */
static MemoryContext relay_cycle_ctx = NULL;
static NatsClient *relay_client = NULL;
static char *relay_client_url = NULL;	/* settings relay_client was built for */
static char *relay_client_stream = NULL;
static TimestampTz relay_nats_retry_at = 0; /* backoff after a failed batch */
static int	relay_nats_backoff_ms = 0;
static TimestampTz relay_notify_resume_at = 0;	/* NOTIFY paused until */
static bool relay_committing_notify = false;
static bool relay_extension_seen = false;	/* skip the catalog check */
static int	relay_cycle_rows = 0;	/* rows the last cycle handled */
static TimestampTz relay_busy_cycle_end = 0;	/* last cycle under load */

/*
 * Where batch reads start.  The outbox is a queue: its primary key keeps the
 * entries of deleted rows until vacuum, and a read from the start steps over
 * every one of them (after a burst, hundreds of thousands: tens of ms a
 * cycle).  The relay reads from relay_scan_from instead, below which no row
 * can still turn up.  Ids are not committed in order, so it moves only by a
 * proven horizon: a cycle notes the last outbox id handed out so far
 * (relay_horizon_id), then the next xid to be assigned (relay_horizon_xid).
 * Every transaction that can hold an id up to relay_horizon_id had its xid
 * before that (outbox_queue takes one before the id), so once a later
 * snapshot's xmin has reached relay_horizon_xid they have all ended and
 * their rows are visible: a cycle that handled every row it read moves the
 * start past relay_horizon_id (or past its last row, if the batch was
 * full).  Errors, settings changes and a sweep every
 * central_hub.relay_interval start again from 0.
 */
static int64 relay_scan_from = 0;
static int64 relay_horizon_id = 0;
static TransactionId relay_horizon_xid = InvalidTransactionId;
static TimestampTz relay_next_sweep = 0;

/*
 * Rows NATS confirmed whose deletion rides on the next transaction: when
 * more changes are already waiting, the DELETE joins the next batch's read
 * instead of costing a transaction of its own.
 */
static int64 *relay_confirmed_ids = NULL;
static int	relay_confirmed_count = 0;

/* Prepared plans, kept across cycles */
static SPIPlanPtr relay_plan_batch = NULL;
static SPIPlanPtr relay_plan_notify_pending = NULL;
static SPIPlanPtr relay_plan_notify_clear = NULL;
static SPIPlanPtr relay_plan_delete = NULL;
static SPIPlanPtr relay_plan_set_notified = NULL;
static SPIPlanPtr relay_plan_last_id = NULL;

/*
 * An outbox row o with the audit row (a) or the health event (h) it refers
 * to.  The joins are LATERAL subqueries kept apart by OFFSET 0, so that
 * each row is one primary-key probe: the generic plan of "LIMIT $1" expects
 * a tenth of the outbox and would otherwise hash-join a full scan of the
 * audit log, whose cost grows with the whole history.
 */
#define RELAY_JOINS \
	" LEFT JOIN LATERAL (SELECT * FROM hub.config_audit_log a" \
	"   WHERE o.topic = 'config' AND a.id = o.ref_id OFFSET 0) a ON true" \
	" LEFT JOIN LATERAL (SELECT * FROM hub.health_events h" \
	"   WHERE o.topic = 'health' AND h.id = o.ref_id OFFSET 0) h ON true"

/*
 * The columns every batch query returns, numbered as relay_copy_rows and
 * relay_queue_notifies read them.  The NOTIFY payloads and NATS bodies are
 * written in C from these (relay_json_*): json_build_object looks up the
 * type of every argument on every call, which was a quarter of the relay's
 * time.
 */
#define RELAY_COLUMNS \
	" o.id, o.notified_at IS NOT NULL," \
	" CASE o.topic WHEN 'config' THEN a.id IS NOT NULL ELSE h.id IS NOT NULL END," \
	" o.topic, o.ref_id, coalesce(a.service_name, h.service_name)," \
	" a.version, a.previous_version, a.action, coalesce(a.changed_at, h.at)," \
	" a.changed_by, h.instance_id, h.previous_status, h.status," \
	" h.service_status, h.error, a.config_json"

enum
{
	RELAY_COL_ID = 1,
	RELAY_COL_WAS_NOTIFIED,
	RELAY_COL_FOUND,
	RELAY_COL_TOPIC,
	RELAY_COL_REF_ID,
	RELAY_COL_SERVICE,
	RELAY_COL_VERSION,
	RELAY_COL_PREVIOUS_VERSION,
	RELAY_COL_ACTION,
	RELAY_COL_AT,
	RELAY_COL_CHANGED_BY,
	RELAY_COL_INSTANCE,
	RELAY_COL_PREVIOUS_STATUS,
	RELAY_COL_STATUS,
	RELAY_COL_SERVICE_STATUS,
	RELAY_COL_ERROR,
	RELAY_COL_CONFIG
};

/* One row of a batch, copied out of SPI memory. */
typedef struct RelayRow
{
	int64		id;
	bool		was_notified;	/* notified in an earlier cycle */
	bool		found;			/* the referenced row exists */
	char	   *topic;
	int64		ref_id;
	char	   *subject;
	char	   *body;
	char	   *msg_id;
} RelayRow;

void		relay_worker_init(void);

/* ---------------------------------------------------------------------
 * Settings and registration
 * ---------------------------------------------------------------------
 */

/*
 * A NATS subject prefix: dot-separated non-empty tokens without blanks or
 * wildcards.
 */
static bool
relay_check_subject_prefix(char **newval, void **extra, GucSource source)
{
	const char *p = *newval;
	bool		token_start = true;

	if (p == NULL || *p == '\0')
	{
		GUC_check_errdetail("The subject prefix must not be empty.");
		return false;
	}
	for (; *p; p++)
	{
		if (*p == '.')
		{
			if (token_start)
				break;
			token_start = true;
			continue;
		}
		if (*p == '*' || *p == '>' || *p <= ' ' || *p == 0x7f)
		{
			GUC_check_errdetail("\"%s\" is not a NATS subject: no blanks or wildcards allowed.",
								*newval);
			return false;
		}
		token_start = false;
	}
	if (token_start)
	{
		GUC_check_errdetail("\"%s\" is not a NATS subject: it has an empty token.", *newval);
		return false;
	}
	return true;
}

/*
 * Defines the relay's settings and, when preloaded, registers the worker.
 */
void
relay_worker_init(void)
{
	BackgroundWorker worker;

	DefineCustomStringVariable("central_hub.nats_url",
							   "NATS servers the relay publishes to (comma-separated URLs).",
							   "Empty: the relay only sends NOTIFYs and clears the outbox.",
							   &relay_nats_url, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("central_hub.nats_subject_prefix",
							   "Subject prefix of config change messages (<prefix>.<service_name>).",
							   NULL,
							   &relay_subject_prefix, "config.update",
							   PGC_SIGHUP, 0,
							   relay_check_subject_prefix, NULL, NULL);
	DefineCustomStringVariable("central_hub.nats_stream",
							   "JetStream stream that must acknowledge every message.",
							   "Empty: core NATS, each batch confirmed by a flush round trip.",
							   &relay_nats_stream, "",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("central_hub.relay_batch_size",
							"Most outbox rows the relay handles per transaction.",
							NULL,
							&relay_batch_size, 1000, 1, RELAY_BATCH_MAX,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("central_hub.relay_interval",
							"Fallback timer of the relay: drains the outbox even without a wake-up.",
							NULL,
							&relay_interval_ms, 5000, 10, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("central_hub.nats_confirm_timeout",
							"How long the relay waits for NATS to confirm a batch.",
							"Also bounds how long shutdown can wait for a stalled server.",
							&relay_confirm_timeout_ms, 2000, 10, 60000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "central_hub");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "relay_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "central_hub relay");
	snprintf(worker.bgw_type, BGW_MAXLEN, "central_hub relay");
	RegisterBackgroundWorker(&worker);
}

/* ---------------------------------------------------------------------
 * Status in shared memory (hub.relay_status) and pg_stat_activity
 * ---------------------------------------------------------------------
 */

/*
 * Shows the worker's state in hub.relay_status and pg_stat_activity.
 */
static void
relay_set_state(const char *state, const char *activity, bool idle)
{
	bool		connected = nats_client_connected(relay_client);

	SpinLockAcquire(&outbox_shared->mutex);
	strlcpy(outbox_shared->relay_state, state, OUTBOX_RELAY_STATE_LEN);
	outbox_shared->relay_nats_configured = relay_nats_url[0] != '\0';
	outbox_shared->relay_connected = connected;
	SpinLockRelease(&outbox_shared->mutex);

	pgstat_report_activity(idle ? STATE_IDLE : STATE_RUNNING, activity);
}

/*
 * Records an error for hub.relay_status (the server log has it too).
 */
static void
relay_set_error(const char *message)
{
	SpinLockAcquire(&outbox_shared->mutex);
	strlcpy(outbox_shared->relay_last_error, message, OUTBOX_RELAY_ERROR_LEN);
	outbox_shared->relay_last_error_at = GetCurrentTimestamp();
	SpinLockRelease(&outbox_shared->mutex);
}

static void
relay_count(uint64 notified, uint64 sent)
{
	SpinLockAcquire(&outbox_shared->mutex);
	outbox_shared->relay_notified += notified;
	outbox_shared->relay_sent += sent;
	if (sent > 0)
		outbox_shared->relay_last_publish_at = GetCurrentTimestamp();
	SpinLockRelease(&outbox_shared->mutex);
}

/*
 * hub.relay_worker_status(): the relay's shared status as one row.
 */
Datum
hub_relay_worker_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[9];
	bool		nulls[9];
	OutboxShared snap;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	memset(nulls, 0, sizeof(nulls));

	if (outbox_shared == NULL)
	{
		/* not preloaded: no relay in this cluster */
		memset(nulls, true, sizeof(nulls));
		values[1] = CStringGetTextDatum("not loaded");
		nulls[1] = false;
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
	}

	SpinLockAcquire(&outbox_shared->mutex);
	memcpy(&snap, outbox_shared, sizeof(snap));
	SpinLockRelease(&outbox_shared->mutex);

	values[0] = Int32GetDatum(snap.relay_pid);
	nulls[0] = snap.relay_pid == 0;
	values[1] = CStringGetTextDatum(snap.relay_pid == 0 ? "not running" : snap.relay_state);
	values[2] = BoolGetDatum(snap.relay_nats_configured);
	values[3] = BoolGetDatum(snap.relay_pid != 0 && snap.relay_connected);
	values[4] = Int64GetDatum((int64) snap.relay_sent);
	values[5] = Int64GetDatum((int64) snap.relay_notified);
	values[6] = TimestampTzGetDatum(snap.relay_last_publish_at);
	nulls[6] = snap.relay_last_publish_at == 0;
	values[7] = CStringGetTextDatum(snap.relay_last_error);
	nulls[7] = snap.relay_last_error[0] == '\0';
	values[8] = TimestampTzGetDatum(snap.relay_last_error_at);
	nulls[8] = snap.relay_last_error_at == 0;

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ---------------------------------------------------------------------
 * Transactions and queries
 * ---------------------------------------------------------------------
 */

/*
 * Starts a short transaction with SPI and a snapshot.  Returns false (and
 * ends the transaction) when the extension is not installed in this
 * database yet.
 */
static bool
relay_begin(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (!relay_extension_seen)
	{
		if (!OidIsValid(get_extension_oid("central_hub", true)))
		{
			CommitTransactionCommand();
			return false;
		}
		relay_extension_seen = true;
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	return true;
}

static void
relay_commit(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/* Prepares and keeps a plan (SPI connected). */
static SPIPlanPtr
relay_prepare(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);
	return plan;
}

static void
relay_prepare_plans(void)
{
	Oid			int_int8[2] = {INT4OID, INT8OID};
	Oid			int8_array[1] = {INT8ARRAYOID};

	if (relay_plan_batch != NULL)
		return;

	/* NATS batch: the oldest rows from $2 on */
	relay_plan_batch = relay_prepare(
		"SELECT" RELAY_COLUMNS
		" FROM (SELECT id, topic, ref_id, notified_at FROM hub.outbox"
		"       WHERE id >= $2 ORDER BY id LIMIT $1) o" RELAY_JOINS
		" ORDER BY o.id", 2, int_int8);

	/* NOTIFY only: the oldest rows after $2 not notified yet, marked */
	relay_plan_notify_pending = relay_prepare(
		"WITH o AS (UPDATE hub.outbox SET notified_at = now()"
		"  WHERE id IN (SELECT id FROM hub.outbox WHERE notified_at IS NULL"
		"               AND id > $2 ORDER BY id LIMIT $1)"
		"  RETURNING id, topic, ref_id, NULL::timestamptz AS notified_at)"
		" SELECT" RELAY_COLUMNS " FROM o" RELAY_JOINS " ORDER BY o.id",
		2, int_int8);

	/* no NATS: the oldest rows from $2 on, removed */
	relay_plan_notify_clear = relay_prepare(
		"WITH o AS (DELETE FROM hub.outbox"
		"  WHERE id IN (SELECT id FROM hub.outbox WHERE id >= $2"
		"               ORDER BY id LIMIT $1)"
		"  RETURNING id, topic, ref_id, notified_at)"
		" SELECT" RELAY_COLUMNS " FROM o" RELAY_JOINS " ORDER BY o.id",
		2, int_int8);

	/* the last outbox id handed out (NULL before the first) */
	relay_plan_last_id = relay_prepare(
		"SELECT pg_sequence_last_value('hub.outbox_id_seq'::regclass)", 0, NULL);

	relay_plan_delete = relay_prepare(
		"DELETE FROM hub.outbox WHERE id = ANY ($1)", 1, int8_array);
	relay_plan_set_notified = relay_prepare(
		"UPDATE hub.outbox SET notified_at = now()"
		" WHERE id = ANY ($1) AND notified_at IS NULL", 1, int8_array);
}

/* ---------------------------------------------------------------------
 * Messages, written as json_build_object would write them
 * ---------------------------------------------------------------------
 */

/* Milliseconds since the Unix epoch, as floor(extract(epoch ...) * 1000). */
#define RELAY_UNIX_EPOCH_MS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000)

/* A text column as a C string, NULL when null. */
static char *
relay_text(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* Opens the next key of an object: '{' before the first, ", " after. */
static void
relay_json_key(StringInfo buf, const char *key)
{
	appendStringInfoString(buf, buf->len == 0 ? "{" : ", ");
	escape_json(buf, key);
	appendStringInfoString(buf, " : ");
}

/* How relay_json_field writes a column. */
typedef enum RelayJsonKind
{
	RELAY_JSON_TEXT,			/* a JSON string */
	RELAY_JSON_INT8,			/* a number */
	RELAY_JSON_MS				/* timestamptz as ms since the Unix epoch */
} RelayJsonKind;

/* "key" : <column col as kind, or null> */
static void
relay_json_field(StringInfo buf, const char *key, HeapTuple tup, TupleDesc desc,
				 int col, RelayJsonKind kind)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	relay_json_key(buf, key);
	if (isnull)
		appendStringInfoString(buf, "null");
	else if (kind == RELAY_JSON_TEXT)
		escape_json(buf, TextDatumGetCString(d));
	else if (kind == RELAY_JSON_INT8)
		appendStringInfo(buf, INT64_FORMAT, DatumGetInt64(d));
	else
	{
		TimestampTz ts = DatumGetTimestampTz(d);
		int64		ms = ts / 1000 - ((ts % 1000) < 0 ? 1 : 0);

		appendStringInfo(buf, INT64_FORMAT, ms + RELAY_UNIX_EPOCH_MS);
	}
}

/* "config" : <the config, or null (deleted, or omitted)> */
static void
relay_json_config(StringInfo buf, HeapTuple tup, TupleDesc desc, bool omit)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, RELAY_COL_CONFIG, &isnull);
	char	   *action = relay_text(tup, desc, RELAY_COL_ACTION);

	relay_json_key(buf, "config");
	if (isnull || omit || (action != NULL && strcmp(action, "deleted") == 0))
		appendStringInfoString(buf, "null");
	else
	{
		Jsonb	   *jb = DatumGetJsonbP(d);

		(void) JsonbToCString(buf, &jb->root, VARSIZE(jb));
	}
}

/* The instance and statuses of a health event. */
static void
relay_json_health_change(StringInfo buf, HeapTuple tup, TupleDesc desc)
{
	relay_json_field(buf, "instance_id", tup, desc, RELAY_COL_INSTANCE, RELAY_JSON_TEXT);
	relay_json_field(buf, "previous_status", tup, desc, RELAY_COL_PREVIOUS_STATUS, RELAY_JSON_TEXT);
	relay_json_field(buf, "status", tup, desc, RELAY_COL_STATUS, RELAY_JSON_TEXT);
	relay_json_field(buf, "service_status", tup, desc, RELAY_COL_SERVICE_STATUS, RELAY_JSON_TEXT);
}

/* The NOTIFY payload of a row (hub_config or hub_health). */
static void
relay_json_payload(StringInfo buf, bool config, HeapTuple tup, TupleDesc desc)
{
	relay_json_field(buf, "service_name", tup, desc, RELAY_COL_SERVICE, RELAY_JSON_TEXT);
	if (config)
	{
		relay_json_field(buf, "version", tup, desc, RELAY_COL_VERSION, RELAY_JSON_TEXT);
		relay_json_field(buf, "revision", tup, desc, RELAY_COL_REF_ID, RELAY_JSON_INT8);
		relay_json_field(buf, "action", tup, desc, RELAY_COL_ACTION, RELAY_JSON_TEXT);
	}
	else
	{
		relay_json_health_change(buf, tup, desc);
		relay_json_field(buf, "revision", tup, desc, RELAY_COL_REF_ID, RELAY_JSON_INT8);
	}
	appendStringInfoChar(buf, '}');
}

/*
 * The NATS body of a row; omit leaves a config out and says so
 * ("config_omitted": true) for configs larger than NATS takes.
 */
static void
relay_json_body(StringInfo buf, bool config, bool omit, HeapTuple tup,
				TupleDesc desc)
{
	relay_json_field(buf, "service_name", tup, desc, RELAY_COL_SERVICE, RELAY_JSON_TEXT);
	if (config)
	{
		relay_json_config(buf, tup, desc, omit);
		relay_json_field(buf, "version", tup, desc, RELAY_COL_VERSION, RELAY_JSON_TEXT);
		relay_json_field(buf, "previous_version", tup, desc, RELAY_COL_PREVIOUS_VERSION, RELAY_JSON_TEXT);
		relay_json_field(buf, "action", tup, desc, RELAY_COL_ACTION, RELAY_JSON_TEXT);
		relay_json_field(buf, "revision", tup, desc, RELAY_COL_REF_ID, RELAY_JSON_INT8);
		relay_json_field(buf, "updated_at", tup, desc, RELAY_COL_AT, RELAY_JSON_MS);
		relay_json_field(buf, "updated_by", tup, desc, RELAY_COL_CHANGED_BY, RELAY_JSON_TEXT);
		if (omit)
			appendStringInfoString(buf, ", \"config_omitted\" : true");
	}
	else
	{
		relay_json_health_change(buf, tup, desc);
		relay_json_field(buf, "at", tup, desc, RELAY_COL_AT, RELAY_JSON_MS);
		relay_json_field(buf, "error", tup, desc, RELAY_COL_ERROR, RELAY_JSON_TEXT);
		relay_json_field(buf, "revision", tup, desc, RELAY_COL_REF_ID, RELAY_JSON_INT8);
	}
	appendStringInfoChar(buf, '}');
}

/*
 * Copies the rows of the last SPI query into rows[], with their NATS
 * subject, message id and body (in the cycle context).  A config whose
 * body would exceed max_body goes without the config; a larger health
 * message gets no body (logged, not sent).
 */
static int
relay_copy_rows(RelayRow *rows, int64 max_body)
{
	TupleDesc	desc = SPI_tuptable->tupdesc;
	MemoryContext old = MemoryContextSwitchTo(relay_cycle_ctx);
	uint64		i;
	bool		isnull;

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		RelayRow   *row = &rows[i];
		StringInfoData buf;
		bool		config;
		char	   *service;

		memset(row, 0, sizeof(RelayRow));
		row->id = DatumGetInt64(SPI_getbinval(tup, desc, RELAY_COL_ID, &isnull));
		row->was_notified = DatumGetBool(SPI_getbinval(tup, desc, RELAY_COL_WAS_NOTIFIED, &isnull));
		row->found = DatumGetBool(SPI_getbinval(tup, desc, RELAY_COL_FOUND, &isnull));
		row->topic = relay_text(tup, desc, RELAY_COL_TOPIC);
		row->ref_id = DatumGetInt64(SPI_getbinval(tup, desc, RELAY_COL_REF_ID, &isnull));
		if (!row->found)
			continue;
		config = strcmp(row->topic, "config") == 0;
		service = relay_text(tup, desc, RELAY_COL_SERVICE);
		row->subject = config ? psprintf("%s.%s", relay_subject_prefix, service) :
			psprintf("health.%s", service);
		row->msg_id = config ? psprintf(INT64_FORMAT, row->ref_id) :
			psprintf("health-" INT64_FORMAT, row->ref_id);

		initStringInfo(&buf);
		relay_json_body(&buf, config, false, tup, desc);
		if (buf.len > max_body && config)
		{
			ereport(WARNING,
					(errmsg("central_hub relay: config revision " INT64_FORMAT " of \"%s\" is larger than the NATS max payload; sending it without the config",
							row->ref_id, service),
					 errdetail("The message carries \"config_omitted\": true; subscribers fetch the config.")));
			resetStringInfo(&buf);
			relay_json_body(&buf, config, true, tup, desc);
		}
		else if (buf.len > max_body)
		{
			ereport(WARNING,
					(errmsg("central_hub relay: %s message " INT64_FORMAT " is larger than the NATS max payload; not sent",
							row->topic, row->ref_id)));
			continue;
		}
		row->body = buf.data;
	}
	MemoryContextSwitchTo(old);
	return (int) SPI_processed;
}

/*
 * Queues the NOTIFYs of the last SPI query's rows that were not notified
 * before (they are sent when the transaction commits).  Returns how many.
 */
static int
relay_queue_notifies(void)
{
	TupleDesc	desc = SPI_tuptable->tupdesc;
	uint64		i;
	int			count = 0;
	bool		isnull;
	StringInfoData payload;

	initStringInfo(&payload);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		config;
		const char *channel;

		if (DatumGetBool(SPI_getbinval(tup, desc, RELAY_COL_WAS_NOTIFIED, &isnull)) ||
			!DatumGetBool(SPI_getbinval(tup, desc, RELAY_COL_FOUND, &isnull)))
			continue;			/* notified before, or dangling reference */
		config = strcmp(relay_text(tup, desc, RELAY_COL_TOPIC), "config") == 0;
		channel = config ? "hub_config" : "hub_health";
		resetStringInfo(&payload);
		relay_json_payload(&payload, config, tup, desc);
		if (payload.len >= RELAY_NOTIFY_PAYLOAD_MAX)
		{
			ereport(WARNING,
					(errmsg("central_hub relay: NOTIFY %s payload of outbox row " INT64_FORMAT " is too long, not sent",
							channel,
							DatumGetInt64(SPI_getbinval(tup, desc, RELAY_COL_ID, &isnull)))));
			continue;
		}
		Async_Notify(channel, payload.data);
		count++;
	}
	pfree(payload.data);
	return count;
}

/* An int8[] of ids for the = ANY ($1) statements. */
static Datum
relay_id_array(int64 *ids, int count)
{
	Datum	   *elems = palloc(sizeof(Datum) * count);
	int			i;

	for (i = 0; i < count; i++)
		elems[i] = Int64GetDatum(ids[i]);
	return PointerGetDatum(construct_array(elems, count, INT8OID, 8,
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* Runs one of the = ANY ($1) statements on ids. */
static void
relay_execute_ids(SPIPlanPtr plan, int64 *ids, int count)
{
	Datum		arg;
	int			rc;

	if (count == 0)
		return;
	arg = relay_id_array(ids, count);
	rc = SPI_execute_plan(plan, &arg, NULL, false, 0);
	if (rc != SPI_OK_DELETE && rc != SPI_OK_UPDATE)
		elog(ERROR, "relay statement failed: %s", SPI_result_code_string(rc));
}

/*
 * Deletes the rows confirmed in the previous cycle, inside the current
 * transaction.  They stay remembered until relay_commit_confirmed().
 */
static void
relay_delete_confirmed(void)
{
	relay_execute_ids(relay_plan_delete, relay_confirmed_ids, relay_confirmed_count);
}

/* The transaction that deleted them committed. */
static void
relay_commit_confirmed(void)
{
	relay_confirmed_count = 0;
}

/*
 * Commits a transaction that queued NOTIFYs.  A full notification queue
 * makes the commit fail: the caller's error path then pauses NOTIFY so that
 * NATS delivery goes on without it.
 */
static void
relay_commit_notifying(int notified)
{
	relay_committing_notify = notified > 0;
	relay_commit();
	relay_committing_notify = false;
	relay_commit_confirmed();
	if (notified > 0)
		relay_count(notified, 0);
}

/* ---------------------------------------------------------------------
 * The scan horizon (see relay_scan_from)
 * ---------------------------------------------------------------------
 */

/* Reads start from 0 again. */
static void
relay_horizon_reset(void)
{
	relay_scan_from = 0;
	relay_horizon_id = 0;
	relay_horizon_xid = InvalidTransactionId;
}

/*
 * Before a batch read (SPI connected): notes the last id handed out and
 * then the next xid.  Returns whether the pending horizon is proven: every
 * transaction below relay_horizon_xid has ended, so this cycle's read sees
 * every row up to relay_horizon_id.
 */
static bool
relay_horizon_begin(int64 *last_id, TransactionId *next_xid)
{
	Snapshot	snap;
	bool		isnull;
	Datum		d;

	if (GetCurrentTimestamp() >= relay_next_sweep)
	{
		relay_horizon_reset();
		relay_next_sweep = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   relay_interval_ms);
	}
	if (SPI_execute_plan(relay_plan_last_id, NULL, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "reading the outbox sequence failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	*last_id = isnull ? 0 : DatumGetInt64(d);

	/* every transaction holding an id up to *last_id has an xid below this */
	*next_xid = XidFromFullTransactionId(ReadNextFullTransactionId());
	snap = GetTransactionSnapshot();
	return TransactionIdIsValid(relay_horizon_xid) &&
		TransactionIdPrecedesOrEquals(relay_horizon_xid, snap->xmin);
}

/*
 * After a batch read from relay_scan_from that found n rows, the last with
 * id last_read: when the horizon was proven and every row read was handled
 * (deleted, or confirmed by NATS), no row is left up to relay_horizon_id,
 * or up to last_read if the batch was full: reads start past it.  Once the
 * horizon is used up (or with none yet), the one noted by
 * relay_horizon_begin is the next to prove.
 */
static void
relay_horizon_end(bool proven, bool handled, int n, int64 last_read,
				  int64 last_id, TransactionId next_xid)
{
	if (proven && handled)
	{
		bool		full = n >= relay_batch_size;
		int64		done = full ? Min(last_read, relay_horizon_id) : relay_horizon_id;

		relay_scan_from = Max(relay_scan_from, done + 1);
		if (!full || last_read >= relay_horizon_id)
			relay_horizon_xid = InvalidTransactionId;
	}
	if (!TransactionIdIsValid(relay_horizon_xid))
	{
		relay_horizon_id = last_id;
		relay_horizon_xid = next_xid;
	}
}

/* ---------------------------------------------------------------------
 * The three kinds of cycle
 * ---------------------------------------------------------------------
 */

/* Wait before the next cycle: now when a batch was full, else the timer. */
static long
relay_next_wait(int done)
{
	relay_cycle_rows = done;
	return done >= relay_batch_size ? 0 : relay_interval_ms;
}

/*
 * One notify-only cycle: *plan (prepared by relay_prepare_plans) reads, and
 * deletes or marks, a batch of rows,
 * whose NOTIFYs commit with the transaction.  With clear, the plan deletes
 * what it reads, from the scan horizon on ($2).  activity, when given, is
 * shown as the worker's state.
 */
static long
relay_cycle_notify(SPIPlanPtr *plan, Datum *args, bool notify_ok, bool clear,
				   const char *activity)
{
	int			n;
	int			notified;
	bool		proven = false;
	int64		last_id = 0;
	int64		last_read = 0;
	TransactionId next_xid = InvalidTransactionId;

	if (!notify_ok)
		return RELAY_ERROR_PAUSE_MS;
	if (!relay_begin())
		return -1;
	relay_prepare_plans();
	relay_delete_confirmed();
	if (activity != NULL)
		relay_set_state("relaying", activity, false);
	if (clear)
	{
		proven = relay_horizon_begin(&last_id, &next_xid);
		args[1] = Int64GetDatum(relay_scan_from);
	}
	args[0] = Int32GetDatum(relay_batch_size);
	if (SPI_execute_plan(*plan, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the outbox failed");
	n = (int) SPI_processed;
	if (n > 0)
	{
		bool		isnull;

		last_read = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[n - 1],
												SPI_tuptable->tupdesc, 1, &isnull));
	}
	notified = relay_queue_notifies();
	relay_commit_notifying(notified);
	if (clear)
		relay_horizon_end(proven, true, n, last_read, last_id, next_xid);
	return relay_next_wait(n);
}

/*
 * NATS not configured: NOTIFY the oldest rows and delete them.
 */
static long
relay_cycle_notify_and_clear(bool notify_ok)
{
	Datum		args[2];

	return relay_cycle_notify(&relay_plan_notify_clear, args, notify_ok, true,
							  "notifying (no NATS configured)");
}

/*
 * NATS down or backing off: NOTIFY the rows not notified yet and mark them,
 * keeping them for NATS.
 */
static long
relay_cycle_notify_only(bool notify_ok)
{
	Datum		args[2];

	args[1] = Int64GetDatum(0);
	return relay_cycle_notify(&relay_plan_notify_pending, args, notify_ok, false,
							  NULL);
}

/*
 * True when subject is a publishable NATS subject (no blanks, wildcards or
 * empty tokens); publishing anything else would get us disconnected.
 */
static bool
relay_subject_is_valid(const char *subject)
{
	const char *p;
	bool		token_start = true;

	if (subject == NULL || subject[0] == '\0')
		return false;
	for (p = subject; *p; p++)
	{
		if (*p == '.')
		{
			if (token_start)
				return false;
			token_start = true;
		}
		else if (*p == '*' || *p == '>' || (unsigned char) *p <= ' ' || *p == 0x7f)
			return false;
		else
			token_start = false;
	}
	return !token_start;
}

/*
 * NATS connected: one batch.  Reads the oldest rows and queues their
 * NOTIFYs (and those of newer unnotified rows when the batch is full) in
 * one transaction; publishes outside it; then deletes the rows if NATS
 * confirmed them, or records that they were notified if not.
 */
static long
relay_cycle_publish(bool notify_ok)
{
	Datum		args[2];
	RelayRow   *rows;
	NatsClientMessage *msgs;
	int64	   *ids;
	int64	   *notified_ids;
	int			n;
	int			nmsgs = 0;
	int			nnotified = 0;
	int			notified = 0;
	int64		max_body;
	int			i;
	bool		confirmed;
	bool		proven;
	int64		last_id;
	TransactionId next_xid;
	char		errbuf[OUTBOX_RELAY_ERROR_LEN];
	char		activity[128];

	max_body = nats_client_max_payload(relay_client) - RELAY_HEADER_ROOM;
	if (max_body <= 0)
		return 0;				/* disconnected meanwhile: notify-only next */

	/* 1. read the batch and queue its NOTIFYs */
	if (!relay_begin())
		return -1;
	relay_prepare_plans();
	relay_delete_confirmed();
	proven = relay_horizon_begin(&last_id, &next_xid);
	args[0] = Int32GetDatum(relay_batch_size);
	args[1] = Int64GetDatum(relay_scan_from);
	if (SPI_execute_plan(relay_plan_batch, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the outbox failed");
	n = (int) SPI_processed;
	if (n == 0)
	{
		relay_commit();
		relay_commit_confirmed();
		relay_horizon_end(proven, true, 0, 0, last_id, next_xid);
		return relay_interval_ms;
	}
	rows = MemoryContextAlloc(relay_cycle_ctx, sizeof(RelayRow) * n);
	relay_copy_rows(rows, max_body);
	if (notify_ok)
		notified = relay_queue_notifies();

	/* keep NOTIFY prompt for the rows behind a full batch */
	if (notify_ok && n >= relay_batch_size)
	{
		Datum		nargs[2];

		nargs[0] = Int32GetDatum(relay_batch_size);
		nargs[1] = Int64GetDatum(rows[n - 1].id);
		if (SPI_execute_plan(relay_plan_notify_pending, nargs, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "reading the outbox failed");
		notified += relay_queue_notifies();
	}
	relay_commit_notifying(notified);

	/* 2. publish outside any transaction */
	msgs = MemoryContextAlloc(relay_cycle_ctx, sizeof(NatsClientMessage) * n);
	ids = MemoryContextAlloc(relay_cycle_ctx, sizeof(int64) * n);
	notified_ids = MemoryContextAlloc(relay_cycle_ctx, sizeof(int64) * n);
	for (i = 0; i < n; i++)
	{
		ids[i] = rows[i].id;
		if (!rows[i].was_notified && rows[i].found && notify_ok)
			notified_ids[nnotified++] = rows[i].id;
		if (!rows[i].found)
		{
			ereport(WARNING,
					(errmsg("central_hub relay: outbox row " INT64_FORMAT " refers to %s row " INT64_FORMAT ", which does not exist; dropped",
							rows[i].id, rows[i].topic, rows[i].ref_id)));
			continue;
		}
		if (rows[i].body == NULL)
			continue;
		if (!relay_subject_is_valid(rows[i].subject))
		{
			ereport(WARNING,
					(errmsg("central_hub relay: \"%s\" is not a valid NATS subject; outbox row " INT64_FORMAT " dropped",
							rows[i].subject, rows[i].id)));
			continue;
		}
		msgs[nmsgs].subject = rows[i].subject;
		msgs[nmsgs].body = rows[i].body;
		msgs[nmsgs].body_len = (int) strlen(rows[i].body);
		msgs[nmsgs].msg_id = rows[i].msg_id;
		nmsgs++;
	}

	snprintf(activity, sizeof(activity), "publishing %d changes to NATS", nmsgs);
	relay_set_state("relaying", activity, false);
	errbuf[0] = '\0';
	confirmed = nmsgs == 0 ||
		nats_client_publish_batch(relay_client, msgs, nmsgs,
								  relay_confirm_timeout_ms, errbuf, sizeof(errbuf));

	/*
	 * 3. forget what NATS confirmed (in the next batch's transaction when
	 * changes are already waiting), remember what was notified
	 */
	if (confirmed)
	{
		memcpy(relay_confirmed_ids, ids, sizeof(int64) * n);
		relay_confirmed_count = n;
	}
	if (!confirmed || (!MyLatch->is_set && n < relay_batch_size))
	{
		if (!relay_begin())
			return -1;
		relay_prepare_plans();
		if (confirmed)
			relay_delete_confirmed();
		else
			relay_execute_ids(relay_plan_set_notified, notified_ids, nnotified);
		relay_commit();
		relay_commit_confirmed();
	}

	relay_horizon_end(proven, confirmed, n, rows[n - 1].id, last_id, next_xid);
	if (confirmed)
	{
		relay_count(0, nmsgs);
		relay_nats_backoff_ms = 0;
		relay_nats_retry_at = 0;
		return relay_next_wait(n);
	}

	relay_set_error(errbuf);
	ereport(LOG,
			(errmsg("central_hub relay: %d changes not confirmed by NATS, will retry: %s",
					nmsgs, errbuf)));
	relay_nats_backoff_ms = relay_nats_backoff_ms == 0 ? RELAY_NATS_BACKOFF_FIRST_MS :
		Min(relay_nats_backoff_ms * 2, relay_interval_ms);
	relay_nats_retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													  relay_nats_backoff_ms);
	/* the rows behind this batch still get their NOTIFY meanwhile */
	return 0;
}

/* ---------------------------------------------------------------------
 * The loop
 * ---------------------------------------------------------------------
 */

/*
 * (Re)creates the NATS client when the settings it was built for changed.
 */
static void
relay_configure_nats(void)
{
	char		errbuf[OUTBOX_RELAY_ERROR_LEN];

	if (relay_client_url != NULL &&
		strcmp(relay_client_url, relay_nats_url) == 0 &&
		strcmp(relay_client_stream, relay_nats_stream) == 0)
		return;

	if (relay_client != NULL)
	{
		nats_client_close(relay_client);
		relay_client = NULL;
	}
	if (relay_client_url != NULL)
		pfree(relay_client_url);
	if (relay_client_stream != NULL)
		pfree(relay_client_stream);
	relay_client_url = MemoryContextStrdup(TopMemoryContext, relay_nats_url);
	relay_client_stream = MemoryContextStrdup(TopMemoryContext, relay_nats_stream);
	relay_nats_backoff_ms = 0;
	relay_nats_retry_at = 0;
	relay_horizon_reset();

	if (relay_nats_url[0] == '\0')
	{
		ereport(LOG, (errmsg("central_hub relay: no NATS configured, sending notifications only")));
		return;
	}
	errbuf[0] = '\0';
	relay_client = nats_client_open(relay_nats_url, relay_nats_stream, MyLatch,
									errbuf, sizeof(errbuf));
	if (relay_client == NULL)
	{
		relay_set_error(errbuf);
		ereport(WARNING,
				(errmsg("central_hub relay: %s", errbuf),
				 errhint("Fix central_hub.nats_url and reload; changes wait in hub.outbox.")));
	}
	else
		ereport(LOG,
				(errmsg("central_hub relay: publishing to %s%s%s",
						relay_nats_url,
						relay_nats_stream[0] ? ", JetStream stream " : "",
						relay_nats_stream)));
}

/*
 * The state shown while waiting: why NATS is not used, or idle.
 */
static const char *
relay_idle_state(void)
{
	if (relay_nats_url[0] == '\0')
		return "idle";
	if (relay_client == NULL)
		return "nats misconfigured";
	if (!nats_client_connected(relay_client))
		return "nats down";
	if (relay_nats_retry_at > GetCurrentTimestamp())
		return "nats failing";
	return "idle";
}

/*
 * One cycle, choosing its kind from the NATS state.  Returns how long to
 * wait before the next one (ms; 0 = at once, -1 = extension missing).
 */
static long
relay_cycle(void)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		notify_ok = now >= relay_notify_resume_at;

	relay_cycle_rows = 0;
	if (relay_nats_url[0] == '\0')
		return relay_cycle_notify_and_clear(notify_ok);
	if (nats_client_connected(relay_client) && now >= relay_nats_retry_at)
		return relay_cycle_publish(notify_ok);

	relay_set_state(relay_idle_state(), "NATS unavailable: notifying only", false);
	{
		long		wait = relay_cycle_notify_only(notify_ok);

		/* come back when the NATS backoff ends */
		if (wait != 0 && relay_nats_retry_at > now &&
			nats_client_connected(relay_client))
			wait = Min(wait, TimestampDifferenceMilliseconds(now, relay_nats_retry_at) + 1);
		return wait;
	}
}

/*
 * A cycle failed: report, roll back, remember, and go on.  A refused NOTIFY
 * (full queue) pauses notifications so that NATS delivery continues.
 */
static void
relay_cycle_failed(void)
{
	ErrorData  *edata;
	bool		notifying = relay_committing_notify;

	relay_committing_notify = false;
	MemoryContextSwitchTo(relay_cycle_ctx);
	edata = CopyErrorData();
	EmitErrorReport();
	FlushErrorState();
	AbortCurrentTransaction();

	relay_set_error(edata->message);
	relay_extension_seen = false;
	relay_horizon_reset();
	if (notifying)
	{
		relay_notify_resume_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
															 RELAY_ERROR_PAUSE_MS);
		ereport(LOG,
				(errmsg("central_hub relay: NOTIFY failed, notifications paused for %d ms; NATS delivery goes on",
						RELAY_ERROR_PAUSE_MS)));
	}
}

/*
 * Exit callback: the relay is gone, nobody is to set our latch, and the
 * NATS connection is closed.
 */
static void
relay_shutdown(int code, Datum arg)
{
	outbox_set_relay_latch(NULL);
	SpinLockAcquire(&outbox_shared->mutex);
	outbox_shared->relay_pid = 0;
	outbox_shared->relay_connected = false;
	SpinLockRelease(&outbox_shared->mutex);
	nats_client_close(relay_client);
	relay_client = NULL;
}

/*
 * Entry point of the relay background worker.
 */
void
relay_worker_main(Datum main_arg)
{
	long		wait_ms = 0;	/* drain the outbox at start */

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(hub_worker_database, NULL, 0);

	/*
	 * Every relay statement is a key lookup on a queue table whose size
	 * swings by orders of magnitude between bursts; a kept generic plan made
	 * while it was small must never scan it (or the audit log) whole.
	 */
	SetConfigOption("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION);

	relay_cycle_ctx = AllocSetContextCreate(TopMemoryContext,
											"central_hub relay cycle",
											ALLOCSET_DEFAULT_SIZES);
	relay_confirmed_ids = MemoryContextAlloc(TopMemoryContext,
											 sizeof(int64) * RELAY_BATCH_MAX);

	SpinLockAcquire(&outbox_shared->mutex);
	outbox_shared->relay_pid = MyProcPid;
	SpinLockRelease(&outbox_shared->mutex);
	before_shmem_exit(relay_shutdown, (Datum) 0);
	outbox_set_relay_latch(MyLatch);

	ereport(LOG, (errmsg("central_hub relay started for database \"%s\"",
						 hub_worker_database)));
	relay_set_state("starting", "starting", false);

	for (;;)
	{
		if (wait_ms != 0)
		{
			if (wait_ms > 0)
				relay_set_state(relay_idle_state(), "waiting for changes", true);
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 wait_ms > 0 ? wait_ms : relay_interval_ms,
							 PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			/* woken right after relaying: gather more commits first */
			if (GetCurrentTimestamp() - relay_busy_cycle_end < RELAY_COALESCE_US)
				(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 RELAY_COALESCE_US / 1000, PG_WAIT_EXTENSION);
		}
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		if (RecoveryInProgress())
		{
			/* not reached with BgWorkerStart_RecoveryFinished; kept as a guard */
			relay_set_state("standby", "waiting for promotion", true);
			wait_ms = relay_interval_ms;
			continue;
		}

		relay_configure_nats();

		MemoryContextReset(relay_cycle_ctx);
		PG_TRY();
		{
			wait_ms = relay_cycle();
			/* more than one change per cycle: commits arrive faster than cycles */
			relay_busy_cycle_end = relay_cycle_rows > 1 ? GetCurrentTimestamp() : 0;
			if (wait_ms < 0)
				relay_set_state("no extension", "waiting for CREATE EXTENSION central_hub", true);
		}
		PG_CATCH();
		{
			relay_cycle_failed();
			wait_ms = RELAY_ERROR_PAUSE_MS;
		}
		PG_END_TRY();
		pgstat_report_stat(false);
	}
}
