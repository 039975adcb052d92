#!/bin/sh
#
# tests/vm/profile.sh: `make profile`.  Where the time of a stream goes, for
# the three paths of make bench, in the real test guest (one kernel:
# PROFILE_KERNEL=current|legacy, default current), PROFILE_MB MiB each
# (default 256).  Per MiB moved:
#   - CPU (ms) of the host daemon, of the host client, of the guest daemon
#     and of what else ran in the guest for the path (the command or the
#     guest client: its shell's cutime), from /proc (clock ticks: 10 ms);
#   - context switches of both daemons (voluntary + involuntary);
#   - the guest daemon's read() and write() system calls (/proc/PID/io);
#   - in a second, separate run under strace -c -f (strace slows what it
#     watches, so its run is not timed): the host daemon's and the host
#     client's system calls, the five most frequent of each; and where the
#     guest can run strace (VM_STRACE=1 tests/vm/build.sh, current kernel),
#     the guest daemon's, and apart those of what it started for the path.
# Then the same for the channel without an agent (raw port, plain copiers),
# with the whole guest's CPU per MiB and how busy its vCPU was, for each.
# Prints a block per path.  Needs what make bench needs, and strace.

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
CACHE=${VM_CACHE:-$HERE/cache}
MB=${PROFILE_MB:-256}
LEGACY=${VM_LEGACY_KERNEL:-$TOP/../shared/kernels/bzImage-2.6.35.6}
VM_DIR=$(mktemp -d "${TMPDIR:-/tmp}/negotiator-profile.XXXXXX") || exit 1
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

case ${PROFILE_KERNEL:-current} in
legacy) VM_KERNEL=$LEGACY ;;
*) VM_KERNEL=$CACHE/vmlinux; [ -s "$VM_KERNEL" ] || VM_KERNEL=$CACHE/vmlinuz ;;
esac
mkdir -p "$VM_DIR/ch" "$VM_DIR/hc"
printf '#!/bin/sh\nexec dd if=/dev/zero bs=32768 count=$((${1:-1} * 32)) 2>/dev/null\n' > "$VM_DIR/hc/zeros"
chmod 755 "$VM_DIR/hc/zeros"
HOST="$TOP/negotiator-host --channels-dir $VM_DIR/ch --control-socket $VM_DIR/host.sock"
NB="$TOP/tests/negbench"
bytes=$((MB * 1048576))
head -c "$bytes" /dev/zero > "$VM_DIR/in"

VM_ACCEL_USED=$(vm_accel)
VM_APPEND=negotiator.verbose   # the guest daemon at -v: its per-call figures
vm_start vm1 || { echo "QEMU did not start"; exit 1; }
$HOST -d -v --no-policy --commands-dir "$VM_DIR/hc" 2>"$VM_DIR/host.log" > /dev/null &
HOSTPID=$!
i=0
until $HOST -t 30 vm1 -e true 2>/dev/null; do
	i=$((i + 1)); [ $i -gt 60 ] && { echo "the guest does not answer"; exit 1; }; sleep 0.5
done
echo "# guest kernel $($HOST vm1 -e 'run uname -r' 2>/dev/null) ($VM_ACCEL_USED), $MB MiB per path"

# host daemon: "ticks vcs nvcs"
hstat() {
	set -- $(sed 's/^.*) //' "/proc/$HOSTPID/stat")
	echo "$((${12} + ${13})) $(sed -n 's/^voluntary_ctxt_switches:[[:space:]]*//p' "/proc/$HOSTPID/status") $(sed -n 's/^nonvoluntary_ctxt_switches:[[:space:]]*//p' "/proc/$HOSTPID/status")"
}
# guest daemon: "ticks vcs nvcs syscr syscw", the whole guest's "busy idle",
# then the daemon's user ticks
gstat() { $HOST vm1 -e pstat 2>/dev/null | sed 's/[a-z]*=//g'; }
# guest_busy GSTAT-BEFORE GSTAT-AFTER (8 fields each): the whole guest's CPU
# per MiB and how busy its one vCPU was (the limit when near 100%)
guest_busy() {
	awk -v b0="$6" -v i0="$7" -v b1="${14}" -v i1="${15}" -v mb="$MB" 'BEGIN {
		b = b1 - b0; t = b + i1 - i0
		printf "CPU %.1f ms/MiB, vCPU %.0f%% busy\n", b * 10 / mb, (t > 0 ? 100 * b / t : 0) }'
}
per() { awk -v a="$1" -v b="$2" -v mb="$MB" -v k="${3:-1}" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.1f", (b - a) * k / mb }'; }
# client CPU: a shell that waited for it has it in its cutime+cstime
cpu_of() { sh -c '"$@"; set -- $(sed "s/^.*) //" /proc/$$/stat); echo $((${14} + ${15})) > '"$VM_DIR/cl"'' sh "$@"; }

profile() { # LABEL GUEST-SIDE-NOTE STDIN STDOUT CLIENT-ARGS...
	label=$1 note=$2 pin=$3 pout=$4; shift 4
	h0=$(hstat); g0=$(gstat)
	: > "$VM_DIR/t"
	cpu_of "$NB" run 1 "$VM_DIR/t" "$@" -v < "$pin" > "$pout" 2> "$VM_DIR/client.err"
	h1=$(hstat); g1=$(gstat)
	us=$(cat "$VM_DIR/t")
	set -- $h0 $h1; hcpu=$(per "$1" "$4" 10); hcs=$(per $(($2 + $3)) $(($5 + $6)))
	set -- $g0 $g1; gcpu=$(per "$1" "$9" 10); gcs=$(per $(($2 + $3)) $((${10} + ${11})))
	gsys=$(per $(($4 + $5)) $((${12} + ${13}))); guser=$(per "$8" "${16}" 10)
	echo "== $label: $(awk -v b="$bytes" -v us="$us" 'BEGIN { printf "%.1f MB/s", b / us }')"
	echo "   CPU ms/MiB: host daemon $hcpu, host client $(per 0 "$(cat "$VM_DIR/cl")" 10), guest daemon $gcpu (user $guser; $note)"
	echo "   the whole guest: $(guest_busy $g0 $g1)"
	echo "   context switches/MiB: host daemon $hcs, guest daemon $gcs"
	echo "   guest daemon read+write calls/MiB: $gsys"
	# where the stream waited: the side that ran the command counts the
	# pauses of its reading (window full: acks late; queue full: the
	# channel or the reader is slower), the client those of its stdin
	big='output [0-9][0-9][0-9][0-9][0-9][0-9][0-9]* bytes'
	w=$(grep "$big" "$VM_DIR/host.log" | tail -n 1 | sed 's/^.*finished ([a-z]* [0-9]*); //')
	[ -n "$w" ] && [ "$w" != "$lasthost" ] && echo "   host daemon, the command's $w" && lasthost=$w
	w=$($HOST vm1 -e 'run cat /tmp/negotiator-guest.log' 2>/dev/null | grep "$big" | tail -n 1 |
		sed 's/^.*finished ([a-z]* [0-9]*); //')
	[ -n "$w" ] && [ "$w" != "$lastguest" ] && echo "   guest daemon, the command's $w" && lastguest=$w
	grep "stdin: " "$VM_DIR/client.err" | sed 's/^[^:]*: /   host client /'
}
# strace_run LABEL CLIENT-ARGS...: system calls per MiB of the host daemon and the client
strace_run() { # STDIN STDOUT CLIENT-ARGS...
	pin=$1 pout=$2; shift 2
	[ $GSTRACE = 1 ] && $HOST vm1 -e "gstrace start" 2>/dev/null
	strace -c -f -q -p "$HOSTPID" -o "$VM_DIR/st.d" &
	sp=$!
	sleep 0.5
	strace -c -f -q -o "$VM_DIR/st.c" "$@" < "$pin" > "$pout"
	kill -INT "$sp"; wait "$sp" 2>/dev/null
	[ $GSTRACE = 1 ] && $HOST vm1 -e "gstrace stop $MB" 2>/dev/null |
		sed 's/^\([a-z]*\) \([0-9]*\):/   guest \1 syscalls\/MiB (strace -f): \2;/; s/guest children/guest command or client/'
	for w in d c; do
		[ $w = d ] && who="host daemon" || who="host client"
		awk -v mb="$MB" -v who="$who" '$NF ~ /^[a-z_0-9]+$/ && $1 ~ /^[0-9.]+$/ && $NF != "total" {
			calls = ($5 ~ /^[0-9]+$/ && NF == 6) ? $4 : $4; n[$NF] = calls; t += calls }
			END { printf "   %s syscalls/MiB (strace): %.0f;", who, t / mb;
			      k = 0; while (k < 5) { best = ""; for (s in n) if (best == "" || n[s] > n[best]) best = s;
			      if (best == "") break; printf " %s %.0f", best, n[best] / mb; delete n[best]; k++ } print "" }' \
			"$VM_DIR/st.$w"
	done
}

# raw_profile LABEL DIRECTION GUEST-COMMAND: the channel without an agent,
# for comparison: the rate, the whole guest's CPU per MiB, how busy it was
RAW="$VM_DIR/ch/vm1.bench.raw.0"
raw_profile() {
	g0=$(gstat)
	if [ "$2" = in ]; then
		"$TOP/tests/poke" "$RAW" 120 < /dev/zero > /dev/null 2>&1 &
		writer=$!
		set -- "$1" $($HOST -t 300 vm1 -e "$3" 2>&1)
		kill $writer 2>/dev/null; wait $writer 2>/dev/null
	else
		"$NB" recv "$RAW" "$bytes" > "$VM_DIR/rawres" 2>/dev/null &
		reader=$!
		sleep 0.5
		$HOST -t 300 vm1 -e "$3" > /dev/null 2>&1
		wait $reader
		set -- "$1" $(cat "$VM_DIR/rawres")
	fi
	g1=$(gstat)
	if [ "$2" = "$bytes" ] && [ "${3:-0}" -gt 0 ]; then
		echo "== $1: $(awk -v b="$bytes" -v us="$3" 'BEGIN { printf "%.1f MB/s", b / us }')"
		echo "   the whole guest: $(guest_busy $g0 $g1)"
	else
		echo "== $1: failed ($2 $3)"
	fi
}

raw_profile "raw channel guest->host (no agent)" out "raw-out $MB"
raw_profile "  the same fed through a pipe (dd | plain copier)" out "raw-pipe $MB"
raw_profile "raw channel host->guest (no agent)" in "raw-in $MB"
raw_profile "  the same into a pipe (plain copier | dd)" in "raw-in-pipe $MB"
# strace in the guest too, where it runs (Debian's strace needs a newer
# kernel than 2.6.35)
GSTRACE=0
$HOST vm1 -e 'run strace -V' > /dev/null 2>&1 && GSTRACE=1
Z=/dev/null
profile "guest command output -> host" "+ dd in the guest" $Z $Z $HOST -t 0 vm1 -e "zeros $MB"
profile "stdin -> guest command" "+ dd in the guest" "$VM_DIR/in" $Z $HOST -t 0 vm1 -e sink
profile "host command output -> guest" "+ the guest client" $Z $Z $HOST -t 0 vm1 -e "host-out $MB"
profile "  the same, the guest client's stdout a pipe to dd" "+ the guest client and dd" $Z $Z \
	$HOST -t 0 vm1 -e "host-out-pipe $MB"
# the strace runs last: a traced process in the guest stays slower for a
# while after strace has left it, which would skew the timed runs after it
echo "== system calls per MiB, in separate runs under strace (not timed)"
echo "-- guest command output -> host"
strace_run $Z $Z $HOST -t 0 vm1 -e "zeros $MB"
echo "-- stdin -> guest command"
strace_run "$VM_DIR/in" $Z $HOST -t 0 vm1 -e sink
echo "-- host command output -> guest"
strace_run $Z $Z $HOST -t 0 vm1 -e "host-out $MB"
echo "-- the same, the guest client's stdout a pipe to dd"
strace_run $Z $Z $HOST -t 0 vm1 -e "host-out-pipe $MB"
