/*
 * message.c: the message stage (callers.md 3.1, 3.2, 3.4, 3.6). Standard
 * input is streamed into an unnamed spool file in wire form while the
 * header block is scanned and rewritten: Received: first, Bcc/Resent-Bcc/
 * Return-Path/Content-Length removed, header addresses qualified, -t
 * recipients collected, AddHeader lines and a missing Date/Message-ID/From
 * added, one blank line, the body. Also the message date, queue ids, and
 * lineconv, the one place where line ends are normalised, long lines split
 * and dots stuffed.
 *
 * The pipeline, so that memory stays flat whatever the input:
 *
 *   read(2) 64 KiB -> drop NULs -> lineconv "in" (CRLF, lone "." ends)
 *     -> header scan (fields kept up to HEADER_KEEP_MAX) or body
 *     -> lineconv "out" (split at 998: fold in headers, CRLF in the body)
 *     -> 64 KiB write buffer -> spool file
 *
 * Two lineconv passes because where the header block ends is only known
 * after "in" has made lines, and the split must fold before that point
 * and not after it; the scan also needs the caller's lines whole to tell
 * a lone "." from the tail of a split line.
 *
 * Decisions where the spec is silent:
 * - A "." alone on the last line without a newline ends input like ".\n".
 * - No bare CR and no bare LF reach the spool or the wire (issue 9 item
 *   9, "SMTP smuggling"): a run of CRs followed by LF is one line end
 *   ("\r\r\n" from text written twice in text mode); a CR not followed
 *   by LF is a line end too (CR-only text from old tools), a run of
 *   three or more of them counting as two (bounded lookahead); CRs at
 *   EOF are one line end. So a "." after a bare CR is a line of its own:
 *   without -i it ends the message, with -i it is stuffed on the wire.
 *   The header scan sees these lines, so a "Bcc:" after a bare CR is a
 *   field that is removed, never one that only the hub sees.
 * - "Name :" (WSP before the colon, RFC 5322 obsolete syntax) is a field;
 *   a line whose would-be name is too long for "name:" to fit in 998
 *   octets is the body's first.
 * - Folding a header line longer than 998 octets inserts CRLF SP at the
 *   limit, which adds a space to the unfolded value (nothing better
 *   exists without knowing the field's grammar).
 * - Resent mode (Resent-To/Cc/Bcc present) adds Resent-Date/-Message-ID/
 *   -From instead of Date/Message-ID/From; AddHeader lines count as
 *   present headers.
 * - An unparsable From: still counts as present; from_addr is then "".
 * - -t errors: a header of the class not used (plain vs Resent-) does not
 *   fail the message. On any error message_read() returns at once: the
 *   caller drains stdin if it wants to (callers.md 3.1), with
 *   message_drain(), the one drain, also used after the "." line.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "postino.h"

#define READ_CHUNK	65536
#define CONV_CAP	(3 * READ_CHUNK + 4)
#define WBUF_SIZE	65536
#define SPLIT_MIN	4	/* below this the output bound would not hold */

/* ------------------------------------------------------------ lineconv */

void
lineconv_init(struct lineconv *lc, int dot_stuff, size_t split_at)
{
	memset(lc, 0, sizeof(*lc));
	lc->dot_stuff = dot_stuff;
	lc->at_line_start = 1;
	lc->input_bol = 1;
	lc->split_at = split_at != 0 && split_at < SPLIT_MIN ? SPLIT_MIN :
	    split_at;
}

/* A new output line in the middle of an input line. */
static size_t
lc_split(struct lineconv *lc, char *out, size_t o)
{
	out[o++] = '\r';
	out[o++] = '\n';
	lc->splits++;
	if (lc->fold) {
		out[o++] = ' ';
		lc->line_len = 1;
		lc->at_line_start = 0;
	} else {
		lc->line_len = 0;
		lc->at_line_start = 1;
	}
	return o;
}

/* One data byte (never CR or LF: those are line ends). */
static size_t
lc_data(struct lineconv *lc, char c, char *out, size_t o)
{
	if (lc->split_at != 0 && lc->line_len >= lc->split_at)
		o = lc_split(lc, out, o);
	if (lc->at_line_start && c == '.' && lc->dot_stuff)
		out[o++] = '.';
	out[o++] = c;
	lc->line_len++;
	lc->at_line_start = 0;
	return o;
}

/* One line end; after a held "." line (end_at_dot) it ends input. */
static size_t
lc_eol(struct lineconv *lc, char *out, size_t o)
{
	if (lc->pending_dot) {
		lc->pending_dot = 0;
		lc->pending_cr = 0;
		lc->ended = 1;
		return o;
	}
	out[o++] = '\r';
	out[o++] = '\n';
	lc->line_len = 0;
	lc->at_line_start = 1;
	lc->input_bol = 1;
	return o;
}

/*
 * The held CRs were not followed by LF: each ends a line (CR-only text
 * from old tools). At most two are held, so a longer run of CRs ends two
 * lines, which keeps the output bound without unbounded lookahead.
 */
static size_t
lc_cr_lines(struct lineconv *lc, char *out, size_t o)
{
	int n = lc->pending_cr;

	lc->pending_cr = 0;
	while (n-- > 0 && !lc->ended)
		o = lc_eol(lc, out, o);
	return o;
}

/*
 * How many bytes from p can be copied as they are (the fast path); stop
 * is how far the next CR or LF is (lineconv_feed finds it with memchr).
 */
static size_t
lc_run(const struct lineconv *lc, const char *p, size_t stop)
{
	if (lc->at_line_start && lc->dot_stuff && p[0] == '.')
		return 0;
	if (lc->split_at != 0) {
		if (lc->line_len >= lc->split_at)
			return 0;
		if (lc->split_at - lc->line_len < stop)
			stop = lc->split_at - lc->line_len;
	}
	return stop;
}

/*
 * Where the next c is at or after from (n when none). The caller keeps
 * the answer until it has passed it, so that each byte is searched once
 * even in a buffer of bare CRs and no LF.
 */
static size_t
lc_next(const char *in, size_t n, size_t from, char c)
{
	const char *q = memchr(in + from, c, n - from);

	return q != NULL ? (size_t)(q - in) : n;
}

/*
 * No CR without LF and no LF without CR leaves here (a hub that ends
 * DATA on a bare CR or LF must not see a second transaction: "SMTP
 * smuggling"). LF ends a line, and so does a run of CRs followed by LF
 * ("\r\r\n" from text written twice in text mode is one line end, not a
 * blank line that would end the header early). A CR not followed by LF
 * ends a line too, so the header scan sees exactly the lines the wire
 * carries. A CR is held until the next byte says which case it is.
 */
size_t
lineconv_feed(struct lineconv *lc, const char *in, size_t inlen, char *out,
    size_t outcap)
{
	size_t i = 0, o = 0, run, lf = 0, cr = 0;
	char c;

	if (outcap < 3 * inlen + 4)
		abort();	/* a caller's bug: never write past out */
	while (i < inlen && !lc->ended) {
		c = in[i];
		if (c == '\r' && lc->pending_cr == 0 && i + 1 < inlen &&
		    in[i + 1] == '\n') {
			o = lc_eol(lc, out, o);		/* CRLF: the usual */
			i += 2;
		} else if (c == '\r') {
			if (lc->pending_cr < 2)
				lc->pending_cr++;
			i++;
		} else if (c == '\n') {
			lc->pending_cr = 0;
			o = lc_eol(lc, out, o);
			i++;
		} else if (lc->pending_cr > 0) {
			o = lc_cr_lines(lc, out, o);	/* then c, again */
		} else if (c == '.' && lc->input_bol && lc->end_at_dot) {
			lc->pending_dot = 1;
			lc->input_bol = 0;
			i++;
		} else {
			if (lc->pending_dot) {
				lc->pending_dot = 0;
				o = lc_data(lc, '.', out, o);
			}
			lc->input_bol = 0;
			if (lf <= i)
				lf = lc_next(in, inlen, i, '\n');
			if (cr <= i)
				cr = lc_next(in, inlen, i, '\r');
			run = lc_run(lc, in + i, (lf < cr ? lf : cr) - i);
			if (run > 0) {
				memcpy(out + o, in + i, run);
				o += run;
				i += run;
				lc->line_len += run;
				lc->at_line_start = 0;
			} else
				o = lc_data(lc, in[i++], out, o);
		}
	}
	return o;
}

/* A "." alone on the last line ends input like ".\n"; CRs end the line. */
size_t
lineconv_finish(struct lineconv *lc, char *out, size_t outcap)
{
	if (outcap < 4)
		abort();
	if (lc->ended)
		return 0;
	if (lc->pending_dot) {
		lc->pending_dot = 0;
		lc->ended = 1;
		return 0;
	}
	if (!lc->input_bol || lc->pending_cr > 0) {
		lc->pending_cr = 0;
		return lc_eol(lc, out, 0);
	}
	return 0;
}

/* --------------------------------------------------------- dates, ids */

void
message_date(time_t t, char *buf, size_t len)
{
	/* Not strftime: LC_TIME must not leak into a header. */
	static const char days[7][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
	};
	static const char months[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
	};
	struct tm tm;
	long off;

	if (localtime_r(&t, &tm) == NULL) {
		(void)strlcpy(buf, "Thu, 01 Jan 1970 00:00:00 +0000", len);
		return;
	}
	off = tm.tm_gmtoff / 60;
	(void)snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    off < 0 ? '-' : '+', (off < 0 ? -off : off) / 60,
	    (off < 0 ? -off : off) % 60);
}

void
message_new_qid(char qid[QID_MAX])
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char r[(QID_LEN + 1) / 2];
	size_t i;

	arc4random_buf(r, sizeof(r));
	for (i = 0; i < QID_LEN; i++)
		qid[i] = hex[(r[i / 2] >> (i % 2 == 0 ? 4 : 0)) & 0xf];
	qid[QID_LEN] = '\0';
}

/* ------------------------------------------------------- header names */

#define HF_DROP		0x01	/* removed from the message */
#define HF_QUALIFY	0x02	/* an address list: qualify bare names */
#define HF_RCPT		0x04	/* -t: To, Cc, Bcc */
#define HF_RESENT_RCPT	0x08	/* -t in resent mode */

enum hname {
	H_OTHER, H_FROM, H_SENDER, H_REPLY_TO, H_TO, H_CC, H_BCC, H_DATE,
	H_MESSAGE_ID, H_RETURN_PATH, H_CONTENT_LENGTH, H_R_FROM, H_R_SENDER,
	H_R_REPLY_TO, H_R_TO, H_R_CC, H_R_BCC, H_R_DATE, H_R_MESSAGE_ID,
	H_COUNT
};

static const struct {
	const char	*name;
	unsigned	 flags;
} header_kinds[H_COUNT] = {
	[H_OTHER] =		{ "",			0 },
	[H_FROM] =		{ "From",		HF_QUALIFY },
	[H_SENDER] =		{ "Sender",		HF_QUALIFY },
	[H_REPLY_TO] =		{ "Reply-To",		HF_QUALIFY },
	[H_TO] =		{ "To",			HF_QUALIFY | HF_RCPT },
	[H_CC] =		{ "Cc",			HF_QUALIFY | HF_RCPT },
	[H_BCC] =		{ "Bcc",		HF_DROP | HF_RCPT },
	[H_DATE] =		{ "Date",		0 },
	[H_MESSAGE_ID] =	{ "Message-ID",		0 },
	[H_RETURN_PATH] =	{ "Return-Path",	HF_DROP },
	[H_CONTENT_LENGTH] =	{ "Content-Length",	HF_DROP },
	[H_R_FROM] =		{ "Resent-From",	HF_QUALIFY },
	[H_R_SENDER] =		{ "Resent-Sender",	HF_QUALIFY },
	[H_R_REPLY_TO] =	{ "Resent-Reply-To",	HF_QUALIFY },
	[H_R_TO] =		{ "Resent-To",	HF_QUALIFY | HF_RESENT_RCPT },
	[H_R_CC] =		{ "Resent-Cc",	HF_QUALIFY | HF_RESENT_RCPT },
	[H_R_BCC] =		{ "Resent-Bcc",	HF_DROP | HF_RESENT_RCPT },
	[H_R_DATE] =		{ "Resent-Date",	0 },
	[H_R_MESSAGE_ID] =	{ "Resent-Message-ID",	0 },
};

static int
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static enum hname
header_lookup(const char *name, size_t len)
{
	size_t i, k;

	for (i = 1; i < H_COUNT; i++) {
		const char *s = header_kinds[i].name;

		if (strlen(s) != len)
			continue;
		/* NOLINTBEGIN(clang-analyzer-core.CallAndMessage): name
		 * holds the field's first len bytes, written by the scan
		 * before a field can end; the analyzer's path reaches
		 * field_done with no field read, which cannot happen. */
		for (k = 0; k < len; k++)
			if (lower((unsigned char)name[k]) !=
			    lower((unsigned char)s[k]))
				break;
		/* NOLINTEND(clang-analyzer-core.CallAndMessage) */
		if (k == len)
			return (enum hname)i;
	}
	return H_OTHER;
}

/* -------------------------------------------------------------- reader */

/* What the bytes of the current header line belong to. */
enum cur {
	CUR_NONE,	/* between fields */
	CUR_LINE,	/* a new line, not yet known to be a header */
	CUR_FIELD,	/* a header field, kept in field[] */
	CUR_PASS,	/* an overlong field, written through */
	CUR_DROP,	/* an overlong field that is removed */
	CUR_SKIP	/* the mbox "From " line, discarded */
};

enum { CLS_MORE, CLS_YES, CLS_NO };

struct reader {
	const struct msgopts	*opts;
	struct message		*msg;
	const char		*dir;
	const char		*domain;	/* "" when unset */
	char			 qid[QID_MAX];
	struct lineconv		 out;		/* to the spool */
	int			 body;		/* past the header block */
	int			 first;		/* no input line classified */
	int			 bol;		/* next byte starts a line */
	enum cur		 cur;
	char			*field;		/* HEADER_KEEP_MAX bytes */
	size_t			 flen;
	size_t			 scan;		/* classification progress */
	int			 after_name;	/* WSP between name and ':' */
	size_t			 name_len;
	size_t			 colon;
	int			 seen[H_COUNT];
	struct addrlist		 resent_rcpts;
	struct error		 rcpt_err[2];	/* -t problems: plain, resent */
	char			*wbuf;
	size_t			 wlen;
	long long		 in_size;	/* the caller's bytes, CRLF form */
	char			*orig_from;	/* SP_ALIGN: for Reply-To: */
};

static int
spool_flush(struct reader *r, struct error *err)
{
	if (queue_write_all(r->msg->fd, r->wbuf, r->wlen) == -1)
		return error_set(err, ST_CANTCREAT, "cannot write "
		    "spool file in %s: %s", r->dir, strerror(errno));
	r->msg->size += (off_t)r->wlen;
	r->wlen = 0;
	return ST_OK;
}

/* Any byte over 127? An OR of 8-byte words: no branch per byte. */
static int
has_8bit(const char *p, size_t n)
{
	uint64_t acc = 0, w;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, sizeof(w));
		acc |= w;
	}
	for (; i < n; i++)
		acc |= (unsigned char)p[i];
	return (acc & 0x8080808080808080ULL) != 0;
}

/* Everything bound for the spool goes through here: split, fold, buffer. */
static int
spool_put(struct reader *r, const char *p, size_t n, struct error *err)
{
	size_t room, slice;
	int rc;

	if (!r->msg->eight_bit)
		r->msg->eight_bit = has_8bit(p, n);
	while (n > 0) {
		room = WBUF_SIZE - r->wlen;
		if (room < 3 + 4) {
			if ((rc = spool_flush(r, err)) != ST_OK)
				return rc;
			continue;
		}
		slice = (room - 4) / 3;
		if (slice > n)
			slice = n;
		r->wlen += lineconv_feed(&r->out, p, slice, r->wbuf + r->wlen,
		    room);
		p += slice;
		n -= slice;
	}
	return ST_OK;
}

static int
spool_puts(struct reader *r, const char *s, struct error *err)
{
	return spool_put(r, s, strlen(s), err);
}

/* Text from options and config: a CR or LF in it must not make a line. */
static int
put_clean(struct reader *r, const char *s, struct error *err)
{
	size_t n;
	int rc;

	while (*s != '\0') {
		n = strcspn(s, "\r\n");
		if ((rc = spool_put(r, s, n, err)) != ST_OK)
			return rc;
		s += n;
		if (*s != '\0') {
			if ((rc = spool_put(r, " ", 1, err)) != ST_OK)
				return rc;
			s++;
		}
	}
	return ST_OK;
}

static int
write_received(struct reader *r, struct error *err)
{
	char date[64], uid[32];
	const char *host = r->opts->hostname;
	int rc;

	message_date(r->opts->now, date, sizeof(date));
	(void)snprintf(uid, sizeof(uid), "%lu", (unsigned long)r->opts->uid);
	if ((rc = spool_puts(r, "Received: by ", err)) != ST_OK ||
	    (rc = put_clean(r, host != NULL && host[0] != '\0' ? host :
	    "localhost", err)) != ST_OK ||
	    (rc = spool_puts(r, " (postino, from userid ", err)) != ST_OK ||
	    (rc = spool_puts(r, uid, err)) != ST_OK ||
	    (rc = spool_puts(r, ")\r\n\tid ", err)) != ST_OK ||
	    (rc = spool_puts(r, r->qid, err)) != ST_OK ||
	    (rc = spool_puts(r, "; ", err)) != ST_OK ||
	    (rc = spool_puts(r, date, err)) != ST_OK)
		return rc;
	return spool_puts(r, "\r\n", err);
}

/* -------------------------------------------------------- added headers */

/* Does the display name need quoting (RFC 5322 specials)? */
static int
name_needs_quotes(const char *s)
{
	return strpbrk(s, "()<>[]:;@\\,.\"") != NULL;
}

/*
 * -F / GECOS: controls become spaces (no header injection), outer spaces
 * go, and the name is quoted with '"' and '\' escaped when it has
 * specials. dst must hold 2 * NAME_MAX_ + 3 bytes.
 */
static void
display_name(const char *src, char *dst, size_t dstlen)
{
	char tmp[NAME_MAX_];
	size_t n = 0, start = 0, o = 0, i;

	for (; src != NULL && src[n] != '\0' && n + 1 < sizeof(tmp); n++) {
		unsigned char c = (unsigned char)src[n];

		tmp[n] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	while (n > 0 && tmp[n - 1] == ' ')
		n--;
	/* cppcheck-suppress uninitvar ; the loop above set tmp[0..n-1] */
	while (start < n && tmp[start] == ' ')
		start++;
	tmp[n] = '\0';
	if (!name_needs_quotes(tmp + start)) {
		(void)strlcpy(dst, tmp + start, dstlen);
		return;
	}
	dst[o++] = '"';
	for (i = start; i < n && o + 3 < dstlen; i++) {
		if (tmp[i] == '"' || tmp[i] == '\\')
			dst[o++] = '\\';
		dst[o++] = tmp[i];
	}
	dst[o++] = '"';
	dst[o] = '\0';
}

/* Header addresses: under SenderPolicy align/refuse @localhost too. */
static int
qualify_addr(const struct reader *r, char *a, size_t len, struct error *e)
{
	return r->opts->policy != SP_KEEP ?
	    addr_qualify_local(a, len, r->domain, e) :
	    addr_qualify(a, len, r->domain, e);
}

static char *
qualify_list(const struct reader *r, const char *v, size_t len,
    struct error *e)
{
	return r->opts->policy != SP_KEEP ?
	    addr_list_qualify_local(v, len, r->domain, e) :
	    addr_list_qualify(v, len, r->domain, e);
}

static void
from_address(const struct reader *r, char *buf, size_t len)
{
	const char *a = r->opts->default_from;
	struct error e;

	if (a == NULL || a[0] == '\0')
		a = "MAILER-DAEMON";
	(void)strlcpy(buf, a, len);
	/* buf has room for an address and a domain. */
	(void)qualify_addr(r, buf, len, &e);
}

static int
write_from(struct reader *r, const char *hname, struct error *err)
{
	char name[2 * NAME_MAX_ + 3], addr[ADDR_MAX + HOST_MAX + 2];
	int rc;

	display_name(r->opts->full_name, name, sizeof(name));
	from_address(r, addr, sizeof(addr));
	if ((rc = spool_puts(r, hname, err)) != ST_OK ||
	    (rc = spool_puts(r, ": ", err)) != ST_OK)
		return rc;
	if (name[0] != '\0' && ((rc = spool_puts(r, name, err)) != ST_OK ||
	    (rc = spool_puts(r, " ", err)) != ST_OK))
		return rc;
	if ((rc = spool_puts(r, "<", err)) != ST_OK ||
	    (rc = put_clean(r, addr, err)) != ST_OK)
		return rc;
	return spool_puts(r, ">\r\n", err);
}

static int
write_message_id(struct reader *r, const char *hname, struct error *err)
{
	char stamp[32];
	struct tm tm;
	const char *dom = r->domain;
	int rc;

	if (localtime_r(&r->opts->now, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	(void)snprintf(stamp, sizeof(stamp), "%04d%02d%02d%02d%02d%02d",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec);
	if (dom[0] == '\0')
		dom = r->opts->hostname != NULL && r->opts->hostname[0] !=
		    '\0' ? r->opts->hostname : "localhost";
	if ((rc = spool_puts(r, hname, err)) != ST_OK ||
	    (rc = spool_puts(r, ": <", err)) != ST_OK ||
	    (rc = spool_puts(r, stamp, err)) != ST_OK ||
	    (rc = spool_puts(r, ".", err)) != ST_OK ||
	    (rc = spool_puts(r, r->qid, err)) != ST_OK ||
	    (rc = spool_puts(r, "@", err)) != ST_OK ||
	    (rc = put_clean(r, dom, err)) != ST_OK)
		return rc;
	return spool_puts(r, ">\r\n", err);
}

/* AddHeader= lines; a Date/Message-ID/From among them counts as present. */
static int
write_add_headers(struct reader *r, struct error *err)
{
	const char *line, *colon;
	size_t i, n;
	int rc;

	for (i = 0; i < r->opts->add_header_count; i++) {
		line = r->opts->add_headers[i];
		if ((colon = strchr(line, ':')) != NULL) {
			for (n = (size_t)(colon - line); n > 0 &&
			    is_wsp(line[n - 1]); n--)
				;
			r->seen[header_lookup(line, n)] = 1;
		}
		if ((rc = put_clean(r, line, err)) != ST_OK ||
		    (rc = spool_puts(r, "\r\n", err)) != ST_OK)
			return rc;
	}
	return ST_OK;
}

/* Postfix: in resent mode the Resent- forms are added instead. */
static int
write_missing(struct reader *r, struct error *err)
{
	int resent = r->msg->resent, rc;
	char date[64];

	if (!r->seen[resent ? H_R_DATE : H_DATE]) {
		message_date(r->opts->now, date, sizeof(date));
		if ((rc = spool_puts(r, resent ? "Resent-Date: " : "Date: ",
		    err)) != ST_OK ||
		    (rc = spool_puts(r, date, err)) != ST_OK ||
		    (rc = spool_puts(r, "\r\n", err)) != ST_OK)
			return rc;
	}
	if (!r->seen[resent ? H_R_MESSAGE_ID : H_MESSAGE_ID] &&
	    (rc = write_message_id(r, resent ? "Resent-Message-ID" :
	    "Message-ID", err)) != ST_OK)
		return rc;
	if (!r->seen[resent ? H_R_FROM : H_FROM])
		return write_from(r, resent ? "Resent-From" : "From", err);
	return ST_OK;
}

/* ------------------------------------------------------- header fields */

/* The first address of the first From:, qualified ("" if none usable). */
static void
note_from(struct reader *r, const char *value, size_t vlen)
{
	struct addrlist l;
	struct error e;
	char *a = r->msg->from_addr;

	addrlist_init(&l);
	if (addr_list_parse(value, vlen, &l, &e) == ST_OK && l.n > 0) {
		(void)strlcpy(a, l.v[0], ADDR_MAX);
		if (qualify_addr(r, a, ADDR_MAX, &e) != ST_OK)
			a[0] = '\0';
	}
	addrlist_free(&l);
}

/*
 * -t: a header that cannot be parsed fails the message only if its class
 * (plain or Resent-) is the one used, which is known at the end.
 */
static int
note_rcpts(struct reader *r, enum hname hn, const char *value, size_t vlen,
    int whole, struct error *err)
{
	int i = (header_kinds[hn].flags & HF_RESENT_RCPT) != 0, rc;
	struct error e;

	error_clear(&e);
	if (!whole)
		rc = error_set(&e, ST_DATA, "too long to take recipients from "
		    "(limit %d bytes)", HEADER_KEEP_MAX);
	else
		rc = addr_list_parse(value, vlen, i ? &r->resent_rcpts :
		    &r->msg->header_rcpts, &e);
	if (rc == ST_OK)
		return ST_OK;
	if (rc != ST_DATA) {
		*err = e;
		return rc;
	}
	if (r->rcpt_err[i].status == ST_OK) {
		r->rcpt_err[i] = e;
		error_prefix(&r->rcpt_err[i], "%s: header",
		    header_kinds[hn].name);
	}
	return ST_OK;
}

/* What a field tells, whether it is kept, dropped or too long to parse. */
static int
note_field(struct reader *r, enum hname hn, const char *value, size_t vlen,
    int whole, struct error *err)
{
	r->seen[hn] = 1;
	if (hn == H_R_TO || hn == H_R_CC || hn == H_R_BCC)
		r->msg->resent = 1;
	if (hn == H_FROM && !r->msg->had_from) {
		r->msg->had_from = 1;
		if (whole)
			note_from(r, value, vlen);
	}
	if (r->opts->extract_rcpts &&
	    (header_kinds[hn].flags & (HF_RCPT | HF_RESENT_RCPT)))
		return note_rcpts(r, hn, value, vlen, whole, err);
	return ST_OK;
}

/* ------------------------------------------------------ SenderPolicy */

/*
 * The display name of the first mailbox of a From: value: the phrase
 * before '<', or the text of a comment ("root (Cron Daemon)"), as a
 * phrase; "" when there is none or it is not plainly one.
 */
static void
from_display_name(const char *v, char *dst, size_t dstlen)
{
	char tmp[NAME_MAX_];
	const char *lt = strchr(v, '<'), *op, *cp;
	size_t n;

	dst[0] = '\0';
	if (lt != NULL) {
		while (is_wsp(*v))
			v++;
		n = (size_t)(lt - v);
		while (n > 0 && is_wsp(v[n - 1]))
			n--;
		/* A quoted string, or words without specials: one phrase. */
		if (n == 0 || n >= dstlen || (!(n >= 2 && v[0] == '"' &&
		    v[n - 1] == '"') && strcspn(v, "@,:;\"") < n))
			return;
		memcpy(dst, v, n);
		dst[n] = '\0';
	} else if ((op = strchr(v, '(')) != NULL &&
	    (cp = strchr(op, ')')) != NULL && strchr(v, ',') == NULL &&
	    (n = (size_t)(cp - op - 1)) > 0 && n < sizeof(tmp)) {
		memcpy(tmp, op + 1, n);
		tmp[n] = '\0';
		display_name(tmp, dst, dstlen);
	}
}

/* Is every address of the (qualified) list q one the user may use? */
static int
list_allowed(struct reader *r, const char *q, char *first_bad, size_t len)
{
	struct addrlist l;
	struct error e;
	size_t i;
	int ok = 1;

	addrlist_init(&l);
	if (q == NULL || addr_list_parse(q, strlen(q), &l, &e) != ST_OK ||
	    l.n == 0) {
		(void)strlcpy(first_bad, "(unparsable)", len);
		ok = 0;
	}
	for (i = 0; ok && i < l.n; i++)
		if (!r->opts->may_use(r->opts->may_use_arg, l.v[i])) {
			(void)strlcpy(first_bad, l.v[i], len);
			ok = 0;
		}
	addrlist_free(&l);
	return ok;
}

/* SP_ALIGN: "From: name <aligned>"; the original kept for Reply-To:. */
static int
write_aligned_from(struct reader *r, const char *q, struct error *err)
{
	char name[2 * NAME_MAX_ + 3];
	int rc;

	from_display_name(q != NULL ? q : "", name, sizeof(name));
	if (q != NULL && r->orig_from == NULL &&
	    (r->orig_from = strdup(q)) == NULL)
		return error_set(err, ST_OSERR, "out of memory");
	r->msg->aligned = 1;
	(void)strlcpy(r->msg->from_addr, r->opts->aligned_from, ADDR_MAX);
	if ((rc = spool_puts(r, "From: ", err)) != ST_OK)
		return rc;
	if (name[0] != '\0' && ((rc = spool_puts(r, name, err)) != ST_OK ||
	    (rc = spool_puts(r, " ", err)) != ST_OK))
		return rc;
	if ((rc = spool_puts(r, "<", err)) != ST_OK ||
	    (rc = put_clean(r, r->opts->aligned_from, err)) != ST_OK)
		return rc;
	return spool_puts(r, ">\r\n", err);
}

/* SP_ALIGN: the original From: as Reply-To:, unless there is one. */
static int
write_reply_to(struct reader *r, struct error *err)
{
	int rc;

	if (!r->msg->aligned || r->orig_from == NULL || r->seen[H_REPLY_TO])
		return ST_OK;
	if ((rc = spool_puts(r, "Reply-To:", err)) != ST_OK ||
	    (rc = spool_puts(r, r->orig_from, err)) != ST_OK)
		return rc;
	return spool_puts(r, "\r\n", err);
}

/* From: or Sender: under SenderPolicy align or refuse. */
static int
sender_field(struct reader *r, enum hname hn, const char *value,
    size_t vlen, struct error *err)
{
	char bad[ADDR_MAX];
	struct error e;
	char *q;
	int ok, rc;

	q = qualify_list(r, value, vlen, &e);
	ok = list_allowed(r, q, bad, sizeof(bad));
	if (!ok && r->opts->policy == SP_REFUSE && r->msg->refused[0] == '\0') {
		(void)strlcpy(r->msg->refused, bad, sizeof(r->msg->refused));
		(void)strlcpy(r->msg->refused_field, header_kinds[hn].name,
		    sizeof(r->msg->refused_field));
	}
	if (r->opts->policy == SP_ALIGN && hn == H_SENDER) {
		r->msg->sender_dropped = 1;
		rc = ST_OK;
	} else if (r->opts->policy == SP_ALIGN && !ok)
		rc = write_aligned_from(r, q, err);
	else if (q == NULL)
		rc = spool_put(r, r->field, r->flen, err);
	else if ((rc = spool_put(r, r->field, r->colon + 1, err)) == ST_OK &&
	    (rc = spool_puts(r, q, err)) == ST_OK)
		rc = spool_put(r, "\r\n", 2, err);
	free(q);
	return rc;
}

/* A complete field in field[]: note it, then drop, qualify or keep it. */
static int
field_done(struct reader *r, struct error *err)
{
	const char *value = r->field + r->colon + 1;
	size_t vlen = r->flen - r->colon - 1;
	enum hname hn = header_lookup(r->field, r->name_len);
	struct error e;
	char *q;
	int rc;

	r->cur = CUR_NONE;
	if (vlen >= 2 && value[vlen - 2] == '\r' && value[vlen - 1] == '\n')
		vlen -= 2;
	if ((rc = note_field(r, hn, value, vlen, 1, err)) != ST_OK)
		/* r->field is the reader's: message_read frees it. */
		/* NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
		return rc;
	if (header_kinds[hn].flags & HF_DROP)
		return ST_OK;
	if (r->opts->policy != SP_KEEP && (hn == H_FROM || hn == H_SENDER))
		return sender_field(r, hn, value, vlen, err);
	/* Unparsable address lists are kept as the caller wrote them. */
	if ((header_kinds[hn].flags & HF_QUALIFY) && r->domain[0] != '\0' &&
	    (q = qualify_list(r, value, vlen, &e)) != NULL) {
		rc = spool_put(r, r->field, r->colon + 1, err);
		if (rc == ST_OK)
			rc = spool_puts(r, q, err);
		if (rc == ST_OK)
			rc = spool_put(r, "\r\n", 2, err);
		free(q);
		return rc;
	}
	return spool_put(r, r->field, r->flen, err);
}

/* A field outgrew HEADER_KEEP_MAX: written through unrewritten, or dropped. */
static int
field_spill(struct reader *r, const char *rest, size_t n, struct error *err)
{
	enum hname hn = header_lookup(r->field, r->name_len);
	int rc;

	if ((rc = note_field(r, hn, NULL, 0, 0, err)) != ST_OK)
		return rc;
	if (header_kinds[hn].flags & HF_DROP) {
		r->cur = CUR_DROP;
		r->flen = 0;
		return ST_OK;
	}
	r->cur = CUR_PASS;
	rc = spool_put(r, r->field, r->flen, err);
	r->flen = 0;
	if (rc == ST_OK)
		rc = spool_put(r, rest, n, err);
	return rc;
}

/*
 * Is the line in field[] a header field: a name of printable ASCII but
 * ':', optional WSP (RFC 5322 obsolete syntax), then ':'? Incremental: a
 * line may arrive in pieces. A lone CR waits for the next byte, which
 * tells the empty line from a line of data starting with CR (lineconv
 * emits CRLF in one piece today; the scan does not rely on it).
 */
static int
classify(struct reader *r)
{
	unsigned char c;

	for (; r->scan < r->flen; r->scan++) {
		/* "name:" must fit on one 998-octet line: folding can only
		 * happen after the colon. */
		if (r->scan >= SMTP_LINE_MAX - 1)
			return CLS_NO;
		c = (unsigned char)r->field[r->scan];
		if (c == ':' && r->scan > 0) {
			if (!r->after_name)
				r->name_len = r->scan;
			r->colon = r->scan;
			return CLS_YES;
		}
		if (r->after_name) {
			if (is_wsp((char)c))
				continue;
			return CLS_NO;
		}
		if (c > ' ' && c < 0x7f && c != ':')
			continue;
		if (is_wsp((char)c) && r->scan > 0) {
			r->after_name = 1;
			r->name_len = r->scan;
			continue;
		}
		if (c == '\r' && r->scan == 0 && r->flen == 1)
			return CLS_MORE;
		return CLS_NO;
	}
	return CLS_MORE;
}

static int
finish_rcpts(struct reader *r, struct error *err)
{
	struct message *m = r->msg;
	int i = m->resent ? 1 : 0;

	if (!r->opts->extract_rcpts)
		return ST_OK;
	if (r->rcpt_err[i].status != ST_OK) {
		*err = r->rcpt_err[i];
		return err->status;
	}
	if (m->resent) {
		addrlist_free(&m->header_rcpts);
		m->header_rcpts = r->resent_rcpts;
		addrlist_init(&r->resent_rcpts);
	}
	return ST_OK;
}

static int
end_headers(struct reader *r, struct error *err)
{
	int rc;

	if (r->cur == CUR_FIELD && (rc = field_done(r, err)) != ST_OK)
		return rc;
	r->cur = CUR_NONE;
	if ((rc = finish_rcpts(r, err)) != ST_OK ||
	    (rc = write_add_headers(r, err)) != ST_OK ||
	    (rc = write_missing(r, err)) != ST_OK ||
	    (rc = write_reply_to(r, err)) != ST_OK ||
	    (rc = spool_put(r, "\r\n", 2, err)) != ST_OK)
		return rc;
	r->out.fold = 0;
	r->body = 1;
	return ST_OK;
}

static int
is_mbox_from(const char *p, size_t n)
{
	return (n >= 5 && memcmp(p, "From ", 5) == 0) ||
	    (n >= 6 && memcmp(p, ">From ", 6) == 0);
}

/*
 * The line in field[] (and rest, not yet copied) is no header: the mbox
 * "From " line, the empty line, or the first body line (a blank line is
 * inserted before it, by end_headers()).
 */
static int
not_header(struct reader *r, const char *rest, size_t n, int complete,
    struct error *err)
{
	int rc;

	if (r->first && is_mbox_from(r->field, r->flen)) {
		r->first = 0;
		r->cur = complete ? CUR_NONE : CUR_SKIP;
		r->flen = 0;
		return ST_OK;
	}
	r->cur = CUR_NONE;
	if ((rc = end_headers(r, err)) != ST_OK)
		return rc;
	if (r->flen == 2 && r->field[0] == '\r' && r->field[1] == '\n') {
		r->flen = 0;
		return ST_OK;
	}
	rc = spool_put(r, r->field, r->flen, err);
	r->flen = 0;
	if (rc == ST_OK)
		rc = spool_put(r, rest, n, err);
	return rc;
}

/* A piece of one header-block line: all of it when complete is set. */
static int
header_segment(struct reader *r, const char *p, size_t n, int complete,
    struct error *err)
{
	size_t k;
	int rc, c;

	if (r->bol || r->cur == CUR_NONE) {
		r->bol = 0;
		if (!(is_wsp(p[0]) && (r->cur == CUR_FIELD ||
		    r->cur == CUR_PASS || r->cur == CUR_DROP))) {
			if (r->cur == CUR_FIELD &&
			    (rc = field_done(r, err)) != ST_OK)
				return rc;
			r->cur = CUR_LINE;
			r->flen = r->scan = 0;
			r->after_name = 0;
		}
	}
	r->bol = complete;
	if (r->cur == CUR_SKIP) {
		if (complete)
			r->cur = CUR_NONE;
		return ST_OK;
	}
	if (r->cur == CUR_DROP)
		return ST_OK;
	if (r->cur == CUR_PASS)
		return spool_put(r, p, n, err);
	k = n < HEADER_KEEP_MAX - r->flen ? n : HEADER_KEEP_MAX - r->flen;
	memcpy(r->field + r->flen, p, k);
	r->flen += k;
	if (r->cur == CUR_LINE) {
		c = classify(r);
		/* A name filling the whole buffer is no field name. */
		if (c == CLS_MORE && k < n)
			c = CLS_NO;
		if (c == CLS_NO)
			return not_header(r, p + k, n - k, complete, err);
		if (c == CLS_YES) {
			r->cur = CUR_FIELD;
			r->first = 0;
		}
	}
	if (k < n)
		return field_spill(r, p + k, n - k, err);
	return ST_OK;
}

/* Normalised lines from "in": the header block piece by piece, or body. */
static int
scan(struct reader *r, const char *p, size_t n, struct error *err)
{
	const char *nl;
	size_t take;
	int rc;

	while (n > 0) {
		if (r->body)
			return spool_put(r, p, n, err);
		nl = memchr(p, '\n', n);
		take = nl != NULL ? (size_t)(nl - p) + 1 : n;
		if ((rc = header_segment(r, p, take, nl != NULL, err)) !=
		    ST_OK)
			return rc;
		p += take;
		n -= take;
	}
	return ST_OK;
}

static size_t
drop_nuls(char *p, size_t n, size_t *count)
{
	char *q = memchr(p, '\0', n), *w, *end = p + n;

	if (q == NULL)
		return n;
	for (w = q; q < end; q++) {
		if (*q == '\0')
			(*count)++;
		else
			*w++ = *q;
	}
	return (size_t)(w - p);
}

/*
 * One deadline for the whole drain, not per read: a writer that keeps
 * its end open and waits for us to exit must not hold us for ever, nor a
 * writer that trickles bytes.
 */
void
message_drain(int fd)
{
	char buf[65536];
	struct pollfd pfd;
	long long deadline = deadline_now_ms() + MESSAGE_DRAIN_MS, left;
	ssize_t n;

	if (isatty(fd))
		return;
	for (;;) {
		if ((left = deadline - deadline_now_ms()) <= 0)
			return;
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		n = poll(&pfd, 1, (int)left);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0 || (pfd.revents & POLLNVAL))
			return;
		n = read(fd, buf, sizeof(buf));
		if (n == 0 || (n == -1 && errno != EINTR && errno != EAGAIN))
			return;
	}
}

/*
 * MaxMessageSize, checked before the bytes reach the spool, so that the
 * spool never holds much more than the limit. Counted in the caller's
 * message after line-end normalisation (what SIZE counts, RFC 1870), the
 * final "." line and our own header fields not included.
 */
static int
check_size(struct reader *r, size_t n, struct error *err)
{
	r->in_size += (long long)n;
	if (r->opts->max_size > 0 && r->in_size > r->opts->max_size)
		return error_set(err, ST_DATA, "message larger than "
		    "MaxMessageSize (%lld bytes)", r->opts->max_size);
	return ST_OK;
}

static int
read_input(struct reader *r, int fd, char *ibuf, char *cbuf,
    struct error *err)
{
	struct lineconv in;
	ssize_t got;
	size_t n;
	int rc;

	lineconv_init(&in, 0, 0);
	in.end_at_dot = !r->opts->ignore_dots;
	for (;;) {
		got = read(fd, ibuf, READ_CHUNK);
		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1)
			return error_set(err, ST_IOERR, "cannot read the "
			    "message: %s", strerror(errno));
		if (got == 0) {
			n = lineconv_finish(&in, cbuf, CONV_CAP);
			if ((rc = check_size(r, n, err)) != ST_OK)
				return rc;
			return scan(r, cbuf, n, err);
		}
		n = drop_nuls(ibuf, (size_t)got, &r->msg->nul_bytes);
		n = lineconv_feed(&in, ibuf, n, cbuf, CONV_CAP);
		if ((rc = check_size(r, n, err)) != ST_OK ||
		    (rc = scan(r, cbuf, n, err)) != ST_OK)
			return rc;
		if (in.ended) {
			message_drain(fd);
			return ST_OK;
		}
	}
}

static int
finish_spool(struct reader *r, struct error *err)
{
	char tail[8];
	size_t n;
	int rc;

	/* Input always ends in CRLF; a bug must not leave a line open. */
	if (!r->body && r->cur == CUR_LINE &&
	    (rc = not_header(r, NULL, 0, 1, err)) != ST_OK)
		return rc;
	if (!r->body && (rc = end_headers(r, err)) != ST_OK)
		return rc;
	n = lineconv_finish(&r->out, tail, sizeof(tail));
	if (n > 0 && (rc = spool_put(r, tail, n, err)) != ST_OK)
		return rc;
	if ((rc = spool_flush(r, err)) != ST_OK)
		return rc;
	r->msg->lines_split = r->out.splits;
	if (lseek(r->msg->fd, 0, SEEK_SET) == -1)
		return error_set(err, ST_CANTCREAT, "cannot rewind spool file "
		    "in %s: %s", r->dir, strerror(errno));
	return ST_OK;
}

int
message_read(int in_fd, const char *spool_dir, const struct msgopts *opts,
    struct message *msg, struct error *err)
{
	struct reader r;
	char *ibuf, *cbuf;
	int rc;

	memset(msg, 0, sizeof(*msg));
	msg->fd = -1;
	addrlist_init(&msg->header_rcpts);
	memset(&r, 0, sizeof(r));
	r.opts = opts;
	r.msg = msg;
	r.dir = spool_dir;
	r.domain = opts->domain != NULL ? opts->domain : "";
	r.first = 1;
	r.bol = 1;
	addrlist_init(&r.resent_rcpts);
	error_clear(&r.rcpt_err[0]);
	error_clear(&r.rcpt_err[1]);
	if (opts->qid != NULL)
		(void)strlcpy(r.qid, opts->qid, sizeof(r.qid));
	else
		message_new_qid(r.qid);
	lineconv_init(&r.out, 0, SMTP_LINE_MAX);
	r.out.fold = 1;
	r.field = malloc(HEADER_KEEP_MAX);
	r.wbuf = malloc(WBUF_SIZE);
	ibuf = malloc(READ_CHUNK);
	cbuf = malloc(CONV_CAP);
	if (r.field == NULL || r.wbuf == NULL || ibuf == NULL || cbuf == NULL)
		rc = error_set(err, ST_OSERR, "out of memory");
	else if (opts->spool_fd != NULL) {
		msg->fd = *opts->spool_fd;	/* opened with the group */
		rc = ST_OK;
	} else
		rc = queue_spool_create(spool_dir, &msg->fd, err);
	if (rc == ST_OK)
		rc = write_received(&r, err);
	if (rc == ST_OK)
		rc = read_input(&r, in_fd, ibuf, cbuf, err);
	if (rc == ST_OK)
		rc = finish_spool(&r, err);
	free(r.field);
	free(r.wbuf);
	free(r.orig_from);
	free(ibuf);
	free(cbuf);
	addrlist_free(&r.resent_rcpts);
	if (rc != ST_OK)
		message_free(msg);
	return rc;
}

void
message_free(struct message *msg)
{
	if (msg->fd != -1)
		(void)close(msg->fd);
	msg->fd = -1;
	addrlist_free(&msg->header_rcpts);
}

