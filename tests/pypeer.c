/*
 * tests/pypeer.c: python-negotiator 0.12.2 for the tests, written from
 * shared/notes/python-wire.md.  It plays python's daemons and CLIs on one
 * end of a channel, as strictly as python would take what it reads:
 *
 *   pypeer serve SOCKET [--commands DIR] [--guest NAME] [--log FILE]
 *       a python daemon (guest daemon on host-to-guest, host daemon worker
 *       on guest-to-host with --guest): connects to SOCKET and answers
 *       list_commands and execute, forever; connects again after EOF.
 *   pypeer call SOCKET [--input FILE] [--timeout S] list | exec WORD...
 *       a python CLI: one request on a new connection, one answer; prints
 *       the result (names sorted, as the host CLI does) and exits 0, or
 *       prints the error and exits 1; killed by SIGALRM after S seconds
 *       (default 20).
 *
 * What python would die of, or what would break it, is fatal here and is
 * said on stderr (and in --log) with the word VIOLATION: a frame that is
 * not COUNT "\n" JSON, non-ASCII bytes (python 3 counts characters), JSON
 * that is not an object with a method, bytes sent before the answer to
 * the previous request (lockstep), an answer without "success".
 *
 * It links the project's JSON reader (to read); what it writes it encodes
 * itself, as python's json.dumps does (ensure_ascii, ", " and ": ").
 */
#include "negotiator.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *commands_dir = ".", *guest_name, *log_path;
static FILE *logf;

static void
say(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "pypeer: ");
	fprintf(stderr, fmt, a, b);
	fprintf(stderr, "\n");
	if (logf) {
		fprintf(logf, fmt, a, b);
		fprintf(logf, "\n");
		fflush(logf);
	}
}

static void
violation(const char *what, const char *detail)
{
	say("VIOLATION: %s%s", what, detail ? detail : "");
	exit(3);
}

static int
connect_to(const char *path)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* ---- python's framing ------------------------------------------------------- */

static int
read_byte(int fd, unsigned char *c)
{
	ssize_t n;

	do
		n = read(fd, c, 1);
	while (n < 0 && errno == EINTR);
	return n == 1;
}

/* One frame, read as python reads it: a line that must be a count once
 * stripped, then exactly that many bytes.  NULL at EOF before a count. */
static unsigned char *
read_frame(int fd, size_t *len)
{
	char line[64], *s, *e;
	unsigned char c, *p;
	size_t n = 0, got = 0;
	ssize_t k;

	for (;;) {
		if (!read_byte(fd, &c)) {
			if (n == 0)
				return NULL;
			violation("EOF in the middle of a count line", NULL);
		}
		if (c == '\n')
			break;
		if (n == sizeof line - 1)
			violation("a count line longer than 63 bytes", NULL);
		line[n++] = (char)c;
	}
	line[n] = '\0';
	for (s = line; *s == ' ' || *s == '\t' || *s == '\r'; s++)
		;
	for (e = s + strlen(s); e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'); e--)
		;
	*e = '\0';
	if (!*s || strspn(s, "0123456789") != strlen(s))
		violation("expected a byte count, got the line: ", line);
	n = (size_t)strtoul(s, NULL, 10);
	if (n == 0)
		violation("a frame of 0 bytes (not JSON)", NULL);
	p = xmalloc(n + 1);
	while (got < n) {
		k = read(fd, p + got, n - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			violation("EOF inside a frame", NULL);
		got += (size_t)k;
	}
	p[n] = '\0';
	for (got = 0; got < n; got++)
		if (p[got] >= 0x80)
			violation("a non-ASCII byte in a frame (python 3 counts characters)", NULL);
	*len = n;
	return p;
}

static void
write_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	ssize_t k;

	while (n) {
		k = write(fd, s, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			say("write: %s%s", strerror(errno), "");
			exit(4);
		}
		s += k;
		n -= (size_t)k;
	}
}

static void
write_frame(int fd, struct buf *json)
{
	char count[32];

	sprintf(count, "%lu\n", (unsigned long)buf_len(json));
	write_all(fd, count, strlen(count));
	write_all(fd, buf_ptr(json), buf_len(json));
}

/* ---- json.dumps, ensure_ascii ---------------------------------------------- */

static void
put_u(struct buf *b, unsigned long u)
{
	char e[24];

	sprintf(e, "\\u%04lx", u);
	buf_append(b, e, 6);
}

/* UTF-8 text as a JSON string; returns the offset of the first byte that is
 * not UTF-8 (python's codec error), or -1 when all was valid */
static long
dump_string(struct buf *b, const unsigned char *s, size_t n)
{
	size_t i = 0, k, j;
	unsigned long c;

	buf_append(b, "\"", 1);
	while (i < n) {
		for (j = i; j < n && s[j] >= 0x20 && s[j] < 0x7F && s[j] != '"' && s[j] != '\\'; j++)
			;
		if (j > i) {   /* plain text in one piece */
			buf_append(b, s + i, j - i);
			i = j;
			continue;
		}
		c = s[i];
		k = c < 0x80 ? 0 : c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2 :
		    c >= 0xF0 && c <= 0xF4 ? 3 : 9;
		if (k == 9 || i + k >= n + (k ? 0 : 1))
			return (long)i;
		if (k)
			c &= 0x3F >> k;
		for (j = 1; j <= k; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return (long)i;
			c = (c << 6) | (s[i + j] & 0x3F);
		}
		i += k + 1;
		if (c == '"')
			buf_append(b, "\\\"", 2);
		else if (c == '\\')
			buf_append(b, "\\\\", 2);
		else if (c == '\n')
			buf_append(b, "\\n", 2);
		else if (c == '\r')
			buf_append(b, "\\r", 2);
		else if (c == '\t')
			buf_append(b, "\\t", 2);
		else if (c >= 0x20 && c < 0x7F) {
			char ch = (char)c;

			buf_append(b, &ch, 1);
		} else if (c < 0x10000) {
			put_u(b, c);
		} else {
			put_u(b, 0xD800 + ((c - 0x10000) >> 10));
			put_u(b, 0xDC00 + ((c - 0x10000) & 0x3FF));
		}
	}
	buf_append(b, "\"", 1);
	return -1;
}

static void
answer_error(int fd, const char *text, size_t n)
{
	struct buf b;

	buf_init(&b, (size_t)-1);
	buf_append(&b, "{\"success\": false, \"error\": ", 28);
	dump_string(&b, (const unsigned char *)text, n);
	buf_append(&b, "}", 1);
	write_frame(fd, &b);
	buf_free(&b);
}

/* ---- the server ------------------------------------------------------------ */

static int
is_command(const char *name, char *path, size_t len)
{
	snprintf(path, len, "%s/%s", commands_dir, name);
	return access(path, F_OK) == 0;
}

static void
serve_list(int fd)
{
	struct buf b;
	char cmd[600], line[300];
	FILE *ls;
	int first = 1;

	buf_init(&b, (size_t)-1);
	buf_append(&b, "{\"success\": true, \"result\": [", 29);
	/* python lists a set: any order; this lists it reversed */
	snprintf(cmd, sizeof cmd, "ls -r '%s'", commands_dir);
	if ((ls = popen(cmd, "r")) != NULL) {
		while (fgets(line, sizeof line, ls)) {
			line[strcspn(line, "\n")] = '\0';
			if (!first)
				buf_append(&b, ", ", 2);
			dump_string(&b, (unsigned char *)line, strlen(line));
			first = 0;
		}
		pclose(ls);
	}
	buf_append(&b, "]}", 2);
	write_frame(fd, &b);
	buf_free(&b);
}

/* run argv with input (or /dev/null), stdout captured; returns the status */
static int
run(char **argv, int one_word, const struct json *input, struct buf *out)
{
	int inp[2], outp[2], status;
	char chunk[8192];
	pid_t pid;
	ssize_t n;

	if (pipe(inp) < 0 || pipe(outp) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		if (input) {
			dup2(inp[0], 0);
		} else {
			int nul = open("/dev/null", O_RDONLY);

			dup2(nul, 0);
		}
		dup2(outp[1], 1);
		close(inp[0]);
		close(inp[1]);
		close(outp[0]);
		close(outp[1]);
		if (guest_name)
			setenv("NEGOTIATOR_GUEST", guest_name, 1);
		if (one_word)   /* python: bash -c PATH */
			execl("/bin/sh", "sh", "-c", argv[0], (char *)NULL);
		else
			execv(argv[0], argv);
		_exit(127);
	}
	close(inp[0]);
	close(outp[1]);
	if (input && input->len) {
		/* small inputs only block a moment; big ones: a writer process */
		if (fork() == 0) {
			close(outp[0]);
			write_all(inp[1], input->str, input->len);
			_exit(0);
		}
	}
	close(inp[1]);
	while ((n = read(outp[0], chunk, sizeof chunk)) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			buf_append(out, chunk, (size_t)n);
	close(outp[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	return status;
}

static void
serve_execute(int fd, const struct json *args, const struct json *kw)
{
	const struct json *a, *input = kw ? json_get(kw, "input") : NULL;
	char path[4096], *argv[64], msg[300];
	const char *name;
	struct buf out, b, e;
	int argc = 0, status, code;
	long bad;

	if (!args || args->type != J_ARRAY || !args->child) {
		answer_error(fd, "tuple index out of range", 24);
		return;
	}
	for (a = args->child; a; a = a->next) {
		if (a->type != J_STRING) {
			strcpy(msg, "expected str, bytes or os.PathLike object, not int");
			answer_error(fd, msg, strlen(msg));
			return;
		}
		if (argc < 63)
			argv[argc++] = a->str;
	}
	argv[argc] = NULL;
	if (input && input->type != J_STRING) {
		strcpy(msg, "memoryview: a bytes-like object is required, not 'int'");
		answer_error(fd, msg, strlen(msg));
		return;
	}
	name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	buf_init(&e, (size_t)-1);
	if (!is_command(name, path, sizeof path)) {
		buf_append(&e, "External command isn't available!\n\nCommand:\n", 44);
		buf_append(&e, path, strlen(path));
		buf_append(&e, "\n\nSearch path:\n['/usr/bin', '/bin']", 35);
		answer_error(fd, (char *)buf_ptr(&e), buf_len(&e));
		buf_free(&e);
		return;
	}
	argv[0] = path;
	buf_init(&out, (size_t)-1);
	status = run(argv, argc == 1, input, &out);
	code = WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
	if (code != 0) {
		if (code == 127) {
			buf_append(&e, "External command isn't available!", 33);
		} else {
			sprintf(msg, "External command failed with exit code %d!", code);
			buf_append(&e, msg, strlen(msg));
		}
		buf_append(&e, "\n\nCommand:\n", 11);
		if (argc == 1)
			buf_append(&e, "bash -c ", 8);
		buf_append(&e, path, strlen(path));
		if (buf_len(&out)) {
			buf_append(&e, "\n\nStandard output:\n", 19);
			buf_append(&e, buf_ptr(&out), buf_len(&out));
		}
		answer_error(fd, (char *)buf_ptr(&e), buf_len(&e));
	} else {
		const unsigned char *s = buf_ptr(&out);
		size_t st = 0, en = buf_len(&out);

		while (st < en && strchr(" \t\n\r\v\f", s[st]))
			st++;
		while (en > st && strchr(" \t\n\r\v\f", s[en - 1]))
			en--;
		buf_init(&b, (size_t)-1);
		buf_append(&b, "{\"success\": true, \"result\": ", 28);
		if (memchr(s + st, '\n', en - st))
			st = 0, en = buf_len(&out);
		bad = dump_string(&b, s + st, en - st);
		buf_append(&b, "}", 1);
		if (bad >= 0) {
			sprintf(msg, "'utf-8' codec can't decode byte 0x%02x in position %ld: "
			        "invalid start byte", s[st + (size_t)bad], bad);
			answer_error(fd, msg, strlen(msg));
		} else {
			write_frame(fd, &b);
		}
		buf_free(&b);
	}
	buf_free(&out);
	buf_free(&e);
}

/* bytes already there behind a request: python 3 would silently lose them */
static void
check_lockstep(int fd)
{
	struct pollfd p;

	p.fd = fd;
	p.events = POLLIN;
	if (poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) {
		char c;

		if (recv(fd, &c, 1, MSG_PEEK) == 1)
			violation("bytes sent before the answer to the previous request", NULL);
	}
}

static void
serve(const char *sock)
{
	const struct json *m, *args, *kw;
	unsigned char *req;
	struct json *j;
	const char *why;
	char text[300];
	size_t n;
	int fd;

	for (;;) {
		while ((fd = connect_to(sock)) < 0)
			usleep(50000);
		while ((req = read_frame(fd, &n)) != NULL) {
			check_lockstep(fd);
			if (!(j = json_parse(req, n, &why)))
				violation("Failed to decode message from remote side as JSON: ",
				          (char *)req);
			m = json_get(j, "method");
			if (j->type != J_OBJECT || !m)
				violation("a request that is not an object with a method: ", (char *)req);
			args = json_get(j, "args");
			kw = json_get(j, "kw");
			say("request %s%s", (char *)req, "");
			if (m->type == J_STRING && strcmp(m->str, "list_commands") == 0) {
				if (kw && kw->child) {
					snprintf(text, sizeof text, "NegotiatorInterface.list_commands() got "
					         "an unexpected keyword argument '%s'", kw->child->key);
					answer_error(fd, text, strlen(text));
				} else if (args && args->child) {
					strcpy(text, "NegotiatorInterface.list_commands() takes 1 positional "
					       "argument but 2 were given");
					answer_error(fd, text, strlen(text));
				} else {
					serve_list(fd);
				}
			} else if (m->type == J_STRING && strcmp(m->str, "execute") == 0) {
				serve_execute(fd, args, kw);
			} else {
				snprintf(text, sizeof text, "Method %.200s not supported",
				         m->type == J_STRING ? m->str : "?");
				answer_error(fd, text, strlen(text));
			}
			json_free(j);
			free(req);
		}
		close(fd);    /* EOF: no host (virtio), or the worker's socket closed */
	}
}

/* ---- the CLIs -------------------------------------------------------------- */

static int
strcmp_ptr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
call(const char *sock, const char *input_file, char **words)
{
	struct buf req, in;
	const struct json *ok, *r, *x;
	unsigned char *ans;
	struct json *j;
	const char *why;
	size_t n;
	int fd, i, rc = 0, list = strcmp(words[0], "list") == 0;

	buf_init(&req, (size_t)-1);
	if (list) {
		buf_append(&req, "{\"method\": \"list_commands\", \"args\": [], \"kw\": {}}", 49);
	} else {
		buf_append(&req, "{\"method\": \"execute\", \"args\": [", 31);
		for (i = 1; words[i]; i++) {
			if (i > 1)
				buf_append(&req, ", ", 2);
			dump_string(&req, (unsigned char *)words[i], strlen(words[i]));
		}
		buf_append(&req, "], \"kw\": {\"capture\": true", 25);
		if (input_file) {
			char chunk[8192];
			ssize_t k;
			int f = open(input_file, O_RDONLY);

			buf_init(&in, (size_t)-1);
			while (f >= 0 && (k = read(f, chunk, sizeof chunk)) > 0)
				buf_append(&in, chunk, (size_t)k);
			if (f >= 0)
				close(f);
			buf_append(&req, ", \"input\": ", 11);
			if (dump_string(&req, buf_ptr(&in), buf_len(&in)) >= 0) {
				say("input is not UTF-8%s%s", "", "");
				exit(1);
			}
			buf_free(&in);
		}
		buf_append(&req, "}}", 2);
	}
	while ((fd = connect_to(sock)) < 0)
		usleep(50000);
	write_frame(fd, &req);
	buf_free(&req);
	if (!(ans = read_frame(fd, &n)))
		violation("the connection closed without an answer", NULL);
	check_lockstep(fd);
	if (!(j = json_parse(ans, n, &why)))
		violation("Failed to decode message from remote side as JSON: ", (char *)ans);
	ok = json_get(j, "success");
	if (!ok)
		violation("KeyError: 'success' in ", (char *)ans);
	if (!json_truthy(ok)) {
		r = json_get(j, "error");
		if (!r || r->type != J_STRING)
			violation("KeyError: 'error' in ", (char *)ans);
		fprintf(stderr, "RemoteMethodFailed: %s\n", r->str);
		rc = 1;
		goto out;
	}
	r = json_get(j, "result");
	if (!r)
		violation("KeyError: 'result' in ", (char *)ans);
	if (list) {
		char *names[4096];
		size_t k = 0;

		if (r->type != J_ARRAY)
			violation("list_commands result is not a list: ", (char *)ans);
		for (x = r->child; x && k < 4096; x = x->next) {
			if (x->type != J_STRING)
				violation("a command name that is not a string: ", (char *)ans);
			names[k++] = x->str;
		}
		qsort(names, k, sizeof *names, strcmp_ptr);
		for (i = 0; (size_t)i < k; i++)
			printf("%s\n", names[i]);
	} else {
		size_t e;

		if (r->type != J_STRING)
			violation("AttributeError: execute result is not a string: ", (char *)ans);
		for (e = r->len; e > 0 && strchr(" \t\n\r\v\f", r->str[e - 1]); e--)
			;
		fwrite(r->str, 1, e, stdout);
		printf("\n");
	}
out:
	json_free(j);
	free(ans);
	close(fd);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *input = NULL;
	int i = 3, timeout = 20;

	if (argc < 3)
		goto usage;
	while (i < argc && argv[i][0] == '-' && argv[i][1] == '-' && i + 1 < argc) {
		if (strcmp(argv[i], "--commands") == 0)
			commands_dir = argv[i + 1];
		else if (strcmp(argv[i], "--guest") == 0)
			guest_name = argv[i + 1];
		else if (strcmp(argv[i], "--log") == 0)
			log_path = argv[i + 1];
		else if (strcmp(argv[i], "--input") == 0)
			input = argv[i + 1];
		else if (strcmp(argv[i], "--timeout") == 0)
			timeout = atoi(argv[i + 1]);
		else
			goto usage;
		i += 2;
	}
	if (log_path && !(logf = fopen(log_path, "a")))
		return 4;
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(argv[1], "serve") == 0 && i == argc) {
		serve(argv[2]);
		return 0;
	}
	if (strcmp(argv[1], "call") == 0 && i < argc &&
	    (strcmp(argv[i], "list") == 0 || (strcmp(argv[i], "exec") == 0 && i + 1 < argc)))
	{
		alarm((unsigned)timeout);   /* python's CLI: 10 s by default */
		return call(argv[2], input, argv + i);
	}
usage:
	fprintf(stderr, "usage: pypeer serve SOCKET [--commands DIR] [--guest NAME] [--log FILE]\n"
	        "       pypeer call SOCKET [--input FILE] [--timeout S] list | exec WORD...\n");
	return 2;
}
