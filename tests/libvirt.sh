#!/bin/sh
#
# tests/libvirt.sh: negotiator-host as libvirt operators use it: guests
# found through virsh (tests/libvirt/virsh, a fake virsh that answers from
# recorded domain XML), with every channel naming libvirt has used:
#   webserver-production-eu-west-1  domain-12-webserver-production/PORT
#                                   (libvirt >= 3: the name cut to 20)
#   mid                             domain-mid/PORT (libvirt 1.3)
#   flat                            flat.PORT (libvirt 1.0.6 to 1.2)
#   custom                          a path= of the operator's own, with an
#                                   XML entity in it (r&amp;d)
#   halfway                         only one of the two channels
#   plain                           no negotiator channel at all
# Sockets are played by tests/standin, agents by negotiator-guest -d.
# Prints "ok - ..." / "not ok - ..." lines and ends with "N passed, N
# failed".
#
# Usage: sh tests/libvirt.sh [BUILD_DIR]   (default: the current dir)

LC_ALL=C
export LC_ALL
B=$(cd "${1:-.}" && pwd)
S=$(cd "$(dirname "$0")" && pwd)
. "$S/lib.sh"
suite_tmp libvirt

has() { grep -q -- "$2" "$1"; }
count() { grep -c -- "$2" "$1" 2>/dev/null || true; }

# the fake virsh: its state in $T/fv, the recorded XML's @T@ is $T
mkdir -p "$T/fv" "$T/chan" "$T/srv/r&d" "$T/nobin"
FAKE_VIRSH=$T/fv
FAKE_VIRSH_T=$T
export FAKE_VIRSH FAKE_VIRSH_T
printf 'webserver-production-eu-west-1\nmid\nflat\ncustom\nhalfway\nplain\n' > "$T/fv/list"
VPATH="$S/libvirt:$PATH"
LONG=webserver-production-eu-west-1

# guest N: its stand-in sockets (scheme, id, channel dir) and its agent
guest() { # N NAME DIR SCHEME [ID] [PORT]
	gn=$1 gname=$2 gdir=$3 gport=$6
	mkdir -p "$T/g$gn" "$T/gc$gn"
	printf '#!/bin/sh\necho "I am %s"\n' "$gname" > "$T/gc$gn/whoami"
	chmod 755 "$T/gc$gn/whoami"
	set -- --scheme "$4" --id "${5:-1}" ${gport:+--port "$gport"}
	"$B/tests/standin" --pidfile "$T/standin$gn.pid" "$@" "$gdir" "$gname" "$T/g$gn" \
		2>>"$T/standin$gn.log" &
	wait_until test -s "$T/standin$gn.pid"
	[ -n "$gport" ] && return
	"$B/negotiator-guest" -d --control-socket "$T/guest$gn.sock" --commands-dir "$T/gc$gn" \
		--host-to-guest "unix:$T/g$gn/negotiator-host-to-guest.0" \
		--guest-to-host "unix:$T/g$gn/negotiator-guest-to-host.0" 2>>"$T/guest$gn.log" &
	PIDS="$PIDS $!"
}
guest 1 webserver-production "$T/chan" domain-id 12
guest 2 mid "$T/chan" domain
guest 3 flat "$T/chan" old
guest 4 custom "$T/srv/r&d" old
guest 5 halfway "$T/chan" domain-id 9 negotiator-host-to-guest.0

# a client with no daemon (its default control socket is not ours)
HOST="$B/negotiator-host --control-socket $T/none.sock"
vhost() { PATH=$VPATH $HOST "$@"; }

# ---- discovery by virsh, no daemon -------------------------------------------------------
vhost -g > "$T/out" 2> "$T/err"; rc=$?
check "-g through virsh: the four guests with both channels, full names, sorted" \
	test "$rc" = 0 -a "$(tr '\n' ,< "$T/out")" = "custom,flat,mid,$LONG,"
check "... asked virsh for the list and each domain's XML" \
	test "$(count "$T/fv/calls" '^list --name$')" = 1 -a "$(count "$T/fv/calls" '^dumpxml ')" = 6
check "... without a word on stderr" test ! -s "$T/err"
for g in $LONG mid flat custom; do
	wait_until vhost -e whoami $g
	r=$(vhost -e whoami $g 2>"$T/err")
	want=$g
	[ $g = $LONG ] && want=webserver-production
	check "-e through virsh's socket path: $g" test "$r" = "I am $want"
done
vhost -e whoami halfway > "$T/out" 2> "$T/err"; rc=$?
check "a guest with one channel: 125, and says so" \
	test "$rc" = 125 -a "$(head -n 1 "$T/err")" = \
	"negotiator-host: error: no such guest: halfway (it has only one of the two negotiator channels)"
check "... and, no daemon serving, that it is not running" \
	grep -q "^negotiator-host: error: the host daemon is not running: no socket at $T/none.sock; " "$T/err"
vhost -e whoami plain > "$T/out" 2> "$T/err"; rc=$?
check "a domain without negotiator channels: 125, no such guest" \
	test "$rc" = 125 -a "$(head -n 1 "$T/err")" = "negotiator-host: error: no such guest: plain (no running domain of that name with negotiator channels)"

: > "$T/fv/calls"
vhost -g --channels-dir "$T/chan" > "$T/out" 2> "$T/err"
check "--channels-dir: the directory, not virsh (its cut name, no custom path)" \
	test "$(tr '\n' ,< "$T/out")" = "flat,mid,webserver-production," -a ! -s "$T/fv/calls"
PATH="$T/nobin:/usr/bin:/bin" $HOST -g --channels-dir "$T/chan" > "$T/out2" 2>&1
check "no virsh on PATH: the directory" cmp -s "$T/out" "$T/out2"

vhost -g --connect test:///fake > "$T/out" 2> "$T/err"
check "--connect URI: virsh -c URI" \
	test "$(head -n 1 "$T/fv/calls")" = "-c test:///fake list --name" -a \
	"$(tr '\n' ,< "$T/out")" = "custom,flat,mid,$LONG,"
PATH=$T/nobin:/usr/bin:/bin $HOST -g --connect test:///fake > "$T/out" 2> "$T/err"; rc=$?
check "--connect without virsh: usage error" \
	test "$rc" = 2 -a "$(cat "$T/err")" = "negotiator-host: error: --connect needs virsh, and there is none on PATH (try --help)"
vhost -g --connect test:///fake --channels-dir "$T/chan" > "$T/out" 2> "$T/err"; rc=$?
check "--connect with --channels-dir: usage error" test "$rc" = 2 && has "$T/err" "not both"

# ---- --status and --libvirt-xml, no daemon ----------------------------------------------------
J=$B/tests/jsoncheck
V=$($B/negotiator-host --version | sed 's/^negotiator-host \([^ ]*\) .*/\1/')
answers() { echo "^$1: connected, agent answers (negotiator $V, native protocol), [0-9]*\.[0-9] ms, 1 command\$"; }
vhost --status -t 3 > "$T/st" 2> "$T/err"; rc=$?
sed 's/^/# /' "$T/st"
check "--status: every running domain, one line each, sorted; exit 1 (not all answer)" \
	test "$rc" = 1 -a "$(cut -d: -f1 "$T/st" | tr '\n' ,)" = "custom,flat,halfway,mid,plain,$LONG,"
for g in custom flat mid $LONG; do
	check "--status: $g: connected, answers, version, protocol, ms, commands" grep -q "$(answers $g)" "$T/st"
done
check "--status: one channel only, said which" \
	grep -qx "halfway: one channel (only host-to-guest), agent unreachable" "$T/st"
check "--status: a domain without channels" \
	grep -qx "plain: no channel (no negotiator channels), agent unreachable" "$T/st"
vhost --status mid $LONG > "$T/out" 2> "$T/err"; rc=$?
check "--status GUEST...: those only; exit 0 when all answer" \
	test "$rc" = 0 -a "$(cut -d: -f1 "$T/out" | tr '\n' ,)" = "mid,$LONG,"
vhost --status --json custom halfway nosuch > "$T/out" 2> "$T/err"; rc=$?
check "--status --json: valid JSON, one object per guest, exit 1" \
	eval '"$J" < "$T/out" && test "$rc" = 1 -a "$(wc -l < "$T/out" | tr -d " ")" = 3'
check "--status --json: the fields, in order" \
	test "$("$J" -k -g custom < "$T/out")" = "guest,channel,answers,version,protocol,rtt_ms,commands,message"
check "--status --json: an agent that answers" eval '
	test "$("$J" -g custom -f channel < "$T/out")" = connected &&
	test "$("$J" -g custom -f answers < "$T/out")" = true &&
	test "$("$J" -g custom -f version < "$T/out")" = "$V" &&
	test "$("$J" -g custom -f protocol < "$T/out")" = native &&
	test "$("$J" -g custom -f commands < "$T/out")" = 1 &&
	test "$("$J" -g custom -f message < "$T/out")" = null'
check "--status --json: one channel, and none" eval '
	test "$("$J" -g halfway -f channel < "$T/out")" = one &&
	test "$("$J" -g halfway -f answers < "$T/out")" = false &&
	test "$("$J" -g halfway -f rtt_ms < "$T/out")" = null &&
	test "$("$J" -g nosuch -f channel < "$T/out")" = none'
# a socket nobody serves (the stand-in of guest 7 killed, its socket left)
mkdir -p "$T/chan2" "$T/g7" "$T/g8"
"$B/tests/standin" --pidfile "$T/standin7.pid" "$T/chan2" dead "$T/g7" 2>/dev/null &
wait_until test -s "$T/standin7.pid"
kill -9 "$(cat "$T/standin7.pid")"
rm -f "$T/standin7.pid"
$HOST --channels-dir "$T/chan2" --status dead > "$T/out" 2> "$T/err"; rc=$?
check "--status: a socket nobody listens on: socket present, the reason" \
	eval 'test "$rc" = 1 && grep -qx "dead: socket present, agent does not answer: unable to connect to $T/chan2/dead.negotiator-host-to-guest.0: Connection refused" "$T/out"'

vhost --libvirt-xml > "$T/out" 2> "$T/err"; rc=$?
printf "<channel type='unix'>\n  <source mode='bind'/>\n  <target type='virtio' name='%s'/>\n</channel>\n" \
	negotiator-host-to-guest.0 negotiator-guest-to-host.0 > "$T/want"
check "--libvirt-xml: the two channels, no path (libvirt makes one up)" \
	eval 'test "$rc" = 0 && cmp -s "$T/out" "$T/want"'
check "--libvirt-xml: the steps on stderr: edit, full shutdown and start" eval '
	grep -q "virsh edit GUEST" "$T/err" && grep -q "virsh shutdown GUEST; once virsh list no longer shows it, virsh start GUEST" "$T/err"'
vhost --libvirt-xml web1 > "$T/out" 2> "$T/err"
check "--libvirt-xml GUEST, libvirt 9: still no path" cmp -s "$T/out" "$T/want"
echo 1.0.5 > "$T/fv/version"
vhost --libvirt-xml "r&d" > "$T/out" 2> "$T/err"
rm -f "$T/fv/version"
check "--libvirt-xml GUEST, libvirt 1.0.5: path= where libvirt 1.2 puts it, XML-escaped" \
	grep -qx "  <source mode='bind' path='/var/lib/libvirt/qemu/channel/target/r&amp;d.negotiator-guest-to-host.0'/>" "$T/out"
check "... and says why" has "$T/err" "libvirt 1.0.5 is older than 1.0.6"
# what it prints is what discovery reads: into a domain's XML, found again
{ echo "<domain><name>xmltest</name><devices>"; sed "s|/var/lib/libvirt/qemu/channel/target|$T/chan|" "$T/out"
  echo "</devices></domain>"; } > "$T/fv/xmltest.xml"
echo xmltest >> "$T/fv/list"
"$B/tests/standin" --pidfile "$T/standin8.pid" "$T/chan" "r&d" "$T/g8" 2>/dev/null &
wait_until test -s "$T/standin8.pid"
vhost --status xmltest -t 1 > "$T/out" 2> "$T/err"
check "--libvirt-xml's XML, as libvirt would report it, is found by discovery" \
	grep -q "^xmltest: connected" "$T/out"
grep -v '^xmltest$' "$T/fv/list" > "$T/l" && mv "$T/l" "$T/fv/list"
kill "$(cat "$T/standin8.pid")"

touch "$T/fv/fail"
vhost -g > "$T/out" 2> "$T/err"; rc=$?
check "virsh fails: an error or warning with virsh's own reason" \
	has "$T/err" "virsh list failed: error: failed to connect to the hypervisor"
rm -f "$T/fv/fail"
touch "$T/fv/hang"
start=$(date +%s)
NEGOTIATOR_VIRSH_TIMEOUT_MS=1000 vhost -g > "$T/out" 2> "$T/err"; rc=$?
end=$(date +%s)
rm -f "$T/fv/hang"
check "a hung virsh: given up after its deadline, said so" \
	test $((end - start)) -le 4 && has "$T/err" "virsh list did not answer within 1 s"
pkill -f "$S/libvirt/virsh" 2>/dev/null

# ---- the daemon, finding guests through virsh ----------------------------------------------
# scans on SIGHUP only (a long interval), so each one is the test's
: > "$T/fv/calls"
PATH=$VPATH $B/negotiator-host -d -v --scan-interval 600 --no-policy --control-socket "$T/host.sock" \
	2>>"$T/host.log" &
HOSTPID=$!
PIDS="$PIDS $HOSTPID"
DHOST="$B/negotiator-host --control-socket $T/host.sock"
scans() { count "$T/fv/calls" '^list --name$'; }
rescan() { # and wait for it to end
	n0=$(scans)
	kill -HUP $HOSTPID
	wait_until test "$(scans)" -gt "$n0"
	sleep 0.3
}
wait_until test -S "$T/host.sock"
wait_until $DHOST -e whoami $LONG
check "daemon: a call to the guest whose directory name libvirt cut" \
	test "$($DHOST -e whoami $LONG 2>&1)" = "I am webserver-production"
check "daemon: a call to the guest with a custom path=" \
	test "$($DHOST -e whoami custom 2>&1)" = "I am custom"
check "daemon: -g lists what virsh said" \
	test "$($DHOST -g | tr '\n' ,)" = "custom,flat,mid,$LONG,"
check "daemon: its log says where guests come from" has "$T/host.log" "finding guests through virsh"
for g in mid flat; do $DHOST -e whoami $g > /dev/null 2>&1; done
: > "$T/fv/calls"
rescan
check "daemon: a scan asks for the list, and no XML of a guest it is connected to" \
	test "$(scans)" = 1 -a "$(count "$T/fv/calls" '^dumpxml ')" = 2
check "daemon: ... only the XML of those it is not (halfway, plain)" \
	test "$(grep '^dumpxml ' "$T/fv/calls" | sort | tr '\n' ,)" = "dumpxml halfway,dumpxml plain,"
$DHOST -e whoami nosuch > "$T/out" 2> "$T/err"; rc=$?
check "daemon: an unknown name: 125, no such guest, in virsh's words" \
	test "$rc" = 125 -a "$(cat "$T/err")" = \
	"negotiator-host: error: no such guest: nosuch (no running domain of that name has both negotiator channels)"

# a guest that starts now is found by its first call: the daemon asks virsh
sed 's/mid/late/g' "$S/libvirt/mid.xml" > "$T/fv/late.xml"
guest 6 late "$T/chan" domain
echo late >> "$T/fv/list"
r=$($DHOST -e whoami late 2>&1)
check "daemon: a domain started after the last scan answers its first call" test "$r" = "I am late"

# a domain that stops is dropped at the next scan
grep -v '^flat$' "$T/fv/list" > "$T/fv/list.new" && mv "$T/fv/list.new" "$T/fv/list"
rescan
check "daemon: a domain gone from virsh's list is gone from -g" \
	test "$($DHOST -g | tr '\n' ,)" = "custom,late,mid,$LONG,"
check "daemon: ... and its log says so" has "$T/host.log" "guest flat: channels gone"

# libvirtd goes away: the guests stay (the directory, here the default one,
# would add its own), the log says it once
touch "$T/fv/fail"
rescan
rescan
check "daemon: virsh fails: one warning, with virsh's reason" \
	test "$(count "$T/host.log" 'virsh list failed: error: failed to connect to the hypervisor; finding guests in')" = 1
check "daemon: ... a guest only virsh knew (custom path) still answers" \
	test "$($DHOST -e whoami custom 2>&1)" = "I am custom"
$DHOST -g > "$T/g.out" 2>&1
check "daemon: ... the guests virsh found are kept (the default directory has none)" \
	test "$(tr '\n' , < "$T/g.out")" = "custom,late,mid,$LONG,"
rm -f "$T/fv/fail"
rescan
check "daemon: virsh back: said so, and its list is the truth again" \
	has "$T/host.log" "virsh answers again" && \
	test "$($DHOST -g | tr '\n' ,)" = "custom,late,mid,$LONG,"

# a hung virsh costs the daemon nothing: it answers while discovery waits
touch "$T/fv/hang"
kill -HUP $HOSTPID
sleep 0.3
start=$(date +%s)
r=$($DHOST -e whoami mid 2>&1)
end=$(date +%s)
check "daemon: while virsh hangs, calls are served at once" test "$r" = "I am mid" -a $((end - start)) -le 1
rm -f "$T/fv/hang"
pkill -f "$S/libvirt/virsh" 2>/dev/null

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
