/*
 * block_feed.c - feed a block to a task's stdin without blocking the loop.
 *
 * The --header lines, then the records: lent from memory to the pipe
 * (vmsplice), spliced from the file (--pipe-part, or a block kept in a
 * file for its retry), or, for a block streamed from a pipe, the head from
 * memory, the middle moved by the reader from the stream (block.c), then
 * the tail.  A poll watcher waits for room in the pipe.  With
 * --round-robin the feed asks roundrobin.c for the next block instead of
 * closing the pipe.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"

#define BLOCK_FEED_WINDOW 65536 /* a file's bytes copied at a time */

/* Where a block's records start in its file (--pipe-part, or spilled). */
static uint64_t
block_file_offset(const struct block *b)
{
	return b->spilled ? 0 : b->offset;
}

struct block_feed {
	uv_poll_t poll;
	int fd;			   /* the write end of the task's stdin */
	const struct block *block; /* NULL while a stream waits for one */
	struct roundrobin_stream *stream; /* --round-robin, or NULL */
	uint64_t done; /* bytes written: header, then records */
	bool polling;
	bool finished;	  /* closing, or closed */
	bool closed;	  /* the handle is closed and fd with it */
	bool stopped;	  /* the job let go: free once closed */
	bool no_splice;	  /* the file cannot be spliced: copy it */
	bool no_vmsplice; /* the block cannot be: write it */
	char *bounce;	  /* ... through this */
	size_t bounce_len, bounce_at;
};

static void block_feed_poll_cb(uv_poll_t *handle, int status, int events);

static void
block_feed_close_cb(uv_handle_t *handle)
{
	struct block_feed *f = handle->data;

	close(f->fd);
	free(f->bounce);
	f->bounce = NULL;
	f->closed = true;
	if (f->stopped)
		free(f);
}

/* Done writing (or the reader went away): EOF for the task. */
static void
block_feed_finish(struct block_feed *f)
{
	if (f->finished)
		return;
	f->finished = true;
	uv_close((uv_handle_t *)&f->poll, block_feed_close_cb);
}

/* The records' part of the block from the file, without splice. */
static ssize_t
block_feed_copy(struct block_feed *f, uint64_t at, size_t n)
{
	ssize_t w;

	if (f->bounce_at == f->bounce_len) {
		ssize_t got;

		if (f->bounce == NULL)
			f->bounce = xmalloc(BLOCK_FEED_WINDOW);
		if (n > BLOCK_FEED_WINDOW)
			n = BLOCK_FEED_WINDOW;
		do
			got = pread(f->block->fd, f->bounce, n,
				    (off_t)(block_file_offset(f->block) + at));
		while (got < 0 && errno == EINTR);
		if (got <= 0)
			return got < 0 ? -1 : (errno = EIO, -1);
		f->bounce_len = (size_t)got;
		f->bounce_at = 0;
	}
	w = write(f->fd, f->bounce + f->bounce_at,
		  f->bounce_len - f->bounce_at);
	if (w > 0)
		f->bounce_at += (size_t)w;
	return w;
}

/* Start on the next block of a stream. */
static void
block_feed_begin(struct block_feed *f, const struct block *b)
{
	f->block = b;
	f->done = 0;
	f->bounce_len = f->bounce_at = 0;
}

static void block_feed_step(struct block_feed *f);

/* The stream has bytes for the block again. */
static void
block_feed_wake(void *arg)
{
	struct block_feed *f = arg;

	if (!f->finished)
		block_feed_step(f);
}

/* What a write or splice of n bytes to the task's pipe means for the feed
 * (errno tells, when n < 0). */
enum feed_outcome {
	FEED_ON,   /* bytes went in, or a signal came: go on */
	FEED_WAIT, /* the pipe is full: wait for room */
	FEED_STOP, /* the task stopped reading, or the write failed */
};

static enum feed_outcome
block_feed_wrote(struct block_feed *f, ssize_t n)
{
	if (n > 0) {
		f->done += (uint64_t)n;
		return FEED_ON;
	}
	if (n < 0 && errno == EINTR)
		return FEED_ON;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		if (!f->polling) {
			uv_poll_start(&f->poll, UV_WRITABLE,
				      block_feed_poll_cb);
			f->polling = true;
		}
		return FEED_WAIT;
	}
	return FEED_STOP;
}

/*
 * A streamed block: the --header lines and the head from memory, the
 * middle spliced from the stream by the reader, then the tail, from
 * memory once the reader has cut the block.
 */
static void
block_feed_streamed(struct block_feed *f)
{
	const struct block *b = f->block;

	for (;;) {
		uint64_t head_end = b->header_len + b->head_len;
		uint64_t tail_at = head_end + b->spliced;
		ssize_t n;

		if (f->done < b->header_len) {
			n = write(f->fd, b->header + f->done,
				  b->header_len - (size_t)f->done);
		} else if (f->done < head_end) {
			n = write(f->fd, b->data + (f->done - b->header_len),
				  (size_t)(head_end - f->done));
		} else if (b->source != NULL) {
			uint64_t moved;
			int rc = block_reader_move(b->source, f->fd, &moved,
						   block_feed_wake, f);

			f->done += moved;
			if (rc == BLOCK_MOVE_MORE || rc == BLOCK_MOVE_CUT)
				continue;
			if (rc == BLOCK_MOVE_WAIT_STREAM) {
				if (f->polling) {
					uv_poll_stop(&f->poll);
					f->polling = false;
				}
				return;
			}
			n = -1;
			if (rc == BLOCK_MOVE_WAIT_TASK)
				errno = EAGAIN;
		} else if (f->done < tail_at + b->tail_len) {
			n = write(f->fd, b->tail + (f->done - tail_at),
				  (size_t)(tail_at + b->tail_len - f->done));
		} else {
			block_feed_finish(f);
			return;
		}
		switch (block_feed_wrote(f, n)) {
		case FEED_ON:
			continue;
		case FEED_WAIT:
			return;
		case FEED_STOP:
			break;
		}
		/* The task stopped reading (it tells by its exit): the
		 * reader reads the rest of the block itself. */
		block_reader_abandon(b->source, b);
		block_feed_finish(f);
		return;
	}
}

/* Write as much as the pipe takes; wait for room, or finish. */
static void
block_feed_step(struct block_feed *f)
{
	if (f->block != NULL && f->block->streamed) {
		block_feed_streamed(f);
		return;
	}
	for (;;) {
		const struct block *b = f->block;
		uint64_t total = b->header_len + b->length;
		ssize_t n;

		if (f->done >= total && f->stream != NULL) {
			/* --round-robin: the next block, or wait, or end. */
			bool end = false;
			const struct block *next =
			    roundrobin_fed(f->stream, &end);

			if (next != NULL) {
				block_feed_begin(f, next);
				continue;
			}
			f->block = NULL;
			if (end) {
				block_feed_finish(f);
			} else if (f->polling) {
				uv_poll_stop(&f->poll);
				f->polling = false;
			}
			return;
		}
		if (f->done >= total) {
			block_feed_finish(f);
			return;
		}
		if (f->done < b->header_len) {
			n = write(f->fd, b->header + f->done,
				  b->header_len - (size_t)f->done);
		} else {
			uint64_t at = f->done - b->header_len;
			uint64_t left = b->length - at;
			size_t chunk =
			    left > (1u << 30) ? (1u << 30) : (size_t)left;

			if (b->data != NULL && !f->no_vmsplice) {
				/* The pages go to the pipe, uncopied: the
				 * block is not touched until its task has
				 * ended (block_release). */
				struct iovec iov = {b->data + at, chunk};

				n = vmsplice(f->fd, &iov, 1, SPLICE_F_NONBLOCK);
				if (n < 0 &&
				    (errno == EINVAL || errno == ENOSYS)) {
					f->no_vmsplice = true;
					continue;
				}
			} else if (b->data != NULL) {
				n = write(f->fd, b->data + at, chunk);
			} else if (!f->no_splice) {
				loff_t off =
				    (loff_t)(block_file_offset(b) + at);

				n = splice(b->fd, &off, f->fd, NULL, chunk,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
				if (n < 0 &&
				    (errno == EINVAL || errno == ENOSYS)) {
					f->no_splice = true;
					continue;
				}
				if (n == 0) {
					errno = EIO; /* the file shrank */
					n = -1;
				}
			} else {
				n = block_feed_copy(f, at, chunk);
				if (n > 0) {
					f->done += (uint64_t)n;
					continue;
				}
			}
		}
		switch (block_feed_wrote(f, n)) {
		case FEED_ON:
			continue;
		case FEED_WAIT:
			return;
		case FEED_STOP:
			break;
		}
		/* EPIPE: the task stopped reading; it tells by its exit.
		 * Anything else: the task sees a short block, and fails. */
		if (errno != EPIPE)
			log_warn("feeding block %llu: %s",
				 (unsigned long long)b->number,
				 strerror(errno));
		block_feed_finish(f);
		return;
	}
}

static void
block_feed_poll_cb(uv_poll_t *handle, int status, int events)
{
	struct block_feed *f = handle->data;

	(void)events;
	if (status < 0) {
		block_feed_finish(f);
		return;
	}
	block_feed_step(f);
}

struct block_feed *
block_feed_start(uv_loop_t *loop, int fd, const struct block *b)
{
	struct block_feed *f = xcalloc(1, sizeof *f);
	int rc;

	f->fd = fd;
	f->block = b;
	if (b->stream != NULL) {
		/* --round-robin: blocks are freed once written, so they are
		 * copied into the pipe, never lent to it (vmsplice). */
		f->stream = b->stream;
		f->no_vmsplice = true;
		f->block = roundrobin_attach(f->stream, f);
	}
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	/* A streamed block goes whole into a pipe that holds it, where the
	 * system allows one (fs.pipe-max-size): then the next block is cut,
	 * and its task started, while this one's task reads.  The pipe holds
	 * the stream's pages, moved, not copies. */
	if (!b->streamed || b->source == NULL ||
	    fcntl(fd, F_SETPIPE_SZ, (int)block_reader_block_size(b->source)) <
		0)
		(void)fcntl(fd, F_SETPIPE_SZ, BLOCK_PIPE_SIZE);
	if ((rc = uv_poll_init(loop, &f->poll, fd)) != 0)
		fatal("cannot watch a pipe: %s", uv_strerror(rc));
	f->poll.data = f;
	block_feed_step(f);
	return f;
}

void
block_feed_give(struct block_feed *f, const struct block *b)
{
	assert(f->block == NULL && !f->finished);
	block_feed_begin(f, b);
	block_feed_step(f);
}

void
block_feed_end(struct block_feed *f)
{
	assert(f->block == NULL);
	block_feed_finish(f);
}

void
block_feed_stop(struct block_feed *f)
{
	if (f == NULL)
		return;
	if (f->block != NULL && f->block->streamed)
		block_reader_abandon(f->block->source, f->block);
	if (f->stream != NULL) {
		/* The task ended: what became of the block being written? */
		roundrobin_detach(f->stream, f->block != NULL ? f->done : 0);
		f->stream = NULL;
	}
	f->stopped = true;
	if (f->closed) {
		free(f);
		return;
	}
	block_feed_finish(f);
}
