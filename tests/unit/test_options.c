/*
 * test_options.c: the sendmail command line as callers write it
 * (spec/callers.md section 2): the personality of argv[0], postino's
 * subcommands, every option the parser accepts (ignored ones consume
 * their argument), each usage error as ST_USAGE with the exact text
 * main() prints, and who may override AuthUser/AuthMethod.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#define ARGS_MAX	32

/* One parse: argv stays alive as long as the options point into it. */
struct parsed {
	char		*argv[ARGS_MAX + 1];
	int		 argc;
	struct options	 o;
	struct error	 err;
	int		 st;
};

#define ARGV(...)	((const char *const []){ __VA_ARGS__, NULL })

static struct parsed *
parse(const char *const *args)
{
	struct parsed *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	for (p->argc = 0; args[p->argc] != NULL; p->argc++) {
		assert_true(p->argc < ARGS_MAX);
		p->argv[p->argc] = (char *)args[p->argc];
	}
	p->st = options_parse(&p->o, p->argc, p->argv, &p->err);
	return p;
}

static void
done(struct parsed *p)
{
	options_free(&p->o);
	free(p);
}

/* The parse must succeed; the caller checks p->o, then calls done(). */
static struct parsed *
ok(const char *const *args)
{
	struct parsed *p = parse(args);

	if (p->st != ST_OK)
		fail_msg("%s ...: status %d, \"%s\"", args[1] ? args[1] : "",
		    p->st, p->err.text);
	return p;
}

/* The parse must fail with ST_USAGE and exactly this text. */
static void
usage(const char *const *args, const char *text)
{
	struct parsed *p = parse(args);

	assert_int_equal(p->st, ST_USAGE);
	assert_int_equal(p->err.status, ST_USAGE);
	assert_string_equal(p->err.text, text);
	done(p);
}

/* The operands, in order, are exactly want (NULL-terminated). */
static void
expect_rcpts(const struct options *o, const char *const *want)
{
	size_t i;

	for (i = 0; want[i] != NULL; i++) {
		if (i >= o->nrcpt_args)
			fail_msg("missing operand %s", want[i]);
		assert_string_equal(o->rcpt_args[i], want[i]);
	}
	assert_int_equal(o->nrcpt_args, i);
}

#define RCPTS(...)	((const char *const []){ __VA_ARGS__, NULL })
#define NO_RCPTS	((const char *const []){ NULL })

/* ------------------------------------------------------ personality */

static void
t_personality(void **state)
{
	(void)state;
	assert_int_equal(options_personality("sendmail"), MODE_SEND);
	assert_int_equal(options_personality("/usr/sbin/sendmail"), MODE_SEND);
	assert_int_equal(options_personality("/usr/lib/sendmail"), MODE_SEND);
	assert_int_equal(options_personality("postino"), MODE_SEND);
	assert_int_equal(options_personality("mailq"), MODE_LIST_QUEUE);
	assert_int_equal(options_personality("/usr/bin/mailq"),
	    MODE_LIST_QUEUE);
	assert_int_equal(options_personality("mailq.postino"),
	    MODE_LIST_QUEUE);
	assert_int_equal(options_personality("newaliases"), MODE_ALIASES);
	assert_int_equal(options_personality("/usr/sbin/newaliases.x"),
	    MODE_ALIASES);
	assert_int_equal(options_personality(""), MODE_SEND);
}

static void
t_progname(void **state)
{
	struct parsed *p;
	struct options o;
	struct error err;
	char *none[] = { NULL };
	char *empty[] = { (char *)"", NULL };

	(void)state;
	p = ok(ARGV("/usr/sbin/sendmail", "a@x"));
	assert_string_equal(p->o.progname, "sendmail");
	assert_int_equal(p->o.mode, MODE_SEND);
	done(p);
	p = ok(ARGV("/usr/bin/mailq"));
	assert_string_equal(p->o.progname, "mailq");
	assert_int_equal(p->o.mode, MODE_LIST_QUEUE);
	done(p);
	p = ok(ARGV("newaliases"));
	assert_int_equal(p->o.mode, MODE_ALIASES);
	done(p);
	/* No argv[0], or an empty one: sendmail. */
	assert_int_equal(options_parse(&o, 0, none, &err), ST_OK);
	assert_string_equal(o.progname, "sendmail");
	assert_int_equal(o.mode, MODE_SEND);
	options_free(&o);
	assert_int_equal(options_parse(&o, 1, empty, &err), ST_OK);
	assert_string_equal(o.progname, "sendmail");
	options_free(&o);
	/* A personality's mode is changed by -b. */
	p = ok(ARGV("mailq", "-bm", "a@x"));
	assert_int_equal(p->o.mode, MODE_SEND);
	done(p);
	usage(ARGV("mailq", "a@x"), "recipients are not allowed in this mode");
	usage(ARGV("newaliases", "a@x"),
	    "recipients are not allowed in this mode");
}

/* ---------------------------------------------------------- operands */

static void
t_defaults(void **state)
{
	struct parsed *p;

	(void)state;
	p = ok(ARGV("sendmail", "a@x", "b@y,c@z", ""));
	assert_int_equal(p->o.mode, MODE_SEND);
	expect_rcpts(&p->o, RCPTS("a@x", "b@y,c@z", ""));
	assert_null(p->o.config_path);
	assert_null(p->o.sender);
	assert_null(p->o.full_name);
	assert_int_equal(p->o.extract, 0);
	assert_int_equal(p->o.ignore_dots, 0);
	assert_int_equal(p->o.verbose, 0);
	assert_int_equal(p->o.delivery, DELIVER_NOW);
	assert_int_equal(p->o.error_mode, '\0');
	assert_int_equal(p->o.dsn_options, 0);
	assert_string_equal(p->o.dsn.notify, "");
	assert_null(p->o.auth_user);
	assert_null(p->o.auth_method);
	done(p);
	/* A lone "-" is an operand, as getopt has it. */
	p = ok(ARGV("sendmail", "-"));
	expect_rcpts(&p->o, RCPTS("-"));
	done(p);
}

static void
t_options_after_operands_and_double_dash(void **state)
{
	struct parsed *p;

	(void)state;
	p = ok(ARGV("sendmail", "a@x", "-i", "-f", "s@x", "b@y"));
	expect_rcpts(&p->o, RCPTS("a@x", "b@y"));
	assert_int_equal(p->o.ignore_dots, 1);
	assert_string_equal(p->o.sender, "s@x");
	done(p);
	p = ok(ARGV("sendmail", "--", "-i@x", "-t", "--", "--version"));
	expect_rcpts(&p->o, RCPTS("-i@x", "-t", "--", "--version"));
	assert_int_equal(p->o.ignore_dots, 0);
	assert_int_equal(p->o.extract, 0);
	assert_int_equal(p->o.mode, MODE_SEND);
	done(p);
}

/* ------------------------------------------------- ignored options */

/* Every ignored option that takes an argument consumes it. */
static void
t_ignored_options_consume_their_argument(void **state)
{
	static const char letters[] = "ALXDMQdehp";
	char opt[3], attached[16];
	struct parsed *p;
	size_t i;

	(void)state;
	for (i = 0; letters[i] != '\0'; i++) {
		(void)snprintf(opt, sizeof(opt), "-%c", letters[i]);
		(void)snprintf(attached, sizeof(attached), "-%c17",
		    letters[i]);
		p = ok(ARGV("sendmail", opt, "17", "a@x"));
		expect_rcpts(&p->o, RCPTS("a@x"));
		assert_int_equal(p->o.mode, MODE_SEND);
		done(p);
		p = ok(ARGV("sendmail", attached, "a@x"));
		expect_rcpts(&p->o, RCPTS("a@x"));
		done(p);
	}
}

static void
t_ignored_flags(void **state)
{
	struct parsed *p;

	(void)state;
	p = ok(ARGV("sendmail", "-G", "-U", "-T", "-c", "-m", "-s", "-x",
	    "-GUTcmsx", "a@x"));
	expect_rcpts(&p->o, RCPTS("a@x"));
	assert_int_equal(p->o.mode, MODE_SEND);
	assert_int_equal(p->o.ignore_dots, 0);
	assert_int_equal(p->o.extract, 0);
	done(p);
	/* -o letters without a meaning here, with attached values. */
	p = ok(ARGV("sendmail", "-om", "-o7", "-o8", "-oQ/tmp", "-oA/x",
	    "-oL9", "-oT5d", "a@x"));
	expect_rcpts(&p->o, RCPTS("a@x"));
	assert_int_equal(p->o.ignore_dots, 0);
	assert_int_equal(p->o.delivery, DELIVER_NOW);
	done(p);
}

/* ----------------------------------------------- options with meaning */

static void
t_sender_and_name(void **state)
{
	struct parsed *p;

	(void)state;
	p = ok(ARGV("sendmail", "-fme@x", "a@x"));
	assert_string_equal(p->o.sender, "me@x");
	done(p);
	p = ok(ARGV("sendmail", "-f", "Me <me@x>", "a@x"));
	assert_string_equal(p->o.sender, "Me <me@x>");
	expect_rcpts(&p->o, RCPTS("a@x"));
	done(p);
	p = ok(ARGV("sendmail", "-r", "", "a@x"));
	assert_string_equal(p->o.sender, "");
	expect_rcpts(&p->o, RCPTS("a@x"));
	done(p);
	p = ok(ARGV("sendmail", "-rbounce@x", "a@x"));
	assert_string_equal(p->o.sender, "bounce@x");
	done(p);
	p = ok(ARGV("sendmail", "-FCronDaemon", "a@x"));
	assert_string_equal(p->o.full_name, "CronDaemon");
	done(p);
	p = ok(ARGV("sendmail", "-F", "Full Name", "a@x"));
	assert_string_equal(p->o.full_name, "Full Name");
	expect_rcpts(&p->o, RCPTS("a@x"));
	done(p);
	p = ok(ARGV("sendmail", "-C", "/tmp/c", "a@x"));
	assert_string_equal(p->o.config_path, "/tmp/c");
	done(p);
	p = ok(ARGV("sendmail", "-C/tmp/d", "a@x"));
	assert_string_equal(p->o.config_path, "/tmp/d");
	done(p);
}

static void
t_flags(void **state)
{
	struct parsed *p;

	(void)state;
	p = ok(ARGV("sendmail", "-t"));
	assert_int_equal(p->o.extract, 1);
	done(p);
	p = ok(ARGV("sendmail", "-i", "a@x"));
	assert_int_equal(p->o.ignore_dots, 1);
	done(p);
	p = ok(ARGV("sendmail", "-oi", "a@x"));
	assert_int_equal(p->o.ignore_dots, 1);
	done(p);
	p = ok(ARGV("sendmail", "-v", "-n", "a@x"));
	assert_int_equal(p->o.verbose, 1);
	assert_int_equal(p->o.no_alias, 1);
	done(p);
	p = ok(ARGV("sendmail", "-I"));
	assert_int_equal(p->o.mode, MODE_ALIASES);
	done(p);
	/* Clusters, and a cluster ending in an option with an argument. */
	p = ok(ARGV("sendmail", "-ti"));
	assert_int_equal(p->o.extract, 1);
	assert_int_equal(p->o.ignore_dots, 1);
	done(p);
	p = ok(ARGV("sendmail", "-iv", "a@x"));
	assert_int_equal(p->o.ignore_dots, 1);
	assert_int_equal(p->o.verbose, 1);
	done(p);
	p = ok(ARGV("sendmail", "-if", "s@x", "a@x"));
	assert_int_equal(p->o.ignore_dots, 1);
	assert_string_equal(p->o.sender, "s@x");
	expect_rcpts(&p->o, RCPTS("a@x"));
	done(p);
	/* Ignored letters in a cluster change nothing else. */
	p = ok(ARGV("sendmail", "-mti"));
	assert_int_equal(p->o.extract, 1);
	assert_int_equal(p->o.ignore_dots, 1);
	done(p);
}

static void
t_delivery_and_error_modes(void **state)
{
	static const struct {
		const char	*arg;
		enum delivery	 want;
	} od[] = {
		{ "-odi", DELIVER_NOW }, { "-odb", DELIVER_BACKGROUND },
		{ "-odq", DELIVER_QUEUE }, { "-odd", DELIVER_QUEUE },
	};
	static const char modes[] = "pqmwe";
	struct parsed *p;
	char arg[8];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(od) / sizeof(od[0]); i++) {
		p = ok(ARGV("sendmail", "-odb", od[i].arg, "a@x"));
		assert_int_equal(p->o.delivery, od[i].want);
		done(p);
	}
	for (i = 0; modes[i] != '\0'; i++) {
		(void)snprintf(arg, sizeof(arg), "-oe%c", modes[i]);
		p = ok(ARGV("sendmail", arg, "a@x"));
		assert_int_equal(p->o.error_mode, modes[i]);
		done(p);
	}
	p = ok(ARGV("sendmail", "-oeq", "-oep", "a@x"));
	assert_int_equal(p->o.error_mode, 'p');	/* the last one counts */
	done(p);
}

static void
t_long_options(void **state)
{
	struct parsed *p;

	(void)state;
	p = ok(ARGV("sendmail", "-O", "DeliveryMode=b", "a@x"));
	assert_int_equal(p->o.delivery, DELIVER_BACKGROUND);
	expect_rcpts(&p->o, RCPTS("a@x"));
	done(p);
	p = ok(ARGV("sendmail", "-ODeliveryMode=q", "a@x"));
	assert_int_equal(p->o.delivery, DELIVER_QUEUE);
	done(p);
	p = ok(ARGV("sendmail", "-odb", "-O", "deliverymode=i", "a@x"));
	assert_int_equal(p->o.delivery, DELIVER_NOW);
	done(p);
	p = ok(ARGV("sendmail", "-O", "IgnoreDots", "a@x"));
	assert_int_equal(p->o.ignore_dots, 1);
	done(p);
	p = ok(ARGV("sendmail", "-OIgnoreDots=true", "a@x"));
	assert_int_equal(p->o.ignore_dots, 1);
	done(p);
	p = ok(ARGV("sendmail", "-i", "-OIgnoreDots=false", "a@x"));
	assert_int_equal(p->o.ignore_dots, 0);
	done(p);
	/* Anything else is ignored, and its argument consumed. */
	p = ok(ARGV("sendmail", "-O", "QueueDirectory=/x", "a@x"));
	expect_rcpts(&p->o, RCPTS("a@x"));
	assert_int_equal(p->o.delivery, DELIVER_NOW);
	done(p);
}

static void
t_body_type(void **state)
{
	struct parsed *p;

	(void)state;
	p = ok(ARGV("sendmail", "-B8BITMIME", "a@x"));
	assert_int_equal(p->o.body_8bit, 1);
	done(p);
	p = ok(ARGV("sendmail", "-B", "8bitmime", "a@x"));
	assert_int_equal(p->o.body_8bit, 1);
	expect_rcpts(&p->o, RCPTS("a@x"));
	done(p);
	p = ok(ARGV("sendmail", "-B8BITMIME", "-B", "7bit", "a@x"));
	assert_int_equal(p->o.body_8bit, 0);
	done(p);
}

static void
t_queue_runs(void **state)
{
	static const char *const plain[] = { "-q", "-q15m", "-qf", "-qp" };
	struct parsed *p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		p = ok(ARGV("sendmail", plain[i]));
		assert_int_equal(p->o.mode, MODE_RUN_QUEUE);
		assert_null(p->o.filter.qid);
		assert_null(p->o.filter.domain);
		assert_int_equal(p->o.filter.force, 0);
		done(p);
	}
	p = ok(ARGV("sendmail", "-qIABCDEF0123"));
	assert_int_equal(p->o.mode, MODE_RUN_QUEUE);
	assert_string_equal(p->o.filter.qid, "ABCDEF0123");
	assert_int_equal(p->o.filter.force, 1);
	done(p);
	p = ok(ARGV("sendmail", "-qRexample.org"));
	assert_string_equal(p->o.filter.domain, "example.org");
	assert_int_equal(p->o.filter.force, 0);
	done(p);
	p = ok(ARGV("sendmail", "-qSexample.net"));
	assert_string_equal(p->o.filter.domain, "example.net");
	done(p);
}

static void
t_dsn(void **state)
{
	struct parsed *p;

	(void)state;
	p = ok(ARGV("sendmail", "-N", "never", "a@x"));
	assert_string_equal(p->o.dsn.notify, "NEVER");
	assert_int_equal(p->o.dsn_options, 1);
	expect_rcpts(&p->o, RCPTS("a@x"));
	done(p);
	p = ok(ARGV("sendmail", "-Ndelay,Success,FAILURE", "a@x"));
	assert_string_equal(p->o.dsn.notify, "DELAY,SUCCESS,FAILURE");
	assert_null(p->o.dsn_ignored);
	done(p);
	/* Invalid or repeated words: ignored, kept for the log. */
	p = ok(ARGV("sendmail", "-N", "success,bogus", "a@x"));
	assert_string_equal(p->o.dsn.notify, "");
	assert_string_equal(p->o.dsn_ignored, "success,bogus");
	assert_int_equal(p->o.dsn_options, 1);
	done(p);
	p = ok(ARGV("sendmail", "-Nsuccess,success", "a@x"));
	assert_string_equal(p->o.dsn.notify, "");
	assert_non_null(p->o.dsn_ignored);
	done(p);
	p = ok(ARGV("sendmail", "-R", "hdrs", "a@x"));
	assert_string_equal(p->o.dsn.ret, "HDRS");
	assert_int_equal(p->o.dsn_options, 1);
	done(p);
	p = ok(ARGV("sendmail", "-RFull", "a@x"));
	assert_string_equal(p->o.dsn.ret, "FULL");
	done(p);
	p = ok(ARGV("sendmail", "-R", "most", "a@x"));
	assert_string_equal(p->o.dsn.ret, "");
	assert_string_equal(p->o.dsn_ignored, "most");
	done(p);
	/* -V: xtext-encoded; it is not a -N/-R for -bv's sake. */
	p = ok(ARGV("sendmail", "-V", "id+1=a b", "a@x"));
	assert_string_equal(p->o.dsn.envid, "id+2B1+3Da+20b");
	assert_int_equal(p->o.dsn_options, 0);
	expect_rcpts(&p->o, RCPTS("a@x"));
	done(p);
}

static void
t_b_modes(void **state)
{
	static const struct {
		const char	*arg;
		enum mode	 want;
	} modes[] = {
		{ "-bm", MODE_SEND }, { "-bs", MODE_SMTP },
		{ "-bp", MODE_LIST_QUEUE }, { "-bi", MODE_ALIASES },
		{ "-bh", MODE_NOOP }, { "-bH", MODE_NOOP },
	};
	struct parsed *p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		p = ok(ARGV("sendmail", modes[i].arg));
		assert_int_equal(p->o.mode, modes[i].want);
		done(p);
	}
	p = ok(ARGV("sendmail", "-bv", "root", "a@x"));
	assert_int_equal(p->o.mode, MODE_VERIFY);
	expect_rcpts(&p->o, RCPTS("root", "a@x"));
	done(p);
	/* -i is harmless with -bs (Laravel passes -bs -i). */
	p = ok(ARGV("sendmail", "-bs", "-i"));
	assert_int_equal(p->o.mode, MODE_SMTP);
	done(p);
	p = ok(ARGV("sendmail", "--version", "-bp"));
	assert_int_equal(p->o.mode, MODE_LIST_QUEUE);
	done(p);
	/* --version last wins, and then nothing else is checked. */
	p = ok(ARGV("sendmail", "-bp", "a@x", "--version"));
	assert_int_equal(p->o.mode, MODE_VERSION);
	done(p);
}

static void
t_ssmtp_auth(void **state)
{
	struct parsed *p;

	(void)state;
	p = ok(ARGV("sendmail", "-aubob", "a@x"));
	assert_string_equal(p->o.auth_user, "bob");
	assert_null(p->o.auth_method);
	done(p);
	p = ok(ARGV("sendmail", "-au", "bob", "-am", "LOGIN", "a@x"));
	assert_string_equal(p->o.auth_user, "bob");
	assert_string_equal(p->o.auth_method, "LOGIN");
	expect_rcpts(&p->o, RCPTS("a@x"));
	done(p);
	p = ok(ARGV("sendmail", "-amcram-md5", "a@x"));
	assert_string_equal(p->o.auth_method, "cram-md5");
	done(p);
	p = ok(ARGV("sendmail", "-amPlain", "a@x"));
	assert_string_equal(p->o.auth_method, "Plain");
	done(p);
}

/* ------------------------------------------------------- subcommands */

static void
t_subcommand_queue(void **state)
{
	struct parsed *p;

	(void)state;
	p = ok(ARGV("postino", "queue"));
	assert_int_equal(p->o.mode, MODE_QUEUE_ADMIN);
	assert_int_equal(p->o.json, 0);
	assert_null(p->o.queue_action);
	done(p);
	p = ok(ARGV("/usr/sbin/postino", "queue", "--json"));
	assert_int_equal(p->o.mode, MODE_QUEUE_ADMIN);
	assert_int_equal(p->o.json, 1);
	done(p);
	p = ok(ARGV("postino", "check", "--hub", "-C", "/c", "--json"));
	assert_int_equal(p->o.mode, MODE_CHECK);
	assert_int_equal(p->o.hub_check, 1);
	assert_int_equal(p->o.json, 1);
	assert_string_equal(p->o.config_path, "/c");
	assert_int_equal(p->o.warn_days, 14);
	done(p);
	p = ok(ARGV("postino", "check", "--hub", "--warn-days", "3", "-C",
	    "/c"));
	assert_int_equal(p->o.warn_days, 3);
	assert_string_equal(p->o.config_path, "/c");
	done(p);
	p = ok(ARGV("postino", "check"));
	assert_int_equal(p->o.hub_check, 0);
	done(p);
	p = ok(ARGV("postino", "queue", "--metrics"));
	assert_int_equal(p->o.metrics, 1);
	done(p);
	p = ok(ARGV("postino", "queue", "-C", "/c", "--metrics", "--write"));
	assert_int_equal(p->o.metrics, 2);
	done(p);
	p = ok(ARGV("postino", "queue", "delete", "ABCDEF0123"));
	assert_string_equal(p->o.queue_action, "delete");
	assert_string_equal(p->o.filter.qid, "ABCDEF0123");
	done(p);
	p = ok(ARGV("postino", "queue", "-C", "/c", "hold", "ID"));
	assert_string_equal(p->o.queue_action, "hold");
	assert_string_equal(p->o.filter.qid, "ID");
	assert_string_equal(p->o.config_path, "/c");
	done(p);
	p = ok(ARGV("postino", "-C/c", "queue", "release", "ID"));
	assert_string_equal(p->o.queue_action, "release");
	assert_string_equal(p->o.config_path, "/c");
	done(p);
	p = ok(ARGV("postino", "-C", "/c", "queue"));
	assert_int_equal(p->o.mode, MODE_QUEUE_ADMIN);
	assert_string_equal(p->o.config_path, "/c");
	done(p);
	/* Only as postino: sendmail's "queue" is a recipient. */
	p = ok(ARGV("sendmail", "queue"));
	assert_int_equal(p->o.mode, MODE_SEND);
	expect_rcpts(&p->o, RCPTS("queue"));
	done(p);
	/* Not the first word: a recipient too. */
	p = ok(ARGV("postino", "a@x", "queue"));
	assert_int_equal(p->o.mode, MODE_SEND);
	expect_rcpts(&p->o, RCPTS("a@x", "queue"));
	done(p);
}

static void
t_subcommand_verify_and_check(void **state)
{
	struct parsed *p;

	(void)state;
	p = ok(ARGV("postino", "verify", "root", "a@x"));
	assert_int_equal(p->o.mode, MODE_VERIFY);
	expect_rcpts(&p->o, RCPTS("root", "a@x"));
	done(p);
	p = ok(ARGV("postino", "-C", "/c", "verify", "-n", "root"));
	assert_int_equal(p->o.mode, MODE_VERIFY);
	assert_int_equal(p->o.no_alias, 1);
	assert_string_equal(p->o.config_path, "/c");
	done(p);
	p = ok(ARGV("postino", "check"));
	assert_int_equal(p->o.mode, MODE_CHECK);
	done(p);
	p = ok(ARGV("postino", "check", "-C", "/c"));
	assert_int_equal(p->o.mode, MODE_CHECK);
	assert_string_equal(p->o.config_path, "/c");
	done(p);
	/* Plain postino is sendmail. */
	p = ok(ARGV("postino", "-t", "-i"));
	assert_int_equal(p->o.mode, MODE_SEND);
	assert_int_equal(p->o.extract, 1);
	done(p);
}

/* ------------------------------------------------------- usage errors */

static void
t_usage_errors_of_options(void **state)
{
	(void)state;
	usage(ARGV("sendmail", "-Z", "a@x"), "unsupported option -Z");
	usage(ARGV("sendmail", "-tZ", "a@x"), "unsupported option -Z");
	usage(ARGV("sendmail", "a@x", "-f"), "option -f requires an argument");
	usage(ARGV("sendmail", "-V"), "option -V requires an argument");
	usage(ARGV("sendmail", "-ti", "-h"), "option -h requires an argument");
	usage(ARGV("sendmail", "-b", "a@x"),
	    "option -b requires a mode letter");
	usage(ARGV("sendmail", "-bt"), "unsupported option -bt");
	usage(ARGV("sendmail", "-ba"), "unsupported option -ba");
	usage(ARGV("sendmail", "-bz"), "unsupported option -bz");
	usage(ARGV("sendmail", "-bP"), "unsupported option -bP");
	usage(ARGV("sendmail", "-bd"), "-bd: postino is not a daemon");
	usage(ARGV("sendmail", "-bD"), "-bD: postino is not a daemon");
	usage(ARGV("sendmail", "-bl"), "-bl: postino is not a daemon");
	usage(ARGV("sendmail", "-B", "foo", "a@x"),
	    "-B: expected 7BIT or 8BITMIME, got 'foo'");
	usage(ARGV("sendmail", "-o", "a@x"),
	    "option -o requires an attached letter");
	usage(ARGV("sendmail", "-oex", "a@x"),
	    "-oe: expected one of p, q, m, w, e");
	usage(ARGV("sendmail", "-oe", "a@x"),
	    "-oe: expected one of p, q, m, w, e");
	usage(ARGV("sendmail", "-odbb", "a@x"),
	    "-od: expected one of i, b, q, d");
	usage(ARGV("sendmail", "-O", "DeliveryMode=x", "a@x"),
	    "-O DeliveryMode: expected b, q, d or i");
	usage(ARGV("sendmail", "-ODeliveryMode", "a@x"),
	    "-O DeliveryMode: expected b, q, d or i");
	usage(ARGV("sendmail", "-qI"), "-qI requires a queue id");
	usage(ARGV("sendmail", "-qR"), "-qR requires a site");
	usage(ARGV("sendmail", "-qS"), "-qS requires a site");
	usage(ARGV("/usr/lib/sendmail", "--help"),
	    "usage: sendmail [-i] [-t] [-f sender] [-F name] [-C config] "
	    "[-v] [--] [recipient ...]; see postino(8)");
}

static void
t_usage_errors_of_ssmtp_auth(void **state)
{
	struct parsed *p;

	(void)state;
	usage(ARGV("sendmail", "-ax", "a@x"), "unsupported option -ax");
	usage(ARGV("sendmail", "-a", "a@x"), "unsupported option -a ");
	usage(ARGV("sendmail", "-au"), "option -au requires an argument");
	usage(ARGV("sendmail", "a@x", "-am"),
	    "option -am requires an argument");
	usage(ARGV("sendmail", "-amdigest-md5", "a@x"),
	    "-am: expected plain, login or cram-md5");
	/* -ap: refused, and the password is not repeated. */
	p = parse(ARGV("sendmail", "-apS3cret", "a@x"));
	assert_int_equal(p->st, ST_USAGE);
	assert_string_equal(p->err.text, "-ap: passwords on the command line "
	    "are refused (visible in ps); use AuthPass or AuthPassFile");
	done(p);
	usage(ARGV("sendmail", "-ap", "S3cret", "a@x"), "-ap: passwords on "
	    "the command line are refused (visible in ps); use AuthPass or "
	    "AuthPassFile");
}

static void
t_usage_errors_of_modes(void **state)
{
	static const char *const no_rcpts[] = {
		"-bp", "-bs", "-bi", "-bh", "-q", "-I"
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(no_rcpts) / sizeof(no_rcpts[0]); i++)
		usage(ARGV("sendmail", no_rcpts[i], "a@x"),
		    "recipients are not allowed in this mode");
	usage(ARGV("sendmail", "-bs", "-t"),
	    "-t is only valid when sending a message");
	usage(ARGV("sendmail", "-t", "-q"),
	    "-t is only valid when sending a message");
	usage(ARGV("postino", "check", "-t"),
	    "-t is only valid when sending a message");
	usage(ARGV("sendmail", "-bv", "-t", "a@x"),
	    "-bv cannot be combined with -t, -N or -R");
	usage(ARGV("sendmail", "-bv", "-N", "never", "a@x"),
	    "-bv cannot be combined with -t, -N or -R");
	usage(ARGV("sendmail", "-R", "full", "-bv", "a@x"),
	    "-bv cannot be combined with -t, -N or -R");
	usage(ARGV("sendmail", "-bv", "-t"),
	    "-bv cannot be combined with -t, -N or -R");
	usage(ARGV("sendmail", "-bv"), "-bv: no addresses to verify");
	usage(ARGV("postino", "verify"), "-bv: no addresses to verify");
}

static void
t_usage_errors_of_subcommands(void **state)
{
	(void)state;
	usage(ARGV("postino", "check", "a@x"),
	    "usage: postino check [-C config] [--hub [--json] [--warn-days N]]");
	usage(ARGV("postino", "check", "--hub", "--warn-days", "x"),
	    "--warn-days takes a number of days (0 to 36500)");
	usage(ARGV("postino", "check", "--hub", "--warn-days"),
	    "--warn-days takes a number of days (0 to 36500)");
	usage(ARGV("postino", "check", "--hub", "--warn-days", "-1"),
	    "--warn-days takes a number of days (0 to 36500)");
	usage(ARGV("postino", "check", "--json"), "unsupported option --");
	usage(ARGV("postino", "check", "-Z"), "unsupported option -Z");
	usage(ARGV("postino", "queue", "-C"),
	    "option -C requires an argument");
	usage(ARGV("postino", "-C"), "option -C requires an argument");
	usage(ARGV("postino", "queue", "frobnicate"),
	    "usage: postino queue [-C config] [--json | --metrics "
	    "[--write] | delete ID | hold ID | release ID]");
	usage(ARGV("postino", "queue", "delete"),
	    "usage: postino queue [-C config] [--json | --metrics "
	    "[--write] | delete ID | hold ID | release ID]");
	usage(ARGV("postino", "queue", "--metrics", "--json"),
	    "usage: postino queue [-C config] [--json | --metrics "
	    "[--write] | delete ID | hold ID | release ID]");
	usage(ARGV("postino", "queue", "delete", "A", "B"),
	    "usage: postino queue [-C config] [--json | --metrics "
	    "[--write] | delete ID | hold ID | release ID]");
	usage(ARGV("postino", "--help"), "usage: postino [-i] [-t] "
	    "[-f sender] [-F name] [-C config] [-v] [--] [recipient ...]; "
	    "see postino(8)");
}

/* ------------------------------------------------- -au/-am override */

static void
t_auth_override(void **state)
{
	struct parsed *p;

	(void)state;
	p = ok(ARGV("sendmail", "-aubob", "-amplain", "a@x"));
	assert_true(options_may_override_auth(&p->o, 0));
	assert_false(options_may_override_auth(&p->o, 1000));
	assert_false(options_may_override_auth(&p->o, 33));
	done(p);
	/* With -C the configuration is the caller's own. */
	p = ok(ARGV("sendmail", "-C", "/home/u/ssmtp.conf", "-aubob", "a@x"));
	assert_true(options_may_override_auth(&p->o, 1000));
	assert_true(options_may_override_auth(&p->o, 0));
	done(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_personality),
		cmocka_unit_test(t_progname),
		cmocka_unit_test(t_defaults),
		cmocka_unit_test(t_options_after_operands_and_double_dash),
		cmocka_unit_test(t_ignored_options_consume_their_argument),
		cmocka_unit_test(t_ignored_flags),
		cmocka_unit_test(t_sender_and_name),
		cmocka_unit_test(t_flags),
		cmocka_unit_test(t_delivery_and_error_modes),
		cmocka_unit_test(t_long_options),
		cmocka_unit_test(t_body_type),
		cmocka_unit_test(t_queue_runs),
		cmocka_unit_test(t_dsn),
		cmocka_unit_test(t_b_modes),
		cmocka_unit_test(t_ssmtp_auth),
		cmocka_unit_test(t_subcommand_queue),
		cmocka_unit_test(t_subcommand_verify_and_check),
		cmocka_unit_test(t_usage_errors_of_options),
		cmocka_unit_test(t_usage_errors_of_ssmtp_auth),
		cmocka_unit_test(t_usage_errors_of_modes),
		cmocka_unit_test(t_usage_errors_of_subcommands),
		cmocka_unit_test(t_auth_override),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
