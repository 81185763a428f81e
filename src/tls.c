/*
 * tls.c: everything OpenSSL. The client context (made lazily, at the
 * first TLS hop, so that a plain hop never initialises OpenSSL), trust
 * (TLS_CA_File, TLS_CA_Dir, or the hashed system directory), the client
 * certificate, the non-blocking handshake under the step deadline, the
 * verdict on the hub's certificate (SHA-256 pins, which bind whatever the
 * chain says, else chain and name; failing closed), and the TLS back end
 * of struct conn. Reached through conn.c only
 * (conn_start_tls; entry points in conn_impl.h). OpenSSL is called
 * through the table of ossl.h, loaded by the first tls_start of the
 * process; no other file but auth.c (HMAC-MD5) calls it.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conn_impl.h"
#include "ossl.h"	/* last: OpenSSL's functions become ossl's pointers */

/*
 * What the verify callback saw during the handshake, for the verdict
 * taken after it. A verdict needs ran: a handshake in which the callback
 * never ran (an internal error before it, a path that skipped it) is
 * refused, never reported as verified.
 */
struct tls_verify {
	const struct tls_params *params; /* NULL outside tls_start */
	int		 ran;		/* the callback was called */
	int		 refused;	/* verification ended the handshake */
	int		 leaf_seen;	/* leaf_pinned, fingerprint are set */
	int		 leaf_pinned;	/* the hub's certificate is pinned */
	long		 chain_error;	/* first X509_V_ERR_* OpenSSL found */
	char		 fingerprint[65]; /* SHA-256 of the hub's key, hex */
	struct tls_cert	 cert;		/* its subject, issuer, expiry */
};

/*
 * Where the session of a verified connection is kept for the next
 * process (queue_tls_session_*), and what it is bound to: the hub's
 * name and port and every setting that decides whether the hub is
 * trusted, as one line (session_binding).
 */
struct tls_cache {
	char		*dir;		/* QueueDir; NULL: no cache */
	char		*binding;
	char		 host[HOST_MAX];
	char		 port[PORT_MAX];
};

/* What c->tls points to while the TLS back end is on. */
struct tls_state {
	const struct conn_ops *below;	/* the back end TLS runs over */
	SSL		*ssl;		/* SSL_get_app_data(ssl) is this */
	BIO_METHOD	*bio_method;
	struct tls_verify verify;
	struct tls_cache cache;
	SSL_SESSION	*session;	/* the newest the hub gave, or NULL */
	int		 trusted;	/* the verdict let the hub through */
	int		 resumed;	/* a session from the cache was used */
};

/* ------------------------------------------------------------ errors */

/*
 * The most useful text in OpenSSL's error queue, which is then emptied:
 * a system error (errno) if there is one, else the first, most specific,
 * entry (the last ones are generic, like "PEM lib").
 */
static void
ssl_errtext(char *buf, size_t len, const char *fallback)
{
	unsigned long e, first = 0, sys = 0;
	const char *r;

	while ((e = ERR_get_error()) != 0) {
		if (first == 0)
			first = e;
		if (sys == 0 && ERR_SYSTEM_ERROR(e))
			sys = e;
	}
	if (sys != 0)
		(void)strlcpy(buf, strerror(ERR_GET_REASON(sys)), len);
	else if (first == 0)
		(void)strlcpy(buf, fallback, len);
	else if ((r = ERR_reason_error_string(first)) != NULL)
		(void)strlcpy(buf, r, len);
	else
		ERR_error_string_n(first, buf, len);
}

/* ------------------------------------------------------ socket BIO */

/*
 * OpenSSL's own socket BIO writes with write(2), so a hub that hangs up
 * would kill us with SIGPIPE. This one uses send(MSG_NOSIGNAL), keeping
 * signal disposition a concern of main() alone.
 */
static int
bio_sock_write(BIO *b, const char *buf, int len)
{
	struct conn *c = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	n = send(c->fd, buf, (size_t)len, MSG_NOSIGNAL);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		BIO_set_retry_write(b);
	return (int)n;
}

static int
bio_sock_read(BIO *b, char *buf, int len)
{
	struct conn *c = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	n = recv(c->fd, buf, (size_t)len, 0);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		BIO_set_retry_read(b);
	if (n > 0)	/* the handshake's reads too: no delayed-ACK stall */
		conn_quickack(c);
	return (int)n;
}

static long
bio_sock_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct conn *c = BIO_get_data(b);

	(void)num;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_C_GET_FD:
		if (ptr != NULL)
			*(int *)ptr = c->fd;
		return c->fd;
	default:
		return 0;
	}
}

static int
bio_sock_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *
bio_sock_method(void)
{
	BIO_METHOD *m;

	if ((m = BIO_meth_new(BIO_TYPE_SOCKET, "postino socket")) == NULL)
		return NULL;
	if (BIO_meth_set_write(m, bio_sock_write) != 1 ||
	    BIO_meth_set_read(m, bio_sock_read) != 1 ||
	    BIO_meth_set_ctrl(m, bio_sock_ctrl) != 1 ||
	    BIO_meth_set_create(m, bio_sock_create) != 1) {
		BIO_meth_free(m);
		return NULL;
	}
	return m;
}

/* ---------------------------------------------------- session cache */

/*
 * The binding is built into a fixed buffer; whatever does not fit (paths
 * near PATH_MAX) only means no cache for this connection.
 */
#define BINDING_MAX	8192

struct binding {
	char	 buf[BINDING_MAX];
	size_t	 off;		/* BINDING_MAX once something did not fit */
};

static void
bind_fmt(struct binding *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
bind_fmt(struct binding *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->off >= sizeof(b->buf))
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->buf + b->off, sizeof(b->buf) - b->off, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(b->buf) - b->off)
		b->off = sizeof(b->buf);
	else
		b->off += (size_t)n;
}

/* A value as one word: bytes outside '!'..'~', '%' and '@' become %XX. */
static void
bind_word(struct binding *b, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	if (s == NULL || s[0] == '\0') {
		bind_fmt(b, "-");
		return;
	}
	for (; *u != '\0'; u++)
		if (*u <= ' ' || *u > '~' || *u == '%' || *u == '@')
			bind_fmt(b, "%%%02X", *u);
		else
			bind_fmt(b, "%c", *u);
}

/*
 * " key=PATH@IDENTITY": a file replaced or edited in place (a new CA
 * bundle, an updated hashed directory) is another binding.
 */
static void
bind_file(struct binding *b, const char *key, const char *path)
{
	struct stat sb;

	bind_fmt(b, " %s=", key);
	bind_word(b, path);
	if (path == NULL || path[0] == '\0')
		return;
	if (stat(path, &sb) == -1)
		bind_fmt(b, "@none");
	else
		bind_fmt(b, "@%llx.%llx.%lld.%ld", (unsigned long long)sb.st_ino,
		    (unsigned long long)sb.st_size, (long long)sb.st_mtim.tv_sec,
		    (long)sb.st_mtim.tv_nsec);
}

/* What a session is bound to: hub, port, every trust setting. */
static void
session_binding(struct binding *b, const char *name, const char *port,
    const struct tls_params *p)
{
	size_t i, k;

	b->off = 0;
	bind_fmt(b, "v1 host=");
	bind_word(b, name);
	bind_fmt(b, " port=");
	bind_word(b, port);
	bind_fmt(b, " verify=%d", p->verify ? 1 : 0);
	bind_file(b, "ca-file", p->ca_file);
	bind_file(b, "ca-dir", p->ca_dir);
	if ((p->ca_file == NULL || p->ca_file[0] == '\0') &&
	    (p->ca_dir == NULL || p->ca_dir[0] == '\0'))
		bind_file(b, "store", X509_get_default_cert_dir());
	bind_fmt(b, " pins=");
	for (i = 0; i < p->pin_count; i++)
		for (k = 0; k < TLS_PIN_LEN; k++)
			bind_fmt(b, "%s%02x", i > 0 && k == 0 ? "," : "",
			    p->pins[i][k]);
	if (p->pin_count == 0)
		bind_fmt(b, "-");
	bind_file(b, "cert", p->cert_file);
	bind_file(b, "key", p->cert_file != NULL && p->cert_file[0] != '\0' ?
	    p->key_file : NULL);
}

/* Set up st's cache from p (nothing when p has no QueueDir). */
static void
session_setup(struct tls_state *st, const char *name, const char *port,
    const struct tls_params *p)
{
	struct binding *b;

	if (p->session_dir == NULL || p->session_dir[0] == '\0' ||
	    (b = malloc(sizeof(*b))) == NULL)
		return;
	session_binding(b, name, port, p);
	if (b->off < sizeof(b->buf) &&
	    strlcpy(st->cache.host, name, sizeof(st->cache.host)) <
	    sizeof(st->cache.host) &&
	    strlcpy(st->cache.port, port, sizeof(st->cache.port)) <
	    sizeof(st->cache.port) &&
	    (st->cache.binding = strdup(b->buf)) != NULL &&
	    (st->cache.dir = strdup(p->session_dir)) == NULL) {
		free(st->cache.binding);
		st->cache.binding = NULL;
	}
	free(b);
}

/* Offer the cached session, if there is a live one for this binding. */
static void
session_offer(struct tls_state *st)
{
	const unsigned char *q;
	unsigned char *der;
	SSL_SESSION *sess;
	size_t len;

	if (st->cache.dir == NULL)
		return;
	queue_tls_session_load(st->cache.dir, st->cache.host, st->cache.port,
	    st->cache.binding, &der, &len);
	if (der == NULL)
		return;
	q = der;
	sess = len <= LONG_MAX ? d2i_SSL_SESSION(NULL, &q, (long)len) : NULL;
	freezero(der, len);
	if (sess != NULL && SSL_SESSION_is_resumable(sess) &&
	    (long long)SSL_SESSION_get_time(sess) +
	    (long long)SSL_SESSION_get_timeout(sess) > (long long)time(NULL))
		(void)SSL_set_session(st->ssl, sess);
	SSL_SESSION_free(sess);	/* SSL_set_session took its reference */
	ERR_clear_error();
}

/*
 * OpenSSL hands over each session the hub gives (TLS 1.3: its tickets,
 * after the handshake): keep the newest, stored when the connection
 * closes (one write however many tickets came).
 */
static int
session_new(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_state *st = SSL_get_app_data(ssl);

	if (st == NULL || st->cache.dir == NULL ||
	    !SSL_SESSION_is_resumable(sess))
		return 0;
	SSL_SESSION_free(st->session);
	st->session = sess;
	return 1;	/* the reference is ours */
}

/* The ticket's lifetime, within 7 days and the certificate's. */
static long long
session_expiry(SSL_SESSION *sess, X509 *peer)
{
	long long now = (long long)time(NULL), end;
	struct tm tm;
	time_t t;

	end = (long long)SSL_SESSION_get_time(sess) +
	    (long long)SSL_SESSION_get_timeout(sess);
	if (end > now + 7 * 86400)
		end = now + 7 * 86400;
	if (peer != NULL && ASN1_TIME_to_tm(X509_get0_notAfter(peer),
	    &tm) == 1 && (t = timegm(&tm)) != (time_t)-1 &&
	    (long long)t < end)
		end = (long long)t;
	return end;
}

/* Keep the newest session of a trusted connection for the next process. */
static void
session_save(struct tls_state *st)
{
	unsigned char *der, *q;
	struct error err;
	long long end;
	int len;

	if (st->cache.dir == NULL || st->session == NULL || !st->trusted)
		return;
	end = session_expiry(st->session, SSL_get0_peer_certificate(st->ssl));
	if (end <= (long long)time(NULL) ||
	    (len = i2d_SSL_SESSION(st->session, NULL)) <= 0 ||
	    (der = malloc((size_t)len)) == NULL) {
		ERR_clear_error();
		return;
	}
	q = der;
	if (i2d_SSL_SESSION(st->session, &q) == len)
		(void)queue_tls_session_save(st->cache.dir, st->cache.host,
		    st->cache.port, st->cache.binding, end, der, (size_t)len,
		    &err);
	freezero(der, (size_t)len);
	ERR_clear_error();
}

/* ------------------------------------------------------ the back end */

/* Map a failed SSL_read_ex/SSL_write_ex to the read(2)-like contract. */
static ssize_t
tls_io_error(SSL *ssl, int reading, int *want_write)
{
	int e, saved = errno;

	e = SSL_get_error(ssl, 0);
	switch (e) {
	case SSL_ERROR_WANT_READ:
		*want_write = 0;
		errno = EAGAIN;
		break;
	case SSL_ERROR_WANT_WRITE:
		*want_write = 1;
		errno = EAGAIN;
		break;
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		if (reading)
			return 0;
		errno = EPIPE;
		break;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		if (saved == 0) {
			if (reading)
				return 0;
			saved = EPIPE;
		}
		errno = saved;
		break;
	default:
		/* A hub that drops TCP without close_notify: plain EOF. */
		if (reading && ERR_GET_REASON(ERR_peek_last_error()) ==
		    SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			return 0;
		}
		ERR_clear_error();
		errno = EPROTO;
		break;
	}
	return -1;
}

static ssize_t
tls_read(struct conn *c, void *buf, size_t len, int *want_write)
{
	struct tls_state *st = c->tls;
	size_t got = 0;

	ERR_clear_error();
	errno = 0;
	if (SSL_read_ex(st->ssl, buf, len, &got) == 1)
		return (ssize_t)got;
	return tls_io_error(st->ssl, 1, want_write);
}

static ssize_t
tls_write(struct conn *c, const void *buf, size_t len, int *want_write)
{
	struct tls_state *st = c->tls;
	size_t put = 0;

	ERR_clear_error();
	errno = 0;
	if (SSL_write_ex(st->ssl, buf, len, &put) == 1)
		return (ssize_t)put;
	return tls_io_error(st->ssl, 0, want_write);
}

static void
tls_state_free(struct tls_state *st)
{
	if (st == NULL)
		return;
	SSL_SESSION_free(st->session);
	SSL_free(st->ssl);	/* frees the BIO too */
	BIO_meth_free(st->bio_method);
	free(st->cache.dir);
	free(st->cache.binding);
	free(st);
}

static void
tls_close(struct conn *c)
{
	struct tls_state *st = c->tls;
	const struct conn_ops *below;

	if (st != NULL)
		session_save(st);
	if (st != NULL && c->fd != -1) {
		/* Best effort close_notify; never wait for the hub's. */
		ERR_clear_error();
		(void)SSL_shutdown(st->ssl);
		ERR_clear_error();
	}
	below = st != NULL ? st->below : NULL;
	tls_state_free(st);
	SSL_CTX_free(c->tls_ctx);
	c->tls = NULL;
	c->tls_ctx = NULL;
	if (below != NULL)
		below->close(c);
	else if (c->fd != -1) {
		(void)close(c->fd);
		c->fd = -1;
	}
}

/* No start_tls: TLS is already on. */
static const struct conn_ops tls_ops = {
	tls_read, tls_write, tls_close, NULL, "tls"
};

/* ---------------------------------------------------- verification */

static int
is_ip_literal(const char *name)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, name, buf) == 1 ||
	    inet_pton(AF_INET6, name, buf) == 1;
}

/* One X509 name on one line (RFC 2253), sanitised for the screen. */
static void
name_line(const X509_NAME *name, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;

	buf[0] = '\0';
	if (b == NULL)
		return;
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0 &&
	    (n = BIO_get_mem_data(b, &p)) > 0)
		log_sanitize(buf, len, p, (size_t)n);
	BIO_free(b);
}

/* Subject, issuer and days to expiry of the hub's certificate. */
static void
cert_facts(X509 *cert, struct tls_cert *out)
{
	int days = 0, secs = 0;

	memset(out, 0, sizeof(*out));
	if (cert == NULL)
		return;
	name_line(X509_get_subject_name(cert), out->subject,
	    sizeof(out->subject));
	name_line(X509_get_issuer_name(cert), out->issuer,
	    sizeof(out->issuer));
	if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(cert)) != 1)
		return;
	/* Rounded down (days and secs share a sign): an hour past is -1. */
	out->days_left = days - (secs < 0 ? 1 : 0);
	out->seen = 1;
}


static int
spki_sha256(X509 *cert, unsigned char md[TLS_PIN_LEN])
{
	unsigned char *der = NULL;
	unsigned int mdlen = 0;
	int len, ok;

	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	if (len <= 0)
		return -1;
	ok = EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL);
	OPENSSL_free(der);
	return ok == 1 && mdlen == TLS_PIN_LEN ? 0 : -1;
}

static void
hex(const unsigned char *in, size_t len, char *out, size_t outlen)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	if (outlen == 0)
		return;
	for (i = 0; i < len && 2 * i + 2 < outlen; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * i] = '\0';
}

static void
cert_spki_hex(X509 *cert, char *buf, size_t len)
{
	unsigned char md[TLS_PIN_LEN];

	if (len > 0)
		buf[0] = '\0';
	if (cert != NULL && spki_sha256(cert, md) == 0)
		hex(md, sizeof(md), buf, len);
}

/* Does one of the pins name cert's key (SPKI) or the whole certificate? */
static int
pins_match(X509 *cert, const struct tls_params *p)
{
	unsigned char spki[TLS_PIN_LEN], whole[EVP_MAX_MD_SIZE];
	unsigned int wholelen = 0;
	int have_spki, have_whole;
	size_t i;

	if (cert == NULL)
		return 0;
	have_spki = spki_sha256(cert, spki) == 0;
	have_whole = X509_digest(cert, EVP_sha256(), whole, &wholelen) == 1 &&
	    wholelen == TLS_PIN_LEN;
	for (i = 0; i < p->pin_count; i++) {
		if (have_spki &&
		    CRYPTO_memcmp(spki, p->pins[i], TLS_PIN_LEN) == 0)
			return 1;
		if (have_whole &&
		    CRYPTO_memcmp(whole, p->pins[i], TLS_PIN_LEN) == 0)
			return 1;
	}
	return 0;
}

/*
 * Called by OpenSSL for each certificate of the hub's chain with its own
 * verdict (ok), which we may overrule. With pins, only a match of the
 * hub's own certificate passes, and it passes every chain or name error:
 * a pin is a constraint, and it vouches alone. Without pins, only
 * TLSVerify=NO lets an error through. Whatever is unexpected (no state,
 * a call after tls_start returned, no certificate) fails the handshake.
 */
static int
verify_cb(int ok, X509_STORE_CTX *store)
{
	struct tls_verify *v = NULL;
	struct tls_state *st;
	SSL *ssl;
	X509 *leaf;

	ssl = X509_STORE_CTX_get_ex_data(store,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	if (ssl != NULL && (st = SSL_get_app_data(ssl)) != NULL)
		v = &st->verify;
	if (v == NULL || v->params == NULL)
		return 0;
	v->ran = 1;
	if (!v->leaf_seen) {
		leaf = X509_STORE_CTX_get0_cert(store);
		cert_spki_hex(leaf, v->fingerprint, sizeof(v->fingerprint));
		v->leaf_pinned = v->params->pin_count > 0 &&
		    pins_match(leaf, v->params);
		v->leaf_seen = leaf != NULL;
		cert_facts(leaf, &v->cert);
	}
	if (!v->leaf_seen)
		ok = 0;
	else if (v->params->pin_count > 0)
		ok = v->leaf_pinned;
	else if (!v->params->verify)
		ok = 1;
	else if (!ok && v->chain_error == X509_V_OK) {
		v->chain_error = X509_STORE_CTX_get_error(store);
		if (v->chain_error == X509_V_OK)
			v->chain_error = X509_V_ERR_UNSPECIFIED;
	}
	if (!ok)
		v->refused = 1;
	return ok;
}

/*
 * The refusal of the hub's certificate, saying what is wrong and what to
 * set: a pin that does not match, a chain or name that does not verify,
 * or a verification that could not be completed (internal is the text).
 */
static int
refuse(const char *name, const struct tls_verify *v,
    const struct tls_params *p, const char *internal, struct error *err)
{
	const char *fp = v->fingerprint[0] != '\0' ? v->fingerprint :
	    "unknown";

	if (p->pin_count > 0 && v->leaf_seen && !v->leaf_pinned)
		error_set(err, ST_TEMP, "TLS certificate of %s refused: its "
		    "key does not match TLSFingerprint (it is sha256:%s)",
		    name, fp);
	else if (v->chain_error != X509_V_OK)
		error_set(err, ST_TEMP, "TLS certificate of %s refused: %s; "
		    "if this certificate is right, set TLS_CA_File to its CA "
		    "or pin it with TLSFingerprint=sha256:%s", name,
		    X509_verify_cert_error_string(v->chain_error), fp);
	else
		error_set(err, ST_TEMP, "TLS certificate of %s refused: it "
		    "could not be verified (%s)", name, internal);
	if (err != NULL)
		err->hint = HINT_TLS_VERIFY;
	return ST_TEMP;
}

/*
 * The policy a full handshake and a resumed session share, applied to
 * the certificate the session holds: a pin must match it; else
 * TLSVerify=NO accepts it; else the chain verdict must be OK and, when
 * check_name (a resumed session: verify_cb did not run), the name must
 * still match.
 */
static int
judge_peer(const char *name, struct tls_state *st, const struct tls_params *p,
    X509 *peer, int check_name, const char **verdict, struct error *err)
{
	struct tls_verify *v = &st->verify;
	long vr;
	int named;

	if (p->pin_count > 0) {
		if (!(v->leaf_pinned = pins_match(peer, p)))
			return refuse(name, v, p, "", err);
		*verdict = "pinned";
		return ST_OK;
	}
	if (!p->verify) {
		*verdict = "unverified (TLSVerify=NO)";
		return ST_OK;
	}
	if ((vr = SSL_get_verify_result(st->ssl)) != X509_V_OK) {
		v->chain_error = vr;
		return refuse(name, v, p, "", err);
	}
	if (check_name) {
		named = is_ip_literal(name) ? X509_check_ip_asc(peer, name, 0) :
		    X509_check_host(peer, name, 0,
		    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL);
		if (named != 1) {
			v->chain_error = is_ip_literal(name) ?
			    X509_V_ERR_IP_ADDRESS_MISMATCH :
			    X509_V_ERR_HOSTNAME_MISMATCH;
			return refuse(name, v, p, "", err);
		}
	}
	*verdict = "verified";
	return ST_OK;
}

/*
 * The verdict on a resumed session, where no certificate was sent and
 * verify_cb never ran: the checks are applied again to the certificate
 * the session holds (the one verified when it was made, under the same
 * binding).
 */
static int
judge_resumed(const char *name, struct tls_state *st,
    const struct tls_params *p, const char **verdict, struct error *err)
{
	struct tls_verify *v = &st->verify;
	X509 *peer = SSL_get0_peer_certificate(st->ssl);

	if (peer == NULL)
		return refuse(name, v, p, "the resumed session holds no "
		    "certificate", err);
	cert_spki_hex(peer, v->fingerprint, sizeof(v->fingerprint));
	cert_facts(peer, &v->cert);
	v->leaf_seen = 1;
	return judge_peer(name, st, p, peer, 1, verdict, err);
}

/*
 * The verdict, once the handshake is done, from what verify_cb saw and
 * checked again on the certificate the session holds.
 */
static int
judge(const char *name, struct tls_state *st, const struct tls_params *p,
    const char **verdict, struct error *err)
{
	struct tls_verify *v = &st->verify;
	X509 *peer = SSL_get0_peer_certificate(st->ssl);

	if (st->resumed)
		return judge_resumed(name, st, p, verdict, err);
	if (!v->ran || v->refused || !v->leaf_seen || peer == NULL)
		return refuse(name, v, p, "the certificate was not checked",
		    err);
	return judge_peer(name, st, p, peer, 0, verdict, err);
}

/* ---------------------------------------------------------- context */

/* An encrypted key must fail, not prompt on a terminal cron does not have. */
static int
no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return 0;
}

static int
is_directory(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int
ctx_trust(SSL_CTX *ctx, const struct tls_params *p, struct error *err)
{
	char why[256];
	const char *dir;
	int fd;

	if (p->ca_file != NULL && p->ca_file[0] != '\0') {
		if (SSL_CTX_load_verify_file(ctx, p->ca_file) != 1) {
			ssl_errtext(why, sizeof(why), "unreadable");
			return error_set(err, ST_CONFIG, "TLS_CA_File %s: "
			    "cannot load: %s", p->ca_file, why);
		}
	}
	if (p->ca_dir != NULL && p->ca_dir[0] != '\0') {
		/* OpenSSL looks into the directory only later: check now. */
		fd = open(p->ca_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd == -1)
			return error_set(err, ST_CONFIG, "TLS_CA_Dir %s: %s",
			    p->ca_dir, strerror(errno));
		(void)close(fd);
		if (SSL_CTX_load_verify_dir(ctx, p->ca_dir) != 1) {
			ssl_errtext(why, sizeof(why), "unusable");
			return error_set(err, ST_CONFIG, "TLS_CA_Dir %s: %s",
			    p->ca_dir, why);
		}
	}
	if ((p->ca_file != NULL && p->ca_file[0] != '\0') ||
	    (p->ca_dir != NULL && p->ca_dir[0] != '\0'))
		return ST_OK;
	/*
	 * The hashed directory is looked up per certificate (about 0.5 ms);
	 * the default paths would also parse the whole bundle (25 ms).
	 */
	dir = X509_get_default_cert_dir();
	if (is_directory(dir) && SSL_CTX_load_verify_dir(ctx, dir) == 1)
		return ST_OK;
	ERR_clear_error();
	if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		ssl_errtext(why, sizeof(why), "unusable");
		return error_set(err, ST_CONFIG, "system trust store: %s",
		    why);
	}
	return ST_OK;
}

static int
load_client_cert(SSL_CTX *ctx, const struct tls_params *p, struct error *err)
{
	const char *key;
	char why[256];
	int r;

	key = p->key_file != NULL && p->key_file[0] != '\0' ? p->key_file :
	    p->cert_file;
	if (SSL_CTX_use_certificate_chain_file(ctx, p->cert_file) != 1) {
		ssl_errtext(why, sizeof(why), "unreadable");
		return error_set(err, ST_CONFIG, "TLSCert %s: cannot load the "
		    "client certificate: %s", p->cert_file, why);
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		r = ERR_GET_REASON(ERR_peek_last_error());
		if (r == X509_R_KEY_VALUES_MISMATCH ||
		    r == X509_R_KEY_TYPE_MISMATCH) {
			ERR_clear_error();
			return error_set(err, ST_CONFIG, "TLSKey %s does not "
			    "match TLSCert %s", key, p->cert_file);
		}
		ssl_errtext(why, sizeof(why), "unreadable");
		return error_set(err, ST_CONFIG, "TLSKey %s: cannot load the "
		    "private key (it must be PEM, not encrypted): %s", key,
		    why);
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		return error_set(err, ST_CONFIG, "TLSKey %s does not match "
		    "TLSCert %s", key, p->cert_file);
	}
	return ST_OK;
}

/*
 * The client key may be readable by the queue's group only (0640): the
 * group is held for these two file reads, never for the handshake.
 */
static int
ctx_client_cert(SSL_CTX *ctx, const struct tls_params *p, struct error *err)
{
	int rc;

	if (p->cert_file == NULL || p->cert_file[0] == '\0')
		return ST_OK;
	if (priv_group_enter(err) != ST_OK)
		return err->status;
	rc = load_client_cert(ctx, p, err);
	priv_group_leave();
	return rc;
}

static int
ctx_new(struct conn *c, const struct tls_params *p, struct error *err)
{
	SSL_CTX *ctx;
	int rc;

	if (c->tls_ctx != NULL)
		return ST_OK;
	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return error_set(err, ST_OSERR, "cannot create a TLS context");
	(void)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/*
	 * verify_cb fails the handshake unless a pin or TLSVerify=NO lets
	 * the certificate through or the chain verifies; judge() checks
	 * again. A renegotiation would present a certificate nobody judges.
	 */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
	(void)SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	/* Sessions go to the queue directory (session_new), not memory. */
	(void)SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
	    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, session_new);
	if ((rc = ctx_trust(ctx, p, err)) != ST_OK ||
	    (rc = ctx_client_cert(ctx, p, err)) != ST_OK) {
		SSL_CTX_free(ctx);
		return rc;
	}
	c->tls_ctx = ctx;
	return ST_OK;
}

/* ------------------------------------------------------- handshake */

static int
ssl_new(struct conn *c, const struct tls_params *p, struct tls_state **out,
    struct error *err)
{
	struct tls_state *st;
	const char *name = p->servername;
	BIO *bio;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return error_set(err, ST_OSERR, "out of memory");
	if ((st->bio_method = bio_sock_method()) == NULL ||
	    (st->ssl = SSL_new(c->tls_ctx)) == NULL ||
	    (bio = BIO_new(st->bio_method)) == NULL) {
		tls_state_free(st);
		ERR_clear_error();
		return error_set(err, ST_OSERR, "cannot set up TLS");
	}
	BIO_set_data(bio, c);
	SSL_set_bio(st->ssl, bio, bio);
	st->verify.params = p;
	if (SSL_set_app_data(st->ssl, st) != 1) {
		tls_state_free(st);
		ERR_clear_error();
		return error_set(err, ST_OSERR, "cannot set up TLS");
	}
	if (name != NULL && name[0] != '\0') {
		if (is_ip_literal(name)) {
			/* No SNI for addresses (RFC 6066 section 3). */
			(void)X509_VERIFY_PARAM_set1_ip_asc(
			    SSL_get0_param(st->ssl), name);
		} else {
			(void)SSL_set_tlsext_host_name(st->ssl, name);
			SSL_set_hostflags(st->ssl,
			    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			(void)SSL_set1_host(st->ssl, name);
		}
	}
	*out = st;
	return ST_OK;
}

static int
handshake(struct conn *c, struct tls_state *st, struct error *err)
{
	char why[256];
	int rc, e, saved;

	c->deadline_ms = deadline_in(c->timeout_ms);	/* one step */
	for (;;) {
		ERR_clear_error();
		errno = 0;
		if (SSL_connect(st->ssl) == 1)
			return ST_OK;
		saved = errno;
		e = SSL_get_error(st->ssl, 0);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			if ((rc = deadline_wait(c->fd, e ==
			    SSL_ERROR_WANT_WRITE, c->deadline_ms, c->timeout_ms,
			    err)) != ST_OK) {
				error_prefix(err, "TLS handshake with %s",
				    c->host);
				return rc;
			}
			continue;
		}
		/* Even where verify_cb did not run (see tls_start). */
		if (ERR_GET_LIB(ERR_peek_last_error()) == ERR_LIB_SSL &&
		    ERR_GET_REASON(ERR_peek_last_error()) ==
		    SSL_R_CERTIFICATE_VERIFY_FAILED)
			st->verify.refused = 1;
		if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
			(void)strlcpy(why, saved != 0 ? strerror(saved) :
			    "connection closed by hub", sizeof(why));
		else
			ssl_errtext(why, sizeof(why), "unknown error");
		return error_set(err, ST_TEMP, "TLS handshake with %s "
		    "failed: %s", c->host, why);
	}
}

void
tls_peer_cert(const struct conn *c, struct tls_cert *cert)
{
	*cert = c->tls_cert;
}

/* The name the certificate is checked against, for messages. */
static const char *
hub_name(const struct conn *c, const struct tls_params *p)
{
	return p->servername != NULL && p->servername[0] != '\0' ?
	    p->servername : c->host;
}

/*
 * The handshake (offering the cached session) and the verdict on the
 * hub; a resumed session that fails it is dropped from the cache.
 */
static int
handshake_judged(struct conn *c, struct tls_state *st,
    const struct tls_params *p, const char **verdict, struct error *err)
{
	int rc;

	session_setup(st, hub_name(c, p), c->port, p);
	session_offer(st);
	rc = handshake(c, st, err);
	st->resumed = rc == ST_OK && SSL_session_reused(st->ssl) == 1;
	/* A certificate refused during the handshake: say why. */
	if (rc != ST_OK && st->verify.refused)
		rc = refuse(hub_name(c, p), &st->verify, p,
		    "OpenSSL could not complete the verification", err);
	else if (rc == ST_OK)
		rc = judge(hub_name(c, p), st, p, verdict, err);
	/* Seen by verify_cb (even in a handshake it ended) or the session. */
	c->tls_cert = st->verify.cert;
	st->verify.params = NULL;	/* p is the caller's */
	st->trusted = rc == ST_OK;
	if (rc != ST_OK && st->resumed)
		queue_tls_session_forget(st->cache.dir, st->cache.host,
		    st->cache.port);
	return rc;
}

int
tls_start(struct conn *c, const struct tls_params *p, struct error *err)
{
	struct tls_state *st = NULL;
	const char *verdict = "";
	const SSL_CIPHER *cipher;
	int rc;

	if (c->fd == -1)
		return error_set(err, ST_SOFTWARE, "tls_start: not connected");
	if (c->tls != NULL)
		return error_set(err, ST_SOFTWARE, "tls_start: TLS is on");
	/* The first TLS hop of the process pays for OpenSSL, not the rest. */
	if ((rc = ossl_load(OSSL_SSL, err)) != ST_OK) {
		error_prefix(err, "TLS with %s", c->host);
		return rc;
	}
	if ((rc = ctx_new(c, p, err)) != ST_OK)
		return rc;
	memset(&c->tls_cert, 0, sizeof(c->tls_cert));
	if ((rc = ssl_new(c, p, &st, err)) == ST_OK)
		rc = handshake_judged(c, st, p, &verdict, err);
	if (rc != ST_OK) {
		tls_state_free(st);
		SSL_CTX_free(c->tls_ctx);
		c->tls_ctx = NULL;
		return rc;
	}
	cipher = SSL_get_current_cipher(st->ssl);
	(void)snprintf(c->tls_desc, sizeof(c->tls_desc), "%s %s %s%s",
	    SSL_get_version(st->ssl),
	    cipher != NULL ? SSL_CIPHER_get_name(cipher) : "?", verdict,
	    st->resumed ? " (resumed)" : "");
	c->tls = st;
	st->below = c->ops;	/* closed under TLS by tls_close */
	c->ops = &tls_ops;
	/* Anything read before now was plaintext; it must not be mixed in. */
	c->rlen = c->roff = 0;
	return ST_OK;
}

void
tls_peer_fingerprint(const struct conn *c, char *buf, size_t len)
{
	const struct tls_state *st = c->tls;

	if (len > 0)
		buf[0] = '\0';
	if (st != NULL)
		cert_spki_hex(SSL_get0_peer_certificate(st->ssl), buf, len);
}
