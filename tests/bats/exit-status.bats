#!/usr/bin/env bats
# exit-status.bats - cpmap's exit status, as GNU parallel's: 0 when every
# task succeeded, the number of failed tasks up to 100, 101 beyond, and
# what counts as a failed task (non-zero exit, a command that cannot run, a
# task killed by a signal).

load helpers

setup() {
	setup_scratch
	S=$SCRATCH
	# exitwith N: exit with status N.  killme SIG: die of signal SIG.
	printf '#!/bin/sh\nexit "$1"\n' >"$S/exitwith"
	printf '#!/bin/sh\nkill -"$1" $$\n' >"$S/killme"
	chmod +x "$S/exitwith" "$S/killme"
}

# Cases: the exit statuses of the tasks, and cpmap's exit status.
@test "the exit status counts the failed tasks: 0, k up to 100, 101 beyond" {
	while read -r want statuses; do
		run timeout 20 "$CPMAP" -j4 "$S/exitwith" ::: $statuses
		[ "$status" -eq "$want" ] ||
			fail "tasks exiting '$statuses': got $status, want $want"
	done <<'EOF'
0 0
0 0 0 0
1 1
1 0 0 7 0
3 0 1 0 2 3
1 255
1 0 255 0
2 255 128
5 1 2 3 4 5
EOF
}

@test "100 failed tasks give 100, 101 and 150 give 101" {
	for n in 99 100 101 150; do
		want=$n
		[ "$n" -gt 100 ] && want=101
		run timeout 20 "$CPMAP" -j4 false < <(seq "$n")
		[ "$status" -eq "$want" ] || fail "$n failed: got $status, want $want"
	done
}

@test "with --chunk the failed tasks are counted, not the failed inputs" {
	run timeout 20 "$CPMAP" -n2 false ::: a b c
	same status "$status" 2
	run timeout 20 "$CPMAP" -n3 false < <(seq 300)
	same status "$status" 100
}

@test "empty input gives 0 and runs nothing" {
	run timeout 20 "$CPMAP" "$S/exitwith" 3 </dev/null
	same status "$status" 0
	[ -z "$output" ]
	# Empty lines are no inputs either.
	run timeout 20 "$CPMAP" "$S/exitwith" 3 < <(printf '\n\n\n')
	same status "$status" 0
	[ -z "$output" ]
	run timeout 20 "$CPMAP" -0 "$S/exitwith" 3 </dev/null
	same status "$status" 0
}

@test "a command that cannot be found is a failed task, named by its input, and the run goes on" {
	run timeout 20 "$CPMAP" -k -j1 {} ok ::: echo no-such-cmd-t2 echo
	same status "$status" 1
	same "line 1" "${lines[0]}" ok
	same "line 2" "${lines[1]}" "cpmap: task 2 (input no-such-cmd-t2): cannot run no-such-cmd-t2: No such file or directory"
	same "line 3" "${lines[2]}" ok
	same "number of lines" "${#lines[@]}" 3
}

@test "a command that cannot be found for every input counts every task" {
	run timeout 20 "$CPMAP" -j2 no-such-cmd-t2 ::: a b c
	same status "$status" 3
	for i in a b c; do
		[[ "$output" == *"(input $i): cannot run no-such-cmd-t2: No such file or directory"* ]] ||
			fail "no message for input $i: $output"
	done
}

@test "a command that is not executable is a failed task with a message" {
	printf 'echo hi\n' >"$S/noexec"
	chmod -x "$S/noexec"
	run timeout 20 "$CPMAP" "$S/noexec" ::: a
	same status "$status" 1
	same output "$output" "cpmap: task 1 (input a): cannot run $S/noexec: Permission denied"
}

@test "a task killed by a signal counts as failed, with a message naming the input and the signal" {
	run timeout 20 "$CPMAP" -k -j1 sh -c '[ "$1" = b ] && kill -9 $$; echo "$1"' sh ::: a b c
	same status "$status" 1
	same output "$output" "a
cpmap: task 2 (input b): killed by SIGKILL
c"
}

@test "tasks killed by SIGTERM and SIGSEGV count as failed" {
	run timeout 20 "$CPMAP" -k -j1 "$S/killme" ::: TERM SEGV
	same status "$status" 2
	same output "$output" "cpmap: task 1 (input TERM): killed by SIGTERM
cpmap: task 2 (input SEGV): killed by SIGSEGV"
}

@test "a task with a missing --header column is a failed task and the run goes on" {
	run timeout 20 "$CPMAP" -k --header -C , echo {c} < <(printf 'a,b\n1,2\n3,4\n')
	same status "$status" 2
	same "number of lines" "${#lines[@]}" 2
	[[ "${lines[0]}" == "cpmap: task 1 (input 1,2): "*"'c'"* ]] ||
		fail "line 1: ${lines[0]}"
	[[ "${lines[1]}" == "cpmap: task 2 (input 3,4): "*"'c'"* ]] ||
		fail "line 2: ${lines[1]}"
}

@test "a usage error exits 255 with one line, before any task starts" {
	run timeout 20 "$CPMAP" --no-such-option-t2 touch "$S/ran" ::: a
	same status "$status" 255
	same "number of lines" "${#lines[@]}" 1
	[[ "${lines[0]}" == "cpmap: "*"(see cpmap --help)" ]] ||
		fail "line 1: ${lines[0]}"
	[ ! -e "$S/ran" ]
}

@test "--dry-run exits 0 whatever the command would do" {
	run timeout 20 "$CPMAP" --dry-run "$S/exitwith" ::: 1 2 3
	same status "$status" 0
}

@test "the exit status is the one GNU parallel gives for the same run" {
	command -v parallel >/dev/null || skip "GNU parallel is not installed"
	parallel --version 2>/dev/null | grep -q 'GNU parallel' || skip "parallel is not GNU parallel"
	while read -r opts cmd args; do
		cpmap_status=0 parallel_status=0
		timeout 20 "$CPMAP" $opts "$S/$cmd" ::: $args >/dev/null 2>&1 ||
			cpmap_status=$?
		timeout 60 parallel --will-cite $opts "$S/$cmd" ::: $args \
		    >/dev/null 2>&1 || parallel_status=$?
		[ "$cpmap_status" -eq "$parallel_status" ] ||
			fail "$opts $cmd ::: $args: cpmap $cpmap_status, parallel $parallel_status"
	done <<'EOF'
-j2 exitwith 0 0 0
-j2 exitwith 0 1 0 2 3
-j2 exitwith 255 0 42
-j2 killme KILL INT 0
-n2 exitwith 1 2 3
-j1 exitwith 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1
EOF
	# Empty input.
	cpmap_status=0 parallel_status=0
	timeout 20 "$CPMAP" "$S/exitwith" 1 </dev/null || cpmap_status=$?
	timeout 60 parallel --will-cite "$S/exitwith" 1 </dev/null || parallel_status=$?
	same "empty input: exit status, GNU parallel's" "$cpmap_status" "$parallel_status"
}
