/*
 * main.c - cpmap's command line: options into one struct options, the
 * modules wired together, the loop run, the outcome mapped to an exit
 * status.  The only file outside the library.
 *
 * Every usage error is found here, before any task starts, and ends the run
 * with one line naming the problem and exit status 255.
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

enum long_only_option {
	OPT_KEEP_EMPTY = 1000,
	OPT_LINK,
	OPT_HEADER,
	OPT_SHELL,
	OPT_NO_SHELL,
	OPT_STDIN,
	OPT_BUFFER,
	OPT_UNORDERED,
	OPT_LINE_BUFFER,
	OPT_TAG,
	OPT_DRY_RUN,
	OPT_JSON,
	OPT_ON_BAD_INPUT,
	OPT_MAX_OUTPUT,
	OPT_RESULTS,
	OPT_TIMEOUT,
	OPT_KILL_AFTER,
	OPT_RETRIES,
	OPT_RETRY_DELAY,
	OPT_HALT,
	OPT_JOBLOG,
	OPT_RESUME,
	OPT_RESUME_FAILED,
	OPT_PROGRESS,
	OPT_BAR,
	OPT_PERSIST,
	OPT_PERSIST_MAX,
	OPT_STRIDE,
	OPT_TRANSPORT,
	OPT_HOST_TIMEOUT,
	OPT_ENV,
};

static const struct option main_long_options[] = {
    {"null", no_argument, NULL, '0'},
    {"delimiter", required_argument, NULL, 'd'},
    {"arg-file", required_argument, NULL, 'a'},
    {"colsep", required_argument, NULL, 'C'},
    {"header", no_argument, NULL, OPT_HEADER},
    {"keep-empty", no_argument, NULL, OPT_KEEP_EMPTY},
    {"link", no_argument, NULL, OPT_LINK},
    {"replace", required_argument, NULL, 'I'},
    {"shell", no_argument, NULL, OPT_SHELL},
    {"no-shell", no_argument, NULL, OPT_NO_SHELL},
    {"stdin", no_argument, NULL, OPT_STDIN},
    {"jobs", required_argument, NULL, 'j'},
    {"chunk", required_argument, NULL, 'n'},
    {"buffer", required_argument, NULL, OPT_BUFFER},
    {"ordered", no_argument, NULL, 'k'},
    {"keep-order", no_argument, NULL, 'k'},
    {"unordered", no_argument, NULL, OPT_UNORDERED},
    {"line-buffer", no_argument, NULL, OPT_LINE_BUFFER},
    {"ungroup", no_argument, NULL, 'u'},
    {"tag", no_argument, NULL, OPT_TAG},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"json-input", no_argument, NULL, 'J'},
    {"json", no_argument, NULL, OPT_JSON},
    {"on-bad-input", required_argument, NULL, OPT_ON_BAD_INPUT},
    {"max-output", required_argument, NULL, OPT_MAX_OUTPUT},
    {"results", required_argument, NULL, OPT_RESULTS},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"kill-after", required_argument, NULL, OPT_KILL_AFTER},
    {"retries", required_argument, NULL, OPT_RETRIES},
    {"retry-delay", required_argument, NULL, OPT_RETRY_DELAY},
    {"halt", required_argument, NULL, OPT_HALT},
    {"joblog", required_argument, NULL, OPT_JOBLOG},
    {"resume", no_argument, NULL, OPT_RESUME},
    {"resume-failed", no_argument, NULL, OPT_RESUME_FAILED},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"bar", no_argument, NULL, OPT_BAR},
    {"persist", no_argument, NULL, OPT_PERSIST},
    {"persist-max", required_argument, NULL, OPT_PERSIST_MAX},
    {"stride", required_argument, NULL, OPT_STRIDE},
    {"workers", required_argument, NULL, 'S'},
    {"transport", required_argument, NULL, OPT_TRANSPORT},
    {"host-timeout", required_argument, NULL, OPT_HOST_TIMEOUT},
    {"env", required_argument, NULL, OPT_ENV},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static void
main_usage(FILE *f)
{
	fputs(
	    "usage: cpmap [options] [--] command [arg ...]\n"
	    "       cpmap [options] [--] command [arg ...] ::: input ... "
	    "[::: input ...]\n"
	    "       cpmap [options] [--] command [arg ...] :::: file ...\n"
	    "\n"
	    "Runs command once per input, in parallel.  Inputs are the lines "
	    "of\n"
	    "stdin unless ::: or :::: or -a give them.\n"
	    "\n"
	    "inputs:\n"
	    "  -0, --null             inputs are separated by NUL bytes\n"
	    "  -d, --delimiter C      inputs are separated by byte C (\\n \\t "
	    "\\0 \\xHH)\n"
	    "  -a, --arg-file FILE    read inputs from FILE (repeatable)\n"
	    "  -C, --colsep SEP       split inputs into columns {1} {2} ... on "
	    "SEP\n"
	    "      --header           the first input names the columns: "
	    "{name}\n"
	    "      --keep-empty       do not skip empty inputs\n"
	    "      --link             pair ::: groups up instead of combining "
	    "them all\n"
	    "  -J, --json-input       each line is a JSON value: {name} {a.b} "
	    "{1} fields\n"
	    "      --on-bad-input P   record (default), skip or abort on bad "
	    "input\n"
	    "command:\n"
	    "  -I, --replace STR      STR stands for the input instead of {}\n"
	    "      --shell            run the command with /bin/sh -c\n"
	    "      --no-shell         never use the shell\n"
	    "      --stdin            feed the input to the command's stdin\n"
	    "      --dry-run          print the commands, run nothing\n"
	    "parallelism:\n"
	    "  -j, --jobs N           run N tasks at once (N% of the CPUs; 0: "
	    "as many as allowed)\n"
	    "  -n, --chunk N          up to N inputs per task\n"
	    "      --buffer N         at most N tasks started and not yet "
	    "written\n"
	    "      --persist          one long-lived worker per slot, fed "
	    "inputs on stdin\n"
	    "      --persist-max N    replace a worker after N tasks\n"
	    "      --stride N         tasks outstanding at one worker "
	    "(default 64)\n"
	    "output:\n"
	    "  -k, --ordered, --keep-order\n"
	    "                         write results in input order\n"
	    "      --unordered        write results as tasks finish (default)\n"
	    "      --line-buffer      pass output through line by line\n"
	    "  -u, --ungroup          pass output through as it comes\n"
	    "      --tag              prefix each output line with the input\n"
	    "      --json             write one JSON result record per task\n"
	    "      --max-output SIZE  keep at most SIZE bytes of each stream "
	    "(k, M, G)\n"
	    "      --results DIR      also keep DIR/SEQ/{stdout,stderr,"
	    "record.json}\n"
	    "control:\n"
	    "      --timeout T        stop an attempt after T (500ms, 30s, 5m, "
	    "1h)\n"
	    "      --kill-after T     SIGKILL a stopped task after T (default "
	    "2s)\n"
	    "      --retries N        run a failed task up to N more times\n"
	    "      --retry-delay T    wait T before a retry, doubled each "
	    "time\n"
	    "      --halt POLICY      never, or soon|now,fail|success|done=N "
	    "or "
	    "=P%\n"
	    "      --joblog FILE      log each finished task (GNU parallel's "
	    "format)\n"
	    "      --resume           skip the tasks FILE shows done\n"
	    "      --resume-failed    ... and run the failed ones again\n"
	    "      --progress         show progress on stderr\n"
	    "      --bar              show a progress bar on stderr\n"
	    "remote workers:\n"
	    "  -S, --workers SPEC,... run on hosts: [N/][user@]host[:port], "
	    "':' is here\n"
	    "      --transport CMD    how to reach a host (default ssh; "
	    "{host})\n"
	    "      --host-timeout T   with no host up for T, give up "
	    "(default 5m)\n"
	    "      --env NAME         copy variable NAME to remote tasks\n"
	    "\n"
	    "  -h, --help             show this help\n"
	    "  -V, --version          show the version\n"
	    "\n"
	    "Placeholders: {} {.} {/} {//} {/.} {#} {%} {N} {name}.  See "
	    "cpmap(1).\n",
	    f);
}

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
	log_warn("-j 0: running up to %lu tasks at once", jobs);
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

static unsigned
main_parse_jobs(const char *text)
{
	size_t len = strlen(text);

	if (len > 1 && text[len - 1] == '%') {
		char *number = xstrdup(text);
		unsigned long percent, jobs;

		number[len - 1] = '\0';
		percent = main_number("-j", number, 1, 100000);
		free(number);
		jobs = (main_online_cpus() * percent + 99) / 100;
		return jobs > 0 ? (unsigned)jobs : 1;
	}
	if (main_number("-j", text, 0, 1000000) == 0)
		return main_max_jobs();
	return (unsigned)strtoul(text, NULL, 10);
}

static void
main_add_source(struct options *opts, enum source_kind kind, const char *path)
{
	opts->sources = xreallocarray(opts->sources, opts->source_count + 1,
				      sizeof *opts->sources);
	opts->sources[opts->source_count++] =
	    (struct source){.kind = kind, .path = path};
}

/* Split "command ... ::: a b :::: f" into the command and its groups. */
static void
main_parse_groups(struct options *opts, int argc, char **argv)
{
	int i = 0;

	while (i < argc && strcmp(argv[i], ":::") != 0 &&
	       strcmp(argv[i], "::::") != 0)
		i++;
	opts->command = argv;
	opts->command_count = i;
	while (i < argc) {
		bool files = strcmp(argv[i], "::::") == 0;
		int start = ++i;

		while (i < argc && strcmp(argv[i], ":::") != 0 &&
		       strcmp(argv[i], "::::") != 0)
			i++;
		if (files) {
			if (start == i)
				main_usage_error(":::: needs a file name");
			for (int k = start; k < i; k++)
				main_add_source(opts, SOURCE_FILE, argv[k]);
		} else {
			main_add_source(opts, SOURCE_ARGUMENTS, NULL);
			opts->sources[opts->source_count - 1].arguments =
			    argv + start;
			opts->sources[opts->source_count - 1].argument_count =
			    (size_t)(i - start);
		}
	}
	argv[opts->command_count] = NULL; /* the command's own end */
}

/* The -S specs, as given: each "[N/][user@]host[:port]" or "[N/]:". */
static char **main_worker_specs;
static size_t main_worker_spec_count;

static void
main_add_worker_specs(const char *list)
{
	char *copy = xstrdup(list), *save = NULL;

	for (char *spec = strtok_r(copy, ",", &save); spec != NULL;
	     spec = strtok_r(NULL, ",", &save)) {
		spec += strspn(spec, " \t");
		if (*spec == '\0')
			continue;
		main_worker_specs =
		    xreallocarray(main_worker_specs, main_worker_spec_count + 1,
				  sizeof *main_worker_specs);
		main_worker_specs[main_worker_spec_count++] = xstrdup(spec);
	}
	free(copy);
	if (main_worker_spec_count == 0)
		main_usage_error("-S needs a host, or ':' for this machine");
}

static void main_plan_workers(struct options *opts, bool jobs_given);

static void
main_parse(struct options *opts, int argc, char **argv)
{
	bool buffer_given = false, jobs_given = false;
	char *cause = NULL;
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

	/* "+": the first non-option word starts the command. */
	while ((c = getopt_long(argc, argv, "+:0d:a:C:I:j:n:kuJhVS:",
				main_long_options, NULL)) != -1) {
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
			opts->jobs = main_parse_jobs(optarg);
			jobs_given = true;
			break;
		case 'S':
			main_add_worker_specs(optarg);
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
			opts->env = xreallocarray(
			    opts->env, opts->env_count + 1, sizeof *opts->env);
			opts->env[opts->env_count++] = optarg;
			break;
		case 'n':
			opts->chunk = (unsigned)main_number("--chunk", optarg,
							    1, 1000000);
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
			if (strcmp(optarg, "record") == 0)
				opts->bad_input = BAD_INPUT_RECORD;
			else if (strcmp(optarg, "skip") == 0)
				opts->bad_input = BAD_INPUT_SKIP;
			else if (strcmp(optarg, "abort") == 0)
				opts->bad_input = BAD_INPUT_ABORT;
			else
				main_usage_error("--on-bad-input: '%s' is not "
						 "record, skip or abort",
						 optarg);
			break;
		case OPT_MAX_OUTPUT:
			opts->max_output = main_size("--max-output", optarg);
			break;
		case OPT_TIMEOUT:
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
			if (optarg[0] == '\0')
				main_usage_error("--joblog needs a file name");
			opts->joblog = optarg;
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
			main_usage(stdout);
			exit(0);
		case 'V':
			printf("cpmap %s (libuv %s)\n", PACKAGE_VERSION,
			       uv_version_string());
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
	main_parse_groups(opts, argc - optind, argv + optind);
	if (opts->source_count == 0)
		main_add_source(opts, SOURCE_STDIN, NULL);
	main_fit_fd_limit(opts);
	if (!buffer_given) {
		unsigned long buffer = 64ul * opts->jobs;

		opts->buffer =
		    buffer > 100000000 ? 100000000 : (unsigned)buffer;
	}
	if (opts->persist && opts->stride == 0)
		opts->stride = 64;
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
	/* Without pipes there is no line to prefix: --tag needs lines. */
	if (opts->tag && opts->output_mode == OUTPUT_UNGROUP)
		opts->output_mode = OUTPUT_LINE;
	if (opts->output_mode == OUTPUT_UNGROUP)
		opts->ordered = false;
	main_plan_workers(opts, jobs_given);
	/* Hosts' slots are known only once they are up: room for 64
	 * tasks a slot on 64 slots a host. */
	for (size_t i = 0; !buffer_given && i < opts->worker_count; i++)
		if (opts->workers[i].kind == &remote_worker &&
		    opts->buffer < 4096 * opts->worker_count)
			opts->buffer = (unsigned)(4096 * opts->worker_count);
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

/* Option checks that need the parsed command. */
static void
main_check_command(const struct options *opts, const struct template *tmpl)
{
	if (opts->persist && template_has_input(tmpl))
		main_usage_error("--persist sends each input to the worker's "
				 "stdin: the command cannot use {} or fields");
}

/*
 * The workers the options ask for: this machine, plain or persistent, or
 * the -S hosts (":" among them is this machine).  A host's slots are its
 * "N/", or -j when given, or its CPU count, asked when it is reached.
 */
static void
main_plan_workers(struct options *opts, bool jobs_given)
{
	size_t count = main_worker_spec_count > 0 ? main_worker_spec_count : 1;

	opts->workers = xcalloc(count, sizeof *opts->workers);
	opts->worker_count = count;
	if (main_worker_spec_count == 0) {
		opts->workers[0] = (struct worker_plan){
		    .kind = opts->persist ? &persist_worker : &local_worker,
		    .where = xstrdup("local"),
		    .slots = opts->jobs,
		};
		return;
	}
	if (opts->persist)
		main_usage_error("--persist does not run on -S hosts yet");
	for (size_t i = 0; i < count; i++) {
		char *spec = main_worker_specs[i], *slash = strchr(spec, '/');
		unsigned slots = jobs_given ? opts->jobs : 0;

		if (slash != NULL && slash != spec &&
		    strspn(spec, "0123456789") == (size_t)(slash - spec)) {
			*slash = '\0';
			slots = (unsigned)main_number("-S", spec, 1, 100000);
			spec = slash + 1;
		}
		if (*spec == '\0')
			main_usage_error("-S: '%s' names no host",
					 main_worker_specs[i]);
		if (strcmp(spec, ":") == 0)
			opts->workers[i] = (struct worker_plan){
			    .kind = &local_worker,
			    .where = xstrdup("local"),
			    .slots = slots > 0 ? slots : opts->jobs,
			};
		else
			opts->workers[i] = (struct worker_plan){
			    .kind = &remote_worker,
			    .where = xstrdup(spec),
			    .slots = slots,
			};
		free(main_worker_specs[i]);
	}
	free(main_worker_specs);
	main_worker_specs = NULL;
}

int
main(int argc, char **argv)
{
	struct options opts;
	struct template *tmpl;
	struct input_reader *reader;
	struct pool *pool;
	uv_loop_t *loop;
	char *cause = NULL;
	int status, rc;

	log_init(argv[0]);
	main_open_standard_fds();
	main_raise_fd_limit();
	log_debug_open();
	main_cloexec_inherited();
	main_parse(&opts, argc, argv);

	tmpl =
	    template_parse(opts.command, opts.command_count, opts.replace,
			   opts.shell, opts.header || opts.json_input, &cause);
	if (tmpl == NULL)
		main_usage_error("%s", cause);
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

	reader = input_start(loop, &opts, &cause);
	if (reader == NULL)
		fatal("%s", cause);
	pool = pool_create(loop, &opts, tmpl, reader, &cause);
	if (pool == NULL)
		fatal("%s", cause);
	pool_run(pool);

	status = pool_exit_status(pool);
	/* Input that could not be read is work not done: say it loudly. */
	if (input_error(reader) != 0 && status < 128)
		status = CPMAP_EXIT_USAGE;
	rc = pool_output_error(pool);
	pool_free(pool);
	input_reader_free(reader);
	template_free(tmpl);
	child_stop();
	for (size_t i = 0; i < opts.worker_count; i++)
		free(opts.workers[i].where);
	free(opts.workers);
	free(opts.env);
	(void)uv_run(loop, UV_RUN_NOWAIT); /* let closed handles finish */
	(void)uv_loop_close(loop);
	free(opts.sources);

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
