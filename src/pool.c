/*
 * pool.c - the scheduler: slots, the flow of tasks, back-pressure, signals.
 *
 * The pool takes inputs from the reader only when a slot is free and fewer
 * than --buffer tasks are begun and unwritten; that one rule bounds memory
 * in every mode (a slow task at the head of an ordered run holds back at
 * most --buffer results) and keeps input unread until it is needed.  Each
 * task is expanded from the template, started on a worker through the
 * worker_kind interface, and its result handed to the output, which tells
 * the pool when the task has been written and can be freed.
 *
 * Signals: the first SIGINT or SIGTERM starts nothing new, sends SIGTERM to
 * every running task's process group, writes the results that are complete
 * and ends with 130 or 143; tasks it interrupted get no result (a later
 * --resume runs them again).  A second one sends SIGKILL.  SIGHUP starts
 * nothing new and lets the running tasks finish.  Nothing here calls exit():
 * the loop drains and main maps the outcome to an exit status.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"

struct task {
	struct pool *pool;
	uint64_t seq;
	unsigned slot;
	struct input **inputs;
	size_t input_count;
	char **argv;
	char *stdin_data; /* --stdin: the inputs, each with its delimiter */
	size_t stdin_len;
	char *tag;     /* --tag: the inputs joined by spaces, when several */
	void *attempt; /* the worker's attempt while it runs */
	struct task_output *out;
	bool interrupted;  /* stopped by us: it gets no result */
	double start;	   /* wall clock at the start, seconds */
	uint64_t start_ns; /* monotonic clock at the start */
	uint64_t seen[3];  /* bytes the task wrote, by stream (1, 2) */
};

struct pool {
	uv_loop_t *loop;
	const struct options *opts;
	struct template *tmpl;
	struct input_reader *reader;
	struct output *out;
	const struct worker_kind *worker;
	struct task **slots;  /* by slot - 1: the running task, or NULL */
	unsigned *free_slots; /* a stack of free slot numbers */
	unsigned free_count;
	unsigned running;
	struct input **chunk; /* inputs gathered for the next task */
	size_t chunk_count;
	uint64_t next_seq;
	uint64_t failed;
	bool input_done;
	bool stopping;	 /* start nothing new */
	int stop_signal; /* the signal that stopped us, or 0 */
	unsigned signal_count;
	bool left_undone;   /* inputs were left unread or unrun */
	bool aborted;	    /* --on-bad-input=abort: a bad input stopped us */
	struct input *held; /* a bad input waiting for its chunk to start */
	uv_signal_t signals[3];
	bool signals_open;
};

static const int pool_signals[3] = {SIGINT, SIGTERM, SIGHUP};

static void pool_fill(struct pool *p);

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

/* The output has written (or skipped) the task: its memory can go. */
static void
pool_written_cb(void *owner)
{
	pool_task_free(owner);
}

static void
pool_release_slot(struct pool *p, struct task *t)
{
	if (t->slot == 0)
		return; /* it never ran */
	p->slots[t->slot - 1] = NULL;
	p->free_slots[p->free_count++] = t->slot;
	p->running--;
}

/* Stop reading input and drop what was gathered: no task will use it. */
static void
pool_stop_input(struct pool *p)
{
	if (!p->input_done || p->chunk_count > 0)
		p->left_undone = true;
	input_stop(p->reader);
	for (size_t i = 0; i < p->chunk_count; i++)
		input_free(p->chunk[i]);
	p->chunk_count = 0;
	input_free(p->held);
	p->held = NULL;
	p->input_done = true;
}

/* Stop everything at once: the reader of our stdout is gone. */
static void
pool_abandon(struct pool *p)
{
	if (p->stopping && p->stop_signal == SIGPIPE)
		return;
	p->stopping = true;
	p->stop_signal = SIGPIPE;
	pool_stop_input(p);
	for (unsigned i = 0; i < p->opts->jobs; i++) {
		struct task *t = p->slots[i];

		if (t != NULL && t->attempt != NULL) {
			t->interrupted = true;
			p->worker->signal(t->attempt, SIGKILL);
		}
	}
}

/* The fields every result of the task shares. */
static void
pool_result_init(struct pool *p, struct task *t, struct result *r)
{
	memset(r, 0, sizeof *r);
	r->seq = t->seq;
	r->inputs = t->inputs;
	r->input_count = t->input_count;
	r->argv = t->argv;
	r->slot = t->slot;
	r->exit_code = -1;
	if (t->start > 0) {
		r->host = p->worker->name;
		r->attempts = 1;
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
		r->message = xasprintf("cannot run %s: %s", t->argv[0],
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
	if (limit > 0 && (t->seen[1] > limit || t->seen[2] > limit)) {
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

/* Say on stderr what became of a task that did not succeed. */
static void
pool_report(const struct task *t, const struct result *r)
{
	const struct input *in = t->inputs[0];
	int shown = (int)(in->len > 200 ? 200 : in->len);
	char why[64];

	switch (r->status) {
	case STATUS_OK:
	case STATUS_SKIPPED:
		return;
	case STATUS_FAILED:
		snprintf(why, sizeof why, "exit status %d", r->exit_code);
		break;
	case STATUS_SIGNALED:
		memcpy(why, "killed by ", 10);
		signal_name(r->signal, why + 10, sizeof why - 10);
		break;
	default:
		snprintf(why, sizeof why, "%s", "");
		break;
	}
	log_warn("task %llu (input %.*s%s): %s", (unsigned long long)t->seq,
		 shown, in->text, (size_t)shown < in->len ? "..." : "",
		 r->message != NULL ? r->message : why);
}

/* Hand a final result to the output; the task is freed once written. */
static void
pool_finish(struct pool *p, struct task *t, struct result *r)
{
	if (r->status != STATUS_OK && r->status != STATUS_SKIPPED)
		p->failed++;
	pool_report(t, r);
	output_finish(p->out, t->out, r); /* t may be gone after this */
	if (output_error(p->out) != 0)
		pool_abandon(p);
}

static void
pool_attempt_data_cb(void *arg, int stream, const char *data, size_t len)
{
	struct task *t = arg;
	uint64_t limit = t->pool->opts->max_output;

	if (limit > 0) {
		/* Keep up to the limit; count the rest to report its size. */
		uint64_t kept = t->seen[stream];

		t->seen[stream] += len;
		if (kept >= limit)
			return;
		if (kept + len > limit)
			len = (size_t)(limit - kept);
	} else {
		t->seen[stream] += len;
	}
	output_data(t->pool->out, t->out, stream, data, len);
}

static void
pool_attempt_done_cb(void *arg, const struct attempt_end *end)
{
	struct task *t = arg;
	struct pool *p = t->pool;
	struct result r;

	t->attempt = NULL;
	pool_release_slot(p, t);
	/* A task we stopped has no result, unless it finished all the same. */
	if (t->interrupted &&
	    (end->spawn_error != 0 || !WIFEXITED(end->wait_status) ||
	     WEXITSTATUS(end->wait_status) != 0)) {
		output_discard(p->out, t->out);
	} else {
		pool_make_result(p, t, end, &r);
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

	if (template_uses_shell(p->tmpl)) {
		buf_append_str(&line, t->argv[2]);
	} else {
		for (char **a = t->argv; *a != NULL; a++) {
			if (a != t->argv)
				buf_append_char(&line, ' ');
			shquote_append(&line, *a, strlen(*a));
		}
	}
	buf_append_char(&line, '\n');
	output_data(p->out, t->out, 1, line.data, line.len);
	buf_free(&line);
	pool_release_slot(p, t);
	pool_result_init(p, t, &r);
	r.status = STATUS_OK;
	output_finish(p->out, t->out, &r);
}

/* A new task for the gathered inputs, with its place in the output. */
static struct task *
pool_new_task(struct pool *p, bool runs)
{
	struct task *t = xcalloc(1, sizeof *t);
	const char *tag;
	size_t tag_len;

	t->pool = p;
	t->seq = ++p->next_seq;
	t->inputs = xmemdup(p->chunk, p->chunk_count * sizeof *p->chunk);
	t->input_count = p->chunk_count;
	p->chunk_count = 0;
	if (runs) {
		t->slot = p->free_slots[--p->free_count];
		p->slots[t->slot - 1] = t;
		p->running++;
	}
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
	t = pool_new_task(p, false);
	pool_result_init(p, t, &r);
	r.status = STATUS_ERROR;
	r.error = ERROR_BAD_INPUT;
	r.message = xstrdup(in->error);
	r.line = in->error_line;
	r.column = in->error_column;
	pool_finish(p, t, &r);
	if (p->opts->bad_input == BAD_INPUT_ABORT && !p->stopping) {
		log_warn("stopping: bad input (--on-bad-input=abort)");
		p->aborted = true;
		p->stopping = true;
		pool_stop_input(p);
	}
}

/* Make a task of the gathered inputs and start it on a free slot. */
static void
pool_start_task(struct pool *p)
{
	struct task *t = pool_new_task(p, true);
	struct expansion e;
	char *cause = NULL;

	e = (struct expansion){.inputs = t->inputs,
			       .input_count = t->input_count,
			       .seq = t->seq,
			       .slot = t->slot};
	t->argv = template_expand(p->tmpl, &e, !p->opts->feed_stdin, &cause);
	if (t->argv == NULL) {
		/* Bad input is the task's result, not the run's end. */
		struct result r;

		pool_release_slot(p, t);
		t->slot = 0;
		pool_result_init(p, t, &r);
		r.status = STATUS_ERROR;
		r.error = ERROR_BAD_INPUT;
		r.message = cause;
		pool_finish(p, t, &r);
		return;
	}
	if (p->opts->dry_run) {
		pool_dry_run(p, t);
		return;
	}
	if (p->opts->feed_stdin)
		pool_build_stdin(p, t);

	struct attempt_spec spec = {
	    .argv = t->argv,
	    .stdin_data = t->stdin_data,
	    .stdin_len = t->stdin_len,
	    .capture = p->opts->output_mode != OUTPUT_UNGROUP,
	    .seq = t->seq,
	    .slot = t->slot,
	};
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	t->start = (double)now.tv_sec + (double)(now.tv_nsec / 1000) / 1e6;
	t->start_ns = uv_hrtime();
	t->attempt =
	    p->worker->start(p->loop, &spec, &pool_attempt_callbacks, t);
	if (t->attempt == NULL)
		fatal("cannot start task %llu", (unsigned long long)t->seq);
}

/* Start tasks while slots are free, the buffer has room and input is ready. */
static void
pool_fill(struct pool *p)
{
	while (!p->stopping && p->running < p->opts->jobs &&
	       output_pending(p->out) < p->opts->buffer) {
		if (p->held != NULL && p->chunk_count == 0) {
			struct input *bad = p->held;

			p->held = NULL;
			pool_bad_input(p, bad);
			continue;
		}
		while (!p->input_done && p->held == NULL &&
		       p->chunk_count < p->opts->chunk) {
			struct input *in;
			int rc = input_next(p->reader, &in);

			if (rc == 0)
				return; /* the reader calls back */
			if (rc < 0) {
				p->input_done = true;
				break;
			}
			if (in->error != NULL)
				p->held = in; /* after the chunk before it */
			else
				p->chunk[p->chunk_count++] = in;
		}
		if (p->chunk_count == 0) {
			if (p->held != NULL)
				continue;
			break;
		}
		pool_start_task(p);
	}
	if (p->input_done && p->running == 0 && p->signals_open &&
	    output_pending(p->out) == 0) {
		/* All done: nothing else keeps the loop alive. */
		for (int i = 0; i < 3; i++)
			uv_close((uv_handle_t *)&p->signals[i], NULL);
		p->signals_open = false;
		input_stop(p->reader);
	}
}

static void
pool_input_ready_cb(void *arg)
{
	pool_fill(arg);
}

static void
pool_signal_cb(uv_signal_t *handle, int signum)
{
	struct pool *p = handle->data;

	if (signum == SIGHUP) {
		/* Finish what runs, start nothing new. */
		if (!p->stopping) {
			p->stopping = true;
			p->stop_signal = SIGHUP;
			pool_stop_input(p);
			pool_fill(p);
		}
		return;
	}
	p->signal_count++;
	if (p->stop_signal == 0 || p->stop_signal == SIGHUP)
		p->stop_signal = signum;
	p->stopping = true;
	pool_stop_input(p);
	for (unsigned i = 0; i < p->opts->jobs; i++) {
		struct task *t = p->slots[i];

		if (t == NULL || t->attempt == NULL)
			continue;
		t->interrupted = true;
		p->worker->signal(t->attempt,
				  p->signal_count > 1 ? SIGKILL : SIGTERM);
	}
	pool_fill(p);
}

struct pool *
pool_create(uv_loop_t *loop, const struct options *opts, struct template *tmpl,
	    struct input_reader *reader)
{
	struct pool *p = xcalloc(1, sizeof *p);

	p->loop = loop;
	p->opts = opts;
	p->tmpl = tmpl;
	p->reader = reader;
	p->out = output_create(opts, pool_written_cb);
	input_set_ready(reader, pool_input_ready_cb, p);
	p->worker = &local_worker;
	p->slots = xcalloc(opts->jobs, sizeof *p->slots);
	p->free_slots = xcalloc(opts->jobs, sizeof *p->free_slots);
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
	p->signals_open = true;
	pool_fill(p);
	(void)uv_run(p->loop, UV_RUN_DEFAULT);
}

int
pool_exit_status(const struct pool *p)
{
	if (p->stop_signal == SIGINT || p->stop_signal == SIGTERM)
		return 128 + p->stop_signal;
	if (p->aborted)
		return CPMAP_EXIT_USAGE;
	if (p->stop_signal == SIGHUP && p->left_undone)
		return 128 + SIGHUP;
	if (p->failed > 100)
		return 101;
	return (int)p->failed;
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
	free(p->slots);
	free(p->free_slots);
	free(p);
}
