# tests/lib.sh: what the suites over the stand-in share (integration,
# fan-out, python peers, soak); sourced, not run.  "ok - ..." / "not ok - ..."
# lines, the counters behind the last line "N passed, N failed", and a temp
# dir that goes at the end, unless something failed (or KEEP is set), with
# the processes started there: those in $PIDS and those with a pidfile in it.

PASS=0
FAIL=0
PIDS=""
PIDFILE_SIGNAL=TERM   # what a process with a pidfile in $T gets at the end

pass() { PASS=$((PASS + 1)); echo "ok - $*"; }
fail() { FAIL=$((FAIL + 1)); echo "not ok - $*"; }
check() { d=$1; shift; if "$@"; then pass "$d"; else fail "$d"; fi; }
note() { echo "# $*"; }

cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for f in "$T"/*.pid; do [ -f "$f" ] && kill -"$PIDFILE_SIGNAL" "$(cat "$f")" 2>/dev/null; done
	sleep 0.2
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	if [ "$FAIL" -eq 0 ] && [ -z "$KEEP" ]; then rm -rf "$T"; else echo "# logs kept in $T"; fi
}

# suite_tmp NAME: $T, cleaned up at the end
suite_tmp() {
	T=$(mktemp -d "${TMPDIR:-/tmp}/negotiator-$1.XXXXXX") || exit 1
	trap cleanup EXIT
	trap 'exit 1' INT TERM
}

wait_until() { # CMD...: retry for up to 10 s
	n=0
	while ! "$@" >/dev/null 2>&1; do
		n=$((n + 1))
		[ $n -gt 100 ] && return 1
		sleep 0.1
	done
	return 0
}
