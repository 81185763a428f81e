/*
 * smtp.c: the SMTP client protocol spoken to the hub. The one strict
 * reply reader, the session over a connection the caller opened
 * (greeting, EHLO with HELO fallback, STARTTLS or implicit TLS through
 * conn_start_tls, AUTH PLAIN/LOGIN/CRAM-MD5 with auth.c's responses),
 * the transaction (RSET when due, MAIL, RCPT, DATA pipelined in one write
 * when the hub allows it, the spooled body streamed dot-stuffed in large
 * writes, the final dot), RSET and QUIT. It also owns the transcript
 * (-v, Debug=), because only here is it known which lines carry
 * credentials.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "postino.h"

#define CAP_PIPELINING	0x01
#define CAP_SIZE	0x02
#define CAP_8BITMIME	0x04
#define CAP_SMTPUTF8	0x08
#define CAP_STARTTLS	0x10
#define CAP_AUTH	0x20
#define CAP_DSN		0x40
#define CAP_ENHANCED	0x80

#define MECH_PLAIN	0x01
#define MECH_LOGIN	0x02
#define MECH_CRAM_MD5	0x04
#define MECH_XOAUTH2	0x08
#define MECH_OAUTHBEARER 0x10

#define CMD_MAX		4096	/* one command line we send, CRLF included */
#define RCPT_BATCH	100	/* RCPTs per pipelined write (RFC 2920 5) */
#define BODY_CHUNK	65536	/* spool bytes per read and write */
#define QUIT_MS		2000	/* QUIT is a courtesy: do not wait long */

/* What the hub's last successful EHLO said. */
struct caps {
	unsigned		 flags;
	unsigned		 mechs;
	unsigned long long	 size_max;	/* 0: no limit given */
};

struct smtp {
	struct conn		*conn;		/* owned: conn_free at close */
	transcript_fn		*transcript;
	void			*transcript_arg;
	const struct config	*cfg;
	const char		*token;		/* bearer token (smtp_params) */
	char			 helo[HOST_MAX];
	struct caps		 caps;
	int			 broken;	/* out of step: no QUIT */
	int			 rset_due;	/* RSET goes before the next MAIL */
};

/* Commands being built for one write. */
struct out {
	char	*buf;
	size_t	 len, cap;
};

/* MAIL and DATA replies of one transaction. */
struct txn {
	int	 mail_code;
	char	 mail_reply[REPLY_TEXT_MAX];
	int	 data_code;
	char	 data_reply[REPLY_TEXT_MAX];
};

typedef void	 reply_line_fn(void *arg, int index, int code,
		    const char *text);

static int
hinted(struct error *err, enum admin_hint hint, int status)
{
	if (err != NULL)
		err->hint = hint;
	return status;
}

static void
trace(const struct smtp *s, enum transcript_dir dir, const char *line,
    size_t len)
{
	if (s->transcript != NULL)
		s->transcript(s->transcript_arg, dir, line, len);
}

static void
trace_info(const struct smtp *s, const char *text)
{
	trace(s, TR_INFO, text, strlen(text));
}

/* ------------------------------------------------------ reply reader */

/* "ddd", "ddd text" or "ddd-text": 0 last line, 1 more follow, -1 bad. */
static int
parse_reply_line(const char *line, size_t n, int *code)
{
	if (n < 3 || line[0] < '2' || line[0] > '5' ||
	    line[1] < '0' || line[1] > '9' || line[2] < '0' || line[2] > '9')
		return -1;
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
	    (line[2] - '0');
	if (n == 3 || line[3] == ' ')
		return 0;
	return line[3] == '-' ? 1 : -1;
}

/* Keep "ddd first line / second / ..." within textlen. */
static void
reply_append(char *text, size_t textlen, int index, const char *clean,
    size_t n)
{
	const char *body = n > 4 ? clean + 4 : "";

	if (textlen == 0)
		return;
	if (index == 0) {
		(void)snprintf(text, textlen, "%.3s%s%s", clean,
		    *body != '\0' ? " " : "", body);
		return;
	}
	if (*body == '\0')
		return;
	(void)strlcat(text, " / ", textlen);
	(void)strlcat(text, body, textlen);
}

static int	read_lines(struct smtp *, int *, char *, size_t,
		    reply_line_fn *, void *, struct error *);

static int
read_reply(struct smtp *s, int *code, char *text, size_t textlen,
    reply_line_fn *fn, void *arg, struct error *err)
{
	int lc = 0, rc;

	if (textlen > 0)
		text[0] = '\0';
	*code = 0;
	rc = read_lines(s, &lc, text, textlen, fn, arg, err);
	/* A reply that turned out malformed has no code: the caller must
	 * not take its first line for an answer (a lost reply to the dot). */
	*code = rc == ST_OK ? lc : 0;
	return rc;
}

static int
read_lines(struct smtp *s, int *codep, char *text, size_t textlen,
    reply_line_fn *fn, void *arg, struct error *err)
{
	/* REPLY_LINE_MAX counts the CRLF; the buffer holds the rest + NUL. */
	char line[REPLY_LINE_MAX - 1], clean[REPLY_LINE_MAX];
	size_t n;
	int i, lc = 0, more, rc, code = 0;

	for (i = 0;; i++) {
		if (i == REPLY_LINES_MAX)
			return error_set(err, ST_TEMP, "malformed reply from "
			    "hub: more than %d lines", REPLY_LINES_MAX);
		if ((rc = conn_read_line(s->conn, line, sizeof(line), &n,
		    err)) != ST_OK)
			return rc;
		(void)log_sanitize(clean, sizeof(clean), line, n);
		trace(s, TR_RECEIVED, clean, strlen(clean));
		if ((more = parse_reply_line(line, n, &lc)) == -1)
			return error_set(err, ST_TEMP, "malformed reply from "
			    "hub: \"%.80s\"", clean);
		if (i > 0 && lc != code)
			return error_set(err, ST_TEMP, "malformed reply from "
			    "hub: code %d in a %d reply", lc, code);
		code = lc;
		reply_append(text, textlen, i, clean, n);
		if (fn != NULL)
			fn(arg, i, lc, n > 4 ? clean + 4 : "");
		if (!more) {
			*codep = code;
			return ST_OK;
		}
	}
}

int
smtp_read_reply(struct conn *c, int *code, char *text, size_t textlen,
    struct error *err)
{
	struct smtp bare;	/* no session: no transcript */

	memset(&bare, 0, sizeof(bare));
	bare.conn = c;
	return read_reply(&bare, code, text, textlen, NULL, NULL, err);
}

/* Read a reply in a session; what says which, for the error text. */
static int
reply(struct smtp *s, const char *what, int *code, char *text,
    size_t textlen, struct error *err)
{
	int rc;

	rc = read_reply(s, code, text, textlen, NULL, NULL, err);
	if (rc != ST_OK) {
		s->broken = 1;
		error_prefix(err, "%s", what);
	}
	return rc;
}

/* ---------------------------------------------------------- sending */

/* Append one command; shown replaces it in the transcript (redaction). */
static int
out_add(struct smtp *s, struct out *o, const char *shown, struct error *err,
    const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
out_add(struct smtp *s, struct out *o, const char *shown, struct error *err,
    const char *fmt, ...)
{
	va_list ap;
	char *line = o->buf + o->len;
	size_t room = o->cap - o->len;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n + 3 > room) {
		explicit_bzero(line, room);
		return error_set(err, ST_SOFTWARE, "SMTP command too long");
	}
	trace(s, TR_SENT, shown != NULL ? shown : line,
	    shown != NULL ? strlen(shown) : (size_t)n);
	memcpy(line + n, "\r\n", 3);
	o->len += (size_t)n + 2;
	return ST_OK;
}

/* One write for everything added; the buffer is wiped (it may hold AUTH). */
static int
out_flush(struct smtp *s, struct out *o, const char *what,
    struct error *err)
{
	int rc;

	/*
	 * The hub speaks only when spoken to: bytes already waiting before
	 * a command would be taken for its answer (a fake 250 to RCPT,
	 * DATA or the final dot). Refuse them.
	 */
	if (conn_pending(s->conn) > 0) {
		explicit_bzero(o->buf, o->len);
		o->len = 0;
		s->broken = 1;
		return error_set(err, ST_TEMP, "hub sent data nobody asked "
		    "for before %s: refused", what);
	}
	rc = conn_write(s->conn, o->buf, o->len, err);
	explicit_bzero(o->buf, o->len);
	o->len = 0;
	if (rc != ST_OK) {
		s->broken = 1;
		error_prefix(err, "%s", what);
	}
	return rc;
}

/* One command alone, starting a new step (deadline). */
static int
send_cmd(struct smtp *s, const char *shown, struct error *err,
    const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
send_cmd(struct smtp *s, const char *shown, struct error *err,
    const char *fmt, ...)
{
	char buf[CMD_MAX];
	struct out o = { buf, 0, sizeof(buf) };
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n + 3 > sizeof(buf)) {
		explicit_bzero(buf, sizeof(buf));
		return error_set(err, ST_SOFTWARE, "SMTP command too long");
	}
	trace(s, TR_SENT, shown != NULL ? shown : buf,
	    shown != NULL ? strlen(shown) : (size_t)n);
	memcpy(buf + n, "\r\n", 3);
	o.len = (size_t)n + 2;
	conn_step(s->conn);
	rc = out_flush(s, &o, "sending a command", err);
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

/* ----------------------------------------------------- capabilities */

/* Does text start with keyword, followed by the end, a space or '='? */
static int
keyword(const char *text, const char *kw, const char **rest)
{
	size_t n = strlen(kw);

	if (strncasecmp(text, kw, n) != 0)
		return 0;
	if (text[n] != '\0' && text[n] != ' ' && text[n] != '=')
		return 0;
	*rest = text[n] != '\0' ? text + n + 1 : text + n;
	return 1;
}

static unsigned
auth_mechs(const char *list)
{
	static const struct {
		const char	*name;
		unsigned	 bit;
	} known[] = {
		{ "PLAIN", MECH_PLAIN },
		{ "LOGIN", MECH_LOGIN },
		{ "CRAM-MD5", MECH_CRAM_MD5 },
		{ "XOAUTH2", MECH_XOAUTH2 },
		{ "OAUTHBEARER", MECH_OAUTHBEARER },
	};
	unsigned bits = 0;
	size_t i, n;

	while (*list != '\0') {
		n = strcspn(list, " ");
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (n == strlen(known[i].name) &&
			    strncasecmp(list, known[i].name, n) == 0)
				bits |= known[i].bit;
		list += n;
		list += strspn(list, " ");
	}
	return bits;
}

/* One line of an EHLO reply; the first names the hub, not an extension. */
static void
cap_line(void *arg, int index, int code, const char *text)
{
	struct caps *k = arg;
	const char *rest, *errstr;
	long long n;

	if (index == 0 || code != 250)
		return;
	if (keyword(text, "PIPELINING", &rest))
		k->flags |= CAP_PIPELINING;
	else if (keyword(text, "8BITMIME", &rest))
		k->flags |= CAP_8BITMIME;
	else if (keyword(text, "SMTPUTF8", &rest))
		k->flags |= CAP_SMTPUTF8;
	else if (keyword(text, "STARTTLS", &rest))
		k->flags |= CAP_STARTTLS;
	else if (keyword(text, "DSN", &rest))
		k->flags |= CAP_DSN;
	else if (keyword(text, "ENHANCEDSTATUSCODES", &rest))
		k->flags |= CAP_ENHANCED;
	else if (keyword(text, "AUTH", &rest)) {
		/* "AUTH=" is the form of pre-RFC 2554 servers. */
		k->flags |= CAP_AUTH;
		k->mechs |= auth_mechs(rest);
	} else if (keyword(text, "SIZE", &rest)) {
		k->flags |= CAP_SIZE;
		n = strtonum(rest, 0, LLONG_MAX, &errstr);
		k->size_max = errstr == NULL ? (unsigned long long)n : 0;
	}
}

/* ---------------------------------------------------------- session */

static int
hello(struct smtp *s, struct smtp_result *res, struct error *err)
{
	struct caps k = { 0, 0, 0 };
	int rc;

	res->stage = STAGE_EHLO;
	memset(&s->caps, 0, sizeof(s->caps));
	if ((rc = send_cmd(s, NULL, err, "EHLO %s", s->helo)) != ST_OK)
		return rc;
	rc = read_reply(s, &res->code, res->reply, sizeof(res->reply),
	    cap_line, &k, err);
	if (rc != ST_OK) {
		s->broken = 1;
		error_prefix(err, "reply to EHLO");
		return rc;
	}
	if (res->code / 100 == 2) {
		s->caps = k;
		return ST_OK;
	}
	if (res->code / 100 != 5)
		return error_set(err, ST_TEMP, "hub refused EHLO: %s",
		    res->reply);
	/* An old hub: HELO, and no extensions. */
	if ((rc = send_cmd(s, NULL, err, "HELO %s", s->helo)) != ST_OK ||
	    (rc = reply(s, "reply to HELO", &res->code, res->reply,
	    sizeof(res->reply), err)) != ST_OK)
		return rc;
	if (res->code / 100 != 2)
		return error_set(err, ST_TEMP, "hub refused HELO: %s",
		    res->reply);
	return ST_OK;
}

static int
greeting(struct smtp *s, struct smtp_result *res, struct error *err)
{
	int rc;

	res->stage = STAGE_GREETING;
	conn_step(s->conn);
	if ((rc = reply(s, "greeting", &res->code, res->reply,
	    sizeof(res->reply), err)) != ST_OK)
		return rc;
	if (res->code / 100 != 2)
		return error_set(err, ST_TEMP, "hub refused the connection: "
		    "%s", res->reply);
	/* An early talker would have its words taken as later replies. */
	if (conn_pending(s->conn) > 0) {
		s->broken = 1;
		return error_set(err, ST_TEMP, "hub sent data after its "
		    "greeting, before EHLO: refused");
	}
	return ST_OK;
}

static void
tls_params_of(const struct smtp *s, struct tls_params *tp)
{
	const struct config *cfg = s->cfg;

	memset(tp, 0, sizeof(*tp));
	tp->servername = conn_host(s->conn);
	tp->verify = cfg->tls_verify;
	tp->ca_file = cfg->tls_ca_file;
	tp->ca_dir = cfg->tls_ca_dir;
	tp->pins = cfg->tls_pins;
	tp->pin_count = cfg->tls_pin_count;
	tp->cert_file = cfg->use_tls_cert ? cfg->tls_cert : NULL;
	tp->key_file = cfg->tls_key;
	/* check --hub shows the certificate the hub presents today. */
	tp->session_dir = cfg->tls_fresh ? NULL : cfg->queue_dir;
}

static int
start_tls(struct smtp *s, struct smtp_result *res, struct error *err)
{
	struct tls_params tp;
	char info[sizeof(res->tls) + 16];
	int rc;

	res->stage = STAGE_TLS;
	tls_params_of(s, &tp);
	rc = conn_start_tls(s->conn, &tp, err);
	conn_tls_cert(s->conn, &res->cert);
	if (rc != ST_OK) {
		s->broken = 1;
		return rc;
	}
	(void)strlcpy(res->tls, conn_tls_info(s->conn), sizeof(res->tls));
	(void)snprintf(info, sizeof(info), "TLS: %s", res->tls);
	trace_info(s, info);
	return ST_OK;
}

/* DESIGN 3.6: require 220, refuse early bytes, forget, EHLO again. */
static int
starttls(struct smtp *s, struct smtp_result *res, struct error *err)
{
	int rc;

	res->stage = STAGE_STARTTLS;
	if (!(s->caps.flags & CAP_STARTTLS))
		return hinted(err, HINT_TLS_POLICY, error_set(err, ST_TEMP,
		    "hub does not offer STARTTLS (UseSTARTTLS=YES): message "
		    "not sent"));
	if ((rc = send_cmd(s, NULL, err, "STARTTLS")) != ST_OK ||
	    (rc = reply(s, "reply to STARTTLS", &res->code, res->reply,
	    sizeof(res->reply), err)) != ST_OK)
		return rc;
	if (res->code != 220)
		return hinted(err, res->code / 100 == 4 ? HINT_NONE :
		    HINT_TLS_POLICY, error_set(err, ST_TEMP, "hub refused "
		    "STARTTLS: %s", res->reply));
	if (conn_pending(s->conn) > 0) {
		s->broken = 1;
		return hinted(err, HINT_TLS_POLICY, error_set(err, ST_TEMP,
		    "hub sent data after 220 to STARTTLS: refused (possible "
		    "command injection)"));
	}
	if ((rc = start_tls(s, res, err)) != ST_OK)
		return rc;
	return hello(s, res, err);
}

/* ------------------------------------------------------------- AUTH */

static const char *
mech_name(enum auth_method m)
{
	switch (m) {
	case AUTH_PLAIN:
		return "PLAIN";
	case AUTH_LOGIN:
		return "LOGIN";
	case AUTH_CRAM_MD5:
		return "CRAM-MD5";
	case AUTH_XOAUTH2:
		return "XOAUTH2";
	case AUTH_OAUTHBEARER:
		return "OAUTHBEARER";
	default:
		return "?";
	}
}

static int
choose_mech(const struct smtp *s, enum auth_method *m, struct error *err)
{
	unsigned offered = s->caps.mechs, bit;

	if (!(s->caps.flags & CAP_AUTH))
		return hinted(err, HINT_AUTH, error_set(err, ST_TEMP,
		    conn_tls_info(s->conn)[0] == '\0' ? "hub offers no AUTH; "
		    "check UseSTARTTLS" : "hub offers no AUTH although "
		    "AuthUser is set"));
	*m = s->cfg->auth_method;
	if (*m == AUTH_BEST) {
		if (offered & MECH_CRAM_MD5)
			*m = AUTH_CRAM_MD5;
		else if (offered & MECH_PLAIN)
			*m = AUTH_PLAIN;
		else if (offered & MECH_LOGIN)
			*m = AUTH_LOGIN;
		else
			return hinted(err, HINT_AUTH, error_set(err, ST_TEMP,
			    "hub offers no AUTH mechanism postino knows "
			    "(CRAM-MD5, PLAIN, LOGIN)"));
		return ST_OK;
	}
	bit = *m == AUTH_PLAIN ? MECH_PLAIN : *m == AUTH_LOGIN ? MECH_LOGIN :
	    *m == AUTH_XOAUTH2 ? MECH_XOAUTH2 : *m == AUTH_OAUTHBEARER ?
	    MECH_OAUTHBEARER : MECH_CRAM_MD5;
	if (!(offered & bit))
		return hinted(err, HINT_AUTH, error_set(err, ST_TEMP,
		    "hub does not offer AUTH %s", mech_name(*m)));
	return ST_OK;
}

/* Send a base64 line (a credential), wipe it, and read the reply. */
static int
auth_step(struct smtp *s, struct smtp_result *res, const char *shown,
    const char *prefix, char *b64, struct error *err)
{
	int rc;

	rc = send_cmd(s, shown, err, "%s%s", prefix, b64);
	explicit_bzero(b64, AUTH_B64_MAX);
	if (rc != ST_OK)
		return rc;
	return reply(s, "reply to AUTH", &res->code, res->reply,
	    sizeof(res->reply), err);
}

static int
auth_plain(struct smtp *s, struct smtp_result *res, struct error *err)
{
	char b64[AUTH_B64_MAX];
	int rc;

	if ((rc = auth_plain_response(s->cfg->auth_user, s->cfg->auth_pass,
	    b64, sizeof(b64), err)) != ST_OK)
		return rc;
	return auth_step(s, res, "AUTH PLAIN <redacted>", "AUTH PLAIN ", b64,
	    err);
}

/* One LOGIN answer (the user or the password), base64, redacted. */
static int
auth_login_answer(struct smtp *s, struct smtp_result *res, const char *shown,
    const char *prefix, const char *text, struct error *err)
{
	char b64[AUTH_B64_MAX];
	int rc;

	if ((rc = auth_login_response(text, b64, sizeof(b64), err)) != ST_OK)
		return rc;
	return auth_step(s, res, shown, prefix, b64, err);
}

static int
auth_login(struct smtp *s, struct smtp_result *res, struct error *err)
{
	const char *user = s->cfg->auth_user, *pass = s->cfg->auth_pass;
	int rc;

	if (s->cfg->use_old_auth)
		rc = auth_login_answer(s, res, "AUTH LOGIN <redacted>",
		    "AUTH LOGIN ", user, err);
	else if ((rc = send_cmd(s, NULL, err, "AUTH LOGIN")) == ST_OK &&
	    (rc = reply(s, "reply to AUTH", &res->code, res->reply,
	    sizeof(res->reply), err)) == ST_OK && res->code == 334)
		rc = auth_login_answer(s, res, "<redacted>", "", user, err);
	if (rc != ST_OK || res->code != 334)
		return rc;
	return auth_login_answer(s, res, "<redacted>", "", pass, err);
}

static int
auth_cram_md5(struct smtp *s, struct smtp_result *res, struct error *err)
{
	char b64[AUTH_B64_MAX];
	struct error cancel;
	int rc;

	if ((rc = send_cmd(s, NULL, err, "AUTH CRAM-MD5")) != ST_OK ||
	    (rc = reply(s, "reply to AUTH", &res->code, res->reply,
	    sizeof(res->reply), err)) != ST_OK || res->code != 334)
		return rc;
	rc = auth_cram_md5_response(s->cfg->auth_user, s->cfg->auth_pass,
	    res->reply + 3, strlen(res->reply + 3), b64, sizeof(b64), err);
	if (rc == ST_TEMP) {
		/* Cancel the exchange (RFC 4954 4) before giving up. */
		if (send_cmd(s, NULL, &cancel, "*") == ST_OK)
			(void)reply(s, "reply to AUTH", &res->code,
			    res->reply, sizeof(res->reply), &cancel);
		s->broken = 1;
		return rc;
	}
	if (rc != ST_OK)
		return rc;
	return auth_step(s, res, "<redacted>", "", b64, err);
}

/* "AUTH MECH <base64>" in one line of its own (a token outgrows CMD_MAX). */
static int
bearer_send(struct smtp *s, enum auth_method m, const char *b64,
    struct error *err)
{
	char shown[40];
	struct out o;
	int n, rc;

	o.cap = strlen(b64) + 32;
	o.len = 0;
	if ((o.buf = malloc(o.cap)) == NULL)
		return error_set(err, ST_OSERR, "out of memory");
	n = snprintf(o.buf, o.cap, "AUTH %s %s\r\n", mech_name(m), b64);
	o.len = n > 0 && (size_t)n < o.cap ? (size_t)n : 0;
	(void)snprintf(shown, sizeof(shown), "AUTH %s <redacted>",
	    mech_name(m));
	trace(s, TR_SENT, shown, strlen(shown));
	conn_step(s->conn);
	rc = out_flush(s, &o, "sending a command", err);
	freezero(o.buf, o.cap);
	return rc;
}

/* The port of "host[addr]:port" (the relay), for OAUTHBEARER's port=. */
static const char *
relay_port(const struct smtp_result *res)
{
	const char *colon = strrchr(res->relay, ':');

	return colon != NULL && colon[1] != '\0' ? colon + 1 : "25";
}

/*
 * XOAUTH2 or OAUTHBEARER with the bearer token. A refused token gets a
 * 334 with a base64 JSON error first (RFC 7628 3.2.2), answered with an
 * empty line (XOAUTH2) or ^A (OAUTHBEARER) before the final reply. A
 * refusal is HINT_AUTH at res->stage AUTH with the hub's code, which is
 * how deliver.c knows to refresh the token and try once more.
 */
static int
auth_bearer(struct smtp *s, enum auth_method m, struct smtp_result *res,
    struct error *err)
{
	char *b64, json[256] = "";
	int rc;

	if (s->token == NULL || s->token[0] == '\0')
		return hinted(err, HINT_AUTH, error_set(err, ST_TEMP,
		    "AUTH %s: no OAuth token", mech_name(m)));
	if ((b64 = malloc(AUTH_OAUTH_B64_MAX)) == NULL)
		return error_set(err, ST_OSERR, "out of memory");
	rc = m == AUTH_XOAUTH2 ? auth_xoauth2_response(s->cfg->auth_user,
	    s->token, b64, AUTH_OAUTH_B64_MAX, err) :
	    auth_oauthbearer_response(s->cfg->auth_user, conn_host(s->conn),
	    relay_port(res), s->token, b64, AUTH_OAUTH_B64_MAX, err);
	if (rc == ST_OK)
		rc = bearer_send(s, m, b64, err);
	freezero(b64, AUTH_OAUTH_B64_MAX);
	if (rc == ST_OK)
		rc = reply(s, "reply to AUTH", &res->code, res->reply,
		    sizeof(res->reply), err);
	if (rc == ST_OK && res->code == 334) {
		auth_oauth_error(res->reply + 3, json, sizeof(json));
		if ((rc = send_cmd(s, "<error acknowledged>", err, "%s",
		    m == AUTH_XOAUTH2 ? "" : "AQ==")) == ST_OK)
			rc = reply(s, "reply to AUTH", &res->code, res->reply,
			    sizeof(res->reply), err);
	}
	if (rc != ST_OK || res->code / 100 == 2)
		return rc;
	return hinted(err, HINT_AUTH, error_set(err, ST_TEMP, "hub refused "
	    "the OAuth token (AUTH %s for AuthUser %s): %s%s%s",
	    mech_name(m), s->cfg->auth_user, res->reply, json[0] != '\0' ?
	    " " : "", json));
}

static int
authenticate(struct smtp *s, struct smtp_result *res, struct error *err)
{
	enum auth_method m = AUTH_BEST;
	int rc;

	res->stage = STAGE_AUTH;
	if ((rc = choose_mech(s, &m, err)) != ST_OK)
		return rc;
	if (m == AUTH_XOAUTH2 || m == AUTH_OAUTHBEARER)
		return auth_bearer(s, m, res, err);
	if (m == AUTH_PLAIN)
		rc = auth_plain(s, res, err);
	else if (m == AUTH_LOGIN)
		rc = auth_login(s, res, err);
	else
		rc = auth_cram_md5(s, res, err);
	if (rc != ST_OK)
		return rc;
	if (res->code / 100 == 2)
		return ST_OK;
	if (res->code == 334) {
		/* It wants more than the mechanism gives: cancel. */
		if ((rc = send_cmd(s, NULL, err, "*")) != ST_OK ||
		    (rc = reply(s, "reply to AUTH", &res->code, res->reply,
		    sizeof(res->reply), err)) != ST_OK)
			return rc;
		return error_set(err, ST_TEMP, "AUTH %s: unexpected "
		    "challenge from hub", mech_name(m));
	}
	/* Refused credentials are an admin problem: keep the mail. */
	if (res->code / 100 == 5)
		return hinted(err, HINT_AUTH, error_set(err, ST_TEMP,
		    "hub refused AUTH %s for AuthUser %s: %s", mech_name(m),
		    s->cfg->auth_user, res->reply));
	return error_set(err, ST_TEMP, "AUTH %s failed: %s", mech_name(m),
	    res->reply);
}

/* Everything after connect, up to a session ready for MAIL. */
static int
session(struct smtp *s, struct smtp_result *res, struct error *err)
{
	int rc;

	if (s->cfg->tls == TLS_IMPLICIT &&
	    (rc = start_tls(s, res, err)) != ST_OK)
		return rc;
	if ((rc = greeting(s, res, err)) != ST_OK ||
	    (rc = hello(s, res, err)) != ST_OK)
		return rc;
	if (s->cfg->tls == TLS_STARTTLS &&
	    (rc = starttls(s, res, err)) != ST_OK)
		return rc;
	if (s->cfg->auth_user[0] != '\0' &&
	    (rc = authenticate(s, res, err)) != ST_OK)
		return rc;
	return ST_OK;
}

int
smtp_precheck(const struct smtp_params *p, struct smtp_result *res,
    struct error *err)
{
	const struct config *cfg = p->cfg;

	memset(res, 0, sizeof(*res));
	res->stage = STAGE_CONNECT;
	if (cfg->auth_user[0] != '\0' && cfg->tls == TLS_NONE &&
	    !cfg->auth_allow_plaintext)
		return hinted(err, HINT_TLS_POLICY, error_set(err, ST_CONFIG,
		    "AuthUser is set but the "
		    "connection to the hub is not encrypted: set "
		    "UseSTARTTLS=YES (or UseTLS=YES), or "
		    "AuthAllowPlaintext=YES to send the password in clear"));
	return ST_OK;
}

int
smtp_open(struct smtp **out, struct conn *conn, const struct smtp_params *p,
    struct smtp_result *res, struct error *err)
{
	struct smtp *s;
	char info[sizeof(res->relay) + 16];
	int rc;

	*out = NULL;
	if ((rc = smtp_precheck(p, res, err)) != ST_OK) {
		conn_free(conn);
		return rc;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		conn_free(conn);
		return error_set(err, ST_OSERR, "out of memory");
	}
	s->conn = conn;
	s->cfg = p->cfg;
	s->token = p->token;
	s->transcript = p->transcript;
	s->transcript_arg = p->transcript_arg;
	(void)strlcpy(s->helo, p->helo != NULL && p->helo[0] != '\0' ?
	    p->helo : "localhost", sizeof(s->helo));
	conn_relay(conn, res->relay, sizeof(res->relay));
	(void)snprintf(info, sizeof(info), "connected to %s", res->relay);
	trace_info(s, info);
	if ((rc = session(s, res, err)) != ST_OK) {
		smtp_close(s);
		return rc;
	}
	*out = s;
	return ST_OK;
}

/* ------------------------------------------------------ transaction */

/* CR or LF in a path would let an address add commands of its own. */
static int
check_envelope(struct envelope *env, struct error *err)
{
	size_t i;
	int utf8;

	if (env->nrcpt == 0)
		return error_set(err, ST_DATA, "no recipients");
	if (env->spool_fd < 0)
		return error_set(err, ST_SOFTWARE, "no spool file");
	if (strpbrk(env->sender, "\r\n<>") != NULL)
		return error_set(err, ST_DATA, "unsafe sender address");
	utf8 = addr_needs_utf8(env->sender);
	for (i = 0; i < env->nrcpt; i++) {
		if (env->rcpt[i].addr == NULL || env->rcpt[i].addr[0] == '\0' ||
		    strpbrk(env->rcpt[i].addr, "\r\n<>") != NULL)
			return error_set(err, ST_DATA, "unsafe recipient "
			    "address");
		utf8 |= addr_needs_utf8(env->rcpt[i].addr);
		env->rcpt[i].code = 0;
		free(env->rcpt[i].reply);
		env->rcpt[i].reply = NULL;
		env->rcpt[i].status = ST_TEMP;
	}
	env->smtputf8 = utf8 != 0;
	return ST_OK;
}

/* Refusals the hub's EHLO lets us make without asking it. */
static int
check_limits(const struct smtp *s, const struct envelope *env,
    struct smtp_result *res, struct error *err)
{
	if (s->caps.size_max > 0 && env->size > 0 &&
	    (unsigned long long)env->size > s->caps.size_max) {
		res->code = 552;
		(void)snprintf(res->reply, sizeof(res->reply), "message size "
		    "%lld exceeds the hub's limit of %llu",
		    (long long)env->size, s->caps.size_max);
		return error_set(err, ST_PERM, "%s", res->reply);
	}
	if (env->smtputf8 && !(s->caps.flags & CAP_SMTPUTF8)) {
		res->code = 553;
		(void)strlcpy(res->reply, "hub does not support SMTPUTF8",
		    sizeof(res->reply));
		return error_set(err, ST_PERM, "%s", res->reply);
	}
	return ST_OK;
}

/* A DSN parameter goes out only when given and the hub offers DSN. */
static int
dsn_on(const struct smtp *s, const char *value)
{
	return value[0] != '\0' && (s->caps.flags & CAP_DSN);
}

static int
add_mail(struct smtp *s, struct out *o, const struct envelope *env,
    struct error *err)
{
	char size[32] = "";

	if (s->caps.flags & CAP_SIZE)
		(void)snprintf(size, sizeof(size), " SIZE=%lld",
		    (long long)env->size);
	return out_add(s, o, NULL, err, "MAIL FROM:<%s>%s%s%s%s%s%s%s",
	    env->sender, size, env->body_8bit &&
	    (s->caps.flags & CAP_8BITMIME) ? " BODY=8BITMIME" : "",
	    env->smtputf8 ? " SMTPUTF8" : "",
	    dsn_on(s, env->dsn.ret) ? " RET=" : "",
	    dsn_on(s, env->dsn.ret) ? env->dsn.ret : "",
	    dsn_on(s, env->dsn.envid) ? " ENVID=" : "",
	    dsn_on(s, env->dsn.envid) ? env->dsn.envid : "");
}

/* RCPT TO with NOTIFY= when asked for and the hub offers DSN. */
static int
add_rcpt(struct smtp *s, struct out *o, const struct envelope *env,
    size_t i, struct error *err)
{
	return out_add(s, o, NULL, err, "RCPT TO:<%s>%s%s", env->rcpt[i].addr,
	    dsn_on(s, env->dsn.notify) ? " NOTIFY=" : "",
	    dsn_on(s, env->dsn.notify) ? env->dsn.notify : "");
}

static enum status
class_of(int code)
{
	return code / 100 == 2 ? ST_OK : code / 100 == 5 ? ST_PERM : ST_TEMP;
}

static int
read_rcpt(struct smtp *s, struct smtp_rcpt *r, struct smtp_result *res,
    struct error *err)
{
	int rc;

	if ((rc = reply(s, "reply to RCPT TO", &res->code, res->reply,
	    sizeof(res->reply), err)) != ST_OK)
		return rc;
	r->code = res->code;
	r->status = class_of(res->code);
	if (r->status == ST_OK)
		res->accepted++;
	else if ((r->reply = strdup(res->reply)) == NULL) {
		s->broken = 1;
		return error_set(err, ST_OSERR, "out of memory");
	}
	return ST_OK;
}

/*
 * The reply to a RSET sent ahead of MAIL: not 2xx, or none, and the
 * session is unusable; nothing after it was taken (the hub refuses MAIL
 * while out of step, or has gone), so a new session may try the same
 * transaction (res->stale).
 */
static int
read_rset(struct smtp *s, struct smtp_result *res, struct error *err)
{
	char text[REPLY_TEXT_MAX];
	int code, rc;

	rc = reply(s, "reply to RSET", &code, text, sizeof(text), err);
	if (rc == ST_OK && code / 100 != 2)
		rc = error_set(err, ST_TEMP, "hub refused RSET: %s", text);
	if (rc != ST_OK) {
		s->broken = 1;
		res->stale = 1;
		res->stage = STAGE_CONNECT;
	}
	return rc;
}

/*
 * MAIL, every RCPT and DATA, in groups of one write each (RFC 2920); a
 * RSET due goes first, in the same write.
 */
static int
envelope_pipelined(struct smtp *s, struct envelope *env,
    struct smtp_result *res, struct txn *t, struct error *err)
{
	struct out o;
	size_t i, first, end;
	int rc = ST_OK, rset = s->rset_due;

	o.cap = (RCPT_BATCH + 2) * (ADDR_MAX + 64);
	o.len = 0;
	if ((o.buf = malloc(o.cap)) == NULL)
		return error_set(err, ST_OSERR, "out of memory");
	for (first = 0; first < env->nrcpt && rc == ST_OK; first = end) {
		end = env->nrcpt - first > RCPT_BATCH ? first + RCPT_BATCH :
		    env->nrcpt;
		if (first == 0 && rset)
			rc = out_add(s, &o, NULL, err, "RSET");
		if (first == 0 && rc == ST_OK)
			rc = add_mail(s, &o, env, err);
		for (i = first; i < end && rc == ST_OK; i++)
			rc = add_rcpt(s, &o, env, i, err);
		if (rc == ST_OK && end == env->nrcpt)
			rc = out_add(s, &o, NULL, err, "DATA");
		conn_step(s->conn);
		if (rc != ST_OK || (rc = out_flush(s, &o, "sending MAIL, "
		    "RCPT and DATA", err)) != ST_OK)
			break;
		s->rset_due = 0;
		if (first == 0 && rset && (rc = read_rset(s, res, err)) !=
		    ST_OK)
			break;
		if (first == 0 && (rc = reply(s, "reply to MAIL FROM",
		    &t->mail_code, t->mail_reply, sizeof(t->mail_reply),
		    err)) != ST_OK)
			break;
		for (i = first; i < end && rc == ST_OK; i++)
			rc = read_rcpt(s, &env->rcpt[i], res, err);
		if (rc == ST_OK && end == env->nrcpt)
			rc = reply(s, "reply to DATA", &t->data_code,
			    t->data_reply, sizeof(t->data_reply), err);
		/* A refused sender: the rest of the group would be wasted. */
		if (t->mail_code / 100 != 2)
			break;
	}
	free(o.buf);
	return rc;
}

/* The same, one command and one reply at a time. */
static int
envelope_serial(struct smtp *s, struct envelope *env,
    struct smtp_result *res, struct txn *t, struct error *err)
{
	char buf[CMD_MAX];
	struct out o = { buf, 0, sizeof(buf) };
	size_t i;
	int rc;

	conn_step(s->conn);
	if ((rc = add_mail(s, &o, env, err)) != ST_OK ||
	    (rc = out_flush(s, &o, "sending MAIL FROM", err)) != ST_OK ||
	    (rc = reply(s, "reply to MAIL FROM", &t->mail_code,
	    t->mail_reply, sizeof(t->mail_reply), err)) != ST_OK)
		return rc;
	if (t->mail_code / 100 != 2)
		return ST_OK;
	for (i = 0; i < env->nrcpt; i++) {
		if ((rc = send_cmd(s, NULL, err, "RCPT TO:<%s>%s%s",
		    env->rcpt[i].addr, dsn_on(s, env->dsn.notify) ?
		    " NOTIFY=" : "", dsn_on(s, env->dsn.notify) ?
		    env->dsn.notify : "")) != ST_OK ||
		    (rc = read_rcpt(s, &env->rcpt[i], res, err)) != ST_OK)
			return rc;
	}
	if (res->accepted == 0)
		return ST_OK;
	if ((rc = send_cmd(s, NULL, err, "DATA")) != ST_OK)
		return rc;
	return reply(s, "reply to DATA", &t->data_code, t->data_reply,
	    sizeof(t->data_reply), err);
}

/* DATA said 354 but there is nothing to send: an empty message, dropped. */
static void
abort_data(struct smtp *s)
{
	char text[REPLY_TEXT_MAX];
	struct error e;
	int code;

	if (send_cmd(s, NULL, &e, ".") != ST_OK ||
	    reply(s, "reply to the final dot", &code, text, sizeof(text),
	    &e) != ST_OK)
		s->broken = 1;
}

/* How MAIL, RCPT and DATA went, as a status and a place. */
static int
judge_envelope(struct envelope *env, struct smtp_result *res,
    const struct txn *t, struct error *err)
{
	enum status st;
	size_t i;

	if (t->mail_code / 100 != 2) {
		res->stage = STAGE_MAIL;
		res->code = t->mail_code;
		(void)strlcpy(res->reply, t->mail_reply, sizeof(res->reply));
		st = class_of(t->mail_code);
		for (i = 0; i < env->nrcpt; i++) {
			env->rcpt[i].code = 0;
			env->rcpt[i].status = st;
		}
		res->accepted = 0;
		return error_set(err, st, "hub refused the sender <%s>: %s",
		    env->sender, t->mail_reply);
	}
	if (res->accepted == 0) {
		res->stage = STAGE_RCPT;
		st = ST_PERM;
		for (i = 0; i < env->nrcpt; i++)
			if (env->rcpt[i].status == ST_TEMP)
				st = ST_TEMP;
		for (i = 0; i < env->nrcpt; i++)
			if (env->rcpt[i].status == st) {
				res->code = env->rcpt[i].code;
				(void)strlcpy(res->reply, env->rcpt[i].reply !=
				    NULL ? env->rcpt[i].reply : "",
				    sizeof(res->reply));
			}
		return error_set(err, st, "hub refused every recipient: %s",
		    res->reply);
	}
	res->stage = STAGE_DATA;
	res->code = t->data_code;
	(void)strlcpy(res->reply, t->data_reply, sizeof(res->reply));
	if (t->data_code == 354)
		return ST_OK;
	return error_set(err, t->data_code / 100 == 5 ? ST_PERM : ST_TEMP,
	    "hub refused DATA: %s", t->data_reply);
}

/* Stream the spool, dot-stuffed, in large writes; progress renews time. */
static int
send_body(struct smtp *s, const struct envelope *env, struct error *err)
{
	struct lineconv lc;
	char *in, *out, info[64];
	size_t ocap = 3 * BODY_CHUNK + 8, olen;
	off_t off = 0;
	ssize_t n;
	int rc = ST_OK;

	in = malloc(BODY_CHUNK);
	out = malloc(ocap);
	if (in == NULL || out == NULL) {
		free(in);
		free(out);
		s->broken = 1;
		return error_set(err, ST_OSERR, "out of memory");
	}
	lineconv_init(&lc, 1, 0);
	for (;;) {
		n = pread(env->spool_fd, in, BODY_CHUNK, off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			rc = error_set(err, ST_IOERR, "reading the spooled "
			    "message: %s", strerror(errno));
			break;
		}
		olen = n > 0 ? lineconv_feed(&lc, in, (size_t)n, out, ocap) :
		    lineconv_finish(&lc, out, ocap);
		off += n;
		conn_step(s->conn);
		if (olen > 0 && (rc = conn_write(s->conn, out, olen, err)) !=
		    ST_OK) {
			error_prefix(err, "sending the message");
			break;
		}
		if (n == 0)
			break;
	}
	free(in);
	free(out);
	if (rc != ST_OK) {
		/* Mid-DATA: nothing more may be sent, not even QUIT. */
		s->broken = 1;
		return rc;
	}
	(void)snprintf(info, sizeof(info), "(message: %lld octets)",
	    (long long)off);
	trace_info(s, info);
	return ST_OK;
}

static int
final_dot(struct smtp *s, struct smtp_result *res, struct error *err)
{
	int rc;

	/* From here, code 0 with dot_sent says: the reply was lost. */
	res->stage = STAGE_DOT;
	if (conn_pending(s->conn) > 0) {
		s->broken = 1;
		return error_set(err, ST_TEMP, "hub sent data nobody asked "
		    "for during DATA: refused");
	}
	res->code = 0;
	res->reply[0] = '\0';
	res->dot_sent = 1;
	if ((rc = send_cmd(s, NULL, err, ".")) != ST_OK ||
	    (rc = reply(s, "reply to the final dot", &res->code, res->reply,
	    sizeof(res->reply), err)) != ST_OK)
		return rc;
	if (res->code / 100 == 2) {
		smtp_parse_qid(res->reply, res->hub_qid, sizeof(res->hub_qid));
		res->stage = STAGE_DONE;
		return ST_OK;
	}
	return error_set(err, res->code / 100 == 5 ? ST_PERM : ST_TEMP,
	    "hub refused the message: %s", res->reply);
}

int
smtp_send(struct smtp *s, struct envelope *env, struct smtp_result *res,
    struct error *err)
{
	struct txn t;
	int rc;

	res->stage = STAGE_MAIL;
	res->code = 0;
	res->reply[0] = '\0';
	res->accepted = 0;
	res->dot_sent = 0;
	res->hub_qid[0] = '\0';
	res->stale = 0;
	memset(&t, 0, sizeof(t));
	if (s->broken)
		return error_set(err, ST_TEMP, "the connection to the hub is "
		    "out of step");
	if ((rc = check_envelope(env, err)) != ST_OK ||
	    (rc = check_limits(s, env, res, err)) != ST_OK)
		return rc;
	if (s->caps.flags & CAP_PIPELINING)
		rc = envelope_pipelined(s, env, res, &t, err);
	else
		rc = envelope_serial(s, env, res, &t, err);
	if (rc != ST_OK)
		return rc;
	if ((rc = judge_envelope(env, res, &t, err)) != ST_OK) {
		/* A pipelined DATA may have been accepted even so. */
		if (t.data_code == 354)
			abort_data(s);
		return rc;
	}
	if ((rc = send_body(s, env, err)) != ST_OK)
		return rc;
	if (env->before_dot != NULL)
		env->before_dot(env->before_dot_arg);
	return final_dot(s, res, err);
}

void
smtp_envelope_clear(struct envelope *env)
{
	size_t i;

	for (i = 0; i < env->nrcpt; i++) {
		free(env->rcpt[i].reply);
		env->rcpt[i].reply = NULL;
	}
}

int
smtp_reset(struct smtp *s, struct error *err)
{
	char text[REPLY_TEXT_MAX];
	int code, rc;

	if (s->broken)
		return error_set(err, ST_TEMP, "the connection to the hub is "
		    "out of step");
	if (s->caps.flags & CAP_PIPELINING) {
		s->rset_due = 1;	/* sent with the next MAIL */
		return ST_OK;
	}
	if ((rc = send_cmd(s, NULL, err, "RSET")) != ST_OK ||
	    (rc = reply(s, "reply to RSET", &code, text, sizeof(text),
	    err)) != ST_OK)
		return rc;
	if (code / 100 != 2)
		return error_set(err, ST_TEMP, "hub refused RSET: %s", text);
	return ST_OK;
}

void
smtp_close(struct smtp *s)
{
	char text[REPLY_TEXT_MAX];
	struct error e;
	int code;

	if (s == NULL)
		return;
	if (!s->broken) {
		conn_cap_timeout(s->conn, QUIT_MS);
		if (send_cmd(s, NULL, &e, "QUIT") == ST_OK)
			(void)reply(s, "reply to QUIT", &code, text,
			    sizeof(text), &e);
	}
	conn_free(s->conn);
	freezero(s, sizeof(*s));
}

/* --------------------------------------------------------- queue id */

static int
qid_char(int ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
	    ch == '@' || ch == '+' || ch == '/' || ch == '=';
}

static void
qid_copy(const char *p, char *qid, size_t len)
{
	size_t n = 0;

	if (*p == '<')
		p++;
	while (qid_char((unsigned char)p[n]))
		n++;
	while (n > 0 && p[n - 1] == '.')	/* "queued as X." */
		n--;
	if (n >= len)
		n = len - 1;
	memcpy(qid, p, n);
	qid[n] = '\0';
}

void
smtp_parse_qid(const char *reply, char *qid, size_t len)
{
	const char *p;

	if (len == 0)
		return;
	qid[0] = '\0';
	/* Postfix "250 2.0.0 Ok: queued as 4Xyz1", and others alike. */
	if ((p = strcasestr(reply, "queued as ")) != NULL) {
		qid_copy(p + strlen("queued as "), qid, len);
		return;
	}
	/* Exim "250 OK id=1abc23-000456-Xy". */
	for (p = reply; (p = strcasestr(p, "id=")) != NULL; p += 3)
		if (p == reply || p[-1] == ' ') {
			qid_copy(p + 3, qid, len);
			return;
		}
}
