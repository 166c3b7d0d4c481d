/*
 * roundrobin.c - --round-robin: up to -j long-lived tasks, each fed block
 * after block on its stdin, the next block going to whichever can take it.
 *
 * The pool sees a task per stream: the first -j blocks each start one (a
 * shorter input starts fewer), and a task that ends while blocks remain
 * is replaced by a new one.  After its first block, a stream's feed
 * (block.c) asks here for the next one as soon as it has written the last
 * into the task's pipe: a task that does not read keeps a full pipe and
 * gets no more, so a slow task gets fewer blocks.  Blocks are read only
 * when a stream waits for one (back-pressure): what is held is the block
 * each stream is writing and the one being gathered.  The --header lines
 * start a stream, not each of its blocks.
 *
 * A task that ends before its stdin was closed may not have read what it
 * was given: the block being written when it ended is lost, unless none
 * of it was written yet (then another task gets it); the bytes already in
 * its pipe, or read but not used, cannot be known.  Such a task fails
 * (roundrobin_result), and the message says which blocks it had.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cpmap.h"

enum stream_state {
	STREAM_NEW,	/* made with its first block; its task not yet fed */
	STREAM_WRITING, /* its feed writes the current block */
	STREAM_IDLE,	/* its feed waits for a block */
	STREAM_CLOSED,	/* its stdin was closed after the last block */
	STREAM_ENDED,	/* its task ended */
};

TAILQ_HEAD(stream_list, roundrobin_stream);
TAILQ_HEAD(block_queue, queued_block);

/* A block that came back from a task that ended before writing it. */
struct queued_block {
	struct block *block;
	TAILQ_ENTRY(queued_block) entry;
};

struct roundrobin_stream {
	enum stream_state state;
	struct roundrobin *rr;	 /* NULL once the roundrobin is freed */
	struct block *self;	 /* the task's block (counts what went in) */
	struct block_feed *feed; /* while its task runs */
	struct block *current;	 /* being written (owned), or NULL */
	char *verdict;		 /* why the task failed, or NULL */
	TAILQ_ENTRY(roundrobin_stream) all, idle;
};

struct roundrobin {
	struct block_reader *reader;
	unsigned jobs;
	unsigned live;	  /* streams whose task has not ended */
	unsigned writing; /* streams writing a block (it may come back) */
	uint64_t streams; /* made so far */
	struct stream_list all;
	struct stream_list idle;     /* waiting for a block, oldest first */
	struct block_queue requeued; /* blocks to give before new ones */
	void (*ready)(void *arg);    /* the pool's */
	void *arg;
	bool pool_waiting; /* roundrobin_next said "wait" */
	bool kick; /* pump the streams that wait, in a turn of its own */
	bool stopped;
	char *header; /* --header lines, which start every stream */
	size_t header_len;
	uv_timer_t notify; /* calls the pool back from a turn of its own */
	bool notify_closing, notify_closed;
	bool freed; /* free once the timer is closed */
};

static void roundrobin_notify_cb(uv_timer_t *timer);

static void
roundrobin_closed_cb(uv_handle_t *handle)
{
	struct roundrobin *rr = handle->data;

	rr->notify_closed = true;
	if (rr->freed)
		free(rr);
}

struct roundrobin *
roundrobin_create(uv_loop_t *loop, struct block_reader *r, unsigned jobs)
{
	struct roundrobin *rr = xcalloc(1, sizeof *rr);
	int rc;

	rr->reader = r;
	rr->jobs = jobs > 0 ? jobs : 1;
	TAILQ_INIT(&rr->all);
	TAILQ_INIT(&rr->idle);
	TAILQ_INIT(&rr->requeued);
	if ((rc = uv_timer_init(loop, &rr->notify)) != 0)
		fatal("cannot make a timer: %s", uv_strerror(rc));
	rr->notify.data = rr;
	return rr;
}

void
roundrobin_set_ready(struct roundrobin *rr, void (*ready)(void *arg), void *arg)
{
	rr->ready = ready;
	rr->arg = arg;
}

static void roundrobin_pump(struct roundrobin *rr);

/* Act in a turn of the loop of its own, never inside the pool's call. */
static void
roundrobin_later(struct roundrobin *rr)
{
	if (!rr->notify_closing)
		uv_timer_start(&rr->notify, roundrobin_notify_cb, 0, 0);
}

/* The pool waits on us: call it back. */
static void
roundrobin_notify(struct roundrobin *rr)
{
	if (rr->pool_waiting)
		roundrobin_later(rr);
}

static void
roundrobin_notify_cb(uv_timer_t *timer)
{
	struct roundrobin *rr = timer->data;

	if (rr->kick) {
		rr->kick = false;
		roundrobin_pump(rr);
	}
	if (!rr->pool_waiting || rr->ready == NULL)
		return;
	rr->pool_waiting = false;
	rr->ready(rr->arg);
}

/* The next block to hand out: 1, 0 (the reader calls back), -1 (none). */
static int
roundrobin_take(struct roundrobin *rr, struct block **out)
{
	struct queued_block *q = TAILQ_FIRST(&rr->requeued);

	if (rr->stopped)
		return -1;
	if (q != NULL) {
		TAILQ_REMOVE(&rr->requeued, q, entry);
		*out = q->block;
		free(q);
		return 1;
	}
	return block_reader_take(rr->reader, out);
}

/* b goes out before any new block. */
static void
roundrobin_give_back(struct roundrobin *rr, struct block *b)
{
	struct queued_block *q = xcalloc(1, sizeof *q);

	q->block = b;
	TAILQ_INSERT_HEAD(&rr->requeued, q, entry);
}

/* Start writing b into s's task. */
static void
roundrobin_begin(struct roundrobin_stream *s, struct block *b)
{
	struct roundrobin *rr = s->rr;

	assert(s->current == NULL);
	if (b->header_len > 0 && rr->header == NULL) {
		rr->header = xmemdup(b->header, b->header_len);
		rr->header_len = b->header_len;
	}
	/* --header lines start the stream, not each block (a block given
	 * back by a task that ended may start another stream). */
	free(b->header);
	b->header = NULL;
	b->header_len = 0;
	if (s->state == STREAM_NEW && rr->header != NULL) {
		b->header = xmemdup(rr->header, rr->header_len);
		b->header_len = rr->header_len;
	}
	s->current = b;
	if (s->state != STREAM_NEW) {
		s->state = STREAM_WRITING;
		rr->writing++;
	}
}

/* Give blocks to the streams that wait, while there are some. */
static void
roundrobin_pump(struct roundrobin *rr)
{
	struct roundrobin_stream *s;

	while ((s = TAILQ_FIRST(&rr->idle)) != NULL) {
		struct block *b;
		int rc = roundrobin_take(rr, &b);

		if (rc == 0)
			break; /* the reader calls back */
		if (rc > 0 && rr->streams < rr->jobs) {
			/* The first -j blocks start -j tasks. */
			roundrobin_give_back(rr, b);
			break;
		}
		TAILQ_REMOVE(&rr->idle, s, idle);
		if (rc < 0) {
			s->state = STREAM_CLOSED;
			block_feed_end(s->feed);
			continue;
		}
		roundrobin_begin(s, b);
		block_feed_give(s->feed, b);
	}
}

void
roundrobin_reader_ready(void *arg)
{
	roundrobin_pump(arg);
	roundrobin_notify(arg); /* a block may be there for a new task */
}

int
roundrobin_next(struct roundrobin *rr, struct input **out)
{
	struct roundrobin_stream *s;
	struct block *b;
	int rc;

	if (rr->stopped)
		return -1;
	if (rr->live >= rr->jobs) {
		rr->pool_waiting = true;
		return 0;
	}
	rc = roundrobin_take(rr, &b);
	if (rc < 0 && !TAILQ_EMPTY(&rr->idle)) {
		/* The streams that wait get EOF. */
		rr->kick = true;
		roundrobin_later(rr);
	}
	if (rc < 0 && rr->writing > 0)
		rc = 0; /* a task may yet end and give its block back */
	if (rc <= 0) {
		rr->pool_waiting = rc == 0;
		return rc;
	}
	s = xcalloc(1, sizeof *s);
	s->rr = rr;
	s->state = STREAM_NEW;
	s->self = xcalloc(1, sizeof *s->self);
	s->self->number = ++rr->streams;
	s->self->fd = -1;
	s->self->stream = s;
	roundrobin_begin(s, b);
	TAILQ_INSERT_TAIL(&rr->all, s, all);
	rr->live++;
	if (rr->streams == rr->jobs) {
		/* All started: the streams that wait may take blocks. */
		rr->kick = true;
		roundrobin_later(rr);
	}
	*out = block_input(s->self, "stream");
	return 1;
}

bool
roundrobin_exhausted(const struct roundrobin *rr, bool read_all)
{
	return rr->stopped || (read_all && TAILQ_EMPTY(&rr->requeued));
}

const struct block *
roundrobin_attach(struct roundrobin_stream *s, struct block_feed *f)
{
	assert(s->state == STREAM_NEW && s->current != NULL && s->rr != NULL);
	s->feed = f;
	s->state = STREAM_WRITING;
	s->rr->writing++;
	return s->current;
}

const struct block *
roundrobin_fed(struct roundrobin_stream *s, bool *end)
{
	struct roundrobin *rr = s->rr;
	struct block *b;
	int rc;

	assert(s->state == STREAM_WRITING && rr != NULL);
	s->self->blocks++;
	s->self->length += s->current->header_len + s->current->length;
	block_free(s->current);
	s->current = NULL;
	rr->writing--;
	rc = roundrobin_take(rr, &b);
	if (rc > 0 && rr->streams < rr->jobs) {
		/* The first -j blocks start -j tasks: this one waits. */
		roundrobin_give_back(rr, b);
		rc = 0;
	}
	if (rc > 0) {
		roundrobin_begin(s, b);
		return b;
	}
	if (rc < 0) {
		s->state = STREAM_CLOSED;
		*end = true;
		roundrobin_notify(rr);
	} else {
		s->state = STREAM_IDLE;
		TAILQ_INSERT_TAIL(&rr->idle, s, idle);
	}
	return NULL;
}

void
roundrobin_detach(struct roundrobin_stream *s, uint64_t written)
{
	struct roundrobin *rr = s->rr;
	char *had;

	assert(s->state != STREAM_NEW && s->state != STREAM_ENDED);
	s->feed = NULL;
	if (rr == NULL || s->state == STREAM_CLOSED) {
		s->state = STREAM_ENDED;
		if (rr != NULL)
			rr->live--;
		return;
	}
	had = xasprintf("its stdin was cut short: it ended before the input "
			"did, having been given %llu whole block%s (%llu "
			"bytes), which it may not all have read",
			(unsigned long long)s->self->blocks,
			s->self->blocks == 1 ? "" : "s",
			(unsigned long long)s->self->length);
	if (s->state == STREAM_IDLE) {
		TAILQ_REMOVE(&rr->idle, s, idle);
		s->verdict = had;
	} else if (written == 0) {
		/* Nothing of it went in: another task takes it whole. */
		s->verdict =
		    xasprintf("%s; block %llu, not yet written to "
			      "it, goes to another task",
			      had, (unsigned long long)s->current->number);
		roundrobin_give_back(rr, s->current);
		s->current = NULL;
		free(had);
	} else {
		const struct block *b = s->current;

		s->self->length += written;
		s->verdict = xasprintf(
		    "%s; block %llu (bytes %llu to %llu of the input) was "
		    "being written to it (%llu of %llu bytes) and is lost",
		    had, (unsigned long long)b->number,
		    (unsigned long long)b->offset,
		    (unsigned long long)(b->offset + b->length),
		    (unsigned long long)written,
		    (unsigned long long)(b->header_len + b->length));
		free(had);
	}
	if (s->state == STREAM_WRITING)
		rr->writing--;
	block_free(s->current);
	s->current = NULL;
	s->state = STREAM_ENDED;
	rr->live--;
	/* A block given back goes to a stream that waits, or a new task. */
	roundrobin_pump(rr);
	roundrobin_notify(rr);
}

void
roundrobin_result(const struct block *b, struct result *r)
{
	struct roundrobin_stream *s = b->stream;
	char *message;

	if (s == NULL)
		return;
	if (s->state == STREAM_NEW) {
		/* Its task never ran (its result says why): the block it was
		 * to start with is not written. */
		s->state = STREAM_ENDED;
		if (s->rr != NULL) {
			s->rr->live--;
			roundrobin_notify(s->rr);
		}
		s->verdict = xasprintf("block %llu was not written to any task",
				       (unsigned long long)s->current->number);
		block_free(s->current);
		s->current = NULL;
	}
	if (s->verdict == NULL)
		return;
	if (r->status == STATUS_OK)
		r->status = STATUS_FAILED;
	message = r->message != NULL
		      ? xasprintf("%s; %s", r->message, s->verdict)
		      : xstrdup(s->verdict);
	free(r->message);
	r->message = message;
}

void
roundrobin_stop(struct roundrobin *rr)
{
	struct roundrobin_stream *s;
	struct queued_block *q;

	if (rr == NULL || rr->stopped)
		return;
	rr->stopped = true;
	while ((q = TAILQ_FIRST(&rr->requeued)) != NULL) {
		TAILQ_REMOVE(&rr->requeued, q, entry);
		block_free(q->block);
		free(q);
	}
	/* The streams that wait get EOF; the others after their block. */
	while ((s = TAILQ_FIRST(&rr->idle)) != NULL) {
		TAILQ_REMOVE(&rr->idle, s, idle);
		s->state = STREAM_CLOSED;
		block_feed_end(s->feed);
	}
	if (!rr->notify_closing) {
		rr->notify_closing = true;
		uv_close((uv_handle_t *)&rr->notify, roundrobin_closed_cb);
	}
}

void
roundrobin_free(struct roundrobin *rr)
{
	struct roundrobin_stream *s;

	if (rr == NULL)
		return;
	roundrobin_stop(rr);
	/* The streams of tasks not yet freed outlive us. */
	while ((s = TAILQ_FIRST(&rr->all)) != NULL) {
		TAILQ_REMOVE(&rr->all, s, all);
		s->rr = NULL;
	}
	free(rr->header);
	rr->header = NULL;
	/* The timer's handle may still be closing: then free us after. */
	rr->freed = true;
	if (rr->notify_closed)
		free(rr);
}

void
roundrobin_stream_free(struct roundrobin_stream *s)
{
	if (s == NULL)
		return;
	if (s->rr != NULL) {
		if (s->state == STREAM_IDLE)
			TAILQ_REMOVE(&s->rr->idle, s, idle);
		if (s->state == STREAM_NEW) {
			/* Its task never ran (--dry-run, or stopped): its
			 * place goes to the next. */
			s->rr->live--;
			roundrobin_notify(s->rr);
		}
		TAILQ_REMOVE(&s->rr->all, s, all);
	}
	block_free(s->current);
	free(s->verdict);
	free(s);
}
