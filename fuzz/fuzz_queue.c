/*
 * fuzz_queue.c: libFuzzer target for the queue control-file reader
 * (queue_parse). The input is a control file's text. An entry that
 * parses must be usable as read (a valid id, at least one recipient,
 * safe addresses) and must survive queue_format + queue_parse: the
 * second parse succeeds, keeps every field (reply texts as queue_format
 * cleans them), and formatting it again gives the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postino.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

/* What queue_format writes of a free text: control bytes made '?'. */
static void
cleaned(char *dst, size_t len, const char *src)
{
	log_sanitize(dst, len, src, strlen(src));
}

static void
check_entry(const struct queue_entry *e)
{
	size_t i;

	CHECK(queue_valid_qid(e->qid));
	CHECK(e->nrcpt > 0 && e->nrcpt <= RCPT_MAX && e->rcpt != NULL);
	CHECK(e->route.host[0] != '\0' || e->hub_default);
	CHECK(e->sender[0] == '\0' || addr_is_safe(e->sender));
	CHECK(memchr(e->last_error, '\0', sizeof(e->last_error)) != NULL);
	CHECK(e->data_fd == -1);
	for (i = 0; i < e->nrcpt; i++) {
		CHECK(addr_is_safe(e->rcpt[i].addr));
		CHECK(e->rcpt[i].state == RS_PENDING ||
		    e->rcpt[i].state == RS_SENT ||
		    e->rcpt[i].state == RS_FAILED);
		CHECK(strlen(e->rcpt[i].reply) < REPLY_TEXT_MAX);
	}
}

/* e2 is e read back from its own text. */
static void
check_same(const struct queue_entry *e, const struct queue_entry *e2)
{
	char want[REPLY_TEXT_MAX];
	size_t i;

	CHECK(strcmp(e->qid, e2->qid) == 0);
	CHECK(e->queued == e2->queued && e->next_retry == e2->next_retry);
	CHECK(e->attempts == e2->attempts && e->uid == e2->uid);
	CHECK(e->size == e2->size && e->body_8bit == e2->body_8bit);
	CHECK(e->hold == e2->hold && e->possible_dup == e2->possible_dup);
	CHECK(strcmp(e->route.host, e2->route.host) == 0);
	CHECK(strcmp(e->route.port, e2->route.port) == 0);
	CHECK(strcmp(e->dup_hub.host, e2->dup_hub.host) == 0);
	CHECK(strcmp(e->dup_hub.port, e2->dup_hub.port) == 0);
	CHECK(strcmp(e->sender, e2->sender) == 0);
	cleaned(want, sizeof(want), e->last_error);
	CHECK(strcmp(want, e2->last_error) == 0);
	CHECK(e->nrcpt == e2->nrcpt);
	for (i = 0; i < e->nrcpt; i++) {
		CHECK(strcmp(e->rcpt[i].addr, e2->rcpt[i].addr) == 0);
		CHECK(e->rcpt[i].state == e2->rcpt[i].state);
		/* The writer keeps QUEUE_REPLY_KEEP of a reply. */
		cleaned(want, QUEUE_REPLY_KEEP, e->rcpt[i].reply);
		CHECK(strcmp(want, e2->rcpt[i].reply) == 0);
	}
}

static void
round_trip(const struct queue_entry *e)
{
	struct queue_entry e2;
	struct error err;
	char *text, *text2;
	size_t len, len2;

	if ((text = queue_format(e, &len)) == NULL)
		return;		/* out of memory */
	CHECK(strlen(text) == len);
	queue_entry_init(&e2);
	error_clear(&err);
	if (queue_parse(text, len, &e2, &err) != ST_OK) {
		fprintf(stderr, "queue_parse of queue_format output: %s\n",
		    err.text);
		abort();
	}
	check_entry(&e2);
	check_same(e, &e2);
	text2 = queue_format(&e2, &len2);
	CHECK(text2 != NULL && len2 == len && memcmp(text, text2, len) == 0);
	free(text2);
	free(text);
	queue_entry_free(&e2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct queue_entry e;
	struct error err;
	int rc;

	queue_entry_init(&e);
	error_clear(&err);
	rc = queue_parse((const char *)data, size, &e, &err);
	CHECK(memchr(err.text, '\0', sizeof(err.text)) != NULL);
	if (rc == ST_OK) {
		check_entry(&e);
		round_trip(&e);
	} else
		CHECK((rc == ST_DATA || rc == ST_OSERR) &&
		    (int)err.status == rc && err.text[0] != '\0');
	queue_entry_free(&e);
	return 0;
}
