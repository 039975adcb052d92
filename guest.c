/*
 * guest.c: negotiator-guest.  As a daemon it owns both virtio ports: it
 * serves the host's requests arriving on host-to-guest and forwards local
 * clients' requests over guest-to-host.  As a client it asks the daemon, or
 * opens the guest-to-host port itself when no daemon runs.
 *
 * A virtio port reads EOF while no host is connected and select() then
 * reports it readable forever: we keep it open, stop selecting it for
 * reading and wait for the host.  Kernels from 2.6.37 on send SIGIO when
 * the host connects; 2.6.35/2.6.36 accept O_ASYNC but never send it (the
 * flag does not stick, which is how we tell).  There the port is selected
 * for writing instead: it turns writable when the host connects.  A probe
 * with a bounded back-off stands behind both.
 */
#include "negotiator.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif
#ifndef O_ASYNC
#define O_ASYNC FASYNC
#endif

#define PROBE_INTERVAL  5000   /* SIGIO: look at a port with no host this often */
#define BACKOFF_MIN      100   /* no SIGIO: first look after the host left, */
#define BACKOFF_MAX     5000   /* ... doubling up to this, in case the port's
                                  turning writable went unnoticed (each
                                  wakeup costs: 2.6.35 charges about a
                                  jiffy to a task woken by a timer) */
#define PROBE_SLACK      200   /* a look due this soon is taken now: both
                                  ports are looked at in one wakeup */
#define REOPEN_INTERVAL 1000   /* retry opening or connecting a port */

struct port {
	const char *name;            /* virtio port name */
	const char *given;           /* path from the command line, or NULL */
	char path[PATH_MAX];         /* what we opened */
	int is_unix;                 /* "unix:PATH": a socket, for tests */
	int complained;              /* logged that it cannot be opened */
	int absent;                  /* no such port (yet) */
	int no_multiport;            /* ... and no virtio-serial port at all */
	int sigio;                   /* SIGIO on host connect: 1, 0, -1 unknown */
	long backoff;                /* ms to the next look, without SIGIO */
	char tried[1024];            /* where it was looked for, when not found */
	struct link link;
};

static struct port ports[2];   /* host-to-guest, guest-to-host */
static int sigio_seen;
static long wait_ports;        /* --wait-ports: seconds, 0 = forever */
static mtime_t waiting_since;  /* a port was first missing */
static int waiting;            /* ... and we said so */

#define NO_MULTIPORT_HINT \
	"no virtio-serial port at all: is virtio_console loaded? Named ports need a " \
	"multiport virtio_console (Linux 2.6.35 or later, or a backport such as RHEL 6's)"

/* ---- finding and opening ports --------------------------------------------------- */

/* Test hook: NEGOTIATOR_SYSROOT=DIR looks for DIR/sys/... and DIR/dev/...
 * instead of /sys and /dev (see vport.c). */
static const char *
sysroot(void)
{
	const char *r = getenv("NEGOTIATOR_SYSROOT");

	return r ? r : "";
}

static int
resolve(struct port *p)
{
	const char *g = p->given;
	int rc;

	if (g && strncmp(g, "unix:", 5) == 0) {
		p->is_unix = 1;
		g += 5;
	}
	if (g)
		return strlcpy(p->path, g, sizeof p->path) < sizeof p->path ? 0 : -1;
	rc = vport_find(sysroot(), p->name, p->path, sizeof p->path, p->tried,
	                sizeof p->tried);
	p->absent = rc < 0;
	p->no_multiport = rc == -2;
	return rc < 0 ? -1 : 0;
}

/* -1 with errno (EBUSY: another process has it), or an open nonblocking
 * descriptor */
static int
open_port(struct port *p)
{
	int fd;

	if (resolve(p) < 0) {
		errno = ENOENT;
		return -1;
	}
	if (p->is_unix)
		return unix_connect(p->path);
	fd = compat_open(p->path, O_RDWR | O_NOCTTY, CX_CLOEXEC | CX_NONBLOCK);
	if (fd < 0) {
		if (vport_busy(errno))
			errno = EBUSY;
		return -1;
	}
	p->sigio = fcntl(fd, F_SETOWN, getpid()) < 0 ? 0 : -1;
	return fd;
}

/* SIGIO tells us when the host connects.  Only wanted while waiting for
 * it: with a host there, a signal per arriving chunk is pure overhead.
 * The first time it is asked for, reading the flag back tells whether
 * this kernel supports it at all. */
static void
want_sigio(struct port *p, int on)
{
	static int said;
	int fl, fd = p->link.fd;

	if (p->is_unix || p->sigio == 0 || (fl = fcntl(fd, F_GETFL)) < 0)
		return;
	if (fcntl(fd, F_SETFL, on ? fl | O_ASYNC : fl & ~O_ASYNC) < 0)
		p->sigio = 0;
	else if (on && p->sigio < 0)
		p->sigio = (fl = fcntl(fd, F_GETFL)) >= 0 && (fl & O_ASYNC) ? 1 : 0;
	if (p->sigio == 0 && !said++)
		logit("this kernel sends no SIGIO for virtio ports: waiting for a port "
		      "to turn writable instead (and looking every %d s at most)", BACKOFF_MAX / 1000);
}

static void
complain(const struct port *p)
{
	warn("%s: unable to open %s: %s%s", p->link.name, p->path, strerror(errno),
	     errno == EBUSY ? " (another process has it open); will retry" : "; will retry");
}

static void
try_open(struct port *p, mtime_t now)
{
	int fd = open_port(p);

	p->link.retry_at = now + REOPEN_INTERVAL;
	if (fd < 0) {
		if (!p->absent && !p->complained++)
			complain(p);
		return;
	}
	if (p->complained)
		logit("%s: opened %s", p->link.name, p->path);
	p->complained = 0;
	debug("%s: opened %s", p->link.name, p->path);
	link_attach(&p->link, fd);
}

/* Ports may appear only a moment after boot (2.6.35: after the control
 * queue handshake), so a daemon started early waits for them: one line
 * when it starts waiting, one when they are there, and with --wait-ports
 * a clear end. */
static void
watch_missing(mtime_t now)
{
	char names[2 * MAX_NAME + 8];
	const struct port *first = NULL;
	int i;

	names[0] = '\0';
	for (i = 0; i < 2; i++)
		if (ports[i].link.fd < 0 && ports[i].absent) {
			if (!first)
				first = &ports[i];
			else
				strlcpy(names + strlen(names), " and ", sizeof names - strlen(names));
			strlcpy(names + strlen(names), ports[i].name, sizeof names - strlen(names));
		}
	if (!first) {
		if (waiting)
			logit("virtio ports found after %lu ms", (unsigned long)(now - waiting_since));
		waiting = 0;
		return;
	}
	if (!waiting++) {
		waiting_since = now;
		warn("waiting for the virtio port%s %s to appear, looking every %d s%s; "
		     "tried %s%s%s", strchr(names, ' ') ? "s" : "", names, REOPEN_INTERVAL / 1000,
		     wait_ports ? "" : " for ever", first->tried,
		     first->no_multiport ? "; " : "", first->no_multiport ? NO_MULTIPORT_HINT : "");
	}
	if (wait_ports > 0 && !TIME_BEFORE(now, waiting_since + (mtime_t)wait_ports * 1000UL))
		fatal("the virtio port%s %s did not appear within %ld s (--wait-ports); tried %s%s%s",
		      strchr(names, ' ') ? "s" : "", names, wait_ports, first->tried,
		      first->no_multiport ? "; " : "", first->no_multiport ? NO_MULTIPORT_HINT : "");
}

/* Is the port's host still away?  poll() says POLLHUP until the kernel has
 * the host's "port open" event, which may come after the host's first
 * bytes: read() then hands those over and reads 0 (EOF) right after, and
 * what we answered in between would be lost with the session. */
static int
host_away(int fd)
{
	struct pollfd pfd;

	pfd.fd = fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP);
}

/* A paused port: has the host come back?  read() answers without
 * blocking: 0 = still no host, EAGAIN = host there, data = host there
 * (unless poll() says the host is away: the data waits for it). */
static void
probe_port(struct port *p, mtime_t now)
{
	unsigned char tmp[4096];
	ssize_t n = host_away(p->link.fd) ? 0 : read(p->link.fd, tmp, sizeof tmp);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
		if (p->sigio) {
			p->link.retry_at = now + PROBE_INTERVAL;
			return;
		}
		/* writable and still no host: do not spin on that, back off */
		if (p->link.woke)
			p->link.pause_wake = 0;
		p->link.woke = 0;
		p->backoff = p->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : p->backoff * 2;
		p->link.retry_at = now + (mtime_t)p->backoff;
		daemon_touch_link(&p->link);   /* what it waits for changed */
		return;
	}
	debug("%s: host connected", p->link.name);
	want_sigio(p, 0);
	link_attach(&p->link, p->link.fd);
	if (n > 0)
		buf_append(&p->link.in, tmp, (size_t)n);
}

/* ---- daemon hooks ------------------------------------------------------------------ */

static mtime_t
guest_tick(mtime_t now)
{
	mtime_t next = now + 3600000UL;
	int i, woke = sigio_seen;

	sigio_seen = 0;
	for (i = 0; i < 2; i++) {
		struct port *p = &ports[i];

		if (p->link.fd < 0 && !TIME_BEFORE(now, p->link.retry_at))
			try_open(p, now);
		else if (p->link.paused && (woke || p->link.woke ||
		                            !TIME_BEFORE(now + PROBE_SLACK, p->link.retry_at)))
			probe_port(p, now);
		if ((p->link.fd < 0 || p->link.paused) && TIME_BEFORE(p->link.retry_at, next))
			next = p->link.retry_at;
	}
	watch_missing(now);
	return next;
}

static void
guest_lost(struct link *l)
{
	struct port *p = l == &ports[0].link ? &ports[0] : &ports[1];

	if (p->is_unix) {
		link_detach(l);
		l->retry_at = now_ms() + REOPEN_INTERVAL;
		return;
	}
	/* EOF on a virtio port means "no host": keep it, wait for the host */
	want_sigio(p, 1);
	l->paused = 1;
	if (p->sigio) {
		l->retry_at = now_ms() + PROBE_INTERVAL;
	} else {
		l->pause_wake = 1;
		p->backoff = BACKOFF_MIN;
		l->retry_at = now_ms() + BACKOFF_MIN;
	}
}

static struct link *
guest_route(const char *target, char *why, size_t whylen)
{
	struct link *l = &ports[1].link;

	if (target[0]) {
		snprintf(why, whylen, "a guest has one host: no target expected");
		return NULL;
	}
	/* no such port: no use waiting; not open yet (a daemon that just
	 * started, a busy port): the call waits for the session, briefly */
	if (l->fd < 0 && ports[1].absent) {
		snprintf(why, whylen, "the guest-to-host port %s does not exist", ports[1].name);
		return NULL;
	}
	return l;
}

static void
guest_signal(int sig)
{
	if (sig == SIGIO)
		sigio_seen = 1;
}

static const struct daemon_hooks guest_hooks = {
	guest_tick, guest_lost, guest_route, NULL, guest_signal, NULL, NULL, NULL
};

/* ---- command line ------------------------------------------------------------------ */

enum { O_VERSION = 256, O_H2G, O_G2H, O_COMMANDS, O_CONTROL, O_MODE, O_GROUP, O_WAIT, O_CHECK };

static const struct opt_spec options[] = {
	{ "list-commands", 'l', 0 }, { "execute", 'e', 1 }, { "timeout", 't', 1 },
	{ "daemon", 'd', 0 }, { "character-device", 'c', 1 }, { "verbose", 'v', 0 },
	{ "quiet", 'q', 0 }, { "help", 'h', 0 }, { "version", O_VERSION, 0 },
	{ "host-to-guest", O_H2G, 1 }, { "guest-to-host", O_G2H, 1 },
	{ "commands-dir", O_COMMANDS, 1 }, { "control-socket", O_CONTROL, 1 },
	{ "control-mode", O_MODE, 1 }, { "control-group", O_GROUP, 1 },
	{ "wait-ports", O_WAIT, 1 }, { "check", O_CHECK, 0 }, LOG_OPTION_SPECS,
	{ NULL, 0, 0 }
};

static void
usage(void)
{
	printf("Usage: negotiator-guest [OPTIONS]\n"
	       "\n"
	       "Run commands on the KVM/QEMU host (through negotiator-host) and serve the\n"
	       "host's requests to run commands in this guest.\n"
	       "\n"
	       "  -l, --list-commands        list the commands the host offers to its guests\n"
	       "  -e, --execute=COMMAND      run COMMAND on the host: its stdout/stderr are\n"
	       "                             streamed here, stdin is forwarded when it is not a\n");
	printf("                             terminal, and the exit status is the command's\n"
	       "  -t, --timeout=SECONDS      give up after SECONDS (default 10, 0 = never)\n"
	       "  -d, --daemon               run the guest daemon (in the foreground)\n");
	printf("      --check                diagnose this guest's setup (driver, ports and\n"
	       "                             who holds them, daemon, commands directories):\n"
	       "                             one \"ok:\" or \"problem: ...; fix: ...\" line each;\n"
	       "                             exit 0 when all is well, 1 on any problem\n");
	printf("  -c, --character-device=PATH  the port this mode opens (as python did):\n"
	       "                             with -d the host-to-guest port, with -l or -e the\n"
	       "                             guest-to-host port\n"
	       "      --guest-to-host=PATH   port for requests to the host (default: found in\n");
	printf("                             /sys/class/virtio-ports, /dev/virtio-ports or\n"
	       "                             debugfs by the name %s)\n"
	       "      --host-to-guest=PATH   port for the host's requests (by name\n"
	       "                             %s)\n"
	       "                             (a PATH of unix:SOCKET connects to a UNIX socket)\n"
	       "      --commands-dir=DIR     where to look for commands (repeatable, first\n"
	       "                             wins;\n"
	       "                             default %s,\n"
	       "                             then %s)\n", PORT_G2H, PORT_H2G, USER_COMMANDS_DIR,
	       BUILTIN_COMMANDS_DIR);
	printf("      --control-socket=PATH  the daemon's socket for local clients (default\n"
	       "                             %s; clients\n"
	       "                             try /var/run/negotiator-guest.sock, then their\n"
	       "                             own)\n", default_control_path("guest"));
	printf("      --wait-ports=SECONDS   a daemon started before its ports exist waits for\n"
	       "                             them; give up after SECONDS (default 0: for ever)\n");
	printf("      --control-mode=MODE    permissions of that socket (default 0600: owner\n"
	       "                             only)\n"
	       "      --control-group=GROUP  group of that socket (with --control-mode 0660)\n"
	       "  -v, --verbose              more messages (twice: trace every frame)\n"
	       "  -q, --quiet                errors only\n");
	printf("      --log-file=PATH        log lines to PATH (appended, with time and pid)\n"
	       "                             instead of stderr; reopened on SIGHUP\n"
	       "      --syslog, --no-syslog  log to syslog too, or not (default: -d does,\n"
	       "                             the other modes do not)\n"
	       "      --syslog-facility=NAME daemon (default), user, local0 to local7\n"
	       "      --pid-file=PATH        with -d: the daemon's pid, written once it\n"
	       "                             listens, removed when it stops\n");
	printf("  -h, --help                 show this help\n"
	       "      --version              show the version\n");
	cli_exit_codes();
}

static int
run_daemon(const char *control, int mode, const char *group)
{
	int i;

	commands_dir_defaults();
	for (i = 0; i < 2; i++) {
		link_init(&ports[i].link, LINK_CHANNEL, -1,
		          i == 0 ? "host-to-guest" : "guest-to-host");
		ports[i].link.retry_at = now_ms();
		daemon_add_link(&ports[i].link);
	}
	ports[0].link.serves = 1;
	ports[1].link.calls = 1;
	link_set_server(&ports[0].link);
	link_set_caller(&ports[1].link);
	ports[0].link.sibling = &ports[1].link;
	ports[1].link.sibling = &ports[0].link;
	daemon_listen(control ? control : default_control_path("guest"), mode, group);
	return daemon_run(&guest_hooks);
}

/* No daemon: open the guest-to-host port ourselves; it is busy while
 * another process has it, so retry until the timeout. */
static int
open_direct(struct port *p, long timeout)
{
	mtime_t end = now_ms() + (mtime_t)timeout * 1000UL;
	int fd;

	for (;;) {
		fd = open_port(p);
		if (fd >= 0)
			return fd;
		if (errno != EBUSY || (timeout > 0 && !TIME_BEFORE(now_ms(), end)))
			break;
		sleep_ms(100);
	}
	if (!p->path[0])
		error("unable to find the virtio port %s (is the channel configured and "
		      "virtio_console loaded?); tried %s%s%s", p->name, p->tried,
		      p->no_multiport ? "; " : "", p->no_multiport ? NO_MULTIPORT_HINT : "");
	else if (errno == EACCES || errno == EPERM) {
		char hint[600];
		const char *why = strerror(errno);

		access_hint(p->path, hint, sizeof hint);
		error("unable to open %s: %s (%s); run as root, or call through the guest "
		      "daemon (negotiator-guest -d, as root), whose socket its "
		      "--control-group may open to a group", p->path, why, hint);
	} else
		error("unable to open %s: %s%s", p->path, strerror(errno),
		      errno == EBUSY ? " (another process has it open)" : "");
	return -1;
}

/* -c PATH, python-negotiator's meaning: the port that mode opens itself,
 * the host-to-guest port for the daemon (which serves on it), else the
 * guest-to-host port.  Our daemon also opens the other one, by name. */
static void
character_device(const char *path, int daemon)
{
	struct port *p = &ports[daemon ? 0 : 1];

	if (p->given)
		usage_error("give -c or %s, not both (with%s -d, -c is the %s port)",
		            daemon ? "--host-to-guest" : "--guest-to-host", daemon ? "" : "out",
		            p->name);
	p->given = path;
}

int
main(int argc, char **argv)
{
	struct opt_state st;
	struct client_req req;
	const char *control = NULL, *command = NULL, *group = NULL, *chardev = NULL;
	int key, daemon = 0, list = 0, check = 0, mode = 0600, fd, rc, show = 0;

	std_fds_guard();
	log_open("negotiator-guest", 0);
	commands_side = "guest";
	memset(&st, 0, sizeof st);
	memset(&req, 0, sizeof req);
	req.timeout = 10;
	ports[0].name = PORT_H2G;
	ports[1].name = PORT_G2H;
	trace_from_env();
	while ((key = opt_next(argc, argv, options, &st)) != 0) {
		switch (key) {
		case 'l': list = 1; break;
		case 'e': command = st.arg; break;
		case 'd': daemon = 1; break;
		case O_CHECK: check = 1; break;
		case 'c': chardev = st.arg; break;
		case O_G2H: ports[1].given = st.arg; break;
		case O_H2G: ports[0].given = st.arg; break;
		case 'v': if (log_level < LOG_LVL_TRACE) log_level++; break;
		case 'q': log_level = LOG_LVL_ERROR; break;
		case 'h': show = 'h'; break;
		case O_VERSION: show = 'V'; break;
		case O_COMMANDS: commands_dir_add(st.arg); break;
		case O_CONTROL: control = st.arg; break;
		case O_MODE: mode = cli_mode(st.arg); break;
		case O_GROUP: group = st.arg; break;
		case 't': req.timeout = cli_seconds("timeout", st.arg); break;
		case O_WAIT: wait_ports = cli_seconds("wait-ports", st.arg); break;
		default: cli_log_option(key, st.arg); break;
		}
	}
	if (show)
		return cli_show(show, &st, usage);
	if (st.noperands)
		usage_error("unexpected argument: %s", st.operands[0]);
	if (daemon + list + check + (command != NULL) == 0) {
		usage();    /* as python-negotiator: the usage, and success */
		return 0;
	}
	if (daemon + list + check + (command != NULL) > 1)
		usage_error("give only one of -d, -l, -e, --check");
	if (daemon_pid_file && !daemon)
		usage_error("--pid-file goes with -d");
	if (chardev)
		character_device(chardev, daemon);
	if (log_start(daemon) < 0)
		return EXIT_AGENT;
	if (check) {
		const char *given[2];

		given[0] = ports[0].given;
		given[1] = ports[1].given;
		return guest_check(sysroot(), given, control);
	}
	if (daemon)
		return run_daemon(control, mode, group);
	req.op = command ? OP_EXEC : OP_LIST;
	req.target = "";
	if (command)
		req.argv = cli_command(command);
	fd = control_connect(control, "guest");
	if (fd < 0) {
		fd = open_direct(&ports[1], req.timeout);
		if (fd < 0) {
			control_missing(control, "guest");
			free_argv(req.argv);
			return EXIT_AGENT;
		}
		req.direct = 1;
		req.eof_means_wait = !ports[1].is_unix;
	}
	rc = client_run(fd, &req);
	free_argv(req.argv);
	return rc;
}
