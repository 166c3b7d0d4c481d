/*
 * test_utf8.c - unit tests for utf8.c: streaming UTF-8 validation and JSON
 * string escaping.
 *
 * Validation is checked against known sequences (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF, no lone or missing
 * continuation bytes) and against a reference validator written here in a
 * different way (the code points a prefix can still become form an
 * interval).  The key property: output arrives in pieces that split
 * characters anywhere, so feeding a string in pieces, split at every
 * possible boundary or in random sizes, must give the verdict of one-shot
 * validation, and utf8_feed must say false exactly when the bytes so far
 * can no longer be the start of valid UTF-8.
 *
 * Escaping is checked byte by byte against the rules, and its output must
 * parse back with jansson to the original bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cpmap.h"
#include "tap.h"

/* ---- a deterministic PRNG (xorshift64*), so a failure can be replayed -- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

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

/* ---- the reference validator ------------------------------------------ */

enum { REF_VALID, REF_TRUNCATED, REF_INVALID };

/*
 * REF_VALID: valid UTF-8.  REF_TRUNCATED: not complete, but the start of
 * some valid UTF-8 (only the last character is unfinished).  REF_INVALID:
 * no bytes added at the end can make it valid.
 *
 * A sequence's lead byte gives its length; the continuation bytes present
 * fix the high bits of the code point, so the code points it can still be
 * lie in [lo, hi] (the missing bytes all 0x80, or all 0xbf).  It can become
 * valid iff that interval meets the code points of its length that are not
 * surrogates.
 */
static int
ref_check(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = p[i];
		size_t len, avail;
		uint32_t lo, hi, min, max;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc0 && c <= 0xdf)
			len = 2, lo = c & 0x1f, min = 0x80, max = 0x7ff;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3, lo = c & 0x0f, min = 0x800, max = 0xffff;
		else if (c >= 0xf0 && c <= 0xf7)
			len = 4, lo = c & 0x07, min = 0x10000, max = 0x10ffff;
		else
			return REF_INVALID; /* continuation or F8..FF */
		avail = n - i < len ? n - i : len;
		for (size_t k = 1; k < avail; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return REF_INVALID;
			lo = lo << 6 | (p[i + k] & 0x3f);
		}
		hi = lo;
		for (size_t k = avail; k < len; k++) {
			lo = lo << 6;
			hi = hi << 6 | 0x3f;
		}
		/* Clip [lo, hi] to [min, max]: is something left that is
		 * not a surrogate? */
		if (lo < min)
			lo = min;
		if (hi > max)
			hi = max;
		if (lo > hi || (lo >= 0xd800 && hi <= 0xdfff))
			return REF_INVALID;
		if (avail < len)
			return REF_TRUNCATED;
		i += len;
	}
	return REF_VALID;
}

/* ---- helpers ------------------------------------------------------------- */

/* Encode code point cp as UTF-8 into out (at least 4 bytes); its length. */
static size_t
encode(uint32_t cp, unsigned char *out)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | cp >> 6);
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | cp >> 12);
		out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (unsigned char)(0xf0 | cp >> 18);
	out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A random code point, valid, from every length class and near the edges. */
static uint32_t
random_code_point(void)
{
	static const uint32_t edges[] = {
	    0x00,    0x01,    0x09,    0x0a,	 0x0d,	   0x1f,     0x22,
	    0x5c,    0x7f,    0x80,    0x7ff,	 0x800,	   0xfff,    0x1000,
	    0xd7ff,  0xe000,  0xfeff,  0xfffd,	 0xfffe,   0xffff,   0x10000,
	    0x3ffff, 0x40000, 0xfffff, 0x100000, 0x10fffe, 0x10ffff,
	};

	switch (rng_below(6)) {
	case 0:
		return edges[rng_below(sizeof edges / sizeof edges[0])];
	case 1:
		return (uint32_t)rng_below(0x80);
	case 2:
		return 0x80 + (uint32_t)rng_below(0x800 - 0x80);
	case 3: {
		uint32_t cp = 0x800 + (uint32_t)rng_below(0x10000 - 0x800);

		return cp >= 0xd800 && cp <= 0xdfff ? cp - 0x800 : cp;
	}
	default:
		return 0x10000 + (uint32_t)rng_below(0x110000 - 0x10000);
	}
}

/* Fill s with up to max bytes of random valid UTF-8; its length. */
static size_t
random_valid(unsigned char *s, size_t max)
{
	size_t n = 0, want = rng_below(max + 1);

	while (n + 4 <= max && n < want)
		n += encode(random_code_point(), s + n);
	return n;
}

/* Random bytes, biased towards the bytes that matter to UTF-8. */
static size_t
random_bytes(unsigned char *s, size_t max)
{
	static const unsigned char interesting[] = {
	    0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0,
	    0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0,
	    0xf1, 0xf3, 0xf4, 0xf5, 0xf7, 0xf8, 0xfe, 0xff,
	};
	size_t n = rng_below(max + 1);

	for (size_t i = 0; i < n; i++)
		s[i] = rng_below(3) == 0
			   ? (unsigned char)rng()
			   : interesting[rng_below(sizeof interesting)];
	return n;
}

/* Valid UTF-8 with one byte changed: near misses. */
static size_t
random_mutated(unsigned char *s, size_t max)
{
	size_t n = random_valid(s, max);

	if (n > 0)
		s[rng_below(n)] = (unsigned char)rng();
	return n;
}

/* ---- known sequences ------------------------------------------------------
 */

static void
test_known(void)
{
	static const struct {
		const char *name;
		const char *bytes;
		size_t len;
		int want; /* REF_VALID, REF_TRUNCATED or REF_INVALID */
	} cases[] = {
	    {"empty", "", 0, REF_VALID},
	    {"ASCII", "hello, world", 12, REF_VALID},
	    {"NUL byte", "a\0b", 3, REF_VALID},
	    {"DEL", "\x7f", 1, REF_VALID},
	    {"2 bytes U+0080", "\xc2\x80", 2, REF_VALID},
	    {"2 bytes U+00E9", "\xc3\xa9", 2, REF_VALID},
	    {"2 bytes U+07FF", "\xdf\xbf", 2, REF_VALID},
	    {"3 bytes U+0800", "\xe0\xa0\x80", 3, REF_VALID},
	    {"3 bytes U+2713", "\xe2\x9c\x93", 3, REF_VALID},
	    {"3 bytes U+D7FF", "\xed\x9f\xbf", 3, REF_VALID},
	    {"3 bytes U+E000", "\xee\x80\x80", 3, REF_VALID},
	    {"3 bytes U+FFFF", "\xef\xbf\xbf", 3, REF_VALID},
	    {"4 bytes U+10000", "\xf0\x90\x80\x80", 4, REF_VALID},
	    {"4 bytes U+1D11E", "\xf0\x9d\x84\x9e", 4, REF_VALID},
	    {"4 bytes U+10FFFF", "\xf4\x8f\xbf\xbf", 4, REF_VALID},
	    {"mixed", "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9d\x84\x9e", 15,
	     REF_VALID},
	    /* overlong forms */
	    {"overlong C0 80", "\xc0\x80", 2, REF_INVALID},
	    {"overlong C1 BF", "\xc1\xbf", 2, REF_INVALID},
	    {"overlong E0 80 80", "\xe0\x80\x80", 3, REF_INVALID},
	    {"overlong E0 9F BF", "\xe0\x9f\xbf", 3, REF_INVALID},
	    {"overlong F0 80 80 80", "\xf0\x80\x80\x80", 4, REF_INVALID},
	    {"overlong F0 8F BF BF", "\xf0\x8f\xbf\xbf", 4, REF_INVALID},
	    /* surrogates */
	    {"surrogate ED A0 80", "\xed\xa0\x80", 3, REF_INVALID},
	    {"surrogate ED BF BF", "\xed\xbf\xbf", 3, REF_INVALID},
	    {"surrogate pair", "\xed\xa0\xbd\xed\xb2\xa9", 6, REF_INVALID},
	    /* above U+10FFFF */
	    {"F4 90 80 80", "\xf4\x90\x80\x80", 4, REF_INVALID},
	    {"F5 80 80 80", "\xf5\x80\x80\x80", 4, REF_INVALID},
	    {"F7 BF BF BF", "\xf7\xbf\xbf\xbf", 4, REF_INVALID},
	    {"F8", "\xf8\x88\x80\x80\x80", 5, REF_INVALID},
	    {"FC", "\xfc\x84\x80\x80\x80\x80", 6, REF_INVALID},
	    {"FE", "\xfe", 1, REF_INVALID},
	    {"FF", "\xff", 1, REF_INVALID},
	    /* lone continuation bytes */
	    {"lone 80", "\x80", 1, REF_INVALID},
	    {"lone BF", "a\xbf", 2, REF_INVALID},
	    {"extra continuation", "\xc3\xa9\xa9", 3, REF_INVALID},
	    {"continuation after 3 bytes", "\xe2\x9c\x93\x80", 4, REF_INVALID},
	    /* a lead byte not followed by a continuation */
	    {"C3 then ASCII",
	     "\xc3"
	     "a",
	     2, REF_INVALID},
	    {"E2 9C then ASCII",
	     "\xe2\x9c"
	     "a",
	     3, REF_INVALID},
	    {"C3 then lead", "\xc3\xc3\xa9", 3, REF_INVALID},
	    /* truncated at the end */
	    {"truncated C3", "\xc3", 1, REF_TRUNCATED},
	    {"truncated E2", "ab\xe2", 3, REF_TRUNCATED},
	    {"truncated E2 9C", "\xe2\x9c", 2, REF_TRUNCATED},
	    {"truncated F0", "\xf0", 1, REF_TRUNCATED},
	    {"truncated F0 9D", "\xf0\x9d", 2, REF_TRUNCATED},
	    {"truncated F0 9D 84", "\xf0\x9d\x84", 3, REF_TRUNCATED},
	    {"truncated F4 8F BF", "\xf4\x8f\xbf", 3, REF_TRUNCATED},
	    /* a prefix that is already wrong, even if unfinished */
	    {"E0 80 unfinished", "\xe0\x80", 2, REF_INVALID},
	    {"ED A0 unfinished", "\xed\xa0", 2, REF_INVALID},
	    {"F0 80 unfinished", "\xf0\x80", 2, REF_INVALID},
	    {"F4 90 unfinished", "\xf4\x90", 2, REF_INVALID},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct utf8_state s;
		bool fed;
		const char *b = cases[i].bytes;
		size_t len = cases[i].len;
		int want = cases[i].want;

		tap_is_int(ref_check((const unsigned char *)b, len), want,
			   "reference validator agrees on %s", cases[i].name);
		tap_is_int(utf8_valid(b, len), want == REF_VALID,
			   "utf8_valid: %s is %s", cases[i].name,
			   want == REF_VALID ? "valid" : "not valid");
		utf8_init(&s);
		fed = utf8_feed(&s, b, len);
		tap_ok(fed == (want != REF_INVALID) &&
			   utf8_finish(&s) == (want == REF_VALID),
		       "utf8_feed/utf8_finish: %s is %s", cases[i].name,
		       want == REF_VALID       ? "valid"
		       : want == REF_TRUNCATED ? "an unfinished character"
					       : "invalid at once");
	}
}

/* Every possible 1-, 2-byte string and every 3-byte string with a lead
 * byte from E0..EF or a 4-byte lead: against the reference. */
static void
test_exhaustive(void)
{
	unsigned char b[4];
	size_t bad = 0;
	char where[64] = "";

	for (unsigned x = 0; x < 256; x++) {
		for (unsigned y = 0; y < 256; y++) {
			for (unsigned z = 0; z < 256; z++) {
				size_t lens[] = {1, 2, 3};

				if (z > 0 && x < 0xe0)
					break; /* 3 bytes: only 3/4-byte leads
						*/
				b[0] = (unsigned char)x;
				b[1] = (unsigned char)y;
				b[2] = (unsigned char)z;
				for (size_t k = 0; k < 3; k++) {
					size_t n = lens[k];
					int ref = ref_check(b, n);
					struct utf8_state s;
					bool fed;

					utf8_init(&s);
					fed = utf8_feed(&s, (char *)b, n);
					if (fed != (ref != REF_INVALID) ||
					    utf8_finish(&s) !=
						(ref == REF_VALID) ||
					    utf8_valid((char *)b, n) !=
						(ref == REF_VALID)) {
						if (bad++ == 0)
							snprintf(
							    where, sizeof where,
							    "%02x %02x %02x "
							    "(%zu bytes)",
							    x, y, z, n);
					}
				}
			}
		}
	}
	if (!tap_ok(bad == 0, "all short byte strings: same verdict as the "
			      "reference"))
		tap_diag("%zu disagreements, first at %s", bad, where);

	/* Every 4-byte sequence with a 4-byte lead byte. */
	bad = 0;
	for (unsigned x = 0xf0; x < 0x100; x++)
		for (unsigned y = 0x70; y < 0xd0; y++)
			for (unsigned z = 0x70; z < 0xd0; z++)
				for (unsigned w = 0x70; w < 0xd0; w++) {
					b[0] = (unsigned char)x;
					b[1] = (unsigned char)y;
					b[2] = (unsigned char)z;
					b[3] = (unsigned char)w;
					if (utf8_valid((char *)b, 4) !=
					    (ref_check(b, 4) == REF_VALID)) {
						if (bad++ == 0)
							snprintf(
							    where, sizeof where,
							    "%02x %02x %02x "
							    "%02x",
							    x, y, z, w);
					}
				}
	if (!tap_ok(bad == 0, "4-byte sequences: same verdict as the "
			      "reference"))
		tap_diag("%zu disagreements, first at %s", bad, where);
}

/* ---- feeding in pieces ----------------------------------------------------
 */

/*
 * Feed s in the pieces given by the cut points (ascending, within 0..n).
 * After each piece, utf8_feed's answer must be whether the bytes so far can
 * still be valid; at the end utf8_finish must match the reference.  Return
 * true when everything agreed.
 */
static bool
feed_pieces(const unsigned char *s, size_t n, const size_t *cuts, size_t ncuts)
{
	struct utf8_state st;
	size_t from = 0;
	bool ok = true;

	utf8_init(&st);
	for (size_t k = 0; k <= ncuts; k++) {
		size_t to = k < ncuts ? cuts[k] : n;
		bool fed = utf8_feed(&st, (const char *)s + from, to - from);

		if (fed != (ref_check(s, to) != REF_INVALID))
			ok = false;
		from = to;
	}
	if (utf8_finish(&st) != (ref_check(s, n) == REF_VALID))
		ok = false;
	if (utf8_finish(&st) != utf8_valid((const char *)s, n))
		ok = false;
	return ok;
}

static void
report_string(const char *what, const unsigned char *s, size_t n)
{
	tap_diag_value(what, (const char *)s, n);
}

static void
test_pieces(const char *kind, size_t (*make)(unsigned char *, size_t),
	    int rounds)
{
	unsigned char s[64];
	size_t valid = 0, failed = 0;
	bool shown = false;

	for (int r = 0; r < rounds; r++) {
		size_t n = make(s, sizeof s);
		bool ok = true;
		size_t cuts[64];

		valid += utf8_valid((char *)s, n);
		/* one-shot */
		ok &= feed_pieces(s, n, NULL, 0);
		/* split in two at every boundary */
		for (size_t i = 0; i <= n; i++) {
			cuts[0] = i;
			ok &= feed_pieces(s, n, cuts, 1);
		}
		/* split in three at every pair of boundaries */
		for (size_t i = 0; i <= n && n <= 24; i++)
			for (size_t j = i; j <= n; j++) {
				cuts[0] = i, cuts[1] = j;
				ok &= feed_pieces(s, n, cuts, 2);
			}
		/* byte by byte, with empty pieces too */
		for (size_t i = 0; i < n; i++)
			cuts[i] = i;
		ok &= feed_pieces(s, n, cuts, n);
		/* random piece sizes */
		for (int t = 0; t < 8; t++) {
			size_t nc = 0, at = 0;

			while (at < n && nc < 63) {
				at += rng_below(6);
				cuts[nc++] = at < n ? at : n;
			}
			ok &= feed_pieces(s, n, cuts, nc);
		}
		if (!ok) {
			failed++;
			if (!shown)
				report_string("first bad", s, n);
			shown = true;
		}
	}
	if (!tap_ok(failed == 0,
		    "%s (%d strings): in pieces, same verdict as one shot and "
		    "as the reference",
		    kind, rounds))
		tap_diag("%zu strings disagreed", failed);
	/* The generator must give both verdicts to test anything. */
	tap_ok(strcmp(kind, "random valid UTF-8") == 0
		   ? valid == (size_t)rounds
		   : valid > 0 && valid < (size_t)rounds,
	       "%s: %zu of %d were valid UTF-8", kind, valid, rounds);
}

/* A long valid text fed in random pieces, like a task's output. */
static void
test_long_stream(void)
{
	size_t cap = 1 << 20, n = 0;
	unsigned char *s = malloc(cap);
	bool ok = true;

	if (s == NULL)
		tap_bail("out of memory");
	while (n + 4 <= cap)
		n += encode(random_code_point(), s + n);
	for (int t = 0; t < 20 && ok; t++) {
		struct utf8_state st;
		size_t at = 0;

		utf8_init(&st);
		while (at < n) {
			size_t k = 1 + rng_below(t < 10 ? 7 : 70000);

			if (k > n - at)
				k = n - at;
			ok &= utf8_feed(&st, (char *)s + at, k);
			at += k;
		}
		ok &= utf8_finish(&st);
	}
	tap_ok(ok, "1 MB of valid UTF-8 in random pieces is valid");
	/* Cut the last character short: unfinished, so not valid. */
	while (n > 0 && (s[n - 1] & 0xc0) == 0x80)
		n--;
	if (n > 0 && s[n - 1] >= 0xc0)
		n++; /* keep the lead and one continuation byte */
	else
		s[n++] = 0xe2; /* or add a lone lead byte */
	tap_ok(!utf8_valid((char *)s, n),
	       "1 MB of UTF-8 ending in an unfinished character is not valid");
	free(s);
}

/* ---- JSON escaping --------------------------------------------------------
 */

static void
escape(struct buf *out, const char *s, size_t len)
{
	utf8_json_escape(out, s, len);
}

static void
test_escape_known(void)
{
	static const struct {
		const char *in;
		size_t len;
		const char *want;
	} cases[] = {
	    {"", 0, ""},
	    {"abc", 3, "abc"},
	    {"\"", 1, "\\\""},
	    {"\\", 1, "\\\\"},
	    {"say \"hi\" \\o/", 12, "say \\\"hi\\\" \\\\o/"},
	    {"\n", 1, "\\n"},
	    {"\t", 1, "\\t"},
	    {"\r", 1, "\\r"},
	    {"a\nb\tc\rd", 7, "a\\nb\\tc\\rd"},
	    {"\0", 1, "\\u0000"},
	    {"a\0b", 3, "a\\u0000b"},
	    {"\x01", 1, "\\u0001"},
	    {"\b\f", 2, "\\u0008\\u000c"},
	    {"\x1b[0m", 4, "\\u001b[0m"},
	    {"\x1f", 1, "\\u001f"},
	    {" ", 1, " "},
	    {"/", 1, "/"},
	    {"\x7f", 1, "\x7f"},
	    {"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9d\x84\x9e", 15,
	     "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9d\x84\x9e"},
	    {"\xe2\x80\xa8", 3, "\xe2\x80\xa8"}, /* U+2028 untouched */
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct buf out = {0};

		escape(&out, cases[i].in, cases[i].len);
		tap_is_mem(out.data ? out.data : "", out.len, cases[i].want,
			   strlen(cases[i].want), "escape case %zu", i + 1);
		buf_free(&out);
	}

	/* Every ASCII byte, one at a time, against the rules. */
	{
		size_t bad = 0;

		for (int c = 0; c < 128; c++) {
			struct buf out = {0};
			char in = (char)c, want[8];

			if (c == '"' || c == '\\')
				snprintf(want, sizeof want, "\\%c", c);
			else if (c == '\n')
				strcpy(want, "\\n");
			else if (c == '\t')
				strcpy(want, "\\t");
			else if (c == '\r')
				strcpy(want, "\\r");
			else if (c < 0x20)
				snprintf(want, sizeof want, "\\u%04x", c);
			else
				want[0] = in, want[1] = '\0';
			escape(&out, &in, 1);
			if (out.len != strlen(want) ||
			    memcmp(out.data, want, out.len) != 0) {
				if (bad++ == 0)
					tap_diag("byte 0x%02x escaped wrong",
						 c);
			}
			buf_free(&out);
		}
		tap_ok(bad == 0, "every ASCII byte is escaped by the rules");
	}

	/* Escaping appends: what the buffer held stays. */
	{
		struct buf out = {0};

		buf_append_str(&out, "{\"x\":\"");
		escape(&out, "a\"b", 3);
		buf_append_str(&out, "\"}");
		tap_is_str(out.data, "{\"x\":\"a\\\"b\"}",
			   "escaping appends to the buffer");
		buf_free(&out);
	}
}

/* The escaped text between quotes must parse back to the same bytes. */
static bool
parses_back(const unsigned char *s, size_t n, struct buf *esc)
{
	struct buf doc = {0};
	json_error_t error;
	json_t *v;
	bool ok;

	buf_append_char(&doc, '"');
	buf_append(&doc, esc->data ? esc->data : "", esc->len);
	buf_append_char(&doc, '"');
	v = json_loadb(doc.data, doc.len, JSON_DECODE_ANY | JSON_ALLOW_NUL,
		       &error);
	ok = v != NULL && json_is_string(v) && json_string_length(v) == n &&
	     memcmp(json_string_value(v), s, n) == 0;
	if (v == NULL)
		tap_diag("jansson: %s", error.text);
	json_decref(v);
	buf_free(&doc);
	return ok;
}

/* Random valid UTF-8 heavy in bytes that need escaping. */
static size_t
random_escapable(unsigned char *s, size_t max)
{
	static const char special[] = "\"\\\n\t\r\b\f\x01\x1f\x7f/ a";
	size_t n = 0, want = rng_below(max + 1);

	while (n + 4 <= max && n < want) {
		if (rng_below(2))
			s[n++] = (unsigned char)special[rng_below(
			    sizeof special)]; /* includes the NUL */
		else
			n += encode(random_code_point(), s + n);
	}
	return n;
}

static void
test_escape_round_trip(void)
{
	unsigned char s[128];
	size_t bad = 0, split_bad = 0;
	const int rounds = 3000;

	for (int r = 0; r < rounds; r++) {
		size_t n = r % 2 ? random_escapable(s, sizeof s)
				 : random_valid(s, sizeof s);
		struct buf esc = {0};

		escape(&esc, (char *)s, n);
		if (!parses_back(s, n, &esc)) {
			if (bad++ == 0)
				report_string("first bad", s, n);
		}
		/* In pieces cut anywhere, even inside a character: the
		 * same text. */
		for (size_t i = 0; i <= n; i++) {
			struct buf two = {0};

			escape(&two, (char *)s, i);
			escape(&two, (char *)s + i, n - i);
			if (two.len != esc.len ||
			    (esc.len && memcmp(two.data, esc.data, esc.len))) {
				if (split_bad++ == 0)
					tap_diag("split at %zu differs", i);
			}
			buf_free(&two);
		}
		/* No raw control byte, quote or backslash may remain. */
		for (size_t i = 0; i < esc.len; i++) {
			unsigned char c = (unsigned char)esc.data[i];

			if (c < 0x20) {
				if (bad++ == 0)
					tap_diag("raw control byte 0x%02x", c);
			}
		}
		buf_free(&esc);
	}
	tap_ok(bad == 0,
	       "escaped random UTF-8 (%d strings) parses back "
	       "with jansson to the same bytes",
	       rounds);
	tap_ok(split_bad == 0, "escaping in two pieces cut anywhere gives "
			       "the same text");
}

int
main(void)
{
	test_known();
	test_exhaustive();
	test_pieces("random bytes", random_bytes, 4000);
	test_pieces("random valid UTF-8", random_valid, 4000);
	test_pieces("UTF-8 with one byte changed", random_mutated, 4000);
	test_long_stream();
	test_escape_known();
	test_escape_round_trip();
	return tap_done();
}
