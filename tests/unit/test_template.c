/*
 * test_template.c - unit tests for template.c: parsing a command once and
 * expanding it into an argv per task.
 *
 * Most checks are rows of one table: the command words and options, the
 * task's inputs, and the exact argv expected (in shell mode: /bin/sh -c and
 * the exact command string), or the exact error.
 */
#include <stdlib.h>
#include <string.h>

#include "cpmap.h"
#include "tap.h"

#define MAX_WORDS 8
#define MAX_INPUTS 4
#define MAX_ARGS 16

struct expand_case {
	const char *what;
	const char *words[MAX_WORDS]; /* NULL-terminated */
	const char *replace;	      /* -I */
	enum shell_choice shell;
	bool named;			/* --header: {name} is a field */
	const char *colsep;		/* -C */
	const char *inputs[MAX_INPUTS]; /* NULL-terminated */
	unsigned long long seq;
	unsigned slot;
	bool no_input;		    /* --stdin: inputs are not appended */
	const char *want[MAX_ARGS]; /* NULL-terminated argv */
	const char *cause;	    /* or: the expansion fails with this */
	bool json;		    /* -J: the inputs are JSON lines */
};

#define SH(cmd)                                                                \
	{                                                                      \
		"/bin/sh", "-c", cmd                                           \
	}

static const struct expand_case expand_cases[] = {
    /* ---- {} and appending ------------------------------------------- */
    {"{} is the input",
     {"echo", "{}"},
     .inputs = {"a b"},
     .want = {"echo", "a b"}},
    {"{} anywhere inside a word, several times",
     {"cp", "{}", "x{}y{}z"},
     .inputs = {"f"},
     .want = {"cp", "f", "xfyfz"}},
    {"with no placeholder the input is appended",
     {"echo", "hi"},
     .inputs = {"a b"},
     .want = {"echo", "hi", "a b"}},
    {"a command of one word gets the input appended",
     {"wc"},
     .inputs = {"file"},
     .want = {"wc", "file"}},
    {"each column is appended as its own argument",
     {"echo"},
     .colsep = ",",
     .inputs = {"a,b c,"},
     .want = {"echo", "a", "b c", ""}},
    {"--stdin: the input is not appended",
     {"cat"},
     .inputs = {"a"},
     .no_input = true,
     .want = {"cat"}},
    {"{#} is a placeholder: the input is not appended (GNU)",
     {"echo", "{#}"},
     .inputs = {"a"},
     .seq = 5,
     .want = {"echo", "5"}},
    {"{%} is a placeholder: the input is not appended (GNU)",
     {"echo", "{%}"},
     .inputs = {"a"},
     .slot = 3,
     .want = {"echo", "3"}},
    {"rm -f lock{#} never gets the input as an argument",
     {"rm", "-f", "lock{#}"},
     .inputs = {"keep"},
     .seq = 1,
     .want = {"rm", "-f", "lock1"}},
    {"input values are never interpreted in direct mode",
     {"echo", "{}"},
     .inputs = {"$(id) `id` 'q' \"d\" ; | * ~"},
     .want = {"echo", "$(id) `id` 'q' \"d\" ; | * ~"}},
    {"a newline in the input stays in the argument",
     {"echo", "{}"},
     .inputs = {"a\nb"},
     .want = {"echo", "a\nb"}},
    {"an empty input is an empty argument",
     {"echo", "[{}]", "{}"},
     .inputs = {""},
     .want = {"echo", "[]", ""}},
    {"an empty input is appended as an empty argument",
     {"echo"},
     .inputs = {""},
     .want = {"echo", ""}},
    {"the command word itself may be a placeholder",
     {"{}", "-x"},
     .inputs = {"/bin/tool"},
     .want = {"/bin/tool", "-x"}},

    /* ---- {.} -------------------------------------------------------- */
    {"{.} strips the extension",
     {"e", "{.}"},
     .inputs = {"a/b.c"},
     .want = {"e", "a/b"}},
    {"{.} strips only the last extension",
     {"e", "{.}"},
     .inputs = {"f.tar.gz"},
     .want = {"e", "f.tar"}},
    {"{.} leaves a dot in a directory name",
     {"e", "{.}"},
     .inputs = {"dir.x/f"},
     .want = {"e", "dir.x/f"}},
    {"{.} without any dot is the input",
     {"e", "{.}"},
     .inputs = {"noext"},
     .want = {"e", "noext"}},
    {"{.} of a dot file is empty",
     {"e", "[{.}]"},
     .inputs = {".bashrc"},
     .want = {"e", "[]"}},
    {"{.} of a trailing dot",
     {"e", "{.}"},
     .inputs = {"a.b."},
     .want = {"e", "a.b"}},
    {"{.} with a dot before a trailing slash",
     {"e", "{.}"},
     .inputs = {"a/b.c/"},
     .want = {"e", "a/b.c/"}},
    {"{.} keeps the directory of a dot file",
     {"e", "{.}"},
     .inputs = {"d/.rc"},
     .want = {"e", "d/"}},
    {"{.} of . is empty (as GNU parallel)",
     {"e", "[{.}]"},
     .inputs = {"."},
     .want = {"e", "[]"}},
    {"{.} of .. is . (as GNU parallel)",
     {"e", "{.}"},
     .inputs = {".."},
     .want = {"e", "."}},
    {"{.} of a name ending in /. is the directory",
     {"e", "{.}"},
     .inputs = {"a/."},
     .want = {"e", "a/"}},

    /* ---- {/} -------------------------------------------------------- */
    {"{/} is the basename",
     {"e", "{/}"},
     .inputs = {"a/b/c.txt"},
     .want = {"e", "c.txt"}},
    {"{/} of a name without slash is the name",
     {"e", "{/}"},
     .inputs = {"c.txt"},
     .want = {"e", "c.txt"}},
    {"{/} after a trailing slash is empty",
     {"e", "[{/}]"},
     .inputs = {"a/b/"},
     .want = {"e", "[]"}},
    {"{/} of an absolute path",
     {"e", "{/}"},
     .inputs = {"/x"},
     .want = {"e", "x"}},

    /* ---- {//} ------------------------------------------------------- */
    {"{//} is the dirname",
     {"e", "{//}"},
     .inputs = {"a/b/c.txt"},
     .want = {"e", "a/b"}},
    {"{//} of a name without slash is .",
     {"e", "{//}"},
     .inputs = {"b"},
     .want = {"e", "."}},
    {"{//} ignores trailing slashes",
     {"e", "{//}"},
     .inputs = {"a/b/"},
     .want = {"e", "a"}},
    {"{//} of a file in / is /",
     {"e", "{//}"},
     .inputs = {"/a"},
     .want = {"e", "/"}},
    {"{//} of / is /", {"e", "{//}"}, .inputs = {"/"}, .want = {"e", "/"}},
    {"{//} of /// is /", {"e", "{//}"}, .inputs = {"///"}, .want = {"e", "/"}},
    {"{//} of //a is /", {"e", "{//}"}, .inputs = {"//a"}, .want = {"e", "/"}},
    {"{//} collapses the slashes before the basename",
     {"e", "{//}"},
     .inputs = {"a/b//c"},
     .want = {"e", "a/b"}},
    {"{//} of the empty input is .",
     {"e", "{//}"},
     .inputs = {""},
     .want = {"e", "."}},
    {"{//} of a relative name with trailing slashes",
     {"e", "{//}"},
     .inputs = {"b//"},
     .want = {"e", "."}},
    {"{//} keeps dots",
     {"e", "{//}"},
     .inputs = {"../x.d/f.c"},
     .want = {"e", "../x.d"}},

    /* ---- {/.} ------------------------------------------------------- */
    {"{/.} is the basename without extension",
     {"e", "{/.}"},
     .inputs = {"a/b/c.tar.gz"},
     .want = {"e", "c.tar"}},
    {"{/.} ignores a dot in the directory",
     {"e", "{/.}"},
     .inputs = {"dir.x/f"},
     .want = {"e", "f"}},
    {"{/.} of a dot file is empty",
     {"e", "[{/.}]"},
     .inputs = {"a/.rc"},
     .want = {"e", "[]"}},
    {"{/.} of a name without slash",
     {"e", "{/.}"},
     .inputs = {"f.c"},
     .want = {"e", "f"}},

    /* ---- {#} {%} ---------------------------------------------------- */
    {"{#} is the task number",
     {"e", "{#}", "n{#}"},
     .inputs = {"x"},
     .seq = 12,
     .want = {"e", "12", "n12"}},
    {"{#} of a large task number",
     {"e", "{#}{}"},
     .inputs = {"x"},
     .seq = 18446744073709551615ULL,
     .want = {"e", "18446744073709551615x"}},
    {"{%} is the slot",
     {"e", "{%}-{}"},
     .inputs = {"x"},
     .slot = 4,
     .want = {"e", "4-x"}},

    /* ---- {N} -------------------------------------------------------- */
    {"{N} is column N",
     {"e", "{2}", "{1}"},
     .colsep = ",",
     .inputs = {"a,b"},
     .want = {"e", "b", "a"}},
    {"a missing column is empty",
     {"e", "[{3}]"},
     .colsep = ",",
     .inputs = {"a,b"},
     .want = {"e", "[]"}},
    {"without --colsep {1} is the whole input",
     {"e", "{1}"},
     .inputs = {"a,b"},
     .want = {"e", "a,b"}},
    {"without --colsep {2} is empty",
     {"e", "[{2}]"},
     .inputs = {"a,b"},
     .want = {"e", "[]"}},
    {"{N.} {N/} {N//} {N/.} modify column N",
     {"e", "{2.}", "{2/}", "{2//}", "{2/.}", "{1.}"},
     .colsep = "\t",
     .inputs = {"x.y\td.d/f.txt"},
     .want = {"e", "d.d/f", "f.txt", "d.d", "f", "x"}},
    {"a multi-digit column",
     {"e", "{10}"},
     .colsep = " ",
     .inputs = {"1 2 3 4 5 6 7 8 9 ten 11"},
     .want = {"e", "ten"}},
    {"a column number of 10 digits is not a placeholder",
     {"e", "{1234567890}"},
     .inputs = {"a"},
     .want = {"e", "{1234567890}", "a"}},
    {"{} and {N} together: {} is every column (GNU)",
     {"e", "{}", "{1}"},
     .colsep = ":",
     .inputs = {"a:b"},
     .want = {"e", "a", "b", "a"}},

    /* ---- what is not a placeholder ---------------------------------- */
    {"{name} stays literal without --header",
     {"awk", "{print}", "{}"},
     .inputs = {"f"},
     .want = {"awk", "{print}", "f"}},
    {"unclosed and stray braces are literal",
     {"e", "{", "}", "{x", "}{"},
     .inputs = {"a"},
     .want = {"e", "{", "}", "{x", "}{", "a"}},
    {"a brace before a placeholder is literal",
     {"e", "{{}}"},
     .inputs = {"a"},
     .want = {"e", "{a}"}},
    {"placeholders back to back",
     {"e", "{}{}{.}{#}"},
     .inputs = {"a.b"},
     .seq = 1,
     .want = {"e", "a.ba.ba1"}},
    {"a space inside braces is literal",
     {"e", "{ }"},
     .inputs = {"a"},
     .want = {"e", "{ }", "a"}},
    {"unknown modifiers are literal",
     {"e", "{..}", "{///}", "{./}", "{1x}", "{#1}", "{%%}"},
     .inputs = {"a"},
     .want = {"e", "{..}", "{///}", "{./}", "{1x}", "{#1}", "{%%}", "a"}},
    {"a value holding braces is not expanded again",
     {"e", "{}"},
     .inputs = {"{} {.} {#}"},
     .want = {"e", "{} {.} {#}"}},

    /* ---- -I --------------------------------------------------------- */
    {"-I STR stands for the input",
     {"mv", "XX", "XX.bak"},
     .replace = "XX",
     .inputs = {"f"},
     .want = {"mv", "f", "f.bak"}},
    {"-I makes {} literal",
     {"e", "{}", "XX"},
     .replace = "XX",
     .inputs = {"f"},
     .want = {"e", "{}", "f"}},
    {"-I keeps the other placeholders",
     {"e", "{.}", "{/}", "{1}", "{#}"},
     .replace = "XX",
     .inputs = {"d/f.c"},
     .seq = 2,
     .want = {"e", "d/f", "f.c", "d/f.c", "2"}},
    {"-I STR is matched left to right",
     {"e", "XXX", "aXXb"},
     .replace = "XX",
     .inputs = {"v"},
     .want = {"e", "vX", "avb"}},
    {"-I {} is the input",
     {"e", "{}"},
     .replace = "{}",
     .inputs = {"v"},
     .want = {"e", "v"}},
    {"-I with no match appends the input",
     {"e", "x"},
     .replace = "XX",
     .inputs = {"v"},
     .want = {"e", "x", "v"}},
    {"-I in shell mode",
     {"echo XX > XX.out"},
     .replace = "XX",
     .inputs = {"a b"},
     .want = SH("echo 'a b' > 'a b'.out")},

    /* ---- chunks (-n) ------------------------------------------------ */
    {"a chunk: a word with {} is repeated per input",
     {"e", "x{}y"},
     .inputs = {"a", "b"},
     .want = {"e", "xay", "xby"}},
    {"a chunk: every word with {} is repeated",
     {"e", "{}", "--", "{.}"},
     .inputs = {"a.c", "b.c", "c"},
     .want = {"e", "a.c", "b.c", "c", "--", "a", "b", "c"}},
    {"a chunk: a word with {} and {#} is repeated with the same {#}",
     {"e", "{#}:{}"},
     .inputs = {"a", "b"},
     .seq = 9,
     .want = {"e", "9:a", "9:b"}},
    {"a chunk: words without the input are not repeated",
     {"e", "{#}", "{%}", "{}"},
     .inputs = {"a", "b"},
     .seq = 3,
     .slot = 2,
     .want = {"e", "3", "2", "a", "b"}},
    {"a chunk: inputs are appended as arguments",
     {"e"},
     .inputs = {"a b", "c", ""},
     .want = {"e", "a b", "c", ""}},
    {"a chunk: columns of every input are appended",
     {"e"},
     .colsep = ",",
     .inputs = {"a,b", "c", "d,,e"},
     .want = {"e", "a", "b", "c", "d", "", "e"}},
    {"a chunk: {k} is the k-th input (GNU -N)",
     {"cp", "{1}", "{2}"},
     .inputs = {"a", "b"},
     .want = {"cp", "a", "b"}},
    {"a chunk: {k} inside a word, once",
     {"e", "[{2}]", "{1}.{3}"},
     .inputs = {"a", "b c", "d"},
     .want = {"e", "[b c]", "a.d"}},
    {"a chunk: {k} with a modifier",
     {"e", "{2.}", "{1/}"},
     .inputs = {"x/a.c", "y/b.c"},
     .want = {"e", "y/b", "a.c"}},
    {"a short last chunk: {k} past its end is empty (GNU)",
     {"e", "[{1}]", "[{2}]"},
     .inputs = {"c"},
     .want = {"e", "[c]", "[]"}},
    {"a short chunk: {k} past its end is empty",
     {"e", "[{3}]"},
     .inputs = {"a", "b"},
     .want = {"e", "[]"}},
    {"a chunk: {-1} is its last input",
     {"e", "{-1}", "{-2}", "[{-3}]"},
     .inputs = {"a", "b"},
     .want = {"e", "b", "a", "[]"}},
    {"a chunk of columns: {N} counts every input's columns (GNU)",
     {"e", "{1}", "{2}", "{3}", "{-1}"},
     .colsep = ",",
     .inputs = {"a,b", "c,d"},
     .want = {"e", "a", "b", "c", "d"}},
    {"a chunk: {} repeated, {1} the same in every repetition",
     {"e", "{1}:{}"},
     .inputs = {"a", "b"},
     .want = {"e", "a:a", "a:b"}},
    {"a chunk with --stdin appends nothing",
     {"e"},
     .inputs = {"a", "b"},
     .no_input = true,
     .want = {"e"}},

    /* ---- shell mode ------------------------------------------------- */
    {"one word with a space runs through the shell",
     {"echo {}"},
     .inputs = {"a"},
     .want = SH("echo a")},
    {"shell mode quotes the input",
     {"echo {}"},
     .inputs = {"a b"},
     .want = SH("echo 'a b'")},
    {"shell mode: a quote in the input",
     {"echo {}"},
     .inputs = {"it's"},
     .want = SH("echo 'it'\\''s'")},
    {"shell mode: an injection attempt is one literal word",
     {"echo {} | wc -c"},
     .inputs = {"$(rm -rf ~); `id`"},
     .want = SH("echo '$(rm -rf ~); `id`' | wc -c")},
    {"shell mode: an empty input is ''",
     {"echo {}"},
     .inputs = {""},
     .want = SH("echo ''")},
    {"shell mode: a newline in the input",
     {"echo {}"},
     .inputs = {"a\nb"},
     .want = SH("echo 'a\nb'")},
    {"shell mode: modified values are quoted",
     {"echo {.} {/} {//} {/.}"},
     .inputs = {"my dir/a b.c"},
     .want = SH("echo 'my dir/a b' 'a b.c' 'my dir' 'a b'")},
    {"shell mode: a value inside a word",
     {"cat {}.txt>{.}.out"},
     .inputs = {"x y.in"},
     .want = SH("cat 'x y.in'.txt>'x y'.out")},
    {"shell mode: {#} and {%} are bare numbers",
     {"echo {#} {%} {}"},
     .inputs = {"a"},
     .seq = 7,
     .slot = 2,
     .want = SH("echo 7 2 a")},
    {"shell mode: {#} alone is a placeholder, nothing is appended",
     {"touch lock{#};"},
     .inputs = {"keep"},
     .seq = 4,
     .want = SH("touch lock4;")},
    {"shell mode: a chunk's {k} is one quoted input",
     {"cp {1} {2}"},
     .inputs = {"a b", "c"},
     .want = SH("cp 'a b' c")},
    {"shell mode: {} of several columns is one quoted word each",
     {"printf '[%s]\\n' {}"},
     .colsep = "\t",
     .inputs = {"a\tc d"},
     .want = SH("printf '[%s]\\n' a 'c d'")},
    {"shell mode: the input is appended, quoted",
     {"echo hi;"},
     .inputs = {"a b"},
     .want = SH("echo hi; 'a b'")},
    {"shell mode: columns are appended one by one",
     {"printf '%s\\n'"},
     .colsep = ",",
     .inputs = {"a,b c"},
     .want = SH("printf '%s\\n' a 'b c'")},
    {"shell mode: {N} is quoted",
     {"echo {2} {1}"},
     .colsep = ",",
     .inputs = {"a b,c'd"},
     .want = SH("echo 'c'\\''d' 'a b'")},
    {"shell mode: awk braces stay literal",
     {"awk '{print $1}' {}"},
     .inputs = {"f"},
     .want = SH("awk '{print $1}' f")},
    {"shell mode: a chunk's quoted values are joined by spaces",
     {"echo {} end"},
     .inputs = {"a", "b c", ""},
     .want = SH("echo a 'b c' '' end")},
    {"shell mode: a chunk inside a word",
     {"echo x{}y"},
     .inputs = {"a", "b"},
     .want = SH("echo xa by")},
    {"shell mode: a chunk is appended",
     {"echo hi;"},
     .inputs = {"a", "b c"},
     .want = SH("echo hi; a 'b c'")},
    {"shell mode: --stdin appends nothing",
     {"wc -l"},
     .inputs = {"a"},
     .no_input = true,
     .want = SH("wc -l")},
    {"--shell joins the words with spaces",
     {"echo", "{}", "|", "wc"},
     .shell = SHELL_ALWAYS,
     .inputs = {"a b"},
     .want = SH("echo 'a b' | wc")},
    {"--shell with one plain word",
     {"true"},
     .shell = SHELL_ALWAYS,
     .inputs = {"a"},
     .want = SH("true a")},
    {"several words are not run by the shell",
     {"echo", "a|b", "{}"},
     .inputs = {"x y"},
     .want = {"echo", "a|b", "x y"}},
    {"--no-shell passes one word with a space as is",
     {"echo {}"},
     .shell = SHELL_NEVER,
     .inputs = {"a b"},
     .want = {"echo a b"}},
    {"--no-shell with shell syntax",
     {"a;b {}"},
     .shell = SHELL_NEVER,
     .inputs = {"x"},
     .want = {"a;b x"}},
    {"one word without shell syntax is run directly",
     {"true"},
     .inputs = {"a b"},
     .want = {"true", "a b"}},
    {"one word of placeholders is run directly",
     {"{}"},
     .inputs = {"/bin/x"},
     .want = {"/bin/x"}},

/* ---- -J: JSON inputs (main passes named fields with -J) ---------- */
#define OBJECT                                                                 \
	"{\"name\": \"a b\", \"n\": {\"x\": 1}, \"items\": [1, \"two\"], "     \
	"\"a.b\": \"dotted\", \"a\": {\"b\": \"path\"}, \"t\": true}"
    {"-J: {name} is a field's string value",
     {"e", "{name}", "{t}"},
     .json = true,
     .named = true,
     .inputs = {OBJECT},
     .want = {"e", "a b", "true"}},
    {"-J: dotted paths into objects and arrays",
     {"e", "{n.x}", "{items.0}", "{items.1}"},
     .json = true,
     .named = true,
     .inputs = {OBJECT},
     .want = {"e", "1", "1", "two"}},
    {"-J: a key holding a dot wins over the path",
     {"e", "{a.b}"},
     .json = true,
     .named = true,
     .inputs = {OBJECT},
     .want = {"e", "dotted"}},
    {"-J: an object or array field is its compact JSON text",
     {"e", "{n}", "{items}"},
     .json = true,
     .named = true,
     .inputs = {OBJECT},
     .want = {"e", "{\"x\":1}", "[1,\"two\"]"}},
    {"-J: {} is the compact text of the record",
     {"e", "{}"},
     .json = true,
     .named = true,
     .inputs = {"{ \"k\" : [ 1 , 2 ] }"},
     .want = {"e", "{\"k\":[1,2]}"}},
    {"-J: a missing field is an error",
     {"e", "{nope}"},
     .json = true,
     .named = true,
     .inputs = {OBJECT},
     .cause = "input 1: no field 'nope' in the record"},
    {"-J: a missing path is an error",
     {"e", "{items.5}"},
     .json = true,
     .named = true,
     .inputs = {OBJECT},
     .cause = "input 1: no field 'items.5' in the record"},
    {"-J: a field of the second input of a chunk",
     {"e", "{k}"},
     .json = true,
     .named = true,
     .inputs = {"{\"k\": 1}", "{\"j\": 2}"},
     .cause = "input 2: no field 'k' in the record"},
    {"-J: array elements fill {N}",
     {"e", "{2}", "{1}", "{3}", "{4}"},
     .json = true,
     .named = true,
     .inputs = {"[\"a b\", 2, null, {\"k\": true}]"},
     .want = {"e", "2", "a b", "null", "{\"k\":true}"}},
    {"-J: {N} past an array's end is an error",
     {"e", "{3}"},
     .json = true,
     .named = true,
     .inputs = {"[1, 2]"},
     .cause = "input 1: no element 3"},
    {"-J: an array's elements are appended as arguments",
     {"e"},
     .json = true,
     .named = true,
     .inputs = {"[\"a b\", 2]", "[\"c\"]"},
     .want = {"e", "a b", "2", "c"}},
    {"-J: an empty array appends nothing",
     {"e"},
     .json = true,
     .named = true,
     .inputs = {"[]"},
     .want = {"e"}},
    {"-J: {1} of an empty array is an error",
     {"e", "{1}"},
     .json = true,
     .named = true,
     .inputs = {"[]"},
     .cause = "input 1: no element 1"},
    {"-J: a string is its value",
     {"e", "{}", "{.}", "{1}"},
     .json = true,
     .named = true,
     .inputs = {"\"dir/f.txt\""},
     .want = {"e", "dir/f.txt", "dir/f", "dir/f.txt"}},
    {"-J: a string is appended like a line",
     {"e"},
     .json = true,
     .named = true,
     .inputs = {"\"a b\""},
     .want = {"e", "a b"}},
    {"-J: a string is like a line: {2} is empty",
     {"e", "[{2}]"},
     .json = true,
     .named = true,
     .inputs = {"\"a\""},
     .want = {"e", "[]"}},
    {"-J: a number is its JSON text",
     {"e", "{}"},
     .json = true,
     .named = true,
     .inputs = {"3.5"},
     .want = {"e", "3.5"}},
    {"-J: shell mode quotes field values",
     {"echo {name} {items}"},
     .json = true,
     .named = true,
     .inputs = {OBJECT},
     .want = SH("echo 'a b' '[1,\"two\"]'")},
#undef OBJECT

    /* ---- errors ----------------------------------------------------- */
    {"a missing --header field names the input and the field",
     {"e", "{name}"},
     .named = true,
     .inputs = {"a"},
     .cause = "input 1: no column named 'name' in the header"},
    {"a missing field in shell mode",
     {"echo {f_1.x-y}"},
     .named = true,
     .inputs = {"a"},
     .cause = "input 1: no column named 'f_1.x-y' in the header"},
    {"with --header, {1} and {} still work",
     {"e", "{1}", "{}", "{9x}"},
     .named = true,
     .colsep = ",",
     .inputs = {"a,b"},
     .want = {"e", "a", "a", "b", "{9x}"}},
    {"with --header, a name must start with a letter or _",
     {"e", "{-a}", "{.a}", "{a b}", "{a/b}"},
     .named = true,
     .inputs = {"v"},
     .want = {"e", "{-a}", "{.a}", "{a b}", "{a/b}", "v"}},

    /* ---- {} of several columns (::: groups, --colsep), as GNU -------- */
    {"{} of several columns: each column is its own argument",
     {"printf", "[%s]\\n", "{}"},
     .colsep = "\t",
     .inputs = {"a\tc d"},
     .want = {"printf", "[%s]\\n", "a", "c d"}},
    {"{} of several columns inside a word: text before and after",
     {"e", "x{}y"},
     .colsep = " ",
     .inputs = {"a b c"},
     .want = {"e", "xa", "b", "cy"}},
    {"{} of several columns: empty columns are arguments too",
     {"e", "{}"},
     .colsep = ",",
     .inputs = {",b,"},
     .want = {"e", "", "b", ""}},
    {"{.} of several columns: the modifier applies to each",
     {"e", "{.}"},
     .colsep = " ",
     .inputs = {"a.c d/e.f"},
     .want = {"e", "a", "d/e"}},
    {"{} of one column is the whole input",
     {"e", "{}"},
     .colsep = ",",
     .inputs = {"a b"},
     .want = {"e", "a b"}},
    {"a chunk of multi-column inputs: each repetition splits",
     {"e", "<{}>"},
     .colsep = ",",
     .inputs = {"a,b", "c"},
     .want = {"e", "<a", "b>", "<c>"}},
    {"-J: {} of an array stays its compact text",
     {"e", "{}"},
     .json = true,
     .named = true,
     .inputs = {"[\"a\", \"b\"]"},
     .want = {"e", "[\"a\",\"b\"]"}},

    /* ---- {-N}: counted from the last column or group ---------------- */
    {"{-1} is the last column, {-2} the one before",
     {"e", "{-1}", "{-2}", "{-3}"},
     .colsep = ",",
     .inputs = {"a,b,c"},
     .want = {"e", "c", "b", "a"}},
    {"{-N} past the first column is empty",
     {"e", "[{-4}]"},
     .colsep = ",",
     .inputs = {"a,b,c"},
     .want = {"e", "[]"}},
    {"{-1} of an input without columns is the input",
     {"e", "{-1}", "[{-2}]"},
     .inputs = {"a b"},
     .want = {"e", "a b", "[]"}},
    {"{-1} takes modifiers",
     {"e", "{-1/.}", "{-2//}"},
     .colsep = ",",
     .inputs = {"d/x.c,e/y.c"},
     .want = {"e", "y", "d"}},
    {"{-1} is a placeholder: nothing is appended",
     {"e", "{-1}"},
     .inputs = {"v"},
     .want = {"e", "v"}},
    {"{-}, {-0} and {--1} stay literal",
     {"e", "{-}", "{-0}", "{--1}", "{-1x}"},
     .inputs = {"v"},
     .want = {"e", "{-}", "{-0}", "{--1}", "{-1x}", "v"}},
    {"shell mode: {-1} is quoted",
     {"echo {-1}"},
     .colsep = ",",
     .inputs = {"a,b c"},
     .want = SH("echo 'b c'")},
    {"-J: {-1} is the last element",
     {"e", "{-1}"},
     .json = true,
     .named = true,
     .inputs = {"[1, \"z\"]"},
     .want = {"e", "z"}},
    {"-J: {-N} before the first element is an error",
     {"e", "{-3}"},
     .json = true,
     .named = true,
     .inputs = {"[1, 2]"},
     .cause = "input 1: no element -3"},
};

/* With no command, each input is a command line for /bin/sh. */
static const struct expand_case command_cases[] = {
    {"the input is the command line, unquoted",
     {NULL},
     .inputs = {"echo 'a b' | wc -c"},
     .want = SH("echo 'a b' | wc -c")},
    {"the columns of several groups are joined by spaces",
     {NULL},
     .colsep = "\t",
     .inputs = {"echo\ta"},
     .want = SH("echo a")},
    {"a chunk's inputs are joined by spaces (GNU -n)",
     {NULL},
     .inputs = {"echo a", "echo b"},
     .want = SH("echo a echo b")},
    {"--stdin: a shell reads the command from its stdin",
     {NULL},
     .inputs = {"echo a"},
     .no_input = true,
     .want = SH("exec /bin/sh -s")},
    {"--shell changes nothing",
     {NULL},
     .shell = SHELL_ALWAYS,
     .inputs = {"true"},
     .want = SH("true")},
    {"--colsep columns are joined by spaces",
     {NULL},
     .colsep = ",",
     .inputs = {"printf %s\\\\n,x"},
     .want = SH("printf %s\\\\n x")},
};

/* Build the inputs of a case, numbered from 1. */
static size_t
make_inputs(const struct expand_case *c, struct input **inputs)
{
	size_t n = 0;

	while (n < MAX_INPUTS && c->inputs[n] != NULL) {
		size_t len = strlen(c->inputs[n]);

		inputs[n] =
		    c->json ? json_input_create(c->inputs[n], len, n + 1)
			    : input_create(c->inputs[n], len, c->colsep, n + 1);
		n++;
	}
	return n;
}

static bool
argv_equal(char **got, const char *const *want)
{
	size_t i = 0;

	for (; got[i] != NULL && want[i] != NULL; i++)
		if (strcmp(got[i], want[i]) != 0)
			return false;
	return got[i] == NULL && want[i] == NULL;
}

static void
diag_argv(const char *what, char **argv, size_t count)
{
	tap_diag("%s:", what);
	for (size_t i = 0; argv[i] != NULL && i < count; i++)
		tap_diag_value("", argv[i], strlen(argv[i]));
}

static void
run_case(const struct expand_case *c)
{
	char *words[MAX_WORDS];
	int count = 0;
	struct input *inputs[MAX_INPUTS];
	size_t n = make_inputs(c, inputs);
	struct expansion e = {
	    .inputs = inputs, .input_count = n, .seq = c->seq, .slot = c->slot};
	char *cause = NULL;
	struct template *t;
	char **argv;

	while (count < MAX_WORDS && c->words[count] != NULL) {
		words[count] = (char *)(uintptr_t)c->words[count];
		count++;
	}
	t = template_parse(words, count, c->replace, c->shell, c->named,
			   &cause);
	if (t == NULL) {
		tap_ok(false, "%s", c->what);
		tap_diag("template_parse failed: %s", cause);
		free(cause);
		goto out;
	}
	argv = template_expand(t, &e, !c->no_input, &cause);
	if (c->cause != NULL) {
		if (argv != NULL) {
			tap_ok(false, "%s", c->what);
			diag_argv("expanded instead of failing", argv,
				  MAX_ARGS);
			free(argv);
		} else {
			tap_is_str(cause, c->cause, "%s", c->what);
			free(cause);
		}
	} else if (argv == NULL) {
		tap_ok(false, "%s", c->what);
		tap_diag("expansion failed: %s", cause);
		free(cause);
	} else {
		if (!tap_ok(argv_equal(argv, c->want), "%s", c->what)) {
			diag_argv("got", argv, MAX_ARGS);
			diag_argv("expected", (char **)(uintptr_t)c->want,
				  MAX_ARGS);
		}
		free(argv);
	}
	template_free(t);
out:
	for (size_t i = 0; i < n; i++)
		input_free(inputs[i]);
}

static struct template *
parse(const char *const *words, const char *replace, enum shell_choice shell,
      bool named)
{
	char *w[MAX_WORDS];
	int count = 0;
	char *cause = NULL;
	struct template *t;

	while (words[count] != NULL) {
		w[count] = (char *)(uintptr_t)words[count];
		count++;
	}
	t = template_parse(w, count, replace, shell, named, &cause);
	if (t == NULL)
		tap_bail("template_parse failed: %s", cause);
	return t;
}

/* template_uses_shell, template_has_input, template_uses_slot. */
static void
test_queries(void)
{
	static const struct {
		const char *words[4];
		const char *replace;
		enum shell_choice shell;
		bool named;
		bool uses_shell, has_input, uses_slot;
	} cases[] = {
	    {{"echo", "{}"}, NULL, SHELL_AUTO, false, false, true, false},
	    {{"echo"}, NULL, SHELL_AUTO, false, false, false, false},
	    {{"echo", "{.}"}, NULL, SHELL_AUTO, false, false, true, false},
	    {{"echo", "a{/}"}, NULL, SHELL_AUTO, false, false, true, false},
	    {{"echo", "{//}"}, NULL, SHELL_AUTO, false, false, true, false},
	    {{"echo", "{/.}"}, NULL, SHELL_AUTO, false, false, true, false},
	    {{"echo", "{3}"}, NULL, SHELL_AUTO, false, false, true, false},
	    {{"echo", "{3/.}"}, NULL, SHELL_AUTO, false, false, true, false},
	    {{"echo", "{#}"}, NULL, SHELL_AUTO, false, false, false, false},
	    {{"echo", "{-1}"}, NULL, SHELL_AUTO, false, false, true, false},
	    {{"echo", "{-2/}"}, NULL, SHELL_AUTO, false, false, true, false},
	    {{"echo", "{%}"}, NULL, SHELL_AUTO, false, false, false, true},
	    {{"echo", "x{%}y", "{}"},
	     NULL,
	     SHELL_AUTO,
	     false,
	     false,
	     true,
	     true},
	    {{"echo", "{%%}"}, NULL, SHELL_AUTO, false, false, false, false},
	    {{"echo", "{foo}"}, NULL, SHELL_AUTO, false, false, false, false},
	    {{"echo", "{foo}"}, NULL, SHELL_AUTO, true, false, true, false},
	    {{"echo", "{}"}, "XX", SHELL_AUTO, false, false, false, false},
	    {{"echo", "aXXb"}, "XX", SHELL_AUTO, false, false, true, false},
	    {{"echo", "{.}"}, "XX", SHELL_AUTO, false, false, true, false},
	    {{"echo {} {%}"}, NULL, SHELL_AUTO, false, true, true, true},
	    {{"echo {%}"}, NULL, SHELL_NEVER, false, false, false, true},
	    {{"echo hi"}, NULL, SHELL_AUTO, false, true, false, false},
	    {{"echo", "{}"}, NULL, SHELL_ALWAYS, false, true, true, false},
	    {{"a|b"}, NULL, SHELL_AUTO, false, true, false, false},
	    {{"a", "b c"}, NULL, SHELL_AUTO, false, false, false, false},
	    {{"{}"}, NULL, SHELL_AUTO, false, false, true, false},
	    {{"~/x"}, NULL, SHELL_AUTO, false, true, false, false},
	};
	static const char *const shell_names[] = {"auto", "never", "always"};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct template *t = parse(cases[i].words, cases[i].replace,
					   cases[i].shell, cases[i].named);
		char name[128];
		size_t n = 0;

		for (int k = 0; k < 4 && cases[i].words[k] != NULL; k++)
			n += (size_t)snprintf(name + n, sizeof name - n, "%s%s",
					      k ? " " : "", cases[i].words[k]);
		snprintf(name + n, sizeof name - n, "%s%s (shell %s%s)",
			 cases[i].replace ? " -I " : "",
			 cases[i].replace ? cases[i].replace : "",
			 shell_names[cases[i].shell],
			 cases[i].named ? ", --header" : "");
		tap_ok(template_uses_shell(t) == cases[i].uses_shell &&
			   template_has_input(t) == cases[i].has_input &&
			   template_uses_slot(t) == cases[i].uses_slot,
		       "[%s]: shell %s, input %s, slot %s", name,
		       cases[i].uses_shell ? "yes" : "no",
		       cases[i].has_input ? "yes" : "no",
		       cases[i].uses_slot ? "yes" : "no");
		template_free(t);
	}

	/* Every shell byte in one word selects the shell; braces do not. */
	static const char shell_bytes[] = " \t\n|&;<>()$`\\\"'*?[#~";
	int wrong = 0;

	for (const char *p = shell_bytes; *p != '\0'; p++) {
		char word[8] = {'c', 'm', 'd', *p, '{', '}', '\0'};
		const char *words[] = {word, NULL};
		struct template *t = parse(words, NULL, SHELL_AUTO, false);

		if (!template_uses_shell(t) && wrong++ == 0)
			tap_diag("byte 0x%02x does not select the shell", *p);
		template_free(t);
	}
	tap_ok(wrong == 0, "every shell syntax byte in a one-word command "
			   "selects the shell");
}

static void
test_parse_errors(void)
{
	char *words[] = {(char *)(uintptr_t) "echo", NULL};
	char *cause = NULL;
	struct template *t;

	t = template_parse(words, 0, NULL, SHELL_NEVER, false, &cause);
	tap_ok(t == NULL, "template_parse: no words with --no-shell is an "
			  "error");
	tap_is_str(cause,
		   "--no-shell needs a command (without one, each input is "
		   "a command line for /bin/sh)",
		   "... saying the inputs would be shell command lines");
	free(cause);
	cause = NULL;
	t = template_parse(words, 0, NULL, SHELL_AUTO, false, &cause);
	tap_ok(t != NULL && template_uses_shell(t) && template_has_input(t) &&
		   !template_uses_slot(t),
	       "template_parse: no words is a shell command from the input");
	template_free(t);

	/* {= perl =} is refused, naming the placeholder. */
	static const struct {
		const char *words[4];
		const char *cause;
	} perl[] = {
	    {{"echo", "{=1 $_=uc($_) =}"},
	     "{=1 $_=uc($_) =}: perl expression placeholders {= ... =} are "
	     "not supported (use a shell command or a script)"},
	    {{"echo", "a{= s/x/y/ =}b", "{}"},
	     "{= s/x/y/ =}: perl expression placeholders {= ... =} are not "
	     "supported (use a shell command or a script)"},
	    {{"echo {==}; true"},
	     "{==}: perl expression placeholders {= ... =} are not "
	     "supported (use a shell command or a script)"},
	};

	for (size_t i = 0; i < sizeof perl / sizeof perl[0]; i++) {
		char *w[4];
		int n = 0;

		while (n < 4 && perl[i].words[n] != NULL) {
			w[n] = (char *)(uintptr_t)perl[i].words[n];
			n++;
		}
		cause = NULL;
		t = template_parse(w, n, NULL, SHELL_AUTO, false, &cause);
		tap_ok(t == NULL, "template_parse refuses {= =} (case %zu)",
		       i + 1);
		tap_is_str(cause, perl[i].cause, "... naming the placeholder");
		template_free(t);
		free(cause);
	}
	cause = NULL;
	char *brace[] = {(char *)(uintptr_t) "e", (char *)(uintptr_t) "{=x}",
			 (char *)(uintptr_t) "x=}"};
	t = template_parse(brace, 3, NULL, SHELL_AUTO, false, &cause);
	tap_ok(t != NULL, "{= and =} in different words are literal text");
	template_free(t);
	cause = NULL;
	t = template_parse(words, 1, "", SHELL_AUTO, false, &cause);
	tap_ok(t == NULL, "template_parse: -I '' is an error");
	tap_is_str(cause, "-I needs a non-empty replacement string",
		   "... saying it needs a non-empty string");
	free(cause);
}

/* An input holding a NUL byte cannot be an argument. */
static void
test_nul(void)
{
	static const struct {
		const char *what;
		const char *words[4];
		const char *colsep;
		bool with_input;
		bool fails;
	} cases[] = {
	    {"as {}", {"e", "{}"}, NULL, true, true},
	    {"as {} in shell mode", {"echo {}"}, NULL, true, true},
	    {"appended", {"e"}, NULL, true, true},
	    {"appended in shell mode", {"echo;"}, NULL, true, true},
	    {"appended as a column", {"e"}, ",", true, true},
	    {"in the column used", {"e", "{1}"}, ",", true, true},
	    {"in {.} when the NUL is before the dot",
	     {"e", "{.}"},
	     NULL,
	     true,
	     true},
	    {"in a column not used", {"e", "{2}"}, ",", true, false},
	    {"in the part {/} drops", {"e", "{/}"}, NULL, true, false},
	    {"with --stdin", {"e"}, NULL, false, false},
	    {"in a command line from the input", {NULL}, NULL, true, true},
	    {"in {} of several columns", {"e", "{}"}, ",", true, true},
	};
	static const char text[] = "a\0b/x.c,y";

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct template *t =
		    parse(cases[i].words, NULL, SHELL_AUTO, false);
		struct input *in =
		    input_create(text, sizeof text - 1, cases[i].colsep, 17);
		struct expansion e = {
		    .inputs = &in, .input_count = 1, .seq = 1, .slot = 1};
		char *cause = NULL;
		char **argv =
		    template_expand(t, &e, cases[i].with_input, &cause);

		if (cases[i].fails) {
			tap_ok(argv == NULL, "a NUL byte %s: the task fails",
			       cases[i].what);
			tap_is_str(cause,
				   "input 17 holds a NUL byte, which cannot "
				   "be passed in an argument (use -0 or "
				   "--stdin)",
				   "a NUL byte %s: the cause names the input",
				   cases[i].what);
		} else {
			tap_ok(argv != NULL && cause == NULL,
			       "a NUL byte %s: no error", cases[i].what);
		}
		free(argv);
		free(cause);
		input_free(in);
		template_free(t);
	}

	/* In a chunk, the message names the input that holds it. */
	const char *words[] = {"e", "{}", NULL};
	struct template *t = parse(words, NULL, SHELL_AUTO, false);
	struct input *in[3] = {input_create("ok", 2, NULL, 4),
			       input_create("b\0d", 3, NULL, 5),
			       input_create("ok", 2, NULL, 6)};
	struct expansion e = {
	    .inputs = in, .input_count = 3, .seq = 1, .slot = 1};
	char *cause = NULL;
	char **argv = template_expand(t, &e, true, &cause);

	tap_ok(argv == NULL, "a NUL byte in a chunk's second input fails");
	tap_is_str(cause,
		   "input 5 holds a NUL byte, which cannot be passed in an "
		   "argument (use -0 or --stdin)",
		   "... and the cause names that input");
	free(argv);
	free(cause);

	/* The template is still usable after a failure. */
	input_free(in[1]);
	in[1] = input_create("c", 1, NULL, 5);
	cause = NULL;
	argv = template_expand(t, &e, true, &cause);
	tap_ok(argv != NULL && argv[0] != NULL && argv[1] != NULL &&
		   argv[2] != NULL && argv[3] != NULL && argv[4] == NULL &&
		   strcmp(argv[1], "ok") == 0 && strcmp(argv[2], "c") == 0 &&
		   strcmp(argv[3], "ok") == 0,
	       "after a failed expansion the next one is right");
	free(argv);
	for (int i = 0; i < 3; i++)
		input_free(in[i]);
	template_free(t);
}

/* Expansions are independent: each argv is one block of its own. */
static void
test_reuse(void)
{
	const char *words[] = {"echo", "{}", "{#}", NULL};
	struct template *t = parse(words, NULL, SHELL_AUTO, false);
	struct input *a = input_create("first", 5, NULL, 1);
	static const char long_text[] =
	    "a much longer second input that makes the scratch buffer grow "
	    "a lot, more than its first allocation of 64 bytes";
	struct input *b =
	    input_create(long_text, sizeof long_text - 1, NULL, 2);
	struct expansion ea = {.inputs = &a, .input_count = 1, .seq = 1};
	struct expansion eb = {.inputs = &b, .input_count = 1, .seq = 2};
	char *cause = NULL;
	char **first = template_expand(t, &ea, true, &cause);
	char **second = template_expand(t, &eb, true, &cause);
	const char *want_first[] = {"echo", "first", "1", NULL};
	const char *want_second[] = {"echo", b->text, "2", NULL};

	tap_ok(first != NULL && argv_equal(first, want_first),
	       "a first argv survives a second expansion");
	tap_ok(second != NULL && argv_equal(second, want_second),
	       "a second expansion with a longer input");
	free(first);
	free(second);
	input_free(a);
	input_free(b);

	/* The literal words are copied: the argv outlives the template. */
	a = input_create("x", 1, NULL, 1);
	first = template_expand(t, &ea, true, &cause);
	template_free(t);
	tap_ok(first != NULL && strcmp(first[0], "echo") == 0 &&
		   strcmp(first[1], "x") == 0,
	       "an argv outlives its template");
	free(first);
	input_free(a);
}

int
main(void)
{
	for (size_t i = 0; i < sizeof expand_cases / sizeof expand_cases[0];
	     i++)
		run_case(&expand_cases[i]);
	for (size_t i = 0; i < sizeof command_cases / sizeof command_cases[0];
	     i++)
		run_case(&command_cases[i]);
	test_queries();
	test_parse_errors();
	test_nul();
	test_reuse();
	return tap_done();
}
