/*
 * stubconn.h: a scripted hub in memory, behind a struct conn (a back end
 * of struct conn_ops), for unit tests of everything that talks to a
 * hub over a connection: smtp.c, the runner. No socket, no fork, no
 * libc interposition.
 *
 * A script is a list of steps, run in order as the client reads, writes,
 * starts TLS and closes:
 *
 *   SEND(s)         the hub writes s (at once: it waits for nobody)
 *   SENDN(s, n)     the same for n bytes that may hold NULs
 *   EXPECT(line)    the client's next line is line (CRLF stripped)
 *   WRITE(s)        the client's next write(2) is exactly s, in one call
 *                   (pipelining: MAIL, RCPT and DATA in one write)
 *   DATA(s)         the client's lines up to "." are exactly s (".\r\n"
 *                   included); s NULL: st->data_want is used
 *   DATA_ANY        the client's lines up to ".", whatever they are (a
 *                   message the test cannot predict, such as a bounce
 *                   with its date): kept in st->data_seen
 *   CALL            the hub calls st->on_call(st, st->call_arg) when it
 *                   gets there (e.g. to look at the queue on disk while
 *                   the client waits for a reply), then goes on
 *   HANG            the hub says nothing more and waits until the client
 *                   closes: a read then waits for the step deadline (a
 *                   silent hub: "timed out" from the real conn_wait)
 *   TRICKLE(s, ms)  the hub writes s one byte every ms milliseconds
 *                   (until the client closes: a client may give up)
 *   TLS             the client starts TLS (STARTTLS or implicit): faked,
 *                   conn_tls_info() then says st->tls_desc
 *   TLS_FAIL(text, hint)  the TLS start fails: ST_TEMP, text, hint
 *   FAIL(errno)     the client's next read or write fails with errno
 *   END             the hub hangs up: reads give EOF, writes EPIPE
 *
 * A read while the script waits for the client (EXPECT, WRITE, DATA,
 * TLS) is a script failure and fails at once (EDEADLK) rather than
 * waiting for a deadline. Any mismatch is recorded (first one kept) and
 * makes stubconn_end() non-zero; it prints what went wrong.
 *
 * Use:
 *   struct conn *c;
 *   struct stubconn *st = stubconn_new(script, "hub.test", 5, &c);
 *   st->read_max = 1;            (optional: short reads and writes)
 *   smtp_open(&s, c, ...);       (smtp owns c from here on)
 *   ...; smtp_close(s);          (frees c: the stub sees the close)
 *   assert_int_equal(stubconn_end(st), 0);
 * Without smtp, free c with conn_free() before stubconn_end().
 */
#ifndef STUBCONN_H
#define STUBCONN_H

#include <stddef.h>

#include "conn_impl.h"

enum stub_op {
	STUB_END = 0, STUB_SEND, STUB_EXPECT, STUB_WRITE, STUB_DATA,
	STUB_HANG, STUB_TRICKLE, STUB_TLS, STUB_TLS_FAIL, STUB_FAIL,
	STUB_DATA_ANY, STUB_CALL
};

struct stub_step {
	enum stub_op	 op;
	const char	*s;
	int		 n;	/* SENDN length, TRICKLE ms, hint, errno */
};

#define SEND(x)			{ STUB_SEND, (x), 0 }
#define SENDN(x, len)		{ STUB_SEND, (x), (len) }
#define EXPECT(x)		{ STUB_EXPECT, (x), 0 }
#define WRITE(x)		{ STUB_WRITE, (x), 0 }
#define DATA(x)			{ STUB_DATA, (x), 0 }
#define HANG			{ STUB_HANG, NULL, 0 }
#define TRICKLE(x, ms)		{ STUB_TRICKLE, (x), (ms) }
#define TLS			{ STUB_TLS, NULL, 0 }
#define TLS_FAIL(x, hint)	{ STUB_TLS_FAIL, (x), (hint) }
#define FAIL(e)			{ STUB_FAIL, NULL, (e) }
#define END			{ STUB_END, NULL, 0 }
#define DATA_ANY		{ STUB_DATA_ANY, NULL, 0 }
#define CALL			{ STUB_CALL, NULL, 0 }

struct stubconn;
typedef void	 stub_call_fn(struct stubconn *, void *arg);

struct stubconn {
	/* Settings, changed by the test after stubconn_new. */
	size_t		 read_max;	/* most bytes per read; 0: no limit */
	size_t		 write_max;	/* most bytes taken per write; 0: all */
	const char	*data_want;	/* for DATA(NULL) */
	char		 tls_desc[128];	/* what a faked TLS start reports */
	stub_call_fn	*on_call;	/* for CALL */
	void		*call_arg;
	/* What happened, for assertions. */
	int		 reads, writes;	/* calls of the back end */
	int		 closed;	/* the client closed the connection */
	int		 tls_started;
	char		 tls_servername[256]; /* as conn_start_tls passed it */
	char		 failure[512];	/* first script failure, "" if none */
	char		*data_seen;	/* the last DATA_ANY, NUL-terminated */
	int		 calls;		/* CALL steps run */
	/* The script and its state. */
	const struct stub_step *script;
	size_t		 step;
	char		*out;		/* hub -> client bytes not yet read */
	size_t		 outlen, outoff, outcap;
	char		*in;		/* client bytes of the current step */
	size_t		 inlen, incap;
	size_t		 line_start;	/* DATA: where the current line began */
	size_t		 trickled;	/* TRICKLE: bytes released so far */
	int		 timer;		/* the conn's fd: a timerfd */
	int		 trickling;
};

/*
 * A stub hub running script, and a connection to it (*conn, from
 * conn_new: its host is host, its address 127.0.0.1, its port 25) with
 * timeout_s per step. Aborts the test on failure to set up.
 */
struct stubconn	*stubconn_new(const struct stub_step *script, const char *host,
		    int timeout_s, struct conn **conn);
/*
 * 0 when the script ran to END without a mismatch, else 1 (after
 * printing why to stderr). Frees st; the conn must be gone already.
 */
int		 stubconn_end(struct stubconn *st);

#endif /* STUBCONN_H */
