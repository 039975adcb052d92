/*
 * result.c: one call's result held instead of written out, and its JSON
 * object for negotiator-host --json (the schema is in negotiator-host(8),
 * JSON OUTPUT).  client.c fills one for a single guest, fanout.c one per
 * guest.
 */
#include "negotiator.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

void
call_result_init(struct call_result *r)
{
	memset(r, 0, sizeof *r);
	buf_init(&r->out, CAPTURE_MAX);
	buf_init(&r->err, CAPTURE_MAX);
	r->peer_mode = LM_UNKNOWN;
}

void
call_result_free(struct call_result *r)
{
	buf_free(&r->out);
	buf_free(&r->err);
}

void
call_result_capture(struct call_result *r, int err, const void *p, size_t n)
{
	struct buf *b = err ? &r->err : &r->out;
	size_t room = CAPTURE_MAX - buf_len(b);

	if (n > room) {
		r->dropped[err != 0] += (unsigned long)(n - room);
		n = room;
	}
	if (n)
		buf_append(b, p, n);
}

int
call_result_truncated(const struct call_result *r)
{
	return r->dropped[0] || r->dropped[1];
}

void
call_result_exit(struct call_result *r, int code, int signaled)
{
	r->status = signaled ? 128 + code : code;
	r->signal = signaled ? code : 0;
	r->failure = r->status ? "command" : NULL;
	r->message[0] = '\0';
}

/* Does text start with "guest NAME" and then rest? */
static int
guest_prefix(const char *text, const char *guest, const char *rest)
{
	size_t n = strlen(guest);

	return strncmp(text, "guest ", 6) == 0 && strncmp(text + 6, guest, n) == 0 &&
	       strncmp(text + 6 + n, rest, strlen(rest)) == 0;
}

/* Where a failure came from, for --json's "failure".  The status tells
 * most: 124 is -t, 126 and 127 are the command's (not executable, not
 * allowed, not found).  A 125 is "channel" when the guest could not be
 * reached and "agent" when it was and its agent failed the call; a 125 we
 * made ourselves says which (local), one the host daemon sent says it in
 * its reason, whose forms daemon.c fixes: "no such guest: G ..." and
 * "guest G: unable to connect ..." (host_route), and a channel's own name,
 * "guest G host-to-guest: " or "guest G guest-to-host: ", before what
 * happened to it (removed, lost, reset, no agent answered: relay and
 * fail_calls_on).  The control protocol carries no more than the text, and
 * a guest's agent could send such a text itself: it would mislead about
 * its own call only.  Any other status a fail message gives (2: request too
 * long) is the agent refusing the call. */
static const char *
failure_of(int status, const char *local, const char *message, const char *guest)
{
	if (status == 0)
		return NULL;
	if (status == EXIT_TIMEOUT)
		return "timeout";
	if (status == EXIT_NOEXEC || status == EXIT_NOTFOUND)
		return "command";
	if (local)
		return local;
	if (status == EXIT_AGENT && guest &&
	    (strncmp(message, "no such guest: ", 15) == 0 ||
	     guest_prefix(message, guest, ": unable to connect") ||
	     guest_prefix(message, guest, " host-to-guest: ") ||
	     guest_prefix(message, guest, " guest-to-host: ")))
		return "channel";
	return "agent";
}

void
call_result_fail(struct call_result *r, int status, const char *local, const char *message,
                 const char *guest)
{
	r->status = status;
	r->signal = 0;
	strlcpy(r->message, message ? message : "", sizeof r->message);
	r->failure = failure_of(status, local, r->message, guest);
}

static void
put_text(struct buf *out, const char *s)
{
	buf_append(out, s, strlen(s));
}

static void
put_field(struct buf *out, const char *name, const void *p, size_t n)
{
	buf_append(out, ",\"", 2);
	put_text(out, name);
	buf_append(out, "\":", 2);
	json_put_bytes(out, p, n);
}

/* "commands": stdout's lines, one name each */
static void
put_commands(struct buf *out, const struct buf *names)
{
	const unsigned char *p = buf_ptr(names), *end = p + buf_len(names), *nl;
	int first = 1;

	put_text(out, ",\"commands\":[");
	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if (nl == p)
			continue;
		if (!first)
			buf_append(out, ",", 1);
		first = 0;
		json_put_bytes(out, p, (size_t)(nl - p));
	}
	buf_append(out, "]", 1);
}

void
call_result_json(const char *guest, const struct call_result *r, struct buf *out)
{
	char num[80];

	put_text(out, "{\"guest\":");
	json_put_bytes(out, guest, strlen(guest));
	snprintf(num, sizeof num, ",\"status\":%d,\"signal\":", r->status);
	put_text(out, num);
	if (r->signal) {
		snprintf(num, sizeof num, "%d", r->signal);
		put_text(out, num);
	} else {
		put_text(out, "null");
	}
	if (r->failure)
		put_field(out, "failure", r->failure, strlen(r->failure));
	else
		put_text(out, ",\"failure\":null");
	if (r->message[0])
		put_field(out, "message", r->message, strlen(r->message));
	else
		put_text(out, ",\"message\":null");
	put_field(out, "stdout", buf_ptr(&r->out), buf_len(&r->out));
	put_field(out, "stderr", buf_ptr(&r->err), buf_len(&r->err));
	snprintf(num, sizeof num, ",\"elapsed_ms\":%lu,\"truncated\":%s", r->elapsed_ms,
	         call_result_truncated(r) ? "true" : "false");
	put_text(out, num);
	if (r->list)
		put_commands(out, &r->out);
	put_text(out, "}\n");
}

/* --json: one object out; 0, or the status when stdout failed */
int
json_write(const struct buf *line)
{
	if (fwrite(buf_ptr(line), 1, buf_len(line), stdout) == buf_len(line) && fflush(stdout) == 0)
		return 0;
	return errno == EPIPE ? 128 + SIGPIPE : EXIT_AGENT;
}
