#!/usr/bin/env bats
# quoting.bats - hostile inputs never run anything.  Direct mode passes them
# to execvp untouched; shell mode quotes each substituted value as exactly
# one literal word; --dry-run prints commands that sh runs with the same
# argv; --stdin passes the bytes through.  Every test runs in $SCRATCH and
# checks that no "pwned" file appears there.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	setup_scratch
	cd "$SCRATCH"
	# One hostile value per line (no empty line: those are skipped).
	cat >hostile <<-'EOF'
	a b
	  two  spaces  
	it's
	say "hi"
	$(touch pwned)
	`touch pwned`
	; touch pwned
	| touch pwned
	&& touch pwned
	> pwned
	*
	?ostile
	[h]ostile
	~
	#comment
	-n
	--help
	\x41\\ \
	$HOME ${HOME}
	a'b"c\d$e`f
	'
	"
	EOF
	# The same and worse as NUL-separated records: newlines, empty values.
	{
		tr '\n' '\0' <hostile
		printf 'x\n$(touch pwned)\n\0\0\ntouch pwned\n\0'"'\n'"'\0\377\001\0'
	} >hostile0
}

teardown() {
	[ ! -e "$SCRATCH/pwned" ] || {
		echo "a hostile input created $SCRATCH/pwned" >&2
		return 1
	}
}

# argv_print_of FILE SEP: what argv-print shows for each record of FILE
# (SEP: newline or nul), one argument per record.
argv_print_of() {
	local -a records
	if [ "$2" = nul ]; then
		mapfile -d '' records <"$1"
	else
		mapfile -t records <"$1"
	fi
	argv-print "${records[@]}"
}

@test "hostile lines reach argv byte for byte in direct mode" {
	timeout 20 "$CPMAP" -k argv-print <hostile >out
	argv_print_of hostile line >want
	cmp want out
	[ ! -e pwned ]
}

@test "hostile NUL-separated records (newlines, empty) reach argv in direct mode" {
	timeout 20 "$CPMAP" -k -0 --keep-empty argv-print <hostile0 >out
	argv_print_of hostile0 nul >want
	cmp want out
	[ "$(wc -l <out)" -eq "$(tr -cd '\0' <hostile0 | wc -c)" ]
	[ ! -e pwned ]
}

@test "hostile values inside a word reach argv in direct mode" {
	timeout 20 "$CPMAP" -k -0 --keep-empty argv-print 'x{}y' <hostile0 >out
	argv_print_of hostile0 nul | sed 's/^/x/; s/$/y/' >want
	cmp want out
}

@test "shell mode gives each hostile value as one literal word (cases)" {
	argv_print_of hostile0 nul >want
	sed 's/^/x/; s/$/y/' want >want.xy
	while IFS='|' read -r expect args; do
		eval "set -- $args"
		timeout 20 "$CPMAP" -k -0 --keep-empty "$@" <hostile0 >out
		cmp "$expect" out || {
			echo "differs: cpmap $args" >&2
			return 1
		}
		[ ! -e pwned ]
	done <<-'EOF'
	want|'argv-print {}'
	want|'argv-print {} | cat'
	want.xy|'argv-print x{}y'
	want|--shell argv-print {}
	want|--shell argv-print
	want.xy|--shell argv-print 'x{}y'
	want|--shell 'argv-print {}'
	EOF
}

@test "--no-shell runs a command word with spaces as a file name" {
	run --separate-stderr cpmap --no-shell 'touch pwned; argv-print {}' ::: a
	assert_equal "$status" 1
	assert_output ''
	assert_equal "$stderr" "cpmap: task 1 (input a): cannot run touch pwned; argv-print a: No such file or directory"
	[ ! -e pwned ]
}

@test "--dry-run runs nothing" {
	run cpmap -k --dry-run touch pwned ::: a 'b c'
	assert_success
	assert_output $'touch pwned a\ntouch pwned \'b c\''
	[ ! -e pwned ]
}

@test "--dry-run output run by sh gives the same argv (direct mode)" {
	for args in "-k" "-k -0 --keep-empty"; do
		input=hostile
		[ "$args" = "-k" ] || input=hostile0
		timeout 20 "$CPMAP" $args --dry-run argv-print '<{}>' <"$input" >commands
		[ ! -e pwned ]
		sh commands >got
		timeout 20 "$CPMAP" $args argv-print '<{}>' <"$input" >want
		cmp want got
	done
}

@test "--dry-run output run by sh gives the same argv (shell mode)" {
	timeout 20 "$CPMAP" -k -0 --keep-empty --dry-run 'argv-print x{}y' <hostile0 >commands
	[ ! -e pwned ]
	sh commands >got
	timeout 20 "$CPMAP" -k -0 --keep-empty 'argv-print x{}y' <hostile0 >want
	cmp want got
}

@test "--dry-run of one task round-trips through sh -c" {
	while IFS= read -r value; do
		run cpmap --dry-run argv-print "$value" ::: "$value" </dev/null
		assert_success
		run sh -c "$output" </dev/null
		assert_success
		want=$(argv-print "$value" "$value")
		assert_equal "$output" "$want"
	done <hostile
	[ ! -e pwned ]
}

@test "--stdin passes hostile lines byte for byte" {
	timeout 20 "$CPMAP" -k -j2 --stdin cat <hostile >out
	cmp hostile out
}

@test "--stdin -0 passes each record and its NUL byte" {
	timeout 20 "$CPMAP" -k -j2 -0 --keep-empty --stdin cat <hostile0 >out
	cmp hostile0 out
}
