#!/usr/bin/env bats
# resume.bats - --joblog, --resume and --resume-failed: the joblog's format
# (GNU parallel's, so either program resumes from the other's log), when its
# lines are written, how damaged logs are read, and the promise that an
# interrupted run resumed with --resume gives exactly one result per input.
#
# Tasks block on FIFO gates (fifo-wait) and the test learns they started
# from files they append to (wait_lines): nothing depends on timing.

load helpers
bats_require_minimum_version 1.5.0

HEADER='Seq	Host	Starttime	JobRuntime	Send	Receive	Exitval	Signal	Command'

setup() {
	setup_scratch
	S=$SCRATCH
	export S
	mkfifo "$S/gate"
}

teardown() {
	kill_test_processes
}

# seqs LOG: the Seq column of a joblog, header left out.
seqs() {
	tail -n +2 "$1" | cut -f1
}

# well_formed LOG: GNU parallel's header, then lines of exactly 9 fields
# with a numeric Seq, and a newline at the end.
well_formed() {
	same "$1: header" "$(head -n 1 "$1")" "$HEADER"
	[ "$(tail -c 1 "$1" | od -An -tx1 | tr -d ' ')" = 0a ] ||
		{ echo "$1 does not end in a newline" >&2; return 1; }
	awk -F'\t' 'NR > 1 && (NF != 9 || $1 !~ /^[0-9]+$/) {
		print FILENAME ": line " NR " is malformed: " $0; bad = 1 }
		END { exit bad }' "$1" >&2
}

# ---- the joblog's format -------------------------------------------------

@test "--joblog writes GNU parallel's header and 9 tab-separated fields per task" {
	task 'printf %s "$1"
case $1 in fail) exit 3 ;; kill) kill -KILL $$ ;; esac
exit 0'
	local before after
	before=$(date +%s)
	run timeout 20 "$CPMAP" -k -j1 --joblog "$S/log" "$S/task" \
		::: ok 'b c' "it's" fail kill
	after=$(date +%s)
	same status "$status" 2
	well_formed "$S/log"
	same header "$(head -n 1 "$S/log")" "$HEADER"
	# Seq, Host, Send, Receive (stdout bytes), Exitval, Signal, Command.
	same "fixed fields" "$(tail -n +2 "$S/log" | cut -f1,2,5-9)" \
		"1	:	0	2	0	0	$S/task ok
2	:	0	3	0	0	$S/task 'b c'
3	:	0	4	0	0	$S/task 'it'\\''s'
4	:	0	4	3	0	$S/task fail
5	:	0	4	-1	9	$S/task kill"
	# Starttime: seconds since the epoch, 3 decimals, during this run;
	# JobRuntime: "%10.3f".
	local seq host start runtime rest
	while IFS=$'\t' read -r seq host start runtime rest; do
		[[ $start =~ ^[0-9]+\.[0-9]{3}$ ]] ||
			{ echo "Starttime '$start'" >&2; false; }
		((${start%.*} >= before && ${start%.*} <= after))
		[[ $runtime =~ ^\ *[0-9]+\.[0-9]{3}$ && ${#runtime} -eq 10 ]] ||
			{ echo "JobRuntime '$runtime'" >&2; false; }
	done < <(tail -n +2 "$S/log")
}

@test "--joblog: a command that cannot start is logged with Exitval 127" {
	run timeout 20 "$CPMAP" --joblog "$S/log" "$S/nosuch" ::: a
	same status "$status" 1
	same line "$(tail -n +2 "$S/log" | cut -f1,6-9)" "1	0	127	0	$S/nosuch a"
}

@test "--joblog writes a newline in the command as \\n" {
	run timeout 20 "$CPMAP" --joblog "$S/log" echo ::: 'x
y'
	same status "$status" 0
	well_formed "$S/log"
	same command "$(tail -n +2 "$S/log" | cut -f9)" "echo 'x\\ny'"
}

@test "--joblog quotes commands so GNU parallel's and cpmap's Seqs line up" {
	command -v parallel >/dev/null || skip "GNU parallel is not installed"
	local inputs=(a 'b c' "it's" '$HOME' '*')
	timeout 20 "$CPMAP" -k -j1 --joblog "$S/cpmap.log" echo ::: "${inputs[@]}" >"$S/cpmap.out"
	timeout 20 parallel --will-cite -k -j1 --joblog "$S/parallel.log" echo ::: "${inputs[@]}" >"$S/parallel.out"
	same output "$(cat "$S/cpmap.out")" "$(cat "$S/parallel.out")"
	same "Seq, Host, Send, Receive, Exitval, Signal" \
		"$(tail -n +2 "$S/cpmap.log" | cut -f1,2,5-8)" \
		"$(tail -n +2 "$S/parallel.log" | cut -f1,2,5-8)"
	# Both quote for sh: the commands mean the same thing.
	local c p
	while IFS=$'\t' read -r c p; do
		same "command" "$(eval "argv-print $c")" "$(eval "argv-print $p")"
	done < <(paste <(tail -n +2 "$S/cpmap.log" | cut -f9) \
		<(tail -n +2 "$S/parallel.log" | cut -f9))
}

@test "--joblog is truncated at the start of a run without --resume" {
	timeout 20 "$CPMAP" --joblog "$S/log" echo ::: a b c >/dev/null
	run timeout 20 "$CPMAP" --joblog "$S/log" echo ::: d
	same status "$status" 0
	same log "$(cut -f1,9 "$S/log")" "Seq	Command
1	echo d"
}

# ---- when joblog lines are written --------------------------------------

@test "with -k a task's joblog line waits until its output is written" {
	# Task 1 blocks; task 2 is done; task 3 starting proves cpmap has
	# dealt with task 2's end.  Task 2 is not written yet: no line for it.
	task 'case $1 in
1) exec fifo-wait -s "$S/started" "$S/gate" 0 one ;;
3) echo "$$" >>"$S/started" ;;
esac
echo "$1"'
	seq 3 >"$S/in"
	bg_cpmap -k -j2 --joblog "$S/log" "$S/task"
	wait_lines "$S/started" 2
	empty stdout "$S/out"
	same "log while task 1 runs" "$(cat "$S/log")" "$HEADER"
	release "$S/gate"
	finish
	same status "$status" 0
	same out "$(cat "$S/out")" "one
2
3"
	well_formed "$S/log"
	same "log order" "$(seqs "$S/log")" "$(seq 3)"
}

@test "without -k a task's joblog line follows its output at once" {
	task 'case $1 in 1) exec fifo-wait -s "$S/started" "$S/gate" 0 one ;; esac
echo "$1"'
	seq 2 >"$S/in"
	bg_cpmap -j2 --joblog "$S/log" "$S/task"
	wait_lines "$S/out" 1
	wait_lines "$S/log" 2
	same "out while task 1 runs" "$(cat "$S/out")" 2
	same "log while task 1 runs" "$(seqs "$S/log")" 2
	release "$S/gate"
	finish
	same status "$status" 0
	same "log order" "$(seqs "$S/log")" "2
1"
}

@test "--joblog /dev/stdout on a pipe puts each line after its task's output, as GNU parallel" {
	run bash -c '"$CPMAP" -k -j2 --joblog /dev/stdout echo ::: a b | cat'
	same status "$status" 0
	same "output and log" "$(cut -f1,9 <<<"$output")" "Seq	Command
a
1	echo a
b
2	echo b"
}

# ---- --resume, --resume-failed, and GNU parallel ---------------------------

# A task that logs its input to $S/ran and prints it; "fN" inputs exit N
# unless FIXED is set in the environment (the command stays the same).
logging_task() {
	task 'echo "$1" >>"$S/ran"
echo "$1"
case $1 in f*) [ -n "${FIXED:-}" ] || exit "${1#f}" ;; esac
exit 0'
}

@test "--resume skips the tasks in the joblog and appends to it" {
	logging_task
	timeout 20 "$CPMAP" -k --joblog "$S/log" "$S/task" ::: a b c >/dev/null
	rm -f "$S/ran"
	run timeout 20 "$CPMAP" -k --joblog "$S/log" --resume "$S/task" ::: a b c d e
	same status "$status" 0
	same output "$output" "d
e"
	same ran "$(sort "$S/ran")" "d
e"
	well_formed "$S/log"
	same seqs "$(seqs "$S/log")" "$(seq 5)"
	# All done: a further --resume runs nothing.
	rm -f "$S/ran"
	run timeout 20 "$CPMAP" -k --joblog "$S/log" --resume "$S/task" ::: a b c d e
	same status "$status" 0
	same output "$output" ""
	[ ! -e "$S/ran" ]
	same seqs "$(seqs "$S/log")" "$(seq 5)"
}

@test "--resume with a missing joblog runs everything and creates it" {
	logging_task
	run timeout 20 "$CPMAP" -k --joblog "$S/log" --resume "$S/task" ::: a b
	same status "$status" 0
	same output "$output" "a
b"
	well_formed "$S/log"
	same seqs "$(seqs "$S/log")" "1
2"
}

@test "--resume skips failed tasks too; --resume-failed runs them again" {
	logging_task
	run timeout 20 "$CPMAP" -k --joblog "$S/log" "$S/task" ::: a f3 b f5
	same status "$status" 2
	rm -f "$S/ran"
	run timeout 20 "$CPMAP" -k --joblog "$S/log" --resume "$S/task" ::: a f3 b f5
	same "--resume: status" "$status" 0
	[ ! -e "$S/ran" ]
	export FIXED=1
	run --separate-stderr timeout 20 "$CPMAP" -k --joblog "$S/log" \
		--resume-failed "$S/task" ::: a f3 b f5 c
	same "--resume-failed: status" "$status" 0
	same "--resume-failed: output" "$output" "f3
f5
c"
	# The later success lines count: nothing is left to do.
	rm -f "$S/ran"
	run timeout 20 "$CPMAP" -k --joblog "$S/log" --resume-failed "$S/task" \
		::: a f3 b f5 c
	same "second --resume-failed: status" "$status" 0
	[ ! -e "$S/ran" ]
	well_formed "$S/log"
}

@test "--resume-failed runs again the tasks that were killed or timed out" {
	task 'echo "$1" >>"$S/ran"
[ -n "${FIXED:-}" ] && exit 0
case $1 in kill) kill -KILL $$ ;; slow) exec fifo-wait "$S/gate" ;; esac'
	run timeout 20 "$CPMAP" -k --timeout 1s --joblog "$S/log" "$S/task" \
		::: ok kill slow
	same status "$status" 2
	same "Exitval and Signal" "$(tail -n +2 "$S/log" | cut -f1,7,8)" "1	0	0
2	-1	9
3	-1	15"
	rm -f "$S/ran"
	FIXED=1 run timeout 20 "$CPMAP" -k --joblog "$S/log" --resume-failed \
		"$S/task" ::: ok kill slow
	same status "$status" 0
	same ran "$(sort "$S/ran")" "kill
slow"
}

@test "GNU parallel --resume runs only what cpmap's joblog does not show done" {
	command -v parallel >/dev/null || skip "GNU parallel is not installed"
	logging_task
	timeout 20 "$CPMAP" -k --joblog "$S/log" "$S/task" ::: a b c >/dev/null
	rm -f "$S/ran"
	run timeout 20 parallel --will-cite -k --joblog "$S/log" --resume \
		"$S/task" ::: a b c d e
	same status "$status" 0
	same output "$output" "d
e"
	same seqs "$(seqs "$S/log")" "$(seq 5)"
}

@test "GNU parallel --resume-failed reruns the tasks cpmap logged as failed" {
	command -v parallel >/dev/null || skip "GNU parallel is not installed"
	logging_task
	timeout 20 "$CPMAP" -k --joblog "$S/log" "$S/task" ::: a f3 b >/dev/null || true
	rm -f "$S/ran"
	FIXED=1 run timeout 20 parallel --will-cite -k --joblog "$S/log" \
		--resume-failed "$S/task" ::: a f3 b c
	same status "$status" 0
	same ran "$(sort "$S/ran")" "c
f3"
}

@test "cpmap --resume runs only what GNU parallel's joblog does not show done" {
	command -v parallel >/dev/null || skip "GNU parallel is not installed"
	logging_task
	timeout 20 parallel --will-cite -k --joblog "$S/log" "$S/task" ::: a f3 b >/dev/null || true
	rm -f "$S/ran"
	run --separate-stderr timeout 20 "$CPMAP" -k --joblog "$S/log" --resume \
		"$S/task" ::: a f3 b c d
	same status "$status" 0
	same stderr "$stderr" ""
	same output "$output" "c
d"
	rm -f "$S/ran"
	FIXED=1 run timeout 20 "$CPMAP" -k --joblog "$S/log" --resume-failed \
		"$S/task" ::: a f3 b c d
	same status "$status" 0
	same ran "$(cat "$S/ran")" f3
	well_formed "$S/log"
}

@test "--dry-run does not mark tasks done for a later --resume" {
	logging_task
	run timeout 20 "$CPMAP" -k --dry-run --joblog "$S/log" "$S/task" ::: a b
	same "dry run: status" "$status" 0
	same "dry run: output" "$output" "$S/task a
$S/task b"
	[ ! -e "$S/ran" ]
	# Nothing ran, so --resume has everything still to do.
	run timeout 20 "$CPMAP" -k --joblog "$S/log" --resume "$S/task" ::: a b
	same status "$status" 0
	same output "$output" "a
b"
}

# ---- damaged joblogs ------------------------------------------------------

# five_done: a joblog of tasks a..e, all done.
five_done() {
	logging_task
	timeout 20 "$CPMAP" -k -j1 --joblog "$S/full" "$S/task" ::: a b c d e >/dev/null
	rm -f "$S/ran"
}

@test "a joblog whose last line is cut short: a warning, and that task runs again" {
	five_done
	head -c -5 "$S/full" >"$S/log"
	run --separate-stderr timeout 20 "$CPMAP" -k --joblog "$S/log" --resume \
		"$S/task" ::: a b c d e
	same status "$status" 0
	same stderr "$stderr" "cpmap: --joblog: $S/log: line 6 is cut short (an interrupted write?): its task runs again"
	same output "$output" e
}

@test "after resuming from a cut-short line the joblog holds whole lines only" {
	# Cut line 14 (task 13) to its first digit: appending to that stub
	# would turn the next line's Seq 13 into 113.
	logging_task
	seq 15 >"$S/in"
	timeout 20 "$CPMAP" -k -j1 --joblog "$S/full" "$S/task" <"$S/in" >/dev/null
	{ head -n 13 "$S/full"; printf 1; } >"$S/log"
	run --separate-stderr timeout 20 "$CPMAP" -k -j1 --joblog "$S/log" \
		--resume "$S/task" <"$S/in"
	same status "$status" 0
	same output "$output" "13
14
15"
	well_formed "$S/log"
	same seqs "$(seqs "$S/log" | sort -n)" "$(seq 15)"
	# And so a further --resume finds nothing to do.
	rm -f "$S/ran"
	run timeout 20 "$CPMAP" -k -j1 --joblog "$S/log" --resume "$S/task" <"$S/in"
	same "third run: status" "$status" 0
	same "third run: output" "$output" ""
}

@test "joblog lines that cannot be read are counted in a warning and their tasks run again" {
	five_done
	{
		head -n 3 "$S/full"
		echo garbage
		printf 'x\t:\t1\t2\t0\t0\t0\t0\tcmd\n'
		sed -n 5p "$S/full"
	} >"$S/log"
	run --separate-stderr timeout 20 "$CPMAP" -k --joblog "$S/log" --resume \
		"$S/task" ::: a b c d e
	same status "$status" 0
	same stderr "$stderr" "cpmap: --joblog: $S/log: 2 lines not understood: their tasks run again"
	same output "$output" "c
e"
}

# ---- interrupt, then --resume: exactly one result per input ---------------

# The task prints "result N".  With BLOCK_AFTER=K in the environment, inputs
# above K block on the gate (the command line stays the same).  Every task
# logs "PID PPID N" to $S/started when it starts (PPID: cpmap).
resumable_task() {
	task 'echo "$$ $PPID $1" >>"$S/started"
if [ "$1" -gt "${BLOCK_AFTER:-999999}" ]; then
	exec fifo-wait "$S/gate" 0 "result $1"
fi
echo "result $1"'
}

# interrupt_and_resume SIGNAL K: run 12 inputs with -j3, the first K quick
# and the rest blocked; once K are done and 3 are blocked, send SIGNAL to
# cpmap; then run with --resume until done.  Checks that every input has
# exactly one result over both runs.
interrupt_and_resume() {
	local sig=$1 k=$2 n=12 running want
	rm -f "$S/started" "$S/log" "$S/out1" "$S/out2"
	seq "$n" >"$S/in"
	BLOCK_AFTER=$k OUT=$S/out1 ERR=$S/err1 \
		bg_cpmap -j3 --joblog "$S/log" "$S/task"
	# Tasks 1..K have ended once K+3 have started (3 slots, 3 blocked).
	running=$((k + 3 < n ? k + 3 : n))
	wait_lines "$S/started" "$running"
	kill -s "$sig" "$PID"
	finish
	cp "$S/log" "$S/log1"
	case $sig in
	INT | TERM)
		want=$([ "$sig" = INT ] && echo 130 || echo 143)
		same "$sig after $k: status" "$status" "$want"
		# Complete results are written and logged; interrupted ones not.
		same "$sig after $k: run 1 results" "$(sort -n -k2 "$S/out1")" \
			"$(seq "$k" | sed 's/^/result /')"
		same "$sig after $k: run 1 joblog" "$(seqs "$S/log1" | sort -n)" \
			"$(seq "$k")"
		same "$sig after $k: stderr" "$(cat "$S/err1")" ""
		# No task is left running.
		local pid
		for pid in $(cut -d' ' -f1 "$S/started"); do
			if kill -0 "$pid" 2>/dev/null &&
				! grep -q zombie "/proc/$pid/status" 2>/dev/null; then
				echo "$sig after $k: task $pid still runs" >&2
				return 1
			fi
		done
		;;
	KILL)
		same "KILL after $k: status" "$status" 137
		# The blocked tasks outlive cpmap: stop them here.
		kill -KILL $(awk -v k="$k" '$3 > k { print $1 }' "$S/started") 2>/dev/null || true
		;;
	esac
	well_formed "$S/log1"
	run --separate-stderr timeout 20 "$CPMAP" -j3 --joblog "$S/log" --resume \
		"$S/task" <"$S/in"
	same "$sig after $k: resumed run: status" "$status" 0
	printf '%s\n' "$output" | sed '/^$/d' >"$S/out2"
	well_formed "$S/log"
	same "$sig after $k: log after both runs" "$(seqs "$S/log" | sort -n)" "$(seq "$n")"
	# Exactly one result per input; after KILL, a task whose result was
	# written but not logged may have run twice.  Never none.
	local i c
	for ((i = 1; i <= n; i++)); do
		c=$(cat "$S/out1" "$S/out2" | grep -cx "result $i" || true)
		if [ "$c" -eq 1 ]; then
			continue
		elif [ "$c" -eq 2 ] && [ "$sig" = KILL ] &&
			! seqs "$S/log1" | grep -qx "$i"; then
			continue
		fi
		echo "$sig after $k: input $i has $c results" >&2
		return 1
	done
	# A task logged in run 1 has its result there and did not run again.
	for i in $(seqs "$S/log1"); do
		same "$sig after $k: logged task $i: results in run 1" \
			"$(grep -cx "result $i" "$S/out1" || true)" 1
		same "$sig after $k: logged task $i: results in run 2" \
			"$(grep -cx "result $i" "$S/out2" || true)" 0
	done
}

@test "interrupted by SIGINT at any point, --resume completes with one result per input" {
	resumable_task
	local k
	for k in 0 4 9; do
		interrupt_and_resume INT "$k"
	done
}

@test "interrupted by SIGTERM at any point, --resume completes with one result per input" {
	resumable_task
	local k
	for k in 0 4 9; do
		interrupt_and_resume TERM "$k"
	done
}

@test "killed by SIGKILL at any point, --resume completes with no result lost" {
	resumable_task
	local k
	for k in 0 4 9; do
		interrupt_and_resume KILL "$k"
	done
}
