/*
 * router.h: maps an HTTP method and raw (still percent-encoded) path to one
 * of hubd's routes, and decodes percent-encoding strictly.
 *
 * Pure functions without I/O or global state, so that the fuzz target
 * (fuzz/hubd_fuzz.c) can drive them directly.
 */
#ifndef HUBD_ROUTER_H
#define HUBD_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

/* Longest decoded path segment (service name, instance id) accepted. */
#define ROUTER_SEGMENT_MAX 256

typedef enum RouteId
{
	ROUTE_NONE = 0,				/* unknown path */
	ROUTE_HEALTH,				/* GET /health */
	ROUTE_METRICS,				/* GET /metrics */
	ROUTE_CONFIG_GET,			/* GET /api/v1/config/{service} */
	ROUTE_CONFIG_PATCH,			/* POST /api/v1/config/{service} */
	ROUTE_CONFIG_PUT,			/* PUT /api/v1/config/{service} */
	ROUTE_CONFIG_DELETE,		/* DELETE /api/v1/config/{service} */
	ROUTE_CONFIG_HISTORY,		/* GET /api/v1/config/history/{service} */
	ROUTE_CONFIG_ROLLBACK,		/* POST /api/v1/config/{service}/rollback */
	ROUTE_DISCOVERY_REGISTER,	/* POST /api/v1/discovery/register */
	ROUTE_DISCOVERY_DEREGISTER, /* DELETE /api/v1/discovery/{service}[/{instance}] */
	ROUTE_DISCOVERY_HEARTBEAT,	/* POST /api/v1/discovery/heartbeat/{service}/{instance} */
	ROUTE_DISCOVERY_LIST,		/* GET /api/v1/discovery/services */
	ROUTE_DISCOVERY_SERVICE,	/* GET /api/v1/discovery/services/{service} */
	ROUTE_HEALTH_SERVICES,		/* GET /api/v1/health/services */
	ROUTE_COUNT
} RouteId;

typedef enum RouteResult
{
	ROUTE_MATCHED,
	ROUTE_NOT_FOUND,			/* 404 */
	ROUTE_METHOD_NOT_ALLOWED,	/* 405, with RouteMatch.allow */
	ROUTE_BAD_ENCODING,			/* 400: bad %XX, %00, empty segment */
	ROUTE_SEGMENT_TOO_LONG		/* 414 */
} RouteResult;

typedef struct RouteMatch
{
	RouteId		id;
	const char *allow;			/* methods allowed on the path, for 405 */
	bool		has_instance;
	char		service[ROUTER_SEGMENT_MAX + 1];
	char		instance[ROUTER_SEGMENT_MAX + 1];
} RouteMatch;

extern RouteResult router_match(const char *method, const char *raw_path,
								RouteMatch *match);

/* Metric label of a route ("config_get", ...; "unknown" for ROUTE_NONE). */
extern const char *router_route_name(RouteId id);

/* Whether a route needs an API key (all but /health and /metrics). */
extern bool router_route_needs_key(RouteId id);

/*
 * router_decode: strict percent-decoding of in[0..len) into out (size
 * outsize, NUL-terminated).  plus_is_space for query values.  False on a
 * malformed escape, an encoded NUL, or when the result does not fit.
 */
extern bool router_decode(const char *in, size_t len, bool plus_is_space,
						  char *out, size_t outsize);

#endif							/* HUBD_ROUTER_H */
