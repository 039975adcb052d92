#!/bin/sh
#
# tests/integration.sh: the real binaries over the QEMU stand-in.
#
# Starts tests/standin (host-side sockets like libvirt's, guest-side sockets
# with virtio semantics), a host daemon and a guest daemon in a temp dir, and
# checks both directions, exit codes, streaming, concurrency, faults and
# recovery.  Prints "ok - ..." / "not ok - ..." lines and ends with
# "N passed, N failed".  Needs only /bin/sh and coreutils-level tools.
#
# Usage: sh tests/integration.sh [BUILD_DIR]   (default: the current dir)
# WRAP="valgrind -q --log-file=/tmp/vg.%p" runs the daemons under a wrapper.

B=$(cd "${1:-.}" && pwd)
. "$(dirname "$0")/lib.sh"
suite_tmp test
PIDFILE_SIGNAL=KILL

# wait_until CMD...: retry for up to 10 s
wait_until() {
	n=0
	while ! "$@" >/dev/null 2>&1; do
		n=$((n + 1))
		[ $n -gt 100 ] && return 1
		sleep 0.1
	done
	return 0
}
alive() { kill -0 "$1" 2>/dev/null; }
dead() { ! kill -0 "$1" 2>/dev/null; }
# dead, or a zombie that nobody reaped yet (its parent daemon was killed,
# and init may be slow to reap, or not reap at all in a container)
gone() { dead "$1" || [ "$(sed -n 's/.*) \(.\) .*/\1/p' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
# a feature of this build (compat/config.h)
have() { grep -q "^#define $1 1" "$B/compat/config.h" 2>/dev/null; }
same() { cmp -s "$1" "$2"; }
has() { grep -q "$2" "$1"; }

# ---- the commands each side offers ------------------------------------------------
mkdir -p "$T/ch" "$T/g1" "$T/g2" "$T/g3" "$T/g4" "$T/g5" "$T/gc" "$T/gc2" "$T/hc"
cmd() { f=$1; shift; printf '#!/bin/sh\n%s\n' "$*" > "$f"; chmod 755 "$f"; }
for d in "$T/gc" "$T/hc"; do
	cmd "$d/echo-args" 'for a in "$@"; do printf "[%s]\n" "$a"; done'
	cmd "$d/exit3" 'echo about to fail; exit 3'
	cmd "$d/killself" 'kill -TERM $$; sleep 5'
	cmd "$d/sleeper" 'sleep 60 & echo $! > "$1.child"; echo $$ > "$1"; wait'
	cmd "$d/cat" 'exec cat'
	cmd "$d/split" 'printf out1; printf err1 >&2; printf out2; printf err2 >&2'
	cmd "$d/blob" 'exec cat "$1"'
	cmd "$d/slowline" 'echo first; sleep 3; echo second'
	cmd "$d/whoami-guest" 'echo "guest=$NEGOTIATOR_GUEST"'
	cmd "$d/endless" 'echo $$ > "$1"; while :; do echo y; done'
	printf '#!/bin/sh\necho never\n' > "$d/noexec"
	chmod 644 "$d/noexec"
done
cmd "$T/gc/shadowed" 'echo user'
cmd "$T/gc2/shadowed" 'echo builtin'
cmd "$T/gc2/onlybuiltin" 'echo builtin only'
mkdir "$T/gc/.hidden-dir"
printf 'not a command' > "$T/gc/.hidden"
# binary test data: 1 MiB, all byte values
i=0
: > "$T/chunk"
while [ $i -lt 256 ]; do printf "\\$(printf %03o $i)" >> "$T/chunk"; i=$((i + 1)); done
: > "$T/blob1m"
i=0
while [ $i -lt 16 ]; do cat "$T/chunk" "$T/chunk" "$T/chunk" "$T/chunk" >> "$T/blob1m"; i=$((i + 1)); done
cat "$T/blob1m" "$T/blob1m" "$T/blob1m" "$T/blob1m" > "$T/b"; cat "$T/b" "$T/b" "$T/b" "$T/b" > "$T/blob1m"
cat "$T/blob1m" "$T/blob1m" "$T/blob1m" "$T/blob1m" > "$T/b"; mv "$T/b" "$T/blob1m"
note "test blob: $(wc -c < "$T/blob1m") bytes"

# ---- starting the pieces ------------------------------------------------------------
HOST="$B/negotiator-host --channels-dir $T/ch --control-socket $T/host.sock"
GUEST="$B/negotiator-guest --control-socket $T/guest.sock"
GUEST2="$B/negotiator-guest --control-socket $T/guest2.sock"

start_standin() { # NAME GUESTDIR [OPTIONS]
	n=$1; g=$2; shift 2
	rm -f "$T/standin-$n.pid"
	"$B/tests/standin" --pidfile "$T/standin-$n.pid" "$@" "$T/ch" "$n" "$g" 2>>"$T/standin-$n.log" &
	wait_until test -s "$T/standin-$n.pid"
}
start_host() { # [POLICY OPTIONS]: --no-policy by default (no /etc file applies)
	[ $# -eq 0 ] && set -- --no-policy
	$WRAP $HOST -d -v --scan-interval 1 --commands-dir "$T/hc" "$@" 2>>"$T/host.log" &
	HOSTPID=$!
	PIDS="$PIDS $HOSTPID"
	wait_until test -S "$T/host.sock"
}
start_guest() {
	$WRAP $GUEST -d -v --commands-dir "$T/gc" --commands-dir "$T/gc2" \
		--host-to-guest "unix:$T/g1/negotiator-host-to-guest.0" \
		--guest-to-host "unix:$T/g1/negotiator-guest-to-host.0" 2>>"$T/guest.log" &
	GUESTPID=$!
	PIDS="$PIDS $GUESTPID"
	wait_until test -S "$T/guest.sock"
}
ready() { $HOST vm1 -c >/dev/null 2>&1 && $GUEST -l >/dev/null 2>&1; }

start_standin vm1 "$T/g1"
start_host
start_guest
check "daemons come up and connect" wait_until ready

# ---- listing ------------------------------------------------------------------------
$HOST -g > "$T/out" 2>&1
check "--list-guests shows the guest" test "$(cat "$T/out")" = "vm1"
$HOST vm1 --list-commands > "$T/out" 2>&1
printf '%s\n' blob cat echo-args endless exit3 killself onlybuiltin shadowed sleeper \
	slowline split whoami-guest > "$T/want"
check "--list-commands: sorted, executables only, built-ins merged" same "$T/out" "$T/want"
$GUEST -l > "$T/out" 2>&1
printf '%s\n' blob cat echo-args endless exit3 killself sleeper slowline split whoami-guest \
	> "$T/want"
check "guest --list-commands lists the host's commands" same "$T/out" "$T/want"

# ---- running commands, both directions ------------------------------------------------
$HOST vm1 -e 'echo-args a "b c" '"'d  e'"' f\ g ""' > "$T/out" 2>&1
printf '[a]\n[b c]\n[d  e]\n[f g]\n[]\n' > "$T/want"
check "host runs a guest command, argv split like shlex" same "$T/out" "$T/want"
$GUEST -e 'echo-args x "$HOME" ";" "|"' > "$T/out" 2>&1
printf '[x]\n[$HOME]\n[;]\n[|]\n' > "$T/want"
check "guest runs a host command, no shell expansion" same "$T/out" "$T/want"
$HOST vm1 -e shadowed > "$T/out" 2>&1
check "user commands shadow built-ins" test "$(cat "$T/out")" = "user"
$GUEST -e whoami-guest > "$T/out" 2>&1
check "host commands get NEGOTIATOR_GUEST" test "$(cat "$T/out")" = "guest=vm1"
$HOST vm1 -e whoami-guest > "$T/out" 2>&1
check "guest commands do not get NEGOTIATOR_GUEST" test "$(cat "$T/out")" = "guest="

# ---- exit codes --------------------------------------------------------------------------
$HOST vm1 -e exit3 > "$T/out" 2>&1; rc=$?
check "exit status 3 passed through (host->guest)" test "$rc" = 3 -a "$(cat "$T/out")" = "about to fail"
$GUEST -e exit3 > "$T/out" 2>&1; rc=$?
check "exit status 3 passed through (guest->host)" test "$rc" = 3
$HOST vm1 -e 'echo-args' > /dev/null 2>&1; rc=$?
check "exit status 0" test "$rc" = 0
$HOST vm1 -e killself > /dev/null 2>"$T/err"; rc=$?
check "killed by SIGTERM: exit 143 (128+15)" test "$rc" = 143
check "... and one line names the signal" test "$(cat "$T/err")" = \
	"negotiator-host: error: remote command killed by SIGTERM"
$HOST vm1 -e noexec > /dev/null 2>"$T/err"; rc=$?
check "not executable: exit 126 with a message" test "$rc" = 127 -o "$rc" = 126
check "not executable is 126" test "$rc" = 126
check "... naming the side and the file" test "$(cat "$T/err")" = \
	"negotiator-host: error: command not executable in the guest's commands: noexec ($T/gc/noexec is not an executable regular file)"
$HOST vm1 -e no-such-command > /dev/null 2>"$T/err"; rc=$?
check "not found: exit 127" test "$rc" = 127
check "not found: one line naming the side and the directories searched" \
	test "$(cat "$T/err")" = "negotiator-host: error: command not found in the guest's commands: no-such-command (searched $T/gc, $T/gc2)"
$GUEST -e no-such-command > /dev/null 2>"$T/err"; rc=$?
check "not found from the guest: exit 127" test "$rc" = 127
check "... saying it is the host's commands, and where" \
	test "$(cat "$T/err")" = "negotiator-guest: error: command not found in the host's commands: no-such-command (searched $T/hc)"
$HOST vm1 -e '../../bin/sh' > /dev/null 2>"$T/err"; rc=$?
check "path as command name refused: 127" test "$rc" = 127
$HOST vm1 -e .hidden > /dev/null 2>&1; rc=$?
check "hidden name refused: 127" test "$rc" = 127

# timeout: 124, and the remote process group is gone
rm -f "$T/sl" "$T/sl.child"
$HOST -t 1 vm1 -e "sleeper $T/sl" > /dev/null 2>"$T/err"; rc=$?
check "timeout: exit 124" test "$rc" = 124
check "timeout: message says so" has "$T/err" "timeout"
if [ -s "$T/sl" ] && [ -s "$T/sl.child" ]; then
	check "timeout: remote command killed" wait_until dead "$(cat "$T/sl")"
	check "timeout: its process group killed too" wait_until gone "$(cat "$T/sl.child")"
else
	fail "timeout: sleeper did not start"
fi
rm -f "$T/sl" "$T/sl.child"
$GUEST -t 1 -e "sleeper $T/sl" > /dev/null 2>&1; rc=$?
check "timeout from the guest: exit 124" test "$rc" = 124
check "timeout from the guest: the host command had started" test -s "$T/sl.child"
check "timeout from the guest: host process group killed" \
	wait_until gone "$(cat "$T/sl.child" 2>/dev/null || echo 1)"

# ---- streams ------------------------------------------------------------------------------
printf 'line one\nline two' | $HOST vm1 -e cat > "$T/out" 2>&1
check "stdin forwarded" test "$(cat "$T/out")" = "$(printf 'line one\nline two')"
$HOST vm1 -e cat < /dev/null > "$T/out" 2>&1; rc=$?
check "empty stdin: EOF forwarded, call ends" test "$rc" = 0 -a ! -s "$T/out"
$HOST vm1 -e cat < "$T/blob1m" > "$T/out" 2>"$T/err"
check "1 MiB binary stdin in and out again, byte-exact (host->guest)" same "$T/out" "$T/blob1m"
$GUEST -e cat < "$T/blob1m" > "$T/out" 2>"$T/err"
check "1 MiB binary through a host command, byte-exact (guest->host)" same "$T/out" "$T/blob1m"
$HOST vm1 -e "blob $T/blob1m" > "$T/out" 2>"$T/err"
check "1 MiB binary output, byte-exact (host->guest)" same "$T/out" "$T/blob1m"
$GUEST -e "blob $T/blob1m" > "$T/out" 2>"$T/err"
check "1 MiB binary output, byte-exact (guest->host)" same "$T/out" "$T/blob1m"
$HOST vm1 -e "blob $T/blob1m" 2>/dev/null | cat > "$T/out"
check "1 MiB binary output into a pipe, byte-exact" same "$T/out" "$T/blob1m"
# a pipe on stdout is made nonblocking for the call (PIPE_BUF a select()
# round was 256 rounds a MiB); with a reader that stalls, nothing is lost,
# and what comes after the client in the pipeline finds it blocking again
{ $HOST vm1 -e "blob $T/blob1m" 2>"$T/err"; echo $? > "$T/rc"
  sed -n 's/^flags:[[:space:]]*//p' /proc/self/fdinfo/3 3>&1 > "$T/flags" 2>/dev/null
} | { sleep 1; cat; } > "$T/out"
check "1 MiB output into a pipe whose reader stalls: byte-exact, exit 0" \
	eval 'same "$T/out" "$T/blob1m" && test "$(cat "$T/rc")" = 0 -a ! -s "$T/err"'
if [ -s "$T/flags" ]; then
	check "... and the pipe is blocking again after the call (flags $(cat "$T/flags"))" \
		test $((0$(cat "$T/flags") & 04000)) = 0
else
	note "skipped: pipe flags after the call (no /proc/self/fdinfo)"
fi
$HOST vm1 -e split > "$T/out" 2> "$T/err"
check "stdout and stderr kept separate" test "$(cat "$T/out")" = out1out2 -a "$(cat "$T/err")" = err1err2
$GUEST -e split > "$T/out" 2> "$T/err"
check "stdout and stderr kept separate (guest->host)" test "$(cat "$T/out")" = out1out2 -a "$(cat "$T/err")" = err1err2
# does ssh-like ending hold: call ends when the command exits, stdin still open
sleep 30 | $HOST vm1 -e echo-args > "$T/out" 2>&1 &
c=$!
check "call ends when the command exits even if stdin stays open" wait_until dead $c
# real time: the first line arrives while the command still runs
rm -f "$T/out"
$HOST vm1 -e slowline > "$T/out" 2>&1 &
c=$!
check "output streams in real time" wait_until has "$T/out" first
check "... while the remote command is still running" alive $c
wait $c

# started with descriptor 0, 1 or 2 closed: the first socket must not take its place
$HOST vm1 -e "blob $T/blob1m" 0<&- > "$T/out" 2>"$T/err"; rc=$?
check "CLI started with stdin closed: 1 MiB output byte-exact, exit 0" \
	test "$rc" = 0 -a ! -s "$T/err" -a "$(cksum < "$T/out")" = "$(cksum < "$T/blob1m")"
$HOST vm1 -e "blob $T/blob1m" 1>&- 2>"$T/err"; rc=$?
check "CLI started with stdout closed: exit 0, no protocol error" test "$rc" = 0 -a ! -s "$T/err"
$GUEST -e "blob $T/blob1m" 0<&- 2>&- > "$T/out"; rc=$?
check "guest CLI started with stdin and stderr closed: output byte-exact" \
	test "$rc" = 0 -a "$(cksum < "$T/out")" = "$(cksum < "$T/blob1m")"

rm -f "$T/endless"
( $HOST -t 30 vm1 -e "endless $T/endless" 2>/dev/null; echo $? > "$T/endless.rc" ) | head -n 3 > "$T/out"
check "output into a closed pipe: the client stops with 141 (SIGPIPE)" test "$(cat "$T/endless.rc")" = 141
check "... and the endless remote command is cancelled" wait_until dead "$(cat "$T/endless")"

# ---- concurrency ----------------------------------------------------------------------------
conc() { # PREFIX CLIENT...
	p=$1; shift
	i=1
	jobs=""
	while [ $i -le 20 ]; do
		( "$@" -e "echo-args call-$i" > "$T/$p.$i" 2>&1; echo $? > "$T/$p.$i.rc" ) &
		jobs="$jobs $!"
		i=$((i + 1))
	done
	for j in $jobs; do wait $j; done
	i=1
	bad=0
	while [ $i -le 20 ]; do
		[ "$(cat "$T/$p.$i")" = "[call-$i]" ] && [ "$(cat "$T/$p.$i.rc")" = 0 ] || bad=$((bad + 1))
		i=$((i + 1))
	done
	[ $bad = 0 ]
}
check "20 concurrent calls host->guest all succeed" conc ch $HOST vm1
check "20 concurrent calls guest->host all succeed" conc cg $GUEST
# one slow call must not stall the others
$HOST vm1 -e "sleeper $T/slow" -t 30 > /dev/null 2>&1 &
slow=$!
wait_until test -s "$T/slow.child"
check "a fast call completes while a slow one runs" wait_until $HOST vm1 -e echo-args
kill $slow 2>/dev/null; wait $slow 2>/dev/null
check "client killed: its remote command is cancelled" \
	wait_until gone "$(cat "$T/slow.child" 2>/dev/null || echo 1)"

rm -f "$T/int" "$T/int.child"
$HOST vm1 -e "sleeper $T/int" > /dev/null 2>"$T/err" &
c=$!
wait_until test -s "$T/int.child"
kill -INT $c
wait $c; rc=$?
check "client interrupted by SIGINT: exit 130" test "$rc" = 130
check "... and the remote command is cancelled" wait_until gone "$(cat "$T/int.child")"

# ---- untrusted input on the control socket ------------------------------------------------------
printf 'garbage that is not a frame\n' | "$B/tests/poke" "$T/host.sock" 3 > /dev/null; rc=$?
check "garbage on the control socket: connection dropped" test "$rc" = 0
printf '9999999\n' | "$B/tests/poke" "$T/host.sock" 3 > /dev/null; rc=$?
check "oversized frame count: connection dropped" test "$rc" = 0
frames() { for f in "$@"; do printf '%s\n%s' "${#f}" "$f"; done; }
frames "hello 1 0123456789abcdef" "exec 1 3:vm1,6:../bad," | "$B/tests/poke" "$T/host.sock" 2 > "$T/out"
check "hostile command name over the protocol refused with 127" has "$T/out" "fail 1 127 invalid command name"
frames "hello 1 0123456789abcdef" "exec 1 6:nobody,2:ls," | "$B/tests/poke" "$T/host.sock" 2 > "$T/out"
check "unknown guest: clear failure" has "$T/out" "fail 1 125 no such guest: nobody"
frames "hello 1 0123456789abcdef" "in 5 data for no call" "ack 9 100" "cancel 3" \
	"exit 4 status 0" "list 1 3:vm1," | "$B/tests/poke" "$T/host.sock" 2 > "$T/out"
check "frames for unknown calls ignored, the connection keeps working" has "$T/out" "exit 1 status 0"
frames "hello 1 0123456789abcdef" "exec 1 3:vm1,3:cat," "exec 1 3:vm1,3:cat," | "$B/tests/poke" "$T/host.sock" 2 > "$T/out"
check "duplicate call id refused" has "$T/out" "error duplicate call id 1"
check "host daemon survived it all" alive $HOSTPID
check "calls still work" wait_until $HOST vm1 -e echo-args

# ---- faults and recovery ---------------------------------------------------------------------
# garbage inside the channels, in both directions, during a call
rm -f "$T/gs"
$HOST -t 30 vm1 -e "sleeper $T/gs" > /dev/null 2>"$T/err" &
c=$!
wait_until test -s "$T/gs"
kill -USR1 "$(cat "$T/standin-vm1.pid")"
wait $c; rc=$?
check "garbage in the channel: the call in flight fails with 125" test "$rc" = 125
check "garbage in the channel: the daemons resynchronize" wait_until ready
check "garbage: both daemons still running" alive $HOSTPID -a alive $GUESTPID
check "garbage: host->guest works again" wait_until $HOST vm1 -e echo-args
check "garbage: guest->host works again" wait_until $GUEST -e echo-args
# a stale answer to a probe that the resync replaced is a native peer's,
# never a sign of python-negotiator
check "garbage: the daemons never take each other for python-negotiator" \
	sh -c "! grep -q \"python-negotiator's protocol\" '$T/host.log' '$T/guest.log'"

# host daemon killed (SIGKILL) and restarted mid-call
rm -f "$T/hs" "$T/gs2"
$HOST -t 30 vm1 -e "sleeper $T/hs" > /dev/null 2>&1 &
c1=$!
$GUEST -t 30 -e "sleeper $T/gs2" > /dev/null 2>&1 &
c2=$!
wait_until test -s "$T/hs"
wait_until test -s "$T/gs2"
kill -9 $HOSTPID
wait $c1; rc1=$?
wait $c2; rc2=$?
check "host daemon killed: host client fails with 125" test "$rc1" = 125
check "host daemon killed: guest client fails with 125" test "$rc2" = 125
check "host daemon killed: guest kills the command it ran for the host" \
	wait_until gone "$(cat "$T/hs.child")"
# what the killed daemon itself ran: the command dies with it (Linux:
# PR_SET_PDEATHSIG), the processes it started when the next daemon starts
killed_daemon_left() { # WHO FILE: the sleeper FILE of a daemon just killed
	if have HAVE_PR_SET_PDEATHSIG; then
		check "$1 daemon killed: the command it ran dies with it (PDEATHSIG)" \
			wait_until gone "$(cat "$2")"
		check "... but not the process the command started (in its group)" \
			alive "$(cat "$2.child")"
	else
		note "no PR_SET_PDEATHSIG in this build: the command lives until the next daemon"
		check "$1 daemon killed: its command still runs (no PDEATHSIG)" alive "$(cat "$2")"
	fi
}
killed_daemon_cleaned() { # WHO FILE LOG: after the next daemon started
	check "$1 daemon restarted: it killed the process group left running" \
		wait_until gone "$(cat "$2.child")"
	check "... command included" gone "$(cat "$2")"
	check "... and logged it" has "$3" "killed process group $(cat "$2") "
}
killed_daemon_left host "$T/gs2"
rm -f "$T/host.sock"
start_host
killed_daemon_cleaned host "$T/gs2" "$T/host.log"
check "host daemon restarted: calls work both ways again" wait_until ready

# guest daemon killed and restarted mid-call
rm -f "$T/gs3"
$HOST -t 30 vm1 -e "sleeper $T/gs3" > /dev/null 2>"$T/err" &
c=$!
wait_until test -s "$T/gs3"
kill -9 $GUESTPID
killed_daemon_left guest "$T/gs3"
rm -f "$T/guest.sock"
start_guest
killed_daemon_cleaned guest "$T/gs3" "$T/guest.log"
wait $c; rc=$?
check "guest daemon restarted: the call in flight fails with 125" test "$rc" = 125
check "guest daemon restarted: calls work both ways again" wait_until ready

# a recorded process group that no longer looks like the command (here:
# it started later than recorded, as a reused number would) is left alone
rm -f "$T/pgx" "$T/pgx.child"
$HOST -t 60 vm1 -e "sleeper $T/pgx" > /dev/null 2>&1 &
c=$!
wait_until test -s "$T/pgx"
mkdir -p "$T/empty"
if [ -r /proc/sys/kernel/random/boot_id ] && [ -r "/proc/$(cat "$T/pgx")/stat" ]; then
	x=$(cat "$T/pgx")
	set -- $(sed 's/.*) //' "/proc/$x/stat")
	{ echo "negotiator-pgids 1 $(cat /proc/sys/kernel/random/boot_id)"
	  echo "$x $4 1$(echo "${20}" | sed 's/./0/g')"; } > "$T/other.sock.pgids"
	$B/negotiator-host -d --channels-dir "$T/empty" --control-socket "$T/other.sock" \
		2>"$T/other.log" &
	o=$!
	wait_until test -S "$T/other.sock"
	check "a recorded group that started later than recorded is left alone" \
		alive "$(cat "$T/pgx.child")"
	check "... saying so" has "$T/other.log" "process group $x is no longer the command"
	kill $o; wait $o
	check "a daemon that stops cleanly removes its record" test ! -e "$T/other.sock.pgids"
else
	note "skipped: recorded groups left alone (no /proc)"
fi
kill $c; wait $c
# a record that is not a plain file of the daemon's user is not used
echo precious > "$T/victim"
ln -s "$T/victim" "$T/sym.sock.pgids"
$B/negotiator-host -d --channels-dir "$T/empty" --control-socket "$T/sym.sock" 2>"$T/sym.log" &
o=$!
wait_until test -S "$T/sym.sock"
check "a symbolic link in place of the record is not used, nor written through" \
	test "$(cat "$T/victim")" = precious
check "... saying so" has "$T/sym.log" "sym.sock.pgids: not used"
kill $o; wait $o
check "... nor removed" test -L "$T/sym.sock.pgids"

# QEMU gone and back (guest powered off and booted) on the same socket paths
kill "$(cat "$T/standin-vm1.pid")"
sleep 0.5
$HOST -t 5 vm1 -e echo-args > /dev/null 2>"$T/err"; rc=$?
check "guest powered off: calls fail with 125" test "$rc" = 125
start_standin vm1 "$T/g1"
check "guest booted again: calls work without restarting anything" wait_until ready

# ---- more guests -----------------------------------------------------------------------------
start_standin vm2 "$T/g2" --scheme domain-id --id 7
# (this daemon starts with 0, 1 and 2 closed, and logs verbosely: nothing
# it logs may land in a channel or a socket); its -c is python-negotiator's:
# under -d, the host-to-guest port
$GUEST2 -d -v --commands-dir "$T/gc" -c "unix:$T/g2/negotiator-host-to-guest.0" \
	--guest-to-host "unix:$T/g2/negotiator-guest-to-host.0" 0<&- 1>&- 2>&- &
PIDS="$PIDS $!"
check "a guest that appears later is picked up (domain-ID-NAME; daemon started with 0-2 closed; -c PATH under -d is the host-to-guest port)" \
	wait_until $HOST vm2 -e echo-args
$GUEST2 -e whoami-guest > "$T/out" 2>&1
check "its commands see NEGOTIATOR_GUEST=vm2" test "$(cat "$T/out")" = "guest=vm2"
start_standin vm3 "$T/g3" --scheme domain
start_standin vm4 "$T/g4" --port org.qemu.guest_agent.0
$HOST -g > "$T/out" 2>&1
printf 'vm1\nvm2\nvm3\n' > "$T/want"
check "--list-guests: all naming schemes, guests without channels ignored" same "$T/out" "$T/want"
$HOST -t 20 vm3 -e echo-args > /dev/null 2>"$T/err"; rc=$?
check "guest without an agent: clear failure, 125" test "$rc" = 125
check "... saying no agent answered" has "$T/err" "no agent answered"
check "vm1 unaffected" $HOST vm1 -e echo-args
# a guest whose channels vanish while a call waits for its session: the
# call fails at once, and nothing is left pointing to the dropped guest
# (it used to stay queued until the 5 s expiry, then read freed memory)
mkdir -p "$T/g5"
start_standin vm5 "$T/g5"
$HOST -t 20 vm5 -e echo-args > /dev/null 2>"$T/err" &
c=$!
sleep 0.5
kill "$(cat "$T/standin-vm5.pid")"
t0=$(date +%s)
wait $c; rc=$?
t1=$(date +%s)
check "channels gone under a queued call: it fails with 125" test "$rc" = 125
check "... at once, saying the channel was removed ($((t1 - t0)) s)" \
	test "$((t1 - t0))" -le 3 -a -n "$(grep 'channel removed' "$T/err")"
check "... and the host daemon lives on" alive $HOSTPID

# ---- hostile peers and local clients (the audit findings F1-F10) --------------------------------
HOSTILE="$B/tests/hostile"
hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
# a daemon killed by one finding must not hide the next ones
host_back() { alive $HOSTPID || { note "host daemon died: restarting it"; start_host; wait_until ready; }; }
# F1: a queued call (vm3 has no agent) whose cancel overflows its queue
$HOSTILE "$T/host.sock" cancel-overflow vm3 > "$T/out" 2>&1; rc=$?
check "F1: a cancel that overflows a queued call's queue: the daemon still answers ($rc)" \
	test "$rc" = 0
check "F1: ... it still runs" alive $HOSTPID
host_back
# F2: a full-size stdin frame gets longer by the daemon's longer call id
# (two digits after ten calls on the channel)
i=0; while [ $i -lt 10 ]; do $HOST vm1 -e echo-args > /dev/null 2>&1; i=$((i + 1)); done
$HOSTILE "$T/host.sock" long-in vm1 > "$T/out" 2>&1; rc=$?
check "F2: a full-size stdin frame, relayed with a longer id: split, byte-exact ($(cat "$T/out"))" \
	test "$rc" = 0
check "F2: ... the host daemon still runs" alive $HOSTPID
host_back
# F3: a request of exactly one frame from the guest, longer on the channel
# once the guest daemon's id for it has two digits (ten calls first)
i=0; while [ $i -lt 10 ]; do $GUEST -e echo-args > /dev/null 2>&1; i=$((i + 1)); done
rm -f "$T/f3" "$T/f3.child"
$GUEST -t 6 -e "sleeper $T/f3" > /dev/null 2>&1 &
f3=$!
wait_until test -s "$T/f3"
long=$(head -c 65507 /dev/zero | tr '\0' a)
$GUEST -t 10 -e "echo-args $long" > /dev/null 2> "$T/err"; rc=$?
check "F3: a request too long once relayed fails alone, with 2 ($rc)" test "$rc" = 2
check "F3: ... saying so" has "$T/err" "request too long"
check "F3: ... while another call on the same channel goes on" alive $f3
wait $f3; rc=$?
check "F3: ... and ends as it would have (timeout, 124; got $rc)" test "$rc" = 124
# F4: a guest that floods requests and never reads pins little memory
start_standin vm5 "$T/g5"
sleep 2
h0=$(hwm $HOSTPID)
$HOSTILE "$T/g5/negotiator-guest-to-host.0" flood 5 > "$T/out" 2>&1
$HOSTILE "$T/g5/negotiator-host-to-guest.0" flood 5 >> "$T/out" 2>&1
h1=$(hwm $HOSTPID)
note "F4 flood: $(tr '\n' ' ' < "$T/out"); host daemon VmHWM $h0 -> $h1 kB"
if [ -n "$NEGOTIATOR_SANITIZE" ]; then
	note "F4's memory bound not checked under sanitizers (ASan's quarantine and shadow memory)"
else
	check "F4: a guest that floods and never reads: host daemon peak grows < 6 MiB" \
		test -n "$h0" -a -n "$h1" -a "$((h1 - h0))" -lt 6144
fi
check "F4: ... and vm1 is served meanwhile" $HOST vm1 -e echo-args
host_back
# F10: malformed and error frames from a peer do not flood the log
n0=$(wc -l < "$T/host.log")
$HOSTILE "$T/g5/negotiator-guest-to-host.0" noise 3 > "$T/out" 2>&1
sleep 1.5
n1=$(wc -l < "$T/host.log")
note "F10 noise: $(cat "$T/out"); $((n1 - n0)) host log lines"
check "F10: 3 s of malformed and error frames: at most ~10 log lines a second ($((n1 - n0)))" \
	test "$((n1 - n0))" -le 120
check "F10: ... saying how many were held back" has "$T/host.log" "more messages about this peer held back"
kill "$(cat "$T/standin-vm5.pid")" 2>/dev/null
# F7: a frozen agent is 125 ("not answering"), not a timeout of the command
kill -STOP $GUESTPID
$HOST -t 2 vm1 -e echo-args > /dev/null 2> "$T/err"; rc=$?
kill -CONT $GUESTPID
check "F7: a frozen guest daemon: 125, not 124 ($rc)" test "$rc" = 125
check "F7: ... saying the agent is not answering" has "$T/err" "agent has not answered"
check "F7: ... and it answers again once thawed" wait_until $HOST vm1 -e echo-args
kill -STOP $HOSTPID
$GUEST -t 2 -e echo-args > /dev/null 2> "$T/err"; rc=$?
kill -CONT $HOSTPID
check "F7, the other way: a frozen host daemon: 125, not 124 ($rc)" test "$rc" = 125
check "F7: ... saying the agent is not answering" has "$T/err" "agent has not answered"
check "F7: ... and the host answers again once thawed" wait_until $GUEST -e echo-args
# F8: impossible codes from the other side are protocol errors, never success
for f in "fail 1 0 all is well" "exit 1 signal 0" "exit 1 status 256"; do
	$HOSTILE "$T/fake.sock" serve "$f" > /dev/null 2>&1 &
	fake=$!
	wait_until test -S "$T/fake.sock"
	$B/negotiator-host --control-socket "$T/fake.sock" -t 5 vm1 -e x > /dev/null 2> "$T/err"; rc=$?
	check "F8: '$f' from the daemon: 125 ($rc)" test "$rc" = 125
	wait $fake
done

# ---- per-guest policy on the host ----------------------------------------------------------------
# vm1 may run two commands; every other vmN all but exit3 (vm1 matches the
# first rule only: the first matching rule decides)
printf '%s\n' '# test policy' 'vm1: echo-args whoami-guest   # two only' '' \
	'vm[0-9]*:  * !exit3' > "$T/policy"
kill $HOSTPID; wait $HOSTPID 2>/dev/null
start_host --policy "$T/policy"
check "host daemon with --policy: up" wait_until ready
check "... and says so in one line" has "$T/host.log" "policy $T/policy: 2 rule(s)"
$GUEST -e 'echo-args p' > "$T/out" 2>&1; rc=$?
check "policy: vm1 runs an allowed command" test "$rc" = 0 -a "$(cat "$T/out")" = "[p]"
$GUEST -e whoami-guest > "$T/out" 2>&1
check "policy: vm1 runs its other allowed command" test "$(cat "$T/out")" = "guest=vm1"
$GUEST -e exit3 > "$T/out" 2>"$T/err"; rc=$?
check "policy: a refused command exits 126" test "$rc" = 126
check "... with one line: not allowed for guest vm1" test "$(cat "$T/err")" = \
	"negotiator-guest: error: command exit3 not allowed for guest vm1"
check "... and the command did not run" test ! -s "$T/out"
check "... the host logs exactly one line for it" \
	test "$(grep -c 'call [0-9]* refused: command exit3 not allowed for guest vm1$' "$T/host.log")" = 1
$GUEST -e no-such-command > /dev/null 2>"$T/err"; rc=$?
check "policy: a command that does not exist is refused the same (126, not 127)" \
	test "$rc" = 126 -a "$(cat "$T/err")" = \
	"negotiator-guest: error: command no-such-command not allowed for guest vm1"
$GUEST -l > "$T/out" 2>&1
printf '%s\n' echo-args whoami-guest > "$T/pwant"
check "policy: vm1's -l lists only what it may run" same "$T/out" "$T/pwant"
$GUEST2 -e exit3 > /dev/null 2>"$T/err"; rc=$?
check "policy: vm2, by the second rule: exit3 refused with 126" \
	test "$rc" = 126 -a "$(cat "$T/err")" = \
	"negotiator-guest: error: command exit3 not allowed for guest vm2"
$GUEST2 -e 'echo-args q' > "$T/out" 2>&1; rc=$?
check "policy: vm2 runs the rest ('*')" test "$rc" = 0 -a "$(cat "$T/out")" = "[q]"
$GUEST2 -l > "$T/out" 2>&1
printf '%s\n' blob cat echo-args endless killself sleeper slowline split whoami-guest > "$T/pwant"
check "policy: vm2's -l lists all but exit3" same "$T/out" "$T/pwant"
$HOST vm1 -e exit3 > /dev/null 2>&1; rc=$?
check "policy: host->guest calls are not restricted" test "$rc" = 3

# SIGHUP rereads the file; a broken file keeps the policy in force
printf '%s\n' 'vm1: exit3' 'vm*: echo-args' > "$T/policy"
kill -HUP $HOSTPID
check "SIGHUP: the changed policy is reloaded" \
	wait_until has "$T/host.log" "policy $T/policy (reloaded): 2 rule(s)"
$GUEST -e exit3 > /dev/null 2>&1; rc=$?
check "... vm1 may now run exit3" test "$rc" = 3
$GUEST -e echo-args > /dev/null 2>&1; rc=$?
check "... and no longer echo-args (first rule only)" test "$rc" = 126
$GUEST2 -l > "$T/out" 2>&1
check "... vm2's list follows" test "$(cat "$T/out")" = echo-args
printf '%s\n' '# broken' 'vm1: exit3' 'vm2 echo-args' > "$T/policy"
kill -HUP $HOSTPID
check "SIGHUP with a broken file: the error names FILE:LINE" \
	wait_until has "$T/host.log" "error: policy $T/policy:3: missing ':'.*keeping the policy in force"
$GUEST -e exit3 > /dev/null 2>&1; rc=$?
check "... the previous policy stays in force" test "$rc" = 3
check "... and the daemon keeps running" alive $HOSTPID

# a malformed or missing policy: the daemon refuses to start
printf '%s\n' 'vm1: echo-args' '' 'vm2: ../bin/sh' > "$T/badpolicy"
$B/negotiator-host -d --channels-dir "$T/ch" --control-socket "$T/pol.sock" \
	--policy "$T/badpolicy" > "$T/out" 2>"$T/err"; rc=$?
check "malformed policy: the daemon refuses to start (125)" test "$rc" = 125 -a ! -S "$T/pol.sock"
check "... with one line naming FILE:LINE and what is wrong" test "$(wc -l < "$T/err")" = 1 -a \
	"$(cut -d'(' -f1 "$T/err")" = "negotiator-host: error: policy $T/badpolicy:3: bad command pattern ../bin/sh "
$B/negotiator-host -d --channels-dir "$T/ch" --control-socket "$T/pol.sock" \
	--policy "$T/no-such-policy" 2>"$T/err"; rc=$?
check "--policy naming a missing file: refuses to start (125)" \
	test "$rc" = 125 -a "$(cat "$T/err")" = \
	"negotiator-host: error: policy $T/no-such-policy: No such file or directory"
kill $HOSTPID; wait $HOSTPID 2>/dev/null
start_host
runs_exit3() { $GUEST -e exit3 > /dev/null 2>&1; [ $? = 3 ]; }
check "host daemon without a policy again: every command allowed" wait_until runs_exit3

# ---- without daemons ----------------------------------------------------------------------------
kill $GUESTPID; wait $GUESTPID 2>/dev/null; rc=$?
check "guest daemon stops cleanly on SIGTERM" test "$rc" = 0 -a ! -S "$T/guest.sock"
$GUEST --guest-to-host "unix:$T/g1/negotiator-guest-to-host.0" -e whoami-guest > "$T/out" 2>&1
check "guest client without a daemon opens the channel itself" test "$(cat "$T/out")" = "guest=vm1"
start_guest
kill $HOSTPID; wait $HOSTPID 2>/dev/null; rc=$?
check "host daemon stops cleanly on SIGTERM" test "$rc" = 0 -a ! -S "$T/host.sock"
$HOST -t 10 vm1 -e 'echo-args direct' > "$T/out" 2>&1
check "host client without a daemon connects to the guest itself" test "$(cat "$T/out")" = "[direct]"
$HOST -g > "$T/out" 2>&1
check "--list-guests without a daemon" same "$T/out" "$T/want"
start_host
ls -l "$T/host.sock" > "$T/out"
check "control socket is owner-only" has "$T/out" "^srw------- "

echo "precious" > "$T/not-a-socket"
$B/negotiator-host -d --channels-dir "$T/ch" --control-socket "$T/not-a-socket" 2>"$T/err"; rc=$?
check "daemon refuses to replace a file that is not a socket" \
	test "$rc" = 125 -a "$(cat "$T/not-a-socket")" = precious
$B/negotiator-host -d --channels-dir "$T/ch" --control-socket "$T/host.sock" 2>"$T/err"; rc=$?
check "a second daemon on the same socket refuses to start" test "$rc" = 125
check "... saying another daemon runs there" has "$T/err" "another daemon"
$B/negotiator-host -d --channels-dir "$T/ch" --control-socket "$T/grp.sock" \
	--control-mode 0660 --control-group "$(id -gn)" 2>"$T/err" &
c=$!
wait_until test -S "$T/grp.sock"
ls -l "$T/grp.sock" > "$T/out"
check "--control-mode 0660 --control-group" has "$T/out" "^srw-rw---- .* $(id -gn) "
kill $c; wait $c

# ---- whose daemon a client uses, and who may use a daemon ------------------------------------
# A client only uses a socket that is a socket (not a link) of its own user
# or root's, with a daemon of its user or root's behind it; a daemon only
# lets in root, its own user and (when the mode says so) the socket's group.
echo "precious" > "$T/plain.sock"
$HOST --control-socket "$T/plain.sock" vm1 -e echo-args > "$T/out" 2>"$T/err"; rc=$?
check "client: a file that is not a socket at the control path is refused (125)" \
	test "$rc" = 125 -a ! -s "$T/out" -a "$(cat "$T/plain.sock")" = precious
check "... naming it and what it is" \
	has "$T/err" "refusing the daemon socket $T/plain.sock: it is not a socket but a regular file"
ln -s "$T/host.sock" "$T/link.sock"
$HOST --control-socket "$T/link.sock" vm1 -e echo-args > "$T/out" 2>"$T/err"; rc=$?
check "client: a symbolic link at the control path is refused, even to a good daemon" \
	test "$rc" = 125 -a ! -s "$T/out"
check "... saying so" has "$T/err" "it is not a socket but a symbolic link"

# The rest needs root and a second, unprivileged user (nobody), through
# setpriv, runuser or su, whichever is there.
as_other=
if [ "$(id -u)" != 0 ]; then
	note "skipped: the tests with a second user (they need root)"
elif ! id nobody > /dev/null 2>&1; then
	note "skipped: the tests with a second user (no user nobody)"
elif command -v setpriv > /dev/null 2>&1; then
	as_other=setpriv
elif command -v runuser > /dev/null 2>&1; then
	as_other=runuser
elif command -v su > /dev/null 2>&1; then
	as_other=su
else
	note "skipped: the tests with a second user (no setpriv, runuser or su)"
fi
NB_UID=$(id -u nobody 2>/dev/null); NB_GID=$(id -g nobody 2>/dev/null)
other() { # SHELL-COMMAND: run as nobody
	case $as_other in
	setpriv) setpriv --reuid="$NB_UID" --regid="$NB_GID" --clear-groups sh -c "$1" ;;
	runuser) runuser -u nobody -- sh -c "$1" ;;
	su) su -s /bin/sh -c "$1" nobody ;;
	esac
}
if [ -n "$as_other" ]; then
	chmod 711 "$T"     # nobody may reach what it is told the name of
	mkdir -p "$T/nb" "$T/empty"
	chown nobody "$T/nb"
	if ! other "$B/negotiator-host --version" > /dev/null 2>&1; then
		note "skipped: the tests with a second user (nobody cannot run $B/negotiator-host)"
		as_other=
	fi
fi
peercred=
if have HAVE_SO_PEERCRED || have HAVE_GETPEEREID; then
	peercred=1
elif [ -n "$as_other" ]; then
	note "skipped: the checks of who is at the other end of a connection (no SO_PEERCRED or getpeereid in this build)"
fi
if [ -n "$as_other" ]; then
	note "second user: nobody (uid $NB_UID) through $as_other"
fi
if [ -n "$as_other" ] && [ -n "$peercred" ]; then
	# the socket's mode is not the gate: the daemon asks who connects
	chmod 666 "$T/host.sock" "$T/guest.sock"
	other "$HOST vm1 -e 'echo-args hi'" > "$T/out" 2>"$T/err"; rc=$?
	check "host daemon refuses another user, even through a socket made 0666 (125)" \
		test "$rc" = 125 -a ! -s "$T/out"
	check "... which is told why, and who may" \
		has "$T/err" "permission denied: nobody (uid $NB_UID) may not use the daemon on $T/host.sock: only root may (the daemon's --control-mode 0660 --control-group GROUP lets a group in)"
	check "... and the daemon logs it" has "$T/host.log" "refused a local client: nobody (uid $NB_UID)"
	other "$GUEST -e 'echo-args hi'" > "$T/out" 2>"$T/err"; rc=$?
	check "guest daemon refuses another user, even through a socket made 0666 (125)" \
		test "$rc" = 125 -a ! -s "$T/out"
	check "... and logs it" has "$T/guest.log" "refused a local client: nobody (uid $NB_UID)"
	chmod 600 "$T/host.sock" "$T/guest.sock"
	check "... and still serves its own user" $HOST vm1 -e echo-args
fi
if [ -n "$as_other" ]; then
	# permission denied: which file, whose, its mode, and what grants access
	other "$HOST vm1 -e echo-args" > "$T/out" 2>"$T/err"; rc=$?
	check "EACCES on the daemon's socket (0600): 125 ($rc)" test "$rc" = 125
	check "... naming the socket, its owner, group and mode, and what grants access" \
		has "$T/err" "^negotiator-host: error: unable to connect to the host daemon at $T/host.sock: Permission denied ($T/host.sock: owner root, group [^,]*, mode 0600); run as root, or start the daemon with --control-mode 0660 --control-group GROUP to let a group in$"
	other "$B/negotiator-host --channels-dir $T/ch --control-socket $T/nb/none.sock vm1 -e echo-args" \
		> "$T/out" 2>"$T/err"; rc=$?
	check "EACCES on a guest's channel socket, no daemon: 125 ($rc)" test "$rc" = 125
	check "... naming the socket, its owner and mode, and the way through the daemon" \
		has "$T/err" "unable to connect to $T/ch/vm1.negotiator-host-to-guest.0: Permission denied ($T/ch/vm1.negotiator-host-to-guest.0: owner root, group [^,]*, mode 0[0-7]*); run as root, or call through the host daemon"
	: > "$T/rootport"
	chmod 600 "$T/rootport"
	other "$B/negotiator-guest --control-socket $T/nb/none.sock --guest-to-host $T/rootport -e echo-args" \
		> "$T/out" 2>"$T/err"; rc=$?
	check "EACCES on the guest's port, no daemon: 125 ($rc)" test "$rc" = 125
	check "... naming the device, its owner and mode, and the way through the daemon" \
		has "$T/err" "^negotiator-guest: error: unable to open $T/rootport: Permission denied ($T/rootport: owner root, group [^,]*, mode 0600); run as root, or call through the guest daemon"
fi
if [ -n "$as_other" ]; then
	# --control-mode 0660 --control-group: the group's members are let in
	NB_GROUP=$(id -gn nobody)
	$B/negotiator-host -d --channels-dir "$T/empty" --control-socket "$T/grp2.sock" \
		--control-mode 0660 --control-group "$NB_GROUP" 2>"$T/grp2.log" &
	g=$!
	PIDS="$PIDS $g"
	wait_until test -S "$T/grp2.sock"
	other "$B/negotiator-host --control-socket $T/grp2.sock -g" > "$T/out" 2>"$T/err"; rc=$?
	check "--control-mode 0660 --control-group $NB_GROUP: a member of the group is let in" \
		test "$rc" = 0 -a ! -s "$T/err"
	if [ "$as_other" = setpriv ] && [ -n "$peercred" ]; then
		chmod 666 "$T/grp2.sock"
		setpriv --reuid=54321 --regid=54321 --clear-groups \
			$B/negotiator-host --control-socket "$T/grp2.sock" -g > "$T/out" 2>"$T/err"; rc=$?
		check "... a user outside the group is not, even through a socket made 0666" \
			test "$rc" = 125 -a ! -s "$T/out"
		check "... and is told why, and which group may" has "$T/err" \
			"permission denied: uid 54321 may not use the daemon on $T/grp2.sock: only root and group $NB_GROUP may (usermod -a -G $NB_GROUP USER"
		chmod 660 "$T/grp2.sock"
		setpriv --reuid=54321 --regid=54321 --clear-groups \
			$B/negotiator-host --control-socket "$T/grp2.sock" -g > "$T/out" 2>"$T/err"; rc=$?
		check "EACCES on a 0660 socket: 125, naming the group that may ($rc)" eval \
			'test "$rc" = 125 && has "$T/err" "Permission denied ($T/grp2.sock: owner root, group $NB_GROUP, mode 0660); its group may: have this user added to group $NB_GROUP (usermod -a -G $NB_GROUP USER, then log in again), or run as root"'
	fi
	kill $g; wait $g

	# a daemon of another user: its socket, and the daemon behind it
	other "echo \$\$ > $T/nb/pid; exec $B/negotiator-host -d --channels-dir $T/empty \
		--control-socket $T/nb/host.sock" 2>"$T/nb.log" &
	wait_until test -S "$T/nb/host.sock"
	wait_until test -s "$T/nb/pid"
	PIDS="$PIDS $(cat "$T/nb/pid")"
	$B/negotiator-host --control-socket "$T/nb/host.sock" vm1 -e echo-args > "$T/out" 2>"$T/err"; rc=$?
	check "client refuses a socket that another user owns (125)" test "$rc" = 125 -a ! -s "$T/out"
	check "... naming the path, its owner and what to do" \
		has "$T/err" "refusing the daemon socket $T/nb/host.sock: it belongs to nobody (uid $NB_UID), not to root (you); .*--control-socket PATH"
	if [ -n "$peercred" ]; then
		chown root "$T/nb/host.sock"
		$B/negotiator-host --control-socket "$T/nb/host.sock" vm1 -e echo-args > "$T/out" 2>"$T/err"; rc=$?
		check "client refuses a daemon that runs as another user, whoever owns the socket file" \
			test "$rc" = 125 -a ! -s "$T/out"
		check "... saying so" has "$T/err" "the daemon on it runs as nobody (uid $NB_UID), not as root"
		chown nobody "$T/nb/host.sock"
	fi
	$B/negotiator-host -d --channels-dir "$T/empty" --control-socket "$T/nb/host.sock" \
		2>"$T/err"; rc=$?
	check "a daemon does not start on another user's socket (125)" test "$rc" = 125
	check "... saying whose it is and what to do" \
		has "$T/err" "a socket of nobody (uid $NB_UID) is in the way.*--control-socket PATH"
	kill -9 "$(cat "$T/nb/pid")"
	wait_until gone "$(cat "$T/nb/pid")"
	$B/negotiator-host -d --channels-dir "$T/empty" --control-socket "$T/nb/host.sock" \
		2>"$T/err" &
	d=$!
	if wait_until gone $d; then wait $d; rc=$?; else kill $d; wait $d; rc=running; fi
	check "... nor replaces it when no daemon answers there any more (125)" \
		test "$rc" = 125 -a -n "$(find "$T/nb/host.sock" -user nobody 2>/dev/null)"
fi

# ---- command line ------------------------------------------------------------------------------
for prog in "$HOST" "$GUEST"; do
	$prog > "$T/out" 2> "$T/err"; rc=$?
	check "${prog%% *}, no action: the usage on stdout and 0, as python-negotiator ($rc)" \
		eval 'test "$rc" = 0 && grep -q "^Usage: negotiator-" "$T/out" && test ! -s "$T/err"'
	$prog -v > "$T/out" 2> "$T/err"; rc=$?
	check "${prog%% *} -v, an option but no action: the same ($rc)" \
		eval 'test "$rc" = 0 && grep -q "^Usage: negotiator-" "$T/out"'
	# one message format: "PROG: error: ..." for usage errors as for the rest
	$prog --bogus > /dev/null 2> "$T/err"
	check "${prog%% *}: a usage error reads 'PROG: error: ... (try --help)'" \
		grep -qx "negotiator-[a-z]*: error: unknown option --bogus (try --help)" "$T/err"
done
$HOST -g -d > /dev/null 2>"$T/err"; rc=$?
check "two actions: usage error 2, naming them" \
	eval 'test "$rc" = 2 && grep -q "give only one of -d, -g" "$T/err"'
# long options cut short, where that is unambiguous (python's getopt did so)
$HOST vm1 --exec 'echo-args short' > "$T/out" 2>&1
printf '[short]\n' > "$T/want"
check "--exec: an abbreviation of --execute" same "$T/out" "$T/want"
$HOST vm1 --list-c > "$T/out" 2>&1; rc=$?
check "--list-c: an abbreviation of --list-commands ($rc)" \
	eval 'test "$rc" = 0 && grep -qx echo-args "$T/out"'
$GUEST --list > "$T/out" 2>&1; rc=$?
check "guest --list: an abbreviation of --list-commands ($rc)" \
	eval 'test "$rc" = 0 && grep -qx echo-args "$T/out"'
$HOST vm1 --exec='echo-args eq' --time=5 > "$T/out" 2>&1
printf '[eq]\n' > "$T/want"
check "--exec=CMD --time=5: abbreviations with =" same "$T/out" "$T/want"
$HOST --co vm1 -e x > /dev/null 2> "$T/err"; rc=$?
check "--co: ambiguous, usage error 2 naming the candidates ($rc)" \
	eval 'test "$rc" = 2 && grep -q "ambiguous option --co: it could be .*--control-socket" "$T/err"'
$GUEST -c /a --guest-to-host /b -e x > /dev/null 2> "$T/err"; rc=$?
check "guest -c with --guest-to-host (the same port without -d): usage error 2 ($rc)" \
	eval 'test "$rc" = 2 && grep -q "give -c or --guest-to-host, not both" "$T/err"'
$HOST --=x vm1 -e x > /dev/null 2> "$T/err"; rc=$?
check "--=x: an unknown option, not a prefix of all ($rc)" \
	eval 'test "$rc" = 2 && grep -q "unknown option --=x" "$T/err"'
$HOST -t soon vm1 -e x > /dev/null 2>"$T/err"; rc=$?
check "bad timeout: usage error 2" test "$rc" = 2
$HOST vm1 -e "echo 'unclosed" > /dev/null 2>"$T/err"; rc=$?
check "unclosed quote: usage error 2 with a message" test "$rc" = 2 -a -s "$T/err"
$HOST --bogus > /dev/null 2>&1; rc=$?
check "unknown option: usage error 2" test "$rc" = 2
$HOST --help > "$T/out" 2>&1; rc=$?
check "--help works" test "$rc" = 0 -a -s "$T/out"
$GUEST --version > "$T/out" 2>&1; rc=$?
check "--version works" has "$T/out" "negotiator-guest"
for prog in "$HOST" "$GUEST"; do
	$prog --help > "$T/out" 2>&1
	check "${prog%% *} --help: every line fits in 79 columns" \
		eval 'test -s "$T/out" && test -z "$(awk "length > 79" "$T/out")"'
	$prog --version --bogus > "$T/out" 2> "$T/err"; rc=$?
	check "${prog%% *} --version --bogus: usage error 2, nothing on stdout ($rc)" \
		eval 'test "$rc" = 2 && test ! -s "$T/out" && grep -q "unknown option --bogus" "$T/err"'
	$prog --help extra > "$T/out" 2> "$T/err"; rc=$?
	check "${prog%% *} --help extra: usage error 2 ($rc)" \
		eval 'test "$rc" = 2 && grep -q "unexpected argument: extra" "$T/err"'
done

# ---- logging: --log-file, --syslog, --syslog-facility ------------------------------------------
# A second pair of daemons, on a guest of their own, logging to files.
# What reaches syslog is not checked: nothing here reads syslog back (no
# syslog daemon of the suite's own); --syslog is only checked to be accepted.
mkdir -p "$T/lch" "$T/lg" "$T/lhc" "$T/lgc"
for d in "$T/lhc" "$T/lgc"; do
	cmd "$d/fds" 'echo on-stderr >&2; for f in /proc/$$/fd/*; do readlink "$f"; done; exit 0'
done
"$B/tests/standin" --pidfile "$T/standin-vmlog.pid" "$T/lch" vmlog "$T/lg" 2>>"$T/standin-vmlog.log" &
wait_until test -s "$T/standin-vmlog.pid"
LH="$B/negotiator-host --channels-dir $T/lch --control-socket $T/lh.sock"
LG="$B/negotiator-guest --control-socket $T/lg.sock"
$LH -d -v --no-policy --scan-interval 1 --commands-dir "$T/lhc" --log-file "$T/lh.log" \
	--pid-file "$T/lh.pidf" 2>"$T/lh.err" &
lhp=$!
$LG -d -v --commands-dir "$T/lgc" --host-to-guest "unix:$T/lg/negotiator-host-to-guest.0" \
	--guest-to-host "unix:$T/lg/negotiator-guest-to-host.0" --log-file "$T/lg.log" \
	--pid-file "$T/lg.pidf" 2>"$T/lg.err" &
lgp=$!
PIDS="$PIDS $lhp $lgp"
lready() { $LH vmlog -c >/dev/null 2>&1 && $LG -l >/dev/null 2>&1; }
check "--log-file: both daemons come up and connect" wait_until lready
stamp='[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]'
check "--log-file: the host daemon's lines are in the file, with time and pid" \
	grep -q "^$stamp negotiator-host\\[$lhp\\]: listening for local clients" "$T/lh.log"
check "--log-file: the guest daemon's too" \
	grep -q "^$stamp negotiator-guest\\[$lgp\\]: listening for local clients" "$T/lg.log"
check "--log-file: ... and nothing on their stderr" test ! -s "$T/lh.err" -a ! -s "$T/lg.err"
check "--pid-file: each daemon wrote its pid ($(cat "$T/lh.pidf" "$T/lg.pidf" 2>&1 | tr '\n' ' '))" \
	eval 'test "$(cat "$T/lh.pidf")" = "$lhp" && test "$(cat "$T/lg.pidf")" = "$lgp" && test ! -e "$T/lh.pidf.new"'
$LG -e fds > "$T/out" 2>"$T/err"; rc=$?
check "a host command lists its descriptors, its stdout a pipe among them ($rc)" \
	eval 'test "$rc" = 0 && grep -q "^pipe:" "$T/out"'
check "... the host daemon's log file is not among them" eval '! grep -q "lh\.log" "$T/out"'
check "... and its stderr still reaches the caller, not the log file" \
	eval 'test "$(cat "$T/err")" = on-stderr && ! grep -q on-stderr "$T/lh.log"'
$LH vmlog -e fds > "$T/out" 2>"$T/err"; rc=$?
check "a guest command lists its descriptors, its stdout a pipe among them ($rc)" \
	eval 'test "$rc" = 0 && grep -q "^pipe:" "$T/out"'
check "... the guest daemon's log file is not among them" eval '! grep -q "lg\.log" "$T/out"'
check "... and its stderr still reaches the caller, not the log file" \
	eval 'test "$(cat "$T/err")" = on-stderr && ! grep -q on-stderr "$T/lg.log"'
# logrotate: the file moved away, SIGHUP, a new file at the path
mv "$T/lh.log" "$T/lh.log.1"
mv "$T/lg.log" "$T/lg.log.1"
kill -HUP $lhp $lgp
check "SIGHUP: the host daemon reopens its log file by its path" \
	wait_until grep -q "rescanning .* (SIGHUP)" "$T/lh.log"
check "... no longer writing to the moved one" eval '! grep -q "SIGHUP" "$T/lh.log.1"'
check "SIGHUP: the guest daemon too" wait_until grep -q "log file .*lg\.log reopened" "$T/lg.log"
check "... and both daemons serve on" lready
# a client logs its errors to --log-file too
$LH --log-file "$T/cl.log" nosuch -e x > "$T/out" 2>"$T/err"; rc=$?
check "client --log-file: its error line in the file, not on stderr ($rc)" \
	eval 'test "$rc" = 125 && test ! -s "$T/err" && grep -q "negotiator-host\\[[0-9]*\\]: error: .*nosuch" "$T/cl.log"'
$LH --syslog --syslog-facility local3 -g > "$T/out" 2>&1; rc=$?
check "--syslog --syslog-facility local3 accepted by a client ($rc)" test "$rc" = 0 -a "$(cat "$T/out")" = vmlog
for prog in "$LH" "$LG"; do
	$prog -d --syslog-facility bogus > "$T/out" 2>"$T/err"; rc=$?
	check "${prog%% *} --syslog-facility bogus: usage error 2, one line ($rc)" \
		eval 'test "$rc" = 2 && test "$(wc -l < "$T/err")" = 1 && grep -q "unknown --syslog-facility: bogus" "$T/err"'
	$prog -d -q --control-socket "$T/pf.sock" --pid-file "$T/no-dir/x.pid" > "$T/out" 2>"$T/err"; rc=$?
	check "${prog%% *} --pid-file in a missing directory: 125, one line on stderr, no socket left ($rc)" \
		eval 'test "$rc" = 125 && test "$(wc -l < "$T/err")" = 1 && grep -q "unable to write the pid file $T/no-dir/x.pid" "$T/err" && test ! -e "$T/pf.sock"'
	$prog -e x --pid-file "$T/x.pidf" > "$T/out" 2>"$T/err"; rc=$?
	check "${prog%% *} --pid-file without -d: usage error 2 ($rc)" \
		eval 'test "$rc" = 2 && grep -q "pid-file goes with -d" "$T/err" && test ! -e "$T/x.pidf"'
	$prog -d --log-file "$T/no-dir/x.log" > "$T/out" 2>"$T/err"; rc=$?
	check "${prog%% *} --log-file in a missing directory: 125, one line on stderr ($rc)" \
		eval 'test "$rc" = 125 && test "$(wc -l < "$T/err")" = 1 && grep -q "unable to open the log file $T/no-dir/x.log" "$T/err"'
done
kill $lhp $lgp
wait $lhp; rh=$?
wait $lgp; rg=$?
check "both stop cleanly on SIGTERM, saying so in the new files ($rh $rg)" \
	eval 'test "$rh" = 0 -a "$rg" = 0 && grep -q "stopping on signal" "$T/lh.log" && grep -q "stopping on signal" "$T/lg.log"'
check "... and nothing ever reached their stderr" test ! -s "$T/lh.err" -a ! -s "$T/lg.err"
check "... their pid files removed" test ! -e "$T/lh.pidf" -a ! -e "$T/lg.pidf"
kill "$(cat "$T/standin-vmlog.pid")" 2>/dev/null
rm -f "$T/standin-vmlog.pid"

# no daemon and no port: the error names every place port discovery looked
mkdir -p "$T/root/dev"
NEGOTIATOR_SYSROOT="$T/root" $B/negotiator-guest --control-socket "$T/none.sock" -e x -t 1 \
	> "$T/out" 2>&1; rc=$?
check "no virtio port: exit 125" [ "$rc" -eq 125 ]
check "no virtio port: sysfs, udev and /dev/vport* tried" \
	grep -q "tried $T/root/sys/class/virtio-ports (missing); .*/dev/virtio-ports/.* (missing); .*/dev/vport\* (none)" "$T/out"
check "no virtio port, no daemon: says the daemon is not running, where, how to start it" \
	grep -qx "negotiator-guest: error: the guest daemon is not running: no socket at $T/none.sock; start it (negotiator-guest -d --control-socket $T/none.sock, or its service), or see negotiator-guest --check" "$T/out"
$B/negotiator-host --channels-dir "$T/nochan" --control-socket "$T/none.sock" vm1 -e x \
	> "$T/out" 2>&1; rc=$?
check "host client, no daemon, no channel: 125, and the daemon is not running at the socket given ($rc)" \
	eval 'test "$rc" = 125 && grep -qx "negotiator-host: error: the host daemon is not running: no socket at $T/none.sock; start it (negotiator-host -d --control-socket $T/none.sock, or its service), or see negotiator-host --check" "$T/out"'

# a daemon started before its ports exist waits for them: one line, then it
# finds them; --wait-ports gives up with a clear message
mkdir -p "$T/late/dev"
NEGOTIATOR_SYSROOT="$T/late" $B/negotiator-guest -d --control-socket "$T/late.sock" \
	--wait-ports 1 > "$T/out" 2>&1; rc=$?
check "--wait-ports 1 and no ports: exit 125" [ "$rc" -eq 125 ]
check "... naming both ports and the missing multiport support" \
	grep -q "ports negotiator-host-to-guest.0 and negotiator-guest-to-host.0 did not appear within 1 s.*multiport virtio_console" "$T/out"
NEGOTIATOR_SYSROOT="$T/late" $B/negotiator-guest -d -v --control-socket "$T/late.sock" \
	2> "$T/late.log" &
late=$!
PIDS="$PIDS $late"
sleep 1.5
check "no ports yet: the daemon waits" alive $late
# ports as /dev/vport* named in debugfs; plain files: EOF and writable for
# ever, like a port whose host never comes, and no SIGIO
mkdir -p "$T/late/sys/kernel/debug/virtio-ports"
for p in 1 2; do
	: > "$T/late/dev/vport0p$p"
	n=negotiator-host-to-guest.0; [ $p = 2 ] && n=negotiator-guest-to-host.0
	echo "name: $n" > "$T/late/sys/kernel/debug/virtio-ports/vport0p$p"
done
check "ports appear: the daemon finds them" wait_until has "$T/late.log" "virtio ports found after"
check "... after exactly one line about waiting" \
	test "$(grep -c 'waiting for the virtio ports' "$T/late.log")" = 1
check "... and opens them" has "$T/late.log" "opened $T/late/dev/vport0p2"
check "a port whose O_ASYNC does not stick: found out, said once" \
	test "$(grep -c 'sends no SIGIO' "$T/late.log")" = 1
t0=$(awk '{ print $14 + $15 }' "/proc/$late/stat" 2>/dev/null)
sleep 3
t1=$(awk '{ print $14 + $15 }' "/proc/$late/stat" 2>/dev/null)
check "no host for 3 s, always writable and at EOF: no busy loop ($t0 -> $t1 ticks)" \
	test -n "$t0" -a -n "$t1" -a "$((t1 - t0))" -le 2
kill $late

# ---- the event loop and discovery (issue 13) ---------------------------------------------
$B/negotiator-host -d --event-loop=poll --channels-dir "$T/ch" > /dev/null 2>"$T/err"; rc=$?
check "--event-loop=poll: usage error 2, naming what this build has" \
	test "$rc" = 2 -a -n "$(grep 'unknown event loop: poll (this build has select' "$T/err")"
NEGOTIATOR_EVENT_LOOP=bogus $B/negotiator-host -d --channels-dir "$T/ch" 2>"$T/err"; rc=$?
check "NEGOTIATOR_EVENT_LOOP=bogus: the same usage error" test "$rc" = 2
for backend in select epoll; do
	have HAVE_EPOLL || [ $backend = select ] || continue
	mkdir -p "$T/disc-$backend"
	rm -f "$T/disc.log"
	NEGOTIATOR_EVENT_LOOP=$backend $B/negotiator-host -d -v --no-policy --scan-interval 600 \
		--channels-dir "$T/disc-$backend" --control-socket "$T/disc.sock" 2>"$T/disc.log" &
	dp=$!
	PIDS="$PIDS $dp"
	wait_until test -S "$T/disc.sock"
	check "$backend: the daemon says which event loop it runs" has "$T/disc.log" "event loop: $backend"
	sleep 2   # the directory's change (mkdir) is then over by a whole second
	DHOST="$B/negotiator-host --control-socket $T/disc.sock"
	i=0
	while [ $i -lt 30 ]; do $DHOST -t 2 nosuch$i -e true 2>/dev/null; i=$((i + 1)); done
	n=$(grep -c "rescanning" "$T/disc.log")
	check "$backend: 30 calls for unknown names: one rescan ($n)" test "$n" = 1
	$DHOST -t 2 nosuch -e true 2>"$T/err"; rc=$?
	check "$backend: ... each a clear failure, 125" \
		test "$rc" = 125 -a -n "$(grep 'no such guest: nosuch' "$T/err")"
	# a guest that starts now is found by its first call, interval or not
	"$B/tests/standin" --pidfile "$T/disc.pid" "$T/disc-$backend" vmd "$T/g1" 2>/dev/null &
	wait_until test -s "$T/disc.pid"
	$DHOST -t 2 vmd -e true 2>"$T/err"
	check "$backend: a guest that just started is found by its first call" \
		test -z "$(grep 'no such guest' "$T/err")"
	kill "$(cat "$T/disc.pid")" "$dp"
	rm -f "$T/disc.pid"
	wait_until dead "$dp"
done

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
