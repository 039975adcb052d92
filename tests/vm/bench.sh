#!/bin/sh
#
# tests/vm/bench.sh: `make bench`.  negotiator against qemu-ga in the same
# real QEMU guest, in the same run, on each guest kernel that vm-check uses
# (Debian's, then the legacy one: VM_LEGACY_KERNEL or ../shared/kernels).
# Prints a table per kernel and writes them to bench-results.txt (or
# $BENCH_OUT).  Medians and 95th percentiles of repeated runs where it
# applies.  Every interval is timed by a C program (tests/negbench, rawio in
# the guest, tests/qga): no shell $(date), no fork of the timing machinery
# happens inside one.  Needs what `make vm-check` needs, plus tests/qga,
# tests/negbench and awk.
#
# Knobs: BENCH_N (repetitions for latencies, default 50), BENCH_MB (MiB per
# throughput row, default 256), BENCH_KERNELS=current|legacy|both (default
# both, when the legacy kernel exists).

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
CACHE=${VM_CACHE:-$HERE/cache}
OUT=${BENCH_OUT:-$TOP/bench-results.txt}
N=${BENCH_N:-50}            # repetitions for latencies
MB=${BENCH_MB:-256}         # MiB for negotiator throughput
LEGACY=${VM_LEGACY_KERNEL:-$TOP/../shared/kernels/bzImage-2.6.35.6}
VM_DIR=$(mktemp -d "${TMPDIR:-/tmp}/negotiator-bench.XXXXXX") || exit 1
. "$HERE/lib.sh"
HOSTPID=""
cleanup() {
	[ -n "$HOSTPID" ] && kill "$HOSTPID" 2>/dev/null
	vm_stop_all
	[ -z "$KEEP" ] && rm -rf "$VM_DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
vm_watchdog

NB="$TOP/tests/negbench"
# stats FILE: "median p95" of the numbers in FILE (microseconds -> ms)
stats() { sort -n "$1" | awk '{ v[NR] = $1 } END {
	m = v[int((NR + 1) / 2)]; p = v[int(NR * 0.95 + 0.999)]; if (p == "") p = v[NR];
	printf "%.2f ms median, %.2f ms p95 (n=%d)", m / 1000, p / 1000, NR }'; }
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# rate BYTES MICROSECONDS -> MB/s
rate() { awk -v b="$1" -v us="$2" 'BEGIN { if (us > 0) printf "%.1f", b / us; else print 0 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "-" }'; }
row() { printf '%-58s %s\n' "$1" "$2" | tee -a "$OUT"; }
# timed FILE PROGRAM...: run it once under negbench; microseconds in FILE
timed() { f=$1; shift; : > "$f"; "$NB" run 1 "$f" "$@"; }

mkdir -p "$VM_DIR/ch" "$VM_DIR/hc"
printf '#!/bin/sh\nexec dd if=/dev/zero bs=32768 count=$((${1:-1} * 32)) 2>/dev/null\n' > "$VM_DIR/hc/zeros"
chmod 755 "$VM_DIR/hc/zeros"
HOST="$TOP/negotiator-host --channels-dir $VM_DIR/ch --control-socket $VM_DIR/host.sock"
QGA="$TOP/tests/qga $VM_DIR/ch/vm1.org.qemu.guest_agent.0"
RAW="$VM_DIR/ch/vm1.bench.raw.0"
bytes=$((MB * 1048576))
head -c "$bytes" /dev/zero > "$VM_DIR/in"
# 50 concurrent callers, 10 calls each, as one program to time
cat > "$VM_DIR/callers" <<EOS
pids=""; c=0
while [ \$c -lt 50 ]; do
	( k=0; while [ \$k -lt 10 ]; do $HOST -t 60 vm1 -e true || exit 1; k=\$((k + 1)); done ) 2>/dev/null &
	pids="\$pids \$!"; c=\$((c + 1))
done
fails=0; for p in \$pids; do wait "\$p" || fails=\$((fails + 1)); done
echo \$fails > "$VM_DIR/callers.failed"
EOS

# raw_out GUEST-COMMAND: MB/s of plain bytes through the raw port, guest to
# host, timed by the host's reader from the first byte to the last (it then
# leaves: QEMU serves one client per socket, the next test needs the port)
raw_out() {
	"$NB" recv "$RAW" "$bytes" > "$VM_DIR/rawres" 2>/dev/null &
	reader=$!
	sleep 0.5
	$HOST -t 300 vm1 -e "$1" > /dev/null 2>&1
	wait $reader
	set -- $(cat "$VM_DIR/rawres") 0 0
	if [ "$1" = "$bytes" ]; then rate "$bytes" "$2"; else echo 0; fi
}

# raw_in GUEST-COMMAND: MB/s of plain bytes host to guest, the host writing
# zeros into the raw port and the guest command reading them, timed in the
# guest by rawio from the first byte to the last (0 when it failed; why on
# stderr)
raw_in() {
	"$TOP/tests/poke" "$RAW" 120 < /dev/zero > /dev/null 2>&1 &
	writer=$!
	$HOST -t 300 vm1 -e "$1" > "$VM_DIR/rawin" 2>&1
	kill $writer 2>/dev/null; wait $writer 2>/dev/null
	set -- $(cat "$VM_DIR/rawin")
	if [ "$1" = "$bytes" ] && [ "${2:-0}" -gt 0 ]; then
		rate "$bytes" "$2"
	else
		echo "bench: $*" >&2
		echo 0
	fi
}

bench_kernel() {
VM_KERNEL=$1
VM_ACCEL_USED=$(vm_accel)
vm_start vm1 || { row "guest on $VM_KERNEL" "FAILED: QEMU did not start"; return 1; }
$HOST -d --commands-dir "$VM_DIR/hc" 2>"$VM_DIR/host.log" > /dev/null &
HOSTPID=$!
i=0
until $HOST -t 30 vm1 -e true 2>/dev/null; do
	i=$((i + 1))
	[ $i -gt 60 ] && { row "guest on $VM_KERNEL" "FAILED: no answer"; stop_guest; return 1; }
	sleep 0.5
done
KREL=$($HOST vm1 -e 'run uname -r' 2>/dev/null)
# qemu-ga: up, or (2.6.35 with Debian 12's glibc) it could not even start
QGA_OK=0
if ! $HOST vm1 -e 'run cat /tmp/qemu-ga.log' 2>/dev/null | grep -q "cannot stat shared object"; then
	i=0
	until QGA_TIMEOUT=5 $QGA ping 1 > /dev/null 2>&1; do i=$((i + 1)); [ $i -gt 20 ] && break; sleep 0.5; done
	[ $i -le 20 ] && QGA_OK=1
fi
NOQGA="n/a: qemu-ga (Debian 12's glibc) cannot start on $KREL"

IDLE=$($HOST vm1 -e 'rss negotiator-guest' 2>/dev/null | tr '\n' ' ')
QGA_IDLE=$($HOST vm1 -e 'rss qemu-ga' 2>/dev/null | tr '\n' ' ')
row "== guest kernel $KREL" "($VM_ACCEL_USED, $(date -u +%Y-%m-%dT%H:%MZ))"

# ---- latencies ---------------------------------------------------------------------------
: > "$VM_DIR/lat"
"$NB" run "$N" "$VM_DIR/lat" $HOST vm1 -e true
row "/bin/true round trip: negotiator-host -e true (whole CLI)" "$(stats "$VM_DIR/lat")"
NEG_TRUE=$(median "$VM_DIR/lat")
"$NB" "$VM_DIR/host.sock" vm1 "$N" true > "$VM_DIR/lat" 2>/dev/null
row "/bin/true round trip: negotiator, persistent client" "$(stats "$VM_DIR/lat")"
NEG_PERS=$(median "$VM_DIR/lat")
if [ $QGA_OK = 1 ]; then
	$QGA exec "$N" /bin/true > "$VM_DIR/lat" 2>/dev/null
	row "/bin/true round trip: qemu-ga guest-exec + exec-status" "$(stats "$VM_DIR/lat")"
	QGA_TRUE=$(median "$VM_DIR/lat")
	row "  negotiator / qemu-ga, both persistent (target: <= 50%)" "$(pct "$NEG_PERS" "$QGA_TRUE")"
	row "  negotiator CLI / qemu-ga persistent client" "$(pct "$NEG_TRUE" "$QGA_TRUE")"
else
	row "/bin/true round trip: qemu-ga guest-exec + exec-status" "$NOQGA"
fi
: > "$VM_DIR/lat2"
"$NB" run "$N" "$VM_DIR/lat2" $HOST vm1 --list-commands > /dev/null
row "--list-commands round trip (whole CLI)" "$(stats "$VM_DIR/lat2")"
if [ $QGA_OK = 1 ]; then
	$QGA ping "$N" > "$VM_DIR/lat" 2>/dev/null
	row "qemu-ga guest-ping round trip (persistent client)" "$(stats "$VM_DIR/lat")"
fi

# ---- throughput ----------------------------------------------------------------------------
RAW_OUT=$(raw_out "raw-out $MB")
row "raw channel guest->host ($MB MiB through bench.raw.0)" "$RAW_OUT MB/s"
RAW_PIPE=$(raw_out "raw-pipe $MB")
row "  the same fed through a pipe (dd | plain copier, no agent)" "$RAW_PIPE MB/s ($(pct "$RAW_PIPE" "$RAW_OUT") of raw)"
RAW_IN=$(raw_in "raw-in $MB")
row "raw channel host->guest ($MB MiB through bench.raw.0)" "$RAW_IN MB/s"
# the same into a pipe to dd: the limit for an agent that feeds a command
RAW_INPIPE=$(raw_in "raw-in-pipe $MB")
row "  the same into a pipe (plain copier | dd, no agent)" "$RAW_INPIPE MB/s ($(pct "$RAW_INPIPE" "$RAW_IN") of raw)"

timed "$VM_DIR/t" $HOST -t 0 vm1 -e "zeros $MB" > /dev/null
NEG_OUT=$(rate "$bytes" "$(cat "$VM_DIR/t")")
row "guest command output -> host, negotiator ($MB MiB, no cap)" "$NEG_OUT MB/s ($(pct "$NEG_OUT" "$RAW_OUT") of raw; target 80%)"
row "  negotiator / the same bytes through a pipe without agent" "$(pct "$NEG_OUT" "$RAW_PIPE")"
timed "$VM_DIR/t" $HOST -t 0 vm1 -e sink < "$VM_DIR/in"
NEG_IN=$(rate "$bytes" "$(cat "$VM_DIR/t")")
row "stdin -> guest command, negotiator ($MB MiB)" "$NEG_IN MB/s ($(pct "$NEG_IN" "$RAW_IN") of raw; target 80%)"
row "  negotiator / the same bytes into a pipe without agent" "$(pct "$NEG_IN" "$RAW_INPIPE")"
timed "$VM_DIR/t" $HOST -t 0 vm1 -e "host-out $MB" > /dev/null
NEG_HOUT=$(rate "$bytes" "$(cat "$VM_DIR/t")")
row "host command output -> guest, negotiator ($MB MiB)" "$NEG_HOUT MB/s ($(pct "$NEG_HOUT" "$RAW_IN") of raw h->g; target 70%)"
row "  negotiator / the same bytes into a pipe without agent" "$(pct "$NEG_HOUT" "$RAW_INPIPE")"
# a small call while a stream runs on the same link: it must not starve
$HOST -t 0 vm1 -e "zeros 65536" > /dev/null 2>&1 &
streamer=$!
sleep 1
: > "$VM_DIR/lat3"
"$NB" run "$N" "$VM_DIR/lat3" $HOST vm1 -e true
kill "$streamer" 2>/dev/null; wait "$streamer" 2>/dev/null
row "/bin/true round trip while a stream runs guest->host" "$(stats "$VM_DIR/lat3") ($(awk -v a="$(median "$VM_DIR/lat3")" -v b="$NEG_TRUE" 'BEGIN { printf "%.1fx", a / b }') idle; target < 3x)"
if [ $QGA_OK = 1 ]; then
	# 32 MiB asked: qemu-ga keeps the first 16 MiB and says truncated=1
	$QGA output /bin/sh -c 'head -c 33554432 /dev/zero' > "$VM_DIR/qout" 2>&1
	QGA_OUT=$(sed -n 's/^bytes=\([0-9]*\) seconds=\([0-9.]*\) .*/\1 \2/p' "$VM_DIR/qout" |
		awk '{ if ($2 > 0) printf "%.1f MB/s, %d bytes returned", $1 / $2 / 1e6, $1 }')
	row "guest command output -> host, qemu-ga (32 MiB asked)" "${QGA_OUT:-failed}; $(sed 's/^bytes=[0-9]* //' "$VM_DIR/qout")"
	QGA_HWM=$($HOST vm1 -e 'rss qemu-ga' 2>/dev/null | tr '\n' ' ')
else
	row "guest command output -> host, qemu-ga" "$NOQGA"
fi

# ---- memory, sizes, concurrency ------------------------------------------------------------
row "guest daemon memory idle (static musl; target < 1 MiB)" "$IDLE"
row "guest daemon peak, VmHWM after the transfers (< 2 MiB)" "$($HOST vm1 -e 'rss negotiator-guest' 2>/dev/null | tr '\n' ' ')"
if [ $QGA_OK = 1 ]; then
	row "qemu-ga memory idle" "$QGA_IDLE"
	row "qemu-ga peak, VmHWM after its 16 MiB output" "$QGA_HWM"
fi
row "binary sizes" "negotiator-guest (static, in guest) $(wc -c < "$CACHE/build/negotiator-guest") B; negotiator-host $(wc -c < "$TOP/negotiator-host") B; qemu-ga $(wc -c < "$CACHE/qga/usr/sbin/qemu-ga") B + glib etc."
timed "$VM_DIR/t" sh "$VM_DIR/callers"
row "calls per second, 50 concurrent callers x 10 (-e true)" "$(awk -v us="$(cat "$VM_DIR/t")" 'BEGIN { printf "%.0f calls/s", 500 * 1e6 / us }') ($(cat "$VM_DIR/callers.failed") callers failed)"
stop_guest
}

stop_guest() {
	kill "$HOSTPID" 2>/dev/null; wait "$HOSTPID" 2>/dev/null; HOSTPID=""
	vm_stop vm1
	rm -f "$VM_DIR"/ch/*
}

: > "$OUT"
row "negotiator vs qemu-ga, same guest, same run" ""
row "------------------------------------------" ""
K=$CACHE/vmlinux
[ -s "$K" ] || K=$CACHE/vmlinuz
rc=0
case ${BENCH_KERNELS:-both} in current|both) bench_kernel "$K" || rc=1 ;; esac
case ${BENCH_KERNELS:-both} in legacy|both)
	if [ -s "$LEGACY" ]; then
		bench_kernel "$LEGACY" || rc=1
	else
		row "== legacy guest kernel" "none at $LEGACY (set VM_LEGACY_KERNEL=PATH)"
	fi ;;
esac
echo "(written to $OUT)"
exit $rc
