/*
 * test_priv.c: the group privilege helper. Without a set-group-ID the
 * switches do nothing and succeed; nesting is counted so that only the
 * outermost pair switches. As root, a set-group-ID process is imitated
 * with setresgid(2) (real 0, saved another group) to see the switches.
 */
#include <sys/types.h>

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_setgid_does_nothing),
		cmocka_unit_test(test_setgid_switches_outermost_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
