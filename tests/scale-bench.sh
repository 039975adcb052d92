#!/bin/sh
#
# tests/scale-bench.sh: `make scale-bench`.  One host daemon against N
# stand-in guests, for each N in SCALE_N: tests/scaleguests plays QEMU's
# two sockets and a guest daemon for all N guests in one process (exec is
# answered at once with exit 0, nothing runs), so that what is measured is
# the host daemon.  No QEMU needed.
#
# For each N, and for each event loop backend the daemon offers
# (--event-loop=epoll|select; only its default when it has no such option),
# it prints:
#   - the same against one real guest daemon behind tests/standin (guest
#     "real", running /bin/true): the CLI-vs-persistent targets are taken
#     there, where a call is a real call;
#   - daemon CPU per call: one-shot CLI calls (negotiator-host -e true GUEST,
#     guests taken in turn) and the same count through one persistent
#     client (tests/negbench); the daemon's run time from
#     /proc/PID/schedstat (nanoseconds), or utime+stime from /proc/PID/stat
#     where there is no schedstat;
#   - wall time per call, medians, each call timed by tests/negbench from
#     fork to exit (CLI) or from request to exit frame (persistent);
#   - the CLI's own start-up (--version), dynamic and `make static`
#     (static/negotiator-host, built when missing), and a static CLI call;
#   - daemon RSS (VmRSS) after an idle window, and per guest: what a guest
#     more costs, (RSS(N) - RSS(smallest N)) / (N - smallest N), so that
#     what calls left in the heap does not count; at the smallest N, over
#     the same daemon on an empty channel directory;
#   - idle CPU: the daemon's utime+stime ticks over SCALE_IDLE_S seconds
#     without calls, as ticks per 10 s (periodic rescans included); the
#     daemons of every backend of one N idle at the same time;
#   - at the largest N, `negotiator-host --all -e true` wall time when the
#     CLI has --all.
# Then each target with PASS/MISS.  A MISS is reported, not an error; the
# exit status is 1 only when something failed to run.  One table, appended
# to $BENCH_OUT (default bench-results.txt).
#
# RLIMIT_NOFILE is raised to the hard limit; an N that does not fit (the
# stand-ins hold 4 descriptors per guest, the daemon 2) is skipped with a
# one-line error and counted as a miss.
#
# Knobs: SCALE_N (guest counts, default "10 100 500 1000"), SCALE_CALLS
# (calls per measure, default 200), SCALE_IDLE_S (idle window in seconds,
# default 30), BENCH_OUT.  Defaults take about 3 minutes on 2 cores.

B=$(cd "${1:-.}" && pwd)
NS=${SCALE_N:-10 100 500 1000}
M=${SCALE_CALLS:-200}
IDLE=${SCALE_IDLE_S:-30}
OUT=${BENCH_OUT:-$B/bench-results.txt}
HZ=$(getconf CLK_TCK 2>/dev/null) || HZ=100
NB=$B/tests/negbench
SG=$B/tests/scaleguests
HOSTBIN=$B/negotiator-host
START=$(date +%s)
ERRORS=0
MISSES=0
CHECKS=0
T=$(mktemp -d "${TMPDIR:-/tmp}/negotiator-scale.XXXXXX") || exit 1
mkdir -p "$T/r"

cleanup() {
	for f in "$T"/*/host.pid "$T"/*/sg.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	sleep 0.3
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

say() { echo "scale-bench: $*" >&2; }
err() { say "$*"; ERRORS=$((ERRORS + 1)); }
for f in "$HOSTBIN" "$NB" "$SG"; do
	[ -x "$f" ] || { say "$f is missing (make all tests/negbench tests/scaleguests)"; exit 1; }
done
[ -r /proc/self/stat ] || { say "needs /proc (per-process CPU and memory)"; exit 1; }

# ---- helpers -----------------------------------------------------------------------------
# wait_until SECONDS CMD...
wait_until() {
	w=$(($1 * 10)); shift
	while ! "$@" >/dev/null 2>&1; do
		w=$((w - 1)); [ $w -le 0 ] && return 1; sleep 0.1
	done
}
put() { echo "$2" > "$T/r/$1"; }
get() { if [ -s "$T/r/$1" ]; then cat "$T/r/$1"; else echo -; fi; }
# the daemon's CPU in nanoseconds: schedstat's run time, else ticks
cpu_ns() {
	if [ -r "/proc/$1/schedstat" ]; then
		read -r ns rest < "/proc/$1/schedstat" && echo "$ns"
	else
		sed 's/.*) //' "/proc/$1/stat" | awk -v hz="$HZ" '{ printf "%.0f\n", ($12 + $13) * 1e9 / hz }'
	fi
}
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
nfds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
median_ms() { sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR) printf "%.2f", v[int((NR + 1) / 2)] / 1000 }'; }
div() { awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN { if (b > 0) printf f, a / b; else print "-" }'; }
CPU_SRC="utime+stime ticks (HZ $HZ)"
[ -r /proc/self/schedstat ] && CPU_SRC="/proc/PID/schedstat run time"

# ---- what this build offers --------------------------------------------------------------
if "$HOSTBIN" --help 2>/dev/null | grep -q event-loop; then
	BACKENDS="epoll select"
	BE_NOTE="values: epoll / select"
else
	BACKENDS="default"
	BE_NOTE="values: the default backend; select backend: n/a (no --event-loop yet)"
fi
HAVE_ALL=0
"$HOSTBIN" --help 2>/dev/null | grep -q -- --all && HAVE_ALL=1
STATIC=$B/static/negotiator-host
STATIC_NOTE=""
if [ ! -x "$STATIC" ]; then
	say "building static/negotiator-host (make static)"
	if ! (cd "$B" && make static) > "$T/static.log" 2>&1; then
		STATIC=""
		STATIC_NOTE="static: n/a (make static failed: $(tail -n 1 "$T/static.log"))"
	fi
fi
[ -n "$STATIC" ] || { [ -n "$STATIC_NOTE" ] || STATIC_NOTE="static: n/a"; say "$STATIC_NOTE"; }

# descriptors: the soft limit up to the hard one
HARD=$(ulimit -Hn)
[ "$HARD" = unlimited ] && HARD=1048576
ulimit -n "$HARD" 2>/dev/null
LIMIT=$(ulimit -n)
[ "$LIMIT" = unlimited ] && LIMIT=1048576
LARGEST=0
for n in $NS; do [ "$n" -gt "$LARGEST" ] && LARGEST=$n; done

# ---- one daemon and its guests -------------------------------------------------------------
evopt() { [ "$1" = default ] || echo "--event-loop=$1"; }

# start_daemon DIR BACKEND CHANNELS
start_daemon() {
	"$HOSTBIN" -d -q --no-policy $(evopt "$2") --channels-dir "$3" \
		--control-socket "$1/host.sock" 2>>"$1/host.log" &
	echo $! > "$1/host.pid"
	wait_until 10 test -S "$1/host.sock"
}

stop_dir() { # DIR
	for f in "$1/host.pid" "$1/sg.pid" "$1/guest.pid" "$1/standin.pid"; do
		[ -f "$f" ] || continue
		p=$(cat "$f"); rm -f "$f"
		kill "$p" 2>/dev/null; wait "$p" 2>/dev/null
	done
}

connected() { # PID N: both channels of every guest open, the last guest answers
	[ "$(nfds "$1")" -ge $((2 * $2 + 5)) ] &&
		"$HOSTBIN" --control-socket "$D/host.sock" -t 5 -e true "g$2"
}

# A real guest daemon behind the QEMU stand-in (tests/standin), guest
# "real", beside the N instant ones: the CLI-vs-persistent ratios are taken
# on it.  Against an instant stand-in a persistent call costs the daemon
# two wakeups and nothing else, and a ratio to that says nothing of what a
# real call (the command runs, says "it runs", then exits) costs.
TRUE=/bin/true
[ -x "$TRUE" ] || TRUE=/usr/bin/true
start_real() { # DIR
	mkdir -p "$1/real" "$1/cmds"
	ln -s "$TRUE" "$1/cmds/true"
	"$B/tests/standin" --pidfile "$1/standin.pid.new" "$1/ch" real "$1/real" 2>>"$1/standin.log" &
	wait_until 10 test -s "$1/standin.pid.new" || return 1
	mv "$1/standin.pid.new" "$1/standin.pid"
	"$B/negotiator-guest" -d -q --control-socket "$1/guest.sock" --commands-dir "$1/cmds" \
		--host-to-guest "unix:$1/real/negotiator-host-to-guest.0" \
		--guest-to-host "unix:$1/real/negotiator-guest-to-host.0" 2>>"$1/guest.log" &
	echo $! > "$1/guest.pid"
}

# start_set N BACKEND: scaleguests, a real guest and a daemon in $T/N-BACKEND
start_set() {
	D=$T/$1-$2
	mkdir -p "$D/ch"
	start_real "$D" || { err "N=$1 $2: the real guest's stand-in did not start"; return 1; }
	"$SG" --pidfile "$D/sg.pid.new" "$D/ch" "$1" 2>>"$D/sg.log" &
	wait_until 60 test -s "$D/sg.pid.new" || { err "N=$1 $2: the stand-in guests did not start: $(tail -n 1 "$D/sg.log")"; return 1; }
	mv "$D/sg.pid.new" "$D/sg.pid"
	start_daemon "$D" "$2" "$D/ch" || { err "N=$1 $2: the host daemon did not start: $(tail -n 1 "$D/host.log")"; return 1; }
	wait_until 120 connected "$(cat "$D/host.pid")" "$1" ||
		{ err "N=$1 $2: the daemon did not connect to all $1 guests"; return 1; }
	wait_until 20 "$HOSTBIN" --control-socket "$D/host.sock" -t 5 -e true real ||
		{ err "N=$1 $2: the real guest does not answer"; return 1; }
}

# RSS of a daemon with no guest at all, per backend
baseline_rss() {
	D=$T/base-$1
	mkdir -p "$D/ch"
	start_daemon "$D" "$1" "$D/ch" || { err "$1: the host daemon did not start: $(tail -n 1 "$D/host.log")"; return; }
	sleep 1
	put "base.$1" "$(rss "$(cat "$D/host.pid")")"
	stop_dir "$D"
}

# cli_calls DIR N PROGRAM FILE: SCALE_CALLS one-shot calls, guests in turn
turn() { echo $(( ($1 * 997) % $2 + 1 )); }
cli_calls() {
	: > "$4"
	i=0
	while [ $i -lt "$M" ]; do
		"$NB" run 1 "$4" "$3" --control-socket "$1/host.sock" -e true "g$(turn $i "$2")" \
			> /dev/null 2>>"$1/cli.log" || return 1
		i=$((i + 1))
	done
}
targets() { # N: the same turn as comma-separated names
	i=0; t=""
	while [ $i -lt "$M" ]; do t="$t${t:+,}g$(turn $i "$1")"; i=$((i + 1)); done
	echo "$t"
}

# measure N BACKEND: the calls, through the CLI and a persistent client
measure() {
	D=$T/$1-$2; K=$1.$2
	pid=$(cat "$D/host.pid")
	c0=$(cpu_ns "$pid")
	cli_calls "$D" "$1" "$HOSTBIN" "$D/cli.us" || { err "N=$1 $2: a CLI call failed: $(tail -n 1 "$D/cli.log")"; return; }
	c1=$(cpu_ns "$pid")
	put "cli_cpu.$K" "$(div $((c1 - c0)) $((M * 1000)) %.0f)"
	put "cli_wall.$K" "$(median_ms "$D/cli.us")"
	c0=$(cpu_ns "$pid")
	"$NB" "$D/host.sock" "$(targets "$1")" "$M" true > "$D/pers.us" 2>>"$D/cli.log" ||
		{ err "N=$1 $2: a persistent client's call failed"; return; }
	c1=$(cpu_ns "$pid")
	put "pers_cpu.$K" "$(div $((c1 - c0)) $((M * 1000)) %.0f)"
	put "pers_wall.$K" "$(median_ms "$D/pers.us")"
	# the real guest: the same calls, one guest
	c0=$(cpu_ns "$pid")
	"$NB" run "$M" "$D/rcli.us" "$HOSTBIN" --control-socket "$D/host.sock" -e true real \
		> /dev/null 2>>"$D/cli.log" || { err "N=$1 $2: a CLI call to the real guest failed"; return; }
	c1=$(cpu_ns "$pid")
	"$NB" "$D/host.sock" real "$M" true > "$D/rpers.us" 2>>"$D/cli.log" ||
		{ err "N=$1 $2: a persistent call to the real guest failed"; return; }
	c2=$(cpu_ns "$pid")
	put "rcli_cpu.$K" "$(div $((c1 - c0)) $((M * 1000)) %.0f)"
	put "rpers_cpu.$K" "$(div $((c2 - c1)) $((M * 1000)) %.0f)"
	put "rcli_wall.$K" "$(median_ms "$D/rcli.us")"
	put "rpers_wall.$K" "$(median_ms "$D/rpers.us")"
	if [ -n "$STATIC" ]; then
		cli_calls "$D" "$1" "$STATIC" "$D/static.us" ||
			{ err "N=$1 $2: a static CLI call failed: $(tail -n 1 "$D/cli.log")"; return; }
		put "static_wall.$K" "$(median_ms "$D/static.us")"
	fi
	if [ "$1" = "$LARGEST" ]; then
		if [ $HAVE_ALL = 1 ]; then
			: > "$D/all.us"
			"$NB" run 1 "$D/all.us" "$HOSTBIN" --control-socket "$D/host.sock" --all -e true \
				> /dev/null 2>>"$D/cli.log" || err "N=$1 $2: --all -e true failed: $(tail -n 1 "$D/cli.log")"
			put "all.$K" "$(awk '{ printf "%.2f", $1 / 1e6 }' "$D/all.us")"
		else
			put "all.$K" "n/a (no --all yet)"
		fi
	fi
}

# startup N: --version, dynamic and static, 50 runs each
startup() {
	: > "$T/ver.us"
	"$NB" run 50 "$T/ver.us" "$HOSTBIN" --version > /dev/null || err "--version failed"
	put "ver.$1" "$(median_ms "$T/ver.us")"
	[ -n "$STATIC" ] || return
	: > "$T/sver.us"
	"$NB" run 50 "$T/sver.us" "$STATIC" --version > /dev/null || err "static --version failed"
	put "sver.$1" "$(median_ms "$T/sver.us")"
}

# idle N: every backend's daemon of this N, over the same window
idle() {
	sleep 1
	for be in $BACKENDS; do
		[ -f "$T/$1-$be/host.pid" ] || continue
		put "t0.$1.$be" "$(ticks "$(cat "$T/$1-$be/host.pid")")"
	done
	sleep "$IDLE"
	for be in $BACKENDS; do
		[ -f "$T/$1-$be/host.pid" ] || continue
		pid=$(cat "$T/$1-$be/host.pid")
		t1=$(ticks "$pid")
		put "idle.$1.$be" "$(div $(((t1 - $(get "t0.$1.$be")) * 10)) "$IDLE" %.1f)"
		put "rss.$1.$be" "$(rss "$pid")"
	done
}

# rss_per_guest N BACKEND SMALLEST
rss_per_guest() {
	r=$(get "rss.$1.$2"); s=$(get "rss.$3.$2"); base=$(get "base.$2")
	[ "$r" = - ] && return
	if [ "$1" != "$3" ] && [ "$s" != - ]; then
		put "rssg.$1.$2" "$(div $((r - s)) $(($1 - $3)) %.1f)"
	elif [ "$base" != - ]; then
		put "rssg.$1.$2" "$(div $((r - base)) "$1" %.1f)"
	fi
}

# ---- the runs -------------------------------------------------------------------------------
for be in $BACKENDS; do baseline_rss "$be"; done
for n in $NS; do
	need=$((4 * n + 64))
	if [ "$need" -gt "$LIMIT" ]; then
		say "N=$n needs about $need descriptors, the limit here is $LIMIT: skipped"
		put "skip.$n" 1
		MISSES=$((MISSES + 1)); CHECKS=$((CHECKS + 1))
		continue
	fi
	say "N=$n: starting $n stand-in guests and a daemon per backend"
	ok=""
	for be in $BACKENDS; do start_set "$n" "$be" && ok="$ok $be"; done
	startup "$n"
	for be in $ok; do say "N=$n $be: calls"; measure "$n" "$be"; done
	say "N=$n: idle for $IDLE s"
	idle "$n"
	for be in $BACKENDS; do stop_dir "$T/$n-$be"; done
done

# ---- the table -------------------------------------------------------------------------------
# cells KEY: one cell per N, the backends' values joined by " / "
cells() {
	line=""
	for n in $NS; do
		if [ "$(get "skip.$n")" = 1 ]; then c=skipped
		else
			c=""
			for be in $BACKENDS; do c="$c${c:+ / }$(get "$1.$n.$be")"; done
		fi
		line="$line|$c"
	done
	echo "$line"
}
pernc() { # KEY: one value per N (not per backend)
	line=""
	for n in $NS; do line="$line|$(get "$1.$n")"; done
	echo "$line"
}
# verdict VALUE LIMIT: "VALUE PASS" / "VALUE MISS" (counted in the table)
verdict() {
	if [ "$1" = - ] || [ -z "$1" ]; then echo -; return; fi
	if awk -v v="$1" -v l="$2" 'BEGIN { exit !(v <= l) }'; then echo "$1 PASS"
	else echo "$1 MISS"; fi
}
SMALLEST=$LARGEST
for n in $NS; do [ "$(get "skip.$n")" != 1 ] && [ "$n" -lt "$SMALLEST" ] && SMALLEST=$n; done
# target rows, computed per N and backend into r/chk.*
for n in $NS; do
	[ "$(get "skip.$n")" = 1 ] && continue
	ver=$(get "ver.$n")
	for be in $BACKENDS; do
		K=$n.$be
		cw=$(get "rcli_wall.$K"); pw=$(get "rpers_wall.$K")
		cc=$(get "rcli_cpu.$K"); pc=$(get "rpers_cpu.$K")
		# a CLI call beyond its own start, over the persistent round trip
		if [ "$cw" != - ] && [ "$pw" != - ] && [ "$ver" != - ]; then
			put "over.$K" "$(verdict "$(awk -v c="$cw" -v v="$ver" -v p="$pw" 'BEGIN { printf "%.2f", (c - v) / p }')" 1.2)"
		fi
		[ "$cc" != - ] && [ "$pc" != - ] && put "cpur.$K" "$(verdict "$(div "$cc" "$pc" %.2f)" 1.3)"
		s=$(get "cli_cpu.$SMALLEST.$be"); ic=$(get "cli_cpu.$K")
		if [ "$n" != "$SMALLEST" ] && [ "$ic" != - ] && [ "$s" != - ]; then
			r=$(div "$ic" "$s" %.2f)
			if [ "$n" = "$LARGEST" ]; then r=$(verdict "$r" 1.5); fi
			put "scale.$K" "$r"
		fi
		rss_per_guest "$n" "$be" "$SMALLEST"
		i=$(get "idle.$K")
		[ "$n" = "$LARGEST" ] && [ "$i" != - ] && i=$(verdict "$i" 1)
		put "idlev.$K" "$i"
		g=$(get "rssg.$K")
		[ "$n" -ge 100 ] && [ "$g" != - ] && g=$(verdict "$g" 8)
		put "rssgv.$K" "$g"
		a=$(get "all.$K")
		case $a in [0-9]*) a=$(verdict "$a" 2);; esac
		put "allv.$K" "$a"
		put "gain.$n" "$(awk -v d="$ver" -v s="$(get "sver.$n")" 'BEGIN { if (s != "-" && d != "-") printf "%.2f", d - s; else print "-" }')"
	done
done

header="measure"
for n in $NS; do header="$header|N=$n"; done
{
	echo "$header"
	echo "daemon CPU per CLI call (us)$(cells cli_cpu)"
	echo "daemon CPU per persistent call (us)$(cells pers_cpu)"
	echo "wall per CLI call (ms, median)$(cells cli_wall)"
	echo "wall per persistent call (ms, median)$(cells pers_wall)"
	echo "real guest: daemon CPU per CLI call (us)$(cells rcli_cpu)"
	echo "real guest: daemon CPU per persistent call (us)$(cells rpers_cpu)"
	echo "real guest: wall per CLI call (ms, median)$(cells rcli_wall)"
	echo "real guest: wall per persistent call (ms, median)$(cells rpers_wall)"
	echo "CLI --version start-up (ms, median)$(pernc ver)"
	echo "static CLI --version start-up (ms)$(pernc sver)"
	echo "start-up gain of make static (ms)$(pernc gain)"
	echo "wall per static CLI call (ms, median)$(cells static_wall)"
	echo "daemon RSS after idle (KiB)$(cells rss)"
	echo "RSS per guest (KiB)$(cells rssg)"
	echo "idle CPU (ticks per 10 s)$(cells idle)"
	echo "--all -e true (s)$(cells all)"
	echo "TARGETS|"
	echo "CPU/CLI call vs N=$SMALLEST (<= 1.5x at N=$LARGEST)$(cells scale)"
	echo "idle ticks per 10 s (<= 1 at N=$LARGEST)$(cells idlev)"
	echo "RSS per idle guest (<= 8 KiB, N >= 100)$(cells rssgv)"
	echo "real guest: (CLI - --version) / persistent (<= 1.2)$(cells over)"
	echo "real guest: daemon CPU CLI / persistent (<= 1.3)$(cells cpur)"
	echo "--all -e true over N=$LARGEST (< 2 s)$(cells allv)"
} > "$T/table"
CHECKS=$((CHECKS + $(grep -o -e PASS -e MISS "$T/table" | wc -l)))
MISSES=$((MISSES + $(grep -o MISS "$T/table" | wc -l)))
END=$(date +%s)
{
	echo
	echo "scale-bench: one host daemon, N stand-in guests (tests/scaleguests), $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "$BE_NOTE; $M calls per measure; CPU from $CPU_SRC; idle over $IDLE s"
	echo "RSS per guest: (VmRSS(N) - VmRSS(N=$SMALLEST)) / (N - $SMALLEST), after the idle windows;" \
		"at N=$SMALLEST: over the same daemon with no guest"
	[ -n "$STATIC_NOTE" ] && echo "$STATIC_NOTE"
	awk -F'|' '{ for (i = 1; i <= NF; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) }
		if (NF > nf) nf = NF }
		END { for (r = 1; r <= NR; r++) { line = ""
			if (c[r, 1] == "TARGETS") { print "targets:"; continue }
			for (i = 1; i <= nf; i++) line = line sprintf(i == 1 ? "%-" w[i] "s" : "  %-" w[i] "s", c[r, i])
			sub(/ +$/, "", line); print line } }' "$T/table"
	echo "scale-bench: $MISSES of $CHECKS targets missed, $ERRORS errors; $((END - START)) s"
} | tee -a "$OUT"
[ "$ERRORS" -eq 0 ]
