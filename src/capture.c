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

#define CAPTURE_MEMORY_LIMIT ((size_t)1 << 20)	 /* bytes per capture */
#define CAPTURE_MEMORY_BUDGET ((size_t)64 << 20) /* bytes for them all */

struct capture {
	int fd;		   /* the spill file, or -1 */
	off_t file_size;   /* bytes in the spill file, always first */
	struct buf memory; /* the bytes after those (all of them, unspilled) */
	size_t size;	   /* bytes appended in all */
	int error;	   /* a spill failed: keep everything in memory */
};

static size_t capture_memory_used; /* bytes in memory, all captures */
static int capture_first_failure;  /* errno of the first failed spill */

int
capture_failure(void)
{
	return capture_first_failure;
}

/* A spill failed: keep the bytes in memory, and tell the pool. */
static void
capture_failed(struct capture *c, int error)
{
	if (capture_first_failure == 0)
		log_warn("cannot spill output to a temporary file: %s",
			 strerror(error));
	if (capture_first_failure == 0)
		capture_first_failure = error;
	c->error = error;
}

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
	int rc;

	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	path = xasprintf("%s/cpmap.XXXXXX", dir);
	c->fd = mkostemp(path, O_CLOEXEC);
	if (c->fd < 0) {
		capture_failed(c, errno);
		free(path);
		return;
	}
	(void)unlink(path);
	free(path);
	if ((rc = io_write_all(c->fd, c->memory.data, c->memory.len)) < 0) {
		capture_failed(c, -rc);
		close(c->fd);
		c->fd = -1;
		return;
	}
	c->file_size = (off_t)c->memory.len;
	capture_memory_used -= c->memory.cap;
	buf_free(&c->memory);
}

void
capture_append(struct capture *c, const char *data, size_t len)
{
	c->size += len;
	if (c->fd >= 0 && c->error == 0) {
		int rc = io_write_all(c->fd, data, len);

		if (rc == 0) {
			c->file_size += (off_t)len;
			return;
		}
		/* Undo a partial write; what follows stays in memory. */
		capture_failed(c, -rc);
		(void)ftruncate(c->fd, c->file_size);
	}
	size_t before = c->memory.cap;

	buf_append(&c->memory, data, len);
	capture_memory_used += c->memory.cap - before;
	if (c->fd < 0 && c->error == 0 &&
	    (c->memory.len > CAPTURE_MEMORY_LIMIT ||
	     capture_memory_used > CAPTURE_MEMORY_BUDGET))
		capture_spill(c);
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
	int rc;

	while (c->fd >= 0 && offset < c->file_size) {
		size_t want = sizeof block;
		ssize_t n;

		if ((off_t)want > c->file_size - offset)
			want = (size_t)(c->file_size - offset);
		n = pread(c->fd, block, want, offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		if ((rc = visit(arg, block, (size_t)n)) != 0)
			return rc;
		offset += n;
	}
	if (c->memory.len > 0)
		return visit(arg, c->memory.data, c->memory.len);
	return 0;
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
