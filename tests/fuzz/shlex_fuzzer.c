/*
 * shlex_fuzzer: shlex_split() on arbitrary text (up to the first NUL).
 *
 * Memory safety, sane results (1 to MAX_ARGS words, never more bytes than
 * the input had), and a round trip: the words quoted again ('...', with '
 * written as '\'') and split again give the same words.
 */
#include "fuzz.h"

static char *
quote_words(char **argv)
{
	size_t n = 1, i, k;
	char *s, *o;

	for (i = 0; argv[i]; i++)
		n += 4 * strlen(argv[i]) + 3;
	s = o = malloc(n);
	for (i = 0; argv[i]; i++) {
		if (i)
			*o++ = ' ';
		*o++ = '\'';
		for (k = 0; argv[i][k]; k++) {
			if (argv[i][k] == '\'') {
				memcpy(o, "'\\''", 4);
				o += 4;
			} else {
				*o++ = argv[i][k];
			}
		}
		*o++ = '\'';
	}
	*o = '\0';
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *q, **argv, **again;
	const char *err = NULL;
	size_t total = 0;
	int i;

	memcpy(s, data, size);
	s[size] = '\0';
	argv = shlex_split(s, &err);
	if (!argv) {
		CHECK(err && *err, "no error message");
		free(s);
		return 0;
	}
	CHECK(err == NULL, "an error and a result");
	for (i = 0; argv[i]; i++)
		total += strlen(argv[i]);
	CHECK(i >= 1 && i <= MAX_ARGS, "%d words", i);
	CHECK(total <= strlen(s), "%lu bytes of words from %lu", (unsigned long)total,
	      (unsigned long)strlen(s));
	q = quote_words(argv);
	again = shlex_split(q, &err);
	CHECK(again != NULL, "the quoted words do not split: %s", err);
	for (i = 0; argv[i] && again[i]; i++)
		CHECK(strcmp(argv[i], again[i]) == 0, "word %d changed", i);
	CHECK(!argv[i] && !again[i], "word count changed");
	free_argv(again);
	free_argv(argv);
	free(q);
	free(s);
	return 0;
}
