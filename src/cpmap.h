/*
 * cpmap.h - the one internal header: the map of the house.
 *
 * Vocabulary.  An *input* is one record read (a line, a NUL-separated
 * record, a JSON value, one ::: argument, or a combination of one value per
 * ::: group).  A *task* is one command invocation built from one input, or
 * from a chunk of inputs (--chunk).  An *attempt* is one run of a task
 * (--retries make more).  A *slot* is one unit of parallelism (-j).  A
 * *worker* is where a slot runs its attempts: a local child process per
 * attempt (job.c) or one long-lived process per slot (persist.c).
 *
 * Data flows one way, and the sections below follow it, after the shared
 * values and the utilities:
 *
 *   input.c, record.c, json.c   records from stdin, files, ::: groups
 *     -> template.c, shquote.c  argv (or a quoted sh -c line) per task
 *     -> pool.c                 slots, queue, retries, timeouts, --halt,
 *                               --resume, signals; joblog.c, progress.c
 *     -> job.c | persist.c      one attempt (child.c starts and reaps)
 *     -> pool.c                 the task's result
 *     -> output.c               ordered/unordered, raw/tagged/lines/JSON
 *                               (capture.c holds bytes, json.c encodes
 *                               records, results.c writes --results)
 *
 * Structs are private to the file that owns them, except the plain value
 * types shared by everybody: options, input, result and buf.
 */
#ifndef CPMAP_H
#define CPMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#define CPMAP_EXIT_USAGE 255 /* usage error or cpmap's own fatal error */

/* ---- options (main.c fills it; everybody reads it) -------------------- */

enum source_kind {
	SOURCE_STDIN,	  /* standard input, split by the delimiter */
	SOURCE_FILE,	  /* :::: FILE or -a FILE */
	SOURCE_ARGUMENTS, /* ::: a b c */
};

/* One input group: several groups combine into one input per combination. */
struct source {
	enum source_kind kind;
	const char *path; /* SOURCE_FILE: its path, "-" is stdin */
	char **arguments; /* SOURCE_ARGUMENTS: borrowed from argv */
	size_t argument_count;
};

enum output_mode {
	OUTPUT_GROUP,	/* each task's output in one piece when it ends */
	OUTPUT_LINE,	/* whole lines as they come (--line-buffer) */
	OUTPUT_UNGROUP, /* the tasks write to our stdout/stderr directly */
};

enum shell_choice { SHELL_AUTO, SHELL_NEVER, SHELL_ALWAYS };

enum bad_input_policy {
	BAD_INPUT_RECORD, /* a task result with error kind bad-input */
	BAD_INPUT_SKIP,	  /* a message on stderr, no result */
	BAD_INPUT_ABORT,  /* a result, then stop starting tasks */
};

/* --halt: when to stop early (halt.c). */
enum halt_when { HALT_NEVER, HALT_SOON, HALT_NOW };
enum halt_why { HALT_FAIL = 1, HALT_SUCCESS, HALT_DONE };

struct halt_policy {
	enum halt_when when;
	enum halt_why why;
	double threshold; /* a count, or a percentage */
	bool percent;
};

struct options {
	/* inputs */
	int delimiter;		/* record separator byte; '\n' by default */
	bool keep_empty;	/* keep empty records (--keep-empty) */
	bool link;		/* pair groups up instead of a product */
	const char *colsep;	/* -C: literal column separator, or NULL */
	bool header;		/* --header: the first input names columns */
	struct source *sources; /* at least one */
	size_t source_count;

	/* the command */
	char **command; /* borrowed from argv, NULL-terminated */
	int command_count;
	const char *replace; /* -I STR: STR stands for the input, or NULL */
	enum shell_choice shell;
	bool feed_stdin; /* --stdin: the input goes to the task's stdin */

	/* the pool */
	bool persist;	      /* --persist: one long-lived worker per slot */
	uint64_t persist_max; /* --persist-max: tasks per worker, 0: no limit */
	unsigned stride;      /* --stride: tasks outstanding per worker */
	unsigned jobs;	      /* slots, >= 1 */
	unsigned chunk;	      /* inputs per task, >= 1 */
	unsigned buffer;      /* tasks started but not yet written, >= jobs */

	/* JSON */
	bool json_input;		 /* -J: each line is a JSON value */
	bool json_output;		 /* --json: a record per task */
	enum bad_input_policy bad_input; /* --on-bad-input */
	uint64_t max_output;	 /* --max-output bytes per stream, 0: none */
	const char *results_dir; /* --results DIR, or NULL */

	/* control */
	uint64_t timeout_ms;	 /* --timeout per attempt, 0: none */
	uint64_t kill_after_ms;	 /* SIGTERM to SIGKILL, default 2000 */
	unsigned retries;	 /* --retries: more attempts for failures */
	uint64_t retry_delay_ms; /* before the first retry, then doubled */
	struct halt_policy halt;
	const char *joblog; /* --joblog FILE, or NULL */
	bool resume;	    /* skip tasks the joblog has */
	bool resume_failed; /* ... but run failed ones again */
	bool progress;	    /* --progress */
	bool bar;	    /* --bar */

	/* output */
	bool ordered;
	enum output_mode output_mode;
	bool tag;
	bool dry_run;
};

struct input;
struct capture;

/* ---- the result of a task (a plain value: the pool makes it, the sinks
 * write it) ------------------------------------------------------------ */

enum task_status {
	STATUS_OK,
	STATUS_FAILED,	 /* non-zero exit */
	STATUS_SIGNALED, /* killed by a signal */
	STATUS_TIMEOUT,	 /* killed by --timeout */
	STATUS_ERROR,	 /* could not run, bad input, output over the limit */
	STATUS_SKIPPED,	 /* --resume: done by an earlier run */
};

enum error_kind {
	ERROR_NONE,
	ERROR_SPAWN,
	ERROR_BAD_INPUT,
	ERROR_TIMEOUT,
	ERROR_HOST_LOST,
	ERROR_OUTPUT_LIMIT,
};

struct result {
	uint64_t seq;
	struct input *const *inputs; /* the task's, borrowed */
	size_t input_count;
	char *const *argv; /* borrowed; NULL when it was never built */
	const char *host;  /* where the last attempt ran, or NULL */
	unsigned slot;
	unsigned attempts;
	double start;	 /* of the last attempt, seconds since the epoch */
	double duration; /* of the last attempt, seconds */
	enum task_status status;
	int exit_code; /* -1 when there is none */
	int signal;    /* 0 when there is none */
	enum error_kind error;
	char *message;	       /* for an error: what went wrong (owned) */
	uint64_t output_size;  /* output-limit: the bytes the task wrote */
	uint64_t line, column; /* bad input: where, when known */
};

/* ---- xmalloc.c: allocation that never returns NULL ------------------- */

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
void *xreallocarray(void *ptr, size_t count, size_t size);
char *xstrdup(const char *s);
void *xmemdup(const void *p, size_t size);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- log.c: messages on stderr, prefixed with the program name -------- */

void log_init(const char *progname);
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Put "SIGKILL" (or "signal 70") into name. */
void signal_name(int sig, char *name, size_t size);
/* Print a message and exit 255: for cpmap's own unrecoverable errors. */
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* ---- buf.c: a growable byte buffer (a plain value) -------------------- */

struct buf {
	char *data; /* always NUL-terminated when non-NULL */
	size_t len;
	size_t cap;
};

void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_append_str(struct buf *b, const char *s);
void buf_append_char(struct buf *b, char c);
/* Hand the bytes over to the caller and leave b empty. */
char *buf_steal(struct buf *b, size_t *len);
void buf_free(struct buf *b);

/* ---- io.c: whole writes to a descriptor ------------------------------ */

/* Told of a SIGINT or SIGTERM while a write waits for its reader. */
typedef void (*io_stall_signal_cb)(int sig);

/*
 * Write all of data, riding out EINTR and EAGAIN; 0 or -errno.  To a pipe
 * or socket, a write that has to wait still hears INT and TERM (see
 * io_watch_signals).
 */
int io_write_all(int fd, const void *data, size_t len);
/* Chain a handler for INT and TERM in front of the loop's (call it after
 * the loop's handlers are installed); hook is called during a stall. */
void io_watch_signals(io_stall_signal_cb hook);
/* How many INT and TERM cpmap has received. */
unsigned io_signal_count(void);

/* ---- record.c: splitting bytes into records and columns (pure) -------- */

/* Parse a -d argument: one byte, or \n \t \0 \\ \xHH.  -1 if invalid. */
int record_parse_delimiter(const char *spec);
/*
 * Find the next complete record in data[0..len).  On success return the
 * record's length (without the delimiter) and set *consumed to the bytes to
 * drop, delimiter included.  Return -1 when no delimiter is in the data; at
 * end of input, the caller takes the rest as the last record.
 */
ssize_t record_next(const char *data, size_t len, int delimiter,
		    size_t *consumed);
/* Remove a trailing '\r' (line mode tolerates CRLF); return the new len. */
size_t record_strip_cr(const char *data, size_t len);

/* ---- input.c: inputs, read lazily from their sources ------------------ */

/* One input, owned by the task that uses it. */
struct input {
	char *text; /* the input as read (-J: compact JSON, or a string's
		       value); NUL-terminated; may hold NULs */
	size_t len;
	char **columns;	     /* --colsep columns, ::: values, -J elements */
	size_t *column_lens; /* lengths of columns[i] */
	size_t column_count; /* 0: the whole text is column 1 */
	bool owns_columns;   /* columns[i] are allocations of their own */
	bool empty_columns;  /* -J []: no column at all, not even the text */
	bool strict;	     /* -J: a missing column or field is an error */
	const struct header *header; /* --header names, or NULL */
	void *json;		     /* -J: the parsed value (json.c's) */
	char *field_text;	     /* -J: the last {name} looked up */
	uint64_t number;	     /* 1-based input number, for messages */
	char *error;		     /* bad input: why, or NULL */
	uint64_t error_line, error_column;
};

struct input_reader;
typedef void (*input_ready_cb)(void *arg);

/* Open every source; NULL with *cause set if one cannot be opened. */
struct input_reader *input_start(uv_loop_t *loop, const struct options *opts,
				 char **cause);
/* ready is called when input_next, having said "wait", may yield more. */
void input_set_ready(struct input_reader *reader, input_ready_cb ready,
		     void *arg);
/*
 * Take the next input.  Return 1 and set *out, 0 when none is ready yet
 * (ready will be called later), or -1 at the end of all input.  Reading is
 * paused whenever nobody asks for the next input.
 */
int input_next(struct input_reader *reader, struct input **out);
/* The input's column n (1-based); the whole input if it has no columns. */
const char *input_column(const struct input *in, size_t n, size_t *len);
/* A field by name (--header column, -J path); NULL with *cause if none. */
const char *input_field(struct input *in, const char *name, size_t *len,
			char **cause);
void input_free(struct input *in);
/* The errno of the first source that could not be read, or 0. */
int input_error(const struct input_reader *reader);
/* Is there no input left?  Takes (and drops) one if there is; looks
 * without blocking for an end of input not yet read. */
bool input_exhausted(struct input_reader *reader);
/* Stop reading and close every handle; safe at any time. */
void input_stop(struct input_reader *reader);
void input_reader_free(struct input_reader *reader);
/* Build an input from its text and split it into columns (unit tests). */
struct input *input_create(const char *text, size_t len, const char *colsep,
			   uint64_t number);

/* ---- json.c: JSON inputs and result records (jansson lives here) ---- */

/* Parse one -J line; a bad one gives an input whose error says why. */
struct input *json_input_create(const char *line, size_t len, uint64_t number);
/* A field or dotted path of a -J input; NULL with *cause if missing. */
const char *json_input_field(struct input *in, const char *path, size_t *len,
			     char **cause);
void json_release(void *json);
/* The compact JSON text of a -J input (a string keeps its quotes). */
char *json_input_compact(const struct input *in, size_t *len);
/* Take the next piece of a record: 0, or a -errno that stops it. */
typedef int (*json_sink_cb)(void *arg, const char *data, size_t len);
/*
 * Write the result's record, one line of compact JSON, to sink in pieces
 * of bounded size (one piece for a record under 64 KiB), however much the
 * task wrote.  0, or the first -errno of the sink or of reading a capture
 * back; a capture that cannot be read at all fails before the first piece.
 */
int json_record_write(const struct result *r, struct capture *stdout_capture,
		      struct capture *stderr_capture, json_sink_cb sink,
		      void *arg);
/* Append the result's record to out (tests and fuzzers). */
void json_record_encode(struct buf *out, const struct result *r,
			struct capture *stdout_capture,
			struct capture *stderr_capture);

/* ---- template.c: the command, parsed once, expanded per task (pure) --- */

struct template;

/* The values one expansion needs besides the inputs. */
struct expansion {
	struct input *const *inputs; /* the task's inputs (>= 1) */
	size_t input_count;
	uint64_t seq;  /* {#} */
	unsigned slot; /* {%} */
};

struct template *template_parse(char *const *words, int count,
				const char *replace, enum shell_choice shell,
				bool named_fields, char **cause);
/* Does the command run through /bin/sh -c? */
bool template_uses_shell(const struct template *t);
/* Does the command mention the input (otherwise it is appended)? */
bool template_has_input(const struct template *t);
/* Does the command use {%} (the slot), which is only known at start? */
bool template_uses_slot(const struct template *t);
/*
 * Expand into a NULL-terminated argv in one allocation (free() it).  When
 * with_input is false the inputs are not appended (--stdin).  Return NULL
 * and set *cause when a value cannot be passed (a NUL byte in an argument,
 * a missing field).
 */
char **template_expand(struct template *t, const struct expansion *e,
		       bool with_input, char **cause);
void template_free(struct template *t);

/* ---- shquote.c: POSIX shell quoting (pure) ---------------------------- */

/* Append s as one literal shell word: unquoted when safe, else '...'. */
void shquote_append(struct buf *out, const char *s, size_t len);
/* Append argv as a command line the shell would run (shell: sh -c form). */
void shquote_command_line(struct buf *out, char *const *argv, bool shell);
/* Does the word need the shell: whitespace or shell syntax in it? */
bool shquote_needs_shell(const char *word);

/* ---- child.c: starting and reaping child processes -------------------- */

typedef void (*child_exit_cb)(void *arg, int wait_status);

/* What a child gets: its argv, its three descriptors, its environment. */
struct child_spec {
	char *const *argv;
	int stdin_fd, stdout_fd, stderr_fd; /* dup2'ed onto 0, 1, 2 */
	uint64_t seq;			    /* CPMAP_SEQ */
	unsigned slot;			    /* CPMAP_SLOT */
	const char *host;		    /* CPMAP_HOST */
};

/* Watch SIGCHLD on loop; every child of cpmap must come from child_spawn. */
int child_init(uv_loop_t *loop);
/*
 * Start a child in a new process group.  Return 0 and set *pid, or a
 * negative errno (ENOENT, EACCES, E2BIG...) when it could not be started;
 * then no child exists and exit is never called.
 */
int child_spawn(const struct child_spec *spec, child_exit_cb exit, void *arg,
		pid_t *pid);
/* Signal the process group of every live child. */
void child_signal_all(int sig);
size_t child_count(void);
void child_stop(void);

/* ---- job.c: one attempt as a local child process (the local worker) --- */

/* How an attempt ended, as the worker saw it. */
struct attempt_end {
	int spawn_error; /* errno when the command could not start, else 0 */
	int wait_status; /* waitpid status when spawn_error is 0 */
	bool lost;	 /* the worker went away first: not the task's fault */
	const char *reason; /* a persistent worker's failure, or NULL */
};

/* What the pool hears from a running attempt. */
struct attempt_callbacks {
	/* A piece of the task's stdout (stream 1) or stderr (stream 2). */
	void (*data)(void *arg, int stream, const char *data, size_t len);
	/* The attempt is over; called exactly once, never from *_start. */
	void (*done)(void *arg, const struct attempt_end *end);
};

/* What one attempt needs to run. */
struct attempt_spec {
	char *const *argv;
	const char *stdin_data; /* fed to stdin, or NULL for /dev/null */
	size_t stdin_len;
	bool capture; /* pipes for stdout/stderr; else inherit ours */
	uint64_t seq;
	unsigned slot;
};

/* A kind of worker: the pool's one interface to where attempts run. */
struct worker_kind {
	const char *name;
	/* Start an attempt; NULL only if cpmap itself cannot go on. */
	void *(*start)(uv_loop_t *loop, const struct attempt_spec *spec,
		       const struct attempt_callbacks *cb, void *arg);
	/* Send sig to the attempt's whole process group. */
	void (*signal)(void *attempt, int sig);
	/* Every task is done: let long-lived workers go (or NULL). */
	void (*shutdown)(void);
};

extern const struct worker_kind local_worker;

/* ---- persist.c: persistent workers, one per slot (--persist) ------------ */

extern const struct worker_kind persist_worker;

void persist_init(uv_loop_t *loop, const struct options *opts);
void persist_free(void);

/* ---- halt.c: --halt policies (pure) ----------------------------------- */

int halt_parse(const char *text, struct halt_policy *h, char **cause);
/* Has the run reached the policy's condition?  total: 0 if not known. */
bool halt_reached(const struct halt_policy *h, uint64_t failed,
		  uint64_t succeeded, uint64_t total);

/* ---- joblog.c: --joblog, and --resume's reading of it ------------------ */

struct joblog;
struct done_set;

struct joblog *joblog_open(const char *path, bool append, char **cause);
/* Append the task's line; 0, or -errno (the log is left whole). */
int joblog_write(struct joblog *log, const struct result *r,
		 const char *command, uint64_t received);
void joblog_close(struct joblog *log);
/* The tasks a joblog shows done (failed_too: only successes count). */
struct done_set *joblog_read_done(const char *path, bool failed_too,
				  char **cause);
bool done_set_has(const struct done_set *set, uint64_t seq);
void done_set_free(struct done_set *set);

/* ---- progress.c: --progress and --bar on stderr ----------------------- */

struct progress_counts {
	uint64_t done, failed, total; /* total: 0 while unknown */
	unsigned running;
};

struct progress;

struct progress *progress_start(uv_loop_t *loop, bool bar);
void progress_note(struct progress *p, const struct progress_counts *counts);
/* Draw the final state and go. */
void progress_stop(struct progress *p);

/* ---- pool.c: the scheduler -------------------------------------------- */

struct pool;

/* The pool writes through an output of its own, made from opts; NULL with
 * *cause set when the joblog cannot be read or opened. */
struct pool *pool_create(uv_loop_t *loop, const struct options *opts,
			 struct template *tmpl, struct input_reader *reader,
			 char **cause);
/* Run until every task is written or the run is stopped. */
void pool_run(struct pool *p);
/* The exit status the run earned (0, 1-101, 129, 130, 143). */
int pool_exit_status(const struct pool *p);
/* The errno of a failed write to stdout (EPIPE: the reader left), or 0. */
int pool_output_error(const struct pool *p);
void pool_free(struct pool *p);

/* ---- utf8.c: streaming UTF-8 validation, JSON string escaping (pure) -- */

struct utf8_state {
	bool valid;
	unsigned need;	   /* continuation bytes still expected */
	unsigned char low; /* the range of the next continuation byte */
	unsigned char high;
};

void utf8_init(struct utf8_state *s);
/* Feed the next piece; false as soon as the bytes cannot be UTF-8. */
bool utf8_feed(struct utf8_state *s, const char *data, size_t len);
/* Valid, and no character left unfinished at the end? */
bool utf8_finish(const struct utf8_state *s);
bool utf8_valid(const char *data, size_t len);
/* Append valid UTF-8 as the inside of a JSON string (no quotes). */
void utf8_json_escape(struct buf *out, const char *data, size_t len);

/* ---- base64.c: streaming base64 (pure) --------------------------------- */

struct base64_state {
	unsigned char held[3]; /* bytes of an unfinished group */
	unsigned pending;
};

void base64_init(struct base64_state *s);
void base64_feed(struct base64_state *s, struct buf *out, const char *data,
		 size_t len);
void base64_finish(struct base64_state *s, struct buf *out);

/* ---- capture.c: a task's output, in memory or spilled to a temp file -- */

struct capture;

struct capture *capture_create(void);
void capture_append(struct capture *c, const char *data, size_t len);
size_t capture_size(const struct capture *c);
/* The errno of the first spill that failed (a full disk), or 0. */
int capture_failure(void);
/* Write the whole capture to fd; 0, or -errno of the failed write. */
int capture_write(struct capture *c, int fd);
/* Visit the bytes in order, in pieces, without copying them all. */
int capture_each(struct capture *c,
		 int (*visit)(void *arg, const char *data, size_t len),
		 void *arg);
void capture_free(struct capture *c);

/* ---- output.c: the sinks, in input order or as tasks finish ----------- */

struct output;
struct task_output; /* one task's place in the output */

/*
 * A task's place is written (r: its result) or skipped (r: NULL): its owner
 * may log it and free it now.
 */
typedef void (*output_written_cb)(void *owner, const struct result *r);

struct output *output_create(const struct options *opts,
			     output_written_cb written);
/*
 * A task with sequence number seq begins; tag is its --tag prefix and must
 * live, like owner, until written(owner) is called.
 */
struct task_output *output_begin(struct output *o, uint64_t seq,
				 const char *tag, size_t tag_len, void *owner);
void output_data(struct output *o, struct task_output *t, int stream,
		 const char *data, size_t len);
/* The task's result is final: write it as soon as order allows.  The
 * output takes r->message. */
void output_finish(struct output *o, struct task_output *t,
		   const struct result *r);
/* The task will never have a result (interrupted): skip its place. */
void output_discard(struct output *o, struct task_output *t);
/* Forget what the task wrote so far: it runs again (--retries). */
void output_reset(struct output *o, struct task_output *t);
/* Say on stderr what became of a task that did not succeed ("cpmap: task
 * N (input X): why" and then). */
void output_report(const struct result *r, const char *then);
/* The errno of a failed write to stdout (EPIPE: the reader left), or 0. */
int output_error(const struct output *o);
/* Stdout is gone (seen without writing): write nothing more to it. */
void output_fail(struct output *o, int error);
/* Tasks begun whose result is not yet written. */
size_t output_pending(const struct output *o);
void output_free(struct output *o);

/* ---- results.c: --results DIR/SEQ/{stdout,stderr,record.json} ------ */

/* Make sure DIR exists and can be written; -1 with *cause set if not. */
int results_prepare(const char *dir, char **cause);
/*
 * Write the task's stdout, stderr and record (json_record_write) to
 * DIR/SEQ/; the record goes to also(arg) too, in the same pass, when also
 * is given (--json).  What cannot be written is said once on stderr, and
 * results_failed() is true from then on; also is fed all the same.
 */
void results_write(const char *dir, const struct result *r,
		   struct capture *stdout_capture,
		   struct capture *stderr_capture, json_sink_cb also,
		   void *arg);
/* Has anything of --results not been written (the run must not exit 0)? */
bool results_failed(void);

#endif /* CPMAP_H */
