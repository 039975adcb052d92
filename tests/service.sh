#!/bin/sh
#
# tests/service.sh: `make service-check`.  The service files, installed by
# `make install`, run by the programs that run them in real life, against
# the real daemons (a stand-in QEMU between them: tests/standin):
#
#   init.d      the installed scripts, their paths pointed at this temp tree
#               by the defaults file they read (make install SYSCONFDIR=...),
#               under dash, busybox sh and bash --posix, each with
#               start-stop-daemon on PATH and with the script's fallback
#               (none on PATH): LSB exit codes, the pid file, no process left;
#   supervisord the installed program files (make install-services BINDIR=...
#               LOGDIR=... *_DAEMON_ARGS=...) included by a supervisord of
#               our own: RUNNING, restarted after SIGKILL, the log file;
#   systemd     systemd-analyze verify, and a real systemd as PID 1 of a PID
#               and mount namespace (unshare) where one can run: start,
#               ordering after virtqemud, restart after SIGKILL, reload, stop;
#   upstart     none runs here: the job files against upstart 0.6's stanza
#               grammar (tests/upstart-check.sh, and its own tests).
#
# A manager or shell that is not installed is a "skip -" line (a failure
# under CI=true, except systemd as PID 1, which needs what a container may
# not give).  Ends with "N passed, N failed" (", N skipped").
# Environment: BINDIR and SHAREDIR as make has them (the Makefile passes them).

LC_ALL=C
export LC_ALL
S=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$S/.." && pwd)
. "$S/lib.sh"
suite_tmp service
SKIPPED=0
: "${BINDIR:=/usr/local/bin}" "${SHAREDIR:=/usr/local/share/negotiator}"

skip() { # REASON: a skip; under CI=true a missing tool is a failure
	if [ "$CI" = true ] && [ "$SKIP_IS_OK" != 1 ]; then fail "$* (required under CI)"; else
		SKIPPED=$((SKIPPED + 1)); echo "skip - $*"; fi
}
# want PART: PART is in SERVICE_PARTS (default: all; for a quicker look at one)
want() { case " ${SERVICE_PARTS:-initd supervisord systemd upstart} " in *" $1 "*) ;; *) return 1 ;; esac; }
# run OUT CMD...: CMD's stdout+stderr to $T/OUT, its exit status in $rc
run() { o=$1; shift; "$@" > "$T/$o" 2>&1; rc=$?; }

# ---- the installed tree ------------------------------------------------------------------
ROOT=$T/root
(cd "$TOP" && make -s install DESTDIR="$ROOT" SYSCONFDIR="$T/etc") > "$T/install.log" 2>&1
check "make install DESTDIR=... SYSCONFDIR=...: exit 0" test $? = 0
BIN=$ROOT$BINDIR
INITD=$ROOT$SHAREDIR/init.d
mkdir -p "$T/etc/default" "$T/run" "$T/ch" "$T/g1" "$T/hc" "$T/gc" "$T/log" "$T/nossd"
printf '#!/bin/sh\necho "guest=$NEGOTIATOR_GUEST"\n' > "$T/hc/whoami-guest"
printf '#!/bin/sh\nfor a in "$@"; do printf "[%%s]\\n" "$a"; done\n' > "$T/gc/echo-args"
chmod 755 "$T/hc/whoami-guest" "$T/gc/echo-args"

# the stand-in QEMU of guest vm1: channel sockets in $T/ch, the guest's in $T/g1
"$TOP/tests/standin" --pidfile "$T/standin.pid" "$T/ch" vm1 "$T/g1" 2>> "$T/standin.log" &
wait_until test -s "$T/standin.pid"
HOST_ARGS="--channels-dir $T/ch --control-socket $T/host.sock --commands-dir $T/hc --no-policy --scan-interval 1 --no-syslog -v"
GUEST_ARGS="--control-socket $T/guest.sock --commands-dir $T/gc --no-syslog -v --host-to-guest unix:$T/g1/negotiator-host-to-guest.0 --guest-to-host unix:$T/g1/negotiator-guest-to-host.0"
HOSTC="$BIN/negotiator-host --channels-dir $T/ch --control-socket $T/host.sock"
GUESTC="$BIN/negotiator-guest --control-socket $T/guest.sock --guest-to-host unix:$T/g1/negotiator-guest-to-host.0"
calls_work() { # a call each way, through both daemons
	[ "$($HOSTC -t 5 vm1 -e 'echo-args up' 2>&1)" = "[up]" ] &&
		[ "$($GUESTC -t 5 -e whoami-guest 2>&1)" = "guest=vm1" ]
}

# daemons_of SIDE: the pids of negotiator-SIDE --daemon processes of this tree
daemons_of() {
	for d in /proc/[0-9]*; do
		[ "$(readlink "$d/exe" 2>/dev/null)" = "$BIN/negotiator-$1" ] || continue
		case $(tr '\000' ' ' < "$d/cmdline" 2>/dev/null) in *--daemon*) echo "${d#/proc/}" ;; esac
	done
}
# the_daemon SIDE PID: PID is the one negotiator-SIDE daemon running
the_daemon() { [ -n "$2" ] && [ "$(daemons_of "$1")" = "$2" ]; }
none_left() { [ -z "$(daemons_of "$1")" ]; }
# new_session PID: PID is in a session other than ours (start-stop-daemon
# --background calls setsid; the fallback's "&" does not)
sid() { set -- "$1" $(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null); echo "$5"; }
new_session() { [ -n "$(sid "$1")" ] && [ "$(sid "$1")" != "$(sid $$)" ]; }
pidfile() { cat "$T/run/negotiator-$1.pid" 2>/dev/null; }

# ---- init.d ------------------------------------------------------------------------------
# The fallback's PATH: what the scripts run, without start-stop-daemon.
for p in tr sleep rm; do ln -s "$(command -v $p)" "$T/nossd/$p"; done
defaults() { # SIDE ARGS PATHLINE: the defaults file the installed script reads
	{
		echo "# written by tests/service.sh"
		echo "DAEMON=$BIN/negotiator-$1"
		echo "DAEMON_ARGS=\"--daemon $2 --log-file $T/log/init-$1.log\""
		echo "PIDFILE=$T/run/negotiator-$1.pid"
		echo "START_WAIT=2"
		echo "STOP_TIMEOUT=5"
		echo "$3"
	} > "$T/etc/default/negotiator-$1"
}
# both ACTION: the action of both scripts at once; $T/ACTION-SIDE.out, .rc
both() {
	ps_=
	for s in host guest; do
		( $SHELL_ "$INITD/negotiator-$s" "$1" > "$T/$1-$s.out" 2>&1; echo $? > "$T/$1-$s.rc" ) &
		ps_="$ps_ $!"
	done
	wait $ps_
}
rc_is() { [ "$(cat "$T/$1-$2.rc" 2>/dev/null)" = "$3" ]; }
both_rc() { rc_is "$1" host "$2" && rc_is "$1" guest "$2"; }
said() { cat "$T/$1-host.rc" "$T/$1-guest.rc" 2>/dev/null | tr '\n' ' '; }

initd_run() { # LABEL SHELL MODE
	L="init.d, $1, $3"
	SHELL_=$2
	if [ "$3" = start-stop-daemon ]; then pathline=""; else pathline="PATH=$T/nossd"; fi
	defaults host "$HOST_ARGS" "$pathline"
	defaults guest "$GUEST_ARGS" "$pathline"
	both status
	check "$L: status before start: 3 (stopped) ($(said status))" both_rc status 3
	both start
	h=$(pidfile host) g=$(pidfile guest)
	check "$L: start: 0 ($(said start))" both_rc start 0
	check "$L: the pid files name the running daemons (host $h, guest $g)" \
		eval 'the_daemon host "$h" && the_daemon guest "$g"'
	if [ "$3" = start-stop-daemon ]; then
		check "$L: started by start-stop-daemon (in a new session)" new_session "$h"
	else
		check "$L: started by the fallback (no start-stop-daemon, no new session)" eval '! new_session "$h"'
	fi
	check "$L: calls work both ways" wait_until calls_work
	both status
	check "$L: status while running: 0 ($(said status))" both_rc status 0
	both start
	check "$L: start while running: 0, same daemons ($(said start))" \
		eval 'both_rc start 0 && the_daemon host "$h" && the_daemon guest "$g"'
	both restart
	h2=$(pidfile host) g2=$(pidfile guest)
	check "$L: restart: 0, new daemons ($(said restart); host $h -> $h2, guest $g -> $g2)" \
		eval 'both_rc restart 0 && [ "$h2" != "$h" ] && [ "$g2" != "$g" ] && the_daemon host "$h2" && the_daemon guest "$g2"'
	both force-reload
	h3=$(pidfile host) g3=$(pidfile guest)
	check "$L: force-reload: 0, new daemons ($(said force-reload))" \
		eval 'both_rc force-reload 0 && [ "$h3" != "$h2" ] && [ "$g3" != "$g2" ] && the_daemon host "$h3" && the_daemon guest "$g3"'
	mv "$T/log/init-host.log" "$T/log/init-host.log.1"
	both reload
	check "$L: reload: 0, same daemons, log file reopened ($(said reload))" \
		eval 'both_rc reload 0 && the_daemon host "$h3" && the_daemon guest "$g3" && wait_until test -f "$T/log/init-host.log"'
	check "$L: calls work after restart and reload" wait_until calls_work
	both stop
	check "$L: stop: 0, no daemon left, pid files gone ($(said stop))" \
		eval 'both_rc stop 0 && wait_until none_left host && none_left guest && [ ! -e "$T/run/negotiator-host.pid" ] && [ ! -e "$T/run/negotiator-guest.pid" ]'
	both status
	check "$L: status after stop: 3 ($(said status))" both_rc status 3
	both stop
	check "$L: stop while stopped: 0 ($(said stop))" both_rc stop 0
	both reload
	check "$L: reload while stopped: 7 ($(said reload))" both_rc reload 7
	# dead with a pid file: status 1; stop cleans up (0); then 3
	both start
	kill -9 "$(pidfile host)" "$(pidfile guest)" 2>/dev/null
	wait_until eval 'none_left host && none_left guest'
	both status
	check "$L: killed, pid file left: status 1 ($(said status))" both_rc status 1
	both stop
	both status
	check "$L: ... stop: 0 and the pid file goes, then status 3 ($(said stop); $(said status))" \
		eval 'both_rc stop 0 && both_rc status 3 && [ ! -e "$T/run/negotiator-host.pid" ]'
	# a daemon that cannot start (bad arguments) is a failed start: at once
	# where the script knows its pid (the fallback), after START_WAIT where
	# start-stop-daemon launched it
	defaults host "--no-such-option" "$pathline"
	t0=$(date +%s)
	$SHELL_ "$INITD/negotiator-host" start > "$T/bad.out" 2>&1; rc=$?
	t1=$(date +%s)
	if [ "$3" = start-stop-daemon ]; then most=3; else most=1; fi
	check "$L: a daemon that exits at once: start fails (1), no pid file, in $((t1 - t0)) s (at most $most)" \
		eval 'test $rc = 1 && grep -q "failed to start" "$T/bad.out" && [ ! -e "$T/run/negotiator-host.pid" ] && [ $((t1 - t0)) -le $most ]'
	none_left host || kill $(daemons_of host) 2>/dev/null
	none_left guest || kill $(daemons_of guest) 2>/dev/null
}

initd_shell() { # LABEL COMMAND...: the runs under one shell, when it is there
	l=$1; shift
	if ! $* -c 'exit 0' 2>/dev/null; then skip "init.d under $l: not installed"; return; fi
	initd_run "$l" "$*" start-stop-daemon
	initd_run "$l" "$*" fallback
}
if want initd; then
	command -v start-stop-daemon > /dev/null 2>&1 || skip "init.d with start-stop-daemon: none installed"
	initd_shell dash dash
	initd_shell "busybox sh" busybox sh
	initd_shell "bash --posix" bash --posix
fi

# ---- supervisord -------------------------------------------------------------------------
# The program files as installed for this tree: programs, daemon arguments
# and log directory given to make (the rest exactly as shipped)
SVC=$T/svc
(cd "$TOP" && make -s install-services SHAREDIR="$SVC" BINDIR="$BIN" LOGDIR="$T/log" \
	HOST_DAEMON_ARGS="$HOST_ARGS" GUEST_DAEMON_ARGS="$GUEST_ARGS") > "$T/install-services.log" 2>&1
check "make install-services SHAREDIR=... BINDIR=... LOGDIR=... *_DAEMON_ARGS=...: exit 0" test $? = 0

supervisord_check() {
	mkdir -p "$T/sv"
	cat > "$T/sv/supervisord.conf" <<EOF
[unix_http_server]
file=$T/sv/supervisor.sock

[supervisord]
nodaemon=true
logfile=$T/sv/supervisord.log
pidfile=$T/sv/supervisord.pid
childlogdir=$T/sv

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://$T/sv/supervisor.sock

[include]
files = $SVC/supervisord/negotiator-host.conf $SVC/supervisord/negotiator-guest.conf
EOF
	CTL="supervisorctl -c $T/sv/supervisord.conf"
	supervisord -c "$T/sv/supervisord.conf" > "$T/sv/out" 2>&1 &
	SVPID=$!
	PIDS="$PIDS $SVPID"
	running() { $CTL status "negotiator-$1" 2>/dev/null | grep -q " RUNNING "; }
	spid() { $CTL pid "negotiator-$1" 2>/dev/null; }
	check "supervisord: both programs RUNNING" eval 'wait_until running host && wait_until running guest'
	h=$(spid host) g=$(spid guest)
	check "supervisord: its pids are the daemons (host $h, guest $g)" \
		eval 'the_daemon host "$h" && the_daemon guest "$g"'
	check "supervisord: calls work both ways" wait_until calls_work
	kill -9 "$h" "$g"
	wait_until eval '[ "$(spid host)" != "$h" ] && [ "$(spid guest)" != "$g" ] && running host && running guest'
	h2=$(spid host) g2=$(spid guest)
	check "supervisord: SIGKILLed daemons are restarted (host $h -> $h2, guest $g -> $g2)" \
		eval '[ "$h2" != "$h" ] && [ "$g2" != "$g" ] && the_daemon host "$h2" && the_daemon guest "$g2"'
	check "supervisord: calls work again" wait_until calls_work
	check "supervisord: each daemon logs to LOGDIR/NAME.log, as the program file says" \
		eval 'grep -q "negotiator-host" "$T/log/negotiator-host.log" && grep -q "negotiator-guest" "$T/log/negotiator-guest.log"'
	run sv-stop $CTL stop negotiator-host negotiator-guest
	check "supervisorctl stop: exit $rc, STOPPED, no daemon left" \
		eval 'test $rc = 0 && $CTL status negotiator-host | grep -q STOPPED && none_left host && none_left guest'
	$CTL shutdown > /dev/null 2>&1
	wait "$SVPID" 2>/dev/null
}
if ! want supervisord; then :
elif command -v supervisord > /dev/null 2>&1; then supervisord_check
else skip "supervisord: not installed"; fi

# ---- systemd -----------------------------------------------------------------------------
U=$SVC/systemd
if command -v systemd-analyze > /dev/null 2>&1; then
	systemd-analyze verify "$U/negotiator-host.service" "$U/negotiator-guest.service" > "$T/verify.out" 2>&1
	rc=$?
	check "systemd-analyze verify on both units: exit $rc, nothing to say" eval 'test $rc = 0 && test ! -s "$T/verify.out"'
	[ -s "$T/verify.out" ] && sed 's/^/# /' "$T/verify.out"
else
	skip "systemd-analyze verify: not installed"
fi

# A real systemd: PID 1 of a new PID, mount, UTS, IPC and cgroup namespace.
# It must start nothing of this machine's own (sysinit.target would pull in
# systemd-tmpfiles-setup, which empties the shared /tmp): in its mount
# namespace a tmpfs covers every unit and generator directory, and /run
# holds our two units, a stand-in virtqemud, and empty targets for what a
# service's default dependencies name.  Needs root and unshare; a container
# may forbid it: then a skip, also under CI (said in the note).
SD=/lib/systemd/systemd
[ -x "$SD" ] || SD=/usr/lib/systemd/systemd
systemd_check() {
	mkdir -p "$T/sd/units"
	cp "$U/negotiator-host.service" "$U/negotiator-guest.service" "$T/sd/units/"
	for t in negotiator-check sysinit basic shutdown; do
		printf '[Unit]\nDescription=%s (stub)\nDefaultDependencies=no\n' "$t" > "$T/sd/units/$t.target"
	done
	# what the boot does: one transaction that wants them all
	printf '[Unit]\nDescription=boot (stand-in)\nWants=negotiator-host.service negotiator-guest.service virtqemud.service\n' \
		> "$T/sd/units/boot.target"
	# libvirt's virtqemud as it looks to the units: takes 2 s to start, then stays
	printf '[Unit]\nDescription=stand-in virtqemud\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sleep 2\n' \
		> "$T/sd/units/virtqemud.service"
	cat > "$T/sd/init" <<EOF
set -e
for d in /etc/systemd/system /usr/local/lib/systemd/system /usr/lib/systemd/system \\
	/lib/systemd/system /etc/systemd/system-generators /usr/local/lib/systemd/system-generators \\
	/usr/lib/systemd/system-generators /lib/systemd/system-generators /run; do
	if [ -d "\$d" ]; then mount -t tmpfs tmpfs "\$d"; fi
done
mkdir -p /run/systemd/system
cp $T/sd/units/* /run/systemd/system/
exec env container=negotiator-check $SD --system --unit=negotiator-check.target --log-target=null
EOF
	unshare --pid --mount --uts --ipc --cgroup --fork --mount-proc sh "$T/sd/init" > "$T/sd/out" 2>&1 &
	SDPID=$!
	PIDS="$PIDS $SDPID"
	n=0 P=
	while [ $n -lt 100 ] && [ -z "$P" ] && kill -0 "$SDPID" 2>/dev/null; do
		P=$(pgrep -f -P "$SDPID" "unit=negotiator-check.target" 2>/dev/null | head -n 1)
		[ -z "$P" ] && sleep 0.1; n=$((n + 1))
	done
	SCTL="nsenter -t $P -m -p systemctl"
	st=
	n=0
	while [ -n "$P" ] && [ $n -lt 100 ]; do
		st=$($SCTL is-system-running 2>/dev/null)
		case $st in running | degraded) break ;; esac
		sleep 0.1; n=$((n + 1))
	done
	case $st in
	running | degraded) ;;
	*)	SKIP_IS_OK=1 skip "real systemd: cannot run one as PID 1 here ($(head -c 200 "$T/sd/out" | tr '\n' ' ') ${st:-no answer})"
		kill -9 "$SDPID" 2>/dev/null; return ;;
	esac
	note "systemd $($SCTL --version | head -n 1 | cut -d' ' -f2) runs as PID 1 of a namespace ($st)"
	active() { [ "$($SCTL is-active "negotiator-$1" 2>/dev/null)" = active ]; }
	mainpid() { $SCTL show -p MainPID --value "negotiator-$1" 2>/dev/null; }
	mono() { $SCTL show -p "$2" --value "$1" 2>/dev/null; }
	run sd-start $SCTL start boot.target
	check "systemd: a boot-like start (a target that wants both units and a stand-in virtqemud): exit $rc, active" \
		eval 'test $rc = 0 && active host && active guest'
	# After=virtqemud.service: the host daemon's process starts only once
	# virtqemud's start has finished (a oneshot: its ExecStart exited)
	vq=$(mono virtqemud.service ExecMainExitTimestampMonotonic)
	hs=$(mono negotiator-host.service ExecMainStartTimestampMonotonic)
	gs=$(mono negotiator-guest.service ExecMainStartTimestampMonotonic)
	check "systemd: ordering: the host daemon starts after virtqemud is up (${vq}us <= ${hs}us), the guest's does not wait (${gs}us)" \
		eval '[ -n "$vq" ] && [ -n "$hs" ] && [ "$hs" -ge "$vq" ] && [ "$gs" -lt "$vq" ]'
	check "systemd: the host unit is After= libvirtd.service (absent here) and virtqemud.service" \
		eval '$SCTL show -p After --value negotiator-host.service | tr " " "\n" | grep -qx libvirtd.service &&
			$SCTL show -p After --value negotiator-host.service | tr " " "\n" | grep -qx virtqemud.service'
	h=$(mainpid host) g=$(mainpid guest)
	# MainPID is of systemd's PID namespace: compare through the daemons' own view
	inner_pid() { for p in $(daemons_of "$1"); do sed -n 's/^NSpid:.*[[:space:]]\([0-9]*\)$/\1/p' "/proc/$p/status"; done; }
	check "systemd: MainPID is the one daemon (host $h, guest $g)" \
		eval '[ "$(inner_pid host)" = "$h" ] && [ "$(inner_pid guest)" = "$g" ]'
	check "systemd: calls work both ways" wait_until calls_work
	$SCTL kill -s KILL negotiator-host.service negotiator-guest.service
	wait_until eval '[ "$(mainpid host)" != "$h" ] && [ "$(mainpid host)" != 0 ] && [ "$(mainpid guest)" != "$g" ] && [ "$(mainpid guest)" != 0 ] && active host && active guest'
	h2=$(mainpid host) g2=$(mainpid guest)
	check "systemd: SIGKILLed daemons restarted by Restart=always (host $h -> $h2, guest $g -> $g2)" \
		eval '[ "$h2" != "$h" ] && [ "$g2" != "$g" ] && [ "$(inner_pid host)" = "$h2" ] && [ "$(inner_pid guest)" = "$g2" ]'
	check "systemd: calls work again" wait_until calls_work
	run sd-reload $SCTL reload negotiator-host.service negotiator-guest.service
	check "systemd: reload: exit $rc, same daemons" \
		eval 'test $rc = 0 && [ "$(mainpid host)" = "$h2" ] && [ "$(mainpid guest)" = "$g2" ] && active host'
	run sd-stop $SCTL stop negotiator-host.service negotiator-guest.service
	check "systemd: stop: exit $rc, inactive, no daemon left" \
		eval 'test $rc = 0 && ! active host && ! active guest && none_left host && none_left guest'
	kill -9 "$SDPID" "$P" 2>/dev/null
	wait "$SDPID" 2>/dev/null
}
if ! want systemd; then :
elif [ -x "$SD" ] && command -v unshare > /dev/null 2>&1 && command -v nsenter > /dev/null 2>&1 &&
   [ "$(id -u)" = 0 ]; then
	systemd_check
else
	SKIP_IS_OK=1 skip "real systemd: needs root, systemd, unshare and nsenter"
fi

# ---- upstart -----------------------------------------------------------------------------
want upstart && for j in negotiator-host negotiator-guest; do
	run upstart-$j sh "$S/upstart-check.sh" "$SVC/upstart/$j.conf"
	check "upstart: $j.conf as installed follows upstart 0.6's grammar (exit $rc)" test $rc = 0
	sed 's/^/# /' "$T/upstart-$j"
done
want upstart && sh "$S/upstart.sh" > "$T/upstart.out" 2>&1
want upstart && set -- $(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1 \2/p' "$T/upstart.out" | tail -n 1)
want upstart && check "upstart: the grammar checker's own tests: ${1:-?} passed, ${2:-?} failed" test "${2:-1}" = 0
want upstart && { [ "${2:-1}" = 0 ] || sed 's/^/# /' "$T/upstart.out"; }

if [ "$SKIPPED" -gt 0 ]; then
	echo "$PASS passed, $FAIL failed, $SKIPPED skipped"
else
	echo "$PASS passed, $FAIL failed"
fi
[ "$FAIL" -eq 0 ]
