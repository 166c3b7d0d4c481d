/*
 * record.c - splitting a byte stream into records (pure: no I/O).
 *
 * The readers in input.c hand this file the bytes they have buffered; it
 * finds delimiters with memchr, so a chunk costs one scan, not a call per
 * byte.  It also parses the -d escapes.
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

int
record_parse_delimiter(const char *spec)
{
	if (spec[0] == '\0')
		return -1;
	if (spec[0] != '\\' || spec[1] == '\0')
		return spec[1] == '\0' ? (unsigned char)spec[0] : -1;
	if (spec[1] != '\0' && spec[2] == '\0') {
		switch (spec[1]) {
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
		default:
			return -1;
		}
	}
	if (spec[1] == 'x' && spec[2] != '\0' && spec[3] != '\0' &&
	    spec[4] == '\0') {
		int hi = record_hex_digit(spec[2]),
		    lo = record_hex_digit(spec[3]);

		if (hi >= 0 && lo >= 0)
			return hi * 16 + lo;
	}
	return -1;
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
