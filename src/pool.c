/*
 * pool.c - the scheduler: slots, the flow of tasks, back-pressure, retries,
 * lost attempts, timeouts, --halt, --resume, signals.
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
 * pool_lost).  A slot's timer bounds its oldest attempt (--timeout):
 * SIGTERM to its process group, then SIGKILL after --kill-after.
 *
 * Stopping: the first SIGINT or SIGTERM starts nothing new, sends SIGTERM
 * to every running task's process group, writes the results that are
 * complete and ends with 130 or 143; the tasks it interrupted get no result
 * and no joblog line (a later --resume runs them again).  A second one
 * sends SIGKILL.  SIGHUP and --halt soon start nothing new and let running
 * tasks finish; --halt now also stops them.  Nothing here calls exit(): the
 * loop drains and main maps the outcome to an exit status.
 */
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"

/* A task lost this many times per worker ends host-lost: no task may keep
 * the pool busy forever by taking down every worker it reaches. */
#define POOL_LOSSES_PER_WORKER 10
/* Out of descriptors or processes: wait this long for them to come back
 * when no task runs (a task that ends frees them sooner), this many times
 * in a row before the task fails with the error. */
#define POOL_SPAWN_WAIT_MS 200
#define POOL_SPAWN_WAITS_ALONE 25

TAILQ_HEAD(task_queue, task);

struct pool {
	uv_loop_t *loop;
	const struct options *opts;
	struct template *tmpl;
	struct input_reader *reader;
	struct output *out;
	struct roster *roster; /* the workers and their places */
	unsigned running;      /* attempts in flight */
	struct input **chunk;  /* inputs gathered for the next task */
	size_t chunk_count;
	size_t chunk_bytes; /* their bytes (-X, -m) */
	struct input *held; /* a bad input waiting for its chunk to start */
	struct task_queue ready;   /* retries and requeues due now */
	struct task_queue waiting; /* retries waiting for their delay */
	bool spawn_blocked;	   /* out of processes or descriptors: wait */
	unsigned spawn_waits;	   /* ... in a row, with no task running */
	uv_timer_t spawn_timer;	   /* ... until a task ends, or this fires */
	uint64_t next_seq;
	uint64_t failed, succeeded, skipped;
	bool input_done;
	bool drained;	 /* the workers know no more input will come */
	bool stopping;	 /* start nothing new */
	bool finished;	 /* every handle of ours is closed */
	int stop_signal; /* the signal that stopped us, or 0 */
	unsigned signal_count;
	bool left_undone;   /* inputs were left unread or unrun */
	bool aborted;	    /* --on-bad-input=abort, or a write failed */
	bool joblog_failed; /* a joblog line could not be written: no more */
	bool halted;	    /* --halt's condition was met */
	int halt_status;    /* the exit status --halt decided */
	struct joblog *joblog;
	struct done_set *done; /* --resume: tasks done in an earlier run */
	struct progress *progress;
	uv_signal_t signals[3];
	uv_timer_t delay_timer;	 /* --delay: until the next start may go */
	uint64_t last_start_ns;	 /* --delay: when the last attempt started */
	struct median *runtimes; /* --timeout P%: of the tasks that succeeded */
	struct jobserver *jobserver; /* make's tokens, or NULL */
	struct throttle *throttle;   /* --load, --memfree, or NULL */
};

static const int pool_signals[3] = {SIGINT, SIGTERM, SIGHUP};

/* The pool whose workers a signal during a stalled write must stop. */
static struct pool *pool_running;

static void pool_fill(struct pool *p);
static void pool_stop(struct pool *p, bool stop_running, int sig);
static void pool_note_runtime(struct pool *p, const struct result *r);

static struct task *
pool_new_task(struct pool *p)
{
	struct task *t = task_create(p, p->out, ++p->next_seq, p->chunk,
				     p->chunk_count, p->opts->tagstring);

	p->chunk_count = 0;
	p->chunk_bytes = 0;
	return t;
}

/* The tasks to run in all, when known (else 0): once the input is read to
 * its end, or from the inputs the reader counted up front. */
static uint64_t
pool_total(const struct pool *p)
{
	uint64_t inputs, tasks;

	if (p->input_done)
		return p->next_seq - p->skipped;
	if (p->opts->chunk_bytes > 0 || !input_total(p->reader, &inputs))
		return 0;
	tasks = (inputs + p->opts->chunk - 1) / p->opts->chunk;
	return tasks > p->skipped ? tasks - p->skipped : 0;
}

static void
pool_note_progress(struct pool *p)
{
	struct progress_counts c = {
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
	if (r->status == STATUS_OK && p->runtimes != NULL)
		pool_note_runtime(p, r);
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

/* Stop reading input and drop what was gathered: no task will use it. */
static void
pool_stop_input(struct pool *p)
{
	/* Was anything left?  The reader may not have seen its end yet. */
	if (!p->input_done && !input_exhausted(p->reader))
		p->left_undone = true;
	if (p->chunk_count > 0 || p->held != NULL)
		p->left_undone = true;
	input_stop(p->reader);
	for (size_t i = 0; i < p->chunk_count; i++)
		input_free(p->chunk[i]);
	p->chunk_count = 0;
	p->chunk_bytes = 0;
	input_free(p->held);
	p->held = NULL;
	p->input_done = true;
}

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
static void
pool_stop(struct pool *p, bool stop_running, int sig)
{
	struct task *t;

	p->stopping = true;
	pool_stop_input(p);
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

/* ---- places and timers ------------------------------------------------ */

static void pool_timeout_cb(uv_timer_t *timer);

/* The --timeout now: fixed, or P% of the median runtime (0: none yet). */
static uint64_t
pool_timeout_ms(const struct pool *p)
{
	uint64_t median;

	if (p->opts->timeout_percent == 0)
		return p->opts->timeout_ms;
	if (!median_get(p->runtimes, &median))
		return 0;
	median = (uint64_t)((double)median * p->opts->timeout_percent / 100);
	return median > 0 ? median : 1;
}

/* Time the oldest attempt at the slot (--timeout). */
static void
pool_arm_timer(struct pool *p, struct slot *s)
{
	uint64_t ms = pool_timeout_ms(p);

	if (ms > 0 && !TAILQ_EMPTY(&s->attempts))
		uv_timer_start(&s->timer, pool_timeout_cb, ms, 0);
}

/*
 * --timeout P%: a task that succeeded moves the median, and the attempts
 * started before there was one are timed from now on (for what is left
 * of their time).
 */
static void
pool_note_runtime(struct pool *p, const struct result *r)
{
	uint64_t ms, now = uv_hrtime();

	median_add(p->runtimes, (uint64_t)(r->duration * 1000));
	ms = pool_timeout_ms(p);
	for (size_t i = 0; i < roster_slot_count(p->roster); i++) {
		struct slot *s = roster_slot(p->roster, i);
		struct task *t = TAILQ_FIRST(&s->attempts);
		uint64_t ran;

		if (t == NULL || uv_is_active((uv_handle_t *)&s->timer))
			continue;
		ran = (now - t->start_ns) / 1000000;
		uv_timer_start(&s->timer, pool_timeout_cb,
			       ran < ms ? ms - ran : 1, 0);
	}
}

/* The number of attempts running changed: tokens not needed go back. */
static void
pool_note_running(struct pool *p)
{
	jobserver_settle(p->jobserver, p->running);
	throttle_running(p->throttle, p->running);
}

/* --load, --memfree and make's jobserver: may one more attempt start? */
static bool
pool_may_start(struct pool *p)
{
	return p->opts->dry_run || (throttle_open(p->throttle) &&
				    jobserver_take(p->jobserver, p->running));
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
	if (was_oldest) {
		/* The next one in line is worked on now: time it afresh. */
		uv_timer_stop(&s->timer);
		pool_arm_timer(p, s);
	}
}

static void
pool_kill_after_cb(uv_timer_t *timer)
{
	struct slot *s = timer->data;
	struct task *t = TAILQ_FIRST(&s->attempts);

	/* The attempt it timed may have ended since: the next one is timed
	 * afresh by pool_release_slot, which stops this timer. */
	assert(t != NULL);
	s->worker->kind->signal(t->attempt, SIGKILL);
}

static void
pool_timeout_cb(uv_timer_t *timer)
{
	struct slot *s = timer->data;
	struct task *t = TAILQ_FIRST(&s->attempts);

	assert(t != NULL);
	t->timed_out = true;
	t->timeout_ms = pool_timeout_ms(s->pool);
	log_debug("timeout seq %llu at slot %u", (unsigned long long)t->seq,
		  s->number);
	s->worker->kind->signal(t->attempt, SIGTERM);
	uv_timer_start(&s->timer, pool_kill_after_cb,
		       s->pool->opts->kill_after_ms, 0);
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
pool_spawn_timer_cb(uv_timer_t *timer)
{
	struct pool *p = timer->data;

	p->spawn_blocked = false;
	pool_fill(p);
}

/*
 * An attempt could not start for want of processes or descriptors: start
 * nothing until a task ends (or, with none running, a while has passed).
 * False when that has failed too often with nothing running: then nothing
 * will free what is missing, and the task fails with the error.
 */
static bool
pool_spawn_wait(struct pool *p)
{
	if (p->running == 0 && ++p->spawn_waits > POOL_SPAWN_WAITS_ALONE) {
		p->spawn_waits = 0;
		return false;
	}
	if (!p->spawn_blocked)
		log_debug("spawn blocked with %u running", p->running);
	p->spawn_blocked = true;
	uv_timer_start(&p->spawn_timer, pool_spawn_timer_cb, POOL_SPAWN_WAIT_MS,
		       0);
	return true;
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
	    pool_spawn_wait(p)) {
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
	if (error == 0)
		p->spawn_waits = 0;
	p->spawn_blocked = false;
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
	pool_fill(p);
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
	struct timespec now;
	char *cause = NULL;
	char **argv;

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

	clock_gettime(CLOCK_REALTIME, &now);
	t->start = (double)now.tv_sec + (double)(now.tv_nsec / 1000) / 1e6;
	t->start_ns = p->last_start_ns = uv_hrtime();
	if (p->opts->verbose)
		task_announce(t, p->tmpl);
	t->attempts++;
	if (TAILQ_FIRST(&s->attempts) == t)
		pool_arm_timer(p, s);
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
	p->chunk[p->chunk_count++] = in;
	t = pool_new_task(p);
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

/* Gather the next task's inputs: true when it has some to go. */
static bool
pool_gather(struct pool *p)
{
	while (!p->input_done && p->held == NULL &&
	       p->chunk_count < p->opts->chunk) {
		struct input *in;
		int rc = input_next(p->reader, &in);

		if (rc == 0)
			return false; /* the reader calls back */
		if (rc < 0) {
			p->input_done = true;
			break;
		}
		if (in->error != NULL) {
			p->held = in; /* after the chunk before it */
		} else {
			p->chunk[p->chunk_count++] = in;
			p->chunk_bytes += in->len + 1;
			if (p->opts->chunk_bytes > 0 &&
			    p->chunk_bytes >= p->opts->chunk_bytes)
				return true; /* -X: as many as fit */
		}
	}
	return p->chunk_count > 0 && (p->chunk_count == p->opts->chunk ||
				      p->input_done || p->held != NULL);
}

/* Everything is done: close what keeps the loop alive. */
static void
pool_close(struct pool *p)
{
	p->finished = true;
	for (int i = 0; i < 3; i++)
		uv_close((uv_handle_t *)&p->signals[i], NULL);
	uv_close((uv_handle_t *)&p->delay_timer, NULL);
	uv_close((uv_handle_t *)&p->spawn_timer, NULL);
	output_unwatch_stdout(p->out);
	roster_close(p->roster);
	jobserver_stop(p->jobserver);
	throttle_stop(p->throttle);
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

static void
pool_delay_cb(uv_timer_t *timer)
{
	pool_fill(timer->data);
}

/* --delay: may the next attempt start now?  If not, a timer calls back. */
static bool
pool_delay_over(struct pool *p)
{
	uint64_t now, due;

	if (p->opts->delay_ms == 0 || p->last_start_ns == 0)
		return true;
	now = uv_hrtime();
	due = p->last_start_ns + p->opts->delay_ms * 1000000;
	if (now >= due)
		return true;
	if (!uv_is_active((uv_handle_t *)&p->delay_timer))
		uv_timer_start(&p->delay_timer, pool_delay_cb,
			       (due - now + 999999) / 1000000, 0);
	return false;
}

/* Start tasks while places are free, the buffer has room and input is
 * ready. */
static void
pool_fill(struct pool *p)
{
	while (!p->stopping && !p->spawn_blocked && pool_can_place(p) &&
	       pool_delay_over(p)) {
		struct task *t = TAILQ_FIRST(&p->ready);

		if (t != NULL) {
			if (!pool_may_start(p))
				break;
			TAILQ_REMOVE(&p->ready, t, queue);
			pool_launch(p, t);
			continue;
		}
		if (output_pending(p->out) >= p->opts->buffer)
			break;
		if (p->held != NULL && p->chunk_count == 0) {
			struct input *bad = p->held;

			p->held = NULL;
			pool_bad_input(p, bad);
			continue;
		}
		if (!pool_gather(p)) {
			if (p->held != NULL)
				continue; /* a bad input, with no chunk before
					     it */
			if (!p->input_done)
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
		if (!pool_may_start(p)) {
			/* It goes first once the machine or a token allows. */
			TAILQ_INSERT_HEAD(&p->ready, t, queue);
			break;
		}
		pool_launch(p, t);
	}
	jobserver_settle(p->jobserver, p->running);
	if (!p->drained && p->input_done && p->held == NULL &&
	    p->chunk_count == 0 && TAILQ_EMPTY(&p->ready) &&
	    TAILQ_EMPTY(&p->waiting)) {
		/* Whatever runs now is the last: a worker that buffers its
		 * answers gets EOF and gives them. */
		p->drained = true;
		roster_drain(p->roster);
	}
	if (!p->finished && p->input_done && p->held == NULL &&
	    p->running == 0 && TAILQ_EMPTY(&p->ready) &&
	    TAILQ_EMPTY(&p->waiting) && output_pending(p->out) == 0)
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
		uv_timer_start(&youngest->slot->timer, pool_kill_after_cb,
			       p->opts->kill_after_ms, 0);
}

/*
 * A signal came while a write to stdout waits for a reader that does not
 * read, so the loop cannot run: act on it here, through each kind's stop,
 * touching no state.  The loop hears of it too once the write is done.
 */
static void
pool_stall_signal(int sig)
{
	static int first; /* the signal that stopped the run */
	bool end = sig == 0 || io_signal_count() >= 2;

	if (first == 0 && sig == 0 && pool_running != NULL &&
	    (pool_running->stop_signal == SIGINT ||
	     pool_running->stop_signal == SIGTERM))
		first = pool_running->stop_signal;
	if (first == 0)
		first = sig != 0 ? sig : SIGTERM;
	if (pool_running != NULL)
		roster_stop(pool_running->roster, end ? SIGKILL : SIGTERM);
	if (!end)
		return;
	/* Never silently: what the reader will not get is named; what it
	 * got is logged. */
	if (pool_running != NULL) {
		output_abandon(pool_running->out,
			       sig == 0 ? "standard output was not read "
					  "within --kill-after of the stop"
					: "stopped again while standard "
					  "output was not read");
		if (pool_running->joblog != NULL &&
		    !pool_running->joblog_failed)
			(void)joblog_flush(pool_running->joblog);
	}
	jobserver_emergency();
	_exit(128 + first);
}

/* Stdout's reader is gone: stop at once, quietly, as a filter does. */
static void
pool_reader_gone_cb(void *arg)
{
	struct pool *p = arg;

	if (p->stop_signal != SIGPIPE) {
		p->stop_signal = SIGPIPE;
		pool_stop(p, true, SIGKILL);
	}
	pool_fill(p);
}

static void
pool_signal_cb(uv_signal_t *handle, int signum)
{
	struct pool *p = handle->data;

	log_debug("signal %d", signum);
	if (signum == SIGHUP) {
		/* Finish what runs, start nothing new. */
		if (!p->stopping) {
			if (p->stop_signal == 0)
				p->stop_signal = SIGHUP;
			pool_stop(p, false, 0);
		}
	} else {
		p->signal_count++;
		if (p->stop_signal == 0 || p->stop_signal == SIGHUP)
			p->stop_signal = signum;
		pool_stop(p, true, p->signal_count > 1 ? SIGKILL : SIGTERM);
	}
	pool_fill(p);
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
	p->chunk = xcalloc(opts->chunk, sizeof *p->chunk);
	if (opts->timeout_percent > 0)
		p->runtimes = median_create();
	assert(opts->worker_count > 0);
	p->roster = roster_create(loop, opts, p, pool_fill);
	p->jobserver = jobserver_start(loop, pool_input_ready_cb, p);
	p->throttle =
	    throttle_start(loop, opts, pool_input_ready_cb, pool_shed_cb, p);
	for (size_t i = 0; i < opts->worker_count; i++)
		(void)roster_add(p->roster, &opts->workers[i]);
	return p;
}

void
pool_run(struct pool *p)
{
	int rc;

	for (int i = 0; i < 3; i++) {
		if ((rc = uv_signal_init(p->loop, &p->signals[i])) != 0 ||
		    (rc = uv_signal_start(&p->signals[i], pool_signal_cb,
					  pool_signals[i])) != 0)
			fatal("cannot watch signals: %s", uv_strerror(rc));
		p->signals[i].data = p;
	}
	uv_timer_init(p->loop, &p->delay_timer);
	p->delay_timer.data = p;
	if ((rc = uv_timer_init(p->loop, &p->spawn_timer)) != 0)
		fatal("cannot make a timer: %s", uv_strerror(rc));
	p->spawn_timer.data = p;
	pool_running = p;
	io_watch_signals(pool_stall_signal);
	io_set_stall_limit(p->opts->kill_after_ms);
	output_watch_stdout(p->out, p->loop, pool_reader_gone_cb, p);
	/* A joblog on a pipe (as stdout) gets each line right after its
	 * task's output, as GNU parallel's: no coalescing then. */
	output_start(p->out, p->loop,
		     p->joblog == NULL || joblog_is_file(p->joblog),
		     pool_flushed_cb, p);
	if (p->opts->progress || p->opts->bar)
		p->progress = progress_start(p->loop, p->opts->bar);
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
	if (pool_running == p)
		pool_running = NULL;
	for (size_t i = 0; i < p->chunk_count; i++)
		input_free(p->chunk[i]);
	free(p->chunk);
	output_free(p->out);
	joblog_close(p->joblog);
	roster_free(p->roster);
	done_set_free(p->done);
	median_free(p->runtimes);
	jobserver_free(p->jobserver);
	throttle_free(p->throttle);
	free(p);
}
