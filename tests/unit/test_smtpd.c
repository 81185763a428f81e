/*
 * test_smtpd.c: sendmail -bs sessions scripted as Symfony, Laravel and
 * generic clients write them, checked reply by reply against the exact
 * texts, with a stub submit callback that records the envelope and the
 * spooled DATA. Input comes from a memfd (everything pipelined in one
 * read), from a pipe fed one byte at a time by a child process (every
 * buffer boundary), or from a pipe kept open (the idle timeout).
 */
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"

#define HOST		"mx.test"
#define GREETING	"220 " HOST " ESMTP postino\r\n"
#define BYE		"221 2.0.0 Bye\r\n"
#define OK_MAIL		"250 2.1.0 Ok\r\n"
#define OK_RCPT		"250 2.1.5 Ok\r\n"
#define GO_AHEAD	"354 End data with <CR><LF>.<CR><LF>\r\n"
#define QUEUED		"250 2.0.0 Ok: queued as 0123456789\r\n"
#define OK		"250 2.0.0 Ok\r\n"
#define QUEUE_451	"451 4.3.0 Error: queue file write error\r\n"
#define MAXCALLS	4

/* What the stub submit callback saw in one transaction. */
struct call {
	char		 sender[ADDR_MAX];
	char		 rcpts[1024];	/* joined with ',' (first ones) */
	size_t		 nrcpt;
	char		*data;
	size_t		 len;
	off_t		 offset;	/* of data_fd when called */
};

struct session_run {
	struct smtpd_params p;
	int		 status;	/* what the stub returns */
	const char	*answer;	/* its reply; NULL: default */
	struct call	 calls[MAXCALLS];
	size_t		 ncalls;
	struct error	 err;
	int		 st;		/* smtpd_run's result */
	char		*out;
	size_t		 outlen;
};

static char *
read_all(int fd, size_t *lenp)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap + 1);
	ssize_t n;

	assert_non_null(buf);
	for (;;) {
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
		n = read(fd, buf + len, cap - len);
		if (n == -1 && errno == EINTR)
			continue;
		assert_true(n >= 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

static int
stub_submit(void *arg, const char *sender, const struct addrlist *rcpts,
    int data_fd, char *reply, size_t replylen)
{
	struct session_run *r = arg;
	struct call *c;
	size_t i, used = 0;

	if (r->ncalls < MAXCALLS) {
		c = &r->calls[r->ncalls];
		(void)strlcpy(c->sender, sender, sizeof(c->sender));
		c->nrcpt = rcpts->n;
		for (i = 0; i < rcpts->n && i < 20; i++)
			used += (size_t)snprintf(c->rcpts + used,
			    sizeof(c->rcpts) - used, "%s%s", i ? "," : "",
			    rcpts->v[i]);
		c->offset = lseek(data_fd, 0, SEEK_CUR);
		c->data = read_all(data_fd, &c->len);
	}
	r->ncalls++;
	if (r->answer != NULL)
		(void)strlcpy(reply, r->answer, replylen);
	else if (r->status == ST_OK)
		(void)strlcpy(reply, "250 2.0.0 Ok: queued as 0123456789",
		    replylen);
	return r->status;
}

static void
run_init(struct session_run *r)
{
	memset(r, 0, sizeof(*r));
	r->p.hostname = HOST;
	r->p.spool_dir = "/tmp";
	r->p.idle_timeout = 10;
	r->p.submit = stub_submit;
	r->p.submit_arg = r;
	r->status = ST_OK;
	error_clear(&r->err);
}

static void
run_free(struct session_run *r)
{
	size_t i;

	for (i = 0; i < r->ncalls && i < MAXCALLS; i++)
		free(r->calls[i].data);
	free(r->out);
}

static int
memfd_with(const char *data, size_t len)
{
	int fd = memfd_create("smtpd-in", 0);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* Run the dialogue with in_fd as stdin; collect stdout. */
static void
run_fd(struct session_run *r, int in_fd)
{
	int out = memfd_create("smtpd-out", 0);

	assert_true(out >= 0);
	r->p.in_fd = in_fd;
	r->p.out_fd = out;
	r->st = smtpd_run(&r->p, &r->err);
	assert_int_equal(lseek(out, 0, SEEK_SET), 0);
	r->out = read_all(out, &r->outlen);
	(void)close(out);
}

/* The whole script in one buffer: the client pipelines everything. */
static void
run_len(struct session_run *r, const char *script, size_t len)
{
	int in = memfd_with(script, len);

	run_fd(r, in);
	(void)close(in);
}

static void
run(struct session_run *r, const char *script)
{
	run_len(r, script, strlen(script));
}

/* A default session must produce exactly want and end with ST_OK. */
static void
expect_session(const char *script, const char *want)
{
	struct session_run r;

	run_init(&r);
	run(&r, script);
	assert_int_equal(r.st, ST_OK);
	assert_string_equal(r.out, want);
	run_free(&r);
}

static size_t
count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (; (hay = strstr(hay, needle)) != NULL; hay++)
		n++;
	return n;
}

/* ---------------------------------------------------------------- tests */

static void
t_greeting_and_quit(void **state)
{
	(void)state;
	expect_session("QUIT\r\n", GREETING BYE);
	/* Lower case, and QUIT ends the session: later input is ignored. */
	expect_session("quit\r\nNOOP\r\n", GREETING BYE);
}

/* Symfony's SendmailTransport in -bs mode, byte for byte. */
static void
t_symfony_session(void **state)
{
	struct session_run r;

	(void)state;
	run_init(&r);
	run(&r, "HELO [127.0.0.1]\r\n"
	    "MAIL FROM:<app@example.org>\r\n"
	    "RCPT TO:<a@example.org>\r\n"
	    "RCPT TO:<b@example.org>\r\n"
	    "DATA\r\n"
	    "Subject: hi\r\n"
	    "\r\n"
	    "..leading dot\r\n"
	    "..\r\n"
	    ".kept\r\n"
	    "...two\r\n"
	    "last\r\n"
	    ".\r\n"
	    "QUIT\r\n");
	assert_int_equal(r.st, ST_OK);
	assert_string_equal(r.out, GREETING "250 " HOST "\r\n" OK_MAIL
	    OK_RCPT OK_RCPT GO_AHEAD QUEUED BYE);
	assert_int_equal(r.ncalls, 1);
	assert_string_equal(r.calls[0].sender, "app@example.org");
	assert_string_equal(r.calls[0].rcpts, "a@example.org,b@example.org");
	assert_int_equal(r.calls[0].offset, 0);
	assert_string_equal(r.calls[0].data, "Subject: hi\r\n\r\n"
	    ".leading dot\r\n.\r\n.kept\r\n..two\r\nlast\r\n");
	run_free(&r);
}

static void
t_ehlo(void **state)
{
	struct session_run r;

	(void)state;
	expect_session("EHLO client.test\r\nEHLO\r\nHELO\r\n",
	    GREETING "250-" HOST "\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n"
	    "250-" HOST "\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n"
	    "250 " HOST "\r\n");
	run_init(&r);
	r.p.max_size = 10240000;
	run(&r, "ehlo x\r\n");
	assert_string_equal(r.out, GREETING "250-" HOST "\r\n"
	    "250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n");
	assert_null(strstr(r.out, "AUTH"));
	assert_null(strstr(r.out, "STARTTLS"));
	assert_null(strstr(r.out, "CHUNKING"));
	run_free(&r);
}

/* No HELO at all, bare LF line ends, the ".\n" end; LF kept in DATA. */
static void
t_lf_client_without_helo(void **state)
{
	struct session_run r;

	(void)state;
	run_init(&r);
	run(&r, "MAIL FROM:<>\nRCPT TO:<root>\nDATA\n"
	    "a\nb\r\n..c\n.\nQUIT\n");
	assert_int_equal(r.st, ST_OK);
	assert_string_equal(r.out, GREETING OK_MAIL OK_RCPT GO_AHEAD QUEUED
	    BYE);
	assert_int_equal(r.ncalls, 1);
	assert_string_equal(r.calls[0].sender, "");
	assert_string_equal(r.calls[0].rcpts, "root");
	assert_string_equal(r.calls[0].data, "a\nb\r\n.c\n");
	run_free(&r);
}

/* Lines that only look like the end, bare CRs, NULs: all data. */
static void
t_data_edge_lines(void **state)
{
	static const char script[] = "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"
	    "DATA\r\n. \r\n.\rx\r\n.x.\r\nbare\rcr\r\nnul\0byte\r\n"
	    " .\r\n\r\n.\r\nQUIT\r\n";
	static const char want[] = ". \r\n.\rx\r\n.x.\r\nbare\rcr\r\n"
	    "nul\0byte\r\n .\r\n\r\n";
	struct session_run r;

	(void)state;
	run_init(&r);
	run_len(&r, script, sizeof(script) - 1);
	assert_string_equal(r.out, GREETING OK_MAIL OK_RCPT GO_AHEAD QUEUED
	    BYE);
	assert_int_equal(r.ncalls, 1);
	assert_int_equal(r.calls[0].len, sizeof(want) - 1);
	assert_memory_equal(r.calls[0].data, want, sizeof(want) - 1);
	run_free(&r);
}

/* An empty message: DATA then the dot at once. */
static void
t_empty_data(void **state)
{
	struct session_run r;

	(void)state;
	run_init(&r);
	run(&r, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n.\r\n");
	assert_string_equal(r.out, GREETING OK_MAIL OK_RCPT GO_AHEAD QUEUED);
	assert_int_equal(r.ncalls, 1);
	assert_int_equal(r.calls[0].len, 0);
	run_free(&r);
}

static void
t_two_transactions_and_rset(void **state)
{
	struct session_run r;

	(void)state;
	run_init(&r);
	run(&r, "HELO h\r\n"
	    "MAIL FROM:<one@x>\r\nRCPT TO:<a@y>\r\nDATA\r\nfirst\r\n.\r\n"
	    "MAIL FROM:<dropped@x>\r\nRCPT TO:<dropped@y>\r\nRSET\r\n"
	    "DATA\r\n"
	    "MAIL FROM:<two@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\n"
	    "DATA\r\nsecond\r\n.\r\nNOOP\r\nQUIT\r\n");
	assert_int_equal(r.st, ST_OK);
	assert_string_equal(r.out, GREETING "250 " HOST "\r\n"
	    OK_MAIL OK_RCPT GO_AHEAD QUEUED
	    OK_MAIL OK_RCPT OK "503 5.5.1 Error: need RCPT command\r\n"
	    OK_MAIL OK_RCPT OK_RCPT GO_AHEAD QUEUED OK BYE);
	assert_int_equal(r.ncalls, 2);
	assert_string_equal(r.calls[0].sender, "one@x");
	assert_string_equal(r.calls[0].rcpts, "a@y");
	assert_string_equal(r.calls[0].data, "first\r\n");
	assert_string_equal(r.calls[1].sender, "two@x");
	assert_string_equal(r.calls[1].rcpts, "b@y,c@y");
	assert_string_equal(r.calls[1].data, "second\r\n");
	run_free(&r);
}

/* HELO/EHLO in mid-transaction start over (RFC 5321 4.1.4). */
static void
t_helo_resets(void **state)
{
	(void)state;
	expect_session("MAIL FROM:<a@x>\r\nHELO h\r\nRCPT TO:<b@y>\r\n"
	    "MAIL FROM:<a@x>\r\n",
	    GREETING OK_MAIL "250 " HOST "\r\n"
	    "503 5.5.1 Error: need MAIL command\r\n" OK_MAIL);
}

static void
t_sequence_errors(void **state)
{
	(void)state;
	expect_session("RCPT TO:<b@y>\r\nDATA\r\nMAIL FROM:<a@x>\r\n"
	    "MAIL FROM:<a@x>\r\nDATA\r\nRCPT TO:<b@y>\r\nDATA x\r\n",
	    GREETING "503 5.5.1 Error: need MAIL command\r\n"
	    "503 5.5.1 Error: need RCPT command\r\n" OK_MAIL
	    "503 5.5.1 Error: nested MAIL command\r\n"
	    "503 5.5.1 Error: need RCPT command\r\n" OK_RCPT
	    "501 5.5.4 Syntax: DATA\r\n");
}

static void
t_unknown_and_bad_lines(void **state)
{
	static const char nul[] = "NO\0OP\r\nQUIT\r\n";
	struct session_run r;

	(void)state;
	expect_session("EXPN list\r\nSTARTTLS\r\nAUTH PLAIN x\r\nBDAT 1\r\n"
	    "MAILFROM:<a@x>\r\n\r\n   \r\nRSET x\r\nVRFY\r\nVRFY root\r\n"
	    "vrfy <a@b>\r\nnoop anything\r\n",
	    GREETING
	    "502 5.5.2 Error: command not recognized\r\n"
	    "502 5.5.2 Error: command not recognized\r\n"
	    "502 5.5.2 Error: command not recognized\r\n"
	    "502 5.5.2 Error: command not recognized\r\n"
	    "502 5.5.2 Error: command not recognized\r\n"
	    "500 5.5.2 Error: bad syntax\r\n"
	    "500 5.5.2 Error: bad syntax\r\n"
	    "501 5.5.4 Syntax: RSET\r\n"
	    "501 5.5.4 Syntax: VRFY address\r\n"
	    "252 2.0.0 root\r\n"
	    "252 2.0.0 <a@b>\r\n" OK);
	run_init(&r);
	run_len(&r, nul, sizeof(nul) - 1);
	assert_string_equal(r.out, GREETING "500 5.5.2 Error: bad syntax\r\n"
	    BYE);
	run_free(&r);
}

static void
t_address_syntax(void **state)
{
	static const char ctl[] = "MAIL FROM:<a\x01@x>\r\n"
	    "MAIL FROM:<a\rb@x>\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b\x7f@y>\r\n";
	struct session_run r;

	(void)state;
	expect_session("MAIL FROM:\r\nMAIL TO:<a@x>\r\nMAIL FROM:<a@x\r\n"
	    "MAIL FROM:<a b@x>\r\nMAIL FROM:<a@x>junk\r\n"
	    "MAIL FROM:<<a@x>>\r\nMAIL FROM:<@route>\r\n",
	    GREETING "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
	    "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
	    "501 5.1.7 Bad sender address syntax\r\n"
	    "501 5.1.7 Bad sender address syntax\r\n"
	    "501 5.1.7 Bad sender address syntax\r\n"
	    "501 5.1.7 Bad sender address syntax\r\n"
	    "501 5.1.7 Bad sender address syntax\r\n");
	expect_session("MAIL FROM:<a@x>\r\nRCPT TO:\r\nRCPT FROM:<b@y>\r\n"
	    "RCPT TO:<>\r\nRCPT TO:<b@y\r\nRCPT TO:<a<b@y>\r\n",
	    GREETING OK_MAIL "501 5.5.4 Syntax: RCPT TO:<address>\r\n"
	    "501 5.5.4 Syntax: RCPT TO:<address>\r\n"
	    "501 5.1.3 Bad recipient address syntax\r\n"
	    "501 5.1.3 Bad recipient address syntax\r\n"
	    "501 5.1.3 Bad recipient address syntax\r\n");
	run_init(&r);
	run_len(&r, ctl, sizeof(ctl) - 1);
	assert_string_equal(r.out, GREETING
	    "501 5.1.7 Bad sender address syntax\r\n"
	    "501 5.1.7 Bad sender address syntax\r\n" OK_MAIL
	    "501 5.1.3 Bad recipient address syntax\r\n");
	run_free(&r);
}

/* Brackets optional, spaces after the colon, a source route, case. */
static void
t_address_forms(void **state)
{
	struct session_run r;

	(void)state;
	run_init(&r);
	run(&r, "mail from: bare@x.test\r\n"
	    "rcpt to:plain@y.test\r\n"
	    "Rcpt To: <@relay.test,@r2.test:routed@z.test>\r\n"
	    "RCPT TO:<\xc3\xa9t\xc3\xa9@utf8.test>  \r\n"
	    "data\r\nx\r\n.\r\n");
	assert_string_equal(r.out, GREETING OK_MAIL OK_RCPT OK_RCPT OK_RCPT
	    GO_AHEAD QUEUED);
	assert_int_equal(r.ncalls, 1);
	assert_string_equal(r.calls[0].sender, "bare@x.test");
	assert_string_equal(r.calls[0].rcpts, "plain@y.test,routed@z.test,"
	    "\xc3\xa9t\xc3\xa9@utf8.test");
	run_free(&r);
}

static void
t_parameters(void **state)
{
	struct session_run r;

	(void)state;
	run_init(&r);
	run(&r, "MAIL FROM:<a@x> BODY=8BITMIME SIZE=100 SMTPUTF8 RET=HDRS "
	    "ENVID=abc\r\n"
	    "RCPT TO:<b@y> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@y\r\n"
	    "RCPT TO:<c@y> FOO=1\r\n"
	    "RCPT TO:<c@y> NOTIFY=\r\n"
	    "RSET\r\n"
	    "MAIL FROM:<a@x> BODY=BINARYMIME\r\n"
	    "MAIL FROM:<a@x> SIZE=x\r\n"
	    "MAIL FROM:<a@x> SIZE=-1\r\n"
	    "MAIL FROM:<a@x> SMTPUTF8=yes\r\n"
	    "MAIL FROM:<a@x> RET=ALL\r\n"
	    "MAIL FROM:<a@x> AUTH=<>\r\n"
	    "MAIL FROM:<a@x> body=7bit\r\n");
	assert_string_equal(r.out, GREETING OK_MAIL OK_RCPT
	    "555 5.5.4 Unsupported option: FOO\r\n"
	    "501 5.5.4 Bad NOTIFY parameter syntax\r\n" OK
	    "501 5.5.4 Bad BODY parameter syntax\r\n"
	    "501 5.5.4 Bad message size syntax\r\n"
	    "501 5.5.4 Bad message size syntax\r\n"
	    "501 5.5.4 Bad SMTPUTF8 parameter syntax\r\n"
	    "501 5.5.4 Bad RET parameter syntax\r\n"
	    "555 5.5.4 Unsupported option: AUTH\r\n"
	    OK_MAIL);
	run_free(&r);
}

static void
t_size_limit(void **state)
{
	struct session_run r;
	char script[1024], body[201];

	(void)state;
	memset(body, 'b', 200);
	body[200] = '\0';
	run_init(&r);
	r.p.max_size = 100;
	/* 98 octets + CRLF = 100: exactly the limit, accepted. */
	(void)snprintf(script, sizeof(script), "MAIL FROM:<a@x> SIZE=101\r\n"
	    "MAIL FROM:<a@x> SIZE=100\r\nRCPT TO:<b@y>\r\nDATA\r\n"
	    "%.98s\r\n.\r\n"
	    "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n%s\r\n.\r\n"
	    "QUIT\r\n", body, body);
	run(&r, script);
	assert_int_equal(r.st, ST_OK);
	assert_string_equal(r.out, GREETING
	    "552 5.3.4 Message size exceeds fixed limit\r\n"
	    OK_MAIL OK_RCPT GO_AHEAD QUEUED
	    OK_MAIL OK_RCPT GO_AHEAD
	    "552 5.3.4 Error: message file too big\r\n" BYE);
	assert_int_equal(r.ncalls, 1);
	assert_int_equal(r.calls[0].len, 100);
	run_free(&r);
}

/* A bare LF counts as CRLF, as in message_read(): 99 + LF is 101. */
static void
t_size_limit_bare_lf(void **state)
{
	struct session_run r;
	char script[1024], body[100];

	(void)state;
	memset(body, 'b', 99);
	body[99] = '\0';
	run_init(&r);
	r.p.max_size = 100;
	(void)snprintf(script, sizeof(script),
	    "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n%.98s\n.\r\n"
	    "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n%s\n.\r\n"
	    "QUIT\r\n", body, body);
	run(&r, script);
	assert_int_equal(r.st, ST_OK);
	assert_string_equal(r.out, GREETING
	    OK_MAIL OK_RCPT GO_AHEAD QUEUED
	    OK_MAIL OK_RCPT GO_AHEAD
	    "552 5.3.4 Error: message file too big\r\n" BYE);
	assert_int_equal(r.ncalls, 1);
	assert_int_equal(r.calls[0].len, 99);
	run_free(&r);
}

static void
t_too_many_recipients(void **state)
{
	struct session_run r;
	char *script, *p;
	size_t i, cap = 64 + 1001 * 40;

	(void)state;
	p = script = malloc(cap);
	assert_non_null(script);
	p += snprintf(p, cap, "MAIL FROM:<a@x>\r\n");
	for (i = 0; i < 1001; i++)
		p += snprintf(p, cap - (size_t)(p - script),
		    "RCPT TO:<r%zu@y>\r\n", i);
	(void)snprintf(p, cap - (size_t)(p - script), "DATA\r\nx\r\n.\r\n");
	run_init(&r);
	run(&r, script);
	assert_int_equal(count(r.out, OK_RCPT), 1000);
	assert_int_equal(count(r.out,
	    "452 4.5.3 Error: too many recipients\r\n"), 1);
	assert_non_null(strstr(r.out, OK_RCPT
	    "452 4.5.3 Error: too many recipients\r\n" GO_AHEAD QUEUED));
	assert_int_equal(r.ncalls, 1);
	assert_int_equal(r.calls[0].nrcpt, 1000);
	run_free(&r);
	free(script);
}

/* 512 octets with CRLF is the limit; the rest of a longer line is
 * skipped, and the session goes on. */
static void
t_line_length_limit(void **state)
{
	struct session_run r;
	char *script, *big;
	size_t bigsz = 100000;
	char x506[507];

	(void)state;
	memset(x506, 'x', 506);
	x506[506] = '\0';
	big = malloc(bigsz + 1);
	script = malloc(bigsz + 4096);
	assert_non_null(big);
	assert_non_null(script);
	memset(big, 'y', bigsz);
	big[bigsz] = '\0';
	/* "NOOP " + 505 = 510 octets: fits; one more does not. */
	(void)snprintf(script, bigsz + 4096, "NOOP %.505s\r\nNOOP %s\r\n"
	    "MAIL FROM:<%s>\r\nNOOP\r\nQUIT\r\n", x506, x506, big);
	run_init(&r);
	run(&r, script);
	assert_int_equal(r.st, ST_OK);
	assert_string_equal(r.out, GREETING OK
	    "500 5.5.2 Error: line too long\r\n"
	    "500 5.5.2 Error: line too long\r\n" OK BYE);
	run_free(&r);
	/* Over-long and never ended: one reply, then EOF. */
	run_init(&r);
	run(&r, big);
	assert_int_equal(r.st, ST_OK);
	assert_string_equal(r.out, GREETING
	    "500 5.5.2 Error: line too long\r\n");
	run_free(&r);
	free(big);
	free(script);
}

/* DATA lines have no limit: a 300 KB line arrives whole. */
static void
t_long_data_line(void **state)
{
	struct session_run r;
	size_t n = 300000, i;
	const char *head = "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n";
	char *script = malloc(n + 256);

	(void)state;
	assert_non_null(script);
	i = strlcpy(script, head, n + 256);
	memset(script + i, 'z', n);
	i += n;
	(void)strlcpy(script + i, "\r\n.\r\nQUIT\r\n", n + 256 - i);
	run_init(&r);
	run(&r, script);
	assert_string_equal(r.out, GREETING OK_MAIL OK_RCPT GO_AHEAD QUEUED
	    BYE);
	assert_int_equal(r.ncalls, 1);
	assert_int_equal(r.calls[0].len, n + 2);
	assert_int_equal(strspn(r.calls[0].data, "z"), n);
	assert_string_equal(r.calls[0].data + n, "\r\n");
	run_free(&r);
	free(script);
}

static void
t_eof_without_quit(void **state)
{
	struct session_run r;

	(void)state;
	/* Mid-DATA: the transaction is dropped, nothing submitted. */
	run_init(&r);
	run(&r, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nhalf a mess");
	assert_int_equal(r.st, ST_OK);
	assert_string_equal(r.out, GREETING OK_MAIL OK_RCPT GO_AHEAD);
	assert_int_equal(r.ncalls, 0);
	run_free(&r);
	/* EOF right after "\r\n." (the dot's line end never came). */
	run_init(&r);
	run(&r, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nbody\r\n.");
	assert_int_equal(r.st, ST_OK);
	assert_string_equal(r.out, GREETING OK_MAIL OK_RCPT GO_AHEAD);
	assert_int_equal(r.ncalls, 0);
	run_free(&r);
	/* After the envelope; and an empty stdin. */
	expect_session("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n",
	    GREETING OK_MAIL OK_RCPT);
	expect_session("", GREETING);
	/* A last command without its line end still runs. */
	expect_session("NOOP\r\nQUIT", GREETING OK BYE);
}

static void
t_submit_failures(void **state)
{
	struct session_run r;
	const char *txn = "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nx\r\n"
	    ".\r\n";
	char script[512];

	(void)state;
	(void)snprintf(script, sizeof(script), "%s%sQUIT\r\n", txn, txn);
	/* Failure without a reply: the generic 451. */
	run_init(&r);
	r.status = ST_CANTCREAT;
	run(&r, script);
	assert_string_equal(r.out, GREETING
	    OK_MAIL OK_RCPT GO_AHEAD QUEUE_451 OK_MAIL OK_RCPT GO_AHEAD
	    QUEUE_451 BYE);
	assert_int_equal(r.ncalls, 2);
	run_free(&r);
	/* The callback's own reply goes out as is, first line only. */
	run_init(&r);
	r.status = ST_PERM;
	r.answer = "550 5.1.1 <b@y>: Recipient address rejected\r\nmore";
	run(&r, script);
	assert_string_equal(r.out, GREETING OK_MAIL OK_RCPT GO_AHEAD
	    "550 5.1.1 <b@y>: Recipient address rejected\r\n"
	    OK_MAIL OK_RCPT GO_AHEAD
	    "550 5.1.1 <b@y>: Recipient address rejected\r\n" BYE);
	run_free(&r);
	/* A malformed reply is replaced, by the status. */
	run_init(&r);
	r.answer = "queued!";
	run(&r, txn);
	assert_string_equal(r.out, GREETING OK_MAIL OK_RCPT GO_AHEAD OK);
	run_free(&r);
}

/* The spool cannot be created: 451 instead of 354, the session goes on. */
static void
t_spool_unwritable(void **state)
{
	struct session_run r;

	(void)state;
	run_init(&r);
	r.p.spool_dir = "/nonexistent/postino-test";
	run(&r, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nRSET\r\n"
	    "QUIT\r\n");
	assert_int_equal(r.st, ST_OK);
	assert_string_equal(r.out, GREETING OK_MAIL OK_RCPT QUEUE_451 OK
	    BYE);
	assert_int_equal(r.ncalls, 0);
	run_free(&r);
}

/* A child process writes script into a pipe, chunk octets at a time. */
static pid_t
feeder(const char *script, size_t len, size_t chunk, int *rfd)
{
	int fds[2];
	size_t off;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		(void)close(fds[0]);
		for (off = 0; off < len; off += chunk)
			if (write(fds[1], script + off, len - off < chunk ?
			    len - off : chunk) == -1)
				_exit(1);
		_exit(0);
	}
	(void)close(fds[1]);
	*rfd = fds[0];
	return pid;
}

static void
reap(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Every buffer boundary: one byte per read gives the same dialogue and
 * the same data as everything in one read. */
static void
t_byte_at_a_time(void **state)
{
	struct session_run whole, bytes;
	char script[4096], longline[1001];
	size_t len;
	int fd;
	pid_t pid;

	(void)state;
	memset(longline, 'L', 1000);
	longline[1000] = '\0';
	len = (size_t)snprintf(script, sizeof(script),
	    "EHLO [127.0.0.1]\r\nNOOP %s\r\nMAIL FROM:<a@x>\r\n"
	    "RCPT TO:<b@y>\r\nDATA\r\n..a\r\n.\rb\r\n\r\n"
	    "..\r\n.\r\nMAIL FROM:<c@x>\nRCPT TO:<d@y>\nDATA\n.x\n..\n.\n"
	    "QUIT\r\n", longline);
	run_init(&whole);
	run_len(&whole, script, len);
	run_init(&bytes);
	pid = feeder(script, len, 1, &fd);
	run_fd(&bytes, fd);
	(void)close(fd);
	reap(pid);
	assert_int_equal(bytes.st, ST_OK);
	assert_string_equal(bytes.out, whole.out);
	assert_non_null(strstr(whole.out, "500 5.5.2 Error: line too long"));
	assert_int_equal(bytes.ncalls, 2);
	assert_int_equal(whole.ncalls, 2);
	assert_string_equal(whole.calls[0].data, ".a\r\n.\rb\r\n\r\n"
	    ".\r\n");
	assert_string_equal(whole.calls[1].data, ".x\n.\n");
	assert_string_equal(bytes.calls[0].data, whole.calls[0].data);
	assert_string_equal(bytes.calls[1].data, whole.calls[1].data);
	run_free(&whole);
	run_free(&bytes);
}

static long long
ms_since(const struct timespec *t0)
{
	struct timespec t1;

	(void)clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000LL +
	    (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Run with a pipe whose writer stays silent after prefix. */
static void
run_stalled(struct session_run *r, const char *prefix, long long *elapsed)
{
	struct timespec t0;
	int fds[2];

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], prefix, strlen(prefix)),
	    (ssize_t)strlen(prefix));
	r->p.idle_timeout = 1;
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	run_fd(r, fds[0]);
	*elapsed = ms_since(&t0);
	(void)close(fds[0]);
	(void)close(fds[1]);
}

static void
t_idle_timeout(void **state)
{
	struct session_run r;
	long long ms;

	(void)state;
	/* A command line that never ends does not count as activity. */
	run_init(&r);
	run_stalled(&r, "NOOP\r\nNOO", &ms);
	assert_int_equal(r.st, ST_TEMP);
	assert_non_null(strstr(r.err.text, "timeout"));
	assert_string_equal(r.out, GREETING OK
	    "421 4.4.2 " HOST " Error: timeout exceeded\r\n");
	assert_true(ms >= 900 && ms < 5000);
	run_free(&r);
	/* Silence inside DATA: nothing submitted. */
	run_init(&r);
	run_stalled(&r, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\npart",
	    &ms);
	assert_int_equal(r.st, ST_TEMP);
	assert_string_equal(r.out, GREETING OK_MAIL OK_RCPT GO_AHEAD
	    "421 4.4.2 " HOST " Error: timeout exceeded\r\n");
	assert_int_equal(r.ncalls, 0);
	assert_true(ms >= 900 && ms < 5000);
	run_free(&r);
}

/* Commands keep the session alive past the idle timeout in total. */
static void
t_activity_resets_timeout(void **state)
{
	struct session_run r;
	int fds[2], i;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		(void)close(fds[0]);
		for (i = 0; i < 3; i++) {
			if (write(fds[1], "NOOP\r\n", 6) != 6)
				_exit(1);
			(void)usleep(600000);
		}
		_exit(write(fds[1], "QUIT\r\n", 6) == 6 ? 0 : 1);
	}
	(void)close(fds[1]);
	run_init(&r);
	r.p.idle_timeout = 1;
	run_fd(&r, fds[0]);
	(void)close(fds[0]);
	reap(pid);
	assert_int_equal(r.st, ST_OK);
	assert_string_equal(r.out, GREETING OK OK OK BYE);
	run_free(&r);
}

/* A message arriving slowly, in pieces closer together than the idle
 * timeout, is not cut even when the whole takes longer. */
static void
t_slow_data_not_cut(void **state)
{
	struct session_run r;
	int fds[2], i;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static const char head[] = "MAIL FROM:<a@x>\r\n"
		    "RCPT TO:<b@y>\r\nDATA\r\n";

		(void)close(fds[0]);
		if (write(fds[1], head, sizeof(head) - 1) == -1)
			_exit(1);
		for (i = 0; i < 4; i++) {
			(void)usleep(400000);
			if (write(fds[1], "slow\r\n", 6) != 6)
				_exit(1);
		}
		_exit(write(fds[1], ".\r\nQUIT\r\n", 9) == 9 ? 0 : 1);
	}
	(void)close(fds[1]);
	run_init(&r);
	r.p.idle_timeout = 1;
	run_fd(&r, fds[0]);
	(void)close(fds[0]);
	reap(pid);
	assert_int_equal(r.st, ST_OK);
	assert_string_equal(r.out, GREETING OK_MAIL OK_RCPT GO_AHEAD QUEUED
	    BYE);
	assert_int_equal(r.ncalls, 1);
	assert_string_equal(r.calls[0].data, "slow\r\nslow\r\nslow\r\n"
	    "slow\r\n");
	run_free(&r);
}

/* The caller has gone: no crash, no hang, ST_IOERR. */
static void
t_epipe(void **state)
{
	struct session_run r;
	int in, fds[2];

	(void)state;
	run_init(&r);
	in = memfd_with("NOOP\r\n", 6);
	assert_int_equal(pipe(fds), 0);
	(void)close(fds[0]);
	r.p.in_fd = in;
	r.p.out_fd = fds[1];
	r.st = smtpd_run(&r.p, &r.err);
	assert_int_equal(r.st, ST_IOERR);
	assert_non_null(strstr(r.err.text, "Broken pipe"));
	(void)close(fds[1]);
	(void)close(in);
	run_free(&r);
}

static void
t_bad_params(void **state)
{
	struct smtpd_params p;
	struct error err;

	(void)state;
	memset(&p, 0, sizeof(p));
	error_clear(&err);
	assert_int_equal(smtpd_run(&p, &err), ST_SOFTWARE);
	assert_int_equal(err.status, ST_SOFTWARE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_greeting_and_quit),
		cmocka_unit_test(t_symfony_session),
		cmocka_unit_test(t_ehlo),
		cmocka_unit_test(t_lf_client_without_helo),
		cmocka_unit_test(t_data_edge_lines),
		cmocka_unit_test(t_empty_data),
		cmocka_unit_test(t_two_transactions_and_rset),
		cmocka_unit_test(t_helo_resets),
		cmocka_unit_test(t_sequence_errors),
		cmocka_unit_test(t_unknown_and_bad_lines),
		cmocka_unit_test(t_address_syntax),
		cmocka_unit_test(t_address_forms),
		cmocka_unit_test(t_parameters),
		cmocka_unit_test(t_size_limit),
		cmocka_unit_test(t_size_limit_bare_lf),
		cmocka_unit_test(t_too_many_recipients),
		cmocka_unit_test(t_line_length_limit),
		cmocka_unit_test(t_long_data_line),
		cmocka_unit_test(t_eof_without_quit),
		cmocka_unit_test(t_submit_failures),
		cmocka_unit_test(t_spool_unwritable),
		cmocka_unit_test(t_byte_at_a_time),
		cmocka_unit_test(t_idle_timeout),
		cmocka_unit_test(t_activity_resets_timeout),
		cmocka_unit_test(t_slow_data_not_cut),
		cmocka_unit_test(t_epipe),
		cmocka_unit_test(t_bad_params),
	};

	/* As main() does: a vanished reader must give EPIPE, not a kill. */
	(void)signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
