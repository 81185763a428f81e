/*
 * test_queue.c: the queue's on-disk format and its commit, lock, update,
 * remove and sweep, in a temporary directory.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	(void)strlcpy(e->rcpt[1].reply, "250 2.0.0 Ok: queued as X",
	    sizeof(e->rcpt[1].reply));
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
	text = queue_format(&e, &len);
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
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
