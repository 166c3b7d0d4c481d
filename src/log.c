/*
 * log.c - messages on stderr, each one line prefixed with "cpmap: ".
 *
 * A message is formatted in memory and written with one write(2), so it never
 * interleaves with a task's output that cpmap writes to the same stderr.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpmap.h"

static const char *log_progname = "cpmap";

void
log_init(const char *progname)
{
	const char *slash = strrchr(progname, '/');

	log_progname = slash != NULL ? slash + 1 : progname;
}

static void __attribute__((format(printf, 1, 0)))
log_write(const char *fmt, va_list ap)
{
	char line[4096];
	int n, m;
	size_t len;

	n = snprintf(line, sizeof line, "%s: ", log_progname);
	if (n < 0)
		return;
	m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	if (m < 0)
		return;
	len = (size_t)n + (size_t)m;
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	for (size_t done = 0; done < len;) {
		ssize_t w = write(STDERR_FILENO, line + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		done += (size_t)w;
	}
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_write(fmt, ap);
	va_end(ap);
}

void
signal_name(int sig, char *name, size_t size)
{
	const char *abbrev = sigabbrev_np(sig);

	if (abbrev != NULL)
		snprintf(name, size, "SIG%s", abbrev);
	else
		snprintf(name, size, "signal %d", sig);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_write(fmt, ap);
	va_end(ap);
	exit(CPMAP_EXIT_USAGE);
}
