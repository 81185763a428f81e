/*
 * options.c: the sendmail command line. The personality (argv[0]), the
 * "postino queue|verify|check" subcommands, every sendmail and ssmtp
 * option real callers pass, and which combinations a mode allows. The
 * result is a struct options; a usage error is ST_USAGE with the text
 * main() prints. Nothing here prints, exits or logs.
 */
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "postino.h"

/* Letters whose option takes an argument (attached or next element). */
static const char OPTS_WITH_ARG[] = "ABCFLMNOQRVXDdefhpr";
/* Letters accepted without an argument. */
static const char OPTS_FLAGS[] = "GIUTcimnstvx";

static int
set_body_type(struct options *o, const char *v, struct error *err)
{
	if (strcasecmp(v, "8BITMIME") == 0)
		o->body_8bit = 1;
	else if (strcasecmp(v, "7BIT") == 0)
		o->body_8bit = 0;
	else
		return error_set(err, ST_USAGE,
		    "-B: expected 7BIT or 8BITMIME, got '%s'", v);
	return ST_OK;
}

static void
set_delivery(struct options *o, char mode)
{
	o->delivery = mode == 'b' ? DELIVER_BACKGROUND :
	    mode == 'q' || mode == 'd' ? DELIVER_QUEUE : DELIVER_NOW;
}

/* -O option=value: honour DeliveryMode and IgnoreDots, ignore the rest. */
static int
set_long_option(struct options *o, const char *v, struct error *err)
{
	size_t n = strcspn(v, "=");
	const char *val = v[n] == '=' ? v + n + 1 : "";

	if (n == strlen("IgnoreDots") && strncasecmp(v, "IgnoreDots", n) == 0)
		o->ignore_dots = val[0] == '\0' || strchr("TtYy1", val[0]);
	else if (n == strlen("DeliveryMode") &&
	    strncasecmp(v, "DeliveryMode", n) == 0) {
		if (val[0] == '\0' || val[1] != '\0' ||
		    !strchr("bqdi", val[0]))
			return error_set(err, ST_USAGE,
			    "-O DeliveryMode: expected b, q, d or i");
		set_delivery(o, val[0]);
	}
	return ST_OK;
}

/* -o<x>[value]: Sendmail's short options; the value is attached. */
static int
set_short_option(struct options *o, const char *v, struct error *err)
{
	if (v[0] == '\0')
		return error_set(err, ST_USAGE,
		    "option -o requires an attached letter");
	switch (v[0]) {
	case 'i':
		o->ignore_dots = 1;
		break;
	case 'e':
		if (v[1] == '\0' || v[2] != '\0' || !strchr("pqmwe", v[1]))
			return error_set(err, ST_USAGE,
			    "-oe: expected one of p, q, m, w, e");
		o->error_mode = v[1];
		break;
	case 'd':
		if (v[1] == '\0' || v[2] != '\0' || !strchr("ibqd", v[1]))
			return error_set(err, ST_USAGE,
			    "-od: expected one of i, b, q, d");
		set_delivery(o, v[1]);
		break;
	default:
		break;	/* -om -o7 -o8 -oQ... -oA... -oL...: ignored */
	}
	return ST_OK;
}

static int
set_mode(struct options *o, const char *v, struct error *err)
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
		return error_set(err, ST_USAGE,
		    "-b%s: postino is not a daemon", v);
	else if (strcmp(v, "s") == 0)
		o->mode = MODE_SMTP;
	else if (strcmp(v, "v") == 0)
		o->mode = MODE_VERIFY;
	else
		return error_set(err, ST_USAGE, "unsupported option -b%s", v);
	return ST_OK;
}

/*
 * -q, -q15m (there is no daemon: one pass), -qf, -qp, -qI<id>,
 * -qR<site>, -qS<site>.
 */
static int
set_queue_run(struct options *o, const char *v, struct error *err)
{
	o->mode = MODE_RUN_QUEUE;
	if (v[0] == 'I') {
		if (v[1] == '\0')
			return error_set(err, ST_USAGE,
			    "-qI requires a queue id");
		o->filter.qid = v + 1;
		o->filter.force = 1;
	} else if (v[0] == 'R' || v[0] == 'S') {
		if (v[1] == '\0')
			return error_set(err, ST_USAGE,
			    "-q%c requires a site", v[0]);
		o->filter.domain = v + 1;
	}
	return ST_OK;
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

/* -R hdrs | full (any case); anything else is ignored and logged. */
static void
set_dsn_ret(struct options *o, const char *v)
{
	if (strcasecmp(v, "hdrs") != 0 && strcasecmp(v, "full") != 0) {
		o->dsn_ignored = v;
		return;
	}
	/*
	 * clang 14 forgets o->rcpt_args when strlcpy fills a field of *o,
	 * and calls that a leak.
	 */
	/* NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
	(void)strlcpy(o->dsn.ret, v, sizeof(o->dsn.ret));
	for (char *c = o->dsn.ret; *c != '\0'; c++)
		*c = (char)toupper((unsigned char)*c);
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

static int
set_option_with_arg(struct options *o, char letter, const char *v,
    struct error *err)
{
	switch (letter) {
	case 'B':
		return set_body_type(o, v, err);
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
		return set_long_option(o, v, err);
	case 'N':
		o->dsn_options = 1;
		set_dsn_notify(o, v);
		break;
	case 'R':
		o->dsn_options = 1;
		set_dsn_ret(o, v);
		break;
	case 'V':
		set_dsn_envid(o, v);
		break;
	default:
		break;	/* -A -L -X -D -M -Q -d -e -h -p: ignored */
	}
	return ST_OK;
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
		break;	/* -G -U -T -c -m -s -x: ignored */
	}
}

/*
 * ssmtp's -au<user> and -am<method> override AuthUser and AuthMethod
 * (for whom: options_may_override_auth). -ap<password> is refused: a
 * password in argv is visible to every local user in ps(1).
 */
static int
set_ssmtp_auth(struct options *o, int argc, char **argv, int *i,
    struct error *err)
{
	const char *p = argv[*i] + 2, *v;

	if (*p != 'u' && *p != 'm' && *p != 'p')
		return error_set(err, ST_USAGE, "unsupported option -a%c",
		    *p != '\0' ? *p : ' ');
	if (*p == 'p')
		return error_set(err, ST_USAGE, "-ap: passwords on the "
		    "command line are refused (visible in ps); use AuthPass "
		    "or AuthPassFile");
	v = p + 1;
	if (*v == '\0') {
		if (*i + 1 >= argc)
			return error_set(err, ST_USAGE,
			    "option -a%c requires an argument", *p);
		v = argv[++*i];
	}
	if (*p == 'u')
		o->auth_user = v;
	else if (strcasecmp(v, "plain") != 0 && strcasecmp(v, "login") != 0 &&
	    strcasecmp(v, "cram-md5") != 0)
		return error_set(err, ST_USAGE,
		    "-am: expected plain, login or cram-md5");
	else
		o->auth_method = v;
	return ST_OK;
}

/*
 * A cluster of flags, possibly ending in a letter that takes an
 * argument (attached, or the next element, consumed through *i).
 */
static int
parse_flag_cluster(struct options *o, int argc, char **argv, int *i,
    struct error *err)
{
	const char *p;

	for (p = argv[*i] + 1; *p != '\0'; p++) {
		if (strchr(OPTS_WITH_ARG, *p) != NULL) {
			const char *v = p + 1;

			if (*v == '\0') {
				if (*i + 1 >= argc)
					return error_set(err, ST_USAGE,
					    "option -%c requires an argument",
					    *p);
				v = argv[++*i];
			}
			return set_option_with_arg(o, *p, v, err);
		}
		if (strchr(OPTS_FLAGS, *p) == NULL)
			return error_set(err, ST_USAGE,
			    "unsupported option -%c", *p);
		set_flag(o, *p);
	}
	return ST_OK;
}

/* One argv element that starts with '-'. */
static int
parse_option_element(struct options *o, int argc, char **argv, int *i,
    struct error *err)
{
	const char *p = argv[*i] + 1;

	switch (*p) {
	case 'b':
		if (p[1] == '\0')
			return error_set(err, ST_USAGE,
			    "option -b requires a mode letter");
		return set_mode(o, p + 1, err);
	case 'q':
		return set_queue_run(o, p + 1, err);
	case 'o':
		return set_short_option(o, p + 1, err);
	case 'a':
		return set_ssmtp_auth(o, argc, argv, i, err);
	default:
		return parse_flag_cluster(o, argc, argv, i, err);
	}
}

/*
 * Options are recognised anywhere before "--" (glibc, Sendmail 8 on
 * Linux and ssmtp do the same), so an option after an address is never
 * taken for a recipient.
 */
static int
parse_arguments(struct options *o, int argc, char **argv, struct error *err)
{
	int i, options_done = 0;

	o->rcpt_args = calloc((size_t)argc + 1, sizeof(char *));
	if (o->rcpt_args == NULL)
		return error_set(err, ST_OSERR, "out of memory");
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!options_done && strcmp(a, "--") == 0)
			options_done = 1;
		else if (!options_done && strcmp(a, "--version") == 0)
			o->mode = MODE_VERSION;
		else if (!options_done && strcmp(a, "--help") == 0)
			return error_set(err, ST_USAGE, "usage: %s [-i] [-t] "
			    "[-f sender] [-F name] [-C config] [-v] [--] "
			    "[recipient ...]; see postino(8)", o->progname);
		else if (!options_done && a[0] == '-' && a[1] != '\0') {
			if (parse_option_element(o, argc, argv, &i, err) !=
			    ST_OK)
				return err->status;
		} else
			o->rcpt_args[o->nrcpt_args++] = argv[i];
	}
	return ST_OK;
}

/*
 * postino queue [-C config] [--json | --metrics [--write] | delete ID |
 * hold ID | release ID]:
 * -C file may come anywhere, attached or not; the rest is words. q is
 * the index of "queue".
 */
static int
parse_queue_command(struct options *o, int argc, char **argv, int q,
    struct error *err)
{
	const char *words[3];
	int i, n = 0;

	o->mode = MODE_QUEUE_ADMIN;
	for (i = 1; i < argc; i++) {
		if (i == q)
			continue;
		if (strncmp(argv[i], "-C", 2) == 0) {
			if (argv[i][2] != '\0')
				o->config_path = argv[i] + 2;
			else if (i + 1 < argc)
				o->config_path = argv[++i];
			else
				return error_set(err, ST_USAGE,
				    "option -C requires an argument");
		} else if (n < 3)
			words[n++] = argv[i];
		else
			n = 4;
	}
	if (n == 1 && strcmp(words[0], "--json") == 0)
		o->json = 1;
	else if (n >= 1 && n <= 2 && strcmp(words[0], "--metrics") == 0 &&
	    (n == 1 || strcmp(words[1], "--write") == 0))
		o->metrics = n;
	else if (n == 2 && (strcmp(words[0], "delete") == 0 ||
	    strcmp(words[0], "hold") == 0 || strcmp(words[0], "release") == 0)) {
		o->queue_action = words[0];
		o->filter.qid = words[1];
	} else if (n != 0)
		return error_set(err, ST_USAGE, "usage: postino queue "
		    "[-C config] [--json | --metrics [--write] | delete ID | "
		    "hold ID | release ID]");
	return ST_OK;
}

/*
 * postino check --hub [--json] [--warn-days N]: the words become no-op
 * flags (-bh) for the sendmail parser that reads the rest (-C).
 */
static int
check_hub_words(struct options *o, int argc, char **argv, struct error *err)
{
	char *end;
	long n;
	int i;

	o->warn_days = 14;
	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--hub") == 0) {
			o->hub_check = 1;
			argv[i] = (char *)"-bh";
		} else if (o->hub_check && strcmp(argv[i], "--json") == 0) {
			o->json = 1;
			argv[i] = (char *)"-bh";
		} else if (o->hub_check && strcmp(argv[i], "--warn-days") ==
		    0) {
			errno = 0;
			n = i + 1 < argc && argv[i + 1][0] >= '0' &&
			    argv[i + 1][0] <= '9' ? strtol(argv[i + 1], &end,
			    10) : -1;
			if (n < 0 || n > 36500 || errno != 0 || *end != '\0')
				return error_set(err, ST_USAGE, "--warn-days "
				    "takes a number of days (0 to 36500)");
			o->warn_days = (int)n;
			argv[i] = argv[i + 1] = (char *)"-bh";
			i++;
		}
	return ST_OK;
}

/*
 * Invoked as postino, a first argument naming a subcommand runs it.
 * *handled tells whether one did; "verify" only rewrites itself into -bv
 * and leaves the rest to the sendmail parser.
 */
static int
parse_subcommand(struct options *o, int argc, char **argv, int *handled,
    struct error *err)
{
	int q = 1;

	*handled = 0;
	/* "postino -C file queue ..." as well as "postino queue -C file". */
	while (q < argc && strncmp(argv[q], "-C", 2) == 0)
		q += argv[q][2] == '\0' ? 2 : 1;
	if (q >= argc)
		return ST_OK;
	if (strcmp(argv[q], "verify") == 0) {
		/* postino verify ADDR...: sendmail -bv ADDR... */
		argv[q] = (char *)"-bv";
		return ST_OK;
	}
	if (strcmp(argv[q], "check") == 0) {
		*handled = 1;
		argv[q] = (char *)"-bh";	/* a no-op flag in its place */
		if (check_hub_words(o, argc, argv, err) != ST_OK ||
		    parse_arguments(o, argc, argv, err) != ST_OK)
			return err->status;
		if (o->nrcpt_args > 0)
			return error_set(err, ST_USAGE,
			    "usage: postino check [-C config] "
			    "[--hub [--json] [--warn-days N]]");
		o->mode = MODE_CHECK;
		return ST_OK;
	}
	if (strcmp(argv[q], "token") == 0) {
		*handled = 1;
		argv[q] = (char *)"-bh";	/* a no-op flag in its place */
		if (parse_arguments(o, argc, argv, err) != ST_OK)
			return err->status;
		if (o->nrcpt_args > 0)
			return error_set(err, ST_USAGE,
			    "usage: postino token [-C config]");
		o->mode = MODE_TOKEN;
		return ST_OK;
	}
	if (strcmp(argv[q], "queue") != 0)
		return ST_OK;
	*handled = 1;
	return parse_queue_command(o, argc, argv, q, err);
}

/* Which modes take recipients, -t, and -bv's own limits. */
static int
check_mode(const struct options *o, struct error *err)
{
	if (o->mode == MODE_VERSION)
		return ST_OK;
	if (o->mode != MODE_SEND && o->mode != MODE_VERIFY &&
	    o->nrcpt_args > 0)
		return error_set(err, ST_USAGE,
		    "recipients are not allowed in this mode");
	if (o->extract && o->mode != MODE_SEND && o->mode != MODE_VERIFY)
		return error_set(err, ST_USAGE,
		    "-t is only valid when sending a message");
	if (o->mode != MODE_VERIFY)
		return ST_OK;
	if (o->dsn_options || o->extract)
		return error_set(err, ST_USAGE,
		    "-bv cannot be combined with -t, -N or -R");
	/* -bv -f ADDR alone tells which sender the caller would get. */
	if (o->nrcpt_args == 0 && o->sender == NULL)
		return error_set(err, ST_USAGE, "-bv: no addresses to verify");
	return ST_OK;
}

enum mode
options_personality(const char *argv0)
{
	const char *base = strrchr(argv0, '/');

	base = base != NULL ? base + 1 : argv0;
	if (strncmp(base, "mailq", 5) == 0)
		return MODE_LIST_QUEUE;
	if (strncmp(base, "newaliases", 10) == 0)
		return MODE_ALIASES;
	return MODE_SEND;
}

int
options_parse(struct options *o, int argc, char **argv, struct error *err)
{
	int handled = 0;

	memset(o, 0, sizeof(*o));
	error_clear(err);
	o->progname = "sendmail";
	if (argc > 0 && argv[0] != NULL && argv[0][0] != '\0') {
		const char *base = strrchr(argv[0], '/');

		o->progname = base != NULL ? base + 1 : argv[0];
	}
	o->mode = options_personality(o->progname);
	if (strcmp(o->progname, "postino") == 0 &&
	    parse_subcommand(o, argc, argv, &handled, err) != ST_OK)
		return err->status;
	if (!handled && parse_arguments(o, argc, argv, err) != ST_OK)
		return err->status;
	return check_mode(o, err);
}

void
options_free(struct options *o)
{
	free(o->rcpt_args);
	o->rcpt_args = NULL;
	o->nrcpt_args = 0;
}

/*
 * -au/-am replace credentials the administrator chose. From an ordinary
 * user on the system configuration they would point the protected
 * AuthPass at another account, or downgrade CRAM-MD5 to a method that
 * hands the password itself to the hub. So only root may, or a caller
 * with -C, whose group is given up before the file is read: the only
 * credentials they can reach then are their own.
 */
int
options_may_override_auth(const struct options *o, uid_t uid)
{
	return uid == 0 || o->config_path != NULL;
}
