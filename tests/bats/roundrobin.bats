#!/usr/bin/env bats
# roundrobin.bats - --pipe --round-robin: -j long-lived tasks, each fed
# block after block, the next block to whichever can take it.
#
# The promise checked everywhere: what the tasks read, put together, is
# every record of the input exactly once, none split; a task that does not
# read gets no more blocks; output lines are whole; a task that ends before
# its stdin does fails, and says what it had.  Timing comes from FIFO gates
# and marker files, never sleep.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	setup_scratch
	S=$SCRATCH
	export S
	# Each task keeps its stdin in $S/r.SEQ.
	task 'cat > "$S/r.$CPMAP_SEQ"'
}

teardown() {
	kill_test_processes 2>/dev/null || true
}

# same_records INPUT: the tasks' files hold INPUT's lines, each once, and
# each file is whole lines.
same_records() {
	local f
	for f in "$S"/r.*; do
		[ ! -s "$f" ] || [ "$(tail -c1 "$f" | od -An -to1 | tr -d ' ')" = 012 ]
	done
	sort "$S"/r.* >"$S/got"
	sort "$1" >"$S/want"
	cmp "$S/want" "$S/got"
}

@test "--round-robin: every record reaches exactly one of -j tasks" {
	seq 1 200000 >"$S/in"
	run cpmap -j3 --pipe --round-robin --block 4k "$S/task" <"$S/in"
	assert_success
	same_records "$S/in"
	# -j3 long-lived tasks, not a task a block
	same "tasks" "$(ls "$S" | grep -c '^r\.')" 3
}

@test "--round-robin with --pipe-part, and from a pipe" {
	seq 1 200000 >"$S/in"
	run cpmap -j2 --pipe-part -a "$S/in" --round-robin --block 4k "$S/task"
	assert_success
	same_records "$S/in"
	same "tasks" "$(ls "$S" | grep -c '^r\.')" 2
	rm "$S"/r.*
	run bash -c 'cat "$S/in" | "$CPMAP" -j3 --pipe --round-robin --block 1k "$S/task"'
	assert_success
	same_records "$S/in"
}

@test "--round-robin --json: a record per task, with the blocks and bytes it got" {
	seq 1 100000 >"$S/in"
	run cpmap -j2 --pipe --round-robin --block 2k --json wc -l <"$S/in"
	assert_success
	same "records" "$(wc -l <<<"$output")" 2
	# the bytes add up to the input, the counted lines too
	same "bytes" "$(jq -s 'map(.input.bytes) | add' <<<"$output")" "$(wc -c <"$S/in")"
	same "lines" "$(jq -s 'map(.stdout | tonumber) | add' <<<"$output")" 100000
	[ "$(jq -s 'map(.input.blocks) | add' <<<"$output")" -gt 100 ]
}

@test "--round-robin: a task that does not read gets fewer blocks; the others take them" {
	# 15 MB: far more than a task's stdin pipe and cpmap's own can hold.
	seq 1 2000000 >"$S/in"
	mkfifo "$S/gate"
	task 'if [ "$CPMAP_SEQ" = 1 ]; then read x <"$S/gate"; fi; wc -l >"$S/n.$CPMAP_SEQ"'
	# Task 1 reads nothing until the whole input has gone into cpmap's
	# stdin, which happens only if task 2 takes the blocks meanwhile.
	run timeout 60 bash -c '{ cat "$S/in"; echo go >"$S/gate"; } |
		"$CPMAP" -j2 --pipe --round-robin --block 4k "$S/task"'
	assert_success
	n1=$(cat "$S/n.1") n2=$(cat "$S/n.2")
	same "lines in all" "$((n1 + n2))" 2000000
	# Task 1 got at most its pipe and its share of what was left (a few
	# MB); task 2 the rest.
	[ "$n1" -lt 700000 ] || { echo "task 1 got $n1 lines, task 2 $n2" >&2; false; }
}

@test "--round-robin: output lines are whole, never mixed" {
	seq 1 30000 >"$S/in"
	# Each line written in two pieces, flushed between them.
	run cpmap -j3 --pipe --round-robin --block 1k \
		awk '{ printf "%s", $0; fflush(); printf "-%s\n", $0; fflush() }' <"$S/in"
	assert_success
	same "lines" "$(wc -l <<<"$output")" 30000
	same "mixed lines" "$(awk -F- '$1 != $2 || NF != 2' <<<"$output" | head -3)" ""
	same "records" "$(cut -d- -f1 <<<"$output" | sort -n | md5sum)" "$(md5sum <"$S/in")"
}

@test "--round-robin -k: each task's output whole, in task order" {
	seq 1 50000 >"$S/in"
	task 'sed "s/^/$CPMAP_SEQ /"'
	run cpmap -j3 -k --pipe --round-robin --block 1k "$S/task" <"$S/in"
	assert_success
	# the task numbers never go down, and they are 1 2 3
	same "task order" "$(cut -d' ' -f1 <<<"$output" | uniq | tr '\n' ' ')" "1 2 3 "
	same "records" "$(cut -d' ' -f2 <<<"$output" | sort -n | md5sum)" "$(md5sum <"$S/in")"
}

@test "--round-robin -j1: one task reads everything" {
	seq 1 100000 >"$S/in"
	run cpmap -j1 --pipe --round-robin --block 1k "$S/task" <"$S/in"
	assert_success
	same "tasks" "$(ls "$S" | grep -c '^r\.')" 1
	cmp "$S/in" "$S/r.1"
}

@test "--round-robin: empty input runs no task; fewer blocks than -j run fewer tasks" {
	run cpmap -j4 --pipe --round-robin "$S/task" </dev/null
	assert_success
	same "tasks" "$(ls "$S" | grep -c '^r\.')" 0
	seq 1 10 >"$S/in"
	run cpmap -j4 --pipe --round-robin --block 1k "$S/task" <"$S/in"
	assert_success
	same "tasks" "$(ls "$S" | grep -c '^r\.')" 1
	cmp "$S/in" "$S/r.1"
}

@test "--round-robin --header 1: each task gets the header once, first" {
	{ echo name; seq 1 20000; } >"$S/in"
	run cpmap -j2 --pipe --round-robin --header 1 --block 1k "$S/task" <"$S/in"
	assert_success
	for f in "$S"/r.*; do
		same "$f's first line" "$(head -1 "$f")" name
		same "$f's headers" "$(grep -c name "$f")" 1
	done
	same "records" "$(cat "$S"/r.* | grep -v name | sort -n | md5sum)" "$(seq 1 20000 | md5sum)"
}

@test "--round-robin: a task that ends before its input does fails, and says what it had" {
	seq 1 100000 >"$S/part1"
	seq 100001 200000 >"$S/part2"
	# Task 1 reads a little and leaves; only then does the rest come.
	task 'if [ "$CPMAP_SEQ" = 1 ]; then head -c 100 >/dev/null; echo gone >"$S/left"; exit 0; fi
cat >"$S/r.$CPMAP_SEQ"'
	run -1 timeout 60 bash -c '{ cat "$S/part1"; wait-lines "$S/left" 1; cat "$S/part2"; } |
		"$CPMAP" -j2 --pipe --round-robin --block 4k "$S/task"'
	assert_output --partial "task 1 (input stream 1): its stdin was cut short"
	# The tasks after it read everything that came after it left.
	cat "$S"/r.* | sort -n | tail -100000 | cmp - "$S/part2"
}

@test "--round-robin: usage errors" {
	run cpmap --round-robin wc -l </dev/null
	[ "$status" -eq 255 ]
	assert_output --partial "need --pipe"
	run cpmap --pipe --round-robin --retries 2 wc -l </dev/null
	[ "$status" -eq 255 ]
	assert_output --partial "--round-robin does not combine with --retries"
}

@test "--round-robin --dry-run: prints the commands and ends" {
	seq 1 100000 >"$S/in"
	run timeout 20 "$CPMAP" -j2 --pipe --round-robin --block 100k --dry-run wc -l <"$S/in"
	assert_success
	[ "$(grep -c '^wc -l$' <<<"$output")" -ge 2 ]
}
