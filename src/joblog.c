/*
 * joblog.c - --joblog FILE and what --resume reads back from it.
 *
 * The format is GNU parallel's, so that either tool can resume the other's
 * run: a header, then one tab-separated line per finished task,
 *
 *   Seq Host Starttime JobRuntime Send Receive Exitval Signal Command
 *
 * A line waits in memory (joblog_write) until the output it logs has been
 * written; the lines of the tasks written in one turn of the loop then go
 * out in a single write(2) (joblog_flush), so a crash loses at most the
 * lines of that turn, whose tasks --resume runs again.  A write that fails
 * (a full disk) is cut back with ftruncate to the last whole line, so the
 * log never ends in half a line that cpmap wrote; the caller then stops
 * the run.
 *
 * Reading for --resume keeps only the sequence numbers: a sorted array that
 * is searched with bsearch.  Reading for --timeline --from-joblog hands
 * each line's fields to the caller, one line at a time.  Lines it cannot read
 * (another tool's garbage, a last line cut short by a crash) are skipped with a
 * warning: their tasks simply run again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpmap.h"

#define JOBLOG_HEADER                                                          \
	"Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\t"   \
	"Command\n"

struct joblog {
	int fd;
	char *path;
	bool seekable;	    /* a regular file (not a pipe, not /dev/stdout) */
	off_t size;	    /* the end of the last whole line */
	struct buf waiting; /* whole lines not yet written */
};

/* The end of the last whole line of fd's file (a crash may cut one). */
static off_t
joblog_whole_lines(int fd, off_t size)
{
	char block[4096];

	while (size > 0) {
		size_t n =
		    size < (off_t)sizeof block ? (size_t)size : sizeof block;
		ssize_t got = pread(fd, block, n, size - (off_t)n);

		if (got != (ssize_t)n)
			return size; /* unreadable: leave it as it is */
		for (size_t i = n; i > 0; i--)
			if (block[i - 1] == '\n')
				return size - (off_t)(n - i);
		size -= (off_t)n;
	}
	return 0;
}

struct done_set {
	uint64_t *seqs; /* sorted, unique */
	size_t count;
};

struct joblog *
joblog_open(const char *path, bool append, char **cause)
{
	struct joblog *log = xcalloc(1, sizeof *log);
	struct stat st;

	if (strcmp(path, "-") == 0)
		path = "/dev/stdout"; /* as GNU parallel */
	log->fd = open(
	    path, O_RDWR | O_CREAT | O_CLOEXEC | (append ? 0 : O_TRUNC), 0666);
	if (log->fd < 0 && (errno == EACCES || errno == EISDIR ||
			    errno == ENXIO || errno == EINVAL))
		log->fd = open(path,
			       O_WRONLY | O_CREAT | O_CLOEXEC |
				   (append ? 0 : O_TRUNC),
			       0666);
	if (log->fd < 0 || fstat(log->fd, &st) < 0) {
		*cause = xasprintf("--joblog: %s: %s", path, strerror(errno));
		if (log->fd >= 0)
			close(log->fd);
		free(log);
		return NULL;
	}
	log->path = xstrdup(path);
	log->seekable = S_ISREG(st.st_mode);
	if (!log->seekable) {
		(void)io_write_all(log->fd, JOBLOG_HEADER,
				   strlen(JOBLOG_HEADER));
		return log;
	}
	/* Appending after a crash: drop a line cut short first. */
	log->size = joblog_whole_lines(log->fd, st.st_size);
	if (log->size < st.st_size)
		(void)ftruncate(log->fd, log->size);
	if (log->size == 0) {
		int rc =
		    io_write_all(log->fd, JOBLOG_HEADER, strlen(JOBLOG_HEADER));

		if (rc < 0) {
			/* A log without its header is not one --resume
			 * reads: stop before any task runs. */
			*cause =
			    xasprintf("--joblog: %s: %s", path, strerror(-rc));
			(void)ftruncate(log->fd, 0);
			joblog_close(log);
			return NULL;
		}
		log->size = (off_t)strlen(JOBLOG_HEADER);
	}
	if (lseek(log->fd, log->size, SEEK_SET) < 0) {
		*cause = xasprintf("--joblog: %s: %s", path, strerror(errno));
		joblog_close(log);
		return NULL;
	}
	return log;
}

void
joblog_write(struct joblog *log, const struct result *r, const char *command,
	     uint64_t received)
{
	struct buf *line = &log->waiting;
	char *head;
	int exitval, signal;

	/* GNU parallel's values: -1 for a task that never exited. */
	exitval = r->exit_code;
	if (r->error == ERROR_SPAWN)
		exitval = 127;
	else if (r->status != STATUS_OK && exitval == 0)
		exitval = -1; /* exited 0, yet no success: --resume-failed
				 reruns it */
	signal = r->signal;
	/* GNU parallel's Host: ":" for this machine. */
	head = xasprintf(
	    "%llu\t%s\t%.3f\t%10.3f\t0\t%llu\t%d\t%d\t",
	    (unsigned long long)r->seq,
	    r->host == NULL || strcmp(r->host, "local") == 0 ? ":" : r->host,
	    r->start, r->duration, (unsigned long long)received, exitval,
	    signal);
	buf_append_str(line, head);
	free(head);
	/* The log is line-based: a newline in a command is written "\n". */
	for (const char *c = command; *c != '\0'; c++) {
		if (*c == '\n')
			buf_append(line, "\\n", 2);
		else
			buf_append_char(line, *c);
	}
	buf_append_char(line, '\n');
}

bool
joblog_is_file(const struct joblog *log)
{
	return log->seekable;
}

int
joblog_flush(struct joblog *log)
{
	size_t done = 0;
	int rc;

	if (log->waiting.len == 0)
		return 0;
	rc = io_write_counted(log->fd, log->waiting.data, log->waiting.len,
			      &done);
	if (rc == 0) {
		log->size += (off_t)log->waiting.len;
	} else if (log->seekable) {
		/* Leave only whole lines behind: those written before the
		 * failure stay, their tasks are done. */
		const char *nl =
		    done > 0 ? memrchr(log->waiting.data, '\n', done) : NULL;

		if (nl != NULL)
			log->size += (off_t)(nl - log->waiting.data) + 1;
		(void)ftruncate(log->fd, log->size);
		(void)lseek(log->fd, log->size, SEEK_SET);
		log_warn("--joblog: %s: %s", log->path, strerror(-rc));
	} else {
		log_warn("--joblog: %s: %s", log->path, strerror(-rc));
	}
	log->waiting.len = 0;
	return rc;
}

void
joblog_close(struct joblog *log)
{
	if (log == NULL)
		return;
	(void)joblog_flush(log);
	buf_free(&log->waiting);
	close(log->fd);
	free(log->path);
	free(log);
}

static int
joblog_compare(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Split a joblog line into its nine fields (the command keeps its tabs);
 * false if it has fewer. */
static bool
joblog_split(char *line, char *field[9])
{
	char *p = line;

	for (size_t n = 0; n < 8; n++) {
		field[n] = p;
		if ((p = strchr(p, '\t')) == NULL)
			return false;
		*p++ = '\0';
	}
	field[8] = p;
	return true;
}

/* A whole number field; false if it is not one. */
static bool
joblog_long(const char *text, long *value)
{
	char *end;

	*value = strtol(text, &end, 10);
	return text[0] != '\0' && *end == '\0';
}

/* Parse one joblog line into entry (pointing into line); false if it is
 * not one. */
static bool
joblog_parse_line(char *line, struct joblog_entry *entry)
{
	char *field[9], *end;

	if (!joblog_split(line, field))
		return false;
	entry->seq = strtoull(field[0], &end, 10);
	if (field[0][0] < '0' || field[0][0] > '9' || *end != '\0' ||
	    entry->seq == 0)
		return false;
	entry->host = field[1];
	/* GNU parallel pads JobRuntime with spaces; strtod skips them.
	 * --resume needs neither time: a line without them still counts. */
	entry->start = strtod(field[2], &end);
	entry->timed = end != field[2] && *end == '\0';
	entry->runtime = strtod(field[3], &end);
	entry->timed = entry->timed && end != field[3] && *end == '\0' &&
		       entry->runtime >= 0;
	entry->command = field[8];
	return joblog_long(field[6], &entry->exitval) &&
	       joblog_long(field[7], &entry->signal);
}

int
joblog_each(const char *path, joblog_entry_cb each, void *arg, size_t *bad,
	    char **cause)
{
	char *line = NULL;
	size_t size = 0, number = 0;
	ssize_t len;
	FILE *f = fopen(path, "re");

	*bad = 0;
	if (f == NULL) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &size, f)) > 0) {
		struct joblog_entry entry;

		number++;
		if (line[len - 1] != '\n') {
			(*bad)++; /* cut short by a crash */
			continue;
		}
		line[len - 1] = '\0';
		if (number == 1 && strncmp(line, "Seq\t", 4) == 0)
			continue;
		if (!joblog_parse_line(line, &entry)) {
			(*bad)++;
			continue;
		}
		each(arg, &entry);
	}
	free(line);
	if (ferror(f)) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

struct done_set *
joblog_read_done(const char *path, bool failed_too, char **cause)
{
	struct done_set *set = xcalloc(1, sizeof *set);
	size_t cap = 0, bad = 0, number = 0;
	char *line = NULL;
	size_t size = 0;
	ssize_t len;
	FILE *f = fopen(path, "re");

	if (f == NULL) {
		if (errno == ENOENT)
			return set; /* nothing done yet */
		*cause = xasprintf("--joblog: %s: %s", path, strerror(errno));
		free(set);
		return NULL;
	}
	while ((len = getline(&line, &size, f)) > 0) {
		struct joblog_entry entry;

		number++;
		if (line[len - 1] != '\n') {
			log_warn("--joblog: %s: line %zu is cut short (an "
				 "interrupted write?): its task runs again",
				 path, number);
			continue;
		}
		line[len - 1] = '\0';
		if (number == 1 && strncmp(line, "Seq\t", 4) == 0)
			continue;
		if (!joblog_parse_line(line, &entry)) {
			bad++;
			continue;
		}
		/* --resume-failed: only a success counts as done. */
		if (failed_too && (entry.exitval != 0 || entry.signal != 0))
			continue;
		if (set->count == cap) {
			cap = cap ? cap * 2 : 256;
			set->seqs =
			    xreallocarray(set->seqs, cap, sizeof *set->seqs);
		}
		set->seqs[set->count++] = entry.seq;
	}
	free(line);
	fclose(f);
	if (bad > 0)
		log_warn("--joblog: %s: %zu line%s not understood: their "
			 "tasks run again",
			 path, bad, bad == 1 ? "" : "s");
	if (set->count > 0) {
		size_t kept = 1;

		qsort(set->seqs, set->count, sizeof *set->seqs, joblog_compare);
		for (size_t i = 1; i < set->count; i++)
			if (set->seqs[i] != set->seqs[kept - 1])
				set->seqs[kept++] = set->seqs[i];
		set->count = kept;
	}
	return set;
}

bool
done_set_has(const struct done_set *set, uint64_t seq)
{
	return set != NULL && set->count > 0 &&
	       bsearch(&seq, set->seqs, set->count, sizeof *set->seqs,
		       joblog_compare) != NULL;
}

void
done_set_free(struct done_set *set)
{
	if (set == NULL)
		return;
	free(set->seqs);
	free(set);
}

int
joblog_check_blocks(const char *path, const char *signature, char **cause)
{
	char *line = NULL;
	size_t size = 0;
	ssize_t len;
	FILE *f = fopen(path, "re");
	int rc = 0;

	if (f == NULL)
		return 0; /* nothing done yet, or read_done says why */
	while (rc == 0 && (len = getline(&line, &size, f)) > 0) {
		const char *found;
		size_t slen = strlen(signature);

		if (line[0] < '0' || line[0] > '9' || line[len - 1] != '\n')
			continue; /* the header, or a line read_done skips */
		line[--len] = '\0';
		found = strstr(line, " # cpmap --block ");
		if (found != NULL && (size_t)(line + len - found) == slen &&
		    memcmp(found, signature, slen) == 0)
			continue;
		*cause = xasprintf(
		    "--resume: the joblog %s was not made with these blocks "
		    "(it has '%s', this run '%s'): resume with the same "
		    "--block, separators and --header",
		    path, found != NULL ? found + 3 : "no --pipe",
		    signature + 3);
		rc = -1;
	}
	free(line);
	fclose(f);
	return rc;
}
