#!/bin/sh
#
# tests/vm/check.sh: `make vm-check`.  Every scenario of tests/vm/suite.sh on
# two guest kernels:
#   - Debian's current kernel (from tests/vm/build.sh), virtio as modules;
#   - a legacy kernel: VM_LEGACY_KERNEL=PATH, by default Linux 2.6.35.6 from
#     ../shared/kernels/bzImage-2.6.35.6 beside this checkout (the first
#     multiport virtio_console: no SIGIO, late ports, read() = 0 while no host).
# Before them, a check that the KVM probe falls back to TCG when a KVM boot
# fails.  Prints each suite's lines, one "vm-check RELEASE: N passed, M failed"
# per kernel, then the overall "N passed, M failed".
#
# A missing legacy kernel is said on one line; under CI=true it counts as a
# failure, elsewhere the legacy suite is only skipped.

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
CACHE=${VM_CACHE:-$HERE/cache}
LEGACY=${VM_LEGACY_KERNEL:-$TOP/../shared/kernels/bzImage-2.6.35.6}
PASSED=0
FAILED=0

# add_counts FILE: fold a suite's "N passed, M failed" line into the totals
add_counts() {
	set -- $(sed -n 's/^vm-check .*: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$1" | tail -n 1)
	if [ $# -eq 2 ]; then
		PASSED=$((PASSED + $1)); FAILED=$((FAILED + $2))
	else
		FAILED=$((FAILED + 1))   # the suite died before its summary
	fi
}

# ---- the KVM probe's fallback, with a QEMU that fails the way a broken
# nested KVM does (tests/vm/lib.sh vm_accel)
probe_check() {
	d=$(mktemp -d "${TMPDIR:-/tmp}/negotiator-kvmprobe.XXXXXX") || return 1
	mkdir "$d/bin"
	printf '#!/bin/sh\necho "qemu-system-x86_64: error: failed to set MSR 0x48f to 0x7fefff00036dfb" >&2\nexit 1\n' \
		> "$d/bin/qemu-system-x86_64"
	chmod 755 "$d/bin/qemu-system-x86_64"
	: > "$d/kvm"
	out=$(PATH="$d/bin:$PATH" VM_KVM_DEV="$d/kvm" VM_DIR="$d" CACHE="$CACHE" VM_ACCEL= sh -c \
		". '$HERE/lib.sh'; vm_accel" 2> "$d/err")
	lines=$(wc -l < "$d/err")
	ok=0
	[ "$out" = tcg ] && [ "$lines" -eq 1 ] && grep -q "failed to set MSR" "$d/err" && ok=1
	if [ $ok = 1 ]; then
		PASSED=$((PASSED + 1)); echo "PASS kvm probe: a failing KVM boot falls back to TCG with one line"
	else
		FAILED=$((FAILED + 1)); echo "FAIL kvm probe: a failing KVM boot falls back to TCG with one line"
		echo "    got '$out' and $lines line(s): $(cat "$d/err")"
	fi
	rm -rf "$d"
}
probe_check

# ---- the suites
run_suite() { # KERNEL
	log=$(mktemp "${TMPDIR:-/tmp}/negotiator-vmsuite.XXXXXX")
	VM_KERNEL=$1 sh "$HERE/suite.sh" | tee "$log"
	add_counts "$log"
	grep '^vm-check ' "$log" | tail -n 1 >> "$SUMMARY"
	rm -f "$log"
}
SUMMARY=$(mktemp "${TMPDIR:-/tmp}/negotiator-vmsum.XXXXXX")
trap 'rm -f "$SUMMARY"' EXIT
K=$CACHE/vmlinux
[ -s "$K" ] || K=$CACHE/vmlinuz
run_suite "$K"
if [ -s "$LEGACY" ]; then
	run_suite "$LEGACY"
elif [ "$CI" = true ]; then
	echo "vm-check: no legacy kernel at $LEGACY (set VM_LEGACY_KERNEL=PATH): counted as a failure under CI" |
		tee -a "$SUMMARY"
	FAILED=$((FAILED + 1))
else
	echo "vm-check: no legacy kernel at $LEGACY (set VM_LEGACY_KERNEL=PATH): legacy suite skipped" |
		tee -a "$SUMMARY"
fi
echo "#"
cat "$SUMMARY"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
