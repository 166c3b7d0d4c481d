#!/usr/bin/env bats
# inject.bats - the error-injection gate: an LD_PRELOAD shim
# (tests/inject/failshim.c, ./configure --enable-error-injection) makes the
# N-th write, pwritev2, open, mkstemp or pipe2 of cpmap's own code fail,
# and N walks over every such call of a small run (a spilled output, a
# joblog, -k).  Whatever fails: no crash, a message when the run is not a
# clean one, and every task with a joblog line has its whole output written.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	[ -n "${FAILSHIM:-}" ] && [ -e "$FAILSHIM" ] ||
		skip "built without the error-injection shim (./configure --enable-error-injection)"
	setup_scratch
	S=$SCRATCH
}

teardown() {
	kill_test_processes
}

# small_run N [ARGS...]: the small run with call N failing (0: none),
# stdout in $S/out, stderr in $S/err, the joblog in $S/jl; sets status.
small_run() {
	local n=$1
	shift
	rm -f "$S/out" "$S/err" "$S/jl" "$S/count"
	status=0
	printf 'a\nbig\nc\nd\n' |
		timeout 30 env CPMAP_FAIL_CALL="$n" CPMAP_FAIL_COUNT="$S/count" \
			LD_PRELOAD="$FAILSHIM" "$CPMAP" -k -j2 --joblog "$S/jl" "$@" sh -c \
			'if [ "$1" = big ]; then head -c 1100000 /dev/zero | tr "\0" x; echo; else echo "out $1"; fi; echo "err $1" >&2' \
			sh >"$S/out" 2>"$S/err" || status=$?
}

# written SEQ: is the whole output of task SEQ in $S/out?
written() {
	case $1 in
	1) grep -qx "out a" "$S/out" ;;
	2) [ "$(awk 'length($0) == 1100000 && !/[^x]/' "$S/out" | wc -l)" -eq 1 ] ;;
	3) grep -qx "out c" "$S/out" ;;
	4) grep -qx "out d" "$S/out" ;;
	esac
}

@test "every failing write, open, mkstemp and pipe2 of a small run: no crash, a message, no joblog line ahead of its output" {
	small_run 0
	same "clean run: status" "$status" 0
	local total clean n seq ahead
	total=$(cat "$S/count")
	((total > 10)) || fail "only $total calls counted"
	clean=$(cat "$S/out")
	for n in $(seq "$total"); do
		small_run "$n"
		# No crash: an exit, not a signal (timeout's 124 is a hang).
		((status < 124 || status == 255)) ||
			fail "call $n: status $status: $(cat "$S/err")"
		# A message whenever the run was not a clean one.
		if [ "$status" -ne 0 ] || [ "$(cat "$S/out")" != "$clean" ] ||
			[ "$(tail -n +2 "$S/jl" 2>/dev/null | wc -l)" -ne 4 ]; then
			grep -qv '^err ' "$S/err" ||
				fail "call $n: status $status, a short run, and no message"
		fi
		# Every task in the joblog has its whole output on stdout: the
		# log is never ahead of the output.
		ahead=
		for seq in $(tail -n +2 "$S/jl" 2>/dev/null | cut -f1); do
			written "$seq" || ahead="$ahead $seq"
		done
		[ -z "$ahead" ] || fail "call $n: logged but not written whole:$ahead; stderr: $(cat "$S/err")"
	done
	echo "# walked $total call sites" >&3
}

@test "a spawn that runs out of descriptors waits and runs the task: no task fails" {
	# Find the calls that start tasks (pipe2 and /dev/null), fail each.
	small_run 0
	local total n
	total=$(cat "$S/count")
	for n in $(seq "$total"); do
		small_run "$n"
		grep -q 'cannot run' "$S/err" &&
			fail "call $n: a task failed for want of a descriptor: $(cat "$S/err")"
	done
	true
}
