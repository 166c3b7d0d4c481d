/*
 * fuzz_record.c - libFuzzer target for record.c and the column splitter.
 *
 * Input layout: byte 0 picks the delimiter, byte 1 seeds the sizes of the
 * pieces the stream is fed in, byte 2 is the length (0..7) of the --colsep
 * string that follows, the rest is the stream.  Checked (abort on failure):
 * record_next fed piece by piece gives the records of a plain split, whatever
 * the piece sizes; record_strip_cr removes exactly one trailing \r; each
 * record split into columns gives columns that join back into the record,
 * hold no separator, and are cut at the first separator each time; and
 * record_parse_delimiter agrees with a reference parser.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_record: %s\n", what);
	abort();
}

/* The reference parser of -d, written from its documentation. */
static int
reference_delimiter(const char *spec)
{
	static const char escapes[] = "n\nt\t0\0r\r\\\\";
	static const char hex[] = "0123456789abcdef0123456789ABCDEF";
	size_t len = strlen(spec);

	if (len == 1) /* any byte, a lone backslash too (as xargs -d) */
		return (unsigned char)spec[0];
	if (len == 2 && spec[0] == '\\') {
		for (size_t i = 0; i + 1 < sizeof escapes; i += 2)
			if (escapes[i] == spec[1])
				return (unsigned char)escapes[i + 1];
		return -1;
	}
	if (len == 4 && spec[0] == '\\' && spec[1] == 'x') {
		const char *hi = memchr(hex, spec[2], 32);
		const char *lo = memchr(hex, spec[3], 32);

		if (spec[2] != '\0' && spec[3] != '\0' && hi != NULL &&
		    lo != NULL)
			return (int)((hi - hex) % 16 * 16 + (lo - hex) % 16);
	}
	return -1;
}

/* Check the columns of one record split on sep. */
static void
check_columns(const char *rec, size_t len, const char *sep)
{
	size_t sep_len = strlen(sep);
	struct input *in = input_create(rec, len, sep, 1);
	const char *p = in->text, *end = in->text + in->len;
	size_t col_len;

	if (in->len != len || memcmp(in->text, rec, len) != 0 ||
	    in->text[len] != '\0')
		fail("input_create changed the text");
	if (sep_len == 0) {
		if (in->column_count != 0)
			fail("an empty colsep made columns");
		if (input_column(in, 1, &col_len) != in->text || col_len != len)
			fail("column 1 of an input without columns");
		input_free(in);
		return;
	}
	if (in->column_count == 0)
		fail("a colsep made no columns");
	for (size_t i = 0; i < in->column_count; i++) {
		const char *col = input_column(in, i + 1, &col_len);
		const char *hit = memmem(p, (size_t)(end - p), sep, sep_len);

		if (col != p)
			fail("a column does not start after a separator");
		if (i + 1 < in->column_count) {
			/* cut at the first separator from here */
			if (hit == NULL || (size_t)(hit - p) != col_len)
				fail("a column is not cut at the first "
				     "separator");
			p = hit + sep_len;
		} else {
			if (hit != NULL || col_len != (size_t)(end - p))
				fail("the last column is not the rest");
		}
		if (memmem(col, col_len, sep, sep_len) != NULL)
			fail("a column holds the separator");
	}
	if (input_column(in, 0, &col_len)[0] != '\0' || col_len != 0 ||
	    input_column(in, in->column_count + 1, &col_len)[0] != '\0' ||
	    col_len != 0)
		fail("a column out of range is not empty");
	input_free(in);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int delims[] = {'\n', '\0', ',', '\t', 0xff, '\r'};
	char sep[8], spec[8];
	int delim;
	unsigned seed;
	size_t sep_len, fed = 0, start = 0, ref_start = 0;
	const char *stream;
	size_t len;
	struct buf b = {0};

	if (size < 3)
		return 0;
	delim = data[0] < 0xf0 ? delims[data[0] % 6] : data[0] & 0x0f;
	seed = data[1] | 1u;
	sep_len = data[2] % 8;
	if (sep_len > size - 3)
		sep_len = size - 3;
	memcpy(sep, data + 3, sep_len);
	sep[sep_len] = '\0'; /* a NUL in it shortens it, as on a command line */
	stream = (const char *)data + 3 + sep_len;
	len = size - 3 - sep_len;

	/* -d parsing, on the first bytes of the stream. */
	memcpy(spec, stream, len < 7 ? len : 7);
	spec[len < 7 ? len : 7] = '\0';
	if (record_parse_delimiter(spec) != reference_delimiter(spec))
		fail("record_parse_delimiter disagrees with the reference");

	/* Feed the stream in pieces and compare with a plain split. */
	buf_reserve(&b, 0);
	for (;;) {
		size_t consumed = 0;
		ssize_t n = record_next(b.data + start, b.len - start, delim,
					&consumed);
		const char *ref_end;
		size_t ref_len;

		if (n < 0) {
			size_t piece;

			if (fed == len)
				break;
			seed = seed * 1103515245u + 12345u;
			piece = 1 + (seed >> 16) % 13;
			if (piece > len - fed)
				piece = len - fed;
			buf_append(&b, stream + fed, piece);
			fed += piece;
			continue;
		}
		if ((size_t)n + 1 != consumed || (size_t)n > b.len - start ||
		    (unsigned char)b.data[start + (size_t)n] != delim)
			fail("record_next: bad length or consumed");
		ref_end = memchr(stream + ref_start, delim, len - ref_start);
		if (ref_end == NULL)
			fail("record_next found a record the split does not");
		ref_len = (size_t)(ref_end - stream) - ref_start;
		if (ref_len != (size_t)n ||
		    memcmp(stream + ref_start, b.data + start, ref_len) != 0)
			fail("record_next: a record differs from the split");
		if (memchr(b.data + start, delim, (size_t)n) != NULL)
			fail("a record holds the delimiter");
		{
			size_t kept =
			    record_strip_cr(b.data + start, (size_t)n);

			if (n > 0 && b.data[start + (size_t)n - 1] == '\r'
				? kept != (size_t)n - 1
				: kept != (size_t)n)
				fail("record_strip_cr");
			check_columns(b.data + start, kept, sep);
		}
		start += consumed;
		ref_start += ref_len + 1;
	}
	if (memchr(stream + ref_start, delim, len - ref_start) != NULL)
		fail("record_next missed a record");
	if (b.len - start != len - ref_start ||
	    memcmp(b.data + start, stream + ref_start, len - ref_start) != 0)
		fail("the rest at end of input differs");
	if (start < b.len) /* the last record, without a delimiter */
		check_columns(b.data + start, b.len - start, sep);
	buf_free(&b);
	return 0;
}
