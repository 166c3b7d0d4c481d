#!/usr/bin/env bats
# compat.bats - command lines written for GNU parallel run unchanged, or are
# refused clearly (issue 11).  Each expected text is what GNU parallel
# 20221122 prints for the same command line; GNU parallel is not needed.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	setup_scratch
}

# ---- {#} and {%} are placeholders: nothing is appended ------------------

@test "{#} counts as a placeholder: echo {#} ::: A B C prints 1 2 3" {
	run cpmap -k echo {#} ::: A B C
	assert_success
	assert_output $'1\n2\n3'
}

@test "{%} counts as a placeholder: echo slot{%} ::: A prints slot1" {
	run cpmap -j1 echo slot{%} ::: A
	assert_success
	assert_output 'slot1'
}

@test "rm -f lock{#} ::: keep removes lock1 and never keep" {
	cd "$SCRATCH"
	touch keep lock1
	run cpmap rm -f lock{#} ::: keep
	assert_success
	[ -e keep ]
	[ ! -e lock1 ]
}

@test "shell mode: 'rm -f lock{#}' ::: keep never removes keep either" {
	cd "$SCRATCH"
	touch keep lock1
	run cpmap 'rm -f lock{#}' ::: keep
	assert_success
	[ -e keep ]
	[ ! -e lock1 ]
}

# ---- -n N with {1} ... {N} ----------------------------------------------

@test "-n 2 cp {1} {2} runs cp a b" {
	cd "$SCRATCH"
	echo content > a
	run bash -c "printf 'a\nb\n' | \"\$CPMAP\" -n 2 cp {1} {2}"
	assert_success
	assert_equal "$(cat b)" content
}

@test "-n 2: {k} is the k-th input of the chunk, empty past a short last chunk" {
	run bash -c "printf 'a\nb\nc\n' | \"\$CPMAP\" -k -n 2 echo '[{1}]' '[{2}]'"
	assert_success
	assert_output $'[a] [b]\n[c] []'
}

@test "-n 2: {-1} is the chunk's last input" {
	run cpmap -k -n 2 echo '[{-1}]' ::: a b c
	assert_success
	assert_output $'[b]\n[c]'
}

@test "-n 1 (the default): {1} is the input, {2} is empty" {
	run cpmap -k -n 1 printf '[%s][%s]\n' {1} {2} ::: a b c
	assert_success
	assert_output $'[a][]\n[b][]\n[c][]'
}

@test "-n 1 with --colsep: {1} and {2} are still columns" {
	run bash -c "echo 'a,b' | \"\$CPMAP\" -n 1 --colsep , echo {1} {2}"
	assert_success
	assert_output 'a b'
}

@test "-n 2 with --colsep: {N} counts the columns of every input in turn" {
	run bash -c "printf 'a,b\nc,d\n' | \"\$CPMAP\" -n 2 --colsep , echo '[{1}]' '[{2}]' '[{3}]' '[{-1}]'"
	assert_success
	assert_output '[a] [b] [c] [d]'
}

@test "-n 2 with groups: {1} {2} are the groups of the chunk's first input" {
	run cpmap -k -n 2 echo '[{1}]' '[{2}]' ::: a b ::: c
	assert_success
	assert_output '[a] [c]'
}

@test "-n 2: {} keeps the -X context replace" {
	run cpmap -k -n 2 echo x{}y ::: a b c
	assert_success
	assert_output $'xay xby\nxcy'
}

# ---- {} with several ::: groups ------------------------------------------

@test "printf '[%s]\\n' {} ::: a ::: 'c d' prints [a] and [c d]" {
	run cpmap printf '[%s]\n' {} ::: a ::: 'c d'
	assert_success
	assert_output $'[a]\n[c d]'
}

@test "with no placeholder, each group's value is appended as its own argument (as before)" {
	run cpmap printf '[%s]\n' ::: a ::: 'c d'
	assert_success
	assert_output $'[a]\n[c d]'
}

@test "x{}y with several groups: text before goes to the first, after to the last" {
	run cpmap -k printf '[%s]\n' x{}y ::: a ::: b
	assert_success
	assert_output $'[xa]\n[by]'
}

@test "{} with several groups in shell mode: each value one quoted word" {
	run cpmap "printf '[%s]\n' {}" ::: 'a b' ::: "c'd"
	assert_success
	assert_output $'[a b]\n[c\'d]'
}

@test "{} with --colsep: each column one argument" {
	run bash -c "echo 'a b,c' | \"\$CPMAP\" --colsep , printf '[%s]\n' {}"
	assert_success
	assert_output $'[a b]\n[c]'
}

# ---- {-N} and {= perl =} --------------------------------------------------

@test "{-1} {-2} count from the last group" {
	run cpmap echo {-1} {-2} ::: a ::: b ::: c
	assert_success
	assert_output 'c b'
}

@test "{-1} is the last --colsep column" {
	run bash -c "echo 'a,b,c' | \"\$CPMAP\" --colsep , echo {-1}"
	assert_success
	assert_output 'c'
}

@test "{= perl =} is a usage error naming the placeholder, and runs nothing" {
	run --separate-stderr cpmap echo '{=1 $_=uc($_) =}' ::: a
	assert_equal "$status" 255
	assert_equal "$output" ''
	assert_equal "$stderr" 'cpmap: {=1 $_=uc($_) =}: perl expression placeholders {= ... =} are not supported (use a shell command or a script) (see cpmap --help)'
}

# ---- -C escapes -------------------------------------------------------------

@test "-C '\\t' splits on a tab" {
	run bash -c "printf 'a b\tc\n' | \"\$CPMAP\" -C '\\t' printf '[%s]\n' {2} {1}"
	assert_success
	assert_output $'[c]\n[a b]'
}

@test "-C '\\x2c' splits on a comma, --colsep='\\\\' on a backslash" {
	run bash -c "echo 'a,b' | \"\$CPMAP\" -C '\\x2c' echo {2}"
	assert_success
	assert_output 'b'
	run bash -c "echo 'a\\b' | \"\$CPMAP\" --colsep='\\\\' echo {2}"
	assert_success
	assert_output 'b'
}

@test "-C '\\n' splits a NUL-separated record on its newlines" {
	run bash -c "printf 'a\nb\0' | \"\$CPMAP\" -0 -C '\\n' echo {2} {1}"
	assert_success
	assert_output 'b a'
}

# ---- commands from the input ---------------------------------------------

@test "with no command, each line of stdin is a shell command (parallel < jobs)" {
	run bash -c "printf 'echo a\necho b | tr b c\n' | \"\$CPMAP\" -k"
	assert_success
	assert_output $'a\nc'
}

@test "with no command, each ::: value is a shell command" {
	run cpmap -k ::: 'echo a' 'echo b'
	assert_success
	assert_output $'a\nb'
}

@test "with no command, several groups make one command line (GNU)" {
	run cpmap -k ::: echo ::: a b
	assert_success
	assert_output $'a\nb'
}

@test "with no command, --dry-run prints the command lines as they are" {
	run cpmap -k --dry-run ::: 'echo "a b" > f' 'true'
	assert_success
	assert_output $'echo "a b" > f\ntrue'
}

@test "with no command, a failing command line counts as a failed task" {
	run --separate-stderr cpmap -k ::: 'exit 3' 'echo ok'
	assert_equal "$status" 1
	assert_output 'ok'
}

@test "with no command and --stdin, a shell reads each input from its stdin" {
	run cpmap -k --stdin ::: 'echo a' 'echo b; echo c'
	assert_success
	assert_output $'a\nb\nc'
}

# ---- -j +N, -N, -P, --max-procs -------------------------------------------

# cpus: the online CPUs, as cpmap counts them.
cpus() { getconf _NPROCESSORS_ONLN; }

# top_slot ARGS...: the highest {%} of a run with ARGS of CPUs + 3 tasks
# that each take 0.2 s, so that every slot gets one.
top_slot() {
	cpmap "$@" sh -c 'sleep 0.2; echo $0' {%} ::: $(seq $(($(cpus) + 3))) |
		sort -n | tail -n 1
}

@test "-j+0 is the CPU count, -j+2 two more, -j-1 one fewer (at least 1)" {
	local n
	n=$(cpus)
	assert_equal "-j+0: $(top_slot -j+0)" "-j+0: $n"
	assert_equal "-j +2: $(top_slot -j +2)" "-j +2: $((n + 2))"
	assert_equal "-j -1: $(top_slot -j -1)" "-j -1: $((n > 1 ? n - 1 : 1))"
	assert_equal "-j-1000: $(top_slot -j-1000)" "-j-1000: 1"
}

@test "-P N and --max-procs N are -j N" {
	assert_equal "-P 3: $(top_slot -P 3)" "-P 3: 3"
	assert_equal "--max-procs 2: $(top_slot --max-procs 2)" "--max-procs 2: 2"
	assert_equal "--max-procs=2: $(top_slot --max-procs=2)" "--max-procs=2: 2"
}

@test "-j 0 says nothing on stderr, and how many slots with -v" {
	run --separate-stderr cpmap -j 0 true ::: a
	assert_success
	assert_equal "$stderr" ''
	run --separate-stderr cpmap -j 0 -v true ::: a
	assert_success
	[[ ${stderr%%$'\n'*} =~ ^cpmap:\ -j\ 0:\ running\ up\ to\ [0-9]+\ tasks\ at\ once$ ]]
}

# ---- --header : ---------------------------------------------------------------

@test "--header : echo {f1} {f2} ::: f1 A B ::: f2 C D (GNU's tutorial)" {
	run cpmap -k --header : echo {f1} {f2} ::: f1 A B ::: f2 C D
	assert_success
	assert_output $'A C\nA D\nB C\nB D'
}

@test "--header : on a tab-separated file names its columns (tab is the default -C)" {
	printf 'name\tage\nann\t3\nbob\t4\n' >"$SCRATCH/people.tsv"
	run cpmap -k --header : echo {age} {name} :::: "$SCRATCH/people.tsv"
	assert_success
	assert_output $'3 ann\n4 bob'
}

@test "--header '.*\\n', --header 1 and --header=: take the argument; --header alone still works" {
	run cpmap -k --header '.*\n' echo {f1} ::: f1 A
	assert_output 'A'
	run cpmap -k --header 1 echo {f1} ::: f1 A
	assert_output 'A'
	run cpmap -k --header=: echo {f1} ::: f1 A
	assert_output 'A'
	run cpmap -k --header echo {f1} ::: f1 A
	assert_output 'A'
}

@test "--header 0 is refused" {
	run --separate-stderr cpmap --header 0 echo ::: a
	assert_equal "$status" 255
	assert_equal "$stderr" 'cpmap: --header 0 (file names as column names) is not supported (see cpmap --help)'
}

# ---- :::+ and ::::+ -------------------------------------------------------

@test ":::+ links a group to the one before it (GNU)" {
	run cpmap -k echo ::: a b ::: c d :::+ e f g
	assert_success
	assert_output $'a c e\na d f\nb c e\nb d f'
}

@test ":::+ stops at the shorter of the two groups (GNU)" {
	run cpmap -k echo ::: a b c :::+ 1 2
	assert_success
	assert_output $'a 1\nb 2'
}

@test "::::+ links a file to the group before it" {
	printf 'x\ny\n' >"$SCRATCH/f"
	run cpmap -k echo ::: a b ::::+ "$SCRATCH/f"
	assert_success
	assert_output $'a x\nb y'
}

@test ":::+ with a group after it: the linked pair is one wheel of the product" {
	run cpmap -k echo ::: a b :::+ 1 2 ::: X Y
	assert_success
	assert_output $'a 1 X\na 1 Y\nb 2 X\nb 2 Y'
}

@test "a mistyped separator is refused, never an argument" {
	local word
	for word in ::::: ':::-' '::::++' ':::x'; do
		run --separate-stderr cpmap echo ::: a "$word" b
		assert_equal "$status" 255
		assert_equal "$stderr" "cpmap: '$word' is not an input separator (:::, :::+, :::: or ::::+) (see cpmap --help)"
		assert_equal "$output" ''
	done
	run --separate-stderr cpmap echo :::+ a
	assert_equal "$status" 255
	assert_equal "$stderr" 'cpmap: :::+ needs a group before it to link to (see cpmap --help)'
}

# ---- --joblog +FILE -------------------------------------------------------------

@test "--joblog +FILE appends to FILE (one header), and makes no file named +FILE" {
	cd "$SCRATCH"
	run cpmap -j1 --joblog +log true ::: a
	assert_success
	run cpmap -j1 --joblog +log true ::: b c
	assert_success
	[ ! -e +log ]
	assert_equal "$(cut -f1,9 log)" $'Seq\tCommand\n1\ttrue a\n1\ttrue b\n2\ttrue c'
}

# ---- accepted spellings ------------------------------------------------------

@test "--lb, --dryrun, --max-args, -N: GNU's spellings" {
	run cpmap -k --lb echo ::: a b
	assert_output $'a\nb'
	run cpmap -k --dryrun echo ::: 'a b'
	assert_output "echo 'a b'"
	run cpmap -k --max-args 2 echo ::: a b c
	assert_output $'a b\nc'
	run cpmap -k -N 2 echo {2} {1} ::: a b c d
	assert_output $'b a\nd c'
}

@test "-X and -m put as many inputs in one task as fit" {
	run cpmap -X echo ::: a b c
	assert_success
	assert_output 'a b c'
	run cpmap -m echo x{}y ::: a b
	assert_output 'xay xby'
	# 128 KiB of inputs at most per task.
	run bash -c 'seq 100000 | "$CPMAP" -X -k sh -c "echo \$#" sh | paste -sd" "'
	assert_success
	local total=0 n
	for n in $output; do total=$((total + n)); done
	assert_equal "$total" 100000
	[ "$(wc -w <<<"$output")" -gt 1 ]
}

@test "-v, --verbose and -t print each command on stderr as it starts (xargs -t)" {
	local opt
	for opt in -v --verbose -t; do
		run --separate-stderr cpmap -j1 -k "$opt" echo ::: a 'b c'
		assert_success
		assert_equal "$output" $'a\nb c'
		assert_equal "$stderr" $'echo a\necho \'b c\''
	done
}

@test "-r, -q, --quote, --will-cite, --citation, --no-run-if-empty change nothing" {
	local opt
	for opt in -r -q --quote --will-cite --citation --no-run-if-empty; do
		run --separate-stderr cpmap -k "$opt" printf '[%s]\n' ::: 'a b' '$x'
		assert_success
		assert_equal "$output" $'[a b]\n[$x]'
		assert_equal "$stderr" ''
	done
	run bash -c ': | "$CPMAP" -r echo never'
	assert_success
	assert_output ''
}

@test "--tagstring STR tags with STR, placeholders expanded" {
	run cpmap -k --tagstring '{#}:{/}' echo out ::: d/a d/b
	assert_success
	assert_output $'1:a\tout d/a\n2:b\tout d/b'
}

@test "--tagstring with {%} is refused" {
	run --separate-stderr cpmap --tagstring '{%}' echo ::: a
	assert_equal "$status" 255
	assert_equal "$stderr" 'cpmap: --tagstring: {%} is not known when the tag is made (use {#}) (see cpmap --help)'
}

@test "--delay T: at least T between task starts" {
	# The start times are cpmap's own (the joblog's), not the tasks': a
	# task's clock reading comes after exec and the scheduler's whims.
	run cpmap -j3 --delay 0.3 --joblog "$SCRATCH/jl" true ::: 1 2 3
	assert_success
	run awk -F '\t' 'NR > 1 { s[$1] = $3 }
		END { printf "%d %d\n", (s[2] - s[1]) * 1000, (s[3] - s[2]) * 1000 }' \
		"$SCRATCH/jl"
	local ab bc
	read -r ab bc <<<"$output"
	[ "$ab" -ge 299 ] && [ "$bc" -ge 299 ] ||
		{ echo "gaps between starts (ms): $output" >&2; false; }
}

@test "--timeout P%: P% of the median runtime of the tasks that succeeded" {
	# Three tasks of 0.2 s make the median; the slow one is stopped at
	# 500% of it, about 1 s.
	S=$SCRATCH
	task 'case $1 in slow) exec sleep 30 ;; *) exec sleep 0.2 ;; esac'
	run --separate-stderr timeout 20 "$CPMAP" -j1 -k --timeout 500% "$S/task" ::: a b c slow
	assert_equal "$status" 1
	[[ $stderr =~ ^cpmap:\ task\ 4\ \(input\ slow\):\ timed\ out\ after\ [0-9.]+s$ ]] ||
		{ echo "stderr: $stderr" >&2; false; }
}

@test "--timeout P% before any task succeeded stops nothing" {
	run --separate-stderr cpmap -j1 --timeout 1% sh -c 'sleep 0.2' ::: a
	assert_success
	assert_equal "$stderr" ''
}

@test "--timeout: a bad percentage is a usage error" {
	run --separate-stderr cpmap --timeout 0% true ::: a
	assert_equal "$status" 255
	assert_equal "$stderr" "cpmap: --timeout: '0%' is not a positive percentage (see cpmap --help)"
}

# ---- PARALLEL_SEQ and PARALLEL_JOBSLOT -----------------------------------------

@test "tasks get PARALLEL_SEQ and PARALLEL_JOBSLOT, as CPMAP_SEQ and CPMAP_SLOT" {
	run env PARALLEL_SEQ=x PARALLEL_JOBSLOT=y "$CPMAP" -j1 -k \
		sh -c 'echo $PARALLEL_SEQ $PARALLEL_JOBSLOT $CPMAP_SEQ $CPMAP_SLOT' ::: a b
	assert_success
	assert_output $'1 1 1 1\n2 1 2 1'
}

# ---- exported bash functions ------------------------------------------------

@test "an exported bash function runs: f ::: 1 prints f:1" {
	run bash -c 'f() { echo "f:$1"; }; export -f f; "$CPMAP" f ::: 1'
	assert_success
	assert_output 'f:1'
}

@test "an exported function gets each value as one literal argument" {
	run bash -c 'f() { printf "[%s]" "$@"; echo; }; export -f f
		"$CPMAP" -k f x{} ::: "a b" "\$(echo no)" "it'"'"'s" "*"'
	assert_success
	assert_output $'[xa b]\n[x$(echo no)]\n[xit\'s]\n[x*]'
}

@test "an exported function: --dry-run and the joblog show the function's command" {
	run bash -c 'f() { :; }; export -f f; "$CPMAP" --dry-run f ::: "a b"'
	assert_output "f 'a b'"
}

@test "shell mode uses \$CPMAP_SHELL, else /bin/sh" {
	run env CPMAP_SHELL=bash "$CPMAP" 'echo ${BASH_VERSION:+bash} {}' ::: x
	assert_output 'bash x'
	run env -u CPMAP_SHELL "$CPMAP" 'echo ${BASH_VERSION:-sh} {}' ::: x
	if [ "$(readlink -f /bin/sh)" = "$(readlink -f "$(command -v bash)")" ]; then
		skip "/bin/sh is bash here"
	fi
	assert_output 'sh x'
}

# ---- --bar and --progress know the total ------------------------------------------

@test "--progress knows the total of ::: groups from the first line" {
	run --separate-stderr cpmap -j1 --progress sh -c 'sleep 0.6' ::: a b c
	assert_success
	[[ ${stderr%%$'\n'*} =~ ^[0-9]+%\ [0-9]/3\ done,\ 0\ failed,\ 1\ running,\ [0-9.]+/s,\ ETA\ [0-9]+:[0-9]{2}:[0-9]{2}$ ]] ||
		{ echo "stderr: $stderr" >&2; false; }
}

@test "--progress counts a regular file's lines up front (empty ones skipped, -n chunks)" {
	printf 'a\n\nb\nc\nd\n' >"$SCRATCH/in"
	run --separate-stderr cpmap -j1 -n 2 --progress -a "$SCRATCH/in" sh -c 'sleep 0.6'
	assert_success
	[[ ${stderr%%$'\n'*} =~ ^[0-9]+%\ [0-9]/2\ done ]] || { echo "stderr: $stderr" >&2; false; }
	run --separate-stderr bash -c '"$CPMAP" -j1 --bar sh -c "sleep 0.6" <"$0"' "$SCRATCH/in"
	[[ ${stderr%%$'\n'*} =~ ^\[[#.]{30}\]\ [0-9]+%\ [0-9]/4\ done ]] || { echo "stderr: $stderr" >&2; false; }
}

@test "--progress on a pipe: done, running and rate until the input ends" {
	run --separate-stderr bash -c 'printf "a\nb\nc\n" | "$CPMAP" -j1 --progress sh -c "sleep 0.6"'
	assert_success
	[[ ${stderr%%$'\n'*} =~ ^[0-9]\ done,\ 0\ failed,\ 1\ running,\ [0-9.]+/s$ ]] ||
		{ echo "stderr: $stderr" >&2; false; }
	[[ $(tail -n 1 <<<"$stderr") =~ ^100%\ 3/3\ done ]]
}

@test "--progress on a non-terminal writes at most a line a second" {
	local start end
	start=$(date +%s%N)
	run --separate-stderr cpmap -j1 --progress sh -c 'sleep 0.1' ::: $(seq 15)
	end=$(date +%s%N)
	assert_success
	# 15 changes over 1.5 s or more (longer on a busy machine): at most
	# one line a second of the run as measured, the first and the last.
	[ "$(wc -l <<<"$stderr")" -le $(((end - start) / 1000000000 + 2)) ] ||
		{ echo "stderr: $stderr" >&2; false; }
}

@test "--bar on a terminal redraws in place at most 10 times a second" {
	command -v script >/dev/null || skip "no script(1)"
	local draws start end
	start=$(date +%s%N)
	script -qec "\"$CPMAP\" -j1 --bar sh -c 'sleep 0.05' ::: \$(seq 40) >/dev/null" \
		"$SCRATCH/typescript" >/dev/null 2>&1 </dev/null
	end=$(date +%s%N)
	draws=$(grep -o $'\r\e\\[K' "$SCRATCH/typescript" | wc -l)
	# 40 changes, drawn at most 10 times a second (and once at the end).
	[ "$draws" -ge 2 ] && [ "$draws" -le $(((end - start) / 100000000 + 2)) ] || { echo "draws: $draws in $(((end - start) / 1000000)) ms" >&2; false; }
}

# ---- quiet plain failures -----------------------------------------------------

@test "a task that merely exits non-zero writes no cpmap line (as GNU parallel, xargs)" {
	run --separate-stderr cpmap -k sh -c 'echo $0; exit 3' ::: a b
	assert_equal "$status" 2
	assert_equal "$output" $'a\nb'
	assert_equal "$stderr" ''
}

@test "grep -l that finds nothing: the count is in the exit status, the joblog and --json only" {
	printf 'x\n' >"$SCRATCH/f"
	run --separate-stderr cpmap --joblog "$SCRATCH/log" grep -l nothing ::: "$SCRATCH/f"
	assert_equal "$status" 1
	assert_equal "$stderr" ''
	assert_equal "$(tail -n 1 "$SCRATCH/log" | cut -f7)" 1
	run --separate-stderr cpmap --json grep -l nothing ::: "$SCRATCH/f"
	assert_equal "$stderr" ''
	[[ $output == *'"status":"failed","exit":1,'* ]]
}

@test "spawn errors, signals and timeouts are still told, one line each" {
	run --separate-stderr cpmap -k ./no-such-command ::: a
	assert_equal "$stderr" 'cpmap: task 1 (input a): cannot run ./no-such-command: No such file or directory'
	run --separate-stderr cpmap sh -c 'kill -KILL $$' ::: k
	assert_equal "$stderr" 'cpmap: task 1 (input k): killed by SIGKILL'
	run --separate-stderr cpmap --timeout 100ms sleep ::: 5
	assert_equal "$stderr" 'cpmap: task 1 (input 5): timed out after 0.1s'
}

@test "a retry of a plain failure is told, and the last failure is not" {
	run --separate-stderr cpmap --retries 1 sh -c 'exit 2' ::: x
	assert_equal "$status" 1
	assert_equal "$stderr" 'cpmap: task 1 (input x): exit status 2; retrying (attempt 2 of 2)'
}

@test "--halt tells which task stopped the run, in one line" {
	run --separate-stderr cpmap -j1 --halt now,fail=1 sh -c 'exit $0' ::: 0 4 0
	assert_equal "$status" 4
	assert_equal "$stderr" 'cpmap: --halt now: task 2 (input 4): exit status 4; stopping the running tasks'
}

# ---- --halt P% ---------------------------------------------------------------

# halt_percent POLICY WANT INPUTS...: exit statuses are GNU parallel 20221122's.
halt_percent() {
	local policy=$1 want=$2
	shift 2
	run --separate-stderr cpmap -j1 --halt "$policy" sh -c 'exit $0' ::: "$@"
	assert_equal "--halt $policy $*: $status" "--halt $policy $*: $want"
}

@test "--halt fail=P% counts all the tasks when the total is known (GNU)" {
	# 10% of 10 tasks is one: the failing task's own status.
	halt_percent now,fail=10% 3 3 0 0 0 0 0 0 0 0 0
	# 20% of 10 is two: the failures' share of all the tasks, 20.
	halt_percent soon,fail=20% 20 0 3 0 5 0 0 0 0 0 0
	# done=50% of 4: after two, 1 failed of 4 in all: 25.
	halt_percent soon,done=50% 25 0 3 0 5
	halt_percent now,done=1 4 4 0
}

@test "--halt fail=P% of a file's lines counted up front" {
	printf '3\n0\n0\n0\n0\n0\n0\n0\n0\n0\n' >"$SCRATCH/codes"
	run --separate-stderr cpmap -j1 --halt now,fail=10% -a "$SCRATCH/codes" sh -c 'exit $0'
	assert_equal "$status" 3
}
