/*
 * routes_config.c: /api/v1/config routes: read (with ETag and long-poll),
 * merge-patch, replace, delete, history and rollback of service configs.
 * Each calls the hub.*_config functions, so the store's rules hold over HTTP.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "metrics.h"
#include "routes.h"

#define HISTORY_LIMIT_DEFAULT 10
#define HISTORY_LIMIT_MAX 100

/* Parses a decimal integer in [min, max]; false when it is not one. */
static bool
routes_parse_int(const char *s, long min, long max, long *out)
{
	char	   *end;
	long		v;

	if (*s == '\0' || *s == ' ' || *s == '+')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/*
 * Reads an optional query parameter; false (400 filled in) when it is
 * malformed.  *value is NULL when absent.
 */
static bool
routes_query(HubRequest *req, HubResponse *resp, const char *name,
			 char *buf, size_t size, const char **value)
{
	char		message[128];

	switch (hub_request_query(req, name, buf, size))
	{
		case 1:
			*value = buf;
			return true;
		case 0:
			*value = NULL;
			return true;
		default:
			snprintf(message, sizeof(message),
					 "query parameter \"%s\" is malformed or too long", name);
			routes_error(resp, 400, "bad_parameter", message);
			return false;
	}
}

/* The first entity tag of If-None-Match, unquoted ("*" for any). */
static const char *
routes_if_none_match(HubRequest *req, char *out, size_t outsize)
{
	const char *h = hub_request_header(req, "If-None-Match");
	const char *end;
	size_t		len;

	if (h == NULL)
		return NULL;
	while (*h == ' ')
		h++;
	if (*h == '*')
		return "*";
	if (strncmp(h, "W/", 2) == 0)
		h += 2;
	if (*h != '"' || (end = strchr(h + 1, '"')) == NULL ||
		(len = (size_t) (end - h - 1)) >= outsize)
		return NULL;
	memcpy(out, h + 1, len);
	out[len] = '\0';
	return out;
}

/* True when If-None-Match (inm, unquoted) names version or is "*". */
static bool
routes_etag_matches(const char *inm, const char *version)
{
	return inm != NULL && (strcmp(inm, "*") == 0 || strcmp(inm, version) == 0);
}

static void
routes_set_etag(HubResponse *resp, const char *version)
{
	if (version && strlen(version) <= HUBD_VERSION_MAX)
		snprintf(resp->etag, sizeof(resp->etag), "\"%s\"", version);
}

/*
 * GET /api/v1/config/{service}[?wait=S&version=V]
 *
 * With wait, the request is parked (see longpoll.c) while the service's
 * version still equals V (or the If-None-Match tag); an empty V waits for a
 * service that has no config yet.  It is answered when the version differs
 * or S seconds have passed, with the state at that moment (304 if it still
 * matches If-None-Match).
 */
void
routes_config_get(HubRequest *req, HubResponse *resp)
{
	char		waitbuf[16];
	char		verbuf[HUBD_VERSION_MAX + 1];
	char		inmbuf[HUBD_VERSION_MAX + 1];
	char		cachedver[HUBD_VERSION_MAX + 1];
	const char *wait_s;
	const char *want;
	const char *inm;
	const char *cfg;
	const char *cur;
	const char *updated;
	DbCall		call = {STMT_CONFIG_GET, 1, {req->route.service}};
	DbOutcome	out;
	int			first;
	bool		found;
	bool		cacheable;
	uint64_t	epoch = 0;

	if (!routes_query(req, resp, "wait", waitbuf, sizeof(waitbuf), &wait_s) ||
		!routes_query(req, resp, "version", verbuf, sizeof(verbuf), &want))
		return;
	inm = routes_if_none_match(req, inmbuf, sizeof(inmbuf));
	if (want == NULL && inm != NULL && strcmp(inm, "*") != 0)
		want = inm;
	if (wait_s != NULL && req->wait_deadline == 0)
	{
		long		wait;

		if (!routes_parse_int(wait_s, 0, 86400, &wait))
		{
			routes_error(resp, 422, "invalid_value",
						 "wait must be a number of seconds");
			return;
		}
		if (wait > hubd_options.max_wait)
			wait = hubd_options.max_wait;
		if (wait > 0 && want != NULL)
			req->wait_deadline = req->started + (double) wait;
	}

	/*
	 * A plain GET with a key known valid may be answered from the cache
	 * (cache.c says when that is exact); long-polls always read.
	 */
	cacheable = req->wait_deadline == 0 && !hubd_options.no_auth;
	if (cacheable)
	{
		if (cache_lookup(routes_api_key(req), req->route.service, &resp->body,
						 cachedver, sizeof(cachedver)))
		{
			routes_set_etag(resp, cachedver);
			resp->status = 200;
			if (routes_etag_matches(inm, cachedver))
			{
				jsonbuf_free(&resp->body);
				resp->status = 304;
			}
			return;
		}
		epoch = cache_epoch();
	}

	if (!routes_run(req, resp, &call, 1, &out, &first))
		return;
	if (cacheable)
		cache_key_store(routes_api_key(req), epoch);
	/* no row, or (key check joined in) a row of NULLs: no config */
	found = db_value(&out, first, 0, 1) != NULL;
	cfg = db_value(&out, first, 0, 0);
	cur = db_value(&out, first, 0, 1);
	updated = db_value(&out, first, 0, 2);

	if (req->wait_deadline > 0 && hubd_now() < req->wait_deadline &&
		(found ? strcmp(cur, want) == 0 : want[0] == '\0'))
	{
		snprintf(req->wait_version, sizeof(req->wait_version), "%s", want);
		req->wait_for_none = !found;
		req->suspend = true;
		db_outcome_clear(&out);
		return;
	}

	if (!found)
	{
		char		message[ROUTER_SEGMENT_MAX + 64];

		snprintf(message, sizeof(message), "service \"%s\" has no config",
				 req->route.service);
		routes_error(resp, 404, "not_found", message);
	}
	else if (routes_etag_matches(inm, cur))
	{
		resp->status = 304;
		routes_set_etag(resp, cur);
	}
	else
	{
		resp->status = 200;
		routes_set_etag(resp, cur);
		jsonbuf_puts(&resp->body, "{");
		jsonbuf_key(&resp->body, "service_name");
		jsonbuf_string(&resp->body, req->route.service);
		jsonbuf_puts(&resp->body, ",\"config\":");
		jsonbuf_puts(&resp->body, cfg);
		jsonbuf_puts(&resp->body, ",");
		jsonbuf_key(&resp->body, "version");
		jsonbuf_string(&resp->body, cur);
		jsonbuf_printf(&resp->body, ",\"updated_at\":%s}", updated);
		if (cacheable && !resp->body.failed)
			cache_config_store(req->route.service, cur, resp->body.data,
							   resp->body.len, epoch);
	}
	db_outcome_clear(&out);
}

/*
 * The expected version of a write: If-Match, else ?expected_version=.
 * False (400 filled in) when malformed.
 */
static bool
routes_expected_version(HubRequest *req, HubResponse *resp, char *buf,
						char *qbuf, size_t size, const char **expected)
{
	bool		bad;

	*expected = routes_if_match(req, buf, size, &bad);
	if (bad)
	{
		routes_error(resp, 400, "bad_header",
					 "If-Match must be one quoted version, e.g. \"1.2.0\"");
		return false;
	}
	if (*expected == NULL)
		return routes_query(req, resp, "expected_version", qbuf, size, expected);
	return true;
}

/*
 * Writes the answer of a change: the store's new version, and from the audit
 * row just written the revision and previous version.  changed is false
 * when the write was a no-op (the store writes nothing then, so no
 * transaction id was assigned).
 */
static void
routes_change_answer(HubRequest *req, HubResponse *resp, DbOutcome *out,
					 int first, const char *status, const char *extra_key,
					 const char *extra_value)
{
	const char *version = db_value(out, first, 0, 0);
	const char *revision = db_value(out, first + 1, 0, 0);
	const char *previous = db_value(out, first + 1, 0, 1);
	const char *changed = db_value(out, first + 1, 0, 2);
	const char *action = db_value(out, first + 1, 0, 3);
	bool		did_change = changed && changed[0] == 't';

	/* read-your-writes through this hubd, before the relay's NOTIFY */
	if (did_change)
		cache_config_invalidate(req->route.service);

	if (did_change && action && strcmp(action, "created") == 0)
	{
		resp->status = 201;
		status = "created";
	}
	else
		resp->status = 200;
	if (did_change)
		metrics_count_config_write(req->route.id);
	if (strcmp(status, "deleted") != 0)
		routes_set_etag(resp, version);

	jsonbuf_puts(&resp->body, "{");
	jsonbuf_key(&resp->body, "status");
	jsonbuf_string(&resp->body, status);
	jsonbuf_puts(&resp->body, ",");
	jsonbuf_key(&resp->body, "service_name");
	jsonbuf_string(&resp->body, req->route.service);
	jsonbuf_puts(&resp->body, ",");
	jsonbuf_key(&resp->body, "version");
	jsonbuf_string(&resp->body, version);
	jsonbuf_puts(&resp->body, ",");
	jsonbuf_key(&resp->body, "previous_version");
	jsonbuf_string(&resp->body, did_change ? previous : version);
	if (extra_key)
	{
		jsonbuf_puts(&resp->body, ",");
		jsonbuf_key(&resp->body, extra_key);
		jsonbuf_string(&resp->body, extra_value);
	}
	jsonbuf_printf(&resp->body, ",\"revision\":%s,\"changed\":%s,\"broadcast\":\"%s\"}",
				   revision ? revision : "null",
				   did_change ? "true" : "false",
				   did_change ? "queued" : "none");
}

/* POST (merge patch) and PUT (replace) /api/v1/config/{service} */
void
routes_config_write(HubRequest *req, HubResponse *resp)
{
	char		vbuf[HUBD_VERSION_MAX + 1];
	char		rbuf[1024];
	char		ebuf[HUBD_VERSION_MAX + 1];
	char		eqbuf[HUBD_VERSION_MAX + 1];
	const char *version;
	const char *reason;
	const char *expected;
	DbCall		calls[2];
	DbOutcome	out;
	int			first;

	if (!routes_body_json(req, resp) ||
		!routes_query(req, resp, "version", vbuf, sizeof(vbuf), &version) ||
		!routes_query(req, resp, "reason", rbuf, sizeof(rbuf), &reason) ||
		!routes_expected_version(req, resp, ebuf, eqbuf, sizeof(ebuf), &expected))
		return;

	calls[0] = (DbCall)
	{
		req->route.id == ROUTE_CONFIG_PUT ? STMT_CONFIG_PUT : STMT_CONFIG_PATCH,
			5,
		{
			req->route.service, req->body.data, version, reason, expected
		}
	};
	calls[1] = (DbCall)
	{
		STMT_CONFIG_LAST_CHANGE, 1,
		{
			req->route.service
		}
	};
	if (!routes_run(req, resp, calls, 2, &out, &first))
		return;
	routes_change_answer(req, resp, &out, first, "updated", NULL, NULL);
	db_outcome_clear(&out);
}

/* DELETE /api/v1/config/{service}[?reason=] */
void
routes_config_delete(HubRequest *req, HubResponse *resp)
{
	char		rbuf[1024];
	char		ebuf[HUBD_VERSION_MAX + 1];
	char		eqbuf[HUBD_VERSION_MAX + 1];
	const char *reason;
	const char *expected;
	DbCall		calls[2];
	DbOutcome	out;
	int			first;

	if (!routes_query(req, resp, "reason", rbuf, sizeof(rbuf), &reason) ||
		!routes_expected_version(req, resp, ebuf, eqbuf, sizeof(ebuf), &expected))
		return;
	calls[0] = (DbCall)
	{
		STMT_CONFIG_DELETE, 3,
		{
			req->route.service, reason, expected
		}
	};
	calls[1] = (DbCall)
	{
		STMT_CONFIG_LAST_CHANGE, 1,
		{
			req->route.service
		}
	};
	if (!routes_run(req, resp, calls, 2, &out, &first))
		return;
	routes_change_answer(req, resp, &out, first, "deleted", NULL, NULL);
	db_outcome_clear(&out);
}

/* POST /api/v1/config/{service}/rollback, body {"version":"1.0.0"} */
void
routes_config_rollback(HubRequest *req, HubResponse *resp)
{
	char		ebuf[HUBD_VERSION_MAX + 1];
	char		eqbuf[HUBD_VERSION_MAX + 1];
	char		target[HUBD_VERSION_MAX + 1];
	const char *expected;
	DbCall		calls[2];
	DbOutcome	out;
	int			first;

	if (!routes_body_json(req, resp) ||
		!routes_expected_version(req, resp, ebuf, eqbuf, sizeof(ebuf), &expected))
		return;
	if (!json_top_level_string(req->body.data, req->body.len, "version",
							   target, sizeof(target)))
		target[0] = '\0';
	calls[0] = (DbCall)
	{
		STMT_CONFIG_ROLLBACK, 3,
		{
			req->route.service, req->body.data, expected
		}
	};
	calls[1] = (DbCall)
	{
		STMT_CONFIG_LAST_CHANGE, 1,
		{
			req->route.service
		}
	};
	if (!routes_run(req, resp, calls, 2, &out, &first))
		return;
	routes_change_answer(req, resp, &out, first, "rolled_back",
						 "rolled_back_to", target);
	db_outcome_clear(&out);
}

/* GET /api/v1/config/history/{service}?limit=N (default 10, at most 100) */
void
routes_config_history(HubRequest *req, HubResponse *resp)
{
	char		lbuf[16];
	char		limit_text[24];
	const char *limit_s;
	long		limit = HISTORY_LIMIT_DEFAULT;
	DbCall		call;
	DbOutcome	out;
	int			first;
	int			n;

	if (!routes_query(req, resp, "limit", lbuf, sizeof(lbuf), &limit_s))
		return;
	if (limit_s != NULL && !routes_parse_int(limit_s, 1, 1000000, &limit))
	{
		routes_error(resp, 422, "invalid_value",
					 "limit must be a positive integer (at most 100 rows are returned)");
		return;
	}
	if (limit > HISTORY_LIMIT_MAX)
		limit = HISTORY_LIMIT_MAX;
	snprintf(limit_text, sizeof(limit_text), "%ld", limit);
	call = (DbCall)
	{
		STMT_CONFIG_HISTORY, 2,
		{
			req->route.service, limit_text
		}
	};
	if (!routes_run(req, resp, &call, 1, &out, &first))
		return;
	n = db_ntuples(&out, first);
	if (n == 0)
	{
		char		message[ROUTER_SEGMENT_MAX + 64];

		snprintf(message, sizeof(message), "service \"%s\" has no history",
				 req->route.service);
		routes_error(resp, 404, "not_found", message);
		db_outcome_clear(&out);
		return;
	}
	resp->status = 200;
	jsonbuf_puts(&resp->body, "{");
	jsonbuf_key(&resp->body, "service_name");
	jsonbuf_string(&resp->body, req->route.service);
	jsonbuf_puts(&resp->body, ",\"history\":[");
	for (int i = 0; i < n; i++)
	{
		const char *config = db_value(&out, first, i, 7);

		jsonbuf_printf(&resp->body, "%s{\"revision\":%s,", i ? "," : "",
					   db_value(&out, first, i, 0));
		jsonbuf_key(&resp->body, "version");
		jsonbuf_string(&resp->body, db_value(&out, first, i, 1));
		jsonbuf_puts(&resp->body, ",");
		jsonbuf_key(&resp->body, "previous_version");
		jsonbuf_string(&resp->body, db_value(&out, first, i, 2));
		jsonbuf_puts(&resp->body, ",");
		jsonbuf_key(&resp->body, "action");
		jsonbuf_string(&resp->body, db_value(&out, first, i, 3));
		jsonbuf_puts(&resp->body, ",");
		jsonbuf_key(&resp->body, "changed_by");
		jsonbuf_string(&resp->body, db_value(&out, first, i, 4));
		jsonbuf_printf(&resp->body, ",\"changed_at\":%s,",
					   db_value(&out, first, i, 5));
		jsonbuf_key(&resp->body, "change_reason");
		jsonbuf_string(&resp->body, db_value(&out, first, i, 6));
		jsonbuf_puts(&resp->body, ",\"config\":");
		jsonbuf_puts(&resp->body, config ? config : "null");
		jsonbuf_puts(&resp->body, "}");
	}
	jsonbuf_printf(&resp->body, "],\"total\":%s}", db_value(&out, first, 0, 8));
	db_outcome_clear(&out);
}
