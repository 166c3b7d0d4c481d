#!/usr/bin/env bats
# throttle.bats - --load, --memfree and --nice.
#
# The machine's real load and memory never decide anything here: cpmap
# reads them from $CPMAP_PROC, a directory the test fills.  A file the test
# must change while cpmap runs is a FIFO fed by a writer loop that serves
# the current value ($S/now.NAME) and logs each reading in $S/reads.NAME,
# so the test knows how many readings cpmap has taken.  Nothing sleeps.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	setup_scratch
	S=$SCRATCH
	export S
	mkdir "$S/proc"
	export CPMAP_PROC=$S/proc
	unset MAKEFLAGS MFLAGS MAKELEVEL
	mkfifo "$S/gate" "$S/gate2"
	printf '0.00 0.00 0.00 1/100 1\n' >"$S/proc/loadavg"
	printf 'cpu 1 2 3 4\nprocs_running 1\nprocs_blocked 0\n' >"$S/proc/stat"
	printf 'MemTotal: 8000000 kB\nMemAvailable: 4000000 kB\n' >"$S/proc/meminfo"
	WRITERS=()
}

teardown() {
	local w
	# A writer's child may be blocked opening its FIFO, before its exec:
	# it has no $S/ in its command line to be found by.
	for w in "${WRITERS[@]}"; do
		pkill -KILL -P "$w" 2>/dev/null
	done
	kill_test_processes "${WRITERS[@]}"
	true
}

# serve NAME TEXT: $CPMAP_PROC/NAME becomes a FIFO that gives TEXT (until
# set changes it), one reading at a time, each counted in $S/reads.NAME.
serve() {
	rm -f "$S/proc/$1"
	mkfifo "$S/proc/$1"
	printf '%s\n' "$2" >"$S/now.$1"
	: >"$S/reads.$1"
	(
		while :; do
			cat "$S/now.$1" >"$S/proc/$1" || exit
			echo >>"$S/reads.$1"
		done
	) </dev/null >/dev/null 2>&1 3>&- &
	WRITERS+=($!)
}

# set NAME TEXT: what the next readings of NAME give.
set_value() {
	printf '%s\n' "$2" >"$S/now.$1.new"
	mv "$S/now.$1.new" "$S/now.$1"
}

# readings NAME N: wait until cpmap has taken N readings of NAME.
readings() {
	wait-lines "$S/reads.$1" "$2"
}

@test "--load: no task starts while the load average is above MAX" {
	serve loadavg '3.50 1.00 1.00 1/100 1'
	bg_cpmap --load 2 -j2 sh -c 'echo "$1" >>"$S/ran"' sh ::: a b
	# Two readings said "too high": no task has started.
	readings loadavg 3
	[ ! -e "$S/ran" ]
	set_value loadavg '1.50 1.00 1.00 1/100 1'
	finish
	assert_success
	same "tasks run" "$(sort "$S/ran" | tr '\n' ' ')" "a b "
}

@test "--load: no task starts while more processes run than MAX (cpmap itself not counted)" {
	serve stat 'procs_running 4'
	bg_cpmap --load 2 -j2 sh -c 'echo "$1" >>"$S/ran"' sh ::: a b
	readings stat 3
	[ ! -e "$S/ran" ]
	set_value stat 'procs_running 3'
	finish
	assert_success
	same "tasks run" "$(sort "$S/ran" | tr '\n' ' ')" "a b "
}

@test "--load N%: a share of the CPUs; a load at MAX is not above it" {
	local cpus
	cpus=$(nproc)
	printf '%s.00 0 0 1/1 1\n' "$cpus" >"$S/proc/loadavg"
	run timeout 20 "$CPMAP" --load 100% echo ::: 1
	assert_success
	assert_output 1
}

@test "--memfree: no task starts while less memory is available" {
	serve meminfo 'MemAvailable: 1000 kB'
	bg_cpmap --memfree 2M -j2 sh -c 'echo "$1" >>"$S/ran"' sh ::: a b
	readings meminfo 3
	[ ! -e "$S/ran" ]
	set_value meminfo 'MemAvailable: 3000 kB'
	finish
	assert_success
	same "tasks run" "$(sort "$S/ran" | tr '\n' ' ')" "a b "
}

@test "--memfree: below half, the youngest task is stopped and run again; not a failure" {
	serve meminfo 'MemAvailable: 4000 kB'
	# Task a starts first and waits on gate; b starts second and waits
	# on gate2 the first time, and the second time goes at once.
	cat >"$S/task" <<-'EOF'
		#!/bin/sh
		echo "$1" >>"$S/started"
		if [ "$1" = a ]; then exec fifo-wait "$S/gate" 0 a; fi
		[ -e "$S/b.once" ] && { echo b; exit 0; }
		touch "$S/b.once"
		exec fifo-wait "$S/gate2" 0 b
	EOF
	chmod +x "$S/task"
	bg_cpmap --memfree 2M --joblog "$S/log" -j2 "$S/task" ::: a b
	wait-lines "$S/started" 2
	set_value meminfo 'MemAvailable: 900 kB'
	# b is stopped, and waits for memory to come back.
	wait-lines "$S/err" 1
	set_value meminfo 'MemAvailable: 3000 kB'
	wait-lines "$S/started" 3
	release "$S/gate"
	finish
	assert_success
	same "started" "$(sort "$S/started" | tr '\n' ' ')" "a b b "
	same "output" "$(sort <<<"$output" | tr '\n' ' ')" "a b "
	assert_equal "$(grep -c 'under half of --memfree: stopping the youngest' <<<"$stderr")" 1
	# Each task is logged once, as a success.
	same "joblog" "$(awk 'NR > 1 { print $7 }' "$S/log" | tr '\n' ' ')" "0 0 "
}

@test "--nice N: tasks run at niceness N" {
	local now want
	now=$(nice)
	want=$((now < 17 ? now + 2 : 19))
	run timeout 20 "$CPMAP" --nice "$want" sh -c 'nice' ::: 1
	assert_success
	assert_output "$want"
}

@test "--load, --memfree, --nice: usage errors" {
	local args
	while IFS='|' read -r args want; do
		# shellcheck disable=SC2086 # the words are the arguments
		run "$CPMAP" $args true ::: 1
		same "$args: status" "$status" 255
		assert_output --partial "$want"
	done <<-'EOF'
		--load x|--load: 'x' is not a positive number or percentage
		--load 0|--load: '0' is not a positive number or percentage
		--load -1|--load: '-1' is not a positive number or percentage
		--memfree 0|--memfree: '0' is not a positive size
		--nice 20|--nice: 20 is out of range (-20 to 19)
		--nice x|--nice: 'x' is not a number
	EOF
}

@test "an unreadable CPMAP_PROC holds nothing back, said once" {
	CPMAP_PROC=$S/none run --separate-stderr timeout 20 "$CPMAP" \
		--load 1 --memfree 1k -j1 echo ::: 1 2 3
	assert_success
	same "output" "$(tr '\n' ' ' <<<"$output")" "1 2 3 "
	same "warnings" "$(grep -c 'cannot read' <<<"$stderr")" 3
}
