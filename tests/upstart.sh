#!/bin/sh
#
# tests/upstart.sh: tests/upstart-check.sh on the upstart jobs of
# scripts/upstart (@BINDIR@ filled in, " @DAEMON_ARGS@" dropped, as make
# install does), on a job using most stanzas, and on bad jobs, each of which must fail at the
# right line with the right complaint.  Prints "ok -" / "not ok -" lines
# and "N passed, N failed".
#
# Usage: sh tests/upstart.sh [SOURCE_DIR]   (default: the checkout this
# script is in).  UPSTART_CHECK_SH picks the shell that runs the checker
# (default sh), AWK its awk.

LC_ALL=C
export LC_ALL
S=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "${1:-$S/..}" && pwd)
. "$S/lib.sh"
suite_tmp upstart
chk() { ${UPSTART_CHECK_SH:-sh} "$S/upstart-check.sh" "$@"; }

# good NAME [OPTION...] < JOB: exit 0, nothing said (good and bad must not
# end a pipeline: their counts would stay in a subshell)
good() {
	f=$T/$1.conf
	shift
	cat > "$f"
	out=$(chk "$@" "$f" 2>&1)
	rc=$?
	check "${f##*/}${*:+ ($*)}: accepted${out:+: $out}" test "$rc.$out" = "0."
}

# bad NAME LINE TEXT [OPTION...] < JOB: exit 1, and a line "JOB:LINE: ..."
# saying TEXT
bad() {
	f=$T/$1.conf
	l=$2
	txt=$3
	shift 3
	cat > "$f"
	out=$(chk "$@" "$f" 2>&1)
	rc=$?
	if [ "$rc" -eq 1 ] && printf '%s\n' "$out" | grep -F -- "$f:$l: " | grep -F -q -- "$txt"; then
		pass "${f##*/}${*:+ ($*)}: line $l, $txt"
	else
		fail "${f##*/}${*:+ ($*)}: line $l, $txt (exit $rc: $out)"
	fi
}

# The jobs we install, as make install writes them.
for j in "$SRC"/scripts/upstart/*.conf; do
	sed -e 's|@BINDIR@|/usr/bin|g' -e 's| @DAEMON_ARGS@||g' "$j" > "$T/job.in"
	n=${j##*/}
	good "installed-${n%.conf}" < "$T/job.in"
done

good many-stanzas <<'EOF'
# A job with most of upstart 0.6's stanzas.
description "A job with most stanzas"
author "Someone <someone@example.org>"
version "1.0"
emits thing-ready thing-gone
start on (local-filesystems and net-device-up IFACE!=lo   # comment: fine here
          and (started udev or started "udevtrigger"))  \
    or stopped rc RUNLEVEL=[2345]
stop on runlevel [!2345] or stopping $JOB
env DAEMON_OPTS="--verbose --log-file /var/log/thing.log"
env LANG
export DAEMON_OPTS
instance $PORT
respawn
respawn limit 10 5
normal exit 0 1 TERM SIGHUP
kill timeout 30
expect fork
console output
umask 022
nice -5
oom never
limit nofile 1024 4096
limit core unlimited unlimited
chroot /
chdir "/var/lib/a thing"
pre-start script
    # not parsed by upstart: "quotes, ( and stray words
    mkdir -p /var/run/thing
end script
post-start exec sleep 1
pre-stop exec echo 'stopping # not a comment'
post-stop script
	rm -rf /var/run/thing
	end script   # a comment may follow
script
    exec /usr/bin/thing $DAEMON_OPTS \
        --port "$PORT"
end script
EOF

good task <<'EOF'
start on startup
task
exec /bin/true
EOF

good abstract-job <<'EOF'
# no main process: a state for others to start on
start on filesystem
pre-start exec mkdir -p /var/run/x
EOF

# Stanzas of later upstarts: fine for 1.4, not for 0.6 (nor 1.2, 0.6.5).
cat > "$T/newer.in" <<'EOF'
setuid nobody
setgid nogroup
console log
kill signal INT
oom score -500
manual
start on runlevel [2345]
exec /usr/bin/thing
EOF
good upstart-1.4 --max-version 1.4 < "$T/newer.in"
bad upstart-1.4 1 '"setuid" needs upstart 1.4 or later (checking for upstart 0.6)' < "$T/newer.in"
bad upstart-1.4 3 '"console log" needs upstart 1.4' < "$T/newer.in"
bad upstart-1.4 4 '"kill signal" needs upstart 1.3' --max-version 1.2 < "$T/newer.in"
bad upstart-1.4 6 '"manual" needs upstart 0.6.7' --max-version 0.6.5 < "$T/newer.in"

bad unknown-stanza 3 'unknown stanza "exe"' <<'EOF'
start on runlevel [2345]

exe /usr/bin/thing
EOF

bad service-stanza 2 'unknown stanza "service"' <<'EOF'
exec /usr/bin/thing
service
EOF

bad unbalanced-paren 2 '"(" never closed' <<'EOF'
description "x"
start on (started a or started b
stop on runlevel [!2345]
exec /usr/bin/thing
EOF

bad close-paren 1 'start on: ")" without "("' <<'EOF'
start on started a)
exec /usr/bin/thing
EOF

bad dangling-or 1 'start on: "or" with no event after it' <<'EOF'
start on (started a or)
exec /usr/bin/thing
EOF

bad leading-and 2 'stop on: "and" with no event before it' <<'EOF'
start on runlevel [2345]
stop on and runlevel [!2345]
exec /usr/bin/thing
EOF

bad trailing-or 1 'start on: "or" with no event after it' <<'EOF'
start on runlevel [2345] or
exec /usr/bin/thing
EOF

bad empty-parens 1 'empty parentheses' <<'EOF'
start on started a or ()
EOF

bad missing-operator 1 '"(" after an event: missing "and" or "or"' <<'EOF'
start on started a (started b)
EOF

bad no-expression 2 'stop on: no event expression' <<'EOF'
start on runlevel [2345]
stop on
EOF

bad blank-in-parens 3 'blank or comment-only line inside the "("' <<'EOF'
start on (started a
          or started b
          # upstart 0.6 stops here
          or started c)
EOF

bad positional-after-kv 1 'positional argument "x" after KEY=VALUE' <<'EOF'
start on stopped rc RUNLEVEL=[2345] x
EOF

bad respawn-limit 2 'respawn limit: COUNT "x" is not a number' <<'EOF'
respawn
respawn limit x 5
exec /usr/bin/thing
EOF

bad kill-timeout 2 'kill timeout: "abc" is not a number of seconds' <<'EOF'
exec /usr/bin/thing
kill timeout abc
EOF

bad two-exec 4 'main process (exec or script) given again (first at line 2)' <<'EOF'
start on runlevel [2345]
exec /usr/bin/thing
respawn
exec /usr/bin/other
EOF

bad exec-and-script 2 'main process (exec or script) given again (first at line 1)' <<'EOF'
exec /usr/bin/thing
script
    exec /usr/bin/other
end script
EOF

bad two-start-on 2 '"start on" given again (first at line 1)' <<'EOF'
start on runlevel [2345]
start on started a
exec /usr/bin/thing
EOF

bad no-end-script 3 '"pre-start script" without "end script"' <<'EOF'
start on runlevel [2345]
exec /usr/bin/thing
pre-start script
    mkdir -p /var/run/thing
end scrip
EOF

bad console-log 2 '"console log" needs upstart 1.4 or later (checking for upstart 0.6)' <<'EOF'
exec /usr/bin/thing
console log
EOF

bad expect-forking 2 'expect: "forking" is not one of fork, daemon, stop, none' <<'EOF'
exec /usr/bin/thing
expect forking
EOF

bad normal-exit 2 'normal exit: "foo" is neither an exit status nor a signal name' <<'EOF'
exec /usr/bin/thing
normal exit 0 TERM foo
EOF

bad umask 2 'umask: "999" is not an octal mask' <<'EOF'
exec /usr/bin/thing
umask 999
EOF

bad nice 2 'nice: "20" is not a number from -20 to 19' <<'EOF'
exec /usr/bin/thing
nice 20
EOF

bad oom 1 'oom: "-18" is not "never" or a number from -17 to 15' <<'EOF'
oom -18
exec /usr/bin/thing
EOF

bad limit 1 'limit nofile: "lots" is not a number or "unlimited"' <<'EOF'
limit nofile 1024 lots
exec /usr/bin/thing
EOF

bad description-unquoted 1 'description: unexpected "guest" (one argument: quote it' <<'EOF'
description Negotiator guest agent
exec /usr/bin/thing
EOF

bad unclosed-quote 2 'quote never closed' <<'EOF'
start on runlevel [2345]
exec /usr/bin/thing --name it's
respawn
EOF

bad respawn-no-main 2 'respawn but no exec or script' <<'EOF'
start on runlevel [2345]
respawn
EOF

# Usage errors: exit 2, nothing on stdout.
chk > "$T/usage.out" 2>&1
check "no FILE: exit 2" test $? -eq 2
chk --max-version 1.x "$T/task.conf" > "$T/usage.out" 2>&1
check "--max-version 1.x: exit 2" test $? -eq 2
chk --frobnicate "$T/task.conf" > "$T/usage.out" 2>&1
check "unknown option: exit 2" test $? -eq 2
chk "$T/no-such.conf" > "$T/usage.out" 2>/dev/null
check "missing FILE: exit 2, nothing on stdout" test "$?.$(cat "$T/usage.out")" = "2."

# Several files: the problems of each, exit 1.
out=$(chk "$T/task.conf" "$T/umask.conf" "$T/nice.conf")
check "several files: the problems of each, exit 1" \
	test "$?.$(printf '%s\n' "$out" | wc -l | tr -d ' ')" = "1.2"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
