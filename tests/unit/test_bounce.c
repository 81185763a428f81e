/*
 * test_bounce.c: whether a non-delivery report is owed and to whom it
 * belongs (bounce.c), in a temporary queue directory.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

static char qdir[] = "/tmp/postino-test-bounce.XXXXXX";

static const struct bounce_names names = {
	qdir, "example.test", "host.example.test", "hub.example.test"
};

static int
data_file(void)
{
	static const char text[] = "Subject: hello\r\nFrom: a@example.test"
	    "\r\n\r\nbody\r\n";
	int fd = open(qdir, O_TMPFILE | O_RDWR, 0600);

	assert_true(fd != -1);
	assert_int_equal(write(fd, text, strlen(text)),
	    (ssize_t)strlen(text));
	return fd;
}

/* An entry of uid 4242 with one recipient refused for good. */
static void
refused_entry(struct queue_entry *e, const char *sender)
{
	struct error err;

	queue_entry_init(e);
	(void)strlcpy(e->qid, "0000000001", sizeof(e->qid));
	e->queued = time(NULL);
	e->uid = 4242;
	(void)strlcpy(e->sender, sender, sizeof(e->sender));
	assert_int_equal(queue_entry_add_rcpt(e, "gone@example.org",
	    RS_FAILED, &err), ST_OK);
	e->rcpt[0].notify = 1;
	assert_int_equal(queue_rcpt_set_reply(&e->rcpt[0],
	    "550 5.1.1 no such user"), 0);
}

static int
setup(void **state)
{
	struct error err;

	(void)state;
	if (mkdtemp(qdir) == NULL)
		return -1;
	return queue_prepare(qdir, &err) == ST_OK ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", qdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
test_report_belongs_to_the_sender(void **state)
{
	struct queue_entry e, b;
	struct error err;
	char bqid[QID_MAX];
	int fd = data_file(), busy;

	(void)state;
	refused_entry(&e, "www-data@example.test");
	assert_int_equal(bounce_create(&names, &e, fd, bqid, &err), ST_OK);
	assert_true(bqid[0] != '\0');
	assert_int_equal(e.rcpt[0].notify, 0);	/* nothing owed any more */
	queue_entry_init(&b);
	assert_int_equal(queue_peek_entry(qdir, "queue", bqid, &b, &busy,
	    &err), ST_OK);
	assert_int_equal(b.uid, 4242);
	assert_string_equal(b.sender, "");
	assert_int_equal(b.nrcpt, 1);
	assert_string_equal(b.rcpt[0].addr, "www-data@example.test");
	queue_entry_free(&b);
	queue_entry_free(&e);
	(void)close(fd);
}

static void
test_no_report(const char *sender, const char *notify)
{
	struct queue_entry e;
	struct error err;
	char bqid[QID_MAX];
	int fd = data_file();

	refused_entry(&e, sender);
	(void)strlcpy(e.dsn.notify, notify, sizeof(e.dsn.notify));
	assert_int_equal(bounce_create(&names, &e, fd, bqid, &err), ST_OK);
	assert_string_equal(bqid, "");
	assert_int_equal(e.rcpt[0].notify, 0);
	queue_entry_free(&e);
	(void)close(fd);
}

static void
test_notify_never(void **state)
{
	(void)state;
	test_no_report("www-data@example.test", "NEVER");
	test_no_report("www-data@example.test", "SUCCESS,DELAY");
}

static void
test_null_sender(void **state)
{
	(void)state;
	test_no_report("", "");
}

static void
test_notify_failure_reports(void **state)
{
	struct queue_entry e;
	struct error err;
	char bqid[QID_MAX];
	int fd = data_file();

	(void)state;
	refused_entry(&e, "www-data@example.test");
	(void)strlcpy(e.dsn.notify, "SUCCESS,FAILURE", sizeof(e.dsn.notify));
	assert_int_equal(bounce_create(&names, &e, fd, bqid, &err), ST_OK);
	assert_true(bqid[0] != '\0');
	queue_entry_free(&e);
	(void)close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_belongs_to_the_sender),
		cmocka_unit_test(test_notify_never),
		cmocka_unit_test(test_null_sender),
		cmocka_unit_test(test_notify_failure_reports),
	};

	log_open("test_bounce", "/dev/null");
	return cmocka_run_group_tests(tests, setup, teardown);
}
