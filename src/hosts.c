/*
 * hosts.c - where a run's slots are: the -S specs, the --workers-file, and
 * watching that file while the run goes on.
 *
 * A spec is "[N/][user@]host[:port]" or "[N/]:" (this machine); a list is
 * specs separated by commas; a workers file has one list per line, with
 * blank lines and "#" comments.  Each spec becomes a worker plan: this
 * machine (plain or --persist) or a remote host (plain or --persist).
 *
 * The file is looked at once a second (libuv's stat poll, as GNU
 * parallel's --slf re-reads its file), and re-read when it changed: a host
 * that appears becomes a new worker; a host that disappeared takes no new
 * task and finishes the ones it runs.  A file that names no host (an
 * editor halfway through writing it) changes nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cpmap.h"

struct hosts_watch {
	uv_fs_poll_t poll;
	const struct options *opts;
	bool jobs_given;
	struct pool *pool;
	char **names; /* the hosts the file names now */
	size_t count;
};

int
hosts_parse(const char *text, const struct options *opts, bool jobs_given,
	    struct worker_plan *plan, char **cause)
{
	const char *spec = text, *slash = strchr(text, '/');
	unsigned slots = jobs_given ? opts->jobs : 0;

	if (slash != NULL && slash != spec &&
	    strspn(spec, "0123456789") == (size_t)(slash - spec)) {
		unsigned long n = strtoul(spec, NULL, 10);

		if (n < 1 || n > 100000) {
			*cause = xasprintf("'%s': the slots must be 1 to "
					   "100000",
					   text);
			return -1;
		}
		slots = (unsigned)n;
		spec = slash + 1;
	}
	if (*spec == '\0') {
		*cause = xasprintf("'%s' names no host", text);
		return -1;
	}
	/* Never an option of the transport's, whatever the name. */
	if (*spec == '-') {
		*cause =
		    xasprintf("'%s': a host name cannot start with '-'", spec);
		return -1;
	}
	if (strpbrk(spec, " \t\n") != NULL) {
		*cause = xasprintf("'%s': a host name has no blanks", spec);
		return -1;
	}
	if (strcmp(spec, ":") == 0) {
		*plan = (struct worker_plan){
		    .kind = opts->persist ? &persist_worker : &local_worker,
		    .where = xstrdup("local"),
		    .slots = slots > 0 ? slots : opts->jobs,
		};
		return 0;
	}
	*plan = (struct worker_plan){
	    .kind = opts->persist ? &remote_persist_worker : &remote_worker,
	    .where = xstrdup(spec),
	    .slots = slots,
	};
	return 0;
}

int
hosts_parse_list(const char *list, const struct options *opts, bool jobs_given,
		 struct worker_plan **plans, size_t *count, char **cause)
{
	char *copy = xstrdup(list), *save = NULL;
	int rc = 0;

	for (char *spec = strtok_r(copy, ",", &save); spec != NULL && rc == 0;
	     spec = strtok_r(NULL, ",", &save)) {
		char *end = spec + strlen(spec);

		spec += strspn(spec, " \t");
		while (end > spec &&
		       (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
			*--end = '\0';
		if (*spec == '\0')
			continue;
		*plans = xreallocarray(*plans, *count + 1, sizeof **plans);
		rc = hosts_parse(spec, opts, jobs_given, &(*plans)[*count],
				 cause);
		if (rc == 0)
			(*count)++;
	}
	free(copy);
	return rc;
}

int
hosts_read_file(const char *path, const struct options *opts, bool jobs_given,
		struct worker_plan **plans, size_t *count, char **cause)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	unsigned long number = 0;
	int rc = 0;

	if (f == NULL) {
		*cause =
		    xasprintf("--workers-file %s: %s", path, strerror(errno));
		return -1;
	}
	while (rc == 0 && getline(&line, &cap, f) >= 0) {
		char *hash = strchr(line, '#'), *why = NULL;

		number++;
		if (hash != NULL)
			*hash = '\0';
		line[strcspn(line, "\n")] = '\0';
		rc = hosts_parse_list(line, opts, jobs_given, plans, count,
				      &why);
		if (rc < 0) {
			*cause = xasprintf("--workers-file %s, line %lu: %s",
					   path, number, why);
			free(why);
		}
	}
	free(line);
	fclose(f);
	return rc;
}

void
hosts_free_plans(struct worker_plan *plans, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(plans[i].where);
	free(plans);
}

/* ---- watching the file ------------------------------------------------- */

static bool
hosts_named(char **names, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

static void
hosts_changed_cb(uv_fs_poll_t *handle, int status, const uv_stat_t *prev,
		 const uv_stat_t *now)
{
	struct hosts_watch *w = handle->data;
	struct worker_plan *plans = NULL;
	size_t count = 0;
	char *cause = NULL;
	char **names;
	char buffer[4096];
	size_t len = sizeof buffer;

	(void)prev;
	(void)now;
	if (uv_fs_poll_getpath(handle, buffer, &len) != 0)
		return;
	if (status < 0) {
		log_warn("--workers-file %s: %s; keeping the hosts", buffer,
			 uv_strerror(status));
		return;
	}
	if (hosts_read_file(buffer, w->opts, w->jobs_given, &plans, &count,
			    &cause) < 0) {
		log_warn("%s; keeping the hosts", cause);
		free(cause);
		hosts_free_plans(plans, count);
		return;
	}
	if (count == 0) {
		log_warn("--workers-file %s names no host; keeping the hosts",
			 buffer);
		hosts_free_plans(plans, count);
		return;
	}
	names = xcalloc(count, sizeof *names);
	for (size_t i = 0; i < count; i++) {
		names[i] = xstrdup(plans[i].where);
		if (!hosts_named(w->names, w->count, plans[i].where) &&
		    !hosts_named(names, i, plans[i].where)) {
			log_warn("--workers-file: adding %s", plans[i].where);
			pool_add_worker(w->pool, &plans[i]);
		}
	}
	for (size_t i = 0; i < w->count; i++) {
		if (!hosts_named(names, count, w->names[i])) {
			log_warn("--workers-file: %s is gone from the file: it "
				 "finishes its tasks and takes no more",
				 w->names[i]);
			pool_retire_worker(w->pool, w->names[i]);
		}
		free(w->names[i]);
	}
	free(w->names);
	w->names = names;
	w->count = count;
	hosts_free_plans(plans, count);
}

struct hosts_watch *
hosts_watch_start(uv_loop_t *loop, const char *path, const struct options *opts,
		  bool jobs_given, struct pool *pool)
{
	struct hosts_watch *w = xcalloc(1, sizeof *w);
	int rc;

	w->opts = opts;
	w->jobs_given = jobs_given;
	w->pool = pool;
	w->names = xcalloc(opts->worker_count, sizeof *w->names);
	for (size_t i = 0; i < opts->worker_count; i++)
		if (opts->workers[i].from_file)
			w->names[w->count++] = xstrdup(opts->workers[i].where);
	if ((rc = uv_fs_poll_init(loop, &w->poll)) != 0 ||
	    (rc = uv_fs_poll_start(&w->poll, hosts_changed_cb, path, 1000)) !=
		0)
		fatal("cannot watch %s: %s", path, uv_strerror(rc));
	w->poll.data = w;
	/* Watching the file never keeps the run alive. */
	uv_unref((uv_handle_t *)&w->poll);
	return w;
}

static void
hosts_watch_close_cb(uv_handle_t *handle)
{
	struct hosts_watch *w = handle->data;

	for (size_t i = 0; i < w->count; i++)
		free(w->names[i]);
	free(w->names);
	free(w);
}

void
hosts_watch_stop(struct hosts_watch *w)
{
	if (w != NULL)
		uv_close((uv_handle_t *)&w->poll, hosts_watch_close_cb);
}
