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
 * installed on the host.  The protocol is framed by byte counts, so any
 * bytes survive: a request is "T seq inlen\n", the command line (quoted
 * here for the remote sh, on one line) and the task's stdin; an
 * answer is "R seq exit signal outlen errlen\n" followed by the task's
 * stdout and stderr.  "K seq signal\n" signals a running task's process
 * group on the host; EOF on the session kills it.  A session that dies
 * takes no blame: its attempt is lost and runs again elsewhere.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"

#define REMOTE_RETRY_FIRST_MS 1000
#define REMOTE_RETRY_MAX_MS 60000
#define REMOTE_HEARTBEAT_S "2"	/* the host's control says "." this often */
#define REMOTE_SILENCE_MS 9000 /* no word from the host this long: hung */

/* The control process: how many CPUs, then a heartbeat until EOF. */
static const char remote_control_script[] =
    "echo cpmap-host $(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc "
    "2>/dev/null || echo 1) $(cpmap --worker-version 2>/dev/null || echo 0)"
    "; (while sleep " REMOTE_HEARTBEAT_S
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
	char *name;		  /* as the user wrote it, without "N/" */
	unsigned slots;		  /* as asked for, or 0: its CPU count */
	char **control;		  /* the control process's argv */
	char **session;		  /* each slot session's argv */
	char *control_dir;	  /* ssh: the private ControlPath directory */
	char *control_path;	  /* ... and the socket in it */
	struct process *process;  /* the control process, or NULL */
	struct buf said;	  /* its stdout, until the hello line */
	struct buf complaint;	  /* its stderr, a line at a time */
	struct session_set *sets; /* the slots' sessions, once up */
	unsigned set_slots;	  /* ... how many */
	uv_timer_t retry;	  /* waiting to try again */
	uint64_t retry_ms;	  /* the next delay */
	uv_timer_t silence;	  /* how long the host has said nothing */
	const char *silenced;	  /* why we killed the control, or NULL */
	struct buf environment;	  /* --env: "export NAME=value; " */
	bool persist;		  /* --persist: sessions run the command */
	bool retired;		  /* removed from the run: never again up */
	char ***persist_argv;	  /* ... each slot's session argv */
};

/* The per-session state of the protocol's decoder. */
struct remote_decoder {
	bool hello;		    /* the agent said who it is */
	bool in_frame;		    /* reading an answer's bytes */
	unsigned long long left[3]; /* bytes still due, by stream */
	int exit_code, signal;
};

/* ---- the protocol ------------------------------------------------------ */

static long
remote_encode(void *arg, struct buf *batch, const struct attempt_spec *spec,
	      char **cause)
{
	struct remote_host *h = arg;
	struct buf cmd = {0};
	char header[96];
	int n;

	(void)cause;
	n = snprintf(header, sizeof header,
		     "export CPMAP_SEQ=%llu CPMAP_SLOT=%u PARALLEL_SEQ=%llu "
		     "PARALLEL_JOBSLOT=%u; ",
		     (unsigned long long)spec->seq, spec->slot,
		     (unsigned long long)spec->seq, spec->slot);
	buf_append(&cmd, header, (size_t)n);
	buf_append_str(&cmd, "export CPMAP_HOST=");
	shquote_append(&cmd, h->name, strlen(h->name));
	buf_append_str(&cmd, " PARALLEL_SSHLOGIN=");
	shquote_append(&cmd, h->name, strlen(h->name));
	buf_append_str(&cmd, "; ");
	if (h->environment.len > 0)
		buf_append(&cmd, h->environment.data, h->environment.len);
	buf_append_str(&cmd, "exec");
	for (char *const *word = spec->argv; *word != NULL; word++) {
		buf_append_char(&cmd, ' ');
		shquote_append(&cmd, *word, strlen(*word));
	}
	n = snprintf(header, sizeof header, "T %llu %zu\n",
		     (unsigned long long)spec->seq,
		     spec->stdin_data != NULL ? spec->stdin_len : 0);
	buf_append(batch, header, (size_t)n);
	/* One line: a newline (always inside single quotes) is spelt out. */
	shquote_one_line(batch, cmd.data, cmd.len);
	buf_append_char(batch, '\n');
	if (spec->stdin_data != NULL)
		buf_append(batch, spec->stdin_data, spec->stdin_len);
	buf_free(&cmd);
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
	if (sscanf(line, "R %llu %d %d %llu %llu", &seq, &d->exit_code,
		   &d->signal, &d->left[1], &d->left[2]) != 5) {
		session_broken(s, "the remote agent broke the protocol");
		return;
	}
	d->in_frame = true;
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
	session_head_done(s, &end);
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
		if (d->in_frame || line->len > 0)
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
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (nl == NULL) {
			buf_append(line, p, (size_t)(end - p));
			return;
		}
		buf_append(line, p, (size_t)(nl - p));
		p = nl + 1;
		remote_header(s, d, line->data);
		line->len = 0;
		if (d->in_frame && d->left[1] == 0 && d->left[2] == 0)
			remote_frame_done(s, d);
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
		session_set_stop(h->sets, SIGKILL);
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
		struct session_config config = {
		    .protocol =
			h->persist ? &persist_protocol : &remote_protocol,
		    .arg = h,
		    .host = h->name,
		    .max_requests = h->persist ? h->opts->persist_max : 0,
		    .kill_after_ms = h->opts->kill_after_ms,
		    .preamble = native || h->persist ? NULL : agent_script,
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
	if (rc < 0) {
		char why[96];

		snprintf(why, sizeof why, "cannot run %s: %s", h->control[0],
			 strerror(-rc));
		remote_down(h, why);
	}
}

/* ---- the worker kind --------------------------------------------------- */

static void *
remote_create(struct worker *w, uv_loop_t *loop, const struct options *opts,
	      const struct worker_plan *plan)
{
	struct remote_host *h = xcalloc(1, sizeof *h);

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
	h->control = remote_argv(h, remote_control_script, true);
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
		buf_append_str(&line, "export CPMAP_HOST=");
		shquote_append(&line, h->name, strlen(h->name));
		buf_append_str(&line, "; ");
		if (h->environment.len > 0)
			buf_append(&line, h->environment.data,
				   h->environment.len);
		buf_append_str(&line, "exec");
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
	free(h->name);
	free(h);
}

const struct worker_kind remote_worker = {
    .name = "remote",
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
    .create = remote_create,
    .start = remote_persist_start,
    .signal = session_signal,
    .retire = remote_retire,
    .shutdown = remote_shutdown,
    .stop = remote_stop,
    .free = remote_free,
};
