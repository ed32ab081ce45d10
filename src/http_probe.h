/*-------------------------------------------------------------------------
 * http_probe.h
 *	  Concurrent HTTP health requests with libcurl's multi interface.
 *
 * The only part of central_hub that calls libcurl.  Used by the health
 * worker; the probe waits on the process latch, so signals are served
 * while requests are in flight.
 *-------------------------------------------------------------------------
 */
#ifndef CENTRAL_HUB_HTTP_PROBE_H
#define CENTRAL_HUB_HTTP_PROBE_H

/* Bodies longer than this end the request: health answers are small. */
#define HTTP_PROBE_BODY_CAP		16384

typedef enum HttpProbeOutcome
{
	HTTP_PROBE_RESPONSE,		/* a whole HTTP response: http_status, body */
	HTTP_PROBE_REFUSED,			/* address not allowed: never connected */
	HTTP_PROBE_BODY_TOO_LARGE,	/* body exceeded HTTP_PROBE_BODY_CAP */
	HTTP_PROBE_TIMEOUT,			/* no whole response within the timeout */
	HTTP_PROBE_FAILED			/* any other transport or protocol fault */
} HttpProbeOutcome;

typedef struct HttpProbeRequest
{
	const char *url;			/* protocol://host:port/endpoint */
	const char *host;			/* the registered host (for name entries of
								 * the allow list) */
	bool		https;
} HttpProbeRequest;

typedef struct HttpProbeResult
{
	HttpProbeOutcome outcome;
	long		http_status;	/* 0 when no status line was read */
	const char *body;			/* NUL-terminated; valid during the callback */
	size_t		body_len;
	double		latency_ms;
	const char *error;			/* reason for anything but RESPONSE */
} HttpProbeResult;

/* Called from the probe loop (never from libcurl) as each request ends. */
typedef void (*HttpProbeDone) (int index, const HttpProbeResult *result, void *arg);

extern bool http_probe_allowed_hosts_valid(const char *value, char *errbuf, size_t errlen);
extern void http_probe_run(const HttpProbeRequest *requests, int nrequests,
						   int concurrency, int timeout_ms,
						   const char *allowed_hosts,
						   HttpProbeDone done, void *arg);
extern void http_probe_shutdown(void);

#endif
