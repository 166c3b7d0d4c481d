/*
 * agent_script.c - the agent that remote.c sends to each slot session on a
 * host: a POSIX sh script, so that nothing but sh (and dd or head) need be
 * installed there.  It reads requests on stdin and answers on stdout:
 *
 *   T seq inlen\n<command line>\n<stdin bytes>       run a task
 *   K seq signal\n                                    signal it
 *   R seq exit signal outlen errlen\n<stdout><stderr> its end
 *
 * The command line is one line: its newlines (only ever inside single
 * quotes) come as '"$CPMAP_NL"', so that the builtin read takes it and no
 * process is started to read it.  Every process started per task costs
 * about a millisecond on a small machine: a task here costs a subshell,
 * setsid and sh, wc and cat.
 *
 * It first says "cpmap-agent VERSION".  A task runs under setsid where
 * there is one (util-linux), else under coreutils' `timeout 0`, which also
 * makes a process group and passes a signal on to all of it, so that a
 * signal reaches everything the task started; its
 * output is kept in a private temporary directory and sent whole when it
 * ends.  EOF on stdin (cpmap or its connection went away) kills the
 * running task and ends the agent.  A task killed by a signal that cpmap
 * asked for is reported as signalled; sh cannot tell other deaths by
 * signal from an exit status above 128.
 */
#include "cpmap.h"

const char agent_script[] =
    "umask 077\n"
    "d=$(mktemp -d \"${TMPDIR:-/tmp}/cpmap-agent.XXXXXX\" 2>/dev/null) || { "
    "d=${TMPDIR:-/tmp}/cpmap-agent.$$; mkdir \"$d\" || exit 1; }\n"
    "N='\n"
    "'\n"
    "if command -v setsid >/dev/null 2>&1; then ss=setsid; elif timeout 0 sh "
    "-c : 2>/dev/null; then ss=\"timeout 0\"; else ss=; fi\n"
    "if head -c 1 </dev/null >/dev/null 2>&1; then take() { head -c \"$1\"; }; "
    "else take() { dd bs=1 count=\"$1\" 2>/dev/null; }; fi\n"
    "runner= seq=\n"
    "stop() {\n"
    "\t[ -s \"$d/pid\" ] || return 0\n"
    "\tread -r p <\"$d/pid\"\n"
    "\tkill \"-$1\" \"-$p\" 2>/dev/null || kill \"-$1\" \"$p\" 2>/dev/null\n"
    "}\n"
    "bye() { stop KILL; [ -n \"$runner\" ] && wait \"$runner\" 2>/dev/null; rm "
    "-rf \"$d\"; exit 0; }\n"
    "trap bye HUP TERM INT\n"
    "run() {\n"
    "\tCPMAP_NL=$N $ss sh -c \"$1\" <\"$3\" >\"$d/out\" 2>\"$d/err\" &\n"
    "\techo $! >\"$d/pid\"\n"
    "\t[ -s \"$d/sig\" ] && { read -r s <\"$d/sig\"; stop \"$s\"; }\n"
    "\twait $!\n"
    "\tst=$?\n"
    "\tsig=0\n"
    "\tif [ -s \"$d/sig\" ] && [ \"$st\" -gt 128 ]; then sig=$((st - 128)); "
    "fi\n"
    "\tq=$2\n"
    "\tcd \"$d\" && set -- $(wc -c out err)\n"
    "\tprintf 'R %s %s %s %s %s\\n' \"$q\" \"$st\" \"$sig\" \"$1\" \"$3\"\n"
    "\tcat out err\n"
    "}\n"
    "echo \"cpmap-agent 1\"\n"
    "while read -r op a b; do\n"
    "\tcase $op in\n"
    "\tT)\n"
    "\t\t[ -n \"$runner\" ] && wait \"$runner\"\n"
    "\t\t: >\"$d/pid\"\n"
    "\t\t: >\"$d/sig\"\n"
    "\t\t: >\"$d/out\"\n"
    "\t\t: >\"$d/err\"\n"
    "\t\tseq=$a\n"
    "\t\tIFS= read -r cmd\n"
    "\t\tif [ \"$b\" -gt 0 ]; then take \"$b\" >\"$d/in\"; i=$d/in; else "
    "i=/dev/null; fi\n"
    "\t\trun \"$cmd\" \"$a\" \"$i\" 2>/dev/null &\n"
    "\t\trunner=$!\n"
    "\t\t;;\n"
    "\tK)\n"
    "\t\tcase $b in *[!0-9]*|'') ;; *) if [ \"$a\" = \"$seq\" ]; then echo "
    "\"$b\" >\"$d/sig\"; stop \"$b\"; fi;; esac\n"
    "\t\t;;\n"
    "\tesac\n"
    "done\n"
    "bye\n";
