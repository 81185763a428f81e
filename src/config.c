/*
 * config.c: ssmtp.conf. The keyword table (every ssmtp key with ssmtp's
 * meaning, plus postino's own keys), the line parser, the interactions
 * resolved once the whole file is read (UseTLS/UseSTARTTLS, TLSKey,
 * AuthPass/AuthPassFile) and the value checks.
 *
 * Where ssmtp's parser lost mail or leaked secrets we differ on purpose
 * (DESIGN.md "Compatibility", ssmtp.conf(5) "DIFFERENCES FROM SSMTP"):
 * spaces around '=' are allowed, '#' starts a comment only at the start
 * of a line or after a blank (so a password may hold '#'), the value
 * runs to the end of the line or that comment, the last line is read
 * even without a newline, a bad boolean is an error instead of a silent
 * NO, and a key name followed by something other than '=' is an error
 * (other lines without '=' are skipped, as ssmtp did, with a warning).
 * Secrets (AuthUser, AuthPass) never appear in diagnostics.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "postino.h"

#define CONFIG_FILE_MAX	(1024 * 1024)	/* configs are small */
#define VALUE_MAX	8192		/* one value, the longest is a path */
#define KEY_MAX		64
#define TIMEOUT_MIN	1
#define TIMEOUT_MAX	3600
#define DURATION_MAX	(365LL * 86400)	/* queue durations: a year */

/* Where we are in the file, and what the interactions need to know. */
struct parse {
	struct config	*cfg;
	const char	*name;
	size_t		 line;
	config_warn_fn	*warn;
	void		*warn_arg;
	int		 use_tls;	/* -1: not in the file */
	int		 use_starttls;
	int		 ssmtp_starttls; /* ssmtp's reading, line by line */
	size_t		 use_tls_line;
	size_t		 starttls_cleared; /* UseTLS=NO that cleared it */
	size_t		 use_tls_cert_line;
	size_t		 pass_line;	/* last non-empty AuthPass= */
	size_t		 pass_file_line; /* last non-empty AuthPassFile= */
};

struct keyword;
typedef int	 key_fn(struct parse *, const struct keyword *, const char *,
		    struct error *);

/* Flags of a keyword. */
#define KF_NONEMPTY	0x01	/* an empty value is an error */
#define KF_LAST_AT	0x02	/* keep what follows the last '@' */

struct keyword {
	const char	*name;		/* canonical spelling, for messages */
	key_fn		*set;
	size_t		 off;		/* offsetof(struct config, field) */
	size_t		 size;		/* sizeof that field */
	int		 flags;
};

static key_fn key_string, key_secret, key_path, key_bool, key_mailhub,
    key_port, key_domain, key_hostname, key_use_tls, key_use_starttls, key_use_tls_cert,
    key_auth_pass, key_auth_pass_file, key_auth_method, key_add_header,
    key_fingerprint, key_timeout, key_duration, key_rate, key_rate_user,
    key_rate_exempt, key_size, key_sender_policy, key_source_address,
    key_address_family, key_token_url;

#define FIELD(f)	offsetof(struct config, f), \
			sizeof(((struct config *)0)->f)

static const struct keyword keywords[] = {
	/* ssmtp (spec/anchors.md 1a) */
	{ "Root",		key_string,	FIELD(root),		0 },
	{ "MailHub",		key_mailhub,	0, 0,			0 },
	{ "RemotePort",		key_port,	0, 0,			0 },
	{ "HostName",		key_hostname,	FIELD(hostname),	0 },
	{ "RewriteDomain",	key_domain,	FIELD(rewrite_domain),
								KF_LAST_AT },
	{ "FromLineOverride",	key_bool,	FIELD(from_line_override), 0 },
	{ "UseTLS",		key_use_tls,	0, 0,			0 },
	{ "UseSTARTTLS",	key_use_starttls, 0, 0,			0 },
	{ "UseTLSCert",		key_use_tls_cert, FIELD(use_tls_cert),	0 },
	{ "TLSCert",		key_path,	FIELD(tls_cert),	0 },
	{ "TLSKey",		key_path,	FIELD(tls_key),		0 },
	{ "TLS_CA_File",	key_path,	FIELD(tls_ca_file),	0 },
	{ "TLS_CA_Dir",		key_path,	FIELD(tls_ca_dir),	0 },
	{ "AuthUser",		key_secret,	FIELD(auth_user),	0 },
	{ "AuthPass",		key_auth_pass,	FIELD(auth_pass),	0 },
	{ "AuthMethod",		key_auth_method, 0, 0,			0 },
	{ "UseOldAUTH",		key_bool,	FIELD(use_old_auth),	0 },
	{ "Debug",		key_bool,	FIELD(debug),		0 },
	{ "AddHeader",		key_add_header,	0, 0,			0 },
	/* postino */
	{ "RevaliasesFile",	key_path,	FIELD(revaliases),	0 },
	{ "AliasesFile",	key_path,	FIELD(aliases_file),	0 },
	{ "QueueDir",		key_path,	FIELD(queue_dir), KF_NONEMPTY },
	{ "RunAsUser",		key_string,	FIELD(run_as_user),	0 },
	{ "TLSVerify",		key_bool,	FIELD(tls_verify),	0 },
	{ "TLSFingerprint",	key_fingerprint, 0, 0,			0 },
	{ "AuthPassFile",	key_auth_pass_file,
				FIELD(auth_pass_file),			0 },
	{ "AuthAllowPlaintext",	key_bool,
				FIELD(auth_allow_plaintext),		0 },
	{ "Timeout",		key_timeout,	0, 0,			0 },
	{ "LogFile",		key_path,	FIELD(log_file),	0 },
	{ "MetricsFile",	key_path,	FIELD(metrics_file),	0 },
	{ "SourceAddress",	key_source_address, FIELD(source_address), 0 },
	{ "AddressFamily",	key_address_family, 0, 0,		0 },
	/* the queue (DESIGN.md "Queue") */
	{ "RetryInterval",	key_duration,	FIELD(retry_interval),	0 },
	{ "MaxRetryInterval",	key_duration,	FIELD(max_retry_interval), 0 },
	{ "QueueLifetime",	key_duration,	FIELD(queue_lifetime),	0 },
	{ "HubBackoff",		key_duration,	FIELD(hub_backoff),	0 },
	/* abuse control */
	{ "MaxMessageSize",	key_size,	FIELD(max_message_size), 0 },
	{ "RateLimit",		key_rate,	0, 0,			0 },
	{ "RateLimitUser",	key_rate_user,	0, 0,			0 },
	{ "RateLimitExempt",	key_rate_exempt, 0, 0,			0 },
	/* senders (sender.c) */
	{ "AllowedSendersFile",	key_path,	FIELD(allowed_senders),	0 },
	{ "SenderPolicy",	key_sender_policy, 0, 0,		0 },
	/* OAuth 2.0 (oauth.c) */
	{ "AuthTokenFile",	key_path,	FIELD(auth_token_file),	0 },
	{ "OAuthTokenURL",	key_token_url,	FIELD(oauth_token_url),	0 },
	{ "OAuthClientID",	key_secret,	FIELD(oauth_client_id),	0 },
	{ "OAuthClientSecretFile", key_path,	FIELD(oauth_secret_file), 0 },
	{ "OAuthScope",		key_string,	FIELD(oauth_scope),	0 },
	{ "OAuthRefreshTokenFile", key_path,	FIELD(oauth_refresh_file), 0 },
};

/* The keys config_check names by line, and where their line is kept. */
static const struct {
	const char	*name;
	size_t		 off;
} line_slots[] = {
	{ "AuthUser",		offsetof(struct config, line.auth_user) },
	{ "TLSCert",		offsetof(struct config, line.tls_cert) },
	{ "TLSKey",		offsetof(struct config, line.tls_key) },
	{ "TLS_CA_File",	offsetof(struct config, line.tls_ca_file) },
	{ "TLS_CA_Dir",		offsetof(struct config, line.tls_ca_dir) },
};

static void
note_line(struct parse *p, const struct keyword *kw)
{
	size_t i;

	for (i = 0; i < sizeof(line_slots) / sizeof(line_slots[0]); i++)
		if (strcmp(kw->name, line_slots[i].name) == 0)
			*(size_t *)(void *)((char *)p->cfg +
			    line_slots[i].off) = p->line;
}

static char *
field_str(struct parse *p, const struct keyword *kw)
{
	return (char *)p->cfg + kw->off;
}

static int *
field_int(struct parse *p, const struct keyword *kw)
{
	return (int *)(void *)((char *)p->cfg + kw->off);
}

/* "file:line: " in front of every diagnostic. */
static int
perr(struct parse *p, struct error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
perr(struct parse *p, struct error *err, const char *fmt, ...)
{
	char text[ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return error_set(err, ST_CONFIG, "%s:%zu: %s", p->name, p->line,
	    text);
}

static void
pwarn(struct parse *p, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void
config_vwarn(config_warn_fn *warn, void *arg, const char *file, size_t line,
    const char *fmt, va_list ap)
{
	char text[ERR_MAX], full[ERR_MAX + 2 * PATH_MAX];

	if (warn == NULL)
		return;
	(void)vsnprintf(text, sizeof(text), fmt, ap);
	(void)snprintf(full, sizeof(full), "%s:%zu: %s", file, line, text);
	warn(arg, full);
}

static void
pwarn(struct parse *p, size_t line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	config_vwarn(p->warn, p->warn_arg, p->name, line, fmt, ap);
	va_end(ap);
}

/* A value quoted in a message: control bytes made visible, bounded. */
static const char *
shown(char *buf, size_t len, const char *value)
{
	return log_sanitize(buf, len, value, strlen(value));
}

static int
copy_value(struct parse *p, const struct keyword *kw, char *dst,
    size_t dstlen, const char *value, struct error *err)
{
	if (strlcpy(dst, value, dstlen) >= dstlen) {
		dst[0] = '\0';
		return perr(p, err, "%s: value too long (at most %zu bytes)",
		    kw->name, dstlen - 1);
	}
	return ST_OK;
}

static int
key_string(struct parse *p, const struct keyword *kw, const char *value,
    struct error *err)
{
	return copy_value(p, kw, field_str(p, kw), kw->size, value, err);
}

static int
key_secret(struct parse *p, const struct keyword *kw, const char *value,
    struct error *err)
{
	char *dst = field_str(p, kw);

	/* Wipe first: a failed copy must not leave half a secret behind. */
	explicit_bzero(dst, kw->size);
	return copy_value(p, kw, dst, kw->size, value, err);
}

static int
key_auth_pass(struct parse *p, const struct keyword *kw, const char *value,
    struct error *err)
{
	p->pass_line = value[0] != '\0' ? p->line : 0;
	return key_secret(p, kw, value, err);
}

static int
key_path(struct parse *p, const struct keyword *kw, const char *value,
    struct error *err)
{
	char show[PATH_MAX];

	if (value[0] == '\0' && (kw->flags & KF_NONEMPTY))
		return perr(p, err, "%s: a path is required", kw->name);
	if (value[0] != '\0' && value[0] != '/')
		return perr(p, err, "%s: path must be absolute, got '%s'",
		    kw->name, shown(show, sizeof(show), value));
	return copy_value(p, kw, field_str(p, kw), kw->size, value, err);
}

static int
key_auth_pass_file(struct parse *p, const struct keyword *kw,
    const char *value, struct error *err)
{
	p->pass_file_line = value[0] != '\0' ? p->line : 0;
	return key_path(p, kw, value, err);
}

static int
parse_bool(const char *value, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(value, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(value, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

/* A typo must not silently turn TLS or verification off: refuse it. */
static int
get_bool(struct parse *p, const struct keyword *kw, const char *value,
    int *out, struct error *err)
{
	char show[64];

	if (parse_bool(value, out) == -1)
		return perr(p, err, "%s: expected YES or NO, got '%s'",
		    kw->name, shown(show, sizeof(show), value));
	return ST_OK;
}

static int
key_bool(struct parse *p, const struct keyword *kw, const char *value,
    struct error *err)
{
	return get_bool(p, kw, value, field_int(p, kw), err);
}

static int
key_use_tls(struct parse *p, const struct keyword *kw, const char *value,
    struct error *err)
{
	int rc;

	p->use_tls_line = p->line;
	rc = get_bool(p, kw, value, &p->use_tls, err);
	/* ssmtp: UseTLS=NO also cleared an earlier UseSTARTTLS=YES. */
	if (rc == ST_OK && p->use_tls == 0 && p->ssmtp_starttls) {
		p->ssmtp_starttls = 0;
		p->starttls_cleared = p->line;
	}
	return rc;
}

static int
key_use_starttls(struct parse *p, const struct keyword *kw,
    const char *value, struct error *err)
{
	int rc;

	rc = get_bool(p, kw, value, &p->use_starttls, err);
	if (rc == ST_OK)
		p->ssmtp_starttls = p->use_starttls;
	return rc;
}

static int
key_use_tls_cert(struct parse *p, const struct keyword *kw,
    const char *value, struct error *err)
{
	p->use_tls_cert_line = p->line;
	return key_bool(p, kw, value, err);
}

int
config_port_ok(const char *port)
{
	const char *s;
	const char *errstr;

	if (port[0] >= '0' && port[0] <= '9') {
		(void)strtonum(port, 1, 65535, &errstr);
		return errstr == NULL;
	}
	/* ASCII by hand, not isalpha(): the locale must not widen it. */
	for (s = port; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
			return 0;
	return port[0] != '\0';
}

static int
set_port(char *dst, size_t dstlen, const char *port, struct error *err)
{
	char show[64];

	if (!config_port_ok(port) || strlen(port) >= dstlen)
		return error_set(err, ST_CONFIG, "bad port '%s' (a number "
		    "1-65535 or a service name)",
		    shown(show, sizeof(show), port));
	(void)strlcpy(dst, port, dstlen);
	return ST_OK;
}

static int
copy_host(char *host, size_t hostlen, const char *s, size_t len,
    struct error *err)
{
	size_t i;

	if (len == 0)
		return error_set(err, ST_CONFIG, "empty host");
	if (len >= hostlen)
		return error_set(err, ST_CONFIG, "host name too long");
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c == 0x7f || c == '[' || c == ']' ||
		    c == '/' || c == '@')
			return error_set(err, ST_CONFIG,
			    "bad character in host name");
	}
	memcpy(host, s, len);
	host[len] = '\0';
	return ST_OK;
}

int
config_split_hub(const char *value, char *host, size_t hostlen, char *port,
    size_t portlen, struct error *err)
{
	const char *colon, *end, *portstr = "";
	size_t hlen;
	int rc;

	if (hostlen == 0 || portlen == 0)
		return error_set(err, ST_SOFTWARE, "config_split_hub: no room");
	host[0] = port[0] = '\0';
	if (value[0] == '[') {
		/* An address literal: the port can only follow the ']'. */
		if ((end = strchr(value, ']')) == NULL)
			return error_set(err, ST_CONFIG, "missing ']'");
		if (end[1] == ':')
			portstr = end + 2;
		else if (end[1] != '\0')
			return error_set(err, ST_CONFIG,
			    "junk after ']' (expected ':port')");
		rc = copy_host(host, hostlen, value + 1,
		    (size_t)(end - value - 1), err);
		if (rc == ST_OK && end[1] == ':')
			rc = set_port(port, portlen, portstr, err);
		return rc;
	}
	colon = strchr(value, ':');
	if (colon != NULL && strchr(colon + 1, ':') != NULL)
		colon = NULL;	/* a bare IPv6 address: all host, no port */
	hlen = colon != NULL ? (size_t)(colon - value) : strlen(value);
	if ((rc = copy_host(host, hostlen, value, hlen, err)) != ST_OK)
		return rc;
	if (colon != NULL)
		return set_port(port, portlen, colon + 1, err);
	return ST_OK;
}

/* One MailHub= entry: the first is hub_host:hub_port, the rest hub_alt. */
static int
add_hub(struct config *cfg, size_t n, const char *value, struct error *err)
{
	char host[HOST_MAX], port[PORT_MAX];
	int rc;

	if (n >= HUBS_MAX)
		return error_set(err, ST_CONFIG, "more than %d hubs", HUBS_MAX);
	rc = config_split_hub(value, host, sizeof(host), port, sizeof(port),
	    err);
	if (rc != ST_OK)
		return rc;
	if (n > 0) {
		(void)strlcpy(cfg->hub_alt[n - 1].host, host,
		    sizeof(cfg->hub_alt[0].host));
		(void)strlcpy(cfg->hub_alt[n - 1].port, port,
		    sizeof(cfg->hub_alt[0].port));
		cfg->hub_alt_count = n;
		return ST_OK;
	}
	(void)strlcpy(cfg->hub_host, host, sizeof(cfg->hub_host));
	/* ssmtp: MailHub without ":port" leaves the port alone. */
	if (port[0] != '\0')
		(void)strlcpy(cfg->hub_port, port, sizeof(cfg->hub_port));
	return ST_OK;
}

/* "hub1:587, hub2 [v6]:25": commas and/or blanks between entries. */
static int
key_mailhub(struct parse *p, const struct keyword *kw, const char *value,
    struct error *err)
{
	char one[VALUE_MAX];
	const char *s = value;
	size_t n = 0, len;
	int rc = ST_OK;

	p->cfg->hub_alt_count = 0;	/* a later MailHub= replaces the list */
	while (rc == ST_OK) {
		s += strspn(s, ", \t");
		if (*s == '\0')
			break;
		len = strcspn(s, ", \t");
		memcpy(one, s, len);
		one[len] = '\0';
		rc = add_hub(p->cfg, n++, one, err);
		s += len;
	}
	if (rc == ST_OK && n == 0)
		rc = error_set(err, ST_CONFIG, "empty host");
	if (rc != ST_OK)
		error_prefix(err, "%s:%zu: %s", p->name, p->line, kw->name);
	return rc;
}

static int
key_port(struct parse *p, const struct keyword *kw, const char *value,
    struct error *err)
{
	int rc;

	rc = set_port(p->cfg->hub_port, sizeof(p->cfg->hub_port), value, err);
	if (rc == ST_OK)
		(void)strlcpy(p->cfg->remote_port, p->cfg->hub_port,
		    sizeof(p->cfg->remote_port));
	else
		error_prefix(err, "%s:%zu: %s", p->name, p->line, kw->name);
	return rc;
}

size_t
config_hub_count(const struct config *cfg)
{
	return 1 + cfg->hub_alt_count;
}

void
config_hub(const struct config *cfg, size_t i, char *host, size_t hostlen,
    char *port, size_t portlen)
{
	if (i == 0 || i > cfg->hub_alt_count) {
		(void)strlcpy(host, cfg->hub_host, hostlen);
		(void)strlcpy(port, cfg->hub_port, portlen);
		return;
	}
	(void)strlcpy(host, cfg->hub_alt[i - 1].host, hostlen);
	(void)strlcpy(port, cfg->hub_alt[i - 1].port[0] != '\0' ?
	    cfg->hub_alt[i - 1].port : cfg->remote_port, portlen);
}

/* A numeric IPv4 or IPv6 address to bind to; empty: none. */
static int
key_source_address(struct parse *p, const struct keyword *kw,
    const char *value, struct error *err)
{
	unsigned char buf[sizeof(struct in6_addr)];
	char show[64];

	if (value[0] != '\0' && inet_pton(AF_INET, value, buf) != 1 &&
	    inet_pton(AF_INET6, value, buf) != 1)
		return perr(p, err, "%s: '%s' is not an IPv4 or IPv6 address",
		    kw->name, shown(show, sizeof(show), value));
	return copy_value(p, kw, p->cfg->source_address,
	    sizeof(p->cfg->source_address), value, err);
}

static int
key_address_family(struct parse *p, const struct keyword *kw,
    const char *value, struct error *err)
{
	char show[64];

	if (strcasecmp(value, "any") == 0)
		p->cfg->address_family = AF_UNSPEC;
	else if (strcasecmp(value, "ipv4") == 0)
		p->cfg->address_family = AF_INET;
	else if (strcasecmp(value, "ipv6") == 0)
		p->cfg->address_family = AF_INET6;
	else
		return perr(p, err, "%s: '%s' (expected any, ipv4 or ipv6)",
		    kw->name, shown(show, sizeof(show), value));
	return ST_OK;
}

/*
 * HostName and RewriteDomain end up in EHLO, Received: and every
 * qualified address, so only what a domain or address literal can hold.
 */
static const char *
domain_after_at(struct parse *p, const struct keyword *kw, const char *value)
{
	char show[HOST_MAX];
	const char *at;

	/* ssmtp cut "user@example.com" to the domain, and so do we. */
	if ((kw->flags & KF_LAST_AT) && (at = strrchr(value, '@')) != NULL) {
		value = at + 1;
		pwarn(p, p->line, "%s: '@' in value, using '%s'", kw->name,
		    shown(show, sizeof(show), value));
	}
	return value;
}

static int
domain_clean(const char *value)
{
	const char *s;

	for (s = value; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= ' ' || c == 0x7f || strchr("@<>()\\\",;/", c) != NULL)
			return 0;
	}
	return 1;
}

static int
key_domain(struct parse *p, const struct keyword *kw, const char *value,
    struct error *err)
{
	char show[HOST_MAX];

	value = domain_after_at(p, kw, value);
	if (!domain_clean(value))
		return perr(p, err, "%s: bad character in '%s'",
		    kw->name, shown(show, sizeof(show), value));
	return copy_value(p, kw, field_str(p, kw), kw->size, value, err);
}

/*
 * HostName is the EHLO argument, the Received: host and, without
 * RewriteDomain, the qualifying domain; ssmtp sent whatever it held and
 * mail flowed. A value that cannot be a host name ("alerts@gmail.com", a
 * common tutorial mistake) is warned about and the machine's name used:
 * refusing would stop a host's mail over it. Not the part after '@', as
 * RewriteDomain does: as the qualifying domain, "gmail.com" would send
 * root's mail to root@gmail.com, a stranger's mailbox.
 */
static int
key_hostname(struct parse *p, const struct keyword *kw, const char *value,
    struct error *err)
{
	char show[HOST_MAX];
	char *dst = field_str(p, kw);

	if (domain_clean(value) && strlen(value) < kw->size)
		return copy_value(p, kw, dst, kw->size, value, err);
	pwarn(p, p->line, "%s: '%s' is not a host name; using the machine's "
	    "name", kw->name, shown(show, sizeof(show), value));
	dst[0] = '\0';		/* alias_hostname: the machine's name */
	return ST_OK;
}

static int
key_auth_method(struct parse *p, const struct keyword *kw,
    const char *value, struct error *err)
{
	static const struct {
		const char		*name;
		enum auth_method	 method;
	} methods[] = {
		{ "", AUTH_BEST }, { "any", AUTH_BEST }, { "best", AUTH_BEST },
		{ "plain", AUTH_PLAIN }, { "login", AUTH_LOGIN },
		{ "cram-md5", AUTH_CRAM_MD5 }, { "xoauth2", AUTH_XOAUTH2 },
		{ "oauthbearer", AUTH_OAUTHBEARER },
	};
	char show[64];
	size_t i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (strcasecmp(value, methods[i].name) == 0) {
			p->cfg->auth_method = methods[i].method;
			return ST_OK;
		}
	}
	return perr(p, err, "%s: expected PLAIN, LOGIN, CRAM-MD5, XOAUTH2, "
	    "OAUTHBEARER or ANY, got '%s'", kw->name,
	    shown(show, sizeof(show), value));
}

/* OAuthTokenURL: https only, for the client secret goes in its body. */
static int
key_token_url(struct parse *p, const struct keyword *kw, const char *value,
    struct error *err)
{
	char show[128];

	if (value[0] != '\0' && (strncasecmp(value, "https://", 8) != 0 ||
	    value[8] == '\0' || value[8] == '/' ||
	    strpbrk(value, " \"<>\\^`{|}") != NULL))
		return perr(p, err, "%s: expected an https:// URL, got '%s'",
		    kw->name, shown(show, sizeof(show), value));
	return copy_value(p, kw, field_str(p, kw), kw->size, value, err);
}

/* SenderPolicy: keep (ssmtp's behaviour, the default), align, refuse. */
static int
key_sender_policy(struct parse *p, const struct keyword *kw,
    const char *value, struct error *err)
{
	static const char *const names[] = {
		[SP_KEEP] = "keep", [SP_ALIGN] = "align",
		[SP_REFUSE] = "refuse"
	};
	char show[64];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(value, names[i]) == 0) {
			p->cfg->sender_policy = (enum sender_policy)i;
			return ST_OK;
		}
	}
	return perr(p, err, "%s: expected keep, align or refuse, got '%s'",
	    kw->name, shown(show, sizeof(show), value));
}

/* "Name: value": a field name of printable ASCII, then ':'. */
static int
key_add_header(struct parse *p, const struct keyword *kw, const char *value,
    struct error *err)
{
	struct config *cfg = p->cfg;
	const char *s;
	char *copy;

	if (cfg->add_header_count >= ADDHEADER_MAX)
		return perr(p, err, "%s: more than %d lines", kw->name,
		    ADDHEADER_MAX);
	for (s = value; *s > ' ' && *s < 0x7f && *s != ':'; s++)
		continue;
	if (s == value || *s != ':')
		return perr(p, err, "%s: expected 'Name: value'", kw->name);
	for (; *s != '\0'; s++)
		if (((unsigned char)*s < ' ' && *s != '\t') || *s == 0x7f)
			return perr(p, err, "%s: control character in value",
			    kw->name);
	if (strlen(value) > SMTP_LINE_MAX)
		return perr(p, err, "%s: longer than %d bytes", kw->name,
		    SMTP_LINE_MAX);
	if ((copy = strdup(value)) == NULL)
		return error_set(err, ST_OSERR, "%s:%zu: %s: out of memory",
		    p->name, p->line, kw->name);
	cfg->add_header[cfg->add_header_count++] = copy;
	return ST_OK;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * One pin: 64 hex digits, optionally "sha256:" in front and ':' between
 * pairs. Returns where the pin ends, or NULL if s does not start with one.
 */
static const char *
parse_fingerprint(const char *s, unsigned char pin[TLS_PIN_LEN])
{
	size_t i;
	int hi, lo;

	if (strncasecmp(s, "sha256:", 7) == 0)
		s += 7;
	for (i = 0; i < TLS_PIN_LEN; i++) {
		if (i > 0 && *s == ':')
			s++;
		if ((hi = hexval((unsigned char)s[0])) == -1 ||
		    (lo = hexval((unsigned char)s[1])) == -1)
			return NULL;
		pin[i] = (unsigned char)(hi << 4 | lo);
		s += 2;
	}
	return s;
}

enum pin_list { PINS_OK, PINS_NOT_A_PIN, PINS_TOO_MANY };

/*
 * Pins separated by ',', blanks allowed around the commas, so that the
 * next key can be pinned before the hub switches to it. An empty value
 * is no pin. On PINS_NOT_A_PIN, *count is the index of the bad one.
 */
static enum pin_list
parse_pin_list(const char *s, unsigned char pins[][TLS_PIN_LEN],
    size_t *count)
{
	unsigned char pin[TLS_PIN_LEN];

	*count = 0;
	if (*s == '\0')
		return PINS_OK;
	for (;;) {
		if ((s = parse_fingerprint(s, pin)) == NULL)
			return PINS_NOT_A_PIN;
		s += strspn(s, " \t");
		if (*s != '\0' && *s != ',')
			return PINS_NOT_A_PIN;
		if (*count == TLS_PINS_MAX)
			return PINS_TOO_MANY;
		memcpy(pins[(*count)++], pin, TLS_PIN_LEN);
		if (*s == '\0')
			return PINS_OK;
		s++;
		s += strspn(s, " \t");
	}
}

static int
key_fingerprint(struct parse *p, const struct keyword *kw,
    const char *value, struct error *err)
{
	struct config *cfg = p->cfg;
	enum pin_list r;
	size_t n;

	if ((r = parse_pin_list(value, cfg->tls_pins, &n)) == PINS_OK) {
		cfg->tls_pin_count = n;
		return ST_OK;
	}
	memset(cfg->tls_pins, 0, sizeof(cfg->tls_pins));
	cfg->tls_pin_count = 0;
	if (r == PINS_TOO_MANY)
		return perr(p, err, "%s: more than %d pins", kw->name,
		    TLS_PINS_MAX);
	return perr(p, err, "%s: expected a SHA-256 fingerprint (64 hex "
	    "digits, optionally 'sha256:' and ':' between bytes; several "
	    "separated by ','): pin %zu is not one", kw->name, n + 1);
}

/* A unit letter (lower case; either case is accepted) and its factor. */
struct unit {
	char		 letter;
	long long	 factor;
};

/*
 * Digits and an optional unit from units (a table ending in letter 0),
 * for durations and sizes alike. 0, or -1 malformed, -2 too large.
 */
static int
parse_scaled(const char *s, const struct unit *units, long long *out)
{
	long long n = 0, factor = 1;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		if (n > (LLONG_MAX - (*s - '0')) / 10)
			return -2;
		n = n * 10 + (*s - '0');
	}
	if (*s != '\0') {
		while (units->letter != '\0' &&
		    tolower((unsigned char)*s) != units->letter)
			units++;
		if (units->letter == '\0' || s[1] != '\0')
			return -1;
		factor = units->factor;
	}
	if (n > LLONG_MAX / factor)
		return -2;
	*out = n * factor;
	return 0;
}

int
config_parse_duration(const char *value, long long *seconds,
    struct error *err)
{
	static const struct unit units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 0, 0 }
	};
	char show[64];

	switch (parse_scaled(value, units, seconds)) {
	case 0:
		return ST_OK;
	case -1:
		return error_set(err, ST_CONFIG, "bad duration '%s' (a number "
		    "with an optional unit s, m, h or d)",
		    shown(show, sizeof(show), value));
	default:
		return error_set(err, ST_CONFIG, "duration '%s' too large",
		    shown(show, sizeof(show), value));
	}
}

static int
key_timeout(struct parse *p, const struct keyword *kw, const char *value,
    struct error *err)
{
	long long sec;
	int rc;

	if ((rc = config_parse_duration(value, &sec, err)) != ST_OK) {
		error_prefix(err, "%s:%zu: %s", p->name, p->line, kw->name);
		return rc;
	}
	if (sec < TIMEOUT_MIN || sec > TIMEOUT_MAX)
		return perr(p, err, "%s: %lld seconds is out of range "
		    "(%d to %d)", kw->name, sec, TIMEOUT_MIN, TIMEOUT_MAX);
	p->cfg->timeout = (int)sec;
	return ST_OK;
}

/* Queue durations: used as given, 0 included (no silent minimum). */
static int
key_duration(struct parse *p, const struct keyword *kw, const char *value,
    struct error *err)
{
	long long sec;
	int rc;

	if ((rc = config_parse_duration(value, &sec, err)) != ST_OK) {
		error_prefix(err, "%s:%zu: %s", p->name, p->line, kw->name);
		return rc;
	}
	if (sec > DURATION_MAX)
		return perr(p, err, "%s: %lld seconds is more than a year",
		    kw->name, sec);
	*(long long *)(void *)((char *)p->cfg + kw->off) = sec;
	return ST_OK;
}

/*
 * "100/1h" -> max 100, period 3600. Parsed here, not in ratelimit.c,
 * which only applies the policy: config.c calls nothing of it.
 */
static int
parse_rate_rule(const char *value, struct rate_rule *rule, struct error *err)
{
	char count[32], printable[64];
	const char *slash = strchr(value, '/'), *errstr;
	size_t n;

	/* The value is untrusted text: printable sanitised, and bounded. */
	log_sanitize(printable, sizeof(printable), value, strlen(value));
	if (slash == NULL || (n = (size_t)(slash - value)) == 0 ||
	    n >= sizeof(count))
		return error_set(err, ST_CONFIG, "expected N/period (for "
		    "example 100/1h), got '%s'", printable);
	memcpy(count, value, n);
	count[n] = '\0';
	rule->max = (unsigned int)strtonum(count, 1, 1000000000, &errstr);
	if (errstr != NULL)
		return error_set(err, ST_CONFIG, "rate limit count in '%s' is "
		    "%s", printable, errstr);
	if (config_parse_duration(slash + 1, &rule->period, err) != ST_OK)
		return err->status;
	if (rule->period <= 0)
		return error_set(err, ST_CONFIG, "rate limit period must be "
		    "positive");
	return ST_OK;
}

/*
 * A size in bytes with an optional binary unit k, M or G (the spool
 * limit: MaxMessageSize). 0 is allowed and means no limit.
 */
static int
parse_size(const char *value, long long *bytes, struct error *err)
{
	static const struct unit units[] = {
		{ 'k', 1024 }, { 'm', 1024 * 1024 },
		{ 'g', 1024 * 1024 * 1024 }, { 0, 0 }
	};
	char show[64];

	switch (parse_scaled(value, units, bytes)) {
	case 0:
		return ST_OK;
	case -1:
		return error_set(err, ST_CONFIG, "bad size '%s' (bytes, with "
		    "an optional unit k, M or G)",
		    shown(show, sizeof(show), value));
	default:
		return error_set(err, ST_CONFIG, "size '%s' too large",
		    shown(show, sizeof(show), value));
	}
}

static int
key_size(struct parse *p, const struct keyword *kw, const char *value,
    struct error *err)
{
	long long bytes = 0;	/* gcc -O2 warns: parse_size is inlined */
	int rc;

	if ((rc = parse_size(value, &bytes, err)) != ST_OK) {
		error_prefix(err, "%s:%zu: %s", p->name, p->line, kw->name);
		return rc;
	}
	*(long long *)(void *)((char *)p->cfg + kw->off) = bytes;
	return ST_OK;
}

/* RateLimit=N/period; empty or "none": no default limit. */
static int
key_rate(struct parse *p, const struct keyword *kw, const char *value,
    struct error *err)
{
	if (value[0] == '\0' || strcasecmp(value, "none") == 0) {
		memset(&p->cfg->rate.deflt, 0, sizeof(p->cfg->rate.deflt));
		return ST_OK;
	}
	if (parse_rate_rule(value, &p->cfg->rate.deflt, err) != ST_OK) {
		error_prefix(err, "%s:%zu: %s", p->name, p->line, kw->name);
		return err->status;
	}
	return ST_OK;
}

/* RateLimitUser=login:N/period, once per user; the last one wins. */
static int
key_rate_user(struct parse *p, const struct keyword *kw, const char *value,
    struct error *err)
{
	struct config *cfg = p->cfg;
	const char *colon = strchr(value, ':');
	size_t n = colon != NULL ? (size_t)(colon - value) : 0, i;

	if (n == 0 || n >= sizeof(cfg->rate.user[0].login))
		return perr(p, err, "%s: expected login:N/period", kw->name);
	for (i = 0; i < cfg->rate.nuser; i++)
		if (strncmp(cfg->rate.user[i].login, value, n) == 0 &&
		    cfg->rate.user[i].login[n] == '\0')
			break;
	if (i == RATE_USERS_MAX)
		return perr(p, err, "%s: more than %d users", kw->name,
		    RATE_USERS_MAX);
	memcpy(cfg->rate.user[i].login, value, n);
	cfg->rate.user[i].login[n] = '\0';
	if (parse_rate_rule(colon + 1, &cfg->rate.user[i].rule, err) !=
	    ST_OK) {
		error_prefix(err, "%s:%zu: %s", p->name, p->line, kw->name);
		return err->status;
	}
	if (i == cfg->rate.nuser)
		cfg->rate.nuser++;
	return ST_OK;
}

/* RateLimitExempt=login, login ... (replaces the default "root"). */
static int
key_rate_exempt(struct parse *p, const struct keyword *kw, const char *value,
    struct error *err)
{
	struct config *cfg = p->cfg;
	const char *s = value;

	cfg->rate.nexempt = 0;
	cfg->rate.exempt_set = 1;
	while (*s != '\0') {
		size_t n;

		s += strspn(s, ", \t");
		if ((n = strcspn(s, ", \t")) == 0)
			break;
		if (n >= sizeof(cfg->rate.exempt[0]) ||
		    cfg->rate.nexempt == RATE_USERS_MAX)
			return perr(p, err, "%s: login too long or too many",
			    kw->name);
		memcpy(cfg->rate.exempt[cfg->rate.nexempt], s, n);
		cfg->rate.exempt[cfg->rate.nexempt++][n] = '\0';
		s += n;
	}
	return ST_OK;
}

void
config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	(void)strlcpy(cfg->path, POSTINO_CONFFILE, sizeof(cfg->path));
	(void)strlcpy(cfg->hub_host, "mailhub", sizeof(cfg->hub_host));
	(void)strlcpy(cfg->hub_port, "25", sizeof(cfg->hub_port));
	(void)strlcpy(cfg->remote_port, "25", sizeof(cfg->remote_port));
	cfg->address_family = AF_UNSPEC;
	(void)strlcpy(cfg->tls_cert, "/etc/ssl/certs/ssmtp.pem",
	    sizeof(cfg->tls_cert));
	(void)strlcpy(cfg->revaliases, POSTINO_REVALIASES,
	    sizeof(cfg->revaliases));
	(void)strlcpy(cfg->aliases_file, "/etc/aliases",
	    sizeof(cfg->aliases_file));
	(void)strlcpy(cfg->queue_dir, POSTINO_QUEUEDIR,
	    sizeof(cfg->queue_dir));
	(void)strlcpy(cfg->mailname_path, POSTINO_MAILNAME,
	    sizeof(cfg->mailname_path));
	cfg->tls = TLS_NONE;
	cfg->auth_method = AUTH_BEST;
	cfg->tls_verify = 1;
	cfg->timeout = 30;
	cfg->retry_interval = 60;
	cfg->max_retry_interval = 3600;
	cfg->queue_lifetime = 5 * 86400;
	cfg->hub_backoff = 60;
	cfg->max_message_size = MAX_MESSAGE_SIZE_DEFAULT;
}

static const struct keyword *
keyword_find(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
		if (strcasecmp(key, keywords[i].name) == 0)
			return &keywords[i];
	return NULL;
}

static int
is_blank(int c)
{
	return c == ' ' || c == '\t';
}

/* Trim spaces and tabs on both ends of [*s, *s + *len). */
static void
trim(const char **s, size_t *len)
{
	while (*len > 0 && is_blank((*s)[0])) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_blank((*s)[*len - 1]))
		(*len)--;
}

/* No NUL, CR or other control byte inside a value (tabs are fine). */
static int
value_clean(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (((unsigned char)s[i] < ' ' && s[i] != '\t') ||
		    s[i] == 0x7f)
			return 0;
	return 1;
}

/*
 * Blanks then '#' start a comment: ssmtp cut every value at its first
 * blank, so "AuthUser=me # my account" never reached it as data, and
 * real files rely on it. A '#' with no blank before it stays data, so a
 * password holding '#' still works. Returns the length without it.
 */
static size_t
cut_comment(const char *s, size_t len)
{
	size_t i;

	for (i = 1; i < len; i++)
		if (s[i] == '#' && is_blank(s[i - 1]))
			return i - 1;
	return len;
}

/*
 * A line without '=': ssmtp skipped it, and real files hold prose such
 * as "install ssmtp and mailx". A known key followed by something else
 * ("mailhub:host", "AuthPass[secret]", "UseTLS YES") is a mistyped
 * setting that would change where mail goes or what it sends: refused.
 * The line is not quoted: it may be a password on a line of its own.
 */
static int
stray_line(struct parse *p, const char *s, size_t len, struct error *err)
{
	const struct keyword *kw;
	char key[KEY_MAX];
	size_t klen = 0;

	while (klen < len && (isalnum((unsigned char)s[klen]) ||
	    s[klen] == '_'))
		klen++;
	if (klen > 0 && klen < sizeof(key)) {
		memcpy(key, s, klen);
		key[klen] = '\0';
		if ((kw = keyword_find(key)) != NULL)
			return perr(p, err, "%s: expected '=' after the key "
			    "name (%s=value)", kw->name, kw->name);
	}
	pwarn(p, p->line, "line without '=' skipped");
	return ST_OK;
}

static int
parse_line(struct parse *p, const char *s, size_t len, struct error *err)
{
	const struct keyword *kw;
	const char *eq, *val;
	char key[KEY_MAX], show[KEY_MAX], value[VALUE_MAX];
	size_t klen, vlen;
	int rc;

	if (len > 0 && s[len - 1] == '\r')
		len--;
	trim(&s, &len);
	if (len == 0 || s[0] == '#')
		return ST_OK;
	len = cut_comment(s, len);
	trim(&s, &len);
	if ((eq = memchr(s, '=', len)) == NULL)
		return stray_line(p, s, len, err);
	klen = (size_t)(eq - s);
	val = eq + 1;
	vlen = len - klen - 1;
	trim(&s, &klen);
	trim(&val, &vlen);
	if (klen == 0)
		return perr(p, err, "expected key=value (no key)");
	if (klen >= sizeof(key) || !value_clean(s, klen))
		kw = NULL;
	else {
		memcpy(key, s, klen);
		key[klen] = '\0';
		kw = keyword_find(key);
	}
	if (kw == NULL) {
		pwarn(p, p->line, "unknown key '%s' ignored",
		    log_sanitize(show, sizeof(show), s, klen));
		return ST_OK;
	}
	if (vlen >= sizeof(value))
		return perr(p, err, "%s: value too long", kw->name);
	if (!value_clean(val, vlen))
		return perr(p, err, "%s: control character in value",
		    kw->name);
	memcpy(value, val, vlen);
	value[vlen] = '\0';
	rc = kw->set(p, kw, value, err);
	explicit_bzero(value, sizeof(value));	/* it may be a password */
	if (rc == ST_OK)
		note_line(p, kw);
	return rc;
}

/*
 * A bearer AuthMethod needs AuthUser (the mailbox) and one source of
 * tokens: AuthTokenFile, or OAuthTokenURL with OAuthClientID.
 */
static int
resolve_oauth(struct parse *p, struct error *err)
{
	const struct config *cfg = p->cfg;
	const char *why = NULL;
	int bearer = cfg->auth_method == AUTH_XOAUTH2 ||
	    cfg->auth_method == AUTH_OAUTHBEARER;
	int file = cfg->auth_token_file[0] != '\0';
	int url = cfg->oauth_token_url[0] != '\0';

	if (!bearer && (file || url))
		why = "AuthTokenFile and OAuthTokenURL need "
		    "AuthMethod=XOAUTH2 or OAUTHBEARER";
	else if (bearer && cfg->auth_user[0] == '\0')
		why = "AuthMethod=XOAUTH2/OAUTHBEARER needs AuthUser (the "
		    "mailbox the token is for)";
	else if (bearer && file && url)
		why = "AuthTokenFile and OAuthTokenURL are both set; use one";
	else if (bearer && !file && !url)
		why = "AuthMethod=XOAUTH2/OAUTHBEARER needs AuthTokenFile or "
		    "OAuthTokenURL";
	else if (url && cfg->oauth_client_id[0] == '\0')
		why = "OAuthTokenURL needs OAuthClientID";
	if (why != NULL)
		return error_set(err, ST_CONFIG, "%s: %s", p->name, why);
	return ST_OK;
}

/* Interactions and cross-key checks, once the whole file is read. */
static int
resolve(struct parse *p, struct error *err)
{
	struct config *cfg = p->cfg;

	/*
	 * Only a UseTLS=NO after UseSTARTTLS=YES reads differently from
	 * ssmtp, which turned TLS off there; we keep STARTTLS, and say so.
	 * "UseTLS=NO" then "UseSTARTTLS=YES" means STARTTLS to both.
	 */
	if (p->use_starttls == 1) {
		cfg->tls = TLS_STARTTLS;
		if (!p->ssmtp_starttls)
			pwarn(p, p->starttls_cleared, "UseTLS=NO after "
			    "UseSTARTTLS=YES ignored (ssmtp turned TLS off "
			    "here): STARTTLS is used");
	} else if (p->use_tls == 1)
		cfg->tls = TLS_IMPLICIT;
	else
		cfg->tls = TLS_NONE;
	if (cfg->tls_key[0] == '\0')
		(void)strlcpy(cfg->tls_key, cfg->tls_cert,
		    sizeof(cfg->tls_key));
	if (cfg->use_tls_cert && cfg->tls_cert[0] == '\0') {
		p->line = p->use_tls_cert_line;
		return perr(p, err, "UseTLSCert=YES needs TLSCert");
	}
	if (p->pass_line != 0 && p->pass_file_line != 0) {
		p->line = p->pass_line > p->pass_file_line ? p->pass_line :
		    p->pass_file_line;
		return perr(p, err,
		    "AuthPass and AuthPassFile are both set; use one");
	}
	return resolve_oauth(p, err);
}

static int
parse_text(struct config *cfg, const char *name, const char *buf,
    size_t len, config_warn_fn *warn, void *warn_arg, size_t *pass_file_line,
    struct error *err)
{
	struct parse p;
	const char *s = buf, *end = buf + len, *nl;
	int rc;

	config_defaults(cfg);
	(void)strlcpy(cfg->path, name, sizeof(cfg->path));
	memset(&p, 0, sizeof(p));
	p.cfg = cfg;
	p.name = name;
	p.warn = warn;
	p.warn_arg = warn_arg;
	p.use_tls = p.use_starttls = -1;
	/* A last line without a newline is a line like any other. */
	while (s < end) {
		p.line++;
		if ((nl = memchr(s, '\n', (size_t)(end - s))) == NULL)
			nl = end;
		if ((rc = parse_line(&p, s, (size_t)(nl - s), err)) != ST_OK)
			return rc;
		s = nl + 1;
	}
	if (pass_file_line != NULL)
		*pass_file_line = p.pass_file_line;
	return resolve(&p, err);
}

int
config_parse_buffer(struct config *cfg, const char *name, const char *buf,
    size_t len, config_warn_fn *warn, void *warn_arg, struct error *err)
{
	return parse_text(cfg, name, buf, len, warn, warn_arg, NULL, err);
}

/*
 * Open path for config_read_file: O_NONBLOCK, so that a FIFO left at the
 * path cannot hang a sender in open(2), then only a regular file. -1 with
 * errno set, or ENOTSUP standing for "not a regular file".
 */
static int
open_regular(const char *path, struct stat *st)
{
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1)
		return -1;
	if (fstat(fd, st) == -1) {
		(void)close(fd);
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		(void)close(fd);
		errno = ENOTSUP;
		return -1;
	}
	return fd;
}

/*
 * Read fd into ft, at most max bytes (EFBIG beyond). The buffer is sized
 * from the file, one byte more to see EOF; a file that grows meanwhile
 * gets one buffer of max + 1, not realloc(): an old copy may hold a
 * secret, so it is wiped. -1 with errno set; nothing is left allocated.
 */
static int
read_fd(int fd, const struct stat *st, size_t max, struct file_text *ft)
{
	char *bigger;
	ssize_t n;
	int saved;

	ft->cap = st->st_size > 0 && (uintmax_t)st->st_size < max ?
	    (size_t)st->st_size + 1 : 4096;
	if (ft->cap > max + 1)
		ft->cap = max + 1;
	if ((ft->buf = malloc(ft->cap)) == NULL)
		return -1;
	for (;;) {
		if (ft->len == ft->cap) {
			if (ft->cap > max) {
				errno = EFBIG;
				goto fail;
			}
			if ((bigger = malloc(max + 1)) == NULL)
				goto fail;
			memcpy(bigger, ft->buf, ft->len);
			freezero(ft->buf, ft->cap);
			ft->buf = bigger;
			ft->cap = max + 1;
		}
		n = read(fd, ft->buf + ft->len, ft->cap - ft->len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto fail;
		if (n == 0)
			return 0;
		ft->len += (size_t)n;
	}
fail:
	saved = errno;
	config_file_free(ft);
	errno = saved;
	return -1;
}

int
config_read_file(const char *path, size_t max, int flags,
    struct file_text *ft, struct error *err)
{
	struct stat st;
	int fd, rc = 0;

	memset(ft, 0, sizeof(*ft));
	if ((fd = open_regular(path, &st)) == -1 && errno == ENOENT &&
	    (flags & FT_MISSING_OK))
		return ST_OK;
	if (fd != -1) {
		rc = read_fd(fd, &st, max, ft);
		(void)close(fd);
	}
	if (fd == -1 || rc == -1) {
		if (errno == ENOTSUP)
			return error_set(err, ST_CONFIG, "%s: not a regular "
			    "file", path);
		if (errno != EFBIG)
			return error_set(err, ST_CONFIG, "%s: %s", path,
			    strerror(errno));
		if (max % (1024 * 1024) == 0)
			return error_set(err, ST_CONFIG, "%s: file too large "
			    "(over %zu MiB)", path, max / (1024 * 1024));
		return error_set(err, ST_CONFIG, "%s: file too large (over "
		    "%zu bytes)", path, max);
	}
	return ST_OK;
}

void
config_file_free(struct file_text *ft)
{
	if (ft->buf != NULL)
		freezero(ft->buf, ft->cap);
	memset(ft, 0, sizeof(*ft));
}

/* The password is the first line of AuthPassFile. */
static int
read_pass_file(struct config *cfg, size_t line, struct error *err)
{
	enum { PASS_FILE_MAX = 4096 };
	struct file_text ft;
	struct error e;
	size_t n;

	if (config_read_file(cfg->auth_pass_file, PASS_FILE_MAX, 0, &ft,
	    &e) != ST_OK)
		return error_set(err, ST_CONFIG, "%s:%zu: AuthPassFile: "
		    "cannot read %s", cfg->path, line, e.text);
	for (n = 0; n < ft.len && ft.buf[n] != '\n' && ft.buf[n] != '\r'; n++)
		continue;
	if (memchr(ft.buf, '\0', n) != NULL || n >= sizeof(cfg->auth_pass)) {
		config_file_free(&ft);
		return error_set(err, ST_CONFIG, "%s:%zu: AuthPassFile: %s: "
		    "the first line must be the password (at most %zu "
		    "bytes, no NUL)", cfg->path, line, cfg->auth_pass_file,
		    sizeof(cfg->auth_pass) - 1);
	}
	explicit_bzero(cfg->auth_pass, sizeof(cfg->auth_pass));
	memcpy(cfg->auth_pass, ft.buf, n);
	config_file_free(&ft);
	return ST_OK;
}

/*
 * A file that holds a password must not be readable by every user: the
 * whole point of the setgid group is that it need not be.
 */
static int
secret_file_private(const char *path, const char *what, struct error *err)
{
	struct stat st;

	if (stat(path, &st) == -1)
		return ST_OK;	/* reading it will say what is wrong */
	if ((st.st_mode & (S_IROTH | S_IWOTH)) != 0)
		return error_set(err, ST_CONFIG, "%s holds %s but is %s by "
		    "every user (mode %04o): run chmod o-rw %s (for example "
		    "mode 0640, owner root, group mail)", path, what,
		    (st.st_mode & S_IWOTH) ? "writable" : "readable",
		    (unsigned)(st.st_mode & 07777), path);
	return ST_OK;
}

int
config_load(struct config *cfg, const char *path, config_warn_fn *warn,
    void *warn_arg, struct error *err)
{
	struct file_text ft;
	size_t pass_file_line = 0;
	int rc;

	config_defaults(cfg);
	if ((rc = config_read_file(path, CONFIG_FILE_MAX, 0, &ft, err)) !=
	    ST_OK)
		return rc;
	rc = parse_text(cfg, path, ft.buf, ft.len, warn, warn_arg,
	    &pass_file_line, err);
	config_file_free(&ft);	/* it holds AuthPass */
	if (rc == ST_OK && cfg->auth_pass[0] != '\0')
		rc = secret_file_private(path, "AuthPass", err);
	if (rc == ST_OK && cfg->auth_pass_file[0] != '\0' &&
	    (rc = secret_file_private(cfg->auth_pass_file, "AuthPassFile",
	    err)) == ST_OK)
		rc = read_pass_file(cfg, pass_file_line, err);
	if (rc == ST_OK && cfg->auth_token_file[0] != '\0')
		rc = secret_file_private(cfg->auth_token_file,
		    "AuthTokenFile", err);
	if (rc == ST_OK && cfg->oauth_secret_file[0] != '\0')
		rc = secret_file_private(cfg->oauth_secret_file,
		    "OAuthClientSecretFile", err);
	if (rc == ST_OK && cfg->oauth_refresh_file[0] != '\0')
		rc = secret_file_private(cfg->oauth_refresh_file,
		    "OAuthRefreshTokenFile", err);
	return rc;
}

/* One finding of config_check: "file:line: text", or "file: text". */
static void
finding(const struct config *cfg, size_t line, config_warn_fn *warn,
    void *arg, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
finding(const struct config *cfg, size_t line, config_warn_fn *warn,
    void *arg, const char *fmt, ...)
{
	char text[ERR_MAX], full[ERR_MAX + PATH_MAX + 32];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (line != 0)
		(void)snprintf(full, sizeof(full), "%s:%zu: %s", cfg->path,
		    line, text);
	else
		(void)snprintf(full, sizeof(full), "%s: %s", cfg->path, text);
	warn(arg, full);
}

/*
 * The group a sender reads the client key with: that of a set-group-ID
 * binary; (gid_t)-1 without one (a plain build: the sender's own ids).
 */
static gid_t
install_group(void)
{
	struct stat st;

	if (stat("/proc/self/exe", &st) == 0 && (st.st_mode & S_ISGID))
		return st.st_gid;
	return (gid_t)-1;
}

/*
 * Can senders read it? check runs as root or the admin, for whom
 * access(2) says yes to almost anything, so the mode bits too: CA files
 * are read as the sender (o+r, o+x for a directory); a client key and
 * certificate with the group, so g+r for the install's group will do.
 * NULL when they can, else why not.
 */
static const char *
senders_cannot_read(const char *path, int dir, int with_group, char *why,
    size_t len)
{
	mode_t need = dir ? (S_IROTH | S_IXOTH) : S_IROTH;
	mode_t gneed = dir ? (S_IRGRP | S_IXGRP) : S_IRGRP;
	struct stat st;
	gid_t g = with_group ? install_group() : (gid_t)-1;

	if (access(path, dir ? R_OK | X_OK : R_OK) == -1)
		return strerror(errno);
	if (stat(path, &st) == -1)
		return strerror(errno);
	if ((st.st_mode & need) == need)
		return NULL;
	if (g != (gid_t)-1 && st.st_gid == g && (st.st_mode & gneed) == gneed)
		return NULL;
	(void)snprintf(why, len, "mode %04o: a sender that is not its owner "
	    "cannot read it%s", (unsigned)(st.st_mode & 07777), with_group ?
	    (g != (gid_t)-1 ? " (make it readable by postino's group)" : "") :
	    " (postino reads it as the sender, without its group)");
	return why;
}

static int
check_file(const struct config *cfg, const char *key, const char *path,
    size_t line, int dir, int with_group, config_warn_fn *warn, void *arg)
{
	char why[160];
	const char *bad;

	if (path[0] == '\0' ||
	    (bad = senders_cannot_read(path, dir, with_group, why,
	    sizeof(why))) == NULL)
		return 0;
	finding(cfg, line, warn, arg, "%s: %s: %s: the first TLS connection "
	    "will fail and mail will wait in the queue", key, path, bad);
	return 1;
}

/* An OAuth secret file: missing, or not readable by senders with the group. */
static int
check_secret(const struct config *cfg, const char *key, const char *path,
    config_warn_fn *warn, void *arg)
{
	char why[160];
	const char *bad;

	if (path[0] == '\0' ||
	    (bad = senders_cannot_read(path, 0, 1, why, sizeof(why))) == NULL)
		return 0;
	finding(cfg, 0, warn, arg, "%s: %s: %s: no OAuth token can be had "
	    "and mail will wait in the queue", key, path, bad);
	return 1;
}

int
config_check(const struct config *cfg, config_warn_fn *warn, void *arg)
{
	int n = 0;

	if (cfg->auth_user[0] != '\0' && cfg->tls == TLS_NONE &&
	    !cfg->auth_allow_plaintext) {
		finding(cfg, cfg->line.auth_user, warn, arg, "AuthUser is set "
		    "but the connection to the hub is not encrypted: postino "
		    "will not send the password in clear, so mail will wait "
		    "in the queue; set UseSTARTTLS=YES (or UseTLS=YES), or "
		    "AuthAllowPlaintext=YES");
		n++;
	}
	/* OAuth secrets: read with the group, like a client key. */
	n += check_secret(cfg, "AuthTokenFile", cfg->auth_token_file, warn,
	    arg);
	n += check_secret(cfg, "OAuthClientSecretFile", cfg->oauth_secret_file,
	    warn, arg);
	n += check_secret(cfg, "OAuthRefreshTokenFile",
	    cfg->oauth_refresh_file, warn, arg);
	if (cfg->tls == TLS_NONE)
		return n > 0 ? ST_CONFIG : ST_OK;
	n += check_file(cfg, "TLS_CA_File", cfg->tls_ca_file,
	    cfg->line.tls_ca_file, 0, 0, warn, arg);
	n += check_file(cfg, "TLS_CA_Dir", cfg->tls_ca_dir,
	    cfg->line.tls_ca_dir, 1, 0, warn, arg);
	if (cfg->use_tls_cert) {
		n += check_file(cfg, "TLSCert", cfg->tls_cert,
		    cfg->line.tls_cert, 0, 1, warn, arg);
		/* TLSKey defaults to TLSCert: one file, told once. */
		if (strcmp(cfg->tls_key, cfg->tls_cert) != 0)
			n += check_file(cfg, "TLSKey", cfg->tls_key,
			    cfg->line.tls_key, 0, 1, warn, arg);
	}
	return n > 0 ? ST_CONFIG : ST_OK;
}

void
config_free(struct config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->add_header_count && i < ADDHEADER_MAX; i++)
		free(cfg->add_header[i]);
	explicit_bzero(cfg, sizeof(*cfg));
}
