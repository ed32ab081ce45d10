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
static SPIPlanPtr relay_plan_omitted_body = NULL;

/*
 * The message text for an outbox row o, joined to the audit row (a) or the
 * health event (h) it refers to.  JSON is built by PostgreSQL itself.
 */
#define RELAY_JOINS \
	" LEFT JOIN hub.config_audit_log a ON o.topic = 'config' AND a.id = o.ref_id" \
	" LEFT JOIN hub.health_events h ON o.topic = 'health' AND h.id = o.ref_id"
#define RELAY_FOUND \
	" CASE o.topic WHEN 'config' THEN a.id IS NOT NULL ELSE h.id IS NOT NULL END"
#define RELAY_CHANNEL \
	" CASE o.topic WHEN 'config' THEN 'hub_config' ELSE 'hub_health' END"
#define RELAY_PAYLOAD \
	" CASE o.topic WHEN 'config' THEN json_build_object(" \
	"   'service_name', a.service_name, 'version', a.version," \
	"   'revision', a.id, 'action', a.action)::text" \
	" ELSE json_build_object(" \
	"   'service_name', h.service_name, 'instance_id', h.instance_id," \
	"   'previous_status', h.previous_status, 'status', h.status," \
	"   'service_status', h.service_status, 'revision', h.id)::text END"
#define RELAY_SUBJECT \
	" CASE o.topic WHEN 'config' THEN $2 || '.' || a.service_name" \
	" ELSE 'health.' || h.service_name END"
#define RELAY_MSG_ID \
	" CASE o.topic WHEN 'config' THEN a.id::text ELSE 'health-' || h.id END"
#define RELAY_CONFIG_BODY(config) \
	" json_build_object('service_name', a.service_name, 'config', " config "," \
	"   'version', a.version, 'previous_version', a.previous_version," \
	"   'action', a.action, 'revision', a.id," \
	"   'updated_at', floor(extract(epoch FROM a.changed_at) * 1000)::int8," \
	"   'updated_by', a.changed_by"
#define RELAY_BODY \
	" CASE o.topic WHEN 'config' THEN" \
	RELAY_CONFIG_BODY("CASE WHEN a.action <> 'deleted' THEN a.config_json END") ")::text" \
	" ELSE json_build_object('service_name', h.service_name," \
	"   'instance_id', h.instance_id, 'previous_status', h.previous_status," \
	"   'status', h.status, 'service_status', h.service_status," \
	"   'at', floor(extract(epoch FROM h.at) * 1000)::int8," \
	"   'error', h.error, 'revision', h.id)::text END"

/* Columns of every notify query: id, was_notified, found, channel, payload */
#define RELAY_NOTIFY_COLUMNS \
	" o.id, o.notified_at IS NOT NULL," RELAY_FOUND "," RELAY_CHANNEL "," RELAY_PAYLOAD

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
	Oid			int_text[2] = {INT4OID, TEXTOID};
	Oid			int_int8[2] = {INT4OID, INT8OID};
	Oid			int8_array[1] = {INT8ARRAYOID};
	Oid			int8_arg[1] = {INT8OID};

	if (relay_plan_batch != NULL)
		return;

	/* NATS batch: the oldest rows, with NOTIFY payload and NATS message */
	relay_plan_batch = relay_prepare(
		"SELECT" RELAY_NOTIFY_COLUMNS ", o.topic, o.ref_id,"
		RELAY_SUBJECT " AS subject," RELAY_MSG_ID " AS msg_id," RELAY_BODY " AS body"
		" FROM (SELECT id, topic, ref_id, notified_at FROM hub.outbox"
		"       ORDER BY id LIMIT $1) o" RELAY_JOINS
		" ORDER BY o.id", 2, int_text);

	/* NOTIFY only: the oldest rows after $2 not notified yet, marked */
	relay_plan_notify_pending = relay_prepare(
		"WITH o AS (UPDATE hub.outbox SET notified_at = now()"
		"  WHERE id IN (SELECT id FROM hub.outbox WHERE notified_at IS NULL"
		"               AND id > $2 ORDER BY id LIMIT $1)"
		"  RETURNING id, topic, ref_id, NULL::timestamptz AS notified_at)"
		" SELECT" RELAY_NOTIFY_COLUMNS " FROM o" RELAY_JOINS " ORDER BY o.id",
		2, int_int8);

	/* no NATS: the oldest rows, removed */
	relay_plan_notify_clear = relay_prepare(
		"WITH o AS (DELETE FROM hub.outbox"
		"  WHERE id IN (SELECT id FROM hub.outbox ORDER BY id LIMIT $1)"
		"  RETURNING id, topic, ref_id, notified_at)"
		" SELECT" RELAY_NOTIFY_COLUMNS " FROM o" RELAY_JOINS " ORDER BY o.id",
		1, int_text);

	relay_plan_delete = relay_prepare(
		"DELETE FROM hub.outbox WHERE id = ANY ($1)", 1, int8_array);
	relay_plan_set_notified = relay_prepare(
		"UPDATE hub.outbox SET notified_at = now()"
		" WHERE id = ANY ($1) AND notified_at IS NULL", 1, int8_array);

	/* a config message too large for NATS: everything but the config */
	relay_plan_omitted_body = relay_prepare(
		"SELECT" RELAY_CONFIG_BODY("NULL::jsonb") ", 'config_omitted', true)::text"
		" FROM hub.config_audit_log a WHERE a.id = $1", 1, int8_arg);
}

/* Text column of the current SPI row, copied into the cycle context. */
static char *
relay_text_col(HeapTuple tuple, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);
	MemoryContext old;
	char	   *result;

	if (isnull)
		return NULL;
	old = MemoryContextSwitchTo(relay_cycle_ctx);
	result = TextDatumGetCString(d);
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * Copies the rows of the last SPI query (columns of RELAY_NOTIFY_COLUMNS,
 * then optionally topic, ref_id, subject, msg_id, body) into rows[].
 */
static int
relay_copy_rows(RelayRow *rows, bool with_message)
{
	TupleDesc	desc = SPI_tuptable->tupdesc;
	uint64		i;
	bool		isnull;

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		RelayRow   *row = &rows[i];

		memset(row, 0, sizeof(RelayRow));
		row->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		row->was_notified = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
		row->found = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		if (with_message)
		{
			row->topic = relay_text_col(tup, desc, 6);
			row->ref_id = DatumGetInt64(SPI_getbinval(tup, desc, 7, &isnull));
			row->subject = relay_text_col(tup, desc, 8);
			row->msg_id = relay_text_col(tup, desc, 9);
			row->body = relay_text_col(tup, desc, 10);
		}
	}
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

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		char	   *channel;
		char	   *payload;

		if (DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull)) ||
			!DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull)))
			continue;			/* notified before, or dangling reference */
		channel = SPI_getvalue(tup, desc, 4);
		payload = SPI_getvalue(tup, desc, 5);
		if (strlen(payload) >= RELAY_NOTIFY_PAYLOAD_MAX)
		{
			ereport(WARNING,
					(errmsg("central_hub relay: NOTIFY %s payload of outbox row " INT64_FORMAT " is too long, not sent",
							channel,
							DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull)))));
			continue;
		}
		Async_Notify(channel, payload);
		count++;
	}
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
 * The three kinds of cycle
 * ---------------------------------------------------------------------
 */

/* Wait before the next cycle: now when a batch was full, else the timer. */
static long
relay_next_wait(int done)
{
	return done >= relay_batch_size ? 0 : relay_interval_ms;
}

/*
 * One notify-only cycle: *plan (prepared by relay_prepare_plans) reads, and
 * deletes or marks, a batch of rows,
 * whose NOTIFYs commit with the transaction.  activity, when given, is shown
 * as the worker's state.
 */
static long
relay_cycle_notify(SPIPlanPtr *plan, Datum *args, bool notify_ok,
				   const char *activity)
{
	int			n;
	int			notified;

	if (!notify_ok)
		return RELAY_ERROR_PAUSE_MS;
	if (!relay_begin())
		return -1;
	relay_prepare_plans();
	relay_delete_confirmed();
	if (activity != NULL)
		relay_set_state("relaying", activity, false);
	args[0] = Int32GetDatum(relay_batch_size);
	if (SPI_execute_plan(*plan, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the outbox failed");
	n = (int) SPI_processed;
	notified = relay_queue_notifies();
	relay_commit_notifying(notified);
	return relay_next_wait(n);
}

/*
 * NATS not configured: NOTIFY the oldest rows and delete them.
 */
static long
relay_cycle_notify_and_clear(bool notify_ok)
{
	Datum		args[1];

	return relay_cycle_notify(&relay_plan_notify_clear, args, notify_ok,
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
	return relay_cycle_notify(&relay_plan_notify_pending, args, notify_ok, NULL);
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
	args[0] = Int32GetDatum(relay_batch_size);
	args[1] = CStringGetTextDatum(relay_subject_prefix);
	if (SPI_execute_plan(relay_plan_batch, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the outbox failed");
	n = (int) SPI_processed;
	if (n == 0)
	{
		relay_commit();
		relay_commit_confirmed();
		return relay_interval_ms;
	}
	rows = MemoryContextAlloc(relay_cycle_ctx, sizeof(RelayRow) * n);
	relay_copy_rows(rows, true);
	if (notify_ok)
		notified = relay_queue_notifies();

	/* messages too large for NATS go without their config */
	for (i = 0; i < n; i++)
	{
		if (rows[i].body == NULL || (int64) strlen(rows[i].body) <= max_body)
			continue;
		if (strcmp(rows[i].topic, "config") == 0)
		{
			Datum		rev = Int64GetDatum(rows[i].ref_id);

			ereport(WARNING,
					(errmsg("central_hub relay: config revision " INT64_FORMAT " of \"%s\" is larger than the NATS max payload; sending it without the config",
							rows[i].ref_id, rows[i].subject),
					 errdetail("The message carries \"config_omitted\": true; subscribers fetch the config.")));
			if (SPI_execute_plan(relay_plan_omitted_body, &rev, NULL, true, 1) == SPI_OK_SELECT &&
				SPI_processed == 1)
				rows[i].body = relay_text_col(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		}
		else
		{
			ereport(WARNING,
					(errmsg("central_hub relay: %s message " INT64_FORMAT " is larger than the NATS max payload; not sent",
							rows[i].topic, rows[i].ref_id)));
			rows[i].body = NULL;
		}
	}

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
