/*
 * json.h: growable text buffers, JSON string escaping and a strict JSON
 * syntax checker for hubd.
 *
 * hubd never builds a document model: request bodies are checked here (so a
 * malformed body gets 400 without reaching the database) and then handed to
 * PostgreSQL as a jsonb parameter; responses are written piece by piece into
 * a JsonBuf, with jsonb text from the database pasted in as it is.
 */
#ifndef HUBD_JSON_H
#define HUBD_JSON_H

#include <stdbool.h>
#include <stddef.h>

typedef struct JsonBuf
{
	char	   *data;			/* NUL-terminated, or NULL before the first write */
	size_t		len;
	size_t		cap;
	bool		failed;			/* an allocation failed: contents are incomplete */
} JsonBuf;

extern void jsonbuf_init(JsonBuf *buf);
extern void jsonbuf_free(JsonBuf *buf);
extern void jsonbuf_append(JsonBuf *buf, const char *data, size_t len);
extern void jsonbuf_puts(JsonBuf *buf, const char *s);
extern void jsonbuf_printf(JsonBuf *buf, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
/* Appends s as a quoted JSON string (NULL appends null). */
extern void jsonbuf_string(JsonBuf *buf, const char *s);
/* Appends "key": to an object being written. */
extern void jsonbuf_key(JsonBuf *buf, const char *key);

/* Deepest nesting json_validate accepts (PostgreSQL's own limit is higher). */
#define JSON_MAX_DEPTH 256

/*
 * json_validate: true when text[0..len) is one well-formed JSON value in
 * valid UTF-8 (RFC 8259), surrounded only by whitespace.  On failure *error
 * says why (a static string) and *offset where.
 */
extern bool json_validate(const char *text, size_t len,
						  const char **error, size_t *offset);

/*
 * json_top_level_string: when text is a JSON object whose top-level member
 * key is a string, copy its (unescaped, \u escapes other than ASCII refused)
 * value into out and return true.  Used for the small NOTIFY payloads.
 */
extern bool json_top_level_string(const char *text, size_t len, const char *key,
								  char *out, size_t outsize);

#endif							/* HUBD_JSON_H */
