/*
 * showq.c: how the queue is shown and handled by people. `mailq` and
 * `sendmail -bp` in Postfix's layout (which check_mailq -M postfix
 * reads), `postino queue --json` with the same facts for monitoring, and
 * `postino queue delete|hold|release ID`, and `postino queue --metrics`
 * (Prometheus' text format, also written to MetricsFile). It writes to
 * the stream main() gives it and returns a status; main() decides the
 * exit code.
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "postino.h"

/* Postfix's columns (showq_compat.c layout, spec/callers.md 3.9). */
#define RECIPIENT_INDENT	41
#define REASON_END_COLUMN	76

static const char *
reason_of(const struct queue_entry *e, const struct queue_rcpt *r)
{
	return r->reply[0] != '\0' ? r->reply : e->last_error;
}

static void
print_reason(FILE *out, const char *reason)
{
	int pad = REASON_END_COLUMN - (int)strlen(reason);

	(void)fprintf(out, "%*s(%s)\n", pad > 0 ? pad : 0, "", reason);
}

static void
print_entry(FILE *out, const struct queue_entry *e, const char *area,
    int busy)
{
	char id[QID_MAX + 2], when[32], clean[REPLY_TEXT_MAX];
	const char *prev = NULL;
	int failed = strcmp(area, "failed") == 0;
	struct tm tm;
	size_t i;

	(void)snprintf(id, sizeof(id), "%s%s", e->qid,
	    busy ? "*" : (e->hold || failed) ? "!" : "");
	(void)localtime_r(&e->queued, &tm);
	/* asctime()'s first 20 characters, as Postfix prints them. */
	(void)strftime(when, sizeof(when), "%a %b %e %H:%M:%S ", &tm);
	(void)fprintf(out, "%-11s %7lld %20.20s %s\n", id,
	    (long long)e->size, when, e->sender[0] != '\0' ? e->sender :
	    "MAILER-DAEMON");
	if (e->data_missing)
		print_reason(out, "data file missing: the message is lost");
	if (busy && e->lock_pid != 0) {
		char held[96], since[32];

		(void)localtime_r(&e->lock_since, &tm);
		(void)strftime(since, sizeof(since), "%b %e %H:%M:%S", &tm);
		(void)snprintf(held, sizeof(held), "locked by pid %ld since "
		    "%s, %s", (long)e->lock_pid, since, e->lock_state);
		print_reason(out, held);
	}
	for (i = 0; i < e->nrcpt; i++) {
		const struct queue_rcpt *r = &e->rcpt[i];
		const char *why;

		if (r->state != (failed ? RS_FAILED : RS_PENDING))
			continue;
		why = reason_of(e, r);
		log_sanitize(clean, sizeof(clean), why, strlen(why));
		if (clean[0] != '\0' &&
		    (prev == NULL || strcmp(prev, why) != 0))
			print_reason(out, clean);
		prev = why;
		(void)fprintf(out, "%*s%s\n", RECIPIENT_INDENT, "", r->addr);
	}
	(void)fputc('\n', out);
}

/* One line per entry, the fields of Postfix's `postqueue -j` and more. */
static void
print_json(FILE *out, const struct queue_entry *e, const char *area,
    int busy)
{
	int failed = strcmp(area, "failed") == 0;
	const char *sep = "";
	size_t i;

	(void)fprintf(out, "{\"queue_name\": \"%s\", \"queue_id\": \"%s\", "
	    "\"arrival_time\": %lld, \"message_size\": %lld, \"sender\": ",
	    failed ? "failed" : e->hold ? "hold" : busy ? "active" :
	    "deferred", e->qid, (long long)e->queued, (long long)e->size);
	log_json_string(out, e->sender);
	if (busy && e->lock_pid != 0)
		(void)fprintf(out, ", \"locked_by_pid\": %ld, "
		    "\"locked_since\": %lld, \"lock_holder\": \"%s\"",
		    (long)e->lock_pid, (long long)e->lock_since, e->lock_state);
	(void)fprintf(out, ", \"uid\": %lu, \"attempts\": %u, "
	    "\"next_retry\": %lld, \"possible_duplicate\": %s, "
	    "%s\"recipients\": [", (unsigned long)e->uid, e->attempts,
	    (long long)e->next_retry, e->possible_dup ? "true" : "false",
	    /* Only when true: the usual entry keeps Postfix's key set. */
	    e->data_missing ? "\"data_missing\": true, " : "");
	for (i = 0; i < e->nrcpt; i++) {
		const struct queue_rcpt *r = &e->rcpt[i];

		if (r->state != (failed ? RS_FAILED : RS_PENDING))
			continue;
		(void)fprintf(out, "%s{\"address\": ", sep);
		log_json_string(out, r->addr);
		(void)fprintf(out, ", \"delay_reason\": ");
		log_json_string(out, reason_of(e, r));
		(void)fputc('}', out);
		sep = ", ";
	}
	(void)fprintf(out, "]}\n");
}

static void
print_header(FILE *out, int json, unsigned long count)
{
	if (count == 0 && !json)
		(void)fprintf(out, "%-11s %7s %-20s %s\n", "-Queue ID-",
		    "--Size--", "----Arrival Time----",
		    "-Sender/Recipient-------");
}

/*
 * An entry that exists but cannot be read (damaged, over the size limit,
 * unsafe) is listed with the reason, never hidden: only root can then
 * delete it (postino queue delete ID).
 */
static void
print_unreadable(FILE *out, const char *qid, const char *area, int json,
    const char *why)
{
	char clean[ERR_MAX];

	log_sanitize(clean, sizeof(clean), why, strlen(why));
	if (json) {
		(void)fprintf(out, "{\"queue_name\": \"%s\", \"queue_id\": "
		    "\"%s\", \"unreadable\": ", strcmp(area, "failed") == 0 ?
		    "failed" : "deferred", qid);
		log_json_string(out, clean);
		(void)fprintf(out, "}\n");
		return;
	}
	(void)fprintf(out, "%-11s %7d %20s %s\n", qid, 0, "", "?");
	print_reason(out, "unreadable queue entry");
	(void)fprintf(out, "%*s%s\n\n", RECIPIENT_INDENT, "", clean);
}

static int
list_area(FILE *out, const char *dir, const char *area, int json,
    unsigned long long *bytes, unsigned long *count, struct error *err)
{
	char (*ids)[QID_MAX];
	size_t n, i;

	if (queue_list_ids(dir, area, &ids, &n, err) != ST_OK)
		return err->status;
	for (i = 0; i < n; i++) {
		struct queue_entry e;
		struct error perr;
		int busy;

		queue_entry_init(&e);
		error_clear(&perr);
		/* Vanished entries are skipped; unreadable ones are shown. */
		if (queue_peek_entry(dir, area, ids[i], &e, &busy, &perr) !=
		    ST_OK && perr.status != ST_PERM) {
			print_header(out, json, *count);
			print_unreadable(out, ids[i], area, json, perr.text);
			(*count)++;
		} else if (perr.status == ST_OK) {
			print_header(out, json, *count);
			if (json)
				print_json(out, &e, area, busy);
			else
				print_entry(out, &e, area, busy);
			*bytes += (unsigned long long)e.size;
			(*count)++;
		}
		queue_entry_free(&e);
	}
	free(ids);
	return ST_OK;
}

int
showq_list(FILE *out, const char *dir, int json, struct error *err)
{
	unsigned long long bytes = 0;
	unsigned long count = 0;

	if (list_area(out, dir, "queue", json, &bytes, &count, err) != ST_OK ||
	    list_area(out, dir, "failed", json, &bytes, &count, err) != ST_OK)
		return err->status;
	if (json)
		return ST_OK;
	if (count == 0)
		(void)fprintf(out, "Mail queue is empty\n");
	else
		(void)fprintf(out, "-- %llu Kbytes in %lu Request%s.\n",
		    bytes / 1024, count, count == 1 ? "" : "s");
	return ST_OK;
}

/* Only root or the submitter may change an entry. */
static int
may_change(const struct queue_entry *e, struct error *err)
{
	uid_t uid = getuid();

	if (uid == 0 || uid == e->uid)
		return ST_OK;
	return error_set(err, ST_NOPERM, "%s: permission denied (queued by "
	    "uid %lu)", e->qid, (unsigned long)e->uid);
}

int
showq_change(const char *dir, const char *action, const char *qid,
    struct error *err)
{
	struct queue_entry e;
	int rc;

	queue_entry_init(&e);
	if (strcmp(action, "delete") == 0) {
		int busy;

		rc = queue_peek_entry(dir, "failed", qid, &e, &busy, err);
		if (rc == ST_OK && (rc = may_change(&e, err)) == ST_OK)
			rc = queue_unlink(dir, "failed", qid, err);
		queue_entry_free(&e);
		if (rc != ST_PERM && rc != ST_OK && err->status != ST_NOPERM &&
		    getuid() == 0) {
			/* Root can always delete, even what nobody can read. */
			error_clear(err);
			return queue_force_remove(dir, qid, err);
		}
		if (rc != ST_PERM)
			return rc;
	}
	error_clear(err);
	if ((rc = queue_lock_entry(dir, qid, &e, err)) != ST_OK) {
		/* Root can always delete, even what nobody can read. */
		if (rc == ST_DATA && getuid() == 0 &&
		    strcmp(action, "delete") == 0) {
			error_clear(err);
			return queue_force_remove(dir, qid, err);
		}
		if (rc == ST_PERM)
			(void)error_set(err, ST_USAGE, "%s: no such entry",
			    qid);
		return err->status;
	}
	if ((rc = may_change(&e, err)) == ST_OK) {
		if (strcmp(action, "delete") == 0)
			rc = queue_remove(dir, &e, err);
		else {
			e.hold = strcmp(action, "hold") == 0;
			if (!e.hold)
				e.next_retry = time(NULL);
			rc = queue_update(dir, &e, err);
		}
	}
	queue_entry_free(&e);
	return rc;
}

/* ------------------------------------------------------------ metrics */

/* What --metrics says of the entries of the queue and failed areas. */
struct queue_sum {
	unsigned long	 deferred, held, failed;
	unsigned long long bytes;
	time_t		 oldest;	/* 0: none */
};

static int
sum_area(const char *dir, const char *area, struct queue_sum *sum,
    struct error *err)
{
	char (*ids)[QID_MAX];
	size_t n, i;
	int failed = strcmp(area, "failed") == 0;

	if (queue_list_ids(dir, area, &ids, &n, err) != ST_OK)
		return err->status;
	for (i = 0; i < n; i++) {
		struct queue_entry e;
		struct error perr;
		int busy, rc;

		queue_entry_init(&e);
		error_clear(&perr);
		rc = queue_peek_entry(dir, area, ids[i], &e, &busy, &perr);
		/* Vanished: not counted; unreadable: counted (as in mailq). */
		if (rc == ST_OK || perr.status != ST_PERM) {
			if (failed)
				sum->failed++;
			else if (rc == ST_OK && e.hold)
				sum->held++;
			else
				sum->deferred++;
		}
		if (rc == ST_OK) {
			sum->bytes += (unsigned long long)e.size;
			if (sum->oldest == 0 || e.queued < sum->oldest)
				sum->oldest = e.queued;
		}
		queue_entry_free(&e);
	}
	free(ids);
	return ST_OK;
}

/* A label value, escaped as the exposition format wants. */
static void
label_value(FILE *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			(void)fprintf(out, "\\%c", *s);
		else if (*s == '\n')
			(void)fputs("\\n", out);
		else
			(void)fputc(*s, out);
	}
}

static void
family(FILE *out, const char *name, const char *type, const char *help)
{
	(void)fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

/* Each MailHub entry, 1 or 0 while HubBackoff holds it back. */
static void
print_hub_up(FILE *out, const struct config *cfg)
{
	struct route rt;
	long long down;
	size_t i;

	family(out, "postino_hub_up", "gauge",
	    "1 when the hub may be tried, 0 while HubBackoff holds it back.");
	for (i = 0; i < config_hub_count(cfg); i++) {
		memset(&rt, 0, sizeof(rt));
		config_hub(cfg, i, rt.host, sizeof(rt.host), rt.port,
		    sizeof(rt.port));
		down = queue_hub_down_since(cfg->queue_dir, &rt, NULL, 0);
		(void)fputs("postino_hub_up{hub=\"", out);
		label_value(out, rt.host);
		(void)fputc(':', out);
		label_value(out, rt.port);
		(void)fprintf(out, "\"} %d\n", down >= 0 &&
		    down < cfg->hub_backoff ? 0 : 1);
	}
}

static void
print_counters(FILE *out, const struct queue_stats *st)
{
	static const char *const names[STAT_KINDS] = {
		[STAT_SENT] = "sent", [STAT_DEFERRED] = "deferred",
		[STAT_BOUNCED] = "bounced", [STAT_FAILED] = "failed"
	};
	int k;

	family(out, "postino_last_delivery_timestamp_seconds", "gauge",
	    "When a message was last sent (0: never).");
	(void)fprintf(out, "postino_last_delivery_timestamp_seconds %lld\n",
	    st->last_delivery);
	family(out, "postino_messages_total", "counter",
	    "Outcomes of delivery attempts, kept across runs.");
	for (k = 0; k < STAT_KINDS; k++)
		(void)fprintf(out, "postino_messages_total{outcome=\"%s\"} "
		    "%llu\n", names[k], st->count[k]);
}

int
showq_metrics(FILE *out, const struct config *cfg, struct error *err)
{
	struct queue_sum sum;
	struct queue_stats st;
	time_t now = time(NULL);

	memset(&sum, 0, sizeof(sum));
	if (sum_area(cfg->queue_dir, "queue", &sum, err) != ST_OK ||
	    sum_area(cfg->queue_dir, "failed", &sum, err) != ST_OK ||
	    queue_stats_read(cfg->queue_dir, &st, err) != ST_OK)
		return err->status;
	family(out, "postino_queue_messages", "gauge",
	    "Messages in the queue, by state.");
	(void)fprintf(out, "postino_queue_messages{state=\"deferred\"} %lu\n"
	    "postino_queue_messages{state=\"held\"} %lu\n"
	    "postino_queue_messages{state=\"failed\"} %lu\n", sum.deferred,
	    sum.held, sum.failed);
	family(out, "postino_queue_bytes", "gauge",
	    "Size of the queued messages.");
	(void)fprintf(out, "postino_queue_bytes %llu\n", sum.bytes);
	family(out, "postino_queue_oldest_age_seconds", "gauge",
	    "Age of the oldest queued message (0: empty).");
	(void)fprintf(out, "postino_queue_oldest_age_seconds %lld\n",
	    sum.oldest != 0 && now > sum.oldest ?
	    (long long)(now - sum.oldest) : 0LL);
	print_hub_up(out, cfg);
	print_counters(out, &st);
	return ST_OK;
}

/*
 * MetricsFile, for node_exporter's textfile collector: written under a
 * temporary name beside it and renamed over it, so that the collector
 * never reads half a file. Written as whoever runs the queue, without
 * the group: the file is the administrator's, not the queue's.
 */
int
showq_metrics_write(const struct config *cfg, struct error *err)
{
	char tmp[PATH_MAX];
	FILE *fp;
	int fd, rc;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", cfg->metrics_file,
	    (long)getpid()) >= (int)sizeof(tmp))
		return error_set(err, ST_CANTCREAT, "MetricsFile: path too "
		    "long");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0644);
	if (fd == -1 || (fp = fdopen(fd, "w")) == NULL) {
		rc = error_set(err, ST_CANTCREAT, "cannot write %s: %s", tmp,
		    strerror(errno));
		if (fd != -1)
			(void)close(fd);
		return rc;
	}
	rc = showq_metrics(fp, cfg, err);
	if (fflush(fp) != 0 || fsync(fd) != 0) {
		if (rc == ST_OK)
			rc = error_set(err, ST_CANTCREAT, "cannot write %s: %s",
			    tmp, strerror(errno));
	}
	(void)fclose(fp);
	if (rc == ST_OK && rename(tmp, cfg->metrics_file) == -1)
		rc = error_set(err, ST_CANTCREAT, "cannot rename %s to %s: %s",
		    tmp, cfg->metrics_file, strerror(errno));
	if (rc != ST_OK)
		(void)unlink(tmp);
	return rc;
}
