/*
 * wait-state - block until processes reach a state a test waits for.
 *
 *   wait-state gone PID...            every PID has exited (a zombie counts)
 *   wait-state asleep PID WORD...     PID sleeps in a kernel function whose
 *                                     name (/proc/PID/wchan) contains a WORD;
 *                                     fails at once if PID ends first
 *
 * Tests learn that cpmap blocked in a write, or that a killed task died,
 * from here.  It polls a condition and never decides an outcome by how long
 * something took: a slow machine only makes it wait longer, up to a 30 s
 * safety limit (exit 1, with a message naming what never happened).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Is the process there and not a zombie (or dead)? */
static int
alive(const char *pid)
{
	char path[64], line[256];
	FILE *f;
	int live = 0;

	snprintf(path, sizeof path, "/proc/%s/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, "State:", 6) == 0) {
			live = strchr(line, 'Z') == NULL &&
			       strchr(line, 'X') == NULL;
			break;
		}
	}
	fclose(f);
	return live;
}

/* Does the process sleep in a function whose name holds one of words? */
static int
asleep(const char *pid, char **words, int count)
{
	char path[64], wchan[128] = "";
	FILE *f;

	snprintf(path, sizeof path, "/proc/%s/wchan", pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(wchan, sizeof wchan, f) == NULL)
		wchan[0] = '\0';
	fclose(f);
	for (int i = 0; i < count; i++)
		if (strstr(wchan, words[i]) != NULL)
			return 1;
	return 0;
}

int
main(int argc, char **argv)
{
	struct timespec pause = {0, 5 * 1000 * 1000};
	int gone;

	if (argc < 3 || (strcmp(argv[1], "gone") != 0 &&
			 (strcmp(argv[1], "asleep") != 0 || argc < 4))) {
		fprintf(stderr, "usage: wait-state gone PID... | "
				"wait-state asleep PID WORD...\n");
		return 2;
	}
	gone = strcmp(argv[1], "gone") == 0;
	for (int tick = 0; tick < 6000; tick++) {
		if (gone) {
			int any = 0;

			for (int i = 2; i < argc; i++)
				any |= alive(argv[i]);
			if (!any)
				return 0;
		} else {
			if (!alive(argv[2]))
				return 1; /* it ended instead */
			if (asleep(argv[2], argv + 3, argc - 3))
				return 0;
		}
		nanosleep(&pause, NULL);
	}
	fprintf(stderr, "wait-state: %s %s never happened\n", argv[1], argv[2]);
	return 1;
}
