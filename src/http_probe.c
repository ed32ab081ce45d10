/*-------------------------------------------------------------------------
 * http_probe.c
 *	  Concurrent HTTP health requests with libcurl's multi interface; the
 *	  only file of central_hub that calls libcurl.
 *
 * The registered URLs are fetched from inside the database server, and a
 * crash here restarts the whole database, so this file is defensive:
 *	- http and https only, no redirects, no proxies (not even from the
 *	  environment), a connect and a total timeout per request, and a body
 *	  cap counted in our own write callback (libcurl's size limit does not
 *	  stop bodies of unknown length);
 *	- central_hub.health_allowed_hosts is checked in the open-socket
 *	  callback, i.e. against the address the name resolved to, before any
 *	  connection is made;
 *	- libcurl's callbacks run no PostgreSQL code (no palloc, no elog): they
 *	  copy bytes and set flags in our own plain-C slots;
 *	- every call that can start a thread (Debian's libcurl resolves names in
 *	  a thread) runs with all signals blocked, so such threads never run
 *	  PostgreSQL's signal handlers;
 *	- the wait is a WaitEventSet holding the process latch, postmaster death
 *	  and one epoll descriptor that holds libcurl's sockets, so SIGTERM and
 *	  SIGHUP are served at once even while requests hang.
 *
 * The multi handle, its connection pool, the easy handles and their body
 * buffers live for the whole life of the worker, so connections to
 * instances are reused from one cycle to the next.  A change of the allow
 * list drops the pool: those connections were checked against the old one.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "miscadmin.h"
#include "postmaster/interrupt.h"
#include "utils/guc.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "http_probe.h"

#define PROBE_NAME_MAX		253
#define PROBE_WAIT_MAX_MS	200		/* longest sleep without asking libcurl */
#define PROBE_EPOLL_BATCH	64

/* One entry of central_hub.health_allowed_hosts. */
typedef struct ProbeAllowEntry
{
	int			family;			/* AF_INET, AF_INET6, or AF_UNSPEC: a name */
	unsigned char addr[16];
	int			prefix;			/* leading bits that must match */
	bool		suffix;			/* name entry ".example.com" */
	char		name[PROBE_NAME_MAX + 1];	/* lower case */
} ProbeAllowEntry;

/* One easy handle and what its callbacks may touch (plain C only). */
typedef struct ProbeSlot
{
	CURL	   *easy;
	int			index;			/* request being served, -1 when free */
	const char *host;			/* registered host of that request */
	bool		refused;
	char		refused_addr[INET6_ADDRSTRLEN];
	bool		too_large;
	size_t		body_len;
	char	   *body;			/* HTTP_PROBE_BODY_CAP + 1 bytes */
	char		errbuf[CURL_ERROR_SIZE];
} ProbeSlot;

static bool probe_curl_ready = false;
static CURLM *probe_multi = NULL;
static long probe_maxconnects = 0;
static int	probe_epoll_fd = -1;
static WaitEventSet *probe_wait_set = NULL;
static ProbeSlot *probe_slots = NULL;
static int	probe_nslots = 0;
static sigset_t probe_all_signals;

/* The allow list in effect (malloc'd: read by the open-socket callback). */
static ProbeAllowEntry *probe_allow = NULL;
static int	probe_nallow = 0;
static char *probe_allow_text = NULL;

/* libcurl's timer, set by probe_timer_cb */
static bool probe_timer_armed = false;
static int64 probe_timer_deadline = 0;

static char probe_socket_marker;

/* Monotonic milliseconds (plain libc: also used from the timer callback). */
static int64
probe_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Parse one allow-list entry (already trimmed).  Plain C, so the GUC check
 * hook can use it in any process.
 */
static bool
probe_parse_entry(const char *text, ProbeAllowEntry *e, char *errbuf, size_t errlen)
{
	char		buf[PROBE_NAME_MAX + 1];
	const char *slash = strchr(text, '/');
	size_t		len = slash ? (size_t) (slash - text) : strlen(text);
	int			maxbits;

	memset(e, 0, sizeof(*e));
	if (len == 0 || len > PROBE_NAME_MAX)
		goto bad;
	memcpy(buf, text, len);
	buf[len] = '\0';

	if (inet_pton(AF_INET, buf, e->addr) == 1)
	{
		e->family = AF_INET;
		maxbits = 32;
	}
	else if (inet_pton(AF_INET6, buf, e->addr) == 1)
	{
		e->family = AF_INET6;
		maxbits = 128;
	}
	else
	{
		/* a host name, or a domain suffix starting with '.' */
		if (slash != NULL)
			goto bad;
		for (size_t i = 0; i < len; i++)
		{
			char		c = buf[i];

			if (c >= 'A' && c <= 'Z')
				c += 'a' - 'A';
			else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
					   c == '.' || c == '-' || c == '_'))
				goto bad;
			e->name[i] = c;
		}
		e->name[len] = '\0';
		e->family = AF_UNSPEC;
		e->suffix = buf[0] == '.';
		if (e->suffix && len < 2)
			goto bad;
		return true;
	}

	e->prefix = maxbits;
	if (slash != NULL)
	{
		char	   *end;
		long		bits;

		if (slash[1] < '0' || slash[1] > '9')
			goto bad;
		bits = strtol(slash + 1, &end, 10);
		if (*end != '\0' || bits < 0 || bits > maxbits)
			goto bad;
		e->prefix = (int) bits;
	}
	return true;

bad:
	snprintf(errbuf, errlen, "\"%s\" is neither an IP address, a CIDR block nor a host name", text);
	return false;
}

/*
 * Parse a whole comma-separated list into out (NULL: only check); returns
 * the number of entries, or -1 with errbuf filled.
 */
static int
probe_parse_allowed(const char *value, ProbeAllowEntry *out, int max,
					char *errbuf, size_t errlen)
{
	const char *p = value ? value : "";
	int			n = 0;

	while (*p)
	{
		const char *start;
		const char *end;
		char		item[PROBE_NAME_MAX + 8];
		ProbeAllowEntry e;
		size_t		len;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p && *p != ',')
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		len = end - start;
		if (len >= sizeof(item))
		{
			snprintf(errbuf, errlen, "entry \"%.40s...\" is too long", start);
			return -1;
		}
		memcpy(item, start, len);
		item[len] = '\0';
		if (!probe_parse_entry(item, &e, errbuf, errlen))
			return -1;
		if (out != NULL && n < max)
			out[n] = e;
		n++;
	}
	return n;
}

/* For the GUC check hook of central_hub.health_allowed_hosts. */
bool
http_probe_allowed_hosts_valid(const char *value, char *errbuf, size_t errlen)
{
	return probe_parse_allowed(value, NULL, 0, errbuf, errlen) >= 0;
}

/*
 * Is a connection to this resolved address allowed for a request to this
 * registered host?  Called from libcurl's open-socket callback: plain C.
 */
static bool
probe_address_allowed(const struct sockaddr *sa, const char *host)
{
	unsigned char addr[16];
	int			family;

	if (probe_nallow == 0)
		return true;

	if (sa->sa_family == AF_INET)
	{
		memcpy(addr, &((const struct sockaddr_in *) sa)->sin_addr, 4);
		family = AF_INET;
	}
	else if (sa->sa_family == AF_INET6)
	{
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *) sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6))
		{
			memcpy(addr, a6->s6_addr + 12, 4);
			family = AF_INET;
		}
		else
		{
			memcpy(addr, a6->s6_addr, 16);
			family = AF_INET6;
		}
	}
	else
		return false;

	for (int i = 0; i < probe_nallow; i++)
	{
		const ProbeAllowEntry *e = &probe_allow[i];

		if (e->family == AF_UNSPEC)
		{
			size_t		hlen = strlen(host);
			size_t		nlen = strlen(e->name);

			if (!e->suffix && strcasecmp(host, e->name) == 0)
				return true;
			if (e->suffix && hlen > nlen &&
				strcasecmp(host + hlen - nlen, e->name) == 0)
				return true;
		}
		else if (e->family == family)
		{
			int			full = e->prefix / 8;
			int			rest = e->prefix % 8;

			if (memcmp(addr, e->addr, full) != 0)
				continue;
			if (rest != 0)
			{
				unsigned char mask = (unsigned char) (0xff << (8 - rest));

				if ((addr[full] & mask) != (e->addr[full] & mask))
					continue;
			}
			return true;
		}
	}
	return false;
}

/*
 * libcurl callbacks.  None of them may run PostgreSQL code.
 */

/* Open the connection's socket only when its resolved address is allowed. */
static curl_socket_t
probe_open_socket_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	ProbeSlot  *slot = (ProbeSlot *) clientp;

	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKET_BAD;
	if (!probe_address_allowed(&address->addr, slot->host))
	{
		const void *a = NULL;

		if (address->family == AF_INET)
			a = &((struct sockaddr_in *) &address->addr)->sin_addr;
		else if (address->family == AF_INET6)
			a = &((struct sockaddr_in6 *) &address->addr)->sin6_addr;
		slot->refused = true;
		if (a == NULL ||
			inet_ntop(address->family, a, slot->refused_addr, sizeof(slot->refused_addr)) == NULL)
			strcpy(slot->refused_addr, "?");
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

/* Keep the body up to the cap; a longer body ends the transfer. */
static size_t
probe_write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	ProbeSlot  *slot = (ProbeSlot *) userp;
	size_t		n = size * nmemb;

	if (n > HTTP_PROBE_BODY_CAP - slot->body_len)
	{
		slot->too_large = true;
		return 0;
	}
	memcpy(slot->body + slot->body_len, data, n);
	slot->body_len += n;
	return n;
}

/* Keep our epoll set in step with the sockets libcurl wants watched. */
static int
probe_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct epoll_event ev;

	if (what == CURL_POLL_REMOVE)
	{
		(void) epoll_ctl(probe_epoll_fd, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	memset(&ev, 0, sizeof(ev));
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	ev.data.fd = s;
	if (epoll_ctl(probe_epoll_fd, EPOLL_CTL_MOD, s, &ev) != 0 &&
		epoll_ctl(probe_epoll_fd, EPOLL_CTL_ADD, s, &ev) != 0)
		return -1;
	if (socketp == NULL)
		(void) curl_multi_assign(probe_multi, s, &probe_socket_marker);
	return 0;
}

/* Remember when libcurl wants to be called back for its timeouts. */
static int
probe_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	if (timeout_ms < 0)
		probe_timer_armed = false;
	else
	{
		probe_timer_armed = true;
		probe_timer_deadline = probe_now_ms() + timeout_ms;
	}
	return 0;
}

/*
 * Calls into libcurl that may create threads, with every signal blocked.
 */
static void
probe_socket_action(curl_socket_t fd, int flags)
{
	sigset_t	old;
	int			running;

	pthread_sigmask(SIG_SETMASK, &probe_all_signals, &old);
	(void) curl_multi_socket_action(probe_multi, fd, flags, &running);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static CURLMcode
probe_multi_add(CURL *easy)
{
	sigset_t	old;
	CURLMcode	rc;

	pthread_sigmask(SIG_SETMASK, &probe_all_signals, &old);
	rc = curl_multi_add_handle(probe_multi, easy);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

static void
probe_multi_remove(CURL *easy)
{
	sigset_t	old;

	pthread_sigmask(SIG_SETMASK, &probe_all_signals, &old);
	(void) curl_multi_remove_handle(probe_multi, easy);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Take every request still in flight out of the multi handle. */
static void
probe_abort_active(void)
{
	for (int i = 0; i < probe_nslots; i++)
	{
		if (probe_slots[i].index >= 0)
		{
			probe_multi_remove(probe_slots[i].easy);
			probe_slots[i].index = -1;
		}
	}
}

/* Drop the multi handle and with it the pool of open connections. */
static void
probe_drop_multi(void)
{
	sigset_t	old;

	if (probe_multi == NULL)
		return;
	probe_abort_active();
	pthread_sigmask(SIG_SETMASK, &probe_all_signals, &old);
	(void) curl_multi_cleanup(probe_multi);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	probe_multi = NULL;
	probe_maxconnects = 0;
	probe_timer_armed = false;
}

/*
 * Make sure libcurl, the multi handle, the wait set, the allow list and
 * enough slots are ready for a run.
 */
static void
probe_prepare(int concurrency, int nrequests, const char *allowed_hosts)
{
	const char *allowed = allowed_hosts ? allowed_hosts : "";
	long		maxconnects;

	if (!probe_curl_ready)
	{
		sigset_t	old;
		CURLcode	rc;

		sigfillset(&probe_all_signals);
		pthread_sigmask(SIG_SETMASK, &probe_all_signals, &old);
		rc = curl_global_init(CURL_GLOBAL_DEFAULT);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc != CURLE_OK)
			ereport(ERROR,
					(errcode(ERRCODE_SYSTEM_ERROR),
					 errmsg("could not initialize libcurl: %s", curl_easy_strerror(rc))));
		probe_curl_ready = true;
	}

	if (probe_allow_text == NULL || strcmp(probe_allow_text, allowed) != 0)
	{
		char		errbuf[256];
		int			n = probe_parse_allowed(allowed, NULL, 0, errbuf, sizeof(errbuf));
		ProbeAllowEntry *entries;
		char	   *text;

		if (n < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid central_hub.health_allowed_hosts: %s", errbuf)));
		entries = malloc(sizeof(ProbeAllowEntry) * Max(n, 1));
		text = strdup(allowed);
		if (entries == NULL || text == NULL)
		{
			free(entries);
			free(text);
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		}
		(void) probe_parse_allowed(allowed, entries, n, errbuf, sizeof(errbuf));
		probe_drop_multi();
		free(probe_allow);
		free(probe_allow_text);
		probe_allow = entries;
		probe_nallow = n;
		probe_allow_text = text;
	}

	if (probe_epoll_fd < 0)
	{
		probe_epoll_fd = epoll_create1(EPOLL_CLOEXEC);
		if (probe_epoll_fd < 0)
			ereport(ERROR,
					(errcode_for_socket_access(),
					 errmsg("could not create epoll descriptor: %m")));
	}
	if (probe_wait_set == NULL)
	{
		probe_wait_set = CreateWaitEventSet(TopMemoryContext, 3);
		AddWaitEventToSet(probe_wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(probe_wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		AddWaitEventToSet(probe_wait_set, WL_SOCKET_READABLE, probe_epoll_fd, NULL, NULL);
	}

	if (probe_multi == NULL)
	{
		probe_multi = curl_multi_init();
		if (probe_multi == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create a libcurl multi handle")));
		curl_multi_setopt(probe_multi, CURLMOPT_SOCKETFUNCTION, probe_socket_cb);
		curl_multi_setopt(probe_multi, CURLMOPT_TIMERFUNCTION, probe_timer_cb);
	}
	/*
	 * Pool a connection per instance, within reason: at most half the
	 * descriptors this process may open, the requests in flight included.
	 */
	maxconnects = Max(concurrency, Min(nrequests, 1024));
	{
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
			maxconnects = Max(1, Min(maxconnects, (long) rl.rlim_cur / 2 - concurrency));
	}
	if (maxconnects != probe_maxconnects)
	{
		curl_multi_setopt(probe_multi, CURLMOPT_MAXCONNECTS, maxconnects);
		probe_maxconnects = maxconnects;
	}

	if (concurrency > probe_nslots)
	{
		ProbeSlot  *slots = realloc(probe_slots, sizeof(ProbeSlot) * concurrency);

		if (slots == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		probe_slots = slots;
		while (probe_nslots < concurrency)
		{
			ProbeSlot  *slot = &probe_slots[probe_nslots];

			memset(slot, 0, sizeof(*slot));
			slot->index = -1;
			slot->easy = curl_easy_init();
			slot->body = malloc(HTTP_PROBE_BODY_CAP + 1);
			if (slot->easy == NULL || slot->body == NULL)
			{
				if (slot->easy)
					curl_easy_cleanup(slot->easy);
				free(slot->body);
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
			}
			probe_nslots++;
		}
	}
}

#define PROBE_SET(opt, val) \
	do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val); } while (0)

/*
 * Set up a slot's easy handle for one request and hand it to the multi
 * handle; false when that failed.
 */
static bool
probe_slot_start(ProbeSlot *slot, int index, const HttpProbeRequest *req, int timeout_ms)
{
	CURL	   *e = slot->easy;
	CURLcode	rc = CURLE_OK;
	const char *protocols = req->https ? "https" : "http";

	curl_easy_reset(e);
	slot->host = req->host;
	slot->refused = false;
	slot->refused_addr[0] = '\0';
	slot->too_large = false;
	slot->body_len = 0;
	slot->errbuf[0] = '\0';

	PROBE_SET(CURLOPT_URL, req->url);
	PROBE_SET(CURLOPT_PRIVATE, slot);
	PROBE_SET(CURLOPT_ERRORBUFFER, slot->errbuf);
	PROBE_SET(CURLOPT_NOSIGNAL, 1L);
	PROBE_SET(CURLOPT_PROTOCOLS_STR, protocols);
	PROBE_SET(CURLOPT_REDIR_PROTOCOLS_STR, protocols);
	PROBE_SET(CURLOPT_FOLLOWLOCATION, 0L);
	PROBE_SET(CURLOPT_PROXY, "");
	PROBE_SET(CURLOPT_HTTPGET, 1L);
	PROBE_SET(CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
	PROBE_SET(CURLOPT_USERAGENT, "central_hub-health/1.0");
	PROBE_SET(CURLOPT_TIMEOUT_MS, (long) timeout_ms);
	PROBE_SET(CURLOPT_CONNECTTIMEOUT_MS, (long) timeout_ms);
	PROBE_SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) HTTP_PROBE_BODY_CAP);
	PROBE_SET(CURLOPT_WRITEFUNCTION, probe_write_cb);
	PROBE_SET(CURLOPT_WRITEDATA, slot);
	PROBE_SET(CURLOPT_OPENSOCKETFUNCTION, probe_open_socket_cb);
	PROBE_SET(CURLOPT_OPENSOCKETDATA, slot);
	if (rc != CURLE_OK)
	{
		snprintf(slot->errbuf, sizeof(slot->errbuf), "%s", curl_easy_strerror(rc));
		return false;
	}
	if (probe_multi_add(e) != CURLM_OK)
	{
		snprintf(slot->errbuf, sizeof(slot->errbuf), "could not add the request to the multi handle");
		return false;
	}
	slot->index = index;
	return true;
}

/*
 * A request ended (or could not start): say why, free the slot, and hand
 * the result to the caller's callback.
 */
static void
probe_finish(ProbeSlot *slot, int index, CURLcode code, bool started,
			 int timeout_ms, HttpProbeDone done, void *arg)
{
	HttpProbeResult r;
	char		reason[CURL_ERROR_SIZE + 128];
	curl_off_t	total_us = 0;

	memset(&r, 0, sizeof(r));
	reason[0] = '\0';
	if (started)
	{
		curl_easy_getinfo(slot->easy, CURLINFO_RESPONSE_CODE, &r.http_status);
		curl_easy_getinfo(slot->easy, CURLINFO_TOTAL_TIME_T, &total_us);
	}
	r.latency_ms = (double) total_us / 1000.0;
	slot->body[slot->body_len] = '\0';
	r.body = slot->body;
	r.body_len = slot->body_len;

	if (!started)
	{
		r.outcome = HTTP_PROBE_FAILED;
		snprintf(reason, sizeof(reason), "request not started: %s", slot->errbuf);
	}
	else if (code == CURLE_OK)
		r.outcome = HTTP_PROBE_RESPONSE;
	else if (slot->too_large || code == CURLE_FILESIZE_EXCEEDED)
	{
		r.outcome = HTTP_PROBE_BODY_TOO_LARGE;
		snprintf(reason, sizeof(reason), "response body larger than %d bytes",
				 HTTP_PROBE_BODY_CAP);
	}
	else if (slot->refused)
	{
		r.outcome = HTTP_PROBE_REFUSED;
		snprintf(reason, sizeof(reason),
				 "address %s is not in central_hub.health_allowed_hosts",
				 slot->refused_addr);
	}
	else if (code == CURLE_OPERATION_TIMEDOUT)
	{
		r.outcome = HTTP_PROBE_TIMEOUT;
		snprintf(reason, sizeof(reason), "timeout: no complete answer within %d ms",
				 timeout_ms);
	}
	else
	{
		r.outcome = HTTP_PROBE_FAILED;
		snprintf(reason, sizeof(reason), "%s%s%s", curl_easy_strerror(code),
				 slot->errbuf[0] ? ": " : "", slot->errbuf);
	}
	r.error = reason[0] ? reason : NULL;

	if (started)
		probe_multi_remove(slot->easy);
	slot->index = -1;
	done(index, &r, arg);
}

/*
 * The loop of http_probe_run: start requests into free slots, sleep on the
 * latch and libcurl's sockets and timer, finish what ended.
 */
static void
probe_loop(const HttpProbeRequest *requests, int nrequests, int concurrency,
		   int timeout_ms, HttpProbeDone done, void *arg)
{
	int			next = 0;
	int			finished = 0;

	while (finished < nrequests)
	{
		struct epoll_event events[PROBE_EPOLL_BATCH];
		WaitEvent	ev;
		CURLMsg    *msg;
		int			left;
		int			nready;
		int			nev;
		long		wait_ms;

		/* fill the free slots */
		for (int s = 0; s < concurrency && next < nrequests; s++)
		{
			ProbeSlot  *slot = &probe_slots[s];

			if (slot->index >= 0)
				continue;
			if (!probe_slot_start(slot, next, &requests[next], timeout_ms))
			{
				probe_finish(slot, next, CURLE_OK, false, timeout_ms, done, arg);
				finished++;
			}
			next++;
		}
		if (finished >= nrequests)
			break;

		/* sleep until a socket is ready, libcurl's timer, or the latch */
		wait_ms = PROBE_WAIT_MAX_MS;
		if (probe_timer_armed)
			wait_ms = Max(0, Min(wait_ms, probe_timer_deadline - probe_now_ms()));
		nev = WaitEventSetWait(probe_wait_set, wait_ms, &ev, 1, PG_WAIT_EXTENSION);
		if (nev > 0 && (ev.events & WL_LATCH_SET))
		{
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
			/* served at once; new settings apply from the next cycle */
			if (ConfigReloadPending)
			{
				ConfigReloadPending = false;
				ProcessConfigFile(PGC_SIGHUP);
			}
		}

		nready = epoll_wait(probe_epoll_fd, events, PROBE_EPOLL_BATCH, 0);
		for (int i = 0; i < nready; i++)
		{
			int			flags = 0;

			if (events[i].events & EPOLLIN)
				flags |= CURL_CSELECT_IN;
			if (events[i].events & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (events[i].events & (EPOLLERR | EPOLLHUP))
				flags |= CURL_CSELECT_ERR;
			probe_socket_action(events[i].data.fd, flags);
		}
		/* libcurl's timer expired, or we slept the longest: let it check */
		if ((probe_timer_armed && probe_now_ms() >= probe_timer_deadline) ||
			(nev == 0 && nready <= 0))
		{
			probe_timer_armed = false;
			probe_socket_action(CURL_SOCKET_TIMEOUT, 0);
		}

		while ((msg = curl_multi_info_read(probe_multi, &left)) != NULL)
		{
			ProbeSlot  *slot = NULL;
			CURL	   *easy = msg->easy_handle;
			CURLcode	code = msg->data.result;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &slot);
			if (slot == NULL || slot->index < 0)
				continue;
			probe_finish(slot, slot->index, code, true, timeout_ms, done, arg);
			finished++;
		}
	}
}

/*
 * Run every request, at most `concurrency` at a time, each bounded by
 * timeout_ms, calling done() as each ends.  Returns when all have ended;
 * SIGTERM ends the process from here (CHECK_FOR_INTERRUPTS), and an ERROR
 * leaves the multi handle empty.
 */
void
http_probe_run(const HttpProbeRequest *requests, int nrequests,
			   int concurrency, int timeout_ms, const char *allowed_hosts,
			   HttpProbeDone done, void *arg)
{
	if (nrequests <= 0)
		return;
	probe_prepare(concurrency, nrequests, allowed_hosts);

	PG_TRY();
	{
		probe_loop(requests, nrequests, concurrency, timeout_ms, done, arg);
	}
	PG_CATCH();
	{
		probe_abort_active();
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * Release every libcurl resource (before_shmem_exit of the worker).
 */
void
http_probe_shutdown(void)
{
	sigset_t	old;

	if (!probe_curl_ready)
		return;
	probe_drop_multi();
	pthread_sigmask(SIG_SETMASK, &probe_all_signals, &old);
	for (int i = 0; i < probe_nslots; i++)
	{
		curl_easy_cleanup(probe_slots[i].easy);
		free(probe_slots[i].body);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	free(probe_slots);
	probe_slots = NULL;
	probe_nslots = 0;
	free(probe_allow);
	probe_allow = NULL;
	probe_nallow = 0;
	free(probe_allow_text);
	probe_allow_text = NULL;
	if (probe_wait_set != NULL)
	{
		FreeWaitEventSet(probe_wait_set);
		probe_wait_set = NULL;
	}
	if (probe_epoll_fd >= 0)
	{
		close(probe_epoll_fd);
		probe_epoll_fd = -1;
	}
}
