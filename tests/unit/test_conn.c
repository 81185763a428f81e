/*
 * test_conn.c: connections (conn.c). Connecting over loopback (IPv4,
 * IPv6, refused, every address in turn), the buffered line reader
 * (CRLF, refills, limits, EOF), deadlines (silence, trickling, renewal
 * per step, a hub that does not read), writes to a hub that hung up,
 * back ends plugged in through struct conn_ops, and TLS started through
 * the back end (conn_start_tls) as seen from conn.c.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <arpa/inet.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"
#include "conn_impl.h"

static double
since(const struct timespec *t0)
{
	struct timespec t1;

	(void)clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* A listening socket on a loopback address; port gets its number. */
static int
listener(int family, char *port, size_t portlen)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t slen;
	int fd;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		slen = sizeof(*sin);
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		slen = sizeof(*sin6);
	}
	if ((fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (bind(fd, (struct sockaddr *)&ss, slen) == -1 ||
	    listen(fd, 4) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &slen) == -1) {
		(void)close(fd);
		return -1;
	}
	(void)snprintf(port, portlen, "%d", ntohs(family == AF_INET ?
	    sin->sin_port : sin6->sin6_port));
	return fd;
}

/* A connected pair: c reads sv[0] through the plain back end. */
static int
pair(struct conn *c, int timeout_s)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	conn_init(c, timeout_s);
	conn_attach(c, sv[0], NULL);
	return sv[1];
}

/* Fork a writer that sends each piece after ms of quiet, then exits. */
static pid_t
writer(int fd, const char *const *pieces, int ms)
{
	pid_t pid;
	size_t i;

	fflush(NULL);
	if ((pid = fork()) != 0)
		return pid;
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; pieces[i] != NULL; i++) {
		(void)poll(NULL, 0, ms);
		if (write(fd, pieces[i], strlen(pieces[i])) == -1)
			break;
	}
	_exit(0);
}

static void
reap(pid_t pid)
{
	int status;

	(void)kill(pid, SIGTERM);
	assert_int_equal(waitpid(pid, &status, 0), pid);
}

/* ----------------------------------------------------- connecting */

static void
test_open_v4(void **state)
{
	char port[PORT_MAX];
	struct error err;
	struct conn c;
	int lfd, one = 0, fl;
	socklen_t len = sizeof(one);

	(void)state;
	lfd = listener(AF_INET, port, sizeof(port));
	assert_true(lfd != -1);
	conn_init(&c, 2);
	error_clear(&err);
	assert_int_equal(conn_open(&c, "127.0.0.1", port, &err), ST_OK);
	assert_string_equal(c.addr, "127.0.0.1");
	assert_string_equal(c.host, "127.0.0.1");
	assert_string_equal(c.port, port);
	assert_int_equal(getsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one,
	    &len), 0);
	assert_int_not_equal(one, 0);
	fl = fcntl(c.fd, F_GETFL);
	assert_true(fl != -1 && (fl & O_NONBLOCK));
	assert_true(fcntl(c.fd, F_GETFD) & FD_CLOEXEC);
	conn_close(&c);
	assert_int_equal(c.fd, -1);
	conn_close(&c);		/* twice is harmless */
	(void)close(lfd);
}

static void
test_open_v6(void **state)
{
	char port[PORT_MAX];
	struct error err;
	struct conn c;
	int lfd;

	(void)state;
	if ((lfd = listener(AF_INET6, port, sizeof(port))) == -1)
		skip();
	conn_init(&c, 2);
	assert_int_equal(conn_open(&c, "::1", port, &err), ST_OK);
	assert_string_equal(c.addr, "::1");
	conn_close(&c);
	(void)close(lfd);
}

static void
test_open_refused(void **state)
{
	char port[PORT_MAX];
	struct error err;
	struct conn c;
	int lfd;

	(void)state;
	/* A port that was just free: nobody listens there now. */
	lfd = listener(AF_INET, port, sizeof(port));
	assert_true(lfd != -1);
	(void)close(lfd);
	conn_init(&c, 2);
	error_clear(&err);
	assert_int_equal(conn_open(&c, "127.0.0.1", port, &err), ST_TEMP);
	assert_int_equal(c.fd, -1);
	assert_non_null(strstr(err.text, "127.0.0.1"));
	assert_non_null(strstr(err.text, "Connection refused"));
}

static void
test_open_bad_port(void **state)
{
	struct error err;
	struct conn c;

	(void)state;
	conn_init(&c, 2);
	error_clear(&err);
	assert_int_equal(conn_open(&c, "127.0.0.1", "nosuchsvc",
	    &err), ST_CONFIG);
	assert_non_null(strstr(err.text, "nosuchsvc"));
}

/*
 * A name with two addresses, without DNS: "two.test" resolves to
 * 127.0.0.2 then 127.0.0.1 (getaddrinfo(3) interposed; every other name
 * goes to the real one). glibc's freeaddrinfo frees such a chain.
 */
typedef int	gai_fn(const char *, const char *, const struct addrinfo *,
		    struct addrinfo **);

/*
 * "dual.test": ::1 then 127.0.0.1, as localhost is on most systems,
 * restricted by the hints' family (AddressFamily).
 */
static int
dual(gai_fn *real, const char *service, const struct addrinfo *hints,
    struct addrinfo **res)
{
	struct addrinfo h, *a = NULL, *b = NULL;
	int family = hints != NULL ? hints->ai_family : AF_UNSPEC;

	memset(&h, 0, sizeof(h));
	h.ai_socktype = SOCK_STREAM;
	h.ai_flags = AI_NUMERICHOST;
	if (family != AF_INET && real("::1", service, &h, &a) != 0)
		return EAI_SYSTEM;
	if (family != AF_INET6 && real("127.0.0.1", service, &h, &b) != 0) {
		if (a != NULL)
			freeaddrinfo(a);
		return EAI_SYSTEM;
	}
	if (a != NULL)
		a->ai_next = b;
	*res = a != NULL ? a : b;
	return 0;
}

int
getaddrinfo(const char *node, const char *service,
    const struct addrinfo *hints, struct addrinfo **res)
{
	int (*real)(const char *, const char *, const struct addrinfo *,
	    struct addrinfo **);
	struct addrinfo h, *a, *b;
	int rc;

	*(void **)&real = dlsym(RTLD_NEXT, "getaddrinfo");
	if (real == NULL)
		return EAI_SYSTEM;
	if (node != NULL && strcmp(node, "dual.test") == 0)
		return dual(real, service, hints, res);
	if (node == NULL || strcmp(node, "two.test") != 0)
		return real(node, service, hints, res);
	memset(&h, 0, sizeof(h));
	h.ai_family = AF_INET;
	h.ai_socktype = SOCK_STREAM;
	h.ai_flags = AI_NUMERICHOST;
	if ((rc = real("127.0.0.2", service, &h, &a)) != 0)
		return rc;
	if ((rc = real("127.0.0.1", service, &h, &b)) != 0) {
		freeaddrinfo(a);
		return rc;
	}
	a->ai_next = b;
	*res = a;
	return 0;
}

/* Every address of a name in order: the first refuses, the next takes. */
static void
test_open_every_address(void **state)
{
	char port[PORT_MAX];
	struct error err;
	struct conn c;
	int lfd;

	(void)state;
	lfd = listener(AF_INET, port, sizeof(port));
	assert_true(lfd != -1);
	conn_init(&c, 2);
	error_clear(&err);
	assert_int_equal(conn_open(&c, "two.test", port, &err), ST_OK);
	assert_string_equal(c.addr, "127.0.0.1");
	assert_string_equal(c.host, "two.test");
	conn_close(&c);
	(void)close(lfd);

	/* Nobody at either: the last address and reason are named. */
	conn_init(&c, 2);
	assert_int_equal(conn_open(&c, "two.test", port, &err), ST_TEMP);
	assert_non_null(strstr(err.text, "cannot connect to mailhub "
	    "two.test[127.0.0.1]:"));
	assert_non_null(strstr(err.text, "(and every other address)"));
}

/* IPv6 and IPv4 of one name (localhost): both are tried, in order. */
static void
test_open_v6_then_v4(void **state)
{
	char port[PORT_MAX];
	struct error err;
	struct conn *c;
	int lfd;

	(void)state;
	lfd = listener(AF_INET, port, sizeof(port));
	assert_true(lfd != -1);
	assert_int_equal(conn_connect(&c, "dual.test", port, 2, &err), ST_OK);
	assert_string_equal(c->addr, "127.0.0.1");	/* ::1 refused */
	conn_free(c);
	(void)close(lfd);
	if ((lfd = listener(AF_INET6, port, sizeof(port))) == -1)
		skip();
	assert_int_equal(conn_connect(&c, "dual.test", port, 2, &err), ST_OK);
	assert_string_equal(c->addr, "::1");
	conn_free(c);
	(void)close(lfd);
}

/* AddressFamily: only that family's addresses are tried. */
static void
test_address_family(void **state)
{
	char port[PORT_MAX];
	struct error err;
	struct conn *c;
	int lfd;

	(void)state;
	if ((lfd = listener(AF_INET6, port, sizeof(port))) == -1)
		skip();
	assert_int_equal(conn_connect_from(&c, "dual.test", port, 2, NULL,
	    AF_INET, &err), ST_TEMP);
	assert_null(c);
	assert_non_null(strstr(err.text, "dual.test[127.0.0.1]"));
	assert_int_equal(conn_connect_from(&c, "dual.test", port, 2, NULL,
	    AF_INET6, &err), ST_OK);
	assert_string_equal(c->addr, "::1");
	conn_free(c);
	(void)close(lfd);
	/* A name without an address of the family says so. */
	assert_int_equal(conn_connect_from(&c, "127.0.0.1", port, 2, NULL,
	    AF_INET6, &err), ST_TEMP);
	assert_non_null(strstr(err.text, "mailhub '127.0.0.1' has no IPv6 "
	    "address (AddressFamily=ipv6)"));
}

/* SourceAddress: the connection comes from it; another family skips. */
static void
test_source_address(void **state)
{
	char port[PORT_MAX], peer[64];
	struct sockaddr_storage ss;
	socklen_t slen = sizeof(ss);
	struct error err;
	struct conn *c;
	int lfd, afd;

	(void)state;
	lfd = listener(AF_INET, port, sizeof(port));
	assert_true(lfd != -1);
	assert_int_equal(conn_connect_from(&c, "127.0.0.1", port, 2,
	    "127.0.0.2", AF_UNSPEC, &err), ST_OK);
	afd = accept(lfd, (struct sockaddr *)&ss, &slen);
	assert_true(afd != -1);
	assert_int_equal(getnameinfo((struct sockaddr *)&ss, slen, peer,
	    sizeof(peer), NULL, 0, NI_NUMERICHOST), 0);
	assert_string_equal(peer, "127.0.0.2");
	(void)close(afd);
	conn_free(c);
	assert_int_equal(conn_connect_from(&c, "127.0.0.1", port, 2, "::1",
	    AF_UNSPEC, &err), ST_TEMP);
	assert_non_null(strstr(err.text, "SourceAddress ::1 is not an IPv4 "
	    "address"));
	/* Not a local address: the bind fails, named. */
	assert_int_equal(conn_connect_from(&c, "127.0.0.1", port, 2,
	    "192.0.2.1", AF_UNSPEC, &err), ST_TEMP);
	assert_non_null(strstr(err.text, "bind to SourceAddress 192.0.2.1"));
	(void)close(lfd);
}

/* ------------------------------------------------------ line reader */

static void
test_read_lines(void **state)
{
	static const char text[] = "one\r\ntwo\nthree\r\n\r\nbare\rcr\r\n";
	char buf[64];
	struct error err;
	struct conn c;
	size_t n;
	int w;

	(void)state;
	w = pair(&c, 2);
	assert_int_equal(write(w, text, sizeof(text) - 1),
	    (ssize_t)sizeof(text) - 1);
	assert_int_equal(conn_read_line(&c, buf, sizeof(buf), &n, &err),
	    ST_OK);
	assert_string_equal(buf, "one");
	assert_int_equal(n, 3);
	assert_int_equal(conn_pending(&c), sizeof(text) - 1 - 5);
	assert_int_equal(conn_read_line(&c, buf, sizeof(buf), &n, &err),
	    ST_OK);
	assert_string_equal(buf, "two");
	assert_int_equal(conn_read_line(&c, buf, sizeof(buf), &n, &err),
	    ST_OK);
	assert_string_equal(buf, "three");
	assert_int_equal(conn_read_line(&c, buf, sizeof(buf), &n, &err),
	    ST_OK);
	assert_string_equal(buf, "");
	assert_int_equal(n, 0);
	assert_int_equal(conn_read_line(&c, buf, sizeof(buf), NULL, &err),
	    ST_OK);
	assert_string_equal(buf, "bare\rcr");
	assert_int_equal(conn_pending(&c), 0);
	conn_close(&c);
	(void)close(w);
}

static void
test_read_refills(void **state)
{
	static const char *const pieces[] = { "ab", "c\r", "\nde", "f\r\n",
	    NULL };
	char buf[64];
	struct error err;
	struct conn c;
	pid_t pid;
	int w;

	(void)state;
	w = pair(&c, 2);
	pid = writer(w, pieces, 30);
	assert_int_equal(conn_read_line(&c, buf, sizeof(buf), NULL, &err),
	    ST_OK);
	assert_string_equal(buf, "abc");
	assert_int_equal(conn_read_line(&c, buf, sizeof(buf), NULL, &err),
	    ST_OK);
	assert_string_equal(buf, "def");
	reap(pid);
	conn_close(&c);
	(void)close(w);
}

static void
test_read_limits(void **state)
{
	char buf[8], *big, *line;
	struct error err;
	struct conn c;
	size_t n;
	int w;

	(void)state;
	/* Seven octets fit a buffer of eight; eight do not. */
	w = pair(&c, 2);
	assert_int_equal(write(w, "1234567\r\n12345678\r\n", 19), 19);
	assert_int_equal(conn_read_line(&c, buf, sizeof(buf), &n, &err),
	    ST_OK);
	assert_string_equal(buf, "1234567");
	assert_int_equal(conn_read_line(&c, buf, sizeof(buf), &n, &err),
	    ST_TEMP);
	assert_non_null(strstr(err.text, "too long"));
	conn_close(&c);
	(void)close(w);

	/* A line longer than the internal buffer, into a large one. */
	big = malloc(10002);
	line = malloc(10001);
	assert_non_null(big);
	assert_non_null(line);
	memset(big, 'x', 10000);
	memcpy(big + 10000, "\r\n", 2);
	w = pair(&c, 2);
	assert_int_equal(write(w, big, 10002), 10002);
	if (conn_read_line(&c, line, 10001, &n, &err) != ST_OK)
		fail_msg("%s", err.text);
	assert_int_equal(n, 10000);
	assert_int_equal(strspn(line, "x"), 10000);
	conn_close(&c);
	(void)close(w);
	free(big);
	free(line);
}

static void
test_read_eof(void **state)
{
	char buf[64];
	struct error err;
	struct conn c;
	int w;

	(void)state;
	w = pair(&c, 2);
	assert_int_equal(write(w, "whole\r\nhal", 10), 10);
	(void)close(w);
	assert_int_equal(conn_read_line(&c, buf, sizeof(buf), NULL, &err),
	    ST_OK);
	assert_int_equal(conn_read_line(&c, buf, sizeof(buf), NULL, &err),
	    ST_TEMP);
	assert_string_equal(err.text, "connection closed by hub");
	assert_int_equal(conn_read_line(&c, buf, sizeof(buf), NULL, &err),
	    ST_TEMP);
	conn_close(&c);
}

/* -------------------------------------------------------- deadlines */

static void
test_deadline_silent(void **state)
{
	struct timespec t0;
	char buf[64];
	struct error err;
	struct conn c;
	double t;
	int w;

	(void)state;
	w = pair(&c, 1);
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	conn_step(&c);
	assert_int_equal(conn_read_line(&c, buf, sizeof(buf), NULL, &err),
	    ST_TEMP);
	t = since(&t0);
	assert_true(t >= 0.95 && t < 1.6);
	assert_non_null(strstr(err.text, "timed out after 1 s"));
	conn_close(&c);
	(void)close(w);
}

static void
test_deadline_trickle(void **state)
{
	static const char *const bytes[] = { "2", "2", "0", " ", "s", "l",
	    "o", "w", "l", "y", "\r", "\n", NULL };
	struct timespec t0;
	char buf[64];
	struct error err;
	struct conn c;
	pid_t pid;
	double t;
	int w;

	(void)state;
	w = pair(&c, 1);
	pid = writer(w, bytes, 200);
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	conn_step(&c);
	assert_int_equal(conn_read_line(&c, buf, sizeof(buf), NULL, &err),
	    ST_TEMP);
	t = since(&t0);
	assert_true(t >= 0.95 && t < 1.6);
	reap(pid);
	conn_close(&c);
	(void)close(w);
}

/* Each step has its own deadline: two slow lines, each in time. */
static void
test_deadline_per_step(void **state)
{
	static const char *const lines[] = { "one\r\n", "two\r\n", NULL };
	char buf[64];
	struct error err;
	struct conn c;
	pid_t pid;
	int w;

	(void)state;
	w = pair(&c, 1);
	pid = writer(w, lines, 700);
	conn_step(&c);
	assert_int_equal(conn_read_line(&c, buf, sizeof(buf), NULL, &err),
	    ST_OK);
	conn_step(&c);
	assert_int_equal(conn_read_line(&c, buf, sizeof(buf), NULL, &err),
	    ST_OK);
	assert_string_equal(buf, "two");
	reap(pid);
	conn_close(&c);
	(void)close(w);
}

/* ----------------------------------------------------------- writes */

static void
test_write_stalled(void **state)
{
	struct timespec t0;
	struct error err;
	struct conn c;
	char *big;
	double t;
	int w;

	(void)state;
	/* The peer never reads: the socket buffer fills, then the clock. */
	big = calloc(1, 16 << 20);
	assert_non_null(big);
	w = pair(&c, 1);
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	conn_step(&c);
	assert_int_equal(conn_write(&c, big, 16 << 20, &err), ST_TEMP);
	t = since(&t0);
	assert_true(t >= 0.95 && t < 1.6);
	assert_non_null(strstr(err.text, "timed out"));
	conn_close(&c);
	(void)close(w);
	free(big);
}

static void
test_write_hangup(void **state)
{
	struct error err;
	struct conn c;
	char port[PORT_MAX];
	int lfd, afd;

	(void)state;
	/* TCP, where a write to a closed peer raises SIGPIPE by default. */
	lfd = listener(AF_INET, port, sizeof(port));
	assert_true(lfd != -1);
	conn_init(&c, 2);
	assert_int_equal(conn_open(&c, "127.0.0.1", port, &err), ST_OK);
	afd = accept(lfd, NULL, NULL);
	assert_true(afd != -1);
	(void)close(afd);
	(void)poll(NULL, 0, 50);
	/* The first write may still be taken; a later one must fail. */
	(void)conn_write(&c, "x\r\n", 3, &err);
	(void)poll(NULL, 0, 50);
	assert_int_equal(conn_write(&c, "y\r\n", 3, &err), ST_TEMP);
	assert_string_equal(err.text, "connection closed by hub");
	conn_close(&c);
	(void)close(lfd);
}

/* ------------------------------------------------------ back ends */

/* A back end that hands out at most one byte per call and says
 * "would block" every other call: the loops must cope. */
struct stingy {
	int	 reads, writes, blocked;
};

static struct stingy stingy_count;

static ssize_t
stingy_read(struct conn *c, void *buf, size_t len, int *want_write)
{
	(void)len;
	stingy_count.reads++;
	if (stingy_count.reads % 2 == 1) {
		stingy_count.blocked++;
		*want_write = 0;
		errno = EAGAIN;
		return -1;
	}
	return conn_plain_ops.read(c, buf, 1, want_write);
}

static ssize_t
stingy_write(struct conn *c, const void *buf, size_t len, int *want_write)
{
	(void)len;
	stingy_count.writes++;
	if (stingy_count.writes % 2 == 1) {
		*want_write = 1;
		errno = EAGAIN;
		return -1;
	}
	return conn_plain_ops.write(c, buf, 1, want_write);
}

static const struct conn_ops stingy_ops = {
	stingy_read, stingy_write, NULL, NULL, "stingy"
};

static void
test_backend(void **state)
{
	char buf[64];
	struct error err;
	struct conn c;
	int sv[2];

	(void)state;
	memset(&stingy_count, 0, sizeof(stingy_count));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	conn_init(&c, 2);
	conn_attach(&c, sv[0], &stingy_ops);
	assert_int_equal(write(sv[1], "hello\r\n", 7), 7);
	assert_int_equal(conn_read_line(&c, buf, sizeof(buf), NULL, &err),
	    ST_OK);
	assert_string_equal(buf, "hello");
	assert_true(stingy_count.reads >= 14);
	assert_int_equal(conn_write(&c, "abcd", 4, &err), ST_OK);
	assert_int_equal(stingy_count.writes, 8);
	assert_int_equal(read(sv[1], buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "abcd", 4);
	/* No close in the back end: conn_close closes the fd itself. */
	conn_close(&c);
	assert_int_equal(c.fd, -1);
	assert_int_equal(read(sv[1], buf, sizeof(buf)), 0);
	(void)close(sv[1]);
}

/* A back end whose TLS start is recorded, and refused on request. */
struct fake_tls {
	int			 calls;
	int			 refuse;
	char			 servername[HOST_MAX];
	const struct tls_params	*params;
};

static struct fake_tls fake_tls;

static int
fake_start_tls(struct conn *c, const struct tls_params *p,
    struct error *err)
{
	fake_tls.calls++;
	(void)strlcpy(fake_tls.servername, p->servername,
	    sizeof(fake_tls.servername));
	fake_tls.params = p;
	if (fake_tls.refuse)
		return error_set(err, ST_CONFIG, "refused by the back end");
	(void)strlcpy(c->tls_desc, "TLSv1.3 FAKE verified",
	    sizeof(c->tls_desc));
	return ST_OK;
}

static const struct conn_ops fake_tls_ops = {
	NULL, NULL, NULL, fake_start_tls, "fake-tls"
};

static void
test_start_tls_dispatch(void **state)
{
	struct tls_params p;
	struct error err;
	struct conn c;
	int peer;

	(void)state;
	memset(&fake_tls, 0, sizeof(fake_tls));
	memset(&p, 0, sizeof(p));
	peer = pair(&c, 2);
	c.ops = &fake_tls_ops;
	(void)strlcpy(c.host, "hub.test", sizeof(c.host));
	assert_string_equal(conn_tls_info(&c), "");
	/* Plaintext read ahead must not survive into the TLS stream. */
	memcpy(c.rbuf, "250 early\r\n", 11);
	c.rlen = 11;
	assert_int_equal(conn_start_tls(&c, &p, &err), ST_OK);
	assert_int_equal(fake_tls.calls, 1);
	/* No servername given: the host the conn was opened to. */
	assert_string_equal(fake_tls.servername, "hub.test");
	assert_int_equal(conn_pending(&c), 0);
	assert_string_equal(conn_tls_info(&c), "TLSv1.3 FAKE verified");
	/* A servername given is passed as is, p itself. */
	p.servername = "other.test";
	assert_int_equal(conn_start_tls(&c, &p, &err), ST_OK);
	assert_string_equal(fake_tls.servername, "other.test");
	assert_ptr_equal(fake_tls.params, &p);
	/* The back end's refusal is the caller's, unchanged. */
	fake_tls.refuse = 1;
	c.rlen = 11;
	c.roff = 0;
	assert_int_equal(conn_start_tls(&c, &p, &err), ST_CONFIG);
	assert_string_equal(err.text, "refused by the back end");
	assert_int_equal(conn_pending(&c), 11);
	c.ops = &conn_plain_ops;
	conn_close(&c);
	(void)close(peer);
}

static void
test_start_tls_refused(void **state)
{
	struct tls_params p;
	struct error err;
	struct conn c;
	int peer;

	(void)state;
	memset(&p, 0, sizeof(p));
	/* A back end without start_tls (TLS's own: it is already on). */
	peer = pair(&c, 2);
	c.ops = &stingy_ops;
	assert_int_equal(conn_start_tls(&c, &p, &err), ST_SOFTWARE);
	assert_string_equal(err.text, "TLS: already on");
	conn_close(&c);
	(void)close(peer);
	/* Nothing connected. */
	conn_init(&c, 2);
	assert_int_equal(conn_start_tls(&c, &p, &err), ST_SOFTWARE);
	assert_string_equal(err.text, "TLS: not connected");
	/* The plain back end has one: tls.c's. */
	assert_non_null(conn_plain_ops.start_tls);
}

static void
test_connect_alloc(void **state)
{
	char port[PORT_MAX], relay[128];
	struct conn *c = (struct conn *)&port;
	struct error err;
	int lfd;

	(void)state;
	lfd = listener(AF_INET, port, sizeof(port));
	assert_true(lfd != -1);
	error_clear(&err);
	assert_int_equal(conn_connect(&c, "127.0.0.1", port, 3, &err), ST_OK);
	assert_non_null(c);
	assert_string_equal(conn_host(c), "127.0.0.1");
	conn_relay(c, relay, sizeof(relay));
	assert_int_equal(strncmp(relay, "127.0.0.1[127.0.0.1]:", 21), 0);
	assert_string_equal(relay + 21, port);
	assert_string_equal(conn_tls_info(c), "");
	assert_int_equal(c->timeout_ms, 3000);
	conn_cap_timeout(c, 2000);
	assert_int_equal(c->timeout_ms, 2000);
	conn_cap_timeout(c, 5000);
	assert_int_equal(c->timeout_ms, 2000);
	conn_free(c);
	conn_free(NULL);
	(void)close(lfd);

	/* Refused: nothing left, *out NULL. */
	lfd = listener(AF_INET, port, sizeof(port));
	(void)close(lfd);
	c = (struct conn *)&port;
	assert_int_equal(conn_connect(&c, "127.0.0.1", port, 2, &err),
	    ST_TEMP);
	assert_null(c);
	assert_non_null(strstr(err.text, "cannot connect to mailhub"));
}

/* The addresses of a name, as a delivery tries them, and the filters. */
static void
test_resolve(void **state)
{
	char addrs[CONN_ADDRS_MAX][CONN_ADDR_MAX];
	struct error err;
	size_t n;

	(void)state;
	assert_int_equal(conn_resolve("dual.test", "25", AF_UNSPEC, NULL, 2,
	    addrs, CONN_ADDRS_MAX, &n, &err), ST_OK);
	assert_int_equal(n, 2);
	assert_string_equal(addrs[0], "::1");
	assert_string_equal(addrs[1], "127.0.0.1");
	/* At most max. */
	assert_int_equal(conn_resolve("dual.test", "25", AF_UNSPEC, "", 2,
	    addrs, 1, &n, &err), ST_OK);
	assert_int_equal(n, 1);
	assert_string_equal(addrs[0], "::1");
	/* AddressFamily. */
	assert_int_equal(conn_resolve("dual.test", "25", AF_INET, NULL, 2,
	    addrs, CONN_ADDRS_MAX, &n, &err), ST_OK);
	assert_int_equal(n, 1);
	assert_string_equal(addrs[0], "127.0.0.1");
	/* A SourceAddress leaves out what it cannot reach. */
	assert_int_equal(conn_resolve("dual.test", "25", AF_UNSPEC, "::1", 2,
	    addrs, CONN_ADDRS_MAX, &n, &err), ST_OK);
	assert_int_equal(n, 1);
	assert_string_equal(addrs[0], "::1");
	assert_int_equal(conn_resolve("127.0.0.1", "25", AF_UNSPEC, "::1", 2,
	    addrs, CONN_ADDRS_MAX, &n, &err), ST_TEMP);
	assert_int_equal(n, 0);
	assert_non_null(strstr(err.text, "mailhub '127.0.0.1' has no IPv6 "
	    "address (SourceAddress=::1)"));
	assert_int_equal(conn_resolve("127.0.0.1", "nosuchsvc", AF_UNSPEC,
	    NULL, 2, addrs, CONN_ADDRS_MAX, &n, &err), ST_CONFIG);
}

/* One address of a name: that one only, under the name. */
static void
test_connect_addr(void **state)
{
	char port[PORT_MAX], relay[128];
	struct error err;
	struct conn *c;
	int lfd;

	(void)state;
	lfd = listener(AF_INET, port, sizeof(port));
	assert_true(lfd != -1);
	assert_int_equal(conn_connect_addr(&c, "dual.test", "127.0.0.1", port,
	    2, NULL, AF_UNSPEC, &err), ST_OK);
	/* The name stays: SNI and the certificate's name check use it. */
	assert_string_equal(conn_host(c), "dual.test");
	assert_string_equal(c->addr, "127.0.0.1");
	conn_relay(c, relay, sizeof(relay));
	assert_int_equal(strncmp(relay, "dual.test[127.0.0.1]:", 21), 0);
	conn_free(c);
	/* ::1 is not served (the port is IPv4's): no other address tried. */
	c = (struct conn *)&port;
	assert_int_equal(conn_connect_addr(&c, "dual.test", "::1", port, 2,
	    NULL, AF_UNSPEC, &err), ST_TEMP);
	assert_null(c);
	assert_non_null(strstr(err.text, "cannot connect to mailhub "
	    "dual.test[::1]:"));
	assert_null(strstr(err.text, "every other address"));
	/* SourceAddress binds here too. */
	assert_int_equal(conn_connect_addr(&c, "dual.test", "127.0.0.1", port,
	    2, "::1", AF_UNSPEC, &err), ST_TEMP);
	assert_non_null(strstr(err.text, "SourceAddress ::1 is not an IPv4 "
	    "address"));
	/* Only a numeric address: never a lookup of its own. */
	assert_int_equal(conn_connect_addr(&c, "dual.test", "localhost", port,
	    2, NULL, AF_UNSPEC, &err), ST_TEMP);
	assert_null(c);
	(void)close(lfd);
}

/* -------------------------------------------------------- latency */

/* Whether the socket acknowledges the next segment at once. */
static int
quickack_on(int fd)
{
	socklen_t len;
	int v = -1;

	len = sizeof(v);
	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &v, &len),
	    0);
	return v;
}

/*
 * Quick ACKs are re-armed after every read from the hub: Linux leaves
 * quick-ACK mode as soon as we answer what we read (its "pingpong"
 * heuristic), and a hub with Nagle on then holds its next reply until
 * our delayed ACK, 40 ms later (issue 11: the EHLO reply after TLS 1.3
 * session tickets). getsockopt(TCP_QUICKACK) reports the mode; without
 * the re-arming it reads 0 from the second round on.
 */
static void
test_quickack_rearmed(void **state)
{
	char port[PORT_MAX], buf[64];
	struct error err;
	struct conn c;
	int lfd, afd, i;

	(void)state;
	lfd = listener(AF_INET, port, sizeof(port));
	assert_true(lfd != -1);
	conn_init(&c, 2);
	assert_int_equal(conn_open(&c, "127.0.0.1", port, &err), ST_OK);
	afd = accept(lfd, NULL, NULL);
	assert_true(afd != -1);
	for (i = 0; i < 4; i++) {
		assert_int_equal(write(afd, "250 ok\r\n", 8), 8);
		assert_int_equal(conn_read_line(&c, buf, sizeof(buf), NULL,
		    &err), ST_OK);
		assert_string_equal(buf, "250 ok");
		assert_int_equal(quickack_on(c.fd), 1);
		/* An answer right away: the kernel's cue for delayed ACKs. */
		assert_int_equal(conn_write(&c, "NOOP\r\n", 6, &err), ST_OK);
		assert_int_equal(read(afd, buf, sizeof(buf)), 6);
	}
	conn_close(&c);
	(void)close(afd);
	(void)close(lfd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_v4),
		cmocka_unit_test(test_open_v6),
		cmocka_unit_test(test_open_refused),
		cmocka_unit_test(test_open_bad_port),
		cmocka_unit_test(test_open_every_address),
		cmocka_unit_test(test_open_v6_then_v4),
		cmocka_unit_test(test_address_family),
		cmocka_unit_test(test_source_address),
		cmocka_unit_test(test_read_lines),
		cmocka_unit_test(test_read_refills),
		cmocka_unit_test(test_read_limits),
		cmocka_unit_test(test_read_eof),
		cmocka_unit_test(test_deadline_silent),
		cmocka_unit_test(test_deadline_trickle),
		cmocka_unit_test(test_deadline_per_step),
		cmocka_unit_test(test_write_stalled),
		cmocka_unit_test(test_write_hangup),
		cmocka_unit_test(test_backend),
		cmocka_unit_test(test_start_tls_dispatch),
		cmocka_unit_test(test_start_tls_refused),
		cmocka_unit_test(test_connect_alloc),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_connect_addr),
		cmocka_unit_test(test_quickack_rearmed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
