#!/bin/sh
#
# tests/soak.sh: many calls through one host daemon, and nothing may grow.
#
# Starts the QEMU stand-in, a host daemon and a guest daemon in a temp dir
# (like tests/integration.sh), warms up, then makes SOAK_N calls (default
# 10000) host -> guest of a command that exits at once: all but SOAK_CLI
# (default 300) through tests/negbench's persistent client (one connection,
# one call after the other), SOAK_CLI as one-shot CLI calls (a process and
# a connection each).  Every call must succeed, and between the warm-up and
# the end the host daemon's open descriptors (/proc/PID/fd) must not grow
# and its resident memory (VmRSS) must not grow by more than 1 MiB.
# Prints "ok - ..." / "not ok - ..." and "N passed, N failed"; where /proc
# is missing, "# skipped" and "0 passed, 0 failed".  With
# NEGOTIATOR_SANITIZE=1 (make sanitize) RSS is shown but not checked:
# AddressSanitizer's quarantine keeps freed memory on purpose.
#
# Usage: sh tests/soak.sh [BUILD_DIR]   (default: the current dir)

B=$(cd "${1:-.}" && pwd)
SOAK_N=${SOAK_N:-10000}
SOAK_CLI=${SOAK_CLI:-300}
. "$(dirname "$0")/lib.sh"

if [ ! -r /proc/self/status ] || [ ! -d /proc/self/fd ]; then
	note "skipped: the soak test measures descriptors and memory in /proc, and there is none"
	echo "0 passed, 0 failed"
	exit 0
fi
for p in negotiator-host negotiator-guest tests/standin tests/negbench; do
	if [ ! -x "$B/$p" ]; then
		fail "soak test: $B/$p is missing (make check builds it)"
		echo "$PASS passed, $FAIL failed"
		exit 1
	fi
done
[ "$SOAK_CLI" -gt "$SOAK_N" ] && SOAK_CLI=$SOAK_N
suite_tmp soak

wait_until() {
	n=0
	while ! "$@" >/dev/null 2>&1; do
		n=$((n + 1))
		[ $n -gt 100 ] && return 1
		sleep 0.1
	done
	return 0
}

# the guest's command: a program that exits at once (a symlink to true(1):
# commands must be executable regular files, and stat() follows it)
mkdir -p "$T/ch" "$T/g" "$T/gc" "$T/hc"
for t in /bin/true /usr/bin/true; do
	[ -x "$t" ] && [ ! -e "$T/gc/true" ] && ln -s "$t" "$T/gc/true"
done
[ -e "$T/gc/true" ] || { printf '#!/bin/sh\nexit 0\n' > "$T/gc/true"; chmod 755 "$T/gc/true"; }

HOST="$B/negotiator-host --channels-dir $T/ch --control-socket $T/host.sock"
GUEST="$B/negotiator-guest --control-socket $T/guest.sock"
"$B/tests/standin" --pidfile "$T/standin.pid" "$T/ch" vm1 "$T/g" 2>>"$T/standin.log" &
wait_until test -s "$T/standin.pid"
$HOST -d --commands-dir "$T/hc" 2>>"$T/host.log" &
HOSTPID=$!
PIDS="$PIDS $HOSTPID"
$GUEST -d --commands-dir "$T/gc" --host-to-guest "unix:$T/g/negotiator-host-to-guest.0" \
	--guest-to-host "unix:$T/g/negotiator-guest-to-host.0" 2>>"$T/guest.log" &
GUESTPID=$!
PIDS="$PIDS $GUESTPID"
# both channels up (the guest's guest-to-host port is reopened a second
# after a stand-in that had no host yet closed it): the descriptors counted
# below are then all there from the start
if ! wait_until $HOST vm1 -e true || ! wait_until $GUEST -l; then
	fail "soak test: the daemons did not come up (logs in $T)"
	echo "$PASS passed, $FAIL failed"
	exit 1
fi

fds() { ls "/proc/$1/fd" | wc -l; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# a quiet moment: the last client's connection is closed on the daemon's side
settle() {
	a=$(fds "$1"); n=0
	while sleep 0.2; b=$(fds "$1"); [ "$a" != "$b" ] && [ $n -lt 20 ]; do a=$b; n=$((n + 1)); done
}
now() { date +%s; }

# warm-up: buffers, the allocator's arenas, the stand-in's connections
"$B/tests/negbench" "$T/host.sock" vm1 300 true > "$T/warm.lat" 2>>"$T/negbench.log"
"$B/tests/negbench" run 20 "$T/warm.cli" $HOST vm1 -e true
settle $HOSTPID
settle $GUESTPID
fd0=$(fds $HOSTPID) rss0=$(rss $HOSTPID) gfd0=$(fds $GUESTPID) grss0=$(rss $GUESTPID)

t0=$(now)
"$B/tests/negbench" "$T/host.sock" vm1 $((SOAK_N - SOAK_CLI)) true > "$T/calls.lat" 2>>"$T/negbench.log"
rc1=$?
"$B/tests/negbench" run "$SOAK_CLI" "$T/cli.lat" $HOST vm1 -e true
rc2=$?
t1=$(now)
settle $HOSTPID
settle $GUESTPID
fd1=$(fds $HOSTPID) rss1=$(rss $HOSTPID) gfd1=$(fds $GUESTPID) grss1=$(rss $GUESTPID)

median() { sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "?" }'; }
ncalls=$(( $(wc -l < "$T/calls.lat") + $(wc -l < "$T/cli.lat" 2>/dev/null || echo 0) ))
note "$ncalls calls in $((t1 - t0)) s: persistent client median $(median "$T/calls.lat") us, CLI median $(median "$T/cli.lat") us"
note "host daemon: $fd0 -> $fd1 descriptors, VmRSS $rss0 -> $rss1 KiB; guest daemon: $gfd0 -> $gfd1, $grss0 -> $grss1 KiB"
check "$SOAK_N calls through one host daemon ($((SOAK_N - SOAK_CLI)) on one connection, $SOAK_CLI CLI), all succeed" \
	test "$rc1" = 0 -a "$rc2" = 0 -a "$ncalls" = "$SOAK_N"
check "host daemon descriptors do not grow ($fd0 -> $fd1)" test "$fd1" -le "$fd0"
if [ -n "$NEGOTIATOR_SANITIZE" ]; then
	note "RSS not checked under sanitizers (ASan's quarantine holds freed memory)"
else
	check "host daemon RSS grows by at most 1 MiB ($rss0 -> $rss1 KiB)" test "$((rss1 - rss0))" -le 1024
fi
check "guest daemon descriptors do not grow ($gfd0 -> $gfd1)" test "$gfd1" -le "$gfd0"
check "both daemons still run" kill -0 $HOSTPID $GUESTPID

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
