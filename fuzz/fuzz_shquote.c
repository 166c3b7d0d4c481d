/*
 * fuzz_shquote.c - libFuzzer target for shquote.c.
 *
 * The input is the value to quote.  Properties checked (abort on failure):
 * undoing the quoting as /bin/sh does gives back the exact bytes, as one
 * word; the value is left bare exactly when it is non-empty and made only of
 * safe bytes; shquote_needs_shell agrees with the list of shell bytes; an
 * "exec WORD" line, made one line as for the remote agent, is read back by
 * shquote_parse_exec to the same word, and any bytes at all are safe to
 * give it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char safe_bytes[] = "abcdefghijklmnopqrstuvwxyz"
				 "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "0123456789@%+=:,./_-";
static const char shell_bytes[] = " \t\n|&;<>()$`\\\"'*?[#~";

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_shquote: %s\n", what);
	abort();
}

/*
 * Undo the quoting of one POSIX shell word: bare safe bytes, '...', and \x
 * outside quotes.  Anything else (an unquoted blank or shell byte, an open
 * quote) means the text is not exactly one literal word: -1.
 */
static long
unquote(const char *text, size_t len, char *out)
{
	size_t n = 0, i = 0;
	int any = 0;

	while (i < len) {
		unsigned char c = (unsigned char)text[i];

		if (c == '\'') {
			const char *close =
			    memchr(text + i + 1, '\'', len - i - 1);
			size_t inner;

			if (close == NULL)
				return -1;
			inner = (size_t)(close - text) - i - 1;
			memcpy(out + n, text + i + 1, inner);
			n += inner;
			i += inner + 2;
			any = 1;
		} else if (c == '\\') {
			if (i + 1 == len || text[i + 1] == '\n')
				return -1;
			out[n++] = text[i + 1];
			i += 2;
			any = 1;
		} else if (c != '\0' && strchr(safe_bytes, c) != NULL) {
			out[n++] = text[i++];
			any = 1;
		} else {
			return -1;
		}
	}
	return any ? (long)n : -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct buf q = {0};
	char *back, *word;
	long n;
	int all_safe = size > 0;

	for (size_t i = 0; i < size; i++)
		if (data[i] == 0 || strchr(safe_bytes, data[i]) == NULL)
			all_safe = 0;

	/* The round trip, NUL bytes included: quoting is byte-transparent. */
	shquote_append(&q, s, size);
	if (q.data == NULL || q.data[q.len] != '\0')
		fail("the buffer is not NUL-terminated");
	back = malloc(q.len + 1);
	if (back == NULL)
		abort();
	n = unquote(q.data, q.len, back);
	if (n < 0)
		fail("the quoted text is not one shell word");
	if ((size_t)n != size || memcmp(back, data, size) != 0)
		fail("the quoted text does not give the value back");
	if ((q.len == size && memcmp(q.data, data, size) == 0) != all_safe)
		fail("left bare when unsafe, or quoted when safe");
	free(back);
	buf_free(&q);

	/* As the remote agent's command line: read back without a shell
	 * (a value with NUL bytes cannot be an argument: skip it). */
	if (memchr(data, '\0', size) == NULL) {
		struct buf line = {0}, env = {0}, argv = {0};
		size_t argc = 0;

		buf_append_str(&q, "exec ");
		shquote_append(&q, s, size);
		shquote_one_line(&line, q.data, q.len);
		if (memchr(line.data, '\n', line.len) != NULL)
			fail("a command line is more than one line");
		if (!shquote_parse_exec(line.data, line.len, &env, &argv,
					&argc) ||
		    argc != 1 || strlen(argv.data) != size ||
		    memcmp(argv.data, data, size) != 0)
			fail("an exec line does not give its word back");
		/* Any bytes at all: no crash, no overread. */
		(void)shquote_parse_exec(s, size, &env, &argv, &argc);
		buf_free(&line);
		buf_free(&env);
		buf_free(&argv);
		buf_free(&q);
	}

	/* Appending keeps what the buffer held. */
	buf_append(&q, "x ", 2);
	shquote_append(&q, s, size);
	if (q.len < 2 || memcmp(q.data, "x ", 2) != 0)
		fail("appending overwrote the buffer");
	buf_free(&q);

	/* shquote_needs_shell on the value as a C string. */
	word = malloc(size + 1);
	if (word == NULL)
		abort();
	memcpy(word, data, size);
	word[size] = '\0';
	if (shquote_needs_shell(word) != (strpbrk(word, shell_bytes) != NULL))
		fail("shquote_needs_shell disagrees with the shell bytes");
	free(word);
	return 0;
}
