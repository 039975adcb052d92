# tests/vm/lib.sh: start and stop test guests (sourced by check.sh, bench.sh).
# Needs: VM_DIR (a temp dir of the caller), CACHE (tests/vm/cache).
#
# vm_start NAME [--no-negotiator]: boot a guest whose channel sockets are
#   VM_DIR/ch/NAME.negotiator-host-to-guest.0, ...guest-to-host.0 and
#   ...org.qemu.guest_agent.0 (libvirt's naming), serial log VM_DIR/NAME.console,
#   pidfile VM_DIR/NAME.qemu.pid.  Only processes we started are ever killed.
# vm_stop NAME: kill that QEMU (pidfile), as a power cut.
# vm_watchdog: the caller's EXIT trap stops its guests; this also covers a
#   caller killed with SIGKILL (or a TERM its shell defers while it waits):
#   a background watcher kills the guests of VM_DIR once the caller is gone.

vm_accel() {
	# KVM when it really works, else TCG (see shared notes: a nested /dev/kvm
	# may exist and still fail); VM_ACCEL=kvm|tcg forces one.
	if [ -n "$VM_ACCEL" ]; then echo "$VM_ACCEL"; return; fi
	if [ -w /dev/kvm ] && qemu-system-x86_64 -accel kvm -machine none -display none \
		-monitor none -serial none -S -daemonize -pidfile "$VM_DIR/kvmprobe.pid" 2>/dev/null; then
		kill "$(cat "$VM_DIR/kvmprobe.pid")" 2>/dev/null
		echo kvm
	else
		echo tcg
	fi
}

vm_start() {
	name=$1
	ports="negotiator-host-to-guest.0 negotiator-guest-to-host.0 org.qemu.guest_agent.0 bench.raw.0"
	[ "$2" = "--no-negotiator" ] && ports="org.qemu.guest_agent.0"
	set -- -accel "$VM_ACCEL_USED" -m 256 -smp 1 -display none -monitor none -no-reboot \
		-serial "file:$VM_DIR/$name.console" -daemonize -pidfile "$VM_DIR/$name.qemu.pid" \
		-kernel "$VM_KERNEL" -initrd "$CACHE/initramfs.gz" \
		-append "console=ttyS0 quiet panic=-1 rdinit=/init" \
		-device virtio-serial-pci,id=virtio-serial0
	[ "$VM_ACCEL_USED" = kvm ] && set -- "$@" -cpu host
	n=1
	for p in $ports; do
		set -- "$@" -chardev "socket,id=charchannel$n,path=$VM_DIR/ch/$name.$p,server=on,wait=off" \
			-device "virtserialport,bus=virtio-serial0.0,nr=$n,chardev=charchannel$n,id=channel$n,name=$p"
		n=$((n + 1))
	done
	rm -f "$VM_DIR/$name.qemu.pid"
	qemu-system-x86_64 "$@" 2>>"$VM_DIR/$name.qemu.log"
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

VM_KERNEL="$CACHE/vmlinux"
[ -s "$VM_KERNEL" ] || VM_KERNEL="$CACHE/vmlinuz"
