/*-------------------------------------------------------------------------
 * config_functions.c
 *	  The SQL API of the config store: hub.put_config, patch_config,
 *	  get_config, delete_config, get_config_history, rollback_config,
 *	  config_diff and get_config_at.
 *
 * Writers go through plain DML on hub.service_configs, so the triggers of
 * config_store.c check and audit every change exactly as they do for an
 * operator's own INSERT or UPDATE; a ConfigWriteContext carries the
 * function's arguments (actor, reason, expected version) to the triggers
 * and their results back.  All SQL runs with parameters and kept plans.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "config_store.h"
#include "hub_catalog.h"
#include "hub_spi.h"
#include "json_merge.h"
#include "semver.h"

PG_FUNCTION_INFO_V1(hub_put_config);
PG_FUNCTION_INFO_V1(hub_patch_config);
PG_FUNCTION_INFO_V1(hub_get_config);
PG_FUNCTION_INFO_V1(hub_delete_config);
PG_FUNCTION_INFO_V1(hub_get_config_history);
PG_FUNCTION_INFO_V1(hub_rollback_config);
PG_FUNCTION_INFO_V1(hub_config_diff);
PG_FUNCTION_INFO_V1(hub_get_config_at);

static HubPlan plan_update = {
	"UPDATE hub.service_configs SET config_json = $2 WHERE service_name = $1",
	2, {TEXTOID, JSONBOID}
};
static HubPlan plan_insert = {
	"INSERT INTO hub.service_configs (service_name, config_json, version)"
	" VALUES ($1, $2, NULL) ON CONFLICT (service_name) DO NOTHING",
	2, {TEXTOID, JSONBOID}
};
static HubPlan plan_lock_current = {
	"SELECT config_json FROM hub.service_configs WHERE service_name = $1 FOR UPDATE",
	1, {TEXTOID}
};
static HubPlan plan_delete = {
	"DELETE FROM hub.service_configs WHERE service_name = $1",
	1, {TEXTOID}
};
static HubPlan plan_content_of_version = {
	"SELECT config_json FROM hub.config_audit_log"
	" WHERE service_name = $1 AND version = $2 ORDER BY id DESC LIMIT 1",
	2, {TEXTOID, TEXTOID}
};
static HubPlan plan_has_history = {
	"SELECT 1 FROM hub.config_audit_log WHERE service_name = $1 LIMIT 1",
	1, {TEXTOID}
};
static HubPlan plan_history = {
	"SELECT id, version, previous_version, action, changed_by, changed_at,"
	" change_reason, config_json FROM hub.config_audit_log"
	" WHERE service_name = $1 ORDER BY id DESC LIMIT $2",
	2, {TEXTOID, INT8OID}
};
static HubPlan plan_content_at = {
	"SELECT config_json, action FROM hub.config_audit_log"
	" WHERE service_name = $1 AND changed_at <= $2 ORDER BY id DESC LIMIT 1",
	2, {TEXTOID, TIMESTAMPTZOID}
};



/* The service name argument (always argument 0), checked. */
static char *
config_arg_service(FunctionCallInfo fcinfo)
{
	char	   *service = hub_arg_text(fcinfo, 0, "service_name", true);

	config_check_service_name(service);
	return service;
}

/* A version argument, checked for format; NULL when absent and optional. */
static char *
config_arg_version(FunctionCallInfo fcinfo, int n, const char *name,
				   const char *service, bool required)
{
	char	   *version = hub_arg_text(fcinfo, n, name, required);
	SemVer		parsed;

	if (version != NULL)
		semver_parse_or_error(service, version, &parsed);
	return version;
}

/* expected_version: NULL none, '' = must have no config, else a version. */
static char *
config_arg_expected(FunctionCallInfo fcinfo, int n, const char *service)
{
	char	   *expected = hub_arg_text(fcinfo, n, "expected_version", false);
	SemVer		parsed;

	if (expected != NULL && expected[0] != '\0')
		semver_parse_or_error(service, expected, &parsed);
	return expected;
}

static void
config_context_init(ConfigWriteContext *ctx, const char *service)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->service_name = service;
	ctx->result_cxt = CurrentMemoryContext;
}

/*
 * Write config as the service's current content: UPDATE, else INSERT.  The
 * triggers do every check, the version and the audit.  An INSERT that loses
 * a race with a concurrent creation retries as an UPDATE once.
 */
static void
config_write(ConfigWriteContext *ctx, Datum service, Datum config)
{
	Datum		args[2] = {service, config};

	for (int attempt = 0; attempt < 2; attempt++)
	{
		hub_plan_run(&plan_update, args, NULL, false);
		if (SPI_processed > 0 || ctx->noop)
			return;
		if (ctx->expected_version != NULL && ctx->expected_version[0] != '\0')
			ereport(ERROR,
					(errcode(ERRCODE_HUB_VERSION_CONFLICT),
					 errmsg("service \"%s\" has no config, expected version %s",
							ctx->service_name, ctx->expected_version),
					 errhint("Read the current version and retry.")));
		hub_plan_run(&plan_insert, args, NULL, false);
		if (SPI_processed > 0)
			return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("config of service \"%s\" was created and deleted concurrently",
					ctx->service_name),
			 errhint("Retry the change.")));
}

/*
 * Rethrow an error raised inside one of our own SPI statements without the
 * "SQL statement ..." context line, which names our internal SQL rather than
 * anything the caller wrote.  Deeper context (e.g. a user's own trigger) stays.
 */
static void
config_rethrow_without_spi_context(MemoryContext cxt)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	if (edata->context != NULL &&
		strncmp(edata->context, "SQL statement \"", 15) == 0 &&
		strchr(edata->context, '\n') == NULL)
		edata->context = NULL;
	ReThrowError(edata);
}

/*
 * Run body with ctx installed for the triggers, inside an SPI connection.
 */
#define CONFIG_WITH_CONTEXT(ctx, body) \
	do { \
		ConfigWriteContext *saved_ctx_ = config_write_context; \
		MemoryContext cxt_ = CurrentMemoryContext; \
		if (SPI_connect() != SPI_OK_CONNECT) \
			elog(ERROR, "SPI_connect failed"); \
		config_write_context = (ctx); \
		PG_TRY(); \
		{ \
			body; \
		} \
		PG_CATCH(); \
		{ \
			config_write_context = saved_ctx_; \
			config_rethrow_without_spi_context(cxt_); \
		} \
		PG_END_TRY(); \
		config_write_context = saved_ctx_; \
		SPI_finish(); \
	} while (0)

/*
 * Current content of version of service from its history, or error.
 * SPI must be connected; the result lives in the SPI caller's context.
 */
static Jsonb *
config_content_of_version(const char *service, const char *version)
{
	Datum		args[2] = {CStringGetTextDatum(service), CStringGetTextDatum(version)};
	bool		isnull;
	Datum		d;

	hub_plan_run(&plan_content_of_version, args, NULL, true);
	if (SPI_processed == 0)
	{
		hub_plan_run(&plan_has_history, args, NULL, true);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_HUB_UNKNOWN_SERVICE),
					 errmsg("service \"%s\" has no config history", service)));
		ereport(ERROR,
				(errcode(ERRCODE_HUB_UNKNOWN_VERSION),
				 errmsg("service \"%s\" has no version %s", service, version),
				 errhint("hub.get_config_history('%s') lists its versions.", service)));
	}
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return DatumGetJsonbP(SPI_datumTransfer(d, false, -1));
}

/*
 * hub.put_config(service_name, config, version, changed_by, reason,
 *				  expected_version) -> new version
 */
Datum
hub_put_config(PG_FUNCTION_ARGS)
{
	ConfigWriteContext ctx;
	char	   *service = config_arg_service(fcinfo);
	Datum		config;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("config for service \"%s\" must not be NULL", service),
				 errhint("Use hub.delete_config to remove a service's config.")));
	config = PG_GETARG_DATUM(1);

	config_context_init(&ctx, service);
	ctx.version = config_arg_version(fcinfo, 2, "version", service, false);
	ctx.changed_by = hub_arg_text(fcinfo, 3, "changed_by", false);
	ctx.reason = hub_arg_text(fcinfo, 4, "reason", false);
	ctx.expected_version = config_arg_expected(fcinfo, 5, service);

	CONFIG_WITH_CONTEXT(&ctx, config_write(&ctx, CStringGetTextDatum(service), config));

	PG_RETURN_TEXT_P(cstring_to_text(ctx.result_version));
}

/*
 * hub.patch_config(service_name, patch, version, changed_by, reason,
 *					expected_version) -> new version
 *
 * RFC 7396 merge patch onto the current config, under its row lock; creates
 * the config when the service has none.
 */
Datum
hub_patch_config(PG_FUNCTION_ARGS)
{
	ConfigWriteContext ctx;
	char	   *service = config_arg_service(fcinfo);
	Jsonb	   *patch;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("patch for service \"%s\" must not be NULL", service)));
	patch = PG_GETARG_JSONB_P(1);
	if (!JB_ROOT_IS_OBJECT(patch))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("patch for service \"%s\" must be a JSON object", service),
				 errdetail("A merge patch that is not an object would replace the whole config with a non-object.")));

	config_context_init(&ctx, service);
	ctx.version = config_arg_version(fcinfo, 2, "version", service, false);
	ctx.changed_by = hub_arg_text(fcinfo, 3, "changed_by", false);
	ctx.reason = hub_arg_text(fcinfo, 4, "reason", false);
	ctx.expected_version = config_arg_expected(fcinfo, 5, service);

	CONFIG_WITH_CONTEXT(&ctx, {
		Datum		name = CStringGetTextDatum(service);
		Jsonb	   *current = NULL;
		bool		isnull;

		hub_plan_run(&plan_lock_current, &name, NULL, false);
		if (SPI_processed > 0)
			current = DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1,
												   &isnull));
		config_write(&ctx, name,
					 JsonbPGetDatum(json_merge_apply(current, patch)));
	});

	PG_RETURN_TEXT_P(cstring_to_text(ctx.result_version));
}

/*
 * hub.delete_config(service_name, changed_by, reason, expected_version)
 * -> the deleted version
 */
Datum
hub_delete_config(PG_FUNCTION_ARGS)
{
	ConfigWriteContext ctx;
	char	   *service = config_arg_service(fcinfo);

	config_context_init(&ctx, service);
	ctx.changed_by = hub_arg_text(fcinfo, 1, "changed_by", false);
	ctx.reason = hub_arg_text(fcinfo, 2, "reason", false);
	ctx.expected_version = config_arg_expected(fcinfo, 3, service);

	CONFIG_WITH_CONTEXT(&ctx, {
		Datum		name = CStringGetTextDatum(service);

		hub_plan_run(&plan_delete, &name, NULL, false);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_HUB_UNKNOWN_SERVICE),
					 errmsg("service \"%s\" has no config to delete", service)));
	});

	PG_RETURN_TEXT_P(cstring_to_text(ctx.result_version));
}

/*
 * hub.rollback_config(service_name, target_version, changed_by,
 *					   expected_version) -> new version
 *
 * The target's content becomes current as a new version (next patch after
 * the highest ever used), action 'rollback'; restores deleted services too.
 */
Datum
hub_rollback_config(PG_FUNCTION_ARGS)
{
	ConfigWriteContext ctx;
	char	   *service = config_arg_service(fcinfo);
	char	   *target = config_arg_version(fcinfo, 1, "target_version", service, true);

	config_context_init(&ctx, service);
	ctx.changed_by = hub_arg_text(fcinfo, 2, "changed_by", false);
	ctx.expected_version = config_arg_expected(fcinfo, 3, service);
	ctx.action = "rollback";
	ctx.reason = psprintf("rollback to %s", target);

	CONFIG_WITH_CONTEXT(&ctx, {
		Jsonb	   *content = config_content_of_version(service, target);

		config_write(&ctx, CStringGetTextDatum(service), JsonbPGetDatum(content));
	});

	PG_RETURN_TEXT_P(cstring_to_text(ctx.result_version));
}

/*
 * hub.config_diff(service_name, from_version, to_version) -> merge patch
 */
Datum
hub_config_diff(PG_FUNCTION_ARGS)
{
	char	   *service = config_arg_service(fcinfo);
	char	   *from = config_arg_version(fcinfo, 1, "from_version", service, true);
	char	   *to = config_arg_version(fcinfo, 2, "to_version", service, true);
	Jsonb	   *from_content;
	Jsonb	   *to_content;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	from_content = config_content_of_version(service, from);
	to_content = config_content_of_version(service, to);
	SPI_finish();

	PG_RETURN_JSONB_P(json_merge_diff(from_content, to_content));
}

/*
 * hub.get_config_at(service_name, at) -> the config as it was then
 */
Datum
hub_get_config_at(PG_FUNCTION_ARGS)
{
	char	   *service = config_arg_service(fcinfo);
	Datum		args[2];
	Jsonb	   *result = NULL;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("at must not be NULL")));
	args[0] = CStringGetTextDatum(service);
	args[1] = PG_GETARG_DATUM(1);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	hub_plan_run(&plan_content_at, args, NULL, true);
	if (SPI_processed > 0)
	{
		bool		isnull;
		char	   *action = SPI_getvalue(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 2);

		if (strcmp(action, "deleted") != 0)
			result = DatumGetJsonbP(SPI_datumTransfer(
													  SPI_getbinval(SPI_tuptable->vals[0],
																	SPI_tuptable->tupdesc,
																	1, &isnull),
													  false, -1));
	}
	SPI_finish();

	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(result);
}

/*
 * hub.get_config_history(service_name, "limit") -> rows newest first.
 * A NULL limit means all of it, as LIMIT NULL does in SQL.
 */
Datum
hub_get_config_history(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *service = config_arg_service(fcinfo);
	Datum		args[2];
	char		nulls[2] = {' ', ' '};

	if (!PG_ARGISNULL(1) && PG_GETARG_INT32(1) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("history limit for service \"%s\" must not be negative", service)));
	args[0] = CStringGetTextDatum(service);
	args[1] = PG_ARGISNULL(1) ? (Datum) 0 : Int64GetDatum(PG_GETARG_INT32(1));
	if (PG_ARGISNULL(1))
		nulls[1] = 'n';

	InitMaterializedSRF(fcinfo, 0);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	hub_plan_run(&plan_history, args, nulls, true);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		Datum		values[8];
		bool		isnull[8];

		heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
						  values, isnull);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, isnull);
	}
	SPI_finish();

	return (Datum) 0;
}

/*
 * hub.get_config(service_name) -> config, NULL when none.
 *
 * The hottest read of the hub (every service polls it), so it looks the row
 * up through the primary key index directly instead of through SPI.  It
 * checks the caller's SELECT privilege itself for the same reason.
 */
Datum
hub_get_config(PG_FUNCTION_ARGS)
{
	text	   *name = PG_GETARG_TEXT_PP(0);
	Oid			relid = hub_catalog_relid(HUB_TABLE_CONFIGS);
	Relation	rel;
	Relation	idx;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData key;
	AclResult	acl;
	Jsonb	   *result = NULL;
	int			attnum;

	acl = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT);
	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_TABLE, "service_configs");

	rel = table_open(relid, AccessShareLock);
	attnum = SPI_fnumber(RelationGetDescr(rel), "config_json");
	idx = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
	ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   idx->rd_indcollation[0], F_TEXTEQ,
						   PointerGetDatum(name));
	scan = index_beginscan(rel, idx, GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	slot = table_slot_create(rel, NULL);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, attnum, &isnull);

		if (!isnull)
			result = DatumGetJsonbPCopy(d);
	}
	ExecDropSingleTupleTableSlot(slot);
	index_endscan(scan);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);

	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(result);
}
