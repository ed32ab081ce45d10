/*
 * routes_common.c: dispatch from a matched route to its handler, the
 * per-request transaction (API key, role, actor) and the mapping from the
 * SQL API's SQLSTATEs to HTTP statuses.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "routes.h"

/* Serialization failures (40001) are retried this many times, then 503. */
#define ROUTES_MAX_TRIES 3

void
routes_error(HubResponse *resp, int status, const char *code, const char *message)
{
	jsonbuf_free(&resp->body);
	resp->status = status;
	resp->etag[0] = '\0';
	jsonbuf_puts(&resp->body, "{\"error\":{");
	jsonbuf_key(&resp->body, "code");
	jsonbuf_string(&resp->body, code);
	jsonbuf_puts(&resp->body, ",");
	jsonbuf_key(&resp->body, "message");
	jsonbuf_string(&resp->body, message);
	jsonbuf_puts(&resp->body, "}}");
}

typedef struct SqlstateMap
{
	const char *sqlstate;		/* exact, or a class ending in "*" */
	int			status;
	const char *code;
} SqlstateMap;

/*
 * The SQL API's errors as HTTP.  HB002 (version not newer than the
 * service's highest) is 409: the request is well formed but conflicts with
 * the history; HB003 (expected_version / If-Match mismatch) is 412.
 */
static const SqlstateMap routes_sqlstates[] = {
	{"28000", 401, "invalid_api_key"},
	{"42501", 403, "forbidden"},
	{"22004", 400, "missing_value"},
	{"42602", 422, "invalid_name"},
	{"22023", 422, "invalid_value"},
	{"22P02", 422, "invalid_value"},
	{"22P05", 422, "invalid_value"},
	{"22003", 422, "invalid_value"},
	{"22001", 422, "invalid_value"},
	{"22021", 400, "invalid_encoding"},
	{"23502", 422, "invalid_value"},
	{"23514", 422, "invalid_value"},
	{"HB001", 422, "secret_key"},
	{"54000", 413, "too_large"},
	{"54001", 422, "too_complex"},
	{"HB002", 409, "version_not_newer"},
	{"23505", 409, "conflict"},
	{"HB003", 412, "version_mismatch"},
	{"HB004", 404, "not_found"},
	{"HB005", 404, "unknown_version"},
	{"HB010", 404, "unknown_instance"},
	{"0A000", 501, "not_available"},
	{"57014", 503, "timeout"},
	{"25006", 503, "read_only"},
	{"53*", 503, "database_busy"},
	{"22*", 422, "invalid_value"},
	{"HB*", 422, "invalid_value"},
};

static const SqlstateMap *
routes_map_sqlstate(const char *sqlstate)
{
	for (size_t i = 0; i < sizeof(routes_sqlstates) / sizeof(routes_sqlstates[0]); i++)
	{
		const SqlstateMap *m = &routes_sqlstates[i];
		size_t		n = strlen(m->sqlstate);

		if (m->sqlstate[n - 1] == '*' ?
			strncmp(m->sqlstate, sqlstate, n - 1) == 0 :
			strcmp(m->sqlstate, sqlstate) == 0)
			return m;
	}
	return NULL;
}

const char *
routes_api_key(HubRequest *req)
{
	const char *key = hub_request_header(req, "X-API-Key");

	return key != NULL ? key : hubd_options.default_key;
}

bool
routes_run(HubRequest *req, HubResponse *resp, const DbCall *calls, int ncalls,
		   DbOutcome *out, int *first)
{
	DbCall		all[DB_MAX_CALLS];
	int			nall;
	const SqlstateMap *m;

	if (ncalls + 1 > DB_MAX_CALLS)
	{
		routes_error(resp, 500, "internal", "too many statements");
		return false;
	}
	if (hubd_options.no_auth)
	{
		all[0].stmt = STMT_NO_AUTH;
		all[0].nparams = 1;
		all[0].params[0] = "hubd-no-auth";
	}
	else
	{
		all[0].stmt = STMT_AUTH;
		all[0].nparams = 1;
		all[0].params[0] = routes_api_key(req);
	}
	memcpy(&all[1], calls, sizeof(DbCall) * ncalls);
	*first = 1;
	nall = ncalls + 1;

	/*
	 * The hottest route, GET of a config, checks the key and reads in one
	 * statement: every key's role includes hub_reader's SELECT on the
	 * configs, so the read is allowed exactly when the key is valid.
	 */
	if (!hubd_options.no_auth && ncalls == 1 && calls[0].stmt == STMT_CONFIG_GET)
	{
		all[0].stmt = STMT_AUTH_CONFIG_GET;
		all[0].nparams = 2;
		all[0].params[1] = calls[0].params[0];
		*first = 0;
		nall = 1;
	}

	for (int tries = 1;; tries++)
	{
		if (db_execute(all, nall, out))
			return true;
		db_outcome_clear(out);
		if (out->unavailable)
		{
			resp->retry_after = 1;
			routes_error(resp, 503, "database_unavailable",
						 "the database is unavailable, retry later");
			return false;
		}
		if ((strcmp(out->sqlstate, "40001") == 0 ||
			 strcmp(out->sqlstate, "40P01") == 0))
		{
			if (tries < ROUTES_MAX_TRIES)
				continue;
			resp->retry_after = 1;
			routes_error(resp, 503, "conflict_retry", out->message);
			return false;
		}
		break;
	}

	if (out->failed_call == 0 && all[0].stmt == STMT_AUTH &&
		strcmp(out->sqlstate, "28000") != 0)
	{
		hubd_log(LOG_ERROR, "API key check failed (%s): %s",
				 out->sqlstate, out->message);
		routes_error(resp, 500, "internal", "API key check failed");
		return false;
	}
	m = routes_map_sqlstate(out->sqlstate);
	if (m == NULL)
	{
		hubd_log(LOG_ERROR, "%s %s: unexpected error %s: %s",
				 req->method, router_route_name(req->route.id),
				 out->sqlstate, out->message);
		routes_error(resp, 500, "internal", "internal error");
		return false;
	}
	routes_error(resp, m->status, m->code, out->message);
	return false;
}

bool
routes_body_json(HubRequest *req, HubResponse *resp)
{
	const char *error;
	size_t		offset;
	char		message[160];

	if (req->body.len == 0)
	{
		routes_error(resp, 400, "malformed_json", "the request needs a JSON body");
		return false;
	}
	if (!json_validate(req->body.data, req->body.len, &error, &offset))
	{
		snprintf(message, sizeof(message), "malformed JSON at byte %zu: %s",
				 offset, error);
		routes_error(resp, 400, "malformed_json", message);
		return false;
	}
	return true;
}

const char *
routes_if_match(HubRequest *req, char *out, size_t outsize, bool *bad)
{
	const char *h = hub_request_header(req, "If-Match");
	const char *end;
	size_t		len;

	*bad = false;
	if (h == NULL)
		return NULL;
	while (*h == ' ')
		h++;
	if (strncmp(h, "W/", 2) == 0)
		h += 2;
	if (*h != '"' || (end = strchr(h + 1, '"')) == NULL ||
		(len = (size_t) (end - h - 1)) >= outsize)
	{
		*bad = true;
		return NULL;
	}
	memcpy(out, h + 1, len);
	out[len] = '\0';
	return out;
}

void
routes_dispatch(HubRequest *req, HubResponse *resp)
{
	switch (req->route.id)
	{
		case ROUTE_HEALTH:
			routes_health(req, resp);
			break;
		case ROUTE_METRICS:
			routes_metrics(req, resp);
			break;
		case ROUTE_CONFIG_GET:
			routes_config_get(req, resp);
			break;
		case ROUTE_CONFIG_PATCH:
		case ROUTE_CONFIG_PUT:
			routes_config_write(req, resp);
			break;
		case ROUTE_CONFIG_DELETE:
			routes_config_delete(req, resp);
			break;
		case ROUTE_CONFIG_HISTORY:
			routes_config_history(req, resp);
			break;
		case ROUTE_CONFIG_ROLLBACK:
			routes_config_rollback(req, resp);
			break;
		case ROUTE_DISCOVERY_REGISTER:
			routes_discovery_register(req, resp);
			break;
		case ROUTE_DISCOVERY_DEREGISTER:
			routes_discovery_deregister(req, resp);
			break;
		case ROUTE_DISCOVERY_HEARTBEAT:
			routes_discovery_heartbeat(req, resp);
			break;
		case ROUTE_DISCOVERY_LIST:
		case ROUTE_DISCOVERY_SERVICE:
			routes_discovery_list(req, resp);
			break;
		case ROUTE_HEALTH_SERVICES:
			routes_health_services(req, resp);
			break;
		default:
			routes_error(resp, 404, "not_found", "no such route");
	}
}
