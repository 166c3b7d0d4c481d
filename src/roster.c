/*
 * roster.c - the workers of a run and their slots: where an attempt can go.
 *
 * A worker comes up with a number of slots and of places per slot (how many
 * attempts one slot may hold), goes down, comes back, or goes for good;
 * its kind tells the roster through pool_worker_up and pool_worker_down.
 * The roster keeps every slot that has a free place on one list, so taking
 * a place costs the same however many slots there are: no event scans
 * them all.  Places are dealt round the slots (a slot goes to the back of
 * the list when it takes one), and a place freed goes to the front, so a
 * warm slot stays busy.
 *
 * With no worker up, a timer (--host-timeout) runs; when it fires, every
 * worker not up is given up for good, and once every worker is gone for
 * good the pool ends what is left as host-lost.  The roster decides
 * nothing about tasks: it tells the pool that places changed.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cpmap.h"

struct roster {
	uv_loop_t *loop;
	const struct options *opts;
	struct pool *pool;
	void (*changed)(struct pool *pool); /* places came or went */
	struct worker **workers;
	size_t worker_count;
	unsigned up, gone;   /* workers up, and gone for good */
	struct slot **slots; /* by number - 1 */
	unsigned slot_count;
	TAILQ_HEAD(, slot) free_slots; /* slots with a free place */
	bool started;		       /* tell the pool of changes */
	bool closed;
	uv_timer_t host_timer; /* --host-timeout while no worker is up */
};

static void
roster_list(struct roster *r, struct slot *s, bool first)
{
	if (s->listed || s->free == 0)
		return;
	if (first)
		TAILQ_INSERT_HEAD(&r->free_slots, s, free_entry);
	else
		TAILQ_INSERT_TAIL(&r->free_slots, s, free_entry);
	s->listed = true;
}

static void
roster_unlist(struct roster *r, struct slot *s)
{
	if (!s->listed)
		return;
	TAILQ_REMOVE(&r->free_slots, s, free_entry);
	s->listed = false;
}

struct slot *
roster_take(struct roster *r)
{
	struct slot *s = TAILQ_FIRST(&r->free_slots);

	if (s == NULL)
		return NULL;
	assert(s->free > 0);
	roster_unlist(r, s);
	s->free--;
	s->in_flight++;
	roster_list(r, s, false);
	return s;
}

void
roster_release(struct roster *r, struct slot *s)
{
	struct worker *w = s->worker;

	assert(s->in_flight > 0);
	s->in_flight--;
	s->free++;
	if (w->state == WORKER_UP && s->index < w->active)
		roster_list(r, s, true);
}

bool
roster_has_place(const struct roster *r)
{
	return !TAILQ_EMPTY(&r->free_slots);
}

bool
roster_all_gone(const struct roster *r)
{
	return r->gone == r->worker_count;
}

static void
roster_add_slot(struct roster *r, struct worker *w)
{
	struct slot *s = xcalloc(1, sizeof *s);
	int rc;

	s->pool = r->pool;
	s->worker = w;
	s->number = r->slot_count + 1;
	s->index = w->slot_count;
	TAILQ_INIT(&s->attempts);
	if ((rc = uv_timer_init(r->loop, &s->timer)) != 0)
		fatal("cannot make a timer: %s", uv_strerror(rc));
	r->slots = xreallocarray(r->slots, r->slot_count + 1, sizeof *r->slots);
	r->slots[r->slot_count++] = s;
	w->slots = xreallocarray(w->slots, w->slot_count + 1, sizeof *w->slots);
	w->slots[w->slot_count++] = s;
}

void
pool_worker_up(struct worker *w, unsigned slots, unsigned places)
{
	struct roster *r = w->roster;

	assert(slots > 0 && places > 0 && w->state != WORKER_GONE);
	while (w->slot_count < slots)
		roster_add_slot(r, w);
	if (w->state != WORKER_UP) {
		r->up++;
		uv_timer_stop(&r->host_timer);
	}
	w->state = WORKER_UP;
	w->active = slots;
	for (unsigned i = 0; i < w->slot_count; i++) {
		struct slot *s = w->slots[i];

		roster_unlist(r, s);
		s->free = i < slots && places > s->in_flight
			      ? places - s->in_flight
			      : 0;
		roster_list(r, s, false);
	}
	log_debug("worker %s up: %u slots, %u places each", w->name, slots,
		  places);
	if (r->started && !w->creating)
		r->changed(r->pool);
}

static void
roster_host_timeout_cb(uv_timer_t *timer)
{
	struct roster *r = timer->data;

	log_warn("no worker has been up for %.3gs: giving up on them",
		 (double)r->opts->host_timeout_ms / 1000);
	for (size_t i = 0; i < r->worker_count; i++)
		if (r->workers[i]->state != WORKER_UP)
			pool_worker_down(r->workers[i], true);
}

void
pool_worker_down(struct worker *w, bool for_good)
{
	struct roster *r = w->roster;

	if (w->state == WORKER_GONE)
		return;
	if (w->state == WORKER_UP)
		r->up--;
	w->state = for_good ? WORKER_GONE : WORKER_DOWN;
	if (for_good)
		r->gone++;
	for (unsigned i = 0; i < w->slot_count; i++)
		roster_unlist(r, w->slots[i]);
	log_debug("worker %s %s", w->name, for_good ? "gone" : "down");
	if (r->up == 0 && r->opts->host_timeout_ms > 0 &&
	    r->gone < r->worker_count && !r->closed)
		uv_timer_start(&r->host_timer, roster_host_timeout_cb,
			       r->opts->host_timeout_ms, 0);
	if (r->started && !w->creating)
		r->changed(r->pool);
}

const char *
pool_worker_name(const struct worker *w)
{
	return w->name;
}

struct roster *
roster_create(uv_loop_t *loop, const struct options *opts, struct pool *pool,
	      void (*changed)(struct pool *pool))
{
	struct roster *r = xcalloc(1, sizeof *r);
	int rc;

	r->loop = loop;
	r->opts = opts;
	r->pool = pool;
	r->changed = changed;
	TAILQ_INIT(&r->free_slots);
	if ((rc = uv_timer_init(loop, &r->host_timer)) != 0)
		fatal("cannot make a timer: %s", uv_strerror(rc));
	r->host_timer.data = r;
	return r;
}

struct worker *
roster_add(struct roster *r, const struct worker_plan *plan)
{
	struct worker *w = xcalloc(1, sizeof *w);

	w->roster = r;
	w->kind = plan->kind;
	w->name = xstrdup(plan->where);
	r->workers =
	    xreallocarray(r->workers, r->worker_count + 1, sizeof *r->workers);
	r->workers[r->worker_count++] = w;
	/* A worker that comes up inside create (this machine's do) must not
	 * be given an attempt before create has returned its state: the
	 * caller fills its places after (pool_add_worker). */
	w->creating = true;
	w->data = plan->kind->create(w, r->loop, r->opts, plan);
	w->creating = false;
	return w;
}

bool
roster_retire(struct roster *r, const char *name)
{
	for (size_t i = 0; i < r->worker_count; i++) {
		struct worker *w = r->workers[i];

		if (w->state == WORKER_GONE || strcmp(w->name, name) != 0)
			continue;
		pool_worker_down(w, true);
		if (w->kind->retire != NULL)
			w->kind->retire(w->data);
		return true;
	}
	return false;
}

void
roster_start(struct roster *r)
{
	r->started = true;
}

size_t
roster_slot_count(const struct roster *r)
{
	return r->slot_count;
}

struct slot *
roster_slot(const struct roster *r, size_t i)
{
	return r->slots[i];
}

size_t
roster_worker_count(const struct roster *r)
{
	return r->worker_count;
}

void
roster_drain(struct roster *r)
{
	for (size_t i = 0; i < r->worker_count; i++) {
		struct worker *w = r->workers[i];

		if (w->kind->drain != NULL)
			w->kind->drain(w->data);
	}
}

void
roster_close(struct roster *r)
{
	r->closed = true;
	uv_close((uv_handle_t *)&r->host_timer, NULL);
	for (unsigned i = 0; i < r->slot_count; i++)
		uv_close((uv_handle_t *)&r->slots[i]->timer, NULL);
	for (size_t i = 0; i < r->worker_count; i++) {
		struct worker *w = r->workers[i];

		if (w->kind->shutdown != NULL)
			w->kind->shutdown(w->data);
	}
}

void
roster_stop(const struct roster *r, int sig)
{
	for (size_t i = 0; r != NULL && i < r->worker_count; i++)
		r->workers[i]->kind->stop(r->workers[i]->data, sig);
}

void
roster_free(struct roster *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->worker_count; i++) {
		struct worker *w = r->workers[i];

		if (w->kind->free != NULL)
			w->kind->free(w->data);
		free(w->slots);
		free(w->name);
		free(w);
	}
	free(r->workers);
	for (unsigned i = 0; i < r->slot_count; i++) {
		free(r->slots[i]->argv);
		free(r->slots[i]);
	}
	free(r->slots);
	free(r);
}
