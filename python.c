/*
 * python.c: what python-negotiator 0.12.2 says, in both roles: the JSON
 * requests we send a python server and how its answers map to our exit
 * statuses, and the answers we give a python client (see PROTOCOL,
 * "python-negotiator peers", and shared/notes/python-wire.md).
 *
 * Pure functions over buffers: the daemons and clients do the I/O.
 */
#include "negotiator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- requests to a python server ---------------------------------------------- */

void
py_request_list(struct buf *b)
{
	static const char req[] = "{\"method\": \"list_commands\", \"args\": [], \"kw\": {}}";

	buf_append(b, req, sizeof req - 1);
}

void
py_request_exec(struct buf *b, char **argv, const void *input, size_t inlen, int has_input)
{
	static const char head[] = "{\"method\": \"execute\", \"args\": [";
	int i;

	buf_append(b, head, sizeof head - 1);
	for (i = 0; argv[i]; i++) {
		if (i)
			buf_append(b, ", ", 2);
		json_put_string(b, argv[i], strlen(argv[i]));
	}
	buf_append(b, "], \"kw\": {\"capture\": true", 25);
	if (has_input) {
		buf_append(b, ", \"input\": ", 11);
		json_put_string(b, input, inlen);
	}
	buf_append(b, "}}", 2);
}

/* ---- a python server's answer ---------------------------------------------------- */

/* python's executor says "External command failed with exit code N!" (N < 0:
 * killed by signal -N) or "External command isn't available!" (127) */
int
py_error_status(const char *text)
{
	const char *p = strstr(text, "exit code ");

	if (p) {
		long n = strtol(p + 10, NULL, 10);

		if (n < 0 && n >= -127)
			return 128 + (int)-n;
		if (n > 0 && n <= 255)
			return (int)n;
	}
	if (strstr(text, "isn't available"))
		return EXIT_NOTFOUND;
	if (strstr(text, "Permission denied") || strstr(text, "not allowed"))
		return EXIT_NOEXEC;
	return EXIT_AGENT;
}

/* python's "External command isn't available!\n\nCommand:\nPATH ..."
 * as one line in our words, the client's error line (a daemon that relays
 * it is the same program as its client): which side, which command, and
 * where it looked */
static int
py_not_found(struct buf *err, const char *text)
{
	const char *cmd = strstr(text, "\nCommand:\n"), *end, *name;
	char line[600], path[300];
	size_t n;

	if (!cmd)
		return -1;
	cmd += 10;
	end = cmd + strcspn(cmd, " \n");
	n = (size_t)(end - cmd);
	escape_text(path, sizeof path, cmd, n);
	name = strrchr(path, '/');
	name = name ? name + 1 : path;
	snprintf(line, sizeof line, "%s: error: command not found in the %s's commands: %s "
	         "(python-negotiator looked for %s)\n", progname, REMOTE_SIDE, name, path);
	buf_append(err, line, strlen(line));
	return 0;
}

int
py_parse_answer(const unsigned char *json, size_t n, int list, struct buf *out,
                struct buf *err, const char **why)
{
	struct json *j = json_parse(json, n, why);
	const struct json *ok, *v, *e;
	int code = EXIT_AGENT;

	if (!j) {
		buf_append(err, "malformed answer from the python agent\n", 39);
		return EXIT_AGENT;
	}
	ok = json_get(j, "success");
	if (!ok) {
		*why = "an answer without \"success\"";
	} else if (json_truthy(ok)) {
		v = json_get(j, "result");
		if (list && v && v->type == J_ARRAY) {
			/* the names, sorted, one per line: as a native agent lists them */
			const struct json *x;
			char **names;
			size_t k = 0, i;

			for (x = v->child; x; x = x->next)
				k++;
			names = xcalloc(k + 1, sizeof *names);
			for (x = v->child, i = 0; x; x = x->next)
				if (x->type == J_STRING && x->len == strlen(x->str))
					names[i++] = x->str;
			buf_put_sorted_lines(out, names, i);
			free(names);
			code = 0;
		} else if (!list && v && v->type == J_STRING) {
			buf_append(out, v->str, v->len);
			/* python strips a one-line result; its CLI prints it with a newline */
			if (v->len && v->str[v->len - 1] != '\n')
				buf_append(out, "\n", 1);
			code = 0;
		} else {
			*why = "an answer whose result is not what was asked for";
		}
	} else {
		e = json_get(j, "error");
		if (e && e->type == J_STRING) {
			code = py_error_status(e->str);
			if (code != EXIT_NOTFOUND || py_not_found(err, e->str) < 0) {
				buf_append(err, e->str, e->len);
				if (e->len && e->str[e->len - 1] != '\n')
					buf_append(err, "\n", 1);
			}
		} else {
			*why = "a failure without an error text";
		}
	}
	json_free(j);
	return code;
}

/* ---- answers to a python client -------------------------------------------------- */

/* python returns stdout stripped when the stripped text has no newline */
void
py_answer_output(struct buf *b, const unsigned char *out, size_t n)
{
	size_t s = 0, e = n;

	while (s < e && strchr(" \t\n\r\v\f", out[s]) && out[s])
		s++;
	while (e > s && strchr(" \t\n\r\v\f", out[e - 1]) && out[e - 1])
		e--;
	buf_append(b, "{\"success\": true, \"result\": ", 28);
	if (!memchr(out + s, '\n', e - s))
		json_put_string(b, out + s, e - s);
	else
		json_put_string(b, out, n);
	buf_append(b, "}", 1);
}

void
py_answer_list(struct buf *b, const unsigned char *names, size_t n)
{
	const unsigned char *p = names, *end = names + n, *nl;
	int first = 1;

	buf_append(b, "{\"success\": true, \"result\": [", 29);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if (nl > p) {
			if (!first)
				buf_append(b, ", ", 2);
			json_put_string(b, p, (size_t)(nl - p));
			first = 0;
		}
		p = nl + 1;
	}
	buf_append(b, "]}", 2);
}

void
py_answer_error(struct buf *b, const char *text, size_t n)
{
	buf_append(b, "{\"success\": false, \"error\": ", 28);
	json_put_string(b, text, n);
	buf_append(b, "}", 1);
}

/* python's executor's message for a command that did not exit 0 */
void
py_exit_message(struct buf *t, int signaled, int code, char **argv, const unsigned char *out,
                size_t outlen)
{
	char line[64];
	int i;

	if (!signaled && code == EXIT_NOTFOUND) {
		buf_append(t, "External command isn't available!", 33);
	} else {
		snprintf(line, sizeof line, "External command failed with exit code %d!",
		         signaled ? -code : code);
		buf_append(t, line, strlen(line));
	}
	buf_append(t, "\n\nCommand:\n", 11);
	for (i = 0; argv && argv[i]; i++) {
		if (i)
			buf_append(t, " ", 1);
		buf_append(t, argv[i], strlen(argv[i]));
	}
	if (outlen) {
		buf_append(t, "\n\nStandard output:\n", 19);
		buf_append(t, out, outlen);
	}
}

/* A python client's request: PY_LIST, PY_EXEC (argv and input filled), or
 * PY_BAD with the error text to answer in why. */
int
py_parse_request(const unsigned char *json, size_t n, char ***argv, struct buf *input,
                 int *has_input, char *why, size_t whylen)
{
	const char *jwhy;
	struct json *j = json_parse(json, n, &jwhy);
	const struct json *m, *a, *kw, *in, *x;
	char text[300];
	int rc = PY_BAD, k;

	*argv = NULL;
	*has_input = 0;
	if (!j || j->type != J_OBJECT) {
		snprintf(why, whylen, "malformed request: %s", j ? "not a JSON object" : jwhy);
		goto out;
	}
	m = json_get(j, "method");
	a = json_get(j, "args");
	kw = json_get(j, "kw");
	if (!m || m->type != J_STRING) {
		snprintf(why, whylen, "malformed request: no method");
		goto out;
	}
	if ((a && a->type != J_ARRAY) || (kw && kw->type != J_OBJECT)) {
		snprintf(why, whylen, "malformed request: args must be a list, kw an object");
		goto out;
	}
	if (strcmp(m->str, "list_commands") == 0) {
		if ((a && a->child) || (kw && kw->child))
			snprintf(why, whylen, "list_commands() takes no arguments");
		else
			rc = PY_LIST;
		goto out;
	}
	if (strcmp(m->str, "execute") != 0) {
		snprintf(why, whylen, "Method %s not supported",
		         escape_text(text, sizeof text, m->str, m->len));
		goto out;
	}
	if (!a || !a->child) {
		snprintf(why, whylen, "execute: no command given");
		goto out;
	}
	for (k = 0, x = a->child; x; x = x->next, k++)
		if (x->type != J_STRING || x->len != strlen(x->str) || k == MAX_ARGS) {
			snprintf(why, whylen, "execute: the command and its arguments must be "
			         "strings without NUL (at most %d)", MAX_ARGS);
			goto out;
		}
	in = kw ? json_get(kw, "input") : NULL;
	if (in && in->type != J_STRING && in->type != J_NULL) {
		snprintf(why, whylen, "execute: input must be a string");
		goto out;
	}
	*argv = xcalloc((size_t)k + 1, sizeof **argv);
	for (k = 0, x = a->child; x; x = x->next, k++)
		(*argv)[k] = xstrdup(x->str);
	if (in && in->type == J_STRING) {
		*has_input = 1;
		buf_append(input, in->str, in->len);
	}
	rc = PY_EXEC;
out:
	json_free(j);
	return rc;
}
