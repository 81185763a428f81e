/*
 * fuzz_revaliases.c: libFuzzer target for the revaliases parser
 * (alias_parse_revaliases). The input is the file's text; the login
 * looked up is the first line's login field (the bytes before its first
 * ':'), so that at least one line always matches and the fuzzer reaches
 * the address, hub and port fields without guessing a name. The lookup
 * is repeated for "root" as a second, fixed login.
 *
 * A match must leave an address that addr_is_safe() accepts (it becomes
 * MAIL FROM), a hub without blanks or control bytes, and a valid port.
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

#define LOGIN_MAX	64

static int
host_clean(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f || *s == '<' ||
		    *s == '>')
			return 0;
	return 1;
}

/* 1..65535 or letters only, as alias.c and config.c accept. */
static int
port_valid(const char *s)
{
	const char *errstr;

	if (s[0] >= '0' && s[0] <= '9') {
		(void)strtonum(s, 1, 65535, &errstr);
		return errstr == NULL;
	}
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
			return 0;
	return 1;
}

static void
lookup(const char *buf, size_t len, const char *login)
{
	struct revalias *ra;
	struct error err;
	int rc;

	if ((ra = malloc(sizeof(*ra))) == NULL)
		return;
	error_clear(&err);
	rc = alias_parse_revaliases(buf, len, login, ra, &err);
	CHECK(memchr(ra->address, '\0', sizeof(ra->address)) != NULL);
	CHECK(memchr(ra->hub_host, '\0', sizeof(ra->hub_host)) != NULL);
	CHECK(memchr(ra->hub_port, '\0', sizeof(ra->hub_port)) != NULL);
	CHECK(memchr(err.text, '\0', sizeof(err.text)) != NULL);
	if (rc == ST_OK) {
		if (ra->found)
			CHECK(addr_is_safe(ra->address));
		else
			CHECK(ra->address[0] == '\0' &&
			    ra->hub_host[0] == '\0');
		CHECK(host_clean(ra->hub_host));
		CHECK(ra->hub_port[0] == '\0' || port_valid(ra->hub_port));
	} else
		CHECK(rc == ST_CONFIG && (int)err.status == rc &&
		    err.text[0] != '\0');
	free(ra);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data, *colon;
	char login[LOGIN_MAX];
	size_t n;

	/* The login cannot hold a NUL: it is a C string in alias.c. */
	colon = memchr(buf, ':', size);
	n = colon != NULL ? (size_t)(colon - buf) : 0;
	if (n >= sizeof(login))
		n = sizeof(login) - 1;
	memcpy(login, buf, n);
	login[n] = '\0';
	lookup(buf, size, login);
	lookup(buf, size, "root");
	lookup(buf, size, NULL);
	return 0;
}
