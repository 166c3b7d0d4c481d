#!/usr/bin/env bats
# persist.bats - persistent workers (--persist, --stride, --persist-max): the
# line protocol, ordering, records and joblog, chunks, -J, every fault a
# worker can commit (crash, early exit, an extra line, a last line without
# its newline, hanging past --timeout), recycling, stderr pass-through, the
# end of the run, the usage errors and the worked examples in contrib/.
#
# Workers are small sh scripts written into the test's scratch directory
# ($S/NAME), so every worker's command line holds $S: teardown kills any
# leftover, and no_leftovers "$S/" proves none outlived cpmap.  A worker that
# must hold still blocks in fifo-wait on a gate; the test learns what has been
# answered from a log the worker appends to (wait_lines), never by sleeping.
# "Exactly once" is counted with sort | uniq -c.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	setup_scratch
	S=$SCRATCH
	export S
	OUT=$S/out
	ERR=$S/err
	mkfifo "$S/gate"
	export LC_ALL=C
	# `printf ... | prun ...`: prun runs in this shell and sets $status.
	shopt -s lastpipe
	CONTRIB=$TESTS_SRC/../contrib
}

teardown() {
	kill_test_processes
}

# worker NAME BODY: write $S/NAME, a sh script; BODY runs once per input
# line, which is in $l.  Each worker logs "slot pid" to $S/starts when it
# starts, so a test can count workers.
worker() {
	cat >"$S/$1" <<-EOF
		#!/bin/sh
		echo "\${CPMAP_SLOT:-?} \$\$" >>"$S/starts"
		while IFS= read -r l; do
		$2
		done
	EOF
	chmod +x "$S/$1"
}

# prun ARGS...: run cpmap on the test's stdin; stdout in $OUT, stderr in
# $ERR, exit status in $status.
prun() {
	status=0
	timeout -k 5 30 "$CPMAP" "$@" >"$OUT" 2>"$ERR" 3>&- || status=$?
}

# each_once WHAT FILE LINE...: FILE holds each LINE exactly once, nothing else.
each_once() {
	local got want
	got=$(sort "$2" | uniq -c | sed 's/^ *//')
	want=$(printf '%s\n' "${@:3}" | sort | sed 's/^/1 /')
	same "$1 (count, line)" "$got" "$want"
}

# release_within FIFO: release, but give up after 20 s when no fifo-wait
# ever comes to the gate (a test that went wrong must not hang).
release_within() {
	timeout 20 bash -c 'echo go >"$1"' _ "$1" || fail "nobody waited at $1"
}

# ---- the protocol --------------------------------------------------------

@test "each input goes to the worker as one line and its answer line is the task's output" {
	worker echo 'printf "got <%s>\n" "$l"'
	printf '%s\n' one '  two  spaces  ' 'back\slash' "it's" '"quoted"' 'tab	in' |
		prun --persist -j1 "$S/echo"
	same status "$status" 0
	same stdout "$(cat "$OUT")" "$(printf 'got <%s>\n' one '  two  spaces  ' 'back\slash' "it's" '"quoted"' 'tab	in')"
	same stderr "$(cat "$ERR")" ""
	same "workers started" "$(wc -l <"$S/starts")" 1
}

@test "a worker answers several inputs in order: one line in, one line out" {
	worker double 'echo $((l * 2))'
	seq 200 | prun --persist -j1 "$S/double"
	same status "$status" 0
	same stdout "$(cat "$OUT")" "$(seq 2 2 400)"
	same "workers started" "$(wc -l <"$S/starts")" 1
}

@test "each slot has one worker: CPMAP_SLOT and {%} name it, CPMAP_SEQ is 0" {
	cat >"$S/slotw" <<-EOF
		#!/bin/sh
		echo "\$1 \$CPMAP_SLOT \$CPMAP_SEQ" >>"$S/starts"
		while IFS= read -r l; do echo "\$1:\$l"; done
	EOF
	chmod +x "$S/slotw"
	seq 40 | prun --persist -j2 --json "$S/slotw" '{%}'
	same status "$status" 0
	# Every answer names the slot that the record says ran the task.
	same "answers vs slots" \
		"$(jq -r 'select(.stdout != "\(.slot):\(.input)\n") | .seq' "$OUT")" ""
	same "inputs answered" "$(jq -r .input "$OUT" | sort -n)" "$(seq 40)"
	# At most one worker per slot, each started with its own slot number.
	same "worker starts" "$(sort -u "$S/starts" | grep -cvE '^([12]) \1 0$')" 0
	same "one start per slot" "$(sort "$S/starts" | uniq -d)" ""
}

@test "-k writes answers in input order across two workers when a later one finishes first" {
	# --stride 1: slot 1 holds "slow" alone, slot 2 answers all the others
	# (logging each to $S/done) before the gate lets "slow" go.
	worker w '[ "$l" = slow ] && fifo-wait "$S/gate" >/dev/null
echo "$l"
echo "$l" >>"$S/done"'
	local mode want
	for mode in -k unordered; do
		rm -f "$S/done"
		bg_cpmap -t 30 -i <(printf '%s\n' slow b c d e) \
			--persist -j2 --stride 1 ${mode/unordered/} "$S/w"
		timeout 20 wait-lines "$S/done" 4
		release_within "$S/gate"
		finish
		same "cpmap $mode: status" "$status" 0
		if [ "$mode" = -k ]; then want="slow b c d e"; else want="b c d e slow"; fi
		same "$mode output" "$(tr '\n' ' ' <"$OUT")" "$want "
	done
}

@test "--json: each record's stdout is the answer line, argv null, exit 0" {
	worker w 'echo "[$l]"'
	printf '%s\n' a b c | prun --persist -k -j2 --json "$S/w"
	same status "$status" 0
	same records "$(jq -c '[.seq, .input, .argv, .host, .attempts, .status, .exit, .signal, .stdout, .stderr, .error]' "$OUT")" \
		'[1,"a",null,"local",1,"ok",0,null,"[a]\n","",null]
[2,"b",null,"local",1,"ok",0,null,"[b]\n","",null]
[3,"c",null,"local",1,"ok",0,null,"[c]\n","",null]'
	same "slots" "$(jq -r '.slot | select(. != 1 and . != 2)' "$OUT")" ""
}

@test "--joblog has one line per task in persist mode: exit 0, the answer's bytes" {
	worker w 'echo "x$l"'
	seq 3 | prun --persist -j1 --joblog "$S/log" "$S/w"
	same status "$status" 0
	same header "$(head -n 1 "$S/log")" \
		"$(printf 'Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand')"
	# Seq, host, send, receive (bytes of "xN\n"), exit value, signal.
	same lines "$(tail -n +2 "$S/log" | cut -f1,2,5-8 | sort -n)" \
		"$(printf '%s\t:\t0\t3\t0\t0\n' 1 2 3)"
}

@test "--chunk 3: a task sends three lines and takes three answers" {
	worker w 'echo "<$l>"
echo "$l" >>"$S/seen"'
	seq 7 | prun --persist -j1 -k --chunk 3 --json "$S/w"
	same status "$status" 0
	same records "$(jq -c '[.seq, (.inputs // [.input]), .stdout]' "$OUT")" \
		'[1,["1","2","3"],"<1>\n<2>\n<3>\n"]
[2,["4","5","6"],"<4>\n<5>\n<6>\n"]
[3,["7"],"<7>\n"]'
	same "lines the worker read" "$(cat "$S/seen")" "$(seq 7)"
	seq 7 | prun --persist -j2 -k -n 3 "$S/w"
	same "plain output" "$(cat "$OUT")" "$(seq 7 | sed 's/.*/<&>/')"
}

@test "--stride 1, 5 and 65536 give the same answers" {
	worker w 'echo "$l $((l * l))"'
	local s
	for s in 1 5 65536; do
		seq 300 | prun --persist -j2 -k --stride "$s" "$S/w"
		same "status, --stride $s" "$status" 0
		same "output, --stride $s" "$(cat "$OUT")" "$(seq 300 | awk '{ print $1, $1 * $1 }')"
	done
}

@test "a worker that answers each batch whole gets more at a time: the stride doubles to 256 at -j2, 128 at -j4, stays 64 at -j8" {
	# cat answers a batch with one write, so each read empties it: the
	# trace says so at every doubling, whatever the machine's speed.
	local j limit biggest
	for j in 2 4 8; do
		limit=$((512 / j < 64 ? 64 : 512 / j))
		rm -f "$S/trace"
		seq 40000 | CPMAP_DEBUG=$S/trace prun --persist -k -j"$j" cat
		same "status, -j$j" "$status" 0
		same "output, -j$j" "$(cat "$OUT")" "$(seq 40000)"
		same "strides, -j$j" "$(sed -n 's/.* stride \([0-9]*\): .*/\1/p' "$S/trace" | tr '\n' ' ')" \
			"$(s=128; while [ $s -le $limit ]; do printf '%s ' $s; s=$((s * 2)); done)"
		# At 64 a batch is at most 384 bytes of six-byte lines.
		biggest=$(sed -n 's/.*batch to slot [0-9]*: \([0-9]*\) bytes/\1/p' "$S/trace" | sort -n | tail -n 1)
		if [ "$limit" -gt 64 ]; then
			[ "$biggest" -gt 384 ] || fail "-j$j: no batch of more than 64 requests"
		else
			[ "$biggest" -le 384 ] || fail "-j$j: a batch of more than 64 requests"
		fi
	done
}

@test "--stride given is kept: no doubling" {
	seq 20000 | CPMAP_DEBUG=$S/trace prun --persist -k -j2 --stride 64 cat
	same "status" "$status" 0
	same "output" "$(cat "$OUT")" "$(seq 20000)"
	if grep ' stride ' "$S/trace"; then
		fail "the stride changed"
	fi
	grep -q 'batch to slot [0-9]*: 384 bytes' "$S/trace" ||
		fail "no batch of 64 six-byte lines"
}

@test "the stride's limit counts the worker's own slots: -j1 -S 8/: keeps 64" {
	seq 20000 | CPMAP_DEBUG=$S/trace prun -j1 -S 8/: --persist -k cat
	same "status" "$status" 0
	same "output" "$(cat "$OUT")" "$(seq 20000)"
	if grep ' stride ' "$S/trace"; then
		fail "the stride grew past 512 tasks in all"
	fi
}

@test "a local worker taken out of --workers-file stays out when its last answers come whole" {
	# The worker answers each batch of 64 in one write; the second waits
	# at the gate until ":" is gone from the file.  That answer, like the
	# first, is all the worker owed: the stride would double, and a gone
	# worker must not be given places again (cpmap once aborted here).
	# Then no place is left (fa never comes up) and nothing runs: cpmap
	# must see that the input has ended and finish (it once waited for
	# fa for ever).
	cat >"$S/w" <<-EOF
		#!/bin/sh
		n=0
		while :; do
			out= i=0
			while [ \$i -lt 64 ] && IFS= read -r l; do
				out="\$out\$l "
				i=\$((i + 1))
			done
			[ \$i -eq 0 ] && exit 0
			n=\$((n + 1))
			echo \$n >>"$S/batches"
			[ \$n -eq 2 ] && fifo-wait "$S/gate" >/dev/null
			printf '%s' "\$out" | tr ' ' '\n'
		done
	EOF
	chmod +x "$S/w"
	printf '1/:\n1/fa\n' >"$S/workers"
	seq 128 >"$S/in"
	bg_cpmap -t 40 --workers-file "$S/workers" --transport false \
		--persist -k "$S/w"
	timeout 20 wait-lines "$S/batches" 2
	printf '1/fa\n' >"$S/workers"
	wait-text -t "$S/workers" "$S/err" "local is gone from the file" ||
		fail "cpmap never saw the file change: $(cat "$S/err")"
	release_within "$S/gate"
	finish
	same "status" "$status" 0
	same "output" "$output" "$(seq 128)"
	same "batches" "$(cat "$S/batches")" "$(printf '1\n2')"
}

@test "--workers-file: this machine added while the run waits for a host that never comes up runs the tasks, plain and --persist" {
	# Once cpmap crashed here: the new worker came up inside its own
	# creation and was given a task before it had a state.
	local mode cmd
	seq 6 >"$S/in"
	for mode in plain --persist; do
		cmd=echo
		[ "$mode" = plain ] || cmd=cat
		printf '1/fa\n' >"$S/workers"
		bg_cpmap -t 40 --workers-file "$S/workers" --transport false \
			-k ${mode/plain/} "$cmd"
		wait-text "$S/err" "host fa: cannot connect" ||
			fail "$mode: fa was never tried: $(cat "$S/err")"
		printf '1/fa\n1/:\n' >"$S/workers"
		# Touched until seen (wait-text -t): a change before cpmap's
		# first look at the file would pass unnoticed.
		wait-text -t "$S/workers" "$S/err" "adding local" ||
			fail "$mode: the file change was never seen: $(cat "$S/err")"
		finish
		same "$mode: status" "$status" 0
		same "$mode: output" "$output" "$(seq 6)"
	done
}

@test "-J sends each record as one compact JSON line; a string keeps its quotes" {
	worker w 'printf "%s\n" "<$l>"'
	printf '%s\n' '{ "a" : [1, 2] , "b":"x y"}' '"s t"' '[ 1, "two" ]' '"quote\"in"' 'null' '{"n":"line\nbreak"}' |
		prun -J --persist -j1 -k "$S/w"
	same status "$status" 0
	same stdout "$(cat "$OUT")" '<{"a":[1,2],"b":"x y"}>
<"s t">
<[1,"two"]>
<"quote\"in">
<null>
<{"n":"line\nbreak"}>'
}

@test "-J: a bad line becomes a bad-input record and never reaches the worker" {
	worker w 'echo "$l" >>"$S/seen"
echo ok'
	printf '%s\n' '"a"' 'not json' '"b"' | prun -J --persist -j1 -k --json "$S/w"
	same status "$status" 1
	same records "$(jq -c '[.seq, .status, .stdout, .error.kind]' "$OUT")" \
		'[1,"ok","ok\n",null]
[2,"error","","bad-input"]
[3,"ok","ok\n",null]'
	same "the worker saw" "$(cat "$S/seen")" '"a"
"b"'
}

@test "-0: an input holding a newline cannot be sent: bad input, the others answered" {
	worker w 'echo "<$l>"'
	printf 'a\0b\nc\0d\0' | prun -0 --persist -j1 -k "$S/w"
	same status "$status" 1
	same stdout "$(cat "$OUT")" '<a>
<d>'
	grep -qF 'input 2 holds a newline, which a persistent worker cannot be sent' "$ERR" ||
		fail "stderr: $(cat "$ERR")"
}

# ---- faults --------------------------------------------------------------

@test "a worker killed mid-batch is replaced: with --retries 1 every input is answered once" {
	# It kills itself the first time it sees "boom"; the inputs sent after
	# "boom" are lost with it and must be sent again, not answered twice.
	worker w 'if [ "$l" = boom ] && [ ! -e "$S/boomed" ]; then : >"$S/boomed"; kill -9 $$; fi
echo "$l"'
	printf '%s\n' a b boom c d e f | prun --persist -j1 --retries 1 --json "$S/w"
	same status "$status" 0
	jq -r .stdout "$OUT" | sed '/^$/d' >"$S/answers"
	each_once answers "$S/answers" a b boom c d e f
	same "statuses" "$(jq -r .status "$OUT" | sort | uniq -c | sed 's/^ *//')" "7 ok"
	same "boom's attempts >= 2" "$(jq -r 'select(.input == "boom") | .attempts >= 2' "$OUT")" true
	same "workers started" "$(wc -l <"$S/starts")" 2
	grep -qx 'cpmap: task 3 (input boom): the worker was killed by SIGKILL before answering; retrying (attempt 2 of 2)' "$ERR" ||
		fail "stderr: $(cat "$ERR")"
}

@test "a worker that dies on every \"boom\": boom fails, all the others are answered once" {
	worker w '[ "$l" = boom ] && kill -9 $$
echo "$l"'
	printf '%s\n' a b boom c d e f g h | prun --persist -j2 --retries 0 --json "$S/w"
	same status "$status" 1
	jq -r 'select(.status == "ok") | .stdout' "$OUT" | sed '/^$/d' >"$S/answers"
	each_once answers "$S/answers" a b c d e f g h
	same "boom's record" "$(jq -c 'select(.input == "boom") | [.status, .signal, .stdout]' "$OUT")" \
		'["signaled","SIGKILL",""]'
	same "records" "$(wc -l <"$OUT")" 9
	same stderr "$(cat "$ERR")" "cpmap: task 3 (input boom): the worker was killed by SIGKILL before answering"
}

@test "a worker that quits after three answers is restarted and every input answered once" {
	# head -n 3 as a worker: the fourth input finds it gone (--retries 1
	# runs that one again), the ones after are lost and sent again.
	cat >"$S/three" <<-EOF
		#!/bin/sh
		echo "\$\$" >>"$S/starts"
		for i in 1 2 3; do IFS= read -r l || exit 0; echo "\$l"; done
		exit 0
	EOF
	chmod +x "$S/three"
	seq 5 | prun --persist -j1 --retries 1 "$S/three"
	same "status (5 inputs)" "$status" 0
	each_once "answers (5 inputs)" "$OUT" 1 2 3 4 5
	same "workers started" "$(wc -l <"$S/starts")" 2
	# One input outstanding at a time: nothing is ever lost, only failed.
	rm -f "$S/starts"
	seq 10 | prun --persist -j1 --retries 1 --stride 1 "$S/three"
	same "status (--stride 1)" "$status" 0
	each_once "answers (--stride 1)" "$OUT" $(seq 10)
	same "workers started (--stride 1)" "$(wc -l <"$S/starts")" 4
}

@test "a lost attempt does not use up --retries: a task lost once then failed once runs again" {
	# Worker 1 answers 1-3; 4 fails (retried), 5-8 are lost.  Worker 2
	# answers 4-6; 7 fails for the first time: --retries 1 must run it
	# again (it was lost before, which is not a failed attempt).
	cat >"$S/three" <<-EOF
		#!/bin/sh
		for i in 1 2 3; do IFS= read -r l || exit 0; echo "\$l"; done
		exit 0
	EOF
	chmod +x "$S/three"
	seq 8 | prun --persist -j1 --retries 1 "$S/three"
	same status "$status" 0
	each_once answers "$OUT" $(seq 8)
}

@test "a worker that writes a line nobody asked for is restarted; every input answered once" {
	# cpmap reads its inputs from a FIFO: when the worker writes its extra
	# line, cpmap has nothing outstanding at it (c and d are not written
	# yet), so the line cannot be mistaken for an answer.
	cat >"$S/dup" <<-EOF
		#!/usr/bin/env python3
		import os, sys
		with open("$S/starts", "a") as f:
		    f.write("%d\n" % os.getpid())
		for line in iter(sys.stdin.readline, ""):
		    l = line.rstrip("\n")
		    sys.stdout.write(l + "-1\n" + l + "-2\n" if l == "dup" else l + "\n")
		    sys.stdout.flush()
	EOF
	chmod +x "$S/dup"
	mkfifo "$S/in"
	bg_cpmap -t 30 -i "$S/in" --persist -j1 "$S/dup"
	exec 5>"$S/in"
	printf '%s\n' a b dup >&5
	timeout 20 wait-lines "$ERR" 1
	printf '%s\n' c d >&5
	exec 5>&-
	finish
	same status "$status" 0
	same stderr "$(cat "$ERR")" "cpmap: [slot 1] the worker wrote a line it was not asked for: restarting it"
	same stdout "$(cat "$OUT")" 'a
b
dup-1
c
d'
	same "workers started" "$(wc -l <"$S/starts")" 2
}

@test "a last answer without its newline breaks the protocol: the worker is replaced" {
	# On "nonl" it writes half an answer, closes stdout and blocks.
	worker w 'if [ "$l" = nonl ]; then printf partial; exec >&-; exec fifo-wait "$S/gate"; fi
echo "$l"'
	printf '%s\n' a nonl b c | prun --persist -j1 -k --json "$S/w"
	same status "$status" 1
	same records "$(jq -c '[.input, .status, .stdout]' "$OUT")" \
		'["a","ok","a\n"]
["nonl","signaled",""]
["b","ok","b\n"]
["c","ok","c\n"]'
	same stderr "$(cat "$ERR")" \
		"cpmap: task 2 (input nonl): the worker broke the protocol (a last line without a newline)"
	same "workers started" "$(wc -l <"$S/starts")" 2
	no_leftovers "$S/gate"
}

@test "a worker that exits after half a line: --retries 1 answers that input on a new worker" {
	worker w 'if [ "$l" = nonl ] && [ ! -e "$S/once" ]; then : >"$S/once"; printf partial; exit 0; fi
echo "$l"'
	printf '%s\n' a nonl b c | prun --persist -j1 --retries 1 "$S/w"
	same status "$status" 0
	each_once answers "$OUT" a nonl b c
	grep -q partial "$OUT" && fail "the half line was written: $(cat "$OUT")"
	same "workers started" "$(wc -l <"$S/starts")" 2
}

@test "--persist-max 2 recycles each worker after two tasks" {
	worker w 'echo "$$ $l"'
	seq 5 | prun --persist -j1 -k --persist-max 2 "$S/w"
	same status "$status" 0
	same "inputs" "$(cut -d' ' -f2 "$OUT")" "$(seq 5)"
	# ceil(5/2) = 3 workers, answering 2, 2 and 1 inputs.
	same "tasks per worker pid" "$(cut -d' ' -f1 "$OUT" | uniq -c | awk '{ print $1 }' | tr '\n' ' ')" "2 2 1 "
	same "distinct pids" "$(cut -d' ' -f1 "$OUT" | sort -u | wc -l)" 3
	same "workers started" "$(wc -l <"$S/starts")" 3
}

@test "--persist-max: a slot's next worker starts only once the retired one has exited" {
	# -j1 is one worker at a time.  Each worker logs its start, the EOF it
	# gets after its one task (input X), and its end; between the two it
	# waits on gate.X, so the order of the log shows any overlap.
	cat >"$S/w" <<-EOF
		#!/bin/sh
		echo start >>"$S/log"
		while IFS= read -r l; do echo "\$l"; x=\$l; done
		echo "eof \$x" >>"$S/log"
		fifo-wait "$S/gate.\$x" >/dev/null
		echo "end \$x" >>"$S/log"
	EOF
	chmod +x "$S/w"
	mkfifo "$S/gate.a" "$S/gate.b"
	bg_cpmap -t 30 -i <(printf '%s\n' a b) --persist -j1 --persist-max 1 "$S/w"
	timeout 20 wait-lines "$S/log" 2
	release_within "$S/gate.a"
	timeout 20 wait-lines "$S/log" 5
	release_within "$S/gate.b"
	finish
	same status "$status" 0
	same log "$(cat "$S/log")" 'start
eof a
end a
start
eof b
end b'
	same stdout "$(cat "$OUT")" 'a
b'
}

@test "--timeout on a persistent task stops its worker; the others are answered once" {
	worker w '[ "$l" = hang ] && fifo-wait "$S/gate" >/dev/null
echo "$l"'
	printf '%s\n' a b hang c d | prun --persist -j1 --timeout 1s --json "$S/w"
	same status "$status" 1
	same "hang's record" "$(jq -c 'select(.input == "hang") | [.status, .stdout, .error.kind]' "$OUT")" \
		'["timeout","","timeout"]'
	jq -r 'select(.status == "ok") | .stdout' "$OUT" | sed '/^$/d' >"$S/answers"
	each_once answers "$S/answers" a b c d
	same stderr "$(cat "$ERR")" "cpmap: task 3 (input hang): timed out after 1s"
	no_leftovers "$S/gate"
}

@test "a worker's stderr reaches cpmap's stderr line by line, prefixed [slot N]" {
	cat >"$S/w" <<-EOF
		#!/bin/sh
		while IFS= read -r l; do
			echo "\$l"
			echo "saw \$l in \$CPMAP_SLOT" >&2
		done
		printf 'bye from %s' "\$CPMAP_SLOT" >&2
	EOF
	chmod +x "$S/w"
	printf '%s\n' a b c | prun --persist -j1 "$S/w"
	same status "$status" 0
	same stdout "$(cat "$OUT")" 'a
b
c'
	same stderr "$(cat "$ERR")" '[slot 1] saw a in 1
[slot 1] saw b in 1
[slot 1] saw c in 1
[slot 1] bye from 1'
	# Two workers: every line carries its own worker's slot.
	seq 30 | prun --persist -j2 --json "$S/w"
	same "status, -j2" "$status" 0
	same "stderr lines from tasks" "$(grep -c ' saw ' "$ERR")" 30
	same "lines not of the form [slot N] saw X in N" \
		"$(grep -vE '^\[slot ([12])\] (saw [0-9]+ in|bye from) \1$' "$ERR")" ""
	same "record stderr" "$(jq -r .stderr "$OUT" | sort -u)" ""
}

@test "at the end every worker gets EOF and exits before cpmap does" {
	cat >"$S/w" <<-EOF
		#!/bin/sh
		while IFS= read -r l; do echo "\$l"; done
		echo "eof \$CPMAP_SLOT" >>"$S/eofs"
	EOF
	chmod +x "$S/w"
	seq 50 | prun --persist -j2 "$S/w"
	same status "$status" 0
	same "answers" "$(sort -n "$OUT")" "$(seq 50)"
	no_leftovers "$S/w"
	same "workers that saw EOF" "$(sort "$S/eofs" | uniq -c | awk '$1 != 1')" ""
	[ "$(wc -l <"$S/eofs")" -ge 1 ] || fail "no worker saw EOF"
}

@test "a worker that ignores EOF at the end is stopped with SIGTERM (after 5 s)" {
	worker w 'echo "$l"'
	# After its loop it blocks on a gate nobody opens.
	echo 'exec fifo-wait "$S/gate"' >>"$S/w"
	printf '%s\n' a b | prun --persist -j1 "$S/w"
	same status "$status" 0
	same stdout "$(cat "$OUT")" 'a
b'
	no_leftovers "$S/gate"
}

@test "a worker retired by --persist-max that ignores EOF is stopped too" {
	worker w 'echo "$l"'
	echo 'exec fifo-wait "$S/gate"' >>"$S/w"
	# The 5 s grace, then SIGTERM: 15 s is plenty, 30 s would be a long wait
	# for a failure.
	status=0
	printf '%s\n' a b | timeout -k 5 15 "$CPMAP" --persist -j1 -k --persist-max 1 "$S/w" \
		>"$OUT" 2>"$ERR" 3>&- || status=$?
	same status "$status" 0
	same stdout "$(cat "$OUT")" 'a
b'
	no_leftovers "$S/gate"
}

@test "a worker command that cannot start fails each task with \"cannot run\"" {
	printf '%s\n' a b | prun --persist -j1 "$S/nosuch"
	same status "$status" 2
	same stdout "$(cat "$OUT")" ""
	same stderr "$(cat "$ERR")" "cpmap: task 1 (input a): cannot run $S/nosuch: No such file or directory
cpmap: task 2 (input b): cannot run $S/nosuch: No such file or directory"
}

# ---- signals -------------------------------------------------------------

@test "SIGTERM while a worker is busy: exit 143, the task it interrupted is not written" {
	worker w '[ "$l" = hang ] && fifo-wait -s "$S/busy" "$S/gate" >/dev/null
echo "$l"'
	bg_cpmap -i <(printf '%s\n' a hang b) --persist -j1 "$S/w"
	timeout 20 wait-lines "$S/busy" 1
	kill -TERM "$PID"
	finish
	same status "$status" 143
	same stdout "$(cat "$OUT")" a
	no_leftovers "$S/w"
	no_leftovers "$S/gate"
}

@test "SIGTERM while a worker retired by --persist-max lingers: no new worker, exit 143" {
	# The retired worker got EOF but does not exit; task b waits for the
	# slot's next worker.  SIGTERM starts nothing new: it must stop the
	# lingering worker and end the run without starting a worker for b.
	worker w 'echo "$l"'
	echo 'exec fifo-wait -s "$S/lingering" "$S/gate"' >>"$S/w"
	bg_cpmap -i <(printf '%s\n' a b) --persist -j1 --persist-max 1 "$S/w"
	timeout 20 wait-lines "$S/lingering" 1
	kill -TERM "$PID"
	finish
	same "status (137: cpmap ignored SIGTERM and was killed)" "$status" 143
	same stdout "$(cat "$OUT")" a
	same "workers started" "$(wc -l <"$S/starts")" 1
	no_leftovers "$S/gate"
}

# ---- usage errors --------------------------------------------------------

@test "--persist usage errors: input placeholders, options that need it, options it excludes" {
	local args want
	while IFS='|' read -r args want; do
		# shellcheck disable=SC2086 # ARGS is a word list on purpose
		run timeout 20 "$CPMAP" $args ::: a </dev/null
		same "cpmap $args: status" "$status" 255
		same "cpmap $args: output" "$output" "cpmap: $want (see cpmap --help)"
	done <<-'EOF'
		--persist echo {}|--persist sends each input to the worker's stdin: the command cannot use {} or fields
		--persist echo {1}|--persist sends each input to the worker's stdin: the command cannot use {} or fields
		--persist echo x{/.}y|--persist sends each input to the worker's stdin: the command cannot use {} or fields
		--persist -I XX echo XX|--persist sends each input to the worker's stdin: the command cannot use {} or fields
		--stride 2 cat|--stride and --persist-max need --persist
		--persist-max 2 cat|--stride and --persist-max need --persist
		--persist --stride 0 cat|--stride: 0 is out of range (1 to 65536)
		--persist --stdin cat|--persist does not combine with --stdin (inputs go to the worker's stdin)
		--persist -u cat|--persist does not combine with --ungroup
		--persist --line-buffer cat|--persist does not combine with --line-buffer
		--persist --dry-run cat|--persist does not combine with --dry-run
	EOF
	# {name} with --header and with -J records.
	run timeout 20 "$CPMAP" --persist --header : echo {col} ::: col a
	same "{name}: status" "$status" 255
	run timeout 20 bash -c 'echo "{\"a\":1}" | "$CPMAP" -J --persist echo {a}'
	same "-J {a}: status" "$status" 255
	same "-J {a}: output" "$output" \
		"cpmap: --persist sends each input to the worker's stdin: the command cannot use {} or fields (see cpmap --help)"
}

# ---- the worked examples in contrib/ ---------------------------------------

# table: the lookup table both examples load.
table() {
	printf '%s\n' 'apple	red' 'banana	yellow' 'kiwi	green fuzzy' \
		'plum	purple	small' 'notab' '' 'apple	green' >"$S/table.tsv"
}

@test "contrib/persist-worker.py answers each key from the table it loaded once" {
	table
	printf '%s\n' kiwi apple nosuch plum banana notab |
		prun --persist -k -j2 "$CONTRIB/persist-worker.py" "$S/table.tsv"
	same status "$status" 0
	same stdout "$(cat "$OUT")" "$(printf '%s\n' 'kiwi	green fuzzy' 'apple	green' 'nosuch	NA' \
		'plum	purple	small' 'banana	yellow' 'notab	')"
	same stderr "$(cat "$ERR")" ""
}

@test "contrib/persist-worker.py --json answers -J records with one JSON line each" {
	table
	printf '%s\n' '"kiwi"' '{"key": "apple", "n": 1}' '{"name": "plum"}' '"nosuch"' '[1]' |
		prun -J --json --persist -k "$CONTRIB/persist-worker.py" --json "$S/table.tsv"
	same status "$status" 0
	same answers "$(jq -r .stdout "$OUT" | sed '/^$/d')" \
		'{"key":"kiwi","value":"green fuzzy"}
{"key":"apple","n":1,"value":"green"}
{"error":"the record has no string field '\''key'\''"}
{"key":"nosuch","value":null}
{"error":"expected a string or an object"}'
	printf '%s\n' '{"name": "plum"}' |
		prun -J --persist "$CONTRIB/persist-worker.py" --json --field name --verbose "$S/table.tsv"
	same "--field name" "$(cat "$OUT")" '{"name":"plum","value":"purple\tsmall"}'
	same "--verbose on stderr" "$(cat "$ERR")" "[slot 1] loaded 5 keys from $S/table.tsv"
}

@test "contrib/persist-worker.sh gives the same answers as the Python example" {
	table
	printf '%s\n' kiwi apple nosuch plum banana notab '$(echo hi)' 'a]b' >"$S/keys"
	prun --persist -k -j2 "$CONTRIB/persist-worker.sh" "$S/table.tsv" <"$S/keys"
	same status "$status" 0
	same stdout "$(cat "$OUT")" "$(printf '%s\n' 'kiwi	green fuzzy' 'apple	green' 'nosuch	NA' \
		'plum	purple	small' 'banana	yellow' 'notab	' '$(echo hi)	NA' 'a]b	NA')"
	same stderr "$(cat "$ERR")" ""
	cp "$OUT" "$S/sh.out"
	prun --persist -k -j2 "$CONTRIB/persist-worker.py" "$S/table.tsv" <"$S/keys"
	same "python vs sh" "$(cat "$OUT")" "$(cat "$S/sh.out")"
	prun --persist -j1 "$CONTRIB/persist-worker.sh" --verbose "$S/table.tsv" <<<kiwi
	same "--verbose on stderr" "$(cat "$ERR")" "[slot 1] loaded 5 keys from $S/table.tsv"
}

# ---- buffering workers (issue 10, item 7) ----------------------------------

@test "a worker that buffers its answers gets EOF once the input has ended, and answers" {
	# mawk reads its input 4 KiB at a time and buffers its output: without
	# EOF it would answer nothing.  Every input fits in the first batches.
	run --separate-stderr timeout 20 sh -c \
		'seq 100 | "$1" -k -j2 --persist mawk "{print \$1*2}"' sh "$CPMAP"
	same status "$status" 0
	same stdout "$output" "$(seq 100 | mawk '{print $1*2}')"
	same stderr "$stderr" ""
}

@test "a retry after the input has ended starts a worker that gets EOF too" {
	# The worker dies on "boom" once (a marker file): the retry goes to a
	# new worker, after the input has ended, and must not hang it.
	run --separate-stderr timeout 20 sh -c \
		'printf "a\nboom\nc\n" | "$1" -k -j1 --retries 1 --persist sh -c "
			if [ -e \"\$0\" ]; then exec mawk \"{print \\\"ok \\\" \\\$1}\"; fi
			while read l; do [ \"\$l\" = boom ] && { : >\"\$0\"; exit 3; }; echo \"ok \$l\"; done" "$2"' \
		sh "$CPMAP" "$S/died"
	same status "$status" 0
	same stdout "$output" "ok a
ok boom
ok c"
}

@test "a worker that buffers while more input waits: one line naming the slot and the cure, and the run finishes" {
	run --separate-stderr timeout 30 sh -c \
		'seq 1000 | "$1" -k -j2 --persist mawk "{print \$1*2}"' sh "$CPMAP"
	same status "$status" 0
	same stdout "$output" "$(seq 1000 | mawk '{print $1*2}')"
	same "warning lines" "$(grep -c . <<<"$stderr")" 1
	[[ $stderr == "cpmap: [slot "[12]"] the worker has answered none of 64 inputs for 5s: it may buffer its output (try stdbuf -oL, python -u, mawk -W interactive, grep --line-buffered); each worker now gets 64 inputs, then EOF" ]] ||
		{ echo "stderr: $stderr" >&2; false; }
}

@test "awk with fflush() finishes: seq 1000 | cpmap --persist awk '{print \$1*2; fflush()}'" {
	run --separate-stderr timeout 30 sh -c \
		'seq 1000 | "$1" -k --persist awk "{print \$1*2; fflush()}"' sh "$CPMAP"
	same status "$status" 0
	same stdout "$output" "$(seq 1000 | awk '{print $1*2}')"
}

@test "a slow worker busy with its answers is not taken for a buffering one" {
	# One place (--stride 1), so input 2 waits while the worker spends 6 s
	# on input 1, asleep in a child, not in a read of its stdin.
	run --separate-stderr timeout 30 sh -c \
		'seq 2 | "$1" -k -j1 --stride 1 --persist sh -c "while read l; do [ \$l = 1 ] && sleep 6; echo \$l; done"' sh "$CPMAP"
	same status "$status" 0
	same stdout "$output" "1
2"
	same stderr "$stderr" ""
}
