#!/bin/sh
#
# tests/upstart-check.sh: checks upstart job files against the stanza
# grammar of upstart 0.6 (Ubuntu 10.04), without an upstart to run them.
# Stanzas of later releases are known too, and reported as needing that
# release when it is newer than --max-version (default 0.6).
#
# Usage: sh tests/upstart-check.sh [--max-version VERSION] FILE...
# Prints one line "FILE:LINE: problem" per problem and exits 1 if there is
# any, else prints nothing and exits 0; exits 2 on a usage error.  AWK
# picks the awk (default awk); POSIX awk is enough (mawk, busybox awk).
#
# The grammar is upstart 0.6.5's init/parse_job.c and libnih's
# nih/config.c, and init(5) of that release:
#  - a stanza is one line, but quotes may span lines and a backslash at
#    the end of a line continues it (init(5): "Line breaks within a stanza
#    are permitted within single or double quotes, or if preceeded by a
#    blackslash"); "start on" / "stop on" go on over lines while a
#    parenthesis is open.  # starts a comment anywhere outside quotes.
#  - script ... end script: raw lines (sh's business) up to a line
#    "end script".
#  - upstart keeps the last of a stanza given twice (one main process,
#    one "start on", ...): reported here, it is never what was meant.
#  - numbers: whole decimal tokens, in the ranges upstart accepts.
# Not checked: what commands, paths, users and event names refer to.
#
# A job with neither exec nor script is legal (an abstract job: a state
# other jobs start on); it is reported only when it has respawn or expect,
# which only make sense for a main process.

MAXV=0.6
usage() {
	echo "usage: sh tests/upstart-check.sh [--max-version VERSION] FILE..." >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	--max-version) [ $# -ge 2 ] || usage; MAXV=$2; shift 2 ;;
	--max-version=*) MAXV=${1#*=}; shift ;;
	--) shift; break ;;
	-?*) usage ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || usage
case $MAXV in
''|.*|*.|*..*|*[!0-9.]*) echo "upstart-check: not a version: $MAXV" >&2; exit 2 ;;
esac
for f; do
	if [ ! -f "$f" ] || [ ! -r "$f" ]; then
		echo "upstart-check: cannot read $f" >&2
		exit 2
	fi
done

PROG='
BEGIN {
	file = ENVIRON["UC_FILE"]; maxv = ENVIRON["UC_MAX"]
	# libnih signal names (nih/signal.c), also taken with a SIG prefix
	split("HUP INT QUIT ILL TRAP ABRT IOT EMT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM STKFLT CHLD CLD CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO POLL LOST PWR SYS UNUSED", names, " ")
	for (j in names) sig[names[j]] = 1
	split("as core cpu data fsize memlock msgqueue nice nofile nproc rss rtprio sigpending stack", names, " ")
	for (j in names) res[names[j]] = 1
}

function prob(ln, msg) { print file ":" ln ": " msg; bad = 1 }
function q1(s) { return "\"" s "\"" }
function isnum(s) { return s ~ /^[0-9]+$/ }
function isint(s) { return s ~ /^[-+]?[0-9]+$/ }
function issig(s) { sub(/^SIG/, "", s); return (s in sig) }
function vcmp(a, b,    x, y, i, na, nb) {
	na = split(a, x, "."); nb = split(b, y, ".")
	for (i = 1; i <= na || i <= nb; i++)
		if (x[i] + 0 != y[i] + 0) return (x[i] + 0 > y[i] + 0) ? 1 : -1
	return 0
}
# need VERSION WHAT LINE: WHAT came with upstart VERSION
function need(ver, what, ln) {
	if (vcmp(ver, maxv) > 0)
		prob(ln, q1(what) " needs upstart " ver " or later (checking for upstart " maxv ")")
}
# once WHAT LINE: WHAT is a stanza of which upstart keeps only the last
function once(slot, ln) {
	if (slot in seen)
		prob(ln, slot " given again (first at line " seen[slot] "): upstart keeps only the last")
	else
		seen[slot] = ln
}
# args K MIN MAX: K words name the stanza, MIN to MAX arguments follow
function args(k, min, max,    w, i) {
	w = tv[1]
	for (i = 2; i <= k; i++) w = w " " tv[i]
	if (n - k < min) { prob(tl[1], w " needs " (min == 1 ? "an argument" : min " arguments")); return 0 }
	if (n - k > max) {
		prob(tl[max + k + 1], w ": unexpected " q1(tv[max + k + 1]) \
			(max == 1 ? " (one argument: quote it if it holds blanks)" : ""))
		return 0
	}
	return 1
}

# Tokens, the way libnih splits them: blanks separate; double and single
# quotes quote, and may span lines; a backslash escapes the next
# character, and at the end of a line continues the stanza (taken as a
# blank between tokens, which is what it is in practice); # starts a
# comment outside quotes, even inside a word.  In "start on"/"stop on",
# ( and ) are tokens of their own.  tv: the token without quotes, tr: as
# written (upstart takes a quoted "and" as an event, not an operator),
# tl: its line.
function add(c, ln) { if (!intok) { intok = 1; tline = ln }; cur = cur c; raw = raw c }
function endtok() {
	if (!intok) return
	n++; tv[n] = cur; tr[n] = raw; tl[n] = tline
	cur = raw = ""; intok = 0
	if (pdelim) { if (tr[n] == "(") depth++; else if (tr[n] == ")") depth-- }
	if (n == 2 && (tv[1] == "start" || tv[1] == "stop") && tv[2] == "on") pdelim = 1
}
function scan(s, ln,    i, c, L, before, wasp) {
	before = n; wasp = contp
	cont = contp = 0
	if (q != "") { cur = cur " "; raw = raw " " }
	L = length(s)
	for (i = 1; i <= L; i++) {
		c = substr(s, i, 1)
		if (esc) { esc = 0; add(c, ln); continue }
		if (c == "\\") {
			if (i == L) { cont = 1; bsline = ln; break }
			esc = 1; if (!intok) { intok = 1; tline = ln }; raw = raw c; continue
		}
		if (q != "") { if (c == q) q = ""; else cur = cur c; raw = raw c; continue }
		if (c == "\"" || c == "\047") {
			q = c; qline = ln
			if (!intok) { intok = 1; tline = ln }
			raw = raw c; continue
		}
		if (c == "#") break
		if (c == " " || c == "\t") { endtok(); continue }
		if (pdelim && (c == "(" || c == ")")) { endtok(); add(c, ln); endtok(); continue }
		add(c, ln)
	}
	if (q != "") { cont = 1; return }
	endtok()
	if (cont) return
	if (pdelim && depth > 0) cont = contp = 1
	# upstart 0.6 wants a token on each line of an open "(" (parse_on):
	# a blank or comment-only line there is "Expected token"
	if (wasp && n == before)
		prob(ln, "blank or comment-only line inside the \"(\" of " q1(tv[1] " on") ": upstart stops there (expected token)")
}

# The event expression of start on / stop on, from token K: events with
# their arguments (positional ones first, then KEY=VALUE, as upstart
# wants), "and", "or", parentheses.  st: E expecting an event or "(",
# A after an event or one of its arguments, C after ")".
function expr(k,    i, t, st, d, w, kv, open) {
	w = tv[1] " on"
	if (k > n) { prob(tl[1], w ": no event expression"); return }
	st = "E"; d = 0
	for (i = k; i <= n; i++) {
		t = tr[i]
		if (t == "(") {
			if (st != "E") { prob(tl[i], w ": \"(\" after " (st == "A" ? "an event" : "\")\"") ": missing \"and\" or \"or\""); return }
			open[++d] = tl[i]
		} else if (t == ")") {
			if (d == 0) { prob(tl[i], w ": \")\" without \"(\""); return }
			if (st == "E") {
				prob(tl[i], w ": " (tr[i - 1] == "(" ? "empty parentheses" : q1(tr[i - 1]) " with no event after it"))
				return
			}
			d--; st = "C"
		} else if (t == "and" || t == "or") {
			if (st == "E") { prob(tl[i], w ": " q1(t) " with no event before it"); return }
			st = "E"
		} else if (st == "E") {
			st = "A"; kv = 0
		} else if (st == "A") {
			if (index(tv[i], "=")) kv = 1
			else if (kv) { prob(tl[i], w ": positional argument " q1(tv[i]) " after KEY=VALUE ones"); return }
		} else {
			prob(tl[i], w ": " q1(tv[i]) " after \")\": missing \"and\" or \"or\""); return
		}
	}
	if (d > 0) prob(open[d], w ": \"(\" never closed (upstart reads on to the end of the file)")
	else if (st == "E") prob(tl[n], w ": " q1(tr[n]) " with no event after it")
}

function block(what) { inblock = 1; blockline = tl[1]; blockwhat = what }

# Stanzas newer than 0.6.5 need(): manual, debug 0.6.7; kill signal 1.3;
# setuid, setgid, console log, oom score 1.4; usage 1.5; reload signal,
# apparmor 1.10; cgroup 1.13.  From Ubuntu release notes and upstream
# sources; all are sure to be missing from 0.6.5, some may be a release
# older than said here.
function check(    kw, ln, i, s) {
	kw = tv[1]; ln = tl[1]
	if (kw == "description" || kw == "author" || kw == "version" || kw == "instance" ||
	    kw == "chroot" || kw == "chdir" || kw == "setuid" || kw == "setgid" || kw == "usage") {
		if (kw == "setuid" || kw == "setgid") need("1.4", kw, ln)
		if (kw == "usage") need("1.5", kw, ln)
		args(1, 1, 1); once(q1(kw), ln)
	} else if (kw == "env") {
		if (args(1, 1, 1)) {
			s = tv[2]; sub(/=.*/, "", s)
			if (s !~ /^[A-Za-z_][A-Za-z0-9_]*$/) prob(ln, "env: " q1(s) " is not a variable name")
			else once(q1("env " s), ln)
		}
	} else if (kw == "export" || kw == "emits") {
		args(1, 1, 1000000)
	} else if (kw == "start" || kw == "stop") {
		if (tv[2] != "on") prob(ln, q1(kw) " must be followed by \"on\"")
		else { once(q1(kw " on"), ln); expr(3) }
	} else if (kw == "exec") {
		if (n < 2) prob(ln, "exec needs a command")
		once("main process (exec or script)", ln); mainl = ln
	} else if (kw == "script") {
		args(1, 0, 0); once("main process (exec or script)", ln); mainl = ln; block("script")
	} else if (kw == "pre-start" || kw == "post-start" || kw == "pre-stop" || kw == "post-stop") {
		once(q1(kw), ln)
		if (tv[2] == "exec") { if (n < 3) prob(ln, kw " exec needs a command") }
		else if (tv[2] == "script") { args(2, 0, 0); block(kw " script") }
		else prob(ln, kw " must be followed by \"exec\" or \"script\"" (n > 1 ? ", not " q1(tv[2]) : ""))
	} else if (kw == "expect") {
		if (args(1, 1, 1) && tv[2] !~ /^(fork|daemon|stop|none)$/)
			prob(ln, "expect: " q1(tv[2]) " is not one of fork, daemon, stop, none")
		once(q1(kw), ln); expectl = ln
	} else if (kw == "task" || kw == "manual" || kw == "debug") {
		if (kw != "task") need("0.6.7", kw, ln)
		args(1, 0, 0)
	} else if (kw == "respawn") {
		if (n == 1) { respawnl = ln; return }
		if (tv[2] != "limit") { prob(ln, "respawn takes nothing or \"limit COUNT INTERVAL\", not " q1(tv[2])); return }
		once(q1("respawn limit"), ln)
		if (tv[3] == "unlimited") { args(2, 1, 1); return }
		if (n < 4) { prob(ln, "respawn limit needs COUNT and INTERVAL (or \"unlimited\")"); return }
		if (!isnum(tv[3])) prob(tl[3], "respawn limit: COUNT " q1(tv[3]) " is not a number (or \"unlimited\")")
		else if (!isnum(tv[4])) prob(tl[4], "respawn limit: INTERVAL " q1(tv[4]) " is not a number of seconds")
		else args(2, 2, 2)
	} else if (kw == "kill" && tv[2] == "timeout") {
		once(q1("kill timeout"), ln)
		if (args(2, 1, 1) && !isnum(tv[3])) prob(tl[3], "kill timeout: " q1(tv[3]) " is not a number of seconds")
	} else if ((kw == "kill" || kw == "reload") && tv[2] == "signal") {
		need(kw == "kill" ? "1.3" : "1.10", kw " signal", ln); once(q1(kw " signal"), ln)
		if (args(2, 1, 1) && !issig(tv[3]) && !isnum(tv[3])) prob(tl[3], kw " signal: " q1(tv[3]) " is not a signal")
	} else if (kw == "kill") {
		prob(ln, "kill must be followed by \"timeout\"" (vcmp("1.3", maxv) > 0 ? "" : " or \"signal\""))
	} else if (kw == "normal") {
		if (tv[2] != "exit") prob(ln, "normal must be followed by \"exit\"")
		else if (args(2, 1, 1000000))
			for (i = 3; i <= n; i++)
				if (!issig(tv[i]) && !(isnum(tv[i]) && tv[i] + 0 <= 2147483647))
					prob(tl[i], "normal exit: " q1(tv[i]) " is neither an exit status nor a signal name")
	} else if (kw == "console") {
		once(q1(kw), ln)
		if (!args(1, 1, 1)) return
		if (tv[2] == "log") need("1.4", "console log", ln)
		else if (tv[2] !~ /^(output|owner|none)$/)
			prob(ln, "console: " q1(tv[2]) " is not one of output, owner, none, log")
	} else if (kw == "umask") {
		once(q1(kw), ln)
		s = tv[2]; sub(/^0+/, "", s)
		if (args(1, 1, 1) && !(tv[2] ~ /^[0-7]+$/ && length(s) <= 3))
			prob(ln, "umask: " q1(tv[2]) " is not an octal mask (0 to 777)")
	} else if (kw == "nice") {
		once(q1(kw), ln)
		if (args(1, 1, 1) && !(isint(tv[2]) && tv[2] + 0 >= -20 && tv[2] + 0 <= 19))
			prob(ln, "nice: " q1(tv[2]) " is not a number from -20 to 19")
	} else if (kw == "oom") {
		once(q1(kw), ln)
		if (tv[2] == "score") {
			need("1.4", "oom score", ln)
			if (args(2, 1, 1) && tv[3] != "never" && !(isint(tv[3]) && tv[3] + 0 >= -1000 && tv[3] + 0 <= 1000))
				prob(ln, "oom score: " q1(tv[3]) " is not \"never\" or a number from -1000 to 1000")
		} else if (args(1, 1, 1) && tv[2] != "never" && !(isint(tv[2]) && tv[2] + 0 >= -17 && tv[2] + 0 <= 15))
			prob(ln, "oom: " q1(tv[2]) " is not \"never\" or a number from -17 to 15")
	} else if (kw == "limit") {
		if (!(tv[2] in res)) { prob(ln, "limit: " q1(tv[2]) " is not a resource (nofile, core, nproc, ...)"); return }
		once(q1("limit " tv[2]), ln)
		if (!args(2, 2, 2)) return
		for (i = 3; i <= 4; i++)
			if (tv[i] != "unlimited" && !isnum(tv[i]))
				prob(tl[i], "limit " tv[2] ": " q1(tv[i]) " is not a number or \"unlimited\"")
	} else if (kw == "apparmor") {
		need("1.10", kw, ln); once(q1(kw), ln)
		if (tv[2] != "load" && tv[2] != "switch") prob(ln, "apparmor must be followed by \"load\" or \"switch\"")
		else args(2, 1, 1)
	} else if (kw == "cgroup") {
		need("1.13", kw, ln); args(1, 1, 1000000)
	} else if (kw == "service") {
		prob(ln, "unknown stanza \"service\" (gone since upstart 0.5: a job is a service unless it says \"task\")")
	} else {
		prob(ln, "unknown stanza " q1(kw) (kw == "end" ? " (no script block open)" : ""))
		# "prestart script" and the like: skip its block, not one problem a line
		if (kw != "end" && tv[n] == "script") block(kw)
	}
}

function stanza(    i) {
	if (n) check()
	for (i = 1; i <= n; i++) tv[i] = tr[i] = ""	# check() looks past n
	n = 0; pdelim = 0; depth = 0
}

{
	sub(/\r$/, "")
	if (inblock) {
		if ($0 ~ /^[ \t]*end[ \t]+script[ \t]*(#.*)?$/) inblock = 0
		next
	}
	scan($0, NR)
	if (!cont) stanza()
}

END {
	if (inblock) prob(blockline, q1(blockwhat) " without \"end script\": upstart reads to the end of the file and rejects the job")
	else if (q != "") prob(qline, "quote never closed (upstart reads to the end of the file)")
	else if (cont && !contp) prob(bsline, "backslash at the end of the file")
	else stanza()
	if (!mainl && respawnl) prob(respawnl, "respawn but no exec or script: no main process to respawn")
	if (!mainl && expectl) prob(expectl, "expect but no exec or script: no main process to follow")
	exit (bad ? 1 : 0)
}
'

rc=0
for f; do
	UC_FILE=$f UC_MAX=$MAXV ${AWK:-awk} "$PROG" < "$f"
	st=$?
	[ $st -le 1 ] || exit 2
	[ $st -eq 0 ] || rc=1
done
exit $rc
