/*
 * ratelimit.c: how many messages one user may submit per period
 * (RateLimit=N/period, per-user RateLimitUser=login:N/period, exempt
 * users RateLimitExempt=). Operators cap messages per client at their
 * hub because a hacked web application floods it; this caps it at the
 * source, per uid. The count lives in QueueDir/rate/UID, one small text
 * file per uid ("window-start count warned"), updated under flock(2) so
 * that concurrent submissions count right. The window is fixed: it
 * starts with the first message after the previous window ended.
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

int
ratelimit_parse(const char *value, struct rate_rule *rule, struct error *err)
{
	char count[32], shown[64];
	const char *slash = strchr(value, '/'), *errstr;
	size_t n;

	/* The value is untrusted text: shown sanitised, and bounded. */
	log_sanitize(shown, sizeof(shown), value, strlen(value));
	if (slash == NULL || (n = (size_t)(slash - value)) == 0 ||
	    n >= sizeof(count))
		return error_set(err, ST_CONFIG, "expected N/period (for "
		    "example 100/1h), got '%s'", shown);
	memcpy(count, value, n);
	count[n] = '\0';
	rule->max = (unsigned int)strtonum(count, 1, 1000000000, &errstr);
	if (errstr != NULL)
		return error_set(err, ST_CONFIG, "rate limit count in '%s' is "
		    "%s", shown, errstr);
	if (config_parse_duration(slash + 1, &rule->period, err) != ST_OK)
		return err->status;
	if (rule->period <= 0)
		return error_set(err, ST_CONFIG, "rate limit period must be "
		    "positive");
	return ST_OK;
}

/* The rule for login: its own, none when exempt, else the default. */
static const struct rate_rule *
rule_for(const struct config *cfg, const char *login)
{
	size_t i;

	for (i = 0; i < cfg->rate_user_count; i++)
		if (strcmp(cfg->rate_user[i].login, login) == 0)
			return &cfg->rate_user[i].rule;
	for (i = 0; i < cfg->rate_exempt_count; i++)
		if (strcmp(cfg->rate_exempt[i], login) == 0)
			return NULL;
	if (!cfg->rate_exempt_set && strcmp(login, "root") == 0)
		return NULL;	/* monitoring and cron as root must shout */
	return cfg->rate_default.max > 0 ? &cfg->rate_default : NULL;
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

static int
open_counter(const char *dir, uid_t uid, struct error *err)
{
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/rate", dir) >= (int)sizeof(path))
		return error_set(err, ST_CANTCREAT, "path too long"), -1;
	if (mkdir(path, 0770) == -1 && errno != EEXIST)
		return error_set(err, ST_CANTCREAT, "cannot create %s: %s",
		    path, strerror(errno)), -1;
	(void)snprintf(path, sizeof(path), "%s/rate/%lu", dir,
	    (unsigned long)uid);
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0660);
	if (fd == -1 || flock(fd, LOCK_EX) == -1) {
		(void)error_set(err, ST_CANTCREAT, "cannot use %s: %s", path,
		    strerror(errno));
		if (fd != -1)
			(void)close(fd);
		return -1;
	}
	return fd;
}

int
ratelimit_take(const struct config *cfg, uid_t uid, const char *login,
    int *warn_now, struct error *err)
{
	const struct rate_rule *rule = rule_for(cfg, login);
	struct rate_state st;
	long long now = (long long)time(NULL);
	int fd, rc = ST_OK;

	*warn_now = 0;
	if (rule == NULL)
		return ST_OK;
	if ((fd = open_counter(cfg->queue_dir, uid, err)) == -1)
		return err->status;
	read_state(fd, &st);
	if (st.start == 0 || now - st.start >= rule->period || now < st.start)
		memset(&st, 0, sizeof(st));
	if (st.start == 0)
		st.start = now;
	if (st.count >= rule->max) {
		rc = error_set(err, ST_CANTCREAT, "rate limit of %u messages "
		    "per %llds reached for %s (uid %lu): message refused",
		    rule->max, rule->period, login, (unsigned long)uid);
		*warn_now = !st.warned;		/* once per period */
		st.warned = 1;
	} else
		st.count++;
	if (write_state(fd, &st) == -1 && rc == ST_OK)
		rc = error_set(err, ST_CANTCREAT, "cannot update the rate "
		    "counter: %s", strerror(errno));
	(void)close(fd);
	return rc;
}
