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

enum mode {
	MODE_SEND,		/* -bm, the default */
	MODE_SMTP,		/* -bs */
	MODE_LIST_QUEUE,	/* -bp, mailq */
	MODE_RUN_QUEUE,		/* -q... */
	MODE_ALIASES,		/* -bi, -I, newaliases */
	MODE_NOOP,		/* -bh, -bH */
	MODE_VERIFY,		/* -bv */
	MODE_VERSION,		/* --version */
	MODE_QUEUE_ADMIN,	/* postino queue ... */
	MODE_CHECK		/* postino check */
};

enum delivery {
	DELIVER_NOW = 0,	/* -odi, the default: synchronous */
	DELIVER_BACKGROUND,	/* -odb: commit, deliver detached */
	DELIVER_QUEUE		/* -odq, -odd: commit only */
};

struct options {
	enum mode	 mode;
	const char	*config_path;	/* -C */
	const char	*sender;	/* -f / -r, NULL when not given */
	const char	*full_name;	/* -F */
	int		 extract;	/* -t */
	int		 ignore_dots;	/* -i, -oi, -O IgnoreDots */
	int		 verbose;	/* -v */
	int		 body_8bit;	/* -B8BITMIME */
	int		 no_alias;	/* -n */
	int		 dsn_options;	/* -N or -R given (refused with -bv) */
	struct dsn	 dsn;		/* what -N, -R, -V asked for */
	const char	*dsn_ignored;	/* an invalid -N/-R value, to log */
	enum delivery	 delivery;	/* -od?, -O DeliveryMode */
	char		 error_mode;	/* -oe?: p (default), q, m, w, e */
	struct runner_filter filter;	/* -qI, -qR */
	const char	*queue_action;	/* postino queue ACTION */
	const char	*auth_user;	/* ssmtp's -au */
	const char	*auth_method;	/* ssmtp's -am */
	int		 json;		/* postino queue --json */
	char		**rcpt_args;	/* operands */
	size_t		 nrcpt_args;
};

/* What main() knows about the run, for stderr and the log. */
struct run {
	const char	*progname;
	char		 qid[QID_MAX];
	uid_t		 uid;
	char		 login[64];
	char		 gecos[NAME_MAX_];
	char		 domain[HOST_MAX];
	char		 hostname[HOST_MAX];
	struct aliases	*aliases;	/* AliasesFile, NULL: none */
	int		 config_warnings; /* postino check */
	int		 debug;		/* Debug=YES: transcript to the log */
	int		 verbose;	/* -v: transcript to stdout */
};

static const char *progname = "sendmail";
/* -oeq and -bs: nothing on stderr (Symfony fails on any stderr byte). */
static int quiet;
/* The last problem told, for a -bs reply. */
static char last_said[ERR_MAX];

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
	(void)strlcpy(last_said, text, sizeof(last_said));
	if (!quiet)
		(void)fprintf(stderr, "%s: %s\n", progname, text);
	else
		log_line(LOG_NOTICE, "%s", text);	/* not lost either */
}

/*
 * Read stdin to EOF before an error exit, so that a writer such as git
 * send-email or MIME::Lite sees our exit status and not EPIPE: the one
 * drain, with its one deadline, in message.c.
 */
static void
drain_stdin(void)
{
	message_drain(STDIN_FILENO);
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
	drain_stdin();
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
		log_line(LOG_DEBUG, "%s: %s%s", r->qid, tag, clean);
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

	r->uid = getuid();
	pw = getpwuid(r->uid);
	if (pw != NULL && pw->pw_name[0] != '\0') {
		(void)strlcpy(r->login, pw->pw_name, sizeof(r->login));
		if (pw->pw_gecos != NULL) {
			(void)strlcpy(r->gecos, pw->pw_gecos,
			    sizeof(r->gecos));
			r->gecos[strcspn(r->gecos, ",")] = '\0';
		}
	} else
		(void)snprintf(r->login, sizeof(r->login), "uid%lu",
		    (unsigned long)r->uid);
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
	alias_domain(cfg, r->domain, sizeof(r->domain));
	alias_hostname(cfg, r->hostname, sizeof(r->hostname));
	/* A broken aliases file must not stop mail: relay unaliased. */
	if (alias_load_aliases(cfg->aliases_file, &r->aliases,
	    o->mode == MODE_CHECK ? count_config_warning : log_config_warning,
	    &r->config_warnings, &err) != ST_OK) {
		if (o->mode == MODE_CHECK) {
			say("%s", err.text);
			return EX_CONFIG;
		}
		log_line(LOG_ERR, "%s (aliases not used)", err.text);
		r->aliases = NULL;
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

/* ------------------------------------------------------- the send path */

static int
collect_arg_recipients(const struct options *o, struct addrlist *out)
{
	struct error err;
	size_t i;

	error_clear(&err);
	for (i = 0; i < o->nrcpt_args; i++) {
		const char *a = o->rcpt_args[i];

		if (addr_list_parse(a, strlen(a), out, &err) != ST_OK) {
			char shown[ADDR_MAX];

			/* One stderr line: no CR/LF of the caller's in it. */
			log_sanitize(shown, sizeof(shown), a, strlen(a));
			say("%s: %s", shown[0] != '\0' ? shown : "(empty)",
			    err.text);
			return err.status == ST_DATA ? EX_DATAERR :
			    exit_for_status(err.status);
		}
	}
	return EX_OK;
}

/*
 * The envelope sender as far as it is known before the message is read
 * (revaliases > -f > login@domain); it also goes into an added From:.
 */
static int
sender_before_reading(const struct config *cfg, const struct run *r,
    const struct options *o, const struct revalias *rev, char *out,
    size_t outlen)
{
	char fsender[ADDR_MAX];
	struct error err;

	error_clear(&err);
	if (o->sender != NULL && (addr_parse_one(o->sender, fsender,
	    sizeof(fsender), &err) != ST_OK || (fsender[0] != '\0' &&
	    !addr_is_safe(fsender)))) {
		say("-f: %s", err.text[0] != '\0' ? err.text :
		    "unsafe address");
		return EX_DATAERR;
	}
	if (alias_default_sender(cfg, rev, o->sender != NULL ? fsender :
	    NULL, r->login, r->domain, out, outlen, &err) != ST_OK) {
		say("%s", err.text);
		return err.status == ST_CONFIG ? EX_CONFIG : EX_DATAERR;
	}
	return EX_OK;
}

/* Aliases, Root= and qualification, then duplicates collapse. */
static int
map_recipients(const struct config *cfg, const struct run *r,
    const struct options *o, const struct addrlist *in, struct addrlist *out)
{
	struct error err;
	size_t i;

	error_clear(&err);
	for (i = 0; i < in->n; i++)
		if (alias_expand(cfg, r->aliases, in->v[i], r->domain,
		    r->hostname, o->no_alias, out, &err) != ST_OK) {
			say("%s... %s", in->v[i], err.text);
			return exit_for_status(err.status);
		}
	return EX_OK;
}

/*
 * The message as an uncommitted queue entry: the synchronous attempt and
 * the queue runner share one delivery path.
 */
static int
build_entry(struct queue_entry *e, const struct run *r, const char *sender,
    const struct addrlist *rcpts, const struct message *msg,
    const struct route *rt, int body_8bit, struct dsn dsn)
{
	struct error err;
	size_t i;

	(void)strlcpy(e->qid, r->qid, sizeof(e->qid));
	e->queued = e->next_retry = time(NULL);
	e->uid = r->uid;
	(void)strlcpy(e->sender, sender, sizeof(e->sender));
	e->size = msg->size;
	e->body_8bit = body_8bit;
	e->route = *rt;
	e->dsn = dsn;
	for (i = 0; i < rcpts->n; i++)
		if (queue_entry_add_rcpt(e, rcpts->v[i], RS_PENDING, &err) !=
		    ST_OK) {
			say("%s", err.text);
			return exit_for_status(err.status);
		}
	return EX_OK;
}

static void
count_states(const struct queue_entry *e, size_t *sent, size_t *failed,
    size_t *pending)
{
	size_t i;

	*sent = *failed = *pending = 0;
	for (i = 0; i < e->nrcpt; i++) {
		if (e->rcpt[i].state == RS_SENT)
			(*sent)++;
		else if (e->rcpt[i].state == RS_FAILED)
			(*failed)++;
		else
			(*pending)++;
	}
}

/* Commit, or exit 73: the caller keeps responsibility (never 75). */
static int
commit(const struct config *cfg, const struct queue_entry *e, int fd,
    int failed)
{
	struct error err;

	error_clear(&err);
	if (queue_commit(cfg->queue_dir, e, fd, failed, &err) != ST_OK) {
		log_line(LOG_ERR, "%s: cannot queue: %s", e->qid, err.text);
		say("message not sent and not queued: %s", err.text);
		return EX_CANTCREAT;
	}
	log_line(LOG_INFO, "%s: %s", e->qid, failed ? "kept in the failed "
	    "area" : "queued for a later attempt");
	return EX_OK;
}

/*
 * A detached child (new session, stdio on /dev/null, so no caller waits
 * for it) runs one queue pass: only qid when given.
 */
static void
spawn_runner(const struct runner_ctx *ctx, const char *qid)
{
	struct runner_filter f;
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
	memset(&f, 0, sizeof(f));
	f.qid = qid;
	f.force = qid != NULL;
	error_clear(&err);
	(void)runner_run(ctx, &f, &err);
	_exit(0);
}

/* All recipients refused for good: exit by where the hub said no. */
static int
report_refusal(const struct queue_entry *e, enum smtp_stage stage)
{
	size_t i;

	for (i = 0; i < e->nrcpt; i++)
		say("%s... %s", e->rcpt[i].addr, e->rcpt[i].reply);
	return exit_for_refusal(stage);
}

/*
 * The outcome table of DESIGN.md for one submission, after one attempt
 * (or none, when the hub is known to be down or the caller asked to
 * queue): sent, queued, failed area, bounce.
 */
static int
settle_submission(const struct config *cfg, const struct runner_ctx *ctx,
    struct hub_session *hs, struct queue_entry *e, struct message *msg,
    const struct error *why, char error_mode)
{
	char bqid[QID_MAX];
	size_t sent, failed, pending;
	struct error err;
	/* Where the hub said no, before a bounce reuses the session. */
	enum smtp_stage stage = hs->res.stage;
	int code, refused = 0;

	error_clear(&err);
	bqid[0] = '\0';
	count_states(e, &sent, &failed, &pending);
	if (pending > 0) {
		if ((code = commit(cfg, e, msg->fd, 0)) != EX_OK)
			return code;
		if (why->hint != HINT_NONE)
			say("warning: message queued, an administrator must "
			    "act: %s", why->text);
	} else if (sent == 0) {
		/*
		 * Every recipient refused: the caller is told. Only the error
		 * modes that mail errors back (-oem, -oew, -oee) also bounce.
		 */
		if (strchr("mwe", error_mode) == NULL)
			for (size_t i = 0; i < e->nrcpt; i++)
				e->rcpt[i].notify = 0;
		(void)commit(cfg, e, msg->fd, 1);
		refused = 1;
	}
	if (failed > 0 && runner_bounce(ctx, e, msg->fd, bqid, &err) !=
	    ST_OK) {
		/* The report is owed: the queue keeps it until it is sent. */
		log_line(LOG_ERR, "%s: %s", e->qid, err.text);
		if (pending == 0 && !refused &&
		    (code = commit(cfg, e, msg->fd, 0)) != EX_OK)
			return code;
	}
	if (failed > 0 && bqid[0] != '\0' && !hs->failed) {
		struct queue_entry b;

		/* Deliver the bounce now over the same session. */
		queue_entry_init(&b);
		if (queue_lock_entry(cfg->queue_dir, bqid, &b, &err) == ST_OK) {
			if (runner_attempt(ctx, hs, &b, b.data_fd, &err) ==
			    ST_OK)
				(void)queue_remove(cfg->queue_dir, &b, &err);
			else
				(void)queue_update(cfg->queue_dir, &b, &err);
		}
		queue_entry_free(&b);
	}
	if (refused)
		return error_mode == 'e' ? EX_OK : report_refusal(e, stage);
	/* From <>, refused recipients are never bounced: keep it listed. */
	if (failed > 0 && pending == 0 && e->sender[0] == '\0')
		(void)commit(cfg, e, msg->fd, 1);
	return EX_OK;
}

/* Deliver now, unless the caller or the hub's health says queue. */
static int
deliver(const struct config *cfg, struct run *r, const struct options *o,
    struct queue_entry *e, struct message *msg, const struct route *hub)
{
	struct runner_ctx ctx;
	struct hub_session hs;
	struct error why;
	long long down;
	int code;

	memset(&ctx, 0, sizeof(ctx));
	memset(&hs, 0, sizeof(hs));
	error_clear(&why);
	ctx.cfg = cfg;
	ctx.domain = r->domain;
	ctx.hostname = r->hostname;
	if (r->verbose || r->debug) {
		ctx.transcript = transcript_line;
		ctx.transcript_arg = r;
	}
	if (priv_regain(&why) != ST_OK) {	/* queue steps ahead */
		say("%s", why.text);
		return EX_OSERR;
	}
	if (o->delivery != DELIVER_NOW) {
		if ((code = commit(cfg, e, msg->fd, 0)) == EX_OK &&
		    o->delivery == DELIVER_BACKGROUND) {
			message_free(msg);	/* release the entry's lock */
			spawn_runner(&ctx, e->qid);
		}
		return code;
	}
	down = queue_hub_down_since(cfg->queue_dir, hub, why.text,
	    sizeof(why.text));
	if (down >= 0 && down < cfg->hub_backoff) {
		(void)snprintf(e->last_error, sizeof(e->last_error), "hub "
		    "%s:%s failed %llds ago, not tried (HubBackoff): %s",
		    hub->host, hub->port, down, why.text);
		e->next_retry = time(NULL);	/* not tried: due at once */
		log_line(LOG_NOTICE, "%s: status=deferred (%s)", e->qid,
		    e->last_error);
		return commit(cfg, e, msg->fd, 0);
	}
	error_clear(&why);
	(void)runner_attempt(&ctx, &hs, e, msg->fd, &why);
	code = settle_submission(cfg, &ctx, &hs, e, msg, &why,
	    o->error_mode != '\0' ? o->error_mode : 'p');
	runner_session_close(&hs);
	if (code == EX_OK && !hs.failed && runner_has_due(cfg->queue_dir) &&
	    !runner_active(cfg->queue_dir)) {
		message_free(msg);
		spawn_runner(&ctx, NULL);
	}
	return code;
}

/*
 * Stream in_fd into a spool file made (with the group) in the queue
 * directory, rewriting the header as it goes; parsing runs without the
 * group. Returns the exit code; the problem is told on stderr.
 */
static int
read_message(const struct config *cfg, const struct run *r,
    const struct options *o, int in_fd, const char *default_sender,
    struct message *msg)
{
	struct msgopts mo;
	struct error err;
	int spool_fd = -1;

	error_clear(&err);
	memset(&mo, 0, sizeof(mo));
	mo.ignore_dots = o->ignore_dots;
	mo.extract_rcpts = o->extract;
	mo.domain = r->domain;
	mo.hostname = r->hostname;
	mo.default_from = default_sender;
	mo.full_name = o->full_name != NULL ? o->full_name :
	    getenv("NAME") != NULL ? getenv("NAME") : r->gecos;
	mo.qid = r->qid;
	mo.uid = r->uid;
	mo.now = time(NULL);
	mo.add_headers = (const char *const *)cfg->add_header;
	mo.add_header_count = cfg->add_header_count;
	mo.max_size = cfg->max_message_size;
	if (message_spool_create(cfg->queue_dir, &spool_fd, &err) != ST_OK ||
	    priv_drop(&err) != ST_OK) {
		if (spool_fd != -1)
			(void)close(spool_fd);
		say("%s", err.text);
		return exit_for_status(err.status);
	}
	mo.spool_fd = &spool_fd;
	if (message_read(in_fd, cfg->queue_dir, &mo, msg, &err) != ST_OK) {
		say("%s", err.text);
		return exit_for_status(err.status);
	}
	if (msg->nul_bytes > 0)
		log_line(LOG_WARNING, "%s: removed %zu NUL bytes from the "
		    "message", r->qid, msg->nul_bytes);
	if (msg->lines_split > 0)
		log_line(LOG_NOTICE, "%s: split %zu lines longer than %d "
		    "octets", r->qid, msg->lines_split, SMTP_LINE_MAX);
	return EX_OK;
}

/*
 * Read the message from in_fd, settle sender and recipients (given: argv
 * or RCPT, plus -t), relay or queue. Returns the exit code.
 */
static int
send_message(const struct config *cfg, struct run *r, const struct options *o,
    int in_fd, const struct addrlist *given)
{
	struct addrlist all, rcpts;
	struct queue_entry entry;
	struct revalias rev;
	struct message msg;
	struct route rt, hub;
	struct error err;
	char default_sender[ADDR_MAX], sender[ADDR_MAX];
	size_t i;
	int code, warn = 0;

	memset(&msg, 0, sizeof(msg));
	memset(&rev, 0, sizeof(rev));
	msg.fd = -1;
	error_clear(&err);
	queue_entry_init(&entry);
	addrlist_init(&all);
	addrlist_init(&rcpts);

	if (alias_load_revaliases(cfg->revaliases, r->login, &rev, &err) !=
	    ST_OK) {
		say("%s", err.text);
		code = exit_for_status(err.status);
		goto drain;
	}
	if ((code = sender_before_reading(cfg, r, o, &rev, default_sender,
	    sizeof(default_sender))) != EX_OK)
		goto drain;

	if ((code = read_message(cfg, r, o, in_fd, default_sender, &msg)) !=
	    EX_OK) {
		if (code != EX_IOERR && code != EX_OSERR)
			goto drain;	/* e.g. a -t header that does not parse */
		goto out;
	}

	for (i = 0; i < given->n; i++)
		if (addrlist_add(&all, given->v[i], &err) != ST_OK)
			goto fail;
	for (i = 0; i < msg.header_rcpts.n; i++)
		if (addrlist_add(&all, msg.header_rcpts.v[i], &err) != ST_OK)
			goto fail;
	if (all.n == 0) {
		say(o->extract ? "No recipient addresses found in message "
		    "header" : "Recipient addresses must be specified on "
		    "the command line or via the -t option");
		code = EX_USAGE;
		goto out;
	}
	if ((code = map_recipients(cfg, r, o, &all, &rcpts)) != EX_OK)
		goto out;
	if (alias_final_sender(cfg, &msg, default_sender, r->domain,
	    sender, sizeof(sender), &err) != ST_OK)
		goto fail;
	if (sender[0] != '\0' && !addr_is_safe(sender)) {
		say("sender <%s>: unsafe address", sender);
		code = EX_DATAERR;
		goto out;
	}
	alias_route(cfg, &rev, &hub);
	rt = hub;
	if (!rev.found || rev.hub_host[0] == '\0')
		memset(&rt, 0, sizeof(rt));	/* MailHub, whatever it is then */
	if ((code = build_entry(&entry, r, sender, &rcpts, &msg, &rt,
	    o->body_8bit || msg.eight_bit, o->dsn)) != EX_OK)
		goto out;
	if (priv_regain(&err) != ST_OK ||
	    ratelimit_take(cfg, r->uid, r->login, &warn, &err) != ST_OK) {
		if (warn)
			log_line(LOG_WARNING, "%s", err.text);
		goto fail;
	}
	log_line(LOG_INFO, "%s: uid=%lu from=<%s>, size=%lld, nrcpt=%zu",
	    r->qid, (unsigned long)r->uid, sender, (long long)msg.size,
	    entry.nrcpt);
	code = deliver(cfg, r, o, &entry, &msg, &hub);
	goto out;
fail:
	say("%s", err.text);
	code = exit_for_status(err.status);
	goto out;
drain:
	if (in_fd == STDIN_FILENO)
		drain_stdin();
out:
	queue_entry_free(&entry);
	message_free(&msg);
	addrlist_free(&all);
	addrlist_free(&rcpts);
	return code;
}

/* ---------------------------------------------------------------- modes */

static int
run_queue(const struct config *cfg, struct run *r, const struct options *o)
{
	struct runner_ctx ctx;
	struct error err;

	memset(&ctx, 0, sizeof(ctx));
	error_clear(&err);
	ctx.cfg = cfg;
	ctx.domain = r->domain;
	ctx.hostname = r->hostname;
	ctx.from_queue = 1;
	if (r->verbose || r->debug) {
		ctx.transcript = transcript_line;
		ctx.transcript_arg = r;
	}
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

static int
send_from_stdin(const struct config *cfg, struct run *r,
    const struct options *o)
{
	struct addrlist args;
	int code;

	addrlist_init(&args);
	if ((code = collect_arg_recipients(o, &args)) != EX_OK)
		drain_stdin();
	else
		code = send_message(cfg, r, o, STDIN_FILENO, &args);
	addrlist_free(&args);
	return code;
}

/* -bs: one transaction's outcome as the SMTP reply the client expects. */
static void
smtp_reply_for(int code, const char *qid, char *reply, size_t len)
{
	switch (code) {
	case EX_OK:
		(void)snprintf(reply, len, "250 2.0.0 Ok: queued as %s", qid);
		return;
	case EX_NOUSER:
		(void)snprintf(reply, len, "550 5.1.1 %s", last_said);
		return;
	case EX_UNAVAILABLE:
		(void)snprintf(reply, len, "550 5.7.1 %s", last_said);
		return;
	case EX_DATAERR:
	case EX_USAGE:
		(void)snprintf(reply, len, "554 5.6.0 %s", last_said);
		return;
	default:
		(void)snprintf(reply, len, "451 4.3.0 Error: queue file "
		    "write error");
		return;
	}
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
	char clean[ERR_MAX];
	int code;

	so.sender = sender;
	so.extract = 0;
	so.ignore_dots = 1;	/* the dialogue already ended DATA */
	message_new_qid(bc->run->qid);
	last_said[0] = '\0';
	code = send_message(bc->cfg, bc->run, &so, data_fd, rcpts);
	/* The next DATA's spool file is made in the queue directory. */
	(void)priv_regain(&(struct error){ 0 });
	log_sanitize(clean, sizeof(clean), last_said, strlen(last_said));
	(void)strlcpy(last_said, clean, sizeof(last_said));
	smtp_reply_for(code, bc->run->qid, reply, replylen);
	return code == EX_OK ? ST_OK : ST_PERM;
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
	sp.hostname = r->hostname;
	sp.spool_dir = cfg->queue_dir;
	sp.idle_timeout = 300;
	sp.max_size = cfg->max_message_size;
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
		if (alias_verify_line(cfg, r->aliases, o->rcpt_args[i],
		    r->domain, r->hostname, o->no_alias, print_line, stdout,
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
	struct revalias rev;
	struct error err;

	error_clear(&err);
	memset(&rev, 0, sizeof(rev));
	if (alias_load_revaliases(cfg->revaliases, r->login, &rev, &err) !=
	    ST_OK) {
		say("%s", err.text);
		return EX_CONFIG;
	}
	if (r->config_warnings > 0)
		return EX_CONFIG;
	(void)printf("%s: ok; hub %s port %s, %s, domain %s\n", cfg->path,
	    cfg->hub_host, cfg->hub_port, cfg->tls == TLS_STARTTLS ?
	    "STARTTLS" : cfg->tls == TLS_IMPLICIT ? "implicit TLS" :
	    "no TLS", r->domain);
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
	message_new_qid(r.qid);

	config_defaults(&cfg);
	if ((code = load_config(&cfg, &o, &r)) != EX_OK) {
		if (o.mode == MODE_SEND)
			drain_stdin();
		else if (o.mode == MODE_SMTP)
			(void)dprintf(STDOUT_FILENO, "421 4.3.5 postino "
			    "configuration error\r\n");
		config_free(&cfg);
		free(o.rcpt_args);
		return code;
	}
	code = run_mode(&cfg, &r, &o);
	alias_free_aliases(r.aliases);
	config_free(&cfg);
	free(o.rcpt_args);
	return code;
}

