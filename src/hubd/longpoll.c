/*
 * longpoll.c: the long-poll listener of hubd (see longpoll.h).
 *
 * One thread with its own connection runs LISTEN hub_config.  The relay
 * worker sends NOTIFY hub_config {"service_name","version","revision",
 * "action"} after every committed change: the parked requests of that
 * service are resumed and re-read the config (in their worker thread, with
 * their own API key), answering if the version differs and parking again
 * if not.  Independently of NOTIFY, every --poll-interval the thread reads
 * the current versions of the services with parked requests and resumes
 * those that changed, so long-polls stay correct (just slower) without the
 * relay, with NOTIFY lost, or while the listen connection is down; and it
 * resumes requests whose deadline passed.
 *
 *   loop: poll(listen socket, wake pipe; timeout = next re-check/deadline)
 *         -> notifications: resume the service's parked requests
 *         -> re-check due:  versions of parked services; resume changed
 *         -> resume expired
 *         connection lost -> reconnect every second, then re-check at once
 *
 * The same connection LISTENs on hub_api_keys and keeps hubd's read cache
 * (cache.c) true: hub_config notifications drop the service's cached
 * answer, hub_api_keys ones the cached keys, and the cache is armed only
 * while this connection listens and the relay worker (which sends the
 * hub_config notifications) serves this database, checked every second.
 */
#include "longpoll.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "log.h"
#include "metrics.h"

/* While the listen connection is down, it is retried this often (seconds). */
#define LONGPOLL_RECONNECT_INTERVAL 1.0
/* How often the listener checks that the relay serves this database. */
#define LONGPOLL_RELAY_CHECK_INTERVAL 1.0

static pthread_mutex_t longpoll_mutex = PTHREAD_MUTEX_INITIALIZER;
static HubRequest *longpoll_head;	/* parked requests */
static int	longpoll_count;
static bool longpoll_closed;
static int	longpoll_pipe[2] = {-1, -1};
static pthread_t longpoll_thread;
static bool longpoll_running;
static const char *longpoll_conninfo;

bool
longpoll_park(HubRequest *req)
{
	bool		parked = false;

	pthread_mutex_lock(&longpoll_mutex);
	if (!longpoll_closed && longpoll_count < hubd_options.max_waiters)
	{
		req->park_next = longpoll_head;
		longpoll_head = req;
		longpoll_count++;
		req->parked = true;
		/* suspended under the mutex, so no wake can come before it */
		hub_request_suspend(req);
		parked = true;
	}
	pthread_mutex_unlock(&longpoll_mutex);
	if (parked)
	{
		metrics_waiters_add(1);
		/* let the thread shorten its timeout to this deadline */
		if (write(longpoll_pipe[1], "p", 1) < 0)
			return true;
	}
	return parked;
}

/* Unlinks req; the caller holds the mutex. */
static void
longpoll_unlink(HubRequest *req)
{
	HubRequest **p;

	for (p = &longpoll_head; *p; p = &(*p)->park_next)
	{
		if (*p == req)
		{
			*p = req->park_next;
			req->parked = false;
			req->park_next = NULL;
			longpoll_count--;
			metrics_waiters_add(-1);
			return;
		}
	}
}

void
longpoll_unpark(HubRequest *req)
{
	pthread_mutex_lock(&longpoll_mutex);
	if (req->parked)
		longpoll_unlink(req);
	pthread_mutex_unlock(&longpoll_mutex);
}

/* Resumes req (unlinked first); the caller holds the mutex. */
static void
longpoll_wake(HubRequest *req)
{
	longpoll_unlink(req);
	hub_request_resume(req);
}

/* Resumes every request parked on service (all of them when NULL). */
static void
longpoll_wake_service(const char *service)
{
	HubRequest *req,
			   *next;

	pthread_mutex_lock(&longpoll_mutex);
	for (req = longpoll_head; req; req = next)
	{
		next = req->park_next;
		if (service == NULL || strcmp(req->route.service, service) == 0)
			longpoll_wake(req);
	}
	pthread_mutex_unlock(&longpoll_mutex);
}

/* Resumes expired requests; returns the earliest remaining deadline (or 0). */
static double
longpoll_wake_expired(double now)
{
	HubRequest *req,
			   *next;
	double		earliest = 0;

	pthread_mutex_lock(&longpoll_mutex);
	for (req = longpoll_head; req; req = next)
	{
		next = req->park_next;
		if (req->wait_deadline <= now)
			longpoll_wake(req);
		else if (earliest == 0 || req->wait_deadline < earliest)
			earliest = req->wait_deadline;
	}
	pthread_mutex_unlock(&longpoll_mutex);
	return earliest;
}

/* Appends s to an array literal element, quoted and escaped. */
static void
longpoll_array_add(JsonBuf *lit, const char *s)
{
	jsonbuf_puts(lit, lit->len > 1 ? ",\"" : "\"");
	for (; *s; s++)
	{
		if (*s == '"' || *s == '\\')
			jsonbuf_append(lit, "\\", 1);
		jsonbuf_append(lit, s, 1);
	}
	jsonbuf_puts(lit, "\"");
}

/*
 * The timer path: reads the versions of every service with parked
 * requests and resumes the requests whose service's state differs from
 * what they wait on.
 */
static void
longpoll_recheck(PGconn *conn)
{
	JsonBuf		lit;
	HubRequest *req,
			   *next;
	PGresult   *res;
	const char *params[1];

	jsonbuf_init(&lit);
	jsonbuf_puts(&lit, "{");
	pthread_mutex_lock(&longpoll_mutex);
	for (req = longpoll_head; req; req = req->park_next)
		longpoll_array_add(&lit, req->route.service);
	pthread_mutex_unlock(&longpoll_mutex);
	jsonbuf_puts(&lit, "}");
	if (lit.failed || lit.len <= 2)
	{
		jsonbuf_free(&lit);
		return;
	}
	params[0] = lit.data;
	res = PQexecParams(conn,
					   "SELECT service_name, version FROM hub.service_configs"
					   " WHERE service_name = ANY ($1::text[])",
					   1, NULL, params, NULL, NULL, 0);
	jsonbuf_free(&lit);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		hubd_log(LOG_WARNING, "long-poll re-check failed: %s",
				 PQresultErrorMessage(res));
		PQclear(res);
		return;
	}
	pthread_mutex_lock(&longpoll_mutex);
	for (req = longpoll_head; req; req = next)
	{
		const char *current = NULL;

		next = req->park_next;
		for (int i = 0; i < PQntuples(res); i++)
			if (strcmp(PQgetvalue(res, i, 0), req->route.service) == 0)
				current = PQgetvalue(res, i, 1);
		if (current == NULL ? !req->wait_for_none :
			(req->wait_for_none || strcmp(current, req->wait_version) != 0))
			longpoll_wake(req);
	}
	pthread_mutex_unlock(&longpoll_mutex);
	PQclear(res);
}

static PGconn *
longpoll_connect(void)
{
	const char *const keys[] = {"application_name", "connect_timeout", "dbname", NULL};
	const char *const values[] = {"hubd-longpoll", "5", longpoll_conninfo, NULL};
	PGconn	   *conn = PQconnectdbParams(keys, values, 1);
	PGresult   *res;

	if (PQstatus(conn) != CONNECTION_OK)
	{
		PQfinish(conn);
		return NULL;
	}
	res = PQexec(conn, "LISTEN hub_config; LISTEN hub_api_keys");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	hubd_log(LOG_INFO, "long-poll listener connected (LISTEN hub_config)");
	return conn;
}

/*
 * True when the relay worker runs for this database, so that every
 * committed config change will be notified on hub_config.
 */
static bool
longpoll_relay_serves(PGconn *conn)
{
	PGresult   *res = PQexec(conn,
							 "SELECT coalesce(pid IS NOT NULL AND"
							 " current_setting('central_hub.database', true)"
							 " = current_database(), false)"
							 " FROM hub.relay_worker_status()");
	bool		serves = PQresultStatus(res) == PGRES_TUPLES_OK &&
		PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;

	PQclear(res);
	return serves;
}

/*
 * Acts on pending notifications: drops cached answers and keys, resumes
 * the parked requests of the services named.
 */
static void
longpoll_drain_notifications(PGconn *conn)
{
	PGnotify   *n;
	char		service[ROUTER_SEGMENT_MAX + 1];

	while ((n = PQnotifies(conn)) != NULL)
	{
		if (strcmp(n->relname, "hub_api_keys") == 0)
			cache_keys_invalidate();
		else if (json_top_level_string(n->extra, strlen(n->extra), "service_name",
									   service, sizeof(service)))
		{
			cache_config_invalidate(service);
			longpoll_wake_service(service);
		}
		else
		{
			/* unknown payload: re-read all */
			cache_config_invalidate(NULL);
			longpoll_wake_service(NULL);
		}
		PQfreemem(n);
	}
}

static void *
longpoll_main(void *arg)
{
	PGconn	   *conn = NULL;
	double		next_check = 0;
	double		next_connect = 0;
	double		next_relay_check = 0;
	double		interval = hubd_options.poll_interval_ms / 1000.0;

	for (;;)
	{
		struct pollfd fds[2];
		int			nfds = 1;
		double		now = hubd_now();
		double		earliest;
		double		until;
		char		drain[64];

		pthread_mutex_lock(&longpoll_mutex);
		if (longpoll_closed)
		{
			pthread_mutex_unlock(&longpoll_mutex);
			break;
		}
		pthread_mutex_unlock(&longpoll_mutex);

		if (conn == NULL && now >= next_connect)
		{
			conn = longpoll_connect();
			next_connect = now + LONGPOLL_RECONNECT_INTERVAL;
			if (conn != NULL)
			{
				next_check = 0; /* changes may have been missed meanwhile */
				next_relay_check = 0;
			}
		}
		if (conn != NULL && now >= next_relay_check)
		{
			cache_arm(longpoll_relay_serves(conn));
			next_relay_check = now + LONGPOLL_RELAY_CHECK_INTERVAL;
			/* notifications that arrived with the answer wait in libpq */
			longpoll_drain_notifications(conn);
		}

		earliest = longpoll_wake_expired(now);
		if (now >= next_check)
		{
			if (conn != NULL && longpoll_count > 0)
			{
				longpoll_recheck(conn);
				longpoll_drain_notifications(conn);
			}
			next_check = now + interval;
		}
		until = next_check;
		if (earliest > 0 && earliest < until)
			until = earliest;
		if (conn == NULL && next_connect < until)
			until = next_connect;
		if (conn != NULL && next_relay_check < until)
			until = next_relay_check;

		fds[0].fd = longpoll_pipe[0];
		fds[0].events = POLLIN;
		if (conn != NULL)
		{
			fds[1].fd = PQsocket(conn);
			fds[1].events = POLLIN;
			nfds = 2;
		}
		if (poll(fds, nfds, (int) ((until - now) * 1000) + 1) < 0)
			continue;
		while (read(longpoll_pipe[0], drain, sizeof(drain)) > 0)
			;
		if (conn != NULL && nfds == 2 && fds[1].revents)
		{
			if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK)
			{
				hubd_log(LOG_WARNING, "long-poll listener lost its connection: %s",
						 PQerrorMessage(conn));
				cache_arm(false);
				PQfinish(conn);
				conn = NULL;
				next_connect = 0;
				continue;
			}
			longpoll_drain_notifications(conn);
		}
	}
	cache_arm(false);
	if (conn)
		PQfinish(conn);
	return NULL;
}

bool
longpoll_start(const char *conninfo)
{
	longpoll_conninfo = conninfo;
	if (pipe(longpoll_pipe) != 0)
		return false;
	fcntl(longpoll_pipe[0], F_SETFL, O_NONBLOCK);
	fcntl(longpoll_pipe[1], F_SETFL, O_NONBLOCK);
	if (pthread_create(&longpoll_thread, NULL, longpoll_main, NULL) != 0)
		return false;
	longpoll_running = true;
	return true;
}

void
longpoll_stop(void)
{
	pthread_mutex_lock(&longpoll_mutex);
	longpoll_closed = true;
	pthread_mutex_unlock(&longpoll_mutex);
	if (longpoll_running)
	{
		if (write(longpoll_pipe[1], "q", 1) < 0)
			hubd_log(LOG_WARNING, "could not wake the long-poll listener");
		pthread_join(longpoll_thread, NULL);
		longpoll_running = false;
	}
	longpoll_wake_service(NULL);
}
