/*
 * io.c - writing a whole buffer to a descriptor, without going deaf to
 * signals while the reader does not read.
 *
 * cpmap writes results to its stdout synchronously (a slow reader is
 * back-pressure).  A write to a pipe nobody reads would block in the kernel,
 * and since libuv's handlers restart system calls, a ^C would never reach
 * the loop.  So a write to a pipe or socket asks the kernel not to wait
 * (pwritev2 with RWF_NOWAIT: the file's own flags, shared with whoever else
 * holds it, are left alone) and, when it must wait, waits in poll() for the
 * descriptor or a signal.  INT and TERM get a second handler, chained in
 * front of libuv's, that also writes to a self-pipe; the stall hook then
 * acts on them at once (the pool stops its tasks) and the loop hears of
 * them as usual once the write is done.  Once a stop signal has come, a
 * stalled write waits no longer than the stall limit (--kill-after): the
 * hook is then told with signal 0, and ends the run.
 *
 * A record (--json) that must be whole or not started is written to a
 * pipe only once the pipe has room for all of it (io_write_record), so a
 * run ended during a stall never leaves half a record in the pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "cpmap.h"

static int io_signal_pipe[2] = {-1, -1};
static struct sigaction io_chained[2]; /* libuv's handlers, for INT, TERM */
static io_stall_signal_cb io_stall_hook;
static volatile sig_atomic_t io_signals; /* INT and TERM received so far */
static uint64_t io_stall_limit_ms;	 /* after a stop signal, 0: none */
static uint64_t io_stall_deadline_ms;	 /* monotonic, once a stall began */

/* Is fd a pipe or socket (where RWF_NOWAIT works and poll means waiting)? */
static bool
io_is_stream(int fd)
{
	static int known[3]; /* fds 0-2: 0 unknown, 1 stream, 2 other */
	struct stat st;

	if (fd >= 0 && fd <= 2 && known[fd] != 0)
		return known[fd] == 1;
	bool stream = fstat(fd, &st) == 0 &&
		      (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
	if (fd >= 0 && fd <= 2)
		known[fd] = stream ? 1 : 2;
	return stream;
}

static void
io_signal_handler(int sig)
{
	int saved = errno;
	unsigned char byte = (unsigned char)sig;
	const struct sigaction *next = &io_chained[sig == SIGTERM];

	io_signals++;
	(void)write(io_signal_pipe[1], &byte, 1);
	if (next->sa_handler != SIG_DFL && next->sa_handler != SIG_IGN)
		next->sa_handler(sig);
	errno = saved;
}

unsigned
io_signal_count(void)
{
	return (unsigned)io_signals;
}

void
io_watch_signals(io_stall_signal_cb hook)
{
	static const int sigs[2] = {SIGINT, SIGTERM};
	struct sigaction sa;

	if (pipe2(io_signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return; /* then a stalled write waits as before */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = io_signal_handler;
	sa.sa_flags = SA_RESTART;
	sigfillset(&sa.sa_mask);
	for (int i = 0; i < 2; i++)
		(void)sigaction(sigs[i], &sa, &io_chained[i]);
	io_stall_hook = hook;
}

void
io_set_stall_limit(uint64_t ms)
{
	io_stall_limit_ms = ms;
}

static uint64_t
io_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* How long a wait may last: for ever, or until the stall limit once a
 * stop signal has come. */
static int
io_wait_timeout(int most)
{
	uint64_t now;

	if (io_signals == 0 || io_stall_limit_ms == 0 || io_stall_hook == NULL)
		return most;
	now = io_now_ms();
	if (io_stall_deadline_ms == 0)
		io_stall_deadline_ms = now + io_stall_limit_ms;
	if (now >= io_stall_deadline_ms) {
		io_stall_hook(0); /* it ends the run */
		return most;
	}
	if (most >= 0 && (uint64_t)most < io_stall_deadline_ms - now)
		return most;
	return (int)(io_stall_deadline_ms - now);
}

/*
 * Wait until fd takes more (events POLLOUT) or ms pass (-1: no limit),
 * telling the hook of every INT or TERM.
 */
static void
io_wait(int fd, short events, int ms)
{
	struct pollfd pfd[2] = {{.fd = fd, .events = events},
				{.fd = io_signal_pipe[0], .events = POLLIN}};
	unsigned char sig;
	uint64_t until = ms >= 0 ? io_now_ms() + (uint64_t)ms : 0;

	for (;;) {
		int timeout = ms, rc;

		if (ms >= 0) {
			uint64_t now = io_now_ms();

			if (now >= until)
				return;
			timeout = (int)(until - now);
		}
		rc = poll(pfd, io_signal_pipe[0] >= 0 ? 2 : 1,
			  io_wait_timeout(timeout));
		if (rc < 0 && errno != EINTR)
			return;
		while (io_signal_pipe[0] >= 0 &&
		       read(io_signal_pipe[0], &sig, 1) == 1)
			if (io_stall_hook != NULL)
				io_stall_hook(sig);
		if (rc > 0 && pfd[0].revents != 0) {
			/* The reader reads: the stall limit starts again. */
			io_stall_deadline_ms = 0;
			return;
		}
	}
}

static void
io_wait_writable(int fd)
{
	io_wait(fd, POLLOUT, -1);
}

/*
 * Could a write of len bytes to the pipe fd go in whole now?  The pipe
 * holds pages: the bytes in it fill at most ceil(unread / page) + 1 of
 * them (the first partly read), and len needs at most ceil(len / page)
 * more.  -1 when it never could: the pipe is too small and cannot grow.
 */
static int
io_pipe_has_room(int fd, size_t len)
{
	static long page;
	int size = fcntl(fd, F_GETPIPE_SZ), unread = 0;
	size_t need, used;

	if (page <= 0 && (page = sysconf(_SC_PAGESIZE)) <= 0)
		page = 4096;
	need = (len + (size_t)page - 1) / (size_t)page;
	if (size <= 0 || ioctl(fd, FIONREAD, &unread) < 0 || unread < 0)
		return -1;
	if (need + 1 > (size_t)size / (size_t)page) {
		/* Grow it (as far as pipe-max-size allows), or give up. */
		size_t want = (need + 2) * (size_t)page;

		if (want > INT_MAX ||
		    (size = fcntl(fd, F_SETPIPE_SZ, (int)want)) < 0 ||
		    (size_t)size < want)
			return -1;
	}
	used = ((size_t)unread + (size_t)page - 1) / (size_t)page + 1;
	return used + need <= (size_t)size / (size_t)page;
}

int
io_write_record(int fd, const void *data, size_t len)
{
	int room;

	if (!io_is_stream(fd) || len == 0)
		return io_write_all(fd, data, len);
	while ((room = io_pipe_has_room(fd, len)) == 0) {
		int unread = 0;

		/* Full: wait for the reader; partly full: look again soon. */
		if (ioctl(fd, FIONREAD, &unread) == 0 &&
		    unread >= fcntl(fd, F_GETPIPE_SZ))
			io_wait_writable(fd);
		else
			io_wait(-1, 0, 5);
	}
	return io_write_all(fd, data, len);
}

int
io_write_all(int fd, const void *data, size_t len)
{
	size_t done;

	return io_write_counted(fd, data, len, &done);
}

int
io_write_counted(int fd, const void *data, size_t len, size_t *done)
{
	const char *p = data;
	bool stream = io_is_stream(fd), nowait = stream;

	*done = 0;

	while (len > 0) {
		struct iovec iov = {.iov_base = (void *)(uintptr_t)p,
				    .iov_len = len};
		ssize_t n;

		if (nowait) {
			n = pwritev2(fd, &iov, 1, -1, RWF_NOWAIT);
		} else if (stream) {
			/*
			 * No RWF_NOWAIT here (a named FIFO, an old kernel):
			 * wait for room, then write no more than a pipe
			 * takes without blocking once it has room.
			 */
			io_wait_writable(fd);
			n = write(fd, p, len < PIPE_BUF ? len : PIPE_BUF);
		} else {
			n = write(fd, p, len);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (nowait &&
			    (errno == EOPNOTSUPP || errno == EINVAL)) {
				nowait = false;
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				io_wait_writable(fd);
				continue;
			}
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		*done += (size_t)n;
	}
	return 0;
}

int
io_read_file(const char *path, struct buf *out)
{
	struct stat st;
	char block[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), error = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		error = -errno;
	} else if (S_ISDIR(st.st_mode)) {
		error = -EISDIR;
	} else {
		while ((n = read(fd, block, sizeof block)) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				error = -errno;
				break;
			}
			buf_append(out, block, (size_t)n);
		}
	}
	(void)close(fd);
	return error;
}

int
io_make_parents(const char *path)
{
	char *copy = xstrdup(path);
	int error = 0;

	for (char *slash = strchr(copy + 1, '/'); slash != NULL;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (slash[-1] != '/' && mkdir(copy, 0777) != 0 &&
		    errno != EEXIST) {
			error = -errno;
			break;
		}
		*slash = '/';
	}
	free(copy);
	return error;
}

void
io_remove_parents(const char *path)
{
	char *copy = xstrdup(path), *slash;

	if (copy[0] != '/')
		while ((slash = strrchr(copy, '/')) != NULL) {
			*slash = '\0';
			if (copy[0] == '\0' || rmdir(copy) != 0)
				break;
		}
	free(copy);
}
