/*
 * persist.c - persistent workers (--persist): one long-lived process of the
 * command per slot, fed one input per line on its stdin, answering each
 * input with exactly one line on its stdout, in order.
 *
 * An attempt here is one task sent to its slot's worker.  Up to --stride
 * attempts are outstanding at a worker at once, so it never waits for its
 * next input; the inputs given to a worker during one turn of the loop go
 * out in one write (a prepare handle flushes them just before the loop
 * polls).  Answers are read in large blocks and split into lines with
 * memchr: no system call per task.
 *
 * A worker that exits, is killed, breaks the protocol (a line nobody asked
 * for, a last line without its newline) or is stopped by --timeout takes
 * its outstanding attempts with it: the first (the one it was working on)
 * ends with the worker's status, the others end "lost" and the pool puts
 * them back in the queue.  The next task for the slot starts a new worker.
 * --persist-max N retires a worker after N tasks: it gets EOF on stdin once
 * its last task is sent, answers what it has, and exits.
 *
 * The worker's stderr is passed through line by line, tagged "[slot N] ".
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"

#define PERSIST_EOF_GRACE_MS                                                   \
	2000 /* after exit, how long stdout may stay open */
#define PERSIST_QUIT_GRACE_MS 5000 /* after EOF on stdin, before SIGTERM */

struct persist_worker;

struct persist_attempt {
	struct persist_worker *worker; /* NULL while it waits for one */
	const struct attempt_callbacks *cb;
	void *arg;
	const char *data; /* its input lines, owned by the pool's task */
	size_t len;
	size_t lines; /* answers still expected */
	unsigned slot;
	bool cancelled; /* signalled while it waited: it ends lost */
	struct persist_attempt *next;
};

/*
 * A slot has at most one worker process at a time: while a worker is on its
 * way out (retired, failed), new attempts for the slot wait here, and the
 * next worker starts once the old one is gone.
 */
struct persist_slot {
	unsigned number;
	char *const *argv; /* the worker's command, owned by the pool */
	struct persist_worker *worker;
	struct persist_attempt *wait_head, *wait_tail;
};

struct persist_worker {
	uv_loop_t *loop;
	unsigned slot;
	pid_t pid;
	bool exited;
	int wait_status;
	uv_pipe_t stdin_pipe, stdout_pipe, stderr_pipe;
	bool stdin_open, stdout_open, stderr_open;
	uv_timer_t timer; /* grace after exit, or before SIGTERM at the end */
	bool timer_open;
	unsigned open_handles;
	struct buf batch;     /* inputs not yet written */
	bool dirty;	      /* on the flush list */
	unsigned writes;      /* writes in flight */
	struct buf answer;    /* a stdout line not yet complete */
	struct buf complaint; /* a stderr line not yet complete */
	struct persist_attempt *head, *tail; /* unanswered, in order */
	uint64_t sent;	      /* tasks given, for --persist-max */
	bool retiring;	      /* takes no more tasks */
	bool term_sent;	      /* at the end: SIGTERM sent, SIGKILL next */
	bool failed;	      /* exited, killed or broke the protocol */
	const char *reason;   /* why it failed */
	char reason_text[96]; /* a reason made up at the time */
	struct persist_worker *next_dirty;
};

struct persist_write {
	uv_write_t req;
	struct persist_worker *worker;
	char *data;
};

static struct {
	uv_loop_t *loop;
	const struct options *opts;
	struct persist_slot *slots; /* by slot number - 1 */
	unsigned slot_count;
	struct persist_worker *dirty; /* workers with a batch to write */
	uv_prepare_t flush;
	bool started;
} persist;

static void persist_fail(struct persist_worker *w, const char *reason);

/* ---- the end of a worker ----------------------------------------------- */

/* End every outstanding attempt: the first with the worker's fate. */
static void
persist_end_attempts(struct persist_worker *w)
{
	bool first = true;

	while (w->head != NULL) {
		struct persist_attempt *a = w->head;
		struct attempt_end end = {.wait_status = w->wait_status,
					  .reason = w->reason};

		w->head = a->next;
		/* The first was being worked on; the others never were. */
		end.lost = !first || w->reason == NULL;
		if (w->reason == NULL)
			end.reason = "the worker went away";
		first = false;
		a->cb->done(a->arg, &end);
		free(a);
	}
	w->tail = NULL;
}

static void persist_slot_resume(struct persist_slot *slot);

/* Free the worker once it has exited and every handle is closed. */
static void
persist_maybe_free(struct persist_worker *w)
{
	struct persist_slot *slot = &persist.slots[w->slot - 1];

	if (!w->exited || w->open_handles > 0)
		return;
	/*
	 * Leave the slot first: ending the attempts runs the pool, which may
	 * send this slot new ones (they wait for the next worker) or end the
	 * run (and shut down the workers it sees).
	 */
	if (slot->worker == w)
		slot->worker = NULL;
	persist_end_attempts(w);
	if (slot->worker == NULL)
		persist_slot_resume(slot);
	if (w->dirty) {
		/* A batch it never got: off the flush list before it goes. */
		struct persist_worker **link = &persist.dirty;

		while (*link != w)
			link = &(*link)->next_dirty;
		*link = w->next_dirty;
	}
	buf_free(&w->batch);
	buf_free(&w->answer);
	buf_free(&w->complaint);
	free(w);
}

static void
persist_close_cb(uv_handle_t *handle)
{
	struct persist_worker *w = handle->data;

	w->open_handles--;
	persist_maybe_free(w);
}

static void
persist_close(struct persist_worker *w, uv_handle_t *handle, bool *open)
{
	if (!*open)
		return;
	*open = false;
	uv_close(handle, persist_close_cb);
}

/* The worker takes no more tasks; its slot's next ones wait for it to go. */
static void
persist_detach(struct persist_worker *w)
{
	w->retiring = true;
}

static void persist_finished(struct persist_worker *w);
static void persist_start_timer(struct persist_worker *w, uint64_t ms);

static void
persist_grace_cb(uv_timer_t *timer)
{
	struct persist_worker *w = timer->data;

	if (!w->exited) {
		/* It did not quit on EOF: ask, then make it. */
		(void)kill(-w->pid, w->term_sent ? SIGKILL : SIGTERM);
		if (!w->term_sent)
			uv_timer_start(&w->timer, persist_grace_cb,
				       persist.opts->kill_after_ms, 0);
		w->term_sent = true;
		return;
	}
	/* A grandchild holds its output open: stop waiting for it. */
	(void)kill(-w->pid, SIGKILL);
	persist_close(w, (uv_handle_t *)&w->stdout_pipe, &w->stdout_open);
	persist_close(w, (uv_handle_t *)&w->stderr_pipe, &w->stderr_open);
	persist_finished(w);
}

/* The timer is opened with the worker and closed once, when it is done. */
static void
persist_start_timer(struct persist_worker *w, uint64_t ms)
{
	if (w->timer_open)
		uv_timer_start(&w->timer, persist_grace_cb, ms, 0);
}

/*
 * EOF on its stdin tells the worker to go; one that does not is sent
 * SIGTERM after a while, then SIGKILL after --kill-after.
 */
static void
persist_goodbye(struct persist_worker *w)
{
	persist_close(w, (uv_handle_t *)&w->stdin_pipe, &w->stdin_open);
	if (!w->exited)
		persist_start_timer(w, PERSIST_QUIT_GRACE_MS);
}

/* Exited, and its output read to the end: nothing left to wait for. */
static void
persist_finished(struct persist_worker *w)
{
	if (w->exited && !w->stdout_open && !w->stderr_open)
		persist_close(w, (uv_handle_t *)&w->timer, &w->timer_open);
}

static void
persist_exit_cb(void *arg, int wait_status)
{
	struct persist_worker *w = arg;

	w->exited = true;
	w->wait_status = wait_status;
	persist_detach(w);
	persist_close(w, (uv_handle_t *)&w->stdin_pipe, &w->stdin_open);
	if (w->head != NULL && w->reason == NULL) {
		char name[32];

		if (WIFSIGNALED(wait_status)) {
			signal_name(WTERMSIG(wait_status), name, sizeof name);
			snprintf(w->reason_text, sizeof w->reason_text,
				 "the worker was killed by %s before answering",
				 name);
		} else {
			snprintf(w->reason_text, sizeof w->reason_text,
				 "the worker exited (status %d) before "
				 "answering",
				 WEXITSTATUS(wait_status));
		}
		w->reason = w->reason_text;
	}
	if (w->stdout_open || w->stderr_open)
		persist_start_timer(w, PERSIST_EOF_GRACE_MS);
	persist_finished(w);
	persist_maybe_free(w);
}

/* The worker cannot be trusted any more: stop it, end its attempts. */
static void
persist_fail(struct persist_worker *w, const char *reason)
{
	if (w->failed && w->reason != NULL)
		return;
	w->failed = true;
	if (w->reason == NULL)
		w->reason = reason;
	persist_detach(w);
	if (!w->exited)
		(void)kill(-w->pid, SIGKILL);
}

/* ---- answers ----------------------------------------------------------- */

static void
persist_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	static char block[65536];

	buf->base = block;
	buf->len = sizeof block;
}

/* One answer line: it belongs to the oldest attempt. */
static void
persist_answer(struct persist_worker *w, const char *line, size_t len)
{
	struct persist_attempt *a = w->head;

	if (a == NULL) {
		log_warn("[slot %u] the worker wrote a line it was not asked "
			 "for: restarting it",
			 w->slot);
		persist_fail(w,
			     "the worker broke the protocol (an extra line)");
		return;
	}
	a->cb->data(a->arg, 1, line, len);
	if (--a->lines > 0)
		return;
	w->head = a->next;
	if (w->head == NULL)
		w->tail = NULL;
	a->cb->done(a->arg, &(struct attempt_end){0});
	free(a);
	if (w->head == NULL && w->retiring && w->stdin_open && w->writes == 0 &&
	    !w->dirty)
		persist_goodbye(w);
}

static void
persist_stdout_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct persist_worker *w = stream->data;
	const char *p = buf->base, *end = buf->base + (nread > 0 ? nread : 0);

	if (nread < 0) {
		if (w->answer.len > 0 && !w->failed)
			persist_fail(w, "the worker broke the protocol (a "
					"last line without a newline)");
		persist_close(w, (uv_handle_t *)stream, &w->stdout_open);
		persist_finished(w);
		return;
	}
	while (p < end && !w->failed) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (nl == NULL) {
			buf_append(&w->answer, p, (size_t)(end - p));
			return;
		}
		if (w->answer.len > 0) {
			buf_append(&w->answer, p, (size_t)(nl - p) + 1);
			persist_answer(w, w->answer.data, w->answer.len);
			w->answer.len = 0;
		} else {
			persist_answer(w, p, (size_t)(nl - p) + 1);
		}
		p = nl + 1;
	}
}

static void
persist_stderr_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct persist_worker *w = stream->data;
	const char *p = buf->base, *end = buf->base + (nread > 0 ? nread : 0);
	char tag[32];
	int tag_len = snprintf(tag, sizeof tag, "[slot %u] ", w->slot);

	if (nread < 0) {
		if (w->complaint.len > 0) {
			buf_append_char(&w->complaint, '\n');
			(void)io_write_all(STDERR_FILENO, w->complaint.data,
					   w->complaint.len);
		}
		persist_close(w, (uv_handle_t *)stream, &w->stderr_open);
		persist_finished(w);
		return;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (w->complaint.len == 0)
			buf_append(&w->complaint, tag, (size_t)tag_len);
		if (nl == NULL) {
			buf_append(&w->complaint, p, (size_t)(end - p));
			return;
		}
		buf_append(&w->complaint, p, (size_t)(nl - p) + 1);
		(void)io_write_all(STDERR_FILENO, w->complaint.data,
				   w->complaint.len);
		w->complaint.len = 0;
		p = nl + 1;
	}
}

/* ---- inputs ------------------------------------------------------------ */

static void
persist_write_cb(uv_write_t *req, int status)
{
	struct persist_write *wr = (struct persist_write *)req;
	struct persist_worker *w = wr->worker;

	w->writes--;
	free(wr->data);
	free(wr);
	if (status < 0 && status != UV_ECANCELED && !w->failed)
		persist_fail(w, "the worker stopped reading its input");
	if (w->retiring && w->head == NULL && w->writes == 0 && !w->dirty)
		persist_goodbye(w);
}

/* Write every pending batch, one write per worker. */
static void
persist_flush_cb(uv_prepare_t *handle)
{
	while (persist.dirty != NULL) {
		struct persist_worker *w = persist.dirty;
		struct persist_write *wr;
		uv_buf_t data;

		persist.dirty = w->next_dirty;
		w->dirty = false;
		if (!w->stdin_open || w->batch.len == 0)
			continue;
		wr = xcalloc(1, sizeof *wr);
		wr->worker = w;
		wr->data = buf_steal(&w->batch, &data.len);
		data.base = wr->data;
		w->writes++;
		if (uv_write(&wr->req, (uv_stream_t *)&w->stdin_pipe, &data, 1,
			     persist_write_cb) != 0) {
			w->writes--;
			free(wr->data);
			free(wr);
			persist_fail(w, "the worker's input cannot be written");
		}
	}
}

static void
persist_open_pipe(struct persist_worker *w, uv_pipe_t *pipe, int fd, bool *open)
{
	int rc;

	uv_pipe_init(w->loop, pipe, 0);
	pipe->data = w;
	*open = true;
	w->open_handles++;
	if ((rc = uv_pipe_open(pipe, fd)) != 0)
		fatal("cannot watch a pipe: %s", uv_strerror(rc));
}

/* Start the slot's worker; NULL (and *error) if it cannot start. */
static struct persist_worker *
persist_spawn(const struct persist_slot *slot, int *error)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	struct persist_worker *w = xcalloc(1, sizeof *w);
	struct child_spec child;
	int rc = 0;

	w->loop = persist.loop;
	w->slot = slot->number;
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
	    pipe2(err, O_CLOEXEC) < 0)
		rc = -errno;
	if (rc == 0) {
		child = (struct child_spec){.argv = slot->argv,
					    .stdin_fd = in[0],
					    .stdout_fd = out[1],
					    .stderr_fd = err[1],
					    .seq = 0,
					    .slot = slot->number,
					    .host = "local"};
		rc = child_spawn(&child, persist_exit_cb, w, &w->pid);
	}
	for (int *fd = (int[]){in[0], out[1], err[1]}, i = 0; i < 3; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	if (rc < 0) {
		for (int *fd = (int[]){in[1], out[0], err[0]}, i = 0; i < 3;
		     i++)
			if (fd[i] >= 0)
				close(fd[i]);
		free(w);
		*error = -rc;
		return NULL;
	}
	uv_timer_init(w->loop, &w->timer);
	w->timer.data = w;
	w->timer_open = true;
	w->open_handles++;
	persist_open_pipe(w, &w->stdin_pipe, in[1], &w->stdin_open);
	persist_open_pipe(w, &w->stdout_pipe, out[0], &w->stdout_open);
	persist_open_pipe(w, &w->stderr_pipe, err[0], &w->stderr_open);
	uv_read_start((uv_stream_t *)&w->stdout_pipe, persist_alloc_cb,
		      persist_stdout_cb);
	uv_read_start((uv_stream_t *)&w->stderr_pipe, persist_alloc_cb,
		      persist_stderr_cb);
	return w;
}

/* ---- the worker kind --------------------------------------------------- */

/* An attempt that never reached a worker (its spawn failed, or it was
 * cancelled while it waited) still owes the pool an asynchronous end.  The
 * attempt (the pool's handle) lives until then; with no worker, signals
 * pass it by. */
struct persist_late_end {
	struct persist_attempt *attempt;
	uv_timer_t timer;
	struct attempt_end end;
};

static void
persist_late_end_close_cb(uv_handle_t *handle)
{
	struct persist_late_end *f = handle->data;

	free(f->attempt);
	free(f);
}

static void
persist_late_end_cb(uv_timer_t *timer)
{
	struct persist_late_end *f = timer->data;

	/* Here, not in the close callback: those run last-in, first-out. */
	f->attempt->cb->done(f->attempt->arg, &f->end);
	uv_close((uv_handle_t *)timer, persist_late_end_close_cb);
}

/* End an attempt that never reached a worker, asynchronously. */
static void
persist_end_later(struct persist_attempt *a, const struct attempt_end *end)
{
	struct persist_late_end *f = xcalloc(1, sizeof *f);

	a->worker = NULL;
	a->next = NULL;
	f->attempt = a;
	f->end = *end;
	uv_timer_init(persist.loop, &f->timer);
	f->timer.data = f;
	uv_timer_start(&f->timer, persist_late_end_cb, 0, 0);
}

/* Give the attempt to the worker: queue it and add its lines to the batch. */
static void
persist_send(struct persist_worker *w, struct persist_attempt *a)
{
	a->worker = w;
	a->next = NULL;
	if (w->tail != NULL)
		w->tail->next = a;
	else
		w->head = a;
	w->tail = a;
	buf_append(&w->batch, a->data, a->len);
	if (!w->dirty) {
		w->dirty = true;
		w->next_dirty = persist.dirty;
		persist.dirty = w;
	}
	if (persist.opts->persist_max > 0 &&
	    ++w->sent >= persist.opts->persist_max)
		persist_detach(w); /* EOF once the last answer is in */
}

/* The slot has no worker: start one for the attempts waiting there. */
static void
persist_slot_resume(struct persist_slot *slot)
{
	struct persist_attempt *a, **link = &slot->wait_head;
	int error = 0;

	/* Cancelled attempts end first: a stopped run starts no worker. */
	while ((a = *link) != NULL) {
		if (!a->cancelled) {
			link = &a->next;
			continue;
		}
		*link = a->next;
		persist_end_later(a, &(struct attempt_end){.lost = true});
	}
	slot->wait_tail = NULL;
	for (a = slot->wait_head; a != NULL; a = a->next)
		slot->wait_tail = a;
	if (slot->wait_head == NULL)
		return;
	slot->worker = persist_spawn(slot, &error);
	while ((a = slot->wait_head) != NULL) {
		slot->wait_head = a->next;
		if (a->cancelled) {
			persist_end_later(a,
					  &(struct attempt_end){.lost = true});
		} else if (slot->worker == NULL) {
			persist_end_later(
			    a, &(struct attempt_end){.spawn_error = error});
		} else if (slot->worker->retiring) {
			/* --persist-max reached already: the rest wait on. */
			slot->wait_head = a;
			break;
		} else {
			persist_send(slot->worker, a);
		}
	}
	if (slot->wait_head == NULL)
		slot->wait_tail = NULL;
}

static void *
persist_start(uv_loop_t *loop, const struct attempt_spec *spec,
	      const struct attempt_callbacks *cb, void *arg)
{
	struct persist_slot *slot = &persist.slots[spec->slot - 1];
	struct persist_attempt *a = xcalloc(1, sizeof *a);

	a->cb = cb;
	a->arg = arg;
	a->data = spec->stdin_data;
	a->len = spec->stdin_len;
	a->slot = spec->slot;
	for (size_t i = 0; i < spec->stdin_len; i++)
		a->lines += spec->stdin_data[i] == '\n';
	slot->argv = spec->argv;
	if (slot->worker != NULL && !slot->worker->retiring) {
		persist_send(slot->worker, a);
		return a;
	}
	/* Wait for the slot's next worker (start it now if there is none). */
	if (slot->wait_tail != NULL)
		slot->wait_tail->next = a;
	else
		slot->wait_head = a;
	slot->wait_tail = a;
	if (slot->worker == NULL)
		persist_slot_resume(slot);
	return a;
}

static void
persist_signal(void *attempt, int sig)
{
	struct persist_attempt *a = attempt;
	struct persist_worker *w = a->worker;

	if (w == NULL && a->slot > 0 && !a->cancelled) {
		/* It waits for its slot's next worker: it will not run, and
		 * the worker on its way out is made to go. */
		a->cancelled = true;
		w = persist.slots[a->slot - 1].worker;
	}
	if (w == NULL || w->exited)
		return;
	persist_detach(w);
	(void)kill(-w->pid, sig);
}

static void
persist_shutdown(void)
{
	/* Every task is done: EOF tells each worker to go. */
	for (unsigned i = 0; i < persist.slot_count; i++) {
		struct persist_worker *w = persist.slots[i].worker;

		if (w == NULL || w->exited)
			continue;
		persist_detach(w);
		if (w->head == NULL && w->writes == 0)
			persist_goodbye(w);
		else
			persist_start_timer(w, PERSIST_QUIT_GRACE_MS);
	}
	if (persist.started) {
		uv_close((uv_handle_t *)&persist.flush, NULL);
		persist.started = false;
	}
}

void
persist_init(uv_loop_t *loop, const struct options *opts)
{
	persist.loop = loop;
	persist.opts = opts;
	persist.slot_count = opts->jobs;
	persist.slots = xcalloc(opts->jobs, sizeof *persist.slots);
	for (unsigned i = 0; i < opts->jobs; i++)
		persist.slots[i].number = i + 1;
	uv_prepare_init(loop, &persist.flush);
	uv_prepare_start(&persist.flush, persist_flush_cb);
	uv_unref((uv_handle_t *)&persist.flush);
	persist.started = true;
}

void
persist_free(void)
{
	free(persist.slots);
	persist.slots = NULL;
}

const struct worker_kind persist_worker = {
    .name = "local",
    .start = persist_start,
    .signal = persist_signal,
    .shutdown = persist_shutdown,
};
