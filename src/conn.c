/*
 * conn.c: connections to the hub. Name resolution and a non-blocking
 * connect to each address in turn, the per-step deadline (absolute,
 * CLOCK_MONOTONIC, waited for with poll(2): no alarm(), no longjmp), the
 * buffered line reader and the write loop. The byte transport is a
 * back end (struct conn_ops, src/conn_impl.h): the plain socket one
 * lives here, the TLS one in tls.c; nothing here knows which is in use.
 * STARTTLS goes through the back end too (conn_start_tls), so that this
 * is the one file that calls into tls.c and a test's stub back end can
 * fake or refuse TLS. The transcript is smtp.c's, which knows what must
 * be redacted.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conn_impl.h"

static ssize_t
plain_read(struct conn *c, void *buf, size_t len, int *want_write)
{
	*want_write = 0;
	return recv(c->fd, buf, len, 0);
}

static ssize_t
plain_write(struct conn *c, const void *buf, size_t len, int *want_write)
{
	*want_write = 1;
	/* MSG_NOSIGNAL: a hub that hangs up must not kill us with SIGPIPE. */
	return send(c->fd, buf, len, MSG_NOSIGNAL);
}

static void
plain_close(struct conn *c)
{
	if (c->fd != -1)
		(void)close(c->fd);
	c->fd = -1;
}

/* A socket gets TLS from tls.c, which then switches c to its back end. */
static int
plain_start_tls(struct conn *c, const struct tls_params *p,
    struct error *err)
{
	return tls_start(c, p, err);
}

const struct conn_ops conn_plain_ops = {
	plain_read, plain_write, plain_close, plain_start_tls, "plain"
};

/* Used as given, as DESIGN says of durations; capped to fit poll(). */
static int
timeout_ms(int timeout_s)
{
	if (timeout_s < 0)
		timeout_s = 0;
	return timeout_s > INT_MAX / 1000 ? INT_MAX : timeout_s * 1000;
}

void
conn_init(struct conn *c, int timeout_s)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->ops = &conn_plain_ops;
	c->timeout_ms = timeout_ms(timeout_s);
	conn_step(c);
}

struct conn *
conn_new(int timeout_s)
{
	struct conn *c;

	if ((c = malloc(sizeof(*c))) == NULL)
		return NULL;
	conn_init(c, timeout_s);
	return c;
}

void
conn_cap_timeout(struct conn *c, int max_ms)
{
	if (c->timeout_ms > max_ms)
		c->timeout_ms = max_ms;
}

void
conn_step(struct conn *c)
{
	c->deadline_ms = deadline_in(c->timeout_ms);
}

int
conn_wait(struct conn *c, int want_write, struct error *err)
{
	return deadline_wait(c->fd, want_write, c->deadline_ms, c->timeout_ms,
	    err);
}

static int
set_nonblock(int fd)
{
	int fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1)
		return -1;
	return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/*
 * A TCP socket to the hub is tuned against the two waits that cost a
 * small transaction 40 ms each on Linux. TCP_NODELAY: a command goes out
 * as soon as it is written (Nagle would hold it for the ACK of the last
 * one). TCP_QUICKACK: see conn_quickack().
 */
static void
tune_tcp(struct conn *c)
{
	int one = 1;

	c->tcp = setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one)) == 0;
}

void
conn_attach(struct conn *c, int fd, const struct conn_ops *ops)
{
	c->fd = fd;
	c->ops = ops != NULL ? ops : &conn_plain_ops;
	c->rlen = c->roff = 0;
	(void)set_nonblock(fd);
	tune_tcp(c);	/* fails, harmlessly, on a socketpair */
}

/*
 * SourceAddress: bind fd to c->source before connecting. 1 when the
 * source is of another family than the hub's address (skip it), -1 on
 * error (why says), 0 when bound or there is nothing to bind.
 */
static int
bind_source(const struct conn *c, int fd, int family, char *why,
    size_t whylen)
{
	struct addrinfo hints, *src;
	int rc;

	if (c->source[0] == '\0')
		return 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
	if (getaddrinfo(c->source, NULL, &hints, &src) != 0) {
		(void)snprintf(why, whylen, "SourceAddress %s is not an %s "
		    "address", c->source, family == AF_INET6 ? "IPv6" :
		    "IPv4");
		return 1;
	}
	rc = bind(fd, src->ai_addr, src->ai_addrlen);
	freeaddrinfo(src);
	if (rc == -1) {
		(void)snprintf(why, whylen, "bind to SourceAddress %s: %s",
		    c->source, strerror(errno));
		return -1;
	}
	return 0;
}

/* One address: non-blocking connect, bounded by a fresh step deadline. */
static int
connect_one(struct conn *c, const struct addrinfo *ai, char *why,
    size_t whylen)
{
	struct error werr;
	socklen_t slen;
	int fd, soerr = 0;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, ai->ai_protocol);
	if (fd == -1) {
		(void)snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	c->fd = fd;
	conn_step(c);
	if (bind_source(c, fd, ai->ai_family, why, whylen) != 0)
		goto fail;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
		if (errno != EINPROGRESS && errno != EINTR) {
			soerr = errno;
		} else if (conn_wait(c, 1, &werr) != ST_OK) {
			(void)strlcpy(why, werr.text, whylen);
			goto fail;
		} else {
			slen = sizeof(soerr);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr,
			    &slen) == -1)
				soerr = errno;
		}
	}
	if (soerr != 0) {
		(void)strlcpy(why, strerror(soerr), whylen);
		goto fail;
	}
	tune_tcp(c);
	return 0;
fail:
	(void)close(fd);
	c->fd = -1;
	return -1;
}

/*
 * A name lookup bounded by the step timeout: getaddrinfo(3) alone may
 * wait for the resolver's own retries, and a PHP request or a cron job
 * must not hang on a slow DNS. A numeric address needs no lookup at all.
 * On timeout the request is abandoned, not freed: glibc's helper thread
 * may still write to it, and the process ends soon anyway.
 */
static int
lookup(const char *host, const char *port, int family, int timeout_ms,
    struct addrinfo **res)
{
	struct addrinfo hints;
	struct gaicb *req, *list[1];
	struct addrinfo *req_hints;
	struct timespec ts;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(host, port, &hints, res) == 0)
		return 0;
	req = calloc(1, sizeof(*req));
	req_hints = calloc(1, sizeof(*req_hints));
	if (req == NULL || req_hints == NULL) {
		free(req);
		free(req_hints);
		return EAI_MEMORY;
	}
	req_hints->ai_family = family;
	req_hints->ai_socktype = SOCK_STREAM;
	req->ar_name = host;
	req->ar_service = port;
	req->ar_request = req_hints;
	list[0] = req;
	if ((rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL)) != 0) {
		free(req);
		free(req_hints);
		return rc;
	}
	ts.tv_sec = timeout_ms / 1000;
	ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
	while ((rc = gai_error(req)) == EAI_INPROGRESS)
		if (gai_suspend((const struct gaicb *const *)list, 1, &ts) ==
		    EAI_AGAIN) {
			(void)gai_cancel(req);
			return EAI_AGAIN;	/* req abandoned on purpose */
		}
	if (rc == 0)
		*res = req->ar_result;
	free(req);
	free(req_hints);
	return rc;
}

static int
resolve(const char *host, const char *port, int family, int timeout_ms,
    struct addrinfo **res, struct error *err)
{
	int rc = lookup(host, port, family, timeout_ms, res);

	if (rc == 0)
		return ST_OK;
	if (family != AF_UNSPEC && (rc == EAI_NONAME || rc == EAI_ADDRFAMILY ||
	    rc == EAI_NODATA || rc == EAI_FAMILY))
		return error_set(err, ST_TEMP, "mailhub '%s' has no %s address "
		    "(AddressFamily=%s)", host, family == AF_INET ? "IPv4" :
		    "IPv6", family == AF_INET ? "ipv4" : "ipv6");
	if (rc == EAI_SERVICE)
		return error_set(err, ST_CONFIG,
		    "unknown port '%s' for mailhub '%s'", port, host);
	if (rc == EAI_SYSTEM)
		return error_set(err, ST_TEMP, "cannot resolve mailhub '%s': "
		    "%s", host, strerror(errno));
	/* EAI_NONAME too: a hub that does not resolve must not lose mail. */
	return error_set(err, ST_TEMP, "cannot resolve mailhub '%s': %s",
	    host, rc == EAI_AGAIN ? "no answer in time" : gai_strerror(rc));
}

/* Connect c to the first of res's addresses that answers. */
static int
open_first(struct conn *c, struct addrinfo *res, struct error *err)
{
	struct addrinfo *ai;
	char addr[sizeof(c->addr)], why[ERR_MAX / 2] = "no address";
	int rc, tried = 0;

	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, addr,
		    sizeof(addr), NULL, 0, NI_NUMERICHOST) != 0)
			(void)strlcpy(addr, "?", sizeof(addr));
		tried++;
		if (connect_one(c, ai, why, sizeof(why)) == 0) {
			(void)strlcpy(c->addr, addr, sizeof(c->addr));
			c->ops = &conn_plain_ops;
			c->rlen = c->roff = 0;
			return ST_OK;
		}
		/* Keep the address with the reason: the last one is shown. */
		(void)strlcpy(c->addr, addr, sizeof(c->addr));
	}
	rc = error_set(err, ST_TEMP, "cannot connect to mailhub %s[%s]:%s: "
	    "%s%s", c->host, c->addr, c->port, why,
	    tried > 1 ? " (and every other address)" : "");
	c->addr[0] = '\0';
	return rc;
}

static int
set_names(struct conn *c, const char *host, const char *port,
    struct error *err)
{
	if (strlcpy(c->host, host, sizeof(c->host)) >= sizeof(c->host) ||
	    strlcpy(c->port, port, sizeof(c->port)) >= sizeof(c->port))
		return error_set(err, ST_CONFIG, "mailhub '%.*s' or port "
		    "'%.*s' too long", 80, host, 80, port);
	return ST_OK;
}

int
conn_open(struct conn *c, const char *host, const char *port,
    struct error *err)
{
	struct addrinfo *res;
	int rc;

	if ((rc = set_names(c, host, port, err)) != ST_OK ||
	    (rc = resolve(host, port, c->family, c->timeout_ms, &res,
	    err)) != ST_OK)
		return rc;
	rc = open_first(c, res, err);
	freeaddrinfo(res);
	return rc;
}

/*
 * Connect c to addr, one numeric address of host, and to nothing else:
 * the connection keeps host's name (SNI, the certificate's name check,
 * relay=). postino check --hub goes through every address this way.
 */
static int
open_addr(struct conn *c, const char *host, const char *addr,
    const char *port, struct error *err)
{
	struct addrinfo hints, *res;
	int rc;

	if ((rc = set_names(c, host, port, err)) != ST_OK)
		return rc;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = c->family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST;
	if ((rc = getaddrinfo(addr, port, &hints, &res)) != 0)
		return error_set(err, rc == EAI_SERVICE ? ST_CONFIG : ST_TEMP,
		    "mailhub %s[%.64s]:%s: %s", host, addr, port,
		    gai_strerror(rc));
	rc = open_first(c, res, err);
	freeaddrinfo(res);
	return rc;
}

/* The family of a numeric SourceAddress; AF_UNSPEC when none is set. */
static int
source_family(const char *source)
{
	unsigned char buf[sizeof(struct in6_addr)];

	if (source == NULL || source[0] == '\0')
		return AF_UNSPEC;
	if (inet_pton(AF_INET, source, buf) == 1)
		return AF_INET;
	return inet_pton(AF_INET6, source, buf) == 1 ? AF_INET6 : AF_UNSPEC;
}

static int
has_addr(char (*addrs)[CONN_ADDR_MAX], size_t n, const char *addr)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(addrs[i], addr) == 0)
			return 1;
	return 0;
}

int
conn_resolve(const char *host, const char *port, int family,
    const char *source, int timeout_s, char (*addrs)[CONN_ADDR_MAX],
    size_t max, size_t *n, struct error *err)
{
	struct addrinfo *res, *ai;
	char addr[CONN_ADDR_MAX];
	int rc, sfam = source_family(source);

	*n = 0;
	if ((rc = resolve(host, port, family, timeout_ms(timeout_s), &res,
	    err)) != ST_OK)
		return rc;
	for (ai = res; ai != NULL && *n < max; ai = ai->ai_next) {
		/* A delivery skips these: the source cannot reach them. */
		if (sfam != AF_UNSPEC && ai->ai_family != sfam)
			continue;
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, addr,
		    sizeof(addr), NULL, 0, NI_NUMERICHOST) != 0 ||
		    has_addr(addrs, *n, addr))
			continue;
		(void)strlcpy(addrs[(*n)++], addr, CONN_ADDR_MAX);
	}
	freeaddrinfo(res);
	if (*n == 0)
		return error_set(err, ST_TEMP, "mailhub '%s' has no %s address "
		    "(SourceAddress=%s)", host, sfam == AF_INET ? "IPv4" :
		    "IPv6", source);
	return ST_OK;
}

int
conn_connect(struct conn **out, const char *host, const char *port,
    int timeout_s, struct error *err)
{
	return conn_connect_from(out, host, port, timeout_s, NULL, AF_UNSPEC,
	    err);
}

/* conn_connect_from and conn_connect_addr: addr NULL means every one. */
static int
connect_new(struct conn **out, const char *host, const char *addr,
    const char *port, int timeout_s, const char *source, int family,
    struct error *err)
{
	struct conn *c;
	int rc;

	*out = NULL;
	if ((c = conn_new(timeout_s)) == NULL)
		return error_set(err, ST_OSERR, "out of memory");
	if (source != NULL && strlcpy(c->source, source, sizeof(c->source)) >=
	    sizeof(c->source)) {
		conn_free(c);
		return error_set(err, ST_CONFIG, "SourceAddress too long");
	}
	c->family = family;
	rc = addr != NULL ? open_addr(c, host, addr, port, err) :
	    conn_open(c, host, port, err);
	if (rc != ST_OK) {
		conn_free(c);
		return rc;
	}
	*out = c;
	return ST_OK;
}

int
conn_connect_from(struct conn **out, const char *host, const char *port,
    int timeout_s, const char *source, int family, struct error *err)
{
	return connect_new(out, host, NULL, port, timeout_s, source, family,
	    err);
}

int
conn_connect_addr(struct conn **out, const char *host, const char *addr,
    const char *port, int timeout_s, const char *source, int family,
    struct error *err)
{
	return connect_new(out, host, addr, port, timeout_s, source, family,
	    err);
}

int
conn_start_tls(struct conn *c, const struct tls_params *p,
    struct error *err)
{
	struct tls_params with_host;
	int rc;

	if (c->fd == -1)
		return error_set(err, ST_SOFTWARE, "TLS: not connected");
	if (c->ops->start_tls == NULL)
		return error_set(err, ST_SOFTWARE, "TLS: already on");
	if (p->servername == NULL) {
		with_host = *p;
		with_host.servername = c->host;
		p = &with_host;
	}
	if ((rc = c->ops->start_tls(c, p, err)) != ST_OK)
		return rc;
	/* Anything read before now was plaintext; it must not be mixed in. */
	c->rlen = c->roff = 0;
	return ST_OK;
}

const char *
conn_tls_info(const struct conn *c)
{
	return c->tls_desc;
}

void
conn_tls_cert(const struct conn *c, struct tls_cert *cert)
{
	tls_peer_cert(c, cert);
}

const char *
conn_host(const struct conn *c)
{
	return c->host;
}

void
conn_relay(const struct conn *c, char *buf, size_t len)
{
	(void)snprintf(buf, len, "%s[%.60s]:%s", c->host, c->addr, c->port);
}

/* Read more bytes into the buffer, waiting as the back end asks. */
static int
fill(struct conn *c, struct error *err)
{
	ssize_t n;
	int ww, rc;

	if (c->roff == c->rlen)
		c->roff = c->rlen = 0;
	else if (c->roff > 0) {
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rlen -= c->roff;
		c->roff = 0;
	}
	for (;;) {
		if (c->fd == -1)
			return error_set(err, ST_TEMP, "not connected");
		ww = 0;
		n = c->ops->read(c, c->rbuf + c->rlen,
		    sizeof(c->rbuf) - c->rlen, &ww);
		/* After every read from the socket, TLS records or none. */
		conn_quickack(c);
		if (n > 0) {
			c->rlen += (size_t)n;
			return ST_OK;
		}
		if (n == 0)
			return error_set(err, ST_TEMP,
			    "connection closed by hub");
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return error_set(err, ST_TEMP, "read from hub: %s",
			    strerror(errno));
		if ((rc = conn_wait(c, ww, err)) != ST_OK)
			return rc;
	}
}

int
conn_read_line(struct conn *c, char *buf, size_t len, size_t *outlen,
    struct error *err)
{
	const char *start, *nl;
	size_t n = 0, chunk;
	int rc;

	if (len == 0)
		return error_set(err, ST_SOFTWARE, "conn_read_line: no room");
	for (;;) {
		if (c->roff == c->rlen && (rc = fill(c, err)) != ST_OK)
			return rc;
		start = c->rbuf + c->roff;
		nl = memchr(start, '\n', c->rlen - c->roff);
		chunk = nl != NULL ? (size_t)(nl - start) : c->rlen - c->roff;
		/* Room for a CR that the NUL will replace. */
		if (chunk > len - n)
			goto toolong;
		memcpy(buf + n, start, chunk);
		n += chunk;
		c->roff += chunk;
		if (nl != NULL) {
			c->roff++;
			break;
		}
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n > len - 1)
		goto toolong;
	buf[n] = '\0';
	if (outlen != NULL)
		*outlen = n;
	return ST_OK;
toolong:
	buf[0] = '\0';
	return error_set(err, ST_TEMP, "reply line too long (more than %zu "
	    "octets)", len - 1);
}

int
conn_read_some(struct conn *c, void *buf, size_t len, size_t *got,
    struct error *err)
{
	ssize_t n;
	int ww, rc;

	*got = 0;
	if (c->roff < c->rlen) {
		*got = c->rlen - c->roff < len ? c->rlen - c->roff : len;
		memcpy(buf, c->rbuf + c->roff, *got);
		c->roff += *got;
		return ST_OK;
	}
	for (;;) {
		if (c->fd == -1)
			return error_set(err, ST_TEMP, "not connected");
		ww = 0;
		if ((n = c->ops->read(c, buf, len, &ww)) >= 0) {
			*got = (size_t)n;
			return ST_OK;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return error_set(err, ST_TEMP, "read: %s",
			    strerror(errno));
		if ((rc = conn_wait(c, ww, err)) != ST_OK)
			return rc;
	}
}

int
conn_write(struct conn *c, const void *buf, size_t len, struct error *err)
{
	const char *p = buf;
	ssize_t n;
	int ww, rc;

	while (len > 0) {
		if (c->fd == -1)
			return error_set(err, ST_TEMP, "not connected");
		ww = 1;
		n = c->ops->write(c, p, len, &ww);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if ((rc = conn_wait(c, ww, err)) != ST_OK)
				return rc;
			continue;
		}
		if (n == 0 || errno == EPIPE || errno == ECONNRESET)
			return error_set(err, ST_TEMP,
			    "connection closed by hub");
		return error_set(err, ST_TEMP, "write to hub: %s",
		    strerror(errno));
	}
	return ST_OK;
}

size_t
conn_pending(const struct conn *c)
{
	return c->rlen - c->roff;
}

void
conn_close(struct conn *c)
{
	if (c->ops != NULL && c->ops->close != NULL)
		c->ops->close(c);
	if (c->fd != -1)
		(void)close(c->fd);
	c->fd = -1;
	c->ops = &conn_plain_ops;
	c->rlen = c->roff = 0;
}

void
conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	conn_close(c);
	freezero(c, sizeof(*c));
}
