/*
 * base64.c - streaming base64 encoding (RFC 4648, with padding; pure).
 *
 * Output that is not valid UTF-8 goes into a JSON record as base64; it is
 * encoded piece by piece as it is read back from memory or a spill file, so
 * up to two bytes of a group of three wait in the state between pieces.
 */
#include "cpmap.h"

static const char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void
base64_group(struct buf *out, const unsigned char *in, size_t n)
{
	unsigned v = (unsigned)in[0] << 16 |
		     (n > 1 ? (unsigned)in[1] << 8 : 0) | (n > 2 ? in[2] : 0);
	char quad[4] = {
	    base64_alphabet[v >> 18 & 63],
	    base64_alphabet[v >> 12 & 63],
	    n > 1 ? base64_alphabet[v >> 6 & 63] : '=',
	    n > 2 ? base64_alphabet[v & 63] : '=',
	};

	buf_append(out, quad, 4);
}

void
base64_init(struct base64_state *s)
{
	s->pending = 0;
}

void
base64_feed(struct base64_state *s, struct buf *out, const char *data,
	    size_t len)
{
	const unsigned char *p = (const unsigned char *)data;

	buf_reserve(out, (len + 2) / 3 * 4 + 4);
	while (len > 0 && s->pending > 0 && s->pending < 3) {
		s->held[s->pending++] = *p++;
		len--;
	}
	if (s->pending == 3) {
		base64_group(out, s->held, 3);
		s->pending = 0;
	}
	for (; len >= 3; p += 3, len -= 3)
		base64_group(out, p, 3);
	while (len-- > 0)
		s->held[s->pending++] = *p++;
}

void
base64_finish(struct base64_state *s, struct buf *out)
{
	if (s->pending > 0)
		base64_group(out, s->held, s->pending);
	s->pending = 0;
}
