/*
 * conn_impl.h: the inside of a connection, shared by conn.c (which owns
 * it), tls.c (the TLS back end) and the tests and fuzz targets that plug
 * in a back end of their own (tests/unit/stubconn.c). Every other file
 * sees struct conn as opaque and goes through the conn_* functions of
 * postino.h.
 */
#ifndef CONN_IMPL_H
#define CONN_IMPL_H

#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <time.h>

#include "postino.h"

/* A back end: plain socket, TLS, or a test's stub. */
struct conn_ops {
	/* Like read(2)/write(2): > 0 bytes, 0 EOF, -1 with errno (EAGAIN
	 * means "would block", and *want_write says which direction to wait). */
	ssize_t		(*read)(struct conn *, void *, size_t, int *want_write);
	ssize_t		(*write)(struct conn *, const void *, size_t,
			    int *want_write);
	/* Release the back end's state; conn_close then closes the fd. */
	void		(*close)(struct conn *);
	/*
	 * Turn the connection into a TLS one (conn_start_tls), setting
	 * c->tls_desc. NULL: this back end cannot (TLS is already on).
	 */
	int		(*start_tls)(struct conn *, const struct tls_params *,
			    struct error *);
	const char	*name;
};

struct conn {
	int		 fd;
	const struct conn_ops *ops;
	void		*tls;		/* tls.c's state (SSL, BIO) when on */
	void		*tls_ctx;	/* SSL_CTX * */
	void		*backend;	/* another back end's state (stubs) */
	int		 tcp;		/* a TCP socket: quick ACKs re-armed */
	int		 timeout_ms;	/* per step */
	long long	 deadline_ms;	/* absolute, deadline_now_ms() */
	char		 rbuf[4096];
	size_t		 rlen, roff;
	char		 host[HOST_MAX];	/* as configured */
	char		 addr[CONN_ADDR_MAX];	/* numeric address connected to */
	char		 port[PORT_MAX];
	char		 source[64];	/* SourceAddress= ("": any) */
	int		 family;	/* AddressFamily=: AF_UNSPEC, AF_INET,
					 * AF_INET6 */
	struct tls_cert	 tls_cert;	/* tls.c: what the handshake saw */
	char		 tls_desc[128];	/* "TLSv1.3 TLS_AES_256_GCM_SHA384
					 * verified" (or pinned, or
					 * unverified (TLSVerify=NO)); ""
					 * while plain */
};

/* The plain back end, exported so that tests can wrap it. */
extern const struct conn_ops conn_plain_ops;

/* Set up c (not connected, plain back end) in memory the caller owns. */
void		 conn_init(struct conn *, int timeout_s);
/*
 * Resolve host:port and connect c (set up with conn_init) to the first
 * address that answers; see conn_connect in postino.h, which is this
 * over a fresh allocation.
 */
int		 conn_open(struct conn *, const char *host, const char *port,
		    struct error *);
/* Attach an already connected fd (tests, socketpair) and a back end. */
void		 conn_attach(struct conn *, int fd, const struct conn_ops *);
/*
 * Wait with poll(2) until the fd is readable (want_write 0) or
 * writable, before the step deadline (ST_TEMP "timed out" after it).
 * For back ends: tls.c drives its handshake with it.
 */
int		 conn_wait(struct conn *, int want_write, struct error *);

/*
 * Acknowledge what the hub sent now, and what it sends next at once.
 * Linux delays ACKs (up to 40 ms) once the dialogue looks interactive,
 * that is as soon as we answer what we read, and it forgets
 * TCP_QUICKACK then: so it is set again after every read, by conn.c
 * after its back end's reads and by tls.c after each recv of its
 * handshake. A hub with Nagle on holds its reply until it has our ACK of
 * what it sent before: Postfix's EHLO reply waited 42 ms for the ACK of
 * the TLS 1.3 session tickets that had crossed our EHLO (issue 11).
 * Inline here so that tls.c needs no call back into conn.c.
 */
static inline void
conn_quickack(const struct conn *c)
{
	int one = 1;

	if (c->tcp)
		(void)setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one,
		    sizeof(one));
}

/* ------------------------------------------- tls.c, for conn.c only */

/*
 * Handshake over c's socket and switch c to the TLS back end. With pins,
 * the hub's key or certificate must match one of them, whatever its
 * chain says, and a match vouches alone. Without pins and with verify
 * on, the chain must verify against the trust store and the name must
 * match. Any refusal, an internal error of the verification included,
 * is ST_TEMP with hint HINT_TLS_VERIFY and a text naming the key to set
 * and the peer's SHA-256 fingerprint. OpenSSL is only touched here.
 */
int		 tls_start(struct conn *, const struct tls_params *,
		    struct error *);
/* The hub's certificate as the last handshake on c saw it. */
void		 tls_peer_cert(const struct conn *, struct tls_cert *);
/* SHA-256 hex of the peer's public key, for messages. */
void		 tls_peer_fingerprint(const struct conn *, char *buf,
		    size_t len);

#endif /* CONN_IMPL_H */
