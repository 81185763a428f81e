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
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
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

/* ------------------------------------------------- root's deliveries */

int
priv_runner_target(const char *run_as_user, const struct passwd *pw,
    const struct stat *qdir, struct priv_target *t, struct error *err)
{
	memset(t, 0, sizeof(*t));
	if (run_as_user[0] != '\0') {
		if (pw == NULL)
			return error_set(err, ST_CONFIG, "RunAsUser %s: no "
			    "such user", run_as_user);
		if (pw->pw_uid == 0)
			return error_set(err, ST_CONFIG, "RunAsUser %s: must "
			    "not be root (deliveries never run as root)",
			    run_as_user);
		t->uid = pw->pw_uid;
		/* Without a QueueDir to read, its own group: never root's. */
		t->gid = qdir != NULL ? qdir->st_gid : pw->pw_gid;
	} else {
		/* A hand-made queue of root's: the one case left as root. */
		if (qdir == NULL || qdir->st_uid == 0) {
			t->stay_root = 1;
			return ST_OK;
		}
		t->uid = qdir->st_uid;
		t->gid = qdir->st_gid;
	}
	if (t->gid == 0)
		return error_set(err, ST_CONFIG, "the queue run would keep "
		    "root's group: give QueueDir the queue's group (chgrp "
		    "postino)");
	return ST_OK;
}

enum priv_plan
priv_plan_for(enum mode mode, uid_t real_uid)
{
	switch (mode) {
	case MODE_SEND:
	case MODE_SMTP:
	case MODE_RUN_QUEUE:
		return real_uid == 0 ? PRIV_PLAN_RUNNER : PRIV_PLAN_DROP;
	case MODE_VERIFY:
	case MODE_CHECK:
	case MODE_ALIASES:
	case MODE_NOOP:
	case MODE_VERSION:
		return PRIV_PLAN_FOR_GOOD;
	case MODE_LIST_QUEUE:
	case MODE_QUEUE_ADMIN:
	case MODE_TOKEN:	/* root's; the cache takes the group */
		break;
	}
	return PRIV_PLAN_DROP;
}

/* Real, effective and saved uid (or gid) all equal want? */
static int
verify_ids(uid_t want_uid, gid_t want_gid, struct error *err)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (getresuid(&ru, &eu, &su) == -1 || getresgid(&rg, &eg, &sg) == -1)
		return error_set(err, ST_OSERR, "getresuid: %s",
		    strerror(errno));
	if (ru != want_uid || eu != want_uid || su != want_uid ||
	    rg != want_gid || eg != want_gid || sg != want_gid ||
	    getgroups(0, NULL) != 0)
		return error_set(err, ST_OSERR, "the switch to uid %lu gid "
		    "%lu did not take (uid %lu/%lu/%lu, gid %lu/%lu/%lu)",
		    (unsigned long)want_uid, (unsigned long)want_gid,
		    (unsigned long)ru, (unsigned long)eu, (unsigned long)su,
		    (unsigned long)rg, (unsigned long)eg, (unsigned long)sg);
	return ST_OK;
}

/* Groups first (setgroups needs root), then the uid, each checked. */
static int
become(const struct priv_target *t, struct error *err)
{
	if (setgroups(0, NULL) == -1)
		return error_set(err, ST_OSERR, "setgroups: %s",
		    strerror(errno));
	if (setresgid(t->gid, t->gid, t->gid) == -1)
		return error_set(err, ST_OSERR, "setresgid %lu: %s",
		    (unsigned long)t->gid, strerror(errno));
	if (setresuid(t->uid, t->uid, t->uid) == -1)
		return error_set(err, ST_OSERR, "setresuid %lu: %s",
		    (unsigned long)t->uid, strerror(errno));
	if (verify_ids(t->uid, t->gid, err) != ST_OK)
		return err->status;
	/* A change of ids resets it to fs.suid_dumpable: secrets stay in. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	return ST_OK;
}

static int
become_runner(const struct config *cfg, enum priv_as *as, struct error *err)
{
	struct passwd pwbuf, *pw = NULL;
	char buf[4096];
	struct priv_target t;
	struct stat st;
	int rc;

	if (cfg->run_as_user[0] != '\0' && (rc = getpwnam_r(cfg->run_as_user,
	    &pwbuf, buf, sizeof(buf), &pw)) != 0 && rc != ENOENT &&
	    rc != ESRCH)
		return error_set(err, ST_OSERR, "RunAsUser %s: %s",
		    cfg->run_as_user, strerror(rc));
	if (priv_runner_target(cfg->run_as_user, pw, stat(cfg->queue_dir,
	    &st) == 0 ? &st : NULL, &t, err) != ST_OK) {
		error_prefix(err, "%s", cfg->path);
		return err->status;
	}
	if (t.stay_root) {
		*as = PRIV_AS_ROOT;
		return priv_drop(err);
	}
	if (become(&t, err) != ST_OK) {
		error_prefix(err, "cannot run as uid %lu, not as root",
		    (unsigned long)t.uid);
		return err->status;
	}
	*as = PRIV_AS_RUNNER;
	return ST_OK;
}

int
priv_settle(enum mode mode, const struct config *cfg, enum priv_as *as,
    struct error *err)
{
	*as = PRIV_AS_CALLER;
	switch (priv_plan_for(mode, getuid())) {
	case PRIV_PLAN_FOR_GOOD:
		return priv_drop_for_good(err);
	case PRIV_PLAN_RUNNER:
		return become_runner(cfg, as, err);
	case PRIV_PLAN_DROP:
		break;
	}
	return priv_drop(err);
}
