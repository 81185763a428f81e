/*
 * ratelimit.c: how many messages one user may submit per period
 * (RateLimit=N/period, per-user RateLimitUser=login:N/period, exempt
 * users RateLimitExempt=). Operators cap messages per client at their
 * hub because a hacked web application floods it; this caps it at the
 * source, per uid. The count lives in QueueDir/rate/UID, one small text
 * file per uid ("window-start count warned"), updated under flock(2) so
 * that concurrent submissions count right. The window is fixed: it
 * starts with the first message after the previous window ended.
 * config.c builds the policy; queue.c opens and locks the counter (with
 * the group); this file only decides, and calls neither of them.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "postino.h"

const struct rate_rule *
ratelimit_rule_for(const struct rate_policy *pol, const char *login)
{
	size_t i;

	for (i = 0; i < pol->nuser; i++)
		if (strcmp(pol->user[i].login, login) == 0)
			return &pol->user[i].rule;
	for (i = 0; i < pol->nexempt; i++)
		if (strcmp(pol->exempt[i], login) == 0)
			return NULL;
	if (!pol->exempt_set && strcmp(login, "root") == 0)
		return NULL;	/* monitoring and cron as root must shout */
	return pol->deflt.max > 0 ? &pol->deflt : NULL;
}

struct rate_state {
	long long	 start;
	unsigned int	 count;
	int		 warned;
};

static void
read_state(int fd, struct rate_state *st)
{
	char buf[128];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	memset(st, 0, sizeof(*st));
	if (n <= 0)
		return;
	buf[n] = '\0';
	/*
	 * Out of range, a number converts wrong but safely in glibc: a
	 * wrong count, in a file that whoever could write could remove.
	 */
	/* NOLINTNEXTLINE(cert-err34-c) */
	if (sscanf(buf, "%lld %u %d", &st->start, &st->count, &st->warned) !=
	    3)
		memset(st, 0, sizeof(*st));	/* damaged: start afresh */
}

static int
write_state(int fd, const struct rate_state *st)
{
	char buf[128];
	int n = snprintf(buf, sizeof(buf), "%lld %u %d\n", st->start,
	    st->count, st->warned);

	if (n < 0 || ftruncate(fd, 0) == -1 ||
	    pwrite(fd, buf, (size_t)n, 0) != n)
		return -1;
	return 0;
}

int
ratelimit_take(const struct rate_rule *rule, int fd, uid_t uid,
    const char *login, int *warn_now, struct error *err)
{
	struct rate_state st;
	long long now = (long long)time(NULL);
	int rc = ST_OK;

	*warn_now = 0;
	read_state(fd, &st);
	if (st.start == 0 || now - st.start >= rule->period || now < st.start)
		memset(&st, 0, sizeof(st));
	if (st.start == 0)
		st.start = now;
	if (st.count >= rule->max) {
		rc = error_set(err, ST_LIMIT, "rate limit of %u messages "
		    "per %llds reached for %s (uid %lu): message refused",
		    rule->max, rule->period, login, (unsigned long)uid);
		*warn_now = !st.warned;		/* once per period */
		st.warned = 1;
	} else
		st.count++;
	if (write_state(fd, &st) == -1 && rc == ST_OK)
		rc = error_set(err, ST_CANTCREAT, "cannot update the rate "
		    "counter: %s", strerror(errno));
	return rc;
}
