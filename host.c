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
};

static const char *channels_dir = CHANNELS_DIR;
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

/* ---- finding guests ------------------------------------------------------------ */

typedef void (*found_fn)(const char *name, const char *h2g, const char *g2h);

static int
is_socket(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

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

static void
consider(found_fn found, const char *name, const char *h2g, const char *g2h)
{
	if (!valid_guest_name(name, strlen(name))) {
		debug("ignoring channel for unusable guest name %s", name);
		return;
	}
	if (is_socket(h2g) && is_socket(g2h))
		found(name, h2g, g2h);
}

/* All three naming schemes:
 *   DIR/GUEST.negotiator-host-to-guest.0
 *   DIR/domain-GUEST/negotiator-host-to-guest.0
 *   DIR/domain-ID-GUEST/negotiator-host-to-guest.0 */
static int
scan_channels(found_fn found)
{
	DIR *d = opendir(channels_dir);
	struct dirent *e;
	char h2g[PATH_MAX], g2h[PATH_MAX], name[MAX_NAME + 1];
	size_t dl = strlen(channels_dir);

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		size_t el = strlen(e->d_name);

		if (dl + el + sizeof PORT_H2G + 4 > PATH_MAX)
			continue;
		if (ends_with(e->d_name, "." PORT_H2G)) {
			size_t nl = el - strlen("." PORT_H2G);

			if (nl > MAX_NAME)
				continue;
			memcpy(name, e->d_name, nl);
			name[nl] = '\0';
			snprintf(h2g, sizeof h2g, "%s/%s", channels_dir, e->d_name);
			snprintf(g2h, sizeof g2h, "%s/%s.%s", channels_dir, name, PORT_G2H);
			consider(found, name, h2g, g2h);
		} else if (strncmp(e->d_name, "domain-", 7) == 0) {
			const char *g = domain_dir_guest(e->d_name);

			if (strlen(g) > MAX_NAME)
				continue;
			strlcpy(name, g, sizeof name);
			snprintf(h2g, sizeof h2g, "%s/%s/%s", channels_dir, e->d_name, PORT_H2G);
			snprintf(g2h, sizeof g2h, "%s/%s/%s", channels_dir, e->d_name, PORT_G2H);
			consider(found, name, h2g, g2h);
		}
	}
	closedir(d);
	return 0;
}

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

static void
guest_found(const char *name, const char *h2g, const char *g2h)
{
	struct guest *g = guest_find(name);
	int i;

	if (g && g->seen)
		return;   /* two entries for one name: the first one wins */
	if (g && (strcmp(g->path[0], h2g) || strcmp(g->path[1], g2h))) {
		logit("guest %s: channel moved (restarted?)", name);
		for (i = 0; i < 2; i++) {
			daemon_link_lost(&g->link[i], "channel moved");
			link_detach(&g->link[i]);
			timer_set(&g->retry[i], now_ms());
		}
	}
	if (!g) {
		g = xcalloc(1, sizeof *g);
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
			timer_set(&g->retry[i], now_ms());
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
		logit("guest %s: found its channels", name);
	}
	set_path(&g->path[0], h2g);
	set_path(&g->path[1], g2h);
	g->seen = 1;
}

static void
guest_drop(struct guest *g)
{
	struct guest **pp;

	logit("guest %s: channels gone", g->name);
	daemon_remove_link(&g->link[0]);
	daemon_remove_link(&g->link[1]);
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

static void
rescan(void)
{
	struct guest *g, *next;
	struct stat st;

	if (stat(channels_dir, &st) == 0) {
		dir_mtime = st.st_mtime;
		dir_ctime = st.st_ctime;
	}
	scan_wall = time(NULL);
	scan_ms = now_ms();
	for (g = guests; g; g = g->next)
		g->seen = 0;
	if (scan_channels(guest_found) < 0)
		warn("unable to read the channel directory %s: %s", channels_dir, strerror(errno));
	for (g = guests; g; g = next) {
		next = g->next;
		if (!g->seen)
			guest_drop(g);
	}
}

/* ---- daemon hooks --------------------------------------------------------------- */

static int
try_connect(struct guest *g, int i, mtime_t now)
{
	struct link *l = &g->link[i];
	int fd = unix_connect(g->path[i]);

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

/* A name we do not know: a guest that just started, or a typo (or a
 * flood of them).  A rescan on demand at most once per scan interval, or
 * when the directory changed since the last scan: unknown names cost a
 * lookup and a stat() each, whatever their number. */
static struct guest *
guest_lookup(const char *name)
{
	struct guest *g = guest_find(name);
	mtime_t now;

	if (g)
		return g;
	now = now_ms();
	if (scanned && TIME_BEFORE(now, last_demand_scan + (mtime_t)scan_interval) &&
	    !dir_changed())
		return NULL;
	scanned = 1;
	last_demand_scan = now;
	debug("no guest %s known: rescanning %s", name, channels_dir);
	rescan();
	return guest_find(name);
}

static struct link *
host_route(const char *target, char *why, size_t whylen)
{
	struct guest *g = guest_lookup(target);
	int i;

	if (!g) {
		snprintf(why, whylen, "no such guest: %s (no channels in %s)", target, channels_dir);
		return NULL;
	}
	for (i = 0; i < 2; i++)
		if (g->link[i].fd < 0 && try_connect(g, i, now_ms()) < 0 && i == 0) {
			snprintf(why, whylen, "guest %s: unable to connect to %s: %s", target,
			         g->path[0], strerror(errno));
			return NULL;
		}
	return &g->link[0];
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **names;
static int nnames, capnames;

static void
collect_name(const char *name, const char *h2g, const char *g2h)
{
	int i;

	(void)h2g;
	(void)g2h;
	for (i = 0; i < nnames; i++)
		if (strcmp(names[i], name) == 0)
			return;
	if (nnames == capnames) {
		capnames = capnames ? capnames * 2 : 32;
		names = xrealloc(names, (size_t)capnames * sizeof *names);
	}
	names[nnames++] = xstrdup(name);
}

/* Guest names, sorted, one per line: the same with or without a daemon. */
static int
guest_names(struct buf *out)
{
	int i, rc;

	nnames = 0;
	rc = scan_channels(collect_name);
	qsort(names, (size_t)nnames, sizeof *names, cmp_str);
	for (i = 0; i < nnames; i++) {
		buf_append(out, names[i], strlen(names[i]));
		buf_append(out, "\n", 1);
		free(names[i]);
	}
	return rc;
}

static void
host_targets(struct buf *out)
{
	guest_names(out);
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
		logit("rescanning %s (SIGHUP)", channels_dir);
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

static const struct daemon_hooks host_hooks = {
	host_tick, host_lost, host_route, host_targets, host_signal, host_guest_of,
	host_allowed
};

/* ---- command line ------------------------------------------------------------------ */

enum { O_VERSION = 256, O_CHANNELS, O_COMMANDS, O_CONTROL, O_MODE, O_GROUP, O_SCAN,
       O_POLICY, O_NO_POLICY, O_EVENT_LOOP, O_PARALLEL, O_JSON };

static const struct opt_spec options[] = {
	{ "list-guests", 'g', 0 }, { "list-commands", 'c', 0 }, { "execute", 'e', 1 },
	{ "timeout", 't', 1 }, { "daemon", 'd', 0 }, { "verbose", 'v', 0 },
	{ "quiet", 'q', 0 }, { "help", 'h', 0 }, { "version", O_VERSION, 0 },
	{ "channels-dir", O_CHANNELS, 1 }, { "commands-dir", O_COMMANDS, 1 },
	{ "control-socket", O_CONTROL, 1 }, { "control-mode", O_MODE, 1 }, { "control-group", O_GROUP, 1 },
	{ "scan-interval", O_SCAN, 1 }, { "policy", O_POLICY, 1 }, { "no-policy", O_NO_POLICY, 0 },
	{ "event-loop", O_EVENT_LOOP, 1 }, { "all", 'a', 0 }, { "max-parallel", O_PARALLEL, 1 },
	{ "json", O_JSON, 0 }, { NULL, 0, 0 }
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
	       "      --max-parallel=N     at most N guests' calls at once (1 to %d, default %d)\n",
	       MAX_CALLS, FANOUT_PARALLEL);
	printf("      --json               with -g, -c, -e: one JSON object per guest and line\n"
	       "                           on stdout, when its call ends: guest, status,\n"
	       "                           signal, failure, message, stdout, stderr (at most\n"
	       "                           %lu MiB each; beyond: \"truncated\":true),\n"
	       "                           elapsed_ms (-c: commands); see negotiator-host(8)\n"
	       "  -d, --daemon             run the host daemon (in the foreground)\n",
	       CAPTURE_MAX / 1048576UL);
	printf("  -v, --verbose            more messages (twice: trace every frame)\n"
	       "  -q, --quiet              errors only\n"
	       "      --channels-dir=DIR   where libvirt puts channel sockets\n"
	       "                           (default %s)\n"
	       "      --commands-dir=DIR   where to look for commands (repeatable, first wins;\n"
	       "                           default %s,\n"
	       "                           then %s)\n", CHANNELS_DIR, USER_COMMANDS_DIR,
	       BUILTIN_COMMANDS_DIR);
	printf("      --control-socket=PATH  the daemon's socket for local clients (default\n"
	       "                           %s; clients\n"
	       "                           try /var/run/negotiator-host.sock, then their own)\n", default_control_path("host"));
	printf("      --control-mode=MODE  permissions of that socket (default 0600: owner only)\n"
	       "      --control-group=GROUP  group of that socket (with --control-mode 0660)\n"
	       "      --scan-interval=SECONDS  rescan the channel directory this often (default 10)\n");
	printf("      --policy=FILE        which commands each guest may run (default\n"
	       "                           %s if it exists; reread on SIGHUP)\n"
	       "      --no-policy          every guest may run every command\n"
	       "      --event-loop=BACKEND the daemon's event loop: epoll (the default where\n"
	       "                           built in) or select (portable; also\n"
	       "                           NEGOTIATOR_EVENT_LOOP=select in the environment)\n"
	       "  -h, --help               show this help\n"
	       "      --version            show the version\n", POLICY_FILE);
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

	log_open("negotiator-host", 1);
	commands_dir_defaults();
	/* fail closed: a policy that cannot be read stops the daemon */
	if (policy_read(&policy, why, sizeof why) < 0) {
		error("%s", why);
		return EXIT_AGENT;
	}
	policy_said("");
	daemon_listen(control ? control : default_control_path("host"), mode, group);
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

	if (!*s || *end || n < 1 || n > MAX_CALLS) {
		fprintf(stderr, "%s: invalid --max-parallel (1 to %d): %s (try --help)\n",
		        progname, MAX_CALLS, s);
		exit(EXIT_USAGE);
	}
	return (int)n;
}

/* --json: one object out; 0, or the status when stdout failed */
static int
json_write(const struct buf *line)
{
	if (fwrite(buf_ptr(line), 1, buf_len(line), stdout) == buf_len(line) && fflush(stdout) == 0)
		return 0;
	return errno == EPIPE ? 128 + SIGPIPE : EXIT_AGENT;
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

static int
list_guests_direct(int json)
{
	struct buf b;
	int rc = 0;

	buf_init(&b, (size_t)-1);
	if (guest_names(&b) < 0) {
		error("unable to read the channel directory %s: %s", channels_dir, strerror(errno));
		return EXIT_AGENT;
	}
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

static char direct_path[PATH_MAX];

static void
remember_h2g(const char *name, const char *h2g, const char *g2h)
{
	(void)g2h;
	if (strcmp(name, names[0]) == 0 && !direct_path[0])
		strlcpy(direct_path, h2g, sizeof direct_path);
}

/* No daemon: connect to the guest's host-to-guest socket ourselves; -1
 * with the reason in why. */
static int
connect_guest(const char *guest, char *why, size_t whylen)
{
	char *want = (char *)guest;
	int fd;

	names = &want;
	scan_channels(remember_h2g);
	names = NULL;
	if (!direct_path[0]) {
		snprintf(why, whylen, "no such guest: %s (no channels in %s)", guest, channels_dir);
		return -1;
	}
	fd = unix_connect(direct_path);
	if (fd < 0)
		snprintf(why, whylen, "unable to connect to %s: %s", direct_path, strerror(errno));
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
	int key, daemon = 0, list_guests = 0, list_commands = 0, mode = 0600, fd, rc, i;
	int no_policy = 0, all = 0, parallel = FANOUT_PARALLEL, json = 0;
	char why[PATH_MAX + 300];
	const char *event_loop = getenv("NEGOTIATOR_EVENT_LOOP");
	long scan;

	std_fds_guard();
	log_open("negotiator-host", 0);
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
		case 'h': usage(); return 0;
		case O_VERSION: printf("negotiator-host %s (protocol %d)\n", NEGOTIATOR_VERSION,
		                       PROTOCOL_VERSION); return 0;
		case O_CHANNELS: channels_dir = st.arg; break;
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
		case 't': req.timeout = cli_seconds("timeout", st.arg); break;
		case O_SCAN:
			scan = cli_seconds("scan interval", st.arg);
			scan_interval = (scan ? scan : 1) * 1000;
			break;
		}
	}
	if (no_policy && policy_given) {
		fprintf(stderr, "%s: give --policy or --no-policy, not both (try --help)\n", progname);
		return EXIT_USAGE;
	}
	if (no_policy)
		policy_path = NULL;
	if (!event_loop || !*event_loop)
		event_loop = loop_has("epoll") ? "epoll" : "select";
	if (!loop_has(event_loop)) {
		fprintf(stderr, "%s: unknown event loop: %s (this build has select%s) (try --help)\n",
		        progname, event_loop, loop_has("epoll") ? " and epoll" : "");
		return EXIT_USAGE;
	}
	daemon_event_loop = event_loop;
	if (daemon + list_guests + list_commands + (command != NULL) != 1) {
		fprintf(stderr, "%s: give exactly one of -d, -g, -c, -e (try --help)\n", progname);
		return EXIT_USAGE;
	}
	if (daemon && json) {
		fprintf(stderr, "%s: --json goes with -g, -c or -e (try --help)\n", progname);
		return EXIT_USAGE;
	}
	if ((daemon || list_guests) && all) {
		fprintf(stderr, "%s: --all goes with -e or -c (try --help)\n", progname);
		return EXIT_USAGE;
	}
	if (all && st.noperands) {
		fprintf(stderr, "%s: give guest names or --all, not both (try --help)\n", progname);
		return EXIT_USAGE;
	}
	if (daemon || list_guests) {
		if (st.noperands) {
			fprintf(stderr, "%s: unexpected argument: %s (try --help)\n", progname,
			        st.operands[0]);
			return EXIT_USAGE;
		}
		if (daemon)
			return run_daemon(control, mode, group);
		fd = control_connect(control, "host");
		if (fd < 0)
			return list_guests_direct(json);
		req.op = OP_GUESTS;
		req.target = "";
		return json ? list_guests_daemon_json(fd, &req) : client_run(fd, &req);
	}
	if (st.noperands == 0 && !all) {
		fprintf(stderr, "%s: missing GUEST_NAME (try --help)\n", progname);
		return EXIT_USAGE;
	}
	for (i = 0; i < st.noperands; i++)
		if (!valid_guest_name(st.operands[i], strlen(st.operands[i]))) {
			fprintf(stderr, "%s: invalid guest name: %s\n", progname, st.operands[i]);
			return EXIT_USAGE;
		}
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
