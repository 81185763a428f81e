/*
 * deliver.c: the settlement of one message, for the submission and the
 * queue run alike. It opens (and reuses) the session to a hub through
 * the transport seam, makes one attempt at an entry's pending
 * recipients, and applies DESIGN.md's outcome table: sent, queued for a
 * later attempt, kept in the failed area, reported back to the sender.
 * Every path ends in one struct outcome, which sendmail.c turns into an
 * exit code or a -bs reply. Like the queue runner, it logs one line per
 * recipient. Only this file (and smtp.c) calls smtp_*.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

#include "postino.h"

/* ------------------------------------------------------------ logging */

/* A duration as Postfix writes delay= and delays=: "0", "0.12", "4.5", "37". */
static void
fmt_delay(char *buf, size_t len, double v)
{
	if (v < 0.01)
		(void)strlcpy(buf, "0", len);
	else if (v < 10)
		(void)snprintf(buf, len, "%.2g", v);
	else
		(void)snprintf(buf, len, "%.0f", v);
}

/*
 * dsn=: the enhanced status code of the reply ("250 2.0.0 Ok" gives
 * 2.0.0), else the class of the outcome with .0.0, as Postfix does.
 */
static void
dsn_of(char *buf, size_t len, const char *reply, const char *status)
{
	const char *p = reply;
	size_t d1, d2, n;

	if (strlen(p) > 4 && p[0] >= '2' && p[0] <= '5' && p[3] == ' ')
		p += 4;
	/* class.subject.detail: [245].1-3 digits.1-3 digits */
	if (p[0] >= '2' && p[0] <= '5' && p[0] != '3' && p[1] == '.') {
		d1 = strspn(p + 2, "0123456789");
		d2 = d1 > 0 && d1 <= 3 && p[2 + d1] == '.' ?
		    strspn(p + 3 + d1, "0123456789") : 0;
		n = 3 + d1 + d2;
		if (d2 > 0 && d2 <= 3 && (p[n] == ' ' || p[n] == '\0') &&
		    n < len) {
			(void)strlcpy(buf, p, n + 1);
			return;
		}
	}
	(void)snprintf(buf, len, "%c.0.0", strcmp(status, "sent") == 0 ?
	    '2' : strcmp(status, "deferred") == 0 ? '4' : '5');
}

/*
 * One line per recipient, in Postfix's field order and nothing of ours
 * between the fields (pflogsumm and the exporters match it exactly):
 * to, relay, delay, delays=a/b/c/d, dsn, status (reply). Our stages map
 * onto Postfix's four: a (before the queue manager) is 0, b is the wait
 * in the queue, c (connection set-up) is 0 as for a reused Postfix
 * connection (one session serves many messages), d the transaction.
 */
static void
log_rcpt(const struct queue_entry *e, const struct hub_session *hs,
    const struct queue_rcpt *r, const char *status)
{
	double tx = hs->res.tx_ms / 1000.0, total;
	char delay[16], wait[16], txs[16], dsn[16];

	total = difftime(time(NULL), e->queued);
	if (total < tx)
		total = tx;
	fmt_delay(delay, sizeof(delay), total);
	fmt_delay(wait, sizeof(wait), total - tx);
	fmt_delay(txs, sizeof(txs), tx);
	dsn_of(dsn, sizeof(dsn), r->reply, status);
	log_svc(r->state == RS_SENT ? LOG_INFO : LOG_NOTICE, LOGSVC_SMTP,
	    "%s: to=<%s>, relay=%s, delay=%s, delays=0/%s/0/%s, dsn=%s, "
	    "status=%s (%s)", e->qid, r->addr, hs->res.relay[0] != '\0' ?
	    hs->res.relay : "none", delay, wait, txs, dsn, status, r->reply);
}

/* TLS facts on a line of their own, once per session, as Postfix has it. */
static void
log_tls(const struct smtp_result *res)
{
	const char *kind = strstr(res->tls, "unverified") != NULL ?
	    "Untrusted" : strstr(res->tls, "pinned") != NULL ? "Trusted" :
	    "Verified";

	if (res->tls[0] != '\0')
		log_svc(LOG_INFO, LOGSVC_SMTP, "%s TLS connection established "
		    "to %s: %s", kind, res->relay, res->tls);
}

/* ------------------------------------------------------------ session */

/* A run's counts, into the stats file in one rewrite. */
static void
stats_flush(struct hub_session *hs)
{
	struct error err;
	int k, any = 0;

	for (k = 0; k < STAT_KINDS; k++)
		any |= hs->stats.count[k] != 0;
	if (!any || hs->stats_dir == NULL)
		return;
	error_clear(&err);
	if (queue_stats_merge(hs->stats_dir, &hs->stats, &err) != ST_OK)
		log_line(LOG_WARNING, "%s", err.text);
	memset(&hs->stats, 0, sizeof(hs->stats));
}

void
deliver_session_close(struct hub_session *hs)
{
	if (hs->smtp != NULL)
		smtp_close(hs->smtp);
	hs->smtp = NULL;
	hs->used = 0;
	stats_flush(hs);
}

static int
same_route(const struct route *a, const struct route *b)
{
	return strcmp(a->host, b->host) == 0 && strcmp(a->port, b->port) == 0;
}

/* A failure before MAIL says the hub, not the message, is the problem. */
static int
hub_level_failure(enum smtp_stage stage)
{
	return stage < STAGE_MAIL;
}

/*
 * The hubs of an entry, in the order they are tried: its own (a
 * revaliases hub stays one host, as ssmtp had it), else every MailHub
 * entry. Entries without their own hub follow the current MailHub, so
 * that fixing a wrong MailHub also delivers what is queued.
 */
static size_t
routes_of(const struct deliver_ctx *ctx, const struct queue_entry *e,
    struct route rt[HUBS_MAX])
{
	size_t i, n;

	if (e->route.host[0] != '\0') {
		rt[0] = e->route;
		return 1;
	}
	n = config_hub_count(ctx->cfg);
	if (n > HUBS_MAX)
		n = HUBS_MAX;
	for (i = 0; i < n; i++) {
		memset(&rt[i], 0, sizeof(rt[i]));
		config_hub(ctx->cfg, i, rt[i].host, sizeof(rt[i].host),
		    rt[i].port, sizeof(rt[i].port));
	}
	/*
	 * A possible duplicate goes only to the hub that may have it, while
	 * that hub is still one of MailHub's: an administrator who takes it
	 * out of the list sends the entry to the others (logged as a
	 * possible duplicate, as every retry of it is).
	 */
	for (i = 0; e->dup_hub.host[0] != '\0' && i < n; i++)
		if (same_route(&rt[i], &e->dup_hub)) {
			rt[0] = rt[i];
			return 1;
		}
	return n;
}

/* Why rt failed earlier in this run (a queue pass reuses hs); NULL. */
static const char *
down_in_run(const struct hub_session *hs, const struct route *rt)
{
	size_t i;

	for (i = 0; i < hs->ndown; i++)
		if (same_route(&hs->down[i], rt))
			return hs->down_why[i];
	return NULL;
}

static void
mark_down_in_run(struct hub_session *hs, const struct route *rt,
    const char *why)
{
	if (down_in_run(hs, rt) != NULL || hs->ndown >= HUBS_MAX)
		return;
	hs->down[hs->ndown] = *rt;
	(void)strlcpy(hs->down_why[hs->ndown++], why,
	    sizeof(hs->down_why[0]));
}

/* Seconds since rt failed when that is within HubBackoff, else -1. */
static long long
backoff_since(const struct deliver_ctx *ctx, const struct route *rt,
    char *why, size_t whylen)
{
	long long down;

	down = queue_hub_down_since(ctx->cfg->queue_dir, rt, why, whylen);
	if (down < 0 || down >= ctx->cfg->hub_backoff)
		return -1;
	return down;
}

/*
 * Connect and open the SMTP session. The transport seam: a TCP
 * connection (conn_connect) unless the context plugs in its own opener
 * (unit tests hand over stub connections).
 */
static int
session_attempt(const struct deliver_ctx *ctx, struct hub_session *hs,
    const struct route *rt, const struct smtp_params *sp)
{
	struct conn *conn = NULL;
	int rc;

	if (smtp_precheck(sp, &hs->res, &hs->err) != ST_OK)
		return hs->err.status;
	if (ctx->connect != NULL)
		rc = ctx->connect(ctx->connect_arg, rt, ctx->cfg->timeout,
		    &conn, &hs->err);
	else
		rc = conn_connect_from(&conn, rt->host, rt->port,
		    ctx->cfg->timeout, ctx->cfg->source_address,
		    ctx->cfg->address_family, &hs->err);
	if (rc != ST_OK)
		return rc;
	/* smtp_open takes the connection over, even when it fails. */
	return smtp_open(&hs->smtp, conn, sp, &hs->res, &hs->err);
}

/* Did the hub refuse the bearer token (smtp.c's auth_bearer)? */
static int
token_refused(const struct hub_session *hs)
{
	return hs->res.stage == STAGE_AUTH && hs->res.code >= 400 &&
	    hs->err.hint == HINT_AUTH;
}

/*
 * AuthMethod=XOAUTH2/OAUTHBEARER (oauth.c): a token for the session; if
 * the hub refuses one that was not fresh, one refresh and one more try.
 * A refusal that stands names the key to look at.
 */
static int
session_oauth(const struct deliver_ctx *ctx, struct hub_session *hs,
    const struct route *rt, struct smtp_params *sp)
{
	struct oauth_token *t;
	int rc;

	if ((t = malloc(sizeof(*t))) == NULL)
		return error_set(&hs->err, ST_OSERR, "out of memory");
	rc = oauth_token_get(ctx->cfg, OAUTH_MARGIN, 0, t, &hs->err);
	if (rc == ST_OK) {
		sp->token = t->token;
		rc = session_attempt(ctx, hs, rt, sp);
	}
	if (rc != ST_OK && token_refused(hs) && !t->refreshed &&
	    oauth_refresher(ctx->cfg)) {
		log_line(LOG_NOTICE, "hub %s:%s refused the OAuth token: "
		    "refreshing it and trying once more", rt->host, rt->port);
		if (t->note[0] != '\0')
			log_line(LOG_WARNING, "%s", t->note);
		oauth_token_wipe(t);
		memset(&hs->res, 0, sizeof(hs->res));
		error_clear(&hs->err);
		if ((rc = oauth_token_get(ctx->cfg, OAUTH_MARGIN, 1, t,
		    &hs->err)) == ST_OK)
			rc = session_attempt(ctx, hs, rt, sp);
	}
	if (rc != ST_OK && token_refused(hs))
		error_prefix(&hs->err, "%s", t->key);
	if (t->note[0] != '\0')
		log_line(LOG_WARNING, "%s", t->note);
	oauth_token_wipe(t);
	free(t);
	sp->token = NULL;
	return rc;
}

static int
session_connect(const struct deliver_ctx *ctx, struct hub_session *hs,
    const struct route *rt)
{
	struct smtp_params sp;

	memset(&sp, 0, sizeof(sp));
	sp.cfg = ctx->cfg;
	sp.helo = ctx->hostname;
	sp.transcript = ctx->transcript;
	sp.transcript_arg = ctx->transcript_arg;
	if (oauth_wanted(ctx->cfg))
		return session_oauth(ctx, hs, rt, &sp);
	return session_attempt(ctx, hs, rt, &sp);
}

int
deliver_probe(const struct deliver_ctx *ctx, const struct route *rt,
    struct smtp_result *res, struct error *err)
{
	struct hub_session hs;
	int rc;

	memset(&hs, 0, sizeof(hs));
	error_clear(&hs.err);
	rc = session_connect(ctx, &hs, rt);
	*res = hs.res;
	*err = hs.err;
	if (rc == ST_OK)
		deliver_session_close(&hs);	/* QUIT, nothing else */
	return rc;
}

static void
session_failed(const struct deliver_ctx *ctx, struct hub_session *hs,
    const struct route *rt)
{
	struct error merr;

	hs->smtp = NULL;
	hs->failed = 1;
	if (hs->err.status == ST_TEMP && queue_hub_mark_down(
	    ctx->cfg->queue_dir, rt, hs->err.text, &merr) != ST_OK)
		log_line(LOG_WARNING, "HubBackoff: %s", merr.text);
	if (hs->err.hint != HINT_NONE)
		log_line(LOG_WARNING, "hub %s:%s needs an administrator: %s",
		    rt->host, rt->port, hs->err.text);
}

static int
session_open(const struct deliver_ctx *ctx, struct hub_session *hs,
    const struct route *rt)
{
	struct error merr;

	if (hs->smtp != NULL && !same_route(&hs->route, rt))
		deliver_session_close(hs);
	if (!same_route(&hs->route, rt)) {
		hs->failed = 0;
		hs->route = *rt;
	}
	if (hs->smtp != NULL || hs->failed)
		return hs->failed ? hs->err.status : ST_OK;
	memset(&hs->res, 0, sizeof(hs->res));
	error_clear(&hs->err);
	if (session_connect(ctx, hs, rt) != ST_OK) {
		session_failed(ctx, hs, rt);
		return hs->err.status;
	}
	if (queue_hub_mark_up(ctx->cfg->queue_dir, rt, &merr) != ST_OK)
		log_line(LOG_WARNING, "HubBackoff: %s", merr.text);
	if (ctx->cfg->tls != TLS_NONE && !ctx->cfg->tls_verify)
		log_line(LOG_WARNING, "TLS certificate of %s not verified "
		    "(TLSVerify=NO)", rt->host);
	return ST_OK;
}

/* Open, or reset a reused session (RSET only where it is needed). */
static int
session_ready(const struct deliver_ctx *ctx, struct hub_session *hs,
    const struct route *rt)
{
	struct error rseterr;
	int rc;

	rc = session_open(ctx, hs, rt);
	if (rc == ST_OK && hs->used && smtp_reset(hs->smtp, &rseterr) !=
	    ST_OK) {
		deliver_session_close(hs);
		rc = session_open(ctx, hs, rt);
	}
	return rc;
}

/* ------------------------------------------------------------ attempt */

/*
 * RetryInterval doubled per attempt, at most MaxRetryInterval, then up
 * to a fifth more at random: a fleet whose hub comes back must not come
 * back to it in the same second. Never less than the interval, which
 * stays the minimum it was.
 */
static long long
deliver_retry_delay(const struct config *cfg, unsigned int attempts)
{
	long long d = cfg->retry_interval, spread;
	unsigned int i;

	if (d <= 0)
		return 0;
	for (i = 1; i < attempts && d < cfg->max_retry_interval; i++)
		d *= 2;
	if (d > cfg->max_retry_interval)
		d = cfg->max_retry_interval;
	spread = d / 5;
	if (spread > (long long)UINT32_MAX - 1)
		spread = (long long)UINT32_MAX - 1;
	return d + (long long)arc4random_uniform((uint32_t)spread + 1);
}

/* The envelope of e's pending recipients; map[i] indexes e->rcpt. */
static int
pending_envelope(struct queue_entry *e, int data_fd, struct envelope *env,
    size_t **map)
{
	size_t i;

	memset(env, 0, sizeof(*env));
	env->rcpt = calloc(e->nrcpt, sizeof(*env->rcpt));
	*map = calloc(e->nrcpt, sizeof(**map));
	if (env->rcpt == NULL || *map == NULL) {
		free(env->rcpt);
		free(*map);
		return -1;
	}
	for (i = 0; i < e->nrcpt; i++) {
		if (e->rcpt[i].state != RS_PENDING)
			continue;
		env->rcpt[env->nrcpt].addr = e->rcpt[i].addr;
		(*map)[env->nrcpt++] = i;
	}
	/* clang 14 forgets env->rcpt when strlcpy fills a field of *env. */
	/* NOLINTNEXTLINE(clang-analyzer-unix.Malloc): no leak, see above */
	(void)strlcpy(env->sender, e->sender, sizeof(env->sender));
	env->dsn = e->dsn;
	env->body_8bit = e->body_8bit;
	env->spool_fd = data_fd;
	env->size = e->size;
	return 0;
}

/*
 * Carry the hub's answers into the entry: accepted -> sent, refused for
 * good -> failed (to bounce), anything else stays pending with why.
 */
static void
apply_answers(struct queue_entry *e, struct hub_session *hs,
    const struct envelope *env, const size_t *map, int rc,
    const struct error *err)
{
	size_t i;

	for (i = 0; i < env->nrcpt; i++) {
		struct queue_rcpt *r = &e->rcpt[map[i]];
		const struct smtp_rcpt *a = &env->rcpt[i];
		enum status st;

		if (rc == ST_OK && a->status == ST_OK) {
			r->state = RS_SENT;
			(void)queue_rcpt_set_reply(r, hs->res.reply);
			log_rcpt(e, hs, r, "sent");
			continue;
		}
		if (a->code != 0 && a->status != ST_OK) {
			st = a->status;		/* this recipient's answer */
			(void)queue_rcpt_set_reply(r, a->reply != NULL ?
			    a->reply : "");
		} else {
			st = err->status;	/* the transaction's */
			(void)queue_rcpt_set_reply(r, err->text);
		}
		if (st == ST_PERM) {
			r->state = RS_FAILED;
			r->notify = 1;
			log_rcpt(e, hs, r, "bounced");
		} else	/* status=deferred only once no hub is left */
			log_svc(LOG_INFO, LOGSVC_SMTP, "%s: host %s said: %s "
			    "(for <%s>)", e->qid, hs->res.relay[0] != '\0' ?
			    hs->res.relay : "none", r->reply, r->addr);
	}
}

/* The final word on the recipients still pending after every hub. */
static void
log_deferred(const struct queue_entry *e, const struct hub_session *hs)
{
	size_t i;

	for (i = 0; i < e->nrcpt; i++)
		if (e->rcpt[i].state == RS_PENDING)
			log_rcpt(e, hs, &e->rcpt[i], "deferred");
}

/* Every pending recipient: deferred for one reason, or failed (perm). */
static void
defer_all(struct queue_entry *e, const struct hub_session *hs,
    const struct error *why, int perm)
{
	size_t i;

	for (i = 0; i < e->nrcpt; i++) {
		struct queue_rcpt *r = &e->rcpt[i];

		if (r->state != RS_PENDING)
			continue;
		(void)queue_rcpt_set_reply(r, why->text);
		if (perm) {
			r->state = RS_FAILED;
			r->notify = 1;
		}
		log_rcpt(e, hs, r, perm ? "bounced" : "deferred");
	}
}

static size_t
count_state(const struct queue_entry *e, enum rcpt_state state)
{
	size_t i, n = 0;

	for (i = 0; i < e->nrcpt; i++)
		n += e->rcpt[i].state == state;
	return n;
}

static int
finish_attempt(const struct deliver_ctx *ctx, struct queue_entry *e,
    const struct error *why, struct error *err)
{
	e->attempts++;
	if (count_state(e, RS_PENDING) == 0)
		return ST_OK;
	(void)strlcpy(e->last_error, why->text, sizeof(e->last_error));
	e->next_retry = time(NULL) + deliver_retry_delay(ctx->cfg,
	    e->attempts);
	err->status = ST_TEMP;
	err->hint = why->hint;
	(void)strlcpy(err->text, why->text, sizeof(err->text));
	return ST_TEMP;
}

/*
 * Before the final dot of a committed entry (any queue run: -q, -odb,
 * the runner spawned after a send): record "possible duplicate" on disk,
 * so that a runner killed while waiting for the hub's reply leaves an
 * entry whose next delivery is logged as a possible duplicate, and goes
 * to that hub only (dup-hub).
 */
struct dot_mark {
	const struct deliver_ctx	*ctx;
	struct queue_entry		*e;
	const struct route		*rt;
};

static void
mark_before_dot(void *arg)
{
	struct dot_mark *m = arg;
	struct error err;
	int was = m->e->possible_dup;
	struct route was_hub = m->e->dup_hub;

	m->e->possible_dup = 1;
	m->e->dup_hub = *m->rt;
	if (queue_update(m->ctx->cfg->queue_dir, m->e, &err) != ST_OK)
		log_line(LOG_WARNING, "%s: %s", m->e->qid, err.text);
	m->e->possible_dup = was;
	m->e->dup_hub = was_hub;
}

/* One transaction over an open session; answers go into e. */
static int
transact(const struct deliver_ctx *ctx, struct hub_session *hs,
    struct queue_entry *e, const struct envelope_input *in,
    struct error *txerr)
{
	struct envelope env;
	struct smtp_result res;
	struct dot_mark mark;
	long long started;
	size_t *map;
	int rc;

	if (pending_envelope(e, in->data_fd, &env, &map) == -1) {
		(void)error_set(txerr, ST_OSERR, "out of memory");
		return -1;
	}
	memset(&res, 0, sizeof(res));
	if (in->committed) {
		mark.ctx = ctx;
		mark.e = e;
		mark.rt = &hs->route;
		env.before_dot = mark_before_dot;
		env.before_dot_arg = &mark;
	}
	if (e->possible_dup)
		log_line(LOG_WARNING, "%s: an earlier attempt may have "
		    "delivered it (interrupted after the final dot): possible "
		    "duplicate", e->qid);
	started = deadline_now_ms();
	rc = smtp_send(hs->smtp, &env, &res, txerr);
	res.tx_ms = deadline_now_ms() - started;
	/* The session's relay and TLS facts come from smtp_open. */
	if (res.relay[0] == '\0')
		(void)strlcpy(res.relay, hs->res.relay, sizeof(res.relay));
	if (res.tls[0] == '\0')
		(void)strlcpy(res.tls, hs->res.tls, sizeof(res.tls));
	hs->res = res;
	if (!hs->used)		/* the session's first transaction */
		log_tls(&hs->res);
	/* A stale session took nothing: try_hub tries again, no answers. */
	if (rc != ST_OK && res.stale) {
		smtp_envelope_clear(&env);
		free(env.rcpt);
		free(map);
		return rc;
	}
	apply_answers(e, hs, &env, map, rc, txerr);
	hs->used = 1;
	smtp_envelope_clear(&env);
	free(env.rcpt);
	free(map);
	return rc;
}

/* why = err, naming the hub when err's text does not already. */
static void
name_hub(struct error *why, const struct error *err, const struct route *rt)
{
	char text[ERR_MAX + HOST_MAX + PORT_MAX + 8];

	*why = *err;
	if (strstr(err->text, rt->host) != NULL)
		return;
	(void)snprintf(text, sizeof(text), "hub %s:%s: %s", rt->host,
	    rt->port, err->text);
	(void)strlcpy(why->text, text, sizeof(why->text));
}

/*
 * One hub's try at e's pending recipients. ST_OK: nothing is pending
 * any more; ST_TEMP: some still are (why says why, naming the hub);
 * ST_OSERR. *stop: no other hub may be tried, because the reply to the
 * final dot was lost (the message may be there: possible duplicate).
 * *tx: a transaction ran, so its recipients were logged.
 */
static int
try_hub(const struct deliver_ctx *ctx, struct hub_session *hs,
    struct queue_entry *e, const struct envelope_input *in,
    const struct route *rt, struct error *why, int *stop, int *tx)
{
	struct error txerr;
	int rc, again = 1;

	error_clear(&txerr);
	*tx = 0;
	for (;;) {
		if (session_ready(ctx, hs, rt) != ST_OK) {
			name_hub(why, &hs->err, rt);
			mark_down_in_run(hs, rt, why->text);
			log_line(LOG_NOTICE, "%s: hub %s:%s cannot take it "
			    "now: %s", e->qid, rt->host, rt->port,
			    hs->err.text);
			return ST_TEMP;
		}
		if ((rc = transact(ctx, hs, e, in, &txerr)) == -1) {
			*why = txerr;
			return ST_OSERR;
		}
		/* A reused session gone stale (its RSET failed): once more
		 * on a new one, as a RSET sent alone would have led to. */
		if (rc == ST_OK || !hs->res.stale || !again)
			break;
		again = 0;
		deliver_session_close(hs);
	}
	*tx = 1;
	if (rc != ST_OK && hs->res.dot_sent && hs->res.code == 0) {
		e->possible_dup = 1;
		e->dup_hub = *rt;
		*stop = 1;
		log_line(LOG_WARNING, "%s: the reply to the final dot was "
		    "lost; the hub may have the message: possible duplicate "
		    "on retry", e->qid);
	}
	/* After a failed transaction the session may be out of step. */
	if (rc != ST_OK) {
		enum smtp_stage stage = hs->res.stage;

		deliver_session_close(hs);
		name_hub(why, &txerr, rt);
		if (hub_level_failure(stage)) {
			hs->failed = 1;
			mark_down_in_run(hs, rt, why->text);
		}
	} else
		name_hub(why, &txerr, rt);
	return count_state(e, RS_PENDING) == 0 ? ST_OK : ST_TEMP;
}

/*
 * Is rt to be tried in this pass over the hubs? Pass 0 takes the hubs
 * not backed off (HubBackoff) and not failed earlier in this run; pass 1
 * the backed-off ones, in a queue run only (a submission queues rather
 * than wait on them; a run tries them last). A session already open to
 * rt is never backed off. A skipped hub explains itself in why when
 * nothing else has.
 */
static int
hub_wanted(const struct deliver_ctx *ctx, const struct hub_session *hs,
    const struct route *rt, int pass, int queue_run, struct error *why)
{
	char text[ERR_MAX];
	const char *earlier;
	long long down;

	if ((earlier = down_in_run(hs, rt)) != NULL) {
		if (pass == 0 && why->status == ST_OK)	/* as it was then */
			(void)error_set(why, ST_TEMP, "%s", earlier);
		return 0;
	}
	down = hs->smtp != NULL && same_route(&hs->route, rt) ? -1 :
	    backoff_since(ctx, rt, text, sizeof(text));
	if (down >= 0 && pass == 0 && why->status == ST_OK)
		(void)error_set(why, ST_TEMP, "hub %s:%s failed %llds ago, "
		    "not tried (HubBackoff): %s", rt->host, rt->port, down,
		    text);
	return pass == 0 ? down < 0 : down >= 0 && queue_run;
}

/*
 * One delivery attempt of e's pending recipients: each hub in turn
 * (hub_wanted) while recipients are pending for a reason that says "this
 * hub cannot take it now" (no connection, 4xx, TLS or AUTH refused); a
 * 5xx is an answer and leaves nothing pending. Updates the recipients'
 * states (sent / failed with notify set / still pending), attempts,
 * next_retry, last_error and possible_dup. ST_OK when nothing is pending
 * any more, ST_TEMP when something is (err says why).
 */
static int
deliver_attempt(const struct deliver_ctx *ctx, struct hub_session *hs,
    struct queue_entry *e, const struct envelope_input *in,
    struct error *err)
{
	struct route rt[HUBS_MAX];
	struct error why;
	size_t n, i;
	int pass, rc = ST_TEMP, stop = 0, tx = 0;

	error_clear(err);
	error_clear(&why);
	if (count_state(e, RS_PENDING) == 0)
		return ST_OK;
	n = routes_of(ctx, e, rt);
	for (pass = 0; pass < 2 && rc == ST_TEMP && !stop; pass++)
		for (i = 0; i < n && rc == ST_TEMP && !stop; i++)
			if (hub_wanted(ctx, hs, &rt[i], pass, in->committed,
			    &why))
				rc = try_hub(ctx, hs, e, in, &rt[i], &why,
				    &stop, &tx);
	if (rc == ST_OSERR)
		return error_set(err, ST_OSERR, "%s", why.text);
	if (rc == ST_OK)
		error_clear(&why);
	else if (why.status == ST_OK)
		(void)error_set(&why, ST_TEMP, "no hub to try");
	if (rc != ST_OK && !tx && e->dup_hub.host[0] != '\0')
		log_line(LOG_NOTICE, "%s: waits for hub %s:%s, the only one "
		    "that may have it (possible duplicate); no other hub is "
		    "tried", e->qid, e->dup_hub.host, e->dup_hub.port);
	if (rc != ST_OK && !tx)
		defer_all(e, hs, &why, 0);
	else if (rc != ST_OK)
		log_deferred(e, hs);
	return finish_attempt(ctx, e, &why, err);
}

/* ---------------------------------------------------------- settlement */

static void
count_outcome(const struct queue_entry *e, struct outcome *out)
{
	out->sent = count_state(e, RS_SENT);
	out->failed = count_state(e, RS_FAILED);
	out->pending = count_state(e, RS_PENDING);
}

static int
report_owed(const struct queue_entry *e)
{
	size_t i;

	for (i = 0; i < e->nrcpt; i++)
		if (e->rcpt[i].notify)
			return 1;
	return 0;
}

static void
bounce_names_of(const struct deliver_ctx *ctx, struct bounce_names *bn)
{
	bn->queue_dir = ctx->cfg->queue_dir;
	bn->domain = ctx->domain;
	bn->hostname = ctx->hostname;
	bn->hub = ctx->cfg->hub_host;
}

/*
 * Write the report owed for e's refused recipients, before e itself is
 * committed, updated or removed: the entry on disk then never still
 * says "bounce" for a report that was made (one failure, one report).
 */
static void
make_report(const struct deliver_ctx *ctx, struct queue_entry *e,
    int data_fd, char bqid[QID_MAX])
{
	struct bounce_names bn;
	struct error err;

	bqid[0] = '\0';
	error_clear(&err);
	bounce_names_of(ctx, &bn);
	if (bounce_create(&bn, e, data_fd, bqid, &err) != ST_OK)
		log_line(LOG_ERR, "%s: %s; the report is kept to try again",
		    e->qid, err.text);
}

/* Commit a submission (queue/ or failed/); logs what became of it. */
static void
commit_new(const struct deliver_ctx *ctx, const struct queue_entry *e,
    int data_fd, int failed, struct outcome *out)
{
	if (queue_commit(ctx->cfg->queue_dir, e, data_fd, failed,
	    &out->err) != ST_OK) {
		log_line(LOG_ERR, "%s: cannot queue: %s", e->qid,
		    out->err.text);
		out->kind = OUT_NOT_QUEUED;
		out->err.status = ST_CANTCREAT;
		return;
	}
	out->committed = 1;
	log_svc(LOG_INFO, LOGSVC_QMGR, "%s: %s", e->qid, failed ?
	    "kept in the failed area" : "queued for a later attempt");
}

/* A committed entry after its attempt: update, move or remove. */
static void
settle_committed(const struct deliver_ctx *ctx, struct queue_entry *e,
    int keep, int to_failed)
{
	const char *dir = ctx->cfg->queue_dir;
	struct error err;
	int rc;

	error_clear(&err);
	if (keep) {
		if (queue_update(dir, e, &err) != ST_OK)
			log_line(LOG_ERR, "%s: %s", e->qid, err.text);
		return;
	}
	rc = to_failed ? queue_move_failed(dir, e, &err) :
	    queue_remove_unsynced(dir, e, &err);
	if (rc != ST_OK)
		log_line(strstr(err.text, "possible duplicate") != NULL ?
		    LOG_WARNING : LOG_ERR, "%s: %s", e->qid, err.text);
	else if (!to_failed)
		log_svc(LOG_INFO, LOGSVC_QMGR, "%s: removed", e->qid);
}

/* The report made for a submission goes out over the same session. */
static void
send_report_now(const struct deliver_ctx *ctx, struct hub_session *hs,
    const char *bqid)
{
	struct queue_entry b;
	struct envelope_input in;
	struct error err;

	if (bqid[0] == '\0' || hs->failed)
		return;
	queue_entry_init(&b);
	error_clear(&err);
	if (queue_lock_entry(ctx->cfg->queue_dir, bqid, &b, &err) == ST_OK) {
		in.data_fd = b.data_fd;
		in.committed = 1;
		if (deliver_attempt(ctx, hs, &b, &in, &err) == ST_OK)
			(void)queue_remove(ctx->cfg->queue_dir, &b, &err);
		else
			(void)queue_update(ctx->cfg->queue_dir, &b, &err);
	}
	queue_entry_free(&b);
}

/*
 * --metrics' counters: what this attempt made of the message. A queue
 * run (hs given) counts in hs and writes the file every STATS_BATCH
 * messages and at deliver_session_close, not once per message: a
 * flush of thousands must not rewrite it thousands of times. A run
 * killed in between loses at most that many counts, never mail.
 */
#define STATS_BATCH	256

static void
count_stat(const struct deliver_ctx *ctx, struct hub_session *hs,
    const struct queue_entry *e, enum stat_kind kind)
{
	struct error err;
	unsigned long long total = 0;
	int k;

	if (hs != NULL) {
		hs->stats_dir = ctx->cfg->queue_dir;
		hs->stats.count[kind]++;
		if (kind == STAT_SENT)
			hs->stats.last_delivery = (long long)time(NULL);
		for (k = 0; k < STAT_KINDS; k++)
			total += hs->stats.count[k];
		if (total >= STATS_BATCH)
			stats_flush(hs);
		return;
	}
	error_clear(&err);
	if (queue_stats_add(ctx->cfg->queue_dir, kind, &err) != ST_OK)
		log_line(LOG_WARNING, "%s: %s", e->qid, err.text);
}

static enum stat_kind
stat_of(const struct outcome *out, int keep, int to_failed)
{
	if (to_failed)
		return STAT_FAILED;
	if (keep && out->pending > 0)
		return STAT_DEFERRED;
	return out->failed > 0 ? STAT_BOUNCED : STAT_SENT;
}

/*
 * The outcome table after one attempt (or none). committed says whether
 * e is on disk already (a queue run) or only in the spool (a submission,
 * which the error mode -oe? may answer instead of a report).
 */
static void
settle(const struct deliver_ctx *ctx, struct hub_session *hs,
    struct queue_entry *e, const struct envelope_input *in,
    char error_mode, struct outcome *out)
{
	char bqid[QID_MAX];
	int refused, keep, to_failed;

	count_outcome(e, out);
	out->possible_dup = e->possible_dup;
	refused = !in->committed && out->pending == 0 && out->sent == 0 &&
	    out->failed > 0;
	if (refused) {
		out->kind = OUT_REFUSED;
		out->stage = hs->res.stage;
		out->err.status = ST_PERM;
		if (strchr("mwe", error_mode) == NULL)
			for (size_t i = 0; i < e->nrcpt; i++)
				e->rcpt[i].notify = 0;	/* the caller is told */
	}
	make_report(ctx, e, in->data_fd, bqid);
	keep = out->pending > 0 || report_owed(e);
	to_failed = !keep && (refused || (out->failed > 0 &&
	    e->sender[0] == '\0'));
	if (in->committed)
		settle_committed(ctx, e, keep, to_failed);
	else if (keep || to_failed)
		commit_new(ctx, e, in->data_fd, to_failed, out);
	if (out->kind != OUT_NOT_QUEUED)
		count_stat(ctx, in->committed ? hs : NULL, e,
		    stat_of(out, keep, to_failed));
	if (!in->committed && out->kind != OUT_NOT_QUEUED)
		send_report_now(ctx, hs, bqid);
	if (out->kind == OUT_SENT && keep)
		out->kind = OUT_QUEUED;
}

static void
outcome_init(struct outcome *out, const struct queue_entry *e)
{
	memset(out, 0, sizeof(*out));
	error_clear(&out->err);
	out->kind = OUT_SENT;
	out->entry = e;
	(void)strlcpy(out->qid, e->qid, sizeof(out->qid));
}

/* HubBackoff: every hub failed a moment ago; queue without trying. */
static int
backed_off(const struct deliver_ctx *ctx, struct queue_entry *e)
{
	struct route rt[HUBS_MAX];
	char why[ERR_MAX] = "";
	long long down = -1;
	size_t n, i;

	n = routes_of(ctx, e, rt);
	for (i = n; i-- > 0; )
		if ((down = backoff_since(ctx, &rt[i], why, sizeof(why))) < 0)
			return 0;
	/* rt[0], the first hub, is the one named. */
	(void)snprintf(e->last_error, sizeof(e->last_error), "hub %s:%s "
	    "failed %llds ago, not tried (HubBackoff%s): %s", rt[0].host,
	    rt[0].port, down, n > 1 ? ", nor any other hub" : "", why);
	e->next_retry = time(NULL);	/* not tried: due at once */
	log_svc(LOG_NOTICE, LOGSVC_QMGR, "%s: status=deferred (%s)", e->qid,
	    e->last_error);
	count_stat(ctx, NULL, e, STAT_DEFERRED);
	return 1;
}

int
deliver_submission(const struct deliver_ctx *ctx, struct hub_session *hs,
    struct queue_entry *e, int spool_fd, const struct submit_mode *mode,
    struct outcome *out)
{
	struct envelope_input in = { spool_fd, 0 };
	struct error why;

	outcome_init(out, e);
	if (!mode->now || backed_off(ctx, e)) {
		out->kind = OUT_QUEUED;
		out->pending = e->nrcpt;
		commit_new(ctx, e, spool_fd, 0, out);
		return out->err.status;
	}
	error_clear(&why);
	if (deliver_attempt(ctx, hs, e, &in, &why) == ST_OSERR) {
		/* Nothing was sent: the queue keeps it for a later run. */
		log_line(LOG_ERR, "%s: %s", e->qid, why.text);
		out->kind = OUT_QUEUED;
		commit_new(ctx, e, spool_fd, 0, out);
		return out->err.status;
	}
	if (why.status == ST_TEMP)
		out->err = why;		/* the cause, and whether to warn */
	settle(ctx, hs, e, &in, mode->error_mode, out);
	/* Sent or safely queued is success; the text and hint stay. */
	if (out->kind == OUT_SENT || out->kind == OUT_QUEUED)
		out->err.status = ST_OK;
	return out->err.status;
}

void
deliver_entry(const struct deliver_ctx *ctx, struct hub_session *hs,
    struct queue_entry *e, int expired, struct outcome *out)
{
	struct envelope_input in = { e->data_fd, 1 };
	struct error why;

	outcome_init(out, e);
	error_clear(&why);
	if (expired) {
		(void)error_set(&why, ST_PERM, "message expired after %lld s "
		    "in the queue; last error: %s",
		    (long long)ctx->cfg->queue_lifetime,
		    e->last_error[0] != '\0' ? e->last_error : "none");
		defer_all(e, hs, &why, 1);
	} else if (deliver_attempt(ctx, hs, e, &in, &why) == ST_OSERR) {
		/* Nothing was sent: keep the entry as it was. */
		log_line(LOG_ERR, "%s: %s", e->qid, why.text);
		out->kind = OUT_ERROR;
		out->err = why;
		return;
	}
	if (why.status == ST_TEMP)
		out->err = why;
	settle(ctx, hs, e, &in, 'q', out);
}
