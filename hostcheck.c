/*
 * hostcheck.c: negotiator-host --check [GUEST]: is this host set up for
 * negotiator?  One line per finding on stdout, "ok: WHAT" or "problem:
 * WHAT; fix: HOW", in this order: how guests are found (virsh or the
 * channel directory), the user QEMU runs as, the channel directories,
 * the control socket and the host daemon, AppArmor, then each guest (or
 * GUEST only): its two channels, whether QEMU listens on their sockets,
 * whether AppArmor lets QEMU write them.  Exit 0 without a problem, 1
 * with any.
 *
 * NEGOTIATOR_SYSROOT=DIR (a test hook, as in negotiator-guest) reads
 * DIR/etc/... and DIR/sys/... instead of /etc and /sys, and looks for the
 * default channel directory under DIR too; socket paths from virsh or
 * --channels-dir are taken as they are.  /etc/passwd and /etc/group are
 * parsed here (not getpwnam()), so that tests can fake them.
 *
 * Every line is escaped as a whole (control characters and bytes beyond
 * ASCII as \xNN): paths come from domain XML.  Paths and names in the
 * commands after "fix:" are quoted for the shell when they need it.
 */
#include "negotiator.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif
#ifndef SHARE_DIR
#define SHARE_DIR "/usr/local/share/negotiator"
#endif

#define CHECK_LINE  16384           /* bytes of one finding, before escaping */
#define CONF_MAX    (1UL << 20)     /* bytes read of one configuration file */
#define QUOTED      (4 * PATH_MAX + 3)
#define AA_DIR      "/etc/apparmor.d"
#define AA_ABS      AA_DIR "/abstractions/libvirt-qemu"
#define AA_LOCAL    AA_DIR "/local/abstractions/libvirt-qemu"
#define AA_DOMAINS  AA_DIR "/libvirt"

struct who {                        /* the user QEMU runs as */
	int known;
	char user[MAX_NAME + 1], group[MAX_NAME + 1];
	long uid, gid;                  /* gid -1: unknown */
};

struct aa_rule {
	char *pat;
	int deny;
};

struct check {
	const char *root;               /* NEGOTIATOR_SYSROOT, or "" */
	const char *guest;              /* NULL: every guest */
	int problems;
	struct who q;
	struct buf passwd, group;       /* ROOT/etc/passwd and ROOT/etc/group */
	int aa_on;                      /* AppArmor confines QEMU: check the rules */
	struct aa_rule *rules;
	int nrules, caprules;
	char denied[PATH_MAX + 100];    /* a control socket we may not use */
	char **dirs;                    /* channel directories to check */
	int ndirs;
};

/* ---- output ------------------------------------------------------------------ */

static void
say(const char *kind, const char *fmt, va_list ap)
{
	static char line[CHECK_LINE], esc[4 * CHECK_LINE + 8];

	vsnprintf(line, sizeof line, fmt, ap);
	printf("%s: %s\n", kind, escape_text(esc, sizeof esc, line, strlen(line)));
}

static void
ok(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say("ok", fmt, ap);
	va_end(ap);
}

/* fmt: "WHAT; fix: HOW" */
static void
problem(struct check *c, const char *fmt, ...)
{
	va_list ap;

	c->problems++;
	va_start(ap, fmt);
	say("problem", fmt, ap);
	va_end(ap);
}

/* s as one shell word, into out (QUOTED bytes): as it is when it is
 * plain, else in single quotes */
static const char *
shq(const char *s, char *out)
{
	size_t o = 0, room = QUOTED - 5;

	if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                    "0123456789/._+-=:,@%") == strlen(s)) {
		strlcpy(out, s, QUOTED);
		return out;
	}
	out[o++] = '\'';
	for (; *s && o < room; s++) {
		if (*s == '\'') {
			memcpy(out + o, "'\\''", 4);
			o += 4;
		} else {
			out[o++] = *s;
		}
	}
	out[o++] = '\'';
	out[o] = '\0';
	return out;
}

static void
sysroot_path(const struct check *c, const char *path, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s%s", c->root, path);
}

/* A connection to path, without ever waiting: 0 when something listens
 * there (also when its backlog is full: EAGAIN, as with a QEMU whose
 * single client, our daemon, holds it while others queue), or -1 with
 * errno (ECONNREFUSED: a stale socket).  A blocking connect() would hang
 * on that full backlog.  fdp: where to keep the connection (-1 when the
 * backlog was full), else it is closed. */
static int
probe_connect(const char *path, int *fdp)
{
	struct sockaddr_un sa;
	int fd, rc, saved;

	if (fdp)
		*fdp = -1;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlcpy(sa.sun_path, path, sizeof sa.sun_path) >= sizeof sa.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = compat_socket(AF_UNIX, SOCK_STREAM, CX_CLOEXEC);
	if (fd < 0 || set_nonblock(fd) < 0) {
		saved = errno;
		if (fd >= 0)
			close(fd);
		errno = saved;
		return -1;
	}
	rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	saved = errno;
	if (fdp && rc == 0)
		*fdp = fd;
	else
		close(fd);
	errno = saved;
	return rc == 0 || saved == EAGAIN || saved == EWOULDBLOCK || saved == EINPROGRESS ? 0 : -1;
}

/* ---- files: passwd, group, qemu.conf ------------------------------------------ */

/* path's contents (at most CONF_MAX bytes) into b: 0, or -1 with errno */
static int
slurp(const char *path, struct buf *b)
{
	int fd = compat_open(path, O_RDONLY, CX_CLOEXEC), saved;
	ssize_t n;

	buf_init(b, CONF_MAX);
	if (fd < 0)
		return -1;
	while ((n = buf_read_fd(b, fd, 65536)) != 0)
		if (n < 0 && errno != EINTR)
			break;
	saved = errno;
	close(fd);
	errno = saved;
	return n < 0 ? -1 : 0;
}

/* the next line of [*p, end): its start, its length in *len; NULL at the end */
static const char *
next_line(const char **p, const char *end, size_t *len)
{
	const char *s = *p, *nl;

	if (s >= end)
		return NULL;
	nl = memchr(s, '\n', (size_t)(end - s));
	*len = (size_t)((nl ? nl : end) - s);
	*p = nl ? nl + 1 : end;
	return s;
}

/* colon-separated field i of a line into out; 0, or -1 when it has none */
static int
field(const char *line, size_t len, int i, char *out, size_t outlen)
{
	const char *end = line + len, *colon;

	for (; i > 0; i--) {
		colon = memchr(line, ':', (size_t)(end - line));
		if (!colon)
			return -1;
		line = colon + 1;
	}
	colon = memchr(line, ':', (size_t)(end - line));
	len = (size_t)((colon ? colon : end) - line);
	if (len >= outlen)
		return -1;
	memcpy(out, line, len);
	out[len] = '\0';
	return 0;
}

/* In a passwd or group file: the line whose field kf is key; field vf of
 * it into out.  0, or -1 when there is none. */
static int
lookup(const struct buf *file, int kf, const char *key, int vf, char *out, size_t outlen)
{
	const char *p = (const char *)buf_ptr(file), *end = p + buf_len(file), *line;
	char k[MAX_NAME + 1];
	size_t len;

	while ((line = next_line(&p, end, &len)) != NULL)
		if (field(line, len, kf, k, sizeof k) == 0 && strcmp(k, key) == 0 &&
		    field(line, len, vf, out, outlen) == 0)
			return 0;
	return -1;
}

/* a decimal id; -1 when s is not one */
static long
id_of(const char *s)
{
	char *end;
	long v;

	if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 9)
		return -1;
	v = strtol(s, &end, 10);
	return v;
}

/* `key = "VALUE"` in qemu.conf (the last one set) into out; 1 when set */
static int
conf_value(const struct buf *conf, const char *key, char *out, size_t outlen)
{
	const char *p = (const char *)buf_ptr(conf), *end = p + buf_len(conf), *l, *le, *q;
	size_t len, kl = strlen(key);
	int found = 0;

	while ((l = next_line(&p, end, &len)) != NULL) {
		le = l + len;
		while (l < le && (*l == ' ' || *l == '\t'))
			l++;
		if ((size_t)(le - l) <= kl || memcmp(l, key, kl) != 0 || !strchr(" \t=", l[kl]))
			continue;
		for (l += kl; l < le && (*l == ' ' || *l == '\t'); l++)
			;
		if (l >= le || *l++ != '=')
			continue;
		while (l < le && (*l == ' ' || *l == '\t'))
			l++;
		if (l >= le || *l != '"' || !(q = memchr(l + 1, '"', (size_t)(le - l - 1))) ||
		    (size_t)(q - l - 1) >= outlen)
			continue;
		memcpy(out, l + 1, (size_t)(q - l - 1));
		out[q - l - 1] = '\0';
		found = 1;
	}
	return found;
}

/* ---- the user and group QEMU runs as --------------------------------------------- */

/* a user name, or "+UID": uid and primary gid into q; -1 when unknown */
static int
resolve_user(struct check *c, const char *name)
{
	char v[64];

	strlcpy(c->q.user, name, sizeof c->q.user);
	c->q.gid = -1;
	if (name[0] == '+') {
		c->q.uid = id_of(name + 1);
		if (c->q.uid >= 0 && lookup(&c->passwd, 2, name + 1, 0, v, sizeof v) == 0)
			strlcpy(c->q.user, v, sizeof c->q.user);
	} else if (lookup(&c->passwd, 0, name, 2, v, sizeof v) == 0) {
		c->q.uid = id_of(v);
	} else {
		c->q.uid = -1;
	}
	if (c->q.uid < 0)
		return -1;
	if (lookup(&c->passwd, 0, c->q.user, 3, v, sizeof v) == 0)
		c->q.gid = id_of(v);
	return 0;
}

/* a group name or "+GID" into q's group: -1 when unknown */
static int
resolve_group(struct check *c, const char *name)
{
	char v[64];

	if (name[0] == '+')
		c->q.gid = id_of(name + 1);
	else
		c->q.gid = lookup(&c->group, 0, name, 2, v, sizeof v) == 0 ? id_of(v) : -1;
	return c->q.gid < 0 ? -1 : 0;
}

/* the group's name for q.gid (its number when the group file has none) */
static void
name_group(struct check *c)
{
	char gid[32];

	sprintf(gid, "%ld", c->q.gid);
	if (c->q.gid < 0 || lookup(&c->group, 2, gid, 0, c->q.group, sizeof c->q.group) < 0)
		strlcpy(c->q.group, c->q.gid < 0 ? "?" : gid, sizeof c->q.group);
}

static void
user_unknown(struct check *c, const char *conf, const char *passwd, int from_conf)
{
	char qc[QUOTED];

	if (from_conf)
		problem(c, "%s sets user = \"%s\", which is not in %s; fix: useradd --system %s, "
		        "or set user = \"NAME\" in %s to a user that exists, then systemctl restart "
		        "libvirtd", conf, c->q.user, passwd, shq(c->q.user, qc), conf);
	else
		problem(c, "the user QEMU runs as is unknown: %s sets no user = \"NAME\", and "
		        "neither libvirt-qemu nor qemu is in %s; fix: install libvirt's QEMU driver "
		        "(apt-get install libvirt-daemon-system, or dnf install libvirt), or set "
		        "user = \"NAME\" in %s", conf, passwd, conf);
}

/* user = / group = in qemu.conf, else libvirt's defaults */
static void
check_user(struct check *c)
{
	char conf[PATH_MAX], passwd[PATH_MAX], grp[PATH_MAX], user[MAX_NAME + 1];
	char group[MAX_NAME + 1];
	struct buf qc;
	int u_set, g_set;

	sysroot_path(c, "/etc/libvirt/qemu.conf", conf, sizeof conf);
	sysroot_path(c, "/etc/passwd", passwd, sizeof passwd);
	sysroot_path(c, "/etc/group", grp, sizeof grp);
	slurp(passwd, &c->passwd);
	slurp(grp, &c->group);
	slurp(conf, &qc);
	u_set = conf_value(&qc, "user", user, sizeof user);
	g_set = conf_value(&qc, "group", group, sizeof group);
	buf_free(&qc);
	if (u_set ? resolve_user(c, user) < 0 :
	    resolve_user(c, "libvirt-qemu") < 0 && resolve_user(c, "qemu") < 0) {
		user_unknown(c, conf, passwd, u_set);
		return;
	}
	if (g_set && resolve_group(c, group) < 0) {
		problem(c, "%s sets group = \"%s\", which is not in %s; fix: groupadd --system %s, "
		        "or set group = \"NAME\" in %s to a group that exists", conf, group, grp,
		        shq(group, user), conf);
		return;
	}
	name_group(c);
	c->q.known = 1;
	ok("QEMU runs as user %s (uid %ld), group %s (gid %ld) (%s)", c->q.user, c->q.uid,
	   c->q.group, c->q.gid, u_set ? "user = in qemu.conf" : "libvirt's default user");
}

/* is q's user in group gid: its primary group, or a member in the group file */
static int
in_group(const struct check *c, unsigned long gid)
{
	char g[32], members[4096], *m;

	if (c->q.gid >= 0 && (unsigned long)c->q.gid == gid)
		return 1;
	sprintf(g, "%lu", gid);
	if (lookup(&c->group, 2, g, 3, members, sizeof members) < 0)
		return 0;
	for (m = strtok(members, ","); m; m = strtok(NULL, ","))
		if (strcmp(m, c->q.user) == 0)
			return 1;
	return 0;
}

/* may QEMU create a socket in the directory st describes?  The write and
 * search bits that apply to its user (owner, else group, else other);
 * root always may. */
static int
qemu_may_write(const struct check *c, const struct stat *st)
{
	mode_t need;

	if (c->q.uid == 0)
		return 1;
	if ((unsigned long)st->st_uid == (unsigned long)c->q.uid)
		need = S_IWUSR | S_IXUSR;
	else if (in_group(c, (unsigned long)st->st_gid))
		need = S_IWGRP | S_IXGRP;
	else
		need = S_IWOTH | S_IXOTH;
	return (st->st_mode & need) == need;
}

/* ---- channel directories ----------------------------------------------------------- */

static void
dir_add(struct check *c, const char *dir)
{
	int i;

	for (i = 0; i < c->ndirs; i++)
		if (strcmp(c->dirs[i], dir) == 0)
			return;
	c->dirs = xrealloc(c->dirs, (size_t)(c->ndirs + 1) * sizeof *c->dirs);
	c->dirs[c->ndirs++] = xstrdup(dir);
}

/* the directory a socket is in */
static void
dir_of(struct check *c, const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	if (strlcpy(dir, path, sizeof dir) >= sizeof dir || !(slash = strrchr(dir, '/')))
		return;
	if (slash == dir)
		slash++;
	*slash = '\0';
	dir_add(c, dir);
}

static void
check_dir(struct check *c, const char *dir)
{
	char qd[QUOTED], qu[QUOTED], qg[QUOTED], fix[3 * QUOTED + 64];
	struct stat st;

	snprintf(fix, sizeof fix, "install -d -o %s -g %s -m 0755 %s",
	         c->q.known ? shq(c->q.user, qu) : "USER", c->q.known ? shq(c->q.group, qg) :
	         "GROUP", shq(dir, qd));
	if (stat(dir, &st) < 0) {
		if (errno == ENOENT)
			problem(c, "channel directory %s is missing; fix: %s", dir, fix);
		else
			problem(c, "channel directory %s: %s; fix: run negotiator-host --check as root",
			        dir, strerror(errno));
	} else if (!S_ISDIR(st.st_mode)) {
		problem(c, "channel directory %s is not a directory; fix: mv %s %s.old && %s", dir,
		        qd, qd, fix);
	} else if (!c->q.known) {
		ok("channel directory %s exists (whether QEMU may write to it is unknown)", dir);
	} else if (!qemu_may_write(c, &st)) {
		problem(c, "channel directory %s is not writable by %s (uid %ld, gid %ld): owner uid "
		        "%lu, group gid %lu, mode %04lo; fix: %s", dir, c->q.user, c->q.uid, c->q.gid,
		        (unsigned long)st.st_uid, (unsigned long)st.st_gid,
		        (unsigned long)(st.st_mode & 07777), fix);
	} else {
		ok("channel directory %s is writable by %s", dir, c->q.user);
	}
}

/* the channel directory, and with virsh the directories of the sockets
 * of the guests checked */
static void
check_dirs(struct check *c, struct found_list *fl)
{
	int i, j;

	dir_add(c, channels_dir);
	for (i = 0; fl->from_virsh && i < fl->n; i++)
		for (j = 0; j < 2; j++)
			if (fl->v[i].path[j] && (!c->guest || strcmp(c->guest, fl->v[i].name) == 0))
				dir_of(c, fl->v[i].path[j]);
	for (i = 0; i < c->ndirs; i++) {
		check_dir(c, c->dirs[i]);
		free(c->dirs[i]);
	}
	free(c->dirs);
	c->dirs = NULL;
	c->ndirs = 0;
}

/* ---- the control socket and the daemon ---------------------------------------------- */

/* What clients find at path: 1 a daemon of ours (or root's), 0 nothing
 * they use (no socket, a stale one, permission denied: they try the next
 * one), -1 something they refuse or hang on (they stop there). */
static int
control_one(struct check *c, const char *path)
{
	char qp[QUOTED], who[96];
	struct stat st;
	uid_t uid, me = geteuid();
	gid_t gid;
	int fd;

	if (lstat(path, &st) < 0) {
		if (errno != ENOENT && !c->denied[0])
			snprintf(c->denied, sizeof c->denied, "control socket %s: %s", path,
			         strerror(errno));
		return 0;
	}
	shq(path, qp);
	if (!S_ISSOCK(st.st_mode)) {
		problem(c, "%s is not a socket (clients refuse it); fix: rm %s if no daemon should be "
		        "there, or give --control-socket PATH", path, qp);
		return -1;
	}
	if (st.st_uid != me && st.st_uid != 0) {
		user_label((unsigned long)st.st_uid, who, sizeof who);
		problem(c, "control socket %s belongs to %s, not to you or root (clients refuse it); "
		        "fix: run negotiator-host as that user, have its owner or root rm %s, or give "
		        "--control-socket PATH", path, who, qp);
		return -1;
	}
	if (probe_connect(path, &fd) < 0 && errno == ECONNREFUSED) {
		problem(c, "control socket %s is stale: no daemon listens on it; fix: rm %s (a daemon "
		        "started there replaces it too)", path, qp);
		return 0;
	}
	if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINPROGRESS)) {
		problem(c, "the daemon on %s does not take connections (stopped? hung?); fix: "
		        "systemctl restart negotiator-host (or restart negotiator-host -d)", path);
		return -1;
	}
	if (fd < 0) {
		if (!c->denied[0])
			snprintf(c->denied, sizeof c->denied, "control socket %s: %s", path,
			         strerror(errno));
		return 0;
	}
	if (compat_peer_ids(fd, &uid, &gid) == 0 && uid != me && uid != 0) {
		user_label((unsigned long)uid, who, sizeof who);
		close(fd);
		problem(c, "the daemon on %s runs as %s, not as you or root (clients refuse it); fix: "
		        "run negotiator-host as that user, or give --control-socket PATH", path, who);
		return -1;
	}
	close(fd);
	ok("the host daemon listens on %s", path);
	return 1;
}

static void
daemon_missing(struct check *c, const char *control, const char *tried)
{
	char qp[QUOTED];

	if (control)
		problem(c, "the host daemon is not running (nothing listens on %s); fix: negotiator-host "
		        "-d --control-socket %s, under a supervisor (" SHARE_DIR " has systemd, "
		        "init.d, upstart and supervisord files: add --control-socket %s there)",
		        tried, shq(control, qp), qp);
	else
		problem(c, "the host daemon is not running (nothing listens on %s); fix: cp " SHARE_DIR
		        "/systemd/negotiator-host.service /etc/systemd/system/ && systemctl "
		        "daemon-reload && systemctl enable --now negotiator-host (without systemd: "
		        SHARE_DIR "/init.d, upstart or supervisord; or negotiator-host -d)", tried);
}

/* the sockets clients try, in their order (see control_connect()) */
static void
check_daemon(struct check *c, const char *control)
{
	char sys[64], user[96], tried[PATH_MAX + 200];
	int found;

	snprintf(sys, sizeof sys, "/var/run/negotiator-host.sock");
	snprintf(user, sizeof user, "/tmp/negotiator-host-%lu.sock", (unsigned long)geteuid());
	if (control) {
		found = control_one(c, control);
		strlcpy(tried, control, sizeof tried);
	} else {
		if ((found = control_one(c, sys)) == 0 && geteuid() != 0)
			found = control_one(c, user);
		snprintf(tried, sizeof tried, "%s%s%s", sys, geteuid() != 0 ? " or " : "",
		         geteuid() != 0 ? user : "");
	}
	if (found == 0 && c->denied[0])
		problem(c, "%s; fix: run as root, or as a member of the group the daemon's "
		        "--control-group names", c->denied);
	else if (found == 0)
		daemon_missing(c, control, tried);
}

/* ---- AppArmor ---------------------------------------------------------------------- */
/*
 * An approximation of AppArmor's semantics, enough for libvirt's files: the
 * file rules of the libvirt-qemu abstraction, its local/ addition and every
 * domain's libvirt-*.files (all domains' files count for every guest: the
 * domain's UUID is not looked up), no #include, no @{variables}, no
 * [character classes].  A path is allowed when a rule with w permission
 * matches it and no deny rule with w does.  Globs: * is any characters but
 * '/', ** any characters, ? one character but '/', {a,b} alternatives.
 */

static int aa_match(const char *p, const char *pe, const char *s);

/* {alternatives} at p (pe: the pattern's end), then the rest */
static int
aa_alt(const char *p, const char *pe, const char *s)
{
	const char *q, *start = p + 1, *cl = NULL;
	int depth = 0, matched = 0;

	for (q = p; q < pe && !cl; q++)
		if (*q == '{')
			depth++;
		else if (*q == '}' && --depth == 0)
			cl = q;
	if (!cl)
		return *s == '{' && aa_match(p + 1, pe, s + 1);   /* a plain '{' */
	for (q = start, depth = 0; q <= cl && !matched; q++) {
		if (*q == '{')
			depth++;
		else if (*q == '}' && depth)
			depth--;
		else if ((*q == ',' && !depth) || q == cl) {
			size_t al = (size_t)(q - start), rl = (size_t)(pe - cl - 1);
			char *alt = xmalloc(al + rl + 1);

			memcpy(alt, start, al);
			memcpy(alt + al, cl + 1, rl);
			matched = aa_match(alt, alt + al + rl, s);
			free(alt);
			start = q + 1;
		}
	}
	return matched;
}

/* does the whole of s match the glob [p, pe)? */
static int
aa_match(const char *p, const char *pe, const char *s)
{
	while (p < pe) {
		if (*p == '*') {
			int any = pe - p > 1 && p[1] == '*';

			for (p += any ? 2 : 1; pe > p && *p == '*'; p++)
				any = 1;
			for (;; s++) {
				if (aa_match(p, pe, s))
					return 1;
				if (!*s || (!any && *s == '/'))
					return 0;
			}
		}
		if (*p == '{')
			return aa_alt(p, pe, s);
		if (!*s || (*p == '?' ? *s == '/' : *p != *s))
			return 0;
		p++;
		s++;
	}
	return *s == '\0';
}

static int
word(const char **p, const char *end, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(end - *p) <= n || memcmp(*p, w, n) != 0 || !strchr(" \t", (*p)[n]))
		return 0;
	for (*p += n; *p < end && (**p == ' ' || **p == '\t'); (*p)++)
		;
	return 1;
}

/* one line of a profile: a file rule with w permission is kept */
static void
aa_line(struct check *c, const char *p, size_t len)
{
	const char *end = p + len, *ps, *pe, *perm;
	int deny = 0, depth = 0;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	for (;;)
		if (word(&p, end, "deny"))
			deny = 1;
		else if (!word(&p, end, "audit") && !word(&p, end, "owner") &&
		         !word(&p, end, "allow") && !word(&p, end, "file"))
			break;
	if (p < end && *p == '"') {
		ps = p + 1;
		if (!(pe = memchr(ps, '"', (size_t)(end - ps))))
			return;
		perm = pe + 1;
	} else if (p < end && *p == '/') {
		for (ps = pe = p; pe < end && (depth || !strchr(" \t,", *pe)); pe++)
			depth += *pe == '{' ? 1 : *pe == '}' && depth ? -1 : 0;
		perm = pe;
	} else {
		return;   /* a comment, #include, capability, variable... */
	}
	while (perm < end && (*perm == ' ' || *perm == '\t'))
		perm++;
	for (p = perm; p < end && !strchr(" \t,", *p); p++)
		;
	if (!memchr(perm, 'w', (size_t)(p - perm)))
		return;
	if (c->nrules == c->caprules) {
		c->caprules = c->caprules ? 2 * c->caprules : 32;
		c->rules = xrealloc(c->rules, (size_t)c->caprules * sizeof *c->rules);
	}
	c->rules[c->nrules].pat = xmalloc((size_t)(pe - ps) + 1);
	memcpy(c->rules[c->nrules].pat, ps, (size_t)(pe - ps));
	c->rules[c->nrules].pat[pe - ps] = '\0';
	c->rules[c->nrules++].deny = deny;
}

static void
aa_file(struct check *c, const char *path)
{
	struct buf b;
	const char *p, *end, *line;
	size_t len;

	if (slurp(path, &b) == 0) {
		p = (const char *)buf_ptr(&b);
		end = p + buf_len(&b);
		while ((line = next_line(&p, end, &len)) != NULL)
			aa_line(c, line, len);
	}
	buf_free(&b);
}

/* every ROOT/etc/apparmor.d/libvirt/libvirt-*.files */
static void
aa_domain_files(struct check *c)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *e;
	DIR *d;

	sysroot_path(c, AA_DOMAINS, dir, sizeof dir);
	if (!(d = opendir(dir)))
		return;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);

		if (strncmp(e->d_name, "libvirt-", 8) || n < 14 || strcmp(e->d_name + n - 6, ".files"))
			continue;
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < sizeof path)
			aa_file(c, path);
	}
	closedir(d);
}

/* Is AppArmor on, with libvirt's abstraction for QEMU?  Then its rules. */
static void
check_apparmor(struct check *c)
{
	char en[PATH_MAX], abst[PATH_MAX], local[PATH_MAX], v[8];
	struct buf b;
	struct stat st;

	sysroot_path(c, "/sys/module/apparmor/parameters/enabled", en, sizeof en);
	sysroot_path(c, AA_ABS, abst, sizeof abst);
	sysroot_path(c, AA_LOCAL, local, sizeof local);
	v[0] = '\0';
	if (slurp(en, &b) == 0 && buf_len(&b))
		v[0] = (char)buf_ptr(&b)[0];
	buf_free(&b);
	if (v[0] != 'Y') {
		ok("AppArmor is not enabled (%s): no profile to check", en);
		return;
	}
	if (stat(abst, &st) < 0) {
		ok("AppArmor is enabled, but %s is not there: libvirt does not confine QEMU with it",
		   abst);
		return;
	}
	c->aa_on = 1;
	aa_file(c, abst);
	aa_file(c, local);
	aa_domain_files(c);
	ok("AppArmor is enabled: channel sockets are checked against %s, %s and "
	   "%s%s/libvirt-*.files (%d write rules)", abst, local, c->root, AA_DOMAINS, c->nrules);
}

/* 1 allowed, 0 no rule, -1 denied */
static int
aa_allows(const struct check *c, const char *path)
{
	int i, allowed = 0;

	for (i = 0; i < c->nrules; i++)
		if (aa_match(c->rules[i].pat, c->rules[i].pat + strlen(c->rules[i].pat), path)) {
			if (c->rules[i].deny)
				return -1;
			allowed = 1;
		}
	return allowed;
}

/* ---- each guest --------------------------------------------------------------------- */

static const char *const port_names[2] = { PORT_H2G, PORT_G2H };

/* "negotiator-host --libvirt-xml G, virsh edit G ..., then a full restart" */
static const char *
add_channels(const char *guest, const char *what, char *out, size_t outlen)
{
	char qg[QUOTED];

	shq(guest, qg);
	snprintf(out, outlen, "negotiator-host --libvirt-xml %s, virsh edit %s (paste %s into "
	         "<devices>), then virsh shutdown %s and, once virsh list no longer shows it, "
	         "virsh start %s (a reboot does not add devices)", qg, qg, what, qg, qg);
	return out;
}

/* both channels, one, or none */
static void
check_channels(struct check *c, const struct found *f)
{
	char fix[6 * QUOTED + 300];
	int have = (f->path[0] != NULL) + (f->path[1] != NULL), gone = f->path[0] != NULL;

	if (have == 2)
		ok("guest %s has both negotiator channels: %s and %s", f->name, f->path[0],
		   f->path[1]);
	else if (have == 1)
		problem(c, "guest %s has only one negotiator channel: %s is missing (%s is at %s); "
		        "fix: %s", f->name, port_names[gone], port_names[!gone], f->path[!gone],
		        add_channels(f->name, "the missing <channel> element", fix, sizeof fix));
	else
		problem(c, "guest %s has no negotiator channels; fix: %s", f->name,
		        add_channels(f->name, "both <channel> elements", fix, sizeof fix));
}

/* Does QEMU listen on the socket?  (A socket our daemon holds still takes
 * a connection, into its backlog: that is fine.)  0 when it does. */
static int
check_socket(struct check *c, const struct found *f, int i)
{
	const char *path = f->path[i];
	char qp[QUOTED], qg[QUOTED];
	struct stat st;
	int missing;

	shq(path, qp);
	shq(f->name, qg);
	missing = lstat(path, &st) < 0;
	if (missing && errno != ENOENT) {
		problem(c, "guest %s: %s: %s; fix: run negotiator-host --check as root", f->name, path,
		        strerror(errno));
		return -1;
	}
	if (missing || !S_ISSOCK(st.st_mode)) {
		problem(c, "guest %s: its %s socket %s %s; fix: virsh shutdown %s, then virsh start %s "
		        "(QEMU makes the socket when the domain starts)", f->name, port_names[i], path,
		        missing ? "does not exist" : "is not a socket", qg, qg);
		return -1;
	}
	if (probe_connect(path, NULL) == 0)
		return 0;
	if (errno == ECONNREFUSED)
		problem(c, "guest %s: nothing listens on %s: a stale socket of a QEMU that is gone; "
		        "fix: virsh start %s if the domain should run, else rm %s", f->name, path, qg,
		        qp);
	else
		problem(c, "guest %s: unable to connect to %s: %s; fix: run negotiator-host --check as "
		        "root", f->name, path, strerror(errno));
	return -1;
}

static void
check_guest_apparmor(struct check *c, const struct found *f)
{
	char rule[PATH_MAX + 8], qr[QUOTED], qg[QUOTED], local[PATH_MAX];
	int i, bad = 0, a;

	sysroot_path(c, AA_LOCAL, local, sizeof local);
	shq(f->name, qg);
	for (i = 0; i < 2; i++) {
		if (!f->path[i] || (a = aa_allows(c, f->path[i])) > 0)
			continue;
		bad++;
		snprintf(rule, sizeof rule, "\"%s\" rw,", f->path[i]);
		problem(c, "guest %s: AppArmor does not let QEMU write %s (%s); fix: echo %s >> %s, "
		        "then apparmor_parser -r %s%s/libvirt-$(virsh domuuid %s) (or virsh shutdown %s "
		        "and virsh start %s)", f->name, f->path[i], a < 0 ? "a deny rule matches it" :
		        "no rule allows it", shq(rule, qr), local, c->root, AA_DOMAINS, qg, qg, qg);
	}
	if (!bad && (f->path[0] || f->path[1]))
		ok("guest %s: AppArmor lets QEMU write its channel sockets", f->name);
}

static void
check_guest(struct check *c, const struct found *f)
{
	int i, bad = 0, n = 0;

	check_channels(c, f);
	for (i = 0; i < 2; i++)
		if (f->path[i]) {
			n++;
			bad += check_socket(c, f, i) < 0;
		}
	if (n && !bad)
		ok("guest %s: QEMU listens on %s", f->name, n == 2 ? "both channel sockets" :
		   f->path[0] ? "its " PORT_H2G " socket" : "its " PORT_G2H " socket");
	if (c->aa_on)
		check_guest_apparmor(c, f);
}

/* GUEST is not among those found */
static void
guest_unknown(struct check *c, const struct found_list *fl)
{
	char qg[QUOTED], fix[6 * QUOTED + 300];

	shq(c->guest, qg);
	if (fl->from_virsh)
		problem(c, "guest %s: no running domain of that name (virsh list --name); fix: "
		        "virsh start %s, or check the name with virsh list --all", c->guest, qg);
	else
		problem(c, "guest %s: no channel socket of it in %s; fix: virsh start %s; if it runs, "
		        "it has no negotiator channels: %s", c->guest, channels_dir, qg,
		        add_channels(c->guest, "both <channel> elements", fix, sizeof fix));
}

static void
check_guests(struct check *c, struct found_list *fl)
{
	char fix[6 * QUOTED + 300];
	struct found *f;
	int i;

	if (c->guest) {
		if ((f = found_get(fl, c->guest)) != NULL)
			check_guest(c, f);
		else
			guest_unknown(c, fl);
		return;
	}
	for (i = 0; i < fl->n; i++)
		check_guest(c, &fl->v[i]);
	if (fl->n == 0 && fl->from_virsh)
		problem(c, "virsh lists no running domain; fix: virsh start GUEST");
	else if (fl->n == 0)
		problem(c, "no guest has negotiator channels in %s; fix: %s", channels_dir,
		        add_channels("GUEST", "both <channel> elements", fix, sizeof fix));
}

/* ---- discovery ---------------------------------------------------------------------- */

static int
check_discovery(struct check *c, struct found_list *fl)
{
	struct stat st;
	int rc = discover(fl, NULL);

	if (fl->from_virsh)
		ok("virsh is on PATH: guests and their sockets come from libvirt (virsh%s%s list, "
		   "virsh dumpxml): %d running domain%s", virsh_uri ? " -c " : "",
		   virsh_uri ? virsh_uri : "", fl->ndomains, fl->ndomains == 1 ? "" : "s");
	else if (fl->virsh_failed)
		problem(c, "virsh is on PATH but failed (%s), so guests were looked for in %s instead; "
		        "fix: start libvirtd (systemctl start libvirtd) and check that virsh list --name "
		        "works, or give --channels-dir DIR", fl->why, channels_dir);
	else if (channels_dir_given)
		ok("--channels-dir given: guests come from the sockets in %s (virsh is not asked)",
		   channels_dir);
	else
		ok("no virsh on PATH: guests come from the sockets in %s", channels_dir);
	if (rc < 0 && !fl->virsh_failed && !(stat(channels_dir, &st) < 0 && errno == ENOENT))
		problem(c, "%s; fix: run negotiator-host --check as root", fl->why);
	found_sort(fl);
	return rc;
}

/* negotiator-host --check [GUEST] */
int
host_check_cmd(const char *control, const char *guest)
{
	static char dflt[PATH_MAX];
	struct check c;
	struct found_list fl;
	int i;

	memset(&c, 0, sizeof c);
	c.root = getenv("NEGOTIATOR_SYSROOT") ? getenv("NEGOTIATOR_SYSROOT") : "";
	c.guest = guest;
	if (!channels_dir_given && *c.root) {
		sysroot_path(&c, CHANNELS_DIR, dflt, sizeof dflt);
		channels_dir = dflt;
	}
	found_init(&fl);
	check_discovery(&c, &fl);
	check_user(&c);
	check_dirs(&c, &fl);
	check_daemon(&c, control);
	check_apparmor(&c);
	check_guests(&c, &fl);
	found_free(&fl);
	buf_free(&c.passwd);
	buf_free(&c.group);
	for (i = 0; i < c.nrules; i++)
		free(c.rules[i].pat);
	free(c.rules);
	if (fflush(stdout) != 0)
		return EXIT_AGENT;
	return c.problems ? 1 : 0;
}
