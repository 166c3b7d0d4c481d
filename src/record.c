/*
 * record.c - splitting a byte stream into records (pure: no I/O).
 *
 * The readers in input.c hand this file the bytes they have buffered; it
 * finds delimiters with memchr, so a chunk costs one scan, not a call per
 * byte.  It also parses the -d escapes, and the same escapes in -C.
 */
#include <string.h>

#include "cpmap.h"

static int
record_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decode the escape at spec (just after its backslash): the byte it
 * stands for, or -1; *used is how many characters it took.
 */
static int
record_escape(const char *spec, size_t *used)
{
	*used = 1;
	switch (spec[0]) {
	case 'n':
		return '\n';
	case 't':
		return '\t';
	case '0':
		return '\0';
	case 'r':
		return '\r';
	case '\\':
		return '\\';
	case 'x':
		if (spec[1] != '\0' && record_hex_digit(spec[1]) >= 0 &&
		    record_hex_digit(spec[2]) >= 0) {
			*used = 3;
			return record_hex_digit(spec[1]) * 16 +
			       record_hex_digit(spec[2]);
		}
		return -1;
	default:
		return -1;
	}
}

int
record_parse_delimiter(const char *spec)
{
	size_t used;
	int c;

	if (spec[0] == '\0')
		return -1;
	if (spec[0] != '\\' || spec[1] == '\0')
		return spec[1] == '\0' ? (unsigned char)spec[0] : -1;
	c = record_escape(spec + 1, &used);
	return c >= 0 && spec[1 + used] == '\0' ? c : -1;
}

char *
record_parse_separator(char *spec)
{
	char *out = spec;
	size_t used;
	int c;

	if (spec[0] == '\0')
		return NULL;
	/* Check it all first: a refused spec is left as the user wrote it. */
	for (const char *p = spec; *p != '\0'; p++) {
		if (*p != '\\')
			continue;
		/* A NUL cannot end a C string separator: refuse it. */
		if ((c = record_escape(p + 1, &used)) <= 0)
			return NULL;
		p += used;
	}
	for (const char *p = spec; *p != '\0'; p++) {
		if (*p == '\\') {
			*out++ = (char)record_escape(p + 1, &used);
			p += used;
		} else {
			*out++ = *p;
		}
	}
	*out = '\0';
	return spec;
}

ssize_t
record_next(const char *data, size_t len, int delimiter, size_t *consumed)
{
	const char *end = memchr(data, delimiter, len);

	if (end == NULL)
		return -1;
	*consumed = (size_t)(end - data) + 1;
	return end - data;
}

size_t
record_strip_cr(const char *data, size_t len)
{
	if (len > 0 && data[len - 1] == '\r')
		return len - 1;
	return len;
}
