#!/bin/sh
#
# tests/fuzz/fuzz.sh: `make fuzz`, the libFuzzer harnesses in tests/fuzz.
#
# Builds a copy of the tree in tests/fuzz/out/build (the main build's
# objects are left alone) with FUZZ_CC (clang) -fsanitize=fuzzer,address,
# undefined, then runs each harness for FUZZ_S seconds (default 60),
# FUZZ_JOBS (2) at a time, from its committed seeds (tests/fuzz/corpus/NAME)
# and what earlier runs found (tests/fuzz/out/NAME/corpus).  A crash, a
# leak, a timeout or running out of memory fails the harness; libFuzzer's
# reproducer (crash-*, leak-*, timeout-*, oom-*) is left in
# tests/fuzz/out/NAME/, with the log beside it.  One line per harness, with
# the number of inputs it ran (libFuzzer's final stats), then
# "fuzz: N passed, M failed"; exits non-zero when a harness failed.
#
#   FUZZ_S=60 FUZZ_JOBS=2 FUZZ_TARGETS='frame msg shlex link daemon'
#   reproduce: tests/fuzz/out/build/tests/fuzz/NAME tests/fuzz/out/NAME/crash-...

cd "$(dirname "$0")/../.." || exit 1
SRC=$(pwd)
FUZZ_S=${FUZZ_S:-60}
FUZZ_JOBS=${FUZZ_JOBS:-2}
CC=${FUZZ_CC:-clang}
TARGETS=${FUZZ_TARGETS:-daemon link msg frame shlex}
OUT=$SRC/tests/fuzz/out
B=$OUT/build
START=$(date +%s)

say() { echo "# $*"; }
die() { echo "fuzz: $*"; echo "fuzz: 0 passed, 1 failed"; exit 1; }

command -v "$CC" >/dev/null 2>&1 || die "no $CC (Debian: clang libclang-rt-14-dev; see INSTALL)"
case $FUZZ_S in ''|*[!0-9]*) die "FUZZ_S must be a number of seconds, not $FUZZ_S" ;; esac

# ---- build, in a copy of the tree ------------------------------------------------------
rm -rf "$B"
mkdir -p "$B"
if [ -n "$(git ls-files 2>/dev/null | head -n 1)" ]; then
	git ls-files -c -o --exclude-standard | grep -v '^tests/fuzz/out/' | while IFS= read -r f; do
		[ -f "$f" ] || continue
		mkdir -p "$B/$(dirname "$f")" && cp -p "$f" "$B/$f" || exit 1
	done || die "unable to copy the tree to $B"
else
	for f in *; do
		[ "$f" = tests ] || cp -R "$f" "$B/"
	done
	mkdir -p "$B/tests/fuzz" && cp tests/*.c tests/*.sh "$B/tests/" && cp tests/fuzz/*.[ch] "$B/tests/fuzz/" ||
		die "unable to copy the tree to $B"
	(cd "$B" && make clean >/dev/null)
fi
SAN='-fsanitize=address,undefined -fno-sanitize-recover=all'
FZ="-g -O1 -fno-omit-frame-pointer $SAN"
# daemon.c and link.c run on the input's clock and start no command
DEFS='-Dnow_ms=fuzz_now_ms -Dchild_spawn=fuzz_child_spawn -Dchild_kill=fuzz_child_kill'
say "building with $CC $SAN -fsanitize=fuzzer in $B"
(
	cd "$B" || exit 1
	make CC="$CC" CFLAGS="$FZ -fsanitize=fuzzer-no-link" tests/unit exec.o pgids.o loop.o || exit 1
	$CC $FZ -fsanitize=fuzzer-no-link $DEFS -I. -c link.c -o tests/fuzz/link-fz.o || exit 1
	$CC $FZ -fsanitize=fuzzer-no-link $DEFS -I. -c daemon.c -o tests/fuzz/daemon-fz.o || exit 1
	base="common.o proto.o json.o python.o shlex.o compat/*.o"
	for h in $TARGETS; do
		case $h in
		frame|msg|shlex) objs=$base ;;
		link) objs="$base tests/fuzz/link-fz.o" ;;
		daemon) objs="$base opts.o exec.o pgids.o loop.o tests/fuzz/link-fz.o tests/fuzz/daemon-fz.o" ;;
		*) echo "unknown harness: $h"; exit 1 ;;
		esac
		$CC $FZ -fsanitize=fuzzer -I. -Itests/fuzz -o "tests/fuzz/$h" "tests/fuzz/${h}_fuzzer.c" \
			$objs $(cat compat/config.libs) || exit 1
	done
) > "$OUT/build.log" 2>&1 || { tail -n 20 "$OUT/build.log"; die "build failed (log: $OUT/build.log)"; }

# ---- run ----------------------------------------------------------------------------------
if [ -z "$ASAN_SYMBOLIZER_PATH" ]; then
	for s in llvm-symbolizer /usr/lib/llvm-14/bin/llvm-symbolizer; do
		if command -v "$s" >/dev/null 2>&1; then ASAN_SYMBOLIZER_PATH=$(command -v "$s"); export ASAN_SYMBOLIZER_PATH; break; fi
	done
fi
# longer inputs for the harnesses that take operations; value profiles
# (comparison operands as features) where parsing is all there is
options() {
	case $1 in
	daemon) echo -max_len=16384 ;;
	link) echo -max_len=8192 ;;
	*) echo -max_len=4096 -use_value_profile=1 ;;
	esac
}
run_one() { # NAME
	h=$1 d=$OUT/$1
	mkdir -p "$d/corpus"
	rm -f "$d"/crash-* "$d"/leak-* "$d"/timeout-* "$d"/oom-* "$d"/slow-unit-* "$d/rc"
	"$B/tests/fuzz/$h" -max_total_time="$FUZZ_S" -print_final_stats=1 -timeout=20 \
		-rss_limit_mb=2048 $(options "$h") \
		-artifact_prefix="$d/" "$d/corpus" "$SRC/tests/fuzz/corpus/$h" > "$d/log" 2>&1
	echo $? > "$d/rc"
}
# the daemon harness's commands directory, gone even after a crash
TMPDIR=$OUT/tmp
export TMPDIR
rm -rf "$TMPDIR" && mkdir -p "$TMPDIR"
say "running ${TARGETS}: $FUZZ_S s each, $FUZZ_JOBS at a time"
running=""
for h in $TARGETS; do
	set -- $running
	if [ $# -ge "$FUZZ_JOBS" ]; then
		wait "$1"
		shift
		running="$*"
	fi
	run_one "$h" &
	running="$running $!"
done
for p in $running; do wait "$p"; done
rm -rf "$TMPDIR"

# ---- report ---------------------------------------------------------------------------
PASSED=0 FAILED=0
for h in $TARGETS; do
	d=$OUT/$h
	rc=$(cat "$d/rc" 2>/dev/null || echo '?')
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$d/log" | tail -n 1)
	secs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$d/log" | tail -n 1)
	files=$(ls "$d/corpus" | wc -l)
	art=$(ls "$d"/crash-* "$d"/leak-* "$d"/timeout-* "$d"/oom-* 2>/dev/null | head -n 1)
	if [ "$rc" = 0 ] && [ -z "$art" ] && [ -n "$execs" ]; then
		PASSED=$((PASSED + 1))
		echo "PASS fuzz $h: ${execs} execs in $FUZZ_S s (${secs:-?}/s), corpus $files inputs"
	else
		FAILED=$((FAILED + 1))
		why=$(grep -m 1 -E '^==[0-9]+==ERROR|CHECK failed|runtime error|^SUMMARY' "$d/log")
		echo "FAIL fuzz $h: ${execs:-?} execs, exit $rc: ${why:-see the log}"
		echo "#   reproducer: ${art:-none} (in $d/)"
		echo "#   log: $d/log"
		[ -n "$art" ] && echo "#   rerun: $B/tests/fuzz/$h $art"
	fi
done
say "$(( $(date +%s) - START )) s"
echo "fuzz: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
