#!/bin/sh
#
# tests/json.sh: negotiator-host --json, over the QEMU stand-in.
#
# Three guests on tests/standin: vm1 and vm2 with a guest daemon each, vm3
# with nobody behind its channels (no agent answers).  First without a
# host daemon (the client opens a guest's channel itself), then with one
# (one guest, several guests, --all).  Every line of stdout is checked
# with tests/jsoncheck (one JSON object a line, strictly), and fields are
# compared by their exact values, strings decoded to their bytes.
# Prints "ok - ..." / "not ok - ..." lines and ends with "N passed, N
# failed".
#
# Usage: sh tests/json.sh [BUILD_DIR]   (default: the current dir)

LC_ALL=C
export LC_ALL
B=$(cd "${1:-.}" && pwd)
. "$(dirname "$0")/lib.sh"
suite_tmp json
PIDFILE_SIGNAL=KILL

J="$B/tests/jsoncheck"
valid() { "$J" < "$1"; }
lines() { test "$(wc -l < "$1" | tr -d ' ')" = "$2"; }
# field FILE NAME [GUEST]: the decoded value, of the one line or of GUEST's
field() { if [ -n "$3" ]; then "$J" -g "$3" -f "$2" < "$1"; else "$J" -f "$2" < "$1"; fi; }
# is FILE NAME VALUE [GUEST]: the field's value is exactly VALUE
is() { test "$(field "$1" "$2" "$4")" = "$3"; }
has() { grep -q -- "$2" "$1"; }
EXEC_KEYS=guest,status,signal,failure,message,stdout,stderr,elapsed_ms,truncated
LIST_KEYS=$EXEC_KEYS,commands

# ---- guests and their commands -------------------------------------------------------------
cmd() { f=$1; shift; printf '#!/bin/sh\n%s\n' "$*" > "$f"; chmod 755 "$f"; }
mkdir -p "$T/ch" "$T/g1" "$T/g2" "$T/g3" "$T/gc" "$T/gc1" "$T/gc2"
cmd "$T/gc1/lag" 'echo vm1 at once'
cmd "$T/gc2/lag" 'sleep 3; echo vm2 later'
cmd "$T/gc/echo-args" 'for a in "$@"; do printf "[%s]\n" "$a"; done'
cmd "$T/gc/exit3" 'echo about to fail; echo on stderr >&2; exit 3'
cmd "$T/gc/killself" 'kill -TERM $$; sleep 5'
cmd "$T/gc/sleepy" 'sleep "$1"; echo slept "$1"'
cmd "$T/gc/bytes" "exec cat '$T/bytes.want'"
cmd "$T/gc/big" 'dd if=/dev/zero bs=1024 count=4097 2>/dev/null | tr "\000" x; echo small >&2'
printf '\377\376ok\n\001\303\251\355\240\200"\\\t\342\202' > "$T/bytes.want"
printf 'about to fail\n' > "$T/exit3.out"
CMDS="big,bytes,echo-args,exit3,killself,lag,sleepy,"

for g in 1 2 3; do
	"$B/tests/standin" --pidfile "$T/standin-vm$g.pid" "$T/ch" "vm$g" "$T/g$g" \
		2>>"$T/standin-vm$g.log" &
done
wait_until test -s "$T/standin-vm1.pid" -a -s "$T/standin-vm2.pid" -a -s "$T/standin-vm3.pid"
for g in 1 2; do
	"$B/negotiator-guest" -d -v --control-socket "$T/guest$g.sock" --commands-dir "$T/gc$g" --commands-dir "$T/gc" \
		--host-to-guest "unix:$T/g$g/negotiator-host-to-guest.0" \
		--guest-to-host "unix:$T/g$g/negotiator-guest-to-host.0" 2>>"$T/guest$g.log" &
	echo $! > "$T/guest$g.pid"
done
HOST="$B/negotiator-host --channels-dir $T/ch --control-socket $T/host.sock"
ready() { $HOST vm1 -e echo-args && $HOST vm2 -e echo-args; }
check "two guests come up (no host daemon)" wait_until ready

# run NAME ARGS...: negotiator-host --json ARGS, stdout in $T/NAME, stderr in
# $T/NAME.err, exit status in $RC
run() { n=$1; shift; $HOST --json "$@" > "$T/$n" 2> "$T/$n.err"; RC=$?; }

# the checks of one mode: M is "direct" or "daemon"
one_guest() {
	M=$1
	run g$M -g
	check "$M: -g: one object per guest, exactly" \
		test "$(cat "$T/g$M")" = '{"guest":"vm1"}
{"guest":"vm2"}
{"guest":"vm3"}'

	run c$M -c vm1
	check "$M: -c: valid, the keys in order" test "$("$J" -k < "$T/c$M")" = "$LIST_KEYS"
	check "$M: -c: commands are the listed names" \
		test "$(field "$T/c$M" commands | tr '\n' ,)" = "$CMDS"
	check "$M: -c: status 0, failure and message null, exit 0" eval \
		'test "$RC" = 0 && is "$T/c$M" status 0 && is "$T/c$M" failure null && is "$T/c$M" message null'

	run e$M -e 'echo-args a "b c"' vm1
	check "$M: -e: one valid line, the keys in order" eval \
		'lines "$T/e$M" 1 && test "$("$J" -k < "$T/e$M")" = "$EXEC_KEYS"'
	check "$M: -e: guest, stdout, stderr exact" eval \
		'is "$T/e$M" guest vm1 && is "$T/e$M" stdout "[a]
[b c]" && is "$T/e$M" stderr ""'
	check "$M: -e: status 0, signal, failure, message null, not truncated, exit 0" eval \
		'test "$RC" = 0 && is "$T/e$M" status 0 && is "$T/e$M" signal null &&
		 is "$T/e$M" failure null && is "$T/e$M" message null && is "$T/e$M" truncated false'
	check "$M: -e: nothing on stderr" test ! -s "$T/e$M.err"
	check "$M: -e: elapsed_ms a number" eval 'field "$T/e$M" elapsed_ms | grep -q "^[0-9][0-9]*$"'

	run x$M -e exit3 vm1
	check "$M: command exits 3: status 3, failure command, message null, exit 3" eval \
		'test "$RC" = 3 && valid "$T/x$M" && is "$T/x$M" status 3 &&
		 is "$T/x$M" failure command && is "$T/x$M" message null'
	check "$M: ... its stdout and stderr kept" eval \
		'field "$T/x$M" stdout | cmp -s - "$T/exit3.out" && is "$T/x$M" stderr "on stderr"'

	run k$M -e killself vm1
	check "$M: killed by SIGTERM: status 143, signal 15, failure command, exit 143" eval \
		'test "$RC" = 143 && is "$T/k$M" status 143 && is "$T/k$M" signal 15 &&
		 is "$T/k$M" failure command'

	run n$M -e no-such-command vm1
	check "$M: not found: status 127, failure command, exit 127" eval \
		'test "$RC" = 127 && is "$T/n$M" status 127 && is "$T/n$M" failure command'
	check "$M: ... message says why, also on stderr" eval \
		'is "$T/n$M" message "command not found in the guest'"'"'s commands: no-such-command (searched $T/gc1, $T/gc)" &&
		 has "$T/n$M.err" "error: command not found in the guest'"'"'s commands: no-such-command"'

	run t$M -t 3 -e 'sleepy 6' vm1
	check "$M: -t expired: status 124, failure timeout, exit 124" eval \
		'test "$RC" = 124 && valid "$T/t$M" && is "$T/t$M" status 124 && is "$T/t$M" failure timeout'
	check "$M: ... message says so" eval 'field "$T/t$M" message | grep -q "^timeout: no result within 3 seconds; the call was cancelled"'

	run u$M -e echo-args vm9
	check "$M: no such guest: status 125, failure channel, exit 125" eval \
		'test "$RC" = 125 && valid "$T/u$M" && is "$T/u$M" guest vm9 && is "$T/u$M" status 125 &&
		 is "$T/u$M" failure channel'
	check "$M: ... message names it" eval \
		'is "$T/u$M" message "no such guest: vm9 (no channels in $T/ch)"'

	run s$M -t 2 -e echo-args vm3
	check "$M: no agent behind the channel (-t 2): 125, failure channel" eval \
		'test "$RC" = 125 && valid "$T/s$M" && is "$T/s$M" status 125 && is "$T/s$M" failure channel'

	run b$M -e bytes vm1
	check "$M: bytes that are not UTF-8: the line is valid JSON" valid "$T/b$M"
	check "$M: ... they come back exactly (surrogateescape)" eval \
		'field "$T/b$M" stdout | cmp -s - "$T/bytes.want"'
	check "$M: ... written as lone surrogates, UTF-8 as it is" \
		has "$T/b$M" '"stdout":"\\udcff\\udcfeok\\n\\u0001é\\udced\\udca0\\udc80\\"\\\\\\t\\udce2\\udc82"'

	run big$M -e big vm1
	check "$M: over 4 MiB of stdout: valid, truncated true, exit 0" eval \
		'test "$RC" = 0 && valid "$T/big$M" && is "$T/big$M" truncated true'
	check "$M: ... exactly 4 MiB of it kept, the stderr whole" eval \
		'test "$(field "$T/big$M" stdout | wc -c | tr -d " ")" = 4194304 &&
		 test "$(field "$T/big$M" stdout | tr -d x | wc -c | tr -d " ")" = 0 &&
		 is "$T/big$M" stderr small'
}

# ---- without a host daemon ---------------------------------------------------------------------
one_guest direct
$B/negotiator-host --channels-dir "$T/ch" --control-socket "$T/host.sock" -e echo-args vm1 vm2 \
	--json > "$T/nd" 2> "$T/nd.err"; rc=$?
check "several guests and no daemon: 125, an object for each guest" eval \
	'test "$rc" = 125 && lines "$T/nd" 2 && valid "$T/nd" &&
	 is "$T/nd" failure agent vm1 && is "$T/nd" status 125 vm2'
check "... its message, also on stderr" eval \
	'field "$T/nd" message vm2 | grep -q "needs the host daemon" && has "$T/nd.err" "needs the host daemon"'
$HOST --json -d > "$T/d" 2>&1; rc=$?
check "--json with -d: usage error" test "$rc" = 2

# ---- with a host daemon ------------------------------------------------------------------------
$HOST -d -v --scan-interval 1 --no-policy 2>>"$T/host.log" &
PIDS="$PIDS $!"
wait_until test -S "$T/host.sock"
check "the host daemon comes up" wait_until ready
one_guest daemon

run q -t 10 -e echo-args vm3
check "daemon: no agent behind the channel (its own 5 s wait): channel, why" eval \
	'test "$RC" = 125 && is "$T/q" failure channel &&
	 is "$T/q" message "guest vm3 host-to-guest: no agent answered within 5 seconds"'

run m -t 3 -e 'echo-args m' vm1 vm2 vm9 vm3
check "several guests: one valid line each, exit 125" eval \
	'test "$RC" = 125 && lines "$T/m" 4 && valid "$T/m"'
check "... each guest's own result" eval \
	'is "$T/m" stdout "[m]" vm1 && is "$T/m" stdout "[m]" vm2 && is "$T/m" status 0 vm2 &&
	 is "$T/m" failure channel vm9 && is "$T/m" failure channel vm3 && is "$T/m" status 125 vm3'
check "... the summary still on stderr" \
	has "$T/m.err" "^negotiator-host: 2 of 4 guests failed: "

run a -t 2 --all -e 'exit3'
check "--all: an object for each of the 3 guests" eval \
	'test "$RC" = 125 && lines "$T/a" 3 && valid "$T/a" &&
	 test "$(cut -c1-15 "$T/a" | sort | tr "\n" ,)" = "{\"guest\":\"vm1\",,{\"guest\":\"vm2\",,{\"guest\":\"vm3\",,"'
check "--all: keys in order; exit 3 is the command's failure" eval \
	'test "$("$J" -g vm2 -k < "$T/a")" = "$EXEC_KEYS" && is "$T/a" status 3 vm1 &&
	 is "$T/a" failure command vm2 && is "$T/a" stderr "on stderr" vm2'
run ac -t 2 --all -c
check "--all -c: commands of each guest" eval \
	'valid "$T/ac" && lines "$T/ac" 3 && test "$("$J" -g vm1 -k < "$T/ac")" = "$LIST_KEYS" &&
	 test "$(field "$T/ac" commands vm2 | tr "\n" ,)" = "$CMDS" && is "$T/ac" failure channel vm3'

run mb -e bytes vm1 vm2
check "several guests: bytes that are not UTF-8 come back exactly" eval \
	'valid "$T/mb" && field "$T/mb" stdout vm1 | cmp -s - "$T/bytes.want" &&
	 field "$T/mb" stdout vm2 | cmp -s - "$T/bytes.want"'
run mg -e big vm1 vm2
check "several guests: over 4 MiB: truncated, 4 MiB kept each" eval \
	'test "$RC" = 0 && valid "$T/mg" && is "$T/mg" truncated true vm1 && is "$T/mg" truncated true vm2 &&
	 test "$(field "$T/mg" stdout vm2 | wc -c | tr -d " ")" = 4194304'
run mt -t 1 -e 'sleepy 3' vm1 vm2
check "several guests, -t expired: timeout each, exit 124" eval \
	'test "$RC" = 124 && valid "$T/mt" && is "$T/mt" failure timeout vm1 && is "$T/mt" status 124 vm2'

# each guest's object when its call ends, not at the very end
$HOST --json -t 10 -e lag vm1 vm2 > "$T/o" 2> "$T/o.err" &
c=$!
sleep 1.5
check "several guests: a guest's object out when its call ends (vm1's, vm2 still running)" eval \
	'lines "$T/o" 1 && is "$T/o" stdout "vm1 at once" vm1'
wait $c
check "... then the other one's" eval 'lines "$T/o" 2 && valid "$T/o" && is "$T/o" stdout "vm2 later" vm2'

# a guest whose agent is gone
kill "$(cat "$T/guest2.pid")"
sleep 0.5
run gone -t 2 -e echo-args vm2
check "a guest whose agent is gone: 125, failure channel" eval \
	'test "$RC" = 125 && valid "$T/gone" && is "$T/gone" failure channel'
run gone2 -t 2 -e echo-args vm1 vm2
check "... among several guests too; the other one succeeds" eval \
	'test "$RC" = 125 && valid "$T/gone2" && is "$T/gone2" failure channel vm2 && is "$T/gone2" status 0 vm1'

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
