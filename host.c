/*
 * host.c: negotiator-host.  As a daemon it finds every guest's channel
 * sockets in libvirt's channel directory, keeps a connection to both, serves
 * the guests' requests and relays local clients' requests to the guests.
 * As a client it asks the daemon, or talks to the guest's socket directly
 * when no daemon runs.
 */
#include "negotiator.h"

#include <sys/stat.h>
#include <dirent.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

struct guest {
	struct guest *next;
	struct guest *hnext;         /* in its hash chain */
	char *name;
	char *path[2];               /* host-to-guest, guest-to-host sockets */
	struct link link[2];
	struct timer retry[2];       /* connect again */
	mtime_t delay[2];
	int seen;
	int pending;                 /* asked for by name: virsh has not said yet */
	mtime_t asked;               /* ... since when */
};

static const char *policy_path = POLICY_FILE;
static int policy_given;        /* --policy: the file must exist */
static struct policy *policy;   /* NULL: every command allowed */
static struct guest *guests;
static mtime_t next_scan;
static long scan_interval = SCAN_INTERVAL;
static int scan_now;
static int scanned;             /* a scan was done (last_demand_scan is set) */
static mtime_t last_demand_scan;
static time_t dir_mtime, dir_ctime;   /* of the channel directory at the last scan, */
static time_t scan_wall;              /* ... the second it was done in */
static mtime_t scan_ms;               /* ... and when, on our clock */
static struct guest **guest_slots;   /* hash table by name */
static unsigned long guest_mask, nguests;
static int npending;            /* guests asked for by name, not found yet */

/* ---- guests by name: a hash table that doubles as it fills ------------------- */

static unsigned long
name_hash(const char *s)
{
	unsigned long h = 2166136261UL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619UL;
	return h;
}

static void
guest_index(struct guest *g)
{
	unsigned long i, size = guest_slots ? guest_mask + 1 : 0;

	if (nguests >= size) {
		struct guest **old = guest_slots;

		guest_mask = size ? 2 * size - 1 : 63;
		guest_slots = xcalloc(guest_mask + 1, sizeof *guest_slots);
		for (i = 0; i < size; i++)
			while (old[i]) {
				struct guest *o = old[i];
				unsigned long h = name_hash(o->name) & guest_mask;

				old[i] = o->hnext;
				o->hnext = guest_slots[h];
				guest_slots[h] = o;
			}
		free(old);
	}
	i = name_hash(g->name) & guest_mask;
	g->hnext = guest_slots[i];
	guest_slots[i] = g;
	nguests++;
}

static void
guest_unindex(struct guest *g)
{
	struct guest **pp = &guest_slots[name_hash(g->name) & guest_mask];

	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == g) {
			*pp = g->hnext;
			nguests--;
			return;
		}
}

static struct guest *
guest_find(const char *name)
{
	struct guest *g;

	if (!guest_slots)
		return NULL;
	for (g = guest_slots[name_hash(name) & guest_mask]; g; g = g->hnext)
		if (strcmp(g->name, name) == 0)
			return g;
	return NULL;
}

static void retry_fired(struct timer *t, mtime_t now);

static void
set_path(char **p, const char *path)
{
	if (*p && strcmp(*p, path) == 0)
		return;
	free(*p);
	*p = xstrdup(path);
}

static struct guest *
guest_new(const char *name)
{
	struct guest *g = xcalloc(1, sizeof *g);
	int i;

	g->name = xstrdup(name);
	for (i = 0; i < 2; i++) {
		char lname[MAX_NAME + 40];

		snprintf(lname, sizeof lname, "guest %s %s", name,
		         i == 0 ? "host-to-guest" : "guest-to-host");
		link_init(&g->link[i], LINK_CHANNEL, -1, lname);
		g->link[i].owner = g;
		g->link[i].socket = 1;   /* QEMU's chardev socket */
		daemon_add_link(&g->link[i]);
		timer_init(&g->retry[i], retry_fired, &g->link[i]);
	}
	g->link[0].calls = 1;   /* we ask over host-to-guest */
	g->link[1].serves = 1;  /* and answer over guest-to-host */
	link_set_caller(&g->link[0]);
	link_set_server(&g->link[1]);
	g->link[0].sibling = &g->link[1];
	g->link[1].sibling = &g->link[0];
	g->next = guests;
	guests = g;
	guest_index(g);
	return g;
}

static void
guest_found(const char *name, const char *h2g, const char *g2h)
{
	struct guest *g = guest_find(name);
	int i;

	if (g && g->seen)
		return;   /* two entries for one name: the first one wins */
	if (g && !g->pending && (strcmp(g->path[0], h2g) || strcmp(g->path[1], g2h))) {
		logit("guest %s: channel moved (restarted?)", name);
		for (i = 0; i < 2; i++) {
			daemon_link_lost(&g->link[i], "channel moved");
			link_detach(&g->link[i]);
			timer_set(&g->retry[i], now_ms());
		}
	}
	if (!g || g->pending) {
		if (!g)
			g = guest_new(name);
		else
			npending--;
		g->pending = 0;
		timer_set(&g->retry[0], now_ms());
		timer_set(&g->retry[1], now_ms());
		logit("guest %s: found its channels", name);
	}
	set_path(&g->path[0], h2g);
	set_path(&g->path[1], g2h);
	g->seen = 1;
}

/* why: for the calls that waited for it (NULL: its channels went away) */
static void
guest_drop(struct guest *g, const char *why)
{
	struct guest **pp;

	if (g->pending)
		npending--;
	else
		logit("guest %s: channels gone", g->name);
	daemon_remove_link(&g->link[0], why);
	daemon_remove_link(&g->link[1], why);
	timer_stop(&g->retry[0]);
	timer_stop(&g->retry[1]);
	guest_unindex(g);
	for (pp = &guests; *pp; pp = &(*pp)->next)
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	free(g->path[0]);
	free(g->path[1]);
	free(g->name);
	free(g);
}

/* Is path another guest's socket?  (The directory's name for a guest may
 * be virsh's cut to 20 characters: the same guest, not a new one.) */
static int
socket_taken(const char *name, const char *path)
{
	struct guest *g;

	for (g = guests; g; g = g->next)
		if (!g->pending && strcmp(g->name, name) && strcmp(g->path[0], path) == 0)
			return 1;
	return 0;
}

/* What a scan found becomes the guests: new ones added, moved ones moved,
 * missing ones dropped (unless keep: the scan may have missed them).  A
 * guest asked for by name after the scan began waits for the next one. */
static void
scan_apply(struct found_list *fl, mtime_t began, int keep)
{
	struct guest *g, *next;
	char why[MAX_NAME + 200];
	int i;

	for (g = guests; g; g = g->next)
		g->seen = 0;
	for (i = 0; i < fl->n; i++)
		if (fl->v[i].path[0] && fl->v[i].path[1] &&
		    !(keep && socket_taken(fl->v[i].name, fl->v[i].path[0])))
			guest_found(fl->v[i].name, fl->v[i].path[0], fl->v[i].path[1]);
	for (g = guests; g; g = next) {
		next = g->next;
		if (g->seen || (g->pending && TIME_BEFORE(began, g->asked)) || (keep && !g->pending))
			continue;
		if (g->pending)
			snprintf(why, sizeof why, "no such guest: %s (%s)", g->name, fl->from_virsh ?
			         "no running domain of that name has both negotiator channels" :
			         "no channels for it in the channel directory");
		guest_drop(g, g->pending ? why : NULL);
	}
}

/* The channel directory, now: without virsh; or, keep set, because virsh
 * failed (then guests the directory does not show are kept: libvirtd may
 * be restarting, and their sockets are still there). */
static void
scan_dir(int keep)
{
	struct found_list fl;
	struct stat st;
	mtime_t began = now_ms();

	if (stat(channels_dir, &st) == 0) {
		dir_mtime = st.st_mtime;
		dir_ctime = st.st_ctime;
	}
	scan_wall = time(NULL);
	scan_ms = began;
	found_init(&fl);
	if (discover_dir(&fl) < 0 && !keep)
		warn("%s", fl.why);
	scan_apply(&fl, began, keep);
	found_free(&fl);
}

/* ---- discovery through virsh, in a child: libvirt may be slow -------------------- */

#define WORKER_MAX_OUT  (16UL << 20)
#define WORKER_DEADLINE 45000   /* ms: each virsh run has its own deadline too */
#define WORKER_BUDGET   30000   /* ms: no new dumpxml after this long */
#define MAX_PENDING     64      /* guests asked for by name, waiting for virsh */

static pid_t worker_pid;
static int worker_fd = -1;
static mtime_t worker_began, worker_last;
static int worker_again;        /* start another when this one ends */
static struct buf worker_out;
static struct timer worker_timer, worker_retry;
static int virsh_said_failed;   /* warned that virsh failed (once per outage) */

/* in the worker: a guest the daemon is connected to stays where it is */
static int
known_connected(const char *name, const char *paths[2])
{
	struct guest *g = guest_find(name);

	if (!g || g->pending || g->link[0].fd < 0 || g->link[1].fd < 0)
		return 0;
	paths[0] = g->path[0];
	paths[1] = g->path[1];
	return 1;
}

static void
put_ns(struct buf *b, const char *s)
{
	netstring_put(b, s ? s : "", s ? strlen(s) : 0);
}

static void
worker_write(int fd, const unsigned char *p, size_t n)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* The worker: what virsh says, as netstrings NAME H2G G2H, then "."; or
 * "!" and the reason. */
static void
worker_main(int fd)
{
	struct found_list fl;
	struct buf b;
	int i;

	/* it logs as the daemon does: same --log-file (inherited), syslog */
	sig_default_all();
	found_init(&fl);
	buf_init(&b, WORKER_MAX_OUT);
	virsh_budget_ms = WORKER_BUDGET;
	if (discover_virsh(&fl, known_connected) < 0) {
		buf_append(&b, "!", 1);
		put_ns(&b, fl.why);
	} else {
		for (i = 0; i < fl.n; i++) {
			put_ns(&b, fl.v[i].name);
			put_ns(&b, fl.v[i].path[0]);
			put_ns(&b, fl.v[i].path[1]);
		}
		buf_append(&b, ".", 1);
	}
	worker_write(fd, buf_ptr(&b), buf_len(&b));
	_exit(0);
}

static void
worker_parse(struct found_list *fl)
{
	const unsigned char *p = buf_ptr(&worker_out), *end = p + buf_len(&worker_out), *s[3];
	size_t n[3];
	char *v[3];
	int i;

	fl->from_virsh = 1;
	if (p < end && *p == '!') {
		p++;
		fl->virsh_failed = 1;
		if (netstring_get(&p, end, &s[0], &n[0]) == 0)
			escape_text(fl->why, sizeof fl->why, s[0], n[0]);
		else
			strlcpy(fl->why, "virsh: no answer", sizeof fl->why);
		return;
	}
	while (end - p > 1 && netstring_get(&p, end, &s[0], &n[0]) == 0 &&
	       netstring_get(&p, end, &s[1], &n[1]) == 0 &&
	       netstring_get(&p, end, &s[2], &n[2]) == 0) {
		for (i = 0; i < 3; i++) {
			v[i] = xmalloc(n[i] + 1);
			memcpy(v[i], s[i], n[i]);
			v[i][n[i]] = '\0';
		}
		if (valid_guest_name(v[0], n[0]) && n[1] && n[2] && !memchr(v[1], 0, n[1]) &&
		    !memchr(v[2], 0, n[2]) && !found_get(fl, v[0])) {
			if (fl->n == fl->cap) {
				fl->cap = fl->cap ? 2 * fl->cap : 16;
				fl->v = xrealloc(fl->v, (size_t)fl->cap * sizeof *fl->v);
			}
			fl->v[fl->n].name = v[0];
			fl->v[fl->n].path[0] = v[1];
			fl->v[fl->n].path[1] = v[2];
			fl->n++;
		} else {
			free(v[0]);
			free(v[1]);
			free(v[2]);
		}
	}
	if (p != end - 1 || *p != '.') {
		fl->virsh_failed = 1;
		strlcpy(fl->why, "virsh discovery ended early", sizeof fl->why);
	}
}

static void worker_start(void);

static void
worker_end(void)
{
	struct found_list fl;
	mtime_t began = worker_began;

	daemon_watch_fd(worker_fd, 0, NULL, NULL);
	close(worker_fd);
	worker_fd = -1;
	timer_stop(&worker_timer);
	if (worker_pid > 0)
		kill(worker_pid, SIGKILL);   /* it is done, or late; reaped by the daemon */
	worker_pid = 0;
	found_init(&fl);
	worker_parse(&fl);
	buf_free(&worker_out);
	if (fl.virsh_failed) {
		if (!virsh_said_failed)
			warn("%s; finding guests in %s instead", fl.why, channels_dir);
		virsh_said_failed = 1;
		scan_dir(1);
	} else {
		if (virsh_said_failed)
			logit("virsh answers again: finding guests through libvirt");
		virsh_said_failed = 0;
		scan_apply(&fl, began, 0);
	}
	found_free(&fl);
	if (worker_again) {
		worker_again = 0;
		worker_start();
	}
}

static void
worker_readable(int fd, int mask, void *arg)
{
	unsigned char chunk[16384];
	ssize_t n;

	(void)mask;
	(void)arg;
	for (;;) {
		n = read(fd, chunk, sizeof chunk);
		if (n > 0) {
			if (buf_append(&worker_out, chunk, (size_t)n) < 0)
				break;   /* more than any real answer: treat as the end */
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		break;
	}
	worker_end();
}

static void
worker_late(struct timer *t, mtime_t now)
{
	(void)t;
	(void)now;
	warn("virsh discovery took over %d s: stopped", WORKER_DEADLINE / 1000);
	if (worker_pid > 0)
		kill(-worker_pid, SIGKILL);
	worker_end();
}

/* Start a discovery now, or as soon as the one running ends; at most one
 * a second (a flood of unknown names costs one virsh run a second). */
static void
worker_start(void)
{
	int p[2];
	mtime_t now = now_ms();

	if (worker_fd >= 0) {
		worker_again = 1;
		return;
	}
	if (worker_last && TIME_BEFORE(now, worker_last + 1000)) {
		if (!timer_pending(&worker_retry))
			timer_set(&worker_retry, worker_last + 1000);
		return;
	}
	if (make_pipe(p) < 0) {
		warn("unable to start virsh discovery: %s", strerror(errno));
		scan_dir(1);
		return;
	}
	worker_pid = fork();
	if (worker_pid < 0) {
		warn("unable to start virsh discovery: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		worker_pid = 0;
		scan_dir(1);
		return;
	}
	if (worker_pid == 0) {
		close(p[0]);
		setpgid(0, 0);
		worker_main(p[1]);
	}
	close(p[1]);
	worker_fd = p[0];
	worker_began = worker_last = now;
	buf_init(&worker_out, WORKER_MAX_OUT);
	daemon_watch_fd(worker_fd, LOOP_READ, worker_readable, NULL);
	timer_set(&worker_timer, now + WORKER_DEADLINE);
}

static void
worker_retry_fired(struct timer *t, mtime_t now)
{
	(void)t;
	(void)now;
	worker_start();
}

static void
rescan(void)
{
	if (discovery_by_virsh())
		worker_start();
	else
		scan_dir(0);
}

/* ---- daemon hooks --------------------------------------------------------------- */

static int
try_connect(struct guest *g, int i, mtime_t now)
{
	struct link *l = &g->link[i];
	int fd;

	if (g->pending)
		return -1;   /* nowhere to connect to yet */
	fd = unix_connect(g->path[i]);
	if (fd < 0) {
		if (g->delay[i] == 0)
			debug("%s: unable to connect to %s: %s", l->name, g->path[i], strerror(errno));
		g->delay[i] = g->delay[i] ? g->delay[i] * 2 : 1000;
		if (g->delay[i] > (mtime_t)scan_interval)
			g->delay[i] = (mtime_t)scan_interval;
		timer_set(&g->retry[i], now + g->delay[i]);
		return -1;
	}
	g->delay[i] = 0;
	timer_stop(&g->retry[i]);
	debug("%s: connected to %s", l->name, g->path[i]);
	link_attach(l, fd);
	return 0;
}

/* A channel not connected: try again (the first time, at once). */
static void
retry_fired(struct timer *t, mtime_t now)
{
	struct link *l = t->arg;
	struct guest *g = l->owner;

	if (l->fd < 0)
		try_connect(g, l == &g->link[0] ? 0 : 1, now);
}

/* Rescans on their interval; connecting is up to each channel's timer. */
static mtime_t
host_tick(mtime_t now)
{
	if (scan_now || !TIME_BEFORE(now, next_scan)) {
		scan_now = 0;
		rescan();
		next_scan = now + (mtime_t)scan_interval;
	}
	return next_scan;
}

/* QEMU closed the socket: the guest stopped, or QEMU dropped us. */
static void
host_lost(struct link *l)
{
	struct guest *g = l->owner;

	link_detach(l);
	timer_set(&g->retry[l == &g->link[0] ? 0 : 1], now_ms() + 1000);
}

/* Has the channel directory changed since the last scan?  (A guest that
 * starts adds an entry to it; one stat() tells.)  Timestamps count whole
 * seconds: a change in the second of the scan (or the one before, for a
 * clock that steps) cannot be told from what the scan saw, so then it
 * may have happened, and a rescan is allowed every 100 ms until that
 * second is over. */
static int
dir_changed(void)
{
	struct stat st;

	if (stat(channels_dir, &st) < 0)
		return 0;
	if (st.st_mtime != dir_mtime || st.st_ctime != dir_ctime)
		return 1;
	return dir_mtime >= scan_wall - 1 && !TIME_BEFORE(now_ms(), scan_ms + 100);
}

/* A name virsh has not told us about: it waits for a discovery (started
 * now, or the next one) as a guest with no channels yet; its calls queue
 * on it.  At most MAX_PENDING such names at once. */
static struct guest *
guest_ask_virsh(const char *name)
{
	struct guest *g;

	if (npending >= MAX_PENDING)
		return NULL;
	g = guest_new(name);
	g->pending = 1;
	g->asked = now_ms();
	npending++;
	debug("no guest %s known: asking virsh", name);
	worker_start();
	return g;
}

/* A name we do not know: a guest that just started, or a typo (or a
 * flood of them).  Without virsh, a rescan on demand at most once per scan
 * interval, or when the directory changed since the last scan: unknown
 * names cost a lookup and a stat() each, whatever their number. */
static struct guest *
guest_lookup(const char *name)
{
	struct guest *g = guest_find(name);
	mtime_t now;

	if (g)
		return g;
	if (discovery_by_virsh() && !virsh_said_failed)
		return guest_ask_virsh(name);
	now = now_ms();
	if (scanned && TIME_BEFORE(now, last_demand_scan + (mtime_t)scan_interval) &&
	    !dir_changed())
		return NULL;
	scanned = 1;
	last_demand_scan = now;
	debug("no guest %s known: rescanning %s", name, channels_dir);
	scan_dir(virsh_said_failed);
	return guest_find(name);
}

static struct link *
host_route(const char *target, char *why, size_t whylen)
{
	struct guest *g = guest_lookup(target);
	int i;

	if (!g) {
		if (discovery_by_virsh() && !virsh_said_failed)
			snprintf(why, whylen, "no such guest: %s (too many unknown names at once)",
			         target);
		else
			snprintf(why, whylen, "no such guest: %s (no channels in %s)", target,
			         channels_dir);
		return NULL;
	}
	for (i = 0; i < 2 && !g->pending; i++)
		if (g->link[i].fd < 0 && try_connect(g, i, now_ms()) < 0 && i == 0) {
			snprintf(why, whylen, "guest %s: unable to connect to %s: %s", target,
			         g->path[0], strerror(errno));
			return NULL;
		}
	return &g->link[0];
}

/* The daemon's guests, sorted, one per line (as -g without a daemon) */
static void
host_targets(struct buf *out)
{
	struct guest *g;
	char **v;
	size_t n = 0;

	if (!discovery_by_virsh() || virsh_said_failed)
		scan_dir(virsh_said_failed);   /* as fresh as the directory */
	v = xcalloc(nguests + 1, sizeof *v);
	for (g = guests; g; g = g->next)
		if (!g->pending)
			v[n++] = g->name;
	buf_put_sorted_lines(out, v, n);
	free(v);
}

/* ---- the policy ------------------------------------------------------------------ */

/* Reads the policy file: 0 with *out set (NULL: no policy), or -1 with the
 * reason in why.  Nothing at all at the default path means no policy (lstat:
 * a dangling symlink there is an error); a missing file named with --policy
 * is an error. */
static int
policy_read(struct policy **out, char *why, size_t whylen)
{
	struct stat st;

	*out = NULL;
	if (!policy_path)
		return 0;
	if (!policy_given && lstat(policy_path, &st) < 0 && errno == ENOENT)
		return 0;
	*out = policy_load(policy_path, why, whylen);
	return *out ? 0 : -1;
}

static void
policy_said(const char *how)
{
	if (policy)
		logit("policy %s%s: %d rule(s); guests no rule matches may run nothing",
		      policy_path, how, policy_rules(policy));
	else if (policy_path)
		logit("no policy file %s%s: guests may run every command", policy_path, how);
	else
		logit("no policy (--no-policy): guests may run every command");
}

/* SIGHUP: what a restart would read, except that a file a restart would
 * refuse leaves the policy in force as it was. */
static void
policy_reload(void)
{
	struct policy *p;
	char why[POLICY_MAX_LINE + 512];

	if (policy_read(&p, why, sizeof why) < 0) {
		error("%s; keeping the policy in force", why);
		return;
	}
	policy_free(policy);
	policy = p;
	policy_said(" (reloaded)");
}

static void
host_signal(int sig)
{
	if (sig == SIGHUP) {
		logit("rescanning %s (SIGHUP)", discovery_by_virsh() ? "through virsh" : channels_dir);
		scan_now = 1;
		policy_reload();
	}
}

static const char *
host_guest_of(struct link *l)
{
	return ((struct guest *)l->owner)->name;
}

static int
host_allowed(struct link *l, const char *command)
{
	return policy_allows(policy, host_guest_of(l), command);
}

static const char *
mode_name(int mode)
{
	return mode == LM_NATIVE ? "native" : mode == LM_PYTHON ? "python" : "unknown";
}

/* For --status: "key value" lines about a guest (see hosttools.c) */
static void
host_status(const char *target, struct buf *out)
{
	struct guest *g = guest_find(target);
	char line[MAX_NAME + 100];
	int n;

	if (!g || g->pending) {
		buf_append(out, "known no\n", 9);
		return;
	}
	n = snprintf(line, sizeof line, "known yes\nchannel %s\nsession %s\nprotocol %s\n",
	             g->link[0].fd >= 0 && g->link[1].fd >= 0 ? "connected" :
	             g->link[0].fd >= 0 || g->link[1].fd >= 0 ? "half" : "socket",
	             g->link[0].up ? "up" : "down", mode_name(g->link[0].mode));
	buf_append(out, line, (size_t)n);
	if (g->link[0].peer_version[0]) {
		n = snprintf(line, sizeof line, "version %s\n", g->link[0].peer_version);
		buf_append(out, line, (size_t)n);
	}
}

static const struct daemon_hooks host_hooks = {
	host_tick, host_lost, host_route, host_targets, host_signal, host_guest_of,
	host_allowed, host_status
};

/* ---- command line ------------------------------------------------------------------ */

enum { O_VERSION = 256, O_CHANNELS, O_COMMANDS, O_CONTROL, O_MODE, O_GROUP, O_SCAN,
       O_POLICY, O_NO_POLICY, O_EVENT_LOOP, O_PARALLEL, O_CONNECT, O_JSON, O_STATUS, O_LIBVIRT_XML,
       O_CHECK };

static const struct opt_spec options[] = {
	{ "list-guests", 'g', 0 }, { "list-commands", 'c', 0 }, { "execute", 'e', 1 },
	{ "timeout", 't', 1 }, { "daemon", 'd', 0 }, { "verbose", 'v', 0 },
	{ "quiet", 'q', 0 }, { "help", 'h', 0 }, { "version", O_VERSION, 0 },
	{ "channels-dir", O_CHANNELS, 1 }, { "commands-dir", O_COMMANDS, 1 },
	{ "control-socket", O_CONTROL, 1 }, { "control-mode", O_MODE, 1 }, { "control-group", O_GROUP, 1 },
	{ "scan-interval", O_SCAN, 1 }, { "policy", O_POLICY, 1 }, { "no-policy", O_NO_POLICY, 0 },
	{ "event-loop", O_EVENT_LOOP, 1 }, { "all", 'a', 0 }, { "max-parallel", O_PARALLEL, 1 },
	{ "connect", O_CONNECT, 1 }, { "json", O_JSON, 0 }, { "status", O_STATUS, 0 },
	{ "libvirt-xml", O_LIBVIRT_XML, 0 }, { "check", O_CHECK, 0 },
	LOG_OPTION_SPECS, { NULL, 0, 0 }
};

static void
usage(void)
{
	printf("Usage: negotiator-host [OPTIONS] GUEST_NAME\n"
	       "       negotiator-host [OPTIONS] GUEST_NAME GUEST_NAME... -e COMMAND|-c\n"
	       "       negotiator-host [OPTIONS] --all -e COMMAND|-c\n"
	       "\n"
	       "Run commands inside KVM/QEMU guests (through negotiator-guest) and serve the\n"
	       "guests' requests to run commands on this host.\n"
	       "\n"
	       "  -g, --list-guests        list the guests that have the negotiator channels\n"
	       "  -c, --list-commands      list the commands GUEST_NAME offers to its host\n");
	printf("  -e, --execute=COMMAND    run COMMAND inside GUEST_NAME: its stdout/stderr are\n"
	       "                           streamed here, stdin is forwarded when it is not a\n"
	       "                           terminal, and the exit status is the command's\n"
	       "  -t, --timeout=SECONDS    give up after SECONDS (default 10, 0 = never; with\n"
	       "                           several guests, for each guest's call)\n");
	printf("  -a, --all                -e or -c on every guest with channels (see below)\n"
	       "      --max-parallel=N     at most N guests' calls at once (1 to %d,\n"
	       "                           default %d)\n",
	       MAX_CALLS, FANOUT_PARALLEL);
	printf("      --json               with -g, -c, -e, --status: one JSON object per guest\n"
	       "                           and line on stdout, when its call ends: guest,\n"
	       "                           status, signal, failure, message, stdout, stderr\n"
	       "                           (at most %lu MiB each; beyond: \"truncated\":true),\n"
	       "                           elapsed_ms (-c: commands); see negotiator-host(8)\n"
	       "  -d, --daemon             run the host daemon (in the foreground)\n",
	       CAPTURE_MAX / 1048576UL);
	printf("      --status [GUEST...]  one line per guest (default: every guest found):\n"
	       "                           channels, whether its agent answers, its version\n"
	       "                           and protocol, round trip, commands; exit 0 if all\n"
	       "                           answer (-t: per guest, default %d s)\n", STATUS_TIMEOUT);
	printf("      --libvirt-xml [GUEST]  print the two <channel> elements for virsh edit\n"
	       "                           and the steps that follow\n");
	printf("      --check [GUEST]      diagnose this host's setup: one line per finding,\n"
	       "                           \"ok: WHAT\" or \"problem: WHAT; fix: HOW\"; exit 0\n"
	       "                           without a problem (GUEST: only its findings)\n");
	printf("      --connect=URI        the libvirt URI for virsh (default: virsh's own);\n"
	       "                           without --channels-dir and with virsh on PATH,\n"
	       "                           guests and sockets come from the domain XML\n");
	printf("  -v, --verbose            more messages (twice: trace every frame)\n"
	       "  -q, --quiet              errors only\n");
	printf("      --log-file=PATH      log lines to PATH (appended, with time and pid)\n"
	       "                           instead of stderr; reopened on SIGHUP\n"
	       "      --syslog, --no-syslog  log to syslog too, or not (default: -d does,\n"
	       "                           the other modes do not)\n"
	       "      --syslog-facility=NAME  daemon (default), user, local0 to local7\n"
	       "      --pid-file=PATH      with -d: the daemon's pid, written once it listens,\n"
	       "                           removed when it stops\n");
	printf("      --channels-dir=DIR   where libvirt puts channel sockets\n"
	       "                           (default %s)\n"
	       "      --commands-dir=DIR   where to look for commands (repeatable, first wins;\n"
	       "                           default %s,\n"
	       "                           then %s)\n", CHANNELS_DIR, USER_COMMANDS_DIR,
	       BUILTIN_COMMANDS_DIR);
	printf("      --control-socket=PATH  the daemon's socket for local clients (default\n"
	       "                           %s; clients\n"
	       "                           try /var/run/negotiator-host.sock, then their own)\n", default_control_path("host"));
	printf("      --control-mode=MODE  permissions of that socket (default 0600: owner\n"
	       "                           only)\n"
	       "      --control-group=GROUP  group of that socket (with --control-mode 0660)\n"
	       "      --scan-interval=SECONDS  rescan the channel directory this often\n"
	       "                           (default 10)\n");
	printf("      --policy=FILE        which commands each guest may run (default\n"
	       "                           %s if it exists;\n"
	       "                           reread on SIGHUP)\n", POLICY_FILE);
	printf("      --no-policy          every guest may run every command\n"
	       "      --event-loop=BACKEND the daemon's event loop: epoll (the default where\n"
	       "                           built in) or select (portable; also\n"
	       "                           NEGOTIATOR_EVENT_LOOP=select in the environment)\n"
	       "  -h, --help               show this help\n"
	       "      --version            show the version\n");
	printf("\n"
	       "Several guests (two or more GUEST_NAMEs, or --all) go through the host daemon\n"
	       "(none running: an error), over one connection, --max-parallel at a time.\n"
	       "Each line a guest writes comes out as \"GUEST: LINE\" (stdout to stdout, stderr\n"
	       "to stderr; --all too, whatever the number of guests); lines of different\n");
	printf("guests never mix, and lines over 64 KiB are cut.  stdin is not forwarded.\n"
	       "The exit status is the largest of the guests' (0: all succeeded), and one\n"
	       "line on stderr says which guests failed and how.  A guest that has not\n"
	       "answered within -t fails with 125, the others go on.\n");
	cli_exit_codes();
}

static int
run_daemon(const char *control, int mode, const char *group)
{
	char why[POLICY_MAX_LINE + 512];

	commands_dir_defaults();
	/* fail closed: a policy that cannot be read stops the daemon */
	if (policy_read(&policy, why, sizeof why) < 0) {
		error("%s", why);
		return EXIT_AGENT;
	}
	policy_said("");
	daemon_listen(control ? control : default_control_path("host"), mode, group);
	timer_init(&worker_timer, worker_late, NULL);
	timer_init(&worker_retry, worker_retry_fired, NULL);
	if (discovery_by_virsh())
		logit("finding guests through virsh%s%s, every %ld s", virsh_uri ? " -c " : "",
		      virsh_uri ? virsh_uri : "", scan_interval / 1000);
	else
		logit("watching %s for guests", channels_dir);
	next_scan = now_ms();
	return daemon_run(&host_hooks);
}

/* 1 to MAX_CALLS, or a usage error */
static int
max_parallel_arg(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);

	if (!*s || *end || n < 1 || n > MAX_CALLS)
		usage_error("invalid --max-parallel (1 to %d): %s", MAX_CALLS, s);
	return (int)n;
}

/* --json: the object of a guest whose call failed before it started */
static int
json_failed(const char *guest, int list, const char *origin, const char *why)
{
	struct call_result res;
	struct buf line;
	int rc;

	call_result_init(&res);
	res.list = list;
	call_result_fail(&res, EXIT_AGENT, origin, why, guest);
	buf_init(&line, (size_t)-1);
	call_result_json(guest, &res, &line);
	rc = json_write(&line);
	buf_free(&line);
	call_result_free(&res);
	return rc;
}

/* --json, several guests and no daemon: each of them failed */
static void
json_all_failed(const struct fanout_req *fr, const char *why)
{
	int i, j;

	for (i = 0; i < fr->nguests; i++) {
		for (j = 0; j < i && strcmp(fr->guests[i], fr->guests[j]); j++)
			;
		if (j == i && json_failed(fr->guests[i], fr->op == OP_LIST, "agent", why))
			return;   /* a guest named twice runs (fails) once */
	}
}

/* -e or -c on several guests (or --all): only through the daemon */
static int
run_fanout(const char *control, struct fanout_req *fr, char **guests, int nguests)
{
	int fd, rc;

	fr->guests = guests;
	fr->nguests = nguests;
	fd = control_connect(control, "host");
	if (fd < 0) {
		char why[300];

		snprintf(why, sizeof why, "%s needs the host daemon, and none is running (start "
		         "negotiator-host --daemon, or give --control-socket PATH)",
		         guests ? "more than one guest at once" : "--all");
		error("%s", why);
		if (fr->json && guests)
			json_all_failed(fr, why);
		free_argv(fr->argv);
		return EXIT_AGENT;
	}
	rc = fanout_run(fd, fr);
	free_argv(fr->argv);
	return rc;
}

/* Discovery for a command-line client: virsh, or the directory; a warning
 * when virsh failed and the directory stood in.  -1 with the reason in
 * fl->why. */
static int
find_guests(struct found_list *fl)
{
	found_init(fl);
	if (discover(fl, NULL) < 0)
		return -1;
	if (fl->virsh_failed)
		warn("%s; looked in %s instead", fl->why, channels_dir);
	found_sort(fl);
	return 0;
}

/* -g --json: {"guest":NAME} for each name of a list, one a line */
static int
list_guests_json(const struct buf *names)
{
	const unsigned char *p = buf_ptr(names), *end = p + buf_len(names), *nl;
	struct buf line;
	int rc = 0;

	buf_init(&line, (size_t)-1);
	for (; p < end && rc == 0; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if (nl == p)
			continue;
		buf_clear(&line);
		buf_append(&line, "{\"guest\":", 9);
		json_put_bytes(&line, p, (size_t)(nl - p));
		buf_append(&line, "}\n", 2);
		rc = json_write(&line);
	}
	buf_free(&line);
	return rc;
}

/* Guest names, sorted, one per line (or --json objects): the same with
 * or without a daemon. */
static int
list_guests_direct(int json)
{
	struct found_list fl;
	struct buf b;
	int i, rc = 0;

	if (find_guests(&fl) < 0) {
		error("%s", fl.why);
		found_free(&fl);
		return EXIT_AGENT;
	}
	buf_init(&b, (size_t)-1);
	for (i = 0; i < fl.n; i++)
		if (fl.v[i].path[0] && fl.v[i].path[1]) {
			buf_append(&b, fl.v[i].name, strlen(fl.v[i].name));
			buf_append(&b, "\n", 1);
		}
	found_free(&fl);
	if (json)
		rc = list_guests_json(&b);
	else if (buf_len(&b) && fwrite(buf_ptr(&b), 1, buf_len(&b), stdout) != buf_len(&b))
		rc = EXIT_AGENT;
	buf_free(&b);
	return rc;
}

/* -g --json through the daemon: its list, captured */
static int
list_guests_daemon_json(int fd, struct client_req *req)
{
	struct call_result res;
	int rc = client_call(fd, req, &res);

	if (res.message[0])
		error("%s", res.message);
	if (rc == 0)
		rc = list_guests_json(&res.out);
	call_result_free(&res);
	return rc;
}

/* "permission denied" on a guest's channel socket, which QEMU made as its
 * own user: whose it is, and who may use it */
static void
channel_denied(const char *path, char *why, size_t whylen)
{
	char hint[600];
	int err = errno;

	access_hint(path, hint, sizeof hint);
	snprintf(why, whylen, "unable to connect to %s: %s (%s); run as root, or call through "
	         "the host daemon (negotiator-host -d, as root), whose socket its "
	         "--control-group may open to a group", path, strerror(err), hint);
}

/* No daemon: connect to the guest's host-to-guest socket ourselves; -1
 * with the reason in why. */
static int
connect_guest(const char *guest, char *why, size_t whylen)
{
	struct found_list fl;
	struct found *f;
	int fd = -1;

	if (find_guests(&fl) < 0) {
		strlcpy(why, fl.why, whylen);
		found_free(&fl);
		return -1;
	}
	f = found_get(&fl, guest);
	if (!f && !fl.from_virsh)
		snprintf(why, whylen, "no such guest: %s (no channels in %s)", guest, channels_dir);
	else if (!f || (!f->path[0] && !f->path[1]))
		snprintf(why, whylen, "no such guest: %s (no running domain of that name with "
		         "negotiator channels)", guest);
	else if (!f->path[0] || !f->path[1])
		snprintf(why, whylen, "no such guest: %s (it has only one of the two negotiator "
		         "channels)", guest);
	else if ((fd = unix_connect(f->path[0])) < 0 && (errno == EACCES || errno == EPERM))
		channel_denied(f->path[0], why, whylen);
	else if (fd < 0)
		snprintf(why, whylen, "unable to connect to %s: %s", f->path[0], strerror(errno));
	found_free(&fl);
	return fd;
}

/* One guest, --json: its call captured, its object out. */
static int
run_one_json(int fd, const struct client_req *req)
{
	struct call_result res;
	struct buf line;
	int rc = client_call(fd, req, &res), wrc;

	if (res.message[0])
		error("%s", res.message);
	buf_init(&line, (size_t)-1);
	call_result_json(req->guest, &res, &line);
	wrc = json_write(&line);
	buf_free(&line);
	call_result_free(&res);
	return wrc ? wrc : rc;
}

int
main(int argc, char **argv)
{
	struct opt_state st;
	struct client_req req;
	struct fanout_req fr;
	const char *control = NULL, *command = NULL, *group = NULL;
	int key, daemon = 0, list_guests = 0, list_commands = 0, mode = 0600, fd, rc, i, show = 0;
	int no_policy = 0, all = 0, parallel = FANOUT_PARALLEL, json = 0;
	int status = 0, libvirt_xml = 0, check = 0, timeout_given = 0, actions;
	char why[PATH_MAX + 300];
	const char *event_loop = getenv("NEGOTIATOR_EVENT_LOOP");
	long scan;

	std_fds_guard();
	log_open("negotiator-host", 0);
	commands_side = "host";
	if (getenv("NEGOTIATOR_VIRSH_TIMEOUT_MS") &&   /* for tests: a hung virsh */
	    atol(getenv("NEGOTIATOR_VIRSH_TIMEOUT_MS")) > 0)
		virsh_timeout_ms = atol(getenv("NEGOTIATOR_VIRSH_TIMEOUT_MS"));
	memset(&st, 0, sizeof st);
	memset(&req, 0, sizeof req);
	req.timeout = 10;
	trace_from_env();
	while ((key = opt_next(argc, argv, options, &st)) != 0) {
		switch (key) {
		case 'g': list_guests = 1; break;
		case 'c': list_commands = 1; break;
		case 'e': command = st.arg; break;
		case 'd': daemon = 1; break;
		case 'v': if (log_level < LOG_LVL_TRACE) log_level++; break;
		case 'q': log_level = LOG_LVL_ERROR; break;
		case 'h': show = 'h'; break;
		case O_VERSION: show = 'V'; break;
		case O_CHANNELS: channels_dir = st.arg; channels_dir_given = 1; break;
		case O_CONNECT: virsh_uri = st.arg; break;
		case O_COMMANDS: commands_dir_add(st.arg); break;
		case O_CONTROL: control = st.arg; break;
		case O_MODE: mode = cli_mode(st.arg); break;
		case O_GROUP: group = st.arg; break;
		case O_POLICY: policy_path = st.arg; policy_given = 1; break;
		case O_NO_POLICY: no_policy = 1; break;
		case O_EVENT_LOOP: event_loop = st.arg; break;
		case 'a': all = 1; break;
		case O_PARALLEL: parallel = max_parallel_arg(st.arg); break;
		case O_JSON: json = 1; break;
		case O_STATUS: status = 1; break;
		case O_LIBVIRT_XML: libvirt_xml = 1; break;
		case O_CHECK: check = 1; break;
		case 't':
			req.timeout = cli_seconds("timeout", st.arg);
			timeout_given = 1;
			break;
		case O_SCAN:
			scan = cli_seconds("scan interval", st.arg);
			scan_interval = (scan ? scan : 1) * 1000;
			break;
		default: cli_log_option(key, st.arg); break;
		}
	}
	if (show)
		return cli_show(show, &st, usage);
	if (no_policy && policy_given)
		usage_error("give --policy or --no-policy, not both");
	if (no_policy)
		policy_path = NULL;
	if (virsh_uri && channels_dir_given)
		usage_error("give --connect or --channels-dir, not both");
	if (virsh_uri && !virsh_present())
		usage_error("--connect needs virsh, and there is none on PATH");
	if (!event_loop || !*event_loop)
		event_loop = loop_has("epoll") ? "epoll" : "select";
	if (!loop_has(event_loop))
		usage_error("unknown event loop: %s (this build has select%s)", event_loop,
		            loop_has("epoll") ? " and epoll" : "");
	daemon_event_loop = event_loop;
	actions = daemon + list_guests + list_commands + (command != NULL) + status +
	          libvirt_xml + check;
	if (actions == 0) {    /* as python-negotiator: the usage, and success */
		usage();
		return 0;
	}
	if (actions > 1)
		usage_error("give only one of -d, -g, -c, -e, --status, --libvirt-xml, --check");
	if (daemon_pid_file && !daemon)
		usage_error("--pid-file goes with -d");
	if ((daemon || libvirt_xml || check) && json)
		usage_error("--json goes with -g, -c, -e or --status");
	if ((daemon || list_guests || status || libvirt_xml || check) && all)
		usage_error("--all goes with -e or -c");
	for (i = 0; i < st.noperands; i++)
		if (!valid_guest_name(st.operands[i], strlen(st.operands[i])))
			usage_error("invalid guest name: %s", st.operands[i]);
	if (log_start(daemon) < 0)
		return EXIT_AGENT;
	if (status)
		return host_status_cmd(control, st.operands, st.noperands,
		                       timeout_given ? req.timeout : STATUS_TIMEOUT, json);
	if (libvirt_xml) {
		if (st.noperands > 1)
			usage_error("--libvirt-xml takes one guest name at most");
		return host_libvirt_xml(st.noperands ? st.operands[0] : NULL);
	}
	if (check) {
		if (st.noperands > 1)
			usage_error("--check takes one guest name at most");
		return host_check_cmd(control, st.noperands ? st.operands[0] : NULL);
	}
	if (all && st.noperands)
		usage_error("give guest names or --all, not both");
	if (daemon || list_guests) {
		if (st.noperands)
			usage_error("unexpected argument: %s", st.operands[0]);
		if (daemon)
			return run_daemon(control, mode, group);
		fd = control_connect(control, "host");
		if (fd < 0)
			return list_guests_direct(json);
		req.op = OP_GUESTS;
		req.target = "";
		return json ? list_guests_daemon_json(fd, &req) : client_run(fd, &req);
	}
	if (st.noperands == 0 && !all)
		usage_error("missing GUEST_NAME");
	req.op = command ? OP_EXEC : OP_LIST;
	if (command)
		req.argv = cli_command(command);
	if (all || st.noperands > 1) {
		memset(&fr, 0, sizeof fr);
		fr.op = req.op;
		fr.argv = req.argv;
		fr.timeout = req.timeout;
		fr.max_parallel = parallel;
		fr.json = json;
		return run_fanout(control, &fr, all ? NULL : st.operands, st.noperands);
	}
	req.target = req.guest = st.operands[0];
	fd = control_connect(control, "host");
	if (fd < 0) {
		fd = connect_guest(req.target, why, sizeof why);
		if (fd < 0) {
			error("%s", why);
			control_missing(control, "host");
			rc = json ? json_failed(req.guest, req.op == OP_LIST, "channel", why) : 0;
			free_argv(req.argv);
			return rc ? rc : EXIT_AGENT;
		}
		req.target = "";
		req.direct = 1;
	}
	rc = json ? run_one_json(fd, &req) : client_run(fd, &req);
	free_argv(req.argv);
	return rc;
}
