/*
 * block.c - blocks of a stream (--pipe, --pipe-part): where to cut them,
 * and the reader that cuts them.
 *
 * The boundary finder is pure: a block is cut after the last record
 * boundary at or before --block bytes (looking back BLOCK_LOOKBACK at
 * most), or else after the first boundary past it, so a record is never
 * split.  A boundary is a place where --recend ends and --recstart begins.
 *
 * The reader cuts the stream only when the pool asks for a block, which it
 * does only when a slot is free: nothing is read ahead, and what is held is
 * the blocks of the running tasks plus the one being gathered.  A block
 * takes the reader's buffer as it is (the bytes are never copied); only the
 * start of the next record moves to a fresh buffer.  A pipe is read through
 * a libuv poll watcher, a regular file directly.  With --pipe-part the file
 * is not read at all but at the cuts: a block is a byte range, which the
 * feed splices from the file into the task's pipe.
 *
 * From a pipe, a block is streamed: its task starts at once with the head
 * (what was read past the last cut), then the reader splices the middle
 * from stdin into the task's pipe, unseen, and gathers only the tail, from
 * BLOCK_LOOKBACK before --block on, in memory to cut it there: cpmap copies
 * almost none of the bytes.  The next block waits for this one's cut.  A
 * block that must be kept whole (--retries, --round-robin) is read into
 * memory instead; one held for a retry past (jobs + 1) blocks in memory
 * goes to an unlinked file (block_hold) and is spliced back from there.
 *
 * block_feed.c writes a block to its task's stdin.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"

#define BLOCK_READ_SLACK 65536	/* room past --block for the last read */
#define BLOCK_PART_WINDOW 65536 /* --pipe-part: bytes scanned at a time */

/* ---- the boundary finder (pure) --------------------------------------- */

/* Is p (0 < p <= len) a boundary of data[0..len)? */
static bool
block_is_boundary(const char *data, size_t len, size_t p,
		  const struct block_separator *sep, bool eof)
{
	if (p == 0 || p < sep->end_len ||
	    memcmp(data + p - sep->end_len, sep->end, sep->end_len) != 0)
		return false;
	if (p == len)
		return eof || sep->start_len == 0;
	if (p + sep->start_len > len)
		return false; /* cannot tell yet */
	return memcmp(data + p, sep->start, sep->start_len) == 0;
}

/* The last boundary p in (floor, upto]; 0 if none. */
static size_t
block_last_boundary(const char *data, size_t len, size_t floor, size_t upto,
		    const struct block_separator *sep, bool eof)
{
	if (sep->end_len == 0 && sep->start_len == 0)
		return upto;
	while (upto > floor) {
		const char *hit;
		size_t p;

		if (sep->end_len > 0) {
			/* The last byte of recend is at p - 1. */
			hit = memrchr(data + floor, sep->end[sep->end_len - 1],
				      upto - floor);
			if (hit == NULL)
				return 0;
			p = (size_t)(hit - data) + 1;
		} else {
			/* The first byte of recstart is at p (p > floor). */
			size_t top = upto < len ? upto : len - 1;

			if (top <= floor)
				return 0;
			hit = memrchr(data + floor + 1, sep->start[0],
				      top - floor);
			if (hit == NULL)
				return 0;
			p = (size_t)(hit - data);
		}
		if (block_is_boundary(data, len, p, sep, eof))
			return p;
		upto = p - 1;
	}
	return 0;
}

size_t
block_next_boundary(const char *data, size_t len, size_t from,
		    const struct block_separator *sep, bool eof)
{
	size_t p = from > 0 ? from : 1;

	if (sep->end_len == 0 && sep->start_len == 0)
		return p <= len ? p : (eof ? len : 0);
	while (p <= len) {
		const char *hit;

		if (sep->end_len > 0) {
			size_t at = p - 1; /* where recend's last byte may be */

			if (p < sep->end_len)
				at = sep->end_len - 1;
			if (at >= len)
				break;
			hit = memchr(data + at, sep->end[sep->end_len - 1],
				     len - at);
			if (hit == NULL)
				break;
			p = (size_t)(hit - data) + 1;
		} else {
			if (p >= len)
				break;
			hit = memchr(data + p, sep->start[0], len - p);
			if (hit == NULL)
				break;
			p = (size_t)(hit - data);
		}
		if (block_is_boundary(data, len, p, sep, eof))
			return p;
		if (p >= len)
			break;
		if (p + sep->start_len > len && !eof)
			return 0; /* more data will tell */
		p++;
	}
	return eof && len >= from ? len : 0;
}

size_t
block_boundary_above(const char *data, size_t len, size_t want, size_t floor,
		     const struct block_separator *sep, bool eof)
{
	size_t p;

	if (want == 0)
		want = 1;
	if (floor >= want)
		floor = want - 1;
	if (len <= want)
		return eof ? len : 0;
	/* Decide only when a boundary at want could be seen: the cuts do
	 * not depend on how the stream was read. */
	if (!eof && len - want < sep->start_len)
		return 0;
	p = block_last_boundary(data, len, floor, want, sep, eof);
	if (p > 0)
		return p;
	return block_next_boundary(data, len, want + 1, sep, eof);
}

size_t
block_boundary(const char *data, size_t len, size_t want,
	       const struct block_separator *sep, bool eof)
{
	return block_boundary_above(
	    data, len, want, want > BLOCK_LOOKBACK ? want - BLOCK_LOOKBACK : 0,
	    sep, eof);
}

ssize_t
block_parse_separator(const char *spec, char *out)
{
	size_t n = 0;

	for (const char *s = spec; *s != '\0'; s++) {
		int c = (unsigned char)*s;

		if (c == '\\') {
			switch (*++s) {
			case 'n':
				c = '\n';
				break;
			case 't':
				c = '\t';
				break;
			case 'r':
				c = '\r';
				break;
			case '0':
				c = '\0';
				break;
			case '\\':
				c = '\\';
				break;
			case 'x': {
				char hex[3] = {0};
				char *end;

				if (s[1] == '\0' || s[2] == '\0')
					return -1;
				hex[0] = s[1];
				hex[1] = s[2];
				c = (int)strtol(hex, &end, 16);
				if (*end != '\0')
					return -1;
				s += 2;
				break;
			}
			default:
				return -1;
			}
		}
		out[n++] = (char)c;
	}
	return (ssize_t)n;
}

/* Blocks whose records are in memory (--pipe, not streamed), and how many
 * may be before a block held for a retry goes to a file instead. */
static unsigned block_in_memory, block_memory_limit = 3;

/* Forget b's records in memory. */
static void
block_drop_data(struct block *b)
{
	if (b->data != NULL && !b->streamed) {
		assert(block_in_memory > 0);
		block_in_memory--;
	}
	free(b->data);
	b->data = NULL;
}

/* An unlinked file in $TMPDIR holding b's records, or -1. */
static int
block_spill_file(const struct block *b)
{
	const char *dir = getenv("TMPDIR");
	char *path;
	int fd;

	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		path = xasprintf("%s/cpmap-block.XXXXXX", dir);
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			(void)unlink(path);
		free(path);
	}
	if (fd < 0)
		return -1;
	for (uint64_t at = 0; at < b->length;) {
		ssize_t n = write(fd, b->data + at, (size_t)(b->length - at));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return -1;
		}
		at += (uint64_t)n;
	}
	return fd;
}

void
block_hold(struct block *b)
{
	static bool warned;
	int fd;

	if (b->data == NULL || b->streamed ||
	    block_in_memory <= block_memory_limit)
		return;
	if ((fd = block_spill_file(b)) < 0) {
		if (!warned)
			log_warn("cannot keep a block for its retry in a "
				 "file (%s): it stays in memory",
				 strerror(errno));
		warned = true;
		return;
	}
	block_drop_data(b);
	b->fd = fd;
	b->spilled = true;
}

void
block_release(struct block *b)
{
	/* A streamed block whose task never fed it: the stream goes on. */
	block_reader_abandon(b->source, b);
	block_drop_data(b);
	free(b->tail);
	b->tail = NULL;
	if (b->spilled) {
		close(b->fd);
		b->fd = -1;
		b->spilled = false;
	}
}

void
block_free(struct block *b)
{
	if (b == NULL)
		return;
	roundrobin_stream_free(b->stream);
	block_release(b);
	free(b->header);
	free(b);
}

/* ---- the reader ------------------------------------------------------- */

struct block_reader {
	const struct options *opts;
	struct block_separator sep;
	size_t want; /* --block */
	char *name;  /* for messages */
	int fd;
	bool close_fd;
	bool part; /* --pipe-part: blocks are ranges of the file */
	uv_poll_t poll;
	bool pollable, poll_open, polling;
	void (*ready)(void *arg);
	void *arg;
	char *buf; /* the block being gathered: buf[0..len) */
	size_t len, cap;
	size_t fill; /* read until len reaches this, then try to cut */
	bool eof;
	bool stopped;
	int error;
	uint64_t offset;      /* of buf[0] in the stream */
	uint64_t number;      /* blocks cut so far */
	uint64_t bytes;	      /* read so far (--pipe-part: handed out) */
	uint64_t size;	      /* --pipe-part: the file's */
	unsigned header_left; /* --header lines still to gather */
	struct buf header;
	struct roundrobin *rr;	    /* --round-robin: who takes the blocks */
	size_t cut_want, cut_floor; /* where to cut buf: as block_boundary */
	/* A pipe whose blocks are mostly spliced, unseen, to their tasks:
	 * a block's head (what was read past the last cut) is written from
	 * memory, then its middle spliced, then its tail, from BLOCK_LOOKBACK
	 * before --block on, is gathered in buf and cut there. */
	bool splice;
	struct block *open;	 /* the block whose bytes still come from fd */
	bool draining;		 /* ... its task is gone: read and dropped */
	uint64_t blind_left;	 /* ... bytes to splice before its tail */
	bool in_tail;		 /* ... its tail is being gathered in buf */
	void (*wake)(void *arg); /* called once fd is readable */
	void *wake_arg;
	bool take_waiting; /* the pool waits for the open block's end */
	char *scratch;	   /* a drained block's bytes go here */
};

static void block_poll_cb(uv_poll_t *handle, int status, int events);

/* Bytes to gather before a cut can be decided: the block, and a record
 * start past it. */
static size_t
block_fill(const struct block_reader *r)
{
	return r->cut_want + r->sep.start_len + 1;
}

/* Read once; false at EOF or an error (then eof is set), or EAGAIN. */
static bool
block_read(struct block_reader *r)
{
	ssize_t n;

	if (r->fill <= r->len)
		r->fill = r->len + 4096; /* the --header lines go on */
	if (r->cap < r->fill) {
		size_t cap = r->cap;

		while (cap < r->fill)
			cap = cap < 4096 ? 4096 : cap * 2;
		r->buf = xrealloc(r->buf, cap);
		r->cap = cap;
	}
	/* Never past what the block needs: the rest stays unread. */
	do
		n = read(r->fd, r->buf + r->len, r->fill - r->len);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return false;
	if (n <= 0) {
		if (n < 0) {
			r->error = errno;
			log_warn("reading %s: %s", r->name, strerror(errno));
		}
		r->eof = true;
		return false;
	}
	r->len += (size_t)n;
	r->bytes += (uint64_t)n;
	return true;
}

/* The --header lines from the front of the buffer: true once they are
 * all there (or the stream ended first). */
static bool
block_take_header(struct block_reader *r)
{
	size_t at = 0;

	while (r->header_left > 0) {
		const char *nl =
		    r->len > at ? memchr(r->buf + at, '\n', r->len - at) : NULL;

		if (nl == NULL) {
			if (!r->eof)
				return false;
			at = r->len;
			break;
		}
		at = (size_t)(nl - r->buf) + 1;
		r->header_left--;
	}
	r->header_left = 0;
	if (at == 0)
		return true; /* empty input */
	buf_append(&r->header, r->buf, at);
	memmove(r->buf, r->buf + at, r->len - at);
	r->len -= at;
	r->offset += at;
	return true;
}

/* Number a block cut from the stream and give it the --header lines. */
static struct block *
block_number(struct block_reader *r, struct block *b)
{
	b->number = ++r->number;
	if (r->header.len > 0) {
		b->header = xmemdup(r->header.data, r->header.len);
		b->header_len = r->header.len;
	}
	return b;
}

struct input *
block_input(struct block *b, const char *name)
{
	struct input *in = xcalloc(1, sizeof *in);

	in->block = b;
	in->number = b->number;
	in->text = xasprintf("%s %llu", name, (unsigned long long)b->number);
	in->len = strlen(in->text);
	return in;
}

/* Cut a block off the front of the buffer, which the block takes. */
static struct block *
block_cut(struct block_reader *r, size_t cut)
{
	struct block *b = xcalloc(1, sizeof *b);
	size_t rest = r->len - cut;
	size_t cap = r->want + BLOCK_READ_SLACK;

	b->offset = r->offset;
	b->length = cut;
	b->data = r->buf;
	b->fd = -1;
	block_in_memory++;
	if (cap < rest + BLOCK_READ_SLACK)
		cap = rest + BLOCK_READ_SLACK;
	r->buf = xmalloc(cap);
	r->cap = cap;
	memcpy(r->buf, b->data + cut, rest);
	r->len = rest;
	r->offset += cut;
	r->fill = block_fill(r);
	return block_number(r, b);
}

/* --pipe-part: the next range, found by scanning the file at the cut. */
static int
block_next_part(struct block_reader *r, struct block **out)
{
	uint64_t start = r->offset, target = start + r->want, cut = 0;
	char window[BLOCK_PART_WINDOW];
	size_t from;
	uint64_t at;
	struct block *b;

	if (start >= r->size)
		return -1;
	if (target >= r->size) {
		cut = r->size;
	} else {
		/* Look from recend's length before the target on. */
		at = target - r->sep.end_len > start ? target - r->sep.end_len
						     : start;
		from = (size_t)(target - at);
		while (cut == 0) {
			ssize_t n;
			bool eof;
			size_t p;

			do
				n = pread(r->fd, window, sizeof window,
					  (off_t)at);
			while (n < 0 && errno == EINTR);
			if (n < 0) {
				r->error = errno;
				log_warn("reading %s: %s", r->name,
					 strerror(errno));
				return -1;
			}
			eof = at + (uint64_t)n >= r->size || n == 0;
			p = block_next_boundary(window, (size_t)n, from,
						&r->sep, eof);
			if (p > 0) {
				cut = at + p;
			} else if (eof) {
				cut = r->size;
			} else {
				/* Every p up to n - start_len was seen. */
				uint64_t next =
				    at + (uint64_t)n - r->sep.start_len + 1;

				at = next - r->sep.end_len;
				from = r->sep.end_len;
			}
		}
	}
	b = xcalloc(1, sizeof *b);
	b->offset = start;
	b->length = cut - start;
	b->fd = r->fd;
	r->offset = cut;
	r->bytes = cut;
	*out = block_number(r, b);
	return 1;
}

/* --pipe-part: the header lines, read from the start of the file. */
static void
block_part_header(struct block_reader *r)
{
	char window[BLOCK_PART_WINDOW];
	uint64_t at = 0;

	while (r->header_left > 0) {
		ssize_t n = pread(r->fd, window, sizeof window, (off_t)at);
		size_t i = 0;

		if (n <= 0)
			break;
		while (r->header_left > 0 && i < (size_t)n) {
			const char *nl =
			    memchr(window + i, '\n', (size_t)n - i);

			if (nl == NULL) {
				i = (size_t)n;
				break;
			}
			i = (size_t)(nl - window) + 1;
			r->header_left--;
		}
		buf_append(&r->header, window, i);
		at += i;
	}
	r->header_left = 0;
	r->offset = at;
}

struct block_reader *
block_reader_start(uv_loop_t *loop, const struct options *opts,
		   const char *path, char **cause)
{
	struct block_reader *r = xcalloc(1, sizeof *r);
	struct stat st;
	int flags;

	r->opts = opts;
	r->sep = (struct block_separator){.end = opts->recend,
					  .end_len = opts->recend_len,
					  .start = opts->recstart,
					  .start_len = opts->recstart_len};
	r->want = opts->block_size > 0 ? (size_t)opts->block_size : 1;
	/* The slots' blocks and one held for a retry (the one gathered is
	 * the reader's): about (jobs + 2) blocks in all. */
	block_memory_limit = opts->jobs + 1;
	r->cut_want = r->want;
	r->cut_floor = r->want > BLOCK_LOOKBACK ? r->want - BLOCK_LOOKBACK : 0;
	r->fill = block_fill(r);
	r->header_left = opts->header_lines;
	if (opts->round_robin) {
		r->rr = roundrobin_create(loop, r, opts->jobs);
		r->ready = roundrobin_reader_ready;
		r->arg = r->rr;
	}
	if (path == NULL || strcmp(path, "-") == 0) {
		r->fd = STDIN_FILENO;
		r->name = xstrdup("standard input");
	} else {
		r->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (r->fd < 0) {
			*cause = xasprintf("%s: %s", path, strerror(errno));
			free(r);
			return NULL;
		}
		r->close_fd = true;
		r->name = xstrdup(path);
	}
	if (opts->pipe_part) {
		if (fstat(r->fd, &st) < 0 || !S_ISREG(st.st_mode) ||
		    lseek(r->fd, 0, SEEK_CUR) < 0) {
			*cause = xasprintf("--pipe-part: %s is not a regular "
					   "file (use --pipe)",
					   r->name);
			block_reader_free(r);
			return NULL;
		}
		r->part = true;
		r->size = (uint64_t)st.st_size;
		block_part_header(r);
		return r;
	}
	/* As input.c: pipes are polled, with their flags left as found. */
	flags = fcntl(r->fd, F_GETFL);
	if (uv_poll_init(loop, &r->poll, r->fd) == 0) {
		r->poll.data = r;
		r->pollable = r->poll_open = true;
		if (flags >= 0)
			(void)fcntl(r->fd, F_SETFL, flags);
		/* Fewer, larger reads (a pipe; harmless to refuse). */
		(void)fcntl(r->fd, F_SETPIPE_SZ, BLOCK_PIPE_SIZE);
	}
	/* A pipe's blocks are spliced to their tasks, unless a block must
	 * be kept whole (--retries, --round-robin) or is not fed at all. */
	r->splice = r->pollable && fstat(r->fd, &st) == 0 &&
		    S_ISFIFO(st.st_mode) && opts->retries == 0 &&
		    !opts->round_robin && !opts->dry_run &&
		    r->want > 2 * BLOCK_LOOKBACK + r->sep.end_len;
	return r;
}

void
block_reader_set_ready(struct block_reader *r, void (*ready)(void *arg),
		       void *arg)
{
	if (r->rr != NULL) {
		roundrobin_set_ready(r->rr, ready, arg);
		return;
	}
	r->ready = ready;
	r->arg = arg;
}

/* Is there a block to cut now?  Its end, or 0. */
static size_t
block_ready_cut(struct block_reader *r)
{
	size_t cut;

	if (r->header_left > 0 && !block_take_header(r))
		return 0;
	if (r->len < r->fill && !r->eof)
		return 0;
	cut = block_boundary_above(r->buf, r->len, r->cut_want, r->cut_floor,
				   &r->sep, r->eof);
	if (cut == 0 && !r->eof)
		r->fill = r->len * 2; /* a record larger than the block */
	return cut;
}

/* Watch fd for the next readiness (block_poll_cb says who hears it). */
static void
block_watch(struct block_reader *r)
{
	if (!r->polling && r->poll_open) {
		uv_poll_start(&r->poll, UV_READABLE, block_poll_cb);
		r->polling = true;
	}
}

/* Can fd be read without blocking (data, or its end)? */
static bool
block_readable(const struct block_reader *r)
{
	struct pollfd p = {.fd = r->fd, .events = POLLIN};

	return poll(&p, 1, 0) > 0;
}

/* Where a block's tail starts: BLOCK_LOOKBACK and recend before --block
 * (the cut is looked for after it). */
static size_t
block_tail_at(const struct block_reader *r)
{
	return r->want - BLOCK_LOOKBACK - r->sep.end_len;
}

/* A block whose middle will be spliced: it starts with what was read past
 * the last cut. */
static struct block *
block_open(struct block_reader *r)
{
	struct block *b = xcalloc(1, sizeof *b);

	b->offset = r->offset;
	b->streamed = true;
	b->head_len = r->len;
	b->data = xmemdup(r->buf, r->len);
	b->fd = -1;
	b->source = r;
	r->offset += r->len;
	r->blind_left = block_tail_at(r) - r->len;
	r->len = 0;
	r->open = b;
	r->in_tail = false;
	return block_number(r, b);
}

/* The open block is cut at buf[cut]: its tail is buf[0..cut). */
static void
block_close(struct block_reader *r, size_t cut)
{
	struct block *b = r->open;

	if (b != NULL) {
		b->tail = cut > 0 ? xmemdup(r->buf, cut) : NULL;
		b->tail_len = cut;
		b->length = b->head_len + b->spliced + cut;
		b->source = NULL;
	}
	memmove(r->buf, r->buf + cut, r->len - cut);
	r->len -= cut;
	r->offset += cut;
	r->open = NULL;
	r->draining = false;
	r->in_tail = false;
	r->blind_left = 0;
	r->wake = NULL;
	r->cut_want = r->want;
	r->cut_floor = r->want > BLOCK_LOOKBACK ? r->want - BLOCK_LOOKBACK : 0;
	r->fill = block_fill(r);
	if (r->stopped) {
		block_reader_stop(r); /* it waited for this block */
	} else if (r->take_waiting) {
		/* The pool hears of it in a turn of its own. */
		block_watch(r);
	}
}

int
block_reader_move(struct block_reader *r, int fd, uint64_t *written,
		  void (*wake)(void *arg), void *arg)
{
	*written = 0;
	assert(r->open != NULL || r->draining);
	if (r->blind_left > 0) {
		size_t n = r->blind_left > BLOCK_PIPE_SIZE
			       ? BLOCK_PIPE_SIZE
			       : (size_t)r->blind_left;
		ssize_t got;

		if (fd >= 0) {
			got = splice(r->fd, NULL, fd, NULL, n,
				     SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		} else if (!block_readable(r)) {
			got = -1;
			errno = EAGAIN;
		} else {
			if (r->scratch == NULL)
				r->scratch = xmalloc(BLOCK_PART_WINDOW);
			got =
			    read(r->fd, r->scratch,
				 n < BLOCK_PART_WINDOW ? n : BLOCK_PART_WINDOW);
		}
		if (got > 0) {
			r->blind_left -= (uint64_t)got;
			r->offset += (uint64_t)got;
			r->bytes += (uint64_t)got;
			if (r->open != NULL)
				r->open->spliced += (uint64_t)got;
			if (fd >= 0)
				*written = (uint64_t)got;
			return BLOCK_MOVE_MORE;
		}
		if (got < 0 && errno == EINTR)
			return BLOCK_MOVE_MORE;
		if (got < 0 && errno == EAGAIN) {
			struct pollfd p[2] = {{.fd = r->fd, .events = POLLIN},
					      {.fd = fd, .events = POLLOUT}};

			(void)poll(p, fd >= 0 ? 2 : 1, 0);
			if (fd >= 0 && p[1].revents == 0)
				return BLOCK_MOVE_WAIT_TASK;
			if (p[0].revents != 0) /* (a race): try again */
				return fd >= 0 ? BLOCK_MOVE_WAIT_TASK
					       : BLOCK_MOVE_MORE;
			r->wake = wake;
			r->wake_arg = arg;
			block_watch(r);
			return BLOCK_MOVE_WAIT_STREAM;
		}
		if (got < 0 && errno == EPIPE && fd >= 0)
			return BLOCK_MOVE_FAILED; /* the task is gone */
		if (got < 0) {
			/* The stream cannot be read: it ends here. */
			r->error = errno;
			log_warn("reading %s: %s", r->name, strerror(errno));
		}
		r->eof = true; /* the stream ended inside the block */
		r->blind_left = 0;
	}
	if (!r->in_tail) {
		r->in_tail = true;
		r->cut_want = BLOCK_LOOKBACK + r->sep.end_len;
		r->cut_floor = r->sep.end_len;
		r->fill = block_fill(r);
	}
	for (;;) {
		size_t cut = block_ready_cut(r);

		if (cut > 0 || r->eof) {
			block_close(r, cut);
			return BLOCK_MOVE_CUT;
		}
		if (!block_readable(r)) {
			r->wake = wake;
			r->wake_arg = arg;
			block_watch(r);
			return BLOCK_MOVE_WAIT_STREAM;
		}
		(void)block_read(r);
	}
}

/* Read the abandoned block's bytes to its end, and drop them. */
static void
block_drain_cb(void *arg)
{
	struct block_reader *r = arg;
	uint64_t written;

	while (r->draining && block_reader_move(r, -1, &written, block_drain_cb,
						r) == BLOCK_MOVE_MORE)
		;
}

void
block_reader_abandon(struct block_reader *r, const struct block *b)
{
	if (r == NULL || r->open != b)
		return;
	r->open->source = NULL;
	r->open->length = r->open->head_len + r->open->spliced; /* so far */
	r->open = NULL;
	r->draining = true;
	r->wake = NULL; /* the feed's, which is going */
	if (r->stopped) {
		block_close(r, 0);
		return;
	}
	/* The stream goes on after the block: read on to its cut. */
	block_drain_cb(r);
}

int
block_reader_take(struct block_reader *r, struct block **out)
{
	size_t cut;

	if (r->stopped)
		return -1;
	if (r->part)
		return block_next_part(r, out);
	if (r->open != NULL || r->draining) {
		r->take_waiting = true; /* block_close calls back */
		return 0;
	}
	r->take_waiting = false;
	if (r->splice && r->header_left == 0 && !r->eof) {
		if (r->len == 0) {
			/* A byte at least, or the end, before a block. */
			if (!block_readable(r)) {
				r->take_waiting = true;
				block_watch(r);
				return 0;
			}
			r->fill = BLOCK_PART_WINDOW;
			(void)block_read(r);
			r->fill = block_fill(r);
		}
		if (r->len > 0 && r->len < block_tail_at(r) && !r->eof) {
			*out = block_open(r);
			return 1;
		}
	}
	for (;;) {
		if ((cut = block_ready_cut(r)) > 0) {
			*out = block_cut(r, cut);
			return 1;
		}
		if (r->eof)
			return -1;
		if (r->pollable) {
			if (!r->polling) {
				uv_poll_start(&r->poll, UV_READABLE,
					      block_poll_cb);
				r->polling = true;
			}
			return 0;
		}
		(void)block_read(r);
	}
}

int
block_reader_next(struct block_reader *r, struct input **out)
{
	struct block *b;
	int rc;

	if (r->rr != NULL)
		return roundrobin_next(r->rr, out);
	if ((rc = block_reader_take(r, &b)) > 0)
		*out = block_input(b, "block");
	return rc;
}

static void
block_poll_cb(uv_poll_t *handle, int status, int events)
{
	struct block_reader *r = handle->data;

	(void)events;
	if (r->wake != NULL || (r->take_waiting && status >= 0)) {
		/* A block's feed or drain waits for the stream, or the pool
		 * for the next block. */
		void (*wake)(void *arg) = r->wake;

		uv_poll_stop(&r->poll);
		r->polling = false;
		r->wake = NULL;
		if (wake != NULL) {
			wake(r->wake_arg);
		} else {
			r->take_waiting = false;
			r->ready(r->arg);
		}
		return;
	}
	if (status < 0) {
		log_warn("reading %s: %s", r->name, uv_strerror(status));
		r->error = EIO;
		r->eof = true;
	} else {
		(void)block_read(r);
	}
	/* One read per readiness, until a block is there. */
	if (r->header_left > 0 && !block_take_header(r))
		return;
	if (!r->eof && r->len < r->fill)
		return;
	uv_poll_stop(&r->poll);
	r->polling = false;
	r->ready(r->arg);
}

bool
block_reader_exhausted(const struct block_reader *r)
{
	bool read_all =
	    r->part ? r->offset >= r->size
		    : r->eof && r->len == 0 && r->open == NULL && !r->draining;

	if (r->stopped)
		return true;
	return r->rr != NULL ? roundrobin_exhausted(r->rr, read_all) : read_all;
}

void
block_reader_bytes(const struct block_reader *r, uint64_t *read,
		   uint64_t *total)
{
	*read = r->bytes;
	*total = r->part ? r->size : 0;
}

size_t
block_reader_block_size(const struct block_reader *r)
{
	return r->want;
}

int
block_reader_error(const struct block_reader *r)
{
	return r->error;
}

static void
block_poll_close_cb(uv_handle_t *handle)
{
	struct block_reader *r = handle->data;

	r->poll_open = false;
	if (r->stopped && r->name == NULL)
		free(r); /* freed while the handle closed */
}

void
block_reader_stop(struct block_reader *r)
{
	if (r == NULL)
		return;
	r->stopped = true;
	roundrobin_stop(r->rr);
	if (r->open != NULL)
		return; /* its task gets the whole block (block_close) */
	if (r->poll_open && !uv_is_closing((uv_handle_t *)&r->poll)) {
		uv_poll_stop(&r->poll);
		r->polling = false;
		uv_close((uv_handle_t *)&r->poll, block_poll_close_cb);
	}
}

void
block_reader_free(struct block_reader *r)
{
	if (r == NULL)
		return;
	if (r->open != NULL)
		r->open->source = NULL; /* its task is gone by now */
	r->open = NULL;
	block_reader_stop(r);
	/* Blocks of --pipe-part read the file until their tasks end: it is
	 * closed only now. */
	if (r->close_fd)
		close(r->fd);
	roundrobin_free(r->rr);
	r->rr = NULL;
	free(r->scratch);
	free(r->buf);
	buf_free(&r->header);
	free(r->name);
	r->name = NULL;
	if (!r->poll_open)
		free(r);
}
