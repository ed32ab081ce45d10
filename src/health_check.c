/*-------------------------------------------------------------------------
 * health_check.c
 *	  Classification of health answers and the status thresholds.
 *
 * 2xx passes, unless the body is a JSON object whose top-level "status" is
 * "degraded" (degraded) or "unhealthy" (fail); 429 is degraded; anything
 * else fails.  An instance turns unhealthy after unhealthy_threshold
 * failures in a row and healthy (or degraded, when the latest answer said
 * so) after healthy_threshold non-failing answers in a row.
 *
 * Bodies come from hostile servers: they are parsed with PostgreSQL's JSON
 * lexer, which reports errors instead of throwing them, after a scan that
 * rejects nesting deep enough to reach the stack-depth check.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"

#include "health_check.h"

#define HEALTH_BODY_MAX_DEPTH	32

/* State of the scan for the top-level "status" member. */
typedef struct HealthBodyScan
{
	int			depth;			/* objects and arrays entered */
	bool		in_status;		/* the current top-level member is "status" */
	char	   *status;			/* its string value, when found */
} HealthBodyScan;

static void
health_scan_enter(void *state)
{
	((HealthBodyScan *) state)->depth++;
}

static void
health_scan_leave(void *state)
{
	((HealthBodyScan *) state)->depth--;
}

static void
health_scan_field_start(void *state, char *fname, bool isnull)
{
	HealthBodyScan *scan = (HealthBodyScan *) state;

	scan->in_status = scan->depth == 1 && fname != NULL && strcmp(fname, "status") == 0;
}

static void
health_scan_field_end(void *state, char *fname, bool isnull)
{
	((HealthBodyScan *) state)->in_status = false;
}

static void
health_scan_scalar(void *state, char *token, JsonTokenType tokentype)
{
	HealthBodyScan *scan = (HealthBodyScan *) state;

	if (scan->in_status && scan->depth == 1 && tokentype == JSON_TOKEN_STRING)
		scan->status = token;
}

/* Deepest nesting of brackets outside strings (bounded work, no recursion). */
static int
health_body_depth(const char *body, size_t len)
{
	int			depth = 0;
	int			deepest = 0;
	bool		in_string = false;

	for (size_t i = 0; i < len; i++)
	{
		char		c = body[i];

		if (in_string)
		{
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		}
		else if (c == '"')
			in_string = true;
		else if (c == '{' || c == '[')
			deepest = Max(deepest, ++depth);
		else if (c == '}' || c == ']')
			depth--;
	}
	return deepest;
}

/*
 * The string value of the body's top-level "status" member, or NULL when
 * the body is not such a JSON object.
 */
static char *
health_body_status(const char *body, size_t len)
{
	HealthBodyScan scan = {0};
	JsonSemAction sem = {0};
	JsonLexContext *lex;
	size_t		start = 0;

	while (start < len && (body[start] == ' ' || body[start] == '\t' ||
						   body[start] == '\r' || body[start] == '\n'))
		start++;
	if (start >= len || body[start] != '{' || len > INT_MAX ||
		memchr(body, '\0', len) != NULL ||
		health_body_depth(body, len) > HEALTH_BODY_MAX_DEPTH)
		return NULL;

	sem.semstate = &scan;
	sem.object_start = health_scan_enter;
	sem.object_end = health_scan_leave;
	sem.array_start = health_scan_enter;
	sem.array_end = health_scan_leave;
	sem.object_field_start = health_scan_field_start;
	sem.object_field_end = health_scan_field_end;
	sem.scalar = health_scan_scalar;

	lex = makeJsonLexContextCstringLen(unconstify(char *, body), (int) len, PG_UTF8, true);
	if (pg_parse_json(lex, &sem) != JSON_SUCCESS)
		return NULL;
	return scan.status;
}

/*
 * What an HTTP answer says about the instance; *reason is set (palloc'd)
 * for anything but a plain pass.
 */
HealthVerdict
health_classify_response(long http_status, const char *body, size_t body_len,
						 char **reason)
{
	*reason = NULL;
	if (http_status >= 200 && http_status <= 299)
	{
		char	   *status = health_body_status(body, body_len);

		if (status != NULL && pg_strcasecmp(status, "degraded") == 0)
		{
			*reason = psprintf("HTTP %ld, body status \"degraded\"", http_status);
			return HEALTH_DEGRADED;
		}
		if (status != NULL && pg_strcasecmp(status, "unhealthy") == 0)
		{
			*reason = psprintf("HTTP %ld, body status \"unhealthy\"", http_status);
			return HEALTH_FAIL;
		}
		return HEALTH_PASS;
	}
	if (http_status == 429)
	{
		*reason = pstrdup("HTTP 429 Too Many Requests");
		return HEALTH_DEGRADED;
	}
	*reason = psprintf("HTTP %ld", http_status);
	return HEALTH_FAIL;
}

/*
 * The status after one more verdict, updating the counters of consecutive
 * failures and successes (degraded answers count as successes: the
 * instance answers).
 */
const char *
health_next_status(const char *status, HealthVerdict verdict,
				   int *failures, int *successes,
				   int unhealthy_threshold, int healthy_threshold)
{
	if (verdict == HEALTH_FAIL)
	{
		*successes = 0;
		if (*failures < INT_MAX)
			(*failures)++;
		if (*failures >= unhealthy_threshold)
			return "unhealthy";
		return status;
	}
	*failures = 0;
	if (*successes < INT_MAX)
		(*successes)++;
	if (*successes >= healthy_threshold)
		return verdict == HEALTH_PASS ? "healthy" : "degraded";
	return status;
}
