/*-------------------------------------------------------------------------
 * nats_client.c
 *	  The relay worker's connection to NATS; the only file that calls cnats.
 *
 * cnats runs its own threads (flusher, reconnect, timers, callbacks).  Those
 * threads must never run PostgreSQL's signal handlers, so every call that
 * may start one runs with all signals blocked and the threads inherit the
 * full mask.  Callbacks run in those threads and only set the worker's
 * latch (SetLatch is safe there) or bump an atomic counter: no palloc, no
 * elog, no SPI.
 *
 * Delivery is only ever reported after NATS confirmed it: a publish that
 * cnats merely buffered (for instance in its reconnect buffer) is not
 * delivered, and a batch whose connection was re-established between
 * publish and confirmation is reported as failed, since the old socket may
 * have lost its tail.  The caller keeps the outbox rows and sends again:
 * at least once.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <pthread.h>
#include <signal.h>

#include <nats/nats.h>

#include "port/atomics.h"
#include "utils/memutils.h"

#include "nats_client.h"

/* Connect timeout per server; short so that a blackholed server cannot
 * delay shutdown for long (signals are blocked during the attempt). */
#define NATS_CLIENT_CONNECT_TIMEOUT_MS	2000
/* Reconnect backoff: doubles from the first delay up to the cap. */
#define NATS_CLIENT_BACKOFF_FIRST_MS	100
#define NATS_CLIENT_BACKOFF_MAX_MS		2000
/* Dead peers are noticed after MAX_PINGS_OUT unanswered pings. */
#define NATS_CLIENT_PING_INTERVAL_MS	5000
#define NATS_CLIENT_MAX_PINGS_OUT		2

struct NatsClient
{
	natsConnection *conn;
	natsOptions *opts;
	jsCtx	   *js;				/* NULL: core NATS, confirmed by flush */
	natsStatistics *stats;
};

/*
 * State shared with cnats threads.  The latch pointer is the worker's
 * MyLatch and lives as long as the process; the JetStream counters are
 * reset before each batch.
 */
static Latch *volatile nats_wake_latch = NULL;
static volatile bool nats_callbacks_enabled = false;
static pg_atomic_uint32 nats_js_failures;
static pg_atomic_uint32 nats_js_last_status;
static bool nats_atomics_ready = false;

/* Blocking every signal around calls that may create library threads. */
#define NATS_BLOCK_SIGNALS(old) \
	do { \
		sigset_t	nats_all_; \
		sigfillset(&nats_all_); \
		pthread_sigmask(SIG_BLOCK, &nats_all_, &(old)); \
	} while (0)
#define NATS_RESTORE_SIGNALS(old) \
	pthread_sigmask(SIG_SETMASK, &(old), NULL)

/*
 * Connection state changed (connected, disconnected, reconnected): wake the
 * worker so that it notices at once.  Runs in a cnats thread.
 */
static void
nats_client_state_changed(natsConnection *nc, void *closure)
{
	Latch	   *latch = nats_wake_latch;

	if (nats_callbacks_enabled && latch != NULL)
		SetLatch(latch);
}

/*
 * Delay before the next round of reconnect attempts: exponential backoff
 * with a cap, forever.  Runs in the reconnect thread; arithmetic only.
 */
static int64_t
nats_client_reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
	int64_t		delay = NATS_CLIENT_BACKOFF_FIRST_MS;

	while (attempts-- > 1 && delay < NATS_CLIENT_BACKOFF_MAX_MS)
		delay *= 2;
	return Min(delay, NATS_CLIENT_BACKOFF_MAX_MS);
}

/*
 * A JetStream publish was refused or not acknowledged in time.  Runs in a
 * cnats thread; counts the failure for the batch in progress.
 */
static void
nats_client_js_failed(jsCtx *js, jsPubAckErr *pae, void *closure)
{
	pg_atomic_fetch_add_u32(&nats_js_failures, 1);
	pg_atomic_write_u32(&nats_js_last_status, (uint32) pae->Err);
}

/*
 * Copies cnats's description of a failure into errbuf.
 */
static void
nats_client_error(char *errbuf, size_t errlen, const char *what, natsStatus s)
{
	natsStatus	ignored;
	const char *detail = nats_GetLastError(&ignored);

	if (detail != NULL && detail[0] != '\0' && strcmp(detail, natsStatus_GetText(s)) != 0)
		snprintf(errbuf, errlen, "%s: %s (%s)", what, natsStatus_GetText(s), detail);
	else
		snprintf(errbuf, errlen, "%s: %s", what, natsStatus_GetText(s));
}

/*
 * Creates a client for the comma-separated server list urls and starts
 * connecting in the background (a server that is down is retried forever).
 * stream non-empty selects JetStream publishing.  Returns NULL with errbuf
 * set when the settings are unusable (for instance a malformed URL).
 */
NatsClient *
nats_client_open(const char *urls, const char *stream, Latch *latch,
				 char *errbuf, size_t errlen)
{
	NatsClient *client;
	char	   *copy;
	char	   *servers[64];
	int			nservers = 0;
	char	   *tok;
	char	   *save = NULL;
	natsStatus	s;
	sigset_t	old;

	copy = pstrdup(urls);
	for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
	{
		while (*tok == ' ' || *tok == '\t')
			tok++;
		if (*tok == '\0')
			continue;
		if (nservers == lengthof(servers))
		{
			snprintf(errbuf, errlen, "central_hub.nats_url lists more than %d servers",
					 (int) lengthof(servers));
			pfree(copy);
			return NULL;
		}
		servers[nservers++] = tok;
		/* trailing blanks */
		tok += strlen(tok);
		while (tok > servers[nservers - 1] && (tok[-1] == ' ' || tok[-1] == '\t'))
			*--tok = '\0';
	}
	if (nservers == 0)
	{
		snprintf(errbuf, errlen, "central_hub.nats_url names no server");
		pfree(copy);
		return NULL;
	}

	if (!nats_atomics_ready)
	{
		pg_atomic_init_u32(&nats_js_failures, 0);
		pg_atomic_init_u32(&nats_js_last_status, 0);
		nats_atomics_ready = true;
	}
	nats_wake_latch = latch;
	nats_callbacks_enabled = true;

	client = MemoryContextAllocZero(TopMemoryContext, sizeof(NatsClient));

	NATS_BLOCK_SIGNALS(old);
	s = natsOptions_Create(&client->opts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(client->opts, (const char **) servers, nservers);
	if (s == NATS_OK)
		s = natsOptions_SetName(client->opts, "central_hub relay");
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(client->opts, NATS_CLIENT_CONNECT_TIMEOUT_MS);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(client->opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetCustomReconnectDelay(client->opts,
												nats_client_reconnect_delay, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(client->opts, true,
												nats_client_state_changed, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(client->opts,
										  nats_client_state_changed, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(client->opts,
										 nats_client_state_changed, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(client->opts, NATS_CLIENT_PING_INTERVAL_MS);
	if (s == NATS_OK)
		s = natsOptions_SetMaxPingsOut(client->opts, NATS_CLIENT_MAX_PINGS_OUT);
	if (s == NATS_OK)
		s = natsStatistics_Create(&client->stats);
	if (s == NATS_OK)
	{
		s = natsConnection_Connect(&client->conn, client->opts);
		if (s == NATS_NOT_YET_CONNECTED)
			s = NATS_OK;		/* connecting in the background */
	}
	if (s == NATS_OK && stream != NULL && stream[0] != '\0')
	{
		jsOptions	jo;

		jsOptions_Init(&jo);
		jo.PublishAsync.ErrHandler = nats_client_js_failed;
		s = natsConnection_JetStream(&client->js, client->conn, &jo);
	}
	if (s != NATS_OK)
		nats_client_error(errbuf, errlen, "could not set up the NATS connection", s);
	NATS_RESTORE_SIGNALS(old);

	pfree(copy);
	if (s != NATS_OK)
	{
		nats_client_close(client);
		return NULL;
	}
	return client;
}

/*
 * True when the connection is up (publishing would reach a server).
 */
bool
nats_client_connected(NatsClient *client)
{
	return client != NULL && client->conn != NULL &&
		natsConnection_Status(client->conn) == NATS_CONN_STATUS_CONNECTED;
}

/*
 * The largest message the connected server accepts (0 when unknown).
 */
int64
nats_client_max_payload(NatsClient *client)
{
	if (!nats_client_connected(client))
		return 0;
	return natsConnection_GetMaxPayload(client->conn);
}

/* Reconnections so far, to detect one during a batch. */
static uint64_t
nats_client_reconnects(NatsClient *client)
{
	uint64_t	reconnects = 0;

	if (natsConnection_GetStats(client->conn, client->stats) == NATS_OK)
		natsStatistics_GetCounts(client->stats, NULL, NULL, NULL, NULL, &reconnects);
	return reconnects;
}

/*
 * Publishes count messages in order and waits at most timeout_ms for NATS
 * to confirm all of them.  True only when every message is confirmed; on
 * false, errbuf says why and any of them may or may not have arrived.
 */
bool
nats_client_publish_batch(NatsClient *client, const NatsClientMessage *msgs,
						  int count, int timeout_ms, char *errbuf, size_t errlen)
{
	natsStatus	s = NATS_OK;
	uint64_t	reconnects;
	sigset_t	old;
	int			i;

	if (!nats_client_connected(client))
	{
		snprintf(errbuf, errlen, "not connected to NATS");
		return false;
	}
	reconnects = nats_client_reconnects(client);

	if (client->js == NULL)
	{
		for (i = 0; i < count && s == NATS_OK; i++)
			s = natsConnection_Publish(client->conn, msgs[i].subject,
									   msgs[i].body, msgs[i].body_len);
		if (s != NATS_OK)
		{
			nats_client_error(errbuf, errlen, "NATS publish failed", s);
			return false;
		}
		s = natsConnection_FlushTimeout(client->conn, timeout_ms);
		if (s != NATS_OK)
		{
			nats_client_error(errbuf, errlen, "NATS did not confirm the batch", s);
			return false;
		}
	}
	else
	{
		jsPubOptions po;
		uint32		failures;

		pg_atomic_write_u32(&nats_js_failures, 0);

		/* the first async publish starts the ack subscription's thread */
		NATS_BLOCK_SIGNALS(old);
		for (i = 0; i < count && s == NATS_OK; i++)
		{
			jsPubOptions_Init(&po);
			po.MsgId = msgs[i].msg_id;
			s = js_PublishAsync(client->js, msgs[i].subject,
								msgs[i].body, msgs[i].body_len, &po);
		}
		if (s != NATS_OK)
			nats_client_error(errbuf, errlen, "JetStream publish failed", s);

		jsPubOptions_Init(&po);
		po.MaxWait = timeout_ms;
		if (js_PublishAsyncComplete(client->js, &po) != NATS_OK)
		{
			natsMsgList pending;

			/* give up on the stragglers: the whole batch will be resent */
			if (js_PublishAsyncGetPendingList(&pending, client->js) == NATS_OK)
				natsMsgList_Destroy(&pending);
			if (s == NATS_OK)
			{
				snprintf(errbuf, errlen,
						 "JetStream did not acknowledge the batch within %d ms", timeout_ms);
				s = NATS_TIMEOUT;
			}
		}
		NATS_RESTORE_SIGNALS(old);
		if (s != NATS_OK)
			return false;

		failures = pg_atomic_read_u32(&nats_js_failures);
		if (failures > 0)
		{
			snprintf(errbuf, errlen, "JetStream refused %u of %d messages: %s",
					 failures, count,
					 natsStatus_GetText((natsStatus) pg_atomic_read_u32(&nats_js_last_status)));
			return false;
		}
	}

	if (nats_client_reconnects(client) != reconnects)
	{
		snprintf(errbuf, errlen, "the NATS connection was re-established during the batch");
		return false;
	}
	return true;
}

/*
 * Closes the connection and releases the client.  Safe on a half-built
 * client and in before_shmem_exit callbacks.
 */
void
nats_client_close(NatsClient *client)
{
	sigset_t	old;

	if (client == NULL)
		return;
	nats_callbacks_enabled = false;
	NATS_BLOCK_SIGNALS(old);
	if (client->js != NULL)
		jsCtx_Destroy(client->js);
	if (client->conn != NULL)
		natsConnection_Destroy(client->conn);
	if (client->opts != NULL)
		natsOptions_Destroy(client->opts);
	if (client->stats != NULL)
		natsStatistics_Destroy(client->stats);
	NATS_RESTORE_SIGNALS(old);
	pfree(client);
}
