#!/usr/bin/env bats
# faults.bats - cpmap when the world misbehaves: a full disk under the
# joblog or the spill files, an odd $TMPDIR, descriptors that must not leak
# into tasks, a grandchild that keeps the output pipe open, a task that
# leaves its stdin unread.
#
# The disk-full tests mount a 64 KiB tmpfs; they are skipped where mounting
# is not permitted.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	setup_scratch
	S=$SCRATCH
	export S
	mkfifo "$S/gate"
}

teardown() {
	kill_test_processes
	if [ -n "${DISK:-}" ] && mountpoint -q "$DISK"; then
		umount "$DISK" 2>/dev/null || umount -l "$DISK"
	fi
	true
}

# small_disk: mount a 64 KiB tmpfs on $S/disk (its path in $DISK), or skip.
small_disk() {
	DISK=$S/disk
	mkdir "$DISK"
	mount -t tmpfs -o size=64k tmpfs "$DISK" 2>/dev/null ||
		{ DISK=; skip "mounting a tmpfs is not permitted here (needs root or CAP_SYS_ADMIN)"; }
}

# ---- a full disk -----------------------------------------------------------

@test "a joblog on a full disk stops the run with status 255 and leaves whole lines" {
	small_disk
	# Lines of about 1 KiB: 300 of them do not fit in 64 KiB.
	local long
	long=$(printf '%01000d' 0)
	seq 300 >"$S/in"
	run --separate-stderr timeout 20 "$CPMAP" -j2 --joblog "$DISK/log" \
		echo {} "$long" <"$S/in"
	same status "$status" 255
	grep -Fxq "cpmap: --joblog: $DISK/log: No space left on device" <<<"$stderr" ||
		{ echo "stderr: $stderr" >&2; false; }
	grep -Fxq "cpmap: stopping: the joblog cannot be written" <<<"$stderr" ||
		{ echo "stderr: $stderr" >&2; false; }
	# Whole lines only: 9 fields each, a newline at the very end.
	local logged
	logged=$(wc -l <"$DISK/log")
	((logged > 2 && logged < 301))
	same "last byte of the log" "$(tail -c 1 "$DISK/log" | od -An -tx1 | tr -d ' ')" 0a
	same "malformed lines" "$(awk -F'\t' 'NF != 9' "$DISK/log")" ""
	# And --resume reads it without a complaint and does the rest.
	cp "$DISK/log" "$S/log"
	run --separate-stderr timeout 20 "$CPMAP" -j2 --joblog "$S/log" --resume \
		echo {} "$long" <"$S/in"
	same "resumed: status" "$status" 0
	same "resumed: stderr" "$stderr" ""
	same "resumed: tasks run" "${#lines[@]}" "$((300 - (logged - 1)))"
	same "all logged" "$(tail -n +2 "$S/log" | cut -f1 | sort -n)" "$(seq 300)"
}

@test "a spill to a full \$TMPDIR stops the run with status 255, without a crash" {
	small_disk
	run --separate-stderr env TMPDIR="$DISK" timeout 20 "$CPMAP" \
		head -c 2000000 /dev/zero ::: a
	same status "$status" 255
	same stderr "$stderr" "cpmap: cannot spill output to a temporary file: No space left on device
cpmap: stopping: task output cannot be kept"
	same "left in TMPDIR" "$(ls -A "$DISK")" ""
}

@test "a failed spill stops the other running tasks too" {
	small_disk
	task 'case $1 in
big) wait-lines "$S/started" 1; head -c 2000000 /dev/zero ;;
*) exec fifo-wait -s "$S/started" "$S/gate" ;;
esac'
	run --separate-stderr env TMPDIR="$DISK" timeout 20 "$CPMAP" -j2 \
		"$S/task" ::: big blocked
	same status "$status" 255
	same stderr "$stderr" "cpmap: cannot spill output to a temporary file: No space left on device
cpmap: stopping: task output cannot be kept"
	gone $(cut -d' ' -f1 "$S/started")
	no_leftovers "$S/gate"
	same "left in TMPDIR" "$(ls -A "$DISK")" ""
}

# ---- spill files ---------------------------------------------------------

@test "spill files go to a \$TMPDIR named with spaces, quotes, a backtick and a newline, and vanish" {
	local dir="$S/tmp dir \"q\" 'q' \`b\` \$(x)"$'\nline2'
	mkdir "$dir"
	# Task "big" writes 2 MB (past the 1 MiB spill point) and blocks: while
	# it is blocked, cpmap holds an unlinked file in $dir.
	task 'case $1 in
big) head -c 2000000 "$S/data"; echo "$$ $PPID" >>"$S/started"; exec fifo-wait "$S/gate" ;;
*) echo "$1" ;;
esac'
	head -c 2000000 /dev/urandom >"$S/data"
	TMPDIR=$dir bg_cpmap -k -j2 "$S/task" ::: big small
	wait_lines "$S/started" 1
	local cpmap_pid fd target found=
	cpmap_pid=$(cut -d' ' -f2 "$S/started")
	for fd in /proc/"$cpmap_pid"/fd/*; do
		target=$(readlink "$fd") || continue
		[[ $target == "$dir/cpmap."*" (deleted)" ]] && found=1
	done
	[ -n "$found" ] || { ls -l /proc/"$cpmap_pid"/fd >&2; false; }
	same "left in TMPDIR while running" "$(ls -A "$dir")" ""
	release "$S/gate"
	finish
	same status "$status" 0
	same stderr "$(cat "$S/err")" ""
	{ cat "$S/data"; echo small; } | cmp - "$S/out"
	same "left in TMPDIR" "$(ls -A "$dir")" ""
}

# ---- descriptors -----------------------------------------------------------

@test "tasks inherit no descriptor but 0, 1 and 2" {
	# cpmap itself inherits 7, 8 and 9 (not close-on-exec), holds its
	# joblog, and a spill file of task 1 while task 2 looks.  (sh -c, not
	# a script: a shell keeps its script file open.)
	local body='case $1 in
big) head -c 2000000 /dev/zero; echo "$$" >>"$S/started"; exec fifo-wait "$S/gate" ;;
esac
wait-lines "$S/started" 1
ls /proc/$$/fd
echo "$$" >>"$S/started"'
	bg_cpmap -j2 --joblog "$S/log" --json sh -c "$body" sh ::: big look \
		7</dev/null 8>"$S/x" 9<>"$S/y"
	wait_lines "$S/started" 2
	release "$S/gate"
	finish
	same status "$status" 0
	same "look's descriptors" "$(jq -r 'select(.input == "look") | .stdout' "$S/out")" "0
1
2"
}

@test "tasks inherit no descriptor but 0, 1 and 2 with --stdin, --timeout and shell mode" {
	run timeout 20 "$CPMAP" --stdin --timeout 10s --retries 1 \
		'ls /proc/$$/fd; :' ::: a 7</dev/null 8>"$S/x"
	same status "$status" 0
	same output "$output" "0
1
2"
}

# ---- stubborn tasks ------------------------------------------------------

@test "a grandchild holding the output pipe does not hang cpmap" {
	task 'fifo-wait -s "$S/started" "$S/gate" &
echo "task $1"'
	run --separate-stderr timeout 20 "$CPMAP" "$S/task" ::: a
	same status "$status" 0
	same stdout "$output" "task a"
	# The grandchild's process group was killed.
	gone $(cut -d' ' -f1 "$S/started")
	no_leftovers "$S/gate"
}

@test "a task that exits without reading its --stdin input does not break cpmap" {
	# A 10 MB input, then two small ones; head reads 5 bytes and exits.
	{
		head -c 10000000 /dev/zero | tr '\0' x
		printf '\nshort1\nab\n'
	} >"$S/in"
	run --separate-stderr timeout 20 "$CPMAP" -k --stdin head -c 5 <"$S/in"
	same status "$status" 0
	same stdout "$output" "xxxxxshortab"
	same stderr "$stderr" ""
	run --separate-stderr timeout 20 "$CPMAP" -k --stdin \
		sh -c 'echo "seq $CPMAP_SEQ"' <"$S/in"
	same status "$status" 0
	same stdout "$output" "seq 1
seq 2
seq 3"
}

# ---- the joblog never runs ahead of the output (issue 10, item 1) ---------

@test "a task whose output could not be written gets no joblog line, and --resume runs it" {
	run --separate-stderr timeout 20 sh -c \
		'seq 3 | "$1" -j1 --joblog "$2" echo >/dev/full' sh "$CPMAP" "$S/jl"
	same status "$status" 255
	same "logged" "$(tail -n +2 "$S/jl" | cut -f1)" ""
	run --separate-stderr timeout 20 sh -c \
		'seq 3 | "$1" -j1 --joblog "$2" --resume echo' sh "$CPMAP" "$S/jl"
	same status "$status" 0
	same stdout "$output" "1
2
3"
	same "logged" "$(tail -n +2 "$S/jl" | cut -f1 | sort -n)" "$(seq 3)"
}

@test "after a failed spill, a result written whole still gets its joblog line" {
	# Task 1 ignores the SIGTERM of the stop and succeeds once the run is
	# stopping; it is written, so it is logged, and --resume skips it.
	task 'case $1 in
big) wait-lines "$S/started" 1; head -c 2000000 /dev/zero ;;
small) trap "" TERM; echo $$ >>"$S/started"; wait-lines "$S/err" 2; echo small ;;
esac'
	TMPDIR=$S/missing bg_cpmap -k -j2 --joblog "$S/jl" "$S/task" ::: small big
	finish
	same status "$status" 255
	same stdout "$output" "small"
	same "logged" "$(tail -n +2 "$S/jl" | cut -f1)" "1"
	run --separate-stderr timeout 20 "$CPMAP" -k --joblog "$S/jl" --resume \
		sh -c 'echo "ran $1"' sh ::: small big
	same status "$status" 0
	same stdout "$output" "ran big"
}

# ---- no orphans (issue 10, item 6) ----------------------------------------

# within_a_second PID...: every PID is gone within about a second.
within_a_second() {
	local i pid
	for i in $(seq 20); do
		for pid; do
			alive "$pid" && break
			pid=
		done
		[ -z "$pid" ] && return 0
		sleep 0.05
	done
	for pid; do
		alive "$pid" && echo "process $pid outlived cpmap: $(tr '\0' ' ' <"/proc/$pid/cmdline")" >&2
	done
	return 1
}

@test "tasks started by cpmap die within a second of cpmap's SIGKILL" {
	bg_cpmap -j2 fifo-wait -s "$S/started" "$S/gate" ::: a b
	wait_lines "$S/started" 2
	kill -KILL "$PID"
	within_a_second $(cut -d' ' -f1 "$S/started")
}

@test "persistent workers die within a second of cpmap's SIGKILL, even when they ignore EOF" {
	# The worker never reads its stdin: EOF cannot be the backstop here.
	bg_cpmap -j2 --persist sh -c 'trap "" TERM HUP; exec fifo-wait -s "$0" "$1"' "$S/started" "$S/gate" ::: a b c d
	wait_lines "$S/started" 2
	kill -KILL "$PID"
	within_a_second $(cut -d' ' -f1 "$S/started")
}

# ---- few descriptors (issue 10, item 2) -----------------------------------

@test "a small soft limit on open files never crashes cpmap: it is raised first" {
	local n
	for n in 5 6 7 8; do
		# The input is a file: a pipe would need two more descriptors.
		echo x >"$S/x"
		run --separate-stderr timeout 20 bash -c \
			'ulimit -Sn "$1" && exec "$2" echo <"$3"' sh "$n" "$CPMAP" "$S/x" 3>&- 4>&-
		same "status at ulimit -Sn $n" "$status" 0
		same "stdout at ulimit -Sn $n" "$output" x
		same "stderr at ulimit -Sn $n" "$stderr" ""
	done
}

@test "too few descriptors even for one task: one message, status 255, no crash" {
	run --separate-stderr timeout 20 sh -c \
		'ulimit -n 10 && echo x | "$1" echo' sh "$CPMAP"
	same status "$status" 255
	same stdout "$output" ""
	same stderr "$stderr" "cpmap: too few file descriptors: the limit on open files is 10, cpmap needs at least 19 (ulimit -n)"
}

@test "with few descriptors, -j runs fewer tasks at once, with one warning naming the limit" {
	run --separate-stderr timeout 60 sh -c \
		'ulimit -n 40 && seq 500 | "$1" -j 20 sh -c "echo \$1" sh' sh "$CPMAP"
	same status "$status" 0
	same "tasks written" "${#lines[@]}" 500
	same stderr "$stderr" "cpmap: running 8 tasks at once, not 20: the limit on open files is 40 (ulimit -n)"
}

@test "-j 0 respects a limit on open files of 64 or less, and no task fails for want of one" {
	run --separate-stderr timeout 60 sh -c \
		'ulimit -n 64 && seq 3000 | "$1" -j 0 -v sh -c "echo \$1" sh 2>&1 >/dev/null | grep -v "^sh -c"; seq 3000 | "$1" -j 0 sh -c "echo \$1" sh' sh "$CPMAP"
	same status "$status" 0
	same "tasks written" "${#lines[@]}" 3001
	# -v says what -j 0 became (quiet without it, as GNU parallel).
	same "first line" "${lines[0]}" "cpmap: -j 0: running up to 16 tasks at once"
	same stderr "$stderr" ""
}

@test "--persist and --stdin with few descriptors: fewer slots, no task fails" {
	run --separate-stderr timeout 60 sh -c \
		'ulimit -n 30 && seq 300 | "$1" -j 20 --persist --stride 4 cat' sh "$CPMAP"
	same status "$status" 0
	same "tasks written" "${#lines[@]}" 300
	same stderr "$stderr" "cpmap: running 4 tasks at once, not 20: the limit on open files is 30 (ulimit -n)"
	run --separate-stderr timeout 60 sh -c \
		'ulimit -n 30 && seq 300 | "$1" -j 20 --stdin cat' sh "$CPMAP"
	same status "$status" 0
	same "tasks written" "${#lines[@]}" 300
}

# ---- coalesced writes (issue 12) ------------------------------------------

@test "coalesced: a failed write of a batch of several results logs none of them, and --resume runs them all" {
	# The 20 results of --persist cat come in a few batches; every write
	# to /dev/full fails.
	run --separate-stderr timeout 20 sh -c \
		'seq 20 | "$1" -k -j2 --joblog "$2" --persist cat >/dev/full' sh "$CPMAP" "$S/jl"
	same status "$status" 255
	same "logged" "$(tail -n +2 "$S/jl" | cut -f1)" ""
	run --separate-stderr timeout 20 sh -c \
		'seq 20 | "$1" -k -j2 --joblog "$2" --resume --persist cat' sh "$CPMAP" "$S/jl"
	same status "$status" 0
	same stdout "$output" "$(seq 20)"
	same "logged" "$(tail -n +2 "$S/jl" | cut -f1)" "$(seq 20)"
}

@test "coalesced: -u output is not held: a task's line is out while it runs" {
	task 'echo "first $1"; fifo-wait "$S/gate"; echo "second $1"'
	bg_cpmap -u -j2 --joblog "$S/jl" "$S/task" ::: a
	wait_lines "$S/out" 1
	same "so far" "$(cat "$S/out")" "first a"
	same "logged so far" "$(tail -n +2 "$S/jl")" ""
	release "$S/gate"
	finish
	same status "$status" 0
	same "logged" "$(tail -n +2 "$S/jl" | cut -f1)" 1
}
