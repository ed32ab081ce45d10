/*-------------------------------------------------------------------------
 * semver.h
 *	  Parsing and ordering of MAJOR.MINOR.PATCH version strings.
 *-------------------------------------------------------------------------
 */
#ifndef CENTRAL_HUB_SEMVER_H
#define CENTRAL_HUB_SEMVER_H

typedef struct SemVer
{
	int64		major;
	int64		minor;
	int64		patch;
} SemVer;

extern bool semver_parse(const char *str, SemVer *out);
extern int	semver_compare(const SemVer *a, const SemVer *b);
extern char *semver_next_patch(const SemVer *v);
extern void semver_parse_or_error(const char *service, const char *str,
								  SemVer *out);

#endif
