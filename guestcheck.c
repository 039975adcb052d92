/*
 * guestcheck.c: negotiator-guest --check.  Looks at this guest's setup and
 * prints one line per finding on stdout, "ok: WHAT" or "problem: WHAT;
 * fix: HOW", in this order:
 *   1. the virtio_console driver (ROOT/sys/bus/virtio/drivers/virtio_console;
 *      when missing, whether a module for the running kernel is there);
 *   2. multiport support and the two named ports (vport_find());
 *   3. for each port found, who has it open (ROOT/proc/PID/fd/N), or
 *      whether it can be opened: a port takes one opener at a time;
 *   4. whether a daemon answers on the control socket;
 *   5. the commands directories.
 * Without the driver the port lines are left out: they would only repeat
 * it.  ROOT is NEGOTIATOR_SYSROOT's test hook ("" on a real system).  Text
 * read from the file system (process command lines, paths) is printed
 * escaped.
 */
#include "negotiator.h"

#include <sys/stat.h>
#include <sys/utsname.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

#define MAX_HOLDERS 4          /* processes named for one port */

#define HOST_FIX \
	"on the host, print the two channels with negotiator-host --libvirt-xml GUEST, " \
	"add them inside <devices> with virsh edit GUEST, then shut the guest down " \
	"fully and start it again (virsh shutdown GUEST; virsh start GUEST): a reboot " \
	"does not add devices"
#define START_FIX \
	"start it with whichever this guest uses: systemctl start negotiator-guest, " \
	"/etc/init.d/negotiator-guest start, start negotiator-guest (upstart), " \
	"supervisorctl start negotiator-guest (service files in " \
	"PREFIX/share/negotiator)"

static int problems;

static void
finding(int bad, const char *fmt, ...)
{
	char line[3072];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	printf("%s: %s\n", bad ? "problem" : "ok", line);
	problems += bad;
}

/* s escaped for a line of output (each call of a statement needs its own dst) */
static const char *
esc(char *dst, size_t dstlen, const char *s)
{
	return escape_text(dst, dstlen, s, strlen(s));
}

static int
is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int
all_digits(const char *s)
{
	if (!*s)
		return 0;
	while (*s >= '0' && *s <= '9')
		s++;
	return *s == '\0';
}

/* ---- 1. the driver -------------------------------------------------------------- */

/* the running kernel's release: ROOT/proc/sys/kernel/osrelease, else uname() */
static void
kernel_release(const char *root, char *rel, size_t len)
{
	char path[PATH_MAX];
	struct utsname u;

	snprintf(path, sizeof path, "%s/proc/sys/kernel/osrelease", root);
	if (vport_first_line(path, rel, len) == 0 && rel[0] && !strchr(rel, '/'))
		return;
	strlcpy(rel, uname(&u) == 0 ? u.release : "unknown", len);
}

/* a line of modules.dep naming virtio_console.ko*: its file, into out */
static int
module_from_dep(const char *root, const char *rel, char *out, size_t outlen)
{
	char path[PATH_MAX], line[1024], *colon, *base;
	FILE *f;
	int found = 0;

	snprintf(path, sizeof path, "%s/lib/modules/%s/modules.dep", root, rel);
	if (!(f = fopen(path, "r")))
		return 0;
	while (!found && fgets(line, sizeof line, f)) {
		if (!(colon = strchr(line, ':')))
			continue;
		*colon = '\0';
		base = strrchr(line, '/');
		if (strncmp(base ? base + 1 : line, "virtio_console.ko", 17) != 0)
			continue;
		if (line[0] == '/')
			snprintf(out, outlen, "%s%s", root, line);
		else
			snprintf(out, outlen, "%s/lib/modules/%s/%s", root, rel, line);
		found = access(out, F_OK) == 0;
	}
	fclose(f);
	return found;
}

/* virtio_console's module for kernel rel, where it usually is or where
 * modules.dep says: 1 with its path in out */
static int
find_module(const char *root, const char *rel, char *out, size_t outlen)
{
	static const char *const ext[] = { "", ".gz", ".xz", ".zst", NULL };
	int i;

	for (i = 0; ext[i]; i++) {
		snprintf(out, outlen, "%s/lib/modules/%s/kernel/drivers/char/virtio_console.ko%s",
		         root, rel, ext[i]);
		if (access(out, F_OK) == 0)
			return 1;
	}
	return module_from_dep(root, rel, out, outlen);
}

/* 1 when the driver is there (and the port checks make sense) */
static int
check_driver(const char *root)
{
	char path[PATH_MAX], rel[256], mod[PATH_MAX], e1[PATH_MAX], e2[512];

	snprintf(path, sizeof path, "%s/sys/bus/virtio/drivers/virtio_console", root);
	if (is_dir(path)) {
		finding(0, "virtio_console driver loaded (%s)", esc(e1, sizeof e1, path));
		return 1;
	}
	kernel_release(root, rel, sizeof rel);
	if (find_module(root, rel, mod, sizeof mod))
		finding(1, "virtio_console driver not loaded (no %s), but its module is there: %s; "
		        "fix: modprobe virtio_console, and have it loaded at boot (add "
		        "virtio_console to /etc/modules, or your distribution's equivalent)",
		        path, esc(e1, sizeof e1, mod));
	else
		finding(1, "virtio_console driver missing: not loaded (no %s) and no module for "
		        "kernel %s under %s/lib/modules/%s; fix: boot a kernel built with "
		        "CONFIG_VIRTIO_CONSOLE=y or =m (such as the distribution's standard "
		        "kernel, with its modules installed), then modprobe virtio_console",
		        path, esc(e2, sizeof e2, rel), root, esc(e1, sizeof e1, rel));
	return 0;
}

/* ---- 2. multiport support and the ports ------------------------------------------ */

struct cport {
	const char *name;            /* the port's name */
	const char *given;           /* a path from the command line, or NULL */
	char path[PATH_MAX];         /* where it is, when found */
	int found;
	int unix_socket;             /* given as unix:PATH (tests): not a port */
	int no_multiport;            /* vport_find() found no port at all */
	char tried[1024];
};

static void
locate(const char *root, struct cport *p)
{
	int rc;

	if (p->given) {
		p->unix_socket = strncmp(p->given, "unix:", 5) == 0;
		strlcpy(p->path, p->given + (p->unix_socket ? 5 : 0), sizeof p->path);
		p->found = access(p->path, F_OK) == 0;
		snprintf(p->tried, sizeof p->tried, "%s (given)", p->path);
		return;
	}
	rc = vport_find(root, p->name, p->path, sizeof p->path, p->tried, sizeof p->tried);
	p->found = rc == 0;
	p->no_multiport = rc == -2;
}

/* how many ROOT/dev/hvc* consoles there are */
static int
count_hvc(const char *root)
{
	char dir[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(dir, sizeof dir, "%s/dev", root);
	if (!(d = opendir(dir)))
		return 0;
	while ((e = readdir(d)) != NULL)
		n += strncmp(e->d_name, "hvc", 3) == 0;
	closedir(d);
	return n;
}

static void
say_no_multiport(const char *root)
{
	int n = count_hvc(root);

	finding(1, "no named virtio ports: this kernel's virtio_console has no multiport "
	        "support (no %s/sys/class/virtio-ports, no %s/dev/vport*; %d %s/dev/hvc* "
	        "console%s), as in kernels before 2.6.35 without a backport; fix: boot Linux "
	        "2.6.35 or later, or a distribution kernel with the multiport backport (such as "
	        "RHEL 6's 2.6.32)", root, root, n, root, n == 1 ? "" : "s");
}

static void
say_missing(const struct cport *p, const struct cport *other)
{
	char e1[PATH_MAX], e2[2048];

	if (p->given)
		finding(1, "port %s: %s, given on the command line, does not exist; fix: give the "
		        "right path, or leave the option out to find the port by its name",
		        p->name, esc(e1, sizeof e1, p->path));
	else if (other && other->found)
		finding(1, "port %s missing (%s is there; tried %s); fix: " HOST_FIX, p->name,
		        other->name, esc(e2, sizeof e2, p->tried));
	else
		finding(1, "port %s missing (tried %s); fix: " HOST_FIX, p->name,
		        esc(e2, sizeof e2, p->tried));
}

/* 2: both ports missing, by name, are one finding */
static void
check_ports(const char *root, struct cport ports[2])
{
	char e[PATH_MAX], e2[2048];
	int i;

	for (i = 0; i < 2; i++)
		locate(root, &ports[i]);
	if (!ports[0].found && !ports[1].found && ports[0].no_multiport && ports[1].no_multiport) {
		say_no_multiport(root);
		return;
	}
	if (!ports[0].found && !ports[1].found && !ports[0].given && !ports[1].given) {
		finding(1, "neither %s nor %s found (tried %s); fix: " HOST_FIX, ports[0].name,
		        ports[1].name, esc(e2, sizeof e2, ports[0].tried));
		return;
	}
	for (i = 0; i < 2; i++) {
		if (ports[i].found)
			finding(0, "port %s at %s%s", ports[i].name, esc(e, sizeof e, ports[i].path),
			        ports[i].unix_socket ? " (a UNIX socket: not checked further)" : "");
		else
			say_missing(&ports[i], &ports[1 - i]);
	}
}

/* ---- 3. who has a port open --------------------------------------------------------- */

struct holders {
	int n;                       /* processes that have the port open */
	int others;                  /* ... that are not a negotiator-guest daemon */
	char desc[1024];             /* "pid N (CMDLINE), ..." */
	char pids[128];              /* "N M ..." */
};

static const char *const long_with_arg[] = {
	"execute", "timeout", "character-device", "host-to-guest", "guest-to-host",
	"commands-dir", "control-socket", "control-mode", "control-group", "wait-ports", NULL
};

/* does the option a (without its "--") take the next argument? */
static int
long_takes_arg(const char *a)
{
	int i;

	if (strchr(a, '='))
		return 0;
	for (i = 0; long_with_arg[i]; i++)
		if (strcmp(a, long_with_arg[i]) == 0)
			return 1;
	return 0;
}

/* argv (n bytes, NUL-separated): negotiator-guest with -d or --daemon? */
static int
is_guest_daemon(const char *argv, size_t n)
{
	const char *a = argv, *end = argv + n, *base = strrchr(argv, '/'), *c;
	int skip = 0;

	if (n == 0 || strcmp(base ? base + 1 : argv, "negotiator-guest") != 0)
		return 0;
	for (a += strlen(a) + 1; a < end; a += strlen(a) + 1) {
		if (skip || a[0] != '-' || a[1] == '\0') {
			skip = 0;
			continue;
		}
		if (strcmp(a, "--") == 0)
			return 0;
		if (a[1] == '-') {
			if (strcmp(a, "--daemon") == 0)
				return 1;
			skip = long_takes_arg(a + 2);
			continue;
		}
		for (c = a + 1; *c; c++) {
			if (*c == 'd')
				return 1;
			if (strchr("etc", *c)) {
				skip = c[1] == '\0';
				break;
			}
		}
	}
	return 0;
}

/* ROOT/proc/PID/cmdline into argv (NUL-terminated, n bytes read), or
 * failing that the name in ROOT/proc/PID/comm */
static size_t
read_cmdline(const char *root, const char *pid, char *argv, size_t len)
{
	char path[PATH_MAX];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof path, "%s/proc/%s/cmdline", root, pid);
	if ((f = fopen(path, "r")) != NULL) {
		n = fread(argv, 1, len - 1, f);
		fclose(f);
	}
	argv[n] = '\0';
	if (n > 0)
		return n;
	snprintf(path, sizeof path, "%s/proc/%s/comm", root, pid);
	if (vport_first_line(path, argv, len) < 0)
		strlcpy(argv, "?", len);
	return 0;
}

static void
add_holder(const char *root, const char *pid, struct holders *h)
{
	char argv[4096], text[160];
	size_t i, n = read_cmdline(root, pid, argv, sizeof argv), shown;

	if (!is_guest_daemon(argv, n))
		h->others++;
	if (h->n++ >= MAX_HOLDERS)
		return;
	shown = n ? n : strlen(argv);
	while (shown > 0 && argv[shown - 1] == '\0')
		shown--;
	for (i = 0; i < shown; i++)
		if (argv[i] == '\0')
			argv[i] = ' ';
	escape_text(text, sizeof text, argv, shown > 100 ? 100 : shown);
	snprintf(h->desc + strlen(h->desc), sizeof h->desc - strlen(h->desc), "%spid %s (%s%s)",
	         h->n > 1 ? ", " : "", pid, text, shown > 100 ? "..." : "");
	snprintf(h->pids + strlen(h->pids), sizeof h->pids - strlen(h->pids), "%s%s",
	         h->n > 1 ? " " : "", pid);
}

static int
same_file(const struct stat *a, const struct stat *b)
{
	if (S_ISCHR(a->st_mode) && S_ISCHR(b->st_mode))
		return a->st_rdev == b->st_rdev;
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* does process pid have the port open?  Only descriptors that lead to a
 * device (/dev/..., ROOT/dev/...) are looked at: stat() on the others could
 * wait for a hung network file system */
static int
holds(const char *root, const char *pid, const struct stat *port)
{
	char dir[PATH_MAX], fd[PATH_MAX], target[PATH_MAX], rootdev[PATH_MAX];
	struct dirent *e;
	struct stat st;
	ssize_t n;
	DIR *d;
	int found = 0;

	snprintf(dir, sizeof dir, "%s/proc/%s/fd", root, pid);
	snprintf(rootdev, sizeof rootdev, "%s/dev/", root);
	if (!(d = opendir(dir)))
		return 0;
	while (!found && (e = readdir(d)) != NULL) {
		if (!all_digits(e->d_name))
			continue;
		snprintf(fd, sizeof fd, "%s/%s", dir, e->d_name);
		if ((n = readlink(fd, target, sizeof target - 1)) <= 0)
			continue;
		target[n] = '\0';
		if (strncmp(target, "/dev/", 5) != 0 && strncmp(target, rootdev, strlen(rootdev)) != 0)
			continue;
		found = stat(fd, &st) == 0 && same_file(&st, port);
	}
	closedir(d);
	return found;
}

static void
find_holders(const char *root, const struct stat *port, struct holders *h)
{
	char dir[PATH_MAX];
	struct dirent *e;
	DIR *d;

	memset(h, 0, sizeof *h);
	snprintf(dir, sizeof dir, "%s/proc", root);
	if (!(d = opendir(dir)))
		return;
	while ((e = readdir(d)) != NULL)
		if (all_digits(e->d_name) && atol(e->d_name) != (long)getpid() &&
		    holds(root, e->d_name, port))
			add_holder(root, e->d_name, h);
	closedir(d);
}

/* nobody found holding it: can we open it ourselves? */
static void
try_port(const char *root, const struct cport *p)
{
	char e[PATH_MAX];
	int fd = open(p->path, O_RDWR | O_NONBLOCK | O_NOCTTY);

	if (fd >= 0) {
		close(fd);
		finding(0, "port %s is free (no process has it open)", p->name);
	} else if (vport_busy(errno)) {
		finding(1, "port %s is busy: another process has it open, not found in %s/proc; "
		        "fix: run --check as root to name it, stop that process, then (re)start "
		        "the guest daemon", p->name, root);
	} else {
		finding(1, "port %s: unable to open %s: %s; fix: %s", p->name,
		        esc(e, sizeof e, p->path), strerror(errno),
		        errno == EACCES || errno == EPERM ? "run --check as root (the guest "
		        "daemon runs as root)" : "look for virtio_console's errors in dmesg");
	}
}

static void
check_port_use(const char *root, const struct cport *p)
{
	struct holders h;
	struct stat st;
	char e[PATH_MAX];

	if (stat(p->path, &st) < 0) {
		finding(1, "port %s: unable to look at %s: %s; fix: run --check as root", p->name,
		        esc(e, sizeof e, p->path), strerror(errno));
		return;
	}
	find_holders(root, &st, &h);
	if (h.n == 0)
		try_port(root, p);
	else if (h.others == 0)
		finding(0, "port %s is held by the guest daemon: %s", p->name, h.desc);
	else
		finding(1, "port %s is busy (a port takes one opener): held by %s; fix: stop %s "
		        "(kill %s), then (re)start the guest daemon so that it opens the port",
		        p->name, h.desc, h.n > 1 ? "them" : "it", h.pids);
}

/* ---- 4. the daemon ---------------------------------------------------------------- */

/* where clients look for the daemon: control, or the system's socket and
 * (not root) the user's own, as control_connect() does */
static void
check_daemon(const char *control)
{
	char user[96], why[1024], e[PATH_MAX];
	const char *where[2];
	int i, n = 0, fd, denied = 0;

	snprintf(user, sizeof user, "/tmp/negotiator-guest-%lu.sock", (unsigned long)geteuid());
	if (control)
		where[n++] = control;
	else {
		where[n++] = "/var/run/negotiator-guest.sock";
		if (geteuid() != 0)
			where[n++] = user;
	}
	why[0] = '\0';
	for (i = 0; i < n; i++) {
		if ((fd = unix_connect(where[i])) >= 0) {
			close(fd);
			finding(0, "guest daemon running (it answers at %s)", esc(e, sizeof e, where[i]));
			return;
		}
		denied |= errno == EACCES || errno == EPERM;
		snprintf(why + strlen(why), sizeof why - strlen(why), "%s%s: %s", i ? ", " : "",
		         esc(e, sizeof e, where[i]), strerror(errno));
	}
	if (denied)
		finding(1, "unable to tell whether the guest daemon runs (%s); fix: run --check as "
		        "root, or give the daemon's --control-socket PATH", why);
	else
		finding(1, "guest daemon not running (nothing answers at %s); fix: " START_FIX, why);
}

/* ---- 5. the commands directories ---------------------------------------------------- */

/* executable regular files with valid command names in d */
static int
count_commands(const char *dir, DIR *d)
{
	char path[PATH_MAX];
	struct dirent *e;
	struct stat st;
	int n = 0;

	while ((e = readdir(d)) != NULL) {
		if (!valid_command_name(e->d_name, strlen(e->d_name)) ||
		    (size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path)
			continue;
		n += stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
	}
	return n;
}

static void
check_commands_dir(const char *dir, int is_default)
{
	char e[PATH_MAX];
	struct stat st;
	DIR *d;
	int n;

	esc(e, sizeof e, dir);
	if (stat(dir, &st) < 0 && errno == ENOENT && is_default &&
	    strcmp(dir, USER_COMMANDS_DIR) == 0)
		finding(0, "commands directory %s absent: only the built-in commands are offered "
		        "(mkdir -p %s and put executables in it to add your own)", e, e);
	else if (stat(dir, &st) < 0)
		finding(1, "commands directory %s missing (%s); fix: mkdir -p %s and put the "
		        "commands (executable files) in it", e, strerror(errno), e);
	else if (!S_ISDIR(st.st_mode))
		finding(1, "commands directory %s is not a directory; fix: move it away, then "
		        "mkdir -p %s and put the commands (executable files) in it", e, e);
	else if (!(d = opendir(dir)))
		finding(1, "commands directory %s unreadable (%s); fix: chmod 755 %s (the guest "
		        "daemon's user must read it)", e, strerror(errno), e);
	else {
		n = count_commands(dir, d);
		closedir(d);
		finding(0, "commands directory %s (%d command%s)", e, n, n == 1 ? "" : "s");
	}
}

/* ---- all of it ---------------------------------------------------------------------- */

int
guest_check(const char *root, const char *const given[2], const char *control)
{
	struct cport ports[2];
	int i, defaults = ncommands_dirs == 0;

	memset(ports, 0, sizeof ports);
	ports[0].name = PORT_H2G;
	ports[1].name = PORT_G2H;
	for (i = 0; i < 2; i++)
		ports[i].given = given[i];
	problems = 0;
	if (check_driver(root) || given[0] || given[1]) {
		check_ports(root, ports);
		for (i = 0; i < 2; i++)
			if (ports[i].found && !ports[i].unix_socket)
				check_port_use(root, &ports[i]);
	}
	check_daemon(control);
	commands_dir_defaults();
	for (i = 0; i < ncommands_dirs; i++)
		check_commands_dir(commands_dirs[i], defaults);
	fflush(stdout);
	return problems ? 1 : 0;
}
