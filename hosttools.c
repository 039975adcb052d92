/*
 * hosttools.c: negotiator-host for the operator: --status (which guests
 * answer, and how well) and --libvirt-xml (the channels to add to a
 * domain).  The guests come from discover.c, as for every other command.
 */
#include "negotiator.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* ---- --status ------------------------------------------------------------------- */

enum chan_state { CH_NONE, CH_ONE, CH_SOCKET, CH_CONNECTED };

struct status {
	const char *guest;
	enum chan_state channel;
	const char *why;             /* the channel's problem, for the text */
	int known;                   /* the host daemon serves this guest */
	int answers;
	char version[32];
	const char *protocol;        /* "native", "python" or NULL: unknown */
	double rtt_ms;
	int commands;
	char message[600];           /* why it does not answer */
};

static const char *const chan_words[] = { "none", "one", "socket", "connected" };

static int
count_lines(const struct buf *b)
{
	const unsigned char *p = buf_ptr(b);
	size_t i, n = buf_len(b);
	int lines = 0;

	for (i = 0; i < n; i++)
		lines += p[i] == '\n';
	return lines + (n && p[n - 1] != '\n');
}

/* value of "key value" line in text, into out; 0, or -1 when absent */
static int
status_value(const struct buf *text, const char *key, char *out, size_t outlen)
{
	const char *p = (const char *)buf_ptr(text), *end = p + buf_len(text);
	size_t kl = strlen(key);

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((nl ? nl : end) - p);

		if (len > kl && memcmp(p, key, kl) == 0 && p[kl] == ' ') {
			len -= kl + 1;
			if (len >= outlen)
				len = outlen - 1;
			memcpy(out, p + kl + 1, len);
			out[len] = '\0';
			return 0;
		}
		p = nl ? nl + 1 : end;
	}
	return -1;
}

/* What the daemon knows of the guest: channel, protocol, version */
static void
ask_daemon(const char *control, struct status *s)
{
	struct client_req req;
	struct call_result res;
	char v[64];
	int fd = control_connect(control, "host");

	if (fd < 0)
		return;
	memset(&req, 0, sizeof req);
	req.op = OP_STATUS;
	req.target = s->guest;
	req.timeout = STATUS_TIMEOUT;
	req.no_stdin = 1;
	client_call(fd, &req, &res);
	if (res.status == 0 && status_value(&res.out, "known", v, sizeof v) == 0 &&
	    strcmp(v, "yes") == 0) {
		s->known = 1;
		if (status_value(&res.out, "channel", v, sizeof v) == 0 && strcmp(v, "connected") == 0)
			s->channel = CH_CONNECTED;
		if (status_value(&res.out, "protocol", v, sizeof v) == 0 && strcmp(v, "unknown"))
			s->protocol = strcmp(v, "python") == 0 ? "python" : "native";
		status_value(&res.out, "version", s->version, sizeof s->version);
	}
	call_result_free(&res);
}

/* One list call: does the agent answer, how fast, how many commands */
static void
ask_agent(int fd, const struct client_req *base, struct status *s)
{
	struct client_req req = *base;
	struct call_result res;

	req.op = OP_LIST;
	req.no_stdin = 1;
	client_call(fd, &req, &res);
	s->rtt_ms = res.rtt_ms;
	if (res.status == 0) {
		s->answers = 1;
		s->commands = count_lines(&res.out);
	} else {
		strlcpy(s->message, res.message[0] ? res.message : "the call failed",
		        sizeof s->message);
	}
	if (req.direct && res.peer_mode != LM_UNKNOWN) {
		s->protocol = res.peer_mode == LM_PYTHON ? "python" : "native";
		strlcpy(s->version, res.peer_version, sizeof s->version);
	}
	call_result_free(&res);
}

/* Through the daemon: the call first (it brings the channel's session
 * up, after which the daemon knows the agent's protocol and version) */
static void
status_by_daemon(const char *control, struct client_req *req, struct status *s)
{
	int fd = control_connect(control, "host");

	s->channel = CH_SOCKET;
	if (fd >= 0) {
		req->target = s->guest;
		ask_agent(fd, req, s);
	}
	ask_daemon(control, s);
}

static void
status_direct(const struct found *f, struct client_req *req, struct status *s)
{
	int fd = unix_connect(f->path[0]);

	s->channel = CH_SOCKET;
	if (fd < 0) {
		snprintf(s->message, sizeof s->message, "unable to connect to %s: %s",
		         f->path[0], strerror(errno));
		return;
	}
	s->channel = CH_CONNECTED;
	req->target = "";
	req->direct = 1;
	ask_agent(fd, req, s);
}

static void
status_of(const char *control, int daemon, const struct found *f, long timeout,
          struct status *s)
{
	struct client_req req;
	int both = f && f->path[0] && f->path[1];

	memset(&req, 0, sizeof req);
	req.timeout = timeout;
	req.guest = s->guest;
	/* a guest not found here (a user who may not run virsh) may still be
	 * one the daemon serves; one found here with fewer than two channels
	 * is reported as found, whatever the daemon remembers of it */
	if (daemon && !f)
		ask_daemon(control, s);
	if (daemon && (both || s->known)) {
		status_by_daemon(control, &req, s);
	} else if (both) {
		status_direct(f, &req, s);
	} else if (!f || (!f->path[0] && !f->path[1])) {
		s->channel = CH_NONE;
		s->why = "no negotiator channels";
	} else {
		s->channel = CH_ONE;
		s->why = f->path[0] ? "only host-to-guest" : "only guest-to-host";
	}
}

static void
status_text(const struct status *s)
{
	char esc[700];

	printf("%s: ", s->guest);
	switch (s->channel) {
	case CH_NONE: printf("no channel (%s)", s->why); break;
	case CH_ONE: printf("one channel (%s)", s->why); break;
	case CH_SOCKET: printf("socket present"); break;
	case CH_CONNECTED: printf("connected"); break;
	}
	if (s->answers) {
		printf(", agent answers (%s%s%s, %s protocol), %.1f ms, %d command%s\n",
		       s->protocol && strcmp(s->protocol, "python") == 0 ? "python-negotiator" :
		       "negotiator", s->version[0] ? " " : "", s->version,
		       s->protocol ? s->protocol : "unknown", s->rtt_ms, s->commands,
		       s->commands == 1 ? "" : "s");
	} else if (s->channel >= CH_SOCKET) {
		printf(", agent does not answer: %s\n",
		       escape_text(esc, sizeof esc, s->message, strlen(s->message)));
	} else {
		printf(", agent unreachable\n");
	}
}

static void
status_json(const struct status *s, struct buf *b)
{
	char num[64];

	buf_append(b, "{\"guest\":", 9);
	json_put_bytes(b, s->guest, strlen(s->guest));
	buf_append(b, ",\"channel\":\"", 12);
	buf_append(b, chan_words[s->channel], strlen(chan_words[s->channel]));
	buf_append(b, "\",\"answers\":", 12);
	buf_append(b, s->answers ? "true" : "false", s->answers ? 4 : 5);
	buf_append(b, ",\"version\":", 11);
	if (s->version[0])
		json_put_bytes(b, s->version, strlen(s->version));
	else
		buf_append(b, "null", 4);
	buf_append(b, ",\"protocol\":", 12);
	if (s->protocol)
		json_put_bytes(b, s->protocol, strlen(s->protocol));
	else
		buf_append(b, "null", 4);
	if (s->answers)
		snprintf(num, sizeof num, ",\"rtt_ms\":%.3f,\"commands\":%d", s->rtt_ms, s->commands);
	else
		strcpy(num, ",\"rtt_ms\":null,\"commands\":null");
	buf_append(b, num, strlen(num));
	buf_append(b, ",\"message\":", 11);
	if (s->answers)
		buf_append(b, "null", 4);
	else if (s->channel < CH_SOCKET)
		json_put_bytes(b, s->why, strlen(s->why));
	else
		json_put_bytes(b, s->message, strlen(s->message));
	buf_append(b, "}\n", 2);
}

/* the guests the daemon serves that discovery here did not find (a user
 * who may not run virsh), as entries with no paths */
static void
add_daemon_guests(const char *control, struct found_list *fl)
{
	struct client_req req;
	struct call_result res;
	const char *p, *end, *nl;
	char name[MAX_NAME + 1];
	int fd = control_connect(control, "host");

	if (fd < 0)
		return;
	memset(&req, 0, sizeof req);
	req.op = OP_GUESTS;
	req.target = "";
	req.timeout = STATUS_TIMEOUT;
	req.no_stdin = 1;
	client_call(fd, &req, &res);
	p = (const char *)buf_ptr(&res.out);
	end = p + buf_len(&res.out);
	for (; res.status == 0 && p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break;
		if ((size_t)(nl - p) <= MAX_NAME && valid_guest_name(p, (size_t)(nl - p))) {
			memcpy(name, p, (size_t)(nl - p));
			name[nl - p] = '\0';
			found_add(fl, name);
		}
	}
	call_result_free(&res);
	found_sort(fl);
}

/* negotiator-host --status [GUEST...]: one line (or JSON object) a guest:
 * every guest found (with virsh: every running domain) when none is
 * named.  Exit 0 when all answer, else 1. */
int
host_status_cmd(const char *control, char **names, int nnames, long timeout, int json)
{
	struct found_list fl;
	struct buf line;
	int i, n, fd, daemon, all_answer = 1;

	found_init(&fl);
	if (discover(&fl, NULL) < 0) {
		error("%s", fl.why);
		found_free(&fl);
		return EXIT_AGENT;
	}
	if (fl.virsh_failed)
		warn("%s; looked in %s instead", fl.why, channels_dir);
	found_sort(&fl);
	fd = control_connect(control, "host");
	daemon = fd >= 0;
	if (daemon)
		close(fd);
	if (daemon && !nnames)
		add_daemon_guests(control, &fl);
	n = nnames ? nnames : fl.n;
	buf_init(&line, (size_t)-1);
	for (i = 0; i < n; i++) {
		struct status s;
		const char *name = nnames ? names[i] : fl.v[i].name;

		memset(&s, 0, sizeof s);
		s.guest = name;
		status_of(control, daemon, found_get(&fl, name), timeout, &s);
		all_answer &= s.answers;
		if (json) {
			buf_clear(&line);
			status_json(&s, &line);
			if (json_write(&line))
				break;
		} else {
			status_text(&s);
			fflush(stdout);
		}
	}
	if (n == 0 && !json)
		printf("no guests found (%s)\n", fl.from_virsh ? "virsh lists no running domain" :
		       "the channel directory has no negotiator sockets");
	buf_free(&line);
	found_free(&fl);
	return all_answer && n ? 0 : 1;
}

/* ---- --libvirt-xml -------------------------------------------------------------- */

/* s in an XML attribute in single quotes */
static void
put_xml_attr(const char *s)
{
	for (; *s; s++)
		switch (*s) {
		case '&': fputs("&amp;", stdout); break;
		case '<': fputs("&lt;", stdout); break;
		case '>': fputs("&gt;", stdout); break;
		case '\'': fputs("&apos;", stdout); break;
		case '"': fputs("&quot;", stdout); break;
		default: putchar(*s);
		}
}

/* The two <channel> elements for virsh edit, on stdout (only them: it can
 * go to a file); what to do next on stderr.  With a guest and a libvirt
 * older than 1.0.6, which cannot make a path up, each names one: where
 * libvirt 1.0.6 to 1.2 would put it. */
int
host_libvirt_xml(const char *guest)
{
	const char *g = guest ? guest : "GUEST";
	unsigned long v = 0;
	char why[400];
	int i, with_path;

	why[0] = '\0';
	if (guest && discovery_by_virsh())
		v = libvirt_version(why, sizeof why);
	with_path = guest && v && v < 1000006UL;
	for (i = 0; i < 2; i++) {
		const char *port = i == 0 ? PORT_H2G : PORT_G2H;

		printf("<channel type='unix'>\n  <source mode='bind'");
		if (with_path) {
			printf(" path='%s/", CHANNELS_DIR);
			put_xml_attr(guest);
			printf(".%s'", port);
		}
		printf("/>\n  <target type='virtio' name='%s'/>\n</channel>\n", port);
	}
	if (fflush(stdout) != 0)
		return EXIT_AGENT;
	if (with_path)
		fprintf(stderr, "libvirt %lu.%lu.%lu is older than 1.0.6: each channel names its "
		        "socket (path=)\n", v / 1000000UL, v / 1000UL % 1000UL, v % 1000UL);
	else if (guest && !v)
		fprintf(stderr, "libvirt's version unknown%s%s: before libvirt 1.0.6, each <source> "
		        "needs a path='...' attribute\n(run this on the host, where virsh is)\n",
		        why[0] ? " (" : "", why[0] ? why : "");
	else if (!guest)
		fprintf(stderr, "before libvirt 1.0.6, each <source> needs a path='...' "
		        "attribute: negotiator-host --libvirt-xml GUEST prints it\n");
	fprintf(stderr, "Then:\n"
	        "  1. virsh edit %s: paste the two <channel> elements into <devices>\n"
	        "     (libvirt adds the virtio-serial controller itself)\n"
	        "  2. virsh shutdown %s; once virsh list no longer shows it, virsh start %s\n"
	        "     (a reboot from inside the guest does not add devices)\n"
	        "  3. in the guest: negotiator-guest --check, then start negotiator-guest\n"
	        "  4. here: negotiator-host --status %s\n", g, g, g, g);
	return 0;
}
