/*
 * tests/unit.c: unit tests for the pure parts: framing, the message parser
 * on truncated, oversized and garbage input, resynchronisation, netstrings,
 * shlex splitting, name validation, option parsing, the log file, the
 * bounded buffer, the per-guest policy's parser and matcher, the timer
 * heap and both event-loop backends;
 * and each compat/ fallback, run directly whatever the probe found, with
 * the implementation each shim really used (COMPAT=all: every fallback).
 *
 * Prints "ok - ..." / "not ok - ..." per assertion and a last line
 * "N passed, N failed"; exits 1 on any failure.
 */
#include "negotiator.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int passed, failed;

static void
check(int cond, const char *what)
{
	if (cond) {
		passed++;
		printf("ok - %s\n", what);
	} else {
		failed++;
		printf("not ok - %s\n", what);
	}
}

static int
frame(const char *s, size_t len, const char **payload, size_t *plen, size_t *used)
{
	const unsigned char *p;
	int rc = frame_parse((const unsigned char *)s, len, &p, plen, used);

	*payload = (const char *)p;
	return rc;
}

static void
test_framing(void)
{
	const char *p;
	size_t plen = 0, used = 0;
	char big[32];

	check(frame("5\nhello", 7, &p, &plen, &used) == FRAME_OK && plen == 5 &&
	      used == 7 && memcmp(p, "hello", 5) == 0, "frame: complete frame");
	check(frame("5\nhel", 5, &p, &plen, &used) == FRAME_MORE, "frame: truncated payload waits");
	check(frame("12", 2, &p, &plen, &used) == FRAME_MORE, "frame: truncated count waits");
	check(frame("", 0, &p, &plen, &used) == FRAME_MORE, "frame: empty input waits");
	check(frame("x\nabc", 5, &p, &plen, &used) == FRAME_BAD, "frame: non-digit count is garbage");
	check(frame("\nabc", 4, &p, &plen, &used) == FRAME_BAD, "frame: missing count is garbage");
	check(frame("05\nhello", 8, &p, &plen, &used) == FRAME_BAD, "frame: leading zero refused");
	check(frame("0\n", 2, &p, &plen, &used) == FRAME_BAD, "frame: empty payload refused");
	check(frame("5 \nhello", 8, &p, &plen, &used) == FRAME_BAD, "frame: junk after count");
	sprintf(big, "%lu\n", MAX_PAYLOAD + 1);
	check(frame(big, strlen(big), &p, &plen, &used) == FRAME_BAD,
	      "frame: count over the cap refused before waiting for the payload");
	sprintf(big, "%lu\n", MAX_PAYLOAD);
	check(frame(big, strlen(big), &p, &plen, &used) == FRAME_MORE, "frame: count at the cap accepted");
	check(frame("1234567", 7, &p, &plen, &used) == FRAME_BAD, "frame: too many digits refused early");
	check(frame("3\nabc4\nwxyz", 11, &p, &plen, &used) == FRAME_OK && used == 5,
	      "frame: only the first frame is consumed");
}

static int
parse(const char *s, struct msg *m)
{
	const char *why;

	return msg_parse((const unsigned char *)s, strlen(s), m, &why);
}

static void
test_messages(void)
{
	struct msg m;

	check(parse("hello 1 0123456789abcdef", &m) == 0 && m.type == M_HELLO && m.num == 1 &&
	      memcmp(m.word1, "0123456789abcdef", 16) == 0, "msg: hello");
	check(parse("hello 1 0123456789abcde", &m) < 0, "msg: short nonce refused");
	check(parse("hello 1 0123456789ABCDEF", &m) < 0, "msg: uppercase nonce refused");
	check(parse("hello 1 0123456789abcdef x", &m) < 0, "msg: trailing junk refused");
	check(parse("sync 1 0123456789abcdef fedcba9876543210", &m) == 0 && m.type == M_SYNC &&
	      memcmp(m.word2, "fedcba9876543210", 16) == 0, "msg: sync");
	check(parse("ping", &m) == 0 && m.type == M_PING, "msg: ping");
	check(parse("ping 3", &m) < 0, "msg: ping with junk refused");
	check(parse("out 7 \001\002\n", &m) == 0 && m.type == M_OUT && m.id == 7 && m.datalen == 3,
	      "msg: out carries binary data");
	check(parse("out 7 ", &m) == 0 && m.datalen == 0, "msg: empty out");
	check(parse("out 7", &m) < 0, "msg: out without separator refused");
	check(parse("out 0 x", &m) < 0, "msg: call id 0 refused");
	check(parse("out 4294967295 x", &m) == 0 && m.id == 4294967295UL, "msg: largest id");
	check(parse("out 4294967296 x", &m) < 0, "msg: id overflow refused");
	check(parse("out 99999999999999999999 x", &m) < 0, "msg: huge id refused");
	check(parse("out 07 x", &m) < 0, "msg: leading zero id refused");
	check(parse("out -7 x", &m) < 0, "msg: negative id refused");
	check(parse("ack 3 4096", &m) == 0 && m.type == M_ACK && m.num == 4096, "msg: ack");
	check(parse("ack 3 0", &m) < 0, "msg: ack of nothing refused");
	check(parse("exit 3 status 0", &m) == 0 && m.type == M_EXIT && !m.signaled && m.num == 0,
	      "msg: exit status");
	check(parse("exit 3 signal 9", &m) == 0 && m.signaled && m.num == 9, "msg: exit signal");
	check(parse("exit 3 signal 0", &m) < 0, "msg: exit by signal 0 refused");
	check(parse("exit 3 signal 128", &m) < 0, "msg: exit by signal 128 refused (128+N > 255)");
	check(parse("fail 3 0 all fine", &m) < 0, "msg: fail with code 0 refused (never a success)");
	check(parse("fail 3 256 x", &m) < 0, "msg: fail with code 256 refused");
	check(parse("exit 3 status 256", &m) < 0, "msg: exit status over 255 refused");
	check(parse("exit 3 died 1", &m) < 0, "msg: unknown exit kind refused");
	check(parse("fail 3 127 command not found: x", &m) == 0 && m.num == 127 &&
	      m.datalen == strlen("command not found: x"), "msg: fail with reason");
	check(parse("eof 3", &m) == 0 && m.type == M_EOF, "msg: eof");
	check(parse("cancel 3", &m) == 0 && m.type == M_CANCEL, "msg: cancel");
	check(parse("frobnicate 3", &m) < 0, "msg: unknown type refused");
	check(parse("", &m) < 0, "msg: empty payload refused");
	check(parse("{\"command\": \"x\"}", &m) < 0, "msg: JSON payload is not ours");
	check(parse("exec  3 x", &m) < 0, "msg: double space refused");
}

static void
test_json_sync_scan(void)
{
	const char *probe = "23\n{\"method\": \"x\", \"k\": 1}";
	char buf[256];
	int found;
	size_t off;

	off = json_sync_scan((const unsigned char *)probe, strlen(probe), 1, &found);
	check(found && off == 0, "json sync: a JSON frame at the start");
	/* the tail of an ack cut short runs into the count of the next frame */
	sprintf(buf, "ack 1 32768%s", probe);
	off = json_sync_scan((const unsigned char *)buf, strlen(buf), 1, &found);
	check(found && off == 11, "json sync: found where a cut frame's digits run into its count");
	sprintf(buf, "ack 1 32768%.*s", 20, probe);
	off = json_sync_scan((const unsigned char *)buf, strlen(buf), 1, &found);
	check(!found && off == 9, "json sync: incomplete: kept from the first count that fits");
	sprintf(buf, "0\n{}  5\nabcde 99999\n{\"a\": %s", probe);
	off = json_sync_scan((const unsigned char *)buf, strlen(buf), 1, &found);
	check(found && off == strlen(buf) - strlen(probe),
	      "json sync: no zero count, no frame without {, no oversized candidate");
	strcpy(buf, "12\n{\"a\": 1, \"b\"");
	off = json_sync_scan((const unsigned char *)buf, 10, 1, &found);
	check(!found && off == 0, "json sync: a frame still arriving is kept");
	strcpy(buf, "6\n{\"a\"x  more");
	off = json_sync_scan((const unsigned char *)buf, strlen(buf), 1, &found);
	check(!found && off == strlen(buf), "json sync: a complete frame that does not end in } is none");
	/* an oversized count followed by {: python's request where the stream
	 * starts, nothing mid-stream (after skipped bytes) */
	strcpy(buf, "279808106\n{\"x");
	off = json_sync_scan((const unsigned char *)buf, strlen(buf), 1, &found);
	check(found && off == 0, "json sync: an oversized request where the stream starts");
	off = json_sync_scan((const unsigned char *)buf, strlen(buf), 0, &found);
	check(!found, "json sync: ... but no such request mid-stream");
}

static void
test_sync_scan(void)
{
	const char *hello = "24\nhello 1 0123456789abcdef";
	char buf[256];
	int found;
	size_t off;

	off = sync_scan((const unsigned char *)hello, strlen(hello), &found);
	check(found && off == 0, "sync: hello at the start");
	sprintf(buf, "xx\n99\nout 1 junk123%s", hello);
	off = sync_scan((const unsigned char *)buf, strlen(buf), &found);
	check(found && off == strlen(buf) - strlen(hello), "sync: hello after garbage and digits");
	sprintf(buf, "garbage 5\nout 1 %s", hello);
	off = sync_scan((const unsigned char *)buf, strlen(buf), &found);
	check(found && off == strlen(buf) - strlen(hello), "sync: ordinary frames are skipped");
	off = sync_scan((const unsigned char *)hello, 10, &found);
	check(!found && off == 0, "sync: incomplete hello is kept");
	strcpy(buf, "junk junk 12");
	off = sync_scan((const unsigned char *)buf, strlen(buf), &found);
	check(!found && off == strlen(buf) - 2, "sync: trailing digits kept as a possible count");
	strcpy(buf, "60000\nhello 1 x");
	off = sync_scan((const unsigned char *)buf, strlen(buf), &found);
	check(!found && off == strlen(buf), "sync: oversized hello candidate dropped");
	test_json_sync_scan();
}

static void
test_netstrings(void)
{
	struct buf b;
	const unsigned char *p, *end, *s;
	size_t n;
	const char *bad[] = { "3:ab,", "3:abcd", "x:a,", "03:abc,", "3abc,", "999999:a," };
	int i, ok = 1;

	buf_init(&b, 1024);
	netstring_put(&b, "ls", 2);
	netstring_put(&b, "", 0);
	netstring_put(&b, "a,b:c", 5);
	check(buf_len(&b) == strlen("2:ls,0:,5:a,b:c,") &&
	      memcmp(buf_ptr(&b), "2:ls,0:,5:a,b:c,", buf_len(&b)) == 0, "netstring: encode");
	p = buf_ptr(&b);
	end = p + buf_len(&b);
	check(netstring_get(&p, end, &s, &n) == 0 && n == 2 && memcmp(s, "ls", 2) == 0 &&
	      netstring_get(&p, end, &s, &n) == 0 && n == 0 &&
	      netstring_get(&p, end, &s, &n) == 0 && n == 5 &&
	      netstring_get(&p, end, &s, &n) == 1, "netstring: decode round trip");
	for (i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
		p = (const unsigned char *)bad[i];
		if (netstring_get(&p, p + strlen(bad[i]), &s, &n) != -1)
			ok = 0;
	}
	check(ok, "netstring: malformed and truncated input refused");
	buf_free(&b);
}

static int
split_is(const char *line, const char *const *want)
{
	const char *err;
	char **argv = shlex_split(line, &err);
	int i, ok = 1;

	if (!argv)
		return 0;
	for (i = 0; want[i] || argv[i]; i++)
		if (!want[i] || !argv[i] || strcmp(want[i], argv[i]) != 0) {
			ok = 0;
			break;
		}
	free_argv(argv);
	return ok;
}

static int
split_fails(const char *line)
{
	const char *err = NULL;
	char **argv = shlex_split(line, &err);

	free_argv(argv);
	return argv == NULL && err != NULL;
}

static void
test_shlex(void)
{
	static const char *const w1[] = { "ls", "-l", "/tmp", NULL };
	static const char *const w2[] = { "echo", "a b", "c d", NULL };
	static const char *const w3[] = { "echo", "it's", NULL };
	static const char *const w4[] = { "echo", "a\"b", "\\n", "x\\y", NULL };
	static const char *const w5[] = { "echo", "", "x", NULL };
	static const char *const w6[] = { "echo", "$HOME", "*", ";", "|", NULL };
	static const char *const w7[] = { "a", "b c", NULL };
	static const char *const w8[] = { "ab'c d'e", NULL };

	check(split_is("ls -l /tmp", w1), "shlex: plain words");
	check(split_is("  ls\t -l\n/tmp  ", w1), "shlex: any whitespace separates");
	check(split_is("echo 'a b' \"c d\"", w2), "shlex: single and double quotes");
	check(split_is("echo it\\'s", w3), "shlex: backslash escapes outside quotes");
	check(split_is("echo \"a\\\"b\" '\\n' \"x\\y\"", w4),
	      "shlex: escapes in double quotes only before \" and \\");
	check(split_is("echo '' x", w5), "shlex: empty quoted word kept");
	check(split_is("echo $HOME * ; |", w6), "shlex: no expansion, no operators");
	check(split_is("a b\\ c", w7), "shlex: escaped space joins");
	check(split_is("\"ab'c d'e\"", w8), "shlex: single quotes inside double quotes");
	check(split_fails("echo 'abc"), "shlex: unclosed single quote is an error");
	check(split_fails("echo \"abc"), "shlex: unclosed double quote is an error");
	check(split_fails("echo abc\\"), "shlex: trailing backslash is an error");
	check(split_fails("   "), "shlex: empty command is an error");
}

static void
test_names(void)
{
	char longname[300];

	memset(longname, 'a', sizeof longname);
	check(valid_command_name("find-ip-addresses", 17), "name: normal command");
	check(valid_command_name("a.b_c+d-e9", 10), "name: all allowed characters");
	check(!valid_command_name("../etc/passwd", 13), "name: path refused");
	check(!valid_command_name("a/b", 3), "name: slash refused");
	check(!valid_command_name(".hidden", 7), "name: leading dot refused");
	check(!valid_command_name("-rf", 3), "name: leading dash refused");
	check(!valid_command_name("", 0), "name: empty refused");
	check(!valid_command_name("a b", 3), "name: space refused");
	check(!valid_command_name("a\nb", 3), "name: newline refused");
	check(!valid_command_name("caf\xc3\xa9", 5), "name: non-ASCII refused");
	check(valid_command_name(longname, 255), "name: 255 bytes allowed");
	check(!valid_command_name(longname, 256), "name: 256 bytes refused");
	check(valid_guest_name("web-01.example", 14), "guest name: normal");
	check(!valid_guest_name("a/b", 3) && !valid_guest_name("a b", 3) &&
	      !valid_guest_name("a\033b", 3), "guest name: slash, space, escape refused");
}

static void
test_buffer(void)
{
	struct buf b;
	unsigned char *p;
	int i, ok = 1;

	buf_init(&b, 10);
	check(buf_append(&b, "12345", 5) == 0 && buf_len(&b) == 5, "buf: append");
	check(buf_append(&b, "123456", 6) < 0 && buf_len(&b) == 5, "buf: limit enforced, nothing written");
	buf_consume(&b, 3);
	check(buf_append(&b, "abcdefgh", 8) == 0 && buf_len(&b) == 10 &&
	      memcmp(buf_ptr(&b), "45abcdefgh", 10) == 0, "buf: space reused after consume");
	buf_free(&b);
	buf_init(&b, 1 << 20);
	for (i = 0; i < 1000; i++) {
		p = buf_reserve(&b, 1000);
		if (!p) {
			ok = 0;
			break;
		}
		memset(p, i & 0xff, 1000);
		buf_commit(&b, 1000);
	}
	check(ok && buf_len(&b) == 1000000 && buf_ptr(&b)[999999] == (999 & 0xff), "buf: growth");
	check(buf_reserve(&b, 100000) == NULL, "buf: reserve over the limit fails");
	buf_consume(&b, buf_len(&b));
	check(buf_len(&b) == 0 && b.cap >= 1000000, "buf: emptying keeps the memory (a stream reuses it)");
	buf_trim(&b);
	check(buf_len(&b) == 0 && b.cap == 0, "buf: trim returns a large empty buffer's memory");
	p = buf_reserve(&b, 100);
	buf_commit(&b, 100);
	buf_trim(&b);
	check(p && buf_len(&b) == 100, "buf: trim keeps a buffer that holds data");
	buf_free(&b);
	/* no memory yet: still a pointer (NULL + 0 is undefined), and 0 bytes
	 * from NULL are appended without touching memcpy (make sanitize) */
	buf_init(&b, 10);
	check(buf_ptr(&b) != NULL && buf_len(&b) == 0, "buf: an empty buffer with no memory has a pointer");
	check(buf_append(&b, NULL, 0) == 0 && buf_len(&b) == 0 && b.data == NULL,
	      "buf: appending nothing (from NULL) allocates nothing");
	buf_free(&b);
}

static void
test_escape(void)
{
	char out[64];

	check(strcmp(escape_text(out, sizeof out, "a\033[2Jb\n", 7), "a\\x1b[2Jb\\x0a") == 0,
	      "escape: control characters escaped");
	escape_text(out, 16, "0123456789abcdefghijklmnop", 26);
	check(strlen(out) < 16, "escape: output bounded");
}

/* 500 guest names between options, each option's argument kept */
static void
test_opts_many(const struct opt_spec *specs)
{
	static char names[500][8];
	char *argv[1 + 500 + 4 + 1];
	struct opt_state st;
	const char *cmd = NULL, *t = NULL;
	int i, argc = 0, key, ok = 1;

	argv[argc++] = "prog";
	for (i = 0; i < 500; i++) {
		sprintf(names[i], "vm%d", i);
		argv[argc++] = names[i];
		if (i == 100) {
			argv[argc++] = "-e";
			argv[argc++] = "echo-args x";
		} else if (i == 300) {
			argv[argc++] = "-t";
			argv[argc++] = "3";
		}
	}
	argv[argc] = NULL;
	memset(&st, 0, sizeof st);
	while ((key = opt_next(argc, argv, specs, &st)) != 0)
		if (key == 'e')
			cmd = st.arg;
		else if (key == 't')
			t = st.arg;
	for (i = 0; i < 500 && i < st.noperands; i++)
		ok &= strcmp(st.operands[i], names[i]) == 0;
	check(st.noperands == 500 && ok && cmd && strcmp(cmd, "echo-args x") == 0 && t &&
	      strcmp(t, "3") == 0, "opts: 500 operands among options, in order, arguments kept");
}

static void
test_opts(void)
{
	static const struct opt_spec specs[] = {
		{ "execute", 'e', 1 }, { "verbose", 'v', 0 }, { "timeout", 't', 1 },
		{ "version", 256, 0 }, { NULL, 0, 0 }
	};
	char *argv[] = { "prog", "vm1", "-vv", "--execute=ls -l", "-t5", "--timeout", "7",
	                 "--version", "-e", "x", "--", "-v", NULL };
	struct opt_state st;
	int keys[16], n = 0, key;
	const char *args[16];

	memset(&st, 0, sizeof st);
	while ((key = opt_next(12, argv, specs, &st)) != 0 && n < 16) {
		args[n] = st.arg;
		keys[n++] = key;
	}
	check(n == 7 && keys[0] == 'v' && keys[1] == 'v' && keys[2] == 'e' &&
	      strcmp(args[2], "ls -l") == 0 && keys[3] == 't' && strcmp(args[3], "5") == 0 &&
	      keys[4] == 't' && strcmp(args[4], "7") == 0 && keys[5] == 256 &&
	      keys[6] == 'e' && strcmp(args[6], "x") == 0, "opts: short, bundled, long, =, separate");
	check(st.noperands == 2 && strcmp(st.operands[0], "vm1") == 0 &&
	      strcmp(st.operands[1], "-v") == 0, "opts: operands anywhere, -- ends options");
	test_opts_many(specs);
}

/* ---- the log file (common.c) --------------------------------------------- */

/* "YYYY-MM-DD HH:MM:SS PROG[PID]: REST\n", and nothing after it */
static int
log_line_is(const char *got, const char *prog, long pid, const char *rest)
{
	char want[256];
	int i;

	for (i = 0; i < 19; i++)
		if (i == 4 || i == 7 ? got[i] != '-' : i == 10 ? got[i] != ' ' :
		    i == 13 || i == 16 ? got[i] != ':' : (got[i] < '0' || got[i] > '9'))
			return 0;
	sprintf(want, " %s[%ld]: %s\n", prog, pid, rest);
	return strcmp(got + 19, want) == 0;
}

static int
read_small(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	out[0] = '\0';
	if (!f)
		return -1;
	n = fread(out, 1, len - 1, f);
	out[n] = '\0';
	fclose(f);
	return 0;
}

/* In a child (the file stays open in it): --log-file's lines, their
 * format, errno kept, close-on-exec, mode 0640, reopened by its path
 * after a move (SIGHUP, logrotate); the facility names. */
static void
test_log(void)
{
	char dir[64], path[96], moved[96], got[512];
	struct stat st, fst;
	int status, fd, bits = 0;
	mode_t mask;
	pid_t pid;

	check(log_set_facility("local7") == 0 && log_set_facility("user") == 0 &&
	      log_set_facility("daemon") == 0, "log: facilities daemon, user, local7 known");
	check(log_set_facility("bogus") < 0 && log_set_facility("LOCAL0") < 0 &&
	      log_set_facility("local8") < 0 && log_set_facility("") < 0,
	      "log: facilities bogus, LOCAL0, local8 and \"\" unknown");
	sprintf(dir, "/tmp/negotiator-unit-log-%ld", (long)getpid());
	sprintf(path, "%s/log", dir);
	sprintf(moved, "%s/log.1", dir);
	if (mkdir(dir, 0700) < 0) {
		check(0, "log: a temporary directory");
		return;
	}
	mask = umask(022);
	umask(mask);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		log_level = LOG_LVL_WARN;
		log_open("unit", 0);
		log_set_file(path);
		if (log_start(0) < 0)
			_exit(64);
		errno = EDOM;
		error("first \\x1b line %d", 1);
		bits |= errno == EDOM ? 1 : 0;
		if (stat(path, &st) == 0)
			for (fd = 3; fd < 256; fd++)
				if (fstat(fd, &fst) == 0 && fst.st_ino == st.st_ino &&
				    fst.st_dev == st.st_dev)
					bits |= fcntl(fd, F_GETFD) & FD_CLOEXEC ? 2 : 0;
		if (rename(path, moved) == 0) {
			log_reopen();
			warn("second");
		}
		_exit(bits);
	}
	status = -1;
	if (pid > 0)
		waitpid(pid, &status, 0);
	check(WIFEXITED(status) && (WEXITSTATUS(status) & 1), "log: errno kept across a line");
	check(WIFEXITED(status) && (WEXITSTATUS(status) & 2), "log: the file is close-on-exec");
	read_small(moved, got, sizeof got);
	check(log_line_is(got, "unit", (long)pid, "error: first \\x1b line 1"),
	      "log: \"DATE TIME PROG[PID]: error: LINE\" appended to --log-file");
	check(stat(moved, &st) == 0 && (st.st_mode & 0777) == (0640 & ~mask),
	      "log: the file is created 0640 (less the umask)");
	read_small(path, got, sizeof got);
	check(log_line_is(got, "unit", (long)pid, "warning: second"),
	      "log: reopened by its path after a move, the new file takes the next lines");
	unlink(path);
	unlink(moved);
	rmdir(dir);
}

/* ---- compat/ ------------------------------------------------------------ */

static char tmpdir[64];

/* FD_CLOEXEC and O_NONBLOCK of fd, as CX_ flags; -1 when not open */
static int
fd_cx(int fd)
{
	int fd_fl = fcntl(fd, F_GETFD), fl = fcntl(fd, F_GETFL);

	if (fd_fl < 0 || fl < 0)
		return -1;
	return (fd_fl & FD_CLOEXEC ? CX_CLOEXEC : 0) | (fl & O_NONBLOCK ? CX_NONBLOCK : 0);
}

/* a pair made by f has exactly the flags asked for, on both ends */
static int
pipe_has(int (*f)(int[2], int), int cx)
{
	int fds[2], ok;

	if (f(fds, cx) < 0)
		return 0;
	ok = fd_cx(fds[0]) == cx && fd_cx(fds[1]) == cx;
	close(fds[0]);
	close(fds[1]);
	return ok;
}

static void
test_pipe2(void)
{
	check(pipe_has(pipe2_fallback, CX_CLOEXEC | CX_NONBLOCK) && pipe_has(pipe2_fallback, 0) &&
	      pipe_has(pipe2_fallback, CX_CLOEXEC), "compat: pipe2 fallback sets exactly the flags asked");
	check(pipe_has(compat_pipe2, CX_CLOEXEC | CX_NONBLOCK) && pipe_has(compat_pipe2, CX_CLOEXEC),
	      "compat: pipe2 sets exactly the flags asked");
	printf("# compat: pipe2 used %s\n", compat_used.pipe2);
}

/* a connection accepted by f from a fresh listener has exactly cx */
static int
accept_has(const char *path, int (*f)(int, int), int cx)
{
	int l = unix_listen(path, 0600), c = -1, a = -1, ok = 0;

	if (l >= 0 && (c = unix_connect(path)) >= 0) {
		set_nonblock(l);   /* already is: a failed accept must not hang the tests */
		a = f(l, cx);
		ok = a >= 0 && fd_cx(a) == cx;
	}
	if (a >= 0)
		close(a);
	if (c >= 0)
		close(c);
	if (l >= 0)
		close(l);
	unlink(path);
	return ok;
}

static void
test_accept4(void)
{
	char path[96];

	sprintf(path, "%s/sock", tmpdir);
	check(accept_has(path, accept4_fallback, CX_CLOEXEC | CX_NONBLOCK) &&
	      accept_has(path, accept4_fallback, CX_CLOEXEC),
	      "compat: accept4 fallback sets exactly the flags asked");
	check(accept_has(path, compat_accept4, CX_CLOEXEC | CX_NONBLOCK) &&
	      accept_has(path, compat_accept4, CX_CLOEXEC), "compat: accept4 sets exactly the flags asked");
	printf("# compat: accept4 used %s\n", compat_used.accept4);
}

/* both ends of a connection see us at the other end (or, where the
 * system cannot tell, ENOSYS) */
static void
test_peercred(void)
{
	char path[96];
	int l, c = -1, a = -1, ok = 0, none = 0;
	uid_t u1 = (uid_t)-1, u2 = (uid_t)-1;
	gid_t g1 = (gid_t)-1, g2 = (gid_t)-1;

	sprintf(path, "%s/peer", tmpdir);
	l = unix_listen(path, 0600);
	if (l >= 0 && (c = unix_connect(path)) >= 0 && (a = compat_accept4(l, CX_CLOEXEC)) >= 0) {
		if (compat_peer_ids(c, &u1, &g1) == 0 && compat_peer_ids(a, &u2, &g2) == 0)
			ok = u1 == geteuid() && u2 == geteuid() && g1 == getegid() && g2 == getegid();
		else
			none = errno == ENOSYS;
	}
	if (none)
		check(!HAVE_SO_PEERCRED && !HAVE_GETPEEREID, "compat: no peer credentials: said so");
	else
		check(ok, "compat: peer credentials of both ends of a connection are ours");
	printf("# compat: peer credentials from %s\n", compat_used.peercred);
	if (a >= 0)
		close(a);
	if (c >= 0)
		close(c);
	if (l >= 0)
		close(l);
	unlink(path);
}

/* unix_listen replaces a stale socket of ours, nothing else */
static void
test_listen_owner(void)
{
	char path[96];
	struct stat st;
	int l, ok;

	sprintf(path, "%s/stale", tmpdir);
	l = unix_listen(path, 0600);
	if (l >= 0)
		close(l);
	l = unix_listen(path, 0600);
	check(l >= 0, "unix_listen: a stale socket of ours is replaced");
	if (l >= 0)
		close(l);
	if (geteuid() != 0) {
		printf("# skipped: unix_listen and another user's socket (needs root)\n");
		unlink(path);
		return;
	}
	ok = chown(path, 65534, (gid_t)-1) == 0;
	l = unix_listen(path, 0600);
	ok = ok && l < 0 && errno == EPERM && lstat(path, &st) == 0 && st.st_uid == 65534;
	check(ok, "unix_listen: another user's socket is left alone (EPERM)");
	if (l >= 0)
		close(l);
	unlink(path);
}

static int
socket_has(int (*f)(int, int, int), int cx)
{
	int fd = f(AF_UNIX, SOCK_STREAM, cx), ok = fd >= 0 && fd_cx(fd) == cx;

	if (fd >= 0)
		close(fd);
	return ok;
}

static int
open_has(int (*f)(const char *, int, int), int cx)
{
	int fd = f("/dev/null", O_RDONLY, cx), ok = fd >= 0 && fd_cx(fd) == cx;

	if (fd >= 0)
		close(fd);
	return ok;
}

static void
test_cloexec(void)
{
	check(socket_has(socket_fallback, CX_CLOEXEC) &&
	      socket_has(socket_fallback, CX_CLOEXEC | CX_NONBLOCK),
	      "compat: socket fallback sets exactly the flags asked");
	check(socket_has(compat_socket, CX_CLOEXEC) && socket_has(compat_socket, CX_CLOEXEC | CX_NONBLOCK),
	      "compat: socket sets exactly the flags asked");
	check(open_has(open_fallback, CX_CLOEXEC) && open_has(open_fallback, CX_CLOEXEC | CX_NONBLOCK) &&
	      open_has(open_fallback, 0), "compat: open fallback sets exactly the flags asked");
	check(open_has(compat_open, CX_CLOEXEC) && open_has(compat_open, CX_CLOEXEC | CX_NONBLOCK),
	      "compat: open sets exactly the flags asked");
	printf("# compat: socket used %s, open used %s\n", compat_used.socket, compat_used.open);
}

/* f never goes back over many calls, and moves on with time */
static int
clock_works(unsigned long (*f)(void))
{
	unsigned long first = f(), prev = first, t;
	int i;

	for (i = 0; i < 10000; i++) {
		t = f();
		if ((long)(t - prev) < 0)
			return 0;
		prev = t;
	}
	sleep_ms(30);
	t = f();
	return (long)(t - first) >= 25 && (long)(t - first) < 5000;
}

static void
test_clock(void)
{
	unsigned long a, b, c;

	check(clock_works(clock_fallback_ms), "compat: clock fallback never goes back and advances");
	a = clock_never_back(900000UL);
	b = clock_never_back(900000UL - 5000);
	c = clock_never_back(900000UL - 4990);
	check(b == a && c == a + 10, "compat: a clock set back stalls the fallback, then it moves on");
	check(clock_works(clock_monotonic_ms), "compat: clock never goes back and advances");
	printf("# compat: clock used %s\n", compat_used.clock);
}

static void
test_strlcpy(void)
{
	char d[8];

	memset(d, 'x', sizeof d);
	check(compat_strlcpy(d, "hello world", 6) == 11 && strcmp(d, "hello") == 0 && d[6] == 'x',
	      "compat: strlcpy fallback truncates, terminates and returns the length");
	check(compat_strlcpy(d, "abc", 4) == 3 && strcmp(d, "abc") == 0 &&
	      compat_strlcpy(d, "zz", 0) == 2 && d[0] == 'a', "compat: strlcpy fallback at the edges");
	check(strlcpy(d, "0123456789", sizeof d) == 10 && strcmp(d, "0123456") == 0,
	      "compat: strlcpy truncates");
	printf("# compat: strlcpy used %s\n", HAVE_STRLCPY ? "libc" : "fallback");
}

static int
env_is(const char *name, const char *want)
{
	const char *v = getenv(name);

	return want ? v && strcmp(v, want) == 0 : v == NULL;
}

static void
test_setenv(void)
{
	const char *n = "NEGOTIATOR_UNIT_VAR";

	check(compat_setenv(n, "one", 1) == 0 && env_is(n, "one") &&
	      compat_setenv(n, "two", 0) == 0 && env_is(n, "one") &&
	      compat_setenv(n, "three", 1) == 0 && env_is(n, "three"),
	      "compat: setenv fallback visible through getenv, overwrite honoured");
	check(compat_unsetenv(n) == 0 && env_is(n, NULL), "compat: unsetenv fallback removes it");
	errno = 0;
	check(compat_setenv("A=B", "x", 1) < 0 && errno == EINVAL && compat_unsetenv("") < 0,
	      "compat: bad names refused");
	check(setenv(n, "four", 1) == 0 && env_is(n, "four") && unsetenv(n) == 0 && env_is(n, NULL),
	      "compat: setenv and unsetenv");
	printf("# compat: setenv used %s\n", HAVE_SETENV ? "libc" : "fallback");
}

static int
put_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static void
test_stat(void)
{
	char file[96], link[96];
	struct stat st;
	int fd, ok;

	sprintf(file, "%s/five", tmpdir);
	sprintf(link, "%s/link", tmpdir);
	put_file(file, "12345");
	ok = symlink(file, link) == 0;
	check(stat(file, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 5 &&
	      stat(link, &st) == 0 && S_ISREG(st.st_mode), "compat: stat");
	check(ok && lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "compat: lstat");
	fd = open(file, O_RDONLY);
	check(fd >= 0 && fstat(fd, &st) == 0 && st.st_size == 5 && S_ISREG(st.st_mode),
	      "compat: fstat");
	check(stat("/nonexistent/x", &st) < 0 && errno == ENOENT, "compat: stat of nothing fails");
	if (fd >= 0)
		close(fd);
	printf("# compat: stat used %s\n", HAVE_XSTAT ? "__xstat" : "libc");
}

/* No MSG_NOSIGNAL anywhere: every program ignores SIGPIPE instead, so a
 * write to a closed pipe or socket fails with EPIPE. */
static void
test_sigpipe(void)
{
	static const int none[] = { 0 };
	int fds[2], rc = -1, err = 0;

	sig_setup(none);
	if (pipe(fds) == 0) {
		close(fds[0]);
		rc = (int)write(fds[1], "x", 1);
		err = errno;
		close(fds[1]);
	}
	check(rc < 0 && err == EPIPE, "signals: SIGPIPE ignored, writes fail with EPIPE");
}

/* make every directory of path, then the file with text */
static int
put_tree(const char *root, const char *rel, const char *text)
{
	char path[256];
	char *p;

	sprintf(path, "%s/%s", root, rel);
	for (p = path + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		mkdir(path, 0755);
		*p = '/';
	}
	return put_file(path, text);
}

static int
found_at(const char *root, const char *name, const char *rel)
{
	char path[256], want[256], tried[1024];

	sprintf(want, "%s/%s", root, rel);
	return vport_find(root, name, path, sizeof path, tried, sizeof tried) == 0 &&
	       strcmp(path, want) == 0;
}

static void
test_vport(void)
{
	char a[96], b[96], c[96], d[96], path[256], tried[1024];

	sprintf(a, "%s/sysfs", tmpdir);
	put_tree(a, "sys/class/virtio-ports/vport0p1/name", "org.qemu.guest_agent.0\n");
	put_tree(a, "sys/class/virtio-ports/vport0p2/name", PORT_H2G "\n");
	put_tree(a, "dev/vport0p2", "");
	check(found_at(a, PORT_H2G, "dev/vport0p2"), "vport: found by name in sysfs");

	sprintf(b, "%s/udev", tmpdir);
	put_tree(b, "dev/virtio-ports/" PORT_G2H, "");
	check(found_at(b, PORT_G2H, "dev/virtio-ports/" PORT_G2H), "vport: found by udev's symlink");

	sprintf(c, "%s/debugfs", tmpdir);
	put_tree(c, "dev/vport1p1", "");
	put_tree(c, "dev/vport1p2", "");
	put_tree(c, "sys/kernel/debug/virtio-ports/vport1p1", "name: other\nguest_connected: 0\n");
	put_tree(c, "sys/kernel/debug/virtio-ports/vport1p2", "name: " PORT_G2H "\nis_console: no\n");
	check(found_at(c, PORT_G2H, "dev/vport1p2"), "vport: no sysfs class: /dev/vport* named by debugfs");

	sprintf(d, "%s/none", tmpdir);
	put_tree(d, "dev/vport2p1", "");
	check(vport_find(d, PORT_G2H, path, sizeof path, tried, sizeof tried) < 0 && !path[0] &&
	      strstr(tried, "/sys/class/virtio-ports (missing)") &&
	      strstr(tried, "/dev/virtio-ports/" PORT_G2H " (missing)") &&
	      strstr(tried, "/dev/vport* (1 devices"), "vport: none found, and where it looked is told");
	check(vport_find(a, PORT_G2H, path, sizeof path, tried, sizeof tried) < 0 &&
	      strstr(tried, "virtio-ports (2 ports, none named so)"),
	      "vport: sysfs ports with other names are not taken");
}

/* COMPAT=all must really have run every fallback, not only built them */
static void
test_compat_all(void)
{
	printf("# compat: spawn uses %s\n", HAVE_VFORK ? "vfork" : "fork");
	printf("# compat: commands %s killed with their daemon (PR_SET_PDEATHSIG)\n",
	       HAVE_PR_SET_PDEATHSIG ? "are" : "are not");
	if (!COMPAT_ALL)
		return;
	check(!HAVE_PIPE2 && !HAVE_ACCEPT4 && !HAVE_SOCK_CLOEXEC && !HAVE_O_CLOEXEC &&
	      !HAVE_CLOCK_GETTIME && !HAVE_STRLCPY && !HAVE_SETENV && !HAVE_VFORK &&
	      !HAVE_SO_PEERCRED && !HAVE_GETPEEREID && !HAVE_PR_SET_PDEATHSIG &&
	      strcmp(compat_used.peercred, "none") == 0 &&
	      strcmp(compat_used.pipe2, "fallback") == 0 &&
	      strcmp(compat_used.accept4, "fallback") == 0 &&
	      strcmp(compat_used.socket, "fallback") == 0 &&
	      strcmp(compat_used.open, "fallback") == 0 &&
	      strcmp(compat_used.clock, "fallback") == 0, "COMPAT=all: every shim ran its fallback");
}

static void
test_compat(void)
{
	sprintf(tmpdir, "/tmp/negotiator-unit-%ld", (long)getpid());
	if (mkdir(tmpdir, 0700) < 0) {
		check(0, "compat: a temporary directory");
		return;
	}
	test_pipe2();
	test_accept4();
	test_peercred();
	test_listen_owner();
	test_cloexec();
	test_clock();
	test_strlcpy();
	test_setenv();
	test_stat();
	test_sigpipe();
	test_vport();
	test_compat_all();
	{
		char cmd[96];

		sprintf(cmd, "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			printf("# unable to remove %s\n", tmpdir);
	}
}

/* data frames read straight from a pipe: a long read framed in place, a
 * short one moved down to meet its shorter count, both parse back */
static void
test_send_read(void)
{
	static unsigned char big[40000];
	struct link l;
	const char *pl;
	size_t plen, used, i;
	int fds[2], ok = 1;
	ssize_t n1, n2;

	for (i = 0; i < sizeof big; i++)
		big[i] = (unsigned char)(i * 7 + 3);
	if (pipe(fds) < 0)
		return;
	link_init(&l, LINK_CHANNEL, fds[0], "test");
	buf_clear(&l.out);          /* whatever the session sent on its own */
	if (write(fds[1], big, 20000) != 20000 || write(fds[1], "abc", 3) != 3)
		ok = 0;
	n1 = link_send_read(&l, "out 7 ", 6, fds[0], 20000);
	n2 = link_send_read(&l, "err 12 ", 7, fds[0], 30000);
	check(ok && n1 == 20000 && n2 == 3, "send_read: read sizes");
	check(frame((const char *)buf_ptr(&l.out), buf_len(&l.out), &pl, &plen, &used) == FRAME_OK &&
	      plen == 20006 && memcmp(pl, "out 7 ", 6) == 0 && memcmp(pl + 6, big, 20000) == 0,
	      "send_read: a long read framed in place");
	check(frame((const char *)buf_ptr(&l.out) + used, buf_len(&l.out) - used, &pl, &plen,
	            &used) == FRAME_OK && plen == 10 && memcmp(pl, "err 12 abc", 10) == 0,
	      "send_read: a short read moved down to its count");
	close(fds[1]);
	check(link_send_read(&l, "out 7 ", 6, fds[0], 100) == 0, "send_read: EOF is 0");
	/* a head without data (eof, cancel, ack relayed): data may be NULL, and
	 * no arithmetic may be done on it (make sanitize: NULL + 0 is undefined) */
	buf_clear(&l.out);
	check(link_send_data(&l, "eof 7", 5, NULL, 0) == 0 && buf_len(&l.out) == 7 &&
	      memcmp(buf_ptr(&l.out), "5\neof 7", 7) == 0, "send_data: a head alone, data NULL");
	close(fds[0]);
	buf_free(&l.in);
	buf_free(&l.out);
}

/* A peer that died in the middle of a frame, and a new peer whose hello
 * went into that frame (a 2.6.35 guest sees no EOF when the host reconnects
 * at once): after FRAME_STALL the link resynchronizes and finds the hello. */
static void
test_frame_stall(void)
{
	static const char old_hello[] = "24\nhello 1 0123456789abcdef";
	static const char cut[] = "32011\nout 1 data of a frame whose end never came";
	static const char new_hello[] = "24\nhello 1 fedcba9876543210";
	struct link l;
	struct msg m;
	int fds[2], ok, up, reset;
	mtime_t now;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
		return;
	set_nonblock(fds[0]);
	link_init(&l, LINK_CHANNEL, fds[0], "stall");
	ok = write(fds[1], old_hello, strlen(old_hello)) == (ssize_t)strlen(old_hello);
	link_read(&l);
	check(ok && link_next(&l, &m) == EV_UP, "stall: session up with the first peer");
	ok = write(fds[1], cut, strlen(cut)) == (ssize_t)strlen(cut) &&
	     write(fds[1], new_hello, strlen(new_hello)) == (ssize_t)strlen(new_hello);
	link_read(&l);
	check(ok && link_next(&l, &m) == EV_NONE && l.partial, "stall: the hello sits in a cut frame");
	now = now_ms();
	link_timers(&l, now + FRAME_STALL - 100, 0);
	check(link_next(&l, &m) == EV_NONE && l.up, "stall: nothing happens before FRAME_STALL");
	check(link_deadline(&l, now, 0) == l.partial_at + FRAME_STALL,
	      "stall: the loop wakes up for it");
	link_timers(&l, l.partial_at + FRAME_STALL, 0);
	reset = link_next(&l, &m) == EV_RESET;
	up = link_next(&l, &m) == EV_UP && memcmp(l.peer, "fedcba9876543210", 16) == 0;
	check(reset && up, "stall: the old session ends, the new peer's hello is found");
	link_detach(&l);
	close(fds[1]);
}

/* Bytes both ways between a caller and a server link, until nothing moves;
 * the caller's events are counted (EV_RESET, EV_UP). */
static void
pump(struct link *c, struct link *s, int *resets, int *ups)
{
	struct msg m;
	enum link_event ev;
	int round;

	for (round = 0; round < 8; round++) {
		link_flush(c);
		link_read(s);
		while (link_next(s, &m) != EV_NONE)
			;
		link_flush(s);
		link_read(c);
		while ((ev = link_next(c, &m)) != EV_NONE) {
			if (ev == EV_RESET)
				(*resets)++;
			if (ev == EV_UP)
				(*ups)++;
		}
	}
}

/* A calling link (the guest's guest-to-host port) whose server (the host
 * daemon) was killed while it streamed output: what is left to read ends
 * in a frame cut short, and the new server's answer to our next probe
 * comes after it.  It must be found, not taken into the cut frame (the
 * channel then stayed dead for good: vm-check scenario 8 on Linux 6.1). */
static void
test_cut_frame_then_probe(void)
{
	static const char cut[] = "32786\nout 7 32768\n\0\0\0\0\0\0\0\0";
	struct link c, s1, s2;
	int fds[2], resets = 0, ups = 0, ok, stall;
	char old_peer[sizeof c.peer];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
		return;
	set_nonblock(fds[0]);
	set_nonblock(fds[1]);
	link_init(&c, LINK_CHANNEL, -1, "caller");
	link_set_caller(&c);
	link_attach(&c, fds[0]);
	link_init(&s1, LINK_CHANNEL, -1, "server1");
	link_set_server(&s1);
	link_attach(&s1, fds[1]);
	pump(&c, &s1, &resets, &ups);
	check(c.up && ups == 1 && c.mode == LM_NATIVE, "cut frame: session up with the first server");
	memcpy(old_peer, c.peer, sizeof old_peer);
	/* the first server dies in the middle of a frame; the next one comes
	 * up on the same stream (the caller does not see the switch) */
	ok = write(fds[1], cut, sizeof cut - 1) == (ssize_t)(sizeof cut - 1);
	buf_free(&s1.in);
	buf_free(&s1.out);
	link_init(&s2, LINK_CHANNEL, -1, "server2");
	link_set_server(&s2);
	link_attach(&s2, fds[1]);
	/* the caller's other channel saw the new server: a new session here */
	link_restart(&c);
	resets = ups = 0;
	pump(&c, &s2, &resets, &ups);
	check(ok && c.up && ups == 1 && strcmp(c.peer, old_peer) != 0 &&
	      strcmp(c.peer, s2.nonce) == 0,
	      "cut frame, then a restart: the new server's answer is found at once");
	/* the same without the restart: the cut frame stalls, the caller
	 * resynchronizes with a new probe, and its answer must be found */
	ok = write(fds[1], cut, sizeof cut - 1) == (ssize_t)(sizeof cut - 1);
	buf_free(&s2.in);
	buf_free(&s2.out);
	link_init(&s1, LINK_CHANNEL, -1, "server3");
	link_set_server(&s1);
	link_attach(&s1, fds[1]);
	resets = ups = 0;
	pump(&c, &s1, &resets, &ups);
	stall = c.partial;
	link_timers(&c, c.partial_at + FRAME_STALL, 0);
	pump(&c, &s1, &resets, &ups);
	check(ok && stall && c.up && strcmp(c.peer, s1.nonce) == 0 && c.mode == LM_NATIVE,
	      "cut frame, stalled: the answer to the resync's probe is found");
	/* the other way: the server reads what the caller's dead predecessor
	 * left, a cut ack whose digits run into the new probe's count */
	buf_free(&c.in);
	buf_free(&c.out);
	ok = write(fds[0], "ack 1 32768", 11) == 11;
	link_init(&c, LINK_CHANNEL, -1, "caller2");
	link_set_caller(&c);
	link_attach(&c, fds[0]);
	resets = ups = 0;
	pump(&c, &s1, &resets, &ups);
	check(ok && c.up && s1.up && strcmp(s1.peer, c.nonce) == 0,
	      "cut ack before a probe: the server finds the probe");
	link_detach(&c);
	buf_free(&s1.in);
	buf_free(&s1.out);
	close(fds[1]);
}

/* ---- the per-guest policy --------------------------------------------------- */

static struct policy *
pol(const char *text, char *why)
{
	why[0] = '\0';
	return policy_parse(text, strlen(text), "P", why, 600);
}

/* text must be refused with exactly this "policy P:LINE: ..." start */
static void
pol_bad(const char *text, const char *want, const char *what)
{
	char why[600];
	struct policy *p = pol(text, why);

	check(!p && strncmp(why, want, strlen(want)) == 0, what);
	if (p || strncmp(why, want, strlen(want)) != 0)
		printf("# got: %s\n", p ? "(accepted)" : why);
	policy_free(p);
}

static void
test_policy_parse(void)
{
	char why[600], big[POLICY_MAX_LINE + 20], *many;
	struct policy *p;
	size_t i;

	p = pol("# comment\n\n  \t\nvm1: echo-args whoami-guest  # why\n"
	        "web*:\tfind-* [ab]c?\n", why);
	check(p && policy_rules(p) == 2, "policy: comments, blank lines, tabs, trailing comment");
	policy_free(p);
	p = pol("vm1:echo-args\nvm2 :x\nvm3: x", why);
	check(p && policy_rules(p) == 3 && policy_allows(p, "vm3", "x"),
	      "policy: blanks around ':' optional, last line without newline");
	policy_free(p);
	p = pol("vm:1: a\n", why);
	check(p && policy_allows(p, "vm:1", "a") && !policy_allows(p, "vm", "a"),
	      "policy: a guest pattern may contain ':' (the last one separates)");
	policy_free(p);
	p = pol("", why);
	check(p && policy_rules(p) == 0, "policy: an empty file is valid (allows nothing)");
	policy_free(p);

	pol_bad("vm1: a\nvm2 a b\n", "policy P:2: missing ':'", "policy: missing ':' at line 2");
	pol_bad(": a\n", "policy P:1: missing guest pattern", "policy: empty guest pattern");
	pol_bad("vm 1: a\n", "policy P:1: guest pattern vm 1 is more than one word",
	        "policy: guest pattern of two words");
	pol_bad("vm[12: a\n", "policy P:1: bad guest pattern vm[12",
	        "policy: unclosed '[' in a guest pattern");
	pol_bad("a/b: a\n", "policy P:1: bad guest pattern", "policy: '/' in a guest pattern");
	pol_bad("vm\\: a\n", "policy P:1: bad guest pattern", "policy: trailing backslash");
	pol_bad("\n\nvm1: ../sh\n", "policy P:3: bad command pattern ../sh",
	        "policy: a path as command pattern, line 3");
	pol_bad("vm1: a;b\n", "policy P:1: bad command pattern a;b", "policy: ';' in a command pattern");
	pol_bad("vm1: [ab\n", "policy P:1: bad command pattern [ab",
	        "policy: unclosed '[' in a command pattern");
	pol_bad("vm1: !\n", "policy P:1: bad command pattern !", "policy: lone '!'");
	pol_bad("vm1: a#b\n", "policy P:1: bad command pattern a#b",
	        "policy: '#' inside a word is not a comment");
	pol_bad("vm1: !a !b\n", "policy P:1: only exclusions (!) for vm1",
	        "policy: only exclusions refused");
	pol_bad("vm1: a\nx: b\nvm1: c\n", "policy P:3: the rule for vm1 is never used: line 1",
	        "policy: a second rule for the same guest pattern refused");
	pol_bad("*: a\nvm1: c\n", "policy P:2: the rule for vm1 is never used: line 1 (*)",
	        "policy: a rule after '*' refused");
	pol_bad("vm1: a\r\n", "policy P:1: unexpected carriage return", "policy: CRLF refused");
	pol_bad("vm1: \033a\n", "policy P:1: unexpected byte 0x1b", "policy: control character");
	pol_bad("vm1: caf\xc3\xa9\n", "policy P:1: unexpected byte 0xc3", "policy: non-ASCII");
	p = pol("# Ren\xc3\xa9's guests\nvm1: a # caf\xc3\xa9\n", why);
	check(p != NULL, "policy: any byte but NUL in comments");
	policy_free(p);
	p = policy_parse("vm1: a\nvm2\0: b\n", 14, "P", why, sizeof why);
	check(!p && strncmp(why, "policy P:2: unexpected byte 0x00", 32) == 0,
	      "policy: NUL byte refused, with its line");
	policy_free(p);

	memset(big, 'a', sizeof big);
	memcpy(big, "vm1: ", 5);
	big[POLICY_MAX_LINE] = '\0';
	p = pol(big, why);
	check(p && policy_allows(p, "vm1", big + 5), "policy: a line of POLICY_MAX_LINE bytes");
	policy_free(p);
	big[POLICY_MAX_LINE] = 'a';
	big[POLICY_MAX_LINE + 1] = '\0';
	pol_bad(big, "policy P:1: line longer than", "policy: a longer line refused");

	many = xmalloc((POLICY_MAX_RULES + 1) * 16);
	many[0] = '\0';
	for (i = 0; i <= POLICY_MAX_RULES; i++)
		sprintf(many + strlen(many), "g%lu: a\n", (unsigned long)i);
	p = policy_parse(many, strlen(many) - strlen(strrchr(many, 'g')), "P", why, sizeof why);
	check(p && policy_rules(p) == POLICY_MAX_RULES, "policy: POLICY_MAX_RULES rules");
	policy_free(p);
	sprintf(big, "policy P:%d: too many rules", POLICY_MAX_RULES + 1);
	pol_bad(many, big, "policy: one rule more refused, with its line");
	free(many);
}

static void
test_policy_match(void)
{
	char why[600];
	struct policy *p;

	check(policy_allows(NULL, "vm1", "anything"), "policy: no policy allows everything");
	p = pol("vm1: echo-args whoami-guest\n"
	        "vm?: find-* [ab]x\n"
	        "web*: * !reboot-* !halt\n"
	        "locked:\n", why);
	check(p != NULL, "policy: matcher's file parses");
	if (!p)
		return;
	check(policy_allows(p, "vm1", "echo-args") && policy_allows(p, "vm1", "whoami-guest"),
	      "policy: listed commands allowed");
	check(!policy_allows(p, "vm1", "exit3") && !policy_allows(p, "vm1", "echo-args2"),
	      "policy: others refused (whole-name match)");
	check(!policy_allows(p, "vm1", "find-ip-addresses"),
	      "policy: the first matching rule decides (vm1 does not fall through to vm?)");
	check(policy_allows(p, "vm2", "find-ip-addresses") && policy_allows(p, "vm2", "bx") &&
	      !policy_allows(p, "vm2", "cx") && !policy_allows(p, "vm2", "echo-args"),
	      "policy: globs * ? [...] for guests and commands");
	check(policy_allows(p, "web01", "anything") && !policy_allows(p, "web01", "reboot-now") &&
	      !policy_allows(p, "web01", "halt") && policy_allows(p, "web01", "halt2"),
	      "policy: !exclusions win over the rest of the rule");
	check(!policy_allows(p, "locked", "echo-args"), "policy: an empty list allows nothing");
	check(!policy_allows(p, "vm10", "find-x") && !policy_allows(p, "other", "echo-args"),
	      "policy: a guest no rule matches may run nothing");
	policy_free(p);
	p = pol("*: *\n", why);
	check(p && policy_allows(p, "any", "thing"), "policy: '*: *' allows everything");
	policy_free(p);
	p = pol("vm\\*: a\n", why);
	check(p && policy_allows(p, "vm*", "a") && !policy_allows(p, "vm1", "a"),
	      "policy: a backslash quotes a glob character");
	policy_free(p);
}

static void
test_policy_load(void)
{
	char dir[] = "/tmp/negotiator-unit.XXXXXX", path[64], why[600];
	struct policy *p;
	FILE *f;
	long i;

	if (!mkdtemp(dir)) {
		check(0, "policy: temp dir");
		return;
	}
	sprintf(path, "%s/policy", dir);
	p = policy_load(path, why, sizeof why);
	check(!p && strstr(why, "policy ") == why && strstr(why, "/policy: No such file"),
	      "policy file: missing file is an error naming it");
	f = fopen(path, "w");
	fputs("# ok\nvm1: a\nvm2 b\n", f);
	fclose(f);
	p = policy_load(path, why, sizeof why);
	check(!p && strstr(why, "/policy:3: missing ':'") != NULL,
	      "policy file: FILE:LINE in the error");
	f = fopen(path, "w");
	fputs("vm1: a\n", f);
	fclose(f);
	p = policy_load(path, why, sizeof why);
	check(p && policy_allows(p, "vm1", "a") && !policy_allows(p, "vm1", "b"),
	      "policy file: read and used");
	policy_free(p);
	f = fopen(path, "w");
	for (i = 0; i <= POLICY_MAX_SIZE / 8; i++)
		fputs("# 45678\n", f);
	fclose(f);
	p = policy_load(path, why, sizeof why);
	check(!p && strstr(why, "larger than") != NULL, "policy file: size bounded");
	unlink(path);
	p = policy_load(dir, why, sizeof why);
	check(!p && strstr(why, "a directory") != NULL, "policy file: a directory refused");
	mkfifo(path, 0600);
	p = policy_load(path, why, sizeof why);
	check(!p && strstr(why, "not a regular file") != NULL,
	      "policy file: a FIFO refused without blocking");
	unlink(path);
	rmdir(dir);
}

static int
json_text(const char *in, size_t n, const char *want)
{
	struct buf b;
	int ok;

	buf_init(&b, (size_t)-1);
	json_put_string(&b, in, n);
	ok = buf_len(&b) == strlen(want) && memcmp(buf_ptr(&b), want, buf_len(&b)) == 0;
	if (!ok)
		printf("# got %.*s\n", (int)buf_len(&b), (const char *)buf_ptr(&b));
	buf_free(&b);
	return ok;
}

/* python-negotiator's JSON: ASCII out, escapes and any layout in */
static void
test_json(void)
{
	const char *why = NULL;
	struct json *j;
	const struct json *v;
	static const char req[] = "{ \"kw\" :{\"capture\": true, \"input\": \"caf\\u00e9 \\ud83d\\ude00\\u0000x\"},"
	                          "\"method\":\"execute\",\"args\": [\"echo-args\", \"a b\"]}";

	check(json_text("a\"b\\c\n\t", 7, "\"a\\\"b\\\\c\\n\\t\""), "json: quotes, backslash, newline, tab");
	check(json_text("caf\xc3\xa9 \xf0\x9f\x98\x80", 10, "\"caf\\u00e9 \\ud83d\\ude00\""),
	      "json: non-ASCII as \\u escapes, astral as a surrogate pair");
	check(json_text("\xff\xfe\x01x", 4, "\"\\ufffd\\ufffd\\u0001x\""),
	      "json: bytes that are not UTF-8 become U+FFFD, control bytes escaped");
	check(json_text("\xed\xa0\x80\xc0\xaf", 5, "\"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\""),
	      "json: encoded surrogates and overlong forms refused");
	j = json_parse(req, strlen(req), &why);
	check(j && j->type == J_OBJECT, "json: a request with any key order and spacing parses");
	v = json_get(j, "method");
	check(v && v->type == J_STRING && strcmp(v->str, "execute") == 0, "json: method");
	v = json_get(j, "args");
	check(v && v->type == J_ARRAY && v->child && strcmp(v->child->str, "echo-args") == 0 &&
	      v->child->next && strcmp(v->child->next->str, "a b") == 0 && !v->child->next->next,
	      "json: args in order");
	v = json_get(json_get(j, "kw"), "input");
	check(v && v->len == 12 && memcmp(v->str, "caf\xc3\xa9 \xf0\x9f\x98\x80\0x", 12) == 0,
	      "json: \\u escapes decoded to UTF-8, surrogate pair joined, NUL kept");
	check(json_truthy(json_get(json_get(j, "kw"), "capture")), "json: true is truthy");
	json_free(j);
	check(!json_parse("{\"a\": 1} x", 10, &why) && why, "json: trailing bytes refused");
	check(!json_parse("{\"a\" 1}", 7, &why), "json: missing colon refused");
	check(!json_parse("\"abc", 4, &why), "json: unterminated string refused");
	check(!json_parse("\"a\nb\"", 5, &why), "json: raw control character refused");
	check(!json_parse("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
	                  80, &why), "json: nesting bounded");
	j = json_parse(" [true, false, null, -12.5e3, \"\"] ", 34, &why);
	check(j && j->child && j->child->type == J_TRUE && j->child->next->type == J_FALSE &&
	      j->child->next->next->type == J_NULL &&
	      strcmp(j->child->next->next->next->str, "-12.5e3") == 0 &&
	      j->child->next->next->next->next->len == 0, "json: literals, numbers, empty string");
	json_free(j);
}

static int
buf_is(struct buf *b, const char *want)
{
	int ok = buf_len(b) == strlen(want) && memcmp(buf_ptr(b), want, buf_len(b)) == 0;

	if (!ok)
		printf("# got [%.*s]\n", (int)buf_len(b), (const char *)buf_ptr(b));
	buf_clear(b);
	return ok;
}

#define UTXT(s) (const unsigned char *)(s), strlen(s)

/* python-negotiator's requests and answers (python.c) */
static void
test_python(void)
{
	static char a0[] = "echo-args", a1[] = "two words";
	char *argv[3], **got, why[200];
	const char *w = NULL;
	struct buf b, out, err, in;
	int has, code;

	argv[0] = a0;
	argv[1] = a1;
	argv[2] = NULL;
	buf_init(&b, (size_t)-1);
	buf_init(&out, (size_t)-1);
	buf_init(&err, (size_t)-1);
	buf_init(&in, (size_t)-1);
	py_request_list(&b);
	check(buf_is(&b, "{\"method\": \"list_commands\", \"args\": [], \"kw\": {}}"),
	      "python: list_commands request, byte for byte (49 bytes, as python's)");
	py_request_exec(&b, argv, "hi\n", 3, 1);
	check(buf_is(&b, "{\"method\": \"execute\", \"args\": [\"echo-args\", \"two words\"], "
	             "\"kw\": {\"capture\": true, \"input\": \"hi\\n\"}}"),
	      "python: execute request with input, nothing more");
	py_request_exec(&b, argv, NULL, 0, 0);
	check(buf_is(&b, "{\"method\": \"execute\", \"args\": [\"echo-args\", \"two words\"], "
	             "\"kw\": {\"capture\": true}}"), "python: execute request without input");
	check(py_error_status("External command failed with exit code 3!\n\nCommand:\nx") == 3 &&
	      py_error_status("External command failed with exit code -9!") == 137 &&
	      py_error_status("External command isn't available!\n\nCommand:\nx") == 127 &&
	      py_error_status("[Errno 13] Permission denied: '/x'") == 126 &&
	      py_error_status("tuple index out of range") == 125,
	      "python: error texts map to exit statuses 3, 128+9, 127, 126, 125");
	py_answer_output(&b, (const unsigned char *)"  padded  \n", 11);
	check(buf_is(&b, "{\"success\": true, \"result\": \"padded\"}"),
	      "python: a one-line result is stripped");
	py_answer_output(&b, (const unsigned char *)" a\nb \n", 6);
	check(buf_is(&b, "{\"success\": true, \"result\": \" a\\nb \\n\"}"),
	      "python: a result of more lines is kept as it is");
	code = py_parse_answer(UTXT("{\"result\": \"x\", \"success\": true}"),
	                       0, &out, &err, &w);
	check(code == 0 && !w && buf_is(&out, "x\n"), "python: a result gets its newline back");
	code = py_parse_answer(UTXT("{\"success\": true, \"result\": [\"b\", \"a\"]}"), 1, &out, &err, &w);
	check(code == 0 && !w && buf_is(&out, "a\nb\n"), "python: names sorted, one per line");
	code = py_parse_answer(UTXT("{\"success\": false, \"error\": "
	                       "\"External command failed with exit code 4!\"}"), 0, &out,
	                       &err, &w);
	check(code == 4 && buf_len(&out) == 0 && buf_is(&err,
	      "External command failed with exit code 4!\n"), "python: a failure is stderr + status");
	w = NULL;
	code = py_parse_answer(UTXT("{\"result\": \"x\"}"), 0, &out, &err, &w);
	check(code == EXIT_AGENT && w, "python: an answer without success is malformed");
	buf_clear(&out);
	buf_clear(&err);
	check(py_parse_request(UTXT("{\"method\": \"list_commands\"}"), &got,
	                       &in, &has, why, sizeof why) == PY_LIST,
	      "python: list_commands, args and kw left out");
	check(py_parse_request(UTXT("{\"method\": \"_private\"}"), &got, &in,
	                       &has, why, sizeof why) == PY_BAD &&
	      strcmp(why, "Method _private not supported") == 0, "python: other methods refused");
	check(py_parse_request(UTXT("{\"method\": \"execute\", \"args\": [\"a\", 5]}"), &got, &in, &has, why, sizeof why) == PY_BAD,
	      "python: a number among the args refused");
	check(py_parse_request(UTXT("{\"kw\": {\"input\": \"z\"}, \"args\": [\"c\"], "
	                       "\"method\": \"execute\"}"), &got, &in, &has, why,
	                       sizeof why) == PY_EXEC && got && strcmp(got[0], "c") == 0 && !got[1] &&
	      has && buf_is(&in, "z"), "python: execute with input, keys in any order");
	free_argv(got);
	buf_free(&b);
	buf_free(&out);
	buf_free(&err);
	buf_free(&in);
}

/* ---- the event loop (loop.c): timers and both backends --------------------- */

static int fired_order[8], nfired;

static void
note_fire(struct timer *t, mtime_t now)
{
	(void)now;
	fired_order[nfired++] = *(int *)t->arg;
}

static void
test_timers(void)
{
	static int ids[6] = { 0, 1, 2, 3, 4, 5 };
	struct timer t[6];
	mtime_t base = (mtime_t)0 - 250UL, next;   /* deadlines across the clock's wrap */
	int i;

	for (i = 0; i < 6; i++)
		timer_init(&t[i], note_fire, &ids[i]);
	timer_set(&t[0], base + 500);
	timer_set(&t[1], base + 100);
	timer_set(&t[2], base + 300);   /* wraps past 0 */
	timer_set(&t[3], base + 200);
	timer_set(&t[4], base + 400);
	timer_set(&t[3], base + 600);   /* moved later */
	timer_stop(&t[4]);              /* and one taken back */
	timer_stop(&t[4]);              /* twice: harmless */
	check(timer_pending(&t[0]) && !timer_pending(&t[4]) && !timer_pending(&t[5]),
	      "timers: pending as set and stopped");
	nfired = 0;
	next = timers_run(base + 50, base + 10000);
	check(nfired == 0 && next == base + 100, "timers: none due yet, the nearest is next");
	next = timers_run(base + 350, base + 10000);
	check(nfired == 2 && fired_order[0] == 1 && fired_order[1] == 2 && next == base + 500,
	      "timers: the due ones fire in deadline order, across the clock's wrap");
	next = timers_run(base + 10000, base + 20000);
	check(nfired == 4 && fired_order[2] == 0 && fired_order[3] == 3 && next == base + 20000,
	      "timers: a moved timer fires at its new time; none left: the horizon");
}

static void
test_loop_backend(const char *name)
{
	int p[2], n, i, fd, mask, saw_r = 0, saw_w = 0;
	char what[120], c = 'x';

	if (!loop_has(name) || loop_open(name) < 0) {
		snprintf(what, sizeof what, "loop %s: not built in here (skipped)", name);
		check(strcmp(name, "select") != 0, what);
		return;
	}
	if (pipe(p) < 0) {
		check(0, "loop: pipe");
		return;
	}
	loop_watch(p[0], LOOP_READ);
	loop_watch(p[1], LOOP_WRITE);
	n = loop_wait(1000);
	for (i = 0; i < n; i++) {
		fd = loop_ready(i, &mask);
		saw_r |= fd == p[0] && (mask & LOOP_READ);
		saw_w |= fd == p[1] && (mask & LOOP_WRITE);
	}
	snprintf(what, sizeof what, "loop %s: an empty pipe: writable, not readable", name);
	check(n == 1 && saw_w && !saw_r, what);
	loop_watch(p[1], 0);
	if (write(p[1], &c, 1) != 1)
		check(0, "loop: write");
	n = loop_wait(1000);
	fd = n == 1 ? loop_ready(0, &mask) : -1;
	snprintf(what, sizeof what, "loop %s: unwatched writer quiet, reader ready", name);
	check(n == 1 && fd == p[0] && mask == LOOP_READ, what);
	n = loop_wait(0);
	snprintf(what, sizeof what, "loop %s: level-triggered: still ready until read", name);
	check(n == 1, what);
	loop_watch(p[0], 0);
	n = loop_wait(50);
	snprintf(what, sizeof what, "loop %s: nothing watched: the wait times out", name);
	check(n == 0, what);
	close(p[0]);
	close(p[1]);
	loop_close();
}

int
main(void)
{
	log_level = LOG_LVL_ERROR;
	test_framing();
	test_messages();
	test_sync_scan();
	test_netstrings();
	test_shlex();
	test_names();
	test_buffer();
	test_escape();
	test_opts();
	test_log();
	test_compat();
	test_send_read();
	test_frame_stall();
	test_cut_frame_then_probe();
	test_policy_parse();
	test_policy_match();
	test_policy_load();
	test_json();
	test_python();
	test_timers();
	test_loop_backend("select");
	test_loop_backend("epoll");
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
