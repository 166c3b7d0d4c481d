#!/usr/bin/env bats
# timeline.bats - --timeline FILE.svg and --from-joblog LOG: the picture is
# well-formed XML (xmllint), a real SVG renderer (rsvg-convert) draws each
# known bar where the SVG puts it in its outcome's colour (read back from
# the PNG with tests/bin/png-pixel), titles carry escaped inputs, and the
# file is written after ^C and --halt, within 5 MB for 100k attempts.
#
# Timing comes from fifo-wait gates, never from sleep: a task that must be
# running when something happens waits on its gate.

load helpers
bats_require_minimum_version 1.5.0

# The colours of the legend (timeline.c's).
OK='#3a9a3a'
FAILED='#d62728'
SIGNALED='#9467bd'
SPAWN='#8c564b'
WHITE='#ffffff'
BAND='#f3f3f3'

setup() {
	command -v rsvg-convert >/dev/null || skip "rsvg-convert is not installed (librsvg2-bin)"
	command -v xmllint >/dev/null || skip "xmllint is not installed (libxml2-utils)"
	setup_scratch
	S=$SCRATCH
	export S
	PNG_PIXEL=$TESTS_SRC/bin/png-pixel
	# task N STATUS: say it started, wait on gate N, then exit STATUS
	# ("kill": die of SIGKILL).
	cat >"$S/task" <<-'EOF'
		#!/bin/sh
		fifo-wait -s "$S/started" "$S/gate$1" || exit
		case $2 in
		kill) kill -KILL $$ ;;
		*) exit "$2" ;;
		esac
	EOF
	chmod +x "$S/task"
	for i in 1 2 3; do
		mkfifo "$S/gate$i"
	done
}

# xpath SVG EXPR: the string EXPR gives in SVG (namespaces aside).
xpath() {
	xmllint --xpath "string($2)" "$1"
}

# bar_pixel SVG PNG TEXT: the colour at the middle of the bar whose title
# contains TEXT.
bar_pixel() {
	local rect="//*[local-name()='rect'][contains(*[local-name()='title'],'$3')]"
	local x y w h
	x=$(xpath "$1" "$rect/@x")
	y=$(xpath "$1" "$rect/@y")
	w=$(xpath "$1" "$rect/@width")
	h=$(xpath "$1" "$rect/@height")
	[ -n "$x" ] || {
		echo "no bar has '$3' in its title" >&2
		return 1
	}
	"$PNG_PIXEL" "$2" "$(awk -v x="$x" -v w="$w" 'BEGIN { print int(x + w / 2) }')" \
		"$(awk -v y="$y" -v h="$h" 'BEGIN { print int(y + h / 2) }')"
}

# well_formed SVG: xmllint parses it; render it to SVG.png.
render() {
	xmllint --noout "$1"
	rsvg-convert "$1" -o "$1.png"
}

@test "a run: a lane per slot, a bar per attempt in its outcome's colour, titles on hover" {
	timeout 30 "$CPMAP" -j3 -C ' ' --timeline "$S/t.svg" "$S/task" {1} {2} \
		::: '1 0' '2 3' '3 kill' >"$S/out" 2>"$S/err" &
	local pid=$!
	wait-lines "$S/started" 3
	release "$S/gate1"
	release "$S/gate2"
	release "$S/gate3"
	local rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 2 ] # two failed
	render "$S/t.svg"
	run xpath "$S/t.svg" "count(//*[local-name()='rect']/*[local-name()='title'])"
	assert_output 3
	run grep -c '>slot [123]</text>' "$S/t.svg"
	assert_output 3
	run bar_pixel "$S/t.svg" "$S/t.svg.png" 'input: 1 0 · exit 0'
	assert_output "$OK"
	run bar_pixel "$S/t.svg" "$S/t.svg.png" 'input: 2 3 · exit 3'
	assert_output "$FAILED"
	run bar_pixel "$S/t.svg" "$S/t.svg.png" 'input: 3 kill · signal SIGKILL'
	assert_output "$SIGNALED"
	# The legend's first square, and the white above the lanes.
	run "$PNG_PIXEL" "$S/t.svg.png" 11 35 600 50
	assert_output "$OK"$'\n'"$WHITE"
	grep -q 'seq 1 · input: 1 0 · exit 0 · .* · local slot [123]</title>' "$S/t.svg"
	# Written atomically: nothing else is left beside it.
	run ls "$S"
	refute_output --partial 't.svg.'$'\n'
	[ "$(ls "$S" | grep -c '^t\.svg')" -eq 2 ] # t.svg and our t.svg.png
}

@test "retries are attempts: a bar each, the title says which" {
	run --separate-stderr "$CPMAP" --retries 2 --timeline "$S/t.svg" sh -c 'exit 1' ::: x
	assert_failure 1
	render "$S/t.svg"
	run grep -c '<title>seq 1 ' "$S/t.svg"
	assert_output 3
	grep -q '<title>seq 1 (attempt 3) · input: x · exit 1' "$S/t.svg"
}

@test "titles escape markup and bytes that are not UTF-8" {
	printf 'a<b&c"d\377e\n' >"$S/in"
	run "$CPMAP" --timeline "$S/t.svg" -a "$S/in" true
	assert_success
	render "$S/t.svg"
	grep -qF 'input: a&lt;b&amp;c&quot;d\xFFe · exit 0' "$S/t.svg"
	run xpath "$S/t.svg" "//*[local-name()='rect']/*[local-name()='title']"
	assert_output --partial 'input: a<b&c"d\xFFe · exit 0'
}

# stopped_by_int PID SVG: cpmap (PID) exits 130, and SVG is a picture of
# its two attempts stopped by SIGTERM.
stopped_by_int() {
	local rc=0
	wait "$1" || rc=$?
	[ "$rc" -eq 130 ]
	render "$2"
	run grep -c 'signal SIGTERM' "$2"
	assert_output 2
}

@test "^C: the picture is written, with the interrupted attempts" {
	timeout 30 "$CPMAP" -j2 --timeline "$S/t.svg" "$S/task" {} 0 ::: 1 2 \
		>"$S/out" 2>"$S/err" &
	local pid=$!
	wait-lines "$S/started" 2
	kill -INT "$pid"
	stopped_by_int "$pid" "$S/t.svg"
	run bar_pixel "$S/t.svg" "$S/t.svg.png" 'seq 2 '
	assert_output "$SIGNALED"
}

@test "^C twice: the second, once the tasks are gone, does not keep the picture from being written" {
	# The picture goes to a FIFO, so cpmap holds still in its open until
	# this test reads it; the second SIGINT comes then (as the copy of
	# the first that timeout(1) sends its process group can).  cpmap
	# once died of it, writing nothing.
	mkfifo "$S/t.fifo"
	"$CPMAP" -j2 --timeline "$S/t.fifo" "$S/task" {} 0 ::: 1 2 \
		>"$S/out" 2>"$S/err" &
	local pid=$!
	wait-lines "$S/started" 2
	kill -INT "$pid"
	wait-state asleep "$pid" fifo wait_for_partner pipe
	kill -INT "$pid"
	timeout 20 cat "$S/t.fifo" >"$S/t.svg"
	stopped_by_int "$pid" "$S/t.svg"
}

@test "--halt now: the picture is written, the failure and what it stopped" {
	timeout 30 "$CPMAP" -j2 --halt now,fail=1 --timeline "$S/t.svg" \
		"$S/task" {} {} ::: 1 2 >"$S/out" 2>"$S/err" &
	local pid=$!
	wait-lines "$S/started" 2
	release "$S/gate2" # exits 2: the run halts, task 1 is stopped
	local rc=0
	wait "$pid" || rc=$?
	[ "$rc" -ne 0 ]
	render "$S/t.svg"
	run bar_pixel "$S/t.svg" "$S/t.svg.png" 'seq 2 · input: 2 · exit 2'
	assert_output "$FAILED"
	run bar_pixel "$S/t.svg" "$S/t.svg.png" 'seq 1 · input: 1 · signal SIGTERM'
	assert_output "$SIGNALED"
}

@test "--from-joblog: a GNU parallel joblog, lanes packed per host, bars where its times say" {
	# 10 s in all: 100 px a second from x = 170.  Locally, 1 takes lane
	# 1 and 2 lane 2; 3 starts when 2 ends, in lane 2 again.  server1
	# has a lane of its own, on a shaded band.
	cat >"$S/parallel.log" <<-'EOF'
		Seq	Host	Starttime	JobRuntime	Send	Receive	Exitval	Signal	Command
		1	:	1700000000.000	    10.000	0	0	0	0	echo a
		2	:	1700000000.000	     5.000	0	5	1	0	false <b>
		3	:	1700000005.000	     5.000	0	0	-1	15	sleep c
		4	server1	1700000002.000	     4.000	0	0	127	0	nosuch d
	EOF
	run --separate-stderr "$CPMAP" --timeline "$S/t.svg" --from-joblog "$S/parallel.log"
	assert_success
	assert_output ''
	render "$S/t.svg"
	grep -q '>local · lane 1</text>' "$S/t.svg"
	grep -q '>local · lane 2</text>' "$S/t.svg"
	grep -q '>server1 · lane 1</text>' "$S/t.svg"
	grep -q '<title>seq 2 · command: false &lt;b&gt; · exit 1 · 5.000 s (at 0.000 s) · local lane 2</title>' "$S/t.svg"
	grep -q '>0s</text>.*' "$S/t.svg"
	grep -q '>10s</text>' "$S/t.svg"
	# Lanes at y = 58, 74, 90 (12 px bars): the middle of each.
	run "$PNG_PIXEL" "$S/t.svg.png" 420 64 420 80 920 80 570 96 270 96 1175 64
	assert_output "$OK"$'\n'"$FAILED"$'\n'"$SIGNALED"$'\n'"$SPAWN"$'\n'"$BAND"$'\n'"$WHITE"
}

@test "--from-joblog: cpmap's own joblog" {
	run "$CPMAP" -j2 --joblog "$S/j.log" sh -c 'exit $1' sh ::: 0 1 0 4
	assert_failure 2
	run --separate-stderr "$CPMAP" --timeline "$S/t.svg" --from-joblog "$S/j.log"
	assert_success
	render "$S/t.svg"
	run grep -c '<title>seq ' "$S/t.svg"
	assert_output 4
	grep -q "command: sh -c 'exit \$1' sh 4 · exit 4" "$S/t.svg"
	run bar_pixel "$S/t.svg" "$S/t.svg.png" 'sh 4 · exit 4'
	assert_output "$FAILED"
}

@test "100k attempts: at most 5 MB, in bounded time and memory" {
	awk 'BEGIN {
		print "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand"
		for (i = 1; i <= 100000; i++)
			printf "%d\t:\t%.3f\t%10.3f\t0\t0\t%d\t0\techo input number %d with some words\n",
				i, 1700000000 + int((i - 1) / 8) * 0.01, 0.009, (i % 97 == 0), i
	}' >"$S/big.log"
	local start end
	start=$(date +%s%N)
	run --separate-stderr /usr/bin/time -f '%M' -o "$S/rss" timeout 60 \
		"$CPMAP" --timeline "$S/t.svg" --from-joblog "$S/big.log"
	end=$(date +%s%N)
	assert_success
	local size
	size=$(stat -c %s "$S/t.svg")
	echo "# 100k attempts: $size bytes, $(((end - start) / 1000000)) ms, $(cat "$S/rss") KB" >&3
	[ "$size" -le 5000000 ]
	[ $(((end - start) / 1000000)) -lt 20000 ]
	xmllint --noout "$S/t.svg"
	grep -q 'cpmap: 100000 attempts on 8 lanes' "$S/t.svg"
	grep -q 'attempts (seq ' "$S/t.svg" # merged
	# Not under a sanitizer, which has memory of its own.
	ldd "$CPMAP" 2>/dev/null | grep -q libasan || [ "$(cat "$S/rss")" -lt 20000 ]
}

@test "a picture that cannot be written: one message, exit 255, the results all written" {
	run --separate-stderr "$CPMAP" -k --joblog "$S/j.log" \
		--timeline "$S/no/such/dir/t.svg" echo ::: a b
	assert_equal "$status" 255
	assert_output $'a\nb'
	assert_equal "$stderr" "cpmap: --timeline: $S/no/such/dir/t.svg: No such file or directory"
	[ "$(wc -l <"$S/j.log")" -eq 3 ]
	run --separate-stderr "$CPMAP" --timeline "$S/no/t.svg" --from-joblog "$S/j.log"
	assert_equal "$status" 255
	assert_equal "$stderr" "cpmap: --timeline: $S/no/t.svg: No such file or directory"
}

@test "--from-joblog: its usage errors" {
	run --separate-stderr "$CPMAP" --from-joblog "$S/j.log"
	assert_equal "$status" 255
	assert_equal "$stderr" "cpmap: --from-joblog needs --timeline FILE (see cpmap --help)"
	run --separate-stderr "$CPMAP" --timeline "$S/t.svg" --from-joblog "$S/j.log" echo
	assert_equal "$status" 255
	assert_equal "$stderr" "cpmap: --from-joblog draws a joblog and runs nothing: it takes no command or input (see cpmap --help)"
	run --separate-stderr "$CPMAP" --timeline "$S/t.svg" --from-joblog "$S/nothing.log"
	assert_equal "$status" 255
	assert_equal "$stderr" "cpmap: --from-joblog: $S/nothing.log: No such file or directory"
	[ ! -e "$S/t.svg" ]
	run --separate-stderr "$CPMAP" --timeline '' true
	assert_equal "$status" 255
}
