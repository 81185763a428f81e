/*
 * smtpd.c: sendmail -bs, the SMTP dialogue on stdin/stdout that Symfony
 * Mailer, Laravel and SwiftMailer speak to /usr/sbin/sendmail
 * (spec/callers.md 3.8). It owns the command parser, the reply texts
 * (Postfix's, since callers match on codes and people on words), the
 * envelope of the current transaction and the DATA phase, which is
 * streamed into an unnamed spool file and handed to main()'s submit
 * callback. Nothing here rewrites, relays or queues.
 *
 * Input is buffered here (one 64 KiB buffer), so pipelined commands and
 * the bytes after DATA are never lost between reads. Replies are
 * collected and written when the input holds no further complete line
 * (or before a submission, which may take a while), so each reply, or
 * each pipelined group of replies, costs one write(2).
 *
 * Decisions where the spec is silent:
 * - A command line may hold 512 octets with its CRLF (RFC 5321
 *   4.5.3.1.4), so at most 510 before it; more is "500 5.5.2 Error: line
 *   too long" and the rest of that line is skipped. DATA lines have no
 *   limit and are never cut.
 * - Lines end at LF; one CR before it belongs to the line end. A bare LF
 *   is accepted everywhere, and ".\n" ends DATA like ".\r\n" (the data
 *   goes to our own submission path, re-encoded, so there is nothing to
 *   smuggle past).
 * - DATA is spooled with its line ends as received (CRLF, or LF from a
 *   sloppy client): the submission path normalises them anyway. A
 *   leading ".." loses one dot; any other line starting with "." is kept
 *   whole (the table in callers.md 3.2; RFC 5321 4.5.2 would drop the dot,
 *   but a client that does not stuff meant the dot). Since "..\r\n"
 *   becomes ".\r\n", the spool must be read with -i semantics.
 * - The idle timeout counts from the last complete command line; in DATA
 *   it counts from the last bytes received, so a big message on a slow
 *   link is not cut. Waiting to write a reply has the same bound.
 * - A command line at EOF without its line end is still executed.
 * - HELO and EHLO reset the transaction (RFC 5321 4.1.4). RSET and DATA
 *   with an argument are syntax errors (Postfix); NOOP and QUIT ignore
 *   theirs.
 * - DSN parameters (RET, ENVID, NOTIFY, ORCPT) are accepted and dropped:
 *   the envelope we hand on has no place for them, so DSN is not
 *   advertised. SIZE is advertised only when max_size is set.
 * - Return values: ST_OK after QUIT or EOF; ST_TEMP after the idle
 *   timeout (the 421 has been sent); ST_IOERR when stdin cannot be read or
 *   a reply cannot be written (EPIPE: the caller has gone). A failed write
 *   of the final 221 is ignored.
 */
#include <sys/types.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "postino.h"

#define CMD_MAX		512		/* command line, CRLF included */
#define IBUF_SIZE	65536		/* input: commands and DATA */
#define OBUF_SIZE	PIPE_BUF	/* replies: an atomic pipe write */
#define DBUF_SIZE	65536		/* DATA on its way to the spool */
#define SMTPD_RCPT_MAX	1000		/* recipients per transaction */
#define IDLE_DEFAULT	300

#define QUEUE_WRITE_ERROR	"451 4.3.0 Error: queue file write error"

struct session {
	const struct smtpd_params *p;
	const char	*host;
	long long	 idle_ms;
	long long	 deadline;	/* CLOCK_MONOTONIC ms, for reading */
	int		 eof;		/* stdin is at its end */
	int		 timed_out;	/* the idle deadline passed */
	int		 quit;
	int		 discarding;	/* inside an over-long command line */
	/* the transaction */
	int		 in_mail;
	char		 sender[ADDR_MAX];
	struct addrlist	 rcpts;
	/* buffers; ibuf has one byte more for a NUL after the last line */
	size_t		 ipos, ilen, olen, dlen;
	char		 ibuf[IBUF_SIZE + 1];
	char		 obuf[OBUF_SIZE];
	char		 dbuf[DBUF_SIZE];
};

/* One DATA phase: where it goes and what went wrong on the way. */
struct spool {
	int		 fd;
	off_t		 size;
	int		 too_big;
	int		 failed;
	int		 complete;	/* the final dot was seen */
};

static void
touch_deadline(struct session *s)
{
	s->deadline = deadline_now_ms() + s->idle_ms;
}

/* Wait for fd until deadline: 1 ready, 0 timed out, -1 error (errno). */
static int
wait_fd(int fd, short events, long long deadline)
{
	struct pollfd pfd;
	long long left;
	int n;

	for (;;) {
		left = deadline - deadline_now_ms();
		if (left <= 0)
			return 0;
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0) {
			if (pfd.revents & POLLNVAL) {
				errno = EBADF;
				return -1;
			}
			/* POLLHUP/POLLERR: the read or write says what. */
			return 1;
		}
		if (n == -1 && errno != EINTR)
			return -1;
	}
}

static int
flush(struct session *s, struct error *err)
{
	size_t off = 0;
	ssize_t n;
	int r;

	while (off < s->olen) {
		/*
		 * A caller that stops reading must not hang us for ever:
		 * wait with a bound, then write at most PIPE_BUF, which a
		 * pipe reported writable takes without blocking.
		 */
		r = wait_fd(s->p->out_fd, POLLOUT, deadline_now_ms() + s->idle_ms);
		if (r == 0)
			return error_set(err, ST_TEMP, "timeout writing a "
			    "reply to the client");
		if (r == -1)
			return error_set(err, ST_IOERR, "writing a reply: %s",
			    strerror(errno));
		n = write(s->p->out_fd, s->obuf + off, s->olen - off);
		if (n == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return error_set(err, ST_IOERR, "writing a reply: %s",
			    strerror(errno));
		}
		off += (size_t)n;
	}
	s->olen = 0;
	return ST_OK;
}

/* Queue one reply line (CRLF added); written by the next flush. */
static int
reply(struct session *s, struct error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
reply(struct session *s, struct error *err, const char *fmt, ...)
{
	char line[REPLY_LINE_MAX];
	va_list ap;
	int n;
	size_t len;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return error_set(err, ST_SOFTWARE, "formatting a reply");
	len = (size_t)n < sizeof(line) - 2 ? (size_t)n : sizeof(line) - 3;
	line[len++] = '\r';
	line[len++] = '\n';
	if (s->olen + len > sizeof(s->obuf) && flush(s, err) != ST_OK)
		return err->status;
	memcpy(s->obuf + s->olen, line, len);
	s->olen += len;
	return ST_OK;
}

/* Read more input, after sending what the client waits for. */
static int
fill(struct session *s, struct error *err)
{
	ssize_t n;
	int r;

	if (flush(s, err) != ST_OK)
		return err->status;
	if (s->ipos > 0) {
		memmove(s->ibuf, s->ibuf + s->ipos, s->ilen - s->ipos);
		s->ilen -= s->ipos;
		s->ipos = 0;
	}
	if (s->ilen == IBUF_SIZE)
		return error_set(err, ST_SOFTWARE, "input buffer full");
	r = wait_fd(s->p->in_fd, POLLIN, s->deadline);
	if (r == 0) {
		s->timed_out = 1;
		return error_set(err, ST_TEMP, "idle timeout: nothing from "
		    "the client for %lld s", s->idle_ms / 1000);
	}
	if (r == -1)
		return error_set(err, ST_IOERR, "reading the dialogue: %s",
		    strerror(errno));
	n = read(s->p->in_fd, s->ibuf + s->ilen, IBUF_SIZE - s->ilen);
	if (n == -1) {
		if (errno == EINTR || errno == EAGAIN)
			return ST_OK;
		return error_set(err, ST_IOERR, "reading the dialogue: %s",
		    strerror(errno));
	}
	if (n == 0)
		s->eof = 1;
	s->ilen += (size_t)n;
	return ST_OK;
}

/* Take a line of n octets at p (line end excluded); NUL-terminate it. */
static char *
take_line(struct session *s, char *p, size_t n, size_t consumed,
    size_t *lenp)
{
	s->ipos += consumed;
	touch_deadline(s);
	if (n > 0 && p[n - 1] == '\r')
		n--;
	p[n] = '\0';
	*lenp = n;
	return p;
}

/*
 * The next command line, without its line end, NUL-terminated in place;
 * *line is NULL at EOF. Over-long lines are answered here and skipped.
 */
static int
next_line(struct session *s, char **line, size_t *lenp, struct error *err)
{
	char *p, *lf;
	size_t avail, n;

	for (;;) {
		p = s->ibuf + s->ipos;
		avail = s->ilen - s->ipos;
		lf = memchr(p, '\n', avail);
		if (lf != NULL || (s->eof && avail > 0)) {
			n = lf != NULL ? (size_t)(lf - p) : avail;
			*line = take_line(s, p, n, lf != NULL ? n + 1 : n,
			    lenp);
			if (s->discarding) {
				s->discarding = 0;
				continue;
			}
			if (*lenp <= CMD_MAX - 2)
				return ST_OK;
			if (reply(s, err, "500 5.5.2 Error: line too long") !=
			    ST_OK)
				return err->status;
			continue;
		}
		if (s->eof) {
			*line = NULL;
			return ST_OK;
		}
		/* No line end in sight: answer now, skip to the LF. */
		if (avail > CMD_MAX && !s->discarding) {
			if (reply(s, err, "500 5.5.2 Error: line too long") !=
			    ST_OK)
				return err->status;
			s->discarding = 1;
		}
		if (s->discarding)
			s->ipos = s->ilen;
		if (fill(s, err) != ST_OK)
			return err->status;
	}
}

static void
reset_transaction(struct session *s)
{
	s->in_mail = 0;
	s->sender[0] = '\0';
	addrlist_free(&s->rcpts);
	addrlist_init(&s->rcpts);
}

/* ---------------------------------------------------------------- paths */

enum path_result { PATH_OK, PATH_SYNTAX, PATH_BAD };

/*
 * "<addr> params" or "addr params" (Postfix accepts the bare form too).
 * out gets the address ("" for <>), *rest what follows it.
 */
static enum path_result
parse_path(char *p, char *out, size_t outlen, char **rest)
{
	char *start, *end, *colon;
	size_t len;

	p += strspn(p, " \t");
	if (*p == '\0')
		return PATH_SYNTAX;
	if (*p == '<') {
		start = p + 1;
		if ((end = strchr(start, '>')) == NULL)
			return PATH_BAD;
		*rest = end + 1;
		if (**rest != '\0' && **rest != ' ' && **rest != '\t')
			return PATH_BAD;
	} else {
		start = p;
		end = start + strcspn(start, " \t");
		*rest = end;
	}
	/* A source route (<@a,@b:user@x>) is obsolete: RFC 5321 C says
	 * to ignore it. */
	if (*start == '@') {
		if ((colon = memchr(start, ':', (size_t)(end - start))) == NULL)
			return PATH_BAD;
		start = colon + 1;
	}
	len = (size_t)(end - start);
	if (len >= outlen)
		return PATH_BAD;
	memcpy(out, start, len);
	out[len] = '\0';
	if (len > 0 && !addr_is_safe(out))
		return PATH_BAD;
	return PATH_OK;
}

static int
is_one_of(const char *v, const char *a, const char *b)
{
	return strcasecmp(v, a) == 0 || strcasecmp(v, b) == 0;
}

/* One MAIL parameter; 0 if fine, else the reply is in why. */
static int
check_mail_param(const struct session *s, const char *key, const char *val,
    char *why, size_t len)
{
	const char *errstr = NULL;
	long long size;

	if (strcasecmp(key, "SIZE") == 0) {
		size = val == NULL ? -1 : strtonum(val, 0, LLONG_MAX, &errstr);
		if (size < 0 || errstr != NULL)
			(void)snprintf(why, len, "501 5.5.4 Bad message size "
			    "syntax");
		else if (s->p->max_size > 0 && size > s->p->max_size)
			(void)snprintf(why, len, "552 5.3.4 Message size "
			    "exceeds fixed limit");
		else
			return 0;
		return -1;
	}
	if (strcasecmp(key, "BODY") == 0) {
		if (val != NULL && is_one_of(val, "7BIT", "8BITMIME"))
			return 0;
	} else if (strcasecmp(key, "RET") == 0) {
		if (val != NULL && is_one_of(val, "FULL", "HDRS"))
			return 0;
	} else if (strcasecmp(key, "SMTPUTF8") == 0) {
		if (val == NULL)
			return 0;
	} else if (strcasecmp(key, "ENVID") == 0) {
		if (val != NULL && *val != '\0')
			return 0;
	} else
		return 1;
	(void)snprintf(why, len, "501 5.5.4 Bad %s parameter syntax", key);
	return -1;
}

static int
check_rcpt_param(const char *key, const char *val, char *why, size_t len)
{
	if (strcasecmp(key, "NOTIFY") != 0 && strcasecmp(key, "ORCPT") != 0)
		return 1;
	if (val != NULL && *val != '\0')
		return 0;
	(void)snprintf(why, len, "501 5.5.4 Bad %s parameter syntax", key);
	return -1;
}

/*
 * Check "KEY[=VALUE] ..." after a path. 0 when all are acceptable;
 * otherwise why holds the reply to send.
 */
static int
check_params(const struct session *s, char *p, int mail, char *why,
    size_t len)
{
	char *key, *val, clean[64];
	int r;

	while ((key = strsep(&p, " \t")) != NULL) {
		if (*key == '\0')
			continue;
		if ((val = strchr(key, '=')) != NULL)
			*val++ = '\0';
		log_sanitize(clean, sizeof(clean), key, strlen(key));
		r = mail ? check_mail_param(s, clean, val, why, len) :
		    check_rcpt_param(clean, val, why, len);
		if (r == 1)
			(void)snprintf(why, len, "555 5.5.4 Unsupported "
			    "option: %s", clean);
		if (r != 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------- commands */

static int
cmd_helo(struct session *s, char *arg, struct error *err)
{
	(void)arg;
	reset_transaction(s);
	return reply(s, err, "250 %s", s->host);
}

static int
cmd_ehlo(struct session *s, char *arg, struct error *err)
{
	(void)arg;
	reset_transaction(s);
	if (reply(s, err, "250-%s", s->host) != ST_OK ||
	    reply(s, err, "250-PIPELINING") != ST_OK)
		return err->status;
	if (s->p->max_size > 0 &&
	    reply(s, err, "250-SIZE %lld", s->p->max_size) != ST_OK)
		return err->status;
	if (reply(s, err, "250-8BITMIME") != ST_OK ||
	    reply(s, err, "250-ENHANCEDSTATUSCODES") != ST_OK)
		return err->status;
	return reply(s, err, "250 SMTPUTF8");
}

static int
cmd_mail(struct session *s, char *arg, struct error *err)
{
	char addr[ADDR_MAX], why[REPLY_LINE_MAX], *rest = NULL;

	if (s->in_mail)
		return reply(s, err, "503 5.5.1 Error: nested MAIL command");
	if (strncasecmp(arg, "FROM:", 5) != 0)
		return reply(s, err, "501 5.5.4 Syntax: MAIL FROM:<address>");
	switch (parse_path(arg + 5, addr, sizeof(addr), &rest)) {
	case PATH_OK:
		break;
	case PATH_SYNTAX:
		return reply(s, err, "501 5.5.4 Syntax: MAIL FROM:<address>");
	case PATH_BAD:
		return reply(s, err, "501 5.1.7 Bad sender address syntax");
	}
	if (check_params(s, rest, 1, why, sizeof(why)) != 0)
		return reply(s, err, "%s", why);
	(void)strlcpy(s->sender, addr, sizeof(s->sender));
	s->in_mail = 1;
	return reply(s, err, "250 2.1.0 Ok");
}

static int
cmd_rcpt(struct session *s, char *arg, struct error *err)
{
	char addr[ADDR_MAX], why[REPLY_LINE_MAX], *rest = NULL;
	struct error aerr;

	if (!s->in_mail)
		return reply(s, err, "503 5.5.1 Error: need MAIL command");
	if (strncasecmp(arg, "TO:", 3) != 0)
		return reply(s, err, "501 5.5.4 Syntax: RCPT TO:<address>");
	switch (parse_path(arg + 3, addr, sizeof(addr), &rest)) {
	case PATH_OK:
		break;
	case PATH_BAD:
		return reply(s, err, "501 5.1.3 Bad recipient address syntax");
	case PATH_SYNTAX:
		return reply(s, err, "501 5.5.4 Syntax: RCPT TO:<address>");
	}
	if (addr[0] == '\0')	/* <> is nobody */
		return reply(s, err, "501 5.1.3 Bad recipient address syntax");
	if (check_params(s, rest, 0, why, sizeof(why)) != 0)
		return reply(s, err, "%s", why);
	if (s->rcpts.n >= SMTPD_RCPT_MAX)
		return reply(s, err, "452 4.5.3 Error: too many recipients");
	error_clear(&aerr);
	if (addrlist_add(&s->rcpts, addr, &aerr) != ST_OK)
		return reply(s, err, "452 4.3.1 Insufficient system storage");
	return reply(s, err, "250 2.1.5 Ok");
}

static void
spool_flush(struct session *s, struct spool *sp)
{
	if (!sp->failed && queue_write_all(sp->fd, s->dbuf, s->dlen) == -1)
		sp->failed = 1;
	s->dlen = 0;
}

/*
 * Store n octets of DATA. After an error or past max_size nothing more
 * is stored, but the input is still read up to the final dot so that
 * the dialogue stays in step. The size counts a bare LF as CRLF, as
 * message_read() does, so that both enforce MaxMessageSize alike.
 */
static void
spool_put(struct session *s, struct spool *sp, const char *p, size_t n)
{
	size_t k;
	long long counted = (long long)n;

	if (sp->failed || sp->too_big)
		return;
	if (n > 0 && p[n - 1] == '\n' && (n == 1 || p[n - 2] != '\r'))
		counted++;
	if (s->p->max_size > 0 && counted > s->p->max_size - sp->size) {
		sp->too_big = 1;
		return;
	}
	sp->size += (off_t)counted;
	while (n > 0) {
		if (s->dlen == sizeof(s->dbuf))
			spool_flush(s, sp);
		k = sizeof(s->dbuf) - s->dlen;
		if (k > n)
			k = n;
		memcpy(s->dbuf + s->dlen, p, k);
		s->dlen += k;
		p += k;
		n -= k;
	}
}

/*
 * At the start of a DATA line: 1 if it is the final ".", 0 if it is
 * data (a stuffed dot consumed), -1 if more input is needed to tell.
 */
static int
data_line_start(struct session *s)
{
	const char *p = s->ibuf + s->ipos;
	size_t avail = s->ilen - s->ipos;

	if (avail == 0)
		return -1;
	if (p[0] != '.')
		return 0;
	if (avail < 2)
		return -1;
	if (p[1] == '\n') {
		s->ipos += 2;
		return 1;
	}
	if (p[1] == '\r') {
		if (avail < 3)
			return -1;
		if (p[2] == '\n') {
			s->ipos += 3;
			return 1;
		}
	} else if (p[1] == '.')
		s->ipos++;
	return 0;
}

/* Stream DATA into sp up to the final dot (sp->complete) or EOF. */
static int
receive_data(struct session *s, struct spool *sp, struct error *err)
{
	const char *p, *lf;
	size_t avail, n;
	int bol = 1, r;

	for (;;) {
		if (bol) {
			if ((r = data_line_start(s)) == 1)
				break;
			bol = r == -1;
		}
		p = s->ibuf + s->ipos;
		avail = s->ilen - s->ipos;
		if (!bol && avail > 0) {
			lf = memchr(p, '\n', avail);
			n = lf != NULL ? (size_t)(lf - p) + 1 : avail;
			spool_put(s, sp, p, n);
			s->ipos += n;
			bol = lf != NULL;
			continue;
		}
		if (s->eof) {
			s->ipos = s->ilen;
			return ST_OK;
		}
		touch_deadline(s);
		if (fill(s, err) != ST_OK)
			return err->status;
	}
	spool_flush(s, sp);
	sp->complete = 1;
	touch_deadline(s);
	return ST_OK;
}

/* Hand the transaction on and relay the callback's verdict. */
static int
submit(struct session *s, int fd, struct error *err)
{
	char r[REPLY_LINE_MAX];
	int st;

	/* The callback relays: the client must not wait on our buffer. */
	if (flush(s, err) != ST_OK)
		return err->status;
	if (lseek(fd, 0, SEEK_SET) == -1)
		return reply(s, err, QUEUE_WRITE_ERROR);
	r[0] = '\0';
	st = s->p->submit(s->p->submit_arg, s->sender, &s->rcpts, fd, r,
	    sizeof(r));
	r[sizeof(r) - 1] = '\0';
	r[strcspn(r, "\r\n")] = '\0';
	/* Anything but "ddd" or "ddd text" would break the client's parser. */
	if (r[0] < '2' || r[0] > '5' || strspn(r, "0123456789") != 3 ||
	    (r[3] != '\0' && r[3] != ' '))
		(void)strlcpy(r, st == ST_OK ? "250 2.0.0 Ok" :
		    QUEUE_WRITE_ERROR, sizeof(r));
	return reply(s, err, "%s", r);
}

static int
cmd_data(struct session *s, char *arg, struct error *err)
{
	struct spool sp;
	struct error serr;
	int st;

	if (*arg != '\0')
		return reply(s, err, "501 5.5.4 Syntax: DATA");
	if (!s->in_mail || s->rcpts.n == 0)
		return reply(s, err, "503 5.5.1 Error: need RCPT command");
	memset(&sp, 0, sizeof(sp));
	/* Unnamed (O_TMPFILE): a dialogue cut short leaves nothing. */
	error_clear(&serr);
	if (queue_spool_create(s->p->spool_dir, &sp.fd, &serr) != ST_OK)
		return reply(s, err, QUEUE_WRITE_ERROR);
	s->dlen = 0;
	if (reply(s, err, "354 End data with <CR><LF>.<CR><LF>") != ST_OK ||
	    receive_data(s, &sp, err) != ST_OK) {
		(void)close(sp.fd);
		return err->status;
	}
	if (!sp.complete) {
		/* No final dot: the transaction is abandoned. */
		st = ST_OK;
	} else if (sp.too_big)
		st = reply(s, err, "552 5.3.4 Error: message file too big");
	else if (sp.failed)
		st = reply(s, err, QUEUE_WRITE_ERROR);
	else
		st = submit(s, sp.fd, err);
	(void)close(sp.fd);
	reset_transaction(s);
	return st;
}

static int
cmd_rset(struct session *s, char *arg, struct error *err)
{
	if (*arg != '\0')
		return reply(s, err, "501 5.5.4 Syntax: RSET");
	reset_transaction(s);
	return reply(s, err, "250 2.0.0 Ok");
}

static int
cmd_noop(struct session *s, char *arg, struct error *err)
{
	(void)arg;
	return reply(s, err, "250 2.0.0 Ok");
}

static int
cmd_vrfy(struct session *s, char *arg, struct error *err)
{
	char clean[CMD_MAX];

	if (*arg == '\0')
		return reply(s, err, "501 5.5.4 Syntax: VRFY address");
	/* We cannot know; 252 says "try it" (RFC 5321 3.5.3). */
	log_sanitize(clean, sizeof(clean), arg, strlen(arg));
	return reply(s, err, "252 2.0.0 %s", clean);
}

static int
cmd_quit(struct session *s, char *arg, struct error *err)
{
	(void)arg;
	s->quit = 1;
	return reply(s, err, "221 2.0.0 Bye");
}

struct command {
	const char	*verb;
	int		(*run)(struct session *, char *, struct error *);
};

static const struct command commands[] = {
	{ "HELO", cmd_helo }, { "EHLO", cmd_ehlo }, { "MAIL", cmd_mail },
	{ "RCPT", cmd_rcpt }, { "DATA", cmd_data }, { "RSET", cmd_rset },
	{ "NOOP", cmd_noop }, { "VRFY", cmd_vrfy }, { "QUIT", cmd_quit }
};

static int
dispatch(struct session *s, char *line, size_t len, struct error *err)
{
	char *arg;
	size_t i, vlen;

	/* Trailing blanks are common and meaningless. */
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		line[--len] = '\0';
	if (len == 0 || strlen(line) != len)
		return reply(s, err, "500 5.5.2 Error: bad syntax");
	vlen = strcspn(line, " \t");
	arg = line + vlen;
	arg += strspn(arg, " \t");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (vlen == 4 && strncasecmp(line, commands[i].verb, 4) == 0)
			return commands[i].run(s, arg, err);
	return reply(s, err, "502 5.5.2 Error: command not recognized");
}

static int
serve(struct session *s, struct error *err)
{
	char *line = NULL;
	size_t len = 0;

	if (reply(s, err, "220 %s ESMTP postino", s->host) != ST_OK)
		return err->status;
	touch_deadline(s);
	while (!s->quit) {
		if (next_line(s, &line, &len, err) != ST_OK)
			return err->status;
		if (line == NULL)
			break;
		if (dispatch(s, line, len, err) != ST_OK)
			return err->status;
	}
	return ST_OK;
}

int
smtpd_run(const struct smtpd_params *p, struct error *err)
{
	struct session *s;
	struct error ferr;
	int st;

	if (p->submit == NULL || p->spool_dir == NULL)
		return error_set(err, ST_SOFTWARE, "smtpd_run: no submit "
		    "callback or spool directory");
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return error_set(err, ST_OSERR, "smtpd: %s", strerror(errno));
	s->p = p;
	s->host = p->hostname != NULL && p->hostname[0] != '\0' ?
	    p->hostname : "localhost";
	s->idle_ms = 1000LL * (p->idle_timeout > 0 ? p->idle_timeout :
	    IDLE_DEFAULT);
	addrlist_init(&s->rcpts);
	st = serve(s, err);
	error_clear(&ferr);
	if (st == ST_OK) {
		/* After QUIT the client may hang up without reading. */
		if (flush(s, &ferr) != ST_OK && !s->quit) {
			*err = ferr;
			st = ferr.status;
		}
	} else if (s->timed_out) {
		if (reply(s, &ferr, "421 4.4.2 %s Error: timeout exceeded",
		    s->host) == ST_OK)
			(void)flush(s, &ferr);
	}
	addrlist_free(&s->rcpts);
	free(s);
	return st;
}
