#!/bin/sh
#
# tests/fuzz/gen-corpus.sh: writes the seed corpus, tests/fuzz/corpus/NAME/,
# byte-exact: valid frames and messages of every kind, netstrings, shlex
# strings with quotes and escapes, and for the link and daemon harnesses
# short scenarios in their input language (see link_fuzzer.c and
# daemon_fuzzer.c).  The output is committed; run it again after changing
# a harness's input language, and commit what changed.
#
# Usage: sh tests/fuzz/gen-corpus.sh [DIR]   (default tests/fuzz/corpus)

LC_ALL=C
export LC_ALL
cd "$(dirname "$0")" || exit 1
C=${1:-corpus}
rm -rf "$C/frame" "$C/msg" "$C/shlex" "$C/link" "$C/daemon"
mkdir -p "$C/frame" "$C/msg" "$C/shlex" "$C/link" "$C/daemon"

byte() { printf "\\$(printf %03o "$1")"; }
u16() { byte $(($1 & 255)); byte $(($1 >> 8 & 255)); }
frame() { printf '%s\n%s' "${#1}" "$1"; }

N1=0123456789abcdef
N2=fedcba9876543210
HELLO="hello 1 $N1"
SYNC="sync 1 $N2 $N1"

# ---- frame: frame_parse, sync_scan ----------------------------------------------------
f=$C/frame
frame "$HELLO" > "$f/hello"
frame "$SYNC" > "$f/sync"
frame "exec 1 0:,9:echo-args,1:a," > "$f/exec"
frame "in 1 some stdin" > "$f/in"
frame "out 7 [a]" > "$f/out"
frame "ack 1 4" > "$f/ack"
frame "exit 1 status 0" > "$f/exit"
frame "fail 1 127 command not found: x" > "$f/fail"
{ frame "eof 1"; frame "cancel 2"; frame ping; frame pong; } > "$f/several"
{ printf 'garbage 12 34\n99'; frame "$HELLO"; frame "exec 2 0:,4:true,"; } > "$f/garbage-hello"
{ printf '1'; frame "$SYNC"; } > "$f/digit-then-sync"
printf '65536\nout 1 ' > "$f/count-at-cap"
printf '65537\nout 1 ' > "$f/count-over-cap"
printf '0\n' > "$f/zero"
printf '05\nhello' > "$f/leading-zero"
printf '24\nhello 1 0123' > "$f/hello-cut"

# ---- msg: msg_parse (first byte even), netstring_get (odd) ---------------------------
f=$C/msg
m() { n=$1; shift; { byte 0; printf '%s' "$*"; } > "$f/$n"; }
m hello "$HELLO"
m sync "$SYNC"
m ping ping
m pong pong
m exec "exec 1 3:vm1,9:echo-args,1:a,0:,"
m list "list 2 3:vm1,"
m guests "guests 3"
m in "in 4 data with spaces"
m eof "eof 4"
m out "out 5 [a]"
m err "err 5 oops"
m ack "ack 5 4294967295"
m exit "exit 5 status 255"
m exit-signal "exit 6 signal 9"
m fail "fail 7 125 no agent answered"
m cancel "cancel 4294967295"
m error "error duplicate call id 1"
ns() { n=$1; shift; { byte 1; printf '%s' "$*"; } > "$f/$n"; }
ns netstrings "3:vm1,9:echo-args,1:a,0:,"
ns netstring-empty "0:,"
ns netstring-binary "5:a,b:c,1:,,"
ns netstring-cut "10:abc"

# ---- shlex: shlex_split -----------------------------------------------------------------
f=$C/shlex
printf '%s' 'echo-args a "b c" '"'d  e'"' f\ g ""' > "$f/mixed"
printf '%s' 'cmd "a \"quoted\" \\ b" c' > "$f/double-escapes"
printf '%s' "cmd 'it'\\''s' x" > "$f/single-quote-in-word"
printf 'cmd\ta\nb\r c' > "$f/whitespace"
printf '%s' 'cmd "unclosed' > "$f/unclosed"
printf '%s' 'cmd trailing\' > "$f/trailing-backslash"
printf '%s' "''" > "$f/empty-word"
printf '%s' 'a"b"c'"'d'"'e\\f' > "$f/glued"

# ---- link: link_fuzzer's language -------------------------------------------------------
# config byte: kind (0 channel, 1 control, 2 client) | 4 serves | 8 calls | 0x80 wrap
f=$C/link
lraw() { byte 0; u16 ${#1}; printf '%s' "$1"; }
lframe() { byte 1; u16 ${#1}; printf '%s' "$1"; }
lclock() { byte 2; u16 "$1"; }
lround() { byte 3; }
{ byte 4; lframe "$HELLO"; lround; lframe "exec 1 0:,4:echo,1:a,"; lframe "in 1 data"
  lframe "eof 1"; lframe "ack 1 4"; lround; lclock 400; lround; lclock 2000; lround; } > "$f/channel-serves"
{ byte 1; lframe "$HELLO"; lframe "exec 1 3:vm1,4:echo,"; lround; lraw "junk"; lround; } > "$f/control-garbage"
{ byte 10; lround; lframe "$SYNC"; lframe "out 1 [a]"; lframe "err 1 e"; lframe "exit 1 status 3"
  lround; lclock 1000; lround; } > "$f/client"
{ byte 132; lraw "xx123"; lframe "$HELLO"; lround; lraw "99"; lround; lclock 700; lround
  lclock 700; lround; lframe "$HELLO"; lround; } > "$f/wrap-stall-resync"
{ byte 12; lframe "$HELLO"; lframe "list 1 0:,"; lframe "ping"; lround; lframe "hello 1 $N2"
  lround; byte 4; lround; } > "$f/new-peer-then-eof"

# ---- daemon: daemon_fuzzer's language ---------------------------------------------------
# sides: 0, 1 clients; 2 the channel served; 3 the channel calls are relayed over
f=$C/daemon
hello() { byte 13; byte "$1"; byte "${2:-0}"; }          # SIDE NONCE
sync() { byte 14; byte "$1"; byte "${2:-1}"; }           # SIDE NONCE
rounds() { byte 5; byte 0; byte "$(($1 - 1))"; }         # N
clock() { byte 4; byte $(($1 / 8 & 3)); byte $(($1 / 32)); }  # MS (< 8192)
# request SIDE TYPE(0 exec 1 list 2 guests) ID CMD [ARG...]: CMD = command
# index (0 true 1 echo 2 exit3 3 killed 4 cat 5 sink 6 big 7 hang 8 noexec
# 9 nofork 10 plain 11 missing) + 32 * target (0 vm1 1 "" 2 vm2; channels:
# + 128 for a non-empty target); each ARG is a number / 10
request() {
	s=$1 t=$2 id=$3 cmd=$4
	shift 4
	byte 15; byte "$s"; byte "$t"; byte "$id"; byte "$cmd"; byte $#
	for a in "$@"; do u16 "$a"; done
}
# data SIDE WORD(0 in 1 out 2 err 3 ack 4 eof 5 cancel 6 exit 7 fail) ID N/2 FILL
data() { byte 2; byte "$1"; byte "$2"; byte "$3"; u16 "$4"; byte "$5"; }
dframe() { byte 1; byte "$1"; u16 ${#2}; printf '%s' "$2"; }
draw() { byte 0; byte "$1"; u16 ${#2}; printf '%s' "$2"; }
{ byte 0; hello 0; hello 3 1; rounds 2; request 0 0 1 1 7; rounds 3
  data 3 1 1 3 97; data 3 6 1 0 0; rounds 3; data 0 3 1 0 4; rounds 2; } > "$f/relay-echo"
{ byte 0; hello 2; rounds 1; request 2 0 5 4; data 2 0 5 10 120; data 2 4 5 0 0; rounds 4
  data 2 3 5 0 10; rounds 3; } > "$f/served-cat"
{ byte 0; hello 2; rounds 1; request 2 0 1 0; request 2 0 2 2; request 2 0 3 3; request 2 0 4 8
  request 2 0 5 9; request 2 0 6 10; request 2 0 7 11; request 2 0 8 128; request 2 1 9 0
  request 2 2 10 0; request 2 0 1 0; rounds 4; } > "$f/served-each-command"
{ byte 0; hello 1; rounds 1; request 1 1 1 0; request 1 2 2 0; request 1 0 3 64; request 1 0 4 32
  rounds 4; } > "$f/client-list-guests-unknown"
{ byte 0; hello 0; request 0 0 1 7; rounds 2; clock 7000; rounds 2; } > "$f/queued-expires"
{ byte 0; hello 0; request 0 0 1 7; rounds 2; byte 8; byte 3; rounds 2; } > "$f/queued-channel-dropped"
{ byte 0; hello 0; hello 3; request 0 0 1 7; rounds 2; data 0 0 1 100 120; data 0 5 1 0 0
  rounds 3; } > "$f/relay-in-cancel"
{ byte 0; hello 0; sync 3; request 0 0 1 6 2000; rounds 2; data 3 1 1 16000 98; byte 3; byte 3; u16 20
  rounds 8; data 0 3 1 60000 0; rounds 4; } > "$f/relay-big-output"
{ byte 0; hello 2; request 2 0 1 6 5000; rounds 8; data 2 3 1 2000 0; rounds 8; } > "$f/served-big"
{ byte 0; hello 0; hello 3; request 0 0 1 7; rounds 2; draw 3 "12 garbage"; rounds 2; hello 3 2
  rounds 2; } > "$f/relay-garbage-resync"
{ byte 0; hello 0; hello 3; request 0 0 1 7; rounds 2; byte 7; byte 3; rounds 1; clock 1100
  rounds 2; hello 3 3; request 0 0 2 1; rounds 3; } > "$f/channel-lost-reconnect"
{ byte 0; hello 2; request 2 0 1 7; request 2 0 2 4; rounds 2; byte 11; byte 0; byte 0; u16 300; byte 65
  byte 0; byte 11; byte 1; byte 0; u16 10; byte 66; byte 1; byte 12; byte 0; byte 0; rounds 3; clock 3100
  rounds 1; clock 6100; clock 6100; rounds 2; } > "$f/kids-output-ping-dead"
{ byte 128; hello 0; hello 3; request 0 0 1 7; rounds 2; clock 3000; rounds 1; clock 6000
  clock 6500; rounds 2; } > "$f/wrap-keepalive"
{ byte 0; dframe 0 "$HELLO"; dframe 0 "exec 1 3:vm1,4:echo,1:a,"; dframe 0 "exec 1 3:vm1,4:echo,"
  hello 3; rounds 2; dframe 0 "in 9 x"; dframe 0 "ack 7 1"; dframe 0 "cancel 3"; rounds 2
  draw 1 "junk"; rounds 2; byte 10; byte 1; hello 1; rounds 1; } > "$f/duplicate-unknown-garbage"
# long requests: a channel whose ids have grown to 5 digits (config bits 5-6)
request_big() { byte 15; byte "$1"; byte "$2"; byte "$3"; byte "$4"; byte 130; u16 "$5"; }
{ byte 96; hello 0; hello 3; i=1; while [ $i -le 12 ]; do request 0 0 $i 7; i=$((i + 1)); done
  rounds 2; dframe 3 "exit 3999999990 status 0"; dframe 3 "out 1 wrapped"; dframe 3 "exit 1 status 0"
  rounds 3; } > "$f/ids-wrap"

# The relay bugs F1-F3 fixed on main, as regressions: F1, a cancel that
# overflows a queued call's pending buffer (16 'in' frames fill the 1 MiB
# window, 58231 acks all but 4 bytes of the rest); F2, 'out' relayed to a
# client whose id is 9 digits longer; F3, a queued exec that the id rewrite
# makes longer than a frame may be.
{ byte 0; hello 0; request 0 0 1 7; rounds 1; data 0 0 1 32765 120; byte 3; byte 0; u16 15
  data 0 0 1 48 120; data 0 3 1 0 5; i=0; while [ $i -lt 14 ]; do byte 3; byte 0; u16 4096; i=$((i + 1)); done
  byte 3; byte 0; u16 886; data 0 5 1 0 0; rounds 8; } > "$f/f1-cancel-overflows-pending"
{ byte 0; hello 0; hello 3; request 0 0 255 7; rounds 2; data 3 1 1 32765 97; rounds 4; } > "$f/f2-out-relayed-grows"
{ byte 64; hello 0; request_big 0 0 1 7 65509; rounds 2; hello 3; rounds 3; } > "$f/f3-queued-exec-too-long"
echo "seeds written to $C: $(find "$C" -type f | wc -l) files"
