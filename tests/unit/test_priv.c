/*
 * test_priv.c: the group privilege helper. Without a set-group-ID the
 * switches do nothing and succeed; nesting is counted so that only the
 * outermost pair switches. As root, a set-group-ID process is imitated
 * with setresgid(2) (real 0, saved another group) to see the switches.
 * Whom root's deliveries run as, and what each mode keeps of the group,
 * are pure functions (priv_runner_target, priv_plan_for), tested here.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

#define FAKE_GROUP	((gid_t)54321)

static void
effective_is(gid_t want)
{
	gid_t r, e, s;

	assert_int_equal(getresgid(&r, &e, &s), 0);
	assert_int_equal(e, want);
}

static void
test_not_setgid_does_nothing(void **state)
{
	struct error err;
	gid_t g = getegid();

	(void)state;
	assert_int_equal(priv_group_depth(), 0);
	assert_int_equal(priv_group_enter(&err), ST_OK);
	effective_is(g);
	assert_int_equal(priv_group_enter(&err), ST_OK);
	assert_int_equal(priv_group_depth(), 2);
	priv_group_leave();
	priv_group_leave();
	assert_int_equal(priv_group_depth(), 0);
	effective_is(g);
	/* An unbalanced leave is harmless. */
	priv_group_leave();
	assert_int_equal(priv_group_depth(), 0);
}

static void
test_setgid_switches_outermost_only(void **state)
{
	struct error err;
	gid_t r = getgid();

	(void)state;
	if (geteuid() != 0)
		skip();
	/* As a setgid binary started by a user: effective dropped by main. */
	assert_int_equal(setresgid(r, r, FAKE_GROUP), 0);
	effective_is(r);
	assert_int_equal(priv_group_enter(&err), ST_OK);
	effective_is(FAKE_GROUP);
	assert_int_equal(priv_group_enter(&err), ST_OK);
	priv_group_leave();
	effective_is(FAKE_GROUP);	/* the outer caller still needs it */
	priv_group_leave();
	effective_is(r);
	/* priv_drop: what main() does after the configuration. */
	assert_int_equal(setresgid(r, FAKE_GROUP, FAKE_GROUP), 0);
	assert_int_equal(priv_drop(&err), ST_OK);
	effective_is(r);
	assert_int_equal(priv_drop_for_good(&err), ST_OK);
	assert_int_equal(priv_group_enter(&err), ST_OK);
	effective_is(r);		/* nothing left to take back */
	priv_group_leave();
}

static struct stat
dir_of(uid_t uid, gid_t gid)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_uid = uid;
	st.st_gid = gid;
	return st;
}

static struct passwd
account(uid_t uid, gid_t gid)
{
	struct passwd pw;

	memset(&pw, 0, sizeof(pw));
	pw.pw_name = (char *)"runner";
	pw.pw_uid = uid;
	pw.pw_gid = gid;
	return pw;
}

/* RunAsUser wins, with the queue's group (not the user's own). */
static void
test_target_run_as_user(void **state)
{
	struct stat q = dir_of(0, 120);
	struct passwd pw = account(999, 998);
	struct priv_target t;
	struct error err;

	(void)state;
	assert_int_equal(priv_runner_target("runner", &pw, &q, &t, &err),
	    ST_OK);
	assert_false(t.stay_root);
	assert_int_equal(t.uid, 999);
	assert_int_equal(t.gid, 120);
	/* No QueueDir to read: the user's own group. */
	assert_int_equal(priv_runner_target("runner", &pw, NULL, &t, &err),
	    ST_OK);
	assert_int_equal(t.gid, 998);
}

static void
test_target_queue_owner(void **state)
{
	struct stat q = dir_of(130, 120);
	struct priv_target t;
	struct error err;

	(void)state;
	assert_int_equal(priv_runner_target("", NULL, &q, &t, &err), ST_OK);
	assert_false(t.stay_root);
	assert_int_equal(t.uid, 130);
	assert_int_equal(t.gid, 120);
}

/* Only root's QueueDir without RunAsUser stays root (and is logged). */
static void
test_target_stays_root(void **state)
{
	struct stat q = dir_of(0, 120);
	struct priv_target t;
	struct error err;

	(void)state;
	assert_int_equal(priv_runner_target("", NULL, &q, &t, &err), ST_OK);
	assert_true(t.stay_root);
	assert_int_equal(priv_runner_target("", NULL, NULL, &t, &err), ST_OK);
	assert_true(t.stay_root);
}

static void
test_target_refusals(void **state)
{
	struct stat q = dir_of(0, 120), rootgrp = dir_of(130, 0);
	struct passwd root = account(0, 0), pw = account(999, 0);
	struct priv_target t;
	struct error err;

	(void)state;
	assert_int_equal(priv_runner_target("nobody-here", NULL, &q, &t,
	    &err), ST_CONFIG);
	assert_non_null(strstr(err.text, "no such user"));
	assert_int_equal(priv_runner_target("root", &root, &q, &t, &err),
	    ST_CONFIG);
	/* Never root's group either. */
	assert_int_equal(priv_runner_target("", NULL, &rootgrp, &t, &err),
	    ST_CONFIG);
	assert_int_equal(priv_runner_target("runner", &pw, NULL, &t, &err),
	    ST_CONFIG);
}

static void
test_plan_per_mode(void **state)
{
	static const enum mode delivers[] = { MODE_SEND, MODE_SMTP,
	    MODE_RUN_QUEUE };
	static const enum mode done[] = { MODE_VERIFY, MODE_CHECK,
	    MODE_ALIASES, MODE_NOOP, MODE_VERSION };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(delivers) / sizeof(delivers[0]); i++) {
		assert_int_equal(priv_plan_for(delivers[i], 0),
		    PRIV_PLAN_RUNNER);
		assert_int_equal(priv_plan_for(delivers[i], 1000),
		    PRIV_PLAN_DROP);
	}
	for (i = 0; i < sizeof(done) / sizeof(done[0]); i++) {
		assert_int_equal(priv_plan_for(done[i], 0),
		    PRIV_PLAN_FOR_GOOD);
		assert_int_equal(priv_plan_for(done[i], 1000),
		    PRIV_PLAN_FOR_GOOD);
	}
	/* Listing and managing the queue: the group per step, as root too. */
	assert_int_equal(priv_plan_for(MODE_LIST_QUEUE, 0), PRIV_PLAN_DROP);
	assert_int_equal(priv_plan_for(MODE_QUEUE_ADMIN, 1000),
	    PRIV_PLAN_DROP);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_setgid_does_nothing),
		cmocka_unit_test(test_setgid_switches_outermost_only),
		cmocka_unit_test(test_target_run_as_user),
		cmocka_unit_test(test_target_queue_owner),
		cmocka_unit_test(test_target_stays_root),
		cmocka_unit_test(test_target_refusals),
		cmocka_unit_test(test_plan_per_mode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
