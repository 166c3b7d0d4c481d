/*
 * pool_signal.c - what signals, and stdout's reader leaving, do to a run.
 *
 * The first SIGINT or SIGTERM starts nothing new and sends SIGTERM to every
 * running task's process group (pool_stop); a second one sends SIGKILL.
 * SIGHUP starts nothing new and lets running tasks finish.  When stdout's
 * reader goes away, the run stops at once, quietly, as a filter does.
 *
 * The loop hears of these, except while a write to stdout waits for a
 * reader that does not read (io.c): then the loop cannot run, and
 * pool_stall_signal acts from the signal handler, through each kind's
 * async-signal-safe stop.
 */
#include <signal.h>
#include <stdbool.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"
#include "pool.h"

static const int pool_signals[3] = {SIGINT, SIGTERM, SIGHUP};

/* The pool whose workers a signal during a stalled write must stop. */
static struct pool *pool_running;

/*
 * A signal came while a write to stdout waits for a reader that does not
 * read, so the loop cannot run: act on it here, through each kind's stop,
 * touching no state.  The loop hears of it too once the write is done.
 */
static void
pool_stall_signal(int sig)
{
	static int first; /* the signal that stopped the run */
	bool end = sig == 0 || io_signal_count() >= 2;

	if (first == 0 && sig == 0 && pool_running != NULL &&
	    (pool_running->stop_signal == SIGINT ||
	     pool_running->stop_signal == SIGTERM))
		first = pool_running->stop_signal;
	if (first == 0)
		first = sig != 0 ? sig : SIGTERM;
	if (pool_running != NULL)
		roster_stop(pool_running->roster, end ? SIGKILL : SIGTERM);
	if (!end)
		return;
	/* Never silently: what the reader will not get is named; what it
	 * got is logged. */
	if (pool_running != NULL) {
		output_abandon(pool_running->out,
			       sig == 0 ? "standard output was not read "
					  "within --kill-after of the stop"
					: "stopped again while standard "
					  "output was not read");
		if (pool_running->joblog != NULL &&
		    !pool_running->joblog_failed)
			(void)joblog_flush(pool_running->joblog);
	}
	jobserver_emergency();
	_exit(128 + first);
}

/* Stdout's reader is gone: stop at once, quietly, as a filter does. */
static void
pool_reader_gone_cb(void *arg)
{
	struct pool *p = arg;

	if (p->stop_signal != SIGPIPE) {
		p->stop_signal = SIGPIPE;
		pool_stop(p, true, SIGKILL);
	}
	pool_fill(p);
}

static void
pool_signal_cb(uv_signal_t *handle, int signum)
{
	struct pool *p = handle->data;

	log_debug("signal %d", signum);
	if (signum == SIGHUP) {
		/* Finish what runs, start nothing new. */
		if (!p->stopping) {
			if (p->stop_signal == 0)
				p->stop_signal = SIGHUP;
			pool_stop(p, false, 0);
		}
	} else {
		p->signal_count++;
		if (p->stop_signal == 0 || p->stop_signal == SIGHUP)
			p->stop_signal = signum;
		pool_stop(p, true, p->signal_count > 1 ? SIGKILL : SIGTERM);
	}
	pool_fill(p);
}

void
pool_signals_start(struct pool *p)
{
	int rc;

	for (int i = 0; i < 3; i++) {
		if ((rc = uv_signal_init(p->loop, &p->signals[i])) != 0 ||
		    (rc = uv_signal_start(&p->signals[i], pool_signal_cb,
					  pool_signals[i])) != 0)
			fatal("cannot watch signals: %s", uv_strerror(rc));
		p->signals[i].data = p;
	}
	pool_running = p;
	io_watch_signals(pool_stall_signal);
	io_set_stall_limit(p->opts->kill_after_ms);
	output_watch_stdout(p->out, p->loop, pool_reader_gone_cb, p);
}

void
pool_signals_stop(struct pool *p)
{
	for (int i = 0; i < 3; i++)
		uv_close((uv_handle_t *)&p->signals[i], NULL);
	output_unwatch_stdout(p->out);
	/*
	 * Closing the handles put back the default actions.  A run stopped
	 * by a signal has only its last writes left (the --timeline
	 * picture): a second ^C, or the copy of the first that timeout(1)
	 * sends to its whole process group, must not kill it before them.
	 * Its exit status already says how it ended.
	 */
	if (p->stop_signal == SIGINT || p->stop_signal == SIGTERM ||
	    p->stop_signal == SIGHUP)
		for (int i = 0; i < 3; i++)
			(void)signal(pool_signals[i], SIG_IGN);
}

void
pool_signals_forget(const struct pool *p)
{
	if (pool_running == p)
		pool_running = NULL;
}
