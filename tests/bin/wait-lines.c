/*
 * wait-lines - block until FILE holds at least N lines (or 30 s pass).
 *
 *   wait-lines FILE N
 *
 * Tests learn that tasks have started from a file that fifo-wait -s appends
 * to.  This waits on that condition; it never decides an outcome by how long
 * something took, so a slow, shared machine only makes it wait longer.
 * Exit 0 when the condition holds, 1 on the 30 s safety limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long
count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	long lines = 0;
	int c;

	if (f == NULL)
		return 0;
	while ((c = getc(f)) != EOF)
		lines += c == '\n';
	fclose(f);
	return lines;
}

int
main(int argc, char **argv)
{
	struct timespec pause = {0, 5 * 1000 * 1000};
	long want;

	if (argc != 3) {
		fprintf(stderr, "usage: wait-lines FILE N\n");
		return 2;
	}
	want = strtol(argv[2], NULL, 10);
	for (int i = 0; i < 6000; i++) {
		if (count_lines(argv[1]) >= want)
			return 0;
		nanosleep(&pause, NULL);
	}
	fprintf(stderr, "wait-lines: %s never reached %ld lines\n", argv[1],
		want);
	return 1;
}
