/*
 * results.c - --results DIR: each task's stdout, stderr and JSON record in
 * DIR/SEQ/, written under a temporary name and renamed into place, so a
 * reader never sees half a file, whatever happens to cpmap meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpmap.h"

static bool results_warned; /* say it once, not once per task */

static void
results_warn(const char *path, int error)
{
	if (!results_warned)
		log_warn("--results: %s: %s", path, strerror(error));
	results_warned = true;
}

/* Write one file of DIR/SEQ atomically: data, or the capture's bytes. */
static void
results_file(const char *dir, const char *name, struct capture *c,
	     const char *data, size_t len)
{
	char *tmp = xasprintf("%s/.%s.tmp", dir, name);
	char *path = xasprintf("%s/%s", dir, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = 0;

	if (fd < 0) {
		results_warn(tmp, errno);
		goto out;
	}
	if (c != NULL)
		rc = capture_write(c, fd);
	else if (data != NULL)
		rc = io_write_all(fd, data, len);
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		results_warn(path, -rc);
		(void)unlink(tmp);
	}
out:
	free(tmp);
	free(path);
}

int
results_prepare(const char *dir, char **cause)
{
	struct stat st;

	if (mkdir(dir, 0777) < 0 && errno != EEXIST) {
		*cause = xasprintf("--results: %s: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		*cause = xasprintf("--results: %s is not a directory", dir);
		return -1;
	}
	return 0;
}

void
results_write(const char *dir, const struct result *r,
	      struct capture *stdout_capture, struct capture *stderr_capture,
	      const char *record, size_t record_len)
{
	char *task_dir = xasprintf("%s/%llu", dir, (unsigned long long)r->seq);

	if (mkdir(task_dir, 0777) < 0 && errno != EEXIST) {
		results_warn(task_dir, errno);
	} else {
		results_file(task_dir, "stdout", stdout_capture, "", 0);
		results_file(task_dir, "stderr", stderr_capture, "", 0);
		results_file(task_dir, "record.json", NULL, record, record_len);
	}
	free(task_dir);
}
