/*
 * test_block.c - the record boundary finder of --pipe (block.c): cases as
 * data, then random streams cut both by the finder and by the reference,
 * read whole and read in pieces, which must all agree.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block_reference.h"
#include "cpmap.h"
#include "tap.h"

struct cut_case {
	const char *data;
	size_t want;
	const char *end, *start;
	bool eof;
	size_t cut;
};

static const struct cut_case cases[] = {
    /* the last newline at or before want */
    {"ab\ncd\nef\n", 4, "\n", "", false, 3},
    {"ab\ncd\nef\n", 6, "\n", "", false, 6},
    {"ab\ncd\nef\n", 3, "\n", "", false, 3},
    /* a record larger than the block: the first boundary past it */
    {"abcdefgh\nij\n", 2, "\n", "", false, 9},
    {"abcdefgh", 2, "\n", "", false, 0},
    {"abcdefgh", 2, "\n", "", true, 8},
    /* short data: wait, or take it all at the end */
    {"ab\n", 8, "\n", "", false, 0},
    {"ab\n", 8, "\n", "", true, 3},
    {"", 8, "\n", "", true, 0},
    /* no final delimiter */
    {"ab\ncd", 4, "\n", "", true, 3},
    /* a multi-byte recend, and one cut across want */
    {"aa<>bb<>cc<>", 5, "<>", "", false, 4},
    {"aa<>bb<>cc<>", 7, "<>", "", false, 4},
    {"aa<>bb<>cc<>", 8, "<>", "", false, 8},
    /* recstart: the cut is before it */
    {">a\n>b\n>c\n", 4, "", ">", false, 3},
    {">a\n>b\n>c\n", 2, "", ">", false, 3},
    {">aaaa>b", 2, "", ">", false, 5},
    /* both: end then start */
    {"x\n>y\nz\n>w\n", 6, "\n", ">", false, 2},
    /* a record start cannot be told yet */
    {"ab\n", 1, "\n", ">", false, 0},
    {"ab\n>", 1, "\n", ">", false, 3},
    /* NUL records (-0) */
    {"a\0b\0c\0", 3, "\0", "", false, 2},
};

/* The cuts of a whole stream, fed in pieces of the given sizes. */
static size_t
cut_stream(const char *d, size_t len, size_t want,
	   const struct block_separator *sep, unsigned seed, size_t *cuts,
	   size_t max)
{
	size_t have = seed == 0 ? len : 0, start = 0, n = 0;

	for (;;) {
		bool eof = have == len;
		size_t cut =
		    block_boundary(d + start, have - start, want, sep, eof);

		if (cut > 0) {
			if (n < max)
				cuts[n] = start + cut;
			n++;
			start += cut;
			continue;
		}
		if (eof)
			return n;
		seed = seed * 1103515245u + 12345u;
		have += 1 + (seed >> 16) % (2 * want + 3);
		if (have > len)
			have = len;
	}
}

int
main(void)
{
	static char buf[200000];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct cut_case *c = &cases[i];
		size_t len = strlen(c->data);
		struct block_separator sep = {c->end, strlen(c->end), c->start,
					      strlen(c->start)};
		size_t got;

		if (i == sizeof cases / sizeof cases[0] - 1) {
			memcpy(buf, "a\0b\0c\0", 6);
			len = 6;
			sep.end_len = 1;
		} else {
			memcpy(buf, c->data, len);
		}
		got = block_boundary(buf, len, c->want, &sep, c->eof);
		tap_ok(got == c->cut, "case %zu: cut %zu (want %zu)", i, got,
		       c->cut);
		tap_ok(reference_cut(buf, len, c->want, &sep, c->eof) == c->cut,
		       "case %zu: the reference agrees", i);
	}

	/* Random streams: finder == reference, and the cuts of a stream do
	 * not depend on how it was read. */
	{
		static const char *ends[] = {"\n", "\n", "<>", "", "\n"};
		static const char *starts[] = {"", ">", "", ">", "<>"};
		unsigned seed = 12345;
		int bad = 0, unstable = 0;

		for (int round = 0; round < 3000; round++) {
			size_t len, want, whole[512], pieces[512], nw, np;
			int k = round % 5;
			struct block_separator sep = {ends[k], strlen(ends[k]),
						      starts[k],
						      strlen(starts[k])};

			seed = seed * 1103515245u + 12345u;
			len = (seed >> 8) % 300;
			want = 1 + (seed >> 20) % 40;
			for (size_t j = 0; j < len; j++) {
				seed = seed * 1103515245u + 12345u;
				buf[j] = "ab\n<>"[(seed >> 16) % 5];
			}
			for (size_t have = 0; have <= len; have++)
				for (int eof = 0; eof < 2; eof++)
					if (block_boundary(buf, have, want,
							   &sep, eof) !=
					    reference_cut(buf, have, want, &sep,
							  eof)) {
						if (bad++ == 0)
							tap_diag(
							    "k %d have %zu "
							    "want %zu eof %d: "
							    "%zu, not %zu: "
							    "%.*s",
							    k, have, want, eof,
							    block_boundary(
								buf, have, want,
								&sep, eof),
							    reference_cut(
								buf, have, want,
								&sep, eof),
							    (int)have, buf);
					}
			nw = cut_stream(buf, len, want, &sep, 0, whole, 512);
			np =
			    cut_stream(buf, len, want, &sep, seed, pieces, 512);
			if (nw != np ||
			    memcmp(whole, pieces, nw * sizeof *whole) != 0)
				unstable++;
		}
		tap_ok(bad == 0,
		       "random: the finder is the reference (%d "
		       "differ)",
		       bad);
		tap_ok(unstable == 0,
		       "random: cuts do not depend on the reads (%d differ)",
		       unstable);
	}

	/* A floor (the look-back limit): random streams and floors. */
	{
		static const char *ends[] = {"\n", "<>", "", "\n"};
		static const char *starts[] = {"", "", ">", "<>"};
		unsigned seed = 777;
		int bad = 0;

		for (int round = 0; round < 3000; round++) {
			size_t len, want, floor;
			int k = round % 4;
			struct block_separator sep = {ends[k], strlen(ends[k]),
						      starts[k],
						      strlen(starts[k])};

			seed = seed * 1103515245u + 12345u;
			len = (seed >> 8) % 200;
			want = 1 + (seed >> 20) % 60;
			seed = seed * 1103515245u + 12345u;
			floor = (seed >> 16) % (want + 3);
			for (size_t j = 0; j < len; j++) {
				seed = seed * 1103515245u + 12345u;
				buf[j] = "ab\n<>"[(seed >> 16) % 5];
			}
			for (size_t have = 0; have <= len; have++)
				for (int eof = 0; eof < 2; eof++) {
					size_t got = block_boundary_above(
					    buf, have, want, floor, &sep, eof);
					size_t ref = reference_cut_above(
					    buf, have, want, floor, &sep, eof);

					if (got != ref && bad++ == 0)
						tap_diag("k %d have %zu want "
							 "%zu floor %zu eof "
							 "%d: %zu, not %zu",
							 k, have, want, floor,
							 eof, got, ref);
				}
		}
		tap_ok(bad == 0,
		       "floor: the finder is the reference (%d differ)", bad);
		/* Past the look-back, a block grows rather than shrinks. */
		memset(buf, 'a', 200000);
		buf[10] = '\n';
		buf[150000] = '\n';
		{
			struct block_separator nl = {"\n", 1, "", 0};

			tap_ok(block_boundary(buf, 200000, 100000, &nl,
					      false) == 150001,
			       "a boundary further back than BLOCK_LOOKBACK "
			       "is not taken");
			tap_ok(block_boundary(buf, 200000, 60000, &nl, false) ==
				   11,
			       "within it, it is");
		}
	}

	/* Separator parsing. */
	{
		char out[16];

		tap_ok(block_parse_separator("\\n\\0x\\x41", out) == 4 &&
			   memcmp(out, "\n\0xA", 4) == 0,
		       "parse: escapes");
		tap_ok(block_parse_separator("\\q", out) < 0, "parse: bad");
		tap_ok(block_parse_separator("", out) == 0, "parse: empty");
	}
	return tap_done();
}
