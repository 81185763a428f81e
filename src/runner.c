/*
 * runner.c: delivering queue entries. One attempt at one entry over a
 * reused SMTP session (the same code serves a fresh submission, before
 * anything is committed, and `sendmail -q`), the retry schedule, expiry
 * after QueueLifetime, RFC 3464 bounces, and the queue pass itself.
 * Like main(), the runner maps outcomes to log lines; it never exits.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "postino.h"

#define BOUNCE_HEADERS_MAX	(64 * 1024)	/* original headers quoted */

/* ------------------------------------------------------------ logging */

static void
log_rcpt(const struct queue_entry *e, const struct hub_session *hs,
    const struct queue_rcpt *r, const char *status)
{
	double delay = difftime(time(NULL), e->queued);

	log_line(r->state == RS_SENT ? LOG_INFO : LOG_NOTICE,
	    "%s: to=<%s>, relay=%s, delay=%.0f, tls=%s, status=%s (%s)",
	    e->qid, r->addr, hs->res.relay[0] != '\0' ? hs->res.relay :
	    "none", delay, hs->res.tls[0] != '\0' ? hs->res.tls : "none",
	    status, r->reply);
}

/* ------------------------------------------------------------ session */

void
runner_session_close(struct hub_session *hs)
{
	if (hs->smtp != NULL)
		smtp_close(hs->smtp);
	hs->smtp = NULL;
	hs->used = 0;
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

static int
session_open(const struct runner_ctx *ctx, struct hub_session *hs,
    const struct route *entry_route)
{
	struct smtp_params sp;
	struct route dflt;
	struct error merr;
	const struct route *rt = entry_route;
	int rc;

	/* Entries without their own hub follow the current MailHub, so that
	 * fixing a wrong MailHub also delivers what is queued. */
	if (rt->host[0] == '\0') {
		memset(&dflt, 0, sizeof(dflt));
		(void)strlcpy(dflt.host, ctx->cfg->hub_host, sizeof(dflt.host));
		(void)strlcpy(dflt.port, ctx->cfg->hub_port, sizeof(dflt.port));
		rt = &dflt;
	}

	if (hs->smtp != NULL && !same_route(&hs->route, rt))
		runner_session_close(hs);
	if (!same_route(&hs->route, rt)) {
		hs->failed = 0;
		hs->route = *rt;
	}
	if (hs->smtp != NULL || hs->failed)
		return hs->failed ? hs->err.status : ST_OK;
	memset(&sp, 0, sizeof(sp));
	memset(&hs->res, 0, sizeof(hs->res));
	error_clear(&hs->err);
	sp.cfg = ctx->cfg;
	sp.route = rt;
	sp.helo = ctx->hostname;
	sp.transcript = ctx->transcript;
	sp.transcript_arg = ctx->transcript_arg;
	/* A group-only client key (UseTLSCert) is read while it opens. */
	if (ctx->cfg->use_tls_cert && priv_group_enter(&hs->err) != ST_OK) {
		hs->failed = 1;
		return hs->err.status;
	}
	rc = smtp_open(&hs->smtp, &sp, &hs->res, &hs->err);
	if (ctx->cfg->use_tls_cert)
		priv_group_leave();
	error_clear(&merr);
	if (rc != ST_OK) {
		hs->smtp = NULL;
		hs->failed = 1;
		if (hs->err.status == ST_TEMP &&
		    queue_hub_mark_down(ctx->cfg->queue_dir, rt,
		    hs->err.text, &merr) != ST_OK)
			log_line(LOG_WARNING, "HubBackoff: %s", merr.text);
		if (hs->err.hint != HINT_NONE)
			log_line(LOG_WARNING, "hub %s:%s needs an "
			    "administrator: %s", rt->host, rt->port,
			    hs->err.text);
		return hs->err.status;
	}
	if (queue_hub_mark_up(ctx->cfg->queue_dir, rt, &merr) != ST_OK)
		log_line(LOG_WARNING, "HubBackoff: %s", merr.text);
	if (ctx->cfg->tls != TLS_NONE && !ctx->cfg->tls_verify)
		log_line(LOG_WARNING, "TLS certificate of %s not verified "
		    "(TLSVerify=NO)", rt->host);
	return ST_OK;
}

/* ------------------------------------------------------------ attempt */

static long long
retry_delay(const struct config *cfg, unsigned int attempts)
{
	long long d = cfg->retry_interval;
	unsigned int i;

	if (d <= 0)
		return 0;

	for (i = 1; i < attempts && d < cfg->max_retry_interval; i++)
		d *= 2;
	return d < cfg->max_retry_interval ? d : cfg->max_retry_interval;
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
		(void)strlcpy(env->rcpt[env->nrcpt].addr, e->rcpt[i].addr,
		    sizeof(env->rcpt[0].addr));
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
			(void)strlcpy(r->reply, hs->res.reply,
			    sizeof(r->reply));
			log_rcpt(e, hs, r, "sent");
			continue;
		}
		if (a->code != 0 && a->status != ST_OK) {
			st = a->status;		/* this recipient's answer */
			(void)strlcpy(r->reply, a->reply, sizeof(r->reply));
		} else {
			st = err->status;	/* the transaction's */
			(void)strlcpy(r->reply, err->text, sizeof(r->reply));
		}
		if (st == ST_PERM) {
			r->state = RS_FAILED;
			r->notify = 1;
			log_rcpt(e, hs, r, "bounced");
		} else
			log_rcpt(e, hs, r, "deferred");
	}
}

/* Every pending recipient is deferred for one reason (hub unusable). */
static int
defer_all(struct queue_entry *e, struct hub_session *hs,
    const struct error *why, int perm)
{
	size_t i;

	for (i = 0; i < e->nrcpt; i++) {
		struct queue_rcpt *r = &e->rcpt[i];

		if (r->state != RS_PENDING)
			continue;
		(void)strlcpy(r->reply, why->text, sizeof(r->reply));
		if (perm) {
			r->state = RS_FAILED;
			r->notify = 1;
		}
		log_rcpt(e, hs, r, perm ? "bounced" : "deferred");
	}
	return perm ? ST_OK : ST_TEMP;
}

static int
count_pending(const struct queue_entry *e)
{
	size_t i;
	int n = 0;

	for (i = 0; i < e->nrcpt; i++)
		n += e->rcpt[i].state == RS_PENDING;
	return n;
}

static int
finish_attempt(const struct runner_ctx *ctx, struct queue_entry *e,
    const struct error *why, struct error *err)
{
	e->attempts++;
	if (count_pending(e) == 0)
		return ST_OK;
	(void)strlcpy(e->last_error, why->text, sizeof(e->last_error));
	e->next_retry = time(NULL) + retry_delay(ctx->cfg, e->attempts);
	err->status = ST_TEMP;
	err->hint = why->hint;
	(void)strlcpy(err->text, why->text, sizeof(err->text));
	return ST_TEMP;
}

/*
 * Before the final dot of a queued entry: record "possible duplicate" on
 * disk, so that a runner killed while waiting for the hub's reply leaves
 * an entry whose next delivery is logged as a possible duplicate.
 */
struct dot_mark {
	const struct runner_ctx	*ctx;
	struct queue_entry	*e;
};

static void
mark_before_dot(void *arg)
{
	struct dot_mark *m = arg;
	struct error err;
	int was = m->e->possible_dup;

	m->e->possible_dup = 1;
	(void)priv_regain(&err);
	if (queue_update(m->ctx->cfg->queue_dir, m->e, &err) != ST_OK)
		log_line(LOG_WARNING, "%s: %s", m->e->qid, err.text);
	(void)priv_drop(&err);
	m->e->possible_dup = was;
}

int
runner_attempt(const struct runner_ctx *ctx, struct hub_session *hs,
    struct queue_entry *e, int data_fd, struct error *err)
{
	struct envelope env;
	struct smtp_result res;
	struct error txerr;
	struct dot_mark mark;
	size_t *map;
	int rc;

	error_clear(err);
	error_clear(&txerr);
	if (count_pending(e) == 0)
		return ST_OK;
	/*
	 * The network runs without the group privilege; only a client
	 * key (UseTLSCert) may need it to be read while the session opens.
	 */
	if (!ctx->cfg->use_tls_cert)
		(void)priv_drop(err);
	rc = session_open(ctx, hs, &e->route);
	/* A reused session is reset first; RSET only where it is needed. */
	if (rc == ST_OK && hs->used && smtp_reset(hs->smtp, &txerr) != ST_OK) {
		runner_session_close(hs);
		rc = session_open(ctx, hs, &e->route);
	}
	(void)priv_drop(err);
	if (rc != ST_OK) {
		(void)defer_all(e, hs, &hs->err, 0);
		(void)priv_regain(err);
		return finish_attempt(ctx, e, &hs->err, err);
	}
	if (pending_envelope(e, data_fd, &env, &map) == -1) {
		(void)priv_regain(err);
		return error_set(err, ST_OSERR, "out of memory");
	}
	memset(&res, 0, sizeof(res));
	error_clear(&txerr);
	if (ctx->from_queue) {
		mark.ctx = ctx;
		mark.e = e;
		env.before_dot = mark_before_dot;
		env.before_dot_arg = &mark;
	}
	if (e->possible_dup)
		log_line(LOG_WARNING, "%s: an earlier attempt may have "
		    "delivered it (interrupted after the final dot): possible "
		    "duplicate", e->qid);
	rc = smtp_send(hs->smtp, &env, &res, &txerr);
	/* The session's relay and TLS facts come from smtp_open. */
	if (res.relay[0] == '\0')
		(void)strlcpy(res.relay, hs->res.relay, sizeof(res.relay));
	if (res.tls[0] == '\0')
		(void)strlcpy(res.tls, hs->res.tls, sizeof(res.tls));
	hs->res = res;
	apply_answers(e, hs, &env, map, rc, &txerr);
	hs->used = 1;
	if (rc != ST_OK && res.dot_sent && res.code == 0) {
		e->possible_dup = 1;
		log_line(LOG_WARNING, "%s: the reply to the final dot was "
		    "lost; the hub may have the message: possible duplicate "
		    "on retry", e->qid);
	}
	/* After a failed transaction the session may be out of step. */
	if (rc != ST_OK) {
		runner_session_close(hs);
		if (hub_level_failure(res.stage))
			hs->failed = 1;
	}
	free(env.rcpt);
	free(map);
	(void)priv_regain(err);	/* the queue steps that follow need it */
	return finish_attempt(ctx, e, &txerr, err);
}

/* ------------------------------------------------------------ bounces */

static int
write_all(int fd, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, s, len);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
write_fmt(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
write_fmt(int fd, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* A truncated part would make a broken report: fail instead. */
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -1;
	return write_all(fd, buf, (size_t)n);
}

/* The original header block (at most BOUNCE_HEADERS_MAX), CRLF lines. */
static int
copy_headers(int out, int data_fd)
{
	char buf[4096];
	off_t off = 0;
	int state = 0;	/* matched bytes of "\r\n\r\n" */

	while (off < BOUNCE_HEADERS_MAX) {
		ssize_t n = pread(data_fd, buf, sizeof(buf), off), i;

		if (n <= 0)
			break;
		for (i = 0; i < n; i++) {
			state = buf[i] == "\r\n\r\n"[state] ? state + 1 :
			    buf[i] == '\r' ? 1 : 0;
			if (state == 4) {
				/* Through the blank line: its CRLF may have
				 * begun in the previous chunk. */
				n = i + 1;
				break;
			}
		}
		if (write_all(out, buf, (size_t)n) == -1)
			return -1;
		off += n;
		if (state == 4)
			return 0;
	}
	return write_all(out, "\r\n", 2);
}

/* "550 5.1.1 text" -> "5.1.1"; else a class default. */
static void
status_code(const char *reply, char *buf, size_t len)
{
	int a, b, c;

	/*
	 * Out of range, a part converts wrong but safely in glibc: at worst
	 * a wrong number in the bounce's Status, which the hub chose anyway.
	 */
	/* NOLINTNEXTLINE(cert-err34-c) */
	if (sscanf(reply, "%*d %d.%d.%d", &a, &b, &c) == 3 && a == 5)
		(void)snprintf(buf, len, "%d.%d.%d", a, b, c);
	else
		(void)strlcpy(buf, "5.0.0", len);
}

static int
write_bounce(const struct runner_ctx *ctx, int fd, const struct queue_entry *e,
    const char *qid, int data_fd)
{
	char date[64], arrival[64], boundary[64], code[32];
	size_t i;
	int bad = 0;

	message_date(time(NULL), date, sizeof(date));
	message_date(e->queued, arrival, sizeof(arrival));
	(void)snprintf(boundary, sizeof(boundary), "%s.%lld/%s", qid,
	    (long long)time(NULL), ctx->hostname);
	bad |= write_fmt(fd, "Received: by %s (postino)\r\n\tid %s; %s\r\n"
	    "Date: %s\r\nFrom: MAILER-DAEMON@%s (Mail Delivery System)\r\n"
	    "To: <%s>\r\nSubject: Undelivered Mail Returned to Sender\r\n"
	    "Message-ID: <%s.bounce@%s>\r\nAuto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n"
	    "This is a MIME-encapsulated message.\r\n\r\n",
	    ctx->hostname, qid, date, date, ctx->domain, e->sender, qid,
	    ctx->domain, boundary);
	bad |= write_fmt(fd, "--%s\r\nContent-Type: text/plain; "
	    "charset=us-ascii\r\n\r\nThis is postino on %s.\r\n\r\n"
	    "Your message %s could not be delivered to one or more "
	    "recipients.\r\nThe mail hub's answer for each is below.\r\n\r\n",
	    boundary, ctx->hostname, e->qid);
	for (i = 0; i < e->nrcpt; i++)
		if (e->rcpt[i].notify)
			bad |= write_fmt(fd, "<%s>: %s\r\n", e->rcpt[i].addr,
			    e->rcpt[i].reply);
	bad |= write_fmt(fd, "\r\n--%s\r\nContent-Type: message/"
	    "delivery-status\r\n\r\nReporting-MTA: dns; %s\r\n"
	    "X-Postino-Queue-ID: %s\r\nArrival-Date: %s\r\n", boundary,
	    ctx->hostname, e->qid, arrival);
	for (i = 0; i < e->nrcpt; i++) {
		if (!e->rcpt[i].notify)
			continue;
		status_code(e->rcpt[i].reply, code, sizeof(code));
		bad |= write_fmt(fd, "\r\nFinal-Recipient: rfc822; %s\r\n"
		    "Action: failed\r\nStatus: %s\r\nRemote-MTA: dns; %s\r\n"
		    "Diagnostic-Code: smtp; %s\r\n", e->rcpt[i].addr, code,
		    e->route.host[0] != '\0' ? e->route.host :
		    ctx->cfg->hub_host, e->rcpt[i].reply);
	}
	bad |= write_fmt(fd, "\r\n--%s\r\nContent-Type: text/rfc822-headers"
	    "\r\n\r\n", boundary);
	bad |= copy_headers(fd, data_fd);
	bad |= write_fmt(fd, "\r\n--%s--\r\n", boundary);
	return bad ? -1 : 0;
}

int
runner_bounce(const struct runner_ctx *ctx, struct queue_entry *e,
    int data_fd, char bounce_qid[QID_MAX], struct error *err)
{
	struct queue_entry b;
	struct stat st;
	size_t i;
	int fd, any = 0;

	bounce_qid[0] = '\0';
	for (i = 0; i < e->nrcpt; i++)
		any |= e->rcpt[i].notify;
	if (!any)
		return ST_OK;
	if (e->sender[0] == '\0') {
		/* Never a bounce to the null sender: keep and tell. */
		log_line(LOG_ERR, "%s: undeliverable message from <>: "
		    "kept in the failed area, no bounce", e->qid);
		for (i = 0; i < e->nrcpt; i++)
			e->rcpt[i].notify = 0;	/* nothing is owed */
		return ST_OK;
	}
	queue_entry_init(&b);
	message_new_qid(b.qid);
	if (queue_spool_create(ctx->cfg->queue_dir, &fd, err) != ST_OK)
		return err->status;
	if (write_bounce(ctx, fd, e, b.qid, data_fd) == -1 ||
	    fstat(fd, &st) == -1) {
		(void)close(fd);
		return error_set(err, ST_CANTCREAT, "cannot write bounce: %s",
		    strerror(errno));
	}
	b.queued = b.next_retry = time(NULL);
	b.uid = getuid();
	b.size = st.st_size;
	b.body_8bit = e->body_8bit;
	b.route = e->route;
	if (queue_entry_add_rcpt(&b, e->sender, RS_PENDING, err) != ST_OK ||
	    queue_commit(ctx->cfg->queue_dir, &b, fd, 0, err) != ST_OK) {
		(void)close(fd);
		queue_entry_free(&b);
		return err->status;
	}
	(void)close(fd);
	log_line(LOG_INFO, "%s: sender non-delivery notification: %s",
	    e->qid, b.qid);
	(void)strlcpy(bounce_qid, b.qid, QID_MAX);
	for (i = 0; i < e->nrcpt; i++)
		e->rcpt[i].notify = 0;
	queue_entry_free(&b);
	return ST_OK;
}

/* ----------------------------------------------------------- the pass */

static int
matches_filter(const struct queue_entry *e, const struct runner_filter *f,
    time_t now)
{
	size_t i, flen;

	if (e->hold)
		return 0;
	if (!f->force && e->next_retry > now)
		return 0;
	if (f->domain == NULL)
		return 1;
	flen = strlen(f->domain);
	for (i = 0; i < e->nrcpt; i++) {
		const char *d = addr_domain(e->rcpt[i].addr);
		size_t dlen = d != NULL ? strlen(d) : 0;

		/* d tested too: an empty filter domain would match NULL. */
		if (d != NULL && e->rcpt[i].state == RS_PENDING &&
		    dlen >= flen &&
		    strcasecmp(d + dlen - flen, f->domain) == 0)
			return 1;
	}
	return 0;
}

/* Past QueueLifetime: every pending recipient fails with the last error. */
static void
expire(const struct runner_ctx *ctx, struct queue_entry *e,
    struct hub_session *hs)
{
	struct error why;

	(void)error_set(&why, ST_PERM, "message expired after %lld s in "
	    "the queue; last error: %s", (long long)ctx->cfg->queue_lifetime,
	    e->last_error[0] != '\0' ? e->last_error : "none");
	(void)defer_all(e, hs, &why, 1);
}

/* After an attempt: remove, keep, or move to failed/, and bounce. */
static void
settle(const struct runner_ctx *ctx, struct queue_entry *e, int rc)
{
	const char *dir = ctx->cfg->queue_dir;
	char bqid[QID_MAX];
	struct error err;
	size_t i;
	int failed = 0;

	error_clear(&err);
	for (i = 0; i < e->nrcpt; i++)
		failed += e->rcpt[i].state == RS_FAILED;
	if (runner_bounce(ctx, e, e->data_fd, bqid, &err) != ST_OK) {
		/* The report is still owed: keep the entry ("bounce"). */
		log_line(LOG_ERR, "%s: %s; kept to try again", e->qid,
		    err.text);
		rc = ST_TEMP;
	}
	if (rc == ST_TEMP) {
		if (queue_update(dir, e, &err) != ST_OK)
			log_line(LOG_ERR, "%s: %s", e->qid, err.text);
		return;
	}
	if (failed > 0 && e->sender[0] == '\0')
		rc = queue_move_failed(dir, e, &err);
	else
		rc = queue_remove(dir, e, &err);
	if (rc != ST_OK)
		log_line(strstr(err.text, "possible duplicate") != NULL ?
		    LOG_WARNING : LOG_ERR, "%s: %s", e->qid, err.text);
	else if (failed == 0 || e->sender[0] != '\0')
		log_line(LOG_INFO, "%s: removed", e->qid);
}

static void
process_entry(const struct runner_ctx *ctx, struct hub_session *hs,
    const char *qid, const struct runner_filter *f, time_t now)
{
	struct queue_entry e;
	struct error err;
	int rc;

	queue_entry_init(&e);
	error_clear(&err);
	if (queue_lock_entry(ctx->cfg->queue_dir, qid, &e, &err) != ST_OK) {
		if (err.status == ST_DATA)
			log_line(LOG_ERR, "%s: unusable queue entry: %s", qid,
			    err.text);
		return;
	}
	if (!matches_filter(&e, f, now)) {
		queue_entry_free(&e);
		return;
	}
	if (ctx->cfg->queue_lifetime > 0 &&
	    now - e.queued >= ctx->cfg->queue_lifetime) {
		expire(ctx, &e, hs);
		rc = ST_OK;
	} else
		rc = runner_attempt(ctx, hs, &e, e.data_fd, &err);
	settle(ctx, &e, rc);
	queue_entry_free(&e);
}

static int
compare_qid(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int
seen_before(char (*ids)[QID_MAX], size_t n, const char *qid)
{
	return n > 0 && bsearch(qid, ids, n, sizeof(*ids), compare_qid) !=
	    NULL;
}

/* Entries that appeared during the pass, such as its own bounces. */
static void
process_new(const struct runner_ctx *ctx, struct hub_session *hs,
    char (*old)[QID_MAX], size_t nold, const struct runner_filter *f)
{
	char (*ids)[QID_MAX];
	struct error err;
	size_t n, i;

	if (queue_list_ids(ctx->cfg->queue_dir, "queue", &ids, &n, &err) !=
	    ST_OK)
		return;
	for (i = 0; i < n; i++)
		if (!seen_before(old, nold, ids[i]))
			process_entry(ctx, hs, ids[i], f, time(NULL));
	free(ids);
}

/*
 * Runners hold QueueDir/runner.lock shared, so that a submission can ask
 * "is a runner active?" with an exclusive try.
 */
static int
runner_lock(const char *dir)
{
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/runner.lock", dir) >=
	    (int)sizeof(path))
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0660);
	if (fd != -1)
		(void)flock(fd, LOCK_SH);
	return fd;
}

int
runner_active(const char *dir)
{
	char path[PATH_MAX];
	int fd, active;

	if (snprintf(path, sizeof(path), "%s/runner.lock", dir) >=
	    (int)sizeof(path))
		return 0;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return 0;
	active = flock(fd, LOCK_EX | LOCK_NB) == -1;
	(void)close(fd);
	return active;
}

int
runner_has_due(const char *dir)
{
	char (*ids)[QID_MAX];
	struct error err;
	size_t n, i;
	int due = 0;

	if (queue_list_ids(dir, "queue", &ids, &n, &err) != ST_OK)
		return 0;
	for (i = 0; i < n && !due; i++) {
		struct queue_entry e;
		int busy;

		queue_entry_init(&e);
		if (queue_peek_entry(dir, "queue", ids[i], &e, &busy, &err) ==
		    ST_OK && !busy && !e.hold && e.next_retry <= time(NULL))
			due = 1;
		queue_entry_free(&e);
	}
	free(ids);
	return due;
}

int
runner_run(const struct runner_ctx *ctx, const struct runner_filter *f,
    struct error *err)
{
	char (*ids)[QID_MAX];
	struct hub_session hs;
	size_t n, i;
	int lock;

	if (queue_prepare(ctx->cfg->queue_dir, err) != ST_OK)
		return err->status;
	lock = runner_lock(ctx->cfg->queue_dir);
	queue_sweep(ctx->cfg->queue_dir);
	if (queue_list_ids(ctx->cfg->queue_dir, "queue", &ids, &n, err) !=
	    ST_OK) {
		if (lock != -1)
			(void)close(lock);
		return err->status;
	}
	memset(&hs, 0, sizeof(hs));
	for (i = 0; i < n; i++)
		if (f->qid == NULL || strcmp(f->qid, ids[i]) == 0)
			process_entry(ctx, &hs, ids[i], f, time(NULL));
	/* Reports made during this pass (bounces) go out in it too. */
	if (f->qid == NULL && f->domain == NULL)
		process_new(ctx, &hs, ids, n, f);
	runner_session_close(&hs);
	free(ids);
	if (lock != -1)
		(void)close(lock);
	return ST_OK;
}
