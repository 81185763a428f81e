/*
 * stubconn.c: the scripted in-memory hub of stubconn.h. The connection's
 * descriptor is a timerfd, never a socket: it becomes readable only when
 * a TRICKLE byte is due, so that conn.c's real poll(2) and deadlines run
 * unchanged (a HANG waits for the step deadline; a trickle that outlasts
 * it times out as against a real hub).
 */
#include <sys/timerfd.h>
#include <sys/types.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stubconn.h"

static const char *const op_names[] = {
	"END", "SEND", "EXPECT", "WRITE", "DATA", "HANG", "TRICKLE", "TLS",
	"TLS_FAIL", "FAIL", "DATA_ANY", "CALL"
};

static struct stubconn *
stub_of(struct conn *c)
{
	return c->backend;
}

static const struct stub_step *
cur(const struct stubconn *st)
{
	return &st->script[st->step];
}

static void
failed(struct stubconn *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
failed(struct stubconn *st, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (st->failure[0] != '\0')
		return;
	n = snprintf(st->failure, sizeof(st->failure), "step %zu (%s): ",
	    st->step, op_names[cur(st)->op]);
	va_start(ap, fmt);
	(void)vsnprintf(st->failure + n, sizeof(st->failure) - (size_t)n, fmt,
	    ap);
	va_end(ap);
}

static void
grow(char **buf, size_t *cap, size_t need)
{
	size_t ncap = *cap > 0 ? *cap : 256;

	while (ncap < need)
		ncap *= 2;
	if (ncap != *cap) {
		*buf = realloc(*buf, ncap);
		if (*buf == NULL)
			abort();
		*cap = ncap;
	}
}

static void
arm(struct stubconn *st, int ms)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = ms / 1000;
	its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
	if (ms == 0)
		its.it_value.tv_nsec = 1;	/* 0 would disarm */
	if (timerfd_settime(st->timer, 0, &its, NULL) == -1)
		abort();
}

static void
disarm(struct stubconn *st)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	(void)timerfd_settime(st->timer, 0, &its, NULL);
}

static void
next(struct stubconn *st)
{
	if (cur(st)->op != STUB_END)
		st->step++;
	st->inlen = 0;
	st->line_start = 0;
}

/* The hub's own moves: SENDs go out at once, a TRICKLE starts. */
static void
pump(struct stubconn *st)
{
	const struct stub_step *s;
	size_t n;

	for (;;) {
		s = cur(st);
		if (s->op == STUB_TRICKLE && !st->trickling) {
			st->trickling = 1;
			st->trickled = 0;
			arm(st, s->n);
		}
		if (s->op == STUB_CALL) {
			if (st->on_call == NULL)
				failed(st, "CALL without on_call");
			else
				st->on_call(st, st->call_arg);
			st->calls++;
			next(st);
			continue;
		}
		if (s->op != STUB_SEND)
			return;
		n = s->n > 0 ? (size_t)s->n : strlen(s->s);
		grow(&st->out, &st->outcap, st->outlen + n);
		memcpy(st->out + st->outlen, s->s, n);
		st->outlen += n;
		next(st);
	}
}

/* The next TRICKLE byte when its time has come, else EAGAIN. */
static ssize_t
trickle(struct stubconn *st, void *buf)
{
	const struct stub_step *s = cur(st);
	unsigned long long ticks;

	if (read(st->timer, &ticks, sizeof(ticks)) != (ssize_t)sizeof(ticks))
		return -1;	/* EAGAIN: conn_wait polls the timer */
	((char *)buf)[0] = s->s[st->trickled++];
	if (s->s[st->trickled] == '\0') {
		st->trickling = 0;
		disarm(st);
		next(st);
		pump(st);
	} else
		arm(st, s->n);
	return 1;
}

static ssize_t
stub_read(struct conn *c, void *buf, size_t len, int *want_write)
{
	struct stubconn *st = stub_of(c);
	size_t n;

	*want_write = 0;
	st->reads++;
	pump(st);
	if (st->outoff < st->outlen) {
		n = st->outlen - st->outoff;
		if (n > len)
			n = len;
		if (st->read_max > 0 && n > st->read_max)
			n = st->read_max;
		memcpy(buf, st->out + st->outoff, n);
		st->outoff += n;
		return (ssize_t)n;
	}
	switch (cur(st)->op) {
	case STUB_END:
		return 0;
	case STUB_FAIL:
		errno = cur(st)->n;
		next(st);
		return -1;
	case STUB_HANG:
		errno = EAGAIN;
		return -1;
	case STUB_TRICKLE:
		return trickle(st, buf);
	default:
		failed(st, "the client reads, but the hub waits for it");
		errno = EDEADLK;
		return -1;
	}
}

/* A line the client wrote, for EXPECT. */
static void
expect_line(struct stubconn *st)
{
	size_t n = st->inlen - 1;

	if (n > 0 && st->in[n - 1] == '\r')
		n--;
	if (n != strlen(cur(st)->s) || memcmp(st->in, cur(st)->s, n) != 0)
		failed(st, "got \"%.*s\", want \"%s\"", (int)n, st->in,
		    cur(st)->s);
	next(st);
	pump(st);
}

/* A line of DATA is complete: the end when it is ".". */
static void
data_line(struct stubconn *st)
{
	const char *want = cur(st)->s != NULL ? cur(st)->s : st->data_want;

	if (st->inlen - st->line_start != 3 ||
	    memcmp(st->in + st->line_start, ".\r\n", 3) != 0) {
		st->line_start = st->inlen;
		return;
	}
	if (cur(st)->op == STUB_DATA_ANY) {
		free(st->data_seen);
		if ((st->data_seen = strndup(st->in, st->inlen)) == NULL)
			abort();
	} else if (want == NULL || st->inlen != strlen(want) ||
	    memcmp(st->in, want, st->inlen) != 0)
		failed(st, "DATA of %zu octets differs (want %zu): %.200s",
		    st->inlen, want != NULL ? strlen(want) : 0, st->in);
	next(st);
	pump(st);
}

/* Take one byte the client wrote; -1 when the hub takes none now. */
static int
take(struct stubconn *st, char ch)
{
	enum stub_op op = cur(st)->op;

	if (op != STUB_EXPECT && op != STUB_DATA && op != STUB_DATA_ANY)
		return -1;
	grow(&st->in, &st->incap, st->inlen + 1);
	st->in[st->inlen++] = ch;
	if (ch != '\n')
		return 0;
	if (op == STUB_EXPECT)
		expect_line(st);
	else
		data_line(st);
	return 0;
}

static ssize_t
stub_write(struct conn *c, const void *buf, size_t len, int *want_write)
{
	struct stubconn *st = stub_of(c);
	const char *p = buf, *want;
	size_t n = len, i;

	*want_write = 1;
	st->writes++;
	pump(st);
	if (cur(st)->op == STUB_FAIL) {
		errno = cur(st)->n;
		next(st);
		return -1;
	}
	if (cur(st)->op == STUB_END) {
		errno = EPIPE;
		return -1;
	}
	if (cur(st)->op == STUB_WRITE) {
		want = cur(st)->s;
		if (len != strlen(want) || memcmp(p, want, len) != 0)
			failed(st, "one write of \"%.*s\", want \"%s\"",
			    (int)len, p, want);
		next(st);
		pump(st);
		return (ssize_t)len;
	}
	if (st->write_max > 0 && n > st->write_max)
		n = st->write_max;
	for (i = 0; i < n; i++)
		if (take(st, p[i]) == -1) {
			failed(st, "unexpected write \"%.*s\"", (int)(n - i),
			    p + i);
			errno = EPROTO;
			return i > 0 ? (ssize_t)i : -1;
		}
	return (ssize_t)n;
}

static void
stub_close(struct conn *c)
{
	struct stubconn *st = stub_of(c);

	st->closed = 1;
	pump(st);
	/* A silent hub, or a slow one that the client gave up on. */
	if (cur(st)->op == STUB_HANG || cur(st)->op == STUB_TRICKLE) {
		st->trickling = 0;
		next(st);
	}
	c->backend = NULL;
}

static int
stub_start_tls(struct conn *c, const struct tls_params *p,
    struct error *err)
{
	struct stubconn *st = stub_of(c);
	const struct stub_step *s;

	pump(st);
	s = cur(st);
	(void)strlcpy(st->tls_servername, p->servername != NULL ?
	    p->servername : "(null)", sizeof(st->tls_servername));
	if (s->op == STUB_TLS) {
		st->tls_started = 1;
		(void)strlcpy(c->tls_desc, st->tls_desc, sizeof(c->tls_desc));
		next(st);
		pump(st);
		return ST_OK;
	}
	if (s->op == STUB_TLS_FAIL) {
		next(st);
		pump(st);
		err->hint = (enum admin_hint)s->n;
		return error_set(err, ST_TEMP, "%s", s->s);
	}
	failed(st, "unexpected TLS start");
	return error_set(err, ST_TEMP, "stub: unexpected TLS start");
}

static const struct conn_ops stub_ops = {
	stub_read, stub_write, stub_close, stub_start_tls, "stub"
};

struct stubconn *
stubconn_new(const struct stub_step *script, const char *host,
    int timeout_s, struct conn **conn)
{
	struct stubconn *st;
	struct conn *c;
	int fd;

	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (c = conn_new(timeout_s)) == NULL ||
	    (fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK |
	    TFD_CLOEXEC)) == -1)
		abort();
	st->script = script;
	st->timer = fd;
	(void)strlcpy(st->tls_desc, "TLSv1.3 TLS_STUB verified",
	    sizeof(st->tls_desc));
	(void)strlcpy(c->host, host, sizeof(c->host));
	(void)strlcpy(c->addr, "127.0.0.1", sizeof(c->addr));
	(void)strlcpy(c->port, "25", sizeof(c->port));
	conn_attach(c, fd, &stub_ops);
	c->backend = st;
	*conn = c;
	return st;
}

int
stubconn_end(struct stubconn *st)
{
	int bad = 0;

	if (st->failure[0] != '\0') {
		fprintf(stderr, "stub hub: %s\n", st->failure);
		bad = 1;
	} else if (cur(st)->op != STUB_END) {
		fprintf(stderr, "stub hub: script stopped at step %zu (%s)\n",
		    st->step, op_names[cur(st)->op]);
		bad = 1;
	}
	free(st->out);
	free(st->in);
	free(st->data_seen);
	free(st);
	return bad;
}
