/*
 * runner.c: the queue pass (sendmail -q, the timer, the runner spawned
 * after a send): which entries are due (retry schedule, -qI, -qR, hold),
 * which have outlived QueueLifetime, one locked entry at a time handed
 * to deliver.c over one reused session per hub, and the reports made
 * during the pass sent in it too. It never exits.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "postino.h"

/* ----------------------------------------------------------- the pass */

static int
matches_filter(const struct queue_entry *e, const struct runner_filter *f,
    time_t now)
{
	size_t i, flen;

	if (e->hold)
		return 0;
	if (!f->force && e->next_retry > now)
		return 0;
	if (f->domain == NULL)
		return 1;
	flen = strlen(f->domain);
	for (i = 0; i < e->nrcpt; i++) {
		const char *d = addr_domain(e->rcpt[i].addr);
		size_t dlen = d != NULL ? strlen(d) : 0;

		/* d tested too: an empty filter domain would match NULL. */
		if (d != NULL && e->rcpt[i].state == RS_PENDING &&
		    dlen >= flen &&
		    strcasecmp(d + dlen - flen, f->domain) == 0)
			return 1;
	}
	return 0;
}

/*
 * Looked at without the lock: a user's run never takes (and so can
 * never hold, stopped) another user's entry, not even for a moment.
 */
static int
owned_by(const char *dir, const char *qid, uid_t owner)
{
	struct queue_entry e;
	struct error err;
	int busy, mine;

	queue_entry_init(&e);
	mine = queue_peek_entry(dir, "queue", qid, &e, &busy, &err) ==
	    ST_OK && e.uid == owner;
	queue_entry_free(&e);
	return mine;
}

static void
process_entry(const struct deliver_ctx *ctx, struct hub_session *hs,
    const char *qid, const struct runner_filter *f, time_t now)
{
	struct queue_entry e;
	struct outcome out;
	struct error err;
	int expired;

	queue_entry_init(&e);
	error_clear(&err);
	if (f->own_only && !owned_by(ctx->cfg->queue_dir, qid, f->owner))
		return;
	if (queue_lock_entry(ctx->cfg->queue_dir, qid, &e, &err) != ST_OK) {
		if (err.status == ST_DATA)
			log_line(LOG_ERR, "%s: unusable queue entry: %s", qid,
			    err.text);
		/* Never taken over (a stopped holder may resume and send):
		 * told, for an administrator to end the holder. */
		else if (err.status == ST_TEMP && e.lock_pid != 0 &&
		    now - e.lock_since >= QUEUE_LOCK_STUCK)
			log_line(LOG_WARNING, "%s: stuck for %lld s: %s; not "
			    "delivered until pid %ld ends (postino(8) "
			    "SECURITY)", qid, (long long)(now - e.lock_since),
			    err.text, (long)e.lock_pid);
		return;
	}
	if (!matches_filter(&e, f, now) || (f->own_only &&
	    e.uid != f->owner)) {
		queue_entry_free(&e);
		return;
	}
	expired = ctx->cfg->queue_lifetime > 0 &&
	    now - e.queued >= ctx->cfg->queue_lifetime;
	deliver_entry(ctx, hs, &e, expired, &out);
	queue_entry_free(&e);
}

static int
compare_qid(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int
seen_before(char (*ids)[QID_MAX], size_t n, const char *qid)
{
	return n > 0 && bsearch(qid, ids, n, sizeof(*ids), compare_qid) !=
	    NULL;
}

/* Entries that appeared during the pass, such as its own bounces. */
static void
process_new(const struct deliver_ctx *ctx, struct hub_session *hs,
    char (*old)[QID_MAX], size_t nold, const struct runner_filter *f)
{
	char (*ids)[QID_MAX];
	struct error err;
	size_t n, i;

	if (queue_list_ids(ctx->cfg->queue_dir, "queue", &ids, &n, &err) !=
	    ST_OK)
		return;
	for (i = 0; i < n; i++)
		if (!seen_before(old, nold, ids[i]))
			process_entry(ctx, hs, ids[i], f, time(NULL));
	free(ids);
}

int
runner_has_due(const char *dir)
{
	char (*ids)[QID_MAX];
	struct error err;
	size_t n, i;
	int due = 0;

	if (queue_list_ids(dir, "queue", &ids, &n, &err) != ST_OK)
		return 0;
	for (i = 0; i < n && !due; i++) {
		struct queue_entry e;
		int busy;

		queue_entry_init(&e);
		if (queue_peek_entry(dir, "queue", ids[i], &e, &busy, &err) ==
		    ST_OK && !busy && !e.hold && e.next_retry <= time(NULL))
			due = 1;
		queue_entry_free(&e);
	}
	free(ids);
	return due;
}

/*
 * MetricsFile after a pass over the whole queue (not one user's entries,
 * not -qI): the textfile collector reads it between runs.
 */
static void
write_metrics(const struct deliver_ctx *ctx, const struct runner_filter *f)
{
	struct error err;

	if (ctx->cfg->metrics_file[0] == '\0' || f->own_only ||
	    f->qid != NULL || f->domain != NULL)
		return;
	error_clear(&err);
	if (showq_metrics_write(ctx->cfg, &err) != ST_OK)
		log_line(LOG_WARNING, "MetricsFile: %s", err.text);
}

int
runner_run(const struct deliver_ctx *ctx, const struct runner_filter *f,
    struct error *err)
{
	char (*ids)[QID_MAX];
	struct hub_session hs;
	size_t n, i;
	int lock;

	if (queue_prepare(ctx->cfg->queue_dir, err) != ST_OK)
		return err->status;
	lock = queue_runner_lock(ctx->cfg->queue_dir);
	queue_sweep(ctx->cfg->queue_dir);
	if (queue_list_ids(ctx->cfg->queue_dir, "queue", &ids, &n, err) !=
	    ST_OK) {
		if (lock != -1)
			(void)close(lock);
		return err->status;
	}
	memset(&hs, 0, sizeof(hs));
	for (i = 0; i < n; i++)
		if (f->qid == NULL || strcmp(f->qid, ids[i]) == 0)
			process_entry(ctx, &hs, ids[i], f, time(NULL));
	/* Reports made during this pass (bounces) go out in it too. */
	if (f->qid == NULL && f->domain == NULL)
		process_new(ctx, &hs, ids, n, f);
	deliver_session_close(&hs);
	queue_sync(ctx->cfg->queue_dir);	/* the removals of the pass */
	free(ids);
	if (lock != -1)
		(void)close(lock);
	write_metrics(ctx, f);
	return ST_OK;
}

void
runner_filter_for(struct runner_filter *f, uid_t caller)
{
	f->own_only = caller != 0;
	f->owner = caller;
}

void
runner_spawn(const struct deliver_ctx *ctx, const struct runner_filter *f)
{
	struct error err;
	int fd;

	if (fork() != 0)
		return;
	(void)setsid();
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		(void)dup2(fd, STDIN_FILENO);
		(void)dup2(fd, STDOUT_FILENO);
		(void)dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			(void)close(fd);
	}
	error_clear(&err);
	(void)runner_run(ctx, f, &err);
	_exit(0);
}
