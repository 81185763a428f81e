/*
 * refclient.c: the floor of `make bench` (bench/bench.py), not part of
 * postino. The least a sendmail-like client must do to hand a message on
 * stdin to a hub: connect, EHLO, optionally STARTTLS (certificate
 * verified) and AUTH PLAIN, MAIL/RCPT/DATA pipelined, the message copied
 * in one pass that turns LF into CR LF and dot-stuffs, QUIT. No spool, no
 * configuration, no header rewriting, no queue: whatever postino spends
 * beyond this is the price of its features or a place to save.
 *
 * Built twice by the Makefile's bench target: build/bench/refclient
 * without OpenSSL (a plain hop does not pay the dynamic link cost of
 * libssl/libcrypto) and build/bench/refclient-tls with -DREF_TLS.
 *
 *   refclient [-t secs] [-n count] [-f from] [-s -c cafile -A authfile]
 *             host port rcpt...
 *
 * -n count sends the message count times over one connection, the end of
 * each DATA pipelined with the next envelope (the floor of a queue flush).
 * -A names a file whose first line is the user and second the password
 * (never argv). Exit 0 when the hub took the message, 75 when it could
 * not be reached or answered 4xx, 69 otherwise.
 */

#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef REF_TLS
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#endif

#define REF_CHUNK	65536
#define REF_RCPT_BATCH	100	/* RCPTs in flight before reading replies */
#define EX_OK_		0
#define EX_UNAVAIL_	69
#define EX_TEMPFAIL_	75

struct ref {
	int	 fd;
#ifdef REF_TLS
	SSL	*ssl;
#endif
	char	 in[8192];
	size_t	 ilen, ipos;
	int	 timeout;
};

struct opts {
	const char	 *host, *port, *from, *cafile, *authfile;
	char		**rcpt;
	int		  nrcpt, count, timeout, starttls;
};

static void __attribute__((noreturn, format(printf, 2, 3)))
die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("refclient: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(code);
}

/*
 * Linux leaves quick-ACK mode on its own after a few segments; without it
 * the ACK of the server's last segment (TLS 1.3 session tickets, say) is
 * delayed 40 ms and a server using Nagle holds its next reply until then.
 */
static void
quickack(const struct ref *r)
{
	int one = 1;

	(void)setsockopt(r->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

static int
wait_fd(int fd, short ev, int timeout)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int n;

	do
		n = poll(&p, 1, timeout * 1000);
	while (n < 0 && errno == EINTR);
	return n;
}

static int
try_connect(const struct addrinfo *ai, int timeout)
{
	int fd, err = 0, one = 1;
	socklen_t len = sizeof(err);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	(void)fcntl(fd, F_SETFL, O_NONBLOCK);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, timeout) <= 0 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ||
		    err != 0) {
			if (err != 0)
				errno = err;
			else if (errno == EINPROGRESS)
				errno = ETIMEDOUT;
			close(fd);
			return -1;
		}
	}
	(void)fcntl(fd, F_SETFL, 0);
	/* Commands go out in whole batches: never wait for our own ACKs. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void
ref_connect(struct ref *r, const struct opts *o)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_NUMERICSERV }, *res, *ai;
	struct timeval tv = { .tv_sec = o->timeout };
	int e;

	if ((e = getaddrinfo(o->host, o->port, &hints, &res)) != 0)
		die(EX_TEMPFAIL_, "%s: %s", o->host, gai_strerror(e));
	r->fd = -1;
	for (ai = res; ai != NULL && r->fd < 0; ai = ai->ai_next)
		r->fd = try_connect(ai, o->timeout);
	freeaddrinfo(res);
	if (r->fd < 0)
		die(EX_TEMPFAIL_, "connect %s:%s: %s", o->host, o->port,
		    strerror(errno));
	(void)setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(r->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	r->timeout = o->timeout;
	quickack(r);
}

static ssize_t
raw_read(struct ref *r, char *buf, size_t len)
{
	ssize_t n;

#ifdef REF_TLS
	if (r->ssl != NULL) {
		n = SSL_read(r->ssl, buf, (int)len);
		quickack(r);
		return n > 0 ? n : -1;
	}
#endif
	do
		n = read(r->fd, buf, len);
	while (n < 0 && errno == EINTR);
	quickack(r);
	return n;
}

static void
ref_write(struct ref *r, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
#ifdef REF_TLS
		if (r->ssl != NULL)
			n = SSL_write(r->ssl, buf, (int)len);
		else
#endif
			n = write(r->fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die(EX_TEMPFAIL_, "write: %s", strerror(errno));
		buf += n;
		len -= (size_t)n;
	}
	/*
	 * Data sent soon after data received turns delayed-ACK mode back on
	 * (the kernel's pingpong heuristic): off again before the reply.
	 */
	quickack(r);
}

/* One reply line into line (NUL-terminated, CR LF removed). */
static void
read_line(struct ref *r, char *line, size_t size)
{
	size_t o = 0;
	ssize_t n;

	for (;;) {
		char c;

		if (r->ipos == r->ilen) {
			n = raw_read(r, r->in, sizeof(r->in));
			if (n <= 0)
				die(EX_TEMPFAIL_, "hub closed or timed out");
			r->ilen = (size_t)n;
			r->ipos = 0;
		}
		c = r->in[r->ipos++];
		if (c == '\n')
			break;
		if (c != '\r' && o + 1 < size)
			line[o++] = c;
	}
	line[o] = '\0';
}

/* The code of a whole (possibly multi-line) reply. */
static int
read_reply(struct ref *r)
{
	char line[1024];

	do
		read_line(r, line, sizeof(line));
	while (strlen(line) > 3 && line[3] == '-');
	if (strspn(line, "0123456789") < 3)
		die(EX_UNAVAIL_, "malformed reply");
	return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

static void
expect(struct ref *r, int want, const char *what)
{
	int code = read_reply(r);

	if (code / 100 != want / 100)
		die(code / 100 == 4 ? EX_TEMPFAIL_ : EX_UNAVAIL_,
		    "%s: hub answered %d", what, code);
}

static void __attribute__((format(printf, 3, 4)))
command(struct ref *r, int want, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		die(EX_UNAVAIL_, "command too long");
	ref_write(r, buf, (size_t)n);
	if (want != 0)
		expect(r, want, buf);
}

#ifdef REF_TLS
static void
tls_fail(const char *what)
{
	char buf[256];

	ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
	die(EX_TEMPFAIL_, "%s: %s", what, buf);
}

static void
tls_verify_name(SSL *ssl, const char *host)
{
	unsigned char a[16];
	X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);

	if (inet_pton(AF_INET, host, a) == 1 ||
	    inet_pton(AF_INET6, host, a) == 1) {
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1)
			tls_fail("host address");
		return;
	}
	if (SSL_set1_host(ssl, host) != 1 ||
	    SSL_set_tlsext_host_name(ssl, host) != 1)
		tls_fail("host name");
}

static void
tls_start(struct ref *r, const struct opts *o)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		tls_fail("SSL_CTX_new");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if ((o->cafile != NULL ?
	    SSL_CTX_load_verify_locations(ctx, o->cafile, NULL) :
	    SSL_CTX_set_default_verify_paths(ctx)) != 1)
		tls_fail("CA");
	if ((r->ssl = SSL_new(ctx)) == NULL)
		tls_fail("SSL_new");
	tls_verify_name(r->ssl, o->host);
	if (SSL_set_fd(r->ssl, r->fd) != 1)
		tls_fail("SSL_set_fd");
	if (SSL_connect(r->ssl) != 1)
		tls_fail("handshake");
	quickack(r);
	SSL_CTX_free(ctx);
}

static void
auth_plain(struct ref *r, const char *file)
{
	char buf[1024], b64[1400], line[1420], *user, *pass, *nl;
	size_t ul, pl;
	FILE *f = fopen(file, "r");
	size_t n;

	if (f == NULL || (n = fread(buf, 1, sizeof(buf) - 1, f)) == 0)
		die(EX_UNAVAIL_, "%s: cannot read", file);
	fclose(f);
	buf[n] = '\0';
	/* buf holds "user\npass\n". */
	user = buf;
	if ((nl = strchr(user, '\n')) == NULL)
		die(EX_UNAVAIL_, "%s: user line, then password", file);
	*nl = '\0';
	pass = nl + 1;
	pass[strcspn(pass, "\n")] = '\0';
	ul = strlen(user);
	pl = strlen(pass);
	/* line is scratch here: "\0user\0pass" for PLAIN. */
	line[0] = '\0';
	memcpy(line + 1, user, ul + 1);
	memcpy(line + ul + 2, pass, pl);
	EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)line,
	    (int)(ul + pl + 2));
	explicit_bzero(buf, sizeof(buf));
	n = (size_t)snprintf(line, sizeof(line), "AUTH PLAIN %s\r\n", b64);
	ref_write(r, line, n);
	explicit_bzero(b64, sizeof(b64));
	explicit_bzero(line, sizeof(line));
	/* Not command(): its error message would show the credentials. */
	expect(r, 235, "AUTH PLAIN");
}
#endif

static void
greet(struct ref *r, const struct opts *o)
{
	expect(r, 220, "greeting");
	command(r, 250, "EHLO refclient.example\r\n");
	if (!o->starttls)
		return;
#ifdef REF_TLS
	command(r, 220, "STARTTLS\r\n");
	if (r->ipos != r->ilen)
		die(EX_UNAVAIL_, "bytes after STARTTLS reply");
	tls_start(r, o);
	command(r, 250, "EHLO refclient.example\r\n");
	if (o->authfile != NULL)
		auth_plain(r, o->authfile);
#else
	die(EX_UNAVAIL_, "built without TLS (use refclient-tls)");
#endif
}

/* MAIL, every RCPT and DATA, written in batches before the replies. */
static void
envelope(struct ref *r, const struct opts *o)
{
	char buf[REF_RCPT_BATCH * 300 + 600];
	size_t n;
	int i = 0, k, pending = 1;

	n = (size_t)snprintf(buf, sizeof(buf), "MAIL FROM:<%.250s>\r\n",
	    o->from);
	while (i < o->nrcpt) {
		for (k = 0; i < o->nrcpt && k < REF_RCPT_BATCH; i++, k++) {
			n += (size_t)snprintf(buf + n, sizeof(buf) - n,
			    "RCPT TO:<%.250s>\r\n", o->rcpt[i]);
			pending++;
		}
		if (i == o->nrcpt)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n,
			    "DATA\r\n");
		ref_write(r, buf, n);
		for (; pending > 0; pending--)
			expect(r, 250, "MAIL/RCPT");
		n = 0;
	}
	expect(r, 354, "DATA");
}

/*
 * LF to CR LF and dot-stuffing in one pass over each chunk; *bol carries
 * "at the start of a line" and *cr "last byte was CR" across chunks.
 * out must hold 3 * len bytes.
 */
static size_t
convert(const char *in, size_t len, char *out, int *bol, int *cr)
{
	const char *nl;
	size_t i = 0, o = 0;

	while (i < len) {
		size_t seg;

		if (*bol && in[i] == '.')
			out[o++] = '.';
		nl = memchr(in + i, '\n', len - i);
		seg = nl != NULL ? (size_t)(nl - (in + i)) : len - i;
		memcpy(out + o, in + i, seg);
		o += seg;
		if (seg > 0)
			*cr = in[i + seg - 1] == '\r';
		if (nl == NULL) {
			*bol = 0;
			break;
		}
		if (!*cr)
			out[o++] = '\r';
		out[o++] = '\n';
		i += seg + 1;
		*bol = 1;
		*cr = 0;
	}
	return o;
}

static void
stream_body(struct ref *r)
{
	static char in[REF_CHUNK], out[3 * REF_CHUNK + 8];
	int bol = 1, cr = 0;
	size_t o;
	ssize_t n;

	while ((n = read(STDIN_FILENO, in, sizeof(in))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die(EX_UNAVAIL_, "stdin: %s", strerror(errno));
		}
		o = convert(in, (size_t)n, out, &bol, &cr);
		ref_write(r, out, o);
	}
	ref_write(r, bol ? ".\r\n" : "\r\n.\r\n", bol ? 3 : 5);
}

/* The whole message converted once, terminating dot included. */
static char *
slurp_body(size_t *len)
{
	char in[REF_CHUNK], *buf = NULL, *nbuf;
	size_t cap = 0, used = 0;
	int bol = 1, cr = 0;
	ssize_t n;

	while ((n = read(STDIN_FILENO, in, sizeof(in))) > 0) {
		if (used + 3 * (size_t)n + 8 > cap) {
			cap = 2 * (used + 3 * (size_t)n + 8);
			if ((nbuf = realloc(buf, cap)) == NULL)
				die(EX_UNAVAIL_, "out of memory");
			buf = nbuf;
		}
		used += convert(in, (size_t)n, buf + used, &bol, &cr);
	}
	if (n < 0 || buf == NULL)
		die(EX_UNAVAIL_, "stdin: empty or unreadable");
	memcpy(buf + used, bol ? ".\r\n" : "\r\n.\r\n", bol ? 3 : 5);
	*len = used + (bol ? 3 : 5);
	return buf;
}

static void
send_messages(struct ref *r, const struct opts *o)
{
	char *body;
	size_t len;
	int i;

	envelope(r, o);
	if (o->count == 1) {
		stream_body(r);
		expect(r, 250, "end of data");
		return;
	}
	body = slurp_body(&len);
	for (i = 0; i < o->count; i++) {
		ref_write(r, body, len);
		expect(r, 250, "end of data");
		if (i + 1 < o->count)
			envelope(r, o);
	}
	free(body);
}

static int
number(const char *s)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || n < 1 || n > 10000000)
		die(64, "%s: not a number from 1 to 10000000", s);
	return (int)n;
}

static void
parse(int argc, char **argv, struct opts *o)
{
	int c;

	*o = (struct opts){ .from = "bench@example.org", .count = 1,
	    .timeout = 30 };
	while ((c = getopt(argc, argv, "A:c:f:n:st:")) != -1) {
		switch (c) {
		case 'A': o->authfile = optarg; break;
		case 'c': o->cafile = optarg; break;
		case 'f': o->from = optarg; break;
		case 'n': o->count = number(optarg); break;
		case 's': o->starttls = 1; break;
		case 't': o->timeout = number(optarg); break;
		default: die(64, "usage: refclient [-s] [-c ca] [-A authfile] "
		    "[-n count] [-t secs] [-f from] host port rcpt...");
		}
	}
	if (argc - optind < 3 || o->count < 1 || o->timeout < 1)
		die(64, "usage: refclient [options] host port rcpt...");
	o->host = argv[optind];
	o->port = argv[optind + 1];
	o->rcpt = argv + optind + 2;
	o->nrcpt = argc - optind - 2;
}

int
main(int argc, char **argv)
{
	struct ref r = { .fd = -1 };
	struct opts o;

	parse(argc, argv, &o);
	ref_connect(&r, &o);
	greet(&r, &o);
	send_messages(&r, &o);
	command(&r, 221, "QUIT\r\n");
	return EX_OK_;
}
