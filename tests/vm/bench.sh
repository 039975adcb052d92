#!/bin/sh
#
# tests/vm/bench.sh: `make bench`.  negotiator against qemu-ga in the same
# real QEMU guest, in the same run.  Prints a table and writes it to
# bench-results.txt (or $BENCH_OUT).  Medians and 95th percentiles of
# repeated runs where it applies.  Needs what `make vm-check` needs, plus
# tests/qga (a small qemu-ga JSON client) and awk.

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
CACHE=${VM_CACHE:-$HERE/cache}
OUT=${BENCH_OUT:-$TOP/bench-results.txt}
N=${BENCH_N:-50}            # repetitions for latencies
MB=${BENCH_MB:-256}         # MiB for negotiator throughput
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

now_us() { echo $(( $(date +%s%N) / 1000 )); }
# stats FILE: "median p95" of the numbers in FILE (microseconds -> ms)
stats() { sort -n "$1" | awk '{ v[NR] = $1 } END {
	m = v[int((NR + 1) / 2)]; p = v[int(NR * 0.95 + 0.999)]; if (p == "") p = v[NR];
	printf "%.2f ms median, %.2f ms p95 (n=%d)", m / 1000, p / 1000, NR }'; }
# rate BYTES MICROSECONDS -> MB/s
rate() { awk -v b="$1" -v us="$2" 'BEGIN { printf "%.1f", b / us }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "-" }'; }
row() { printf '%-58s %s\n' "$1" "$2" | tee -a "$OUT"; }
# time_cmd CMD...: microseconds taken
time_cmd() { t0=$(now_us); "$@"; t1=$(now_us); echo $((t1 - t0)); }

mkdir -p "$VM_DIR/ch" "$VM_DIR/hc"
printf '#!/bin/sh\nexec dd if=/dev/zero bs=32768 count=$((${1:-1} * 32)) 2>/dev/null\n' > "$VM_DIR/hc/zeros"
chmod 755 "$VM_DIR/hc/zeros"
HOST="$TOP/negotiator-host --channels-dir $VM_DIR/ch --control-socket $VM_DIR/host.sock"
QGA="$TOP/tests/qga $VM_DIR/ch/vm1.org.qemu.guest_agent.0"
RAW="$VM_DIR/ch/vm1.bench.raw.0"

VM_ACCEL_USED=$(vm_accel)
vm_start vm1 || exit 1
$HOST -d --commands-dir "$VM_DIR/hc" 2>"$VM_DIR/host.log" &
HOSTPID=$!
i=0
until $HOST -t 30 vm1 -e true 2>/dev/null; do i=$((i + 1)); [ $i -gt 60 ] && exit 1; sleep 0.5; done
until $QGA ping 1 > /dev/null 2>&1; do i=$((i + 1)); [ $i -gt 120 ] && break; sleep 0.5; done

: > "$OUT"
IDLE=$($HOST vm1 -e 'rss negotiator-guest' 2>/dev/null | tr '\n' ' ')
QGA_IDLE=$($HOST vm1 -e 'rss qemu-ga' 2>/dev/null | tr '\n' ' ')
row "negotiator vs qemu-ga, same guest, same run" "($VM_ACCEL_USED, $(date -u +%Y-%m-%dT%H:%MZ))"
row "------------------------------------------" ""

# ---- latencies ---------------------------------------------------------------------------
: > "$VM_DIR/lat"
i=0; while [ $i -lt "$N" ]; do time_cmd $HOST vm1 -e true >> "$VM_DIR/lat"; i=$((i + 1)); done
row "/bin/true round trip: negotiator-host -e true (whole CLI)" "$(stats "$VM_DIR/lat")"
NEG_TRUE=$(sort -n "$VM_DIR/lat" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
$QGA exec "$N" /bin/true > "$VM_DIR/lat" 2>/dev/null
row "/bin/true round trip: qemu-ga guest-exec + exec-status" "$(stats "$VM_DIR/lat")"
QGA_TRUE=$(sort -n "$VM_DIR/lat" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
"$TOP/tests/negbench" "$VM_DIR/host.sock" vm1 "$N" true > "$VM_DIR/lat" 2>/dev/null
row "/bin/true round trip: negotiator, persistent client" "$(stats "$VM_DIR/lat")"
NEG_PERS=$(sort -n "$VM_DIR/lat" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
row "  negotiator / qemu-ga, both persistent (target: <= 50%)" "$(pct "$NEG_PERS" "$QGA_TRUE")"
row "  negotiator CLI / qemu-ga persistent client" "$(pct "$NEG_TRUE" "$QGA_TRUE")"
i=0; : > "$VM_DIR/lat2"
while [ $i -lt "$N" ]; do
	t0=$(now_us); $HOST vm1 --list-commands > /dev/null; t1=$(now_us); echo $((t1 - t0)) >> "$VM_DIR/lat2"
	i=$((i + 1))
done
row "--list-commands round trip (whole CLI)" "$(stats "$VM_DIR/lat2")"
$QGA ping "$N" > "$VM_DIR/lat" 2>/dev/null
row "qemu-ga guest-ping round trip (persistent client)" "$(stats "$VM_DIR/lat")"

# ---- throughput ----------------------------------------------------------------------------
bytes=$((MB * 1048576))
# the physical limit: plain bytes through a port of the same guest, no agent.
# raw_out GUEST-COMMAND: MB/s until the host has every byte (its reader then
# leaves: QEMU serves one client per socket, the next test needs the port)
raw_out() {
	rm -f "$VM_DIR/rawdone" "$VM_DIR/rawfifo"
	mkfifo "$VM_DIR/rawfifo"
	"$TOP/tests/poke" "$RAW" 120 < /dev/null > "$VM_DIR/rawfifo" 2>/dev/null &
	reader=$!
	{ head -c "$bytes" > /dev/null; now_us > "$VM_DIR/rawdone"; } < "$VM_DIR/rawfifo" &
	sleep 0.5
	t0=$(now_us)
	$HOST -t 300 vm1 -e "$1" > /dev/null 2>&1
	i=0
	while [ ! -s "$VM_DIR/rawdone" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
	kill $reader 2>/dev/null
	wait $reader 2>/dev/null
	if [ -s "$VM_DIR/rawdone" ]; then rate "$bytes" $(($(cat "$VM_DIR/rawdone") - t0)); else echo 0; fi
}
RAW_OUT=$(raw_out "raw-out $MB")
row "raw channel guest->host ($MB MiB through bench.raw.0)" "$RAW_OUT MB/s"
RAW_PIPE=$(raw_out "raw-pipe $MB")
row "  the same fed through a pipe (dd | plain copier, no agent)" "$RAW_PIPE MB/s ($(pct "$RAW_PIPE" "$RAW_OUT") of raw)"
"$TOP/tests/poke" "$RAW" 120 < /dev/zero > /dev/null 2>&1 &
writer=$!
$HOST -t 300 vm1 -e "raw-in $MB" > "$VM_DIR/rawin" 2>&1
kill $writer 2>/dev/null; wait $writer 2>/dev/null
# timed in the guest by rawio, from the first byte to the last
set -- $(cat "$VM_DIR/rawin")
if [ "$1" = "$bytes" ] && [ "${2:-0}" -gt 0 ]; then
	RAW_IN=$(rate "$bytes" "$2")
	row "raw channel host->guest ($MB MiB through bench.raw.0)" "$RAW_IN MB/s"
else
	RAW_IN=0
	row "raw channel host->guest ($MB MiB through bench.raw.0)" "FAILED ($*)"
fi

us=$(time_cmd sh -c "$HOST -t 0 vm1 -e 'zeros $MB' > /dev/null")
NEG_OUT=$(rate "$bytes" "$us")
row "guest command output -> host, negotiator ($MB MiB, no cap)" "$NEG_OUT MB/s ($(pct "$NEG_OUT" "$RAW_OUT") of raw; target 80%)"
row "  negotiator / the same bytes through a pipe without agent" "$(pct "$NEG_OUT" "$RAW_PIPE")"
head -c "$bytes" /dev/zero > "$VM_DIR/in"
us=$(time_cmd sh -c "$HOST -t 0 vm1 -e sink < '$VM_DIR/in'")
NEG_IN=$(rate "$bytes" "$us")
row "stdin -> guest command, negotiator ($MB MiB)" "$NEG_IN MB/s ($(pct "$NEG_IN" "$RAW_IN") of raw)"
us=$(time_cmd sh -c "$HOST -t 0 vm1 -e 'host-out $MB' > /dev/null")
NEG_HOUT=$(rate "$bytes" "$us")
row "host command output -> guest, negotiator ($MB MiB)" "$NEG_HOUT MB/s ($(pct "$NEG_HOUT" "$RAW_IN") of raw h->g)"
# 32 MiB asked: qemu-ga keeps the first 16 MiB and says truncated=1
$QGA output /bin/sh -c 'head -c 33554432 /dev/zero' > "$VM_DIR/qout" 2>&1
QGA_OUT=$(sed -n 's/^bytes=\([0-9]*\) seconds=\([0-9.]*\) .*/\1 \2/p' "$VM_DIR/qout" |
	awk '{ if ($2 > 0) printf "%.1f MB/s, %d bytes returned", $1 / $2 / 1e6, $1 }')
row "guest command output -> host, qemu-ga (32 MiB asked)" "${QGA_OUT:-failed}; $(sed 's/^bytes=[0-9]* //' "$VM_DIR/qout")"
QGA_HWM=$($HOST vm1 -e 'rss qemu-ga' 2>/dev/null | tr '\n' ' ')

# ---- memory, sizes, concurrency ------------------------------------------------------------
row "guest daemon memory idle (static musl; target < 1 MiB)" "$IDLE"
row "guest daemon peak, VmHWM after the transfers (< 2 MiB)" "$($HOST vm1 -e 'rss negotiator-guest' 2>/dev/null | tr '\n' ' ')"
row "qemu-ga memory idle" "$QGA_IDLE"
row "qemu-ga peak, VmHWM after its 16 MiB output" "$QGA_HWM"
row "binary sizes" "negotiator-guest (static, in guest) $(wc -c < "$CACHE/build/negotiator-guest") B; negotiator-host $(wc -c < "$TOP/negotiator-host") B; qemu-ga $(wc -c < "$CACHE/qga/usr/sbin/qemu-ga") B + glib etc."
t0=$(now_us)
pids=""
c=0
while [ $c -lt 50 ]; do
	( k=0; while [ $k -lt 10 ]; do $HOST -t 60 vm1 -e true || exit 1; k=$((k + 1)); done ) 2>/dev/null &
	pids="$pids $!"
	c=$((c + 1))
done
fails=0
for p in $pids; do wait "$p" || fails=$((fails + 1)); done
t1=$(now_us)
row "calls per second, 50 concurrent callers x 10 (-e true)" "$(awk -v us=$((t1 - t0)) 'BEGIN { printf "%.0f calls/s", 500 * 1e6 / us }') ($fails callers failed)"
echo "(written to $OUT)"
