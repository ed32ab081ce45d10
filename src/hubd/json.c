/*
 * json.c: text buffers, JSON escaping and the strict JSON syntax checker of
 * hubd (see json.h).  The checker is also what the fuzz target exercises,
 * together with the router: it reads untrusted bytes and must never read
 * past len, recurse without bound or accept what PostgreSQL's parser would
 * call malformed.
 */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
jsonbuf_init(JsonBuf *buf)
{
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
	buf->failed = false;
}

void
jsonbuf_free(JsonBuf *buf)
{
	free(buf->data);
	jsonbuf_init(buf);
}

/* Makes room for extra more bytes plus the terminating NUL. */
static bool
jsonbuf_reserve(JsonBuf *buf, size_t extra)
{
	size_t		need;
	size_t		cap;
	char	   *data;

	if (buf->failed)
		return false;
	need = buf->len + extra + 1;
	if (need <= buf->cap)
		return true;
	cap = buf->cap ? buf->cap : 256;
	while (cap < need)
		cap *= 2;
	data = realloc(buf->data, cap);
	if (data == NULL)
	{
		buf->failed = true;
		return false;
	}
	buf->data = data;
	buf->cap = cap;
	return true;
}

void
jsonbuf_append(JsonBuf *buf, const char *data, size_t len)
{
	if (!jsonbuf_reserve(buf, len))
		return;
	memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
}

void
jsonbuf_puts(JsonBuf *buf, const char *s)
{
	jsonbuf_append(buf, s, strlen(s));
}

void
jsonbuf_printf(JsonBuf *buf, const char *fmt,...)
{
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !jsonbuf_reserve(buf, (size_t) n))
		return;
	va_start(ap, fmt);
	vsnprintf(buf->data + buf->len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	buf->len += (size_t) n;
}

void
jsonbuf_string(JsonBuf *buf, const char *s)
{
	const unsigned char *p;

	if (s == NULL)
	{
		jsonbuf_puts(buf, "null");
		return;
	}
	jsonbuf_append(buf, "\"", 1);
	for (p = (const unsigned char *) s; *p; p++)
	{
		switch (*p)
		{
			case '"':
				jsonbuf_append(buf, "\\\"", 2);
				break;
			case '\\':
				jsonbuf_append(buf, "\\\\", 2);
				break;
			case '\n':
				jsonbuf_append(buf, "\\n", 2);
				break;
			case '\r':
				jsonbuf_append(buf, "\\r", 2);
				break;
			case '\t':
				jsonbuf_append(buf, "\\t", 2);
				break;
			default:
				if (*p < 0x20)
					jsonbuf_printf(buf, "\\u%04x", *p);
				else
					jsonbuf_append(buf, (const char *) p, 1);
		}
	}
	jsonbuf_append(buf, "\"", 1);
}

void
jsonbuf_key(JsonBuf *buf, const char *key)
{
	jsonbuf_string(buf, key);
	jsonbuf_append(buf, ":", 1);
}

/* ---- strict syntax checker ------------------------------------------- */

typedef struct JsonScan
{
	const unsigned char *p;
	const unsigned char *end;
	const unsigned char *start;
	const char *error;
} JsonScan;

static bool json_scan_value(JsonScan *s, int depth);

static bool
json_fail(JsonScan *s, const char *error)
{
	if (s->error == NULL)
		s->error = error;
	return false;
}

static void
json_skip_space(JsonScan *s)
{
	while (s->p < s->end &&
		   (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/*
 * Checks one UTF-8 sequence starting at s->p (a byte >= 0x80): shortest
 * form, no surrogates, at most U+10FFFF.
 */
static bool
json_scan_utf8(JsonScan *s)
{
	const unsigned char *p = s->p;
	unsigned int c = *p;
	unsigned int cp;
	int			n;

	if (c >= 0xC2 && c <= 0xDF)
	{
		n = 1;
		cp = c & 0x1F;
	}
	else if (c >= 0xE0 && c <= 0xEF)
	{
		n = 2;
		cp = c & 0x0F;
	}
	else if (c >= 0xF0 && c <= 0xF4)
	{
		n = 3;
		cp = c & 0x07;
	}
	else
		return json_fail(s, "invalid UTF-8");
	if (s->end - p <= n)
		return json_fail(s, "truncated UTF-8");
	for (int i = 1; i <= n; i++)
	{
		if ((p[i] & 0xC0) != 0x80)
			return json_fail(s, "invalid UTF-8");
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
		(cp >= 0xD800 && cp <= 0xDFFF))
		return json_fail(s, "invalid UTF-8");
	s->p += n + 1;
	return true;
}

static int
json_hex4(const unsigned char *p)
{
	int			v = 0;

	for (int i = 0; i < 4; i++)
	{
		int			c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* A string, s->p at its opening quote. */
static bool
json_scan_string(JsonScan *s)
{
	s->p++;
	while (s->p < s->end)
	{
		unsigned char c = *s->p;

		if (c == '"')
		{
			s->p++;
			return true;
		}
		if (c < 0x20)
			return json_fail(s, "control character in string");
		if (c == '\\')
		{
			if (s->end - s->p < 2)
				return json_fail(s, "truncated escape");
			c = s->p[1];
			if (c == 'u')
			{
				int			u;

				if (s->end - s->p < 6 || (u = json_hex4(s->p + 2)) < 0)
					return json_fail(s, "bad \\u escape");
				s->p += 6;
				/* a surrogate must come as a high + low pair */
				if (u >= 0xDC00 && u <= 0xDFFF)
					return json_fail(s, "lone low surrogate");
				if (u >= 0xD800 && u <= 0xDBFF)
				{
					int			low;

					if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' ||
						(low = json_hex4(s->p + 2)) < 0xDC00 || low > 0xDFFF)
						return json_fail(s, "lone high surrogate");
					s->p += 6;
				}
				continue;
			}
			if (strchr("\"\\/bfnrt", c) == NULL || c == '\0')
				return json_fail(s, "bad escape");
			s->p += 2;
			continue;
		}
		if (c >= 0x80)
		{
			if (!json_scan_utf8(s))
				return false;
			continue;
		}
		s->p++;
	}
	return json_fail(s, "unterminated string");
}

static bool
json_scan_digits(JsonScan *s)
{
	const unsigned char *start = s->p;

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return s->p > start;
}

static bool
json_scan_number(JsonScan *s)
{
	if (*s->p == '-')
		s->p++;
	if (s->p < s->end && *s->p == '0')
		s->p++;
	else if (!json_scan_digits(s))
		return json_fail(s, "bad number");
	if (s->p < s->end && *s->p == '.')
	{
		s->p++;
		if (!json_scan_digits(s))
			return json_fail(s, "bad number");
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E'))
	{
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (!json_scan_digits(s))
			return json_fail(s, "bad number");
	}
	return true;
}

static bool
json_scan_literal(JsonScan *s, const char *word)
{
	size_t		n = strlen(word);

	if ((size_t) (s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return json_fail(s, "unexpected token");
	s->p += n;
	return true;
}

/* The members of an object or elements of an array, s->p at the bracket. */
static bool
json_scan_container(JsonScan *s, int depth, bool object)
{
	unsigned char close = object ? '}' : ']';

	if (depth >= JSON_MAX_DEPTH)
		return json_fail(s, "nested too deeply");
	s->p++;
	json_skip_space(s);
	if (s->p < s->end && *s->p == close)
	{
		s->p++;
		return true;
	}
	for (;;)
	{
		if (object)
		{
			if (s->p >= s->end || *s->p != '"')
				return json_fail(s, "expected member name");
			if (!json_scan_string(s))
				return false;
			json_skip_space(s);
			if (s->p >= s->end || *s->p != ':')
				return json_fail(s, "expected ':'");
			s->p++;
		}
		if (!json_scan_value(s, depth + 1))
			return false;
		json_skip_space(s);
		if (s->p >= s->end)
			return json_fail(s, "unterminated container");
		if (*s->p == close)
		{
			s->p++;
			return true;
		}
		if (*s->p != ',')
			return json_fail(s, "expected ',' or end of container");
		s->p++;
		json_skip_space(s);
	}
}

static bool
json_scan_value(JsonScan *s, int depth)
{
	json_skip_space(s);
	if (s->p >= s->end)
		return json_fail(s, "unexpected end of input");
	switch (*s->p)
	{
		case '{':
			return json_scan_container(s, depth, true);
		case '[':
			return json_scan_container(s, depth, false);
		case '"':
			return json_scan_string(s);
		case 't':
			return json_scan_literal(s, "true");
		case 'f':
			return json_scan_literal(s, "false");
		case 'n':
			return json_scan_literal(s, "null");
		default:
			if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
				return json_scan_number(s);
			return json_fail(s, "unexpected character");
	}
}

bool
json_validate(const char *text, size_t len, const char **error, size_t *offset)
{
	JsonScan	s;

	s.start = s.p = (const unsigned char *) text;
	s.end = s.p + len;
	s.error = NULL;
	if (json_scan_value(&s, 0))
	{
		json_skip_space(&s);
		if (s.p != s.end)
			json_fail(&s, "trailing characters after the JSON value");
	}
	if (error)
		*error = s.error;
	if (offset)
		*offset = (size_t) (s.p - s.start);
	return s.error == NULL;
}

/*
 * Copies the string at s->p (already validated) into out unescaped; refuses
 * \u escapes beyond ASCII and values that do not fit.
 */
static bool
json_copy_string(JsonScan *s, char *out, size_t outsize)
{
	size_t		n = 0;

	s->p++;
	while (s->p < s->end && *s->p != '"')
	{
		char		c = (char) *s->p;

		if (c == '\\')
		{
			c = (char) s->p[1];
			s->p += 2;
			switch (c)
			{
				case 'b': c = '\b'; break;
				case 'f': c = '\f'; break;
				case 'n': c = '\n'; break;
				case 'r': c = '\r'; break;
				case 't': c = '\t'; break;
				case 'u':
					{
						int			u = json_hex4(s->p);

						if (u <= 0 || u > 0x7F)
							return false;
						c = (char) u;
						s->p += 4;
						break;
					}
				default:
					break;
			}
		}
		else
			s->p++;
		if (n + 1 >= outsize)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return true;
}

bool
json_top_level_string(const char *text, size_t len, const char *key,
					  char *out, size_t outsize)
{
	JsonScan	s;
	size_t		keylen = strlen(key);

	if (!json_validate(text, len, NULL, NULL))
		return false;
	s.start = s.p = (const unsigned char *) text;
	s.end = s.p + len;
	s.error = NULL;
	json_skip_space(&s);
	if (*s.p != '{')
		return false;
	s.p++;
	for (;;)
	{
		const unsigned char *name;
		bool		match;

		json_skip_space(&s);
		if (*s.p != '"')
			return false;
		name = s.p + 1;
		json_scan_string(&s);
		match = (size_t) (s.p - 1 - name) == keylen &&
			memcmp(name, key, keylen) == 0;
		json_skip_space(&s);
		s.p++;					/* ':' */
		json_skip_space(&s);
		if (match)
			return *s.p == '"' && json_copy_string(&s, out, outsize);
		json_scan_value(&s, 1);
		json_skip_space(&s);
		if (*s.p != ',')
			return false;
		s.p++;
	}
}
