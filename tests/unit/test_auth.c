/*
 * test_auth.c: auth.c. Base64 against RFC 4648 and its edge cases (NULs,
 * exact room, padding, white space, bad input), HMAC-MD5 against RFC
 * 2202, and the SASL responses: PLAIN with an empty authzid (RFC 4616),
 * LOGIN, CRAM-MD5 with the RFC 2195 example.
 */
#include <sys/types.h>

#include <stdio.h>
#include <string.h>

#include "unit.h"

static void
test_base64_encode(void **state)
{
	/* RFC 4648 section 10. */
	static const char *const v[][2] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" },
		{ "foo", "Zm9v" }, { "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	char out[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(auth_base64_encode(v[i][0], strlen(v[i][0]),
		    out, sizeof(out)), (int)strlen(v[i][1]));
		assert_string_equal(out, v[i][1]);
	}
	/* NULs inside (AUTH PLAIN), and the exact room needed. */
	assert_int_equal(auth_base64_encode("\0user\0pass", 10, out, 17), 16);
	assert_string_equal(out, "AHVzZXIAcGFzcw==");
	assert_int_equal(auth_base64_encode("\0user\0pass", 10, out, 16), -1);
	assert_int_equal(auth_base64_encode("", 0, out, 1), 0);
	assert_int_equal(auth_base64_encode("", 0, out, 0), -1);
	/* Every byte value: our encoder against its own decoder. */
	{
		unsigned char all[256], back[256];
		char b64[400];
		int j;

		for (j = 0; j < 256; j++)
			all[j] = (unsigned char)(255 - j);
		assert_int_equal(auth_base64_encode(all, 256, b64,
		    sizeof(b64)), 344);
		assert_string_equal(b64 + 336, "AwIBAA==");
		assert_int_equal(auth_base64_decode(b64, 344, back,
		    sizeof(back)), 256);
		assert_memory_equal(all, back, 256);
	}
}

static void
test_base64_decode(void **state)
{
	static const char *const v[][2] = {
		{ "", "" }, { "Zg==", "f" }, { "Zm8=", "fo" },
		{ "Zm9v", "foo" }, { "Zm9vYg==", "foob" },
		{ "Zm9vYmE=", "fooba" }, { "Zm9vYmFy", "foobar" },
		{ "Zm9vYg==\r\n", "foob" }, { " Zm9v", "foo" },
	};
	unsigned char out[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(auth_base64_decode(v[i][0], strlen(v[i][0]),
		    out, sizeof(out)), (int)strlen(v[i][1]));
		assert_memory_equal(out, v[i][1], strlen(v[i][1]));
	}
	assert_int_equal(auth_base64_decode("AHVzZXIAcGFzcw==", 16, out,
	    sizeof(out)), 10);
	assert_memory_equal(out, "\0user\0pass", 10);
	/* Bad length, bad characters, no room; exact room. */
	assert_int_equal(auth_base64_decode("Zm9", 3, out, sizeof(out)), -1);
	assert_int_equal(auth_base64_decode("Zm9*", 4, out, sizeof(out)), -1);
	assert_int_equal(auth_base64_decode("Zm9vYmFy", 8, out, 5), -1);
	assert_int_equal(auth_base64_decode("Zm9vYmFy", 8, out, 6), 6);
	/* '=' only as final padding; one '=' too many; binary bytes. */
	assert_int_equal(auth_base64_decode("Z===", 4, out, sizeof(out)), -1);
	assert_int_equal(auth_base64_decode("Zg=a", 4, out, sizeof(out)), -1);
	assert_int_equal(auth_base64_decode("=Zm9", 4, out, sizeof(out)), -1);
	assert_int_equal(auth_base64_decode("Zm 9v", 5, out, sizeof(out)), -1);
	assert_int_equal(auth_base64_decode("/+8A", 4, out, sizeof(out)), 3);
	assert_memory_equal(out, "\xff\xef\x00", 3);
	/* Padding is not data: "Zg==" is one byte, and fits in one. */
	assert_int_equal(auth_base64_decode("Zg==", 4, out, 1), 1);
	assert_int_equal(out[0], 'f');
}

static void
test_hmac_md5(void **state)
{
	static const char chal[] = "<1896.697170952@postoffice.reston.mci.net>";
	static const char jefe[] = "what do ya want for nothing?";
	unsigned char key[16];
	char out[33];

	(void)state;
	/* RFC 2195 section 2. */
	assert_int_equal(auth_hmac_md5_hex("tanstaaftanstaaf", 16, chal,
	    strlen(chal), out), 0);
	assert_string_equal(out, "b913a602c7eda7a495b4e6e7334d3890");
	/* RFC 2202 test cases 1 and 2. */
	memset(key, 0x0b, sizeof(key));
	assert_int_equal(auth_hmac_md5_hex(key, sizeof(key), "Hi There", 8,
	    out), 0);
	assert_string_equal(out, "9294727a3638bb1c13f48ef8158bfc9d");
	assert_int_equal(auth_hmac_md5_hex("Jefe", 4, jefe, strlen(jefe),
	    out), 0);
	assert_string_equal(out, "750c783e6ab0b503eaa86e310a5db738");
}

static void
test_plain(void **state)
{
	char out[AUTH_B64_MAX];
	unsigned char raw[64];
	struct error err;

	(void)state;
	error_clear(&err);
	/* RFC 4616 section 4: empty authzid, "tim", "tanstaaftanstaaf". */
	assert_int_equal(auth_plain_response("tim", "tanstaaftanstaaf", out,
	    sizeof(out), &err), ST_OK);
	assert_string_equal(out, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
	assert_int_equal(auth_base64_decode(out, strlen(out), raw,
	    sizeof(raw)), 21);
	assert_memory_equal(raw, "\0tim\0tanstaaftanstaaf", 21);
	assert_int_equal(auth_plain_response("user", "pass", out, sizeof(out),
	    &err), ST_OK);
	assert_string_equal(out, "AHVzZXIAcGFzcw==");
	/* A buffer too small is the caller's bug, and leaves nothing. */
	assert_int_equal(auth_plain_response("user", "pass", out, 16, &err),
	    ST_SOFTWARE);
	assert_int_equal(out[0], '\0');
}

static void
test_login(void **state)
{
	char out[AUTH_B64_MAX];
	struct error err;

	(void)state;
	error_clear(&err);
	assert_int_equal(auth_login_response("user", out, sizeof(out), &err),
	    ST_OK);
	assert_string_equal(out, "dXNlcg==");
	assert_int_equal(auth_login_response("pass", out, sizeof(out), &err),
	    ST_OK);
	assert_string_equal(out, "cGFzcw==");
	assert_int_equal(auth_login_response("", out, sizeof(out), &err),
	    ST_OK);
	assert_string_equal(out, "");
}

static void
test_cram_md5(void **state)
{
	/* RFC 2195 section 2, as the 334 line carries it (" " first). */
	static const char chal[] = " PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVz"
	    "dG9uLm1jaS5uZXQ+";
	char out[AUTH_B64_MAX];
	struct error err;

	(void)state;
	error_clear(&err);
	assert_int_equal(auth_cram_md5_response("tim", "tanstaaftanstaaf",
	    chal, strlen(chal), out, sizeof(out), &err), ST_OK);
	assert_string_equal(out,
	    "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
	/* A challenge that is not base64: temporary, the hub's fault. */
	assert_int_equal(auth_cram_md5_response("tim", "x", " <not b64>",
	    10, out, sizeof(out), &err), ST_TEMP);
	assert_string_equal(err.text, "hub sent a malformed CRAM-MD5 "
	    "challenge");
	/* An empty challenge is still a challenge. */
	assert_int_equal(auth_cram_md5_response("tim", "x", "", 0, out,
	    sizeof(out), &err), ST_OK);
	assert_int_equal(auth_cram_md5_response("tim", "tanstaaftanstaaf",
	    chal, strlen(chal), out, 8, &err), ST_SOFTWARE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_encode),
		cmocka_unit_test(test_base64_decode),
		cmocka_unit_test(test_hmac_md5),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_cram_md5),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
