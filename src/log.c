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
 * mutable file-scope state outside sendmail.c. The ident is Postfix's
 * shape, NAME/SERVICE (DESIGN.md "Logs"): NAME is always "postino" (what
 * pflogsumm --syslog-name=postino and logwatch match), SERVICE says which
 * part wrote the line (smtp, qmgr, pickup, bounce; otherwise the
 * personality, e.g. sendmail). ident is the buffer openlog(3) keeps a
 * pointer to; it is rewritten before each syslog(3) call.
 */
#define LOG_NAME	"postino"
#define SERVICE_MAX	24

static struct {
	int	 fd;
	char	 service[SERVICE_MAX];	/* the default service */
	char	 host[HOST_MAX];	/* LogFile lines: the short host name */
	char	 ident[sizeof(LOG_NAME) + SERVICE_MAX + 1];
} log_dest = { -1, "sendmail", "localhost", LOG_NAME "/sendmail" };

/*
 * A service name from argv[0] (whoever runs us chooses it): letters,
 * digits, '.', '_' and '-' only, else "sendmail". A '[', ':' or blank
 * would let it pose as another program's ident or a queue id.
 */
static void
set_service(char *dst, size_t dstlen, const char *src)
{
	const char *p;

	for (p = src; *p != '\0'; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
		    !(*p >= '0' && *p <= '9') && *p != '.' && *p != '_' &&
		    *p != '-')
			break;
	if (*p != '\0' || p == src || strlcpy(dst, src, dstlen) >= dstlen)
		(void)strlcpy(dst, "sendmail", dstlen);
}

/* The host name as syslog daemons write it: unqualified. */
static void
set_host(void)
{
	char name[HOST_MAX];
	size_t n;

	if (gethostname(name, sizeof(name)) != 0 || name[0] == '\0')
		return;
	name[sizeof(name) - 1] = '\0';
	n = strcspn(name, ". \t\r\n");
	name[n] = '\0';
	if (n > 0)
		(void)strlcpy(log_dest.host, name, sizeof(log_dest.host));
}

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
log_open(const char *service, const char *file)
{
	set_service(log_dest.service, sizeof(log_dest.service), service);
	(void)snprintf(log_dest.ident, sizeof(log_dest.ident), "%s/%s",
	    LOG_NAME, log_dest.service);
	set_host();
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
log_to_file(int priority, const char *service, const char *text)
{
	char line[2048], stamp[32];
	struct tm tm;
	time_t now = time(NULL);
	int n;

	(void)localtime_r(&now, &tm);
	(void)strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s %s %s/%s[%ld]: %s%s\n", stamp,
	    log_dest.host, LOG_NAME, service, (long)getpid(),
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

static void	log_vline(int, const char *, const char *, va_list)
		    __attribute__((format(printf, 3, 0)));

static void
log_vline(int priority, const char *service, const char *fmt, va_list ap)
{
	char text[1536];

	(void)vsnprintf(text, sizeof(text), fmt, ap);
	defang_controls(text);
	if (log_dest.fd != -1) {
		log_to_file(priority, service, text);
		return;
	}
	(void)snprintf(log_dest.ident, sizeof(log_dest.ident), "%s/%s",
	    LOG_NAME, service);
	openlog(log_dest.ident, LOG_PID, LOG_MAIL);
	syslog(priority, "%s", text);
}

void
log_line(int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline(priority, log_dest.service, fmt, ap);
	va_end(ap);
}

void
log_svc(int priority, enum log_service svc, const char *fmt, ...)
{
	static const char *const names[] = {
		[LOGSVC_PICKUP] = "pickup", [LOGSVC_QMGR] = "qmgr",
		[LOGSVC_SMTP] = "smtp", [LOGSVC_BOUNCE] = "bounce",
		[LOGSVC_CLEANUP] = "cleanup"
	};
	va_list ap;

	va_start(ap, fmt);
	log_vline(priority, names[svc], fmt, ap);
	va_end(ap);
}

/* Controls as \u00XX, 8-bit bytes as \u003f: the JSON stays ASCII. */
void
log_json_string(FILE *out, const char *s)
{
	(void)fputc('"', out);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			(void)fprintf(out, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			(void)fprintf(out, "\\u%04x", c < 0x20 ? c : '?');
		else
			(void)fputc(c, out);
	}
	(void)fputc('"', out);
}
