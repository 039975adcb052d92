#!/bin/sh
#
# tests/compat.sh: compat/ stands alone.  Its files include nothing from
# another directory, each shim compiles in a directory that holds nothing
# but a copy of compat/, and the shims' objects link together with only the
# libc (and compat/config.libs): the rest of the program calls into compat/,
# never the reverse.  Prints "ok -" / "not ok -" lines and "N passed, N
# failed".
#
# Usage: sh tests/compat.sh [SOURCE_DIR]   (default: the current dir, built:
# the copy takes its compat/config.h and compat/config.libs)
# COMPAT_CC and COMPAT_CFLAGS (make check passes the build's) default to cc
# and the Makefile's CFLAGS.

LC_ALL=C
export LC_ALL
SRC=$(cd "${1:-.}" && pwd)
S=$(cd "$(dirname "$0")" && pwd)
. "$S/lib.sh"
suite_tmp compat
CC=${COMPAT_CC:-cc}
CFLAGS=${COMPAT_CFLAGS:--O2 -std=c89 -pedantic -Wall -Wextra}

bad=$(cd "$SRC" && grep -En '^[[:blank:]]*#[[:blank:]]*include[[:blank:]]*"([^"]*/|negotiator\.h|paths\.h)' \
	compat/*.c compat/*.h)
check "compat/*.c and compat/*.h include only headers of compat/ and the system${bad:+: $bad}" \
	test -z "$bad"

if [ ! -f "$SRC/compat/config.h" ] || [ ! -f "$SRC/compat/config.libs" ]; then
	fail "compat/config.h and compat/config.libs exist (run make first)"
	echo "$PASS passed, $FAIL failed"
	exit 1
fi
# first_complaint LOG: ": " and the compiler's first error line (or first line), if any
first_complaint() {
	{ grep -E 'error|undefined' "$1"; cat "$1"; } | sed -n '1s/^/: /p'
}

mkdir "$T/alone" "$T/alone/compat"
cp "$SRC"/compat/*.c "$SRC"/compat/*.h "$T/alone/compat/"
objs=
for c in "$T"/alone/compat/*.c; do
	n=${c##*/}
	n=${n%.c}
	case $n in try_*) continue ;; esac
	(cd "$T/alone" && eval "$CC $CFLAGS -c -o compat/$n.o compat/$n.c") > "$T/$n.log" 2>&1
	check "compat/$n.c compiles with nothing but compat/ around it$(first_complaint "$T/$n.log")" \
		test -f "$T/alone/compat/$n.o"
	[ -f "$T/alone/compat/$n.o" ] && objs="$objs compat/$n.o"
done
echo 'int main(void) { return 0; }' > "$T/alone/main.c"
(cd "$T/alone" && eval "$CC $CFLAGS -o main main.c $objs $(cat "$SRC/compat/config.libs")") \
	> "$T/link.log" 2>&1
check "every compat/ object links with only the libc (nothing undefined)$(first_complaint "$T/link.log")" \
	test -x "$T/alone/main"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
