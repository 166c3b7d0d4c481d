/*
 * test_optable.c - unit tests for optable.c: the option table is sound
 * (each name once, a short name one letter, an argument named in --help
 * exactly when the option takes one, words exactly for the options that
 * have them), getopt's short string and long options say what the rows
 * say, and the choice options find their words.
 */
#include <string.h>

#include "cpmap.h"
#include "optable.h"
#include "tap.h"

/* Every name of a row that getopt parses, counted over the table. */
static int
name_count(const char *name)
{
	int n = 0;

	for (size_t i = 0; i < optable_row_count; i++) {
		const struct optable_row *row = &optable_rows[i];

		if (row->heading != NULL || row->again)
			continue;
		for (size_t k = 0; k < OPTABLE_NAMES && row->names[k] != NULL;
		     k++)
			n += strcmp(row->names[k], name) == 0;
	}
	return n;
}

/* The name a failed check shows: the first row without the property. */
static const char *
none(const char *name)
{
	return name != NULL ? name : "none without";
}

/* One check per property, over every row: the first row without it is
 * named. */
static void
test_rows(void)
{
	const char *names = NULL, *once = NULL, *again = NULL, *metavar = NULL,
		   *words = NULL, *flag = NULL, *heading = NULL;

	for (size_t i = 0; i < optable_row_count; i++) {
		const struct optable_row *row = &optable_rows[i];
		bool has_words = row->value == OPTABLE_CHOICE ||
				 row->value == OPTABLE_EXAMPLES;

		if (row->heading != NULL) {
			if (row->names[0] != NULL && heading == NULL)
				heading = row->heading;
			continue;
		}
		if (row->names[0] == NULL && names == NULL)
			names = "(a row without names)";
		for (size_t k = 0; k < OPTABLE_NAMES && row->names[k] != NULL;
		     k++) {
			const char *name = row->names[k];

			if (!(name[0] == '-' &&
			      (name[1] == '-' ? strlen(name) > 3
					      : strlen(name) == 2)) &&
			    names == NULL)
				names = name;
			if (!row->again && name_count(name) != 1 &&
			    once == NULL)
				once = name;
			if (row->again &&
			    (optable_find(row->id) == NULL ||
			     name_count(name) != 1) &&
			    again == NULL)
				again = name;
		}
		if (row->names[0] == NULL)
			continue;
		if (optable_shown(row) &&
		    (row->metavar != NULL) != (row->arg != OPTABLE_NO_ARG) &&
		    metavar == NULL)
			metavar = row->names[0];
		if (((row->words != NULL) != has_words ||
		     (row->arg == OPTABLE_NO_ARG && has_words)) &&
		    words == NULL)
			words = row->names[0];
		if (row->arg == OPTABLE_NO_ARG && row->value != OPTABLE_TEXT &&
		    flag == NULL)
			flag = row->names[0];
	}
	tap_ok(heading == NULL, "headings have no names (%s)", none(heading));
	tap_ok(names == NULL, "every name is -x or --name (%s)", none(names));
	tap_ok(once == NULL, "every name is in one row (%s)", none(once));
	tap_ok(again == NULL, "a row again is an option above (%s)",
	       none(again));
	tap_ok(metavar == NULL,
	       "--help names an argument iff the option takes one (%s)",
	       none(metavar));
	tap_ok(words == NULL, "words iff a choice or examples (%s)",
	       none(words));
	tap_ok(flag == NULL, "a flag has no value kind (%s)", none(flag));
}

static void
test_getopt(void)
{
	const char *shorts = optable_short_options();
	const struct option *longs = optable_long_options();
	size_t count = 0;

	tap_ok(strncmp(shorts, "+:", 2) == 0,
	       "getopt stops at the command and reports missing arguments");
	tap_ok(strstr(shorts, "j:") != NULL && strstr(shorts, "a:") != NULL &&
		   strstr(shorts, "S:") != NULL,
	       "-j, -a, -S take a value: %s", shorts);
	tap_ok(strchr(shorts, 'k') != NULL && strstr(shorts, "k:") == NULL,
	       "-k takes none: %s", shorts);
	for (const struct option *o = longs; o->name != NULL; o++)
		count++;
	tap_ok(count > 80, "%zu long options", count);
	for (const struct option *o = longs; o->name != NULL; o++) {
		if (strcmp(o->name, "max-procs") == 0)
			tap_is_int(o->val, 'P', "--max-procs is -P");
		if (strcmp(o->name, "halt") == 0)
			tap_is_int(o->has_arg, required_argument,
				   "--halt takes a value");
		if (strcmp(o->name, "header") == 0)
			tap_is_int(o->has_arg, optional_argument,
				   "--header may take one");
		if (strcmp(o->name, "worker") == 0)
			tap_ok(false, "--worker is main()'s, not getopt's");
	}
}

static void
test_choices(void)
{
	char *text;

	tap_is_int(optable_choice(OPT_ON_BAD_INPUT, "skip"), BAD_INPUT_SKIP,
		   "--on-bad-input skip");
	tap_is_int(optable_choice(OPT_ON_BAD_INPUT, "abort"), BAD_INPUT_ABORT,
		   "--on-bad-input abort");
	tap_is_int(optable_choice(OPT_ON_BAD_INPUT, "Skip"), -1,
		   "--on-bad-input Skip is not a word");
	tap_is_int(optable_choice(OPT_JOBSERVER, "no"), 1, "--jobserver no");
	text = optable_words_text(optable_find(OPT_ON_BAD_INPUT));
	tap_is_str(text, "record, skip or abort", "the words for a message");
	free(text);
	text = optable_words_text(optable_find(OPT_REMOTE_AGENT));
	tap_is_str(text, "auto or sh", "two words");
	free(text);
}

int
main(void)
{
	test_rows();
	test_getopt();
	test_choices();
	return tap_done();
}
