/*-------------------------------------------------------------------------
 * semver.c
 *	  Version strings of service configs: strict MAJOR.MINOR.PATCH.
 *
 * Versions name config contents forever, so the format is strict: three
 * decimal numbers without leading zeros, no pre-release or build suffix.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "semver.h"

/* Largest component we accept; keeps next_patch from overflowing. */
#define SEMVER_COMPONENT_MAX	INT64CONST(999999999999999)

/*
 * Parse one decimal component at *p, advancing past it.
 */
static bool
semver_parse_component(const char **p, int64 *out)
{
	const char *s = *p;
	int64		value = 0;
	int			digits = 0;

	if (*s == '0' && s[1] >= '0' && s[1] <= '9')
		return false;			/* leading zero */
	while (*s >= '0' && *s <= '9')
	{
		value = value * 10 + (*s - '0');
		if (value > SEMVER_COMPONENT_MAX)
			return false;
		s++;
		digits++;
	}
	if (digits == 0)
		return false;
	*p = s;
	*out = value;
	return true;
}

/*
 * Parse "MAJOR.MINOR.PATCH"; false when the string is anything else.
 */
bool
semver_parse(const char *str, SemVer *out)
{
	const char *p = str;

	if (!semver_parse_component(&p, &out->major) || *p++ != '.')
		return false;
	if (!semver_parse_component(&p, &out->minor) || *p++ != '.')
		return false;
	if (!semver_parse_component(&p, &out->patch) || *p != '\0')
		return false;
	return true;
}

/*
 * Semver precedence: <0, 0, >0 as a is lower, equal, higher than b.
 */
int
semver_compare(const SemVer *a, const SemVer *b)
{
	if (a->major != b->major)
		return a->major < b->major ? -1 : 1;
	if (a->minor != b->minor)
		return a->minor < b->minor ? -1 : 1;
	if (a->patch != b->patch)
		return a->patch < b->patch ? -1 : 1;
	return 0;
}

/*
 * The version right after v: same major and minor, patch + 1 (palloc'd).
 */
char *
semver_next_patch(const SemVer *v)
{
	return psprintf(INT64_FORMAT "." INT64_FORMAT "." INT64_FORMAT,
					v->major, v->minor, v->patch + 1);
}

/*
 * Parse a version a user gave, or raise invalid_text_representation.
 */
void
semver_parse_or_error(const char *service, const char *str, SemVer *out)
{
	if (!semver_parse(str, out))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid version \"%s\" for service \"%s\"", str, service),
				 errdetail("Versions are MAJOR.MINOR.PATCH: three decimal numbers without leading zeros, e.g. 1.4.0.")));
}
