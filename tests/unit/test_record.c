/*
 * test_record.c - unit tests for record.c (delimiters, records, CRLF) and
 * for input_create's column splitting (input.c).
 *
 * record_next is driven the way a reader drives it: bytes arrive in pieces
 * of random sizes, complete records are taken as soon as their delimiter is
 * in, and at the end of input what is left is the last record.  Whatever the
 * split points, the records must be those of a plain split of the whole.
 */
#include <stdlib.h>
#include <string.h>

#include "cpmap.h"
#include "tap.h"

static void
test_parse_delimiter(void)
{
	static const struct {
		const char *spec;
		int want;
	} cases[] = {
	    {"a", 'a'},
	    {",", ','},
	    {"\n", '\n'},
	    {"x", 'x'},
	    {"\xff", 0xff},
	    {"\\n", '\n'},
	    {"\\t", '\t'},
	    {"\\0", '\0'},
	    {"\\r", '\r'},
	    {"\\\\", '\\'},
	    {"\\", '\\'}, /* a lone backslash, as xargs -d '\' */
	    {"\\x41", 'A'},
	    {"\\x00", 0},
	    {"\\x0a", '\n'},
	    {"\\xff", 0xff},
	    {"\\xFF", 0xff},
	    {"\\xfF", 0xff},
	    {"\\x7e", '~'},
	    /* invalid */
	    {"", -1},
	    {"ab", -1},
	    {"\xc3\xa9", -1}, /* two bytes, even if one character */
	    {"\\a", -1},
	    {"\\N", -1},
	    {"\\1", -1},
	    {"\\x", -1},
	    {"\\x4", -1},
	    {"\\x4g", -1},
	    {"\\xg4", -1},
	    {"\\x411", -1},
	    {"\\X41", -1},
	    {"\\n\\n", -1},
	    {"\\nx", -1},
	    {"\\00", -1},
	    {"a\\", -1},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		tap_is_int(record_parse_delimiter(cases[i].spec), cases[i].want,
			   "record_parse_delimiter(\"%s\") is %d",
			   cases[i].spec, cases[i].want);
}

/* -C takes the escapes of -d, anywhere in a string; never a NUL. */
static void
test_parse_separator(void)
{
	static const struct {
		const char *spec;
		const char *want; /* NULL: refused */
	} cases[] = {
	    {",", ","},
	    {"::", "::"},
	    {".|", ".|"},
	    {"\\t", "\t"},
	    {"\\n", "\n"},
	    {"\\r", "\r"},
	    {"\\\\", "\\"},
	    {"\\x2c", ","},
	    {"\\x2C\\x2c", ",,"},
	    {"a\\tb", "a\tb"},
	    {"\\t\\t", "\t\t"},
	    {"\\\\t", "\\t"},
	    {"\\xff", "\xff"},
	    {"\\x41x", "Ax"},
	    /* refused */
	    {"", NULL},
	    {"\\0", NULL},
	    {"\\x00", NULL},
	    {"a\\0", NULL},
	    {"\\q", NULL},
	    {"\\s+", NULL},
	    {"\\", NULL},
	    {"a\\", NULL},
	    {"\\x", NULL},
	    {"\\x4", NULL},
	    {"\\xg1", NULL},
	    {"\\|", NULL},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *spec = xstrdup(cases[i].spec);
		char *got = record_parse_separator(spec);

		if (cases[i].want == NULL) {
			tap_ok(got == NULL, "-C \"%s\" is refused",
			       cases[i].spec);
			tap_is_str(spec, cases[i].spec,
				   "... and left as written");
		} else {
			tap_ok(got == spec, "-C \"%s\" is decoded in place",
			       cases[i].spec);
			tap_is_str(got != NULL ? got : "(NULL)", cases[i].want,
				   "... to its bytes");
		}
		free(spec);
	}
}

static void
test_strip_cr(void)
{
	static const struct {
		const char *data;
		size_t want;
	} cases[] = {
	    {"", 0},	  {"a", 1},   {"a\r", 1},  {"\r", 0},
	    {"a\r\r", 2}, {"\ra", 2}, {"a\rb", 3}, {"a\n", 2},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		tap_is_int((long long)record_strip_cr(cases[i].data,
						      strlen(cases[i].data)),
			   (long long)cases[i].want,
			   "record_strip_cr(\"%s\") keeps %zu bytes",
			   cases[i].data, cases[i].want);
}

static void
test_next_basic(void)
{
	size_t consumed = 12345;

	tap_is_int(record_next("abc", 3, '\n', &consumed), -1,
		   "record_next: no delimiter, no record");
	tap_is_int((long long)consumed, 12345,
		   "record_next: consumed is left alone when there is none");
	tap_is_int(record_next("", 0, '\n', &consumed), -1,
		   "record_next: empty data, no record");
	tap_is_int(record_next("ab\ncd\n", 6, '\n', &consumed), 2,
		   "record_next: the first record's length");
	tap_is_int((long long)consumed, 3,
		   "record_next: consumed counts the delimiter");
	tap_is_int(record_next("\nx", 2, '\n', &consumed), 0,
		   "record_next: an empty record");
	tap_is_int((long long)consumed, 1,
		   "record_next: an empty record consumes its delimiter");
	tap_is_int(record_next("a\0b\0", 4, '\0', &consumed), 1,
		   "record_next: NUL as the delimiter");
	tap_is_int(record_next("a\0b\n", 4, '\n', &consumed), 3,
		   "record_next: a NUL inside a line record is data");
	tap_is_int(record_next("a\xff"
			       "b",
			       3, 0xff, &consumed),
		   1, "record_next: delimiter byte 0xff");
	tap_is_int(record_next("abc\n", 2, '\n', &consumed), -1,
		   "record_next: does not look past len");
}

/* A plain reference split: records of data[0..len) by delim. */
struct records {
	char **text;
	size_t *len;
	size_t count;
};

static void
records_add(struct records *r, const char *text, size_t len)
{
	r->text = realloc(r->text, (r->count + 1) * sizeof *r->text);
	r->len = realloc(r->len, (r->count + 1) * sizeof *r->len);
	if (r->text == NULL || r->len == NULL)
		tap_bail("out of memory");
	r->text[r->count] = xmalloc(len + 1);
	memcpy(r->text[r->count], text, len);
	r->text[r->count][len] = '\0';
	r->len[r->count++] = len;
}

static void
records_free(struct records *r)
{
	for (size_t i = 0; i < r->count; i++)
		free(r->text[i]);
	free(r->text);
	free(r->len);
	memset(r, 0, sizeof *r);
}

static void
reference_split(const char *data, size_t len, int delim, struct records *r)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++)
		if ((unsigned char)data[i] == delim) {
			records_add(r, data + start, i - start);
			start = i + 1;
		}
	if (start < len)
		records_add(r, data + start, len - start);
}

static unsigned long long rng_state = 0x2545f4914f6cdd1dULL;

static unsigned
rng(unsigned bound)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (unsigned)(rng_state % bound);
}

/* Feed data in pieces of 1..max_piece bytes, as input.c's reader does. */
static void
reader_split(const char *data, size_t len, int delim, size_t max_piece,
	     struct records *r)
{
	struct buf b = {0};
	size_t start = 0, fed = 0;

	buf_reserve(&b, 0); /* never hand record_next a NULL pointer */
	for (;;) {
		size_t consumed;
		ssize_t n = record_next(b.data + start, b.len - start, delim,
					&consumed);

		if (n >= 0) {
			if ((size_t)n + 1 != consumed)
				tap_bail("record_next: consumed %zu for a "
					 "record of %zd",
					 consumed, n);
			records_add(r, b.data + start, (size_t)n);
			start += consumed;
			continue;
		}
		if (fed == len)
			break;
		size_t piece = 1 + rng((unsigned)max_piece);

		if (piece > len - fed)
			piece = len - fed;
		/* Drop what was taken, as a reader compacts its buffer. */
		if (start > 0 && rng(2) == 0) {
			memmove(b.data, b.data + start, b.len - start);
			b.len -= start;
			start = 0;
		}
		buf_append(&b, data + fed, piece);
		fed += piece;
	}
	if (start < b.len) /* end of input: the rest is the last record */
		records_add(r, b.data + start, b.len - start);
	buf_free(&b);
}

static bool
records_equal(const struct records *a, const struct records *b)
{
	if (a->count != b->count)
		return false;
	for (size_t i = 0; i < a->count; i++)
		if (a->len[i] != b->len[i] ||
		    memcmp(a->text[i], b->text[i], a->len[i]) != 0)
			return false;
	return true;
}

static void
test_next_split_points(void)
{
	/* Every split point of a fixed text, in two pieces. */
	static const char text[] = "one\ntwo\n\nthree\r\nfour";
	size_t len = sizeof text - 1;
	struct records want = {0};
	int bad = 0;

	reference_split(text, len, '\n', &want);
	tap_is_int((long long)want.count, 5,
		   "the reference split finds 5 records");
	for (size_t cut = 0; cut <= len; cut++) {
		struct records got = {0};
		struct buf b = {0};
		size_t start = 0, consumed;
		ssize_t n;

		buf_append(&b, text, cut);
		for (int round = 0; round < 2; round++) {
			while ((n = record_next(b.data + start, b.len - start,
						'\n', &consumed)) >= 0) {
				records_add(&got, b.data + start, (size_t)n);
				start += consumed;
			}
			if (round == 0)
				buf_append(&b, text + cut, len - cut);
		}
		if (start < b.len)
			records_add(&got, b.data + start, b.len - start);
		if (!records_equal(&got, &want) && bad++ == 0)
			tap_diag("split at %zu gives %zu records", cut,
				 got.count);
		records_free(&got);
		buf_free(&b);
	}
	tap_ok(bad == 0, "records are the same wherever the data is cut");
	tap_is_str(want.text[3], "three\r",
		   "record_next leaves the \\r (record_strip_cr removes it)");
	records_free(&want);

	/* Random data in random pieces, with several delimiters. */
	static const int delims[] = {'\n', '\0', '\t', 0xff, 'a'};
	enum { ROUNDS = 3000, MAX_LEN = 200 };

	for (size_t d = 0; d < sizeof delims / sizeof delims[0]; d++) {
		int failures = 0;
		size_t total = 0;

		for (int r = 0; r < ROUNDS; r++) {
			char data[MAX_LEN];
			size_t dlen = rng(MAX_LEN);
			struct records a = {0}, b = {0};

			for (size_t i = 0; i < dlen; i++)
				/* small alphabet: many delimiters, runs */
				data[i] = rng(3) == 0 ? (char)delims[d]
						      : "ab\n\0\r\xff"[rng(6)];
			reference_split(data, dlen, delims[d], &a);
			reader_split(data, dlen, delims[d], 1 + rng(16), &b);
			total += a.count;
			if (!records_equal(&a, &b) && failures++ == 0) {
				tap_diag("round %d: %zu records, expected %zu",
					 r, b.count, a.count);
				tap_diag_value("data", data, dlen);
			}
			records_free(&a);
			records_free(&b);
		}
		tap_ok(failures == 0 && total > ROUNDS,
		       "delimiter 0x%02x: %d random streams fed in random "
		       "pieces give the records of a plain split (%zu records, "
		       "%d wrong)",
		       delims[d], ROUNDS, total, failures);
	}
}

struct column_case {
	const char *what;
	const char *text;
	size_t len; /* 0: strlen(text) */
	const char *colsep;
	size_t count; /* expected column_count */
	const char *columns[6];
	size_t lens[6]; /* 0: strlen(columns[i]) */
};

static void
check_columns(const struct column_case *c)
{
	size_t len = c->len ? c->len : strlen(c->text);
	struct input *in = input_create(c->text, len, c->colsep, 42);
	bool ok = in->column_count == c->count;

	for (size_t i = 0; ok && i < c->count; i++) {
		size_t want_len =
		    c->lens[i] ? c->lens[i] : strlen(c->columns[i]);
		size_t got_len = 99;
		const char *got = input_column(in, i + 1, &got_len);

		ok = got_len == want_len &&
		     memcmp(got, c->columns[i], want_len) == 0 &&
		     got == in->columns[i] && got_len == in->column_lens[i];
		if (!ok) {
			tap_diag("column %zu:", i + 1);
			tap_diag_value("got", got, got_len);
			tap_diag_value("expected", c->columns[i], want_len);
		}
	}
	if (in->column_count != c->count)
		tap_diag("got %zu columns, expected %zu", in->column_count,
			 c->count);
	tap_ok(ok, "input_create with colsep \"%s\": %s", c->colsep, c->what);
	input_free(in);
}

static void
test_columns(void)
{
	static const struct column_case cases[] = {
	    {"three columns", "a,b,c", 0, ",", 3, {"a", "b", "c"}, {0}},
	    {"no separator: one column", "abc", 0, ",", 1, {"abc"}, {0}},
	    {"an empty input is one empty column", "", 0, ",", 1, {""}, {0}},
	    {"separators at both ends make empty columns",
	     ",a,",
	     0,
	     ",",
	     3,
	     {"", "a", ""},
	     {0}},
	    {"adjacent separators make an empty column",
	     "a,,b",
	     0,
	     ",",
	     3,
	     {"a", "", "b"},
	     {0}},
	    {"only a separator", ",", 0, ",", 2, {"", ""}, {0}},
	    {"a tab", "x\ty z\t", 0, "\t", 3, {"x", "y z", ""}, {0}},
	    {"a multi-byte separator",
	     "a::b::",
	     0,
	     "::",
	     3,
	     {"a", "b", ""},
	     {0}},
	    {"separators are found left to right, without overlap",
	     ":::",
	     0,
	     "::",
	     2,
	     {"", ":"},
	     {0}},
	    {"a longer separator",
	     "1 -> 2 -> 3",
	     0,
	     " -> ",
	     3,
	     {"1", "2", "3"},
	     {0}},
	    {"a UTF-8 separator",
	     "a\xe2\x86\x92"
	     "b",
	     0,
	     "\xe2\x86\x92",
	     2,
	     {"a", "b"},
	     {0}},
	    {"a partial separator is data",
	     "a\xe2\x86"
	     "b",
	     0,
	     "\xe2\x86\x92",
	     1,
	     {"a\xe2\x86"
	      "b"},
	     {0}},
	    {"the separator is literal, not a pattern",
	     "a.b|c",
	     0,
	     ".|",
	     1,
	     {"a.b|c"},
	     {0}},
	    {"NUL bytes are data",
	     "a\0,\0b",
	     5,
	     ",",
	     2,
	     {"a\0", "\0b"},
	     {2, 2}},
	    {"a separator holding the whole input",
	     "ab",
	     0,
	     "ab",
	     2,
	     {"", ""},
	     {0}},
	    {"a separator longer than the input", "a", 0, "abc", 1, {"a"}, {0}},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		check_columns(&cases[i]);
}

static void
test_input_create(void)
{
	struct input *in;
	size_t len = 99;
	const char *v;

	in = input_create("hello world", 11, NULL, 7);
	tap_is_int((long long)in->column_count, 0,
		   "input_create without colsep: no columns");
	tap_is_int((long long)in->number, 7, "input_create keeps the number");
	tap_ok(in->header == NULL, "input_create: no header");
	v = input_column(in, 1, &len);
	tap_is_mem(v, len, "hello world", 11,
		   "without columns, column 1 is the whole input");
	len = 99;
	v = input_column(in, 2, &len);
	tap_is_mem(v, len, "", 0, "without columns, column 2 is empty");
	len = 99;
	v = input_column(in, 0, &len);
	tap_is_mem(v, len, "", 0, "without columns, column 0 is empty");
	input_free(in);

	in = input_create("a\0b\nxyz", 3, NULL, 1);
	tap_ok(in->len == 3 && memcmp(in->text, "a\0b", 4) == 0,
	       "input_create copies len bytes and adds a NUL");
	input_free(in);

	in = input_create("a,b", 3, "", 1);
	tap_is_int((long long)in->column_count, 0,
		   "an empty colsep splits nothing");
	input_free(in);

	in = input_create("a,b", 3, ",", 1);
	len = 99;
	v = input_column(in, 3, &len);
	tap_is_mem(v, len, "", 0, "a column past the last is empty");
	len = 99;
	v = input_column(in, 0, &len);
	tap_is_mem(v, len, "", 0, "column 0 is empty");
	len = 99;
	v = input_column(in, (size_t)-1, &len);
	tap_is_mem(v, len, "", 0, "column SIZE_MAX is empty");
	tap_is_mem(in->text, in->len, "a,b", 3,
		   "splitting leaves the text whole");
	input_free(in);
}

int
main(void)
{
	test_parse_delimiter();
	test_parse_separator();
	test_strip_cr();
	test_next_basic();
	test_next_split_points();
	test_columns();
	test_input_create();
	return tap_done();
}
