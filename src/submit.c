/*
 * submit.c: one message submitted by a local caller (stdin, or one -bs
 * transaction): the envelope sender as far as it is known before the
 * message is read, the message streamed into the spool, the recipients
 * (given, plus -t) through aliases and Root=, the final sender, the
 * route, RateLimit, then deliver.c's settlement; and, after a send, the
 * queue runner started for what else is due. Every path ends in a
 * struct outcome; nothing here prints or picks an exit code.
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "postino.h"

/* "ADDR... text" (sendmail's form), ADDR made printable. */
static void
name_in_error(struct error *err, const char *addr, const char *sep)
{
	char shown[ADDR_MAX], text[ERR_MAX];

	log_sanitize(shown, sizeof(shown), addr, strlen(addr));
	(void)strlcpy(text, shown[0] != '\0' ? shown : "(empty)",
	    sizeof(text));
	(void)strlcat(text, sep, sizeof(text));
	(void)strlcat(text, err->text, sizeof(text));
	(void)strlcpy(err->text, text, sizeof(err->text));
}

int
submit_arg_recipients(const struct options *o, struct addrlist *out,
    struct error *err)
{
	size_t i;

	for (i = 0; i < o->nrcpt_args; i++) {
		const char *a = o->rcpt_args[i];

		if (addr_list_parse(a, strlen(a), out, err) != ST_OK) {
			/* One stderr line: no CR/LF of the caller's in it. */
			name_in_error(err, a, ": ");
			return err->status;
		}
	}
	return ST_OK;
}

/* Stop before delivery: the outcome says why; the caller reports it. */
static int
stopped(struct outcome *out, const struct error *err)
{
	out->kind = OUT_ERROR;
	out->err = *err;
	return err->status;
}

/* SenderPolicy for one submission: the user's line and own address. */
struct sender_ctx {
	const struct config *cfg;
	const struct caller *c;
	char		 own[ADDR_MAX];	/* sender_own() */
	int		 f_allowed;	/* -f given and allowed: the envelope */
};

static int
may_use(const void *arg, const char *addr)
{
	const struct sender_ctx *sc = arg;

	return sender_may_use(&sc->c->allow, sc->own, addr);
}

/* SenderPolicy=refuse: one log line (a broken-into web application shows
 * up in the logs) and the error the caller is told. */
static int
refuse_sender(const struct sender_ctx *sc, const char *what,
    const char *addr, struct error *err)
{
	char shown[ADDR_MAX];

	log_sanitize(shown, sizeof(shown), addr, strlen(addr));
	log_line(LOG_WARNING, "%s: uid=%lu login=%s: refused sender <%s> "
	    "(%s; SenderPolicy=refuse)", sc->c->qid,
	    (unsigned long)sc->c->uid, sc->c->login, shown, what);
	return error_set(err, ST_SENDER, "%s <%s>: not a sender %s may use "
	    "(SenderPolicy=refuse, AllowedSendersFile)", what, shown,
	    sc->c->login);
}

/* -f under align or refuse: kept when allowed, else own (or refused). */
static int
policy_sender(struct sender_ctx *sc, const char *fsender, char *out,
    size_t outlen, struct error *err)
{
	const struct caller *c = sc->c;
	char shown[ADDR_MAX];

	out[0] = '\0';
	if (c->allow_err.status != ST_OK) {
		*err = c->allow_err;
		return err->status;
	}
	if (sender_own(&c->allow, &c->rev, c->login, c->domain, sc->own,
	    sizeof(sc->own), err) != ST_OK)
		return err->status;
	if (fsender == NULL)
		return strlcpy(out, sc->own, outlen) < outlen ? ST_OK :
		    error_set(err, ST_DATA, "sender address too long");
	if (alias_default_sender(sc->cfg, NULL, fsender, c->login, c->domain,
	    out, outlen, err) != ST_OK ||
	    addr_qualify_local(out, outlen, c->domain, err) != ST_OK)
		return err->status;
	if (sender_may_use(&c->allow, sc->own, out)) {
		sc->f_allowed = 1;
		return ST_OK;
	}
	if (sc->cfg->sender_policy == SP_REFUSE)
		return refuse_sender(sc, "-f", out, err);
	log_line(LOG_NOTICE, "%s: uid=%lu login=%s: -f <%s> not allowed, "
	    "sender aligned to <%s>", c->qid, (unsigned long)c->uid, c->login,
	    log_sanitize(shown, sizeof(shown), out, strlen(out)), sc->own);
	return strlcpy(out, sc->own, outlen) < outlen ? ST_OK :
	    error_set(err, ST_DATA, "sender address too long");
}

/*
 * The envelope sender as far as it is known before the message is read
 * (revaliases > -f > login@domain, or SenderPolicy's choice); it also
 * goes into an added From:.
 */
static int
sender_before_reading(struct sender_ctx *sc, const struct options *o,
    char *out, size_t outlen, struct error *err)
{
	const struct caller *c = sc->c;
	char fsender[ADDR_MAX];

	if (o->sender != NULL && (addr_parse_one(o->sender, fsender,
	    sizeof(fsender), err) != ST_OK || (fsender[0] != '\0' &&
	    !addr_is_safe(fsender)))) {
		if (err->text[0] == '\0')
			(void)strlcpy(err->text, "unsafe address",
			    sizeof(err->text));
		error_prefix(err, "-f");
		err->status = ST_DATA;
		return ST_DATA;
	}
	if (sc->cfg->sender_policy != SP_KEEP)
		return policy_sender(sc, o->sender != NULL ? fsender : NULL,
		    out, outlen, err);
	if (alias_default_sender(sc->cfg, &c->rev, o->sender != NULL ?
	    fsender : NULL, c->login, c->domain, out, outlen, err) != ST_OK) {
		if (err->status != ST_CONFIG)
			err->status = ST_DATA;
		return err->status;
	}
	return ST_OK;
}

/*
 * Stream in_fd into a spool file made in the queue directory, rewriting
 * the header as it goes.
 */
static int
read_message(const struct sender_ctx *sc, const struct options *o,
    int in_fd, const char *default_sender, struct message *msg,
    struct error *err)
{
	const struct config *cfg = sc->cfg;
	const struct caller *c = sc->c;
	struct msgopts mo;
	int spool_fd = -1;

	memset(&mo, 0, sizeof(mo));
	mo.ignore_dots = o->ignore_dots;
	mo.extract_rcpts = o->extract;
	mo.domain = c->domain;
	mo.hostname = c->hostname;
	mo.default_from = default_sender;
	mo.full_name = o->full_name != NULL ? o->full_name :
	    getenv("NAME") != NULL ? getenv("NAME") : c->gecos;
	mo.qid = c->qid;
	mo.uid = c->uid;
	mo.now = time(NULL);
	mo.add_headers = (const char *const *)cfg->add_header;
	mo.add_header_count = cfg->add_header_count;
	mo.max_size = cfg->max_message_size;
	mo.policy = cfg->sender_policy;
	mo.may_use = may_use;
	mo.may_use_arg = sc;
	mo.aligned_from = sc->own;
	if (mo.policy != SP_KEEP && default_sender[0] == '\0')
		mo.default_from = sc->own;	/* -f <>: From: is still ours */
	if (queue_spool_create(cfg->queue_dir, &spool_fd, err) != ST_OK)
		return err->status;
	mo.spool_fd = &spool_fd;
	if (message_read(in_fd, cfg->queue_dir, &mo, msg, err) != ST_OK)
		return err->status;
	if (msg->nul_bytes > 0)
		log_line(LOG_WARNING, "%s: removed %zu NUL bytes from the "
		    "message", c->qid, msg->nul_bytes);
	if (msg->lines_split > 0)
		log_line(LOG_NOTICE, "%s: split %zu lines longer than %d "
		    "octets", c->qid, msg->lines_split, SMTP_LINE_MAX);
	return ST_OK;
}

/* given + the header's recipients (-t), then aliases, Root=, domains. */
static int
settle_recipients(const struct config *cfg, const struct caller *c,
    const struct options *o, const struct addrlist *given,
    const struct message *msg, struct addrlist *rcpts, struct error *err)
{
	struct addrlist all;
	size_t i;
	int rc = ST_OK;

	addrlist_init(&all);
	for (i = 0; i < given->n && rc == ST_OK; i++)
		rc = addrlist_add(&all, given->v[i], err);
	for (i = 0; i < msg->header_rcpts.n && rc == ST_OK; i++)
		rc = addrlist_add(&all, msg->header_rcpts.v[i], err);
	if (rc == ST_OK && all.n == 0)
		rc = error_set(err, ST_USAGE, o->extract ? "No recipient "
		    "addresses found in message header" : "Recipient "
		    "addresses must be specified on the command line or via "
		    "the -t option");
	for (i = 0; i < all.n && rc == ST_OK; i++)
		if ((rc = alias_expand(cfg, c->aliases, all.v[i], c->domain,
		    c->hostname, o->no_alias, rcpts, err)) != ST_OK)
			name_in_error(err, all.v[i], "... ");
	addrlist_free(&all);
	return rc;
}

/* The message as an uncommitted queue entry, for deliver.c. */
static int
build_entry(struct queue_entry *e, const struct caller *c, const char *sender,
    const struct addrlist *rcpts, const struct message *msg,
    const struct route *rt, const struct options *o, struct error *err)
{
	size_t i;

	(void)strlcpy(e->qid, c->qid, sizeof(e->qid));
	e->queued = e->next_retry = time(NULL);
	e->uid = c->uid;
	(void)strlcpy(e->sender, sender, sizeof(e->sender));
	e->size = msg->size;
	e->body_8bit = o->body_8bit || msg->eight_bit;
	e->route = *rt;
	e->dsn = o->dsn;
	for (i = 0; i < rcpts->n; i++)
		if (queue_entry_add_rcpt(e, rcpts->v[i], RS_PENDING, err) !=
		    ST_OK)
			return err->status;
	return ST_OK;
}

/*
 * SenderPolicy after the message is read: a refused From:/Sender: stops
 * it; else the envelope is an allowed -f, else the From: address (kept
 * or aligned), else the user's own.
 */
static int
policy_final(const struct sender_ctx *sc, const struct message *msg,
    const char *default_sender, char *sender, size_t len, struct error *err)
{
	const char *pick = default_sender;

	if (sc->cfg->sender_policy == SP_REFUSE && msg->refused[0] != '\0')
		return refuse_sender(sc, msg->refused_field, msg->refused, err);
	if (msg->aligned)
		log_line(LOG_NOTICE, "%s: uid=%lu login=%s: From: aligned to "
		    "<%s>", sc->c->qid, (unsigned long)sc->c->uid,
		    sc->c->login, msg->from_addr);
	if (!sc->f_allowed && msg->had_from && msg->from_addr[0] != '\0')
		pick = msg->from_addr;
	if (strlcpy(sender, pick, len) >= len)
		return error_set(err, ST_DATA, "sender address too long");
	return ST_OK;
}

/* The final sender (a From: may set it), checked for the wire. */
static int
final_sender(const struct sender_ctx *sc, const struct message *msg,
    const char *default_sender, char *sender, size_t len, struct error *err)
{
	if (sc->cfg->sender_policy != SP_KEEP) {
		if (policy_final(sc, msg, default_sender, sender, len, err) !=
		    ST_OK)
			return err->status;
	} else if (alias_final_sender(sc->cfg, msg, default_sender,
	    sc->c->domain, sender, len, err) != ST_OK)
		return err->status;
	if (sender[0] != '\0' && !addr_is_safe(sender))
		return error_set(err, ST_DATA, "sender <%s>: unsafe address",
		    sender);
	return ST_OK;
}

/* revaliases may name the user's own hub; else MailHub at delivery. */
static void
route_for(const struct config *cfg, const struct revalias *rev,
    struct route *rt)
{
	alias_route(cfg, rev, rt);
	if (!rev->found || rev->hub_host[0] == '\0')
		memset(rt, 0, sizeof(*rt));
}

/* RateLimit: the caller's rule, counted in the queue's counter file. */
static int
count_against_limit(const struct config *cfg, const struct caller *c,
    struct error *err)
{
	const struct rate_rule *rule = ratelimit_rule_for(&cfg->rate,
	    c->login);
	int fd, rc, warn = 0;

	if (rule == NULL)
		return ST_OK;
	if (queue_rate_open(cfg->queue_dir, c->uid, &fd, err) != ST_OK)
		return err->status;
	rc = ratelimit_take(rule, fd, c->uid, c->login, &warn, err);
	(void)close(fd);
	if (rc != ST_OK && warn)
		log_line(LOG_WARNING, "%s", err->text);
	return rc;
}

/*
 * A message refused here (RateLimit) is logged as Postfix's cleanup logs
 * a message it rejects at the end of the message, so that log tools
 * count it as rejected: "QID: reject: END-OF-MESSAGE from local: ...".
 */
static void
log_refused(const struct caller *c, const struct queue_entry *e,
    const struct error *err)
{
	log_svc(LOG_NOTICE, LOGSVC_CLEANUP, "%s: reject: END-OF-MESSAGE from "
	    "local: 4.7.1 %s; from=<%s> to=<%s>", c->qid, err->text,
	    e->sender, e->nrcpt > 0 ? e->rcpt[0].addr : "");
}

void
submit_deliver_ctx(const struct config *cfg, const struct caller *c,
    struct deliver_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->cfg = cfg;
	ctx->domain = c->domain;
	/* EHLO and Reporting-MTA: a qualified name, never localhost. */
	ctx->hostname = c->helo[0] != '\0' ? c->helo : c->hostname;
	ctx->transcript = c->transcript;
	ctx->transcript_arg = c->transcript_arg;
}

/* Hand the entry to deliver.c; start a runner where one is wanted. */
static int
relay(const struct config *cfg, const struct caller *c,
    const struct options *o, struct queue_entry *e, struct message *msg,
    struct outcome *out)
{
	struct deliver_ctx ctx;
	struct submit_mode mode;
	struct runner_filter f;
	struct hub_session hs;

	submit_deliver_ctx(cfg, c, &ctx);
	memset(&hs, 0, sizeof(hs));
	mode.now = o->delivery == DELIVER_NOW;
	mode.error_mode = o->error_mode != '\0' ? o->error_mode : 'p';
	(void)deliver_submission(&ctx, &hs, e, msg->fd, &mode, out);
	deliver_session_close(&hs);
	memset(&f, 0, sizeof(f));
	runner_filter_for(&f, c->uid);
	if (o->delivery == DELIVER_BACKGROUND && out->committed) {
		message_free(msg);	/* release the entry's lock */
		f.qid = e->qid;
		f.force = 1;
		runner_spawn(&ctx, &f);
	} else if (out->kind == OUT_SENT && !hs.failed &&
	    runner_has_due(cfg->queue_dir, &f) &&
	    !queue_runner_active(cfg->queue_dir)) {
		message_free(msg);
		runner_spawn(&ctx, &f);
	}
	return out->err.status;
}

/* The message is read: recipients, sender, route, limit, delivery. */
static int
submit_read(const struct sender_ctx *sc, const struct options *o,
    const struct addrlist *given, const char *default_sender,
    struct message *msg, struct queue_entry *e, struct outcome *out)
{
	const struct config *cfg = sc->cfg;
	const struct caller *c = sc->c;
	const struct revalias *rev = &c->rev;
	struct addrlist rcpts;
	struct route rt;
	struct error err;
	char sender[ADDR_MAX];
	int rc;

	error_clear(&err);
	addrlist_init(&rcpts);
	if ((rc = settle_recipients(cfg, c, o, given, msg, &rcpts, &err)) ==
	    ST_OK && (rc = final_sender(sc, msg, default_sender, sender,
	    sizeof(sender), &err)) == ST_OK) {
		route_for(cfg, rev, &rt);
		if ((rc = build_entry(e, c, sender, &rcpts, msg, &rt, o,
		    &err)) == ST_OK) {
			/* Received, as Postfix's pickup says it. */
			log_svc(LOG_INFO, LOGSVC_PICKUP, "%s: uid=%lu "
			    "from=<%s>", c->qid, (unsigned long)c->uid,
			    sender);
			if ((rc = count_against_limit(cfg, c, &err)) ==
			    ST_LIMIT)
				log_refused(c, e, &err);
		}
	}
	addrlist_free(&rcpts);
	if (rc != ST_OK)
		return stopped(out, &err);
	/* Taken in: Postfix's qmgr line. */
	log_svc(LOG_INFO, LOGSVC_QMGR, "%s: from=<%s>, size=%lld, nrcpt=%zu "
	    "(queue active)", c->qid, sender, (long long)msg->size, e->nrcpt);
	return relay(cfg, c, o, e, msg, out);
}

int
submit_message(const struct config *cfg, const struct caller *c,
    const struct options *o, int in_fd, const struct addrlist *given,
    struct queue_entry *e, struct outcome *out)
{
	struct message msg;
	struct error err;
	struct sender_ctx sc;
	char default_sender[ADDR_MAX];
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&sc, 0, sizeof(sc));
	sc.cfg = cfg;
	sc.c = c;
	memset(&msg, 0, sizeof(msg));
	msg.fd = -1;
	error_clear(&err);
	out->entry = e;
	(void)strlcpy(out->qid, c->qid, sizeof(out->qid));
	if (c->rev_err.status != ST_OK)
		err = c->rev_err;
	if (err.status != ST_OK || sender_before_reading(&sc, o,
	    default_sender, sizeof(default_sender), &err) != ST_OK) {
		message_drain(in_fd);
		return stopped(out, &err);
	}
	if ((rc = read_message(&sc, o, in_fd, default_sender, &msg,
	    &err)) != ST_OK) {
		/* e.g. a -t header that does not parse: read the rest. */
		if (rc != ST_IOERR && rc != ST_OSERR)
			message_drain(in_fd);
		message_free(&msg);
		return stopped(out, &err);
	}
	rc = submit_read(&sc, o, given, default_sender, &msg, e, out);
	message_free(&msg);
	return rc;
}
