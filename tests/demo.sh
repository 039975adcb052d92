#!/bin/sh
#
# tests/demo.sh: `make demo`.  The main job, end to end, with no VM: a small
# stand-in for QEMU (tests/standin) creates the guest's channel sockets like
# libvirt does, a host daemon and a guest daemon connect through it, and we
# run commands both ways.  Everything lives in a temp dir and is cleaned up.
#
# Each step is printed as the shell command it runs ("$ ..."), every option
# included, and then run from that very text (eval), so what is shown is what
# ran: a reader can repeat it by hand from the build directory.  Headings are
# bold only on a terminal, and never with NO_COLOR set.
#
# Usage: sh tests/demo.sh [BUILD_DIR]   (default: the current dir)

B=$(cd "${1:-.}" && pwd) || exit 1
cd "$B" || exit 1
T=
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	[ -n "$PIDS" ] && sleep 0.2
	[ -n "$T" ] && rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' HUP INT PIPE TERM

if [ -t 1 ] && [ -z "$NO_COLOR" ]; then
	say() { printf '\n\033[1m## %s\033[0m\n' "$*"; }
else
	say() { printf '\n## %s\n' "$*"; }
fi
# show 'COMMAND': print it as typed, then run that text
show() { printf '$ %s\n' "$1"; eval "$1"; }
# run 'COMMAND': the same, then its exit status
run() { printf '$ %s\n' "$1"; eval "$1"; printf '(exit status %s)\n' "$?"; }
# start 'COMMAND &' VAR: show it, run it in the background, VAR=its pid
start() { printf '$ %s %s=$!\n' "$1" "$2"; eval "$1"; eval "$2=\$!"; PIDS="$PIDS $!"; }
# await 'CONDITION': show the loop; the demo's own gives up after 10 s
await() {
	printf '$ until %s; do sleep 0.1; done\n' "$1"
	n=0
	until eval "$1"; do
		n=$((n + 1))
		if [ $n -gt 100 ]; then
			echo "demo: still not true after 10 s: $1"
			for f in "$T"/*.log; do [ -s "$f" ] && { echo "== $f"; cat "$f"; }; done
			exit 1
		fi
		sleep 0.1
	done
}
# q STRING: STRING as the shell reads it back (quoted when it needs to be)
q() {
	case $1 in
	*[!A-Za-z0-9/._-]*) printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")" ;;
	*) printf '%s' "$1" ;;
	esac
}
# mkcmd FILE: a command (an executable) with the script on stdin
mkcmd() {
	body=$(cat)
	show "cat > $1 <<'EOF'
$body
EOF"
	show "chmod 755 $1"
}

say "A temp dir for the demo, in the build directory"
show "cd $(q "$B")"
show 'T=$(mktemp -d "${TMPDIR:-/tmp}/negotiator-demo.XXXXXX")'
[ -n "$T" ] && [ -d "$T" ] || exit 1
case $T in
*[!A-Za-z0-9/._-]*)
	echo "demo: the temp dir $T has characters the commands shown would need to quote; set TMPDIR"
	exit 1 ;;
esac
echo "(T is $T)"
show 'mkdir -p $T/channels $T/guest-ports $T/guest-commands $T/host-commands'

say "The commands each side offers: executables in a commands directory"
mkcmd '$T/guest-commands/countdown' <<'EOF'
#!/bin/sh
n=${1:-3}
while [ $n -gt 0 ]; do echo "T-$n ($(date +%T))"; n=$((n - 1)); sleep 1; done
echo liftoff
EOF
mkcmd '$T/guest-commands/shout' <<'EOF'
#!/bin/sh
tr a-z A-Z
EOF
mkcmd '$T/guest-commands/grumpy' <<'EOF'
#!/bin/sh
echo "to stdout"; echo "to stderr" >&2; exit 3
EOF
mkcmd '$T/host-commands/who-am-i' <<'EOF'
#!/bin/sh
echo "host $(hostname) answering guest $NEGOTIATOR_GUEST"
EOF

say "A stand-in for QEMU: guest 'demo-vm' gets libvirt-style channel sockets"
echo "(On a real host libvirt makes them, in /var/lib/libvirt/qemu/channel/target;"
echo "in a real guest the ports are /dev/vport* devices.)"
start 'tests/standin --pidfile $T/standin.pid $T/channels demo-vm $T/guest-ports &' standin
await '[ -s $T/standin.pid ]'
show 'ls $T/channels'

say "Starting negotiator-host --daemon and negotiator-guest --daemon"
echo "(Real daemons need none of these options: they use libvirt's channel"
echo "directory, the virtio ports and /var/run/negotiator-{host,guest}.sock.)"
start './negotiator-host --daemon --channels-dir $T/channels \
    --control-socket $T/host.sock --commands-dir $T/host-commands \
    2>$T/host.log &' hostd
start './negotiator-guest --daemon --control-socket $T/guest.sock \
    --commands-dir $T/guest-commands --commands-dir scripts/commands \
    --host-to-guest unix:$T/guest-ports/negotiator-host-to-guest.0 \
    --guest-to-host unix:$T/guest-ports/negotiator-guest-to-host.0 \
    2>$T/guest.log &' guestd
await './negotiator-host --channels-dir $T/channels --control-socket $T/host.sock demo-vm --list-commands >/dev/null 2>&1'

say "On the host: which guests, does demo-vm's agent answer, what does it offer?"
run './negotiator-host --channels-dir $T/channels --control-socket $T/host.sock --list-guests'
run './negotiator-host --channels-dir $T/channels --control-socket $T/host.sock --status demo-vm'
run './negotiator-host --channels-dir $T/channels --control-socket $T/host.sock demo-vm --list-commands'

say "Host runs a guest command; its output streams as it is printed"
run "./negotiator-host --channels-dir \$T/channels --control-socket \$T/host.sock demo-vm --execute 'countdown 3'"

say "A built-in command (POSIX sh, works on old and minimal guests)"
run './negotiator-host --channels-dir $T/channels --control-socket $T/host.sock demo-vm --execute find-distributor-id'

say "stdin goes to the remote command"
run 'echo "quiet please" | ./negotiator-host --channels-dir $T/channels --control-socket $T/host.sock demo-vm -e shout'

say "stdout and stderr stay apart; the exit status comes back"
run './negotiator-host --channels-dir $T/channels --control-socket $T/host.sock demo-vm -e grumpy 2>/dev/null'
run './negotiator-host --channels-dir $T/channels --control-socket $T/host.sock demo-vm -e no-such-command'

say "Inside the guest: run a host command (it sees NEGOTIATOR_GUEST)"
run './negotiator-guest --control-socket $T/guest.sock --execute who-am-i'

say "Timeouts kill the remote process group and exit 124"
run "./negotiator-host --channels-dir \$T/channels --control-socket \$T/host.sock --timeout 1 demo-vm -e 'countdown 5'"

say "Done; stopping the daemons and cleaning up"
show 'kill $hostd $guestd $standin'
PIDS=""
sleep 0.2
show 'rm -rf $T'
T=
