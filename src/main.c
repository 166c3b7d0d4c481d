/*
 * main.c - cpmap's command line: options into one struct options, the
 * modules wired together, the loop run, the outcome mapped to an exit
 * status.  The only file outside the library.
 *
 * Every usage error is found here, before any task starts, and ends the run
 * with one line naming the problem and exit status 255.  Which options
 * there are, and --help, come from the option table (optable.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/resource.h>
#include <unistd.h>

#include <uv.h>

#include "cpmap.h"
#include "optable.h"

static void __attribute__((noreturn, format(printf, 1, 2)))
main_usage_error(const char *fmt, ...)
{
	char message[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof message, fmt, ap);
	va_end(ap);
	fatal("%s (see cpmap --help)", message);
}

/* A choice option's value (optable.c has its words): their index. */
static int
main_choice(int id, const char *text)
{
	const struct optable_row *row = optable_find(id);
	int choice = optable_choice(id, text);
	char message[1024], *words;

	if (choice >= 0)
		return choice;
	words = optable_words_text(row);
	snprintf(message, sizeof message, "%s: '%s': say %s", row->names[0],
		 text, words);
	free(words);
	main_usage_error("%s", message);
}

/* --completion SHELL: the shell's completion script for cpmap. */
static void
main_completion(const char *shell)
{
	static void (*const print[])(FILE *) = {
	    completion_print_bash, completion_print_zsh, completion_print_fish};

	/* bash, zsh, fish */
	print[main_choice(OPT_COMPLETION, shell)](stdout);
	if (fflush(stdout) != 0 || ferror(stdout))
		fatal("writing the completion script: %s", strerror(errno));
}

/* Parse a whole decimal number in [min, max] for option name. */
static unsigned long
main_number(const char *name, const char *text, unsigned long min,
	    unsigned long max)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(text, &end, 10);
	if (text[0] == '\0' || text[0] == '-' || *end != '\0' || errno != 0)
		main_usage_error("%s: '%s' is not a number", name, text);
	if (n < min || n > max)
		main_usage_error("%s: %s is out of range (%lu to %lu)", name,
				 text, min, max);
	return n;
}

/* Parse a duration: 500ms, 30s, 5m, 1h, or plain seconds (1.5). */
static uint64_t
main_duration(const char *name, const char *text, bool zero_ok)
{
	static const struct {
		const char *unit;
		double ms;
	} units[] = {{"", 1000},   {"s", 1000},	   {"ms", 1},
		     {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
	char *end;
	double n;

	errno = 0;
	n = strtod(text, &end);
	if (end != text && text[0] != '-' && errno == 0 && n >= 0 && n < 1e9) {
		for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
			if (strcmp(end, units[i].unit) != 0)
				continue;
			uint64_t ms = (uint64_t)(n * units[i].ms + 0.5);

			if (ms > 0 || (zero_ok && n == 0))
				return ms;
		}
	}
	main_usage_error("%s: '%s' is not a duration (like 500ms, 30s, 5m, "
			 "1h)",
			 name, text);
}

/* Parse a byte count with an optional binary suffix: 10k, 5M, 1G. */
static uint64_t
main_size(const char *name, const char *text)
{
	char *end;
	unsigned long long n;
	int shift = 0;

	errno = 0;
	n = strtoull(text, &end, 10);
	if (end != text && end[0] != '\0' && end[1] == '\0') {
		const char *units = "kKmMgG";
		const char *u = strchr(units, end[0]);

		if (u != NULL) {
			shift = (int)((u - units) / 2 + 1) * 10;
			end++;
		}
	}
	if (text[0] == '\0' || text[0] == '-' || *end != '\0' || errno != 0 ||
	    n == 0 || n > (UINT64_MAX >> shift))
		main_usage_error("%s: '%s' is not a positive size (like 4096, "
				 "64k, 10M, 1G)",
				 name, text);
	return (uint64_t)n << shift;
}

static unsigned
main_online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned)n : 1;
}

/* Descriptors cpmap holds itself: the loop, its signal pipes, the joblog,
 * /dev/null, a spill file or two. */
#define MAIN_FDS_RESERVED 16
/* Descriptors a running task holds: pipes to its stdin, stdout, stderr. */
#define MAIN_FDS_PER_TASK 3
/* Below this, not even the loop and one task can be made. */
#define MAIN_FDS_MINIMUM (MAIN_FDS_RESERVED + MAIN_FDS_PER_TASK)

/* The soft limit on open files (raised to the hard one at start). */
static unsigned long
main_fd_limit(void)
{
	struct rlimit files;

	if (getrlimit(RLIMIT_NOFILE, &files) < 0 ||
	    files.rlim_cur == RLIM_INFINITY || files.rlim_cur > ULONG_MAX)
		return ULONG_MAX;
	return (unsigned long)files.rlim_cur;
}

/* How many tasks can run at once within the limit on open files. */
static unsigned long
main_fd_jobs(void)
{
	unsigned long limit = main_fd_limit();

	if (limit < MAIN_FDS_RESERVED + MAIN_FDS_PER_TASK)
		return 1;
	return (limit - MAIN_FDS_RESERVED) / MAIN_FDS_PER_TASK;
}

/* -j 0: as many slots as the descriptor and process limits allow. */
static unsigned
main_max_jobs(void)
{
	struct rlimit procs;
	unsigned long jobs = 65536, files = main_fd_jobs();

	if (files < jobs)
		jobs = files;
	if (getrlimit(RLIMIT_NPROC, &procs) == 0 &&
	    procs.rlim_cur != RLIM_INFINITY && procs.rlim_cur / 2 < jobs)
		jobs = procs.rlim_cur / 2;
	if (jobs < 1)
		jobs = 1;
	return (unsigned)jobs;
}

/* Run no more tasks at once than there are descriptors for: one warning,
 * naming the limit, rather than tasks that fail or a pool that stalls. */
static void
main_fit_fd_limit(struct options *opts)
{
	unsigned long fit = main_fd_jobs();

	if (opts->jobs <= fit)
		return;
	log_warn("running %lu tasks at once, not %u: the limit on open files "
		 "is %lu (ulimit -n)",
		 fit, opts->jobs, main_fd_limit());
	opts->jobs = (unsigned)fit;
}

/* --nice N, when given. */
static int main_nice;
static bool main_nice_given;

/* --nice: a niceness, -20 to 19. */
static int
main_niceness(const char *text)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(text, &end, 10);
	if (text[0] == '\0' || *end != '\0' || errno != 0)
		main_usage_error("--nice: '%s' is not a number", text);
	if (n < -20 || n > 19)
		main_usage_error("--nice: %s is out of range (-20 to 19)",
				 text);
	return (int)n;
}

/* --load: a number of processes, or N% of the CPUs. */
static double
main_load(const char *text)
{
	size_t len = strlen(text);
	char *end;
	double n;

	errno = 0;
	n = strtod(text, &end);
	if (end == text || text[0] == '-' || errno != 0 || !(n > 0) ||
	    n > 1e9 || (*end != '\0' && strcmp(end, "%") != 0) || len == 0)
		main_usage_error("--load: '%s' is not a positive number or "
				 "percentage",
				 text);
	if (*end == '%')
		n = n * main_online_cpus() / 100;
	return n;
}

/*
 * make's jobserver: --jobserver-slots serves one, else the one MAKEFLAGS
 * named is used unless --jobserver no.  Tasks inherit the pipe style's
 * descriptors (they may be make or cpmap); tasks get --nice.
 */
static void
main_setup_jobserver(const struct options *opts)
{
	char *cause = NULL;
	int fds[2] = {-1, -1};

	if (opts->jobserver_slots > 0 &&
	    jobserver_serve(opts->jobserver_slots, &cause) < 0)
		fatal("%s", cause);
	if (!opts->jobserver && opts->jobserver_slots == 0)
		jobserver_forget();
	(void)jobserver_pipe_fds(&fds[0], &fds[1]);
	child_configure(main_nice_given, main_nice, fds[0], fds[1]);
}

/* Was -j 0 the last -j given?  (-v then says what it became.) */
static bool main_jobs_unbounded;

/*
 * -j as GNU parallel reads it: N, N% of the CPUs, +N and -N (the CPUs plus
 * or minus N, at least 1), 0 (as many as the system allows).
 */
static unsigned
main_parse_jobs(const char *text)
{
	size_t len = strlen(text);
	unsigned long cpus = main_online_cpus(), n;

	main_jobs_unbounded = false;
	if (len > 1 && text[len - 1] == '%') {
		char *number = xstrdup(text);
		unsigned long percent, jobs;

		number[len - 1] = '\0';
		percent = main_number("-j", number, 1, 100000);
		free(number);
		jobs = (cpus * percent + 99) / 100;
		return jobs > 0 ? (unsigned)jobs : 1;
	}
	if (text[0] == '+' || text[0] == '-') {
		if (text[1] < '0' || text[1] > '9')
			main_usage_error("-j: '%s' is not a number", text);
		n = main_number("-j", text + 1, 0, 1000000);
		if (text[0] == '+')
			return (unsigned)(cpus + n);
		return n < cpus ? (unsigned)(cpus - n) : 1;
	}
	if (main_number("-j", text, 0, 1000000) == 0) {
		main_jobs_unbounded = true;
		return main_max_jobs();
	}
	return (unsigned)strtoul(text, NULL, 10);
}

/*
 * --header's argument is optional (--header alone names the columns by
 * the first input), so a separate word is taken as its argument only when
 * it cannot be a command: ":", a number, or a regular expression with a
 * newline in it (GNU parallel's '.*\n').
 */
static const char *
main_header_argument(int argc, char **argv)
{
	const char *next;

	if (optarg != NULL)
		return optarg;
	if (optind >= argc)
		return NULL;
	next = argv[optind];
	if (strcmp(next, ":") == 0 ||
	    (next[0] != '\0' && strspn(next, "0123456789") == strlen(next)) ||
	    strstr(next, "\\n") != NULL) {
		optind++;
		return next;
	}
	return NULL;
}

/* -X, -m: inputs per task, and the bytes past which a task takes no more
 * (well under the kernel's limit on a command line, 2 MiB or more). */
#define MAIN_MANY_INPUTS 10000
#define MAIN_MANY_BYTES (128 * 1024)

/* "P%" (--timeout): P, or 0 when the text is not a percentage. */
static double
main_percent(const char *text)
{
	size_t len = strlen(text);
	char *end;
	double n;

	if (len < 2 || text[len - 1] != '%')
		return 0;
	errno = 0;
	n = strtod(text, &end);
	if (end != text + len - 1 || text[0] == '-' || errno != 0 || !(n > 0) ||
	    n > 1e9)
		main_usage_error("--timeout: '%s' is not a positive "
				 "percentage",
				 text);
	return n;
}

/* --tagstring: a one-word template, expanded per task without a shell. */
static void
main_parse_tagstring(struct options *opts, const char *text)
{
	char *word = (char *)(uintptr_t)text, *cause = NULL;

	opts->tagstring =
	    template_parse(&word, 1, opts->replace, SHELL_NEVER,
			   opts->header || opts->json_input, &cause);
	if (opts->tagstring == NULL)
		main_usage_error("--tagstring: %s", cause);
	if (template_uses_slot(opts->tagstring))
		main_usage_error("--tagstring: {%%} is not known when the "
				 "tag is made (use {#})");
}

static void
main_add_source(struct options *opts, enum source_kind kind, const char *path)
{
	opts->sources = xreallocarray(opts->sources, opts->source_count + 1,
				      sizeof *opts->sources);
	opts->sources[opts->source_count++] =
	    (struct source){.kind = kind, .path = path};
}

/*
 * Is word a group separator: 1 for ::: or :::+, 2 for :::: or ::::+, 0 for
 * any other word.  Another word of colons (":::::", ":::-") is refused:
 * it is a separator mistyped, never an argument or a value.
 */
static int
main_separator(const char *word, bool *linked)
{
	size_t colons = strspn(word, ":");

	*linked = false;
	if (colons < 3)
		return 0;
	if ((colons == 3 || colons == 4) &&
	    (word[colons] == '\0' ||
	     (word[colons] == '+' && word[colons + 1] == '\0'))) {
		*linked = word[colons] == '+';
		return colons == 3 ? 1 : 2;
	}
	main_usage_error("'%s' is not an input separator (:::, :::+, :::: "
			 "or ::::+)",
			 word);
}

/* Split "command ... ::: a b :::: f" into the command and its groups. */
static void
main_parse_groups(struct options *opts, int argc, char **argv)
{
	bool linked;
	int i = 0, kind = 0;

	while (i < argc && (kind = main_separator(argv[i], &linked)) == 0)
		i++;
	opts->command = argv;
	opts->command_count = i;
	while (i < argc) {
		bool files = kind == 2, link_first = linked;
		const char *word = argv[i];
		int start = ++i;

		while (i < argc &&
		       (kind = main_separator(argv[i], &linked)) == 0)
			i++;
		if (link_first && opts->source_count == 0)
			main_usage_error("%s needs a group before it to link "
					 "to",
					 word);
		if (files) {
			if (start == i)
				main_usage_error("%s needs a file name", word);
			for (int k = start; k < i; k++) {
				main_add_source(opts, SOURCE_FILE, argv[k]);
				opts->sources[opts->source_count - 1].linked =
				    link_first && k == start;
			}
		} else {
			main_add_source(opts, SOURCE_ARGUMENTS, NULL);
			opts->sources[opts->source_count - 1].arguments =
			    argv + start;
			opts->sources[opts->source_count - 1].argument_count =
			    (size_t)(i - start);
			opts->sources[opts->source_count - 1].linked =
			    link_first;
		}
	}
	argv[opts->command_count] = NULL; /* the command's own end */
}

/* The -S lists as given, and --workers-file: planned after every option
 * is known (--persist and -j change what a spec means). */
static char **main_worker_lists;
static size_t main_worker_list_count;
static const char *main_workers_file;
static bool main_jobs_given;

static void main_plan_workers(struct options *opts, bool jobs_given);

/* Bytes as --recend would take them back, on one line with no space. */
static void
main_escape(struct buf *out, const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)data[i];
		char hex[8];

		if (c == '\n')
			buf_append_str(out, "\\n");
		else if (c == '\t')
			buf_append_str(out, "\\t");
		else if (c == '\0')
			buf_append_str(out, "\\0");
		else if (c == '\\')
			buf_append_str(out, "\\\\");
		else if (c > ' ' && c < 127 && c != '\'' && c != '"')
			buf_append_char(out, (char)c);
		else {
			snprintf(hex, sizeof hex, "\\x%02x", c);
			buf_append_str(out, hex);
		}
	}
}

/*
 * --pipe: one stream (stdin or one -a FILE) cut into blocks; the record
 * boundaries (-0, -d, --recend, --recstart), the block size and --header
 * N lines; and the signature the joblog keeps so that --resume cuts the
 * same blocks.
 */
static void
main_check_pipe(struct options *opts, const char *header)
{
	struct buf sig = {0};
	char size[32];

	if (opts->source_count > 1 ||
	    (opts->source_count == 1 &&
	     opts->sources[0].kind == SOURCE_ARGUMENTS))
		main_usage_error("--pipe cuts one stream (stdin or one -a "
				 "FILE) into blocks: no ::: or :::: inputs, "
				 "which would be appended to the command");
	if (opts->pipe_part &&
	    (opts->source_count != 1 || opts->sources[0].kind != SOURCE_FILE ||
	     strcmp(opts->sources[0].path, "-") == 0))
		main_usage_error("--pipe-part needs -a FILE (a regular file)");
	if (opts->persist || main_worker_list_count > 0 ||
	    main_workers_file != NULL)
		main_usage_error("--pipe runs a local task per block: it does "
				 "not combine with %s",
				 opts->persist ? "--persist" : "-S");
	if (opts->json_input || opts->colsep != NULL || opts->feed_stdin ||
	    opts->chunk > 1 || opts->chunk_bytes > 0)
		main_usage_error("--pipe does not combine with %s",
				 opts->json_input ? "-J"
				 : opts->colsep	  ? "--colsep"
				 : opts->feed_stdin
				     ? "--stdin (the block is the stdin)"
				     : "-n, -X or -m (a block per task)");
	if (opts->header) {
		unsigned long lines = 1;

		if (header != NULL && strcmp(header, ":") != 0) {
			char *end;

			errno = 0;
			lines = strtoul(header, &end, 10);
			if (*end != '\0' || errno != 0 || lines > 1000000)
				main_usage_error("--header with --pipe: '%s' "
						 "is not a number of lines",
						 header);
		}
		opts->header_lines = (unsigned)lines;
		opts->header = false;
	}
	if (opts->round_robin &&
	    (opts->retries > 0 || opts->resume || opts->resume_failed))
		main_usage_error("--round-robin does not combine with %s: the "
				 "blocks a task was given cannot be given "
				 "again",
				 opts->retries > 0 ? "--retries" : "--resume");
	/* --round-robin: the tasks' output as it comes, whole lines (-k:
	 * each task's in one piece, in task order). */
	if (opts->round_robin && opts->output_mode == OUTPUT_GROUP &&
	    !opts->ordered && !opts->json_output)
		opts->output_mode = OUTPUT_LINE;
	if (opts->block_size == 0)
		opts->block_size = 1024 * 1024;
	if (opts->block_size > SIZE_MAX / 4)
		main_usage_error("--block: too large");
	if (opts->recend == NULL && opts->recstart == NULL) {
		opts->recend = xmalloc(1);
		opts->recend[0] = (char)opts->delimiter;
		opts->recend_len = 1;
	}
	if (opts->recend == NULL)
		opts->recend = xstrdup(""); /* only --recstart: as GNU */
	if (opts->recstart == NULL)
		opts->recstart = xstrdup("");
	/* " # cpmap --block N --recend X": a shell comment in the
	 * Command column, which --resume compares. */
	snprintf(size, sizeof size, "%llu",
		 (unsigned long long)opts->block_size);
	buf_append_str(&sig, " # cpmap --block ");
	buf_append_str(&sig, size);
	buf_append_str(&sig, " --recend ");
	main_escape(&sig, opts->recend, opts->recend_len);
	if (opts->recstart_len > 0) {
		buf_append_str(&sig, " --recstart ");
		main_escape(&sig, opts->recstart, opts->recstart_len);
	}
	if (opts->header_lines > 0) {
		snprintf(size, sizeof size, " --header %u", opts->header_lines);
		buf_append_str(&sig, size);
	}
	if (opts->pipe_part)
		buf_append_str(&sig, " --pipe-part");
	opts->block_signature = buf_steal(&sig, NULL);
}

static void
main_parse(struct options *opts, int argc, char **argv)
{
	bool buffer_given = false, jobs_given = false;
	const char *header = NULL;
	char *cause = NULL;
	const char *tagstring = NULL;
	int c, delimiter;

	memset(opts, 0, sizeof *opts);
	opterr = 0; /* our own one-line messages */
	opts->kill_after_ms = 2000;
	opts->host_timeout_ms = 5 * 60 * 1000;
	opts->transport = "ssh";
	opts->delimiter = '\n';
	opts->jobs = main_online_cpus();
	opts->chunk = 1;
	opts->shell = SHELL_AUTO;
	opts->output_mode = OUTPUT_GROUP;
	opts->jobserver = true;

	while ((c = getopt_long(argc, argv, optable_short_options(),
				optable_long_options(), NULL)) != -1) {
		switch (c) {
		case '0':
			opts->delimiter = '\0';
			break;
		case 'd':
			if ((delimiter = record_parse_delimiter(optarg)) < 0)
				main_usage_error(
				    "-d: '%s' is not one byte or an escape "
				    "(\\n \\t \\r \\0 \\\\ \\xHH)",
				    optarg);
			opts->delimiter = delimiter;
			break;
		case 'a':
			main_add_source(opts, SOURCE_FILE, optarg);
			break;
		case 'C':
			if (optarg[0] == '\0')
				main_usage_error("--colsep needs a separator");
			if (!(opts->colsep = record_parse_separator(optarg)))
				main_usage_error(
				    "--colsep: '%s': the escapes are \\n \\t "
				    "\\r \\\\ \\xHH, and no NUL",
				    optarg);
			break;
		case OPT_HEADER:
			header = main_header_argument(argc, argv);
			if (header != NULL && strcmp(header, "0") == 0)
				main_usage_error(
				    "--header 0 (file names as column names) "
				    "is not supported");
			if (header != NULL && header[0] == '\0')
				main_usage_error("--header: an empty header");
			opts->header = true;
			break;
		case OPT_KEEP_EMPTY:
			opts->keep_empty = true;
			break;
		case OPT_LINK:
			opts->link = true;
			break;
		case 'I':
			if (optarg[0] == '\0')
				main_usage_error("-I needs a non-empty string");
			opts->replace = optarg;
			break;
		case OPT_SHELL:
			opts->shell = SHELL_ALWAYS;
			break;
		case OPT_NO_SHELL:
			opts->shell = SHELL_NEVER;
			break;
		case OPT_STDIN:
			opts->feed_stdin = true;
			break;
		case 'j':
		case 'P':
			opts->jobs = main_parse_jobs(optarg);
			jobs_given = true;
			break;
		case 'S':
			main_worker_lists = xreallocarray(
			    main_worker_lists, main_worker_list_count + 1,
			    sizeof *main_worker_lists);
			main_worker_lists[main_worker_list_count++] = optarg;
			break;
		case OPT_WORKERS_FILE:
			main_workers_file = optarg;
			break;
		case OPT_TRANSPORT:
			if (strspn(optarg, " \t") == strlen(optarg))
				main_usage_error("--transport needs a command");
			opts->transport = optarg;
			break;
		case OPT_HOST_TIMEOUT:
			opts->host_timeout_ms =
			    main_duration("--host-timeout", optarg, false);
			break;
		case OPT_REMOTE_AGENT:
			/* auto, sh */
			opts->remote_agent_sh =
			    main_choice(OPT_REMOTE_AGENT, optarg) == 1;
			break;
		case OPT_ENV:
			if (optarg[0] == '\0' ||
			    strspn(optarg,
				   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijk"
				   "lmnopqrstuvwxyz0123456789_") !=
				strlen(optarg) ||
			    (optarg[0] >= '0' && optarg[0] <= '9'))
				main_usage_error(
				    "--env: '%s' is not a variable "
				    "name",
				    optarg);
			if (strcmp(optarg, "CPMAP_NL") == 0)
				main_usage_error(
				    "--env: CPMAP_NL is cpmap's own "
				    "(it spells newlines for the "
				    "remote sh)");
			opts->env = xreallocarray(
			    opts->env, opts->env_count + 1, sizeof *opts->env);
			opts->env[opts->env_count++] = optarg;
			break;
		case OPT_BASEFILE:
			opts->basefiles = xreallocarray(
			    opts->basefiles, opts->basefile_count + 1,
			    sizeof *opts->basefiles);
			opts->basefiles[opts->basefile_count++] = optarg;
			break;
		case OPT_TRANSFER:
			opts->transfer = true;
			break;
		case OPT_TRC: /* --transfer --return PAT --cleanup */
		case OPT_RETURN:
			if (c == OPT_TRC)
				opts->transfer = opts->cleanup = true;
			opts->returns =
			    xreallocarray(opts->returns, opts->return_count + 1,
					  sizeof *opts->returns);
			opts->returns[opts->return_count++] = optarg;
			break;
		case OPT_CLEANUP:
			opts->cleanup = true;
			break;
		case 'n':
		case 'N':
			opts->chunk = (unsigned)main_number("--chunk", optarg,
							    1, 1000000);
			opts->chunk_bytes = 0;
			break;
		case 'X':
		case 'm':
			/* As many inputs as fit a command line, with room. */
			opts->chunk = MAIN_MANY_INPUTS;
			opts->chunk_bytes = MAIN_MANY_BYTES;
			break;
		case 'v':
		case 't':
			opts->verbose = true;
			break;
		case 'r':
		case 'q':
		case OPT_NO_OP:
			break; /* what cpmap does anyway */
		case OPT_TAGSTRING:
			tagstring = optarg;
			opts->tag = true;
			break;
		case OPT_DELAY:
			opts->delay_ms = main_duration("--delay", optarg, true);
			break;
		case OPT_PIPE_PART:
			opts->pipe_part = true;
			/* fall through */
		case OPT_PIPE:
			opts->pipe = true;
			break;
		case OPT_BLOCK:
			opts->block_size = main_size("--block", optarg);
			break;
		case OPT_RECEND:
		case OPT_RECSTART: {
			char *bytes = xmalloc(strlen(optarg) + 1);
			ssize_t len = block_parse_separator(optarg, bytes);

			if (len < 0)
				main_usage_error(
				    "%s: '%s': the escapes are \\n \\t \\r "
				    "\\0 \\\\ \\xHH",
				    c == OPT_RECEND ? "--recend" : "--recstart",
				    optarg);
			if (c == OPT_RECEND) {
				free(opts->recend);
				opts->recend = bytes;
				opts->recend_len = (size_t)len;
			} else {
				free(opts->recstart);
				opts->recstart = bytes;
				opts->recstart_len = (size_t)len;
			}
			break;
		}
		case OPT_ROUND_ROBIN:
			opts->round_robin = true;
			break;
		case OPT_LOAD:
			opts->load_max = main_load(optarg);
			break;
		case OPT_MEMFREE:
			opts->memfree = main_size("--memfree", optarg);
			break;
		case OPT_NICE:
			main_nice = main_niceness(optarg);
			main_nice_given = true;
			break;
		case OPT_JOBSERVER:
			/* auto, no */
			opts->jobserver =
			    main_choice(OPT_JOBSERVER, optarg) == 0;
			break;
		case OPT_JOBSERVER_SLOTS:
			opts->jobserver_slots = (unsigned)main_number(
			    "--jobserver-slots", optarg, 1, 1000000);
			break;
		case OPT_BUFFER:
			opts->buffer = (unsigned)main_number("--buffer", optarg,
							     1, 100000000);
			buffer_given = true;
			break;
		case 'k':
			opts->ordered = true;
			break;
		case OPT_UNORDERED:
			opts->ordered = false;
			break;
		case OPT_LINE_BUFFER:
			opts->output_mode = OUTPUT_LINE;
			break;
		case 'u':
			opts->output_mode = OUTPUT_UNGROUP;
			break;
		case OPT_TAG:
			opts->tag = true;
			break;
		case OPT_DRY_RUN:
			opts->dry_run = true;
			break;
		case 'J':
			opts->json_input = true;
			break;
		case OPT_JSON:
			opts->json_output = true;
			break;
		case OPT_ON_BAD_INPUT:
			/* record, skip, abort: enum bad_input's order */
			opts->bad_input = (enum bad_input_policy)main_choice(
			    OPT_ON_BAD_INPUT, optarg);
			break;
		case OPT_MAX_OUTPUT:
			opts->max_output = main_size("--max-output", optarg);
			break;
		case OPT_TIMEOUT:
			opts->timeout_ms = 0;
			opts->timeout_percent = main_percent(optarg);
			if (opts->timeout_percent == 0)
				opts->timeout_ms =
				    main_duration("--timeout", optarg, false);
			break;
		case OPT_KILL_AFTER:
			opts->kill_after_ms =
			    main_duration("--kill-after", optarg, true);
			break;
		case OPT_RETRIES:
			opts->retries = (unsigned)main_number(
			    "--retries", optarg, 0, 1000000);
			break;
		case OPT_RETRY_DELAY:
			opts->retry_delay_ms =
			    main_duration("--retry-delay", optarg, true);
			break;
		case OPT_HALT:
			if (halt_parse(optarg, &opts->halt, &cause) < 0)
				main_usage_error("%s", cause);
			break;
		case OPT_JOBLOG:
			/* +FILE appends, as GNU parallel. */
			opts->joblog_append = optarg[0] == '+';
			opts->joblog = optarg + opts->joblog_append;
			if (opts->joblog[0] == '\0')
				main_usage_error("--joblog needs a file name");
			break;
		case OPT_TIMELINE:
			if (optarg[0] == '\0')
				main_usage_error(
				    "--timeline needs a file name");
			opts->timeline_path = optarg;
			break;
		case OPT_FROM_JOBLOG:
			if (optarg[0] == '\0')
				main_usage_error(
				    "--from-joblog needs a file name");
			opts->timeline_from = optarg;
			break;
		case OPT_RESUME:
			opts->resume = true;
			break;
		case OPT_RESUME_FAILED:
			opts->resume_failed = true;
			break;
		case OPT_PROGRESS:
			opts->progress = true;
			break;
		case OPT_BAR:
			opts->bar = true;
			break;
		case OPT_PERSIST:
			opts->persist = true;
			break;
		case OPT_PERSIST_MAX:
			opts->persist_max =
			    main_number("--persist-max", optarg, 1, ULONG_MAX);
			break;
		case OPT_STRIDE:
			opts->stride =
			    (unsigned)main_number("--stride", optarg, 1, 65536);
			break;
		case OPT_RESULTS:
			if (optarg[0] == '\0')
				main_usage_error("--results needs a directory");
			opts->results_dir = optarg;
			break;
		case 'h':
			optable_print_help(stdout);
			exit(0);
		case OPT_COMPLETION:
			main_completion(optarg);
			exit(0);
		case 'V':
			printf("cpmap %s (libuv %s, jansson %s)\n",
			       PACKAGE_VERSION, uv_version_string(),
			       json_version());
			exit(0);
		case ':':
			main_usage_error("%s needs an argument",
					 argv[optind - 1]);
		default:
			if (optopt > 0 && optopt < 128)
				main_usage_error("unknown option -%c", optopt);
			if (optopt != 0 &&
			    strchr(argv[optind - 1], '=') != NULL)
				main_usage_error("%s: the option takes no "
						 "argument",
						 argv[optind - 1]);
			main_usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (opts->timeline_from != NULL && opts->timeline_path == NULL)
		main_usage_error("--from-joblog needs --timeline FILE");
	if (opts->timeline_from != NULL && optind < argc)
		main_usage_error("--from-joblog draws a joblog and runs "
				 "nothing: it takes no command or input");
	main_parse_groups(opts, argc - optind, argv + optind);
	if (opts->pipe)
		main_check_pipe(opts, header);
	else if (opts->block_size != 0 || opts->recend != NULL ||
		 opts->recstart != NULL || opts->round_robin)
		main_usage_error("--block, --recend, --recstart and "
				 "--round-robin need --pipe");
	/* --jobserver-slots N is a budget of N, as make -jN: -j too. */
	if (opts->jobserver_slots > 0 && !jobs_given)
		opts->jobs = opts->jobserver_slots;
	if (main_jobs_unbounded && opts->verbose)
		log_warn("-j 0: running up to %u tasks at once", opts->jobs);
	if (opts->source_count == 0)
		main_add_source(opts, SOURCE_STDIN, NULL);
	main_fit_fd_limit(opts);
	if (opts->persist && opts->stride == 0) {
		opts->stride = 64;
		opts->stride_auto = true; /* persist.c may raise it */
	}
	if (!buffer_given) {
		unsigned long buffer = 64ul * opts->jobs;

		opts->buffer =
		    buffer > 100000000 ? 100000000 : (unsigned)buffer;
	}
	if (!opts->persist && (opts->stride != 0 || opts->persist_max != 0))
		main_usage_error("--stride and --persist-max need --persist");
	if (opts->persist && opts->dry_run)
		main_usage_error("--persist does not combine with --dry-run");
	if (opts->persist &&
	    (opts->feed_stdin || opts->output_mode != OUTPUT_GROUP))
		main_usage_error("--persist does not combine with %s",
				 opts->feed_stdin ? "--stdin (inputs go to the "
						    "worker's stdin)"
				 : opts->output_mode == OUTPUT_LINE
				     ? "--line-buffer"
				     : "--ungroup");
	if ((opts->resume || opts->resume_failed) && opts->joblog == NULL)
		main_usage_error("--resume%s needs --joblog FILE",
				 opts->resume_failed ? "-failed" : "");
	if (opts->json_output && opts->output_mode != OUTPUT_GROUP)
		main_usage_error("--json writes whole records: it does not "
				 "combine with %s",
				 opts->output_mode == OUTPUT_LINE
				     ? "--line-buffer"
				     : "--ungroup");
	if (opts->json_output && opts->tag)
		main_usage_error("--json does not combine with --tag (the "
				 "record has the input)");
	if (opts->json_output && opts->dry_run)
		main_usage_error("--json does not combine with --dry-run");
	if (opts->json_input && (opts->colsep || opts->header))
		main_usage_error("-J does not combine with %s (a JSON record "
				 "has its own fields)",
				 opts->colsep ? "--colsep" : "--header");
	if (opts->json_input && opts->source_count > 1)
		main_usage_error("-J reads one source of JSON lines, not %zu",
				 opts->source_count);
	/* As GNU parallel: --header's columns are tab-separated unless -C. */
	if (opts->header && opts->colsep == NULL)
		opts->colsep = "\t";
	if (tagstring != NULL)
		main_parse_tagstring(opts, tagstring);
	/* Without pipes there is no line to prefix: --tag needs lines. */
	if (opts->tag && opts->output_mode == OUTPUT_UNGROUP)
		opts->output_mode = OUTPUT_LINE;
	if (opts->output_mode == OUTPUT_UNGROUP)
		opts->ordered = false;
	main_jobs_given = jobs_given;
	main_plan_workers(opts, jobs_given);
	/* Hosts' slots are known only once they are up: room for 64
	 * tasks a slot on 64 slots a host. */
	for (size_t i = 0; !buffer_given && i < opts->worker_count; i++) {
		const struct worker_plan *w = &opts->workers[i];

		if (w->kind == &persist_worker && opts->stride_auto) {
			/* Room for every place a grown stride makes. */
			unsigned room =
			    persist_stride_limit(w->slots) * w->slots;

			if (opts->buffer < room)
				opts->buffer = room;
		} else if (w->kind != &local_worker &&
			   w->kind != &persist_worker &&
			   opts->buffer < 4096 * opts->worker_count) {
			opts->buffer = (unsigned)(4096 * opts->worker_count);
		}
	}
}

/* Descriptors 0-2 must exist, or a pipe could land on one of them. */
static void
main_open_standard_fds(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int null = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);

		if (null >= 0 && null != fd) {
			dup2(null, fd);
			close(null);
		}
	}
}

/*
 * Tasks inherit only 0, 1 and 2: every other descriptor cpmap has, even one
 * it inherited itself, is closed on exec.
 */
static void
main_cloexec_inherited(void)
{
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	for (int fd = 3; fd < 1024; fd++) {
		int flags = fcntl(fd, F_GETFD);

		if (flags >= 0)
			(void)fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
	}
}

/*
 * A run holds several descriptors per task: take all the kernel allows,
 * before the loop or anything else is made.  With too few even for the
 * loop and one task, say so rather than fail somewhere inside libuv.
 */
static void
main_raise_fd_limit(void)
{
	struct rlimit limit;

	if (getrlimit(RLIMIT_NOFILE, &limit) == 0 &&
	    limit.rlim_cur < limit.rlim_max) {
		limit.rlim_cur = limit.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &limit);
	}
	if (main_fd_limit() < MAIN_FDS_MINIMUM)
		fatal("too few file descriptors: the limit on open files is "
		      "%lu, cpmap needs at least %d (ulimit -n)",
		      main_fd_limit(), MAIN_FDS_MINIMUM);
}

/*
 * The shell of shell mode is $CPMAP_SHELL, else /bin/sh.  A command whose
 * first word is an exported bash function (BASH_FUNC_f%% in the
 * environment, from export -f f) runs under bash, as with GNU parallel.
 */
static void
main_choose_shell(const struct options *opts, struct template *tmpl)
{
	const char *sh = getenv("CPMAP_SHELL");
	char *name;

	if (sh != NULL && sh[0] != '\0')
		template_set_shell(tmpl, sh);
	if (opts->command_count < 1 || template_uses_shell(tmpl))
		return;
	name = xasprintf("BASH_FUNC_%s%%%%", opts->command[0]);
	if (getenv(name) != NULL)
		template_use_bash(tmpl);
	free(name);
}

/* Option checks that need the parsed command. */
static void
main_check_command(const struct options *opts, const struct template *tmpl)
{
	if (opts->pipe && template_has_input(tmpl))
		main_usage_error("--pipe writes a block to each task's stdin: "
				 "the command cannot use {} or fields (nor "
				 "be missing)");
	if (opts->persist && template_has_input(tmpl))
		main_usage_error("--persist sends each input to the worker's "
				 "stdin: the command cannot use {} or fields");
}

/*
 * The workers the options ask for: this machine, plain or persistent, or
 * the -S and --workers-file hosts (":" among them is this machine).  A
 * host's slots are its "N/", or -j when given, or its CPU count, asked
 * when it is reached.
 */
static void
main_plan_workers(struct options *opts, bool jobs_given)
{
	char *cause = NULL;

	for (size_t i = 0; i < main_worker_list_count; i++)
		if (hosts_parse_list(main_worker_lists[i], opts, jobs_given,
				     &opts->workers, &opts->worker_count,
				     &cause) < 0)
			main_usage_error("-S: %s", cause);
	free(main_worker_lists);
	main_worker_lists = NULL;
	if (main_workers_file != NULL) {
		size_t before = opts->worker_count;

		if (hosts_read_file(main_workers_file, opts, jobs_given,
				    &opts->workers, &opts->worker_count,
				    &cause) < 0)
			main_usage_error("%s", cause);
		if (opts->worker_count == before)
			main_usage_error("--workers-file %s names no host",
					 main_workers_file);
		for (size_t i = before; i < opts->worker_count; i++)
			opts->workers[i].from_file = true;
	}
	if (opts->worker_count > 0)
		return;
	if (main_worker_list_count > 0)
		main_usage_error("-S needs a host, or ':' for this machine");
	opts->workers = xcalloc(1, sizeof *opts->workers);
	opts->workers[0] = (struct worker_plan){
	    .kind = opts->persist ? &persist_worker : &local_worker,
	    .where = xstrdup("local"),
	    .slots = opts->jobs,
	};
	opts->worker_count = 1;
}

/* --timeline: write the picture; false (said on stderr) if it could
 * not be. */
static bool
main_write_timeline(const struct options *opts)
{
	char *cause = NULL;

	if (opts->timeline == NULL)
		return true;
	if (timeline_write(opts->timeline, opts->timeline_path, &cause) == 0)
		return true;
	log_warn("%s", cause);
	free(cause);
	return false;
}

/* --timeline FILE --from-joblog LOG: a picture of an earlier run. */
static int
main_draw_joblog(struct options *opts)
{
	char *cause = NULL;
	bool written;

	opts->timeline = timeline_create();
	if (timeline_read_joblog(opts->timeline, opts->timeline_from, &cause) <
	    0) {
		log_warn("%s", cause);
		free(cause);
		timeline_free(opts->timeline);
		return CPMAP_EXIT_USAGE;
	}
	written = main_write_timeline(opts);
	timeline_free(opts->timeline);
	return written ? 0 : CPMAP_EXIT_USAGE;
}

int
main(int argc, char **argv)
{
	struct options opts;
	struct template *tmpl;
	struct input_reader *reader;
	struct pool *pool;
	struct hosts_watch *watch = NULL;
	uv_loop_t *loop;
	char *cause = NULL;
	int status, rc;

	log_init(argv[0]);
	main_open_standard_fds();
	/* Before anything is opened: make's descriptors are checked as
	 * they came (a closed one's number is not yet one of ours). */
	jobserver_inherit();
	main_raise_fd_limit();
	log_debug_open();
	/* The remote agent, started on a host by another cpmap. */
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--worker") == 0 && argc != 2)
			main_usage_error("--worker takes no other argument");
	if (argc == 2 && strcmp(argv[1], "--worker") == 0)
		return agent_run();
	if (argc == 2 && strcmp(argv[1], "--worker-version") == 0)
		return printf("%d\n", CPMAP_PROTOCOL_VERSION) < 0;
	main_cloexec_inherited();
	main_parse(&opts, argc, argv);
	if (opts.timeline_from != NULL) {
		status = main_draw_joblog(&opts);
		for (size_t i = 0; i < opts.worker_count; i++)
			free(opts.workers[i].where);
		free(opts.workers);
		free(opts.env);
		free(opts.basefiles);
		free(opts.returns);
		free(opts.sources);
		return status;
	}
	if (opts.timeline_path != NULL)
		opts.timeline = timeline_create();

	tmpl =
	    template_parse(opts.command, opts.command_count, opts.replace,
			   opts.shell, opts.header || opts.json_input, &cause);
	if (tmpl == NULL)
		main_usage_error("%s", cause);
	main_choose_shell(&opts, tmpl);
	main_setup_jobserver(&opts);
	main_check_command(&opts, tmpl);
	if (opts.results_dir != NULL &&
	    results_prepare(opts.results_dir, &cause) < 0)
		fatal("%s", cause);

	/* A dead reader must be an error we see, not a signal that kills. */
	signal(SIGPIPE, SIG_IGN);
	if ((loop = uv_default_loop()) == NULL)
		fatal("cannot make the event loop: too few file descriptors? "
		      "(the limit on open files is %lu)",
		      main_fd_limit());
	if ((rc = child_init(loop)) != 0)
		fatal("cannot watch child processes: %s", uv_strerror(rc));

	if (opts.pipe && (opts.resume || opts.resume_failed) &&
	    joblog_check_blocks(opts.joblog, opts.block_signature, &cause) < 0)
		main_usage_error("%s", cause);
	reader = input_start(loop, &opts, &cause);
	if (reader == NULL)
		fatal("%s", cause);
	pool = pool_create(loop, &opts, tmpl, reader, &cause);
	if (pool == NULL)
		fatal("%s", cause);
	if (main_workers_file != NULL)
		watch = hosts_watch_start(loop, main_workers_file, &opts,
					  main_jobs_given, pool);
	pool_run(pool);
	hosts_watch_stop(watch);

	status = pool_exit_status(pool);
	/* Input that could not be read is work not done: say it loudly. */
	if (input_error(reader) != 0 && status < 128)
		status = CPMAP_EXIT_USAGE;
	/* After ^C or --halt too: the picture shows how far it got. */
	if (!main_write_timeline(&opts))
		status = CPMAP_EXIT_USAGE;
	timeline_free(opts.timeline);
	rc = pool_output_error(pool);
	pool_free(pool);
	input_reader_free(reader);
	template_free(tmpl);
	template_free(opts.tagstring);
	child_stop();
	for (size_t i = 0; i < opts.worker_count; i++)
		free(opts.workers[i].where);
	free(opts.workers);
	free(opts.env);
	free(opts.basefiles);
	free(opts.returns);
	(void)uv_run(loop, UV_RUN_NOWAIT); /* let closed handles finish */
	(void)uv_loop_close(loop);
	free(opts.sources);
	free(opts.recend);
	free(opts.recstart);
	free(opts.block_signature);

	if (rc == EPIPE) {
		/* Die as a filter does when its reader goes away. */
		signal(SIGPIPE, SIG_DFL);
		raise(SIGPIPE);
	}
	if (rc != 0)
		return CPMAP_EXIT_USAGE; /* the message is out already */
	if (close(STDOUT_FILENO) < 0 && errno != EBADF) {
		log_warn("writing to standard output: %s", strerror(errno));
		return CPMAP_EXIT_USAGE;
	}
	return status;
}
