/*
 * test_smtp.c: the SMTP client (smtp.c) against scripted hubs. The
 * reply reader is fed through a socketpair; sessions talk over loopback
 * TCP to a forked peer that reads the client's lines, checks them
 * against a script, answers, and exits non-zero at the first mismatch.
 * STARTTLS and implicit TLS use a throwaway CA made with the openssl CLI.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <arpa/inet.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "unit.h"

/* ------------------------------------------------ write observation */

/*
 * The client's writes, seen by interposing send(2) (conn.c and tls.c
 * write with send): the one way to tell one write of MAIL+RCPT+DATA
 * from three writes that the peer happened to read at once.
 */
static struct {
	int	 calls;
	int	 mail_calls;	/* writes that begin with MAIL FROM */
	int	 mail_whole;	/* ... and also carry RCPT and end in DATA */
} sendlog;

ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
	const char *p = buf;

	sendlog.calls++;
	if (len >= 10 && memcmp(p, "MAIL FROM:", 10) == 0) {
		sendlog.mail_calls++;
		if (memmem(p, len, "\r\nRCPT TO:", 10) != NULL && len >= 6 &&
		    memcmp(p + len - 6, "DATA\r\n", 6) == 0)
			sendlog.mail_whole++;
	}
	return syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);
}

/* ------------------------------------------------------ the peer */

enum pop {
	P_END = 0,
	P_SEND,		/* write s */
	P_EXPECT,	/* the next line is s (CRLF stripped) */
	P_READ,		/* one read(2) returns exactly s */
	P_DATA,		/* lines up to "." make exactly s (".\r\n" included) */
	P_EOF,		/* the client closes without sending anything */
	P_TRICKLE,	/* write s one byte every n ms */
	P_TLS,		/* server side of a TLS handshake */
	P_TLS_REFUSED,	/* the same, which the client must abort */
	P_SLEEP		/* n ms */
};

struct pstep {
	enum pop	 op;
	const char	*s;
	int		 n;
};

#define SEND(x)		{ P_SEND, (x), 0 }
#define EXPECT(x)	{ P_EXPECT, (x), 0 }
#define READ(x)		{ P_READ, (x), 0 }
#define DATA(x)		{ P_DATA, (x), 0 }
#define PEOF		{ P_EOF, NULL, 0 }
#define TRICKLE(x, ms)	{ P_TRICKLE, (x), (ms) }
#define TLS		{ P_TLS, NULL, 0 }
#define TLS_REFUSED	{ P_TLS_REFUSED, NULL, 0 }
#define END		{ P_END, NULL, 0 }

#define PEER_WAIT_MS	8000

struct peer {
	int	 fd;
	SSL	*ssl;
	char	 buf[1 << 20];
	size_t	 len;
};

/* Where the throwaway CA and the hub's certificate are ("" if none). */
static char certdir[64];

static ssize_t
peer_rd(struct peer *p, char *buf, size_t len, int ms)
{
	struct pollfd pfd = { p->fd, POLLIN, 0 };
	size_t got;

	if (p->ssl == NULL || SSL_pending(p->ssl) == 0)
		if (poll(&pfd, 1, ms) != 1)
			return -2;
	if (p->ssl == NULL)
		return read(p->fd, buf, len);
	if (SSL_read_ex(p->ssl, buf, len, &got) == 1)
		return (ssize_t)got;
	return SSL_get_error(p->ssl, 0) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

static int
peer_wr(struct peer *p, const char *s, size_t len)
{
	size_t put;
	ssize_t n;

	if (p->ssl != NULL)
		return SSL_write_ex(p->ssl, s, len, &put) == 1 ? 0 : -1;
	while (len > 0) {
		if ((n = write(p->fd, s, len)) <= 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One line without CRLF into line; -1 on EOF or timeout. */
static int
peer_line(struct peer *p, char *line, size_t cap)
{
	char *nl;
	size_t n;
	ssize_t r;

	while ((nl = memchr(p->buf, '\n', p->len)) == NULL) {
		if (p->len == sizeof(p->buf))
			return -1;
		r = peer_rd(p, p->buf + p->len, sizeof(p->buf) - p->len,
		    PEER_WAIT_MS);
		if (r <= 0)
			return -1;
		p->len += (size_t)r;
	}
	n = (size_t)(nl - p->buf) + 1;
	if (n >= cap)
		return -1;
	memcpy(line, p->buf, n);
	line[n] = '\0';
	memmove(p->buf, p->buf + n, p->len - n);
	p->len -= n;
	if (n >= 2 && line[n - 2] == '\r')
		line[n - 2] = '\0';
	else
		line[n - 1] = '\0';
	return 0;
}

static int
peer_tls(struct peer *p)
{
	char cert[128], key[128];
	SSL_CTX *ctx;

	(void)snprintf(cert, sizeof(cert), "%s/srv.pem", certdir);
	(void)snprintf(key, sizeof(key), "%s/srv.key", certdir);
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    (p->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(p->ssl, p->fd) != 1)
		return -1;
	return SSL_accept(p->ssl) == 1 ? 0 : -1;
}

static int
peer_data(struct peer *p, const char *want)
{
	char line[4096];
	size_t have = 0, wl = strlen(want);
	char *got = malloc(wl + 4096);
	int ok;

	if (got == NULL)
		return -1;
	for (;;) {
		if (peer_line(p, line, sizeof(line)) != 0)
			break;
		if (have + strlen(line) + 2 < wl + 4096) {
			memcpy(got + have, line, strlen(line));
			have += strlen(line);
			memcpy(got + have, "\r\n", 2);
			have += 2;
		}
		if (strcmp(line, ".") == 0)
			break;
	}
	ok = have == wl && memcmp(got, want, wl) == 0;
	if (!ok)
		fprintf(stderr, "peer: DATA mismatch: got %zu octets, want "
		    "%zu: %.*s\n", have, wl, (int)(have > 300 ? 300 : have),
		    got);
	free(got);
	return ok ? 0 : -1;
}

static int
peer_step(struct peer *p, const struct pstep *st)
{
	char line[4096];
	ssize_t r;
	int i;

	switch (st->op) {
	case P_SEND:
		return peer_wr(p, st->s, strlen(st->s));
	case P_EXPECT:
		if (peer_line(p, line, sizeof(line)) != 0) {
			fprintf(stderr, "peer: no line, want \"%s\"\n", st->s);
			return -1;
		}
		if (strcmp(line, st->s) != 0) {
			fprintf(stderr, "peer: got \"%s\", want \"%s\"\n",
			    line, st->s);
			return -1;
		}
		return 0;
	case P_READ:
		if (p->len != 0 || (r = peer_rd(p, p->buf, sizeof(p->buf),
		    PEER_WAIT_MS)) <= 0)
			return -1;
		if ((size_t)r != strlen(st->s) || memcmp(p->buf, st->s,
		    (size_t)r) != 0) {
			fprintf(stderr, "peer: one read got \"%.*s\", want "
			    "\"%s\"\n", (int)r, p->buf, st->s);
			return -1;
		}
		return 0;
	case P_DATA:
		return peer_data(p, st->s);
	case P_EOF:
		if (p->len != 0)
			return -1;
		r = peer_rd(p, p->buf, sizeof(p->buf), PEER_WAIT_MS);
		if (r != 0)
			fprintf(stderr, "peer: wanted EOF, got %zd: %.*s\n",
			    r, r > 0 ? (int)r : 0, p->buf);
		return r == 0 ? 0 : -1;
	case P_TRICKLE:
		for (i = 0; st->s[i] != '\0'; i++) {
			if (peer_wr(p, st->s + i, 1) != 0)
				return 0;	/* the client gave up */
			(void)poll(NULL, 0, st->n);
		}
		return 0;
	case P_TLS:
		return peer_tls(p);
	case P_TLS_REFUSED:
		return peer_tls(p) == 0 ? -1 : 0;
	case P_SLEEP:
		(void)poll(NULL, 0, st->n);
		return 0;
	default:
		return -1;
	}
}

static void
peer_run(int lfd, const struct pstep *script)
{
	struct pollfd pfd = { lfd, POLLIN, 0 };
	static struct peer p;
	int i;

	signal(SIGPIPE, SIG_IGN);
	if (poll(&pfd, 1, PEER_WAIT_MS) != 1 ||
	    (p.fd = accept(lfd, NULL, NULL)) == -1)
		_exit(2);
	(void)close(lfd);
	for (i = 0; script[i].op != P_END; i++)
		if (peer_step(&p, &script[i]) != 0) {
			fprintf(stderr, "peer: step %d failed\n", i);
			_exit(10 + i);
		}
	_exit(0);
}

struct hub {
	pid_t	 pid;
	int	 lfd;
	char	 port[PORT_MAX];
};

static void
hub_start(struct hub *h, const struct pstep *script)
{
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	h->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(h->lfd != -1);
	assert_int_equal(bind(h->lfd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	assert_int_equal(listen(h->lfd, 4), 0);
	assert_int_equal(getsockname(h->lfd, (struct sockaddr *)&sin, &slen),
	    0);
	(void)snprintf(h->port, sizeof(h->port), "%d", ntohs(sin.sin_port));
	fflush(NULL);
	h->pid = fork();
	assert_true(h->pid != -1);
	if (h->pid == 0)
		peer_run(h->lfd, script);
}

/* The peer's verdict: 0 when every step of its script matched. */
static int
hub_wait(struct hub *h)
{
	int status;

	if (h->lfd != -1)
		(void)close(h->lfd);
	if (waitpid(h->pid, &status, 0) != h->pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

/* --------------------------------------------------------- fixture */

struct fx {
	struct config		 cfg;
	struct route		 route;
	struct smtp_params	 params;
	struct smtp_result	 res;
	struct error		 err;
	struct envelope		 env;
	struct smtp_rcpt	 rcpt[4];
	struct hub		 hub;
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
	(void)strlcpy(f->route.host, "127.0.0.1", sizeof(f->route.host));
	f->params.cfg = &f->cfg;
	f->params.route = &f->route;
	f->params.helo = "client.test";
	f->params.transcript = transcript;
	f->params.transcript_arg = f;
	(void)strlcpy(f->env.sender, "a@x.test", sizeof(f->env.sender));
	for (i = 0; rcpts != NULL && rcpts[i] != NULL && i < 4; i++)
		(void)strlcpy(f->rcpt[i].addr, rcpts[i],
		    sizeof(f->rcpt[i].addr));
	f->env.rcpt = f->rcpt;
	f->env.nrcpt = i;
	f->env.spool_fd = spool(body != NULL ? body : "");
	f->env.size = (off_t)strlen(body != NULL ? body : "");
	error_clear(&f->err);
	return f;
}

static void
fx_hub(struct fx *f, const struct pstep *script)
{
	hub_start(&f->hub, script);
	(void)strlcpy(f->route.port, f->hub.port, sizeof(f->route.port));
}

/* Close the session, reap the peer, and return its verdict. */
static int
fx_end(struct fx *f)
{
	int v;

	smtp_close(f->s);
	f->s = NULL;
	v = hub_wait(&f->hub);
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

/* Feed text to the reader through a socketpair; close after if eof. */
static int
feed_reply(const char *text, size_t len, int eof, int *code, char *out,
    size_t outlen, struct error *err)
{
	struct conn c;
	int sv[2], rc;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], text, len), (ssize_t)len);
	if (eof)
		(void)close(sv[1]);
	conn_init(&c, 2);
	conn_attach(&c, sv[0], NULL);
	error_clear(err);
	rc = smtp_read_reply(&c, code, out, outlen, err);
	conn_close(&c);
	if (!eof)
		(void)close(sv[1]);
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
	static const struct pstep s1[] = {
		SEND("junk from a confused hub\r\n220 hub.test\r\n"), PEOF, END
	};
	static const struct pstep s2[] = {
		SEND("220 hub.test\r\n250 fake answer to EHLO\r\n"), PEOF, END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	fx_hub(f, s1);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_TEMP);
	assert_null(f->s);
	assert_int_equal(f->res.stage, STAGE_GREETING);
	assert_non_null(strstr(f->err.text, "malformed reply from hub"));
	assert_int_equal(fx_end(f), 0);

	f->tr[0] = '\0';
	fx_hub(f, s2);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_TEMP);
	assert_int_equal(f->res.stage, STAGE_GREETING);
	assert_non_null(strstr(f->err.text, "after its greeting"));
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_greeting_refused(void **state)
{
	static const struct pstep s[] = {
		SEND("554 5.3.2 hub.test no service for you\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	fx_hub(f, s);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_TEMP);
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
	static const struct pstep s[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_PIPE),
		READ(group),
		SEND("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
		    "354 End data with <CR><LF>.<CR><LF>\r\n"),
		DATA("Subject: t\r\n\r\n..\r\n...x\r\nok\r\n..start\r\n"
		    "\xc3\xa9t\xc3\xa9\r\n.\r\n"),
		SEND("250 2.0.0 Ok: queued as 4Xyz1\r\n"),
		EXPECT("QUIT"), SEND("221 2.0.0 Bye\r\n"), PEOF, END
	};
	struct fx *f = fx_new(two, body);
	char relay[128];

	(void)state;
	f->env.body_8bit = 1;
	(void)snprintf(group, sizeof(group), "MAIL FROM:<a@x.test> SIZE=%zu "
	    "BODY=8BITMIME\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@z.test>\r\n"
	    "DATA\r\n", sizeof(body) - 1);
	fx_hub(f, s);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_OK);
	(void)snprintf(relay, sizeof(relay), "127.0.0.1[127.0.0.1]:%s",
	    f->hub.port);
	assert_string_equal(f->res.relay, relay);
	assert_string_equal(f->res.tls, "");
	memset(&sendlog, 0, sizeof(sendlog));
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	/* MAIL, both RCPTs and DATA left in one write. */
	assert_int_equal(sendlog.mail_calls, 1);
	assert_int_equal(sendlog.mail_whole, 1);
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
	static const struct pstep s[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_BARE),
		/* No 8BITMIME, no SIZE offered: no BODY=, no SIZE=. */
		READ("MAIL FROM:<a@x.test>\r\n"), SEND("250 ok\r\n"),
		READ("RCPT TO:<b@y.test>\r\n"), SEND("250 ok\r\n"),
		READ("RCPT TO:<c@z.test>\r\n"),
		SEND("550 5.1.1 <c@z.test>: no such user\r\n"),
		READ("DATA\r\n"), SEND("354 go\r\n"),
		DATA(BODY ".\r\n"), SEND("250 accepted\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct fx *f = fx_new(two, BODY);

	(void)state;
	f->env.body_8bit = 1;
	fx_hub(f, s);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_OK);
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
	static const struct pstep s[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_PIPE),
		READ("MAIL FROM:<a@x.test> SIZE=21 RET=HDRS ENVID=QQ+2B1\r\n"
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
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_dsn_dropped_when_not_offered(void **state)
{
	static const struct pstep s[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_BARE),
		READ("MAIL FROM:<a@x.test>\r\n"), SEND("250 ok\r\n"),
		READ("RCPT TO:<b@y.test>\r\n"), SEND("250 ok\r\n"),
		READ("DATA\r\n"), SEND("354 go\r\n"),
		DATA(BODY ".\r\n"), SEND("250 accepted\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	(void)strlcpy(f->env.dsn.notify, "NEVER", sizeof(f->env.dsn.notify));
	(void)strlcpy(f->env.dsn.ret, "FULL", sizeof(f->env.dsn.ret));
	fx_hub(f, s);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_helo_fallback(void **state)
{
	static const struct pstep s[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("502 5.5.2 what is EHLO\r\n"),
		EXPECT("HELO client.test"), SEND("250 hub.test\r\n"),
		READ("MAIL FROM:<a@x.test>\r\n"), SEND("250 ok\r\n"),
		READ("RCPT TO:<b@y.test>\r\n"), SEND("250 ok\r\n"),
		READ("DATA\r\n"), SEND("354 go\r\n"),
		DATA(BODY ".\r\n"), SEND("250 ok id=1abc-2\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	f->env.body_8bit = 1;
	fx_hub(f, s);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_string_equal(f->res.hub_qid, "1abc-2");
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_all_rejected(void **state)
{
	static const struct pstep temp[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_PIPE),
		EXPECT("MAIL FROM:<a@x.test> SIZE=21"),
		EXPECT("RCPT TO:<b@y.test>"), EXPECT("RCPT TO:<c@z.test>"),
		EXPECT("DATA"),
		SEND("250 ok\r\n550 5.1.1 unknown\r\n450 4.2.0 greylisted\r\n"
		    "554 5.5.1 Error: no valid recipients\r\n"),
		/* Never the body: the next thing is QUIT. */
		EXPECT("QUIT"), SEND("221 bye\r\n"), PEOF, END
	};
	static const struct pstep perm354[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_PIPE),
		EXPECT("MAIL FROM:<a@x.test> SIZE=21"),
		EXPECT("RCPT TO:<b@y.test>"), EXPECT("RCPT TO:<c@z.test>"),
		EXPECT("DATA"),
		SEND("250 ok\r\n550 5.1.1 unknown\r\n553 5.1.3 bad\r\n"
		    "354 send it anyway\r\n"),
		READ(".\r\n"), SEND("554 no recipients\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), PEOF, END
	};
	struct fx *f = fx_new(two, BODY);

	(void)state;
	fx_hub(f, temp);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_OK);
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
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_PERM);
	assert_int_equal(f->res.stage, STAGE_RCPT);
	assert_int_equal(f->res.dot_sent, 0);
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_mail_refused(void **state)
{
	static const struct pstep s[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_BARE),
		EXPECT("MAIL FROM:<a@x.test>"),
		SEND("553 5.7.1 sender rejected\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	static const struct pstep t[] = {
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
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_PERM);
	assert_int_equal(f->res.stage, STAGE_MAIL);
	assert_int_equal(f->res.code, 553);
	assert_int_equal(fx_end(f), 0);
	free(f);

	f = fx_new(one, BODY);
	fx_hub(f, t);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_OK);
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
	static const struct pstep data[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_BARE),
		EXPECT("MAIL FROM:<a@x.test>"), SEND("250 ok\r\n"),
		EXPECT("RCPT TO:<b@y.test>"), SEND("250 ok\r\n"),
		EXPECT("DATA"), SEND("554 5.6.0 no thanks\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	static const struct pstep dot[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_BARE),
		EXPECT("MAIL FROM:<a@x.test>"), SEND("250 ok\r\n"),
		EXPECT("RCPT TO:<b@y.test>"), SEND("250 ok\r\n"),
		EXPECT("DATA"), SEND("354 go\r\n"), DATA(BODY ".\r\n"),
		SEND("451 4.3.0 queue full\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	static const struct pstep lost[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_BARE),
		EXPECT("MAIL FROM:<a@x.test>"), SEND("250 ok\r\n"),
		EXPECT("RCPT TO:<b@y.test>"), SEND("250 ok\r\n"),
		EXPECT("DATA"), SEND("354 go\r\n"), DATA(BODY ".\r\n"), END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	fx_hub(f, data);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_PERM);
	assert_int_equal(f->res.stage, STAGE_DATA);
	assert_int_equal(f->res.code, 554);
	assert_int_equal(f->res.dot_sent, 0);
	assert_int_equal(fx_end(f), 0);
	free(f);

	f = fx_new(one, BODY);
	fx_hub(f, dot);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_TEMP);
	assert_int_equal(f->res.stage, STAGE_DOT);
	assert_int_equal(f->res.code, 451);
	assert_int_equal(f->res.dot_sent, 1);
	assert_int_equal(fx_end(f), 0);
	free(f);

	/* The hub vanishes after the dot: a possible duplicate. */
	f = fx_new(one, BODY);
	fx_hub(f, lost);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_OK);
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
	static const struct pstep s[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250-PIPELINING\r\n250 SIZE 10\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	fx_hub(f, s);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_OK);
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
	static const struct pstep no[] = {
		SEND(GREET), EXPECT("EHLO client.test"), SEND(EHLO_PIPE),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	static const struct pstep yes[] = {
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
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_PERM);
	assert_int_equal(f->res.code, 553);
	assert_non_null(strstr(f->err.text, "SMTPUTF8"));
	assert_int_equal(fx_end(f), 0);
	free(f);

	f = fx_new(u, BODY);
	fx_hub(f, yes);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_int_equal(f->env.smtputf8, 1);
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_reset_and_second(void **state)
{
	static const struct pstep s[] = {
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
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_string_equal(f->res.hub_qid, "ONE");
	assert_int_equal(smtp_reset(f->s, &f->err), ST_OK);
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_string_equal(f->res.hub_qid, "TWO");
	assert_int_equal(fx_end(f), 0);
	free(f);
}

static void
test_large_body(void **state)
{
	static struct pstep s[] = {
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
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_OK);
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
	static const struct pstep s[] = { PEOF, END };
	struct fx *f = fx_new(one, BODY);
	struct timespec t0;
	double t;

	(void)state;
	f->cfg.timeout = 1;
	fx_hub(f, s);
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_TEMP);
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
	static const struct pstep s[] = {
		TRICKLE("220 hub.test a very slow greeting indeed\r\n", 200),
		END
	};
	struct fx *f = fx_new(one, BODY);
	struct timespec t0;
	double t;

	(void)state;
	f->cfg.timeout = 1;
	fx_hub(f, s);
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_TEMP);
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
	static const struct pstep s[] = { PEOF, END };
	struct fx *f = fx_new(one, BODY);
	struct pollfd pfd;

	(void)state;
	(void)strlcpy(f->cfg.auth_user, "user", sizeof(f->cfg.auth_user));
	(void)strlcpy(f->cfg.auth_pass, "pass", sizeof(f->cfg.auth_pass));
	fx_hub(f, s);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_CONFIG);
	assert_null(f->s);
	assert_int_equal(f->res.stage, STAGE_CONNECT);
	assert_non_null(strstr(f->err.text, "AuthAllowPlaintext=YES"));
	assert_int_equal(f->err.hint, HINT_TLS_POLICY);
	/* Nothing connected: the listening socket has nobody waiting. */
	pfd.fd = f->hub.lfd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	assert_int_equal(poll(&pfd, 1, 200), 0);
	assert_string_equal(f->tr, "");
	(void)kill(f->hub.pid, SIGTERM);
	(void)hub_wait(&f->hub);
	(void)close(f->env.spool_fd);
	free(f);
}

static void
test_starttls_not_offered(void **state)
{
	static const struct pstep s[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250-AUTH PLAIN LOGIN\r\n"
		    "250 PIPELINING\r\n"),
		/* Neither AUTH nor MAIL: straight to QUIT. */
		EXPECT("QUIT"), SEND("221 bye\r\n"), PEOF, END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	f->cfg.tls = TLS_STARTTLS;
	(void)strlcpy(f->cfg.auth_user, "user", sizeof(f->cfg.auth_user));
	(void)strlcpy(f->cfg.auth_pass, "pass", sizeof(f->cfg.auth_pass));
	fx_hub(f, s);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_TEMP);
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
	static const struct pstep s[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 STARTTLS\r\n"), EXPECT("STARTTLS"),
		SEND("220 go ahead\r\n250 injected\r\n"), PEOF, END
	};
	struct fx *f = fx_new(one, BODY);

	(void)state;
	f->cfg.tls = TLS_STARTTLS;
	fx_hub(f, s);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_TEMP);
	assert_int_equal(f->err.hint, HINT_TLS_POLICY);
	assert_non_null(strstr(f->err.text, "hub sent data after 220 to "
	    "STARTTLS: refused (possible command injection)"));
	assert_int_equal(fx_end(f), 0);
	free(f);
}

/* An AUTH exchange over plaintext (AuthAllowPlaintext=YES). */
static void
auth_case(const struct pstep *s, enum auth_method m, int old, int want,
    enum admin_hint hint, const char *user, const char *pass)
{
	struct fx *f = fx_new(one, BODY);

	f->cfg.auth_allow_plaintext = 1;
	f->cfg.auth_method = m;
	f->cfg.use_old_auth = old;
	(void)strlcpy(f->cfg.auth_user, user, sizeof(f->cfg.auth_user));
	(void)strlcpy(f->cfg.auth_pass, pass, sizeof(f->cfg.auth_pass));
	fx_hub(f, s);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
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
	static const struct pstep s[] = {
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
	static const struct pstep s[] = {
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
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_OK);
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
	static const struct pstep s[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 AUTH=LOGIN\r\n"),
		EXPECT("AUTH LOGIN"), SEND("334 VXNlcm5hbWU6\r\n"),
		EXPECT("dXNlcg=="), SEND("334 UGFzc3dvcmQ6\r\n"),
		EXPECT("cGFzcw=="), SEND("235 ok\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	static const struct pstep old[] = {
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
	static const struct pstep s[] = {
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
	static const struct pstep refused[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 AUTH PLAIN\r\n"),
		EXPECT("AUTH PLAIN AHVzZXIAcGFzcw=="),
		SEND("535 5.7.8 Error: authentication failed\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	static const struct pstep busy[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 AUTH PLAIN\r\n"),
		EXPECT("AUTH PLAIN AHVzZXIAcGFzcw=="),
		SEND("454 4.7.0 Temporary authentication failure\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	static const struct pstep missing[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 AUTH LOGIN\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	static const struct pstep none[] = {
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
	static const struct pstep missing[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250-hub.test\r\n250 AUTH LOGIN\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	static const struct pstep none[] = {
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
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_TEMP);
	assert_string_equal(f->err.text, "hub does not offer AUTH PLAIN");
	assert_int_equal(fx_end(f), 0);
	free(f);

	f = fx_new(one, BODY);
	f->cfg.auth_allow_plaintext = 1;
	(void)strlcpy(f->cfg.auth_user, "user", sizeof(f->cfg.auth_user));
	fx_hub(f, none);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_TEMP);
	assert_string_equal(f->err.text,
	    "hub offers no AUTH; check UseSTARTTLS");
	assert_int_equal(fx_end(f), 0);
	free(f);
}

/* ------------------------------------------------------------ TLS */

static int
have_certs(void)
{
	return certdir[0] != '\0';
}

static void
tls_cfg(struct fx *f)
{
	(void)snprintf(f->cfg.tls_ca_file, sizeof(f->cfg.tls_ca_file),
	    "%s/ca.pem", certdir);
	(void)strlcpy(f->route.host, "localhost", sizeof(f->route.host));
}

static void
test_starttls_session(void **state)
{
	static const struct pstep s[] = {
		SEND(GREET), EXPECT("EHLO client.test"),
		/* Before TLS: PIPELINING, no AUTH. */
		SEND("250-hub.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"),
		EXPECT("STARTTLS"), SEND("220 2.0.0 Ready to start TLS\r\n"),
		TLS, EXPECT("EHLO client.test"),
		/* After: AUTH, and no PIPELINING any more. */
		SEND("250-hub.test\r\n250 AUTH PLAIN\r\n"),
		EXPECT("AUTH PLAIN AHVzZXIAcGFzcw=="), SEND("235 ok\r\n"),
		READ("MAIL FROM:<a@x.test>\r\n"), SEND("250 ok\r\n"),
		READ("RCPT TO:<b@y.test>\r\n"), SEND("250 ok\r\n"),
		READ("DATA\r\n"), SEND("354 go\r\n"), DATA(BODY ".\r\n"),
		SEND("250 2.0.0 Ok: queued as TLS1\r\n"),
		EXPECT("QUIT"), SEND("221 bye\r\n"), END
	};
	struct fx *f;

	(void)state;
	if (!have_certs())
		skip();
	f = fx_new(one, BODY);
	tls_cfg(f);
	f->cfg.tls = TLS_STARTTLS;
	(void)strlcpy(f->cfg.auth_user, "user", sizeof(f->cfg.auth_user));
	(void)strlcpy(f->cfg.auth_pass, "pass", sizeof(f->cfg.auth_pass));
	fx_hub(f, s);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_OK);
	assert_non_null(strstr(f->res.tls, "TLSv1."));
	assert_non_null(strstr(f->res.tls, " verified"));
	assert_int_equal(smtp_send(f->s, &f->env, &f->res, &f->err), ST_OK);
	assert_string_equal(f->res.hub_qid, "TLS1");
	assert_int_equal(fx_end(f), 0);
	assert_null(strstr(f->tr, "AHVzZXIAcGFzcw"));
	free(f);
}

static void
test_implicit_tls(void **state)
{
	static const struct pstep ok[] = {
		TLS, SEND(GREET), EXPECT("EHLO client.test"),
		SEND("250 hub.test\r\n"), EXPECT("QUIT"), SEND("221 bye\r\n"),
		END
	};
	static const struct pstep bad[] = { TLS_REFUSED, END };
	struct fx *f;

	(void)state;
	if (!have_certs())
		skip();
	f = fx_new(one, BODY);
	tls_cfg(f);
	f->cfg.tls = TLS_IMPLICIT;
	fx_hub(f, ok);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_OK);
	assert_non_null(strstr(f->res.tls, " verified"));
	assert_int_equal(fx_end(f), 0);
	free(f);

	/* A certificate the system store does not know: refused, with
	 * the keys to set and the fingerprint of the hub's key. */
	f = fx_new(one, BODY);
	tls_cfg(f);
	f->cfg.tls_ca_file[0] = '\0';
	f->cfg.tls = TLS_IMPLICIT;
	fx_hub(f, bad);
	assert_int_equal(smtp_open(&f->s, &f->params, &f->res, &f->err),
	    ST_TEMP);
	assert_int_equal(f->res.stage, STAGE_TLS);
	assert_int_equal(f->err.hint, HINT_TLS_VERIFY);
	assert_non_null(strstr(f->err.text, "TLS certificate of localhost "
	    "refused: "));
	assert_non_null(strstr(f->err.text, "set TLS_CA_File to its CA or "
	    "pin it with TLSFingerprint=sha256:"));
	assert_int_equal(fx_end(f), 0);
	free(f);
}

/* --------------------------------------------------------- set-up */

static int
make_certs(void **state)
{
	char cmd[2048], tmpl[] = "/tmp/postino-smtp-XXXXXX";

	(void)state;
	if (mkdtemp(tmpl) == NULL)
		return 0;
	(void)snprintf(cmd, sizeof(cmd),
	    "cd %s && openssl req -x509 -newkey ec -pkeyopt "
	    "ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem "
	    "-days 2 -subj /CN=postino-test-ca >/dev/null 2>&1 && "
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	    "-nodes -keyout srv.key -out srv.pem -days 2 -subj /CN=localhost "
	    "-CA ca.pem -CAkey ca.key -addext "
	    "subjectAltName=DNS:localhost,IP:127.0.0.1 -addext "
	    "basicConstraints=critical,CA:FALSE >/dev/null 2>&1", tmpl);
	if (system(cmd) == 0)
		(void)strlcpy(certdir, tmpl, sizeof(certdir));
	return 0;
}

static int
remove_certs(void **state)
{
	char cmd[256];

	(void)state;
	if (certdir[0] != '\0') {
		(void)snprintf(cmd, sizeof(cmd), "rm -rf %s", certdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", certdir);
	}
	return 0;
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
		cmocka_unit_test(test_implicit_tls),
	};

	return cmocka_run_group_tests(tests, make_certs, remove_certs);
}
