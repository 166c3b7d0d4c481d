/*
 * log.c - messages on stderr, each one line prefixed with "cpmap: ".
 *
 * A message is formatted in memory and written with one write(2), so it never
 * interleaves with a task's output that cpmap writes to the same stderr.
 *
 * The trace (CPMAP_DEBUG=FILE, as tmux's -v log) is one line per lifecycle
 * step of a run, each with the time since the start, so that a failing run
 * can be read afterwards.  When it is off, log_debug is one test of a flag.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpmap.h"

static const char *log_progname = "cpmap";
bool log_debug_enabled;
static int log_debug_fd = -1;

void
log_init(const char *progname)
{
	const char *slash = strrchr(progname, '/');

	log_progname = slash != NULL ? slash + 1 : progname;
}

static void (*log_before)(void);

void
log_set_before(void (*before)(void))
{
	log_before = before;
}

static void __attribute__((format(printf, 1, 0)))
log_write(const char *fmt, va_list ap)
{
	char line[4096];
	int n, m;
	size_t len;

	if (log_before != NULL)
		log_before();

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

void
log_debug_open(void)
{
	const char *path = getenv("CPMAP_DEBUG");

	if (path == NULL || *path == '\0')
		return;
	log_debug_fd =
	    open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (log_debug_fd < 0) {
		log_warn("cannot write the trace to %s: %s", path,
			 strerror(errno));
		return;
	}
	log_debug_enabled = true;
	log_debug_write("cpmap %s: pid %ld", PACKAGE_VERSION, (long)getpid());
}

void
log_debug_write(const char *fmt, ...)
{
	static uint64_t start;
	char line[1024];
	uint64_t now = uv_hrtime();
	va_list ap;
	int n, m;
	size_t len;

	if (log_debug_fd < 0)
		return;
	if (start == 0)
		start = now;
	n = snprintf(line, sizeof line, "%10.6f ", (double)(now - start) / 1e9);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || m < 0)
		return;
	len = (size_t)n + (size_t)m;
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	(void)io_write_all(log_debug_fd, line, len);
}
