/*
 * child.c - starting and reaping cpmap's child processes.
 *
 * Spawning is the cost that matters, so cpmap does not use uv_spawn: libuv
 * 1.44 forks the whole parent for each child, which costs more the more
 * output cpmap holds (../shared/notes/spawn-cost.md).  Instead a child is
 * started with vfork and exec: the parent's memory is shared, never copied,
 * and the parent waits only until the child has called exec.  Because the
 * memory is shared, the child reports a failed exec by storing errno in the
 * parent's variable before it exits, and the parent sees that error
 * synchronously: a command that cannot start becomes a result at once.
 *
 * Every child is the leader of a new process group, so that a signal to the
 * task reaches its own children too, and a terminal's ^C reaches only cpmap,
 * which then stops its tasks in order.
 *
 * Exits are learned from SIGCHLD, watched through libuv, and reaped with
 * waitpid(-1): that is why every child of cpmap must come from here.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
static struct child *child_table; /* the live children, unordered */
static size_t child_live, child_capacity;

/* The environment every child gets: ours, then the three CPMAP_ values. */
static char **child_environment;
static char child_seq_var[48], child_slot_var[48];
static struct buf child_host_var;
static size_t child_host_index; /* where child_host_var is in the array */

/* Signals whose disposition a child must not inherit from cpmap. */
static const int child_reset_signals[] = {SIGPIPE, SIGINT,  SIGTERM, SIGHUP,
					  SIGCHLD, SIGQUIT, SIGUSR1, SIGUSR2};

static void
child_sigchld_cb(uv_signal_t *handle, int signum)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < child_live; i++) {
			if (child_table[i].pid != pid)
				continue;
			struct child done = child_table[i];

			/* Remove before the callback: it may spawn again. */
			child_table[i] = child_table[--child_live];
			if (child_live == 0)
				uv_unref((uv_handle_t *)handle);
			done.exit(done.arg, status);
			break;
		}
	}
}

/* Copy environ without any CPMAP_ variable of ours, leaving room for ours. */
static void
child_build_environment(void)
{
	size_t n = 0, kept = 0;

	while (environ != NULL && environ[n] != NULL)
		n++;
	child_environment = xcalloc(n + 4, sizeof *child_environment);
	for (size_t i = 0; i < n; i++) {
		if (strncmp(environ[i], "CPMAP_SEQ=", 10) == 0 ||
		    strncmp(environ[i], "CPMAP_SLOT=", 11) == 0 ||
		    strncmp(environ[i], "CPMAP_HOST=", 11) == 0)
			continue;
		child_environment[kept++] = environ[i];
	}
	child_environment[kept++] = child_seq_var;
	child_environment[kept++] = child_slot_var;
	child_host_index = kept;
	child_environment[kept++] = child_host_var.data;
	child_environment[kept] = NULL;
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
 */
static void __attribute__((noreturn))
child_exec(const struct child_spec *spec, const sigset_t *mask,
	   volatile int *error)
{
	struct sigaction dfl;

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
	pid_t pid;
	int saved;

	if (spec->argv[0] == NULL || spec->argv[0][0] == '\0')
		return -ENOENT;
	snprintf(child_seq_var, sizeof child_seq_var, "CPMAP_SEQ=%llu",
		 (unsigned long long)spec->seq);
	snprintf(child_slot_var, sizeof child_slot_var, "CPMAP_SLOT=%u",
		 spec->slot);
	if (spec->host != NULL &&
	    strcmp(child_host_var.data + 11, spec->host) != 0) {
		child_host_var.len = 11;
		buf_append_str(&child_host_var, spec->host);
		child_environment[child_host_index] = child_host_var.data;
	}
	if (child_live == child_capacity) {
		child_capacity = child_capacity ? child_capacity * 2 : 16;
		child_table = xreallocarray(child_table, child_capacity,
					    sizeof *child_table);
	}

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
		child_exec(spec, &old,
			   &error); /* NOLINT(clang-analyzer-unix.Vfork) */
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
	if (child_live++ == 0)
		uv_ref((uv_handle_t *)&child_sigchld);
	child_table[child_live - 1] = (struct child){pid, exit_cb, arg};
	*pidp = pid;
	return 0;
}

void
child_signal_all(int sig)
{
	for (size_t i = 0; i < child_live; i++)
		(void)kill(-child_table[i].pid, sig);
}

size_t
child_count(void)
{
	return child_live;
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
