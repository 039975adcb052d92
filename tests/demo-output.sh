#!/bin/sh
#
# tests/demo-output.sh: `make demo`'s output (tests/demo.sh).  Into a file
# it must be plain text (no escape sequences), show every command it runs
# with the options it gives (--channels-dir, --control-socket), and those
# commands, taken from the output and run again by themselves, must do the
# same job.  On a terminal (util-linux script, when there is one) headings
# are bold, unless NO_COLOR is set.  Prints "ok - ..." / "not ok - ..." and
# ends with "N passed, N failed".
#
# Usage: sh tests/demo-output.sh [BUILD_DIR]   (default: the current dir)

B=$(cd "${1:-.}" && pwd)
. "$(dirname "$0")/lib.sh"
suite_tmp demo-output
ESC=$(printf '\033')
has() { grep -q -e "$2" "$1"; }
hasnt() { ! grep -q -e "$2" "$1"; }

# ---- into a file -----------------------------------------------------------------
sh "$B/tests/demo.sh" "$B" > "$T/out" 2> "$T/err" < /dev/null
rc=$?
check "demo into a file: exit 0" [ "$rc" -eq 0 ]
check "demo into a file: on stderr only the two errors it shows (127, 124)" eval '
	[ "$(wc -l < "$T/err")" -eq 2 ] &&
	has "$T/err" "^negotiator-host: error: command not found in the guest.s commands: no-such-command (searched " &&
	has "$T/err" "^negotiator-host: error: timeout: no result within 1 second"'
check "demo into a file: no escape sequences (no ESC byte)" hasnt "$T/out" "$ESC"
check "demo: the host daemon's command line is shown with --channels-dir and --control-socket" \
	has "$T/out" '^\$ \./negotiator-host --daemon --channels-dir \$T/channels \\$'
check "demo: the guest daemon's command line is shown with --control-socket" \
	has "$T/out" '^\$ \./negotiator-guest --daemon --control-socket \$T/guest\.sock \\$'
# every client line names the daemon's socket (and the host's the directory)
grep '^\$ .*\./negotiator-host ' "$T/out" | grep -v -e '--daemon' > "$T/hostcli"
grep '^\$ .*\./negotiator-guest ' "$T/out" | grep -v -e '--daemon' > "$T/guestcli"
check "demo: every host client line shows --channels-dir and --control-socket" eval '
	[ "$(wc -l < "$T/hostcli")" -ge 8 ] &&
	! grep -v -e "--channels-dir \$T/channels --control-socket \$T/host.sock" "$T/hostcli"'
check "demo: every guest client line shows --control-socket" eval '
	[ "$(wc -l < "$T/guestcli")" -ge 1 ] &&
	! grep -v -e "--control-socket \$T/guest.sock" "$T/guestcli"'
check "demo: where \$T is, and its mktemp" eval '
	has "$T/out" "^(T is /.*/negotiator-demo\.[A-Za-z0-9]*)$" &&
	has "$T/out" "^\\\$ T=\\\$(mktemp -d "'
check "demo: each step's result (stream, stdin, exit statuses 3, 127, 124, host command)" eval '
	has "$T/out" "^liftoff$" && has "$T/out" "^QUIET PLEASE$" &&
	has "$T/out" "^(exit status 3)$" && has "$T/out" "^(exit status 127)$" &&
	has "$T/out" "^(exit status 124)$" && has "$T/out" "answering guest demo-vm$" &&
	has "$T/out" "^demo-vm: connected, agent answers"'
dir=$(sed -n 's/^(T is \(.*\))$/\1/p' "$T/out")
check "demo: its temp dir is gone at the end" [ -n "$dir" ] && [ ! -e "$dir" ]

# ---- the commands shown, run again by themselves ----------------------------------
# The "$ " lines, their continuation lines (after a trailing backslash) and
# here-documents, as a script; its daemons are killed however it ends.
{
	echo "trap 'kill \$hostd \$guestd \$standin 2>/dev/null' EXIT"
	echo "trap 'exit 1' INT TERM"
	awk '
		doc { print; if ($0 == "EOF") doc = 0; next }
		cont { print; cont = /\\$/; next }
		/^\$ / { sub(/^\$ /, ""); print; cont = /\\$/; doc = /<<.EOF.$/ }
	' "$T/out"
} > "$T/replay.sh"
if command -v timeout >/dev/null 2>&1; then to="timeout 60"; else to=; fi
$to sh "$T/replay.sh" > "$T/replay.out" 2> "$T/replay.err" < /dev/null
rc=$?
check "demo's commands replayed by hand: exit 0" [ "$rc" -eq 0 ]
check "demo's commands replayed by hand: the same results" eval '
	has "$T/replay.out" "^liftoff$" && has "$T/replay.out" "^QUIET PLEASE$" &&
	has "$T/replay.out" "answering guest demo-vm$" &&
	has "$T/replay.out" "^demo-vm: connected, agent answers" &&
	has "$T/replay.err" "command not found in the guest.s commands: no-such-command" &&
	has "$T/replay.err" "timeout: no result within 1 second"'

# ---- on a terminal ---------------------------------------------------------------
# (a script that works here: it keeps a command with stdin at EOF running)
if script -q -e -c 'sleep 0.2; echo probe' /dev/null 2>&1 < /dev/null | grep -q probe; then
	script -q -e -c "sh '$B/tests/demo.sh' '$B'" /dev/null > "$T/tty" 2>&1 < /dev/null
	rc=$?
	check "demo on a terminal: exit 0, bold headings" eval '
		[ "$rc" -eq 0 ] && has "$T/tty" "${ESC}\[1m## Done"'
	NO_COLOR=1 script -q -e -c "sh '$B/tests/demo.sh' '$B'" /dev/null > "$T/tty" 2>&1 < /dev/null
	rc=$?
	check "demo on a terminal with NO_COLOR=1: exit 0, no escape sequences" eval '
		[ "$rc" -eq 0 ] && has "$T/tty" "^## Done" && hasnt "$T/tty" "$ESC"'
else
	note "skipped: demo on a terminal (no util-linux script that works here)"
fi

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
