#!/bin/sh
#
# tests/guestcheck.sh: negotiator-guest --check against fake guests: trees
# under a temp dir standing in for /sys, /dev, /proc and /lib/modules
# (NEGOTIATOR_SYSROOT), ports as plain files, the processes holding them as
# ROOT/proc/PID/fd/N symlinks with a cmdline.  A real guest daemon (with
# UNIX-socket "ports" nobody serves) answers on the control socket.  Each
# case compares the whole output, line by line, and the exit status.  A
# real EBUSY needs a real port: tests/vm/suite.sh has that.
# Prints "ok - ..." / "not ok - ..." lines and ends with "N passed, N
# failed".
#
# Usage: sh tests/guestcheck.sh [BUILD_DIR]   (default: the current dir)

LC_ALL=C
export LC_ALL
B=$(cd "${1:-.}" && pwd)
. "$(dirname "$0")/lib.sh"
suite_tmp guestcheck
PIDFILE_SIGNAL=KILL

H2G=negotiator-host-to-guest.0
G2H=negotiator-guest-to-host.0
REL=9.9.9-test

# ---- fake guests ------------------------------------------------------------------------
# root DIR: a tree with the driver loaded and no port yet
root() {
	R=$T/$1
	mkdir -p "$R/sys/bus/virtio/drivers/virtio_console" "$R/sys/class/virtio-ports" \
		"$R/dev" "$R/proc/sys/kernel"
	echo "$REL" > "$R/proc/sys/kernel/osrelease"
}
# port N NAME: /dev/vport0pN named NAME in sysfs
port() {
	mkdir -p "$R/sys/class/virtio-ports/vport0p$1"
	echo "$2" > "$R/sys/class/virtio-ports/vport0p$1/name"
	: > "$R/dev/vport0p$1"
}
# proc PID ARG...: a process with that command line ...
proc() {
	p=$1; shift
	mkdir -p "$R/proc/$p/fd"
	: > "$R/proc/$p/cmdline"
	for a in "$@"; do printf '%s\000' "$a" >> "$R/proc/$p/cmdline"; done
	ln -s /dev/null "$R/proc/$p/fd/0"
}
# holds PID FD N: ... that has /dev/vport0pN open as descriptor FD
holds() { ln -s "$R/dev/vport0p$3" "$R/proc/$1/fd/$2"; }
# a healthy guest: both ports, held by a daemon
healthy() {
	root "$1"
	port 1 "$H2G"; port 2 "$G2H"
	proc 4242 /usr/sbin/negotiator-guest --daemon --commands-dir /cmds
	holds 4242 3 1; holds 4242 4 2
	proc 17 /sbin/init
}

mkdir -p "$T/cmds" "$T/g"
printf '#!/bin/sh\necho hi\n' > "$T/cmds/hello"
cp "$T/cmds/hello" "$T/cmds/bye"
chmod 755 "$T/cmds/hello" "$T/cmds/bye"
echo "not a command" > "$T/cmds/readme"
"$B/negotiator-guest" -d --control-socket "$T/guest.sock" --commands-dir "$T/cmds" \
	--host-to-guest "unix:$T/g/$H2G" --guest-to-host "unix:$T/g/$G2H" 2>>"$T/guest.log" &
echo $! > "$T/guest.pid"
check "a guest daemon for the control socket" wait_until test -S "$T/guest.sock"

# gcheck NAME [ARGS...]: --check on the tree $R (the daemon's socket and
# commands by default), stdout in $T/NAME.out, status in $RC
gcheck() {
	n=$1; shift
	NEGOTIATOR_SYSROOT=$R "$B/negotiator-guest" --check --control-socket "$T/guest.sock" \
		--commands-dir "$T/cmds" "$@" > "$T/$n.out" 2> "$T/$n.err"
	RC=$?
}
# same NAME STATUS: the output is exactly $T/NAME.want, the status STATUS
same() {
	if [ "$RC" = "$2" ] && cmp -s "$T/$1.want" "$T/$1.out"; then return 0; fi
	echo "# $1: exit $RC (want $2); diff want got:"
	diff "$T/$1.want" "$T/$1.out" | sed 's/^/#   /'
	return 1
}
want() { cat > "$T/$1.want"; }

DAEMON_OK="ok: guest daemon running (it answers at $T/guest.sock)"
CMDS_OK="ok: commands directory $T/cmds (2 commands)"
HOST_FIX="on the host, print the two channels with negotiator-host --libvirt-xml GUEST, add them inside <devices> with virsh edit GUEST, then shut the guest down fully and start it again (virsh shutdown GUEST; virsh start GUEST): a reboot does not add devices"
driver_ok() { echo "ok: virtio_console driver loaded ($R/sys/bus/virtio/drivers/virtio_console)"; }
HELD_BY_DAEMON="is held by the guest daemon: pid 4242 (/usr/sbin/negotiator-guest --daemon --commands-dir /cmds)"

# ---- a healthy guest ---------------------------------------------------------------------
healthy healthy
gcheck healthy
{ driver_ok
  echo "ok: port $H2G at $R/dev/vport0p1"
  echo "ok: port $G2H at $R/dev/vport0p2"
  echo "ok: port $H2G $HELD_BY_DAEMON"
  echo "ok: port $G2H $HELD_BY_DAEMON"
  echo "$DAEMON_OK"
  echo "$CMDS_OK"; } | want healthy
check "healthy guest: exit 0, all ok, the ports held by the daemon" same healthy 0
check "... nothing on stderr" test ! -s "$T/healthy.err"

# the daemon's options spelled otherwise: still the daemon
healthy daemon-spelled
rm -rf "$R/proc/4242"
proc 4243 negotiator-guest -vd
holds 4243 5 1
proc 4244 ./negotiator-guest --control-socket /run/g.sock --daemon
holds 4244 6 2
gcheck daemon-spelled
{ driver_ok
  echo "ok: port $H2G at $R/dev/vport0p1"
  echo "ok: port $G2H at $R/dev/vport0p2"
  echo "ok: port $H2G is held by the guest daemon: pid 4243 (negotiator-guest -vd)"
  echo "ok: port $G2H is held by the guest daemon: pid 4244 (./negotiator-guest --control-socket /run/g.sock --daemon)"
  echo "$DAEMON_OK"
  echo "$CMDS_OK"; } | want daemon-spelled
check "daemon as -vd and after an option's argument: recognized" same daemon-spelled 0

# nobody holds the ports: they open (plain files here)
healthy free
rm -rf "$R/proc/4242"
gcheck free
{ driver_ok
  echo "ok: port $H2G at $R/dev/vport0p1"
  echo "ok: port $G2H at $R/dev/vport0p2"
  echo "ok: port $H2G is free (no process has it open)"
  echo "ok: port $G2H is free (no process has it open)"
  echo "$DAEMON_OK"
  echo "$CMDS_OK"; } | want free
check "ports nobody holds: free" same free 0

# ---- 1. the driver ------------------------------------------------------------------------
root nodriver
rmdir "$R/sys/bus/virtio/drivers/virtio_console"
gcheck nodriver
{ echo "problem: virtio_console driver missing: not loaded (no $R/sys/bus/virtio/drivers/virtio_console) and no module for kernel $REL under $R/lib/modules/$REL; fix: boot a kernel built with CONFIG_VIRTIO_CONSOLE=y or =m (such as the distribution's standard kernel, with its modules installed), then modprobe virtio_console"
  echo "$DAEMON_OK"
  echo "$CMDS_OK"; } | want nodriver
check "driver missing, no module: exit 1, a kernel with CONFIG_VIRTIO_CONSOLE" same nodriver 1

mkdir -p "$R/lib/modules/$REL/kernel/drivers/char"
: > "$R/lib/modules/$REL/kernel/drivers/char/virtio_console.ko.xz"
gcheck module
{ echo "problem: virtio_console driver not loaded (no $R/sys/bus/virtio/drivers/virtio_console), but its module is there: $R/lib/modules/$REL/kernel/drivers/char/virtio_console.ko.xz; fix: modprobe virtio_console, and have it loaded at boot (add virtio_console to /etc/modules, or your distribution's equivalent)"
  echo "$DAEMON_OK"
  echo "$CMDS_OK"; } | want module
check "module there but not loaded: modprobe virtio_console" same module 1

rm -rf "$R/lib/modules/$REL/kernel"
mkdir -p "$R/lib/modules/$REL/updates/virtio"
: > "$R/lib/modules/$REL/updates/virtio/virtio_console.ko"
printf 'kernel/fs/foo.ko:\nupdates/virtio/virtio_console.ko: kernel/drivers/virtio/virtio_ring.ko\n' \
	> "$R/lib/modules/$REL/modules.dep"
gcheck moddep
head -n 1 "$T/moddep.out" > "$T/moddep.first"
check "... found through modules.dep elsewhere" grep -q "but its module is there: $R/lib/modules/$REL/updates/virtio/virtio_console.ko; fix: modprobe" "$T/moddep.first"

# ---- 2. no multiport: only hvc consoles ------------------------------------------------------
root hvc
rmdir "$R/sys/class/virtio-ports"
: > "$R/dev/hvc0"
gcheck hvc
{ driver_ok
  echo "problem: no named virtio ports: this kernel's virtio_console has no multiport support (no $R/sys/class/virtio-ports, no $R/dev/vport*; 1 $R/dev/hvc* console), as in kernels before 2.6.35 without a backport; fix: boot Linux 2.6.35 or later, or a distribution kernel with the multiport backport (such as RHEL 6's 2.6.32)"
  echo "$DAEMON_OK"
  echo "$CMDS_OK"; } | want hvc
check "no multiport support (only /dev/hvc0): a 2.6.35+ kernel or a backport" same hvc 1

# ---- 3. ports missing -----------------------------------------------------------------------------
root noports
gcheck noports
{ driver_ok
  echo "problem: neither $H2G nor $G2H found (tried $R/sys/class/virtio-ports (none); $R/dev/virtio-ports/$H2G (missing); $R/dev/vport* (none)); fix: $HOST_FIX"
  echo "$DAEMON_OK"
  echo "$CMDS_OK"; } | want noports
check "both ports missing: one line, the host's libvirt XML, a full power cycle" same noports 1

root oneport
port 1 "$H2G"
proc 4242 negotiator-guest --daemon
holds 4242 3 1
gcheck oneport
{ driver_ok
  echo "ok: port $H2G at $R/dev/vport0p1"
  echo "problem: port $G2H missing ($H2G is there; tried $R/sys/class/virtio-ports (1 ports, none named so); $R/dev/virtio-ports/$G2H (missing); $R/dev/vport* (1 devices, none named so in /sys/kernel/debug/virtio-ports)); fix: $HOST_FIX"
  echo "ok: port $H2G is held by the guest daemon: pid 4242 (negotiator-guest --daemon)"
  echo "$DAEMON_OK"
  echo "$CMDS_OK"; } | want oneport
check "one port missing: says which, and which is there" same oneport 1

# ---- 4. busy ports ------------------------------------------------------------------------------
healthy busy
rm -rf "$R/proc/4242"
proc 4242 negotiator-guest --daemon
holds 4242 3 2
proc 77 sh -c 'exec 3<>/dev/virtio-ports/negotiator-host-to-guest.0; sleep 600'
holds 77 3 1
proc 78 sleep 600
holds 78 3 1
gcheck busy
{ driver_ok
  echo "ok: port $H2G at $R/dev/vport0p1"
  echo "ok: port $G2H at $R/dev/vport0p2"
  echo "problem: port $H2G is busy (a port takes one opener): held by pid 77 (sh -c exec 3<>/dev/virtio-ports/negotiator-host-to-guest.0; sleep 600), pid 78 (sleep 600); fix: stop them (kill 77 78), then (re)start the guest daemon so that it opens the port"
  echo "ok: port $G2H is held by the guest daemon: pid 4242 (negotiator-guest --daemon)"
  echo "$DAEMON_OK"
  echo "$CMDS_OK"; } | want busy
check "a port held by another process: busy, holders named with pid and command line" same busy 1

# a negotiator-guest client (-e, here with the argument -d) is not the daemon;
# a command line with control characters is printed escaped
healthy client
rm -rf "$R/proc/4242"
proc 4242 negotiator-guest --daemon
holds 4242 3 1
proc 99 negotiator-guest -e -d
holds 99 7 2
gcheck client
grep "^problem: port $G2H is busy (a port takes one opener): held by pid 99 (negotiator-guest -e -d); fix: stop it (kill 99)," \
	"$T/client.out" > /dev/null
check "a client holding guest-to-host (-e -d): busy, not taken for the daemon" test $? = 0 -a "$RC" = 1
rm -rf "$R/proc/99"
proc 99 "$(printf 'evil\033[2Jname')"
holds 99 7 2
gcheck escaped
check "... a holder's command line printed escaped" \
	grep -q "held by pid 99 (evil\\\\x1b\[2Jname); fix: stop it" "$T/escaped.out"

# ---- 5. the daemon ------------------------------------------------------------------------------
healthy nodaemon
gcheck nodaemon --control-socket "$T/none.sock"
{ driver_ok
  echo "ok: port $H2G at $R/dev/vport0p1"
  echo "ok: port $G2H at $R/dev/vport0p2"
  echo "ok: port $H2G $HELD_BY_DAEMON"
  echo "ok: port $G2H $HELD_BY_DAEMON"
  echo "problem: guest daemon not running (nothing answers at $T/none.sock: No such file or directory); fix: start it with whichever this guest uses: systemctl start negotiator-guest, /etc/init.d/negotiator-guest start, start negotiator-guest (upstart), supervisorctl start negotiator-guest (service files in PREFIX/share/negotiator)"
  echo "$CMDS_OK"; } | want nodaemon
check "no daemon on the control socket: how to start it" same nodaemon 1

# ---- 6. commands directories -------------------------------------------------------------------------
healthy nocmds
gcheck nocmds --commands-dir "$T/nowhere"
{ driver_ok
  echo "ok: port $H2G at $R/dev/vport0p1"
  echo "ok: port $G2H at $R/dev/vport0p2"
  echo "ok: port $H2G $HELD_BY_DAEMON"
  echo "ok: port $G2H $HELD_BY_DAEMON"
  echo "$DAEMON_OK"
  echo "$CMDS_OK"
  echo "problem: commands directory $T/nowhere missing (No such file or directory); fix: mkdir -p $T/nowhere and put the commands (executable files) in it"; } | want nocmds
check "a commands directory missing: mkdir -p (every --commands-dir checked)" same nocmds 1
: > "$T/afile"
gcheck filecmds --commands-dir "$T/afile"
check "a commands directory that is a file: not a directory" \
	grep -qx "problem: commands directory $T/afile is not a directory; fix: move it away, then mkdir -p $T/afile and put the commands (executable files) in it" "$T/filecmds.out"
if [ "$(id -u)" != 0 ]; then
	mkdir "$T/closed"; chmod 000 "$T/closed"
	gcheck closed --commands-dir "$T/closed"
	check "an unreadable commands directory" \
		grep -q "^problem: commands directory $T/closed unreadable (Permission denied); fix: chmod 755" "$T/closed.out"
	chmod 755 "$T/closed"
else
	note "unreadable commands directory: not testable as root"
fi

# ---- usage ------------------------------------------------------------------------------------
"$B/negotiator-guest" --check -l > "$T/out" 2> "$T/err"; RC=$?
check "--check with -l: usage error 2" test "$RC" = 2 -a ! -s "$T/out"
check "... saying the modes" grep -qx "negotiator-guest: error: give only one of -d, -l, -e, --check (try --help)" "$T/err"
"$B/negotiator-guest" --check extra > /dev/null 2>&1; RC=$?
check "--check with an operand: usage error 2" test "$RC" = 2

# last: a daemon killed outright leaves its socket; nothing answers there
kill -9 "$(cat "$T/guest.pid")"
rm -f "$T/guest.pid"
wait 2>/dev/null
R=$T/healthy
gcheck stale
check "a stale control socket: not running (connection refused)" \
	grep -qx "problem: guest daemon not running (nothing answers at $T/guest.sock: Connection refused); fix: .*" "$T/stale.out"
check "... exit 1" test "$RC" = 1

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
