#!/usr/bin/env bats
# trace.bats - CPMAP_DEBUG=FILE: one line per lifecycle step (spawn with
# pid and argv[0], batch sent, answer, exit, lost, requeue, result, worker
# up), so that a failing run can be read afterwards; without it, no file.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	setup_scratch
	S=$SCRATCH
}

teardown() {
	kill_test_processes
}

@test "CPMAP_DEBUG traces spawns, exits and results of local tasks" {
	run --separate-stderr env CPMAP_DEBUG="$S/trace" "$CPMAP" -j1 -k sh -c 'exit $1' sh ::: 0 3
	same status "$status" 1
	grep -q '^ *[0-9.]* cpmap .*: pid [0-9]*$' "$S/trace"
	grep -q 'worker local up: 1 slots, 1 places each' "$S/trace"
	same "spawns" "$(grep -c 'spawn pid [0-9]*: sh (seq [12], slot 1)' "$S/trace")" 2
	grep -q 'exit pid [0-9]*: status 3 signal 0' "$S/trace"
	grep -q 'result seq 2: status 1 exit 3 signal 0' "$S/trace"
	# Lines are in time order.
	same "time order" "$(awk '{print $1}' "$S/trace" | sort -c -n && echo sorted)" sorted
}

@test "CPMAP_DEBUG traces a persistent worker's batches, answers, its death and the requeue of what it held" {
	# A worker that answers one line, then dies holding the others.
	printf '#!/bin/sh\nread -r l; echo "$l"; read -r l; exit 9\n' >"$S/w"
	chmod +x "$S/w"
	run --separate-stderr env CPMAP_DEBUG="$S/trace" "$CPMAP" -j1 --persist --stride 4 "$S/w" ::: a b c d
	grep -q 'batch to slot 1: [0-9]* bytes' "$S/trace"
	grep -q 'answer seq 1 at slot 1' "$S/trace"
	grep -q 'exit session pid [0-9]* at slot 1' "$S/trace"
	grep -q 'lost seq [34] at slot 1' "$S/trace"
	grep -q 'requeue seq [34] (lost 1 times' "$S/trace"
}

@test "without CPMAP_DEBUG no trace is written; an unwritable one is one warning" {
	cd "$S"
	run --separate-stderr "$CPMAP" echo ::: a
	same output "$output" a
	same "files" "$(ls -A "$S")" ""
	run --separate-stderr env CPMAP_DEBUG="$S/no/such/dir/trace" "$CPMAP" echo ::: a
	same status "$status" 0
	same output "$output" a
	same stderr "$stderr" "cpmap: cannot write the trace to $S/no/such/dir/trace: No such file or directory"
}
