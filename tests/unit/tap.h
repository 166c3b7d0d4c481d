/*
 * tap.h - a tiny TAP producer for the C unit tests (header-only).
 *
 * Each check prints "ok N - description" or "not ok N - description" on
 * stdout, followed on failure by "# " diagnostics saying what was expected
 * and what came instead.  The plan is either given up front (tap_plan) or
 * printed at the end by tap_done, which also returns the exit status: 0 only
 * if every check passed and their number matched the plan.  Use it as
 *
 *	int main(void) { ...checks...; return tap_done(); }
 *
 * Descriptions take printf formats; '#' and '\' in them are escaped so that
 * a description can never be read as a TODO or SKIP directive, and control
 * bytes and bytes >= 0x7f are escaped so that a check is always one line
 * of ASCII.  A known bug is marked with tap_todo("why") before its checks
 * and tap_todo(NULL) after: they get a "# TODO" directive, and their
 * failures (expected) do not fail the program; automake reports XFAIL, and
 * XPASS (a failure of the suite) once the bug is fixed.
 */
#ifndef TAP_H
#define TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAP_PRINTF(f, a) __attribute__((format(printf, f, a)))

static struct {
	int planned; /* -1: the plan comes at the end */
	int run;
	int failed;
	const char *todo; /* the checks are a known bug: why, or NULL */
} tap_state = {-1, 0, 0, NULL};

static inline void
tap_plan(int count)
{
	tap_state.planned = count;
	printf("1..%d\n", count);
	fflush(stdout);
}

/* Mark the checks that follow as a known bug (reason), or no more (NULL). */
static inline void
tap_todo(const char *reason)
{
	tap_state.todo = reason;
}

/* Print "# " and the message, one diagnostic line per line of it. */
static inline TAP_PRINTF(1, 2) void tap_diag(const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	const char *line = text;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	for (;;) {
		const char *nl = strchr(line, '\n');
		int n = nl != NULL ? (int)(nl - line) : (int)strlen(line);

		printf("# %.*s\n", n, line);
		if (nl == NULL)
			break;
		line = nl + 1;
	}
	fflush(stdout);
}

/* Print bytes escaped as in a C string literal, between double quotes. */
static inline void
tap_put_escaped(const char *data, size_t len)
{
	putchar('"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)data[i];

		if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* A diagnostic line "#   what: "value"" (or NULL), bytes escaped. */
static inline void
tap_diag_value(const char *what, const char *data, size_t len)
{
	printf("#   %8s: ", what);
	if (data == NULL)
		fputs("NULL", stdout);
	else
		tap_put_escaped(data, len);
	putchar('\n');
	fflush(stdout);
}

static inline TAP_PRINTF(2, 0) void tap_vresult(bool pass, const char *fmt,
						va_list ap)
{
	char text[512];

	vsnprintf(text, sizeof text, fmt, ap);
	tap_state.run++;
	if (!pass && tap_state.todo == NULL)
		tap_state.failed++;
	printf("%s %d - ", pass ? "ok" : "not ok", tap_state.run);
	for (const char *p = text; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '#' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	if (tap_state.todo != NULL)
		printf(" # TODO %s", tap_state.todo);
	putchar('\n');
	fflush(stdout);
}

/* One check: pass says whether it passed. */
static inline TAP_PRINTF(2, 3) bool tap_ok(bool pass, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vresult(pass, fmt, ap);
	va_end(ap);
	return pass;
}

/* Two byte strings are equal (either may be NULL: equal only if both are). */
static inline TAP_PRINTF(5, 6) bool tap_is_mem(const void *got, size_t got_len,
					       const void *want,
					       size_t want_len, const char *fmt,
					       ...)
{
	bool pass =
	    got == NULL || want == NULL
		? got == want
		: got_len == want_len &&
		      (want_len == 0 || memcmp(got, want, want_len) == 0);
	va_list ap;

	va_start(ap, fmt);
	tap_vresult(pass, fmt, ap);
	va_end(ap);
	if (!pass) {
		tap_diag_value("got", (const char *)got, got_len);
		tap_diag_value("expected", (const char *)want, want_len);
	}
	return pass;
}

/* Two C strings are equal (either may be NULL: equal only if both are). */
static inline TAP_PRINTF(3, 4) bool tap_is_str(const char *got,
					       const char *want,
					       const char *fmt, ...)
{
	bool pass =
	    got == NULL || want == NULL ? got == want : strcmp(got, want) == 0;
	va_list ap;

	va_start(ap, fmt);
	tap_vresult(pass, fmt, ap);
	va_end(ap);
	if (!pass) {
		tap_diag_value("got", got, got != NULL ? strlen(got) : 0);
		tap_diag_value("expected", want,
			       want != NULL ? strlen(want) : 0);
	}
	return pass;
}

/* Two integers are equal. */
static inline TAP_PRINTF(3, 4) bool tap_is_int(long long got, long long want,
					       const char *fmt, ...)
{
	bool pass = got == want;
	va_list ap;

	va_start(ap, fmt);
	tap_vresult(pass, fmt, ap);
	va_end(ap);
	if (!pass)
		tap_diag("       got: %lld\n  expected: %lld", got, want);
	return pass;
}

/* Give up: nothing after this can be trusted. */
static inline TAP_PRINTF(1, 2) void tap_bail(const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	printf("Bail out! %s\n", text);
	fflush(stdout);
	exit(1);
}

/* Print the plan if it was not given, and return the exit status. */
static inline int
tap_done(void)
{
	if (tap_state.planned < 0)
		printf("1..%d\n", tap_state.run);
	else if (tap_state.planned != tap_state.run)
		tap_diag("planned %d checks but ran %d", tap_state.planned,
			 tap_state.run);
	if (tap_state.failed > 0)
		tap_diag("failed %d of %d checks", tap_state.failed,
			 tap_state.run);
	fflush(stdout);
	return tap_state.failed > 0 || (tap_state.planned >= 0 &&
					tap_state.planned != tap_state.run)
		   ? 1
		   : 0;
}

#endif /* TAP_H */
