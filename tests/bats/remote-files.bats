#!/usr/bin/env bats
# remote-files.bats - files and remote workers: --basefile, --transfer,
# --return, --cleanup (and --trc), over the same sessions as the tasks.
#
# Every "host" is this machine with a login directory of its own, where
# the files sent to it go: the fake transport's hosts fa and fb run in
# $FAKE_HOSTS/fa.home and fb.home; the sshd hosts f1, f2 and f3 (127.0.0.1-3,
# see remote-helpers.bash) cd to $SSHBED_DIR/fN/home first (ForceCommand),
# and f2 and f3 have the built cpmap in their PATH.  Each test runs in
# every mode: the sh agent (--remote-agent sh) and cpmap --worker, over the
# fake transport and over sshd.  cpmap runs in the test's scratch dir, where
# returned files land.

load helpers
load remote-helpers
bats_require_minimum_version 1.5.0

# files_host NAME I: host I's login directory, where it cds first; f2 and
# f3 have the built cpmap on their PATH.
files_host() {
	local path=
	mkdir -p "$SSHBED_DIR/$1/home"
	[ "$2" = 1 ] || path="PATH=$(dirname "$CPMAP"):\$PATH && export PATH && "
	echo "ForceCommand cd $SSHBED_DIR/$1/home && $path eval \"\$SSH_ORIGINAL_COMMAND\""
}

setup_file() {
	sshbed_setup_suite f files_host
}

teardown_file() {
	[ -n "${SSHBED_DIR:-}" ] || return 0
	sshbed_stop_all
	rm -rf "$SSHBED_DIR"
}

setup() {
	setup_scratch
	S=$SCRATCH
	export S LC_ALL=C
	FT=$TESTS_SRC/bin/fake-transport
	export FAKE_HOSTS=$S/hosts
	mkdir -p "$FAKE_HOSTS"/{fa,fb}.{home,tmp}
	cd "$S"
	MODES="fake-sh fake-worker"
	[ -n "$SSHBED_SKIP" ] || MODES+=" ssh-sh ssh-worker"
}

teardown() {
	cd /
	kill_test_processes
	local h
	for h in fa fb; do
		fake_cont_host "$h"
		fake_kill_host "$h"
	done
	if [ -n "${SSHBED_DIR:-}" ] && [ -z "$SSHBED_SKIP" ]; then
		for h in f1 f2 f3; do
			rm -rf "${SSHBED_DIR:?}/$h/home/"* "${SSHBED_DIR:?}/$h/tmp/"*
		done
	fi
	true
}

# hosts MODE [SLOTS]: HARGS (the options that reach MODE's two hosts),
# HOMES (their login directories), HOSTNAMES and AGENT (sh or cpmap).
hosts() {
	local n=${2:-1}
	case $1 in
	fake-sh)
		HARGS=(--transport "$FT" --remote-agent sh -S "$n/fa,$n/fb")
		HOSTNAMES="fa fb" AGENT=sh ;;
	fake-worker)
		HARGS=(--transport "env PATH=$(dirname "$CPMAP"):$PATH $FT" -S "$n/fa,$n/fb")
		HOSTNAMES="fa fb" AGENT=cpmap ;;
	ssh-sh)
		HARGS=(--transport "ssh -F $SSHBED_DIR/ssh_config" --remote-agent sh -S "$n/f1,$n/f2")
		HOSTNAMES="f1 f2" AGENT=sh ;;
	ssh-worker)
		HARGS=(--transport "ssh -F $SSHBED_DIR/ssh_config" -S "$n/f2,$n/f3")
		HOSTNAMES="f2 f3" AGENT=cpmap ;;
	esac
	HOMES=()
	local h
	for h in $HOSTNAMES; do
		case $1 in
		fake-*) HOMES+=("$FAKE_HOSTS/$h.home") ;;
		*) HOMES+=("$SSHBED_DIR/$h/home") ;;
		esac
	done
}

# settled MODE: nothing of the run is left: no process, no agent directory.
settled() {
	case $1 in
	fake-*) fake_gone fa fb || return 1
		same "agent dirs" "$(ls -A "$FAKE_HOSTS/fa.tmp" "$FAKE_HOSTS/fb.tmp" | grep -v : | grep .)" "" ;;
	*) sshbed_idle $HOSTNAMES || return 1
		local h
		for h in $HOSTNAMES; do
			same "agent dirs on $h" "$(ls -A "$SSHBED_DIR/$h/tmp")" "" || return 1
		done ;;
	esac
}

# wipe: the hosts' login directories are empty again.
wipe() {
	local h
	for h in "${HOMES[@]}"; do
		rm -rf "${h:?}/"*
	done
}

# The files the tests send: binary (a few MB), NULs and no final newline,
# empty, in a subdirectory.
inputs() {
	mkdir -p in/sub
	head -c 3000000 /dev/urandom >in/sub/big.bin
	printf 'a\0b\n\377\376 no final newline' >in/nul.bin
	: >in/empty.bin
	printf '%s\n' in/sub/big.bin in/nul.bin in/empty.bin >list
}

@test "--transfer --return: binary files go to the host and come back byte for byte, with both agents" {
	inputs
	for mode in $MODES; do
		hosts "$mode"
		rm -f in/*.out in/sub/*.out
		run --separate-stderr cpmap "${HARGS[@]}" --transfer --return '{}.out' --json -a list \
			sh -c 'cp "$1" "$1.out" && cat /proc/$PPID/comm' sh
		same "$mode: exit" "$status" 0
		for f in in/sub/big.bin in/nul.bin in/empty.bin; do
			cmp "$f" "$f.out" || { echo "$mode: $f.out differs" >&2; return 1; }
			# The file sent is on one host, as it was here.
			found=
			for h in "${HOMES[@]}"; do
				[ -f "$h/$f" ] && cmp "$f" "$h/$f" && found=1
			done
			[ -n "$found" ] || { echo "$mode: $f is on no host" >&2; return 1; }
		done
		agents=$(printf '%s\n' "$output" | jq -r .stdout | grep . | sort -u)
		if [ "$AGENT" = cpmap ]; then
			same "$mode: the tasks' parent" "$agents" cpmap
		else
			[[ $agents != *cpmap* ]]
		fi
		settled "$mode"
		wipe
	done
}

@test "--basefile: sent once per host before its first task (2 slots each), not again per task" {
	printf 'base\n' >base.txt
	for mode in $MODES; do
		hosts "$mode" 2
		# Each task appends to the host's copy: a copy sent again would
		# lose the lines before it.
		run --separate-stderr cpmap "${HARGS[@]}" --basefile base.txt \
			sh -c 'test "$(head -n1 base.txt)" = base && echo "$1" >>base.txt' sh ::: $(seq 12)
		same "$mode: exit" "$status" 0
		total=0
		for h in "${HOMES[@]}"; do
			same "$mode: the first line on $h" "$(head -n1 "$h/base.txt")" base
			total=$((total + $(wc -l <"$h/base.txt") - 1))
		done
		same "$mode: lines added" "$total" 12
		same "$mode: every task's line" "$(cat "${HOMES[@]/%//base.txt}" | grep -vx base | sort -n | tr '\n' ' ')" "$(seq 12 | tr '\n' ' ')"
		settled "$mode"
		wipe
	done
}

@test "--cleanup (--trc): nothing is left on the hosts, the basefile removed at the end; the results came back" {
	inputs
	printf 'base\n' >base.txt
	for mode in $MODES; do
		hosts "$mode"
		rm -f in/*.out in/sub/*.out
		run --separate-stderr cpmap "${HARGS[@]}" --basefile base.txt --trc '{}.out' -a list \
			sh -c 'cat base.txt >/dev/null && cp "$1" "$1.out"' sh
		same "$mode: exit" "$status" 0
		for f in in/sub/big.bin in/nul.bin in/empty.bin; do
			cmp "$f" "$f.out"
		done
		settled "$mode"
		for h in "${HOMES[@]}"; do
			same "$mode: left on $h" "$(cd "$h" && find . -mindepth 1)" ""
		done
	done
}

@test "a file to transfer that is missing: that task is bad input, the others run; a return that is missing: nothing, no error" {
	inputs
	for mode in $MODES; do
		hosts "$mode"
		rm -f in/*.out in/*.none
		run --separate-stderr cpmap "${HARGS[@]}" --transfer --return '{}.out' --return '{}.none' \
			--json sh -c 'cp "$1" "$1.out"' sh ::: in/nul.bin in/missing in/empty.bin
		same "$mode: exit" "$status" 1
		cmp in/nul.bin in/nul.bin.out
		cmp in/empty.bin in/empty.bin.out
		[ ! -e in/nul.bin.none ] && [ ! -e in/missing.out ]
		same "$mode: statuses" "$(printf '%s\n' "$output" | jq -r '[.input, .status, .error.kind] | join(" ")' | sort | tr '\n' ,)" \
			"in/empty.bin ok ,in/missing error bad-input,in/nul.bin ok ,"
		msg=$(printf '%s\n' "$output" | jq -r 'select(.input == "in/missing") | .error.message')
		same "$mode: message" "$msg" "--transfer: cannot read in/missing: No such file or directory"
		settled "$mode"
		wipe
	done
}

@test "a file that cannot be written on the host, or here when it comes back: an error result (kind file) naming it" {
	inputs
	for mode in $MODES; do
		hosts "$mode" 1
		# On the hosts, "in" is a file: in/nul.bin cannot be put there.
		for h in "${HOMES[@]}"; do
			echo blocker >"$h/in"
		done
		run --separate-stderr cpmap "${HARGS[@]}" --transfer --json cat ::: in/nul.bin
		same "$mode: exit" "$status" 1
		same "$mode: status" "$(jq -r '[.status, .error.kind, .stdout] | join(" ")' <<<"$output")" "error file "
		[[ $(jq -r .error.message <<<"$output") == *"cannot write"*"in/nul.bin"* ]]
		wipe
		# Here, "back" is a file: back/1.out cannot come back.
		echo blocker >back
		run --separate-stderr cpmap "${HARGS[@]}" --return 'back/{#}.out' --json \
			sh -c 'mkdir -p back && echo "$1" >"back/$CPMAP_SEQ.out" && echo done' sh ::: x
		same "$mode: exit" "$status" 1
		same "$mode: status" "$(jq -r '[.status, .error.kind, .stdout] | join(" ")' <<<"$output")" 'error file done'
		same "$mode: message" "$(jq -r .error.message <<<"$output")" \
			"cannot write the returned file back/1.out: Not a directory"
		rm -f back
		settled "$mode"
		wipe
	done
}

@test "a file name with a newline is refused for that task (bad input); a basefile that cannot be read stops the run at start" {
	hosts fake-sh
	printf 'x\n' >$'a\nb'
	run --separate-stderr cpmap "${HARGS[@]}" --transfer --json -0 cat < <(printf 'a\nb\0')
	same "exit" "$status" 1
	same "error" "$(jq -r '[.error.kind, .error.message] | join(": ")' <<<"$output")" \
		"bad-input: --transfer: a file name with a newline cannot be sent or returned"
	run --separate-stderr cpmap "${HARGS[@]}" --return '{}.out' --json -0 true < <(printf 'a\nb\0')
	same "error" "$(jq -r .error.kind <<<"$output")" bad-input
	run -255 --separate-stderr cpmap "${HARGS[@]}" --basefile nowhere true ::: 1
	[[ $stderr == *"--basefile: cannot read nowhere: No such file or directory"* ]]
	settled fake-sh
}

@test "without -S the file options are accepted and do nothing" {
	inputs
	printf 'base\n' >base.txt
	run cpmap --basefile base.txt --transfer --return '{}.out' --cleanup cmp in/nul.bin ::: in/nul.bin
	same "exit" "$status" 0
	[ -f in/nul.bin ] && [ -f base.txt ] && [ ! -e in/nul.bin.out ]
}

@test "an agent that sends back a file nobody asked for: it is not written, its session is dropped" {
	# A "host" whose agent is hostile: it answers every task with a file
	# of its own choosing, then a result.
	cat >"$S/evil" <<EVIL
#!/bin/sh
case "\$*" in
*cpmap-host*) echo "cpmap-host 1 0"; exec cat >/dev/null ;;
esac
echo "cpmap-agent 4"
while read -r op seq rest; do
	[ "\$op" = T ] || continue
	read -r words
	printf "F 4\\n%s\\nevil" "$S/planted"
	printf "R %s 0 0 0 0\\n" "\$seq"
done
EVIL
	chmod +x "$S/evil"
	run --separate-stderr "$CPMAP" -S 1/bad --transport "$S/evil" \
		--remote-agent sh --host-timeout 1s --return '{}.out' --json echo ::: a
	[ ! -e "$S/planted" ]
	[ "$status" -eq 1 ]
	same "kind" "$(jq -r .error.kind <<<"$output")" host-lost
	grep -q "host bad: the agent sent back a file it was not asked for ($S/planted): dropping its session" <<<"$stderr"
}
