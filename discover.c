/*
 * discover.c: where each guest's two channel sockets are.
 *
 * Two sources.  libvirt itself, through virsh: `virsh list --name` for the
 * running domains, then each one's live XML (`virsh dumpxml NAME`), whose
 * <channel type='unix'> elements name the socket in <source path=...> and
 * the port in <target name=...>.  That is the only way to find a socket
 * given a custom path= attribute, or a guest whose name libvirt cut to 20
 * characters in its domain-ID-NAME directory.  Without virsh (or with
 * --channels-dir) the channel directory is scanned by libvirt's naming
 * schemes, old and new.
 *
 * virsh is run with a deadline and its output is bounded: a hung libvirtd
 * costs a few seconds and a clear error, never a hang.  The XML is read
 * with a small tag scanner, enough for what libvirt writes: elements,
 * attributes in either quotes, entities, comments.
 */
#include "negotiator.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

#define VIRSH_MAX_OUT   (4UL << 20)   /* bytes of one virsh answer we read */
#define VIRSH_MAX_ERR   4096

const char *channels_dir = CHANNELS_DIR;
int channels_dir_given;
const char *virsh_uri;               /* --connect; NULL: virsh's default */
long virsh_timeout_ms = 10000;       /* for each virsh run */
long virsh_budget_ms;                /* no new dumpxml after this long; 0: none */

/* ---- the list of what was found ------------------------------------------------- */

void
found_init(struct found_list *fl)
{
	memset(fl, 0, sizeof *fl);
}

void
found_free(struct found_list *fl)
{
	int i;

	for (i = 0; i < fl->n; i++) {
		free(fl->v[i].name);
		free(fl->v[i].path[0]);
		free(fl->v[i].path[1]);
	}
	free(fl->v);
	found_init(fl);
}

struct found *
found_get(struct found_list *fl, const char *name)
{
	int i;

	for (i = 0; i < fl->n; i++)
		if (strcmp(fl->v[i].name, name) == 0)
			return &fl->v[i];
	return NULL;
}

/* the entry for name, added when new */
static struct found *
found_entry(struct found_list *fl, const char *name)
{
	struct found *f = found_get(fl, name);

	if (f)
		return f;
	if (fl->n == fl->cap) {
		fl->cap = fl->cap ? 2 * fl->cap : 16;
		fl->v = xrealloc(fl->v, (size_t)fl->cap * sizeof *fl->v);
	}
	f = &fl->v[fl->n++];
	memset(f, 0, sizeof *f);
	f->name = xstrdup(name);
	return f;
}

void
found_add(struct found_list *fl, const char *name)
{
	found_entry(fl, name);
}

/* port 0 (host-to-guest) or 1 (guest-to-host) of name is at path; the
 * first one seen wins */
static void
found_port(struct found_list *fl, const char *name, int port, const char *path)
{
	struct found *f = found_entry(fl, name);

	if (!f->path[port])
		f->path[port] = xstrdup(path);
}

static int
cmp_found(const void *a, const void *b)
{
	return strcmp(((const struct found *)a)->name, ((const struct found *)b)->name);
}

void
found_sort(struct found_list *fl)
{
	if (fl->n > 1)
		qsort(fl->v, (size_t)fl->n, sizeof *fl->v, cmp_found);
}

int
port_of(const char *target_name)
{
	if (strcmp(target_name, PORT_H2G) == 0)
		return 0;
	if (strcmp(target_name, PORT_G2H) == 0)
		return 1;
	return -1;
}

/* ---- the channel directory -------------------------------------------------------- */

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

/* libvirt >= 2 names the directory domain-ID-NAME, earlier ones domain-NAME */
static const char *
domain_dir_guest(const char *entry)
{
	const char *p = entry + strlen("domain-"), *q = p;

	while (*q >= '0' && *q <= '9')
		q++;
	if (q > p && *q == '-' && q[1])
		return q + 1;
	return p;
}

static int
is_socket(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* DIR/GUEST.PORT: a socket for one port of GUEST */
static void
flat_entry(struct found_list *fl, const char *entry)
{
	char name[MAX_NAME + 1], path[PATH_MAX];
	int port;

	for (port = 0; port < 2; port++) {
		const char *suffix = port == 0 ? "." PORT_H2G : "." PORT_G2H;
		size_t nl = strlen(entry) - strlen(suffix);

		if (!ends_with(entry, suffix) || nl > MAX_NAME)
			continue;
		memcpy(name, entry, nl);
		name[nl] = '\0';
		if ((size_t)snprintf(path, sizeof path, "%s/%s", channels_dir, entry) >= sizeof path)
			return;
		if (valid_guest_name(name, nl) && is_socket(path))
			found_port(fl, name, port, path);
	}
}

/* DIR/domain-[ID-]GUEST/PORT: both ports of GUEST in its own directory */
static void
domain_dir_entry(struct found_list *fl, const char *entry)
{
	const char *name = domain_dir_guest(entry);
	char path[PATH_MAX];
	int port;

	if (!valid_guest_name(name, strlen(name)))
		return;
	for (port = 0; port < 2; port++) {
		if ((size_t)snprintf(path, sizeof path, "%s/%s/%s", channels_dir, entry,
		                     port == 0 ? PORT_H2G : PORT_G2H) >= sizeof path)
			return;
		if (is_socket(path))
			found_port(fl, name, port, path);
	}
}

/* All three of libvirt's naming schemes:
 *   DIR/GUEST.negotiator-host-to-guest.0               (libvirt 1.0.6 to 1.2)
 *   DIR/domain-GUEST/negotiator-host-to-guest.0        (1.3)
 *   DIR/domain-ID-GUEST/negotiator-host-to-guest.0     (2 on; GUEST cut to 20)
 * A guest with one channel socket only is listed with the other NULL. */
int
discover_dir(struct found_list *fl)
{
	DIR *d = opendir(channels_dir);
	struct dirent *e;

	if (!d) {
		snprintf(fl->why, sizeof fl->why, "unable to read the channel directory %s: %s",
		         channels_dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "domain-", 7) == 0)
			domain_dir_entry(fl, e->d_name);
		else
			flat_entry(fl, e->d_name);
	}
	closedir(d);
	return 0;
}

/* ---- running virsh ------------------------------------------------------------------ */

/* Is there a virsh on PATH? */
int
virsh_present(void)
{
	const char *path = getenv("PATH"), *p, *colon;
	char file[PATH_MAX];

	for (p = path ? path : "/usr/bin:/bin"; *p; p = *colon ? colon + 1 : colon) {
		size_t n;

		colon = strchr(p, ':');
		if (!colon)
			colon = p + strlen(p);
		n = (size_t)(colon - p);
		if (n + sizeof "/virsh" > sizeof file)
			continue;
		memcpy(file, n ? p : ".", n ? n : 1);
		strcpy(file + (n ? n : 1), "/virsh");
		if (access(file, X_OK) == 0)
			return 1;
	}
	return 0;
}

static void
virsh_child(char **argv, int out, int err)
{
	int null = open("/dev/null", O_RDONLY);

	sig_default_all();
	if (null >= 0 && null != 0) {
		dup2(null, 0);
		close(null);
	}
	dup2(out, 1);
	dup2(err, 2);
	setpgid(0, 0);   /* killed as a group when late: virsh may fork */
	execvp(argv[0], argv);
	_exit(127);
}

/* read both pipes until both end or the deadline; 0, or -1 (late) */
static int
virsh_read(int out, int err, struct buf *ob, struct buf *eb, mtime_t deadline)
{
	unsigned char chunk[8192];
	struct pollfd pf[2];
	int open_fds = 2, i;

	pf[0].fd = out;
	pf[1].fd = err;
	while (open_fds) {
		mtime_t now = now_ms();

		if (!TIME_BEFORE(now, deadline))
			return -1;
		for (i = 0; i < 2; i++) {
			pf[i].events = POLLIN;
			pf[i].revents = 0;
		}
		if (poll(pf, 2, (int)(deadline - now)) < 0 && errno != EINTR)
			return -1;
		for (i = 0; i < 2; i++) {
			ssize_t got;

			if (pf[i].fd < 0 || !pf[i].revents)
				continue;
			got = read(pf[i].fd, chunk, sizeof chunk);
			if (got > 0)
				buf_append(i == 0 ? ob : eb, chunk, (size_t)got);   /* bounded: cut */
			else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
				pf[i].fd = -1;   /* poll() skips it */
				open_fds--;
			}
		}
	}
	return 0;
}

/* the first line of what virsh said on stderr, for messages */
static void
virsh_why(char *why, size_t whylen, const char *what, struct buf *eb)
{
	char line[300];
	size_t n = buf_len(eb);
	const unsigned char *p = buf_ptr(eb), *nl;

	while (n && (*p == '\n' || *p == ' '))
		p++, n--;
	nl = memchr(p, '\n', n);
	if (nl)
		n = (size_t)(nl - p);
	snprintf(why, whylen, "virsh %s failed%s%s", what, n ? ": " : "",
	         n ? escape_text(line, sizeof line, p, n) : "");
}

/* virsh [-c URI] ARGS...: its stdout in out, or -1 with the reason in why */
static int
virsh(const char *a1, const char *a2, struct buf *out, char *why, size_t whylen)
{
	char *argv[6];
	int op[2], ep[2], status = 0, argc = 0, late;
	struct buf eb;
	pid_t pid;

	argv[argc++] = "virsh";
	if (virsh_uri) {
		argv[argc++] = "-c";
		argv[argc++] = (char *)virsh_uri;
	}
	argv[argc++] = (char *)a1;
	argv[argc++] = (char *)a2;
	argv[argc] = NULL;
	if (make_pipe(op) < 0)
		goto no_run;
	if (make_pipe(ep) < 0) {
		close(op[0]);
		close(op[1]);
		goto no_run;
	}
	pid = fork();
	if (pid < 0) {
		close(op[0]); close(op[1]); close(ep[0]); close(ep[1]);
		goto no_run;
	}
	if (pid == 0)
		virsh_child(argv, op[1], ep[1]);
	close(op[1]);
	close(ep[1]);
	buf_init(&eb, VIRSH_MAX_ERR);
	late = virsh_read(op[0], ep[0], out, &eb, now_ms() + (mtime_t)virsh_timeout_ms);
	close(op[0]);
	close(ep[0]);
	if (late) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (late)
		snprintf(why, whylen, "virsh %s did not answer within %ld s", a1,
		         virsh_timeout_ms / 1000);
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		virsh_why(why, whylen, a1, &eb);
	buf_free(&eb);
	return late || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ? -1 : 0;
no_run:
	snprintf(why, whylen, "unable to run virsh: %s", strerror(errno));
	return -1;
}

/* ---- reading libvirt's XML ------------------------------------------------------------ */

struct tag {
	const char *name;            /* after "<" or "</" */
	size_t namelen;
	const char *attrs, *end;     /* attribute text; end: the ">" */
	int closing;                 /* </name> */
};

/* the next tag at or after *pp, skipping comments, declarations and text;
 * 0 at the end */
static int
next_tag(const char **pp, const char *end, struct tag *t)
{
	const char *p = *pp;

	for (;;) {
		p = memchr(p, '<', (size_t)(end - p));
		if (!p || end - p < 2)
			return 0;
		if (end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
			const char *q;

			for (q = p + 4; end - q >= 3 && memcmp(q, "-->", 3) != 0; q++)
				;
			if (end - q < 3)
				return 0;
			p = q + 3;
			continue;
		}
		if (p[1] == '?' || p[1] == '!') {
			p++;
			continue;
		}
		break;
	}
	t->closing = p[1] == '/';
	t->name = p + 1 + t->closing;
	for (t->namelen = 0; t->name + t->namelen < end &&
	     !strchr(" \t\r\n/>", t->name[t->namelen]); t->namelen++)
		;
	t->attrs = t->name + t->namelen;
	/* the ">" ends the tag: attribute values may hold ">" inside quotes */
	for (p = t->attrs; p < end && *p != '>'; p++)
		if (*p == '"' || *p == '\'') {
			const char *q = memchr(p + 1, *p, (size_t)(end - p - 1));

			if (!q)
				return 0;
			p = q;
		}
	if (p >= end)
		return 0;
	t->end = p;
	*pp = p + 1;
	return 1;
}

static int
tag_is(const struct tag *t, const char *name)
{
	return t->namelen == strlen(name) && memcmp(t->name, name, t->namelen) == 0;
}

/* one entity at s (after '&'), its character into *c; its length, 0 if bad */
static size_t
entity(const char *s, const char *end, unsigned long *c)
{
	static const struct { const char *name; char c; } named[] = {
		{ "amp;", '&' }, { "lt;", '<' }, { "gt;", '>' }, { "quot;", '"' }, { "apos;", '\'' }
	};
	size_t i;

	for (i = 0; i < sizeof named / sizeof named[0]; i++) {
		size_t n = strlen(named[i].name);

		if ((size_t)(end - s) >= n && memcmp(s, named[i].name, n) == 0) {
			*c = (unsigned char)named[i].c;
			return n;
		}
	}
	if (s < end && *s == '#') {
		const char *p = s + 1;
		int hex = p < end && (*p == 'x' || *p == 'X');
		unsigned long v = 0;

		for (p += hex; p < end && *p != ';'; p++) {
			int d = *p >= '0' && *p <= '9' ? *p - '0' :
			        hex && *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 :
			        hex && *p >= 'A' && *p <= 'F' ? *p - 'A' + 10 : -1;

			if (d < 0 || v > 0x10FFFFUL)
				return 0;
			v = v * (hex ? 16 : 10) + (unsigned long)d;
		}
		if (p >= end || v == 0 || v > 0x10FFFFUL)
			return 0;
		*c = v;
		return (size_t)(p - s) + 1;
	}
	return 0;
}

/* UTF-8 for c into out (room for 4); its length */
static size_t
utf8_put(unsigned long c, char *out)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xC0 | (c >> 6));
		out[1] = (char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xE0 | (c >> 12));
		out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
		out[2] = (char)(0x80 | (c & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (c >> 18));
	out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
	out[3] = (char)(0x80 | (c & 0x3F));
	return 4;
}

/* attribute name's value, entities decoded, into out; 0, or -1 when absent,
 * malformed or too long */
static int
tag_attr(const struct tag *t, const char *name, char *out, size_t outlen)
{
	const char *p = t->attrs, *end = t->end;
	size_t nl = strlen(name);

	while (p < end) {
		const char *an, *v, *ve;
		size_t al, o = 0;
		char q;

		while (p < end && strchr(" \t\r\n/", *p))
			p++;
		for (an = p; p < end && !strchr(" \t\r\n=/", *p); p++)
			;
		al = (size_t)(p - an);
		while (p < end && strchr(" \t\r\n", *p))
			p++;
		if (p >= end || *p != '=')
			return -1;
		for (p++; p < end && strchr(" \t\r\n", *p); p++)
			;
		if (p >= end || (*p != '"' && *p != '\''))
			return -1;
		q = *p++;
		v = p;
		ve = memchr(v, q, (size_t)(end - v));
		if (!ve)
			return -1;
		p = ve + 1;
		if (al != nl || memcmp(an, name, nl) != 0)
			continue;
		while (v < ve) {
			unsigned long c = (unsigned char)*v;
			size_t used = 1;

			if (*v == '&') {
				used = entity(v + 1, ve, &c);
				if (!used)
					return -1;
				used++;
			}
			if (o + 4 >= outlen)
				return -1;
			if (*v == '&')
				o += utf8_put(c, out + o);
			else
				out[o++] = *v;   /* the XML's own bytes, UTF-8 already */
			v += used;
		}
		out[o] = '\0';
		return 0;
	}
	return -1;
}

/* One <channel> element, from after its start tag: with type='unix', a
 * <target name='negotiator-...'/> and a <source path=.../>, a port. */
static const char *
xml_channel(struct found_list *fl, const char *name, const struct tag *ct, const char *p,
            const char *end)
{
	char type[32], target[64], path[PATH_MAX];
	int have_path = 0, have_target = 0, port;
	struct tag t;

	if (tag_attr(ct, "type", type, sizeof type) < 0 || strcmp(type, "unix") != 0)
		type[0] = '\0';
	if (ct->end > ct->attrs && ct->end[-1] == '/')
		return p;   /* <channel .../>: empty */
	while (next_tag(&p, end, &t)) {
		if (t.closing && tag_is(&t, "channel"))
			break;
		if (!t.closing && tag_is(&t, "source") && tag_attr(&t, "path", path, sizeof path) == 0)
			have_path = 1;
		if (!t.closing && tag_is(&t, "target") &&
		    tag_attr(&t, "name", target, sizeof target) == 0)
			have_target = 1;
	}
	if (type[0] && have_path && have_target && (port = port_of(target)) >= 0)
		found_port(fl, name, port, path);
	return p;
}

/* the negotiator channels in one domain's XML into fl; 1 when it has any */
int
xml_channels(struct found_list *fl, const char *name, const char *xml, size_t len)
{
	const char *p = xml, *end = xml + len;
	struct found *f;
	struct tag t;

	while (next_tag(&p, end, &t))
		if (!t.closing && tag_is(&t, "channel"))
			p = xml_channel(fl, name, &t, p, end);
	f = found_get(fl, name);
	return f && (f->path[0] || f->path[1]);
}

/* ---- discovery through virsh ------------------------------------------------------------ */

/* names from `virsh list --name`: one per line, blank lines ignored */
static int
virsh_names(struct found_list *fl, char ***names, int *n)
{
	struct buf out;
	const char *p, *end;
	int cap = 0;

	*names = NULL;
	*n = 0;
	buf_init(&out, VIRSH_MAX_OUT);
	if (virsh("list", "--name", &out, fl->why, sizeof fl->why) < 0) {
		buf_free(&out);
		return -1;
	}
	p = (const char *)buf_ptr(&out);
	end = p + buf_len(&out);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((nl ? nl : end) - p);

		while (len && (p[len - 1] == '\r' || p[len - 1] == ' '))
			len--;
		if (len && valid_guest_name(p, len)) {
			if (*n == cap) {
				cap = cap ? 2 * cap : 32;
				*names = xrealloc(*names, (size_t)cap * sizeof **names);
			}
			(*names)[*n] = xmalloc(len + 1);
			memcpy((*names)[*n], p, len);
			(*names)[*n][len] = '\0';
			(*n)++;
		} else if (len) {
			debug("virsh: ignoring domain with an unusable name");
		}
		p = nl ? nl + 1 : end;
	}
	buf_free(&out);
	return 0;
}

/* One domain's channels, by `virsh dumpxml NAME`.  known, when not NULL,
 * may answer without virsh (the daemon's guests it is connected to). */
static int
virsh_domain(struct found_list *fl, const char *name, known_fn known)
{
	struct buf xml;
	char why[300];
	const char *kp[2];

	found_entry(fl, name);   /* listed, with channels or without */
	if (known && known(name, kp)) {
		if (kp[0])
			found_port(fl, name, 0, kp[0]);
		if (kp[1])
			found_port(fl, name, 1, kp[1]);
		return 0;
	}
	buf_init(&xml, VIRSH_MAX_OUT);
	if (virsh("dumpxml", name, &xml, why, sizeof why) < 0) {
		/* it may have stopped since the list: not an error for the others */
		debug("%s", why);
		buf_free(&xml);
		return -1;
	}
	xml_channels(fl, name, (const char *)buf_ptr(&xml), buf_len(&xml));
	buf_free(&xml);
	return 0;
}

/* Every running domain, with its negotiator channels (paths NULL when it
 * has none): 0, or -1 (why set) when virsh cannot list the domains. */
int
discover_virsh(struct found_list *fl, known_fn known)
{
	char **names;
	int n, i;
	mtime_t began = now_ms();

	if (virsh_names(fl, &names, &n) < 0)
		return -1;
	fl->ndomains = n;
	for (i = 0; i < n; i++) {
		if (!virsh_budget_ms || TIME_BEFORE(now_ms(), began + (mtime_t)virsh_budget_ms))
			virsh_domain(fl, names[i], known);
		free(names[i]);
	}
	free(names);
	fl->from_virsh = 1;
	return 0;
}

/* The running domain names only (--check lists those without channels). */
int
discover_domains(struct found_list *fl, char ***names, int *n)
{
	return virsh_names(fl, names, n);
}

/* By libvirt when virsh is there and no --channels-dir was given, else (or
 * when virsh fails: then fl->why says why) by the channel directory. */
int
discover(struct found_list *fl, known_fn known)
{
	char virsh_why[sizeof fl->why];

	if (!discovery_by_virsh())
		return discover_dir(fl);
	if (discover_virsh(fl, known) == 0)
		return 0;
	fl->virsh_failed = 1;
	strlcpy(virsh_why, fl->why, sizeof virsh_why);
	if (discover_dir(fl) == 0) {
		strlcpy(fl->why, virsh_why, sizeof fl->why);
		return 0;
	}
	{
		char dir_why[sizeof fl->why];

		strlcpy(dir_why, fl->why, sizeof dir_why);
		snprintf(fl->why, sizeof fl->why, "%.180s; and %.180s", virsh_why, dir_why);
	}
	return -1;
}

int
discovery_by_virsh(void)
{
	return !channels_dir_given && (virsh_uri || virsh_present());
}

/* libvirt's version as N*1000000 + MINOR*1000 + MICRO, from `virsh version`
 * ("Using library: libvirt 1.0.5"); 0 when unknown */
unsigned long
libvirt_version(char *why, size_t whylen)
{
	struct buf out;
	unsigned long v = 0, a, b, c;
	const char *p;

	buf_init(&out, VIRSH_MAX_OUT);
	if (virsh("version", NULL, &out, why, whylen) == 0 && buf_append(&out, "", 1) == 0 &&
	    (p = strstr((const char *)buf_ptr(&out), "Using library: libvirt ")) != NULL &&
	    sscanf(p + strlen("Using library: libvirt "), "%lu.%lu.%lu", &a, &b, &c) == 3)
		v = a * 1000000UL + b * 1000UL + c;
	buf_free(&out);
	return v;
}
