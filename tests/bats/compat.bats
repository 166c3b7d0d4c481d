#!/usr/bin/env bats
# compat.bats - command lines written for GNU parallel run unchanged, or are
# refused clearly (issue 11).  Each expected text is what GNU parallel
# 20221122 prints for the same command line; GNU parallel is not needed.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	setup_scratch
}

# ---- {#} and {%} are placeholders: nothing is appended ------------------

@test "{#} counts as a placeholder: echo {#} ::: A B C prints 1 2 3" {
	run cpmap -k echo {#} ::: A B C
	assert_success
	assert_output $'1\n2\n3'
}

@test "{%} counts as a placeholder: echo slot{%} ::: A prints slot1" {
	run cpmap -j1 echo slot{%} ::: A
	assert_success
	assert_output 'slot1'
}

@test "rm -f lock{#} ::: keep removes lock1 and never keep" {
	cd "$SCRATCH"
	touch keep lock1
	run cpmap rm -f lock{#} ::: keep
	assert_success
	[ -e keep ]
	[ ! -e lock1 ]
}

@test "shell mode: 'rm -f lock{#}' ::: keep never removes keep either" {
	cd "$SCRATCH"
	touch keep lock1
	run cpmap 'rm -f lock{#}' ::: keep
	assert_success
	[ -e keep ]
	[ ! -e lock1 ]
}

# ---- -n N with {1} ... {N} ----------------------------------------------

@test "-n 2 cp {1} {2} runs cp a b" {
	cd "$SCRATCH"
	echo content > a
	run bash -c "printf 'a\nb\n' | \"\$CPMAP\" -n 2 cp {1} {2}"
	assert_success
	assert_equal "$(cat b)" content
}

@test "-n 2: {k} is the k-th input of the chunk, empty past a short last chunk" {
	run bash -c "printf 'a\nb\nc\n' | \"\$CPMAP\" -k -n 2 echo '[{1}]' '[{2}]'"
	assert_success
	assert_output $'[a] [b]\n[c] []'
}

@test "-n 2: {-1} is the chunk's last input" {
	run cpmap -k -n 2 echo '[{-1}]' ::: a b c
	assert_success
	assert_output $'[b]\n[c]'
}

@test "-n 1 (the default): {1} is the input, {2} is empty" {
	run cpmap -k -n 1 printf '[%s][%s]\n' {1} {2} ::: a b c
	assert_success
	assert_output $'[a][]\n[b][]\n[c][]'
}

@test "-n 1 with --colsep: {1} and {2} are still columns" {
	run bash -c "echo 'a,b' | \"\$CPMAP\" -n 1 --colsep , echo {1} {2}"
	assert_success
	assert_output 'a b'
}

@test "-n 2 with --colsep: {N} counts the columns of every input in turn" {
	run bash -c "printf 'a,b\nc,d\n' | \"\$CPMAP\" -n 2 --colsep , echo '[{1}]' '[{2}]' '[{3}]' '[{-1}]'"
	assert_success
	assert_output '[a] [b] [c] [d]'
}

@test "-n 2 with groups: {1} {2} are the groups of the chunk's first input" {
	run cpmap -k -n 2 echo '[{1}]' '[{2}]' ::: a b ::: c
	assert_success
	assert_output '[a] [c]'
}

@test "-n 2: {} keeps the -X context replace" {
	run cpmap -k -n 2 echo x{}y ::: a b c
	assert_success
	assert_output $'xay xby\nxcy'
}

# ---- {} with several ::: groups ------------------------------------------

@test "printf '[%s]\\n' {} ::: a ::: 'c d' prints [a] and [c d]" {
	run cpmap printf '[%s]\n' {} ::: a ::: 'c d'
	assert_success
	assert_output $'[a]\n[c d]'
}

@test "with no placeholder, each group's value is appended as its own argument (as before)" {
	run cpmap printf '[%s]\n' ::: a ::: 'c d'
	assert_success
	assert_output $'[a]\n[c d]'
}

@test "x{}y with several groups: text before goes to the first, after to the last" {
	run cpmap -k printf '[%s]\n' x{}y ::: a ::: b
	assert_success
	assert_output $'[xa]\n[by]'
}

@test "{} with several groups in shell mode: each value one quoted word" {
	run cpmap "printf '[%s]\n' {}" ::: 'a b' ::: "c'd"
	assert_success
	assert_output $'[a b]\n[c\'d]'
}

@test "{} with --colsep: each column one argument" {
	run bash -c "echo 'a b,c' | \"\$CPMAP\" --colsep , printf '[%s]\n' {}"
	assert_success
	assert_output $'[a b]\n[c]'
}

# ---- {-N} and {= perl =} --------------------------------------------------

@test "{-1} {-2} count from the last group" {
	run cpmap echo {-1} {-2} ::: a ::: b ::: c
	assert_success
	assert_output 'c b'
}

@test "{-1} is the last --colsep column" {
	run bash -c "echo 'a,b,c' | \"\$CPMAP\" --colsep , echo {-1}"
	assert_success
	assert_output 'c'
}

@test "{= perl =} is a usage error naming the placeholder, and runs nothing" {
	run --separate-stderr cpmap echo '{=1 $_=uc($_) =}' ::: a
	assert_equal "$status" 255
	assert_equal "$output" ''
	assert_equal "$stderr" 'cpmap: {=1 $_=uc($_) =}: perl expression placeholders {= ... =} are not supported (use a shell command or a script) (see cpmap --help)'
}

# ---- -C escapes -------------------------------------------------------------

@test "-C '\\t' splits on a tab" {
	run bash -c "printf 'a b\tc\n' | \"\$CPMAP\" -C '\\t' printf '[%s]\n' {2} {1}"
	assert_success
	assert_output $'[c]\n[a b]'
}

@test "-C '\\x2c' splits on a comma, --colsep='\\\\' on a backslash" {
	run bash -c "echo 'a,b' | \"\$CPMAP\" -C '\\x2c' echo {2}"
	assert_success
	assert_output 'b'
	run bash -c "echo 'a\\b' | \"\$CPMAP\" --colsep='\\\\' echo {2}"
	assert_success
	assert_output 'b'
}

@test "-C '\\n' splits a NUL-separated record on its newlines" {
	run bash -c "printf 'a\nb\0' | \"\$CPMAP\" -0 -C '\\n' echo {2} {1}"
	assert_success
	assert_output 'b a'
}

# ---- commands from the input ---------------------------------------------

@test "with no command, each line of stdin is a shell command (parallel < jobs)" {
	run bash -c "printf 'echo a\necho b | tr b c\n' | \"\$CPMAP\" -k"
	assert_success
	assert_output $'a\nc'
}

@test "with no command, each ::: value is a shell command" {
	run cpmap -k ::: 'echo a' 'echo b'
	assert_success
	assert_output $'a\nb'
}

@test "with no command, several groups make one command line (GNU)" {
	run cpmap -k ::: echo ::: a b
	assert_success
	assert_output $'a\nb'
}

@test "with no command, --dry-run prints the command lines as they are" {
	run cpmap -k --dry-run ::: 'echo "a b" > f' 'true'
	assert_success
	assert_output $'echo "a b" > f\ntrue'
}

@test "with no command, a failing command line counts as a failed task" {
	run --separate-stderr cpmap -k ::: 'exit 3' 'echo ok'
	assert_equal "$status" 1
	assert_output 'ok'
}

@test "with no command and --stdin, a shell reads each input from its stdin" {
	run cpmap -k --stdin ::: 'echo a' 'echo b; echo c'
	assert_success
	assert_output $'a\nb\nc'
}
