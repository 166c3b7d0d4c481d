/*
 * test_timeline.c - unit tests for timeline.c: the SVG a list of attempts
 * makes (lanes, bars, titles, escaping, ticks, merging, packing) and the
 * bounds it keeps (bytes per attempt, the file's size).
 *
 * The picture is checked as text here; tests/bats/timeline.bats renders it
 * with a real SVG renderer and looks at its pixels.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpmap.h"
#include "tap.h"

/* Render tl with merge_px into a string (free it). */
static char *
render(struct timeline *tl, double merge_px)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL || timeline_render(tl, f, merge_px) < 0)
		abort();
	fclose(f);
	return text;
}

/* How many times needle occurs in haystack. */
static size_t
count(const char *haystack, const char *needle)
{
	size_t n = 0;

	for (const char *p = haystack; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static void
add(struct timeline *tl, uint64_t seq, const char *host, unsigned slot,
    double start, double end, enum timeline_outcome outcome, int code,
    const char *text)
{
	struct timeline_attempt a = {
	    .seq = seq,
	    .host = host,
	    .slot = slot,
	    .attempt = 1,
	    .start = start,
	    .end = end,
	    .outcome = outcome,
	    .code = code,
	    .text = text,
	    .text_len = text != NULL ? strlen(text) : 0,
	};

	timeline_add(tl, &a);
}

static void
test_bars_and_titles(void)
{
	struct timeline *tl = timeline_create();
	char *svg;

	add(tl, 1, "local", 1, 1000, 1002, TIMELINE_OK, 0, "a");
	add(tl, 2, "local", 2, 1000, 1001, TIMELINE_FAILED, 3, "b");
	add(tl, 3, "local", 1, 1002, 1010, TIMELINE_SIGNALED, 9, "c");
	add(tl, 4, "local", 2, 1001, 1004, TIMELINE_TIMEOUT, 15, "d");
	add(tl, 5, "local", 2, 1004, 1005, TIMELINE_SPAWN, 0, "e");
	add(tl, 6, "local", 3, 1000, 1003, TIMELINE_LOST, -1, "f");
	svg = render(tl, 1);
	tap_ok(strncmp(svg, "<?xml", 5) == 0, "an XML declaration first");
	tap_is_int((long long)count(svg, "<title>seq "), 6, "a title a bar");
	tap_ok(strstr(svg, "<title>seq 2 · input: b · exit 3 · 1.000 s "
			   "(at 0.000 s) · local slot 2</title>") != NULL,
	       "a failed attempt's title: seq, input, exit, duration, host");
	tap_ok(strstr(svg, "signal SIGKILL") != NULL, "a signal by name");
	tap_ok(strstr(svg, "timed out (SIGTERM)") != NULL, "a timeout");
	tap_ok(strstr(svg, "could not start") != NULL, "a spawn error");
	tap_ok(strstr(svg, "lost with its worker") != NULL, "a lost attempt");
	tap_is_int((long long)count(svg, ">slot "), 3, "three lanes");
	tap_ok(strstr(svg, "on 3 lanes in 10.000 s") != NULL, "the heading");
	tap_ok(strstr(svg, "ok (1)") != NULL && strstr(svg, "lost (1)"),
	       "the legend counts outcomes");
	/* 10 s: ticks every 2 s, in seconds. */
	tap_ok(strstr(svg, ">0s</text>") && strstr(svg, ">2s</text>") &&
		   strstr(svg, ">10s</text>") && !strstr(svg, ">12s</text>") &&
		   !strstr(svg, ">1s</text>"),
	       "ticks 0s 2s ... 10s");
	/* Seq 3 runs from 2 s to 10 s: x = 170 + 200, 800 px (less a gap). */
	tap_ok(strstr(svg, "<rect x=\"370.0\" y=\"58\" width=\"799.0\" "
			   "height=\"12\" class=\"s\"><title>seq 3 ") != NULL,
	       "a bar where its times put it");
	free(svg);
	timeline_free(tl);
}

static void
test_escaping(void)
{
	struct timeline *tl = timeline_create();
	char long_text[200];
	char *svg;

	add(tl, 1, "h<1>", 1, 0, 1, TIMELINE_OK, 0, "<&\"'>");
	add(tl, 2, "h<1>", 2, 0, 1, TIMELINE_OK, 0, "bad \xff\xc3( \x01 é");
	memset(long_text, 'x', sizeof long_text - 1);
	long_text[sizeof long_text - 1] = '\0';
	memcpy(long_text + 38, "é", 2); /* bytes 38-39: whole */
	add(tl, 3, "h<1>", 3, 0, 1, TIMELINE_OK, 0, long_text);
	memset(long_text, 'x', sizeof long_text - 1);
	memcpy(long_text + 39, "é", 2); /* bytes 39-40: cut at 40 */
	add(tl, 4, "h<1>", 4, 0, 1, TIMELINE_OK, 0, long_text);
	svg = render(tl, 1);
	tap_ok(strstr(svg, "input: &lt;&amp;&quot;'&gt; · ") != NULL,
	       "markup in an input is escaped");
	tap_ok(strstr(svg, "input: bad \\xFF\\xC3( \\x01 é · ") != NULL,
	       "bytes that are not UTF-8, and controls, as \\xHH");
	tap_ok(strstr(svg, "h&lt;1&gt; slot 1</title>") != NULL,
	       "a host name is escaped");
	tap_ok(strstr(svg, "xxé… · ") != NULL, "a long input is truncated");
	tap_ok(strstr(svg, "xxx… · ") != NULL && !strstr(svg, "\\xC3…"),
	       "... never inside a character");
	free(svg);
	timeline_free(tl);
}

static void
test_hosts(void)
{
	struct timeline *tl = timeline_create();
	char *svg;

	add(tl, 1, "alpha", 1, 0, 1, TIMELINE_OK, 0, "1");
	add(tl, 2, "local", 3, 0, 1, TIMELINE_OK, 0, "2");
	add(tl, 3, "alpha", 2, 0, 1, TIMELINE_OK, 0, "3");
	add(tl, 4, "alpha", 1, 1, 2, TIMELINE_OK, 0, "4");
	svg = render(tl, 1);
	tap_ok(strstr(svg, ">alpha · slot 1</text>") != NULL &&
		   strstr(svg, ">alpha · slot 2</text>") != NULL &&
		   strstr(svg, ">local · slot 3</text>") != NULL,
	       "lanes are labelled with host and slot");
	tap_ok(strstr(svg, "alpha · slot 2") < strstr(svg, "local · slot 3"),
	       "a host's lanes together, in order of first appearance");
	tap_is_int((long long)count(svg, "class=\"h\""), 1,
		   "the second host on a shaded band");
	free(svg);
	timeline_free(tl);
}

static void
test_packing(void)
{
	struct timeline *tl = timeline_create();
	char *svg;

	/* No slots (a joblog): first free lane at the start. */
	add(tl, 1, ":", 0, 0, 10, TIMELINE_OK, 0, "1");
	add(tl, 2, ":", 0, 1, 2, TIMELINE_OK, 0, "2");
	add(tl, 3, ":", 0, 2.5, 4, TIMELINE_OK, 0, "3");
	add(tl, 4, ":", 0, 3, 5, TIMELINE_OK, 0, "4");
	add(tl, 5, ":", 0, 2, 3, TIMELINE_OK, 0, "5");	/* lane 2 again */
	add(tl, 6, "b", 0, 0, 10, TIMELINE_OK, 0, "6"); /* its own host */
	svg = render(tl, 1);
	tap_ok(strstr(svg, "on 4 lanes") != NULL, "packed into 3 + 1 lanes");
	tap_ok(strstr(svg, "<title>seq 5 · input: 5 · exit 0 · 1.000 s (at "
			   "2.000 s) · local slot 2") != NULL,
	       "an attempt takes the first lane free at its start");
	tap_ok(strstr(svg, "seq 3 · input: 3 · exit 0 · 1.500 s (at 2.500 s) "
			   "· local slot 3") != NULL,
	       "... or a new one");
	free(svg);
	timeline_free(tl);
}

static void
test_ticks(void)
{
	static const struct {
		double span;
		const char *want, *not ;
	} cases[] = {
	    {0.05, ">50 ms</text>", ">60 ms</text>"},
	    {0.05, ">0 ms</text>", ">5 ms</text>"},
	    {0.0004, ">400 µs</text>", ">500 µs</text>"},
	    {1.7, ">1.5s</text>", ">2s</text>"},
	    {1.7, ">0.5s</text>", ">0.2s</text>"},
	    {100, ">100s</text>", ">10s</text>"},
	    {37, ">35s</text>", ">40s</text>"},
	    {3600, ">3500s</text>", ">3600s</text>"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct timeline *tl = timeline_create();
		char *svg;

		add(tl, 1, NULL, 1, 5, 5 + cases[i].span, TIMELINE_OK, 0, "");
		svg = render(tl, 1);
		tap_ok(strstr(svg, cases[i].want) != NULL &&
			   strstr(svg, cases[i].not ) == NULL,
		       "a span of %g s: %s, not %s", cases[i].span,
		       cases[i].want, cases[i].not );
		free(svg);
		timeline_free(tl);
	}
}

static void
test_merging(void)
{
	struct timeline *tl = timeline_create();
	char *svg;

	/* 1280 attempts of 1/128 s (0.78125 px, exact in binary), back to
	 * back, over 10 s: a bar starts a group, the next one in its pixel
	 * joins it. */
	for (unsigned i = 0; i < 1280; i++)
		add(tl, i + 1, NULL, 1, i / 128.0, (i + 1) / 128.0,
		    i == 640 ? TIMELINE_FAILED : TIMELINE_OK, i == 640, "x");
	svg = render(tl, 1);
	tap_ok(count(svg, "<rect x=") <= 1000 + 6 + 2,
	       "thin bars merge: at most a bar a pixel (%zu)",
	       count(svg, "<rect x="));
	tap_ok(strstr(svg, "<title>2 attempts (seq 1 to 2), from 0.000 s "
			   "to 15.6 ms: 2 ok · local slot 1</title>") != NULL,
	       "a merged bar's title counts its attempts");
	tap_ok(strstr(svg,
		      "class=\"f\"><title>2 attempts (seq 641 to "
		      "642), from 5.000 s to 5.016 s: 1 ok, 1 failed") != NULL,
	       "one failure among them colours the bar");
	free(svg);
	svg = render(tl, 8);
	tap_ok(count(svg, "<rect x=") <= 125 + 6 + 2 + 1,
	       "merging wider (8 px): fewer bars (%zu)",
	       count(svg, "<rect x="));
	free(svg);
	timeline_free(tl);
}

static void
test_empty(void)
{
	struct timeline *tl = timeline_create();
	char *svg = render(tl, 1);

	tap_ok(strstr(svg, "no attempts") != NULL && strstr(svg, "</svg>"),
	       "no attempt: a picture that says so");
	free(svg);
	timeline_free(tl);
}

/* 100k attempts: compact in memory, at most 5 MB on disk. */
static void
test_bounds(void)
{
	struct timeline *tl = timeline_create();
	char text[64], dir[] = "/tmp/test_timeline.XXXXXX", *path,
		       *cause = NULL;
	FILE *f;
	long size;

	/* 1000 lanes of 100 attempts 10 px wide each: nothing merges at
	 * 1 px, so the writer has to merge more to stay under 5 MB. */
	for (unsigned i = 0; i < 100000; i++) {
		snprintf(text, sizeof text,
			 "input <%u> & a text long enough to be cut short", i);
		add(tl, i + 1, "some-host.example.org", i % 1000 + 1,
		    (double)(i / 1000), (double)(i / 1000) + 0.99,
		    i % 7 ? TIMELINE_OK : TIMELINE_FAILED, i % 7 ? 0 : 1, text);
	}
	tap_ok(timeline_memory(tl) <= 100000 * (48 + 40) * 1.4,
	       "100k attempts take %zu bytes", timeline_memory(tl));
	if (mkdtemp(dir) == NULL)
		abort();
	path = xasprintf("%s/t.svg", dir);
	tap_is_int(timeline_write(tl, path, &cause), 0, "written");
	f = fopen(path, "r");
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fclose(f);
	tap_ok(size > 100000 && size <= (long)TIMELINE_MAX_BYTES,
	       "the file is at most 5 MB: %ld bytes", size);
	unlink(path);
	free(path);
	/* A directory that does not exist: an error, no file. */
	path = xasprintf("%s/no/t.svg", dir);
	tap_is_int(timeline_write(tl, path, &cause), -1, "unwritable: -1");
	tap_ok(cause != NULL && strstr(cause, "No such file") != NULL,
	       "... and why: %s", cause ? cause : "(none)");
	free(cause);
	free(path);
	rmdir(dir);
	timeline_free(tl);
}

int
main(void)
{
	test_bars_and_titles();
	test_escaping();
	test_hosts();
	test_packing();
	test_ticks();
	test_merging();
	test_empty();
	test_bounds();
	return tap_done();
}
