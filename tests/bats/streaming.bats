#!/usr/bin/env bats
# streaming.bats - input is read lazily, results are written while input
# is still being read, and memory does not grow with the number of inputs.

load helpers

setup() {
	setup_scratch
	S=$SCRATCH
	export S
	mkfifo "$S/gate" "$S/in"
}

teardown() {
	kill_test_processes ${WRITER:-}
}

# wait_write_blocked PID: wait until PID sleeps in a write to a full pipe;
# fail if it ends first.  (A condition, polled: no outcome depends on time.)
wait_write_blocked() {
	wait-state asleep "$1" pipe_write pipe_wait
}

# peak_rss CMD...: the peak RSS of CMD in KiB (its output is dropped).
peak_rss() {
	/usr/bin/time -f %M -o "$S/rss" "$@" >/dev/null || return
	tail -1 "$S/rss"
}

need_rss() {
	[ -x /usr/bin/time ] || skip "/usr/bin/time is missing (Debian package time)"
	# ASan's quarantine holds freed memory: peak RSS means nothing there.
	if ldd "$CPMAP" 2>/dev/null | grep -q 'libasan'; then
		skip "built with AddressSanitizer"
	fi
}

@test "input is read lazily: with -j1 and a blocked first task a million-line writer blocks early" {
	[ -r /proc/self/wchan ] && [ -r /proc/self/io ] || skip "no /proc wchan or io"
	seq 1000000 >"$S/in" 3>&- &
	WRITER=$!
	bg_cpmap -j1 sh -c '[ "$CPMAP_SEQ" = 1 ] && exec fifo-wait -s "$1" "$2"; :' \
	    sh "$S/started" "$S/gate"
	wait_lines "$S/started" 1
	# cpmap needs one input at a time: it stops reading and seq blocks,
	# long before its 6888896 bytes are written.
	wait_write_blocked "$WRITER" || fail "the writer never blocked: cpmap read it all"
	written=$(awk '$1 == "wchar:" { print $2 }' "/proc/$WRITER/io")
	echo "the writer wrote $written bytes"
	[ "$written" -lt 1000000 ]
	kill -TERM "$PID"
	finish
	same status "$status" 143
	wait "$WRITER" || true
	WRITER=
	no_leftovers "$S/gate"
}

@test "input is read lazily with -k and the default --buffer as well" {
	[ -r /proc/self/wchan ] && [ -r /proc/self/io ] || skip "no /proc wchan or io"
	seq 1000000 >"$S/in" 3>&- &
	WRITER=$!
	bg_cpmap -k -j2 sh -c '[ "$CPMAP_SEQ" = 1 ] && exec fifo-wait -s "$1" "$2"; :' \
	    sh "$S/started" "$S/gate"
	wait_lines "$S/started" 1
	# -j2: task 1 holds back at most --buffer (128) results; the rest of
	# the input stays unread.
	wait_write_blocked "$WRITER" || fail "the writer never blocked: cpmap read it all"
	written=$(awk '$1 == "wchar:" { print $2 }' "/proc/$WRITER/io")
	echo "the writer wrote $written bytes"
	[ "$written" -lt 1000000 ]
	kill -TERM "$PID"
	finish
	same status "$status" 143
	wait "$WRITER" || true
	WRITER=
}

@test "results are written while input is still being read (each line waits for the previous result)" {
	for mode in "" -k --line-buffer "-k --line-buffer" "-n 1 --buffer 1"; do
		rm -f "$S/out"
		: >"$S/out"
		# The writer sends a line only once the previous line's result is
		# in cpmap's output: without streaming this deadlocks.
		{
			for i in 1 2 3 4 5; do
				echo "line$i"
				wait_lines "$S/out" "$i" || exit 1
			done
		} >"$S/in" 3>&- &
		WRITER=$!
		status=0
		timeout 20 "$CPMAP" $mode echo got <"$S/in" >"$S/out" || status=$?
		same "mode '$mode': status" "$status" 0
		wait "$WRITER" || fail "mode '$mode': the writer never saw its results"
		WRITER=
		same "mode '$mode': stdout" "$(cat "$S/out")" "got line1
got line2
got line3
got line4
got line5"
	done
}

@test "the first task starts before the input ends" {
	{
		echo first
		wait_lines "$S/started" 1 || exit 1
		echo second
	} >"$S/in" 3>&- &
	WRITER=$!
	run timeout 20 "$CPMAP" -k sh -c 'echo "$2" >>"$1"; echo "$2"' sh "$S/started" <"$S/in"
	same status "$status" 0
	same output "$output" "first
second"
	wait "$WRITER"
	WRITER=
}

@test "memory does not grow with the number of inputs (--dry-run, 10k vs 200k)" {
	need_rss
	small=$(peak_rss timeout 60 "$CPMAP" --dry-run true < <(seq 10000))
	big=$(peak_rss timeout 60 "$CPMAP" --dry-run true < <(seq 200000))
	echo "peak RSS: $small KiB for 10k inputs, $big KiB for 200k"
	[ "$((big * 2))" -lt "$((small * 3))" ]
	small=$(peak_rss timeout 60 "$CPMAP" -k -j4 --dry-run echo < <(seq 10000))
	big=$(peak_rss timeout 60 "$CPMAP" -k -j4 --dry-run echo < <(seq 200000))
	echo "-k: peak RSS: $small KiB for 10k inputs, $big KiB for 200k"
	[ "$((big * 2))" -lt "$((small * 3))" ]
}

@test "memory does not grow with the number of tasks run (200 vs 2000 runs of true)" {
	need_rss
	small=$(peak_rss timeout 60 "$CPMAP" -j2 true < <(seq 200))
	big=$(peak_rss timeout 60 "$CPMAP" -j2 true < <(seq 2000))
	echo "peak RSS: $small KiB for 200 tasks, $big KiB for 2000"
	[ "$((big * 2))" -lt "$((small * 3))" ]
}
