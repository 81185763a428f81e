/*
 * modes.c: the modes that send no message of their own: the queue run
 * (-q), the queue listing and its administration (mailq, postino queue
 * ACTION), address verification (-bv, postino verify), the strict
 * configuration check (postino check), newaliases and the OAuth token
 * refresh (postino token). Each returns a
 * status and fills an error; main() tells and picks the exit code.
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "postino.h"

/*
 * A queue run (the timer's) refreshes postino's own OAuth token while it
 * has less than three margins left, so that deliveries between two runs
 * find it fresh; a failure is only logged: each delivery tries again.
 */
static void
refresh_token(const struct config *cfg)
{
	struct oauth_token *t;
	struct error err;

	if (!oauth_refresher(cfg) || (t = malloc(sizeof(*t))) == NULL)
		return;
	error_clear(&err);
	if (oauth_token_get(cfg, 3 * OAUTH_MARGIN, 0, t, &err) != ST_OK)
		log_line(LOG_WARNING, "OAuth token not refreshed: %s",
		    err.text);
	else if (t->refreshed)
		log_line(LOG_INFO, "OAuth token refreshed, valid for %llds",
		    t->expires - (long long)time(NULL));
	if (t->note[0] != '\0')
		log_line(LOG_WARNING, "%s", t->note);
	oauth_token_wipe(t);
	free(t);
}

int
mode_token(const struct config *cfg, FILE *out, struct error *err)
{
	struct oauth_token *t;
	char when[64];
	struct tm tm;
	time_t exp;
	int rc;

	if (getuid() != 0)
		return error_set(err, ST_NOPERM, "postino token: only root "
		    "may refresh the OAuth token");
	if (!oauth_refresher(cfg))
		return error_set(err, ST_CONFIG, "postino token: %s has no "
		    "OAuthTokenURL (AuthMethod=XOAUTH2 or OAUTHBEARER)",
		    cfg->path);
	if ((t = malloc(sizeof(*t))) == NULL)
		return error_set(err, ST_OSERR, "out of memory");
	if ((rc = oauth_token_get(cfg, 0, 1, t, err)) == ST_OK) {
		exp = (time_t)t->expires;
		if (gmtime_r(&exp, &tm) == NULL ||
		    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
			(void)strlcpy(when, "?", sizeof(when));
		(void)fprintf(out, "OAuth token refreshed: expires %s (in "
		    "%llds)\n", when, t->expires - (long long)time(NULL));
		log_line(LOG_INFO, "OAuth token refreshed (postino token)");
	}
	if (t->note[0] != '\0') {
		(void)fprintf(out, "warning: %s\n", t->note);
		log_line(LOG_WARNING, "%s", t->note);
	}
	oauth_token_wipe(t);
	free(t);
	return rc;
}

int
mode_run_queue(const struct config *cfg, const struct caller *c,
    const struct runner_filter *filter, struct error *err)
{
	struct deliver_ctx ctx;
	struct runner_filter f = *filter;

	refresh_token(cfg);
	submit_deliver_ctx(cfg, c, &ctx);
	runner_filter_for(&f, c->uid);
	return runner_run(&ctx, &f, err);
}

int
mode_queue_admin(const struct config *cfg, const struct options *o,
    FILE *out, struct error *err)
{
	if (o->queue_action != NULL)
		return showq_change(cfg->queue_dir, o->queue_action,
		    o->filter.qid, err);
	if (o->metrics == 2 && cfg->metrics_file[0] == '\0')
		return error_set(err, ST_USAGE, "--metrics --write: no "
		    "MetricsFile in %s", cfg->path);
	if (o->metrics == 2)
		return showq_metrics_write(cfg, err);
	if (o->metrics)
		return showq_metrics(out, cfg, err);
	return showq_list(out, cfg->queue_dir, o->json, err);
}

static void
print_line(void *arg, const char *line)
{
	(void)fprintf(arg, "%s\n", line);
}

/*
 * -bv: where each argument would go; no connection, no queue (its usage
 * limits are options_parse's). ST_PERM when an address is not valid,
 * ST_OSERR when the machine failed; every argument is shown either way.
 */
int
mode_verify(const struct config *cfg, const struct caller *c,
    const struct options *o, FILE *out, struct error *err)
{
	struct error one;
	size_t i;
	int rc = ST_OK;

	error_clear(err);
	/* Which sender the caller would get (issue 12). */
	if (o->sender != NULL || cfg->sender_policy != SP_KEEP)
		sender_verify_line(cfg, c, o->sender, print_line, out);
	for (i = 0; i < o->nrcpt_args; i++) {
		error_clear(&one);
		if (alias_verify_line(cfg, c->aliases, o->rcpt_args[i],
		    c->domain, c->hostname, o->no_alias, print_line, out,
		    &one) == ST_OK)
			continue;
		if (rc != ST_OSERR) {
			rc = one.status == ST_OSERR ? ST_OSERR : ST_PERM;
			*err = one;
			err->status = rc;
		}
	}
	return rc;
}

/*
 * postino check: the configuration as postino reads it, strictly: any
 * warning (an unknown key, a skipped alias line) fails, for
 * configuration tools to run before they deploy. warnings is how many
 * were told while reading. Then what the first send would run into
 * (config_check: AuthUser without TLS, a TLS file senders cannot read):
 * each finding told through warn, and any fails too, since a file that
 * parses but queues every message is not ready to deploy.
 */
int
mode_check(const struct config *cfg, const struct caller *c, int warnings,
    config_warn_fn *warn, void *warn_arg, FILE *out, struct error *err)
{
	int found;

	if (c->rev_err.status != ST_OK) {
		*err = c->rev_err;
		err->status = ST_CONFIG;
		return ST_CONFIG;
	}
	if (c->allow_err.status != ST_OK) {	/* AllowedSendersFile */
		*err = c->allow_err;
		return ST_CONFIG;
	}
	found = config_check(cfg, warn, warn_arg) != ST_OK;
	if (warnings > 0 || found)
		return error_set(err, ST_CONFIG, "%s", "");
	(void)fprintf(out, "%s: ok; hub %s port %s, %s, domain %s\n",
	    cfg->path, cfg->hub_host, cfg->hub_port,
	    cfg->tls == TLS_STARTTLS ? "STARTTLS" :
	    cfg->tls == TLS_IMPLICIT ? "implicit TLS" : "no TLS", c->domain);
	/* The sender the caller would get (issue 12). */
	if (cfg->sender_policy != SP_KEEP)
		sender_verify_line(cfg, c, NULL, print_line, out);
	return ST_OK;
}

static void
log_alias_warning(void *arg, const char *text)
{
	(void)arg;
	log_line(LOG_WARNING, "%s", text);
}

/* newaliases, -bi, -I: nothing to build; check the file and log. */
void
mode_check_aliases(const struct config *cfg)
{
	struct error err;
	size_t n = 0;

	error_clear(&err);
	if (alias_check_aliases(cfg->aliases_file, log_alias_warning, NULL,
	    &n, &err) != ST_OK)
		log_line(LOG_ERR, "%s", err.text);
	else
		log_line(LOG_INFO, "%s: %zu aliases", cfg->aliases_file[0] ?
		    cfg->aliases_file : "(none)", n);
}
