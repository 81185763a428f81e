/*
 * test_oauth.c: oauth.c's parsers and auth.c's bearer encodings. The
 * JSON reader on Microsoft's and Google's token responses, RFC 6749
 * errors, expires_in as a string, skipped nesting, and what it refuses;
 * the HTTP response parser on Content-Length, chunked and to-EOF bodies,
 * 100 Continue, split input and malformed heads; the form encoding; and
 * the XOAUTH2 and OAUTHBEARER (RFC 7628 3.1) messages byte for byte;
 * the configuration keys' rules and "postino token".
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "stubconn.h"

static struct oauth_reply *
parse_json(const char *text, int want)
{
	static struct oauth_reply r;

	assert_int_equal(oauth_json_parse(text, strlen(text), &r), want);
	return &r;
}

static void
test_json_microsoft(void **state)
{
	struct oauth_reply *r;

	(void)state;
	r = parse_json("{\"token_type\":\"Bearer\",\"scope\":\"https://outlook."
	    "office.com/SMTP.Send\",\"expires_in\":3599,\"ext_expires_in\":"
	    "3599,\"access_token\":\"eyJ0eXAi.eyJhdWQi.sig-_\",\"refresh_"
	    "token\":\"0.AX0A\\/rt\"}", 0);
	assert_string_equal(r->access_token, "eyJ0eXAi.eyJhdWQi.sig-_");
	assert_string_equal(r->refresh_token, "0.AX0A/rt");
	assert_string_equal(r->token_type, "Bearer");
	assert_int_equal(r->expires_in, 3599);
	assert_string_equal(r->error, "");
}

static void
test_json_google_and_strings(void **state)
{
	struct oauth_reply *r;

	(void)state;
	/* Whitespace, a nested value skipped, expires_in as a string. */
	r = parse_json(" {\n \"access_token\" : \"ya29.a0Af\",\n \"expires_in"
	    "\": \"3920\", \"x\": {\"a\": [1, 2.5e3, true, null, {}]},\n "
	    "\"token_type\": \"Bearer\", \"id_token\": null }\n", 0);
	assert_string_equal(r->access_token, "ya29.a0Af");
	assert_int_equal(r->expires_in, 3920);
	assert_string_equal(r->refresh_token, "");
	/* No expires_in: -1, the caller's default. */
	r = parse_json("{\"access_token\":\"t\"}", 0);
	assert_int_equal(r->expires_in, -1);
	/* Escapes: \u00e9 is not ASCII and becomes '?'. */
	r = parse_json("{\"error\":\"invalid_client\",\"error_description\":"
	    "\"AADSTS7000215: Invalid client secret \\u00e9 \\\"x\\\"\\n\"}",
	    0);
	assert_string_equal(r->error, "invalid_client");
	assert_string_equal(r->error_description,
	    "AADSTS7000215: Invalid client secret ? \"x\"\n");
	assert_string_equal(r->access_token, "");
	r = parse_json("{}", 0);
	assert_string_equal(r->access_token, "");
}

static void
test_json_refused(void **state)
{
	static const char *const bad[] = {
		"", "[]", "\"x\"", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}",
		"{\"a\":1} x", "{\"access_token\":\"a\nb\"}",
		"{\"access_token\":\"\\x\"}", "{\"a\":tru}",
		"{\"expires_in\":\"12x\"}", "{\"a\":\"\\u12\"}",
		"{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}",
		"{\"access_token\":\"unterminated",
		"{\"access_token\":\"a\\nb\"}", "{\"refresh_token\":\"a b\"}",
		"{\"access_token\":\"\xc3\xa9\"}",
	};
	struct oauth_reply *r;
	char *big;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = parse_json(bad[i], -1);
		assert_string_equal(r->access_token, "");
	}
	/* A token longer than its buffer is refused, never cut. */
	big = malloc(OAUTH_TOKEN_MAX + 64);
	assert_non_null(big);
	memset(big, 'a', OAUTH_TOKEN_MAX + 63);
	memcpy(big, "{\"access_token\":\"", 17);
	memcpy(big + OAUTH_TOKEN_MAX + 61, "\"}", 3);
	assert_int_equal(oauth_json_parse(big, strlen(big), r), -1);
	/* A long description is cut, not refused. */
	memcpy(big, "{\"error_description\":\"", 22);
	memcpy(big + OAUTH_TOKEN_MAX + 61, "\"}", 3);
	assert_int_equal(oauth_json_parse(big, strlen(big), r), 0);
	assert_int_equal(strlen(r->error_description),
	    sizeof(r->error_description) - 1);
	free(big);
}

static int
http(const char *text, int eof, int *status, char *body, size_t *len)
{
	return oauth_http_parse(text, strlen(text), eof, status, body, 64,
	    len);
}

static void
test_http_length(void **state)
{
	const char *resp = "HTTP/1.1 200 OK\r\nContent-Type: application/"
	    "json\r\ncontent-length: 5\r\n\r\n{\"a\"}";
	char body[64];
	size_t len, i;
	int status = 0;

	(void)state;
	assert_int_equal(http(resp, 0, &status, body, &len), 1);
	assert_int_equal(status, 200);
	assert_int_equal(len, 5);
	assert_memory_equal(body, "{\"a\"}", 5);
	/* Every shorter prefix needs more, and is malformed at EOF. */
	for (i = 0; i < strlen(resp); i++) {
		assert_int_equal(oauth_http_parse(resp, i, 0, &status, body,
		    64, &len), 0);
		assert_int_equal(oauth_http_parse(resp, i, 1, &status, body,
		    64, &len), -1);
	}
	/* A body over the room given. */
	assert_int_equal(http("HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n",
	    0, &status, body, &len), -1);
}

static void
test_http_chunked_and_eof(void **state)
{
	char body[64];
	size_t len;
	int status = 0;

	(void)state;
	assert_int_equal(http("HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding:"
	    " chunked\r\n\r\n3;ext=1\r\n{\"e\r\n2\r\n\"}\r\n0\r\nX-T: 1\r\n\r\n",
	    0, &status, body, &len), 1);
	assert_int_equal(status, 401);
	assert_int_equal(len, 5);
	assert_memory_equal(body, "{\"e\"}", 5);
	assert_int_equal(http("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
	    "\r\n\r\n3\r\nabc\r\n", 0, &status, body, &len), 0);
	assert_int_equal(http("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
	    "\r\n\r\n3\r\nabcXY0\r\n\r\n", 0, &status, body, &len), -1);
	assert_int_equal(http("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
	    "\r\n\r\nzz\r\n", 0, &status, body, &len), -1);
	/* No length: the body runs to EOF. */
	assert_int_equal(http("HTTP/1.0 200 OK\r\n\r\n{}", 0, &status, body,
	    &len), 0);
	assert_int_equal(http("HTTP/1.0 200 OK\r\n\r\n{}", 1, &status, body,
	    &len), 1);
	assert_int_equal(len, 2);
	/* 100 Continue, then the answer. */
	assert_int_equal(http("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad"
	    "\r\nContent-Length: 2\r\n\r\n{}", 0, &status, body, &len), 1);
	assert_int_equal(status, 400);
}

static void
test_http_malformed(void **state)
{
	static const char *const bad[] = {
		"HTTP/2 200 OK\r\n\r\n", "SMTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 999 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
		"\r\n\r\n",
	};
	char body[64];
	size_t len, i;
	int status;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(http(bad[i], 0, &status, body, &len), -1);
}

static void
test_form(void **state)
{
	char out[64] = "";

	(void)state;
	assert_int_equal(oauth_form_append(out, sizeof(out), "grant_type",
	    "refresh_token"), 0);
	assert_int_equal(oauth_form_append(out, sizeof(out), "scope",
	    "https://x/.default a~b"), 0);
	assert_string_equal(out, "grant_type=refresh_token&scope=https%3A%2F"
	    "%2Fx%2F.default+a~b");
	/* Full: refused and wiped, never cut. */
	assert_int_equal(oauth_form_append(out, sizeof(out), "x",
	    "0123456789012345678901234567890123456789"), -1);
	assert_string_equal(out, "");
}

/* base64 text -> the raw message, for comparing byte for byte. */
static size_t
decoded(const char *b64, unsigned char *raw, size_t cap)
{
	int n = auth_base64_decode(b64, strlen(b64), raw, cap);

	assert_true(n >= 0);
	return (size_t)n;
}

static void
test_xoauth2(void **state)
{
	static const char want[] = "user=someuser@example.com\001auth=Bearer "
	    "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\001\001";
	unsigned char raw[256];
	char out[AUTH_OAUTH_B64_MAX];
	struct error err;

	(void)state;
	/* Google's XOAUTH2 documentation example. */
	assert_int_equal(auth_xoauth2_response("someuser@example.com",
	    "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg", out, sizeof(out),
	    &err), ST_OK);
	assert_string_equal(out, "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRo"
	    "PUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRH"
	    "RXVZMjl0Q2cBAQ==");
	assert_int_equal(decoded(out, raw, sizeof(raw)), sizeof(want) - 1);
	assert_memory_equal(raw, want, sizeof(want) - 1);
	assert_int_equal(auth_xoauth2_response("u", "", out, sizeof(out),
	    &err), ST_DATA);
	assert_int_equal(auth_xoauth2_response("u", "a\001b", out,
	    sizeof(out), &err), ST_DATA);
	assert_int_equal(auth_xoauth2_response("u", "tok", out, 8, &err),
	    ST_SOFTWARE);
}

static void
test_oauthbearer(void **state)
{
	/* RFC 7628 4.1's example. */
	static const char want[] = "n,a=user@example.com,\001host=server."
	    "example.com\001port=143\001auth=Bearer vF9dft4qmTc2Nvb3RlckBhdHRh"
	    "dmlzdGEuY29tCg==\001\001";
	unsigned char raw[256];
	char out[AUTH_OAUTH_B64_MAX];
	struct error err;

	(void)state;
	assert_int_equal(auth_oauthbearer_response("user@example.com",
	    "server.example.com", "143",
	    "vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg==", out, sizeof(out),
	    &err), ST_OK);
	assert_int_equal(decoded(out, raw, sizeof(raw)), sizeof(want) - 1);
	assert_memory_equal(raw, want, sizeof(want) - 1);
	/* The gs2 authzid cannot hold ',' or '='. */
	assert_int_equal(auth_oauthbearer_response("a,b", "h", "25", "t", out,
	    sizeof(out), &err), ST_DATA);
	assert_int_equal(auth_oauthbearer_response("a=b", "h", "25", "t", out,
	    sizeof(out), &err), ST_DATA);
}

static void
test_oauth_error(void **state)
{
	char out[128];

	(void)state;
	/* eyJ... is {"status":"401","schemes":"bearer"} */
	auth_oauth_error(" eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=",
	    out, sizeof(out));
	assert_string_equal(out, "{\"status\":\"401\",\"schemes\":\"bearer\"}");
	auth_oauth_error(" not base64 !", out, sizeof(out));
	assert_string_equal(out, "");
}

/* -------------------------------------------- the SASL dialogue (smtp.c) */

static char transcript_text[4096];

static void
transcript(void *arg, enum transcript_dir dir, const char *line, size_t len)
{
	char tmp[1024];

	(void)arg;
	(void)snprintf(tmp, sizeof(tmp), "%s%.*s\n", dir == TR_SENT ? "> " :
	    "< ", (int)len, line);
	(void)strlcat(transcript_text, tmp, sizeof(transcript_text));
}

/* A session over a scripted hub with AuthMethod m and token tok. */
static int
bearer_session(const struct stub_step *script, enum auth_method m,
    struct smtp_result *res, struct error *err)
{
	struct config cfg;
	struct smtp_params p;
	struct stubconn *st;
	struct conn *c;
	struct smtp *s = NULL;
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	cfg.timeout = 5;
	cfg.auth_method = m;
	cfg.auth_allow_plaintext = 1;	/* the stub has no TLS to offer */
	(void)strlcpy(cfg.auth_user, "u@example.org", sizeof(cfg.auth_user));
	memset(&p, 0, sizeof(p));
	p.cfg = &cfg;
	p.helo = "client.test";
	p.token = "tok-123";
	p.transcript = transcript;
	transcript_text[0] = '\0';
	error_clear(err);
	st = stubconn_new(script, "hub.test", 5, &c);
	rc = smtp_open(&s, c, &p, res, err);
	smtp_close(s);
	assert_int_equal(stubconn_end(st), 0);
	return rc;
}

#define XO2	"dXNlcj11QGV4YW1wbGUub3JnAWF1dGg9QmVhcmVyIHRvay0xMjMBAQ=="

static void
test_xoauth2_dialogue(void **state)
{
	static const struct stub_step ok[] = {
		SEND("220 hub.test\r\n"), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 AUTH PLAIN XOAUTH2\r\n"),
		EXPECT("AUTH XOAUTH2 " XO2), SEND("235 2.7.0 Accepted\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	/* RFC 7628 3.2.2: the error challenge, an empty answer, then 535. */
	static const struct stub_step refused[] = {
		SEND("220 hub.test\r\n"), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 AUTH XOAUTH2\r\n"),
		EXPECT("AUTH XOAUTH2 " XO2),
		SEND("334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=\r\n"),
		EXPECT(""), SEND("535 5.7.8 Username and Password not "
		    "accepted\r\n"), EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	static const struct stub_step absent[] = {
		SEND("220 hub.test\r\n"), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 AUTH PLAIN LOGIN\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct smtp_result res;
	struct error err;

	(void)state;
	assert_int_equal(bearer_session(ok, AUTH_XOAUTH2, &res, &err), ST_OK);
	assert_non_null(strstr(transcript_text, "> AUTH XOAUTH2 <redacted>\n"));
	assert_null(strstr(transcript_text, XO2));
	assert_int_equal(bearer_session(refused, AUTH_XOAUTH2, &res, &err),
	    ST_TEMP);
	assert_int_equal(res.stage, STAGE_AUTH);
	assert_int_equal(res.code, 535);
	assert_int_equal(err.hint, HINT_AUTH);
	assert_non_null(strstr(err.text, "hub refused the OAuth token"));
	assert_non_null(strstr(err.text, "{\"status\":\"401\""));
	assert_null(strstr(err.text, "tok-123"));
	assert_int_equal(bearer_session(absent, AUTH_XOAUTH2, &res, &err),
	    ST_TEMP);
	assert_non_null(strstr(err.text, "does not offer AUTH XOAUTH2"));
	assert_true(res.code < 400);	/* not a refused token: no retry */
}

static void
test_oauthbearer_dialogue(void **state)
{
	static const struct stub_step refused[] = {
		SEND("220 hub.test\r\n"), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 AUTH OAUTHBEARER\r\n"),
		EXPECT("AUTH OAUTHBEARER bixhPXVAZXhhbXBsZS5vcmcsAWhvc3Q9aHViLnRl"
		    "c3QBcG9ydD0yNQFhdXRoPUJlYXJlciB0b2stMTIzAQE="),
		SEND("334 eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=\r\n"),
		EXPECT("AQ=="), SEND("535 5.7.8 no\r\n"), EXPECT("QUIT"),
		SEND("221 bye\r\n"), END
	};
	struct smtp_result res;
	struct error err;

	(void)state;
	assert_int_equal(bearer_session(refused, AUTH_OAUTHBEARER, &res, &err),
	    ST_TEMP);
	assert_int_equal(res.code, 535);
	assert_int_equal(err.hint, HINT_AUTH);
	assert_non_null(strstr(transcript_text, "> AUTH OAUTHBEARER "
	    "<redacted>\n"));
}

static int
conf(const char *text, char *why, size_t len)
{
	struct config cfg;
	struct error err;
	int rc;

	error_clear(&err);
	rc = config_parse_buffer(&cfg, "t.conf", text, strlen(text), NULL, NULL,
	    &err);
	(void)strlcpy(why, err.text, len);
	config_free(&cfg);
	return rc;
}

static void
test_config_keys(void **state)
{
	static const struct {
		const char	*text, *why;
	} bad[] = {
		{ "AuthMethod=XOAUTH2\nAuthTokenFile=/t\n", "needs AuthUser" },
		{ "AuthUser=u\nAuthMethod=xoauth2\n", "AuthTokenFile or "
		    "OAuthTokenURL" },
		{ "AuthUser=u\nAuthMethod=OAUTHBEARER\nAuthTokenFile=/t\n"
		    "OAuthTokenURL=https://h/t\nOAuthClientID=c\n",
		    "both set" },
		{ "AuthUser=u\nAuthMethod=XOAUTH2\nOAuthTokenURL=https://h/t\n",
		    "needs OAuthClientID" },
		{ "AuthTokenFile=/t\n", "need AuthMethod=XOAUTH2" },
		{ "OAuthTokenURL=http://h/t\n", "https:// URL" },
		{ "OAuthTokenURL=https:///t\n", "https:// URL" },
		{ "OAuthTokenURL=https://h/a b\n", "https:// URL" },
		{ "AuthTokenFile=relative\n", "path must be absolute" },
	};
	char why[ERR_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(conf(bad[i].text, why, sizeof(why)),
		    ST_CONFIG);
		if (strstr(why, bad[i].why) == NULL)
			fail_msg("%s: got '%s'", bad[i].text, why);
	}
	assert_int_equal(conf("AuthUser=u\nAuthMethod=XOAUTH2\n"
	    "OAuthTokenURL=https://login.example/t/oauth2/v2.0/token\n"
	    "OAuthClientID=c\nOAuthScope=https://a/.default offline_access\n"
	    "OAuthClientSecretFile=/s\nOAuthRefreshTokenFile=/r\n", why,
	    sizeof(why)), ST_OK);
	assert_int_equal(conf("AuthUser=u\nAuthMethod=OAuthBearer\n"
	    "AuthTokenFile=/t\n", why, sizeof(why)), ST_OK);
}

static void
test_token_subcommand(void **state)
{
	char *argv[] = { (char *)"postino", (char *)"-C", (char *)"/c",
		(char *)"token", NULL };
	char *extra[] = { (char *)"postino", (char *)"token",
		(char *)"someone@example.org", NULL };
	struct options o;
	struct error err;

	(void)state;
	assert_int_equal(options_parse(&o, 4, argv, &err), ST_OK);
	assert_int_equal(o.mode, MODE_TOKEN);
	assert_string_equal(o.config_path, "/c");
	options_free(&o);
	assert_int_equal(options_parse(&o, 3, extra, &err), ST_USAGE);
	options_free(&o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_microsoft),
		cmocka_unit_test(test_json_google_and_strings),
		cmocka_unit_test(test_json_refused),
		cmocka_unit_test(test_http_length),
		cmocka_unit_test(test_http_chunked_and_eof),
		cmocka_unit_test(test_http_malformed),
		cmocka_unit_test(test_form),
		cmocka_unit_test(test_xoauth2),
		cmocka_unit_test(test_oauthbearer),
		cmocka_unit_test(test_oauth_error),
		cmocka_unit_test(test_xoauth2_dialogue),
		cmocka_unit_test(test_oauthbearer_dialogue),
		cmocka_unit_test(test_config_keys),
		cmocka_unit_test(test_token_subcommand),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
