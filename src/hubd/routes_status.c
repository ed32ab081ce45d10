/*
 * routes_status.c: GET /health and GET /metrics, the two routes that need
 * no API key.  They read only counts (relay backlog, services, instances by
 * status), as hubd's own database user.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "metrics.h"
#include "routes.h"

/* The relay is reported "degraded" when its oldest row waits this long. */
#define STATUS_RELAY_LAG_DEGRADED 60.0

typedef struct HubStatus
{
	bool		database_up;
	bool		have_counts;
	char		backlog[24];
	char		unnotified[24];
	char		oldest_seconds[32];
	char		configured[24];
	char		registered[24];
	bool		have_instances;
	DbOutcome	instances;		/* status, count rows */
} HubStatus;

static void
status_copy(char *dest, size_t size, const char *value)
{
	snprintf(dest, size, "%s", value ? value : "0");
}

/* Reads the counts; each part is optional (the registry may be missing). */
static void
status_read(HubStatus *st)
{
	DbCall		status = {STMT_STATUS, 0, {NULL}};
	DbCall		by_status = {STMT_INSTANCES_BY_STATUS, 0, {NULL}};
	DbOutcome	out;

	memset(st, 0, sizeof(*st));
	if (db_execute(&status, 1, &out))
	{
		st->database_up = true;
		st->have_counts = true;
		status_copy(st->backlog, sizeof(st->backlog), db_value(&out, 0, 0, 0));
		status_copy(st->unnotified, sizeof(st->unnotified), db_value(&out, 0, 0, 1));
		status_copy(st->oldest_seconds, sizeof(st->oldest_seconds), db_value(&out, 0, 0, 2));
		status_copy(st->configured, sizeof(st->configured), db_value(&out, 0, 0, 3));
	}
	else
		st->database_up = !out.unavailable;
	db_outcome_clear(&out);
	if (!st->database_up)
		return;
	status_copy(st->registered, sizeof(st->registered), "0");
	if (db_execute(&by_status, 1, &st->instances))
	{
		st->have_instances = true;
		if (db_ntuples(&st->instances, 0) > 0)
			status_copy(st->registered, sizeof(st->registered),
						db_value(&st->instances, 0, 0, 2));
	}
	else
		db_outcome_clear(&st->instances);
}

/* GET /health: hub status as the seeds' health check reads it. */
void
routes_health(HubRequest *req, HubResponse *resp)
{
	HubStatus	st;
	const char *overall;
	struct timespec now;

	status_read(&st);
	clock_gettime(CLOCK_REALTIME, &now);
	if (!st.database_up)
		overall = "unhealthy";
	else if (!st.have_counts)
		overall = "degraded";
	else
	{
		double		lag = 0;

		sscanf(st.oldest_seconds, "%lf", &lag);
		overall = lag > STATUS_RELAY_LAG_DEGRADED ? "degraded" : "healthy";
	}
	resp->status = st.database_up ? 200 : 503;
	if (!st.database_up)
		resp->retry_after = 1;
	jsonbuf_printf(&resp->body,
				   "{\"status\":\"%s\",\"service\":\"central_hub\",\"version\":\"%s\","
				   "\"timestamp\":%lld,\"checks\":{\"database\":\"%s\"",
				   overall, HUBD_VERSION,
				   (long long) now.tv_sec * 1000 + now.tv_nsec / 1000000,
				   st.database_up ? "healthy" : "unhealthy");
	if (st.have_counts)
		jsonbuf_printf(&resp->body,
					   ",\"relay\":{\"backlog\":%s,\"unnotified\":%s,\"oldest_seconds\":%s}}"
					   ",\"configured_services\":%s,\"registered_services\":%s}",
					   st.backlog, st.unnotified, st.oldest_seconds,
					   st.configured, st.registered);
	else
		jsonbuf_puts(&resp->body, "}}");
	if (st.have_instances)
		db_outcome_clear(&st.instances);
}

/* GET /metrics: Prometheus text format, version 0.0.4. */
void
routes_metrics(HubRequest *req, HubResponse *resp)
{
	HubStatus	st;

	status_read(&st);
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
	metrics_render(&resp->body);
	jsonbuf_printf(&resp->body,
				   "# HELP hubd_database_up Whether hubd reached the database for this scrape.\n"
				   "# TYPE hubd_database_up gauge\n"
				   "hubd_database_up %d\n", st.database_up ? 1 : 0);
	if (st.have_counts)
		jsonbuf_printf(&resp->body,
					   "# HELP hub_relay_backlog Outbox rows not yet confirmed by the relay.\n"
					   "# TYPE hub_relay_backlog gauge\n"
					   "hub_relay_backlog %s\n"
					   "# HELP hub_relay_unnotified Outbox rows not yet sent as NOTIFY.\n"
					   "# TYPE hub_relay_unnotified gauge\n"
					   "hub_relay_unnotified %s\n"
					   "# HELP hub_relay_oldest_seconds Age of the oldest outbox row.\n"
					   "# TYPE hub_relay_oldest_seconds gauge\n"
					   "hub_relay_oldest_seconds %s\n"
					   "# HELP hub_configured_services Services with a config.\n"
					   "# TYPE hub_configured_services gauge\n"
					   "hub_configured_services %s\n"
					   "# HELP hub_registered_services Services with registered instances.\n"
					   "# TYPE hub_registered_services gauge\n"
					   "hub_registered_services %s\n",
					   st.backlog, st.unnotified, st.oldest_seconds,
					   st.configured, st.registered);
	if (st.have_instances)
	{
		static const char *const statuses[] = {"unknown", "healthy", "degraded", "unhealthy"};

		jsonbuf_puts(&resp->body,
					 "# HELP hub_instances Registered service instances by health status.\n"
					 "# TYPE hub_instances gauge\n");
		for (size_t s = 0; s < sizeof(statuses) / sizeof(statuses[0]); s++)
		{
			const char *count = "0";

			for (int i = 0; i < db_ntuples(&st.instances, 0); i++)
				if (strcmp(db_value(&st.instances, 0, i, 0), statuses[s]) == 0)
					count = db_value(&st.instances, 0, i, 1);
			jsonbuf_printf(&resp->body, "hub_instances{status=\"%s\"} %s\n",
						   statuses[s], count);
		}
		db_outcome_clear(&st.instances);
	}
}
