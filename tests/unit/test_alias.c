/*
 * test_alias.c: revaliases (ssmtp semantics plus the IPv6 hub), the
 * mail domain and host name, the envelope sender's priority, Root= and
 * local recipients, and the route (alias.c).
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

/*
 * addr.c belongs to another stage and may not be built yet: a weak
 * stand-in with the documented rule, replaced by the real one at link
 * time when addr.o is there.
 */
__attribute__((weak)) int
addr_is_safe(const char *addr)
{
	size_t n = 0;

	for (; addr[n] != '\0'; n++)
		if ((unsigned char)addr[n] <= ' ' || addr[n] == 0x7f ||
		    addr[n] == '<' || addr[n] == '>')
			return 0;
	return n > 0 && n < ADDR_MAX;
}

static int
reval(const char *text, const char *login, struct revalias *ra,
    struct error *err)
{
	error_clear(err);
	return alias_parse_revaliases(text, strlen(text), login, ra, err);
}

/* A temporary file holding text; the caller unlinks it. */
static void
temp_file(char *path, size_t len, const char *text)
{
	int fd;

	assert_true(strlcpy(path, "/tmp/postino-test-XXXXXX", len) < len);
	fd = mkstemp(path);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(close(fd), 0);
}

/* A config with only the defaults and a fixed host name and domain. */
static void
fixed_config(struct config *cfg)
{
	config_defaults(cfg);
	(void)strlcpy(cfg->hostname, "vm.example.com", sizeof(cfg->hostname));
	(void)strlcpy(cfg->rewrite_domain, "example.org",
	    sizeof(cfg->rewrite_domain));
}

static void
test_revaliases_exact_match(void **state)
{
	struct revalias ra;
	struct error err;

	(void)state;
	assert_int_equal(reval("root:ops@example.com\n", "root", &ra, &err),
	    ST_OK);
	assert_int_equal(ra.found, 1);
	assert_string_equal(ra.address, "ops@example.com");
	assert_string_equal(ra.hub_host, "");
	assert_string_equal(ra.hub_port, "");

	/* Case-sensitive, no trimming, no prefix match. */
	assert_int_equal(reval("Root:a@x\nroot :b@x\n root:c@x\nroo:d@x\n"
	    "rootx:e@x\n", "root", &ra, &err), ST_OK);
	assert_int_equal(ra.found, 0);
	assert_string_equal(ra.address, "");

	/* Blanks after the colon are separators. */
	assert_int_equal(reval("root: \tops@example.com\n", "root", &ra,
	    &err), ST_OK);
	assert_string_equal(ra.address, "ops@example.com");

	/* Other users' lines are not our business, even broken ones. */
	assert_int_equal(reval("www-data:<bad>\nroot:ok@x\n", "root", &ra,
	    &err), ST_OK);
	assert_string_equal(ra.address, "ok@x");

	/* An empty login matches nothing, not even ":x". */
	assert_int_equal(reval(":x@y\n", "", &ra, &err), ST_OK);
	assert_int_equal(ra.found, 0);
}

static void
test_revaliases_last_match(void **state)
{
	struct revalias ra;
	struct error err;

	(void)state;
	assert_int_equal(reval("root:first@x:hub1.example:2525\n"
	    "user:u@x\n"
	    "root:second@x\n", "root", &ra, &err), ST_OK);
	assert_int_equal(ra.found, 1);
	assert_string_equal(ra.address, "second@x");
	/* A later match without a hub keeps the earlier hub and port. */
	assert_string_equal(ra.hub_host, "hub1.example");
	assert_string_equal(ra.hub_port, "2525");

	assert_int_equal(reval("root:a@x:hub1:2525\nroot:b@x:hub2\n", "root",
	    &ra, &err), ST_OK);
	assert_string_equal(ra.address, "b@x");
	assert_string_equal(ra.hub_host, "hub2");
	assert_string_equal(ra.hub_port, "2525");
}

static void
test_revaliases_hub_and_port(void **state)
{
	struct revalias ra;
	struct error err;

	(void)state;
	assert_int_equal(reval("root:ops@corp.test:127.0.0.1:2526\n", "root",
	    &ra, &err), ST_OK);
	assert_string_equal(ra.address, "ops@corp.test");
	assert_string_equal(ra.hub_host, "127.0.0.1");
	assert_string_equal(ra.hub_port, "2526");

	assert_int_equal(reval("root:ops@corp.test:smtp.corp.test\n", "root",
	    &ra, &err), ST_OK);
	assert_string_equal(ra.hub_host, "smtp.corp.test");
	assert_string_equal(ra.hub_port, "");

	/* Fields past the port are ignored, as in ssmtp. */
	assert_int_equal(reval("root:a@x:h:25:junk\n", "root", &ra, &err),
	    ST_OK);
	assert_string_equal(ra.hub_port, "25");

	assert_int_equal(reval("root:a@x:h:0\n", "root", &ra, &err),
	    ST_CONFIG);
	assert_string_equal(err.text, "revaliases:1: bad port");
	assert_int_equal(reval("root:a@x:h:25x\n", "root", &ra, &err),
	    ST_CONFIG);
	assert_int_equal(reval("root:a@x:h:submission\n", "root", &ra, &err),
	    ST_OK);
	assert_string_equal(ra.hub_port, "submission");
}

static void
test_revaliases_ipv6_hub(void **state)
{
	struct revalias ra;
	struct error err;

	(void)state;
	assert_int_equal(reval("root:ops@x:[::1]:2525\n", "root", &ra, &err),
	    ST_OK);
	assert_string_equal(ra.hub_host, "::1");
	assert_string_equal(ra.hub_port, "2525");

	assert_int_equal(reval("root:ops@x:[2001:db8::25]\n", "root", &ra,
	    &err), ST_OK);
	assert_string_equal(ra.hub_host, "2001:db8::25");
	assert_string_equal(ra.hub_port, "");

	assert_int_equal(reval("root:ops@x:[::1\n", "root", &ra, &err),
	    ST_CONFIG);
	assert_non_null(strstr(err.text, "revaliases:1: bad hub"));
	assert_int_equal(reval("root:ops@x:[::1]x\n", "root", &ra, &err),
	    ST_CONFIG);
	assert_int_equal(reval("root:ops@x:[]\n", "root", &ra, &err),
	    ST_CONFIG);
}

static void
test_revaliases_comments_and_crlf(void **state)
{
	struct revalias ra;
	struct error err;

	(void)state;
	assert_int_equal(reval("# root:commented@x\n"
	    "root:real@x # root:trailing@x\n"
	    "#root:late@x\n"
	    "no colon on this line\n"
	    "\n", "root", &ra, &err), ST_OK);
	assert_string_equal(ra.address, "real@x");

	/* A '#' anywhere, even before the colon, makes a comment. */
	assert_int_equal(reval("root#:x@y\n", "root", &ra, &err), ST_OK);
	assert_int_equal(ra.found, 0);

	assert_int_equal(reval("root:crlf@x:hub.example:587\r\n"
	    "other:o@x\r\n", "root", &ra, &err), ST_OK);
	assert_string_equal(ra.address, "crlf@x");
	assert_string_equal(ra.hub_host, "hub.example");
	assert_string_equal(ra.hub_port, "587");

	/* The last line without a newline counts. */
	assert_int_equal(reval("a:b@c\nroot:eof@x", "root", &ra, &err),
	    ST_OK);
	assert_string_equal(ra.address, "eof@x");
}

static void
test_revaliases_bad_address(void **state)
{
	static const char nul[] = "root:a\0b@x\n";
	struct revalias ra;
	struct error err;
	char line[ADDR_MAX + 32];

	(void)state;
	assert_int_equal(reval("ok:x\nroot:<ops@x>\n", "root", &ra, &err),
	    ST_CONFIG);
	assert_string_equal(err.text, "revaliases:2: bad address");
	assert_int_equal(reval("root:\n", "root", &ra, &err), ST_CONFIG);
	assert_int_equal(reval("root:a\001b@x\n", "root", &ra, &err),
	    ST_CONFIG);
	error_clear(&err);
	assert_int_equal(alias_parse_revaliases(nul, sizeof(nul) - 1, "root",
	    &ra, &err), ST_CONFIG);
	assert_string_equal(err.text, "revaliases:1: bad address");

	(void)strlcpy(line, "root:", sizeof(line));
	memset(line + 5, 'a', ADDR_MAX);
	line[5 + ADDR_MAX] = '\0';
	assert_int_equal(reval(line, "root", &ra, &err), ST_CONFIG);
}

static void
test_revaliases_file(void **state)
{
	char path[64];
	struct revalias ra;
	struct error err;

	(void)state;
	temp_file(path, sizeof(path), "root:file@x:[::1]:2600\n");
	error_clear(&err);
	assert_int_equal(alias_load_revaliases(path, "root", &ra, &err),
	    ST_OK);
	assert_int_equal(ra.found, 1);
	assert_string_equal(ra.address, "file@x");
	assert_string_equal(ra.hub_host, "::1");

	assert_int_equal(unlink(path), 0);

	/* Errors in a file name the file and line. */
	temp_file(path, sizeof(path), "x:y\nroot:<bad\n");
	assert_int_equal(alias_load_revaliases(path, "root", &ra, &err),
	    ST_CONFIG);
	assert_true(strncmp(err.text, path, strlen(path)) == 0);
	assert_non_null(strstr(err.text, ":2: bad address"));
	assert_int_equal(unlink(path), 0);

	/* No file: no aliases, no error. */
	assert_int_equal(alias_load_revaliases(path, "root", &ra, &err),
	    ST_OK);
	assert_int_equal(ra.found, 0);
	assert_int_equal(alias_load_revaliases("", "root", &ra, &err), ST_OK);
	assert_int_equal(alias_load_revaliases(NULL, "root", &ra, &err),
	    ST_OK);

	/* Unreadable for another reason: a config error. */
	assert_int_equal(alias_load_revaliases("/", "root", &ra, &err),
	    ST_CONFIG);
	assert_non_null(strstr(err.text, "/: "));
}

static void
test_domain_and_hostname(void **state)
{
	char buf[HOST_MAX], sys[HOST_MAX], mailname[64];
	struct config cfg;

	(void)state;
	assert_int_equal(gethostname(sys, sizeof(sys)), 0);
	config_defaults(&cfg);
	(void)strlcpy(cfg.mailname_path, "/nonexistent/mailname",
	    sizeof(cfg.mailname_path));
	alias_domain(&cfg, buf, sizeof(buf));
	assert_string_equal(buf, sys);
	alias_hostname(&cfg, buf, sizeof(buf));
	assert_string_equal(buf, sys);

	temp_file(mailname, sizeof(mailname), "  mail.example.net \nx\n");
	(void)strlcpy(cfg.mailname_path, mailname, sizeof(cfg.mailname_path));
	alias_domain(&cfg, buf, sizeof(buf));
	assert_string_equal(buf, "mail.example.net");
	/* /etc/mailname is a mail domain, not our EHLO name. */
	alias_hostname(&cfg, buf, sizeof(buf));
	assert_string_equal(buf, sys);

	(void)strlcpy(cfg.hostname, "vm.example.com", sizeof(cfg.hostname));
	alias_domain(&cfg, buf, sizeof(buf));
	assert_string_equal(buf, "vm.example.com");
	alias_hostname(&cfg, buf, sizeof(buf));
	assert_string_equal(buf, "vm.example.com");

	(void)strlcpy(cfg.rewrite_domain, "example.org",
	    sizeof(cfg.rewrite_domain));
	alias_domain(&cfg, buf, sizeof(buf));
	assert_string_equal(buf, "example.org");
	alias_hostname(&cfg, buf, sizeof(buf));
	assert_string_equal(buf, "vm.example.com");

	/* An empty mailname file is skipped. */
	cfg.rewrite_domain[0] = cfg.hostname[0] = '\0';
	assert_int_equal(truncate(mailname, 0), 0);
	alias_domain(&cfg, buf, sizeof(buf));
	assert_string_equal(buf, sys);
	assert_int_equal(unlink(mailname), 0);
	config_free(&cfg);
}

static void
test_qualify(void **state)
{
	char addr[32];
	struct error err;

	(void)state;
	(void)strlcpy(addr, "root", sizeof(addr));
	assert_int_equal(alias_qualify(addr, sizeof(addr), "example.org",
	    &err), ST_OK);
	assert_string_equal(addr, "root@example.org");
	/* Qualified once only, and never re-domained. */
	assert_int_equal(alias_qualify(addr, sizeof(addr), "other.test",
	    &err), ST_OK);
	assert_string_equal(addr, "root@example.org");
	addr[0] = '\0';
	assert_int_equal(alias_qualify(addr, sizeof(addr), "example.org",
	    &err), ST_OK);
	assert_string_equal(addr, "");

	(void)strlcpy(addr, "averyveryverylonglocalpart", sizeof(addr));
	error_clear(&err);
	assert_int_equal(alias_qualify(addr, sizeof(addr), "example.org",
	    &err), ST_DATA);
	assert_int_equal(err.status, ST_DATA);
	assert_string_equal(addr, "averyveryverylonglocalpart");
}

static void
test_sender_priority(void **state)
{
	struct config cfg;
	struct revalias ra;
	struct error err;
	char out[ADDR_MAX];

	(void)state;
	fixed_config(&cfg);
	memset(&ra, 0, sizeof(ra));

	/* Nothing given: login@domain. */
	assert_int_equal(alias_default_sender(&cfg, &ra, NULL, "alice",
	    "example.org", out, sizeof(out), &err), ST_OK);
	assert_string_equal(out, "alice@example.org");
	assert_int_equal(alias_default_sender(&cfg, NULL, NULL, "alice",
	    "example.org", out, sizeof(out), &err), ST_OK);
	assert_string_equal(out, "alice@example.org");

	/* -f beats login; a bare -f is qualified; "" is the null sender. */
	assert_int_equal(alias_default_sender(&cfg, &ra, "bounce@x.test",
	    "alice", "example.org", out, sizeof(out), &err), ST_OK);
	assert_string_equal(out, "bounce@x.test");
	assert_int_equal(alias_default_sender(&cfg, &ra, "fail2ban", "alice",
	    "example.org", out, sizeof(out), &err), ST_OK);
	assert_string_equal(out, "fail2ban@example.org");
	assert_int_equal(alias_default_sender(&cfg, &ra, "", "alice",
	    "example.org", out, sizeof(out), &err), ST_OK);
	assert_string_equal(out, "");

	/* revaliases (the administrator's policy) beats -f. */
	ra.found = 1;
	(void)strlcpy(ra.address, "ops", sizeof(ra.address));
	assert_int_equal(alias_default_sender(&cfg, &ra, "bounce@x.test",
	    "alice", "example.org", out, sizeof(out), &err), ST_OK);
	assert_string_equal(out, "ops@example.org");

	/* Garbage from -f is refused, not sent. */
	error_clear(&err);
	assert_int_equal(alias_default_sender(&cfg, NULL, "a b@x", "alice",
	    "example.org", out, sizeof(out), &err), ST_DATA);
	assert_non_null(strstr(err.text, "bad sender address"));
	config_free(&cfg);
}

static void
test_from_line_override(void **state)
{
	struct config cfg;
	struct message msg;
	struct error err;
	char out[ADDR_MAX];

	(void)state;
	fixed_config(&cfg);
	memset(&msg, 0, sizeof(msg));
	msg.had_from = 1;
	(void)strlcpy(msg.from_addr, "app", sizeof(msg.from_addr));

	/* Off (the default): the From: header does not set the envelope. */
	assert_int_equal(alias_final_sender(&cfg, &msg, "ops@example.org",
	    "example.org", out, sizeof(out), &err), ST_OK);
	assert_string_equal(out, "ops@example.org");

	cfg.from_line_override = 1;
	assert_int_equal(alias_final_sender(&cfg, &msg, "ops@example.org",
	    "example.org", out, sizeof(out), &err), ST_OK);
	assert_string_equal(out, "app@example.org");

	/* No From: in the message, or an empty one: the default. */
	msg.from_addr[0] = '\0';
	assert_int_equal(alias_final_sender(&cfg, &msg, "ops@example.org",
	    "example.org", out, sizeof(out), &err), ST_OK);
	assert_string_equal(out, "ops@example.org");
	msg.had_from = 0;
	(void)strlcpy(msg.from_addr, "app@x", sizeof(msg.from_addr));
	assert_int_equal(alias_final_sender(&cfg, &msg, "", "example.org",
	    out, sizeof(out), &err), ST_OK);
	assert_string_equal(out, "");
	config_free(&cfg);
}

static void
rcpt(const struct config *cfg, const char *in, const char *want)
{
	struct error err;
	char out[ADDR_MAX];

	error_clear(&err);
	if (alias_recipient(cfg, in, "example.org", "vm.example.com", out,
	    sizeof(out), &err) != ST_OK)
		fail_msg("%s: %s", in, err.text);
	if (strcmp(out, want) != 0)
		fail_msg("%s -> %s, want %s", in, out, want);
}

/* A passwd account with uid >= 1000, if this system has one. */
static const char *
ordinary_user(char *buf, size_t len)
{
	struct passwd *pw;

	setpwent();
	while ((pw = getpwent()) != NULL)
		if (pw->pw_uid >= 1000 && pw->pw_uid != 65534 &&
		    strlen(pw->pw_name) < len) {
			(void)strlcpy(buf, pw->pw_name, len);
			endpwent();
			return buf;
		}
	endpwent();
	return NULL;
}

static void
test_recipient_root(void **state)
{
	struct config cfg;
	char user[64], addr[128];

	(void)state;
	fixed_config(&cfg);
	(void)strlcpy(cfg.root, "postmaster@ops.test", sizeof(cfg.root));
	rcpt(&cfg, "root", "postmaster@ops.test");
	rcpt(&cfg, "root@localhost", "postmaster@ops.test");
	rcpt(&cfg, "root@LOCALHOST.localdomain", "postmaster@ops.test");
	rcpt(&cfg, "root@vm.example.com", "postmaster@ops.test");
	rcpt(&cfg, "root@VM", "postmaster@ops.test");
	/* A system account (daemon, uid 1 on Debian) goes to Root= too. */
	if (getpwnam("daemon") != NULL && getpwnam("daemon")->pw_uid < 1000)
		rcpt(&cfg, "daemon", "postmaster@ops.test");
	/* An ordinary user is only qualified. */
	if (ordinary_user(user, sizeof(user)) != NULL) {
		(void)snprintf(addr, sizeof(addr), "%s@example.org", user);
		rcpt(&cfg, user, addr);
	}
	/* A name no account has: qualified. */
	rcpt(&cfg, "nosuchuser-xyzzy", "nosuchuser-xyzzy@example.org");
	/* Root@ a real domain is someone else's root. */
	rcpt(&cfg, "root@example.org", "root@example.org");
	rcpt(&cfg, "root@vm.example.com.evil.test",
	    "root@vm.example.com.evil.test");
	rcpt(&cfg, "user@elsewhere.test", "user@elsewhere.test");

	/* Root= without '@' is qualified with the domain. */
	(void)strlcpy(cfg.root, "admins", sizeof(cfg.root));
	rcpt(&cfg, "root", "admins@example.org");
	config_free(&cfg);
}

static void
test_recipient_no_root(void **state)
{
	struct config cfg;
	struct error err;
	char out[ADDR_MAX];

	(void)state;
	fixed_config(&cfg);
	/* Root= unset: local names are qualified, no remapping. */
	rcpt(&cfg, "root", "root@example.org");
	rcpt(&cfg, "root@localhost", "root@example.org");
	rcpt(&cfg, "root@vm.example.com", "root@example.org");
	rcpt(&cfg, "daemon", "daemon@example.org");
	rcpt(&cfg, "user@elsewhere.test", "user@elsewhere.test");

	error_clear(&err);
	assert_int_equal(alias_recipient(&cfg, "@localhost", "example.org",
	    "vm.example.com", out, sizeof(out), &err), ST_DATA);
	assert_int_equal(alias_recipient(&cfg, "a b@x.test", "example.org",
	    "vm.example.com", out, sizeof(out), &err), ST_DATA);
	assert_int_equal(alias_recipient(&cfg, "root", "example.org",
	    "vm.example.com", out, 8, &err), ST_DATA);

	/* No host name given: alias_hostname() is used (HostName here). */
	assert_int_equal(alias_recipient(&cfg, "x@vm.example.com",
	    "example.org", NULL, out, sizeof(out), &err), ST_OK);
	assert_string_equal(out, "x@example.org");
	config_free(&cfg);
}

static void
test_route(void **state)
{
	struct config cfg;
	struct revalias ra;
	struct route rt;

	(void)state;
	config_defaults(&cfg);
	(void)strlcpy(cfg.hub_host, "hub.example", sizeof(cfg.hub_host));
	(void)strlcpy(cfg.hub_port, "587", sizeof(cfg.hub_port));
	memset(&ra, 0, sizeof(ra));

	alias_route(&cfg, NULL, &rt);
	assert_string_equal(rt.host, "hub.example");
	assert_string_equal(rt.port, "587");
	alias_route(&cfg, &ra, &rt);
	assert_string_equal(rt.host, "hub.example");

	/* A revaliases address alone changes no route. */
	ra.found = 1;
	(void)strlcpy(ra.address, "a@x", sizeof(ra.address));
	alias_route(&cfg, &ra, &rt);
	assert_string_equal(rt.host, "hub.example");
	assert_string_equal(rt.port, "587");

	/* Its own hub without a port keeps the configured port. */
	(void)strlcpy(ra.hub_host, "::1", sizeof(ra.hub_host));
	alias_route(&cfg, &ra, &rt);
	assert_string_equal(rt.host, "::1");
	assert_string_equal(rt.port, "587");

	(void)strlcpy(ra.hub_port, "2526", sizeof(ra.hub_port));
	alias_route(&cfg, &ra, &rt);
	assert_string_equal(rt.host, "::1");
	assert_string_equal(rt.port, "2526");
	config_free(&cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_revaliases_exact_match),
		cmocka_unit_test(test_revaliases_last_match),
		cmocka_unit_test(test_revaliases_hub_and_port),
		cmocka_unit_test(test_revaliases_ipv6_hub),
		cmocka_unit_test(test_revaliases_comments_and_crlf),
		cmocka_unit_test(test_revaliases_bad_address),
		cmocka_unit_test(test_revaliases_file),
		cmocka_unit_test(test_domain_and_hostname),
		cmocka_unit_test(test_qualify),
		cmocka_unit_test(test_sender_priority),
		cmocka_unit_test(test_from_line_override),
		cmocka_unit_test(test_recipient_root),
		cmocka_unit_test(test_recipient_no_root),
		cmocka_unit_test(test_route),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
