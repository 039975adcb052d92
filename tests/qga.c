/*
 * tests/qga.c: a tiny benchmark client for the official QEMU guest agent
 * (qemu-ga), so that negotiator can be measured against it in the same guest.
 * It speaks qemu-ga's JSON protocol over a UNIX stream socket: the host side
 * of the org.qemu.guest_agent.0 virtio port, or `qemu-ga -m unix-listen -p
 * SOCKET` run as a plain process.  No JSON library: a small scanner that
 * understands just enough of qemu-ga's replies, and its own base64.
 *
 *   qga SOCKET ping N
 *       N guest-ping round trips; one latency per line, in microseconds.
 *   qga SOCKET exec N PATH [ARG...]
 *       N times guest-exec (no output capture) and guest-exec-status polls
 *       until "exited"; one latency per line in microseconds (guest-exec
 *       sent -> exit seen).  Exit 1 if any run's exit code is not 0.
 *   qga SOCKET output PATH [ARG...]
 *       one guest-exec with output capture; prints
 *       `bytes=B seconds=S truncated=0|1 exitcode=N` (B: decoded stdout
 *       bytes; S: guest-exec sent -> final status reply fully received).
 *   qga SOCKET input PATH FILE [ARG...]
 *       one guest-exec with FILE as "input-data", no output capture (FILE
 *       of up to about 47.9 MiB: qemu-ga refuses requests over 64 MiB, and
 *       base64 takes 4 bytes for 3); prints
 *       `bytes=B seconds=S exitcode=N` (B: bytes of FILE).
 *
 * Environment: QGA_POLL_US, microseconds between guest-exec-status polls
 * (default 0 for exec, 1000 for output and input); QGA_TIMEOUT, seconds to
 * wait for qemu-ga to read or answer before giving up (default 30, 0 never).
 * Latencies are whole microseconds.  A process killed by signal S is reported
 * as exit code 128+S; output and input exit 0 whatever that code (it is in
 * their line).  On leaving, it half-closes and drains the socket: qemu-ga 7.2
 * in unix-listen mode exits if a client closes with replies unread.
 *
 * It starts with guest-sync-delimited, preceded by a 0xFF byte, and throws
 * away everything up to qemu-ga's 0xFF sentinel: the host side of a virtio
 * port may hold stale bytes from an earlier client.
 *
 * Errors: one line `qga: error: ...` on stderr, exit 1 (a qemu-ga "error"
 * reply included, with its desc).  Usage: exit 2.
 *
 * Build: cc -std=c89 -O2 -o qga tests/qga.c   (add -lrt on glibc < 2.17)
 */
#define _XOPEN_SOURCE 600
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REPLY_MAX	(64UL << 20)	/* longest reply line we accept */
#define REQUEST_MAX	(64UL << 20)	/* qemu-ga's own limit on a request */
#define INPUT_MAX	(48UL << 20)	/* files we read at all; REQUEST_MAX decides */
#define NESTING_MAX	64

static const char *const usage_text[] = {
	"usage: qga SOCKET ping N",
	"       qga SOCKET exec N PATH [ARG...]",
	"       qga SOCKET output PATH [ARG...]",
	"       qga SOCKET input PATH FILE [ARG...]",
	"Benchmark client for qemu-ga (the QEMU guest agent) on a UNIX socket.",
	"  ping    N guest-ping round trips; prints each latency in microseconds",
	"  exec    N x guest-exec (no capture) + guest-exec-status polls until it",
	"          exited; prints each latency in microseconds; exit 1 if any",
	"          exit code is not 0",
	"  output  one guest-exec capturing stdout; prints",
	"          bytes=B seconds=S truncated=0|1 exitcode=N",
	"  input   one guest-exec with FILE (up to ~47.9 MiB) as input-data",
	"          (no capture); prints bytes=B seconds=S exitcode=N",
	"Environment: QGA_POLL_US  microseconds between status polls",
	"                          (default: exec 0, output and input 1000)",
	"             QGA_TIMEOUT  seconds to wait for qemu-ga (default 30, 0 never)",
	"Errors: `qga: error: ...` on stderr, exit 1; bad usage: exit 2.",
	NULL
};

static long io_timeout_ms = 30000;	/* QGA_TIMEOUT */
static long poll_us;			/* QGA_POLL_US */
struct conn;
static void conn_close(struct conn *);
static struct conn *open_conn;		/* closed cleanly by die() too */

/* ---- errors and memory ---------------------------------------------------- */

static void
die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("qga: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (open_conn != NULL)
		conn_close(open_conn);
	exit(1);
}

static void
usage(int to_stdout)
{
	int i;

	for (i = 0; usage_text[i] != NULL; i++)
		fprintf(to_stdout ? stdout : stderr, "%s\n", usage_text[i]);
	exit(2);
}

static void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (p == NULL)
		die("out of memory (%lu bytes)", (unsigned long)n);
	return p;
}

/* A printable, bounded copy of some reply bytes, for error messages. */
static const char *
preview(const char *s, size_t n)
{
	static char out[204];
	size_t i, o = 0;

	for (i = 0; i < n && o < 200; i++) {
		unsigned char ch = (unsigned char)s[i];

		out[o++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	if (i < n) {
		out[o++] = '.';
		out[o++] = '.';
		out[o++] = '.';
	}
	out[o] = '\0';
	return out;
}

/* ---- time ------------------------------------------------------------------ */

static double
now_us(void)
{
#ifdef CLOCK_MONOTONIC
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0)
		return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
#endif
	{
		struct timeval tv;

		gettimeofday(&tv, NULL);
		return (double)tv.tv_sec * 1e6 + (double)tv.tv_usec;
	}
}

static void
sleep_us(long us)
{
	struct timespec ts;

	ts.tv_sec = us / 1000000L;
	ts.tv_nsec = (us % 1000000L) * 1000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- numbers from the command line and the environment --------------------- */

/* A decimal integer in [min, max], or -1 if s is not one. */
static long
parse_num(const char *s, long min, long max)
{
	long v = 0;

	if (s == NULL || *s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (max - (*s - '0')) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v < min ? -1 : v;
}

static long
env_num(const char *name, long def, long max)
{
	const char *s = getenv(name);
	long v;

	if (s == NULL || *s == '\0')
		return def;
	v = parse_num(s, 0, max);
	if (v < 0)
		die("%s must be a whole number from 0 to %ld, not \"%s\"", name, max, s);
	return v;
}

/* ---- the connection ----------------------------------------------------------- */

struct conn {
	int fd;
	char *buf;
	size_t cap, start, end, scan;	/* unread bytes: buf[start..end) */
};

static void
wait_io(int fd, short events)
{
	struct pollfd p;
	int r, ms = io_timeout_ms <= 0 ? -1 : io_timeout_ms > INT_MAX ? INT_MAX : (int)io_timeout_ms;

	for (;;) {
		p.fd = fd;
		p.events = events;
		p.revents = 0;
		r = poll(&p, 1, ms);
		if (r > 0)
			return;		/* ready, or an error that read/write will report */
		if (r == 0)
			die("qemu-ga did not %s within %ld s (QGA_TIMEOUT)",
			    events == POLLIN ? "answer" : "read our request", io_timeout_ms / 1000);
		if (errno != EINTR)
			die("poll: %s", strerror(errno));
	}
}

static void
conn_open(struct conn *c, const char *path)
{
	struct sockaddr_un sa;
	int fl;

	memset(&sa, 0, sizeof sa);
	if (strlen(path) >= sizeof sa.sun_path)
		die("socket path too long: %s", path);
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (c->fd < 0)
		die("socket: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("cannot connect to %s: %s", path, strerror(errno));
	fl = fcntl(c->fd, F_GETFL);
	if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0)
		die("fcntl: %s", strerror(errno));
	c->cap = 65536;
	c->buf = xrealloc(NULL, c->cap);
	c->start = c->end = c->scan = 0;
	open_conn = c;
}

/*
 * Half-closes and drains until qemu-ga closes its end too: closing with
 * replies unread makes the kernel reset the connection, and qemu-ga (7.2, in
 * unix-listen mode) exits on the resulting read error.
 */
static void
conn_close(struct conn *c)
{
	char junk[4096];
	double end = now_us() + 1e6;

	open_conn = NULL;
	if (shutdown(c->fd, SHUT_WR) == 0) {
		for (;;) {
			ssize_t n = read(c->fd, junk, sizeof junk);
			double left;
			struct pollfd p;

			if (n > 0 || (n < 0 && errno == EINTR))
				continue;
			if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
				break;
			if ((left = end - now_us()) <= 0)
				break;
			p.fd = c->fd;
			p.events = POLLIN;
			p.revents = 0;
			if (poll(&p, 1, (int)(left / 1000) + 1) < 0 && errno != EINTR)
				break;
		}
	}
	close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
}

static void
send_all(struct conn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(c->fd, p, n);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			wait_io(c->fd, POLLOUT);
		} else if (w < 0 && errno != EINTR) {
			die("write to qemu-ga: %s", strerror(errno));
		}
	}
}

/* Reads more bytes into the buffer, growing it up to REPLY_MAX. */
static void
fill(struct conn *c)
{
	if (c->start == c->end) {
		c->start = c->end = c->scan = 0;
	} else if (c->end == c->cap && c->start > 0) {
		memmove(c->buf, c->buf + c->start, c->end - c->start);
		c->end -= c->start;
		c->scan = c->scan > c->start ? c->scan - c->start : 0;
		c->start = 0;
	}
	if (c->end == c->cap) {
		size_t ncap;

		if (c->cap >= REPLY_MAX)
			die("reply from qemu-ga longer than %lu MiB", REPLY_MAX >> 20);
		ncap = c->cap > REPLY_MAX / 2 ? REPLY_MAX : c->cap * 2;
		c->buf = xrealloc(c->buf, ncap);
		c->cap = ncap;
	}
	for (;;) {
		ssize_t n = read(c->fd, c->buf + c->end, c->cap - c->end);

		if (n > 0) {
			c->end += (size_t)n;
			return;
		}
		if (n == 0)
			die("qemu-ga closed the connection");
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			wait_io(c->fd, POLLIN);
		else if (errno != EINTR)
			die("read from qemu-ga: %s", strerror(errno));
	}
}

/*
 * The next line (qemu-ga ends each reply with a newline), NUL-terminated in
 * place of the newline.  Valid until the next read.
 */
static char *
read_line(struct conn *c, size_t *lenp)
{
	for (;;) {
		char *nl = NULL, *line;

		if (c->scan < c->start)
			c->scan = c->start;
		if (c->end > c->scan)
			nl = memchr(c->buf + c->scan, '\n', c->end - c->scan);
		if (nl != NULL) {
			line = c->buf + c->start;
			*nl = '\0';
			*lenp = (size_t)(nl - line);
			c->start = c->scan = (size_t)(nl - c->buf) + 1;
			return line;
		}
		c->scan = c->end;
		fill(c);
	}
}

/* Throws away everything up to and including the next 0xFF byte. */
static void
skip_to_sentinel(struct conn *c)
{
	for (;;) {
		if (c->end > c->start) {
			char *p = memchr(c->buf + c->start, 0xFF, c->end - c->start);

			if (p != NULL) {
				c->start = c->scan = (size_t)(p - c->buf) + 1;
				return;
			}
			c->start = c->scan = c->end;
		}
		fill(c);
	}
}

/* ---- a minimal JSON scanner ----------------------------------------------------- */

struct field {
	const char *name;
	char *v, *ve;		/* the member's value, [v, ve); NULL if absent */
};

static char *
skip_ws(char *p, char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

/* p at the opening quote; returns just past the closing one, or NULL. */
static char *
skip_string(char *p, char *e)
{
	for (p++; p < e; p++) {
		if (*p == '"')
			return p + 1;
		if (*p == '\\' && ++p == e)
			return NULL;
	}
	return NULL;
}

/* Returns just past the value at p, or NULL if it is malformed. */
static char *
skip_value(char *p, char *e, int depth)
{
	char close;

	p = skip_ws(p, e);
	if (p >= e)
		return NULL;
	if (*p == '"')
		return skip_string(p, e);
	if (*p == '{' || *p == '[') {
		close = *p == '{' ? '}' : ']';
		if (depth >= NESTING_MAX)
			return NULL;
		p = skip_ws(p + 1, e);
		if (p < e && *p == close)
			return p + 1;
		for (;;) {
			if (close == '}') {
				if (p >= e || *p != '"' || (p = skip_string(p, e)) == NULL)
					return NULL;
				p = skip_ws(p, e);
				if (p >= e || *p != ':')
					return NULL;
				p++;
			}
			if ((p = skip_value(p, e, depth + 1)) == NULL)
				return NULL;
			p = skip_ws(p, e);
			if (p >= e)
				return NULL;
			if (*p == close)
				return p + 1;
			if (*p != ',')
				return NULL;
			p = skip_ws(p + 1, e);
		}
	}
	{	/* number or literal: checked when it is used */
		char *q = p;

		while (q < e && ((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'z') ||
		    (*q >= 'A' && *q <= 'Z') || *q == '-' || *q == '+' || *q == '.'))
			q++;
		return q > p ? q : NULL;
	}
}

/*
 * Scans the object at p (up to e) in one pass and records the values of the
 * members named in f[0..n).  Returns just past the object, or NULL.
 */
static char *
scan_object(char *p, char *e, struct field *f, int n)
{
	int i;

	for (i = 0; i < n; i++)
		f[i].v = f[i].ve = NULL;
	p = skip_ws(p, e);
	if (p >= e || *p != '{')
		return NULL;
	p = skip_ws(p + 1, e);
	if (p < e && *p == '}')
		return p + 1;
	for (;;) {
		char *k, *ke, *v;

		if (p >= e || *p != '"')
			return NULL;
		k = p + 1;
		if ((p = skip_string(p, e)) == NULL)
			return NULL;
		ke = p - 1;
		p = skip_ws(p, e);
		if (p >= e || *p != ':')
			return NULL;
		v = skip_ws(p + 1, e);
		if ((p = skip_value(v, e, 1)) == NULL)
			return NULL;
		for (i = 0; i < n; i++)
			if (strlen(f[i].name) == (size_t)(ke - k) &&
			    memcmp(f[i].name, k, (size_t)(ke - k)) == 0) {
				f[i].v = v;
				f[i].ve = p;
			}
		p = skip_ws(p, e);
		if (p >= e)
			return NULL;
		if (*p == '}')
			return p + 1;
		if (*p != ',')
			return NULL;
		p = skip_ws(p + 1, e);
	}
}

static int
get_long(const char *v, const char *ve, long *out)
{
	unsigned long x = 0, lim = LONG_MAX;
	int neg = 0;

	if (v == NULL)
		return -1;
	if (v < ve && *v == '-') {
		neg = 1;
		lim = (unsigned long)LONG_MAX + 1;
		v++;
	}
	if (v >= ve)
		return -1;
	for (; v < ve; v++) {
		if (*v < '0' || *v > '9' || x > (lim - (unsigned long)(*v - '0')) / 10)
			return -1;
		x = x * 10 + (unsigned long)(*v - '0');
	}
	if (!neg)
		*out = (long)x;
	else if (x == (unsigned long)LONG_MAX + 1)
		*out = LONG_MIN;
	else
		*out = -(long)x;
	return 0;
}

/* 1 true, 0 false, -1 neither */
static int
get_bool(const char *v, const char *ve)
{
	if (v != NULL && ve - v == 4 && memcmp(v, "true", 4) == 0)
		return 1;
	if (v != NULL && ve - v == 5 && memcmp(v, "false", 5) == 0)
		return 0;
	return -1;
}

/* The raw (still escaped) contents of a string value. */
static int
get_string(char *v, char *ve, char **s, size_t *n)
{
	if (v == NULL || ve - v < 2 || *v != '"' || ve[-1] != '"')
		return -1;
	*s = v + 1;
	*n = (size_t)(ve - v) - 2;
	return 0;
}

static int
hex4(const char *s, size_t n, unsigned long *u)
{
	int i;

	if (n < 4)
		return -1;
	*u = 0;
	for (i = 0; i < 4; i++) {
		char ch = s[i];
		int d;

		if (ch >= '0' && ch <= '9')
			d = ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			d = ch - 'a' + 10;
		else if (ch >= 'A' && ch <= 'F')
			d = ch - 'A' + 10;
		else
			return -1;
		*u = *u << 4 | (unsigned long)d;
	}
	return 0;
}

/*
 * Decodes the JSON escapes of s[0..n) in place (the result is never longer;
 * \uXXXX becomes UTF-8).  Returns -1 on a malformed escape.
 */
static int
json_unescape(char *s, size_t n, size_t *outn)
{
	size_t i = 0, o = 0;

	while (i < n) {
		unsigned long u, lo;
		char ch = s[i++];

		if (ch != '\\') {
			s[o++] = ch;
			continue;
		}
		if (i >= n)
			return -1;
		switch (ch = s[i++]) {
		case '"': case '\\': case '/':
			s[o++] = ch;
			break;
		case 'b': s[o++] = '\b'; break;
		case 'f': s[o++] = '\f'; break;
		case 'n': s[o++] = '\n'; break;
		case 'r': s[o++] = '\r'; break;
		case 't': s[o++] = '\t'; break;
		case 'u':
			if (hex4(s + i, n - i, &u) < 0)
				return -1;
			i += 4;
			if (u >= 0xD800 && u < 0xDC00 && n - i >= 6 && s[i] == '\\' &&
			    s[i + 1] == 'u' && hex4(s + i + 2, n - i - 2, &lo) == 0 &&
			    lo >= 0xDC00 && lo < 0xE000) {
				u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
				i += 6;
			} else if (u >= 0xD800 && u < 0xE000) {
				u = 0xFFFD;
			}
			if (u < 0x80) {
				s[o++] = (char)u;
			} else if (u < 0x800) {
				s[o++] = (char)(0xC0 | u >> 6);
				s[o++] = (char)(0x80 | (u & 0x3F));
			} else if (u < 0x10000) {
				s[o++] = (char)(0xE0 | u >> 12);
				s[o++] = (char)(0x80 | (u >> 6 & 0x3F));
				s[o++] = (char)(0x80 | (u & 0x3F));
			} else {
				s[o++] = (char)(0xF0 | u >> 18);
				s[o++] = (char)(0x80 | (u >> 12 & 0x3F));
				s[o++] = (char)(0x80 | (u >> 6 & 0x3F));
				s[o++] = (char)(0x80 | (u & 0x3F));
			}
			break;
		default:
			return -1;
		}
	}
	*outn = o;
	return 0;
}

/* ---- base64 ------------------------------------------------------------------- */

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
b64val(int ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

/* Decodes s[0..n) in place.  Returns -1 if it is not base64. */
static int
b64_decode(char *s, size_t n, size_t *outn)
{
	size_t i, o = 0;
	unsigned long acc = 0;
	int bits = 0, pad = 0;

	for (i = 0; i < n; i++) {
		int v;

		if (s[i] == '=') {
			pad++;
			continue;
		}
		if (pad || (v = b64val((unsigned char)s[i])) < 0)
			return -1;
		acc = (acc << 6 | (unsigned long)v) & 0xFFFFFFUL;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			s[o++] = (char)(acc >> bits & 0xFF);
		}
	}
	if (pad > 2 || bits >= 6 || (pad && (n % 4) != 0))
		return -1;
	*outn = o;
	return 0;
}

/* ---- building requests ---------------------------------------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
};

static void
sb_reserve(struct sbuf *b, size_t more)
{
	size_t need, ncap;

	if (more > REQUEST_MAX - b->len)
		die("request longer than qemu-ga's limit of %lu MiB", REQUEST_MAX >> 20);
	need = b->len + more;
	if (need <= b->cap)
		return;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap = ncap > REQUEST_MAX / 2 ? REQUEST_MAX : ncap * 2;
	b->p = xrealloc(b->p, ncap);
	b->cap = ncap;
}

static void
sb_add(struct sbuf *b, const char *s, size_t n)
{
	sb_reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* s as a JSON string, quotes included */
static void
sb_json(struct sbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	sb_add(b, "\"", 1);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		char esc[6];

		if (ch == '"' || ch == '\\') {
			esc[0] = '\\';
			esc[1] = (char)ch;
			sb_add(b, esc, 2);
		} else if (ch < 0x20) {
			esc[0] = '\\';
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[ch >> 4];
			esc[5] = hex[ch & 15];
			sb_add(b, esc, 6);
		} else {
			sb_add(b, (const char *)&ch, 1);
		}
	}
	sb_add(b, "\"", 1);
}

static void
sb_b64(struct sbuf *b, const unsigned char *d, size_t n)
{
	size_t i, groups = n / 3 + (n % 3 != 0);
	char *o;

	if (groups > (REQUEST_MAX - b->len) / 4)
		die("request longer than qemu-ga's limit of %lu MiB", REQUEST_MAX >> 20);
	sb_reserve(b, groups * 4);
	o = b->p + b->len;
	for (i = 0; i + 2 < n; i += 3) {
		unsigned long x = (unsigned long)d[i] << 16 | (unsigned long)d[i + 1] << 8 | d[i + 2];

		*o++ = b64chars[x >> 18];
		*o++ = b64chars[x >> 12 & 63];
		*o++ = b64chars[x >> 6 & 63];
		*o++ = b64chars[x & 63];
	}
	if (i < n) {
		unsigned long x = (unsigned long)d[i] << 16 | (i + 1 < n ? (unsigned long)d[i + 1] << 8 : 0);

		*o++ = b64chars[x >> 18];
		*o++ = b64chars[x >> 12 & 63];
		*o++ = i + 1 < n ? b64chars[x >> 6 & 63] : '=';
		*o++ = '=';
	}
	b->len += groups * 4;
}

/* ---- the protocol ---------------------------------------------------------------- */

/* Dies with the desc of a qemu-ga "error" object. */
static void
die_qga_error(char *v, char *ve)
{
	struct field f[1];
	char *s = NULL;
	size_t n = 0, i;

	f[0].name = "desc";
	if (scan_object(v, ve, f, 1) == NULL || get_string(f[0].v, f[0].ve, &s, &n) < 0 ||
	    json_unescape(s, n, &n) < 0)
		die("qemu-ga: %s", preview(v, (size_t)(ve - v)));
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20)
			s[i] = ' ';
	if (n > 1000)
		n = 1000;
	die("qemu-ga: %.*s", (int)n, s);
}

/* The "return" value of a reply line; dies on an "error" reply. */
static void
reply_return(char *line, size_t len, char **v, char **ve)
{
	struct field f[2];
	char *e = line + len, *p;

	f[0].name = "return";
	f[1].name = "error";
	p = scan_object(line, e, f, 2);
	if (p == NULL || skip_ws(p, e) != e)
		die("malformed reply from qemu-ga: %s", preview(line, len));
	if (f[1].v != NULL)
		die_qga_error(f[1].v, f[1].ve);
	if (f[0].v == NULL)
		die("unexpected reply from qemu-ga: %s", preview(line, len));
	*v = f[0].v;
	*ve = f[0].ve;
}

/*
 * guest-sync-delimited, preceded by 0xFF to reset qemu-ga's parser; then
 * throws away input up to qemu-ga's 0xFF sentinel until the reply with our id.
 */
static void
sync_agent(struct conn *c)
{
	char req[128];
	long id = ((long)getpid() * 7919L + (long)(now_us() / 1000.0)) % 1000000000L, got;
	int stale = 0;

	if (id < 0)
		id = -id;
	sprintf(req, "\377{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":%ld}}\n", id);
	send_all(c, req, strlen(req));
	for (;;) {
		struct field f[2];
		char *line, *p;
		size_t len;

		skip_to_sentinel(c);
		line = read_line(c, &len);
		f[0].name = "return";
		f[1].name = "error";
		p = scan_object(line, line + len, f, 2);
		if (p != NULL && f[1].v != NULL)
			die_qga_error(f[1].v, f[1].ve);
		if (p != NULL && get_long(f[0].v, f[0].ve, &got) == 0 && got == id)
			return;
		if (++stale > 100)
			die("no reply to guest-sync-delimited among 100 stale ones");
	}
}

/* Sends a request and returns the "return" value of its reply. */
static void
call(struct conn *c, const char *req, size_t n, char **v, char **ve)
{
	char *line;
	size_t len;

	send_all(c, req, n);
	line = read_line(c, &len);
	reply_return(line, len, v, ve);
}

static void
build_exec(struct sbuf *b, char *path, char **args, int nargs, int capture,
    const unsigned char *input, size_t inlen, int has_input)
{
	int i;

	b->len = 0;
	sb_str(b, "{\"execute\":\"guest-exec\",\"arguments\":{\"path\":");
	sb_json(b, path);
	sb_str(b, ",\"arg\":[");
	for (i = 0; i < nargs; i++) {
		if (i > 0)
			sb_str(b, ",");
		sb_json(b, args[i]);
	}
	sb_str(b, capture ? "],\"capture-output\":true" : "],\"capture-output\":false");
	if (has_input) {
		sb_str(b, ",\"input-data\":\"");
		sb_b64(b, input, inlen);
		sb_str(b, "\"");
	}
	sb_str(b, "}}\n");
}

/* Sends a built guest-exec request; returns the pid. */
static long
start_exec(struct conn *c, struct sbuf *req)
{
	struct field f[1];
	char *v, *ve;
	long pid = 0;

	call(c, req->p, req->len, &v, &ve);
	f[0].name = "pid";
	if (scan_object(v, ve, f, 1) == NULL || get_long(f[0].v, f[0].ve, &pid) < 0)
		die("guest-exec reply without a pid: %s", preview(v, (size_t)(ve - v)));
	return pid;
}

struct status {
	long exitcode;		/* exit code, or 128 + signal */
	int truncated;
	char *out;		/* raw base64 of stdout, in the reply buffer */
	size_t outlen;
	double t_exited;	/* when the reply saying "exited" was received */
};

/* Polls guest-exec-status until the process has exited. */
static void
wait_exited(struct conn *c, long pid, struct status *st)
{
	char req[128];
	size_t reqlen;

	sprintf(req, "{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":%ld}}\n", pid);
	reqlen = strlen(req);
	for (;;) {
		struct field f[5];
		char *line, *v, *ve;
		size_t len;
		double t;
		int exited = 0;
		long n;

		send_all(c, req, reqlen);
		line = read_line(c, &len);
		t = now_us();
		reply_return(line, len, &v, &ve);
		f[0].name = "exited";
		f[1].name = "exitcode";
		f[2].name = "signal";
		f[3].name = "out-data";
		f[4].name = "out-truncated";
		if (scan_object(v, ve, f, 5) == NULL ||
		    (exited = get_bool(f[0].v, f[0].ve)) < 0)
			die("guest-exec-status reply without \"exited\": %s", preview(v, (size_t)(ve - v)));
		if (!exited) {
			if (poll_us > 0)
				sleep_us(poll_us);
			continue;
		}
		st->t_exited = t;
		if (get_long(f[1].v, f[1].ve, &n) == 0)
			st->exitcode = n;
		else if (get_long(f[2].v, f[2].ve, &n) == 0 && n >= 0 && n < 1000)
			st->exitcode = 128 + n;
		else
			die("guest-exec-status reply without exitcode or signal: %s",
			    preview(v, (size_t)(ve - v)));
		st->truncated = get_bool(f[4].v, f[4].ve) == 1;
		st->out = NULL;
		st->outlen = 0;
		if (f[3].v != NULL && get_string(f[3].v, f[3].ve, &st->out, &st->outlen) < 0)
			die("guest-exec-status: out-data is not a string");
		return;
	}
}

/* ---- the subcommands ----------------------------------------------------------------- */

static void
cmd_ping(struct conn *c, long n)
{
	static const char req[] = "{\"execute\":\"guest-ping\"}\n";
	long i;

	for (i = 0; i < n; i++) {
		char *v, *ve;
		double t0 = now_us();

		call(c, req, sizeof req - 1, &v, &ve);
		printf("%.0f\n", now_us() - t0);
	}
}

static int
cmd_exec(struct conn *c, long n, char *path, char **args, int nargs)
{
	struct sbuf req = { NULL, 0, 0 };
	struct status st;
	long i, failed = 0, last = 0;

	build_exec(&req, path, args, nargs, 0, NULL, 0, 0);
	for (i = 0; i < n; i++) {
		double t0 = now_us();

		wait_exited(c, start_exec(c, &req), &st);
		printf("%.0f\n", st.t_exited - t0);
		if (st.exitcode != 0) {
			failed++;
			last = st.exitcode;
		}
	}
	free(req.p);
	if (failed) {
		fflush(stdout);
		fprintf(stderr, "qga: error: %ld of %ld runs of %s exited non-zero (last exit code %ld)\n",
		    failed, n, path, last);
		return 1;
	}
	return 0;
}

static void
cmd_output(struct conn *c, char *path, char **args, int nargs)
{
	struct sbuf req = { NULL, 0, 0 };
	struct status st;
	size_t n = 0;
	double t0;

	build_exec(&req, path, args, nargs, 1, NULL, 0, 0);
	t0 = now_us();
	wait_exited(c, start_exec(c, &req), &st);
	if (st.out != NULL && (json_unescape(st.out, st.outlen, &n) < 0 ||
	    b64_decode(st.out, n, &n) < 0))
		die("guest-exec-status: out-data is not valid base64");
	printf("bytes=%lu seconds=%.6f truncated=%d exitcode=%ld\n",
	    (unsigned long)n, (st.t_exited - t0) / 1e6, st.truncated, st.exitcode);
	free(req.p);
}

/* The whole of FILE, read before we connect. */
static unsigned char *
read_file(const char *file, size_t *lenp)
{
	unsigned char *data = NULL;
	size_t len = 0, cap = 0;
	int fd = open(file, O_RDONLY);

	if (fd < 0)
		die("cannot open %s: %s", file, strerror(errno));
	for (;;) {
		ssize_t r;

		if (len == cap) {
			if (cap > INPUT_MAX)
				die("%s is larger than %lu MiB", file, INPUT_MAX >> 20);
			cap = cap ? cap * 2 : 65536;
			if (cap > INPUT_MAX + 1)
				cap = INPUT_MAX + 1;
			data = xrealloc(data, cap);
		}
		r = read(fd, data + len, cap - len);
		if (r == 0)
			break;
		if (r < 0 && errno != EINTR)
			die("read %s: %s", file, strerror(errno));
		if (r > 0)
			len += (size_t)r;
	}
	close(fd);
	if (len > INPUT_MAX)
		die("%s is larger than %lu MiB", file, INPUT_MAX >> 20);
	*lenp = len;
	return data;
}

static void
cmd_input(struct conn *c, char *path, unsigned char *data, size_t len, char **args, int nargs)
{
	struct sbuf req = { NULL, 0, 0 };
	struct status st;
	double t0;

	build_exec(&req, path, args, nargs, 0, data, len, 1);
	t0 = now_us();
	wait_exited(c, start_exec(c, &req), &st);
	printf("bytes=%lu seconds=%.6f exitcode=%ld\n",
	    (unsigned long)len, (st.t_exited - t0) / 1e6, st.exitcode);
	free(req.p);
}

int
main(int argc, char **argv)
{
	struct conn c;
	const char *cmd;
	unsigned char *input = NULL;
	size_t inlen = 0;
	long n = 0;
	int rc = 0;

	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		usage(1);
	if (argc < 4)
		usage(0);
	cmd = argv[2];
	if (strcmp(cmd, "ping") == 0) {
		if (argc != 4 || (n = parse_num(argv[3], 1, 100000000L)) < 0)
			usage(0);
	} else if (strcmp(cmd, "exec") == 0) {
		if (argc < 5 || (n = parse_num(argv[3], 1, 100000000L)) < 0)
			usage(0);
	} else if (strcmp(cmd, "input") == 0) {
		if (argc < 5)
			usage(0);
	} else if (strcmp(cmd, "output") != 0) {
		usage(0);
	}
	io_timeout_ms = env_num("QGA_TIMEOUT", 30, 86400L) * 1000L;
	poll_us = env_num("QGA_POLL_US", strcmp(cmd, "exec") == 0 ? 0 : 1000, 10000000L);
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(cmd, "input") == 0)
		input = read_file(argv[4], &inlen);

	conn_open(&c, argv[1]);
	sync_agent(&c);
	if (strcmp(cmd, "ping") == 0)
		cmd_ping(&c, n);
	else if (strcmp(cmd, "exec") == 0)
		rc = cmd_exec(&c, n, argv[4], argv + 5, argc - 5);
	else if (strcmp(cmd, "output") == 0)
		cmd_output(&c, argv[3], argv + 4, argc - 4);
	else
		cmd_input(&c, argv[3], input, inlen, argv + 5, argc - 5);
	conn_close(&c);
	free(input);
	if (fflush(stdout) != 0 || ferror(stdout))
		die("writing to standard output: %s", strerror(errno));
	return rc;
}
