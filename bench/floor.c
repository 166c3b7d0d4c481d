/*
 * floor -- the cost floor for running many small tasks in parallel.
 *
 * Usage: floor -j J cmd [args...] < inputs     (or -jJ)
 *
 * For each line of stdin it runs `cmd args... LINE` directly with posix_spawnp
 * (no shell), at most J at a time, each child's stdin from /dev/null and its
 * stdout captured through its own pipe.  A single poll() loop drains all the
 * running children's pipes; when a pipe reaches EOF the child is reaped with
 * waitpid() and its whole captured output is written to our stdout in one
 * write (grouped per task, in completion order, not input order).
 *
 * Why: this is about the least work any tool can do per task while still
 * grouping output, so its time is the lower bound that cpmap (and xargs, GNU
 * parallel) are compared against in bench/spawn-bench.  It has no options,
 * no ordering, no retries, no stderr capture and minimal error handling; it
 * is a yardstick, not a tool.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct slot {
	pid_t pid;
	int fd;          /* read end of the child's stdout pipe, -1 if free */
	char *buf;
	size_t len, cap;
};

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("write");
		}
		p += w;
		n -= (size_t)w;
	}
}

int main(int argc, char **argv)
{
	/* Accept "-j J" and "-jJ". */
	int first = 0, j = 0;
	if (argc >= 3 && strncmp(argv[1], "-j", 2) == 0) {
		first = argv[1][2] ? 2 : 3;
		j = atoi(argv[1][2] ? argv[1] + 2 : argv[2]);
	}
	if (j < 1 || first >= argc) {
		fprintf(stderr, "usage: floor -j J cmd [args...] < inputs\n");
		return 2;
	}
	int nargs = argc - first, status = 0, running = 0;
	char **cargv = calloc((size_t)nargs + 2, sizeof *cargv);
	struct slot *s = calloc((size_t)j, sizeof *s);
	struct pollfd *pfd = calloc((size_t)j, sizeof *pfd);
	int *idx = calloc((size_t)j, sizeof *idx);
	if (!cargv || !s || !pfd || !idx)
		die("calloc");
	memcpy(cargv, argv + first, (size_t)nargs * sizeof *cargv);
	for (int i = 0; i < j; i++)
		s[i].fd = -1;

	char *line = NULL;
	size_t lcap = 0;
	int eof = 0;
	while (!eof || running > 0) {
		/* Fill free slots with new tasks. */
		for (int i = 0; i < j && !eof; i++) {
			if (s[i].fd >= 0)
				continue;
			ssize_t n = getline(&line, &lcap, stdin);
			if (n < 0) {
				eof = 1;
				break;
			}
			if (n > 0 && line[n - 1] == '\n')
				line[n - 1] = '\0';
			cargv[nargs] = line;

			int p[2];
			if (pipe2(p, O_CLOEXEC) < 0)
				die("pipe2");
			posix_spawn_file_actions_t fa;
			posix_spawn_file_actions_init(&fa);
			posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
			posix_spawn_file_actions_adddup2(&fa, p[1], 1);
			int err = posix_spawnp(&s[i].pid, cargv[0], &fa, NULL, cargv, environ);
			posix_spawn_file_actions_destroy(&fa);
			close(p[1]);
			if (err) {
				fprintf(stderr, "floor: spawn %s: %s\n", cargv[0], strerror(err));
				close(p[0]);
				status = 1;
				continue;
			}
			s[i].fd = p[0];
			s[i].len = 0;
			running++;
		}
		if (running == 0)
			continue;

		/* Wait for output or EOF on any running child's pipe. */
		int n = 0;
		for (int i = 0; i < j; i++)
			if (s[i].fd >= 0) {
				pfd[n] = (struct pollfd){ .fd = s[i].fd, .events = POLLIN };
				idx[n++] = i;
			}
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		for (int k = 0; k < n; k++) {
			if (!pfd[k].revents)
				continue;
			struct slot *t = &s[idx[k]];
			if (t->cap - t->len < 4096) {
				t->cap = t->cap ? 2 * t->cap : 8192;
				if (!(t->buf = realloc(t->buf, t->cap)))
					die("realloc");
			}
			ssize_t r = read(t->fd, t->buf + t->len, t->cap - t->len);
			if (r < 0 && errno == EINTR)
				continue;
			if (r > 0) {
				t->len += (size_t)r;
				continue;
			}
			/* EOF (or read error): task done; reap it and emit its output. */
			close(t->fd);
			t->fd = -1;
			running--;
			int ws;
			while (waitpid(t->pid, &ws, 0) < 0)
				if (errno != EINTR)
					die("waitpid");
			if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
				status = 1;
			write_all(1, t->buf, t->len);
		}
	}
	return status;
}
