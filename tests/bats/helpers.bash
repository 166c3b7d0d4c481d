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
