# remote-helpers.bash - hosts for the remote-worker suite: private sshd
# "hosts" on loopback (127.0.0.1, .2, .3: one sshd per address, same port,
# key-only login, hermetic shells) and the fake transport's per-host
# controls.  Load after helpers.bash.
#
#   setup_file:    sshbed_init; sshbed_start_host h1 127.0.0.1; ...
#   tests:         cpmap --transport "ssh -F $SSHBED_DIR/ssh_config" -S h1 ...
#   teardown_file: sshbed_stop_all
#
# Each host's sessions get TMPDIR=$SSHBED_DIR/NAME/tmp (sshd SetEnv), so the
# agents' temporary directories land where a test can see that none is left;
# with SSHBED_NO_TMPDIR=1 (bench/remote-bench) they get none, as a plain ssh
# login has none.
# Needs openssh-server, openssh-client and iproute2 (ss).

sshbed_init() {            # sshbed_init [DIR]  (keep DIR short: ControlPath limit)
	SSHBED_DIR=${1:-$(mktemp -d /tmp/sshbed.XXXXXX)} || return 1
	export SSHBED_DIR
	mkdir -p "$SSHBED_DIR/cm" || return 1
	chmod 700 "$SSHBED_DIR/cm"
	# The privilege-separation dir is compiled into sshd: it must exist,
	# root-owned, not group/world-writable.
	[ -d /run/sshd ] || mkdir -p -m 0755 /run/sshd 2>/dev/null
	ssh-keygen -q -t ed25519 -N '' -C sshbed-host \
		-f "$SSHBED_DIR/host_ed25519_key" </dev/null || return 1
	ssh-keygen -q -t ed25519 -N '' -C sshbed-client \
		-f "$SSHBED_DIR/id_ed25519" </dev/null || return 1
	install -m 600 "$SSHBED_DIR/id_ed25519.pub" "$SSHBED_DIR/authorized_keys"
	SSHBED_PORT=${SSHBED_PORT:-$(sshbed_free_port)} || return 1
	export SSHBED_PORT
	echo "$SSHBED_PORT" >"$SSHBED_DIR/port"
	: >"$SSHBED_DIR/ssh_config"
}

sshbed_free_port() {       # a port with no TCP listener on any address
	local p i
	for i in $(seq 50); do
		p=$((20000 + RANDOM % 10000))
		[ -z "$(ss -Hltn "sport = :$p")" ] && { echo "$p"; return 0; }
	done
	return 1
}

# sshbed_start_host NAME ADDR [LINE...]   e.g. h2 127.0.0.2
# Each LINE is added to the host's sshd_config (say, a ForceCommand).
sshbed_start_host() {
	local name=$1 addr=$2 d="$SSHBED_DIR/$1" i
	shift 2
	: "${SSHBED_PORT:=$(cat "$SSHBED_DIR/port")}"
	mkdir -p "$d/tmp"
	chmod 1777 "$d/tmp"
	local tmpenv=" TMPDIR=$d/tmp"
	[ -z "${SSHBED_NO_TMPDIR:-}" ] || tmpenv=
	cat >"$d/sshd_config" <<CFG
ListenAddress $addr:$SSHBED_PORT
HostKey $SSHBED_DIR/host_ed25519_key
PidFile $d/sshd.pid
AuthorizedKeysFile $SSHBED_DIR/authorized_keys
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
UseDNS no
MaxStartups 200
MaxSessions 100
LogLevel VERBOSE
SetEnv SHLVL=1$tmpenv${REMOTE_AGENT_DIR:+ PATH=$REMOTE_AGENT_DIR:/usr/local/bin:/usr/bin:/bin}
CFG
	[ $# -eq 0 ] || printf '%s\n' "$@" >>"$d/sshd_config"
	/usr/sbin/sshd -t -f "$d/sshd_config" 2>"$d/sshd.check" || {
		cat "$d/sshd.check" >&2
		return 1
	}
	# -D: $! is the listener.  Double fork + 3>&-: sshd is neither a job of
	# the test shell nor a holder of bats' fd 3.
	( /usr/sbin/sshd -D -e -f "$d/sshd_config" >"$d/sshd.log" 2>&1 </dev/null &
	  echo $! >"$d/pid" ) 3>&-
	# No event says "listening": poll the log, bounded (~5 s).
	for i in $(seq 100); do
		grep -q 'Server listening' "$d/sshd.log" 2>/dev/null && break
		kill -0 "$(cat "$d/pid")" 2>/dev/null || {
			cat "$d/sshd.log" >&2
			return 1
		}
		sleep 0.05
	done
	grep -q 'Server listening' "$d/sshd.log" || {
		cat "$d/sshd.log" >&2
		return 1
	}
	grep -qx "Host $name" "$SSHBED_DIR/ssh_config" && return 0 # restart
	cat >>"$SSHBED_DIR/ssh_config" <<CFG
Host $name
  HostName $addr
  Port $SSHBED_PORT
  User $(id -un)
  IdentityFile $SSHBED_DIR/id_ed25519
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  GlobalKnownHostsFile /dev/null
  BatchMode yes
  LogLevel ERROR
  ConnectTimeout 5
CFG
}

sshbed_descendants() {     # print PID and all of its descendants
	local c
	for c in $(ps -o pid= --ppid "$1"); do sshbed_descendants "$c"; done
	echo "$1"
}

# sshbed_children NAME: the processes under host NAME's listener (its
# connections and whatever runs in them), one pid a line.
sshbed_children() {
	local pid
	pid=$(cat "$SSHBED_DIR/$1/pid" 2>/dev/null) || return 0
	sshbed_descendants "$pid" | grep -vx "$pid"
}

# sshbed_idle NAME...: wait until no connection is left on the hosts: sshd
# notices a closed connection on its own time and no event says so, so this
# polls (bounded, ~10 s) and names what is left when it gives up.
sshbed_idle() {
	local h i left
	for i in $(seq 200); do
		left=
		for h; do
			left+=$(sshbed_children "$h")
		done
		[ -z "$left" ] && return 0
		sleep 0.05
	done
	for h; do
		for i in $(sshbed_children "$h"); do
			echo "host $h: left: $(tr '\0' ' ' <"/proc/$i/cmdline" 2>/dev/null)" >&2
		done
	done
	return 1
}

# sshbed_kill_host NAME: crash: SIGKILL the listener, its connections and
# the commands in them.  The whole tree is stopped first (until no new
# process appears), so that none of it acts on the death of another: a
# task's shell whose child was killed first could otherwise still report
# through a connection not yet killed.
sshbed_kill_host() {
	local d="$SSHBED_DIR/$1" pids= now i
	[ -f "$d/pid" ] || return 0
	for i in 1 2 3 4 5 6 7 8 9 10; do
		now=$(sshbed_descendants "$(cat "$d/pid")" | sort -n | tr '\n' ' ')
		[ "$now" = "$pids" ] && break
		pids=$now
		kill -STOP $pids 2>/dev/null
	done
	kill -KILL $pids 2>/dev/null
	kill -CONT $pids 2>/dev/null
	rm -f "$d/pid" "$d/frozen"
	true
}

sshbed_freeze_host() {     # hang: SIGSTOP the tree (sshbed_thaw_host to undo)
	local d="$SSHBED_DIR/$1"
	sshbed_descendants "$(cat "$d/pid")" >"$d/frozen"
	kill -STOP $(cat "$d/frozen") 2>/dev/null || true
}

sshbed_thaw_host() {
	local d="$SSHBED_DIR/$1"
	[ -f "$d/frozen" ] || return 0
	kill -CONT $(cat "$d/frozen") 2>/dev/null || true
	rm -f "$d/frozen"
}

sshbed_stop_all() {
	local h
	[ -n "${SSHBED_DIR:-}" ] && [ -f "$SSHBED_DIR/ssh_config" ] || return 0
	for h in $(awk '/^Host /{print $2}' "$SSHBED_DIR/ssh_config"); do
		sshbed_thaw_host "$h"
		sshbed_kill_host "$h"
	done
}

# ---- the fake transport (tests/bin/fake-transport) ---------------------
# Each "host" runs its commands as new sessions; their pgids are listed in
# $FAKE_HOSTS/HOST.pids.

# fake_groups HOST: the process groups of HOST that still have a process.
fake_groups() {
	local g
	[ -f "$FAKE_HOSTS/$1.pids" ] || return 0
	for g in $(cat "$FAKE_HOSTS/$1.pids"); do
		pgrep -g "$g" >/dev/null 2>&1 && echo "$g"
	done
	true
}

fake_signal_host() {       # fake_signal_host SIG HOST
	local g
	for g in $(fake_groups "$2"); do
		kill "-$1" -- "-$g" 2>/dev/null
	done
	true
}

# fake_kill_host HOST: crash the host.  As sshbed_kill_host: the whole tree
# (tasks run in groups of their own) is stopped first, then killed, so that
# no agent lives on a moment to report its task killed: a crashed machine
# says nothing.
fake_kill_host() {
	# shellcheck disable=SC2046
	fake_kill_groups $(fake_groups "$1")
}

# fake_kill_groups PGID...: crash those process groups and everything under
# them, stopped first and then killed, as fake_kill_host does a host.
fake_kill_groups() {
	local g p pids= now i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		now=
		for g; do
			for p in $(pgrep -g "$g"); do
				now+=" $(sshbed_descendants "$p" | tr '\n' ' ')"
			done
		done
		now=$(tr ' ' '\n' <<<"$now" | grep . | sort -un | tr '\n' ' ')
		[ "$now" = "$pids" ] && break
		pids=$now
		[ -n "$pids" ] && kill -STOP $pids 2>/dev/null
	done
	[ -n "$pids" ] || return 0
	kill -KILL $pids 2>/dev/null
	kill -CONT $pids 2>/dev/null
	true
}
fake_stop_host() { fake_signal_host STOP "$1"; }   # hang it
fake_cont_host() { fake_signal_host CONT "$1"; }   # and let it go on

# fake_gone HOST...: every process group those hosts ever started is gone.
fake_gone() {
	local h g pids=
	for h; do
		for g in $(fake_groups "$h"); do
			pids+=" $(pgrep -g "$g" | tr '\n' ' ')"
		done
	done
	[ -z "${pids// /}" ] && return 0
	gone $pids
}

# sshbed_setup_suite PREFIX [LINE_FN]: a bats setup_file's test bed: three
# hosts PREFIX1..PREFIX3 on 127.0.0.1-3, each logged in to once (a host
# that starts but refuses us is no host either).  LINE_FN NAME I, if
# given, runs first for each host and prints a line for its sshd_config
# (a ForceCommand, say), or nothing.  When anything fails, SSHBED_SKIP says
# why (the tests skip with it) and no host is left running.
sshbed_setup_suite() {
	local prefix=$1 hook=${2:-} err=$BATS_FILE_TMPDIR/sshbed.err i line
	SSHBED_SKIP=
	export SSHBED_SKIP
	if [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null ||
		! command -v ss >/dev/null; then
		SSHBED_SKIP="needs /usr/sbin/sshd, ssh and ss (openssh-server, openssh-client, iproute2)"
		return 0
	fi
	if ! sshbed_init 2>"$err"; then
		SSHBED_SKIP="sshbed_init: $(tail -n1 "$err")"
		return 0
	fi
	for i in 1 2 3; do
		line=
		[ -z "$hook" ] || line=$("$hook" "$prefix$i" "$i")
		if ! sshbed_start_host "$prefix$i" "127.0.0.$i" ${line:+"$line"} 2>"$err"; then
			SSHBED_SKIP="host $prefix$i on 127.0.0.$i:$SSHBED_PORT: $(tail -n1 "$err")"
			sshbed_stop_all
			return 0
		fi
	done
	for i in 1 2 3; do
		if ! ssh -F "$SSHBED_DIR/ssh_config" "$prefix$i" true </dev/null 2>"$err"; then
			SSHBED_SKIP="ssh $prefix$i: $(tail -n1 "$err")"
			sshbed_stop_all
			return 0
		fi
	done
}
