/*-------------------------------------------------------------------------
 * config_store.c
 *	  The rules of the config store, enforced by C triggers.
 *
 * hub.service_configs is written by the hub.* functions and by plain
 * INSERT/UPDATE/DELETE alike; both go through these triggers:
 *
 *	config_before_write (BEFORE ROW): service name, object-only config, size
 *		cap, secret-looking keys, compare-and-set, versions strictly
 *		increasing over the whole history (automatic patch bump), no-op
 *		updates skipped, timestamps and actor.
 *	config_after_write (AFTER ROW): one audit row and one outbox row, in the
 *		same transaction, and a wake-up of the relay worker at commit.
 *	audit_log_guard: the audit log is append-only for non-superusers.
 *
 * The audit and outbox rows are written as the table owner, so writers need
 * no privilege on those tables and cannot forge history.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "regex/regex.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "config_store.h"
#include "hub_catalog.h"
#include "outbox.h"
#include "semver.h"

PG_FUNCTION_INFO_V1(config_before_write);
PG_FUNCTION_INFO_V1(config_after_write);
PG_FUNCTION_INFO_V1(audit_log_guard);
PG_FUNCTION_INFO_V1(config_truncate_guard);

/* GUCs */
static int	config_max_bytes = 256 * 1024;
static char *config_secret_key_pattern = NULL;
static char *config_actor = NULL;
static char *config_change_reason = NULL;

#define CONFIG_DEFAULT_SECRET_PATTERN \
	"(?i)(passw(or)?d|secret|api[-_]?key|access[-_]?key|private[-_]?key|credential|(^|[-_])token$)"

ConfigWriteContext *config_write_context = NULL;

/* Column numbers of hub.service_configs, looked up once per relation. */
typedef struct ConfigColumns
{
	Oid			relid;
	int			service_name;
	int			config_json;
	int			version;
	int			created_at;
	int			updated_at;
	int			created_by;
	int			updated_by;
	int			description;
	int			tags;
	int			active;
} ConfigColumns;

static ConfigColumns config_cols;


static SPIPlanPtr plan_latest_version = NULL;

void
config_store_init(void)
{
	DefineCustomIntVariable("central_hub.max_config_bytes",
							"Largest config accepted, in bytes of stored jsonb.",
							NULL,
							&config_max_bytes,
							256 * 1024, 16, 64 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomStringVariable("central_hub.secret_key_pattern",
							   "Regular expression for config keys that look like secrets; empty disables the check.",
							   "Matched against every key at any depth. Secrets belong in environment variables, not in the hub.",
							   &config_secret_key_pattern,
							   CONFIG_DEFAULT_SECRET_PATTERN,
							   PGC_SUSET, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("central_hub.actor",
							   "Name recorded as changed_by when a change gives none (set by trusted frontends).",
							   NULL,
							   &config_actor,
							   "",
							   PGC_USERSET, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("central_hub.change_reason",
							   "change_reason recorded for plain-SQL changes that give none.",
							   NULL,
							   &config_change_reason,
							   "",
							   PGC_USERSET, 0,
							   NULL, NULL, NULL);
}

/*
 * Service names become NATS subject tokens: ^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$
 */
bool
config_service_name_is_valid(const char *name)
{
	int			len = 0;

	for (const char *p = name; *p; p++, len++)
	{
		char		c = *p;
		bool		alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9');

		if (len >= HUB_SERVICE_NAME_MAX)
			return false;
		if (!alnum && (len == 0 || (c != '-' && c != '_')))
			return false;
	}
	return len > 0;
}

void
config_check_service_name(const char *name)
{
	if (!config_service_name_is_valid(name))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid service name \"%s\"", name),
				 errdetail("Service names are 1 to 100 characters of letters, digits, '-' and '_', starting with a letter or digit.")));
}

static void
config_lookup_columns(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);

	if (config_cols.relid == RelationGetRelid(rel))
		return;
	config_cols.service_name = SPI_fnumber(desc, "service_name");
	config_cols.config_json = SPI_fnumber(desc, "config_json");
	config_cols.version = SPI_fnumber(desc, "version");
	config_cols.created_at = SPI_fnumber(desc, "created_at");
	config_cols.updated_at = SPI_fnumber(desc, "updated_at");
	config_cols.created_by = SPI_fnumber(desc, "created_by");
	config_cols.updated_by = SPI_fnumber(desc, "updated_by");
	config_cols.description = SPI_fnumber(desc, "description");
	config_cols.tags = SPI_fnumber(desc, "tags");
	config_cols.active = SPI_fnumber(desc, "active");
	if (config_cols.service_name <= 0 || config_cols.config_json <= 0 ||
		config_cols.version <= 0 || config_cols.created_at <= 0 ||
		config_cols.updated_at <= 0 || config_cols.created_by <= 0 ||
		config_cols.updated_by <= 0 || config_cols.description <= 0 ||
		config_cols.tags <= 0 || config_cols.active <= 0)
		elog(ERROR, "relation \"%s\" is not a central_hub config table",
			 RelationGetRelationName(rel));
	config_cols.relid = RelationGetRelid(rel);
}

/* Text value of a column as a palloc'd C string, NULL when SQL NULL. */
static char *
config_get_text(HeapTuple tuple, TupleDesc desc, int attnum)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, attnum, desc, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* The context of the hub.* function writing this service, if any. */
static ConfigWriteContext *
config_context_for(const char *service_name)
{
	ConfigWriteContext *ctx = config_write_context;

	if (ctx != NULL && strcmp(ctx->service_name, service_name) == 0)
		return ctx;
	return NULL;
}

/*
 * Who made the change: the explicit argument, else central_hub.actor, else
 * current_user.
 */
static char *
config_resolve_actor(ConfigWriteContext *ctx, const char *explicit_actor)
{
	if (ctx != NULL && ctx->changed_by != NULL && ctx->changed_by[0] != '\0')
		return pstrdup(ctx->changed_by);
	if (explicit_actor != NULL && explicit_actor[0] != '\0')
		return pstrdup(explicit_actor);
	if (config_actor != NULL && config_actor[0] != '\0')
		return pstrdup(config_actor);
	return GetUserNameFromId(GetUserId(), false);
}

/*
 * Whether one key matches central_hub.secret_key_pattern.  Configs reuse the
 * same keys write after write, so answers are cached per backend, keyed by
 * key, and dropped when the pattern changes.
 */
#define SECRET_CACHE_KEYLEN		64
#define SECRET_CACHE_MAX		4096

typedef struct SecretCacheEntry
{
	char		key[SECRET_CACHE_KEYLEN];
	bool		secret;
} SecretCacheEntry;

static HTAB *secret_cache = NULL;
static char *secret_cache_pattern = NULL;

static bool
config_key_is_secret(const char *key, int len, text *pattern)
{
	char		buf[SECRET_CACHE_KEYLEN];
	SecretCacheEntry *entry;
	bool		secret;

	if (len >= SECRET_CACHE_KEYLEN)
		return RE_compile_and_execute(pattern, (char *) key, len, REG_ADVANCED,
									  DEFAULT_COLLATION_OID, 0, NULL);

	if (secret_cache == NULL ||
		strcmp(secret_cache_pattern, config_secret_key_pattern) != 0 ||
		hash_get_num_entries(secret_cache) >= SECRET_CACHE_MAX)
	{
		HASHCTL		ctl;

		if (secret_cache != NULL)
			hash_destroy(secret_cache);
		if (secret_cache_pattern != NULL)
			pfree(secret_cache_pattern);
		secret_cache = NULL;
		secret_cache_pattern = MemoryContextStrdup(TopMemoryContext,
												   config_secret_key_pattern);
		ctl.keysize = SECRET_CACHE_KEYLEN;
		ctl.entrysize = sizeof(SecretCacheEntry);
		secret_cache = hash_create("central_hub secret keys", 256, &ctl,
								   HASH_ELEM | HASH_STRINGS);
	}

	memset(buf, 0, sizeof(buf));
	memcpy(buf, key, len);
	entry = hash_search(secret_cache, buf, HASH_FIND, NULL);
	if (entry != NULL)
		return entry->secret;

	/* Match first: a bad pattern errors out before the cache is touched. */
	secret = RE_compile_and_execute(pattern, buf, len, REG_ADVANCED,
									DEFAULT_COLLATION_OID, 0, NULL);
	entry = hash_search(secret_cache, buf, HASH_ENTER, NULL);
	entry->secret = secret;
	return secret;
}

/*
 * Refuse keys that look like secrets, at any depth, arrays included.
 * path holds the dotted path of container for the error message.
 */
static void
config_check_secret_keys(const char *service, JsonbContainer *container,
						 text *pattern, StringInfo path)
{
	JsonbIterator *it = JsonbIteratorInit(container);
	JsonbIteratorToken tok;
	JsonbValue	v;
	int			base_len = path->len;
	int			index = 0;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			path->len = base_len;
			path->data[base_len] = '\0';
			if (base_len > 0)
				appendStringInfoChar(path, '.');
			appendBinaryStringInfo(path, v.val.string.val, v.val.string.len);
			if (config_key_is_secret(v.val.string.val, v.val.string.len, pattern))
				ereport(ERROR,
						(errcode(ERRCODE_HUB_SECRET_KEY),
						 errmsg("config for service \"%s\" has a secret-looking key \"%s\"",
								service, path->data),
						 errdetail("Keys matching central_hub.secret_key_pattern are refused."),
						 errhint("Secrets belong in environment variables, never in the hub.")));
		}
		else if (tok == WJB_ELEM)
		{
			path->len = base_len;
			path->data[base_len] = '\0';
			appendStringInfo(path, "[%d]", index++);
		}
		if ((tok == WJB_VALUE || tok == WJB_ELEM) && v.type == jbvBinary)
			config_check_secret_keys(service, v.val.binary.data, pattern, path);
	}
	path->len = base_len;
	path->data[base_len] = '\0';
}

/*
 * Content rules: a JSON object, within the size cap, no secret-looking keys.
 */
static void
config_check_content(const char *service, Datum config)
{
	Jsonb	   *jb = DatumGetJsonbP(config);
	Size		size = VARSIZE(jb) - VARHDRSZ;

	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("config for service \"%s\" must be a JSON object", service),
				 errdetail("Got a JSON %s.",
						   JB_ROOT_IS_SCALAR(jb) ? "scalar" : "array")));
	if (size > (Size) config_max_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("config for service \"%s\" is too large: %zu bytes",
						service, size),
				 errdetail("The limit is central_hub.max_config_bytes = %d bytes.",
						   config_max_bytes)));
	if (config_secret_key_pattern != NULL && config_secret_key_pattern[0] != '\0')
	{
		StringInfoData path;

		initStringInfo(&path);
		config_check_secret_keys(service, &jb->root,
								 cstring_to_text(config_secret_key_pattern),
								 &path);
		pfree(path.data);
	}
}

/* Compare-and-set of a hub.* function: current version must be expected. */
static void
config_check_expected(ConfigWriteContext *ctx, const char *current)
{
	const char *expected;

	if (ctx == NULL || ctx->expected_version == NULL)
		return;
	expected = ctx->expected_version;
	if (expected[0] == '\0' && current == NULL)
		return;
	if (current != NULL && strcmp(expected, current) == 0)
		return;
	if (current == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_HUB_VERSION_CONFLICT),
				 errmsg("service \"%s\" has no config, expected version %s",
						ctx->service_name, expected),
				 errhint("Read the current version and retry.")));
	ereport(ERROR,
			(errcode(ERRCODE_HUB_VERSION_CONFLICT),
			 errmsg("service \"%s\" is at version %s, expected %s",
					ctx->service_name, current,
					expected[0] ? expected : "no config"),
			 errhint("Someone else changed it: read the current version and retry.")));
}

/*
 * Run fn as the owner of the config table, with restricted security, so the
 * audit and outbox tables need no grants for writers.  An error resets the
 * user through transaction abort.
 */
#define CONFIG_AS_OWNER_BEGIN(rel) \
	do { \
		Oid			save_userid_; \
		int			save_sec_; \
		GetUserIdAndSecContext(&save_userid_, &save_sec_); \
		SetUserIdAndSecContext(RelationGetForm(rel)->relowner, \
							   save_sec_ | SECURITY_LOCAL_USERID_CHANGE | \
							   SECURITY_RESTRICTED_OPERATION);
#define CONFIG_AS_OWNER_END() \
		SetUserIdAndSecContext(save_userid_, save_sec_); \
	} while (0)

/*
 * Latest version in the service's history (deleted services included), or
 * NULL when it never had a config.  Versions strictly increase, so the latest
 * is the highest.
 */
static char *
config_latest_history_version(Relation rel, const char *service)
{
	Datum		arg = CStringGetTextDatum(service);
	char	   *result = NULL;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (plan_latest_version == NULL)
	{
		Oid			argtype = TEXTOID;
		SPIPlanPtr	plan;

		plan = SPI_prepare("SELECT version FROM hub.config_audit_log"
						   " WHERE service_name = $1 ORDER BY id DESC LIMIT 1",
						   1, &argtype);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		plan_latest_version = plan;
	}
	CONFIG_AS_OWNER_BEGIN(rel);
	if (SPI_execute_plan(plan_latest_version, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading config history failed");
	CONFIG_AS_OWNER_END();
	if (SPI_processed == 1)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		result = SPI_palloc(strlen(v) + 1);
		strcpy(result, v);
	}
	SPI_finish();
	return result;
}

/*
 * Version of a new row: the one asked for, checked against the history, or
 * the next patch after the highest ever used (1.0.0 for a new service).
 */
static char *
config_version_for_insert(const char *service, const char *asked,
						  const char *latest)
{
	SemVer		want;
	SemVer		have;

	if (latest != NULL && !semver_parse(latest, &have))
		elog(ERROR, "history of service \"%s\" holds malformed version \"%s\"",
			 service, latest);
	if (asked == NULL)
		return latest ? semver_next_patch(&have) : pstrdup("1.0.0");
	semver_parse_or_error(service, asked, &want);
	if (latest != NULL && semver_compare(&want, &have) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_HUB_VERSION_NOT_NEWER),
				 errmsg("version %s of service \"%s\" is not newer than %s",
						asked, service, latest),
				 errdetail("Versions strictly increase over a service's whole history, deleted configs included."),
				 errhint("Give a higher version, or none to get %s.",
						 semver_next_patch(&have))));
	return pstrdup(asked);
}

/* Version of an updated row, given the current one. */
static char *
config_version_for_update(const char *service, const char *asked,
						  const char *current)
{
	return config_version_for_insert(service, asked, current);
}

/* True when an UPDATE leaves every user-visible column as it was. */
static bool
config_update_is_noop(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc)
{
	int			cols[] = {config_cols.config_json, config_cols.description,
	config_cols.tags, config_cols.active};

	for (int i = 0; i < lengthof(cols); i++)
	{
		bool		oldnull;
		bool		newnull;
		Datum		o = heap_getattr(oldtup, cols[i], desc, &oldnull);
		Datum		n = heap_getattr(newtup, cols[i], desc, &newnull);
		Form_pg_attribute att = TupleDescAttr(desc, cols[i] - 1);

		if (oldnull != newnull)
			return false;
		if (!oldnull && !datum_image_eq(o, n, att->attbyval, att->attlen))
			return false;
	}
	return true;
}

/*
 * BEFORE INSERT OR UPDATE OR DELETE ON hub.service_configs
 */
Datum
config_before_write(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	HeapTuple	newtup;
	HeapTuple	oldtup = NULL;
	ConfigWriteContext *ctx;
	char	   *service;
	char	   *asked;
	char	   *version;
	char	   *actor;
	bool		isnull;
	Datum		config;
	Datum		now;
	int			cols[6];
	Datum		values[6];
	bool		nulls[6] = {false};
	int			ncols = 0;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		elog(ERROR, "config_before_write must run as a BEFORE ROW trigger");

	rel = td->tg_relation;
	desc = RelationGetDescr(rel);
	config_lookup_columns(rel);

	if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		oldtup = td->tg_trigtuple;
		service = config_get_text(oldtup, desc, config_cols.service_name);
		ctx = config_context_for(service);
		config_check_expected(ctx, config_get_text(oldtup, desc, config_cols.version));
		return PointerGetDatum(oldtup);
	}

	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		oldtup = td->tg_trigtuple;
		newtup = td->tg_newtuple;
	}
	else
		newtup = td->tg_trigtuple;

	/* Name */
	service = config_get_text(newtup, desc, config_cols.service_name);
	if (service == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("service_name must not be NULL")));
	config_check_service_name(service);
	if (oldtup != NULL)
	{
		char	   *oldname = config_get_text(oldtup, desc, config_cols.service_name);

		if (strcmp(oldname, service) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot rename service \"%s\" to \"%s\"", oldname, service),
					 errhint("Create the new service and delete the old one; each keeps its own history.")));
	}

	/* Content */
	config = heap_getattr(newtup, config_cols.config_json, desc, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("config for service \"%s\" must not be NULL", service)));
	config_check_content(service, config);

	ctx = config_context_for(service);

	/* Version asked for: the function's argument, or a changed column. */
	if (ctx != NULL)
		asked = ctx->version ? pstrdup(ctx->version) : NULL;
	else
	{
		asked = config_get_text(newtup, desc, config_cols.version);
		if (oldtup != NULL && asked != NULL &&
			strcmp(asked, config_get_text(oldtup, desc, config_cols.version)) == 0)
			asked = NULL;
	}

	if (oldtup != NULL)
	{
		char	   *current = config_get_text(oldtup, desc, config_cols.version);

		config_check_expected(ctx, current);
		if (config_update_is_noop(oldtup, newtup, desc))
		{
			if (ctx != NULL)
			{
				ctx->noop = true;
				ctx->result_version = MemoryContextStrdup(ctx->result_cxt, current);
			}
			return PointerGetDatum(NULL);
		}
		version = config_version_for_update(service, asked, current);
	}
	else
	{
		config_check_expected(ctx, NULL);
		version = config_version_for_insert(service, asked,
											config_latest_history_version(rel, service));
	}

	/* Actor: an updated_by the statement itself set counts as explicit. */
	{
		char	   *given = config_get_text(newtup, desc, config_cols.updated_by);

		if (oldtup != NULL && given != NULL)
		{
			char	   *before = config_get_text(oldtup, desc, config_cols.updated_by);

			if (before != NULL && strcmp(before, given) == 0)
				given = NULL;
		}
		actor = config_resolve_actor(ctx, given);
	}

	now = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());

	cols[ncols] = config_cols.version;
	values[ncols++] = CStringGetTextDatum(version);
	cols[ncols] = config_cols.updated_at;
	values[ncols++] = now;
	cols[ncols] = config_cols.updated_by;
	values[ncols++] = CStringGetTextDatum(actor);
	if (oldtup == NULL)
	{
		cols[ncols] = config_cols.created_at;
		values[ncols++] = now;
		cols[ncols] = config_cols.created_by;
		values[ncols++] = CStringGetTextDatum(actor);
	}
	else
	{
		cols[ncols] = config_cols.created_at;
		values[ncols] = heap_getattr(oldtup, config_cols.created_at, desc,
									 &nulls[ncols]);
		ncols++;
		cols[ncols] = config_cols.created_by;
		values[ncols] = heap_getattr(oldtup, config_cols.created_by, desc,
									 &nulls[ncols]);
		ncols++;
	}

	return PointerGetDatum(heap_modify_tuple_by_cols(newtup, desc, ncols,
													 cols, values, nulls));
}

/*
 * One audit row and one outbox row for a change, written directly (see
 * hub_catalog.c): writers need no privilege on those tables.  Returns the
 * revision (audit id).
 */
static int64
config_write_audit(const char *service, Datum config,
				   const char *version, const char *previous,
				   const char *action, const char *actor, const char *reason)
{
	Datum		values[AUDIT_NATTS];
	bool		nulls[AUDIT_NATTS] = {false};
	int64		revision;

	values[AUDIT_SERVICE_NAME - 1] = CStringGetTextDatum(service);
	values[AUDIT_CONFIG_JSON - 1] = config;
	values[AUDIT_VERSION - 1] = CStringGetTextDatum(version);
	if (previous)
		values[AUDIT_PREVIOUS_VERSION - 1] = CStringGetTextDatum(previous);
	else
		nulls[AUDIT_PREVIOUS_VERSION - 1] = true;
	values[AUDIT_ACTION - 1] = CStringGetTextDatum(action);
	values[AUDIT_CHANGED_BY - 1] = CStringGetTextDatum(actor);
	values[AUDIT_CHANGED_AT - 1] =
		TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	if (reason)
		values[AUDIT_CHANGE_REASON - 1] = CStringGetTextDatum(reason);
	else
		nulls[AUDIT_CHANGE_REASON - 1] = true;
	values[AUDIT_DB_USER - 1] =
		CStringGetTextDatum(GetUserNameFromId(GetSessionUserId(), false));

	revision = hub_catalog_insert(HUB_TABLE_AUDIT, values, nulls);
	outbox_queue("config", service, revision);
	return revision;
}

/*
 * AFTER INSERT OR UPDATE OR DELETE ON hub.service_configs
 */
Datum
config_after_write(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	HeapTuple	row;
	ConfigWriteContext *ctx;
	char	   *service;
	char	   *version;
	char	   *previous;
	const char *action;
	char	   *actor;
	const char *reason;
	Datum		config;
	bool		isnull;
	int64		revision;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		elog(ERROR, "config_after_write must run as an AFTER ROW trigger");

	rel = td->tg_relation;
	desc = RelationGetDescr(rel);
	config_lookup_columns(rel);

	if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		row = td->tg_trigtuple;
		service = config_get_text(row, desc, config_cols.service_name);
		ctx = config_context_for(service);
		version = config_get_text(row, desc, config_cols.version);
		previous = version;
		action = "deleted";
		actor = config_resolve_actor(ctx, NULL);
	}
	else
	{
		bool		is_update = TRIGGER_FIRED_BY_UPDATE(td->tg_event);

		row = is_update ? td->tg_newtuple : td->tg_trigtuple;
		service = config_get_text(row, desc, config_cols.service_name);
		ctx = config_context_for(service);
		version = config_get_text(row, desc, config_cols.version);
		actor = config_get_text(row, desc, config_cols.updated_by);
		if (is_update)
		{
			previous = config_get_text(td->tg_trigtuple, desc, config_cols.version);
			action = "updated";
		}
		else
		{
			/* a re-created service continues its history */
			previous = config_latest_history_version(rel, service);
			action = "created";
		}
		if (ctx != NULL && ctx->action != NULL)
			action = ctx->action;
	}

	if (ctx != NULL && ctx->reason != NULL)
		reason = ctx->reason;
	else if (config_change_reason != NULL && config_change_reason[0] != '\0')
		reason = config_change_reason;
	else
		reason = NULL;

	config = heap_getattr(row, config_cols.config_json, desc, &isnull);

	revision = config_write_audit(service, config, version, previous,
								  action, actor, reason);

	if (ctx != NULL)
	{
		ctx->result_version = MemoryContextStrdup(ctx->result_cxt, version);
		ctx->previous_version = previous ?
			MemoryContextStrdup(ctx->result_cxt, previous) : NULL;
		ctx->revision = revision;
	}

	return PointerGetDatum(NULL);
}

/*
 * BEFORE UPDATE OR DELETE (row) and BEFORE TRUNCATE (statement) ON
 * hub.config_audit_log: history is append-only for all but superusers.
 */
Datum
audit_log_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	const char *what;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "audit_log_guard must run as a trigger");

	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		what = "update";
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		what = "delete from";
	else
		what = "truncate";

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot %s hub.config_audit_log: the audit log is append-only", what),
				 errdetail("Only a superuser may change history.")));

	if (TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
		return PointerGetDatum(NULL);
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		return PointerGetDatum(td->tg_newtuple);
	return PointerGetDatum(td->tg_trigtuple);
}

/*
 * BEFORE TRUNCATE ON hub.service_configs: TRUNCATE fires no row triggers,
 * so it would remove configs without audit rows or signals.
 */
Datum
config_truncate_guard(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "config_truncate_guard must run as a trigger");
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot truncate hub.service_configs: it would bypass the audit trail"),
			 errhint("Use DELETE FROM hub.service_configs, or hub.delete_config(), so that every removal is audited.")));
	return PointerGetDatum(NULL);
}
