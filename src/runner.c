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
 * What a pass learns of the entries it reads, for the due index: each
 * entry left in queue/ and not held, with its next retry. complete is
 * cleared when an entry could not be read.
 */
struct pass {
	struct queue_due due;
	int		 complete;
};

static void
note_due(struct pass *p, const struct queue_entry *e)
{
	if (!e->hold && queue_due_note(&p->due, e->uid, e->next_retry) == -1)
		p->complete = 0;
}

/* Still in queue/ after an attempt: something pending, or a report. */
static int
kept(const struct queue_entry *e, const struct outcome *out)
{
	size_t i;

	if (out->pending > 0)
		return 1;
	for (i = 0; i < e->nrcpt; i++)
		if (e->rcpt[i].notify)
			return 1;
	return 0;
}

/*
 * Looked at without the lock: a user's run never takes (and so can
 * never hold, stopped) another user's entry, not even for a moment.
 * Also how an entry locked by another process is counted in the index.
 */
static int
peek_owner(const char *dir, const char *qid, uid_t owner, struct pass *p)
{
	struct queue_entry e;
	struct error err;
	int busy, mine = 0;

	queue_entry_init(&e);
	if (queue_peek_entry(dir, "queue", qid, &e, &busy, &err) == ST_OK) {
		mine = e.uid == owner;
		if (!mine || busy)
			note_due(p, &e);
	} else if (err.status != ST_PERM)	/* ST_PERM: gone meanwhile */
		p->complete = 0;
	queue_entry_free(&e);
	return mine;
}

static void
process_entry(const struct deliver_ctx *ctx, struct hub_session *hs,
    const char *qid, const struct runner_filter *f, time_t now,
    struct pass *p)
{
	struct queue_entry e;
	struct outcome out;
	struct error err;
	int expired;

	queue_entry_init(&e);
	error_clear(&err);
	if (f->own_only && !peek_owner(ctx->cfg->queue_dir, qid, f->owner, p))
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
		/* Held by another process: counted as it stands. */
		if (err.status == ST_TEMP)
			(void)peek_owner(ctx->cfg->queue_dir, qid,
			    (uid_t)-1, p);
		queue_entry_free(&e);
		return;
	}
	if (!matches_filter(&e, f, now) || (f->own_only &&
	    e.uid != f->owner)) {
		note_due(p, &e);
		queue_entry_free(&e);
		return;
	}
	expired = ctx->cfg->queue_lifetime > 0 &&
	    now - e.queued >= ctx->cfg->queue_lifetime;
	deliver_entry(ctx, hs, &e, expired, &out);
	if (kept(&e, &out))
		note_due(p, &e);
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
    char (*old)[QID_MAX], size_t nold, const struct runner_filter *f,
    struct pass *p)
{
	char (*ids)[QID_MAX];
	struct error err;
	size_t n, i;

	if (queue_list_ids(ctx->cfg->queue_dir, "queue", &ids, &n, &err) !=
	    ST_OK) {
		p->complete = 0;
		return;
	}
	for (i = 0; i < n; i++)
		if (!seen_before(old, nold, ids[i]))
			process_entry(ctx, hs, ids[i], f, time(NULL), p);
	free(ids);
}

/*
 * The due index is unknown (a queue from before it, or a damaged file):
 * read every entry once, as runner_has_due did before there was one,
 * and store what was found.
 */
static int
rebuild_due(const char *dir, struct queue_due *d)
{
	char (*ids)[QID_MAX];
	unsigned long long gen;
	struct pass p;
	struct error err;
	size_t n, i;

	if (queue_due_begin(dir, &gen) == -1 ||
	    queue_list_ids(dir, "queue", &ids, &n, &err) != ST_OK)
		return -1;
	queue_due_init(&p.due);
	p.complete = 1;
	for (i = 0; i < n; i++)
		(void)peek_owner(dir, ids[i], (uid_t)-1, &p);
	free(ids);
	if (queue_due_store(dir, &p.due, gen, p.complete) == -1 ||
	    !p.complete) {
		queue_due_free(&p.due);
		return -1;
	}
	queue_due_free(d);
	*d = p.due;
	return 0;
}

/*
 * Is an entry due, of f's owner when f->own_only? One small file read
 * (the due index); the entries only when it is unknown. It may say yes
 * too early (the index is a lower bound), never no when one is due.
 */
int
runner_has_due(const char *dir, const struct runner_filter *f)
{
	struct queue_due d;
	time_t now = time(NULL);
	size_t i;
	int due = 0;

	queue_due_init(&d);
	if (queue_due_read(dir, &d) == -1 && rebuild_due(dir, &d) == -1)
		due = 1;	/* nobody knows: let a run find out */
	for (i = 0; i < d.n && !due; i++)
		if ((!f->own_only || d.v[i].uid == f->owner) &&
		    d.v[i].due <= now)
			due = 1;
	queue_due_free(&d);
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
	unsigned long long gen = 0;
	struct pass p;
	size_t n, i;
	int lock, track = 1;

	if (queue_prepare(ctx->cfg->queue_dir, err) != ST_OK)
		return err->status;
	lock = queue_runner_lock(ctx->cfg->queue_dir);
	queue_sweep(ctx->cfg->queue_dir);
	/* The index's gen before the listing: commits after it show. */
	queue_due_init(&p.due);
	p.complete = 1;
	if (queue_due_read(ctx->cfg->queue_dir, &p.due) == 0 ||
	    rebuild_due(ctx->cfg->queue_dir, &p.due) == 0)
		gen = p.due.gen;
	else
		track = 0;
	p.due.n = 0;
	if (queue_list_ids(ctx->cfg->queue_dir, "queue", &ids, &n, err) !=
	    ST_OK) {
		queue_due_free(&p.due);
		if (lock != -1)
			(void)close(lock);
		return err->status;
	}
	memset(&hs, 0, sizeof(hs));
	for (i = 0; i < n; i++)
		if (f->qid == NULL || strcmp(f->qid, ids[i]) == 0)
			process_entry(ctx, &hs, ids[i], f, time(NULL), &p);
	/* Reports made during this pass (bounces) go out in it too. */
	if (f->qid == NULL && f->domain == NULL)
		process_new(ctx, &hs, ids, n, f, &p);
	deliver_session_close(&hs);
	queue_sync(ctx->cfg->queue_dir);	/* the removals of the pass */
	/* Every entry was read: the due index gets what was seen (-qI
	 * reads one entry: it only lowers). */
	(void)queue_due_store(ctx->cfg->queue_dir, &p.due, gen,
	    f->qid == NULL && p.complete && track);
	queue_due_free(&p.due);
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
