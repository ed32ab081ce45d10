/*-------------------------------------------------------------------------
 * json_merge.c
 *	  RFC 7396 JSON merge patches, computed on jsonb containers in C.
 *
 * json_merge_apply() is what patch_config and the seeds' partial updates
 * (POST /api/v1/config/{service}) do: objects merge key by key, null removes
 * a key, anything else replaces.  json_merge_diff() is its inverse, used by
 * config_diff: the patch that turns one version into another.  A merge
 * patch cannot set a value to null, so a config holding explicit nulls
 * diffs to a patch that removes those keys instead.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"

#include "json_merge.h"

PG_FUNCTION_INFO_V1(hub_json_merge_patch);
PG_FUNCTION_INFO_V1(hub_json_merge_diff);

/* A Jsonb document as a JsonbValue that points at its root container. */
static void
json_merge_root_value(Jsonb *jb, JsonbValue *out)
{
	out->type = jbvBinary;
	out->val.binary.data = &jb->root;
	out->val.binary.len = VARSIZE(jb) - VARHDRSZ;
}

static bool
json_merge_is_object(const JsonbValue *v)
{
	return v != NULL && v->type == jbvBinary &&
		JsonContainerIsObject(v->val.binary.data);
}

/* Value of key in object v, or NULL when absent. */
static JsonbValue *
json_merge_lookup(const JsonbValue *object, const JsonbValue *key)
{
	return getKeyJsonValueFromContainer(object->val.binary.data,
										key->val.string.val,
										key->val.string.len, NULL);
}

/* Deep equality of two values as found in containers. */
static bool
json_merge_equal(const JsonbValue *a, const JsonbValue *b)
{
	if (a->type == jbvBinary && b->type == jbvBinary)
		return compareJsonbContainers(a->val.binary.data,
									  b->val.binary.data) == 0;
	if (a->type != b->type)
		return false;
	switch (a->type)
	{
		case jbvNull:
			return true;
		case jbvBool:
			return a->val.boolean == b->val.boolean;
		case jbvString:
			return a->val.string.len == b->val.string.len &&
				memcmp(a->val.string.val, b->val.string.val,
					   a->val.string.len) == 0;
		case jbvNumeric:
			return DatumGetBool(DirectFunctionCall2(numeric_eq,
													NumericGetDatum(a->val.numeric),
													NumericGetDatum(b->val.numeric)));
		default:
			return false;
	}
}

/*
 * Push into *st, as element seq, the result of merging patch onto target
 * (target NULL: no value there).  Returns what pushJsonbValue returned.
 */
static JsonbValue *
json_merge_push_apply(JsonbParseState **st, JsonbIteratorToken seq,
					  JsonbValue *target, JsonbValue *patch)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	key;
	JsonbValue	val;

	if (!json_merge_is_object(patch))
		return pushJsonbValue(st, seq, patch);

	if (!json_merge_is_object(target))
		target = NULL;

	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);

	/* Keys of the target, in place: kept, merged or removed. */
	if (target != NULL)
	{
		it = JsonbIteratorInit(target->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
		{
			JsonbValue *patched;

			if (tok != WJB_KEY)
				continue;
			tok = JsonbIteratorNext(&it, &val, true);
			Assert(tok == WJB_VALUE);
			patched = json_merge_lookup(patch, &key);
			if (patched == NULL)
			{
				pushJsonbValue(st, WJB_KEY, &key);
				pushJsonbValue(st, WJB_VALUE, &val);
			}
			else if (patched->type != jbvNull)
			{
				pushJsonbValue(st, WJB_KEY, &key);
				json_merge_push_apply(st, WJB_VALUE, &val, patched);
			}
		}
	}

	/* Keys only the patch has: added, with their own nulls dropped. */
	it = JsonbIteratorInit(patch->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &val, true);
		Assert(tok == WJB_VALUE);
		if (val.type == jbvNull)
			continue;
		if (target != NULL && json_merge_lookup(target, &key) != NULL)
			continue;
		pushJsonbValue(st, WJB_KEY, &key);
		json_merge_push_apply(st, WJB_VALUE, NULL, &val);
	}

	return pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/*
 * Apply merge patch to target (NULL: no document yet).  A patch that is not
 * an object replaces the whole document, as RFC 7396 says.
 */
Jsonb *
json_merge_apply(Jsonb *target, Jsonb *patch)
{
	JsonbParseState *st = NULL;
	JsonbValue	t;
	JsonbValue	p;

	if (!JB_ROOT_IS_OBJECT(patch))
		return patch;
	json_merge_root_value(patch, &p);
	if (target != NULL)
		json_merge_root_value(target, &t);
	return JsonbValueToJsonb(json_merge_push_apply(&st, WJB_VALUE,
												   target ? &t : NULL, &p));
}

/*
 * Push the patch that turns object from into object to.
 */
static JsonbValue *
json_merge_push_diff(JsonbParseState **st, JsonbValue *from, JsonbValue *to)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	key;
	JsonbValue	val;
	JsonbValue	null_value;

	null_value.type = jbvNull;
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);

	/* Keys of from: removed, changed or unchanged. */
	it = JsonbIteratorInit(from->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		JsonbValue *after;

		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &val, true);
		Assert(tok == WJB_VALUE);
		after = json_merge_lookup(to, &key);
		if (after == NULL)
		{
			pushJsonbValue(st, WJB_KEY, &key);
			pushJsonbValue(st, WJB_VALUE, &null_value);
		}
		else if (!json_merge_equal(&val, after))
		{
			pushJsonbValue(st, WJB_KEY, &key);
			if (json_merge_is_object(&val) && json_merge_is_object(after))
				json_merge_push_diff(st, &val, after);
			else
				pushJsonbValue(st, WJB_VALUE, after);
		}
	}

	/* Keys only to has: added as they are. */
	it = JsonbIteratorInit(to->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &val, true);
		Assert(tok == WJB_VALUE);
		if (json_merge_lookup(from, &key) != NULL)
			continue;
		pushJsonbValue(st, WJB_KEY, &key);
		pushJsonbValue(st, WJB_VALUE, &val);
	}

	return pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/*
 * The merge patch that turns document from into document to: {} when they
 * are equal, to itself when either is not an object.
 */
Jsonb *
json_merge_diff(Jsonb *from, Jsonb *to)
{
	JsonbParseState *st = NULL;
	JsonbValue	f;
	JsonbValue	t;

	if (!JB_ROOT_IS_OBJECT(from) || !JB_ROOT_IS_OBJECT(to))
		return to;
	json_merge_root_value(from, &f);
	json_merge_root_value(to, &t);
	return JsonbValueToJsonb(json_merge_push_diff(&st, &f, &t));
}

/*
 * hub.json_merge_patch(target jsonb, patch jsonb): SQL face of apply, for
 * operators who want to preview a patch.  NULL patch leaves target as is.
 */
Datum
hub_json_merge_patch(PG_FUNCTION_ARGS)
{
	Jsonb	   *target = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);

	if (PG_ARGISNULL(1))
	{
		if (target == NULL)
			PG_RETURN_NULL();
		PG_RETURN_JSONB_P(target);
	}
	PG_RETURN_JSONB_P(json_merge_apply(target, PG_GETARG_JSONB_P(1)));
}

/*
 * hub.json_merge_diff(from jsonb, to jsonb): SQL face of diff, the patch
 * that hub.json_merge_patch(from, patch) turns into to.
 */
Datum
hub_json_merge_diff(PG_FUNCTION_ARGS)
{
	PG_RETURN_JSONB_P(json_merge_diff(PG_GETARG_JSONB_P(0), PG_GETARG_JSONB_P(1)));
}
