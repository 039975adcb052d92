#!/bin/sh
#
# tests/vm/suite.sh: the scenarios of `make vm-check` on one guest kernel
# (tests/vm/check.sh runs it once per kernel).  negotiator between a real
# QEMU and a real Linux guest (busybox, a static negotiator-guest, test tools
# and qemu-ga in an initramfs; see build.sh) booting VM_KERNEL.  One
# PASS/FAIL line per scenario, details of failed assertions indented below
# it, then "vm-check RELEASE: N passed, N failed" (RELEASE: the guest's own
# uname -r).
#
# KVM is used when a real vCPU boots under it, TCG otherwise (VM_ACCEL=kvm|tcg
# to force).  Only the QEMU processes started here are killed (by pidfile),
# also on failure.

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
CACHE=${VM_CACHE:-$HERE/cache}
VM_DIR=$(mktemp -d "${TMPDIR:-/tmp}/negotiator-vm.XXXXXX") || exit 1
. "$HERE/lib.sh"

PASSED=0
FAILED=0
SCEN_OK=1
SCEN_NOTES=""
HOSTPID=""

cleanup() {
	[ -n "$HOSTPID" ] && kill "$HOSTPID" 2>/dev/null
	vm_stop_all
	if [ "$FAILED" -eq 0 ] && [ -z "$KEEP" ]; then rm -rf "$VM_DIR"; else echo "# logs kept in $VM_DIR"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
vm_watchdog

# assertions inside a scenario; the scenario line is printed at its end
expect() { d=$1; shift; if "$@" > /dev/null 2>&1; then :; else SCEN_OK=0; SCEN_NOTES="$SCEN_NOTES
    failed: $d"; fi; }
scenario_end() {
	if [ $SCEN_OK = 1 ]; then
		PASSED=$((PASSED + 1)); echo "PASS $1"
	else
		FAILED=$((FAILED + 1)); echo "FAIL $1$SCEN_NOTES"
	fi
	SCEN_OK=1
	SCEN_NOTES=""
}
wait_until() { # up to $WAIT (default 30) seconds
	n=0
	while ! "$@" >/dev/null 2>&1; do
		n=$((n + 1))
		[ $n -gt $((${WAIT:-30} * 5)) ] && return 1
		sleep 0.2
	done
}
same() { [ "$1" = "$2" ]; }
has() { grep -q -- "$2" "$1"; }
dead() { ! kill -0 "$1" 2>/dev/null; }

# ---- the host side --------------------------------------------------------------------
mkdir -p "$VM_DIR/ch" "$VM_DIR/hc"
hcmd() { f=$VM_DIR/hc/$1; shift; printf '#!/bin/sh\n%s\n' "$*" > "$f"; chmod 755 "$f"; }
hcmd echo-args 'for a in "$@"; do printf "[%s]\n" "$a"; done'
hcmd whoami-guest 'echo "guest=$NEGOTIATOR_GUEST"'
hcmd slow 'sleep 60'
hcmd zeros 'dd if=/dev/zero bs=32768 count=$((${1:-1} * 32)) 2>/dev/null'
HOST="$TOP/negotiator-host --channels-dir $VM_DIR/ch --control-socket $VM_DIR/host.sock"

start_host() {
	rm -f "$VM_DIR/host.sock"
	$HOST -d -v --scan-interval 1 --commands-dir "$VM_DIR/hc" 2>>"$VM_DIR/host.log" > /dev/null &
	HOSTPID=$!
	# a tight loop of a shell builtin: the first-call timing below counts it
	n=0
	while [ ! -S "$VM_DIR/host.sock" ] && [ $n -lt 200000 ]; do n=$((n + 1)); done
	wait_until test -S "$VM_DIR/host.sock"
}
stop_host() { kill -"${1:-TERM}" "$HOSTPID" 2>/dev/null; wait "$HOSTPID" 2>/dev/null; HOSTPID=""; }
up() { $HOST -t 20 "$1" -e 'echo-args up' > /dev/null 2>&1; }
ms_now() { echo $(( $(date +%s%N) / 1000000 )); }
# first_call: start the host daemon; ms is the time until a first call
# through it has succeeded (its daemon start, guest discovery, connect,
# session and call included)
first_call() {
	t0=$(ms_now)
	start_host
	n=0
	until $HOST -t 10 vm1 -e echo-args > /dev/null 2>&1; do
		n=$((n + 1)); [ $n -gt 50 ] && break; sleep 0.1
	done
	ms=$(( $(ms_now) - t0 ))
}
guest_log() { $HOST vm1 -e 'run cat /tmp/negotiator-guest.log' 2>/dev/null; }
count() { grep -c -- "$1" "$2"; }
both_ways() { $HOST -t 20 "$1" -e 'call-host -e whoami-guest' 2>/dev/null | grep -q "guest=$1"; }

VM_ACCEL_USED=$(vm_accel)
echo "# accelerator: $VM_ACCEL_USED; kernel: $VM_KERNEL; work dir: $VM_DIR"
T0=$(date +%s)
KREL=$(basename "$VM_KERNEL")
summary() { echo "vm-check $KREL: $PASSED passed, $FAILED failed"; }
if ! vm_start vm1; then
	echo "FAIL boot: QEMU did not start ($(head -c 300 "$VM_DIR/vm1.qemu.log"))"
	FAILED=1; summary; exit 1
fi

# 0 ----------------------------------------------------------------------------------------------
# /init starts the guest daemon at once (before its ports exist on 2.6.35),
# then says "ready" on the console; the host daemon starts only after that.
WAIT=60 wait_until has "$VM_DIR/vm1.console" "negotiator test guest ready"
expect "guest booted (console: ready)" has "$VM_DIR/vm1.console" "negotiator test guest ready"
sleep 2
first_call
echo "# first call $ms ms after the host daemon started (the guest daemon was waiting)"
expect "served within 1 s of the host daemon starting ($ms ms)" test "$ms" -le 1000
r=$($HOST vm1 -e 'run uname -r' 2>/dev/null) && [ -n "$r" ] && KREL=$r
guest_log > "$VM_DIR/glog"
nwait=$(count "waiting for the virtio port" "$VM_DIR/glog")
if has "$VM_DIR/vm1.console" "ports at /init: absent"; then
	# the daemon started before its ports (before virtio_console was loaded)
	expect "started before its ports: said once that it waits ($nwait)" test "$nwait" = 1
	expect "... then that it found them, and served" has "$VM_DIR/glog" "virtio ports found after"
else
	expect "ports there at start: no line about waiting ($nwait)" test "$nwait" = 0
fi
case $KREL in
2.6.35*|2.6.36*)
	expect "no SIGIO on $KREL: found out at run time" has "$VM_DIR/glog" "sends no SIGIO" ;;
*)
	expect "SIGIO works on $KREL: no fallback" sh -c "! grep -q 'sends no SIGIO' '$VM_DIR/glog'" ;;
esac
stop_host
sleep 2
first_call
echo "# first call $ms ms after the host daemon restarted (TERM)"
expect "served within 1 s of a host daemon restart ($ms ms)" test "$ms" -le 1000
stop_host KILL
sleep 2
first_call
echo "# first call $ms ms after the host daemon restarted (KILL)"
expect "served within 1 s of a restart after SIGKILL ($ms ms)" test "$ms" -le 1000
scenario_end "0 boot order: guest daemon up before the host daemon (and its ports, where /init wins); served within 1 s"

# 1 ----------------------------------------------------------------------------------------------
expect "guest answers" wait_until up vm1
expect "host->guest command" same "$($HOST vm1 -e 'echo-args a "b c"' 2>&1)" "$(printf '[a]\n[b c]')"
expect "guest->host command with NEGOTIATOR_GUEST" both_ways vm1
$HOST vm1 --list-commands > "$VM_DIR/out" 2>&1
expect "--list-commands shows built-ins and test commands" has "$VM_DIR/out" "^find-distributor-id$"
expect "--list-commands sorted" sh -c "sort -c '$VM_DIR/out'"
expect "--list-commands hides non-executables" sh -c "! grep -q noexec '$VM_DIR/out'"
$HOST vm1 -e 'call-host -l' > "$VM_DIR/out" 2>&1
expect "guest lists the host's commands" same "$(cat "$VM_DIR/out")" "$(printf 'echo-args\nslow\nwhoami-guest\nzeros')"
expect "--list-guests" same "$($HOST -g 2>&1)" "vm1"
expect "built-in find-distributor-id runs in the guest" test -n "$($HOST vm1 -e find-distributor-id 2>/dev/null)"
scenario_end "1 basics: both directions, --list-commands, --list-guests, NEGOTIATOR_GUEST"

# 2 ----------------------------------------------------------------------------------------------
i=0; : > "$VM_DIR/want64"
while [ $i -lt 64 ]; do cat "$CACHE/blob1m" >> "$VM_DIR/want64"; i=$((i + 1)); done
want=$(md5sum < "$VM_DIR/want64" | cut -d' ' -f1)
got=$($HOST -t 300 vm1 -e 'gen 64' 2>/dev/null | md5sum | cut -d' ' -f1)
expect "64 MiB binary output byte-exact ($got)" same "$got" "$want"
head -c 67108864 /dev/urandom > "$VM_DIR/in64"
want=$(md5sum < "$VM_DIR/in64" | cut -d' ' -f1)
got=$($HOST -t 300 vm1 -e md5-stdin < "$VM_DIR/in64" 2>/dev/null)
expect "64 MiB binary stdin byte-exact" same "$got" "$want"
$HOST vm1 -e split > "$VM_DIR/out" 2> "$VM_DIR/err"
expect "stdout/stderr separate" same "$(cat "$VM_DIR/out")/$(cat "$VM_DIR/err")" "out1out2/err1err2"
for c in "echo-args:0" "exit3:3" "noexec:126" "no-such-command:127" "killself:143"; do
	$HOST vm1 -e "${c%%:*}" > /dev/null 2>&1
	expect "exit status of ${c%%:*} is ${c#*:}" same "$?" "${c#*:}"
done
$HOST -t 2 vm1 -e 'sleeper t1' > /dev/null 2> "$VM_DIR/err"
expect "timeout exits 124" same "$?" 124
expect "timeout killed the remote process group" wait_until $HOST vm1 -e 'gone t1'
scenario_end "2 streaming 64 MiB both ways, stdout/stderr, exit codes 0 3 126 127 143 124"

# 3 ----------------------------------------------------------------------------------------------
pids=""
i=1
while [ $i -le 50 ]; do
	( out=$($HOST -t 120 vm1 -e "echo-args call-$i" 2>&1); [ "$out" = "[call-$i]" ] ) &
	pids="$pids $!"
	i=$((i + 1))
done
ok=0
for p in $pids; do wait "$p" && ok=$((ok + 1)); done
expect "50 concurrent host->guest calls ($ok succeeded)" same "$ok" 50
expect "20 concurrent guest->host calls" $HOST -t 120 vm1 -e 'conc-to-host 20'
scenario_end "3 concurrency: 50 calls into the guest, 20 from inside it"

# 4 ----------------------------------------------------------------------------------------------
# guest daemon killed (SIGKILL) and restarted by its supervisor
$HOST -t 120 vm1 -e 'sleeper f1' > /dev/null 2> "$VM_DIR/err1" &
c=$!
sleep 2
$HOST vm1 -e kill-daemon > /dev/null 2>&1
wait $c; rc=$?
expect "guest daemon killed: call in flight fails with 125 (got $rc)" same "$rc" 125
expect "... with a clear message" has "$VM_DIR/err1" "negotiator-host: error: "
expect "guest daemon restarted: calls work" wait_until both_ways vm1
# host daemon killed and restarted
$HOST -t 120 vm1 -e 'sleeper f2' > /dev/null 2>&1 &
c=$!
$HOST -t 20 vm1 -e 'bg-call f3 -t 120 -e slow' > /dev/null 2>&1
sleep 2
stop_host KILL
wait $c; rc=$?
expect "host daemon killed: host client fails with 125 (got $rc)" same "$rc" 125
start_host
expect "host daemon restarted: calls work" wait_until both_ways vm1
expect "... the guest's call in flight failed with 125" same "$($HOST vm1 -e 'show f3' 2>&1)" 125
expect "... the command the guest ran for the dead host daemon was killed" \
	wait_until $HOST vm1 -e 'gone f2'
# power off and boot again on the same socket paths
vm_stop vm1
$HOST -t 10 vm1 -e echo-args > /dev/null 2>&1; rc=$?
expect "guest powered off: calls fail with 125 (got $rc)" same "$rc" 125
vm_start vm1
expect "guest booted again: calls work without touching the host daemon" wait_until both_ways vm1
# garbage written into both channels (by a raw client while the daemon is away)
stop_host
head -c 4096 /dev/urandom > "$VM_DIR/junk"
printf '99999\nnot a frame\n12\nout 1 abc' >> "$VM_DIR/junk"
for p in negotiator-host-to-guest.0 negotiator-guest-to-host.0; do
	"$TOP/tests/poke" "$VM_DIR/ch/vm1.$p" 1 < "$VM_DIR/junk" > /dev/null 2>&1
done
start_host
expect "garbage in the channels: calls work both ways" wait_until both_ways vm1
# a host client disconnects in the middle of a 64 MiB transfer
( $HOST -t 300 vm1 -e 'gen 64' 2>/dev/null; echo $? > "$VM_DIR/rc" ) | head -c 1000000 > /dev/null
expect "reader gone mid-transfer: client exits 141" same "$(cat "$VM_DIR/rc")" 141
# (its output goes to a FIFO nobody reads: still running when killed)
mkfifo "$VM_DIR/stall"
sleep 60 < "$VM_DIR/stall" &
stall=$!
$HOST -t 300 vm1 -e 'gen 64' > "$VM_DIR/stall" 2>/dev/null &
c=$!
sleep 1
expect "client still in its transfer when killed" kill -9 $c
kill $stall 2>/dev/null
expect "client killed mid-transfer: the guest command is cancelled" \
	wait_until sh -c "! $HOST vm1 -e 'running /cmds/gen'"
expect "host daemon still running" kill -0 "$HOSTPID"
expect "calls work after the aborted transfers" both_ways vm1
scenario_end "4 faults: guest daemon, host daemon, power cycle, garbage, client gone mid-transfer"

# 5 ----------------------------------------------------------------------------------------------
vm_start vm2
vm_start vm3 --no-negotiator
expect "second guest answers" wait_until up vm2
expect "second guest reaches the host as vm2" both_ways vm2
expect "first guest unaffected" both_ways vm1
expect "--list-guests ignores a guest without negotiator channels" \
	same "$($HOST -g 2>&1)" "$(printf 'vm1\nvm2')"
# both at once (fan-out): one connection to the daemon, each line prefixed
# with its guest, the largest status, one summary line of the failures
FO=$VM_DIR/fanout
$HOST -t 20 -e 'echo-args both "a b"' vm1 vm2 > "$FO.out" 2> "$FO.err"; rc=$?
expect "-e on vm1 and vm2 at once: exit 0, prefixed lines ($rc)" \
	same "$rc:$(sort "$FO.out" | tr '\n' ,)" "0:vm1: [a b],vm1: [both],vm2: [a b],vm2: [both],"
expect "... nothing on stderr" test ! -s "$FO.err"
$HOST -t 20 --all -e exit3 > "$FO.out" 2> "$FO.err"; rc=$?
expect "--all: the two guests with channels, exit 3 from both ($rc)" \
	same "$rc:$(tail -n 1 "$FO.err")" "3:negotiator-host: 2 of 2 guests failed: vm1 (exit 3), vm2 (exit 3)"
$HOST -t 20 -e 'echo-args x' vm2 nosuch vm1 > "$FO.out" 2> "$FO.err"; rc=$?
expect "an unknown guest among them: 125 for it, the others run ($rc)" \
	same "$rc:$(sort "$FO.out" | tr '\n' ,)" "125:vm1: [x],vm2: [x],"
expect "... and the summary names it" has "$FO.err" "1 of 3 guests failed: nosuch (125: no such guest"
# 1 MiB of random bytes from each: the blob, and a newline ending its last line
lastnl=$(tail -c 1 "$CACHE/blob1m" | od -An -tx1 | tr -d ' ')
want=$({ cat "$CACHE/blob1m"; [ "$lastnl" = 0a ] || echo; } | md5sum | cut -d' ' -f1)
$HOST -t 120 --all -e 'gen 1' > "$FO.out" 2> "$FO.err"; rc=$?
expect "--all, 1 MiB from each guest: byte-exact without the prefixes ($rc)" test "$rc" = 0 \
	-a "$(sed -n 's/^vm1: //p' "$FO.out" | md5sum | cut -d' ' -f1)" = "$want" \
	-a "$(sed -n 's/^vm2: //p' "$FO.out" | md5sum | cut -d' ' -f1)" = "$want"
$HOST -t 20 --max-parallel 1 -c vm1 vm2 > "$FO.out" 2> "$FO.err"; rc=$?
expect "-c on both, one at a time: each guest's commands, prefixed ($rc)" \
	same "$rc:$(grep -c '^vm1: echo-args$' "$FO.out"):$(grep -c '^vm2: echo-args$' "$FO.out")" "0:1:1"
vm_stop vm3
scenario_end "5 two guests under one host daemon, also at once (-e on both, --all); a guest without the channels is ignored"

# 6 ----------------------------------------------------------------------------------------------
$HOST vm1 -e 'idle-cpu idle 30' > /dev/null 2>&1
stop_host
sleep 34
start_host
wait_until up vm1
set -- $($HOST vm1 -e 'show idle' 2>/dev/null) x x
t0=$1; t1=$2
echo "# guest daemon CPU ticks while the host daemon was away for 30 s: $t0 -> $t1 ($KREL)"
expect "ticks measured" test -n "$t0" -a "$t0" != x -a "$t1" != x
expect "at most 3 ticks while the host is away for 30 s ($t0 -> $t1)" test "$((t1 - t0))" -le 3
scenario_end "6 idle: guest daemon CPU with the host daemon stopped for 30 s"

# 7 ----------------------------------------------------------------------------------------------
if $HOST vm1 -e 'run cat /tmp/qemu-ga.log' 2>/dev/null | grep -q "cannot stat shared object"; then
	# Debian 12's qemu-ga cannot start here: its glibc's ld.so stats every
	# library with fstatat(AT_EMPTY_PATH), which needs Linux 2.6.39.  What
	# this scenario guards still holds: negotiator leaves the agent's port to
	# the agent (a second opener would get EMFILE on 2.6.35).  A plain reader
	# takes the port's bytes while negotiator works beside it.
	echo "# qemu-ga (Debian 12, glibc 2.36) cannot start on $KREL: its ld.so needs fstat with AT_EMPTY_PATH (2.6.39+); a plain reader takes its port instead"
	{ sleep 3; head -c 65536 /dev/zero; sleep 5; } |
		"$TOP/tests/poke" "$VM_DIR/ch/vm1.org.qemu.guest_agent.0" 10 > /dev/null 2>&1 &
	w=$!
	$HOST -t 30 vm1 -e 'run rawio in $(gutil port org.qemu.guest_agent.0) 65536' \
		> "$VM_DIR/qga.out" 2>&1
	expect "another agent opens and reads the agent's port ($(cat "$VM_DIR/qga.out"))" \
		grep -q '^65536 ' "$VM_DIR/qga.out"
	kill "$w" 2>/dev/null
	expect "negotiator still works beside it" both_ways vm1
	scenario_end "7 the agent port beside negotiator stays the agent's (qemu-ga cannot run on $KREL)"
else
	printf '{"execute":"guest-ping"}\n{"execute":"guest-info"}\n' |
		"$TOP/tests/poke" "$VM_DIR/ch/vm1.org.qemu.guest_agent.0" 3 > "$VM_DIR/qga.out" 2>&1
	expect "qemu-ga answers guest-ping" has "$VM_DIR/qga.out" '"return": {}'
	expect "qemu-ga answers guest-info" has "$VM_DIR/qga.out" '"version"'
	expect "negotiator still works beside it" both_ways vm1
	scenario_end "7 qemu-ga keeps working beside negotiator"
fi

# 8 ----------------------------------------------------------------------------------------------
# the host daemon goes away while calls stream in both directions
$HOST -t 300 vm1 -e 'gen 1000' > /dev/null 2> "$VM_DIR/err8" &
c=$!
$HOST -t 20 vm1 -e 'bg-call s8 -t 300 -e "zeros 1000"' > /dev/null 2>&1
sleep 2
expect "host->guest stream still running when the host daemon goes" kill -0 $c
expect "guest->host stream still running when the host daemon goes" pgrep -f "hc/[z]eros 1000"
stop_host KILL
wait $c; rc=$?
expect "host client of the stream ends with 125 (got $rc)" same "$rc" 125
start_host
expect "calls work again" wait_until both_ways vm1
expect "the guest's streaming call ended with 125 ($($HOST vm1 -e 'show s8' 2>&1))" \
	same "$($HOST vm1 -e 'show s8' 2>&1)" 125
expect "the guest command streaming to the dead host daemon was stopped" \
	wait_until sh -c "! $HOST vm1 -e 'running /cmds/gen'"
expect "the host command streaming to the guest was stopped" \
	wait_until sh -c "! pgrep -f 'hc/[z]eros 1000'"
expect "the next call works, output intact" same "$($HOST vm1 -e 'echo-args after' 2>&1)" "[after]"
scenario_end "8 host daemon gone during streaming calls both ways: 125, and the next call works"

# 9 ----------------------------------------------------------------------------------------------
i=0; : > "$VM_DIR/want10"
while [ $i -lt 10 ]; do cat "$CACHE/blob1m" >> "$VM_DIR/want10"; i=$((i + 1)); done
hcmd blob10 "i=0; while [ \$i -lt 10 ]; do cat '$CACHE/blob1m'; i=\$((i + 1)); done"
want=$(md5sum < "$VM_DIR/want10" | cut -d' ' -f1)
got=$($HOST -t 120 vm1 -e 'gen 10' 2>/dev/null | md5sum | cut -d' ' -f1)
expect "10 MiB of guest command output byte-exact on the host ($got)" same "$got" "$want"
got=$($HOST -t 120 vm1 -e 'run negotiator-guest -t 120 -e blob10 | md5sum' 2>/dev/null | cut -d' ' -f1)
expect "10 MiB of host command output byte-exact in the guest ($got)" same "$got" "$want"
scenario_end "9 10 MiB byte-exact, guest->host and host->guest"

# 10 ---------------------------------------------------------------------------------------------
# python-negotiator's host CLI (tests/pypeer plays it) against the guest
# daemon over the real port: one connection per call, so the guest reads
# EOF after each; it must take that as "no host" and serve the next one
stop_host
PYCLI="$TOP/tests/pypeer call $VM_DIR/ch/vm1.negotiator-host-to-guest.0 --timeout 20"
n=0
for i in 1 2 3 4 5; do
	[ "$($PYCLI exec echo-args "py$i" 2>>"$VM_DIR/pypeer.err")" = "[py$i]" ] && n=$((n + 1))
done
expect "five python CLI calls in a row, one connection each ($n of 5)" same "$n" 5
expect "the python CLI lists the guest's commands" sh -c "$PYCLI list | grep -q '^gen\$'"
$PYCLI exec exit3 > /dev/null 2>"$VM_DIR/pyerr"
expect "a failure in python's words" has "$VM_DIR/pyerr" "exit code 3!"
expect "nothing python would die of" sh -c "! grep -q VIOLATION '$VM_DIR/pypeer.err'"
start_host
expect "our host daemon is served natively again" wait_until up vm1
scenario_end "10 python-negotiator's host CLI, one connection per call, over the real port"

# 11 ---------------------------------------------------------------------------------------------
# negotiator-guest --check in the real guest: all well while the daemon runs
# (it holds both ports); with the daemon stopped and a shell holding a port,
# the port is busy and the shell named, also through a real EBUSY
CHK=$VM_DIR/check
$HOST -t 30 vm1 -e 'run negotiator-guest --check --commands-dir /cmds' > "$CHK.out" 2>&1; rc=$?
dpid=$($HOST vm1 -e 'run cat /run/negotiator-guest.pid' 2>/dev/null)
expect "--check with the daemon running exits 0 ($rc)" same "$rc" 0
expect "... no problem line" sh -c "! grep -q '^problem:' '$CHK.out'"
for p in negotiator-host-to-guest.0 negotiator-guest-to-host.0; do
	expect "... $p held by the daemon (pid $dpid)" grep -q \
		"^ok: port $p is held by the guest daemon: pid $dpid (/bin/negotiator-guest --daemon --commands-dir /cmds " "$CHK.out"
done
expect "... the daemon answers on its socket" \
	grep -qx "ok: guest daemon running (it answers at /var/run/negotiator-guest.sock)" "$CHK.out"
expect "... the driver" grep -q "^ok: virtio_console driver loaded" "$CHK.out"
$HOST vm1 -e 'check-busy cb' > /dev/null 2>&1
expect "daemon stopped, port held, checked: the daemon is back" wait_until $HOST vm1 -e 'show cb'
rc=$($HOST vm1 -e 'show cb' 2>/dev/null)
holder=$($HOST vm1 -e 'run cat /tmp/cb.holder' 2>/dev/null)
$HOST vm1 -e 'run cat /tmp/cb.out' > "$CHK.busy" 2>&1
$HOST vm1 -e 'run cat /tmp/cb-open.out' > "$CHK.open" 2>&1
expect "--check with a port held by a shell exits 1 ($rc)" same "$rc" 1
expect "... busy, naming the shell (pid $holder)" grep -q \
	"^problem: port negotiator-host-to-guest.0 is busy (a port takes one opener): held by pid $holder (sh -c exec 3<>" "$CHK.busy"
expect "... the daemon not running, and how to start it" grep -q \
	"^problem: guest daemon not running (nothing answers at /var/run/negotiator-guest.sock: .*); fix: start it" "$CHK.busy"
expect "... the other port free" grep -qx \
	"ok: port negotiator-guest-to-host.0 is free (no process has it open)" "$CHK.busy"
expect "... without /proc to look at: the real EBUSY (or 2.6.35's EMFILE) says busy" grep -q \
	"^problem: port negotiator-host-to-guest.0 is busy: another process has it open, not found in /tmp/fakeroot/proc" "$CHK.open"
expect "calls work both ways again" wait_until both_ways vm1
if [ $SCEN_OK = 0 ]; then
	SCEN_NOTES="$SCEN_NOTES
$(sed 's/^/    running: /' "$CHK.out"; sed 's/^/    busy: /' "$CHK.busy"; sed 's/^/    open: /' "$CHK.open")"
fi
scenario_end "11 --check in the guest: ports held by the daemon (exit 0); daemon stopped and a port held by a shell: busy, holder named (exit 1)"

# 12 ---------------------------------------------------------------------------------------------
# the operator's view from the host of real guests: --status (text and
# JSON) through the daemon and straight to the channels, then a guest
# whose QEMU is gone (its sockets stay: nobody listens) and one with a
# single channel; --libvirt-xml gives the two channels these guests have
ST=$VM_DIR/status
$HOST --status > "$ST.all" 2> "$ST.err"; rc=$?
sed 's/^/# --status: /' "$ST.all"
ver=$("$TOP/negotiator-host" --version | sed -n '1s/^negotiator-host \([^ ]*\).*/\1/p')
for g in vm1 vm2; do
	expect "--status: $g connected, answers, version $ver, native, ms, commands" grep -q \
		"^$g: connected, agent answers (negotiator $ver, native protocol), [0-9.]* ms, [0-9]* commands\$" "$ST.all"
done
expect "--status: both guests, exit 0 ($rc)" same "$rc:$(wc -l < "$ST.all" | tr -d ' ')" "0:2"
$HOST --status --json vm1 > "$ST.json" 2>> "$ST.err"; rc=$?
sed 's/^/# --status --json: /' "$ST.json"
expect "--status --json vm1: one object, connected, answers, native, version ($rc)" grep -q \
	"^{\"guest\":\"vm1\",\"channel\":\"connected\",\"answers\":true,\"version\":\"$ver\",\"protocol\":\"native\",\"rtt_ms\":[0-9.]*,\"commands\":[0-9]*,\"message\":null}\$" "$ST.json"
$HOST --check > "$ST.check" 2>> "$ST.err"
sed 's/^/# --check: /' "$ST.check"
for g in vm1 vm2; do
	expect "--check: $g has both channels, QEMU listens on them" sh -c \
		"grep -q '^ok: guest $g has both negotiator channels: ' '$ST.check' &&
		 grep -qx 'ok: guest $g: QEMU listens on both channel sockets' '$ST.check'"
done
expect "--check: the daemon listens" grep -qx "ok: the host daemon listens on $VM_DIR/host.sock" "$ST.check"
expect "--check: --channels-dir: no virsh asked" grep -q "^ok: --channels-dir given: " "$ST.check"
stop_host
$HOST --check vm1 > "$ST.check2" 2>> "$ST.err"; rc=$?
sed 's/^/# --check, daemon stopped: /' "$ST.check2"
expect "--check with the daemon stopped: says so, how to start it, exit 1 ($rc)" same \
	"$rc:$(grep -c "^problem: the host daemon is not running (nothing listens on $VM_DIR/host.sock); fix: negotiator-host " "$ST.check2")" "1:1"
"$TOP/negotiator-host" --channels-dir "$VM_DIR/ch" --control-socket "$VM_DIR/none.sock" \
	--status vm1 > "$ST.direct" 2>> "$ST.err"; rc=$?
sed 's/^/# --status, no daemon: /' "$ST.direct"
expect "--status without a daemon: straight to the channel ($rc)" grep -q \
	"^vm1: connected, agent answers (negotiator $ver, native protocol)" "$ST.direct"
start_host
vm_stop vm2
$HOST --status -t 3 vm1 vm2 > "$ST.dead" 2>> "$ST.err"; rc=$?
sed 's/^/# --status, vm2 powered off: /' "$ST.dead"
expect "--status: a guest whose QEMU is gone: socket present, no answer, exit 1 ($rc)" \
	same "$rc:$(grep -c '^vm2: socket present, agent does not answer: ' "$ST.dead")" "1:1"
expect "... the other still answers" grep -q "^vm1: connected, agent answers" "$ST.dead"
$HOST --check vm2 > "$ST.check3" 2>> "$ST.err"; rc=$?
sed 's/^/# --check vm2, powered off: /' "$ST.check3"
expect "--check: vm2's sockets are stale, nobody listens ($rc)" same "$rc:$(grep -c \
	"^problem: guest vm2: nothing listens on $VM_DIR/ch/vm2.negotiator-[a-z-]*.0: a stale socket of a QEMU that is gone; fix: " \
	"$ST.check3")" "1:2"
rm -f "$VM_DIR/ch/vm2.negotiator-guest-to-host.0"
$HOST --status -t 3 vm2 > "$ST.half" 2>> "$ST.err"; rc=$?
sed 's/^/# --status, one socket left: /' "$ST.half"
expect "--status: one channel, which one ($rc)" grep -qx \
	"vm2: one channel (only host-to-guest), agent unreachable" "$ST.half"
$HOST --check vm2 > "$ST.check4" 2>> "$ST.err"; rc=$?
sed 's/^/# --check vm2, one socket left: /' "$ST.check4"
expect "--check: vm2 has one channel, which is missing, and the fix ($rc)" grep -q \
	"^problem: guest vm2 has only one negotiator channel: negotiator-guest-to-host.0 is missing (.*); fix: negotiator-host --libvirt-xml vm2, virsh edit vm2" \
	"$ST.check4"
$HOST --libvirt-xml vm1 > "$ST.xml" 2> "$ST.steps"; rc=$?
expect "--libvirt-xml: the two channels QEMU was given here ($rc)" same \
	"$rc:$(grep -c "<target type='virtio' name='negotiator-host-to-guest.0'/>" "$ST.xml"):$(grep -c "<target type='virtio' name='negotiator-guest-to-host.0'/>" "$ST.xml")" "0:1:1"
expect "... and the steps: a full shutdown and start" grep -q "virsh shutdown vm1" "$ST.steps"
if [ $SCEN_OK = 0 ]; then
	SCEN_NOTES="$SCEN_NOTES
$(sed 's/^/    stderr: /' "$ST.err")"
fi
scenario_end "12 host --status and --check of real guests (with and without the daemon), a powered-off guest, one channel; --libvirt-xml"

# 13 ---------------------------------------------------------------------------------------------
# The guest daemon runs under its init.d script, started by /init the way a
# small Ubuntu 10.04 guest starts it (busybox's sh and start-stop-daemon,
# /etc/default/negotiator-guest), and its "stop" leaves nothing behind.
expect "/init started the daemon with the init.d script (console: Starting negotiator-guest)" \
	has "$VM_DIR/vm1.console" "^Starting negotiator-guest"
$HOST vm1 -e svc-status > "$VM_DIR/svc.status" 2>&1
sed 's/^/# init.d status: /' "$VM_DIR/svc.status"
pid=$(sed -n 3p "$VM_DIR/svc.status")
expect "status: 0, running, the pid file's process ($pid)" eval \
	'grep -qx "negotiator-guest is running (pid $pid)" "$VM_DIR/svc.status" && grep -qx "rc=0" "$VM_DIR/svc.status"'
expect "... which is the daemon with the defaults file's arguments" grep -q \
	"^/bin/negotiator-guest --daemon --commands-dir /cmds --log-file /tmp/negotiator-guest.log" "$VM_DIR/svc.status"
$HOST vm1 -e svc-stop > /dev/null 2>&1
WAIT=20 wait_until has "$VM_DIR/vm1.console" "^init.d stop: "
sed -n 's/^init.d stop: /# init.d stop (guest console): /p' "$VM_DIR/vm1.console"
expect "stop: 0; then status 3, no daemon left, no pid file" \
	has "$VM_DIR/vm1.console" "^init.d stop: stop=0 status=3 left=0 pidfile=no"
$HOST -t 3 vm1 -e true > /dev/null 2>&1; rc=$?
expect "... and the host's call finds no agent (125, got $rc)" same "$rc" 125
scenario_end "13 the guest daemon under /etc/init.d/negotiator-guest (busybox sh, start-stop-daemon): started at boot, status, stop"

echo "# suite took $(( $(date +%s) - T0 )) s"
summary
[ "$FAILED" -eq 0 ]
