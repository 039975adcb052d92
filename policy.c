/*
 * policy.c: which host commands each guest may run (host daemon only).
 *
 * The policy file is a whitelist, one rule per line:
 *
 *     GUEST-GLOB: [COMMAND-GLOB | !COMMAND-GLOB]...
 *
 * The first rule whose guest glob matches the guest's name decides; the
 * guest may run a command that matches one of its globs and none of its
 * !globs.  A guest that no rule matches may run nothing.  Globs are
 * fnmatch() patterns.  The file is checked strictly when it is read (a
 * mistake is an error with its line number, never a rule that silently
 * means something else), so matching itself cannot fail.
 */
#include "negotiator.h"

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct rule {
	const char *guest;          /* points into policy.text */
	int first, n;               /* its command globs: words[first..first+n) */
	int line;
};

struct policy {
	char *text;                 /* the file, words terminated in place */
	struct rule *rules;
	int nrules;
	const char **words;
	int nwords, capwords;
};

void
policy_free(struct policy *p)
{
	if (!p)
		return;
	free(p->text);
	free(p->rules);
	free((void *)p->words);
	free(p);
}

static int
is_blank(int c)
{
	return c == ' ' || c == '\t';
}

/* A '[' must be closed and a '\' must quote something: fnmatch() would
 * take them literally, which is never what a policy means. */
static int
glob_ok(const char *g)
{
	const char *p;

	for (p = g; *p; p++) {
		if (*p == '\\') {
			if (!*++p)
				return 0;
			continue;
		}
		if (*p != '[')
			continue;
		p++;
		if (*p == '!')
			p++;
		if (*p == ']')
			p++;
		while (*p && *p != ']')
			p++;
		if (!*p)
			return 0;
	}
	return 1;
}

/* command globs: command name characters and * ? [ ] ! only */
static int
command_glob_ok(const char *g)
{
	const char *p;

	for (p = g; *p; p++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		            "._+-*?[]!", *p))
			return 0;
	return *g != '\0' && glob_ok(g);
}

/* the first rule for guest, or NULL */
static const struct rule *
rule_for(const struct policy *p, const char *guest)
{
	int i;

	for (i = 0; i < p->nrules; i++)
		if (fnmatch(p->rules[i].guest, guest, 0) == 0)
			return &p->rules[i];
	return NULL;
}

int
policy_allows(const struct policy *p, const char *guest, const char *command)
{
	const struct rule *r;
	int i, allowed = 0;

	if (!p)
		return 1;
	if (!(r = rule_for(p, guest)))
		return 0;
	for (i = r->first; i < r->first + r->n; i++) {
		const char *w = p->words[i];

		if (w[0] == '!') {
			if (fnmatch(w + 1, command, 0) == 0)
				return 0;
		} else if (fnmatch(w, command, 0) == 0) {
			allowed = 1;
		}
	}
	return allowed;
}

int
policy_rules(const struct policy *p)
{
	return p ? p->nrules : 0;
}

/* ---- parsing ---------------------------------------------------------------------- */

struct parse {
	struct policy *p;
	const char *name;           /* for messages */
	int line;
	int caprules;
	char *why;
	size_t whylen;
};

/* "policy FILE:LINE: what is wrong"; the line's text was checked to be
 * printable ASCII before any of it is quoted */
static int
bad(struct parse *ps, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(ps->why, ps->whylen, "policy %s:%d: ", ps->name, ps->line);

	if (n >= 0 && (size_t)n < ps->whylen) {
		va_start(ap, fmt);
		vsnprintf(ps->why + n, ps->whylen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static void
add_word(struct policy *p, const char *w)
{
	if (p->nwords == p->capwords) {
		p->capwords = p->capwords ? 2 * p->capwords : 64;
		p->words = xrealloc((void *)p->words, (size_t)p->capwords * sizeof *p->words);
	}
	p->words[p->nwords++] = w;
}

/* A rule that an earlier one hides completely is a mistake (two lines for
 * one guest do not add up: the first wins), so it is refused. */
static int
check_reachable(struct parse *ps, const char *guest)
{
	int i;

	for (i = 0; i < ps->p->nrules; i++) {
		const struct rule *r = &ps->p->rules[i];

		if (strcmp(r->guest, guest) == 0 || strcmp(r->guest, "*") == 0)
			return bad(ps, "the rule for %s is never used: line %d (%s) matches "
			           "first", guest, r->line, r->guest);
	}
	return 0;
}

static int
parse_commands(struct parse *ps, struct rule *r, char *s)
{
	int positive = 0;

	r->first = ps->p->nwords;
	for (;;) {
		char *w;

		while (is_blank(*s))
			s++;
		if (!*s)
			break;
		w = s;
		while (*s && !is_blank(*s))
			s++;
		if (*s)
			*s++ = '\0';
		if (!command_glob_ok(w[0] == '!' ? w + 1 : w))
			return bad(ps, "bad command pattern %s (allowed: A-Z a-z 0-9 . _ + - "
			           "and * ? [...], ! in front to exclude)", w);
		positive += w[0] != '!';
		add_word(ps->p, w);
	}
	r->n = ps->p->nwords - r->first;
	if (r->n && !positive)
		return bad(ps, "only exclusions (!) for %s: nothing would be allowed; "
		           "add what is, e.g. *", r->guest);
	return 0;
}

/* one line, NUL-terminated, without its newline; 0 also for blank lines */
static int
parse_line(struct parse *ps, char *s)
{
	char *p, *colon = NULL, *end;
	struct rule *r;

	/* a '#' at the start of a word starts a comment */
	for (p = s; *p; p++) {
		if (*p == '#' && (p == s || is_blank(p[-1]))) {
			*p = '\0';
			break;
		}
		if (*p == '\r')
			return bad(ps, "unexpected carriage return (DOS line ends?)");
		if ((unsigned char)*p < 0x20 ? *p != '\t' : (unsigned char)*p > 0x7e)
			return bad(ps, "unexpected byte 0x%02x (only printable ASCII, blanks "
			           "and tabs outside comments)", (unsigned char)*p);
		if (*p == ':')
			colon = p;   /* the last one: command globs have none */
	}
	while (is_blank(*s))
		s++;
	if (!*s)
		return 0;
	if (!colon)
		return bad(ps, "missing ':' (the format is GUEST-GLOB: COMMAND-GLOB...)");
	*colon = '\0';
	for (end = colon; end > s && is_blank(end[-1]); end--)
		*(end - 1) = '\0';
	if (!*s)
		return bad(ps, "missing guest pattern before ':'");
	if (strcspn(s, " \t") != strlen(s))
		return bad(ps, "guest pattern %s is more than one word", s);
	if (strchr(s, '/') || !glob_ok(s))
		return bad(ps, "bad guest pattern %s (a '/', an unclosed '[' or a "
		           "trailing '\\')", s);
	if (check_reachable(ps, s) < 0)
		return -1;
	if (ps->p->nrules == POLICY_MAX_RULES)
		return bad(ps, "too many rules (at most %d)", POLICY_MAX_RULES);
	if (ps->p->nrules == ps->caprules) {
		ps->caprules = ps->caprules ? 2 * ps->caprules : 16;
		ps->p->rules = xrealloc(ps->p->rules, (size_t)ps->caprules * sizeof *ps->p->rules);
	}
	r = &ps->p->rules[ps->p->nrules];
	r->guest = s;
	r->line = ps->line;
	if (parse_commands(ps, r, colon + 1) < 0)
		return -1;
	ps->p->nrules++;
	return 0;
}

struct policy *
policy_parse(const char *text, size_t len, const char *name, char *why, size_t whylen)
{
	struct parse ps;
	char *s, *nl, *end;

	ps.p = xcalloc(1, sizeof *ps.p);
	ps.p->text = xmalloc(len + 1);
	memcpy(ps.p->text, text, len);
	ps.p->text[len] = '\0';
	ps.caprules = 0;
	ps.name = name;
	ps.why = why;
	ps.whylen = whylen;
	end = ps.p->text + len;
	for (s = ps.p->text, ps.line = 1; s < end; s = nl + 1, ps.line++) {
		nl = memchr(s, '\n', (size_t)(end - s));
		if (!nl)
			nl = end;
		if (nl - s > POLICY_MAX_LINE) {
			bad(&ps, "line longer than %d bytes", POLICY_MAX_LINE);
			goto fail;
		}
		*nl = '\0';
		if (strlen(s) != (size_t)(nl - s)) {
			bad(&ps, "unexpected byte 0x00");
			goto fail;
		}
		if (parse_line(&ps, s) < 0)
			goto fail;
	}
	return ps.p;
fail:
	policy_free(ps.p);
	return NULL;
}

static struct policy *
load_fail(int fd, const char *path, const char *what, char *why, size_t whylen)
{
	snprintf(why, whylen, "policy %s: %s", path, what);
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* O_NONBLOCK: a FIFO put there must not block the daemon in open() */
struct policy *
policy_load(const char *path, char *why, size_t whylen)
{
	int fd = compat_open(path, O_RDONLY | O_NONBLOCK, CX_CLOEXEC);
	struct stat st;
	char *text, max[64];
	size_t len = 0;
	ssize_t n;
	struct policy *p;

	if (fd < 0 || fstat(fd, &st) < 0)
		return load_fail(fd, path, strerror(errno), why, whylen);
	if (!S_ISREG(st.st_mode))
		return load_fail(fd, path, S_ISDIR(st.st_mode) ? "a directory, not a file"
		                                               : "not a regular file", why, whylen);
	text = xmalloc(POLICY_MAX_SIZE + 1);
	while ((n = read(fd, text + len, POLICY_MAX_SIZE + 1 - len)) > 0)
		if ((len += (size_t)n) > POLICY_MAX_SIZE)
			break;
	if (n < 0 || len > POLICY_MAX_SIZE) {
		const char *what = n < 0 ? strerror(errno) : max;

		sprintf(max, "larger than %lu bytes", (unsigned long)POLICY_MAX_SIZE);
		free(text);
		return load_fail(fd, path, what, why, whylen);
	}
	close(fd);
	p = policy_parse(text, len, path, why, whylen);
	free(text);
	return p;
}
