/*
 * log.c: how outcomes are told. Error records that modules fill, the
 * sanitiser that makes untrusted text (hub replies, header values) safe
 * for a terminal or syslog, and the syslog lines themselves (facility
 * mail), which only main() and the queue runner write.
 *
 * Every log line passes through log_line(), which is where it is made
 * safe (issue 9 item 11): the ident (argv[0]'s basename, chosen by
 * whoever runs us) and the formatted text lose their control bytes, so
 * that no value (an -au name, an address, a hub's reply) can end the line
 * and forge another in LogFile or syslog. 8-bit bytes are kept: UTF-8
 * addresses stay readable and cannot end a line.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "postino.h"

int
error_set(struct error *err, enum status status, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return status;
	err->status = status;
	va_start(ap, fmt);
	(void)vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
	return status;
}

void
error_prefix(struct error *err, const char *fmt, ...)
{
	char prefix[ERR_MAX], old[ERR_MAX];
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	(void)strlcpy(old, err->text, sizeof(old));
	(void)strlcpy(err->text, prefix, sizeof(err->text));
	(void)strlcat(err->text, ": ", sizeof(err->text));
	(void)strlcat(err->text, old, sizeof(err->text));
}

void
error_clear(struct error *err)
{
	err->status = ST_OK;
	err->hint = HINT_NONE;
	err->text[0] = '\0';
}

char *
log_sanitize(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	size_t i, o = 0;

	if (dstlen == 0)
		return dst;
	for (i = 0; i < srclen && o + 1 < dstlen; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c == '\t')
			c = ' ';
		else if (c < 0x20 || c >= 0x7f)
			c = '?';
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return dst;
}

/*
 * Where lines go: syslog, or an append-only file (LogFile=). Set once by
 * main() before any line, like openlog(3)'s own hidden state; the only
 * mutable file-scope state outside sendmail.c.
 */
static struct {
	int	 fd;
	char	 ident[64];
} log_dest = { -1, "postino" };

/* Control bytes (C0 and DEL) become '?', a tab a space; in place. */
static void
defang_controls(char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\t')
			*s = ' ';
		else if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
	}
}

/*
 * LogFile is appended to, never created by the caller (issue 9 item 16):
 * a file a user's process made would be that user's, to truncate or
 * rewrite. Only root creates it: owner root, the group held now (the
 * set-group-ID group, main() reads the configuration with it), mode
 * 0660 so that every user's set-group-ID process can append to it.
 * Missing for anyone else: -1, and lines go to syslog.
 */
static int
log_file_open(const char *file)
{
	int flags = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW, fd;

	if ((fd = open(file, flags)) != -1 || errno != ENOENT ||
	    getuid() != 0)
		return fd;
	if ((fd = open(file, flags | O_CREAT | O_EXCL, 0660)) == -1)
		return open(file, flags);	/* another run made it */
	/* Without the group it is root's own 0660: still not the caller's. */
	if (fchown(fd, 0, getegid()) == 0)
		(void)fchmod(fd, 0660);
	return fd;
}

void
log_open(const char *ident, const char *file)
{
	(void)strlcpy(log_dest.ident, ident, sizeof(log_dest.ident));
	defang_controls(log_dest.ident);
	if (log_dest.fd != -1) {
		(void)close(log_dest.fd);
		log_dest.fd = -1;
	}
	if (file != NULL && file[0] != '\0' &&
	    (log_dest.fd = log_file_open(file)) != -1)
		return;
	openlog(log_dest.ident, LOG_PID, LOG_MAIL);
}

static void
log_to_file(int priority, const char *text)
{
	char line[2048], stamp[32];
	struct tm tm;
	time_t now = time(NULL);
	int n;

	(void)localtime_r(&now, &tm);
	(void)strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s %s[%ld]: %s%s\n", stamp,
	    log_dest.ident, (long)getpid(),
	    priority <= LOG_ERR ? "error: " :
	    priority == LOG_WARNING ? "warning: " : "", text);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	/* One write(2) with O_APPEND: concurrent writers do not interleave. */
	if (write(log_dest.fd, line, (size_t)n) != n)
		return;	/* nowhere left to report it */
}

void
log_line(int priority, const char *fmt, ...)
{
	char text[1536];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	defang_controls(text);
	if (log_dest.fd != -1)
		log_to_file(priority, text);
	else
		syslog(priority, "%s", text);
}
