#!/usr/bin/env bats
# control.bats - --timeout, --kill-after, --retries, --retry-delay, --halt,
# --progress/--bar, --dry-run, and their usage errors.
#
# Tasks that must be stopped block forever in fifo-wait on a gate nobody
# opens, so the timeout is what ends them; nothing here measures time.
# --halt is compared with GNU parallel on the same inputs (-j1, so the order
# of events is fixed) when parallel is installed.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	setup_scratch
	S=$SCRATCH
	export S
	mkfifo "$S/gate" "$S/gate2"
}

teardown() {
	kill_test_processes
	true
}

# pids FILE: the pids fifo-wait -s (or a task) logged in FILE.
pids() {
	cut -d' ' -f1 "$1"
}

# ---- --timeout and --kill-after ------------------------------------------

@test "--timeout understands ms, s, m, h, d and plain seconds" {
	# Each case: the option's value, and how the message states it.
	local t want
	while read -r t want; do
		run timeout 20 "$CPMAP" --timeout "$t" fifo-wait "$S/gate" 0 never ::: a
		same "--timeout $t: status" "$status" 1
		same "--timeout $t: output" "$output" \
			"cpmap: task 1 (input a): timed out after $want"
	done <<-'EOF'
		250ms 0.25s
		0.25 0.25s
		0.25s 0.25s
		0.005m 0.3s
		0.0001h 0.36s
		0.000003d 0.259s
	EOF
}

@test "--timeout in minutes, hours and days leaves quick tasks alone" {
	local t
	for t in 1m 1h 1d 2.5m 30s 5000ms 5; do
		run timeout 20 "$CPMAP" -k --timeout "$t" echo ::: a b
		same "--timeout $t: status" "$status" 0
		same "--timeout $t: output" "$output" "a
b"
	done
}

@test "a timed-out task's record says timeout, SIGTERM, and keeps what it wrote" {
	task 'echo before; echo complaint >&2; exec fifo-wait -s "$S/started" "$S/gate"'
	run --separate-stderr timeout 20 "$CPMAP" --json --timeout 200ms \
		--joblog "$S/log" "$S/task" ::: a
	[ -s "$S/started" ] ||
		skip "the machine was too slow to start the task within 200ms"
	same status "$status" 1
	same stderr "$stderr" "cpmap: task 1 (input a): timed out after 0.2s"
	same record "$(jq -c '[.seq, .attempts, .status, .exit, .signal,
		.stdout, .stderr, .error]' <<<"$output")" \
		'[1,1,"timeout",null,"SIGTERM","before\n","complaint\n",{"kind":"timeout","message":"timed out after 0.2s"}]'
	# The joblog: never exited (-1), ended by signal 15.
	same joblog "$(tail -n +2 "$S/log" | cut -f1,6,7,8,9)" \
		"1	7	-1	15	$S/task a"
}

@test "a timed-out task's output is still written in grouped mode" {
	task 'echo before; echo complaint >&2; exec fifo-wait -s "$S/started" "$S/gate"'
	run --separate-stderr timeout 20 "$CPMAP" --timeout 200ms "$S/task" ::: a
	[ -s "$S/started" ] ||
		skip "the machine was too slow to start the task within 200ms"
	same status "$status" 1
	same stdout "$output" before
	# As for any failed task: the task's stderr, then cpmap's message.
	same stderr "$stderr" "complaint
cpmap: task 1 (input a): timed out after 0.2s"
}

@test "--timeout stops every process of the task's group, grandchildren too" {
	# The grandchild does not hold cpmap's pipes, so only the signal to the
	# whole process group can stop it.
	task 'fifo-wait -s "$S/started" "$S/gate2" >/dev/null 2>&1 &
exec fifo-wait -s "$S/started" "$S/gate"'
	run timeout 20 "$CPMAP" --timeout 300ms "$S/task" ::: a
	same status "$status" 1
	same output "$output" "cpmap: task 1 (input a): timed out after 0.3s"
	[ "$(wc -l <"$S/started")" -eq 2 ] ||
		skip "the machine was too slow to start the grandchild within 300ms"
	gone $(pids "$S/started")
	no_leftovers "$S/gate"
}

@test "a task that ignores SIGTERM is killed with SIGKILL after --kill-after" {
	# fifo-wait logs itself only once SIGTERM is ignored.
	task 'trap "" TERM
exec fifo-wait -s "$S/started" "$S/gate"'
	run --separate-stderr timeout 20 "$CPMAP" --json --timeout 300ms \
		--kill-after 100ms --joblog "$S/log" "$S/task" ::: a
	[ -s "$S/started" ] ||
		skip "the machine was too slow to ignore SIGTERM within 300ms"
	same status "$status" 1
	same stderr "$stderr" "cpmap: task 1 (input a): timed out after 0.3s"
	same record "$(jq -c '[.status, .exit, .signal, .error.kind]' <<<"$output")" \
		'["timeout",null,"SIGKILL","timeout"]'
	same joblog "$(tail -n +2 "$S/log" | cut -f7,8)" "-1	9"
	gone $(pids "$S/started")
}

@test "--kill-after 0 sends SIGKILL at once to a task that ignores SIGTERM" {
	task 'trap "" TERM
exec fifo-wait -s "$S/started" "$S/gate"'
	run --separate-stderr timeout 20 "$CPMAP" --json --timeout 300ms \
		--kill-after 0 "$S/task" ::: a
	[ -s "$S/started" ] ||
		skip "the machine was too slow to ignore SIGTERM within 300ms"
	same status "$status" 1
	same record "$(jq -c '[.status, .signal]' <<<"$output")" \
		'["timeout","SIGKILL"]'
}

@test "SIGKILL after --kill-after reaches grandchildren that ignore SIGTERM" {
	task 'trap "" TERM
fifo-wait -s "$S/started" "$S/gate2" >/dev/null 2>&1 &
exec fifo-wait -s "$S/started" "$S/gate"'
	run timeout 20 "$CPMAP" --timeout 300ms --kill-after 100ms "$S/task" ::: a
	[ "$(wc -l <"$S/started")" -eq 2 ] ||
		skip "the machine was too slow to start the grandchild within 300ms"
	same status "$status" 1
	gone $(pids "$S/started")
	no_leftovers "$S/gate"
}

@test "--timeout applies to each task on its own" {
	# Task "slow" blocks and times out; the quick ones are not affected
	# (the timeout leaves them ample time even on a loaded machine).
	task 'case $1 in slow) exec fifo-wait "$S/gate" ;; esac
echo "$1"'
	run --separate-stderr timeout 20 "$CPMAP" -k -j2 --timeout 1s \
		"$S/task" ::: a slow b
	same status "$status" 1
	same stdout "$output" "a
b"
	same stderr "$stderr" "cpmap: task 2 (input slow): timed out after 1s"
}

# ---- --retries and --retry-delay -----------------------------------------

# A task that fails its first two attempts and succeeds on the third; each
# attempt writes its number to stdout and stderr.
third_time_lucky() {
	task 'n=$(( $(cat "$S/count.$1" 2>/dev/null || echo 0) + 1 ))
echo "$n" >"$S/count.$1"
echo "$1" >>"$S/ran"
echo "out $1 attempt $n"
echo "err $1 attempt $n" >&2
[ "$n" -ge 3 ]'
}

@test "--retries runs a failing task again until it succeeds and writes only the last attempt" {
	third_time_lucky
	run --separate-stderr timeout 20 "$CPMAP" --retries 2 "$S/task" ::: x
	same status "$status" 0
	same stdout "$output" "out x attempt 3"
	same stderr "$stderr" "cpmap: task 1 (input x): exit status 1; retrying (attempt 2 of 3)
cpmap: task 1 (input x): exit status 1; retrying (attempt 3 of 3)
err x attempt 3"
}

@test "--retries: the record counts the attempts and holds the last one's output" {
	third_time_lucky
	run --separate-stderr timeout 20 "$CPMAP" --json --retries 5 "$S/task" ::: x
	same status "$status" 0
	same record "$(jq -c '[.attempts, .status, .exit, .stdout, .stderr]' <<<"$output")" \
		'[3,"ok",0,"out x attempt 3\n","err x attempt 3\n"]'
}

@test "--retries exhausted: the task fails after N+1 attempts" {
	task 'echo "$1" >>"$S/ran"; echo "out $1"; exit 5'
	run --separate-stderr timeout 20 "$CPMAP" --json --retries 2 "$S/task" ::: x
	same status "$status" 1
	same record "$(jq -c '[.attempts, .status, .exit, .stdout]' <<<"$output")" \
		'[3,"failed",5,"out x\n"]'
	# The retries are told; the last failure, a plain exit, is not.
	same stderr "$stderr" "cpmap: task 1 (input x): exit status 5; retrying (attempt 2 of 3)
cpmap: task 1 (input x): exit status 5; retrying (attempt 3 of 3)"
	same ran "$(cat "$S/ran")" "x
x
x"
}

@test "--retries 0 runs a failing task once" {
	task 'echo "$1" >>"$S/ran"; exit 5'
	run timeout 20 "$CPMAP" --retries 0 "$S/task" ::: x
	same status "$status" 1
	# A plain non-zero exit is quiet: the status says it.
	same output "$output" ""
	same ran "$(cat "$S/ran")" x
}

@test "--retries retries a timed-out attempt too" {
	task 'echo "$1" >>"$S/ran"; exec fifo-wait "$S/gate"'
	run --separate-stderr timeout 20 "$CPMAP" --json --timeout 200ms \
		--retries 1 "$S/task" ::: x
	same status "$status" 1
	same record "$(jq -c '[.attempts, .status, .signal]' <<<"$output")" \
		'[2,"timeout","SIGTERM"]'
	same stderr "$stderr" "cpmap: task 1 (input x): timed out after 0.2s; retrying (attempt 2 of 2)
cpmap: task 1 (input x): timed out after 0.2s"
}

@test "--retries runs a task's retries before new inputs" {
	third_time_lucky
	run timeout 20 "$CPMAP" -j1 --retries 2 "$S/task" ::: x y
	same status "$status" 0
	same ran "$(cat "$S/ran")" "x
x
x
y
y
y"
}

@test "--retry-delay accepts durations (the delay is not measured)" {
	local d
	for d in 0 1ms 10ms 0.01 0.01s; do
		rm -f "$S"/count.* "$S/ran"
		third_time_lucky
		run --separate-stderr timeout 20 "$CPMAP" --retries 2 \
			--retry-delay "$d" "$S/task" ::: x
		same "--retry-delay $d: status" "$status" 0
		same "--retry-delay $d: stdout" "$output" "out x attempt 3"
	done
}

# ---- --halt, compared with GNU parallel --------------------------------

# Task INPUT: logs INPUT to $S/ran and prints "out INPUT"; okN succeeds, fN
# exits with status N, k is killed by SIGKILL.
halt_task() {
	task 'echo "$1" >>"$S/ran"
echo "out $1"
case $1 in
f*) exit "${1#f}" ;;
k*) kill -KILL $$ ;;
esac
exit 0'
}

# halt_cases: read "POLICY STATUS RAN INPUTS" lines (RAN: the inputs that
# ran, comma-separated, or -) and check cpmap -j1 --halt POLICY against
# them, and against GNU parallel when it is installed.
halt_cases() {
	local policy want ran inputs got_status got_ran got_out
	halt_task
	while read -r policy want ran inputs; do
		[ "$ran" = - ] && ran=
		rm -f "$S/ran"
		run --separate-stderr timeout 20 "$CPMAP" -j1 --halt "$policy" \
			"$S/task" ::: $inputs
		got_status=$status got_out=$output
		got_ran=$(cat "$S/ran" 2>/dev/null | paste -sd,)
		same "--halt $policy ($inputs): exit status" "$got_status" "$want"
		same "--halt $policy ($inputs): tasks run" "$got_ran" "$ran"
		same "--halt $policy ($inputs): stdout" "$got_out" \
			"$(tr , '\n' <<<"$ran" | sed '/./s/^/out /')"
		command -v parallel >/dev/null || continue
		rm -f "$S/ran"
		run --separate-stderr timeout 20 parallel --will-cite -j1 \
			--halt "$policy" "$S/task" ::: $inputs
		same "GNU parallel --halt $policy ($inputs): exit status" "$status" "$got_status"
		same "GNU parallel --halt $policy ($inputs): tasks run" \
			"$(cat "$S/ran" 2>/dev/null | paste -sd,)" "$got_ran"
		same "GNU parallel --halt $policy ($inputs): stdout" "$output" "$got_out"
	done
}

@test "--halt ...,fail=N stops as GNU parallel does, with its exit status" {
	halt_cases <<-'EOF'
		now,fail=1 3 ok1,ok2,f3 ok1 ok2 f3 ok4 f5
		soon,fail=1 3 ok1,ok2,f3 ok1 ok2 f3 ok4 f5
		now,fail=1 137 ok1,k ok1 k ok2
		now,fail=1 0 ok1,ok2 ok1 ok2
		soon,fail=2 2 ok1,f3,ok2,f5 ok1 f3 ok2 f5 ok4 f7
		now,fail=2 2 ok1,f3,ok2,f5 ok1 f3 ok2 f5 ok4 f7
		soon,fail=40% 40 ok1,ok2,ok4,f3,f5 ok1 ok2 ok4 f3 f5
	EOF
}

@test "--halt ...,success=N and ...,done=N stop as GNU parallel does" {
	halt_cases <<-'EOF'
		now,success=1 0 f3,ok1 f3 ok1 ok2
		soon,success=2 0 f3,ok1,f5,ok2 f3 ok1 f5 ok2 ok4
		now,done=2 1 ok1,f3 ok1 f3 ok2
		soon,done=3 2 f3,f5,ok1 f3 f5 ok1 ok2
	EOF
}

@test "--halt's legacy numbers mean what they mean to GNU parallel" {
	halt_cases <<-'EOF'
		2 3 ok1,f3 ok1 f3 ok2
		1 5 ok1,f5 ok1 f5 ok2
		-1 0 f3,ok1 f3 ok1 ok2
		-2 0 f3,ok1 f3 ok1 ok2
		0 2 ok1,f3,ok2,f5 ok1 f3 ok2 f5
		never 2 ok1,f3,ok2,f5 ok1 f3 ok2 f5
	EOF
}

@test "--halt without soon or now is a usage error, as in GNU parallel" {
	halt_cases <<-'EOF'
		done=2 255 - ok1 ok2
		fail=50% 255 - ok1 f3
	EOF
}

@test "--halt fail=P% exits with the percentage rounded up, as GNU parallel" {
	# One of three failed: 33.3% -> 34.
	halt_cases <<-'EOF'
		soon,fail=30% 34 ok1,ok2,f3 ok1 ok2 f3
	EOF
}

@test "--halt fail=P% exits with the failed percentage even when it never triggers" {
	# One of three failed: below 50%, nothing halts; GNU parallel still
	# gives the percentage (34), not the count.
	halt_cases <<-'EOF'
		soon,fail=50% 34 ok1,ok2,f3 ok1 ok2 f3
	EOF
}

@test "--halt now,fail=1 kills the other running task and does not write its output" {
	# Task "block" prints, then blocks; task "fail" fails once it is
	# sure "block" runs.
	task 'case $1 in
block) echo partial; exec fifo-wait -s "$S/started" "$S/gate" 0 late ;;
fail) wait-lines "$S/started" 1; echo failing; exit 4 ;;
esac'
	run --separate-stderr timeout 20 "$CPMAP" -j2 --joblog "$S/log" \
		--halt now,fail=1 "$S/task" ::: block fail
	same status "$status" 4
	same stdout "$output" failing
	same stderr "$stderr" "cpmap: --halt now: task 2 (input fail): exit status 4; stopping the running tasks"
	# The killed task gets no joblog line.
	same joblog "$(tail -n +2 "$S/log" | cut -f1,7,8)" "2	4	0"
	gone $(pids "$S/started")
	if command -v parallel >/dev/null; then
		rm -f "$S/started"
		run --separate-stderr timeout 20 parallel --will-cite -j2 \
			--halt now,fail=1 "$S/task" ::: block fail
		same "GNU parallel: status" "$status" 4
		same "GNU parallel: stdout" "$output" failing
	fi
}

@test "--halt soon,fail=1 lets the other running task finish and writes it" {
	task 'case $1 in
block) exec fifo-wait -s "$S/started" "$S/gate" 0 finished ;;
fail) wait-lines "$S/started" 1; echo failing; exit 4 ;;
*) echo "$1" >>"$S/ran" ;;
esac'
	bg_cpmap -j2 --halt soon,fail=1 "$S/task" ::: block fail c d
	# The halt message is out (the line on stderr): only now let
	# the blocked task go.  Had --halt killed it, nobody would open the
	# gate: timeout turns that hang into a failure.
	wait_lines "$S/err" 1
	timeout 10 sh -c 'echo go >"$1"' sh "$S/gate"
	finish
	same status "$status" 4
	same stdout "$(cat "$S/out")" "failing
finished"
	same stderr "$(cat "$S/err")" "cpmap: --halt soon: task 2 (input fail): exit status 4; starting no more tasks"
	[ ! -e "$S/ran" ]
}

# ---- --progress and --bar ------------------------------------------------

@test "--progress writes to stderr only: stdout is the same as without it" {
	run --separate-stderr timeout 20 "$CPMAP" -k echo ::: a b c
	local plain=$output
	run --separate-stderr timeout 20 "$CPMAP" -k --progress echo ::: a b c
	same status "$status" 0
	same stdout "$output" "$plain"
	[[ $(tail -n 1 <<<"$stderr") =~ ^100%\ 3/3\ done,\ 0\ failed,\ 0\ running,\ [0-9]+\.[0-9]/s$ ]] ||
		{ echo "last progress line: $stderr" >&2; false; }
}

@test "--bar writes to stderr only and ends with a full bar" {
	run --separate-stderr timeout 20 "$CPMAP" -k echo ::: a b c
	local plain=$output
	run --separate-stderr timeout 20 "$CPMAP" -k --bar echo ::: a b c
	same status "$status" 0
	same stdout "$output" "$plain"
	[[ $(tail -n 1 <<<"$stderr") =~ ^\[#+\]\ 100%\ 3/3\ done,\ 0\ failed,\ 0\ running,\ [0-9]+\.[0-9]/s$ ]] ||
		{ echo "last progress line: $stderr" >&2; false; }
}

@test "--progress counts failed tasks" {
	run --separate-stderr timeout 20 "$CPMAP" --progress false ::: a b
	same status "$status" 2
	[[ $(tail -n 1 <<<"$stderr") =~ ^100%\ 2/2\ done,\ 2\ failed,\ 0\ running, ]] ||
		{ echo "stderr: $stderr" >&2; false; }
}

@test "--progress's last line shows the total when the inputs came from stdin" {
	# -j1: the last task ends before cpmap has seen the end of its input.
	local opt
	for opt in --progress --bar; do
		run --separate-stderr timeout 20 "$CPMAP" -j1 "$opt" echo < <(seq 5)
		same "$opt: status" "$status" 0
		same "$opt: stdout" "$output" "$(seq 5)"
		[[ $(tail -n 1 <<<"$stderr") =~ 100%\ 5/5\ done,\ 0\ failed,\ 0\ running, ]] ||
			{ echo "$opt: last line: $(tail -n 1 <<<"$stderr")" >&2; false; }
	done
}

@test "--progress and --bar draw one line per update when stderr is not a terminal" {
	local opt
	for opt in --progress --bar; do
		timeout 20 "$CPMAP" -k "$opt" echo ::: a b c >"$S/out" 2>"$S/err"
		same "$opt: stdout" "$(cat "$S/out")" "a
b
c"
		# No carriage return, no escape sequence, every line complete.
		! grep -q $'[\r\033]' "$S/err"
		same "last byte of stderr" "$(tail -c 1 "$S/err" | od -An -c | tr -d ' ')" '\n'
	done
}

@test "--progress redraws in place when stderr is a terminal" {
	command -v script >/dev/null || skip "script(1) is not installed"
	# script(1) gives cpmap a terminal as stderr; stdout goes to a file.
	timeout 20 script -qec "$(printf '%q ' "$CPMAP" -k --progress echo ::: a b c)>$(printf %q "$S/out")" \
		"$S/typescript" >/dev/null 2>&1 3>&- ||
		skip "script(1) cannot give this test a terminal"
	grep -q $'\r\033\\[K100% 3/3 done' "$S/typescript"
	same stdout "$(cat "$S/out")" "a
b
c"
}

# ---- --dry-run --------------------------------------------------------

@test "--dry-run prints each command, shell-quoted, and runs nothing" {
	run --separate-stderr timeout 20 "$CPMAP" -k --dry-run touch "$S/made-{}" \
		::: a 'b c' "it's"
	same status "$status" 0
	same stdout "$output" "touch $S/made-a
touch '$S/made-b c'
touch '$S/made-it'\\''s'"
	same stderr "$stderr" ""
	[ -z "$(find "$S" -name 'made-*')" ]
}

@test "--dry-run prints a shell-mode command as the shell would get it" {
	run --separate-stderr timeout 20 "$CPMAP" -k --dry-run \
		"touch $S/made-{} && echo {}" ::: a 'b c'
	same status "$status" 0
	same stdout "$output" "touch $S/made-a && echo a
touch $S/made-'b c' && echo 'b c'"
	[ -z "$(find "$S" -name 'made-*')" ]
}

@test "--dry-run with --timeout, --retries and --halt still runs nothing" {
	run --separate-stderr timeout 20 "$CPMAP" -k --dry-run --timeout 1s \
		--retries 2 --halt now,fail=1 touch "$S/made-{}" ::: a b
	same status "$status" 0
	same stdout "$output" "touch $S/made-a
touch $S/made-b"
	[ -z "$(find "$S" -name 'made-*')" ]
}

# ---- usage errors ----------------------------------------------------------

@test "bad --timeout, --kill-after, --retries, --retry-delay and --halt values are usage errors" {
	local opt value
	while read -r opt value; do
		[ "$value" = "''" ] && value=
		run timeout 20 "$CPMAP" "$opt" "$value" touch "$S/ran" ::: a
		same "$opt '$value': status" "$status" 255
		[[ $output == "cpmap: $opt"*"'$value'"*"(see cpmap --help)" ]] ||
			{ echo "$opt '$value': $output" >&2; false; }
		same "$opt '$value': lines" "${#lines[@]}" 1
		[ ! -e "$S/ran" ]
	done <<-'EOF'
		--timeout 0
		--timeout -1
		--timeout ''
		--timeout abc
		--timeout 5x
		--timeout 5sec
		--timeout nan
		--timeout 1e10
		--kill-after -1
		--kill-after x
		--retries -1
		--retries x
		--retries 1.5
		--retries ''
		--retries 99999999999999999999
		--retry-delay -1
		--retry-delay 2y
		--halt ''
		--halt now
		--halt sometimes,fail=1
		--halt now,crash=1
		--halt now,fail=0
		--halt now,fail=0%
		--halt now,fail=101%
		--halt now,fail=1.5
		--halt now,fail=x
		--halt 3
	EOF
}

@test "--resume and --resume-failed without --joblog are usage errors" {
	local opt
	for opt in --resume --resume-failed; do
		run timeout 20 "$CPMAP" "$opt" touch "$S/ran" ::: a
		same "$opt: status" "$status" 255
		same "$opt: output" "$output" \
			"cpmap: $opt needs --joblog FILE (see cpmap --help)"
		[ ! -e "$S/ran" ]
	done
}
