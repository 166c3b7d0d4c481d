/*
 * timeline.c - --timeline FILE.svg: a picture of the run, drawn after it.
 *
 * The model is the list of attempts: each one's lane (host and slot), its
 * start and end on the wall clock, its outcome, its sequence number and
 * the first bytes of its input.  The pool adds one when an attempt ends
 * (timeline_note), or a joblog gives them all (timeline_read_joblog); at
 * the end, timeline_write draws one lane per slot, grouped by host, a bar
 * per attempt coloured by outcome with a <title> a browser shows on hover,
 * a legend, and a time axis ticked at 1, 2 or 5 times a power of ten.
 *
 * It has to hold 100k attempts and more, so an attempt is a fixed record
 * of 40 bytes plus at most TIMELINE_TEXT_MAX bytes of text in one arena,
 * and the picture stays small: bars of a lane narrower than a pixel that
 * start in the same pixel are drawn as one bar, whose title counts what it
 * holds; if the file still exceeds TIMELINE_MAX_BYTES, the merging widens
 * until it fits.  A joblog has no slot column, so its attempts are packed:
 * each goes to the first lane of its host that is free at its start.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"

#define TIMELINE_TEXT_MAX 40 /* bytes of an input kept for its title */
#define TIMELINE_HOST_MAX 24 /* bytes of a host name in a lane's label */

/* The geometry, in pixels. */
#define TIMELINE_LEFT 170  /* the lane labels' column */
#define TIMELINE_PLOT 1000 /* the time axis's length */
#define TIMELINE_RIGHT 30  /* room for the last tick's label */
#define TIMELINE_TOP 58	   /* the heading and the legend */
#define TIMELINE_LANE 16   /* a lane's height ... */
#define TIMELINE_BAR 12	   /* ... and its bar's */
#define TIMELINE_BOTTOM 34 /* the axis and its labels */
#define TIMELINE_WIDTH (TIMELINE_LEFT + TIMELINE_PLOT + TIMELINE_RIGHT)

/* One attempt, compactly (40 bytes). */
struct mark {
	double start;	 /* seconds since the epoch */
	float duration;	 /* seconds */
	uint32_t host;	 /* index in hosts */
	uint64_t seq;	 /* the task's */
	uint32_t lane;	 /* the slot number, or the packed lane (from 1) */
	uint32_t text;	 /* offset of its text in the arena */
	int16_t code;	 /* exit code, or signal */
	uint8_t outcome; /* enum timeline_outcome */
	uint8_t text_len;
	uint8_t truncated; /* the text was longer */
	uint8_t attempt;   /* of its task, from 1 (255: or more); 0: unknown */
};
_Static_assert(sizeof(struct mark) == 40, "an attempt is kept in 40 bytes");

struct timeline {
	struct mark *marks;
	size_t count, cap;
	char **hosts; /* in order of first appearance; [i] NULL: local */
	uint32_t host_count;
	uint32_t last_host; /* the last one looked up: hosts repeat */
	struct buf texts;   /* the truncated texts, one after another */
	bool packed;	    /* lanes are assigned (none is 0 any more) */
	bool commands;	    /* texts are joblog commands, not inputs */
};

/* How each outcome is named and drawn (the legend's order). */
static const struct {
	const char *name;
	const char *css; /* class */
	const char *fill;
} timeline_styles[TIMELINE_OUTCOMES] = {
    [TIMELINE_OK] = {"ok", "o", "#3a9a3a"},
    [TIMELINE_FAILED] = {"failed", "f", "#d62728"},
    [TIMELINE_SIGNALED] = {"signaled", "s", "#9467bd"},
    [TIMELINE_TIMEOUT] = {"timeout", "t", "#ff8c00"},
    [TIMELINE_SPAWN] = {"spawn error", "e", "#8c564b"},
    [TIMELINE_LOST] = {"lost", "l", "#7f7f7f"},
};

/* Which outcome a merged bar shows: the rarest kind of trouble wins over
 * plain success, so that one failure among a thousand still shows. */
static const int timeline_severity[TIMELINE_OUTCOMES] = {
    [TIMELINE_OK] = 0,	    [TIMELINE_FAILED] = 3, [TIMELINE_SIGNALED] = 2,
    [TIMELINE_TIMEOUT] = 4, [TIMELINE_SPAWN] = 5,  [TIMELINE_LOST] = 1,
};

struct timeline *
timeline_create(void)
{
	return xcalloc(1, sizeof(struct timeline));
}

void
timeline_free(struct timeline *tl)
{
	if (tl == NULL)
		return;
	for (uint32_t i = 0; i < tl->host_count; i++)
		free(tl->hosts[i]);
	free(tl->hosts);
	free(tl->marks);
	buf_free(&tl->texts);
	free(tl);
}

size_t
timeline_count(const struct timeline *tl)
{
	return tl->count;
}

size_t
timeline_memory(const struct timeline *tl)
{
	return tl->cap * sizeof *tl->marks + tl->texts.cap +
	       tl->host_count * sizeof *tl->hosts;
}

/* The index of a host, added when new (NULL, "local" and ":" are this
 * machine). */
static uint32_t
timeline_host(struct timeline *tl, const char *host)
{
	if (host != NULL &&
	    (strcmp(host, "local") == 0 || strcmp(host, ":") == 0))
		host = NULL;
	if (tl->last_host < tl->host_count) {
		const char *last = tl->hosts[tl->last_host];

		if (last == host ||
		    (last != NULL && host != NULL && strcmp(last, host) == 0))
			return tl->last_host;
	}
	for (uint32_t i = 0; i < tl->host_count; i++) {
		const char *h = tl->hosts[i];

		if (h == host ||
		    (h != NULL && host != NULL && strcmp(h, host) == 0))
			return tl->last_host = i;
	}
	tl->hosts =
	    xreallocarray(tl->hosts, tl->host_count + 1, sizeof *tl->hosts);
	tl->hosts[tl->host_count] = host != NULL ? xstrdup(host) : NULL;
	return tl->last_host = tl->host_count++;
}

/* At most max bytes of text, not cutting a UTF-8 character in two. */
static size_t
timeline_cut(const char *text, size_t len, size_t max)
{
	size_t cut;

	if (len <= max)
		return len;
	cut = max;
	/* Back off to the lead byte of a character the cut splits. */
	for (size_t back = 0;
	     back < 3 && cut > 0 && ((unsigned char)text[cut] & 0xc0) == 0x80;
	     back++)
		cut--;
	if (((unsigned char)text[cut] & 0xc0) == 0x80)
		cut = max; /* not UTF-8 anyway: cut at the byte */
	return cut;
}

void
timeline_add(struct timeline *tl, const struct timeline_attempt *a)
{
	struct mark *m;
	size_t keep = 0;
	double duration = a->end - a->start;

	if (tl->count == tl->cap) {
		tl->cap = tl->cap ? tl->cap * 2 : 1024;
		tl->marks =
		    xreallocarray(tl->marks, tl->cap, sizeof *tl->marks);
	}
	m = &tl->marks[tl->count++];
	memset(m, 0, sizeof *m);
	m->start = a->start;
	m->duration = duration > 0 ? (float)duration : 0;
	m->host = timeline_host(tl, a->host);
	m->seq = a->seq;
	m->lane = a->slot;
	if (a->slot == 0)
		tl->packed = false;
	m->code = (int16_t)(a->code < INT16_MIN	  ? INT16_MIN
			    : a->code > INT16_MAX ? INT16_MAX
						  : a->code);
	m->outcome = (uint8_t)a->outcome;
	m->attempt = (uint8_t)(a->attempt > 255 ? 255 : a->attempt);
	if (a->text != NULL && tl->texts.len < UINT32_MAX - TIMELINE_TEXT_MAX)
		keep = timeline_cut(a->text, a->text_len, TIMELINE_TEXT_MAX);
	m->text = (uint32_t)tl->texts.len;
	m->text_len = (uint8_t)keep;
	m->truncated = a->text != NULL && keep < a->text_len;
	buf_append(&tl->texts, a->text != NULL ? a->text : "", keep);
}

void
timeline_note(struct timeline *tl, const struct task *t,
	      const struct attempt_end *end)
{
	struct timeline_attempt a = {
	    .seq = t->seq,
	    .host = t->host,
	    .slot = t->last_slot,
	    .attempt = t->attempts,
	    .start = t->start,
	    .code = end->exit_code,
	};
	char joined[TIMELINE_TEXT_MAX + 1];
	size_t len = 0;

	if (tl == NULL)
		return;
	a.end = t->start + (double)(uv_hrtime() - t->start_ns) / 1e9;
	if (end->spawn_error != 0)
		a.outcome = TIMELINE_SPAWN;
	else if (end->lost)
		a.outcome = TIMELINE_LOST;
	else if (t->timed_out)
		a.outcome = TIMELINE_TIMEOUT, a.code = end->signal;
	else if (end->signal != 0)
		a.outcome = TIMELINE_SIGNALED, a.code = end->signal;
	else if (end->exit_code != 0 || end->message != NULL ||
		 end->error != ERROR_NONE)
		a.outcome = TIMELINE_FAILED;
	else
		a.outcome = TIMELINE_OK;
	/* The inputs, joined by spaces: only as much as is kept. */
	for (size_t i = 0; i < t->input_count && len <= TIMELINE_TEXT_MAX;
	     i++) {
		size_t n = t->inputs[i]->len;

		if (i > 0)
			joined[len++] = ' ';
		if (n > TIMELINE_TEXT_MAX + 1 - len)
			n = TIMELINE_TEXT_MAX + 1 - len;
		memcpy(joined + len, t->inputs[i]->text, n);
		len += n;
	}
	a.text = joined;
	a.text_len = len;
	timeline_add(tl, &a);
}

/* ---- a joblog ------------------------------------------------------------ */

static void
timeline_joblog_entry_cb(void *arg, const struct joblog_entry *e)
{
	struct timeline *tl = arg;
	struct timeline_attempt a = {
	    .seq = e->seq,
	    .host = e->host,
	    .start = e->start,
	    .end = e->start + e->runtime,
	    .code = (int)e->exitval,
	    .text = e->command,
	    .text_len = strlen(e->command),
	};

	if (!e->timed)
		return;
	/* A joblog does not tell timeouts or lost attempts apart; 127 is
	 * what cpmap logs for a command that could not start (and what a
	 * shell says of a command it cannot find). */
	if (e->signal != 0)
		a.outcome = TIMELINE_SIGNALED, a.code = (int)e->signal;
	else if (e->exitval == 127)
		a.outcome = TIMELINE_SPAWN;
	else if (e->exitval != 0)
		a.outcome = TIMELINE_FAILED;
	else
		a.outcome = TIMELINE_OK;
	timeline_add(tl, &a);
}

int
timeline_read_joblog(struct timeline *tl, const char *path, char **cause)
{
	size_t bad = 0;
	char *why = NULL;

	tl->commands = true;
	if (joblog_each(path, timeline_joblog_entry_cb, tl, &bad, &why) < 0) {
		*cause = xasprintf("--from-joblog: %s", why);
		free(why);
		return -1;
	}
	if (bad > 0)
		log_warn("--from-joblog: %s: %zu line%s not understood: not "
			 "drawn",
			 path, bad, bad == 1 ? "" : "s");
	return 0;
}

/* ---- lanes --------------------------------------------------------------- */

static int
timeline_by_host_start(const void *x, const void *y)
{
	const struct mark *a = x, *b = y;

	if (a->host != b->host)
		return a->host < b->host ? -1 : 1;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int
timeline_by_lane(const void *x, const void *y)
{
	const struct mark *a = x, *b = y;

	if (a->host != b->host)
		return a->host < b->host ? -1 : 1;
	if (a->lane != b->lane)
		return a->lane < b->lane ? -1 : 1;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Give attempts without a slot the first lane of their host that is free
 * at their start (the lanes a joblog's run must have had, at least). */
static void
timeline_pack(struct timeline *tl)
{
	double *free_at = NULL; /* when each lane of the host frees */
	size_t lanes = 0, cap = 0;

	tl->packed = true;
	if (tl->count == 0)
		return; /* qsort must not see a NULL array */
	qsort(tl->marks, tl->count, sizeof *tl->marks, timeline_by_host_start);
	for (size_t i = 0; i < tl->count; i++) {
		struct mark *m = &tl->marks[i];
		double end = m->start + m->duration;
		size_t lane;

		if (i == 0 || m->host != tl->marks[i - 1].host)
			lanes = 0;
		if (m->lane != 0)
			continue;
		for (lane = 0; lane < lanes && free_at[lane] > m->start; lane++)
			;
		if (lane == lanes) {
			if (lanes == cap) {
				cap = cap ? cap * 2 : 16;
				free_at = xreallocarray(free_at, cap,
							sizeof *free_at);
			}
			lanes++;
		}
		free_at[lane] = end;
		m->lane = (uint32_t)lane + 1;
	}
	free(free_at);
}

/* ---- SVG ----------------------------------------------------------------- */

/* Write text as XML character data: markup escaped, bytes that are not
 * UTF-8 (or not allowed in XML) as \xHH. */
static void
timeline_escape(FILE *f, const char *text, size_t len)
{
	const unsigned char *p = (const unsigned char *)text;

	for (size_t i = 0; i < len;) {
		unsigned char c = p[i];
		size_t n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;

		if (c == '<')
			fputs("&lt;", f);
		else if (c == '>')
			fputs("&gt;", f);
		else if (c == '&')
			fputs("&amp;", f);
		else if (c == '"')
			fputs("&quot;", f);
		else if (c < 0x80 && (c >= 0x20 && c != 0x7f))
			fputc(c, f);
		else if (c >= 0x80 && i + n <= len && utf8_valid(text + i, n) &&
			 /* U+FFFE and U+FFFF are not XML characters */
			 !(n == 3 && c == 0xef && p[i + 1] == 0xbf &&
			   p[i + 2] >= 0xbe)) {
			fwrite(p + i, 1, n, f);
			i += n;
			continue;
		} else
			fprintf(f, "\\x%02X", c);
		i++;
	}
}

/* A duration in words: "1.234 s", "12.3 ms", "41 µs". */
static void
timeline_seconds(char *out, size_t size, double s)
{
	if (s >= 1 || s == 0)
		snprintf(out, size, "%.3f s", s);
	else if (s >= 0.001)
		snprintf(out, size, "%.1f ms", s * 1e3);
	else
		snprintf(out, size, "%.0f µs", s * 1e6);
}

/* What ended the attempt: "exit 1", "signal SIGKILL", ... */
static void
timeline_how(char *out, size_t size, const struct mark *m)
{
	char sig[32];

	switch (m->outcome) {
	case TIMELINE_SIGNALED:
		signal_name(m->code, sig, sizeof sig);
		snprintf(out, size, "signal %s", sig);
		break;
	case TIMELINE_TIMEOUT:
		signal_name(m->code, sig, sizeof sig);
		snprintf(out, size, "timed out (%s)", sig);
		break;
	case TIMELINE_SPAWN:
		snprintf(out, size, "could not start (exit %d)", m->code);
		break;
	case TIMELINE_LOST:
		snprintf(out, size, "lost with its worker");
		break;
	default:
		snprintf(out, size, "exit %d", m->code);
	}
}

/* A lane's label: "slot 3", or "host · 3" when there are hosts. */
static void
timeline_lane_label(FILE *f, const struct timeline *tl, const struct mark *m)
{
	const char *host = tl->hosts[m->host];
	const char *word = tl->packed && tl->commands ? "lane" : "slot";

	if (tl->host_count == 1 && host == NULL) {
		fprintf(f, "%s %u", word, m->lane);
		return;
	}
	if (host == NULL)
		host = "local";
	timeline_escape(f, host,
			timeline_cut(host, strlen(host), TIMELINE_HOST_MAX));
	if (strlen(host) > TIMELINE_HOST_MAX)
		fputs("…", f);
	fprintf(f, " · %s %u", word, m->lane);
}

/* A bar's hover text: seq, input, how it ended, duration, host. */
static void
timeline_title(FILE *f, const struct timeline *tl, const struct mark *m,
	       double t0)
{
	const char *host = tl->hosts[m->host];
	char how[64], took[32], at[32];

	timeline_how(how, sizeof how, m);
	timeline_seconds(took, sizeof took, m->duration);
	timeline_seconds(at, sizeof at, m->start - t0);
	fprintf(f, "<title>seq %llu", (unsigned long long)m->seq);
	if (m->attempt > 1)
		fprintf(f, " (attempt %u)", m->attempt);
	fprintf(f, " · %s: ", tl->commands ? "command" : "input");
	if (m->text_len > 0)
		timeline_escape(f, tl->texts.data + m->text, m->text_len);
	if (m->truncated)
		fputs("…", f);
	fprintf(f, " · %s · %s (at %s) · ", how, took, at);
	timeline_escape(f, host != NULL ? host : "local",
			strlen(host != NULL ? host : "local"));
	fprintf(f, " %s %u</title>", tl->commands ? "lane" : "slot", m->lane);
}

/* A bar of several attempts that merged. */
struct timeline_group {
	size_t first, count; /* marks[first .. first + count) */
	double start, end;
	uint64_t low, high; /* their sequence numbers */
	unsigned outcomes[TIMELINE_OUTCOMES];
};

/* Where the pixel column (merge_px wide) holding offset ends, in px. */
static double
timeline_column_end(double offset, double scale, double merge_px)
{
	return ((double)(long long)(offset * scale / merge_px) + 1) * merge_px;
}

static void
timeline_bar(FILE *f, double x, double width, double y, int outcome)
{
	if (width >= 3)
		width -= 1; /* a gap: two attempts in a row are two bars */
	else if (width < 1)
		width = 1; /* a thinner bar would barely show */
	fprintf(f,
		"<rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"%d\" "
		"class=\"%s\">",
		x, y, width, TIMELINE_BAR, timeline_styles[outcome].css);
}

static void
timeline_group_write(FILE *f, const struct timeline *tl,
		     const struct timeline_group *g, double t0, double scale,
		     double y)
{
	const struct mark *m = &tl->marks[g->first];
	int shown = TIMELINE_OK;
	char from[32], to[32];

	for (int o = 0; o < TIMELINE_OUTCOMES; o++)
		if (g->outcomes[o] > 0 &&
		    timeline_severity[o] > timeline_severity[shown])
			shown = o;
	timeline_bar(f, TIMELINE_LEFT + (g->start - t0) * scale,
		     (g->end - g->start) * scale, y,
		     g->count == 1 ? m->outcome : shown);
	if (g->count == 1) {
		timeline_title(f, tl, m, t0);
	} else {
		const char *host = tl->hosts[m->host];

		timeline_seconds(from, sizeof from, g->start - t0);
		timeline_seconds(to, sizeof to, g->end - t0);
		fprintf(f,
			"<title>%zu attempts (seq %llu to %llu), from %s to "
			"%s:",
			g->count, (unsigned long long)g->low,
			(unsigned long long)g->high, from, to);
		for (int o = 0, sep = 0; o < TIMELINE_OUTCOMES; o++)
			if (g->outcomes[o] > 0)
				fprintf(f, "%s %u %s", sep++ ? "," : "",
					g->outcomes[o],
					timeline_styles[o].name);
		fputs(" · ", f);
		timeline_escape(f, host != NULL ? host : "local",
				strlen(host != NULL ? host : "local"));
		fprintf(f, " %s %u</title>", tl->commands ? "lane" : "slot",
			m->lane);
	}
	fputs("</rect>\n", f);
}

/* The ticks: every step seconds, step 1, 2 or 5 times a power of ten, so
 * that about 5 to 10 fit the span; labelled in s, ms or µs. */
static void
timeline_axis(FILE *f, double span, double scale, double top, double bottom)
{
	double raw = span / 8, power, step;
	int exponent, mantissa, unit_exponent, decimals;
	const char *unit;

	/* The power of ten at or below raw (no libm for so little). */
	for (exponent = 0, power = 1; power * 10 <= raw; exponent++)
		power *= 10;
	for (; power > raw; exponent--)
		power /= 10;
	mantissa = raw <= power	      ? 1
		   : raw <= 2 * power ? 2
		   : raw <= 5 * power ? 5
				      : 10;
	if (mantissa == 10)
		mantissa = 1, exponent++, power *= 10;
	step = mantissa * power;
	if (span >= 1)
		unit = "s", unit_exponent = 0;
	else if (span >= 1e-3)
		unit = " ms", unit_exponent = 3;
	else
		unit = " µs", unit_exponent = 6;
	/* The label's digits: exact, as the step is m * 10^e in the unit. */
	decimals =
	    exponent + unit_exponent < 0 ? -(exponent + unit_exponent) : 0;
	fprintf(f,
		"<line x1=\"%d\" y1=\"%.0f\" x2=\"%d\" y2=\"%.0f\" "
		"class=\"a\"/>\n",
		TIMELINE_LEFT, bottom, TIMELINE_LEFT + TIMELINE_PLOT, bottom);
	/* (Durations are floats: a span a little short still gets its
	 * last tick.) */
	for (long i = 0; i * step <= span * (1 + 1e-6); i++) {
		double x = TIMELINE_LEFT + i * step * scale;
		double value = (double)i * step;

		for (int u = 0; u < unit_exponent; u++)
			value *= 10;

		char label[32];
		size_t len;

		/* "0.5s", "1s": as many decimals as the step, less trailing
		 * zeros. */
		len = (size_t)snprintf(label, sizeof label, "%.*f", decimals,
				       value);
		if (strchr(label, '.') != NULL) {
			while (len > 0 && label[len - 1] == '0')
				label[--len] = '\0';
			if (len > 0 && label[len - 1] == '.')
				label[--len] = '\0';
		}
		fprintf(f,
			"<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" "
			"class=\"g\"/>"
			"<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">"
			"%s%s</text>\n",
			x, top, x, bottom + 4, x, bottom + 16, label, unit);
	}
}

int
timeline_render(struct timeline *tl, FILE *f, double merge_px)
{
	size_t lanes = 0;
	double t0 = 0, t1 = 0, span, scale, height, y;
	unsigned outcomes[TIMELINE_OUTCOMES] = {0};
	char took[32], when[64] = "";

	if (!tl->packed)
		timeline_pack(tl);
	if (tl->count > 0)
		qsort(tl->marks, tl->count, sizeof *tl->marks,
		      timeline_by_lane);
	for (size_t i = 0; i < tl->count; i++) {
		const struct mark *m = &tl->marks[i];

		if (i == 0 || m->host != m[-1].host || m->lane != m[-1].lane)
			lanes++;
		if (i == 0 || m->start < t0)
			t0 = m->start;
		if (i == 0 || m->start + m->duration > t1)
			t1 = m->start + m->duration;
		outcomes[m->outcome]++;
	}
	span = t1 - t0 > 1e-6 ? t1 - t0 : 1e-6;
	scale = TIMELINE_PLOT / span;
	height = TIMELINE_TOP + (double)(lanes ? lanes : 1) * TIMELINE_LANE +
		 TIMELINE_BOTTOM;
	if (tl->count > 0) {
		time_t start = (time_t)t0;
		struct tm tm;

		if (localtime_r(&start, &tm) != NULL)
			strftime(when, sizeof when, ", from %Y-%m-%d %H:%M:%S",
				 &tm);
	}
	timeline_seconds(took, sizeof took, tl->count > 0 ? t1 - t0 : 0);

	fprintf(f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		"height=\"%.0f\" viewBox=\"0 0 %d %.0f\" "
		"font-family=\"sans-serif\" font-size=\"11\">\n"
		"<title>cpmap timeline</title>\n<style>\n",
		TIMELINE_WIDTH, height, TIMELINE_WIDTH, height);
	for (int o = 0; o < TIMELINE_OUTCOMES; o++)
		fprintf(f, ".%s{fill:%s}\n", timeline_styles[o].css,
			timeline_styles[o].fill);
	fputs(".a{stroke:#444}.g{stroke:#ddd}.h{fill:#f3f3f3}\n</style>\n", f);
	fprintf(f,
		"<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n"
		"<text x=\"6\" y=\"18\" font-size=\"13\">cpmap: %zu "
		"attempt%s on %zu lane%s in %s%s</text>\n",
		tl->count, tl->count == 1 ? "" : "s", lanes,
		lanes == 1 ? "" : "s", took, when);
	for (int o = 0; o < TIMELINE_OUTCOMES; o++)
		fprintf(
		    f,
		    "<rect x=\"%d\" y=\"30\" width=\"10\" height=\"10\" "
		    "class=\"%s\"/><text x=\"%d\" y=\"39\">%s (%u)</text>\n",
		    6 + o * 130, timeline_styles[o].css, 20 + o * 130,
		    timeline_styles[o].name, outcomes[o]);
	if (tl->count == 0) {
		fprintf(f, "<text x=\"%d\" y=\"%d\">no attempts</text>\n",
			TIMELINE_LEFT, TIMELINE_TOP + 11);
		return fputs("</svg>\n", f) == EOF || ferror(f) ? -1 : 0;
	}
	/* Every other host's lanes on a shaded band. */
	y = TIMELINE_TOP;
	for (size_t i = 0, band = 0, first = 0; i <= tl->count; i++) {
		const struct mark *m = &tl->marks[i];

		if (i > 0 && (i == tl->count || m->host != m[-1].host)) {
			if (band++ % 2 == 1)
				fprintf(f,
					"<rect x=\"0\" y=\"%.0f\" width=\"%d\" "
					"height=\"%.0f\" class=\"h\"/>\n",
					y - 2, TIMELINE_WIDTH,
					(double)first * TIMELINE_LANE);
			y += (double)first * TIMELINE_LANE;
			first = 0;
		}
		if (i < tl->count &&
		    (i == 0 || m->host != m[-1].host || m->lane != m[-1].lane))
			first++;
	}
	timeline_axis(f, span, scale, TIMELINE_TOP - 4,
		      TIMELINE_TOP + (double)lanes * TIMELINE_LANE + 2);

	/* The lanes, each a label and its bars in order of start. */
	y = TIMELINE_TOP - TIMELINE_LANE;
	for (size_t i = 0; i < tl->count;) {
		const struct mark *lane = &tl->marks[i];
		struct timeline_group g = {0};

		y += TIMELINE_LANE;
		fprintf(f, "<text x=\"6\" y=\"%.0f\">", y + 10);
		timeline_lane_label(f, tl, lane);
		fputs("</text>\n", f);
		for (; i < tl->count && tl->marks[i].host == lane->host &&
		       tl->marks[i].lane == lane->lane;
		     i++) {
			const struct mark *m = &tl->marks[i];
			double x = (m->start - t0) * scale;
			double end = m->start + m->duration;

			/* A thin bar joins the group that starts in its
			 * pixel column (merge_px wide); a wide one is its
			 * own. */
			if (g.count > 0 &&
			    (m->duration * scale >= merge_px ||
			     x >= timeline_column_end(g.start - t0, scale,
						      merge_px))) {
				timeline_group_write(f, tl, &g, t0, scale, y);
				g.count = 0;
			}
			if (g.count == 0) {
				memset(&g, 0, sizeof g);
				g.first = i;
				g.start = m->start;
				g.end = end;
				g.low = g.high = m->seq;
			}
			g.count++;
			g.outcomes[m->outcome]++;
			if (end > g.end)
				g.end = end;
			if (m->seq < g.low)
				g.low = m->seq;
			if (m->seq > g.high)
				g.high = m->seq;
			if (m->duration * scale >= merge_px) {
				timeline_group_write(f, tl, &g, t0, scale, y);
				g.count = 0;
			}
		}
		if (g.count > 0)
			timeline_group_write(f, tl, &g, t0, scale, y);
	}
	fputs("</svg>\n", f);
	return ferror(f) ? -1 : 0;
}

/* ---- the file ------------------------------------------------------------ */

/* Render into f, an open temporary file, widening the merging until the
 * picture fits TIMELINE_MAX_BYTES. */
static int
timeline_render_fitting(struct timeline *tl, FILE *f)
{
	for (double merge = 1;; merge *= 2) {
		off_t size;

		if (timeline_render(tl, f, merge) < 0 || fflush(f) == EOF)
			return -1;
		size = ftello(f);
		if (size < 0)
			return -1;
		if ((uint64_t)size <= TIMELINE_MAX_BYTES ||
		    merge >= TIMELINE_PLOT)
			return 0;
		rewind(f);
		if (ftruncate(fileno(f), 0) < 0)
			return -1;
	}
}

int
timeline_write(struct timeline *tl, const char *path, char **cause)
{
	struct stat st;
	char *temp;
	FILE *f;
	int fd, error = 0;
	mode_t mask;

	/* Not a regular file (/dev/stdout, a FIFO): write to it directly. */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) &&
	    !S_ISDIR(st.st_mode)) {
		f = fopen(path, "we");
		if (f == NULL || timeline_render(tl, f, 1) < 0) {
			*cause = xasprintf("--timeline: %s: %s", path,
					   strerror(errno ? errno : EIO));
			if (f != NULL)
				fclose(f);
			return -1;
		}
		if (fclose(f) == EOF) {
			*cause = xasprintf("--timeline: %s: %s", path,
					   strerror(errno));
			return -1;
		}
		return 0;
	}
	/* Beside it, then renamed over it: no reader sees half a picture. */
	temp = xasprintf("%s.XXXXXX", path);
	if ((fd = mkstemp(temp)) < 0) {
		*cause = xasprintf("--timeline: %s: %s", path, strerror(errno));
		free(temp);
		return -1;
	}
	mask = umask(0);
	umask(mask);
	(void)fchmod(fd, 0666 & ~mask);
	errno = 0;
	if ((f = fdopen(fd, "w+")) == NULL) {
		error = errno;
		close(fd);
	} else {
		if (timeline_render_fitting(tl, f) < 0)
			error = errno ? errno : EIO;
		if (fclose(f) == EOF && error == 0)
			error = errno;
		if (error == 0 && rename(temp, path) < 0)
			error = errno;
	}
	if (error != 0) {
		unlink(temp);
		free(temp);
		*cause = xasprintf("--timeline: %s: %s", path, strerror(error));
		return -1;
	}
	free(temp);
	return 0;
}
