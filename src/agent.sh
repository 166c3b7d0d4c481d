# agent.sh - the agent that remote.c sends to each slot session on a
# host: a POSIX sh script, so that nothing but sh (and dd or head) need be
# installed there.  It reads requests on stdin and answers on stdout
# (protocol 2):
#
#   P len mode\n<path>\n<len bytes>                    put a file
#   T seq inlen nret nrm\n<command line>\n<nret paths><nrm paths><stdin>
#                                                     run a task
#   K seq signal\n                                    signal it
#
#   F len\n<path>\n<len bytes>                         a returned file
#   E len\n<len bytes>                                why its files failed
#   R seq exit signal outlen errlen\n<stdout><stderr> its end
#
# P writes a file (--transfer) at path, relative to the agent's directory
# (the login directory) unless absolute, making its directories, with the
# permissions mode (octal) gives; one that
# cannot be written fails the next T, which then runs nothing.  The paths
# after a T's command line are one a line: nret files to send back after
# the task as F frames (one that does not exist is skipped; --return), then
# nrm files to remove after that (--cleanup), with the directories above a
# relative one that are left empty.  An E frame makes the task's result an
# error with that message; the F and E frames of a task come before its R.
# Without files (nret, nrm 0, no P) nothing more is started per task.
#
# The command line is one line: its newlines (only ever inside single
# quotes) come as '"$CPMAP_NL"', so that the builtin read takes it and no
# process is started to read it.  Every process started per task costs
# about a millisecond on a small machine: a task here costs a subshell,
# setsid and sh, wc and cat.
#
# It first says "cpmap-agent VERSION".  A task runs under setsid where
# there is one (util-linux), else under coreutils' `timeout 0`, which also
# makes a process group and passes a signal on to all of it, so that a
# signal reaches everything the task started; its
# output is kept in a private temporary directory and sent whole when it
# ends.  EOF on stdin (cpmap or its connection went away) kills the
# running task and ends the agent.  A task killed by a signal that cpmap
# asked for is reported as signalled; sh cannot tell other deaths by
# signal from an exit status above 128.
umask 077
d=$(mktemp -d "${TMPDIR:-/tmp}/cpmap-agent.XXXXXX" 2>/dev/null) || { d=${TMPDIR:-/tmp}/cpmap-agent.$$; mkdir "$d" || exit 1; }
N='
'
if command -v setsid >/dev/null 2>&1; then ss=setsid; elif timeout 0 sh -c : 2>/dev/null; then ss="timeout 0"; else ss=; fi
if head -c 1 </dev/null >/dev/null 2>&1; then take() { head -c "$1"; }; else take() { dd bs=1 count="$1" 2>/dev/null; }; fi
runner= seq=
stop() {
	[ -s "$d/pid" ] || return 0
	read -r p <"$d/pid"
	kill "-$1" "-$p" 2>/dev/null || kill "-$1" "$p" 2>/dev/null
}
bye() { stop KILL; [ -n "$runner" ] && wait "$runner" 2>/dev/null; rm -rf "$d"; exit 0; }
trap bye HUP TERM INT
run() {
	q=$2
	w=$4
	if [ -z "$w" ]; then
		CPMAP_NL=$N $ss sh -c "$1" <"$3" >"$d/out" 2>"$d/err" &
		echo $! >"$d/pid"
		[ -s "$d/sig" ] && { read -r s <"$d/sig"; stop "$s"; }
		wait $!
		st=$?
	else
		st=0
	fi
	sig=0
	if [ -s "$d/sig" ] && [ "$st" -gt 128 ]; then sig=$((st - 128)); fi
	if [ -n "$rets$rms" ]; then
		IFS=$N
		set -f
		if [ -z "$4" ]; then
			for r in $rets; do
				[ -e "$r" ] || continue
				if [ -f "$r" ] && cat -- "$r" >"$d/ret" 2>/dev/null; then
					n=$(wc -c <"$d/ret")
					printf 'F %s\n%s\n' $((n)) "$r"
					cat "$d/ret"
				else
					w="$w${w:+; }cannot return $r: not a readable file"
				fi
			done
		fi
		[ -n "$rms" ] && rm -f -- $rms
		for r in $rms; do
			case $r in /*) ;; */*) rmdir -p -- "${r%/*}" 2>/dev/null ;; esac
		done
		IFS=" 	$N"
	fi
	if [ -n "$w" ]; then
		printf '%s\n' "$w" >"$d/why"
		n=$(wc -c <"$d/why")
		printf 'E %s\n' $((n))
		cat "$d/why"
	fi
	cd "$d" && set -- $(wc -c out err)
	printf 'R %s %s %s %s %s\n' "$q" "$st" "$sig" "$1" "$3"
	cat out err
}
echo "cpmap-agent 2"
fail=
while read -r op a b c e; do
	case $op in
	P)
		[ -n "$runner" ] && wait "$runner"
		IFS= read -r p
		case $p in ?*/*) mkdir -p -- "${p%/*}" 2>/dev/null ;; esac
		if true >"$p" 2>/dev/null; then
			take "$a" >"$p"
			chmod "$b" "$p" 2>/dev/null
		else
			take "$a" >/dev/null
			fail="$fail${fail:+; }cannot write $p on the host"
		fi
		;;
	T)
		[ -n "$runner" ] && wait "$runner"
		: >"$d/pid"
		: >"$d/sig"
		: >"$d/out"
		: >"$d/err"
		seq=$a
		IFS= read -r cmd
		rets= rms=
		n=${c:-0}
		while [ "$n" -gt 0 ]; do IFS= read -r p; rets=$rets$p$N; n=$((n - 1)); done
		n=${e:-0}
		while [ "$n" -gt 0 ]; do IFS= read -r p; rms=$rms$p$N; n=$((n - 1)); done
		if [ "$b" -gt 0 ]; then take "$b" >"$d/in"; i=$d/in; else i=/dev/null; fi
		run "$cmd" "$a" "$i" "$fail" 2>/dev/null &
		runner=$!
		fail=
		;;
	K)
		case $b in *[!0-9]*|'') ;; *) if [ "$a" = "$seq" ]; then echo "$b" >"$d/sig"; stop "$b"; fi;; esac
		;;
	esac
done
bye
