/*
 * alias.c: who a message is from and where it goes. The revaliases
 * file (ssmtp semantics, spec/anchors.md 1b), the mail domain and host
 * name, the envelope sender (revaliases > -f > login@domain, then
 * FromLineOverride), local recipients and Root=, and the route (a
 * revaliases entry may name its own hub and port).
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "postino.h"

#define REVALIASES_MAX	(1024 * 1024)	/* a bigger file is a mistake */
#define SYSTEM_UID_MAX	999		/* ssmtp's MAXSYSUID */

/* One field of a revaliases line, not NUL-terminated. */
struct field {
	const char	*s;
	size_t		 len;
};

static int
is_sep(int c)
{
	return c == ':' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Split s[0..len) into at most max fields on ':', blanks, CR and LF,
 * skipping empty fields as ssmtp's strtok did. A field opening with '['
 * runs to its ']' so that "[::1]" stays whole (our extension). Returns
 * the number of fields, or -1 for an unclosed or ill-ended '['.
 */
static int
split_fields(const char *s, size_t len, struct field *f, int max)
{
	const char *end = s + len, *close;
	int n = 0;

	while (n < max) {
		while (s < end && is_sep((unsigned char)*s))
			s++;
		if (s == end)
			break;
		f[n].s = s;
		if (*s == '[') {
			close = memchr(s, ']', (size_t)(end - s));
			if (close == NULL || (close + 1 < end &&
			    !is_sep((unsigned char)close[1])))
				return -1;
			s = close + 1;
		} else {
			while (s < end && !is_sep((unsigned char)*s))
				s++;
		}
		f[n].len = (size_t)(s - f[n].s);
		n++;
	}
	return n;
}

/* Bytes an SMTP path or host must never hold. */
static int
field_clean(const struct field *f)
{
	size_t i;

	for (i = 0; i < f->len; i++) {
		unsigned char c = (unsigned char)f->s[i];

		if (c < ' ' || c == 0x7f || c == '<' || c == '>')
			return 0;
	}
	return 1;
}

static int
field_copy(char *dst, size_t dstlen, const struct field *f)
{
	if (f->len == 0 || f->len >= dstlen || !field_clean(f))
		return -1;
	memcpy(dst, f->s, f->len);
	dst[f->len] = '\0';
	return 0;
}

/* The same rule as config.c's ports: 1..65535 or a service name. */
static int
port_ok(const char *port)
{
	const char *errstr, *s;

	if (port[0] >= '0' && port[0] <= '9') {
		(void)strtonum(port, 1, 65535, &errstr);
		return errstr == NULL;
	}
	for (s = port; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
			return 0;
	return port[0] != '\0';
}

/* A matching line: address, then optionally hub, then port. */
static int
apply_match(const char *name, size_t line, const char *s, size_t len,
    struct revalias *ra, struct error *err)
{
	struct field f[3];
	struct field hub;
	char addr[ADDR_MAX], host[HOST_MAX], port[PORT_MAX];
	int n;

	if ((n = split_fields(s, len, f, 3)) == -1)
		return error_set(err, ST_CONFIG, "%s:%zu: bad hub (unclosed "
		    "'[')", name, line);
	if (n == 0 || field_copy(addr, sizeof(addr), &f[0]) == -1)
		return error_set(err, ST_CONFIG, "%s:%zu: bad address", name,
		    line);
	host[0] = port[0] = '\0';
	if (n >= 2) {
		/* "[::1]" names the host ::1, as MailHub=[::1] does. */
		hub = f[1];
		if (hub.len >= 2 && hub.s[0] == '[') {
			hub.s++;
			hub.len -= 2;
		}
		if (field_copy(host, sizeof(host), &hub) == -1)
			return error_set(err, ST_CONFIG, "%s:%zu: bad hub",
			    name, line);
	}
	if (n == 3 && (field_copy(port, sizeof(port), &f[2]) == -1 ||
	    !port_ok(port)))
		return error_set(err, ST_CONFIG, "%s:%zu: bad port", name,
		    line);
	ra->found = 1;
	(void)strlcpy(ra->address, addr, sizeof(ra->address));
	/* A later match keeps what it does not name (ssmtp's globals). */
	if (host[0] != '\0')
		(void)strlcpy(ra->hub_host, host, sizeof(ra->hub_host));
	if (port[0] != '\0')
		(void)strlcpy(ra->hub_port, port, sizeof(ra->hub_port));
	return ST_OK;
}

static int
parse_revaliases(const char *name, const char *buf, size_t len,
    const char *login, struct revalias *ra, struct error *err)
{
	const char *s = buf, *end = buf + len, *nl, *hash, *colon;
	size_t line = 0, llen, loginlen;
	int rc;

	memset(ra, 0, sizeof(*ra));
	/* An unknown login matches nothing (not even a line ":x"). */
	if (login == NULL || (loginlen = strlen(login)) == 0)
		return ST_OK;
	for (; s < end; s = nl + 1) {
		line++;
		if ((nl = memchr(s, '\n', (size_t)(end - s))) == NULL)
			nl = end;
		llen = (size_t)(nl - s);
		/* ssmtp: '#' anywhere starts a comment. */
		if ((hash = memchr(s, '#', llen)) != NULL)
			llen = (size_t)(hash - s);
		if ((colon = memchr(s, ':', llen)) == NULL)
			continue;
		/* The login field is compared as is: "root " is not "root". */
		if ((size_t)(colon - s) != loginlen ||
		    memcmp(s, login, loginlen) != 0)
			continue;
		rc = apply_match(name, line, colon + 1,
		    llen - loginlen - 1, ra, err);
		if (rc != ST_OK)
			return rc;
	}
	return ST_OK;
}

int
alias_parse_revaliases(const char *buf, size_t len, const char *login,
    struct revalias *ra, struct error *err)
{
	return parse_revaliases("revaliases", buf, len, login, ra, err);
}

/* The whole file in memory; NULL with errno set (EFBIG: too large). */
static char *
slurp(int fd, size_t max, size_t *lenp)
{
	char *buf, *bigger;
	size_t len = 0, cap = 4096;
	ssize_t n;
	int saved;

	if ((buf = malloc(cap)) == NULL)
		return NULL;
	for (;;) {
		if (len == cap) {
			if (cap > max) {
				free(buf);
				errno = EFBIG;
				return NULL;
			}
			cap *= 2;
			if ((bigger = realloc(buf, cap)) == NULL) {
				free(buf);
				return NULL;
			}
			buf = bigger;
		}
		n = read(fd, buf + len, cap - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			saved = errno;
			free(buf);
			errno = saved;
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	*lenp = len;
	return buf;
}

int
alias_load_revaliases(const char *path, const char *login,
    struct revalias *ra, struct error *err)
{
	char *buf;
	size_t len = 0;
	int fd, rc;

	memset(ra, 0, sizeof(*ra));
	if (path == NULL || path[0] == '\0')
		return ST_OK;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		/* ssmtp: no file, no aliases. */
		if (errno == ENOENT)
			return ST_OK;
		return error_set(err, ST_CONFIG, "%s: %s", path,
		    strerror(errno));
	}
	buf = slurp(fd, REVALIASES_MAX, &len);
	if (buf == NULL) {
		rc = error_set(err, ST_CONFIG, "%s: %s", path,
		    errno == EFBIG ? "file too large (over 1 MiB)" :
		    strerror(errno));
		(void)close(fd);
		return rc;
	}
	(void)close(fd);
	rc = parse_revaliases(path, buf, len, login, ra, err);
	free(buf);
	return rc;
}

static void
system_hostname(char *buf, size_t len)
{
	char name[HOST_MAX];

	if (gethostname(name, sizeof(name)) == -1 || name[0] == '\0')
		(void)strlcpy(name, "localhost", sizeof(name));
	name[sizeof(name) - 1] = '\0';
	(void)strlcpy(buf, name, len);
}

/* First line of /etc/mailname (Debian Policy 11.6), trimmed; 0 if none. */
static int
read_mailname(const char *path, char *buf, size_t len)
{
	char text[HOST_MAX + 2];
	ssize_t n;
	size_t i, start = 0;
	int fd;

	if (path == NULL || path[0] == '\0' ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	n = read(fd, text, sizeof(text) - 1);
	(void)close(fd);
	if (n <= 0)
		return 0;
	text[n] = '\0';
	while (text[start] == ' ' || text[start] == '\t')
		start++;
	for (i = start; (unsigned char)text[i] > ' ' && text[i] != 0x7f; i++)
		continue;
	/* A name that runs to the end of a full buffer was cut. */
	if (i == start || i == sizeof(text) - 1)
		return 0;
	text[i] = '\0';
	(void)strlcpy(buf, text + start, len);
	return 1;
}

void
alias_domain(const struct config *cfg, char *buf, size_t len)
{
	if (len == 0)
		return;
	if (cfg->rewrite_domain[0] != '\0')
		(void)strlcpy(buf, cfg->rewrite_domain, len);
	else if (cfg->hostname[0] != '\0')
		(void)strlcpy(buf, cfg->hostname, len);
	else if (!read_mailname(cfg->mailname_path, buf, len))
		system_hostname(buf, len);
}

void
alias_hostname(const struct config *cfg, char *buf, size_t len)
{
	if (len == 0)
		return;
	if (cfg->hostname[0] != '\0')
		(void)strlcpy(buf, cfg->hostname, len);
	else
		system_hostname(buf, len);
}

int
alias_qualify(char *addr, size_t len, const char *domain, struct error *err)
{
	size_t alen = strlen(addr);

	/* The null sender stays null; a domain is never rewritten. */
	if (alen == 0 || strchr(addr, '@') != NULL || domain == NULL ||
	    domain[0] == '\0')
		return ST_OK;
	if (alen + 1 + strlen(domain) >= len)
		return error_set(err, ST_DATA, "address too long after "
		    "adding @%s", domain);
	(void)strlcat(addr, "@", len);
	(void)strlcat(addr, domain, len);
	return ST_OK;
}

static int
copy_addr(char *out, size_t outlen, const char *addr, struct error *err)
{
	char show[64];

	if (strlcpy(out, addr, outlen) >= outlen) {
		out[0] = '\0';
		return error_set(err, ST_DATA, "address too long: %s...",
		    log_sanitize(show, sizeof(show), addr, strlen(addr)));
	}
	return ST_OK;
}

/* Copy, qualify and check one sender address ("" passes: null sender). */
static int
sender_out(const char *addr, const char *domain, char *out, size_t outlen,
    struct error *err)
{
	char show[ADDR_MAX];
	int rc;

	if ((rc = copy_addr(out, outlen, addr, err)) != ST_OK ||
	    (rc = alias_qualify(out, outlen, domain, err)) != ST_OK)
		return rc;
	if (out[0] != '\0' && !addr_is_safe(out)) {
		rc = error_set(err, ST_DATA, "bad sender address '%s'",
		    log_sanitize(show, sizeof(show), out, strlen(out)));
		out[0] = '\0';
	}
	return rc;
}

int
alias_default_sender(const struct config *cfg, const struct revalias *ra,
    const char *fsender, const char *login, const char *domain, char *out,
    size_t outlen, struct error *err)
{
	(void)cfg;
	/* revaliases is the administrator's policy: it beats -f. */
	if (ra != NULL && ra->found)
		return sender_out(ra->address, domain, out, outlen, err);
	if (fsender != NULL)
		return sender_out(fsender, domain, out, outlen, err);
	if (login == NULL || login[0] == '\0')
		return error_set(err, ST_DATA, "no login name for the sender");
	return sender_out(login, domain, out, outlen, err);
}

int
alias_final_sender(const struct config *cfg, const struct message *msg,
    const char *default_sender, const char *domain, char *out,
    size_t outlen, struct error *err)
{
	if (cfg->from_line_override && msg != NULL && msg->had_from &&
	    msg->from_addr[0] != '\0')
		return sender_out(msg->from_addr, domain, out, outlen, err);
	return copy_addr(out, outlen, default_sender, err);
}

/* ssmtp's rule for Root=: root itself, or a system account (uid < 1000). */
static int
is_system_account(const char *name)
{
	struct passwd pw, *res = NULL;
	char buf[16384];

	if (strcmp(name, "root") == 0)
		return 1;
	if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return 0;
	return res->pw_uid <= SYSTEM_UID_MAX;
}

/* Is domain one of this host's own names? */
static int
is_local_domain(const char *domain, const char *hostname)
{
	const char *dot;
	size_t label;

	if (strcasecmp(domain, "localhost") == 0 ||
	    strcasecmp(domain, "localhost.localdomain") == 0)
		return 1;
	if (hostname[0] == '\0')
		return 0;
	if (strcasecmp(domain, hostname) == 0)
		return 1;
	/* "vm" when the host name is "vm.example.com". */
	if ((dot = strchr(hostname, '.')) == NULL)
		return 0;
	label = (size_t)(dot - hostname);
	return strlen(domain) == label &&
	    strncasecmp(domain, hostname, label) == 0;
}

int
alias_recipient(const struct config *cfg, const char *rcpt,
    const char *domain, const char *hostname, char *out, size_t outlen,
    struct error *err)
{
	char host[HOST_MAX], local[ADDR_MAX], show[ADDR_MAX];
	const char *at = strrchr(rcpt, '@');
	size_t llen;
	int rc;

	if (hostname == NULL || hostname[0] == '\0') {
		alias_hostname(cfg, host, sizeof(host));
		hostname = host;
	}
	if (at != NULL && !is_local_domain(at + 1, hostname)) {
		rc = copy_addr(out, outlen, rcpt, err);
		goto check;
	}
	llen = at != NULL ? (size_t)(at - rcpt) : strlen(rcpt);
	if (llen == 0)
		return error_set(err, ST_DATA, "empty recipient name");
	if (llen >= sizeof(local))
		return error_set(err, ST_DATA, "recipient name too long");
	memcpy(local, rcpt, llen);
	local[llen] = '\0';
	if (cfg->root[0] != '\0' && is_system_account(local))
		rc = copy_addr(out, outlen, cfg->root, err);
	else
		rc = copy_addr(out, outlen, local, err);
	if (rc == ST_OK)
		rc = alias_qualify(out, outlen, domain, err);
check:
	if (rc == ST_OK && !addr_is_safe(out)) {
		rc = error_set(err, ST_DATA, "bad recipient address '%s'",
		    log_sanitize(show, sizeof(show), out, strlen(out)));
		out[0] = '\0';
	}
	return rc;
}

void
alias_route(const struct config *cfg, const struct revalias *ra,
    struct route *route)
{
	int own = ra != NULL && ra->found;

	(void)strlcpy(route->host, own && ra->hub_host[0] != '\0' ?
	    ra->hub_host : cfg->hub_host, sizeof(route->host));
	(void)strlcpy(route->port, own && ra->hub_port[0] != '\0' ?
	    ra->hub_port : cfg->hub_port, sizeof(route->port));
}
