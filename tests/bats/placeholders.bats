#!/usr/bin/env bats
# placeholders.bats - what each placeholder expands to.  Path values follow
# GNU parallel (checked against parallel 20221122); the tables hold the
# concrete values so the suite does not need parallel to run.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	setup_scratch
	bg=
}

teardown() {
	if [ -n "$bg" ]; then
		kill "$bg" 2>/dev/null || true
		wait "$bg" 2>/dev/null || true
	fi
}

# check_table ARGS... <TABLE: each line "input<TAB>template<TAB>expected";
# runs cpmap ARGS... argv-print TEMPLATE ::: INPUT and wants one line.
check_table() {
	local input template want
	while IFS=$'\t' read -r input template want; do
		run cpmap --keep-empty "$@" argv-print "$template" ::: "$input"
		assert_success
		assert_equal "[$input] $template -> $output" \
			"[$input] $template -> $want"
	done
}

@test "{} {.} {/} {//} {/.} on ordinary and tricky paths (cases)" {
	check_table <<-'EOF'
	a/b.c	{}|{.}|{/}|{//}|{/.}	a/b.c|a/b|b.c|a|b
	f.tar.gz	{}|{.}|{/}|{//}|{/.}	f.tar.gz|f.tar|f.tar.gz|.|f.tar
	b	{}|{.}|{/}|{//}|{/.}	b|b|b|.|b
	x.	{}|{.}|{/}|{//}|{/.}	x.|x|x.|.|x
	dir.x/f	{}|{.}|{/}|{//}|{/.}	dir.x/f|dir.x/f|f|dir.x|f
	a.b/c.d/e	{}|{.}|{/}|{//}|{/.}	a.b/c.d/e|a.b/c.d/e|e|a.b/c.d|e
	/	{}|{.}|{/}|{//}|{/.}	/|/||/|
	/a	{}|{.}|{/}|{//}|{/.}	/a|/a|a|/|a
	/a.b	{}|{.}|{/}|{//}|{/.}	/a.b|/a|a.b|/|a
	a/b/	{}|{.}|{/}|{//}|{/.}	a/b/|a/b/||a|
	//a//b//	{}|{.}|{/}|{//}|{/.}	//a//b//|//a//b//||//a|
	a//b	{}|{.}|{/}|{//}|{/.}	a//b|a//b|b|a|b
	.hidden	{}|{.}|{/}|{//}|{/.}	.hidden||.hidden|.|
	dir/.hidden	{}|{.}|{/}|{//}|{/.}	dir/.hidden|dir/|.hidden|dir|
	./x.y	{}|{.}|{/}|{//}|{/.}	./x.y|./x|x.y|.|x
	../up.z	{}|{.}|{/}|{//}|{/.}	../up.z|../up|up.z|..|up
	a b/c d.e	{}|{.}|{/}|{//}|{/.}	a b/c d.e|a b/c d|c d.e|a b|c d
	EOF
}

@test "placeholders inside words and several in one argument (cases)" {
	check_table <<-'EOF'
	d/f.c	pre{}post	pred/f.cpost
	d/f.c	{/.}.o	f.o
	d/f.c	{//}/obj/{/.}.o	d/obj/f.o
	d/f.c	--in={}	--in=d/f.c
	d/f.c	{}{}	d/f.cd/f.c
	d/f.c	{{}}	{d/f.c}
	d/f.c	{#}-{%}-{}	1-1-d/f.c
	d/f.c	{1}{1.}{1/}{1//}{1/.}	d/f.cd/ff.cdf
	EOF
}

@test "braces that are no placeholder stay literal (cases)" {
	check_table <<-'EOF'
	v	{{}	{v
	v	{}}	v}
	v	{ }x{}	{ }xv
	v	{%%}{}	{%%}v
	v	{1x}{}	{1x}v
	v	awk{print}{}	awk{print}v
	EOF
}

@test "{N} and {N.} {N/} {N//} {N/.} pick and modify a --colsep column" {
	run bash -c 'printf "x/y.z|/r/s.t/u.v\n" | "$CPMAP" -C "|" argv-print \
		"{1}" "{2}" "{2.}" "{2/}" "{2//}" "{2/.}" "<{3}>" "a{1.}b{2/}c"'
	assert_success
	assert_output - <<-'EOF'
	x/y.z
	/r/s.t/u.v
	/r/s.t/u
	u.v
	/r/s.t
	u
	<>
	ax/ybu.vc
	EOF
}

@test "without --colsep {1} is the whole input and {2} is empty" {
	run cpmap argv-print '{1}' '{1.}' '<{2}>' ::: 'a b.c'
	assert_success
	assert_output $'a b.c\na b\n<>'
}

@test "{N} is the N-th ::: group's value and {} each group's value, one argument each" {
	run cpmap -k argv-print '{1/.}' '{2//}' '<{3}>' '{}' ::: a/b.c ::: 'd/e.f g'
	assert_success
	assert_output $'b\nd\n<>\na/b.c\nd/e.f g'
}

@test "{#} numbers tasks from 1 in input order" {
	run cpmap -k -j2 argv-print '{#}:{}' ::: a b c d
	assert_success
	assert_output $'1:a\n2:b\n3:c\n4:d'
}

@test "{%} is always within 1..-j" {
	for j in 1 3; do
		run cpmap -j "$j" sh -c 'echo {%}' ::: $(seq 40)
		assert_success
		assert_equal "$(echo "$output" | wc -l)" 40
		# Which slots get used depends on timing; none may be outside.
		assert_equal "$(echo "$output" | grep -cvx "[1-$j]")" 0
	done
}

@test "{%} of tasks running together differ, and a freed slot is reused" {
	for i in 1 2 3 4; do make_fifo "gate$i" >/dev/null; done
	timeout 20 "$CPMAP" -j2 fifo-wait -s "$SCRATCH/started" \
		"$SCRATCH/gate{#}" 0 '{#}' '{%}' ::: a b c d \
		>"$SCRATCH/out" 3>&- &
	bg=$!
	wait_lines "$SCRATCH/started" 2
	slot_of() { awk -v t="$1" '$2 == t { print $3 }' "$SCRATCH/started"; }
	assert_equal "$({ slot_of 1; slot_of 2; } | sort | tr -d '\n')" 12
	release "$SCRATCH/gate1"
	wait_lines "$SCRATCH/started" 3
	assert_equal "$(slot_of 3)" "$(slot_of 1)"
	release "$SCRATCH/gate2"
	wait_lines "$SCRATCH/started" 4
	assert_equal "$(slot_of 4)" "$(slot_of 2)"
	release "$SCRATCH/gate3"
	release "$SCRATCH/gate4"
	wait "$bg"
	bg=
}

@test "tasks get CPMAP_SEQ, CPMAP_SLOT and CPMAP_HOST=local" {
	run cpmap -k -j1 sh -c 'echo "$CPMAP_SEQ $CPMAP_SLOT $CPMAP_HOST"' ::: a b c
	assert_success
	assert_output $'1 1 local\n2 1 local\n3 1 local'
}

@test "CPMAP_SEQ and CPMAP_SLOT equal {#} and {%}" {
	run cpmap -j2 sh -c 'echo "$1=$CPMAP_SEQ $2=$CPMAP_SLOT"' sh '{#}' '{%}' ::: $(seq 12)
	assert_success
	assert_equal "$(echo "$output" | wc -l)" 12
	while read -r seq slot; do
		assert_equal "${seq%=*}" "${seq#*=}"
		assert_equal "${slot%=*}" "${slot#*=}"
	done <<<"$output"
}

@test "-I STR stands for the input, {} is then literal, others still work" {
	run cpmap -I XX argv-print XX '{}' aXXb '{.}' '{/}' '{#}' ::: d/f.c
	assert_success
	assert_output $'d/f.c\n{}\nad/f.cb\nd/f\nf.c\n1'
}

@test "-I STR not used in the command: the input is appended" {
	run cpmap -I XX argv-print '{}' ::: v
	assert_success
	assert_output $'{}\nv'
}

@test "{name} is a --header column" {
	run bash -c 'printf "name,dir\nbob,a/b.c\n" |
		"$CPMAP" -C , --header argv-print "{name}@{dir}"'
	assert_success
	assert_output bob@a/b.c
}

@test "{name} without --header stays literal" {
	run cpmap argv-print '{foo}' 'awk{print $1}' ::: v
	assert_success
	assert_output $'{foo}\nawk{print $1}\nv'
}

@test "an unknown {name} with --header is a task error and the run goes on" {
	run --separate-stderr bash -c 'printf "h\nv\nw\n" |
		"$CPMAP" -k -j1 --header argv-print "{h}" "{zz}"'
	assert_equal "$status" 2
	assert_output ''
	assert_equal "$(echo "$stderr" | wc -l)" 2
	[[ $(echo "$stderr" | sed -n 1p) =~ ^cpmap:\ task\ 1\ \(input\ v\):\ .*\'zz\' ]]
	[[ $(echo "$stderr" | sed -n 2p) =~ ^cpmap:\ task\ 2\ \(input\ w\):\ .*\'zz\' ]]
}

@test "with no placeholder the input is appended as the last argument" {
	run cpmap -k argv-print a '-b c' ::: 'x y' z
	assert_success
	assert_output $'a\n-b c\nx y\na\n-b c\nz'
}

@test "with no placeholder ::: group values are appended as separate arguments" {
	run cpmap -k argv-print -- ::: a b ::: '1 2'
	assert_success
	assert_output $'--\na\n1 2\n--\nb\n1 2'
}

@test "{#} and {%} alone stop the input being appended, as every placeholder" {
	run cpmap -j1 argv-print '{#}' '{%}' ::: v
	assert_success
	assert_output $'1\n1'
}

@test "shell mode with no placeholder appends the input as one word" {
	run cpmap 'argv-print x' ::: 'a b'
	assert_success
	assert_output $'x\na b'
}

@test "--chunk repeats each word that mentions the input, once per input" {
	run cpmap -k -n2 argv-print 'x{}y' '{.}' '{#}' ::: a.1 b.2 c.3
	assert_success
	assert_output $'xa.1y\nxb.2y\na\nb\n1\nxc.3y\nc\n2'
}

@test "--chunk with no placeholder appends up to N inputs" {
	run cpmap -k -n2 argv-print -- ::: a b c
	assert_success
	assert_output $'--\na\nb\n--\nc'
}

@test "--chunk in shell mode joins the quoted values with spaces" {
	run cpmap -k -n2 'argv-print x{}y' ::: a 'b c' d
	assert_success
	assert_output $'xa\nb cy\nxdy'
}
