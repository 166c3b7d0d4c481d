#!/usr/bin/env bash
# persist-worker.sh - a worked example of a persistent worker for cpmap, in
# bash: a `while read` loop that loads a lookup table into memory once.
#
# With --persist, cpmap starts the command ONCE per slot (-j N: N copies) and
# streams the inputs to it instead of starting one process per input:
#
#   * each input arrives on the worker's stdin as one line ending in "\n"
#     (with cpmap -J: the input's compact JSON text);
#   * the worker must answer EVERY input with EXACTLY ONE line on stdout,
#     in the order the inputs came.  Answer at once: cpmap sends several
#     inputs before it reads the first answer.  (bash's builtins write each
#     line at once; an external filter such as awk, sed or grep buffers its
#     output when writing to a pipe - use mawk -W interactive, sed -u,
#     grep --line-buffered, or stdbuf -oL.)  A missing answer stalls the
#     worker; an extra line is a protocol error and the worker is restarted;
#   * stderr is passed through to cpmap's stderr, each line prefixed
#     "[slot N] ": log there, never on stdout;
#   * EOF on stdin means "no more work": answer what you have and exit
#     (--persist-max N gives a worker N inputs, then EOF);
#   * CPMAP_SLOT (and {%} in the command) is the worker's slot, 1..-j.
# If the worker dies, cpmap starts a new one: the input it was working on
# fails (or is retried with --retries N), the inputs it had not answered yet
# are sent again; no input is lost or answered twice.
#
# Usage: persist-worker.sh [--verbose] TABLE
# This example loads TABLE (KEY<TAB>VALUE lines; the value is everything after
# the first tab; a line without a tab has an empty value; empty lines are
# skipped; the last of duplicate keys wins) into an associative array, then
# answers each input line KEY with "KEY<TAB>VALUE", or "KEY<TAB>NA" when KEY
# is not in the table.  Same answers as contrib/persist-worker.py.
#
# Run it with cpmap (from the top of cpmap's source tree):
#
#   cut -f1 data.tsv | cpmap --persist -k contrib/persist-worker.sh table.tsv
#
# Without cpmap it is an ordinary filter:
#
#   printf 'apple\nkiwi\n' | contrib/persist-worker.sh table.tsv
set -u

verbose=0
if [ "${1:-}" = --verbose ]; then
	verbose=1
	shift
fi
if [ $# -ne 1 ]; then
	echo "usage: persist-worker.sh [--verbose] TABLE" >&2
	exit 2
fi

# The expensive part, done once per worker.
declare -A table=()
while IFS=$'\t' read -r key value || [ -n "$key" ]; do
	key=${key%$'\r'} value=${value%$'\r'}
	# bash has no empty key in an associative array: such a line is skipped.
	if [ -n "$key" ]; then
		table[$key]=$value
	fi
done <"$1" || exit 1
if [ $verbose = 1 ]; then
	# On stderr: cpmap shows it as "[slot N] loaded ...".
	echo "loaded ${#table[@]} keys from $1" >&2
fi

# One line in, one line out.  IFS= and -r keep the line exactly as sent.
while IFS= read -r key; do
	if [ -n "$key" ] && [ -n "${table[$key]+set}" ]; then
		printf '%s\t%s\n' "$key" "${table[$key]}"
	else
		printf '%s\tNA\n' "$key"
	fi
done
exit 0
