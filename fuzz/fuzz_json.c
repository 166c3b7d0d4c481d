/*
 * fuzz_json.c - libFuzzer target for json.c (-J inputs and --json records),
 * with utf8.c and base64.c under it.
 *
 * Input layout: the bytes up to the first newline are one -J line (all of
 * the input if there is no newline); the bytes after it are the task's
 * stdout, and the line itself is also used as its stderr.  The line goes
 * through json_input_create; if it is good, a template using a few fields
 * ({name} {a.b} {items.0} {1} {} x{2}y) is expanded for it; then a result
 * record is encoded as the pool would make it (bad input, a missing field,
 * or a finished task whose status the size picks).
 *
 * Properties checked (abort on failure): the record is exactly one line;
 * it parses with jansson (duplicate keys rejected) as an object; its keys
 * come in the documented order; stdout and stderr come back byte for byte,
 * from "stdout" as text or from "stdout_base64" (never both); the input,
 * argv and error say what the result said; and {name} / {} expand to the
 * record's field and compact text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cpmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_json: %s\n", what);
	abort();
}

/* Strict base64 decoding into out; its length, or -1 when malformed. */
static long
unbase64(const char *text, size_t len, unsigned char *out)
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
		out[n++] = (unsigned char)(v >> 16);
		if (pad < 2)
			out[n++] = (unsigned char)(v >> 8);
		if (pad < 1)
			out[n++] = (unsigned char)v;
	}
	return (long)n;
}

/*
 * The record must hold the bytes under exactly one of NAME (a string, when
 * the bytes are UTF-8) or NAME_base64.
 */
static void
check_bytes(json_t *record, const char *name, const void *want, size_t want_len,
	    const char *what)
{
	char b64name[64];
	json_t *text = json_object_get(record, name), *b64;

	snprintf(b64name, sizeof b64name, "%s_base64", name);
	b64 = json_object_get(record, b64name);
	if ((text == NULL) == (b64 == NULL))
		fail(what);
	if (text != NULL) {
		if (!json_is_string(text) ||
		    json_string_length(text) != want_len ||
		    memcmp(json_string_value(text), want, want_len) != 0)
			fail(what);
		if (!utf8_valid(want, want_len))
			fail("bytes that are not UTF-8 went out as text");
	} else {
		size_t len = json_string_length(b64);
		unsigned char *back = malloc(len + 1);
		long n;

		if (back == NULL)
			abort();
		if (!json_is_string(b64))
			fail(what);
		n = unbase64(json_string_value(b64), len, back);
		if (n < 0 || (size_t)n != want_len ||
		    memcmp(back, want, want_len) != 0)
			fail(what);
		if (utf8_valid(want, want_len))
			fail("valid UTF-8 went out as base64");
		free(back);
	}
}

/* Visit a capture's bytes into a buf, to compare with what was appended. */
static int
collect(void *arg, const char *data, size_t len)
{
	buf_append(arg, data, len);
	return 0;
}

/* The record's keys must be these, in this order (with _base64 forms). */
static void
check_key_order(const char *line, size_t len)
{
	static const char *const keys[] = {
	    "seq",	"input",  "argv",     "host",	"slot",
	    "attempts", "start",  "duration", "status", "exit",
	    "signal",	"stdout", "stderr",   "error",
	};
	json_t *record;
	const char *key;
	json_t *value;
	size_t i = 0;
	json_error_t error;

	/* jansson keeps the order of insertion, which is the text's. */
	record = json_loadb(line, len, JSON_ALLOW_NUL, &error);
	if (record == NULL)
		fail("the record does not parse");
	json_object_foreach(record, key, value)
	{
		size_t n;

		if (i >= sizeof keys / sizeof keys[0])
			fail("more keys than documented");
		n = strlen(keys[i]);
		if (strncmp(key, keys[i], n) != 0 ||
		    (key[n] != '\0' && strcmp(key + n, "_base64") != 0))
			fail("a key out of order");
		i++;
	}
	if (i != sizeof keys / sizeof keys[0])
		fail("a key is missing");
	json_decref(record);
}

/*
 * The number tokens of valid JSON text, in order, each followed by a
 * space: written without json.c's help, to compare a line with the text
 * cpmap made of it.
 */
static void
number_tokens(const char *p, size_t len, struct buf *out)
{
	const char *end = p + len;

	while (p < end) {
		if (*p == '"') {
			for (p++; p < end && *p != '"'; p++)
				if (*p == '\\')
					p++;
			p++;
		} else if (*p == '-' || (*p >= '0' && *p <= '9')) {
			const char *start = p;

			while (p < end && strchr("+-.0123456789eE", *p) &&
			       *p != '\0')
				p++;
			buf_append(out, start, (size_t)(p - start));
			buf_append_char(out, ' ');
		} else {
			p++;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char w0[] = "echo", w1[] = "{name}", w2[] = "{a.b}",
		    w3[] = "{items.0}", w4[] = "{1}", w5[] = "{}",
		    w6[] = "x{2}y";
	char *words[] = {w0, w1, w2, w3, w4, w5, w6, NULL};
	const char *bytes = (const char *)data;
	const char *nl = memchr(bytes, '\n', size);
	size_t line_len = nl ? (size_t)(nl - bytes) : size;
	const char *out_bytes = nl ? nl + 1 : bytes + size;
	size_t out_len = size - (size_t)(out_bytes - bytes);
	struct input *in;
	struct template *t;
	struct capture *cout, *cerr;
	struct buf rec = {0}, seen = {0};
	char **argv = NULL, *cause = NULL;
	struct result r;
	json_t *record, *value, *parsed = NULL, *original;
	json_error_t error;
	size_t skip = 0; /* bytes of the record's input left out of parsing */
	bool is_string;

	/* The -J line, as cpmap would parse it. */
	in = json_input_create(bytes, line_len, 7);
	if (in == NULL)
		fail("json_input_create gave NULL");
	if ((in->error == NULL) != (in->json != NULL))
		fail("an input must have a JSON value or an error");
	if (in->error != NULL && in->error_line != 7)
		fail("a bad line's error is not on its line");

	/*
	 * Whatever jansson reads, cpmap reads as the same value; cpmap's
	 * text keeps every number token as written (so jansson may not be
	 * able to read it back: 1e999, 2^64).
	 */
	original = json_loadb(bytes, line_len,
			      JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
	if (original != NULL && memchr(bytes, '\0', line_len) != NULL) {
		/* jansson skips a NUL after a number; cpmap does not. */
		json_decref(original);
		original = NULL;
	}
	if (original != NULL && in->json == NULL)
		fail("a line jansson reads is bad input");
	is_string = original != NULL && json_is_string(original);
	if (is_string &&
	    (json_string_length(original) != in->len ||
	     memcmp(json_string_value(original), in->text, in->len) != 0))
		fail("a string's text is not its value");
	if (in->json != NULL && !is_string) {
		struct buf want = {0}, got = {0};

		parsed = json_loadb(in->text, in->len,
				    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
				    &error);
		if (original != NULL &&
		    (parsed == NULL || !json_equal(original, parsed)))
			fail("the input's text is not the line's value");
		number_tokens(bytes, line_len, &want);
		number_tokens(in->text, in->len, &got);
		if (want.len != got.len ||
		    (want.len > 0 &&
		     memcmp(want.data, got.data, want.len) != 0))
			fail("a number is not kept as written");
		buf_free(&want);
		buf_free(&got);
	}
	json_decref(original);

	t = template_parse(words, 7, NULL, SHELL_NEVER, true, &cause);
	if (t == NULL)
		fail("the template does not parse");

	memset(&r, 0, sizeof r);
	r.seq = 7;
	r.inputs = &in;
	r.input_count = 1;
	r.exit_code = -1;
	if (in->error != NULL) {
		r.status = STATUS_ERROR;
		r.error = ERROR_BAD_INPUT;
		r.message = in->error;
		r.line = in->error_line;
		r.column = in->error_column;
	} else {
		struct expansion e = {&in, 1, 7, 2};

		argv = template_expand(t, &e, true, &cause);
		if (argv == NULL) {
			if (cause == NULL)
				fail("an expansion failed without a cause");
			r.status = STATUS_ERROR;
			r.error = ERROR_BAD_INPUT;
			r.message = cause;
		} else {
			json_t *name = json_object_get(parsed, "name");

			if (cause != NULL)
				fail("an expansion worked but gave a cause");
			/* {name} of a string field is its value; {} is
			 * the compact text. */
			if (json_is_string(name) &&
			    strcmp(argv[1], json_string_value(name)) != 0)
				fail("{name} is not the field's value");
			if (strlen(argv[5]) != in->len ||
			    memcmp(argv[5], in->text, in->len) != 0)
				fail("{} is not the input's text");
			r.argv = argv;
			r.host = "local";
			r.slot = 2;
			r.attempts = 1;
			r.start = 1700000000.25;
			r.duration = 0.5;
			switch (size % 3) {
			case 0:
				r.status = STATUS_OK;
				r.exit_code = 0;
				break;
			case 1:
				r.status = STATUS_FAILED;
				r.exit_code = (int)(size % 255) + 1;
				break;
			default:
				r.status = STATUS_SIGNALED;
				r.signal = 9;
				break;
			}
		}
	}

	/* The task's output, in pieces as the pipes would give it. */
	cout = capture_create();
	cerr = capture_create();
	for (size_t at = 0, k = 1; at < out_len; at += k, k = k * 2 + 1) {
		if (k > out_len - at)
			k = out_len - at;
		capture_append(cout, out_bytes + at, k);
	}
	capture_append(cerr, bytes, line_len);
	if (capture_size(cout) != out_len || capture_size(cerr) != line_len)
		fail("capture_size is not what was appended");

	json_record_encode(&rec, &r, cout, cerr);

	/* One line, ending in its newline. */
	if (rec.len == 0 || rec.data[rec.len - 1] != '\n' ||
	    memchr(rec.data, '\n', rec.len - 1) != NULL)
		fail("the record is not exactly one line");
	if (!utf8_valid(rec.data, rec.len))
		fail("the record is not UTF-8");
	/*
	 * A JSON input is written as cpmap's text of it, which jansson may
	 * not read: check it as text, and parse the record without it.
	 */
	if (in->json != NULL && !is_string) {
		static const char head[] = "{\"seq\":7,\"input\":";

		if (rec.len < sizeof head - 1 + in->len ||
		    memcmp(rec.data, head, sizeof head - 1) != 0 ||
		    memcmp(rec.data + sizeof head - 1, in->text, in->len) != 0)
			fail("the record's input is not the input's text");
		skip = in->len;
		memmove(rec.data + sizeof head - 1,
			rec.data + sizeof head - 1 + skip,
			rec.len - (sizeof head - 1) - skip);
		rec.len -= skip;
		buf_reserve(&rec, 4);
		memmove(rec.data + sizeof head - 1 + 4,
			rec.data + sizeof head - 1,
			rec.len - (sizeof head - 1));
		memcpy(rec.data + sizeof head - 1, "null", 4);
		rec.len += 4;
	}
	record = json_loadb(rec.data, rec.len - 1,
			    JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &error);
	if (record == NULL || !json_is_object(record)) {
		fprintf(stderr, "%s\n%.*s\n", error.text, (int)rec.len,
			rec.data);
		fail("the record does not parse as a JSON object");
	}
	check_key_order(rec.data, rec.len - 1);

	/* The output, byte for byte. */
	check_bytes(record, "stdout", out_bytes, out_len,
		    "stdout does not round-trip");
	check_bytes(record, "stderr", bytes, line_len,
		    "stderr does not round-trip");
	/* Reading the capture did not use it up. */
	capture_each(cout, collect, &seen);
	if (seen.len != out_len ||
	    (out_len > 0 && memcmp(seen.data, out_bytes, out_len) != 0))
		fail("the capture changed while it was encoded");

	/* The input: the JSON value itself, or the raw line. */
	if (in->json != NULL && skip == 0) {
		json_t *input = json_object_get(record, "input");

		if (!json_is_string(input) ||
		    json_string_length(input) != in->len ||
		    memcmp(json_string_value(input), in->text, in->len) != 0)
			fail("input is not the JSON string");
	} else if (in->json == NULL) {
		check_bytes(record, "input", bytes, line_len,
			    "input is not the raw line");
	}

	/* argv: null for bad input, else the words, as text or base64. */
	value = json_object_get(record, "argv");
	if (argv == NULL) {
		if (!json_is_null(value))
			fail("argv is not null for a bad input");
	} else {
		json_t *list =
		    value ? value : json_object_get(record, "argv_base64");
		size_t n = 0;

		while (argv[n] != NULL)
			n++;
		if (!json_is_array(list) || json_array_size(list) != n)
			fail("argv has the wrong length");
		for (size_t i = 0; i < n; i++) {
			json_t *one = json_array_get(list, i);
			size_t len = strlen(argv[i]);

			if (value != NULL) {
				if (json_string_length(one) != len ||
				    memcmp(json_string_value(one), argv[i],
					   len) != 0)
					fail("an argv element differs");
			} else {
				unsigned char *back =
				    malloc(json_string_length(one) + 1);
				long got;

				if (back == NULL)
					abort();
				got = unbase64(json_string_value(one),
					       json_string_length(one), back);
				if (got != (long)len ||
				    memcmp(back, argv[i], len) != 0)
					fail("an argv_base64 element differs");
				free(back);
			}
		}
	}

	/* Status, exit, signal and error as the result said. */
	value = json_object_get(record, "status");
	if (!json_is_string(value))
		fail("no status");
	if (r.error == ERROR_BAD_INPUT) {
		json_t *err = json_object_get(record, "error");
		json_t *msg = json_object_get(err, "message");

		if (strcmp(json_string_value(value), "error") != 0 ||
		    strcmp(json_string_value(json_object_get(err, "kind")),
			   "bad-input") != 0 ||
		    !json_is_null(json_object_get(record, "exit")))
			fail("a bad input's record is wrong");
		if (!json_is_string(msg) ||
		    (utf8_valid(r.message, strlen(r.message)) &&
		     strcmp(json_string_value(msg), r.message) != 0))
			fail("the error message differs");
		if (r.line > 0 && json_integer_value(json_object_get(
				      err, "line")) != (json_int_t)r.line)
			fail("the error line differs");
	} else {
		static const char *const names[] = {
		    [STATUS_OK] = "ok",
		    [STATUS_FAILED] = "failed",
		    [STATUS_SIGNALED] = "signaled",
		};
		json_t *exitv = json_object_get(record, "exit");

		if (strcmp(json_string_value(value), names[r.status]) != 0)
			fail("the status differs");
		if (r.exit_code >= 0 ? json_integer_value(exitv) != r.exit_code
				     : !json_is_null(exitv))
			fail("exit differs");
		if (r.signal ? strcmp(json_string_value(
					  json_object_get(record, "signal")),
				      "SIGKILL") != 0
			     : !json_is_null(json_object_get(record, "signal")))
			fail("signal differs");
		if (!json_is_null(json_object_get(record, "error")))
			fail("error is not null for a task that ran");
		if (json_integer_value(json_object_get(record, "seq")) != 7 ||
		    json_integer_value(json_object_get(record, "slot")) != 2 ||
		    strcmp(json_string_value(json_object_get(record, "host")),
			   "local") != 0 ||
		    json_real_value(json_object_get(record, "start")) !=
			1700000000.25 ||
		    json_real_value(json_object_get(record, "duration")) != 0.5)
			fail("seq, slot, host, start or duration differs");
	}

	json_decref(record);
	json_decref(parsed);
	buf_free(&rec);
	buf_free(&seen);
	capture_free(cout);
	capture_free(cerr);
	free(argv);
	free(cause);
	template_free(t);
	input_free(in);
	return 0;
}
