/*
 * test_base64.c - unit tests for base64.c: streaming RFC 4648 base64 with
 * padding.
 *
 * The RFC's test vectors, fed whole and in every split; then random data
 * fed in random pieces (as output is read back from memory or a spill file)
 * must give exactly the one-shot encoding, and a strict reference decoder
 * written here must give the bytes back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpmap.h"
#include "tap.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static size_t
rng_below(size_t n)
{
	return n ? (size_t)(rng() % n) : 0;
}

/* One shot: init, one feed, finish; the text in out (which is reset). */
static void
encode(struct buf *out, const void *data, size_t len)
{
	struct base64_state s;

	out->len = 0;
	base64_init(&s);
	base64_feed(&s, out, data, len);
	base64_finish(&s, out);
}

/* Feed in the pieces given by ascending cut points. */
static void
encode_pieces(struct buf *out, const unsigned char *data, size_t len,
	      const size_t *cuts, size_t ncuts)
{
	struct base64_state s;
	size_t from = 0;

	out->len = 0;
	base64_init(&s);
	for (size_t k = 0; k <= ncuts; k++) {
		size_t to = k < ncuts ? cuts[k] : len;

		base64_feed(&s, out, (const char *)data + from, to - from);
		from = to;
	}
	base64_finish(&s, out);
}

/* A strict decoder: whole quads, '=' only as the final padding, unused
 * bits zero.  The decoded length, or -1 if the text is not canonical. */
static long
decode(const char *text, size_t len, unsigned char *out)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = 0;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		unsigned v = 0;
		int pad = 0;

		for (int k = 0; k < 4; k++) {
			char c = text[i + k];
			const char *at = c ? strchr(alphabet, c) : NULL;

			if (c == '=' && i + 4 == len && k >= 2) {
				pad++;
				v <<= 6;
				continue;
			}
			if (at == NULL || pad > 0)
				return -1;
			v = v << 6 | (unsigned)(at - alphabet);
		}
		if ((pad == 1 && (v & 0xff)) || (pad == 2 && (v & 0xffff)))
			return -1; /* non-zero bits under the padding */
		out[n++] = (unsigned char)(v >> 16);
		if (pad < 2)
			out[n++] = (unsigned char)(v >> 8);
		if (pad < 1)
			out[n++] = (unsigned char)v;
	}
	return (long)n;
}

static void
test_vectors(void)
{
	static const char *const vectors[][2] = {
	    {"", ""},
	    {"f", "Zg=="},
	    {"fo", "Zm8="},
	    {"foo", "Zm9v"},
	    {"foob", "Zm9vYg=="},
	    {"fooba", "Zm9vYmE="},
	    {"foobar", "Zm9vYmFy"},
	};
	struct buf out = {0};

	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		const char *in = vectors[i][0], *want = vectors[i][1];
		size_t len = strlen(in), cuts[2];
		bool same = true;

		encode(&out, in, len);
		tap_is_mem(out.data ? out.data : "", out.len, want,
			   strlen(want), "RFC 4648: \"%s\"", in);
		/* In two and three pieces cut anywhere. */
		for (size_t a = 0; a <= len; a++)
			for (size_t b = a; b <= len; b++) {
				cuts[0] = a, cuts[1] = b;
				encode_pieces(&out, (const unsigned char *)in,
					      len, cuts, 2);
				if (out.len != strlen(want) ||
				    memcmp(out.data, want, out.len) != 0)
					same = false;
			}
		tap_ok(same, "RFC 4648: \"%s\" in pieces cut anywhere", in);
	}
	buf_free(&out);
}

static void
test_binary(void)
{
	struct buf out = {0};
	unsigned char all[256], back[256];
	long n;

	encode(&out, "\0", 1);
	tap_is_str(out.data, "AA==", "a NUL byte");
	encode(&out, "\xff\xff\xff", 3);
	tap_is_str(out.data, "////", "FF FF FF");
	encode(&out, "\xfb\xff", 2);
	tap_is_str(out.data, "+/8=", "FB FF uses + and /");
	encode(&out, "a\377\0b", 4);
	tap_is_str(out.data, "Yf8AYg==", "a FF 00 b");

	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	encode(&out, all, sizeof all);
	tap_is_int((long long)out.len, 344, "256 bytes give 344 characters");
	n = decode(out.data, out.len, back);
	tap_ok(n == 256 && memcmp(back, all, 256) == 0,
	       "every byte value decodes back");
	tap_ok(out.data[out.len] == '\0', "the output stays NUL-terminated");

	/* Encoding appends: what the buffer held stays. */
	{
		struct buf b = {0};
		struct base64_state s;

		buf_append_str(&b, "x:");
		base64_init(&s);
		base64_feed(&s, &b, "fo", 2);
		base64_feed(&s, &b, "", 0);
		base64_feed(&s, &b, "ob", 2);
		base64_finish(&s, &b);
		tap_is_str(b.data,
			   "x:Zm9vYg==", "feeding appends to the buffer");
		/* The state is ready for the next stream after finish. */
		base64_feed(&s, &b, "f", 1);
		base64_finish(&s, &b);
		tap_is_str(b.data, "x:Zm9vYg==Zg==",
			   "after finish the state starts a new stream");
		buf_free(&b);
	}
	buf_free(&out);
}

/* The reference decoder must itself refuse what is not canonical. */
static void
test_decoder(void)
{
	unsigned char out[8];

	tap_is_int(decode("Zm9v", 4, out), 3, "decoder: Zm9v");
	tap_is_int(decode("Zg==", 4, out), 1, "decoder: Zg==");
	tap_is_int(decode("Zh==", 4, out), -1, "decoder: bits under padding");
	tap_is_int(decode("Zg=", 3, out), -1, "decoder: short quad");
	tap_is_int(decode("Z===", 4, out), -1, "decoder: too much padding");
	tap_is_int(decode("Zg==Zg==", 8, out), -1, "decoder: padding inside");
	tap_is_int(decode("Zm-v", 4, out), -1, "decoder: bad character");
}

static void
test_random(void)
{
	enum { ROUNDS = 2000, MAX = 3000 };
	unsigned char *data = malloc(MAX), *back = malloc(MAX);
	struct buf whole = {0}, pieces = {0};
	size_t cuts[MAX];
	int differ = 0, wrong = 0;

	if (data == NULL || back == NULL)
		tap_bail("out of memory");
	for (int r = 0; r < ROUNDS; r++) {
		size_t len = r < 100 ? (size_t)r % 20 : rng_below(MAX);
		long n;

		for (size_t i = 0; i < len; i++)
			data[i] = (unsigned char)rng();
		encode(&whole, data, len);
		n = decode(whole.data, whole.len, back);
		if (whole.len != (len + 2) / 3 * 4 || n != (long)len ||
		    memcmp(back, data, len) != 0) {
			if (wrong++ == 0)
				tap_diag("round %d: %zu bytes do not decode "
					 "back",
					 r, len);
		}
		for (int t = 0; t < 4; t++) {
			size_t nc = 0, at = 0;

			/* small pieces, then large ones, empty ones too */
			while (at < len) {
				at += rng_below(t < 2 ? 5 : 700);
				cuts[nc++] = at < len ? at : len;
			}
			encode_pieces(&pieces, data, len, cuts, nc);
			if (pieces.len != whole.len ||
			    memcmp(pieces.data, whole.data, whole.len) != 0) {
				if (differ++ == 0)
					tap_diag("round %d: %zu bytes in %zu "
						 "pieces encode differently",
						 r, len, nc + 1);
			}
		}
	}
	tap_ok(wrong == 0, "random data (%d strings) decodes back exactly",
	       ROUNDS);
	tap_ok(differ == 0,
	       "random data fed in random pieces equals one-shot encoding");
	buf_free(&whole);
	buf_free(&pieces);
	free(data);
	free(back);
}

int
main(void)
{
	test_vectors();
	test_binary();
	test_decoder();
	test_random();
	return tap_done();
}
