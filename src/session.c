/*
 * session.c - long-lived processes, one per slot, fed requests on stdin
 * and read for answers on stdout: the mechanics that persistent workers
 * and remote hosts share.  What is said over the pipes is a protocol's
 * (persist.c, remote.c); this file knows no word of it.
 *
 * An attempt here is one request sent to its slot's process.  Several may
 * be outstanding at once (--stride): they are answered in order, so they
 * wait in a FIFO and the oldest is the one being worked on.  The requests
 * given to a process during one turn of the loop go out in one write: a
 * prepare handle flushes every batch just before the loop polls.
 *
 * A slot has at most one process at a time.  One that retires (its
 * --persist-max reached, or told to stop) takes no new request; the slot's
 * next attempts wait until it is gone and then start the next process.  A
 * process that exits, is killed or breaks the protocol takes its
 * outstanding attempts with it: with blame_first, the oldest ends with the
 * process's fate (its input may be what killed it) and the others are
 * lost; without, every one is lost.  The pool puts lost attempts back in
 * the queue.  At the end, EOF on stdin tells a process to go; one that
 * does not is sent SIGTERM after a grace, then SIGKILL.
 *
 * Its stderr is passed through line by line, tagged "[slot N] ".
 */
#include <assert.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"

#define SESSION_QUIT_GRACE_MS 5000 /* after EOF on stdin, before SIGTERM */
/* A process that owes answers and says nothing this long while inputs
 * wait for it is taken to buffer them: it is told EOF, which flushes. */
#define SESSION_STALL_MS 5000
#define SESSION_STALL_CHECK_MS 1000

enum session_state {
	SESSION_RUNNING,  /* takes requests */
	SESSION_RETIRING, /* takes none; EOF once its last answer is in */
	SESSION_FAILED,	  /* killed or broke the protocol: ends with it */
	SESSION_EXITED,	  /* the process exited; its pipes are closing */
};

struct session_attempt {
	struct session_slot *slot;
	struct session *session; /* NULL while it waits for one */
	const struct attempt_callbacks *cb;
	void *arg;
	struct attempt_spec spec; /* its pointers are the pool's task's */
	size_t expect;		  /* answers still expected */
	bool cancelled;		  /* signalled while it waited: it is lost */
	TAILQ_ENTRY(session_attempt) entry;
	struct session_attempt *next_spare; /* on the set's spares */
};

TAILQ_HEAD(session_attempts, session_attempt);

struct session {
	enum session_state state;
	struct session_slot *slot;
	struct process *process;
	int wait_status;
	struct session_attempts unanswered; /* oldest first */
	struct buf batch;		    /* requests not yet written */
	bool dirty;			    /* on the set's flush list */
	TAILQ_ENTRY(session) dirty_entry;
	struct buf pending;    /* the protocol's, between decode calls */
	void *protocol_data;   /* the protocol's, freed with the session */
	struct buf complaint;  /* a stderr line not yet complete */
	uint64_t read_ns;      /* while decoding: when the answers came */
	size_t answered;       /* ... and how many attempts they ended */
	size_t owed;	       /* attempts sent and not answered */
	unsigned idle_reads;   /* reads in a row that left nothing owed */
	uint64_t sent;	       /* requests given, for max_requests */
	uint64_t quiet_since;  /* loop time of its last answer, or of the
				  request that ended its idleness */
	bool eof_when_written; /* EOF once its batch is written (drain) */
	bool told_to_go;       /* EOF sent, or signalled by the pool */
	bool deaf;	       /* what it says no longer counts */
	bool abandoned;	       /* its worker went away: every attempt lost */
	const char *reason;    /* why it failed */
	char reason_text[96];  /* a reason made up at the time */
};

struct session_slot {
	struct session_set *set;
	unsigned index;	 /* from 0 */
	unsigned number; /* {%} of its last attempt */
	char *const *argv;
	struct session *session;	 /* the live process, or NULL */
	struct session_attempts waiting; /* for the next process */
};

struct session_set {
	uv_loop_t *loop;
	struct session_config config;
	struct session_slot *slots;
	unsigned slot_count;
	TAILQ_HEAD(, session) dirty; /* sessions with a batch to write */
	uv_prepare_t flush;
	bool flush_open;
	bool draining;	  /* no more input: EOF once requests are written */
	bool one_batch;	  /* a process stalled: each gets one batch, then EOF */
	uv_timer_t stall; /* looks for processes that owe answers, silent */
	bool stall_open;
	struct session_attempt *spare; /* ended attempts, kept for new ones */
	unsigned stride;	       /* requests outstanding per process */
};

/* The handle of an attempt that ended before it was sent: signals pass
 * it by. */
static struct session_attempt session_ended = {.cancelled = true};

static void session_slot_resume(struct session_slot *slot);

/*
 * An attempt whose end the pool has been told of (so it holds it no more):
 * kept for the next one, as a run of many tiny tasks makes one per task.
 */
static void
session_attempt_done(struct session_attempt *a)
{
	struct session_set *set = a->slot->set;

	if (CPMAP_KEEP_SPARES) {
		a->next_spare = set->spare;
		set->spare = a;
	} else {
		free(a);
	}
}

/* ---- the end of a process ---------------------------------------------- */

/* End every outstanding attempt: with blame_first, the oldest with the
 * process's fate. */
static void
session_end_attempts(struct session *s)
{
	const struct session_config *config = &s->slot->set->config;
	bool first = s->abandoned ? false
		     : config->to_blame != NULL
			 ? config->to_blame(config->arg, s->wait_status)
			 : config->protocol->blame_first;
	struct session_attempt *a;

	while ((a = TAILQ_FIRST(&s->unanswered)) != NULL) {
		struct attempt_end end = {.exit_code = -1};

		TAILQ_REMOVE(&s->unanswered, a, entry);
		if (first && s->reason != NULL) {
			attempt_end_status(&end, s->wait_status);
			end.message = s->reason;
		} else {
			/* It was never worked on, or nobody is to blame. */
			end.lost = true;
			end.message = "the worker went away";
			log_debug("lost seq %llu at slot %u",
				  (unsigned long long)a->spec.seq,
				  a->slot->index + 1);
		}
		first = false;
		a->cb->done(a->arg, &end);
		session_attempt_done(a);
	}
}

/* It exited, and every answer it wrote is read: say why it left attempts
 * unanswered, for the one that takes the blame. */
static void
session_blame(struct session *s)
{
	struct attempt_end end;
	char name[32];

	if (TAILQ_EMPTY(&s->unanswered) || s->reason != NULL)
		return;
	attempt_end_status(&end, s->wait_status);
	if (end.signal != 0) {
		signal_name(end.signal, name, sizeof name);
		snprintf(s->reason_text, sizeof s->reason_text,
			 "the worker was killed by %s before answering", name);
	} else {
		snprintf(s->reason_text, sizeof s->reason_text,
			 "the worker exited (status %d) before answering",
			 end.exit_code);
	}
	s->reason = s->reason_text;
}

static void
session_closed_cb(void *arg, int wait_status)
{
	struct session *s = arg;
	struct session_slot *slot = s->slot;
	struct session_set *set = slot->set;

	assert(s->state == SESSION_EXITED);
	(void)wait_status;
	session_blame(s);
	/*
	 * Leave the slot first: ending the attempts runs the pool, which may
	 * send this slot new ones (they wait for the next process) or end the
	 * run (and shut down the processes it sees).
	 */
	if (slot->session == s)
		slot->session = NULL;
	session_end_attempts(s);
	if (slot->session == NULL)
		session_slot_resume(slot);
	if (s->dirty)
		TAILQ_REMOVE(&set->dirty, s, dirty_entry);
	buf_free(&s->batch);
	buf_free(&s->pending);
	buf_free(&s->complaint);
	free(s->protocol_data);
	free(s);
}

static void
session_exit_cb(void *arg, int wait_status)
{
	struct session *s = arg;
	struct session_set *set = s->slot->set;
	bool unasked = !s->told_to_go && s->state != SESSION_FAILED;

	s->state = SESSION_EXITED;
	s->wait_status = wait_status;
	log_debug("exit session pid %ld at slot %u: wait status %#x",
		  (long)process_pid(s->process), s->slot->index + 1,
		  (unsigned)wait_status);
	if (unasked && set->config.died != NULL)
		set->config.died(set->config.arg, s->slot->index, wait_status);
}

void
session_broken(struct session *s, const char *why)
{
	if (s->state == SESSION_FAILED || s->state == SESSION_EXITED)
		return;
	log_debug("broken session pid %ld at slot %u: %s",
		  (long)process_pid(s->process), s->slot->index + 1, why);
	s->state = SESSION_FAILED;
	s->deaf = true;
	if (s->reason == NULL)
		s->reason = why;
	process_signal(s->process, SIGKILL);
}

/* The process takes no more requests; the slot's next ones wait for it to
 * go. */
static void
session_retire(struct session *s)
{
	if (s->state == SESSION_RUNNING)
		s->state = SESSION_RETIRING;
}

/* EOF on its stdin tells the process to go; one that does not is sent
 * SIGTERM after a while, then SIGKILL after --kill-after. */
static void
session_goodbye(struct session *s)
{
	s->told_to_go = true;
	process_close_stdin(s->process);
	process_quit_after(s->process, SESSION_QUIT_GRACE_MS,
			   s->slot->set->config.kill_after_ms);
}

/* A retiring process with nothing left to answer or write can go. */
static void
session_maybe_goodbye(struct session *s)
{
	if (s->state == SESSION_RETIRING && TAILQ_EMPTY(&s->unanswered) &&
	    process_writes(s->process) == 0 && !s->dirty)
		session_goodbye(s);
}

/*
 * No more requests will go to the process: EOF as soon as those it has
 * are written, while it still owes their answers, so that one that
 * buffers its output (or its input) flushes them and goes.  No grace
 * timer here: it may take its time over the answers it owes.
 */
static void
session_end_input(struct session *s)
{
	struct session_set *set = s->slot->set;

	if (s->state != SESSION_RUNNING && s->state != SESSION_RETIRING)
		return;
	/* At the flush, at the end of this turn of the loop: the attempts
	 * given back in this turn (a retry, lost ones) go to it first. */
	s->eof_when_written = true;
	if (!s->dirty) {
		s->dirty = true;
		TAILQ_INSERT_TAIL(&set->dirty, s, dirty_entry);
	}
}

/* ---- answers ----------------------------------------------------------- */

void
session_head_data(struct session *s, int stream, const char *data, size_t len)
{
	struct session_attempt *a = TAILQ_FIRST(&s->unanswered);

	if (s->deaf)
		return; /* it is being ended: its answers no longer count */
	if (a == NULL) {
		log_warn("[slot %u] the worker wrote a line it was not asked "
			 "for: restarting it",
			 s->slot->number);
		session_broken(s,
			       "the worker broke the protocol (an extra line)");
		return;
	}
	a->cb->data(a->arg, stream, data, len);
}

void
session_head_done(struct session *s, const struct attempt_end *end)
{
	struct session_attempt *a = TAILQ_FIRST(&s->unanswered);

	if (s->deaf || a == NULL)
		return;
	TAILQ_REMOVE(&s->unanswered, a, entry);
	s->answered++;
	s->owed--;
	log_debug("answer seq %llu at slot %u", (unsigned long long)a->spec.seq,
		  s->slot->index + 1);
	a->cb->done(a->arg, end);
	session_attempt_done(a);
	session_maybe_goodbye(s);
}

void
session_head_answered(struct session *s)
{
	struct session_attempt *a = TAILQ_FIRST(&s->unanswered);

	if (s->deaf || a == NULL)
		return;
	if (--a->expect == 0)
		session_head_done(
		    s, &(struct attempt_end){.exit_code = 0,
					     .ended_ns = s->read_ns});
}

struct buf *
session_pending(struct session *s)
{
	return &s->pending;
}

const struct attempt_spec *
session_head_spec(struct session *s)
{
	struct session_attempt *a = TAILQ_FIRST(&s->unanswered);

	return a != NULL ? &a->spec : NULL;
}

void *
session_protocol_arg(struct session *s)
{
	return s->slot->set->config.arg;
}

void **
session_protocol_data(struct session *s)
{
	return &s->protocol_data;
}

unsigned
session_slot_number(const struct session *s)
{
	return s->slot->number;
}

/* Its stderr, passed through whole lines at a time with the slot's tag. */
static void
session_complain(struct session *s, const char *p, size_t len)
{
	const char *end = p + len;

	if (len == 0) {
		if (s->complaint.len > 0) {
			buf_append_char(&s->complaint, '\n');
			(void)io_write_all(STDERR_FILENO, s->complaint.data,
					   s->complaint.len);
			s->complaint.len = 0;
		}
		return;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (s->complaint.len == 0) {
			char tag[96];
			const char *host = s->slot->set->config.host;
			int n = host != NULL
				    ? snprintf(tag, sizeof tag, "[%s slot %u] ",
					       host, s->slot->number)
				    : snprintf(tag, sizeof tag, "[slot %u] ",
					       s->slot->number);

			buf_append(&s->complaint, tag, (size_t)n);
		}
		if (nl == NULL) {
			buf_append(&s->complaint, p, (size_t)(end - p));
			return;
		}
		buf_append(&s->complaint, p, (size_t)(nl - p) + 1);
		(void)io_write_all(STDERR_FILENO, s->complaint.data,
				   s->complaint.len);
		s->complaint.len = 0;
		p = nl + 1;
	}
}

/*
 * The process answered everything it was given before cpmap looked, and
 * that was half a stride or more: it sits idle while its next batch waits
 * for cpmap's turn round the other slots.  Twice in a row, and the stride
 * doubles (up to config.grow_to): one write and one read then carry more
 * requests, and they cost more than tasks this quick.  A process that
 * takes its time answers a request or two per read, and never trips this;
 * nor does the end of the input, which leaves less than half a stride.
 */
static void
session_pace(struct session *s, size_t owed, size_t answered)
{
	struct session_set *set = s->slot->set;

	if (set->config.grow_to <= set->stride)
		return;
	if (answered < owed || answered * 2 < set->stride) {
		s->idle_reads = 0;
		return;
	}
	if (++s->idle_reads < 2)
		return;
	s->idle_reads = 0;
	set->stride = set->stride * 2 < set->config.grow_to
			  ? set->stride * 2
			  : set->config.grow_to;
	log_debug("stride %u: slot %u answered %zu requests, all it had, in "
		  "one read",
		  set->stride, s->slot->index + 1, answered);
	set->config.stride_grown(set->config.arg, set->stride);
}

static void
session_read_cb(void *arg, int stream, const char *data, size_t len)
{
	struct session *s = arg;

	if (stream == 1)
		s->quiet_since = uv_now(s->slot->set->loop);
	if (stream == 2)
		session_complain(s, data, len);
	else {
		/* The answers in these bytes all came now: one clock read
		 * times them all (a task's duration ends here). */
		/* What it owed now: the answers may send it more. */
		size_t owed = s->owed;

		s->read_ns = uv_hrtime();
		s->answered = 0;
		s->slot->set->config.protocol->decode(s, data, len);
		s->read_ns = 0;
		session_pace(s, owed, s->answered);
	}
}

/* ---- requests ---------------------------------------------------------- */

static void
session_written_cb(void *arg, int status)
{
	struct session *s = arg;

	if (status < 0)
		session_broken(s, "the worker stopped reading its input");
	session_maybe_goodbye(s);
}

/* Write every pending batch, one write per process. */
static void
session_flush_cb(uv_prepare_t *handle)
{
	struct session_set *set = handle->data;
	struct session *s;

	while ((s = TAILQ_FIRST(&set->dirty)) != NULL) {
		size_t len;
		char *data;

		TAILQ_REMOVE(&set->dirty, s, dirty_entry);
		s->dirty = false;
		if (s->batch.len > 0) {
			data = buf_steal(&s->batch, &len);
			/* The next batch is likely as big: one allocation
			 * for it, not one per doubling (up to 64 KiB: a
			 * block or a file sent is no guide). */
			buf_reserve(&s->batch, len < 65536 ? len : 65536);
			log_debug("batch to slot %u: %zu bytes",
				  s->slot->index + 1, len);
			process_write(s->process, data, len, true);
		}
		if (s->eof_when_written) {
			session_retire(s);
			s->told_to_go = true;
			process_close_stdin(s->process);
			session_maybe_goodbye(s);
		}
	}
}

static const struct process_callbacks session_process_callbacks = {
    .read = session_read_cb,
    .written = session_written_cb,
    .exit = session_exit_cb,
    .closed = session_closed_cb,
};

/* Start the slot's process; NULL (and *error) if it cannot start. */
static struct session *
session_spawn(struct session_slot *slot, int *error)
{
	struct session_set *set = slot->set;
	struct session *s = xcalloc(1, sizeof *s);
	struct process_spec ps = {
	    .argv = slot->argv,
	    .stdin_pipe = true,
	    .capture = true,
	    .slot = slot->number,
	    .host = set->config.host != NULL ? set->config.host : "local",
	};
	int rc;

	s->slot = slot;
	TAILQ_INIT(&s->unanswered);
	rc = process_start(set->loop, &ps, &session_process_callbacks, s,
			   &s->process);
	if (rc < 0) {
		free(s);
		*error = -rc;
		return NULL;
	}
	s->state = SESSION_RUNNING;
	if (set->config.preamble != NULL) {
		buf_append_str(&s->batch, set->config.preamble);
		s->dirty = true;
		TAILQ_INSERT_TAIL(&set->dirty, s, dirty_entry);
	}
	return s;
}

/* Give the attempt to the process: queue it and add its request to the
 * batch.  False when its input cannot be sent: it has ended. */
static bool
session_send(struct session *s, struct session_attempt *a)
{
	struct session_set *set = s->slot->set;
	char *cause = NULL;
	long expect;

	expect = set->config.protocol->encode(set->config.arg, &s->batch,
					      &a->spec, &cause);
	if (expect < 0) {
		attempt_end_later(set->loop, a->cb, a->arg,
				  &(struct attempt_end){
				      .exit_code = -1,
				      .error = ERROR_BAD_INPUT,
				      .message = cause,
				  });
		free(cause);
		free(a);
		return false;
	}
	a->session = s;
	a->expect = (size_t)expect;
	if (TAILQ_EMPTY(&s->unanswered))
		s->quiet_since = uv_now(set->loop);
	TAILQ_INSERT_TAIL(&s->unanswered, a, entry);
	s->owed++;
	if (!s->dirty) {
		s->dirty = true;
		TAILQ_INSERT_TAIL(&set->dirty, s, dirty_entry);
	}
	if (set->config.max_requests > 0 &&
	    ++s->sent >= set->config.max_requests)
		session_retire(s); /* EOF once the last answer is in */
	return true;
}

/* The slot has no process: start one for the attempts waiting there. */
static void
session_slot_resume(struct session_slot *slot)
{
	struct session_set *set = slot->set;
	struct session_attempt *a, *next;
	int error = 0;

	/* Cancelled attempts end first: a stopped run starts no process. */
	for (a = TAILQ_FIRST(&slot->waiting); a != NULL; a = next) {
		next = TAILQ_NEXT(a, entry);
		if (!a->cancelled)
			continue;
		TAILQ_REMOVE(&slot->waiting, a, entry);
		attempt_end_later(
		    set->loop, a->cb, a->arg,
		    &(struct attempt_end){.exit_code = -1, .lost = true});
		free(a);
	}
	if (TAILQ_EMPTY(&slot->waiting))
		return;
	slot->session = session_spawn(slot, &error);
	while ((a = TAILQ_FIRST(&slot->waiting)) != NULL) {
		if (slot->session == NULL) {
			TAILQ_REMOVE(&slot->waiting, a, entry);
			attempt_end_later(set->loop, a->cb, a->arg,
					  &(struct attempt_end){
					      .exit_code = -1,
					      .spawn_error = error,
					      .message = slot->argv[0],
					  });
			free(a);
		} else if (slot->session->state != SESSION_RUNNING) {
			break; /* --persist-max reached already: wait on */
		} else {
			TAILQ_REMOVE(&slot->waiting, a, entry);
			(void)session_send(slot->session, a);
		}
	}
	/* A retry or a lost attempt after the input ended: this process
	 * gets what waited, then EOF. */
	if (slot->session != NULL && (set->draining || set->one_batch))
		session_end_input(slot->session);
}

void *
session_submit(struct session_set *set, char *const *argv,
	       const struct attempt_spec *spec,
	       const struct attempt_callbacks *cb, void *arg)
{
	struct session_slot *slot = &set->slots[spec->slot_index];
	struct session_attempt *a = set->spare;

	assert(spec->slot_index < set->slot_count);
	if (a != NULL) {
		set->spare = a->next_spare;
		memset(a, 0, sizeof *a);
	} else {
		a = xcalloc(1, sizeof *a);
	}
	a->slot = slot;
	a->cb = cb;
	a->arg = arg;
	a->spec = *spec;
	slot->argv = argv;
	slot->number = spec->slot;
	if (slot->session != NULL && slot->session->state == SESSION_RUNNING) {
		return session_send(slot->session, a) ? a : &session_ended;
	}
	/* Wait for the slot's next process (start it now if there is none). */
	TAILQ_INSERT_TAIL(&slot->waiting, a, entry);
	if (slot->session == NULL)
		session_slot_resume(slot);
	return a;
}

/* Queue a signal request for an attempt the process holds. */
static void
session_request(struct session *s, struct session_attempt *a, int sig)
{
	struct session_set *set = s->slot->set;

	set->config.protocol->encode_signal(&s->batch, &a->spec, sig);
	log_debug("signal %d for seq %llu sent to slot %u", sig,
		  (unsigned long long)a->spec.seq, s->slot->index + 1);
	if (!s->dirty) {
		s->dirty = true;
		TAILQ_INSERT_TAIL(&set->dirty, s, dirty_entry);
	}
}

void
session_signal(void *attempt, int sig)
{
	struct session_attempt *a = attempt;
	struct session *s = a->session;

	if (s == NULL && !a->cancelled) {
		/* It waits for its slot's next process: it will not run, and
		 * the process on its way out is made to go. */
		a->cancelled = true;
		s = a->slot->session;
	}
	if (s == NULL || s->state == SESSION_EXITED)
		return;
	if (a->session != NULL && s->state != SESSION_FAILED &&
	    s->slot->set->config.protocol->encode_signal != NULL) {
		/* Where the task runs, not the process that relays it. */
		session_request(s, a, sig);
		return;
	}
	s->told_to_go = true;
	session_retire(s);
	process_signal(s->process, sig);
}

/* ---- the set ----------------------------------------------------------- */

/*
 * A process owes answers, has said nothing for SESSION_STALL_MS, and more
 * inputs wait for it (the set is not draining): it most likely holds its
 * answers in a buffer until its input fills one or ends (awk, grep,
 * python without -u), and would wait for ever.  Say so once, and give
 * every process of the set one batch and then EOF from now on.
 */
/* Is the process asleep reading a pipe (its stdin, most likely), rather
 * than busy with the answers it owes?  Yes when the system does not say. */
static bool
session_waits_for_input(const struct session *s)
{
	char path[64], wchan[64] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%ld/wchan",
		 (long)process_pid(s->process));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return true;
	n = read(fd, wchan, sizeof wchan - 1);
	close(fd);
	if (n <= 0)
		return true;
	wchan[n] = '\0';
	return strstr(wchan, "pipe") != NULL;
}

static void
session_stall_cb(uv_timer_t *timer)
{
	struct session_set *set = timer->data;
	uint64_t now = uv_now(set->loop);

	if (set->draining || !set->config.stall_check)
		return;
	for (unsigned i = 0; i < set->slot_count; i++) {
		struct session *s = set->slots[i].session;
		size_t owed = 0;
		struct session_attempt *a;

		if (s == NULL || s->state != SESSION_RUNNING ||
		    TAILQ_EMPTY(&s->unanswered) ||
		    now - s->quiet_since < SESSION_STALL_MS ||
		    !session_waits_for_input(s))
			continue;
		TAILQ_FOREACH(a, &s->unanswered, entry)
		owed++;
		if (!set->one_batch)
			log_warn(
			    "[slot %u] the worker has answered none of %zu "
			    "inputs for %ds: it may buffer its output "
			    "(try stdbuf -oL, python -u, mawk -W "
			    "interactive, grep --line-buffered); each "
			    "worker now gets %zu inputs, then EOF",
			    s->slot->number, owed, SESSION_STALL_MS / 1000,
			    owed);
		set->one_batch = true;
		session_end_input(s);
	}
}

void
session_set_drain(struct session_set *set)
{
	set->draining = true;
	for (unsigned i = 0; i < set->slot_count; i++)
		if (set->slots[i].session != NULL)
			session_end_input(set->slots[i].session);
}

struct session_set *
session_set_create(uv_loop_t *loop, const struct session_config *config,
		   unsigned slots)
{
	struct session_set *set = xcalloc(1, sizeof *set);
	int rc;

	set->loop = loop;
	set->config = *config;
	set->slot_count = slots;
	set->stride = config->stride;
	set->slots = xcalloc(slots, sizeof *set->slots);
	for (unsigned i = 0; i < slots; i++) {
		set->slots[i].set = set;
		set->slots[i].index = i;
		set->slots[i].number = i + 1;
		TAILQ_INIT(&set->slots[i].waiting);
	}
	TAILQ_INIT(&set->dirty);
	if ((rc = uv_prepare_init(loop, &set->flush)) != 0 ||
	    (rc = uv_prepare_start(&set->flush, session_flush_cb)) != 0)
		fatal("cannot watch the loop: %s", uv_strerror(rc));
	set->flush.data = set;
	uv_unref((uv_handle_t *)&set->flush);
	set->flush_open = true;
	if ((rc = uv_timer_init(loop, &set->stall)) != 0 ||
	    (rc = uv_timer_start(&set->stall, session_stall_cb,
				 SESSION_STALL_CHECK_MS,
				 SESSION_STALL_CHECK_MS)) != 0)
		fatal("cannot make a timer: %s", uv_strerror(rc));
	set->stall.data = set;
	uv_unref((uv_handle_t *)&set->stall);
	set->stall_open = true;
	return set;
}

void
session_set_retire(struct session_set *set)
{
	for (unsigned i = 0; i < set->slot_count; i++) {
		struct session *s = set->slots[i].session;

		if (s == NULL || s->state == SESSION_EXITED)
			continue;
		session_retire(s);
		/* Now, or once it has answered what it holds. */
		session_maybe_goodbye(s);
	}
}

void
session_set_shutdown(struct session_set *set)
{
	/* The flush will not run again: what waits for it (a last batch, a
	 * drain's EOF) goes now. */
	if (set->flush_open)
		session_flush_cb(&set->flush);
	session_set_retire(set);
	if (set->flush_open) {
		uv_close((uv_handle_t *)&set->flush, NULL);
		set->flush_open = false;
	}
	if (set->stall_open) {
		uv_close((uv_handle_t *)&set->stall, NULL);
		set->stall_open = false;
	}
}

void
session_set_stop(struct session_set *set, int sig)
{
	for (unsigned i = 0; i < set->slot_count; i++) {
		struct session *s = set->slots[i].session;

		if (s != NULL)
			(void)kill(-process_pid(s->process), sig);
	}
}

/*
 * The worker behind the set went away (a host down): each process is
 * killed, and nothing it still says counts, since what it reports now is
 * its own ending (a task it killed on EOF is no result): every attempt
 * outstanding is lost, none blamed.
 */
void
session_set_abandon(struct session_set *set)
{
	for (unsigned i = 0; i < set->slot_count; i++) {
		struct session *s = set->slots[i].session;

		if (s == NULL)
			continue;
		s->abandoned = true;
		s->deaf = true;
		if (s->state != SESSION_EXITED) {
			s->state = SESSION_FAILED;
			process_signal(s->process, SIGKILL);
		}
	}
}

void
session_set_free(struct session_set *set)
{
	if (set == NULL)
		return;
	while (set->spare != NULL) {
		struct session_attempt *a = set->spare;

		set->spare = a->next_spare;
		free(a);
	}
	free(set->slots);
	free(set);
}
