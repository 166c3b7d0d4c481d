#!/usr/bin/env bats
# signals.bats - SIGINT, SIGTERM, SIGHUP, a vanished stdout reader, and a
# grandchild that keeps a task's pipes open.
#
# cpmap runs in the background (bounded by timeout); the test learns that
# its tasks have started from the files fifo-wait -s appends to, then sends
# signals to cpmap itself.  Every task's command line holds the test's own
# gate path ($S/gate...), so no_leftovers "$S/gate" says whether any of its
# processes survived.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	setup_scratch
	S=$SCRATCH
	export S
	for i in 1 2 3 4 5; do
		mkfifo "$S/gate$i"
	done
	# The tasks:
	#   done N    print N, then say so in $S/done
	#   block N   print "partial N", then wait on gate N in a child
	#             fifo-wait; on SIGTERM, wait for that child and log how
	#             it ended in $S/term: "N 143" only when the child got
	#             the SIGTERM too (the whole process group was signalled)
	#   ignore N  ignore SIGTERM and wait on gate N
	#   catch N   print "partial N", wait on gate N; on SIGTERM print
	#             "caught N" and exit 0
	cat >"$S/task" <<'EOF'
#!/bin/sh
gate=$S/gate$2
case $1 in
done)
	echo "$2"
	echo "$2" >>"$S/done"
	;;
block)
	echo "partial $2"
	# $! (not a variable set after the fork): the trap may run between
	# the fork and the next command.
	trap 'wait $!; echo "$2 $?" >>"$S/term"; exit 143' TERM
	fifo-wait -s "$S/started" "$gate" 0 "$2" &
	wait $!
	;;
ignore)
	trap '' TERM
	exec fifo-wait -s "$S/started" "$gate" 0 "$2"
	;;
catch)
	echo "partial $2"
	trap 'echo "caught $2"; exit 0' TERM
	fifo-wait -s "$S/started" "$gate" &
	wait
	;;
esac
EOF
	chmod +x "$S/task"
}

teardown() {
	kill_test_processes ${WRITER:-} ${READER:-}
}

# inputs LINE...: the input file, one task description per line.
inputs() {
	printf '%s\n' "$@" >"$S/in"
}

# wait_asleep PID: wait until PID sleeps in a write to a full pipe or in
# its event loop; fail if it ends first.  (A condition, polled: no outcome
# depends on time.)
wait_asleep() {
	wait-state asleep "$1" pipe_write pipe_wait epoll_wait ep_poll \
		poll_schedule do_sys_poll
}

@test "SIGINT: exit 130, running task groups get SIGTERM, finished results are written, interrupted ones are not" {
	inputs "block 1" "done 2" "block 3"
	bg_cpmap -k -j3 -C ' ' "$S/task" {1} {2}
	wait_lines "$S/started" 2
	wait_lines "$S/done" 1
	kill -INT "$PID"
	finish
	same status "$status" 130
	# Task 2 finished before the signal: written, even behind task 1.
	same stdout "$(cat "$S/out")" 2
	# Both blocked tasks' children got SIGTERM with their group.
	same "sort term" "$(sort "$S/term")" "1 143
3 143"
	no_leftovers "$S/gate"
}

@test "SIGINT without -k: results written before the signal stay, nothing else is added" {
	inputs "block 1" "done 2"
	bg_cpmap -j2 -C ' ' "$S/task" {1} {2}
	wait_lines "$S/started" 1
	wait_lines "$S/out" 1
	kill -INT "$PID"
	finish
	same status "$status" 130
	same stdout "$(cat "$S/out")" 2
	same term "$(cat "$S/term")" "1 143"
	no_leftovers "$S/gate"
}

@test "SIGINT starts no new task" {
	inputs "block 1" "block 2" "done 3" "done 4"
	bg_cpmap -k -j2 -C ' ' "$S/task" {1} {2}
	wait_lines "$S/started" 2
	kill -INT "$PID"
	finish
	same status "$status" 130
	empty stdout "$S/out"
	[ ! -e "$S/done" ]
	no_leftovers "$S/gate"
}

@test "SIGTERM: exit 143, the same as SIGINT otherwise" {
	inputs "block 1" "done 2" "block 3"
	bg_cpmap -k -j3 -C ' ' "$S/task" {1} {2}
	wait_lines "$S/started" 2
	wait_lines "$S/done" 1
	kill -TERM "$PID"
	finish
	same status "$status" 143
	same stdout "$(cat "$S/out")" 2
	same "sort term" "$(sort "$S/term")" "1 143
3 143"
	no_leftovers "$S/gate"
}

@test "an interrupted task that still exits 0 keeps its result" {
	inputs "catch 1" "done 2"
	bg_cpmap -k -j2 -C ' ' "$S/task" {1} {2}
	wait_lines "$S/started" 1
	wait_lines "$S/done" 1
	kill -INT "$PID"
	finish
	same status "$status" 130
	same stdout "$(cat "$S/out")" "partial 1
caught 1
2"
	no_leftovers "$S/gate"
}

@test "a task that ignores SIGTERM is killed by a second SIGINT" {
	inputs "ignore 1" "block 2"
	bg_cpmap -j2 -C ' ' "$S/task" {1} {2}
	wait_lines "$S/started" 2
	kill -INT "$PID"
	# The first SIGINT has been acted on: task 2's group got SIGTERM.
	wait_lines "$S/term" 1
	same term "$(cat "$S/term")" "2 143"
	# Task 1 ignores it and keeps cpmap waiting.
	pgrep -f -- "$S/gate1" >/dev/null
	kill -0 "$PID"
	kill -INT "$PID"
	finish
	same status "$status" 130
	empty stdout "$S/out"
	no_leftovers "$S/gate"
}

@test "a second SIGTERM kills a task that ignores the first one; exit 143" {
	inputs "ignore 1" "block 2"
	bg_cpmap -j2 -C ' ' "$S/task" {1} {2}
	wait_lines "$S/started" 2
	kill -TERM "$PID"
	wait_lines "$S/term" 1
	kill -0 "$PID"
	kill -TERM "$PID"
	finish
	same status "$status" 143
	no_leftovers "$S/gate"
}

@test "SIGINT or SIGTERM while cpmap waits for more input ends it at once with 130 or 143" {
	mkfifo "$S/in"
	for sig in INT TERM; do
		rm -f "$S/out"
		{
			echo "done 1"
			wait_lines "$S/out" 1
			# Keep the input open until cpmap is gone.
			fifo-wait "$S/gate5"
		} >"$S/in" 3>&- &
		WRITER=$!
		bg_cpmap -C ' ' "$S/task" {1} {2}
		wait_lines "$S/out" 1
		kill -"$sig" "$PID"
		finish
		want=130
		[ "$sig" = TERM ] && want=143
		same "SIG$sig: status" "$status" "$want"
		same stdout "$(cat "$S/out")" 1
		release "$S/gate5"
		wait "$WRITER" || true
		WRITER=
	done
}

@test "SIGTERM reaches the running tasks even while cpmap's stdout is not being read" {
	[ -r /proc/self/wchan ] || skip "no /proc wchan"
	mkfifo "$S/so" "$S/drain"
	# A reader that opens the output FIFO but reads only once released.
	{ fifo-wait "$S/drain"; cat >"$S/out"; } <"$S/so" 3>&- &
	READER=$!
	OUT=$S/so bg_cpmap -i /dev/null -j2 -C ' ' sh -c \
	    'if [ "$1" = big ]; then head -c 1000000 /dev/zero; echo >>"$S/done"; else "$S/task" "$1" "$2"; fi' \
	    sh {1} {2} ::: "block 1" "big 2"
	wait_lines "$S/started" 1
	wait_lines "$S/done" 1
	# cpmap has task 2's megabyte and cannot write it to a pipe nobody
	# reads; it waits, in a write or in its loop.
	wait_asleep "$PID" || fail "cpmap ended"
	kill -TERM "$PID"
	# The signal is not lost in the write: task 1's group gets SIGTERM.
	wait_lines "$S/term" 1
	release "$S/drain"
	finish
	wait "$READER" || true
	READER=
	same status "$status" 143
	same term "$(cat "$S/term")" "1 143"
	# The complete result of task 2 is written all the same.
	same "bytes written" "$(wc -c <"$S/out")" 1000000
	no_leftovers "$S/gate"
}

@test "SIGHUP: no new task starts, running ones finish and are written, exit 129 when inputs were left" {
	inputs "block 1" "block 2" "block 3" "block 4" "block 5"
	bg_cpmap -k -j2 -C ' ' "$S/task" {1} {2}
	wait_lines "$S/started" 2
	kill -HUP "$PID"
	# Released after the HUP: they run to their end and are written.  A
	# task 3 started by mistake would block on gate 3 until the timeout.
	release "$S/gate1"
	release "$S/gate2"
	finish
	same status "$status" 129
	same stdout "$(cat "$S/out")" "partial 1
1
partial 2
2"
	same "tasks started" "$(wc -l <"$S/started")" 2
	[ ! -e "$S/term" ]
	no_leftovers "$S/gate"
}

@test "SIGHUP when every input has started: the run ends normally with 0" {
	bg_cpmap -i /dev/null -k -j2 -C ' ' "$S/task" {1} {2} ::: "block 1" "block 2"
	wait_lines "$S/started" 2
	kill -HUP "$PID"
	release "$S/gate1"
	release "$S/gate2"
	finish
	[ "$status" -eq 0 ] || fail "exit status $status, want 0 (no input was left)"
	same stdout "$(cat "$S/out")" "partial 1
1
partial 2
2"
}

@test "SIGHUP when every input has started, from a file or a closed pipe: 0" {
	mkfifo "$S/in"
	printf 'block 1\nblock 2\n' >"$S/file"
	for source in file pipe; do
		rm -f "$S/started"
		if [ "$source" = pipe ]; then
			cat "$S/file" >"$S/in" 3>&- &
			WRITER=$!
			bg_cpmap -k -j2 -C ' ' "$S/task" {1} {2}
			# The writer is gone: all that is left in the pipe is its end.
			wait "$WRITER"
			WRITER=
		else
			bg_cpmap -i "$S/file" -k -j2 -C ' ' "$S/task" {1} {2}
		fi
		wait_lines "$S/started" 2
		kill -HUP "$PID"
		release "$S/gate1"
		release "$S/gate2"
		finish
		[ "$status" -eq 0 ] || fail "$source: exit status $status, want 0 (no input was left)"
		same stdout "$(cat "$S/out")" "partial 1
1
partial 2
2"
	done
}

@test "cpmap | head -1 stops promptly and quietly, killing a blocked task" {
	# Task 2 blocks for ever; the others print their input.  Once head is
	# gone, cpmap's next write fails and it must stop and kill task 2.
	run timeout 20 bash -c '
	    yes | "$CPMAP" -j4 sh -c \
		"[ \"\$CPMAP_SEQ\" = 2 ] && exec fifo-wait \"\$1\"; echo \"\$2\"" \
		sh "$S/gate1" 2>"$S/err" | head -1
	    echo "status ${PIPESTATUS[1]}"'
	same status "$status" 0
	same output "$output" "y
status 141"
	empty stderr "$S/err"
	no_leftovers "$S/gate"
}

@test "cpmap -k | head -1 on a million inputs stops at once with the first line" {
	run timeout 20 bash -c '
	    seq 1000000 | "$CPMAP" -k sh -c "echo \"\$2\"" sh "$S/gate1" 2>"$S/err" |
		head -1
	    echo "status ${PIPESTATUS[1]}"'
	same status "$status" 0
	same output "$output" "1
status 141"
	empty stderr "$S/err"
	no_leftovers "$S/gate"
}

@test "cpmap -u | head -1 stops promptly too, though cpmap itself never writes" {
	# With -u the tasks write to the pipe themselves and die of SIGPIPE once
	# head is gone; cpmap must notice that its stdout's reader is gone
	# rather than run the endless input to its end.
	run timeout 20 bash -c '
	    yes | "$CPMAP" -u -j2 sh -c "echo \"\$2\"" sh "$S/gate1" 2>"$S/err" |
		head -1
	    echo "status ${PIPESTATUS[1]}"'
	[ "$status" -eq 0 ] || fail "cpmap did not stop (status $status); stderr has $(wc -l <"$S/err") lines"
	same output "$output" "y
status 141"
	empty stderr "$S/err"
	no_leftovers "$S/gate"
}

@test "a grandchild that keeps a task's stdout or stderr open is killed after the grace time" {
	# Each task leaves a fifo-wait behind that holds stdout, stderr, both,
	# or neither; cpmap must not wait for it (it would wait for ever).
	run timeout 20 "$CPMAP" -k -j4 sh -c '
	    case $2 in
	    out) fifo-wait "$1" 2>/dev/null & ;;
	    err) fifo-wait "$1" >/dev/null & ;;
	    both) fifo-wait "$1" & ;;
	    esac
	    echo "hi $2"' sh "$S/gate1" ::: out err both none
	same status "$status" 0
	same output "$output" "hi out
hi err
hi both
hi none"
	no_leftovers "$S/gate1"
}

# ---- a stopped run is never cut silently (issue 10, item 3) ---------------

# stalled_run ARGS...: cpmap ARGS with its stdout a FIFO whose reader reads
# only once released ($S/drain), into $S/out; returns once cpmap sleeps.
stalled_run() {
	mkfifo "$S/so" "$S/drain"
	{ fifo-wait "$S/drain"; cat >"$S/out"; } <"$S/so" 3>&- &
	READER=$!
	OUT=$S/so bg_cpmap -i /dev/null "$@"
	wait_lines "$S/done" 1
	# Asleep in poll(2): a stalled write (not the loop's epoll_wait).
	wait-state asleep "$PID" poll_schedule do_sys_poll || fail "cpmap ended"
}

# taken PID: wait until PID has no SIGTERM pending (two signals of one kind
# sent at once would merge into one).
taken() {
	local i pending
	for i in $(seq 200); do
		pending=$(awk '/^(ShdPnd|SigPnd):/ { print $2 }' "/proc/$1/status") ||
			return 1
		[ -n "$pending" ] || return 1
		local term=0 p
		for p in $pending; do
			(( (16#$p >> 14) & 1 )) && term=1
		done
		[ "$term" = 0 ] && return 0
		sleep 0.05
	done
	return 1
}

# drained: let the reader read what is in the pipe, and wait for it.
drained() {
	release "$S/drain"
	wait "$READER" || true
	READER=
}

@test "a second SIGTERM during a stalled write ends the run, naming the task whose output was cut" {
	[ -r /proc/self/wchan ] || skip "no /proc wchan"
	stalled_run -k -j1 --kill-after 60s --joblog "$S/jl" sh -c \
		'head -c 300000 /dev/zero | tr "\0" "$1"; echo >>"$S/done"' sh ::: a b
	kill -TERM "$PID"
	taken "$PID"
	kill -TERM "$PID"
	finish
	drained
	same status "$status" 143
	same stderr "$stderr" "cpmap: task 1 (input a): its output was cut short (stopped again while standard output was not read); it has no joblog line"
	same "logged" "$(tail -n +2 "$S/jl")" ""
}

@test "--kill-after after the first SIGTERM ends a stalled write too, and says so" {
	[ -r /proc/self/wchan ] || skip "no /proc wchan"
	stalled_run -k -j1 --kill-after 200ms --joblog "$S/jl" sh -c \
		'head -c 300000 /dev/zero | tr "\0" "$1"; echo >>"$S/done"' sh ::: a b
	kill -TERM "$PID"
	finish
	drained
	same status "$status" 143
	same stderr "$stderr" "cpmap: task 1 (input a): its output was cut short (standard output was not read within --kill-after of the stop); it has no joblog line"
	same "logged" "$(tail -n +2 "$S/jl")" ""
}

@test "--json: a run ended during a stalled write never leaves half a record" {
	[ -r /proc/self/wchan ] || skip "no /proc wchan"
	# Records of 50 kB: the first fits in the pipe, the second would not.
	stalled_run -k -j1 --json --kill-after 60s --joblog "$S/jl" sh -c \
		'head -c 50000 /dev/zero | tr "\0" "$1"; echo >>"$S/done"' sh ::: a b c
	kill -TERM "$PID"
	taken "$PID"
	kill -TERM "$PID"
	finish
	drained
	same status "$status" 143
	same "last byte" "$(tail -c 1 "$S/out" | od -An -c | tr -d ' ')" '\n'
	same "records written" "$(jq -c .seq "$S/out")" 1
	same "logged" "$(tail -n +2 "$S/jl" | cut -f1)" 1
	same stderr "$stderr" "cpmap: task 2 (input b): its record was not written (stopped again while standard output was not read); it has no joblog line"
}

# ---- coalesced writes under a full stdout (issue 12) -----------------------

# coalesced_stall: 3000 tasks of 101 bytes through --persist cat, -k -j2,
# --joblog $S/jl, into a FIFO whose reader reads only once released; returns
# once cpmap is stalled writing a batch of them.
coalesced_stall() {
	mkfifo "$S/so" "$S/drain"
	{ fifo-wait "$S/drain"; cat >"$S/out"; } <"$S/so" 3>&- &
	READER=$!
	seq 3000 | awk '{ printf "%0100d\n", $1 }' >"$S/in"
	OUT=$S/so bg_cpmap -k -j2 --joblog "$S/jl" --persist cat
	wait-state asleep "$PID" poll_schedule do_sys_poll || fail "cpmap ended"
}

# logged_whole: every task in $S/jl has its line, whole, in $S/out (in
# order with -k): the joblog never ran ahead of the output.
logged_whole() {
	local n
	n=$(tail -n +2 "$S/jl" | wc -l)
	[ "$n" -gt 0 ] || fail "nothing logged before the stall"
	[ "$n" -lt 3000 ] || fail "everything logged: no stall"
	same "logged" "$(tail -n +2 "$S/jl" | cut -f1)" "$(seq "$n")"
	same "their output" "$(head -n "$n" "$S/out")" "$(head -n "$n" "$S/in")"
}

@test "coalesced: under a stalled stdout no joblog line runs ahead of its output" {
	[ -r /proc/self/wchan ] || skip "no /proc wchan"
	coalesced_stall
	kill -KILL "$PID"
	finish
	drained
	logged_whole
}

@test "coalesced: a run ended during a stalled batch names the tasks cut and unwritten; --resume runs exactly them" {
	[ -r /proc/self/wchan ] || skip "no /proc wchan"
	coalesced_stall
	kill -TERM "$PID"
	taken "$PID"
	kill -TERM "$PID"
	finish
	drained
	same status "$status" 143
	logged_whole
	grep -Eq "^cpmap: task [0-9]+ \(input 0+[0-9]+\): its output was cut short \(stopped again while standard output was not read\); it has no joblog line$" <<<"$stderr" ||
		grep -Eq "^cpmap: [0-9]+ finished tasks? not written \(" <<<"$stderr" ||
		fail "nothing named as cut or not written: $stderr"
	# The task cut short (if any) has no line.
	cut=$(sed -n 's/^cpmap: task \([0-9]*\) .*cut short.*/\1/p' <<<"$stderr")
	if [ -n "$cut" ]; then
		tail -n +2 "$S/jl" | cut -f1 | grep -Fxq "$cut" && fail "task $cut was cut, yet logged"
	fi
	# --resume runs the others, exactly: together, every task once.
	n=$(tail -n +2 "$S/jl" | wc -l)
	run --separate-stderr timeout 60 "$CPMAP" -k -j2 --joblog "$S/jl" --resume --persist cat <"$S/in"
	same status "$status" 0
	same "written by --resume" "$output" "$(tail -n +$((n + 1)) "$S/in")"
	same "logged in all" "$(tail -n +2 "$S/jl" | cut -f1)" "$(seq 3000)"
}
