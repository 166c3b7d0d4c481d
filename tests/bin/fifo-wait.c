/*
 * fifo-wait - a task whose timing a test controls without sleeping.
 *
 *   fifo-wait [-s FILE] GATE [STATUS [WORD ...]]
 *
 * Appends its pid and the words to FILE (when given: the test learns the
 * task has started, e.g. by reading a FIFO), then blocks until GATE (a FIFO)
 * is opened for writing and closed, then prints the words on stdout and
 * exits with STATUS (default 0).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	const char *started = NULL;
	char buf[256];
	int i = 1, fd, status = 0;

	if (argc > 2 && strcmp(argv[1], "-s") == 0) {
		started = argv[2];
		i = 3;
	}
	if (i >= argc) {
		fprintf(
		    stderr,
		    "usage: fifo-wait [-s FILE] GATE [STATUS [WORD ...]]\n");
		return 2;
	}
	if (started != NULL) {
		FILE *f = fopen(started, "a");

		if (f == NULL) {
			perror(started);
			return 2;
		}
		fprintf(f, "%ld", (long)getpid());
		for (int k = i + 2; k < argc; k++)
			fprintf(f, " %s", argv[k]);
		fputc('\n', f);
		fclose(f);
	}
	if ((fd = open(argv[i], O_RDONLY)) < 0) {
		perror(argv[i]);
		return 2;
	}
	while (read(fd, buf, sizeof buf) > 0)
		;
	close(fd);
	if (i + 1 < argc)
		status = atoi(argv[i + 1]);
	for (int k = i + 2; k < argc; k++)
		printf("%s%s", argv[k], k + 1 < argc ? " " : "\n");
	return status;
}
