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
 *     -> pool.c                 slots, queue, retries, --halt, --resume,
 *                               signals; gather.c (the next task's
 *                               inputs), gate.c (may it start),
 *                               deadline.c (timeouts), joblog.c,
 *                               progress.c
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
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/types.h>

#include <uv.h>

#define CPMAP_EXIT_USAGE 255	 /* usage error or cpmap's own fatal error */
#define CPMAP_PROTOCOL_VERSION 4 /* what the remote agent speaks */

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
	bool linked; /* :::+, ::::+: paired with the group before it */
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

	/* blocks of a stream (--pipe; block.c) */
	bool pipe;	     /* --pipe: each task reads one block on stdin */
	bool pipe_part;	     /* --pipe-part: blocks are ranges of -a FILE */
	bool round_robin;    /* --round-robin: -j long-lived tasks take
				block after block (roundrobin.c) */
	uint64_t block_size; /* --block: bytes per block, about */
	char *recend;	     /* a record ends with these bytes (owned) */
	size_t recend_len;
	char *recstart; /* ... and the next starts with these (owned) */
	size_t recstart_len;
	unsigned header_lines; /* --header N: lines that start every block */
	char *block_signature; /* what cuts the blocks, for the joblog's
				  Command column (owned), or NULL */

	/* the pool */
	bool persist;	      /* --persist: one long-lived worker per slot */
	uint64_t persist_max; /* --persist-max: tasks per worker, 0: no limit */
	unsigned stride;      /* --stride: tasks outstanding per worker */
	bool stride_auto;     /* --persist without --stride: it may grow */
	unsigned jobs;	      /* slots, >= 1 */
	unsigned chunk;	      /* inputs per task, >= 1 */
	size_t chunk_bytes;   /* -X, -m: a task's inputs stop growing past
				 this many bytes; 0: no such bound */
	unsigned buffer;      /* tasks started but not yet written, >= jobs */
	struct worker_plan *workers; /* where slots run (main.c's list) */
	size_t worker_count;

	/* JSON */
	bool json_input;		 /* -J: each line is a JSON value */
	bool json_output;		 /* --json: a record per task */
	enum bad_input_policy bad_input; /* --on-bad-input */
	uint64_t max_output;	 /* --max-output bytes per stream, 0: none */
	const char *results_dir; /* --results DIR, or NULL */

	/* control */
	uint64_t timeout_ms;	  /* --timeout per attempt, 0: none */
	double timeout_percent;	  /* --timeout P%: of the median runtime of
				     the tasks that succeeded, 0: none */
	uint64_t delay_ms;	  /* --delay: at least this between starts */
	double load_max;	  /* --load: start nothing above it, 0: none */
	uint64_t memfree;	  /* --memfree bytes, 0: none */
	bool jobserver;		  /* take tokens of make's jobserver, if any */
	unsigned jobserver_slots; /* --jobserver-slots: serve so many, 0 */
	uint64_t kill_after_ms;	  /* SIGTERM to SIGKILL, default 2000 */
	uint64_t host_timeout_ms; /* no worker up this long: host-lost */
	const char *transport;	  /* --transport: how to reach a host */
	bool remote_agent_sh;	  /* --remote-agent sh: never cpmap --worker */
	char **env;		  /* --env NAMEs, borrowed from argv */
	size_t env_count;
	char **basefiles; /* --basefile FILEs, borrowed from argv */
	size_t basefile_count;
	bool transfer;	/* --transfer: send {} before the task */
	char **returns; /* --return PATTERNs, borrowed from argv */
	size_t return_count;
	bool cleanup;	  /* --cleanup: remove the files sent and returned */
	unsigned retries; /* --retries: more attempts for failures */
	uint64_t retry_delay_ms; /* before the first retry, then doubled */
	struct halt_policy halt;
	const char *joblog; /* --joblog FILE, or NULL */
	bool joblog_append; /* --joblog +FILE: append to FILE */
	bool resume;	    /* skip tasks the joblog has */
	bool resume_failed; /* ... but run failed ones again */
	bool progress;	    /* --progress */
	bool bar;	    /* --bar */

	/* --timeline */
	const char *timeline_path; /* --timeline FILE.svg, or NULL */
	const char *timeline_from; /* --from-joblog LOG: draw it, run nothing */
	struct timeline *timeline; /* the attempts drawn (main's), or NULL */

	/* output */
	bool ordered;
	enum output_mode output_mode;
	bool tag;
	struct template *tagstring; /* --tagstring, parsed; or NULL */
	bool dry_run;
	bool verbose; /* -v, -t: each command on stderr as it starts */
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
	ERROR_FILE, /* a remote task's file could not be sent or returned */
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

/* Structs made per task (tasks, output places, attempts) are kept for
 * reuse when freed, but not under AddressSanitizer: it should see a use
 * after free. */
#if defined(__SANITIZE_ADDRESS__)
#define CPMAP_KEEP_SPARES 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CPMAP_KEEP_SPARES 0
#endif
#endif
#ifndef CPMAP_KEEP_SPARES
#define CPMAP_KEEP_SPARES 1
#endif

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);

/* Freed structs of one size, kept for reuse (all of them: as many as were
 * ever alive at once); without CPMAP_KEEP_SPARES, keep frees at once. */
struct spares {
	void **items;
	size_t count, cap;
};
void *spares_take(struct spares *s); /* NULL: none kept */
void spares_keep(struct spares *s, void *p);
void *xrealloc(void *ptr, size_t size);
void *xreallocarray(void *ptr, size_t count, size_t size);
char *xstrdup(const char *s);
void *xmemdup(const void *p, size_t size);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- log.c: messages on stderr, prefixed with the program name -------- */

void log_init(const char *progname);
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Called before every message: what waits to be written to stdout and
 * stderr goes first, so that a message follows the output before it. */
void log_set_before(void (*before)(void));
/* Put "SIGKILL" (or "signal 70") into name. */
void signal_name(int sig, char *name, size_t size);
/* The trace: CPMAP_DEBUG=FILE appends a line per lifecycle step. */
extern bool log_debug_enabled;
void log_debug_open(void);
void log_debug_write(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
#define log_debug(...)                                                         \
	do {                                                                   \
		if (log_debug_enabled)                                         \
			log_debug_write(__VA_ARGS__);                          \
	} while (0)
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
void buf_append_str(struct buf *b, const char *s);

/* Inline: a run of tiny tasks appends a few bytes at a time, millions of
 * times, and nearly always fits. */
static inline void
buf_append(struct buf *b, const void *data, size_t len)
{
	if (b->len + len + 1 > b->cap)
		buf_reserve(b, len);
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

static inline void
buf_append_char(struct buf *b, char c)
{
	if (b->len + 2 > b->cap)
		buf_reserve(b, 1);
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
}
/* Hand the bytes over to the caller and leave b empty. */
char *buf_steal(struct buf *b, size_t *len);
void buf_free(struct buf *b);

/* ---- io.c: whole writes to a descriptor ------------------------------ */

/* Told of a SIGINT or SIGTERM while a write waits for its reader, or
 * (sig 0) that the stall limit passed after one. */
typedef void (*io_stall_signal_cb)(int sig);

/*
 * Write all of data, riding out EINTR and EAGAIN; 0 or -errno.  To a pipe
 * or socket, a write that has to wait still hears INT and TERM (see
 * io_watch_signals).
 */
int io_write_all(int fd, const void *data, size_t len);
/* The same, keeping *done up to date with the bytes written so far (read
 * by whoever a stall calls, and after a failure). */
int io_write_counted(int fd, const void *data, size_t len, size_t *done);
/* Read a whole regular file into out; 0, or -errno. */
int io_read_file(const char *path, struct buf *out);
/* Make the directories above path (as mkdir -p its dirname); 0, or
 * -errno. */
int io_make_parents(const char *path);
/* Remove the now empty directories above a relative path (as rmdir -p
 * its dirname, quietly). */
void io_remove_parents(const char *path);
/* The same, for a record that must be whole or not started: to a pipe,
 * wait until it has room for all of it (when it can ever have). */
int io_write_record(int fd, const void *data, size_t len);
/* After a stop signal, a stalled write waits at most ms (0: no limit). */
void io_set_stall_limit(uint64_t ms);
/* Chain a handler for INT and TERM in front of the loop's (call it after
 * the loop's handlers are installed); hook is called during a stall. */
void io_watch_signals(io_stall_signal_cb hook);
/* How many INT and TERM cpmap has received. */
unsigned io_signal_count(void);

/* ---- record.c: splitting bytes into records and columns (pure) -------- */

/* Parse a -d argument: one byte, or \n \t \0 \\ \xHH.  -1 if invalid. */
int record_parse_delimiter(const char *spec);
/*
 * Decode a -C argument in place: text in which \n \t \r \\ \xHH stand
 * for their byte, as in -d.  Return spec, or NULL (spec untouched) when it
 * is empty, holds another escape, or would hold a NUL (\0, \x00).
 */
char *record_parse_separator(char *spec);
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

/* ---- block.c: blocks of a stream (--pipe, --pipe-part) -------------- */

/* What separates records: the end of one, the start of the next. */
struct block_separator {
	const char *end; /* may be empty (only --recstart) */
	size_t end_len;
	const char *start; /* usually empty */
	size_t start_len;
};

/* One block: a task's whole stdin (a plain value). */
struct block {
	uint64_t number; /* from 1: the task's seq */
	uint64_t offset; /* of its first record in the stream */
	uint64_t length; /* bytes of whole records, header excluded */
	char *header;	 /* --header lines that go first (owned), or NULL */
	size_t header_len;
	char *data; /* --pipe: the records (owned); NULL once released or
		       for --pipe-part */
	int fd;	    /* --pipe-part: the file to read at offset; else -1 */
	/* --round-robin: the long-lived task's stream of blocks (owned),
	 * and what went into it: blocks written whole, length the bytes
	 * written (headers too).  NULL for a block of the stream. */
	struct roundrobin_stream *stream;
	uint64_t blocks;
	/* --pipe from a pipe: a streamed block is its head data[0..head_len)
	 * (read past the last cut), then spliced bytes moved from the stream
	 * to the task unseen, then tail[0..tail_len); source is the reader
	 * while it is not yet cut (length is known only then). */
	bool streamed;
	struct block_reader *source;
	size_t head_len;
	uint64_t spliced;
	char *tail;
	size_t tail_len;
	bool spilled; /* held for a retry in fd, an unlinked file, from 0 */
};

/*
 * Where to cut data[0..len) into a block of about want bytes: after the
 * last record boundary at or before want, else after the first one past it
 * (a record is never split).  eof: nothing follows data, so its end is a
 * boundary.  0 when more data is needed to decide (or len is 0 at eof).
 */
size_t block_boundary(const char *data, size_t len, size_t want,
		      const struct block_separator *sep, bool eof);
/*
 * A block looks back at most this far from --block for its last record
 * boundary (past it, the block grows to the next one instead): the bytes
 * before that are never needed to cut it, so they can be spliced unseen.
 */
#define BLOCK_LOOKBACK 65536
/* As block_boundary, with the last boundary looked for in (floor, want]:
 * block_boundary's floor is want - BLOCK_LOOKBACK (or 0). */
size_t block_boundary_above(const char *data, size_t len, size_t want,
			    size_t floor, const struct block_separator *sep,
			    bool eof);
/* The first record boundary p >= from (p > 0) in data[0..len); 0 if none
 * can be seen yet (eof: len itself is one). */
size_t block_next_boundary(const char *data, size_t len, size_t from,
			   const struct block_separator *sep, bool eof);
/* Decode --recend/--recstart text: \n \t \r \0 \\ \xHH; the length of
 * the bytes written to out (which has room for strlen(spec)), or -1. */
ssize_t block_parse_separator(const char *spec, char *out);
void block_free(struct block *b);
/* Drop the block's bytes: its task needs them no more. */
void block_release(struct block *b);
/* b waits for a retry: past (jobs + 1) blocks in memory, it moves to an
 * unlinked file in $TMPDIR (spliced from there to its next attempt). */
void block_hold(struct block *b);

struct block_reader;
struct roundrobin;
struct roundrobin_stream;

/* Read the blocks of path (NULL or "-": stdin); NULL with *cause. */
struct block_reader *block_reader_start(uv_loop_t *loop,
					const struct options *opts,
					const char *path, char **cause);
void block_reader_set_ready(struct block_reader *r, void (*ready)(void *arg),
			    void *arg);
/* As input_next: 1 and *out (an input that is a block), 0: wait, -1: end. */
int block_reader_next(struct block_reader *r, struct input **out);
/* --block. */
size_t block_reader_block_size(const struct block_reader *r);
/* The next block of the stream itself, as block_reader_next (roundrobin.c
 * takes them so). */
int block_reader_take(struct block_reader *r, struct block **out);
/* What block_reader_move did. */
enum {
	BLOCK_MOVE_CUT = 0,	     /* the block is cut: its tail is known */
	BLOCK_MOVE_MORE = 1,	     /* moved some: call again */
	BLOCK_MOVE_WAIT_TASK = -1,   /* the task's pipe is full */
	BLOCK_MOVE_WAIT_STREAM = -2, /* nothing to read: wake(arg) later */
	BLOCK_MOVE_FAILED = -3,	     /* errno says why (EPIPE: task gone) */
};
/* Move the open streamed block on: splice its middle into fd (*written
 * bytes), or gather and cut its tail; fd -1: read and drop. */
int block_reader_move(struct block_reader *r, int fd, uint64_t *written,
		      void (*wake)(void *arg), void *arg);
/* The streamed block's task will not take the rest of it: the reader
 * reads it to its cut and drops it (nothing if b is not open). */
void block_reader_abandon(struct block_reader *r, const struct block *b);
/* An input that is the block b, named "NAME NUMBER". */
struct input *block_input(struct block *b, const char *name);
/* Is nothing left (without reading)? */
bool block_reader_exhausted(const struct block_reader *r);
/* Bytes read so far, and in all when known (--pipe-part), else 0. */
void block_reader_bytes(const struct block_reader *r, uint64_t *read,
			uint64_t *total);
int block_reader_error(const struct block_reader *r);
/* Stop reading (blocks already taken stay readable). */
void block_reader_stop(struct block_reader *r);
void block_reader_free(struct block_reader *r);

/* ---- block_feed.c: a block into a task's stdin ------------------------ */

/* A pipe's size where allowed: stdin's, and each task's. */
#define BLOCK_PIPE_SIZE 1048576

/*
 * Feed a block to a task's stdin: fd is the write end of its pipe, which
 * the feed owns and closes once the block is written (or the reader has
 * gone).  The block must live until block_feed_stop.
 */
struct block_feed;
struct block_feed *block_feed_start(uv_loop_t *loop, int fd,
				    const struct block *b);
/* Stop feeding (if it still does) and let go. */
void block_feed_stop(struct block_feed *f);
/* --round-robin: the next block for a feed that waits, or its EOF. */
void block_feed_give(struct block_feed *f, const struct block *b);
void block_feed_end(struct block_feed *f);

/* ---- roundrobin.c: --round-robin, long-lived tasks fed block after block */

/* Share r's blocks among up to jobs long-lived tasks. */
struct roundrobin *roundrobin_create(uv_loop_t *loop, struct block_reader *r,
				     unsigned jobs);
/* The pool's: ready is called when roundrobin_next may yield more. */
void roundrobin_set_ready(struct roundrobin *rr, void (*ready)(void *arg),
			  void *arg);
/* The reader's ready callback (arg is the roundrobin). */
void roundrobin_reader_ready(void *arg);
/* As input_next: 1 and *out, an input that is a new task's stream (its
 * block's stream), 0: wait, -1: no more tasks. */
int roundrobin_next(struct roundrobin *rr, struct input **out);
/* Is nothing left to hand out?  read_all: the reader is at its end. */
bool roundrobin_exhausted(const struct roundrobin *rr, bool read_all);
/* Hand out no more blocks: each stream gets EOF after its current one. */
void roundrobin_stop(struct roundrobin *rr);
void roundrobin_free(struct roundrobin *rr);
/* The feed of the stream's task starts: the first block to write. */
const struct block *roundrobin_attach(struct roundrobin_stream *s,
				      struct block_feed *f);
/* The feed wrote the current block whole: the next one; or NULL, then
 * block_feed_give comes later, or *end: close the task's stdin. */
const struct block *roundrobin_fed(struct roundrobin_stream *s, bool *end);
/* The stream's task ended; written: bytes of the current block it got. */
void roundrobin_detach(struct roundrobin_stream *s, uint64_t written);
/* A stream's task that ended before its stdin did failed: say what it
 * was given and what became of the block being written. */
void roundrobin_result(const struct block *b, struct result *r);
void roundrobin_stream_free(struct roundrobin_stream *s);

/* ---- input.c: inputs, read lazily from their sources ------------------ */

/* One input, owned by the task that uses it.  What input_free looks at
 * comes first, with the text: a -n 1000 task frees a thousand inputs
 * long since out of the cache, and each should cost a line, not two. */
struct input {
	char *text; /* the input as read (-J: compact JSON, or a string's
		       value); NUL-terminated; may hold NULs */
	size_t len;
	char **columns;	     /* --colsep columns, ::: values, -J elements */
	void *json;	     /* -J: the parsed value (json.c's) */
	char *field_text;    /* -J: the last {name} looked up */
	char *error;	     /* bad input: why, or NULL */
	struct block *block; /* --pipe: the block this input is (owned) */
	bool spare_sized;    /* made from input.c's spares */
	bool one_line;	     /* holds no newline: cut from a stream at them */
	bool owns_columns;   /* columns[i] are allocations of their own */
	bool empty_columns;  /* -J []: no column at all, not even the text */
	bool strict;	     /* -J: a missing column or field is an error */
	size_t *column_lens; /* lengths of columns[i] */
	size_t column_count; /* 0: the whole text is column 1 */
	const struct header *header; /* --header names, or NULL */
	uint64_t number;	     /* 1-based input number, for messages */
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
/*
 * The number of inputs in all, when it is known before they are read
 * (::: groups, regular files; counted at start for --progress, --bar and
 * --halt ...%): true and *total, else false.
 */
bool input_total(const struct input_reader *reader, uint64_t *total);
/* The errno of the first source that could not be read, or 0. */
int input_error(const struct input_reader *reader);
/* --pipe: bytes read so far, and in all when known; else both 0. */
void input_bytes(const struct input_reader *reader, uint64_t *read,
		 uint64_t *total);
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

/* jansson's version (--version). */
const char *json_version(void);
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

/*
 * Parse the command.  With no words (count 0), each input is a command
 * line for /bin/sh -c (parallel < jobs).  NULL with *cause set for a usage
 * error: {= perl =}, -I '', or no command with --no-shell.
 */
struct template *template_parse(char *const *words, int count,
				const char *replace, enum shell_choice shell,
				bool named_fields, char **cause);
/* Run shell lines with path instead of /bin/sh ($CPMAP_SHELL). */
void template_set_shell(struct template *t, const char *path);
/* The command (not run by a shell) is an exported bash function: run it
 * as bash -c with every word, every value, one quoted word. */
void template_use_bash(struct template *t);
/* Does the command run through a shell's -c (its argv[2] is the line)? */
bool template_uses_shell(const struct template *t);
/*
 * Does the command take values from the input ({} {N} fields, or the
 * whole command when there is none)?  The input is appended only when no
 * placeholder at all appears ({#} and {%} count).
 */
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
/* Append a quoted command line as one line: newlines as '"$CPMAP_NL"'. */
void shquote_one_line(struct buf *out, const char *line, size_t len);
/*
 * Read back a line "export NAME=WORD ...; exec WORD ..." made of words as
 * shquote_append writes them (the remote agent's requests): env gets
 * "NAME=value" strings and argv the words, each NUL-terminated.  False
 * for any other line (it is then for sh to run).
 */
bool shquote_parse_exec(const char *line, size_t len, struct buf *env,
			struct buf *argv, size_t *argc);
/* Read back a line of exports alone ("export NAME=WORD ...; " ...), as
 * shquote_parse_exec reads them; false for any other line. */
bool shquote_parse_exports(const char *line, size_t len, struct buf *env);

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
/* Tasks run at niceness nice (--nice), and inherit descriptors a and b
 * (a jobserver's pipe; -1: none) besides 0, 1 and 2. */
void child_configure(bool set_nice, int nice, int a, int b);
/* Build the children's environment again (after a setenv). */
void child_refresh_environment(void);
/* Signal the process group of every live child (async-signal-safe). */
void child_signal_all(int sig);
void child_stop(void);

/*
 * A child with pipes (child.c too): one process abstraction for the local
 * worker's attempts and for long-lived sessions, which differ only in the
 * callbacks they pass.
 */
struct process;

struct process_callbacks {
	/* Bytes from stdout (stream 1) or stderr (2); len 0: its EOF. */
	void (*read)(void *arg, int stream, const char *data, size_t len);
	/* Writes to stdin are done (status 0, or the libuv error). */
	void (*written)(void *arg, int status);
	/* The process exited; its pipes may still be open.  (Or NULL.) */
	void (*exit)(void *arg, int wait_status);
	/* Exited and every handle closed: the last call, then it is freed. */
	void (*closed)(void *arg, int wait_status);
};

struct process_spec {
	char *const *argv;
	bool stdin_pipe; /* a pipe to its stdin; else /dev/null */
	int stdin_fd;	 /* > 0: its stdin instead (process_start closes it) */
	bool capture;	 /* pipes from its stdout and stderr; else ours */
	uint64_t seq;	 /* its environment's CPMAP_SEQ, CPMAP_SLOT, ... */
	unsigned slot;
	const char *host;
};

/* Start it; 0, or a negative errno (and no process, no callback). */
int process_start(uv_loop_t *loop, const struct process_spec *spec,
		  const struct process_callbacks *cb, void *arg,
		  struct process **out);
/* Queue bytes for its stdin; owned ones are freed once written. */
void process_write(struct process *p, const char *data, size_t len, bool owned);
/* Writes to stdin not yet done. */
unsigned process_writes(const struct process *p);
/* EOF on its stdin. */
void process_close_stdin(struct process *p);
/* If it has not exited ms from now, SIGTERM it, and SIGKILL kill_ms later. */
void process_quit_after(struct process *p, uint64_t ms, uint64_t kill_ms);
/* Signal its process group, while it or its pipes live. */
void process_signal(struct process *p, int sig);
bool process_exited(const struct process *p);
pid_t process_pid(const struct process *p);
/* libuv's alloc_cb for a pipe that is read and copied at once: one shared
 * 64 KiB block (the read_cb runs right after each alloc). */
void process_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);

/* ---- jobserver.c: GNU make's jobserver, client and server ------------- */

struct jobserver;

/* At start, before any descriptor is opened: the jobserver MAKEFLAGS
 * names, if any (a bad one is ignored, and warned about once a run
 * starts). */
void jobserver_inherit(void);
/* --jobserver=no: use none (MAKEFLAGS and its descriptors stay as they
 * are for the tasks, which do not inherit the descriptors). */
void jobserver_forget(void);
/* --jobserver-slots N: a FIFO of N - 1 tokens in a private directory,
 * exported in MAKEFLAGS; 0, or -1 with *cause. */
int jobserver_serve(unsigned slots, char **cause);
/* The pipe style's descriptors, which tasks inherit: true if any. */
bool jobserver_pipe_fds(int *read_fd, int *write_fd);
/* A client on loop, or NULL when there is no jobserver to use; ready(arg)
 * is called when a token came after jobserver_take said no. */
struct jobserver *jobserver_start(uv_loop_t *loop, void (*ready)(void *arg),
				  void *arg);
/* May one more task start, with running tasks running now?  The first
 * needs no token; if one is missing, ready is called later. */
bool jobserver_take(struct jobserver *js, unsigned running);
/* Give back the tokens running tasks do not need. */
void jobserver_settle(struct jobserver *js, unsigned running);
/* Every token back, the watch closed (the run is over). */
void jobserver_stop(struct jobserver *js);
void jobserver_free(struct jobserver *js);
/* Async-signal-safe, for _exit paths: tokens back, a server's FIFO gone. */
void jobserver_emergency(void);

/* ---- throttle.c: --load and --memfree ---------------------------------- */

struct throttle;

/* NULL without --load or --memfree.  ready(arg): tasks may start again;
 * shed(arg): memory is short, stop the youngest task and run it later. */
struct throttle *throttle_start(uv_loop_t *loop, const struct options *opts,
				void (*ready)(void *arg),
				void (*shed)(void *arg), void *arg);
/* May a task start now?  If not, ready is called when one may. */
bool throttle_open(struct throttle *t);
/* The number of tasks running changed (--memfree watches them). */
void throttle_running(struct throttle *t, unsigned running);
void throttle_stop(struct throttle *t);
void throttle_free(struct throttle *t);

/* ---- the pool's interface to workers ---------------------------------- */

/*
 * A worker is an instance of a kind that serves some of the pool's slots:
 * this machine, a persistent pool, one remote host (tmux's window_mode and
 * window_mode_entry are the model).  The pool holds one record per worker
 * and learns its capacity from the kind (pool_worker_up); a worker can go
 * down and come back.  An attempt is start(), then data() any number of
 * times, then done() exactly once, never from inside start().
 */
struct worker; /* the pool's record of one worker instance */

/* How an attempt ended, as the worker saw it. */
struct attempt_end {
	int spawn_error;       /* errno when the command could not start */
	int exit_code;	       /* -1 when there is none */
	int signal;	       /* the signal that ended it, or 0 */
	bool lost;	       /* the worker went away first: not the task's */
	enum error_kind error; /* ERROR_BAD_INPUT: it could not be sent */
	const char *message;   /* the worker's failure or the error, or NULL */
	uint64_t ended_ns;     /* uv_hrtime() when it ended, or 0: now */
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
	char *const *argv;	     /* the task's, or its slot's (per_slot) */
	struct input *const *inputs; /* the task's, borrowed */
	size_t input_count;
	const char *stdin_data; /* --stdin, or NULL for /dev/null */
	size_t stdin_len;
	const struct block *block; /* --pipe: the stdin instead, or NULL */
	bool capture; /* pipes for stdout/stderr; else inherit ours */
	uint64_t seq;
	unsigned slot;	     /* {%}: the pool's number, from 1 */
	unsigned slot_index; /* the worker's own slot, from 0 */
};

/* One worker the options ask for (main.c builds the list). */
struct worker_plan {
	const struct worker_kind *kind;
	char *where;	/* "local", or a host (main.c's) */
	unsigned slots; /* 0: the worker says, once it is up */
	bool from_file; /* named by --workers-file */
};

/* A kind of worker: the pool's one interface to where attempts run. */
struct worker_kind {
	const char *name;
	/* The command is expanded once per slot, not per task. */
	bool per_slot_command;
	/* Attempts started in one fill go out together (one write, at the
	 * end of the loop's turn): they share one reading of the clock. */
	bool batched;
	/* Make one worker's state; it reports capacity with pool_worker_up,
	 * now or later. */
	void *(*create)(struct worker *w, uv_loop_t *loop,
			const struct options *opts,
			const struct worker_plan *plan);
	/* Start an attempt; NULL only if cpmap itself cannot go on. */
	void *(*start)(void *state, const struct attempt_spec *spec,
		       const struct attempt_callbacks *cb, void *arg);
	/* Send sig to the attempt's whole process group. */
	void (*signal)(void *attempt, int sig);
	/* Take no new attempt, finish the running ones, then let go: the
	 * worker was removed from the run (or NULL). */
	void (*retire)(void *state);
	/* No more input will come, and nothing waits to start: long-lived
	 * processes may have EOF once their requests are written, so that a
	 * buffering one answers.  Retries may still start attempts (or
	 * NULL). */
	void (*drain)(void *state);
	/* Every task is done: let long-lived processes go (or NULL). */
	void (*shutdown)(void *state);
	/* The emergency stop: signal every process (async-signal-safe). */
	void (*stop)(void *state, int sig);
	void (*free)(void *state);
};

/* attempt.c: end an attempt that never reached a process, from the loop
 * (never from start); fill exit_code and signal from a wait status. */
void attempt_end_later(uv_loop_t *loop, const struct attempt_callbacks *cb,
		       void *arg, const struct attempt_end *end);
void attempt_end_status(struct attempt_end *end, int wait_status);

/* pool.c: the kinds' side of the pool. */
/* The worker serves slots, each holding up to places attempts at once. */
void pool_worker_up(struct worker *w, unsigned slots, unsigned places);
/* The worker takes no task for now (for_good: nor ever); the attempts it
 * holds still end, lost or not, through their done callbacks. */
void pool_worker_down(struct worker *w, bool for_good);
const char *pool_worker_name(const struct worker *w);

/* ---- job.c: one attempt as a local child process (the local worker) --- */

extern const struct worker_kind local_worker;

/* ---- session.c: one long-lived process per slot, fed requests --------- */

struct session;
struct session_set;

/* What a long-lived process speaks: the only part that differs between
 * persistent workers and remote hosts. */
struct session_protocol {
	const char *name;
	/* Append the attempt's request to batch: the answers it expects, or
	 * -1 with *cause when its input cannot be sent (bad input). */
	long (*encode)(void *arg, struct buf *batch,
		       const struct attempt_spec *spec, char **cause);
	/* Bytes from the process's stdout (len 0: EOF): answer with
	 * session_head_data/_answered/_done, or session_broken. */
	void (*decode)(struct session *s, const char *data, size_t len);
	/* Append a request that signals the attempt where it runs; NULL:
	 * the process itself is signalled. */
	void (*encode_signal)(struct buf *batch,
			      const struct attempt_spec *spec, int sig);
	/* When the process dies, its oldest attempt takes its fate (the
	 * input may have killed it); else every attempt is lost. */
	bool blame_first;
};

struct session_config {
	const struct session_protocol *protocol;
	void *arg;		/* for encode and died */
	const char *host;	/* CPMAP_HOST, and its messages' tag */
	uint64_t max_requests;	/* requests per process, 0: no limit */
	uint64_t kill_after_ms; /* SIGTERM to SIGKILL at the end */
	const char *preamble;	/* written to each process before requests */
	/* Does the oldest attempt take the blame for this death?  (NULL:
	 * the protocol's blame_first.) */
	bool (*to_blame)(void *arg, int wait_status);
	/* A process that owes answers and keeps silent while inputs wait
	 * for it is taken to buffer them (--persist): warn, and EOF. */
	bool stall_check;
	/* A slot's process ended before it was told to go (or NULL). */
	void (*died)(void *arg, unsigned index, int wait_status);
	/* Requests outstanding per process (the pool's places per slot):
	 * while processes answer all they owe, half a stride or more, by
	 * the time their answers are read (twice in a row), it doubles up
	 * to grow_to (0: it is fixed), and stride_grown tells the worker
	 * kind. */
	unsigned stride, grow_to;
	void (*stride_grown)(void *arg, unsigned stride);
};

/* A worker's slots, each with at most one long-lived process at a time. */
struct session_set *session_set_create(uv_loop_t *loop,
				       const struct session_config *config,
				       unsigned slots);
/* Send an attempt to the slot's process (starting one if needed);
 * argv is the process's command and lives as long as the set. */
void *session_submit(struct session_set *set, char *const *argv,
		     const struct attempt_spec *spec,
		     const struct attempt_callbacks *cb, void *arg);
void session_signal(void *attempt, int sig);
/* No more attempts will come: EOF tells each process to go once it has
 * answered what it holds. */
void session_set_retire(struct session_set *set);
/* No more input will come: each process gets EOF once its requests are
 * written (a retry may still start a new one, which gets EOF in turn). */
void session_set_drain(struct session_set *set);
/* ... and every task is done: the set's loop handle closes too. */
void session_set_shutdown(struct session_set *set);
/* Signal every process group of the set (async-signal-safe). */
void session_set_stop(struct session_set *set, int sig);
/* Its worker went away: kill every process; their attempts are all lost,
 * whatever the processes still say. */
void session_set_abandon(struct session_set *set);
void session_set_free(struct session_set *set);
/* For a protocol's decode: */
void session_head_data(struct session *s, int stream, const char *data,
		       size_t len);
/* One answer of the oldest attempt is in; it ends with its last. */
void session_head_answered(struct session *s);
void session_head_done(struct session *s, const struct attempt_end *end);
/* The process broke the protocol: kill it; its attempts end with it. */
void session_broken(struct session *s, const char *why);
/* A buffer the protocol keeps between decode calls. */
struct buf *session_pending(struct session *s);
/* The oldest attempt's spec (NULL: none), and the config's arg. */
const struct attempt_spec *session_head_spec(struct session *s);
void *session_protocol_arg(struct session *s);
/* A state the protocol keeps per process (freed with the process). */
void **session_protocol_data(struct session *s);
unsigned session_slot_number(const struct session *s);

/* ---- persist.c: persistent workers, one per slot (--persist) ------------ */

extern const struct worker_kind persist_worker;
/* The line protocol, which remote hosts speak too with --persist. */
extern const struct session_protocol persist_protocol;
/* How far the stride of a local worker of that many slots may grow
 * without --stride. */
unsigned persist_stride_limit(unsigned slots);

/* ---- remote.c: hosts reached over ssh or --transport (-S) --------------- */

extern const struct worker_kind remote_worker;
/* --persist on hosts: each slot's session is the persistent command. */
extern const struct worker_kind remote_persist_worker;
/* agent_script.c: the sh agent a slot's session runs on its host. */
extern const char agent_script[];

/* ---- agent.c: cpmap --worker, the agent in C (same protocol) ---------- */

/* Serve requests on stdin until EOF; the exit status. */
int agent_run(void);

/* ---- hosts.c: -S specs, --workers-file, and watching it --------------- */

struct hosts_watch;
struct pool;

/* One spec "[N/][user@]host[:port]" or "[N/]:" into a plan. */
int hosts_parse(const char *spec, const struct options *opts, bool jobs_given,
		struct worker_plan *plan, char **cause);
/* Specs separated by commas, added to *plans. */
int hosts_parse_list(const char *list, const struct options *opts,
		     bool jobs_given, struct worker_plan **plans, size_t *count,
		     char **cause);
/* A workers file: a list per line, "#" comments. */
int hosts_read_file(const char *path, const struct options *opts,
		    bool jobs_given, struct worker_plan **plans, size_t *count,
		    char **cause);
void hosts_free_plans(struct worker_plan *plans, size_t count);
/* Look at the file once a second; hosts come and go with it. */
struct hosts_watch *hosts_watch_start(uv_loop_t *loop, const char *path,
				      const struct options *opts,
				      bool jobs_given, struct pool *pool);
void hosts_watch_stop(struct hosts_watch *w);

/* ---- halt.c: --halt policies (pure) ----------------------------------- */

int halt_parse(const char *text, struct halt_policy *h, char **cause);
/* Has the run reached the policy's condition?  total: 0 if not known. */
bool halt_reached(const struct halt_policy *h, uint64_t failed,
		  uint64_t succeeded, uint64_t total);
/* The exit status for failures, as GNU parallel gives it. */
int halt_failure_status(const struct halt_policy *h, uint64_t failed,
			uint64_t succeeded);
/* The exit status when --halt stops the run on result r (total: the
 * tasks in all, 0 if not known). */
int halt_exit_status(const struct halt_policy *h, uint64_t failed,
		     uint64_t succeeded, uint64_t total,
		     const struct result *r);

/* ---- median.c: the median of the last runtimes (--timeout P%) ------- */

struct median;

struct median *median_create(void);
void median_add(struct median *m, uint64_t value);
/* The median of the values added (the last 999); false if none yet. */
bool median_get(const struct median *m, uint64_t *value);
void median_free(struct median *m);

/* ---- joblog.c: --joblog, and --resume's reading of it ------------------ */

struct joblog;
struct done_set;

struct joblog *joblog_open(const char *path, bool append, char **cause);
/* Add the task's line to those waiting for joblog_flush. */
void joblog_write(struct joblog *log, const struct result *r,
		  const char *command, uint64_t received);
/* Write the waiting lines in one write; 0, or -errno (said on stderr; the
 * log is left with whole lines only, the lines not written dropped). */
int joblog_flush(struct joblog *log);
/* Is the log a regular file (not a pipe, not the terminal, not stdout)? */
bool joblog_is_file(const struct joblog *log);
void joblog_close(struct joblog *log);
/* The tasks a joblog shows done (failed_too: only successes count). */
struct done_set *joblog_read_done(const char *path, bool failed_too,
				  char **cause);
bool done_set_has(const struct done_set *set, uint64_t seq);
/* --pipe --resume: -1 with *cause unless every task line of the joblog
 * ends with the signature of these blocks (opts->block_signature). */
int joblog_check_blocks(const char *path, const char *signature, char **cause);
void done_set_free(struct done_set *set);

/* One line of a joblog, its strings pointing into the line read. */
struct joblog_entry {
	uint64_t seq;
	const char *host; /* ":" is this machine */
	double start;	  /* seconds since the epoch */
	double runtime;	  /* seconds */
	bool timed;	  /* start and runtime could be read */
	long exitval, signal;
	const char *command;
};
typedef void (*joblog_entry_cb)(void *arg, const struct joblog_entry *entry);
/* Hand every line of a joblog (cpmap's or GNU parallel's) to each; -1
 * with *cause if it cannot be read.  *bad: the lines not understood. */
int joblog_each(const char *path, joblog_entry_cb each, void *arg, size_t *bad,
		char **cause);

/* ---- progress.c: --progress and --bar on stderr ----------------------- */

struct progress_counts {
	uint64_t done, failed, total; /* total: 0 while unknown */
	unsigned running;
	uint64_t bytes, bytes_total; /* --pipe: read, and in all (0: unknown) */
};

struct progress;

struct progress *progress_start(uv_loop_t *loop, bool bar);
void progress_note(struct progress *p, const struct progress_counts *counts);
/* Draw the final state and go. */
void progress_stop(struct progress *p);

/* ---- timeline.c: --timeline FILE.svg, a picture of the attempts ------- */

enum timeline_outcome {
	TIMELINE_OK,
	TIMELINE_FAILED,
	TIMELINE_SIGNALED,
	TIMELINE_TIMEOUT,
	TIMELINE_SPAWN, /* the command could not be started */
	TIMELINE_LOST,	/* lost with its worker (host-lost) */
	TIMELINE_OUTCOMES
};

/* One attempt, as the pool or a joblog tells it (a plain value). */
struct timeline_attempt {
	uint64_t seq;
	const char *host;  /* where it ran; NULL or "local": this machine */
	unsigned slot;	   /* its lane; 0: unknown, packed when drawn */
	unsigned attempt;  /* of its task, from 1; 0: unknown */
	double start, end; /* wall clock, seconds since the epoch */
	enum timeline_outcome outcome;
	int code;	  /* the exit code, or the signal (signaled, timeout) */
	const char *text; /* the input (a joblog: the command), or NULL */
	size_t text_len;
};

struct timeline;
struct task;

struct timeline *timeline_create(void);
/* Keep a compact copy of the attempt (its text truncated). */
void timeline_add(struct timeline *tl, const struct timeline_attempt *a);
/* The pool's hook: an attempt of t has ended so (tl NULL: no picture). */
void timeline_note(struct timeline *tl, const struct task *t,
		   const struct attempt_end *end);
/* Add every attempt a joblog shows; -1 with *cause if it cannot be
 * read. */
int timeline_read_joblog(struct timeline *tl, const char *path, char **cause);
/*
 * Write the SVG to f, merging the bars of a lane that are narrower than
 * merge_px pixels into one; -1 if f could not be written.
 */
int timeline_render(struct timeline *tl, FILE *f, double merge_px);
/* Write the SVG to path atomically, at most TIMELINE_MAX_BYTES (merging
 * more when needed); 0, or -1 with *cause. */
#define TIMELINE_MAX_BYTES (5u * 1000 * 1000)
int timeline_write(struct timeline *tl, const char *path, char **cause);
/* Attempts kept, and the bytes their records hold (tests). */
size_t timeline_count(const struct timeline *tl);
size_t timeline_memory(const struct timeline *tl);
void timeline_free(struct timeline *tl);

/* ---- gather.c: the inputs of the next task, taken from the reader ----- */

struct gather;

struct gather *gather_create(const struct options *opts,
			     struct input_reader *reader);
/* Read on until the next task's inputs are gathered: true when they are
 * (gather_take); false when the reader calls back, or a bad input or the
 * end of the input comes first. */
bool gather_next(struct gather *g);
/* The gathered inputs, taken over by the caller (the array is ours). */
struct input **gather_take(struct gather *g, size_t *count);
/* A bad input whose turn has come (a task of its own), or NULL. */
struct input *gather_take_bad(struct gather *g);
/* Is a bad input waiting for its turn? */
bool gather_has_bad(const struct gather *g);
/* Has the reader no more (or was it stopped)? */
bool gather_input_done(const struct gather *g);
/* ... and nothing is gathered or held: no task will come any more. */
bool gather_drained(const struct gather *g);
/* Read no more and drop what was gathered; true if any input was left
 * unread or unrun so. */
bool gather_stop(struct gather *g);
void gather_free(struct gather *g);

/* ---- task.c: building a task and mapping its attempts to a result ----- */

/*
 * A task, as the scheduler holds it.  Shared by pool.c (which queues and
 * runs it) and task.c (which builds its command and its result): the two
 * halves of the scheduler, split so that pool.c is only about the flow.
 */
struct task {
	struct pool *pool;
	uint64_t seq;
	struct input **inputs;
	size_t input_count;
	struct input *one_input; /* inputs, when there is one */
	char **argv;
	char *stdin_data; /* --stdin: the inputs, each with its delimiter */
	size_t stdin_len;
	char *tag; /* --tag: the inputs joined by spaces, when several, or
		      the --tagstring */
	struct task_output *out;
	struct slot *slot;	 /* where the current attempt runs, or NULL */
	unsigned last_slot;	 /* the slot number of the last attempt */
	const char *host;	 /* where the last attempt ran */
	void *attempt;		 /* the worker's attempt while it runs */
	unsigned attempts;	 /* attempts started */
	unsigned failures;	 /* attempts that failed (lost ones are not) */
	unsigned lost;		 /* attempts whose worker went away first */
	bool interrupted;	 /* stopped by us: it gets no result */
	bool timed_out;		 /* stopped by --timeout */
	bool shed;		 /* stopped by --memfree: to run again */
	uint64_t timeout_ms;	 /* ... after this long */
	double start;		 /* wall clock at the start, seconds */
	uint64_t start_ns;	 /* monotonic clock at the start */
	uint64_t seen[3];	 /* bytes the attempt wrote, by stream (1, 2) */
	TAILQ_ENTRY(task) queue; /* in the ready or the waiting queue */
	TAILQ_ENTRY(task) in_slot; /* attempts in flight at its slot */
	uv_timer_t retry_timer;	   /* --retry-delay, while waiting (last:
				      not cleared by task_create) */
};

struct output;

/* A task for inputs (taken over), with its place in the output; its tag
 * is tagstring expanded (--tagstring), or NULL: the inputs. */
struct task *task_create(struct pool *p, struct output *out, uint64_t seq,
			 struct input **inputs, size_t count,
			 struct template *tagstring);
void task_free(struct task *t);
/* The command for an attempt at slot (number): the task's own, or the
 * slot's cached one; NULL with *cause for a value that cannot be passed. */
char **task_command(struct task *t, const struct options *opts,
		    struct template *tmpl, unsigned slot, char ***slot_argv,
		    char **cause);
/* The wall clock, as task_started reads it: once a second at most. */
struct task_clock {
	bool read;
	uint64_t us; /* the wall clock then, in microseconds since the epoch */
	uint64_t ns; /* uv_hrtime() then */
};

/* An attempt of t starts at now_ns (uv_hrtime): its start on both
 * clocks. */
void task_started(struct task *t, struct task_clock *clock, uint64_t now_ns);
/* The fields every result of the task shares. */
void task_result_init(const struct task *t, struct result *r);
/* Turn how an attempt ended into the task's result. */
void task_make_result(const struct task *t, const struct options *opts,
		      const struct attempt_end *end, struct result *r);
/* The task's result is final: drop what only its attempts needed. */
void task_done(struct task *t);
/* -v: the command of the attempt that starts, on stderr. */
void task_announce(const struct task *t, const struct template *tmpl);
/* --dry-run: the quoted command is the task's output; r is its result. */
void task_dry_run(struct task *t, struct output *o, const struct template *tmpl,
		  struct result *r);

/* ---- roster.c: the workers and their slots (where attempts go) -------- */

enum worker_state {
	WORKER_STARTING, /* made; its capacity is not known yet */
	WORKER_UP,	 /* its slots take attempts */
	WORKER_DOWN,	 /* takes nothing for now; may come back */
	WORKER_GONE,	 /* will never take anything again */
};

/* One worker of the run: a kind's instance, and the slots it serves. */
struct worker {
	struct roster *roster;
	const struct worker_kind *kind;
	void *data; /* the kind's state */
	char *name; /* "local", or the host */
	enum worker_state state;
	struct slot **slots; /* every slot it ever had */
	unsigned slot_count;
	unsigned active; /* slots in use now (the first ones) */
	uint64_t losses; /* attempts lost with it */
	bool creating;	 /* in its kind's create: no attempt may start */
};

/*
 * A slot runs one attempt at a time, or several at a long-lived worker,
 * which answers them in order: the oldest is the one it works on.  The
 * roster keeps its places; the pool keeps its attempts and its timer.
 */
struct slot {
	struct pool *pool;
	struct worker *worker;
	unsigned number;	      /* {%}, from 1 */
	unsigned index;		      /* the worker's own, from 0 */
	unsigned free;		      /* places not in use */
	unsigned in_flight;	      /* places in use */
	bool listed;		      /* on the roster's list of free places */
	TAILQ_ENTRY(slot) free_entry; /* ... there */
	TAILQ_HEAD(, task) attempts;  /* in flight here, oldest first */
	char **argv;		      /* per_slot_command: the slot's */
	uv_timer_t timer; /* deadline.c's: --timeout of the oldest, then
			     --kill-after */
};

struct roster;

/* changed(pool) is called when places come or go (after roster_start). */
struct roster *roster_create(uv_loop_t *loop, const struct options *opts,
			     struct pool *pool,
			     void (*changed)(struct pool *pool));
/* Add a worker: its kind makes its state and brings it up in time. */
struct worker *roster_add(struct roster *r, const struct worker_plan *plan);
/* The worker named so takes nothing new, for good; false if none. */
bool roster_retire(struct roster *r, const char *name);
void roster_start(struct roster *r);
/* Take a free place (NULL if none); give it back when the attempt ends. */
struct slot *roster_take(struct roster *r);
void roster_release(struct roster *r, struct slot *s);
bool roster_has_place(const struct roster *r);
/* Is every worker gone for good?  Then no task can run any more. */
bool roster_all_gone(const struct roster *r);
size_t roster_worker_count(const struct roster *r);
size_t roster_slot_count(const struct roster *r);
struct slot *roster_slot(const struct roster *r, size_t i);
/* No more input: tell every kind (its drain). */
void roster_drain(struct roster *r);
/* The run is over: tell every kind, close the timers. */
void roster_close(struct roster *r);
/* The emergency stop, through every kind (async-signal-safe). */
void roster_stop(const struct roster *r, int sig);
void roster_free(struct roster *r);

/* ---- deadline.c: --timeout and --kill-after, by each slot's timer ------ */

struct deadline;

struct deadline *deadline_create(const struct options *opts,
				 const struct roster *roster);
/* Time the slot's oldest attempt, if it has one and there is a timeout. */
void deadline_arm(struct deadline *d, struct slot *s);
/* The slot's oldest attempt changed: time the new one afresh. */
void deadline_rearm(struct deadline *d, struct slot *s);
/* A task succeeded (--timeout P% learns its runtime). */
void deadline_note_success(struct deadline *d, const struct result *r);
/* SIGKILL the slot's oldest attempt after --kill-after. */
void deadline_kill_after(struct deadline *d, struct slot *s);
void deadline_free(struct deadline *d);

/* ---- gate.c: may the next attempt start now (but for a free place)? --- */

struct gate;

/* open(arg): a start held back may go now; shed(arg): memory is short
 * (--memfree), stop the youngest task and run it later. */
struct gate *gate_create(uv_loop_t *loop, const struct options *opts,
			 void (*open)(void *arg), void (*shed)(void *arg),
			 void *arg);
/* Make the timers (the loop runs from now on); gate_stop closes them. */
void gate_start(struct gate *g);
/* Out of processes or descriptors: no start until an attempt ends. */
bool gate_spawn_blocked(const struct gate *g);
/* --delay: has it passed since the last start?  If not, open is called
 * when it has. */
bool gate_delay_over(struct gate *g);
/* --load, --memfree and make's jobserver: may one more attempt start,
 * with running ones running?  If not, open is called when one may. */
bool gate_may_start(struct gate *g, unsigned running);
/* An attempt started at now_ns (uv_hrtime). */
void gate_started(struct gate *g, uint64_t now_ns);
/* The number of attempts running changed: tokens not needed go back. */
void gate_running(struct gate *g, unsigned running);
/* ... and only the tokens (the pool has started what it could). */
void gate_settle(struct gate *g, unsigned running);
/* A spawn failed for want of processes or descriptors: hold every start
 * until an attempt ends or a while has passed; false when that has
 * happened too often with nothing running (the task fails then). */
bool gate_spawn_wait(struct gate *g, unsigned running);
/* An attempt ended (spawned: it did start): starts may go again. */
void gate_attempt_ended(struct gate *g, bool spawned);
void gate_stop(struct gate *g);
void gate_free(struct gate *g);

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
/* A worker joins the run, or leaves it (it finishes what it runs). */
void pool_add_worker(struct pool *p, const struct worker_plan *plan);
void pool_retire_worker(struct pool *p, const char *name);
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
 * may log it and free it now.  whole is false when a write of the task's
 * output failed (stdout or stderr full, gone, or a spill unreadable): it
 * was not written in full, and must not be logged as done.
 */
typedef void (*output_written_cb)(void *owner, const struct result *r,
				  bool whole);

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
 * N (input X): why" and then); a plain non-zero exit is not told unless
 * then says more (a retry). */
void output_report(const struct result *r, const char *then);
/* "task N (input X): why", allocated. */
char *output_describe(const struct result *r);
/* The errno of a failed write to stdout (EPIPE: the reader left), or 0. */
int output_error(const struct output *o);
/* Stdout is gone (seen without writing): write nothing more to it. */
void output_fail(struct output *o, int error);
/* Tasks begun whose result is not yet written. */
size_t output_pending(const struct output *o);
/* The run ends now, mid-write (a stall, then a second signal): say on
 * stderr which tasks' output was cut short or not written, and why. */
void output_abandon(struct output *o, const char *why);
/* Watch stdout, when it is a pipe or socket, for its reader leaving: then
 * the output fails with EPIPE and gone(arg) is called, once. */
void output_watch_stdout(struct output *o, uv_loop_t *loop,
			 void (*gone)(void *arg), void *arg);
/* Has stdout's reader left?  Asked when a -u task died of SIGPIPE, which
 * can come before the watch hears of it. */
bool output_stdout_gone(struct output *o);
/* Stop watching stdout, and stop coalescing (the loop can end). */
void output_unwatch_stdout(struct output *o);
/*
 * Coalesce: the results finished within a turn of the loop are written
 * together at its end (before the loop waits), then their written()
 * calls are made, then flushed(arg, true).  Without it (or coalesce
 * false), each task is written and told at once, then flushed(arg, false).
 */
void output_start(struct output *o, uv_loop_t *loop, bool coalesce,
		  void (*flushed)(void *arg, bool turn_end), void *arg);
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
