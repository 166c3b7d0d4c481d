/*
 * throttle.c - --load and --memfree: start no task while the machine is
 * busy or short of memory, and give memory back when it runs out.
 *
 * The readings come from /proc (loadavg, stat and meminfo), or from the
 * directory $CPMAP_PROC names: a testing aid, so that tests can say what
 * the load and the memory are with files of their own (even FIFOs: each
 * reading opens and reads the file once, to its end).
 *
 * A task may start when the 1-minute load average and the number of
 * running processes (procs_running, not counting cpmap itself) are both
 * at most --load, and MemAvailable is at least --memfree.  A reading is
 * taken at most every THROTTLE_FRESH_MS as tasks start; while tasks wait
 * for the machine, a timer looks again every THROTTLE_PERIOD_MS.  With
 * --memfree the timer also runs while two or more tasks run: when
 * MemAvailable falls below half of --memfree, the pool stops its youngest
 * task and runs it again later, as GNU parallel does (the last task running
 * is never stopped, so a run always moves on).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"

#define THROTTLE_FRESH_MS 100  /* a reading younger than this is reused */
#define THROTTLE_PERIOD_MS 250 /* the timer's period while it runs */

struct throttle {
	uv_loop_t *loop;
	const struct options *opts;
	void (*ready)(void *arg); /* tasks may start again */
	void (*shed)(void *arg);  /* memory is short: stop the youngest */
	void *arg;
	const char *proc; /* /proc, or $CPMAP_PROC */
	uv_timer_t timer;
	bool timing;	    /* the timer is started */
	bool closed;	    /* stopped: the timer is closing */
	bool waiting;	    /* a task waits for the machine */
	unsigned running;   /* tasks running, as the pool said */
	uint64_t read_ns;   /* when the last reading was taken, or 0 */
	bool open;	    /* its verdict: may a task start? */
	uint64_t available; /* MemAvailable, bytes (UINT64_MAX: unknown) */
	bool warned[3];	    /* a file could not be read (said once) */
};

/* Read PROC/name (up to size - 1 bytes) into buf; false if it cannot be. */
static bool
throttle_file(struct throttle *t, int which, const char *name, char *buf,
	      size_t size)
{
	char path[4096];
	size_t len = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "%s/%s", t->proc, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		goto fail;
	while (len < size - 1 &&
	       ((n = read(fd, buf + len, size - 1 - len)) > 0 ||
		(n < 0 && errno == EINTR)))
		if (n > 0)
			len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	if (len > 0)
		return true;
	errno = EINVAL;
fail:
	if (!t->warned[which])
		log_warn("cannot read %s (%s): it does not hold tasks back",
			 path, strerror(errno));
	t->warned[which] = true;
	return false;
}

/* Take a reading: may a task start now? */
static bool
throttle_read(struct throttle *t)
{
	char buf[8192];
	bool open = true;

	t->read_ns = uv_hrtime();
	if (t->opts->load_max > 0) {
		const char *line;
		double load;
		long running;

		if (throttle_file(t, 0, "loadavg", buf, sizeof buf) &&
		    sscanf(buf, "%lf", &load) == 1 && load > t->opts->load_max)
			open = false;
		if (throttle_file(t, 1, "stat", buf, sizeof buf) &&
		    (line = strstr(buf, "procs_running ")) != NULL &&
		    (line == buf || line[-1] == '\n') &&
		    sscanf(line + 14, "%ld", &running) == 1 &&
		    (double)(running - 1) > t->opts->load_max)
			open = false;
		log_debug("throttle: load %s", open ? "fine" : "too high");
	}
	if (t->opts->memfree > 0) {
		const char *line;
		unsigned long long kb;

		t->available = UINT64_MAX;
		if (throttle_file(t, 2, "meminfo", buf, sizeof buf) &&
		    (line = strstr(buf, "MemAvailable:")) != NULL &&
		    sscanf(line + 13, "%llu", &kb) == 1)
			t->available = (uint64_t)kb * 1024;
		if (t->available < t->opts->memfree)
			open = false;
		log_debug("throttle: %llu bytes available",
			  (unsigned long long)t->available);
	}
	t->open = open;
	return open;
}

/* Run the timer while a task waits, or while memory must be watched. */
static void throttle_timer_cb(uv_timer_t *timer);

static void
throttle_arm(struct throttle *t)
{
	bool want = !t->closed &&
		    (t->waiting || (t->opts->memfree > 0 && t->running >= 2));

	if (want && !t->timing)
		uv_timer_start(&t->timer, throttle_timer_cb, THROTTLE_PERIOD_MS,
			       THROTTLE_PERIOD_MS);
	else if (!want && t->timing)
		uv_timer_stop(&t->timer);
	t->timing = want;
}

static void
throttle_timer_cb(uv_timer_t *timer)
{
	struct throttle *t = timer->data;
	bool open = throttle_read(t);

	if (t->opts->memfree > 0 && t->running >= 2 &&
	    t->available < t->opts->memfree / 2) {
		log_warn("%llu bytes of memory available, under half of "
			 "--memfree: stopping the youngest task to run it "
			 "again later",
			 (unsigned long long)t->available);
		t->shed(t->arg);
	}
	if (open && t->waiting) {
		t->waiting = false;
		throttle_arm(t);
		t->ready(t->arg);
		return;
	}
	throttle_arm(t);
}

struct throttle *
throttle_start(uv_loop_t *loop, const struct options *opts,
	       void (*ready)(void *arg), void (*shed)(void *arg), void *arg)
{
	struct throttle *t;
	const char *proc = getenv("CPMAP_PROC");
	int rc;

	if (opts->load_max <= 0 && opts->memfree == 0)
		return NULL;
	t = xcalloc(1, sizeof *t);
	t->loop = loop;
	t->opts = opts;
	t->ready = ready;
	t->shed = shed;
	t->arg = arg;
	t->proc = proc != NULL && proc[0] != '\0' ? proc : "/proc";
	t->available = UINT64_MAX;
	if ((rc = uv_timer_init(loop, &t->timer)) != 0)
		fatal("cannot make a timer: %s", uv_strerror(rc));
	t->timer.data = t;
	return t;
}

bool
throttle_open(struct throttle *t)
{
	if (t == NULL)
		return true;
	if (t->waiting)
		return false; /* the timer says when */
	if (t->read_ns == 0 ||
	    uv_hrtime() - t->read_ns >= THROTTLE_FRESH_MS * 1000000ull)
		(void)throttle_read(t);
	if (!t->open) {
		t->waiting = true;
		throttle_arm(t);
	}
	return t->open;
}

void
throttle_running(struct throttle *t, unsigned running)
{
	if (t == NULL)
		return;
	t->running = running;
	throttle_arm(t);
}

void
throttle_stop(struct throttle *t)
{
	if (t == NULL || t->closed)
		return;
	t->closed = true;
	t->waiting = false;
	t->timing = false;
	uv_close((uv_handle_t *)&t->timer, NULL);
}

void
throttle_free(struct throttle *t)
{
	free(t);
}
