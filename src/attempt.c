/*
 * attempt.c - small helpers of the attempt contract that every worker kind
 * shares.
 *
 * The contract says done() is never called from inside start(): the pool
 * is in the middle of launching when start() runs.  An attempt that ends
 * before it reaches a process (its spawn failed, its input cannot be sent,
 * it was cancelled while it waited) is therefore ended from the loop, on a
 * zero timer.
 */
#include <stdlib.h>
#include <sys/wait.h>

#include <uv.h>

#include "cpmap.h"

struct attempt_late_end {
	uv_timer_t timer;
	const struct attempt_callbacks *cb;
	void *arg;
	struct attempt_end end;
	char *message; /* end.message, copied */
};

static void
attempt_late_end_close_cb(uv_handle_t *handle)
{
	struct attempt_late_end *f = handle->data;

	free(f->message);
	free(f);
}

static void
attempt_late_end_cb(uv_timer_t *timer)
{
	struct attempt_late_end *f = timer->data;

	/* Here, not in the close callback: those run last-in, first-out. */
	f->cb->done(f->arg, &f->end);
	uv_close((uv_handle_t *)timer, attempt_late_end_close_cb);
}

void
attempt_end_later(uv_loop_t *loop, const struct attempt_callbacks *cb,
		  void *arg, const struct attempt_end *end)
{
	struct attempt_late_end *f = xcalloc(1, sizeof *f);
	int rc;

	f->cb = cb;
	f->arg = arg;
	f->end = *end;
	if (end->message != NULL)
		f->end.message = f->message = xstrdup(end->message);
	f->timer.data = f;
	/* Timers on a live loop cannot fail to start (libuv's contract). */
	if ((rc = uv_timer_init(loop, &f->timer)) != 0 ||
	    (rc = uv_timer_start(&f->timer, attempt_late_end_cb, 0, 0)) != 0)
		fatal("cannot start a timer: %s", uv_strerror(rc));
}

void
attempt_end_status(struct attempt_end *end, int wait_status)
{
	end->exit_code = -1;
	end->signal = 0;
	if (WIFEXITED(wait_status))
		end->exit_code = WEXITSTATUS(wait_status);
	else if (WIFSIGNALED(wait_status))
		end->signal = WTERMSIG(wait_status);
}
