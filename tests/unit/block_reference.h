/*
 * block_reference.h - the record boundary rule written the slow, obvious
 * way, for test_block.c and fuzz_block.c to hold block.c's finder to.
 */
#ifndef BLOCK_REFERENCE_H
#define BLOCK_REFERENCE_H

#include <stdbool.h>
#include <string.h>

#include "cpmap.h"

/* 1: p is a boundary; 0: it is not; -1: more data would tell. */
static int
reference_is_boundary(const char *d, size_t len, size_t p,
		      const struct block_separator *sep, bool eof)
{
	if (p == 0 || p > len)
		return 0;
	if (p == len && eof)
		return 1;
	if (p < sep->end_len ||
	    memcmp(d + p - sep->end_len, sep->end, sep->end_len) != 0)
		return 0;
	if (sep->start_len == 0)
		return 1;
	if (p + sep->start_len > len)
		return eof ? 0 : -1;
	return memcmp(d + p, sep->start, sep->start_len) == 0;
}

/* Where block_boundary_above must cut, found by trying every place. */
static size_t
reference_cut_above(const char *d, size_t len, size_t want, size_t floor,
		    const struct block_separator *sep, bool eof)
{
	if (want == 0)
		want = 1;
	if (floor >= want)
		floor = want - 1;
	if (len <= want)
		return eof ? len : 0;
	if (!eof && len - want < sep->start_len)
		return 0;
	for (size_t p = want; p > floor; p--)
		if (reference_is_boundary(d, len, p, sep, eof) == 1)
			return p;
	for (size_t p = want + 1; p <= len; p++) {
		int b = reference_is_boundary(d, len, p, sep, eof);

		if (b == 1)
			return p;
		if (b < 0)
			return 0;
	}
	return eof ? len : 0;
}

/* Where block_boundary must cut: it looks back BLOCK_LOOKBACK at most. */
static size_t
reference_cut(const char *d, size_t len, size_t want,
	      const struct block_separator *sep, bool eof)
{
	return reference_cut_above(
	    d, len, want, want > BLOCK_LOOKBACK ? want - BLOCK_LOOKBACK : 0,
	    sep, eof);
}

#endif
