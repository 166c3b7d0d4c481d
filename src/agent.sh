# agent.sh - the agent that remote.c sends to each slot session on a
# host: a POSIX sh script, so that nothing but sh (and dd or head) need be
# installed there.  It reads requests on stdin and answers on stdout:
#
#   T seq inlen\n<command line>\n<stdin bytes>       run a task
#   K seq signal\n                                    signal it
#   R seq exit signal outlen errlen\n<stdout><stderr> its end
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
	CPMAP_NL=$N $ss sh -c "$1" <"$3" >"$d/out" 2>"$d/err" &
	echo $! >"$d/pid"
	[ -s "$d/sig" ] && { read -r s <"$d/sig"; stop "$s"; }
	wait $!
	st=$?
	sig=0
	if [ -s "$d/sig" ] && [ "$st" -gt 128 ]; then sig=$((st - 128)); fi
	q=$2
	cd "$d" && set -- $(wc -c out err)
	printf 'R %s %s %s %s %s\n' "$q" "$st" "$sig" "$1" "$3"
	cat out err
}
echo "cpmap-agent 1"
while read -r op a b; do
	case $op in
	T)
		[ -n "$runner" ] && wait "$runner"
		: >"$d/pid"
		: >"$d/sig"
		: >"$d/out"
		: >"$d/err"
		seq=$a
		IFS= read -r cmd
		if [ "$b" -gt 0 ]; then take "$b" >"$d/in"; i=$d/in; else i=/dev/null; fi
		run "$cmd" "$a" "$i" 2>/dev/null &
		runner=$!
		;;
	K)
		case $b in *[!0-9]*|'') ;; *) if [ "$a" = "$seq" ]; then echo "$b" >"$d/sig"; stop "$b"; fi;; esac
		;;
	esac
done
bye
