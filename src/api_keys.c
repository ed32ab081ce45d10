/*-------------------------------------------------------------------------
 * api_keys.c
 *	  API keys of hubd, the HTTP frontend: hub.create_api_key,
 *	  hub.disable_api_key and hub.api_key_authenticate.
 *
 * A key is 32 bytes from pg_strong_random, shown once as "hub_" + 64 hex
 * digits; the table hub.api_keys keeps only its SHA-256, so a copy of the
 * table (or a backup) gives no usable key.  hubd checks each request's key
 * with hub.api_key_authenticate, which raises 28000 (invalid authorization)
 * for an unknown or disabled key, so the rest of the request's transaction
 * never runs; hubd then does SET LOCAL ROLE to the key's role and SET
 * LOCAL central_hub.actor to its name, so that the audit log names the key.
 *
 * hubd caches the keys it found valid; a statement trigger sends NOTIFY
 * hub_api_keys at commit of any change to the table (disabling a key,
 * deleting it), so that every hubd forgets them at once.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(hub_create_api_key);
PG_FUNCTION_INFO_V1(hub_disable_api_key);
PG_FUNCTION_INFO_V1(hub_api_key_authenticate);
PG_FUNCTION_INFO_V1(hub_api_keys_changed);

#define API_KEY_RANDOM_BYTES 32
#define API_KEY_PREFIX "hub_"

/* The key lookup of hub.api_key_authenticate, kept for the session. */
static SPIPlanPtr api_key_lookup_plan = NULL;

/* Returns the SHA-256 of key as a bytea. */
static bytea *
api_key_hash(const char *key, size_t len)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	bytea	   *hash = palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH);

	if (ctx == NULL ||
		pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) key, len) < 0 ||
		pg_cryptohash_final(ctx, (uint8 *) VARDATA(hash), PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "could not compute SHA-256: %s", pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	SET_VARSIZE(hash, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	return hash;
}

static char *
api_key_text_arg(FunctionCallInfo fcinfo, int n, const char *what)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", what)));
	return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/* Key names: what an operator can read in the audit log, no odd bytes. */
static void
api_key_check_name(const char *name)
{
	size_t		len = strlen(name);

	if (len == 0 || len > 100 || !isalnum((unsigned char) name[0]) ||
		strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			   "0123456789_.@-") != len)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid API key name \"%s\"", name),
				 errdetail("Key names are 1 to 100 letters, digits and _ . @ -, starting with a letter or digit.")));
}

/*
 * hub.create_api_key(name, role) -> the key, shown this once.
 */
Datum
hub_create_api_key(PG_FUNCTION_ARGS)
{
	char	   *name = api_key_text_arg(fcinfo, 0, "name");
	char	   *role = api_key_text_arg(fcinfo, 1, "role");
	uint8		random[API_KEY_RANDOM_BYTES];
	char		key[sizeof(API_KEY_PREFIX) + 2 * API_KEY_RANDOM_BYTES];
	Datum		args[3];
	Oid			types[3] = {TEXTOID, BYTEAOID, TEXTOID};
	int			rc;

	api_key_check_name(name);
	if (strcmp(role, "hub_reader") != 0 && strcmp(role, "hub_writer") != 0 &&
		strcmp(role, "hub_admin") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid API key role \"%s\"", role),
				 errhint("Use hub_reader, hub_writer or hub_admin.")));
	if (!pg_strong_random(random, sizeof(random)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes for an API key")));
	strcpy(key, API_KEY_PREFIX);
	hex_encode((const char *) random, sizeof(random), key + strlen(API_KEY_PREFIX));
	key[sizeof(key) - 1] = '\0';
	explicit_bzero(random, sizeof(random));

	args[0] = CStringGetTextDatum(name);
	args[1] = PointerGetDatum(api_key_hash(key, strlen(key)));
	args[2] = CStringGetTextDatum(role);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args("INSERT INTO hub.api_keys (name, key_hash, role)"
							   " VALUES ($1, $2, $3)",
							   3, types, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not insert API key: %s", SPI_result_code_string(rc));
	SPI_finish();

	PG_RETURN_TEXT_P(cstring_to_text(key));
}

/*
 * hub.disable_api_key(name): the key stops working at once (the next
 * request that presents it gets 401); the row stays for the record.
 */
Datum
hub_disable_api_key(PG_FUNCTION_ARGS)
{
	char	   *name = api_key_text_arg(fcinfo, 0, "name");
	Datum		args[1];
	Oid			types[1] = {TEXTOID};
	int			rc;
	uint64		found;

	args[0] = CStringGetTextDatum(name);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args("UPDATE hub.api_keys"
							   " SET disabled = true, disabled_at = coalesce(disabled_at, now())"
							   " WHERE name = $1",
							   1, types, args, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "could not disable API key: %s", SPI_result_code_string(rc));
	found = SPI_processed;
	SPI_finish();
	if (found == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("API key \"%s\" does not exist", name)));
	PG_RETURN_VOID();
}

/*
 * hub.api_key_authenticate(key) -> (name, role) of an enabled key; raises
 * 28000 otherwise, so that nothing after it in the transaction runs.
 */
Datum
hub_api_key_authenticate(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		args[1];
	Oid			types[1] = {BYTEAOID};
	Datum		values[2];
	bool		nulls[2] = {false, false};
	text	   *key;
	int			rc;
	HeapTuple	result = NULL;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "hub.api_key_authenticate must return a record");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("no API key given")));
	key = PG_GETARG_TEXT_PP(0);
	args[0] = PointerGetDatum(api_key_hash(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* hubd calls this once per request: keep the plan for the session */
	if (api_key_lookup_plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare("SELECT name, role FROM hub.api_keys"
									   " WHERE key_hash = $1 AND NOT disabled",
									   1, types);

		if (plan == NULL)
			elog(ERROR, "could not prepare the API key lookup: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		api_key_lookup_plan = plan;
	}
	rc = SPI_execute_plan(api_key_lookup_plan, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not look up API key: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		bool		isnull;

		values[0] = SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc, 1, &isnull),
									  false, -1);
		values[1] = SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc, 2, &isnull),
									  false, -1);
		result = heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls);
	}
	SPI_finish();

	if (result == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("invalid or disabled API key")));
	PG_RETURN_DATUM(HeapTupleGetDatum(result));
}

/*
 * Statement trigger on hub.api_keys (UPDATE, DELETE, TRUNCATE): NOTIFY
 * hub_api_keys at commit, so that hubd's key cache drops every key.  Key
 * changes are rare admin acts, unlike config writes (which never notify).
 */
Datum
hub_api_keys_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "hub_api_keys_changed: not called by trigger manager");
	Async_Notify("hub_api_keys", "");
	return PointerGetDatum(NULL);
}
