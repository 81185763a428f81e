/*
 * queue.c: the fallback queue on disk, and the only code that works in
 * the queue directory: the spool file a message is read into, committing
 * it crash-safely, locking an entry while it is delivered, updating its
 * state, removing it, listing it, the sweep, the runner lock, the
 * HubBackoff marks and the RateLimit counters. Every public function
 * that touches the directory takes the set-group-ID group for itself
 * (priv_group_enter/leave) and gives it back before it returns. No
 * policy here (when to retry, when to bounce): that is the runner's.
 * The layout, under QueueDir:
 *
 *   data/QID     the message in wire form (CRLF, not dot-stuffed). Never
 *                changed once written; flock(2) on it is the entry's lock.
 *                Its mtime is the time it was committed.
 *   queue/QID    the control file: the entry exists once this is here.
 *   failed/QID   the control file of an entry that is never retried
 *                (every recipient refused for good, or its data file
 *                lost); still listed.
 *   AREA/.tmp.*  files being written; removed by queue_sweep when stale.
 *   data/.lock.QID  the lock record: "PID SINCE" of the process that
 *                locked the entry for delivery (meaningful only while
 *                data/QID is locked; removed with the entry, and by the
 *                sweep when data/QID is gone or nobody holds it).
 *   runner.lock  held shared by every queue run (queue_runner_active).
 *   hub-down.HOST.PORT  HubBackoff: the route failed at its mtime.
 *   rate/UID     RateLimit counter of one uid ("start count warned").
 *   due          when each submitter's entries are next due (the due
 *                index, below): what runner_has_due reads after a send
 *                instead of every control file.
 *   stats        outcome counters kept across runs, for postino queue
 *                --metrics: "sent N", "deferred N", "bounced N",
 *                "failed N", "last-delivery TIME" lines; flock(2)ed while
 *                read and rewritten.
 *
 * A control file is text, one "key value" line each, readable with a
 * pager; times are seconds since the epoch followed by the date:
 *
 *   postino-queue 1
 *   id 4F2A9C01B3
 *   queued 1763775294 Sun, 22 Nov 2026 00:54:54 +0000
 *   next-retry 1763775354 Sun, 22 Nov 2026 00:55:54 +0000
 *   attempts 1
 *   uid 33
 *   size 1234
 *   body 7bit                      (or 8bit)
 *   hold 0
 *   possible-duplicate 0
 *   hub default                    (MailHub; or "hub HOST PORT" from
 *                                   the submitter's revaliases entry)
 *   dup-hub mx1.example.org 587    (optional, with possible-duplicate
 *                                   1 only: the hub that may have the
 *                                   message; it alone is tried from
 *                                   then on, never another)
 *   sender <www-data@example.org>  (<> for the null sender)
 *   dsn-notify FAILURE,DELAY       (optional: -N, -R, -V for the hub)
 *   dsn-ret HDRS
 *   dsn-envid QQ+2Bxyz
 *   error connect to 192.0.2.1[192.0.2.1]:587: Connection refused
 *   rcpt pending <ops@example.org>
 *   rcpt sent <dev@example.org> 250 2.0.0 Ok: queued as 4Xyz1
 *   rcpt failed <old@example.org> 550 5.1.1 User unknown
 *   rcpt bounce <gone@example.org> 550 ...  (failed, report still owed)
 *
 * The rules that keep mail from being lost (postino(8) QUEUE):
 *
 * Size. One limit, QUEUE_CTL_MAX (8 MiB), for the writer and the reader.
 * A recipient's stored reply is cut to QUEUE_REPLY_KEEP bytes, so that
 * an entry of RCPT_MAX recipients of the longest address always fits; a
 * control file over the limit is refused at commit (ST_CANTCREAT, the
 * caller keeps the message) rather than written for a reader to refuse.
 *
 * Commit. The spool file is locked (flock) before it has a name and the
 * lock is held until the control file is in place: linkat(2) of
 * /proc/self/fd/N names it data/QID; without /proc or O_TMPFILE the
 * copy fallback writes data/.tmp.QID, locks it, and only then renames it
 * to data/QID (the caller's descriptor then becomes that locked copy).
 * Names never replace another entry's: data/QID and a new queue/QID are
 * made with linkat/renameat2(RENAME_NOREPLACE), and EEXIST is an error.
 * Then the control file is written to AREA/.tmp.QID, fsync()ed and
 * renamed into queue/ (or failed/), and the directories are fsync()ed:
 * a crash at any point leaves either a whole entry or an orphan data
 * file that nobody was told about.
 *
 * Sweep. A data file is an orphan when neither queue/QID nor failed/QID
 * exists. The sweep removes it only when it is at least ORPHAN_SECONDS
 * old, nobody holds its lock, and, checked again under the lock, the
 * control file still does not exist and the name is still that file: a
 * commit in progress holds the lock, and one that ended in between has
 * its control file in place. A .tmp.* file is removed when unlocked and
 * STALE_SECONDS old.
 *
 * Stuck locks. A user can stop (SIGSTOP) a queue run they started, and
 * it keeps its entry locked for as long as it is stopped: the lock must
 * never be broken while its holder may still deliver (two deliveries of
 * one entry). So the lock is never taken over; instead the holder is
 * made visible: every delivery lock writes a lock record, listings show
 * "locked by pid N since T (state)", and a run that finds an entry
 * locked for QUEUE_LOCK_STUCK (1 h) by a holder stopped or gone logs it
 * for an administrator to act on (postino(8) SECURITY). The lock goes
 * with its holder's last descriptor, so ending the holder frees it.
 *
 * Missing data. A control file whose data file is missing is never
 * skipped in silence: queue_lock_entry moves it to failed/ (its error
 * line says so) and returns ST_DATA for the runner to log; listings
 * mark it "data file missing". An entry that cannot be read at all
 * (damaged, over the limit) is listed with the reason, and root can
 * delete it (queue_force_remove).
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "postino.h"

/*
 * A control file, at most, written or read: the longest entry (RCPT_MAX
 * recipients, ADDR_MAX addresses, replies cut to QUEUE_REPLY_KEEP) takes
 * about 7.9 MB.
 */
#define QUEUE_CTL_MAX		(8 * 1024 * 1024)
/*
 * A data file without a control file is removed only this long after its
 * commit: the lock already protects a commit in progress; the age is a
 * second guard (a filesystem whose flock is not shared, an older binary).
 */
#define ORPHAN_SECONDS		3600
/*
 * A temporary file this old, and not locked, was left by a crash. Data
 * files need no age: their writer locks them before they have a name.
 */
#define STALE_SECONDS	5

static void	due_lower(const char *dir, uid_t uid, time_t t);
static int	open_in_queue(const char *dir, const char *name, int flags);

/* "bounce" is a failed recipient whose report is still owed. */
static const char *const rcpt_state_names[] = { "pending", "sent", "failed",
	"bounce" };

/* ------------------------------------------------------------- helpers */

int
queue_valid_qid(const char *qid)
{
	size_t i;

	for (i = 0; i < QID_LEN; i++)
		if (!((qid[i] >= '0' && qid[i] <= '9') ||
		    (qid[i] >= 'A' && qid[i] <= 'F')))
			return 0;
	return qid[QID_LEN] == '\0';
}

static int
path_join(char *buf, size_t len, const char *dir, const char *area,
    const char *name, struct error *err)
{
	int n = snprintf(buf, len, "%s/%s/%s", dir, area, name);

	if (n < 0 || (size_t)n >= len)
		return error_set(err, ST_CANTCREAT, "queue path too long");
	return ST_OK;
}

static int
fsync_dir(const char *dir, const char *area)
{
	char path[PATH_MAX];
	int fd, rc;

	if (snprintf(path, sizeof(path), "%s/%s", dir, area) >=
	    (int)sizeof(path))
		return -1;
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	(void)close(fd);
	return rc;
}

int
queue_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

void
queue_entry_init(struct queue_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->data_fd = -1;
}

void
queue_entry_free(struct queue_entry *e)
{
	size_t i;

	if (e->data_fd != -1)
		(void)close(e->data_fd);
	for (i = 0; i < e->nrcpt; i++) {
		free(e->rcpt[i].addr);
		free(e->rcpt[i].reply);
	}
	free(e->rcpt);
	queue_entry_init(e);
}

int
queue_entry_add_rcpt(struct queue_entry *e, const char *addr,
    enum rcpt_state state, struct error *err)
{
	struct queue_rcpt *r;

	if (e->nrcpt >= RCPT_MAX)
		return error_set(err, ST_DATA, "too many recipients");
	if (e->nrcpt == e->rcpt_cap) {
		size_t cap = e->rcpt_cap ? e->rcpt_cap * 2 : 8;

		r = reallocarray(e->rcpt, cap, sizeof(*r));
		if (r == NULL)
			return error_set(err, ST_OSERR, "out of memory");
		e->rcpt = r;
		e->rcpt_cap = cap;
	}
	r = &e->rcpt[e->nrcpt];
	memset(r, 0, sizeof(*r));
	if (strlen(addr) >= ADDR_MAX)
		return error_set(err, ST_DATA, "address too long");
	if ((r->addr = strdup(addr)) == NULL ||
	    (r->reply = strdup("")) == NULL) {
		free(r->addr);
		return error_set(err, ST_OSERR, "out of memory");
	}
	r->state = state;
	e->nrcpt++;
	return ST_OK;
}

int
queue_rcpt_set_reply(struct queue_rcpt *r, const char *text)
{
	char *copy = strndup(text, REPLY_TEXT_MAX - 1);

	if (copy == NULL)
		return -1;
	free(r->reply);
	r->reply = copy;
	return 0;
}

/*
 * May this process create QueueDir's subdirectories? Only root or the
 * owner of QueueDir (the runner user): a directory made by a user would
 * be that user's, to chmod or fill at will (issue 9 item 16).
 */
static int
may_create_areas(const char *dir)
{
	struct stat st;
	uid_t uid = getuid();

	return uid == 0 || (stat(dir, &st) == 0 && st.st_uid == uid);
}

static int
prepare(const char *dir, struct error *err)
{
	static const char *const areas[] = { "data", "queue", "failed" };
	char path[PATH_MAX];
	struct stat st;
	size_t i;

	for (i = 0; i < sizeof(areas) / sizeof(areas[0]); i++) {
		if (snprintf(path, sizeof(path), "%s/%s", dir, areas[i]) >=
		    (int)sizeof(path))
			return error_set(err, ST_CANTCREAT,
			    "queue path too long");
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			continue;
		if (errno == ENOENT && !may_create_areas(dir))
			return error_set(err, ST_CANTCREAT, "%s is missing; "
			    "only root or the owner of %s may create it (make "
			    "install does)", path, dir);
		/* In a set-group-ID QueueDir it inherits group and bit. */
		if (mkdir(path, 0770) == -1 && errno != EEXIST)
			return error_set(err, ST_CANTCREAT,
			    "cannot create %s: %s", path, strerror(errno));
	}
	return ST_OK;
}

int
queue_prepare(const char *dir, struct error *err)
{
	int rc;

	if (priv_group_enter(err) != ST_OK)
		return err->status;
	rc = prepare(dir, err);
	priv_group_leave();
	return rc;
}

/* ------------------------------------------------------ the text form */

/* Keep a value on one line: control bytes become '?'. */
static void
clean_value(char *dst, size_t len, const char *src)
{
	log_sanitize(dst, len, src, strlen(src));
}

static int
append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -1;
		if ((size_t)n < *cap - *len) {
			*len += (size_t)n;
			return 0;
		} else {
			size_t ncap = *cap * 2 + (size_t)n;
			char *nbuf = realloc(*buf, ncap);

			if (nbuf == NULL)
				return -1;
			*buf = nbuf;
			*cap = ncap;
		}
	}
}

static int
append_time(char **buf, size_t *len, size_t *cap, const char *key, time_t t)
{
	char date[64];
	struct tm tm;

	/* The RFC 5322 form, for a human reading the file. */
	if (localtime_r(&t, &tm) == NULL || strftime(date, sizeof(date),
	    "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		date[0] = '\0';
	return append(buf, len, cap, "%s %lld %s\n", key, (long long)t, date);
}

char *
queue_format(const struct queue_entry *e, size_t *outlen)
{
	char clean[REPLY_TEXT_MAX];
	size_t len = 0, cap = 1024, i;
	char *buf = malloc(cap);
	int bad = 0;

	if (buf == NULL)
		return NULL;
	buf[0] = '\0';
	bad |= append(&buf, &len, &cap, "postino-queue 1\nid %s\n", e->qid);
	bad |= append_time(&buf, &len, &cap, "queued", e->queued);
	bad |= append_time(&buf, &len, &cap, "next-retry", e->next_retry);
	bad |= append(&buf, &len, &cap, "attempts %u\nuid %lu\nsize %lld\n"
	    "body %s\nhold %d\npossible-duplicate %d\n", e->attempts,
	    (unsigned long)e->uid, (long long)e->size,
	    e->body_8bit ? "8bit" : "7bit", e->hold ? 1 : 0,
	    e->possible_dup ? 1 : 0);
	if (e->route.host[0] != '\0')
		bad |= append(&buf, &len, &cap, "hub %s %s\n", e->route.host,
		    e->route.port);
	else
		bad |= append(&buf, &len, &cap, "hub default\n");
	if (e->dup_hub.host[0] != '\0')
		bad |= append(&buf, &len, &cap, "dup-hub %s %s\n",
		    e->dup_hub.host, e->dup_hub.port);
	bad |= append(&buf, &len, &cap, "sender <%s>\n", e->sender);
	if (e->dsn.notify[0] != '\0')
		bad |= append(&buf, &len, &cap, "dsn-notify %s\n",
		    e->dsn.notify);
	if (e->dsn.ret[0] != '\0')
		bad |= append(&buf, &len, &cap, "dsn-ret %s\n", e->dsn.ret);
	if (e->dsn.envid[0] != '\0')
		bad |= append(&buf, &len, &cap, "dsn-envid %s\n",
		    e->dsn.envid);
	clean_value(clean, sizeof(clean), e->last_error);
	bad |= append(&buf, &len, &cap, "error %s\n", clean);
	for (i = 0; i < e->nrcpt && !bad; i++) {
		/* Cut, so that the longest entry fits QUEUE_CTL_MAX. */
		clean_value(clean, QUEUE_REPLY_KEEP, e->rcpt[i].reply);
		bad |= append(&buf, &len, &cap, "rcpt %s <%s>%s%s\n",
		    rcpt_state_names[e->rcpt[i].state == RS_FAILED &&
		    e->rcpt[i].notify ? 3 : e->rcpt[i].state], e->rcpt[i].addr,
		    clean[0] != '\0' ? " " : "", clean);
	}
	if (bad) {
		free(buf);
		return NULL;
	}
	*outlen = len;
	return buf;
}

static int
parse_number(const char *v, long long max, long long *out)
{
	const char *errstr;
	char num[32];
	size_t n = strcspn(v, " ");

	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, v, n);
	num[n] = '\0';
	*out = strtonum(num, 0, max, &errstr);
	return errstr == NULL ? 0 : -1;
}

/* "<addr>" at the start of v; *rest gets what follows. */
static int
parse_angle(const char *v, char *out, size_t outlen, const char **rest)
{
	const char *end;
	size_t n;

	if (v[0] != '<' || (end = strchr(v, '>')) == NULL)
		return -1;
	n = (size_t)(end - v - 1);
	if (n >= outlen)
		return -1;
	memcpy(out, v + 1, n);
	out[n] = '\0';
	if (n > 0 && !addr_is_safe(out))
		return -1;
	*rest = end[1] == ' ' ? end + 2 : end + 1;
	return 0;
}

static int
parse_rcpt(struct queue_entry *e, const char *v, struct error *err)
{
	char addr[ADDR_MAX];
	const char *rest;
	size_t n = strcspn(v, " ");
	int st;

	for (st = 0; st < 4; st++)
		if (strlen(rcpt_state_names[st]) == n &&
		    strncmp(v, rcpt_state_names[st], n) == 0)
			break;
	if (st == 4 || v[n] != ' ' || parse_angle(v + n + 1, addr,
	    sizeof(addr), &rest) == -1 || addr[0] == '\0')
		return error_set(err, ST_DATA, "bad rcpt line");
	if (queue_entry_add_rcpt(e, addr, st == 3 ? RS_FAILED :
	    (enum rcpt_state)st, err) != ST_OK)
		return err->status;
	e->rcpt[e->nrcpt - 1].notify = st == 3;
	if (queue_rcpt_set_reply(&e->rcpt[e->nrcpt - 1], rest) == -1)
		return error_set(err, ST_OSERR, "out of memory");
	return ST_OK;
}

/* "HOST PORT": printable, no blanks, neither empty, each of them fits. */
static int
parse_route(struct route *rt, const char *v)
{
	size_t n = strcspn(v, " "), i;

	for (i = 0; v[i] != '\0'; i++)
		if ((unsigned char)v[i] < ' ' || (unsigned char)v[i] >= 0x7f)
			return -1;
	if (n == 0 || n >= sizeof(rt->host) || v[n] != ' ' ||
	    strchr(v + n + 1, ' ') != NULL)
		return -1;
	memcpy(rt->host, v, n);
	rt->host[n] = '\0';
	if (strlcpy(rt->port, v + n + 1, sizeof(rt->port)) >=
	    sizeof(rt->port) || rt->port[0] == '\0')
		return -1;
	return 0;
}

static int
parse_hub(struct queue_entry *e, const char *v)
{
	size_t n = strcspn(v, " ");

	if (strcmp(v, "default") == 0) {
		e->route.host[0] = e->route.port[0] = '\0';
		e->hub_default = 1;
		return 0;
	}
	if (n == 0 || n >= sizeof(e->route.host) || v[n] != ' ')
		return -1;
	memcpy(e->route.host, v, n);
	e->route.host[n] = '\0';
	if (strlcpy(e->route.port, v + n + 1, sizeof(e->route.port)) >=
	    sizeof(e->route.port) || e->route.port[0] == '\0')
		return -1;
	return 0;
}

/* dsn-notify, dsn-ret, dsn-envid: checked as strictly as on the way in. */
static int
parse_dsn(struct queue_entry *e, const char *which, const char *v,
    struct error *err)
{
	char *dst;
	size_t len, i;

	if (strcmp(which, "notify") == 0) {
		dst = e->dsn.notify;
		len = sizeof(e->dsn.notify);
	} else if (strcmp(which, "ret") == 0) {
		dst = e->dsn.ret;
		len = sizeof(e->dsn.ret);
	} else if (strcmp(which, "envid") == 0) {
		dst = e->dsn.envid;
		len = sizeof(e->dsn.envid);
	} else
		return error_set(err, ST_DATA, "unknown key dsn-%s", which);
	for (i = 0; v[i] != '\0'; i++)
		if (v[i] <= ' ' || v[i] >= 0x7f || v[i] == '=')
			return error_set(err, ST_DATA, "bad dsn-%s", which);
	if (i == 0 || strlcpy(dst, v, len) >= len)
		return error_set(err, ST_DATA, "bad dsn-%s", which);
	return ST_OK;
}

/* One "key value" line; unknown keys are errors (the file is ours). */
static int
parse_line(struct queue_entry *e, const char *key, const char *v,
    struct error *err)
{
	long long num;
	const char *rest;

	if (strcmp(key, "postino-queue") == 0)
		return strcmp(v, "1") == 0 ? ST_OK :
		    error_set(err, ST_DATA, "unknown queue format %s", v);
	if (strcmp(key, "id") == 0)
		return queue_valid_qid(v) && strlcpy(e->qid, v,
		    sizeof(e->qid)) < sizeof(e->qid) ? ST_OK :
		    error_set(err, ST_DATA, "bad id");
	if (strcmp(key, "rcpt") == 0)
		return parse_rcpt(e, v, err);
	if (strcmp(key, "error") == 0) {
		(void)strlcpy(e->last_error, v, sizeof(e->last_error));
		return ST_OK;
	}
	if (strcmp(key, "hub") == 0)
		return parse_hub(e, v) == 0 ? ST_OK :
		    error_set(err, ST_DATA, "bad hub line");
	if (strcmp(key, "dup-hub") == 0)
		return e->dup_hub.host[0] == '\0' &&
		    parse_route(&e->dup_hub, v) == 0 ? ST_OK :
		    error_set(err, ST_DATA, "bad dup-hub line");
	if (strcmp(key, "sender") == 0)
		return parse_angle(v, e->sender, sizeof(e->sender), &rest) == 0
		    && *rest == '\0' ? ST_OK :
		    error_set(err, ST_DATA, "bad sender line");
	if (strncmp(key, "dsn-", 4) == 0)
		return parse_dsn(e, key + 4, v, err);
	if (strcmp(key, "body") == 0) {
		if (strcmp(v, "8bit") != 0 && strcmp(v, "7bit") != 0)
			return error_set(err, ST_DATA, "bad body line");
		e->body_8bit = v[0] == '8';
		return ST_OK;
	}
	if (parse_number(v, (long long)1 << 53, &num) == -1)
		return error_set(err, ST_DATA, "bad value for %s", key);
	if (strcmp(key, "queued") == 0)
		e->queued = (time_t)num;
	else if (strcmp(key, "next-retry") == 0)
		e->next_retry = (time_t)num;
	else if (strcmp(key, "attempts") == 0 && num <= 1000000)
		e->attempts = (unsigned int)num;
	else if (strcmp(key, "uid") == 0 && num <= UINT32_MAX)
		e->uid = (uid_t)num;
	else if (strcmp(key, "size") == 0)
		e->size = (off_t)num;
	else if (strcmp(key, "hold") == 0 && num <= 1)
		e->hold = (int)num;
	else if (strcmp(key, "possible-duplicate") == 0 && num <= 1)
		e->possible_dup = (int)num;
	else
		return error_set(err, ST_DATA, "unknown key %s", key);
	return ST_OK;
}

int
queue_parse(const char *buf, size_t len, struct queue_entry *e,
    struct error *err)
{
	char line[REPLY_TEXT_MAX + ADDR_MAX + 64];
	size_t pos = 0, lineno = 0;

	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - (buf + pos)) : len - pos;
		char *sp;

		lineno++;
		if (n >= sizeof(line) || memchr(buf + pos, '\0', n) != NULL)
			return error_set(err, ST_DATA,
			    "control file line %zu: too long or NUL", lineno);
		memcpy(line, buf + pos, n);
		line[n] = '\0';
		pos += n + 1;
		if ((sp = strchr(line, ' ')) == NULL)
			return error_set(err, ST_DATA,
			    "control file line %zu: no value", lineno);
		*sp = '\0';
		if (parse_line(e, line, sp + 1, err) != ST_OK) {
			error_prefix(err, "control file line %zu", lineno);
			return err->status;
		}
	}
	if (!queue_valid_qid(e->qid) || e->nrcpt == 0 ||
	    (e->route.host[0] == '\0' && !e->hub_default))
		return error_set(err, ST_DATA,
		    "control file incomplete (id, hub or recipients missing)");
	if (e->dup_hub.host[0] != '\0' && !e->possible_dup)
		return error_set(err, ST_DATA,
		    "dup-hub without possible-duplicate 1");
	return ST_OK;
}

/* ------------------------------------------------------------ writing */

/*
 * Give tmp the name final, never replacing what is there (EEXIST). Where
 * the filesystem has no RENAME_NOREPLACE, link and unlink do the same.
 */
static int
rename_noreplace(const char *tmp, const char *final)
{
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (link(tmp, final) == -1)
		return -1;
	(void)unlink(tmp);
	return 0;
}

/*
 * Write e's control text to area/.tmp.QID, fsync, rename to area/QID,
 * fsync the directory. A new entry (fresh) never replaces another one
 * (EEXIST is an error) and is rolled back when the directory cannot be
 * synced: the caller is told it failed, so it must not be delivered
 * later behind the caller's back.
 */
static int
write_control(const char *dir, const char *area, const struct queue_entry *e,
    int fresh, struct error *err)
{
	char tmp[PATH_MAX], final[PATH_MAX], name[QID_MAX + 8];
	size_t len;
	char *text;
	int fd, saved;

	(void)snprintf(name, sizeof(name), ".tmp.%s", e->qid);
	if (path_join(tmp, sizeof(tmp), dir, area, name, err) != ST_OK ||
	    path_join(final, sizeof(final), dir, area, e->qid, err) != ST_OK)
		return err->status;
	if ((text = queue_format(e, &len)) == NULL)
		return error_set(err, ST_OSERR, "out of memory");
	if (len > QUEUE_CTL_MAX) {
		free(text);
		return error_set(err, ST_CANTCREAT, "%s: the control file "
		    "would be %zu bytes, over the queue's limit of %d",
		    e->qid, len, QUEUE_CTL_MAX);
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0660);
	if (fd == -1 || flock(fd, LOCK_EX) == -1 ||
	    queue_write_all(fd, text, len) == -1 || fsync(fd) == -1) {
		saved = errno;
		free(text);
		if (fd != -1) {
			(void)unlink(tmp);
			(void)close(fd);
		}
		return error_set(err, ST_CANTCREAT, "cannot write %s: %s",
		    tmp, strerror(saved));
	}
	free(text);
	if ((fresh ? rename_noreplace(tmp, final) : rename(tmp, final)) ==
	    -1) {
		saved = errno;
		(void)unlink(tmp);
		(void)close(fd);
		return error_set(err, ST_CANTCREAT, "cannot commit %s: %s",
		    final, strerror(saved));
	}
	if (fsync_dir(dir, area) == -1) {
		saved = errno;
		if (fresh)
			(void)unlink(final);
		(void)close(fd);
		return error_set(err, ST_CANTCREAT, "cannot commit %s: %s",
		    final, strerror(saved));
	}
	(void)close(fd);
	return ST_OK;
}

/* Copy everything of from (from offset 0) to to, then fsync to. */
static int
copy_fd(int from, int to)
{
	char buf[65536];
	off_t off = 0;

	for (;;) {
		ssize_t n = pread(from, buf, sizeof(buf), off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		if (queue_write_all(to, buf, (size_t)n) == -1)
			return -1;
		off += n;
	}
	return fsync(to);
}

/*
 * When linkat cannot name the spool (no /proc, no O_TMPFILE): copy it to
 * data/.tmp.QID, lock the copy before it gets its final name, and put
 * the locked copy in place of the caller's descriptor, so that the lock
 * is held from before data/QID exists until the caller lets the message
 * go, exactly as on the linkat path.
 */
static int
copy_data(int spool_fd, const char *tmp, const char *final)
{
	int fd, saved;

	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0660);
	if (fd == -1)
		return -1;
	if (flock(fd, LOCK_EX) == -1 || copy_fd(spool_fd, fd) == -1 ||
	    rename_noreplace(tmp, final) == -1)
		goto fail;
	if (dup3(fd, spool_fd, O_CLOEXEC) == -1) {
		saved = errno;
		(void)unlink(final);
		errno = saved;
		goto fail;
	}
	(void)close(fd);
	return 0;
fail:
	saved = errno;
	(void)unlink(tmp);
	(void)close(fd);
	errno = saved;
	return -1;
}

/* Give the unnamed spool file its name data/QID, locked all along. */
static int
link_data(const char *dir, const char *qid, int spool_fd, struct error *err)
{
	char final[PATH_MAX], tmp[PATH_MAX], name[QID_MAX + 8], proc[64];
	int saved;

	(void)snprintf(name, sizeof(name), ".tmp.%s", qid);
	(void)snprintf(proc, sizeof(proc), "/proc/self/fd/%d", spool_fd);
	if (path_join(final, sizeof(final), dir, "data", qid, err) != ST_OK ||
	    path_join(tmp, sizeof(tmp), dir, "data", name, err) != ST_OK)
		return err->status;
	/* The mtime is the commit time: the sweep's age rule reads it. */
	if (futimens(spool_fd, NULL) == -1 || fsync(spool_fd) == -1)
		return error_set(err, ST_CANTCREAT, "cannot sync the spool "
		    "file: %s", strerror(errno));
	if (linkat(AT_FDCWD, proc, AT_FDCWD, final, AT_SYMLINK_FOLLOW) == -1) {
		/* Never over another entry's data, and never a second try. */
		if (errno == EEXIST || copy_data(spool_fd, tmp, final) == -1) {
			saved = errno;
			return error_set(err, ST_CANTCREAT, "cannot commit "
			    "%s: %s", final, strerror(saved));
		}
	}
	if (fsync_dir(dir, "data") == -1) {
		saved = errno;
		(void)unlink(final);
		return error_set(err, ST_CANTCREAT, "cannot sync %s/data: %s",
		    dir, strerror(saved));
	}
	return ST_OK;
}

static int
commit_entry(const char *dir, const struct queue_entry *e, int spool_fd,
    int failed, struct error *err)
{
	char data[PATH_MAX];

	if (!queue_valid_qid(e->qid))
		return error_set(err, ST_SOFTWARE, "invalid queue id");
	if (queue_prepare(dir, err) != ST_OK)
		return err->status;
	/* Hold the lock from before the name exists until the caller lets
	 * the message go, so that a sweep never takes it for an orphan. */
	if (flock(spool_fd, LOCK_EX) == -1)
		return error_set(err, ST_CANTCREAT, "cannot lock the spool "
		    "file: %s", strerror(errno));
	if (link_data(dir, e->qid, spool_fd, err) != ST_OK)
		return err->status;
	if (write_control(dir, failed ? "failed" : "queue", e, 1, err) !=
	    ST_OK) {
		if (path_join(data, sizeof(data), dir, "data", e->qid,
		    NULL) == ST_OK)
			(void)unlink(data);
		return err->status;
	}
	if (!failed && !e->hold)
		due_lower(dir, e->uid, e->next_retry);
	return ST_OK;
}

int
queue_commit(const char *dir, const struct queue_entry *e, int spool_fd,
    int failed, struct error *err)
{
	int rc;

	if (priv_group_enter(err) != ST_OK)
		return err->status;
	rc = commit_entry(dir, e, spool_fd, failed, err);
	priv_group_leave();
	return rc;
}

int
queue_update(const char *dir, const struct queue_entry *e, struct error *err)
{
	int rc;

	if (priv_group_enter(err) != ST_OK)
		return err->status;
	rc = write_control(dir, "queue", e, 0, err);
	if (rc == ST_OK && !e->hold)
		due_lower(dir, e->uid, e->next_retry);
	priv_group_leave();
	return rc;
}

/* ---------------------------------------------------------- due index */

/*
 * QueueDir/due, text:
 *
 *   postino-due 1
 *   gen 42
 *   uid 33 1763775354
 *   end
 *
 * Each uid line is a lower bound of the next-retry times of that uid's
 * entries in queue/ (held ones left out). Writers of entries (commit,
 * update) only ever lower a line, and bump gen; a reader that read every
 * entry stores the exact figures, unless gen moved since it started
 * (then it only lowers, merging). So the file may say "due" too early,
 * never too late. No file, or one without its "end" line (a crash in a
 * rewrite), is unknown: runner_has_due then reads the entries once, as
 * before there was an index, and stores what it found.
 */
#define DUE_FILE_MAX	(256 * 1024)
#define DUE_UIDS_MAX	4096

void
queue_due_init(struct queue_due *d)
{
	memset(d, 0, sizeof(*d));
}

void
queue_due_free(struct queue_due *d)
{
	free(d->v);
	queue_due_init(d);
}

/* uid's entries are due at t or later: lower its line to t. */
int
queue_due_note(struct queue_due *d, uid_t uid, time_t t)
{
	struct queue_due_uid *v;
	size_t i;

	for (i = 0; i < d->n; i++)
		if (d->v[i].uid == uid) {
			if (t < d->v[i].due)
				d->v[i].due = t;
			return 0;
		}
	if (d->n >= DUE_UIDS_MAX)
		return -1;
	if (d->n == d->cap) {
		v = reallocarray(d->v, d->cap + 16, sizeof(*v));
		if (v == NULL)
			return -1;
		d->v = v;
		d->cap += 16;
	}
	d->v[d->n].uid = uid;
	d->v[d->n++].due = t;
	return 0;
}

/*
 * The file's text into d. d->valid: its lines can be lowered (a file
 * being rebuilt has no "end" yet: writers still lower it); d->known:
 * whole, "end" included, so that readers may trust it.
 */
static void
due_parse(char *buf, struct queue_due *d)
{
	char *line, *next, *sp;
	long long uid = 0, t = 0;
	int ok = 1, header = 0;

	d->known = d->valid = 0;
	d->n = 0;
	for (line = buf; line != NULL && *line != '\0' && ok; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (!header)
			ok = header = strcmp(line, "postino-due 1") == 0;
		else if (strncmp(line, "gen ", 4) == 0) {
			ok = parse_number(line + 4, LLONG_MAX, &t) == 0;
			d->gen = (unsigned long long)t;
		} else if (strncmp(line, "uid ", 4) == 0)
			ok = parse_number(line + 4, UINT32_MAX - 1, &uid) ==
			    0 && (sp = strchr(line + 4, ' ')) != NULL &&
			    parse_number(sp + 1, LLONG_MAX, &t) == 0 &&
			    queue_due_note(d, (uid_t)uid, (time_t)t) == 0;
		else if (strcmp(line, "end") == 0) {
			d->known = d->valid = 1;
			return;
		} else
			ok = 0;
	}
	d->valid = ok && header;
}

/* Read the open due file from offset 0 (under its lock). */
static int
due_read_fd(int fd, struct queue_due *d)
{
	struct stat st;
	char *buf;
	ssize_t n;

	d->known = d->valid = 0;
	d->n = 0;
	if (fstat(fd, &st) == -1 || st.st_size > DUE_FILE_MAX)
		return -1;
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		return -1;
	n = pread(fd, buf, (size_t)st.st_size, 0);
	if (n >= 0) {
		buf[n] = '\0';
		due_parse(buf, d);
	}
	free(buf);
	return n < 0 ? -1 : 0;
}

static int
due_write_fd(int fd, const struct queue_due *d)
{
	char *buf = NULL;
	size_t len = 0, cap = 0, i;
	int rc = 0;

	if (append(&buf, &len, &cap, "postino-due 1\ngen %llu\n",
	    d->gen) == -1)
		return -1;
	for (i = 0; i < d->n && rc == 0; i++)
		rc = append(&buf, &len, &cap, "uid %lu %lld\n",
		    (unsigned long)d->v[i].uid, (long long)d->v[i].due);
	if (rc == 0 && d->known)
		rc = append(&buf, &len, &cap, "end\n");
	if (rc == 0 && (ftruncate(fd, 0) == -1 ||
	    pwrite(fd, buf, len, 0) != (ssize_t)len))
		rc = -1;
	free(buf);
	return rc;
}

/*
 * An entry of uid is due at t: lower the index (never create it: a new
 * file holding one line would hide the entries nobody has counted).
 * Called by the writers, inside the group.
 */
static void
due_lower(const char *dir, uid_t uid, time_t t)
{
	struct queue_due d;
	char path[PATH_MAX];
	size_t i;
	int fd;

	if (snprintf(path, sizeof(path), "%s/due", dir) >= (int)sizeof(path))
		return;
	if ((fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return;
	queue_due_init(&d);
	if (flock(fd, LOCK_EX) == 0 && due_read_fd(fd, &d) == 0 && d.valid) {
		for (i = 0; i < d.n && d.v[i].uid != uid; i++)
			;
		if (i == d.n || t < d.v[i].due) {
			d.gen++;
			/* Failing that, no "end": unknown, never wrong. */
			if ((queue_due_note(&d, uid, t) == -1 ||
			    due_write_fd(fd, &d) == -1) &&
			    ftruncate(fd, 0) == -1)
				(void)unlink(path);
		}
	}
	queue_due_free(&d);
	(void)close(fd);
}

int
queue_due_read(const char *dir, struct queue_due *d)
{
	int fd = open_in_queue(dir, "due", O_RDONLY);

	d->known = 0;
	d->n = 0;
	if (fd == -1)
		return -1;
	if (flock(fd, LOCK_SH) == -1 || due_read_fd(fd, d) == -1)
		d->known = 0;
	(void)close(fd);
	return d->known ? 0 : -1;
}

/* Keep, from cur, the lines that computed does not have or has later. */
static int
due_merge(struct queue_due *computed, const struct queue_due *cur)
{
	size_t i;

	for (i = 0; i < cur->n; i++)
		if (queue_due_note(computed, cur->v[i].uid, cur->v[i].due) ==
		    -1)
			return -1;
	return 0;
}

int
queue_due_begin(const char *dir, unsigned long long *gen)
{
	struct queue_due cur;
	int fd, rc = -1;

	if ((fd = open_in_queue(dir, "due", O_RDWR | O_CREAT)) == -1)
		return -1;
	queue_due_init(&cur);
	if (flock(fd, LOCK_EX) == 0 && due_read_fd(fd, &cur) == 0) {
		/* Writers lower what is there; readers still see unknown.
		 * Lines a valid file has are kept: lower bounds still. */
		cur.gen++;
		if (!cur.valid)
			cur.n = 0;
		cur.known = 0;
		*gen = cur.gen;
		rc = due_write_fd(fd, &cur);
	}
	queue_due_free(&cur);
	(void)close(fd);
	return rc;
}

int
queue_due_store(const char *dir, struct queue_due *computed,
    unsigned long long gen_seen, int exact)
{
	struct queue_due cur;
	int fd, rc = -1;

	if ((fd = open_in_queue(dir, "due", O_RDWR | O_CREAT)) == -1)
		return -1;
	queue_due_init(&cur);
	if (flock(fd, LOCK_EX) == 0 && due_read_fd(fd, &cur) == 0) {
		/* Lowered since the reader began: those lines may be for
		 * entries it did not see. Not exact: only lower. */
		if (exact && cur.valid && cur.gen == gen_seen)
			rc = 0;
		else if (cur.known || (exact && cur.valid))
			rc = due_merge(computed, &cur);
		computed->gen = cur.gen + 1;
		computed->known = 1;
		if (rc == 0)
			rc = due_write_fd(fd, computed);
	}
	queue_due_free(&cur);
	(void)close(fd);
	return rc;
}

/* ------------------------------------------------------------ reading */

/*
 * The group every queue file must have: the queue directory's (it is
 * set-group-ID, so files made in it by any user get its group).
 */
static gid_t
queue_group(const char *dir)
{
	struct stat st;

	return stat(dir, &st) == 0 ? st.st_gid : (gid_t)-1;
}

/*
 * Entries are untrusted input: a regular file, one link, no symlink,
 * and the queue's group (another group means someone else put it there).
 */
static int
open_checked(const char *dir, const char *path, int flags,
    struct stat *st)
{
	int fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC);
	gid_t group;

	if (fd == -1)
		return -1;
	group = queue_group(dir);
	if (fstat(fd, st) == -1) {
		(void)close(fd);
		return -1;
	}
	/* Unlinked since it was opened: gone, as if the open had failed. */
	if (st->st_nlink == 0) {
		(void)close(fd);
		errno = ENOENT;
		return -1;
	}
	if (!S_ISREG(st->st_mode) || st->st_nlink != 1 ||
	    (group != (gid_t)-1 && st->st_gid != group && st->st_uid != 0)) {
		(void)close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

static int
read_control(const char *dir, const char *path, struct queue_entry *e,
    struct error *err)
{
	struct stat st;
	char *buf;
	ssize_t n;
	int fd;

	if ((fd = open_checked(dir, path, O_RDONLY, &st)) == -1)
		return error_set(err, errno == ENOENT ? ST_PERM : ST_DATA,
		    "%s: %s", path, errno == ENOENT ? "gone" :
		    strerror(errno));
	if (st.st_size > QUEUE_CTL_MAX) {
		(void)close(fd);
		return error_set(err, ST_DATA, "%s: %lld bytes, over the "
		    "queue's limit of %d", path, (long long)st.st_size,
		    QUEUE_CTL_MAX);
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		(void)close(fd);
		return error_set(err, ST_OSERR, "out of memory");
	}
	n = pread(fd, buf, (size_t)st.st_size, 0);
	(void)close(fd);
	if (n != st.st_size) {
		free(buf);
		return error_set(err, ST_DATA, "%s: short read", path);
	}
	if (queue_parse(buf, (size_t)n, e, err) != ST_OK) {
		free(buf);
		error_prefix(err, "%s", path);
		return err->status;
	}
	free(buf);
	return ST_OK;
}

/* Does area/QID exist (a control file)? */
static int
control_in(const char *dir, const char *area, const char *qid)
{
	char path[PATH_MAX];

	return path_join(path, sizeof(path), dir, area, qid, NULL) ==
	    ST_OK && faccessat(AT_FDCWD, path, F_OK, AT_EACCESS) == 0;
}

static int
control_exists(const char *dir, const char *qid)
{
	return control_in(dir, "queue", qid) || control_in(dir, "failed", qid);
}

/*
 * queue/QID is there and data/QID is not: the message is lost (a commit
 * of an older version, a hand-made removal). Never skipped in silence:
 * the control file goes to failed/ with the reason, where mailq lists it
 * until someone deletes it, and the caller logs the ST_DATA it gets.
 */
static int
data_missing(const char *dir, const char *qid, struct error *err)
{
	char ctl[PATH_MAX], failed[PATH_MAX];
	struct queue_entry e;
	struct error rerr;

	if (path_join(ctl, sizeof(ctl), dir, "queue", qid, err) != ST_OK ||
	    path_join(failed, sizeof(failed), dir, "failed", qid, err) !=
	    ST_OK)
		return err->status;
	queue_entry_init(&e);
	error_clear(&rerr);
	if (read_control(dir, ctl, &e, &rerr) == ST_OK) {
		(void)strlcpy(e.last_error, "the data file is missing: the "
		    "message is lost", sizeof(e.last_error));
		if (write_control(dir, "failed", &e, 0, &rerr) == ST_OK)
			(void)unlink(ctl);
	} else if (rerr.status != ST_PERM)
		(void)rename_noreplace(ctl, failed);
	queue_entry_free(&e);
	(void)fsync_dir(dir, "queue");
	if (control_in(dir, "queue", qid))
		return error_set(err, ST_DATA, "%s: the data file is missing "
		    "(the message is lost); cannot move the entry to failed/",
		    qid);
	return error_set(err, ST_DATA, "%s: the data file is missing (the "
	    "message is lost); entry moved to failed/", qid);
}

/* data/.lock.QID */
static int
lock_record_path(char *buf, size_t len, const char *dir, const char *qid)
{
	char name[QID_MAX + 8];

	(void)snprintf(name, sizeof(name), ".lock.%s", qid);
	return path_join(buf, len, dir, "data", name, NULL);
}

/* Who locked it and since when: advisory, so no fsync, errors ignored. */
static void
lock_record_write(const char *dir, const char *qid)
{
	char path[PATH_MAX], line[64];
	int fd, n;

	if (lock_record_path(path, sizeof(path), dir, qid) != ST_OK)
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0660);
	if (fd == -1)
		return;
	n = snprintf(line, sizeof(line), "%ld %lld\n", (long)getpid(),
	    (long long)time(NULL));
	(void)queue_write_all(fd, line, (size_t)n);
	(void)close(fd);
}

static void
lock_record_remove(const char *dir, const char *qid)
{
	char path[PATH_MAX];

	if (lock_record_path(path, sizeof(path), dir, qid) == ST_OK)
		(void)unlink(path);
}

/* What the holder is doing: /proc/PID/stat's state, else kill(pid, 0). */
static void
holder_state(pid_t pid, char *buf, size_t len)
{
	char path[64], stat[512], *paren;
	ssize_t n;
	int fd;

	(void)snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		n = read(fd, stat, sizeof(stat) - 1);
		(void)close(fd);
		stat[n > 0 ? n : 0] = '\0';
		/* "pid (comm) S ...": the comm may hold spaces and parens. */
		if ((paren = strrchr(stat, ')')) != NULL && paren[1] == ' ') {
			(void)strlcpy(buf, paren[2] == 'T' || paren[2] == 't' ?
			    "stopped" : paren[2] == 'Z' ? "gone" : "running",
			    len);
			return;
		}
	}
	(void)strlcpy(buf, kill(pid, 0) == -1 && errno == ESRCH ? "gone" :
	    "unknown", len);
}

/* Fill e's lock_* from the record of a locked entry. */
static void
lock_record_read(const char *dir, const char *qid, struct queue_entry *e)
{
	char path[PATH_MAX], line[64], *sp;
	const char *bad_pid, *bad_since;
	long long pid, since;
	ssize_t n;
	int fd;

	e->lock_pid = 0;
	e->lock_since = 0;
	(void)strlcpy(e->lock_state, "unknown", sizeof(e->lock_state));
	if (lock_record_path(path, sizeof(path), dir, qid) != ST_OK ||
	    (fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return;
	n = read(fd, line, sizeof(line) - 1);
	(void)close(fd);
	line[n > 0 ? n : 0] = '\0';
	if ((sp = strchr(line, ' ')) == NULL)
		return;
	*sp++ = '\0';
	sp[strcspn(sp, "\n")] = '\0';
	pid = strtonum(line, 1, INT_MAX, &bad_pid);
	since = strtonum(sp, 0, LLONG_MAX, &bad_since);
	if (bad_pid != NULL || bad_since != NULL)
		return;
	e->lock_pid = (pid_t)pid;
	e->lock_since = (time_t)since;
	holder_state(e->lock_pid, e->lock_state, sizeof(e->lock_state));
}

static int
lock_entry(const char *dir, const char *qid, struct queue_entry *e,
    struct error *err)
{
	char data[PATH_MAX], ctl[PATH_MAX];
	struct stat st;

	if (!queue_valid_qid(qid))
		return error_set(err, ST_DATA, "invalid queue id '%s'", qid);
	if (path_join(data, sizeof(data), dir, "data", qid, err) != ST_OK ||
	    path_join(ctl, sizeof(ctl), dir, "queue", qid, err) != ST_OK)
		return err->status;
	if ((e->data_fd = open_checked(dir, data, O_RDONLY, &st)) == -1) {
		if (errno == ENOENT && control_in(dir, "queue", qid))
			return data_missing(dir, qid, err);
		return error_set(err, errno == ENOENT ? ST_PERM : ST_DATA,
		    "%s: %s", data, errno == ENOENT ? "gone" :
		    strerror(errno));
	}
	if (flock(e->data_fd, LOCK_EX | LOCK_NB) == -1) {
		queue_entry_free(e);
		lock_record_read(dir, qid, e);
		if (e->lock_pid == 0)
			return error_set(err, ST_TEMP, "%s: busy", qid);
		return error_set(err, ST_TEMP, "%s: busy (locked by pid %ld "
		    "since %lld, %s)", qid, (long)e->lock_pid,
		    (long long)e->lock_since, e->lock_state);
	}
	/* Another runner may have finished it while we waited. */
	if (fstat(e->data_fd, &st) == -1 || st.st_nlink == 0) {
		queue_entry_free(e);
		return error_set(err, ST_PERM, "%s: gone", qid);
	}
	if (read_control(dir, ctl, e, err) != ST_OK) {
		queue_entry_free(e);
		return err->status;
	}
	if (strcmp(e->qid, qid) != 0) {
		queue_entry_free(e);
		return error_set(err, ST_DATA, "%s: id mismatch", ctl);
	}
	lock_record_write(dir, qid);
	return ST_OK;
}

int
queue_lock_entry(const char *dir, const char *qid, struct queue_entry *e,
    struct error *err)
{
	int rc;

	if (priv_group_enter(err) != ST_OK)
		return err->status;
	rc = lock_entry(dir, qid, e, err);
	priv_group_leave();
	return rc;
}

static int
peek_entry(const char *dir, const char *area, const char *qid,
    struct queue_entry *e, int *busy, struct error *err)
{
	char data[PATH_MAX], ctl[PATH_MAX];
	struct stat st;
	int fd;

	*busy = 0;
	if (!queue_valid_qid(qid))
		return error_set(err, ST_DATA, "invalid queue id '%s'", qid);
	if (path_join(data, sizeof(data), dir, "data", qid, err) != ST_OK ||
	    path_join(ctl, sizeof(ctl), dir, area, qid, err) != ST_OK)
		return err->status;
	if ((fd = open_checked(dir, data, O_RDONLY, &st)) != -1) {
		if (flock(fd, LOCK_SH | LOCK_NB) == -1)
			*busy = 1;
		(void)close(fd);
	}
	if (*busy)
		lock_record_read(dir, qid, e);
	if (read_control(dir, ctl, e, err) != ST_OK)
		return err->status;
	/* Checked after the control file, which is written second and
	 * removed first: without both, the entry was removed meanwhile. */
	e->data_missing = fd == -1 && faccessat(AT_FDCWD, data, F_OK,
	    AT_EACCESS) == -1 && errno == ENOENT;
	if (e->data_missing && !control_in(dir, area, qid))
		return error_set(err, ST_PERM, "%s: gone", ctl);
	return ST_OK;
}

int
queue_peek_entry(const char *dir, const char *area, const char *qid,
    struct queue_entry *e, int *busy, struct error *err)
{
	int rc;

	*busy = 0;
	if (priv_group_enter(err) != ST_OK)
		return err->status;
	rc = peek_entry(dir, area, qid, e, busy, err);
	priv_group_leave();
	return rc;
}

static int
remove_entry(const char *dir, struct queue_entry *e, int sync,
    struct error *err)
{
	char data[PATH_MAX], ctl[PATH_MAX];

	if (path_join(data, sizeof(data), dir, "data", e->qid, err) != ST_OK ||
	    path_join(ctl, sizeof(ctl), dir, "queue", e->qid, err) != ST_OK)
		return err->status;
	if (unlink(ctl) == -1 && errno != ENOENT) {
		int saved = errno;

		/* Keep what was done on record, so the next run does not
		 * send the message again. */
		if (write_control(dir, "queue", e, 0, err) != ST_OK)
			return error_set(err, ST_CANTCREAT, "cannot remove %s "
			    "(%s) nor record its delivery: possible duplicate "
			    "on the next run", ctl, strerror(saved));
		return error_set(err, ST_CANTCREAT, "cannot remove %s: %s "
		    "(its delivery is recorded)", ctl, strerror(saved));
	}
	if (sync)
		(void)fsync_dir(dir, "queue");
	(void)unlink(data);
	lock_record_remove(dir, e->qid);
	return ST_OK;
}

int
queue_remove(const char *dir, struct queue_entry *e, struct error *err)
{
	int rc;

	if (priv_group_enter(err) != ST_OK)
		return err->status;
	rc = remove_entry(dir, e, 1, err);
	priv_group_leave();
	return rc;
}

int
queue_remove_unsynced(const char *dir, struct queue_entry *e,
    struct error *err)
{
	int rc;

	if (priv_group_enter(err) != ST_OK)
		return err->status;
	rc = remove_entry(dir, e, 0, err);
	priv_group_leave();
	return rc;
}

void
queue_sync(const char *dir)
{
	struct error err;

	if (priv_group_enter(&err) != ST_OK)
		return;
	(void)fsync_dir(dir, "queue");
	priv_group_leave();
}

static int
unlink_entry(const char *dir, const char *area, const char *qid,
    struct error *err)
{
	char data[PATH_MAX], ctl[PATH_MAX];

	if (!queue_valid_qid(qid))
		return error_set(err, ST_USAGE, "invalid queue id '%s'", qid);
	if (path_join(data, sizeof(data), dir, "data", qid, err) != ST_OK ||
	    path_join(ctl, sizeof(ctl), dir, area, qid, err) != ST_OK)
		return err->status;
	if (unlink(ctl) == -1)
		return error_set(err, errno == ENOENT ? ST_USAGE : ST_CANTCREAT,
		    "cannot remove %s: %s", ctl, strerror(errno));
	(void)unlink(data);
	lock_record_remove(dir, qid);
	(void)fsync_dir(dir, area);
	return ST_OK;
}

int
queue_unlink(const char *dir, const char *area, const char *qid,
    struct error *err)
{
	int rc;

	if (priv_group_enter(err) != ST_OK)
		return err->status;
	rc = unlink_entry(dir, area, qid, err);
	priv_group_leave();
	return rc;
}

/*
 * Root's way out for an entry nobody can read (damaged, over the size
 * limit): under its lock when the data file is there, the control file
 * (queue/ or failed/) and the data go, without parsing anything.
 */
static int
force_remove(const char *dir, const char *qid, struct error *err)
{
	char data[PATH_MAX];
	int fd, rc;

	if (!queue_valid_qid(qid))
		return error_set(err, ST_USAGE, "invalid queue id '%s'", qid);
	if (path_join(data, sizeof(data), dir, "data", qid, err) != ST_OK)
		return err->status;
	fd = open(data, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd != -1 && flock(fd, LOCK_EX | LOCK_NB) == -1) {
		(void)close(fd);
		return error_set(err, ST_TEMP, "%s: busy (being delivered)",
		    qid);
	}
	rc = unlink_entry(dir, control_in(dir, "queue", qid) ? "queue" :
	    "failed", qid, err);
	if (fd != -1)
		(void)close(fd);
	return rc;
}

int
queue_force_remove(const char *dir, const char *qid, struct error *err)
{
	int rc;

	if (priv_group_enter(err) != ST_OK)
		return err->status;
	rc = force_remove(dir, qid, err);
	priv_group_leave();
	return rc;
}

static int
move_failed(const char *dir, struct queue_entry *e, struct error *err)
{
	char ctl[PATH_MAX];

	if (write_control(dir, "failed", e, 0, err) != ST_OK ||
	    path_join(ctl, sizeof(ctl), dir, "queue", e->qid, err) != ST_OK)
		return err->status;
	(void)unlink(ctl);
	(void)fsync_dir(dir, "queue");
	lock_record_remove(dir, e->qid);
	return ST_OK;
}

int
queue_move_failed(const char *dir, struct queue_entry *e, struct error *err)
{
	int rc;

	if (priv_group_enter(err) != ST_OK)
		return err->status;
	rc = move_failed(dir, e, err);
	priv_group_leave();
	return rc;
}

static int
compare_ids(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int
list_ids(DIR *d, char (**ids)[QID_MAX], size_t *n, struct error *err)
{
	char (*v)[QID_MAX] = NULL;
	size_t cap = 0;
	struct dirent *de;

	while ((de = readdir(d)) != NULL) {
		if (!queue_valid_qid(de->d_name))
			continue;
		if (*n == cap) {
			void *nv = reallocarray(v, cap ? cap * 2 : 64,
			    sizeof(*v));

			if (nv == NULL) {
				free(v);
				*n = 0;
				return error_set(err, ST_OSERR,
				    "out of memory");
			}
			v = nv;
			cap = cap ? cap * 2 : 64;
		}
		(void)strlcpy(v[(*n)++], de->d_name, QID_MAX);
	}
	if (*n > 0)
		qsort(v, *n, sizeof(*v), compare_ids);
	*ids = v;
	return ST_OK;
}

int
queue_list_ids(const char *dir, const char *area, char (**ids)[QID_MAX],
    size_t *n, struct error *err)
{
	char path[PATH_MAX];
	DIR *d;
	int rc;

	*ids = NULL;
	*n = 0;
	if (snprintf(path, sizeof(path), "%s/%s", dir, area) >=
	    (int)sizeof(path))
		return error_set(err, ST_CONFIG, "queue path too long");
	if (priv_group_enter(err) != ST_OK)
		return err->status;
	d = opendir(path);
	priv_group_leave();
	if (d == NULL)
		return errno == ENOENT ? ST_OK : error_set(err, ST_CANTCREAT,
		    "cannot read %s: %s", path, strerror(errno));
	rc = list_ids(d, ids, n, err);
	(void)closedir(d);
	return rc;
}

/* ----------------------------------------------------------- sweeping */

/*
 * Unlink path if it is a regular file at least min_age old (by its
 * mtime) that nobody holds locked; for a data file (qid set), only if,
 * checked again under the lock, no control file exists and the name is
 * still the file that was locked.
 */
static void
remove_if_stale(const char *dir, const char *path, const char *qid,
    time_t now, time_t min_age)
{
	struct stat st, again;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd == -1)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    now - st.st_mtime >= min_age &&
	    flock(fd, LOCK_EX | LOCK_NB) == 0 &&
	    (qid == NULL || (!control_exists(dir, qid) &&
	    lstat(path, &again) == 0 && again.st_ino == st.st_ino &&
	    again.st_dev == st.st_dev)))
		(void)unlink(path);
	(void)close(fd);
}

/*
 * A lock record means something only while its entry's data is locked:
 * one left behind (its unlink failed, the process died) is removed once
 * the data is gone or nobody holds it. The data's lock is taken first,
 * so no delivery can be writing the record meanwhile.
 */
static void
remove_record_if_unheld(const char *dir, const char *qid)
{
	char path[PATH_MAX];
	int fd;

	if (path_join(path, sizeof(path), dir, "data", qid, NULL) != ST_OK)
		return;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		if (errno == ENOENT)
			lock_record_remove(dir, qid);
		return;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		lock_record_remove(dir, qid);
	(void)close(fd);
}

static void
sweep_area(const char *dir, const char *area, time_t now)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;

	if (snprintf(path, sizeof(path), "%s/%s", dir, area) >=
	    (int)sizeof(path) || (d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		int tmp = strncmp(de->d_name, ".tmp.", 5) == 0;

		if (strcmp(area, "data") == 0 &&
		    strncmp(de->d_name, ".lock.", 6) == 0 &&
		    queue_valid_qid(de->d_name + 6)) {
			remove_record_if_unheld(dir, de->d_name + 6);
			continue;
		}
		int orphan = strcmp(area, "data") == 0 &&
		    queue_valid_qid(de->d_name) &&
		    !control_exists(dir, de->d_name);

		if ((tmp || orphan) && path_join(path, sizeof(path), dir,
		    area, de->d_name, NULL) == ST_OK)
			remove_if_stale(dir, path, orphan ? de->d_name : NULL,
			    now, tmp ? STALE_SECONDS : ORPHAN_SECONDS);
	}
	(void)closedir(d);
}

void
queue_sweep(const char *dir)
{
	time_t now = time(NULL);
	struct error err;

	if (priv_group_enter(&err) != ST_OK)
		return;
	sweep_area(dir, "queue", now);
	sweep_area(dir, "failed", now);
	sweep_area(dir, "data", now);
	priv_group_leave();
}

/* ------------------------------------------------ spool and runner lock */

/* An unnamed file in dir (O_TMPFILE; else mkostemp + unlink). */
static int
spool_create(const char *dir, int *fdp)
{
	char path[PATH_MAX];
	int fd = -1, saved;

#ifdef O_TMPFILE
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0660);
	if (fd == -1 && errno != EOPNOTSUPP && errno != EISDIR &&
	    errno != EINVAL)
		return -1;
#endif
	/* cppcheck, blind to system headers, sees no O_TMPFILE above. */
	/* cppcheck-suppress knownConditionTrueFalse */
	if (fd == -1) {
		if ((size_t)snprintf(path, sizeof(path), "%s/.tmp.XXXXXX",
		    dir) >= sizeof(path)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if ((fd = mkostemp(path, O_CLOEXEC)) == -1)
			return -1;
		/* Like O_TMPFILE's 0660: a queue run by another member of
		 * the group must be able to read what this one commits. */
		(void)fchmod(fd, 0660);
		if (unlink(path) == -1) {
			saved = errno;
			(void)close(fd);
			errno = saved;
			return -1;
		}
	}
	*fdp = fd;
	return 0;
}

int
queue_spool_create(const char *dir, int *fdp, struct error *err)
{
	int rc;

	if (priv_group_enter(err) != ST_OK)
		return err->status;
	rc = spool_create(dir, fdp);
	if (rc == -1)
		(void)error_set(err, ST_CANTCREAT, "cannot create spool file "
		    "in %s: %s", dir, strerror(errno));
	priv_group_leave();
	return rc == -1 ? ST_CANTCREAT : ST_OK;
}

/* QueueDir/NAME opened with flags (O_CREAT: mode 0660), or -1. */
static int
open_in_queue(const char *dir, const char *name, int flags)
{
	char path[PATH_MAX];
	struct error err;
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path) || priv_group_enter(&err) != ST_OK)
		return -1;
	fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC, 0660);
	priv_group_leave();
	return fd;
}

int
queue_runner_lock(const char *dir)
{
	int fd = open_in_queue(dir, "runner.lock", O_RDWR | O_CREAT);

	if (fd != -1)
		(void)flock(fd, LOCK_SH);
	return fd;
}

int
queue_runner_active(const char *dir)
{
	int fd = open_in_queue(dir, "runner.lock", O_RDONLY), active;

	if (fd == -1)
		return 0;
	active = flock(fd, LOCK_EX | LOCK_NB) == -1;
	(void)close(fd);
	return active;
}

/* ---------------------------------------------------- rate counters */

static int
rate_open(const char *dir, uid_t uid, int *fdp, struct error *err)
{
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/rate", dir) >= (int)sizeof(path))
		return error_set(err, ST_CANTCREAT, "path too long");
	if (mkdir(path, 0770) == -1 && errno != EEXIST)
		return error_set(err, ST_CANTCREAT, "cannot create %s: %s",
		    path, strerror(errno));
	(void)snprintf(path, sizeof(path), "%s/rate/%lu", dir,
	    (unsigned long)uid);
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0660);
	if (fd == -1 || flock(fd, LOCK_EX) == -1) {
		(void)error_set(err, ST_CANTCREAT, "cannot use %s: %s", path,
		    strerror(errno));
		if (fd != -1)
			(void)close(fd);
		return err->status;
	}
	*fdp = fd;
	return ST_OK;
}

int
queue_rate_open(const char *dir, uid_t uid, int *fdp, struct error *err)
{
	int rc;

	*fdp = -1;
	if (priv_group_enter(err) != ST_OK)
		return err->status;
	rc = rate_open(dir, uid, fdp, err);
	priv_group_leave();
	return rc;
}

/* ------------------------------------------------------- state files */

static int
state_write(const char *dir, const char *name, const char *buf, size_t len,
    struct error *err)
{
	char path[PATH_MAX], tmp[PATH_MAX + 24];
	int fd, rc;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path) || snprintf(tmp, sizeof(tmp), "%s/.tmp.%s.%ld",
	    dir, name, (long)getpid()) >= (int)sizeof(tmp))
		return error_set(err, ST_CANTCREAT, "%s: path too long", name);
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0660);
	if (fd == -1)
		return error_set(err, ST_CANTCREAT, "cannot write %s: %s",
		    tmp, strerror(errno));
	/* A umask of 0 must not make it readable by others. */
	rc = fchmod(fd, 0660) == -1 || queue_write_all(fd, buf, len) == -1 ||
	    fsync(fd) == -1 ? -1 : 0;
	if (close(fd) == -1)
		rc = -1;
	if (rc == -1 || rename(tmp, path) == -1) {
		(void)error_set(err, ST_CANTCREAT, "cannot write %s: %s",
		    path, strerror(errno));
		(void)unlink(tmp);
		return err->status;
	}
	(void)fsync_dir(dir, ".");
	return ST_OK;
}

int
queue_state_write(const char *dir, const char *name, const char *buf,
    size_t len, struct error *err)
{
	int rc;

	if (priv_group_enter(err) != ST_OK)
		return err->status;
	rc = state_write(dir, name, buf, len, err);
	priv_group_leave();
	return rc;
}

static int
state_read(const char *dir, const char *path, char *buf, size_t cap,
    size_t *len, struct error *err)
{
	struct stat st;
	ssize_t n;
	int fd;

	if ((fd = open_checked(dir, path, O_RDONLY, &st)) == -1)
		return errno == ENOENT ? ST_OK : error_set(err, ST_CANTCREAT,
		    "cannot read %s: %s", path, strerror(errno));
	if ((st.st_mode & (S_IROTH | S_IWOTH)) != 0) {
		(void)close(fd);
		return error_set(err, ST_CANTCREAT, "%s is readable or "
		    "writable by others: refused", path);
	}
	while (*len < cap && (n = read(fd, buf + *len, cap - *len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			(void)close(fd);
			explicit_bzero(buf, cap);
			*len = 0;
			return error_set(err, ST_CANTCREAT, "cannot read %s: "
			    "%s", path, strerror(errno));
		}
		*len += (size_t)n;
	}
	(void)close(fd);
	return ST_OK;
}

int
queue_state_read(const char *dir, const char *name, char *buf, size_t cap,
    size_t *len, struct error *err)
{
	char path[PATH_MAX];
	int rc;

	*len = 0;
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path))
		return error_set(err, ST_CANTCREAT, "%s: path too long", name);
	if (priv_group_enter(err) != ST_OK)
		return err->status;
	rc = state_read(dir, path, buf, cap, len, err);
	priv_group_leave();
	return rc;
}

int
queue_state_lock(const char *dir, const char *name)
{
	int fd = open_in_queue(dir, name, O_RDWR | O_CREAT);

	while (fd != -1 && flock(fd, LOCK_EX) == -1) {
		if (errno != EINTR) {
			(void)close(fd);
			return -1;
		}
	}
	return fd;
}

/* ------------------------------------------------------- hub health */

static int
hub_mark_path(const char *dir, const struct route *rt, char *buf,
    size_t len)
{
	char host[HOST_MAX];
	size_t i;
	int n;

	/* The host may be an IPv6 literal: keep the name a plain file. */
	(void)strlcpy(host, rt->host, sizeof(host));
	for (i = 0; host[i] != '\0'; i++)
		if (host[i] == '/' || host[i] == ':' || host[i] == '[' ||
		    host[i] == ']')
			host[i] = '_';
	n = snprintf(buf, len, "%s/hub-down.%s.%s", dir, host, rt->port);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int
mark_down(const char *dir, const struct route *rt, const char *why,
    struct error *err)
{
	char path[PATH_MAX], tmp[PATH_MAX + 16], clean[REPLY_TEXT_MAX];
	int fd, rc;

	if (hub_mark_path(dir, rt, path, sizeof(path)) == -1 ||
	    snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid()) >=
	    (int)sizeof(tmp))
		return error_set(err, ST_CANTCREAT, "hub mark path too long");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0660);
	if (fd == -1)
		return error_set(err, ST_CANTCREAT, "cannot write %s: %s",
		    tmp, strerror(errno));
	clean_value(clean, sizeof(clean), why);
	rc = queue_write_all(fd, clean, strlen(clean));
	(void)close(fd);
	if (rc == -1 || rename(tmp, path) == -1) {
		(void)error_set(err, ST_CANTCREAT, "cannot write %s: %s",
		    path, strerror(errno));
		(void)unlink(tmp);
		return err->status;
	}
	return ST_OK;
}

int
queue_hub_mark_down(const char *dir, const struct route *rt, const char *why,
    struct error *err)
{
	int rc;

	if (priv_group_enter(err) != ST_OK)
		return err->status;
	rc = mark_down(dir, rt, why, err);
	priv_group_leave();
	return rc;
}

int
queue_hub_mark_up(const char *dir, const struct route *rt, struct error *err)
{
	char path[PATH_MAX];
	int rc = ST_OK;

	if (hub_mark_path(dir, rt, path, sizeof(path)) == -1)
		return error_set(err, ST_CANTCREAT, "hub mark path too long");
	if (priv_group_enter(err) != ST_OK)
		return err->status;
	if (unlink(path) == -1 && errno != ENOENT)
		rc = error_set(err, ST_CANTCREAT, "cannot remove %s: %s",
		    path, strerror(errno));
	priv_group_leave();
	return rc;
}

long long
queue_hub_down_since(const char *dir, const struct route *rt, char *why,
    size_t whylen)
{
	char path[PATH_MAX];
	struct error err;
	struct stat st;
	ssize_t n;
	int fd;

	if (whylen > 0)
		why[0] = '\0';
	if (hub_mark_path(dir, rt, path, sizeof(path)) == -1 ||
	    priv_group_enter(&err) != ST_OK)
		return -1;
	fd = open_checked(dir, path, O_RDONLY, &st);
	priv_group_leave();
	if (fd == -1)
		return -1;
	n = whylen > 1 ? read(fd, why, whylen - 1) : 0;
	if (n > 0)
		why[n] = '\0';
	(void)close(fd);
	return (long long)(time(NULL) - st.st_mtime);
}

/* -------------------------------------------------- outcome counters */

static const char *const stat_names[STAT_KINDS] = {
	[STAT_SENT] = "sent", [STAT_DEFERRED] = "deferred",
	[STAT_BOUNCED] = "bounced", [STAT_FAILED] = "failed"
};

/* The stats file's text into st; unknown or malformed lines are skipped. */
static void
stats_parse(char *buf, struct queue_stats *st)
{
	char *line, *next, *sp;
	long long v;
	int k;

	memset(st, 0, sizeof(*st));
	for (line = buf; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if ((sp = strchr(line, ' ')) == NULL)
			continue;
		*sp++ = '\0';
		if (parse_number(sp, LLONG_MAX, &v) == -1)
			continue;
		if (strcmp(line, "last-delivery") == 0)
			st->last_delivery = v;
		for (k = 0; k < STAT_KINDS; k++)
			if (strcmp(line, stat_names[k]) == 0)
				st->count[k] = (unsigned long long)v;
	}
}

static int
stats_read_fd(int fd, struct queue_stats *st)
{
	char buf[512];
	ssize_t n;

	if ((n = pread(fd, buf, sizeof(buf) - 1, 0)) == -1)
		return -1;
	buf[n] = '\0';
	stats_parse(buf, st);
	return 0;
}

static int
stats_write_fd(int fd, const struct queue_stats *st)
{
	char buf[512];
	int k, n, len = 0;

	for (k = 0; k < STAT_KINDS; k++) {
		n = snprintf(buf + len, sizeof(buf) - (size_t)len, "%s %llu\n",
		    stat_names[k], st->count[k]);
		if (n < 0 || (size_t)n >= sizeof(buf) - (size_t)len)
			return -1;
		len += n;
	}
	n = snprintf(buf + len, sizeof(buf) - (size_t)len,
	    "last-delivery %lld\n", st->last_delivery);
	if (n < 0 || (size_t)n >= sizeof(buf) - (size_t)len)
		return -1;
	len += n;
	if (ftruncate(fd, 0) == -1 || pwrite(fd, buf, (size_t)len, 0) != len)
		return -1;
	return 0;
}

static int
stats_add(const char *dir, const struct queue_stats *delta,
    struct error *err)
{
	struct queue_stats st;
	char path[PATH_MAX];
	int fd, rc = 0, k;

	if (snprintf(path, sizeof(path), "%s/stats", dir) >= (int)sizeof(path))
		return error_set(err, ST_CANTCREAT, "path too long");
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0660);
	if (fd == -1 || flock(fd, LOCK_EX) == -1 ||
	    stats_read_fd(fd, &st) == -1)
		rc = -1;
	if (rc == 0) {
		for (k = 0; k < STAT_KINDS; k++)
			st.count[k] += delta->count[k];
		if (delta->last_delivery > st.last_delivery)
			st.last_delivery = delta->last_delivery;
		rc = stats_write_fd(fd, &st);
	}
	if (rc == -1)
		(void)error_set(err, ST_CANTCREAT, "cannot update %s: %s",
		    path, strerror(errno));
	if (fd != -1)
		(void)close(fd);
	return rc == 0 ? ST_OK : err->status;
}

int
queue_stats_add(const char *dir, enum stat_kind kind, struct error *err)
{
	struct queue_stats one;

	memset(&one, 0, sizeof(one));
	one.count[kind] = 1;
	if (kind == STAT_SENT)
		one.last_delivery = (long long)time(NULL);
	return queue_stats_merge(dir, &one, err);
}

int
queue_stats_merge(const char *dir, const struct queue_stats *delta,
    struct error *err)
{
	int rc;

	if (priv_group_enter(err) != ST_OK)
		return err->status;
	rc = stats_add(dir, delta, err);
	priv_group_leave();
	return rc;
}

int
queue_stats_read(const char *dir, struct queue_stats *st, struct error *err)
{
	int fd = open_in_queue(dir, "stats", O_RDONLY), rc = ST_OK;

	memset(st, 0, sizeof(*st));
	if (fd == -1)	/* none yet: every counter is 0 */
		return errno == ENOENT ? ST_OK : error_set(err, ST_CANTCREAT,
		    "cannot read %s/stats: %s", dir, strerror(errno));
	/* A shared lock: never half of a rewrite. */
	if (flock(fd, LOCK_SH) == -1 || stats_read_fd(fd, st) == -1)
		rc = error_set(err, ST_CANTCREAT, "cannot read %s/stats: %s",
		    dir, strerror(errno));
	(void)close(fd);
	return rc;
}

/* ------------------------------------------------ TLS session cache */

/*
 * QueueDir/tls-session.HOST.PORT: the TLS session of the last verified
 * connection to a hub, for tls.c to offer next time (resumption saves
 * the hub's certificate check and a key exchange's CPU). A cache: a file
 * that is missing, expired, malformed or made under another binding is
 * no session, never an error. Written atomically (a temporary name, then
 * rename), readable by the queue's group only (0640; the directory is
 * 2770, so its owner cannot reach it either outside postino). The
 * format, a text head then the session (DER, as i2d_SSL_SESSION made it):
 *
 *   postino-tls-session 1
 *   expires 1763775294             (the ticket's lifetime, capped)
 *   binding v1 host=... port=...   (tls.c: what it was made under)
 *   <one empty line, then the DER bytes to the end of the file>
 */
#define TLS_SESSION_MAX		65536	/* a session with its certificate */
#define TLS_SESSION_LIFE	(7 * 86400)	/* RFC 8446 4.6.1 maximum */

static int
tls_session_path(const char *dir, const char *host, const char *port,
    char *buf, size_t len)
{
	char h[HOST_MAX], p[PORT_MAX];
	size_t i;
	int n;

	/* An IPv6 literal or a service name: keep the name a plain file. */
	(void)strlcpy(h, host, sizeof(h));
	(void)strlcpy(p, port, sizeof(p));
	for (i = 0; h[i] != '\0'; i++)
		if (h[i] == '/' || h[i] == ':' || h[i] == '[' || h[i] == ']')
			h[i] = '_';
	for (i = 0; p[i] != '\0'; i++)
		if (p[i] == '/')
			p[i] = '_';
	n = snprintf(buf, len, "%s/tls-session.%s.%s", dir, h, p);
	return n < 0 || (size_t)n >= len || h[0] == '\0' || h[0] == '.' ?
	    -1 : 0;
}

/* The DER part of buf (n bytes) if its head is for binding and alive. */
static const char *
tls_session_body(char *buf, size_t n, const char *binding, size_t *len)
{
	static const char magic[] = "postino-tls-session 1\nexpires ";
	long long expires, now = (long long)time(NULL);
	char *p = buf + sizeof(magic) - 1, *nl, *end;
	size_t blen = strlen(binding);

	if (n < sizeof(magic) || memcmp(buf, magic, sizeof(magic) - 1) != 0 ||
	    (nl = memchr(p, '\n', n - (size_t)(p - buf))) == NULL)
		return NULL;
	*nl = '\0';
	if (parse_number(p, LLONG_MAX, &expires) == -1 || expires <= now ||
	    expires > now + TLS_SESSION_LIFE)
		return NULL;
	p = nl + 1;
	end = buf + n;
	if ((size_t)(end - p) < 8 + blen + 2 || memcmp(p, "binding ", 8) != 0 ||
	    memcmp(p + 8, binding, blen) != 0 || p[8 + blen] != '\n' ||
	    p[9 + blen] != '\n')
		return NULL;
	p += 10 + blen;
	*len = (size_t)(end - p);
	return *len > 0 ? p : NULL;
}

static void
tls_session_read(const char *dir, const char *path, const char *binding,
    unsigned char **der, size_t *len)
{
	char *buf;
	const char *body;
	struct stat st;
	ssize_t n;
	int fd;

	fd = open_checked(dir, path, O_RDONLY, &st);
	if (fd == -1)
		return;
	if (st.st_size <= 0 || st.st_size > TLS_SESSION_MAX ||
	    (buf = malloc((size_t)st.st_size)) == NULL) {
		(void)close(fd);
		return;
	}
	n = pread(fd, buf, (size_t)st.st_size, 0);
	(void)close(fd);
	if (n == st.st_size &&
	    (body = tls_session_body(buf, (size_t)n, binding, len)) != NULL &&
	    (*der = malloc(*len)) != NULL)
		memcpy(*der, body, *len);
	freezero(buf, (size_t)st.st_size);
}

void
queue_tls_session_load(const char *dir, const char *host, const char *port,
    const char *binding, unsigned char **der, size_t *len)
{
	char path[PATH_MAX];
	struct error err;

	*der = NULL;
	*len = 0;
	if (strchr(binding, '\n') != NULL ||
	    tls_session_path(dir, host, port, path, sizeof(path)) == -1 ||
	    priv_group_enter(&err) != ST_OK)
		return;
	tls_session_read(dir, path, binding, der, len);
	priv_group_leave();
}

static int
tls_session_write(const char *path, const char *binding, long long expires,
    const unsigned char *der, size_t len, struct error *err)
{
	char tmp[PATH_MAX + 16], head[64];
	int fd, rc, n;

	if (snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid()) >=
	    (int)sizeof(tmp))
		return error_set(err, ST_CANTCREAT, "path too long");
	n = snprintf(head, sizeof(head), "postino-tls-session 1\nexpires "
	    "%lld\nbinding ", expires);
	(void)unlink(tmp);	/* left by a crash of a process of our pid */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0640);
	if (fd == -1)
		return error_set(err, ST_CANTCREAT, "cannot write %s: %s",
		    tmp, strerror(errno));
	rc = queue_write_all(fd, head, (size_t)n);
	if (rc == 0)
		rc = queue_write_all(fd, binding, strlen(binding));
	if (rc == 0)
		rc = queue_write_all(fd, "\n\n", 2);
	if (rc == 0)
		rc = queue_write_all(fd, (const char *)der, len);
	if (close(fd) == -1 || rc == -1 || rename(tmp, path) == -1) {
		(void)error_set(err, ST_CANTCREAT, "cannot write %s: %s",
		    path, strerror(errno));
		(void)unlink(tmp);
		return err->status;
	}
	return ST_OK;
}

int
queue_tls_session_save(const char *dir, const char *host, const char *port,
    const char *binding, long long expires, const unsigned char *der,
    size_t len, struct error *err)
{
	char path[PATH_MAX];
	int rc;

	if (strchr(binding, '\n') != NULL || len == 0 ||
	    len > TLS_SESSION_MAX / 2 ||
	    tls_session_path(dir, host, port, path, sizeof(path)) == -1)
		return error_set(err, ST_SOFTWARE, "TLS session not stored");
	if (priv_group_enter(err) != ST_OK)
		return err->status;
	rc = tls_session_write(path, binding, expires, der, len, err);
	priv_group_leave();
	return rc;
}

void
queue_tls_session_forget(const char *dir, const char *host, const char *port)
{
	char path[PATH_MAX];
	struct error err;

	if (tls_session_path(dir, host, port, path, sizeof(path)) == -1 ||
	    priv_group_enter(&err) != ST_OK)
		return;
	(void)unlink(path);
	priv_group_leave();
}
