/*
 * shquote.c - POSIX shell quoting.
 *
 * Shell mode, --dry-run and (later) remote execution all turn a value into
 * one literal word for /bin/sh.  A value made only of characters that are
 * never special is left bare (so --dry-run output stays readable); anything
 * else is put in single quotes, where the shell interprets nothing, and each
 * embedded single quote becomes '\''.
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
