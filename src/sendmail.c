/*
 * sendmail.c: the front end. main(), which runs the mode the command
 * line (options.c) asks for, and the outcome table: exit_for() maps what
 * became of a message (struct outcome, from submit.c and deliver.c) to
 * an exit code and stderr lines, bs_reply_for() to a -bs reply, and
 * exit_for_status() a mode's status to an exit code. This is the only
 * file that talks to the user or decides an exit code.
 */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sysexits.h>
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

static int
load_config(struct config *cfg, const struct options *o, struct run *r)
{
	static const char auth_ignored[] = "-au/-am ignored: only root (or "
	    "a -C configuration of your own) may override AuthUser/"
	    "AuthMethod";
	struct caller_load_how how;
	struct error err;
	int ignored = 0;

	error_clear(&err);
	memset(&how, 0, sizeof(how));
	how.strict = o->mode == MODE_CHECK;
	how.warn = how.strict ? count_config_warning : log_config_warning;
	how.warn_arg = &r->config_warnings;
	how.auth_ignored = &ignored;
	if (caller_load(&r->c, cfg, o, &how, &err) != ST_OK) {
		say("%s", err.text);
		return err.status == ST_OSERR ? EX_OSERR : EX_CONFIG;
	}
	if (ignored) {
		if (!quiet)	/* one line, not say(): logged just below */
			(void)fprintf(stderr, "%s: %s\n", progname,
			    auth_ignored);
		log_line(LOG_WARNING, "uid=%lu: %s", (unsigned long)r->c.uid,
		    auth_ignored);
	}
	r->debug = cfg->debug;
	if (r->verbose || r->debug) {
		r->c.transcript = transcript_line;
		r->c.transcript_arg = r;
	}
	return EX_OK;
}

/* ------------------------------------------------------ outcome table */

/* Exit code of a status (a mode's, or a submission stopped early). */
static const int exit_of_status[] = {
	[ST_OK] = EX_OK,		[ST_TEMP] = EX_TEMPFAIL,
	[ST_PERM] = EX_UNAVAILABLE,	[ST_USAGE] = EX_USAGE,
	[ST_DATA] = EX_DATAERR,		[ST_CONFIG] = EX_CONFIG,
	[ST_IOERR] = EX_IOERR,		[ST_CANTCREAT] = EX_CANTCREAT,
	[ST_OSERR] = EX_OSERR,		[ST_SOFTWARE] = EX_SOFTWARE,
	[ST_LIMIT] = EX_CANTCREAT,	/* RateLimit: 73, never 75 */
	[ST_NOPERM] = EX_USAGE,		/* another user's queue entry */
	[ST_SENDER] = EX_NOPERM		/* SenderPolicy=refuse */
};

static int
exit_for_status(enum status st)
{
	if ((size_t)st >= sizeof(exit_of_status) / sizeof(exit_of_status[0]))
		return EX_SOFTWARE;
	return exit_of_status[st];
}

/* Exit code for a permanent refusal, by where the hub said no. */
static int
exit_for_refusal(enum smtp_stage stage)
{
	if (stage == STAGE_RCPT)
		return EX_NOUSER;
	return stage == STAGE_DATA || stage == STAGE_DOT ? EX_DATAERR :
	    EX_UNAVAILABLE;	/* MAIL, or before it */
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
	case EX_NOPERM:		/* SenderPolicy=refuse */
		(void)snprintf(reply, len, "553 5.7.1 %s", clean);
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
	sp.max_size = cfg->max_message_size;
	sp.submit = bs_submit;
	sp.submit_arg = &bc;
	if (smtpd_run(&sp, &err) != ST_OK) {
		log_line(LOG_ERR, "-bs: %s", err.text);
		return exit_for_status(err.status);
	}
	return EX_OK;
}

/* A mode's status as the exit code, told on stderr when it has words. */
static int
told(int st, const struct error *err)
{
	if (st != ST_OK && err->text[0] != '\0')
		say("%s", err->text);
	return exit_for_status(st);
}

/* -bv: 0 when every address is valid, 67 when one is not (sendmail). */
static int
verify(const struct config *cfg, const struct run *r, const struct options *o)
{
	struct error err;
	int st = mode_verify(cfg, &r->c, o, stdout, &err);

	return st == ST_OK ? EX_OK : st == ST_OSERR ? EX_OSERR : EX_NOUSER;
}

/*
 * postino check --hub: the monitoring plugin convention, 0 OK,
 * 1 WARNING, 2 CRITICAL; a configuration or machine failure keeps its
 * own exit code (told on stderr).
 */
static int
hub_check(const struct config *cfg, const struct run *r,
    const struct options *o)
{
	static const int exits[] = {
		[HUB_OK] = 0, [HUB_WARNING] = 1, [HUB_CRITICAL] = 2
	};
	enum hub_verdict v = HUB_CRITICAL;
	struct error err;
	int st;

	error_clear(&err);
	st = hubcheck_run(cfg, r->c.hostname, o, stdout, &v, &err);
	if (st != ST_OK)
		return told(st, &err);
	return exits[v];
}

static int
run_mode(const struct config *cfg, struct run *r, const struct options *o)
{
	struct error err;

	error_clear(&err);
	switch (o->mode) {
	case MODE_SEND:
		return send_from_stdin(cfg, r, o);
	case MODE_SMTP:
		return serve_smtp(cfg, r, o);
	case MODE_LIST_QUEUE:
	case MODE_QUEUE_ADMIN:
		return told(mode_queue_admin(cfg, o, stdout, &err), &err);
	case MODE_CHECK:
		if (o->hub_check)
			return hub_check(cfg, r, o);
		return told(mode_check(cfg, &r->c, r->config_warnings,
		    count_config_warning, &r->config_warnings, stdout, &err),
		    &err);
	case MODE_RUN_QUEUE:
		return told(mode_run_queue(cfg, &r->c, &o->filter, &err),
		    &err);
	case MODE_VERIFY:
		return verify(cfg, r, o);
	case MODE_ALIASES:
		mode_check_aliases(cfg);
		return EX_OK;
	case MODE_TOKEN:
		return told(mode_token(cfg, stdout, &err), &err);
	case MODE_NOOP:
	case MODE_VERSION:
		break;
	}
	return EX_OK;
}

/*
 * The command line (options.c). A usage error is told as die_usage()
 * always told it: one stderr line (a log line under -oeq), stdin read
 * to EOF so that the writer sees our exit status, exit 64.
 */
static int
parse_command_line(struct options *o, int argc, char **argv)
{
	struct error err;

	if (options_parse(o, argc, argv, &err) == ST_OK)
		err.status = ST_OK;
	progname = o->progname;
	quiet = o->error_mode == 'q';
	if (err.status == ST_OK)
		return EX_OK;
	say("%s", err.text);
	if (err.status != ST_USAGE)
		return exit_for_status(err.status);
	message_drain(STDIN_FILENO);
	return EX_USAGE;
}

int
main(int argc, char **argv)
{
	struct options o;
	struct config cfg;
	struct run r;
	struct error err;
	enum priv_as as;
	int code;

	/* Secrets (AuthPass) will be in memory: no core dumps. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)signal(SIGPIPE, SIG_IGN);
	(void)umask(S_IRWXO);
	memset(&r, 0, sizeof(r));
	if ((code = parse_command_line(&o, argc, argv)) != EX_OK ||
	    o.mode == MODE_VERSION) {
		if (code == EX_OK)
			(void)printf("postino %s\n", POSTINO_VERSION);
		options_free(&o);
		return code;
	}
	r.progname = progname;
	if (o.mode == MODE_SMTP) {
		quiet = 1;	/* -bs: stderr must stay empty */
		o.verbose = 0;	/* stdout is the dialogue */
	}
	r.verbose = o.verbose;
	caller_identify(&r.c);

	config_defaults(&cfg);
	if ((code = load_config(&cfg, &o, &r)) != EX_OK) {
		if (o.mode == MODE_SEND)
			message_drain(STDIN_FILENO);
		else if (o.mode == MODE_SMTP)
			(void)dprintf(STDOUT_FILENO, "421 4.3.5 postino "
			    "configuration error\r\n");
		config_free(&cfg);
		options_free(&o);
		return code;
	}
	/* Who runs the rest, and with what of the group (priv.c). */
	if (priv_settle(o.mode, &cfg, &as, &err) != ST_OK) {
		say("%s", err.text);
		if (o.mode == MODE_SEND)
			message_drain(STDIN_FILENO);
		code = exit_for_status(err.status);
	} else {
		if (as == PRIV_AS_ROOT)
			log_line(LOG_WARNING, "delivering as root: QueueDir "
			    "%s is root's and RunAsUser is not set "
			    "(postino(8) SECURITY)", cfg.queue_dir);
		code = run_mode(&cfg, &r, &o);
	}
	alias_free_aliases(r.c.aliases);
	config_free(&cfg);
	options_free(&o);
	return code;
}

