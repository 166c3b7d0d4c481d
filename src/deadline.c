/*
 * deadline.c - --timeout and --kill-after: each slot's timer.
 *
 * A slot's timer bounds its oldest attempt, the one its worker works on:
 * when --timeout runs out, SIGTERM to it (its process group, through its
 * kind), then SIGKILL after --kill-after.  The timeout is fixed, or P% of
 * the median runtime of the tasks that succeeded so far (--timeout P%),
 * which is not known until one has: the attempts started before that are
 * timed from then on, for what is left of their time.
 *
 * The timers are the slots' own (the roster makes and closes them); this
 * file only starts and stops them.  It knows nothing of queues or results:
 * the pool says when a slot's oldest attempt changed and when a task
 * succeeded.
 */
#include <assert.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>

#include <uv.h>

#include "cpmap.h"

struct deadline {
	const struct options *opts;
	const struct roster *roster; /* the slots to time */
	struct median *runtimes; /* --timeout P%: of the tasks that succeeded */
};

/* The slot whose timer this is: the timer's data is the deadline. */
#define DEADLINE_SLOT(timer)                                                   \
	((struct slot *)(void *)((char *)(timer)-offsetof(struct slot, timer)))

static void deadline_timeout_cb(uv_timer_t *timer);

struct deadline *
deadline_create(const struct options *opts, const struct roster *roster)
{
	struct deadline *d = xcalloc(1, sizeof *d);

	d->opts = opts;
	d->roster = roster;
	if (opts->timeout_percent > 0)
		d->runtimes = median_create();
	return d;
}

void
deadline_free(struct deadline *d)
{
	if (d == NULL)
		return;
	median_free(d->runtimes);
	free(d);
}

/* The --timeout now: fixed, or P% of the median runtime (0: none yet). */
static uint64_t
deadline_timeout_ms(const struct deadline *d)
{
	uint64_t median;

	if (d->opts->timeout_percent == 0)
		return d->opts->timeout_ms;
	if (!median_get(d->runtimes, &median))
		return 0;
	median = (uint64_t)((double)median * d->opts->timeout_percent / 100);
	return median > 0 ? median : 1;
}

static void
deadline_start(struct deadline *d, struct slot *s, uv_timer_cb cb, uint64_t ms)
{
	s->timer.data = d;
	uv_timer_start(&s->timer, cb, ms, 0);
}

void
deadline_arm(struct deadline *d, struct slot *s)
{
	uint64_t ms = deadline_timeout_ms(d);

	if (ms > 0 && !TAILQ_EMPTY(&s->attempts))
		deadline_start(d, s, deadline_timeout_cb, ms);
}

void
deadline_rearm(struct deadline *d, struct slot *s)
{
	uv_timer_stop(&s->timer);
	deadline_arm(d, s);
}

/*
 * --timeout P%: a task that succeeded moves the median, and the attempts
 * started before there was one are timed from now on (for what is left
 * of their time).
 */
void
deadline_note_success(struct deadline *d, const struct result *r)
{
	uint64_t ms, now;

	if (d->runtimes == NULL)
		return;
	now = uv_hrtime();
	median_add(d->runtimes, (uint64_t)(r->duration * 1000));
	ms = deadline_timeout_ms(d);
	for (size_t i = 0; i < roster_slot_count(d->roster); i++) {
		struct slot *s = roster_slot(d->roster, i);
		struct task *t = TAILQ_FIRST(&s->attempts);
		uint64_t ran;

		if (t == NULL || uv_is_active((uv_handle_t *)&s->timer))
			continue;
		ran = (now - t->start_ns) / 1000000;
		deadline_start(d, s, deadline_timeout_cb,
			       ran < ms ? ms - ran : 1);
	}
}

static void
deadline_kill_after_cb(uv_timer_t *timer)
{
	struct slot *s = DEADLINE_SLOT(timer);
	struct task *t = TAILQ_FIRST(&s->attempts);

	/* The attempt it timed may have ended since: the next one is timed
	 * afresh by deadline_rearm, which stops this timer. */
	assert(t != NULL);
	s->worker->kind->signal(t->attempt, SIGKILL);
}

void
deadline_kill_after(struct deadline *d, struct slot *s)
{
	deadline_start(d, s, deadline_kill_after_cb, d->opts->kill_after_ms);
}

static void
deadline_timeout_cb(uv_timer_t *timer)
{
	struct deadline *d = timer->data;
	struct slot *s = DEADLINE_SLOT(timer);
	struct task *t = TAILQ_FIRST(&s->attempts);

	assert(t != NULL);
	t->timed_out = true;
	t->timeout_ms = deadline_timeout_ms(d);
	log_debug("timeout seq %llu at slot %u", (unsigned long long)t->seq,
		  s->number);
	s->worker->kind->signal(t->attempt, SIGTERM);
	deadline_kill_after(d, s);
}
