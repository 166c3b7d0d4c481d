/*
 * test_shquote.c - unit tests for shquote.c: POSIX shell quoting.
 *
 * Exact outputs for chosen words, then a round-trip property: a small,
 * strict parser of POSIX shell words (bare safe characters, '...' and \x
 * outside quotes, nothing else) must give back every random byte string
 * exactly, as one word.
 */
#include <stdlib.h>
#include <string.h>

#include "cpmap.h"
#include "tap.h"

/* The bytes the tests expect to be left bare (not shquote.c's own list). */
static const char safe_bytes[] = "abcdefghijklmnopqrstuvwxyz"
				 "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "0123456789@%+=:,./_-";

/* The bytes that make a one-word command go through the shell. */
static const char shell_bytes[] = " \t\n|&;<>()$`\\\"'*?[#~";

static char *
quote(const char *s, size_t len, size_t *out_len)
{
	struct buf b = {0};

	shquote_append(&b, s, len);
	return buf_steal(&b, out_len);
}

/*
 * Undo the quoting of one word, as /bin/sh would: bare bytes must be safe,
 * '...' holds anything but a single quote, and a backslash outside quotes
 * takes the next byte literally.  An unquoted blank or any other unquoted
 * byte is an error (it would split the word or mean something).  Return the
 * word's length in *out, or -1 when the text is not exactly one word.
 */
static long
unquote(const char *text, size_t len, char *out)
{
	size_t n = 0, i = 0;
	bool any = false; /* quotes make a word even if empty */

	while (i < len) {
		unsigned char c = (unsigned char)text[i];

		if (c == '\'') {
			const char *close =
			    memchr(text + i + 1, '\'', len - i - 1);

			if (close == NULL)
				return -1; /* unterminated */
			memcpy(out + n, text + i + 1,
			       (size_t)(close - text - i - 1));
			n += (size_t)(close - text - i - 1);
			i = (size_t)(close - text) + 1;
			any = true;
		} else if (c == '\\') {
			if (i + 1 == len || text[i + 1] == '\n')
				return -1; /* a line continuation, no byte */
			out[n++] = text[i + 1];
			i += 2;
			any = true;
		} else if (c != '\0' && strchr(safe_bytes, c) != NULL) {
			out[n++] = text[i++];
			any = true;
		} else {
			return -1;
		}
	}
	return any ? (long)n : -1;
}

static void
check_quote(const char *s, size_t len, const char *want, size_t want_len,
	    const char *what)
{
	size_t got_len;
	char *got = quote(s, len, &got_len);

	tap_is_mem(got, got_len, want, want_len, "shquote_append: %s", what);
	free(got);
}

static void
test_exact(void)
{
	static const struct {
		const char *in, *want, *what;
	} cases[] = {
	    {"", "''", "the empty string is ''"},
	    {"abc", "abc", "a plain word is left bare"},
	    {"ABCxyz0189", "ABCxyz0189", "letters and digits are left bare"},
	    {"@%+=:,./_-", "@%+=:,./_-", "@%+=:,./_- are left bare"},
	    {"/usr/lib/x86_64/libc.so.6", "/usr/lib/x86_64/libc.so.6",
	     "a path of safe characters is left bare"},
	    {"--opt=value", "--opt=value", "an option is left bare"},
	    {"a b", "'a b'", "a space is quoted"},
	    {"it's", "'it'\\''s'", "an embedded quote becomes '\\''"},
	    {"'", "''\\'''", "a lone quote"},
	    {"''", "''\\'''\\'''", "two quotes"},
	    {"'a'", "''\\''a'\\'''", "a quoted word is quoted again"},
	    {"$(rm -rf /)", "'$(rm -rf /)'", "command substitution is inert"},
	    {"`id`", "'`id`'", "backquotes are inert"},
	    {"a\nb", "'a\nb'", "a newline stays inside the quotes"},
	    {"\\", "'\\'", "a backslash is quoted"},
	    {"~", "'~'", "a tilde is quoted"},
	    {"a*", "'a*'", "a glob is quoted"},
	    {"{}", "'{}'", "braces are quoted"},
	    {"!", "'!'", "an exclamation mark is quoted"},
	    {"caf\xc3\xa9", "'caf\xc3\xa9'", "UTF-8 bytes are quoted"},
	    {"\xff\x80", "'\xff\x80'", "bytes >= 0x80 are quoted"},
	    {"\x01", "'\x01'", "a control byte is quoted"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		check_quote(cases[i].in, strlen(cases[i].in), cases[i].want,
			    strlen(cases[i].want), cases[i].what);
}

/* Every single byte, alone and inside a word, bare or quoted as expected. */
static void
test_every_byte(void)
{
	int bad_alone = 0, bad_inside = 0;

	for (int c = 1; c < 256; c++) {
		char in[4] = {'x', (char)c, 'y', '\0'};
		char want[16];
		size_t want_len, got_len;
		char *got;
		bool safe = strchr(safe_bytes, c) != NULL;

		/* "xCy" */
		if (safe)
			want_len =
			    (size_t)snprintf(want, sizeof want, "x%cy", c);
		else if (c == '\'')
			want_len =
			    (size_t)snprintf(want, sizeof want, "'x'\\''y'");
		else
			want_len =
			    (size_t)snprintf(want, sizeof want, "'x%cy'", c);
		got = quote(in, 3, &got_len);
		if (got_len != want_len || memcmp(got, want, want_len) != 0) {
			if (bad_inside++ == 0) {
				tap_diag("byte 0x%02x inside a word:", c);
				tap_diag_value("got", got, got_len);
				tap_diag_value("expected", want, want_len);
			}
		}
		free(got);

		/* "C" */
		if (safe)
			want_len = (size_t)snprintf(want, sizeof want, "%c", c);
		else if (c == '\'')
			want_len =
			    (size_t)snprintf(want, sizeof want, "''\\'''");
		else
			want_len =
			    (size_t)snprintf(want, sizeof want, "'%c'", c);
		got = quote(in + 1, 1, &got_len);
		if (got_len != want_len || memcmp(got, want, want_len) != 0) {
			if (bad_alone++ == 0) {
				tap_diag("byte 0x%02x alone:", c);
				tap_diag_value("got", got, got_len);
				tap_diag_value("expected", want, want_len);
			}
		}
		free(got);
	}
	tap_ok(bad_inside == 0,
	       "every byte inside a word: only safe ones left bare (%d wrong)",
	       bad_inside);
	tap_ok(bad_alone == 0,
	       "every byte alone: only safe ones left bare (%d wrong)",
	       bad_alone);
}

static void
test_buffer_use(void)
{
	struct buf b = {0};

	buf_append_str(&b, "echo ");
	shquote_append(&b, "a b", 3);
	buf_append_char(&b, ' ');
	shquote_append(&b, "plain", 5);
	tap_is_mem(b.data, b.len, "echo 'a b' plain", 16,
		   "shquote_append appends after what the buffer holds");
	tap_ok(b.data[b.len] == '\0', "the buffer stays NUL-terminated");
	buf_free(&b);

	check_quote("abc def", 3, "abc", 3,
		    "only len bytes are read (safe prefix)");
	check_quote("a b;rm", 3, "'a b'", 5,
		    "only len bytes are read (quoted prefix)");
	check_quote("a\0b", 3, "'a\0b'", 5,
		    "a NUL byte is not safe: the word is quoted");
}

static void
test_needs_shell(void)
{
	static const struct {
		const char *word;
		bool want;
	} cases[] = {
	    {"echo", false},
	    {"", false},
	    {"/usr/bin/env", false},
	    {"{}", false},
	    {"x{}y{.}{/}{//}{/.}{%}{1}", false},
	    {"a=b", false},
	    {"%@+,:./-_", false},
	    {"caf\xc3\xa9", false},
	    {"echo {}", true},
	    {"echo\t{}", true},
	    {"echo\n{}", true},
	    {"a|b", true},
	    {"a&b", true},
	    {"a;b", true},
	    {"a<b", true},
	    {"a>b", true},
	    {"(a)", true},
	    {"$HOME", true},
	    {"`id`", true},
	    {"a\\b", true},
	    {"\"a\"", true},
	    {"'a'", true},
	    {"*.c", true},
	    {"a?", true},
	    {"[ab]", true},
	    {"{#}", true},
	    {"~/bin/tool", true},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool got = shquote_needs_shell(cases[i].word);

		tap_ok(got == cases[i].want,
		       "shquote_needs_shell(\"%s\") is %s", cases[i].word,
		       cases[i].want ? "true" : "false");
	}

	/* Exactly the listed bytes make a word need the shell. */
	int wrong = 0;

	for (int c = 1; c < 256; c++) {
		char word[4] = {'a', (char)c, 'b', '\0'};
		bool want = strchr(shell_bytes, c) != NULL;

		if (shquote_needs_shell(word) != want && wrong++ == 0)
			tap_diag("byte 0x%02x: got %d", c, !want);
	}
	tap_ok(wrong == 0,
	       "shquote_needs_shell is true exactly for whitespace and "
	       "|&;<>()$`\\\"'*?[#~ (%d bytes wrong)",
	       wrong);
}

/* A small xorshift generator: the same sequence on every run. */
static unsigned long long rng_state = 0x9e3779b97f4a7c15ULL;

static unsigned
rng(unsigned bound)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (unsigned)(rng_state % bound);
}

static void
test_round_trip(void)
{
	/* Bytes that matter to quoting, drawn more often than the rest. */
	static const char tricky[] = "'\\\" \t\n$`*?[]{}~#&|;<>()!=%";
	enum { ROUNDS = 20000, MAX_LEN = 48 };
	int failures = 0, bare = 0, unsafe_bare = 0;

	for (int r = 0; r < ROUNDS; r++) {
		char in[MAX_LEN], back[4 * MAX_LEN + 2];
		size_t len = rng(MAX_LEN), qlen;
		char *q;
		long n;

		for (size_t i = 0; i < len; i++) {
			switch (rng(4)) {
			case 0:
				in[i] = tricky[rng(sizeof tricky - 1)];
				break;
			case 1:
				in[i] = safe_bytes[rng(sizeof safe_bytes - 1)];
				break;
			default:
				in[i] = (char)(1 + rng(255)); /* no NUL */
				break;
			}
		}
		if (r % 3 == 0) /* some words all safe, to see them bare */
			for (size_t i = 0; i < len; i++)
				in[i] = safe_bytes[rng(sizeof safe_bytes - 1)];
		q = quote(in, len, &qlen);
		n = unquote(q, qlen, back);
		if (n < 0 || (size_t)n != len || memcmp(back, in, len) != 0) {
			if (failures++ == 0) {
				tap_diag("round trip failed (round %d):", r);
				tap_diag_value("input", in, len);
				tap_diag_value("quoted", q, qlen);
			}
		}
		if (qlen == len && memcmp(q, in, len) == 0) {
			bare++;
			for (size_t i = 0; i < len; i++)
				if (strchr(safe_bytes, in[i]) == NULL) {
					unsafe_bare++;
					break;
				}
		}
		free(q);
	}
	tap_ok(failures == 0,
	       "%d random byte strings come back exactly from their quoted "
	       "form, as one word (%d failed)",
	       ROUNDS, failures);
	tap_ok(bare > ROUNDS / 4 && unsafe_bare == 0,
	       "only safe strings are left bare (%d bare, %d unsafe)", bare,
	       unsafe_bare);
}

/* The parser used above must itself reject what is not one word. */
static void
test_unquote_rejects(void)
{
	static const char *const bad[] = {
	    "", "a b", "'a", "a'b", "$x", "a;b", "\\", "'a'\\", "*", "a\tb",
	};
	char out[16];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		tap_ok(unquote(bad[i], strlen(bad[i]), out) < 0,
		       "the test's parser rejects \"%s\"", bad[i]);
	tap_ok(unquote("'a'\\''b'", 8, out) == 3 && memcmp(out, "a'b", 3) == 0,
	       "the test's parser reads 'a'\\''b' as a'b");
}

/* The agent's command lines: random argv and exports, written as
 * remote.c writes them, come back exactly (cpmap --worker's reading). */
static void
test_parse_exec(void)
{
	static const char tricky[] = "'\\\" \t\n$`*?[]{}~#&|;<>()!=%";
	enum { ROUNDS = 5000, MAX_WORDS = 5, MAX_LEN = 12 };
	int failures = 0;

	for (int r = 0; r < ROUNDS; r++) {
		struct buf line = {0}, quoted = {0}, env = {0}, argv = {0};
		char words[MAX_WORDS][MAX_LEN + 1];
		char value[MAX_LEN + 1];
		size_t nwords = 1 + rng(MAX_WORDS), vlen = rng(MAX_LEN + 1);
		size_t argc = 0;
		bool ok;

		for (size_t i = 0; i < vlen; i++)
			value[i] = rng(2) ? tricky[rng(sizeof tricky - 1)]
					  : (char)(1 + rng(255));
		value[vlen] = '\0';
		buf_append_str(&quoted, "export A_1=");
		shquote_append(&quoted, value, vlen);
		buf_append_str(&quoted, " B=x; export C=; exec");
		for (size_t w = 0; w < nwords; w++) {
			size_t len = rng(MAX_LEN + 1);

			for (size_t i = 0; i < len; i++)
				words[w][i] =
				    rng(2) ? tricky[rng(sizeof tricky - 1)]
					   : safe_bytes[rng(sizeof safe_bytes -
							    1)];
			words[w][len] = '\0';
			buf_append_char(&quoted, ' ');
			shquote_append(&quoted, words[w], len);
		}
		shquote_one_line(&line, quoted.data, quoted.len);
		ok = memchr(line.data, '\n', line.len) == NULL &&
		     shquote_parse_exec(line.data, line.len, &env, &argv,
					&argc) &&
		     argc == nwords;
		if (ok) {
			const char *p = argv.data, *e = env.data;

			for (size_t w = 0; ok && w < nwords; w++) {
				ok = strcmp(p, words[w]) == 0;
				p += strlen(p) + 1;
			}
			ok = ok && strncmp(e, "A_1=", 4) == 0 &&
			     strcmp(e + 4, value) == 0;
			e += strlen(e) + 1;
			ok = ok && strcmp(e, "B=x") == 0;
			e += strlen(e) + 1;
			ok = ok && strcmp(e, "C=") == 0;
		}
		if (!ok && failures++ == 0) {
			tap_diag("round %d:", r);
			tap_diag_value("line", line.data, line.len);
		}
		buf_free(&line);
		buf_free(&quoted);
		buf_free(&env);
		buf_free(&argv);
	}
	tap_ok(failures == 0,
	       "%d random command lines come back as their argv and exports "
	       "(%d failed)",
	       ROUNDS, failures);

	static const char *const rejected[] = {
	    "",
	    "exec",
	    "echo a",
	    "exec a; rm b",
	    "exec a | b",
	    "exec $(id)",
	    "exec 'open",
	    "export 1A=x; exec a",
	    "export A=x exec a",
	    "exec a  b",
	    "exec a\nb",
	};
	int wrong = 0;

	for (size_t i = 0; i < sizeof rejected / sizeof rejected[0]; i++) {
		struct buf env = {0}, argv = {0};
		size_t argc;

		if (shquote_parse_exec(rejected[i], strlen(rejected[i]), &env,
				       &argv, &argc)) {
			tap_diag("taken: %s", rejected[i]);
			wrong++;
		}
		buf_free(&env);
		buf_free(&argv);
	}
	tap_ok(wrong == 0, "lines that are not export/exec of quoted words "
			   "are left to sh");
}

/* The V request's line: exports alone, values with any byte (a newline
 * spelt out), and nothing else taken. */
static void
test_parse_exports(void)
{
	static const char value[] = "it's\ttwo\nlines $(id) \"q\" \\";
	struct buf quoted = {0}, line = {0}, env = {0};
	const char *e;
	bool ok;

	buf_append_str(&quoted, "export CPMAP_HOST=h1 PARALLEL_SSHLOGIN=h1; "
				"export V=");
	shquote_append(&quoted, value, strlen(value));
	buf_append_str(&quoted, "; export E=; ");
	shquote_one_line(&line, quoted.data, quoted.len);
	ok = memchr(line.data, '\n', line.len) == NULL &&
	     shquote_parse_exports(line.data, line.len, &env);
	e = env.data;
	if (ok) {
		ok = strcmp(e, "CPMAP_HOST=h1") == 0;
		e += strlen(e) + 1;
		ok = ok && strcmp(e, "PARALLEL_SSHLOGIN=h1") == 0;
		e += strlen(e) + 1;
		ok =
		    ok && strncmp(e, "V=", 2) == 0 && strcmp(e + 2, value) == 0;
		e += strlen(e) + 1;
		ok = ok && strcmp(e, "E=") == 0;
		e += strlen(e) + 1;
		ok = ok && e == env.data + env.len;
	}
	tap_ok(ok, "an exports line comes back as its variables, a newline "
		   "and a quote in a value intact");
	ok = shquote_parse_exports("", 0, &env) && env.len == 0;
	tap_ok(ok, "an empty exports line sets nothing");

	static const char *const rejected[] = {
	    "export A=x",
	    "export A=x; exec a",
	    "export A=$(id); ",
	    "export 1A=x; ",
	    "A=x; ",
	    "export A='x; ",
	    "export A=x;export B=y; ",
	};
	int wrong = 0;

	for (size_t i = 0; i < sizeof rejected / sizeof rejected[0]; i++)
		if (shquote_parse_exports(rejected[i], strlen(rejected[i]),
					  &env)) {
			tap_diag("taken: %s", rejected[i]);
			wrong++;
		}
	tap_ok(wrong == 0, "lines that are not exports alone are refused");
	buf_free(&quoted);
	buf_free(&line);
	buf_free(&env);
}

int
main(void)
{
	test_exact();
	test_every_byte();
	test_buffer_use();
	test_needs_shell();
	test_unquote_rejects();
	test_round_trip();
	test_parse_exec();
	test_parse_exports();
	return tap_done();
}
