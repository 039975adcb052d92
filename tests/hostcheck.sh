#!/bin/sh
#
# tests/hostcheck.sh: negotiator-host --check [GUEST] against fake hosts:
# a fake system root (NEGOTIATOR_SYSROOT: etc/passwd, etc/group,
# etc/libvirt/qemu.conf, sys/module/apparmor, etc/apparmor.d), real UNIX
# sockets (tests/standin listening like QEMU; a stand-in killed with
# SIGKILL leaves stale ones), a real host daemon, and the fake virsh of
# tests/libvirt for the domain XML cases.  Each finding is checked by its
# exact line, and the exit status (0: no problem, 1: a problem, 2: usage).
# Prints "ok - ..." / "not ok - ..." lines and ends with "N passed, N
# failed".
#
# Usage: sh tests/hostcheck.sh [BUILD_DIR]   (default: the current dir)

LC_ALL=C
export LC_ALL
B=$(cd "${1:-.}" && pwd)
S=$(cd "$(dirname "$0")" && pwd)
. "$S/lib.sh"
suite_tmp hostcheck

line() { grep -qxF -- "$1" "$T/out"; }          # exactly this line in the output
noline() { ! grep -qF -- "$1" "$T/out"; }       # nothing with this in it
show() { sed 's/^/# /' "$T/out"; }

ME=$(id -u)
MG=$(id -g)
R=$T/root
AA=$R/etc/apparmor.d
DEF=$R/var/lib/libvirt/qemu/channel/target
SHARE=$(sed -n 's/^#define SHARE_DIR "\(.*\)"$/\1/p' "$B/paths.h")
mkdir -p "$R/etc/libvirt" "$R/sys/module/apparmor/parameters" "$AA/abstractions" \
	"$AA/local/abstractions" "$AA/libvirt" "$DEF" "$T/nobin" "$T/chan" "$T/fv"
chmod 755 "$T/chan" "$DEF"
passwd() { # the fake passwd: libvirt-qemu is us, qemu is someone else
	printf 'root:x:0:0:root:/root:/bin/sh\nlibvirt-qemu:x:%s:%s:Libvirt Qemu:/:/bin/false\n' \
		"$ME" "$MG" > "$R/etc/passwd"
	printf 'qemu:x:64055:64055:QEMU:/:/bin/false\n' >> "$R/etc/passwd"
	printf 'root:x:0:\nkvm:x:%s:\nqemu:x:64055:\n' "$MG" > "$R/etc/group"
	[ "$MG" = 0 ] && printf 'kvm:x:0:\nqemu:x:64055:\n' > "$R/etc/group"
	: > "$R/etc/libvirt/qemu.conf"
}
passwd
KVM=kvm
aa_on() { echo Y > "$R/sys/module/apparmor/parameters/enabled"; }
aa_rules() { printf '%s\n' "$@" > "$AA/abstractions/libvirt-qemu"; }   # RULE...
aa_on
aa_rules '  # libvirt-qemu: what QEMU may touch (a test copy)' '  #include <abstractions/base>' \
	'  /dev/net/tun rw,' "  \"$T/chan/**\" rw," '  capability setgid,'

# guest N NAME DIR [STANDIN OPTIONS]: QEMU's sockets of a guest, played by
# tests/standin (its pidfile: $T/standinN.pid)
guest() {
	gn=$1 gname=$2 gdir=$3
	shift 3
	mkdir -p "$T/g$gn"
	"$B/tests/standin" --pidfile "$T/standin$gn.pid" "$@" "$gdir" "$gname" "$T/g$gn" \
		2>>"$T/standin$gn.log" &
	wait_until test -s "$T/standin$gn.pid"
}
stale() { # N: the stand-in dies, its sockets stay
	kill -9 "$(cat "$T/standin$1.pid")"
	rm -f "$T/standin$1.pid"
}
H2G=negotiator-host-to-guest.0
G2H=negotiator-guest-to-host.0
guest 1 web1 "$T/chan"

# the host daemon, holding web1's sockets
daemon() {
	"$B/negotiator-host" -d -v --no-policy --channels-dir "$T/chan" --control-socket "$T/host.sock" \
		2>>"$T/host.log" &
	HOSTPID=$!
	PIDS="$PIDS $HOSTPID"
	wait_until test -S "$T/host.sock"
}
daemon
wait_until grep -q "web1 guest-to-host: connected to" "$T/host.log"

# --check in the fake root: output in $T/out, status in $rc.  chk: no virsh
# on PATH; vchk: the fake virsh.
HOST="$B/negotiator-host --control-socket $T/host.sock --check"
chk() { NEGOTIATOR_SYSROOT=$R PATH=$T/nobin $HOST "$@" > "$T/out" 2> "$T/err"; rc=$?; }
vchk() {
	NEGOTIATOR_SYSROOT=$R PATH=$S/libvirt:/usr/bin:/bin FAKE_VIRSH=$T/fv FAKE_VIRSH_T=$T \
		$HOST "$@" > "$T/out" 2> "$T/err"
	rc=$?
}

# ---- a healthy host --------------------------------------------------------------------
chk --channels-dir "$T/chan"
show
cat > "$T/want" <<EOF
ok: --channels-dir given: guests come from the sockets in $T/chan (virsh is not asked)
ok: QEMU runs as user libvirt-qemu (uid $ME), group $KVM (gid $MG) (libvirt's default user)
ok: channel directory $T/chan is writable by libvirt-qemu
ok: the host daemon listens on $T/host.sock
ok: AppArmor is enabled: channel sockets are checked against $AA/abstractions/libvirt-qemu, $AA/local/abstractions/libvirt-qemu and $AA/libvirt/libvirt-*.files (2 write rules)
ok: guest web1 has both negotiator channels: $T/chan/web1.$H2G and $T/chan/web1.$G2H
ok: guest web1: QEMU listens on both channel sockets
ok: guest web1: AppArmor lets QEMU write its channel sockets
EOF
check "healthy host: exit 0, every line ok (the daemon holds web1's sockets: still ok)" \
	eval 'test "$rc" = 0 && cmp -s "$T/out" "$T/want" && test ! -s "$T/err"'
cp "$T/out" "$T/healthy.out"
chk --channels-dir "$T/chan" web1
check "healthy host, GUEST: the same lines" eval 'test "$rc" = 0 && cmp -s "$T/out" "$T/want"'

# ---- 1. the channel directory -------------------------------------------------------------
chk --channels-dir "$T/nodir"
check "--channels-dir missing: exit 1" test "$rc" = 1
check "... said, with install -d as the fix" \
	line "problem: channel directory $T/nodir is missing; fix: install -d -o libvirt-qemu -g $KVM -m 0755 $T/nodir"
rmdir "$DEF"
chk
check "the default channel directory (under NEGOTIATOR_SYSROOT) missing: exit 1, said" eval '
	test "$rc" = 1 &&
	line "ok: no virsh on PATH: guests come from the sockets in $DEF" &&
	line "problem: channel directory $DEF is missing; fix: install -d -o libvirt-qemu -g $KVM -m 0755 $DEF"'
mkdir -p "$DEF"
chk
check "... there: ok" line "ok: channel directory $DEF is writable by libvirt-qemu"

echo 'user = "qemu"' > "$R/etc/libvirt/qemu.conf"
chk --channels-dir "$T/chan"
check "qemu.conf user = \"qemu\": that user, its primary group" \
	line 'ok: QEMU runs as user qemu (uid 64055), group qemu (gid 64055) (user = in qemu.conf)'
check "a directory of another user, mode 0755: not writable by QEMU's user, exit 1" eval '
	test "$rc" = 1 &&
	line "problem: channel directory $T/chan is not writable by qemu (uid 64055, gid 64055): owner uid $ME, group gid $MG, mode 0755; fix: install -d -o qemu -g qemu -m 0755 $T/chan"'
mkdir -p "$T/perm"
permchk() { # MODE: the line about $T/perm
	chmod "$1" "$T/perm"
	chk --channels-dir "$T/perm"
}
permchk 0757
check "... mode 0757: writable through the other bits" line "ok: channel directory $T/perm is writable by qemu"
permchk 0775
check "... mode 0775, QEMU's user not in the group: not writable" \
	line "problem: channel directory $T/perm is not writable by qemu (uid 64055, gid 64055): owner uid $ME, group gid $MG, mode 0775; fix: install -d -o qemu -g qemu -m 0755 $T/perm"
grep -v "^[^:]*:x:$MG:" "$R/etc/group" > "$T/grp"
echo "kvm:x:$MG:someone,qemu" >> "$T/grp"
cp "$T/grp" "$R/etc/group"
chk --channels-dir "$T/perm"
check "... mode 0775, QEMU's user a member of the group (/etc/group): writable" \
	line "ok: channel directory $T/perm is writable by qemu"
permchk 0745
check "... mode 0745, a member: not writable (the group bits apply)" \
	line "problem: channel directory $T/perm is not writable by qemu (uid 64055, gid 64055): owner uid $ME, group gid $MG, mode 0745; fix: install -d -o qemu -g qemu -m 0755 $T/perm"
passwd
printf '# comment\nuser = "+0"\n  group = "kvm"\n' > "$R/etc/libvirt/qemu.conf"
permchk 0500
check "qemu.conf user = \"+0\" (root), group = \"kvm\": root may write anywhere" eval '
	line "ok: QEMU runs as user root (uid 0), group $KVM (gid $MG) (user = in qemu.conf)" &&
	line "ok: channel directory $T/perm is writable by root"'
echo 'user = "nosuch"' > "$R/etc/libvirt/qemu.conf"
chk --channels-dir "$T/chan"
check "qemu.conf names a user passwd does not have: exit 1, said" eval '
	test "$rc" = 1 &&
	line "problem: $R/etc/libvirt/qemu.conf sets user = \"nosuch\", which is not in $R/etc/passwd; fix: useradd --system nosuch, or set user = \"NAME\" in $R/etc/libvirt/qemu.conf to a user that exists, then systemctl restart libvirtd" &&
	line "ok: channel directory $T/chan exists (whether QEMU may write to it is unknown)"'
printf 'user = "qemu"\ngroup = "nosuch"\n' > "$R/etc/libvirt/qemu.conf"
chk --channels-dir "$T/chan"
check "qemu.conf names a group the group file does not have: said" \
	line "problem: $R/etc/libvirt/qemu.conf sets group = \"nosuch\", which is not in $R/etc/group; fix: groupadd --system nosuch, or set group = \"NAME\" in $R/etc/libvirt/qemu.conf to a group that exists"
passwd
echo 'root:x:0:0:root:/root:/bin/sh' > "$R/etc/passwd"
chk --channels-dir "$T/chan"
check "neither libvirt-qemu nor qemu in passwd, no user = : unknown, said" \
	line "problem: the user QEMU runs as is unknown: $R/etc/libvirt/qemu.conf sets no user = \"NAME\", and neither libvirt-qemu nor qemu is in $R/etc/passwd; fix: install libvirt's QEMU driver (apt-get install libvirt-daemon-system, or dnf install libvirt), or set user = \"NAME\" in $R/etc/libvirt/qemu.conf"
passwd

# ---- 2. guests with one channel, none, unknown ------------------------------------------------
mkdir -p "$T/chan1" "$T/chan2"
guest 2 half "$T/chan1" --port $H2G
chk --channels-dir "$T/chan1"
check "a guest with one channel: exit 1, which one is missing, and the fix" eval '
	test "$rc" = 1 &&
	line "problem: guest half has only one negotiator channel: $G2H is missing ($H2G is at $T/chan1/half.$H2G); fix: negotiator-host --libvirt-xml half, virsh edit half (paste the missing <channel> element into <devices>), then virsh shutdown half and, once virsh list no longer shows it, virsh start half (a reboot does not add devices)"'
check "... the one it has is listened on" line "ok: guest half: QEMU listens on its $H2G socket"
check "... AppArmor (no rule for $T/chan1) denies it" \
	line "problem: guest half: AppArmor does not let QEMU write $T/chan1/half.$H2G (no rule allows it); fix: echo '\"$T/chan1/half.$H2G\" rw,' >> $AA/local/abstractions/libvirt-qemu, then apparmor_parser -r $R/etc/apparmor.d/libvirt/libvirt-\$(virsh domuuid half) (or virsh shutdown half and virsh start half)"
chk --channels-dir "$T/chan" nosuch
check "an unknown GUEST (no virsh): exit 1, said, and only its findings" eval '
	test "$rc" = 1 &&
	line "problem: guest nosuch: no channel socket of it in $T/chan; fix: virsh start nosuch; if it runs, it has no negotiator channels: negotiator-host --libvirt-xml nosuch, virsh edit nosuch (paste both <channel> elements into <devices>), then virsh shutdown nosuch and, once virsh list no longer shows it, virsh start nosuch (a reboot does not add devices)" &&
	noline "guest web1"'
chk --channels-dir "$T/chan2"
check "no guest at all in the directory: exit 1, said" eval '
	test "$rc" = 1 &&
	line "problem: no guest has negotiator channels in $T/chan2; fix: negotiator-host --libvirt-xml GUEST, virsh edit GUEST (paste both <channel> elements into <devices>), then virsh shutdown GUEST and, once virsh list no longer shows it, virsh start GUEST (a reboot does not add devices)"'

# ---- 3. stale channel sockets ------------------------------------------------------------------
guest 3 dead "$T/chan2"
chk --channels-dir "$T/chan2"
check "a live QEMU (stand-in) nobody holds: ok" eval '
	line "ok: guest dead: QEMU listens on both channel sockets" && noline "nothing listens"'
stale 3
chk --channels-dir "$T/chan2"
show
check "its QEMU killed, the sockets left: exit 1, each stale socket said, with the fix" eval '
	test "$rc" = 1 &&
	line "problem: guest dead: nothing listens on $T/chan2/dead.$H2G: a stale socket of a QEMU that is gone; fix: virsh start dead if the domain should run, else rm $T/chan2/dead.$H2G" &&
	line "problem: guest dead: nothing listens on $T/chan2/dead.$G2H: a stale socket of a QEMU that is gone; fix: virsh start dead if the domain should run, else rm $T/chan2/dead.$G2H" &&
	noline "QEMU listens"'

# ---- 5. AppArmor: the rules and the glob matcher --------------------------------------------------
aachk() { # RULE...: the abstraction holds these rules, web1 checked
	aa_rules "$@"
	chk --channels-dir "$T/chan" web1
}
AOK="ok: guest web1: AppArmor lets QEMU write its channel sockets"
aa_denied() { # PORT [WHY]
	echo "problem: guest web1: AppArmor does not let QEMU write $T/chan/web1.$1 (${2:-no rule allows it}); fix: echo '\"$T/chan/web1.$1\" rw,' >> $AA/local/abstractions/libvirt-qemu, then apparmor_parser -r $R/etc/apparmor.d/libvirt/libvirt-\$(virsh domuuid web1) (or virsh shutdown web1 and virsh start web1)"
}
aachk "$T/chan/* rw,"
check "AppArmor: /DIR/* rw, (unquoted) allows the sockets in DIR" eval 'test "$rc" = 0 && line "$AOK"'
aachk "  \"$T/*\" rw,"
check "AppArmor: * does not cross a /: denied, exit 1, each socket said" eval '
	test "$rc" = 1 && line "$(aa_denied $H2G)" && line "$(aa_denied $G2H)" && noline "$AOK"'
aachk "  \"$T/**\" rwk,"
check "AppArmor: ** crosses /" line "$AOK"
aachk "  owner $T/ch?n/web[1].negotiator-*.0 rw,"
check "AppArmor: [ is a plain character here (no classes): denied" line "$(aa_denied $H2G)"
aachk "  owner $T/ch?n/web1.negotiator-{host-to-guest,guest-to-host}.0 rw,"
check "AppArmor: ? and {a,b} match, owner ignored" eval 'test "$rc" = 0 && line "$AOK"'
aachk "  $T/chan/web1.negotiator-{host-to-{guest,nobody},x}.0 rw,"
check "AppArmor: nested {}: one socket allowed, the other denied" eval '
	line "$(aa_denied $G2H)" && noline "web1.$H2G (no rule"'
aachk "  $T/chan/** r," "  $T/chan/** ix,"
check "AppArmor: rules without w do not count" line "$(aa_denied $H2G)"
aachk "  $T/chan/** rw," "  deny $T/chan/*guest-to-host* w,"
check "AppArmor: a deny rule wins, and is said" eval '
	line "$(aa_denied $G2H "a deny rule matches it")" && noline "web1.$H2G ("'
aachk "  /dev/net/tun rw,"
echo "  \"$T/chan/**\" rw," > "$AA/local/abstractions/libvirt-qemu"
chk --channels-dir "$T/chan" web1
check "AppArmor: a rule in local/abstractions/libvirt-qemu counts" line "$AOK"
: > "$AA/local/abstractions/libvirt-qemu"
echo "  \"$T/chan/web1.negotiator-*\" rw," > "$AA/libvirt/libvirt-0a1b2c3d-1111-2222-3333-444455556666.files"
chk --channels-dir "$T/chan" web1
check "AppArmor: a rule in libvirt/libvirt-UUID.files counts" line "$AOK"
mv "$AA/libvirt/libvirt-0a1b2c3d-1111-2222-3333-444455556666.files" "$AA/libvirt/other.files"
chk --channels-dir "$T/chan" web1
check "AppArmor: ... other file names there do not" line "$(aa_denied $H2G)"
rm -f "$AA/libvirt/other.files"
aa_denied $H2G > "$T/fixline"
sh -c "$(sed 's/^.*; fix: \(echo .* >> [^,]*\), then .*$/\1/' "$T/fixline")"
aa_denied $G2H > "$T/fixline"
sh -c "$(sed 's/^.*; fix: \(echo .* >> [^,]*\), then .*$/\1/' "$T/fixline")"
chk --channels-dir "$T/chan" web1
check "AppArmor: the fix's echo lines, run as they are, make it ok" eval 'test "$rc" = 0 && line "$AOK"'
echo N > "$R/sys/module/apparmor/parameters/enabled"
chk --channels-dir "$T/chan" web1
check "AppArmor not enabled: said, no rule checked" eval '
	test "$rc" = 0 &&
	line "ok: AppArmor is not enabled ($R/sys/module/apparmor/parameters/enabled): no profile to check" &&
	noline "guest web1: AppArmor"'
aa_on
mv "$AA/abstractions/libvirt-qemu" "$T/abs.saved"
chk --channels-dir "$T/chan" web1
check "AppArmor enabled, no libvirt-qemu abstraction: said, not checked" eval '
	test "$rc" = 0 &&
	line "ok: AppArmor is enabled, but $AA/abstractions/libvirt-qemu is not there: libvirt does not confine QEMU with it" &&
	noline "guest web1: AppArmor"'
aa_rules '  /dev/net/tun rw,' "  \"$T/chan/**\" rw,"

# ---- guests found through virsh: domain XML -------------------------------------------------------
# good: both channels at a path of the operator's (with an entity), allowed
# by its libvirt-UUID.files; denied: the same, in a directory no rule
# names; plain: no channels (tests/libvirt/plain.xml); halfway: one
# (tests/libvirt/halfway.xml); esc: an escape character in its path
mkdir -p "$T/srv/r&d" "$T/srv/no"
xml() { # NAME ID DIR: a domain whose channels are at DIR/NAME.PORT
	{ echo "<domain type='kvm' id='$2'><name>$1</name><uuid>$1-uuid</uuid><devices>"
	  for p in $H2G $G2H; do
		echo "<channel type='unix'><source mode='bind' path='$3/$1.$p'/>"
		echo "<target type='virtio' name='$p'/></channel>"
	  done
	  echo "</devices></domain>"; } > "$T/fv/$1.xml"
}
xml good 3 '@T@/srv/r&amp;d'
xml denied 4 '@T@/srv/no'
xml esc 5 '@T@/srv/no/e&#27;[31m'
guest 4 good "$T/srv/r&d"
guest 5 denied "$T/srv/no"
guest 6 halfway "$T/chan" --scheme domain-id --id 9 --port $H2G
printf '  "%s" rw,\n' "$T/srv/r&d/good.$H2G" "$T/srv/r&d/good.$G2H" > "$AA/libvirt/libvirt-good-uuid.files"
printf 'good\ndenied\nplain\nhalfway\n' > "$T/fv/list"
vchk
show
check "virsh: exit 1, and which discovery is used" eval '
	test "$rc" = 1 &&
	line "ok: virsh is on PATH: guests and their sockets come from libvirt (virsh list, virsh dumpxml): 4 running domains"'
check "virsh: the default directory and each socket's directory checked" eval '
	line "ok: channel directory $DEF is writable by libvirt-qemu" &&
	line "ok: channel directory $T/srv/r&d is writable by libvirt-qemu" &&
	line "ok: channel directory $T/srv/no is writable by libvirt-qemu" &&
	line "ok: channel directory $T/chan/domain-9-halfway is writable by libvirt-qemu"'
check "virsh: a custom path= (an entity in it) allowed by libvirt-UUID.files: ok" eval '
	line "ok: guest good has both negotiator channels: $T/srv/r&d/good.$H2G and $T/srv/r&d/good.$G2H" &&
	line "ok: guest good: QEMU listens on both channel sockets" &&
	line "ok: guest good: AppArmor lets QEMU write its channel sockets"'
check "virsh: a custom path= no rule allows: denied, the fix quoted for the shell" \
	line "problem: guest denied: AppArmor does not let QEMU write $T/srv/no/denied.$G2H (no rule allows it); fix: echo '\"$T/srv/no/denied.$G2H\" rw,' >> $AA/local/abstractions/libvirt-qemu, then apparmor_parser -r $R/etc/apparmor.d/libvirt/libvirt-\$(virsh domuuid denied) (or virsh shutdown denied and virsh start denied)"
check "virsh: a domain without negotiator channels: said, with the fix" \
	line "problem: guest plain has no negotiator channels; fix: negotiator-host --libvirt-xml plain, virsh edit plain (paste both <channel> elements into <devices>), then virsh shutdown plain and, once virsh list no longer shows it, virsh start plain (a reboot does not add devices)"
check "virsh: a domain with one channel: which one is missing" \
	line "problem: guest halfway has only one negotiator channel: $G2H is missing ($H2G is at $T/chan/domain-9-halfway/$H2G); fix: negotiator-host --libvirt-xml halfway, virsh edit halfway (paste the missing <channel> element into <devices>), then virsh shutdown halfway and, once virsh list no longer shows it, virsh start halfway (a reboot does not add devices)"
vchk good
check "virsh, GUEST: its findings only, exit 0 when it is fine" eval '
	test "$rc" = 0 && noline "guest denied" && noline "guest plain" && noline "$T/srv/no" &&
	line "ok: guest good: AppArmor lets QEMU write its channel sockets"'
vchk nosuch
check "virsh, an unknown GUEST: exit 1, said" eval '
	test "$rc" = 1 &&
	line "problem: guest nosuch: no running domain of that name (virsh list --name); fix: virsh start nosuch, or check the name with virsh list --all"'
echo esc >> "$T/fv/list"
vchk esc
check "virsh: a control character in a path from the XML is printed escaped" eval '
	test "$rc" = 1 && ! grep -q "$(printf "\033")" "$T/out" &&
	line "problem: guest esc: its $H2G socket $T/srv/no/e\\x1b[31m/esc.$H2G does not exist; fix: virsh shutdown esc, then virsh start esc (QEMU makes the socket when the domain starts)"'
: > "$T/fv/list.empty"
mv "$T/fv/list" "$T/fv/list.full"
mv "$T/fv/list.empty" "$T/fv/list"
vchk
mv "$T/fv/list.full" "$T/fv/list"
check "virsh lists no running domain: exit 1, said" eval '
	test "$rc" = 1 &&
	line "ok: virsh is on PATH: guests and their sockets come from libvirt (virsh list, virsh dumpxml): 0 running domains" &&
	line "problem: virsh lists no running domain; fix: virsh start GUEST"'
touch "$T/fv/fail"
vchk
rm -f "$T/fv/fail"
check "virsh fails: a problem with virsh's reason, the directory stands in" eval '
	test "$rc" = 1 &&
	line "problem: virsh is on PATH but failed (virsh list failed: error: failed to connect to the hypervisor), so guests were looked for in $DEF instead; fix: start libvirtd (systemctl start libvirtd) and check that virsh list --name works, or give --channels-dir DIR"'

# ---- 4 and 6. the control socket and the daemon ------------------------------------------------
kill $HOSTPID
wait_until test ! -S "$T/host.sock"
chk --channels-dir "$T/chan" web1
check "no daemon: exit 1, said, with how to start it on that socket" eval '
	test "$rc" = 1 &&
	line "problem: the host daemon is not running (nothing listens on $T/host.sock); fix: negotiator-host -d --control-socket $T/host.sock, under a supervisor ($SHARE has systemd, init.d, upstart and supervisord files: add --control-socket $T/host.sock there)"'
if [ "$ME" = 0 ]; then tried=/var/run/negotiator-host.sock
else tried="/var/run/negotiator-host.sock or /tmp/negotiator-host-$ME.sock"; fi
if [ ! -e /var/run/negotiator-host.sock ] && [ ! -e "/tmp/negotiator-host-$ME.sock" ]; then
	NEGOTIATOR_SYSROOT=$R PATH=$T/nobin $B/negotiator-host --check --channels-dir "$T/chan" web1 \
		> "$T/out" 2>&1; rc=$?
	check "no daemon on the default sockets: the clients' order, the systemd unit as the fix" eval '
		test "$rc" = 1 &&
		line "problem: the host daemon is not running (nothing listens on $tried); fix: cp $SHARE/systemd/negotiator-host.service /etc/systemd/system/ && systemctl daemon-reload && systemctl enable --now negotiator-host (without systemd: $SHARE/init.d, upstart or supervisord; or negotiator-host -d)"'
else
	note "a daemon socket exists at the default paths: its absence not checked"
fi
check "... and the unit it names is the one in scripts/" test -f "$S/../scripts/systemd/negotiator-host.service"
daemon
kill -9 $HOSTPID
wait $HOSTPID 2>/dev/null
chk --channels-dir "$T/chan" web1
check "a daemon killed, its socket left: stale, with rm as the fix; and no daemon" eval '
	test "$rc" = 1 &&
	line "problem: control socket $T/host.sock is stale: no daemon listens on it; fix: rm $T/host.sock (a daemon started there replaces it too)" &&
	grep -q "^problem: the host daemon is not running" "$T/out"'
rm -f "$T/host.sock"
echo x > "$T/host.sock"
chk --channels-dir "$T/chan" web1
check "a regular file at the control socket's path: said (clients stop there)" eval '
	line "problem: $T/host.sock is not a socket (clients refuse it); fix: rm $T/host.sock if no daemon should be there, or give --control-socket PATH" &&
	noline "the host daemon is not running"'
rm -f "$T/host.sock"
if [ "$ME" = 0 ] && ! grep -q '^[^:]*:[^:]*:54321:' /etc/passwd; then
	daemon
	chown 54321 "$T/host.sock"
	chk --channels-dir "$T/chan" web1
	check "a control socket of another user: exit 1, whose, and what to do" eval '
		test "$rc" = 1 &&
		line "problem: control socket $T/host.sock belongs to uid 54321, not to you or root (clients refuse it); fix: run negotiator-host as that user, have its owner or root rm $T/host.sock, or give --control-socket PATH" &&
		noline "the host daemon is not running"'
	chown 0 "$T/host.sock"
	: > "$AA/local/abstractions/libvirt-qemu"
	rm -f "$AA/libvirt/"*.files
	chk --channels-dir "$T/chan" web1
	diff "$T/healthy.out" "$T/out" | sed 's/^/# /'
	check "... given back: healthy again (exit 0)" eval 'test "$rc" = 0 && cmp -s "$T/out" "$T/healthy.out"'
else
	note "not root: a socket of another user cannot be made; not checked"
fi

# ---- usage -----------------------------------------------------------------------------------
usage() { # WANT ARGS...
	want=$1
	shift
	$B/negotiator-host "$@" > "$T/out" 2> "$T/err"; rc=$?
	test "$rc" = 2 -a ! -s "$T/out" -a "$(cat "$T/err")" = "negotiator-host: error: $want"
}
check "--check with two guests: usage error (2)" \
	usage "--check takes one guest name at most (try --help)" --check a b
check "--check --json: usage error (2)" \
	usage "--json goes with -g, -c, -e or --status (try --help)" --check --json
check "--check --all: usage error (2)" usage "--all goes with -e or -c (try --help)" --check --all
check "--check with -g: usage error (2)" \
	usage "give only one of -d, -g, -c, -e, --status, --libvirt-xml, --check (try --help)" --check -g
check "--help lists --check" eval '$B/negotiator-host --help | grep -q "^      --check \[GUEST\]"'

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
