#!/bin/sh
#
# tests/python.sh: our daemons and CLIs against python-negotiator 0.12.2, in
# all four directions, over the QEMU stand-in.  The python side is
# tests/pypeer (python's daemons and CLIs as shared/notes/python-wire.md
# describes them; it dies with "VIOLATION" on anything python would die of).
#
#   1. python host CLI   -> our guest daemon      (standin pya, its own dir)
#   2. our host daemon   -> python guest daemon   (standin pyb)
#      our host CLI, no daemon -> python guest daemon (standin pyc)
#   3. python guest CLI  -> our host daemon       (standin pyb)
#   4. our guest daemon  -> python host daemon    (standin pya)
#
# Usage: sh tests/python.sh [BUILD_DIR]; prints ok/not ok lines and
# "N passed, N failed".

B=$(cd "${1:-.}" && pwd)
. "$(dirname "$0")/lib.sh"
suite_tmp python

# wait_until CMD...: retry for up to 15 s, however long each try takes
wait_until() {
	end=$(($(date +%s) + 15))
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge $end ] && return 1
		sleep 0.1
	done
}
alive() { kill -0 "$1" 2>/dev/null; }
same() { cmp -s "$1" "$2"; }
has() { grep -q -- "$2" "$1"; }
hasnt() { ! grep -q -- "$2" "$1"; }
is() { [ "$1" = "$2" ] || { note "got [$1], expected [$2]"; return 1; }; }

# ---- commands: the same set on every side -----------------------------------------
mkdir -p "$T/ch" "$T/pych" "$T/pych2" "$T/ga" "$T/gb" "$T/gc" "$T/hc" "$T/gcmd" "$T/pyhc" "$T/pygc"
cmd() { f=$1; shift; printf '#!/bin/sh\n%s\n' "$*" > "$f"; chmod 755 "$f"; }
for d in "$T/hc" "$T/gcmd" "$T/pyhc" "$T/pygc"; do
	cmd "$d/echo-args" 'for a in "$@"; do echo "[$a]"; done'
	cmd "$d/padded" "printf '  padded  \\n'"
	cmd "$d/twolines" "printf ' a\\nb \\n'"
	cmd "$d/exit3" 'echo about to fail; exit 3'
	cmd "$d/killself" 'kill -TERM $$; sleep 5'
	cmd "$d/cat" 'exec cat'
	cmd "$d/blob" "exec cat '$T/text1m'"
	cmd "$d/cat-file" 'exec cat "$1"'
	cmd "$d/nonutf8" "printf 'a\\377b\\n'"
	cmd "$d/unicode" "printf 'caf\\303\\251 \\360\\237\\230\\200\\n'"
	cmd "$d/whoami-guest" 'echo "guest=$NEGOTIATOR_GUEST"'
	cmd "$d/slow" 'sleep 1; echo "slept $1"'
	cmd "$d/slower" 'sleep 3; echo "late answer"'
	cmd "$d/where" "echo $(basename "$d")"
	printf '#!/bin/sh\necho never\n' > "$d/noexec"
	chmod 644 "$d/noexec"
done
# 1 MiB of text (python's answers are text), and 200 kB of it for input
printf 'negotiator python interop test line, all ASCII, sixty-four byte\n' > "$T/line"
cat "$T/line" "$T/line" "$T/line" "$T/line" > "$T/t"
i=0
while [ $i -lt 6 ]; do cat "$T/t" "$T/t" "$T/t" "$T/t" > "$T/t2"; mv "$T/t2" "$T/t"; i=$((i + 1)); done
mv "$T/t" "$T/text1m"
head -c 204800 "$T/text1m" > "$T/in200k"
note "text: $(wc -c < "$T/text1m") bytes, input: $(wc -c < "$T/in200k") bytes"
printf 'caf\303\251 \360\237\230\200\n' > "$T/unicode.expected"

# ---- the pieces ---------------------------------------------------------------------
PY="$B/tests/pypeer"
[ -x "$PY" ] || { echo "not ok - $PY is not built (make tests/pypeer)"; echo "0 passed, 1 failed"; exit 1; }
# --hold: as QEMU, host bytes wait while the guest has the port closed (a
# python CLI writes its request right after connecting)
standin() { # NAME CHANNELDIR GUESTDIR
	rm -f "$T/standin-$1.pid"
	"$B/tests/standin" --hold --pidfile "$T/standin-$1.pid" "$2" "$1" "$3" \
		2>>"$T/standin-$1.log" &
	wait_until test -s "$T/standin-$1.pid"
}
standin pya "$T/pych" "$T/ga"
standin pyb "$T/ch" "$T/gb"
standin pyc "$T/pych2" "$T/gc"

# python's host daemon worker for pya, python's guest daemons in pyb and pyc
"$PY" serve "$T/pych/pya.negotiator-guest-to-host.0" --commands "$T/pyhc" --guest pya \
	--log "$T/pyhost.log" 2>>"$T/pypeer.err" &
PYHOST=$!
"$PY" serve "$T/gb/negotiator-host-to-guest.0" --commands "$T/pygc" --log "$T/pyguest.log" \
	2>>"$T/pypeer.err" &
PYGUEST=$!
"$PY" serve "$T/gc/negotiator-host-to-guest.0" --commands "$T/pygc" --log "$T/pyguest2.log" \
	2>>"$T/pypeer.err" &
PYGUEST2=$!
PIDS="$PYHOST $PYGUEST $PYGUEST2"

# ours: a host daemon (pyb), a guest daemon (pya)
HOST="$B/negotiator-host --channels-dir $T/ch --control-socket $T/host.sock"
GUEST="$B/negotiator-guest --control-socket $T/guest.sock"
$HOST -d -v --no-policy --scan-interval 1 --commands-dir "$T/hc" 2>>"$T/host.log" &
HOSTPID=$!
$GUEST -d -v --commands-dir "$T/gcmd" --host-to-guest "unix:$T/ga/negotiator-host-to-guest.0" \
	--guest-to-host "unix:$T/ga/negotiator-guest-to-host.0" 2>>"$T/guest.log" &
GUESTPID=$!
PIDS="$PIDS $HOSTPID $GUESTPID"
wait_until test -S "$T/host.sock"
wait_until test -S "$T/guest.sock"

PYHOSTCLI="$PY call $T/pych/pya.negotiator-host-to-guest.0"   # python host CLI -> pya
PYGUESTCLI="$PY call $T/gb/negotiator-guest-to-host.0"        # python guest CLI in pyb
o=$T/out; e=$T/err

# ---- 1. python host CLI -> our guest daemon ---------------------------------------------
note "1. python host CLI -> our guest daemon"
check "1: list_commands answers" wait_until $PYHOSTCLI list
$PYHOSTCLI list > "$o" 2>"$e"
check "1: list names our guest's commands" has "$o" '^echo-args$'

$PYHOSTCLI exec echo-args one "two words" 'x$y' > "$o" 2>"$e"
check "1: execute with arguments (no shell)" is "$(cat "$o")" "$(printf '[one]\n[two words]\n[x$y]')"
$PYHOSTCLI exec padded > "$o"
check "1: a one-line result is stripped" is "$(od -c < "$o" | head -n 1)" "$(printf 'padded\n' | od -c | head -n 1)"
$PYHOSTCLI exec twolines > "$T/raw" 2>"$e"
check "1: a result of more lines is not" is "$(cat "$T/raw")" "$(printf ' a\nb')"
$PYHOSTCLI exec exit3 > "$o" 2>"$e"; rc=$?
check "1: exit 3 is a python failure (CLI exit 1)" is "$rc" 1
check "1: ... saying 'exit code 3!' and the output" \
	sh -c "grep -q 'External command failed with exit code 3!' '$e' && grep -q 'about to fail' '$e'"
$PYHOSTCLI exec killself > "$o" 2>"$e"
check "1: a signal is 'exit code -15!'" has "$e" 'exit code -15!'
$PYHOSTCLI exec no-such-command > "$o" 2>"$e"; rc=$?
check "1: a missing command 'isn't available'" sh -c "[ $rc = 1 ] && grep -q \"isn't available\" '$e'"
$PYHOSTCLI exec /usr/lib/negotiator/commands/echo-args base > "$o" 2>"$e"
check "1: args[0] is taken by its basename" is "$(cat "$o")" "[base]"
$PYHOSTCLI exec blob > "$o" 2>"$e"
check "1: a 1 MiB result in one frame" same "$o" "$T/text1m"
$PYHOSTCLI --input "$T/in200k" exec cat > "$o" 2>"$e"
check "1: 200 kB of input reach the command's stdin" same "$o" "$T/in200k"
$PYHOSTCLI exec nonutf8 > "$o" 2>"$e"; rc=$?
check "1: output that is not UTF-8 is answered in valid ASCII JSON" \
	sh -c "[ $rc = 0 ] && grep -q '^a.*b\$' '$o'"
$PYHOSTCLI exec unicode > "$o" 2>"$e"
check "1: UTF-8 output arrives as \\u escapes (astral: surrogate pairs)" same "$o" "$T/unicode.expected"
n=0
for i in 1 2 3 4 5; do
	[ "$($PYHOSTCLI exec echo-args "$i" 2>/dev/null)" = "[$i]" ] && n=$((n + 1))
done
check "1: five calls, one connection each (EOF in between)" is "$n" 5
# one frame over the 64 MiB limit: refused with a clear error, and the
# stream goes on (python has no limit; ours is documented in PROTOCOL)
cat "$T/text1m" "$T/text1m" "$T/text1m" "$T/text1m" > "$T/t4"
cat "$T/t4" "$T/t4" "$T/t4" "$T/t4" > "$T/t16"
cat "$T/t16" "$T/t16" "$T/t16" "$T/t16" "$T/text1m" > "$T/big"
rm -f "$T/t4" "$T/t16"
$PYHOSTCLI --timeout 60 --input "$T/big" exec cat > "$o" 2>"$e"; rc=$?
check "1: a request over 64 MiB is answered with a clear error" \
	sh -c "[ $rc = 1 ] && grep -q 'over the limit of 67108864' '$e'"
check "1: ... and the next call is served" is "$($PYHOSTCLI exec echo-args after 2>&1)" "[after]"
check "1: our guest daemon still runs" alive $GUESTPID

# ---- 4. our guest daemon -> python host daemon ---------------------------------------------
note "4. our guest -> python host daemon"
check "4: list_commands answers" wait_until $GUEST -l
$GUEST -l > "$o" 2>"$e"
check "4: list names the python host's commands, sorted" \
	sh -c "grep -q '^echo-args\$' '$o' && sort -c '$o'"
$GUEST -e "echo-args a 'b c'" > "$o" 2>"$e"
check "4: execute with arguments" is "$(cat "$o")" "$(printf '[a]\n[b c]')"
$GUEST -e where > "$o" 2>"$e"
check "4: the command ran on the python side" is "$(cat "$o")" pyhc
$GUEST -e padded > "$o"
check "4: a one-line result comes stripped, with a newline" is "$(cat "$o")" padded
$GUEST -e exit3 > "$o" 2>"$e"; rc=$?
check "4: 'exit code 3!' is our exit status 3" is "$rc" 3
check "4: ... and python's text on stderr" has "$e" 'about to fail'
$GUEST -e no-such-command > "$o" 2>"$e"; rc=$?
check "4: 'isn't available' is 127" is "$rc" 127
check "4: ... one line: not found in the host's commands, where python looked" \
	is "$(cat "$e")" "negotiator-guest: error: command not found in the host's commands: no-such-command (python-negotiator looked for $T/pyhc/no-such-command)"
$GUEST -e killself > "$o" 2>"$e"; rc=$?
check "4: 'exit code -15!' is 143" is "$rc" 143
$GUEST -e whoami-guest > "$o" 2>"$e"
check "4: the python host sets NEGOTIATOR_GUEST" is "$(cat "$o")" "guest=pya"
$GUEST -e blob > "$o" 2>"$e"
check "4: a 1 MiB answer" same "$o" "$T/text1m"
$GUEST -e cat < "$T/in200k" > "$o" 2>"$e"
check "4: stdin goes as python's input (200 kB)" same "$o" "$T/in200k"
$GUEST -e unicode > "$o" 2>"$e"
check "4: non-ASCII text arrives intact" same "$o" "$T/unicode.expected"
$GUEST -e "slow A" > "$T/c1" 2>&1 &
c1=$!
$GUEST -e "slow B" > "$T/c2" 2>&1 &
c2=$!
wait $c1; r1=$?
wait $c2; r2=$?
check "4: two concurrent calls both succeed (queued, one at a time)" \
	sh -c "[ $r1 = 0 ] && [ $r2 = 0 ] && grep -q 'slept A' '$T/c1' && grep -q 'slept B' '$T/c2'"
$GUEST -t 1 -e slower > "$o" 2>"$e"; rc=$?
# (the client's 124 may come before the daemon's log line: wait for it)
check "4: a timeout is 124; the daemon logs that python cannot cancel" \
	eval '[ "$rc" = 124 ] && wait_until grep -q "cannot cancel" "$T/guest.log"'
$GUEST -e "echo-args next" > "$o" 2>"$e"
check "4: the next call gets its own answer, not the late one" is "$(cat "$o")" "[next]"
$GUEST -t 60 -e "cat-file $T/big" > "$o" 2>"$e"; rc=$?
check "4: an answer over 64 MiB is a failure (125) with a clear error" \
	sh -c "[ $rc = 125 ] && grep -q 'over the limit of 67108864' '$e'"
$GUEST -e "echo-args after" > "$o" 2>"$e"
check "4: ... and the next call is served" is "$(cat "$o")" "[after]"
rm -f "$T/big"
check "4: the python host daemon saw nothing it would die of" alive $PYHOST

# ---- 2. our host -> python guest daemon ---------------------------------------------
note "2. our host -> python guest daemon"
check "2: list_commands answers" wait_until $HOST pyb -c
$HOST pyb -c > "$o" 2>"$e"
check "2: list names the python guest's commands" has "$o" '^echo-args$'
$HOST pyb -e "echo-args 1 '2 3'" > "$o" 2>"$e"
check "2: execute with arguments" is "$(cat "$o")" "$(printf '[1]\n[2 3]')"
$HOST pyb -e no-such-command > "$o" 2>"$e"; rc=$?
check "2: through our host daemon: 'isn't available' is 127, one line naming the side" \
	eval '[ "$rc" = 127 ] && is "$(cat "$e")" "negotiator-host: error: command not found in the guest'"'"'s commands: no-such-command (python-negotiator looked for $T/pygc/no-such-command)"'
$HOST pyb -e where > "$o" 2>"$e"
check "2: the command ran on the python side" is "$(cat "$o")" pygc
$HOST pyb -e cat < "$T/in200k" > "$o" 2>"$e"
check "2: stdin goes as python's input (200 kB)" same "$o" "$T/in200k"
$HOST pyb -e exit3 > "$o" 2>"$e"; rc=$?
check "2: 'exit code 3!' is our exit status 3" is "$rc" 3
$HOST pyb -e noexec > "$o" 2>"$e"; rc=$?
check "2: a command that is not executable fails (python: exit code 126)" is "$rc" 126
$HOST pyb -e blob > "$o" 2>"$e"
check "2: a 1 MiB answer" same "$o" "$T/text1m"
$HOST pyb -e "slow X" > "$T/c1" 2>&1 &
c1=$!
$HOST pyb -e "slow Y" > "$T/c2" 2>&1 &
c2=$!
wait $c1; r1=$?
wait $c2; r2=$?
check "2: two concurrent calls both succeed" \
	sh -c "[ $r1 = 0 ] && [ $r2 = 0 ] && grep -q 'slept X' '$T/c1' && grep -q 'slept Y' '$T/c2'"
DIRECT="$B/negotiator-host --channels-dir $T/pych2 --control-socket $T/none.sock"
$DIRECT pyc -e "echo-args direct" > "$o" 2>"$e"
check "2: our host CLI without a daemon, straight to the python guest" is "$(cat "$o")" "[direct]"
$DIRECT pyc -c > "$o" 2>"$e"
check "2: ... and its list" has "$o" '^echo-args$'
$DIRECT pyc -e no-such-command > "$o" 2>"$e"; rc=$?
check "2: ... and its exit status for 'isn't available'" is "$rc" 127
check "2: ... one line: not found in the guest's commands, where python looked" \
	is "$(cat "$e")" "negotiator-host: error: command not found in the guest's commands: no-such-command (python-negotiator looked for $T/pygc/no-such-command)"
check "2: the python guest daemons saw nothing they would die of" \
	sh -c "kill -0 $PYGUEST && kill -0 $PYGUEST2"

# ---- 3. python guest CLI -> our host daemon ---------------------------------------------
note "3. python guest CLI -> our host daemon"
check "3: list_commands answers" wait_until $PYGUESTCLI list
$PYGUESTCLI list > "$o" 2>"$e"
check "3: list names our host's commands" has "$o" '^whoami-guest$'
$PYGUESTCLI exec whoami-guest > "$o" 2>"$e"
check "3: the host command sees NEGOTIATOR_GUEST" is "$(cat "$o")" "guest=pyb"
$PYGUESTCLI exec echo-args "a b" c > "$o" 2>"$e"
check "3: execute with arguments" is "$(cat "$o")" "$(printf '[a b]\n[c]')"
$PYGUESTCLI exec blob > "$o" 2>"$e"
check "3: a 1 MiB result" same "$o" "$T/text1m"
$PYGUESTCLI --input "$T/in200k" exec cat > "$o" 2>"$e"
check "3: 200 kB of input" same "$o" "$T/in200k"
$PYGUESTCLI exec exit3 > "$o" 2>"$e"
check "3: a failure in python's words" has "$e" 'External command failed with exit code 3!'
$PYGUESTCLI exec nonutf8 > "$o" 2>"$e"; rc=$?
check "3: output that is not UTF-8: valid JSON" is "$rc" 0

# ---- --status knows a python agent ---------------------------------------------------
$HOST --status pyb > "$o" 2>"$e"; rc=$?
check "--status through our daemon: a python agent answers, python protocol, no version" \
	eval 'test "$rc" = 0 && grep -q "^pyb: connected, agent answers (python-negotiator, python protocol), [0-9.]* ms, [0-9]* commands\$" "$o"'
$B/negotiator-host --channels-dir "$T/pych2" --control-socket "$T/none.sock" --status --json pyc \
	> "$o" 2>"$e"; rc=$?
check "--status --json straight to the channel: protocol python, version null" \
	eval 'test "$rc" = 0 && grep -q "^{\"guest\":\"pyc\",\"channel\":\"connected\",\"answers\":true,\"version\":null,\"protocol\":\"python\"," "$o"'

# ---- the native protocol is untouched ---------------------------------------------------
check "no VIOLATION anywhere" sh -c "! grep -q VIOLATION '$T/pypeer.err' $T/py*.log"
check "both our daemons still run" sh -c "kill -0 $HOSTPID && kill -0 $GUESTPID"
grep -h 'python-negotiator' "$T/host.log" "$T/guest.log" | head -n 3 | sed 's/^/# /'

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
