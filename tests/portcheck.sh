#!/bin/sh
# Word splitting of unquoted lists (make targets, flags, set -- $(...)) is
# intended; "A && B || C" in exchange means "if A or B failed"; dash has
# ulimit -S (elsewhere its failure only leaves the soft limit as it is).
# shellcheck disable=SC2086,SC2046,SC2015,SC2012,SC2116,SC2317,SC3045
#
# tests/portcheck.sh: `make portcheck`, the portability promise checked.
#
# Builds the source with several compilers, libcs and architectures, each
# target in its own copy of the tree (so they run side by side), and runs
# what each built: cross builds under qemu-user against native binaries over
# the QEMU stand-in, so byte order and word size are exercised on the wire.
# Prints one line per target, "PASS TARGET DETAIL", "FAIL TARGET REASON (log:
# FILE)" or "SKIP TARGET REASON", then "N passed, N failed".  Exits non-zero
# when a target failed.  A target whose tools are missing FAILs under CI
# (CI=true) and is skipped otherwise.
#
# Usage: sh tests/portcheck.sh [TARGET...]     (default: all of them)
#   gcc clang plain tcc musl i686 armhf aarch64 s390x powerpc glibc syscalls
# KEEP=1 keeps the work dir (copies, logs) even when everything passed.
#
# Needs: make, cc, and per target the tools named in .ci/run's apt-get line.

cd "$(dirname "$0")/.." || exit 1
SRC=$(pwd)
ALL_TARGETS="gcc clang plain compat tcc musl i686 armhf aarch64 s390x powerpc glibc syscalls oldkernel"
LONG_FIRST="musl armhf aarch64 powerpc s390x i686 syscalls oldkernel compat tcc gcc clang plain glibc"
TARGETS=${*:-$ALL_TARGETS}
W=$(mktemp -d "${TMPDIR:-/tmp}/negotiator-portcheck.XXXXXX") || exit 1
mkdir "$W/logs" "$W/results"
STRICT='-O2 -std=c89 -pedantic -Wall -Wextra -Werror'
PROGS='all tests/unit tests/standin tests/poke tests/negbench tests/qga'
JOBS=2    # builds at once: the CI machine has 2 cores

# ---- helpers (run inside a target's subshell; $t is the target) ------------------------
log() { echo "# $*"; }
have() { command -v "$1" >/dev/null 2>&1; }

# the target's result: PASS|FAIL|SKIP TEXT, written once, then the subshell ends
result() {
	kind=$1; shift
	took="[$(( $(date +%s) - START )) s]"
	case "$kind $*" in
	*"(log: "*|PASS*|SKIP*) echo "$kind $t $* $took" > "$W/results/$t" ;;
	*) echo "$kind $t $* (log: $W/logs/$t.log) $took" > "$W/results/$t" ;;
	esac
	log "result: $kind $*"
	slot_give
	exit 0
}
fail() { result FAIL "$@"; }

# need TOOL=PACKAGE...: FAIL (under CI) or SKIP when a tool is missing
need() {
	missing=""
	for tp in "$@"; do
		tool=${tp%%=*}
		case $tool in
		/*) [ -e "$tool" ] || missing="$missing $tool (package ${tp#*=})" ;;
		*) have "$tool" || missing="$missing $tool (package ${tp#*=})" ;;
		esac
	done
	[ -z "$missing" ] && return 0
	if [ "$CI" = true ]; then fail "missing:$missing"; fi
	result SKIP "missing:$missing"
}

# a fresh copy of the source tree in $W/NAME (tracked files as they are now)
copy_tree() {
	rm -rf "${W:?}/$1"
	cp -R "$W/src" "$W/$1"
}

# builds, at most $JOBS at a time and first come first served in the order
# the targets were started (the long ones first): each target has a ticket
# in $W/queue, given back after its build or when it ends without one
slot_take() {
	until ls "$W/queue" | head -n $JOBS | grep -qx "$TICKET"; do sleep 0.5; done
}
slot_give() { rm -f "$W/queue/$TICKET"; }

# build DIR MAKE-ARGS...: make in DIR, holding a slot; log the output
build() {
	d=$1; shift
	log "build in $d: make $*"
	slot_take
	(cd "$d" && make "$@" 2>&1)
	rc=$?
	slot_give
	return $rc
}

# the first compiler or linker error in the target's log
build_error() { grep -i 'error' "$W/logs/$t.log" | head -n 1; }

kib() { echo "$(( ($(wc -c < "$1") + 1023) / 1024 )) KiB"; }

# sizes STRIP DIR: "host N KiB (stripped M KiB), guest ..."
sizes() {
	s=""
	for b in host guest; do
		f="$2/negotiator-$b"
		"$1" -o "$f.stripped" "$f" || return 1
		s="$s, $b $(kib "$f") (stripped $(kib "$f.stripped"))"
	done
	echo "${s#, }"
}

# elf_kind FILE: "32-bit big-endian" etc., from the ELF header
elf_kind() {
	set -- $(od -An -tu1 -N6 "$1")
	[ "$1 $2 $3 $4" = "127 69 76 70" ] || { echo "not ELF"; return; }
	case $5 in 1) c=32-bit ;; 2) c=64-bit ;; *) c='?' ;; esac
	case $6 in 1) e=little-endian ;; 2) e=big-endian ;; *) e='?' ;; esac
	echo "$c $e"
}

# integration TREE NAME: the integration suite on the binaries in TREE
# (tests/integration.sh: both directions, exit codes, 1 MiB byte-exact
# streams, concurrency, faults); a one-line summary or a failure
# (its log: $W/logs/$t.NAME.log)
integration() {
	il="$W/logs/$t.$2.log"
	log "integration suite on $1 (log: $il)" >&2
	sh "$SRC/tests/integration.sh" "$1" > "$il" 2>&1
	rc=$?
	last=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$il" | tail -n 1)
	if [ $rc -ne 0 ] || [ -z "$last" ]; then
		first=$(grep '^not ok' "$il" | head -n 1)
		echo "integration suite ($2): ${last:-did not finish}; ${first:-exit $rc} (log: $il)"
		return 1
	fi
	echo "integration suite ($2): ${last%%,*}"
}

# ---- the targets -------------------------------------------------------------------------

# gcc, clang: strict warnings as errors, both programs and the test programs
strict() { # COMPILER
	need "$1=$1"
	copy_tree "$t"
	build "$W/$t" CC="$1" CFLAGS="$STRICT" $PROGS || fail "$1 $STRICT: build failed: $(build_error)"
	out=$("$W/$t/tests/unit" 2>&1) || fail "unit tests failed: $(echo "$out" | tail -n 1)"
	result PASS "host $(kib "$W/$t/negotiator-host"), guest $(kib "$W/$t/negotiator-guest"), unit $(echo "$out" | tail -n 1)"
}
t_gcc() { strict gcc; }
t_clang() { strict clang; }

# what a distribution's build system does: its own CFLAGS replace ours
t_plain() {
	need cc=gcc
	copy_tree "$t"
	build "$W/$t" CFLAGS='-std=c89 -pedantic -Werror' $PROGS || fail "cc -std=c89 -pedantic -Werror: build failed: $(build_error)"
	result PASS "host $(kib "$W/$t/negotiator-host"), guest $(kib "$W/$t/negotiator-guest")"
}

# every compat/ fallback forced on: the whole of make check must pass so
t_compat() {
	need cc=gcc
	copy_tree "$t"
	(cd "$W/$t" && make COMPAT=all check) > "$W/logs/$t.check.log" 2>&1
	rc=$?
	last=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$W/logs/$t.check.log" | tail -n 1)
	[ $rc -eq 0 ] || fail "make check COMPAT=all: ${last:-build failed} (log: $W/logs/$t.check.log)"
	# (tests/check.sh fails unless the unit tests saw every fallback run)
	result PASS "make check with every fallback: $last"
}

# tcc: ignores -O2 -std=c89 -pedantic -Wextra silently; give it what it has
t_tcc() {
	need tcc=tcc
	copy_tree "$t"
	build "$W/$t" CC=tcc CFLAGS='-Wall -Werror' $PROGS || fail "tcc -Wall -Werror: build failed: $(build_error)"
	for b in host guest; do
		"$W/$t/negotiator-$b" --version || fail "negotiator-$b --version failed"
	done
	out=$("$W/$t/tests/unit" 2>&1) || fail "unit tests failed: $(echo "$out" | tail -n 1)"
	result PASS "host $(kib "$W/$t/negotiator-host"), guest $(kib "$W/$t/negotiator-guest"), --version runs, unit $(echo "$out" | tail -n 1)"
}

# musl, static: the build for the oldest guests; the whole make check on it
t_musl() {
	need musl-gcc=musl-tools strip=binutils
	copy_tree "$t"
	build "$W/$t" CC=musl-gcc LDFLAGS=-static all tests/unit tests/standin tests/poke tests/negbench \
		tests/hostile tests/pypeer tests/fakehost tests/jsoncheck ||
		fail "musl-gcc static: build failed: $(build_error)"
	for b in host guest; do
		"$W/$t/negotiator-$b" --version || fail "negotiator-$b --version failed"
	done
	sz=$(sizes strip "$W/$t") || fail "strip failed"
	log "make check's suites on the static musl binaries"
	(cd "$W/$t" && sh tests/check.sh) > "$W/logs/$t.check.log" 2>&1
	rc=$?
	sed 's/^/#   /' "$W/logs/$t.check.log"
	last=$(tail -n 1 "$W/logs/$t.check.log")
	[ $rc -eq 0 ] || fail "make check's suites on the musl binaries: $last (log: $W/logs/$t.check.log)"
	result PASS "$sz; --version runs; check: $last"
}

# static glibc cross builds under qemu-user: the whole integration suite with
# the cross negotiator-guest (daemon and clients) against the native host
# daemon and stand-in: calls both ways, exit codes, 1 MiB byte-exact streams
cross() { # TRIPLET QEMU-ARCH
	tr=$1 q=qemu-$2-static
	need "$tr-gcc=gcc-$tr" "$tr-strip=binutils-$tr" "$q=qemu-user-static"
	copy_tree "$t"
	# (static glibc warns that getgrnam needs its NSS libraries at run time)
	build "$W/$t" CC="$tr-gcc" LDFLAGS=-static all tests/unit ||
		fail "$tr-gcc static: build failed: $(build_error)"
	kind=$(elf_kind "$W/$t/negotiator-guest")
	sz=$(sizes "$tr-strip" "$W/$t") || fail "$tr-strip failed"
	for b in host guest; do
		$q "$W/$t/negotiator-$b" --version || fail "negotiator-$b --version under $q failed"
	done
	out=$($q "$W/$t/tests/unit" 2>&1) || fail "unit tests under $q: $(echo "$out" | tail -n 1)"
	[ -x "$W/native/negotiator-host" ] || fail "the native reference build failed (log: $W/logs/native.log)"
	m="$W/$t-mixed"
	mkdir -p "$m/tests"
	cp "$W/native/negotiator-host" "$m/"
	cp "$W/native/tests/standin" "$W/native/tests/poke" "$W/native/tests/hostile" "$m/tests/"
	# the suite asserts what the build has (PR_SET_PDEATHSIG, SO_PEERCRED):
	# the same for the native host and the cross guest, both Linux
	mkdir -p "$m/compat"
	cp "$W/$t/compat/config.h" "$m/compat/"
	printf '#!/bin/sh\nexec %s %s "$@"\n' "$q" "$W/$t/negotiator-guest" > "$m/negotiator-guest"
	chmod 755 "$m/negotiator-guest"
	r=$(integration "$m" "cross-guest") || fail "$r"
	result PASS "$kind; $sz; --version, unit tests ($(echo "$out" | tail -n 1 | sed 's/,.*//')) and $r under $q"
}
t_i686() { cross i686-linux-gnu i386; }
t_armhf() { cross arm-linux-gnueabihf arm; }
t_aarch64() { cross aarch64-linux-gnu aarch64; }
t_s390x() { cross s390x-linux-gnu s390x; }
t_powerpc() { cross powerpc-linux-gnu ppc; }

# glibc_symbols BIN...: no glibc symbol version newer than 2.11 is imported
# (__libc_start_main@GLIBC_2.34 aside: every program linked against glibc
# 2.34+ has it, and the other glibc's own startup code is what calls it)
glibc_symbols() {
	bad=""
	for f in "$@"; do
		objdump -T "$f" > "$W/$t.syms" || return 2
		bad="$bad
$(awk '{
			for (i = 1; i <= NF; i++) if ($i ~ /^\(?GLIBC_[0-9.]+\)?$/) {
				v = $i; gsub(/[()]/, "", v); sym = $NF
				split(substr(v, 7), n, ".")
				if (n[1] > 2 || (n[1] == 2 && n[2] > 11))
					if (!(sym == "__libc_start_main" && v == "GLIBC_2.34"))
						print sym "@" v
			}
		}' "$W/$t.syms" | sort -u)"
	done
	[ -z "$bad" ] && return 0
	echo "newer than GLIBC_2.11:" $(echo "$bad" | sort -u -t@ -k2,2 -k1,1)
	return 1
}
t_glibc() {
	need objdump=binutils
	[ -x "$W/native/negotiator-host" ] || fail "the native reference build failed (log: $W/logs/native.log)"
	bins="$W/native/negotiator-host $W/native/negotiator-guest"
	if [ -f "$W/src/tests/glibc-symbols.sh" ]; then
		log "using tests/glibc-symbols.sh"
		sh "$W/src/tests/glibc-symbols.sh" $bins > "$W/$t.out" 2>&1
		rc=$?
		cat "$W/$t.out"
		[ $rc -eq 0 ] || fail "tests/glibc-symbols.sh: $(tail -n 1 "$W/$t.out")"
	else
		why=$(glibc_symbols $bins) || fail "${why:-objdump -T failed}"
	fi
	result PASS "no symbol newer than GLIBC_2.11 in the native build (but __libc_start_main@GLIBC_2.34)"
}

# ---- syscalls: nothing newer than Linux 2.6.32 -----------------------------------------
# A real exchange with the static musl binaries under strace (so every system
# call is ours or musl's, none from a new glibc's startup), both daemons and
# each client traced; `-b execve` stops tracing a process when it executes
# a command (the commands are not ours).  Each syscall name is mapped to its
# x86_64 number; the last one in 2.6.32 is perf_event_open (298).
LAST_2632=298
# Newer calls allowed because musl tries them and falls back when the kernel
# says ENOSYS, as "NAME FALLBACK,FALLBACK": proven below by running the same
# exchange with ENOSYS injected and finding the fallback after each one.
#   prlimit64 (2.6.36): musl's getrlimit() and setrlimit() (the daemons raise
#   their descriptor limit) fall back to the getrlimit and setrlimit calls
FALLBACKS='prlimit64 getrlimit,setrlimit'

# exchange MUSLDIR TRACEDIR: the scenario, each negotiator process under
# strace $INJECT (trace.NAME files in TRACEDIR); prints nothing, or the step
# that failed.  Host and guest daemons, both directions, stdin and stdout
# byte-exact, exit status, a timeout, --list-*, clients without a daemon.
exchange() {
	X=$1 D=$2; shift 2
	mkdir -p "$D/ch" "$D/g" "$D/gc" "$D/hc"
	for c in gc hc; do
		printf '#!/bin/sh\nexec cat\n' > "$D/$c/cat"
		printf '#!/bin/sh\necho out; echo err >&2; exit 7\n' > "$D/$c/exit7"
		printf '#!/bin/sh\nexec sleep 30\n' > "$D/$c/sleeper"
		chmod 755 "$D/$c/cat" "$D/$c/exit7" "$D/$c/sleeper"
	done
	dd if=/dev/urandom of="$D/blob" bs=1024 count=300 2>/dev/null
	# a soft descriptor limit below the hard one: the daemons raise it
	# (getrlimit and setrlimit both run); exchange runs in a subshell
	ulimit -S -n 512 2>/dev/null
	H="$X/negotiator-host --channels-dir $D/ch --control-socket $D/host.sock"
	G="$X/negotiator-guest --control-socket $D/guest.sock"
	GP="--host-to-guest unix:$D/g/negotiator-host-to-guest.0 --guest-to-host unix:$D/g/negotiator-guest-to-host.0"
	T() { n=$1; shift; strace -f -qq -b execve -o "$D/trace.$n" $INJECT "$@"; }
	waitfor() { i=0; while ! "$@" >/dev/null 2>&1; do i=$((i + 1)); [ $i -gt 100 ] && return 1; sleep 0.1; done; }
	# the real pid of a traced daemon: the first line of its trace
	stop() { p=$(sed -n '1s/ .*//p' "$D/trace.$1"); kill "$p" && waitfor dead "$p"; }
	dead() { ! kill -0 "$1"; }
	"$W/native/tests/standin" --pidfile "$D/standin.pid" "$D/ch" vm1 "$D/g" >/dev/null 2>"$D/standin.log" &
	waitfor test -s "$D/standin.pid" || { echo "standin did not start"; return; }
	T hostd $H -d --commands-dir "$D/hc" >/dev/null 2>"$D/hostd.log" &
	T guestd $G -d --commands-dir "$D/gc" $GP >/dev/null 2>"$D/guestd.log" &
	waitfor $H -t 2 vm1 -c || { echo "daemons did not connect"; return; }
	waitfor $G -t 2 -l || { echo "daemons did not connect"; return; }
	[ "$(T g $H -g)" = vm1 ] || { echo "host --list-guests"; return; }
	[ "$(T c $H vm1 -c | tr '\n' ' ')" = "cat exit7 sleeper " ] || { echo "host --list-commands"; return; }
	T e1 $H vm1 -e cat < "$D/blob" > "$D/out" && cmp -s "$D/blob" "$D/out" || { echo "host -e cat with stdin"; return; }
	[ "$(T e2 $H vm1 -e exit7 2>/dev/null)" = out ] || { echo "host -e exit7 stdout"; return; }
	T e2b $H vm1 -e exit7 > /dev/null 2>&1; [ $? = 7 ] || { echo "host -e exit7: status"; return; }
	T e3 $H -t 1 vm1 -e sleeper 2>/dev/null; [ $? = 124 ] || { echo "host -t 1: status"; return; }
	[ "$(T l $G -l | tr '\n' ' ')" = "cat exit7 sleeper " ] || { echo "guest --list-commands"; return; }
	T e4 $G -e cat < "$D/blob" > "$D/out" && cmp -s "$D/blob" "$D/out" || { echo "guest -e cat with stdin"; return; }
	T e5 $G -e exit7 > /dev/null 2>&1; [ $? = 7 ] || { echo "guest -e exit7: status"; return; }
	stop guestd || { echo "guest daemon did not stop on SIGTERM"; return; }
	T e6 $X/negotiator-guest --control-socket "$D/none.sock" --guest-to-host "unix:$D/g/negotiator-guest-to-host.0" \
		-e cat < "$D/blob" > "$D/out" && cmp -s "$D/blob" "$D/out" || { echo "guest client without a daemon"; return; }
	T guestd2 $G -d --commands-dir "$D/gc" $GP >/dev/null 2>>"$D/guestd.log" &
	waitfor $H -t 2 vm1 -c || { echo "guest daemon did not come back"; return; }
	stop hostd || { echo "host daemon did not stop on SIGTERM"; return; }
	T e7 $X/negotiator-host --channels-dir "$D/ch" --control-socket "$D/none.sock" vm1 -e cat \
		< "$D/blob" > "$D/out" && cmp -s "$D/blob" "$D/out" || { echo "host client without a daemon"; return; }
	stop guestd2 || { echo "guest daemon did not stop on SIGTERM"; return; }
}

# whatever exchange left running (it stops early when a step fails)
exchange_cleanup() { # TRACEDIR
	for f in "$1/trace.hostd" "$1/trace.guestd" "$1/trace.guestd2" "$1/standin.pid"; do
		[ -s "$f" ] && kill "$(sed -n '1s/ .*//p' "$f")" 2>/dev/null
	done
}

# An old kernel under the native build: strace makes each process's first
# pipe2() and every accept4() fail with ENOSYS, and each process's first
# socket() (with SOCK_CLOEXEC) with EINVAL, as Linux before 2.6.27/2.6.28
# would.  The whole exchange must still work, each process must switch to
# the fallback (pipe, accept, a plain socket) and never ask for the refused
# flags again.  (A new glibc's pipe() is itself pipe2(fds, 0), which an old
# kernel's old glibc would not issue: hence only the first pipe2 refused.)
t_oldkernel() {
	need strace=strace
	[ -x "$W/native/negotiator-host" ] || fail "the native reference build failed (log: $W/logs/native.log)"
	INJECT="-e inject=pipe2:error=ENOSYS:when=1 -e inject=accept4:error=ENOSYS -e inject=socket:error=EINVAL:when=1"
	why=$(exchange "$W/native" "$W/$t.trace")
	exchange_cleanup "$W/$t.trace"
	[ -z "$why" ] || fail "exchange on an emulated old kernel failed: $why"
	# per process: refused calls, fallbacks after them, refused flags asked again
	set -- $(cat "$W/$t.trace"/trace.* | awk '
		{ pid = $1 }
		/ pipe2\(.*= -1 ENOSYS .*\(INJECTED\)/ { inj["pipe2"]++; ref[pid, "pipe2"] = 1; next }
		/ accept4\(.*= -1 ENOSYS .*\(INJECTED\)/ { if (!ref[pid, "accept4"]++) inj["accept4"]++; next }
		/ socket\(.*SOCK_CLOEXEC.*= -1 EINVAL .*\(INJECTED\)/ { inj["socket"]++; ref[pid, "socket"] = 1; next }
		ref[pid, "pipe2"] && / pipe2\(.*O_(CLOEXEC|NONBLOCK)/ { again++ }
		ref[pid, "pipe2"] && (/ pipe\(/ || / pipe2\(\[[0-9]+, [0-9]+\], 0\)/) { fb["pipe2"]++ }
		ref[pid, "accept4"] && / accept\(/ { fb["accept4"]++ }
		ref[pid, "socket"] && / socket\(AF_UNIX, SOCK_STREAM, 0\)/ { fb["socket"]++ }
		END { printf "%d %d %d %d %d %d %d\n", inj["pipe2"], fb["pipe2"], inj["accept4"],
		      fb["accept4"], inj["socket"], fb["socket"], again }')
	[ $# = 7 ] || fail "could not read the traces"
	[ "$1" -gt 0 ] && [ "$2" -gt 0 ] || fail "pipe2: $1 refused, $2 pipe() fallbacks seen"
	[ "$3" -gt 0 ] && [ "$4" -gt 0 ] || fail "accept4: $3 refused, $4 accept() fallbacks seen"
	[ "$5" -gt 0 ] && [ "$6" -gt 0 ] || fail "SOCK_CLOEXEC: $5 refused, $6 plain socket() fallbacks seen"
	[ "$7" = 0 ] || fail "$7 calls asked again for flags refused in the same process"
	result PASS "exchange works without pipe2 ($1 processes fell back, $2 pipe() calls), accept4 ($3, $4 accept() calls), SOCK_CLOEXEC ($5, $6 plain socket() calls); refused flags never asked again"
}

# the syscall names in a directory of traces, one a line
syscall_names() {
	cat "$1"/trace.* | sed -n 's/^[0-9][0-9]*  *\(<\.\.\. \)\{0,1\}\([a-z_0-9]\{1,\}\)[( ].*/\2/p' | sort -u
}

t_syscalls() {
	need strace=strace musl-gcc=musl-tools
	UNISTD=/usr/include/x86_64-linux-gnu/asm/unistd_64.h
	need "$UNISTD=linux-libc-dev"
	[ "$(uname -m)" = x86_64 ] || { [ "$CI" = true ] && fail "x86_64 only"; result SKIP "x86_64 only"; }
	[ -x "$W/native/tests/standin" ] || fail "the native reference build failed (log: $W/logs/native.log)"
	copy_tree "$t"
	build "$W/$t" CC=musl-gcc LDFLAGS=-static all || fail "musl-gcc static: build failed: $(build_error)"
	INJECT=""
	why=$(exchange "$W/$t" "$W/$t.trace")
	exchange_cleanup "$W/$t.trace"
	[ -z "$why" ] || fail "exchange under strace failed: $why"
	syscall_names "$W/$t.trace" > "$W/$t.names"
	[ -s "$W/$t.names" ] || fail "no system calls found in the traces"
	# name -> x86_64 number; an unknown name (9999) counts as new
	awk 'NR == FNR { if ($1 == "#define" && $2 ~ /^__NR_/) nr[substr($2, 6)] = $3; next }
		{ print $1, ($1 in nr) ? nr[$1] : 9999 }' "$UNISTD" "$W/$t.names" | sort -k2n > "$W/$t.numbers"
	sed 's/^/#   /' "$W/$t.numbers"
	count=$(wc -l < "$W/$t.numbers")
	newer=$(awk -v last=$LAST_2632 '$2 > last { print $1 }' "$W/$t.numbers")
	inject="" detail=""
	for s in $newer; do
		fb=$(echo "$FALLBACKS" | awk -v s="$s" '$1 == s { print $2 }')
		[ -n "$fb" ] || fail "$s ($(awk -v s="$s" '$1 == s { print $2 }' "$W/$t.numbers")) is newer than Linux 2.6.32"
		inject="$inject,$s"
		detail="$detail; $s ($(awk -v s="$s" '$1 == s { print $2 }' "$W/$t.numbers")) falls back to $fb on ENOSYS"
	done
	if [ -n "$inject" ]; then
		log "again with ENOSYS injected for ${inject#,}"
		INJECT="-e inject=${inject#,}:error=ENOSYS"
		why=$(exchange "$W/$t" "$W/$t.inject")
		exchange_cleanup "$W/$t.inject"
		[ -z "$why" ] || fail "exchange with ENOSYS injected for ${inject#,} failed: $why"
		# each injected failure is followed, in the same process and within
		# its next 8 system calls, by one of its fallbacks
		bad=$(cat "$W/$t.inject"/trace.* | awk -v fbs="$FALLBACKS" '
			BEGIN { n = split(fbs, l, "\n"); for (i = 1; i <= n; i++) { split(l[i], f, " "); fb[f[1]] = "," f[2] "," } }
			$2 == "---" || $2 == "+++" { next }
			{ pid = $1; name = ($2 == "<...") ? $3 : $2; sub(/\(.*/, "", name)
			  if (pending[pid] != "") {
				if (index(fb[pending[pid]], "," name ",")) { pending[pid] = ""; found++ }
				else if (++after[pid] > 8) { print pending[pid] "->" name; pending[pid] = "" }
			  }
			  if ($0 ~ /= -1 ENOSYS .*\(INJECTED\)/) { pending[pid] = name; after[pid] = 0; seen++ } }
			END { if (!seen) print "no injected ENOSYS seen"
			      for (p in pending) if (pending[p] != "") print pending[p] "->(exit)"
			      print seen + 0, found + 0 > "/dev/stderr" }' 2>"$W/$t.fallbacks")
		[ -z "$bad" ] || fail "no fallback after injected ENOSYS: $(echo $bad)"
		set -- $(cat "$W/$t.fallbacks")
		detail="$detail ($1 injected, $2 fallbacks seen)"
	fi
	result PASS "$count syscalls, all <= $LAST_2632 (2.6.32)$detail"
}

# ---- running them ------------------------------------------------------------------------
for t in $TARGETS; do
	case " $ALL_TARGETS " in *" $t "*) ;; *) echo "unknown target: $t (known: $ALL_TARGETS)" >&2; exit 2 ;; esac
done
# the source, once: the files git tracks (as they are in the work tree), or
# everything but the build products
mkdir "$W/src"
if [ -n "$(git ls-files 2>/dev/null | head -n 1)" ]; then
	git ls-files | while IFS= read -r f; do
		mkdir -p "$W/src/$(dirname "$f")" && cp -p "$f" "$W/src/$f" || exit 1
	done || exit 1
else
	cp -R . "$W/src/" && (cd "$W/src" && make clean >/dev/null) || exit 1
fi
# a native build (cc, default flags): the stand-in and the native side of
# the cross exchanges, and the glibc symbol check's subject
mkdir "$W/queue"
t=native TICKET=00-native
touch "$W/queue/$TICKET"
copy_tree native
build "$W/native" -s all tests/standin tests/poke tests/hostile > "$W/logs/native.log" 2>&1

# started longest first, reported in the usual order
n=10
for t in $LONG_FIRST; do
	case " $TARGETS " in *" $t "*) ;; *) continue ;; esac
	n=$((n + 1))
	touch "$W/queue/$n-$t"
	( START=$(date +%s) TICKET=$n-$t; "t_$t" ) > "$W/logs/$t.log" 2>&1 &
	echo $! > "$W/results/$t.pid"
done
PASSED=0 FAILED=0 SKIPPED=0
for t in $TARGETS; do
	wait "$(cat "$W/results/$t.pid")"
	[ -s "$W/results/$t" ] || echo "FAIL $t stopped without a result (log: $W/logs/$t.log)" > "$W/results/$t"
	cat "$W/results/$t"
	case $(cat "$W/results/$t") in
	PASS*) PASSED=$((PASSED + 1)) ;;
	SKIP*) SKIPPED=$((SKIPPED + 1)) ;;
	*) FAILED=$((FAILED + 1)) ;;
	esac
done
if [ "$FAILED" -eq 0 ] && [ -z "$KEEP" ]; then rm -rf "$W"; else echo "# work dir and logs kept in $W"; fi
if [ "$SKIPPED" -gt 0 ]; then
	echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
else
	echo "$PASSED passed, $FAILED failed"
fi
[ "$FAILED" -eq 0 ]
