/*
 * test_alias.c: revaliases (ssmtp semantics plus the IPv6 hub and
 * chains), the aliases file and recipient expansion, -bv lines, the mail
 * domain and host name, the envelope sender's priority, Root= and local
 * recipients, and the route (alias.c).
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

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

/* A FIFO planted as /etc/mailname (no writer) must not hang a sender. */
static void
test_mailname_fifo_does_not_block(void **state)
{
	char buf[HOST_MAX], sys[HOST_MAX], dir[] = "/tmp/postino-mn-XXXXXX";
	char fifo[64];
	struct config cfg;

	(void)state;
	assert_int_equal(gethostname(sys, sizeof(sys)), 0);
	assert_non_null(mkdtemp(dir));
	(void)snprintf(fifo, sizeof(fifo), "%s/mailname", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	config_defaults(&cfg);
	(void)strlcpy(cfg.mailname_path, fifo, sizeof(cfg.mailname_path));
	(void)alarm(5);		/* a blocking open fails the test, not hangs it */
	alias_domain(&cfg, buf, sizeof(buf));
	(void)alarm(0);
	assert_string_equal(buf, sys);
	(void)unlink(fifo);
	(void)rmdir(dir);
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

#define VERIFY_LINE_TEST	(2 * ADDR_MAX + HOST_MAX + 64)

/* ------------------------------------------------------ revaliases chains */

static void
test_revaliases_chain(void **state)
{
	struct revalias ra;
	struct error err;

	(void)state;
	/* The operators' layout (seed 001): every name to "admins". */
	assert_int_equal(reval("postmaster: admins\nroot: admins\n#\n"
	    "admins: ops@example.org\n", "root", &ra, &err), ST_OK);
	assert_int_equal(ra.found, 1);
	assert_string_equal(ra.address, "ops@example.org");
	assert_string_equal(ra.hub_host, "");

	/* Three steps; the last match wins at every step. */
	assert_int_equal(reval("root:a\na:old@x\nroot:b\nb:c\nc:first@x\n"
	    "c:final@x\n", "root", &ra, &err), ST_OK);
	assert_string_equal(ra.address, "final@x");

	/* A name without an entry stays bare (qualified later). */
	assert_int_equal(reval("root: admins\n", "root", &ra, &err), ST_OK);
	assert_string_equal(ra.address, "admins");
	/* An address with '@' is never followed, even if it is a key. */
	assert_int_equal(reval("root: a@x\na@x: b@y\n", "root", &ra, &err),
	    ST_OK);
	assert_string_equal(ra.address, "a@x");
	/* Lookups stay exact: "Admins" is not "admins". */
	assert_int_equal(reval("root: admins\nAdmins: no@x\n", "root", &ra,
	    &err), ST_OK);
	assert_string_equal(ra.address, "admins");
}

static void
test_revaliases_chain_loops(void **state)
{
	char text[4096], line[64];
	struct revalias ra;
	struct error err;
	int i;

	(void)state;
	assert_int_equal(reval("root: root\n", "root", &ra, &err), ST_OK);
	assert_string_equal(ra.address, "root");
	assert_int_equal(reval("root: admins\nadmins: root\n", "root", &ra,
	    &err), ST_OK);
	assert_string_equal(ra.address, "root");
	assert_int_equal(reval("root: a\na: b\nb: a\n", "root", &ra, &err),
	    ST_OK);
	assert_string_equal(ra.address, "a");

	/* A chain of 30 stops after 20 steps. */
	(void)strlcpy(text, "root: n1\n", sizeof(text));
	for (i = 1; i < 30; i++) {
		(void)snprintf(line, sizeof(line), "n%d: n%d\n", i, i + 1);
		assert_true(strlcat(text, line, sizeof(text)) < sizeof(text));
	}
	assert_true(strlcat(text, "n30: end@x\n", sizeof(text)) <
	    sizeof(text));
	assert_int_equal(reval(text, "root", &ra, &err), ST_OK);
	assert_string_equal(ra.address, "n21");
	/* From n15 the end is 15 steps away: reached. */
	assert_int_equal(reval(text, "n15", &ra, &err), ST_OK);
	assert_string_equal(ra.address, "end@x");

	/* A followed entry is ours to check; an unrelated one is not. */
	assert_int_equal(reval("other:<bad>\nroot: admins\nadmins: <x@y>\n",
	    "root", &ra, &err), ST_CONFIG);
	assert_string_equal(err.text, "revaliases:3: bad address");
}

static void
test_revaliases_chain_hubs(void **state)
{
	struct revalias ra;
	struct error err;

	(void)state;
	/* The login names no hub: the chain's hub and port apply. */
	assert_int_equal(reval("root: admins\n"
	    "admins: ops@example.org:127.0.0.1:2526\n", "root", &ra, &err),
	    ST_OK);
	assert_string_equal(ra.address, "ops@example.org");
	assert_string_equal(ra.hub_host, "127.0.0.1");
	assert_string_equal(ra.hub_port, "2526");

	/* The login's own hub wins, with its own (empty) port. */
	assert_int_equal(reval("root: admins:[::1]\n"
	    "admins: ops@example.org:127.0.0.1:2526\n", "root", &ra, &err),
	    ST_OK);
	assert_string_equal(ra.address, "ops@example.org");
	assert_string_equal(ra.hub_host, "::1");
	assert_string_equal(ra.hub_port, "");

	/* Nearest first: the middle entry's hub beats the last one's. */
	assert_int_equal(reval("root: a\na: b:hub-a:2600\n"
	    "b: ops@x:hub-b:2700\n", "root", &ra, &err), ST_OK);
	assert_string_equal(ra.address, "ops@x");
	assert_string_equal(ra.hub_host, "hub-a");
	assert_string_equal(ra.hub_port, "2600");

	/* ssmtp's "a later login line keeps the earlier hub" still holds. */
	assert_int_equal(reval("root: x:hub1:2525\nroot: admins\n"
	    "admins: ops@x:hub2:25\n", "root", &ra, &err), ST_OK);
	assert_string_equal(ra.address, "ops@x");
	assert_string_equal(ra.hub_host, "hub1");
	assert_string_equal(ra.hub_port, "2525");
}

static void
test_revaliases_chain_file(void **state)
{
	struct config cfg;
	struct revalias ra;
	struct error err;
	char path[64], out[ADDR_MAX];

	(void)state;
	fixed_config(&cfg);
	temp_file(path, sizeof(path), "root: admins\nadmins: ops\n");
	error_clear(&err);
	assert_int_equal(alias_load_revaliases(path, "root", &ra, &err),
	    ST_OK);
	assert_string_equal(ra.address, "ops");
	/* The bare end of a chain is qualified like any revaliases value. */
	assert_int_equal(alias_default_sender(&cfg, &ra, NULL, "root",
	    "example.org", out, sizeof(out), &err), ST_OK);
	assert_string_equal(out, "ops@example.org");
	assert_int_equal(unlink(path), 0);
	config_free(&cfg);
}

/* ---------------------------------------------------------- aliases file */

struct warnings {
	char		 text[16][ERR_MAX];
	size_t		 n;
};

static void
collect_warning(void *arg, const char *text)
{
	struct warnings *w = arg;

	assert_true(w->n < 16);
	(void)strlcpy(w->text[w->n++], text, sizeof(w->text[0]));
}

/* Is there a warning containing text? */
static int
warned(const struct warnings *w, const char *text)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		if (strstr(w->text[i], text) != NULL)
			return 1;
	return 0;
}

static struct aliases *
load(const char *text, struct warnings *w)
{
	struct aliases *al = NULL;
	struct error err;

	memset(w, 0, sizeof(*w));
	error_clear(&err);
	if (alias_parse_aliases("aliases", text, strlen(text), &al,
	    collect_warning, w, &err) != ST_OK)
		fail_msg("parse: %s", err.text);
	assert_non_null(al);
	return al;
}

/* Expand rcpt and compare the list (in order, comma-joined) with want. */
static void
expect(const struct config *cfg, const struct aliases *al, const char *rcpt,
    int no_alias, const char *want)
{
	struct addrlist out;
	struct error err;
	char got[4096];
	size_t i;

	addrlist_init(&out);
	error_clear(&err);
	if (alias_expand(cfg, al, rcpt, "example.org", "vm.example.com",
	    no_alias, &out, &err) != ST_OK)
		fail_msg("%s: %s", rcpt, err.text);
	got[0] = '\0';
	for (i = 0; i < out.n; i++) {
		if (i > 0)
			(void)strlcat(got, ",", sizeof(got));
		(void)strlcat(got, out.v[i], sizeof(got));
	}
	addrlist_free(&out);
	if (strcmp(got, want) != 0)
		fail_msg("%s -> %s, want %s", rcpt, got, want);
}

static void
test_aliases_format(void **state)
{
	struct config cfg;
	struct aliases *al;
	struct warnings w;

	(void)state;
	fixed_config(&cfg);
	al = load("# /etc/aliases\n"
	    "\n"
	    "Team: a@x.test,\n"
	    "\tb@x.test\n"
	    "  # a comment inside the entry does not end it\n"
	    "\n"
	    "   , c@x.test\n"
	    "ops:ops@x.test , \"Ops Desk\" <desk@x.test>, <pager@x.test>,\r\n"
	    "\"quoted name\" : q@x.test\n"
	    "list: \"Doe, J\" <jd@x.test>, (a, comment) cm@x.test,,\n"
	    "last: eof@x.test", &w);
	assert_int_equal(w.n, 0);
	expect(&cfg, al, "team", 0, "a@x.test,b@x.test,c@x.test");
	/* Names are case-insensitive; the recipient's case does not matter. */
	expect(&cfg, al, "TEAM", 0, "a@x.test,b@x.test,c@x.test");
	expect(&cfg, al, "Team@localhost", 0, "a@x.test,b@x.test,c@x.test");
	expect(&cfg, al, "ops", 0, "ops@x.test,desk@x.test,pager@x.test");
	expect(&cfg, al, "\"quoted name\"", 0, "q@x.test");
	expect(&cfg, al, "list", 0, "jd@x.test,cm@x.test");
	expect(&cfg, al, "last", 0, "eof@x.test");
	/* Not an alias: qualified. */
	expect(&cfg, al, "nobody-here", 0, "nobody-here@example.org");
	alias_free_aliases(al);
	config_free(&cfg);
}

static void
test_aliases_unsupported(void **state)
{
	struct config cfg;
	struct aliases *al;
	struct warnings w;

	(void)state;
	fixed_config(&cfg);
	al = load("backup: |/usr/bin/backup-mail, keep@x.test\n"
	    "proc: \"|/usr/bin/procmail -a x\", /var/mail/proc,\n"
	    "  :include:/etc/mail/list, real@x.test\n"
	    "nobody: /dev/null\n", &w);
	expect(&cfg, al, "backup", 0, "keep@x.test");
	expect(&cfg, al, "proc", 0, "real@x.test");
	assert_true(warned(&w, "aliases:1: alias backup: a pipe to a command "
	    "is not supported by a relay, '|/usr/bin/backup-mail' ignored"));
	assert_true(warned(&w, "aliases:2: alias proc: a pipe to a command"));
	assert_true(warned(&w, "aliases:2: alias proc: delivery to a file"));
	assert_true(warned(&w, "aliases:2: alias proc: :include: is not "
	    "supported"));
	/* Nothing left: the entry goes, the name is relayed, never lost. */
	assert_true(warned(&w, "aliases:4: alias nobody has no address "
	    "left, ignored"));
	assert_true(warned(&w, "aliases:4: alias nobody: delivery to a file "
	    "is not supported by a relay, '/dev/null' ignored"));
	assert_int_equal(w.n, 6);
	expect(&cfg, al, "nobody", 0, "nobody@example.org");
	alias_free_aliases(al);
	config_free(&cfg);
}

static void
test_aliases_garbage(void **state)
{
	static const char nul[] = "a: x@y.test\nb: \0z@y.test\nc: c@y.test\n";
	struct config cfg;
	struct aliases *al;
	struct warnings w;
	struct error err;

	(void)state;
	fixed_config(&cfg);
	al = load("  orphan@x.test\n"
	    "no colon here\n"
	    "root@vm: x@y.test\n"
	    "bad: a b, ok@y.test, \x01@y.test, <broken\n"
	    "dup: first@y.test\n"
	    "DUP: second@y.test\n"
	    "spaced name: s@y.test\n", &w);
	assert_true(warned(&w, "aliases:1: continuation line without an "
	    "alias, ignored"));
	assert_true(warned(&w, "aliases:2: not an alias"));
	assert_true(warned(&w, "aliases:3: bad alias name 'root@vm'"));
	assert_true(warned(&w, "aliases:4: alias bad: bad address 'a b'"));
	assert_true(warned(&w, "aliases:4: alias bad: bad address '<broken'"));
	assert_true(warned(&w, "aliases:4: alias bad: bad address '?@y.test'"));
	assert_true(warned(&w, "aliases:6: duplicate alias dup (first at "
	    "line 5), ignored"));
	assert_true(warned(&w, "aliases:7: not an alias"));
	assert_int_equal(w.n, 8);
	expect(&cfg, al, "bad", 0, "ok@y.test");
	expect(&cfg, al, "dup", 0, "first@y.test");
	alias_free_aliases(al);

	/* A NUL byte costs its line only. */
	memset(&w, 0, sizeof(w));
	error_clear(&err);
	assert_int_equal(alias_parse_aliases("aliases", nul, sizeof(nul) - 1,
	    &al, collect_warning, &w, &err), ST_OK);
	assert_true(warned(&w, "aliases:2: NUL byte, line ignored"));
	expect(&cfg, al, "a", 0, "x@y.test");
	expect(&cfg, al, "b", 0, "b@example.org");
	expect(&cfg, al, "c", 0, "c@y.test");
	alias_free_aliases(al);

	/* Warnings are optional. */
	assert_int_equal(alias_parse_aliases("aliases", "x\n", 2, &al, NULL,
	    NULL, &err), ST_OK);
	alias_free_aliases(al);
	config_free(&cfg);
}

static void
test_aliases_recursion(void **state)
{
	struct config cfg;
	struct aliases *al;
	struct warnings w;

	(void)state;
	fixed_config(&cfg);
	/* Debian's default file with root sent somewhere. */
	al = load("mailer-daemon: postmaster\npostmaster: root\n"
	    "nobody: root\nwww: webmaster\nwebmaster: root, web@x.test\n"
	    "root: admin@x.test\n"
	    "local: admin@localhost, ops@VM, team@vm.example.com\n"
	    "admin: boss@x.test\nops: ops@x.test\n", &w);
	expect(&cfg, al, "MAILER-DAEMON", 0, "admin@x.test");
	expect(&cfg, al, "www", 0, "admin@x.test,web@x.test");
	/* Local forms of a value are looked up in turn. */
	expect(&cfg, al, "local", 0, "boss@x.test,ops@x.test,"
	    "team@example.org");
	/* Local forms of the recipient are looked up; other domains not. */
	expect(&cfg, al, "postmaster@localhost", 0, "admin@x.test");
	expect(&cfg, al, "postmaster@LOCALHOST.localdomain", 0,
	    "admin@x.test");
	expect(&cfg, al, "postmaster@vm.example.com", 0, "admin@x.test");
	expect(&cfg, al, "postmaster@vm", 0, "admin@x.test");
	expect(&cfg, al, "postmaster@example.org", 0,
	    "postmaster@example.org");
	expect(&cfg, al, "root@elsewhere.test", 0, "root@elsewhere.test");
	/* Several paths to one name: one address. */
	expect(&cfg, al, "webmaster", 0, "admin@x.test,web@x.test");
	alias_free_aliases(al);
	config_free(&cfg);
}

static void
test_aliases_loops(void **state)
{
	struct config cfg;
	struct aliases *al;
	struct warnings w;

	(void)state;
	fixed_config(&cfg);
	al = load("a: b\nb: a\nroot: root, admins\nself: \\self, x@y.test\n"
	    "c: d@localhost\nd: e\ne: C\n", &w);
	expect(&cfg, al, "a", 0, "a@example.org");
	expect(&cfg, al, "b", 0, "b@example.org");
	/* The loop closes on "C": kept as written. */
	expect(&cfg, al, "c", 0, "C@example.org");
	/* The name itself goes on through Root= and the domain. */
	expect(&cfg, al, "root", 0, "root@example.org,admins@example.org");
	expect(&cfg, al, "self", 0, "self@example.org,x@y.test");
	(void)strlcpy(cfg.root, "postmaster@ops.test", sizeof(cfg.root));
	expect(&cfg, al, "root", 0, "postmaster@ops.test,admins@example.org");
	alias_free_aliases(al);
	config_free(&cfg);
}

static void
test_aliases_depth_and_fanout(void **state)
{
	struct config cfg;
	struct aliases *al;
	struct warnings w;
	char text[8192], line[64];
	int i;

	(void)state;
	fixed_config(&cfg);
	text[0] = '\0';
	for (i = 0; i < 30; i++) {
		(void)snprintf(line, sizeof(line), "n%d: n%d\n", i, i + 1);
		assert_true(strlcat(text, line, sizeof(text)) < sizeof(text));
	}
	al = load(text, &w);
	/* 20 lookups, then the name as it is. */
	expect(&cfg, al, "n0", 0, "n20@example.org");
	expect(&cfg, al, "n5", 0, "n25@example.org");
	expect(&cfg, al, "n15", 0, "n30@example.org");
	alias_free_aliases(al);

	/*
	 * Two names per level, each naming both of the next: 2^19 paths,
	 * but every name is expanded once per recipient.
	 */
	text[0] = '\0';
	for (i = 0; i < 19; i++) {
		(void)snprintf(line, sizeof(line), "a%d: a%d, b%d\n"
		    "b%d: b%d, a%d\n", i, i + 1, i + 1, i, i + 1, i + 1);
		assert_true(strlcat(text, line, sizeof(text)) < sizeof(text));
	}
	assert_true(strlcat(text, "a19: end@x.test\nb19: end@x.test\n",
	    sizeof(text)) < sizeof(text));
	al = load(text, &w);
	expect(&cfg, al, "a0", 0, "end@x.test");
	alias_free_aliases(al);
	config_free(&cfg);
}

static void
test_aliases_root_and_no_alias(void **state)
{
	struct config cfg;
	struct aliases *al;
	struct warnings w;

	(void)state;
	fixed_config(&cfg);
	(void)strlcpy(cfg.root, "postmaster@ops.test", sizeof(cfg.root));
	al = load("postmaster: root\nsupport: helpdesk, root@localhost\n"
	    "root: admins\n", &w);
	/* Aliases first: root's own alias wins over Root=. */
	expect(&cfg, al, "root", 0, "admins@example.org");
	expect(&cfg, al, "support", 0, "helpdesk@example.org,"
	    "admins@example.org");
	/* -n: no lookups, but Root= and the domain still apply. */
	expect(&cfg, al, "root", 1, "postmaster@ops.test");
	expect(&cfg, al, "support", 1, "support@example.org");
	expect(&cfg, al, "root@localhost", 1, "postmaster@ops.test");
	expect(&cfg, al, "x@y.test", 1, "x@y.test");
	/* No table at all is the same as -n. */
	expect(&cfg, NULL, "root", 0, "postmaster@ops.test");
	alias_free_aliases(al);

	/* Root= applies to the names that aliases produce. */
	al = load("postmaster: root\n", &w);
	expect(&cfg, al, "postmaster", 0, "postmaster@ops.test");
	cfg.root[0] = '\0';
	expect(&cfg, al, "postmaster", 0, "root@example.org");
	alias_free_aliases(al);
	config_free(&cfg);
}

static void
test_aliases_invalid(void **state)
{
	struct config cfg;
	struct aliases *al;
	struct warnings w;
	struct addrlist out;
	struct error err;
	char big[ADDR_MAX + 8];

	(void)state;
	fixed_config(&cfg);
	al = load("a: x@y.test\n", &w);
	addrlist_init(&out);
	error_clear(&err);
	assert_int_equal(alias_expand(&cfg, al, "", "example.org",
	    "vm.example.com", 0, &out, &err), ST_DATA);
	assert_int_equal(alias_expand(&cfg, al, "@localhost", "example.org",
	    "vm.example.com", 0, &out, &err), ST_DATA);
	assert_string_equal(err.text, "empty recipient name");
	assert_int_equal(alias_expand(&cfg, al, "a b@x.test", "example.org",
	    "vm.example.com", 0, &out, &err), ST_DATA);
	assert_non_null(strstr(err.text, "bad recipient address"));
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(alias_expand(&cfg, al, big, "example.org",
	    "vm.example.com", 0, &out, &err), ST_DATA);
	assert_int_equal(out.n, 0);
	/* No host name given: HostName= (alias_hostname) decides. */
	assert_int_equal(alias_expand(&cfg, al, "a@vm.example.com",
	    "example.org", NULL, 0, &out, &err), ST_OK);
	assert_int_equal(out.n, 1);
	assert_string_equal(out.v[0], "x@y.test");
	addrlist_free(&out);
	alias_free_aliases(al);
	config_free(&cfg);
}

/* "name: a0@x, a1@x, ..." with n addresses starting at first. */
static char *
big_alias(const char *name, int first, int n)
{
	size_t cap = (size_t)n * 24 + 64, len;
	char *text = malloc(cap);
	int i;

	assert_non_null(text);
	len = (size_t)snprintf(text, cap, "%s: ", name);
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len, "u%d@x.test,",
		    first + i);
	assert_true(len < cap - 1);
	text[len++] = '\n';
	text[len] = '\0';
	return text;
}

static void
test_aliases_limits(void **state)
{
	struct config cfg;
	struct aliases *al;
	struct addrlist out;
	struct error err;
	char *a, *b, *both;
	size_t len;

	(void)state;
	fixed_config(&cfg);
	/* One alias may not name more than RCPT_MAX addresses. */
	a = big_alias("a", 0, RCPT_MAX + 1);
	error_clear(&err);
	assert_int_equal(alias_parse_aliases("aliases", a, strlen(a), &al,
	    NULL, NULL, &err), ST_CONFIG);
	assert_null(al);
	assert_non_null(strstr(err.text, "aliases:1: too many addresses"));
	free(a);

	/* The recipients of one message stop at RCPT_MAX. */
	a = big_alias("a", 0, RCPT_MAX / 2 + 1);
	b = big_alias("b", RCPT_MAX, RCPT_MAX / 2 + 1);
	len = strlen(a) + strlen(b) + 1;
	both = malloc(len);
	assert_non_null(both);
	(void)strlcpy(both, a, len);
	(void)strlcat(both, b, len);
	assert_int_equal(alias_parse_aliases("aliases", both, strlen(both),
	    &al, NULL, NULL, &err), ST_OK);
	addrlist_init(&out);
	assert_int_equal(alias_expand(&cfg, al, "a", "example.org",
	    "vm.example.com", 0, &out, &err), ST_OK);
	assert_int_equal(out.n, RCPT_MAX / 2 + 1);
	assert_int_equal(alias_expand(&cfg, al, "b", "example.org",
	    "vm.example.com", 0, &out, &err), ST_DATA);
	assert_non_null(strstr(err.text, "too many recipients"));
	addrlist_free(&out);
	alias_free_aliases(al);
	free(a);
	free(b);
	free(both);
	config_free(&cfg);
}

static void
test_aliases_file(void **state)
{
	struct aliases *al;
	struct warnings w;
	struct error err;
	char path[64];
	size_t entries;
	FILE *f;
	long i;

	(void)state;
	memset(&w, 0, sizeof(w));
	temp_file(path, sizeof(path), "a: x@y.test\nb: |/bin/cat\n"
	    "c: y@y.test\n");
	error_clear(&err);
	assert_int_equal(alias_check_aliases(path, collect_warning, &w,
	    &entries, &err), ST_OK);
	assert_int_equal(entries, 2);
	assert_int_equal(w.n, 2);
	/* Warnings name the file and line. */
	assert_true(strncmp(w.text[0], path, strlen(path)) == 0);
	assert_non_null(strstr(w.text[0], ":2: alias b: a pipe"));
	assert_non_null(strstr(w.text[1], ":2: alias b has no address"));
	assert_int_equal(alias_load_aliases(path, &al, NULL, NULL, &err),
	    ST_OK);
	alias_free_aliases(al);

	/* Over 4 MiB: an error, not a partial table. */
	f = fopen(path, "w");
	assert_non_null(f);
	for (i = 0; i < 4 * 1024 * 1024 / 16 + 1; i++)
		assert_true(fputs("# padding line\n\n", f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(alias_load_aliases(path, &al, NULL, NULL, &err),
	    ST_CONFIG);
	assert_null(al);
	assert_non_null(strstr(err.text, "file too large (over 4 MiB)"));
	assert_int_equal(unlink(path), 0);

	/* No file, or none configured: an empty table, no error. */
	assert_int_equal(alias_check_aliases(path, NULL, NULL, &entries,
	    &err), ST_OK);
	assert_int_equal(entries, 0);
	assert_int_equal(alias_load_aliases("", &al, NULL, NULL, &err),
	    ST_OK);
	assert_non_null(al);
	alias_free_aliases(al);
	assert_int_equal(alias_load_aliases(NULL, &al, NULL, NULL, &err),
	    ST_OK);
	alias_free_aliases(al);
	alias_free_aliases(NULL);

	/* Unreadable: a config error. */
	assert_int_equal(alias_check_aliases("/", NULL, NULL, &entries, &err),
	    ST_CONFIG);
	assert_string_equal(err.text, "/: not a regular file");
	assert_int_equal(alias_load_aliases("/nonexistent-dir/x/../aliases",
	    &al, NULL, NULL, &err), ST_OK);
	alias_free_aliases(al);
}

/* ------------------------------------------------------------------ -bv */

struct lines {
	char		 text[8][VERIFY_LINE_TEST];
	size_t		 n;
};

static void
collect_line(void *arg, const char *line)
{
	struct lines *l = arg;

	assert_true(l->n < 8);
	(void)strlcpy(l->text[l->n++], line, sizeof(l->text[0]));
}

static int
verify(const struct config *cfg, const struct aliases *al, const char *arg,
    int no_alias, struct lines *l)
{
	struct error err;

	memset(l, 0, sizeof(*l));
	error_clear(&err);
	return alias_verify_line(cfg, al, arg, "example.org",
	    "vm.example.com", no_alias, collect_line, l, &err);
}

static void
test_verify_lines(void **state)
{
	struct config cfg;
	struct aliases *al;
	struct warnings w;
	struct lines l;

	(void)state;
	fixed_config(&cfg);
	(void)strlcpy(cfg.hub_host, "mail.example.org", sizeof(cfg.hub_host));
	al = load("root: admins\nteam: a@x.test, b\n", &w);

	/* The two lines of callers.md 3.10. */
	assert_int_equal(verify(&cfg, al, "root", 0, &l), ST_OK);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.text[0], "root... deliverable: mailer relay, "
	    "host mail.example.org, user admins@example.org");
	assert_int_equal(verify(&cfg, al, "someone@example.org", 0, &l),
	    ST_OK);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.text[0], "someone@example.org... deliverable: "
	    "mailer relay, host mail.example.org, user someone@example.org");

	/* Several final addresses: one line each. */
	assert_int_equal(verify(&cfg, al, "team", 0, &l), ST_OK);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.text[0], "team... deliverable: mailer relay, "
	    "host mail.example.org, user a@x.test");
	assert_string_equal(l.text[1], "team... deliverable: mailer relay, "
	    "host mail.example.org, user b@example.org");

	/* -n, and an argument holding a list ("<root>, x@y" as cron's). */
	assert_int_equal(verify(&cfg, al, "root", 1, &l), ST_OK);
	assert_string_equal(l.text[0], "root... deliverable: mailer relay, "
	    "host mail.example.org, user root@example.org");
	assert_int_equal(verify(&cfg, al, "<root>,x@y.test", 0, &l), ST_OK);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.text[0], "root... deliverable: mailer relay, "
	    "host mail.example.org, user admins@example.org");
	assert_string_equal(l.text[1], "x@y.test... deliverable: mailer "
	    "relay, host mail.example.org, user x@y.test");
	alias_free_aliases(al);
	config_free(&cfg);
}

static void
test_verify_invalid(void **state)
{
	struct config cfg;
	struct lines l;
	struct error err;

	(void)state;
	fixed_config(&cfg);
	(void)strlcpy(cfg.hub_host, "mail.example.org", sizeof(cfg.hub_host));
	assert_int_equal(verify(&cfg, NULL, "a b", 0, &l), ST_DATA);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.text[0], "a b... Invalid address");
	assert_int_equal(verify(&cfg, NULL, "", 0, &l), ST_DATA);
	assert_string_equal(l.text[0], "... Invalid address");
	assert_int_equal(verify(&cfg, NULL, "@localhost", 0, &l), ST_DATA);
	assert_string_equal(l.text[0], "@localhost... Invalid address");
	/* Control bytes never reach the terminal. */
	assert_int_equal(verify(&cfg, NULL, "x\033[2J@y", 0, &l), ST_DATA);
	assert_string_equal(l.text[0], "x?[2J@y... Invalid address");
	assert_int_equal(verify(&cfg, NULL, "root\nx", 0, &l), ST_DATA);
	assert_string_equal(l.text[0], "root?x... Invalid address");

	/* In a list, the good addresses still get their lines. */
	memset(&l, 0, sizeof(l));
	error_clear(&err);
	assert_int_equal(alias_verify_line(&cfg, NULL, "ok@y.test, "
	    "\"a b\"@y.test, root", "example.org", "vm.example.com", 0,
	    collect_line, &l, &err), ST_DATA);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.text[0], "ok@y.test... deliverable: mailer "
	    "relay, host mail.example.org, user ok@y.test");
	assert_string_equal(l.text[1], "\"a b\"@y.test... Invalid address");
	assert_string_equal(l.text[2], "root... deliverable: mailer relay, "
	    "host mail.example.org, user root@example.org");
	assert_non_null(strstr(err.text, "bad recipient address"));
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
		cmocka_unit_test(test_revaliases_chain),
		cmocka_unit_test(test_revaliases_chain_loops),
		cmocka_unit_test(test_revaliases_chain_hubs),
		cmocka_unit_test(test_revaliases_chain_file),
		cmocka_unit_test(test_domain_and_hostname),
		cmocka_unit_test(test_sender_priority),
		cmocka_unit_test(test_from_line_override),
		cmocka_unit_test(test_recipient_root),
		cmocka_unit_test(test_recipient_no_root),
		cmocka_unit_test(test_route),
		cmocka_unit_test(test_aliases_format),
		cmocka_unit_test(test_aliases_unsupported),
		cmocka_unit_test(test_aliases_garbage),
		cmocka_unit_test(test_aliases_recursion),
		cmocka_unit_test(test_aliases_loops),
		cmocka_unit_test(test_aliases_depth_and_fanout),
		cmocka_unit_test(test_aliases_root_and_no_alias),
		cmocka_unit_test(test_aliases_invalid),
		cmocka_unit_test(test_aliases_limits),
		cmocka_unit_test(test_mailname_fifo_does_not_block),
		cmocka_unit_test(test_aliases_file),
		cmocka_unit_test(test_verify_lines),
		cmocka_unit_test(test_verify_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
