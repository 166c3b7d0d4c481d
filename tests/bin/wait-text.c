/*
 * wait-text - block until FILE holds TEXT (or 30 s pass).
 *
 *   wait-text [-t TOUCHED] FILE TEXT
 *
 * Tests learn that cpmap has said something (a line on its stderr) from
 * here, as wait-lines learns that tasks started: it polls a condition and
 * never decides an outcome by how long something took.  With -t it also
 * sets TOUCHED's times to now every 200 ms while it waits: cpmap looks at a
 * --workers-file by its stat, and a change made before its first look
 * would otherwise go unseen.  Exit 0 when FILE holds TEXT, 1 on the 30 s
 * safety limit (with a message), 2 on bad usage.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Does the file at path hold text?  (Read whole: these files are small.) */
static int
holds(const char *path, const char *text)
{
	FILE *f = fopen(path, "r");
	char *data = NULL;
	size_t len = 0, cap = 0, n;
	int found;

	if (f == NULL)
		return 0;
	do {
		if (len + 4096 + 1 > cap) {
			char *bigger =
			    realloc(data, cap = (len + 4096 + 1) * 2);

			if (bigger == NULL) {
				free(data);
				fclose(f);
				return 0;
			}
			data = bigger;
		}
		n = fread(data + len, 1, 4096, f);
		len += n;
	} while (n > 0);
	fclose(f);
	data[len] = '\0';
	found = strstr(data, text) != NULL;
	free(data);
	return found;
}

int
main(int argc, char **argv)
{
	struct timespec pause = {0, 5 * 1000 * 1000};
	const char *touched = NULL;

	if (argc == 5 && strcmp(argv[1], "-t") == 0) {
		touched = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: wait-text [-t TOUCHED] FILE TEXT\n");
		return 2;
	}
	for (int i = 0; i < 6000; i++) {
		if (holds(argv[1], argv[2]))
			return 0;
		if (touched != NULL && i % 40 == 0)
			(void)utimensat(AT_FDCWD, touched, NULL, 0);
		nanosleep(&pause, NULL);
	}
	fprintf(stderr, "wait-text: %s never held '%s'\n", argv[1], argv[2]);
	return 1;
}
