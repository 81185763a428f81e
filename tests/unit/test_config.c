/*
 * test_config.c: the ssmtp.conf parser (config.c): every parsing rule,
 * every key, the interactions resolved after the file, and the
 * differences from ssmtp that ssmtp.conf(5) promises.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

#define NAME	"test.conf"

/* Warnings collected from config_*(). */
struct warnings {
	int	 n;
	char	 last[ERR_MAX + 2 * PATH_MAX];
	char	 all[8192];
};

static void
collect(void *arg, const char *text)
{
	struct warnings *w = arg;

	w->n++;
	(void)strlcpy(w->last, text, sizeof(w->last));
	(void)strlcat(w->all, text, sizeof(w->all));
	(void)strlcat(w->all, "\n", sizeof(w->all));
}

static int
parse(struct config *cfg, const char *text, struct warnings *w,
    struct error *err)
{
	error_clear(err);
	if (w != NULL)
		memset(w, 0, sizeof(*w));
	return config_parse_buffer(cfg, NAME, text, strlen(text),
	    w != NULL ? collect : NULL, w, err);
}

/* Parse text that must be valid; fail the test otherwise. */
static void
parse_ok(struct config *cfg, const char *text)
{
	struct error err;
	int rc;

	rc = parse(cfg, text, NULL, &err);
	if (rc != ST_OK)
		fail_msg("unexpected error: %s", err.text);
}

static void
parse_bad(const char *text, const char *want)
{
	struct config cfg;
	struct error err;

	assert_int_equal(parse(&cfg, text, NULL, &err), ST_CONFIG);
	assert_int_equal(err.status, ST_CONFIG);
	if (strstr(err.text, want) == NULL)
		fail_msg("error '%s' lacks '%s'", err.text, want);
	config_free(&cfg);
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

static void
test_defaults(void **state)
{
	struct config cfg;

	(void)state;
	config_defaults(&cfg);
	assert_string_equal(cfg.hub_host, "mailhub");
	assert_string_equal(cfg.hub_port, "25");
	assert_int_equal(cfg.tls_verify, 1);
	assert_int_equal(cfg.timeout, 30);
	assert_int_equal(cfg.tls, TLS_NONE);
	assert_int_equal(cfg.auth_method, AUTH_BEST);
	assert_int_equal(cfg.auth_allow_plaintext, 0);
	assert_int_equal(cfg.from_line_override, 0);
	assert_string_equal(cfg.revaliases, POSTINO_REVALIASES);
	assert_string_equal(cfg.aliases_file, "/etc/aliases");
	assert_string_equal(cfg.queue_dir, POSTINO_QUEUEDIR);
	assert_string_equal(cfg.tls_cert, "/etc/ssl/certs/ssmtp.pem");
	assert_string_equal(cfg.mailname_path, POSTINO_MAILNAME);
	assert_string_equal(cfg.log_file, "");
	assert_string_equal(cfg.root, "");
	config_free(&cfg);

	/* An empty file gives the defaults, TLSKey = TLSCert resolved. */
	parse_ok(&cfg, "");
	assert_string_equal(cfg.hub_host, "mailhub");
	assert_string_equal(cfg.tls_key, "/etc/ssl/certs/ssmtp.pem");
	assert_string_equal(cfg.path, NAME);
	config_free(&cfg);
}

static void
test_spaces_and_case(void **state)
{
	struct config cfg;

	(void)state;
	/* ssmtp set an empty hub for "mailhub = host". */
	parse_ok(&cfg, "mailhub = smtp.example.com\n"
	    "\tROOT\t=\tops@example.com  \n"
	    "  hostname=vm.example.com\n");
	assert_string_equal(cfg.hub_host, "smtp.example.com");
	assert_string_equal(cfg.root, "ops@example.com");
	assert_string_equal(cfg.hostname, "vm.example.com");
	config_free(&cfg);
}

static void
test_hash_and_equals_in_values(void **state)
{
	struct config cfg;

	(void)state;
	parse_ok(&cfg, "AuthUser=me@example.com\n"
	    "AuthPass=pa=ss word#1\n");
	assert_string_equal(cfg.auth_user, "me@example.com");
	assert_string_equal(cfg.auth_pass, "pa=ss word#1");
	config_free(&cfg);

	parse_ok(&cfg, "AuthPass=#secret\n");
	assert_string_equal(cfg.auth_pass, "#secret");
	config_free(&cfg);
}

static void
test_comments(void **state)
{
	struct config cfg;

	(void)state;
	parse_ok(&cfg, "# MailHub=commented.example\n"
	    "   # indented comment: MailHub=x\n"
	    "\n   \n\t\n"
	    "MailHub=real.example\n"
	    "#AuthPass=nope\n");
	assert_string_equal(cfg.hub_host, "real.example");
	assert_string_equal(cfg.auth_pass, "");
	config_free(&cfg);
}

/* Issue 15 part 2: blanks then '#' end the value, as ssmtp read it. */
static void
test_comment_after_value(void **state)
{
	struct config cfg;
	struct warnings w;
	struct error err;

	(void)state;
	assert_int_equal(parse(&cfg, "hostname=mycomputer\t# Very important"
	    "\nAuthUser=me@example.org # my account\n"
	    "AuthPass=s3cr#t   #   the password\n"
	    "mailhub = smtp.example.org:587 # submission\n"
	    "UseSTARTTLS=YES\t#\n", &w, &err), ST_OK);
	assert_int_equal(w.n, 0);
	assert_string_equal(cfg.hostname, "mycomputer");
	assert_string_equal(cfg.auth_user, "me@example.org");
	assert_string_equal(cfg.auth_pass, "s3cr#t");
	assert_string_equal(cfg.hub_host, "smtp.example.org");
	assert_string_equal(cfg.hub_port, "587");
	assert_int_equal(cfg.tls, TLS_STARTTLS);
	config_free(&cfg);

	/* A '#' with no blank before it is data. */
	parse_ok(&cfg, "AuthPass=a#b#c\nRoot=ops#1@example.org\n");
	assert_string_equal(cfg.auth_pass, "a#b#c");
	assert_string_equal(cfg.root, "ops#1@example.org");
	config_free(&cfg);

	/* A comment where the value would be: the value is empty. */
	parse_ok(&cfg, "AuthPass= # none yet\n");
	assert_string_equal(cfg.auth_pass, "");
	config_free(&cfg);

	/* Still refused: the comment does not hide a bad boolean. */
	parse_bad("UseTLS=maybe # try\n", "test.conf:1: UseTLS: expected YES");
}

static void
test_last_line_without_newline(void **state)
{
	struct config cfg;

	(void)state;
	/* ssmtp dropped it and fell back to mailhub:25. */
	parse_ok(&cfg, "Root=ops\nmailhub=127.0.0.1:2525");
	assert_string_equal(cfg.hub_host, "127.0.0.1");
	assert_string_equal(cfg.hub_port, "2525");
	config_free(&cfg);
}

static void
test_crlf(void **state)
{
	struct config cfg;

	(void)state;
	parse_ok(&cfg, "MailHub=hub.example:587\r\nUseSTARTTLS=YES\r\n"
	    "AuthPass=secret\r\n# c\r\n\r\n");
	assert_string_equal(cfg.hub_host, "hub.example");
	assert_string_equal(cfg.hub_port, "587");
	assert_int_equal(cfg.tls, TLS_STARTTLS);
	assert_string_equal(cfg.auth_pass, "secret");
	config_free(&cfg);

	/* A CR inside a value is not a line end: refuse it. */
	parse_bad("HostName=a\rb\n", "test.conf:1: HostName: control");
}

static void
test_unknown_key(void **state)
{
	struct config cfg;
	struct warnings w;
	struct error err;

	(void)state;
	assert_int_equal(parse(&cfg, "MailHub=h\nFrobnicate=YES\n"
	    "AuthPas=topsecret\n", &w, &err), ST_OK);
	assert_int_equal(w.n, 2);
	assert_non_null(strstr(w.all,
	    "test.conf:2: unknown key 'Frobnicate' ignored"));
	assert_non_null(strstr(w.all,
	    "test.conf:3: unknown key 'AuthPas' ignored"));
	/* A mistyped password key must not leak the password. */
	assert_null(strstr(w.all, "topsecret"));
	assert_string_equal(cfg.hub_host, "h");
	config_free(&cfg);

	/* No callback: still not fatal. */
	assert_int_equal(parse(&cfg, "Frobnicate=1\n", NULL, &err), ST_OK);
	config_free(&cfg);
}

static void
test_no_equals(void **state)
{
	struct config cfg;
	struct warnings w;
	struct error err;

	(void)state;
	/* A known key without '=' is a mistyped setting: refused. */
	parse_bad("MailHub=h\nUseTLS YES\n",
	    "test.conf:2: UseTLS: expected '='");
	parse_bad("mailhub:smtp.example.org\n",
	    "test.conf:1: MailHub: expected '='");
	parse_bad("AuthPass[secret]\n", "test.conf:1: AuthPass: expected '='");
	parse_bad("authuser\n", "AuthUser: expected '='");
	parse_bad("  RewriteDomain example.org # x\n",
	    "RewriteDomain: expected '='");
	parse_bad("=value\n", "test.conf:1: expected key=value");

	/* Other lines (prose, ssmtp skipped them): warned about, skipped. */
	assert_int_equal(parse(&cfg, "# ssmtp for cron\n"
	    "install ssmtp and mailx\nmailhub=smtp.example.org\n"
	    "hunter2\nMailHubs are great\n", &w, &err), ST_OK);
	assert_int_equal(w.n, 3);
	assert_non_null(strstr(w.all,
	    "test.conf:2: line without '=' skipped"));
	assert_non_null(strstr(w.all, "test.conf:4: line without"));
	assert_non_null(strstr(w.all, "test.conf:5: line without"));
	/* Never quoted: it may be a password on a line of its own. */
	assert_null(strstr(w.all, "hunter2"));
	assert_string_equal(cfg.hub_host, "smtp.example.org");
	config_free(&cfg);
}

static void
test_booleans(void **state)
{
	static const char *const yes[] = { "yes", "YES", "True", "on", "1" };
	static const char *const no[] = { "no", "No", "FALSE", "off", "0" };
	struct config cfg;
	char text[64];
	size_t i;

	(void)state;
	for (i = 0; i < 5; i++) {
		(void)snprintf(text, sizeof(text), "FromLineOverride=%s\n",
		    yes[i]);
		parse_ok(&cfg, text);
		assert_int_equal(cfg.from_line_override, 1);
		config_free(&cfg);
		(void)snprintf(text, sizeof(text), "TLSVerify=%s\n", no[i]);
		parse_ok(&cfg, text);
		assert_int_equal(cfg.tls_verify, 0);
		config_free(&cfg);
	}
	parse_ok(&cfg, "UseOldAUTH=yes\nDebug=YES\nAuthAllowPlaintext=on\n"
	    "UseTLSCert=yes\n");
	assert_int_equal(cfg.use_old_auth, 1);
	assert_int_equal(cfg.debug, 1);
	assert_int_equal(cfg.auth_allow_plaintext, 1);
	assert_int_equal(cfg.use_tls_cert, 1);
	config_free(&cfg);

	/* ssmtp read these as NO: a typo silently turned TLS off. */
	parse_bad("MailHub=h\nUseTLS=x\n",
	    "test.conf:2: UseTLS: expected YES or NO, got 'x'");
	parse_bad("usestarttls=YSE\n",
	    "test.conf:1: UseSTARTTLS: expected YES or NO, got 'YSE'");
	parse_bad("TLSVerify=\n", "TLSVerify: expected YES or NO, got ''");
}

static void
test_last_wins(void **state)
{
	struct config cfg;

	(void)state;
	parse_ok(&cfg, "MailHub=first\nRoot=a\nMailHub=second\nRoot=b\n");
	assert_string_equal(cfg.hub_host, "second");
	assert_string_equal(cfg.root, "b");
	config_free(&cfg);
}

static void
test_mailhub_forms(void **state)
{
	struct config cfg;

	(void)state;
	parse_ok(&cfg, "MailHub=smtp.example.com\n");
	assert_string_equal(cfg.hub_host, "smtp.example.com");
	assert_string_equal(cfg.hub_port, "25");
	config_free(&cfg);

	parse_ok(&cfg, "MailHub=smtp.example.com:587\n");
	assert_string_equal(cfg.hub_host, "smtp.example.com");
	assert_string_equal(cfg.hub_port, "587");
	config_free(&cfg);

	parse_ok(&cfg, "MailHub=[::1]:2525\n");
	assert_string_equal(cfg.hub_host, "::1");
	assert_string_equal(cfg.hub_port, "2525");
	config_free(&cfg);

	parse_ok(&cfg, "MailHub=[2001:db8::1]\n");
	assert_string_equal(cfg.hub_host, "2001:db8::1");
	assert_string_equal(cfg.hub_port, "25");
	config_free(&cfg);

	/* Several colons, no brackets: all host, no port. */
	parse_ok(&cfg, "MailHub=2001:db8::25\n");
	assert_string_equal(cfg.hub_host, "2001:db8::25");
	assert_string_equal(cfg.hub_port, "25");
	config_free(&cfg);

	parse_ok(&cfg, "MailHub=hub:submission\n");
	assert_string_equal(cfg.hub_port, "submission");
	config_free(&cfg);

	parse_bad("MailHub=\n", "test.conf:1: MailHub: empty host");
	parse_bad("MailHub=:25\n", "MailHub: empty host");
	parse_bad("MailHub=h:\n", "MailHub: bad port ''");
	parse_bad("MailHub=h:0\n", "MailHub: bad port '0'");
	parse_bad("MailHub=h:65536\n", "bad port '65536'");
	parse_bad("MailHub=h:25x\n", "bad port '25x'");
	parse_bad("MailHub=[::1\n", "MailHub: missing ']'");
	parse_bad("MailHub=[::1]x\n", "MailHub: junk after ']'");
	parse_bad("MailHub=[]:25\n", "MailHub: empty host");
	parse_bad("MailHub=a/b\n", "MailHub: bad character");
	parse_bad("MailHub= , \n", "MailHub: empty host");
}

/* Issue 10: a list of hubs; RemotePort is the default port of each. */
static void
test_mailhub_list(void **state)
{
	struct config cfg;
	char host[HOST_MAX], port[PORT_MAX];

	(void)state;
	parse_ok(&cfg, "MailHub = hub1.example.org:587, hub2.example.org "
	    "[::1]:2525,[2001:db8::1]\tlast\n");
	assert_int_equal(config_hub_count(&cfg), 5);
	config_hub(&cfg, 0, host, sizeof(host), port, sizeof(port));
	assert_string_equal(host, "hub1.example.org");
	assert_string_equal(port, "587");
	config_hub(&cfg, 1, host, sizeof(host), port, sizeof(port));
	assert_string_equal(host, "hub2.example.org");
	assert_string_equal(port, "25");
	config_hub(&cfg, 2, host, sizeof(host), port, sizeof(port));
	assert_string_equal(host, "::1");
	assert_string_equal(port, "2525");
	config_hub(&cfg, 3, host, sizeof(host), port, sizeof(port));
	assert_string_equal(host, "2001:db8::1");
	assert_string_equal(port, "25");
	config_hub(&cfg, 4, host, sizeof(host), port, sizeof(port));
	assert_string_equal(host, "last");
	/* the first hub is still hub_host:hub_port for everyone else */
	assert_string_equal(cfg.hub_host, "hub1.example.org");
	assert_string_equal(cfg.hub_port, "587");
	config_free(&cfg);

	/* RemotePort, before or after, is the port of hubs without one. */
	parse_ok(&cfg, "MailHub=a, b:26, c\nRemotePort=2525\n");
	config_hub(&cfg, 0, host, sizeof(host), port, sizeof(port));
	assert_string_equal(port, "2525");
	config_hub(&cfg, 1, host, sizeof(host), port, sizeof(port));
	assert_string_equal(port, "26");
	config_hub(&cfg, 2, host, sizeof(host), port, sizeof(port));
	assert_string_equal(host, "c");
	assert_string_equal(port, "2525");
	config_free(&cfg);
	parse_ok(&cfg, "RemotePort=2525\nMailHub=a:25 c\n");
	config_hub(&cfg, 0, host, sizeof(host), port, sizeof(port));
	assert_string_equal(port, "25");
	config_hub(&cfg, 1, host, sizeof(host), port, sizeof(port));
	assert_string_equal(port, "2525");
	config_free(&cfg);

	/* A later MailHub replaces the whole list. */
	parse_ok(&cfg, "MailHub=a, b\nMailHub=c\n");
	assert_int_equal(config_hub_count(&cfg), 1);
	assert_string_equal(cfg.hub_host, "c");
	config_free(&cfg);

	/* The default: one hub, "mailhub". */
	parse_ok(&cfg, "Root=r\n");
	assert_int_equal(config_hub_count(&cfg), 1);
	config_free(&cfg);

	parse_bad("MailHub=a, b:0\n", "MailHub: bad port '0'");
	parse_bad("MailHub=a b c d e f g h i\n", "MailHub: more than 8 hubs");
}

static void
test_source_address_family(void **state)
{
	struct config cfg;

	(void)state;
	parse_ok(&cfg, "Root=r\n");
	assert_string_equal(cfg.source_address, "");
	assert_int_equal(cfg.address_family, AF_UNSPEC);
	config_free(&cfg);
	parse_ok(&cfg, "SourceAddress = 192.0.2.7\nAddressFamily = IPv4\n");
	assert_string_equal(cfg.source_address, "192.0.2.7");
	assert_int_equal(cfg.address_family, AF_INET);
	config_free(&cfg);
	parse_ok(&cfg, "SourceAddress=2001:db8::7\naddressfamily=ipv6\n"
	    "AddressFamily=any\nAddressFamily=ipv6\n");
	assert_string_equal(cfg.source_address, "2001:db8::7");
	assert_int_equal(cfg.address_family, AF_INET6);
	config_free(&cfg);
	parse_bad("SourceAddress=host.example\n",
	    "test.conf:1: SourceAddress: 'host.example' is not an IPv4 or "
	    "IPv6 address");
	parse_bad("AddressFamily=inet6\n",
	    "test.conf:1: AddressFamily: 'inet6' (expected any, ipv4 or "
	    "ipv6)");
}

static void
test_split_hub(void **state)
{
	char host[HOST_MAX], port[PORT_MAX], small[4];
	struct error err;

	(void)state;
	assert_int_equal(config_split_hub("h.example:465", host, sizeof(host),
	    port, sizeof(port), &err), ST_OK);
	assert_string_equal(host, "h.example");
	assert_string_equal(port, "465");
	assert_int_equal(config_split_hub("h.example", host, sizeof(host),
	    port, sizeof(port), &err), ST_OK);
	assert_string_equal(port, "");
	assert_int_equal(config_split_hub("[fe80::1%eth0]:25", host,
	    sizeof(host), port, sizeof(port), &err), ST_OK);
	assert_string_equal(host, "fe80::1%eth0");
	assert_int_equal(config_split_hub("longhost", small, sizeof(small),
	    port, sizeof(port), &err), ST_CONFIG);
	assert_non_null(strstr(err.text, "too long"));
}

/* One port rule for MailHub, RemotePort and revaliases (alias.c). */
static void
test_port_rule(void **state)
{
	static const char *const good[] = { "1", "25", "0587", "65535",
	    "smtp", "Submission", "SMTPS" };
	static const char *const bad[] = { "", "0", "65536", "25x", "+25",
	    " 25", "-1", "smtp-alt", "smtp2", "sm tp", "\xe9smtp", "[25]" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(config_port_ok(good[i]));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(config_port_ok(bad[i]));
}

static void
test_remote_port_order(void **state)
{
	struct config cfg;

	(void)state;
	parse_ok(&cfg, "MailHub=h:587\nRemotePort=2525\n");
	assert_string_equal(cfg.hub_port, "2525");
	config_free(&cfg);
	parse_ok(&cfg, "RemotePort=2525\nMailHub=h:587\n");
	assert_string_equal(cfg.hub_port, "587");
	config_free(&cfg);
	/* MailHub without a port leaves an earlier RemotePort alone. */
	parse_ok(&cfg, "RemotePort=2525\nMailHub=h\n");
	assert_string_equal(cfg.hub_port, "2525");
	config_free(&cfg);
	parse_bad("RemotePort=abc1\n", "test.conf:1: RemotePort: bad port");
	parse_bad("RemotePort=70000\n", "RemotePort: bad port");
}

static void
test_tls_modes(void **state)
{
	struct config cfg;
	struct warnings w;
	struct error err;

	(void)state;
	parse_ok(&cfg, "UseTLS=YES\n");
	assert_int_equal(cfg.tls, TLS_IMPLICIT);
	/* ssmtp meaning: no automatic switch to 465. */
	assert_string_equal(cfg.hub_port, "25");
	config_free(&cfg);

	parse_ok(&cfg, "UseSTARTTLS=YES\n");
	assert_int_equal(cfg.tls, TLS_STARTTLS);
	config_free(&cfg);

	parse_ok(&cfg, "UseTLS=YES\nUseSTARTTLS=YES\n");
	assert_int_equal(cfg.tls, TLS_STARTTLS);
	config_free(&cfg);

	parse_ok(&cfg, "UseSTARTTLS=YES\nUseTLS=YES\n");
	assert_int_equal(cfg.tls, TLS_STARTTLS);
	config_free(&cfg);

	parse_ok(&cfg, "UseTLS=NO\nUseSTARTTLS=NO\n");
	assert_int_equal(cfg.tls, TLS_NONE);
	config_free(&cfg);

	/* ssmtp: UseTLS=NO cleared STARTTLS. We keep the safer reading. */
	assert_int_equal(parse(&cfg, "UseSTARTTLS=YES\nUseTLS=NO\n", &w,
	    &err), ST_OK);
	assert_int_equal(cfg.tls, TLS_STARTTLS);
	assert_int_equal(w.n, 1);
	assert_string_equal(w.last, "test.conf:2: UseTLS=NO after "
	    "UseSTARTTLS=YES ignored (ssmtp turned TLS off here): STARTTLS "
	    "is used");
	config_free(&cfg);

	/* The other order (a widely used Ansible role): STARTTLS to ssmtp
	 * too, so nothing to warn about. */
	assert_int_equal(parse(&cfg, "UseTLS=NO\nmailhub=h:587\n"
	    "UseSTARTTLS=YES\n", &w, &err), ST_OK);
	assert_int_equal(cfg.tls, TLS_STARTTLS);
	assert_int_equal(w.n, 0);
	config_free(&cfg);

	/* Cleared, then set again: ssmtp used STARTTLS too. */
	assert_int_equal(parse(&cfg, "UseSTARTTLS=YES\nUseTLS=NO\n"
	    "UseSTARTTLS=YES\n", &w, &err), ST_OK);
	assert_int_equal(cfg.tls, TLS_STARTTLS);
	assert_int_equal(w.n, 0);
	config_free(&cfg);

	/* Cleared, then UseTLS=YES: ssmtp used implicit TLS; warned. */
	assert_int_equal(parse(&cfg, "UseSTARTTLS=YES\nUseTLS=NO\n"
	    "UseTLS=YES\n", &w, &err), ST_OK);
	assert_int_equal(cfg.tls, TLS_STARTTLS);
	assert_int_equal(w.n, 1);
	assert_non_null(strstr(w.last, "test.conf:2: UseTLS=NO after"));
	config_free(&cfg);

	/* The last setting of each key counts. */
	parse_ok(&cfg, "UseSTARTTLS=YES\nUseSTARTTLS=NO\nUseTLS=YES\n");
	assert_int_equal(cfg.tls, TLS_IMPLICIT);
	config_free(&cfg);
}

static void
test_tls_files(void **state)
{
	struct config cfg;

	(void)state;
	parse_ok(&cfg, "UseTLSCert=YES\nTLSCert=/etc/ssl/me.pem\n");
	assert_string_equal(cfg.tls_cert, "/etc/ssl/me.pem");
	assert_string_equal(cfg.tls_key, "/etc/ssl/me.pem");
	config_free(&cfg);

	parse_ok(&cfg, "TLSCert=/c.pem\nTLSKey=/k.pem\n"
	    "TLS_CA_File=/ca.pem\nTLS_CA_Dir=/etc/ssl/certs\n");
	assert_string_equal(cfg.tls_cert, "/c.pem");
	assert_string_equal(cfg.tls_key, "/k.pem");
	assert_string_equal(cfg.tls_ca_file, "/ca.pem");
	assert_string_equal(cfg.tls_ca_dir, "/etc/ssl/certs");
	config_free(&cfg);

	parse_bad("TLSCert=certs/me.pem\n",
	    "test.conf:1: TLSCert: path must be absolute");
	parse_bad("TLS_CA_File=ca.pem\n", "TLS_CA_File: path must be absolute");
	parse_bad("UseTLSCert=YES\nTLSCert=\n",
	    "test.conf:1: UseTLSCert=YES needs TLSCert");
}

static void
test_fingerprint(void **state)
{
	static const char hex[] = "0123456789abcdef0123456789ABCDEF"
	    "00112233445566778899aabbccddeeff";
	static const char colons[] = "01:23:45:67:89:ab:cd:ef:01:23:45:67:"
	    "89:AB:CD:EF:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff";
	static const unsigned char want[32] = {
		0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
		0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
		0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
		0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
	static const char *const pre[] = { "", "sha256:", "SHA256:", "  " };
	char text[256];
	struct config cfg;
	size_t i;

	(void)state;
	for (i = 0; i < 8; i++) {
		(void)strlcpy(text, "TLSFingerprint=", sizeof(text));
		(void)strlcat(text, pre[i % 4], sizeof(text));
		(void)strlcat(text, i < 4 ? hex : colons, sizeof(text));
		(void)strlcat(text, i % 4 == 3 ? "  \n" : "\n", sizeof(text));
		parse_ok(&cfg, text);
		assert_int_equal(cfg.tls_pin_count, 1);
		assert_memory_equal(cfg.tls_pins[0], want, sizeof(want));
		config_free(&cfg);
	}
	parse_ok(&cfg, "TLSFingerprint=\n");
	assert_int_equal(cfg.tls_pin_count, 0);
	config_free(&cfg);

	/* Too short, too long, bad digit, stray colons, other hash. */
	parse_bad("TLSFingerprint=0123\n", "test.conf:1: TLSFingerprint:");
	(void)snprintf(text, sizeof(text), "TLSFingerprint=%s00\n", hex);
	parse_bad(text, "TLSFingerprint: expected a SHA-256");
	(void)snprintf(text, sizeof(text), "TLSFingerprint=%s\n", hex);
	text[15] = 'g';
	parse_bad(text, "TLSFingerprint:");
	(void)snprintf(text, sizeof(text), "TLSFingerprint=:%s\n", hex);
	parse_bad(text, "TLSFingerprint:");
	(void)snprintf(text, sizeof(text), "TLSFingerprint=%s:\n", colons);
	parse_bad(text, "TLSFingerprint:");
	(void)snprintf(text, sizeof(text), "TLSFingerprint=md5:%s\n", hex);
	parse_bad(text, "TLSFingerprint:");
}

/* Pin n (0-based) of test_pin_list: 32 bytes of n, in hex, 64 digits. */
static void
pin_hex(char *buf, size_t len, unsigned n, int colons)
{
	size_t i, at = 0;

	for (i = 0; i < 32 && at + 4 < len; i++)
		at += (size_t)snprintf(buf + at, len - at, "%s%02x",
		    colons && i > 0 ? ":" : "", n);
}

static void
test_pin_list(void **state)
{
	char text[2048], a[128], b[128];
	unsigned char want[TLS_PIN_LEN];
	struct config cfg;
	size_t i;

	(void)state;
	/* Two pins for a rotation, formats mixed, blanks around commas. */
	pin_hex(a, sizeof(a), 0x11, 0);
	pin_hex(b, sizeof(b), 0x22, 1);
	(void)snprintf(text, sizeof(text), "TLSFingerprint = sha256:%s, "
	    "SHA256:%s\n", a, b);
	parse_ok(&cfg, text);
	assert_int_equal(cfg.tls_pin_count, 2);
	memset(want, 0x11, sizeof(want));
	assert_memory_equal(cfg.tls_pins[0], want, sizeof(want));
	memset(want, 0x22, sizeof(want));
	assert_memory_equal(cfg.tls_pins[1], want, sizeof(want));
	config_free(&cfg);
	(void)snprintf(text, sizeof(text), "TLSFingerprint=%s,%s\n", a, b);
	parse_ok(&cfg, text);
	assert_int_equal(cfg.tls_pin_count, 2);
	config_free(&cfg);
	(void)snprintf(text, sizeof(text), "TLSFingerprint=%s\t ,\t%s\n", a,
	    b);
	parse_ok(&cfg, text);
	assert_int_equal(cfg.tls_pin_count, 2);
	config_free(&cfg);

	/* TLS_PINS_MAX is allowed; one more is refused with file:line. */
	(void)strlcpy(text, "Root=postmaster\nTLSFingerprint=", sizeof(text));
	for (i = 0; i < TLS_PINS_MAX; i++) {
		pin_hex(a, sizeof(a), (unsigned)i, 0);
		(void)strlcat(text, i > 0 ? ", " : "", sizeof(text));
		(void)strlcat(text, a, sizeof(text));
	}
	(void)strlcat(text, "\n", sizeof(text));
	parse_ok(&cfg, text);
	assert_int_equal(cfg.tls_pin_count, TLS_PINS_MAX);
	memset(want, TLS_PINS_MAX - 1, sizeof(want));
	assert_memory_equal(cfg.tls_pins[TLS_PINS_MAX - 1], want,
	    sizeof(want));
	config_free(&cfg);
	text[strlen(text) - 1] = '\0';
	(void)strlcat(text, ",", sizeof(text));
	(void)strlcat(text, a, sizeof(text));
	(void)strlcat(text, "\n", sizeof(text));
	parse_bad(text, "test.conf:2: TLSFingerprint: more than 8 pins");

	/* The bad one is named, by its place in the list. */
	pin_hex(a, sizeof(a), 0x11, 0);
	(void)snprintf(text, sizeof(text), "TLSFingerprint=%s, %.63sg\n", a,
	    a);
	parse_bad(text, "test.conf:1: TLSFingerprint: expected a SHA-256 "
	    "fingerprint");
	parse_bad(text, "pin 2 is not one");
	(void)snprintf(text, sizeof(text), "TLSFingerprint=%.62s, %s\n", a,
	    a);
	parse_bad(text, "pin 1 is not one");
	/* Empty places, a separator other than ',', a blank inside. */
	(void)snprintf(text, sizeof(text), "TLSFingerprint=%s,\n", a);
	parse_bad(text, "pin 2 is not one");
	(void)snprintf(text, sizeof(text), "TLSFingerprint=%s,,%s\n", a, a);
	parse_bad(text, "pin 2 is not one");
	(void)snprintf(text, sizeof(text), "TLSFingerprint=,%s\n", a);
	parse_bad(text, "pin 1 is not one");
	(void)snprintf(text, sizeof(text), "TLSFingerprint=%s;%s\n", a, a);
	parse_bad(text, "pin 1 is not one");
	(void)snprintf(text, sizeof(text), "TLSFingerprint=%s %s\n", a, a);
	parse_bad(text, "pin 1 is not one");
	(void)snprintf(text, sizeof(text), "TLSFingerprint=sha256: %s\n", a);
	parse_bad(text, "pin 1 is not one");

	/* A later TLSFingerprint line replaces the list. */
	pin_hex(b, sizeof(b), 0x22, 0);
	(void)snprintf(text, sizeof(text), "TLSFingerprint=%s,%s\n"
	    "TLSFingerprint=%s\n", a, a, b);
	parse_ok(&cfg, text);
	assert_int_equal(cfg.tls_pin_count, 1);
	memset(want, 0x22, sizeof(want));
	assert_memory_equal(cfg.tls_pins[0], want, sizeof(want));
	config_free(&cfg);
}

static void
test_auth_method(void **state)
{
	static const struct {
		const char		*text;
		enum auth_method	 want;
	} cases[] = {
		{ "AuthMethod=cram-md5\n", AUTH_CRAM_MD5 },
		{ "AuthMethod=CRAM-MD5\n", AUTH_CRAM_MD5 },
		{ "AuthMethod=LOGIN\n", AUTH_LOGIN },
		{ "AuthMethod=plain\n", AUTH_PLAIN },
		{ "AuthMethod=\n", AUTH_BEST },
		{ "AuthMethod=any\n", AUTH_BEST },
		{ "AuthMethod=Best\n", AUTH_BEST },
		{ "Root=x\n", AUTH_BEST },
	};
	struct config cfg;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		parse_ok(&cfg, cases[i].text);
		assert_int_equal(cfg.auth_method, cases[i].want);
		config_free(&cfg);
	}
	/* ssmtp silently used LOGIN for anything it did not know. */
	parse_bad("AuthMethod=digest-md5\n",
	    "test.conf:1: AuthMethod: expected PLAIN, LOGIN, CRAM-MD5");
}

static void
test_durations(void **state)
{
	static const struct {
		const char	*text;
		long long	 want;
	} good[] = {
		{ "30", 30 }, { "30s", 30 }, { "5m", 300 }, { "2h", 7200 },
		{ "5d", 432000 }, { "0", 0 }, { "7D", 604800 },
	};
	static const char *const bad[] = {
		"", "s", "-5", "+5", "5x", "5ms", "5 m", "1.5h", " 5",
		"99999999999999999999", "9223372036854775807d",
	};
	struct error err;
	long long sec;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		sec = -1;
		assert_int_equal(config_parse_duration(good[i].text, &sec,
		    &err), ST_OK);
		assert_int_equal(sec, good[i].want);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error_clear(&err);
		if (config_parse_duration(bad[i], &sec, &err) != ST_CONFIG)
			fail_msg("'%s' accepted", bad[i]);
		assert_int_equal(err.status, ST_CONFIG);
	}
	assert_int_equal(config_parse_duration("9223372036854775807", &sec,
	    &err), ST_OK);
	assert_true(sec == 9223372036854775807LL);
}

static void
test_timeout_key(void **state)
{
	struct config cfg;

	(void)state;
	parse_ok(&cfg, "Timeout=2m\n");
	assert_int_equal(cfg.timeout, 120);
	config_free(&cfg);
	parse_ok(&cfg, "Timeout=1h\n");
	assert_int_equal(cfg.timeout, 3600);
	config_free(&cfg);
	parse_ok(&cfg, "Timeout=1\n");
	assert_int_equal(cfg.timeout, 1);
	config_free(&cfg);
	parse_bad("Timeout=0\n", "test.conf:1: Timeout: 0 seconds is out of");
	parse_bad("Timeout=3601\n", "Timeout: 3601 seconds is out of range");
	parse_bad("Timeout=2d\n", "Timeout: 172800 seconds");
	parse_bad("Timeout=soon\n", "test.conf:1: Timeout: bad duration");
}

/* MaxMessageSize: bytes with k/M/G, 0 for none, 50 MiB by default. */
static void
test_max_message_size(void **state)
{
	struct config cfg;

	(void)state;
	config_defaults(&cfg);
	assert_int_equal(cfg.max_message_size, 50LL * 1024 * 1024);
	config_free(&cfg);
	parse_ok(&cfg, "MaxMessageSize = 1000\n");
	assert_int_equal(cfg.max_message_size, 1000);
	config_free(&cfg);
	parse_ok(&cfg, "maxmessagesize=10k\n");
	assert_int_equal(cfg.max_message_size, 10240);
	config_free(&cfg);
	parse_ok(&cfg, "MaxMessageSize=2M\n");
	assert_int_equal(cfg.max_message_size, 2LL * 1024 * 1024);
	config_free(&cfg);
	parse_ok(&cfg, "MaxMessageSize=1G\n");
	assert_int_equal(cfg.max_message_size, 1024LL * 1024 * 1024);
	config_free(&cfg);
	parse_ok(&cfg, "MaxMessageSize=0\n");
	assert_int_equal(cfg.max_message_size, 0);
	config_free(&cfg);
	parse_bad("MaxMessageSize=big\n", "test.conf:1: MaxMessageSize: bad "
	    "size");
	parse_bad("MaxMessageSize=10MB\n", "MaxMessageSize: bad size");
	parse_bad("MaxMessageSize=-1\n", "MaxMessageSize: bad size");
	parse_bad("MaxMessageSize=99999999999999999999\n",
	    "MaxMessageSize: size");
	parse_bad("MaxMessageSize=9999999999999G\n", "too large");
}

static void
test_queue_durations(void **state)
{
	struct config cfg;

	(void)state;
	config_defaults(&cfg);
	assert_int_equal(cfg.retry_interval, 60);
	assert_int_equal(cfg.max_retry_interval, 3600);
	assert_int_equal(cfg.queue_lifetime, 5 * 86400);
	assert_int_equal(cfg.hub_backoff, 60);
	config_free(&cfg);

	parse_ok(&cfg, "RetryInterval=5m\nMaxRetryInterval=2h\n"
	    "QueueLifetime=7d\nHubBackoff=0\n");
	assert_int_equal(cfg.retry_interval, 300);
	assert_int_equal(cfg.max_retry_interval, 7200);
	assert_int_equal(cfg.queue_lifetime, 7 * 86400);
	assert_int_equal(cfg.hub_backoff, 0);
	config_free(&cfg);

	parse_bad("QueueLifetime=366d\n",
	    "test.conf:1: QueueLifetime: 31622400 seconds is more than");
	parse_bad("retryinterval=often\n",
	    "test.conf:1: RetryInterval: bad duration");
}

static void
test_add_header(void **state)
{
	struct config cfg;
	char text[ADDHEADER_MAX * 32 + 64];
	size_t i;

	(void)state;
	parse_ok(&cfg, "AddHeader=X-Origin: web01\n"
	    "AddHeader = Auto-Submitted:auto-generated\n");
	assert_int_equal(cfg.add_header_count, 2);
	assert_string_equal(cfg.add_header[0], "X-Origin: web01");
	assert_string_equal(cfg.add_header[1], "Auto-Submitted:auto-generated");
	config_free(&cfg);
	assert_int_equal(cfg.add_header_count, 0);
	assert_null(cfg.add_header[0]);

	text[0] = '\0';
	for (i = 0; i < ADDHEADER_MAX; i++)
		(void)strlcat(text, "AddHeader=X-A: b\n", sizeof(text));
	parse_ok(&cfg, text);
	assert_int_equal(cfg.add_header_count, ADDHEADER_MAX);
	config_free(&cfg);
	(void)strlcat(text, "AddHeader=X-Too: many\n", sizeof(text));
	parse_bad(text, "AddHeader: more than 16");

	parse_bad("AddHeader=no colon here\n",
	    "test.conf:1: AddHeader: expected 'Name: value'");
	parse_bad("AddHeader=: value\n", "AddHeader: expected 'Name: value'");
	parse_bad("AddHeader=X Y: value\n", "AddHeader: expected");
	parse_bad("AddHeader=X-Y: a\rBcc: victim@example.com\n",
	    "AddHeader: control character");
}

static void
test_rewrite_domain(void **state)
{
	struct config cfg;
	struct warnings w;
	struct error err;

	(void)state;
	parse_ok(&cfg, "RewriteDomain=example.com\n");
	assert_string_equal(cfg.rewrite_domain, "example.com");
	config_free(&cfg);

	assert_int_equal(parse(&cfg, "RewriteDomain=user@mail@example.org\n",
	    &w, &err), ST_OK);
	assert_string_equal(cfg.rewrite_domain, "example.org");
	assert_int_equal(w.n, 1);
	assert_non_null(strstr(w.last, "test.conf:1: RewriteDomain: '@'"));
	config_free(&cfg);

	parse_bad("RewriteDomain=exa mple.com\n",
	    "test.conf:1: RewriteDomain: bad character");
}

/*
 * Issue 15 part 1: HostName names this host in EHLO and Received: (ssmtp
 * sent whatever it held) and qualifies bare names. A value that cannot
 * be a host name gives the machine's name: a warning, never a refusal;
 * not the domain of an address, or root would go to root@gmail.com.
 */
static void
test_hostname_wild(void **state)
{
	struct config cfg;
	struct warnings w;
	struct error err;

	(void)state;
	assert_int_equal(parse(&cfg, "hostname=youralerts@gmail.com\n", &w,
	    &err), ST_OK);
	assert_string_equal(cfg.hostname, "");	/* the machine's name */
	assert_int_equal(w.n, 1);
	assert_non_null(strstr(w.last, "test.conf:1: HostName: "
	    "'youralerts@gmail.com' is not a host name; using the machine's "
	    "name"));
	config_free(&cfg);

	assert_int_equal(parse(&cfg, "HostName=<vm>\n", &w, &err), ST_OK);
	assert_string_equal(cfg.hostname, "");	/* the machine's name */
	assert_int_equal(w.n, 1);
	assert_non_null(strstr(w.last, "test.conf:1: HostName: '<vm>' is not "
	    "a host name; using the machine's name"));
	config_free(&cfg);

	assert_int_equal(parse(&cfg, "HostName=my laptop\n", &w, &err),
	    ST_OK);
	assert_string_equal(cfg.hostname, "");
	assert_int_equal(w.n, 1);
	config_free(&cfg);

	/* An earlier good HostName does not survive a bad later one. */
	assert_int_equal(parse(&cfg, "HostName=a.example\nHostName=x@\n",
	    &w, &err), ST_OK);
	assert_string_equal(cfg.hostname, "");
	config_free(&cfg);

	/* A control byte is still refused, as in every value. */
	parse_bad("HostName=a\rb\n", "test.conf:1: HostName: control");
}

static void
test_postino_keys(void **state)
{
	struct config cfg;

	(void)state;
	parse_ok(&cfg, "RevaliasesFile=/etc/postino/revaliases\n"
	    "QueueDir=/var/spool/other\nLogFile=/var/log/postino.log\n");
	assert_string_equal(cfg.revaliases, "/etc/postino/revaliases");
	assert_string_equal(cfg.queue_dir, "/var/spool/other");
	assert_string_equal(cfg.log_file, "/var/log/postino.log");
	config_free(&cfg);

	parse_ok(&cfg, "LogFile=\nRevaliasesFile=\n");
	assert_string_equal(cfg.log_file, "");
	assert_string_equal(cfg.revaliases, "");
	config_free(&cfg);

	/* AliasesFile: a path, or empty for no aliases at all. */
	parse_ok(&cfg, "aliasesfile = /etc/postino/aliases\n");
	assert_string_equal(cfg.aliases_file, "/etc/postino/aliases");
	config_free(&cfg);
	parse_ok(&cfg, "AliasesFile=\n");
	assert_string_equal(cfg.aliases_file, "");
	config_free(&cfg);
	parse_bad("AliasesFile=aliases\n", "test.conf:1: AliasesFile: path "
	    "must be absolute");

	parse_bad("QueueDir=\n", "test.conf:1: QueueDir: a path is required");
	parse_bad("QueueDir=spool\n", "QueueDir: path must be absolute");
	parse_bad("LogFile=postino.log\n", "LogFile: path must be absolute");
	parse_bad("AuthPassFile=pass\n", "AuthPassFile: path must be absolute");
}

static void
test_secrets_not_shown(void **state)
{
	struct config cfg;
	struct error err;
	char text[2 * SECRET_MAX];

	(void)state;
	memset(text, 0, sizeof(text));
	(void)strlcpy(text, "AuthPass=", sizeof(text));
	memset(text + 9, 'S', SECRET_MAX + 10);
	assert_int_equal(parse(&cfg, text, NULL, &err), ST_CONFIG);
	assert_non_null(strstr(err.text, "test.conf:1: AuthPass: value too"));
	assert_null(strstr(err.text, "SSSS"));
	/* No half secret left behind. */
	assert_string_equal(cfg.auth_pass, "");
	config_free(&cfg);

	assert_int_equal(parse(&cfg, "AuthUser=sec\001ret\n", NULL, &err),
	    ST_CONFIG);
	assert_non_null(strstr(err.text, "AuthUser: control character"));
	assert_null(strstr(err.text, "sec"));
	config_free(&cfg);
}

static void
test_secret_files_must_be_private(void **state)
{
	char conf[64], pass[64], text[256];
	struct config cfg;
	struct error err;

	(void)state;
	temp_file(conf, sizeof(conf), "AuthUser=u\nAuthPass=p\n");
	assert_int_equal(chmod(conf, 0644), 0);
	error_clear(&err);
	assert_int_equal(config_load(&cfg, conf, NULL, NULL, &err), ST_CONFIG);
	assert_non_null(strstr(err.text, "readable by every user"));
	assert_non_null(strstr(err.text, "chmod o-rw"));
	config_free(&cfg);
	assert_int_equal(chmod(conf, 0640), 0);
	assert_int_equal(config_load(&cfg, conf, NULL, NULL, &err), ST_OK);
	config_free(&cfg);
	assert_int_equal(unlink(conf), 0);

	/* Without a password the mode is the administrator's business. */
	temp_file(conf, sizeof(conf), "MailHub=h\n");
	assert_int_equal(chmod(conf, 0644), 0);
	assert_int_equal(config_load(&cfg, conf, NULL, NULL, &err), ST_OK);
	config_free(&cfg);
	assert_int_equal(unlink(conf), 0);

	temp_file(pass, sizeof(pass), "secret\n");
	assert_int_equal(chmod(pass, 0604), 0);
	(void)snprintf(text, sizeof(text), "AuthPassFile=%s\n", pass);
	temp_file(conf, sizeof(conf), text);
	assert_int_equal(config_load(&cfg, conf, NULL, NULL, &err), ST_CONFIG);
	assert_non_null(strstr(err.text, "AuthPassFile"));
	assert_null(strstr(err.text, "secret\n"));
	config_free(&cfg);
	assert_int_equal(unlink(conf), 0);
	assert_int_equal(unlink(pass), 0);
}

static void
test_rate_limit_keys(void **state)
{
	struct config cfg;

	(void)state;
	parse_ok(&cfg, "RateLimit=100/1h\nRateLimitUser=www-data:5/10m\n"
	    "RateLimitUser=www-data:7/1m\nRateLimitExempt=root, nagios\n");
	assert_int_equal(cfg.rate.deflt.max, 100);
	assert_int_equal(cfg.rate.deflt.period, 3600);
	assert_int_equal(cfg.rate.nuser, 1);
	assert_string_equal(cfg.rate.user[0].login, "www-data");
	assert_int_equal(cfg.rate.user[0].rule.max, 7);
	assert_int_equal(cfg.rate.user[0].rule.period, 60);
	assert_int_equal(cfg.rate.nexempt, 2);
	assert_string_equal(cfg.rate.exempt[1], "nagios");
	assert_true(cfg.rate.exempt_set);
	config_free(&cfg);
	parse_bad("RateLimit=100\n", "RateLimit");
	parse_bad("RateLimit=0/1h\n", "RateLimit");
	parse_bad("RateLimit=5/0\n", "RateLimit");
	parse_bad("RateLimitUser=5/1h\n", "RateLimitUser");
}

static void
test_free_wipes(void **state)
{
	struct config cfg;

	(void)state;
	parse_ok(&cfg, "AuthUser=u\nAuthPass=p\nAddHeader=X: y\n");
	config_free(&cfg);
	assert_string_equal(cfg.auth_user, "");
	assert_string_equal(cfg.auth_pass, "");
	assert_null(cfg.add_header[0]);
	/* Twice is harmless. */
	config_free(&cfg);
	config_free(NULL);
}

static void
test_auth_pass_file(void **state)
{
	char pass[64], conf[64], text[256];
	struct config cfg;
	struct error err;
	FILE *fp;
	size_t i;

	(void)state;
	temp_file(pass, sizeof(pass), "s3cr#t=x \r\nsecond line\n");
	(void)snprintf(text, sizeof(text), "AuthUser=me\nAuthPassFile=%s\n",
	    pass);
	temp_file(conf, sizeof(conf), text);
	error_clear(&err);
	assert_int_equal(config_load(&cfg, conf, NULL, NULL, &err), ST_OK);
	assert_string_equal(cfg.auth_pass, "s3cr#t=x ");
	assert_string_equal(cfg.auth_pass_file, pass);
	assert_string_equal(cfg.path, conf);
	config_free(&cfg);

	/* The pure parser records the key but reads no file. */
	parse_ok(&cfg, text);
	assert_string_equal(cfg.auth_pass, "");
	config_free(&cfg);

	/* Both keys: an error, whichever comes first. */
	(void)snprintf(text, sizeof(text), "AuthPassFile=%s\nAuthPass=x\n",
	    pass);
	parse_bad(text, "test.conf:2: AuthPass and AuthPassFile are both set");

	/* An empty file is an empty password; an over-long one an error. */
	assert_int_equal(truncate(pass, 0), 0);
	assert_int_equal(config_load(&cfg, conf, NULL, NULL, &err), ST_OK);
	assert_string_equal(cfg.auth_pass, "");
	config_free(&cfg);
	fp = fopen(pass, "w");
	assert_non_null(fp);
	for (i = 0; i < SECRET_MAX; i++)
		(void)fputc('p', fp);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(config_load(&cfg, conf, NULL, NULL, &err),
	    ST_CONFIG);
	assert_non_null(strstr(err.text, "AuthPassFile"));
	assert_null(strstr(err.text, "pppp"));
	assert_string_equal(cfg.auth_pass, "");
	config_free(&cfg);

	/* An unreadable file names itself and the line. */
	assert_int_equal(unlink(pass), 0);
	assert_int_equal(config_load(&cfg, conf, NULL, NULL, &err),
	    ST_CONFIG);
	assert_non_null(strstr(err.text, ":2: AuthPassFile: cannot read"));
	assert_non_null(strstr(err.text, pass));
	config_free(&cfg);
	assert_int_equal(unlink(conf), 0);
}

/* The one whole-file reader (config, AuthPassFile, revaliases, aliases). */
static void
test_read_file(void **state)
{
	char path[64], fifo[64];
	struct file_text ft;
	struct error err;

	(void)state;
	temp_file(path, sizeof(path), "0123456789");
	assert_int_equal(config_read_file(path, 10, 0, &ft, &err), ST_OK);
	assert_int_equal(ft.len, 10);
	assert_memory_equal(ft.buf, "0123456789", 10);
	assert_true(ft.cap > ft.len);
	config_file_free(&ft);
	assert_null(ft.buf);

	/* One byte over max: refused, named, nothing left allocated. */
	assert_int_equal(config_read_file(path, 9, 0, &ft, &err), ST_CONFIG);
	assert_null(ft.buf);
	assert_non_null(strstr(err.text, "file too large (over 9 bytes)"));
	assert_true(strncmp(err.text, path, strlen(path)) == 0);
	assert_int_equal(unlink(path), 0);

	/* Missing: an error, or no file at all when the caller allows it. */
	assert_int_equal(config_read_file(path, 10, 0, &ft, &err), ST_CONFIG);
	assert_non_null(strstr(err.text, strerror(ENOENT)));
	assert_int_equal(config_read_file(path, 10, FT_MISSING_OK, &ft, &err),
	    ST_OK);
	assert_null(ft.buf);

	/* A FIFO with no writer neither hangs nor is read; nor a directory. */
	assert_true(strlcpy(fifo, path, sizeof(fifo)) < sizeof(fifo));
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(config_read_file(fifo, 10, FT_MISSING_OK, &ft, &err),
	    ST_CONFIG);
	assert_true(strncmp(err.text, fifo, strlen(fifo)) == 0);
	assert_string_equal(err.text + strlen(fifo), ": not a regular file");
	assert_int_equal(unlink(fifo), 0);
	assert_int_equal(config_read_file("/", 10, 0, &ft, &err), ST_CONFIG);
	assert_string_equal(err.text, "/: not a regular file");
}

static void
test_load(void **state)
{
	char conf[64];
	struct config cfg;
	struct error err;
	struct warnings w;
	FILE *fp;
	size_t i;

	(void)state;
	temp_file(conf, sizeof(conf), "MailHub=[::1]:2525\nBogus=1\n"
	    "AuthPass=x");
	memset(&w, 0, sizeof(w));
	error_clear(&err);
	assert_int_equal(config_load(&cfg, conf, collect, &w, &err), ST_OK);
	assert_string_equal(cfg.hub_host, "::1");
	assert_string_equal(cfg.hub_port, "2525");
	assert_string_equal(cfg.auth_pass, "x");
	assert_int_equal(w.n, 1);
	assert_non_null(strstr(w.last, ":2: unknown key 'Bogus' ignored"));
	assert_true(strncmp(w.last, conf, strlen(conf)) == 0);
	config_free(&cfg);

	/* A syntax error in a file names it and the line. */
	fp = fopen(conf, "w");
	assert_non_null(fp);
	(void)fputs("Root=a\n\nUseTLS=maybe\n", fp);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(config_load(&cfg, conf, NULL, NULL, &err), ST_CONFIG);
	assert_true(strncmp(err.text, conf, strlen(conf)) == 0);
	assert_non_null(strstr(err.text, ":3: UseTLS: expected YES or NO"));
	config_free(&cfg);

	/* Over 1 MiB: refused. */
	fp = fopen(conf, "w");
	assert_non_null(fp);
	for (i = 0; i < 1024 * 1024 / 8 + 1; i++)
		(void)fputs("# xxxxx\n", fp);	/* 8 bytes */
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(config_load(&cfg, conf, NULL, NULL, &err), ST_CONFIG);
	assert_non_null(strstr(err.text, "too large"));
	config_free(&cfg);

	assert_int_equal(unlink(conf), 0);
	assert_int_equal(config_load(&cfg, conf, NULL, NULL, &err), ST_CONFIG);
	assert_non_null(strstr(err.text, strerror(ENOENT)));
	config_free(&cfg);
}

static void
test_nul_and_long_lines(void **state)
{
	static const char text[] = "Root=a\0b\n";
	static char big[20000];
	struct config cfg;
	struct error err;

	(void)state;
	error_clear(&err);
	assert_int_equal(config_parse_buffer(&cfg, NAME, text,
	    sizeof(text) - 1, NULL, NULL, &err), ST_CONFIG);
	assert_non_null(strstr(err.text, "test.conf:1: Root: control"));
	config_free(&cfg);

	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "Root=", 5);
	assert_int_equal(config_parse_buffer(&cfg, NAME, big, strlen(big),
	    NULL, NULL, &err), ST_CONFIG);
	assert_non_null(strstr(err.text, "Root: value too long"));
	config_free(&cfg);
}

/* Parse text, then config_check it; the findings in w. */
static int
check_text(struct config *cfg, const char *text, struct warnings *w)
{
	struct error err;

	if (parse(cfg, text, NULL, &err) != ST_OK)
		fail_msg("unexpected error: %s", err.text);
	memset(w, 0, sizeof(*w));
	return config_check(cfg, collect, w);
}

/* Issue 15 part 5: what the first send would run into. */
static void
test_check_auth_without_tls(void **state)
{
	struct config cfg;
	struct warnings w;

	(void)state;
	assert_int_equal(check_text(&cfg, "MailHub=h\nRoot=ops\n"
	    "AuthUser=me@example.org\nAuthPass=x\n", &w), ST_CONFIG);
	assert_int_equal(w.n, 1);
	assert_non_null(strstr(w.last, "test.conf:3: AuthUser is set but the "
	    "connection to the hub is not encrypted"));
	assert_non_null(strstr(w.last, "UseSTARTTLS=YES"));
	assert_null(strstr(w.all, "me@example.org"));	/* a secret */
	config_free(&cfg);

	assert_int_equal(check_text(&cfg, "AuthUser=me\nUseSTARTTLS=YES\n",
	    &w), ST_OK);
	assert_int_equal(w.n, 0);
	config_free(&cfg);
	assert_int_equal(check_text(&cfg, "AuthUser=me\nUseTLS=YES\n", &w),
	    ST_OK);
	config_free(&cfg);
	assert_int_equal(check_text(&cfg, "AuthUser=me\n"
	    "AuthAllowPlaintext=YES\n", &w), ST_OK);
	config_free(&cfg);
	assert_int_equal(check_text(&cfg, "MailHub=h\n", &w), ST_OK);
	config_free(&cfg);
}

static void
test_check_tls_files(void **state)
{
	char ca[64], text[512];
	struct config cfg;
	struct warnings w;

	(void)state;
	temp_file(ca, sizeof(ca), "-----BEGIN CERTIFICATE-----\n");
	assert_int_equal(chmod(ca, 0644), 0);
	(void)snprintf(text, sizeof(text), "UseSTARTTLS=YES\n"
	    "TLS_CA_File=%s\nTLS_CA_Dir=/tmp\n", ca);
	assert_int_equal(check_text(&cfg, text, &w), ST_OK);
	assert_int_equal(w.n, 0);
	config_free(&cfg);

	/* Readable by its owner only: senders cannot read it. */
	assert_int_equal(chmod(ca, 0600), 0);
	assert_int_equal(check_text(&cfg, text, &w), ST_CONFIG);
	assert_int_equal(w.n, 1);
	assert_non_null(strstr(w.last, "test.conf:2: TLS_CA_File: "));
	assert_non_null(strstr(w.last, "mode 0600"));
	config_free(&cfg);
	(void)unlink(ca);

	/* Another distribution's path: missing. Each key named. */
	assert_int_equal(check_text(&cfg, "UseTLS=YES\n"
	    "TLS_CA_File=/etc/pki/tls/certs/ca-bundle.crt\n"
	    "TLS_CA_Dir=/nonexistent/certs\nUseTLSCert=YES\n"
	    "TLSCert=/nonexistent/client.pem\n"
	    "TLSKey=/nonexistent/client.key\n", &w), ST_CONFIG);
	assert_int_equal(w.n, 4);
	assert_non_null(strstr(w.all, "test.conf:2: TLS_CA_File: "
	    "/etc/pki/tls/certs/ca-bundle.crt: No such file"));
	assert_non_null(strstr(w.all, "test.conf:3: TLS_CA_Dir: "));
	assert_non_null(strstr(w.all, "test.conf:5: TLSCert: "));
	assert_non_null(strstr(w.all, "test.conf:6: TLSKey: "));
	config_free(&cfg);

	/* Not used without TLS, nor the client files without UseTLSCert:
	 * sending is not affected, so nothing to find. */
	assert_int_equal(check_text(&cfg, "TLS_CA_File=/nonexistent/ca\n",
	    &w), ST_OK);
	config_free(&cfg);
	assert_int_equal(check_text(&cfg, "UseSTARTTLS=YES\n"
	    "TLSCert=/nonexistent/client.pem\n", &w), ST_OK);
	config_free(&cfg);
}

/* ------------------------------------------------------------ Include= */

/* A directory of its own under /tmp, removed by incdir_done. */
struct incdir {
	char	 dir[64];
	char	 main[128];
	char	 paths[16][128];
	int	 n;
};

static const char *
inc_write(struct incdir *d, const char *name, const char *text, mode_t mode)
{
	char *path, dir[sizeof(d->dir)];
	int fd;

	assert_true(d->n < (int)(sizeof(d->paths) / sizeof(d->paths[0])));
	path = d->paths[d->n++];
	(void)strlcpy(dir, d->dir, sizeof(dir));
	(void)snprintf(path, sizeof(d->paths[0]), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
	return path;
}

static void
incdir_init(struct incdir *d)
{
	memset(d, 0, sizeof(*d));
	assert_true(strlcpy(d->dir, "/tmp/postino-inc-XXXXXX",
	    sizeof(d->dir)) < sizeof(d->dir));
	assert_non_null(mkdtemp(d->dir));
}

static void
incdir_done(struct incdir *d)
{
	int i;

	for (i = d->n - 1; i >= 0; i--)
		(void)unlink(d->paths[i]);
	assert_int_equal(rmdir(d->dir), 0);
}

/* Load main.conf holding text, each '@' in it standing for the dir. */
static int
inc_load(struct incdir *d, struct config *cfg, const char *tmpl,
    struct warnings *w, struct error *err)
{
	char text[1024];
	size_t n = 0;

	for (; *tmpl != '\0' && n + sizeof(d->dir) < sizeof(text); tmpl++)
		if (*tmpl == '@')
			n += strlcpy(text + n, d->dir, sizeof(text) - n);
		else
			text[n++] = *tmpl;
	text[n] = '\0';
	(void)strlcpy(d->main, inc_write(d, "main.conf", text, 0600),
	    sizeof(d->main));
	error_clear(err);
	if (w != NULL)
		memset(w, 0, sizeof(*w));
	return config_load(cfg, d->main, w != NULL ? collect : NULL, w, err);
}

static void
test_include_order(void **state)
{
	struct incdir d;
	struct config cfg;
	struct error err;

	(void)state;
	incdir_init(&d);
	/* strcmp order, whatever the order of creation; later keys win. */
	(void)inc_write(&d, "20-b.conf", "MailHub=b.example\n"
	    "Timeout=20\n", 0644);
	(void)inc_write(&d, "10-a.conf", "MailHub=a.example\n"
	    "RewriteDomain=a.example\nTimeout=10\n", 0644);
	(void)inc_write(&d, "ignored.txt", "MailHub=txt.example\n", 0644);
	if (inc_load(&d, &cfg, "MailHub=main.example\nTimeout=5\n"
	    "Include = @/[0-9]*.conf\nRewriteDomain=after.example\n", NULL,
	    &err) != ST_OK)
		fail_msg("%s", err.text);
	assert_string_equal(cfg.hub_host, "b.example");
	assert_int_equal(cfg.timeout, 20);
	assert_string_equal(cfg.rewrite_domain, "after.example");
	assert_int_equal(cfg.included_count, 2);
	assert_non_null(strstr(cfg.included[0], "/10-a.conf"));
	config_free(&cfg);
	incdir_done(&d);
}

static void
test_include_nothing_matches(void **state)
{
	struct incdir d;
	struct config cfg;
	struct error err;

	(void)state;
	incdir_init(&d);
	/* An empty conf.d, or none at all, is fine. */
	assert_int_equal(inc_load(&d, &cfg, "Include=@/conf.d/*.conf\n"
	    "Include=@/*.none\nMailHub=h\n", NULL, &err), ST_OK);
	assert_string_equal(cfg.hub_host, "h");
	assert_int_equal(cfg.included_count, 0);
	config_free(&cfg);
	incdir_done(&d);
}

static void
test_include_diagnostics_name_the_file(void **state)
{
	struct incdir d;
	struct config cfg;
	struct error err;
	struct warnings w;
	char want[256];

	(void)state;
	incdir_init(&d);
	(void)inc_write(&d, "a.conf", "# a comment\nBogus=1\n", 0644);
	assert_int_equal(inc_load(&d, &cfg, "Include=@/a.conf\n", &w, &err),
	    ST_OK);
	(void)snprintf(want, sizeof(want), "%s/a.conf:2: unknown key", d.dir);
	assert_non_null(strstr(w.all, want));
	config_free(&cfg);
	incdir_done(&d);

	incdir_init(&d);
	(void)inc_write(&d, "b.conf", "MailHub=h\n\nUseTLS=maybe\n", 0644);
	assert_int_equal(inc_load(&d, &cfg, "Include=@/b.conf\n", NULL,
	    &err), ST_CONFIG);
	(void)snprintf(want, sizeof(want), "%s/b.conf:3: UseTLS", d.dir);
	assert_non_null(strstr(err.text, want));
	config_free(&cfg);
	incdir_done(&d);

	/* An interaction resolved at the end names the included line. */
	incdir_init(&d);
	(void)inc_write(&d, "c.conf", "MailHub=h\nUseTLSCert=YES\n"
	    "TLSCert=\n", 0644);
	assert_int_equal(inc_load(&d, &cfg, "Include=@/c.conf\n", NULL,
	    &err), ST_CONFIG);
	(void)snprintf(want, sizeof(want), "%s/c.conf:2: UseTLSCert", d.dir);
	assert_non_null(strstr(err.text, want));
	config_free(&cfg);
	incdir_done(&d);

	/* config_check's findings too. */
	incdir_init(&d);
	(void)inc_write(&d, "d.conf", "\nAuthUser=u\n", 0644);
	assert_int_equal(inc_load(&d, &cfg, "Include=@/d.conf\n", NULL,
	    &err), ST_OK);
	memset(&w, 0, sizeof(w));
	assert_int_equal(config_check(&cfg, collect, &w), ST_CONFIG);
	(void)snprintf(want, sizeof(want), "%s/d.conf:2: AuthUser", d.dir);
	assert_non_null(strstr(w.all, want));
	config_free(&cfg);
	incdir_done(&d);
}

static void
test_include_refused(void **state)
{
	struct incdir d;
	struct config cfg;
	struct error err;
	char text[256];
	int i;

	(void)state;
	/* A loop: main includes a file that includes main. */
	incdir_init(&d);
	(void)snprintf(text, sizeof(text), "Include=%s/main.conf\n", d.dir);
	(void)inc_write(&d, "loop.conf", text, 0644);
	assert_int_equal(inc_load(&d, &cfg, "Include=@/loop.conf\n", NULL,
	    &err), ST_CONFIG);
	assert_non_null(strstr(err.text, "loop.conf:1: Include:"));
	assert_non_null(strstr(err.text, "include loop"));
	config_free(&cfg);
	incdir_done(&d);

	/* Too deep: n0 includes n1 includes ... (no loop, just depth). */
	incdir_init(&d);
	for (i = 0; i < 7; i++) {
		char name[32];

		(void)snprintf(name, sizeof(name), "n%d.conf", i);
		(void)snprintf(text, sizeof(text), "Include=%s/n%d.conf\n",
		    d.dir, i + 1);
		(void)inc_write(&d, name, text, 0644);
	}
	(void)inc_write(&d, "n7.conf", "Include=/etc/nothing/*.conf\n", 0644);
	assert_int_equal(inc_load(&d, &cfg, "Include=@/n0.conf\n", NULL,
	    &err), ST_CONFIG);
	assert_non_null(strstr(err.text, "n7.conf:1: Include: nested more "
	    "than 8 deep"));
	config_free(&cfg);
	incdir_done(&d);

	/* Relative patterns, and Include in a buffer (no files there). */
	parse_bad("Include=conf.d/*.conf\n", "test.conf:1: Include: pattern "
	    "must be absolute");
	parse_bad("Include=/etc/ssmtp/conf.d/*.conf\n", "test.conf:1: "
	    "Include: only followed in a configuration file");
}

static void
test_include_auth_pass_private(void **state)
{
	struct incdir d;
	struct config cfg;
	struct error err;

	(void)state;
	incdir_init(&d);
	(void)inc_write(&d, "pass.conf", "AuthUser=u\nAuthPass=s3cret\n",
	    0644);
	/* The main file holds no password: only the included one counts. */
	assert_int_equal(inc_load(&d, &cfg, "MailHub=h\nInclude=@/p*.conf\n",
	    NULL, &err), ST_CONFIG);
	assert_non_null(strstr(err.text, "pass.conf holds AuthPass but is "
	    "readable by every user"));
	assert_null(strstr(err.text, "s3cret"));
	config_free(&cfg);
	assert_int_equal(chmod(d.paths[0], 0640), 0);
	d.n--;	/* main.conf is written again */
	assert_int_equal(inc_load(&d, &cfg, "MailHub=h\nInclude=@/p*.conf\n",
	    NULL, &err), ST_OK);
	assert_string_equal(cfg.auth_pass, "s3cret");
	config_free(&cfg);
	/* A world-readable main file without AuthPass is still fine. */
	assert_int_equal(chmod(d.main, 0644), 0);
	d.n--;
	assert_int_equal(inc_load(&d, &cfg, "Include=@/pass.conf\n", NULL,
	    &err), ST_OK);
	config_free(&cfg);
	incdir_done(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_spaces_and_case),
		cmocka_unit_test(test_hash_and_equals_in_values),
		cmocka_unit_test(test_comments),
		cmocka_unit_test(test_comment_after_value),
		cmocka_unit_test(test_hostname_wild),
		cmocka_unit_test(test_check_auth_without_tls),
		cmocka_unit_test(test_check_tls_files),
		cmocka_unit_test(test_last_line_without_newline),
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_no_equals),
		cmocka_unit_test(test_booleans),
		cmocka_unit_test(test_last_wins),
		cmocka_unit_test(test_mailhub_forms),
		cmocka_unit_test(test_mailhub_list),
		cmocka_unit_test(test_source_address_family),
		cmocka_unit_test(test_split_hub),
		cmocka_unit_test(test_read_file),
		cmocka_unit_test(test_port_rule),
		cmocka_unit_test(test_remote_port_order),
		cmocka_unit_test(test_tls_modes),
		cmocka_unit_test(test_tls_files),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_pin_list),
		cmocka_unit_test(test_auth_method),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_timeout_key),
		cmocka_unit_test(test_queue_durations),
		cmocka_unit_test(test_max_message_size),
		cmocka_unit_test(test_add_header),
		cmocka_unit_test(test_rewrite_domain),
		cmocka_unit_test(test_postino_keys),
		cmocka_unit_test(test_secrets_not_shown),
		cmocka_unit_test(test_free_wipes),
		cmocka_unit_test(test_auth_pass_file),
		cmocka_unit_test(test_secret_files_must_be_private),
		cmocka_unit_test(test_rate_limit_keys),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_nul_and_long_lines),
		cmocka_unit_test(test_include_order),
		cmocka_unit_test(test_include_nothing_matches),
		cmocka_unit_test(test_include_diagnostics_name_the_file),
		cmocka_unit_test(test_include_refused),
		cmocka_unit_test(test_include_auth_pass_private),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
