/*
 * completion.c - cpmap's completion scripts for bash, zsh and fish, written
 * from the option table (optable.c) by cpmap --completion SHELL: the build
 * writes contrib/completions/ with it, so the scripts offer exactly the
 * options --help lists, and for an option's value what the table says it
 * is (a file, a directory, a command, a variable, one of some words).
 *
 * Each script completes cpmap's options up to the command word (cpmap
 * stops reading options there, as getopt's "+"), skipping the values of
 * options that take one; then a command name; then the command's own
 * arguments, or file names after ::: and ::::.
 */
#include <string.h>

#include "cpmap.h"
#include "optable.h"

/* Rows whose names the scripts offer: those --help shows, once each. */
static bool
completion_offered(const struct optable_row *row)
{
	return optable_shown(row) && !row->again;
}

/* Rows whose names getopt parses: the scripts must know which of them
 * take the next word as a value, hidden or not. */
static bool
completion_takes_value(const struct optable_row *row)
{
	return row->heading == NULL && !row->again && !row->alone &&
	       row->arg == OPTABLE_REQUIRED;
}

/* Rows whose value is optional: main.c takes the next word as the value
 * when it is ":" or a number (--header). */
static bool
completion_may_take_value(const struct optable_row *row)
{
	return row->heading == NULL && !row->again && !row->alone &&
	       row->arg == OPTABLE_OPTIONAL;
}

/* The help lines of a row as one line, for a description. */
static void
completion_description(FILE *f, const char *help, const char *specials)
{
	for (const char *p = help; *p != '\0'; p++) {
		if (*p == '\n') {
			fputc(' ', f);
			continue;
		}
		if (strchr(specials, *p) != NULL)
			fputc('\\', f);
		if (*p == '\'')
			fputs("'\\'", f); /* zsh: end the quote, a ', again */
		fputc(*p, f);
	}
}

/* The names of the rows for which keep is true, as "a|b|c" (sep "|"). */
static void
completion_names(FILE *f, bool (*keep)(const struct optable_row *),
		 enum optable_value value, bool any_value, const char *sep)
{
	const char *between = "";

	for (size_t i = 0; i < optable_row_count; i++) {
		const struct optable_row *row = &optable_rows[i];

		if (row->heading != NULL || !keep(row) ||
		    (!any_value && row->value != value))
			continue;
		for (size_t k = 0; k < OPTABLE_NAMES && row->names[k] != NULL;
		     k++) {
			fprintf(f, "%s%s", between, row->names[k]);
			between = sep;
		}
	}
}

/* The short letters that take a value, for scanning "-xyz" words. */
static void
completion_short_letters(FILE *f, const char *sep)
{
	const char *between = "";

	for (size_t i = 0; i < optable_row_count; i++) {
		const struct optable_row *row = &optable_rows[i];

		if (!completion_takes_value(row))
			continue;
		for (size_t k = 0; k < OPTABLE_NAMES && row->names[k] != NULL;
		     k++)
			if (row->names[k][1] != '-') {
				fprintf(f, "%s%c", between, row->names[k][1]);
				between = sep;
			}
	}
}

static void
completion_words(FILE *f, const struct optable_row *row)
{
	for (size_t i = 0; row->words[i] != NULL; i++)
		fprintf(f, "%s%s", i > 0 ? " " : "", row->words[i]);
}

/* ---- bash ----------------------------------------------------------- */

static const char bash_head[] =
    "# cpmap(1) completion for bash, written by cpmap --completion bash\n"
    "# from cpmap's option table: do not edit.\n"
    "\n";

/*
 * The words before the cursor as the user typed them: bash splits at
 * COMP_WORDBREAKS (= and :) too, so "--halt=now" and ":::" come in
 * pieces; pieces with no space between them are put together again.
 * COMPREPLY replaces only the text after the last break, so the
 * candidates lose the part of the word before it.
 */
static const char bash_body[] =
    "# _cpmap_split: words, starts (each word's first COMP_WORDS index), "
    "cur,\n"
    "# and strip (what bash does not replace of cur).\n"
    "_cpmap_split()\n"
    "{\n"
    "\tlocal line=${COMP_LINE:0:COMP_POINT} pos=0 k w gap rest\n"
    "\tlocal breaks=${COMP_WORDBREAKS-$' \\t\\n\"\\'><=;|&(:'}\n"
    "\twords=() starts=()\n"
    "\tif [[ -z ${COMP_LINE-} ]]; then\n"
    "\t\twords=(\"${COMP_WORDS[@]:0:COMP_CWORD+1}\")\n"
    "\t\tfor ((k = 0; k <= COMP_CWORD; k++)); do starts+=(\"$k\"); done\n"
    "\t\tcur=${words[COMP_CWORD]} strip=''\n"
    "\t\treturn\n"
    "\tfi\n"
    "\tfor ((k = 0; k < COMP_CWORD; k++)); do\n"
    "\t\tw=${COMP_WORDS[k]}\n"
    "\t\trest=${line:pos}\n"
    "\t\tgap=${rest%%[![:space:]]*}\n"
    "\t\tif ((k > 0 && ${#gap} == 0)); then\n"
    "\t\t\twords[${#words[@]} - 1]+=$w\n"
    "\t\telse\n"
    "\t\t\twords+=(\"$w\") starts+=(\"$k\")\n"
    "\t\tfi\n"
    "\t\tpos=$((pos + ${#gap} + ${#w}))\n"
    "\tdone\n"
    "\t# The word being completed, up to the cursor.\n"
    "\trest=${line:pos}\n"
    "\tgap=${rest%%[![:space:]]*}\n"
    "\tcur=${rest:${#gap}}\n"
    "\tif ((${#gap} == 0 && ${#words[@]} > 0)); then\n"
    "\t\tcur=${words[${#words[@]} - 1]}$cur\n"
    "\t\tunset 'words[${#words[@]} - 1]' 'starts[${#starts[@]} - 1]'\n"
    "\tfi\n"
    "\twords+=(\"$cur\") starts+=(\"$COMP_CWORD\")\n"
    "\tfor ((k = ${#cur}; k > 0; k--)); do\n"
    "\t\t[[ $breaks == *\"${cur:k-1:1}\"* ]] && break\n"
    "\tdone\n"
    "\tstrip=${cur:0:k}\n"
    "}\n"
    "\n"
    "_cpmap()\n"
    "{\n"
    "\tlocal words starts cur strip i=1 k w opt='' val='' sep='' cmd=0\n"
    "\tlocal reply=()\n"
    "\t_cpmap_split\n"
    "\tlocal cword=$((${#words[@]} - 1))\n"
    "\t# Where the command starts: the first word that is not an option\n"
    "\t# or an option's value.\n"
    "\twhile ((i < cword)); do\n"
    "\t\tw=${words[i]}\n"
    "\t\tcase $w in\n"
    "\t\t--) cmd=$((i + 1)) && break ;;\n"
    "\t\t--*=*) ;;\n"
    "\t\t--*)\n"
    "\t\t\tif _cpmap_takes_value \"$w\"; then\n"
    "\t\t\t\t((i++))\n"
    "\t\t\telif _cpmap_may_take_value \"$w\" && ((i + 1 < cword)) &&\n"
    "\t\t\t\t[[ ${words[i + 1]} =~ ^(:|[0-9]+)$ ]]; then\n"
    "\t\t\t\t((i++)) # as cpmap: --header : or --header 2\n"
    "\t\t\tfi ;;\n"
    "\t\t-?*)\n"
    "\t\t\tfor ((k = 1; k < ${#w}; k++)); do\n"
    "\t\t\t\tif [[ $_cpmap_short_values == *\"${w:k:1}\"* ]]; then\n"
    "\t\t\t\t\t((k == ${#w} - 1)) && ((i++))\n"
    "\t\t\t\t\tbreak\n"
    "\t\t\t\tfi\n"
    "\t\t\tdone ;;\n"
    "\t\t*) cmd=$i && break ;;\n"
    "\t\tesac\n"
    "\t\t((i++))\n"
    "\tdone\n"
    "\tif ((cmd == 0 && i > cword)); then\n"
    "\t\t# The word is the value of the option before it.\n"
    "\t\topt=${words[cword - 1]} val=$cur\n"
    "\t\t[[ $opt == --* ]] || opt=-${opt: -1}\n"
    "\t\t_cpmap_value \"$opt\" \"$val\"\n"
    "\telif ((cmd == 0)) && [[ $cur == --*=* ]]; then\n"
    "\t\topt=${cur%%=*} val=${cur#*=}\n"
    "\t\t_cpmap_value \"$opt\" \"$val\"\n"
    "\t\treply=(\"${reply[@]/#/$opt=}\")\n"
    "\telif ((cmd == 0)) && [[ $cur == -* ]]; then\n"
    "\t\tmapfile -t reply < <(compgen -W \"$_cpmap_options\" -- \"$cur\")\n"
    "\telif ((cmd == 0 || cmd == cword)); then\n"
    "\t\t# The command word.\n"
    "\t\tmapfile -t reply < <(compgen -c -- \"$cur\")\n"
    "\t\tif [[ $cur == */* ]]; then\n"
    "\t\t\tcompopt -o filenames 2>/dev/null\n"
    "\t\t\tmapfile -t reply < <(compgen -f -- \"$cur\")\n"
    "\t\tfi\n"
    "\telse\n"
    "\t\t# After the command: file names after ::: or ::::, else the\n"
    "\t\t# command's own completion (bash-completion), else file names.\n"
    "\t\tfor ((k = cword - 1; k > cmd; k--)); do\n"
    "\t\t\tcase ${words[k]} in\n"
    "\t\t\t::: | :::+ | :::: | ::::+) sep=${words[k]} && break ;;\n"
    "\t\t\tesac\n"
    "\t\tdone\n"
    "\t\tif [[ -z $sep ]] && declare -F _command_offset >/dev/null; then\n"
    "\t\t\t_command_offset \"${starts[cmd]}\"\n"
    "\t\t\treturn\n"
    "\t\tfi\n"
    "\t\tcompopt -o filenames 2>/dev/null\n"
    "\t\tmapfile -t reply < <(compgen -f -- \"$cur\")\n"
    "\tfi\n"
    "\tCOMPREPLY=()\n"
    "\tfor w in \"${reply[@]}\"; do\n"
    "\t\t[[ $w == \"$strip\"* ]] && COMPREPLY+=(\"${w:${#strip}}\")\n"
    "\tdone\n"
    "}\n"
    "\n"
    "complete -F _cpmap cpmap\n";

/* A bash case pattern of the names of the rows with value kind value. */
static void
bash_value_case(FILE *f, enum optable_value value, const char *action)
{
	fputs("\t", f);
	completion_names(f, completion_takes_value, value, false, " | ");
	fprintf(f, ")\n\t\t%s ;;\n", action);
}

void
completion_print_bash(FILE *f)
{
	fputs(bash_head, f);
	fputs("# What the options are, and which take a value.\n"
	      "_cpmap_options='",
	      f);
	completion_names(f, completion_offered, OPTABLE_TEXT, true, " ");
	fputs("'\n_cpmap_short_values='", f);
	completion_short_letters(f, "");
	fputs("'\n\n_cpmap_takes_value()\n{\n\tcase $1 in\n\t", f);
	completion_names(f, completion_takes_value, OPTABLE_TEXT, true, " | ");
	fputs(") return 0 ;;\n\tesac\n\treturn 1\n}\n\n", f);
	fputs("# Options whose value is optional: cpmap takes the next word "
	      "as the\n# value when it is : or a number.\n"
	      "_cpmap_may_take_value()\n{\n\tcase $1 in\n\t",
	      f);
	completion_names(f, completion_may_take_value, OPTABLE_TEXT, true,
			 " | ");
	fputs(") return 0 ;;\n\tesac\n\treturn 1\n}\n\n", f);

	fputs("# _cpmap_value OPTION VALUE: reply, the values OPTION may take "
	      "that\n# start with VALUE.\n"
	      "_cpmap_value()\n{\n\tcase $1 in\n",
	      f);
	bash_value_case(f, OPTABLE_FILE,
			"compopt -o filenames 2>/dev/null\n"
			"\t\tmapfile -t reply < <(compgen -f -- \"$2\")");
	bash_value_case(f, OPTABLE_DIR,
			"compopt -o filenames 2>/dev/null\n"
			"\t\tmapfile -t reply < <(compgen -d -- \"$2\")");
	bash_value_case(f, OPTABLE_COMMAND,
			"mapfile -t reply < <(compgen -c -- \"$2\")");
	bash_value_case(f, OPTABLE_VARIABLE,
			"mapfile -t reply < <(compgen -e -- \"$2\")");
	for (size_t i = 0; i < optable_row_count; i++) {
		const struct optable_row *row = &optable_rows[i];

		if (!completion_takes_value(row) || row->words == NULL)
			continue;
		fputs("\t", f);
		for (size_t k = 0; k < OPTABLE_NAMES && row->names[k] != NULL;
		     k++)
			fprintf(f, "%s%s", k > 0 ? " | " : "", row->names[k]);
		fputs(")\n\t\tmapfile -t reply < <(compgen -W '", f);
		completion_words(f, row);
		fputs("' -- \"$2\") ;;\n", f);
	}
	fputs("\tesac\n}\n\n", f);
	fputs(bash_body, f);
}

/* ---- zsh ------------------------------------------------------------ */

static const char zsh_head[] =
    "#compdef cpmap\n"
    "# cpmap(1) completion for zsh, written by cpmap --completion zsh\n"
    "# from cpmap's option table: do not edit.\n"
    "\n"
    "# After the command: file names after ::: or ::::, else the "
    "command's own\n"
    "# completion.\n"
    "_cpmap_rest() {\n"
    "\tlocal i\n"
    "\tfor (( i = CURRENT - 1; i > 1; i-- )); do\n"
    "\t\tcase $words[i] in\n"
    "\t\t(:::|:::+|::::|::::+) _files; return ;;\n"
    "\t\tesac\n"
    "\tdone\n"
    "\t_normal\n"
    "}\n"
    "\n"
    "_cpmap_exported() {\n"
    "\t_parameters -g '*export*'\n"
    "}\n"
    "\n"
    "_cpmap() {\n"
    "\t# -A: no options after the command (cpmap stops reading them "
    "there).\n"
    "\t_arguments -s -S -A '-*' : \\\n";

static const char zsh_tail[] = "\t\t'(-)1:command:_command_names -e' \\\n"
			       "\t\t'*::argument:_cpmap_rest'\n"
			       "}\n"
			       "\n"
			       "_cpmap \"$@\"\n";

static void
zsh_spec(FILE *f, const struct optable_row *row, const char *name)
{
	bool value = row->arg != OPTABLE_NO_ARG;
	const char *how = !value ? "" : name[1] == '-' ? "=" : "+";

	/* -j+: -j4 or -j 4; --jobs=: --jobs=4 or --jobs 4; "::" an
	 * optional value (--header :). */
	fprintf(f, "\t\t'*%s%s[", name, how);
	completion_description(f, row->help, "[]:\\");
	fputc(']', f);
	if (!value) {
		fputs("' \\\n", f);
		return;
	}
	fputs(row->arg == OPTABLE_OPTIONAL ? "::" : ":", f);
	completion_description(f, row->metavar, "[]:\\");
	fputc(':', f);
	switch (row->value) {
	case OPTABLE_TEXT:
		fputc(' ', f);
		break;
	case OPTABLE_FILE:
		fputs("_files", f);
		break;
	case OPTABLE_DIR:
		fputs("_files -/", f);
		break;
	case OPTABLE_COMMAND:
		fputs("_command_names -e", f);
		break;
	case OPTABLE_VARIABLE:
		fputs("_cpmap_exported", f);
		break;
	case OPTABLE_CHOICE:
	case OPTABLE_EXAMPLES:
		fputc('(', f);
		for (size_t i = 0; row->words[i] != NULL; i++) {
			if (i > 0)
				fputc(' ', f);
			completion_description(f, row->words[i], "[]:\\() ");
		}
		fputc(')', f);
		break;
	}
	fputs("' \\\n", f);
}

void
completion_print_zsh(FILE *f)
{
	fputs(zsh_head, f);
	for (size_t i = 0; i < optable_row_count; i++) {
		const struct optable_row *row = &optable_rows[i];

		if (!completion_offered(row))
			continue;
		for (size_t k = 0; k < OPTABLE_NAMES && row->names[k] != NULL;
		     k++)
			zsh_spec(f, row, row->names[k]);
	}
	fputs(zsh_tail, f);
}

/* ---- fish ----------------------------------------------------------- */

static const char fish_head[] =
    "# cpmap(1) completion for fish, written by cpmap --completion fish\n"
    "# from cpmap's option table: do not edit.\n"
    "\n"
    "# Where the word being completed is: among cpmap's options, the "
    "value of\n"
    "# the option before it, the command word (after --), or past the "
    "command.\n"
    "# With \"rest\", the index of the command word follows.\n"
    "function __cpmap_where\n"
    "    set -l tokens (commandline -opc)\n"
    "    set -l i 2\n"
    "    while test $i -le (count $tokens)\n"
    "        set -l w $tokens[$i]\n"
    "        switch $w\n"
    "            case --\n"
    "                if test $i -eq (count $tokens)\n"
    "                    echo command\n"
    "                else\n"
    "                    echo rest (math $i + 1)\n"
    "                end\n"
    "                return\n"
    "            case '--*=*'\n"
    "            case '--*'\n"
    "                if __cpmap_takes_value $w\n"
    "                    set i (math $i + 1)\n"
    "                else if contains -- $w $__cpmap_may_take_value\n"
    "                    and test $i -lt (count $tokens)\n"
    "                    and string match -qr '^(:|[0-9]+)$' -- "
    "$tokens[(math $i + 1)]\n"
    "                    set i (math $i + 1) # as cpmap: --header :\n"
    "                end\n"
    "            case '-?*'\n"
    "                set -l letters (string split '' -- (string sub -s 2 "
    "-- $w))\n"
    "                for k in (seq (count $letters))\n"
    "                    if contains -- $letters[$k] $__cpmap_short_values\n"
    "                        if test $k -eq (count $letters)\n"
    "                            set i (math $i + 1)\n"
    "                        end\n"
    "                        break\n"
    "                    end\n"
    "                end\n"
    "            case '*'\n"
    "                echo rest $i\n"
    "                return\n"
    "        end\n"
    "        set i (math $i + 1)\n"
    "    end\n"
    "    # An option's value skipped past the word: the word is the value.\n"
    "    if test $i -gt (math (count $tokens) + 1)\n"
    "        echo value\n"
    "    else\n"
    "        echo options\n"
    "    end\n"
    "end\n"
    "\n"
    "function __cpmap_is\n"
    "    set -l where (__cpmap_where)\n"
    "    contains -- (string split ' ' -- $where)[1] $argv\n"
    "end\n"
    "\n"
    "# Past the command: file names after ::: or ::::, else the "
    "command's own\n"
    "# completion.\n"
    "function __cpmap_rest\n"
    "    set -l tokens (commandline -opc)\n"
    "    set -l at (string split ' ' -- (__cpmap_where))[2]\n"
    "    for t in $tokens[$at..-1]\n"
    "        if contains -- $t ::: :::+ :::: ::::+\n"
    "            __fish_complete_path (commandline -ct)\n"
    "            return\n"
    "        end\n"
    "    end\n"
    "    complete -C (string join ' ' -- (string escape -- "
    "$tokens[$at..-1]) (commandline -ct))\n"
    "end\n"
    "\n";

static void
fish_line(FILE *f, const struct optable_row *row, const char *name)
{
	fprintf(f, "complete -c cpmap -n '__cpmap_is options value' %s %s",
		name[1] == '-' ? "-l" : "-s", name + (name[1] == '-' ? 2 : 1));
	if (row->arg == OPTABLE_REQUIRED) {
		switch (row->value) {
		case OPTABLE_TEXT:
			fputs(" -x", f);
			break;
		case OPTABLE_FILE:
			fputs(" -r -F", f);
			break;
		case OPTABLE_DIR:
			fputs(" -x -a '(__fish_complete_directories)'", f);
			break;
		case OPTABLE_COMMAND:
			fputs(" -x -a '(__fish_complete_command)'", f);
			break;
		case OPTABLE_VARIABLE:
			fputs(" -x -a '(set -xn)'", f);
			break;
		case OPTABLE_CHOICE:
		case OPTABLE_EXAMPLES:
			fputs(" -x -a '", f);
			completion_words(f, row);
			fputc('\'', f);
			break;
		}
	}
	fputs(" -d '", f);
	/* fish: \ and ' are escaped with \ in single quotes. */
	for (const char *p = row->help; *p != '\0'; p++) {
		if (*p == '\\' || *p == '\'')
			fputc('\\', f);
		fputc(*p == '\n' ? ' ' : *p, f);
	}
	fputs("'\n", f);
}

void
completion_print_fish(FILE *f)
{
	fputs(fish_head, f);
	fputs("set -g __cpmap_short_values ", f);
	completion_short_letters(f, " ");
	fputs("\nset -g __cpmap_may_take_value ", f);
	completion_names(f, completion_may_take_value, OPTABLE_TEXT, true, " ");
	fputs("\n\nfunction __cpmap_takes_value\n"
	      "    contains -- $argv[1] ",
	      f);
	completion_names(f, completion_takes_value, OPTABLE_TEXT, true, " ");
	fputs("\nend\n\n"
	      "# No file names but where a file is asked for.\n"
	      "complete -c cpmap -f\n"
	      "complete -c cpmap -n '__cpmap_is options command' "
	      "-a '(__fish_complete_command)'\n"
	      "complete -c cpmap -n '__cpmap_is rest' -a '(__cpmap_rest)'\n",
	      f);
	for (size_t i = 0; i < optable_row_count; i++) {
		const struct optable_row *row = &optable_rows[i];

		if (!completion_offered(row))
			continue;
		for (size_t k = 0; k < OPTABLE_NAMES && row->names[k] != NULL;
		     k++)
			fish_line(f, row, row->names[k]);
	}
}
