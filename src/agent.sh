# agent.sh - the agent that remote.c sends to each slot session on a
# host: a POSIX sh script, so that nothing but sh and a few coreutils
# (head or dd, mkfifo, setsid or timeout) need be installed there.  It
# reads requests on stdin and answers on stdout (protocol 4):
#
#   V\n<exports line>\n                               the session's environment
#   P len mode\n<path>\n<len bytes>                    put a file
#   T seq inlen nret nrm slot\n<words line>\n<nret paths><nrm paths><stdin>
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
# after a T's command are one a line: nret files to send back after
# the task as F frames (one that does not exist is skipped; --return), then
# nrm files to remove after that (--cleanup), with the directories above a
# relative one that are left empty.  An E frame makes the task's result an
# error with that message; the F and E frames of a task come before its R.
#
# A T's command is one line of sh: its words, quoted.  Their newlines (only
# ever inside single quotes) come as '"$CPMAP_NL"', so that the builtin read
# takes them.  The task gets CPMAP_SEQ and CPMAP_SLOT from the T; what is the
# same for all tasks (CPMAP_HOST, --env) comes once, first, in a V: a line of
# "export NAME=WORD ...; ", before any T (a runner already started would
# not see a later one), kept in a file that the runner reads when it
# starts, and run by each task's subshell just before its exec, never by the
# agent's own shells: a variable of the user's named like one of the
# agent's (d is its directory, which it removes at the end) must not touch
# it.  The builtin read takes a byte per system call, so a request says no
# more than it must.
#
# The agent's files go in a directory of its own under TMPDIR, if the host
# sets it; else on a tmpfs ($XDG_RUNTIME_DIR, /dev/shm) with 1 GiB free,
# else in /tmp.  Each task truncates and creates small files, which costs
# 0.3-0.6 ms each on a disk filesystem (ext4 mounted with discard,
# measured) and 20 us on a tmpfs; a task's stdin and output are held there
# until sent, so a small tmpfs (a container's /dev/shm is 64 MiB) is
# passed over.
#
# Every process started per task costs a millisecond or more on a small
# machine, so a task here starts one: the command itself, and nothing else
# when its output is small.  The work is split in two:
#   - this main loop reads the requests and writes the files they bring,
#     and signals the running task (K) at once, even while it runs;
#   - a runner, a long-lived sh started under setsid (util-linux; else
#     coreutils' `timeout 0`, which also makes a process group and passes a
#     signal on to all of it), runs the tasks one at a time, each as a
#     command of its own (one fork and exec; no setsid, no sh -c), and
#     answers them.
# The runner is the leader of the tasks' process group, so that a signal
# to the group reaches everything a task started.  It catches the signals
# a K may send, so that it outlives them; SIGKILL kills it with the task,
# and the main loop then answers the task and starts a new runner for the
# next one.  Who answers a task is settled by a file created with
# noclobber (O_EXCL): the runner takes it before it answers, the main loop
# before it sends SIGKILL; the loser does nothing.  The main loop hands the
# runner one task at a time (a line on a FIFO; the task itself in a file)
# and waits for the runner's word (a line on another FIFO) before the next
# request that needs it idle: so a signal meant for one task never reaches
# the next, and one file each serves for the task, its stdin and its output.
# What a task leaves running in the background stays in the group until
# the group is killed (a SIGKILL, or EOF).
#
# A task is a background subshell that execs the command (one fork, one
# exec: argv as given, never a builtin).  Output goes to files, and the
# runner learns their sizes from its own file offsets (/proc/self/fdinfo,
# Linux): up to 2 KiB of output is read with the builtin read and checked
# against that size (a NUL, or a file written through another descriptor,
# does not match), else (and without /proc) wc and cat send it.
#
# It first says "cpmap-agent VERSION".  EOF on stdin (cpmap or its
# connection went away) kills the task's group and ends the agent.  A task
# killed by a signal that cpmap asked for is reported as signalled; sh
# cannot tell other deaths by signal from an exit status above 128.  With
# neither setsid nor timeout the runner shares the agent's group, and a K
# signals the task's process only.
umask 077
d=
for t in "${TMPDIR:-}" "${XDG_RUNTIME_DIR:-}" /dev/shm /tmp; do
	[ -n "$t" ] && [ -d "$t" ] && [ -w "$t" ] || continue
	case $t in
	"${TMPDIR:-}" | /tmp) ;;
	*) df -Pk "$t" 2>/dev/null | { read -r head && read -r fs size used free rest && [ "$free" -ge 1048576 ]; } 2>/dev/null || continue ;;
	esac
	d=$(mktemp -d "$t/cpmap-agent.XXXXXX" 2>/dev/null) || { d=$t/cpmap-agent.$$; mkdir "$d" 2>/dev/null; } || d=
	[ -n "$d" ] && break
done
[ -n "$d" ] || exit 1
N='
'
if command -v setsid >/dev/null 2>&1; then ss=setsid g=1; elif timeout 0 sh -c : 2>/dev/null; then ss="timeout 0" g=1; else ss= g=; fi
if head -c 1 </dev/null >/dev/null 2>&1; then take() { head -c "$1"; }; else take() { dd bs=1 count="$1" 2>/dev/null; }; fi
# What the main loop and the runner share: a task's files (its returns
# and cleanup, and an E frame), and its R frame with sizes from wc.
F='
files() {
	rets= rms= w=
	[ -z "$f" ] || IFS= read -r w <"$d/w"
	if [ "$r$m" != 00 ]; then
		{
			n=$r
			while [ "$n" -gt 0 ]; do IFS= read -r p; rets=$rets$p$N; n=$((n - 1)); done
			n=$m
			while [ "$n" -gt 0 ]; do IFS= read -r p; rms=$rms$p$N; n=$((n - 1)); done
		} <"$d/f"
	fi
	if [ -n "$rets$rms" ]; then
		IFS=$N
		set -f
		if [ -z "$f" ]; then
			for p in $rets; do
				[ -e "$p" ] || continue
				if [ -f "$p" ] && cat -- "$p" >|"$d/ret" 2>/dev/null; then
					n=$(wc -c <"$d/ret")
					printf "F %s\n%s\n" $((n)) "$p"
					cat "$d/ret"
				else
					w="$w${w:+; }cannot return $p: not a readable file"
				fi
			done
		fi
		[ -n "$rms" ] && rm -f -- $rms
		for p in $rms; do
			case $p in /*) ;; */*) rmdir -p -- "${p%/*}" 2>/dev/null ;; esac
		done
		IFS=" 	$N"
		set +f
	fi
	if [ -n "$w" ]; then
		printf "%s\n" "$w" >|"$d/why"
		n=$(wc -c <"$d/why")
		printf "E %s\n" $((n))
		cat "$d/why"
	fi
}
slow() {
	set -- "$1" "$2" "$3" $(cd "$d" && wc -c o e)
	printf "R %s %s %s %s %s\n" "$1" "$2" "$3" "$4" "$6"
	cat "$d/o" "$d/e"
}
'
eval "$F"
# The runner: sh -c RUNNER sh DIR GROUPED ($0 is sh, as in the message
# sh gives for a command not found), its stderr /dev/null.
R='
d=$1 g=$2 N="
"
CPMAP_NL=$N
exec 3<"$d/q" 4>"$d/z"
en=
[ ! -s "$d/env" ] || IFS= read -r en <"$d/env"
set -C
trap "y=1" HUP TERM USR1 USR2 ALRM
exec 5>|"$d/v"
if printf x >&5 && read -r x fd <"/proc/self/fdinfo/5" && [ "$fd" = 1 ]; then fd=1; else fd=; fi 2>/dev/null
slurp() {
	v= l=
	if [ "$2" = 0 ]; then [ ! -s "$d/$1" ]; return; fi
	while IFS= read -r l; do v=$v$l$N; done <"$d/$1"
	v=$v$l
	[ "${#v}" = "$2" ]
}
while :; do
	y=
	if ! IFS= read -r x <&3; then [ -n "$y" ] && continue; exit 0; fi
	. "$d/j"
	exec 5>|"$d/o" 6>|"$d/e"
	st=0 sig=0
	if [ -n "$f" ]; then
		:
	elif [ -e "$d/k$q" ]; then
		read -r sig <"$d/k$q"
		st=$((128 + sig))
	else
		# In the background, not as a plain command: sh would write
		# "Terminated" into its stderr.  The session's exports, then
		# exec: never a builtin or a function of the runner.  A K that
		# came as it started is passed on; wait again if the signal of a
		# K cut the wait short.
		(eval "$en" && exec "$@") <"$s" >&5 2>&6 3<&- 4>&- 5>&- 6>&- &
		p=$!
		[ -n "$g" ] || echo "$p" >|"$d/p"
		if [ -e "$d/k$q" ] && read -r x <"$d/k$q"; then
			if [ -z "$g" ]; then kill "-$x" "$p"; elif [ "$x" != 9 ]; then kill "-$x" 0; fi
		fi
		while :; do
			y=
			wait "$p"
			st=$?
			[ -n "$y" ] && kill -0 "$p" 2>/dev/null || break
		done
	fi
	if [ -e "$d/k$q" ]; then
		[ "$st" -gt 128 ] && sig=$((st - 128))
		rm -f "$d/k$q"
	fi
	[ -z "$g" ] || true >"$d/l$q" || kill -STOP $$
	if [ -n "$f" ] || [ "$r$m" != 00 ]; then
		trap "" HUP TERM USR1 USR2 ALRM
		files
		trap "y=1" HUP TERM USR1 USR2 ALRM
	fi
	n1=0 n2=0
	[ -z "$fd" ] || [ ! -s "$d/o" ] || read -r x n1 <"/proc/self/fdinfo/5" || fd=
	[ -z "$fd" ] || [ ! -s "$d/e" ] || read -r x n2 <"/proc/self/fdinfo/6" || fd=
	if [ -n "$fd" ] && [ "$n1" -le 2048 ] && [ "$n2" -le 2048 ] && slurp o "$n1" && o=$v && slurp e "$n2"; then
		printf "R %s %s %s %s %s\n%s%s" "$q" "$st" "$sig" "$n1" "$n2" "$o" "$v"
	else
		trap "" HUP TERM USR1 USR2 ALRM
		slow "$q" "$st" "$sig"
		trap "y=1" HUP TERM USR1 USR2 ALRM
	fi
	echo >&4
done
'
# The main loop: r is the runner's pid (its group's id), b the task it
# runs (its word not yet read), k the tasks since the last sweep of the
# settled claims (l*) and K marks (k*).
r= b= k=0
start() {
	$ss sh -c "$F$R" sh "$d" "$g" </dev/null 2>/dev/null &
	r=$!
	exec 3>"$d/q" 4<"$d/z"
}
idle() {
	[ -n "$b" ] || return 0
	read -r x <&4 || bye
	b=
}
bye() {
	if [ -n "$r" ]; then
		if [ -n "$g" ]; then
			kill -KILL "-$r" 2>/dev/null
		else
			[ -s "$d/p" ] && read -r x <"$d/p" && kill -KILL "$x" 2>/dev/null
			kill -KILL "$r" 2>/dev/null
		fi
		wait "$r" 2>/dev/null
	fi
	rm -rf "$d"
	exit 0
}
trap bye HUP TERM INT
mkfifo "$d/q" "$d/z" || { rm -rf "$d"; exit 1; }
echo "cpmap-agent 4"
fail=
while read -r op a b0 c e sl; do
	case $op in
	V)
		IFS= read -r en
		printf '%s\n' "$en" >"$d/env"
		;;
	P)
		idle
		IFS= read -r p
		case $p in ?*/*) mkdir -p -- "${p%/*}" 2>/dev/null ;; esac
		if true >"$p" 2>/dev/null; then
			take "$a" >"$p"
			chmod "$b0" "$p" 2>/dev/null
		else
			take "$a" >/dev/null
			fail="$fail${fail:+; }cannot write $p on the host"
		fi
		;;
	T)
		idle
		[ -n "$r" ] || start
		k=$((k + 1))
		if [ "$k" -ge 256 ]; then rm -f "$d"/l* "$d"/k*; k=0; fi
		IFS= read -r wd
		n=$((${c:-0} + ${e:-0}))
		if [ "$n" -gt 0 ]; then
			while [ "$n" -gt 0 ]; do IFS= read -r p; printf '%s\n' "$p"; n=$((n - 1)); done >"$d/f"
		fi
		s=/dev/null
		if [ "$b0" -gt 0 ]; then take "$b0" >"$d/in"; s='$d/in'; fi
		f=
		if [ -n "$fail" ]; then printf '%s\n' "$fail" >"$d/w"; f=1; fi
		# o and e emptied, should it be killed before the runner starts it.
		printf 'q=%s s=%s r=%s m=%s f=%s\nexport CPMAP_SEQ=%s PARALLEL_SEQ=%s CPMAP_SLOT=%s PARALLEL_JOBSLOT=%s\nset -- %s\n' "$a" "$s" "${c:-0}" "${e:-0}" "$f" "$a" "$a" "${sl:-0}" "${sl:-0}" "$wd" >"$d/j" 5>"$d/o" 6>"$d/e"
		[ -n "$g" ] || : >"$d/p"
		echo >&3
		b=$a br=${c:-0} bm=${e:-0} bf=$f
		fail=
		;;
	K)
		case $b0 in *[!0-9]* | '') continue ;; esac
		[ -n "$b" ] && [ "$a" = "$b" ] || continue
		echo "$b0" >"$d/k$a"
		if [ -z "$g" ]; then
			[ -s "$d/p" ] && read -r x <"$d/p" && kill "-$b0" "$x" 2>/dev/null
		elif [ "$b0" != 9 ]; then
			kill "-$b0" "-$r" 2>/dev/null
		elif (set -C && : >"$d/l$a") 2>/dev/null; then
			# The runner has not answered it, and now will not.
			kill -KILL "-$r" 2>/dev/null
			wait "$r" 2>/dev/null
			exec 3>&- 4<&-
			r=$br m=$bm f=$bf
			if [ -n "$f" ] || [ "$r$m" != 00 ]; then files; fi
			r= b=
			slow "$a" 137 9
		fi
		;;
	esac
done
bye
