#!/usr/bin/env bats
# usage.bats - a bad command line stops cpmap before any task starts: exit
# 255, one line on stderr naming the problem, nothing on stdout.  --help and
# --version.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	setup_scratch
}

# usage_error WANT ARGS...: ARGS (CMD stands for a command that would leave
# a marker file) must be a usage error whose one line mentions WANT.
usage_error() {
	local want=$1 arg
	local -a args=()
	shift
	for arg; do
		if [ "$arg" = CMD ]; then
			args+=(touch "$SCRATCH/marker")
		else
			args+=("$arg")
		fi
	done
	run --separate-stderr bash -c 'echo x | "$CPMAP" "$@"' cpmap "${args[@]}"
	local what="cpmap ${*}"
	printf '%s: stderr was:\n%s\n' "$what" "$stderr" >&2
	assert_equal "$what: status $status" "$what: status 255"
	assert_equal "$what: stdout '$output'" "$what: stdout ''"
	assert_equal "$what: $(printf '%s\n' "$stderr" | wc -l) line(s)" "$what: 1 line(s)"
	[[ $stderr == "cpmap: "*"$want"*" (see cpmap --help)" ]] || {
		echo "$what: stderr '$stderr' does not name '$want'" >&2
		return 1
	}
	[ ! -e "$SCRATCH/marker" ] || {
		echo "$what: a task ran" >&2
		return 1
	}
}

@test "bad option values are usage errors: exit 255, one line, no task (cases)" {
	while IFS='|' read -r want args; do
		eval "set -- $args"
		usage_error "$want" "$@"
	done <<-'EOF'
	'abc'|-j abc CMD
	'-x'|-j -x CMD
	'+'|-j + CMD
	'5x'|-j 5x CMD
	''|-j '' CMD
	'abc'|--jobs=abc CMD
	-j|-j 0% CMD
	--chunk|--chunk 0 CMD
	'x'|-n x CMD
	--buffer|--buffer x CMD
	--buffer|--buffer 0 CMD
	''|-d '' CMD
	'ab'|-d ab CMD
	'\xZZ'|-d '\xZZ' CMD
	-I|-I '' CMD
	--colsep|-C '' CMD
	EOF
}

@test "a missing command with --no-shell is a usage error (cases)" {
	while IFS='|' read -r want args; do
		eval "set -- $args"
		usage_error "$want" "$@"
	done <<-'EOF'
	--no-shell needs a command|--no-shell
	--no-shell needs a command|--no-shell -j 2 --
	--no-shell needs a command|--no-shell ::: 'touch $SCRATCH/marker'
	EOF
}

@test "{= perl =} placeholders are a usage error naming them (cases)" {
	while IFS='|' read -r want args; do
		eval "set -- $args"
		usage_error "$want" "$@"
	done <<-'EOF'
	{=uc=}: perl expression placeholders|CMD '{=uc=}'
	{= $_ =}: perl expression|CMD 'a{= $_ =}b' {}
	{=1 s/a/b/ =}: perl|'touch $SCRATCH/marker {=1 s/a/b/ =}'
	{==}: perl|--shell CMD {==} ::: a
	EOF
}

@test "-C with an escape -d does not know, or a NUL, is a usage error (cases)" {
	while IFS='|' read -r want args; do
		eval "set -- $args"
		usage_error "$want" "$@"
	done <<-'EOF'
	--colsep: '\q': the escapes are|-C '\q' CMD
	--colsep: '\s+'|--colsep '\s+' CMD
	--colsep: '\0'|-C '\0' CMD
	--colsep: '\x00'|-C '\x00' CMD
	--colsep: 'a\'|--colsep='a\' CMD
	EOF
}

@test ":::: without a file name is a usage error (cases)" {
	while IFS='|' read -r want args; do
		eval "set -- $args"
		usage_error "$want" "$@"
	done <<-'EOF'
	::::|CMD ::::
	::::|CMD :::: ::: a
	::::|CMD ::: a ::::
	EOF
}

@test "an unknown option is a usage error on one line" {
	usage_error "unknown option --bogus" --bogus CMD
	usage_error "unknown option -Q" -Q CMD
}

@test "an option without its argument is a usage error on one line" {
	usage_error "-j needs an argument" -j
	usage_error "-n needs an argument" -k -n
	usage_error "--delimiter needs an argument" --delimiter
}

# help_mentions OPTION...: --help names each OPTION as a word of its own.
help_mentions() {
	local opt
	run --separate-stderr cpmap --help
	assert_success
	assert_equal "$stderr" ''
	for opt; do
		[[ $output =~ (^|[^-[:alnum:]])"$opt"([^-[:alnum:]]|$) ]] || {
			echo "--help does not mention $opt" >&2
			return 1
		}
	done
}

@test "--help exits 0 on stdout and mentions every option" {
	help_mentions -0 --null -d --delimiter -a --arg-file -C --colsep \
		--header --keep-empty --link -J --json-input --on-bad-input \
		-I --shell --no-shell --stdin --dry-run \
		-j --jobs -n --chunk --buffer \
		-k --ordered --unordered --line-buffer -u --ungroup --tag \
		--json --max-output --results -h --help -V --version ::: ::::
	assert_line --index 0 --regexp '^usage: cpmap '
}

@test "--help mentions the long aliases cpmap accepts" {
	run cpmap --replace XX --keep-order argv-print XX ::: v
	assert_success
	assert_output v
	help_mentions --replace --keep-order
}

@test "-h is --help" {
	run cpmap --help
	help=$output
	run cpmap -h
	assert_success
	assert_output "$help"
}

@test "--help and --version run nothing, whatever follows" {
	run bash -c 'echo x | "$CPMAP" --help touch "$SCRATCH/marker"'
	assert_success
	run bash -c 'echo x | "$CPMAP" --version touch "$SCRATCH/marker"'
	assert_success
	[ ! -e "$SCRATCH/marker" ]
}

@test "--version prints cpmap X.Y.Z" {
	for opt in --version -V; do
		run --separate-stderr cpmap "$opt"
		assert_success
		assert_equal "$stderr" ''
		assert_equal "${#lines[@]}" 1
		assert_output --regexp '^cpmap [0-9]+\.[0-9]+\.[0-9]+( |$)'
	done
}
