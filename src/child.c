/*
 * child.c - starting and reaping cpmap's child processes.
 *
 * Spawning is the cost that matters, so cpmap does not use uv_spawn: libuv
 * 1.44 forks the whole parent for each child, which costs more the more
 * output cpmap holds (../shared/notes/spawn-cost.md, summarised in
 * bench/README: a vfork spawn costs the same whatever the parent holds).
 * Instead a child is started with vfork and exec: the parent's memory is
 * shared, never copied, and the parent waits only until the child has called
 * exec.  Because the memory is shared, the child reports a failed exec by
 * storing errno in the parent's variable before it exits, and the parent sees
 * that error synchronously: a command that cannot start becomes a result at
 * once.
 *
 * Every child is the leader of a new process group, so that a signal to the
 * task reaches its own children too, and a terminal's ^C reaches only cpmap,
 * which then stops its tasks in order.
 *
 * Exits are learned from SIGCHLD, watched through libuv, and reaped with
 * waitpid(-1): that is why every child of cpmap must come from here.
 *
 * A process (the second half) is a child with pipes: real pipes from pipe2
 * opened into libuv (not libuv's socketpairs: a task may expect
 * `echo > /dev/stdout` to work).  It is over only when the child has exited
 * *and* every handle is closed; the two arrive in either order, and a
 * grandchild may hold a pipe open long after the child exited, so after the
 * exit a grace timer kills the process group and closes the pipes.  The
 * local worker's attempts and the long-lived sessions both use it, and
 * differ only in the callbacks they pass (tmux's job.c is the model).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"

struct child {
	pid_t pid;
	child_exit_cb exit;
	void *arg;
};

static uv_signal_t child_sigchld;
static bool child_watching;
/* The live children, by pid: open addressing with linear probing, so that
 * an exit costs the same however many children there are (pid 0: empty). */
static struct child *child_table;
static size_t child_live, child_capacity; /* capacity: a power of two */

/* The environment every child gets: ours, then the three CPMAP_ values
 * and GNU parallel's names for two of them (PARALLEL_SEQ, _JOBSLOT). */
static char **child_environment;
static char child_seq_var[48], child_slot_var[48];
static char child_parallel_seq_var[48], child_parallel_slot_var[48];
static struct buf child_host_var;
static size_t child_host_index; /* where child_host_var is in the array */

/* --nice, and a jobserver's pipe, which tasks inherit (child_configure). */
static bool child_set_nice;
static int child_nice;
static int child_keep_fds[2] = {-1, -1};

/* Signals whose disposition a child must not inherit from cpmap. */
static const int child_reset_signals[] = {SIGPIPE, SIGINT,  SIGTERM, SIGHUP,
					  SIGCHLD, SIGQUIT, SIGUSR1, SIGUSR2};

static size_t
child_home(pid_t pid)
{
	return ((size_t)pid * 2654435761u) & (child_capacity - 1);
}

static void
child_insert(const struct child *c)
{
	size_t i = child_home(c->pid);

	while (child_table[i].pid != 0)
		i = (i + 1) & (child_capacity - 1);
	child_table[i] = *c;
	child_live++;
}

/* Room for one more, at most half full. */
static void
child_reserve(void)
{
	struct child *old = child_table;
	size_t old_capacity = child_capacity;

	if ((child_live + 1) * 2 <= child_capacity)
		return;
	child_capacity = child_capacity ? child_capacity * 2 : 64;
	child_table = xcalloc(child_capacity, sizeof *child_table);
	child_live = 0;
	for (size_t i = 0; i < old_capacity; i++)
		if (old[i].pid != 0)
			child_insert(&old[i]);
	free(old);
}

/* Take the child out of the table; false if it is not ours. */
static bool
child_take(pid_t pid, struct child *out)
{
	size_t mask = child_capacity - 1, i, j;

	if (child_capacity == 0)
		return false;
	for (i = child_home(pid); child_table[i].pid != pid; i = (i + 1) & mask)
		if (child_table[i].pid == 0)
			return false;
	*out = child_table[i];
	/* Shift back the entries after it that would not be found. */
	for (j = (i + 1) & mask; child_table[j].pid != 0; j = (j + 1) & mask) {
		size_t k = child_home(child_table[j].pid);

		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		child_table[i] = child_table[j];
		i = j;
	}
	child_table[i].pid = 0;
	child_live--;
	return true;
}

static void
child_sigchld_cb(uv_signal_t *handle, int signum)
{
	struct child done;
	int status;
	pid_t pid;

	(void)signum;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		/* Removed before the callback: it may spawn again. */
		if (!child_take(pid, &done))
			continue;
		if (child_live == 0)
			uv_unref((uv_handle_t *)handle);
		done.exit(done.arg, status);
	}
}

/* Copy environ without any CPMAP_ variable of ours, leaving room for ours. */
static void
child_build_environment(void)
{
	size_t n = 0, kept = 0;

	while (environ != NULL && environ[n] != NULL)
		n++;
	child_environment = xcalloc(n + 6, sizeof *child_environment);
	for (size_t i = 0; i < n; i++) {
		if (strncmp(environ[i], "CPMAP_SEQ=", 10) == 0 ||
		    strncmp(environ[i], "CPMAP_SLOT=", 11) == 0 ||
		    strncmp(environ[i], "CPMAP_HOST=", 11) == 0 ||
		    strncmp(environ[i], "PARALLEL_SEQ=", 13) == 0 ||
		    strncmp(environ[i], "PARALLEL_JOBSLOT=", 17) == 0)
			continue;
		child_environment[kept++] = environ[i];
	}
	child_environment[kept++] = child_seq_var;
	child_environment[kept++] = child_slot_var;
	child_environment[kept++] = child_parallel_seq_var;
	child_environment[kept++] = child_parallel_slot_var;
	child_host_index = kept;
	child_environment[kept++] = child_host_var.data;
	child_environment[kept] = NULL;
}

void
child_configure(bool set_nice, int nice, int a, int b)
{
	child_set_nice = set_nice;
	child_nice = nice;
	child_keep_fds[0] = a;
	child_keep_fds[1] = b;
}

void
child_refresh_environment(void)
{
	free(child_environment);
	child_build_environment();
}

int
child_init(uv_loop_t *loop)
{
	int rc;

	buf_append_str(&child_host_var, "CPMAP_HOST=local");
	child_build_environment();
	if ((rc = uv_signal_init(loop, &child_sigchld)) != 0)
		return rc;
	if ((rc = uv_signal_start(&child_sigchld, child_sigchld_cb, SIGCHLD)) !=
	    0)
		return rc;
	/* Only a live child keeps the loop running. */
	uv_unref((uv_handle_t *)&child_sigchld);
	child_watching = true;
	return 0;
}

/*
 * The child's side of vfork: it shares the parent's memory, so it changes
 * nothing but *error and calls only async-signal-safe functions.
 *
 * It dies with cpmap (PR_SET_PDEATHSIG), so that a SIGKILLed cpmap leaves
 * no task or worker behind for a --resume to race.  If cpmap died before
 * the request was made, the child has been reparented already: getppid()
 * is no longer cpmap, and it goes at once.
 */
static void __attribute__((noreturn))
child_exec(const struct child_spec *spec, const sigset_t *mask,
	   volatile int *error, pid_t parent)
{
	struct sigaction dfl;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(127);

	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (size_t i = 0;
	     i < sizeof child_reset_signals / sizeof child_reset_signals[0];
	     i++)
		(void)sigaction(child_reset_signals[i], &dfl, NULL);
	if (setpgid(0, 0) < 0 || dup2(spec->stdin_fd, STDIN_FILENO) < 0 ||
	    dup2(spec->stdout_fd, STDOUT_FILENO) < 0 ||
	    dup2(spec->stderr_fd, STDERR_FILENO) < 0) {
		*error = errno;
		_exit(127);
	}
	/* A niceness below ours needs privilege: without it, keep ours. */
	if (child_set_nice)
		(void)setpriority(PRIO_PROCESS, 0, child_nice);
	for (int i = 0; i < 2; i++)
		if (child_keep_fds[i] > STDERR_FILENO)
			(void)fcntl(child_keep_fds[i], F_SETFD, 0);
	(void)sigprocmask(SIG_SETMASK, mask, NULL);
	execvpe(spec->argv[0], spec->argv, child_environment);
	*error = errno;
	_exit(127);
}

int
child_spawn(const struct child_spec *spec, child_exit_cb exit_cb, void *arg,
	    pid_t *pidp)
{
	volatile int error = 0;
	sigset_t all, old;
	pid_t pid, parent = getpid();
	int saved;

	if (spec->argv[0] == NULL || spec->argv[0][0] == '\0')
		return -ENOENT;
	snprintf(child_seq_var, sizeof child_seq_var, "CPMAP_SEQ=%llu",
		 (unsigned long long)spec->seq);
	snprintf(child_slot_var, sizeof child_slot_var, "CPMAP_SLOT=%u",
		 spec->slot);
	snprintf(child_parallel_seq_var, sizeof child_parallel_seq_var,
		 "PARALLEL_SEQ=%llu", (unsigned long long)spec->seq);
	snprintf(child_parallel_slot_var, sizeof child_parallel_slot_var,
		 "PARALLEL_JOBSLOT=%u", spec->slot);
	if (spec->host != NULL &&
	    strcmp(child_host_var.data + 11, spec->host) != 0) {
		child_host_var.len = 11;
		buf_append_str(&child_host_var, spec->host);
		child_environment[child_host_index] = child_host_var.data;
	}
	child_reserve();

	/*
	 * With every signal blocked, no handler of cpmap's can run in the
	 * child (it would write to libuv's signal pipe from the wrong
	 * process) before the child has reset the dispositions.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	/* The child calls only async-signal-safe functions before exec. */
	pid = vfork(); /* NOLINT(clang-analyzer-security.insecureAPI.vfork) */
	if (pid == 0)
		child_exec(spec, &old, &error,
			   parent); /* NOLINT(clang-analyzer-unix.Vfork) */
	saved = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		return -saved;
	if (error != 0) {
		/* The child has exited already; reap it before SIGCHLD does. */
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return -error;
	}
	if (child_live == 0)
		uv_ref((uv_handle_t *)&child_sigchld);
	child_insert(&(struct child){pid, exit_cb, arg});
	*pidp = pid;
	return 0;
}

void
child_signal_all(int sig)
{
	for (size_t i = 0; i < child_capacity; i++)
		if (child_table[i].pid != 0)
			(void)kill(-child_table[i].pid, sig);
}

void
child_stop(void)
{
	if (child_watching) {
		uv_close((uv_handle_t *)&child_sigchld, NULL);
		child_watching = false;
	}
	free(child_table);
	child_table = NULL;
	child_live = child_capacity = 0;
	free(child_environment);
	child_environment = NULL;
	buf_free(&child_host_var);
}

/* ---- a child with pipes ------------------------------------------------ */

#define PROCESS_EOF_GRACE_MS                                                   \
	2000 /* after exit, how long a pipe may stay open */

enum process_state {
	PROCESS_RUNNING, /* the child lives */
	PROCESS_EXITED,	 /* it exited; pipes or the timer are closing */
	PROCESS_CLOSED,	 /* every handle closed: closed() is due */
};

struct process {
	enum process_state state;
	uv_loop_t *loop;
	pid_t pid;
	int wait_status;
	const struct process_callbacks *cb;
	void *arg;
	uv_pipe_t pipes[3];    /* stdin, stdout, stderr, by descriptor */
	bool open[3];	       /* pipes[i] is open and not yet closing */
	uv_timer_t timer;      /* the EOF grace, or the quit grace */
	bool timer_open;       /* made, and not yet closing */
	bool term_sent;	       /* the quit grace: SIGTERM sent, SIGKILL next */
	uint64_t kill_ms;      /* the quit grace: from SIGTERM to SIGKILL */
	unsigned open_handles; /* handles whose close callback is due */
	unsigned writes;       /* writes to stdin in flight */
	bool eof_after_writes; /* close stdin once they are done */
};

struct process_write {
	uv_write_t req;
	struct process *process;
	char *owned; /* freed once written, or NULL */
};

static int process_devnull = -1;

static void
process_maybe_closed(struct process *p)
{
	if (p->state != PROCESS_EXITED || p->open_handles > 0)
		return;
	p->state = PROCESS_CLOSED;
	p->cb->closed(p->arg, p->wait_status);
	free(p);
}

static void
process_close_cb(uv_handle_t *handle)
{
	struct process *p = handle->data;

	assert(p->open_handles > 0);
	p->open_handles--;
	process_maybe_closed(p);
}

static void
process_close_pipe(struct process *p, int fd)
{
	if (!p->open[fd])
		return;
	p->open[fd] = false;
	uv_close((uv_handle_t *)&p->pipes[fd], process_close_cb);
}

/* Exited, and its output read to the end: the timer has nothing to do. */
static void
process_maybe_done(struct process *p)
{
	if (p->state == PROCESS_EXITED && !p->open[1] && !p->open[2] &&
	    p->timer_open) {
		p->timer_open = false;
		uv_close((uv_handle_t *)&p->timer, process_close_cb);
	}
}

void
process_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	/*
	 * libuv calls read_cb right after each read, before the next alloc,
	 * so one buffer serves every pipe; the reader copies what it keeps.
	 */
	static char block[65536];

	(void)handle;
	(void)suggested;
	buf->base = block;
	buf->len = sizeof block;
}

static void
process_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct process *p = stream->data;
	int fd = stream == (uv_stream_t *)&p->pipes[1] ? 1 : 2;

	if (nread > 0) {
		p->cb->read(p->arg, fd, buf->base, (size_t)nread);
		return;
	}
	if (nread == 0)
		return; /* EAGAIN */
	/* EOF, or an error that ends the stream all the same. */
	process_close_pipe(p, fd);
	p->cb->read(p->arg, fd, NULL, 0);
	process_maybe_done(p);
}

static void
process_timer_cb(uv_timer_t *timer)
{
	struct process *p = timer->data;

	if (p->state == PROCESS_RUNNING) {
		/* The quit grace is over: ask it to go, then make it. */
		(void)kill(-p->pid, p->term_sent ? SIGKILL : SIGTERM);
		if (!p->term_sent)
			uv_timer_start(&p->timer, process_timer_cb, p->kill_ms,
				       0);
		p->term_sent = true;
		return;
	}
	/* A grandchild holds the output open: stop it and stop waiting. */
	(void)kill(-p->pid, SIGKILL);
	process_close_pipe(p, 1);
	process_close_pipe(p, 2);
	process_maybe_done(p);
}

/* The timer is made only when needed: most tasks never need it. */
static void
process_timer(struct process *p)
{
	int rc;

	if (p->timer_open)
		return;
	if ((rc = uv_timer_init(p->loop, &p->timer)) != 0)
		fatal("cannot make a timer: %s", uv_strerror(rc));
	p->timer.data = p;
	p->timer_open = true;
	p->open_handles++;
}

static void
process_exit_cb(void *arg, int wait_status)
{
	struct process *p = arg;

	assert(p->state == PROCESS_RUNNING);
	p->state = PROCESS_EXITED;
	p->wait_status = wait_status;
	/* Nobody will read what is left to write to its stdin. */
	process_close_pipe(p, 0);
	if (p->cb->exit != NULL)
		p->cb->exit(p->arg, wait_status);
	if (p->open[1] || p->open[2]) {
		process_timer(p);
		uv_timer_start(&p->timer, process_timer_cb,
			       PROCESS_EOF_GRACE_MS, 0);
	}
	process_maybe_done(p);
	process_maybe_closed(p);
}

static void
process_open_pipe(uv_loop_t *loop, struct process *p, int fd, int ours)
{
	int rc;

	if ((rc = uv_pipe_init(loop, &p->pipes[fd], 0)) != 0 ||
	    (rc = uv_pipe_open(&p->pipes[fd], ours)) != 0)
		fatal("cannot watch a pipe: %s", uv_strerror(rc));
	p->pipes[fd].data = p;
	p->open[fd] = true;
	p->open_handles++;
	if (fd > 0 &&
	    (rc = uv_read_start((uv_stream_t *)&p->pipes[fd], process_alloc_cb,
				process_read_cb)) != 0)
		fatal("cannot read a pipe: %s", uv_strerror(rc));
}

int
process_start(uv_loop_t *loop, const struct process_spec *spec,
	      const struct process_callbacks *cb, void *arg,
	      struct process **out)
{
	int fds[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
	struct child_spec child;
	struct process *p;
	int rc = 0;

	if (process_devnull < 0 &&
	    (process_devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	if (spec->stdin_pipe && pipe2(fds[0], O_CLOEXEC) < 0)
		rc = -errno;
	if (rc == 0 && spec->capture &&
	    (pipe2(fds[1], O_CLOEXEC) < 0 || pipe2(fds[2], O_CLOEXEC) < 0))
		rc = -errno;
	p = xcalloc(1, sizeof *p);
	if (rc == 0) {
		child = (struct child_spec){
		    .argv = spec->argv,
		    .stdin_fd = spec->stdin_fd > 0 ? spec->stdin_fd
				: spec->stdin_pipe ? fds[0][0]
						   : process_devnull,
		    .stdout_fd = spec->capture ? fds[1][1] : STDOUT_FILENO,
		    .stderr_fd = spec->capture ? fds[2][1] : STDERR_FILENO,
		    .seq = spec->seq,
		    .slot = spec->slot,
		    .host = spec->host,
		};
		rc = child_spawn(&child, process_exit_cb, p, &p->pid);
	}
	/* The child's ends are the child's now (or nobody's). */
	if (spec->stdin_fd > 0)
		close(spec->stdin_fd);
	for (int *fd = (int[]){fds[0][0], fds[1][1], fds[2][1]}, i = 0; i < 3;
	     i++)
		if (fd[i] >= 0)
			close(fd[i]);
	if (rc < 0) {
		for (int *fd = (int[]){fds[0][1], fds[1][0], fds[2][0]}, i = 0;
		     i < 3; i++)
			if (fd[i] >= 0)
				close(fd[i]);
		free(p);
		return rc;
	}
	p->state = PROCESS_RUNNING;
	p->loop = loop;
	p->cb = cb;
	p->arg = arg;
	if (spec->stdin_pipe)
		process_open_pipe(loop, p, 0, fds[0][1]);
	if (spec->capture) {
		process_open_pipe(loop, p, 1, fds[1][0]);
		process_open_pipe(loop, p, 2, fds[2][0]);
	}
	log_debug("spawn pid %ld: %s (seq %llu, slot %u)", (long)p->pid,
		  spec->argv[0], (unsigned long long)spec->seq, spec->slot);
	*out = p;
	return 0;
}

static void
process_write_cb(uv_write_t *req, int status)
{
	struct process_write *w = (struct process_write *)req;
	struct process *p = w->process;

	assert(p->writes > 0);
	p->writes--;
	free(w->owned);
	free(w);
	if (p->writes == 0 && p->eof_after_writes)
		process_close_pipe(p, 0);
	if (p->cb->written != NULL)
		p->cb->written(p->arg, status == UV_ECANCELED ? 0 : status);
}

void
process_write(struct process *p, const char *data, size_t len, bool owned)
{
	struct process_write *w;
	uv_buf_t buf;
	int rc;

	if (!p->open[0]) {
		if (owned)
			free((char *)(uintptr_t)data);
		return;
	}
	w = xcalloc(1, sizeof *w);
	w->process = p;
	w->owned = owned ? (char *)(uintptr_t)data : NULL;
	buf = uv_buf_init((char *)(uintptr_t)data, (unsigned)len);
	p->writes++;
	if ((rc = uv_write(&w->req, (uv_stream_t *)&p->pipes[0], &buf, 1,
			   process_write_cb)) != 0) {
		/* The pipe is broken: as if the write had failed. */
		p->writes--;
		free(w->owned);
		free(w);
		process_close_pipe(p, 0);
		if (p->cb->written != NULL)
			p->cb->written(p->arg, rc);
	}
}

unsigned
process_writes(const struct process *p)
{
	return p->writes;
}

void
process_close_stdin(struct process *p)
{
	/* Closing now would cancel what is still being written. */
	if (p->writes > 0)
		p->eof_after_writes = true;
	else
		process_close_pipe(p, 0);
}

void
process_quit_after(struct process *p, uint64_t ms, uint64_t kill_ms)
{
	if (p->state != PROCESS_RUNNING)
		return;
	process_timer(p);
	p->kill_ms = kill_ms;
	uv_timer_start(&p->timer, process_timer_cb, ms, 0);
}

void
process_signal(struct process *p, int sig)
{
	if (p->state == PROCESS_RUNNING ||
	    (p->state == PROCESS_EXITED && (p->open[1] || p->open[2])))
		(void)kill(-p->pid, sig);
}

bool
process_exited(const struct process *p)
{
	return p->state != PROCESS_RUNNING;
}

pid_t
process_pid(const struct process *p)
{
	return p->pid;
}
