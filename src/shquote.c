/*
 * shquote.c - POSIX shell quoting.
 *
 * Shell mode, --dry-run and remote execution all turn a value into one
 * literal word for /bin/sh.  A value made only of characters that are
 * never special is left bare (so --dry-run output stays readable); anything
 * else is put in single quotes, where the shell interprets nothing, and each
 * embedded single quote becomes '\''.
 *
 * The remote agents get command lines on one line: a newline, which can
 * only be inside single quotes, is spelt '"$CPMAP_NL"' (the sh agent sets
 * that variable), and cpmap --worker reads such a line back into an argv
 * and an environment without a shell.
 */
#include <string.h>

#include "cpmap.h"

/* Characters that are never special to a POSIX shell, anywhere in a word. */
static bool
shquote_is_safe(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("@%+=:,./_-", c) != NULL;
}

void
shquote_append(struct buf *out, const char *s, size_t len)
{
	bool safe = len > 0;

	for (size_t i = 0; safe && i < len; i++)
		safe = s[i] != '\0' && shquote_is_safe((unsigned char)s[i]);
	if (safe) {
		buf_append(out, s, len);
		return;
	}
	buf_reserve(out, len + 2);
	buf_append_char(out, '\'');
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\'')
			buf_append(out, "'\\''", 4);
		else
			buf_append_char(out, s[i]);
	}
	buf_append_char(out, '\'');
}

bool
shquote_needs_shell(const char *word)
{
	/*
	 * Braces are left out on purpose: they delimit placeholders, and a
	 * lone "{}" is not shell syntax anyone means.
	 */
	return strpbrk(word, " \t\n|&;<>()$`\\\"'*?[#~") != NULL;
}

void
shquote_command_line(struct buf *out, char *const *argv, bool shell)
{
	if (shell) {
		/* argv is sh -c COMMAND: the command is the line itself. */
		buf_append_str(out, argv[2]);
		for (size_t i = 3; argv[i] != NULL; i++) {
			buf_append_char(out, ' ');
			shquote_append(out, argv[i], strlen(argv[i]));
		}
		return;
	}
	for (size_t i = 0; argv[i] != NULL; i++) {
		if (i > 0)
			buf_append_char(out, ' ');
		shquote_append(out, argv[i], strlen(argv[i]));
	}
}

void
shquote_one_line(struct buf *out, const char *line, size_t len)
{
	for (const char *p = line, *end = line + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (nl == NULL)
			nl = end;
		buf_append(out, p, (size_t)(nl - p));
		if (nl < end)
			buf_append_str(out, "'\"$CPMAP_NL\"'");
		p = nl + 1;
	}
}

/*
 * Read back one word as shquote_append writes it (bare safe characters,
 * '...' with '\'' for a quote) or as remote.c spells a newline inside it
 * ('"$CPMAP_NL"').  Advance *p past it; false for anything else.
 */
static bool
shquote_read_word(const char **p, const char *end, struct buf *word)
{
	const char *s = *p;

	word->len = 0;
	buf_append(word, "", 0);
	if (s >= end || *s == ' ' || *s == ';')
		return false;
	while (s < end && *s != ' ' && *s != ';') {
		if (*s == '\'') {
			const char *close =
			    memchr(s + 1, '\'', (size_t)(end - s - 1));

			if (close == NULL)
				return false;
			buf_append(word, s + 1, (size_t)(close - s - 1));
			s = close + 1;
		} else if (end - s >= 2 && s[0] == '\\' && s[1] == '\'') {
			buf_append_char(word, '\'');
			s += 2;
		} else if ((size_t)(end - s) >= 11 &&
			   memcmp(s, "\"$CPMAP_NL\"", 11) == 0) {
			buf_append_char(word, '\n');
			s += 11;
		} else if (shquote_is_safe((unsigned char)*s)) {
			buf_append_char(word, *s++);
		} else {
			return false;
		}
	}
	*p = s;
	return true;
}

/* "export NAME=WORD ...; " any number of times, at *p: env gets
 * "NAME=value" strings; false if what is there is not that. */
static bool
shquote_read_exports(const char **pp, const char *end, struct buf *env)
{
	const char *p = *pp;
	struct buf word = {0};
	bool ok = false;

	while ((size_t)(end - p) > 7 && memcmp(p, "export ", 7) == 0) {
		p += 7;
		for (;;) {
			const char *eq = p;

			while (eq < end &&
			       (*eq == '_' || (*eq >= 'A' && *eq <= 'Z') ||
				(*eq >= 'a' && *eq <= 'z') ||
				(eq > p && *eq >= '0' && *eq <= '9')))
				eq++;
			if (eq == p || eq >= end || *eq != '=')
				goto out;
			buf_append(env, p, (size_t)(eq - p) + 1);
			p = eq + 1;
			if (p < end && (*p == ' ' || *p == ';'))
				word.len = 0; /* an empty value */
			else if (!shquote_read_word(&p, end, &word))
				goto out;
			buf_append(env, word.data != NULL ? word.data : "",
				   word.len);
			buf_append_char(env, '\0');
			if (p < end && *p == ' ') {
				p++;
				continue;
			}
			break;
		}
		if (end - p < 2 || p[0] != ';' || p[1] != ' ')
			goto out;
		p += 2;
	}
	ok = true;
	*pp = p;
out:
	buf_free(&word);
	return ok;
}

bool
shquote_parse_exports(const char *line, size_t len, struct buf *env)
{
	const char *p = line;

	env->len = 0;
	return shquote_read_exports(&p, line + len, env) && p == line + len;
}

bool
shquote_parse_exec(const char *line, size_t len, struct buf *env,
		   struct buf *argv, size_t *argc)
{
	const char *p = line, *end = line + len;
	struct buf word = {0};
	bool ok = false;

	env->len = argv->len = 0;
	*argc = 0;
	if (!shquote_read_exports(&p, end, env))
		goto out;
	/* "exec WORD..." */
	if ((size_t)(end - p) < 4 || memcmp(p, "exec", 4) != 0)
		goto out;
	p += 4;
	while (p < end) {
		if (*p++ != ' ' || !shquote_read_word(&p, end, &word))
			goto out;
		buf_append(argv, word.data, word.len);
		buf_append_char(argv, '\0');
		(*argc)++;
	}
	ok = *argc > 0;
out:
	buf_free(&word);
	return ok;
}
