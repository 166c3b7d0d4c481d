#!/usr/bin/env bats
# inputs.bats - where inputs come from and how they are split: stdin lines,
# -0, -d, -a, ::: and :::: groups, --link, --colsep, --header, and the
# awkward cases (empty input, huge lines, binary bytes, NUL bytes, missing
# files, input that arrives slowly).

load helpers
bats_require_minimum_version 1.5.0

setup() {
	setup_scratch
	bg=
}

teardown() {
	exec 4>&- 2>/dev/null || true
	if [ -n "$bg" ]; then
		kill "$bg" 2>/dev/null || true
		wait "$bg" 2>/dev/null || true
	fi
}

# feed FORMAT ARGS...: printf FORMAT into cpmap ARGS... (use with run).
feed() {
	local format=$1
	shift
	printf "$format" | timeout 20 "$CPMAP" "$@"
}

@test "each stdin line is one input" {
	run feed 'a\nb b\nc\n' -k argv-print
	assert_success
	assert_output $'a\nb b\nc'
}

@test "a CR before the newline is removed (CRLF input)" {
	run feed 'a\r\nb\r\nc\rd\r\n' -k argv-print
	assert_success
	assert_output $'a\nb\nc\\x0dd'
}

@test "empty lines are skipped" {
	run feed '\na\n\n\r\nb\n\n' -k argv-print '<{}>'
	assert_success
	assert_output $'<a>\n<b>'
}

@test "--keep-empty makes each empty line an empty input" {
	run feed 'a\n\nb\n\n' -k --keep-empty argv-print '<{}>'
	assert_success
	assert_output $'<a>\n<>\n<b>\n<>'
}

@test "the last line counts even without a trailing newline" {
	run feed 'a\nlast' -k argv-print
	assert_success
	assert_output $'a\nlast'
}

@test "-0 splits on NUL and keeps newlines inside an input" {
	run feed 'a\nb\0c d\0\0e' -k -0 argv-print '<{}>'
	assert_success
	assert_output $'<a\\nb>\n<c d>\n<e>'
}

@test "-d takes one byte or an escape (cases)" {
	# delimiter | printf input | argv-print output joined by spaces
	while IFS='|' read -r delim input want; do
		run feed "$input" -k -d "$delim" argv-print
		assert_success
		assert_equal "-d $delim: $(echo "$output" | tr '\n' ' ')" \
			"-d $delim: $want "
	done <<-'EOF'
	,|a,b,,c|a b c
	x|axbxc|a b c
	:|a\nb:c:|a\nb c
	\t|a\tb\tc|a b c
	\x2c|a,b,c|a b c
	\0|a\0b\0|a b
	\n|a\nb|a b
	\r|a\rb|a b
	\\|a\\b|a b
	EOF
}

@test "-a FILE reads the inputs from FILE, not from stdin" {
	printf 'x\ny\n' >"$SCRATCH/f"
	run feed 'stdin\n' -k -a "$SCRATCH/f" argv-print
	assert_success
	assert_output $'x\ny'
}

@test "repeated -a files form a product, the last file varying fastest" {
	printf 'x\ny\n' >"$SCRATCH/f1"
	printf '1\n2\n3\n' >"$SCRATCH/f2"
	run cpmap -k -a "$SCRATCH/f1" -a "$SCRATCH/f2" argv-print '{1}-{2}' </dev/null
	assert_success
	assert_output $'x-1\nx-2\nx-3\ny-1\ny-2\ny-3'
}

@test "::: groups form a product, the last group varying fastest" {
	run cpmap -k argv-print '{1}{2}{3}' ::: a b ::: 1 2 ::: X Y
	assert_success
	assert_output $'a1X\na1Y\na2X\na2Y\nb1X\nb1Y\nb2X\nb2Y'
}

@test "--link pairs the i-th values and wraps shorter groups around" {
	run cpmap -k --link argv-print '{1}{2}{3}' ::: a b c d ::: 1 2 ::: X
	assert_success
	assert_output $'a1X\nb2X\nc1X\nd2X'
}

@test ":::: FILE reads a group from a file" {
	printf 'x\ny\n' >"$SCRATCH/f"
	run cpmap -k argv-print '{1}/{2}' ::: A B :::: "$SCRATCH/f"
	assert_success
	assert_output $'A/x\nA/y\nB/x\nB/y'
}

@test ":::: - reads a group from stdin" {
	printf '1\n2\n' >"$SCRATCH/f"
	run feed 'p\nq\n' -k argv-print '{1}/{2}' :::: - "$SCRATCH/f"
	assert_success
	assert_output $'p/1\np/2\nq/1\nq/2'
}

@test "an empty ::: group yields no task" {
	run cpmap touch "$SCRATCH/marker" ::: a b :::
	assert_success
	assert_output ''
	[ ! -e "$SCRATCH/marker" ]
}

@test "--colsep splits on a literal string; a missing column is empty" {
	run feed 'a.|b.|c\nd\n' -k -C '.|' argv-print '{3}' '{1}' '<{4}>'
	assert_success
	assert_output $'c\na\n<>\n\nd\n<>'
}

@test "--colsep without placeholders appends each column as an argument" {
	run feed 'a::b::c\n' -k -C :: argv-print first
	assert_success
	assert_output $'first\na\nb\nc'
}

@test "--header names the columns of stdin with --colsep" {
	run feed 'name,age\nbob,3\nal,4\n' -k -C , --header argv-print '{age}:{name}' '{1}'
	assert_success
	assert_output $'3:bob\nbob\n4:al\nal'
}

@test "--header with ::: groups: the first value of each group names it" {
	run cpmap -k --header argv-print '{x}{y}' ::: x 1 2 ::: y a b
	assert_success
	assert_output $'1a\n1b\n2a\n2b'
}

@test "--header with --link: the first value of each group names it" {
	run cpmap -k --header --link argv-print '{x}{y}' ::: x 1 2 ::: y a b
	assert_success
	assert_output $'1a\n2b'
}

@test "empty input: exit 0, no output, no task" {
	run feed '' touch "$SCRATCH/marker"
	assert_success
	assert_output ''
	[ ! -e "$SCRATCH/marker" ]
}

@test "a 3 MB line reaches the task's stdin whole with --stdin" {
	run bash -c 'head -c 3000000 /dev/zero | tr "\0" x |
		timeout 20 "$CPMAP" --stdin wc -c'
	assert_success
	assert_output 3000001
}

@test "a 3 MB line as an argument fails as a task error, not a crash" {
	{ head -c 3000000 /dev/zero | tr '\0' x; printf '\nsmall\n'; } >"$SCRATCH/big"
	run --separate-stderr timeout 20 "$CPMAP" -k -j1 argv-print <"$SCRATCH/big"
	assert_equal "$status" 1
	assert_output small
	assert_equal "$(printf '%s\n' "$stderr" | wc -l)" 1
	[[ $stderr == "cpmap: task 1 (input x"*"): cannot run argv-print: Argument list too long" ]]
}

@test "invalid UTF-8 and binary bytes reach argv intact" {
	printf 'a\377\376b\n\303(\n\200 \355\240\200\n' >"$SCRATCH/in"
	timeout 20 "$CPMAP" -k argv-print <"$SCRATCH/in" >"$SCRATCH/out"
	cmp "$SCRATCH/in" "$SCRATCH/out"
	run feed '\001\033x\177\n' argv-print
	assert_success
	assert_output '\x01\x1bx\x7f'
}

@test "binary bytes reach the task's stdin intact with --stdin" {
	printf 'a\377\376b\n\303(\001\n\200\n' >"$SCRATCH/in"
	timeout 20 "$CPMAP" -k --stdin cat <"$SCRATCH/in" >"$SCRATCH/out"
	cmp "$SCRATCH/in" "$SCRATCH/out"
}

@test "a NUL byte in line mode fails that task, the others still run" {
	run --separate-stderr feed 'ok1\na\0b\nok2\n' -k -j1 argv-print
	assert_equal "$status" 1
	assert_output $'ok1\nok2'
	assert_equal "$stderr" "cpmap: task 2 (input a): input 2 holds a NUL byte, which cannot be passed in an argument (use -0 or --stdin)"
}

@test "a missing input file is a usage error naming it; no task runs" {
	printf 'x\n' >"$SCRATCH/f"
	for args in "-a $SCRATCH/nope" "-a $SCRATCH/f -a $SCRATCH/nope" \
		":::: $SCRATCH/nope" ":::: $SCRATCH/f $SCRATCH/nope"; do
		set -- $args
		if [ "$1" = "-a" ]; then
			run --separate-stderr cpmap "$@" touch "$SCRATCH/marker" </dev/null
		else
			run --separate-stderr cpmap touch "$SCRATCH/marker" "$@" </dev/null
		fi
		assert_equal "$args: $status" "$args: 255"
		assert_equal "$args: $stderr" "$args: cpmap: $SCRATCH/nope: No such file or directory"
		assert_output ''
		[ ! -e "$SCRATCH/marker" ]
	done
}

@test "the first task starts before stdin is closed" {
	fifo=$(make_fifo in)
	timeout 20 "$CPMAP" sh -c 'echo "$1" >>"$2"' sh '{}' "$SCRATCH/started" \
		<"$fifo" >"$SCRATCH/out" 3>&- &
	bg=$!
	exec 4>"$fifo"
	echo first >&4
	wait_lines "$SCRATCH/started" 1 # stdin is still open here
	echo second >&4
	exec 4>&-
	rc=0
	wait "$bg" || rc=$?
	bg=
	assert_equal "$rc" 0
	assert_equal "$(sort "$SCRATCH/started" | tr '\n' ' ')" "first second "
}

@test "a result is written before stdin is closed" {
	fifo=$(make_fifo in)
	timeout 20 "$CPMAP" argv-print <"$fifo" >"$SCRATCH/out" 3>&- &
	bg=$!
	exec 4>"$fifo"
	echo first >&4
	wait_lines "$SCRATCH/out" 1 # stdin is still open here
	echo second >&4
	exec 4>&-
	rc=0
	wait "$bg" || rc=$?
	bg=
	assert_equal "$rc" 0
	assert_equal "$(cat "$SCRATCH/out")" $'first\nsecond'
}
