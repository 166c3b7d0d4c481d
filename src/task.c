/*
 * task.c - the scheduler's other half: a task's command and its result.
 *
 * pool.c decides when a task runs and where; this file builds what it runs
 * (the argv from the template, the --stdin bytes) and turns how an attempt
 * ended into the task's result, so that the pool never decodes an exit or
 * knows how a command is made.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"

/* Freed tasks kept for the next ones, so that a run of many tiny tasks
 * does not allocate one per input. */
static struct spares task_spares;

/* --tagstring: the tag is the expanded string (the input when it cannot
 * be expanded: a NUL byte or a missing field, which the task will tell). */
static bool
task_expand_tag(struct task *t, struct template *tagstring)
{
	struct expansion e = {
	    .inputs = t->inputs, .input_count = t->input_count, .seq = t->seq};
	char *cause = NULL, **argv;

	argv = template_expand(tagstring, &e, false, &cause);
	free(cause);
	if (argv == NULL)
		return false;
	t->tag = xstrdup(argv[0] != NULL ? argv[0] : "");
	free(argv);
	return true;
}

struct task *
task_create(struct pool *p, struct output *out, uint64_t seq,
	    struct input **inputs, size_t count, struct template *tagstring)
{
	struct task *t = spares_take(&task_spares);
	const char *tag;
	size_t tag_len;

	if (t == NULL)
		t = xmalloc(sizeof *t);
	/* The retry timer is set up when needed: not cleared. */
	memset(t, 0, offsetof(struct task, retry_timer));
	t->pool = p;
	t->seq = seq;
	if (count == 1) {
		t->one_input = inputs[0];
		t->inputs = &t->one_input;
	} else {
		t->inputs = xmemdup(inputs, count * sizeof *inputs);
	}
	t->input_count = count;
	tag = t->inputs[0]->text;
	tag_len = t->inputs[0]->len;
	if (tagstring != NULL && task_expand_tag(t, tagstring)) {
		tag = t->tag;
		tag_len = strlen(t->tag);
	} else if (t->input_count > 1) {
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
	t->out = output_begin(out, t->seq, tag, tag_len, t);
	return t;
}

void
task_free(struct task *t)
{
	for (size_t i = 0; i < t->input_count; i++)
		input_free(t->inputs[i]);
	if (t->inputs != &t->one_input)
		free(t->inputs);
	/* A long-lived worker's task has none of these: no call for them. */
	if (t->argv != NULL)
		free(t->argv);
	if (t->stdin_data != NULL)
		free(t->stdin_data);
	if (t->tag != NULL)
		free(t->tag);
	spares_keep(&task_spares, t);
}

/* The inputs of a task, each followed by its delimiter (--stdin). */
static void
task_build_stdin(struct task *t, int delimiter)
{
	struct buf data = {0};

	for (size_t i = 0; i < t->input_count; i++) {
		buf_append(&data, t->inputs[i]->text, t->inputs[i]->len);
		buf_append_char(&data, (char)delimiter);
	}
	t->stdin_data = buf_steal(&data, &t->stdin_len);
}

char **
task_command(struct task *t, const struct options *opts, struct template *tmpl,
	     unsigned slot, char ***slot_argv, char **cause)
{
	struct expansion e = {.inputs = t->inputs,
			      .input_count = t->input_count,
			      .seq = t->seq,
			      .slot = slot};

	if (slot_argv != NULL) {
		/* Expanded once per slot; the inputs go to its process. */
		if (*slot_argv == NULL)
			*slot_argv = template_expand(tmpl, &e, false, cause);
		return *slot_argv;
	}
	if (t->argv == NULL || template_uses_slot(tmpl)) {
		free(t->argv);
		/* --pipe: the block goes to stdin (the attempt's block). */
		t->argv = template_expand(
		    tmpl, &e, !opts->feed_stdin && !opts->pipe, cause);
	}
	if (t->argv != NULL && opts->feed_stdin && t->stdin_data == NULL)
		task_build_stdin(t, opts->delimiter);
	return t->argv;
}

void
task_done(struct task *t)
{
	/* --pipe: a block is kept for retries, and no longer.  It is its
	 * task's only input (--pipe refuses -n): no need to look at each
	 * of a thousand inputs (-n 1000). */
	assert(t->input_count == 1 || t->inputs[0]->block == NULL);
	if (t->inputs[0]->block != NULL)
		block_release(t->inputs[0]->block);
}

/*
 * The wall clock is read once a second at most, and carried on by the
 * monotonic one, still to the microsecond: a fill that starts many
 * attempts (a long-lived worker's batch, a refill per answer) reads one
 * clock per task, not two.  A step of the wall clock (settimeofday, an NTP
 * jump) shows in the start times a second later at most.
 */
#define TASK_CLOCK_REREAD_NS 1000000000ull

void
task_started(struct task *t, struct task_clock *clock, uint64_t now_ns)
{
	uint64_t us;

	t->start_ns = now_ns;
	if (!clock->read || (now_ns > clock->ns &&
			     now_ns - clock->ns >= TASK_CLOCK_REREAD_NS)) {
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		clock->ns = uv_hrtime(); /* the two read together */
		clock->us = (uint64_t)now.tv_sec * 1000000 +
			    (uint64_t)now.tv_nsec / 1000;
		clock->read = true;
	}
	/* now_ns may be a little older than the reading: a fill's one clock
	 * for a batch, read before an unbatched attempt of the same fill. */
	us = now_ns >= clock->ns ? clock->us + (now_ns - clock->ns) / 1000
				 : clock->us - (clock->ns - now_ns) / 1000;
	/* Multiplied, not divided: a division is 20 cycles a task. */
	t->start = (double)(us / 1000000) + (double)(us % 1000000) * 1e-6;
}

/* The fields every result of the task shares; its last attempt ended at
 * ended_ns (uv_hrtime), or 0: now. */
static void
task_result_at(const struct task *t, struct result *r, uint64_t ended_ns)
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
		r->host = t->host;
		r->start = t->start;
		if (ended_ns < t->start_ns) /* 0: now */
			ended_ns = uv_hrtime();
		r->duration = (double)(ended_ns - t->start_ns) * 1e-9;
	}
}

void
task_result_init(const struct task *t, struct result *r)
{
	task_result_at(t, r, 0);
}

void
task_make_result(const struct task *t, const struct options *opts,
		 const struct attempt_end *end, struct result *r)
{
	uint64_t limit = opts->max_output;

	task_result_at(t, r, end->ended_ns);
	if (end->spawn_error != 0) {
		r->status = STATUS_ERROR;
		r->error = ERROR_SPAWN;
		r->message = end->message != NULL
				 ? xasprintf("cannot run %s: %s", end->message,
					     strerror(end->spawn_error))
				 : xasprintf("cannot run %s: %s",
					     t->argv != NULL ? t->argv[0]
							     : "the command",
					     strerror(end->spawn_error));
		return;
	}
	if (end->error != ERROR_NONE) {
		r->status = STATUS_ERROR;
		r->error = end->error;
		r->message = xstrdup(end->message != NULL ? end->message : "");
		if (end->error == ERROR_BAD_INPUT && opts->json_input &&
		    t->input_count == 1)
			r->line = t->inputs[0]->number; /* -J: one line each */
		return;
	}
	if (end->signal != 0) {
		r->status = STATUS_SIGNALED;
		r->signal = end->signal;
	} else {
		r->exit_code = end->exit_code;
		r->status = r->exit_code == 0 ? STATUS_OK : STATUS_FAILED;
	}
	if (end->message != NULL && !t->timed_out) {
		/* A long-lived worker failed on this task. */
		if (r->status == STATUS_OK)
			r->status = STATUS_FAILED;
		r->message = xstrdup(end->message);
		return;
	}
	if (t->timed_out) {
		r->status = STATUS_TIMEOUT;
		r->error = ERROR_TIMEOUT;
		r->message = xasprintf("timed out after %.3gs",
				       (double)t->timeout_ms / 1000);
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

void
task_announce(const struct task *t, const struct template *tmpl)
{
	struct buf line = {0};

	if (t->argv == NULL)
		return; /* a long-lived worker's: not one command per task */
	shquote_command_line(&line, t->argv, template_uses_shell(tmpl));
	buf_append_char(&line, '\n');
	(void)io_write_all(STDERR_FILENO, line.data, line.len);
	buf_free(&line);
}

void
task_dry_run(struct task *t, struct output *o, const struct template *tmpl,
	     struct result *r)
{
	struct buf line = {0};

	shquote_command_line(&line, t->argv, template_uses_shell(tmpl));
	buf_append_char(&line, '\n');
	output_data(o, t->out, 1, line.data, line.len);
	buf_free(&line);
	task_result_init(t, r);
	r->status = STATUS_OK;
}
