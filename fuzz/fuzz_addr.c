/*
 * fuzz_addr.c: libFuzzer target for the address syntax (addr.c): every
 * input goes through addr_list_parse (a header value or argv), the same
 * text as one -f address (addr_parse_one, up to the first NUL), and
 * addr_list_qualify with a domain and with none.
 *
 * Properties checked besides memory safety, all promised by postino.h:
 * - an address found is non-empty, shorter than ADDR_MAX, free of CR, LF
 *   and NUL, and reads back as itself through addr_parse_one;
 * - qualifying with "" changes nothing;
 * - qualifying with a domain gives a text whose list is the original
 *   list with "@domain" added to every address without '@' (unless that
 *   made one too long), and qualifying it again changes nothing.
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

#define DOMAIN	"example.org"

/* A found address reads back as itself when given alone (as to -f). */
static void
check_found(const char *a)
{
	char again[ADDR_MAX];
	struct error err;
	size_t len = strlen(a);

	CHECK(len > 0 && len < ADDR_MAX);
	CHECK(strpbrk(a, "\r\n") == NULL);
	error_clear(&err);
	CHECK(addr_parse_one(a, again, sizeof(again), &err) == ST_OK);
	CHECK(strcmp(again, a) == 0);
}

static void
check_one(const char *text)
{
	char out[ADDR_MAX], small[8], again[ADDR_MAX];
	struct error err;
	int rc;

	error_clear(&err);
	rc = addr_parse_one(text, out, sizeof(out), &err);
	if (rc != ST_OK) {
		CHECK(rc == ST_DATA && (int)err.status == rc);
		return;
	}
	CHECK(strlen(out) < sizeof(out) && strpbrk(out, "\r\n") == NULL);
	if (out[0] != '\0') {
		CHECK(addr_parse_one(out, again, sizeof(again), &err) ==
		    ST_OK);
		CHECK(strcmp(again, out) == 0);
	}
	/* A short buffer is an error, never an overrun or a cut address. */
	rc = addr_parse_one(text, small, sizeof(small), &err);
	CHECK(rc == (strlen(out) < sizeof(small) ? ST_OK : ST_DATA));
}

/* Has the addr-spec a domain: an '@' outside a quoted local part? */
static int
has_domain(const char *a)
{
	int quoted = 0;

	for (; *a != '\0'; a++) {
		if (quoted && *a == '\\' && a[1] != '\0')
			a++;
		else if (*a == '"')
			quoted = !quoted;
		else if (*a == '@' && !quoted)
			return 1;
	}
	return 0;
}

/* The expected list after qualifying; -1 if an address got too long. */
static int
expect_qualified(const struct addrlist *in, struct addrlist *out)
{
	char buf[ADDR_MAX];
	struct error err;
	size_t i;

	for (i = 0; i < in->n; i++) {
		if (has_domain(in->v[i]))
			CHECK(strlcpy(buf, in->v[i], sizeof(buf)) <
			    sizeof(buf));
		else if ((size_t)snprintf(buf, sizeof(buf), "%s@%s",
		    in->v[i], DOMAIN) >= sizeof(buf))
			return -1;
		CHECK(addrlist_add(out, buf, &err) == ST_OK);
	}
	return 0;
}

static void
check_qualify(const char *text, size_t len, const struct addrlist *list)
{
	struct addrlist want, got;
	struct error err;
	char *q, *q2;
	size_t i;

	/* No domain: the text comes back as it was. */
	if ((q = addr_list_qualify(text, len, "", &err)) != NULL) {
		CHECK(memcmp(q, text, len) == 0 && q[len] == '\0');
		free(q);
	}
	if ((q = addr_list_qualify(text, len, DOMAIN, &err)) == NULL)
		return;
	addrlist_init(&want);
	addrlist_init(&got);
	if (expect_qualified(list, &want) == 0) {
		CHECK(addr_list_parse(q, strlen(q), &got, &err) == ST_OK);
		CHECK(got.n == want.n);
		for (i = 0; i < got.n; i++)
			CHECK(strcmp(got.v[i], want.v[i]) == 0);
		/* Qualified text has no bare name left to qualify. */
		q2 = addr_list_qualify(q, strlen(q), DOMAIN, &err);
		CHECK(q2 != NULL && strcmp(q2, q) == 0);
		free(q2);
	}
	addrlist_free(&want);
	addrlist_free(&got);
	free(q);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct addrlist list;
	struct error err;
	char *copy;
	size_t i;
	int rc;

	addrlist_init(&list);
	error_clear(&err);
	rc = addr_list_parse(text, size, &list, &err);
	if (rc == ST_OK) {
		for (i = 0; i < list.n; i++)
			check_found(list.v[i]);
		check_qualify(text, size, &list);
	} else {
		CHECK(rc == ST_DATA || rc == ST_OSERR);
		CHECK((int)err.status == rc && err.text[0] != '\0');
		/* What does not parse is never rewritten. */
		CHECK(addr_list_qualify(text, size, DOMAIN, &err) == NULL);
	}
	addrlist_free(&list);

	/* The same bytes as one -f address: a C string, up to a NUL. */
	if ((copy = malloc(size + 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	check_one(copy);
	free(copy);
	return 0;
}
