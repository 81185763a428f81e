/*
 * test_deliver.c: the settlement (deliver.c) and the queue pass
 * (runner.c) over scripted hubs behind stub connections (stubconn.h),
 * plugged in through the transport seam (deliver_ctx.connect), in a
 * temporary queue directory, with the log in a temporary LogFile:
 * sent, temporary failure (hub down, HubBackoff, 4xx at RCPT and after
 * the dot), partial rejection and its report over the same session,
 * every recipient refused, the possible duplicate, expiry, and one
 * report per failure across attempts.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"
#include "stubconn.h"

static char qdir[] = "/tmp/postino-test-deliver.XXXXXX";
static char logpath[PATH_MAX];

#define GREET		"220 hub.test ESMTP\r\n"
#define EHLO_BARE	"250-hub.test\r\n250 HELP\r\n"
#define BODY		"Subject: t\r\nFrom: a@x.test\r\n\r\nhello\r\n"
#define HELLO		SEND(GREET), EXPECT("EHLO client.test"), \
			SEND(EHLO_BARE)
#define BYE		EXPECT("QUIT"), SEND("221 bye\r\n"), END
#define MAIL_A		EXPECT("MAIL FROM:<a@x.test>"), SEND("250 ok\r\n")
#define RCPT(a, reply)	EXPECT("RCPT TO:<" a ">"), SEND(reply "\r\n")
#define BODY_OK(id)	EXPECT("DATA"), SEND("354 go\r\n"), \
			DATA(BODY ".\r\n"), \
			SEND("250 2.0.0 Ok: queued as " id "\r\n")
/* The report to a@x.test from <>: its text is checked afterwards. */
#define REPORT		EXPECT("MAIL FROM:<>"), SEND("250 ok\r\n"), \
			RCPT("a@x.test", "250 ok"), \
			EXPECT("DATA"), SEND("354 go\r\n"), DATA_ANY, \
			SEND("250 2.0.0 Ok: queued as REPORT\r\n")

/* ------------------------------------------------------------ fixture */

#define ATTEMPTS_MAX	4

/* The transport seam: one script per connection attempt, NULL refused. */
struct hub {
	const struct stub_step *script[ATTEMPTS_MAX];
	size_t		 nscript;
	size_t		 calls;		/* connection attempts */
	struct stubconn	*st[ATTEMPTS_MAX];
	char		 routes[ATTEMPTS_MAX][HOST_MAX + PORT_MAX];
	const char	*qid;		/* for the CALL hook */
	int		 dup_on_disk;	/* CALL: possible-duplicate 1 seen */
	char		 data_seen[8192]; /* DATA_ANY of every session */
	const char	*want[ATTEMPTS_MAX]; /* routes; NULL: hub.test:25 */
};

struct fx {
	struct config	 cfg;
	struct deliver_ctx ctx;
	struct hub_session hs;
	struct hub	 hub;
};

static void	check_dup_on_disk(struct stubconn *, void *);

static int
opener(void *arg, const struct route *rt, int timeout_s, struct conn **out,
    struct error *err)
{
	struct hub *h = arg;
	size_t i = h->calls++;

	*out = NULL;
	if (i < ATTEMPTS_MAX)
		(void)snprintf(h->routes[i], sizeof(h->routes[i]), "%s:%s",
		    rt->host, rt->port);
	if (i >= h->nscript || h->script[i] == NULL)
		return error_set(err, ST_TEMP, "connect to %s:%s: Connection "
		    "refused", rt->host, rt->port);
	h->st[i] = stubconn_new(h->script[i], rt->host, timeout_s, out);
	h->st[i]->on_call = check_dup_on_disk;
	h->st[i]->call_arg = h;
	return ST_OK;
}

/* The log from the start of the test (LogFile lines). */
static const char *
log_text(void)
{
	static char buf[65536];
	ssize_t n;
	int fd = open(logpath, O_RDONLY);

	assert_true(fd != -1);
	n = read(fd, buf, sizeof(buf) - 1);
	(void)close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

static int
log_count(const char *what)
{
	const char *p = log_text();
	int n = 0;

	while ((p = strstr(p, what)) != NULL) {
		n++;
		p += strlen(what);
	}
	return n;
}

/* Entries (control files, or data files) in an area of the queue. */
static size_t
area_count(const char *area)
{
	char path[PATH_MAX];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	(void)snprintf(path, sizeof(path), "%s/%s", qdir, area);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	(void)closedir(d);
	return n;
}

static void
rm_area(const char *area)
{
	char cmd[PATH_MAX + 64];

	(void)snprintf(cmd, sizeof(cmd), "rm -f %s/%s/* %s/hub-down.*", qdir,
	    area, qdir);
	assert_int_equal(system(cmd), 0);
}

/* Every test starts with an empty queue, no hub mark and an empty log. */
static int
fx_setup(void **state)
{
	struct fx *f;
	int fd;

	rm_area("queue");
	rm_area("failed");
	rm_area("data");
	if ((fd = open(logpath, O_WRONLY | O_TRUNC)) == -1)
		return -1;
	(void)close(fd);
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	config_defaults(&f->cfg);
	(void)strlcpy(f->cfg.queue_dir, qdir, sizeof(f->cfg.queue_dir));
	(void)strlcpy(f->cfg.hub_host, "hub.test", sizeof(f->cfg.hub_host));
	(void)strlcpy(f->cfg.hub_port, "25", sizeof(f->cfg.hub_port));
	f->cfg.tls = TLS_NONE;
	f->cfg.timeout = 2;
	f->cfg.hub_backoff = 60;
	f->cfg.retry_interval = 60;
	f->cfg.max_retry_interval = 3600;
	f->ctx.cfg = &f->cfg;
	f->ctx.domain = "x.test";
	f->ctx.hostname = "client.test";
	f->ctx.connect = opener;
	f->ctx.connect_arg = &f->hub;
	*state = f;
	return 0;
}

static int
fx_teardown(void **state)
{
	free(*state);
	return 0;
}

static void
fx_hubs(struct fx *f, const struct stub_step *a, const struct stub_step *b,
    const struct stub_step *c)
{
	memset(&f->hub, 0, sizeof(f->hub));
	f->hub.script[0] = a;
	f->hub.script[1] = b;
	f->hub.script[2] = c;
	f->hub.nscript = 3;
}

/*
 * Close the session (QUIT) and check every stub hub ran its script to
 * the end; what DATA_ANY saw is kept in hub.data_seen.
 */
static void
fx_close(struct fx *f)
{
	size_t i;

	deliver_session_close(&f->hs);
	memset(&f->hs, 0, sizeof(f->hs));
	for (i = 0; i < ATTEMPTS_MAX; i++) {
		if (f->hub.st[i] == NULL)
			continue;
		if (f->hub.st[i]->data_seen != NULL)
			(void)strlcat(f->hub.data_seen,
			    f->hub.st[i]->data_seen,
			    sizeof(f->hub.data_seen));
		assert_int_equal(stubconn_end(f->hub.st[i]), 0);
		f->hub.st[i] = NULL;
	}
	for (i = 0; i < f->hub.calls && i < ATTEMPTS_MAX; i++)
		assert_string_equal(f->hub.routes[i], f->hub.want[i] != NULL ?
		    f->hub.want[i] : "hub.test:25");
}

/* An uncommitted entry from sender to rcpts, its message in *fd. */
static void
new_entry(struct queue_entry *e, int *fd, const char *sender,
    const char *const *rcpts)
{
	struct error err;
	size_t i;

	queue_entry_init(e);
	message_new_qid(e->qid);
	e->queued = e->next_retry = time(NULL);
	e->uid = getuid();
	(void)strlcpy(e->sender, sender, sizeof(e->sender));
	e->size = (off_t)strlen(BODY);
	for (i = 0; rcpts[i] != NULL; i++)
		assert_int_equal(queue_entry_add_rcpt(e, rcpts[i], RS_PENDING,
		    &err), ST_OK);
	assert_int_equal(queue_spool_create(qdir, fd, &err), ST_OK);
	assert_int_equal(write(*fd, BODY, strlen(BODY)),
	    (ssize_t)strlen(BODY));
}

static int
submit(struct fx *f, struct queue_entry *e, int fd, int now, char mode,
    struct outcome *out)
{
	struct submit_mode m = { now, mode };

	return deliver_submission(&f->ctx, &f->hs, e, fd, &m, out);
}

/* Commit an entry (a submission queued by -odq) and return its id. */
static void
committed_entry(struct fx *f, const char *sender, const char *const *rcpts,
    char qid[QID_MAX])
{
	struct queue_entry e;
	struct outcome out;
	int fd;

	new_entry(&e, &fd, sender, rcpts);
	assert_int_equal(submit(f, &e, fd, 0, 'p', &out), ST_OK);
	assert_int_equal(out.kind, OUT_QUEUED);
	assert_int_equal(out.committed, 1);
	(void)strlcpy(qid, e.qid, QID_MAX);
	(void)close(fd);
	queue_entry_free(&e);
}

/* Lock a queued entry as the runner does. */
static void
lock(const char *qid, struct queue_entry *e)
{
	struct error err;

	queue_entry_init(e);
	assert_int_equal(queue_lock_entry(qdir, qid, e, &err), ST_OK);
}

/* Read an entry of an area without locking it; ST_OK when it is there. */
static int
peek(const char *area, const char *qid, struct queue_entry *e)
{
	struct error err;
	int busy;

	queue_entry_init(e);
	return queue_peek_entry(qdir, area, qid, e, &busy, &err);
}

/* The only id in an area. */
static void
only_id(const char *area, char qid[QID_MAX])
{
	char (*ids)[QID_MAX];
	struct error err;
	size_t n;

	assert_int_equal(queue_list_ids(qdir, area, &ids, &n, &err), ST_OK);
	assert_int_equal(n, 1);
	(void)strlcpy(qid, ids[0], QID_MAX);
	free(ids);
}

static long long
hub_down_since(void)
{
	struct route rt;
	char why[ERR_MAX];

	memset(&rt, 0, sizeof(rt));
	(void)strlcpy(rt.host, "hub.test", sizeof(rt.host));
	(void)strlcpy(rt.port, "25", sizeof(rt.port));
	return queue_hub_down_since(qdir, &rt, why, sizeof(why));
}

/* CALL: the control file as it is while the hub has not answered. */
static void
check_dup_on_disk(struct stubconn *st, void *arg)
{
	struct hub *h = arg;
	char path[PATH_MAX], buf[16384];
	ssize_t n;
	int fd;

	(void)st;
	(void)snprintf(path, sizeof(path), "%s/queue/%s", qdir, h->qid);
	if ((fd = open(path, O_RDONLY)) == -1)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	(void)close(fd);
	if (n > 0) {
		buf[n] = '\0';
		h->dup_on_disk = strstr(buf, "\npossible-duplicate 1\n") !=
		    NULL;
	}
}

static const char *const two[] = { "b@y.test", "c@z.test", NULL };
static const char *const one[] = { "b@y.test", NULL };
static const char *const three[] = { "b@y.test", "c@z.test", "d@w.test",
    NULL };

/* --------------------------------------------------------------- sent */

static void
test_sent(void **state)
{
	static const struct stub_step s[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "250 ok"),
		RCPT("c@z.test", "250 ok"), BODY_OK("HUB1"), BYE
	};
	struct fx *f = *state;
	struct queue_entry e;
	struct outcome out;
	int fd;

	fx_hubs(f, s, NULL, NULL);
	new_entry(&e, &fd, "a@x.test", two);
	assert_int_equal(submit(f, &e, fd, 1, 'p', &out), ST_OK);
	fx_close(f);
	assert_int_equal(out.kind, OUT_SENT);
	assert_int_equal(out.sent, 2);
	assert_int_equal(out.failed, 0);
	assert_int_equal(out.pending, 0);
	assert_int_equal(out.committed, 0);
	assert_int_equal(out.possible_dup, 0);
	assert_int_equal(f->hub.calls, 1);
	assert_int_equal(e.rcpt[0].state, RS_SENT);
	assert_int_equal(e.rcpt[1].state, RS_SENT);
	/* Nothing on disk: no entry, no data, no report. */
	assert_int_equal(area_count("queue"), 0);
	assert_int_equal(area_count("failed"), 0);
	assert_int_equal(area_count("data"), 0);
	assert_int_equal(hub_down_since(), -1);
	/* One line per recipient, with the hub's queue id. */
	assert_int_equal(log_count("status=sent"), 2);
	assert_int_equal(log_count("to=<b@y.test>, relay=hub.test[127.0.0.1]"
	    ":25, "), 1);
	assert_int_equal(log_count("to=<c@z.test>"), 1);
	assert_int_equal(log_count("queued as HUB1"), 2);
	assert_int_equal(log_count("status=deferred"), 0);
	(void)close(fd);
	queue_entry_free(&e);
}

/* A queued entry delivered by deliver_entry is removed, data and all. */
static void
test_sent_from_queue(void **state)
{
	static const struct stub_step s[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "250 ok"), BODY_OK("HUB2"),
		BYE
	};
	struct fx *f = *state;
	struct queue_entry e;
	struct outcome out;
	char qid[QID_MAX];

	fx_hubs(f, s, NULL, NULL);
	committed_entry(f, "a@x.test", one, qid);
	assert_int_equal(f->hub.calls, 0);	/* -odq: no attempt */
	assert_int_equal(area_count("data"), 1);
	lock(qid, &e);
	deliver_entry(&f->ctx, &f->hs, &e, 0, &out);
	fx_close(f);
	assert_int_equal(out.kind, OUT_SENT);
	assert_int_equal(out.sent, 1);
	assert_int_equal(area_count("queue"), 0);
	assert_int_equal(area_count("data"), 0);
	assert_int_equal(log_count("status=sent"), 1);
	assert_int_equal(log_count(": removed"), 1);
	queue_entry_free(&e);
}

/* ------------------------------------------------- temporary failure */

static void
test_hub_down_then_backoff(void **state)
{
	struct fx *f = *state;
	struct queue_entry e, q;
	struct outcome out;
	time_t t0 = time(NULL);
	int fd;

	fx_hubs(f, NULL, NULL, NULL);	/* every connection refused */
	new_entry(&e, &fd, "a@x.test", two);
	assert_int_equal(submit(f, &e, fd, 1, 'p', &out), ST_OK);
	fx_close(f);
	assert_int_equal(f->hub.calls, 1);
	assert_int_equal(out.kind, OUT_QUEUED);
	assert_int_equal(out.committed, 1);
	assert_int_equal(out.pending, 2);
	assert_non_null(strstr(out.err.text, "Connection refused"));
	assert_int_equal(peek("queue", e.qid, &q), ST_OK);
	assert_int_equal(q.nrcpt, 2);
	assert_int_equal(q.rcpt[0].state, RS_PENDING);
	assert_int_equal(q.rcpt[1].state, RS_PENDING);
	assert_int_equal(q.attempts, 1);
	assert_non_null(strstr(q.last_error, "Connection refused"));
	/* RetryInterval (60 s) after the attempt, up to a fifth more. */
	assert_true(q.next_retry >= t0 + 60 && q.next_retry <= time(NULL) +
	    72);
	assert_int_equal(q.possible_dup, 0);
	queue_entry_free(&q);
	/* The HubBackoff mark, and one deferred line per recipient. */
	assert_true(hub_down_since() >= 0);
	assert_int_equal(log_count("status=deferred"), 2);
	assert_int_equal(log_count("queued for a later attempt"), 1);
	(void)close(fd);
	queue_entry_free(&e);

	/* Another sender within HubBackoff: queued, no connection tried. */
	memset(&f->hs, 0, sizeof(f->hs));
	new_entry(&e, &fd, "a@x.test", one);
	assert_int_equal(submit(f, &e, fd, 1, 'p', &out), ST_OK);
	fx_close(f);
	assert_int_equal(f->hub.calls, 1);	/* the opener was not called */
	assert_int_equal(out.kind, OUT_QUEUED);
	assert_int_equal(out.committed, 1);
	assert_int_equal(peek("queue", e.qid, &q), ST_OK);
	assert_non_null(strstr(q.last_error, "(HubBackoff)"));
	assert_true(q.next_retry <= time(NULL));	/* due at once */
	assert_int_equal(q.rcpt[0].state, RS_PENDING);
	queue_entry_free(&q);
	assert_int_equal(area_count("queue"), 2);
	assert_int_equal(log_count("not tried (HubBackoff)"), 1);
	(void)close(fd);
	queue_entry_free(&e);

	/* HubBackoff 0: the mark is there but the hub is tried. */
	f->cfg.hub_backoff = 0;
	new_entry(&e, &fd, "a@x.test", one);
	assert_int_equal(submit(f, &e, fd, 1, 'p', &out), ST_OK);
	fx_close(f);
	assert_int_equal(f->hub.calls, 2);
	assert_int_equal(out.kind, OUT_QUEUED);
	(void)close(fd);
	queue_entry_free(&e);
}

/* A queue run that reaches the hub removes the HubBackoff mark. */
static void
test_hub_up_clears_mark(void **state)
{
	static const struct stub_step s[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "250 ok"), BODY_OK("UP"), BYE
	};
	struct fx *f = *state;
	struct queue_entry e;
	struct outcome out;
	char qid[QID_MAX];

	fx_hubs(f, NULL, s, NULL);
	committed_entry(f, "a@x.test", one, qid);
	lock(qid, &e);
	deliver_entry(&f->ctx, &f->hs, &e, 0, &out);
	fx_close(f);
	assert_int_equal(out.kind, OUT_QUEUED);
	assert_int_equal(e.attempts, 1);
	queue_entry_free(&e);
	assert_true(hub_down_since() >= 0);
	/* The queue run ignores HubBackoff (its schedule is the retry). */
	lock(qid, &e);
	deliver_entry(&f->ctx, &f->hs, &e, 0, &out);
	fx_close(f);
	assert_int_equal(f->hub.calls, 2);
	assert_int_equal(out.kind, OUT_SENT);
	assert_int_equal(hub_down_since(), -1);
	assert_int_equal(area_count("queue"), 0);
	queue_entry_free(&e);
}

static void
test_rcpt_4xx(void **state)
{
	static const struct stub_step s[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "450 4.2.0 greylisted"), BYE
	};
	struct fx *f = *state;
	struct queue_entry e, q;
	struct outcome out;
	int fd;

	fx_hubs(f, s, NULL, NULL);
	new_entry(&e, &fd, "a@x.test", one);
	assert_int_equal(submit(f, &e, fd, 1, 'p', &out), ST_OK);
	fx_close(f);
	assert_int_equal(out.kind, OUT_QUEUED);
	assert_int_equal(out.committed, 1);
	assert_int_equal(out.pending, 1);
	assert_int_equal(out.failed, 0);
	assert_int_equal(out.possible_dup, 0);
	assert_int_equal(peek("queue", e.qid, &q), ST_OK);
	assert_int_equal(q.rcpt[0].state, RS_PENDING);
	assert_string_equal(q.rcpt[0].reply, "450 4.2.0 greylisted");
	assert_non_null(strstr(q.last_error, "450 4.2.0 greylisted"));
	assert_true(q.next_retry > time(NULL));
	queue_entry_free(&q);
	/* A hub that answers is not down. */
	assert_int_equal(hub_down_since(), -1);
	assert_int_equal(log_count("status=deferred (450 4.2.0 greylisted)"),
	    1);
	assert_int_equal(area_count("failed"), 0);
	(void)close(fd);
	queue_entry_free(&e);
}

static void
test_dot_4xx(void **state)
{
	static const struct stub_step s[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "250 ok"),
		EXPECT("DATA"), SEND("354 go\r\n"), DATA(BODY ".\r\n"),
		SEND("451 4.3.0 queue full\r\n"), BYE
	};
	struct fx *f = *state;
	struct queue_entry e, q;
	struct outcome out;
	int fd;

	fx_hubs(f, s, NULL, NULL);
	new_entry(&e, &fd, "a@x.test", one);
	assert_int_equal(submit(f, &e, fd, 1, 'p', &out), ST_OK);
	fx_close(f);
	assert_int_equal(out.kind, OUT_QUEUED);
	assert_int_equal(out.committed, 1);
	/* The hub answered the dot: no possible duplicate. */
	assert_int_equal(out.possible_dup, 0);
	assert_int_equal(peek("queue", e.qid, &q), ST_OK);
	assert_int_equal(q.rcpt[0].state, RS_PENDING);
	assert_int_equal(q.possible_dup, 0);
	assert_non_null(strstr(q.last_error, "451 4.3.0 queue full"));
	queue_entry_free(&q);
	assert_int_equal(log_count("status=deferred"), 1);
	assert_int_equal(log_count("possible duplicate"), 0);
	(void)close(fd);
	queue_entry_free(&e);
}

/* The hub answered the dot of a queued entry with 4xx: the mark made
 * before the dot is taken back, so the retry is no possible duplicate. */
static void
test_dot_4xx_queued_entry(void **state)
{
	static const struct stub_step s[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "250 ok"),
		EXPECT("DATA"), SEND("354 go\r\n"), DATA(BODY ".\r\n"), CALL,
		SEND("451 4.3.0 queue full\r\n"), BYE
	};
	struct fx *f = *state;
	struct queue_entry e, q;
	struct outcome out;
	char qid[QID_MAX];

	fx_hubs(f, s, NULL, NULL);
	committed_entry(f, "a@x.test", one, qid);
	f->hub.qid = qid;
	lock(qid, &e);
	deliver_entry(&f->ctx, &f->hs, &e, 0, &out);
	fx_close(f);
	assert_int_equal(f->hub.dup_on_disk, 1);	/* while it waited */
	assert_int_equal(out.kind, OUT_QUEUED);
	assert_int_equal(out.possible_dup, 0);
	queue_entry_free(&e);
	assert_int_equal(peek("queue", qid, &q), ST_OK);
	assert_int_equal(q.possible_dup, 0);
	assert_int_equal(q.attempts, 1);
	assert_int_equal(q.rcpt[0].state, RS_PENDING);
	queue_entry_free(&q);
	assert_int_equal(log_count("possible duplicate"), 0);
}

/* -------------------------------------------------- partial rejection */

static void
test_partial_rejection(void **state)
{
	static const struct stub_step s[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "250 ok"),
		RCPT("c@z.test", "550 5.1.1 no such user"), BODY_OK("P1"),
		/* The report, over the same session. */
		EXPECT("RSET"), SEND("250 ok\r\n"), REPORT, BYE
	};
	struct fx *f = *state;
	struct queue_entry e;
	struct outcome out;
	int fd;

	fx_hubs(f, s, NULL, NULL);
	new_entry(&e, &fd, "a@x.test", two);
	assert_int_equal(submit(f, &e, fd, 1, 'p', &out), ST_OK);
	fx_close(f);
	assert_int_equal(f->hub.calls, 1);
	assert_int_equal(out.kind, OUT_SENT);
	assert_int_equal(out.sent, 1);
	assert_int_equal(out.failed, 1);
	assert_int_equal(out.pending, 0);
	assert_int_equal(out.committed, 0);
	assert_int_equal(e.rcpt[0].state, RS_SENT);
	assert_int_equal(e.rcpt[1].state, RS_FAILED);
	/* The report went out and was removed; nothing else is left. */
	assert_int_equal(area_count("queue"), 0);
	assert_int_equal(area_count("failed"), 0);
	assert_int_equal(area_count("data"), 0);
	assert_non_null(strstr(f->hub.data_seen, "To: <a@x.test>\r\n"));
	assert_non_null(strstr(f->hub.data_seen,
	    "Final-Recipient: rfc822; c@z.test\r\n"));
	assert_non_null(strstr(f->hub.data_seen, "Status: 5.1.1\r\n"));
	assert_null(strstr(f->hub.data_seen, "rfc822; b@y.test"));
	assert_non_null(strstr(f->hub.data_seen, "Subject: t\r\n"));
	assert_int_equal(log_count("sender non-delivery notification"), 1);
	assert_int_equal(log_count("to=<c@z.test>"), 1);
	assert_int_equal(log_count("status=bounced (550 5.1.1 no such user)"),
	    1);
	assert_int_equal(log_count("to=<a@x.test>"), 1);
	assert_int_equal(log_count("status=sent"), 2);	/* b, and the report */
	(void)close(fd);
	queue_entry_free(&e);
}

/* -N NEVER: the rejection is logged, no report. */
static void
test_partial_rejection_notify_never(void **state)
{
	static const struct stub_step s[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "250 ok"),
		RCPT("c@z.test", "550 5.1.1 no such user"), BODY_OK("P2"),
		BYE
	};
	struct fx *f = *state;
	struct queue_entry e;
	struct outcome out;
	int fd;

	fx_hubs(f, s, NULL, NULL);
	new_entry(&e, &fd, "a@x.test", two);
	(void)strlcpy(e.dsn.notify, "NEVER", sizeof(e.dsn.notify));
	assert_int_equal(submit(f, &e, fd, 1, 'p', &out), ST_OK);
	fx_close(f);
	assert_int_equal(out.kind, OUT_SENT);
	assert_int_equal(out.failed, 1);
	assert_int_equal(area_count("queue"), 0);
	assert_int_equal(area_count("failed"), 0);
	assert_int_equal(area_count("data"), 0);
	assert_int_equal(log_count("sender non-delivery notification"), 0);
	assert_int_equal(log_count("sender asked for NOTIFY=NEVER"), 1);
	assert_int_equal(log_count("status=bounced"), 1);
	(void)close(fd);
	queue_entry_free(&e);
}

/* -------------------------------------------- every recipient refused */

static void
test_all_refused(void **state)
{
	static const struct stub_step s[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "550 5.1.1 no such user"),
		RCPT("c@z.test", "553 5.1.3 bad address"), BYE
	};
	struct fx *f = *state;
	struct queue_entry e, q;
	struct outcome out;
	int fd;

	/* -oep (the default): the caller is told; no report. */
	fx_hubs(f, s, NULL, NULL);
	new_entry(&e, &fd, "a@x.test", two);
	assert_int_equal(submit(f, &e, fd, 1, 'p', &out), ST_PERM);
	fx_close(f);
	assert_int_equal(out.kind, OUT_REFUSED);
	assert_int_equal(out.stage, STAGE_RCPT);
	assert_int_equal(out.err.status, ST_PERM);
	assert_int_equal(out.failed, 2);
	assert_int_equal(out.committed, 1);
	assert_int_equal(area_count("queue"), 0);
	assert_int_equal(peek("failed", e.qid, &q), ST_OK);
	assert_int_equal(q.rcpt[0].state, RS_FAILED);
	assert_string_equal(q.rcpt[1].reply, "553 5.1.3 bad address");
	queue_entry_free(&q);
	assert_int_equal(log_count("kept in the failed area"), 1);
	assert_int_equal(log_count("status=bounced"), 2);
	assert_int_equal(log_count("sender non-delivery notification"), 0);
	(void)close(fd);
	queue_entry_free(&e);
}

/* -oem: a report too; the session ended with the refusal, so a new one. */
static void
test_all_refused_mail_mode(void **state)
{
	static const struct stub_step s[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "550 5.1.1 no such user"),
		BYE
	};
	static const struct stub_step report[] = { HELLO, REPORT, BYE };
	struct fx *f = *state;
	struct queue_entry e;
	struct outcome out;
	char qid[QID_MAX];
	int fd;

	fx_hubs(f, s, report, NULL);
	new_entry(&e, &fd, "a@x.test", one);
	assert_int_equal(submit(f, &e, fd, 1, 'm', &out), ST_PERM);
	fx_close(f);
	assert_int_equal(out.kind, OUT_REFUSED);
	assert_int_equal(out.stage, STAGE_RCPT);
	assert_int_equal(out.committed, 1);
	assert_int_equal(f->hub.calls, 2);
	only_id("failed", qid);
	assert_string_equal(qid, e.qid);
	assert_int_equal(area_count("queue"), 0);	/* the report went */
	assert_int_equal(area_count("data"), 1);	/* the failed entry's */
	assert_non_null(strstr(f->hub.data_seen,
	    "Final-Recipient: rfc822; b@y.test\r\n"));
	assert_int_equal(log_count("sender non-delivery notification"), 1);
	(void)close(fd);
	queue_entry_free(&e);
}

/* The sender refused for good: kept in failed/ as well. */
static void
test_sender_refused(void **state)
{
	static const struct stub_step s[] = {
		HELLO, EXPECT("MAIL FROM:<a@x.test>"),
		SEND("553 5.7.1 sender rejected\r\n"), BYE
	};
	struct fx *f = *state;
	struct queue_entry e;
	struct outcome out;
	int fd;

	fx_hubs(f, s, NULL, NULL);
	new_entry(&e, &fd, "a@x.test", one);
	assert_int_equal(submit(f, &e, fd, 1, 'p', &out), ST_PERM);
	fx_close(f);
	assert_int_equal(out.kind, OUT_REFUSED);
	assert_int_equal(out.stage, STAGE_MAIL);
	assert_int_equal(area_count("failed"), 1);
	assert_int_equal(area_count("queue"), 0);
	assert_int_equal(log_count("status=bounced (hub refused the sender"),
	    1);
	(void)close(fd);
	queue_entry_free(&e);
}

/* ------------------------------------------------- possible duplicate */

static void
test_dup_submission(void **state)
{
	static const struct stub_step s[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "250 ok"),
		EXPECT("DATA"), SEND("354 go\r\n"), DATA(BODY ".\r\n"), END
	};
	struct fx *f = *state;
	struct queue_entry e, q;
	struct outcome out;
	int fd;

	fx_hubs(f, s, NULL, NULL);
	new_entry(&e, &fd, "a@x.test", one);
	assert_int_equal(submit(f, &e, fd, 1, 'p', &out), ST_OK);
	fx_close(f);
	assert_int_equal(out.kind, OUT_QUEUED);
	assert_int_equal(out.committed, 1);
	assert_int_equal(out.possible_dup, 1);
	assert_int_equal(peek("queue", e.qid, &q), ST_OK);
	assert_int_equal(q.possible_dup, 1);
	assert_int_equal(q.rcpt[0].state, RS_PENDING);
	queue_entry_free(&q);
	assert_int_equal(log_count("reply to the final dot was lost"), 1);
	assert_int_equal(log_count("status=deferred"), 1);
	(void)close(fd);
	queue_entry_free(&e);
}

/*
 * A committed entry: "possible-duplicate 1" is on disk while the hub
 * has the dot and not yet answered; after the answer, the entry goes.
 */
static void
test_dup_marked_before_dot(void **state)
{
	static const struct stub_step s[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "250 ok"),
		EXPECT("DATA"), SEND("354 go\r\n"), DATA(BODY ".\r\n"), CALL,
		SEND("250 2.0.0 Ok: queued as D1\r\n"), BYE
	};
	struct fx *f = *state;
	struct queue_entry e;
	struct outcome out;
	char qid[QID_MAX];

	fx_hubs(f, s, NULL, NULL);
	committed_entry(f, "a@x.test", one, qid);
	f->hub.qid = qid;
	lock(qid, &e);
	assert_int_equal(e.possible_dup, 0);
	deliver_entry(&f->ctx, &f->hs, &e, 0, &out);
	assert_int_equal(f->hub.st[0]->calls, 1);
	fx_close(f);
	assert_int_equal(f->hub.dup_on_disk, 1);
	assert_int_equal(out.kind, OUT_SENT);
	assert_int_equal(out.possible_dup, 0);
	assert_int_equal(area_count("queue"), 0);
	assert_int_equal(log_count("possible duplicate"), 0);
	queue_entry_free(&e);
}

/* The reply to the dot of a queued entry is lost; the next run says so. */
static void
test_dup_next_delivery(void **state)
{
	static const struct stub_step lost[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "250 ok"),
		EXPECT("DATA"), SEND("354 go\r\n"), DATA(BODY ".\r\n"), CALL,
		END
	};
	static const struct stub_step again[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "250 ok"), BODY_OK("D2"), BYE
	};
	struct fx *f = *state;
	struct queue_entry e, q;
	struct outcome out;
	char qid[QID_MAX];

	fx_hubs(f, lost, again, NULL);
	committed_entry(f, "a@x.test", one, qid);
	f->hub.qid = qid;
	lock(qid, &e);
	deliver_entry(&f->ctx, &f->hs, &e, 0, &out);
	fx_close(f);
	assert_int_equal(f->hub.dup_on_disk, 1);
	assert_int_equal(out.kind, OUT_QUEUED);
	assert_int_equal(out.possible_dup, 1);
	queue_entry_free(&e);
	assert_int_equal(peek("queue", qid, &q), ST_OK);
	assert_int_equal(q.possible_dup, 1);
	assert_int_equal(q.rcpt[0].state, RS_PENDING);
	queue_entry_free(&q);
	assert_int_equal(log_count("reply to the final dot was lost"), 1);
	assert_int_equal(log_count("earlier attempt may have delivered it"),
	    0);

	lock(qid, &e);
	deliver_entry(&f->ctx, &f->hs, &e, 0, &out);
	fx_close(f);
	assert_int_equal(out.kind, OUT_SENT);
	assert_int_equal(area_count("queue"), 0);
	assert_int_equal(log_count("earlier attempt may have delivered it"),
	    1);
	assert_int_equal(log_count("status=sent"), 1);
	queue_entry_free(&e);
}

/* ------------------------------------------------------------- bounce */

static void
test_expired(void **state)
{
	struct fx *f = *state;
	struct queue_entry e, b;
	struct outcome out;
	char qid[QID_MAX], bqid[QID_MAX], text[8192];
	struct error err;
	ssize_t n;

	fx_hubs(f, NULL, NULL, NULL);
	committed_entry(f, "a@x.test", two, qid);
	lock(qid, &e);
	/* One recipient took it earlier; the other is still pending. */
	e.rcpt[0].state = RS_SENT;
	(void)strlcpy(e.last_error, "connect to hub.test: refused",
	    sizeof(e.last_error));
	assert_int_equal(queue_update(qdir, &e, &err), ST_OK);
	deliver_entry(&f->ctx, &f->hs, &e, 1, &out);
	fx_close(f);
	assert_int_equal(f->hub.calls, 0);	/* expiry tries nothing */
	assert_int_equal(out.kind, OUT_SENT);
	assert_int_equal(out.failed, 1);
	assert_int_equal(out.sent, 1);
	assert_int_equal(out.pending, 0);
	assert_int_equal(e.rcpt[1].state, RS_FAILED);
	queue_entry_free(&e);
	/* The entry is gone; the report waits in the queue, from <>. */
	assert_int_equal(peek("queue", qid, &e), ST_PERM);
	queue_entry_free(&e);
	assert_int_equal(area_count("failed"), 0);
	only_id("queue", bqid);
	lock(bqid, &b);
	assert_string_equal(b.sender, "");
	assert_int_equal(b.nrcpt, 1);
	assert_string_equal(b.rcpt[0].addr, "a@x.test");
	assert_int_equal(b.uid, getuid());
	n = pread(b.data_fd, text, sizeof(text) - 1, 0);
	assert_true(n > 0);
	text[n] = '\0';
	assert_non_null(strstr(text, "Final-Recipient: rfc822; c@z.test"));
	assert_null(strstr(text, "Final-Recipient: rfc822; b@y.test"));
	assert_non_null(strstr(text, "message expired after"));
	assert_non_null(strstr(text, "connect to hub.test: refused"));
	queue_entry_free(&b);
	assert_int_equal(log_count("status=bounced (message expired"), 1);
	assert_int_equal(log_count("sender non-delivery notification"), 1);
	assert_int_equal(area_count("data"), 1);	/* the report's */
}

/* Expired from the null sender: no report, kept in failed/. */
static void
test_expired_null_sender(void **state)
{
	struct fx *f = *state;
	struct queue_entry e, q;
	struct outcome out;
	char qid[QID_MAX];

	fx_hubs(f, NULL, NULL, NULL);
	committed_entry(f, "", one, qid);
	lock(qid, &e);
	deliver_entry(&f->ctx, &f->hs, &e, 1, &out);
	fx_close(f);
	assert_int_equal(f->hub.calls, 0);
	assert_int_equal(out.failed, 1);
	queue_entry_free(&e);
	assert_int_equal(area_count("queue"), 0);
	assert_int_equal(peek("failed", qid, &q), ST_OK);
	assert_int_equal(q.rcpt[0].state, RS_FAILED);
	assert_non_null(strstr(q.rcpt[0].reply, "message expired"));
	queue_entry_free(&q);
	assert_int_equal(log_count("sender non-delivery notification"), 0);
	assert_int_equal(log_count("undeliverable message from <>"), 1);
}

/* ----------------------------------------------- one report, ever */

static void
test_one_report_across_attempts(void **state)
{
	static const struct stub_step first[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "250 ok"),
		RCPT("c@z.test", "550 5.1.1 no such user"),
		RCPT("d@w.test", "450 4.2.0 greylisted"), BODY_OK("M1"),
		EXPECT("RSET"), SEND("250 ok\r\n"), REPORT, BYE
	};
	/* Only d is tried again. */
	static const struct stub_step second[] = {
		HELLO, MAIL_A, RCPT("d@w.test", "250 ok"), BODY_OK("M2"), BYE
	};
	struct fx *f = *state;
	struct queue_entry e, q;
	struct outcome out;
	struct runner_filter filter = { .force = 1 };
	struct error err;
	int fd;

	fx_hubs(f, first, second, NULL);
	new_entry(&e, &fd, "a@x.test", three);
	assert_int_equal(submit(f, &e, fd, 1, 'p', &out), ST_OK);
	fx_close(f);
	assert_int_equal(out.kind, OUT_QUEUED);
	assert_int_equal(out.committed, 1);
	assert_int_equal(out.sent, 1);
	assert_int_equal(out.failed, 1);
	assert_int_equal(out.pending, 1);
	assert_int_equal(log_count("sender non-delivery notification"), 1);
	assert_non_null(strstr(f->hub.data_seen,
	    "Final-Recipient: rfc822; c@z.test\r\n"));
	assert_null(strstr(f->hub.data_seen, "rfc822; d@w.test"));
	/* On disk: c failed with its report made, not "bounce". */
	assert_int_equal(peek("queue", e.qid, &q), ST_OK);
	assert_int_equal(q.rcpt[0].state, RS_SENT);
	assert_int_equal(q.rcpt[1].state, RS_FAILED);
	assert_int_equal(q.rcpt[1].notify, 0);
	assert_int_equal(q.rcpt[2].state, RS_PENDING);
	queue_entry_free(&q);
	assert_int_equal(area_count("queue"), 1);	/* the report went */
	(void)close(fd);

	/* A queue pass (forced: the retry is not due yet) delivers d. */
	assert_int_equal(runner_run(&f->ctx, &filter, &err), ST_OK);
	fx_close(f);
	assert_int_equal(f->hub.calls, 2);
	assert_int_equal(area_count("queue"), 0);
	assert_int_equal(area_count("failed"), 0);
	assert_int_equal(area_count("data"), 0);
	assert_int_equal(log_count("sender non-delivery notification"), 1);
	assert_int_equal(log_count("to=<d@w.test>"), 2);
	assert_int_equal(log_count("queued as M2"), 1);
	queue_entry_free(&e);
}

/* ---------------------------------------------------------- the runner */

/* One pass, one connection for every due entry (RSET between them). */
static void
test_runner_reuses_session(void **state)
{
	static const struct stub_step s[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "250 ok"), BODY_OK("R1"),
		EXPECT("RSET"), SEND("250 ok\r\n"),
		MAIL_A, RCPT("b@y.test", "250 ok"), BODY_OK("R2"), BYE
	};
	struct fx *f = *state;
	struct runner_filter filter = { .force = 0 };
	struct error err;
	char a[QID_MAX], b[QID_MAX];

	fx_hubs(f, s, NULL, NULL);
	committed_entry(f, "a@x.test", one, a);
	committed_entry(f, "a@x.test", one, b);
	assert_int_equal(area_count("queue"), 2);
	assert_int_equal(runner_has_due(qdir, &filter), 1);
	assert_int_equal(runner_run(&f->ctx, &filter, &err), ST_OK);
	fx_close(f);
	assert_int_equal(f->hub.calls, 1);
	assert_int_equal(area_count("queue"), 0);
	assert_int_equal(area_count("data"), 0);
	assert_int_equal(log_count("status=sent"), 2);
	assert_int_equal(log_count("queued as R1"), 1);
	assert_int_equal(log_count("queued as R2"), 1);
	assert_int_equal(runner_has_due(qdir, &filter), 0);
}

/*
 * A hub with PIPELINING: each RSET goes out with the next MAIL, RCPT and
 * DATA in one write (WRITE), and a RSET refused on the reused session
 * (the hub closing it) has that entry tried again on a new session, not
 * deferred; the pass's counts reach the stats file at the end.
 */
#define HELLO_PIPE	SEND(GREET), EXPECT("EHLO client.test"), \
			SEND("250-hub.test\r\n250 PIPELINING\r\n")
#define GROUP		"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n" \
			"DATA\r\n"
#define BODY_PIPE(id)	DATA(BODY ".\r\n"), \
			SEND("250 2.0.0 Ok: queued as " id "\r\n")

static void
test_runner_pipelined_reset(void **state)
{
	static const struct stub_step s1[] = {
		HELLO_PIPE, WRITE(GROUP),
		SEND("250 ok\r\n250 ok\r\n354 go\r\n"), BODY_PIPE("P1"),
		WRITE("RSET\r\n" GROUP),
		SEND("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
		BODY_PIPE("P2"),
		WRITE("RSET\r\n" GROUP), SEND("421 4.4.2 closing\r\n"), END
	};
	static const struct stub_step s2[] = {
		HELLO_PIPE, WRITE(GROUP),
		SEND("250 ok\r\n250 ok\r\n354 go\r\n"), BODY_PIPE("P3"), BYE
	};
	struct fx *f = *state;
	struct runner_filter filter = { .force = 0 };
	struct queue_stats st, before;
	struct error err;
	char a[QID_MAX], b[QID_MAX], c[QID_MAX];

	fx_hubs(f, s1, s2, NULL);
	assert_int_equal(queue_stats_read(qdir, &before, &err), ST_OK);
	committed_entry(f, "a@x.test", one, a);
	committed_entry(f, "a@x.test", one, b);
	committed_entry(f, "a@x.test", one, c);
	assert_int_equal(runner_run(&f->ctx, &filter, &err), ST_OK);
	fx_close(f);
	assert_int_equal(f->hub.calls, 2);
	assert_int_equal(area_count("queue"), 0);
	assert_int_equal(area_count("data"), 0);
	assert_int_equal(log_count("status=sent"), 3);
	assert_int_equal(log_count("queued as P3"), 1);
	assert_int_equal(log_count("deferred"), 0);
	assert_int_equal(log_count("said"), 0);
	assert_int_equal(queue_stats_read(qdir, &st, &err), ST_OK);
	assert_int_equal(st.count[STAT_SENT], before.count[STAT_SENT] + 3);
	assert_true(st.last_delivery > 0);
}

/* A partial rejection in a pass: its report goes out in the same pass,
 * over the same session. */
static void
test_runner_partial_rejection(void **state)
{
	static const struct stub_step s[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "250 ok"),
		RCPT("c@z.test", "550 5.1.1 no such user"), BODY_OK("RP"),
		EXPECT("RSET"), SEND("250 ok\r\n"), REPORT, BYE
	};
	struct fx *f = *state;
	struct runner_filter filter = { .force = 0 };
	struct error err;
	char qid[QID_MAX];

	fx_hubs(f, s, NULL, NULL);
	committed_entry(f, "a@x.test", two, qid);
	assert_int_equal(runner_run(&f->ctx, &filter, &err), ST_OK);
	fx_close(f);
	assert_int_equal(f->hub.calls, 1);
	assert_int_equal(area_count("queue"), 0);
	assert_int_equal(area_count("failed"), 0);
	assert_int_equal(area_count("data"), 0);
	assert_non_null(strstr(f->hub.data_seen,
	    "Final-Recipient: rfc822; c@z.test\r\n"));
	assert_int_equal(log_count("sender non-delivery notification"), 1);
	assert_int_equal(log_count("status=sent"), 2);
}


/* ----------------------------------------------------- several hubs */

/* MailHub = hub.test, hub2.test:2525 */
static void
two_hubs(struct fx *f)
{
	(void)strlcpy(f->cfg.hub_alt[0].host, "hub2.test",
	    sizeof(f->cfg.hub_alt[0].host));
	(void)strlcpy(f->cfg.hub_alt[0].port, "2525",
	    sizeof(f->cfg.hub_alt[0].port));
	f->cfg.hub_alt_count = 1;
}

static long long
hub2_down_since(void)
{
	struct route rt;
	char why[ERR_MAX];

	memset(&rt, 0, sizeof(rt));
	(void)strlcpy(rt.host, "hub2.test", sizeof(rt.host));
	(void)strlcpy(rt.port, "2525", sizeof(rt.port));
	return queue_hub_down_since(qdir, &rt, why, sizeof(why));
}

static const struct stub_step hub2_ok[] = {
	HELLO, MAIL_A, RCPT("b@y.test", "250 ok"), BODY_OK("HUB2"), BYE
};

/* hub1 refuses the connection: hub2 takes it, nothing is queued. */
static void
test_failover_hub_down(void **state)
{
	struct fx *f = *state;
	struct queue_entry e;
	struct outcome out;
	int fd;

	two_hubs(f);
	fx_hubs(f, NULL, hub2_ok, NULL);
	f->hub.want[1] = "hub2.test:2525";
	new_entry(&e, &fd, "a@x.test", one);
	assert_int_equal(submit(f, &e, fd, 1, 'p', &out), ST_OK);
	fx_close(f);
	assert_int_equal(f->hub.calls, 2);
	assert_int_equal(out.kind, OUT_SENT);
	assert_int_equal(out.committed, 0);
	assert_int_equal(area_count("queue"), 0);
	assert_true(hub_down_since() >= 0);	/* hub1 is backed off */
	assert_int_equal(hub2_down_since(), -1);
	assert_int_equal(log_count("status=sent"), 1);
	assert_int_equal(log_count("status=deferred"), 0);
	assert_int_equal(log_count("hub hub.test:25 cannot take it now"), 1);
	(void)close(fd);
	queue_entry_free(&e);
}

/* Within HubBackoff of hub1's failure: straight to hub2, no wait. */
static void
test_failover_backoff_per_hub(void **state)
{
	struct fx *f = *state;
	struct queue_entry e;
	struct outcome out;
	struct route rt;
	struct error err;
	int fd;

	two_hubs(f);
	memset(&rt, 0, sizeof(rt));
	(void)strlcpy(rt.host, "hub.test", sizeof(rt.host));
	(void)strlcpy(rt.port, "25", sizeof(rt.port));
	assert_int_equal(queue_hub_mark_down(qdir, &rt, "refused", &err),
	    ST_OK);
	fx_hubs(f, hub2_ok, NULL, NULL);
	f->hub.want[0] = "hub2.test:2525";
	new_entry(&e, &fd, "a@x.test", one);
	assert_int_equal(submit(f, &e, fd, 1, 'p', &out), ST_OK);
	fx_close(f);
	assert_int_equal(f->hub.calls, 1);
	assert_int_equal(out.kind, OUT_SENT);
	assert_int_equal(area_count("queue"), 0);
	(void)close(fd);
	queue_entry_free(&e);

	/* Both backed off: queued without a try. */
	(void)strlcpy(rt.host, "hub2.test", sizeof(rt.host));
	(void)strlcpy(rt.port, "2525", sizeof(rt.port));
	assert_int_equal(queue_hub_mark_down(qdir, &rt, "refused", &err),
	    ST_OK);
	fx_hubs(f, NULL, NULL, NULL);
	new_entry(&e, &fd, "a@x.test", one);
	assert_int_equal(submit(f, &e, fd, 1, 'p', &out), ST_OK);
	fx_close(f);
	assert_int_equal(f->hub.calls, 0);
	assert_int_equal(out.kind, OUT_QUEUED);
	assert_int_equal(area_count("queue"), 1);
	assert_int_equal(log_count("nor any other hub"), 1);
	(void)close(fd);
	queue_entry_free(&e);
}

/* 421 at the greeting, 450 at RCPT, 451 after the dot: next hub. */
static void
test_failover_4xx(void **state)
{
	static const struct stub_step greet421[] = {
		SEND("421 4.3.2 busy\r\n"), END
	};
	static const struct stub_step rcpt450[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "450 4.2.0 greylisted"), BYE
	};
	static const struct stub_step dot451[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "250 ok"),
		EXPECT("DATA"), SEND("354 go\r\n"), DATA(BODY ".\r\n"),
		SEND("451 4.3.0 queue full\r\n"), BYE
	};
	const struct stub_step *first[] = { greet421, rcpt450, dot451 };
	struct fx *f = *state;
	struct queue_entry e;
	struct outcome out;
	size_t i;
	int fd;

	for (i = 0; i < 3; i++) {
		rm_area("queue");
		two_hubs(f);
		fx_hubs(f, first[i], hub2_ok, NULL);
		f->hub.want[1] = "hub2.test:2525";
		new_entry(&e, &fd, "a@x.test", one);
		assert_int_equal(submit(f, &e, fd, 1, 'p', &out), ST_OK);
		fx_close(f);
		assert_int_equal(f->hub.calls, 2);
		assert_int_equal(out.kind, OUT_SENT);
		assert_int_equal(out.committed, 0);
		assert_int_equal(area_count("queue"), 0);
		(void)close(fd);
		queue_entry_free(&e);
	}
	/* One final status per recipient, as Postfix logs a failover:
	 * hub1's 4xx is an informational line, never status=deferred. */
	assert_int_equal(log_count("status=sent"), 3);
	assert_int_equal(log_count("status=deferred"), 0);
	assert_int_equal(log_count("said: 450 4.2.0 greylisted"), 1);
}

/* A 5xx is an answer: no failover, the caller is told (67). */
static void
test_no_failover_on_5xx(void **state)
{
	static const struct stub_step s[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "550 5.1.1 no such user"),
		BYE
	};
	struct fx *f = *state;
	struct queue_entry e;
	struct outcome out;
	int fd;

	two_hubs(f);
	fx_hubs(f, s, hub2_ok, NULL);
	new_entry(&e, &fd, "a@x.test", one);
	assert_int_equal(submit(f, &e, fd, 1, 'p', &out), ST_PERM);
	fx_close(f);
	assert_int_equal(f->hub.calls, 1);
	assert_int_equal(out.kind, OUT_REFUSED);
	assert_int_equal(out.stage, STAGE_RCPT);
	(void)close(fd);
	queue_entry_free(&e);
}

/* The reply to the final dot lost: never resent to another hub. */
static void
test_no_failover_after_lost_dot(void **state)
{
	static const struct stub_step s[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "250 ok"),
		EXPECT("DATA"), SEND("354 go\r\n"), DATA(BODY ".\r\n"), END
	};
	struct fx *f = *state;
	struct queue_entry e, q;
	struct outcome out;
	int fd;

	two_hubs(f);
	fx_hubs(f, s, hub2_ok, NULL);
	new_entry(&e, &fd, "a@x.test", one);
	assert_int_equal(submit(f, &e, fd, 1, 'p', &out), ST_OK);
	deliver_session_close(&f->hs);
	assert_int_equal(f->hub.calls, 1);
	assert_int_equal(out.kind, OUT_QUEUED);
	assert_int_equal(out.possible_dup, 1);
	assert_int_equal(peek("queue", e.qid, &q), ST_OK);
	assert_int_equal(q.possible_dup, 1);
	queue_entry_free(&q);
	(void)stubconn_end(f->hub.st[0]);
	f->hub.st[0] = NULL;
	fx_close(f);
	(void)close(fd);
	queue_entry_free(&e);
}

/*
 * The reply to the dot of a queued entry is lost at hub1: the entry
 * records hub1 (dup-hub), and later runs try hub1 only, never hub2,
 * even while hub1 is down (the entry waits, logged).
 */
static void
test_dup_hub_kept_across_runs(void **state)
{
	static const struct stub_step lost[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "250 ok"),
		EXPECT("DATA"), SEND("354 go\r\n"), DATA(BODY ".\r\n"), CALL,
		END
	};
	static const struct stub_step again[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "250 ok"), BODY_OK("D3"), BYE
	};
	struct fx *f = *state;
	struct queue_entry e, q;
	struct outcome out;
	char qid[QID_MAX];

	two_hubs(f);
	fx_hubs(f, lost, hub2_ok, NULL);
	committed_entry(f, "a@x.test", one, qid);
	f->hub.qid = qid;
	lock(qid, &e);
	deliver_entry(&f->ctx, &f->hs, &e, 0, &out);
	fx_close(f);
	assert_int_equal(f->hub.calls, 1);
	assert_int_equal(out.kind, OUT_QUEUED);
	queue_entry_free(&e);
	assert_int_equal(peek("queue", qid, &q), ST_OK);
	assert_int_equal(q.possible_dup, 1);
	assert_string_equal(q.dup_hub.host, "hub.test");
	assert_string_equal(q.dup_hub.port, "25");
	queue_entry_free(&q);

	/* hub1 is down, hub2 is up: hub2 is not tried, the entry waits. */
	fx_hubs(f, NULL, hub2_ok, NULL);
	lock(qid, &e);
	deliver_entry(&f->ctx, &f->hs, &e, 0, &out);
	fx_close(f);
	assert_int_equal(f->hub.calls, 1);
	assert_int_equal(out.kind, OUT_QUEUED);
	queue_entry_free(&e);
	assert_int_equal(peek("queue", qid, &q), ST_OK);
	assert_string_equal(q.dup_hub.host, "hub.test");
	assert_int_equal(q.rcpt[0].state, RS_PENDING);
	queue_entry_free(&q);
	assert_int_equal(log_count("waits for hub hub.test:25"), 1);
	assert_int_equal(log_count("HUB2"), 0);

	/* hub1 is back: it takes it. */
	fx_hubs(f, again, NULL, NULL);
	lock(qid, &e);
	deliver_entry(&f->ctx, &f->hs, &e, 0, &out);
	fx_close(f);
	assert_int_equal(f->hub.calls, 1);
	assert_int_equal(out.kind, OUT_SENT);
	assert_int_equal(area_count("queue"), 0);
	queue_entry_free(&e);
}

/* Every hub down: queued (exit 0), last_error names the last hub. */
static void
test_failover_all_down_then_run(void **state)
{
	struct fx *f = *state;
	struct runner_filter filter = { .force = 1 };
	struct queue_entry e, q;
	struct outcome out;
	struct error err;
	int fd;

	two_hubs(f);
	fx_hubs(f, NULL, NULL, NULL);
	f->hub.want[1] = "hub2.test:2525";
	new_entry(&e, &fd, "a@x.test", one);
	assert_int_equal(submit(f, &e, fd, 1, 'p', &out), ST_OK);
	fx_close(f);
	assert_int_equal(f->hub.calls, 2);
	assert_int_equal(out.kind, OUT_QUEUED);
	assert_int_equal(peek("queue", e.qid, &q), ST_OK);
	assert_non_null(strstr(q.last_error, "hub2.test"));
	queue_entry_free(&q);
	(void)close(fd);
	queue_entry_free(&e);

	/* hub2 comes back; both are backed off, and a run tries them in
	 * order all the same. */
	fx_hubs(f, NULL, hub2_ok, NULL);
	f->hub.want[1] = "hub2.test:2525";
	assert_int_equal(runner_run(&f->ctx, &filter, &err), ST_OK);
	fx_close(f);
	assert_int_equal(f->hub.calls, 2);
	assert_int_equal(area_count("queue"), 0);
	assert_int_equal(hub2_down_since(), -1);
}


/* A run tries the hubs not backed off first: hub1 marked, hub2 takes. */
static void
test_run_skips_backed_off_hub_first(void **state)
{
	struct fx *f = *state;
	struct runner_filter filter = { .force = 1 };
	struct route rt;
	struct error err;
	char a[QID_MAX];

	two_hubs(f);
	committed_entry(f, "a@x.test", one, a);
	memset(&rt, 0, sizeof(rt));
	(void)strlcpy(rt.host, "hub.test", sizeof(rt.host));
	(void)strlcpy(rt.port, "25", sizeof(rt.port));
	assert_int_equal(queue_hub_mark_down(qdir, &rt, "refused", &err),
	    ST_OK);
	fx_hubs(f, hub2_ok, NULL, NULL);
	f->hub.want[0] = "hub2.test:2525";
	assert_int_equal(runner_run(&f->ctx, &filter, &err), ST_OK);
	fx_close(f);
	assert_int_equal(f->hub.calls, 1);
	assert_int_equal(area_count("queue"), 0);
}

/* What mailq shows names the hub whose reply it is. */
static void
test_last_error_names_the_hub(void **state)
{
	static const struct stub_step s1[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "450 4.2.0 greylisted"), BYE
	};
	static const struct stub_step s2[] = {
		HELLO, MAIL_A, RCPT("b@y.test", "451 4.3.0 try later"), BYE
	};
	struct fx *f = *state;
	struct queue_entry e, q;
	struct outcome out;
	int fd;

	two_hubs(f);
	fx_hubs(f, s1, s2, NULL);
	f->hub.want[1] = "hub2.test:2525";
	new_entry(&e, &fd, "a@x.test", one);
	assert_int_equal(submit(f, &e, fd, 1, 'p', &out), ST_OK);
	fx_close(f);
	assert_int_equal(out.kind, OUT_QUEUED);
	assert_int_equal(peek("queue", e.qid, &q), ST_OK);
	assert_string_equal(q.last_error, "hub hub2.test:2525: hub refused "
	    "every recipient: 451 4.3.0 try later");
	queue_entry_free(&q);
	(void)close(fd);
	queue_entry_free(&e);
}

/*
 * Jitter: 200 hosts whose hub is down each queue a message; their next
 * retries spread over a window (RetryInterval up to a fifth more), not
 * one second. Not timed: the schedules are read from the entries.
 */
static void
test_retry_jitter_spreads(void **state)
{
	struct fx *f = *state;
	struct queue_entry e, q;
	struct outcome out;
	time_t t0 = time(NULL), lo = 0, hi = 0;
	int fd, seen[16] = { 0 }, distinct = 0, i;

	f->cfg.hub_backoff = 0;
	f->cfg.retry_interval = 60;
	for (i = 0; i < 200; i++) {
		fx_hubs(f, NULL, NULL, NULL);
		new_entry(&e, &fd, "a@x.test", one);
		assert_int_equal(submit(f, &e, fd, 1, 'p', &out), ST_OK);
		fx_close(f);
		assert_int_equal(peek("queue", e.qid, &q), ST_OK);
		assert_true(q.next_retry >= t0 + 60);
		assert_true(q.next_retry <= time(NULL) + 72);
		if (i == 0 || q.next_retry < lo)
			lo = q.next_retry;
		if (i == 0 || q.next_retry > hi)
			hi = q.next_retry;
		seen[(q.next_retry - t0 - 60) % 16] = 1;
		queue_entry_free(&q);
		(void)close(fd);
		queue_entry_free(&e);
	}
	for (i = 0; i < 16; i++)
		distinct += seen[i];
	assert_true(hi - lo >= 8);	/* a window, not one second */
	assert_true(distinct >= 8);
}

/* A pass with the hub down tries it once, not once per entry. */
static void
test_runner_hub_down(void **state)
{
	struct fx *f = *state;
	struct runner_filter filter = { .force = 0 };
	struct queue_entry q;
	struct error err;
	char a[QID_MAX], b[QID_MAX];

	fx_hubs(f, NULL, NULL, NULL);
	committed_entry(f, "a@x.test", one, a);
	committed_entry(f, "a@x.test", two, b);
	assert_int_equal(runner_run(&f->ctx, &filter, &err), ST_OK);
	fx_close(f);
	assert_int_equal(f->hub.calls, 1);
	assert_int_equal(area_count("queue"), 2);
	assert_int_equal(log_count("status=deferred"), 3);
	assert_int_equal(peek("queue", b, &q), ST_OK);
	assert_int_equal(q.attempts, 1);
	assert_true(q.next_retry > time(NULL));
	/* Not tried again, and the reason is the hub's, not "skipped". */
	assert_non_null(strstr(q.last_error, "Connection refused"));
	queue_entry_free(&q);
	/* Not due now: a second pass tries nothing. */
	assert_int_equal(runner_has_due(qdir, &filter), 0);
	assert_int_equal(runner_run(&f->ctx, &filter, &err), ST_OK);
	fx_close(f);
	assert_int_equal(f->hub.calls, 1);
}

/* ---------------------------------------------------------------- main */

static int
group_setup(void **state)
{
	struct error err;
	int fd;

	(void)state;
	if (mkdtemp(qdir) == NULL || queue_prepare(qdir, &err) != ST_OK)
		return -1;
	(void)snprintf(logpath, sizeof(logpath), "%s.log", qdir);
	if ((fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		return -1;
	(void)close(fd);
	log_open("postino", logpath);
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[PATH_MAX + 64];

	(void)state;
	log_open("postino", "/dev/null");
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", qdir, logpath);
	return system(cmd) == 0 ? 0 : -1;
}

#define T(fn)	cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_sent),
		T(test_sent_from_queue),
		T(test_hub_down_then_backoff),
		T(test_hub_up_clears_mark),
		T(test_rcpt_4xx),
		T(test_dot_4xx),
		T(test_dot_4xx_queued_entry),
		T(test_partial_rejection),
		T(test_partial_rejection_notify_never),
		T(test_all_refused),
		T(test_all_refused_mail_mode),
		T(test_sender_refused),
		T(test_dup_submission),
		T(test_dup_marked_before_dot),
		T(test_dup_next_delivery),
		T(test_dup_hub_kept_across_runs),
		T(test_expired),
		T(test_expired_null_sender),
		T(test_one_report_across_attempts),
		T(test_runner_reuses_session),
		T(test_runner_pipelined_reset),
		T(test_runner_partial_rejection),
		T(test_runner_hub_down),
		T(test_failover_hub_down),
		T(test_failover_backoff_per_hub),
		T(test_failover_4xx),
		T(test_no_failover_on_5xx),
		T(test_no_failover_after_lost_dot),
		T(test_failover_all_down_then_run),
		T(test_retry_jitter_spreads),
		T(test_run_skips_backed_off_hub_first),
		T(test_last_error_names_the_hub),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
