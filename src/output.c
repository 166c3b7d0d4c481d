/*
 * output.c - the sinks: each task's output, written whole, in input order or
 * as tasks finish.
 *
 * The pool announces a task (output_begin), hands over its bytes as they come
 * (output_data) and then its result (output_finish).  What happens to the
 * bytes depends on the mode:
 *
 *   grouped      kept in a capture, written in one piece when the task is
 *                finished and order allows;
 *   line         whole lines written as they come; with --ordered only the
 *                oldest unwritten task is live, the others are held until
 *                their turn;
 *   ungrouped    nothing passes through here: the task writes to our
 *                stdout itself;
 *   JSON         kept like grouped output, then written as one record per
 *                task instead of the bytes themselves, streamed from the
 *                captures as json.c encodes it (memory stays bounded).
 *
 * --results DIR also gets each task's streams and record (results.c).
 *
 * Ordering uses a ring of --buffer places indexed by sequence number: the
 * pool never has more than --buffer tasks begun and unwritten, so a task's
 * place is free when it begins and finding it is O(1).
 *
 * Coalescing (output_start): many tiny results cost a write(2) each, so
 * the grouped output of the tasks finished within one turn of the loop is
 * gathered in one batch (up to OUTPUT_BATCH_MAX bytes, one stream at a
 * time) and written at the end of the turn, before the loop waits: an
 * idle handle is active while anything waits, so the loop never sleeps in
 * poll with a batch unwritten.  A task's place is retired when its bytes
 * are in the batch, and its owner is told (written) only once the batch
 * is out, with whole false for every task whose bytes a failed write
 * did not carry: the joblog line never runs ahead of its output.  Big
 * outputs (OUTPUT_DIRECT_MIN and more, spilled captures) are not copied:
 * the batch is written, then they are, directly.  Line mode writes
 * directly as before, as does a --json record (whole pieces to a pipe);
 * every direct write and every message on stderr (log_set_before) first
 * writes the batch, so that nothing is reordered.
 *
 * Many tiny results also cost an allocation or two each: a place keeps
 * the first OUTPUT_SMALL_MAX bytes of plain grouped output itself (a
 * capture is made only when more come), and places told are kept for the
 * next tasks.
 *
 * This file knows nothing of processes.  A write error on stdout (the reader
 * went away) marks the output broken; the pool then stops the run.  Stdout
 * is watched for its reader leaving even when nothing is written to it
 * (-u), so that the run stops as a filter's would.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"

/* Bytes of a stream kept in its place before it needs a capture. */
#define OUTPUT_SMALL_MAX 40

struct task_output {
	uint64_t seq;
	const char *tag; /* --tag prefix, owned by the pool's task */
	size_t tag_len;
	struct capture *held[3]; /* by stream (1, 2): bytes not yet written */
	unsigned char small_len[3]; /* bytes in small, by stream */
	struct buf partial[3];	    /* line mode: a line not yet complete */
	bool live;		    /* line mode: bytes go straight out */
	bool at_line_start[3];	    /* grouped --tag: next byte starts a line */
	bool finished, discarded;
	bool cut;	    /* a write of its output failed: not whole */
	void *owner;	    /* told when this place is written */
	uint64_t out_start; /* its bytes in the batch: from here (counted */
	uint64_t out_end;   /* over all batches) to here, if any */
	struct task_output *next_retired; /* or the next spare */
	/* A place is cleared up to here: what follows is read only once
	 * set (result once finished, small up to small_len), and leaving
	 * them be spares two of the cache lines a tiny task touches. */
	struct result result; /* once finished; its message is ours */
	/* Plain grouped output: the first bytes, until they outgrow this,
	 * so that a tiny result needs no capture. */
	char small[3][OUTPUT_SMALL_MAX];
};

/* Bytes a batch holds at most; a piece this big or more goes directly. */
#define OUTPUT_BATCH_MAX ((size_t)64 << 10)
#define OUTPUT_DIRECT_MIN ((size_t)16 << 10)

struct output {
	const struct options *opts;
	output_written_cb written;
	struct task_output **ring; /* ordered: by seq & ring_mask */
	size_t ring_size;	   /* a power of two, >= --buffer */
	uint64_t ring_mask;
	uint64_t next_seq; /* ordered: the next sequence number to write */
	size_t pending;	   /* begun, not yet written */
	bool broken;	   /* stdout failed: write nothing more to it */
	bool small_ok;	   /* plain grouped output: places keep small bytes */
	struct task_output *spare;   /* places told, kept for the next tasks */
	struct task_output *writing; /* the task being written, or NULL */
	bool waiting_for_room;	     /* ... its record not started yet */
	int error;		     /* the errno it failed with */
	uv_poll_t stdout_watch;	     /* the reader of stdout leaving */
	bool watching;
	void (*gone)(void *arg); /* told once when the reader left */
	void *gone_arg;

	/* Coalescing: the batch, and the tasks retired into it. */
	struct buf batch;      /* bytes for batch_stream, not yet written */
	int batch_stream;      /* 1 or 2 */
	uint64_t batch_total;  /* bytes ever put in a batch */
	uint64_t batch_out;    /* ... of them written or given up */
	size_t batch_progress; /* ... of the batch being written, so far */
	bool batch_writing;    /* a batch is being written */
	struct task_output *retired, **retired_tail; /* not yet told */
	bool coalesce;	/* tell at the turn's end */
	uv_idle_t idle; /* ... which is then */
	bool idle_open, idle_active;
	void (*flushed)(void *arg, bool turn_end);
	void *flushed_arg;
};

static struct output *output_logging; /* whose batch goes before a message */

struct output *
output_create(const struct options *opts, output_written_cb written)
{
	struct output *o = xcalloc(1, sizeof *o);

	o->opts = opts;
	o->written = written;
	/* The places pending span fewer than --buffer numbers, so no two
	 * share a slot; a power of two spares a division per look. */
	o->ring_size = 1;
	while (o->ring_size < opts->buffer)
		o->ring_size *= 2;
	o->ring_mask = o->ring_size - 1;
	o->ring = xcalloc(o->ring_size, sizeof *o->ring);
	o->next_seq = 1;
	o->retired_tail = &o->retired;
	o->batch_stream = 1;
	o->small_ok = opts->output_mode == OUTPUT_GROUP && !opts->tag &&
		      !opts->json_output && opts->results_dir == NULL;
	return o;
}

int
output_error(const struct output *o)
{
	return o->error;
}

void
output_fail(struct output *o, int error)
{
	if (!o->broken) {
		o->broken = true;
		o->error = error;
	}
}

size_t
output_pending(const struct output *o)
{
	return o->pending;
}

/* A failed write to stdout breaks the output for good. */
static int
output_check(struct output *o, int stream, int rc)
{
	if (rc < 0 && stream == 1 && !o->broken) {
		o->broken = true;
		o->error = -rc;
		if (rc != -EPIPE)
			log_warn("writing to standard output: %s",
				 strerror(-rc));
	}
	return rc;
}

static void output_write_batch(struct output *o);

/* Write to fd 1 or 2 directly, after what the batch holds. */
static int
output_write(struct output *o, int stream, const char *data, size_t len)
{
	output_write_batch(o);
	if (o->broken && stream == 1)
		return -EPIPE;
	return output_check(o, stream, io_write_all(stream, data, len));
}

/*
 * Write the batch.  The tasks whose bytes it did not carry (the write
 * failed) are cut: they get no joblog line.  Its bytes are gone either
 * way: a stream that failed once is broken (stdout) or lossy (stderr).
 */
static void
output_write_batch(struct output *o)
{
	int stream = o->batch_stream, rc;
	uint64_t out;

	if (o->batch.len == 0 || o->batch_writing)
		return;
	o->batch_writing = true;
	o->batch_progress = 0;
	if (o->broken && stream == 1)
		rc = -EPIPE;
	else
		rc = io_write_counted(stream, o->batch.data, o->batch.len,
				      &o->batch_progress);
	out = o->batch_out + o->batch_progress;
	o->batch_out = o->batch_total;
	o->batch.len = 0;
	o->batch_progress = 0;
	o->batch_writing = false;
	if (rc == 0)
		return;
	for (struct task_output *t = o->retired; t != NULL; t = t->next_retired)
		if (t->out_end > out)
			t->cut = true;
	if (o->writing != NULL && o->writing->out_end > out)
		o->writing->cut = true;
	(void)output_check(o, stream, rc); /* may say so: after the reset */
}

/* The batch goes before any message on stderr. */
static void
output_before_message(void)
{
	if (output_logging != NULL)
		output_write_batch(output_logging);
}

/*
 * Grouped output of the task being written: into the batch, or, when big,
 * directly.  A failure of what is in the batch is found when it is
 * written, and cuts the task then.
 */
static int
output_put(struct output *o, int stream, const char *data, size_t len)
{
	struct task_output *t = o->writing;

	if (o->broken && stream == 1)
		return -EPIPE;
	if (!o->coalesce || o->opts->output_mode == OUTPUT_LINE ||
	    len >= OUTPUT_DIRECT_MIN || t == NULL)
		return output_write(o, stream, data, len);
	if (len == 0)
		return 0;
	if (o->batch.len > 0 && (o->batch_stream != stream ||
				 o->batch.len + len > OUTPUT_BATCH_MAX))
		output_write_batch(o);
	if (o->broken && stream == 1)
		return -EPIPE;
	buf_append(&o->batch, data, len);
	o->batch_stream = stream;
	o->batch_total += len;
	t->out_end = o->batch_total;
	return 0;
}

struct tag_writer {
	struct output *o;
	struct task_output *t;
	int stream;
};

static int
output_put_piece(void *arg, const char *data, size_t len)
{
	struct tag_writer *w = arg;

	return output_put(w->o, w->stream, data, len);
}

/* Write data with the tag before every line (grouped --tag). */
static int
output_write_tagged(void *arg, const char *data, size_t len)
{
	struct tag_writer *w = arg;
	struct task_output *t = w->t;
	struct buf lines = {0};
	int rc;

	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t n = nl ? (size_t)(nl - data) + 1 : len;

		if (t->at_line_start[w->stream]) {
			buf_append(&lines, t->tag, t->tag_len);
			buf_append_char(&lines, '\t');
		}
		buf_append(&lines, data, n);
		t->at_line_start[w->stream] = nl != NULL;
		data += n;
		len -= n;
	}
	rc = output_put(w->o, w->stream, lines.data, lines.len);
	buf_free(&lines);
	return rc;
}

/* Write data that may end mid-line; the partial line waits (line mode). */
static int
output_write_lines(void *arg, const char *data, size_t len)
{
	struct tag_writer *w = arg;
	struct buf *partial = &w->t->partial[w->stream];
	const char *last = memrchr(data, '\n', len);
	size_t whole;
	int rc = 0;

	if (last == NULL) {
		buf_append(partial, data, len);
		return 0;
	}
	whole = (size_t)(last - data) + 1;
	if (partial->len > 0) {
		buf_append(partial, data, whole);
		rc = w->o->opts->tag
			 ? output_write_tagged(w, partial->data, partial->len)
			 : output_write(w->o, w->stream, partial->data,
					partial->len);
		partial->len = 0;
	} else {
		rc = w->o->opts->tag
			 ? output_write_tagged(w, data, whole)
			 : output_write(w->o, w->stream, data, whole);
	}
	buf_append(partial, data + whole, len - whole);
	return rc;
}

struct task_output *
output_begin(struct output *o, uint64_t seq, const char *tag, size_t tag_len,
	     void *owner)
{
	struct task_output *t = o->spare;

	if (t != NULL) {
		o->spare = t->next_retired;
		memset(t, 0, offsetof(struct task_output, result));
	} else {
		t = xcalloc(1, sizeof *t);
	}
	t->owner = owner;
	t->seq = seq;
	t->tag = tag;
	t->tag_len = tag_len;
	t->at_line_start[1] = t->at_line_start[2] = true;
	/* Unordered lines, and the oldest task of ordered ones, flow live. */
	t->live = o->opts->output_mode == OUTPUT_LINE &&
		  (!o->opts->ordered || seq == o->next_seq);
	o->ring[seq & o->ring_mask] = t;
	o->pending++;
	return t;
}

void
output_data(struct output *o, struct task_output *t, int stream,
	    const char *data, size_t len)
{
	if (t->live) {
		struct tag_writer w = {o, t, stream};

		if (output_write_lines(&w, data, len) < 0)
			t->cut = true;
		return;
	}
	if (t->held[stream] == NULL && o->small_ok &&
	    t->small_len[stream] + len <= OUTPUT_SMALL_MAX) {
		memcpy(t->small[stream] + t->small_len[stream], data, len);
		t->small_len[stream] += (unsigned char)len;
		return;
	}
	if (t->held[stream] == NULL) {
		t->held[stream] = capture_create();
		capture_append(t->held[stream], t->small[stream],
			       t->small_len[stream]);
		t->small_len[stream] = 0;
	}
	capture_append(t->held[stream], data, len);
}

/* Write a capture as it is: into the batch when small, else directly
 * (one write for an output held in memory). */
static int
output_write_capture(struct output *o, struct task_output *t, struct capture *c,
		     int stream)
{
	if (o->coalesce && capture_size(c) < OUTPUT_DIRECT_MIN) {
		struct tag_writer w = {o, t, stream};

		return capture_each(c, output_put_piece, &w);
	}
	output_write_batch(o);
	if (o->broken && stream == 1)
		return -EPIPE;
	return output_check(o, stream, capture_write(c, stream));
}

char *
output_describe(const struct result *r)
{
	const struct input *in = r->inputs[0];
	int shown = (int)(in->len > 200 ? 200 : in->len);
	char why[64] = "succeeded";

	if (r->message == NULL && r->status == STATUS_FAILED)
		snprintf(why, sizeof why, "exit status %d", r->exit_code);
	if (r->message == NULL && r->status == STATUS_SIGNALED) {
		memcpy(why, "killed by ", 10);
		signal_name(r->signal, why + 10, sizeof why - 10);
	}
	return xasprintf("task %llu (input %.*s%s): %s",
			 (unsigned long long)r->seq, shown, in->text,
			 (size_t)shown < in->len ? "..." : "",
			 r->message != NULL ? r->message : why);
}

void
output_report(const struct result *r, const char *then)
{
	char *what;

	if (r->status == STATUS_OK || r->status == STATUS_SKIPPED)
		return;
	/* A plain non-zero exit is the task's own answer (grep -l finding
	 * nothing): the exit status, the joblog and --json count it, and
	 * stderr stays quiet, as with GNU parallel and xargs. */
	if (r->status == STATUS_FAILED && r->message == NULL && then[0] == '\0')
		return;
	what = output_describe(r);
	log_warn("%s%s", what, then);
	free(what);
}

/*
 * A --json record on its way to stdout, in pieces, one after another with
 * nothing between them (only this thread writes stdout).  A record that
 * fails midway on a regular file is cut off again, so the file ends with
 * the last whole record; a pipe cannot be taken back, but it fails only
 * when its reader has gone.
 */
struct record_writer {
	struct output *o;
	bool started;
	bool written; /* some of it is out */
	bool failed;  /* a piece could not be written */
	off_t start;  /* where the record began in a regular file, or -1 */
};

static int
output_record_piece(void *arg, const char *data, size_t len)
{
	static int stdout_flags = -2; /* of a regular file, else -1 */
	struct record_writer *w = arg;
	struct stat st;
	int rc;

	if (stdout_flags == -2)
		stdout_flags = fstat(1, &st) == 0 && S_ISREG(st.st_mode)
				   ? fcntl(1, F_GETFL)
				   : -1;
	if (!w->started) {
		w->started = true;
		w->start = -1;
		if (stdout_flags >= 0 && (stdout_flags & O_APPEND) == 0)
			w->start = lseek(1, 0, SEEK_CUR);
		else if (stdout_flags >= 0 && fstat(1, &st) == 0)
			w->start = st.st_size;
	}
	/* Each piece goes to a pipe whole or not at all (a record of one
	 * piece, under 64 KiB, is never half written), even if the run is
	 * ended while it waits for room. */
	output_write_batch(w->o);
	w->o->waiting_for_room = !w->written;
	rc = w->o->broken
		 ? -EPIPE
		 : output_check(w->o, 1, io_write_record(1, data, len));
	w->o->waiting_for_room = false;
	if (rc == 0)
		w->written = true;
	else
		w->failed = true;
	if (rc < 0 && w->start >= 0 && ftruncate(1, w->start) == 0 &&
	    (stdout_flags & O_APPEND) == 0)
		(void)lseek(1, w->start, SEEK_SET);
	return rc;
}

/* --json, --results: the task's record, streamed from its captures. */
static void
output_emit_record(struct output *o, struct task_output *t)
{
	struct record_writer w = {.o = o};
	json_sink_cb to_stdout =
	    o->opts->json_output && !o->broken ? output_record_piece : NULL;
	int rc = 0;

	if (o->opts->results_dir != NULL)
		results_write(o->opts->results_dir, &t->result, t->held[1],
			      t->held[2], to_stdout, &w);
	else if (to_stdout != NULL)
		rc = json_record_write(&t->result, t->held[1], t->held[2],
				       to_stdout, &w);
	/* Not written whole: it gets no joblog line. */
	if (o->opts->json_output && (rc < 0 || w.failed || to_stdout == NULL))
		t->cut = true;
	if (rc < 0 && !o->broken)
		log_warn("task %llu: cannot read its output back: %s",
			 (unsigned long long)t->seq, strerror(-rc));
}

static void output_emit_task(struct output *o, struct task_output *t);

/* Write out one task whose turn it is. */
static void
output_emit(struct output *o, struct task_output *t)
{
	/* Who is being written, should the run be ended during a write. */
	o->writing = t;
	t->out_start = o->batch_total;
	output_emit_task(o, t);
	o->writing = NULL;
}

static void
output_emit_task(struct output *o, struct task_output *t)
{
	if (t->finished && (o->opts->json_output || o->opts->results_dir)) {
		output_emit_record(o, t);
		if (o->opts->json_output) {
			output_report(&t->result, "");
			return;
		}
	}
	for (int stream = 1; stream <= 2; stream++) {
		struct tag_writer w = {o, t, stream};
		int rc = 0;

		if (t->small_len[stream] > 0)
			rc = output_put(o, stream, t->small[stream],
					t->small_len[stream]);
		else if (t->held[stream] != NULL) {
			if (o->opts->output_mode == OUTPUT_LINE)
				rc = capture_each(t->held[stream],
						  output_write_lines, &w);
			else if (o->opts->tag)
				rc = capture_each(t->held[stream],
						  output_write_tagged, &w);
			else
				rc = output_write_capture(o, t, t->held[stream],
							  stream);
		}
		/* The end of a task ends its last line too. */
		if (rc == 0 && t->finished && t->partial[stream].len > 0) {
			struct buf *p = &t->partial[stream];

			if (o->opts->tag)
				rc = output_write_tagged(&w, p->data, p->len);
			else
				rc = output_put(o, stream, p->data, p->len);
			p->len = 0;
		}
		if (rc < 0)
			t->cut = true;
	}
	/* What became of it, after its own output: in order with -k. */
	if (t->finished)
		output_report(&t->result, "");
}

/* Tell the owner of a retired place, and free it. */
static void
output_tell(struct output *o, struct task_output *t)
{
	o->pending--;
	/* The owner reads the result in place; the place is free after. */
	o->written(t->owner, t->finished ? &t->result : NULL, !t->cut);
	if (t->finished && t->result.message != NULL)
		free(t->result.message);
	if (CPMAP_KEEP_SPARES) {
		t->next_retired = o->spare;
		o->spare = t;
	} else {
		free(t);
	}
}

/* Write the batch, then tell the owners of the places retired into it (a
 * call may retire more: they are told too), then flushed. */
static void
output_flush(struct output *o, bool turn_end)
{
	struct task_output *t;

	output_write_batch(o);
	while ((t = o->retired) != NULL) {
		o->retired = t->next_retired;
		if (o->retired == NULL)
			o->retired_tail = &o->retired;
		output_tell(o, t);
	}
	if (o->flushed != NULL)
		o->flushed(o->flushed_arg, turn_end);
}

static void
output_idle_cb(uv_idle_t *handle)
{
	struct output *o = handle->data;

	uv_idle_stop(handle);
	o->idle_active = false;
	output_flush(o, true);
}

/* The place is written (or skipped): its owner is told once the batch is
 * out, at the end of the turn when coalescing, else now. */
static void
output_release(struct output *o, struct task_output *t)
{
	uint64_t seq = t->seq;

	if (o->ring[seq & o->ring_mask] == t)
		o->ring[seq & o->ring_mask] = NULL;
	for (int stream = 1; stream <= 2; stream++) {
		if (t->held[stream] != NULL) {
			capture_free(t->held[stream]);
			t->held[stream] = NULL;
		}
		if (t->partial[stream].data != NULL)
			buf_free(&t->partial[stream]);
	}
	t->next_retired = NULL;
	*o->retired_tail = t;
	o->retired_tail = &t->next_retired;
	if (!o->coalesce) {
		output_flush(o, false);
		return;
	}
	if (!o->idle_active) {
		uv_idle_start(&o->idle, output_idle_cb);
		o->idle_active = true;
	}
}

void
output_start(struct output *o, uv_loop_t *loop, bool coalesce,
	     void (*flushed)(void *arg, bool turn_end), void *arg)
{
	o->flushed = flushed;
	o->flushed_arg = arg;
	output_logging = o;
	log_set_before(output_before_message);
	if (!coalesce || uv_idle_init(loop, &o->idle) != 0)
		return;
	o->idle.data = o;
	o->idle_open = true;
	o->coalesce = true;
}

/* Ordered: write every task from next_seq on whose result is final. */
static void
output_flush_ordered(struct output *o)
{
	struct task_output *t;

	while ((t = o->ring[o->next_seq & o->ring_mask]) != NULL &&
	       t->seq == o->next_seq) {
		if (!t->finished && !t->discarded) {
			if (o->opts->output_mode == OUTPUT_LINE && !t->live) {
				/* Its turn: what it wrote so far, then live. */
				output_emit(o, t);
				for (int s = 1; s <= 2; s++) {
					capture_free(t->held[s]);
					t->held[s] = NULL;
				}
				t->live = true;
			}
			return;
		}
		if (t->finished)
			output_emit(o, t);
		o->next_seq++;
		output_release(o, t);
	}
}

void
output_finish(struct output *o, struct task_output *t, const struct result *r)
{
	t->result = *r;
	t->finished = true;
	if (o->opts->ordered && o->opts->output_mode != OUTPUT_UNGROUP) {
		output_flush_ordered(o);
		return;
	}
	output_emit(o, t);
	output_release(o, t);
}

void
output_discard(struct output *o, struct task_output *t)
{
	t->discarded = true;
	if (o->opts->ordered && o->opts->output_mode != OUTPUT_UNGROUP) {
		output_flush_ordered(o);
		return;
	}
	output_release(o, t);
}

void
output_reset(struct output *o, struct task_output *t)
{
	for (int stream = 1; stream <= 2; stream++) {
		capture_free(t->held[stream]);
		t->held[stream] = NULL;
		t->small_len[stream] = 0;
		t->partial[stream].len = 0;
		t->at_line_start[stream] = true;
	}
}

void
output_free(struct output *o)
{
	struct task_output *left;

	if (o == NULL)
		return;
	/* Normally all told at the end of the loop's last turn. */
	output_write_batch(o);
	while ((left = o->retired) != NULL) {
		o->retired = left->next_retired;
		output_tell(o, left);
	}
	if (output_logging == o) {
		output_logging = NULL;
		log_set_before(NULL);
	}
	buf_free(&o->batch);
	for (size_t i = 0; i < o->ring_size; i++) {
		struct task_output *t = o->ring[i];

		if (t == NULL)
			continue;
		for (int stream = 1; stream <= 2; stream++) {
			capture_free(t->held[stream]);
			buf_free(&t->partial[stream]);
		}
		if (t->finished)
			free(t->result.message);
		free(t);
	}
	while ((left = o->spare) != NULL) {
		o->spare = left->next_retired;
		free(left);
	}
	free(o->ring);
	free(o);
}

/* Name a task for a message: "task 3 (input abc)". */
static void
output_name_task(const struct task_output *t, char *name, size_t size)
{
	const struct input *in = t->finished && t->result.input_count > 0
				     ? t->result.inputs[0]
				     : NULL;

	if (in != NULL)
		snprintf(name, size, "task %llu (input %.*s%s)",
			 (unsigned long long)t->seq,
			 (int)(in->len > 80 ? 80 : in->len), in->text,
			 in->len > 80 ? "..." : "");
	else
		snprintf(name, size, "task %llu", (unsigned long long)t->seq);
}

void
output_abandon(struct output *o, const char *why)
{
	char name[160];
	struct buf list = {0};
	size_t unwritten = 0;
	uint64_t out = o->batch_out + o->batch_progress;
	struct task_output **link = &o->retired, *t;

	/*
	 * The retired places first: those the batch carried whole are told
	 * (their joblog lines can still be written); the one it was writing
	 * is cut, the ones after it are not written.
	 */
	output_logging = NULL; /* the run ends: no more writes, no stall */
	while ((t = *link) != NULL) {
		if (!t->cut && t->out_end <= out) {
			*link = t->next_retired;
			if (*link == NULL)
				o->retired_tail = link;
			output_tell(o, t);
			continue;
		}
		if (t->finished && t->out_end > out && t->out_start < out) {
			output_name_task(t, name, sizeof name);
			log_warn("%s: its output was cut short (%s); it has "
				 "no joblog line",
				 name, why);
		} else if (t->finished && unwritten++ < 20) {
			char seq[32];

			snprintf(seq, sizeof seq, "%s%llu",
				 list.len ? ", " : "",
				 (unsigned long long)t->seq);
			buf_append_str(&list, seq);
		}
		link = &t->next_retired;
	}
	if (o->writing != NULL) {
		output_name_task(o->writing, name, sizeof name);
		log_warn("%s: %s (%s); it has no joblog line", name,
			 o->waiting_for_room ? "its record was not written"
					     : "its output was cut short",
			 why);
	}
	for (size_t i = 0; i < o->ring_size; i++) {
		t = o->ring[i];
		if (t == NULL || t == o->writing || !t->finished)
			continue;
		if (unwritten++ < 20) {
			char seq[32];

			snprintf(seq, sizeof seq, "%s%llu",
				 list.len ? ", " : "",
				 (unsigned long long)t->seq);
			buf_append_str(&list, seq);
		}
	}
	if (unwritten > 0)
		log_warn(
		    "%zu finished task%s not written (%s%s): %s; no joblog "
		    "line",
		    unwritten, unwritten == 1 ? "" : "s", list.data,
		    unwritten > 20 ? ", ..." : "", why);
	buf_free(&list);
}

/* ---- the reader of stdout ---------------------------------------------- */

/* The reader left: nothing more is written, and the owner is told once. */
static void
output_reader_gone(struct output *o)
{
	bool told = o->broken && o->error == EPIPE;

	output_fail(o, EPIPE);
	if (!told && o->gone != NULL)
		o->gone(o->gone_arg);
}

static void
output_stdout_watch_cb(uv_poll_t *handle, int status, int events)
{
	struct output *o = handle->data;

	uv_poll_stop(handle);
	if (status == 0 && events == 0)
		return;
	output_reader_gone(o);
}

void
output_watch_stdout(struct output *o, uv_loop_t *loop, void (*gone)(void *arg),
		    void *arg)
{
	struct stat st;
	int flags = fcntl(STDOUT_FILENO, F_GETFL);

	o->gone = gone;
	o->gone_arg = arg;
	if (fstat(STDOUT_FILENO, &st) < 0 ||
	    !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
		return;
	if (uv_poll_init(loop, &o->stdout_watch, STDOUT_FILENO) != 0)
		return;
	/* libuv made it non-blocking: it is shared, put its flags back. */
	if (flags >= 0)
		(void)fcntl(STDOUT_FILENO, F_SETFL, flags);
	o->stdout_watch.data = o;
	o->watching = true;
	/* No event asked for: epoll reports the error of a closed pipe. */
	uv_poll_start(&o->stdout_watch, UV_DISCONNECT, output_stdout_watch_cb);
	uv_unref((uv_handle_t *)&o->stdout_watch);
}

bool
output_stdout_gone(struct output *o)
{
	struct pollfd pfd = {.fd = STDOUT_FILENO, .events = 0};

	if (o->broken && o->error == EPIPE)
		return true;
	if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLERR))
		return false;
	output_reader_gone(o);
	return true;
}

void
output_unwatch_stdout(struct output *o)
{
	if (o->watching) {
		uv_close((uv_handle_t *)&o->stdout_watch, NULL);
		o->watching = false;
	}
	if (o->idle_open) {
		/* What comes now (nothing, normally) is told at once. */
		output_flush(o, false);
		uv_close((uv_handle_t *)&o->idle, NULL);
		o->idle_open = o->idle_active = o->coalesce = false;
	}
}
