#!/usr/bin/env bats
# completion.bats - the bash, zsh and fish completions (contrib/completions,
# written by cpmap --completion SHELL at build time): each shell's own
# completion machinery is run on a command line, and what it offers is
# checked: options, the values of --halt and --on-bad-input, file names
# for -a, commands after the options, the command's own completion after
# it.  And they cannot drift from --help: every script offers exactly the
# options --help lists.
#
# A shell that is not installed skips its tests, saying so (bootstrap
# installs bash-completion, zsh and fish, so CI runs them all).

load helpers
bats_require_minimum_version 1.5.0

setup() {
	setup_scratch
	COMPLETIONS=${COMPLETIONS:-$(dirname "$CPMAP")/../contrib/completions}
	[ -f "$COMPLETIONS/cpmap.bash" ] || {
		echo "no completions in $COMPLETIONS (make builds them)" >&2
		return 1
	}
	# The directory the completions are tried in, and cpmap on PATH (fish
	# loads a command's completions only when the command exists).
	WORK=$SCRATCH/work
	mkdir -p "$WORK/subdir" "$SCRATCH/bin" "$SCRATCH/home"
	touch "$WORK/alpha.txt" "$WORK/beta.txt" "$WORK/other"
	ln -s "$CPMAP" "$SCRATCH/bin/cpmap"
}

needs() {
	command -v "$1" >/dev/null || skip "$1 is not installed (bootstrap installs it)"
}

# help_options: every option cpmap --help names (as man.bats reads them).
help_options() {
	"$CPMAP" --help | grep -E '^ +-' | sed -E 's/^ +//; s/  .*//' |
		grep -oE -- '(^|[ ,])--?[A-Za-z0-9][A-Za-z0-9-]*' |
		tr -d ' ,' | sort -u
}

# bash_complete LINE: what cpmap's bash completion puts in COMPREPLY for
# LINE (the cursor at its end), one per line.  COMP_WORDS is split as
# readline does (checked against an interactive bash): at blanks, and each
# run of = or : (COMP_WORDBREAKS) is a word of its own.  Without
# bash-completion when $NO_BASH_COMPLETION is set.
bash_complete() {
	(cd "$WORK" && PATH="$SCRATCH/bin:$PATH" bash --norc --noprofile -c '
		line=$1 script=$2
		if [ -z "${NO_BASH_COMPLETION-}" ] &&
			[ -f /usr/share/bash-completion/bash_completion ]; then
			. /usr/share/bash-completion/bash_completion
		fi
		. "$script"
		COMP_LINE=$line COMP_POINT=${#line}
		COMP_WORDS=() w="" class=""
		for ((k = 0; k < ${#line}; k++)); do
			c=${line:k:1}
			case $c in
			[[:space:]]) new=space ;;
			[=:]) new=break ;;
			*) new=word ;;
			esac
			if [ "$new" != "$class" ] && [ -n "$w" ]; then
				COMP_WORDS+=("$w") w=""
			fi
			[ "$new" = space ] || w+=$c
			class=$new
		done
		COMP_WORDS+=("$w")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_cpmap cpmap "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
		printf "%s\n" "${COMPREPLY[@]}"
	' bash "$1" "$COMPLETIONS/cpmap.bash")
}

# The zsh harness: an interactive zsh on a pseudo-terminal (zpty) with
# compinit and the completions on $fpath, a line typed and TAB pressed;
# compadd is wrapped to print every match it adds.
zsh_harness() {
	cat <<-'EOF'
		zmodload zsh/zpty || exit 3
		zpty z zsh -f -i
		zpty -w z "fpath=(${(q)1} \$fpath)"
		zpty -w z 'PS1=""; RPROMPT=""'
		zpty -w z "autoload -Uz compinit && compinit -u -d ${(q)2}/zcompdump"
		zpty -w z 'zstyle ":completion:*" list-grouped false'
		zpty -w z 'zstyle ":completion:*" insert-tab false'
		zpty -w z 'bindkey "^I" complete-word'
		zpty -w z '_t_start() { print -r -- "<""<START>>" }'
		zpty -w z '_t_end() { print -r -- "<""<END>>"; exit }'
		zpty -w z 'compprefuncs=(_t_start); comppostfuncs=(_t_end)'
		zpty -w z 'compadd() {
			if [[ ${(j: :)@[1,(i)(-|--)]} == *-(O|A|D)* ]]; then
				builtin compadd "$@"; return
			fi
			local -a hits; local h
			builtin compadd -A hits "$@"
			for h in $hits; do print -r -- "MATCH:$h"; done
			builtin compadd "$@"
		}'
		zpty -w z 'print -r -- "<""<READY>>"'
		local line started=0
		while zpty -r z line; do [[ $line == *'<<READY>>'* ]] && break; done
		zpty -w -n z "$3"$'\t'
		while zpty -r z line; do
			line=${line//$'\r'/}; line=${line%$'\n'}
			[[ $line == *'<<START>>'* ]] && { started=1; continue }
			[[ $line == *'<<END>>'* ]] && break
			(( started )) && [[ $line == MATCH:* ]] && print -r -- ${line#MATCH:}
		done
		zpty -d z
	EOF
}

# zsh_complete LINE: the matches zsh's completion offers for LINE.
zsh_complete() {
	zsh_harness >"$SCRATCH/harness.zsh"
	(cd "$WORK" && PATH="$SCRATCH/bin:$PATH" HOME=$SCRATCH/home \
		timeout 30 zsh -f "$SCRATCH/harness.zsh" "$COMPLETIONS" \
		"$SCRATCH" "$1") </dev/null | sort -u
}

# fish_complete LINE: fish's completions for LINE (candidate, a tab, the
# description), with the completions found on fish_complete_path as an
# installed cpmap.fish is.
fish_complete() {
	(cd "$WORK" && PATH="$SCRATCH/bin:$PATH" HOME=$SCRATCH/home \
		XDG_CONFIG_HOME=$SCRATCH/home/.config \
		XDG_DATA_HOME=$SCRATCH/home/.local/share \
		timeout 30 fish -c 'set -p fish_complete_path $argv[1]
			complete -C $argv[2]' "$COMPLETIONS" "$1") </dev/null
}

# has OUTPUT WORD...: each WORD is a line of OUTPUT; lacks: none is.
has() {
	local out=$1 w
	shift
	for w; do
		grep -qxF -- "$w" <<<"$out" || {
			printf 'missing %s in:\n%s\n' "$w" "$out" >&2
			return 1
		}
	done
}
lacks() {
	local out=$1 w
	shift
	for w; do
		! grep -qxF -- "$w" <<<"$out" || {
			printf 'unexpected %s in:\n%s\n' "$w" "$out" >&2
			return 1
		}
	done
}

HALT_WORDS='never soon,fail=1 soon,success=1 soon,done=1 now,fail=1 now,success=1 now,done=1'

@test "the built scripts are what cpmap --completion writes" {
	local shell file
	for shell in bash zsh fish; do
		case $shell in
		bash) file=cpmap.bash ;;
		zsh) file=_cpmap ;;
		fish) file=cpmap.fish ;;
		esac
		"$CPMAP" --completion "$shell" >"$SCRATCH/$file"
		cmp "$SCRATCH/$file" "$COMPLETIONS/$file"
	done
	run --separate-stderr "$CPMAP" --completion tcsh
	assert_failure 255
	assert_equal "$stderr" "cpmap: --completion: 'tcsh': say bash, zsh or fish (see cpmap --help)"
}

@test "every value a completion offers is one cpmap accepts" {
	local w
	for w in $HALT_WORDS; do
		"$CPMAP" --halt "$w" --dry-run true ::: x >/dev/null
	done
	for w in record skip abort; do
		"$CPMAP" --on-bad-input "$w" --dry-run true ::: x >/dev/null
	done
	run --separate-stderr "$CPMAP" --on-bad-input maybe true ::: x
	assert_failure 255
	assert_equal "$stderr" "cpmap: --on-bad-input: 'maybe': say record, skip or abort (see cpmap --help)"
	run --separate-stderr "$CPMAP" --remote-agent perl true ::: x
	assert_equal "$stderr" "cpmap: --remote-agent: 'perl': say auto or sh (see cpmap --help)"
}

# ---- bash ------------------------------------------------------------------

@test "bash: the options offered are exactly those of --help" {
	needs bash
	run bash_complete 'cpmap -'
	assert_success
	assert_equal "$(sort -u <<<"$output")" "$(help_options)"
	# After the command, its options are not cpmap's.
	run bash_complete 'cpmap -j 2 true --ha'
	lacks "$output" --halt
}

@test "bash: option values: --halt policies, --on-bad-input words, files" {
	needs bash
	run bash_complete 'cpmap --halt '
	has "$output" $HALT_WORDS
	[ "${#lines[@]}" -eq 7 ]
	run bash_complete 'cpmap -k --halt now'
	assert_equal "$output" $'now,fail=1\nnow,success=1\nnow,done=1'
	# --halt=now: bash replaces only what follows the =.
	run bash_complete 'cpmap --halt=now,s'
	assert_output 'now,success=1'
	run bash_complete 'cpmap --on-bad-input '
	assert_equal "$(sort <<<"$output")" $'abort\nrecord\nskip'
	run bash_complete 'cpmap --on-bad-input s'
	assert_output skip
	run bash_complete 'cpmap -a '
	has "$output" alpha.txt beta.txt other subdir
	run bash_complete 'cpmap -0 -a al'
	assert_output alpha.txt
	run bash_complete 'cpmap --arg-file=b'
	assert_output beta.txt
	run bash_complete 'cpmap -ka b'
	assert_output beta.txt
	run bash_complete 'cpmap --results s'
	assert_output subdir
	run bash_complete 'cpmap --env PAT'
	assert_output PATH
}

@test "bash: the command word, then the command's own completion" {
	needs bash
	run bash_complete 'cpmap -j 4 --halt never ech'
	has "$output" echo
	lacks "$output" alpha.txt
	run bash_complete 'cpmap -- ech'
	has "$output" echo
	# --header takes a next word of : or a number as its value, as cpmap.
	run bash_complete 'cpmap --header : ech'
	has "$output" echo
	run bash_complete 'cpmap --header 1 echo ::: al'
	assert_output alpha.txt
	# Inputs after ::: and :::: are file names.
	run bash_complete 'cpmap wc -l ::: al'
	assert_output alpha.txt
	run bash_complete 'cpmap wc -l :::: b'
	assert_output beta.txt
	# The command's arguments: its own completion (bash-completion's
	# _command_offset), else file names.
	[ -f /usr/share/bash-completion/bash_completion ] ||
		skip "bash-completion is not installed (bootstrap installs it)"
	NO_BASH_COMPLETION=1 run bash_complete 'cpmap cat al'
	assert_output alpha.txt
	run bash_complete 'cpmap -j 2 cpmap --on-bad-input '
	assert_equal "$(sort <<<"$output")" $'abort\nrecord\nskip'
}

# bash_readline LINE...: each LINE typed into an interactive bash on a
# pseudo-terminal, TAB pressed, then Enter; cpmap there is a function that
# prints the words it got, so what readline made of each line comes out.
bash_readline() {
	(cd "$WORK" && PATH="$SCRATCH/bin:$PATH" HOME=$SCRATCH/home \
		timeout 30 python3 - "$COMPLETIONS/cpmap.bash" "$@" <<-'EOF'
			import os, pty, select, sys
			script, lines = sys.argv[1], sys.argv[2:]
			pid, fd = pty.fork()
			if pid == 0:
			    os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])
			got = b""
			def until(mark):
			    global got
			    while mark not in got:
			        select.select([fd], [], [])
			        got += os.read(fd, 4096)
			    out, got = got.split(mark, 1)
			    return out
			# The marks are split where typed, so the echo of the
			# typing cannot be taken for them.
			os.write(fd, b"PS1=; source '%s'; cpmap() { echo \"G\"\"OT[$*]\"; }; "
			         b"echo RE\"\"ADY\n" % script.encode())
			until(b"READY\r\n")
			for line in lines:
			    os.write(fd, line.encode() + b"\t\n")
			    until(b"GOT[")
			    print(until(b"]").decode())
			os.write(fd, b"exit\n")
			os.waitpid(pid, 0)
		EOF
	)
}

@test "bash: readline itself completes with the script (an interactive bash)" {
	needs bash
	needs python3
	run bash_readline 'cpmap --ha' 'cpmap --halt=now,s' 'cpmap -k --on-bad-input sk' \
		'cpmap -a alp' 'cpmap -j 2 echo ::: alp' 'cpmap --header : echo :::: bet'
	assert_success
	assert_equal "$output" "--halt
--halt=now,success=1
-k --on-bad-input skip
-a alpha.txt
-j 2 echo ::: alpha.txt
--header : echo :::: beta.txt"
}

# ---- zsh -------------------------------------------------------------------

@test "zsh: the options offered are exactly those of --help" {
	needs zsh
	run zsh_complete 'cpmap -'
	assert_success
	# _arguments -S offers -- (the end of the options) too.
	assert_equal "$(grep -vxE -- '-|--' <<<"$output")" "$(help_options)"
	run zsh_complete 'cpmap -j 2 true --ha'
	lacks "$output" --halt
}

@test "zsh: option values: --halt policies, --on-bad-input words, files" {
	needs zsh
	run zsh_complete 'cpmap --halt '
	assert_equal "$output" "$(tr ' ' '\n' <<<"$HALT_WORDS" | sort)"
	run zsh_complete 'cpmap --halt=now'
	assert_equal "$output" $'now,done=1\nnow,fail=1\nnow,success=1'
	run zsh_complete 'cpmap --on-bad-input '
	assert_equal "$output" $'abort\nrecord\nskip'
	run zsh_complete 'cpmap -a '
	has "$output" alpha.txt beta.txt other
	run zsh_complete 'cpmap -k -a al'
	assert_output alpha.txt
	run zsh_complete 'cpmap --env PAT'
	assert_output PATH
}

@test "zsh: the command word, then the command's own completion" {
	needs zsh
	run zsh_complete 'cpmap -j 4 --halt never ech'
	has "$output" echo
	lacks "$output" alpha.txt
	run zsh_complete 'cpmap wc -l ::: al'
	assert_output alpha.txt
	run zsh_complete 'cpmap --header : ech'
	has "$output" echo
	run zsh_complete 'cpmap --header 1 echo ::: al'
	assert_output alpha.txt
	# cpmap's own completion for a cpmap that cpmap runs.
	run zsh_complete 'cpmap -j 2 cpmap --on-bad-input '
	assert_equal "$output" $'abort\nrecord\nskip'
}

# ---- fish ------------------------------------------------------------------

@test "fish: the options offered are exactly those of --help" {
	needs fish
	run fish_complete 'cpmap -'
	assert_success
	assert_equal "$(cut -f1 <<<"$output" | sort -u)" "$(help_options)"
	run fish_complete 'cpmap --ha'
	assert_output $'--halt\tnever, or soon|now,fail|success|done=N or =P%'
	run fish_complete 'cpmap -j 2 true --ha'
	lacks "$(cut -f1 <<<"$output")" --halt
}

@test "fish: option values: --halt policies, --on-bad-input words, files" {
	needs fish
	run fish_complete 'cpmap --halt '
	assert_equal "$(cut -f1 <<<"$output" | sort)" "$(tr ' ' '\n' <<<"$HALT_WORDS" | sort)"
	run fish_complete 'cpmap --halt=now,f'
	assert_equal "$(cut -f1 <<<"$output")" '--halt=now,fail=1'
	run fish_complete 'cpmap --on-bad-input '
	assert_equal "$(cut -f1 <<<"$output" | sort)" $'abort\nrecord\nskip'
	run fish_complete 'cpmap -a '
	has "$(cut -f1 <<<"$output")" alpha.txt beta.txt other subdir/
	run fish_complete 'cpmap -ka al'
	assert_equal "$(cut -f1 <<<"$output")" alpha.txt
	run fish_complete 'cpmap --env PAT'
	assert_equal "$(cut -f1 <<<"$output")" PATH
}

@test "fish: the command word, then the command's own completion" {
	needs fish
	run fish_complete 'cpmap -j 4 --halt never ech'
	has "$(cut -f1 <<<"$output")" echo
	lacks "$(cut -f1 <<<"$output")" alpha.txt
	run fish_complete 'cpmap wc -l ::: al'
	assert_equal "$(cut -f1 <<<"$output")" alpha.txt
	run fish_complete 'cpmap --header : ech'
	has "$(cut -f1 <<<"$output")" echo
	run fish_complete 'cpmap --header 1 echo ::: al'
	assert_equal "$(cut -f1 <<<"$output")" alpha.txt
	run fish_complete 'cpmap -j 2 cpmap --on-bad-input '
	assert_equal "$(cut -f1 <<<"$output" | sort)" $'abort\nrecord\nskip'
}
