#!/bin/sh
#
# tests/demo.sh: `make demo`.  The main job, end to end, with no VM: a small
# stand-in for QEMU (tests/standin) creates the guest's channel sockets like
# libvirt does, a host daemon and a guest daemon connect through it, and we
# run commands both ways.  Everything lives in a temp dir and is cleaned up.

B=$(cd "${1:-.}" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/negotiator-demo.XXXXXX") || exit 1
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	sleep 0.2
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

say() { printf '\n\033[1m## %s\033[0m\n' "$*"; }
# run SHOWN COMMAND...: print SHOWN as the command line, run the command
run() { printf '$ %s\n' "$1"; shift; "$@"; printf '(exit status %s)\n' "$?"; }

mkdir -p "$T/channels" "$T/guest-ports" "$T/guest-commands" "$T/host-commands"
cmd() { f=$1; shift; printf '#!/bin/sh\n%s\n' "$*" > "$f"; chmod 755 "$f"; }
cmd "$T/guest-commands/countdown" 'n=${1:-3}; while [ $n -gt 0 ]; do echo "T-$n ($(date +%T))"; n=$((n - 1)); sleep 1; done; echo liftoff'
cmd "$T/guest-commands/shout" 'tr a-z A-Z'
cmd "$T/guest-commands/grumpy" 'echo "to stdout"; echo "to stderr" >&2; exit 3'
cmd "$T/host-commands/who-am-i" 'echo "host $(hostname) answering guest $NEGOTIATOR_GUEST"'

say "A stand-in for QEMU: guest 'demo-vm' gets libvirt-style channel sockets"
"$B/tests/standin" --pidfile "$T/standin.pid" "$T/channels" demo-vm "$T/guest-ports" &
PIDS="$PIDS $!"
while [ ! -s "$T/standin.pid" ]; do sleep 0.1; done
ls "$T/channels" | sed 's/^/  /'

say "Starting negotiator-host --daemon and negotiator-guest --daemon"
"$B/negotiator-host" --daemon --channels-dir "$T/channels" --control-socket "$T/host.sock" \
	--commands-dir "$T/host-commands" 2>"$T/host.log" &
PIDS="$PIDS $!"
"$B/negotiator-guest" --daemon --control-socket "$T/guest.sock" \
	--commands-dir "$T/guest-commands" --commands-dir "$B/scripts/commands" \
	--host-to-guest "unix:$T/guest-ports/negotiator-host-to-guest.0" \
	--guest-to-host "unix:$T/guest-ports/negotiator-guest-to-host.0" 2>"$T/guest.log" &
PIDS="$PIDS $!"
# the demo's daemons use sockets in the temp dir; real ones use the defaults
H="$B/negotiator-host --channels-dir $T/channels --control-socket $T/host.sock"
G="$B/negotiator-guest --control-socket $T/guest.sock"
n=0
until $H demo-vm --list-commands >/dev/null 2>&1; do
	n=$((n + 1)); [ $n -gt 100 ] && { echo "daemons did not connect"; cat "$T"/*.log; exit 1; }
	sleep 0.1
done
echo "  connected"

say "On the host: which guests, and what does demo-vm offer?"
run 'negotiator-host --list-guests' $H --list-guests
run 'negotiator-host demo-vm --list-commands' $H demo-vm --list-commands

say "Host runs a guest command; its output streams as it is printed"
run "negotiator-host demo-vm --execute 'countdown 3'" $H demo-vm --execute 'countdown 3'

say "A built-in command (POSIX sh, works on old and minimal guests)"
run 'negotiator-host demo-vm --execute find-distributor-id' $H demo-vm --execute find-distributor-id

say "stdin goes to the remote command"
printf '$ echo "quiet please" | negotiator-host demo-vm -e shout\n'
echo "quiet please" | $H demo-vm -e shout; printf '(exit status %s)\n' "$?"

say "stdout and stderr stay apart; the exit status comes back"
printf '$ negotiator-host demo-vm -e grumpy 2>/dev/null\n'
$H demo-vm -e grumpy 2>/dev/null; printf '(exit status %s)\n' "$?"
run 'negotiator-host demo-vm -e no-such-command' $H demo-vm -e no-such-command

say "Inside the guest: run a host command (it sees NEGOTIATOR_GUEST)"
run 'negotiator-guest --execute who-am-i' $G --execute who-am-i

say "Timeouts kill the remote process group and exit 124"
run "negotiator-host --timeout 1 demo-vm -e 'countdown 5'" $H --timeout 1 demo-vm -e 'countdown 5'

say "Done; stopping the daemons and cleaning up"
