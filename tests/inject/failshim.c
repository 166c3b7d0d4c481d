/*
 * failshim.c - an LD_PRELOAD shim that makes the N-th call of cpmap's
 * write, pwritev2, open, openat, mkostemp, mkstemp or pipe2 fail
 * (./configure --enable-error-injection; tests/bats/inject.bats).
 *
 *   CPMAP_FAIL_CALL=N    fail the N-th call counted (from 1), once;
 *                        0 or unset: fail nothing, only count
 *   CPMAP_FAIL_COUNT=F   at exit, write the number of calls counted to F
 *
 * Only calls made by cpmap's own code are counted (those of libuv and the
 * C library are not cpmap's call sites: libuv aborts by design when its
 * own signal pipe fails).  A write fails with ENOSPC, anything else with
 * EMFILE.  Writes to fd 2 are never failed or counted: the messages that
 * say what went wrong must get out.  The shim takes itself out of the
 * environment at start, so that tasks run unharmed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/uio.h>
#include <unistd.h>

static unsigned long failshim_target, failshim_calls;
static const char *failshim_count_path;
static void *failshim_program; /* the load address of cpmap itself */

__attribute__((constructor)) static void
failshim_init(void)
{
	const char *n = getenv("CPMAP_FAIL_CALL");

	failshim_target = n != NULL ? strtoul(n, NULL, 10) : 0;
	Dl_info info;

	failshim_count_path = getenv("CPMAP_FAIL_COUNT");
	if (dladdr((void *)getauxval(AT_ENTRY), &info) != 0)
		failshim_program = info.dli_fbase;
	unsetenv("LD_PRELOAD");
}

__attribute__((destructor)) static void
failshim_fini(void)
{
	FILE *f;

	if (failshim_count_path == NULL ||
	    (f = fopen(failshim_count_path, "w")) == NULL)
		return;
	fprintf(f, "%lu\n", failshim_calls);
	fclose(f);
}

/* Count this call if cpmap's code made it (caller: its return address);
 * should it fail? */
static int
failshim_counts(void *caller)
{
	Dl_info info;

	if (dladdr(caller, &info) == 0 || info.dli_fbase != failshim_program)
		return 0;
	return ++failshim_calls == failshim_target;
}

#define failshim_fails() failshim_counts(__builtin_return_address(0))

#define FAILSHIM_REAL(type, name, ...)                                         \
	static type (*real)(__VA_ARGS__);                                      \
	if (real == NULL)                                                      \
	real = (type(*)(__VA_ARGS__))dlsym(RTLD_NEXT, name)

ssize_t
write(int fd, const void *data, size_t len)
{
	FAILSHIM_REAL(ssize_t, "write", int, const void *, size_t);
	if (fd != 2 && failshim_fails()) {
		errno = ENOSPC;
		return -1;
	}
	return real(fd, data, len);
}

ssize_t
pwritev2(int fd, const struct iovec *iov, int count, off_t offset, int flags)
{
	FAILSHIM_REAL(ssize_t, "pwritev2", int, const struct iovec *, int,
		      off_t, int);
	if (fd != 2 && failshim_fails()) {
		errno = ENOSPC;
		return -1;
	}
	return real(fd, iov, count, offset, flags);
}

int
open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	FAILSHIM_REAL(int, "open", const char *, int, ...);
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (failshim_fails()) {
		errno = EMFILE;
		return -1;
	}
	return real(path, flags, mode);
}

int
open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	FAILSHIM_REAL(int, "open64", const char *, int, ...);
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (failshim_fails()) {
		errno = EMFILE;
		return -1;
	}
	return real(path, flags, mode);
}

int
mkostemp(char *template, int flags)
{
	FAILSHIM_REAL(int, "mkostemp", char *, int);
	if (failshim_fails()) {
		errno = EMFILE;
		return -1;
	}
	return real(template, flags);
}

int
mkstemp(char *template)
{
	FAILSHIM_REAL(int, "mkstemp", char *);
	if (failshim_fails()) {
		errno = EMFILE;
		return -1;
	}
	return real(template);
}

int
pipe2(int fds[2], int flags)
{
	FAILSHIM_REAL(int, "pipe2", int *, int);
	if (failshim_fails()) {
		errno = EMFILE;
		return -1;
	}
	return real(fds, flags);
}
