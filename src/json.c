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
 * Numbers keep the text they were written with (0.1, 1e2, -0, 2.50, 1e999,
 * integers of any size): jansson would make doubles or 64-bit integers of
 * them.  A scan takes each number's text out of the line before jansson
 * parses it, and the tree's numbers are indexes into those texts; the
 * compact text of a value (for {}, {name}, --stdin, --persist and the
 * record's input) is written here from the tree and those texts.
 *
 * A record is encoded in memory and written at once by the output.  It is
 * written here directly, not built as a jansson tree and dumped: a record
 * per task made that the cost of --json (snprintf for every number).  A -J
 * input goes in as its compact text, every number as written.  The task's
 * stdout and stderr can be any size and may sit in a spill file, so they
 * are validated and escaped (or base64-encoded when they are not UTF-8)
 * piece by piece by utf8.c and base64.c, straight into the record's buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cpmap.h"

#define JSON_MAX_RECORD (8u * 1024 * 1024) /* bytes in one -J line */

/* Where one number's text sits in the digits of its value. */
struct json_span {
	size_t at, len;
};

/*
 * A -J input's value (the input's json): jansson's tree, in which every
 * number is an integer whose value is the index of its text in digits.
 */
struct json_value {
	json_t *root;
	char *digits;		 /* every number's text, one after another */
	struct json_span *spans; /* by index, in the order of the text */
	size_t count;
	size_t digits_len, digits_cap, spans_cap;
};

/* The length of the JSON number at p (RFC 8259's grammar), or 0. */
static size_t
json_number_length(const char *p, const char *end)
{
	const char *q = p;

	if (q < end && *q == '-')
		q++;
	if (q == end || *q < '0' || *q > '9')
		return 0;
	if (*q++ != '0')
		while (q < end && *q >= '0' && *q <= '9')
			q++;
	if (q < end && *q == '.') {
		if (++q == end || *q < '0' || *q > '9')
			return 0;
		while (q < end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < end && (*q == 'e' || *q == 'E')) {
		if (++q < end && (*q == '+' || *q == '-'))
			q++;
		if (q == end || *q < '0' || *q > '9')
			return 0;
		while (q < end && *q >= '0' && *q <= '9')
			q++;
	}
	return (size_t)(q - p);
}

/* Does c end a token (a delimiter or white space after a value)? */
static bool
json_ends_token(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' ||
	       c == ']' || c == '}';
}

/* Does a new token start after c (structure or white space)? */
static bool
json_starts_token(char c)
{
	return json_ends_token(c) || c == '[' || c == '{' || c == ':';
}

/* Keep a number's text in v, as the next index. */
static void
json_keep_number(struct json_value *v, const char *text, size_t len)
{
	if (v->count == v->spans_cap) {
		v->spans_cap = v->spans_cap ? v->spans_cap * 2 : 8;
		v->spans =
		    xreallocarray(v->spans, v->spans_cap, sizeof *v->spans);
	}
	if (v->digits_len + len > v->digits_cap) {
		while (v->digits_len + len > v->digits_cap)
			v->digits_cap = v->digits_cap ? v->digits_cap * 2 : 64;
		v->digits = xrealloc(v->digits, v->digits_cap);
	}
	memcpy(v->digits + v->digits_len, text, len);
	v->spans[v->count].at = v->digits_len;
	v->spans[v->count].len = len;
	v->digits_len += len;
	v->count++;
}

/*
 * Take every number out of a line: keep its text in v and overwrite it
 * with spaces and a 0, which jansson reads as a number of the same length.
 *
 * jansson turns a number into a double or a 64-bit integer, so it would
 * print 0.1 as 0.10000000000000001, 1e2 as 100.0, -0 as 0, and reject
 * 1e999 and integers of 20 digits, all valid JSON.  Only whole number
 * tokens are replaced (a valid number between a token boundary and a
 * delimiter), so jansson sees the same tokens at the same columns and
 * accepts exactly the lines it would have, overflowing numbers aside.
 */
static void
json_take_numbers(char *line, size_t len, struct json_value *v)
{
	const char *end = line + len;
	char *p = line;
	bool boundary = true; /* may a token start here? */

	while (p < end) {
		size_t n;

		if (*p == '"') {
			/* Skip the string; an escape hides the next byte. */
			for (p++; p < end && *p != '"'; p++)
				if (*p == '\\' && p + 1 < end)
					p++;
			p += p < end;
			boundary = false;
			continue;
		}
		if (boundary && (*p == '-' || (*p >= '0' && *p <= '9')) &&
		    (n = json_number_length(p, end)) > 0 &&
		    (p + n == end || json_ends_token(p[n]))) {
			/* The 0 ends where the number did: columns match. */
			json_keep_number(v, p, n);
			memset(p, ' ', n - 1);
			p[n - 1] = '0';
			p += n;
			boundary = false;
			continue;
		}
		boundary = json_starts_token(*p++);
	}
}

/* Number the numbers of the tree in the order of the text. */
static void
json_index_numbers(json_t *value, json_int_t *next)
{
	const char *key;
	json_t *member;
	size_t i;

	switch (json_typeof(value)) {
	case JSON_OBJECT:
		/* Insertion order, which is the text's (no duplicate keys). */
		json_object_foreach(value, key, member)
		    json_index_numbers(member, next);
		break;
	case JSON_ARRAY:
		json_array_foreach(value, i, member)
		    json_index_numbers(member, next);
		break;
	case JSON_INTEGER:
	case JSON_REAL:
		if (!json_is_integer(value))
			abort(); /* every number was replaced by a 0 */
		json_integer_set(value, (*next)++);
		break;
	default:
		break;
	}
}

/* Append the compact JSON text of a value, its numbers as written. */
static void
json_put_value(struct buf *out, const struct json_value *v, json_t *value)
{
	const char *key;
	json_t *member;
	size_t i;
	char c = '{';

	switch (json_typeof(value)) {
	case JSON_OBJECT:
		json_object_foreach(value, key, member)
		{
			buf_append_char(out, c);
			buf_append_char(out, '"');
			utf8_json_escape(out, key, strlen(key));
			buf_append(out, "\":", 2);
			json_put_value(out, v, member);
			c = ',';
		}
		if (c == '{')
			buf_append_char(out, '{');
		buf_append_char(out, '}');
		break;
	case JSON_ARRAY:
		c = '[';
		json_array_foreach(value, i, member)
		{
			buf_append_char(out, c);
			json_put_value(out, v, member);
			c = ',';
		}
		if (c == '[')
			buf_append_char(out, '[');
		buf_append_char(out, ']');
		break;
	case JSON_STRING:
		buf_append_char(out, '"');
		utf8_json_escape(out, json_string_value(value),
				 json_string_length(value));
		buf_append_char(out, '"');
		break;
	case JSON_INTEGER: {
		const struct json_span *s =
		    &v->spans[json_integer_value(value)];

		buf_append(out, v->digits + s->at, s->len);
		break;
	}
	case JSON_TRUE:
		buf_append(out, "true", 4);
		break;
	case JSON_FALSE:
		buf_append(out, "false", 5);
		break;
	default:
		buf_append(out, "null", 4);
		break;
	}
}

/* The text a value stands for: a string's value, else its compact JSON. */
static char *
json_value_text(const struct json_value *v, json_t *value, size_t *len)
{
	struct buf text = {0};

	if (json_is_string(value)) {
		*len = json_string_length(value);
		return xmemdup(json_string_value(value), *len + 1);
	}
	json_put_value(&text, v, value);
	return buf_steal(&text, len);
}

/* Give an array's elements to the input as its columns. */
static void
json_array_columns(struct input *in, const struct json_value *v)
{
	size_t count = json_array_size(v->root);

	in->columns = xcalloc(count ? count : 1, sizeof *in->columns);
	in->column_lens = xcalloc(count ? count : 1, sizeof *in->column_lens);
	for (size_t i = 0; i < count; i++)
		in->columns[i] = json_value_text(v, json_array_get(v->root, i),
						 &in->column_lens[i]);
	in->column_count = count;
	in->owns_columns = true;
	in->empty_columns = count == 0;
}

/* The input of a line that is not a JSON value, and why. */
static struct input *
json_bad_input(const char *line, size_t len, uint64_t number,
	       const json_error_t *error)
{
	struct input *in = input_create(line, len, NULL, number);

	in->error_line = number;
	in->error_column = (uint64_t)(error->column > 0 ? error->column : 0);
	in->error =
	    xasprintf("line %llu, column %d: %s", (unsigned long long)number,
		      error->column, error->text);
	return in;
}

struct input *
json_input_create(const char *line, size_t len, uint64_t number)
{
	json_error_t error;
	struct json_value *v;
	struct input *in;
	char *copy, *text;
	const char *nul;
	size_t text_len;
	json_int_t next = 0;
	json_t *root;

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
	if ((nul = memchr(line, '\0', len)) != NULL) {
		/* jansson skips a NUL after a number: not JSON all the same. */
		in = input_create(line, len, NULL, number);
		in->error_line = number;
		in->error_column = (uint64_t)(nul - line) + 1;
		in->error = xasprintf("line %llu, column %llu: a NUL byte is "
				      "not JSON",
				      (unsigned long long)number,
				      (unsigned long long)in->error_column);
		return in;
	}
	v = xcalloc(1, sizeof *v);
	copy = xmemdup(line, len);
	json_take_numbers(copy, len, v);
	root = json_loadb(copy, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
			  &error);
	free(copy);
	if (root == NULL) {
		/*
		 * jansson's own words on the line as it was written (a
		 * message quotes the token "near" the error), unless it
		 * stops earlier, at a number too big for it: up to the
		 * first error, both parses see the same tokens.
		 */
		json_error_t original;
		json_t *again = json_loadb(
		    line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
		    &original);
		bool same = again == NULL && json_error_code(&original) !=
						 json_error_numeric_overflow;

		json_decref(again);
		free(v->digits);
		free(v->spans);
		free(v);
		return json_bad_input(line, len, number,
				      same ? &original : &error);
	}
	v->root = root;
	json_index_numbers(root, &next);
	if ((size_t)next != v->count)
		abort(); /* a number taken from the text is not in the tree */
	text = json_value_text(v, root, &text_len);
	in = input_create(text, text_len, NULL, number);
	free(text);
	in->json = v;
	/* A string or number is like a line; only structures are strict. */
	in->strict = json_is_array(root) || json_is_object(root);
	if (json_is_array(root))
		json_array_columns(in, v);
	return in;
}

const char *
json_input_field(struct input *in, const char *path, size_t *len, char **cause)
{
	const struct json_value *v = in->json;
	json_t *value = v->root;
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
	in->field_text = json_value_text(v, value, len);
	return in->field_text;
}

char *
json_input_compact(const struct input *in, size_t *len)
{
	const struct json_value *v = in->json;
	struct buf text = {0};

	json_put_value(&text, v, v->root);
	return buf_steal(&text, len);
}

/* Is a -J input a JSON string (then its text is the string's value)? */
static bool
json_input_is_string(const struct input *in)
{
	const struct json_value *v = in->json;

	return v != NULL && json_is_string(v->root);
}

void
json_release(void *json)
{
	struct json_value *v = json;

	json_decref(v->root);
	free(v->digits);
	free(v->spans);
	free(v);
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
    [ERROR_FILE] = "file",
};

/* Append n in decimal (no printf: records are written per task). */
static void
json_put_uint(struct buf *out, uint64_t n)
{
	char digits[24];
	size_t i = sizeof digits;

	do
		digits[--i] = (char)('0' + n % 10);
	while ((n /= 10) > 0);
	buf_append(out, digits + i, sizeof digits - i);
}

/* Append seconds as fixed-point text to the microsecond: 12.000345. */
static void
json_put_seconds(struct buf *out, double seconds)
{
	uint64_t us = (uint64_t)(seconds * 1e6 + 0.5), frac = us % 1000000;
	char digits[7];

	json_put_uint(out, us / 1000000);
	for (int i = 5; i >= 0; i--, frac /= 10)
		digits[i] = (char)('0' + frac % 10);
	digits[6] = '.';
	buf_append_char(out, digits[6]);
	buf_append(out, digits, 6);
}

/* Append ,"key": (or {"key": for the first member). */
static void
json_put_key(struct buf *out, const char *key, bool first)
{
	buf_append_str(out, first ? "{\"" : ",\"");
	buf_append_str(out, key);
	buf_append(out, "\":", 2);
}

/* Append valid UTF-8 as a JSON string. */
static void
json_put_string(struct buf *out, const char *s, size_t len)
{
	buf_append_char(out, '"');
	utf8_json_escape(out, s, len);
	buf_append_char(out, '"');
}

/*
 * Append text for a person as a JSON string, whatever its bytes: a byte
 * that is not part of a UTF-8 character is written as the four characters
 * \xHH (a message that quotes bad input stays one readable string).
 */
static void
json_put_lossy(struct buf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";

	buf_append_char(out, '"');
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		size_t n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;

		if (n <= len - i && utf8_valid(s + i, n)) {
			utf8_json_escape(out, s + i, n);
			i += n;
			continue;
		}
		char esc[6] = {'\\', '\\', 'x', hex[c >> 4], hex[c & 15]};

		buf_append(out, esc, 5);
		i++;
	}
	buf_append_char(out, '"');
}

static void
json_put_base64(struct buf *out, const char *data, size_t len)
{
	struct base64_state state;

	buf_append_char(out, '"');
	base64_init(&state);
	base64_feed(&state, out, data, len);
	base64_finish(&state, out);
	buf_append_char(out, '"');
}

/*
 * Append an input's value, if it can be one: its JSON (-J: the compact
 * text it was read as, every digit kept), or its text as a string.  False
 * when its text is not UTF-8, for the caller to write base64 instead.
 */
static bool
json_put_input(struct buf *out, const struct input *in)
{
	if (in->block != NULL && in->block->stream != NULL) {
		/* --round-robin: what went into the task's stdin. */
		char text[96];

		snprintf(text, sizeof text, "{\"blocks\":%llu,\"bytes\":%llu}",
			 (unsigned long long)in->block->blocks,
			 (unsigned long long)in->block->length);
		buf_append_str(out, text);
		return true;
	}
	if (in->block != NULL) {
		/* --pipe: where the block was, not its bytes. */
		char text[96];

		snprintf(text, sizeof text,
			 "{\"block\":%llu,\"offset\":%llu,\"length\":%llu}",
			 (unsigned long long)in->block->number,
			 (unsigned long long)in->block->offset,
			 (unsigned long long)in->block->length);
		buf_append_str(out, text);
		return true;
	}
	if (in->json != NULL && !json_input_is_string(in)) {
		buf_append(out, in->text, in->len);
		return true;
	}
	if (!utf8_valid(in->text, in->len))
		return false;
	json_put_string(out, in->text, in->len);
	return true;
}

static void
json_put_inputs(struct buf *out, const struct result *r)
{
	const struct input *in = r->inputs[0];

	if (r->input_count == 1) {
		json_put_key(out, "input", false);
		if (!json_put_input(out, in)) {
			out->len -= strlen("\"input\":");
			buf_append_str(out, "\"input_base64\":");
			json_put_base64(out, in->text, in->len);
		}
		return;
	}
	json_put_key(out, "inputs", false);
	buf_append_char(out, '[');
	for (size_t i = 0; i < r->input_count; i++) {
		in = r->inputs[i];
		if (i > 0)
			buf_append_char(out, ',');
		if (!json_put_input(out, in)) {
			/* Not UTF-8: keep the bytes as {"base64": "..."}. */
			buf_append_str(out, "{\"base64\":");
			json_put_base64(out, in->text, in->len);
			buf_append_char(out, '}');
		}
	}
	buf_append_char(out, ']');
}

static void
json_put_argv(struct buf *out, char *const *argv)
{
	bool text = true;

	for (size_t i = 0; argv != NULL && argv[i] != NULL && text; i++)
		text = utf8_valid(argv[i], strlen(argv[i]));
	json_put_key(out, text ? "argv" : "argv_base64", false);
	if (argv == NULL) {
		buf_append_str(out, "null");
		return;
	}
	buf_append_char(out, '[');
	for (size_t i = 0; argv[i] != NULL; i++) {
		if (i > 0)
			buf_append_char(out, ',');
		if (text)
			json_put_string(out, argv[i], strlen(argv[i]));
		else
			json_put_base64(out, argv[i], strlen(argv[i]));
	}
	buf_append_char(out, ']');
}

/*
 * A record on its way out: bytes gather in out and go to the sink in
 * pieces of about JSON_PIECE bytes, so a record of any size needs no more
 * memory than that.
 */
struct json_writer {
	struct buf out;
	json_sink_cb sink;
	void *arg;
	int error; /* the sink's first error: write nothing more */
};

#define JSON_PIECE ((size_t)64 << 10) /* bytes handed to the sink at once */
#define JSON_BITE ((size_t)8 << 10)   /* bytes of output escaped at once */

static void
json_flush(struct json_writer *w)
{
	if (w->out.len > 0 && w->error == 0)
		w->error = w->sink(w->arg, w->out.data, w->out.len);
	w->out.len = 0;
}

struct json_stream {
	struct json_writer *w;
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

/* Encode a piece in bites, so that escaping (up to 6 bytes for one)
 * never piles up more than a piece's worth before it goes. */
static int
json_encode_piece(void *arg, const char *data, size_t len)
{
	struct json_stream *s = arg;
	struct json_writer *w = s->w;

	while (len > 0 && w->error == 0) {
		size_t n = len < JSON_BITE ? len : JSON_BITE;

		if (s->text)
			utf8_json_escape(&w->out, data, n);
		else
			base64_feed(&s->base64, &w->out, data, n);
		if (w->out.len >= JSON_PIECE)
			json_flush(w);
		data += n;
		len -= n;
	}
	return w->error;
}

/* Is a capture's text UTF-8?  Or -errno if it cannot be read back. */
static int
json_is_text(struct capture *c)
{
	struct json_stream s = {0};
	int rc;

	if (c == NULL)
		return 1;
	utf8_init(&s.utf8);
	rc = capture_each(c, json_validate_piece, &s);
	if (rc < 0)
		return rc;
	return rc == 0 && utf8_finish(&s.utf8);
}

/*
 * Append ,"name":"..." for a captured stream, as text or as base64.  If
 * its spill file fails to read back midway, the string ends there, so the
 * record stays one valid line; the caller learns of it all the same.
 */
static int
json_append_stream(struct json_writer *w, const char *name, struct capture *c,
		   bool text)
{
	struct json_stream s = {.w = w, .text = text};
	int rc = 0;

	base64_init(&s.base64);
	buf_append_str(&w->out, ",\"");
	buf_append_str(&w->out, name);
	buf_append_str(&w->out, text ? "\":\"" : "_base64\":\"");
	if (c != NULL)
		rc = capture_each(c, json_encode_piece, &s);
	if (!text)
		base64_finish(&s.base64, &w->out);
	buf_append_char(&w->out, '"');
	return rc;
}

/* Append every member from "seq" to "signal". */
static void
json_put_head(struct buf *out, const struct result *r)
{
	char text[96];

	json_put_key(out, "seq", true);
	json_put_uint(out, r->seq);
	json_put_inputs(out, r);
	json_put_argv(out, r->argv);
	json_put_key(out, "host", false);
	if (r->host != NULL)
		json_put_string(out, r->host, strlen(r->host));
	else
		buf_append_str(out, "null");
	json_put_key(out, "slot", false);
	if (r->slot > 0)
		json_put_uint(out, r->slot);
	else
		buf_append_str(out, "null");
	json_put_key(out, "attempts", false);
	json_put_uint(out, r->attempts);
	/* Times as fixed-point text: microseconds, no binary noise. */
	json_put_key(out, "start", false);
	if (r->start > 0)
		json_put_seconds(out, r->start);
	else
		buf_append_str(out, "null");
	json_put_key(out, "duration", false);
	json_put_seconds(out, r->start > 0 ? r->duration : 0);
	json_put_key(out, "status", false);
	json_put_string(out, json_status_names[r->status],
			strlen(json_status_names[r->status]));
	json_put_key(out, "exit", false);
	if (r->exit_code >= 0)
		json_put_uint(out, (uint64_t)r->exit_code);
	else
		buf_append_str(out, "null");
	json_put_key(out, "signal", false);
	if (r->signal > 0) {
		signal_name(r->signal, text, sizeof text);
		json_put_string(out, text, strlen(text));
	} else {
		buf_append_str(out, "null");
	}
}

/* Append ,"error":... and the record's end. */
static void
json_put_tail(struct buf *out, const struct result *r)
{
	json_put_key(out, "error", false);
	if (r->error == ERROR_NONE) {
		buf_append_str(out, "null");
	} else {
		const char *message = r->message ? r->message : "";
		size_t len = strlen(message);

		json_put_key(out, "kind", true);
		json_put_string(out, json_error_names[r->error],
				strlen(json_error_names[r->error]));
		json_put_key(out, "message", false);
		json_put_lossy(out, message, len);
		if (r->line > 0) {
			json_put_key(out, "line", false);
			json_put_uint(out, r->line);
		}
		if (r->column > 0) {
			json_put_key(out, "column", false);
			json_put_uint(out, r->column);
		}
		if (r->error == ERROR_OUTPUT_LIMIT) {
			json_put_key(out, "size", false);
			json_put_uint(out, r->output_size);
		}
		buf_append_char(out, '}');
	}
	buf_append(out, "}\n", 2);
}

int
json_record_write(const struct result *r, struct capture *stdout_capture,
		  struct capture *stderr_capture, json_sink_cb sink, void *arg)
{
	struct json_writer w = {.sink = sink, .arg = arg};
	int out_text, err_text, rc, rc2;

	/*
	 * Read both captures through once first, to choose text or base64:
	 * a spill file that cannot be read back fails the record before any
	 * of it is written.
	 */
	if ((out_text = json_is_text(stdout_capture)) < 0)
		return out_text;
	if ((err_text = json_is_text(stderr_capture)) < 0)
		return err_text;
	json_put_head(&w.out, r);
	rc = json_append_stream(&w, "stdout", stdout_capture, out_text);
	rc2 = json_append_stream(&w, "stderr", stderr_capture, err_text);
	json_put_tail(&w.out, r);
	json_flush(&w);
	buf_free(&w.out);
	if (w.error != 0)
		return w.error;
	return rc != 0 ? rc : rc2;
}

static int
json_append_to_buf(void *arg, const char *data, size_t len)
{
	buf_append(arg, data, len);
	return 0;
}

void
json_record_encode(struct buf *out, const struct result *r,
		   struct capture *stdout_capture,
		   struct capture *stderr_capture)
{
	(void)json_record_write(r, stdout_capture, stderr_capture,
				json_append_to_buf, out);
}

const char *
json_version(void)
{
#if JANSSON_VERSION_HEX >= 0x020d00
	return jansson_version_str(); /* the library's, at run time */
#else
	return JANSSON_VERSION;
#endif
}
