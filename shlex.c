/*
 * shlex.c: split a command line into words the way python's shlex.split()
 * does (POSIX mode), so `-e 'cmd "a b" c\ d'` means what it meant with
 * python-negotiator.  Quotes and backslashes only: no variables, no globs,
 * no shell ever runs.
 */
#include "negotiator.h"

#include <stdlib.h>
#include <string.h>

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

struct words {
	char **argv;
	int argc;
	char *word;       /* the word being built */
	size_t len;
	int started;      /* a word exists, even if empty ('') */
};

static void
word_put(struct words *w, char c)
{
	w->word[w->len++] = c;
	w->started = 1;
}

static int
word_end(struct words *w)
{
	if (!w->started)
		return 0;
	if (w->argc >= MAX_ARGS)
		return -1;
	w->word[w->len] = '\0';
	w->argv[w->argc++] = xstrdup(w->word);
	w->len = 0;
	w->started = 0;
	return 0;
}

char **
shlex_split(const char *s, const char **err)
{
	struct words w;
	size_t i, n = strlen(s);

	w.argv = xcalloc(MAX_ARGS + 1, sizeof(char *));
	w.argc = 0;
	w.word = xmalloc(n + 1);
	w.len = 0;
	w.started = 0;
	*err = NULL;
	for (i = 0; i < n && !*err; i++) {
		char c = s[i];

		if (is_space(c)) {
			if (word_end(&w) < 0)
				*err = "too many arguments";
		} else if (c == '\\') {
			if (i + 1 == n)
				*err = "no escaped character after backslash";
			else
				word_put(&w, s[++i]);
		} else if (c == '\'') {
			w.started = 1;
			for (i++; i < n && s[i] != '\''; i++)
				word_put(&w, s[i]);
			if (i == n)
				*err = "no closing quotation";
		} else if (c == '"') {
			w.started = 1;
			for (i++; i < n && s[i] != '"'; i++) {
				/* inside double quotes only \" and \\ are escapes */
				if (s[i] == '\\' && i + 1 < n && (s[i + 1] == '"' || s[i + 1] == '\\'))
					i++;
				word_put(&w, s[i]);
			}
			if (i == n)
				*err = "no closing quotation";
		} else {
			word_put(&w, c);
		}
	}
	if (!*err && word_end(&w) < 0)
		*err = "too many arguments";
	if (!*err && w.argc == 0)
		*err = "empty command";
	free(w.word);
	if (*err) {
		free_argv(w.argv);
		return NULL;
	}
	return w.argv;
}
