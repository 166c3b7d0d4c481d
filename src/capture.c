/*
 * capture.c - one stream of a task's output, held until it can be written.
 *
 * Bytes are kept in memory up to a limit per capture and a budget shared by
 * all captures; past either, the capture spills to a temporary file in
 * $TMPDIR that is unlinked the moment it is created, so a 10 GB output needs
 * no 10 GB of memory and no file is ever left behind, whatever happens to
 * cpmap.  Only the captures waiting to be written can hold a file, and
 * --buffer bounds how many those are.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpmap.h"

#define CAPTURE_MEMORY_LIMIT (1024 * 1024)	 /* bytes per capture */
#define CAPTURE_MEMORY_BUDGET (64 * 1024 * 1024) /* bytes for them all */

struct capture {
	struct buf memory; /* the bytes, while not spilled */
	int fd;		   /* the spill file, or -1 */
	size_t size;	   /* bytes appended in all */
	int error;	   /* errno of a failed spill, sticky */
};

static size_t capture_memory_used; /* bytes in memory, all captures */

struct capture *
capture_create(void)
{
	struct capture *c = xcalloc(1, sizeof *c);

	c->fd = -1;
	return c;
}

/* Move the bytes to an unlinked temporary file. */
static void
capture_spill(struct capture *c)
{
	const char *dir = getenv("TMPDIR");
	char *path;

	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	path = xasprintf("%s/cpmap.XXXXXX", dir);
	c->fd = mkostemp(path, O_CLOEXEC);
	if (c->fd < 0) {
		c->error = errno;
		log_warn("cannot spill output to a temporary file in %s: %s",
			 dir, strerror(errno));
		free(path);
		return;
	}
	(void)unlink(path);
	free(path);
	if (io_write_all(c->fd, c->memory.data, c->memory.len) < 0)
		c->error = errno;
	capture_memory_used -= c->memory.cap;
	buf_free(&c->memory);
}

void
capture_append(struct capture *c, const char *data, size_t len)
{
	c->size += len;
	if (c->fd < 0 && c->error == 0) {
		size_t before = c->memory.cap;

		buf_append(&c->memory, data, len);
		capture_memory_used += c->memory.cap - before;
		if (c->memory.len > CAPTURE_MEMORY_LIMIT ||
		    capture_memory_used > CAPTURE_MEMORY_BUDGET)
			capture_spill(c);
		return;
	}
	if (c->fd >= 0 && c->error == 0) {
		int rc = io_write_all(c->fd, data, len);

		if (rc < 0) {
			c->error = -rc;
			log_warn("cannot spill output to a temporary file: %s",
				 strerror(-rc));
		}
	}
}

size_t
capture_size(const struct capture *c)
{
	return c->size;
}

int
capture_each(struct capture *c,
	     int (*visit)(void *arg, const char *data, size_t len), void *arg)
{
	char block[65536];
	off_t offset = 0;

	if (c->fd < 0)
		return c->memory.len > 0
			   ? visit(arg, c->memory.data, c->memory.len)
			   : 0;
	for (;;) {
		ssize_t n = pread(c->fd, block, sizeof block, offset);
		int rc;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		if ((rc = visit(arg, block, (size_t)n)) != 0)
			return rc;
		offset += n;
	}
}

static int
capture_write_piece(void *arg, const char *data, size_t len)
{
	return io_write_all(*(int *)arg, data, len);
}

int
capture_write(struct capture *c, int fd)
{
	return capture_each(c, capture_write_piece, &fd);
}

void
capture_free(struct capture *c)
{
	if (c == NULL)
		return;
	capture_memory_used -= c->memory.cap;
	buf_free(&c->memory);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}
