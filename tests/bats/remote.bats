#!/usr/bin/env bats
# remote.bats - remote workers (-S, --transport, --host-timeout, --env) on
# three private sshd hosts on loopback (h1 h2 h3 = 127.0.0.1-3, one port,
# see remote-helpers.bash), and on the fake transport (tests/bin/
# fake-transport), whose "hosts" are process trees a test can kill or stop.
#
# Every host is this machine, so a test checks on the host itself that no
# remote process is left: every task's command line holds $S (the test's
# scratch dir), hence no_leftovers "$S/"; sshbed_idle says each sshd
# listener has no connection left.  cpmap runs in a private mount namespace
# whose /tmp is $P (the real /tmp stays reachable through symlinks), so its
# control directories /tmp/cpmap-* are seen exactly, whatever else runs on
# the machine; each sshd host gives its sessions TMPDIR=$SSHBED_DIR/hN/tmp,
# so the agents' cpmap-agent.* directories land there.
#
# remote-worker.bats is this file under another name: there, every host
# has the cpmap under test on its PATH, so the same tests run with
# `cpmap --worker` as the agent instead of the sh agent.
#
# Timing is controlled by files: a task says it started by appending to
# $S/started and holds still in `wait-lines $S/go 1` until the test appends
# a line to $S/go (or in fifo-wait on a gate).  No sleep decides anything.

load helpers
load remote-helpers
bats_require_minimum_version 1.5.0

setup_file() {
	export REMOTE_AGENT_DIR= AGENT=sh
	if [ "${BATS_TEST_FILENAME##*/}" = remote-worker.bats ]; then
		REMOTE_AGENT_DIR=$(dirname "$CPMAP")
		AGENT="cpmap --worker"
	fi
	sshbed_setup_suite h
}

teardown_file() {
	[ -n "${SSHBED_DIR:-}" ] || return 0
	local left
	sshbed_stop_all
	# Nothing of the test bed may be left: no sshd, no session, no agent
	# directory.
	left=$(pgrep -af -- "$SSHBED_DIR" || true)
	rm -rf "$SSHBED_DIR"
	[ -z "$left" ] || {
		echo "left after the suite: $left" >&2
		return 1
	}
}

setup() {
	setup_scratch
	S=$SCRATCH
	export S
	export LC_ALL=C
	T="ssh -F ${SSHBED_DIR:-/nonexistent}/ssh_config"
	FT=$TESTS_SRC/bin/fake-transport
	export FAKE_HOSTS=$S/hosts
	mkdir "$FAKE_HOSTS"
	# cpmap's private /tmp: $P, with the real /tmp under $P/real and
	# symlinks to the parts of it the test uses.
	P=$S/ptmp
	mkdir -p "$P/real"
	local d top
	# The binary and helpers too, when the build is under /tmp (make
	# distcheck from a build directory there).
	for d in "$S" "${SSHBED_DIR:-}" "$CPMAP" "$TESTS_BIN" "$TESTS_SRC"; do
		case $d in
		/tmp/?*)
			top=${d#/tmp/}
			top=${top%%/*}
			[ -L "$P/$top" ] || ln -s "real/$top" "$P/$top"
			;;
		esac
	done
	export P
	BG=
}

teardown() {
	kill_test_processes
	# A test that crashed or froze a host: bring it back for the next.
	local h i
	for i in 1 2 3; do
		h=h$i
		[ -n "${SSHBED_DIR:-}" ] && [ -z "$SSHBED_SKIP" ] || break
		sshbed_thaw_host "$h"
		[ -f "$SSHBED_DIR/$h/pid" ] || sshbed_start_host "$h" "127.0.0.$i"
		# Whatever a test left there failed that test; the next starts
		# clean.
		rm -rf "${SSHBED_DIR:?}/$h/tmp/"*
	done
	for h in "$FAKE_HOSTS"/*.pids; do
		[ -f "$h" ] || continue
		h=${h##*/}
		fake_cont_host "${h%.pids}"
		fake_kill_host "${h%.pids}"
	done
	true
}

need_sshd() {
	[ -z "$SSHBED_SKIP" ] || skip "sshd cannot start: $SSHBED_SKIP"
}

# rcpmap ARGS...: cpmap with $P as its /tmp (use with `run`, or alone);
# its fake transports' hosts have cpmap on their PATH in remote-worker.bats.
rcpmap() {
	PATH=${REMOTE_AGENT_DIR:+$REMOTE_AGENT_DIR:}$PATH unshare -m --propagation private sh -c \
		'mount --rbind /tmp "$0/real" && mount --rbind "$0" /tmp && exec "$CPMAP" "$@"' \
		"$P" "$@"
}

# bg_rcpmap INFILE ARGS...: rcpmap in the background (bounded), stdout in
# $S/out, stderr in $S/err; cpmap's pid in $PID.
bg_rcpmap() {
	local in=$1
	shift
	PATH=${REMOTE_AGENT_DIR:+$REMOTE_AGENT_DIR:}$PATH \
		timeout -s KILL 60 unshare -m --propagation private sh -c \
		'mount --rbind /tmp "$0/real" && mount --rbind "$0" /tmp && exec "$CPMAP" "$@"' \
		"$P" "$@" <"$in" >"$S/out" 2>"$S/err" 3>&- &
	BG=$!
	PID=
	for _ in $(seq 1000); do
		PID=$(pgrep -P "$BG") && break
	done
	[ -n "$PID" ]
}

# finish: wait for the background cpmap; its exit status in $status.
finish() {
	status=0
	wait "$BG" || status=$?
	BG=
}

# script NAME BODY: $S/NAME, a sh script that knows $S and the test
# helpers wherever it runs (ssh passes no environment).
script() {
	{
		printf '#!/bin/sh\nS=%q\nPATH=%q:$PATH\nexport S PATH\n' "$S" "$TESTS_BIN"
		printf '%s\n' "$2"
	} >"$S/$1"
	chmod +x "$S/$1"
}

# clean HOST...: nothing of the test is left: no process with $S in its
# command line, no connection on the sshd hosts named, no control directory
# in cpmap's /tmp, no agent directory on the hosts.
clean() {
	local left h
	no_leftovers "$S/" || {
		pgrep -af -- "$S/" >&2
		return 1
	}
	[ $# -eq 0 ] || sshbed_idle "$@" || return 1
	left=$(find "$P" -mindepth 1 -maxdepth 1 ! -name real ! -type l)
	same "cpmap's /tmp" "$left" "" || return 1
	for h; do
		left=$(ls -A "$SSHBED_DIR/$h/tmp")
		same "host $h's TMPDIR" "$left" "" || return 1
	done
}

# The hostile corpus, NUL-separated, in $S/corpus.
corpus() {
	printf '%s\0' \
		'plain' 'two  spaces' ' lead and trail ' "it's" '"double"' \
		'$(touch '"$S"'/pwned)' '`touch '"$S"'/pwned`' '$HOME' '${x:-y}' \
		'back\slash\\' '\n\t' '*' '?[a-z]' '~' '{}' '%s %d' \
		$'line one\nline two' $'tab\there' $'\xff\xfe invalid \xc3' \
		'-n' '--help' '-' ';' '|' '&&' '>out' "'" '"' \
		>"$S/corpus"
}

# hosts_of FILE: the sorted distinct hosts of the JSON records in FILE.
hosts_of() {
	jq -r .host "$1" | sort -u | tr '\n' ' '
}

# ---- same results as local ----------------------------------------------

@test "ssh: direct exec gives the same argv as a local run for every hostile input" {
	need_sshd
	corpus
	cpmap -k -0 argv-print {} "{}]" <"$S/corpus" >"$S/local"
	rcpmap -S h1,h2 --transport "$T" -k -0 "$TESTS_BIN/argv-print" {} "{}]" \
		<"$S/corpus" >"$S/remote" 2>"$S/err"
	cmp "$S/local" "$S/remote"
	# The local run is right to begin with: two lines per input.
	[ "$(wc -l <"$S/local")" -eq 56 ]
	[ "$(sed -n 1,2p "$S/local")" = $'plain\nplain]' ]
	[ "$(sed -n 33p "$S/local")" = 'line one\nline two' ]
	[ "$(sed -n 37p "$S/local")" = $'\xff\xfe invalid \xc3' ]
	[ "$(sed -n 39p "$S/local")" = '-n' ]
	# One host may finish everything before the other one is up.
	grep -q "host h[12]: up" "$S/err"
	[ ! -e "$S/pwned" ]
	clean h1 h2
}

@test "ssh: shell mode quotes every hostile input for the remote sh as it does locally" {
	need_sshd
	corpus
	local item
	while IFS= read -r -d '' item; do
		printf '[%s]\n' "$item"
	done <"$S/corpus" >"$S/want"
	cpmap -k -0 'printf "[%s]\n" {}' <"$S/corpus" >"$S/local"
	cmp "$S/want" "$S/local"
	rcpmap -S h1 --transport "$T" -k -0 'printf "[%s]\n" {}' \
		<"$S/corpus" >"$S/remote" 2>"$S/err"
	cmp "$S/want" "$S/remote"
	[ "$(cat "$S/err")" = "cpmap: host h1: up, 2 slots" ] ||
		[ "$(cat "$S/err")" = "cpmap: host h1: up, $(getconf _NPROCESSORS_ONLN) slots" ]
	[ ! -e "$S/pwned" ]
	clean h1
}

@test "ssh: binary output (NUL bytes, invalid UTF-8, no final newline, a megabyte) comes back byte for byte" {
	need_sshd
	local want
	{
		for i in 1 2 3; do printf "a\0b\377\n$i-end"; done
		seq 200000
		printf 'x\0'
	} >"$S/want"
	printf '%s\n' 1 2 3 >"$S/in"
	rcpmap -S 1/h1,1/h2 --transport "$T" -k printf 'a\000b\377\n%s-end' \
		<"$S/in" >"$S/remote"
	rcpmap -S 1/h2 --transport "$T" -k sh -c 'seq 200000; printf "x\0"' \
		::: 1 >>"$S/remote"
	cpmap -k printf 'a\000b\377\n%s-end' <"$S/in" >"$S/local"
	cpmap -k sh -c 'seq 200000; printf "x\0"' ::: 1 >>"$S/local"
	cmp "$S/want" "$S/local"
	cmp "$S/want" "$S/remote"
	clean h1 h2
}

@test "ssh: --json records equal local ones but for host, start and duration" {
	need_sshd
	printf '%s\n' good bad $'\xff\xfe' 'a b' >"$S/in"
	cpmap -j1 -k --json sh -c 'echo "out $1"; echo "err $1" >&2; [ "$1" != bad ]' \
		sh {} <"$S/in" >"$S/local" 2>"$S/lerr" || true
	run --separate-stderr rcpmap -S 1/h1 --transport "$T" -k --json \
		sh -c 'echo "out $1"; echo "err $1" >&2; [ "$1" != bad ]' sh {} <"$S/in"
	[ "$status" -eq 1 ]
	printf '%s\n' "$output" >"$S/remote"
	[ "$(wc -l <"$S/local")" -eq 4 ]
	[ "$(jq -c 'del(.host,.start,.duration)' "$S/remote")" = \
		"$(jq -c 'del(.host,.start,.duration)' "$S/local")" ]
	[ "$(hosts_of "$S/remote")" = "h1 " ]
	[ "$(jq -r .status "$S/remote" | tr '\n' ' ')" = "ok failed ok ok " ]
	clean h1
}

# ---- output modes and the task's environment ------------------------------

@test "ssh: -k and --tag over three hosts: input order whatever order tasks end in" {
	need_sshd
	# Task N waits on its own gate; all three run at once (one slot per
	# host), and end in the order 3, 2, 1.
	script t 'fifo-wait -s "$S/started" "$S/gate$1" >/dev/null
echo "out $1"
echo "$1" >>"$S/done"'
	mkfifo "$S/gate1" "$S/gate2" "$S/gate3"
	printf '%s\n' 1 2 3 >"$S/in"
	bg_rcpmap "$S/in" -S 1/h1,1/h2,1/h3 --transport "$T" -k --tag \
		--joblog "$S/joblog" "$S/t"
	wait_lines "$S/started" 3
	release "$S/gate3"
	wait_lines "$S/done" 1
	release "$S/gate2"
	wait_lines "$S/done" 2
	release "$S/gate1"
	finish
	[ "$status" -eq 0 ]
	[ "$(cat "$S/done" | tr '\n' ' ')" = "3 2 1 " ]
	[ "$(cat "$S/out")" = $'1\tout 1\n2\tout 2\n3\tout 3' ]
	clean h1 h2 h3
	# One task on each host: the joblog's Host column.
	same "joblog hosts" "$(tail -n +2 "$S/joblog" | cut -f2 | sort | tr '\n' ' ')" "h1 h2 h3 "
}

@test "ssh: {%}, CPMAP_SLOT, CPMAP_SEQ, PARALLEL_SEQ, CPMAP_HOST, PARALLEL_SSHLOGIN and --env reach the task" {
	need_sshd
	export ONE='a b $(x) '"'"'q'"'"' \'
	export TWO=not-asked-for
	run --separate-stderr rcpmap -S 1/h1 --transport "$T" -k --env ONE sh -c \
		'printf "%s\n" "$1 $CPMAP_SLOT $CPMAP_SEQ $PARALLEL_SEQ $CPMAP_HOST $PARALLEL_SSHLOGIN [$ONE] [${TWO-unset}]"' \
		sh {%} ::: a b
	[ "$status" -eq 0 ]
	same stdout "$output" "1 1 1 1 h1 h1 [$ONE] [unset]
1 1 2 2 h1 h1 [$ONE] [unset]"
	same stderr "$stderr" "cpmap: host h1: up, 1 slot"
	clean h1
}

@test "ssh: per-host slots: -S 2/h1,1/h2 runs at most 2 tasks on h1 and 1 on h2, and both at once" {
	need_sshd
	# Task N logs start/end on its host and waits on gate N; the test lets
	# task N go only once N+1 and N+2 have started too, so three run at once
	# as long as there are tasks.
	script t 'echo "start $1" >>"$S/log.$CPMAP_HOST"
fifo-wait -s "$S/started" "$S/gate$1" >/dev/null
echo "end $1" >>"$S/log.$CPMAP_HOST"
echo "$1"'
	local n=12 i
	for i in $(seq $n); do mkfifo "$S/gate$i"; done
	seq $n >"$S/in"
	bg_rcpmap "$S/in" -S 2/h1,1/h2 --transport "$T" --json \
		--joblog "$S/joblog" "$S/t"
	for i in $(seq $n); do
		wait_lines "$S/started" $((i + 2 > n ? n : i + 2))
		release "$S/gate$i"
	done
	finish
	[ "$status" -eq 0 ]
	# The most tasks running at once on each host, from its log.
	peak() { awk '/^start/{n++; if (n > m) m = n} /^end/{n--} END{print m+0}' "$1"; }
	same "peak on h1" "$(peak "$S/log.h1")" 2
	same "peak on h2" "$(peak "$S/log.h2")" 1
	[ "$(jq -r .stdout "$S/out" | sed '/^$/d' | sort -n | tr '\n' ' ')" = "$(seq $n | tr '\n' ' ')" ]
	[ "$(hosts_of "$S/out")" = "h1 h2 " ]
	# Each record's host is where its task ran: as logged there.
	[ "$(jq -r 'select(.host == "h2") | .seq' "$S/out" | sort -n | tr '\n' ' ')" = \
		"$(sed -n 's/^start //p' "$S/log.h2" | sort -n | tr '\n' ' ')" ]
	clean h1 h2
	same "joblog hosts" \
		"$(tail -n +2 "$S/joblog" | cut -f2 | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')" \
		"h1=$(grep -c start "$S/log.h1") h2=$(grep -c start "$S/log.h2") "
}

# ---- which agent ------------------------------------------------------------

@test "the agent is cpmap --worker where the host has it, else sh; --remote-agent sh forces sh" {
	need_sshd
	run --separate-stderr env CPMAP_DEBUG="$S/trace" \
		"$CPMAP" -S 1/h1 --transport "$T" echo ::: a
	[ "$status" -eq 0 ]
	same "output" "$output" "a"
	same "agent" "$(grep -o 'agent .*' "$S/trace")" "agent $AGENT"
	run --separate-stderr env CPMAP_DEBUG="$S/trace2" \
		"$CPMAP" -S 1/h1 --transport "$T" --remote-agent sh echo ::: b
	same "output" "$output" "b"
	same "agent" "$(grep -o 'agent .*' "$S/trace2")" "agent sh"
	FAKE_HOSTS=$S/hosts run --separate-stderr env CPMAP_DEBUG="$S/trace3" \
		PATH="${REMOTE_AGENT_DIR:+$REMOTE_AGENT_DIR:}$PATH" \
		"$CPMAP" -S 1/x --transport "$FT" echo ::: c
	same "output" "$output" "c"
	same "agent" "$(grep -o 'agent .*' "$S/trace3")" "agent $AGENT"
}

@test "a host name that starts with '-' is refused: it would be an option of ssh" {
	run --separate-stderr "$CPMAP" -S '-oProxyCommand=touch\ '"$S/pwned" echo ::: a
	[ "$status" -eq 255 ]
	same "stderr" "$stderr" "cpmap: -S: '-oProxyCommand=touch\ $S/pwned': a host name cannot start with '-' (see cpmap --help)"
	[ ! -e "$S/pwned" ]
}

# ---- failures of a task are not failures of a host ------------------------

@test "ssh: a task that exits 255 is a task failure (exit 255, status 1); the host stays up" {
	need_sshd
	cpmap -j1 -k --json sh -c 'echo "$1"; exit "$1"' sh ::: 255 0 0 \
		>"$S/local" 2>"$S/lerr" || true
	run --separate-stderr rcpmap -S 1/h1 --transport "$T" -k --json \
		sh -c 'echo "$1"; exit "$1"' sh ::: 255 0 0
	[ "$status" -eq 1 ]
	[ "$(jq -r '"\(.seq) \(.host) \(.status) \(.exit) \(.attempts)"' <<<"$output")" = \
"1 h1 failed 255 1
2 h1 ok 0 1
3 h1 ok 0 1" ]
	[ "$(jq -c 'del(.host,.start,.duration)' <<<"$output")" = \
		"$(jq -c 'del(.host,.start,.duration)' "$S/local")" ]
	# stderr: the host came up once, never went down; the rest as local.
	same "stderr" "$stderr" \
		"$(printf 'cpmap: host h1: up, 1 slot\n%s' "$(cat "$S/lerr")")"
	clean h1
}

@test "ssh: --timeout kills the remote task's whole process group on the host" {
	need_sshd
	# The task and a child it left in the background both hold still.
	script t 'fifo-wait -s "$S/started" "$S/never" &
exec fifo-wait -s "$S/started" "$S/never"'
	mkfifo "$S/never"
	run --separate-stderr rcpmap -S 1/h1 --transport "$T" --timeout 1 --json "$S/t" ::: x
	[ "$status" -eq 1 ]
	[ "$(jq -r '"\(.host) \(.status) \(.error.kind)"' <<<"$output")" = "h1 timeout timeout" ]
	[[ $stderr == *"task 1 (input x): timed out after 1s"* ]]
	# Nothing but the task writes its stderr (no "Terminated" from a sh).
	same "task stderr" "$(jq -r '.stdout + .stderr' <<<"$output")" ""
	# Both processes ran, on the host (this machine), and are gone.
	[ "$(wc -l <"$S/started")" -eq 2 ]
	gone $(cut -d' ' -f1 "$S/started")
	clean h1
}

@test "ssh: tasks that ignore SIGTERM: --kill-after's SIGKILL ends each one's group, what they wrote comes back, the next runs" {
	need_sshd
	# Each task and its child ignore SIGTERM: only SIGKILL ends them.
	script t 'trap "" TERM
echo "out $1"
echo "err $1" >&2
fifo-wait -s "$S/started" "$S/never" &
exec fifo-wait -s "$S/started" "$S/never"'
	mkfifo "$S/never"
	run --separate-stderr rcpmap -S 1/h1 --transport "$T" --timeout 1 --kill-after 1 \
		--json "$S/t" ::: a b
	[ "$status" -eq 2 ]
	same "records" "$(jq -c '[.input, .host, .status, .signal, .stdout, .stderr]' <<<"$output" | sort)" \
		'["a","h1","timeout","SIGKILL","out a\n","err a\n"]
["b","h1","timeout","SIGKILL","out b\n","err b\n"]'
	[ "$(wc -l <"$S/started")" -eq 4 ]
	gone $(cut -d' ' -f1 "$S/started")
	clean h1
}

@test "ssh: SIGINT to cpmap mid-run: exit 130, no remote process left on the hosts" {
	need_sshd
	script t 'echo "$1 $CPMAP_HOST" >>"$S/started"
exec wait-lines "$S/go" 1'
	seq 6 >"$S/in"
	bg_rcpmap "$S/in" -S 2/h1,1/h2 --transport "$T" "$S/t"
	wait_lines "$S/started" 3
	local pids
	pids=$(pgrep -f -- "wait-lines $S/go")
	[ "$(wc -w <<<"$pids")" -eq 3 ]
	kill -INT "$PID"
	finish
	[ "$status" -eq 130 ]
	gone $pids
	[ "$(wc -l <"$S/started")" -eq 3 ]
	clean h1 h2
}

# ---- hosts that die or hang ------------------------------------------------

@test "ssh: a host's sshd tree killed mid-run: every input still gets exactly one result, exit 0" {
	need_sshd
	script t 'echo "$1 $CPMAP_HOST" >>"$S/started"
wait-lines "$S/go" 1 || exit 9
echo "$1"'
	seq 8 >"$S/in"
	bg_rcpmap "$S/in" -S 1/h1,1/h2 --transport "$T" --json "$S/t"
	wait_lines "$S/started" 2
	local lost
	lost=$(awk '$2 == "h2" {print $1}' "$S/started")
	same "h2's task" "$(wc -w <<<"$lost")" 1
	sshbed_kill_host h2
	echo go >>"$S/go"
	finish
	[ "$status" -eq 0 ]
	# One record per input, each ok and printing its input.
	[ "$(jq -r '"\(.seq) \(.status) \(.stdout)"' "$S/out" | sed '/^$/d' | sort -n)" = \
		"$(for i in $(seq 8); do echo "$i ok $i"; done)" ]
	[ "$(jq -r .seq "$S/out" | sort -n | uniq -c | awk '$1 != 1')" = "" ]
	# The input that was running on h2 ran again, on h1 (with no
	# --retries: a requeue is not a retry).
	[ "$(jq -r "select(.seq == $lost) | .host" "$S/out")" = h1 ]
	grep -q "host h2: down" "$S/err"
	# The sh agent killed with its host (SIGKILL) could not remove its
	# directory; a crashed host keeps its /tmp.  cpmap --worker has none.
	if [ "$AGENT" = sh ]; then
		same "h2's /tmp" "$(ls "$SSHBED_DIR/h2/tmp" | sed 's/\..*//')" cpmap-agent
	else
		same "h2's /tmp" "$(ls "$SSHBED_DIR/h2/tmp")" ""
	fi
	rm -rf "$SSHBED_DIR/h2/tmp/"*
	clean h1
}

@test "ssh: a frozen host (SIGSTOP): its task goes elsewhere within the ServerAlive window" {
	need_sshd
	script t 'echo "$1 $CPMAP_HOST" >>"$S/started"
wait-lines "$S/go" 1 || exit 9
echo "$1"'
	seq 4 >"$S/in"
	bg_rcpmap "$S/in" -S 1/h1,1/h2 --transport "$T" --json "$S/t"
	wait_lines "$S/started" 2
	local lost t0
	lost=$(awk '$2 == "h2" {print $1}' "$S/started")
	same "h2's task" "$(wc -w <<<"$lost")" 1
	sshbed_freeze_host h2
	t0=$SECONDS
	echo go >>"$S/go"
	finish
	local took=$((SECONDS - t0))
	sshbed_thaw_host h2
	[ "$status" -eq 0 ]
	[ "$(jq -r '"\(.seq) \(.status) \(.stdout)"' "$S/out" | sort -n | sed '/^$/d')" = \
		"1 ok 1
2 ok 2
3 ok 3
4 ok 4" ]
	[ "$(jq -r "select(.seq == $lost) | .host" "$S/out")" = h1 ]
	grep -q "host h2: down" "$S/err"
	# ServerAliveInterval=3 x ServerAliveCountMax=3: about 9-12 s.
	echo "# requeued after ${took}s" >&3
	[ "$took" -le 16 ]
	clean h1 h2
}

@test "ssh: all hosts down: with --host-timeout 2s every task ends host-lost, non-zero exit, a message on stderr" {
	need_sshd
	local port
	port=$(sshbed_free_port)
	run --separate-stderr rcpmap -S no-such-host.invalid,127.0.0.1:"$port" \
		--transport "$T" --host-timeout 2s --json -k echo ::: a b c
	[ "$status" -ne 0 ]
	[ "$(jq -r '"\(.seq) \(.input) \(.status) \(.error.kind)"' <<<"$output")" = \
		"1 a error host-lost
2 b error host-lost
3 c error host-lost" ]
	[[ $stderr == *"host no-such-host.invalid: cannot connect"* ]]
	[[ $stderr == *"host 127.0.0.1:$port: cannot connect"* ]]
	clean
}

# ---- other transports and bare hosts -----------------------------------------

@test "--transport: a script that plays 'srun -w HOST CMD...' runs the tasks on its nodes" {
	script srun '[ "$1" = -w ] || { echo "srun: need -w" >&2; exit 2; }
host=$2
shift 2
echo "$host" >>"$S/srun.log"
exec "$@"'
	# Each task holds its slot until three run at once: both nodes are up.
	script t 'echo "$1" >>"$S/started"
wait-lines "$S/go" 1 || exit 9
echo "$1 on $CPMAP_HOST"'
	seq 6 >"$S/in"
	bg_rcpmap "$S/in" -S 2/node1,1/node2 --transport "$S/srun -w" \
		-k --joblog "$S/joblog" "$S/t"
	wait_lines "$S/started" 3
	echo go >>"$S/go"
	finish
	[ "$status" -eq 0 ]
	output=$(cat "$S/out")
	[ "$(sed 's/ on node[12]$//' <<<"$output" | tr '\n' ' ')" = "1 2 3 4 5 6 " ]
	# srun was asked for each node: a control and one session per slot.
	[ "$(sort "$S/srun.log" | uniq -c | awk '{print $1, $2}' | tr '\n' ' ')" = \
		"3 node1 2 node2 " ]
	grep -q 'host node1: up, 2 slots' "$S/err"
	grep -q 'host node2: up, 1 slot' "$S/err"
	clean
	# The joblog's Host column names the node each task ran on.
	same "joblog hosts" "$(tail -n +2 "$S/joblog" | cut -f1,2 | sort -n | sed 's/\t/ on /')" \
		"$(sort -n <<<"$output")"
}

@test "a host with sh and coreutils but no cpmap, perl or setsid runs tasks as a local run does" {
	# The host: a transport that runs its command with PATH = a directory
	# of links to sh and some coreutils, nothing else in the environment.
	mkdir "$S/bin" "$S/hosttmp"
	local p
	for p in sh cat mktemp mkfifo head dd wc rm mv mkdir nproc sleep timeout; do
		ln -s "$(command -v $p)" "$S/bin/$p"
	done
	script bare 'shift
exec env -i PATH="$S/bin" TMPDIR="$S/hosttmp" "$@"'
	run -127 env -i PATH="$S/bin" sh -c \
		'command -v perl || command -v cpmap || command -v setsid || command -v getconf'
	[ "$status" -ne 0 ]
	corpus
	cpmap -k -0 'printf "[%s]\n" {}' <"$S/corpus" >"$S/local"
	cpmap -k -0 argv-print {} <"$S/corpus" >>"$S/local"
	rcpmap -S 2/bare --transport "$S/bare" -k -0 'printf "[%s]\n" {}' \
		<"$S/corpus" >"$S/remote" 2>"$S/err"
	rcpmap -S 2/bare --transport "$S/bare" -k -0 "$TESTS_BIN/argv-print" {} \
		<"$S/corpus" >>"$S/remote" 2>>"$S/err"
	cmp "$S/local" "$S/remote"
	[ "$(wc -l <"$S/remote")" -eq 57 ]
	[ "$(cat "$S/err")" = "cpmap: host bare: up, 2 slots
cpmap: host bare: up, 2 slots" ]
	[ -z "$(ls -A "$S/hosttmp")" ]
	clean
}

@test "a host with sh and coreutils but no setsid: --timeout still kills the task's whole process group" {
	mkdir "$S/bin" "$S/hosttmp"
	local p
	for p in sh cat mktemp mkfifo head dd wc rm mv mkdir nproc sleep timeout; do
		ln -s "$(command -v $p)" "$S/bin/$p"
	done
	script bare 'shift
exec env -i PATH="$S/bin" TMPDIR="$S/hosttmp" "$@"'
	# The task and a child it left in the background both hold still.
	script t 'fifo-wait -s "$S/started" "$S/never" &
exec fifo-wait -s "$S/started" "$S/never"'
	mkfifo "$S/never"
	run --separate-stderr rcpmap -S 1/bare --transport "$S/bare" --timeout 1 --json "$S/t" ::: x
	[ "$status" -eq 1 ]
	[ "$(jq -r '"\(.host) \(.status) \(.error.kind)"' <<<"$output")" = "bare timeout timeout" ]
	[ "$(wc -l <"$S/started")" -eq 2 ]
	gone $(cut -d' ' -f1 "$S/started")
	[ -z "$(ls -A "$S/hosttmp")" ]
	clean
}

@test "fake transport: a host's tree killed mid-run: every input exactly one result, exit 0" {
	script t 'echo "$1 $CPMAP_HOST" >>"$S/started"
wait-lines "$S/go" 1 || exit 9
echo "$1"'
	seq 8 >"$S/in"
	mkdir "$FAKE_HOSTS/fa.tmp" "$FAKE_HOSTS/fb.tmp"
	bg_rcpmap "$S/in" -S 1/fa,1/fb --transport "$FT" --json "$S/t"
	wait_lines "$S/started" 2
	local lost
	lost=$(awk '$2 == "fb" {print $1}' "$S/started")
	same "fb's task" "$(wc -w <<<"$lost")" 1
	fake_kill_host fb
	echo go >>"$S/go"
	finish
	same "status (stderr: $(cat "$S/err"); out: $(cat "$S/out"))" "$status" 0
	[ "$(jq -r '"\(.seq) \(.status) \(.stdout)"' "$S/out" | sed '/^$/d' | sort -n)" = \
		"$(for i in $(seq 8); do echo "$i ok $i"; done)" ]
	[ "$(jq -r .seq "$S/out" | sort -n | uniq -c | awk '$1 != 1')" = "" ]
	# It ran again: on fa, or on fb once fb was back (its back-off is
	# 1 s; which one is a race, and either is right).
	[ "$(jq -r "select(.seq == $lost) | .status" "$S/out")" = ok ]
	grep -q "host fb: down" "$S/err"
	fake_gone fa fb
	# The sh agent killed with fb (SIGKILL) could not remove its
	# directory; cpmap --worker has none.
	[ -z "$(ls -A "$FAKE_HOSTS/fa.tmp")" ]
	if [ "$AGENT" = sh ]; then
		same "fb's tmp" "$(ls "$FAKE_HOSTS/fb.tmp" | sed 's/\..*//')" cpmap-agent
	else
		same "fb's tmp" "$(ls -A "$FAKE_HOSTS/fb.tmp")" ""
	fi
	rm -rf "$FAKE_HOSTS/fb.tmp"
	clean
}

@test "fake transport: a task lost with its session runs again on that host, which then goes down: it is lost again, never failed" {
	# The session dies before the host is seen down, so its task goes
	# back to the host's free slot, in a new session.  When the host then
	# goes down, what that session still says (an agent kills its task on
	# EOF, and cpmap --worker reports it) is no result: the task is lost
	# again and runs elsewhere.
	script t 'echo "$1 $CPMAP_HOST" >>"$S/started"
wait-lines "$S/go" 1 || exit 9
echo "$1"'
	seq 4 >"$S/in"
	mkdir "$FAKE_HOSTS/fa.tmp" "$FAKE_HOSTS/fb.tmp"
	bg_rcpmap "$S/in" -S 1/fa,1/fb --transport "$FT" --json "$S/t"
	wait_lines "$S/started" 2
	local on_fb control session
	on_fb=$(awk '$2 == "fb" {print $1}' "$S/started")
	# fb's groups: its control connection first, then its session.
	read -r control session <<<"$(fake_groups fb | tr '\n' ' ')"
	[ -n "$session" ] || { echo "fb's groups: $(fake_groups fb)" >&2; false; }
	fake_kill_groups "$session"
	wait_lines "$S/started" 3
	same "the lost task's new start" "$(tail -n 1 "$S/started")" "$on_fb fb"
	fake_kill_groups "$control"
	echo go >>"$S/go"
	finish
	same "status (stderr: $(cat "$S/err"); out: $(cat "$S/out"))" "$status" 0
	[ "$(jq -r '"\(.seq) \(.status) \(.stdout)"' "$S/out" | sed '/^$/d' | sort -n)" = \
		"$(for i in $(seq 4); do echo "$i ok $i"; done)" ]
	grep -q "host fb: down" "$S/err"
	fake_gone fa fb
	[ -z "$(ls -A "$FAKE_HOSTS/fa.tmp")" ]
	rm -rf "$FAKE_HOSTS/fb.tmp"
	clean
}

@test "--workers-file: a host added joins the run, a host removed finishes its task and takes no more" {
	script t 'echo "$1 $CPMAP_HOST" >>"$S/started"
wait-lines "$S/go" "$1" || exit 9
echo "$1"'
	seq 4 >"$S/in"
	echo "1/fa  # the first host" >"$S/workers"
	bg_rcpmap "$S/in" --workers-file "$S/workers" --transport "$FT" --json "$S/t"
	wait_lines "$S/started" 1
	printf '1/fa\n\n# and another\n1/fb\n' >"$S/workers"
	wait_lines "$S/err" 3 # fa up, adding fb, fb up
	wait_lines "$S/started" 2
	same "started" "$(cat "$S/started")" "1 fa
2 fb"
	echo 1/fb >"$S/workers"
	wait_lines "$S/err" 4 # fa is gone from the file
	same "stderr" "$(cat "$S/err")" "cpmap: host fa: up, 1 slot
cpmap: --workers-file: adding fb
cpmap: host fb: up, 1 slot
cpmap: --workers-file: fa is gone from the file: it finishes its tasks and takes no more"
	# An empty file (an editor halfway through) changes nothing.
	: >"$S/workers"
	wait_lines "$S/err" 5
	same "last line" "$(tail -n1 "$S/err")" "cpmap: --workers-file $S/workers names no host; keeping the hosts"
	seq 4 >"$S/go"
	finish
	[ "$status" -eq 0 ]
	# fa finished its task; everything after it ran on fb.
	same "hosts" "$(jq -r '"\(.seq) \(.host) \(.status)"' "$S/out" | sort -n)" "1 fa ok
2 fb ok
3 fb ok
4 fb ok"
	fake_gone fa fb
	clean
}

@test "--workers-file: a file that cannot be read, or names no host, is a usage error" {
	run --separate-stderr "$CPMAP" --workers-file "$S/nope" echo ::: a
	[ "$status" -eq 255 ]
	same "stderr" "$stderr" "cpmap: --workers-file $S/nope: No such file or directory (see cpmap --help)"
	echo "# nobody" >"$S/workers"
	run --separate-stderr "$CPMAP" --workers-file "$S/workers" echo ::: a
	[ "$status" -eq 255 ]
	same "stderr" "$stderr" "cpmap: --workers-file $S/workers names no host (see cpmap --help)"
	echo "2/ok, 0/bad" >"$S/workers"
	run --separate-stderr "$CPMAP" --workers-file "$S/workers" echo ::: a
	[ "$status" -eq 255 ]
	same "stderr" "$stderr" "cpmap: --workers-file $S/workers, line 1: '0/bad': the slots must be 1 to 100000 (see cpmap --help)"
}

@test "fake transport: a host that refuses at start: the others do the work, stderr says it cannot connect" {
	touch "$FAKE_HOSTS/fb.refuse"
	run --separate-stderr rcpmap -S 1/fa,1/fb --transport "$FT" -k --json \
		sh -c 'echo "$1"' sh ::: 1 2 3 4
	[ "$status" -eq 0 ]
	[ "$(jq -r '"\(.seq) \(.host) \(.status) \(.stdout)"' <<<"$output" | sed '/^$/d')" = \
		"1 fa ok 1
2 fa ok 2
3 fa ok 3
4 fa ok 4" ]
	[[ $stderr == *"host fb: fake-transport: connect to host fb: Connection refused"* ]]
	[[ $stderr == *"host fb: cannot connect: "* ]]
	[ ! -e "$FAKE_HOSTS/fb.pids" ]
	fake_gone fa
	clean
}

@test "fake transport: a host with no TMPDIR: the sh agent keeps its files in XDG_RUNTIME_DIR (a tmpfs), and removes them" {
	# Each task creates and truncates files in the agent's directory:
	# on a disk filesystem that costs a millisecond a task, so a tmpfs
	# is taken when the host does not name a TMPDIR.
	mkdir "$FAKE_HOSTS/fa.run"
	run --separate-stderr rcpmap -S 1/fa --transport "$FT" -k sh -c \
		'ls "$XDG_RUNTIME_DIR" | sed "s/\..*//"; echo "$1 ${TMPDIR-no TMPDIR}"' sh ::: 1 2
	[ "$status" -eq 0 ]
	if [ "$AGENT" = sh ]; then
		same stdout "$output" "cpmap-agent
1 no TMPDIR
cpmap-agent
2 no TMPDIR"
	else
		same stdout "$output" "1 no TMPDIR
2 no TMPDIR"
	fi
	fake_gone fa
	same "fa's XDG_RUNTIME_DIR" "$(ls -A "$FAKE_HOSTS/fa.run")" ""
	clean
}

@test "fake transport: a host whose XDG_RUNTIME_DIR and /dev/shm are small tmpfs (a container's): the sh agent keeps its files in /tmp" {
	# A task's output is held in the agent's directory until it is sent:
	# a tmpfs of a few MiB would fail a task that writes more.  The
	# host's mounts are its own (a mount namespace).
	mkdir "$FAKE_HOSTS/fa.run"
	cat >"$S/small-run" <<SMALL
#!/bin/sh
exec unshare -m --propagation private sh -c 'mount -t tmpfs -o size=1m tmpfs "\$FAKE_HOSTS/\$1.run" && mount -t tmpfs -o size=1m tmpfs /dev/shm && exec "\$0" "\$@"' "$FT" "\$@"
SMALL
	chmod +x "$S/small-run"
	run --separate-stderr rcpmap -S 1/fa --transport "$S/small-run" sh -c \
		'df -Pk "$XDG_RUNTIME_DIR" | { read -r h; read -r fs size rest; echo "$size"; }
ls -A "$XDG_RUNTIME_DIR" | wc -l
ls /tmp | sed -n "s/^cpmap-agent\..*/cpmap-agent/p"' ::: 1
	[ "$status" -eq 0 ]
	if [ "$AGENT" = sh ]; then
		same stdout "$output" "1024
0
cpmap-agent"
	else
		same stdout "$output" "1024
0"
	fi
	fake_gone fa
	clean
}

# secret_run ARGS...: rcpmap ARGS on $S/in in the background; once its first
# task says it started, no process (here or on the "host") may have $SECRET
# on its command line; then the task goes on, and the run must succeed.
secret_run() {
	bg_rcpmap "$S/in" "$@"
	wait_lines "$S/started" 1
	same "processes with the secret on their command line" \
		"$(pgrep -af -- "$SECRET" || true)" ""
	echo go >>"$S/go"
	finish
	same "status (stderr: $(cat "$S/err"))" "$status" 0
}

@test "fake transport: --env values go over the session, never on a command line; names the sh agent uses itself (d, r, N) reach the task and harm nothing" {
	# A command line is seen by every user of the host (ps), so a
	# secret passed with --env must not be on one, here or there.  And
	# d is the agent's own directory, which it removes at the end.
	export SECRET="s3cr3t-$$-$RANDOM" d=$S/not-the-agents r=5 N=x
	mkdir "$d" "$FAKE_HOSTS/fa.tmp"
	script t 'echo "[$SECRET] [$d] [$r] [$N]"
echo started >>"$S/started"
wait-lines "$S/go" 1'
	echo 1 >"$S/in"
	secret_run -S 1/fa --transport "$FT" --env SECRET --env d --env r \
		--env N "$S/t"
	same stdout "$(cat "$S/out")" "[$SECRET] [$d] [5] [x]"
	[ -d "$d" ]
	fake_gone fa
	same "fa's TMPDIR" "$(ls -A "$FAKE_HOSTS/fa.tmp")" ""
	clean
}

@test "fake transport: with --persist too, --env values and CPMAP_HOST go over the session's stdin, never on a command line" {
	export SECRET="s3cr3t-$$-$RANDOM"
	script w 'while IFS= read -r l; do
	echo "[$SECRET] [$CPMAP_HOST] [$PARALLEL_SSHLOGIN] $l"
	echo started >>"$S/started"
	wait-lines "$S/go" 1
done'
	printf '1\n2\n' >"$S/in"
	secret_run -S 1/fa --transport "$FT" --persist -k --env SECRET "$S/w"
	same stdout "$(cat "$S/out")" "[$SECRET] [fa] [fa] 1
[$SECRET] [fa] [fa] 2"
	fake_gone fa
	clean
}

@test "a host whose login shell is tcsh: the agent and --persist run, --env with a newline and a quote intact" {
	# ssh hands its command to the login shell, and csh refuses a newline
	# inside quotes: the session's command must hold none.  A fake ssh
	# (named ssh, so that cpmap treats it as one) runs it under tcsh -c.
	mkdir "$S/bin"
	cat >"$S/bin/ssh" <<'SSH'
#!/bin/sh
for last; do :; done
exec tcsh -c "$last"
SSH
	chmod +x "$S/bin/ssh"
	export V="it's
two lines"
	run --separate-stderr rcpmap -S 1/csh --transport "$S/bin/ssh" --env V -k \
		sh -c 'printf "%s|%s|%s\n" "$V" "$CPMAP_HOST" "$1"' sh ::: a b
	same "status (stderr: $stderr)" "$status" 0
	same stdout "$output" "$V|csh|a
$V|csh|b"
	run --separate-stderr rcpmap -S 1/csh --transport "$S/bin/ssh" --env V -k \
		--persist sh -c 'while IFS= read -r l; do printf "%s|%s|%s\n" "$V" "$CPMAP_HOST" "$l" | tr "\n" "/"; echo; done'  ::: a b
	same "status (stderr: $stderr)" "$status" 0
	same stdout "$output" "it's/two lines|csh|a/
it's/two lines|csh|b/"
	clean
}

@test "fake transport: after a task is killed with SIGKILL (the sh agent starts a new runner), the next task still gets --env" {
	export V="line one
it's two"
	script t 'trap "" TERM
if [ "$1" = 1 ]; then echo started >>"$S/started"; wait-lines "$S/go" 1; fi
printf "%s|%s\n" "$V" "$1"'
	printf '1\n2\n' >"$S/in"
	bg_rcpmap "$S/in" -S 1/fa --transport "$FT" --env V -k --timeout 1 \
		--kill-after 0.1 "$S/t"
	finish
	same "status (stderr: $(cat "$S/err"))" "$status" 1
	same stdout "$(cat "$S/out")" "$V|2"
	grep -q "task 1 (input 1): timed out" "$S/err"
	fake_gone fa
	clean
}
