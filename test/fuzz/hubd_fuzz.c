/*
 * hubd_fuzz.c: libFuzzer target for hubd's request router, percent-decoder
 * and JSON checker (src/hubd/router.c, src/hubd/json.c), the code that
 * reads untrusted request bytes before anything reaches the database.
 *
 * Input: byte 0 picks the method, then the path up to the first newline,
 * then the rest is used as a request body and as a query value.  Beyond
 * the sanitizers (address, undefined), it checks the router's promises:
 * decoded names fit and hold no NUL, matched routes have a name, and the
 * JSON checker is deterministic and agrees with json_top_level_string.
 *
 *   make hubd-fuzz && test/fuzz/hubd_fuzz -max_total_time=600 test/fuzz/corpus
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "router.h"

#define FUZZ_CHECK(cond) do { if (!(cond)) abort(); } while (0)

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"};
	const char *method;
	const uint8_t *nl;
	size_t		pathlen;
	char	   *path;
	const char *rest;
	size_t		restlen;
	RouteMatch	m;
	RouteResult r;
	char		decoded[64];
	char		value[64];
	const char *error;
	size_t		offset;
	bool		valid;

	if (size < 1)
		return 0;
	method = methods[data[0] % 6];
	data++;
	size--;
	nl = memchr(data, '\n', size);
	pathlen = nl ? (size_t) (nl - data) : size;
	path = malloc(pathlen + 1);
	memcpy(path, data, pathlen);
	path[pathlen] = '\0';		/* an embedded NUL just ends the path early */
	rest = nl ? (const char *) nl + 1 : "";
	restlen = nl ? size - pathlen - 1 : 0;

	r = router_match(method, path, &m);
	if (r == ROUTE_MATCHED)
	{
		FUZZ_CHECK(m.id > ROUTE_NONE && m.id < ROUTE_COUNT);
		FUZZ_CHECK(strcmp(router_route_name(m.id), "unknown") != 0);
		FUZZ_CHECK(strlen(m.service) <= ROUTER_SEGMENT_MAX);
		FUZZ_CHECK(strlen(m.instance) <= ROUTER_SEGMENT_MAX);
		FUZZ_CHECK(m.has_instance || m.instance[0] == '\0');
	}
	else if (r == ROUTE_METHOD_NOT_ALLOWED)
		FUZZ_CHECK(m.allow != NULL);

	if (router_decode(rest, restlen, true, decoded, sizeof(decoded)))
		FUZZ_CHECK(strlen(decoded) < sizeof(decoded));

	valid = json_validate(rest, restlen, &error, &offset);
	FUZZ_CHECK(offset <= restlen);
	FUZZ_CHECK(valid == (error == NULL));
	FUZZ_CHECK(valid == json_validate(rest, restlen, NULL, NULL));
	if (json_top_level_string(rest, restlen, "version", value, sizeof(value)))
	{
		FUZZ_CHECK(valid);
		FUZZ_CHECK(strlen(value) < sizeof(value));
	}
	free(path);
	return 0;
}
