#!/bin/sh
#
# tests/vm/build.sh: build the test guest from Debian packages (nothing large
# is committed).  Results go to tests/vm/cache (ignored by git) and are
# reused on the next run:
#
#   cache/vmlinux or cache/vmlinuz   the kernel (uncompressed ELF when we can
#                                    extract it: it boots ~2 s faster in TCG)
#   cache/initramfs.gz               busybox + virtio modules + a static
#                                    negotiator-guest + qemu-ga + test commands
#                                    + rawio (plain port I/O, for make bench)
#                                    + gutil (port names, processes: musl)
#                                    + /etc/init.d/negotiator-guest and its
#                                    /etc/default file
#   cache/blob1m                     1 MiB of random bytes, also in the guest
#
# Needs: apt-get (to download packages), dpkg-deb, cpio, gzip, xz, a C compiler
# that can link statically (musl-gcc preferred, else cc -static), and the
# packages qemu-system-x86 and busybox-static installed (tests/vm/setup.sh).
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
CACHE=${VM_CACHE:-$HERE/cache}
mkdir -p "$CACHE/debs"
say() { echo "vm-build: $*" >&2; }

# ---- packages: the kernel linux-image-amd64 points at, and qemu-guest-agent
if [ ! -d "$CACHE/kernel/boot" ]; then
	KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	[ -n "$KPKG" ] || { say "cannot find the kernel package (apt-get update?)"; exit 1; }
	say "downloading $KPKG"
	(cd "$CACHE/debs" && apt-get download -qq "$KPKG" 2>/dev/null)
	rm -rf "$CACHE/kernel.new" "$CACHE/kernel.min" && mkdir "$CACHE/kernel.new"
	dpkg-deb -x "$CACHE"/debs/linux-image-*.deb "$CACHE/kernel.new"
	# keep only what the guest boots with: the unpacked package is about
	# 400 MB of modules, and CI machines have little disk to spare
	for f in "$CACHE"/kernel.new/boot/vmlinuz-* $(find "$CACHE/kernel.new/lib/modules" \
			-name 'virtio*.ko*'); do
		d="$CACHE/kernel.min${f#"$CACHE/kernel.new"}"
		mkdir -p "$(dirname "$d")" && cp "$f" "$d"
	done
	rm -rf "$CACHE/kernel.new" "$CACHE"/debs/linux-image-*.deb
	mv "$CACHE/kernel.min" "$CACHE/kernel"
fi
if [ ! -d "$CACHE/qga/usr" ]; then
	say "downloading qemu-guest-agent"
	(cd "$CACHE/debs" && apt-get download -qq qemu-guest-agent 2>/dev/null)
	rm -rf "$CACHE/qga.new" && mkdir "$CACHE/qga.new"
	dpkg-deb -x "$CACHE"/debs/qemu-guest-agent_*.deb "$CACHE/qga.new"
	rm -f "$CACHE"/debs/qemu-guest-agent_*.deb
	mv "$CACHE/qga.new" "$CACHE/qga"
fi
KVER=$(ls "$CACHE/kernel/lib/modules" | head -n 1)
VMLINUZ=$(ls "$CACHE"/kernel/boot/vmlinuz-* | head -n 1)

# ---- the kernel: QEMU boots the uncompressed ELF faster than the bzImage
if [ ! -s "$CACHE/vmlinux" ] && [ ! -s "$CACHE/vmlinuz" ]; then
	off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$VMLINUZ" 2>/dev/null | head -n 1 | cut -d: -f1)
	if [ -n "$off" ] && tail -c +$((off + 1)) "$VMLINUZ" | xz -dcq > "$CACHE/vmlinux.new" 2>/dev/null; [ -s "$CACHE/vmlinux.new" ] &&
	   head -c 4 "$CACHE/vmlinux.new" | grep -q ELF; then
		mv "$CACHE/vmlinux.new" "$CACHE/vmlinux"
		say "extracted vmlinux"
	else
		rm -f "$CACHE/vmlinux.new"
		cp "$VMLINUZ" "$CACHE/vmlinuz"
		say "using the compressed kernel (could not extract vmlinux)"
	fi
fi

# ---- a static negotiator-guest (make static: musl when installed) and the
# guest-side test tools, static too: the 2.6.35 guest needs musl (see gutil.c)
build_guest() {
	B="$CACHE/build"
	rm -rf "$B" && mkdir -p "$B"
	(cd "$TOP" && ${MAKE:-make} -s static) >&2
	cp "$TOP/static/negotiator-guest" "$B/"
	if command -v musl-gcc >/dev/null 2>&1; then CC=musl-gcc; else CC=cc; fi
	$CC -O2 -static -o "$B/rawio" "$HERE/rawio.c" >&2
	$CC -O2 -static -o "$B/gutil" "$HERE/gutil.c" >&2
	strip "$B/negotiator-guest" "$B/rawio" "$B/gutil" 2>/dev/null || true
	echo "$B/negotiator-guest"
}
NG=$(build_guest)

# ---- the initramfs
R="$CACHE/root"
rm -rf "$R"
mkdir -p "$R/bin" "$R/sbin" "$R/lib/modules" "$R/proc" "$R/sys" "$R/dev" "$R/tmp" \
	"$R/run" "$R/var/run" "$R/etc" "$R/cmds" "$R/data" "$R/qga"
cp /bin/busybox "$R/bin/busybox"
for a in $("$R/bin/busybox" --list); do
	[ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"
done
for m in virtio_pci_legacy_dev virtio_pci_modern_dev virtio_ring virtio virtio_pci virtio_console; do
	f=$(find "$CACHE/kernel/lib/modules/$KVER" -name "$m.ko*" | head -n 1)
	[ -n "$f" ] && cp "$f" "$R/lib/modules/"
done
cp "$NG" "$R/bin/negotiator-guest"
cp "$CACHE/build/rawio" "$CACHE/build/gutil" "$R/bin/"
cp "$HERE"/guest-commands/* "$R/cmds/"
chmod 755 "$R"/cmds/*
cp "$TOP"/scripts/commands/* "$R/cmds/"
ln -s /bin/busybox "$R/cmds/true"
printf "#!/bin/sh\necho never\n" > "$R/cmds/noexec"
chmod 644 "$R/cmds/noexec"
# copy_dynamic PROGRAM DEST: a dynamic program into the guest, with the shared
# libraries it needs (taken from this machine)
copy_dynamic() {
	cp "$1" "$R$2"
	ldd "$1" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }' | while read -r lib; do
		mkdir -p "$R$(dirname "$lib")"
		cp -L "$lib" "$R$lib"
	done
	[ -e "$R/lib64/ld-linux-x86-64.so.2" ] || { mkdir -p "$R/lib64"; cp -L /lib64/ld-linux-x86-64.so.2 "$R/lib64/"; }
}
QGA="$CACHE/qga/usr/sbin/qemu-ga"
[ -x "$QGA" ] && copy_dynamic "$QGA" /qga/qemu-ga
# strace, for make profile (VM_STRACE=1), when this machine has it
[ -n "$VM_STRACE" ] && ST=$(command -v strace) && copy_dynamic "$ST" /bin/strace
[ -s "$CACHE/blob1m" ] || head -c 1048576 /dev/urandom > "$CACHE/blob1m"
cp "$CACHE/blob1m" "$R/data/blob1m"
# a distribution identity for the built-in commands to find
printf "NAME=\"Negotiator test guest\"\nID=negotiatortest\nVERSION_ID=1\nVERSION_CODENAME=initramfs\n" > "$R/etc/os-release"
# the guest daemon's init.d script as make install writes it, and its
# defaults: /init starts and stops the daemon with it (busybox's sh and
# start-stop-daemon, as on a small guest of the Ubuntu 10.04 era)
rm -rf "$CACHE/svc"
(cd "$TOP" && ${MAKE:-make} -s install-services SHAREDIR="$CACHE/svc" BINDIR=/bin SYSCONFDIR=/etc) >&2
mkdir -p "$R/etc/init.d" "$R/etc/default"
cp "$CACHE/svc/init.d/negotiator-guest" "$R/etc/init.d/"
cat > "$R/etc/default/negotiator-guest" <<EOF
# written by tests/vm/build.sh
DAEMON_ARGS="--daemon --commands-dir /cmds --log-file /tmp/negotiator-guest.log"
PIDFILE=/run/negotiator-guest.pid
EOF
cp "$HERE/guest-init" "$R/init"
# what the KVM probe boots (tests/vm/lib.sh): proof that a vCPU runs this kernel
printf '#!/bin/sh\necho NEGOTIATOR-KVM-PROBE-OK\nwhile :; do sleep 60; done\n' > "$R/kvmprobe"
chmod 755 "$R/init" "$R/kvmprobe"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$CACHE/initramfs.gz.new"
mv "$CACHE/initramfs.gz.new" "$CACHE/initramfs.gz"
say "initramfs $(wc -c < "$CACHE/initramfs.gz") bytes, guest binary $(wc -c < "$NG") bytes"
