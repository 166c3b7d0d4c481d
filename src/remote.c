/*
 * remote.c - remote hosts as workers (-S): tasks run on other machines over
 * ssh, or over any command that runs a command on a named host and relays
 * its stdin and stdout (--transport: srun, kubectl exec, docker exec).
 *
 * A host is one worker.  Its control process is a first connection that
 * says how many CPUs the host has and then stays open: with ssh it is the
 * connection's master (ControlMaster, in a private directory), so that each
 * slot's session is a multiplexed channel that pays no handshake, and its
 * ServerAlive probes notice a host that hangs.  While the control process
 * lives, the host is up; when it ends (the host crashed, hung, refused, or
 * the network went), the host is down: the pool gives its tasks to other
 * hosts, and the host is tried again after a delay that doubles from 1 s
 * to 60 s.  Each change is one line on stderr.  The control process also
 * says "." every 2 s: a host silent for 9 s is hung, whatever the
 * transport, and is taken down (its sessions are killed, so their
 * attempts come back at once).
 *
 * Each slot has a session (session.c) running the agent (agent.c), a small
 * sh script sent over the session itself, so nothing but sh need be
 * installed on the host.  The protocol (version 4) is framed by byte
 * counts, so any bytes survive.  Requests:
 *
 *   V\n<exports line>\n                  the session's environment,
 *                                       once, before any T
 *   P len mode\n<path>\n<bytes>          put a file (--transfer)
 *   T seq inlen nret nrm slot\n<words line>\n<nret + nrm paths, a line
 *       each><stdin bytes>             run a task
 *   K seq signal\n                      signal its process group
 *
 * The command is one line: its words, quoted here for the remote sh; the
 * agent exports CPMAP_SEQ and CPMAP_SLOT from the T.  What is the same for
 * every task on the host (CPMAP_HOST, --env) is exported once, by a V
 * first in each session, so that a task's request stays short: the sh
 * agent reads it a byte per system call.  It goes on stdin, not in the
 * session's command: a command line is seen by every user of the host
 * (ps), and one argument is at most 128 KiB there (Linux).  The sh agent
 * runs the words as a plain command, no sh -c.  A task's P requests come
 * just before its T; the paths after the command are the files to bring
 * back once it is over (--return), then those to remove after that
 * (--cleanup).  Answers, in the order of the tasks:
 *
 *   F len\n<path>\n<bytes>               a returned file
 *   E len\n<message>                    its files failed: an error result
 *   R seq exit signal outlen errlen\n<stdout><stderr>
 *
 * so that a task's files arrive before, and with, its result; a returned
 * file is written here as it comes, at the same path (relative to our
 * directory unless absolute).  A path with a newline is refused here (a
 * bad-input result), as is a file to send that cannot be read.  EOF on the
 * session kills the task.  A session that dies takes no blame: its attempt
 * is lost and runs again elsewhere.
 *
 * --basefile files go once per connection to the host, over its control
 * process, before it says hello: the host is up, and takes tasks, only
 * once they are there.  With --cleanup the control process removes them
 * when cpmap closes it at the end of the run.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"

#define REMOTE_RETRY_FIRST_MS 1000
#define REMOTE_RETRY_MAX_MS 60000
#define REMOTE_HEARTBEAT_S "2" /* the host's control says "." this often */
#define REMOTE_SILENCE_MS 9000 /* no word from the host this long: hung */

/* The control process: how many CPUs, then a heartbeat until EOF. */
static const char remote_control_script[] =
    "echo cpmap-host $(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc "
    "2>/dev/null || echo 1) $(cpmap --worker-version 2>/dev/null || echo 0)"
    "; (while sleep " REMOTE_HEARTBEAT_S " </dev/null >/dev/null 2>&1"
    "; do echo . || exit; done) & cat >/dev/null; kill $! 2>/dev/null";

enum host_state {
	HOST_CONNECTING, /* the control process is starting */
	HOST_UP,	 /* it said hello: the slots take tasks */
	HOST_WAITING,	 /* down: waiting to try again */
	HOST_CLOSING,	 /* the run is over: nothing starts again */
};

struct remote_host {
	struct worker *worker;
	uv_loop_t *loop;
	const struct options *opts;
	enum host_state state;
	char *name;		   /* as the user wrote it, without "N/" */
	unsigned slots;		   /* as asked for, or 0: its CPU count */
	char **control;		   /* the control process's argv */
	char **session;		   /* each slot session's argv */
	char *control_dir;	   /* ssh: the private ControlPath directory */
	char *control_path;	   /* ... and the socket in it */
	struct process *process;   /* the control process, or NULL */
	struct buf said;	   /* its stdout, until the hello line */
	struct buf complaint;	   /* its stderr, a line at a time */
	struct session_set *sets;  /* the slots' sessions, once up */
	unsigned set_slots;	   /* ... how many */
	uv_timer_t retry;	   /* waiting to try again */
	uint64_t retry_ms;	   /* the next delay */
	uv_timer_t silence;	   /* how long the host has said nothing */
	const char *silenced;	   /* why we killed the control, or NULL */
	struct buf environment;	   /* "export CPMAP_HOST=...; ", --env's */
	char *preamble;		   /* each session's first bytes */
	bool persist;		   /* --persist: sessions run the command */
	bool retired;		   /* removed from the run: never again up */
	char ***persist_argv;	   /* ... each slot's session argv */
	struct template *transfer; /* --transfer: "{}", or NULL */
	struct template **returns; /* --return patterns */
	size_t return_count;
	struct buf basefiles; /* --basefile bytes, for the control's stdin */
};

/* The per-session state of the protocol's decoder. */
struct remote_decoder {
	bool hello;		    /* the agent said who it is */
	bool in_frame;		    /* reading an answer's bytes */
	unsigned long long left[3]; /* bytes still due, by stream */
	int exit_code, signal;
	/* Frames before the R: no resource is held across calls, as
	 * session.c frees this with free(). */
	enum { FILES_NONE, FILES_PATH, FILES_DATA, FILES_WHY } files;
	unsigned long long file_left; /* F or E bytes still due */
	bool file_bad;		      /* the F file cannot be written */
	char file_path[PATH_MAX];
	char why[512]; /* why the head attempt's files failed, or "" */
};

/* ---- files -------------------------------------------------------- */

/* Add a path to a request's list, one a line; false if it cannot be one. */
static bool
remote_add_path(struct buf *list, const char *path, const char *option,
		char **cause)
{
	if (strchr(path, '\n') != NULL) {
		*cause = xasprintf("%s: a file name with a newline cannot be "
				   "sent or returned",
				   option);
		return false;
	}
	buf_append_str(list, path);
	buf_append_char(list, '\n');
	return true;
}

/* Append a P request that puts the local file path there as it is. */
static bool
remote_put(struct buf *files, const char *path, char **cause)
{
	struct buf data = {0};
	struct stat st;
	char header[64];
	int rc, n;

	rc = stat(path, &st) != 0 ? -errno : io_read_file(path, &data);
	if (rc < 0) {
		*cause = xasprintf("--transfer: cannot read %s: %s", path,
				   strerror(-rc));
		buf_free(&data);
		return false;
	}
	n = snprintf(header, sizeof header, "P %zu %o\n", data.len,
		     (unsigned)(st.st_mode & 07777));
	buf_append(files, header, (size_t)n);
	buf_append_str(files, path);
	buf_append_char(files, '\n');
	buf_append(files, data.data, data.len);
	buf_free(&data);
	return true;
}

/*
 * A task's files: P requests for --transfer (the input files, {}), the
 * paths to return (each --return pattern, expanded as the command is) and
 * with --cleanup the paths to remove after (those sent, then those
 * returned).  False with *cause when one cannot be: the task's bad input.
 */
static bool
remote_task_files(struct remote_host *h, const struct attempt_spec *spec,
		  struct buf *files, struct buf *paths, size_t counts[2],
		  char **cause)
{
	struct expansion e = {.inputs = spec->inputs,
			      .input_count = spec->input_count,
			      .seq = spec->seq,
			      .slot = spec->slot};
	struct buf removes = {0};
	bool ok = true;
	char **argv;

	if (h->transfer != NULL) {
		if ((argv = template_expand(h->transfer, &e, false, cause)) ==
		    NULL)
			return false;
		for (char **w = argv; ok && *w != NULL; w++) {
			if (**w == '\0')
				continue;
			ok = remote_add_path(&removes, *w, "--transfer",
					     cause) &&
			     remote_put(files, *w, cause);
			counts[1]++;
		}
		free(argv);
	}
	for (size_t i = 0; ok && i < h->return_count; i++) {
		if ((argv = template_expand(h->returns[i], &e, false, cause)) ==
		    NULL) {
			ok = false;
			break;
		}
		for (char **w = argv; ok && *w != NULL; w++) {
			if (**w == '\0')
				continue;
			ok = remote_add_path(paths, *w, "--return", cause);
			counts[0]++;
		}
		free(argv);
	}
	if (ok && h->opts->cleanup) {
		/* Those returned are removed too, after they came back. */
		if (paths->len > 0)
			buf_append(&removes, paths->data, paths->len);
		counts[1] += counts[0];
		if (removes.len > 0)
			buf_append(paths, removes.data, removes.len);
	} else {
		counts[1] = 0;
	}
	buf_free(&removes);
	return ok;
}

/* Did the oldest attempt ask for this file back (--return)? */
static bool
remote_return_asked(struct session *s, const char *path)
{
	struct remote_host *h = session_protocol_arg(s);
	const struct attempt_spec *spec = session_head_spec(s);
	bool asked = false;

	if (spec == NULL)
		return false;
	struct expansion e = {.inputs = spec->inputs,
			      .input_count = spec->input_count,
			      .seq = spec->seq,
			      .slot = spec->slot};

	for (size_t i = 0; !asked && i < h->return_count; i++) {
		char *cause = NULL;
		char **argv = template_expand(h->returns[i], &e, false, &cause);

		for (char **w = argv; !asked && w != NULL && *w != NULL; w++)
			asked = strcmp(*w, path) == 0;
		free(argv);
		free(cause);
	}
	return asked;
}

/* Say why a returned file is not here (cut to fit). */
static void
remote_file_failed(struct remote_decoder *d, const char *path, int error)
{
	size_t used = strlen(d->why), len;
	char *why = xasprintf("%scannot write the returned file %s: %s",
			      used > 0 ? "; " : "", path, strerror(error));

	len = strlen(why);
	if (len > sizeof d->why - 1 - used)
		len = sizeof d->why - 1 - used;
	memcpy(d->why + used, why, len);
	d->why[used + len] = '\0';
	free(why);
	d->file_bad = true;
}

/* Start writing a returned file here: make it empty, with its
 * directories. */
static void
remote_file_open(struct remote_decoder *d, const char *path)
{
	int fd;

	d->file_bad = false;
	if (strlen(path) >= sizeof d->file_path) {
		errno = ENAMETOOLONG;
		fd = -1;
	} else {
		strcpy(d->file_path, path);
		(void)io_make_parents(path);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	}
	if (fd < 0 || close(fd) != 0)
		remote_file_failed(d, path, errno);
}

/* Some of its bytes: appended, so that no descriptor is held between
 * reads. */
static void
remote_file_write(struct remote_decoder *d, const char *data, size_t len)
{
	int fd, rc = 0;

	if (d->file_bad)
		return;
	fd = open(d->file_path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 || (rc = io_write_all(fd, data, len)) < 0)
		remote_file_failed(d, d->file_path, fd < 0 ? errno : -rc);
	if (fd >= 0)
		(void)close(fd);
}

/* ---- the protocol ------------------------------------------------------ */

static long
remote_encode(void *arg, struct buf *batch, const struct attempt_spec *spec,
	      char **cause)
{
	struct remote_host *h = arg;
	struct buf words = {0}, files = {0}, paths = {0};
	size_t counts[2] = {0, 0};
	char header[128];
	int n;

	for (char *const *word = spec->argv; *word != NULL; word++) {
		if (word != spec->argv)
			buf_append_char(&words, ' ');
		shquote_append(&words, *word, strlen(*word));
	}
	if (!remote_task_files(h, spec, &files, &paths, counts, cause)) {
		buf_free(&words);
		buf_free(&files);
		buf_free(&paths);
		return -1;
	}
	if (files.len > 0)
		buf_append(batch, files.data, files.len);
	n = snprintf(header, sizeof header, "T %llu %zu %zu %zu %u\n",
		     (unsigned long long)spec->seq,
		     spec->stdin_data != NULL ? spec->stdin_len : 0, counts[0],
		     counts[1], spec->slot);
	buf_append(batch, header, (size_t)n);
	/* One line: a newline (always inside single quotes) is spelt out. */
	shquote_one_line(batch, words.data, words.len);
	buf_append_char(batch, '\n');
	if (paths.len > 0)
		buf_append(batch, paths.data, paths.len);
	if (spec->stdin_data != NULL)
		buf_append(batch, spec->stdin_data, spec->stdin_len);
	buf_free(&words);
	buf_free(&files);
	buf_free(&paths);
	return 1;
}

static void
remote_encode_signal(struct buf *batch, const struct attempt_spec *spec,
		     int sig)
{
	char line[64];
	int n = snprintf(line, sizeof line, "K %llu %d\n",
			 (unsigned long long)spec->seq, sig);

	buf_append(batch, line, (size_t)n);
}

/* A header line: the agent's hello, or an answer's. */
static void
remote_header(struct session *s, struct remote_decoder *d, const char *line)
{
	unsigned long long seq;
	int version;

	if (!d->hello) {
		/* A login shell may say things first: wait for the hello. */
		if (sscanf(line, "cpmap-agent %d", &version) != 1)
			return;
		if (version != CPMAP_PROTOCOL_VERSION)
			session_broken(s, "the remote agent speaks another "
					  "protocol version");
		d->hello = true;
		return;
	}
	if (d->files == FILES_PATH) {
		/* Only a file this task asked for is written here: never a
		 * path of the host's choosing. */
		if (!remote_return_asked(s, line)) {
			log_warn("host %s: the agent sent back a file it was "
				 "not asked for (%s): dropping its session",
				 ((struct remote_host *)session_protocol_arg(s))
				     ->name,
				 line);
			session_broken(s, "the remote agent sent back a file "
					  "it was not asked for");
			return;
		}
		remote_file_open(d, line);
		d->files = FILES_DATA;
		return;
	}
	if (sscanf(line, "F %llu", &d->file_left) == 1 && line[0] == 'F') {
		d->files = FILES_PATH;
		return;
	}
	if (sscanf(line, "E %llu", &d->file_left) == 1 && line[0] == 'E') {
		d->files = FILES_WHY;
		return;
	}
	if (sscanf(line, "R %llu %d %d %llu %llu", &seq, &d->exit_code,
		   &d->signal, &d->left[1], &d->left[2]) != 5) {
		session_broken(s, "the remote agent broke the protocol");
		return;
	}
	d->in_frame = true;
}

/* Bytes of an F or E frame. */
static void
remote_file_data(struct remote_decoder *d, const char *data, size_t len)
{
	if (d->files == FILES_DATA) {
		remote_file_write(d, data, len);
	} else {
		size_t used = strlen(d->why);

		/* The agent's message, on one line, cut to fit. */
		for (size_t i = 0; i < len && used + 1 < sizeof d->why; i++)
			if (data[i] != '\n' || i + 1 < len ||
			    d->file_left > len)
				d->why[used++] =
				    data[i] == '\n' ? ' ' : data[i];
		d->why[used] = '\0';
	}
}

/* An answer's bytes are in: the attempt is over. */
static void
remote_frame_done(struct session *s, struct remote_decoder *d)
{
	struct attempt_end end = {.exit_code = d->exit_code};

	d->in_frame = false;
	if (d->signal > 0) {
		end.signal = d->signal;
		end.exit_code = -1;
	}
	if (d->why[0] != '\0') {
		end.error = ERROR_FILE;
		end.message = d->why;
	}
	session_head_done(s, &end);
	d->why[0] = '\0';
}

static void
remote_decode(struct session *s, const char *data, size_t len)
{
	void **slot = session_protocol_data(s);
	struct remote_decoder *d = *slot;
	struct buf *line = session_pending(s);
	const char *p = data, *end = data + len;

	if (d == NULL)
		d = *slot = xcalloc(1, sizeof *d);
	if (len == 0) {
		if (d->in_frame || line->len > 0 || d->files != FILES_NONE)
			session_broken(s, "the remote agent's answer was cut "
					  "short");
		return;
	}
	while (p < end) {
		if (d->in_frame) {
			int stream = d->left[1] > 0 ? 1 : 2;
			size_t take = (size_t)(end - p);

			if (d->left[stream] < take)
				take = (size_t)d->left[stream];
			if (take > 0)
				session_head_data(s, stream, p, take);
			d->left[stream] -= take;
			p += take;
			if (d->left[1] == 0 && d->left[2] == 0)
				remote_frame_done(s, d);
			continue;
		}
		if (d->files == FILES_DATA || d->files == FILES_WHY) {
			size_t take = (size_t)(end - p);

			if (d->file_left < take)
				take = (size_t)d->file_left;
			remote_file_data(d, p, take);
			d->file_left -= take;
			p += take;
			if (d->file_left == 0)
				d->files = FILES_NONE;
			continue;
		}
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (nl == NULL) {
			buf_append(line, p, (size_t)(end - p));
			return;
		}
		buf_append(line, p, (size_t)(nl - p));
		p = nl + 1;
		remote_header(s, d, line->data != NULL ? line->data : "");
		line->len = 0;
		if (d->in_frame && d->left[1] == 0 && d->left[2] == 0)
			remote_frame_done(s, d);
		if ((d->files == FILES_DATA || d->files == FILES_WHY) &&
		    d->file_left == 0)
			d->files = FILES_NONE;
	}
}

static const struct session_protocol remote_protocol = {
    .name = "framed",
    .encode = remote_encode,
    .decode = remote_decode,
    .encode_signal = remote_encode_signal,
    .blame_first = false,
};

/* ---- the host's commands ----------------------------------------------- */

static bool
remote_is_ssh(const char *word)
{
	const char *base = strrchr(word, '/');

	return strcmp(base != NULL ? base + 1 : word, "ssh") == 0;
}

/*
 * The argv that runs script (a sh command line) on the host: the transport
 * with the host where {host} is, or after it; ssh also gets its options,
 * and the script as one word (ssh hands its words to the remote shell).
 */
static char **
remote_argv(struct remote_host *h, const char *script, bool master)
{
	struct buf words = {0};
	char *transport = xstrdup(h->opts->transport);
	char *save = NULL, *host = xstrdup(h->name), *port = NULL;
	bool ssh = false, placed = false;
	size_t count = 0, cap = 16;
	char **argv = xcalloc(cap, sizeof *argv);

#define REMOTE_PUSH(s)                                                         \
	do {                                                                   \
		if (count + 2 >= cap)                                          \
			argv = xreallocarray(argv, cap *= 2, sizeof *argv);    \
		argv[count++] = xstrdup(s);                                    \
	} while (0)

	for (char *w = strtok_r(transport, " \t", &save); w != NULL;
	     w = strtok_r(NULL, " \t", &save)) {
		if (count == 0)
			ssh = remote_is_ssh(w);
		if (strcmp(w, "{host}") == 0) {
			REMOTE_PUSH(host);
			placed = true;
		} else {
			REMOTE_PUSH(w);
		}
		if (count == 1 && ssh) {
			char *colon = strrchr(host, ':');

			if (colon != NULL && strchr(colon, ']') == NULL) {
				*colon = '\0';
				port = colon + 1;
			}
			REMOTE_PUSH("-o");
			REMOTE_PUSH("BatchMode=yes");
			REMOTE_PUSH("-o");
			REMOTE_PUSH("ServerAliveInterval=2");
			REMOTE_PUSH("-o");
			REMOTE_PUSH("ServerAliveCountMax=3");
			REMOTE_PUSH("-o");
			REMOTE_PUSH("ConnectTimeout=10");
			REMOTE_PUSH("-o");
			buf_append_str(&words, "ControlPath=");
			buf_append_str(&words, h->control_path);
			REMOTE_PUSH(words.data);
			words.len = 0;
			REMOTE_PUSH("-o");
			REMOTE_PUSH(master ? "ControlMaster=yes"
					   : "ControlMaster=no");
			if (master) {
				REMOTE_PUSH("-o");
				REMOTE_PUSH("ControlPersist=no");
			}
			REMOTE_PUSH("-x");
			if (port != NULL) {
				REMOTE_PUSH("-p");
				REMOTE_PUSH(port);
			}
		}
	}
	if (!placed)
		REMOTE_PUSH(host);
	if (ssh) {
		/* One word: ssh joins its words for the login shell. */
		buf_append_str(&words, "sh -c ");
		shquote_append(&words, script, strlen(script));
		REMOTE_PUSH(words.data);
	} else {
		REMOTE_PUSH("sh");
		REMOTE_PUSH("-c");
		REMOTE_PUSH(script);
	}
#undef REMOTE_PUSH
	argv[count] = NULL;
	buf_free(&words);
	free(transport);
	free(host);
	return argv;
}

static void
remote_free_argv(char **argv)
{
	for (char **a = argv; a != NULL && *a != NULL; a++)
		free(*a);
	free(argv);
}

/* ---- the control process: is the host up? ----------------------------- */

static void remote_connect(struct remote_host *h);

static void
remote_retry_cb(uv_timer_t *timer)
{
	struct remote_host *h = timer->data;

	if (h->state == HOST_WAITING)
		remote_connect(h);
}

/* The host is down (or never came up): its sessions go, its attempts come
 * back to the pool, and it is tried again later. */
static void
remote_down(struct remote_host *h, const char *why)
{
	bool was_up = h->state == HOST_UP;

	if (h->state != HOST_UP && h->state != HOST_CONNECTING)
		return;
	h->state = HOST_WAITING;
	uv_timer_stop(&h->silence);
	pool_worker_down(h->worker, false);
	if (h->sets != NULL)
		session_set_abandon(h->sets);
	if (h->retired) {
		log_warn("host %s: down: %s", h->name, why);
		return;
	}
	log_warn("host %s: %s %s; trying again in %.3gs", h->name,
		 was_up ? "down:" : "cannot connect:", why,
		 (double)h->retry_ms / 1000);
	uv_timer_start(&h->retry, remote_retry_cb, h->retry_ms, 0);
	h->retry_ms = h->retry_ms * 2 > REMOTE_RETRY_MAX_MS
			  ? REMOTE_RETRY_MAX_MS
			  : h->retry_ms * 2;
}

/* The host said nothing for too long: it hangs. */
static void
remote_silence_cb(uv_timer_t *timer)
{
	struct remote_host *h = timer->data;

	if (h->process == NULL)
		return;
	h->silenced = "no word from it for 9s";
	process_signal(h->process, SIGKILL);
	remote_down(h, h->silenced);
}

static void
remote_died_cb(void *arg, unsigned index, int wait_status)
{
	struct remote_host *h = arg;
	struct attempt_end end;

	attempt_end_status(&end, wait_status);
	log_debug("host %s: session of slot %u ended (exit %d, signal %d)",
		  h->name, index + 1, end.exit_code, end.signal);
}

/*
 * A persistent command that dies takes the blame for the input it was
 * working on, unless the connection failed (the transport's 255): then
 * nobody is to blame, and its inputs run again elsewhere.
 */
static bool
remote_persist_to_blame(void *arg, int wait_status)
{
	struct attempt_end end;

	(void)arg;
	attempt_end_status(&end, wait_status);
	return end.exit_code != 255;
}

/*
 * The host said hello, with its CPU count and the protocol version of the
 * cpmap it has (0: none): its slots take tasks.  The first time, choose the
 * agent: cpmap --worker when it speaks our version, else the sh agent,
 * which comes over each session's stdin before any request.
 */
static void
remote_up(struct remote_host *h, unsigned cpus, int version)
{
	unsigned slots = h->slots > 0 ? h->slots : cpus > 0 ? cpus : 1;

	if (h->sets == NULL) {
		bool native = version == CPMAP_PROTOCOL_VERSION &&
			      !h->opts->remote_agent_sh && !h->persist;
		struct buf preamble = {0};

		/* Each session gets the agent (the sh one: it reads it
		 * itself), then its environment; a persistent command, its
		 * environment alone. */
		if (!native && !h->persist)
			buf_append_str(&preamble, agent_script);
		if (!h->persist)
			buf_append_str(&preamble, "V\n");
		shquote_one_line(&preamble, h->environment.data,
				 h->environment.len);
		buf_append_char(&preamble, '\n');
		h->preamble = buf_steal(&preamble, NULL);
		struct session_config config = {
		    .protocol =
			h->persist ? &persist_protocol : &remote_protocol,
		    .arg = h,
		    .host = h->name,
		    .max_requests = h->persist ? h->opts->persist_max : 0,
		    .kill_after_ms = h->opts->kill_after_ms,
		    .preamble = h->preamble,
		    .to_blame = h->persist ? remote_persist_to_blame : NULL,
		    .died = remote_died_cb,
		};
		char boot[96];

		snprintf(boot, sizeof boot,
			 "eval \"$(dd bs=1 count=%zu 2>/dev/null)\"",
			 strlen(agent_script));
		h->session = remote_argv(
		    h, native ? "exec cpmap --worker" : boot, false);
		log_debug("host %s: agent %s", h->name,
			  native ? "cpmap --worker" : "sh");
		h->sets = session_set_create(h->loop, &config, slots);
		h->set_slots = slots;
		h->persist_argv = xcalloc(slots, sizeof *h->persist_argv);
	}
	if (slots > h->set_slots)
		slots = h->set_slots; /* more CPUs since: the slots stay */
	if (h->retired)
		return;
	h->state = HOST_UP;
	h->retry_ms = REMOTE_RETRY_FIRST_MS;
	log_warn("host %s: up, %u slot%s", h->name, slots,
		 slots == 1 ? "" : "s");
	/* A persistent command is fed --stride inputs ahead, so that it
	 * never waits a round trip for its next one. */
	pool_worker_up(h->worker, slots, h->persist ? h->opts->stride : 1);
}

static void
remote_control_read_cb(void *arg, int stream, const char *data, size_t len)
{
	struct remote_host *h = arg;
	struct buf *b = stream == 1 ? &h->said : &h->complaint;
	char *nl;
	unsigned cpus;
	int version;

	if (len == 0)
		return;
	if (stream == 1 && h->state != HOST_CLOSING)
		uv_timer_start(&h->silence, remote_silence_cb,
			       REMOTE_SILENCE_MS, 0);
	buf_append(b, data, len);
	while (b->len > 0 && (nl = memchr(b->data, '\n', b->len)) != NULL) {
		*nl = '\0';
		if (stream == 2)
			log_warn("host %s: %s", h->name, b->data);
		else if (h->state == HOST_CONNECTING &&
			 sscanf(b->data, "cpmap-host %u %d", &cpus, &version) ==
			     2)
			remote_up(h, cpus, version);
		b->len -= (size_t)(nl + 1 - b->data);
		memmove(b->data, nl + 1, b->len);
	}
}

static void
remote_control_exit_cb(void *arg, int wait_status)
{
	struct remote_host *h = arg;
	struct attempt_end end;
	char why[64];

	attempt_end_status(&end, wait_status);
	if (end.signal != 0)
		snprintf(why, sizeof why, "%s killed by signal %d",
			 h->control[0], end.signal);
	else
		snprintf(why, sizeof why, "%s exited with status %d",
			 h->control[0], end.exit_code);
	remote_down(h, why);
}

static void
remote_control_closed_cb(void *arg, int wait_status)
{
	struct remote_host *h = arg;

	(void)wait_status;
	h->process = NULL;
	h->said.len = 0;
	h->complaint.len = 0;
}

static const struct process_callbacks remote_control_callbacks = {
    .read = remote_control_read_cb,
    .exit = remote_control_exit_cb,
    .closed = remote_control_closed_cb,
};

/* Start the control process: the host is up once it says hello. */
static void
remote_connect(struct remote_host *h)
{
	struct process_spec ps = {
	    .argv = h->control,
	    .stdin_pipe = true,
	    .capture = true,
	    .host = h->name,
	};
	int rc;

	h->state = HOST_CONNECTING;
	h->silenced = NULL;
	log_debug("host %s: connecting", h->name);
	rc = process_start(h->loop, &ps, &remote_control_callbacks, h,
			   &h->process);
	if (rc == 0 && h->basefiles.len > 0)
		process_write(h->process, h->basefiles.data, h->basefiles.len,
			      false);
	if (rc < 0) {
		char why[96];

		snprintf(why, sizeof why, "cannot run %s: %s", h->control[0],
			 strerror(-rc));
		remote_down(h, why);
	}
}

/* ---- the worker kind --------------------------------------------------- */

/*
 * The file options: parse the --return patterns and "{}" for --transfer
 * (fatal, as a usage error, if one cannot be), read the --basefile files,
 * and write the control script: the basefiles come first on its stdin and
 * are written before it says hello; with --cleanup it removes them at EOF.
 */
static void
remote_files_create(struct remote_host *h, const struct options *opts,
		    struct buf *control)
{
	struct buf removes = {0};
	char *cause = NULL, *word;

	if (!h->persist && opts->transfer) {
		word = (char *)(uintptr_t)(opts->replace != NULL ? opts->replace
								 : "{}");
		h->transfer = template_parse(&word, 1, opts->replace,
					     SHELL_NEVER, false, &cause);
		if (h->transfer == NULL)
			fatal("--transfer: %s", cause);
	}
	if (!h->persist && opts->return_count > 0)
		h->returns = xcalloc(opts->return_count, sizeof *h->returns);
	for (size_t i = 0; h->returns != NULL && i < opts->return_count; i++) {
		word = opts->returns[i];
		h->returns[i] =
		    template_parse(&word, 1, opts->replace, SHELL_NEVER,
				   opts->header || opts->json_input, &cause);
		if (h->returns[i] == NULL)
			fatal("--return: '%s': %s", opts->returns[i], cause);
		h->return_count++;
	}
	if (opts->basefile_count > 0)
		buf_append_str(control,
			       "if head -c 1 </dev/null >/dev/null 2>&1; then "
			       "take() { head -c \"$1\"; }; else take() { dd "
			       "bs=1 count=\"$1\" 2>/dev/null; }; fi; ");
	for (size_t i = 0; i < opts->basefile_count; i++) {
		const char *path = opts->basefiles[i];
		const char *slash = strrchr(path, '/');
		size_t before = h->basefiles.len;
		struct stat st;
		char line[64];
		int rc;

		if (strchr(path, '\n') != NULL)
			fatal("--basefile: a file name with a newline cannot "
			      "be sent");
		rc = stat(path, &st) != 0 ? -errno
					  : io_read_file(path, &h->basefiles);
		if (rc < 0)
			fatal("--basefile: cannot read %s: %s", path,
			      strerror(-rc));
		if (slash != NULL && slash != path) {
			buf_append_str(control, "mkdir -p -- ");
			shquote_append(control, path, (size_t)(slash - path));
			buf_append_str(control, " 2>/dev/null; ");
		}
		/* true, not ':': a special builtin's failed redirection
		 * would end the shell before it can say why. */
		buf_append_str(control, "{ true 2>/dev/null >");
		shquote_append(control, path, strlen(path));
		snprintf(line, sizeof line, " && take %zu >",
			 h->basefiles.len - before);
		buf_append_str(control, line);
		shquote_append(control, path, strlen(path));
		snprintf(line, sizeof line, " && chmod %o ",
			 (unsigned)(st.st_mode & 07777));
		buf_append_str(control, line);
		shquote_append(control, path, strlen(path));
		buf_append_str(control, "; } || { echo \"cannot write ");
		shquote_append(control, path, strlen(path));
		buf_append_str(control, " there\" >&2; exit 1; }; ");
		buf_append_char(&removes, ' ');
		shquote_append(&removes, path, strlen(path));
		if (path[0] != '/' && slash != NULL) {
			buf_append_str(&removes, "; rmdir -p -- ");
			shquote_append(&removes, path, (size_t)(slash - path));
			buf_append_str(&removes, " 2>/dev/null; rm -f --");
		}
	}
	buf_append_str(control, remote_control_script);
	if (opts->cleanup && removes.len > 0) {
		/* The rmdir of one file's directories comes after the file. */
		buf_append_str(control, "; rm -f --");
		buf_append(control, removes.data, removes.len);
		buf_append_str(control, " 2>/dev/null; true");
	}
	buf_free(&removes);
}

static void *
remote_create(struct worker *w, uv_loop_t *loop, const struct options *opts,
	      const struct worker_plan *plan)
{
	struct remote_host *h = xcalloc(1, sizeof *h);
	struct buf control = {0};

	h->worker = w;
	h->loop = loop;
	h->opts = opts;
	h->name = xstrdup(plan->where);
	h->slots = plan->slots;
	h->persist = plan->kind == &remote_persist_worker;
	h->retry_ms = REMOTE_RETRY_FIRST_MS;
	h->control_dir = xstrdup("/tmp/cpmap-XXXXXX");
	if (mkdtemp(h->control_dir) == NULL)
		fatal("cannot make a directory in /tmp: %s", strerror(errno));
	h->control_path = xasprintf("%s/cm", h->control_dir);
	/* What every task on the host has in its environment: sent once per
	 * session, on its stdin (the V request, or --persist's first line). */
	buf_append_str(&h->environment, "export CPMAP_HOST=");
	shquote_append(&h->environment, h->name, strlen(h->name));
	buf_append_str(&h->environment, " PARALLEL_SSHLOGIN=");
	shquote_append(&h->environment, h->name, strlen(h->name));
	buf_append_str(&h->environment, "; ");
	for (size_t i = 0; i < opts->env_count; i++) {
		const char *value = getenv(opts->env[i]);

		if (value == NULL)
			continue;
		buf_append_str(&h->environment, "export ");
		buf_append_str(&h->environment, opts->env[i]);
		buf_append_char(&h->environment, '=');
		shquote_append(&h->environment, value, strlen(value));
		buf_append_str(&h->environment, "; ");
	}
	remote_files_create(h, opts, &control);
	h->control = remote_argv(h, control.data, true);
	buf_free(&control);
	uv_timer_init(loop, &h->retry);
	h->retry.data = h;
	uv_timer_init(loop, &h->silence);
	h->silence.data = h;
	remote_connect(h);
	return h;
}

static void *
remote_start(void *state, const struct attempt_spec *spec,
	     const struct attempt_callbacks *cb, void *arg)
{
	struct remote_host *h = state;

	return session_submit(h->sets, h->session, spec, cb, arg);
}

/* --persist: the slot's session runs the command itself on the host. */
static void *
remote_persist_start(void *state, const struct attempt_spec *spec,
		     const struct attempt_callbacks *cb, void *arg)
{
	struct remote_host *h = state;
	char ***argv = &h->persist_argv[spec->slot_index];

	if (*argv == NULL) {
		struct buf line = {0};
		char head[64];
		int n = snprintf(head, sizeof head,
				 "export CPMAP_SLOT=%u PARALLEL_JOBSLOT=%u; ",
				 spec->slot, spec->slot);

		buf_append(&line, head, (size_t)n);
		/* The environment is the first line on its stdin (the
		 * builtin read takes no byte past it), as for an agent: not
		 * on the command line.  No newline in the command itself: a
		 * csh login shell refuses one inside quotes. */
		buf_append_str(
		    &line, "CPMAP_NL=$(printf '\\n.'); CPMAP_NL=${CPMAP_NL%.}; "
			   "IFS= read -r cpmap_env && "
			   "eval \"$cpmap_env\" && exec");
		for (char *const *word = spec->argv; *word != NULL; word++) {
			buf_append_char(&line, ' ');
			shquote_append(&line, *word, strlen(*word));
		}
		*argv = remote_argv(h, line.data, false);
		buf_free(&line);
	}
	return session_submit(h->sets, *argv, spec, cb, arg);
}

static void
remote_shutdown(void *state)
{
	struct remote_host *h = state;

	h->state = HOST_CLOSING;
	uv_close((uv_handle_t *)&h->retry, NULL);
	uv_close((uv_handle_t *)&h->silence, NULL);
	if (h->sets != NULL)
		session_set_shutdown(h->sets);
	/* EOF ends the control process's cat; with ssh, the master then
	 * goes once its channels are closed. */
	if (h->process != NULL) {
		process_close_stdin(h->process);
		process_quit_after(h->process, 5000, h->opts->kill_after_ms);
	}
}

/* Removed from the workers file: finish, take nothing new, never reconnect
 * (the control stays open until the end of the run, so that ssh keeps the
 * connection the running tasks use). */
static void
remote_retire(void *state)
{
	struct remote_host *h = state;

	h->retired = true;
	uv_timer_stop(&h->retry);
	if (h->sets != NULL)
		session_set_retire(h->sets);
}

static void
remote_stop(void *state, int sig)
{
	struct remote_host *h = state;

	if (h->sets != NULL)
		session_set_stop(h->sets, sig);
	if (h->process != NULL)
		(void)kill(-process_pid(h->process), sig);
}

static void
remote_free(void *state)
{
	struct remote_host *h = state;

	session_set_free(h->sets);
	(void)unlink(h->control_path);
	(void)rmdir(h->control_dir);
	free(h->control_path);
	free(h->control_dir);
	remote_free_argv(h->control);
	remote_free_argv(h->session);
	for (unsigned i = 0; h->persist_argv != NULL && i < h->set_slots; i++)
		remote_free_argv(h->persist_argv[i]);
	free(h->persist_argv);
	buf_free(&h->said);
	buf_free(&h->complaint);
	buf_free(&h->environment);
	free(h->preamble);
	buf_free(&h->basefiles);
	if (h->transfer != NULL)
		template_free(h->transfer);
	for (size_t i = 0; i < h->return_count; i++)
		template_free(h->returns[i]);
	free(h->returns);
	free(h->name);
	free(h);
}

const struct worker_kind remote_worker = {
    .name = "remote",
    .batched = true,
    .create = remote_create,
    .start = remote_start,
    .signal = session_signal,
    .retire = remote_retire,
    .shutdown = remote_shutdown,
    .stop = remote_stop,
    .free = remote_free,
};

const struct worker_kind remote_persist_worker = {
    .name = "remote-persist",
    .per_slot_command = true,
    .batched = true,
    .create = remote_create,
    .start = remote_persist_start,
    .signal = session_signal,
    .retire = remote_retire,
    .shutdown = remote_shutdown,
    .stop = remote_stop,
    .free = remote_free,
};
