/*
 * fuzz_senders.c: libFuzzer target for the AllowedSendersFile parser
 * (sender_parse_allowed) and its matcher (sender_may_use). The input is
 * the file's text; the login looked up is the first line's login field
 * (the bytes before its first ':'), then "*"-less "nobody", so that the
 * fuzzer reaches the entries without guessing a name.
 *
 * Whatever the input: every entry is a NUL-terminated string without
 * blanks, at most SENDER_ALLOW_MAX of them; an error is ST_CONFIG with
 * a text; the null sender is always allowed; "*" allows anything.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postino.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

static void
lookup(const char *buf, size_t len, const char *login)
{
	struct sender_allow *a;
	struct error err;
	size_t i;
	int rc, any = 0;

	if ((a = malloc(sizeof(*a))) == NULL)
		return;
	error_clear(&err);
	rc = sender_parse_allowed("fuzz", buf, len, login, "example.org", a,
	    &err);
	CHECK(memchr(err.text, '\0', sizeof(err.text)) != NULL);
	if (rc != ST_OK)
		CHECK(rc == ST_CONFIG && err.text[0] != '\0');
	CHECK(a->n <= SENDER_ALLOW_MAX);
	for (i = 0; i < a->n; i++) {
		CHECK(memchr(a->entry[i], '\0', ADDR_MAX) != NULL);
		CHECK(a->entry[i][0] != '\0');
		CHECK(strpbrk(a->entry[i], " \t\n") == NULL);
		if (strcmp(a->entry[i], "*") == 0)
			any = 1;
	}
	CHECK(sender_may_use(a, NULL, ""));
	if (rc == ST_OK && any)
		CHECK(sender_may_use(a, NULL, "anyone@anywhere.test"));
	for (i = 0; rc == ST_OK && i < a->n; i++)
		if (a->entry[i][0] != '*')
			CHECK(sender_may_use(a, NULL, a->entry[i]));
	free(a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	char login[64];
	const char *colon = memchr(text, ':', size);
	size_t n = colon != NULL ? (size_t)(colon - text) : 0;

	if (n >= sizeof(login))
		n = sizeof(login) - 1;
	memcpy(login, text, n);
	login[n] = '\0';
	/* A NUL in the login: the C string ends there, as getpwuid's would. */
	lookup(text, size, login);
	lookup(text, size, "nobody");
	return 0;
}
