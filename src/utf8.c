/*
 * utf8.c - streaming UTF-8 validation and JSON string escaping (pure).
 *
 * A task's output arrives, and is read back from a spill file, in pieces
 * that can split a multi-byte character anywhere, so validation keeps the
 * state of an unfinished sequence between pieces.  The rules are RFC 3629's:
 * no overlong forms, no surrogates, nothing above U+10FFFF.
 *
 * Escaping is for text already known to be valid UTF-8: only ASCII bytes
 * ever need an escape, so a piece boundary inside a character is harmless.
 */
#include <string.h>

#include "cpmap.h"

void
utf8_init(struct utf8_state *s)
{
	memset(s, 0, sizeof *s);
	s->valid = true;
}

bool
utf8_feed(struct utf8_state *s, const char *data, size_t len)
{
	const unsigned char *p = (const unsigned char *)data;

	for (size_t i = 0; s->valid && i < len; i++) {
		unsigned char c = p[i];

		if (s->need == 0) {
			if (c < 0x80)
				continue;
			if (c >= 0xc2 && c <= 0xdf) {
				s->need = 1;
				s->low = 0x80, s->high = 0xbf;
			} else if (c >= 0xe0 && c <= 0xef) {
				s->need = 2;
				/* E0: no overlong forms; ED: no surrogates. */
				s->low = c == 0xe0 ? 0xa0 : 0x80;
				s->high = c == 0xed ? 0x9f : 0xbf;
			} else if (c >= 0xf0 && c <= 0xf4) {
				s->need = 3;
				s->low = c == 0xf0 ? 0x90 : 0x80;
				s->high = c == 0xf4 ? 0x8f : 0xbf;
			} else {
				s->valid = false;
			}
			continue;
		}
		/* Only the first continuation byte has a narrower range. */
		if (c < s->low || c > s->high) {
			s->valid = false;
			continue;
		}
		s->low = 0x80, s->high = 0xbf;
		s->need--;
	}
	return s->valid;
}

bool
utf8_finish(const struct utf8_state *s)
{
	return s->valid && s->need == 0;
}

bool
utf8_valid(const char *data, size_t len)
{
	struct utf8_state s;

	utf8_init(&s);
	return utf8_feed(&s, data, len) && utf8_finish(&s);
}

void
utf8_json_escape(struct buf *out, const char *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t start = 0;

	buf_reserve(out, len);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)data[i];
		char esc[6];
		size_t n = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		buf_append(out, data + start, i - start);
		start = i + 1;
		esc[0] = '\\';
		switch (c) {
		case '"':
		case '\\':
			esc[1] = (char)c;
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\t':
			esc[1] = 't';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
			break;
		}
		buf_append(out, esc, n);
	}
	buf_append(out, data + start, len - start);
}
