/*
 * json.c - JSON inputs (-J) and JSON result records (--json); the only file
 * that includes <jansson.h>.
 *
 * An input line is parsed by jansson with duplicate keys rejected; whatever
 * is wrong with it (bad syntax, a duplicate key, invalid UTF-8 in a string,
 * too deep, too big, empty) becomes the input's error, with the line and
 * column, and the run goes on.  Arrays fill the input's columns ({1}, {2},
 * and the arguments appended when no placeholder is used); objects answer
 * {name} and dotted paths ({a.b}, {items.0}).
 *
 * A record is encoded in memory and written at once by the output.  Its
 * small fields go through jansson; the task's stdout and stderr can be any
 * size and may sit in a spill file, so they are validated and escaped (or
 * base64-encoded when they are not UTF-8) piece by piece by utf8.c and
 * base64.c, straight into the record's buffer.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cpmap.h"

#define JSON_MAX_RECORD (8u * 1024 * 1024) /* bytes in one -J line */

/* The text a value stands for: a string's value, else its compact JSON. */
static char *
json_value_text(json_t *value, size_t *len)
{
	char *text;

	if (json_is_string(value)) {
		*len = json_string_length(value);
		return xmemdup(json_string_value(value), *len + 1);
	}
	text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
	if (text == NULL)
		fatal("out of memory encoding JSON");
	*len = strlen(text);
	return text;
}

/* Give an array's elements to the input as its columns. */
static void
json_array_columns(struct input *in, json_t *array)
{
	size_t count = json_array_size(array);

	in->columns = xcalloc(count ? count : 1, sizeof *in->columns);
	in->column_lens = xcalloc(count ? count : 1, sizeof *in->column_lens);
	for (size_t i = 0; i < count; i++)
		in->columns[i] = json_value_text(json_array_get(array, i),
						 &in->column_lens[i]);
	in->column_count = count;
	in->owns_columns = true;
	in->empty_columns = count == 0;
}

struct input *
json_input_create(const char *line, size_t len, uint64_t number)
{
	json_error_t error;
	struct input *in;
	json_t *value;
	char *text;
	size_t text_len;

	if (len == 0 || len > JSON_MAX_RECORD) {
		in = input_create(line, len > 4096 ? 4096 : len, NULL, number);
		in->error_line = number;
		in->error = len == 0 ? xasprintf("line %llu: empty line, not "
						 "a JSON value",
						 (unsigned long long)number)
				     : xasprintf("line %llu: a JSON record of "
						 "%zu bytes is over the %u MiB "
						 "limit",
						 (unsigned long long)number,
						 len, JSON_MAX_RECORD >> 20);
		return in;
	}
	value = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
			   &error);
	if (value == NULL) {
		in = input_create(line, len, NULL, number);
		in->error_line = number;
		in->error_column =
		    (uint64_t)(error.column > 0 ? error.column : 0);
		in->error = xasprintf("line %llu, column %d: %s",
				      (unsigned long long)number, error.column,
				      error.text);
		return in;
	}
	text = json_value_text(value, &text_len);
	in = input_create(text, text_len, NULL, number);
	free(text);
	in->json = value;
	/* A string or number is like a line; only structures are strict. */
	in->strict = json_is_array(value) || json_is_object(value);
	if (json_is_array(value))
		json_array_columns(in, value);
	return in;
}

const char *
json_input_field(struct input *in, const char *path, size_t *len, char **cause)
{
	json_t *value = in->json;
	const char *p = path;

	/* A key that holds dots itself wins over the dotted path. */
	if (json_is_object(value) && json_object_get(value, path) != NULL) {
		value = json_object_get(value, path);
		p = NULL;
	}
	while (p != NULL && value != NULL) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		char *key = xmemdup(p, n + 1);
		char *end;

		key[n] = '\0';
		if (json_is_object(value)) {
			value = json_object_get(value, key);
		} else if (json_is_array(value) && n > 0 && key[0] >= '0' &&
			   key[0] <= '9') {
			unsigned long i = strtoul(key, &end, 10);

			value = *end == '\0' ? json_array_get(value, i) : NULL;
		} else {
			value = NULL;
		}
		free(key);
		p = dot ? dot + 1 : NULL;
	}
	if (value == NULL) {
		*cause = xasprintf("input %llu: no field '%s' in the record",
				   (unsigned long long)in->number, path);
		return NULL;
	}
	free(in->field_text);
	in->field_text = json_value_text(value, len);
	return in->field_text;
}

char *
json_input_compact(const struct input *in, size_t *len)
{
	char *text = json_dumps(in->json, JSON_COMPACT | JSON_ENCODE_ANY |
					      JSON_PRESERVE_ORDER);

	if (text == NULL)
		fatal("out of memory encoding JSON");
	*len = strlen(text);
	return text;
}

void
json_release(void *json)
{
	json_decref(json);
}

/* ---- result records ---------------------------------------------------- */

static const char *const json_status_names[] = {
    [STATUS_OK] = "ok",
    [STATUS_FAILED] = "failed",
    [STATUS_SIGNALED] = "signaled",
    [STATUS_TIMEOUT] = "timeout",
    [STATUS_ERROR] = "error",
    [STATUS_SKIPPED] = "skipped",
};

static const char *const json_error_names[] = {
    [ERROR_NONE] = NULL,
    [ERROR_SPAWN] = "spawn",
    [ERROR_BAD_INPUT] = "bad-input",
    [ERROR_TIMEOUT] = "timeout",
    [ERROR_HOST_LOST] = "host-lost",
    [ERROR_OUTPUT_LIMIT] = "output-limit",
};

/* A JSON string of arbitrary bytes; NULL if they are not UTF-8. */
static json_t *
json_bytes(const char *data, size_t len)
{
	return utf8_valid(data, len) ? json_stringn(data, len) : NULL;
}

static json_t *
json_base64(const char *data, size_t len)
{
	struct base64_state state;
	struct buf encoded = {0};
	json_t *value;

	base64_init(&state);
	base64_feed(&state, &encoded, data, len);
	base64_finish(&state, &encoded);
	value = json_stringn(encoded.data ? encoded.data : "", encoded.len);
	buf_free(&encoded);
	return value;
}

/* Set key to the input's value: its JSON, its text, or base64 of it. */
static void
json_set_input(json_t *record, const char *key, const struct input *in)
{
	json_t *value;
	char *name;

	if (in->json != NULL) {
		json_object_set(record, key, in->json);
		return;
	}
	if ((value = json_bytes(in->text, in->len)) != NULL) {
		json_object_set_new(record, key, value);
		return;
	}
	name = xasprintf("%s_base64", key);
	json_object_set_new(record, name, json_base64(in->text, in->len));
	free(name);
}

static void
json_set_inputs(json_t *record, const struct result *r)
{
	json_t *all;

	if (r->input_count == 1) {
		json_set_input(record, "input", r->inputs[0]);
		return;
	}
	all = json_array();
	for (size_t i = 0; i < r->input_count; i++) {
		json_t *holder = json_object(), *value;

		json_set_input(holder, "input", r->inputs[i]);
		value = json_object_get(holder, "input");
		if (value == NULL) {
			/* Not UTF-8: keep the bytes as {"base64": "..."}. */
			value =
			    json_pack("{sO}", "base64",
				      json_object_get(holder, "input_base64"));
			json_array_append_new(all, value);
		} else {
			json_array_append(all, value);
		}
		json_decref(holder);
	}
	json_object_set_new(record, "inputs", all);
}

static void
json_set_argv(json_t *record, char *const *argv)
{
	json_t *plain = json_array(), *encoded = json_array();
	bool text = true;

	for (size_t i = 0; argv != NULL && argv[i] != NULL; i++) {
		size_t len = strlen(argv[i]);
		json_t *value = json_bytes(argv[i], len);

		if (value == NULL)
			text = false;
		else
			json_array_append_new(plain, value);
		json_array_append_new(encoded, json_base64(argv[i], len));
	}
	if (argv == NULL) {
		json_object_set_new(record, "argv", json_null());
	} else if (text) {
		json_object_set_new(record, "argv", plain);
		plain = NULL;
	} else {
		json_object_set_new(record, "argv_base64", encoded);
		encoded = NULL;
	}
	json_decref(plain);
	json_decref(encoded);
}

/*
 * Append a JSON value's compact text to out; with inner, an object's
 * members only.  Reals keep all 17 digits, so an input's numbers come back
 * exactly as they were.
 */
static void
json_append(struct buf *out, const json_t *value, bool inner)
{
	char *text = json_dumps(value, JSON_COMPACT | JSON_PRESERVE_ORDER |
					   JSON_ENCODE_ANY);
	size_t len;

	if (text == NULL)
		fatal("out of memory encoding a JSON record");
	len = strlen(text);
	if (inner)
		buf_append(out, text + 1, len - 2);
	else
		buf_append(out, text, len);
	free(text);
}

struct json_stream {
	struct buf *out;
	struct utf8_state utf8;
	struct base64_state base64;
	bool text;
};

static int
json_validate_piece(void *arg, const char *data, size_t len)
{
	struct json_stream *s = arg;

	return utf8_feed(&s->utf8, data, len) ? 0 : 1;
}

static int
json_encode_piece(void *arg, const char *data, size_t len)
{
	struct json_stream *s = arg;

	if (s->text)
		utf8_json_escape(s->out, data, len);
	else
		base64_feed(&s->base64, s->out, data, len);
	return 0;
}

/* Append ,"name":"..." for a captured stream, as text or as base64. */
static void
json_append_stream(struct buf *out, const char *name, struct capture *c)
{
	struct json_stream s = {.out = out};

	utf8_init(&s.utf8);
	base64_init(&s.base64);
	s.text = c == NULL || (capture_each(c, json_validate_piece, &s) == 0 &&
			       utf8_finish(&s.utf8));
	buf_append_str(out, ",\"");
	buf_append_str(out, name);
	buf_append_str(out, s.text ? "\":\"" : "_base64\":\"");
	if (c != NULL) {
		buf_reserve(out, capture_size(c) + capture_size(c) / 2);
		(void)capture_each(c, json_encode_piece, &s);
	}
	if (!s.text)
		base64_finish(&s.base64, out);
	buf_append_char(out, '"');
}

void
json_record_encode(struct buf *out, const struct result *r,
		   struct capture *stdout_capture,
		   struct capture *stderr_capture)
{
	json_t *record = json_object(), *error;
	char signame[32];

	json_object_set_new(record, "seq", json_integer((json_int_t)r->seq));
	json_set_inputs(record, r);
	json_set_argv(record, r->argv);
	json_object_set_new(record, "host",
			    r->host ? json_string(r->host) : json_null());
	json_object_set_new(record, "slot",
			    r->slot ? json_integer(r->slot) : json_null());
	json_object_set_new(record, "attempts", json_integer(r->attempts));
	json_append(out, record, false);
	json_decref(record);
	out->len--; /* reopen the object: more members follow */

	/* Times as fixed-point text: microseconds, no binary noise. */
	if (r->start > 0) {
		char times[96];

		snprintf(times, sizeof times,
			 ",\"start\":%.6f,\"duration\":%.6f", r->start,
			 r->duration);
		buf_append_str(out, times);
	} else {
		buf_append_str(out, ",\"start\":null,\"duration\":0");
	}

	record = json_object();
	json_object_set_new(record, "status",
			    json_string(json_status_names[r->status]));
	json_object_set_new(record, "exit",
			    r->exit_code >= 0 ? json_integer(r->exit_code)
					      : json_null());
	if (r->signal > 0) {
		signal_name(r->signal, signame, sizeof signame);
		json_object_set_new(record, "signal", json_string(signame));
	} else {
		json_object_set_new(record, "signal", json_null());
	}
	buf_append_char(out, ',');
	json_append(out, record, true);
	json_decref(record);

	json_append_stream(out, "stdout", stdout_capture);
	json_append_stream(out, "stderr", stderr_capture);

	buf_append_str(out, ",\"error\":");
	if (r->error == ERROR_NONE) {
		buf_append_str(out, "null");
	} else {
		error = json_object();
		json_object_set_new(error, "kind",
				    json_string(json_error_names[r->error]));
		json_object_set_new(
		    error, "message",
		    json_bytes(r->message ? r->message : "",
			       r->message ? strlen(r->message) : 0));
		if (json_object_get(error, "message") == NULL)
			json_object_set_new(error, "message",
					    json_string("(not UTF-8)"));
		if (r->line > 0)
			json_object_set_new(error, "line",
					    json_integer((json_int_t)r->line));
		if (r->column > 0)
			json_object_set_new(
			    error, "column",
			    json_integer((json_int_t)r->column));
		if (r->error == ERROR_OUTPUT_LIMIT)
			json_object_set_new(
			    error, "size",
			    json_integer((json_int_t)r->output_size));
		json_append(out, error, false);
		json_decref(error);
	}
	buf_append(out, "}\n", 2);
}
