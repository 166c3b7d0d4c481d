/*
 * persist.c - persistent workers (--persist): one long-lived process of the
 * command per slot, fed one input per line on its stdin, answering each
 * input with exactly one line on its stdout, in order.
 *
 * This file is the line protocol only; session.c keeps the processes, the
 * batching and the FIFO of unanswered inputs.  A task of a chunk (-n) is as
 * many lines as it has inputs, and ends with its last answer.  An input
 * with a newline in it cannot be sent as one line: that task is bad input.
 * Answers are split with memchr in the blocks they are read in: no system
 * call per task.  A line nobody asked for, or a last line without its
 * newline, breaks the protocol: the worker is killed and replaced, and the
 * input it was working on takes the blame (blame_first).
 */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cpmap.h"

/* A persist worker: this machine's slots, each with a session. */
struct persist {
	struct session_set *sessions;
	struct worker *worker;
	unsigned slots;
	bool retired; /* gone from --workers-file: it gets no more places */
};

/*
 * Without --stride, a worker that answers in microseconds (cat, a lookup)
 * is given more requests at once, so that one write and one read carry
 * hundreds of them: up to 256 per worker and 512 for all of them, never
 * below the 64 it starts with.  Not more: each outstanding task holds
 * about a kilobyte, and past some 512 of them the tasks no longer fit a
 * core's cache (1 MiB here): 1024 in flight measured 30 cache misses a
 * task against 0.2 at 512, and ran slower than a stride of 64.
 */
#define PERSIST_STRIDE_START 64
#define PERSIST_STRIDE_MAX 256
#define PERSIST_STRIDE_ALL 512

unsigned
persist_stride_limit(unsigned slots)
{
	unsigned limit = PERSIST_STRIDE_ALL / (slots > 0 ? slots : 1);

	if (limit > PERSIST_STRIDE_MAX)
		return PERSIST_STRIDE_MAX;
	return limit < PERSIST_STRIDE_START ? PERSIST_STRIDE_START : limit;
}

/* The sessions found the workers quick: more places per slot. */
static void
persist_stride_grown(void *arg, unsigned stride)
{
	struct persist *ps = arg;

	/* Its last answers may still come quick: it stays gone. */
	if (!ps->retired)
		pool_worker_up(ps->worker, ps->slots, stride);
}

/* One line per input (-J: the compact record). */
static long
persist_encode(void *arg, struct buf *batch, const struct attempt_spec *spec,
	       char **cause)
{
	size_t start = batch->len;

	(void)arg;
	for (size_t i = 0; i < spec->input_count; i++) {
		struct input *in = spec->inputs[i];

		if (in->json != NULL) {
			size_t len;
			char *text = json_input_compact(in, &len);

			buf_append(batch, text, len);
			free(text);
		} else if (!in->one_line &&
			   memchr(in->text, '\n', in->len) != NULL) {
			*cause = xasprintf("input %llu holds a newline, which "
					   "a persistent worker cannot be sent",
					   (unsigned long long)in->number);
			batch->len = start;
			return -1;
		} else {
			buf_append(batch, in->text, in->len);
		}
		buf_append_char(batch, '\n');
	}
	return (long)spec->input_count;
}

/* Split the answers into lines; each belongs to the oldest attempt. */
static void
persist_decode(struct session *s, const char *data, size_t len)
{
	struct buf *partial = session_pending(s);
	const char *p = data, *end = data + len;

	if (len == 0) {
		if (partial->len > 0)
			session_broken(s, "the worker broke the protocol (a "
					  "last line without a newline)");
		return;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (nl == NULL) {
			buf_append(partial, p, (size_t)(end - p));
			return;
		}
		if (partial->len > 0) {
			buf_append(partial, p, (size_t)(nl - p) + 1);
			session_head_data(s, 1, partial->data, partial->len);
			partial->len = 0;
		} else {
			session_head_data(s, 1, p, (size_t)(nl - p) + 1);
		}
		session_head_answered(s);
		p = nl + 1;
	}
}

const struct session_protocol persist_protocol = {
    .name = "lines",
    .encode = persist_encode,
    .decode = persist_decode,
    .blame_first = true,
};

static void *
persist_create(struct worker *w, uv_loop_t *loop, const struct options *opts,
	       const struct worker_plan *plan)
{
	struct persist *ps = xcalloc(1, sizeof *ps);
	struct session_config config = {
	    .protocol = &persist_protocol,
	    .arg = ps,
	    .max_requests = opts->persist_max,
	    .kill_after_ms = opts->kill_after_ms,
	    .stall_check = true,
	    .stride = opts->stride,
	    .grow_to =
		opts->stride_auto ? persist_stride_limit(plan->slots) : 0,
	    .stride_grown = persist_stride_grown,
	};

	ps->worker = w;
	ps->slots = plan->slots;
	ps->sessions = session_set_create(loop, &config, plan->slots);
	pool_worker_up(w, plan->slots, opts->stride);
	return ps;
}

static void *
persist_start(void *state, const struct attempt_spec *spec,
	      const struct attempt_callbacks *cb, void *arg)
{
	struct persist *ps = state;

	return session_submit(ps->sessions, spec->argv, spec, cb, arg);
}

static void
persist_drain(void *state)
{
	struct persist *ps = state;

	session_set_drain(ps->sessions);
}

static void
persist_shutdown(void *state)
{
	struct persist *ps = state;

	session_set_shutdown(ps->sessions);
}

static void
persist_retire(void *state)
{
	struct persist *ps = state;

	ps->retired = true;
	session_set_retire(ps->sessions);
}

static void
persist_stop(void *state, int sig)
{
	struct persist *ps = state;

	session_set_stop(ps->sessions, sig);
}

static void
persist_free(void *state)
{
	struct persist *ps = state;

	session_set_free(ps->sessions);
	free(ps);
}

const struct worker_kind persist_worker = {
    .name = "persist",
    .per_slot_command = true,
    .batched = true,
    .create = persist_create,
    .start = persist_start,
    .signal = session_signal,
    .retire = persist_retire,
    .drain = persist_drain,
    .shutdown = persist_shutdown,
    .stop = persist_stop,
    .free = persist_free,
};
