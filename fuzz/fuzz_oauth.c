/*
 * fuzz_oauth.c: libFuzzer target for the token endpoint's answer as
 * oauth.c reads it: the HTTP/1.1 response parser (oauth_http_parse, at
 * every split point the first byte picks, with and without EOF) and the
 * JSON reader of its body (oauth_json_parse). A complete response's
 * body fits the room given; a parsed reply's strings are terminated, and
 * an error leaves no token behind.
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

#define BODY_CAP	4096

static void
check_json(const char *buf, size_t len)
{
	static struct oauth_reply r;

	if (oauth_json_parse(buf, len, &r) != 0) {
		CHECK(r.access_token[0] == '\0' && r.refresh_token[0] == '\0');
		return;
	}
	CHECK(memchr(r.access_token, '\0', sizeof(r.access_token)) != NULL);
	CHECK(memchr(r.refresh_token, '\0', sizeof(r.refresh_token)) != NULL);
	CHECK(memchr(r.token_type, '\0', sizeof(r.token_type)) != NULL);
	CHECK(memchr(r.error, '\0', sizeof(r.error)) != NULL);
	CHECK(memchr(r.error_description, '\0',
	    sizeof(r.error_description)) != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body;
	const char *text = (const char *)data + 1;
	size_t len, split, bodylen = 0;
	int status = 0, rc, eof;

	if (size < 1)
		return 0;
	len = size - 1;
	split = len > 0 ? data[0] % (len + 1) : 0;
	if ((body = malloc(BODY_CAP)) == NULL)
		return 0;
	/* A prefix first, as a read loop sees it: never done past EOF. */
	rc = oauth_http_parse(text, split, 0, &status, body, BODY_CAP,
	    &bodylen);
	CHECK(rc >= -1 && rc <= 1);
	for (eof = 0; eof <= 1; eof++) {
		rc = oauth_http_parse(text, len, eof, &status, body, BODY_CAP,
		    &bodylen);
		CHECK(rc >= -1 && rc <= 1);
		CHECK(!eof || rc != 0);
		if (rc == 1) {
			CHECK(bodylen <= BODY_CAP && bodylen <= len);
			CHECK(status >= 200 && status <= 599);
			check_json(body, bodylen);
		}
	}
	check_json(text, len);
	free(body);
	return 0;
}
