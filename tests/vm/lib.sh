# tests/vm/lib.sh: start and stop test guests (sourced by check.sh, bench.sh).
# Needs: VM_DIR (a temp dir of the caller), CACHE (tests/vm/cache).
#
# vm_accel: kvm or tcg (a real KVM boot decides; see below).
# vm_start NAME [--no-negotiator]: boot a guest whose channel sockets are
#   VM_DIR/ch/NAME.negotiator-host-to-guest.0, ...guest-to-host.0 and
#   ...org.qemu.guest_agent.0 (libvirt's naming), serial log VM_DIR/NAME.console,
#   pidfile VM_DIR/NAME.qemu.pid.  Only processes we started are ever killed.
#   VM_APPEND: more kernel arguments (negotiator.verbose: the guest daemon
#   runs with -v; tests/vm/guest-init).
# vm_stop NAME: kill that QEMU (pidfile), as a power cut.
# vm_watchdog: the caller's EXIT trap stops its guests; this also covers a
#   caller killed with SIGKILL (or a TERM its shell defers while it waits):
#   a background watcher kills the guests of VM_DIR once the caller is gone.

# vm_qemu ACCEL ARGS...: QEMU on VM_KERNEL with our initramfs, the CPU model
# that goes with the accelerator, and ARGS
vm_qemu() {
	a=$1; shift
	[ "$a" = kvm ] && set -- -cpu host "$@"
	qemu-system-x86_64 -accel "$a" -m 256 -smp 1 -display none -monitor none -no-reboot \
		-kernel "$VM_KERNEL" -initrd "$CACHE/initramfs.gz" \
		-device virtio-serial-pci,id=virtio-serial0 "$@"
}

vm_accel() {
	# KVM only when a real vCPU boots this very kernel with the CPU model the
	# suite will use: a nested /dev/kvm may exist and still fail ("failed to
	# set MSR" with -cpu host, or "KVM internal error" once the guest runs).
	# Else TCG, said in one line on stderr.  VM_ACCEL=kvm|tcg forces one.
	if [ -n "$VM_ACCEL" ]; then echo "$VM_ACCEL"; return; fi
	kvm=${VM_KVM_DEV:-/dev/kvm}
	if [ ! -w "$kvm" ]; then echo tcg; return; fi
	rm -f "$VM_DIR/kvmprobe.pid" "$VM_DIR/kvmprobe.console"
	if ! vm_qemu kvm -append "console=ttyS0 quiet panic=-1 rdinit=/kvmprobe" \
		-serial "file:$VM_DIR/kvmprobe.console" -daemonize -pidfile "$VM_DIR/kvmprobe.pid" \
		> "$VM_DIR/kvmprobe.log" 2>&1; then
		echo "# KVM unusable ($(head -c 200 "$VM_DIR/kvmprobe.log" | tr '\n' ' ')): using TCG" >&2
		echo tcg; return
	fi
	i=0
	while [ $i -lt 200 ] && ! grep -q NEGOTIATOR-KVM-PROBE-OK "$VM_DIR/kvmprobe.console" 2>/dev/null &&
	      kill -0 "$(cat "$VM_DIR/kvmprobe.pid" 2>/dev/null)" 2>/dev/null; do
		sleep 0.1; i=$((i + 1))
	done
	kill -9 "$(cat "$VM_DIR/kvmprobe.pid" 2>/dev/null)" 2>/dev/null
	if grep -q NEGOTIATOR-KVM-PROBE-OK "$VM_DIR/kvmprobe.console" 2>/dev/null; then
		echo kvm
	else
		echo "# KVM unusable (a guest did not boot under KVM with -cpu host): using TCG" >&2
		echo tcg
	fi
}

vm_start() {
	name=$1
	ports="negotiator-host-to-guest.0 negotiator-guest-to-host.0 org.qemu.guest_agent.0 bench.raw.0"
	[ "$2" = "--no-negotiator" ] && ports="org.qemu.guest_agent.0"
	set -- -serial "file:$VM_DIR/$name.console" -daemonize \
		-pidfile "$VM_DIR/$name.qemu.pid" -append "console=ttyS0 quiet panic=-1 rdinit=/init${VM_APPEND:+ $VM_APPEND}"
	n=1
	for p in $ports; do
		set -- "$@" -chardev "socket,id=charchannel$n,path=$VM_DIR/ch/$name.$p,server=on,wait=off" \
			-device "virtserialport,bus=virtio-serial0.0,nr=$n,chardev=charchannel$n,id=channel$n,name=$p"
		n=$((n + 1))
	done
	rm -f "$VM_DIR/$name.qemu.pid"
	vm_qemu "$VM_ACCEL_USED" "$@" 2>>"$VM_DIR/$name.qemu.log"
}

vm_stop() {
	f="$VM_DIR/$1.qemu.pid"
	[ -s "$f" ] || return 0
	kill -9 "$(cat "$f")" 2>/dev/null
	rm -f "$f"
}

vm_stop_all() {
	for f in "$VM_DIR"/*.qemu.pid; do
		[ -s "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
		rm -f "$f"
	done
}

vm_watchdog() {
	parent=$$
	(
		trap '' INT TERM HUP
		while kill -0 "$parent" 2>/dev/null; do sleep 1; done
		vm_stop_all
	) < /dev/null > /dev/null 2>&1 &
}

# the kernel: VM_KERNEL when the caller set it, else Debian's from the cache
if [ -z "$VM_KERNEL" ]; then
	VM_KERNEL="$CACHE/vmlinux"
	[ -s "$VM_KERNEL" ] || VM_KERNEL="$CACHE/vmlinuz"
fi
