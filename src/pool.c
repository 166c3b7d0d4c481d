/*
 * pool.c - the scheduler: slots, the flow of tasks, back-pressure, retries,
 * lost attempts, --halt, --resume, stopping.
 *
 * The pool takes inputs from the reader only when a place is free and fewer
 * than --buffer tasks are begun and unwritten; that one rule bounds memory
 * in every mode (a slow task at the head of an ordered run holds back at
 * most --buffer results) and keeps input unread until it is needed.  Each
 * task is built (task.c), started on a worker through its kind's table,
 * and its result handed to the output, which tells the pool when the task
 * has been written: only then is its joblog line written and the task
 * freed, so the log never claims more than was written.
 *
 * Workers are instances of kinds (this machine, persistent processes,
 * remote hosts) that serve slots.  A worker says how many slots it has and
 * how many attempts each may hold (its places) when it comes up, and may go
 * down and come back: its slots then take nothing, and the attempts it held
 * come back lost.  Free places wait on one list, so starting a task costs
 * the same however many slots there are.
 *
 * A failed attempt is retried (--retries) after a delay that doubles each
 * time; retries go before new inputs.  A lost attempt is not the task's
 * failure: it goes back in the queue without using up a retry (see
 * pool_lost).
 *
 * Concerns of their own, in files of their own: the inputs of the next
 * task (gather.c); whether an attempt may start, but for a free place
 * (gate.c: --delay, --load, --memfree, make's tokens, spawn failures);
 * each slot's --timeout and --kill-after (deadline.c); and what signals
 * do to the run (pool_signal.c, which shares the pool's state: pool.h).
 *
 * Stopping (pool_stop): nothing new starts; with a SIGINT or SIGTERM
 * (pool_signal.c) the running tasks are signalled, and the tasks it
 * interrupted get no result and no joblog line (a later --resume runs them
 * again), while the results that are complete are written.  SIGHUP and
 * --halt soon let running tasks finish; --halt now also stops them.
 * Nothing here calls exit(): the loop drains and main maps the outcome to
 * an exit status.
 */
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cpmap.h"
#include "pool.h"

/* A task lost this many times per worker ends host-lost: no task may keep
 * the pool busy forever by taking down every worker it reaches. */
#define POOL_LOSSES_PER_WORKER 10

/* A task for the inputs gathered. */
static struct task *
pool_new_task(struct pool *p)
{
	size_t count;
	struct input **inputs = gather_take(p->gather, &count);

	return task_create(p, p->out, ++p->next_seq, inputs, count,
			   p->opts->tagstring);
}

/* The tasks to run in all, when known (else 0): once the input is read to
 * its end, or from the inputs the reader counted up front. */
static uint64_t
pool_total(const struct pool *p)
{
	uint64_t inputs, tasks;

	if (gather_input_done(p->gather))
		return p->next_seq - p->skipped;
	if (p->opts->chunk_bytes > 0 || !input_total(p->reader, &inputs))
		return 0;
	tasks = (inputs + p->opts->chunk - 1) / p->opts->chunk;
	return tasks > p->skipped ? tasks - p->skipped : 0;
}

static void
pool_note_progress(struct pool *p)
{
	struct progress_counts c;

	if (p->progress == NULL)
		return; /* nothing to count per task without --progress */
	c = (struct progress_counts){
	    .done = p->failed + p->succeeded,
	    .failed = p->failed,
	    .running = p->running,
	    .total = pool_total(p),
	};
	input_bytes(p->reader, &c.bytes, &c.bytes_total);
	progress_note(p->progress, &c);
}

/* ---- results ----------------------------------------------------------- */

/* Hand a final result to the output; the task is freed once written. */
static void
pool_finish(struct pool *p, struct task *t, struct result *r)
{
	const struct halt_policy *h = &p->opts->halt;
	char *halting = NULL; /* what the --halt notice says of the task */

	if (r->status == STATUS_OK)
		p->succeeded++;
	else
		p->failed++;
	if (r->status == STATUS_OK)
		deadline_note_success(p->deadline, r);
	pool_note_progress(p);
	log_debug("result seq %llu: status %d exit %d signal %d",
		  (unsigned long long)t->seq, (int)r->status, r->exit_code,
		  r->signal);
	if (!p->halted && h->when != HALT_NEVER &&
	    halt_reached(h, p->failed, p->succeeded, pool_total(p))) {
		p->halted = true;
		p->halt_status = halt_exit_status(h, p->failed, p->succeeded,
						  pool_total(p), r);
		halting = output_describe(r);
	}
	task_done(t);
	/* t may be gone after this, and r's message with it. */
	output_finish(p->out, t->out, r);

	if (halting != NULL) {
		log_warn("--halt %s: %s; %s",
			 h->when == HALT_NOW ? "now" : "soon", halting,
			 h->when == HALT_NOW ? "stopping the running tasks"
					     : "starting no more tasks");
		free(halting);
		pool_stop(p, h->when == HALT_NOW, SIGTERM);
	}
	if (output_error(p->out) != 0 && p->stop_signal != SIGPIPE) {
		/* The reader of our stdout is gone: stop at once. */
		p->stop_signal = SIGPIPE;
		pool_stop(p, true, SIGKILL);
	}
}

/* End a task without running it: bad input, or no worker left. */
static void
pool_finish_error(struct pool *p, struct task *t, enum error_kind error,
		  char *message)
{
	struct result r;

	task_result_init(t, &r);
	r.status = STATUS_ERROR;
	r.error = error;
	r.message = message;
	if (error == ERROR_BAD_INPUT && p->opts->json_input &&
	    t->input_count == 1)
		r.line = t->inputs[0]->number; /* -J: one line each */
	pool_finish(p, t, &r);
}

/*
 * The output has written (or skipped) the task: log it, then free it.  A
 * task whose output was not written whole gets no line: --resume runs it
 * again.  Every other written task gets its line, even in a run that is
 * stopping, so that --resume never writes it twice.
 */
static void
pool_written_cb(void *owner, const struct result *r, bool whole)
{
	struct task *t = owner;
	struct pool *p = t->pool;

	if (r != NULL && !whole)
		p->left_undone = true;
	if (r != NULL && whole && p->joblog != NULL && !p->joblog_failed &&
	    !p->opts->dry_run) {
		struct buf command = {0};

		if (t->argv != NULL)
			shquote_command_line(&command, t->argv,
					     template_uses_shell(p->tmpl));
		if (p->opts->block_signature != NULL) /* --resume checks it */
			buf_append_str(&command, p->opts->block_signature);
		/* Written at the flush (pool_flushed_cb). */
		joblog_write(p->joblog, r, command.data ? command.data : "",
			     t->seen[1]);
		buf_free(&command);
	}
	task_free(t);
}

/*
 * The output has written what it held and told its owners: their joblog
 * lines go now, after it.  At the end of a turn, tasks may start again in
 * the places written.
 */
static void
pool_flushed_cb(void *arg, bool turn_end)
{
	struct pool *p = arg;

	if (p->joblog != NULL && !p->joblog_failed &&
	    joblog_flush(p->joblog) < 0) {
		log_warn("stopping: the joblog cannot be written");
		p->joblog_failed = true;
		p->aborted = true;
		pool_stop(p, true, SIGTERM);
	}
	if (output_error(p->out) != 0 && p->stop_signal != SIGPIPE) {
		/* The reader of our stdout is gone: stop at once. */
		p->stop_signal = SIGPIPE;
		pool_stop(p, true, SIGKILL);
	}
	if (turn_end)
		pool_fill(p);
}

/* ---- stopping ---------------------------------------------------------- */

/* The task runs again: what its last attempt wrote is dropped. */
static void
pool_forget_attempt(struct pool *p, struct task *t)
{
	output_reset(p->out, t->out);
	memset(t->seen, 0, sizeof t->seen);
}

static void
pool_retry_closed_cb(uv_handle_t *handle)
{
	struct task *t = handle->data;
	struct pool *p = t->pool;

	if (p->stopping) {
		/* A retry that will not happen: to do for --resume. */
		p->left_undone = true;
		output_discard(p->out, t->out);
	} else {
		TAILQ_INSERT_TAIL(&p->ready, t, queue);
	}
	pool_fill(p);
}

/*
 * Start nothing new; drop the retries not yet run; with stop_running, send
 * sig to every running task, whose result will not be written.
 */
void
pool_stop(struct pool *p, bool stop_running, int sig)
{
	struct task *t;

	p->stopping = true;
	if (gather_stop(p->gather)) /* no task will use what is left */
		p->left_undone = true;
	while ((t = TAILQ_FIRST(&p->ready)) != NULL) {
		TAILQ_REMOVE(&p->ready, t, queue);
		p->left_undone = true;
		output_discard(p->out, t->out);
	}
	while ((t = TAILQ_FIRST(&p->waiting)) != NULL) {
		TAILQ_REMOVE(&p->waiting, t, queue);
		uv_timer_stop(&t->retry_timer);
		uv_close((uv_handle_t *)&t->retry_timer, pool_retry_closed_cb);
	}
	if (!stop_running)
		return;
	for (size_t i = 0; i < roster_slot_count(p->roster); i++) {
		struct slot *s = roster_slot(p->roster, i);

		TAILQ_FOREACH(t, &s->attempts, in_slot)
		{
			t->interrupted = true;
			s->worker->kind->signal(t->attempt, sig);
		}
	}
}

/* ---- places ---------------------------------------------------------- */

/* The number of attempts running changed: tokens not needed go back. */
static void
pool_note_running(struct pool *p)
{
	gate_running(p->gate, p->running);
}

/* The attempt has left its slot: its place is free again. */
static void
pool_release_slot(struct pool *p, struct task *t)
{
	struct slot *s = t->slot;
	bool was_oldest;

	if (s == NULL)
		return;
	was_oldest = TAILQ_FIRST(&s->attempts) == t;
	TAILQ_REMOVE(&s->attempts, t, in_slot);
	t->slot = NULL;
	p->running--;
	pool_note_running(p);
	roster_release(p->roster, s);
	if (was_oldest) /* the next one in line is worked on now */
		deadline_rearm(p->deadline, s);
}

/* ---- lost attempts ---------------------------------------------------- */

/*
 * An attempt lost with its worker is not the task's failure: it goes back
 * at the head of the queue, without using up a retry, and runs at the
 * first free place (on whichever worker is up).  While no worker is up it
 * waits there; once every worker is gone for good it ends host-lost.
 */
static void
pool_lost(struct pool *p, struct task *t, struct worker *w)
{
	w->losses++;
	if (++t->lost >
	    POOL_LOSSES_PER_WORKER * roster_worker_count(p->roster)) {
		pool_finish_error(
		    p, t, ERROR_HOST_LOST,
		    xasprintf("lost with its worker %u times", t->lost));
		return;
	}
	log_debug("requeue seq %llu (lost %u times, %s has lost %llu)",
		  (unsigned long long)t->seq, t->lost, w->name,
		  (unsigned long long)w->losses);
	pool_forget_attempt(p, t);
	t->timed_out = false;
	TAILQ_INSERT_HEAD(&p->ready, t, queue);
}

/* ---- attempts ---------------------------------------------------------- */

static void
pool_attempt_data_cb(void *arg, int stream, const char *data, size_t len)
{
	struct task *t = arg;
	struct pool *p = t->pool;
	uint64_t limit = p->opts->max_output;
	uint64_t kept = t->seen[stream];

	t->seen[stream] += len;
	if (limit > 0) {
		/* Keep up to the limit; count the rest to report its size. */
		if (kept >= limit)
			return;
		if (kept + len > limit)
			len = (size_t)(limit - kept);
	}
	output_data(p->out, t->out, stream, data, len);
	if (capture_failure() != 0 && !p->aborted) {
		log_warn("stopping: task output cannot be kept");
		p->aborted = true;
		pool_stop(p, true, SIGTERM);
	}
}

/* The delay is over: the task joins the ready queue once its timer closed. */
static void
pool_retry_due_cb(uv_timer_t *timer)
{
	struct task *t = timer->data;

	TAILQ_REMOVE(&t->pool->waiting, t, queue);
	uv_close((uv_handle_t *)timer, pool_retry_closed_cb);
}

/* Put a failed attempt's task back, after --retry-delay doubled per try. */
static void
pool_retry(struct pool *p, struct task *t)
{
	uint64_t delay = p->opts->retry_delay_ms;

	for (unsigned i = 1; i < t->attempts && delay < 3600000; i++)
		delay *= 2;
	pool_forget_attempt(p, t);
	t->timed_out = false;
	if (t->input_count > 0 && t->inputs[0]->block != NULL)
		block_hold(t->inputs[0]->block); /* --pipe: maybe to a file */
	if (delay == 0) {
		/* Due now: before any new input. */
		TAILQ_INSERT_TAIL(&p->ready, t, queue);
		return;
	}
	uv_timer_init(p->loop, &t->retry_timer);
	t->retry_timer.data = t;
	TAILQ_INSERT_TAIL(&p->waiting, t, queue);
	uv_timer_start(&t->retry_timer, pool_retry_due_cb, delay, 0);
}

static void
pool_refill_cb(uv_idle_t *idle)
{
	struct pool *p = idle->data;

	uv_idle_stop(idle);
	pool_fill(p);
}

/*
 * Fill the places an attempt freed once the loop has run every callback
 * of this turn: a long-lived worker's read ends hundreds of attempts, and
 * one fill for all of them costs less than one each.  An idle handle, so
 * that the loop does not block before it runs.
 */
static void
pool_refill_soon(struct pool *p)
{
	if (p->refill_open) {
		if (!uv_is_active((uv_handle_t *)&p->refill))
			(void)uv_idle_start(&p->refill, pool_refill_cb);
	} else
		pool_fill(p);
}

static void
pool_attempt_done_cb(void *arg, const struct attempt_end *end)
{
	struct task *t = arg;
	struct pool *p = t->pool;
	struct worker *w = t->slot->worker;
	int error = end->spawn_error;
	struct result r;

	t->attempt = NULL;
	pool_release_slot(p, t);
	if (!p->stopping &&
	    (error == EAGAIN || error == EMFILE || error == ENFILE ||
	     error == ENOMEM) &&
	    gate_spawn_wait(p->gate, p->running)) {
		/* Out of processes or descriptors: not the task's fault. */
		t->attempts--;
		TAILQ_INSERT_HEAD(&p->ready, t, queue);
		return;
	}
	if (t->shed && !p->stopping && !t->interrupted &&
	    (error != 0 || end->lost || end->signal != 0 ||
	     end->exit_code != 0)) {
		/* --memfree stopped it: again later, not a failure. */
		t->shed = false;
		t->attempts--;
		t->timed_out = false;
		pool_forget_attempt(p, t);
		TAILQ_INSERT_HEAD(&p->ready, t, queue);
		pool_fill(p);
		return;
	}
	t->shed = false;
	gate_attempt_ended(p->gate, error == 0);
	timeline_note(p->opts->timeline, t, end); /* --timeline */
	if (p->opts->output_mode == OUTPUT_UNGROUP && error == 0 &&
	    end->signal == SIGPIPE && output_stdout_gone(p->out)) {
		/* -u: it wrote to our stdout after its reader left. */
		t->interrupted = true;
	}
	if (end->lost && !t->interrupted && !p->stopping) {
		pool_lost(p, t, w);
		pool_fill(p);
		return;
	}
	/* A task we stopped has no result, unless it finished all the same. */
	if (t->interrupted && (end->lost || error != 0 || end->signal != 0 ||
			       end->exit_code != 0)) {
		output_discard(p->out, t->out);
		pool_fill(p);
		return;
	}
	task_make_result(t, p->opts, end, &r);
	if (t->input_count > 0 && t->inputs[0]->block != NULL)
		roundrobin_result(t->inputs[0]->block, &r); /* --round-robin */
	if (r.status != STATUS_OK && r.error != ERROR_BAD_INPUT &&
	    !p->stopping && ++t->failures <= p->opts->retries) {
		char then[64];

		snprintf(then, sizeof then, "; retrying (attempt %u of %u)",
			 t->attempts + 1, p->opts->retries + 1);
		output_report(&r, then);
		free(r.message);
		pool_retry(p, t);
	} else {
		pool_finish(p, t, &r);
	}
	pool_refill_soon(p);
}

static const struct attempt_callbacks pool_attempt_callbacks = {
    .data = pool_attempt_data_cb,
    .done = pool_attempt_done_cb,
};

/* Build the task for a free place and start an attempt there. */
static void
pool_launch(struct pool *p, struct task *t)
{
	struct slot *s;
	const struct worker_kind *kind;
	char *cause = NULL;
	char **argv;
	uint64_t now;

	if (roster_all_gone(p->roster)) {
		pool_finish_error(p, t, ERROR_HOST_LOST,
				  xstrdup("no worker is left to run it"));
		return;
	}
	s = roster_take(p->roster);
	assert(s != NULL);
	kind = s->worker->kind;
	t->slot = s;
	t->last_slot = s->number;
	t->host = s->worker->name;
	TAILQ_INSERT_TAIL(&s->attempts, t, in_slot);
	p->running++;
	pool_note_running(p);
	argv = task_command(t, p->opts, p->tmpl, s->number,
			    kind->per_slot_command ? &s->argv : NULL, &cause);
	if (argv == NULL) {
		/* Bad input is the task's result, not the run's end. */
		pool_release_slot(p, t);
		pool_finish_error(p, t, ERROR_BAD_INPUT, cause);
		return;
	}
	if (p->opts->dry_run) {
		struct result r;

		task_dry_run(t, p->out, p->tmpl, &r);
		pool_release_slot(p, t);
		p->succeeded++;
		output_finish(p->out, t->out, &r);
		return;
	}

	struct attempt_spec spec = {
	    .argv = argv,
	    .inputs = t->inputs,
	    .input_count = t->input_count,
	    .stdin_data = t->stdin_data,
	    .stdin_len = t->stdin_len,
	    .block = t->inputs[0]->block,
	    .capture = p->opts->output_mode != OUTPUT_UNGROUP,
	    .seq = t->seq,
	    .slot = s->number,
	    .slot_index = s->index,
	};

	/* A batch goes out at the end of the turn: one clock for it. */
	if (!kind->batched)
		now = uv_hrtime();
	else if ((now = p->fill_ns) == 0)
		now = p->fill_ns = uv_hrtime();
	task_started(t, &p->clock, now);
	gate_started(p->gate, t->start_ns);
	if (p->opts->verbose)
		task_announce(t, p->tmpl);
	t->attempts++;
	if (TAILQ_FIRST(&s->attempts) == t)
		deadline_arm(p->deadline, s);
	pool_note_progress(p);
	log_debug("start seq %llu at slot %u (%s), attempt %u",
		  (unsigned long long)t->seq, s->number, s->worker->name,
		  t->attempts);
	t->attempt =
	    kind->start(s->worker->data, &spec, &pool_attempt_callbacks, t);
	assert(t->attempt != NULL);
}

/* ---- the flow of tasks ------------------------------------------------- */

/* A bad input is a task of its own whose result says what is wrong. */
static void
pool_bad_input(struct pool *p, struct input *in)
{
	struct result r;
	struct task *t;

	if (p->opts->bad_input == BAD_INPUT_SKIP) {
		log_warn("skipping bad input: %s", in->error);
		input_free(in);
		return;
	}
	t = task_create(p, p->out, ++p->next_seq, &in, 1, p->opts->tagstring);
	task_result_init(t, &r);
	r.status = STATUS_ERROR;
	r.error = ERROR_BAD_INPUT;
	r.message = xstrdup(in->error);
	r.line = in->error_line;
	r.column = in->error_column;
	pool_finish(p, t, &r);
	if (p->opts->bad_input == BAD_INPUT_ABORT && !p->aborted) {
		log_warn("stopping: bad input (--on-bad-input=abort)");
		p->aborted = true;
		pool_stop(p, false, 0);
	}
}

/* Everything is done: close what keeps the loop alive. */
static void
pool_close(struct pool *p)
{
	p->finished = true;
	if (p->refill_open) {
		uv_close((uv_handle_t *)&p->refill, NULL);
		p->refill_open = false;
	}
	pool_signals_stop(p);
	roster_close(p->roster);
	gate_stop(p->gate);
	pool_note_progress(p);
	progress_stop(p->progress);
	p->progress = NULL;
	input_stop(p->reader);
}

/* Is there a place for a task, or a verdict for it (no worker left)? */
static bool
pool_can_place(const struct pool *p)
{
	return roster_has_place(p->roster) || roster_all_gone(p->roster);
}

/* Start tasks while places are free, the buffer has room and input is
 * ready. */
void
pool_fill(struct pool *p)
{
	p->fill_ns = 0; /* read when the first batched attempt starts */
	while (!p->stopping && !gate_spawn_blocked(p->gate) &&
	       pool_can_place(p) && gate_delay_over(p->gate)) {
		struct task *t = TAILQ_FIRST(&p->ready);
		struct input *bad;

		if (t != NULL) {
			if (!gate_may_start(p->gate, p->running))
				break;
			TAILQ_REMOVE(&p->ready, t, queue);
			pool_launch(p, t);
			continue;
		}
		if (output_pending(p->out) >= p->opts->buffer)
			break;
		if ((bad = gather_take_bad(p->gather)) != NULL) {
			pool_bad_input(p, bad);
			continue;
		}
		if (!gather_next(p->gather)) {
			if (gather_has_bad(p->gather))
				continue; /* a bad input, with no chunk before
					     it */
			if (!gather_input_done(p->gather))
				return; /* the reader calls back */
			break;
		}
		if (done_set_has(p->done, p->next_seq + 1)) {
			/* --resume: an earlier run did this one. */
			t = pool_new_task(p);
			p->skipped++;
			output_discard(p->out, t->out);
			continue;
		}
		t = pool_new_task(p);
		if (!gate_may_start(p->gate, p->running)) {
			/* It goes first once the machine or a token allows. */
			TAILQ_INSERT_HEAD(&p->ready, t, queue);
			break;
		}
		pool_launch(p, t);
	}
	if (!p->stopping && p->running == 0 && TAILQ_EMPTY(&p->ready) &&
	    TAILQ_EMPTY(&p->waiting) && !pool_can_place(p) &&
	    !gather_input_done(p->gather)) {
		/* No place, and nothing runs to free one (the workers left
		 * are down): has the input ended?  Then the run is over.
		 * Else one chunk waits here for a place. */
		(void)gather_next(p->gather);
	}
	gate_settle(p->gate, p->running);
	if (!p->drained && gather_drained(p->gather) &&
	    TAILQ_EMPTY(&p->ready) && TAILQ_EMPTY(&p->waiting)) {
		/* Whatever runs now is the last: a worker that buffers its
		 * answers gets EOF and gives them. */
		p->drained = true;
		roster_drain(p->roster);
	}
	if (!p->finished && gather_drained(p->gather) && p->running == 0 &&
	    TAILQ_EMPTY(&p->ready) && TAILQ_EMPTY(&p->waiting) &&
	    output_pending(p->out) == 0)
		pool_close(p);
}

static void
pool_input_ready_cb(void *arg)
{
	pool_fill(arg);
}

/*
 * --memfree: memory is short.  Stop the youngest attempt (SIGTERM, then
 * SIGKILL after --kill-after) to run it again later; never the last one
 * running, so that the run always moves on.
 */
static void
pool_shed_cb(void *arg)
{
	struct pool *p = arg;
	struct task *youngest = NULL, *t;
	unsigned left = 0;

	for (size_t i = 0; !p->stopping && i < roster_slot_count(p->roster);
	     i++)
		TAILQ_FOREACH(t, &roster_slot(p->roster, i)->attempts, in_slot)
		{
			if (t->shed)
				continue;
			left++;
			if (youngest == NULL ||
			    t->start_ns > youngest->start_ns)
				youngest = t;
		}
	if (left < 2)
		return;
	log_debug("shed seq %llu", (unsigned long long)youngest->seq);
	youngest->shed = true;
	youngest->slot->worker->kind->signal(youngest->attempt, SIGTERM);
	if (TAILQ_FIRST(&youngest->slot->attempts) == youngest)
		deadline_kill_after(p->deadline, youngest->slot);
}

/* ---- the pool ---------------------------------------------------------- */

struct pool *
pool_create(uv_loop_t *loop, const struct options *opts, struct template *tmpl,
	    struct input_reader *reader, char **cause)
{
	struct pool *p = xcalloc(1, sizeof *p);

	p->loop = loop;
	p->opts = opts;
	p->tmpl = tmpl;
	p->reader = reader;
	TAILQ_INIT(&p->ready);
	TAILQ_INIT(&p->waiting);
	if (opts->joblog != NULL) {
		if (opts->resume || opts->resume_failed) {
			p->done = joblog_read_done(opts->joblog,
						   opts->resume_failed, cause);
			if (p->done == NULL) {
				free(p);
				return NULL;
			}
		}
		p->joblog = joblog_open(opts->joblog,
					opts->resume || opts->resume_failed ||
					    opts->joblog_append,
					cause);
		if (p->joblog == NULL) {
			done_set_free(p->done);
			free(p);
			return NULL;
		}
	}
	p->out = output_create(opts, pool_written_cb);
	input_set_ready(reader, pool_input_ready_cb, p);
	p->gather = gather_create(opts, reader);
	assert(opts->worker_count > 0);
	p->roster = roster_create(loop, opts, p, pool_fill);
	p->deadline = deadline_create(opts, p->roster);
	p->gate = gate_create(loop, opts, pool_input_ready_cb, pool_shed_cb, p);
	for (size_t i = 0; i < opts->worker_count; i++)
		(void)roster_add(p->roster, &opts->workers[i]);
	return p;
}

void
pool_run(struct pool *p)
{
	pool_signals_start(p);
	gate_start(p->gate);
	/* A joblog on a pipe (as stdout) gets each line right after its
	 * task's output, as GNU parallel's: no coalescing then. */
	output_start(p->out, p->loop,
		     p->joblog == NULL || joblog_is_file(p->joblog),
		     pool_flushed_cb, p);
	if (p->opts->progress || p->opts->bar)
		p->progress = progress_start(p->loop, p->opts->bar);
	if (uv_idle_init(p->loop, &p->refill) != 0)
		fatal("cannot watch the loop");
	p->refill.data = p;
	p->refill_open = true;
	roster_start(p->roster);
	pool_fill(p);
	(void)uv_run(p->loop, UV_RUN_DEFAULT);
}

int
pool_exit_status(const struct pool *p)
{
	if (p->stop_signal == SIGINT || p->stop_signal == SIGTERM)
		return 128 + p->stop_signal;
	if (p->aborted || results_failed())
		return CPMAP_EXIT_USAGE;
	if (p->halted)
		return p->halt_status;
	if (p->stop_signal == SIGHUP && p->left_undone)
		return 128 + SIGHUP;
	return halt_failure_status(&p->opts->halt, p->failed, p->succeeded);
}

void
pool_add_worker(struct pool *p, const struct worker_plan *plan)
{
	(void)roster_add(p->roster, plan);
	pool_fill(p);
}

void
pool_retire_worker(struct pool *p, const char *name)
{
	if (roster_retire(p->roster, name))
		pool_fill(p);
}

int
pool_output_error(const struct pool *p)
{
	return output_error(p->out);
}

void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pool_signals_forget(p);
	gather_free(p->gather);
	output_free(p->out);
	joblog_close(p->joblog);
	roster_free(p->roster);
	done_set_free(p->done);
	deadline_free(p->deadline);
	gate_free(p->gate);
	free(p);
}
