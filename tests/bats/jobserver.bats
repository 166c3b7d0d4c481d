#!/usr/bin/env bats
# jobserver.bats - GNU make's jobserver: cpmap as a client (under the real
# make of this machine, pipe style; and a small test jobserver, a FIFO the
# test fills with tokens, for make 4.4's fifo style) and as a server
# (--jobserver-slots).
#
# Concurrency is counted with markers: each task makes a file while it
# runs, waits until the number of tasks the budget allows have started (a
# barrier, so that the budget is reached), then records how many markers
# exist and removes its own.  A marker lives within its task's token, so no
# count can exceed the budget.  Tokens left at the end are counted in the
# pipe or FIFO itself (FIONREAD).  Nothing here sleeps.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	setup_scratch
	S=$SCRATCH
	export S
	mkdir "$S/run"
	mkfifo "$S/gate"
	unset MAKEFLAGS MFLAGS MAKELEVEL
	# The task: a marker, the barrier (BARRIER tasks started), a count.
	cat >"$S/task" <<-'EOF'
		#!/bin/sh
		touch "$S/run/$$"
		echo "$$" >>"$S/started"
		wait-lines "$S/started" "$BARRIER" || exit 3
		ls "$S/run" | wc -l >>"$S/counts"
		rm "$S/run/$$"
	EOF
	chmod +x "$S/task"
}

teardown() {
	[ -n "${JS_FD:-}" ] && exec {JS_FD}>&-
	kill_test_processes
	true
}

# bytes PATH_OR_FD: the bytes waiting in a pipe or FIFO (its tokens).
bytes() {
	python3 -c '
import fcntl, os, struct, sys, termios
a = sys.argv[1]
fd = int(a) if a.isdigit() else os.open(a, os.O_RDWR | os.O_NONBLOCK)
print(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0])
' "$1"
}

# jobserver N: a test jobserver of N tokens (make 4.4's fifo style), held
# open by the test (a FIFO's bytes live only while it is open); sets
# MAKEFLAGS for cpmap to find it.
jobserver() {
	mkfifo "$S/js"
	exec {JS_FD}<>"$S/js"
	local i
	for ((i = 0; i < $1; i++)); do printf + >&"$JS_FD"; done
	export MAKEFLAGS=" -j$(($1 + 1)) --jobserver-auth=fifo:$S/js"
}

# most: the largest count any task recorded.
most() {
	sort -n "$S/counts" | tail -n 1
}

@test "under make -j4, two recipes each running cpmap -j8 run 4 tasks at once in all" {
	command -v make >/dev/null || skip "no make"
	# Recipes: make counts the bytes in its pipe once both are done.
	{
		printf 'all: check\n'
		printf 'a b:\n\t+@$(CPMAP) -j8 $(S)/task ::: 1 2 3 4 5 6 7 8 9 10\n'
		printf 'check: a b\n\t+@python3 $(S)/tokens.py\n'
	} >"$S/Makefile"
	cat >"$S/tokens.py" <<-'EOF'
		import fcntl, os, re, struct, termios
		fd = int(re.search(r"auth=(\d+),", os.environ["MAKEFLAGS"]).group(1))
		print("tokens", struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0])
	EOF
	BARRIER=4 run timeout 60 make -s -j4 -C "$S" CPMAP="$CPMAP" S="$S"
	assert_success
	assert_output 'tokens 3'
	same "tasks run" "$(wc -l <"$S/counts")" 20
	same "most tasks at once" "$(most)" 4
}

@test "a make recipe's cpmap passes make's descriptors to its tasks" {
	command -v make >/dev/null || skip "no make"
	printf 'all:\n\t+@$(CPMAP) -j2 sh -c %s ::: 1\n' \
		"'echo \$\$MAKEFLAGS; ls /proc/\$\$\$\$/fd'" >"$S/Makefile"
	run timeout 60 make -s -j2 -C "$S" CPMAP="$CPMAP"
	assert_success
	[[ ${lines[0]} =~ --jobserver-auth=([0-9]+),([0-9]+) ]]
	assert_line "${BASH_REMATCH[1]}"
	assert_line "${BASH_REMATCH[2]}"
}

@test "a recipe not marked '+' has no descriptors: cpmap warns once and runs alone" {
	command -v make >/dev/null || skip "no make"
	printf 'all:\n\t@$(CPMAP) -j2 echo ::: 1 2 3\n' >"$S/Makefile"
	run --separate-stderr timeout 60 make -s -j2 -C "$S" CPMAP="$CPMAP"
	assert_success
	same "tasks" "$(sort <<<"$output" | tr '\n' ' ')" "1 2 3 "
	[[ $stderr == *"not the two ends of a pipe (mark the recipe with '+')"* ]]
	same "warnings" "$(grep -c jobserver <<<"$stderr")" 1
}

@test "a recipe not marked '+' that asks cpmap for no run (--completion, --help, --version) gets no warning" {
	command -v make >/dev/null || skip "no make"
	printf 'all:\n\t@$(CPMAP) --completion bash >/dev/null\n\t@$(CPMAP) --help >/dev/null\n\t@$(CPMAP) --version >/dev/null\n' >"$S/Makefile"
	run --separate-stderr timeout 60 make -s -j2 -C "$S" CPMAP="$CPMAP"
	assert_success
	same "stderr" "$stderr" ""
}

@test "the fifo style: 2 tokens, -j8: 3 tasks at once, the tokens back at the end" {
	jobserver 2
	BARRIER=3 run timeout 30 "$CPMAP" -j8 "$S/task" ::: $(seq 12)
	assert_success
	same "tasks run" "$(wc -l <"$S/counts")" 12
	same "most tasks at once" "$(most)" 3
	same "tokens" "$(bytes "$JS_FD")" 2
}

@test "no token: one task at a time; --jobserver no ignores the jobserver" {
	jobserver 0
	BARRIER=1 run timeout 30 "$CPMAP" -j4 "$S/task" ::: 1 2 3 4
	assert_success
	same "most tasks at once" "$(most)" 1
	rm "$S/counts" "$S/started"
	BARRIER=4 run timeout 30 "$CPMAP" --jobserver no -j4 "$S/task" ::: 1 2 3 4
	assert_success
	same "most tasks at once" "$(most)" 4
	same "tokens" "$(bytes "$JS_FD")" 0
}

@test "failed tasks and tasks killed by --timeout give their tokens back" {
	jobserver 2
	run timeout 30 "$CPMAP" -j3 --timeout 300ms --kill-after 100ms \
		fifo-wait -s "$S/started" "$S/gate" ::: 1 2 3
	same "status" "$status" 3
	same "tokens" "$(bytes "$JS_FD")" 2
	run timeout 30 "$CPMAP" -j3 --retries 1 sh -c 'exit 4' ::: 1 2 3 4 5
	same "status" "$status" 5
	same "tokens" "$(bytes "$JS_FD")" 2
}

@test "SIGINT and SIGTERM: the tasks stop and every token goes back" {
	local sig
	jobserver 2
	for sig in INT TERM; do
		rm -f "$S/started"
		bg_cpmap -j3 fifo-wait -s "$S/started" "$S/gate" ::: 1 2 3 4
		wait-lines "$S/started" 3
		same "tokens taken" "$(bytes "$JS_FD")" 0
		kill -"$sig" "$PID"
		finish
		same "$sig: status" "$status" $((128 + $(kill -l "$sig")))
		same "$sig: tokens" "$(bytes "$JS_FD")" 2
	done
}

@test "a bad --jobserver-auth is warned about once and ignored" {
	local auth
	for auth in 97,98 x,y fifo:"$S/none"; do
		MAKEFLAGS=" -j --jobserver-auth=$auth" run --separate-stderr \
			timeout 30 "$CPMAP" -j2 echo ::: 1 2
		assert_success
		same "$auth: tasks" "$(sort <<<"$output" | tr '\n' ' ')" "1 2 "
		same "$auth: warnings" "$(grep -c 'jobserver' <<<"$stderr")" 1
	done
}

@test "--jobserver-slots 3: nested cpmap runs share 3 tokens, MAKEFLAGS names the fifo, nothing is left" {
	mkdir "$S/tmp"
	BARRIER=3 TMPDIR=$S/tmp run timeout 30 "$CPMAP" --jobserver-slots 3 \
		-j4 sh -c '"$CPMAP" -j4 "$S/task" ::: a b c d' ::: 1 2 3
	assert_success
	same "tasks run" "$(wc -l <"$S/counts")" 12
	same "most tasks at once" "$(most)" 3
	same "what is left in TMPDIR" "$(ls -A "$S/tmp")" ""
	TMPDIR=$S/tmp run timeout 30 "$CPMAP" --jobserver-slots 2 \
		sh -c 'echo "$MAKEFLAGS"' ::: 1
	assert_success
	assert_output --regexp "^ -j --jobserver-auth=fifo:$S/tmp/cpmap-jobserver\.[^/]+/fifo\$"
	same "what is left in TMPDIR" "$(ls -A "$S/tmp")" ""
}

@test "--jobserver-slots under make: its own budget, other flags kept" {
	mkdir "$S/tmp"
	MAKEFLAGS="k -j4 --jobserver-auth=3,4 -- V=1" TMPDIR=$S/tmp run \
		--separate-stderr timeout 30 "$CPMAP" --jobserver-slots 2 \
		sh -c 'echo "$MAKEFLAGS"' ::: 1
	assert_success
	assert_output --regexp "^k -j --jobserver-auth=fifo:[^ ]+ -- V=1\$"
}

@test "--jobserver and --jobserver-slots: usage errors" {
	run "$CPMAP" --jobserver maybe true ::: 1
	same "status" "$status" 255
	assert_output --partial "--jobserver: 'maybe': say auto or no"
	run "$CPMAP" --jobserver-slots 0 true ::: 1
	same "status" "$status" 255
}
