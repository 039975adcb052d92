#!/bin/sh
#
# tests/vm/check.sh: `make vm-check`.  negotiator between a real QEMU and a
# real Linux guest (Debian kernel, busybox, a static negotiator-guest and
# qemu-ga in an initramfs; see build.sh).  One PASS/FAIL line per scenario,
# details of failed assertions indented below it, then "N passed, N failed".
#
# KVM is used when it works, TCG otherwise (VM_ACCEL=kvm|tcg to force).
# Only the QEMU processes started here are killed (by pidfile), also on failure.

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
HOST="$TOP/negotiator-host --channels-dir $VM_DIR/ch --control-socket $VM_DIR/host.sock"

start_host() {
	$HOST -d -v --scan-interval 1 --commands-dir "$VM_DIR/hc" 2>>"$VM_DIR/host.log" &
	HOSTPID=$!
	wait_until test -S "$VM_DIR/host.sock"
}
stop_host() { kill -"${1:-TERM}" "$HOSTPID" 2>/dev/null; wait "$HOSTPID" 2>/dev/null; HOSTPID=""; }
up() { $HOST -t 20 "$1" -e 'echo-args up' > /dev/null 2>&1; }
both_ways() { $HOST -t 20 "$1" -e 'call-host -e whoami-guest' 2>/dev/null | grep -q "guest=$1"; }

VM_ACCEL_USED=$(vm_accel)
echo "# accelerator: $VM_ACCEL_USED; kernel: $(basename "$VM_KERNEL"); work dir: $VM_DIR"
T0=$(date +%s)
vm_start vm1 || { echo "FAIL boot: QEMU did not start"; echo "0 passed, 1 failed"; exit 1; }
start_host

# 1 ----------------------------------------------------------------------------------------------
expect "guest answers" wait_until up vm1
expect "host->guest command" same "$($HOST vm1 -e 'echo-args a "b c"' 2>&1)" "$(printf '[a]\n[b c]')"
expect "guest->host command with NEGOTIATOR_GUEST" both_ways vm1
$HOST vm1 --list-commands > "$VM_DIR/out" 2>&1
expect "--list-commands shows built-ins and test commands" has "$VM_DIR/out" "^find-distributor-id$"
expect "--list-commands sorted" sh -c "sort -c '$VM_DIR/out'"
expect "--list-commands hides non-executables" sh -c "! grep -q noexec '$VM_DIR/out'"
$HOST vm1 -e 'call-host -l' > "$VM_DIR/out" 2>&1
expect "guest lists the host's commands" same "$(cat "$VM_DIR/out")" "$(printf 'echo-args\nslow\nwhoami-guest')"
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
vm_stop vm3
scenario_end "5 two guests under one host daemon; a guest without the channels is ignored"

# 6 ----------------------------------------------------------------------------------------------
$HOST vm1 -e 'idle-cpu idle' > /dev/null 2>&1
stop_host
sleep 13
start_host
wait_until up vm1
set -- $($HOST vm1 -e 'show idle' 2>/dev/null) x x
t0=$1; t1=$2
echo "# guest daemon CPU ticks while the host daemon was away for 10 s: $t0 -> $t1"
expect "ticks measured" test -n "$t0" -a "$t0" != x -a "$t1" != x
expect "no measurable CPU while the host is away ($t0 -> $t1)" test "$((t1 - t0))" -le 1
scenario_end "6 idle: guest daemon uses no CPU with the host daemon stopped for 10 s"

# 7 ----------------------------------------------------------------------------------------------
printf '{"execute":"guest-ping"}\n{"execute":"guest-info"}\n' |
	"$TOP/tests/poke" "$VM_DIR/ch/vm1.org.qemu.guest_agent.0" 3 > "$VM_DIR/qga.out" 2>&1
expect "qemu-ga answers guest-ping" has "$VM_DIR/qga.out" '"return": {}'
expect "qemu-ga answers guest-info" has "$VM_DIR/qga.out" '"version"'
expect "negotiator still works beside it" both_ways vm1
scenario_end "7 qemu-ga keeps working beside negotiator"

echo "# suite took $(( $(date +%s) - T0 )) s"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
