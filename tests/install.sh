#!/bin/sh
#
# tests/install.sh: `make install` as a packager runs it, in a copy of the
# sources (so that this build's compiled-in paths stay as they are): with
# DESTDIR and PREFIX, programs and scripts 0755, data 0644, the empty user
# commands directory, @BINDIR@ replaced in the service files, whose ordering
# and logging lines are checked (and the systemd units verified by
# systemd-analyze where there is one, else a "skip -" line).  Prints "ok -"
# / "not ok -" lines and "N passed, N failed" (", N skipped" after a skip).
#
# Usage: sh tests/install.sh [SOURCE_DIR]   (default: the current dir)

LC_ALL=C
export LC_ALL
SRC=$(cd "${1:-.}" && pwd)
S=$(cd "$(dirname "$0")" && pwd)
. "$S/lib.sh"
suite_tmp install
SKIPPED=0

mode() { ls -ld "$1" 2>/dev/null | cut -c1-10; }
is_mode() { [ "$(mode "$1")" = "$2" ]; }

mkdir "$T/src"
(cd "$SRC" && cp -R Makefile GNUmakefile ./*.c ./*.h compat scripts man "$T/src/")
rm -f "$T/src/paths.h" "$T/src"/compat/*.o "$T/src/compat/config.h" "$T/src/compat/config.stamp"
(cd "$T/src" && make install PREFIX=/usr DESTDIR="$T/root" > "$T/make.log" 2>&1); rc=$?
check "make install PREFIX=/usr DESTDIR=...: exit 0 ($rc)" test "$rc" = 0
R=$T/root
for f in usr/bin/negotiator-host usr/bin/negotiator-guest \
	usr/share/negotiator/init.d/negotiator-host usr/share/negotiator/init.d/negotiator-guest \
	usr/lib/negotiator/builtin-commands/find-distributor-id \
	usr/lib/negotiator/builtin-commands/find-distribution-release \
	usr/lib/negotiator/builtin-commands/find-distribution-codename; do
	check "$f is -rwxr-xr-x ($(mode "$R/$f"))" is_mode "$R/$f" -rwxr-xr-x
done
# find-distributor-id answers to three names (the other two are symbolic
# links in scripts/commands): each installed name runs on its own and
# prints its own field
mkdir -p "$T/fakeroot/etc"
printf 'DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=10.04\nDISTRIB_CODENAME=lucid\n' > "$T/fakeroot/etc/lsb-release"
for nv in find-distributor-id:Ubuntu find-distribution-release:10.04 find-distribution-codename:lucid; do
	n=${nv%%:*} v=${nv#*:}
	out=$(NEGOTIATOR_ROOT=$T/fakeroot "$R/usr/lib/negotiator/builtin-commands/$n" 2>&1)
	check "the installed $n prints $v ($out)" test "$out" = "$v"
done
for f in usr/share/man/man8/negotiator-host.8 usr/share/negotiator/systemd/negotiator-host.service \
	usr/share/negotiator/upstart/negotiator-guest.conf usr/share/negotiator/supervisord/negotiator-guest.conf; do
	check "$f is -rw-r--r-- ($(mode "$R/$f"))" is_mode "$R/$f" -rw-r--r--
done
check "the user commands directory exists, empty" \
	eval 'test -d "$R/usr/lib/negotiator/commands" && test -z "$(ls "$R/usr/lib/negotiator/commands")"'
check "service files name the installed programs (no @VARIABLE@ left)" \
	eval '! grep -rqE "@[A-Z_]+@" "$R/usr/share/negotiator" && grep -q "/usr/bin/negotiator-host" "$R/usr/share/negotiator/init.d/negotiator-host"'
check "the init.d scripts read /etc/default/NAME, the supervisord programs log to /var/log" \
	eval 'grep -q "^\[ -r \"/etc/default/\$NAME\" \] && \. \"/etc/default/\$NAME\"$" "$R/usr/share/negotiator/init.d/negotiator-guest" &&
		grep -qx "stdout_logfile=/var/log/negotiator-host.log" "$R/usr/share/negotiator/supervisord/negotiator-host.conf"'
check "the init.d script runs (exit 0 on --help or an unknown action, never 126)" \
	eval 'sh -c "\"$R/usr/share/negotiator/init.d/negotiator-host\" bogus-action" >/dev/null 2>&1; test $? -ne 126'
check "the installed host program knows its built-in commands' directory" \
	eval '"$R/usr/bin/negotiator-host" --help | grep -q "/usr/lib/negotiator/builtin-commands"'
# the service files' ordering and logging, as installed (grep: cheap, and
# it fails when a line goes missing)
SH=$R/usr/share/negotiator
has_line() { grep -q "$2" "$1"; }
no_line() { ! grep -Eq "$2" "$1"; }
HS=$SH/systemd/negotiator-host.service
GS=$SH/systemd/negotiator-guest.service
check "systemd host unit: After=libvirtd.service and virtqemud.service" \
	eval 'has_line "$HS" "^After=.*libvirtd\.service" && has_line "$HS" "^After=.*virtqemud\.service"'
check "systemd guest unit: After=systemd-modules-load and systemd-udev-trigger" \
	eval 'has_line "$GS" "^After=.*systemd-modules-load\.service" && has_line "$GS" "^After=.*systemd-udev-trigger\.service"'
check "systemd units: ordering only, no Requires=/Wants=/BindsTo=/Requisite=, no device" \
	eval 'no_line "$HS" "^(Requires|Wants|BindsTo|Requisite)=" && no_line "$GS" "^(Requires|Wants|BindsTo|Requisite)=" && no_line "$GS" "^[A-Za-z]*=.*\.device"'
check "systemd units: --no-syslog (the journal has stderr), reload sends SIGHUP" \
	eval 'has_line "$HS" "^ExecStart=/usr/bin/negotiator-host --daemon --no-syslog$" && has_line "$GS" "^ExecStart=/usr/bin/negotiator-guest --daemon --no-syslog$" && has_line "$HS" "^ExecReload=/bin/kill -HUP \$MAINPID$" && has_line "$GS" "^ExecReload=/bin/kill -HUP \$MAINPID$"'
HU=$SH/upstart/negotiator-host.conf
GU=$SH/upstart/negotiator-guest.conf
check "upstart host job: started libvirt-bin, or the end of the boot without it" \
	eval 'has_line "$HU" "^start on (started libvirt-bin or .*stopped rc RUNLEVEL=\[2345\])$" && has_line "$HU" "^stop on runlevel \[!2345\]$"'
check "upstart guest job: runlevel [2345], stop on [!2345]" \
	eval 'has_line "$GU" "^start on runlevel \[2345\]$" && has_line "$GU" "^stop on runlevel \[!2345\]$"'
check "init.d LSB headers: host Should-Start libvirtd libvirt-bin, guest udev" \
	eval 'has_line "$SH/init.d/negotiator-host" "^# Should-Start:.* libvirtd" && has_line "$SH/init.d/negotiator-host" "^# Should-Start:.* libvirt-bin" && has_line "$SH/init.d/negotiator-guest" "^# Should-Start:.* udev"'
# systemd-analyze verify, where there is one: the installed units with
# ExecStart pointing into DESTDIR (verify checks that the program is
# there); any line it prints is a finding.  A skip is not a pass.
if command -v systemd-analyze > /dev/null 2>&1; then
	mkdir "$T/verify"
	for u in negotiator-host negotiator-guest; do
		sed "s|^ExecStart=/usr/bin/|ExecStart=$R/usr/bin/|" "$SH/systemd/$u.service" > "$T/verify/$u.service"
	done
	systemd-analyze verify "$T/verify/negotiator-host.service" "$T/verify/negotiator-guest.service" \
		> "$T/verify.out" 2>&1; rc=$?
	check "systemd-analyze verify on the installed units: exit 0, nothing to say ($rc)" \
		eval 'test "$rc" = 0 && test ! -s "$T/verify.out"'
	[ -s "$T/verify.out" ] && sed 's/^/# /' "$T/verify.out"
else
	SKIPPED=$((SKIPPED + 1))
	echo "skip - systemd-analyze verify on the installed units: no systemd-analyze here"
fi
(cd "$T/src" && make install PREFIX=/opt/neg DESTDIR="$T/root2" > "$T/make2.log" 2>&1); rc=$?
check "PREFIX=/opt/neg: programs and built-ins under it ($rc)" \
	eval 'test "$rc" = 0 && test -x "$T/root2/opt/neg/bin/negotiator-guest" && test -d "$T/root2/opt/neg/lib/negotiator/builtin-commands"'
(cd "$T/src" && make uninstall PREFIX=/usr DESTDIR="$T/root" > "$T/make3.log" 2>&1)
check "make uninstall removes the programs" test ! -e "$R/usr/bin/negotiator-host"

if [ "$SKIPPED" -gt 0 ]; then
	echo "$PASS passed, $FAIL failed, $SKIPPED skipped"
else
	echo "$PASS passed, $FAIL failed"
fi
[ "$FAIL" -eq 0 ]
