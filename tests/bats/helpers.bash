# helpers.bash - shared set-up for cpmap's bats suites.
#
# make check exports CPMAP (the binary under test), TESTS_BIN (helper
# programs: argv-print, fifo-wait) and TESTS_SRC; running a suite by hand
# from the source tree falls back to ./build or the in-tree binary.

bats_load_library bats-support 2>/dev/null || load '/usr/lib/bats/bats-support/load'
bats_load_library bats-assert 2>/dev/null || load '/usr/lib/bats/bats-assert/load'

_tests_dir=$(cd "$(dirname "${BATS_TEST_FILENAME}")/.." && pwd)
if [ -z "${CPMAP:-}" ]; then
	for c in "$_tests_dir/../src/cpmap" "$_tests_dir/../build/src/cpmap"; do
		[ -x "$c" ] && { CPMAP=$(cd "$(dirname "$c")" && pwd)/cpmap; break; }
	done
fi
: "${TESTS_BIN:=$(dirname "$CPMAP")/../tests/bin}"
: "${TESTS_SRC:=$_tests_dir}"
export CPMAP TESTS_BIN TESTS_SRC
PATH="$TESTS_BIN:$PATH"

# cpmap ARGS...: run the binary under test (use with bats' `run`).
cpmap() { "$CPMAP" "$@"; }

# A private scratch directory per test, removed by bats.
setup_scratch() {
	SCRATCH=$(mktemp -d "${BATS_TEST_TMPDIR:-/tmp}/cpmap.XXXXXX")
	export SCRATCH
}

# make_fifo NAME: a FIFO in $SCRATCH; prints its path.
make_fifo() {
	mkfifo "$SCRATCH/$1" && echo "$SCRATCH/$1"
}

# release FIFO: let one fifo-wait blocked on FIFO go (open, write, close).
release() {
	echo go > "$1"
}

# wait_lines FILE N: block until FILE has N lines (fifo-wait -s files).
wait_lines() { wait-lines "$@"; }

# no_leftovers MARK: true when no live process has MARK in its command line.
no_leftovers() {
	! pgrep -f -- "$1" >/dev/null
}

# ---- shared by several suites ------------------------------------------

# same WHAT GOT WANT: compare, and say what differed.
same() {
	[ "$2" = "$3" ] && return 0
	printf '%s\n  expected: %q\n  got:      %q\n' "$1" "$3" "$2" >&2
	return 1
}

# task BODY: write $S/task, a sh script run as `$S/task INPUT`.
task() {
	printf '#!/bin/sh\n%s\n' "$1" >"$S/task"
	chmod +x "$S/task"
}

# alive PID: the process exists and is not a zombie.
alive() {
	local s
	s=$(grep -m1 '^State:' "/proc/$1/status" 2>/dev/null) || return 1
	[[ $s != *zombie* ]]
}

# gone PID...: wait until none of the processes is alive.  A killed process
# may take a moment to die after cpmap has exited; one that was never
# signalled lives on and makes this fail after the 20 s safety limit.
gone() {
	local pid
	wait-state gone "$@" && return 0
	for pid; do
		alive "$pid" &&
			echo "process $pid is still alive: $(tr '\0' ' ' <"/proc/$pid/cmdline")" >&2
	done
	return 1
}

# kill_test_processes: whatever failed, nothing this test started (the
# background cpmap in $BG, anything with $S/ in its command line) may
# outlive it.
kill_test_processes() {
	local pid
	[ -n "${BG:-}" ] && kill -KILL "$BG" 2>/dev/null
	for pid in $(pgrep -f -- "$S/" 2>/dev/null); do
		kill -KILL "$pid" 2>/dev/null
	done
	true
}
