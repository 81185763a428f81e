/*
 * priv.c: the set-group-ID privilege, and every switch of it. postino is
 * installed setgid to a dedicated group so that ssmtp.conf can hold
 * AuthPass at mode 0640 and the queue is not world-writable. main()
 * drops the group once the configuration is read (priv_drop: effective
 * := real, the saved set-group-ID keeps it); from then on the group is
 * effective only between priv_group_enter() and priv_group_leave(),
 * which queue.c's public functions call around their work on the queue
 * directory (and the two readers of group-only files: a TLS client key,
 * LogFile). Every switch is verified with getresgid(2).
 *
 * The nesting depth is the one piece of mutable file-scope state outside
 * sendmail.c (DESIGN.md 3.12 departs here): a queue function may call
 * another, and only the outermost pair may switch, or an inner leave
 * would take the group away from the outer caller mid-step. The ids
 * themselves are the kernel's, process-wide, so a per-call token would
 * not make the state any less global.
 */
#include <sys/types.h>

#include <errno.h>
#include <string.h>
#include <syslog.h>
#include <sysexits.h>
#include <unistd.h>

#include "postino.h"

static unsigned int group_depth;	/* priv_group_enter nesting */

static int
verify(gid_t want_r, gid_t want_e, gid_t want_s, struct error *err)
{
	gid_t r, e, s;

	if (getresgid(&r, &e, &s) == -1)
		return error_set(err, ST_OSERR, "getresgid: %s",
		    strerror(errno));
	if (r != want_r || e != want_e || s != want_s)
		return error_set(err, ST_OSERR, "group privilege not as "
		    "expected (real %lu, effective %lu, saved %lu)",
		    (unsigned long)r, (unsigned long)e, (unsigned long)s);
	return ST_OK;
}

/* Effective group := want (real or saved), verified. */
static int
set_effective(gid_t want, struct error *err)
{
	gid_t r, e, s;

	if (getresgid(&r, &e, &s) == -1)
		return error_set(err, ST_OSERR, "getresgid: %s",
		    strerror(errno));
	if (e == want)
		return ST_OK;
	if (setresgid((gid_t)-1, want, (gid_t)-1) == -1)
		return error_set(err, ST_OSERR, "cannot switch the group "
		    "privilege: %s", strerror(errno));
	return verify(r, want, s, err);
}

int
priv_drop(struct error *err)
{
	return set_effective(getgid(), err);
}

int
priv_regain(struct error *err)
{
	gid_t r, e, s;

	if (getresgid(&r, &e, &s) == -1)
		return error_set(err, ST_OSERR, "getresgid: %s",
		    strerror(errno));
	return set_effective(s, err);
}

int
priv_group_enter(struct error *err)
{
	gid_t r, e, s;

	if (group_depth++ > 0)
		return ST_OK;
	if (getresgid(&r, &e, &s) == -1) {
		group_depth--;
		return error_set(err, ST_OSERR, "getresgid: %s",
		    strerror(errno));
	}
	/* Not set-group-ID (root's own run, a plain build, the tests). */
	if (r == s)
		return ST_OK;
	if (set_effective(s, err) != ST_OK) {
		group_depth--;
		return err->status;
	}
	return ST_OK;
}

void
priv_group_leave(void)
{
	struct error err;

	if (group_depth == 0 || --group_depth > 0)
		return;
	error_clear(&err);
	if (set_effective(getgid(), &err) != ST_OK) {
		/* Continuing would run the rest with the group: never. */
		log_line(LOG_CRIT, "cannot give the group privilege back: "
		    "%s", err.text);
		_exit(EX_OSERR);
	}
}

unsigned int
priv_group_depth(void)
{
	return group_depth;
}

int
priv_drop_for_good(struct error *err)
{
	gid_t r = getgid();

	if (setresgid(r, r, r) == -1)
		return error_set(err, ST_OSERR, "cannot give up the group "
		    "privilege: %s", strerror(errno));
	return verify(r, r, r, err);
}
