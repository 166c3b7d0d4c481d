/*
 * agent.c - `cpmap --worker`: the remote agent in C, used instead of the sh
 * agent (agent_script.c) when a host has cpmap installed with the same
 * protocol version.  It speaks the same protocol on stdin and stdout
 * (agent.sh says it in full):
 *
 *   V\n<exports line>\n                        the session's environment
 *   P len mode\n<path>\n<bytes>                 put a file
 *   T seq inlen nret nrm slot\n<words line>\n<paths, a line each><stdin>
 *   K seq signal\n                             signal it
 *   F len\n<path>\n<bytes>                      a returned file
 *   E len\n<message>                           why its files failed
 *   R seq exit signal outlen errlen\n<stdout><stderr>
 *
 * A P is written as it comes, to a file opened at its header; a T's
 * returns are read whole (io_read_file) once the task is over.
 *
 * It runs a task as the local worker does: one vfork and exec (child.c),
 * no shell, when the words are the quoted words that remote.c writes
 * (shquote_parse_exec reads them back); any other line runs under /bin/sh
 * -c.  A task's CPMAP_SEQ and CPMAP_SLOT come from its T; CPMAP_HOST, and
 * what --env sends, from the session's V request (its environment).  A
 * task is the leader of its own process group, and a death by signal is
 * reported as such.  Tasks run one at a time, in the order they came.  EOF
 * on stdin (cpmap or its connection went away) kills the running task's
 * group and ends the worker once it is reaped.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"

struct agent_task {
	unsigned long long seq;
	unsigned slot; /* its CPMAP_SLOT */
	char *command; /* "exec " and its words line, NUL-terminated */
	size_t command_len;
	char *input; /* its stdin bytes */
	size_t input_len;
	char **paths; /* nret to return, then nrm to remove */
	size_t nret, nrm, npaths;
	char *fail; /* a file put for it failed: why, or NULL */
	STAILQ_ENTRY(agent_task) entry;
};

enum agent_read_state {
	AGENT_HEADER,  /* reading a request's first line */
	AGENT_WORDS,   /* reading a T request's words line */
	AGENT_PATHS,   /* reading a T request's paths */
	AGENT_INPUT,   /* reading a T request's stdin bytes */
	AGENT_PUT,     /* reading a P request's path */
	AGENT_EXPORTS, /* reading a V request's exports */
	AGENT_PUT_DATA /* reading a P request's bytes */
};

static struct {
	uv_loop_t *loop;
	uv_pipe_t in;
	bool eof;
	enum agent_read_state state;
	struct buf line;	    /* a line not yet complete */
	struct agent_task *reading; /* the T request being read */
	STAILQ_HEAD(, agent_task) queue;
	struct agent_task *running; /* the task whose process runs */
	struct process *process;
	struct buf out, err; /* its output so far */
	int status;	     /* the worker's exit status */
	int put_fd;	     /* the P file being written, or -1 */
	size_t put_left;     /* ... bytes still due */
	unsigned put_mode;
	char *put_path;
	struct buf fail; /* why files put since the last T failed */
	char *host;	 /* CPMAP_HOST, as the session's V set it */
} agent;

static void agent_next(void);

static void
agent_task_free(struct agent_task *t)
{
	if (t == NULL)
		return;
	free(t->command);
	free(t->input);
	for (size_t i = 0; i < t->npaths; i++)
		free(t->paths[i]);
	free(t->paths);
	free(t->fail);
	free(t);
}

static void
agent_process_read_cb(void *arg, int stream, const char *data, size_t len)
{
	(void)arg;
	buf_append(stream == 1 ? &agent.out : &agent.err, data, len);
}

/* Add a line to why a task's files failed. */
static void
agent_why(struct buf *why, const char *what, const char *path, int error)
{
	if (why->len > 0)
		buf_append_str(why, "; ");
	buf_append_str(why, what);
	buf_append_str(why, path);
	buf_append_str(why, ": ");
	buf_append_str(why, strerror(error));
}

/* Its returns as F frames, then its cleanup: false if nobody reads. */
static bool
agent_files(struct agent_task *t, bool ran, struct buf *why)
{
	struct buf data = {0};
	char header[64];
	bool ok = true;
	int n, rc;

	for (size_t i = 0; ran && ok && i < t->nret; i++) {
		data.len = 0;
		rc = io_read_file(t->paths[i], &data);
		if (rc == -ENOENT)
			continue; /* as GNU parallel: nothing to bring back */
		if (rc < 0) {
			agent_why(why, "cannot return ", t->paths[i], -rc);
			continue;
		}
		n = snprintf(header, sizeof header, "F %zu\n", data.len);
		ok = io_write_all(STDOUT_FILENO, header, (size_t)n) >= 0 &&
		     io_write_all(STDOUT_FILENO, t->paths[i],
				  strlen(t->paths[i])) >= 0 &&
		     io_write_all(STDOUT_FILENO, "\n", 1) >= 0 &&
		     io_write_all(STDOUT_FILENO, data.data, data.len) >= 0;
	}
	buf_free(&data);
	for (size_t i = t->nret; i < t->npaths; i++) {
		(void)unlink(t->paths[i]);
		io_remove_parents(t->paths[i]);
	}
	return ok;
}

/* Answer the task (its files, then its R), then drop it. */
static void
agent_answer(struct agent_task *t, bool ran, int exit_code, int sig)
{
	struct buf why = {0};
	char header[128];
	int n;
	bool ok;

	if (t->fail != NULL)
		buf_append_str(&why, t->fail);
	ok = agent_files(t, ran, &why);
	if (ok && why.len > 0) {
		buf_append_char(&why, '\n');
		n = snprintf(header, sizeof header, "E %zu\n", why.len);
		ok = io_write_all(STDOUT_FILENO, header, (size_t)n) >= 0 &&
		     io_write_all(STDOUT_FILENO, why.data, why.len) >= 0;
	}
	n = snprintf(header, sizeof header, "R %llu %d %d %zu %zu\n", t->seq,
		     exit_code, sig, agent.out.len, agent.err.len);
	if (!ok || io_write_all(STDOUT_FILENO, header, (size_t)n) < 0 ||
	    io_write_all(STDOUT_FILENO, agent.out.data, agent.out.len) < 0 ||
	    io_write_all(STDOUT_FILENO, agent.err.data, agent.err.len) < 0) {
		/* Nobody reads the answers: there is nothing more to do. */
		agent.eof = true;
		STAILQ_INIT(&agent.queue);
	}
	buf_free(&why);
	agent.out.len = agent.err.len = 0;
	agent_task_free(t);
}

/* The task is over: its answer, then the next one. */
static void
agent_process_closed_cb(void *arg, int wait_status)
{
	struct attempt_end end;

	(void)arg;
	attempt_end_status(&end, wait_status);
	agent_answer(agent.running, true,
		     end.signal != 0 ? 128 + end.signal : end.exit_code,
		     end.signal);
	agent.running = NULL;
	agent.process = NULL;
	agent_next();
}

static const struct process_callbacks agent_process_callbacks = {
    .read = agent_process_read_cb,
    .closed = agent_process_closed_cb,
};

/* The session's environment (V): every task of it gets it. */
static void
agent_exports(const char *line, size_t len)
{
	struct buf env = {0};

	if (line == NULL)
		line = "";
	if (!shquote_parse_exports(line, len, &env)) {
		log_warn("--worker: an environment it cannot read: %.*s",
			 (int)len, line);
		buf_free(&env);
		return;
	}
	for (char *p = env.data, *next; p != NULL && p < env.data + env.len;
	     p = next) {
		char *eq = strchr(p, '=');

		next = p + strlen(p) + 1;
		*eq = '\0';
		if (strcmp(p, "CPMAP_HOST") == 0) {
			free(agent.host);
			agent.host = xstrdup(eq + 1);
		} else {
			(void)setenv(p, eq + 1, 1);
		}
	}
	buf_free(&env);
	child_refresh_environment();
}

/* Start the next task in the queue, if nothing runs. */
static void
agent_next(void)
{
	struct buf env = {0}, words = {0};
	struct process_spec spec = {.capture = true};
	static char sh[] = "/bin/sh", dash_c[] = "-c";
	char *shell[] = {sh, dash_c, NULL, NULL};
	char **argv = NULL;
	size_t argc = 0;
	int rc;

	while (agent.running == NULL && !STAILQ_EMPTY(&agent.queue)) {
		struct agent_task *t = STAILQ_FIRST(&agent.queue);

		STAILQ_REMOVE_HEAD(&agent.queue, entry);
		if (t->fail != NULL) {
			/* Its files are not all there: it does not run. */
			agent_answer(t, false, 0, 0);
			continue;
		}
		agent.running = t;
		if (shquote_parse_exec(t->command, t->command_len, &env, &words,
				       &argc)) {
			char *w = words.data;

			argv = xcalloc(argc + 1, sizeof *argv);
			for (size_t i = 0; i < argc; i++, w += strlen(w) + 1)
				argv[i] = w;
			spec.argv = argv;
		} else {
			shell[2] = t->command;
			spec.argv = shell;
		}
		spec.seq = t->seq;
		spec.slot = t->slot;
		spec.host = agent.host;
		spec.stdin_pipe = t->input_len > 0;
		rc = process_start(agent.loop, &spec, &agent_process_callbacks,
				   NULL, &agent.process);
		if (rc < 0) {
			/* As a shell would say it: 127, and why. */
			buf_append_str(&agent.err, spec.argv[0]);
			buf_append_str(&agent.err, ": ");
			buf_append_str(&agent.err, strerror(-rc));
			buf_append_char(&agent.err, '\n');
			agent_answer(t, true, 127, 0);
			agent.running = NULL;
		}
		free(argv);
		argv = NULL;
		if (rc < 0)
			continue;
		if (t->input_len > 0) {
			process_write(agent.process, t->input, t->input_len,
				      false);
			process_close_stdin(agent.process);
		}
	}
	buf_free(&env);
	buf_free(&words);
	if (agent.running == NULL && agent.eof)
		child_stop();
}

/* Start writing a P request's file; a failure is the next task's. */
static void
agent_put_open(const char *path)
{
	int fd;

	agent.put_path = xstrdup(path);
	(void)io_make_parents(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 && errno == ENOENT && io_make_parents(path) == 0)
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			  0600); /* a cleanup took the directory meanwhile */
	if (fd < 0)
		agent_why(&agent.fail, "cannot write on the host ", path,
			  errno);
	agent.put_fd = fd;
}

/* The P request's bytes are all in. */
static void
agent_put_close(void)
{
	if (agent.put_fd >= 0) {
		if (fchmod(agent.put_fd, (mode_t)agent.put_mode) != 0 ||
		    close(agent.put_fd) != 0)
			agent_why(&agent.fail, "cannot write on the host ",
				  agent.put_path, errno);
	}
	agent.put_fd = -1;
	free(agent.put_path);
	agent.put_path = NULL;
	agent.state = AGENT_HEADER;
}

/* One request line: a task or a file to read on, or a signal. */
static void
agent_request(const char *line)
{
	unsigned long long seq;
	size_t input_len, nret = 0, nrm = 0;
	unsigned mode, slot = 0;
	int sig;

	if (sscanf(line, "T %llu %zu %zu %zu %u", &seq, &input_len, &nret, &nrm,
		   &slot) >= 2) {
		agent.reading = xcalloc(1, sizeof *agent.reading);
		agent.reading->seq = seq;
		agent.reading->slot = slot;
		agent.reading->input_len = input_len;
		agent.reading->input = xmalloc(input_len + 1);
		agent.reading->nret = nret;
		agent.reading->nrm = nrm;
		agent.reading->paths =
		    xcalloc(nret + nrm + 1, sizeof *agent.reading->paths);
		if (agent.fail.len > 0)
			agent.reading->fail = buf_steal(&agent.fail, NULL);
		agent.state = AGENT_WORDS;
	} else if (strcmp(line, "V") == 0) {
		agent.state = AGENT_EXPORTS;
	} else if (sscanf(line, "P %zu %o", &agent.put_left, &mode) == 2) {
		agent.put_mode = mode & 07777;
		agent.state = AGENT_PUT;
	} else if (sscanf(line, "K %llu %d", &seq, &sig) == 2) {
		if (agent.running != NULL && agent.running->seq == seq &&
		    sig > 0 && sig < 65)
			process_signal(agent.process, sig);
	}
}

static void
agent_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	const char *p = buf->base, *end = buf->base + (nread > 0 ? nread : 0);

	if (nread < 0) {
		/* cpmap is gone: so is the task. */
		agent.eof = true;
		uv_close((uv_handle_t *)stream, NULL);
		STAILQ_INIT(&agent.queue);
		if (agent.process != NULL)
			process_signal(agent.process, SIGKILL);
		else
			child_stop();
		return;
	}
	while (p < end) {
		struct agent_task *t = agent.reading;

		if (agent.state == AGENT_PUT_DATA) {
			size_t take = (size_t)(end - p) < agent.put_left
					  ? (size_t)(end - p)
					  : agent.put_left;

			if (agent.put_fd >= 0 &&
			    io_write_all(agent.put_fd, p, take) < 0) {
				agent_why(&agent.fail,
					  "cannot write on the host ",
					  agent.put_path, errno);
				(void)close(agent.put_fd);
				agent.put_fd = -1;
			}
			p += take;
			agent.put_left -= take;
			if (agent.put_left == 0)
				agent_put_close();
			continue;
		}
		if (agent.state == AGENT_INPUT) {
			size_t want = t->input_len - agent.line.len;
			size_t take =
			    (size_t)(end - p) < want ? (size_t)(end - p) : want;

			buf_append(&agent.line, p, take);
			p += take;
			if (agent.line.len < t->input_len)
				return;
			memcpy(t->input, agent.line.data, t->input_len);
			agent.line.len = 0;
			goto queued;
		}
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (nl == NULL) {
			buf_append(&agent.line, p, (size_t)(end - p));
			return;
		}
		buf_append(&agent.line, p, (size_t)(nl - p));
		p = nl + 1;
		if (agent.state == AGENT_HEADER) {
			agent_request(agent.line.data != NULL ? agent.line.data
							      : "");
			agent.line.len = 0;
			continue;
		}
		if (agent.state == AGENT_EXPORTS) {
			agent_exports(agent.line.data, agent.line.len);
			agent.line.len = 0;
			agent.state = AGENT_HEADER;
			continue;
		}
		if (agent.state == AGENT_PUT) {
			agent_put_open(agent.line.data != NULL ? agent.line.data
							       : "");
			agent.line.len = 0;
			agent.state = AGENT_PUT_DATA;
			if (agent.put_left == 0)
				agent_put_close();
			continue;
		}
		if (agent.state == AGENT_PATHS) {
			t->paths[t->npaths++] = buf_steal(&agent.line, NULL);
			if (t->paths[t->npaths - 1] == NULL)
				t->paths[t->npaths - 1] = xstrdup("");
		} else {
			/* The words: the line that shquote_parse_exec reads
			 * back as an exec. */
			struct buf line = {0};

			buf_append_str(&line, "exec ");
			buf_append(&line, agent.line.data, agent.line.len);
			t->command = buf_steal(&line, &t->command_len);
			agent.line.len = 0;
		}
		if (t->npaths < t->nret + t->nrm) {
			agent.state = AGENT_PATHS;
			continue;
		}
		if (t->input_len > 0) {
			agent.state = AGENT_INPUT;
			continue;
		}
	queued:
		STAILQ_INSERT_TAIL(&agent.queue, t, entry);
		agent.reading = NULL;
		agent.state = AGENT_HEADER;
		agent_next();
	}
}

int
agent_run(void)
{
	int rc;

	agent.loop = uv_default_loop();
	agent.put_fd = -1;
	STAILQ_INIT(&agent.queue);
	signal(SIGPIPE, SIG_IGN);
	if ((rc = child_init(agent.loop)) != 0)
		fatal("cannot watch child processes: %s", uv_strerror(rc));
	if ((rc = uv_pipe_init(agent.loop, &agent.in, 0)) != 0 ||
	    (rc = uv_pipe_open(&agent.in, STDIN_FILENO)) != 0 ||
	    (rc = uv_read_start((uv_stream_t *)&agent.in, process_alloc_cb,
				agent_read_cb)) != 0)
		fatal("--worker: cannot read its standard input: %s",
		      uv_strerror(rc));
	printf("cpmap-agent %d\n", CPMAP_PROTOCOL_VERSION);
	fflush(stdout);
	(void)uv_run(agent.loop, UV_RUN_DEFAULT);
	buf_free(&agent.line);
	buf_free(&agent.out);
	buf_free(&agent.err);
	buf_free(&agent.fail);
	agent_task_free(agent.reading);
	free(agent.host);
	if (agent.put_fd >= 0)
		(void)close(agent.put_fd);
	free(agent.put_path);
	(void)uv_loop_close(agent.loop);
	return 0;
}
