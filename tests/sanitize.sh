#!/bin/sh
#
# tests/sanitize.sh: `make sanitize`, the whole of make check built with
# AddressSanitizer, UndefinedBehaviorSanitizer and LeakSanitizer.
#
# Builds a copy of the tree (the main build's objects are left alone) with
# SAN_CC (clang, else gcc) -fsanitize=address,undefined
# -fno-sanitize-recover=all, and runs make check there: the unit tests, the
# built-in commands and the integration and soak suites, whose daemons,
# clients, stand-in and helpers are then all sanitized binaries.  Every
# sanitizer report of every process goes to a file of its own (log_path), so
# a daemon that dies of one in the middle of the suite is not missed even if
# no test notices: each report counts as a failure.  Leaks are checked at
# every exit; tests/lsan.supp lists the ones accepted, with the reason.
#
# Prints the suites' lines, the reports (if any), and a last line
# "sanitize: N passed, M failed" (M includes the reports); exits non-zero
# when anything failed.  KEEP=1 keeps the work dir even when all passed.
# The soak test runs with SOAK_N=${SAN_SOAK_N:-2000} calls here, and checks
# descriptors but not RSS: ASan's quarantine holds freed memory on purpose.

cd "$(dirname "$0")/.." || exit 1
SRC=$(pwd)
CC=${SAN_CC:-}
if [ -z "$CC" ]; then
	if command -v clang >/dev/null 2>&1; then CC=clang; else CC=gcc; fi
fi
command -v "$CC" >/dev/null 2>&1 || { echo "sanitize: no compiler $CC"; echo "sanitize: 0 passed, 1 failed"; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/negotiator-sanitize.XXXXXX") || exit 1
mkdir "$W/src" "$W/reports"
START=$(date +%s)

# the source: tracked and new files as they are in the work tree, else all
if [ -n "$(git ls-files 2>/dev/null | head -n 1)" ]; then
	git ls-files -c -o --exclude-standard | while IFS= read -r f; do
		[ -f "$f" ] || continue
		mkdir -p "$W/src/$(dirname "$f")" && cp -p "$f" "$W/src/$f" || exit 1
	done || exit 1
else
	cp -R . "$W/src/" && (cd "$W/src" && make clean >/dev/null) || exit 1
fi

SAN='-fsanitize=address,undefined -fno-sanitize-recover=all'
CFLAGS="-O1 -g -std=c89 -pedantic -Wall -Wextra -fno-omit-frame-pointer $SAN"
R="$W/reports"
# abort_on_error: a report ends the process at once, with SIGABRT (a test
# sees a crash, not a clean exit); log_path: one report file per process
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1:log_path=$R/asan:detect_stack_use_after_return=1:check_initialization_order=1:strict_string_checks=1"
UBSAN_OPTIONS="print_stacktrace=1:abort_on_error=1:halt_on_error=1:log_path=$R/ubsan"
LSAN_OPTIONS="suppressions=$SRC/tests/lsan.supp:print_suppressions=0:log_path=$R/lsan"
export ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
NEGOTIATOR_SANITIZE=1 SOAK_N=${SAN_SOAK_N:-2000}
export NEGOTIATOR_SANITIZE SOAK_N

echo "# sanitize: $CC $SAN, LeakSanitizer on; in $W/src"
(cd "$W/src" && make CC="$CC" CFLAGS="$CFLAGS" check) > "$W/check.log" 2>&1
rc=$?
grep -E '^(== |not ok|# skipped|# .*calls in|# host daemon)' "$W/check.log"
last=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$W/check.log" | tail -n 1)
if [ -z "$last" ]; then
	tail -n 20 "$W/check.log"
	last="0 passed, 1 failed"
	[ "$rc" -ne 0 ] || rc=1
fi
passed=${last%% passed*}
failed=${last#*passed, }
failed=${failed%% failed*}
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
	echo "not ok - make check exited $rc (log: $W/check.log)"
	failed=1
fi

# every report file is a failure: show where each one came from
reports=0
for f in "$R"/*; do
	[ -f "$f" ] || continue
	reports=$((reports + 1))
	echo "not ok - sanitizer report $f:"
	grep -E 'ERROR|SUMMARY|runtime error|#[0-9] ' "$f" | head -n 12 | sed 's/^/#   /'
done
echo "# $reports sanitizer report(s); $(( $(date +%s) - START )) s"
failed=$((failed + reports))
if [ "$failed" -eq 0 ] && [ -z "$KEEP" ]; then rm -rf "$W"; else echo "# work dir and logs kept in $W"; fi
echo "sanitize: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
