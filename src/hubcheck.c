/*
 * hubcheck.c: postino check --hub. Opens a session to the hub exactly as
 * a delivery does (deliver_probe: connect, greeting, EHLO,
 * STARTTLS or implicit TLS under the configured verification, AUTH with
 * the configured credentials), reports what it saw and closes it with
 * QUIT. It never sends MAIL, RCPT or DATA: deliver_probe opens and
 * closes a session, nothing else.
 * What the session said is read from the transcript smtp.c writes for -v
 * (AUTH lines arrive redacted), so that the protocol code stays in
 * smtp.c. The first line follows the monitoring plugin convention
 * (Nagios, Icinga, Zabbix): POSTINO HUB OK|WARNING|CRITICAL - summary |
 * performance data; the verdict goes back to main(), which picks the
 * exit code (0, 1, 2). The certificate's subject, issuer and days to
 * expiry come from conn.c (conn_tls_cert, through smtp_result); one that
 * expires within --warn-days (default 14) is a WARNING.
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "postino.h"

#define CAPS_MAX	1024

/* What one probe of one hub found. */
struct probe {
	struct route	 rt;
	int		 reachable;	/* the hub greeted us */
	int		 open;		/* the session opened: it takes mail */
	long long	 started;	/* deadline_now_ms(), connecting */
	long long	 greeting_ms;	/* -1: no greeting */
	char		 greeting[REPLY_TEXT_MAX];
	char		 caps[CAPS_MAX];	/* the last EHLO's keywords */
	int		 in_ehlo;	/* EHLO sent, its reply not over */
	int		 auth_sent;	/* an AUTH command went out */
	int		 expiring;	/* its certificate, within --warn-days */
	struct smtp_result res;
	struct error	 err;
};

static void
append_cap(struct probe *p, const char *line, size_t len)
{
	char clean[256];

	if (len <= 4)
		return;
	log_sanitize(clean, sizeof(clean), line + 4, len - 4);
	if (p->caps[0] != '\0')
		(void)strlcat(p->caps, " ", sizeof(p->caps));
	(void)strlcat(p->caps, clean, sizeof(p->caps));
}

/* The transcript, read for the greeting, the capabilities and AUTH. */
static void
observe(void *arg, enum transcript_dir dir, const char *line, size_t len)
{
	struct probe *p = arg;

	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (dir == TR_SENT) {
		p->in_ehlo = len >= 4 && strncasecmp(line, "EHLO", 4) == 0;
		if (p->in_ehlo)
			p->caps[0] = '\0';	/* after STARTTLS: anew */
		if (len >= 4 && strncasecmp(line, "AUTH", 4) == 0)
			p->auth_sent = 1;
		return;
	}
	if (dir != TR_RECEIVED || len < 3)
		return;
	if (p->greeting_ms < 0) {
		p->greeting_ms = deadline_now_ms() - p->started;
		p->reachable = 1;
		log_sanitize(p->greeting, sizeof(p->greeting), line, len);
		return;
	}
	if (p->in_ehlo && strncmp(line, "250", 3) == 0) {
		append_cap(p, line, len);
		if (len == 3 || line[3] == ' ')
			p->in_ehlo = 0;
	}
}

/* The session is deliver.c's, opened as a delivery opens it. */
static void
probe_hub(const struct config *cfg, const char *helo, struct probe *p)
{
	struct deliver_ctx ctx;

	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = cfg;
	ctx.hostname = helo;
	ctx.transcript = observe;
	ctx.transcript_arg = p;
	p->greeting_ms = -1;
	error_clear(&p->err);
	p->started = deadline_now_ms();
	p->open = deliver_probe(&ctx, &p->rt, &p->res, &p->err) == ST_OK;
}

/* ------------------------------------------------------------- report */

static const char *const verdict_names[] = {
	[HUB_OK] = "OK", [HUB_WARNING] = "WARNING", [HUB_CRITICAL] = "CRITICAL"
};

static const char *
auth_state(const struct config *cfg, const struct probe *p)
{
	if (cfg->auth_user[0] == '\0')
		return "not configured";
	if (p->open)
		return p->auth_sent ? "accepted" : "not offered by the hub";
	if (p->res.stage == STAGE_AUTH)
		return "refused";
	return "not tried";
}

static void
print_text(FILE *out, const struct config *cfg, const struct probe *p)
{
	(void)fprintf(out, "hub %s:%s: %s", p->rt.host, p->rt.port,
	    p->open ? "takes mail" : p->reachable ? "refuses mail" :
	    "unreachable");
	if (p->res.relay[0] != '\0')
		(void)fprintf(out, " (%s)", p->res.relay);
	(void)fputc('\n', out);
	if (p->greeting_ms >= 0)
		(void)fprintf(out, "  greeting: %lld ms: %s\n", p->greeting_ms,
		    p->greeting);
	if (p->caps[0] != '\0')
		(void)fprintf(out, "  EHLO: %s\n", p->caps);
	(void)fprintf(out, "  TLS: %s\n", p->res.tls[0] != '\0' ? p->res.tls :
	    cfg->tls == TLS_NONE ? "not used (UseTLS/UseSTARTTLS)" : "none");
	if (cfg->tls != TLS_NONE && !cfg->tls_verify)
		(void)fprintf(out, "  TLS: certificate not verified "
		    "(TLSVerify=NO)\n");
	if (p->res.cert.seen)
		(void)fprintf(out, "  certificate: subject %s; issuer %s; "
		    "expires in %lld days%s\n", p->res.cert.subject,
		    p->res.cert.issuer, p->res.cert.days_left,
		    p->expiring ? " (WARNING: within --warn-days)" : "");
	(void)fprintf(out, "  AUTH: %s", auth_state(cfg, p));
	if (cfg->auth_user[0] != '\0')
		(void)fprintf(out, " as %s (password not shown)",
		    cfg->auth_user);
	(void)fputc('\n', out);
	oauth_check_line(out, cfg);	/* "  OAuth token: ..." (oauth.c) */
	if (!p->open)
		(void)fprintf(out, "  error: %s\n", p->err.text);
}

static void
print_json_hub(FILE *out, const struct config *cfg, const struct probe *p)
{
	char hub[HOST_MAX + PORT_MAX + 2];

	(void)snprintf(hub, sizeof(hub), "%s:%s", p->rt.host, p->rt.port);
	(void)fprintf(out, "{\"hub\": ");
	log_json_string(out, hub);
	(void)fprintf(out, ", \"relay\": ");
	log_json_string(out, p->res.relay);
	(void)fprintf(out, ", \"reachable\": %s, \"takes_mail\": %s, "
	    "\"greeting_ms\": %lld, \"greeting\": ", p->reachable ? "true" :
	    "false", p->open ? "true" : "false", p->greeting_ms);
	log_json_string(out, p->greeting);
	(void)fprintf(out, ", \"ehlo\": ");
	log_json_string(out, p->caps);
	(void)fprintf(out, ", \"tls\": ");
	log_json_string(out, p->res.tls);
	(void)fprintf(out, ", \"tls_verify\": %s, \"cert_subject\": ",
	    cfg->tls_verify ? "true" : "false");
	log_json_string(out, p->res.cert.subject);
	(void)fprintf(out, ", \"cert_issuer\": ");
	log_json_string(out, p->res.cert.issuer);
	if (p->res.cert.seen)
		(void)fprintf(out, ", \"cert_days_left\": %lld",
		    p->res.cert.days_left);
	(void)fprintf(out, ", \"cert_expiring\": %s, \"auth\": ",
	    p->expiring ? "true" : "false");
	log_json_string(out, auth_state(cfg, p));
	(void)fprintf(out, ", \"error\": ");
	log_json_string(out, p->open ? "" : p->err.text);
	(void)fputc('}', out);
}

static enum hub_verdict
judge(const struct config *cfg, struct probe *p, size_t n, int warn_days,
    size_t *up)
{
	size_t i, expiring = 0;

	*up = 0;
	for (i = 0; i < n; i++) {
		*up += p[i].open != 0;
		p[i].expiring = p[i].res.cert.seen &&
		    p[i].res.cert.days_left <= warn_days;
		expiring += p[i].expiring != 0;
	}
	if (*up == 0)
		return HUB_CRITICAL;
	if (*up < n || (cfg->tls != TLS_NONE && !cfg->tls_verify) ||
	    expiring > 0)
		return HUB_WARNING;
	return HUB_OK;
}

static void
print_summary(FILE *out, const struct config *cfg, const struct probe *p,
    size_t n, enum hub_verdict v, size_t up, int warn_days)
{
	size_t i;

	(void)fprintf(out, "POSTINO HUB %s - %zu/%zu hub%s take%s mail",
	    verdict_names[v], up, n, n == 1 ? "" : "s", up == 1 ? "s" : "");
	for (i = 0; i < n; i++)
		if (!p[i].open)
			(void)fprintf(out, "; %s:%s: %s", p[i].rt.host,
			    p[i].rt.port, p[i].err.text);
	if (cfg->tls != TLS_NONE && !cfg->tls_verify)
		(void)fprintf(out, "; TLSVerify=NO in use");
	for (i = 0; i < n; i++)
		if (p[i].expiring)
			(void)fprintf(out, "; %s:%s: certificate expires in "
			    "%lld days", p[i].rt.host, p[i].rt.port,
			    p[i].res.cert.days_left);
	(void)fprintf(out, " | hubs_up=%zu;;1;0;%zu", up, n);
	for (i = 0; i < n; i++)
		if (p[i].greeting_ms >= 0)
			(void)fprintf(out, " 'greeting_%s:%s'=%.3fs",
			    p[i].rt.host, p[i].rt.port,
			    p[i].greeting_ms / 1000.0);
	for (i = 0; i < n; i++)
		if (p[i].res.cert.seen)
			(void)fprintf(out, " 'cert_days_%s:%s'=%lld;%d",
			    p[i].rt.host, p[i].rt.port,
			    p[i].res.cert.days_left, warn_days);
	(void)fputc('\n', out);
}

int
hubcheck_run(const struct config *cfg, const char *helo,
    const struct options *o, FILE *out, enum hub_verdict *verdict,
    struct error *err)
{
	struct probe *p;
	size_t n = config_hub_count(cfg), i, up;

	if ((p = calloc(n, sizeof(*p))) == NULL)
		return error_set(err, ST_OSERR, "out of memory");
	/* Every MailHub entry, in the order deliveries try them. */
	for (i = 0; i < n; i++) {
		config_hub(cfg, i, p[i].rt.host, sizeof(p[i].rt.host),
		    p[i].rt.port, sizeof(p[i].rt.port));
		probe_hub(cfg, helo, &p[i]);
	}
	*verdict = judge(cfg, p, n, o->warn_days, &up);
	if (o->json) {
		(void)fprintf(out, "{\"status\": \"%s\", \"hubs_up\": %zu, "
		    "\"hubs\": [", verdict_names[*verdict], up);
		for (i = 0; i < n; i++) {
			if (i > 0)
				(void)fprintf(out, ", ");
			print_json_hub(out, cfg, &p[i]);
		}
		(void)fprintf(out, "]}\n");
	} else {
		print_summary(out, cfg, p, n, *verdict, up, o->warn_days);
		for (i = 0; i < n; i++)
			print_text(out, cfg, &p[i]);
	}
	free(p);
	return ST_OK;
}
