/*
 * optable.h - cpmap's one table of command-line options (optable.c), and
 * what is made from it: getopt_long's arguments, the --help text, the
 * value words of choice options, and the shell completions (completion.c).
 *
 * One source, so that the parser, --help and the completions cannot drift
 * apart: an option is added by adding a row to the table.
 */
#ifndef OPTABLE_H
#define OPTABLE_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

/* What getopt_long returns for options without a short letter. */
enum optable_id {
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
	OPT_REMOTE_AGENT,
	OPT_WORKERS_FILE,
	OPT_BASEFILE,
	OPT_TRANSFER,
	OPT_RETURN,
	OPT_CLEANUP,
	OPT_TRC,
	OPT_NO_OP,
	OPT_TAGSTRING,
	OPT_DELAY,
	OPT_TIMELINE,
	OPT_FROM_JOBLOG,
	OPT_PIPE,
	OPT_PIPE_PART,
	OPT_BLOCK,
	OPT_RECEND,
	OPT_RECSTART,
	OPT_ROUND_ROBIN,
	OPT_LOAD,
	OPT_MEMFREE,
	OPT_NICE,
	OPT_JOBSERVER,
	OPT_JOBSERVER_SLOTS,
	OPT_WORKER,
	OPT_COMPLETION,
};

enum optable_arg {
	OPTABLE_NO_ARG,	  /* a flag */
	OPTABLE_REQUIRED, /* --opt VALUE, --opt=VALUE, -oVALUE */
	OPTABLE_OPTIONAL, /* --opt=VALUE only (main.c may take a next word) */
};

/* What an option's value is, so a shell knows what to offer for it. */
enum optable_value {
	OPTABLE_TEXT,	  /* anything: nothing to offer */
	OPTABLE_FILE,	  /* a file name */
	OPTABLE_DIR,	  /* a directory name */
	OPTABLE_COMMAND,  /* a command (a program's name first) */
	OPTABLE_VARIABLE, /* an environment variable's name */
	OPTABLE_CHOICE,	  /* one of words, and nothing else */
	OPTABLE_EXAMPLES, /* words are common values; others are valid too */
};

#define OPTABLE_NAMES 6 /* the most names a row has */

/*
 * One row: a heading of --help (heading set, no names), or one option (or
 * a few options that do the same) as --help shows it.
 */
struct optable_row {
	const char *heading;		  /* a --help heading ("" a gap) */
	int id;				  /* getopt_long's value for --long */
	const char *names[OPTABLE_NAMES]; /* "-x", "--long", help's order */
	enum optable_arg arg;		  /* for every name of the row */
	enum optable_value value;	  /* what the argument is */
	const char *metavar;		  /* the argument in --help */
	const char *const *words;	  /* CHOICE, EXAMPLES: NULL ends */
	const char *help;		  /* lines; NULL: hidden */
	bool again; /* another --help entry of an option above: no parsing */
	bool alone; /* main() handles it before getopt (--worker) */
};

extern const struct optable_row optable_rows[];
extern const size_t optable_row_count;

/* getopt_long's short-option string ("+:" first) and long options. */
const char *optable_short_options(void);
const struct option *optable_long_options(void);

/* The row of an option id (a short letter or an OPT_*), or NULL. */
const struct optable_row *optable_find(int id);

/* A CHOICE option's value: the index of text in its words, or -1. */
int optable_choice(int id, const char *text);

/* Its words as "a, b or c", for a message (malloc'd). */
char *optable_words_text(const struct optable_row *row);

/* Does the row show in --help and the completions? */
bool optable_shown(const struct optable_row *row);

/* --help. */
void optable_print_help(FILE *f);

/* --completion bash|zsh|fish: the script (completion.c). */
void completion_print_bash(FILE *f);
void completion_print_zsh(FILE *f);
void completion_print_fish(FILE *f);

#endif
