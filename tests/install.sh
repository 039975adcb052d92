#!/bin/sh
#
# tests/install.sh: `make install` as a packager runs it, in a copy of the
# sources (so that this build's compiled-in paths stay as they are): with
# DESTDIR and PREFIX, programs and scripts 0755, data 0644, the empty user
# commands directory, @BINDIR@ replaced in the service files.  Prints "ok -"
# / "not ok -" lines and "N passed, N failed".
#
# Usage: sh tests/install.sh [SOURCE_DIR]   (default: the current dir)

LC_ALL=C
export LC_ALL
SRC=$(cd "${1:-.}" && pwd)
S=$(cd "$(dirname "$0")" && pwd)
. "$S/lib.sh"
suite_tmp install

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
check "service files name the installed programs (@BINDIR@ replaced)" \
	eval '! grep -rq "@BINDIR@" "$R/usr/share/negotiator" && grep -q "/usr/bin/negotiator-host" "$R/usr/share/negotiator/init.d/negotiator-host"'
check "the init.d script runs (exit 0 on --help or an unknown action, never 126)" \
	eval 'sh -c "\"$R/usr/share/negotiator/init.d/negotiator-host\" bogus-action" >/dev/null 2>&1; test $? -ne 126'
check "the installed host program knows its built-in commands' directory" \
	eval '"$R/usr/bin/negotiator-host" --help | grep -q "/usr/lib/negotiator/builtin-commands"'
(cd "$T/src" && make install PREFIX=/opt/neg DESTDIR="$T/root2" > "$T/make2.log" 2>&1); rc=$?
check "PREFIX=/opt/neg: programs and built-ins under it ($rc)" \
	eval 'test "$rc" = 0 && test -x "$T/root2/opt/neg/bin/negotiator-guest" && test -d "$T/root2/opt/neg/lib/negotiator/builtin-commands"'
(cd "$T/src" && make uninstall PREFIX=/usr DESTDIR="$T/root" > "$T/make3.log" 2>&1)
check "make uninstall removes the programs" test ! -e "$R/usr/bin/negotiator-host"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
