/*
 * input.c - inputs, read lazily from stdin, files and ::: arguments.
 *
 * Each source is a *group*: stdin or a file is read as a stream of records,
 * ::: arguments are a list.  With one group, each record is one input.  With
 * several, each input is one combination of one value per group: their
 * cartesian product (the last group varies fastest, as in GNU parallel), or
 * with --link the i-th value of each group, the shorter groups wrapping
 * around.  The first group of a product is streamed; the others repeat, so
 * they are read in full at start.
 *
 * A stream is read only when somebody asks for an input and none is
 * buffered: a pipe or terminal through a libuv poll watcher (one read per
 * readiness, so the descriptor is left blocking for whoever shares it), a
 * regular file directly.  That is what makes `tail -f | cpmap` work and keeps
 * memory independent of the length of the input.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"

#define INPUT_READ_SIZE 65536

struct header {
	char **names;
	size_t count;
};

struct stream {
	struct input_reader *reader;
	char *name; /* for messages */
	int fd;
	bool close_fd;
	struct buf data; /* data.data[start..len) is not yet taken */
	size_t start;
	bool eof;
	bool pollable;
	uv_poll_t poll;
	bool poll_open, polling;
	int error;	  /* errno of a failed read */
	uint64_t records; /* records seen, empty ones included */
};

struct group {
	bool linked;	       /* :::+: moves with the group before it */
	struct stream *stream; /* streamed, or NULL */
	char **values;	       /* materialized values */
	size_t *lens;
	size_t count;
};

struct input_reader {
	const struct options *opts;
	input_ready_cb ready;
	void *arg;
	struct group *groups;
	size_t group_count;
	struct header *header;
	bool header_pending;
	/* The state of the walk over the combinations. */
	size_t *index; /* per group: the next value to use */
	char *outer;   /* product: the current value of group 0 */
	size_t outer_len;
	bool have_outer;
	uint64_t combinations; /* inputs yielded so far */
	uint64_t total;	       /* inputs in all, when counted up front */
	bool total_known;
	bool finished;
	int error; /* errno of the first source that could not be read */
	struct block_reader *blocks; /* --pipe: the stream's blocks instead */
};

static void input_poll_cb(uv_poll_t *handle, int status, int events);

/* Split text into columns on the literal sep; columns point into text. */
static void
input_split_columns(struct input *in, const char *sep)
{
	size_t sep_len = strlen(sep), count = 1, i = 0;
	const char *p = in->text, *end = in->text + in->len, *hit;

	if (sep_len == 0)
		return;
	for (p = in->text; (hit = memmem(p, (size_t)(end - p), sep, sep_len));
	     p = hit + sep_len)
		count++;
	in->columns = xcalloc(count, sizeof *in->columns);
	in->column_lens = xcalloc(count, sizeof *in->column_lens);
	for (p = in->text;; p = hit + sep_len) {
		hit = memmem(p, (size_t)(end - p), sep, sep_len);
		in->columns[i] = (char *)(uintptr_t)p;
		in->column_lens[i++] = (size_t)((hit ? hit : end) - p);
		if (hit == NULL)
			break;
	}
	in->column_count = count;
}

/* Inputs whose text fits in this many bytes (its NUL too) are made from
 * spares of one size: most lines are short. */
#define INPUT_SPARE_TEXT 64

static struct spares input_spares;

/* An input, zeroed, with room for text of len bytes and a NUL after it. */
static struct input *
input_alloc(size_t len)
{
	struct input *in;

	if (len + 1 <= INPUT_SPARE_TEXT) {
		in = spares_take(&input_spares);
		if (in == NULL)
			in = xmalloc(sizeof *in + INPUT_SPARE_TEXT);
		memset(in, 0, sizeof *in);
		in->spare_sized = true;
	} else {
		in = xcalloc(1, sizeof *in + len + 1);
	}
	in->text = (char *)(in + 1);
	return in;
}

struct input *
input_create(const char *text, size_t len, const char *colsep, uint64_t number)
{
	struct input *in = input_alloc(len);

	memcpy(in->text, text, len);
	in->text[len] = '\0';
	in->len = len;
	in->number = number;
	if (colsep != NULL)
		input_split_columns(in, colsep);
	return in;
}

/* An input made of one value per group, joined by spaces in its text. */
static struct input *
input_combine(char *const *values, const size_t *lens, size_t count,
	      uint64_t number)
{
	size_t total = count;
	struct input *in;
	char *p;

	for (size_t i = 0; i < count; i++)
		total += lens[i];
	in = input_alloc(total);
	in->number = number;
	in->columns = xcalloc(count, sizeof *in->columns);
	in->column_lens = xcalloc(count, sizeof *in->column_lens);
	p = in->text;
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			*p++ = ' ';
		if (lens[i] > 0)
			memcpy(p, values[i], lens[i]);
		in->columns[i] = p;
		in->column_lens[i] = lens[i];
		p += lens[i];
	}
	*p = '\0';
	in->len = (size_t)(p - in->text);
	in->column_count = count;
	return in;
}

const char *
input_column(const struct input *in, size_t n, size_t *len)
{
	if (in->column_count == 0) {
		/* No columns: the whole input is column 1. */
		*len = n == 1 ? in->len : 0;
		return n == 1 ? in->text : "";
	}
	if (n == 0 || n > in->column_count) {
		*len = 0; /* as GNU parallel: a missing column is empty */
		return "";
	}
	*len = in->column_lens[n - 1];
	return in->columns[n - 1];
}

const char *
input_field(struct input *in, const char *name, size_t *len, char **cause)
{
	if (in->json != NULL)
		return json_input_field(in, name, len, cause);
	if (in->header != NULL) {
		for (size_t i = 0; i < in->header->count; i++)
			if (strcmp(in->header->names[i], name) == 0)
				return input_column(in, i + 1, len);
	}
	*cause = xasprintf("input %llu: no column named '%s' in the header",
			   (unsigned long long)in->number, name);
	return NULL;
}

void
input_free(struct input *in)
{
	if (in == NULL)
		return;
	if (in->columns != NULL) {
		if (in->owns_columns)
			for (size_t i = 0; i < in->column_count; i++)
				free(in->columns[i]);
		free(in->columns);
		free(in->column_lens);
	}
	if (in->json != NULL)
		json_release(in->json);
	if (in->field_text != NULL)
		free(in->field_text);
	if (in->error != NULL)
		free(in->error);
	if (in->block != NULL) {
		block_free(in->block);
		free(in->text); /* the block's name, made for it */
	}
	if (in->spare_sized)
		spares_keep(&input_spares, in);
	else
		free(in);
}

/* ---- streams ----------------------------------------------------------- */

static struct stream *
stream_open(struct input_reader *reader, uv_loop_t *loop, const char *path,
	    char **cause)
{
	struct stream *s = xcalloc(1, sizeof *s);

	s->reader = reader;
	s->poll.data = s;
	if (path == NULL || strcmp(path, "-") == 0) {
		s->fd = STDIN_FILENO;
		s->name = xstrdup("standard input");
	} else {
		s->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (s->fd < 0) {
			*cause = xasprintf("%s: %s", path, strerror(errno));
			free(s);
			return NULL;
		}
		s->close_fd = true;
		s->name = xstrdup(path);
	}
	/*
	 * Pipes, FIFOs and terminals are polled; epoll refuses regular files
	 * (always readable anyway), so those are read when needed.  libuv
	 * makes a polled fd non-blocking; we read only when it is readable, so
	 * its original flags go back at once for the sake of whoever shares it.
	 */
	int flags = fcntl(s->fd, F_GETFL);

	if (uv_poll_init(loop, &s->poll, s->fd) == 0) {
		s->poll.data = s;
		s->pollable = s->poll_open = true;
		if (flags >= 0)
			(void)fcntl(s->fd, F_SETFL, flags);
	}
	return s;
}

/* Read once into the buffer; the bytes read, 0 at EOF or on an error. */
static size_t
stream_read(struct stream *s)
{
	ssize_t n;

	if (s->start > 0 && s->start >= s->data.len / 2) {
		/* Drop what was taken before the buffer grows. */
		memmove(s->data.data, s->data.data + s->start,
			s->data.len - s->start);
		s->data.len -= s->start;
		s->start = 0;
	}
	buf_reserve(&s->data, INPUT_READ_SIZE);
	do
		n = read(s->fd, s->data.data + s->data.len, INPUT_READ_SIZE);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n <= 0) {
		if (n < 0) {
			s->error = errno;
			if (s->reader->error == 0)
				s->reader->error = errno;
			log_warn("reading %s: %s", s->name, strerror(errno));
		}
		s->eof = true;
		return 0;
	}
	s->data.len += (size_t)n;
	s->data.data[s->data.len] = '\0';
	return (size_t)n;
}

/*
 * Take the next record: 1 with *rec pointing into the buffer (valid until the
 * next call), 0 when it has to wait for data, -1 at the end.
 */
static int
stream_take(struct stream *s, const char **rec, size_t *len, uint64_t *number)
{
	const struct options *opts = s->reader->opts;

	for (;;) {
		const char *data = s->data.data + s->start;
		size_t avail = s->data.len - s->start, consumed = 0;
		ssize_t n =
		    avail ? record_next(data, avail, opts->delimiter, &consumed)
			  : -1;

		if (n < 0 && s->eof && avail > 0) {
			n = (ssize_t)avail; /* the last record, unterminated */
			consumed = avail;
		}
		if (n >= 0) {
			size_t l = (size_t)n;

			s->start += consumed;
			s->records++;
			if (opts->delimiter == '\n')
				l = record_strip_cr(data, l);
			/* -J: an empty line is bad input, not nothing. */
			if (l == 0 && !opts->keep_empty && !opts->json_input)
				continue;
			*rec = data;
			*len = l;
			*number = s->records;
			return 1;
		}
		if (s->eof)
			return -1;
		if (s->pollable) {
			if (!s->polling) {
				uv_poll_start(&s->poll, UV_READABLE,
					      input_poll_cb);
				s->polling = true;
			}
			return 0;
		}
		(void)stream_read(s);
	}
}

static void
input_poll_cb(uv_poll_t *handle, int status, int events)
{
	struct stream *s = handle->data;
	size_t n = 0;

	if (status < 0) {
		log_warn("reading %s: %s", s->name, uv_strerror(status));
		s->eof = true;
	} else {
		n = stream_read(s);
	}
	/* Wait on while no new record is complete. */
	if (!s->eof &&
	    (n == 0 || memchr(s->data.data + s->data.len - n,
			      s->reader->opts->delimiter, n) == NULL))
		return;
	uv_poll_stop(&s->poll);
	s->polling = false;
	s->reader->ready(s->reader->arg);
}

static void
stream_close_cb(uv_handle_t *handle)
{
	free(handle->data);
}

static void
stream_close(struct stream *s)
{
	if (s == NULL)
		return;
	if (s->poll_open) {
		uv_poll_stop(&s->poll);
		s->poll_open = false;
		s->polling = false;
		/* The stream is freed in the poll handle's close callback. */
		uv_close((uv_handle_t *)&s->poll, stream_close_cb);
	}
	if (s->close_fd && s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	buf_free(&s->data);
	free(s->name);
	if (!s->pollable)
		free(s);
}

/* Read a whole stream at start: a group that repeats must be in memory. */
static void
stream_slurp(struct stream *s, struct group *g)
{
	const char *rec;
	size_t len;
	uint64_t number;
	int rc;

	s->pollable = false; /* read it blocking, here and now */
	while ((rc = stream_take(s, &rec, &len, &number)) == 1) {
		g->values =
		    xreallocarray(g->values, g->count + 1, sizeof *g->values);
		g->lens = xreallocarray(g->lens, g->count + 1, sizeof *g->lens);
		g->values[g->count] = xmemdup(rec, len + 1);
		g->values[g->count][len] = '\0';
		g->lens[g->count++] = len;
	}
	s->pollable = s->poll_open;
}

/*
 * Count a regular file's records from where the stream stands, as
 * stream_take will yield them (empty ones skipped unless kept), without
 * moving the stream: one read pass.  false if it is not a regular file.
 */
static bool
stream_count(const struct stream *s, const struct options *opts,
	     uint64_t *count)
{
	char *block;
	struct stat st;
	off_t at;
	ssize_t n;
	size_t len = 0;	 /* of the record so far */
	bool cr = false; /* it ends with \r so far */
	bool keep = opts->keep_empty || opts->json_input;

	if (fstat(s->fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (at = lseek(s->fd, 0, SEEK_CUR)) < 0)
		return false;
	block = xmalloc(INPUT_READ_SIZE);
	*count = 0;
	while ((n = pread(s->fd, block, INPUT_READ_SIZE, at)) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (block[i] != (char)opts->delimiter) {
				len++;
				cr = block[i] == '\r';
				continue;
			}
			if (opts->delimiter == '\n' && cr)
				len--;
			if (len > 0 || keep)
				(*count)++;
			len = 0;
			cr = false;
		}
		at += n;
	}
	free(block);
	if (n < 0)
		return false;
	if (opts->delimiter == '\n' && cr)
		len--;
	if (len > 0)
		(*count)++; /* the last record, unterminated */
	return true;
}

/* The values a group has, its header left out; false if not known. */
static bool
input_group_size(const struct input_reader *r, const struct group *g,
		 uint64_t *size)
{
	uint64_t first = r->opts->header ? 1 : 0;

	if (g->stream != NULL && !stream_count(g->stream, r->opts, size))
		return false;
	if (g->stream == NULL)
		*size = g->count;
	*size = *size > first ? *size - first : 0;
	return true;
}

/* Count the inputs up front when every group's size can be known. */
static void
input_count_total(struct input_reader *r)
{
	uint64_t total = 1, wheel = 0, size;

	for (size_t i = 0; i < r->group_count; i++) {
		const struct group *g = &r->groups[i];

		if (!input_group_size(r, g, &size))
			return;
		if (r->opts->link && r->group_count > 1) {
			/* --link: the longest group, the others wrap. */
			if (size == 0)
				return; /* no input at all: nothing to show */
			total = i == 0 || size > total ? size : total;
			continue;
		}
		/* A wheel of linked groups turns as its shortest. */
		wheel = g->linked && size > wheel ? wheel : size;
		if (i + 1 < r->group_count && r->groups[i + 1].linked)
			continue;
		total *= wheel;
	}
	r->total = total;
	r->total_known = true;
}

bool
input_total(const struct input_reader *r, uint64_t *total)
{
	*total = r->total;
	return r->total_known;
}

/* ---- the reader -------------------------------------------------------- */

struct input_reader *
input_start(uv_loop_t *loop, const struct options *opts, char **cause)
{
	struct input_reader *r = xcalloc(1, sizeof *r);

	r->opts = opts;
	if (opts->pipe) {
		/* One stream cut into blocks (main.c allows one source). */
		const struct source *src = &opts->sources[0];

		r->blocks = block_reader_start(
		    loop, opts, src->kind == SOURCE_FILE ? src->path : NULL,
		    cause);
		if (r->blocks == NULL) {
			free(r);
			return NULL;
		}
		return r;
	}
	r->group_count = opts->source_count;
	r->groups = xcalloc(r->group_count, sizeof *r->groups);
	r->index = xcalloc(r->group_count, sizeof *r->index);
	r->header_pending = opts->header;
	for (size_t i = 0; i < r->group_count; i++) {
		const struct source *src = &opts->sources[i];
		struct group *g = &r->groups[i];

		g->linked = i > 0 && src->linked && !opts->link;

		if (src->kind == SOURCE_ARGUMENTS) {
			g->count = src->argument_count;
			g->values = xcalloc(g->count, sizeof *g->values);
			g->lens = xcalloc(g->count, sizeof *g->lens);
			for (size_t k = 0; k < g->count; k++) {
				g->values[k] = xstrdup(src->arguments[k]);
				g->lens[k] = strlen(src->arguments[k]);
			}
			continue;
		}
		g->stream = stream_open(
		    r, loop, src->kind == SOURCE_FILE ? src->path : NULL,
		    cause);
		if (g->stream == NULL) {
			input_stop(r);
			input_reader_free(r);
			return NULL;
		}
		/* Only the outer group of a product is streamed. */
		if (i > 0 || opts->link) {
			stream_slurp(g->stream, g);
			stream_close(g->stream);
			g->stream = NULL;
		}
	}
	if (opts->progress || opts->bar || opts->halt.percent)
		input_count_total(r);
	if (r->header_pending && r->group_count > 1 && !opts->link) {
		/* The first value of each inner group names its column. */
		for (size_t i = 1; i < r->group_count; i++)
			r->index[i] = 1;
	}
	return r;
}

bool
input_exhausted(struct input_reader *r)
{
	struct input *in;

	if (r->blocks != NULL)
		return block_reader_exhausted(r->blocks);
	for (int look = 0; look < 4; look++) {
		struct stream *s = r->groups[0].stream;
		struct pollfd pfd;
		int rc = input_next(r, &in);

		if (rc == 1) {
			input_free(in);
			return false;
		}
		if (rc < 0)
			return true;
		/* Waiting on a stream: is its end already there to read? */
		if (s == NULL || s->eof || s->fd < 0)
			return false;
		pfd = (struct pollfd){.fd = s->fd, .events = POLLIN};
		if (poll(&pfd, 1, 0) != 1)
			return false;
		(void)stream_read(s);
	}
	return false;
}

int
input_error(const struct input_reader *r)
{
	if (r->blocks != NULL)
		return block_reader_error(r->blocks);
	return r->error;
}

void
input_bytes(const struct input_reader *r, uint64_t *read, uint64_t *total)
{
	*read = *total = 0;
	if (r->blocks != NULL)
		block_reader_bytes(r->blocks, read, total);
}

void
input_set_ready(struct input_reader *r, input_ready_cb ready, void *arg)
{
	r->ready = ready;
	r->arg = arg;
	if (r->blocks != NULL)
		block_reader_set_ready(r->blocks, ready, arg);
}

/* Set the header from a record's columns (or its whole text). */
static void
input_set_header(struct input_reader *r, const struct input *in)
{
	size_t count = in->column_count ? in->column_count : 1;

	r->header = xcalloc(1, sizeof *r->header);
	r->header->names = xcalloc(count, sizeof *r->header->names);
	r->header->count = count;
	for (size_t i = 0; i < count; i++) {
		size_t len;
		const char *name = input_column(in, i + 1, &len);

		r->header->names[i] = xmemdup(name, len + 1);
		r->header->names[i][len] = '\0';
	}
}

/* The header of a run with groups: the first value of each. */
static void
input_set_group_header(struct input_reader *r, const char *outer,
		       size_t outer_len)
{
	static char empty[1];
	char **values = xcalloc(r->group_count, sizeof *values);
	size_t *lens = xcalloc(r->group_count, sizeof *lens);
	struct input *names;

	for (size_t i = 0; i < r->group_count; i++) {
		struct group *g = &r->groups[i];

		values[i] = g->stream ? (char *)(uintptr_t)outer
				      : (g->count ? g->values[0] : empty);
		lens[i] = g->stream ? outer_len : (g->count ? g->lens[0] : 0);
	}
	names = input_combine(values, lens, r->group_count, 0);
	input_set_header(r, names);
	input_free(names);
	free(values);
	free(lens);
}

/* The next value of the outer group: 1, 0 (wait) or -1 (end). */
static int
input_next_outer(struct input_reader *r, const char **value, size_t *len,
		 uint64_t *number)
{
	struct group *g = &r->groups[0];

	if (g->stream != NULL)
		return stream_take(g->stream, value, len, number);
	if (r->index[0] >= g->count)
		return -1;
	*number = r->index[0] + 1;
	*value = g->values[r->index[0]];
	*len = g->lens[r->index[0]++];
	return 1;
}

static int
input_next_linked(struct input_reader *r, struct input **out)
{
	size_t longest = 0, first = r->opts->header ? 1 : 0;
	char **values;
	size_t *lens;

	for (size_t i = 0; i < r->group_count; i++) {
		if (r->groups[i].count <= first)
			return -1; /* an empty group pairs with nothing */
		if (r->groups[i].count > longest)
			longest = r->groups[i].count;
	}
	if (r->header_pending) {
		input_set_group_header(r, NULL, 0);
		r->header_pending = false;
	}
	if (first + r->combinations >= longest)
		return -1;
	values = xcalloc(r->group_count, sizeof *values);
	lens = xcalloc(r->group_count, sizeof *lens);
	for (size_t i = 0; i < r->group_count; i++) {
		struct group *g = &r->groups[i];
		size_t k = first + r->combinations % (g->count - first);

		values[i] = g->values[k];
		lens[i] = g->lens[k];
	}
	*out = input_combine(values, lens, r->group_count, ++r->combinations);
	(*out)->header = r->header;
	free(values);
	free(lens);
	return 1;
}

int
input_next(struct input_reader *r, struct input **out)
{
	const char *value;
	size_t len;
	uint64_t number;
	int rc;

	if (r->finished)
		return -1;
	if (r->blocks != NULL)
		return block_reader_next(r->blocks, out);
	if (r->opts->link && r->group_count > 1) {
		rc = input_next_linked(r, out);
		if (rc < 0)
			r->finished = true;
		return rc;
	}
	if (r->group_count == 1) {
		while ((rc = input_next_outer(r, &value, &len, &number)) == 1) {
			struct input *in =
			    r->opts->json_input
				? json_input_create(value, len, number)
				: input_create(value, len, r->opts->colsep,
					       number);

			if (r->header_pending) {
				input_set_header(r, in);
				input_free(in);
				r->header_pending = false;
				continue;
			}
			in->header = r->header;
			/* A persistent worker need not look for one. */
			in->one_line = r->groups[0].stream != NULL &&
				       r->opts->delimiter == '\n';
			*out = in;
			return 1;
		}
		if (rc < 0)
			r->finished = true;
		return rc;
	}

	/* A product: the outer value, then each inner group's next value. */
	for (size_t i = 1; i < r->group_count; i++) {
		if (r->groups[i].count <= r->index[i]) {
			r->finished = true; /* an empty group: no product */
			return -1;
		}
	}
	while (!r->have_outer) {
		rc = input_next_outer(r, &value, &len, &number);
		if (rc <= 0) {
			if (rc < 0)
				r->finished = true;
			return rc;
		}
		if (r->header_pending) {
			input_set_group_header(r, value, len);
			r->header_pending = false;
			continue;
		}
		free(r->outer);
		r->outer = xmemdup(value, len + 1);
		r->outer[len] = '\0';
		r->outer_len = len;
		r->have_outer = true;
	}

	char **values = xcalloc(r->group_count, sizeof *values);
	size_t *lens = xcalloc(r->group_count, sizeof *lens);
	size_t first = r->opts->header ? 1 : 0;

	values[0] = r->outer;
	lens[0] = r->outer_len;
	for (size_t i = 1; i < r->group_count; i++) {
		values[i] = r->groups[i].values[r->index[i]];
		lens[i] = r->groups[i].lens[r->index[i]];
	}
	*out = input_combine(values, lens, r->group_count, ++r->combinations);
	(*out)->header = r->header;
	free(values);
	free(lens);
	/*
	 * Advance like an odometer, the last group fastest.  Groups linked
	 * by :::+ are one wheel: they move together, and the shortest of
	 * them ends the wheel's turn (as GNU parallel).  The wheel of the
	 * outer group turns when the next outer value is taken.
	 */
	for (size_t i = r->group_count - 1; i >= 1;) {
		size_t head = i;
		bool wrapped = false;

		while (head > 0 && r->groups[head].linked)
			head--;
		if (head == 0) {
			for (size_t k = 1; k <= i; k++)
				r->index[k]++;
			r->have_outer = false;
			break;
		}
		for (size_t k = head; k <= i; k++)
			if (++r->index[k] >= r->groups[k].count)
				wrapped = true;
		if (!wrapped)
			break;
		for (size_t k = head; k <= i; k++)
			r->index[k] = first;
		if (head == 1) {
			r->have_outer = false;
			break;
		}
		i = head - 1;
	}
	return 1;
}

void
input_stop(struct input_reader *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->group_count; i++) {
		stream_close(r->groups[i].stream);
		r->groups[i].stream = NULL;
	}
	block_reader_stop(r->blocks);
	r->finished = true;
}

void
input_reader_free(struct input_reader *r)
{
	if (r == NULL)
		return;
	input_stop(r);
	block_reader_free(r->blocks);
	for (size_t i = 0; i < r->group_count; i++) {
		for (size_t k = 0; k < r->groups[i].count; k++)
			free(r->groups[i].values[k]);
		free(r->groups[i].values);
		free(r->groups[i].lens);
	}
	if (r->header != NULL) {
		for (size_t i = 0; i < r->header->count; i++)
			free(r->header->names[i]);
		free(r->header->names);
		free(r->header);
	}
	free(r->groups);
	free(r->index);
	free(r->outer);
	free(r);
}
