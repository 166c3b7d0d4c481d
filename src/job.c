/*
 * job.c - one attempt of one task as a local child process: the local
 * worker kind.
 *
 * A job is a process (child.c) whose output it forwards to the pool as it
 * arrives, and whose end it reports once the process has exited and every
 * pipe is closed.  A command that cannot start is the task's result, not
 * cpmap's failure: it is reported from the loop, as the attempt contract
 * wants.  The job knows nothing about ordering, output formats or retries.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"

enum job_state {
	JOB_RUNNING, /* its process lives, or its pipes do */
	JOB_DONE,    /* the pool has been told: it is being freed */
};

struct job {
	enum job_state state;
	struct process *process;
	struct block_feed *feed; /* --pipe: what writes its stdin */
	const struct attempt_callbacks *cb;
	void *arg;
};

/* The local worker's state: this machine. */
struct local {
	uv_loop_t *loop;
};

/* The handle of every attempt whose process could not start: signals
 * pass it by. */
static struct job job_never_started = {.state = JOB_DONE};

static void
job_read_cb(void *arg, int stream, const char *data, size_t len)
{
	struct job *job = arg;

	if (len > 0)
		job->cb->data(job->arg, stream, data, len);
}

static void
job_closed_cb(void *arg, int wait_status)
{
	struct job *job = arg;
	struct attempt_end end = {0};

	assert(job->state == JOB_RUNNING);
	job->state = JOB_DONE;
	block_feed_stop(job->feed);
	attempt_end_status(&end, wait_status);
	log_debug("exit pid %ld: status %d signal %d",
		  (long)process_pid(job->process), end.exit_code, end.signal);
	job->cb->done(job->arg, &end);
	free(job);
}

static const struct process_callbacks job_process_callbacks = {
    .read = job_read_cb,
    .closed = job_closed_cb,
};

static void *
job_create(struct worker *w, uv_loop_t *loop, const struct options *opts,
	   const struct worker_plan *plan)
{
	struct local *local = xcalloc(1, sizeof *local);

	(void)opts;
	local->loop = loop;
	pool_worker_up(w, plan->slots, 1);
	return local;
}

static void *
job_start(void *state, const struct attempt_spec *spec,
	  const struct attempt_callbacks *cb, void *arg)
{
	struct local *local = state;
	struct job *job = xcalloc(1, sizeof *job);
	struct process_spec ps = {
	    .argv = spec->argv,
	    .stdin_pipe = spec->stdin_data != NULL,
	    .capture = spec->capture,
	    .seq = spec->seq,
	    .slot = spec->slot,
	    .host = "local",
	};
	int rc, block_pipe[2] = {-1, -1};

	job->cb = cb;
	job->arg = arg;
	if (spec->block != NULL) {
		/* The feed writes the block (splices it) into this pipe. */
		if (pipe2(block_pipe, O_CLOEXEC) < 0) {
			rc = -errno;
			free(job);
			attempt_end_later(
			    local->loop, cb, arg,
			    &(struct attempt_end){.spawn_error = -rc});
			return &job_never_started;
		}
		ps.stdin_fd = block_pipe[0];
	}
	rc = process_start(local->loop, &ps, &job_process_callbacks, job,
			   &job->process);
	if (rc < 0) {
		/* Not a failure of cpmap's: the task's result says it. */
		if (block_pipe[1] >= 0)
			close(block_pipe[1]);
		free(job);
		attempt_end_later(local->loop, cb, arg,
				  &(struct attempt_end){.spawn_error = -rc});
		return &job_never_started;
	}
	if (spec->block != NULL)
		job->feed =
		    block_feed_start(local->loop, block_pipe[1], spec->block);
	if (spec->stdin_data != NULL) {
		/* All written (or the child went away): then EOF. */
		process_write(job->process, spec->stdin_data, spec->stdin_len,
			      false);
		process_close_stdin(job->process);
	}
	return job;
}

static void
job_signal(void *attempt, int sig)
{
	struct job *job = attempt;

	if (job->state == JOB_RUNNING)
		process_signal(job->process, sig);
}

static void
job_stop(void *state, int sig)
{
	(void)state;
	child_signal_all(sig);
}

static void
job_free(void *state)
{
	free(state);
}

const struct worker_kind local_worker = {
    .name = "local",
    .create = job_create,
    .start = job_start,
    .signal = job_signal,
    .stop = job_stop,
    .free = job_free,
};
