/*
 * pool.c - the scheduler: slots, the flow of tasks, back-pressure, retries,
 * timeouts, --halt, --resume, signals.
 *
 * The pool takes inputs from the reader only when a slot is free and fewer
 * than --buffer tasks are begun and unwritten; that one rule bounds memory
 * in every mode (a slow task at the head of an ordered run holds back at
 * most --buffer results) and keeps input unread until it is needed.  Each
 * task is expanded from the template, started on a worker through the
 * worker_kind interface, and its result handed to the output, which tells
 * the pool when the task has been written: only then is its joblog line
 * written and the task freed, so the log never claims more than was written.
 *
 * A failed attempt is retried (--retries) after a delay that doubles each
 * time; retries go before new inputs.  A slot's timer bounds each attempt
 * (--timeout): SIGTERM to its process group, then SIGKILL after
 * --kill-after.
 *
 * Stopping: the first SIGINT or SIGTERM starts nothing new, sends SIGTERM
 * to every running task's process group, writes the results that are
 * complete and ends with 130 or 143; the tasks it interrupted get no result
 * and no joblog line (a later --resume runs them again).  A second one
 * sends SIGKILL.  SIGHUP and --halt soon start nothing new and let running
 * tasks finish; --halt now also stops them.  Nothing here calls exit(): the
 * loop drains and main maps the outcome to an exit status.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"

struct task {
	struct pool *pool;
	uint64_t seq;
	struct input **inputs;
	size_t input_count;
	char **argv;
	char *stdin_data; /* --stdin: the inputs, each with its delimiter */
	size_t stdin_len;
	char *tag; /* --tag: the inputs joined by spaces, when several */
	struct task_output *out;
	struct slot *slot;	/* where the current attempt runs, or NULL */
	unsigned last_slot;	/* the slot number of the last attempt */
	void *attempt;		/* the worker's attempt while it runs */
	unsigned attempts;	/* attempts started */
	unsigned failures;	/* attempts that failed (lost ones are not) */
	unsigned lost;		/* attempts whose worker went away first */
	bool interrupted;	/* stopped by us: it gets no result */
	bool timed_out;		/* stopped by --timeout */
	double start;		/* wall clock at the start, seconds */
	uint64_t start_ns;	/* monotonic clock at the start */
	uint64_t seen[3];	/* bytes the attempt wrote, by stream (1, 2) */
	struct task *next;	/* in the ready or the waiting list */
	struct task *slot_next; /* the next attempt in flight at its slot */
	uv_timer_t retry_timer; /* --retry-delay, while waiting */
};

/*
 * A slot runs one attempt at a time, or up to --stride at a persistent
 * worker, which answers them in order: the oldest is the one it works on.
 */
struct slot {
	struct pool *pool;
	unsigned number;	  /* {%}, from 1 */
	struct task *head, *tail; /* attempts in flight here, oldest first */
	char **argv;		  /* --persist: the worker's command */
	uv_timer_t timer; /* --timeout of the oldest, then --kill-after */
};

struct pool {
	uv_loop_t *loop;
	const struct options *opts;
	struct template *tmpl;
	struct input_reader *reader;
	struct output *out;
	const struct worker_kind *worker;
	struct slot *slots;
	unsigned *free_slots; /* a stack of slot numbers, one per free place */
	unsigned free_count;
	unsigned running;     /* attempts in flight */
	struct input **chunk; /* inputs gathered for the next task */
	size_t chunk_count;
	struct input *held; /* a bad input waiting for its chunk to start */
	struct task *ready; /* retries due now, oldest first */
	struct task *ready_tail;
	struct task *waiting; /* retries waiting for their delay */
	bool spawn_blocked;   /* out of processes or descriptors: wait */
	uint64_t next_seq;
	uint64_t failed, succeeded, skipped;
	bool input_done;
	bool stopping;	 /* start nothing new */
	bool finished;	 /* every handle of ours is closed */
	int stop_signal; /* the signal that stopped us, or 0 */
	unsigned signal_count;
	bool left_undone; /* inputs were left unread or unrun */
	bool aborted;	  /* --on-bad-input=abort, or a write failed */
	bool halted;	  /* --halt's condition was met */
	int halt_status;  /* the exit status --halt decided */
	struct joblog *joblog;
	struct done_set *done; /* --resume: tasks done in an earlier run */
	struct progress *progress;
	uv_signal_t signals[3];
	uv_poll_t stdout_watch; /* the reader of stdout leaving */
	bool stdout_watched;
};

static const int pool_signals[3] = {SIGINT, SIGTERM, SIGHUP};

static void pool_fill(struct pool *p);
static void pool_launch(struct pool *p, struct task *t);
static bool pool_stdout_gone(struct pool *p);

/* ---- tasks ------------------------------------------------------------- */

static void
pool_task_free(struct task *t)
{
	for (size_t i = 0; i < t->input_count; i++)
		input_free(t->inputs[i]);
	free(t->inputs);
	free(t->argv);
	free(t->stdin_data);
	free(t->tag);
	free(t);
}

/* A new task for the gathered inputs, with its place in the output. */
static struct task *
pool_new_task(struct pool *p)
{
	struct task *t = xcalloc(1, sizeof *t);
	const char *tag;
	size_t tag_len;

	t->pool = p;
	t->seq = ++p->next_seq;
	t->inputs = xmemdup(p->chunk, p->chunk_count * sizeof *p->chunk);
	t->input_count = p->chunk_count;
	p->chunk_count = 0;
	tag = t->inputs[0]->text;
	tag_len = t->inputs[0]->len;
	if (t->input_count > 1) {
		struct buf joined = {0};

		for (size_t i = 0; i < t->input_count; i++) {
			if (i > 0)
				buf_append_char(&joined, ' ');
			buf_append(&joined, t->inputs[i]->text,
				   t->inputs[i]->len);
		}
		t->tag = buf_steal(&joined, &tag_len);
		tag = t->tag;
	}
	t->out = output_begin(p->out, t->seq, tag, tag_len, t);
	return t;
}

static void
pool_note_progress(struct pool *p)
{
	struct progress_counts c = {
	    .done = p->failed + p->succeeded,
	    .failed = p->failed,
	    .running = p->running,
	    .total = p->input_done ? p->next_seq - p->skipped : 0,
	};

	progress_note(p->progress, &c);
}

/* ---- results ----------------------------------------------------------- */

/* The fields every result of the task shares. */
static void
pool_result_init(struct pool *p, struct task *t, struct result *r)
{
	memset(r, 0, sizeof *r);
	r->seq = t->seq;
	r->inputs = t->inputs;
	r->input_count = t->input_count;
	r->argv = t->argv;
	r->slot = t->last_slot;
	r->exit_code = -1;
	r->attempts = t->attempts;
	if (t->attempts > 0) {
		r->host = p->worker->name;
		r->start = t->start;
		r->duration = (double)(uv_hrtime() - t->start_ns) / 1e9;
	}
}

/* Turn how an attempt ended into the task's result. */
static void
pool_make_result(struct pool *p, struct task *t, const struct attempt_end *end,
		 struct result *r)
{
	uint64_t limit = p->opts->max_output;

	pool_result_init(p, t, r);
	if (end->spawn_error != 0) {
		r->status = STATUS_ERROR;
		r->error = ERROR_SPAWN;
		/* --persist: the task's command is its slot's worker's. */
		char **argv =
		    t->argv != NULL ? t->argv : p->slots[t->last_slot - 1].argv;

		r->message = xasprintf("cannot run %s: %s",
				       argv != NULL ? argv[0] : "the command",
				       strerror(end->spawn_error));
		return;
	}
	if (WIFEXITED(end->wait_status)) {
		r->exit_code = WEXITSTATUS(end->wait_status);
		r->status = r->exit_code == 0 ? STATUS_OK : STATUS_FAILED;
	} else if (WIFSIGNALED(end->wait_status)) {
		r->status = STATUS_SIGNALED;
		r->signal = WTERMSIG(end->wait_status);
	}
	if (end->reason != NULL && !t->timed_out) {
		/* A persistent worker failed on this task. */
		if (r->status == STATUS_OK)
			r->status = STATUS_FAILED;
		r->message = xstrdup(end->reason);
		return;
	}
	if (t->timed_out) {
		r->status = STATUS_TIMEOUT;
		r->error = ERROR_TIMEOUT;
		r->message = xasprintf("timed out after %.3gs",
				       (double)p->opts->timeout_ms / 1000);
	} else if (limit > 0 && (t->seen[1] > limit || t->seen[2] > limit)) {
		/* What was kept is incomplete: the result must say so. */
		r->status = STATUS_ERROR;
		r->error = ERROR_OUTPUT_LIMIT;
		r->output_size = t->seen[1] + t->seen[2];
		r->message = xasprintf(
		    "output over --max-output %llu bytes: stdout %llu bytes, "
		    "stderr %llu bytes",
		    (unsigned long long)limit, (unsigned long long)t->seen[1],
		    (unsigned long long)t->seen[2]);
	}
}

/*
 * The exit status for failures, as GNU parallel gives it: their number
 * (101 past 100), or with a --halt ...=P% policy their percentage of the
 * tasks done, rounded up.
 */
static int
pool_failure_status(const struct pool *p)
{
	uint64_t done = p->failed + p->succeeded;

	if (p->opts->halt.percent && done > 0)
		return (int)((p->failed * 100 + done - 1) / done);
	return p->failed > 100 ? 101 : (int)p->failed;
}

/* The exit status --halt gives, as GNU parallel: fail=1 passes the
 * failing task's own status on. */
static int
pool_halt_status(const struct pool *p, const struct result *r)
{
	const struct halt_policy *h = &p->opts->halt;

	if (h->why == HALT_SUCCESS)
		return 0;
	if (h->why == HALT_FAIL && !h->percent && h->threshold == 1) {
		if (r->exit_code > 0)
			return r->exit_code;
		if (r->signal > 0)
			return 128 + r->signal;
		return r->error == ERROR_SPAWN ? 127 : 1;
	}
	return pool_failure_status(p);
}

static void pool_stop(struct pool *p, bool stop_running, int sig);

/* Hand a final result to the output; the task is freed once written. */
static void
pool_finish(struct pool *p, struct task *t, struct result *r)
{
	const struct halt_policy *h = &p->opts->halt;

	if (r->status == STATUS_OK)
		p->succeeded++;
	else
		p->failed++;
	pool_note_progress(p);
	/* t may be gone after this, and r's message with it. */
	output_finish(p->out, t->out, r);

	if (!p->halted && h->when != HALT_NEVER &&
	    halt_reached(h, p->failed, p->succeeded,
			 p->input_done ? p->next_seq - p->skipped : 0)) {
		p->halted = true;
		p->halt_status = pool_halt_status(p, r);
		log_warn("--halt %s: %s", h->when == HALT_NOW ? "now" : "soon",
			 h->when == HALT_NOW ? "stopping the running tasks"
					     : "starting no more tasks");
		pool_stop(p, h->when == HALT_NOW, SIGTERM);
	}
	if (output_error(p->out) != 0 && p->stop_signal != SIGPIPE) {
		/* The reader of our stdout is gone: stop at once. */
		p->stop_signal = SIGPIPE;
		pool_stop(p, true, SIGKILL);
	}
}

/* ---- the output's side ------------------------------------------------- */

/* The output has written (or skipped) the task: log it, then free it. */
static void
pool_written_cb(void *owner, const struct result *r)
{
	struct task *t = owner;
	struct pool *p = t->pool;

	if (r != NULL && p->joblog != NULL && !p->aborted &&
	    !p->opts->dry_run) {
		struct buf command = {0};

		if (t->argv != NULL)
			shquote_command_line(&command, t->argv,
					     template_uses_shell(p->tmpl));
		if (joblog_write(p->joblog, r, command.data ? command.data : "",
				 t->seen[1]) < 0) {
			log_warn("stopping: the joblog cannot be written");
			p->aborted = true;
			pool_stop(p, true, SIGTERM);
		}
		buf_free(&command);
	}
	pool_task_free(t);
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
	input_free(p->held);
	p->held = NULL;
	p->input_done = true;
}

/* Queue the task to run again before any new input. */
static void
pool_ready_append(struct pool *p, struct task *t)
{
	t->next = NULL;
	if (p->ready_tail != NULL)
		p->ready_tail->next = t;
	else
		p->ready = t;
	p->ready_tail = t;
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
		pool_ready_append(p, t);
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
	p->stopping = true;
	pool_stop_input(p);
	while (p->ready != NULL) {
		struct task *t = p->ready;

		p->ready = t->next;
		p->left_undone = true;
		output_discard(p->out, t->out);
	}
	p->ready_tail = NULL;
	for (struct task *t = p->waiting; t != NULL; t = t->next) {
		uv_timer_stop(&t->retry_timer);
		uv_close((uv_handle_t *)&t->retry_timer, pool_retry_closed_cb);
	}
	p->waiting = NULL;
	if (!stop_running)
		return;
	for (unsigned i = 0; i < p->opts->jobs; i++) {
		for (struct task *t = p->slots[i].head; t != NULL;
		     t = t->slot_next) {
			if (t->attempt == NULL)
				continue;
			t->interrupted = true;
			p->worker->signal(t->attempt, sig);
		}
	}
}

/* ---- attempts ---------------------------------------------------------- */

static void pool_timeout_cb(uv_timer_t *timer);

/* Time the oldest attempt at the slot (--timeout). */
static void
pool_arm_timer(struct pool *p, struct slot *s)
{
	if (p->opts->timeout_ms > 0 && s->head != NULL)
		uv_timer_start(&s->timer, pool_timeout_cb, p->opts->timeout_ms,
			       0);
}

static void
pool_release_slot(struct pool *p, struct task *t)
{
	struct slot *s = t->slot;
	struct task **link;

	if (s == NULL)
		return;
	for (link = &s->head; *link != t; link = &(*link)->slot_next)
		;
	*link = t->slot_next;
	if (s->tail == t) {
		s->tail = NULL;
		for (struct task *x = s->head; x != NULL; x = x->slot_next)
			s->tail = x;
	}
	t->slot_next = NULL;
	t->slot = NULL;
	p->free_slots[p->free_count++] = s->number;
	p->running--;
	if (link == &s->head) {
		/* The next one in line is worked on now: time it afresh. */
		uv_timer_stop(&s->timer);
		pool_arm_timer(p, s);
	}
}

static void
pool_kill_after_cb(uv_timer_t *timer)
{
	struct slot *s = timer->data;

	if (s->head != NULL && s->head->attempt != NULL)
		s->pool->worker->signal(s->head->attempt, SIGKILL);
}

static void
pool_timeout_cb(uv_timer_t *timer)
{
	struct slot *s = timer->data;
	struct pool *p = s->pool;

	if (s->head == NULL || s->head->attempt == NULL)
		return;
	s->head->timed_out = true;
	p->worker->signal(s->head->attempt, SIGTERM);
	uv_timer_start(&s->timer, pool_kill_after_cb, p->opts->kill_after_ms,
		       0);
}

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

/* The delay is over: the task joins the ready list once its timer closed. */
static void
pool_retry_due_cb(uv_timer_t *timer)
{
	struct task *t = timer->data;
	struct task **link = &t->pool->waiting;

	while (*link != t)
		link = &(*link)->next;
	*link = t->next;
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
	if (delay == 0) {
		/* Due now: before any new input. */
		pool_ready_append(p, t);
		return;
	}
	uv_timer_init(p->loop, &t->retry_timer);
	t->retry_timer.data = t;
	t->next = p->waiting;
	p->waiting = t;
	uv_timer_start(&t->retry_timer, pool_retry_due_cb, delay, 0);
}

static void
pool_attempt_done_cb(void *arg, const struct attempt_end *end)
{
	struct task *t = arg;
	struct pool *p = t->pool;
	int error = end->spawn_error;
	struct result r;

	t->attempt = NULL;
	pool_release_slot(p, t);
	if (!p->stopping && p->running > 0 &&
	    (error == EAGAIN || error == EMFILE || error == ENFILE ||
	     error == ENOMEM)) {
		/* Out of processes or descriptors: not the task's fault. */
		t->attempts--;
		t->next = p->ready;
		p->ready = t;
		if (p->ready_tail == NULL)
			p->ready_tail = t;
		p->spawn_blocked = true;
		return;
	}
	p->spawn_blocked = false;
	if (p->opts->output_mode == OUTPUT_UNGROUP && error == 0 &&
	    WIFSIGNALED(end->wait_status) &&
	    WTERMSIG(end->wait_status) == SIGPIPE && pool_stdout_gone(p)) {
		/* -u: it wrote to our stdout after its reader left. */
		t->interrupted = true;
	}
	if (end->lost && !t->interrupted && !p->stopping && ++t->lost <= 10) {
		/* Its worker went away first: it goes back in the queue. */
		pool_forget_attempt(p, t);
		pool_ready_append(p, t);
		pool_fill(p);
		return;
	}
	/* A task we stopped has no result, unless it finished all the same. */
	if (t->interrupted &&
	    (end->lost || error != 0 || !WIFEXITED(end->wait_status) ||
	     WEXITSTATUS(end->wait_status) != 0)) {
		output_discard(p->out, t->out);
		pool_fill(p);
		return;
	}
	pool_make_result(p, t, end, &r);
	if (r.status != STATUS_OK && !p->stopping &&
	    ++t->failures <= p->opts->retries) {
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

/* The inputs of a task, each followed by its delimiter (--stdin). */
static void
pool_build_stdin(struct pool *p, struct task *t)
{
	struct buf data = {0};

	for (size_t i = 0; i < t->input_count; i++) {
		buf_append(&data, t->inputs[i]->text, t->inputs[i]->len);
		buf_append_char(&data, (char)p->opts->delimiter);
	}
	t->stdin_data = buf_steal(&data, &t->stdin_len);
}

/* --dry-run: the command, quoted for the shell, is the task's output. */
static void
pool_dry_run(struct pool *p, struct task *t)
{
	struct buf line = {0};
	struct result r;

	shquote_command_line(&line, t->argv, template_uses_shell(p->tmpl));
	buf_append_char(&line, '\n');
	output_data(p->out, t->out, 1, line.data, line.len);
	buf_free(&line);
	pool_release_slot(p, t);
	pool_result_init(p, t, &r);
	r.status = STATUS_OK;
	p->succeeded++;
	output_finish(p->out, t->out, &r);
}

/* The inputs as a persistent worker gets them: one line each. */
static bool
pool_build_lines(struct task *t, char **cause)
{
	struct buf data = {0};

	for (size_t i = 0; i < t->input_count; i++) {
		struct input *in = t->inputs[i];

		if (in->json != NULL) {
			size_t len;
			char *text = json_input_compact(in, &len);

			buf_append(&data, text, len);
			free(text);
		} else if (memchr(in->text, '\n', in->len) != NULL) {
			*cause = xasprintf("input %llu holds a newline, which "
					   "a persistent worker cannot be sent",
					   (unsigned long long)in->number);
			buf_free(&data);
			return false;
		} else {
			buf_append(&data, in->text, in->len);
		}
		buf_append_char(&data, '\n');
	}
	t->stdin_data = buf_steal(&data, &t->stdin_len);
	return true;
}

/* The task's command for its slot: its own, or the slot's worker's. */
static char **
pool_command(struct pool *p, struct task *t, struct slot *s, char **cause)
{
	struct expansion e = {.inputs = t->inputs,
			      .input_count = t->input_count,
			      .seq = t->seq,
			      .slot = s->number};

	if (p->opts->persist) {
		/* Expanded once per worker; the inputs go to its stdin. */
		if (s->argv == NULL)
			s->argv = template_expand(p->tmpl, &e, false, cause);
		if (s->argv != NULL && t->stdin_data == NULL &&
		    !pool_build_lines(t, cause))
			return NULL;
		return s->argv;
	}
	if (t->argv == NULL || template_uses_slot(p->tmpl)) {
		free(t->argv);
		t->argv =
		    template_expand(p->tmpl, &e, !p->opts->feed_stdin, cause);
	}
	if (t->argv != NULL && p->opts->feed_stdin && t->stdin_data == NULL)
		pool_build_stdin(p, t);
	return t->argv;
}

/* Expand the task for a free place and start an attempt there. */
static void
pool_launch(struct pool *p, struct task *t)
{
	struct slot *s = &p->slots[p->free_slots[--p->free_count] - 1];
	struct timespec now;
	char *cause = NULL;
	char **argv;

	t->slot = s;
	t->last_slot = s->number;
	if (s->tail != NULL)
		s->tail->slot_next = t;
	else
		s->head = t;
	s->tail = t;
	p->running++;
	argv = pool_command(p, t, s, &cause);
	if (argv == NULL) {
		/* Bad input is the task's result, not the run's end. */
		struct result r;

		pool_release_slot(p, t);
		pool_result_init(p, t, &r);
		r.status = STATUS_ERROR;
		r.error = ERROR_BAD_INPUT;
		r.message = cause;
		if (p->opts->json_input && t->input_count == 1)
			r.line = t->inputs[0]->number; /* -J: one line each */
		pool_finish(p, t, &r);
		return;
	}
	if (p->opts->dry_run) {
		pool_dry_run(p, t);
		return;
	}

	struct attempt_spec spec = {
	    .argv = argv,
	    .stdin_data = t->stdin_data,
	    .stdin_len = t->stdin_len,
	    .capture = p->opts->output_mode != OUTPUT_UNGROUP,
	    .seq = t->seq,
	    .slot = s->number,
	};

	clock_gettime(CLOCK_REALTIME, &now);
	t->start = (double)now.tv_sec + (double)(now.tv_nsec / 1000) / 1e6;
	t->start_ns = uv_hrtime();
	t->attempts++;
	if (s->head == t)
		pool_arm_timer(p, s);
	pool_note_progress(p);
	t->attempt =
	    p->worker->start(p->loop, &spec, &pool_attempt_callbacks, t);
	if (t->attempt == NULL)
		fatal("cannot start task %llu", (unsigned long long)t->seq);
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
	pool_result_init(p, t, &r);
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
		if (in->error != NULL)
			p->held = in; /* after the chunk before it */
		else
			p->chunk[p->chunk_count++] = in;
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
	if (p->stdout_watched)
		uv_close((uv_handle_t *)&p->stdout_watch, NULL);
	for (unsigned i = 0; i < p->opts->jobs; i++)
		uv_close((uv_handle_t *)&p->slots[i].timer, NULL);
	if (p->worker->shutdown != NULL)
		p->worker->shutdown();
	pool_note_progress(p);
	progress_stop(p->progress);
	p->progress = NULL;
	input_stop(p->reader);
}

/* Start tasks while slots are free, the buffer has room and input is ready. */
static void
pool_fill(struct pool *p)
{
	while (!p->stopping && !p->spawn_blocked && p->free_count > 0) {
		if (p->ready != NULL) {
			struct task *t = p->ready;

			if ((p->ready = t->next) == NULL)
				p->ready_tail = NULL;
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
			struct task *t = pool_new_task(p);

			p->skipped++;
			output_discard(p->out, t->out);
			continue;
		}
		pool_launch(p, pool_new_task(p));
	}
	if (!p->finished && p->input_done && p->held == NULL &&
	    p->running == 0 && p->ready == NULL && p->waiting == NULL &&
	    output_pending(p->out) == 0)
		pool_close(p);
}

static void
pool_input_ready_cb(void *arg)
{
	pool_fill(arg);
}

/*
 * A signal came while a write to stdout waits for a reader that does not
 * read, so the loop cannot run: act on it here, touching no state.  The
 * loop hears of it too once the write is done.
 */
static void
pool_stall_signal(int sig)
{
	if (io_signal_count() >= 2) {
		child_signal_all(SIGKILL);
		_exit(128 + sig);
	}
	child_signal_all(SIGTERM);
}

/* Stdout's reader is gone: stop at once, quietly, as a filter does. */
static void
pool_reader_gone(struct pool *p)
{
	if (p->stop_signal == SIGPIPE)
		return;
	output_fail(p->out, EPIPE);
	p->stop_signal = SIGPIPE;
	pool_stop(p, true, SIGKILL);
}

/* The reader of our stdout went away, though we may write nothing (-u). */
static void
pool_stdout_gone_cb(uv_poll_t *handle, int status, int events)
{
	struct pool *p = handle->data;

	uv_poll_stop(handle);
	if (status == 0 && events == 0)
		return;
	pool_reader_gone(p);
	pool_fill(p);
}

/* Has stdout (a pipe) lost its reader?  Asked when a -u task died of
 * SIGPIPE, which can come before the watch above hears of it. */
static bool
pool_stdout_gone(struct pool *p)
{
	struct pollfd pfd = {.fd = STDOUT_FILENO, .events = 0};

	if (p->stop_signal == SIGPIPE)
		return true;
	if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLERR))
		return false;
	pool_reader_gone(p);
	return true;
}

/* Watch stdout, when it is a pipe or socket, for its reader leaving. */
static void
pool_watch_stdout(struct pool *p)
{
	struct stat st;
	int flags = fcntl(STDOUT_FILENO, F_GETFL);

	if (fstat(STDOUT_FILENO, &st) < 0 ||
	    !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
		return;
	if (uv_poll_init(p->loop, &p->stdout_watch, STDOUT_FILENO) != 0)
		return;
	/* libuv made it non-blocking: it is shared, put its flags back. */
	if (flags >= 0)
		(void)fcntl(STDOUT_FILENO, F_SETFL, flags);
	p->stdout_watch.data = p;
	p->stdout_watched = true;
	/* No event asked for: epoll reports the error of a closed pipe. */
	uv_poll_start(&p->stdout_watch, UV_DISCONNECT, pool_stdout_gone_cb);
	uv_unref((uv_handle_t *)&p->stdout_watch);
}

static void
pool_signal_cb(uv_signal_t *handle, int signum)
{
	struct pool *p = handle->data;

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
	p->worker = opts->persist ? &persist_worker : &local_worker;
	if (opts->joblog != NULL) {
		if (opts->resume || opts->resume_failed) {
			p->done = joblog_read_done(opts->joblog,
						   opts->resume_failed, cause);
			if (p->done == NULL) {
				free(p);
				return NULL;
			}
		}
		p->joblog = joblog_open(
		    opts->joblog, opts->resume || opts->resume_failed, cause);
		if (p->joblog == NULL) {
			done_set_free(p->done);
			free(p);
			return NULL;
		}
	}
	p->out = output_create(opts, pool_written_cb);
	input_set_ready(reader, pool_input_ready_cb, p);
	p->slots = xcalloc(opts->jobs, sizeof *p->slots);
	for (unsigned i = 0; i < opts->jobs; i++) {
		p->slots[i].pool = p;
		p->slots[i].number = i + 1;
		uv_timer_init(loop, &p->slots[i].timer);
		p->slots[i].timer.data = &p->slots[i];
	}
	/* One place per attempt a slot can hold, dealt round the slots. */
	unsigned places = opts->persist ? opts->stride : 1;

	p->free_slots =
	    xcalloc((size_t)opts->jobs * places, sizeof *p->free_slots);
	for (unsigned k = 0; k < places; k++)
		for (unsigned i = 0; i < opts->jobs; i++)
			p->free_slots[p->free_count++] = opts->jobs - i;
	p->chunk = xcalloc(opts->chunk, sizeof *p->chunk);
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
	io_watch_signals(pool_stall_signal);
	pool_watch_stdout(p);
	if (p->opts->progress || p->opts->bar)
		p->progress = progress_start(p->loop, p->opts->bar);
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
	return pool_failure_status(p);
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
	for (size_t i = 0; i < p->chunk_count; i++)
		input_free(p->chunk[i]);
	free(p->chunk);
	output_free(p->out);
	joblog_close(p->joblog);
	for (unsigned i = 0; i < p->opts->jobs; i++)
		free(p->slots[i].argv);
	done_set_free(p->done);
	free(p->slots);
	free(p->free_slots);
	free(p);
}
