/*
 * common.c: logging funnel, allocation wrappers that die, the bounded
 * buffer, monotonic time, descriptor and signal plumbing, name checks.
 */
#include "negotiator.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

const char *progname = "negotiator";
const char *commands_side = "local";

/* A program started with descriptor 0, 1 or 2 closed would hand that
 * number to its first open() or socket(): a CLI's control socket would
 * become its stdin, a daemon's log lines would land in a channel.  So the
 * gaps are filled with /dev/null before anything else is opened. */
void
std_fds_guard(void)
{
	int fd;

	do
		fd = open("/dev/null", O_RDWR);
	while (fd >= 0 && fd <= 2);
	if (fd > 2)
		close(fd);
	else if (fcntl(2, F_GETFD) < 0 || fcntl(0, F_GETFD) < 0 || fcntl(1, F_GETFD) < 0)
		_exit(EXIT_AGENT);    /* no /dev/null and a gap: nowhere safe to write */
}
int log_level = LOG_LVL_INFO;
static int log_syslog;            /* lines go to syslog too */
static int log_syslog_opt = -1;   /* --syslog 1, --no-syslog 0, neither -1 */
static int log_facility = LOG_DAEMON;
static const char *log_path;      /* --log-file */
static int log_fd = -1;           /* ... open: lines go there, not to stderr */

void
log_open(const char *prog, int use_syslog)
{
	progname = prog;
	log_syslog = log_syslog_opt >= 0 ? log_syslog_opt : use_syslog;
	if (log_syslog)
		openlog(prog, LOG_PID, log_facility);
}

void
log_want_syslog(int on)
{
	log_syslog_opt = on;
}

static const struct { const char *name; int facility; } facilities[] = {
	{ "daemon", LOG_DAEMON }, { "user", LOG_USER }, { "local0", LOG_LOCAL0 },
	{ "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 }, { "local6", LOG_LOCAL6 },
	{ "local7", LOG_LOCAL7 }
};

int
log_set_facility(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof facilities / sizeof facilities[0]; i++)
		if (strcmp(facilities[i].name, name) == 0) {
			log_facility = facilities[i].facility;
			return 0;
		}
	return -1;
}

void
log_set_file(const char *path)
{
	log_path = path;
}

/* Appended to, created 0640 (less the umask), never handed to a child. */
static int
log_file_open(void)
{
	int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_NOCTTY, 0640);

	if (fd >= 0 && set_cloexec(fd) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

int
log_start(int is_daemon)
{
	log_open(progname, is_daemon);
	if (!log_path)
		return 0;
	log_fd = log_file_open();
	if (log_fd < 0) {
		error("unable to open the log file %s: %s", log_path, strerror(errno));
		return -1;
	}
	return 0;
}

/* SIGHUP: the file may have been moved away (logrotate); a new one at
 * the same path takes the lines from now on.  When it cannot be opened
 * the lines go on into the old one, after a line that says why. */
void
log_reopen(void)
{
	int fd;

	if (log_fd < 0)
		return;
	fd = log_file_open();
	if (fd < 0) {
		error("unable to reopen the log file %s: %s; still writing to the one open",
		      log_path, strerror(errno));
		return;
	}
	close(log_fd);
	log_fd = fd;
	debug("log file %s reopened", log_path);
}

/* All of p written to fd, waiting where fd is nonblocking and full (a
 * client makes a pipe on stdout nonblocking, and stderr may be the same
 * pipe): a log line is not cut or lost for EAGAIN.  But a reader that
 * takes nothing for LOG_WAIT_MS does not stop a daemon for good: the
 * line is dropped then.  -1 on an error. */
#define LOG_WAIT_MS 10000
static int
write_all_wait(int fd, const char *p, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t w = write(fd, p + done, n - done);

		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pf;
			int r;

			pf.fd = fd;
			pf.events = POLLOUT;
			pf.revents = 0;
			if ((r = poll(&pf, 1, LOG_WAIT_MS)) == 0 || (r < 0 && errno != EINTR))
				return -1;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		done += (size_t)w;
	}
	return 0;
}

/* "2026-12-03 10:00:00 negotiator-host[123]: error: LINE\n" in one
 * write(), so that lines of the daemon and its children (the virsh
 * worker) never mix; a line the file does not take goes to stderr. */
static int
log_to_file(const char *tag, const char *line)
{
	char out[1400], stamp[32];
	time_t t = time(NULL);
	struct tm *tm = localtime(&t);
	size_t n;

	if (!tm || !strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", tm))
		strlcpy(stamp, "0000-00-00 00:00:00", sizeof stamp);
	n = (size_t)snprintf(out, sizeof out, "%s %s[%ld]: %s%s%s\n", stamp, progname,
	                     (long)getpid(), tag ? tag : "", tag ? ": " : "", line);
	if (n >= sizeof out) {
		n = sizeof out - 1;
		out[n - 1] = '\n';
	}
	return write_all_wait(log_fd, out, n);
}

/* The one place log lines are written: stderr (or the --log-file), and
 * syslog for daemons (or as --syslog, --no-syslog say).  errno is
 * preserved so callers can log before reporting it. */
static void
log_line(int level, const char *tag, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG, LOG_DEBUG };
	char line[1024];
	int saved = errno;

	if (level > log_level) {
		errno = saved;
		return;
	}
	vsnprintf(line, sizeof line, fmt, ap);
	if (log_fd < 0 || log_to_file(tag, line) < 0) {
		char out[1200];
		int n = snprintf(out, sizeof out, "%s: %s%s%s\n", progname, tag ? tag : "",
		                 tag ? ": " : "", line);

		if (n >= (int)sizeof out) {
			n = (int)sizeof out - 1;
			out[n - 1] = '\n';
		}
		fflush(stderr);   /* anything stdio holds for it goes first */
		if (n > 0)
			write_all_wait(2, out, (size_t)n);
	}
	if (log_syslog)
		syslog(prio[level], "%s%s%s", tag ? tag : "", tag ? ": " : "", line);
	errno = saved;
}

static const char *const level_tags[] = { "error", "warning", NULL, "debug", "trace" };

void
log_at(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line(level, level_tags[level], fmt, ap);
	va_end(ap);
}

#define LOG_FN(fn, level, tag)                   \
	void fn(const char *fmt, ...)            \
	{                                        \
		va_list ap;                      \
		va_start(ap, fmt);               \
		log_line(level, tag, fmt, ap);   \
		va_end(ap);                      \
	}

LOG_FN(error, LOG_LVL_ERROR, "error")
LOG_FN(warn, LOG_LVL_WARN, "warning")
LOG_FN(logit, LOG_LVL_INFO, NULL)
LOG_FN(debug, LOG_LVL_DEBUG, "debug")
LOG_FN(trace, LOG_LVL_TRACE, "trace")

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (log_level < LOG_LVL_ERROR)
		log_level = LOG_LVL_ERROR;
	log_line(LOG_LVL_ERROR, "error", fmt, ap);
	va_end(ap);
	exit(EXIT_AGENT);
}

/* "SIGKILL" for 9: the POSIX signals by this system's numbers (a remote
 * command's signal comes from a peer of the same kind: Linux both sides),
 * else "signal N" in buf (at least 24 bytes). */
const char *
signal_name(int sig, char *buf)
{
	static const struct { int sig; const char *name; } names[] = {
		{ SIGHUP, "SIGHUP" }, { SIGINT, "SIGINT" }, { SIGQUIT, "SIGQUIT" },
		{ SIGILL, "SIGILL" }, { SIGTRAP, "SIGTRAP" }, { SIGABRT, "SIGABRT" },
		{ SIGBUS, "SIGBUS" }, { SIGFPE, "SIGFPE" }, { SIGKILL, "SIGKILL" },
		{ SIGUSR1, "SIGUSR1" }, { SIGSEGV, "SIGSEGV" }, { SIGUSR2, "SIGUSR2" },
		{ SIGPIPE, "SIGPIPE" }, { SIGALRM, "SIGALRM" }, { SIGTERM, "SIGTERM" },
		{ SIGCHLD, "SIGCHLD" }, { SIGCONT, "SIGCONT" }, { SIGSTOP, "SIGSTOP" },
		{ SIGTSTP, "SIGTSTP" }, { SIGTTIN, "SIGTTIN" }, { SIGTTOU, "SIGTTOU" },
		{ SIGURG, "SIGURG" }, { SIGXCPU, "SIGXCPU" }, { SIGXFSZ, "SIGXFSZ" },
		{ SIGVTALRM, "SIGVTALRM" }, { SIGPROF, "SIGPROF" }, { SIGSYS, "SIGSYS" }
	};
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].sig == sig)
			return names[i].name;
	sprintf(buf, "signal %d", sig);
	return buf;
}

const char *
escape_text(char *dst, size_t dstlen, const void *src, size_t len)
{
	const unsigned char *s = src;
	size_t i, o = 0;

	for (i = 0; i < len && o + 5 < dstlen; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
			dst[o++] = (char)s[i];
		else
			o += (size_t)snprintf(dst + o, dstlen - o, "\\x%02x", s[i]);
	}
	if (i < len && o + 4 < dstlen)
		o += strlcpy(dst + o, "...", dstlen - o);
	dst[o] = '\0';
	return dst;
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		fatal("out of memory (%lu bytes)", (unsigned long)n);
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p;

	if (size && n > (size_t)-1 / size)
		fatal("out of memory (overflow)");
	p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		fatal("out of memory (%lu bytes)", (unsigned long)(n * size));
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		fatal("out of memory (%lu bytes)", (unsigned long)n);
	return p;
}

char *
xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

/* ---- the bounded buffer ------------------------------------------------ */

void
buf_init(struct buf *b, size_t limit)
{
	b->data = NULL;
	b->start = b->end = b->cap = 0;
	b->limit = limit;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b, b->limit);
}

size_t
buf_len(const struct buf *b)
{
	return b->end - b->start;
}

/* An empty buffer may have no memory yet, and NULL + 0 is undefined in C
 * (and so is passing NULL to memcpy() even for 0 bytes): it points here. */
static unsigned char buf_nothing[1];

unsigned char *
buf_ptr(const struct buf *b)
{
	return b->data ? b->data + b->start : buf_nothing;
}

unsigned char *
buf_reserve(struct buf *b, size_t n)
{
	size_t len = buf_len(b), want;

	if (n > b->limit - len)
		return NULL;
	if (b->cap - b->end >= n)
		return b->data + b->end;
	if (b->start > 0) {                 /* slide the contents down first */
		memmove(b->data, b->data + b->start, len);
		b->start = 0;
		b->end = len;
		if (b->cap - b->end >= n)
			return b->data + b->end;
	}
	want = b->cap ? b->cap : 4096;
	while (want - len < n)
		want *= 2;
	if (want > b->limit)
		want = b->limit;
	b->data = xrealloc(b->data, want);
	b->cap = want;
	return b->data + b->end;
}

void
buf_commit(struct buf *b, size_t n)
{
	b->end += n;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	unsigned char *d;

	if (n == 0)
		return 0;   /* p may be NULL, and b may have no memory yet */
	d = buf_reserve(b, n);
	if (!d)
		return -1;
	memcpy(d, p, n);
	b->end += n;
	return 0;
}

size_t
buf_tail_room(const struct buf *b)
{
	return b->cap - b->end;
}

void
buf_consume(struct buf *b, size_t n)
{
	b->start += n;
	if (b->start == b->end)
		b->start = b->end = 0;
}

/* An empty buffer that had grown large gives its memory back, so an idle
 * daemon stays small after a big transfer.  Not done in buf_consume(): a
 * stream drains its buffers many times a second, and a large block freed
 * and allocated again each time costs an munmap, an mmap and a page fault
 * per page (most of the guest daemon's CPU time under emulation). */
void
buf_trim(struct buf *b)
{
	if (b->start == b->end && b->cap > 65536) {
		free(b->data);
		b->data = NULL;
		b->start = b->end = b->cap = 0;
	}
}

/* An idle link's buffers: nothing kept (a host with a thousand idle
 * guests would otherwise hold four blocks for each). */
void
buf_release(struct buf *b)
{
	if (b->start == b->end && b->data) {
		free(b->data);
		b->data = NULL;
		b->start = b->end = b->cap = 0;
	}
}

void
buf_clear(struct buf *b)
{
	buf_consume(b, buf_len(b));
}

ssize_t
buf_read_fd(struct buf *b, int fd, size_t max)
{
	unsigned char *d;
	ssize_t n;

	if (max > b->limit - buf_len(b))
		max = b->limit - buf_len(b);
	if (max == 0)
		return -2;
	d = buf_reserve(b, max);
	if (!d)
		return -2;
	do
		n = read(fd, d, max);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		b->end += (size_t)n;
	return n;
}

ssize_t
buf_write_fd(struct buf *b, int fd, size_t max)
{
	ssize_t n;
	size_t len = buf_len(b);

	if (max > len)
		max = len;
	if (max == 0)
		return 0;
	do
		n = write(fd, buf_ptr(b), max);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		buf_consume(b, (size_t)n);
	return n;
}

/* Data for fd: written at once where nothing waits in q before it (no
 * copy, no round of the loop), the rest appended to q.  After an error
 * other than EAGAIN all of it is queued, for the caller's drain to meet
 * the error again.  Returns the bytes written, -1 (errno) after such an
 * error, -2 when q cannot take the rest. */
ssize_t
buf_write_or_queue(struct buf *q, int fd, const void *p, size_t n)
{
	ssize_t w = 0;
	int e = 0;

	if (buf_len(q) == 0 && n > 0) {
		do
			w = write(fd, p, n);
		while (w < 0 && errno == EINTR);
		if (w < 0) {
			e = errno == EAGAIN || errno == EWOULDBLOCK ? 0 : errno;
			w = 0;
		}
	}
	if ((size_t)w < n && buf_append(q, (const unsigned char *)p + w, n - (size_t)w) < 0)
		return -2;
	if (e) {
		errno = e;
		return -1;
	}
	return w;
}

static int
cmp_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void
buf_put_sorted_lines(struct buf *b, char **names, size_t n)
{
	size_t i;

	if (n > 1)
		qsort(names, n, sizeof *names, cmp_strings);
	for (i = 0; i < n; i++) {
		buf_append(b, names[i], strlen(names[i]));
		buf_append(b, "\n", 1);
	}
}

/* ---- time ---------------------------------------------------------------- */

mtime_t
now_ms(void)
{
	return clock_monotonic_ms();
}

/* usleep() left POSIX in 2008; nanosleep() is everywhere */
void
sleep_ms(long ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

/* ---- descriptors (set_nonblock() and set_cloexec(): compat/compat.c) ------ */

int
make_pipe(int fds[2])
{
	return compat_pipe2(fds, CX_CLOEXEC | CX_NONBLOCK);
}

/* ---- signals: the self-pipe trick ---------------------------------------- */

static int sigpipe_fds[2] = { -1, -1 };

static void
sig_catch(int sig)
{
	unsigned char c = (unsigned char)sig;
	int saved = errno;

	if (write(sigpipe_fds[1], &c, 1) < 0) {
		/* pipe full: a byte for this signal is likely already queued */
	}
	errno = saved;
}

void
sig_setup(const int *sigs)
{
	struct sigaction sa;

	if (sigpipe_fds[0] < 0 && make_pipe(sigpipe_fds) < 0)
		fatal("unable to create the signal pipe: %s", strerror(errno));
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = sig_catch;
	for (; *sigs; sigs++)
		sigaction(*sigs, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

int
sig_fd(void)
{
	return sigpipe_fds[0];
}

int
sig_next(void)
{
	unsigned char c;

	if (sigpipe_fds[0] >= 0 && read(sigpipe_fds[0], &c, 1) == 1)
		return c;
	return 0;
}

void
sig_default_all(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGPIPE,
	                            SIGIO, SIGUSR1, SIGUSR2, SIGALRM, 0 };
	struct sigaction sa;
	sigset_t none;
	int i;

	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_DFL;
	for (i = 0; sigs[i]; i++)
		sigaction(sigs[i], &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* The nonce only has to differ between sessions; /dev/urandom when there,
 * else time and pid mixed.  Read 256 bytes at a time: a daemon makes one
 * per local client's connection, and three system calls each were a fair
 * part of what a command-line call costs it.  A forked child (pid
 * changed) reads its own. */
static int
urandom_bytes(unsigned char r[8])
{
	static unsigned char pool[256];
	static size_t left;
	static pid_t owner;
	int fd;

	if (owner != getpid())
		left = 0;
	if (left < 8) {
		fd = compat_open("/dev/urandom", O_RDONLY, CX_CLOEXEC);
		if (fd < 0)
			return 0;
		left = read(fd, pool, sizeof pool) == (ssize_t)sizeof pool ? sizeof pool : 0;
		close(fd);
		owner = getpid();
		if (left < 8)
			return 0;
	}
	left -= 8;
	memcpy(r, pool + left, 8);
	memset(pool + left, 0, 8);
	return 1;
}

void
random_nonce(char out[17])
{
	static unsigned long counter;
	unsigned char r[8];
	int i;

	if (!urandom_bytes(r)) {
		struct timeval tv;
		unsigned long x;

		gettimeofday(&tv, NULL);
		x = (unsigned long)tv.tv_usec * 2654435761UL ^ (unsigned long)tv.tv_sec ^
		    ((unsigned long)getpid() << 16) ^ ++counter * 40503UL;
		for (i = 0; i < 8; i++) {
			x = x * 1103515245UL + 12345UL;
			r[i] = (unsigned char)(x >> 16);
		}
	}
	for (i = 0; i < 8; i++) {
		out[2 * i] = "0123456789abcdef"[r[i] >> 4];
		out[2 * i + 1] = "0123456789abcdef"[r[i] & 15];
	}
	out[16] = '\0';
}

/* ---- select() sets of any size ------------------------------------------- */

#define WORD_BITS (8 * sizeof(unsigned long))

void
fdset_zero(struct fdset *s, int maxfd)
{
	int words = maxfd / (int)WORD_BITS + 1;

	if (words > s->words) {
		s->bits = xrealloc(s->bits, (size_t)words * sizeof(unsigned long));
		s->words = words;
	}
	memset(s->bits, 0, (size_t)s->words * sizeof(unsigned long));
}

void
fdset_add(struct fdset *s, int fd)
{
	s->bits[fd / WORD_BITS] |= 1UL << (fd % WORD_BITS);
}

int
fdset_has(const struct fdset *s, int fd)
{
	if (fd < 0 || fd / (int)WORD_BITS >= s->words)
		return 0;
	return (s->bits[fd / WORD_BITS] >> (fd % WORD_BITS)) & 1UL;
}

void
fdset_free(struct fdset *s)
{
	free(s->bits);
	s->bits = NULL;
	s->words = 0;
}

/* Linux and the BSDs accept fd_set arrays longer than FD_SETSIZE; the
 * bitmap layout (bit fd%NFDBITS of long fd/NFDBITS) is the kernel's own. */
int
select_sets(int nfds, struct fdset *r, struct fdset *w, long timeout_ms)
{
	struct timeval tv, *tvp = NULL;

	if (timeout_ms >= 0) {
		tv.tv_sec = timeout_ms / 1000;
		tv.tv_usec = (timeout_ms % 1000) * 1000;
		tvp = &tv;
	}
	return select(nfds, (fd_set *)(void *)r->bits, (fd_set *)(void *)w->bits, NULL, tvp);
}

/* ---- names ----------------------------------------------------------------- */

/* One path component of [A-Za-z0-9._+-], not starting with '.' or '-'. */
int
valid_command_name(const char *name, size_t len)
{
	size_t i;

	if (len == 0 || len > MAX_NAME || name[0] == '.' || name[0] == '-')
		return 0;
	for (i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '+' || c == '-'))
			return 0;
	}
	return 1;
}

/* Guest names come from file names in the channel directory: printable,
 * no slash, no whitespace, so they are safe in logs and environment. */
int
valid_guest_name(const char *name, size_t len)
{
	size_t i;

	if (len == 0 || len > MAX_NAME || name[0] == '.')
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c <= 0x20 || c >= 0x7f || c == '/')
			return 0;
	}
	return 1;
}

static int
fill_sockaddr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if (strlcpy(sa->sun_path, path, sizeof sa->sun_path) >= sizeof sa->sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
unix_connect(const char *path)
{
	struct sockaddr_un sa;
	int fd, saved;

	if (fill_sockaddr(&sa, path) < 0)
		return -1;
	fd = compat_socket(AF_UNIX, SOCK_STREAM, CX_CLOEXEC);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	if (set_nonblock(fd) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* "name (uid N)" for messages, or "uid N" when the user has no name */
void
user_label(unsigned long uid, char *out, size_t outlen)
{
	struct passwd *pw = getpwuid((uid_t)uid);

	if (pw && pw->pw_name)
		snprintf(out, outlen, "%s (uid %lu)", pw->pw_name, uid);
	else
		snprintf(out, outlen, "uid %lu", uid);
}

/* Who may use path, for a "permission denied": "owner root, group kvm,
 * mode 0660" of path, or of the first directory on its way that this
 * user may not search ("directory /var/lib/x: owner ..."). */
void
access_hint(const char *path, char *out, size_t outlen)
{
	char dir[4096], owner[64], group[64], *slash;
	struct group *gr;
	struct passwd *pw;
	struct stat st;
	const char *what = path;
	int saved = errno;

	strlcpy(dir, path, sizeof dir);
	for (slash = strchr(dir + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (access(dir, X_OK) < 0 && errno == EACCES) {
			what = dir;
			break;
		}
		*slash = '/';
	}
	if (stat(what, &st) < 0) {
		snprintf(out, outlen, "%s: %s", what, strerror(errno));
		errno = saved;
		return;
	}
	if ((pw = getpwuid(st.st_uid)) != NULL)
		strlcpy(owner, pw->pw_name, sizeof owner);
	else
		snprintf(owner, sizeof owner, "uid %lu", (unsigned long)st.st_uid);
	if ((gr = getgrgid(st.st_gid)) != NULL)
		strlcpy(group, gr->gr_name, sizeof group);
	else
		snprintf(group, sizeof group, "gid %lu", (unsigned long)st.st_gid);
	snprintf(out, outlen, "%s%s: owner %s, group %s, mode %04o", what == path ? "" :
	         "directory ", what, owner, group, (unsigned)(st.st_mode & 07777));
	errno = saved;
}

/* Bind with a restrictive umask so the socket is never briefly wider
 * than asked, then set the mode exactly. */
int
unix_listen(const char *path, int mode)
{
	struct sockaddr_un sa;
	struct stat st;
	mode_t old;
	int fd, saved, rc;

	if (fill_sockaddr(&sa, path) < 0)
		return -1;
	fd = compat_socket(AF_UNIX, SOCK_STREAM, CX_CLOEXEC | CX_NONBLOCK);
	if (fd < 0)
		return -1;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			close(fd);
			errno = EEXIST;   /* never delete what is not a stale socket */
			return -1;
		}
		if (st.st_uid != geteuid()) {
			close(fd);
			errno = EPERM;    /* nor another user's socket */
			return -1;
		}
		unlink(path);
	}
	old = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (rc < 0 || chmod(path, (mode_t)mode) < 0 || listen(fd, 64) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

int
parse_seconds(const char *s, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > 86400L * 365)
		return -1;
	*out = v;
	return 0;
}

void
free_argv(char **argv)
{
	char **a;

	if (!argv)
		return;
	for (a = argv; *a; a++)
		free(*a);
	free(argv);
}
