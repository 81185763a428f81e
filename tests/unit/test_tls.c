/*
 * test_tls.c: tls.c (its entry points in conn_impl.h). Handshakes with
 * a forked OpenSSL server on loopback using a throwaway
 * CA (made with the openssl CLI): verification by TLS_CA_File and by a
 * hashed TLS_CA_Dir, host names and IP literals, SPKI and certificate
 * pins (one of several must match, whatever the chain says), TLSVerify=NO,
 * an internal verification error (X509_verify_cert interposed) that must
 * fail closed, client certificates, configuration errors, a peer that
 * does not speak TLS, and the handshake deadline.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <arpa/inet.h>

#include <dlfcn.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "unit.h"
#include "conn_impl.h"

static char dir[64];	/* the throwaway CA, certificates and keys */

/* ------------------------------------------------------- the server */

enum srv_mode {
	SRV_TLS,	/* handshake, then answer "ping" with "pong" */
	SRV_CLIENT_CERT,	/* the same, requiring a client certificate */
	SRV_PLAIN,	/* not TLS at all: an SMTP greeting */
	SRV_SILENT	/* accept and say nothing */
};

struct srv {
	pid_t	 pid;
	char	 port[PORT_MAX];
};

static void
path(char *buf, size_t len, const char *name)
{
	(void)snprintf(buf, len, "%s/%s", dir, name);
}

/*
 * Fault injection into X509_verify_cert(3): failing as on an internal
 * error (-1, no error code, the verify callback never called), or
 * returning success without having looked at anything. SSL_VERIFY_NONE
 * plus SSL_get_verify_result() == X509_V_OK took either for "verified".
 * libssl calls it through its PLT, so this definition interposes the one
 * in libcrypto.
 */
static enum { VERIFY_REAL, VERIFY_FAILS, VERIFY_SKIPPED } fake_verify;

int
X509_verify_cert(X509_STORE_CTX *ctx)
{
	int (*real)(X509_STORE_CTX *);

	if (fake_verify == VERIFY_FAILS)
		return -1;
	if (fake_verify == VERIFY_SKIPPED)
		return 1;
	*(void **)&real = dlsym(RTLD_NEXT, "X509_verify_cert");
	return real != NULL ? real(ctx) : -1;
}

/*
 * One ticket key for every server process, as a hub keeps its own: a
 * session one server gave, the next one resumes.
 */
static unsigned char ticket_keys[80] = "postino test ticket keys";

/*
 * Exit 0: handshake and echo done; 3: the same, with a client cert; 8:
 * the same, the client's session resumed.
 */
static void
serve(int lfd, enum srv_mode mode)
{
	struct pollfd pfd = { lfd, POLLIN, 0 };
	char cert[128], key[128], ca[128], buf[64];
	SSL_CTX *ctx;
	SSL *ssl;
	size_t n;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	/* The server builds its chain with it. */
	fake_verify = VERIFY_REAL;
	if (poll(&pfd, 1, 8000) != 1 || (fd = accept(lfd, NULL, NULL)) == -1)
		_exit(2);
	if (mode == SRV_PLAIN) {
		if (write(fd, "220 plain hub\r\n", 15) != 15)
			_exit(2);
	}
	if (mode == SRV_PLAIN || mode == SRV_SILENT) {
		if (read(fd, buf, sizeof(buf)) < 0)
			_exit(2);
		(void)poll(NULL, 0, 3000);
		_exit(0);
	}
	path(cert, sizeof(cert), "srv.pem");
	path(key, sizeof(key), "srv.key");
	path(ca, sizeof(ca), "ca.pem");
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_set_tlsext_ticket_keys(ctx, ticket_keys,
	    sizeof(ticket_keys)) != 1)
		_exit(4);
	if (mode == SRV_CLIENT_CERT) {
		if (SSL_CTX_load_verify_file(ctx, ca) != 1)
			_exit(4);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
		    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
	    SSL_accept(ssl) != 1)
		_exit(5);
	if (SSL_read_ex(ssl, buf, sizeof(buf), &n) != 1 || n != 6 ||
	    memcmp(buf, "ping\r\n", 6) != 0)
		_exit(6);
	if (SSL_write_ex(ssl, "pong\r\n", 6, &n) != 1)
		_exit(7);
	(void)SSL_shutdown(ssl);
	if (SSL_session_reused(ssl))
		_exit(8);
	_exit(SSL_get0_peer_certificate(ssl) != NULL ? 3 : 0);
}

/*
 * The port of the last server, for the next one to listen on again
 * (same_port): a session is bound to its hub's port.
 */
static int same_port;

static void
srv_start(struct srv *s, enum srv_mode mode)
{
	static struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	int lfd, one = 1;

	if (!same_port) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd != -1);
	assert_int_equal(setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)), 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &slen), 0);
	(void)snprintf(s->port, sizeof(s->port), "%d", ntohs(sin.sin_port));
	fflush(NULL);
	s->pid = fork();
	assert_true(s->pid != -1);
	if (s->pid == 0)
		serve(lfd, mode);
	(void)close(lfd);
}

static int
srv_wait(struct srv *s)
{
	int status;

	if (waitpid(s->pid, &status, 0) != s->pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

/* Connect to a fresh server and run tls_start with p. */
static int
handshake(struct srv *s, enum srv_mode mode, struct conn *c,
    const struct tls_params *p, int timeout, struct error *err)
{
	srv_start(s, mode);
	conn_init(c, timeout);
	error_clear(err);
	assert_int_equal(conn_open(c, "127.0.0.1", s->port, err), ST_OK);
	return tls_start(c, p, err);
}

/* After a good handshake: one exchange through the TLS back end. */
static void
ping(struct conn *c)
{
	char line[64];
	struct error err;

	assert_int_equal(conn_write(c, "ping\r\n", 6, &err), ST_OK);
	assert_int_equal(conn_read_line(c, line, sizeof(line), NULL, &err),
	    ST_OK);
	assert_string_equal(line, "pong");
	/* The server closes (close_notify): an EOF, as for plain. */
	assert_int_equal(conn_read_line(c, line, sizeof(line), NULL, &err),
	    ST_TEMP);
	assert_string_equal(err.text, "connection closed by hub");
}

/* SHA-256 of the server's key (SPKI) or certificate, raw and in hex. */
static void
server_digest(int whole, unsigned char md[32], char hex[65])
{
	char file[128];
	unsigned char *der = NULL;
	unsigned int mdlen = 0;
	X509 *x;
	FILE *fp;
	int len, i;

	path(file, sizeof(file), "srv.pem");
	fp = fopen(file, "r");
	assert_non_null(fp);
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	(void)fclose(fp);
	assert_non_null(x);
	if (whole)
		assert_int_equal(X509_digest(x, EVP_sha256(), md, &mdlen), 1);
	else {
		len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
		assert_true(len > 0);
		assert_int_equal(EVP_Digest(der, (size_t)len, md, &mdlen,
		    EVP_sha256(), NULL), 1);
		OPENSSL_free(der);
	}
	X509_free(x);
	for (i = 0; i < 32; i++)
		(void)snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static void
params(struct tls_params *p, const char *name, char *ca, size_t calen)
{
	memset(p, 0, sizeof(*p));
	p->servername = name;
	p->verify = 1;
	path(ca, calen, "ca.pem");
	p->ca_file = ca;
}

#define NEED_CERTS()	do { if (dir[0] == '\0') skip(); } while (0)

/* ------------------------------------------------------- handshakes */

static void
test_verified(void **state)
{
	struct tls_params p;
	struct error err;
	struct conn c;
	struct srv s;
	char ca[128], fp[65], want[65];
	unsigned char md[32];
	struct tls_cert cert;

	(void)state;
	NEED_CERTS();
	params(&p, "localhost", ca, sizeof(ca));
	assert_int_equal(handshake(&s, SRV_TLS, &c, &p, 5, &err), ST_OK);
	assert_non_null(strstr(c.tls_desc, "TLSv1.3 TLS_"));
	/* check --hub's facts: made with -days 2 (this second, or one
	 * before: 2 whole days left, or 1). */
	conn_tls_cert(&c, &cert);
	assert_int_equal(cert.seen, 1);
	assert_string_equal(cert.subject, "CN=localhost");
	assert_string_equal(cert.issuer, "CN=postino-test-ca");
	assert_true(cert.days_left == 1 || cert.days_left == 2);
	assert_non_null(strstr(c.tls_desc, " verified"));
	tls_peer_fingerprint(&c, fp, sizeof(fp));
	server_digest(0, md, want);
	assert_string_equal(fp, want);
	ping(&c);
	conn_close(&c);
	assert_null(c.tls);
	assert_null(c.tls_ctx);
	assert_int_equal(srv_wait(&s), 0);

	/* An IP literal is checked against the IP SAN (and has no SNI). */
	params(&p, "127.0.0.1", ca, sizeof(ca));
	assert_int_equal(handshake(&s, SRV_TLS, &c, &p, 5, &err), ST_OK);
	assert_non_null(strstr(c.tls_desc, " verified"));
	ping(&c);
	conn_close(&c);
	assert_int_equal(srv_wait(&s), 0);
}

static void
test_ca_dir(void **state)
{
	struct tls_params p;
	struct error err;
	struct conn c;
	struct srv s;
	char ca[128], hashed[128];

	(void)state;
	NEED_CERTS();
	params(&p, "localhost", ca, sizeof(ca));
	p.ca_file = NULL;
	path(hashed, sizeof(hashed), "hashed");
	p.ca_dir = hashed;
	assert_int_equal(handshake(&s, SRV_TLS, &c, &p, 5, &err), ST_OK);
	assert_non_null(strstr(c.tls_desc, " verified"));
	ping(&c);
	conn_close(&c);
	assert_int_equal(srv_wait(&s), 0);
}

static void
test_name_mismatch(void **state)
{
	struct tls_params p;
	struct error err;
	struct conn c;
	struct srv s;
	char ca[128], hex[65], want[512];
	unsigned char md[32];
	struct tls_cert cert;

	(void)state;
	NEED_CERTS();
	server_digest(0, md, hex);
	params(&p, "mail.example.org", ca, sizeof(ca));
	assert_int_equal(handshake(&s, SRV_TLS, &c, &p, 5, &err), ST_TEMP);
	assert_int_equal(err.hint, HINT_TLS_VERIFY);
	(void)snprintf(want, sizeof(want), "TLS certificate of "
	    "mail.example.org refused: hostname mismatch; if this "
	    "certificate is right, set TLS_CA_File to its CA or pin it with "
	    "TLSFingerprint=sha256:%s", hex);
	assert_string_equal(err.text, want);
	/* What the refused certificate said is still there to report. */
	tls_peer_cert(&c, &cert);
	assert_int_equal(cert.seen, 1);
	assert_string_equal(cert.subject, "CN=localhost");
	/* Still the plain back end, nothing left behind. */
	assert_null(c.tls);
	assert_null(c.tls_ctx);
	assert_ptr_equal(c.ops, &conn_plain_ops);
	conn_close(&c);
	(void)srv_wait(&s);
}

static void
test_unknown_ca(void **state)
{
	struct tls_params p;
	struct error err;
	struct conn c;
	struct srv s;
	char ca[128];

	(void)state;
	NEED_CERTS();
	/* The system store does not know the throwaway CA. */
	params(&p, "localhost", ca, sizeof(ca));
	p.ca_file = NULL;
	assert_int_equal(handshake(&s, SRV_TLS, &c, &p, 5, &err), ST_TEMP);
	assert_int_equal(err.hint, HINT_TLS_VERIFY);
	assert_non_null(strstr(err.text, "refused: unable to get local "
	    "issuer certificate"));
	conn_close(&c);
	(void)srv_wait(&s);
}

static void
test_pins(void **state)
{
	unsigned char pins[2][TLS_PIN_LEN];
	struct tls_params p;
	struct error err;
	struct conn c;
	struct srv s;
	char ca[128], hex[65];

	(void)state;
	NEED_CERTS();
	/* A matching key pin vouches alone: wrong name, unknown CA. */
	server_digest(0, pins[0], hex);
	params(&p, "mail.example.org", ca, sizeof(ca));
	p.ca_file = NULL;
	p.pins = pins;
	p.pin_count = 1;
	assert_int_equal(handshake(&s, SRV_TLS, &c, &p, 5, &err), ST_OK);
	assert_non_null(strstr(c.tls_desc, " pinned"));
	ping(&c);
	conn_close(&c);
	assert_int_equal(srv_wait(&s), 0);

	/* So does a pin of the whole certificate. */
	server_digest(1, pins[0], hex);
	assert_int_equal(handshake(&s, SRV_TLS, &c, &p, 5, &err), ST_OK);
	assert_non_null(strstr(c.tls_desc, " pinned"));
	ping(&c);
	conn_close(&c);
	assert_int_equal(srv_wait(&s), 0);
}

/* The refusal of a pin that does not match the test server's key. */
static void
assert_pin_refused(const struct conn *c, const struct error *err)
{
	unsigned char md[TLS_PIN_LEN];
	char hex[65], want[512];

	server_digest(0, md, hex);
	(void)snprintf(want, sizeof(want), "TLS certificate of %s refused: "
	    "its key does not match TLSFingerprint (it is sha256:%s)",
	    c->host, hex);
	assert_int_equal(err->status, ST_TEMP);
	assert_int_equal(err->hint, HINT_TLS_VERIFY);
	assert_string_equal(err->text, want);
	assert_null(c->tls);
	assert_null(c->tls_ctx);
}

static void
test_wrong_pin_refused(void **state)
{
	unsigned char pins[1][TLS_PIN_LEN];
	struct tls_params p;
	struct error err;
	struct conn c;
	struct srv s;
	char ca[128];

	(void)state;
	NEED_CERTS();
	memset(pins, 0xab, sizeof(pins));
	/* The chain and the name verify, but a pin is a constraint. */
	params(&p, "127.0.0.1", ca, sizeof(ca));
	p.pins = pins;
	p.pin_count = 1;
	assert_int_equal(handshake(&s, SRV_TLS, &c, &p, 5, &err), ST_TEMP);
	assert_pin_refused(&c, &err);
	conn_close(&c);
	(void)srv_wait(&s);

	/* A chain that does not verify either: the pin is what to fix. */
	p.ca_file = NULL;
	assert_int_equal(handshake(&s, SRV_TLS, &c, &p, 5, &err), ST_TEMP);
	assert_pin_refused(&c, &err);
	conn_close(&c);
	(void)srv_wait(&s);

	/* TLSVerify=NO does not switch the pin off. */
	p.verify = 0;
	assert_int_equal(handshake(&s, SRV_TLS, &c, &p, 5, &err), ST_TEMP);
	assert_pin_refused(&c, &err);
	conn_close(&c);
	(void)srv_wait(&s);
}

static void
test_several_pins(void **state)
{
	unsigned char pins[3][TLS_PIN_LEN];
	struct tls_params p;
	struct error err;
	struct conn c;
	struct srv s;
	char ca[128], hex[65];

	(void)state;
	NEED_CERTS();
	/* The old key first, the new one second: a rotation. */
	memset(pins[0], 0xab, sizeof(pins[0]));
	server_digest(0, pins[1], hex);
	memset(pins[2], 0xcd, sizeof(pins[2]));
	params(&p, "127.0.0.1", ca, sizeof(ca));
	p.pins = pins;
	p.pin_count = 2;
	assert_int_equal(handshake(&s, SRV_TLS, &c, &p, 5, &err), ST_OK);
	assert_non_null(strstr(c.tls_desc, " pinned"));
	ping(&c);
	conn_close(&c);
	assert_int_equal(srv_wait(&s), 0);

	/* The match vouches alone here too: wrong name, unknown CA. */
	params(&p, "mail.example.org", ca, sizeof(ca));
	p.ca_file = NULL;
	p.pins = pins;
	p.pin_count = 2;
	assert_int_equal(handshake(&s, SRV_TLS, &c, &p, 5, &err), ST_OK);
	assert_non_null(strstr(c.tls_desc, " pinned"));
	ping(&c);
	conn_close(&c);
	assert_int_equal(srv_wait(&s), 0);

	/* Only pin_count pins count: the match beyond them is not read. */
	server_digest(0, pins[2], hex);
	memset(pins[1], 0xab, sizeof(pins[1]));
	assert_int_equal(handshake(&s, SRV_TLS, &c, &p, 5, &err), ST_TEMP);
	assert_int_equal(err.hint, HINT_TLS_VERIFY);
	assert_non_null(strstr(err.text, "does not match TLSFingerprint"));
	conn_close(&c);
	(void)srv_wait(&s);
}

static void
test_internal_error_fails_closed(void **state)
{
	unsigned char pins[1][TLS_PIN_LEN];
	struct tls_params p;
	struct error err;
	struct conn c;
	struct srv s;
	char ca[128], hex[65];
	int rc;

	(void)state;
	NEED_CERTS();
	/* A certificate that would verify, had the verification run. */
	params(&p, "localhost", ca, sizeof(ca));
	fake_verify = VERIFY_FAILS;
	rc = handshake(&s, SRV_TLS, &c, &p, 5, &err);
	fake_verify = VERIFY_REAL;
	assert_int_equal(rc, ST_TEMP);
	assert_int_equal(err.hint, HINT_TLS_VERIFY);
	assert_non_null(strstr(err.text, "TLS certificate of localhost "
	    "refused: it could not be verified"));
	assert_null(c.tls);
	assert_ptr_equal(c.ops, &conn_plain_ops);
	conn_close(&c);
	(void)srv_wait(&s);

	/* Nor does a matching pin pass a verification that did not run. */
	server_digest(0, pins[0], hex);
	p.pins = pins;
	p.pin_count = 1;
	fake_verify = VERIFY_FAILS;
	rc = handshake(&s, SRV_TLS, &c, &p, 5, &err);
	fake_verify = VERIFY_REAL;
	assert_int_equal(rc, ST_TEMP);
	assert_int_equal(err.hint, HINT_TLS_VERIFY);
	conn_close(&c);
	(void)srv_wait(&s);

	/* A verification that reports success without a verdict. */
	p.pin_count = 0;
	fake_verify = VERIFY_SKIPPED;
	rc = handshake(&s, SRV_TLS, &c, &p, 5, &err);
	fake_verify = VERIFY_REAL;
	assert_int_equal(rc, ST_TEMP);
	assert_int_equal(err.hint, HINT_TLS_VERIFY);
	assert_non_null(strstr(err.text, "TLS certificate of localhost "
	    "refused: it could not be verified (the certificate was not "
	    "checked)"));
	assert_null(c.tls);
	conn_close(&c);
	(void)srv_wait(&s);

	/* And the real one, back in place, verifies again. */
	p.pin_count = 0;
	assert_int_equal(handshake(&s, SRV_TLS, &c, &p, 5, &err), ST_OK);
	assert_non_null(strstr(c.tls_desc, " verified"));
	ping(&c);
	conn_close(&c);
	assert_int_equal(srv_wait(&s), 0);
}

static void
test_verify_off(void **state)
{
	struct tls_params p;
	struct error err;
	struct conn c;
	struct srv s;
	char ca[128];

	(void)state;
	NEED_CERTS();
	params(&p, "mail.example.org", ca, sizeof(ca));
	p.ca_file = NULL;
	p.verify = 0;
	assert_int_equal(handshake(&s, SRV_TLS, &c, &p, 5, &err), ST_OK);
	assert_non_null(strstr(c.tls_desc, " unverified (TLSVerify=NO)"));
	ping(&c);
	conn_close(&c);
	assert_int_equal(srv_wait(&s), 0);
}

static void
test_client_cert(void **state)
{
	struct tls_params p;
	struct error err;
	struct conn c;
	struct srv s;
	char ca[128], cert[128], key[128];

	(void)state;
	NEED_CERTS();
	params(&p, "localhost", ca, sizeof(ca));
	path(cert, sizeof(cert), "cli.pem");
	path(key, sizeof(key), "cli.key");
	p.cert_file = cert;
	p.key_file = key;
	assert_int_equal(handshake(&s, SRV_CLIENT_CERT, &c, &p, 5, &err),
	    ST_OK);
	ping(&c);
	conn_close(&c);
	assert_int_equal(srv_wait(&s), 3);

	/* One PEM holding both (ssmtp's TLSCert, TLSKey unset). */
	path(cert, sizeof(cert), "both.pem");
	p.key_file = NULL;
	assert_int_equal(handshake(&s, SRV_CLIENT_CERT, &c, &p, 5, &err),
	    ST_OK);
	ping(&c);
	conn_close(&c);
	assert_int_equal(srv_wait(&s), 3);
}

/* Configuration errors need no hub: a socketpair stands in for one. */
static int
config_error(const struct tls_params *p, struct error *err)
{
	struct conn c;
	int sv[2], rc;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	conn_init(&c, 2);
	conn_attach(&c, sv[0], NULL);
	error_clear(err);
	rc = tls_start(&c, p, err);
	assert_null(c.tls_ctx);
	conn_close(&c);
	(void)close(sv[1]);
	return rc;
}

static void
test_config_errors(void **state)
{
	struct tls_params p;
	struct error err;
	char ca[128], cert[128], key[128];

	(void)state;
	NEED_CERTS();
	params(&p, "localhost", ca, sizeof(ca));
	path(ca, sizeof(ca), "missing.pem");
	assert_int_equal(config_error(&p, &err), ST_CONFIG);
	assert_non_null(strstr(err.text, "TLS_CA_File "));
	assert_non_null(strstr(err.text, "missing.pem"));

	params(&p, "localhost", ca, sizeof(ca));
	p.ca_file = NULL;
	path(ca, sizeof(ca), "no-such-dir");
	p.ca_dir = ca;
	assert_int_equal(config_error(&p, &err), ST_CONFIG);
	assert_non_null(strstr(err.text, "TLS_CA_Dir "));

	params(&p, "localhost", ca, sizeof(ca));
	path(cert, sizeof(cert), "missing-cert.pem");
	p.cert_file = cert;
	assert_int_equal(config_error(&p, &err), ST_CONFIG);
	assert_non_null(strstr(err.text, "TLSCert "));

	path(cert, sizeof(cert), "cli.pem");
	path(key, sizeof(key), "missing.key");
	p.key_file = key;
	assert_int_equal(config_error(&p, &err), ST_CONFIG);
	assert_non_null(strstr(err.text, "TLSKey "));

	/* A key of another certificate. */
	path(key, sizeof(key), "srv.key");
	assert_int_equal(config_error(&p, &err), ST_CONFIG);
	assert_non_null(strstr(err.text, "does not match TLSCert"));

	/* An encrypted key fails instead of prompting. */
	path(key, sizeof(key), "enc.key");
	assert_int_equal(config_error(&p, &err), ST_CONFIG);
	assert_non_null(strstr(err.text, "TLSKey "));
}

static void
test_not_tls(void **state)
{
	struct tls_params p;
	struct error err;
	struct conn c;
	struct srv s;
	char ca[128];

	(void)state;
	NEED_CERTS();
	params(&p, "localhost", ca, sizeof(ca));
	assert_int_equal(handshake(&s, SRV_PLAIN, &c, &p, 5, &err), ST_TEMP);
	assert_int_equal(err.hint, HINT_NONE);
	assert_non_null(strstr(err.text, "TLS handshake with 127.0.0.1 "
	    "failed: "));
	conn_close(&c);
	(void)srv_wait(&s);
}

static void
test_handshake_deadline(void **state)
{
	struct timespec t0, t1;
	struct tls_params p;
	struct error err;
	struct conn c;
	struct srv s;
	char ca[128];
	double t;

	(void)state;
	NEED_CERTS();
	params(&p, "localhost", ca, sizeof(ca));
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(handshake(&s, SRV_SILENT, &c, &p, 1, &err), ST_TEMP);
	(void)clock_gettime(CLOCK_MONOTONIC, &t1);
	t = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(t >= 0.9 && t < 2.0);
	assert_non_null(strstr(err.text,
	    "TLS handshake with 127.0.0.1: timed out"));
	conn_close(&c);
	(void)srv_wait(&s);
}

/* ------------------------------------------------ session resumption */

/* QueueDir for the session cache, emptied; its session file's name. */
static void
session_dir(char *qdir, size_t qlen, char *file, size_t flen,
    const char *host, const struct srv *s)
{
	char cmd[256];

	path(qdir, qlen, "q");
	(void)snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir %s", qdir, qdir);
	assert_int_equal(system(cmd), 0);
	if (file != NULL)
		(void)snprintf(file, flen, "%s/tls-session.%s.%s", qdir, host,
		    s->port);
}

/* A handshake with p, one exchange, close; the server's exit code. */
static int
session_round(struct srv *s, struct conn *c, const struct tls_params *p,
    const char *want)
{
	struct error err;

	assert_int_equal(handshake(s, SRV_TLS, c, p, 5, &err), ST_OK);
	if (strstr(c->tls_desc, want) == NULL)
		fail_msg("tls_desc \"%s\", want \"%s\"", c->tls_desc, want);
	ping(c);
	conn_close(c);
	return srv_wait(s);
}

static void
test_session_resumed(void **state)
{
	struct tls_params p;
	struct tls_cert cert;
	struct conn c;
	struct srv s;
	struct stat sb;
	char ca[128], qdir[128], file[256];

	(void)state;
	NEED_CERTS();
	params(&p, "localhost", ca, sizeof(ca));
	same_port = 0;
	assert_int_equal(session_round(&s, &c, &p, " verified"), 0);
	same_port = 1;
	session_dir(qdir, sizeof(qdir), file, sizeof(file), "localhost", &s);
	/* Without a QueueDir, nothing is kept or offered. */
	assert_int_equal(session_round(&s, &c, &p, " verified"), 0);
	p.session_dir = qdir;
	assert_int_equal(session_round(&s, &c, &p, " verified"), 0);
	assert_int_equal(stat(file, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0640);
	/* The next connection resumes it; the certificate is still known. */
	assert_int_equal(session_round(&s, &c, &p, " verified (resumed)"), 8);
	conn_tls_cert(&c, &cert);
	assert_int_equal(cert.seen, 1);
	assert_string_equal(cert.subject, "CN=localhost");
	/* Another trust setting is another binding: a full handshake. */
	p.verify = 0;
	assert_int_equal(session_round(&s, &c, &p, "unverified "
	    "(TLSVerify=NO)"), 0);
	assert_null(strstr(c.tls_desc, "resumed"));
	same_port = 0;
}

/* Replace the first `from` by `to` in a file. */
static void
edit_file(const char *file, const char *from, const char *to)
{
	static char buf[65536];
	FILE *fp;
	size_t n;
	char *at;

	fp = fopen(file, "rb");
	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf), fp);
	(void)fclose(fp);
	at = memmem(buf, n, from, strlen(from));
	assert_non_null(at);
	fp = fopen(file, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(buf, 1, (size_t)(at - buf), fp),
	    (size_t)(at - buf));
	assert_int_equal(fwrite(to, 1, strlen(to), fp), strlen(to));
	at += strlen(from);
	assert_int_equal(fwrite(at, 1, n - (size_t)(at - buf), fp),
	    n - (size_t)(at - buf));
	assert_int_equal(fclose(fp), 0);
}

/*
 * A session the server resumes is judged again: one made under the
 * right pin, its binding edited to the pin the config now names, is
 * refused by that pin, and the file is dropped. Corrupt files are no
 * session at all.
 */
static void
test_session_judged_again(void **state)
{
	unsigned char pins[1][TLS_PIN_LEN];
	struct tls_params p;
	struct error err;
	struct conn c;
	struct srv s;
	char ca[128], qdir[128], file[256], hex[65], bad[80];

	(void)state;
	NEED_CERTS();
	server_digest(0, pins[0], hex);
	params(&p, "localhost", ca, sizeof(ca));
	p.pins = pins;
	p.pin_count = 1;
	same_port = 0;
	assert_int_equal(session_round(&s, &c, &p, " pinned"), 0);
	same_port = 1;
	session_dir(qdir, sizeof(qdir), file, sizeof(file), "localhost", &s);
	p.session_dir = qdir;
	assert_int_equal(session_round(&s, &c, &p, " pinned"), 0);
	assert_int_equal(session_round(&s, &c, &p, " pinned (resumed)"), 8);

	memset(bad, 'a', 64);
	bad[64] = '\0';
	edit_file(file, hex, bad);
	memset(pins[0], 0xaa, sizeof(pins[0]));
	assert_int_equal(handshake(&s, SRV_TLS, &c, &p, 5, &err), ST_TEMP);
	assert_int_equal(err.hint, HINT_TLS_VERIFY);
	assert_non_null(strstr(err.text, "does not match TLSFingerprint"));
	assert_non_null(strstr(err.text, hex));
	assert_int_equal(access(file, F_OK), -1);
	conn_close(&c);
	/* The server saw a resumption (it may also see the alert first). */
	(void)srv_wait(&s);

	/* A file that is not a session: a full handshake, then a new one. */
	server_digest(0, pins[0], hex);
	assert_int_equal(session_round(&s, &c, &p, " pinned"), 0);
	edit_file(file, "\n\n", "\n\nnot DER at all");
	assert_int_equal(session_round(&s, &c, &p, " pinned"), 0);
	assert_int_equal(session_round(&s, &c, &p, " pinned (resumed)"), 8);
	edit_file(file, "expires ", "expires 1");	/* beyond 7 days */
	assert_int_equal(session_round(&s, &c, &p, " pinned"), 0);
	same_port = 0;
}

/* --------------------------------------------------------- set-up */

static int
make_certs(void **state)
{
	char cmd[4096], tmpl[] = "/tmp/postino-tls-XXXXXX";
	static const char ec[] = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	    "-nodes -days 2";

	(void)state;
	if (mkdtemp(tmpl) == NULL)
		return 0;
	(void)snprintf(cmd, sizeof(cmd), "set -e; cd %s; exec >/dev/null 2>&1; "
	    "openssl req -x509 %s -keyout ca.key -out ca.pem "
	    "-subj /CN=postino-test-ca; "
	    "openssl req -x509 %s -keyout srv.key -out srv.pem "
	    "-subj /CN=localhost -CA ca.pem -CAkey ca.key "
	    "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
	    "-addext basicConstraints=critical,CA:FALSE; "
	    "openssl req -x509 %s -keyout cli.key -out cli.pem "
	    "-subj /CN=client -CA ca.pem -CAkey ca.key "
	    "-addext basicConstraints=critical,CA:FALSE; "
	    "cat cli.pem cli.key > both.pem; "
	    "openssl pkey -in cli.key -aes256 -passout pass:secret "
	    "-out enc.key; "
	    "mkdir hashed; cp ca.pem hashed/; "
	    "ln -s ca.pem hashed/$(openssl x509 -hash -noout -in ca.pem).0",
	    tmpl, ec, ec, ec);
	if (system(cmd) == 0)
		(void)strlcpy(dir, tmpl, sizeof(dir));
	else
		fprintf(stderr, "openssl CLI failed: TLS tests skipped\n");
	return 0;
}

static int
remove_certs(void **state)
{
	char cmd[128];

	(void)state;
	if (dir[0] != '\0') {
		(void)snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verified),
		cmocka_unit_test(test_ca_dir),
		cmocka_unit_test(test_name_mismatch),
		cmocka_unit_test(test_unknown_ca),
		cmocka_unit_test(test_pins),
		cmocka_unit_test(test_wrong_pin_refused),
		cmocka_unit_test(test_several_pins),
		cmocka_unit_test(test_internal_error_fails_closed),
		cmocka_unit_test(test_verify_off),
		cmocka_unit_test(test_client_cert),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_not_tls),
		cmocka_unit_test(test_handshake_deadline),
		cmocka_unit_test(test_session_resumed),
		cmocka_unit_test(test_session_judged_again),
	};

	return cmocka_run_group_tests(tests, make_certs, remove_certs);
}
