/*
 * fuzz_block.c - libFuzzer target for the --pipe boundary finder (block.c).
 *
 * Input layout: byte 0 is --block (1..64), byte 1 seeds the sizes of the
 * reads, byte 2 the length of --recend (0..3) and byte 3 of --recstart
 * (0..3), which follow; the rest is the stream.  Checked (abort on
 * failure): block_boundary agrees with the reference (every place tried)
 * on every prefix, at end of input or not; cutting the stream read whole
 * and read in pieces gives the same blocks, which join back into the
 * stream, each but the last ending at a boundary.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/unit/block_reference.h"
#include "cpmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_block: %s\n", what);
	abort();
}

/* Cut the stream, reading pieces (seed 0: all at once); the cut ends. */
static size_t
cut_stream(const char *d, size_t len, size_t want,
	   const struct block_separator *sep, unsigned seed, size_t *cuts)
{
	size_t have = seed == 0 ? len : 0, start = 0, n = 0;

	for (;;) {
		bool eof = have == len;
		size_t cut =
		    block_boundary(d + start, have - start, want, sep, eof);

		if (cut > 0) {
			if (cut > have - start)
				fail("a cut past the data");
			cuts[n++] = start + cut;
			start += cut;
			continue;
		}
		if (eof) {
			if (start != len)
				fail("bytes left at the end");
			return n;
		}
		seed = seed * 1103515245u + 12345u;
		have += 1 + (seed >> 16) % (2 * want + 3);
		if (have > len)
			have = len;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t want, end_len, start_len, len, *whole, *pieces, nw, np;
	const char *stream;
	struct block_separator sep;
	unsigned seed;

	if (size < 4 || size > 4096)
		return 0;
	want = 1 + data[0] % 64;
	seed = data[1] | 1u;
	end_len = data[2] % 4;
	start_len = data[3] % 4;
	if (4 + end_len + start_len > size)
		return 0;
	sep = (struct block_separator){(const char *)data + 4, end_len,
				       (const char *)data + 4 + end_len,
				       start_len};
	stream = (const char *)data + 4 + end_len + start_len;
	len = size - 4 - end_len - start_len;

	for (size_t have = 0; have <= len; have++)
		for (int eof = 0; eof < 2; eof++)
			if (block_boundary(stream, have, want, &sep, eof) !=
			    reference_cut(stream, have, want, &sep, eof))
				fail("block_boundary differs from the "
				     "reference");
	whole = calloc(len + 1, sizeof *whole);
	pieces = calloc(len + 1, sizeof *pieces);
	nw = cut_stream(stream, len, want, &sep, 0, whole);
	np = cut_stream(stream, len, want, &sep, seed, pieces);
	if (nw != np || memcmp(whole, pieces, nw * sizeof *whole) != 0)
		fail("the cuts depend on how the stream was read");
	for (size_t i = 0; i + 1 < nw; i++)
		if (reference_is_boundary(stream, len, whole[i], &sep, true) !=
		    1)
			fail("a block does not end at a boundary");
	free(whole);
	free(pieces);
	return 0;
}
