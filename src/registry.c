/*-------------------------------------------------------------------------
 * registry.c
 *	  The service registry: the checking trigger of hub.service_instances
 *	  and hub.register_service, deregister_service, heartbeat, discover and
 *	  health_summary.
 *
 * Registered addresses are fetched by the health worker from inside the
 * database server, so every row is checked by a C trigger, for the
 * functions below and for an admin's plain INSERT or UPDATE alike: a valid
 * service name (it becomes a NATS subject token), an instance id that fits
 * in a URL path segment, a host that is a name or an IP address and
 * nothing else, a port, http or https, an endpoint path without blanks or
 * control characters, a metadata object and a sane TTL.  The health
 * columns are the worker's: re-registering an instance changes its address
 * and metadata and leaves its health state to the next checks.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/rel.h"

#include "config_store.h"
#include "hub_spi.h"
#include "registry.h"

PG_FUNCTION_INFO_V1(service_instance_check);
PG_FUNCTION_INFO_V1(hub_register_service);
PG_FUNCTION_INFO_V1(hub_deregister_service);
PG_FUNCTION_INFO_V1(hub_heartbeat);
PG_FUNCTION_INFO_V1(hub_discover);
PG_FUNCTION_INFO_V1(hub_health_summary);

/* A kept SPI plan, prepared on first use. */
static HubPlan plan_register = {
	"INSERT INTO hub.service_instances AS si"
	" (service_name, instance_id, host, port, protocol, health_endpoint,"
	"  metadata, ttl_seconds, last_heartbeat)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())"
	" ON CONFLICT (service_name, instance_id) DO UPDATE SET"
	"  host = EXCLUDED.host, port = EXCLUDED.port, protocol = EXCLUDED.protocol,"
	"  health_endpoint = EXCLUDED.health_endpoint, metadata = EXCLUDED.metadata,"
	"  ttl_seconds = EXCLUDED.ttl_seconds, registered_at = now(),"
	"  last_heartbeat = now()"
	" RETURNING instance_id",
	8, {TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID, JSONBOID, INT4OID}
};
static HubPlan plan_deregister_one = {
	"DELETE FROM hub.service_instances WHERE service_name = $1 AND instance_id = $2",
	2, {TEXTOID, TEXTOID}
};
static HubPlan plan_deregister_all = {
	"DELETE FROM hub.service_instances WHERE service_name = $1",
	1, {TEXTOID}
};
static HubPlan plan_heartbeat = {
	"UPDATE hub.service_instances SET last_heartbeat = now()"
	" WHERE service_name = $1 AND instance_id = $2 RETURNING status",
	2, {TEXTOID, TEXTOID}
};
static HubPlan plan_discover = {
	"SELECT instance_id,"
	" protocol || '://' || CASE WHEN strpos(host, ':') > 0"
	"   THEN '[' || host || ']' ELSE host END || ':' || port,"
	" status, metadata"
	" FROM hub.service_instances WHERE service_name = $1"
	" ORDER BY CASE status WHEN 'healthy' THEN 0 WHEN 'degraded' THEN 1"
	"   WHEN 'unknown' THEN 2 ELSE 3 END, instance_id",
	1, {TEXTOID}
};
static HubPlan plan_summary = {
	"SELECT jsonb_build_object("
	" 'total_services', count(*),"
	" 'healthy', count(*) FILTER (WHERE service_status = 'healthy'),"
	" 'degraded', count(*) FILTER (WHERE service_status = 'degraded'),"
	" 'unhealthy', count(*) FILTER (WHERE service_status = 'unhealthy'),"
	" 'unknown', count(*) FILTER (WHERE service_status = 'unknown'),"
	" 'services', COALESCE(jsonb_object_agg(service_name, service_status),"
	"   '{}'::jsonb))"
	" FROM hub.health_status",
	0, {InvalidOid}
};



/*
 * Instance ids appear in URL paths of the HTTP frontend and in messages:
 * 1 to 200 of letters, digits and . _ : [ ] - (host:port and [v6]:port fit).
 */
static void
registry_check_instance_id(const char *service, const char *id)
{
	size_t		len = strlen(id);
	bool		ok = len > 0 && len <= REGISTRY_INSTANCE_ID_MAX;

	for (const char *p = id; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			(*p >= '0' && *p <= '9') || strchr("._:[]-", *p) != NULL;
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid instance id \"%s\" for service \"%s\"", id, service),
				 errdetail("Instance ids are 1 to %d of letters, digits and . _ : [ ] -.",
						   REGISTRY_INSTANCE_ID_MAX)));
}

/*
 * A host is an IPv6 address (it has a colon), or a DNS name or IPv4
 * address: letters, digits, '.', '-', '_'.  Nothing that could change how
 * the health URL is parsed (no '/', '@', '#', '?', blanks).
 */
static void
registry_check_host(const char *service, const char *host)
{
	size_t		len = strlen(host);
	bool		ok = len > 0 && len <= REGISTRY_HOST_MAX;

	if (ok && strchr(host, ':') != NULL)
	{
		struct in6_addr addr;

		ok = inet_pton(AF_INET6, host, &addr) == 1;
	}
	else
	{
		for (const char *p = host; ok && *p; p++)
			ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
				(*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_';
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid host \"%s\" for service \"%s\"", host, service),
				 errdetail("A host is a non-empty DNS name, IPv4 address or IPv6 address (without brackets) of at most %d characters.",
						   REGISTRY_HOST_MAX)));
}

static void
registry_check_port(const char *service, int32 port)
{
	if (port < 1 || port > 65535)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid port %d for service \"%s\"", port, service),
				 errdetail("Ports are 1 to 65535.")));
}

static void
registry_check_protocol(const char *service, const char *protocol)
{
	if (strcmp(protocol, "http") != 0 && strcmp(protocol, "https") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid protocol \"%s\" for service \"%s\"", protocol, service),
				 errdetail("The protocol is http or https.")));
}

/* An absolute path: starts with '/', no blanks, no control characters. */
static void
registry_check_endpoint(const char *service, const char *endpoint)
{
	size_t		len = strlen(endpoint);
	bool		ok = len > 0 && len <= REGISTRY_ENDPOINT_MAX && endpoint[0] == '/';

	for (const unsigned char *p = (const unsigned char *) endpoint; ok && *p; p++)
		ok = *p > 0x20 && *p != 0x7f;
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid health endpoint \"%s\" for service \"%s\"", endpoint, service),
				 errdetail("The health endpoint is a path starting with '/', without blanks or control characters, of at most %d bytes.",
						   REGISTRY_ENDPOINT_MAX)));
}

static void
registry_check_metadata(const char *service, Jsonb *metadata)
{
	if (!JB_ROOT_IS_OBJECT(metadata) || JB_ROOT_IS_SCALAR(metadata))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("metadata of service \"%s\" must be a JSON object", service)));
}

static void
registry_check_ttl(const char *service, int32 ttl)
{
	if (ttl < 1 || ttl > REGISTRY_TTL_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid ttl_seconds %d for service \"%s\"", ttl, service),
				 errdetail("ttl_seconds is NULL (polled) or 1 to %d.", REGISTRY_TTL_MAX)));
}

/* Column value of a trigger tuple; a NULL is an error naming the column. */
static Datum
registry_column(HeapTuple tuple, TupleDesc desc, const char *name, bool *isnull)
{
	int			attnum = SPI_fnumber(desc, name);

	if (attnum <= 0)
		elog(ERROR, "hub.service_instances has no column \"%s\"", name);
	return heap_getattr(tuple, attnum, desc, isnull);
}

static char *
registry_text_column(HeapTuple tuple, TupleDesc desc, const char *name)
{
	bool		isnull;
	Datum		d = registry_column(tuple, desc, name, &isnull);

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("%s of a service instance must not be NULL", name)));
	return TextDatumGetCString(d);
}

/*
 * BEFORE INSERT OR UPDATE (of the registration columns) trigger on
 * hub.service_instances: every rule of a registered instance.
 */
Datum
service_instance_check(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	HeapTuple	row;
	TupleDesc	desc;
	char	   *service;
	bool		isnull;
	Datum		d;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(td->tg_event))
		elog(ERROR, "service_instance_check must run BEFORE INSERT OR UPDATE FOR EACH ROW");

	row = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	desc = RelationGetDescr(td->tg_relation);

	service = registry_text_column(row, desc, "service_name");
	config_check_service_name(service);
	registry_check_instance_id(service, registry_text_column(row, desc, "instance_id"));
	registry_check_host(service, registry_text_column(row, desc, "host"));
	registry_check_protocol(service, registry_text_column(row, desc, "protocol"));
	registry_check_endpoint(service, registry_text_column(row, desc, "health_endpoint"));

	d = registry_column(row, desc, "port", &isnull);
	if (!isnull)
		registry_check_port(service, DatumGetInt32(d));
	d = registry_column(row, desc, "metadata", &isnull);
	if (!isnull)
		registry_check_metadata(service, DatumGetJsonbP(d));
	d = registry_column(row, desc, "ttl_seconds", &isnull);
	if (!isnull)
		registry_check_ttl(service, DatumGetInt32(d));

	return PointerGetDatum(row);
}

/*
 * The instance id given by metadata.instance_id (the seeds' registration
 * body carries it there), or NULL.
 */
static char *
registry_metadata_instance_id(Jsonb *metadata)
{
	JsonbValue	key;
	JsonbValue *v;

	key.type = jbvString;
	key.val.string.val = "instance_id";
	key.val.string.len = strlen("instance_id");
	v = findJsonbValueFromContainer(&metadata->root, JB_FOBJECT, &key);
	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * hub.register_service(service_name, host, port, health_endpoint,
 * metadata, instance_id, ttl_seconds, protocol) -> instance_id
 *
 * Inserts the instance or updates its registration; the id defaults to
 * metadata.instance_id, else host:port ([v6]:port).
 */
Datum
hub_register_service(PG_FUNCTION_ARGS)
{
	char	   *service = hub_arg_text(fcinfo, 0, "service_name", true);
	char	   *host = hub_arg_text(fcinfo, 1, "host", true);
	char	   *endpoint = hub_arg_text(fcinfo, 3, "health_endpoint", false);
	char	   *instance = hub_arg_text(fcinfo, 5, "instance_id", false);
	char	   *protocol = hub_arg_text(fcinfo, 7, "protocol", false);
	int32		port;
	Jsonb	   *metadata;
	Datum		args[8];
	char		nulls[8];
	text	   *result;

	config_check_service_name(service);
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("port must not be NULL")));
	port = PG_GETARG_INT32(2);
	registry_check_host(service, host);
	registry_check_port(service, port);
	if (endpoint == NULL)
		endpoint = "/health";
	if (protocol == NULL)
		protocol = "http";
	if (PG_ARGISNULL(4))
		metadata = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	else
		metadata = PG_GETARG_JSONB_P(4);
	registry_check_metadata(service, metadata);

	if (instance == NULL)
		instance = registry_metadata_instance_id(metadata);
	if (instance == NULL)
		instance = strchr(host, ':') != NULL ? psprintf("[%s]:%d", host, port) :
			psprintf("%s:%d", host, port);

	memset(nulls, ' ', sizeof(nulls));
	args[0] = CStringGetTextDatum(service);
	args[1] = CStringGetTextDatum(instance);
	args[2] = CStringGetTextDatum(host);
	args[3] = Int32GetDatum(port);
	args[4] = CStringGetTextDatum(protocol);
	args[5] = CStringGetTextDatum(endpoint);
	args[6] = JsonbPGetDatum(metadata);
	args[7] = PG_ARGISNULL(6) ? (Datum) 0 : PG_GETARG_DATUM(6);
	if (PG_ARGISNULL(6))
		nulls[7] = 'n';

	SPI_connect();
	hub_plan_run(&plan_register, args, nulls, false);
	if (SPI_processed != 1)
		elog(ERROR, "registering instance \"%s\" of service \"%s\" wrote %lu rows",
			 instance, service, (unsigned long) SPI_processed);
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		result = DatumGetTextPP(SPI_datumTransfer(d, false, -1));
	}
	SPI_finish();

	PG_RETURN_TEXT_P(result);
}

/*
 * hub.deregister_service(service_name, instance_id = NULL) -> count
 *
 * Removes one instance, or all of the service's; removing nothing is an
 * error so that a typo does not pass silently.
 */
Datum
hub_deregister_service(PG_FUNCTION_ARGS)
{
	char	   *service = hub_arg_text(fcinfo, 0, "service_name", true);
	char	   *instance = hub_arg_text(fcinfo, 1, "instance_id", false);
	Datum		args[2];
	uint64		removed;

	config_check_service_name(service);
	args[0] = CStringGetTextDatum(service);
	SPI_connect();
	if (instance != NULL)
	{
		args[1] = CStringGetTextDatum(instance);
		hub_plan_run(&plan_deregister_one, args, NULL, false);
	}
	else
		hub_plan_run(&plan_deregister_all, args, NULL, false);
	removed = SPI_processed;
	SPI_finish();

	if (removed == 0)
	{
		if (instance != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_HUB_UNKNOWN_INSTANCE),
					 errmsg("service \"%s\" has no instance \"%s\"", service, instance)));
		ereport(ERROR,
				(errcode(ERRCODE_HUB_UNKNOWN_INSTANCE),
				 errmsg("service \"%s\" has no registered instances", service)));
	}
	PG_RETURN_INT32((int32) removed);
}

/*
 * hub.heartbeat(service_name, instance_id) -> status
 *
 * Records that the instance is alive.  For TTL instances the health worker
 * turns this into their status at its next cycle.
 */
Datum
hub_heartbeat(PG_FUNCTION_ARGS)
{
	char	   *service = hub_arg_text(fcinfo, 0, "service_name", true);
	char	   *instance = hub_arg_text(fcinfo, 1, "instance_id", true);
	Datum		args[2];
	text	   *status = NULL;

	config_check_service_name(service);
	args[0] = CStringGetTextDatum(service);
	args[1] = CStringGetTextDatum(instance);
	SPI_connect();
	hub_plan_run(&plan_heartbeat, args, NULL, false);
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		status = DatumGetTextPP(SPI_datumTransfer(d, false, -1));
	}
	SPI_finish();

	if (status == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_HUB_UNKNOWN_INSTANCE),
				 errmsg("service \"%s\" has no instance \"%s\"", service, instance),
				 errhint("Register the instance with hub.register_service first.")));
	PG_RETURN_TEXT_P(status);
}

/*
 * hub.discover(service_name) -> setof (instance_id, url, status, metadata)
 *
 * The base URL (protocol://host:port) of every instance, healthy first.
 * An unknown service has no instances: the set is empty.
 */
Datum
hub_discover(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *service = hub_arg_text(fcinfo, 0, "service_name", true);
	Datum		args[1];
	MemoryContext oldcxt;

	InitMaterializedSRF(fcinfo, 0);

	args[0] = CStringGetTextDatum(service);
	SPI_connect();
	hub_plan_run(&plan_discover, args, NULL, true);
	oldcxt = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		Datum		values[4];
		bool		nulls[4];

		for (int c = 0; c < 4; c++)
			values[c] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
									  c + 1, &nulls[c]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	MemoryContextSwitchTo(oldcxt);
	SPI_finish();

	return (Datum) 0;
}

/*
 * hub.health_summary() -> jsonb
 *
 * The seeds' shape, counting services by the aggregate status of
 * hub.health_status (the one place that rule is written).
 */
Datum
hub_health_summary(PG_FUNCTION_ARGS)
{
	bool		isnull;
	Datum		d;

	SPI_connect();
	hub_plan_run(&plan_summary, NULL, NULL, true);
	if (SPI_processed != 1)
		elog(ERROR, "health summary returned %lu rows", (unsigned long) SPI_processed);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	d = SPI_datumTransfer(d, false, -1);
	SPI_finish();

	PG_RETURN_DATUM(d);
}
