/*
 * progress.c - --progress and --bar on stderr.
 *
 * The pool reports its counts on every change, with the total as soon as
 * it is known (::: groups and regular files are counted up front); a timer
 * draws them, so a run of a million tiny tasks does not write a million
 * lines.  On a terminal the line is redrawn in place, at most ten times a
 * second; otherwise each second that saw a change writes one plain line,
 * which is what a log file wants.  With a total, the line has the percent
 * done and an ETA; without one, what is done and running, and the rate.
 * The last state is always drawn when the run ends.  Never touches stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"

#define PROGRESS_TICK_MS 1000	 /* a plain line at most this often */
#define PROGRESS_TTY_TICK_MS 100 /* a redraw in place at most this often */
#define PROGRESS_BAR_WIDTH 30

struct progress {
	uv_timer_t timer;
	bool bar;
	bool tty;
	bool changed;
	uint64_t started_ns;
	struct progress_counts counts;
};

static void
progress_draw(struct progress *p, bool last)
{
	const struct progress_counts *c = &p->counts;
	double elapsed = (double)(uv_hrtime() - p->started_ns) / 1e9;
	double rate = elapsed > 0 ? (double)c->done / elapsed : 0;
	char eta[32] = "", line[256], bar[PROGRESS_BAR_WIDTH + 3] = "";
	int n;

	if (c->total > 0 && rate > 0 && c->done < c->total) {
		unsigned long s =
		    (unsigned long)((double)(c->total - c->done) / rate);

		snprintf(eta, sizeof eta, ", ETA %lu:%02lu:%02lu", s / 3600,
			 s / 60 % 60, s % 60);
	}
	if (p->bar && c->total > 0) {
		size_t filled =
		    (size_t)(PROGRESS_BAR_WIDTH * c->done / c->total);

		bar[0] = '[';
		for (size_t i = 0; i < PROGRESS_BAR_WIDTH; i++)
			bar[i + 1] = i < filled ? '#' : '.';
		bar[PROGRESS_BAR_WIDTH + 1] = ']';
		bar[PROGRESS_BAR_WIDTH + 2] = '\0';
	}
	if (c->total > 0)
		n = snprintf(
		    line, sizeof line,
		    "%s%s%s%llu%% %llu/%llu done, %llu failed, %u "
		    "running, %.1f/s%s",
		    p->tty ? "\r\033[K" : "", bar, bar[0] ? " " : "",
		    (unsigned long long)(c->done * 100 / c->total),
		    (unsigned long long)c->done, (unsigned long long)c->total,
		    (unsigned long long)c->failed, c->running, rate, eta);
	else
		n = snprintf(line, sizeof line,
			     "%s%llu done, %llu failed, %u running, %.1f/s",
			     p->tty ? "\r\033[K" : "",
			     (unsigned long long)c->done,
			     (unsigned long long)c->failed, c->running, rate);
	if (n < 0)
		return;
	if (c->bytes > 0 && (size_t)n < sizeof line - 64) {
		/* --pipe: the bytes read; --pipe-part: of the file's. */
		double mb = (double)c->bytes / 1048576;
		int more = c->bytes_total > 0
			       ? snprintf(line + n, sizeof line - (size_t)n,
					  ", %.1f MB read (%llu%%)", mb,
					  (unsigned long long)(c->bytes * 100 /
							       c->bytes_total))
			       : snprintf(line + n, sizeof line - (size_t)n,
					  ", %.1f MB read", mb);

		if (more > 0)
			n += more;
	}
	if ((size_t)n >= sizeof line - 1)
		n = sizeof line - 2;
	if (!p->tty || last)
		line[n++] = '\n';
	(void)io_write_all(STDERR_FILENO, line, (size_t)n);
	p->changed = false;
}

static void
progress_tick_cb(uv_timer_t *timer)
{
	struct progress *p = timer->data;

	if (p->changed)
		progress_draw(p, false);
}

struct progress *
progress_start(uv_loop_t *loop, bool bar)
{
	struct progress *p = xcalloc(1, sizeof *p);
	uint64_t tick;

	p->bar = bar;
	p->tty = isatty(STDERR_FILENO);
	p->started_ns = uv_hrtime();
	uv_timer_init(loop, &p->timer);
	p->timer.data = p;
	tick = p->tty ? PROGRESS_TTY_TICK_MS : PROGRESS_TICK_MS;
	uv_timer_start(&p->timer, progress_tick_cb, tick, tick);
	/* The display never keeps a finished run alive. */
	uv_unref((uv_handle_t *)&p->timer);
	return p;
}

void
progress_note(struct progress *p, const struct progress_counts *counts)
{
	if (p == NULL)
		return;
	p->counts = *counts;
	p->changed = true;
}

static void
progress_close_cb(uv_handle_t *handle)
{
	free(handle->data);
}

void
progress_stop(struct progress *p)
{
	if (p == NULL)
		return;
	progress_draw(p, true);
	uv_close((uv_handle_t *)&p->timer, progress_close_cb);
}
