/*
 * buf.c - a growable byte buffer, kept NUL-terminated so that its bytes can
 * be used as a C string when they hold no NUL.
 */
#include <stdlib.h>
#include <string.h>

#include "cpmap.h"

void
buf_reserve(struct buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;

	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

void
buf_append_str(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

char *
buf_steal(struct buf *b, size_t *len)
{
	char *data;

	buf_reserve(b, 0);
	data = b->data;
	if (len != NULL)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return data;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
