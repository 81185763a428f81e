/*
 * test_queue.c: the queue's on-disk format and its commit, lock, update,
 * remove and sweep, in a temporary directory.
 */
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"

static char qdir[] = "/tmp/postino-test-queue.XXXXXX";

static void
sample_entry(struct queue_entry *e, const char *qid)
{
	struct error err;

	queue_entry_init(e);
	(void)strlcpy(e->qid, qid, sizeof(e->qid));
	e->queued = 1763775294;
	e->next_retry = 1763775354;
	e->attempts = 2;
	e->uid = 33;
	e->size = 1234;
	e->body_8bit = 1;
	(void)strlcpy(e->sender, "www-data@example.org", sizeof(e->sender));
	(void)strlcpy(e->route.host, "::1", sizeof(e->route.host));
	(void)strlcpy(e->route.port, "2525", sizeof(e->route.port));
	(void)strlcpy(e->last_error, "connect: refused\r\ninjected",
	    sizeof(e->last_error));
	assert_int_equal(queue_entry_add_rcpt(e, "ops@example.org",
	    RS_PENDING, &err), ST_OK);
	assert_int_equal(queue_entry_add_rcpt(e, "dev@example.org", RS_SENT,
	    &err), ST_OK);
	assert_int_equal(queue_rcpt_set_reply(&e->rcpt[1],
	    "250 2.0.0 Ok: queued as X"), 0);
}

static int
spool_with(const char *text)
{
	int fd = open(qdir, O_TMPFILE | O_RDWR, 0600);

	assert_true(fd != -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	return fd;
}

static void
test_format_parse_roundtrip(void **state)
{
	struct queue_entry e, back;
	struct error err;
	size_t len;
	char *text;

	(void)state;
	sample_entry(&e, "0123456789");
	e.possible_dup = 1;
	(void)strlcpy(e.dup_hub.host, "hub1.example.org",
	    sizeof(e.dup_hub.host));
	(void)strlcpy(e.dup_hub.port, "587", sizeof(e.dup_hub.port));
	text = queue_format(&e, &len);
	assert_non_null(strstr(text, "\ndup-hub hub1.example.org 587\n"));
	assert_non_null(text);
	/* The error text is kept on one line: no CR/LF injection. */
	assert_non_null(strstr(text, "error connect: refused??injected\n"));
	assert_non_null(strstr(text, "rcpt sent <dev@example.org> 250"));
	queue_entry_init(&back);
	assert_int_equal(queue_parse(text, len, &back, &err), ST_OK);
	assert_string_equal(back.qid, "0123456789");
	assert_int_equal(back.queued, e.queued);
	assert_int_equal(back.next_retry, e.next_retry);
	assert_int_equal(back.attempts, 2);
	assert_int_equal(back.uid, 33);
	assert_int_equal(back.size, 1234);
	assert_int_equal(back.body_8bit, 1);
	assert_string_equal(back.sender, "www-data@example.org");
	assert_string_equal(back.route.host, "::1");
	assert_string_equal(back.route.port, "2525");
	assert_int_equal(back.possible_dup, 1);
	assert_string_equal(back.dup_hub.host, "hub1.example.org");
	assert_string_equal(back.dup_hub.port, "587");
	assert_int_equal(back.nrcpt, 2);
	assert_int_equal(back.rcpt[0].state, RS_PENDING);
	assert_int_equal(back.rcpt[1].state, RS_SENT);
	assert_string_equal(back.rcpt[1].reply, "250 2.0.0 Ok: queued as X");
	free(text);
	queue_entry_free(&e);
	queue_entry_free(&back);
}

static void
test_parse_rejects_garbage(void **state)
{
	static const char *const bad[] = {
		"postino-queue 2\nid 0123456789\n",
		"id ../../etc/pw\n",
		"postino-queue 1\nid 0123456789\nhub h 25\nrcpt maybe <a@b>\n",
		"postino-queue 1\nid 0123456789\nhub h 25\nrcpt sent <a b@c>\n",
		"postino-queue 1\nid 0123456789\nhub h 25\nsender <x\n",
		"postino-queue 1\nid 0123456789\nhub h 25\nattempts -1\n"
		    "rcpt pending <a@b>\n",
		"postino-queue 1\nid 0123456789\nhub h 25\nsurprise 1\n"
		    "rcpt pending <a@b>\n",
		"postino-queue 1\nid 0123456789\nhub h 25\n",	/* no rcpt */
		/* dup-hub: HOST PORT, once, with possible-duplicate 1 only */
		"id 0123456789\nhub default\npossible-duplicate 0\n"
		    "dup-hub h 25\nrcpt pending <a@b>\n",
		"id 0123456789\nhub default\npossible-duplicate 1\n"
		    "dup-hub h\nrcpt pending <a@b>\n",
		"id 0123456789\nhub default\npossible-duplicate 1\n"
		    "dup-hub h 25 x\nrcpt pending <a@b>\n",
		"id 0123456789\nhub default\npossible-duplicate 1\n"
		    "dup-hub h 25\ndup-hub g 25\nrcpt pending <a@b>\n",
		"id 0123456789\nhub default\npossible-duplicate 1\n"
		    "dup-hub h\t 25\nrcpt pending <a@b>\n",
		"novalue\n",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct queue_entry e;
		struct error err;

		queue_entry_init(&e);
		error_clear(&err);
		assert_int_equal(queue_parse(bad[i], strlen(bad[i]), &e,
		    &err), ST_DATA);
		assert_true(err.text[0] != '\0');
		queue_entry_free(&e);
	}
}

static void
test_commit_lock_update_remove(void **state)
{
	struct queue_entry e, got, other;
	char path[PATH_MAX], buf[64];
	struct error err;
	int fd;

	(void)state;
	sample_entry(&e, "00000000A1");
	fd = spool_with("Subject: x\r\n\r\nbody\r\n");
	assert_int_equal(queue_commit(qdir, &e, fd, 0, &err), ST_OK);
	(void)close(fd);	/* the committer's lock goes with it */

	(void)snprintf(path, sizeof(path), "%s/data/00000000A1", qdir);
	fd = open(path, O_RDONLY);
	assert_true(fd != -1);
	assert_int_equal(read(fd, buf, sizeof(buf)), 20);
	(void)close(fd);

	queue_entry_init(&got);
	assert_int_equal(queue_lock_entry(qdir, "00000000A1", &got, &err),
	    ST_OK);
	assert_int_equal(got.nrcpt, 2);
	/* A second locker is told the entry is busy. */
	queue_entry_init(&other);
	assert_int_equal(queue_lock_entry(qdir, "00000000A1", &other, &err),
	    ST_TEMP);
	got.attempts = 7;
	assert_int_equal(queue_update(qdir, &got, &err), ST_OK);
	assert_int_equal(queue_remove(qdir, &got, &err), ST_OK);
	queue_entry_free(&got);
	assert_int_equal(access(path, F_OK), -1);
	(void)snprintf(path, sizeof(path), "%s/queue/00000000A1", qdir);
	assert_int_equal(access(path, F_OK), -1);
	/* Gone for the next runner too. */
	assert_int_equal(queue_lock_entry(qdir, "00000000A1", &other, &err),
	    ST_PERM);
	queue_entry_free(&e);
}

static void
test_failed_area_and_listing(void **state)
{
	char (*ids)[QID_MAX];
	struct queue_entry e, got;
	struct error err;
	size_t n;
	int fd, busy;

	(void)state;
	sample_entry(&e, "00000000B2");
	fd = spool_with("x\r\n");
	assert_int_equal(queue_commit(qdir, &e, fd, 1, &err), ST_OK);
	(void)close(fd);
	assert_int_equal(queue_list_ids(qdir, "failed", &ids, &n, &err),
	    ST_OK);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "00000000B2");
	free(ids);
	queue_entry_init(&got);
	assert_int_equal(queue_peek_entry(qdir, "failed", "00000000B2", &got,
	    &busy, &err), ST_OK);
	assert_int_equal(busy, 0);
	queue_entry_free(&got);
	assert_int_equal(queue_unlink(qdir, "failed", "00000000B2", &err),
	    ST_OK);
	assert_int_equal(queue_list_ids(qdir, "failed", &ids, &n, &err),
	    ST_OK);
	assert_int_equal(n, 0);
	free(ids);
	queue_entry_free(&e);
}

static void
backdate(const char *path, time_t seconds)
{
	struct timespec ts[2];

	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - seconds;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void
test_sweep_removes_orphans_only(void **state)
{
	char orphan[PATH_MAX], live[PATH_MAX];
	struct queue_entry e;
	struct error err;
	int fd;

	(void)state;
	assert_int_equal(queue_prepare(qdir, &err), ST_OK);
	/* Data without a control file, nobody holding it: a crash left it. */
	(void)snprintf(orphan, sizeof(orphan), "%s/data/00000000C3", qdir);
	fd = open(orphan, O_CREAT | O_WRONLY, 0600);
	assert_true(fd != -1);
	(void)close(fd);
	backdate(orphan, 7200);
	/* A committed entry stays. */
	sample_entry(&e, "00000000D4");
	fd = spool_with("y\r\n");
	assert_int_equal(queue_commit(qdir, &e, fd, 0, &err), ST_OK);
	(void)close(fd);
	(void)snprintf(live, sizeof(live), "%s/data/00000000D4", qdir);
	queue_sweep(qdir);
	assert_int_equal(access(orphan, F_OK), -1);
	assert_int_equal(access(live, F_OK), 0);
	queue_entry_free(&e);
}

static void
test_unsafe_entries_refused(void **state)
{
	char path[PATH_MAX], target[PATH_MAX];
	struct queue_entry e;
	struct error err;

	(void)state;
	assert_int_equal(queue_prepare(qdir, &err), ST_OK);
	(void)snprintf(target, sizeof(target), "%s/elsewhere", qdir);
	(void)snprintf(path, sizeof(path), "%s/data/00000000E5", qdir);
	assert_int_equal(symlink(target, path), 0);
	queue_entry_init(&e);
	assert_int_not_equal(queue_lock_entry(qdir, "00000000E5", &e, &err),
	    ST_OK);
	assert_int_not_equal(queue_lock_entry(qdir, "../../etc/x", &e, &err),
	    ST_OK);
	/* A file of another user and group was not made through the queue. */
	if (geteuid() == 0) {
		struct queue_entry f;
		char data[PATH_MAX];
		int fd;

		sample_entry(&f, "00000000F6");
		fd = spool_with("z\r\n");
		assert_int_equal(queue_commit(qdir, &f, fd, 0, &err), ST_OK);
		(void)close(fd);
		(void)snprintf(data, sizeof(data), "%s/data/00000000F6", qdir);
		assert_int_equal(chown(data, 65534, 65534), 0);
		queue_entry_free(&f);
		queue_entry_init(&f);
		assert_int_equal(queue_lock_entry(qdir, "00000000F6", &f,
		    &err), ST_DATA);
		queue_entry_free(&f);
	}
	assert_false(queue_valid_qid("0123456789A"));
	assert_false(queue_valid_qid("01234567a9"));
	assert_true(queue_valid_qid("0123456789"));
}

static int
locked_elsewhere(const char *path)
{
	int fd = open(path, O_RDONLY), busy;

	assert_true(fd != -1);
	busy = flock(fd, LOCK_EX | LOCK_NB) == -1;
	(void)close(fd);
	return busy;
}

static void
path_in(char *buf, size_t len, const char *area, const char *name)
{
	(void)snprintf(buf, len, "%s/%s/%s", qdir, area, name);
}

/* Sweep: young orphans stay (age rule), locked ones stay, old free go. */
static void
test_sweep_age_and_lock_rules(void **state)
{
	char young[PATH_MAX], held[PATH_MAX], old[PATH_MAX];
	struct error err;
	int fd, hold;

	(void)state;
	assert_int_equal(queue_prepare(qdir, &err), ST_OK);
	path_in(young, sizeof(young), "data", "000000A001");
	path_in(held, sizeof(held), "data", "000000A002");
	path_in(old, sizeof(old), "data", "000000A003");
	fd = open(young, O_CREAT | O_WRONLY, 0600);
	(void)close(fd);
	hold = open(held, O_CREAT | O_RDWR, 0600);
	assert_int_equal(flock(hold, LOCK_EX), 0);
	backdate(held, 7200);
	fd = open(old, O_CREAT | O_WRONLY, 0600);
	(void)close(fd);
	backdate(old, 7200);
	queue_sweep(qdir);
	assert_int_equal(access(young, F_OK), 0);
	assert_int_equal(access(held, F_OK), 0);
	assert_int_equal(access(old, F_OK), -1);
	(void)close(hold);
	(void)unlink(young);
	(void)unlink(held);
}

/* EEXIST is an error: a commit never replaces another entry's files. */
static void
test_commit_never_replaces_an_entry(void **state)
{
	struct queue_entry e, back;
	struct error err;
	char buf[16];
	int fd, fd2;

	(void)state;
	sample_entry(&e, "000000B001");
	fd = spool_with("first\r\n");
	assert_int_equal(queue_commit(qdir, &e, fd, 0, &err), ST_OK);
	fd2 = spool_with("second\r\n");
	assert_int_equal(queue_commit(qdir, &e, fd2, 0, &err), ST_CANTCREAT);
	(void)close(fd2);
	(void)close(fd);
	queue_entry_init(&back);
	assert_int_equal(queue_lock_entry(qdir, "000000B001", &back, &err),
	    ST_OK);
	assert_int_equal(pread(back.data_fd, buf, 7, 0), 7);
	assert_memory_equal(buf, "first\r\n", 7);
	assert_int_equal(queue_remove(qdir, &back, &err), ST_OK);
	queue_entry_free(&back);
	queue_entry_free(&e);
}

/*
 * Without linkat of /proc/self/fd (a memfd cannot be linked into another
 * filesystem: EXDEV), the copy is locked before it has its name and the
 * caller's descriptor becomes that locked copy.
 */
static void
test_commit_copy_fallback_holds_the_lock(void **state)
{
	char data[PATH_MAX];
	struct queue_entry e, back;
	struct stat a, b;
	struct error err;
	int fd;

	(void)state;
	sample_entry(&e, "000000C001");
	fd = memfd_create("spool", MFD_CLOEXEC);
	assert_true(fd != -1);
	assert_int_equal(write(fd, "copied\r\n", 8), 8);
	assert_int_equal(queue_commit(qdir, &e, fd, 0, &err), ST_OK);
	path_in(data, sizeof(data), "data", "000000C001");
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(stat(data, &b), 0);
	assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	assert_int_equal(b.st_size, 8);
	assert_true(locked_elsewhere(data));
	queue_entry_init(&back);
	assert_int_equal(queue_lock_entry(qdir, "000000C001", &back, &err),
	    ST_TEMP);
	(void)close(fd);
	assert_false(locked_elsewhere(data));
	assert_int_equal(queue_lock_entry(qdir, "000000C001", &back, &err),
	    ST_OK);
	assert_int_equal(queue_remove(qdir, &back, &err), ST_OK);
	queue_entry_free(&back);
	queue_entry_free(&e);
}

/* A control file without its data: moved to failed/, said, listed. */
static void
test_data_missing_is_visible(void **state)
{
	char data[PATH_MAX], failed[PATH_MAX];
	struct queue_entry e, back;
	struct error err;
	int fd, busy;

	(void)state;
	sample_entry(&e, "000000D001");
	fd = spool_with("x\r\n");
	assert_int_equal(queue_commit(qdir, &e, fd, 0, &err), ST_OK);
	(void)close(fd);
	path_in(data, sizeof(data), "data", "000000D001");
	assert_int_equal(unlink(data), 0);
	queue_entry_init(&back);
	assert_int_equal(queue_lock_entry(qdir, "000000D001", &back, &err),
	    ST_DATA);
	assert_non_null(strstr(err.text, "data file is missing"));
	path_in(failed, sizeof(failed), "failed", "000000D001");
	assert_int_equal(access(failed, F_OK), 0);
	queue_entry_free(&back);
	queue_entry_init(&back);
	assert_int_equal(queue_peek_entry(qdir, "failed", "000000D001", &back,
	    &busy, &err), ST_OK);
	assert_true(back.data_missing);
	assert_non_null(strstr(back.last_error, "data file is missing"));
	queue_entry_free(&back);
	assert_int_equal(queue_unlink(qdir, "failed", "000000D001", &err),
	    ST_OK);
	queue_entry_free(&e);
}

static void
long_address(char *buf, size_t len, size_t i)
{
	memset(buf, 'a', len - 1);
	buf[len - 1] = '\0';
	(void)snprintf(buf, len, "%06zu", i);
	buf[6] = 'a';
	buf[len - 20] = '@';
	(void)strlcpy(buf + len - 19, "example.org", 19);
}

/* RCPT_MAX recipients of the longest address and reply fit and read. */
static void
test_size_limit_one_for_writer_and_reader(void **state)
{
	char addr[ADDR_MAX - 1], big[PATH_MAX], longest[REPLY_TEXT_MAX];
	struct queue_entry e, back;
	struct error err;
	size_t i;
	int fd;

	memset(longest, 'r', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';

	(void)state;
	queue_entry_init(&e);
	(void)strlcpy(e.qid, "000000E001", sizeof(e.qid));
	e.hub_default = 1;
	for (i = 0; i < RCPT_MAX; i++) {
		long_address(addr, sizeof(addr), i);
		assert_int_equal(queue_entry_add_rcpt(&e, addr, RS_FAILED,
		    &err), ST_OK);
		assert_int_equal(queue_rcpt_set_reply(&e.rcpt[i], longest),
		    0);
	}
	fd = spool_with("x\r\n");
	assert_int_equal(queue_commit(qdir, &e, fd, 0, &err), ST_OK);
	(void)close(fd);
	queue_entry_init(&back);
	assert_int_equal(queue_lock_entry(qdir, "000000E001", &back, &err),
	    ST_OK);
	assert_int_equal(back.nrcpt, RCPT_MAX);
	assert_int_equal(queue_remove(qdir, &back, &err), ST_OK);
	queue_entry_free(&back);
	queue_entry_free(&e);
	/* What is over the limit is refused by the reader, never parsed. */
	sample_entry(&e, "000000E002");
	fd = spool_with("x\r\n");
	assert_int_equal(queue_commit(qdir, &e, fd, 0, &err), ST_OK);
	(void)close(fd);
	path_in(big, sizeof(big), "queue", "000000E002");
	assert_int_equal(truncate(big, 8 * 1024 * 1024 + 1), 0);
	queue_entry_init(&back);
	assert_int_equal(queue_lock_entry(qdir, "000000E002", &back, &err),
	    ST_DATA);
	assert_non_null(strstr(err.text, "over the queue's limit"));
	queue_entry_free(&back);
	queue_entry_free(&e);
}

/* mailq shows what it cannot read; root deletes it all the same. */
static void
test_unreadable_listed_and_root_deletes(void **state)
{
	char *text = NULL, data[PATH_MAX];
	size_t len = 0;
	struct error err;
	FILE *out;

	(void)state;
	/* 000000E002, over the limit, is left by the test before. */
	out = open_memstream(&text, &len);
	assert_non_null(out);
	assert_int_equal(showq_list(out, qdir, 0, &err), ST_OK);
	(void)fclose(out);
	assert_non_null(strstr(text, "000000E002"));
	assert_non_null(strstr(text, "unreadable"));
	assert_null(strstr(text, "Mail queue is empty"));
	free(text);
	if (getuid() != 0)
		skip();
	assert_int_equal(showq_change(qdir, "delete", "000000E002", &err),
	    ST_OK);
	path_in(data, sizeof(data), "data", "000000E002");
	assert_int_equal(access(data, F_OK), -1);
	path_in(data, sizeof(data), "queue", "000000E002");
	assert_int_equal(access(data, F_OK), -1);
}

/* HubBackoff marks: down, how long ago and why, up again. */
static void
test_hub_marks(void **state)
{
	struct route rt;
	struct error err;
	char why[64];

	(void)state;
	memset(&rt, 0, sizeof(rt));
	(void)strlcpy(rt.host, "::1", sizeof(rt.host));
	(void)strlcpy(rt.port, "2525", sizeof(rt.port));
	assert_int_equal(queue_hub_down_since(qdir, &rt, why, sizeof(why)),
	    -1);
	assert_int_equal(queue_hub_mark_down(qdir, &rt, "refused\nx", &err),
	    ST_OK);
	assert_true(queue_hub_down_since(qdir, &rt, why, sizeof(why)) >= 0);
	assert_string_equal(why, "refused?x");
	assert_int_equal(queue_hub_mark_up(qdir, &rt, &err), ST_OK);
	assert_int_equal(queue_hub_down_since(qdir, &rt, why, sizeof(why)),
	    -1);
	/* Up when not marked is fine; a mark that cannot be written says so. */
	assert_int_equal(queue_hub_mark_up(qdir, &rt, &err), ST_OK);
	assert_int_equal(queue_hub_mark_down("/nonexistent/q", &rt, "x",
	    &err), ST_CANTCREAT);
	assert_int_equal(priv_group_depth(), 0);
}

static void
test_runner_lock_and_rate_counter(void **state)
{
	struct rate_rule rule = { 2, 3600 };
	struct error err;
	int lock, fd, warn, i;

	(void)state;
	assert_false(queue_runner_active(qdir));
	lock = queue_runner_lock(qdir);
	assert_true(lock != -1);
	assert_true(queue_runner_active(qdir));
	(void)close(lock);
	assert_false(queue_runner_active(qdir));
	for (i = 0; i < 3; i++) {
		assert_int_equal(queue_rate_open(qdir, 4242, &fd, &err),
		    ST_OK);
		assert_int_equal(ratelimit_take(&rule, fd, 4242, "someone",
		    &warn, &err), i < 2 ? ST_OK : ST_LIMIT);
		assert_int_equal(warn, i == 2);
		(void)close(fd);
	}
}

static void
test_spool_create(void **state)
{
	struct error err;
	struct stat st;
	int fd = -1;

	(void)state;
	assert_int_equal(queue_spool_create(qdir, &fd, &err), ST_OK);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_nlink, 0);
	assert_int_equal(queue_write_all(fd, "abc", 3), 0);
	(void)close(fd);
	assert_int_equal(queue_spool_create("/nonexistent/q", &fd, &err),
	    ST_CANTCREAT);
	assert_non_null(strstr(err.text, "/nonexistent/q"));
	assert_int_equal(priv_group_depth(), 0);
}

/* One entry of uid due at t, committed in dir. */
static void
due_entry(const char *dir, struct queue_entry *e, const char *qid,
    uid_t uid, time_t t)
{
	struct error err;
	int fd;

	sample_entry(e, qid);
	e->uid = uid;
	e->next_retry = t;
	fd = spool_with("Subject: x\r\n\r\nbody\r\n");
	assert_int_equal(queue_commit(dir, e, fd, 0, &err), ST_OK);
	(void)close(fd);
}

/*
 * The due index: unknown until something reads every entry, lowered by
 * commits and updates (never raised), exact after a full store, merged
 * when a writer moved it meanwhile; runner_has_due answers from it, for
 * the caller's uid only when asked.
 */
static void
test_due_index(void **state)
{
	struct runner_filter all = { .own_only = 0 };
	struct runner_filter u1 = { .own_only = 1, .owner = 1001 };
	struct runner_filter u2 = { .own_only = 1, .owner = 1002 };
	char dir[PATH_MAX / 2], path[PATH_MAX];
	struct queue_entry a, b;
	struct queue_due d, c;
	struct error err;
	unsigned long long g;
	time_t now = time(NULL);
	FILE *f;

	(void)state;
	(void)snprintf(dir, sizeof(dir), "%s/dueq", qdir);
	(void)snprintf(path, sizeof(path), "%s/due", dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(queue_prepare(dir, &err), ST_OK);
	due_entry(dir, &a, "00000000D1", 1001, now + 3600);
	/* A commit never creates it: one line would hide older entries. */
	queue_due_init(&d);
	assert_int_equal(queue_due_read(dir, &d), -1);
	assert_int_equal(access(path, F_OK), -1);
	/* Unknown: read from the entries once, and stored. */
	assert_int_equal(runner_has_due(dir, &all), 0);
	assert_int_equal(queue_due_read(dir, &d), 0);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.v[0].uid, 1001);
	assert_int_equal(d.v[0].due, now + 3600);
	/* Another user's entry, due now: only that user has one due. */
	due_entry(dir, &b, "00000000D2", 1002, now - 1);
	assert_int_equal(runner_has_due(dir, &all), 1);
	assert_int_equal(runner_has_due(dir, &u1), 0);
	assert_int_equal(runner_has_due(dir, &u2), 1);
	/* Deferred to later: the index stays a lower bound, gen unmoved. */
	assert_int_equal(queue_due_read(dir, &d), 0);
	g = d.gen;
	b.next_retry = now + 7200;
	assert_int_equal(queue_update(dir, &b, &err), ST_OK);
	assert_int_equal(queue_due_read(dir, &d), 0);
	assert_int_equal(d.gen, g);
	assert_int_equal(runner_has_due(dir, &u2), 1);
	/* A reader of every entry stores the exact times. */
	queue_due_init(&c);
	assert_int_equal(queue_due_note(&c, 1001, now + 3600), 0);
	assert_int_equal(queue_due_note(&c, 1002, now + 7200), 0);
	assert_int_equal(queue_due_store(dir, &c, g, 1), 0);
	queue_due_free(&c);
	assert_int_equal(runner_has_due(dir, &all), 0);
	/* Moved meanwhile (a's retry brought forward): merged, not lost. */
	assert_int_equal(queue_due_read(dir, &d), 0);
	g = d.gen;
	a.next_retry = now - 5;
	assert_int_equal(queue_update(dir, &a, &err), ST_OK);
	queue_due_init(&c);
	assert_int_equal(queue_due_note(&c, 1001, now + 3600), 0);
	assert_int_equal(queue_due_store(dir, &c, g, 1), 0);
	queue_due_free(&c);
	assert_int_equal(runner_has_due(dir, &u1), 1);
	assert_int_equal(runner_has_due(dir, &u2), 0);
	/* A rewrite cut short (no "end") is unknown, then rebuilt. */
	f = fopen(path, "w");
	assert_non_null(f);
	(void)fprintf(f, "postino-due 1\ngen 9\nuid 1001 %lld\n",
	    (long long)now + 99999);
	(void)fclose(f);
	assert_int_equal(queue_due_read(dir, &d), -1);
	assert_int_equal(runner_has_due(dir, &u1), 1);
	assert_int_equal(queue_due_read(dir, &d), 0);
	queue_due_free(&d);
	queue_entry_free(&a);
	queue_entry_free(&b);
}

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(qdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", qdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_parse_roundtrip),
		cmocka_unit_test(test_parse_rejects_garbage),
		cmocka_unit_test(test_commit_lock_update_remove),
		cmocka_unit_test(test_failed_area_and_listing),
		cmocka_unit_test(test_sweep_removes_orphans_only),
		cmocka_unit_test(test_unsafe_entries_refused),
		cmocka_unit_test(test_sweep_age_and_lock_rules),
		cmocka_unit_test(test_commit_never_replaces_an_entry),
		cmocka_unit_test(test_commit_copy_fallback_holds_the_lock),
		cmocka_unit_test(test_data_missing_is_visible),
		cmocka_unit_test(test_size_limit_one_for_writer_and_reader),
		cmocka_unit_test(test_unreadable_listed_and_root_deletes),
		cmocka_unit_test(test_hub_marks),
		cmocka_unit_test(test_runner_lock_and_rate_counter),
		cmocka_unit_test(test_spool_create),
		cmocka_unit_test(test_due_index),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
