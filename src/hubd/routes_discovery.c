/*
 * routes_discovery.c: the registry routes (/api/v1/discovery/...) and the
 * health summary (/api/v1/health/services), over hub.register_service,
 * deregister_service, heartbeat, discover and health_summary.
 */
#include <stdio.h>
#include <string.h>

#include "routes.h"

/* POST /api/v1/discovery/register, the seeds' body; answers 201. */
void
routes_discovery_register(HubRequest *req, HubResponse *resp)
{
	DbCall		call;
	DbOutcome	out;
	int			first;

	if (!routes_body_json(req, resp))
		return;
	call = (DbCall)
	{
		STMT_REGISTER, 1,
		{
			req->body.data
		}
	};
	if (!routes_run(req, resp, &call, 1, &out, &first))
		return;
	resp->status = 201;
	jsonbuf_puts(&resp->body, "{\"status\":\"registered\",");
	jsonbuf_key(&resp->body, "service_name");
	jsonbuf_string(&resp->body, db_value(&out, first, 0, 1));
	jsonbuf_puts(&resp->body, ",");
	jsonbuf_key(&resp->body, "instance_id");
	jsonbuf_string(&resp->body, db_value(&out, first, 0, 0));
	jsonbuf_puts(&resp->body, "}");
	db_outcome_clear(&out);
}

/* DELETE /api/v1/discovery/{service}[/{instance}] */
void
routes_discovery_deregister(HubRequest *req, HubResponse *resp)
{
	DbCall		call = {STMT_DEREGISTER, 2,
		{req->route.service, req->route.has_instance ? req->route.instance : NULL}};
	DbOutcome	out;
	int			first;
	const char *removed;

	if (!routes_run(req, resp, &call, 1, &out, &first))
		return;
	removed = db_value(&out, first, 0, 0);
	resp->status = 200;
	jsonbuf_puts(&resp->body, "{\"status\":\"deregistered\",");
	jsonbuf_key(&resp->body, "service_name");
	jsonbuf_string(&resp->body, req->route.service);
	jsonbuf_puts(&resp->body, ",");
	jsonbuf_key(&resp->body, "instance_id");
	jsonbuf_string(&resp->body, req->route.has_instance ? req->route.instance : NULL);
	jsonbuf_printf(&resp->body, ",\"removed\":%s}", removed ? removed : "null");
	db_outcome_clear(&out);
}

/* POST /api/v1/discovery/heartbeat/{service}/{instance} */
void
routes_discovery_heartbeat(HubRequest *req, HubResponse *resp)
{
	DbCall		call = {STMT_HEARTBEAT, 2, {req->route.service, req->route.instance}};
	DbOutcome	out;
	int			first;

	if (!routes_run(req, resp, &call, 1, &out, &first))
		return;
	resp->status = 200;
	jsonbuf_puts(&resp->body, "{\"status\":\"ok\",");
	jsonbuf_key(&resp->body, "service_name");
	jsonbuf_string(&resp->body, req->route.service);
	jsonbuf_puts(&resp->body, ",");
	jsonbuf_key(&resp->body, "instance_id");
	jsonbuf_string(&resp->body, req->route.instance);
	jsonbuf_puts(&resp->body, ",");
	jsonbuf_key(&resp->body, "instance_status");
	jsonbuf_string(&resp->body, db_value(&out, first, 0, 0));
	jsonbuf_puts(&resp->body, "}");
	db_outcome_clear(&out);
}

/* One instance object from columns col.. (instance_id, url, status, metadata). */
static void
routes_instance(JsonBuf *b, DbOutcome *out, int call, int row, int col)
{
	const char *metadata = db_value(out, call, row, col + 3);

	jsonbuf_puts(b, "{");
	jsonbuf_key(b, "instance_id");
	jsonbuf_string(b, db_value(out, call, row, col));
	jsonbuf_puts(b, ",");
	jsonbuf_key(b, "url");
	jsonbuf_string(b, db_value(out, call, row, col + 1));
	jsonbuf_puts(b, ",");
	jsonbuf_key(b, "status");
	jsonbuf_string(b, db_value(out, call, row, col + 2));
	jsonbuf_puts(b, ",\"metadata\":");
	jsonbuf_puts(b, metadata ? metadata : "{}");
	jsonbuf_puts(b, "}");
}

/*
 * GET /api/v1/discovery/services: {"services":{name:[instance...]},
 * "total_services","total_instances"}; GET .../services/{service}:
 * {"service_name","instances":[...]} healthy first, 404 when none.
 */
void
routes_discovery_list(HubRequest *req, HubResponse *resp)
{
	DbCall		call;
	DbOutcome	out;
	int			first;
	int			n;

	if (req->route.id == ROUTE_DISCOVERY_SERVICE)
		call = (DbCall)
	{
		STMT_DISCOVER, 1,
		{
			req->route.service
		}
	};
	else
		call = (DbCall)
	{
		STMT_DISCOVER_ALL, 0,
		{
			NULL
		}
	};
	if (!routes_run(req, resp, &call, 1, &out, &first))
		return;
	n = db_ntuples(&out, first);
	if (req->route.id == ROUTE_DISCOVERY_SERVICE)
	{
		if (n == 0)
		{
			char		message[ROUTER_SEGMENT_MAX + 64];

			snprintf(message, sizeof(message),
					 "service \"%s\" has no registered instances", req->route.service);
			routes_error(resp, 404, "not_found", message);
			db_outcome_clear(&out);
			return;
		}
		resp->status = 200;
		jsonbuf_puts(&resp->body, "{");
		jsonbuf_key(&resp->body, "service_name");
		jsonbuf_string(&resp->body, req->route.service);
		jsonbuf_puts(&resp->body, ",\"instances\":[");
		for (int i = 0; i < n; i++)
		{
			if (i)
				jsonbuf_puts(&resp->body, ",");
			routes_instance(&resp->body, &out, first, i, 0);
		}
		jsonbuf_printf(&resp->body, "],\"total\":%d}", n);
	}
	else
	{
		int			services = 0;

		resp->status = 200;
		jsonbuf_puts(&resp->body, "{\"services\":{");
		for (int i = 0; i < n; i++)
		{
			const char *name = db_value(&out, first, i, 0);

			if (i == 0 || strcmp(name, db_value(&out, first, i - 1, 0)) != 0)
			{
				jsonbuf_puts(&resp->body, i ? "]," : "");
				jsonbuf_key(&resp->body, name);
				jsonbuf_puts(&resp->body, "[");
				services++;
			}
			else
				jsonbuf_puts(&resp->body, ",");
			routes_instance(&resp->body, &out, first, i, 1);
		}
		jsonbuf_printf(&resp->body, "%s},\"total_services\":%d,\"total_instances\":%d}",
					   n ? "]" : "", services, n);
	}
	db_outcome_clear(&out);
}

/* GET /api/v1/health/services: hub.health_summary() as it is. */
void
routes_health_services(HubRequest *req, HubResponse *resp)
{
	DbCall		call = {STMT_HEALTH_SUMMARY, 0, {NULL}};
	DbOutcome	out;
	int			first;
	const char *summary;

	if (!routes_run(req, resp, &call, 1, &out, &first))
		return;
	summary = db_value(&out, first, 0, 0);
	resp->status = 200;
	jsonbuf_puts(&resp->body, summary ? summary : "{}");
	db_outcome_clear(&out);
}
