/*
 * priv.c: the set-group-ID privilege. postino is installed setgid to a
 * group (default mail) so that ssmtp.conf can hold AuthPass at mode 0640
 * and the queue is not world-writable. The group is needed only to read
 * the system configuration and revaliases and to create, commit and read
 * queue files; everything else (parsing the message, the network, TLS)
 * runs without it. The effective group is switched with setresgid(2),
 * keeping the group in the saved set-group-ID so it can be taken back
 * around queue steps; every switch is verified with getresgid(2). No
 * state is kept here: the kernel's real/effective/saved ids are the state.
 */
#include <sys/types.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "postino.h"

int
priv_is_setgid(void)
{
	gid_t r, e, s;

	if (getresgid(&r, &e, &s) == -1)
		return 0;
	return r != e || r != s;
}

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

int
priv_drop(struct error *err)
{
	gid_t r, e, s;

	if (getresgid(&r, &e, &s) == -1)
		return error_set(err, ST_OSERR, "getresgid: %s",
		    strerror(errno));
	if (e == r)
		return ST_OK;
	if (setresgid((gid_t)-1, r, (gid_t)-1) == -1)
		return error_set(err, ST_OSERR, "cannot drop the group "
		    "privilege: %s", strerror(errno));
	return verify(r, r, s, err);
}

int
priv_regain(struct error *err)
{
	gid_t r, e, s;

	if (getresgid(&r, &e, &s) == -1)
		return error_set(err, ST_OSERR, "getresgid: %s",
		    strerror(errno));
	if (e == s)
		return ST_OK;
	if (setresgid((gid_t)-1, s, (gid_t)-1) == -1)
		return error_set(err, ST_OSERR, "cannot take the group "
		    "privilege back: %s", strerror(errno));
	return verify(r, s, s, err);
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
