/*
 * sendmail.c: the front end. The personality (argv[0]), the sendmail
 * command line, main(), and the outcome table that maps each result to
 * an exit code, a stderr line and log lines. This is the only file that
 * talks to the user or decides an exit code; every other module returns
 * a status and fills a struct error.
 */
#include <sys/prctl.h>
#include <sys/types.h>

#include <errno.h>
#include <libgen.h>
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
	MODE_LIST_QUEUE,	/* -bp, mailq */
	MODE_RUN_QUEUE,		/* -q... */
	MODE_ALIASES,		/* -bi, -I, newaliases */
	MODE_NOOP,		/* -bh, -bH */
	MODE_VERSION		/* --version */
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
	char		**rcpt_args;	/* operands */
	size_t		 nrcpt_args;
};

/* What main() knows about the run, for stderr and the log. */
struct run {
	const char	*progname;
	char		 qid[QID_MAX];
	struct timespec	 start;
	uid_t		 uid;
	char		 login[64];
	char		 gecos[NAME_MAX_];
	char		 domain[HOST_MAX];
	char		 hostname[HOST_MAX];
	int		 debug;		/* Debug=YES: transcript to the log */
	int		 verbose;	/* -v: transcript to stdout */
};

static const char *progname = "sendmail";

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
	(void)fprintf(stderr, "%s: %s\n", progname, text);
}

/*
 * Read stdin to EOF before a usage-error exit, so that a writer such as
 * git send-email or MIME::Lite sees our exit status and not EPIPE. Only
 * when stdin is not a terminal, and never for more than 10 seconds.
 */
static void
drain_stdin(void)
{
	struct timespec start, now;
	struct pollfd pfd = { STDIN_FILENO, POLLIN, 0 };
	char buf[65536];

	if (isatty(STDIN_FILENO))
		return;
	(void)clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		long left;
		ssize_t n;

		(void)clock_gettime(CLOCK_MONOTONIC, &now);
		left = 10000 - ((now.tv_sec - start.tv_sec) * 1000 +
		    (now.tv_nsec - start.tv_nsec) / 1000000);
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return;
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			return;
	}
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
static const char OPTS_WITH_ARG[] = "ABCFLNRVXDMQdefhpr";
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

/* -O option=value: honour DeliveryMode and IgnoreDots, ignore the rest. */
static void
set_long_option(struct options *o, const char *v)
{
	size_t n = strcspn(v, "=");
	const char *val = v[n] == '=' ? v + n + 1 : "";

	if (n == strlen("IgnoreDots") && strncasecmp(v, "IgnoreDots", n) == 0)
		o->ignore_dots = val[0] == '\0' || strchr("TtYy1", val[0]);
	else if (n == strlen("DeliveryMode") &&
	    strncasecmp(v, "DeliveryMode", n) == 0 &&
	    (val[0] == '\0' || val[1] != '\0' || !strchr("bqdi", val[0])))
		die_usage("-O DeliveryMode: expected b, q, d or i");
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
		break;
	case 'd':
		if (v[1] == '\0' || v[2] != '\0' || !strchr("ibqd", v[1]))
			die_usage("-od: expected one of i, b, q, d");
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
	else if (strcmp(v, "s") == 0 || strcmp(v, "v") == 0)
		die_usage("-b%s is not supported by this version", v);
	else
		die_usage("unsupported option -b%s", v);
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
	default:
		break;	/* -G -U -T -c -m -n -s -x: ignored */
	}
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
		o->mode = MODE_RUN_QUEUE;	/* -q, -q15m, -qI.., -qR.. */
		return;
	}
	if (*p == 'o') {
		set_short_option(o, p + 1);
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

static double
elapsed(const struct run *r)
{
	struct timespec now;

	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - r->start.tv_sec) +
	    (double)(now.tv_nsec - r->start.tv_nsec) / 1e9;
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
	gid_t gid = getgid();

	if (o->config_path == NULL || getuid() == 0)
		return;
	if (setresgid(gid, gid, gid) == -1) {
		say("cannot drop group privilege: %s", strerror(errno));
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
	    POSTINO_CONFFILE, log_config_warning, NULL, &err) != ST_OK) {
		say("%s", err.text);
		return EX_CONFIG;
	}
	log_open(r->progname, cfg->log_file);
	r->debug = cfg->debug;
	alias_domain(cfg, r->domain, sizeof(r->domain));
	alias_hostname(cfg, r->hostname, sizeof(r->hostname));
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

static const char *
hint_text(enum admin_hint hint)
{
	switch (hint) {
	case HINT_TLS_VERIFY:
		return "TLS verification";
	case HINT_AUTH:
		return "authentication";
	case HINT_TLS_POLICY:
		return "TLS policy";
	case HINT_NONE:
		break;
	}
	return NULL;
}

static void
log_recipient(const struct run *r, const struct smtp_result *res,
    const struct smtp_rcpt *rc, const char *status, const char *why)
{
	log_line(status[0] == 's' ? LOG_INFO : LOG_NOTICE,
	    "%s: to=<%s>, relay=%s, delay=%.2f, tls=%s, status=%s (%s)",
	    r->qid, rc->addr, res->relay[0] != '\0' ? res->relay : "none",
	    elapsed(r), res->tls[0] != '\0' ? res->tls : "none", status,
	    why);
}

/*
 * The transaction did not get through at all: every recipient is
 * deferred (temporary) or bounced (permanent). Until the queue exists a
 * temporary failure exits 75 and the caller keeps the message.
 */
static int
report_failure(const struct run *r, const struct envelope *env,
    const struct smtp_result *res, const struct error *err)
{
	const char *hint = hint_text(err->hint);
	const char *status = err->status == ST_PERM ? "bounced" : "deferred";
	size_t i;

	for (i = 0; i < env->nrcpt; i++) {
		const struct smtp_rcpt *rc = &env->rcpt[i];

		log_recipient(r, res, rc, status,
		    rc->code != 0 ? rc->reply : err->text);
	}
	if (res->dot_sent)
		log_line(LOG_WARNING, "%s: reply to the final dot lost: "
		    "possible duplicate if the caller retries", r->qid);
	if (err->status == ST_TEMP) {
		if (hint != NULL)
			log_line(LOG_WARNING, "%s: needs an administrator "
			    "(%s): %s", r->qid, hint, err->text);
		say("message not sent, try again later: %s", err->text);
		return EX_TEMPFAIL;
	}
	if (err->status == ST_PERM) {
		if (res->stage == STAGE_RCPT) {
			for (i = 0; i < env->nrcpt; i++)
				say("%s... %s", env->rcpt[i].addr,
				    env->rcpt[i].reply);
		} else
			say("message refused by the hub: %s", err->text);
		return exit_for_refusal(res->stage);
	}
	say("%s", err->text);
	return exit_for_status(err->status);
}

/*
 * The hub took the message for some recipients. Rejected ones are told
 * on stderr; deferred ones too, and since there is no queue yet they
 * make the exit 75 so that nothing is dropped with exit 0.
 */
static int
report_delivery(const struct run *r, const struct envelope *env,
    const struct smtp_result *res)
{
	int code = EX_OK;
	size_t i;

	for (i = 0; i < env->nrcpt; i++) {
		const struct smtp_rcpt *rc = &env->rcpt[i];

		if (rc->status == ST_OK) {
			log_recipient(r, res, rc, "sent", res->reply);
			continue;
		}
		log_recipient(r, res, rc, rc->status == ST_PERM ?
		    "bounced" : "deferred", rc->reply);
		say("%s... %s", rc->addr, rc->reply);
		if (rc->status != ST_PERM)
			code = EX_TEMPFAIL;
	}
	return code;
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
			say("%s: %s", a[0] != '\0' ? a : "(empty)", err.text);
			return err.status == ST_DATA ? EX_DATAERR :
			    exit_for_status(err.status);
		}
	}
	return EX_OK;
}

/* Aliases, Root= and qualification, then duplicates collapse. */
static int
map_recipients(const struct config *cfg, const struct run *r,
    const struct addrlist *in, struct addrlist *out)
{
	char mapped[ADDR_MAX];
	struct error err;
	size_t i;

	error_clear(&err);
	for (i = 0; i < in->n; i++) {
		if (alias_recipient(cfg, in->v[i], r->domain, r->hostname,
		    mapped, sizeof(mapped), &err) != ST_OK ||
		    addrlist_add(out, mapped, &err) != ST_OK) {
			say("%s... %s", in->v[i], err.text);
			return exit_for_status(err.status);
		}
		if (!addr_is_safe(mapped)) {
			say("%s... unsafe address", in->v[i]);
			return EX_DATAERR;
		}
	}
	return EX_OK;
}

static int
build_envelope(struct envelope *env, const struct addrlist *rcpts)
{
	size_t i;

	env->rcpt = calloc(rcpts->n, sizeof(*env->rcpt));
	if (env->rcpt == NULL) {
		say("out of memory");
		return EX_OSERR;
	}
	for (i = 0; i < rcpts->n; i++)
		(void)strlcpy(env->rcpt[i].addr, rcpts->v[i],
		    sizeof(env->rcpt[i].addr));
	env->nrcpt = rcpts->n;
	return EX_OK;
}

static int
transmit(const struct config *cfg, struct run *r, const struct route *rt,
    struct envelope *env)
{
	struct smtp_params sp;
	struct smtp_result res;
	struct smtp *s = NULL;
	struct error err;

	memset(&res, 0, sizeof(res));
	memset(&sp, 0, sizeof(sp));
	error_clear(&err);
	sp.cfg = cfg;
	sp.route = rt;
	sp.helo = r->hostname;
	if (r->verbose || r->debug) {
		sp.transcript = transcript_line;
		sp.transcript_arg = r;
	}
	if (smtp_open(&s, &sp, &res, &err) != ST_OK)
		return report_failure(r, env, &res, &err);
	if (cfg->tls != TLS_NONE && !cfg->tls_verify)
		log_line(LOG_WARNING, "%s: TLS certificate of %s not "
		    "verified (TLSVerify=NO)", r->qid, rt->host);
	if (smtp_send(s, env, &res, &err) != ST_OK) {
		smtp_close(s);
		return report_failure(r, env, &res, &err);
	}
	smtp_close(s);
	return report_delivery(r, env, &res);
}

/* Read the message, settle sender and recipients, relay. */
static int
send_message(const struct config *cfg, struct run *r, const struct options *o)
{
	struct addrlist args, all, rcpts;
	struct revalias rev;
	struct msgopts mo;
	struct message msg;
	struct envelope env;
	struct route rt;
	struct error err;
	char default_sender[ADDR_MAX];
	size_t i;
	int code;

	memset(&msg, 0, sizeof(msg));
	memset(&env, 0, sizeof(env));
	memset(&rev, 0, sizeof(rev));
	msg.fd = -1;
	error_clear(&err);
	addrlist_init(&args);
	addrlist_init(&all);
	addrlist_init(&rcpts);

	if ((code = collect_arg_recipients(o, &args)) != EX_OK)
		goto drain;
	if (alias_load_revaliases(cfg->revaliases, r->login, &rev, &err) !=
	    ST_OK) {
		say("%s", err.text);
		code = exit_for_status(err.status);
		goto drain;
	}
	if (o->sender != NULL && alias_default_sender(cfg, &rev, o->sender,
	    r->login, r->domain, default_sender, sizeof(default_sender),
	    &err) != ST_OK) {
		say("-f %s", err.text);
		code = EX_DATAERR;
		goto drain;
	}
	if (alias_default_sender(cfg, &rev, NULL, r->login, r->domain,
	    default_sender, sizeof(default_sender), &err) != ST_OK) {
		say("%s", err.text);
		code = exit_for_status(err.status);
		goto drain;
	}
	if (o->sender != NULL) {
		char fsender[ADDR_MAX];

		if (addr_parse_one(o->sender, fsender, sizeof(fsender),
		    &err) != ST_OK || (fsender[0] != '\0' &&
		    !addr_is_safe(fsender))) {
			say("-f %s: %s", o->sender, err.text[0] != '\0' ?
			    err.text : "unsafe address");
			code = EX_DATAERR;
			goto drain;
		}
		if (alias_default_sender(cfg, &rev, fsender, r->login,
		    r->domain, default_sender, sizeof(default_sender),
		    &err) != ST_OK) {
			say("-f %s: %s", o->sender, err.text);
			code = EX_DATAERR;
			goto drain;
		}
	}

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
	if (message_read(STDIN_FILENO, cfg->queue_dir, &mo, &msg, &err) !=
	    ST_OK) {
		say("%s", err.text);
		code = exit_for_status(err.status);
		goto out;
	}
	if (msg.nul_bytes > 0)
		log_line(LOG_WARNING, "%s: removed %zu NUL bytes from the "
		    "message", r->qid, msg.nul_bytes);
	if (msg.lines_split > 0)
		log_line(LOG_NOTICE, "%s: split %zu lines longer than %d "
		    "octets", r->qid, msg.lines_split, SMTP_LINE_MAX);

	for (i = 0; i < args.n; i++)
		if (addrlist_add(&all, args.v[i], &err) != ST_OK)
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
	if ((code = map_recipients(cfg, r, &all, &rcpts)) != EX_OK)
		goto out;
	if (alias_final_sender(cfg, &msg, default_sender, r->domain,
	    env.sender, sizeof(env.sender), &err) != ST_OK)
		goto fail;
	if (env.sender[0] != '\0' && !addr_is_safe(env.sender)) {
		say("sender <%s>: unsafe address", env.sender);
		code = EX_DATAERR;
		goto out;
	}
	if ((code = build_envelope(&env, &rcpts)) != EX_OK)
		goto out;
	env.body_8bit = o->body_8bit || msg.eight_bit;
	env.spool_fd = msg.fd;
	env.size = msg.size;
	alias_route(cfg, &rev, &rt);
	log_line(LOG_INFO, "%s: uid=%lu from=<%s>, size=%lld, nrcpt=%zu",
	    r->qid, (unsigned long)r->uid, env.sender, (long long)msg.size,
	    env.nrcpt);
	code = transmit(cfg, r, &rt, &env);
	goto out;
fail:
	say("%s", err.text);
	code = exit_for_status(err.status);
	goto out;
drain:
	drain_stdin();
out:
	free(env.rcpt);
	message_free(&msg);
	addrlist_free(&args);
	addrlist_free(&all);
	addrlist_free(&rcpts);
	return code;
}

/* ---------------------------------------------------------------- main */

static int
run_mode(const struct config *cfg, struct run *r, const struct options *o)
{
	switch (o->mode) {
	case MODE_SEND:
		return send_message(cfg, r, o);
	case MODE_LIST_QUEUE:
		/* The fallback queue arrives with the queue issue. */
		(void)printf("Mail queue is empty\n");
		return EX_OK;
	case MODE_RUN_QUEUE:
	case MODE_ALIASES:
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
	memset(&o, 0, sizeof(o));
	memset(&r, 0, sizeof(r));
	(void)clock_gettime(CLOCK_MONOTONIC, &r.start);
	if (argc > 0 && argv[0] != NULL && argv[0][0] != '\0') {
		const char *base = strrchr(argv[0], '/');

		progname = base != NULL ? base + 1 : argv[0];
	}
	r.progname = progname;
	o.mode = personality(progname);
	parse_options(&o, argc, argv);
	if (o.mode == MODE_VERSION) {
		(void)printf("postino %s\n", POSTINO_VERSION);
		return EX_OK;
	}
	if (o.mode != MODE_SEND && o.nrcpt_args > 0)
		die_usage("recipients are not allowed in this mode");
	if (o.extract && o.mode != MODE_SEND)
		die_usage("-t is only valid when sending a message");
	r.verbose = o.verbose;
	identify_caller(&r);
	message_new_qid(r.qid);

	config_defaults(&cfg);
	if ((code = load_config(&cfg, &o, &r)) != EX_OK) {
		if (o.mode == MODE_SEND)
			drain_stdin();
		config_free(&cfg);
		free(o.rcpt_args);
		return code;
	}
	code = run_mode(&cfg, &r, &o);
	config_free(&cfg);
	free(o.rcpt_args);
	return code;
}
