# helpers.bash - shared set-up for cpmap's bats suites.
#
# make check exports CPMAP (the binary under test), TESTS_BIN (helper
# programs: argv-print, fifo-wait, wait-lines, wait-state, wait-text) and TESTS_SRC; running a suite by hand
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

# empty WHAT FILE: FILE is empty (or missing); if not, show what it holds.
empty() {
	[ ! -s "$2" ] && return 0
	printf '%s should be empty; %s holds %s bytes:\n' "$1" "$2" \
		"$(wc -c <"$2")" >&2
	head -c 2000 "$2" >&2
	echo >&2
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

# ---- cpmap in the background ------------------------------------------

# bg_cpmap [-i INPUT] [-t SECONDS] ARGS...: start cpmap ARGS in the
# background, bounded by a timeout (20 s unless -t; then SIGKILL), stdin
# from INPUT (default: $S/in if it exists, else /dev/null), stdout in $OUT
# and stderr in $ERR (default $S/out and $S/err).  Sets BG (the pid of the
# background job, which finish waits for) and PID (cpmap's own pid, the
# one to signal).  -i and -t are taken only before cpmap's own arguments.
# Returns once PID is known: cpmap writes its pid to a
# file before it opens its input and output, so a FIFO's other end may be
# opened after this returns.
bg_cpmap() {
	local in='' limit=20
	while [ $# -ge 2 ]; do
		case $1 in
		-i) in=$2 ;;
		-t) limit=$2 ;;
		*) break ;;
		esac
		shift 2
	done
	if [ -z "$in" ]; then
		in=/dev/null
		[ -e "$S/in" ] && in=$S/in
	fi
	BG_OUT=${OUT:-$S/out}
	BG_ERR=${ERR:-$S/err}
	BG_PIDFILE=${BATS_TEST_TMPDIR:-$S}/bg_cpmap.pid
	rm -f "$BG_PIDFILE"
	PID=
	# timeout runs sh, which writes its pid and becomes cpmap (exec).
	# shellcheck disable=SC2016 # sh expands them
	timeout -s KILL "$limit" sh -c \
		'echo $$ >"$1" && exec <"$2" >"$3" 2>"$4" && shift 4 && exec "$@"' \
		sh "$BG_PIDFILE" "$in" "$BG_OUT" "$BG_ERR" "$CPMAP" "$@" 3>&- &
	BG=$!
	wait-lines "$BG_PIDFILE" 1 ||
		{ echo "bg_cpmap: cpmap never started" >&2; return 1; }
	PID=$(cat "$BG_PIDFILE")
}

# finish: wait for the background cpmap and set what bats' run sets:
# status, output and lines (its stdout), and stderr.  A stdout or stderr
# that is not a regular file, or is over 1 MiB, is not read (use the file).
# shellcheck disable=SC2034 # set for the caller
finish() {
	status=0
	wait "$BG" || status=$?
	BG=
	PID=
	output=$(_bg_read "$BG_OUT")
	stderr=$(_bg_read "$BG_ERR")
	IFS=$'\n' read -d '' -r -a lines <<<"$output" || true
}

_bg_read() {
	[ -f "$1" ] && [ "$(wc -c <"$1")" -le 1048576 ] && cat "$1"
	true
}

# kill_test_processes [PID...]: the teardown of every suite.  Whatever
# failed, nothing this test started (the background cpmap and its timeout,
# the PIDs given, anything with $S/ in its command line) may outlive it.
# (BG is not reaped before finish, so neither it nor its child's pid can
# have been reused.)
kill_test_processes() {
	local pid
	if [ -n "${BG:-}" ]; then
		pkill -KILL -P "$BG" 2>/dev/null
		kill -KILL "$BG" 2>/dev/null
	fi
	for pid; do
		kill -KILL "$pid" 2>/dev/null
	done
	# No scratch dir (a setup that skipped early): "/" would match every
	# process on the machine, other suites' included.
	case ${S:-} in
	"" | /) return 0 ;;
	esac
	for pid in $(pgrep -f -- "$S/" 2>/dev/null); do
		kill -KILL "$pid" 2>/dev/null
	done
	true
}
