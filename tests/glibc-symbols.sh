#!/bin/sh
#
# tests/glibc-symbols.sh BINARY...: do these binaries run on glibc 2.11
# (Ubuntu 10.04)?  Lists each dynamic symbol imported with a GLIBC_x.y
# version newer than 2.11, one line each, and ends with PASS or FAIL;
# exits 0 or 1.  __libc_start_main is the known exception: every binary
# linked on glibc >= 2.34 imports it at GLIBC_2.34.  Static and musl
# binaries import nothing from glibc and pass.  Needs objdump (binutils).

if [ $# -eq 0 ]; then
	echo "usage: sh tests/glibc-symbols.sh BINARY..." >&2
	exit 2
fi
bad=0
for bin in "$@"; do
	if ! table=$(objdump -T "$bin" 2>&1); then
		case $table in
		*"not a dynamic object"*) continue ;;   # static: nothing imported
		esac
		echo "FAIL: objdump -T $bin: $table"
		exit 1
	fi
	# the version column looks like GLIBC_2.14 or (GLIBC_2.2.5); the
	# symbol's name is the last field
	list=$(printf '%s\n' "$table" | awk -v bin="$bin" '
		{
			for (i = 1; i <= NF; i++)
				if (match($i, /GLIBC_[0-9]+(\.[0-9]+)+/)) {
					v = substr($i, RSTART + 6, RLENGTH - 6)
					split(v, p, ".")
					if ((p[1] > 2 || (p[1] == 2 && p[2] > 11)) &&
					    $NF != "__libc_start_main")
						printf "%s: %s needs GLIBC_%s (newer than 2.11)\n", bin, $NF, v
				}
		}')
	if [ -n "$list" ]; then
		printf '%s\n' "$list"
		bad=1
	fi
done
if [ $bad -eq 0 ]; then
	echo "PASS: nothing newer than GLIBC_2.11 imported (but __libc_start_main)"
	exit 0
fi
echo "FAIL: symbols newer than glibc 2.11 imported"
exit 1
