/*
 * gather.c - the inputs of the next task: a chunk taken from the reader.
 *
 * A task gets one input, or up to --chunk of them (-n), or as many as fit
 * in --chunk-bytes (-X, -m).  The pool asks for the next chunk only when it
 * can start a task, so the reader reads no further than the run needs.  A
 * bad input (one the reader could not make sense of) is held back until
 * the chunk before it has gone: it becomes a task of its own, in its place
 * in the order, whose result says what is wrong.
 */
#include <stdlib.h>

#include "cpmap.h"

struct gather {
	const struct options *opts;
	struct input_reader *reader;
	struct input **chunk; /* inputs gathered for the next task */
	size_t count;
	size_t bytes;	    /* their bytes (-X, -m) */
	struct input *held; /* a bad input waiting for its chunk to start */
	bool done;	    /* the reader has no more, or we stopped it */
};

struct gather *
gather_create(const struct options *opts, struct input_reader *reader)
{
	struct gather *g = xcalloc(1, sizeof *g);

	g->opts = opts;
	g->reader = reader;
	g->chunk = xcalloc(opts->chunk, sizeof *g->chunk);
	return g;
}

void
gather_free(struct gather *g)
{
	if (g == NULL)
		return;
	for (size_t i = 0; i < g->count; i++)
		input_free(g->chunk[i]);
	free(g->chunk);
	input_free(g->held);
	free(g);
}

bool
gather_next(struct gather *g)
{
	while (!g->done && g->held == NULL && g->count < g->opts->chunk) {
		struct input *in;
		int rc = input_next(g->reader, &in);

		if (rc == 0)
			return false; /* the reader calls back */
		if (rc < 0) {
			g->done = true;
			break;
		}
		if (in->error != NULL) {
			g->held = in; /* after the chunk before it */
		} else {
			g->chunk[g->count++] = in;
			g->bytes += in->len + 1;
			if (g->opts->chunk_bytes > 0 &&
			    g->bytes >= g->opts->chunk_bytes)
				return true; /* -X: as many as fit */
		}
	}
	return g->count > 0 &&
	       (g->count == g->opts->chunk || g->done || g->held != NULL);
}

struct input **
gather_take(struct gather *g, size_t *count)
{
	*count = g->count;
	g->count = 0;
	g->bytes = 0;
	return g->chunk;
}

struct input *
gather_take_bad(struct gather *g)
{
	struct input *bad = g->held;

	if (bad == NULL || g->count > 0)
		return NULL;
	g->held = NULL;
	return bad;
}

bool
gather_has_bad(const struct gather *g)
{
	return g->held != NULL;
}

bool
gather_input_done(const struct gather *g)
{
	return g->done;
}

bool
gather_drained(const struct gather *g)
{
	return g->done && g->held == NULL && g->count == 0;
}

bool
gather_stop(struct gather *g)
{
	/* Was anything left?  The reader may not have seen its end yet. */
	bool left = (!g->done && !input_exhausted(g->reader)) || g->count > 0 ||
		    g->held != NULL;

	input_stop(g->reader);
	for (size_t i = 0; i < g->count; i++)
		input_free(g->chunk[i]);
	g->count = 0;
	g->bytes = 0;
	input_free(g->held);
	g->held = NULL;
	g->done = true;
	return left;
}
