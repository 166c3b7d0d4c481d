#!/usr/bin/env bats
# pipe.bats - --pipe and --pipe-part: a stream cut into blocks of whole
# records, one block on each task's stdin.
#
# The promise checked everywhere: the blocks the tasks saw, put back in
# block order, are the input byte for byte (nothing lost, repeated or
# reordered), and every block but the last ends at a record boundary
# (nothing split).  Tasks save their stdin to $S/b.{#}; timing comes from
# FIFO gates, never sleep.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	setup_scratch
	S=$SCRATCH
	export S
	# Each task keeps its block in $S/b.SEQ.
	task 'cat > "$S/b.$CPMAP_SEQ"'
}

teardown() {
	kill_test_processes 2>/dev/null || true
}

# records N MAX SEED SEP: N records of 0..MAX random letters, each ended
# by SEP (printf escape), on stdout.
records() {
	awk -v n="$1" -v max="$2" -v seed="$3" -v sep="$4" 'BEGIN {
		srand(seed)
		for (i = 0; i < n; i++) {
			len = int(rand() * (max + 1))
			s = ""
			for (k = 0; k < len; k++)
				s = s sprintf("%c", 97 + int(rand() * 26))
			printf "%s%s", s, sep
		}
	}'
}

# joined: the saved blocks in block order, on stdout.
joined() {
	local n
	n=$(ls "$S" | grep -c '^b\.')
	for ((i = 1; i <= n; i++)); do cat "$S/b.$i"; done
}

# check_blocks INPUT SEP_BYTE_OCTAL: the blocks join into INPUT, and all
# but the last end with the separator byte.
check_blocks() {
	local n last
	joined >"$S/joined"
	cmp "$1" "$S/joined"
	n=$(ls "$S" | grep -c '^b\.')
	for ((i = 1; i < n; i++)); do
		last=$(tail -c1 "$S/b.$i" | od -An -to1 | tr -d ' ')
		same "block $i's last byte" "$last" "$2"
	done
}

@test "--pipe: random records around the block size, none lost, split or repeated" {
	records 2000 300 7 '\n' >"$S/in"
	run cpmap -j3 --pipe --block 1k "$S/task" <"$S/in"
	assert_success
	check_blocks "$S/in" 012
	# about 1k each: far more than one block, none huge
	[ "$(ls "$S" | grep -c '^b\.')" -gt 100 ]
}

@test "--pipe: records larger than the block are never split" {
	records 50 5000 3 '\n' >"$S/in"
	run cpmap --pipe --block 100 "$S/task" <"$S/in"
	assert_success
	check_blocks "$S/in" 012
	# one record per block (each is over 100 bytes, or empty)
	for f in "$S"/b.*; do
		[ "$(wc -l <"$f")" -le 2 ]
	done
}

@test "--pipe -0: NUL-separated records" {
	records 500 200 11 '\0' >"$S/in"
	run cpmap -0 --pipe --block 512 "$S/task" <"$S/in"
	assert_success
	check_blocks "$S/in" 000
}

@test "--pipe --recend: a multi-byte record end" {
	records 500 100 5 '<end>' >"$S/in"
	run cpmap --pipe --recend '<end>' --block 300 "$S/task" <"$S/in"
	assert_success
	joined | cmp "$S/in" -
	for f in "$S"/b.*; do
		[ "$(tail -c5 "$f")" = '<end>' ]
	done
}

@test "--pipe --recstart: blocks start with a record start" {
	awk 'BEGIN { for (i = 0; i < 300; i++) printf ">r%d\nACGT%d\n", i, i }' >"$S/in"
	run cpmap --pipe --recstart '>' --block 200 "$S/task" <"$S/in"
	assert_success
	joined | cmp "$S/in" -
	for f in "$S"/b.*; do
		[ "$(head -c1 "$f")" = '>' ]
	done
}

@test "--pipe: empty input runs no task" {
	run cpmap --pipe "$S/task" </dev/null
	assert_success
	[ -z "$(ls "$S" | grep '^b\.')" ]
}

@test "--pipe: input without a final delimiter keeps its last record" {
	printf 'aaaa\nbbbb\ncccc' >"$S/in"
	run cpmap --pipe --block 6 "$S/task" <"$S/in"
	assert_success
	joined | cmp "$S/in" -
	same "the last block" "$(cat "$S/b.3")" "cccc"
}

@test "--pipe -a FILE and --pipe-part cut the same records" {
	records 3000 200 13 '\n' >"$S/in"
	run cpmap --pipe -a "$S/in" --block 2k "$S/task"
	assert_success
	check_blocks "$S/in" 012
	rm "$S"/b.*
	run cpmap -j2 --pipe-part -a "$S/in" --block 2k "$S/task"
	assert_success
	check_blocks "$S/in" 012
}

@test "--pipe-part with records larger than the block, and no final newline" {
	records 40 3000 17 '\n' >"$S/in"
	printf 'tail-without-newline' >>"$S/in"
	run cpmap --pipepart -a "$S/in" --block 500 "$S/task"
	assert_success
	check_blocks "$S/in" 012
}

@test "--pipe-part needs a regular file" {
	run -255 cpmap --pipe-part cat </dev/null
	assert_output --partial "--pipe-part needs -a FILE"
	run -255 cpmap --pipe-part -a /dev/stdin cat </dev/null
	assert_output --partial "not a regular file"
}

@test "--pipe --retries: a failed block is fed again, whole" {
	records 300 50 19 '\n' >"$S/in"
	# block 2 fails its first attempt after reading half of it
	task 'if [ "$CPMAP_SEQ" = 2 ] && mkdir "$S/failed" 2>/dev/null; then
		head -c 10 >/dev/null; exit 3; fi
	cat > "$S/b.$CPMAP_SEQ"'
	run cpmap --retries 1 --pipe --block 500 "$S/task" <"$S/in"
	assert_success
	[ -d "$S/failed" ]
	check_blocks "$S/in" 012
}

@test "--pipe --header N: the first lines start every block" {
	{
		printf 'name,size\n'
		records 200 30 23 '\n'
	} >"$S/in"
	run cpmap -k --pipe --header 1 --block 200 cat <"$S/in"
	assert_success
	# the records, header lines taken out, are the input's
	grep -v '^name,size$' <<<"$output" >"$S/got"
	tail -n +2 "$S/in" >"$S/want"
	cmp "$S/want" "$S/got"
	run cpmap -k --pipe --header : --block 200 sh -c 'head -1' <"$S/in"
	assert_success
	[ "$(sort -u <<<"$output")" = "name,size" ]
	# two lines, with --pipe-part
	{ printf 'h1\nh2\n'; records 100 30 29 '\n'; } >"$S/in2"
	run cpmap -k --pipe-part -a "$S/in2" --header 2 --block 100 sh -c 'head -2 | tr "\n" " "; echo'
	assert_success
	[ "$(sort -u <<<"$output")" = "h1 h2 " ]
}

@test "--pipe -k: results in block order; {#} and {%} work" {
	seq 1 2000 >"$S/in"
	run cpmap -k -j3 --pipe --block 1k sh -c 'echo "{#} $(head -1) {%}"' <"$S/in"
	assert_success
	# {#} counts up from 1, and each block starts where the last ended
	awk '$1 != NR { exit 1 }' <<<"$output"
	[ "$(awk '{print $3}' <<<"$output" | sort -u | wc -l)" -ge 1 ]
	run cpmap -k -j3 --pipe --block 1k cat <"$S/in"
	assert_success
	same "-k output" "$output" "$(cat "$S/in")"
}

@test "--pipe --json: the input is the block's number, offset and length" {
	printf 'aaa\nbbb\nccc\n' >"$S/in"
	run cpmap -k --json --pipe --block 5 wc -l <"$S/in"
	assert_success
	run jq -c '.input' <<<"$output"
	assert_output "$(printf '%s\n' '{"block":1,"offset":0,"length":4}' \
		'{"block":2,"offset":4,"length":4}' \
		'{"block":3,"offset":8,"length":4}')"
}

@test "--pipe --resume: by block number, with the same --block" {
	seq 1 300 >"$S/in"
	# the first run fails block 3
	task 'if [ "$CPMAP_SEQ" = 3 ] && [ ! -e "$S/ok" ]; then exit 1; fi
	cat > "$S/b.$CPMAP_SEQ"'
	run cpmap -j1 --joblog "$S/log" --pipe --block 200 "$S/task" <"$S/in"
	assert_failure 1
	grep -q ' # cpmap --block 200 --recend \\n$' "$S/log"
	touch "$S/ok"
	rm "$S"/b.*
	run cpmap -j1 --joblog "$S/log" --resume-failed --pipe --block 200 "$S/task" <"$S/in"
	assert_success
	same "blocks run again" "$(ls "$S" | grep '^b\.')" "b.3"
	# another block size cuts other blocks: refused
	run -255 cpmap --joblog "$S/log" --resume --pipe --block 300 "$S/task" <"$S/in"
	assert_output --partial "not made with these blocks"
	run -255 cpmap --joblog "$S/log" --resume --pipe -0 --block 200 "$S/task" <"$S/in"
	assert_output --partial "--block 200 --recend \\0"
}

@test "--pipe: usage errors" {
	run -255 cpmap --pipe echo {} </dev/null
	assert_output --partial "cannot use {}"
	run -255 cpmap --pipe echo ::: a b
	assert_output --partial "no ::: or ::::"
	run -255 cpmap --pipe --stdin cat </dev/null
	assert_output --partial "--stdin"
	run -255 cpmap --block 1M cat </dev/null
	assert_output --partial "need --pipe"
	run -255 cpmap --pipe --recend '\q' cat </dev/null
	assert_output --partial "--recend"
	run -255 cpmap --pipe --block 0 cat </dev/null
	assert_output --partial "positive size"
}

@test "--pipe: no block is read while every slot is busy" {
	seq 1 100000 >"$S/in"
	mkfifo "$S/gate" "$S/started"
	# -j1, and the first task waits on the gate: cpmap has read its block
	# (and a record's worth past it) and no more.
	"$CPMAP" -j1 --pipe -a "$S/in" --block 1k sh -c '
		[ "$CPMAP_SEQ" = 1 ] && { echo >"$S/started"; fifo-wait "$S/gate"; }
		cat >/dev/null' &
	pid=$!
	read -r _ <"$S/started"
	fd=$(ls -l "/proc/$pid/fd" | awk -v f="$S/in" '$NF == f { print $(NF-2) }')
	pos=$(awk '/^pos:/ { print $2 }' "/proc/$pid/fdinfo/$fd")
	release "$S/gate"
	wait "$pid"
	[ "$pos" -le 3072 ] || { echo "read $pos bytes ahead" >&2; false; }
}

# From a pipe, with blocks past twice BLOCK_LOOKBACK (64k), the middle of
# each block is spliced to its task unseen: the same promises hold.
@test "--pipe from a pipe, spliced blocks: none lost, split or repeated" {
	records 20000 300 19 '\n' >"$S/in"
	run bash -c 'cat "$S/in" | "$CPMAP" -j3 --pipe --block 200k "$S/task"'
	assert_success
	check_blocks "$S/in" 012
	[ "$(ls "$S" | grep -c '^b\.')" -gt 10 ]
}

@test "--pipe from a pipe, spliced blocks: records larger than the look-back" {
	records 80 150000 23 '\n' >"$S/in"
	run bash -c 'cat "$S/in" | "$CPMAP" -j2 --pipe --block 140k "$S/task"'
	assert_success
	check_blocks "$S/in" 012
}

@test "--pipe from a pipe, spliced blocks: --recend, --header, --json lengths" {
	{ echo head; records 5000 300 29 '<end>'; } >"$S/in"
	run bash -c 'cat "$S/in" | "$CPMAP" --json --pipe --header 1 --recend "<end>" --block 150k "$S/task"'
	assert_success
	for f in "$S"/b.*; do
		same "$f's header" "$(head -1 "$f")" head
		[ "$(tail -c5 "$f")" = '<end>' ]
	done
	same "lengths" "$(jq -s 'map(.input.length) | add' <<<"$output")" "$(($(wc -c <"$S/in") - 5))"
	for f in "$S"/b.*; do tail -n +2 "$f"; done >"$S/joined"
	tail -n +2 "$S/in" | cmp - "$S/joined"
}

@test "--pipe from a pipe, spliced blocks: a task that leaves early, the next block starts at a record" {
	records 20000 300 31 '\n' >"$S/in"
	task 'if [ "$CPMAP_SEQ" = 1 ]; then head -c 10 >/dev/null; exit 3; fi; cat > "$S/b.$CPMAP_SEQ"'
	run -1 bash -c 'cat "$S/in" | "$CPMAP" -j1 --pipe --block 300k "$S/task"'
	n=$(ls "$S" | grep -c '^b\.')
	for ((i = 2; i <= n + 1; i++)); do cat "$S/b.$i"; done >"$S/rest"
	size=$(wc -c <"$S/rest")
	[ "$size" -gt 0 ]
	tail -c "$size" "$S/in" | cmp - "$S/rest"
	same "the byte before block 2" "$(tail -c $((size + 1)) "$S/in" | head -c1 | od -An -to1 | tr -d ' ')" 012
}

@test "--pipe --retries: blocks held for a retry go to a file; memory stays bounded, records arrive once" {
	[ -x /usr/bin/time ] || skip "no GNU time"
	# 48 blocks of 1M, each failing its first attempt; the retries wait
	# 0.5 s while the next blocks are read and fail too.
	records 400000 240 37 '\n' >"$S/in"
	task 'if [ ! -e "$S/seen.$CPMAP_SEQ" ]; then touch "$S/seen.$CPMAP_SEQ"; exit 1; fi; cat > "$S/b.$CPMAP_SEQ"'
	# The same blocks without a failure: the memory cpmap needs anyway.
	run /usr/bin/time -o "$S/rss0" -f %M "$CPMAP" -j2 --pipe --block 1M \
		cat <"$S/in"
	assert_success
	run /usr/bin/time -o "$S/rss" -f %M "$CPMAP" -j2 --pipe --block 1M \
		--retries 1 --retry-delay 0.5 "$S/task" <"$S/in"
	assert_success
	check_blocks "$S/in" 012
	[ "$(ls "$S" | grep -c '^b\.')" -gt 40 ]
	# (jobs + 2) blocks is 4 MB: well under 20 MB more than without
	# failures, where keeping every block for its retry takes 40 MB more.
	rss0=$(tail -1 "$S/rss0") rss=$(tail -1 "$S/rss")
	[ "$rss" -lt $((rss0 + 20000)) ] ||
		{ echo "peak RSS $rss KB, $rss0 KB without failures" >&2; false; }
}
