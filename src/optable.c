/*
 * optable.c - the table of cpmap's command-line options, and what it
 * makes: getopt_long's short string and long options, and --help.
 *
 * Every option is one row: its names in the order --help shows them, its
 * argument (none, required, optional), what the argument is (a file, a
 * directory, a command, one of some words...), its --help lines.  main.c
 * parses with what this file makes, and takes the words of choice options
 * from here; completion.c writes the shells' completions from the same
 * rows.  A row with no help is accepted but not shown (an alias kept for
 * GNU parallel, an internal mode).
 */
#include <assert.h>
#include <string.h>

#include "cpmap.h"
#include "optable.h"

static const char *const on_bad_input_words[] = {"record", "skip", "abort",
						 NULL};
static const char *const remote_agent_words[] = {"auto", "sh", NULL};
static const char *const jobserver_words[] = {"auto", "no", NULL};
/* --header's value is optional: the one a shell offers. */
static const char *const header_words[] = {":", NULL};
static const char *const completion_words[] = {"bash", "zsh", "fish", NULL};
/* --halt takes a number or percentage too (halt.c): these are examples. */
static const char *const halt_words[] = {
    "never",	  "soon,fail=1",   "soon,success=1", "soon,done=1",
    "now,fail=1", "now,success=1", "now,done=1",     NULL};

/* The order of on_bad_input_words is enum bad_input_policy's. */
static_assert(BAD_INPUT_RECORD == 0 && BAD_INPUT_SKIP == 1 &&
		  BAD_INPUT_ABORT == 2,
	      "on_bad_input_words follows enum bad_input_policy");

#define ARG OPTABLE_REQUIRED

const struct optable_row optable_rows[] = {
    {.heading = "inputs:"},
    {.id = '0',
     .names = {"-0", "--null"},
     .help = "inputs are separated by NUL bytes"},
    {.id = 'd',
     .names = {"-d", "--delimiter"},
     .arg = ARG,
     .metavar = "C",
     .help = "inputs are separated by byte C (\\n \\t \\0 \\xHH)"},
    {.id = 'a',
     .names = {"-a", "--arg-file"},
     .arg = ARG,
     .value = OPTABLE_FILE,
     .metavar = "FILE",
     .help = "read inputs from FILE (repeatable)"},
    {.id = 'C',
     .names = {"-C", "--colsep"},
     .arg = ARG,
     .metavar = "SEP",
     .help = "split inputs into columns {1} {2} ... on SEP"},
    {.id = OPT_HEADER,
     .names = {"--header"},
     .arg = OPTABLE_OPTIONAL,
     .value = OPTABLE_EXAMPLES,
     .words = header_words,
     .metavar = "[:]",
     .help = "the first input names the columns: {name}"},
    {.id = OPT_KEEP_EMPTY,
     .names = {"--keep-empty"},
     .help = "do not skip empty inputs"},
    {.id = OPT_LINK,
     .names = {"--link"},
     .help = "pair ::: groups up instead of combining them all\n"
	     "(:::+ and ::::+ link one group to the one before)"},
    {.id = 'J',
     .names = {"-J", "--json-input"},
     .help = "each line is a JSON value: {name} {a.b} {1} fields"},
    {.id = OPT_ON_BAD_INPUT,
     .names = {"--on-bad-input"},
     .arg = ARG,
     .value = OPTABLE_CHOICE,
     .words = on_bad_input_words,
     .metavar = "P",
     .help = "record (default), skip or abort on bad input"},
    {.heading = "blocks of a stream:"},
    {.id = OPT_PIPE,
     .names = {"--pipe"},
     .help = "cut stdin (or -a FILE) into blocks of whole records,\n"
	     "one block on each task's stdin"},
    {.id = OPT_BLOCK,
     .names = {"--block", "--block-size"},
     .arg = ARG,
     .metavar = "SIZE",
     .help = "about SIZE bytes a block (k, M, G; default 1M)"},
    {.id = OPT_RECEND,
     .names = {"--recend"},
     .arg = ARG,
     .metavar = "STR",
     .help = "records end with STR (default: the delimiter)"},
    {.id = OPT_RECSTART,
     .names = {"--recstart"},
     .arg = ARG,
     .metavar = "STR",
     .help = "records start with STR"},
    {.id = OPT_PIPE_PART,
     .names = {"--pipe-part", "--pipepart"},
     .help = "with -a FILE: blocks are byte ranges of the file,\n"
	     "spliced to the tasks"},
    {.id = OPT_HEADER,
     .names = {"--header"},
     .arg = OPTABLE_OPTIONAL,
     .metavar = "N|:",
     .help = "with --pipe: the first N lines (:, 1) start every block",
     .again = true},
    {.id = OPT_ROUND_ROBIN,
     .names = {"--round-robin", "--round"},
     .help = "-j long-lived tasks take block after block"},
    {.heading = "command:"},
    {.id = 'I',
     .names = {"-I", "--replace"},
     .arg = ARG,
     .metavar = "STR",
     .help = "STR stands for the input instead of {}"},
    {.id = OPT_SHELL,
     .names = {"--shell"},
     .help = "run the command with /bin/sh -c"},
    {.id = OPT_NO_SHELL,
     .names = {"--no-shell"},
     .help = "never use the shell"},
    {.id = OPT_STDIN,
     .names = {"--stdin"},
     .help = "feed the input to the command's stdin"},
    {.id = OPT_DRY_RUN,
     .names = {"--dry-run", "--dryrun"},
     .help = "print the commands, run nothing"},
    {.id = 'v',
     .names = {"-v", "--verbose", "-t"},
     .help = "print each command on stderr as it starts"},
    {.id = OPT_NO_OP,
     .names = {"-q", "--quote", "-r", "--no-run-if-empty", "--will-cite",
	       "--citation"},
     .help = "accepted, and change nothing (GNU parallel, xargs)"},
    {.heading = "parallelism:"},
    {.id = 'j',
     .names = {"-j", "--jobs"},
     .arg = ARG,
     .metavar = "N",
     .help = "run N tasks at once (N% of the CPUs, +N or -N more or\n"
	     "fewer than the CPUs; 0: as many as allowed)"},
    {.id = 'P',
     .names = {"-P", "--max-procs"},
     .arg = ARG,
     .metavar = "N",
     .help = "the same as -j"},
    {.id = 'n',
     .names = {"-n", "--chunk"},
     .arg = ARG,
     .metavar = "N",
     .help = "up to N inputs per task"},
    {.id = 'N',
     .names = {"-N", "--max-args"},
     .arg = ARG,
     .metavar = "N",
     .help = "the same as -n"},
    {.id = 'X',
     .names = {"-X", "-m"},
     .help = "as many inputs per task as fit a command line"},
    {.id = OPT_DELAY,
     .names = {"--delay"},
     .arg = ARG,
     .metavar = "T",
     .help = "at least T between two task starts"},
    {.id = OPT_LOAD,
     .names = {"--load"},
     .arg = ARG,
     .metavar = "MAX",
     .help = "start no task while the load (or the running\n"
	     "processes) is above MAX (N, or N% of the CPUs)"},
    {.id = OPT_MEMFREE,
     .names = {"--memfree"},
     .arg = ARG,
     .metavar = "SIZE",
     .help = "start no task while less memory is available;\n"
	     "below SIZE/2, stop the youngest and run it later"},
    {.id = OPT_NICE,
     .names = {"--nice"},
     .arg = ARG,
     .metavar = "N",
     .help = "run tasks at niceness N (-20 to 19)"},
    {.id = OPT_JOBSERVER,
     .names = {"--jobserver"},
     .arg = ARG,
     .value = OPTABLE_CHOICE,
     .words = jobserver_words,
     .metavar = "WHEN",
     .help = "auto: under make -jN, take a token of make's\n"
	     "jobserver for each task beyond the first; no: never"},
    {.id = OPT_JOBSERVER_SLOTS,
     .names = {"--jobserver-slots"},
     .arg = ARG,
     .metavar = "N",
     .help = "serve N tokens to the tasks (MAKEFLAGS): nested make,\n"
	     "cargo and cpmap share them with cpmap's own tasks"},
    {.id = OPT_BUFFER,
     .names = {"--buffer"},
     .arg = ARG,
     .metavar = "N",
     .help = "at most N tasks started and not yet written"},
    {.id = OPT_PERSIST,
     .names = {"--persist"},
     .help = "one long-lived worker per slot, fed inputs on stdin"},
    {.id = OPT_PERSIST_MAX,
     .names = {"--persist-max"},
     .arg = ARG,
     .metavar = "N",
     .help = "replace a worker after N tasks"},
    {.id = OPT_STRIDE,
     .names = {"--stride"},
     .arg = ARG,
     .metavar = "N",
     .help = "tasks outstanding at one worker (default 64)"},
    {.heading = "output:"},
    {.id = 'k',
     .names = {"-k", "--ordered", "--keep-order"},
     .help = "write results in input order"},
    {.id = OPT_UNORDERED,
     .names = {"--unordered"},
     .help = "write results as tasks finish (default)"},
    {.id = OPT_LINE_BUFFER,
     .names = {"--line-buffer", "--lb"},
     .help = "pass output through line by line"},
    {.id = 'u',
     .names = {"-u", "--ungroup"},
     .help = "pass output through as it comes"},
    {.id = OPT_TAG,
     .names = {"--tag"},
     .help = "prefix each output line with the input"},
    {.id = OPT_TAGSTRING,
     .names = {"--tagstring"},
     .arg = ARG,
     .metavar = "STR",
     .help = "... with STR, placeholders expanded"},
    {.id = OPT_JSON,
     .names = {"--json"},
     .help = "write one JSON result record per task"},
    {.id = OPT_MAX_OUTPUT,
     .names = {"--max-output"},
     .arg = ARG,
     .metavar = "SIZE",
     .help = "keep at most SIZE bytes of each stream (k, M, G)"},
    {.id = OPT_RESULTS,
     .names = {"--results"},
     .arg = ARG,
     .value = OPTABLE_DIR,
     .metavar = "DIR",
     .help = "also keep DIR/SEQ/{stdout,stderr,record.json}"},
    {.heading = "control:"},
    {.id = OPT_TIMEOUT,
     .names = {"--timeout"},
     .arg = ARG,
     .metavar = "T",
     .help = "stop an attempt after T (500ms, 30s, 5m, 1h), or P% of\n"
	     "the median runtime of the tasks that succeeded"},
    {.id = OPT_KILL_AFTER,
     .names = {"--kill-after"},
     .arg = ARG,
     .metavar = "T",
     .help = "SIGKILL a stopped task after T (default 2s)"},
    {.id = OPT_RETRIES,
     .names = {"--retries"},
     .arg = ARG,
     .metavar = "N",
     .help = "run a failed task up to N more times"},
    {.id = OPT_RETRY_DELAY,
     .names = {"--retry-delay"},
     .arg = ARG,
     .metavar = "T",
     .help = "wait T before a retry, doubled each time"},
    {.id = OPT_HALT,
     .names = {"--halt"},
     .arg = ARG,
     .value = OPTABLE_EXAMPLES,
     .words = halt_words,
     .metavar = "POLICY",
     .help = "never, or soon|now,fail|success|done=N or =P%"},
    {.id = OPT_JOBLOG,
     .names = {"--joblog"},
     .arg = ARG,
     .value = OPTABLE_FILE,
     .metavar = "FILE",
     .help = "log each finished task (GNU parallel's format; +FILE\n"
	     "appends)"},
    {.id = OPT_RESUME,
     .names = {"--resume"},
     .help = "skip the tasks FILE shows done"},
    {.id = OPT_RESUME_FAILED,
     .names = {"--resume-failed"},
     .help = "... and run the failed ones again"},
    {.id = OPT_TIMELINE,
     .names = {"--timeline"},
     .arg = ARG,
     .value = OPTABLE_FILE,
     .metavar = "FILE",
     .help = "draw the run's attempts in FILE (SVG) at the end"},
    {.id = OPT_FROM_JOBLOG,
     .names = {"--from-joblog"},
     .arg = ARG,
     .value = OPTABLE_FILE,
     .metavar = "LOG",
     .help = "with --timeline: draw LOG's tasks, run nothing"},
    {.id = OPT_PROGRESS,
     .names = {"--progress"},
     .help = "show progress on stderr"},
    {.id = OPT_BAR,
     .names = {"--bar"},
     .help = "show a progress bar on stderr"},
    {.heading = "remote workers:"},
    {.id = 'S',
     .names = {"-S", "--workers"},
     .arg = ARG,
     .metavar = "SPEC,...",
     .help = "run on hosts: [N/][user@]host[:port], ':' is here"},
    {.id = OPT_WORKERS_FILE,
     .names = {"--workers-file"},
     .arg = ARG,
     .value = OPTABLE_FILE,
     .metavar = "FILE",
     .help = "hosts from FILE, re-read when it changes"},
    {.id = OPT_TRANSPORT,
     .names = {"--transport"},
     .arg = ARG,
     .value = OPTABLE_COMMAND,
     .metavar = "CMD",
     .help = "how to reach a host (default ssh; {host})"},
    {.id = OPT_HOST_TIMEOUT,
     .names = {"--host-timeout"},
     .arg = ARG,
     .metavar = "T",
     .help = "with no host up for T, give up (default 5m)"},
    {.id = OPT_ENV,
     .names = {"--env"},
     .arg = ARG,
     .value = OPTABLE_VARIABLE,
     .metavar = "NAME",
     .help = "copy variable NAME to remote tasks"},
    {.id = OPT_REMOTE_AGENT,
     .names = {"--remote-agent"},
     .arg = ARG,
     .value = OPTABLE_CHOICE,
     .words = remote_agent_words,
     .metavar = "A",
     .help = "auto (cpmap --worker if the host has it) or sh"},
    {.id = OPT_BASEFILE,
     .names = {"--basefile"},
     .arg = ARG,
     .value = OPTABLE_FILE,
     .metavar = "F",
     .help = "send F to each host before its first task"},
    {.id = OPT_BASEFILE, .names = {"--bf"}, .arg = ARG, .value = OPTABLE_FILE},
    {.id = OPT_TRANSFER,
     .names = {"--transfer"},
     .help = "send the input file {} before its task"},
    {.id = OPT_RETURN,
     .names = {"--return"},
     .arg = ARG,
     .metavar = "PAT",
     .help = "bring file PAT back after the task"},
    {.id = OPT_CLEANUP,
     .names = {"--cleanup"},
     .help = "remove from the host what was sent and returned"},
    {.id = OPT_TRC,
     .names = {"--trc"},
     .arg = ARG,
     .metavar = "PAT",
     .help = "--transfer --return PAT --cleanup"},
    {.id = OPT_WORKER,
     .names = {"--worker"},
     .help = "(alone) be the agent a remote cpmap starts",
     .alone = true},
    {.heading = ""},
    {.id = 'h', .names = {"-h", "--help"}, .help = "show this help"},
    {.id = 'V', .names = {"-V", "--version"}, .help = "show the version"},
    /* The build runs cpmap --completion SHELL to write the scripts. */
    {.id = OPT_COMPLETION,
     .names = {"--completion"},
     .arg = ARG,
     .value = OPTABLE_CHOICE,
     .words = completion_words},
};

const size_t optable_row_count = sizeof optable_rows / sizeof optable_rows[0];

bool
optable_shown(const struct optable_row *row)
{
	return row->heading == NULL && row->help != NULL;
}

/* Does getopt_long parse the row's names? */
static bool
optable_parsed(const struct optable_row *row)
{
	return row->heading == NULL && !row->again && !row->alone;
}

const char *
optable_short_options(void)
{
	/* "+": the first word that is not an option starts the command;
	 * ":": a missing argument is ':', not '?'. */
	static char shorts[3 * 64] = "+:";
	size_t len = strlen(shorts);

	if (len > 2)
		return shorts;
	for (size_t i = 0; i < optable_row_count; i++) {
		const struct optable_row *row = &optable_rows[i];

		for (size_t k = 0; optable_parsed(row) && k < OPTABLE_NAMES &&
				   row->names[k] != NULL;
		     k++) {
			const char *name = row->names[k];

			if (name[1] == '-')
				continue;
			assert(name[1] != '\0' && name[2] == '\0');
			assert(len + 4 < sizeof shorts);
			shorts[len++] = name[1];
			if (row->arg != OPTABLE_NO_ARG)
				shorts[len++] = ':';
			if (row->arg == OPTABLE_OPTIONAL)
				shorts[len++] = ':';
		}
	}
	shorts[len] = '\0';
	return shorts;
}

const struct option *
optable_long_options(void)
{
	static struct option
	    longs[sizeof optable_rows / sizeof optable_rows[0] * OPTABLE_NAMES +
		  1];
	size_t n = 0;

	if (longs[0].name != NULL)
		return longs;
	for (size_t i = 0; i < optable_row_count; i++) {
		const struct optable_row *row = &optable_rows[i];
		static const int has_arg[] = {
		    [OPTABLE_NO_ARG] = no_argument,
		    [OPTABLE_REQUIRED] = required_argument,
		    [OPTABLE_OPTIONAL] = optional_argument,
		};

		for (size_t k = 0; optable_parsed(row) && k < OPTABLE_NAMES &&
				   row->names[k] != NULL;
		     k++) {
			if (row->names[k][1] != '-')
				continue;
			longs[n++] =
			    (struct option){row->names[k] + 2,
					    has_arg[row->arg], NULL, row->id};
		}
	}
	assert(n > 0 && n < sizeof longs / sizeof longs[0]);
	longs[n] = (struct option){NULL, 0, NULL, 0};
	return longs;
}

const struct optable_row *
optable_find(int id)
{
	for (size_t i = 0; i < optable_row_count; i++)
		if (optable_rows[i].heading == NULL &&
		    optable_rows[i].id == id && !optable_rows[i].again)
			return &optable_rows[i];
	return NULL;
}

int
optable_choice(int id, const char *text)
{
	const struct optable_row *row = optable_find(id);

	assert(row != NULL && row->value == OPTABLE_CHOICE);
	for (int i = 0; row->words[i] != NULL; i++)
		if (strcmp(row->words[i], text) == 0)
			return i;
	return -1;
}

char *
optable_words_text(const struct optable_row *row)
{
	struct buf text = {0};

	for (size_t i = 0; row->words[i] != NULL; i++) {
		if (i > 0)
			buf_append_str(&text, row->words[i + 1] == NULL ? " or "
									: ", ");
		buf_append_str(&text, row->words[i]);
	}
	return buf_steal(&text, NULL);
}

/* Where the help lines start: names and metavar fit in the columns
 * before it, or go on a line of their own. */
#define HELP_COLUMN 25

void
optable_print_help(FILE *f)
{
	fputs("usage: cpmap [options] [--] command [arg ...]\n"
	      "       cpmap [options] [--] command [arg ...] ::: input ... "
	      "[::: input ...]\n"
	      "       cpmap [options] [--] command [arg ...] :::: file ...\n"
	      "\n"
	      "Runs command once per input, in parallel.  Inputs are the lines "
	      "of\n"
	      "stdin unless ::: or :::: or -a give them.\n"
	      "\n",
	      f);
	for (size_t i = 0; i < optable_row_count; i++) {
		const struct optable_row *row = &optable_rows[i];
		const char *line, *end;
		int width;

		if (row->heading != NULL) {
			fprintf(f, "%s\n", row->heading);
			continue;
		}
		if (row->help == NULL)
			continue;
		/* Long-only options line up with the long names of the
		 * others: "  -x, --name". */
		width =
		    fprintf(f, "  %s", row->names[0][1] == '-' ? "    " : "");
		for (size_t k = 0; k < OPTABLE_NAMES && row->names[k] != NULL;
		     k++)
			width += fprintf(f, "%s%s", k > 0 ? ", " : "",
					 row->names[k]);
		if (row->metavar != NULL)
			width += fprintf(f, " %s", row->metavar);
		if (width > HELP_COLUMN - 2) {
			fputc('\n', f);
			width = 0;
		}
		for (line = row->help; *line != '\0'; line = end) {
			end = line + strcspn(line, "\n");
			fprintf(f, "%*s%.*s\n", HELP_COLUMN - width, "",
				(int)(end - line), line);
			width = 0;
			if (*end == '\n')
				end++;
		}
	}
	fputs("\n"
	      "Placeholders: {} {.} {/} {//} {/.} {#} {%} {N} {name}.  See "
	      "cpmap(1).\n",
	      f);
}
