/*
 * sender.c: which senders a user may use (AllowedSendersFile) and what
 * SenderPolicy does with the others. The file holds one line per login,
 * in revaliases' spirit:
 *
 *	login: address, address, *@domain
 *	*: *@example.org
 *
 * '#' starts a comment; blanks around commas are allowed; the login "*"
 * is the line of everyone without a line of their own; the last matching
 * line wins. An entry is an address (local part exact, domain without
 * regard to ASCII case; a bare name gets the mail domain), "*@domain"
 * (any local part) or "*" (anything). A user's own revaliases address is
 * always allowed, and so is the null sender (bounces are from <>).
 * Nothing here reads the message: message.c asks sender_may_use through
 * msgopts, submit.c settles the envelope.
 */
#include <sys/types.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "postino.h"

#define ALLOWED_FILE_MAX	(1024 * 1024)

static int
is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* s[0..len) without outer blanks. */
static void
trim(const char **s, size_t *len)
{
	while (*len > 0 && is_blank((unsigned char)**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_blank((unsigned char)(*s)[*len - 1]))
		(*len)--;
}

/* One entry of a matching line, qualified with domain unless a pattern. */
static int
add_entry(struct sender_allow *a, const char *name, size_t line,
    const char *s, size_t len, const char *domain, struct error *err)
{
	char *dst;

	trim(&s, &len);
	if (len == 0)
		return ST_OK;
	if (a->n == SENDER_ALLOW_MAX)
		return error_set(err, ST_CONFIG, "%s:%zu: more than %d "
		    "addresses for one login", name, line, SENDER_ALLOW_MAX);
	dst = a->entry[a->n];
	if (len >= ADDR_MAX || memchr(s, ' ', len) != NULL ||
	    memchr(s, '\t', len) != NULL)
		return error_set(err, ST_CONFIG, "%s:%zu: not an address",
		    name, line);
	memcpy(dst, s, len);
	dst[len] = '\0';
	if (strcmp(dst, "*") != 0 && addr_qualify_local(dst, ADDR_MAX, domain,
	    err) != ST_OK) {
		error_prefix(err, "%s:%zu", name, line);
		err->status = ST_CONFIG;
		return ST_CONFIG;
	}
	a->n++;
	return ST_OK;
}

/* "login: a, b": the entries replace a's when the login is the one. */
static int
parse_line(struct sender_allow *a, const char *name, size_t line,
    const char *s, size_t len, const char *login, const char *domain,
    struct error *err)
{
	const char *colon = memchr(s, ':', len), *p, *comma;
	size_t klen, rest;
	int own;

	if (colon == NULL)
		return error_set(err, ST_CONFIG, "%s:%zu: expected "
		    "'login: address, ...'", name, line);
	p = s;
	klen = (size_t)(colon - s);
	trim(&p, &klen);
	own = klen == strlen(login) && memcmp(p, login, klen) == 0;
	if (!own && !(klen == 1 && p[0] == '*'))
		return ST_OK;
	/* Its own line beats "*", wherever they stand. */
	if (!own && a->found == 2)
		return ST_OK;
	a->found = own ? 2 : 1;
	a->n = 0;
	p = colon + 1;
	rest = len - (size_t)(p - s);
	while (rest > 0) {
		comma = memchr(p, ',', rest);
		klen = comma != NULL ? (size_t)(comma - p) : rest;
		if (add_entry(a, name, line, p, klen, domain, err) != ST_OK)
			return err->status;
		if (comma == NULL)
			break;
		rest -= klen + 1;
		p = comma + 1;
	}
	return ST_OK;
}

int
sender_parse_allowed(const char *name, const char *buf, size_t len,
    const char *login, const char *domain, struct sender_allow *a,
    struct error *err)
{
	const char *p = buf, *end = buf + len, *nl, *hash, *s;
	size_t line = 0, n;

	memset(a, 0, sizeof(*a));
	a->loaded = 1;
	while (p < end) {
		line++;
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if ((hash = memchr(p, '#', n)) != NULL)
			n = (size_t)(hash - p);
		s = p;
		trim(&s, &n);
		if (n > 0 && memchr(s, '\0', n) != NULL)
			return error_set(err, ST_CONFIG, "%s:%zu: NUL byte",
			    name, line);
		if (n > 0 && parse_line(a, name, line, s, n, login, domain,
		    err) != ST_OK)
			return err->status;
		p = nl != NULL ? nl + 1 : end;
	}
	return ST_OK;
}

int
sender_load_allowed(const char *path, const char *login, const char *domain,
    struct sender_allow *a, struct error *err)
{
	struct file_text ft;
	int rc;

	memset(a, 0, sizeof(*a));
	if (path == NULL || path[0] == '\0')
		return ST_OK;
	if (config_read_file(path, ALLOWED_FILE_MAX, 0, &ft, err) != ST_OK) {
		error_prefix(err, "AllowedSendersFile");
		return err->status;
	}
	rc = sender_parse_allowed(path, ft.buf, ft.len, login, domain, a, err);
	config_file_free(&ft);
	return rc;
}

/* Local part exact, domain without regard to ASCII case. */
static int
same_address(const char *a, const char *b)
{
	const char *da = strrchr(a, '@'), *db = strrchr(b, '@');

	if (da == NULL || db == NULL)
		return strcmp(a, b) == 0;
	return da - a == db - b && strncmp(a, b, (size_t)(da - a)) == 0 &&
	    strcasecmp(da, db) == 0;
}

static int
entry_matches(const char *entry, const char *addr)
{
	const char *at = strrchr(addr, '@');

	if (strcmp(entry, "*") == 0)
		return 1;
	if (strncmp(entry, "*@", 2) == 0)
		return at != NULL && strcasecmp(entry + 2, at + 1) == 0;
	return same_address(entry, addr);
}

int
sender_may_use(const struct sender_allow *a, const char *own,
    const char *addr)
{
	size_t i;

	if (addr[0] == '\0')
		return 1;	/* the null sender: bounces, DSNs */
	if (own != NULL && own[0] != '\0' && same_address(own, addr))
		return 1;
	for (i = 0; a != NULL && i < a->n; i++)
		if (entry_matches(a->entry[i], addr))
			return 1;
	return 0;
}

static int
own_address(const struct sender_allow *a, const struct revalias *rev,
    const char *login, const char *domain, char *out, size_t outlen,
    struct error *err)
{
	size_t i;

	if (rev != NULL && rev->found)
		return alias_default_sender(NULL, rev, NULL, login, domain,
		    out, outlen, err);
	for (i = 0; a != NULL && i < a->n; i++)
		if (a->entry[i][0] != '*')
			return alias_default_sender(NULL, NULL,
			    a->entry[i], login, domain, out, outlen, err);
	/* "*@example.org" only: the login at that domain. */
	for (i = 0; a != NULL && i < a->n; i++)
		if (strncmp(a->entry[i], "*@", 2) == 0)
			return alias_default_sender(NULL, NULL, login, login,
			    a->entry[i] + 2, out, outlen, err);
	return alias_default_sender(NULL, NULL, NULL, login, domain, out,
	    outlen, err);
}

int
sender_own(const struct sender_allow *a, const struct revalias *rev,
    const char *login, const char *domain, char *out, size_t outlen,
    struct error *err)
{
	if (own_address(a, rev, login, domain, out, outlen, err) != ST_OK)
		return err->status;
	return addr_qualify_local(out, outlen, domain, err);
}

const char *
sender_policy_name(enum sender_policy p)
{
	return p == SP_ALIGN ? "align" : p == SP_REFUSE ? "refuse" : "keep";
}

/* ------------------------------------------------------------------ -bv */

/* The -f argument, qualified; ST_DATA when it is no address. */
static int
verify_f(const struct caller *c, const char *arg, char *out, size_t len,
    struct error *err)
{
	char f[ADDR_MAX];

	if (addr_parse_one(arg, f, sizeof(f), err) != ST_OK ||
	    (f[0] != '\0' && !addr_is_safe(f)))
		return error_set(err, ST_DATA, "Invalid address");
	if (alias_default_sender(NULL, NULL, f, c->login, c->domain, out,
	    len, err) != ST_OK)
		return err->status;
	return addr_qualify_local(out, len, c->domain, err);
}

/* Which sender and why, under SenderPolicy align or refuse. */
static int
verify_policy(const struct config *cfg, const struct caller *c,
    const char *f, char *env, size_t len, const char **why,
    struct error *err)
{
	char own[ADDR_MAX];

	if (c->allow_err.status != ST_OK) {
		*err = c->allow_err;
		return err->status;
	}
	if (sender_own(&c->allow, &c->rev, c->login, c->domain, own,
	    sizeof(own), err) != ST_OK)
		return err->status;
	if (f == NULL || sender_may_use(&c->allow, own, f)) {
		*why = f == NULL ? "the user's own address" : "allowed";
		(void)strlcpy(env, f == NULL ? own : f, len);
		return ST_OK;
	}
	*why = cfg->sender_policy == SP_REFUSE ? "refused: not allowed, "
	    "exit 77" : "aligned: not allowed";
	(void)strlcpy(env, own, len);
	return ST_OK;
}

void
sender_verify_line(const struct config *cfg, const struct caller *c,
    const char *farg, sender_line_fn *emit, void *emit_arg)
{
	char f[ADDR_MAX], env[ADDR_MAX], shown[ADDR_MAX];
	char line[4 * ADDR_MAX + ERR_MAX];
	const char *why = "not checked";
	struct error err;
	int rc = ST_OK;

	error_clear(&err);
	f[0] = env[0] = '\0';
	log_sanitize(shown, sizeof(shown), farg != NULL ? farg : c->login,
	    strlen(farg != NULL ? farg : c->login));
	if (farg != NULL)
		rc = verify_f(c, farg, f, sizeof(f), &err);
	if (rc == ST_OK && cfg->sender_policy == SP_KEEP)
		rc = alias_default_sender(cfg, &c->rev, farg != NULL ? f :
		    NULL, c->login, c->domain, env, sizeof(env), &err);
	else if (rc == ST_OK)
		rc = verify_policy(cfg, c, farg != NULL ? f : NULL, env,
		    sizeof(env), &why, &err);
	if (rc != ST_OK)
		(void)snprintf(line, sizeof(line), "%s... sender: %s", shown,
		    err.text);
	else
		(void)snprintf(line, sizeof(line), "%s... sender: envelope "
		    "<%s>, From: <%s> when the message has none (%s; "
		    "SenderPolicy=%s, user %s)", shown, env, env[0] != '\0' ?
		    env : "MAILER-DAEMON", why,
		    sender_policy_name(cfg->sender_policy), c->login);
	emit(emit_arg, line);
}
