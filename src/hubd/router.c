/*
 * router.c: hubd's request router (see router.h).
 *
 * The path is split on '/' before decoding, so an encoded slash (%2F) stays
 * inside its segment; the store then refuses it as a service name.  Every
 * byte of input is untrusted: segments are copied with explicit bounds.
 */
#include "router.h"

#include <string.h>

#define ROUTER_MAX_SEGMENTS 8

static const char *const route_names[ROUTE_COUNT] = {
	[ROUTE_NONE] = "unknown",
	[ROUTE_HEALTH] = "health",
	[ROUTE_METRICS] = "metrics",
	[ROUTE_CONFIG_GET] = "config_get",
	[ROUTE_CONFIG_PATCH] = "config_patch",
	[ROUTE_CONFIG_PUT] = "config_put",
	[ROUTE_CONFIG_DELETE] = "config_delete",
	[ROUTE_CONFIG_HISTORY] = "config_history",
	[ROUTE_CONFIG_ROLLBACK] = "config_rollback",
	[ROUTE_DISCOVERY_REGISTER] = "discovery_register",
	[ROUTE_DISCOVERY_DEREGISTER] = "discovery_deregister",
	[ROUTE_DISCOVERY_HEARTBEAT] = "discovery_heartbeat",
	[ROUTE_DISCOVERY_LIST] = "discovery_list",
	[ROUTE_DISCOVERY_SERVICE] = "discovery_service",
	[ROUTE_HEALTH_SERVICES] = "health_services",
};

const char *
router_route_name(RouteId id)
{
	if (id < 0 || id >= ROUTE_COUNT)
		return "unknown";
	return route_names[id];
}

bool
router_route_needs_key(RouteId id)
{
	return id != ROUTE_HEALTH && id != ROUTE_METRICS && id != ROUTE_NONE;
}

static int
router_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool
router_decode(const char *in, size_t len, bool plus_is_space,
			  char *out, size_t outsize)
{
	size_t		n = 0;

	if (outsize == 0)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		char		c = in[i];

		if (c == '%')
		{
			int			hi,
						lo;

			if (len - i < 3 || (hi = router_hex(in[i + 1])) < 0 ||
				(lo = router_hex(in[i + 2])) < 0)
				return false;
			c = (char) (hi * 16 + lo);
			if (c == '\0')
				return false;
			i += 2;
		}
		else if (c == '+' && plus_is_space)
			c = ' ';
		else if (c == '\0')
			return false;
		if (n + 1 >= outsize)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return true;
}

typedef struct RouterSegment
{
	const char *start;
	size_t		len;
} RouterSegment;

/*
 * Splits path (starting with '/') into segments; a trailing '/' is ignored,
 * an empty segment in the middle ("//") is not a route.  Returns the count,
 * or -1 when there are too many segments or an empty one.
 */
static int
router_split(const char *path, RouterSegment *segs)
{
	int			n = 0;
	const char *p = path;

	if (*p != '/')
		return -1;
	while (*p == '/')
	{
		const char *start = ++p;

		while (*p && *p != '/')
			p++;
		if (p == start)
		{
			if (*p == '\0' && n > 0)
				break;			/* trailing slash */
			if (*p == '\0')
				break;			/* the path "/" */
			return -1;
		}
		if (n == ROUTER_MAX_SEGMENTS)
			return -1;
		segs[n].start = start;
		segs[n].len = (size_t) (p - start);
		n++;
	}
	return n;
}

static bool
router_seg_is(const RouterSegment *seg, const char *word)
{
	size_t		len = strlen(word);

	return seg->len == len && memcmp(seg->start, word, len) == 0;
}

/* Decodes a segment into dest; RouteResult for the caller to return. */
static RouteResult
router_take(const RouterSegment *seg, char *dest)
{
	if (seg->len > ROUTER_SEGMENT_MAX * 3)
		return ROUTE_SEGMENT_TOO_LONG;
	if (!router_decode(seg->start, seg->len, false, dest, ROUTER_SEGMENT_MAX + 1))
	{
		/* distinguish "does not fit" from "malformed" */
		char		probe[ROUTER_SEGMENT_MAX * 3 + 1];

		if (router_decode(seg->start, seg->len, false, probe, sizeof(probe)))
			return ROUTE_SEGMENT_TOO_LONG;
		return ROUTE_BAD_ENCODING;
	}
	return ROUTE_MATCHED;
}

/* Resolves the route for method on a path whose shape matched "allow". */
static RouteResult
router_pick(const char *method, RouteMatch *m, const char *allow,
			RouteId get, RouteId post, RouteId put, RouteId del)
{
	RouteId		id = ROUTE_NONE;

	m->allow = allow;
	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
		id = get;
	else if (strcmp(method, "POST") == 0)
		id = post;
	else if (strcmp(method, "PUT") == 0)
		id = put;
	else if (strcmp(method, "DELETE") == 0)
		id = del;
	if (id == ROUTE_NONE)
		return ROUTE_METHOD_NOT_ALLOWED;
	m->id = id;
	return ROUTE_MATCHED;
}

RouteResult
router_match(const char *method, const char *raw_path, RouteMatch *m)
{
	RouterSegment segs[ROUTER_MAX_SEGMENTS];
	int			n;
	RouteResult r;
	const RouterSegment *rest;

	m->id = ROUTE_NONE;
	m->allow = NULL;
	m->has_instance = false;
	m->service[0] = '\0';
	m->instance[0] = '\0';

	n = router_split(raw_path, segs);
	if (n <= 0)
		return ROUTE_NOT_FOUND;

	if (n == 1 && router_seg_is(&segs[0], "health"))
		return router_pick(method, m, "GET", ROUTE_HEALTH, 0, 0, 0);
	if (n == 1 && router_seg_is(&segs[0], "metrics"))
		return router_pick(method, m, "GET", ROUTE_METRICS, 0, 0, 0);

	if (n < 3 || !router_seg_is(&segs[0], "api") || !router_seg_is(&segs[1], "v1"))
		return ROUTE_NOT_FOUND;
	rest = &segs[3];
	n -= 3;

	if (router_seg_is(&segs[2], "config"))
	{
		if (n == 2 && router_seg_is(&rest[0], "history"))
		{
			if ((r = router_take(&rest[1], m->service)) != ROUTE_MATCHED)
				return r;
			return router_pick(method, m, "GET", ROUTE_CONFIG_HISTORY, 0, 0, 0);
		}
		if (n == 2 && router_seg_is(&rest[1], "rollback"))
		{
			if ((r = router_take(&rest[0], m->service)) != ROUTE_MATCHED)
				return r;
			return router_pick(method, m, "POST", 0, ROUTE_CONFIG_ROLLBACK, 0, 0);
		}
		if (n == 1)
		{
			if ((r = router_take(&rest[0], m->service)) != ROUTE_MATCHED)
				return r;
			return router_pick(method, m, "GET, POST, PUT, DELETE",
							   ROUTE_CONFIG_GET, ROUTE_CONFIG_PATCH,
							   ROUTE_CONFIG_PUT, ROUTE_CONFIG_DELETE);
		}
		return ROUTE_NOT_FOUND;
	}

	if (router_seg_is(&segs[2], "discovery"))
	{
		if (n == 1 && router_seg_is(&rest[0], "register"))
			return router_pick(method, m, "POST", 0, ROUTE_DISCOVERY_REGISTER, 0, 0);
		if (n == 1 && router_seg_is(&rest[0], "services"))
			return router_pick(method, m, "GET", ROUTE_DISCOVERY_LIST, 0, 0, 0);
		if (n == 2 && router_seg_is(&rest[0], "services"))
		{
			if ((r = router_take(&rest[1], m->service)) != ROUTE_MATCHED)
				return r;
			return router_pick(method, m, "GET", ROUTE_DISCOVERY_SERVICE, 0, 0, 0);
		}
		if (n == 3 && router_seg_is(&rest[0], "heartbeat"))
		{
			if ((r = router_take(&rest[1], m->service)) != ROUTE_MATCHED ||
				(r = router_take(&rest[2], m->instance)) != ROUTE_MATCHED)
				return r;
			m->has_instance = true;
			return router_pick(method, m, "POST", 0, ROUTE_DISCOVERY_HEARTBEAT, 0, 0);
		}
		if (n == 1 || n == 2)
		{
			if ((r = router_take(&rest[0], m->service)) != ROUTE_MATCHED)
				return r;
			if (n == 2)
			{
				if ((r = router_take(&rest[1], m->instance)) != ROUTE_MATCHED)
					return r;
				m->has_instance = true;
			}
			return router_pick(method, m, "DELETE", 0, 0, 0, ROUTE_DISCOVERY_DEREGISTER);
		}
		return ROUTE_NOT_FOUND;
	}

	if (router_seg_is(&segs[2], "health") && n == 1 &&
		router_seg_is(&rest[0], "services"))
		return router_pick(method, m, "GET", ROUTE_HEALTH_SERVICES, 0, 0, 0);

	return ROUTE_NOT_FOUND;
}
