/*
 * pool.h - the scheduler's own state, for pool.c and pool_signal.c only.
 *
 * The rest of the program sees the pool through cpmap.h.  The signals are
 * a concern of their own (pool_signal.c) but act on the run's state as
 * pool.c does: whether it is stopping, the signal that stopped it, and the
 * workers, output and joblog to stop or save when the loop cannot run.
 */
#ifndef CPMAP_POOL_H
#define CPMAP_POOL_H

TAILQ_HEAD(task_queue, task);

struct pool {
	uv_loop_t *loop;
	const struct options *opts;
	struct template *tmpl;
	struct input_reader *reader;
	struct output *out;
	struct roster *roster;	   /* the workers and their places */
	unsigned running;	   /* attempts in flight */
	struct gather *gather;	   /* the inputs of the next task */
	struct task_queue ready;   /* retries and requeues due now */
	struct task_queue waiting; /* retries waiting for their delay */
	uint64_t next_seq;
	uint64_t failed, succeeded, skipped;
	bool drained;	 /* the workers know no more input will come */
	bool stopping;	 /* start nothing new */
	bool finished;	 /* every handle of ours is closed */
	int stop_signal; /* the signal that stopped us, or 0 */
	unsigned signal_count;
	bool left_undone;   /* inputs were left unread or unrun */
	bool aborted;	    /* --on-bad-input=abort, or a write failed */
	bool joblog_failed; /* a joblog line could not be written: no more */
	bool halted;	    /* --halt's condition was met */
	int halt_status;    /* the exit status --halt decided */
	struct joblog *joblog;
	struct done_set *done; /* --resume: tasks done in an earlier run */
	struct progress *progress;
	uv_signal_t signals[3]; /* pool_signal.c's: SIGINT, SIGTERM, SIGHUP */
	struct deadline *deadline; /* --timeout, --kill-after */
	struct gate *gate;	   /* --delay, --load, --memfree, tokens */
	struct task_clock clock;   /* the wall clock, read once a second */
	uint64_t fill_ns;	   /* uv_hrtime() in this pool_fill, or 0 */
	uv_idle_t refill;	   /* pool_fill once this turn's ends are in */
	bool refill_open;
};

/* ---- pool.c ---- */

/* Start tasks while places are free, the buffer has room and input is
 * ready. */
void pool_fill(struct pool *p);
/* Start nothing new; drop the retries not yet run; with stop_running,
 * send sig to every running task, whose result will not be written. */
void pool_stop(struct pool *p, bool stop_running, int sig);

/* ---- pool_signal.c ---- */

/* Watch the signals, and stdout's reader, until pool_signals_stop. */
void pool_signals_start(struct pool *p);
void pool_signals_stop(struct pool *p);
/* The pool is freed: a signal during a stalled write has none to stop. */
void pool_signals_forget(const struct pool *p);

#endif /* CPMAP_POOL_H */
