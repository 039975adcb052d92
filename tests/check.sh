#!/bin/sh
#
# tests/check.sh: what `make check` runs.  Each suite prints "ok"/"not ok"
# lines and its own "N passed, N failed"; this adds them up and ends with
# the total on one line.  Exits non-zero when anything failed.
# COMPAT=all in the environment (make check COMPAT=all) also checks that
# the unit tests ran every compat/ fallback.

cd "$(dirname "$0")/.." || exit 1
PASSED=0
FAILED=0

run_suite() { # NAME COMMAND...
	name=$1; shift
	echo "== $name"
	out=$("$@" 2>&1)
	rc=$?
	printf '%s\n' "$out" | grep -v '^ok - '
	last=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
	if [ -z "$last" ]; then
		echo "not ok - $name did not finish (exit $rc)"
		FAILED=$((FAILED + 1))
		return
	fi
	p=${last%% passed*}
	f=${last#*passed, }
	f=${f%% failed*}
	PASSED=$((PASSED + p))
	FAILED=$((FAILED + f))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name exited $rc"
		FAILED=$((FAILED + 1))
	fi
}

echo "# host daemon event loop: ${NEGOTIATOR_EVENT_LOOP:-the build's default} (NEGOTIATOR_EVENT_LOOP)"
run_suite "unit tests" ./tests/unit
# make check COMPAT=all: the fallbacks must have run, not only been built
if [ "$COMPAT" = all ]; then
	if printf '%s\n' "$out" | grep -q '^ok - COMPAT=all: every shim ran its fallback'; then
		PASSED=$((PASSED + 1))
	else
		echo "not ok - COMPAT=all, but the unit tests did not run every fallback"
		FAILED=$((FAILED + 1))
	fi
fi
run_suite "compat/ stands alone (includes, compiles and links without the rest)" sh tests/compat.sh .
run_suite "built-in commands" sh tests/builtins.sh scripts/commands
run_suite "integration over the stand-in" sh tests/integration.sh .
run_suite "make demo: plain output, every command shown" sh tests/demo-output.sh .
run_suite "negotiator-guest --check on fake guests" sh tests/guestcheck.sh .
run_suite "many guests at once (fan-out)" sh tests/fanout.sh .
run_suite "libvirt: guests found through virsh" sh tests/libvirt.sh .
run_suite "negotiator-host --check: diagnosing a host" sh tests/hostcheck.sh .
run_suite "negotiator-host --json" sh tests/json.sh .
run_suite "python-negotiator peers (tests/pypeer), four directions" sh tests/python.sh .
run_suite "make install DESTDIR=... PREFIX=..." sh tests/install.sh .
run_suite "upstart jobs: the grammar checker (tests/upstart-check.sh)" sh tests/upstart.sh .
run_suite "soak: ${SOAK_N:-10000} calls through one host daemon" sh tests/soak.sh .

echo "== total"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
