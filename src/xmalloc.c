/*
 * xmalloc.c - allocation that never returns NULL.
 *
 * Running out of memory is not something cpmap can recover from in the
 * middle of a run, so every allocation goes through here and a failure is
 * fatal; callers never check.
 *
 * A struct made once per task (a task, a small input) is kept on a stack of
 * spares when freed and taken from it for the next: a run of a million
 * tiny tasks then allocates as many as are ever alive at once, not one per
 * task.  malloc's own caches hold only a few of a size, and tasks are freed
 * and made in batches of hundreds (--stride).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpmap.h"

void *
xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (p == NULL)
		fatal("out of memory (%zu bytes)", size);
	return p;
}

void *
xcalloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);

	if (p == NULL)
		fatal("out of memory (%zu x %zu bytes)", count, size);
	return p;
}

void *
xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);

	if (p == NULL)
		fatal("out of memory (%zu bytes)", size);
	return p;
}

void *
xreallocarray(void *ptr, size_t count, size_t size)
{
	if (size != 0 && count > SIZE_MAX / size)
		fatal("out of memory (%zu x %zu bytes)", count, size);
	return xrealloc(ptr, count * size);
}

char *
xstrdup(const char *s)
{
	return xmemdup(s, strlen(s) + 1);
}

void *
xmemdup(const void *p, size_t size)
{
	void *copy = xmalloc(size);

	memcpy(copy, p, size);
	return copy;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		fatal("out of memory formatting a message");
	va_end(ap);
	return s;
}

void *
spares_take(struct spares *s)
{
	return s->count > 0 ? s->items[--s->count] : NULL;
}

void
spares_keep(struct spares *s, void *p)
{
	if (!CPMAP_KEEP_SPARES) {
		free(p);
		return;
	}
	if (s->count == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->items = xreallocarray(s->items, s->cap, sizeof *s->items);
	}
	s->items[s->count++] = p;
}
