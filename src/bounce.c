/*
 * bounce.c: the report of non-delivery (RFC 3464 multipart/report) that
 * goes back to the sender of an entry whose recipients were refused for
 * good or expired, committed to the queue as a new entry from <>. Whether
 * a report is owed is decided here too: never to the null sender, and not
 * when the sender's DSN request (-N) leaves out FAILURE (RFC 3461 4.1).
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "postino.h"

#define BOUNCE_HEADERS_MAX	(64 * 1024)	/* original headers quoted */

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
	return queue_write_all(fd, buf, (size_t)n);
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
		if (queue_write_all(out, buf, (size_t)n) == -1)
			return -1;
		off += n;
		if (state == 4)
			return 0;
	}
	return queue_write_all(out, "\r\n", 2);
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
write_intro(const struct bounce_names *bn, int fd, const struct queue_entry *e,
    const char *qid, const char *boundary)
{
	char date[64];
	int bad = 0;

	message_date(time(NULL), date, sizeof(date));
	bad |= write_fmt(fd, "Received: by %s (postino)\r\n\tid %s; %s\r\n"
	    "Date: %s\r\nFrom: MAILER-DAEMON@%s (Mail Delivery System)\r\n"
	    "To: <%s>\r\nSubject: Undelivered Mail Returned to Sender\r\n"
	    "Message-ID: <%s.bounce@%s>\r\nAuto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n"
	    "This is a MIME-encapsulated message.\r\n\r\n",
	    bn->hostname, qid, date, date, bn->domain, e->sender, qid,
	    bn->domain, boundary);
	bad |= write_fmt(fd, "--%s\r\nContent-Type: text/plain; "
	    "charset=us-ascii\r\n\r\nThis is postino on %s.\r\n\r\n"
	    "Your message %s could not be delivered to one or more "
	    "recipients.\r\nThe mail hub's answer for each is below.\r\n\r\n",
	    boundary, bn->hostname, e->qid);
	return bad;
}

static int
write_status(const struct bounce_names *bn, int fd,
    const struct queue_entry *e, const char *boundary)
{
	char arrival[64], code[32];
	size_t i;
	int bad = 0;

	message_date(e->queued, arrival, sizeof(arrival));
	bad |= write_fmt(fd, "\r\n--%s\r\nContent-Type: message/"
	    "delivery-status\r\n\r\nReporting-MTA: dns; %s\r\n"
	    "X-Postino-Queue-ID: %s\r\nArrival-Date: %s\r\n", boundary,
	    bn->hostname, e->qid, arrival);
	for (i = 0; i < e->nrcpt; i++) {
		if (!e->rcpt[i].notify)
			continue;
		status_code(e->rcpt[i].reply, code, sizeof(code));
		bad |= write_fmt(fd, "\r\nFinal-Recipient: rfc822; %s\r\n"
		    "Action: failed\r\nStatus: %s\r\nRemote-MTA: dns; %s\r\n"
		    "Diagnostic-Code: smtp; %s\r\n", e->rcpt[i].addr, code,
		    e->route.host[0] != '\0' ? e->route.host : bn->hub,
		    e->rcpt[i].reply);
	}
	return bad;
}

static int
write_bounce(const struct bounce_names *bn, int fd,
    const struct queue_entry *e, const char *qid, int data_fd)
{
	char boundary[64];
	size_t i;
	int bad = 0;

	(void)snprintf(boundary, sizeof(boundary), "%s.%lld/%s", qid,
	    (long long)time(NULL), bn->hostname);
	bad |= write_intro(bn, fd, e, qid, boundary);
	for (i = 0; i < e->nrcpt; i++)
		if (e->rcpt[i].notify)
			bad |= write_fmt(fd, "<%s>: %s\r\n", e->rcpt[i].addr,
			    e->rcpt[i].reply);
	bad |= write_status(bn, fd, e, boundary);
	bad |= write_fmt(fd, "\r\n--%s\r\nContent-Type: text/rfc822-headers"
	    "\r\n\r\n", boundary);
	bad |= copy_headers(fd, data_fd);
	bad |= write_fmt(fd, "\r\n--%s--\r\n", boundary);
	return bad ? -1 : 0;
}

static void
forget_reports(struct queue_entry *e)
{
	size_t i;

	for (i = 0; i < e->nrcpt; i++)
		e->rcpt[i].notify = 0;
}

/* -N NEVER, or a NOTIFY list without FAILURE: no report (RFC 3461). */
static int
sender_declined(const struct queue_entry *e)
{
	return e->dsn.notify[0] != '\0' &&
	    strcasestr(e->dsn.notify, "FAILURE") == NULL;
}

/* Is a report owed, and may one be sent? Logs why not. */
static int
report_wanted(struct queue_entry *e)
{
	size_t i;
	int any = 0;

	for (i = 0; i < e->nrcpt; i++)
		any |= e->rcpt[i].notify;
	if (!any)
		return 0;
	if (e->sender[0] == '\0') {
		/* Never a bounce to the null sender: keep and tell. */
		log_line(LOG_ERR, "%s: undeliverable message from <>: "
		    "kept in the failed area, no bounce", e->qid);
		forget_reports(e);
		return 0;
	}
	if (sender_declined(e)) {
		log_line(LOG_NOTICE, "%s: no non-delivery notification: the "
		    "sender asked for NOTIFY=%s", e->qid, e->dsn.notify);
		forget_reports(e);
		return 0;
	}
	return 1;
}

int
bounce_create(const struct bounce_names *bn, struct queue_entry *e,
    int data_fd, char bounce_qid[QID_MAX], struct error *err)
{
	struct queue_entry b;
	struct stat st;
	int fd;

	bounce_qid[0] = '\0';
	if (!report_wanted(e))
		return ST_OK;
	queue_entry_init(&b);
	message_new_qid(b.qid);
	if (queue_spool_create(bn->queue_dir, &fd, err) != ST_OK)
		return err->status;
	if (write_bounce(bn, fd, e, b.qid, data_fd) == -1 ||
	    fstat(fd, &st) == -1) {
		(void)close(fd);
		return error_set(err, ST_CANTCREAT, "cannot write bounce: %s",
		    strerror(errno));
	}
	b.queued = b.next_retry = time(NULL);
	b.uid = e->uid;		/* the report belongs to the sender */
	b.size = st.st_size;
	b.body_8bit = e->body_8bit;
	b.route = e->route;
	if (queue_entry_add_rcpt(&b, e->sender, RS_PENDING, err) != ST_OK ||
	    queue_commit(bn->queue_dir, &b, fd, 0, err) != ST_OK) {
		(void)close(fd);
		queue_entry_free(&b);
		return err->status;
	}
	(void)close(fd);
	log_svc(LOG_INFO, LOGSVC_BOUNCE, "%s: sender non-delivery "
	    "notification: %s", e->qid, b.qid);
	(void)strlcpy(bounce_qid, b.qid, QID_MAX);
	forget_reports(e);
	queue_entry_free(&b);
	return ST_OK;
}
