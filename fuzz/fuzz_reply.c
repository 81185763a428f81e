/*
 * fuzz_reply.c: libFuzzer target for the SMTP reply reader
 * (smtp_read_reply, over conn_read_line) and smtp_parse_qid. A conn
 * back end (struct conn_ops) serves the fuzz input as what the hub sent,
 * so no socket or timing is involved; replies are read until the first
 * error, as a session would.
 *
 * Input layout:
 *   byte 0   how the back end hands out bytes: bits 0-5 + 1 is the most
 *            one read returns (64: as much as fits); bit 6 makes every
 *            other read fail with EAGAIN first (conn_wait then polls a
 *            descriptor that is always readable), bit 7 with EINTR
 *   byte 1   bits 0-2 pick the reply text buffer size (0, 1, 4, 5, 16,
 *            200, REPLY_TEXT_MAX, 4096); bit 3 ends the stream with EIO
 *            instead of EOF
 *   rest     the bytes from the hub
 *
 * Checked: a reply is a code 200..599, its text is printable ASCII that
 * begins with the code, fits its buffer and is terminated; a qid holds
 * only qid characters; an error is ST_TEMP with a text.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn_impl.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***);

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

/* Far more than the input can make: the loop ends on the stream's end. */
#define REPLIES_MAX	100000

/* What the back end serves; one per run, reached through fuzz_conn. */
struct feed {
	const uint8_t	*p;
	size_t		 len, off;
	size_t		 chunk;		/* most bytes per read */
	int		 eagain, eintr, eio;
	unsigned	 reads;
};

/* struct conn first, so that the back end finds its feed from the conn. */
struct fuzz_conn {
	struct conn	 c;
	struct feed	 f;
};

static int devnull = -1;

static ssize_t
feed_read(struct conn *c, void *buf, size_t len, int *want_write)
{
	struct feed *f = &((struct fuzz_conn *)(void *)c)->f;
	size_t n;

	*want_write = 0;
	f->reads++;
	if ((f->eagain || f->eintr) && f->reads % 2 == 1) {
		errno = f->eagain ? EAGAIN : EINTR;
		return -1;
	}
	if (f->off == f->len) {
		if (f->eio) {
			errno = EIO;
			return -1;
		}
		return 0;
	}
	n = f->len - f->off;
	if (n > f->chunk)
		n = f->chunk;
	if (n > len)
		n = len;
	memcpy(buf, f->p + f->off, n);
	f->off += n;
	return (ssize_t)n;
}

static ssize_t
feed_write(struct conn *c, const void *buf, size_t len, int *want_write)
{
	(void)c;
	(void)buf;
	*want_write = 1;
	return (ssize_t)len;
}

static void
feed_close(struct conn *c)
{
	(void)c;
}

static const struct conn_ops feed_ops = {
	feed_read, feed_write, feed_close, NULL, "fuzz"
};

static int
qid_char(int ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= '0' && ch <= '9') || strchr("-._@+/=", ch) != NULL;
}

static void
check_text(int code, const char *text, size_t textlen)
{
	char digits[4];
	size_t n, i;

	if (textlen == 0)
		return;
	n = strnlen(text, textlen);
	CHECK(n < textlen);
	for (i = 0; i < n; i++)
		CHECK(text[i] >= ' ' && text[i] < 0x7f);
	(void)snprintf(digits, sizeof(digits), "%03d", code);
	CHECK(strncmp(text, digits, n < 3 ? n : 3) == 0);
}

static void
check_qid(const char *text, size_t textlen)
{
	static const size_t sizes[] = { 1, 2, 8, 64 };
	char *qid;
	size_t i, k;

	if (textlen == 0)
		return;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		if ((qid = malloc(sizes[i])) == NULL)
			return;
		smtp_parse_qid(text, qid, sizes[i]);
		CHECK(strnlen(qid, sizes[i]) < sizes[i]);
		for (k = 0; qid[k] != '\0'; k++)
			CHECK(qid_char((unsigned char)qid[k]));
		free(qid);
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Always readable: conn_wait() after an injected EAGAIN returns. */
	if ((devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t textlens[] = {
		0, 1, 4, 5, 16, 200, REPLY_TEXT_MAX, 4096
	};
	struct fuzz_conn fc;
	struct error err;
	char *text;
	size_t textlen;
	int code, rc, i, fd;

	if (size < 2)
		return 0;
	memset(&fc, 0, sizeof(fc));
	fc.f.chunk = (data[0] & 0x3f) + 1;
	if (fc.f.chunk == 64)
		fc.f.chunk = SIZE_MAX;
	fc.f.eagain = (data[0] & 0x40) != 0;
	fc.f.eintr = (data[0] & 0x80) != 0;
	fc.f.eio = (data[1] & 0x08) != 0;
	fc.f.p = data + 2;
	fc.f.len = size - 2;
	textlen = textlens[data[1] & 0x07];
	/* Exactly textlen bytes: ASan sees a write past the end. */
	if ((text = malloc(textlen > 0 ? textlen : 1)) == NULL)
		return 0;
	if ((fd = dup(devnull)) == -1)
		abort();
	conn_init(&fc.c, 5);
	conn_attach(&fc.c, fd, &feed_ops);
	for (i = 0; i < REPLIES_MAX; i++) {
		conn_step(&fc.c);
		error_clear(&err);
		rc = smtp_read_reply(&fc.c, &code, text, textlen, &err);
		CHECK(memchr(err.text, '\0', sizeof(err.text)) != NULL);
		if (rc != ST_OK) {
			CHECK(rc == ST_TEMP && (int)err.status == rc &&
			    err.text[0] != '\0');
			break;
		}
		CHECK(code >= 200 && code <= 599);
		check_text(code, text, textlen);
		check_qid(text, textlen);
	}
	CHECK(i < REPLIES_MAX);
	conn_close(&fc.c);
	free(text);
	return 0;
}
