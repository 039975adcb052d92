#!/bin/sh
#
# tests/fanout.sh: negotiator-host -e/-c on many guests at once (fan-out).
#
# Five guests over the QEMU stand-in (tests/standin + negotiator-guest -d
# each), a sixth whose channels nobody serves (no guest daemon: it never
# answers), one host daemon; then tests/fakehost, a fake host daemon that
# answers at once for 1000 guests, for what the client itself costs.
# Prints "ok - ..." / "not ok - ..." lines and ends with "N passed, N
# failed".
#
# Usage: sh tests/fanout.sh [BUILD_DIR]   (default: the current dir)

LC_ALL=C
export LC_ALL
B=$(cd "${1:-.}" && pwd)
. "$(dirname "$0")/lib.sh"
suite_tmp fanout

alive() { kill -0 "$1" 2>/dev/null; }
gone() { ! kill -0 "$1" 2>/dev/null ||
	[ "$(sed -n 's/.*) \(.\) .*/\1/p' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
same() { cmp -s "$1" "$2"; }
has() { grep -q -- "$2" "$1"; }
lines() { test "$(wc -l < "$1" | tr -d ' ')" = "$2"; }
# what guest G wrote to stdout, prefixes removed
of() { sed -n "s/^$1: //p" "$2"; }
# all_gone PREFIX [SUFFIX]: every process whose pid is in PREFIX.vmN SUFFIX
# (N = 1..5) is gone; at least one such file is there
all_gone() {
	found=0
	for g in vm1 vm2 vm3 vm4 vm5; do
		[ -s "$1.$g$2" ] || continue
		found=1
		wait_until gone "$(cat "$1.$g$2")" || return 1
	done
	[ $found = 1 ]
}
# wall time of a command in microseconds, into $US (tests/negbench)
timed() {
	rm -f "$T/us"
	"$B/tests/negbench" run 1 "$T/us" "$@" > /dev/null 2>&1
	US=$(cat "$T/us" 2>/dev/null || echo 999999999)
}

# ---- guests, their commands, and the host daemon ------------------------------------------
cmd() { f=$1; shift; printf '#!/bin/sh\n%s\n' "$*" > "$f"; chmod 755 "$f"; }
N=5
i=1
while [ $i -le $N ]; do
	d="$T/gc$i"
	mkdir -p "$d" "$T/g$i"
	cmd "$d/echo-args" 'for a in "$@"; do printf "[%s]\n" "$a"; done'
	cmd "$d/myexit" "echo vm$i says bye; exit $(( (i * 7) % 5 ))"
	cmd "$d/slow-on-vm2" "[ $i = 2 ] && sleep 5; echo vm$i done"
	cmd "$d/partial" 'printf "no newline"; printf "err no newline" >&2'
	cmd "$d/split" 'echo out1; echo err1 >&2; echo out2'
	cmd "$d/blob" 'exec cat "$1"'
	cmd "$d/lateblob" 'sleep 1; exec cat "$1"'
	cmd "$d/cat" 'exec cat'
	cmd "$d/longline" 'i=0; while [ $i -lt 1000 ]; do printf "%0100d" $i; i=$((i + 1)); done'
	cmd "$d/sleeper" "sleep 60 & echo \$! > \"\$1.vm$i.child\"; wait"
	cmd "$d/endless" "echo \$\$ > \"\$1.vm$i\"; while :; do echo y; done"
	i=$((i + 1))
done
mkdir -p "$T/ch" "$T/g6" "$T/hc"
# a test blob of every byte value, 1 MiB and a little, lines of 257 bytes
i=0
: > "$T/chunk"
while [ $i -lt 256 ]; do printf "\\$(printf %03o $i)" >> "$T/chunk"; i=$((i + 1)); done
printf '\n' >> "$T/chunk"
cat "$T/chunk" "$T/chunk" "$T/chunk" "$T/chunk" > "$T/b"
cat "$T/b" "$T/b" "$T/b" "$T/b" > "$T/c"
cat "$T/c" "$T/c" "$T/c" "$T/c" > "$T/b"
cat "$T/b" "$T/b" "$T/b" "$T/b" > "$T/c"
cat "$T/c" "$T/c" "$T/c" "$T/c" > "$T/b"
cat "$T/b" "$T/b" "$T/b" "$T/b" > "$T/blob"
note "test blob: $(wc -c < "$T/blob") bytes"

HOST="$B/negotiator-host --channels-dir $T/ch --control-socket $T/host.sock"
i=1
while [ $i -le 6 ]; do
	"$B/tests/standin" --pidfile "$T/standin-vm$i.pid" "$T/ch" "vm$i" "$T/g$i" \
		2>>"$T/standin-vm$i.log" &
	i=$((i + 1))
done
wait_until test -s "$T/standin-vm6.pid"
$HOST -d -v --scan-interval 1 --no-policy --commands-dir "$T/hc" 2>>"$T/host.log" &
HOSTPID=$!
PIDS="$PIDS $HOSTPID"
wait_until test -S "$T/host.sock"
i=1
while [ $i -le $N ]; do
	"$B/negotiator-guest" -d -v --control-socket "$T/guest$i.sock" --commands-dir "$T/gc$i" \
		--host-to-guest "unix:$T/g$i/negotiator-host-to-guest.0" \
		--guest-to-host "unix:$T/g$i/negotiator-guest-to-host.0" 2>>"$T/guest$i.log" &
	PIDS="$PIDS $!"
	i=$((i + 1))
done
ready() { for g in vm1 vm2 vm3 vm4 vm5; do $HOST "$g" -e echo-args || return 1; done; }
check "five guests and the host daemon come up" wait_until ready
ALL5="vm1 vm2 vm3 vm4 vm5"

# ---- output ---------------------------------------------------------------------------------
$HOST -e 'echo-args a "b c"' vm1 vm2 > "$T/out" 2> "$T/err"; rc=$?
sort "$T/out" > "$T/sorted"
printf 'vm1: [a]\nvm1: [b c]\nvm2: [a]\nvm2: [b c]\n' > "$T/want"
check "two guests: every line prefixed with its guest" same "$T/sorted" "$T/want"
check "two guests: exit 0, nothing on stderr" test "$rc" = 0 -a ! -s "$T/err"
check "a guest's own lines in their order" test "$(of vm1 "$T/out" | tr '\n' ,)" = "[a],[b c],"
$HOST -e 'echo-args x' $ALL5 > "$T/out" 2> "$T/err"; rc=$?
check "five guests: five lines, one each" \
	test "$rc" = 0 -a "$(sort "$T/out" | tr '\n' ,)" = "vm1: [x],vm2: [x],vm3: [x],vm4: [x],vm5: [x],"
$HOST -e split vm1 vm2 vm3 > "$T/out" 2> "$T/err"
check "stdout to stdout, stderr to stderr, both prefixed" \
	test "$(of vm3 "$T/out" | tr '\n' ,)" = "out1,out2," -a "$(of vm3 "$T/err" | tr '\n' ,)" = "err1,"
$HOST -e partial vm1 vm2 > "$T/out" 2> "$T/err"
check "a last line without a newline: prefixed, and ended with one" \
	test "$(sort "$T/out" | tr '\n' ,)" = "vm1: no newline,vm2: no newline,"
check "... on stderr too" test "$(sort "$T/err" | tr '\n' ,)" = "vm1: err no newline,vm2: err no newline,"
$HOST -e "blob $T/blob" vm1 vm2 vm3 > "$T/out" 2> "$T/err"; rc=$?
ok=1
for g in vm1 vm2 vm3; do of $g "$T/out" > "$T/o.$g"; same "$T/o.$g" "$T/blob" || ok=0; done
check "1 MiB of every byte value from each of 3 guests: byte-exact without the prefixes" \
	test "$ok" = 1 -a "$rc" = 0
check "... and no line without a prefix (lines never mixed)" \
	test "$(grep -a -c -v '^vm[123]: ' "$T/out")" = 0
$HOST -e longline vm1 vm2 > "$T/out" 2> "$T/err"
grep -a '^vm2: ' "$T/out" | head -n 1 > "$T/l1"
check "a line over 64 KiB is cut into prefixed lines of 64 KiB" \
	test "$(wc -c < "$T/l1" | tr -d ' ')" = $((5 + 65536 + 1)) -a "$(grep -c '^vm2: ' "$T/out")" = 2
check "... nothing lost" test "$(of vm1 "$T/out" | tr -d '\n' | wc -c | tr -d ' ')" = 100000
echo "not for the guests" | $HOST -e cat vm1 vm2 > "$T/out" 2> "$T/err"; rc=$?
check "stdin is not forwarded: the command reads EOF at once" test "$rc" = 0 -a ! -s "$T/out"
$HOST -e 'echo-args d' vm1 vm2 vm1 > "$T/out" 2> "$T/err"
check "a guest named twice runs once" lines "$T/out" 2
$HOST --max-parallel 3 vm1 -e 'echo-args one' > "$T/out" 2> "$T/err"; rc=$?
check "one guest: as before, no prefix (--max-parallel harmless)" \
	test "$rc" = 0 -a "$(cat "$T/out")" = "[one]"

# ---- exit status and the summary ---------------------------------------------------------------
# myexit: vm1 2, vm2 4, vm3 1, vm4 3, vm5 0
$HOST -e myexit $ALL5 > "$T/out" 2> "$T/err"; rc=$?
check "exit status: the largest of the guests' (4)" test "$rc" = 4
check "... every guest's output still there" lines "$T/out" 5
check "summary: one line naming the failed guests and how" test "$(cat "$T/err")" = \
	"negotiator-host: 4 of 5 guests failed: vm1 (exit 2), vm2 (exit 4), vm3 (exit 1), vm4 (exit 3)"
$HOST -e 'echo-args z' vm1 vm9 > "$T/out" 2> "$T/err"; rc=$?
check "an unknown guest fails with 125, the other one runs" \
	test "$rc" = 125 -a "$(cat "$T/out")" = "vm1: [z]"
check "... its reason on its own line" has "$T/err" "^negotiator-host: error: vm9: no such guest: vm9"
check "... and in the summary" has "$T/err" "^negotiator-host: 1 of 2 guests failed: vm9 (125: no such guest"
$HOST -e no-such-command vm1 vm2 > "$T/out" 2> "$T/err"; rc=$?
check "command not found on every guest: 127" test "$rc" = 127
check "... one error line per guest and the summary" test "$(wc -l < "$T/err" | tr -d ' ')" = 3

# ---- guests that do not answer, slow commands, -t ---------------------------------------------
timed sh -c "$HOST -t 2 -e 'echo-args t' vm1 vm6 vm2 vm3 > $T/out 2> $T/err; echo \$? > $T/rc"
note "vm6 (nobody behind its channels) with -t 2: $US us"
check "a guest that does not answer fails with 125" test "$(cat "$T/rc")" = 125
check "... within about -t (2 s: $US us)" test "$US" -ge 1900000 -a "$US" -lt 4500000
check "... while the others complete" test "$(sort "$T/out" | tr '\n' ,)" = "vm1: [t],vm2: [t],vm3: [t],"
check "... it says so" has "$T/err" "^negotiator-host: error: vm6: timeout: the agent has not answered within 2 seconds"
check "... and the summary too" \
	test "$(tail -n 1 "$T/err")" = "negotiator-host: 1 of 4 guests failed: vm6 (125: no agent answered)"
timed sh -c "$HOST -t 2 --max-parallel 1 -e 'echo-args u' vm6 vm1 vm2 > $T/out 2> $T/err; echo \$? > $T/rc"
check "--max-parallel 1: a silent guest first holds the others up only for -t ($US us)" \
	test "$(cat "$T/rc")" = 125 -a "$(sort "$T/out" | tr '\n' ,)" = "vm1: [u],vm2: [u]," -a "$US" -lt 4500000
$HOST -t 1 -e slow-on-vm2 vm1 vm2 vm3 > "$T/out" 2> "$T/err"; rc=$?
check "a command still running at -t: 124 for its guest, the others succeed" \
	test "$rc" = 124 -a "$(sort "$T/out" | tr '\n' ,)" = "vm1: vm1 done,vm3: vm3 done,"
check "... summary says timeout" \
	test "$(tail -n 1 "$T/err")" = "negotiator-host: 1 of 3 guests failed: vm2 (124: timeout)"

# ---- --all, -c ---------------------------------------------------------------------------------
$HOST -t 2 --all -e 'echo-args all' > "$T/out" 2> "$T/err"; rc=$?
check "--all: every guest with channels (the silent one fails with 125)" \
	test "$rc" = 125 -a "$(sort "$T/out" | tr '\n' ,)" = \
	"vm1: [all],vm2: [all],vm3: [all],vm4: [all],vm5: [all],"
check "--all: the summary names the silent guest" \
	test "$(tail -n 1 "$T/err")" = "negotiator-host: 1 of 6 guests failed: vm6 (125: no agent answered)"
$HOST -c vm1 vm3 > "$T/out" 2> "$T/err"; rc=$?
for g in vm1 vm3; do
	for c in blob cat echo-args endless lateblob longline myexit partial sleeper slow-on-vm2 split; do
		echo "$g: $c"
	done
done > "$T/want"
sort "$T/out" > "$T/sorted"
check "-c on two guests: each guest's commands, prefixed" eval 'test "$rc" = 0 && same "$T/sorted" "$T/want"'

# ---- interruptions -----------------------------------------------------------------------------
rm -f "$T"/int.*
$HOST -t 30 -e "sleeper $T/int" vm1 vm2 > /dev/null 2> "$T/err" &
c=$!
wait_until test -s "$T/int.vm1.child" -a -s "$T/int.vm2.child"
kill -INT $c
wait $c; rc=$?
check "interrupted by SIGINT: exit 130, one line" \
	test "$rc" = 130 -a "$(cat "$T/err")" = "negotiator-host: error: interrupted by SIGINT; calls cancelled"
check "... and the remote commands are cancelled, on both guests" \
	eval 'test -s "$T/int.vm1.child" -a -s "$T/int.vm2.child" && all_gone "$T/int" .child'
rm -f "$T"/end.*
( $HOST -t 30 -e "endless $T/end" vm1 vm2 2>/dev/null; echo $? > "$T/end.rc" ) | head -n 3 > "$T/out"
check "output into a closed pipe: exit 141 (SIGPIPE)" test "$(cat "$T/end.rc")" = 141
check "... and the endless remote commands are cancelled" all_gone "$T/end"

# A client that stops reading (^Z) while five guests stream 1 MiB each:
# the daemon holds a window per call for it, and it gets all when it resumes
$HOST -t 30 -e "lateblob $T/blob" $ALL5 > "$T/out" 2> "$T/err" &
c=$!
sleep 0.5
kill -STOP $c
sleep 2.5
kill -CONT $c
wait $c; rc=$?
ok=1
for g in $ALL5; do of $g "$T/out" > "$T/o.$g"; same "$T/o.$g" "$T/blob" || ok=0; done
check "client stopped for 2.5 s while 5 guests send 1 MiB each: all of it, exit 0" \
	test "$rc" = 0 -a "$ok" = 1
check "the host daemon still runs" alive $HOSTPID

# the daemon takes 128 calls on one connection, no more (here: 29 cats that
# wait for their stdin on vm1, 100 calls queued for the silent vm6)
frames() { for f in "$@"; do printf '%s\n%s' "${#f}" "$f"; done; }
set -- "hello 1 0123456789abcdef"
i=1
while [ $i -le 129 ]; do
	if [ $i -le 29 ]; then set -- "$@" "exec $i 3:vm1,3:cat,"; else set -- "$@" "exec $i 3:vm6,9:echo-args,"; fi
	i=$((i + 1))
done
frames "$@" | "$B/tests/poke" "$T/host.sock" 2 > "$T/out"
check "129 calls on one connection: the last one fails with 125, the others wait" \
	eval 'has "$T/out" "fail 129 125 too many calls in flight on this connection" &&
	test "$(grep -a -o "fail [0-9]*" "$T/out" | wc -l)" -eq 1'

# the daemon killed in the middle: every call fails, none hangs
rm -f "$T"/hk.*
$HOST -t 30 -e "sleeper $T/hk" vm1 vm2 vm3 > "$T/out" 2> "$T/err" &
c=$!
wait_until test -s "$T/hk.vm1.child" -a -s "$T/hk.vm2.child" -a -s "$T/hk.vm3.child"
kill -9 $HOSTPID
wait $c; rc=$?
check "host daemon killed during the calls: 125" test "$rc" = 125
check "... every guest failed, and why" test "$(tail -n 1 "$T/err")" = \
	"negotiator-host: 3 of 3 guests failed: vm1 (125: connection to the daemon lost), vm2 (125: connection to the daemon lost), vm3 (125: connection to the daemon lost)"

# ---- usage ------------------------------------------------------------------------------------
for v in 0 129 -1 x "" 1.5; do
	$HOST --max-parallel "$v" -e echo-args vm1 vm2 > /dev/null 2> "$T/err"; rc=$?
	check "--max-parallel '$v' is a usage error (2)" \
		eval 'test "$rc" = 2 && has "$T/err" "invalid --max-parallel"'
done
$HOST --all vm1 -e echo-args > /dev/null 2>&1; rc=$?
check "--all and guest names: usage error" test "$rc" = 2
$HOST -g --all > /dev/null 2>&1; rc=$?
check "--all with -g: usage error" test "$rc" = 2
$B/negotiator-host --channels-dir "$T/ch" --control-socket "$T/none.sock" -e echo-args vm1 vm2 \
	> "$T/out" 2> "$T/err"; rc=$?
check "several guests and no daemon: 125, a clear line" \
	eval 'test "$rc" = 125 && has "$T/err" "more than one guest at once needs the host daemon"'
$B/negotiator-host --control-socket "$T/none.sock" --all -e echo-args > "$T/out" 2> "$T/err"; rc=$?
check "--all and no daemon: the same" \
	eval 'test "$rc" = 125 && has "$T/err" "all needs the host daemon"'

# ---- a fast fake daemon: what the client costs --------------------------------------------------
"$B/tests/fakehost" "$T/fake.sock" 1000 --delay 5 --stats "$T/stats" 2> "$T/fake.log" &
PIDS="$PIDS $!"
wait_until test -S "$T/fake.sock"
FAKE="$B/negotiator-host --control-socket $T/fake.sock"
stats() { wait_until test -s "$T/stats" && cat "$T/stats"; }
rm -f "$T/stats"
timed sh -c "$FAKE --all -e 'echo-args x' > $T/out 2> $T/err; echo \$? > $T/rc"
note "--all over 1000 guests, each answering after 5 ms: $US us"
check "--all over 1000 guests: 1000 lines, exit 0" \
	test "$(cat "$T/rc")" = 0 -a "$(sort -u "$T/out" | grep -c '^vm[0-9]*: \[x\]$')" = 1000
check "... in under 2 s ($US us)" test "$US" -lt 2000000
check "... at most 32 calls at once by default ($(stats))" test "$(stats)" = "calls 1000 max-in-flight 32"
rm -f "$T/stats"
$FAKE --all --max-parallel 128 -e 'exitn 4' > "$T/out" 2> "$T/err"; rc=$?
check "--max-parallel 128: 128 at once ($(stats))" test "$(stats)" = "calls 1000 max-in-flight 128"
check "1000 guests exiting 4: exit 4" test "$rc" = 4
check "... one summary line, all of them in it" eval 'test "$(wc -l < "$T/err")" -eq 1 &&
	has "$T/err" "^negotiator-host: 1000 of 1000 guests failed: vm0001 (exit 4), vm0002 (exit 4), " &&
	test "$(tr , "\n" < "$T/err" | grep -c "(exit 4)")" = 1000'
rm -f "$T/stats"
g40=$(i=1; while [ $i -le 40 ]; do printf 'vm%04d ' $i; i=$((i + 1)); done)
timed sh -c "$FAKE --max-parallel 1 -e 'echo-args p' $g40 > $T/out 2> $T/err; echo \$? > $T/rc"
check "--max-parallel 1: one call at a time, and all 40 complete ($(stats))" \
	test "$(cat "$T/rc")" = 0 -a "$(stats)" = "calls 40 max-in-flight 1" -a \
	"$(sort -u "$T/out" | wc -l | tr -d ' ')" = 40
check "... each as soon as the one before has ended (40 x 5 ms: $US us)" test "$US" -lt 1000000
$FAKE -c vm0001 vm0002 > "$T/out" 2> "$T/err"
check "-c through the daemon: each guest's list" \
	test "$(sort "$T/out" | tr '\n' ,)" = "vm0001: a,vm0001: b,vm0002: a,vm0002: b,"

"$B/tests/fakehost" "$T/none.sock" 0 2> "$T/fake0.log" &
PIDS="$PIDS $!"
"$B/tests/fakehost" "$T/mute.sock" 10 --mute-list 2> "$T/fakem.log" &
PIDS="$PIDS $!"
wait_until test -S "$T/none.sock" -a -S "$T/mute.sock"
"$B/negotiator-host" --control-socket "$T/none.sock" --all -e echo-args > "$T/out" 2> "$T/err"; rc=$?
check "--all and no guests: nothing to do, exit 0, said on stderr" \
	eval 'test "$rc" = 0 -a ! -s "$T/out" && has "$T/err" "no guest"'
timed sh -c "$B/negotiator-host --control-socket $T/mute.sock -t 1 --all -e echo-args > $T/out 2> $T/err; echo \$? > $T/rc"
check "--all and a daemon that does not list its guests: 125 after -t ($US us)" \
	eval 'test "$(cat "$T/rc")" = 125 -a "$US" -lt 3000000 && has "$T/err" "unable to list the guests: timeout"'

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
