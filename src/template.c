/*
 * template.c - the command, parsed once, expanded once per task.
 *
 * Parsing turns each word of the command into a list of segments: literal
 * text and placeholders ({} {.} {/} {//} {/.} {#} {%} {N} {-N} {N.} ...
 * {name}).  Expansion walks the segments with a task's inputs and builds a
 * NULL-terminated argv in a single allocation.
 *
 * Direct mode (the default) passes each expanded word to execvp as it is: a
 * value is never interpreted, whatever it holds.  Shell mode builds one
 * command string for /bin/sh -c in which every substituted value is quoted
 * as one literal word.  With several inputs per task (--chunk), a word that
 * mentions {} or a field is repeated once per input ("context replace", as
 * GNU parallel -X); in shell mode the quoted values are joined by spaces.
 *
 * The rest follows GNU parallel, so that its command lines carry over.  An
 * input split into columns (several ::: groups, --colsep) makes {} one
 * argument per column, the word's text before {} going to the first and the
 * text after it to the last.  {N} and {-N} count the task's values: the
 * columns of its first input, then those of the next (so with -n and plain
 * lines, {k} is the k-th input of the chunk).  Any placeholder, {#} and {%}
 * included, stops the input being appended.  With no command at all, each
 * input is a command line for /bin/sh.
 *
 * Pure: no I/O and no libuv, so it is unit-tested and fuzzed directly.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cpmap.h"

enum segment_kind {
	SEGMENT_LITERAL,
	SEGMENT_INPUT,	/* {} or -I STR, with a modifier */
	SEGMENT_COLUMN, /* {N} or {-N}, with a modifier */
	SEGMENT_FIELD,	/* {name}: a --header column */
	SEGMENT_SEQ,	/* {#} */
	SEGMENT_SLOT,	/* {%} */
};

enum modifier {
	MODIFIER_NONE,
	MODIFIER_NO_EXTENSION,		/* {.} */
	MODIFIER_BASENAME,		/* {/} */
	MODIFIER_DIRNAME,		/* {//} */
	MODIFIER_BASENAME_NO_EXTENSION, /* {/.} */
};

struct segment {
	enum segment_kind kind;
	enum modifier modifier;
	const char *text; /* literal bytes, or the field name (NUL-ended) */
	size_t len;
	long position; /* SEGMENT_COLUMN: 1-based, or < 0 from the end */
};

struct word {
	struct segment *segments;
	size_t count;
	bool per_input; /* mentions {} or a field: repeated once per input */
};

struct template
{
	struct word *words;
	size_t count;
	bool shell;
	const char *sh;	      /* the shell: /bin/sh, or $CPMAP_SHELL */
	bool function;	      /* an exported bash function: bash -c, every
				 word quoted */
	bool no_command;      /* each input is a command line for the shell */
	bool has_input;	      /* some placeholder stands for input values */
	bool has_placeholder; /* any placeholder: the input is not appended */
	bool uses_slot;
	char *joined; /* shell mode: the command words joined by spaces */
	char **names; /* field names, owned */
	size_t name_count;
	struct buf scratch; /* reused by every expansion */
};

/* Parse the body between braces; return false if it is no placeholder. */
static bool
template_parse_body(struct template *t, const char *body, size_t len,
		    bool named_fields, bool input_braces, struct segment *seg)
{
	static const struct {
		const char *text;
		enum modifier modifier;
	} modifiers[] = {
	    {"", MODIFIER_NONE},
	    {".", MODIFIER_NO_EXTENSION},
	    {"/", MODIFIER_BASENAME},
	    {"//", MODIFIER_DIRNAME},
	    {"/.", MODIFIER_BASENAME_NO_EXTENSION},
	};
	size_t sign = len > 0 && body[0] == '-' ? 1 : 0, digits = sign;

	memset(seg, 0, sizeof *seg);
	if (len == 1 && body[0] == '#') {
		seg->kind = SEGMENT_SEQ;
		return true;
	}
	if (len == 1 && body[0] == '%') {
		seg->kind = SEGMENT_SLOT;
		return true;
	}
	while (digits < len && isdigit((unsigned char)body[digits]))
		digits++;
	if (sign && digits == sign)
		digits = 0; /* a lone '-' is no position */
	for (size_t i = 0; i < sizeof modifiers / sizeof modifiers[0]; i++) {
		if (strlen(modifiers[i].text) != len - digits ||
		    memcmp(modifiers[i].text, body + digits, len - digits) != 0)
			continue;
		if (digits == 0) {
			if (!input_braces && i == 0)
				return false; /* -I STR took over {} */
			seg->kind = SEGMENT_INPUT;
		} else {
			seg->kind = SEGMENT_COLUMN;
			seg->position = strtol(body, NULL, 10);
			if (digits - sign > 9 || seg->position == 0)
				return false;
		}
		seg->modifier = modifiers[i].modifier;
		return true;
	}
	if (!named_fields || len == 0 ||
	    !(isalpha((unsigned char)body[0]) || body[0] == '_'))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)body[i];

		if (!isalnum(c) && c != '_' && c != '.' && c != '-')
			return false;
	}
	t->names = xreallocarray(t->names, t->name_count + 1, sizeof *t->names);
	t->names[t->name_count] = xmalloc(len + 1);
	memcpy(t->names[t->name_count], body, len);
	t->names[t->name_count][len] = '\0';
	seg->kind = SEGMENT_FIELD;
	seg->text = t->names[t->name_count++];
	seg->len = len;
	return true;
}

static void
template_add_segment(struct template *t, struct word *w,
		     const struct segment *seg)
{
	if (seg->kind == SEGMENT_LITERAL && seg->len == 0)
		return;
	w->segments =
	    xreallocarray(w->segments, w->count + 1, sizeof *w->segments);
	w->segments[w->count++] = *seg;
	if (seg->kind == SEGMENT_LITERAL)
		return;
	/* Every placeholder counts, as in GNU parallel: rm lock{#} ::: a
	 * must remove lock1, never a. */
	t->has_placeholder = true;
	if (seg->kind == SEGMENT_INPUT || seg->kind == SEGMENT_FIELD)
		w->per_input = true;
	if (seg->kind == SEGMENT_COLUMN)
		t->has_input = true;
	if (seg->kind == SEGMENT_SLOT)
		t->uses_slot = true;
}

/*
 * Refuse GNU parallel's {= perl expression =}: taken as literal text, it
 * would run a different command than the one the user wrote.
 */
static bool
template_check_perl(const char *s, char **cause)
{
	const char *open = strstr(s, "{="), *close;

	if (open == NULL || (close = strstr(open + 2, "=}")) == NULL)
		return true;
	*cause = xasprintf("%.*s: perl expression placeholders {= ... =} "
			   "are not supported (use a shell command or a "
			   "script)",
			   (int)(close + 2 - open), open);
	return false;
}

/* Split one word into literal text and placeholders. */
static void
template_parse_word(struct template *t, struct word *w, const char *s,
		    const char *replace, bool named_fields)
{
	size_t replace_len = replace != NULL ? strlen(replace) : 0;
	const char *literal = s;
	struct segment seg;

	memset(w, 0, sizeof *w);
	while (*s != '\0') {
		size_t skip = 0;

		if (replace_len > 0 && strncmp(s, replace, replace_len) == 0) {
			memset(&seg, 0, sizeof seg);
			seg.kind = SEGMENT_INPUT;
			skip = replace_len;
		} else if (*s == '{') {
			const char *close = strchr(s + 1, '}');

			if (close != NULL &&
			    template_parse_body(
				t, s + 1, (size_t)(close - s - 1), named_fields,
				replace == NULL, &seg))
				skip = (size_t)(close - s) + 1;
		}
		if (skip == 0) {
			s++;
			continue;
		}
		struct segment lit = {.kind = SEGMENT_LITERAL,
				      .text = literal,
				      .len = (size_t)(s - literal)};
		template_add_segment(t, w, &lit);
		template_add_segment(t, w, &seg);
		s += skip;
		literal = s;
	}
	struct segment tail = {.kind = SEGMENT_LITERAL,
			       .text = literal,
			       .len = (size_t)(s - literal)};
	template_add_segment(t, w, &tail);
	if (w->per_input)
		t->has_input = true;
}

struct template *
template_parse(char *const *words, int count, const char *replace,
	       enum shell_choice shell, bool named_fields, char **cause)
{
	struct template *t;

	if (count < 1 && shell == SHELL_NEVER) {
		*cause = xstrdup("--no-shell needs a command (without one, "
				 "each input is a command line for /bin/sh)");
		return NULL;
	}
	if (replace != NULL && replace[0] == '\0') {
		*cause = xstrdup("-I needs a non-empty replacement string");
		return NULL;
	}
	for (int i = 0; i < count; i++)
		if (!template_check_perl(words[i], cause))
			return NULL;
	t = xcalloc(1, sizeof *t);
	t->sh = "/bin/sh";
	if (count < 1) {
		/* parallel < jobs: the inputs are the commands. */
		t->shell = t->no_command = t->has_input = true;
		t->has_placeholder = true;
		return t;
	}
	t->shell =
	    shell == SHELL_ALWAYS || (shell == SHELL_AUTO && count == 1 &&
				      shquote_needs_shell(words[0]));
	if (t->shell) {
		/* The shell sees the words joined, as GNU parallel does. */
		struct buf joined = {0};

		for (int i = 0; i < count; i++) {
			if (i > 0)
				buf_append_char(&joined, ' ');
			buf_append_str(&joined, words[i]);
		}
		t->joined = buf_steal(&joined, NULL);
		t->words = xcalloc(1, sizeof *t->words);
		t->count = 1;
		template_parse_word(t, &t->words[0], t->joined, replace,
				    named_fields);
		return t;
	}
	t->words = xcalloc((size_t)count, sizeof *t->words);
	t->count = (size_t)count;
	for (int i = 0; i < count; i++)
		template_parse_word(t, &t->words[i], words[i], replace,
				    named_fields);
	return t;
}

void
template_set_shell(struct template *t, const char *path)
{
	t->sh = path;
}

void
template_use_bash(struct template *t)
{
	if (!t->shell)
		t->function = true;
}

bool
template_uses_shell(const struct template *t)
{
	return t->shell || t->function;
}

bool
template_has_input(const struct template *t)
{
	return t->has_input;
}

bool
template_uses_slot(const struct template *t)
{
	return t->uses_slot;
}

/* Apply a path modifier, as GNU parallel defines it, to value[0..*len). */
static const char *
template_modify(enum modifier m, const char *value, size_t *len)
{
	size_t n = *len;

	if (m == MODIFIER_BASENAME || m == MODIFIER_BASENAME_NO_EXTENSION) {
		/* Everything after the last slash. */
		const char *slash = memrchr(value, '/', n);

		if (slash != NULL) {
			n -= (size_t)(slash + 1 - value);
			value = slash + 1;
		}
	}
	if (m == MODIFIER_NO_EXTENSION || m == MODIFIER_BASENAME_NO_EXTENSION) {
		/* From the last dot on, unless a slash follows it. */
		const char *dot = memrchr(value, '.', n);

		if (dot != NULL &&
		    memchr(dot, '/', n - (size_t)(dot - value)) == NULL)
			n = (size_t)(dot - value);
	}
	if (m == MODIFIER_DIRNAME) {
		/* POSIX dirname(1): "a/b/" -> "a", "b" -> ".", "/a" -> "/". */
		while (n > 1 && value[n - 1] == '/')
			n--;
		const char *slash = memrchr(value, '/', n);

		if (slash == NULL) {
			value = ".";
			n = 1;
		} else {
			n = (size_t)(slash - value);
			while (n > 1 && value[n - 1] == '/')
				n--;
			if (n == 0)
				n = 1; /* the root itself */
		}
	}
	*len = n;
	return value;
}

/* How many values an input holds: its columns, or its whole text. */
static size_t
template_value_count(const struct input *in)
{
	return in->empty_columns ? 0 : in->column_count ? in->column_count : 1;
}

/*
 * Does {} stand for the input's columns, one argument each?  So it does in
 * GNU parallel for several ::: groups and for --colsep; a -J record keeps
 * {} as its compact text.
 */
static bool
template_splits(const struct input *in)
{
	return in->json == NULL && in->column_count > 1;
}

/* Refuse a value execvp or the shell cannot be given. */
static bool
template_check_nul(const char *value, size_t len, const struct input *in,
		   char **cause)
{
	if (memchr(value, '\0', len) == NULL)
		return true;
	*cause = xasprintf("input %llu holds a NUL byte, which cannot be "
			   "passed in an argument (use -0 or --stdin)",
			   (unsigned long long)in->number);
	return false;
}

/* Append value as the shell or execvp must see it; false if it can't be. */
static bool
template_put(const struct template *t, struct buf *out, const char *value,
	     size_t len, const struct input *in, char **cause)
{
	if (!template_check_nul(value, len, in, cause))
		return false;
	if (t->shell)
		shquote_append(out, value, len);
	else
		buf_append(out, value, len);
	return true;
}

/* End one argument and begin the next: a space for the shell. */
static void
template_split(const struct template *t, struct buf *out, size_t *argc)
{
	if (t->shell) {
		buf_append_char(out, ' ');
	} else {
		buf_append_char(out, '\0');
		(*argc)++;
	}
}

/*
 * Find {N} or {-N} among the task's values: the columns of its first
 * input, then those of the next, as GNU parallel counts with -n.  Past
 * the end it is empty (a -J record says so instead); *owner is the input
 * the value comes from.
 */
static const char *
template_position(const struct segment *seg, const struct expansion *e,
		  const struct input **owner, size_t *len, char **cause)
{
	size_t total = 0, index;

	for (size_t k = 0; k < e->input_count; k++)
		total += template_value_count(e->inputs[k]);
	*owner = e->inputs[0];
	if ((seg->position > 0 ? (size_t)seg->position
			       : (size_t)-seg->position) > total) {
		if (e->inputs[0]->strict) {
			*cause =
			    xasprintf("input %llu: no element %ld",
				      (unsigned long long)e->inputs[0]->number,
				      seg->position);
			return NULL;
		}
		*len = 0;
		return template_modify(seg->modifier, "", len);
	}
	index = seg->position > 0 ? (size_t)seg->position - 1
				  : total - (size_t)-seg->position;
	for (size_t k = 0;; k++) {
		size_t count = template_value_count(e->inputs[k]);

		if (index < count) {
			*owner = e->inputs[k];
			return template_modify(
			    seg->modifier,
			    input_column(e->inputs[k], index + 1, len), len);
		}
		index -= count;
	}
}

/* Expand {} (with its modifier) or a field for one input. */
static bool
template_put_input(const struct template *t, const struct segment *seg,
		   struct input *in, struct buf *out, size_t *argc,
		   char **cause)
{
	const char *value;
	size_t len;

	if (seg->kind == SEGMENT_FIELD) {
		value = input_field(in, seg->text, &len, cause);
		if (value == NULL)
			return false;
		value = template_modify(seg->modifier, value, &len);
		return template_put(t, out, value, len, in, cause);
	}
	if (!template_splits(in)) {
		len = in->len;
		value = template_modify(seg->modifier, in->text, &len);
		return template_put(t, out, value, len, in, cause);
	}
	for (size_t c = 1; c <= in->column_count; c++) {
		if (c > 1)
			template_split(t, out, argc);
		value = input_column(in, c, &len);
		value = template_modify(seg->modifier, value, &len);
		if (!template_put(t, out, value, len, in, cause))
			return false;
	}
	return true;
}

/*
 * Expand one word for one input, or in shell mode for every input of a
 * chunk (in == NULL).  A value that stands for several arguments ends the
 * current one: *argc counts the arguments ended so far.
 */
static bool
template_expand_word(const struct template *t, const struct word *w,
		     const struct expansion *e, struct input *in,
		     struct buf *out, size_t *argc, char **cause)
{
	char number[32];

	for (size_t i = 0; i < w->count; i++) {
		const struct segment *seg = &w->segments[i];
		const struct input *owner;
		const char *value;
		size_t len;
		int n;

		switch (seg->kind) {
		case SEGMENT_LITERAL:
			buf_append(out, seg->text, seg->len);
			break;
		case SEGMENT_SEQ:
		case SEGMENT_SLOT:
			n = seg->kind == SEGMENT_SEQ
				? snprintf(number, sizeof number, "%llu",
					   (unsigned long long)e->seq)
				: snprintf(number, sizeof number, "%u",
					   e->slot);
			buf_append(out, number, (size_t)n);
			break;
		case SEGMENT_COLUMN:
			value = template_position(seg, e, &owner, &len, cause);
			if (value == NULL ||
			    !template_put(t, out, value, len, owner, cause))
				return false;
			break;
		default:
			if (in != NULL) {
				if (!template_put_input(t, seg, in, out, argc,
							cause))
					return false;
				break;
			}
			/* Shell mode, several inputs: all of them. */
			for (size_t k = 0; k < e->input_count; k++) {
				if (k > 0)
					buf_append_char(out, ' ');
				if (!template_put_input(t, seg, e->inputs[k],
							out, argc, cause))
					return false;
			}
			break;
		}
	}
	return true;
}

/* Append the inputs themselves (no placeholder mentions them). */
static bool
template_append_inputs(const struct template *t, const struct expansion *e,
		       struct buf *out, size_t *argc, char **cause)
{
	for (size_t k = 0; k < e->input_count; k++) {
		struct input *in = e->inputs[k];
		size_t columns = template_value_count(in);

		for (size_t c = 1; c <= columns; c++) {
			size_t len;
			const char *value = input_column(in, c, &len);

			if (t->shell)
				buf_append_char(out, ' ');
			if (!template_put(t, out, value, len, in, cause))
				return false;
			if (!t->shell) {
				buf_append_char(out, '\0');
				(*argc)++;
			}
		}
	}
	return true;
}

/* Begin a shell's argv: SHELL -c. */
static void
template_put_shell(const struct template *t, struct buf *out)
{
	buf_append(out, t->sh, strlen(t->sh) + 1);
	buf_append(out, "-c", 3);
}

/*
 * An exported bash function is run as bash -c 'f quoted words...': the
 * argv expanded so far becomes one line in which each argument is one
 * quoted word, as execvp would have passed it.
 */
static void
template_wrap_bash(struct buf *out, size_t *argc)
{
	struct buf line = {0};
	const char *arg = out->data;

	for (size_t i = 0; i < *argc; i++) {
		size_t len = strlen(arg);

		if (i > 0)
			buf_append_char(&line, ' ');
		shquote_append(&line, arg, len);
		arg += len + 1;
	}
	out->len = 0;
	buf_append(out, "bash\0-c", 8);
	buf_append(out, line.data != NULL ? line.data : "", line.len + 1);
	buf_free(&line);
	*argc = 3;
}

/*
 * With no command, the inputs are the command line, as they are (GNU
 * parallel joins a chunk's inputs, and an input's columns, with spaces).
 */
static bool
template_expand_command(const struct template *t, const struct expansion *e,
			bool with_input, struct buf *out, char **cause)
{
	if (!with_input) {
		/* --stdin: a shell reads the commands from its stdin (sh -c
		 * keeps argv in the shape --dry-run and the joblog print). */
		template_put_shell(t, out);
		buf_append_str(out, "exec ");
		shquote_append(out, t->sh, strlen(t->sh));
		buf_append(out, " -s", 4);
		return true;
	}
	template_put_shell(t, out);
	for (size_t k = 0; k < e->input_count; k++) {
		struct input *in = e->inputs[k];
		size_t count = template_splits(in) ? in->column_count : 1;

		for (size_t c = 1; c <= count; c++) {
			size_t len = in->len;
			const char *value =
			    count > 1 ? input_column(in, c, &len) : in->text;

			if (k > 0 || c > 1)
				buf_append_char(out, ' ');
			if (!template_check_nul(value, len, in, cause))
				return false;
			buf_append(out, value, len);
		}
	}
	buf_append_char(out, '\0');
	return true;
}

char **
template_expand(struct template *t, const struct expansion *e, bool with_input,
		char **cause)
{
	struct buf *out = &t->scratch;
	size_t argc = 0;
	char **argv, *strings;
	bool append = with_input && !t->has_placeholder;

	out->len = 0;
	if (t->no_command) {
		if (!template_expand_command(t, e, with_input, out, cause))
			return NULL;
		argc = 3;
	} else if (t->shell) {
		const struct word *w = &t->words[0];
		struct input *only = e->input_count == 1 ? e->inputs[0] : NULL;

		template_put_shell(t, out);
		if (!template_expand_word(t, w, e, only, out, &argc, cause))
			return NULL;
		if (append && !template_append_inputs(t, e, out, &argc, cause))
			return NULL;
		buf_append_char(out, '\0');
		argc = 3;
	} else {
		for (size_t i = 0; i < t->count; i++) {
			const struct word *w = &t->words[i];
			size_t repeat = w->per_input ? e->input_count : 1;

			for (size_t k = 0; k < repeat; k++) {
				if (!template_expand_word(t, w, e, e->inputs[k],
							  out, &argc, cause))
					return NULL;
				buf_append_char(out, '\0');
				argc++;
			}
		}
		if (append && !template_append_inputs(t, e, out, &argc, cause))
			return NULL;
		if (t->function)
			template_wrap_bash(out, &argc);
	}

	/* One block: the pointers, then the strings they point into. */
	argv = xmalloc((argc + 1) * sizeof *argv + out->len);
	strings = (char *)(argv + argc + 1);
	memcpy(strings, out->data, out->len);
	for (size_t i = 0; i < argc; i++) {
		argv[i] = strings;
		strings += strlen(strings) + 1;
	}
	argv[argc] = NULL;
	return argv;
}

void
template_free(struct template *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->count; i++)
		free(t->words[i].segments);
	free(t->words);
	for (size_t i = 0; i < t->name_count; i++)
		free(t->names[i]);
	free(t->names);
	free(t->joined);
	buf_free(&t->scratch);
	free(t);
}
