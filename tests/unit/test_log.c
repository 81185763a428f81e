/*
 * test_log.c: log lines are made safe where they are written (issue 9
 * item 11): a newline in the ident (argv[0]) or in a logged value must
 * not start a forged line in LogFile. Also log_sanitize and the error
 * record helpers.
 */
#include <syslog.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

struct logfile {
	char	 dir[64];
	char	 path[96];
};

static int
setup(void **state)
{
	struct logfile *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	(void)strlcpy(f->dir, "/tmp/test_log.XXXXXX", sizeof(f->dir));
	if (mkdtemp(f->dir) == NULL)
		return -1;
	(void)snprintf(f->path, sizeof(f->path), "%s/postino.log", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct logfile *f = *state;

	log_open("postino", NULL);	/* closes the file */
	(void)unlink(f->path);
	(void)rmdir(f->dir);
	free(f);
	return 0;
}

/* The whole log file, NUL-terminated. */
static char *
slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf = calloc(1, 65536);
	size_t n;

	assert_non_null(fp);
	assert_non_null(buf);
	n = fread(buf, 1, 65535, fp);
	buf[n] = '\0';
	(void)fclose(fp);
	return buf;
}

static size_t
count_char(const char *s, char c)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == c;
	return n;
}

static void
t_ident_newline(void **state)
{
	struct logfile *f = *state;
	char *text;

	log_open("sendmail\nDec  1 00:00:00 postino[1]: FORGED", f->path);
	log_line(LOG_INFO, "hello");
	text = slurp(f->path);
	assert_int_equal(count_char(text, '\n'), 1);
	/* Not a plain name: the service is "sendmail", nothing of argv[0]. */
	assert_null(strstr(text, "FORGED"));
	assert_non_null(strstr(text, " postino/sendmail["));
	assert_non_null(strstr(text, "]: hello\n"));
	free(text);
}

/* Postfix's shape: "Mon dd hh:mm:ss host postino/SERVICE[pid]: text". */
static void
t_ident_service_and_host(void **state)
{
	struct logfile *f = *state;
	char *text, host[256], want[320];
	int n = 0;

	log_open("mailq", f->path);
	log_line(LOG_INFO, "one");
	log_svc(LOG_INFO, LOGSVC_SMTP, "two");
	log_svc(LOG_INFO, LOGSVC_PICKUP, "three");
	text = slurp(f->path);
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	host[strcspn(host, ".")] = '\0';
	(void)snprintf(want, sizeof(want), " %s postino/mailq[", host);
	assert_non_null(strstr(text, want));
	(void)snprintf(want, sizeof(want), " %s postino/smtp[", host);
	assert_non_null(strstr(text, want));
	assert_non_null(strstr(text, " postino/pickup["));
	/* The stamp, then one blank and the host name: syslog's layout. */
	assert_int_equal(sscanf(text, "%*3s %*d %*d:%*d:%*d %n", &n), 0);
	assert_true(n > 0 && strncmp(text + n, host, strlen(host)) == 0);
	free(text);
}

static void
t_line_controls(void **state)
{
	struct logfile *f = *state;
	char *text;

	log_open("postino", f->path);
	log_line(LOG_WARNING, "user %s logged in", "bob\nDec  1 00:00:00 "
	    "postino[1]: 0123456789: to=<x@y>, status=sent\r\x1b[2J\t\x7f");
	text = slurp(f->path);
	assert_int_equal(count_char(text, '\n'), 1);
	assert_null(strchr(text, '\r'));
	assert_null(strchr(text, '\x1b'));
	assert_null(strchr(text, '\t'));
	assert_null(strchr(text, '\x7f'));
	assert_non_null(strstr(text, "warning: user bob?Dec  1 00:00:00 "
	    "postino[1]: 0123456789: to=<x@y>, status=sent??[2J ? logged "
	    "in\n"));
	free(text);
}

/* UTF-8 (SMTPUTF8 addresses) is kept: it cannot end a line. */
static void
t_line_utf8_kept(void **state)
{
	struct logfile *f = *state;
	char *text;

	log_open("postino", f->path);
	log_line(LOG_INFO, "to=<j\xc3\xb6rg@example.org>");
	text = slurp(f->path);
	assert_non_null(strstr(text, "to=<j\xc3\xb6rg@example.org>\n"));
	free(text);
}

static void
t_sanitize(void **state)
{
	char out[16];

	(void)state;
	assert_string_equal(log_sanitize(out, sizeof(out), "a\r\nb\tc\x80", 7),
	    "a??b c?");
	assert_string_equal(log_sanitize(out, 4, "abcdef", 6), "abc");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(t_ident_service_and_host,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(t_ident_newline, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(t_line_controls, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(t_line_utf8_kept, setup,
		    teardown),
		cmocka_unit_test(t_sanitize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
