/*
 * test_smtp.c: the SMTP client (smtp.c) against scripted hubs behind
 * stub connections (stubconn.h): the hub's replies, the client's lines
 * checked one by one, single writes (pipelining), short reads and
 * writes, EOF, resets and deadlines, TLS started or refused by the back
 * end. No socket, no fork: TLS itself is tested in test_tls.c.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"
#include "stubconn.h"

/* --------------------------------------------------------- fixture */

struct fx {
	struct config		 cfg;
	struct smtp_params	 params;
	struct smtp_result	 res;
	struct error		 err;
	struct envelope		 env;
	struct smtp_rcpt	 rcpt[4];
	struct stubconn		*st;
	struct conn		*conn;	/* the stub's, until smtp_open */
	const char		*host;	/* the conn's host name */
	int			 timeout;	/* per step, seconds */
	struct smtp		*s;
	char			 tr[32768];
};

static void
transcript(void *arg, enum transcript_dir dir, const char *line, size_t len)
{
	struct fx *f = arg;
	char tmp[2048];

	(void)snprintf(tmp, sizeof(tmp), "%s%.*s\n", dir == TR_SENT ? "> " :
	    dir == TR_RECEIVED ? "< " : "* ", (int)len, line);
	(void)strlcat(f->tr, tmp, sizeof(f->tr));
}

static int
spool(const char *wire)
{
	char path[] = "/tmp/postino-test-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd != -1);
	(void)unlink(path);
	assert_int_equal(write(fd, wire, strlen(wire)), (ssize_t)strlen(wire));
	return fd;
}

static struct fx *
fx_new(const char *const *rcpts, const char *body)
{
	struct fx *f = calloc(1, sizeof(*f));
	size_t i;

	assert_non_null(f);
	f->cfg.tls_verify = 1;
	f->cfg.timeout = 5;
	f->timeout = 5;
	f->host = "127.0.0.1";
	f->params.cfg = &f->cfg;
	f->params.helo = "client.test";
	f->params.transcript = transcript;
	f->params.transcript_arg = f;
	(void)strlcpy(f->env.sender, "a@x.test", sizeof(f->env.sender));
	for (i = 0; rcpts != NULL && rcpts[i] != NULL && i < 4; i++)
		f->rcpt[i].addr = rcpts[i];
	f->env.rcpt = f->rcpt;
	f->env.nrcpt = i;
	f->env.spool_fd = spool(body != NULL ? body : "");
	f->env.size = (off_t)strlen(body != NULL ? body : "");
	error_clear(&f->err);
	return f;
}

static void
fx_hub(struct fx *f, const struct stub_step *script)
{
	f->st = stubconn_new(script, f->host, f->timeout, &f->conn);
}

/* smtp_open over the stub; the session owns the conn from here on. */
static int
fx_open(struct fx *f)
{
	int rc;

	rc = smtp_open(&f->s, f->conn, &f->params, &f->res, &f->err);
	f->conn = NULL;
	return rc;
}

/* Close the session and return the stub's verdict (0: script followed). */
static int
fx_end(struct fx *f)
{
	int v;

	smtp_close(f->s);
	f->s = NULL;
	conn_free(f->conn);	/* when never handed to smtp_open */
	f->conn = NULL;
	v = stubconn_end(f->st);
	f->st = NULL;
	smtp_envelope_clear(&f->env);
	if (v != 0)
		fprintf(stderr, "transcript:\n%s", f->tr);
	(void)close(f->env.spool_fd);
	return v;
}

static const char *const two[] = { "b@y.test", "c@z.test", NULL };
static const char *const one[] = { "b@y.test", NULL };

#define GREET		"220 hub.test ESMTP\r\n"
#define EHLO_PIPE	"250-hub.test\r\n250-PIPELINING\r\n" \
			"250-SIZE 1000000\r\n250-8BITMIME\r\n250-DSN\r\n" \
			"250 ENHANCEDSTATUSCODES\r\n"
#define EHLO_BARE	"250-hub.test\r\n250 HELP\r\n"
#define BODY		"Subject: t\r\n\r\nhello\r\n"

static double
elapsed(const struct timespec *t0)
{
	struct timespec t1;

	(void)clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* -------------------------------------------------- reply reader */

/* Feed text to the reader; the hub hangs up after it if eof, else it
 * stays silent. */
static int
feed_reply(const char *text, size_t len, int eof, int *code, char *out,
    size_t outlen, struct error *err)
{
	struct stub_step script[] = { SENDN(text, (int)len), HANG, END };
	struct stubconn *st;
	struct conn *c;
	int rc;

	if (len == 0)
		script[0] = (struct stub_step)HANG;
	if (eof)
		script[len == 0 ? 0 : 1] = (struct stub_step)END;
	st = stubconn_new(script, "hub.test", 2, &c);
	error_clear(err);
	rc = smtp_read_reply(c, code, out, outlen, err);
	conn_free(c);
	assert_int_equal(stubconn_end(st), 0);
	return rc;
}

static void
test_reply_multiline(void **state)
{
	static const char r[] = "250-hub.test\r\n250-PIPELINING\r\n250 8BITMIME"
	    "\r\n";
	char text[REPLY_TEXT_MAX];
	struct error err;
	int code;

	(void)state;
	assert_int_equal(feed_reply(r, sizeof(r) - 1, 0, &code, text,
	    sizeof(text), &err), ST_OK);
	assert_int_equal(code, 250);
	assert_string_equal(text, "250 hub.test / PIPELINING / 8BITMIME");
	/* A bare code, and LF alone as the line end. */
	assert_int_equal(feed_reply("354\n", 4, 0, &code, text, sizeof(text),
	    &err), ST_OK);
	assert_int_equal(code, 354);
	assert_string_equal(text, "354");
}

static void
test_reply_mismatch(void **state)
{
	static const char r[] = "250-one\r\n251 two\r\n";
	char text[REPLY_TEXT_MAX];
	struct error err;
	int code;

	(void)state;
	assert_int_equal(feed_reply(r, sizeof(r) - 1, 0, &code, text,
	    sizeof(text), &err), ST_TEMP);
	assert_non_null(strstr(err.text, "malformed reply from hub"));
}

static void
test_reply_invalid(void **state)
{
	static const char *const bad[] = {
		"2x0 hi\r\n", "600 no\r\n", "199 low\r\n", "25\r\n",
		"250x\r\n", "\r\n", "abc\r\n", "250_x\r\n",
	};
	char text[REPLY_TEXT_MAX];
	struct error err;
	size_t i;
	int code;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(feed_reply(bad[i], strlen(bad[i]), 0, &code,
		    text, sizeof(text), &err), ST_TEMP);
		assert_non_null(strstr(err.text, "malformed reply"));
	}
}

static void
test_reply_line_limits(void **state)
{
	char *big, text[REPLY_TEXT_MAX];
	struct error err;
	size_t len, i;
	int code;

	(void)state;
	big = malloc((REPLY_LINES_MAX + 2) * 8);
	assert_non_null(big);
	/* Exactly REPLY_LINES_MAX lines is fine ... */
	for (len = 0, i = 0; i < REPLY_LINES_MAX - 1; i++, len += 7)
		memcpy(big + len, "250-ab\n", 7);
	memcpy(big + len, "250 ab\n", 7);
	assert_int_equal(feed_reply(big, len + 7, 0, &code, text,
	    sizeof(text), &err), ST_OK);
	/* ... one more is not. */
	memcpy(big + len, "250-ab\n250 ab\n", 14);
	assert_int_equal(feed_reply(big, len + 14, 0, &code, text,
	    sizeof(text), &err), ST_TEMP);
	assert_non_null(strstr(err.text, "more than"));
	free(big);

	/* A line of REPLY_LINE_MAX octets with its CRLF fits; one more no. */
	big = malloc(REPLY_LINE_MAX + 8);
	assert_non_null(big);
	memset(big, 'x', REPLY_LINE_MAX + 8);
	memcpy(big, "250 ", 4);
	memcpy(big + REPLY_LINE_MAX - 2, "\r\n", 2);
	assert_int_equal(feed_reply(big, REPLY_LINE_MAX, 0, &code, text,
	    sizeof(text), &err), ST_OK);
	assert_int_equal(strlen(text), REPLY_LINE_MAX - 2);
	memset(big, 'x', REPLY_LINE_MAX + 8);
	memcpy(big, "250 ", 4);
	memcpy(big + REPLY_LINE_MAX - 1, "\r\n", 2);
	assert_int_equal(feed_reply(big, REPLY_LINE_MAX + 1, 0, &code, text,
	    sizeof(text), &err), ST_TEMP);
	assert_non_null(strstr(err.text, "too long"));
	free(big);
}

static void
test_reply_eof(void **state)
{
	static const char r[] = "250-one\r\n250 tw";
	char text[REPLY_TEXT_MAX];
	struct error err;
	int code;

	(void)state;
	assert_int_equal(feed_reply(r, sizeof(r) - 1, 1, &code, text,
	    sizeof(text), &err), ST_TEMP);
	assert_non_null(strstr(err.text, "connection closed by hub"));
	assert_int_equal(feed_reply("", 0, 1, &code, text, sizeof(text),
	    &err), ST_TEMP);
}

static void
test_reply_sanitised(void **state)
{
	static const char r[] = "550 bad\x1b[31m \xc3\xa9 x\r\n";
	char text[REPLY_TEXT_MAX];
	struct error err;
	int code;

	(void)state;
	assert_int_equal(feed_reply(r, sizeof(r) - 1, 0, &code, text,
	    sizeof(text), &err), ST_OK);
	assert_int_equal(code, 550);
	assert_string_equal(text, "550 bad?[31m ?? x");
}

static void
test_parse_qid(void **state)
{
	char q[64];

	(void)state;
	smtp_parse_qid("250 2.0.0 Ok: queued as 4Xyz1", q, sizeof(q));
	assert_string_equal(q, "4Xyz1");
	smtp_parse_qid("250 Message queued as <AB12-x.y@hub>", q, sizeof(q));
	assert_string_equal(q, "AB12-x.y@hub");
	smtp_parse_qid("250 2.0.0 queued as 9F8E7D6C5B.", q, sizeof(q));
	assert_string_equal(q, "9F8E7D6C5B");
	smtp_parse_qid("250 OK id=1abc23-000456-Xy", q, sizeof(q));
	assert_string_equal(q, "1abc23-000456-Xy");
	smtp_parse_qid("250 2.0.0 Ok: Message accepted", q, sizeof(q));
	assert_string_equal(q, "");
	smtp_parse_qid("250 ok uuid=abc", q, sizeof(q));
	assert_string_equal(q, "");
	smtp_parse_qid("250 Ok: queued as 0123456789ABCDEF", q, 8);
	assert_string_equal(q, "0123456");
}

/* ------------------------------------------------------ sessions */

static void
test_greeting_junk(void **state)
{
	static const struct stub_step s1[] = {
		SEND("junk from a confused hub\r\n220 hub.test\r\n"), HANG, END
	};
	static const struct stub_step s2[] = {
		SEND("220 hub.test\r\n250 fake answer to EHLO\r\n"), HANG, END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	fx_hub(f, s1);
	assert_int_equal(fx_open(f), ST_TEMP);
	assert_null(f->s);
	assert_int_equal(f->res.stage, STAGE_GREETING);
	assert_non_null(strstr(f->err.text, "malformed reply from hub"));
	assert_int_equal(fx_end(f), 0);

	f->tr[0] = '\0';
	fx_hub(f, s2);
	assert_int_equal(fx_open(f), ST_TEMP);
	assert_int_equal(f->res.stage, STAGE_GREETING);
	assert_non_null(strstr(f->err.text, "after its greeting"));
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_greeting_refused(void **state)
{
	static const struct stub_step s[] = {
		SEND("554 5.3.2 hub.test no service for you\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	fx_hub(f, s);
	assert_int_equal(fx_open(f), ST_TEMP);
	assert_int_equal(f->res.code, 554);
	assert_non_null(strstr(f->err.text, "no service for you"));
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_pipelined(void **state)
{
	static char group[512];
	static const char body[] = "Subject: t\r\n\r\n.\r\n..x\r\nok\r\n"
	    ".start\r\n\xc3\xa9t\xc3\xa9\r\n";
	static const struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_PIPE),
		WRITE(group),
		SEND("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
		    "354 End data with <CR><LF>.<CR><LF>\r\n"),
		DATA("Subject: t\r\n\r\n..\r\n...x\r\nok\r\n..start\r\n"
		    "\xc3\xa9t\xc3\xa9\r\n.\r\n"),
		SEND("250 2.0.0 Ok: queued as 4Xyz1\r\n"),
		EXPECT("QUIT"), SEND("221 2.0.0 Bye\r\n"), HANG, END
	};
	struct fx *f = fx_new(two, body);

	(void)state;
	f->env.body_8bit = 1;
	(void)snprintf(group, sizeof(group), "MAIL FROM:<a@x.test> SIZE=%zu "
	    "BODY=8BITMIME\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@z.test>\r\n"
	    "DATA\r\n", sizeof(body) - 1);
	fx_hub(f, s);
	assert_int_equal(fx_open(f), ST_OK);
	assert_string_equal(f->res.relay, "127.0.0.1[127.0.0.1]:25");
	assert_string_equal(f->res.tls, "");
	/* WRITE(group): MAIL, both RCPTs and DATA left in one write. */
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_int_equal(f->res.stage, STAGE_DONE);
	assert_int_equal(f->res.code, 250);
	assert_int_equal(f->res.dot_sent, 1);
	assert_int_equal(f->res.accepted, 2);
	assert_string_equal(f->res.hub_qid, "4Xyz1");
	assert_string_equal(f->res.reply, "250 2.0.0 Ok: queued as 4Xyz1");
	assert_int_equal(f->rcpt[0].status, ST_OK);
	assert_int_equal(f->rcpt[1].code, 250);
	assert_int_equal(f->env.smtputf8, 0);
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_serial(void **state)
{
	static const struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_BARE),
		/* No 8BITMIME, no SIZE offered: no BODY=, no SIZE=. */
		WRITE("MAIL FROM:<a@x.test>\r\n"), SEND("250 ok\r\n"),
		WRITE("RCPT TO:<b@y.test>\r\n"), SEND("250 ok\r\n"),
		WRITE("RCPT TO:<c@z.test>\r\n"),
		SEND("550 5.1.1 <c@z.test>: no such user\r\n"),
		WRITE("DATA\r\n"), SEND("354 go\r\n"),
		DATA(BODY ".\r\n"), SEND("250 accepted\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct fx *f = fx_new(two, BODY);

	(void)state;
	f->env.body_8bit = 1;
	fx_hub(f, s);
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	/* Partial rejection: recorded per recipient, the rest delivered. */
	assert_int_equal(f->res.accepted, 1);
	assert_int_equal(f->rcpt[0].code, 250);
	assert_int_equal(f->rcpt[0].status, ST_OK);
	assert_int_equal(f->rcpt[1].code, 550);
	assert_int_equal(f->rcpt[1].status, ST_PERM);
	assert_string_equal(f->rcpt[1].reply,
	    "550 5.1.1 <c@z.test>: no such user");
	assert_string_equal(f->res.hub_qid, "");
	assert_int_equal(fx_end(f), 0);
	free(f);
}

/* -N, -R, -V reach the hub only when it offers DSN. */
static void
test_dsn_passed_when_offered(void **state)
{
	static const struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_PIPE),
		WRITE("MAIL FROM:<a@x.test> SIZE=21 RET=HDRS ENVID=QQ+2B1\r\n"
		    "RCPT TO:<b@y.test> NOTIFY=FAILURE,DELAY\r\nDATA\r\n"),
		SEND("250 ok\r\n250 ok\r\n354 go\r\n"),
		DATA(BODY ".\r\n"), SEND("250 accepted\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	(void)strlcpy(f->env.dsn.notify, "FAILURE,DELAY",
	    sizeof(f->env.dsn.notify));
	(void)strlcpy(f->env.dsn.ret, "HDRS", sizeof(f->env.dsn.ret));
	(void)strlcpy(f->env.dsn.envid, "QQ+2B1", sizeof(f->env.dsn.envid));
	fx_hub(f, s);
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_dsn_dropped_when_not_offered(void **state)
{
	static const struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_BARE),
		WRITE("MAIL FROM:<a@x.test>\r\n"), SEND("250 ok\r\n"),
		WRITE("RCPT TO:<b@y.test>\r\n"), SEND("250 ok\r\n"),
		WRITE("DATA\r\n"), SEND("354 go\r\n"),
		DATA(BODY ".\r\n"), SEND("250 accepted\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	(void)strlcpy(f->env.dsn.notify, "NEVER", sizeof(f->env.dsn.notify));
	(void)strlcpy(f->env.dsn.ret, "FULL", sizeof(f->env.dsn.ret));
	fx_hub(f, s);
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_helo_fallback(void **state)
{
	static const struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("502 5.5.2 what is EHLO\r\n"),
		EXPECT("HELO client.test"), SEND("250 hub.test\r\n"),
		WRITE("MAIL FROM:<a@x.test>\r\n"), SEND("250 ok\r\n"),
		WRITE("RCPT TO:<b@y.test>\r\n"), SEND("250 ok\r\n"),
		WRITE("DATA\r\n"), SEND("354 go\r\n"),
		DATA(BODY ".\r\n"), SEND("250 ok id=1abc-2\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	f->env.body_8bit = 1;
	fx_hub(f, s);
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_string_equal(f->res.hub_qid, "1abc-2");
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_all_rejected(void **state)
{
	static const struct stub_step temp[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_PIPE),
		EXPECT("MAIL FROM:<a@x.test> SIZE=21"),
		EXPECT("RCPT TO:<b@y.test>"), EXPECT("RCPT TO:<c@z.test>"),
		EXPECT("DATA"),
		SEND("250 ok\r\n550 5.1.1 unknown\r\n450 4.2.0 greylisted\r\n"
		    "554 5.5.1 Error: no valid recipients\r\n"),
		/* Never the body: the next thing is QUIT. */
		EXPECT("QUIT"), SEND("221 bye\r\n"), HANG, END
	};
	static const struct stub_step perm354[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_PIPE),
		EXPECT("MAIL FROM:<a@x.test> SIZE=21"),
		EXPECT("RCPT TO:<b@y.test>"), EXPECT("RCPT TO:<c@z.test>"),
		EXPECT("DATA"),
		SEND("250 ok\r\n550 5.1.1 unknown\r\n553 5.1.3 bad\r\n"
		    "354 send it anyway\r\n"),
		WRITE(".\r\n"), SEND("554 no recipients\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), HANG, END
	};
	struct fx *f = fx_new(two, BODY);

	(void)state;
	fx_hub(f, temp);
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_TEMP);
	assert_int_equal(f->res.stage, STAGE_RCPT);
	assert_int_equal(f->res.code, 450);
	assert_int_equal(f->res.accepted, 0);
	assert_int_equal(f->res.dot_sent, 0);
	assert_int_equal(f->rcpt[0].status, ST_PERM);
	assert_int_equal(f->rcpt[1].status, ST_TEMP);
	assert_int_equal(fx_end(f), 0);
	free(f);

	f = fx_new(two, BODY);
	fx_hub(f, perm354);
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_PERM);
	assert_int_equal(f->res.stage, STAGE_RCPT);
	assert_int_equal(f->res.dot_sent, 0);
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_mail_refused(void **state)
{
	static const struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_BARE),
		EXPECT("MAIL FROM:<a@x.test>"),
		SEND("553 5.7.1 sender rejected\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	static const struct stub_step t[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_PIPE),
		EXPECT("MAIL FROM:<a@x.test> SIZE=21"),
		EXPECT("RCPT TO:<b@y.test>"), EXPECT("DATA"),
		SEND("451 4.3.0 try later\r\n503 5.5.1 need MAIL\r\n"
		    "503 5.5.1 need RCPT\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	fx_hub(f, s);
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_PERM);
	assert_int_equal(f->res.stage, STAGE_MAIL);
	assert_int_equal(f->res.code, 553);
	assert_int_equal(fx_end(f), 0);
	free(f);

	f = fx_new(one, BODY);
	fx_hub(f, t);
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_TEMP);
	assert_int_equal(f->res.stage, STAGE_MAIL);
	assert_int_equal(f->res.code, 451);
	assert_string_equal(f->res.reply, "451 4.3.0 try later");
	assert_int_equal(f->rcpt[0].status, ST_TEMP);
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_data_and_dot(void **state)
{
	static const struct stub_step data[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_BARE),
		EXPECT("MAIL FROM:<a@x.test>"), SEND("250 ok\r\n"),
		EXPECT("RCPT TO:<b@y.test>"), SEND("250 ok\r\n"),
		EXPECT("DATA"), SEND("554 5.6.0 no thanks\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	static const struct stub_step dot[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_BARE),
		EXPECT("MAIL FROM:<a@x.test>"), SEND("250 ok\r\n"),
		EXPECT("RCPT TO:<b@y.test>"), SEND("250 ok\r\n"),
		EXPECT("DATA"), SEND("354 go\r\n"), DATA(BODY ".\r\n"),
		SEND("451 4.3.0 queue full\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	static const struct stub_step lost[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_BARE),
		EXPECT("MAIL FROM:<a@x.test>"), SEND("250 ok\r\n"),
		EXPECT("RCPT TO:<b@y.test>"), SEND("250 ok\r\n"),
		EXPECT("DATA"), SEND("354 go\r\n"), DATA(BODY ".\r\n"), END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	fx_hub(f, data);
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_PERM);
	assert_int_equal(f->res.stage, STAGE_DATA);
	assert_int_equal(f->res.code, 554);
	assert_int_equal(f->res.dot_sent, 0);
	assert_int_equal(fx_end(f), 0);
	free(f);

	f = fx_new(one, BODY);
	fx_hub(f, dot);
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_TEMP);
	assert_int_equal(f->res.stage, STAGE_DOT);
	assert_int_equal(f->res.code, 451);
	assert_int_equal(f->res.dot_sent, 1);
	assert_int_equal(fx_end(f), 0);
	free(f);

	/* The hub vanishes after the dot: a possible duplicate. */
	f = fx_new(one, BODY);
	fx_hub(f, lost);
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_TEMP);
	assert_int_equal(f->res.stage, STAGE_DOT);
	assert_int_equal(f->res.dot_sent, 1);
	assert_int_equal(f->res.code, 0);
	assert_non_null(strstr(f->err.text, "connection closed by hub"));
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_size_refusal(void **state)
{
	static const struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250-PIPELINING\r\n250 SIZE 10\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	fx_hub(f, s);
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_PERM);
	assert_int_equal(f->res.stage, STAGE_MAIL);
	assert_int_equal(f->res.code, 552);
	assert_non_null(strstr(f->err.text,
	    "message size 21 exceeds the hub's limit of 10"));
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_smtputf8(void **state)
{
	static const char *const u[] = { "j\xc3\xb6rg@y.test", NULL };
	static const struct stub_step no[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_PIPE),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	static const struct stub_step yes[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 SMTPUTF8\r\n"),
		EXPECT("MAIL FROM:<a@x.test> SMTPUTF8"), SEND("250 ok\r\n"),
		EXPECT("RCPT TO:<j\xc3\xb6rg@y.test>"), SEND("250 ok\r\n"),
		EXPECT("DATA"), SEND("354 go\r\n"), DATA(BODY ".\r\n"),
		SEND("250 ok\r\n"), EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct fx *f = fx_new(u, BODY);

	(void)state;
	fx_hub(f, no);
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_PERM);
	assert_int_equal(f->res.code, 553);
	assert_non_null(strstr(f->err.text, "SMTPUTF8"));
	assert_int_equal(fx_end(f), 0);
	free(f);

	f = fx_new(u, BODY);
	fx_hub(f, yes);
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_int_equal(f->env.smtputf8, 1);
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_reset_and_second(void **state)
{
	static const struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_BARE),
		EXPECT("MAIL FROM:<a@x.test>"), SEND("250 ok\r\n"),
		EXPECT("RCPT TO:<b@y.test>"), SEND("250 ok\r\n"),
		EXPECT("DATA"), SEND("354 go\r\n"), DATA(BODY ".\r\n"),
		SEND("250 queued as ONE\r\n"),
		EXPECT("RSET"), SEND("250 ok\r\n"),
		EXPECT("MAIL FROM:<a@x.test>"), SEND("250 ok\r\n"),
		EXPECT("RCPT TO:<b@y.test>"), SEND("250 ok\r\n"),
		EXPECT("DATA"), SEND("354 go\r\n"), DATA(BODY ".\r\n"),
		SEND("250 queued as TWO\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	fx_hub(f, s);
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_string_equal(f->res.hub_qid, "ONE");
	assert_int_equal(smtp_reset(f->s, &f->err), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_string_equal(f->res.hub_qid, "TWO");
	assert_int_equal(fx_end(f), 0);
	free(f);
}

/*
 * RFC 2920: with PIPELINING, the RSET between two transactions goes out
 * in the same write as the next MAIL, RCPT and DATA (WRITE: one write,
 * and a read before it would fail the script), replies read in order.
 */
#define EHLO_PIPE_ONLY	"250-hub.test\r\n250 PIPELINING\r\n"
#define FIRST_TXN \
	WRITE("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"), \
	SEND("250 ok\r\n250 ok\r\n354 go\r\n"), DATA(BODY ".\r\n"), \
	SEND("250 queued as ONE\r\n")

static void
test_reset_pipelined(void **state)
{
	static const struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_PIPE_ONLY),
		FIRST_TXN,
		WRITE("RSET\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
		    "DATA\r\n"),
		SEND("250 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
		DATA(BODY ".\r\n"), SEND("250 queued as TWO\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	fx_hub(f, s);
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_int_equal(smtp_reset(f->s, &f->err), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_string_equal(f->res.hub_qid, "TWO");
	assert_int_equal(f->res.stale, 0);
	assert_int_equal(fx_end(f), 0);
	free(f);
}

/* Without PIPELINING: RSET alone, its reply read before MAIL goes. */
static void
test_reset_serial_writes(void **state)
{
	static const struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_BARE),
		WRITE("MAIL FROM:<a@x.test>\r\n"), SEND("250 ok\r\n"),
		WRITE("RCPT TO:<b@y.test>\r\n"), SEND("250 ok\r\n"),
		WRITE("DATA\r\n"), SEND("354 go\r\n"), DATA(BODY ".\r\n"),
		SEND("250 queued as ONE\r\n"),
		WRITE("RSET\r\n"), SEND("250 reset\r\n"),
		WRITE("MAIL FROM:<a@x.test>\r\n"), SEND("250 ok\r\n"),
		WRITE("RCPT TO:<b@y.test>\r\n"), SEND("250 ok\r\n"),
		WRITE("DATA\r\n"), SEND("354 go\r\n"), DATA(BODY ".\r\n"),
		SEND("250 queued as TWO\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	fx_hub(f, s);
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_int_equal(smtp_reset(f->s, &f->err), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_string_equal(f->res.hub_qid, "TWO");
	assert_int_equal(fx_end(f), 0);
	free(f);
}

/* A pipelined RSET refused (the hub is closing): stale, nothing taken. */
static void
test_reset_pipelined_stale(void **state)
{
	static const struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_PIPE_ONLY),
		FIRST_TXN,
		WRITE("RSET\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
		    "DATA\r\n"),
		SEND("421 4.4.2 idle too long, closing\r\n"), END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	fx_hub(f, s);
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_int_equal(smtp_reset(f->s, &f->err), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_TEMP);
	assert_int_equal(f->res.stale, 1);
	assert_int_equal(f->res.dot_sent, 0);
	assert_int_equal(f->res.accepted, 0);
	assert_non_null(strstr(f->err.text, "RSET"));
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_large_body(void **state)
{
	static struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_BARE),
		EXPECT("MAIL FROM:<a@x.test>"), SEND("250 ok\r\n"),
		EXPECT("RCPT TO:<b@y.test>"), SEND("250 ok\r\n"),
		EXPECT("DATA"), SEND("354 go\r\n"), DATA(NULL),
		SEND("250 ok\r\n"), EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	size_t i, n = 6000, o = 0, w = 0;
	char *body, *wire;
	struct fx *f;

	(void)state;
	/* 6000 lines of 40 octets: several 64 KiB chunks, dots across. */
	body = malloc(n * 40 + 1);
	wire = malloc(n * 41 + 8);
	assert_non_null(body);
	assert_non_null(wire);
	for (i = 0; i < n; i++) {
		(void)snprintf(body + o, 41, "%s%036zu\r\n", i % 3 == 0 ?
		    ".." : "ab", i);
		(void)snprintf(wire + w, 42, "%s%036zu\r\n", i % 3 == 0 ?
		    "..." : "ab", i);
		o += 40;
		w += i % 3 == 0 ? 41 : 40;
	}
	memcpy(wire + w, ".\r\n", 4);
	s[9].s = wire;
	f = fx_new(one, body);
	fx_hub(f, s);
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_int_equal(fx_end(f), 0);
	free(f);
	free(body);
	free(wire);
}

/* ----------------------------------------------------- deadlines */

static void
test_deadline_silent(void **state)
{
	static const struct stub_step s[] = { HANG, END };
	struct fx *f = fx_new(one, BODY);
	struct timespec t0;
	double t;

	(void)state;
	f->timeout = 1;	/* the connection's step timeout */
	fx_hub(f, s);
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(fx_open(f), ST_TEMP);
	t = elapsed(&t0);
	assert_true(t >= 0.9 && t < 2.0);
	assert_int_equal(f->res.stage, STAGE_GREETING);
	assert_non_null(strstr(f->err.text, "timed out"));
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_deadline_trickle(void **state)
{
	static const struct stub_step s[] = {
		TRICKLE("220 hub.test a very slow greeting indeed\r\n", 200),
		END
	};
	struct fx *f = fx_new(one, BODY);
	struct timespec t0;
	double t;

	(void)state;
	f->timeout = 1;	/* the connection's step timeout */
	fx_hub(f, s);
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(fx_open(f), ST_TEMP);
	t = elapsed(&t0);
	assert_true(t >= 0.9 && t < 2.0);
	assert_non_null(strstr(f->err.text, "timed out"));
	assert_int_equal(fx_end(f), 0);
	free(f);
}

/* -------------------------------------------------- STARTTLS, AUTH */

static void
test_auth_plaintext_refused(void **state)
{
	static const struct stub_step s[] = { HANG, END };
	struct fx *f = fx_new(one, BODY);

	(void)state;
	(void)strlcpy(f->cfg.auth_user, "user", sizeof(f->cfg.auth_user));
	(void)strlcpy(f->cfg.auth_pass, "pass", sizeof(f->cfg.auth_pass));
	/* Refused before anything is connected: the caller asks first. */
	f->res.stage = STAGE_DONE;
	(void)strlcpy(f->res.relay, "stale", sizeof(f->res.relay));
	assert_int_equal(smtp_precheck(&f->params, &f->res, &f->err),
	    ST_CONFIG);
	assert_int_equal(f->res.stage, STAGE_CONNECT);
	assert_string_equal(f->res.relay, "");
	assert_non_null(strstr(f->err.text, "AuthAllowPlaintext=YES"));
	assert_int_equal(f->err.hint, HINT_TLS_POLICY);

	/* Handed a connection anyway: not a byte to the hub, and closed. */
	error_clear(&f->err);
	fx_hub(f, s);
	assert_int_equal(fx_open(f), ST_CONFIG);
	assert_null(f->s);
	assert_int_equal(f->res.stage, STAGE_CONNECT);
	assert_non_null(strstr(f->err.text, "AuthAllowPlaintext=YES"));
	assert_int_equal(f->err.hint, HINT_TLS_POLICY);
	assert_int_equal(f->st->writes, 0);
	assert_int_equal(f->st->closed, 1);
	assert_string_equal(f->tr, "");
	assert_int_equal(fx_end(f), 0);
	free(f);

	/* With AuthAllowPlaintext=YES, or TLS, the precheck passes. */
	f = fx_new(one, BODY);
	(void)strlcpy(f->cfg.auth_user, "user", sizeof(f->cfg.auth_user));
	f->cfg.auth_allow_plaintext = 1;
	assert_int_equal(smtp_precheck(&f->params, &f->res, &f->err), ST_OK);
	f->cfg.auth_allow_plaintext = 0;
	f->cfg.tls = TLS_STARTTLS;
	assert_int_equal(smtp_precheck(&f->params, &f->res, &f->err), ST_OK);
	(void)close(f->env.spool_fd);
	free(f);
}

static void
test_starttls_not_offered(void **state)
{
	static const struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250-AUTH PLAIN LOGIN\r\n"
		    "250 PIPELINING\r\n"),
		/* Neither AUTH nor MAIL: straight to QUIT. */
		EXPECT("QUIT"), SEND("221 bye\r\n"), HANG, END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	f->cfg.tls = TLS_STARTTLS;
	(void)strlcpy(f->cfg.auth_user, "user", sizeof(f->cfg.auth_user));
	(void)strlcpy(f->cfg.auth_pass, "pass", sizeof(f->cfg.auth_pass));
	fx_hub(f, s);
	assert_int_equal(fx_open(f), ST_TEMP);
	assert_int_equal(f->err.hint, HINT_TLS_POLICY);
	assert_int_equal(f->res.stage, STAGE_STARTTLS);
	assert_string_equal(f->err.text, "hub does not offer STARTTLS "
	    "(UseSTARTTLS=YES): message not sent");
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_starttls_injection(void **state)
{
	static const struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 STARTTLS\r\n"), EXPECT("STARTTLS"),
		SEND("220 go ahead\r\n250 injected\r\n"), HANG, END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	f->cfg.tls = TLS_STARTTLS;
	fx_hub(f, s);
	assert_int_equal(fx_open(f), ST_TEMP);
	assert_int_equal(f->err.hint, HINT_TLS_POLICY);
	assert_non_null(strstr(f->err.text, "hub sent data after 220 to "
	    "STARTTLS: refused (possible command injection)"));
	assert_int_equal(fx_end(f), 0);
	free(f);
}

/* An AUTH exchange over plaintext (AuthAllowPlaintext=YES). */
static void
auth_case(const struct stub_step *s, enum auth_method m, int old, int want,
    enum admin_hint hint, const char *user, const char *pass)
{
	struct fx *f = fx_new(one, BODY);

	f->cfg.auth_allow_plaintext = 1;
	f->cfg.auth_method = m;
	f->cfg.use_old_auth = old;
	(void)strlcpy(f->cfg.auth_user, user, sizeof(f->cfg.auth_user));
	(void)strlcpy(f->cfg.auth_pass, pass, sizeof(f->cfg.auth_pass));
	fx_hub(f, s);
	assert_int_equal(fx_open(f),
	    want);
	if (want != ST_OK) {
		assert_int_equal(f->err.hint, hint);
		assert_int_equal(f->res.stage, STAGE_AUTH);
	}
	assert_int_equal(fx_end(f), 0);
	/* The password and its base64 never reach the transcript. */
	assert_null(strstr(f->tr, pass));
	assert_null(strstr(f->tr, "AHVzZXIAcGFzcw"));
	assert_null(strstr(f->tr, "cGFzcw"));
	assert_null(strstr(f->tr, "dGltIGI5MTNh"));
	if (want == ST_OK)
		assert_non_null(strstr(f->tr, "<redacted>"));
	free(f);
}

static void
test_auth_plain(void **state)
{
	static const struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250-AUTH LOGIN PLAIN\r\n"
		    "250 8BITMIME\r\n"),
		EXPECT("AUTH PLAIN AHVzZXIAcGFzcw=="),
		SEND("235 2.7.0 Authentication successful\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};

	(void)state;
	auth_case(s, AUTH_BEST, 0, ST_OK, HINT_NONE, "user", "pass");
	auth_case(s, AUTH_PLAIN, 0, ST_OK, HINT_NONE, "user", "pass");
}

static void
test_auth_plain_transcript(void **state)
{
	static const struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 AUTH PLAIN\r\n"),
		EXPECT("AUTH PLAIN AHVzZXIAcGFzcw=="), SEND("235 ok\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	f->cfg.auth_allow_plaintext = 1;
	(void)strlcpy(f->cfg.auth_user, "user", sizeof(f->cfg.auth_user));
	(void)strlcpy(f->cfg.auth_pass, "pass", sizeof(f->cfg.auth_pass));
	fx_hub(f, s);
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(fx_end(f), 0);
	assert_non_null(strstr(f->tr, "> EHLO client.test\n"));
	assert_non_null(strstr(f->tr, "> AUTH PLAIN <redacted>\n"));
	assert_non_null(strstr(f->tr, "< 235 ok\n"));
	assert_null(strstr(f->tr, "AHVzZXIAcGFzcw"));
	free(f);
}

static void
test_auth_login(void **state)
{
	static const struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 AUTH=LOGIN\r\n"),
		EXPECT("AUTH LOGIN"), SEND("334 VXNlcm5hbWU6\r\n"),
		EXPECT("dXNlcg=="), SEND("334 UGFzc3dvcmQ6\r\n"),
		EXPECT("cGFzcw=="), SEND("235 ok\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	static const struct stub_step old[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 AUTH LOGIN\r\n"),
		EXPECT("AUTH LOGIN dXNlcg=="), SEND("334 UGFzc3dvcmQ6\r\n"),
		EXPECT("cGFzcw=="), SEND("235 ok\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};

	(void)state;
	/* The old "AUTH=" form, and LOGIN as the only choice. */
	auth_case(s, AUTH_BEST, 0, ST_OK, HINT_NONE, "user", "pass");
	auth_case(old, AUTH_LOGIN, 1, ST_OK, HINT_NONE, "user", "pass");
}

static void
test_auth_cram_md5(void **state)
{
	/* RFC 2195 section 2. */
	static const struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 AUTH LOGIN PLAIN CRAM-MD5\r\n"),
		EXPECT("AUTH CRAM-MD5"),
		SEND("334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5u"
		    "ZXQ+\r\n"),
		EXPECT("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"),
		SEND("235 ok\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};

	(void)state;
	auth_case(s, AUTH_BEST, 0, ST_OK, HINT_NONE, "tim",
	    "tanstaaftanstaaf");
	auth_case(s, AUTH_CRAM_MD5, 0, ST_OK, HINT_NONE, "tim",
	    "tanstaaftanstaaf");
}

static void
test_auth_failures(void **state)
{
	static const struct stub_step refused[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 AUTH PLAIN\r\n"),
		EXPECT("AUTH PLAIN AHVzZXIAcGFzcw=="),
		SEND("535 5.7.8 Error: authentication failed\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	static const struct stub_step busy[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 AUTH PLAIN\r\n"),
		EXPECT("AUTH PLAIN AHVzZXIAcGFzcw=="),
		SEND("454 4.7.0 Temporary authentication failure\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	static const struct stub_step missing[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 AUTH LOGIN\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	static const struct stub_step none[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 8BITMIME\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};

	(void)state;
	auth_case(refused, AUTH_BEST, 0, ST_TEMP, HINT_AUTH, "user", "pass");
	auth_case(busy, AUTH_BEST, 0, ST_TEMP, HINT_NONE, "user", "pass");
	auth_case(missing, AUTH_PLAIN, 0, ST_TEMP, HINT_AUTH, "user", "pass");
	auth_case(none, AUTH_BEST, 0, ST_TEMP, HINT_AUTH, "user", "pass");
}

static void
test_auth_failure_texts(void **state)
{
	static const struct stub_step missing[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 AUTH LOGIN\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	static const struct stub_step none[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250 hub.test\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	f->cfg.auth_allow_plaintext = 1;
	f->cfg.auth_method = AUTH_PLAIN;
	(void)strlcpy(f->cfg.auth_user, "user", sizeof(f->cfg.auth_user));
	fx_hub(f, missing);
	assert_int_equal(fx_open(f), ST_TEMP);
	assert_string_equal(f->err.text, "hub does not offer AUTH PLAIN");
	assert_int_equal(fx_end(f), 0);
	free(f);

	f = fx_new(one, BODY);
	f->cfg.auth_allow_plaintext = 1;
	(void)strlcpy(f->cfg.auth_user, "user", sizeof(f->cfg.auth_user));
	fx_hub(f, none);
	assert_int_equal(fx_open(f), ST_TEMP);
	assert_string_equal(f->err.text,
	    "hub offers no AUTH; check UseSTARTTLS");
	assert_int_equal(fx_end(f), 0);
	free(f);
}

/* ------------------------------------------------------------ TLS */

/* The TLS files and policy smtp.c passes to conn_start_tls. */
static void
tls_cfg(struct fx *f)
{
	(void)strlcpy(f->cfg.tls_ca_file, "/nonexistent/ca.pem",
	    sizeof(f->cfg.tls_ca_file));
	f->host = "localhost";
}

static void
test_starttls_session(void **state)
{
	static const struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		/* Before TLS: PIPELINING, no AUTH. */
		SEND("250-hub.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"),
		EXPECT("STARTTLS"), SEND("220 2.0.0 Ready to start TLS\r\n"),
		TLS, EXPECT("EHLO client.test"),
		/* After: AUTH, and no PIPELINING any more. */
		SEND("250-hub.test\r\n250 AUTH PLAIN\r\n"),
		EXPECT("AUTH PLAIN AHVzZXIAcGFzcw=="), SEND("235 ok\r\n"),
		WRITE("MAIL FROM:<a@x.test>\r\n"), SEND("250 ok\r\n"),
		WRITE("RCPT TO:<b@y.test>\r\n"), SEND("250 ok\r\n"),
		WRITE("DATA\r\n"), SEND("354 go\r\n"), DATA(BODY ".\r\n"),
		SEND("250 2.0.0 Ok: queued as TLS1\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct fx *f;

	(void)state;
	f = fx_new(one, BODY);
	tls_cfg(f);
	f->cfg.tls = TLS_STARTTLS;
	(void)strlcpy(f->cfg.auth_user, "user", sizeof(f->cfg.auth_user));
	(void)strlcpy(f->cfg.auth_pass, "pass", sizeof(f->cfg.auth_pass));
	fx_hub(f, s);
	assert_int_equal(fx_open(f), ST_OK);
	/* The name checked is the one the connection was opened to. */
	assert_string_equal(f->st->tls_servername, "localhost");
	assert_string_equal(f->res.tls, "TLSv1.3 TLS_STUB verified");
	assert_non_null(strstr(f->tr, "* TLS: TLSv1.3 TLS_STUB verified\n"));
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_string_equal(f->res.hub_qid, "TLS1");
	assert_int_equal(fx_end(f), 0);
	assert_null(strstr(f->tr, "AHVzZXIAcGFzcw"));
	free(f);
}

/* The back end refuses the STARTTLS handshake: no EHLO, no QUIT. */
static void
test_starttls_refused_by_tls(void **state)
{
	static const struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 STARTTLS\r\n"),
		EXPECT("STARTTLS"), SEND("220 go ahead\r\n"),
		TLS_FAIL("TLS certificate of localhost refused: stub",
		    HINT_TLS_VERIFY), HANG, END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	tls_cfg(f);
	f->cfg.tls = TLS_STARTTLS;
	fx_hub(f, s);
	assert_int_equal(fx_open(f), ST_TEMP);
	assert_int_equal(f->res.stage, STAGE_TLS);
	assert_int_equal(f->err.hint, HINT_TLS_VERIFY);
	assert_string_equal(f->err.text,
	    "TLS certificate of localhost refused: stub");
	assert_string_equal(f->res.tls, "");
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_implicit_tls(void **state)
{
	static const struct stub_step ok[] = {
		TLS, SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250 hub.test\r\n"), EXPECT("QUIT"), SEND("221 bye\r\n"),
		END
	};
	static const struct stub_step bad[] = {
		TLS_FAIL("TLS certificate of localhost refused: unable to get "
		    "local issuer certificate; if this certificate is right, "
		    "set TLS_CA_File to its CA or pin it with "
		    "TLSFingerprint=sha256:00", HINT_TLS_VERIFY), HANG, END
	};
	struct fx *f;

	(void)state;
	f = fx_new(one, BODY);
	tls_cfg(f);
	f->cfg.tls = TLS_IMPLICIT;
	fx_hub(f, ok);
	assert_int_equal(fx_open(f), ST_OK);
	assert_non_null(strstr(f->res.tls, " verified"));
	assert_string_equal(f->st->tls_servername, "localhost");
	assert_int_equal(fx_end(f), 0);
	free(f);

	/* A certificate refused (test_tls.c makes the real text): the
	 * session stops at STAGE_TLS with the hint, and sends nothing. */
	f = fx_new(one, BODY);
	tls_cfg(f);
	f->cfg.tls = TLS_IMPLICIT;
	fx_hub(f, bad);
	assert_int_equal(fx_open(f), ST_TEMP);
	assert_int_equal(f->res.stage, STAGE_TLS);
	assert_int_equal(f->err.hint, HINT_TLS_VERIFY);
	assert_non_null(strstr(f->err.text, "TLS certificate of localhost "
	    "refused: "));
	assert_non_null(strstr(f->err.text, "set TLS_CA_File to its CA or "
	    "pin it with TLSFingerprint=sha256:"));
	assert_int_equal(f->st->writes, 0);
	assert_int_equal(fx_end(f), 0);
	free(f);
}

/* ------------------------------------------------ the byte stream */

/* One byte per read, seven per write: the same dialogue, unchanged. */
static void
test_short_reads_and_writes(void **state)
{
	static const struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_PIPE),
		EXPECT("MAIL FROM:<a@x.test> SIZE=21"),
		EXPECT("RCPT TO:<b@y.test>"), EXPECT("RCPT TO:<c@z.test>"),
		EXPECT("DATA"),
		SEND("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
		DATA(BODY ".\r\n"), SEND("250 2.0.0 Ok: queued as SHORT\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct fx *f = fx_new(two, BODY);

	(void)state;
	fx_hub(f, s);
	f->st->read_max = 1;
	f->st->write_max = 7;
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_string_equal(f->res.hub_qid, "SHORT");
	assert_int_equal(f->res.accepted, 2);
	assert_true(f->st->reads > (int)strlen(GREET));
	assert_int_equal(fx_end(f), 0);
	free(f);
}

/* A reset while the body goes out: temporary, and not a word more. */
static void
test_reset_mid_data(void **state)
{
	static const struct stub_step s[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_BARE),
		EXPECT("MAIL FROM:<a@x.test>"), SEND("250 ok\r\n"),
		EXPECT("RCPT TO:<b@y.test>"), SEND("250 ok\r\n"),
		EXPECT("DATA"), SEND("354 go\r\n"), FAIL(ECONNRESET), HANG, END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	fx_hub(f, s);
	assert_int_equal(fx_open(f), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_TEMP);
	assert_int_equal(f->res.dot_sent, 0);
	assert_string_equal(f->err.text,
	    "sending the message: connection closed by hub");
	/* No QUIT after a broken DATA: HANG is left by the close alone. */
	assert_int_equal(fx_end(f), 0);
	free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_multiline),
		cmocka_unit_test(test_reply_mismatch),
		cmocka_unit_test(test_reply_invalid),
		cmocka_unit_test(test_reply_line_limits),
		cmocka_unit_test(test_reply_eof),
		cmocka_unit_test(test_reply_sanitised),
		cmocka_unit_test(test_parse_qid),
		cmocka_unit_test(test_greeting_junk),
		cmocka_unit_test(test_greeting_refused),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_serial),
		cmocka_unit_test(test_dsn_passed_when_offered),
		cmocka_unit_test(test_dsn_dropped_when_not_offered),
		cmocka_unit_test(test_helo_fallback),
		cmocka_unit_test(test_all_rejected),
		cmocka_unit_test(test_mail_refused),
		cmocka_unit_test(test_data_and_dot),
		cmocka_unit_test(test_size_refusal),
		cmocka_unit_test(test_smtputf8),
		cmocka_unit_test(test_reset_and_second),
		cmocka_unit_test(test_reset_pipelined),
		cmocka_unit_test(test_reset_serial_writes),
		cmocka_unit_test(test_reset_pipelined_stale),
		cmocka_unit_test(test_large_body),
		cmocka_unit_test(test_deadline_silent),
		cmocka_unit_test(test_deadline_trickle),
		cmocka_unit_test(test_auth_plaintext_refused),
		cmocka_unit_test(test_starttls_not_offered),
		cmocka_unit_test(test_starttls_injection),
		cmocka_unit_test(test_auth_plain),
		cmocka_unit_test(test_auth_plain_transcript),
		cmocka_unit_test(test_auth_login),
		cmocka_unit_test(test_auth_cram_md5),
		cmocka_unit_test(test_auth_failures),
		cmocka_unit_test(test_auth_failure_texts),
		cmocka_unit_test(test_starttls_session),
		cmocka_unit_test(test_starttls_refused_by_tls),
		cmocka_unit_test(test_implicit_tls),
		cmocka_unit_test(test_short_reads_and_writes),
		cmocka_unit_test(test_reset_mid_data),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
