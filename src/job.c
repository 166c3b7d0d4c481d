/*
 * job.c - one attempt of one task as a local child process: the local
 * worker.
 *
 * A job owns the child's pipes (real pipes from pipe2, opened into libuv, not
 * libuv's socketpairs: a task may expect `echo > /dev/stdout` to work) and
 * forwards what the child writes to the pool as it arrives.  A job is over
 * only when the child has exited *and* every handle is closed: the exit and
 * the pipes' EOF arrive in either order, and a grandchild may hold a pipe
 * open long after the child exited, so after the exit a grace timer kills
 * the task's process group and closes the pipes if EOF does not come.
 *
 * The job knows nothing about ordering, output formats or retries.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"

#define JOB_EOF_GRACE_MS 2000 /* after exit, how long a pipe may stay open */

struct job {
	pid_t pid;
	uv_pipe_t stdout_pipe, stderr_pipe, stdin_pipe;
	bool stdout_open, stderr_open, stdin_open; /* not yet closing */
	uv_write_t stdin_write;
	uv_timer_t timer; /* grace after exit, or the deferred spawn error */
	bool timer_open;
	unsigned open_handles; /* handles whose close callback is due */
	bool exited;
	struct attempt_end end;
	const struct attempt_callbacks *cb;
	void *arg;
};

static int job_devnull = -1;

static void job_close_cb(uv_handle_t *handle);

/* Report the end once the child is gone and every handle is closed. */
static void
job_maybe_done(struct job *job)
{
	if (!job->exited || job->open_handles > 0)
		return;
	job->cb->done(job->arg, &job->end);
	free(job);
}

static void
job_close(struct job *job, uv_handle_t *handle, bool *open)
{
	if (!*open)
		return;
	*open = false;
	uv_close(handle, job_close_cb);
}

static void
job_close_cb(uv_handle_t *handle)
{
	struct job *job = handle->data;

	job->open_handles--;
	job_maybe_done(job);
}

/* Both output pipes are done: the grace timer has nothing left to guard. */
static void
job_pipes_closed(struct job *job)
{
	if (!job->stdout_open && !job->stderr_open)
		job_close(job, (uv_handle_t *)&job->timer, &job->timer_open);
}

static void
job_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	/*
	 * libuv calls read_cb right after each read, before the next alloc,
	 * so one buffer serves every pipe; the pool copies what it keeps.
	 */
	static char block[65536];

	buf->base = block;
	buf->len = sizeof block;
}

static void
job_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct job *job = stream->data;
	bool is_stdout = stream == (uv_stream_t *)&job->stdout_pipe;

	if (nread > 0) {
		job->cb->data(job->arg, is_stdout ? 1 : 2, buf->base,
			      (size_t)nread);
		return;
	}
	if (nread == 0)
		return; /* EAGAIN */
	/* EOF, or an error that ends the stream all the same. */
	job_close(job, (uv_handle_t *)stream,
		  is_stdout ? &job->stdout_open : &job->stderr_open);
	job_pipes_closed(job);
}

static void
job_grace_cb(uv_timer_t *timer)
{
	struct job *job = timer->data;

	/* A grandchild holds the output open: stop it and stop waiting. */
	if (job->pid > 0)
		(void)kill(-job->pid, SIGKILL);
	job_close(job, (uv_handle_t *)&job->stdout_pipe, &job->stdout_open);
	job_close(job, (uv_handle_t *)&job->stderr_pipe, &job->stderr_open);
	job_close(job, (uv_handle_t *)&job->timer, &job->timer_open);
}

static void
job_exit_cb(void *arg, int wait_status)
{
	struct job *job = arg;

	job->exited = true;
	job->end.wait_status = wait_status;
	/* Nobody will read what is left to write to its stdin. */
	job_close(job, (uv_handle_t *)&job->stdin_pipe, &job->stdin_open);
	if (job->stdout_open || job->stderr_open) {
		uv_timer_init(
		    uv_handle_get_loop((uv_handle_t *)&job->stdout_pipe),
		    &job->timer);
		job->timer.data = job;
		job->timer_open = true;
		job->open_handles++;
		uv_timer_start(&job->timer, job_grace_cb, JOB_EOF_GRACE_MS, 0);
	}
	job_maybe_done(job);
}

static void
job_write_cb(uv_write_t *req, int status)
{
	struct job *job = req->data;

	/* All written (or the child went away): EOF tells it there is no more.
	 */
	job_close(job, (uv_handle_t *)&job->stdin_pipe, &job->stdin_open);
}

/* Open our end of a pipe into libuv; fatal if libuv refuses a plain fd. */
static void
job_open_pipe(uv_loop_t *loop, struct job *job, uv_pipe_t *pipe, int fd,
	      bool *open)
{
	int rc;

	uv_pipe_init(loop, pipe, 0);
	pipe->data = job;
	*open = true;
	job->open_handles++;
	if ((rc = uv_pipe_open(pipe, fd)) != 0)
		fatal("cannot watch a pipe: %s", uv_strerror(rc));
}

static void
job_spawn_failed_cb(uv_timer_t *timer)
{
	struct job *job = timer->data;

	job_close(job, (uv_handle_t *)&job->timer, &job->timer_open);
}

static void *
job_start(uv_loop_t *loop, const struct attempt_spec *spec,
	  const struct attempt_callbacks *cb, void *arg)
{
	struct job *job = xcalloc(1, sizeof *job);
	int out[2] = {-1, -1}, err[2] = {-1, -1}, in[2] = {-1, -1};
	struct child_spec child;
	int rc = 0;

	job->cb = cb;
	job->arg = arg;
	if (job_devnull < 0 &&
	    (job_devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		fatal("cannot open /dev/null: %s", strerror(errno));
	if (spec->capture &&
	    (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0))
		rc = -errno;
	if (rc == 0 && spec->stdin_data != NULL && pipe2(in, O_CLOEXEC) < 0)
		rc = -errno;
	if (rc == 0) {
		child = (struct child_spec){
		    .argv = spec->argv,
		    .stdin_fd = in[0] >= 0 ? in[0] : job_devnull,
		    .stdout_fd = spec->capture ? out[1] : STDOUT_FILENO,
		    .stderr_fd = spec->capture ? err[1] : STDERR_FILENO,
		    .seq = spec->seq,
		    .slot = spec->slot,
		    .host = "local",
		};
		rc = child_spawn(&child, job_exit_cb, job, &job->pid);
	}
	/* The child's ends are the child's now (or nobody's). */
	for (int *fd = (int[]){out[1], err[1], in[0]}, i = 0; i < 3; i++)
		if (fd[i] >= 0)
			close(fd[i]);

	if (rc < 0) {
		/* Not a failure of cpmap's: the task's result says it. */
		for (int *fd = (int[]){out[0], err[0], in[1]}, i = 0; i < 3;
		     i++)
			if (fd[i] >= 0)
				close(fd[i]);
		job->exited = true;
		job->end.spawn_error = -rc;
		uv_timer_init(loop, &job->timer);
		job->timer.data = job;
		job->timer_open = true;
		job->open_handles++;
		uv_timer_start(&job->timer, job_spawn_failed_cb, 0, 0);
		return job;
	}
	if (spec->capture) {
		job_open_pipe(loop, job, &job->stdout_pipe, out[0],
			      &job->stdout_open);
		job_open_pipe(loop, job, &job->stderr_pipe, err[0],
			      &job->stderr_open);
		uv_read_start((uv_stream_t *)&job->stdout_pipe, job_alloc_cb,
			      job_read_cb);
		uv_read_start((uv_stream_t *)&job->stderr_pipe, job_alloc_cb,
			      job_read_cb);
	}
	if (in[1] >= 0) {
		uv_buf_t data = uv_buf_init((char *)(uintptr_t)spec->stdin_data,
					    (unsigned)spec->stdin_len);

		job_open_pipe(loop, job, &job->stdin_pipe, in[1],
			      &job->stdin_open);
		job->stdin_write.data = job;
		if (uv_write(&job->stdin_write, (uv_stream_t *)&job->stdin_pipe,
			     &data, 1, job_write_cb) != 0)
			job_close(job, (uv_handle_t *)&job->stdin_pipe,
				  &job->stdin_open);
	}
	return job;
}

static void
job_signal(void *attempt, int sig)
{
	struct job *job = attempt;

	if (job->pid > 0 &&
	    (!job->exited || job->stdout_open || job->stderr_open))
		(void)kill(-job->pid, sig);
}

const struct worker_kind local_worker = {
    .name = "local",
    .start = job_start,
    .signal = job_signal,
};
