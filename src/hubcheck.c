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
 *
 * Every address of every hub is probed (conn_resolve lists them, IPv6
 * and IPv4, as a delivery would try them; the opener plugged into
 * deliver_probe connects to one of them while the session keeps the
 * hub's name for SNI and the certificate), and each is one finding: a
 * delivery that meets a dead address moves on to the next one, so a
 * dead address costs every message a connect timeout and an admin
 * should know. The verdict: OK when every address of every hub takes
 * mail (and no certificate expires soon, TLSVerify is on); CRITICAL when
 * no address of any hub does; WARNING in between.
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "postino.h"

#define CAPS_MAX	1024

/* What one probe of one address of one hub found. */
struct probe {
	struct route	 rt;
	char		 addr[CONN_ADDR_MAX];	/* "": the name did not
						 * resolve (err says why) */
	size_t		 hub;		/* its MailHub entry */
	const struct config *cfg;
	int		 reachable;	/* the hub greeted us */
	int		 open;		/* the session opened: it takes mail */
	long long	 started;	/* deadline_now_ms(), connecting */
	long long	 greeting_ms;	/* -1: no greeting */
	char		 greeting[REPLY_TEXT_MAX];
	char		 caps[CAPS_MAX];	/* the last EHLO's keywords */
	int		 in_ehlo;	/* EHLO sent, its reply not over */
	int		 auth_sent;	/* an AUTH command went out */
	int		 quit_sent;	/* QUIT went out: its reply follows */
	char		 quit[REPLY_TEXT_MAX];	/* the reply to QUIT */
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
		if (len == 4 && strncasecmp(line, "QUIT", 4) == 0)
			p->quit_sent = 1;
		return;
	}
	if (dir != TR_RECEIVED || len < 3)
		return;
	if (p->quit_sent) {
		log_sanitize(p->quit, sizeof(p->quit), line, len);
		return;
	}
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

/* deliver.c's transport seam: this probe's address, the hub's name. */
static int
open_addr(void *arg, const struct route *rt, int timeout_s,
    struct conn **out, struct error *err)
{
	const struct probe *p = arg;

	return conn_connect_addr(out, rt->host, p->addr, rt->port, timeout_s,
	    p->cfg->source_address, p->cfg->address_family, err);
}

/* The session is deliver.c's, opened as a delivery opens it. */
static void
probe_addr(const struct config *cfg, const char *helo, struct probe *p)
{
	struct deliver_ctx ctx;

	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = cfg;
	ctx.hostname = helo;
	ctx.transcript = observe;
	ctx.transcript_arg = p;
	ctx.connect = open_addr;
	ctx.connect_arg = p;
	p->greeting_ms = -1;
	error_clear(&p->err);
	p->started = deadline_now_ms();
	p->open = deliver_probe(&ctx, &p->rt, &p->res, &p->err) == ST_OK;
}

/* Room for one more finding in *list (n used, *cap allocated). */
static struct probe *
next_probe(struct probe **list, size_t n, size_t *cap)
{
	struct probe *grown;

	if (n == *cap) {
		if ((grown = reallocarray(*list, *cap + 8, sizeof(**list))) ==
		    NULL)
			return NULL;
		*list = grown;
		*cap += 8;
	}
	memset(&(*list)[n], 0, sizeof(**list));
	return &(*list)[n];
}

/*
 * Hub i: one finding per address it resolves to, or one (no address)
 * saying why it resolves to none. Appended to *list; ST_OSERR only.
 */
static int
probe_hub(const struct config *cfg, const char *helo, size_t i,
    struct probe **list, size_t *n, size_t *cap)
{
	char addrs[CONN_ADDRS_MAX][CONN_ADDR_MAX];
	struct route rt;
	struct error rerr;
	struct probe *p;
	size_t na = 0, a;

	memset(&rt, 0, sizeof(rt));
	config_hub(cfg, i, rt.host, sizeof(rt.host), rt.port, sizeof(rt.port));
	error_clear(&rerr);
	if (conn_resolve(rt.host, rt.port, cfg->address_family,
	    cfg->source_address, cfg->timeout, addrs, CONN_ADDRS_MAX, &na,
	    &rerr) != ST_OK)
		na = 0;
	for (a = 0; a == 0 || a < na; a++) {
		if ((p = next_probe(list, *n, cap)) == NULL)
			return ST_OSERR;
		(*n)++;
		p->rt = rt;
		p->hub = i;
		p->cfg = cfg;
		p->greeting_ms = -1;
		if (na == 0) {
			p->err = rerr;
			break;
		}
		(void)strlcpy(p->addr, addrs[a], sizeof(p->addr));
		probe_addr(cfg, helo, p);
	}
	return ST_OK;
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

/*
 * A finding's name: the hub as configured when it is an address itself
 * ("127.0.0.1:587", "[::1]:587"), else with the address as relay= has
 * it ("localhost[::1]:587"); a name that did not resolve alone.
 */
static void
finding_name(const struct probe *p, char *buf, size_t len)
{
	int literal = p->addr[0] == '\0' || strcmp(p->addr, p->rt.host) == 0;

	if (!literal)
		(void)snprintf(buf, len, "%s[%s]:%s", p->rt.host, p->addr,
		    p->rt.port);
	else if (strchr(p->rt.host, ':') != NULL)
		(void)snprintf(buf, len, "[%s]:%s", p->rt.host, p->rt.port);
	else
		(void)snprintf(buf, len, "%s:%s", p->rt.host, p->rt.port);
}

static void
print_text(FILE *out, const struct config *cfg, const struct probe *p)
{
	char name[HOST_MAX + CONN_ADDR_MAX + PORT_MAX + 8];

	finding_name(p, name, sizeof(name));
	(void)fprintf(out, "hub %s: %s\n", name, p->open ? "takes mail" :
	    p->reachable ? "refuses mail" : "unreachable");
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
	if (p->open)
		(void)fprintf(out, "  QUIT: %s\n", p->quit[0] != '\0' ?
		    p->quit : "no reply");
	else
		(void)fprintf(out, "  error: %s\n", p->err.text);
}

static void
print_json_hub(FILE *out, const struct config *cfg, const struct probe *p)
{
	char hub[HOST_MAX + PORT_MAX + 4];

	(void)snprintf(hub, sizeof(hub), strchr(p->rt.host, ':') != NULL ?
	    "[%s]:%s" : "%s:%s", p->rt.host, p->rt.port);
	(void)fprintf(out, "{\"hub\": ");
	log_json_string(out, hub);
	(void)fprintf(out, ", \"address\": ");
	log_json_string(out, p->addr);
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
	(void)fprintf(out, ", \"quit\": ");
	log_json_string(out, p->quit);
	(void)fprintf(out, ", \"error\": ");
	log_json_string(out, p->open ? "" : p->err.text);
	(void)fputc('}', out);
}

/* The counts behind the verdict. */
struct tally {
	size_t		 hubs, hubs_up;		/* MailHub entries */
	size_t		 found, found_up;	/* findings (addresses) */
	size_t		 expiring;
};

static enum hub_verdict
judge(const struct config *cfg, struct probe *p, size_t n, size_t hubs,
    int warn_days, struct tally *t)
{
	size_t i, h;

	memset(t, 0, sizeof(*t));
	t->hubs = hubs;
	t->found = n;
	for (i = 0; i < n; i++) {
		t->found_up += p[i].open != 0;
		p[i].expiring = p[i].res.cert.seen &&
		    p[i].res.cert.days_left <= warn_days;
		t->expiring += p[i].expiring != 0;
	}
	/* A hub takes mail when one of its addresses does. */
	for (h = 0; h < hubs; h++)
		for (i = 0; i < n; i++)
			if (p[i].hub == h && p[i].open) {
				t->hubs_up++;
				break;
			}
	if (t->hubs_up == 0)
		return HUB_CRITICAL;
	if (t->found_up < n || (cfg->tls != TLS_NONE && !cfg->tls_verify) ||
	    t->expiring > 0)
		return HUB_WARNING;
	return HUB_OK;
}

/* Performance data: the counts, then each address's figures. */
static void
print_perfdata(FILE *out, const struct probe *p, size_t n,
    const struct tally *t, int warn_days)
{
	char name[HOST_MAX + CONN_ADDR_MAX + PORT_MAX + 8];
	size_t i;

	(void)fprintf(out, " | hubs_up=%zu;;1;0;%zu addresses_up=%zu;;1;0;%zu",
	    t->hubs_up, t->hubs, t->found_up, t->found);
	for (i = 0; i < n; i++) {
		finding_name(&p[i], name, sizeof(name));
		if (p[i].greeting_ms >= 0)
			(void)fprintf(out, " 'greeting_%s'=%.3fs", name,
			    p[i].greeting_ms / 1000.0);
	}
	for (i = 0; i < n; i++) {
		finding_name(&p[i], name, sizeof(name));
		if (p[i].res.cert.seen)
			(void)fprintf(out, " 'cert_days_%s'=%lld;%d", name,
			    p[i].res.cert.days_left, warn_days);
	}
}

static void
print_summary(FILE *out, const struct config *cfg, const struct probe *p,
    size_t n, enum hub_verdict v, const struct tally *t, int warn_days)
{
	char name[HOST_MAX + CONN_ADDR_MAX + PORT_MAX + 8];
	size_t i;

	(void)fprintf(out, "POSTINO HUB %s - %zu/%zu hub%s take%s mail",
	    verdict_names[v], t->hubs_up, t->hubs, t->hubs == 1 ? "" : "s",
	    t->hubs == 1 ? "s" : "");
	/* Per address only where a hub has several (or none). */
	if (t->found != t->hubs)
		(void)fprintf(out, " (%zu/%zu addresses)", t->found_up,
		    t->found);
	for (i = 0; i < n; i++) {
		finding_name(&p[i], name, sizeof(name));
		if (!p[i].open)
			(void)fprintf(out, "; %s: %s", name, p[i].err.text);
	}
	if (cfg->tls != TLS_NONE && !cfg->tls_verify)
		(void)fprintf(out, "; TLSVerify=NO in use");
	for (i = 0; i < n; i++) {
		finding_name(&p[i], name, sizeof(name));
		if (p[i].expiring)
			(void)fprintf(out, "; %s: certificate expires in "
			    "%lld days", name, p[i].res.cert.days_left);
	}
	print_perfdata(out, p, n, t, warn_days);
	(void)fputc('\n', out);
}

static void
print_json(FILE *out, const struct config *cfg, const struct probe *p,
    size_t n, enum hub_verdict v, const struct tally *t)
{
	size_t i;

	(void)fprintf(out, "{\"status\": \"%s\", \"hubs_up\": %zu, "
	    "\"hubs_total\": %zu, \"addresses_up\": %zu, "
	    "\"addresses_total\": %zu, \"hubs\": [", verdict_names[v],
	    t->hubs_up, t->hubs, t->found_up, t->found);
	for (i = 0; i < n; i++) {
		if (i > 0)
			(void)fprintf(out, ", ");
		print_json_hub(out, cfg, &p[i]);
	}
	(void)fputc(']', out);
	if (oauth_wanted(cfg)) {
		char state[ERR_MAX];

		oauth_describe(cfg, state, sizeof(state));
		(void)fprintf(out, ", \"oauth_token\": ");
		log_json_string(out, state);
	}
	(void)fprintf(out, "}\n");
}

int
hubcheck_run(const struct config *cfg, const char *helo,
    const struct options *o, FILE *out, enum hub_verdict *verdict,
    struct error *err)
{
	struct probe *p = NULL;
	struct config *fresh;
	struct tally t;
	size_t hubs = config_hub_count(cfg), n = 0, cap = 0, i;

	/* A resumed session would show the certificate it was made with. */
	if ((fresh = malloc(sizeof(*fresh))) == NULL)
		return error_set(err, ST_OSERR, "out of memory");
	*fresh = *cfg;
	fresh->tls_fresh = 1;
	/* Every MailHub entry, every address, in the order deliveries try. */
	for (i = 0; i < hubs; i++)
		if (probe_hub(fresh, helo, i, &p, &n, &cap) != ST_OK) {
			free(p);
			free(fresh);
			return error_set(err, ST_OSERR, "out of memory");
		}
	free(fresh);
	*verdict = judge(cfg, p, n, hubs, o->warn_days, &t);
	if (o->json)
		print_json(out, cfg, p, n, *verdict, &t);
	else {
		print_summary(out, cfg, p, n, *verdict, &t, o->warn_days);
		for (i = 0; i < n; i++)
			print_text(out, cfg, &p[i]);
	}
	free(p);
	return ST_OK;
}
