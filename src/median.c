/*
 * median.c - the median of the last runtimes, for --timeout P% (pure).
 *
 * GNU parallel times a task out after P% of the median runtime of the
 * tasks that succeeded so far.  The median here is over the last
 * MEDIAN_KEPT of them, so memory does not grow with the run; it is
 * computed again on each new runtime (a sort of at most MEDIAN_KEPT
 * values), which only runs that ask for P% pay.
 */
#include <stdlib.h>
#include <string.h>

#include "cpmap.h"

#define MEDIAN_KEPT 999

struct median {
	uint64_t values[MEDIAN_KEPT]; /* a ring of the last ones */
	size_t count, next;
	uint64_t median;
};

struct median *
median_create(void)
{
	return xcalloc(1, sizeof(struct median));
}

static int
median_compare(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

void
median_add(struct median *m, uint64_t value)
{
	uint64_t sorted[MEDIAN_KEPT];

	m->values[m->next] = value;
	m->next = (m->next + 1) % MEDIAN_KEPT;
	if (m->count < MEDIAN_KEPT)
		m->count++;
	memcpy(sorted, m->values, m->count * sizeof *sorted);
	qsort(sorted, m->count, sizeof *sorted, median_compare);
	m->median = sorted[(m->count - 1) / 2];
}

bool
median_get(const struct median *m, uint64_t *value)
{
	*value = m != NULL ? m->median : 0;
	return m != NULL && m->count > 0;
}

void
median_free(struct median *m)
{
	free(m);
}
