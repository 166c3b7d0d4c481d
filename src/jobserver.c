/*
 * jobserver.c - GNU make's jobserver, as a client and as a server.
 *
 * Under make -jN, MAKEFLAGS names a jobserver: a pipe whose descriptors
 * make passed down (--jobserver-auth=R,W) or a named FIFO (make 4.4's
 * --jobserver-auth=fifo:PATH) holding one byte, a token, per job that may
 * run besides the ones already running.  Every job holds one token
 * implicitly, so cpmap's first task needs none; each task beyond it takes a
 * byte before it starts and writes the same byte back when it ends.  So
 * make -j4 with two recipes each running cpmap -j8 runs at most 4 tasks in
 * all.  Reading never blocks: the read side is watched with a uv_poll, and
 * read through a descriptor of our own with O_NONBLOCK (a new open of
 * /proc/self/fd/R), so that make's own descriptor keeps its flags.
 *
 * Tokens are never lost while cpmap lives: the ones held are given back as
 * tasks end (also when they fail, are killed by --timeout or by a signal),
 * when the run ends, from an atexit handler on fatal paths, and from
 * jobserver_emergency on the _exit path of a stalled stop.  A SIGKILLed
 * cpmap cannot give anything back: its tokens are lost to the jobserver
 * for the rest of make's run (make then runs fewer jobs at once, never
 * more), and a server's directory is left in $TMPDIR.
 *
 * As a server (--jobserver-slots N), cpmap makes a FIFO in a private
 * directory holding N - 1 tokens, as make -jN does, exports MAKEFLAGS with
 * --jobserver-auth=fifo:PATH to its tasks, and is its own first client:
 * its tasks and every nested make, cargo or cpmap share N.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"

/* What MAKEFLAGS (or --jobserver-slots) named, found at start. */
static int jobserver_read_fd = -1;  /* pipe style: make's descriptors */
static int jobserver_write_fd = -1; /* ... (or the FIFO's, opened) */
static char *jobserver_fifo;	    /* fifo style: its path */
static char *jobserver_dir;	    /* a server's private directory */
static bool jobserver_found;	    /* there is one to use */
/* A server's FIFO, open from its making to the end: a FIFO's bytes are
 * gone once nobody has it open. */
static int jobserver_server_fd = -1;

/* The tokens held now, each the byte it was read as.  Globals, so that
 * the exit paths can give them back. */
static char *jobserver_tokens;
static size_t jobserver_held, jobserver_room;
static int jobserver_return_fd = -1; /* where tokens go back */

struct jobserver {
	uv_loop_t *loop;
	void (*ready)(void *arg); /* a token came: try again */
	void *arg;
	int fd;		    /* ours to read, O_NONBLOCK */
	uv_poll_t poll;	    /* readable: a token may be there */
	bool polling;	    /* the poll is started */
	bool broken;	    /* reading failed: no more tokens taken */
	bool closed;	    /* stopped: the poll is closing */
	bool warned_return; /* a token could not be written back */
};

/* Give one token back; false if the write failed. */
static bool
jobserver_give(char token)
{
	for (int tries = 0; tries < 1000; tries++) {
		ssize_t n = write(jobserver_return_fd, &token, 1);

		if (n == 1)
			return true;
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			return false;
	}
	return false;
}

/* Async-signal-safe: give every token back, remove a server's FIFO. */
void
jobserver_emergency(void)
{
	while (jobserver_held > 0 && jobserver_return_fd >= 0)
		if (!jobserver_give(jobserver_tokens[--jobserver_held]))
			break;
	jobserver_held = 0;
	if (jobserver_dir != NULL && jobserver_fifo != NULL) {
		(void)unlink(jobserver_fifo);
		(void)rmdir(jobserver_dir);
	}
}

static void
jobserver_atexit(void)
{
	jobserver_emergency();
}

/*
 * Are r and w open, and the read and write ends of one pipe or FIFO?
 * make 4.4 checks that each is a pipe; the same pipe, and each open the
 * right way, keeps cpmap from reading someone else's pipe that happens to
 * be open on those numbers.
 */
static bool
jobserver_fds_ok(int r, int w)
{
	struct stat rs, ws;
	int rflags, wflags;

	if (r < 0 || w < 0 || (rflags = fcntl(r, F_GETFL)) < 0 ||
	    (wflags = fcntl(w, F_GETFL)) < 0 || fstat(r, &rs) < 0 ||
	    fstat(w, &ws) < 0)
		return false;
	return S_ISFIFO(rs.st_mode) && rs.st_dev == ws.st_dev &&
	       rs.st_ino == ws.st_ino && (rflags & O_ACCMODE) != O_WRONLY &&
	       (wflags & O_ACCMODE) != O_RDONLY;
}

/*
 * The value of the last --jobserver-auth= (or make 4.1's --jobserver-fds=)
 * among MAKEFLAGS's options (before " -- ", where variables begin), or
 * NULL; allocated.
 */
static char *
jobserver_auth(const char *flags)
{
	static const char *const names[] = {"--jobserver-auth=",
					    "--jobserver-fds="};
	const char *end = strstr(flags, " -- ");
	const char *found = NULL, *p = flags;

	if (end == NULL)
		end = flags + strlen(flags);
	while (p < end) {
		size_t len;

		p += strspn(p, " ");
		len = strcspn(p, " ");
		for (size_t i = 0; i < 2; i++)
			if (strncmp(p, names[i], strlen(names[i])) == 0 &&
			    p + len <= end)
				found = p + strlen(names[i]);
		p += len;
	}
	if (found == NULL)
		return NULL;
	return xasprintf("%.*s", (int)strcspn(found, " "), found);
}

/* Why MAKEFLAGS's jobserver is not used, told when a run starts (not by
 * cpmap --completion in a recipe, say), or NULL. */
static char *jobserver_problem;

void
jobserver_inherit(void)
{
	const char *flags = getenv("MAKEFLAGS");
	char *auth, *end;
	long r, w;

	if (flags == NULL || (auth = jobserver_auth(flags)) == NULL)
		return;
	if (strncmp(auth, "fifo:", 5) == 0) {
		struct stat st;

		if (stat(auth + 5, &st) == 0 && S_ISFIFO(st.st_mode)) {
			jobserver_fifo = xstrdup(auth + 5);
			jobserver_found = true;
		} else {
			jobserver_problem =
			    xasprintf("MAKEFLAGS names a jobserver FIFO %s "
				      "that is not one: running without it",
				      auth + 5);
		}
		free(auth);
		return;
	}
	errno = 0;
	r = strtol(auth, &end, 10);
	w = *end == ',' ? strtol(end + 1, &end, 10) : -1;
	if (errno != 0 || *end != '\0' || r < 0 || w < 0 || r > INT_MAX ||
	    w > INT_MAX) {
		jobserver_problem =
		    xasprintf("MAKEFLAGS: --jobserver-auth=%s is not R,W or "
			      "fifo:PATH: running without a jobserver",
			      auth);
	} else if (!jobserver_fds_ok((int)r, (int)w)) {
		/* make passes them only to recipes it knows run make. */
		jobserver_problem = xasprintf(
		    "MAKEFLAGS names a jobserver on descriptors %ld,%ld, "
		    "which are not the two ends of a pipe (mark the recipe "
		    "with '+'): "
		    "running without it",
		    r, w);
	} else {
		jobserver_read_fd = (int)r;
		jobserver_write_fd = (int)w;
		jobserver_found = true;
	}
	free(auth);
}

/* MAKEFLAGS without its -j and jobserver words, and with ours (before
 * " -- ", where variables begin). */
static char *
jobserver_makeflags(const char *old, const char *fifo)
{
	struct buf out = {0};
	const char *p = old != NULL ? old : "";
	const char *tail = strstr(p, " -- ");
	const char *end = tail != NULL ? tail : p + strlen(p);

	while (p < end) {
		size_t len;

		p += strspn(p, " ");
		len = strcspn(p, " ");
		if (p + len > end)
			len = (size_t)(end - p);
		if (len > 0 && strncmp(p, "-j", 2) != 0 &&
		    strncmp(p, "--jobserver-", 12) != 0) {
			if (out.len > 0)
				buf_append_char(&out, ' ');
			buf_append(&out, p, len);
		}
		p += len;
	}
	buf_append_str(&out, " -j --jobserver-auth=fifo:");
	buf_append_str(&out, fifo);
	if (tail != NULL)
		buf_append_str(&out, tail);
	return buf_steal(&out, NULL);
}

int
jobserver_serve(unsigned slots, char **cause)
{
	const char *tmp = getenv("TMPDIR");
	char *dir, *flags;
	int fd;

	if (tmp == NULL || tmp[0] != '/')
		tmp = "/tmp";
	dir = xasprintf("%s/cpmap-jobserver.XXXXXX", tmp);
	if (mkdtemp(dir) == NULL) {
		*cause = xasprintf("--jobserver-slots: cannot make a "
				   "directory in %s: %s",
				   tmp, strerror(errno));
		free(dir);
		return -1;
	}
	jobserver_dir = dir;
	jobserver_fifo = xasprintf("%s/fifo", dir);
	atexit(jobserver_atexit);
	if (mkfifo(jobserver_fifo, 0600) < 0 ||
	    (fd = open(jobserver_fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0) {
		*cause = xasprintf("--jobserver-slots: cannot make the FIFO "
				   "%s: %s",
				   jobserver_fifo, strerror(errno));
		return -1;
	}
	/* As make -jN: the first task holds the token that is not there. */
	for (unsigned i = 1; i < slots; i++)
		if (write(fd, "+", 1) != 1) {
			*cause = xasprintf("--jobserver-slots: cannot fill "
					   "the FIFO with %u tokens: %s",
					   slots - 1, strerror(errno));
			close(fd);
			return -1;
		}
	jobserver_server_fd = fd;
	flags = jobserver_makeflags(getenv("MAKEFLAGS"), jobserver_fifo);
	if (setenv("MAKEFLAGS", flags, 1) < 0)
		fatal("cannot set MAKEFLAGS: %s", strerror(errno));
	free(flags);
	/* A jobserver of our own replaces the one make passed, if any. */
	jobserver_read_fd = jobserver_write_fd = -1;
	jobserver_found = true;
	return 0;
}

void
jobserver_forget(void)
{
	jobserver_found = false;
}

bool
jobserver_pipe_fds(int *read_fd, int *write_fd)
{
	if (!jobserver_found || jobserver_read_fd < 0)
		return false;
	*read_fd = jobserver_read_fd;
	*write_fd = jobserver_write_fd;
	return true;
}

static void jobserver_poll_cb(uv_poll_t *handle, int status, int events);

/* Read one token if one is there: 1, 0 (none now), or -1 (broken). */
static int
jobserver_read(struct jobserver *js)
{
	char token;
	ssize_t n;

	do
		n = read(js->fd, &token, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1) {
		if (jobserver_held == jobserver_room) {
			jobserver_room =
			    jobserver_room ? 2 * jobserver_room : 16;
			jobserver_tokens =
			    xrealloc(jobserver_tokens, jobserver_room);
		}
		jobserver_tokens[jobserver_held++] = token;
		log_debug("jobserver: took a token, %zu held", jobserver_held);
		return 1;
	}
	if (n < 0 && errno == EAGAIN)
		return 0;
	log_warn("the jobserver cannot be read (%s): taking no more tokens",
		 n == 0 ? "its writers are gone" : strerror(errno));
	js->broken = true;
	return -1;
}

static void
jobserver_poll_cb(uv_poll_t *handle, int status, int events)
{
	struct jobserver *js = handle->data;

	(void)events;
	if (status < 0) {
		log_warn("the jobserver cannot be watched (%s): taking no "
			 "more tokens",
			 uv_strerror(status));
		js->broken = true;
	} else if (jobserver_read(js) == 0) {
		return; /* another client took it first */
	}
	uv_poll_stop(&js->poll);
	js->polling = false;
	js->ready(js->arg);
}

struct jobserver *
jobserver_start(uv_loop_t *loop, void (*ready)(void *arg), void *arg)
{
	struct jobserver *js;
	char path[64];
	int fd, rc;

	if (jobserver_problem != NULL) {
		log_warn("%s", jobserver_problem);
		free(jobserver_problem);
		jobserver_problem = NULL;
	}
	if (!jobserver_found)
		return NULL;
	if (jobserver_server_fd >= 0) {
		fd = jobserver_server_fd;
		jobserver_return_fd = fd;
	} else if (jobserver_fifo != NULL) {
		fd = open(jobserver_fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0) {
			log_warn("cannot open the jobserver FIFO %s (%s): "
				 "running without it",
				 jobserver_fifo, strerror(errno));
			return NULL;
		}
		jobserver_return_fd = fd;
	} else {
		/* A description of our own, so that O_NONBLOCK is ours. */
		snprintf(path, sizeof path, "/proc/self/fd/%d",
			 jobserver_read_fd);
		fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0) {
			/* No /proc: share make's, non-blocking (make 4.3
			 * and later take EAGAIN as another's token). */
			if ((fd = fcntl(jobserver_read_fd, F_DUPFD_CLOEXEC,
					3)) < 0 ||
			    fcntl(fd, F_SETFL,
				  fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
				fatal("cannot read the jobserver: %s",
				      strerror(errno));
		}
		jobserver_return_fd = jobserver_write_fd;
	}
	if (jobserver_dir == NULL)
		atexit(jobserver_atexit);
	js = xcalloc(1, sizeof *js);
	js->loop = loop;
	js->ready = ready;
	js->arg = arg;
	js->fd = fd;
	if ((rc = uv_poll_init(loop, &js->poll, fd)) != 0)
		fatal("cannot watch the jobserver: %s", uv_strerror(rc));
	js->poll.data = js;
	log_debug("jobserver: %s%s", jobserver_fifo ? "fifo " : "pipe",
		  jobserver_fifo ? jobserver_fifo : "");
	return js;
}

bool
jobserver_take(struct jobserver *js, unsigned running)
{
	int rc;

	if (js == NULL || js->broken || running == 0)
		return true;
	while (jobserver_held < running)
		if ((rc = jobserver_read(js)) <= 0)
			break;
	if (jobserver_held >= running || js->broken)
		return true;
	if (!js->polling && !js->closed) {
		if ((rc = uv_poll_start(&js->poll, UV_READABLE,
					jobserver_poll_cb)) != 0)
			fatal("cannot watch the jobserver: %s",
			      uv_strerror(rc));
		js->polling = true;
	}
	return false;
}

void
jobserver_settle(struct jobserver *js, unsigned running)
{
	size_t keep = running > 0 ? running - 1 : 0;

	if (js == NULL)
		return;
	while (jobserver_held > keep) {
		if (!jobserver_give(jobserver_tokens[jobserver_held - 1]) &&
		    !js->warned_return) {
			log_warn("a jobserver token could not be given back: "
				 "%s",
				 strerror(errno));
			js->warned_return = true;
		}
		jobserver_held--;
		log_debug("jobserver: gave a token back, %zu held",
			  jobserver_held);
	}
}

void
jobserver_stop(struct jobserver *js)
{
	if (js == NULL || js->closed)
		return;
	jobserver_settle(js, 0);
	js->closed = true;
	js->polling = false;
	uv_close((uv_handle_t *)&js->poll, NULL);
}

void
jobserver_free(struct jobserver *js)
{
	if (js == NULL)
		return;
	jobserver_emergency(); /* nothing is held by now */
	close(js->fd);
	if (jobserver_return_fd == js->fd)
		jobserver_return_fd = -1;
	if (jobserver_server_fd == js->fd)
		jobserver_server_fd = -1;
	free(js);
	free(jobserver_tokens);
	jobserver_tokens = NULL;
	jobserver_room = 0;
}
