/*
 * results.c - --results DIR: each task's stdout, stderr and JSON record in
 * DIR/SEQ/, written under a temporary name and renamed into place, so a
 * reader never sees half a file, whatever happens to cpmap meanwhile.
 *
 * The record is streamed from the captures (json_record_write) into its
 * file and, with --json, to stdout in the same pass: a task's output is
 * read back and encoded once, in pieces, whatever its size.  Whatever
 * cannot be written is said once and makes the run's exit status 255
 * (results_failed), but the run goes on and stdout still gets its records.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpmap.h"

static bool results_failure; /* something was not written (said once) */

bool
results_failed(void)
{
	return results_failure;
}

static void
results_warn(const char *path, int error)
{
	if (!results_failure)
		log_warn("--results: %s: %s", path, strerror(error));
	results_failure = true;
}

/* The record's two destinations: its file and, with --json, stdout. */
struct results_tee {
	int fd;
	int error; /* the file's first failed write */
	json_sink_cb also;
	void *arg;
	int also_error; /* stdout's first failure: feed it no more */
};

static int
results_tee_piece(void *arg, const char *data, size_t len)
{
	struct results_tee *tee = arg;

	if (tee->error == 0)
		tee->error = io_write_all(tee->fd, data, len);
	if (tee->also != NULL && tee->also_error == 0)
		tee->also_error = tee->also(tee->arg, data, len);
	/* Stop encoding only when nobody takes the record any more. */
	if (tee->error != 0 && (tee->also == NULL || tee->also_error != 0))
		return tee->error;
	return 0;
}

/*
 * Write one file of DIR/SEQ atomically: the capture's bytes, or the
 * record (r), which also goes to also(arg).  False if the file could not
 * be opened, with nothing given to also.
 */
static bool
results_file(const char *dir, const char *name, struct capture *c,
	     const struct result *r, struct capture *const captures[2],
	     json_sink_cb also, void *arg)
{
	char *tmp = xasprintf("%s/.%s.tmp", dir, name);
	char *path = xasprintf("%s/%s", dir, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = 0;

	if (fd < 0) {
		results_warn(tmp, errno);
		free(tmp);
		free(path);
		return false;
	}
	if (r != NULL) {
		struct results_tee tee = {.fd = fd, .also = also, .arg = arg};

		/* The sink fails only with the file: else rc is a capture's. */
		rc = json_record_write(r, captures[0], captures[1],
				       results_tee_piece, &tee);
		if (tee.error != 0)
			rc = tee.error;
	} else if (c != NULL) {
		rc = capture_write(c, fd);
	}
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		results_warn(path, -rc);
		(void)unlink(tmp);
	}
	free(tmp);
	free(path);
	return true;
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
	if (access(dir, W_OK | X_OK) < 0) {
		*cause = xasprintf("--results: %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

void
results_write(const char *dir, const struct result *r,
	      struct capture *stdout_capture, struct capture *stderr_capture,
	      json_sink_cb also, void *arg)
{
	char *task_dir = xasprintf("%s/%llu", dir, (unsigned long long)r->seq);
	struct capture *captures[2] = {stdout_capture, stderr_capture};
	bool written = false;

	if (mkdir(task_dir, 0777) < 0 && errno != EEXIST) {
		results_warn(task_dir, errno);
	} else {
		results_file(task_dir, "stdout", stdout_capture, NULL, NULL,
			     NULL, NULL);
		results_file(task_dir, "stderr", stderr_capture, NULL, NULL,
			     NULL, NULL);
		written = results_file(task_dir, "record.json", NULL, r,
				       captures, also, arg);
	}
	/* The directory failed us: stdout still gets the record. */
	if (!written && also != NULL)
		(void)json_record_write(r, stdout_capture, stderr_capture, also,
					arg);
	free(task_dir);
}
