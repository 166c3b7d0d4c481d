#!/usr/bin/env bats
# grouping.bats - the output of concurrent tasks never mixes: grouped
# output (the default), --tag, --line-buffer, -u, and huge outputs that
# spill to $TMPDIR.
#
# Interleaving is forced, not hoped for: task A writes part of its output
# and blocks on a FIFO gate, task B writes all of its output and ends, and
# only when B's output has reached cpmap's stdout does the test let A go.

load helpers

setup() {
	setup_scratch
	S=$SCRATCH
	export S
	mkfifo "$S/gate"
	# The task used by the interleaving tests (NOGATE=1: print, no wait).
	cat >"$S/task" <<'EOF'
#!/bin/sh
# long LETTER N: a line of N LETTERs written in pieces, without newline.
long() {
	n=$2
	while [ "$n" -gt 0 ]; do
		k=20000
		[ "$n" -lt "$k" ] && k=$n
		head -c "$k" /dev/zero | tr '\0' "$1"
		n=$((n - k))
	done
}
[ "${STREAM:-out}" = err ] && exec 1>&2
case $1 in
A)
	for i in $(seq 100); do echo "A $i"; done
	long A 100000
	echo
	if [ -z "${NOGATE:-}" ]; then
		echo A >>"$S/started"
		fifo-wait "$S/gate"
	fi
	for i in $(seq 101 200); do echo "A $i"; done
	long a 70000
	;;
B)
	for i in $(seq 100); do echo "B $i"; done
	long B 100000
	echo
	printf B-end
	[ -z "${B_NEWLINE:-}" ] || echo
	[ -n "${NOGATE:-}" ] || echo B >>"$S/done"
	;;
esac
EOF
	chmod +x "$S/task"
}

teardown() {
	kill_test_processes
}

# expected NAME: what task NAME writes, in one piece.
expected() {
	NOGATE=1 STREAM=out "$S/task" "$1"
}

@test "a task that writes in many pieces while another task ends is written in one piece" {
	printf 'A\nB\n' >"$S/in"
	bg_cpmap -j2 "$S/task"
	wait_lines "$S/started" 1
	wait_lines "$S/done" 1
	# B is over: its 101 newlines reach stdout before A is released.
	wait_lines "$S/out" 101
	release "$S/gate"
	finish
	same status "$status" 0
	{ expected B; expected A; } >"$S/want"
	cmp "$S/want" "$S/out"
	empty stderr "$S/err"
}

@test "stderr of concurrent tasks is grouped as well" {
	export STREAM=err
	printf 'A\nB\n' >"$S/in"
	bg_cpmap -j2 "$S/task"
	wait_lines "$S/started" 1
	wait_lines "$S/done" 1
	wait_lines "$S/err" 101
	release "$S/gate"
	finish
	same status "$status" 0
	{ expected B; expected A; } >"$S/want"
	cmp "$S/want" "$S/err"
	empty stdout "$S/out"
}

@test "-k writes each task in one piece, in input order" {
	printf 'A\nB\n' >"$S/in"
	bg_cpmap -k -j2 "$S/task"
	wait_lines "$S/started" 1
	wait_lines "$S/done" 1
	release "$S/gate"
	finish
	same status "$status" 0
	{ expected A; expected B; } >"$S/want"
	cmp "$S/want" "$S/out"
}

@test "many tasks writing many lines each: every task's lines are contiguous" {
	timeout 20 "$CPMAP" -j4 sh -c \
	    'i=0; while [ $i -lt 2000 ]; do i=$((i+1)); echo "$1 $i"; echo "$1 $i" >&2; done' \
	    sh ::: a b c d e f g h >"$S/out" 2>"$S/err"
	for f in out err; do
		same "$f: lines" "$(wc -l <"$S/$f")" 16000
		# Eight runs of one letter each, one per task.
		same "$f: runs of one letter" "$(cut -d' ' -f1 "$S/$f" | uniq | sort | tr -d '\n')" abcdefgh
		for t in a c h; do
			same "$f: task $t's lines" "$(grep "^$t " "$S/$f" | cut -d' ' -f2)" "$(seq 2000)"
		done
	done
}

@test "output without a trailing newline is written as is, the next task's output right after it" {
	run timeout 20 "$CPMAP" -k -j3 printf '%s' ::: x y z
	same status "$status" 0
	same output "$output" xyz
	timeout 20 "$CPMAP" -k -j3 sh -c 'printf "1 $1\n2 $1"' sh ::: x y >"$S/out"
	printf '1 x\n2 x1 y\n2 y' >"$S/want"
	cmp "$S/want" "$S/out"
}

@test "--tag prefixes every stdout and stderr line, a last line without newline too" {
	timeout 20 "$CPMAP" -k -j2 --tag sh -c 'printf "x\ny"; printf "e1\ne2" >&2' \
	    sh ::: a b >"$S/out" 2>"$S/err"
	printf 'a\tx\na\tyb\tx\nb\ty' >"$S/want"
	cmp "$S/want" "$S/out"
	printf 'a\te1\na\te2b\te1\nb\te2' >"$S/want"
	cmp "$S/want" "$S/err"
}

@test "--tag gives the same lines with --line-buffer and with -u" {
	for mode in --line-buffer -u; do
		timeout 20 "$CPMAP" -j1 $mode --tag \
		    sh -c 'printf "x\ny\n"; printf "e1\ne2\n" >&2' sh ::: a b \
		    >"$S/out" 2>"$S/err"
		printf 'a\tx\na\ty\nb\tx\nb\ty\n' >"$S/want"
		cmp "$S/want" "$S/out"
		printf 'a\te1\na\te2\nb\te1\nb\te2\n' >"$S/want"
		cmp "$S/want" "$S/err"
	done
}

@test "--tag with --chunk prefixes with the chunk's inputs joined by spaces" {
	timeout 20 "$CPMAP" -k -n2 --tag sh -c 'echo "$@"; echo "$#" >&2' \
	    sh ::: a b c >"$S/out" 2>"$S/err"
	printf 'a b\ta b\nc\tc\n' >"$S/want"
	cmp "$S/want" "$S/out"
	printf 'a b\t2\nc\t1\n' >"$S/want"
	cmp "$S/want" "$S/err"
}

@test "--tag prefixes every line of a big multi-line output" {
	run timeout 20 "$CPMAP" --tag sh -c 'seq 3000' sh ::: in
	same status "$status" 0
	same output "$output" "$(seq 3000 | sed 's/^/in\t/')"
}

@test "--line-buffer never writes half a line: a pending piece waits for its newline" {
	cat >"$S/lb" <<'EOF'
#!/bin/sh
case $1 in
A)
	printf A-part1
	printf %s -more
	echo A >>"$S/started"
	fifo-wait "$S/gate"
	printf '%s\n' -part2
	;;
B)
	echo B-line
	echo B >>"$S/done"
	;;
esac
EOF
	chmod +x "$S/lb"
	printf 'A\nB\n' >"$S/in"
	bg_cpmap --line-buffer -j2 "$S/lb"
	wait_lines "$S/started" 1
	wait_lines "$S/out" 1
	# A's unfinished line is not out; B's whole line is.
	same stdout "$(cat "$S/out")" B-line
	release "$S/gate"
	finish
	same status "$status" 0
	same stdout "$(cat "$S/out")" "B-line
A-part1-more-part2"
}

@test "--line-buffer keeps lines longer than 64 KiB whole" {
	# B's last line ends in a newline here: a task's unterminated last
	# line is written when it ends, and what follows is glued to it (as
	# in grouped mode and GNU parallel).
	export B_NEWLINE=1
	printf 'A\nB\n' >"$S/in"
	bg_cpmap --line-buffer -j2 "$S/task"
	wait_lines "$S/started" 1
	wait_lines "$S/done" 1
	# A's first 101 lines and B's 102 lines are whole: they are all out.
	wait_lines "$S/out" 203
	release "$S/gate"
	finish
	same status "$status" 0
	# Every line is a whole line of one task, in that task's order.
	{ expected A; echo; expected B; } | sort >"$S/want"
	{ cat "$S/out"; echo; } | sort >"$S/got"
	cmp "$S/want" "$S/got"
	same "A lines" "$(grep -c '^A ' "$S/out")" 200
	same "A's lines" "$(grep '^A ' "$S/out" | cut -d' ' -f2)" "$(seq 200)"
	same "B's lines" "$(grep '^B ' "$S/out" | cut -d' ' -f2)" "$(seq 100)"
}

@test "--line-buffer: two tasks writing lines in pieces at once give only whole lines" {
	run timeout 20 "$CPMAP" --line-buffer -j2 sh -c '
	    i=0
	    while [ $i -lt 500 ]; do
		i=$((i+1)); printf "%s " "$1"; printf "%s " "$i"; printf "%s\n" "end-$1"
	    done' sh ::: X Y
	same status "$status" 0
	same "number of lines" "${#lines[@]}" 1000
	printf '%s\n' "${lines[@]}" >"$S/got"
	# Every line is whole: LETTER NUMBER end-LETTER.
	same "broken lines" "$(grep -Ecv '^([XY]) [0-9]+ end-\1$' "$S/got")" 0
	same "X's lines" "$(grep '^X ' "$S/got" | cut -d' ' -f2)" "$(seq 500)"
	same "Y's lines" "$(grep '^Y ' "$S/got" | cut -d' ' -f2)" "$(seq 500)"
}

@test "-u passes a task's output through at once, half lines included" {
	cat >"$S/u" <<'EOF'
#!/bin/sh
case $1 in
A)
	printf A-part
	echo A >>"$S/started"
	fifo-wait "$S/gate"
	echo -end
	;;
B)
	fifo-wait "$S/gate2"
	echo B-line
	;;
esac
EOF
	chmod +x "$S/u"
	mkfifo "$S/gate2"
	printf 'A\nB\n' >"$S/in"
	bg_cpmap -u -j2 "$S/u"
	wait_lines "$S/started" 1
	# Nothing is held: A's piece is already in cpmap's stdout.
	same stdout "$(cat "$S/out")" A-part
	release "$S/gate2"
	wait_lines "$S/out" 1
	same stdout "$(cat "$S/out")" A-partB-line
	release "$S/gate"
	finish
	same status "$status" 0
	same stdout "$(cat "$S/out")" "A-partB-line
-end"
}

# A private TMPDIR whose name holds spaces, quotes and a newline.
weird_tmpdir() {
	TMPDIR="$S/tmp dir 'q\" \$x
nl"
	mkdir "$TMPDIR"
	export TMPDIR
}

@test "a 100 MB task output with -k is written whole, in bounded memory, and leaves no temp file" {
	weird_tmpdir
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -f %M -o "$S/rss" timeout 60 "$CPMAP" -k \
		    sh -c 'head -c 100000000 /dev/zero' sh ::: x |
		    wc -c >"$S/count"
	else
		timeout 60 "$CPMAP" -k sh -c 'head -c 100000000 /dev/zero' \
		    sh ::: x | wc -c >"$S/count"
	fi
	same count "$(cat "$S/count")" 100000000
	same "left in TMPDIR" "$(ls -A "$TMPDIR")" ""
	if [ -s "$S/rss" ]; then
		# Peak RSS in KiB: far below the 100 MB written.
		echo "peak RSS: $(tail -1 "$S/rss") KiB"
		[ "$(tail -1 "$S/rss")" -lt 65536 ]
	fi
}

@test "a held 100 MB output lives in an unlinked temp file in \$TMPDIR" {
	weird_tmpdir
	bg_cpmap -i /dev/null -k sh -c \
	    'head -c 100000000 /dev/zero; fifo-wait -s "$S/started" "$S/gate"' ::: x
	wait_lines "$S/started" 1
	# The output is held (not written yet), TMPDIR shows no file, and
	# cpmap holds a deleted file in it.
	empty stdout "$S/out"
	same "left in TMPDIR" "$(ls -A "$TMPDIR")" ""
	spilled=0
	for fd in /proc/"$PID"/fd/*; do
		case $(readlink "$fd") in
		"$TMPDIR"/*" (deleted)") spilled=$((spilled + 1)) ;;
		esac
	done
	[ "$spilled" -ge 1 ]
	release "$S/gate"
	finish
	same status "$status" 0
	same "bytes written" "$(wc -c <"$S/out")" 100000000
	same "left in TMPDIR" "$(ls -A "$TMPDIR")" ""
	rm -f "$S/out"
}

@test "several tasks with big outputs are each written whole, in order, without temp files left" {
	weird_tmpdir
	timeout 60 "$CPMAP" -k -j3 sh -c 'head -c 3000000 /dev/zero | tr "\0" "$1"' \
	    sh ::: a b c d >"$S/out"
	same "bytes written" "$(wc -c <"$S/out")" 12000000
	# Four runs, one per task, in input order.
	same "runs of 1 MB" "$(fold -w 1000000 "$S/out" | cut -c1 | uniq -c | awk '{print $1 $2}' | tr -d '\n')" 3a3b3c3d
	same "left in TMPDIR" "$(ls -A "$TMPDIR")" ""
}

# ---- coalesced writes (issue 12) ------------------------------------------

@test "coalesced: a finished result is written before cpmap waits for the next" {
	# Task b blocks until the test has read a's result: a result held in
	# the batch while the loop waits would hang it (wait-lines fails).
	task 'case $1 in a) echo a ;; b) fifo-wait "$S/gate"; echo b ;; esac'
	bg_cpmap -j2 "$S/task" ::: a b
	wait_lines "$S/out" 1
	release "$S/gate"
	finish
	same status "$status" 0
	same output "$output" "a
b"
}

@test "coalesced: stdout and stderr of many tasks keep their order when both go to one file" {
	# Each task: its stdout, then its stderr, then the next task's.
	run bash -c 'seq 300 | "$1" -k -j2 sh -c "echo \$1; echo e\$1 >&2; echo f\$1" sh 2>&1' sh "$CPMAP"
	same status "$status" 0
	same output "$output" "$(seq 300 | sed 's/.*/&\nf&\ne&/')"
	run bash -c 'seq 3000 | "$1" -k -j2 --persist --tag cat 2>&1' sh "$CPMAP"
	same status "$status" 0
	same output "$output" "$(seq 3000 | sed 's/.*/&\t&/')"
}

@test "coalesced: a message on stderr comes after the output written before it" {
	run bash -c 'seq 3 | "$1" -k -j1 --halt now,fail=1 sh -c "echo \$1; [ \$1 != 2 ]" sh 2>&1' sh "$CPMAP"
	same "line 1" "${lines[0]}" 1
	same "line 2" "${lines[1]}" 2
	[[ ${lines[2]} == "cpmap: --halt now: task 2 "* ]] || fail "line 3: ${lines[2]}"
}

@test "coalesced: --line-buffer writes a line while its task still runs" {
	task 'echo "first $1"; fifo-wait "$S/gate"; echo "second $1"'
	bg_cpmap -j2 --line-buffer "$S/task" ::: a
	wait_lines "$S/out" 1
	same "so far" "$(cat "$S/out")" "first a"
	release "$S/gate"
	finish
	same status "$status" 0
}
