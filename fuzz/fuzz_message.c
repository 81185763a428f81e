/*
 * fuzz_message.c: libFuzzer target for the message stage (message_read:
 * lineconv, the header scanner and rewriter, -t extraction). The input
 * becomes standard input through a memfd; the spool goes to a private
 * temporary directory that must stay empty (the spool file is unnamed),
 * which is checked after every run and removed at exit.
 *
 * Input layout:
 *   byte 0   options: bit 0 -i (ignore dots), bit 1 -t, bits 2-3 the
 *            domain (none, "", "example.org", "a.example"), bit 4 two
 *            AddHeader lines, bit 5 a -F name taken from the input (up
 *            to the first NUL, at most 300 bytes), bit 6 no HostName,
 *            bit 7 a default From: without '@'
 *   rest     [the -F name, NUL,] the message
 *
 * Checked on success, from the spool file read back: its size is the one
 * reported; it is wire form (every LF after a CR, every CR before an LF,
 * no CR CR LF, no NUL, no line over 998 octets, CRLF at the end); it starts with our
 * Received:, has a header block ended by an empty line, holds none of
 * the removed fields, and has a From: (Resent-From: in resent mode);
 * eight_bit and nul_bytes match. -t recipients are non-empty, bounded,
 * free of CR/LF. On error no spool descriptor is left open.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "postino.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***);

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

#define NAME_IN_MAX	300
#define READ_CHUNK	65536	/* message.c reads this much at a time */

/* Set up once: the input memfd and the spool directory. */
static struct {
	int	 in_fd;
	char	 spool[64];
} fx = { -1, "" };

static void
remove_spool(void)
{
	if (fx.spool[0] != '\0')
		(void)rmdir(fx.spool);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	if ((fx.in_fd = memfd_create("fuzz-stdin", MFD_CLOEXEC)) == -1)
		abort();
	if (tmp == NULL || tmp[0] == '\0' || snprintf(fx.spool,
	    sizeof(fx.spool), "%s/fuzz-spool.XXXXXX", tmp) >=
	    (int)sizeof(fx.spool))
		(void)strlcpy(fx.spool, "/tmp/fuzz-spool.XXXXXX",
		    sizeof(fx.spool));
	if (mkdtemp(fx.spool) == NULL) {
		perror(fx.spool);
		abort();
	}
	(void)atexit(remove_spool);
	return 0;
}

static void
check_spool_empty(void)
{
	struct dirent *d;
	DIR *dir;

	CHECK((dir = opendir(fx.spool)) != NULL);
	while ((d = readdir(dir)) != NULL)
		CHECK(strcmp(d->d_name, ".") == 0 ||
		    strcmp(d->d_name, "..") == 0);
	(void)closedir(dir);
}

static int
ascii_ncaseeq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int ca = (unsigned char)a[i], cb = (unsigned char)b[i];

		if (ca >= 'A' && ca <= 'Z')
			ca += 'a' - 'A';
		if (cb >= 'A' && cb <= 'Z')
			cb += 'a' - 'A';
		if (ca != cb)
			return 0;
	}
	return 1;
}

/* The field name of a header line (up to WSP or ':') is name? */
static int
field_is(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name), k = n;

	if (len < n + 1 || !ascii_ncaseeq(line, name, n))
		return 0;
	while (k < len && (line[k] == ' ' || line[k] == '\t'))
		k++;
	return k < len && line[k] == ':';
}

/* The header block: fields, continuation lines, then an empty line. */
static void
check_headers(const char *s, size_t len, const struct message *msg)
{
	static const char *const removed[] = {
		"Bcc", "Resent-Bcc", "Return-Path", "Content-Length"
	};
	const char *line = s, *end = s + len, *crlf;
	size_t n, i;
	int from = 0, ended = 0;

	CHECK(len >= 13 && memcmp(s, "Received: by ", 13) == 0);
	while (line < end) {
		crlf = memmem(line, (size_t)(end - line), "\r\n", 2);
		CHECK(crlf != NULL);
		n = (size_t)(crlf - line);
		if (n == 0) {
			ended = 1;
			break;
		}
		for (i = 0; i < sizeof(removed) / sizeof(removed[0]); i++)
			CHECK(!field_is(line, n, removed[i]));
		if (field_is(line, n, msg->resent ? "Resent-From" : "From"))
			from = 1;
		line = crlf + 2;
	}
	CHECK(ended);
	CHECK(from);
}

/* Wire form, as smtp.c sends it after dot-stuffing. */
static void
check_wire(const char *s, size_t len)
{
	size_t i, linelen = 0;

	CHECK(len >= 2 && s[len - 2] == '\r' && s[len - 1] == '\n');
	for (i = 0; i < len; i++) {
		CHECK(s[i] != '\0');
		CHECK(s[i] != '\r' || (i + 1 < len && s[i + 1] == '\n'));
		if (s[i] == '\n') {
			CHECK(i > 0 && s[i - 1] == '\r');
			CHECK(i < 2 || s[i - 2] != '\r');
			CHECK(linelen - 1 <= SMTP_LINE_MAX);
			linelen = 0;
		} else
			linelen++;
	}
}

static void
check_spool(const struct message *msg, size_t in_size, size_t in_nuls)
{
	struct stat st;
	char *s;
	size_t i;
	int eight = 0;

	CHECK(msg->fd != -1 && fstat(msg->fd, &st) == 0);
	CHECK(st.st_size == msg->size && msg->size > 0);
	CHECK((s = malloc((size_t)st.st_size)) != NULL);
	CHECK(pread(msg->fd, s, (size_t)st.st_size, 0) == st.st_size);
	check_wire(s, (size_t)st.st_size);
	check_headers(s, (size_t)st.st_size, msg);
	for (i = 0; i < (size_t)st.st_size; i++)
		if ((unsigned char)s[i] >= 0x80)
			eight = 1;
	CHECK(msg->eight_bit == eight);
	free(s);
	/* One read(2) takes all of a small input, NULs dropped before "." */
	if (in_size <= READ_CHUNK)
		CHECK(msg->nul_bytes == in_nuls);
	CHECK(lseek(msg->fd, 0, SEEK_CUR) == 0);
}

static void
check_rcpts(const struct message *msg)
{
	size_t i, n;

	CHECK(strnlen(msg->from_addr, sizeof(msg->from_addr)) <
	    sizeof(msg->from_addr));
	CHECK(strpbrk(msg->from_addr, "\r\n") == NULL);
	for (i = 0; i < msg->header_rcpts.n; i++) {
		n = strlen(msg->header_rcpts.v[i]);
		CHECK(n > 0 && n < ADDR_MAX);
		CHECK(strpbrk(msg->header_rcpts.v[i], "\r\n") == NULL);
	}
}

/* Options from byte 0 and the optional -F name; *in is the message. */
static void
options(const uint8_t **in, size_t *len, struct msgopts *o, char *name)
{
	static const char *const domains[] = {
		NULL, "", "example.org", "a.example"
	};
	static const char *const add[] = {
		"X-Mailer: fuzz", "Date: Thu, 01 Jan 1970 00:00:00 +0000"
	};
	const uint8_t *nul;
	unsigned flags = (*in)[0];
	size_t n;

	(*in)++;
	(*len)--;
	memset(o, 0, sizeof(*o));
	o->ignore_dots = (flags & 0x01) != 0;
	o->extract_rcpts = (flags & 0x02) != 0;
	o->domain = domains[(flags >> 2) & 0x03];
	if (flags & 0x10) {
		o->add_headers = add;
		o->add_header_count = 2;
	}
	name[0] = '\0';
	if ((flags & 0x20) && (nul = memchr(*in, '\0', *len)) != NULL &&
	    (n = (size_t)(nul - *in)) <= NAME_IN_MAX) {
		memcpy(name, *in, n);
		name[n] = '\0';
		*in += n + 1;
		*len -= n + 1;
	}
	o->full_name = name;
	o->hostname = (flags & 0x40) ? NULL : "host.example.org";
	o->default_from = (flags & 0x80) ? "www-data" : "www-data@example.org";
	o->qid = "0123456789";
	o->uid = 33;
	o->now = 1763775294;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[NAME_IN_MAX + 1];
	struct msgopts o;
	struct message msg;
	struct error err;
	size_t nuls = 0, i;
	int rc;

	if (size < 1)
		return 0;
	options(&data, &size, &o, name);
	for (i = 0; i < size; i++)
		nuls += data[i] == 0;
	CHECK(ftruncate(fx.in_fd, 0) == 0);
	CHECK(pwrite(fx.in_fd, data, size, 0) == (ssize_t)size);
	CHECK(lseek(fx.in_fd, 0, SEEK_SET) == 0);
	error_clear(&err);
	rc = message_read(fx.in_fd, fx.spool, &o, &msg, &err);
	CHECK(memchr(err.text, '\0', sizeof(err.text)) != NULL);
	if (rc == ST_OK) {
		check_spool(&msg, size, nuls);
		check_rcpts(&msg);
	} else {
		CHECK(rc == ST_DATA && (int)err.status == rc &&
		    err.text[0] != '\0');
		CHECK(msg.fd == -1 && msg.header_rcpts.n == 0);
	}
	message_free(&msg);
	check_spool_empty();
	return 0;
}
