#!/bin/sh
#
# tests/bench-standin.sh: the first part of `make bench`, no QEMU needed.
# What a new stream costs over the stand-in (tests/standin): the guest CLI
# without a daemon opens the guest-to-host channel for each call, so each
# call is a probe, its answer (PROTOCOL, "Channels: the probe"), then the
# call itself; toward our host daemon (native from the probe's answer on)
# and toward python's host daemon (tests/pypeer: python mode, the request
# is JSON).  The probe replaced hello/sync: a native stream's start is the
# same one round trip as before.  Prints one table and appends it to
# $BENCH_OUT (default bench-results.txt).
# Then output throughput over the stand-in: a guest command's output through
# a guest daemon, the stand-in, the host daemon and the host CLI into
# /dev/null, against `head -c SIZE /dev/zero | cat > /dev/null` in the same
# run (target: at least 0.9 of the pipe; best of BENCH_RUNS runs each, so
# that a run disturbed by something else on the machine does not decide).
# Knobs: BENCH_N (calls per row, default 50), BENCH_MB (MiB per throughput
# run, default 256), BENCH_RUNS (throughput runs, default 3).

B=$(cd "${1:-.}" && pwd)
N=${BENCH_N:-50}
MB=${BENCH_MB:-256}
RUNS=${BENCH_RUNS:-3}
OUT=${BENCH_OUT:-$B/bench-results.txt}
T=$(mktemp -d "${TMPDIR:-/tmp}/negotiator-sbench.XXXXXX") || exit 1
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for f in "$T"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
	sleep 0.2
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
wait_until() {
	n=0
	while ! "$@" >/dev/null 2>&1; do
		n=$((n + 1)); [ $n -gt 150 ] && return 1; sleep 0.1
	done
}
stats() { sort -n "$1" | awk '{ v[NR] = $1 } END {
	m = v[int((NR + 1) / 2)]; p = v[int(NR * 0.95 + 0.999)]; if (p == "") p = v[NR];
	printf "%.2f ms median, %.2f ms p95 (n=%d)", m / 1000, p / 1000, NR }'; }

mkdir -p "$T/ch" "$T/pych" "$T/g1" "$T/g2" "$T/g3" "$T/hc" "$T/gc"
printf '#!/bin/sh\nexit 0\n' > "$T/hc/true"
printf '#!/bin/sh\nexec head -c "$1" /dev/zero\n' > "$T/gc/zeros"
chmod 755 "$T/hc/true" "$T/gc/zeros"
standin() { # NAME CHANNELDIR GUESTDIR
	"$B/tests/standin" --pidfile "$T/standin-$1.pid" "$2" "$1" "$3" 2>/dev/null &
	wait_until test -s "$T/standin-$1.pid"
}
standin vm1 "$T/ch" "$T/g1"          # our host daemon
standin vm2 "$T/pych" "$T/g2"        # the python host daemon (tests/pypeer)
standin vm3 "$T/ch" "$T/g3"          # a guest daemon, for throughput
"$B/negotiator-host" -d --no-policy --scan-interval 1 --channels-dir "$T/ch" --control-socket "$T/host.sock" \
	--commands-dir "$T/hc" 2>/dev/null &
PIDS="$PIDS $!"
"$B/tests/pypeer" serve "$T/pych/vm2.negotiator-guest-to-host.0" --commands "$T/hc" \
	--guest vm2 2>/dev/null &
PIDS="$PIDS $!"
"$B/negotiator-guest" -d --control-socket "$T/guest.sock" --commands-dir "$T/gc" \
	--host-to-guest "unix:$T/g3/negotiator-host-to-guest.0" \
	--guest-to-host "unix:$T/g3/negotiator-guest-to-host.0" 2>/dev/null &
PIDS="$PIDS $!"
HOST="$B/negotiator-host --control-socket $T/host.sock"
DIRECT="$B/negotiator-guest --control-socket $T/none.sock -c unix:$T/g1/negotiator-guest-to-host.0"
PYDIRECT="$B/negotiator-guest --control-socket $T/none.sock -c unix:$T/g2/negotiator-guest-to-host.0"
wait_until $DIRECT -e true || { echo "bench-standin: the host daemon does not answer"; exit 1; }
wait_until $PYDIRECT -e true || { echo "bench-standin: the python peer does not answer"; exit 1; }
wait_until $HOST vm3 -e 'zeros 1' || { echo "bench-standin: the guest daemon does not answer"; exit 1; }

row() { # LABEL FILE
	printf '%-44s %s\n' "$1" "$(stats "$2")"
}
NB="$B/tests/negbench"
$NB run "$N" "$T/direct.us" $DIRECT -e true || exit 1
$NB run "$N" "$T/py.us" $PYDIRECT -e true || exit 1

# best MB/s of RUNS runs of PROGRAM... (its output goes to /dev/null)
bytes=$((MB * 1048576))
best_rate() {
	: > "$T/tp.us"
	k=0
	while [ $k -lt "$RUNS" ]; do
		$NB run 1 "$T/tp.us" "$@" > /dev/null || return 1
		k=$((k + 1))
	done
	sort -n "$T/tp.us" | awk -v b="$bytes" 'NR == 1 { if ($1 > 0) printf "%.1f", b / $1 }'
}
NEG_OUT=$(best_rate $HOST -t 0 vm3 -e "zeros $bytes") || NEG_OUT=
PIPE_OUT=$(best_rate sh -c "head -c $bytes /dev/zero | cat > /dev/null") || PIPE_OUT=
if [ -n "$NEG_OUT" ] && [ -n "$PIPE_OUT" ]; then
	RATIO=$(awk -v a="$NEG_OUT" -v b="$PIPE_OUT" 'BEGIN { printf "%.2f", a / b }')
	VERDICT=$(awk -v r="$RATIO" 'BEGIN { print (r >= 0.9 ? "PASS" : "MISS") }')
	TP="$NEG_OUT MB/s, pipe $PIPE_OUT MB/s: $RATIO of the pipe (target >= 0.9: $VERDICT)"
else
	TP="FAILED (negotiator: ${NEG_OUT:-failed}, pipe: ${PIPE_OUT:-failed})"
fi
{
	echo "a new stream's start over the stand-in (no QEMU): guest CLI, 'true' on the host"
	echo "--------------------------------------------------------------------------------"
	row "direct guest CLI, new stream -> our host" "$T/direct.us"
	row "direct guest CLI, new stream -> python host" "$T/py.us"
	printf '%-44s %s\n' "guest output -> host CLI ($MB MiB, best of $RUNS)" "$TP"
} | tee -a "$OUT"
[ -n "$NEG_OUT" ] && [ -n "$PIPE_OUT" ]
