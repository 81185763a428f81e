/*
 * caller.c: who calls, and under which configuration. The real uid's
 * account (never $USER or $LOGNAME); the configuration file (-C from an
 * ordinary user is read without the group, for good); LogFile; ssmtp's
 * -au/-am where the caller may use them; the domain and host names;
 * AliasesFile and revaliases. Everything here is read while the group
 * is still held: main() drops it right after.
 */
#include <sys/types.h>

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include "postino.h"

void
caller_identify(struct caller *c)
{
	struct passwd *pw;

	c->uid = getuid();
	pw = getpwuid(c->uid);
	if (pw != NULL && pw->pw_name[0] != '\0') {
		(void)strlcpy(c->login, pw->pw_name, sizeof(c->login));
		if (pw->pw_gecos != NULL) {
			(void)strlcpy(c->gecos, pw->pw_gecos,
			    sizeof(c->gecos));
			c->gecos[strcspn(c->gecos, ",")] = '\0';
		}
	} else
		(void)snprintf(c->login, sizeof(c->login), "uid%lu",
		    (unsigned long)c->uid);
	message_new_qid(c->qid);
}

/*
 * ssmtp's -au/-am, where options_may_override_auth allows them. From an
 * ordinary user on the system configuration they are ignored: *ignored
 * is set for the caller to tell.
 */
static void
apply_auth_override(struct config *cfg, const struct options *o,
    const struct caller *c, int *ignored)
{
	if (o->auth_user == NULL && o->auth_method == NULL)
		return;
	if (!options_may_override_auth(o, c->uid)) {
		*ignored = 1;
		return;
	}
	if (o->auth_user != NULL)
		(void)strlcpy(cfg->auth_user, o->auth_user,
		    sizeof(cfg->auth_user));
	if (o->auth_method != NULL)
		cfg->auth_method = strcasecmp(o->auth_method, "plain") == 0 ?
		    AUTH_PLAIN : strcasecmp(o->auth_method, "login") == 0 ?
		    AUTH_LOGIN : AUTH_CRAM_MD5;
}

static void
log_ignored_dsn(const struct options *o)
{
	char shown[64];

	if (o->dsn_ignored == NULL)
		return;
	log_sanitize(shown, sizeof(shown), o->dsn_ignored,
	    strlen(o->dsn_ignored));
	log_line(LOG_NOTICE, "ignored invalid DSN option value '%s'", shown);
}

/* A broken aliases file must not stop mail (relay unaliased), but it
 * fails postino check. */
static int
load_aliases(struct caller *c, const struct config *cfg, int strict,
    config_warn_fn *warn, void *warn_arg, struct error *err)
{
	if (alias_load_aliases(cfg->aliases_file, &c->aliases, warn,
	    warn_arg, err) == ST_OK)
		return ST_OK;
	c->aliases = NULL;
	if (strict)
		return err->status;
	log_line(LOG_ERR, "%s (aliases not used)", err->text);
	error_clear(err);
	return ST_OK;
}

/*
 * Warnings told while the configuration is read, before LogFile (which
 * it names) can be opened: held here, told once the log is open, so that
 * they reach LogFile like every other line. Bounded: a file of a million
 * stray lines must not take a million allocations.
 */
#define HELD_MAX	64

struct held {
	char	*text[HELD_MAX];
	size_t	 n;
	size_t	 dropped;
};

static void
hold_warning(void *arg, const char *text)
{
	struct held *h = arg;
	char *copy;

	if (h->n == HELD_MAX || (copy = strdup(text)) == NULL) {
		h->dropped++;
		return;
	}
	h->text[h->n++] = copy;
}

static void
tell_held(struct held *h, const struct caller_load_how *how)
{
	char more[64];
	size_t i;

	for (i = 0; i < h->n; i++) {
		if (how->warn != NULL)
			how->warn(how->warn_arg, h->text[i]);
		free(h->text[i]);
	}
	if (h->dropped > 0 && how->warn != NULL) {
		(void)snprintf(more, sizeof(more), "%zu more configuration "
		    "warnings not shown", h->dropped);
		how->warn(how->warn_arg, more);
	}
	memset(h, 0, sizeof(*h));
}

int
caller_load(struct caller *c, struct config *cfg, const struct options *o,
    const struct caller_load_how *how, struct error *err)
{
	struct held held;
	int rc;

	/* -C from an ordinary user cannot read what the group protects. */
	if (o->config_path != NULL && getuid() != 0 &&
	    priv_drop_for_good(err) != ST_OK)
		return err->status;
	memset(&held, 0, sizeof(held));
	rc = config_load(cfg, o->config_path != NULL ? o->config_path :
	    POSTINO_CONFFILE, hold_warning, &held, err);
	if (rc == ST_OK)
		log_open(o->progname, cfg->log_file);
	tell_held(&held, how);
	if (rc != ST_OK)
		return ST_CONFIG;
	log_ignored_dsn(o);
	apply_auth_override(cfg, o, c, how->auth_ignored);
	alias_domain(cfg, c->domain, sizeof(c->domain));
	alias_hostname(cfg, c->hostname, sizeof(c->hostname));
	alias_helo_name(cfg, c->helo, sizeof(c->helo));
	if (load_aliases(c, cfg, how->strict, how->warn, how->warn_arg,
	    err) != ST_OK)
		return ST_CONFIG;
	error_clear(&c->rev_err);
	(void)alias_load_revaliases(cfg->revaliases, c->login, &c->rev,
	    &c->rev_err);
	error_clear(&c->allow_err);
	(void)sender_load_allowed(cfg->allowed_senders, c->login, c->domain,
	    &c->allow, &c->allow_err);
	return ST_OK;
}
