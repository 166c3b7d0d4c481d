/*
 * fuzz_template.c - libFuzzer target for template.c.
 *
 * Input layout: byte 0 holds the options (bits 0-1 the shell choice, bit 2
 * -I present, bit 3 --colsep present, bit 4 --header, bit 5 --stdin, bit 6
 * -J: the inputs are JSON lines, bit 7 no command at all), byte
 * 1 the number of words (1..6), byte 2 the number of inputs in the chunk
 * (1..4), byte 3 the task number and slot; the rest is split on the byte
 * 0x01 into fields: the -I string, the colsep, the words, then the inputs.
 * Missing fields are empty.  Words, -I and colsep end at a NUL byte (they
 * come from a command line); inputs may hold NUL bytes.
 *
 * Every expansion is compared with a small reference expander written from
 * the documented behaviour (abort on any difference): the argv in direct
 * mode, the exact command string in shell mode, and whether it fails.  The
 * same expansion is also done twice, to catch state left behind.  With -J
 * there is no reference: the two expansions must agree, and a failure must
 * say why.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_WORDS 6
#define MAX_INPUTS 4

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_template: %s\n", what);
	abort();
}

/* ---- the reference ----------------------------------------------------- */

struct ref {
	const char *replace; /* NULL or non-empty */
	const char *colsep;  /* NULL or non-empty */
	int named;
	struct input *const *inputs;
	size_t count;
	unsigned long long seq;
	unsigned slot;
	int shell;
	int failed; /* a NUL in a value, or a --header field */
};

enum ref_kind { REF_NONE, REF_INPUT, REF_COLUMN, REF_FIELD, REF_SEQ, REF_SLOT };

struct ref_placeholder {
	enum ref_kind kind;
	char mod[3];   /* "", ".", "/", "//", "/." */
	long position; /* REF_COLUMN: 1-based, or < 0 from the end */
};

/* Is body[0..len) a placeholder?  The rules of the documentation. */
static struct ref_placeholder
ref_body(const struct ref *r, const char *body, size_t len)
{
	struct ref_placeholder p = {REF_NONE, "", 0};
	size_t sign = len > 0 && body[0] == '-', d = sign;

	if (len == 1 && body[0] == '#')
		return (struct ref_placeholder){REF_SEQ, "", 0};
	if (len == 1 && body[0] == '%')
		return (struct ref_placeholder){REF_SLOT, "", 0};
	while (d < len && body[d] >= '0' && body[d] <= '9')
		d++;
	if (d == sign)
		d = 0; /* no digit: no position, and "-" is no modifier */
	if (len - d <= 2 &&
	    (len - d == 0 || memcmp(body + d, ".", len - d) == 0 ||
	     memcmp(body + d, "/", len - d) == 0 ||
	     memcmp(body + d, "//", len - d) == 0 ||
	     memcmp(body + d, "/.", len - d) == 0)) {
		if (d == 0) {
			if (len == 0 && r->replace != NULL)
				return p; /* -I took over {} */
			p.kind = REF_INPUT;
		} else {
			long n = 0;

			if (d - sign > 9)
				return p;
			for (size_t i = sign; i < d; i++)
				n = n * 10 + (body[i] - '0');
			if (n == 0)
				return p;
			p.kind = REF_COLUMN;
			p.position = sign ? -n : n;
		}
		memcpy(p.mod, body + d, len - d);
		p.mod[len - d] = '\0';
		return p;
	}
	if (!r->named || len == 0 ||
	    !((body[0] >= 'a' && body[0] <= 'z') ||
	      (body[0] >= 'A' && body[0] <= 'Z') || body[0] == '_'))
		return p;
	for (size_t i = 0; i < len; i++)
		if (!((body[i] >= 'a' && body[i] <= 'z') ||
		      (body[i] >= 'A' && body[i] <= 'Z') ||
		      (body[i] >= '0' && body[i] <= '9') ||
		      strchr("_.-", body[i]) != NULL))
			return p;
	p.kind = REF_FIELD;
	return p;
}

/* Column n of an input, 1-based: split on the colsep afresh. */
static void
ref_column(const struct ref *r, const struct input *in, unsigned long n,
	   const char **v, size_t *len)
{
	const char *p = in->text, *end = in->text + in->len;
	size_t sep_len;

	if (r->colsep == NULL) {
		*v = n == 1 ? in->text : "";
		*len = n == 1 ? in->len : 0;
		return;
	}
	sep_len = strlen(r->colsep);
	for (unsigned long i = 1;; i++) {
		const char *hit =
		    memmem(p, (size_t)(end - p), r->colsep, sep_len);

		if (i == n) {
			*v = p;
			*len = (size_t)((hit != NULL ? hit : end) - p);
			return;
		}
		if (hit == NULL) {
			*v = "";
			*len = 0;
			return;
		}
		p = hit + sep_len;
	}
}

static size_t
ref_column_count(const struct ref *r, const struct input *in)
{
	size_t n = 1, sep_len;
	const char *p = in->text, *end = in->text + in->len, *hit;

	if (r->colsep == NULL)
		return 1;
	sep_len = strlen(r->colsep);
	while ((hit = memmem(p, (size_t)(end - p), r->colsep, sep_len)))
		n++, p = hit + sep_len;
	return n;
}

/* The path modifiers, step by step as GNU parallel and POSIX say. */
static void
ref_modify(const char *mod, const char **v, size_t *len)
{
	const char *s = *v;
	size_t n = *len;

	if (mod[0] == '/' && mod[1] != '/') { /* {/} {/.}: basename */
		for (size_t i = n; i > 0; i--)
			if (s[i - 1] == '/') {
				s += i;
				n -= i;
				break;
			}
	}
	if (strchr(mod, '.') != NULL) { /* {.} {/.}: drop the extension */
		for (size_t i = n; i > 0; i--) {
			if (s[i - 1] == '/')
				break;
			if (s[i - 1] == '.') {
				n = i - 1;
				break;
			}
		}
	}
	if (strcmp(mod, "//") == 0) { /* POSIX dirname */
		size_t i;

		for (i = 0; i < n && s[i] == '/'; i++)
			;
		if (n == 0) {
			s = ".", n = 1;
		} else if (i == n) {
			s = "/", n = 1;
		} else {
			while (s[n - 1] == '/')
				n--;
			while (n > 0 && s[n - 1] != '/')
				n--;
			if (n == 0) {
				s = ".", n = 1;
			} else {
				while (n > 0 && s[n - 1] == '/')
					n--;
				if (n == 0)
					s = "/", n = 1;
			}
		}
	}
	*v = s;
	*len = n;
}

static void
ref_put(struct ref *r, struct buf *out, const char *v, size_t len)
{
	if (memchr(v, '\0', len) != NULL)
		r->failed = 1;
	else if (r->shell)
		shquote_append(out, v, len);
	else
		buf_append(out, v, len);
}

/*
 * {N} or {-N}: the task's values are the columns of its first input, then
 * those of the next; past either end it is empty.
 */
static void
ref_position(struct ref *r, long pos, const char **v, size_t *len)
{
	size_t total = 0, index;

	for (size_t i = 0; i < r->count; i++)
		total += ref_column_count(r, r->inputs[i]);
	*v = "";
	*len = 0;
	if ((size_t)(pos > 0 ? pos : -pos) > total)
		return;
	index = pos > 0 ? (size_t)pos - 1 : total - (size_t)-pos;
	for (size_t i = 0; i < r->count; i++) {
		size_t n = ref_column_count(r, r->inputs[i]);

		if (index < n) {
			ref_column(r, r->inputs[i], index + 1, v, len);
			return;
		}
		index -= n;
	}
}

/*
 * What the word holds: 1 if {} or a field (it is repeated per input of a
 * chunk), 2 if {N}, 4 if {#} or {%}.
 */
static int
ref_mentions(const struct ref *r, const char *w)
{
	int found = 0;

	size_t rl = r->replace != NULL ? strlen(r->replace) : 0;

	while (*w != '\0') {
		const char *close;

		if (rl > 0 && strncmp(w, r->replace, rl) == 0) {
			found |= 1;
			w += rl;
			continue;
		}
		if (*w == '{' && (close = strchr(w + 1, '}')) != NULL) {
			struct ref_placeholder p =
			    ref_body(r, w + 1, (size_t)(close - w - 1));

			found |= p.kind == REF_INPUT || p.kind == REF_FIELD ? 1
				 : p.kind == REF_COLUMN			    ? 2
				 : p.kind != REF_NONE			    ? 4
									    : 0;
			if (p.kind != REF_NONE) {
				w = close + 1;
				continue;
			}
		}
		w++;
	}
	return found;
}

/* {} of one input: each column its own argument (GNU), or the text. */
static void
ref_input(struct ref *r, const struct input *in, const char *mod,
	  struct buf *out, size_t *argc)
{
	size_t cols = ref_column_count(r, in);
	const char *v;
	size_t len;

	if (cols == 1) {
		v = in->text, len = in->len;
		ref_modify(mod, &v, &len);
		ref_put(r, out, v, len);
		return;
	}
	for (size_t c = 1; c <= cols; c++) {
		if (c > 1 && r->shell) {
			buf_append_char(out, ' ');
		} else if (c > 1) {
			buf_append_char(out, '\0');
			(*argc)++;
		}
		ref_column(r, in, c, &v, &len);
		ref_modify(mod, &v, &len);
		ref_put(r, out, v, len);
	}
}

/* Expand one word for input k, or for every input (k == SIZE_MAX). */
static void
ref_word(struct ref *r, const char *w, size_t k, struct buf *out, size_t *argc)
{
	size_t rl = r->replace != NULL ? strlen(r->replace) : 0;

	while (*w != '\0') {
		struct ref_placeholder p = {REF_NONE, "", 0};
		const char *close = NULL;
		size_t skip = 1;

		if (rl > 0 && strncmp(w, r->replace, rl) == 0) {
			p.kind = REF_INPUT;
			skip = rl;
		} else if (*w == '{' && (close = strchr(w + 1, '}')) != NULL) {
			p = ref_body(r, w + 1, (size_t)(close - w - 1));
			skip = (size_t)(close - w) + 1;
		}
		if (p.kind == REF_NONE) {
			buf_append_char(out, *w++);
			continue;
		}
		w += skip;
		if (p.kind == REF_SEQ || p.kind == REF_SLOT) {
			char num[32];

			snprintf(num, sizeof num, "%llu",
				 p.kind == REF_SEQ
				     ? r->seq
				     : (unsigned long long)r->slot);
			buf_append_str(out, num);
			continue;
		}
		if (p.kind == REF_FIELD) {
			r->failed = 1; /* no header in these inputs */
			continue;
		}
		if (p.kind == REF_COLUMN) {
			const char *v;
			size_t len;

			ref_position(r, p.position, &v, &len);
			ref_modify(p.mod, &v, &len);
			ref_put(r, out, v, len);
			continue;
		}
		for (size_t i = 0; i < r->count; i++) {
			if (k != SIZE_MAX && i != k)
				continue;
			if (k == SIZE_MAX && i > 0)
				buf_append_char(out, ' ');
			ref_input(r, r->inputs[i], p.mod, out, argc);
		}
	}
}

/* Append every input, column by column (no placeholder mentions them). */
static void
ref_append(struct ref *r, struct buf *out, size_t *argc)
{
	for (size_t i = 0; i < r->count; i++) {
		size_t cols = ref_column_count(r, r->inputs[i]);

		for (size_t c = 1; c <= cols; c++) {
			const char *v;
			size_t len;

			ref_column(r, r->inputs[i], c, &v, &len);
			if (r->shell)
				buf_append_char(out, ' ');
			ref_put(r, out, v, len);
			if (!r->shell) {
				buf_append_char(out, '\0');
				(*argc)++;
			}
		}
	}
}

/* ---- the target -------------------------------------------------------- */

/* -J: expand twice; the results must agree.  No reference for JSON. */
static void
check_json(struct template *t, const struct expansion *e, bool with_input)
{
	char *cause = NULL;
	char **first = template_expand(t, e, with_input, &cause);
	char **second;

	if (first == NULL && cause == NULL)
		fail("-J: an expansion failed without a cause");
	free(cause);
	cause = NULL;
	second = template_expand(t, e, with_input, &cause);
	if ((first == NULL) != (second == NULL))
		fail("-J: the same expansion failed once only");
	free(cause);
	if (first == NULL)
		return;
	if (template_uses_shell(t) &&
	    (strcmp(first[0], "/bin/sh") != 0 || strcmp(first[1], "-c") != 0 ||
	     first[2] == NULL || first[3] != NULL))
		fail("-J: a shell argv is not /bin/sh -c COMMAND");
	for (size_t i = 0; first[i] != NULL || second[i] != NULL; i++)
		if (first[i] == NULL || second[i] == NULL ||
		    strcmp(first[i], second[i]) != 0)
			fail("-J: the same expansion differs");
	free(first);
	free(second);
}

/* Field i of the data, split on 0x01; "" past the end. */
static const char *
field(const char *rest, size_t rest_len, size_t i, size_t *len)
{
	const char *p = rest, *end = rest + rest_len;

	for (;;) {
		const char *sep = memchr(p, 0x01, (size_t)(end - p));

		if (i == 0) {
			*len = (size_t)((sep != NULL ? sep : end) - p);
			return p;
		}
		if (sep == NULL) {
			*len = 0;
			return "";
		}
		p = sep + 1;
		i--;
	}
}

/* A field as a C string: up to its first NUL. */
static char *
field_str(const char *rest, size_t rest_len, size_t *i)
{
	size_t len;
	const char *f = field(rest, rest_len, (*i)++, &len);
	const char *nul = memchr(f, '\0', len);

	return strndup(f, nul != NULL ? (size_t)(nul - f) : len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *rest = (const char *)data + 4;
	size_t rest_len, fi = 0, nwords, ninputs, argc = 0;
	char *replace = NULL, *colsep = NULL, *words[MAX_WORDS];
	struct input *inputs[MAX_INPUTS];
	enum shell_choice shell;
	int named, with_input, json, no_command, perl = 0, mentions = 0;
	struct template *t;
	char *cause = NULL;
	char **argv;
	struct buf want = {0};
	struct ref r;

	if (size < 4)
		return 0;
	rest_len = size - 4;
	shell = (enum shell_choice)((data[0] & 3) % 3);
	json = (data[0] >> 6) & 1;
	named = json || ((data[0] >> 4) & 1); /* as main.c: -J names fields */
	with_input = !((data[0] >> 5) & 1);
	no_command = (data[0] >> 7) & 1;
	nwords = no_command ? 0 : 1 + data[1] % MAX_WORDS;
	ninputs = 1 + data[2] % MAX_INPUTS;
	if (data[0] & 4)
		replace = field_str(rest, rest_len, &fi);
	if (data[0] & 8)
		colsep = field_str(rest, rest_len, &fi);
	for (size_t i = 0; i < nwords; i++)
		words[i] = field_str(rest, rest_len, &fi);
	for (size_t i = 0; i < ninputs; i++) {
		size_t len;
		const char *f = field(rest, rest_len, fi++, &len);

		inputs[i] = json ? json_input_create(f, len, i + 1)
				 : input_create(f, len, colsep, i + 1);
		if (inputs[i]->error != NULL)
			json = 2; /* a bad -J line is never expanded */
	}

	t = template_parse(words, (int)nwords, replace, shell, named, &cause);
	for (size_t i = 0; i < nwords; i++) {
		const char *open = strstr(words[i], "{=");

		perl |= open != NULL && strstr(open + 2, "=}") != NULL;
	}
	if ((replace != NULL && replace[0] == '\0') || perl ||
	    (no_command && shell == SHELL_NEVER)) {
		if (t != NULL || cause == NULL)
			fail("-I '', {= =} or --no-shell without a command "
			     "was accepted");
		free(cause);
		goto out;
	}
	if (t == NULL)
		fail("template_parse failed");

	r = (struct ref){.replace = replace,
			 .colsep = colsep != NULL && colsep[0] != '\0' ? colsep
								       : NULL,
			 .named = named,
			 .inputs = inputs,
			 .count = ninputs,
			 .seq = data[3] * 1000003ULL,
			 .slot = data[3] % 7 + 1u};
	r.shell = no_command || shell == SHELL_ALWAYS ||
		  (shell == SHELL_AUTO && nwords == 1 &&
		   strpbrk(words[0], " \t\n|&;<>()$`\\\"'*?[#~") != NULL);
	if (template_uses_shell(t) != (r.shell != 0))
		fail("template_uses_shell is wrong");
	if (json) {
		struct expansion e = {.inputs = inputs,
				      .input_count = ninputs,
				      .seq = r.seq,
				      .slot = r.slot};

		if (json == 1)
			check_json(t, &e, with_input);
		template_free(t);
		goto out;
	}

	/* The reference argv, as NUL-separated strings in want. */
	if (no_command && !with_input) {
		buf_append(&want, "/bin/sh\0-c\0exec /bin/sh -s", 27);
		argc = 3;
		mentions = 1;
	} else if (no_command) {
		/* The inputs, their columns joined by spaces, unquoted. */
		buf_append(&want, "/bin/sh\0-c\0", 11);
		for (size_t i = 0; i < ninputs; i++) {
			size_t cols = ref_column_count(&r, inputs[i]);

			for (size_t c = 1; c <= cols; c++) {
				const char *v = inputs[i]->text;
				size_t len = inputs[i]->len;

				if (cols > 1)
					ref_column(&r, inputs[i], c, &v, &len);
				if (i > 0 || c > 1)
					buf_append_char(&want, ' ');
				if (memchr(v, '\0', len) != NULL)
					r.failed = 1;
				buf_append(&want, v, len);
			}
		}
		buf_append_char(&want, '\0');
		argc = 3;
		mentions = 1;
	} else if (r.shell) {
		struct buf joined = {0};

		for (size_t i = 0; i < nwords; i++) {
			if (i > 0)
				buf_append_char(&joined, ' ');
			buf_append_str(&joined, words[i]);
		}
		mentions = ref_mentions(&r, joined.data);
		buf_append(&want, "/bin/sh\0-c\0", 11);
		ref_word(&r, joined.data, ninputs == 1 ? 0 : SIZE_MAX, &want,
			 &argc);
		if (with_input && !mentions)
			ref_append(&r, &want, &argc);
		buf_append_char(&want, '\0');
		argc = 3;
		buf_free(&joined);
	} else {
		for (size_t i = 0; i < nwords; i++)
			mentions |= ref_mentions(&r, words[i]);
		for (size_t i = 0; i < nwords; i++) {
			size_t repeat =
			    ref_mentions(&r, words[i]) & 1 ? ninputs : 1;

			for (size_t k = 0; k < repeat; k++) {
				ref_word(&r, words[i], k, &want, &argc);
				buf_append_char(&want, '\0');
				argc++;
			}
		}
		if (with_input && !mentions)
			ref_append(&r, &want, &argc);
	}
	if (template_has_input(t) != ((mentions & 3) != 0))
		fail("template_has_input is wrong");

	for (int round = 0; round < 2; round++) {
		struct expansion e = {.inputs = inputs,
				      .input_count = ninputs,
				      .seq = r.seq,
				      .slot = r.slot};
		const char *p = want.data;

		cause = NULL;
		argv = template_expand(t, &e, with_input, &cause);
		if (argv == NULL) {
			if (cause == NULL)
				fail("an expansion failed without a cause");
			if (!r.failed)
				fail("an expansion failed, the reference did "
				     "not");
			free(cause);
			continue;
		}
		if (r.failed)
			fail("an expansion succeeded, the reference failed");
		for (size_t i = 0; i < argc; i++) {
			if (argv[i] == NULL)
				fail("argv is too short");
			if (strcmp(argv[i], p) != 0)
				fail("an argument differs from the reference");
			p += strlen(p) + 1;
		}
		if (argv[argc] != NULL)
			fail("argv is too long");
		free(argv);
	}
	template_free(t);
out:
	buf_free(&want);
	for (size_t i = 0; i < nwords; i++)
		free(words[i]);
	for (size_t i = 0; i < ninputs; i++)
		input_free(inputs[i]);
	free(replace);
	free(colsep);
	return 0;
}
