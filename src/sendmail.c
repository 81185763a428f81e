/*
 * sendmail.c: the front end. The personality (argv[0]), the sendmail
 * command line, main(), and the outcome table that maps each result to
 * an exit code, a stderr line and log lines. This is the only file that
 * talks to the user or decides an exit code; every other module returns
 * a status and fills a struct error.
 */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "postino.h"

/* What main() knows about the run, for stderr and the log. */
struct run {
	const char	*progname;
	struct caller	 c;		/* who sends, and the qid */
	int		 config_warnings; /* postino check */
	int		 debug;		/* Debug=YES: transcript to the log */
	int		 verbose;	/* -v: transcript to stdout */
};

static const char *progname = "sendmail";
/* -oeq and -bs: nothing on stderr (Symfony fails on any stderr byte). */
static int quiet;

static void
die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line on stderr: "sendmail: text". */
static void
say(const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (!quiet)
		(void)fprintf(stderr, "%s: %s\n", progname, text);
	else
		log_line(LOG_NOTICE, "%s", text);	/* not lost either */
}

static void
die_usage(const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	say("%s", text);
	message_drain(STDIN_FILENO);
	exit(EX_USAGE);
}

/* ------------------------------------------------------------ options */

/* Letters whose option takes an argument (attached or next element). */
static const char OPTS_WITH_ARG[] = "ABCFLMNOQRVXDdefhpr";
/* Letters accepted without an argument. */
static const char OPTS_FLAGS[] = "GIUTcimnstvx";

static void
set_body_type(struct options *o, const char *v)
{
	if (strcasecmp(v, "8BITMIME") == 0)
		o->body_8bit = 1;
	else if (strcasecmp(v, "7BIT") == 0)
		o->body_8bit = 0;
	else
		die_usage("-B: expected 7BIT or 8BITMIME, got '%s'", v);
}

static void
set_delivery(struct options *o, char mode)
{
	o->delivery = mode == 'b' ? DELIVER_BACKGROUND :
	    mode == 'q' || mode == 'd' ? DELIVER_QUEUE : DELIVER_NOW;
}

/* -O option=value: honour DeliveryMode and IgnoreDots, ignore the rest. */
static void
set_long_option(struct options *o, const char *v)
{
	size_t n = strcspn(v, "=");
	const char *val = v[n] == '=' ? v + n + 1 : "";

	if (n == strlen("IgnoreDots") && strncasecmp(v, "IgnoreDots", n) == 0)
		o->ignore_dots = val[0] == '\0' || strchr("TtYy1", val[0]);
	else if (n == strlen("DeliveryMode") &&
	    strncasecmp(v, "DeliveryMode", n) == 0) {
		if (val[0] == '\0' || val[1] != '\0' ||
		    !strchr("bqdi", val[0]))
			die_usage("-O DeliveryMode: expected b, q, d or i");
		set_delivery(o, val[0]);
	}
}

/* -o<x>[value]: Sendmail's short options; the value is attached. */
static void
set_short_option(struct options *o, const char *v)
{
	if (v[0] == '\0')
		die_usage("option -o requires an attached letter");
	switch (v[0]) {
	case 'i':
		o->ignore_dots = 1;
		break;
	case 'e':
		if (v[1] == '\0' || v[2] != '\0' || !strchr("pqmwe", v[1]))
			die_usage("-oe: expected one of p, q, m, w, e");
		o->error_mode = v[1];
		quiet = v[1] == 'q';
		break;
	case 'd':
		if (v[1] == '\0' || v[2] != '\0' || !strchr("ibqd", v[1]))
			die_usage("-od: expected one of i, b, q, d");
		set_delivery(o, v[1]);
		break;
	default:
		break;	/* -om -o7 -o8 -oQ... -oA... -oL...: ignored */
	}
}

static void
set_mode(struct options *o, const char *v)
{
	if (strcmp(v, "m") == 0)
		o->mode = MODE_SEND;
	else if (strcmp(v, "p") == 0)
		o->mode = MODE_LIST_QUEUE;
	else if (strcmp(v, "i") == 0)
		o->mode = MODE_ALIASES;
	else if (strcmp(v, "h") == 0 || strcmp(v, "H") == 0)
		o->mode = MODE_NOOP;
	else if (strcmp(v, "d") == 0 || strcmp(v, "D") == 0 ||
	    strcmp(v, "l") == 0)
		die_usage("-b%s: postino is not a daemon", v);
	else if (strcmp(v, "s") == 0)
		o->mode = MODE_SMTP;
	else if (strcmp(v, "v") == 0)
		o->mode = MODE_VERIFY;
	else
		die_usage("unsupported option -b%s", v);
}

/*
 * -q, -q15m (there is no daemon: one pass), -qf, -qp, -qI<id>,
 * -qR<site>, -qS<site>.
 */
static void
set_queue_run(struct options *o, const char *v)
{
	o->mode = MODE_RUN_QUEUE;
	if (v[0] == 'I') {
		if (v[1] == '\0')
			die_usage("-qI requires a queue id");
		o->filter.qid = v + 1;
		o->filter.force = 1;
	} else if (v[0] == 'R' || v[0] == 'S') {
		if (v[1] == '\0')
			die_usage("-q%c requires a site", v[0]);
		o->filter.domain = v + 1;
	}
}

/*
 * -N never | success,failure,delay (any order, any case). An invalid
 * value is ignored and logged: a mail client's DSN wish must not cost
 * the message.
 */
static void
set_dsn_notify(struct options *o, const char *v)
{
	static const char *const words[] = { "SUCCESS", "FAILURE", "DELAY" };
	char out[sizeof(o->dsn.notify)] = "";
	const char *p = v;
	size_t i, n;

	if (strcasecmp(v, "never") == 0) {
		(void)strlcpy(o->dsn.notify, "NEVER", sizeof(o->dsn.notify));
		return;
	}
	while (*p != '\0') {
		n = strcspn(p, ",");
		for (i = 0; i < 3; i++)
			if (strlen(words[i]) == n &&
			    strncasecmp(p, words[i], n) == 0)
				break;
		if (i == 3 || strstr(out, words[i]) != NULL) {
			o->dsn_ignored = v;
			return;
		}
		if (out[0] != '\0')
			(void)strlcat(out, ",", sizeof(out));
		(void)strlcat(out, words[i], sizeof(out));
		p += n + (p[n] == ',');
	}
	if (out[0] == '\0')
		o->dsn_ignored = v;
	else
		(void)strlcpy(o->dsn.notify, out, sizeof(o->dsn.notify));
}

/* -V envid, xtext-encoded (RFC 3461 4.4); too long: ignored. */
static void
set_dsn_envid(struct options *o, const char *v)
{
	size_t len = 0;

	for (; *v != '\0'; v++) {
		unsigned char c = (unsigned char)*v;
		int n;

		if (c > ' ' && c < 0x7f && c != '+' && c != '=')
			n = snprintf(o->dsn.envid + len,
			    sizeof(o->dsn.envid) - len, "%c", c);
		else
			n = snprintf(o->dsn.envid + len,
			    sizeof(o->dsn.envid) - len, "+%02X", c);
		if (n < 0 || (size_t)n >= sizeof(o->dsn.envid) - len) {
			o->dsn.envid[0] = '\0';
			return;
		}
		len += (size_t)n;
	}
}

static void
set_option_with_arg(struct options *o, char letter, const char *v)
{
	switch (letter) {
	case 'B':
		set_body_type(o, v);
		break;
	case 'C':
		o->config_path = v;
		break;
	case 'F':
		o->full_name = v;
		break;
	case 'f':
	case 'r':
		o->sender = v;
		break;
	case 'O':
		set_long_option(o, v);
		break;
	case 'N':
		o->dsn_options = 1;
		set_dsn_notify(o, v);
		break;
	case 'R':
		o->dsn_options = 1;
		if (strcasecmp(v, "hdrs") == 0 || strcasecmp(v, "full") == 0) {
			/*
			 * clang 14 forgets o->rcpt_args when strlcpy fills
			 * a field of *o, and calls that a leak.
			 */
			/* NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
			(void)strlcpy(o->dsn.ret, v, sizeof(o->dsn.ret));
			for (char *c = o->dsn.ret; *c != '\0'; c++)
				*c = (char)toupper((unsigned char)*c);
		} else
			o->dsn_ignored = v;
		break;
	case 'V':
		set_dsn_envid(o, v);
		break;
	default:
		break;	/* -A -L -N -R -V -X -D -M -Q -d -e -h -p: ignored */
	}
}

static void
set_flag(struct options *o, char letter)
{
	switch (letter) {
	case 'i':
		o->ignore_dots = 1;
		break;
	case 't':
		o->extract = 1;
		break;
	case 'v':
		o->verbose = 1;
		break;
	case 'I':
		o->mode = MODE_ALIASES;
		break;
	case 'n':
		o->no_alias = 1;
		break;
	default:
		break;	/* -G -U -T -c -m -n -s -x: ignored */
	}
}

/*
 * ssmtp's -au<user> and -am<method> override AuthUser and AuthMethod.
 * -ap<password> is refused: a password in argv is visible to every
 * local user in ps(1).
 */
static void
set_ssmtp_auth(struct options *o, int argc, char **argv, int *i)
{
	const char *p = argv[*i] + 2, *v;

	if (*p != 'u' && *p != 'm' && *p != 'p')
		die_usage("unsupported option -a%c", *p != '\0' ? *p : ' ');
	if (*p == 'p')
		die_usage("-ap: passwords on the command line are refused "
		    "(visible in ps); use AuthPass or AuthPassFile");
	v = p + 1;
	if (*v == '\0') {
		if (*i + 1 >= argc)
			die_usage("option -a%c requires an argument", *p);
		v = argv[++*i];
	}
	if (*p == 'u')
		o->auth_user = v;
	else if (strcasecmp(v, "plain") != 0 && strcasecmp(v, "login") != 0 &&
	    strcasecmp(v, "cram-md5") != 0)
		die_usage("-am: expected plain, login or cram-md5");
	else
		o->auth_method = v;
}

/*
 * One argv element that starts with '-': a cluster of flags, possibly
 * ending in a letter that takes an argument (attached, or the next
 * element, consumed through *i). Returns nothing: errors exit 64.
 */
static void
parse_option_element(struct options *o, int argc, char **argv, int *i)
{
	const char *p = argv[*i] + 1;

	if (*p == 'b') {
		if (p[1] == '\0')
			die_usage("option -b requires a mode letter");
		set_mode(o, p + 1);
		return;
	}
	if (*p == 'q') {
		set_queue_run(o, p + 1);
		return;
	}
	if (*p == 'o') {
		set_short_option(o, p + 1);
		return;
	}
	if (*p == 'a') {
		set_ssmtp_auth(o, argc, argv, i);
		return;
	}
	for (; *p != '\0'; p++) {
		if (strchr(OPTS_WITH_ARG, *p) != NULL) {
			const char *v = p + 1;

			if (*v == '\0') {
				if (*i + 1 >= argc) {
					if (*p == 'V')
						die_usage("option -V requires "
						    "an argument");
					die_usage("option -%c requires an "
					    "argument", *p);
				}
				v = argv[++*i];
			}
			set_option_with_arg(o, *p, v);
			return;
		}
		if (strchr(OPTS_FLAGS, *p) == NULL)
			die_usage("unsupported option -%c", *p);
		set_flag(o, *p);
	}
}

/*
 * Options are recognised anywhere before "--" (glibc, Sendmail 8 on
 * Linux and ssmtp do the same), so an option after an address is never
 * taken for a recipient.
 */
static void
parse_options(struct options *o, int argc, char **argv)
{
	int i, options_done = 0;

	o->rcpt_args = calloc((size_t)argc + 1, sizeof(char *));
	if (o->rcpt_args == NULL) {
		say("out of memory");
		exit(EX_OSERR);
	}
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!options_done && strcmp(a, "--") == 0)
			options_done = 1;
		else if (!options_done && strcmp(a, "--version") == 0)
			o->mode = MODE_VERSION;
		else if (!options_done && strcmp(a, "--help") == 0)
			die_usage("usage: %s [-i] [-t] [-f sender] "
			    "[-F name] [-C config] [-v] [--] "
			    "[recipient ...]; see postino(8)", progname);
		else if (!options_done && a[0] == '-' && a[1] != '\0')
			parse_option_element(o, argc, argv, &i);
		else
			o->rcpt_args[o->nrcpt_args++] = argv[i];
	}
}

/*
 * Invoked as postino, a first argument naming a subcommand runs it:
 * "queue" [--json | delete ID | hold ID | release ID].
 */
static int
parse_subcommand(struct options *o, int argc, char **argv)
{
	const char *words[3];
	int i, n = 0, q = 1;

	/* "postino -C file queue ..." as well as "postino queue -C file". */
	while (q < argc && strncmp(argv[q], "-C", 2) == 0)
		q += argv[q][2] == '\0' ? 2 : 1;
	if (q < argc && strcmp(argv[q], "verify") == 0) {
		/* postino verify ADDR...: sendmail -bv ADDR... */
		argv[q] = (char *)"-bv";
		return 0;
	}
	if (q < argc && strcmp(argv[q], "check") == 0) {
		argv[q] = (char *)"-bh";	/* a no-op flag in its place */
		parse_options(o, argc, argv);
		if (o->nrcpt_args > 0)
			die_usage("usage: postino check [-C config]");
		o->mode = MODE_CHECK;
		return 1;
	}
	if (q >= argc || strcmp(argv[q], "queue") != 0)
		return 0;
	o->mode = MODE_QUEUE_ADMIN;
	/* -C file may come anywhere, attached or not; the rest is words. */
	for (i = 1; i < argc; i++) {
		if (i == q)
			continue;
		if (strncmp(argv[i], "-C", 2) == 0) {
			if (argv[i][2] != '\0')
				o->config_path = argv[i] + 2;
			else if (i + 1 < argc)
				o->config_path = argv[++i];
			else
				die_usage("option -C requires an argument");
		} else if (n < 3)
			words[n++] = argv[i];
		else
			n = 4;
	}
	if (n == 1 && strcmp(words[0], "--json") == 0)
		o->json = 1;
	else if (n == 2 && (strcmp(words[0], "delete") == 0 ||
	    strcmp(words[0], "hold") == 0 || strcmp(words[0], "release") == 0)) {
		o->queue_action = words[0];
		o->filter.qid = words[1];
	} else if (n != 0)
		die_usage("usage: postino queue [-C config] [--json | delete ID "
		    "| hold ID | release ID]");
	return 1;
}

/* The personality comes from the basename of argv[0]. */
static enum mode
personality(const char *argv0)
{
	const char *base = strrchr(argv0, '/');

	base = base != NULL ? base + 1 : argv0;
	if (strncmp(base, "mailq", 5) == 0)
		return MODE_LIST_QUEUE;
	if (strncmp(base, "newaliases", 10) == 0)
		return MODE_ALIASES;
	return MODE_SEND;
}

/* ------------------------------------------------------- transcripts */

static void
transcript_line(void *arg, enum transcript_dir dir, const char *line,
    size_t len)
{
	const struct run *r = arg;
	const char *tag = dir == TR_SENT ? ">>> " :
	    dir == TR_RECEIVED ? "<<< " : "*** ";
	char clean[REPLY_LINE_MAX];

	log_sanitize(clean, sizeof(clean), line, len);
	if (r->verbose) {
		(void)printf("%s%s\n", tag, clean);
		(void)fflush(stdout);
	}
	if (r->debug)
		log_line(LOG_DEBUG, "%s: %s%s", r->c.qid, tag, clean);
}

/* ------------------------------------------------------------ helpers */

static void
log_config_warning(void *arg, const char *text)
{
	(void)arg;
	log_line(LOG_WARNING, "%s", text);
}

/* postino check: every warning on stderr, and any makes it fail. */
static void
count_config_warning(void *arg, const char *text)
{
	(*(int *)arg)++;
	say("%s", text);
}

/* Login and GECOS name of the real uid (never $USER or $LOGNAME). */
static void
identify_caller(struct run *r)
{
	struct passwd *pw;

	r->c.uid = getuid();
	pw = getpwuid(r->c.uid);
	if (pw != NULL && pw->pw_name[0] != '\0') {
		(void)strlcpy(r->c.login, pw->pw_name, sizeof(r->c.login));
		if (pw->pw_gecos != NULL) {
			(void)strlcpy(r->c.gecos, pw->pw_gecos,
			    sizeof(r->c.gecos));
			r->c.gecos[strcspn(r->c.gecos, ",")] = '\0';
		}
	} else
		(void)snprintf(r->c.login, sizeof(r->c.login), "uid%lu",
		    (unsigned long)r->c.uid);
}

/*
 * -C from an unprivileged caller: give up the setgid group before the
 * file is opened, so that -C cannot read what the group protects.
 */
static void
drop_group_for_config(const struct options *o)
{
	struct error err;

	if (o->config_path == NULL || getuid() == 0)
		return;
	if (priv_drop_for_good(&err) != ST_OK) {
		say("%s", err.text);
		exit(EX_OSERR);
	}
}

static int
load_config(struct config *cfg, const struct options *o, struct run *r)
{
	struct error err;

	error_clear(&err);
	drop_group_for_config(o);
	if (config_load(cfg, o->config_path != NULL ? o->config_path :
	    POSTINO_CONFFILE, o->mode == MODE_CHECK ? count_config_warning :
	    log_config_warning, &r->config_warnings, &err) != ST_OK) {
		say("%s", err.text);
		return EX_CONFIG;
	}
	log_open(r->progname, cfg->log_file);
	if (o->dsn_ignored != NULL) {
		char shown[64];

		log_sanitize(shown, sizeof(shown), o->dsn_ignored,
		    strlen(o->dsn_ignored));
		log_line(LOG_NOTICE, "ignored invalid DSN option value '%s'",
		    shown);
	}
	if (o->auth_user != NULL)
		(void)strlcpy(cfg->auth_user, o->auth_user,
		    sizeof(cfg->auth_user));
	if (o->auth_method != NULL)
		cfg->auth_method = strcasecmp(o->auth_method, "plain") == 0 ?
		    AUTH_PLAIN : strcasecmp(o->auth_method, "login") == 0 ?
		    AUTH_LOGIN : AUTH_CRAM_MD5;
	r->debug = cfg->debug;
	if (r->verbose || r->debug) {
		r->c.transcript = transcript_line;
		r->c.transcript_arg = r;
	}
	alias_domain(cfg, r->c.domain, sizeof(r->c.domain));
	alias_hostname(cfg, r->c.hostname, sizeof(r->c.hostname));
	/* A broken aliases file must not stop mail: relay unaliased. */
	if (alias_load_aliases(cfg->aliases_file, &r->c.aliases,
	    o->mode == MODE_CHECK ? count_config_warning : log_config_warning,
	    &r->config_warnings, &err) != ST_OK) {
		if (o->mode == MODE_CHECK) {
			say("%s", err.text);
			return EX_CONFIG;
		}
		log_line(LOG_ERR, "%s (aliases not used)", err.text);
		r->c.aliases = NULL;
	}
	error_clear(&r->c.rev_err);
	(void)alias_load_revaliases(cfg->revaliases, r->c.login, &r->c.rev,
	    &r->c.rev_err);
	return EX_OK;
}

/*
 * The configuration and revaliases are read: from here on the group is
 * held only inside the queue's own calls (queue.c).
 */
static int
drop_group(void)
{
	struct error err;

	if (priv_drop(&err) != ST_OK) {
		say("%s", err.text);
		return EX_OSERR;
	}
	return EX_OK;
}

/* ------------------------------------------------------ outcome table */

/* Exit code for a failed module call outside the SMTP transaction. */
static int
exit_for_status(enum status st)
{
	switch (st) {
	case ST_OK:
		return EX_OK;
	case ST_TEMP:
		return EX_TEMPFAIL;
	case ST_PERM:
		return EX_UNAVAILABLE;
	case ST_USAGE:
		return EX_USAGE;
	case ST_DATA:
		return EX_DATAERR;
	case ST_CONFIG:
		return EX_CONFIG;
	case ST_IOERR:
		return EX_IOERR;
	case ST_CANTCREAT:
		return EX_CANTCREAT;
	case ST_OSERR:
		return EX_OSERR;
	case ST_SOFTWARE:
		break;
	}
	return EX_SOFTWARE;
}

/* Exit code for a permanent refusal, by where the hub said no. */
static int
exit_for_refusal(enum smtp_stage stage)
{
	switch (stage) {
	case STAGE_MAIL:
		return EX_UNAVAILABLE;
	case STAGE_RCPT:
		return EX_NOUSER;
	case STAGE_DATA:
	case STAGE_DOT:
		return EX_DATAERR;
	default:
		return EX_UNAVAILABLE;
	}
}

/* Every recipient refused for good: one line each, as sendmail does. */
static void
tell_refusals(const struct outcome *out)
{
	const struct queue_entry *e = out->entry;
	size_t i;

	for (i = 0; e != NULL && i < e->nrcpt; i++)
		if (e->rcpt[i].state == RS_FAILED)
			say("%s... %s", e->rcpt[i].addr, e->rcpt[i].reply);
}

/* The outcome table of DESIGN.md: the exit code of a submission. */
static int
exit_code_of(const struct outcome *out, char error_mode)
{
	switch (out->kind) {
	case OUT_SENT:
	case OUT_QUEUED:
		return EX_OK;
	case OUT_REFUSED:
		return error_mode == 'e' ? EX_OK :
		    exit_for_refusal(out->stage);
	case OUT_NOT_QUEUED:
		return EX_CANTCREAT;	/* never 75: see DESIGN.md */
	case OUT_ERROR:
		break;
	}
	return exit_for_status(out->err.status);
}

/* Tell the caller what became of the message; return the exit code. */
static int
exit_for(const struct outcome *out, char error_mode)
{
	int code = exit_code_of(out, error_mode);

	if (out->kind == OUT_QUEUED && out->err.hint != HINT_NONE)
		say("warning: message queued, an administrator must act: %s",
		    out->err.text);
	else if (out->kind == OUT_REFUSED && code != EX_OK)
		tell_refusals(out);
	else if (out->kind == OUT_NOT_QUEUED)
		say("message not sent and not queued: %s", out->err.text);
	else if (out->kind == OUT_ERROR)
		say("%s", out->err.text);
	return code;
}

/* The last recipient refused ("ADDR... reply"), for a -bs reply. */
static void
last_refusal(const struct outcome *out, char *buf, size_t len)
{
	const struct queue_entry *e = out->entry;
	size_t i;

	buf[0] = '\0';
	for (i = 0; e != NULL && i < e->nrcpt; i++)
		if (e->rcpt[i].state == RS_FAILED)
			(void)snprintf(buf, len, "%s... %s", e->rcpt[i].addr,
			    e->rcpt[i].reply);
}

/* -bs: one transaction's outcome as the SMTP reply the client expects. */
static void
bs_reply_for(const struct outcome *out, char error_mode, char *reply,
    size_t len)
{
	char said[ADDR_MAX + REPLY_TEXT_MAX + 8], clean[ERR_MAX];

	if (out->kind == OUT_REFUSED)
		last_refusal(out, said, sizeof(said));
	else
		(void)strlcpy(said, out->err.text, sizeof(said));
	log_sanitize(clean, sizeof(clean), said, strlen(said));
	switch (exit_code_of(out, error_mode)) {
	case EX_OK:
		(void)snprintf(reply, len, "250 2.0.0 Ok: queued as %s",
		    out->qid);
		return;
	case EX_NOUSER:
		(void)snprintf(reply, len, "550 5.1.1 %s", clean);
		return;
	case EX_UNAVAILABLE:
		(void)snprintf(reply, len, "550 5.7.1 %s", clean);
		return;
	case EX_DATAERR:
	case EX_USAGE:
		(void)snprintf(reply, len, "554 5.6.0 %s", clean);
		return;
	default:
		(void)snprintf(reply, len, "451 4.3.0 Error: queue file "
		    "write error");
		return;
	}
}

/* ---------------------------------------------------------------- modes */

static void
deliver_ctx_for(const struct run *r, const struct config *cfg,
    struct deliver_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->cfg = cfg;
	ctx->domain = r->c.domain;
	ctx->hostname = r->c.hostname;
	ctx->transcript = r->c.transcript;
	ctx->transcript_arg = r->c.transcript_arg;
}

static int
run_queue(const struct config *cfg, struct run *r, const struct options *o)
{
	struct deliver_ctx ctx;
	struct error err;

	error_clear(&err);
	deliver_ctx_for(r, cfg, &ctx);
	if (runner_run(&ctx, &o->filter, &err) != ST_OK) {
		say("%s", err.text);
		return exit_for_status(err.status);
	}
	return EX_OK;
}

static int
queue_admin(const struct config *cfg, const struct options *o)
{
	struct error err;

	error_clear(&err);
	if (o->queue_action != NULL) {
		if (showq_change(cfg->queue_dir, o->queue_action,
		    o->filter.qid, &err) != ST_OK) {
			say("%s", err.text);
			return exit_for_status(err.status);
		}
		return EX_OK;
	}
	if (showq_list(stdout, cfg->queue_dir, o->json, &err) != ST_OK) {
		say("%s", err.text);
		return exit_for_status(err.status);
	}
	return EX_OK;
}

/* Send what stdin holds to the hub, or queue it. */
static int
send_from_stdin(const struct config *cfg, struct run *r,
    const struct options *o)
{
	struct addrlist args;
	struct queue_entry e;
	struct outcome out;
	int code;

	addrlist_init(&args);
	queue_entry_init(&e);
	memset(&out, 0, sizeof(out));
	if (submit_arg_recipients(o, &args, &out.err) != ST_OK) {
		message_drain(STDIN_FILENO);
		out.kind = OUT_ERROR;
	} else
		(void)submit_message(cfg, &r->c, o, STDIN_FILENO, &args, &e,
		    &out);
	code = exit_for(&out, o->error_mode);
	queue_entry_free(&e);
	addrlist_free(&args);
	return code;
}

struct bs_context {
	const struct config	*cfg;
	struct run		*run;
	const struct options	*opts;
};

/* Each -bs transaction takes the normal path: envelope from MAIL/RCPT. */
static int
bs_submit(void *arg, const char *sender, const struct addrlist *rcpts,
    int data_fd, char *reply, size_t replylen)
{
	struct bs_context *bc = arg;
	struct options so = *bc->opts;
	struct queue_entry e;
	struct outcome out;

	so.sender = sender;
	so.extract = 0;
	so.ignore_dots = 1;	/* the dialogue already ended DATA */
	message_new_qid(bc->run->c.qid);
	queue_entry_init(&e);
	(void)submit_message(bc->cfg, &bc->run->c, &so, data_fd, rcpts, &e,
	    &out);
	(void)exit_for(&out, so.error_mode);	/* logged: -bs is quiet */
	bs_reply_for(&out, so.error_mode, reply, replylen);
	queue_entry_free(&e);
	return exit_code_of(&out, so.error_mode) == EX_OK ? ST_OK : ST_PERM;
}

static int
serve_smtp(const struct config *cfg, struct run *r, const struct options *o)
{
	struct smtpd_params sp;
	struct bs_context bc = { cfg, r, o };
	struct error err;

	memset(&sp, 0, sizeof(sp));
	error_clear(&err);
	sp.in_fd = STDIN_FILENO;
	sp.out_fd = STDOUT_FILENO;
	sp.hostname = r->c.hostname;
	sp.spool_dir = cfg->queue_dir;
	sp.idle_timeout = 300;
	sp.submit = bs_submit;
	sp.submit_arg = &bc;
	if (smtpd_run(&sp, &err) != ST_OK) {
		log_line(LOG_ERR, "-bs: %s", err.text);
		return exit_for_status(err.status);
	}
	return EX_OK;
}

static void
print_line(void *arg, const char *line)
{
	(void)fprintf(arg, "%s\n", line);
}

/* -bv: where each argument would go; no connection, no queue. */
static int
verify(const struct config *cfg, const struct run *r, const struct options *o)
{
	struct error err;
	size_t i;
	int code = EX_OK;

	if (o->dsn_options || o->extract)
		die_usage("-bv cannot be combined with -t, -N or -R");
	if (o->nrcpt_args == 0)
		die_usage("-bv: no addresses to verify");
	for (i = 0; i < o->nrcpt_args; i++) {
		error_clear(&err);
		if (alias_verify_line(cfg, r->c.aliases, o->rcpt_args[i],
		    r->c.domain, r->c.hostname, o->no_alias, print_line, stdout,
		    &err) != ST_OK)
			code = err.status == ST_OSERR ? EX_OSERR : EX_NOUSER;
	}
	return code;
}

/*
 * postino check: the configuration as postino reads it, strictly: any
 * warning (an unknown key, a skipped alias line) fails with 78, for
 * configuration tools to run before they deploy.
 */
static int
check_config(const struct config *cfg, const struct run *r)
{
	if (r->c.rev_err.status != ST_OK) {
		say("%s", r->c.rev_err.text);
		return EX_CONFIG;
	}
	if (r->config_warnings > 0)
		return EX_CONFIG;
	(void)printf("%s: ok; hub %s port %s, %s, domain %s\n", cfg->path,
	    cfg->hub_host, cfg->hub_port, cfg->tls == TLS_STARTTLS ?
	    "STARTTLS" : cfg->tls == TLS_IMPLICIT ? "implicit TLS" :
	    "no TLS", r->c.domain);
	return EX_OK;
}

/* newaliases, -bi, -I: nothing to build; check the file and log. */
static int
check_aliases(const struct config *cfg)
{
	struct error err;
	size_t n = 0;

	error_clear(&err);
	if (alias_check_aliases(cfg->aliases_file, log_config_warning, NULL,
	    &n, &err) != ST_OK)
		log_line(LOG_ERR, "%s", err.text);
	else
		log_line(LOG_INFO, "%s: %zu aliases", cfg->aliases_file[0] ?
		    cfg->aliases_file : "(none)", n);
	return EX_OK;
}

static int
run_mode(const struct config *cfg, struct run *r, const struct options *o)
{
	switch (o->mode) {
	case MODE_SEND:
		return send_from_stdin(cfg, r, o);
	case MODE_SMTP:
		return serve_smtp(cfg, r, o);
	case MODE_LIST_QUEUE:
	case MODE_QUEUE_ADMIN:
		return queue_admin(cfg, o);
	case MODE_CHECK:
		return check_config(cfg, r);
	case MODE_RUN_QUEUE:
		return run_queue(cfg, r, o);
	case MODE_VERIFY:
		return verify(cfg, r, o);
	case MODE_ALIASES:
		return check_aliases(cfg);
	case MODE_NOOP:
	case MODE_VERSION:
		break;
	}
	return EX_OK;
}

int
main(int argc, char **argv)
{
	struct options o;
	struct config cfg;
	struct run r;
	int code;

	/* Secrets (AuthPass) will be in memory: no core dumps. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)signal(SIGPIPE, SIG_IGN);
	(void)umask(S_IRWXO);
	memset(&o, 0, sizeof(o));
	memset(&r, 0, sizeof(r));
	if (argc > 0 && argv[0] != NULL && argv[0][0] != '\0') {
		const char *base = strrchr(argv[0], '/');

		progname = base != NULL ? base + 1 : argv[0];
	}
	r.progname = progname;
	o.mode = personality(progname);
	if (strcmp(progname, "postino") != 0 ||
	    !parse_subcommand(&o, argc, argv))
		parse_options(&o, argc, argv);
	if (o.mode == MODE_VERSION) {
		(void)printf("postino %s\n", POSTINO_VERSION);
		free(o.rcpt_args);
		return EX_OK;
	}
	if (o.mode != MODE_SEND && o.mode != MODE_VERIFY && o.nrcpt_args > 0)
		die_usage("recipients are not allowed in this mode");
	if (o.extract && o.mode != MODE_SEND && o.mode != MODE_VERIFY)
		/* -bv -t is refused by verify() with its own words */
		die_usage("-t is only valid when sending a message");
	if (o.mode == MODE_SMTP) {
		quiet = 1;	/* -bs: stderr must stay empty */
		o.verbose = 0;	/* stdout is the dialogue */
	}
	r.verbose = o.verbose;
	identify_caller(&r);
	message_new_qid(r.c.qid);

	config_defaults(&cfg);
	if ((code = load_config(&cfg, &o, &r)) != EX_OK) {
		if (o.mode == MODE_SEND)
			message_drain(STDIN_FILENO);
		else if (o.mode == MODE_SMTP)
			(void)dprintf(STDOUT_FILENO, "421 4.3.5 postino "
			    "configuration error\r\n");
		config_free(&cfg);
		free(o.rcpt_args);
		return code;
	}
	if ((code = drop_group()) == EX_OK)
		code = run_mode(&cfg, &r, &o);
	alias_free_aliases(r.c.aliases);
	config_free(&cfg);
	free(o.rcpt_args);
	return code;
}

