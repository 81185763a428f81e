/*
 * test_addr.c: address lists as callers write them, -f parsing, the
 * safety predicate, the addrlist container, and header qualification
 * (byte for byte), plus a property test over generated lists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

/* Parse text and compare the collected list with want (NULL-terminated). */
static void
expect_list(const char *text, const char *const *want)
{
	struct addrlist l;
	struct error err;
	size_t i;

	addrlist_init(&l);
	error_clear(&err);
	if (addr_list_parse(text, strlen(text), &l, &err) != ST_OK)
		fail_msg("\"%s\": %s", text, err.text);
	for (i = 0; want[i] != NULL; i++) {
		if (i >= l.n)
			fail_msg("\"%s\": missing %s", text, want[i]);
		assert_string_equal(l.v[i], want[i]);
	}
	assert_int_equal(l.n, i);
	addrlist_free(&l);
}

/* Parsing must fail with ST_DATA and a text containing why. */
static void
expect_error_len(const char *text, size_t len, const char *why)
{
	struct addrlist l;
	struct error err;

	addrlist_init(&l);
	error_clear(&err);
	assert_int_equal(addr_list_parse(text, len, &l, &err), ST_DATA);
	assert_int_equal(err.status, ST_DATA);
	if (strstr(err.text, why) == NULL)
		fail_msg("\"%s\": error \"%s\" lacks \"%s\"", text, err.text,
		    why);
	addrlist_free(&l);
}

static void
expect_error(const char *text, const char *why)
{
	expect_error_len(text, strlen(text), why);
}

#define LIST(...)	((const char *const []){ __VA_ARGS__, NULL })
#define NONE		((const char *const []){ NULL })

static void
t_plain_lists(void **state)
{
	(void)state;
	expect_list("a@x", LIST("a@x"));
	expect_list("a@x,b@y", LIST("a@x", "b@y"));
	expect_list("  a@x ,\tb@y  ", LIST("a@x", "b@y"));
	expect_list("Name <c@x>, d@y", LIST("c@x", "d@y"));
	expect_list("\"Doe, John\" <jd@x>", LIST("jd@x"));
	expect_list("\"Doe, John\" <jd@x>, \"A \\\" B\" <ab@x>",
	    LIST("jd@x", "ab@x"));
	expect_list("John Q. Public <jqp@x>", LIST("jqp@x"));
	expect_list("root", LIST("root"));
	expect_list("a@[127.0.0.1]", LIST("a@[127.0.0.1]"));
	/* A broken MUA's "address <address>". */
	expect_list("a@x <a@x>", LIST("a@x"));
}

static void
t_empty(void **state)
{
	(void)state;
	expect_list("", NONE);
	expect_list("   \t ", NONE);
	expect_list(",,", NONE);
	expect_list("a@x,,b@y,", LIST("a@x", "b@y"));
	expect_list("(nobody)", NONE);
	expect_list("<>", NONE);
	expect_list("\r\n ", NONE);
}

static void
t_comments(void **state)
{
	(void)state;
	expect_list("root (Cron Daemon)", LIST("root"));
	expect_list("a@x (outer (inner) text), b@y", LIST("a@x", "b@y"));
	expect_list("(lead) a@x", LIST("a@x"));
	expect_list("a(c)@(d)x", LIST("a@x"));
	expect_list("a@x (with \\) escaped)", LIST("a@x"));
	expect_list("\"(Cron Daemon)\" <login>", LIST("login"));
	expect_error("a@x (open", "parenthesis");
	expect_error("a@x (a (b)", "parenthesis");
	expect_error("a@x )", "')'");
}

static void
t_groups(void **state)
{
	(void)state;
	expect_list("Team: a@x, b@y;", LIST("a@x", "b@y"));
	expect_list("undisclosed-recipients:;", NONE);
	expect_list("undisclosed-recipients: ;, c@z", LIST("c@z"));
	expect_list("Team: a@x; c@z", LIST("a@x", "c@z"));
	expect_list("Team: Ann <a@x>, \"B, b\" <b@y>;", LIST("a@x", "b@y"));
	/* Lenient: the end of the text closes a group. */
	expect_list("Team: a@x", LIST("a@x"));
	/* Outlook's separator. */
	expect_list("a@x; b@y", LIST("a@x", "b@y"));
	expect_error("A: B: c@x;;", "group inside a group");
}

static void
t_folds(void **state)
{
	(void)state;
	expect_list("a@x,\r\n b@y", LIST("a@x", "b@y"));
	expect_list("Name\r\n\t<a@x>", LIST("a@x"));
	expect_list("\"Doe,\r\n John\" <jd@x>", LIST("jd@x"));
	expect_error("a@x\r\nb@y", "line break");
	expect_error("a@x\nb@y", "line break");
	expect_error("a@x\n b@y", "line break");
	expect_error("a@x\rb@y", "line break");
	expect_error("a@x\r", "line break");
	expect_error("a@x\r\n", "line break");
	expect_error_len("a@x\0b", 5, "NUL");
}

static void
t_routes_and_quotes(void **state)
{
	(void)state;
	expect_list("<@a,@b:c@d>", LIST("c@d"));
	expect_list("Name <@a.example:c@d>", LIST("c@d"));
	expect_list("\"a b\"@x", LIST("\"a b\"@x"));
	expect_list("<\"a,b\"@x>", LIST("\"a,b\"@x"));
	expect_list("john . doe @ example.org", LIST("john.doe@example.org"));
	expect_list("j\xc3\xb6hn@ex\xc3\xa4mple.org",
	    LIST("j\xc3\xb6hn@ex\xc3\xa4mple.org"));
	expect_error("<@a,@b c@d>", "route");
	expect_error("<@a", "route");
}

static void
t_errors(void **state)
{
	char big[ADDR_MAX + 10];

	(void)state;
	expect_error("\"a@x", "quote");
	expect_error("<a@x", "angle");
	expect_error("a@x>", "angle");
	expect_error("a@[1.2.3.4", "bracket");
	expect_error("a@", "no domain");
	expect_error("@x", "no local part");
	expect_error("a@b@c", "more than one '@'");
	expect_error("John Smith", "several words");
	expect_error("a@x b@y", "several words");
	expect_error("<a@x> b", "after '>'");
	expect_error("<a@x> <b@y>", "after '>'");
	expect_error("a@\"x\"", "quoted string in the domain");
	expect_error("[x]@y", "domain literal in the local part");
	expect_error("<a;b@x>", "';'");
	expect_error("\\a@x", "'\\'");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_error(big, "too long");
}

static void
t_dedupe(void **state)
{
	(void)state;
	expect_list("A@X.org, A@x.ORG, a@x.org",
	    LIST("A@X.org", "a@x.org"));
	expect_list("root, root, Root", LIST("root", "Root"));
	expect_list("a@x, Name <a@X>", LIST("a@x"));
}

static void
t_addrlist(void **state)
{
	struct addrlist l;
	struct error err;
	char a[32];
	int i;

	(void)state;
	addrlist_init(&l);
	error_clear(&err);
	for (i = 0; i < RCPT_MAX; i++) {
		(void)snprintf(a, sizeof(a), "u%d@x", i);
		assert_int_equal(addrlist_add(&l, a, &err), ST_OK);
	}
	assert_int_equal(l.n, RCPT_MAX);
	/* A duplicate at the limit is no new recipient. */
	assert_int_equal(addrlist_add(&l, "u7@X", &err), ST_OK);
	assert_int_equal(addrlist_add(&l, "one-more@x", &err), ST_DATA);
	assert_non_null(strstr(err.text, "too many recipients"));
	assert_true(addrlist_contains(&l, "u42@x"));
	assert_true(addrlist_contains(&l, "u42@X"));
	assert_false(addrlist_contains(&l, "U42@x"));
	assert_false(addrlist_contains(&l, "one-more@x"));
	addrlist_free(&l);
	assert_int_equal(l.n, 0);
	assert_null(l.v);
	/* Free twice is harmless, and the list is usable again. */
	addrlist_free(&l);
	assert_int_equal(addrlist_add(&l, "z@x", &err), ST_OK);
	assert_int_equal(l.n, 1);
	addrlist_free(&l);
}

static void
expect_one(const char *text, const char *want)
{
	struct error err;
	char out[ADDR_MAX];

	error_clear(&err);
	memset(out, 'X', sizeof(out));
	if (addr_parse_one(text, out, sizeof(out), &err) != ST_OK)
		fail_msg("-f \"%s\": %s", text, err.text);
	assert_string_equal(out, want);
}

static void
expect_one_fails(const char *text)
{
	struct error err;
	char out[ADDR_MAX];

	error_clear(&err);
	assert_int_equal(addr_parse_one(text, out, sizeof(out), &err),
	    ST_DATA);
	assert_true(err.text[0] != '\0');
}

static void
t_parse_one(void **state)
{
	struct error err;
	char small[4];

	(void)state;
	expect_one("a@x", "a@x");
	expect_one("<a@x>", "a@x");
	expect_one("Name <a@x>", "a@x");
	expect_one(" \"Doe, J\" <jd@x> ", "jd@x");
	expect_one("", "");
	expect_one("<>", "");
	expect_one("  <>  ", "");
	expect_one("fail2ban", "fail2ban");
	expect_one("root (Cron Daemon)", "root");
	expect_one_fails("a@x, b@y");
	expect_one_fails("a@x\n");
	expect_one_fails("a@x\r\n b");
	expect_one_fails("Team: a@x;");
	expect_one_fails("<a@x");
	expect_one_fails("John Smith");
	error_clear(&err);
	assert_int_equal(addr_parse_one("abcd@x", small, sizeof(small), &err),
	    ST_DATA);
	assert_non_null(strstr(err.text, "too long"));
}

static void
t_is_safe(void **state)
{
	char a[ADDR_MAX + 1];

	(void)state;
	assert_true(addr_is_safe("a@x"));
	assert_true(addr_is_safe("root"));
	assert_true(addr_is_safe("j\xc3\xb6hn@x"));
	assert_true(addr_is_safe("\"a,b\"@x"));
	assert_false(addr_is_safe(""));
	assert_false(addr_is_safe("a b@x"));
	assert_false(addr_is_safe("\"a b\"@x"));
	assert_false(addr_is_safe("a\r@x"));
	assert_false(addr_is_safe("a\n@x"));
	assert_false(addr_is_safe("a\t@x"));
	assert_false(addr_is_safe("a\x01@x"));
	assert_false(addr_is_safe("a\x7f@x"));
	assert_false(addr_is_safe("<a@x>"));
	assert_false(addr_is_safe("a@x>"));
	memset(a, 'a', sizeof(a));
	a[ADDR_MAX - 1] = '\0';
	assert_true(addr_is_safe(a));		/* 511 bytes */
	a[ADDR_MAX - 1] = 'a';
	a[ADDR_MAX] = '\0';
	assert_false(addr_is_safe(a));		/* 512 bytes */
}

static void
t_small_predicates(void **state)
{
	(void)state;
	assert_false(addr_needs_utf8("a@x"));
	assert_true(addr_needs_utf8("a@\xc3\xa4.x"));
	assert_string_equal(addr_domain("a@x.org"), "x.org");
	assert_string_equal(addr_domain("\"a@b\"@c"), "c");
	assert_string_equal(addr_domain("a@"), "");
	assert_null(addr_domain("root"));
}

static void
expect_qualified(const char *in, const char *want)
{
	struct error err;
	char *out;

	error_clear(&err);
	out = addr_list_qualify(in, strlen(in), "example.org", &err);
	if (out == NULL)
		fail_msg("qualify \"%s\": %s", in, err.text);
	assert_string_equal(out, want);
	free(out);
}

/* One address (the envelope, From:): moved from test_alias.c. */
static void
t_qualify_one(void **state)
{
	char addr[32];
	struct error err;

	(void)state;
	(void)strlcpy(addr, "root", sizeof(addr));
	assert_int_equal(addr_qualify(addr, sizeof(addr), "example.org",
	    &err), ST_OK);
	assert_string_equal(addr, "root@example.org");
	/* Qualified once only, and never re-domained. */
	assert_int_equal(addr_qualify(addr, sizeof(addr), "other.test",
	    &err), ST_OK);
	assert_string_equal(addr, "root@example.org");
	addr[0] = '\0';
	assert_int_equal(addr_qualify(addr, sizeof(addr), "example.org",
	    &err), ST_OK);
	assert_string_equal(addr, "");

	(void)strlcpy(addr, "averyveryverylonglocalpart", sizeof(addr));
	error_clear(&err);
	assert_int_equal(addr_qualify(addr, sizeof(addr), "example.org",
	    &err), ST_DATA);
	assert_int_equal(err.status, ST_DATA);
	assert_string_equal(addr, "averyveryverylonglocalpart");
}

static void
t_qualify(void **state)
{
	struct error err;
	char *out;

	(void)state;
	expect_qualified("root (Cron Daemon)",
	    "root@example.org (Cron Daemon)");
	expect_qualified("Logwatch", "Logwatch@example.org");
	expect_qualified("\"Doe, J\" <jd>", "\"Doe, J\" <jd@example.org>");
	expect_qualified("undisclosed-recipients:;",
	    "undisclosed-recipients:;");
	expect_qualified("Team: a, b@x;", "Team: a@example.org, b@x;");
	expect_qualified(" a,\r\n\tb (c)",
	    " a@example.org,\r\n\tb@example.org (c)");
	expect_qualified("  root  ,  Name   < bob >  ",
	    "  root@example.org  ,  Name   < bob@example.org >  ");
	expect_qualified("<@a,@b:c>", "<@a,@b:c@example.org>");
	expect_qualified("x@y, Z <z@w>", "x@y, Z <z@w>");
	expect_qualified("\"a b\"", "\"a b\"@example.org");
	expect_qualified("", "");
	expect_qualified("<>", "<>");
	expect_qualified("john . doe", "john . doe@example.org");
	expect_qualified("a,b,c", "a@example.org,b@example.org,c@example.org");

	/* Unparsable: NULL and why; the caller keeps the header as is. */
	error_clear(&err);
	assert_null(addr_list_qualify("John Smith", 10, "example.org", &err));
	assert_int_equal(err.status, ST_DATA);
	error_clear(&err);
	assert_null(addr_list_qualify("a\nb", 3, "example.org", &err));
	assert_int_equal(err.status, ST_DATA);

	/* No domain: nothing to add. */
	out = addr_list_qualify("root, b", 7, "", &err);
	assert_non_null(out);
	assert_string_equal(out, "root, b");
	free(out);
	/* len is honoured: the text need not be NUL-terminated. */
	out = addr_list_qualify("root, b@x", 4, "example.org", &err);
	assert_non_null(out);
	assert_string_equal(out, "root@example.org");
	free(out);
}

/*
 * Property: for any text from a small alphabet that parses, the qualified
 * text parses to the same number of addresses, each now with '@', and
 * removing the inserted "@example.org" gives the original back.
 */
static void
t_qualify_property(void **state)
{
	static const char alpha[] = "ab@,. ()\"<>:;\\[]";
	struct addrlist l1, l2;
	struct error err;
	char text[24], *q, *p;
	size_t i, n, k, tries = 0, parsed = 0;

	(void)state;
	srandom(1234);
	for (tries = 0; tries < 200000; tries++) {
		n = (size_t)random() % (sizeof(text) - 1);
		for (i = 0; i < n; i++)
			text[i] = alpha[(size_t)random() % (sizeof(alpha) - 1)];
		text[n] = '\0';
		addrlist_init(&l1);
		addrlist_init(&l2);
		error_clear(&err);
		if (addr_list_parse(text, n, &l1, &err) != ST_OK) {
			assert_int_equal(err.status, ST_DATA);
			assert_null(addr_list_qualify(text, n, "example.org",
			    &err));
			addrlist_free(&l1);
			continue;
		}
		parsed++;
		q = addr_list_qualify(text, n, "example.org", &err);
		if (q == NULL)
			fail_msg("\"%s\" parses but does not qualify: %s",
			    text, err.text);
		if (addr_list_parse(q, strlen(q), &l2, &err) != ST_OK)
			fail_msg("\"%s\" -> \"%s\": %s", text, q, err.text);
		for (k = 0; k < l2.n; k++)
			if (strchr(l2.v[k], '@') == NULL)
				fail_msg("\"%s\" -> \"%s\": %s unqualified",
				    text, q, l2.v[k]);
		assert_true(l2.n <= l1.n);
		while ((p = strstr(q, "@example.org")) != NULL)
			memmove(p, p + 12, strlen(p + 12) + 1);
		assert_string_equal(q, text);
		free(q);
		addrlist_free(&l1);
		addrlist_free(&l2);
	}
	assert_true(parsed > 1000);
}

/* Any bytes at all: no crash, no leak, a status that makes sense. */
static void
t_random_bytes(void **state)
{
	struct addrlist l;
	struct error err;
	char text[64], *q;
	size_t i, n, tries;
	int rc;

	(void)state;
	srandom(99);
	for (tries = 0; tries < 100000; tries++) {
		n = (size_t)random() % sizeof(text);
		for (i = 0; i < n; i++)
			text[i] = (char)(random() & 0xff);
		addrlist_init(&l);
		rc = addr_list_parse(text, n, &l, &err);
		assert_true(rc == ST_OK || rc == ST_DATA);
		addrlist_free(&l);
		if ((q = addr_list_qualify(text, n, "d", &err)) != NULL)
			free(q);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_plain_lists),
		cmocka_unit_test(t_empty),
		cmocka_unit_test(t_comments),
		cmocka_unit_test(t_groups),
		cmocka_unit_test(t_folds),
		cmocka_unit_test(t_routes_and_quotes),
		cmocka_unit_test(t_errors),
		cmocka_unit_test(t_dedupe),
		cmocka_unit_test(t_addrlist),
		cmocka_unit_test(t_parse_one),
		cmocka_unit_test(t_is_safe),
		cmocka_unit_test(t_small_predicates),
		cmocka_unit_test(t_qualify_one),
		cmocka_unit_test(t_qualify),
		cmocka_unit_test(t_qualify_property),
		cmocka_unit_test(t_random_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
