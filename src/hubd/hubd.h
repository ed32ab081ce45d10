/*
 * hubd.h: the types shared by hubd's files: options, one HTTP request and
 * its response, and the few server functions the routes call.
 *
 * hubd is the HTTP frontend of central_hub: a stateless translator from the
 * REST API of the seeds to the SQL API in schema hub (see docs/hubd.md).
 */
#ifndef HUBD_H
#define HUBD_H

#include <stdbool.h>
#include <stddef.h>

#include "json.h"
#include "router.h"

#define HUBD_VERSION "1.0.0"

typedef struct HubdOptions
{
	const char *conninfo;		/* --db */
	char		listen_host[64];	/* --listen host part */
	int			listen_port;	/* --listen port part */
	int			threads;		/* --threads: worker threads = connections */
	bool		no_auth;		/* --no-auth: development only */
	char	   *default_key;	/* --default-key-file: key of keyless requests */
	size_t		max_body;		/* --max-body: larger bodies get 413 */
	int			max_wait;		/* --max-wait: long-poll cap in seconds */
	int			poll_interval_ms;	/* --poll-interval: long-poll re-check */
	int			max_waiters;	/* --max-waiters: parked long-polls */
	int			cache_ttl_ms;	/* --cache-ttl: read cache entry age; 0 = off */
} HubdOptions;

extern HubdOptions hubd_options;

/* The longest version string a long-poll compares (longer never matches). */
#define HUBD_VERSION_MAX 64

typedef struct HubRequest
{
	void	   *connection;		/* server.c's MHD connection */
	const char *method;
	RouteMatch	route;
	RouteResult route_result;
	JsonBuf		body;
	bool		body_too_large;
	bool		answered;		/* a response was queued */
	double		started;		/* hubd_now() at arrival */

	/* long-poll (routes_config.c sets, longpoll.c parks and wakes) */
	bool		suspend;		/* the handler asks to park the request */
	double		wait_deadline;	/* hubd_now() time; 0 when not waiting */
	char		wait_version[HUBD_VERSION_MAX + 1];
	bool		wait_for_none;	/* waiting while the service has no config */
	bool		parked;			/* in longpoll's list (under its mutex) */
	struct HubRequest *park_next;
} HubRequest;

typedef struct HubResponse
{
	int			status;
	JsonBuf		body;
	const char *content_type;	/* NULL: application/json */
	char		etag[HUBD_VERSION_MAX + 3]; /* quoted; "" for none */
	const char *allow;
	int			retry_after;	/* seconds; 0 for none */
} HubResponse;

/* server.c */
extern double hubd_now(void);
extern const char *hub_request_header(HubRequest *req, const char *name);
/* 1: found and decoded into out, 0: absent, -1: malformed or too long */
extern int	hub_request_query(HubRequest *req, const char *name,
							  char *out, size_t outsize);
extern void hub_request_suspend(HubRequest *req);
extern void hub_request_resume(HubRequest *req);

/* routes_common.c */
extern void routes_dispatch(HubRequest *req, HubResponse *resp);
extern void routes_error(HubResponse *resp, int status, const char *code,
						 const char *message);

#endif							/* HUBD_H */
