/*
 * test_json.c - unit tests for json.c: -J numbers kept as written (the
 * compact text, fields, array columns, bad lines), and records written to
 * a sink in pieces of bounded size.
 */
#include <string.h>

#include "cpmap.h"
#include "tap.h"

/* The compact text and {1} of each line, numbers as written. */
static void
test_numbers(void)
{
	static const struct {
		const char *line, *text, *first;
	} cases[] = {
	    {"0.1", "0.1", "0.1"},
	    {"1e2", "1e2", "1e2"},
	    {"-0", "-0", "-0"},
	    {"2.50", "2.50", "2.50"},
	    {"1e999", "1e999", "1e999"},
	    {"-1E-400", "-1E-400", "-1E-400"},
	    {"123456789012345678901234567890", "123456789012345678901234567890",
	     "123456789012345678901234567890"},
	    {" [ 1.0 , -0.0e+0 ,\t18446744073709551616 ] ",
	     "[1.0,-0.0e+0,18446744073709551616]", "1.0"},
	    {"[\"1e2\", 1e2, \"a\\\"1\", 7]", "[\"1e2\",1e2,\"a\\\"1\",7]",
	     "1e2"},
	    {"[[0.5,[1e1]],{\"k\":[2.0]},3.00]",
	     "[[0.5,[1e1]],{\"k\":[2.0]},3.00]", "[0.5,[1e1]]"},
	    {"{\"b\":1.50,\"a\":{\"x\":1e-3},\"c\":[]}",
	     "{\"b\":1.50,\"a\":{\"x\":1e-3},\"c\":[]}",
	     "{\"b\":1.50,\"a\":{\"x\":1e-3},\"c\":[]}"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct input *in =
		    json_input_create(cases[i].line, strlen(cases[i].line), 1);
		size_t len;
		const char *first;

		if (!tap_ok(in->error == NULL, "%s is JSON", cases[i].line)) {
			tap_diag("%s", in->error);
			input_free(in);
			continue;
		}
		tap_is_mem(in->text, in->len, cases[i].text,
			   strlen(cases[i].text), "the text of %s",
			   cases[i].line);
		first = input_column(in, 1, &len);
		tap_is_mem(first, len, cases[i].first, strlen(cases[i].first),
			   "{1} of %s", cases[i].line);
		first = json_input_compact(in, &len);
		tap_is_mem(first, len, cases[i].text, strlen(cases[i].text),
			   "the compact text of %s", cases[i].line);
		free((char *)(uintptr_t)first);
		input_free(in);
	}
}

/* Fields give their numbers as written. */
static void
test_fields(void)
{
	static const char line[] = "{\"a\":{\"b\":[0.10,{\"c\":-0}]},\"n\":1e2,"
				   "\"a.b\":2.50}";
	static const struct {
		const char *path, *want;
	} cases[] = {
	    {"n", "1e2"},
	    {"a.b", "2.50"},
	    {"a", "{\"b\":[0.10,{\"c\":-0}]}"},
	    {"a.b.0", "0.10"}, /* no key "a.b.0": the path a, b, 0 */
	    {"a.b.1.c", "-0"},
	    {"n.0", NULL},
	};
	struct input *in = json_input_create(line, strlen(line), 1);

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *cause = NULL;
		size_t len = 0;
		const char *got =
		    json_input_field(in, cases[i].path, &len, &cause);

		if (cases[i].want == NULL)
			tap_ok(got == NULL && cause != NULL, "{%s} is missing",
			       cases[i].path);
		else
			tap_is_mem(got, got ? len : 0, cases[i].want,
				   strlen(cases[i].want), "{%s}",
				   cases[i].path);
		free(cause);
	}
	input_free(in);
}

/* Bad lines stay bad, with jansson's words on the text as written. */
static void
test_bad_lines(void)
{
	static const struct {
		const char *line;
		size_t len;
		const char *error;
	} cases[] = {
	    {"--1", 3, "line 1, column 1: invalid token near '-'"},
	    {"01", 2, NULL},
	    {"1.", 2, NULL},
	    {"[1 2]", 5, "line 1, column 4: ']' expected near '2'"},
	    {"{\"a\" 12}", 8, "line 1, column 7: ':' expected near '12'"},
	    {"[1e999 x]", 9, NULL},
	    {"0.9\0", 4, "line 1, column 4: a NUL byte is not JSON"},
	    {"tru1", 4, NULL},
	    {"\"1", 2, NULL},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct input *in =
		    json_input_create(cases[i].line, cases[i].len, 1);

		if (cases[i].error != NULL)
			tap_is_str(in->error ? in->error : "(none)",
				   cases[i].error, "the error of %s",
				   cases[i].line);
		else
			tap_ok(in->error != NULL, "%s is bad input",
			       cases[i].line);
		input_free(in);
	}
}

struct pieces {
	size_t count, largest, total;
	struct buf all;
};

static int
collect_piece(void *arg, const char *data, size_t len)
{
	struct pieces *p = arg;

	p->count++;
	p->total += len;
	if (len > p->largest)
		p->largest = len;
	buf_append(&p->all, data, len);
	return 0;
}

/* A record goes in one piece when small, in bounded pieces when not. */
static void
test_record_pieces(void)
{
	static const char zeros[4096];
	struct input *in = input_create("x", 1, NULL, 1);
	struct result r = {
	    .seq = 1, .inputs = &in, .input_count = 1, .exit_code = 0};
	struct capture *out = capture_create(), *err = capture_create();
	struct pieces p = {0};
	struct buf whole = {0};

	capture_append(out, "hi\n", 3);
	tap_is_int(json_record_write(&r, out, err, collect_piece, &p), 0,
		   "a small record is written");
	tap_is_int((long long)p.count, 1, "in one piece");
	json_record_encode(&whole, &r, out, err);
	tap_is_mem(p.all.data, p.all.len, whole.data, whole.len,
		   "the same as json_record_encode");
	buf_free(&whole);
	buf_free(&p.all);

	/* 8 MB of NUL bytes: 48 MB of record. */
	capture_free(out);
	out = capture_create();
	for (int i = 0; i < 2048; i++)
		capture_append(out, zeros, sizeof zeros);
	memset(&p, 0, sizeof p);
	tap_is_int(json_record_write(&r, out, err, collect_piece, &p), 0,
		   "a large record is written");
	tap_ok(p.count > 100, "in many pieces (%zu)", p.count);
	tap_ok(p.largest <= (128 << 10), "none over 128 KiB (largest %zu)",
	       p.largest);
	tap_ok(p.total > (size_t)6 * 2048 * sizeof zeros &&
		   p.all.data[p.all.len - 1] == '\n' &&
		   memchr(p.all.data, '\n', p.all.len - 1) == NULL,
	       "one line of %zu bytes", p.total);
	buf_free(&p.all);

	capture_free(out);
	capture_free(err);
	input_free(in);
}

static int
failing_piece(void *arg, const char *data, size_t len)
{
	(void)data;
	(void)len;
	return ++*(int *)arg >= 2 ? -28 /* ENOSPC */ : 0;
}

/* The sink's error stops the record and comes back. */
static void
test_record_error(void)
{
	static const char text[4096] = {'a'};
	struct input *in = input_create("x", 1, NULL, 1);
	struct result r = {
	    .seq = 1, .inputs = &in, .input_count = 1, .exit_code = 0};
	struct capture *out = capture_create();
	int calls = 0;

	for (int i = 0; i < 256; i++)
		capture_append(out, text, sizeof text);
	tap_is_int(json_record_write(&r, out, NULL, failing_piece, &calls), -28,
		   "a failing sink's error comes back");
	tap_is_int(calls, 2, "and nothing more is written after it");
	capture_free(out);
	input_free(in);
}

int
main(void)
{
	test_numbers();
	test_fields();
	test_bad_lines();
	test_record_pieces();
	test_record_error();
	return tap_done();
}
