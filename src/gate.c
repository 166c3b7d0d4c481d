/*
 * gate.c - may the next attempt start now?  Everything but a free place.
 *
 * The pool starts an attempt when a place is free and this gate is open:
 * --delay since the last start has passed; processes and descriptors are
 * not short (a spawn that failed with EAGAIN, EMFILE, ENFILE or ENOMEM
 * holds every start until a task ends, or a while has passed with none
 * running); the machine allows it (--load, --memfree: throttle.c); and
 * make's jobserver gave a token (jobserver.c).  Whatever holds a start back
 * calls the pool's open callback when it may go.
 */
#include <stdbool.h>
#include <stdlib.h>

#include <uv.h>

#include "cpmap.h"

/* Out of descriptors or processes: wait this long for them to come back
 * when no task runs (a task that ends frees them sooner), this many times
 * in a row before the task fails with the error. */
#define GATE_SPAWN_WAIT_MS 200
#define GATE_SPAWN_WAITS_ALONE 25

struct gate {
	uv_loop_t *loop;
	const struct options *opts;
	void (*open)(void *arg); /* a start held back may go now */
	void *arg;
	uv_timer_t delay_timer; /* --delay: until the next start may go */
	uint64_t last_start_ns; /* --delay: when the last attempt started */
	bool spawn_blocked;	/* out of processes or descriptors: wait */
	unsigned spawn_waits;	/* ... in a row, with no task running */
	uv_timer_t spawn_timer; /* ... until a task ends, or this fires */
	struct jobserver *jobserver; /* make's tokens, or NULL */
	struct throttle *throttle;   /* --load, --memfree, or NULL */
};

struct gate *
gate_create(uv_loop_t *loop, const struct options *opts,
	    void (*open)(void *arg), void (*shed)(void *arg), void *arg)
{
	struct gate *g = xcalloc(1, sizeof *g);

	g->loop = loop;
	g->opts = opts;
	g->open = open;
	g->arg = arg;
	g->jobserver = jobserver_start(loop, open, arg);
	g->throttle = throttle_start(loop, opts, open, shed, arg);
	return g;
}

void
gate_start(struct gate *g)
{
	int rc;

	if ((rc = uv_timer_init(g->loop, &g->delay_timer)) != 0 ||
	    (rc = uv_timer_init(g->loop, &g->spawn_timer)) != 0)
		fatal("cannot make a timer: %s", uv_strerror(rc));
	g->delay_timer.data = g;
	g->spawn_timer.data = g;
}

void
gate_stop(struct gate *g)
{
	uv_close((uv_handle_t *)&g->delay_timer, NULL);
	uv_close((uv_handle_t *)&g->spawn_timer, NULL);
	jobserver_stop(g->jobserver);
	throttle_stop(g->throttle);
}

void
gate_free(struct gate *g)
{
	if (g == NULL)
		return;
	jobserver_free(g->jobserver);
	throttle_free(g->throttle);
	free(g);
}

/* ---- --delay ----------------------------------------------------------- */

static void
gate_delay_cb(uv_timer_t *timer)
{
	struct gate *g = timer->data;

	g->open(g->arg);
}

bool
gate_delay_over(struct gate *g)
{
	uint64_t now, due;

	if (g->opts->delay_ms == 0 || g->last_start_ns == 0)
		return true;
	now = uv_hrtime();
	due = g->last_start_ns + g->opts->delay_ms * 1000000;
	if (now >= due)
		return true;
	if (!uv_is_active((uv_handle_t *)&g->delay_timer))
		uv_timer_start(&g->delay_timer, gate_delay_cb,
			       (due - now + 999999) / 1000000, 0);
	return false;
}

void
gate_started(struct gate *g, uint64_t now_ns)
{
	g->last_start_ns = now_ns;
}

/* ---- --load, --memfree and make's jobserver ---------------------------- */

bool
gate_may_start(struct gate *g, unsigned running)
{
	if (g->throttle == NULL && g->jobserver == NULL)
		return true; /* once a task: no calls when nothing gates */
	return g->opts->dry_run || (throttle_open(g->throttle) &&
				    jobserver_take(g->jobserver, running));
}

/* Twice a task: the calls are skipped when there is nothing to tell. */
void
gate_running(struct gate *g, unsigned running)
{
	if (g->jobserver != NULL)
		jobserver_settle(g->jobserver, running);
	if (g->throttle != NULL)
		throttle_running(g->throttle, running);
}

void
gate_settle(struct gate *g, unsigned running)
{
	if (g->jobserver != NULL)
		jobserver_settle(g->jobserver, running);
}

/* ---- out of processes or descriptors ----------------------------------- */

bool
gate_spawn_blocked(const struct gate *g)
{
	return g->spawn_blocked;
}

static void
gate_spawn_timer_cb(uv_timer_t *timer)
{
	struct gate *g = timer->data;

	g->spawn_blocked = false;
	g->open(g->arg);
}

/*
 * An attempt could not start for want of processes or descriptors: start
 * nothing until a task ends (or, with none running, a while has passed).
 * False when that has failed too often with nothing running: then nothing
 * will free what is missing, and the task fails with the error.
 */
bool
gate_spawn_wait(struct gate *g, unsigned running)
{
	if (running == 0 && ++g->spawn_waits > GATE_SPAWN_WAITS_ALONE) {
		g->spawn_waits = 0;
		return false;
	}
	if (!g->spawn_blocked)
		log_debug("spawn blocked with %u running", running);
	g->spawn_blocked = true;
	uv_timer_start(&g->spawn_timer, gate_spawn_timer_cb, GATE_SPAWN_WAIT_MS,
		       0);
	return true;
}

void
gate_attempt_ended(struct gate *g, bool spawned)
{
	if (spawned)
		g->spawn_waits = 0;
	g->spawn_blocked = false;
}
