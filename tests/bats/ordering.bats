#!/usr/bin/env bats
# ordering.bats - the order in which results are written: -k, the default
# (as tasks finish), --buffer and --line-buffer with -k.
#
# The order of events is forced with FIFO gates: task 1 blocks in fifo-wait
# until the test has seen the later tasks finish (wait_lines on the files
# they append to), and only then lets it go.

load helpers

setup() {
	setup_scratch
	S=$SCRATCH
	export S
	mkfifo "$S/gate"
}

teardown() {
	kill_test_processes
}

# Task 1 blocks on the gate; the others print their input, then say so.
blocked_head_task() {
	task 'echo "$1" >>"$S/started"
if [ "$1" = 1 ]; then exec fifo-wait "$S/gate" 0 one; fi
echo "$1"
echo "$1" >>"$S/done"'
}

@test "-k writes results in input order even when later tasks finish first" {
	blocked_head_task
	seq 3 >"$S/in"
	bg_cpmap -k -j3 "$S/task"
	wait_lines "$S/done" 2
	wait_lines "$S/started" 3
	release "$S/gate"
	finish
	same status "$status" 0
	same stdout "$(cat "$S/out")" "one
2
3"
	empty stderr "$S/err"
}

@test "-k holds finished results back while the head task runs" {
	blocked_head_task
	seq 3 >"$S/in"
	bg_cpmap -k -j3 "$S/task"
	wait_lines "$S/done" 2
	wait_lines "$S/started" 3
	# Tasks 2 and 3 are over but may not be written before task 1.
	empty stdout "$S/out"
	release "$S/gate"
	finish
	same status "$status" 0
	same stdout "$(cat "$S/out")" "one
2
3"
}

@test "without -k results are written as tasks finish" {
	blocked_head_task
	seq 3 >"$S/in"
	bg_cpmap -j3 "$S/task"
	# Tasks 2 and 3 reach cpmap's stdout while task 1 is still blocked.
	wait_lines "$S/out" 2
	same "sort out" "$(sort "$S/out")" "2
3"
	release "$S/gate"
	finish
	same status "$status" 0
	same "sed -n 3p out" "$(sed -n 3p "$S/out")" one
	same "wc -l out" "$(wc -l <"$S/out")" 3
}

@test "--unordered undoes an earlier -k" {
	blocked_head_task
	seq 3 >"$S/in"
	bg_cpmap -k --unordered -j3 "$S/task"
	wait_lines "$S/out" 2
	release "$S/gate"
	finish
	same status "$status" 0
	same "sed -n 3p out" "$(sed -n 3p "$S/out")" one
}

@test "-k with --buffer 3 starts no more than 3 tasks while the head task is blocked" {
	blocked_head_task
	seq 10 >"$S/in"
	bg_cpmap -k -j10 --buffer 3 "$S/task"
	wait_lines "$S/started" 3
	wait_lines "$S/done" 2
	# Tasks 2 and 3 are done but unwritten: the buffer is full, so task 4
	# must not start before task 1 is released.  Mark that moment.
	echo SENTINEL >>"$S/started"
	release "$S/gate"
	finish
	same status "$status" 0
	same stdout "$(cat "$S/out")" "one
$(seq 2 10)"
	same "head -3 started | sort -n" "$(head -3 "$S/started" | sort -n)" "$(seq 3)"
	same "sed -n 4p started" "$(sed -n 4p "$S/started")" SENTINEL
	same "tail -n +5 started | sort -n" "$(tail -n +5 "$S/started" | sort -n)" "$(seq 4 10)"
}

@test "--buffer 1 with -k runs one task at a time whatever -j says" {
	task 'echo "$1" >>"$S/started"; echo "$1"'
	seq 5 >"$S/in"
	run timeout 20 "$CPMAP" -k -j4 --buffer 1 "$S/task" <"$S/in"
	same status "$status" 0
	same output "$output" "$(seq 5)"
	# One at a time: the tasks started in input order.
	same started "$(cat "$S/started")" "$(seq 5)"
}

@test "without -k a blocked task holds back only its own place in --buffer" {
	blocked_head_task
	seq 10 >"$S/in"
	bg_cpmap -j10 --buffer 3 "$S/task"
	# Written results free their places: all ten start while task 1 waits.
	wait_lines "$S/started" 10
	wait_lines "$S/out" 9
	release "$S/gate"
	finish
	same status "$status" 0
	same "head -9 out | sort -n" "$(head -9 "$S/out" | sort -n)" "$(seq 2 10)"
	same "sed -n '10,\$p' out" "$(sed -n '10,$p' "$S/out")" one
}

@test "--line-buffer with -k streams the head task's lines while it runs" {
	task 'if [ "$1" = 1 ]; then
	echo 1-first
	fifo-wait "$S/gate"
	echo 1-last
else
	echo "$1"
	echo "$1" >>"$S/done"
fi'
	seq 3 >"$S/in"
	bg_cpmap -k --line-buffer -j3 "$S/task"
	wait_lines "$S/out" 1
	wait_lines "$S/done" 2
	# The head task's first line is out; tasks 2 and 3 wait their turn.
	same stdout "$(cat "$S/out")" 1-first
	release "$S/gate"
	finish
	same status "$status" 0
	same stdout "$(cat "$S/out")" "1-first
1-last
2
3"
}

@test "--line-buffer with -k streams each task in turn once the head is written" {
	mkfifo "$S/gate2"
	task 'case $1 in
1) echo 1-a; fifo-wait "$S/gate"; echo 1-b ;;
2) echo 2-a; echo 2 >>"$S/done"; fifo-wait "$S/gate2"; echo 2-b ;;
esac'
	printf '1\n2\n' >"$S/in"
	bg_cpmap -k --line-buffer -j2 "$S/task"
	wait_lines "$S/out" 1
	wait_lines "$S/done" 1
	release "$S/gate"
	# Task 1 is written; task 2 is now the head: its held line and then
	# its live lines come out while it is still blocked.
	wait_lines "$S/out" 3
	same stdout "$(cat "$S/out")" "1-a
1-b
2-a"
	release "$S/gate2"
	finish
	same status "$status" 0
	same stdout "$(cat "$S/out")" "1-a
1-b
2-a
2-b"
}

@test "--dry-run -k prints the commands in input order" {
	run timeout 20 "$CPMAP" --dry-run -k -j4 echo ::: a b c d e
	same status "$status" 0
	same output "$output" "echo a
echo b
echo c
echo d
echo e"
}
