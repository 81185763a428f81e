/*
 * test_sender.c: AllowedSendersFile (sender.c) and SenderPolicy's
 * rewriting of From:/Sender: in message_read (message.c).
 */
#include <sys/stat.h>

#include <fcntl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

static const char FILE_TEXT[] =
    "# allowed senders\n"
    "*: *@example.org\n"
    "www-data: shop@example.org, noreply@Shop.Example.COM ,\tbounce\n"
    "alice:alice@corp.test # her own\n"
    "root: *\n"
    "alice: alice@corp.test, *@lists.corp.test\n";

static void
parse_for(const char *login, struct sender_allow *a)
{
	struct error err;

	error_clear(&err);
	assert_int_equal(sender_parse_allowed("allowed", FILE_TEXT,
	    strlen(FILE_TEXT), login, "example.org", a, &err), ST_OK);
}

static void
t_parse_own_line(void **state)
{
	struct sender_allow a;

	(void)state;
	parse_for("www-data", &a);
	assert_int_equal(a.found, 2);
	assert_int_equal(a.n, 3);
	assert_string_equal(a.entry[0], "shop@example.org");
	assert_string_equal(a.entry[1], "noreply@Shop.Example.COM");
	/* A bare name gets the mail domain. */
	assert_string_equal(a.entry[2], "bounce@example.org");
}

static void
t_last_line_wins_and_star(void **state)
{
	struct sender_allow a;

	(void)state;
	parse_for("alice", &a);
	assert_int_equal(a.n, 2);
	assert_string_equal(a.entry[1], "*@lists.corp.test");
	/* No line of their own: "*", even when it comes first. */
	parse_for("bob", &a);
	assert_int_equal(a.found, 1);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.entry[0], "*@example.org");
}

static void
t_may_use(void **state)
{
	struct sender_allow a;

	(void)state;
	parse_for("www-data", &a);
	assert_true(sender_may_use(&a, NULL, "shop@example.org"));
	/* Domains compare without case; local parts exactly. */
	assert_true(sender_may_use(&a, NULL, "noreply@shop.example.com"));
	assert_false(sender_may_use(&a, NULL, "Shop@example.org"));
	assert_false(sender_may_use(&a, NULL, "ceo@bank.test"));
	/* The null sender (bounces) and one's own address. */
	assert_true(sender_may_use(&a, NULL, ""));
	assert_true(sender_may_use(&a, "web@Host.Test", "web@host.test"));
	parse_for("alice", &a);
	assert_true(sender_may_use(&a, NULL, "x@LISTS.corp.test"));
	assert_false(sender_may_use(&a, NULL, "x@sub.lists.corp.test"));
	/* root is not exempt unless the file says so: here it does. */
	parse_for("root", &a);
	assert_true(sender_may_use(&a, NULL, "anyone@anywhere.test"));
}

static void
t_own(void **state)
{
	struct sender_allow a;
	struct revalias rev;
	struct error err;
	char own[ADDR_MAX];

	(void)state;
	memset(&rev, 0, sizeof(rev));
	parse_for("www-data", &a);
	assert_int_equal(sender_own(&a, &rev, "www-data", "example.org", own,
	    sizeof(own), &err), ST_OK);
	assert_string_equal(own, "shop@example.org");
	parse_for("bob", &a);
	assert_int_equal(sender_own(&a, &rev, "bob", "host.test", own,
	    sizeof(own), &err), ST_OK);
	assert_string_equal(own, "bob@example.org");
	rev.found = 1;
	(void)strlcpy(rev.address, "ops", sizeof(rev.address));
	assert_int_equal(sender_own(&a, &rev, "bob", "example.org", own,
	    sizeof(own), &err), ST_OK);
	assert_string_equal(own, "ops@example.org");
}

static void
t_bad_files(void **state)
{
	struct sender_allow a;
	struct error err;
	static const char no_colon[] = "www-data shop@example.org\n";
	static const char spaced[] = "bob: a b@example.org\n";

	(void)state;
	assert_int_equal(sender_parse_allowed("f", no_colon,
	    strlen(no_colon), "bob", "example.org", &a, &err), ST_CONFIG);
	assert_string_equal(err.text, "f:1: expected 'login: address, ...'");
	assert_int_equal(sender_parse_allowed("f", spaced, strlen(spaced),
	    "bob", "example.org", &a, &err), ST_CONFIG);
	assert_string_equal(err.text, "f:1: not an address");
	/* Another login's line is not even looked at. */
	assert_int_equal(sender_parse_allowed("f", spaced, strlen(spaced),
	    "carol", "example.org", &a, &err), ST_OK);
	assert_int_equal(sender_load_allowed("/nonexistent/allowed", "bob",
	    "example.org", &a, &err), ST_CONFIG);
	assert_non_null(strstr(err.text, "AllowedSendersFile"));
	assert_int_equal(sender_load_allowed("", "bob", "example.org", &a,
	    &err), ST_OK);
	assert_int_equal(a.loaded, 0);
}

static void
t_config_keys(void **state)
{
	static const char ok[] = "senderpolicy = Align\n"
	    "AllowedSendersFile=/etc/ssmtp/allowed-senders\n";
	static const char bad[] = "SenderPolicy=spoof\n";
	struct config cfg;
	struct error err;

	(void)state;
	config_defaults(&cfg);
	assert_int_equal(cfg.sender_policy, SP_KEEP);
	assert_string_equal(cfg.allowed_senders, "");
	assert_int_equal(config_parse_buffer(&cfg, "c", ok, strlen(ok), NULL,
	    NULL, &err), ST_OK);
	assert_int_equal(cfg.sender_policy, SP_ALIGN);
	assert_string_equal(cfg.allowed_senders,
	    "/etc/ssmtp/allowed-senders");
	config_free(&cfg);
	config_defaults(&cfg);
	assert_int_equal(config_parse_buffer(&cfg, "c", bad, strlen(bad), NULL,
	    NULL, &err), ST_CONFIG);
	assert_string_equal(err.text, "c:1: SenderPolicy: expected keep, "
	    "align or refuse, got 'spoof'");
	config_free(&cfg);
}

/* Under align/refuse @localhost gets the mail domain; keep as ssmtp. */
static void
t_localhost_qualified(void **state)
{
	struct error err;
	char a[ADDR_MAX], *q;
	static const char list[] = "Root <root@LocalHost>, user@localhost "
	    "(Cron), x@localhost.localdomain, bob, y@host.test";

	(void)state;
	(void)strlcpy(a, "root@localhost", sizeof(a));
	assert_int_equal(addr_qualify(a, sizeof(a), "example.org", &err),
	    ST_OK);
	assert_string_equal(a, "root@localhost");
	assert_int_equal(addr_qualify_local(a, sizeof(a), "example.org",
	    &err), ST_OK);
	assert_string_equal(a, "root@example.org");
	(void)strlcpy(a, "root@localhost.example", sizeof(a));
	assert_int_equal(addr_qualify_local(a, sizeof(a), "example.org",
	    &err), ST_OK);
	assert_string_equal(a, "root@localhost.example");
	q = addr_list_qualify_local(list, strlen(list), "example.org", &err);
	assert_non_null(q);
	assert_string_equal(q, "Root <root@example.org>, user@example.org "
	    "(Cron), x@example.org, bob@example.org, y@host.test");
	free(q);
	q = addr_list_qualify(list, strlen(list), "example.org", &err);
	assert_non_null(q);
	assert_string_equal(q, "Root <root@LocalHost>, user@localhost "
	    "(Cron), x@localhost.localdomain, bob@example.org, y@host.test");
	free(q);
}

/* EHLO: a qualified name, never localhost, never a bare host name. */
static void
t_helo_name(void **state)
{
	struct config cfg;
	char buf[HOST_MAX], path[] = "/tmp/test_sender.mailname.XXXXXX";
	char host[HOST_MAX];
	int fd;

	(void)state;
	config_defaults(&cfg);
	(void)strlcpy(cfg.hostname, "mx.example.org", sizeof(cfg.hostname));
	alias_helo_name(&cfg, buf, sizeof(buf));
	assert_string_equal(buf, "mx.example.org");
	/* Unfit HostName: /etc/mailname next. */
	assert_true((fd = mkstemp(path)) != -1);
	assert_int_equal(write(fd, " mail.example.net\n", 18), 18);
	(void)close(fd);
	(void)strlcpy(cfg.mailname_path, path, sizeof(cfg.mailname_path));
	(void)strlcpy(cfg.hostname, "localhost", sizeof(cfg.hostname));
	alias_helo_name(&cfg, buf, sizeof(buf));
	assert_string_equal(buf, "mail.example.net");
	(void)unlink(path);
	/* Then the host name if qualified, else the mail domain. */
	(void)strlcpy(cfg.hostname, "container", sizeof(cfg.hostname));
	(void)strlcpy(cfg.rewrite_domain, "example.com",
	    sizeof(cfg.rewrite_domain));
	alias_helo_name(&cfg, buf, sizeof(buf));
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	assert_string_equal(buf, strchr(host, '.') != NULL &&
	    strncmp(host, "localhost", 9) != 0 ? host : "example.com");
	/* Nothing qualified at all: an address literal. */
	(void)strlcpy(cfg.rewrite_domain, "localhost.localdomain",
	    sizeof(cfg.rewrite_domain));
	if (strchr(host, '.') == NULL) {
		alias_helo_name(&cfg, buf, sizeof(buf));
		assert_string_equal(buf, "[127.0.0.1]");
	}
	config_free(&cfg);
}

/* ------------------------------------------------- message.c, policy */

static int
allow_example_org(const void *arg, const char *addr)
{
	const char *at = strrchr(addr, '@');

	(void)arg;
	return addr[0] == '\0' || (at != NULL &&
	    strcmp(at, "@example.org") == 0);
}

/* message_read of in under policy; the spool's text in *out (freed). */
static int
read_with(enum sender_policy policy, const char *in, struct message *m,
    char **out)
{
	struct msgopts o;
	struct error err;
	struct stat st;
	char dir[] = "/tmp/test_sender.XXXXXX", path[64];
	int fd, rc;

	assert_non_null(mkdtemp(dir));
	(void)snprintf(path, sizeof(path), "%s/in", dir);
	assert_true((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600)) != -1);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(write(fd, in, strlen(in)), (ssize_t)strlen(in));
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	memset(&o, 0, sizeof(o));
	o.domain = "example.org";
	o.hostname = "host.example.org";
	o.default_from = "web@example.org";
	o.qid = "0123456789";
	o.now = 1700000000;
	o.policy = policy;
	o.may_use = allow_example_org;
	o.aligned_from = "web@example.org";
	error_clear(&err);
	rc = message_read(fd, dir, &o, m, &err);
	(void)close(fd);
	assert_int_equal(rmdir(dir), 0);
	*out = NULL;
	if (rc != ST_OK)
		return rc;
	assert_int_equal(fstat(m->fd, &st), 0);
	*out = calloc(1, (size_t)st.st_size + 1);
	assert_non_null(*out);
	assert_int_equal(pread(m->fd, *out, (size_t)st.st_size, 0),
	    st.st_size);
	return rc;
}

static const char SPOOFED[] =
    "From: \"Bank, Support\" <ceo@bank.test>\n"
    "Sender: someone@else.test\n"
    "To: root\n"
    "Subject: hi\n"
    "\n"
    "body\n";

static void
t_align_spoofed_from(void **state)
{
	struct message m;
	char *s;

	(void)state;
	assert_int_equal(read_with(SP_ALIGN, SPOOFED, &m, &s), ST_OK);
	assert_non_null(strstr(s, "\r\nFrom: \"Bank, Support\" "
	    "<web@example.org>\r\n"));
	assert_non_null(strstr(s, "\r\nReply-To: \"Bank, Support\" "
	    "<ceo@bank.test>\r\n"));
	assert_null(strstr(s, "Sender:"));
	assert_null(strstr(s, "ceo@bank.test>\r\nSender"));
	assert_non_null(strstr(s, "\r\nTo: root@example.org\r\n"));
	assert_true(m.aligned);
	assert_true(m.sender_dropped);
	assert_string_equal(m.from_addr, "web@example.org");
	free(s);
	message_free(&m);
}

static void
t_align_keeps_allowed_from_and_reply_to(void **state)
{
	static const char in[] =
	    "From: Shop (the shop) <shop@example.org>\n"
	    "Sender: shop@example.org\n"
	    "\n"
	    "body\n";
	static const char comment[] =
	    "From: root (Cron Daemon)\n"
	    "Reply-To: ops@corp.test\n"
	    "\n"
	    "body\n";
	struct message m;
	char *s;

	(void)state;
	assert_int_equal(read_with(SP_ALIGN, in, &m, &s), ST_OK);
	assert_non_null(strstr(s, "\r\nFrom: Shop (the shop) "
	    "<shop@example.org>\r\n"));
	assert_false(m.aligned);
	assert_null(strstr(s, "Reply-To"));
	assert_null(strstr(s, "Sender:"));
	free(s);
	message_free(&m);
	/* A bare name is qualified, then allowed: kept, comment and all. */
	assert_int_equal(read_with(SP_ALIGN, comment, &m, &s), ST_OK);
	assert_non_null(strstr(s, "\r\nFrom: root@example.org "
	    "(Cron Daemon)\r\n"));
	free(s);
	message_free(&m);
}

static void
t_align_comment_name_and_existing_reply_to(void **state)
{
	static const char in[] =
	    "From: root@other.test (Cron Daemon)\n"
	    "Reply-To: ops@corp.test\n"
	    "\n"
	    "body\n";
	struct message m;
	char *s;

	(void)state;
	assert_int_equal(read_with(SP_ALIGN, in, &m, &s), ST_OK);
	assert_non_null(strstr(s, "\r\nFrom: Cron Daemon "
	    "<web@example.org>\r\n"));
	/* The message's own Reply-To: stays the only one. */
	assert_non_null(strstr(s, "\r\nReply-To: ops@corp.test\r\n"));
	assert_null(strstr(s, "Reply-To: root@other.test"));
	free(s);
	message_free(&m);
}

static void
t_align_qualifies_localhost(void **state)
{
	static const char in[] =
	    "From: Admin <admin@localhost>\n"
	    "To: root@localhost, bob\n"
	    "\n"
	    "body\n";
	struct message m;
	char *s;

	(void)state;
	assert_int_equal(read_with(SP_ALIGN, in, &m, &s), ST_OK);
	assert_non_null(strstr(s, "\r\nFrom: Admin <admin@example.org>\r\n"));
	assert_non_null(strstr(s, "\r\nTo: root@example.org, "
	    "bob@example.org\r\n"));
	assert_false(m.aligned);
	free(s);
	message_free(&m);
	assert_int_equal(read_with(SP_KEEP, in, &m, &s), ST_OK);
	assert_non_null(strstr(s, "\r\nTo: root@localhost, "
	    "bob@example.org\r\n"));
	free(s);
	message_free(&m);
}

static void
t_refuse_notes_the_address(void **state)
{
	static const char sender_only[] =
	    "From: shop@example.org\n"
	    "Sender: spoof@evil.test\n"
	    "\n"
	    "body\n";
	struct message m;
	char *s;

	(void)state;
	assert_int_equal(read_with(SP_REFUSE, SPOOFED, &m, &s), ST_OK);
	assert_string_equal(m.refused, "ceo@bank.test");
	assert_string_equal(m.refused_field, "From");
	free(s);
	message_free(&m);
	assert_int_equal(read_with(SP_REFUSE, sender_only, &m, &s), ST_OK);
	assert_string_equal(m.refused, "spoof@evil.test");
	assert_string_equal(m.refused_field, "Sender");
	free(s);
	message_free(&m);
}

static void
t_keep_is_unchanged(void **state)
{
	struct message m;
	char *s;

	(void)state;
	assert_int_equal(read_with(SP_KEEP, SPOOFED, &m, &s), ST_OK);
	assert_non_null(strstr(s, "\r\nFrom: \"Bank, Support\" "
	    "<ceo@bank.test>\r\n"));
	assert_non_null(strstr(s, "\r\nSender: someone@else.test\r\n"));
	assert_null(strstr(s, "Reply-To"));
	assert_string_equal(m.refused, "");
	assert_string_equal(m.from_addr, "ceo@bank.test");
	free(s);
	message_free(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_parse_own_line),
		cmocka_unit_test(t_last_line_wins_and_star),
		cmocka_unit_test(t_may_use),
		cmocka_unit_test(t_own),
		cmocka_unit_test(t_bad_files),
		cmocka_unit_test(t_config_keys),
		cmocka_unit_test(t_localhost_qualified),
		cmocka_unit_test(t_helo_name),
		cmocka_unit_test(t_align_spoofed_from),
		cmocka_unit_test(t_align_keeps_allowed_from_and_reply_to),
		cmocka_unit_test(t_align_comment_name_and_existing_reply_to),
		cmocka_unit_test(t_align_qualifies_localhost),
		cmocka_unit_test(t_refuse_notes_the_address),
		cmocka_unit_test(t_keep_is_unchanged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
