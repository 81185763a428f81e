/*
 * postino.h: the table of contents of postino. Every source file, one
 * line each, in the order a message goes through them:
 *
 *   sendmail.c  main(); the outcome table: exit codes, stderr, -bs replies
 *   options.c   the command line: personality, subcommands, options
 *   caller.c    who calls; configuration, aliases, revaliases (with group)
 *   config.c    ssmtp.conf and postino's own keys
 *   priv.c      the set-group-ID group: dropped, taken around queue steps
 *   message.c   stdin -> spool file, header scan and rewrite, wire form
 *   addr.c      RFC 5322 address and address-list syntax
 *   alias.c     revaliases, aliases, Root=, sender and recipients, route
 *   sender.c    AllowedSendersFile and SenderPolicy: who may use which sender
 *   submit.c    one submission: read, recipients, sender, limit, delivery
 *   ratelimit.c RateLimit: a parsed policy against a per-uid counter
 *   deliver.c   settlement: session, attempt, the outcome of a message
 *   smtp.c      the SMTP client protocol over an open connection
 *   auth.c      SASL: base64, HMAC-MD5, PLAIN/LOGIN/CRAM-MD5 responses
 *   oauth.c     OAuth 2.0 bearer tokens: AuthTokenFile, the token endpoint
 *   conn.c      connections: TCP connect, buffered line reads, back ends
 *   deadline.c  the monotonic clock; waiting on a descriptor, bounded
 *   tls.c       OpenSSL: handshake, verification, pins (conn.c's back end;
 *               its entry points are in src/conn_impl.h)
 *   ossl.c      OpenSSL loaded at the first TLS hop (dlopen; src/ossl.h)
 *   bounce.c    RFC 3464 reports of non-delivery
 *   queue.c     the queue directory: commit, lock, update, marks, counters
 *   runner.c    the queue pass (-q, the timer, after a send)
 *   modes.c     -q, mailq / postino queue, -bv, postino check, newaliases
 *   showq.c     the queue listing, postino queue ACTION, --metrics
 *   hubcheck.c  postino check --hub: a session to the hub, no message
 *   smtpd.c     sendmail -bs: the SMTP server side on stdin/stdout
 *   log.c       error records, untrusted-text sanitising, log lines
 *
 * Structures used across files and the exported prototypes follow,
 * grouped by owning file (in the order their types need). Modules do
 * not print or exit; they return a status and fill a caller-owned struct
 * error. Only sendmail.c maps statuses and outcomes to exit codes; log
 * lines are written by main(), the settlement (deliver.c) and the queue
 * pass, the places that know what became of a message.
 */
#ifndef POSTINO_H
#define POSTINO_H

#include <sys/types.h>

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifndef POSTINO_VERSION
#define POSTINO_VERSION		"0.1.0"
#endif
#ifndef POSTINO_CONFDIR
#define POSTINO_CONFDIR		"/etc/ssmtp"
#endif
#ifndef POSTINO_QUEUEDIR
#define POSTINO_QUEUEDIR	"/var/spool/postino"
#endif
#define POSTINO_CONFFILE	POSTINO_CONFDIR "/ssmtp.conf"
#define POSTINO_REVALIASES	POSTINO_CONFDIR "/revaliases"
#define POSTINO_MAILNAME	"/etc/mailname"

/* Limits. Every one is enforced; exceeding it is an error, never a crash. */
#define ERR_MAX		512	/* text of an error record */
#define ADDR_MAX	512	/* one address (RFC 5321 path limit is 256) */
#define HOST_MAX	256	/* a host name or address literal */
#define PORT_MAX	16	/* a port number or service name */
#define SECRET_MAX	512	/* AuthUser / AuthPass */
#define NAME_MAX_	256	/* a display name (-F, GECOS) */
#define QID_LEN		10	/* our queue id: 10 upper-case hex digits */
#define QID_MAX		(QID_LEN + 1)
#define REPLY_LINE_MAX	1024	/* one line of an SMTP reply, CRLF included */
#define REPLY_LINES_MAX	100	/* lines in one multi-line reply */
#define REPLY_TEXT_MAX	1024	/* what we keep of a reply (sanitised) */
#define HEADER_KEEP_MAX	65536	/* a header longer than this is passed through unrewritten */
#define RCPT_MAX	10000	/* recipients of one message */
#define ADDHEADER_MAX	16	/* AddHeader= lines */
#define TLS_PINS_MAX	8	/* TLSFingerprint= pins (room for rotation) */
#define HUBS_MAX	8	/* MailHub= entries (a primary and fallbacks) */
#define TLS_PIN_LEN	32	/* one pin: a SHA-256 digest */
#define SMTP_LINE_MAX	998	/* RFC 5322 line limit, CRLF excluded */

/*
 * Outcome classes. They cross module boundaries; exit codes do not
 * (sendmail.c maps them).
 */
enum status {
	ST_OK = 0,
	ST_TEMP,	/* try again later: network, timeout, 4xx, TLS, AUTH */
	ST_PERM,	/* the hub refused for good (5xx) */
	ST_USAGE,	/* the caller asked for something impossible */
	ST_DATA,	/* malformed input: address syntax, CR/LF/NUL */
	ST_CONFIG,	/* configuration unreadable or invalid */
	ST_IOERR,	/* reading the message failed */
	ST_CANTCREAT,	/* the spool file could not be created or written */
	ST_OSERR,	/* fork, pipe, memory */
	ST_SOFTWARE,	/* a bug */
	ST_LIMIT,	/* refused by a policy limit (RateLimit) */
	ST_NOPERM,	/* the caller may not do that (another user's entry) */
	ST_SENDER	/* SenderPolicy=refuse: a sender the user may not use */
};

/* Why a temporary failure needs an administrator (DESIGN.md outcomes). */
enum admin_hint {
	HINT_NONE = 0,
	HINT_TLS_VERIFY,	/* certificate refused: set TLS_CA_File or TLSFingerprint */
	HINT_AUTH,		/* credentials refused */
	HINT_TLS_POLICY		/* e.g. STARTTLS required but not offered */
};

struct error {
	enum status	 status;
	enum admin_hint	 hint;
	char		 text[ERR_MAX];
};

/* -------------------------------------------------------------- log.c */

/* Fill err (status and printf-style text); returns status for `return`. */
int		 error_set(struct error *, enum status, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
/* Prefix err->text with more context: "context: old text". */
void		 error_prefix(struct error *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
void		 error_clear(struct error *);
/*
 * Copy untrusted text (server replies, header values) so that it is safe
 * for a terminal or syslog: control bytes and 8-bit bytes become '?',
 * truncated to dstlen - 1. Returns dst.
 */
char		*log_sanitize(char *dst, size_t dstlen, const char *src,
		    size_t srclen);
/*
 * s as a JSON string on out (--json listings, check --hub --json):
 * RFC 8259's escapes; bytes outside printable ASCII as \u escapes
 * (controls) or '?' (8-bit), as the log shows them.
 */
void		 log_json_string(FILE *out, const char *s);
/*
 * Log lines go to syslog (facility mail) or, when file is not empty
 * (LogFile=), are appended to that file with a timestamp and the ident,
 * for hosts and containers without a syslog daemon. The ident and every
 * line are sanitised here (control bytes become '?', a tab a space), so
 * callers may pass untrusted values: no line can forge another.
 */
void		 log_open(const char *service, const char *file);
void		 log_line(int priority, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
/*
 * The ident is postino/SERVICE, as Postfix's is postfix/SERVICE, so
 * that pflogsumm, logwatch and log exporters read our lines: log_line()
 * uses log_open()'s service (argv[0]'s name, e.g. sendmail), log_svc()
 * the Postfix service whose line it writes.
 */
enum log_service {
	LOGSVC_PICKUP,		/* "QID: uid=N from=<s>": a message received */
	LOGSVC_QMGR,		/* "QID: from=<s>, size=N, nrcpt=N", removed */
	LOGSVC_SMTP,		/* delivery lines and the TLS line */
	LOGSVC_BOUNCE,		/* "sender non-delivery notification" */
	LOGSVC_CLEANUP		/* "QID: reject: ...": refused at submission */
};
void		 log_svc(int priority, enum log_service, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

/* ---------------------------------------------------------- options.c */

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
	MODE_CHECK,		/* postino check */
	MODE_TOKEN		/* postino token: refresh the OAuth token */
};

enum delivery {
	DELIVER_NOW = 0,	/* -odi, the default: synchronous */
	DELIVER_BACKGROUND,	/* -odb: commit, deliver detached */
	DELIVER_QUEUE		/* -odq, -odd: commit only */
};

/*
 * DSN requests (-N, -R, -V; RFC 3461), passed to the hub only when it
 * offers DSN, and silently dropped otherwise. Empty strings: not given.
 */
struct dsn {
	char		 notify[32];	/* "NEVER" or "SUCCESS,FAILURE,DELAY" */
	char		 ret[8];	/* "HDRS" or "FULL" */
	char		 envid[101];	/* xtext-encoded ENVID */
};

/* Which queue entries a run takes (-qI, -qR; postino queue ID). */
struct runner_filter {
	const char	*qid;		/* -qI: only this entry */
	const char	*domain;	/* -qR: a recipient domain suffix */
	int		 force;		/* ignore next-retry (-qI, flush) */
	/*
	 * A run started by an ordinary user takes only that user's entries:
	 * the user can stop it (SIGSTOP), and must not hold others' mail.
	 */
	int		 own_only;
	uid_t		 owner;		/* with own_only: the caller's uid */
};

/* The command line. Strings point into argv. */
struct options {
	const char	*progname;	/* basename of argv[0], or "sendmail" */
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
	int		 command_timeout; /* -O Timeout.command, s; 0: 300 */
	struct runner_filter filter;	/* -qI, -qR */
	const char	*queue_action;	/* postino queue ACTION */
	const char	*auth_user;	/* ssmtp's -au */
	const char	*auth_method;	/* ssmtp's -am */
	int		 json;		/* postino queue --json */
	int		 metrics;	/* --metrics: 1; --metrics --write: 2 */
	int		 hub_check;	/* postino check --hub */
	int		 warn_days;	/* --warn-days N (default 14) */
	char		**rcpt_args;	/* operands */
	size_t		 nrcpt_args;
};

/* The personality of a program name: mailq, newaliases, else sendmail. */
enum mode	 options_personality(const char *argv0);
/*
 * Parse argv into o (cleared first; free with options_free even on
 * error): the personality, a postino subcommand, the options, and the
 * mode's limits. ST_USAGE with the text to show, ST_OSERR on ENOMEM.
 * "postino verify" and "postino check" rewrite their argv element.
 */
int		 options_parse(struct options *, int argc, char **argv,
		    struct error *);
void		 options_free(struct options *);
/*
 * May -au/-am replace AuthUser/AuthMethod for the caller with real uid
 * uid? Only root, or with -C (a configuration of the caller's own).
 */
int		 options_may_override_auth(const struct options *, uid_t uid);

/* ----------------------------------------------------------- config.c */

enum tls_mode {
	TLS_NONE = 0,
	TLS_STARTTLS,	/* UseSTARTTLS=YES */
	TLS_IMPLICIT	/* UseTLS=YES alone: TLS from connect (port 465) */
};

enum auth_method {
	AUTH_BEST = 0,	/* the best the hub offers: CRAM-MD5 > PLAIN > LOGIN */
	AUTH_PLAIN,
	AUTH_LOGIN,
	AUTH_CRAM_MD5,
	AUTH_XOAUTH2,		/* Google's and Microsoft's bearer SASL */
	AUTH_OAUTHBEARER	/* RFC 7628 */
};

/* A rate limit: at most max messages per period seconds. */
struct rate_rule {
	unsigned int	 max;		/* 0: no limit */
	long long	 period;
};

#define RATE_USERS_MAX	64
#define MAX_MESSAGE_SIZE_DEFAULT	(50LL * 1024 * 1024)	/* 50 MiB */

/* The RateLimit policy: built by config.c, applied by ratelimit.c. */
struct rate_policy {
	struct rate_rule deflt;			/* RateLimit= N/period */
	struct {
		char		 login[64];
		struct rate_rule rule;
	}		 user[RATE_USERS_MAX];	/* RateLimitUser= login:N/p */
	size_t		 nuser;
	char		 exempt[RATE_USERS_MAX][64]; /* RateLimitExempt= */
	size_t		 nexempt;
	int		 exempt_set;		/* unset: root is exempt */
};

/* SenderPolicy= (sender.c): what happens to a sender the user may not use. */
enum sender_policy {
	SP_KEEP = 0,	/* ssmtp's behaviour: the message's From: is kept */
	SP_ALIGN,	/* envelope, From: and Sender: made an allowed address */
	SP_REFUSE	/* ST_SENDER (exit 77), nothing sent or queued */
};

#define CONFIG_INCLUDED_MAX	64	/* files read through Include= */

struct config {
	char		 path[PATH_MAX];	/* the file that was read */
	/* ssmtp keys (spec/anchors.md 1a) */
	char		 root[ADDR_MAX];	/* Root= */
	char		 hub_host[HOST_MAX];	/* MailHub= host part */
	char		 hub_port[PORT_MAX];	/* MailHub= :port or RemotePort= */
	/* MailHub= entries after the first (hub_host, hub_port); an empty
	 * port means RemotePort= (remote_port) */
	struct {
		char	 host[HOST_MAX];
		char	 port[PORT_MAX];
	}		 hub_alt[HUBS_MAX - 1];
	size_t		 hub_alt_count;
	char		 remote_port[PORT_MAX];	/* RemotePort= (25) */
	char		 source_address[HOST_MAX]; /* SourceAddress= ("": none) */
	int		 address_family;	/* AddressFamily=: AF_UNSPEC,
						 * AF_INET or AF_INET6 */
	char		 hostname[HOST_MAX];	/* HostName= (empty: unset) */
	char		 rewrite_domain[HOST_MAX]; /* RewriteDomain= */
	int		 from_line_override;	/* FromLineOverride= */
	enum tls_mode	 tls;			/* UseTLS= / UseSTARTTLS= */
	int		 use_tls_cert;		/* UseTLSCert= */
	char		 tls_cert[PATH_MAX];	/* TLSCert= */
	char		 tls_key[PATH_MAX];	/* TLSKey= (default: TLSCert) */
	char		 tls_ca_file[PATH_MAX];	/* TLS_CA_File= */
	char		 tls_ca_dir[PATH_MAX];	/* TLS_CA_Dir= */
	char		 auth_user[SECRET_MAX];	/* AuthUser= */
	char		 auth_pass[SECRET_MAX];	/* AuthPass= or AuthPassFile= */
	enum auth_method auth_method;		/* AuthMethod= */
	int		 use_old_auth;		/* UseOldAUTH= */
	int		 debug;			/* Debug= */
	char		*add_header[ADDHEADER_MAX]; /* AddHeader= */
	size_t		 add_header_count;
	/* postino keys */
	char		 revaliases[PATH_MAX];	/* RevaliasesFile= */
	char		 aliases_file[PATH_MAX]; /* AliasesFile= (empty: none) */
	char		 queue_dir[PATH_MAX];	/* QueueDir= */
	char		 run_as_user[64];	/* RunAsUser= (empty: unset) */
	int		 tls_verify;		/* TLSVerify= (default yes) */
	/* TLSFingerprint= (SHA-256 of the hub's key or certificate) */
	unsigned char	 tls_pins[TLS_PINS_MAX][TLS_PIN_LEN];
	size_t		 tls_pin_count;		/* 0: no pin */
	char		 auth_pass_file[PATH_MAX]; /* AuthPassFile= */
	int		 auth_allow_plaintext;	/* AuthAllowPlaintext= */
	int		 timeout;		/* Timeout= seconds per SMTP step */
	char		 log_file[PATH_MAX];	/* LogFile= (empty: syslog) */
	char		 metrics_file[PATH_MAX]; /* MetricsFile= ("": none) */
	long long	 retry_interval;	/* RetryInterval= (60 s) */
	long long	 max_retry_interval;	/* MaxRetryInterval= (1 h) */
	long long	 queue_lifetime;	/* QueueLifetime= (5 d) */
	long long	 hub_backoff;		/* HubBackoff= (60 s) */
	struct rate_policy rate;		/* RateLimit* keys */
	long long	 max_message_size;	/* MaxMessageSize= bytes; 0: none */
	char		 allowed_senders[PATH_MAX]; /* AllowedSendersFile= */
	enum sender_policy sender_policy;	/* SenderPolicy= */
	/* OAuth 2.0 (oauth.c): where the bearer token comes from */
	char		 auth_token_file[PATH_MAX];	/* AuthTokenFile= */
	char		 oauth_token_url[1024];		/* OAuthTokenURL= */
	char		 oauth_client_id[SECRET_MAX];	/* OAuthClientID= */
	char		 oauth_secret_file[PATH_MAX];	/* OAuthClientSecretFile= */
	char		 oauth_scope[1024];		/* OAuthScope= */
	char		 oauth_refresh_file[PATH_MAX];	/* OAuthRefreshTokenFile= */
	/* derived, not keys */
	char		 mailname_path[PATH_MAX]; /* /etc/mailname */
	int		 tls_fresh;	/* check --hub: no stored TLS session */
	/* The line that set a key config_check names (0: not in the file). */
	struct {
		size_t	 auth_user, tls_cert, tls_key, tls_ca_file, tls_ca_dir;
	}		 line;
	/* Include=: the included file that set each key above (NULL: path),
	 * pointing into included[], the files read (freed by config_free). */
	struct {
		const char *auth_user, *tls_cert, *tls_key, *tls_ca_file,
			 *tls_ca_dir;
	}		 line_file;
	char		*included[CONFIG_INCLUDED_MAX];
	size_t		 included_count;
};

/* One warning found while reading a config ("file:line: unknown key K"). */
typedef void	 config_warn_fn(void *arg, const char *text);
/* "file:line: text" to warn (none if NULL): config and aliases files. */
void		 config_vwarn(config_warn_fn *warn, void *arg, const char *file,
		    size_t line, const char *fmt, va_list)
		    __attribute__((format(printf, 5, 0)));

void		 config_defaults(struct config *);
/*
 * Read path into cfg (defaults first), then resolve interactions
 * (UseTLS/UseSTARTTLS, MailHub/RemotePort, TLSKey default, AuthPassFile)
 * and validate. Diagnostics are "file:line: problem"; warnings (unknown
 * keys) go to warn. ST_CONFIG on any error.
 */
int		 config_load(struct config *, const char *path,
		    config_warn_fn *warn, void *warn_arg, struct error *);
/* Parse text already in memory (the unit and fuzz tests' entry). */
int		 config_parse_buffer(struct config *, const char *name,
		    const char *buf, size_t len, config_warn_fn *warn,
		    void *warn_arg, struct error *);
/* A small file read whole by config_read_file. */
struct file_text {
	char		*buf;	/* NULL: missing (FT_MISSING_OK) */
	size_t		 len;
	size_t		 cap;	/* allocated, for the wipe */
};
#define FT_MISSING_OK	0x01	/* a missing file is ST_OK with buf NULL */
/*
 * The one reader of whole files (config, AuthPassFile, revaliases,
 * aliases): opened O_NONBLOCK so that a FIFO at the path cannot hang a
 * sender, a regular file only, at most max bytes, and secret-safe (no
 * realloc; every copy wiped). ST_CONFIG "path: reason" (strerror, "not a
 * regular file", "file too large (over ...)"). Release with
 * config_file_free, which wipes.
 */
int		 config_read_file(const char *path, size_t max, int flags,
		    struct file_text *, struct error *);
void		 config_file_free(struct file_text *);
/*
 * The hubs a message without a revaliases hub goes to, in order: hub 0
 * is hub_host:hub_port (MailHub's first entry), then each other MailHub=
 * entry (its own port, else RemotePort=). count is at least 1.
 */
size_t		 config_hub_count(const struct config *);
void		 config_hub(const struct config *, size_t i, char *host,
		    size_t hostlen, char *port, size_t portlen);
/* Split "host", "host:port", "[v6]:port", "[v6]" into host and port. */
int		 config_split_hub(const char *value, char *host, size_t hostlen,
		    char *port, size_t portlen, struct error *);
/*
 * The one rule for a port, wherever one is written (MailHub, RemotePort,
 * a revaliases hub): a decimal number 1..65535 (leading zeros allowed), or
 * a service name of ASCII letters only ("smtp", "submission"), whatever
 * the locale. 1 if port follows it.
 */
int		 config_port_ok(const char *port);
/* Duration: number with optional unit s, m, h, d. */
int		 config_parse_duration(const char *value, long long *seconds,
		    struct error *);
/*
 * postino check's prediction of the first send, beyond parsing: AuthUser
 * without TLS (the password is never sent in clear unless
 * AuthAllowPlaintext=YES), and each TLS file in use (TLS_CA_File,
 * TLS_CA_Dir; TLSCert and TLSKey with UseTLSCert) that is missing, not
 * readable by the real user (access(2)), or not readable by the senders.
 * Each finding, naming the key, goes to warn. ST_CONFIG if any.
 */
int		 config_check(const struct config *, config_warn_fn *warn,
		    void *warn_arg);
/* Wipe secrets (explicit_bzero) and free AddHeader strings. */
void		 config_free(struct config *);

/* ------------------------------------------------------------- addr.c */

/* A growable list of bare addresses (addr-spec, no display name). */
struct addrlist {
	char		**v;
	size_t		  n;
	size_t		  cap;
	size_t		 *slot;		/* hash index: v's index + 1, 0 empty */
	size_t		  nslot;	/* a power of two, > 2 * n */
};

void		 addrlist_init(struct addrlist *);
void		 addrlist_free(struct addrlist *);
/* Append a copy of addr unless an equal one is there (local part exact,
 * domain case-insensitive). ST_DATA past RCPT_MAX, ST_OSERR on ENOMEM. */
int		 addrlist_add(struct addrlist *, const char *addr,
		    struct error *);
int		 addrlist_contains(const struct addrlist *, const char *addr);

/*
 * Parse an RFC 5322 address list ("a@x, Name <b@y>, "Doe, J" <c@z>,
 * Group: d@w;", "undisclosed-recipients:;", bare words "root") and
 * append each addr-spec to out. Empty text adds nothing. CR/LF/NUL,
 * unbalanced quotes/angles -> ST_DATA.
 */
int		 addr_list_parse(const char *text, size_t len,
		    struct addrlist *out, struct error *);
/*
 * The one place "@domain" is added: to addr (in place, a buffer of len)
 * when it is not "" (the null sender), has no '@' and domain is not empty.
 * ST_DATA, addr unchanged, when the result would not fit. Header lists
 * use addr_list_qualify, the same rule per addr-spec.
 */
int		 addr_qualify(char *addr, size_t len, const char *domain,
		    struct error *);
/*
 * Parse a single address as given to -f: "a@x", "<a@x>", "Name <a@x>",
 * "" or "<>" (null sender: out = ""). ST_DATA on CR/LF/NUL or junk.
 */
int		 addr_parse_one(const char *text, char *out, size_t outlen,
		    struct error *);
/* Is addr safe for an SMTP path: no CR, LF, NUL, <, >, space or control
 * bytes, length < ADDR_MAX? "" is not (the null sender is the caller's
 * case to handle). */
int		 addr_is_safe(const char *addr);
/* Does addr contain 8-bit bytes (needs SMTPUTF8)? */
int		 addr_needs_utf8(const char *addr);
/* Domain part (after the last '@') or NULL. */
const char	*addr_domain(const char *addr);
/*
 * Rewrite a header value (an address list) so that every addr-spec
 * without '@' gets "@domain"; everything else (names, comments, folding)
 * is kept byte for byte. Returns a malloc'd string, or NULL with err set.
 */
char		*addr_list_qualify(const char *value, size_t len,
		    const char *domain, struct error *);
/*
 * The same two rules, also turning "@localhost" and
 * "@localhost.localdomain" into "@domain" (under SenderPolicy align or
 * refuse: such addresses are never sent; keep leaves them as ssmtp did).
 */
int		 addr_qualify_local(char *addr, size_t len, const char *domain,
		    struct error *);
char		*addr_list_qualify_local(const char *value, size_t len,
		    const char *domain, struct error *);

/* ---------------------------------------------------------- message.c */

/* What the header scan asks for and how the header block is rewritten. */
struct msgopts {
	int		 ignore_dots;		/* -i / -oi: "." is data */
	int		 extract_rcpts;		/* -t: collect To/Cc/Bcc */
	const char	*domain;		/* qualifies header addresses */
	const char	*hostname;		/* for Received: by */
	const char	*default_from;		/* address for a missing From: */
	const char	*full_name;		/* display name for it (may be "") */
	const char	*qid;			/* our queue id */
	uid_t		 uid;			/* for Received: */
	time_t		 now;
	const char	*const *add_headers;	/* AddHeader= lines */
	size_t		 add_header_count;
	const int	*spool_fd;		/* already open spool file to
						 * use (taken over, closed on
						 * error); NULL: create one */
	long long	 max_size;		/* MaxMessageSize; 0: none */
	/*
	 * SenderPolicy: SP_KEEP writes From:/Sender: as given (qualified).
	 * Otherwise each of their addresses is put to may_use: SP_REFUSE
	 * notes the first refused one in message.refused; SP_ALIGN removes
	 * Sender:, replaces a From: with a refused address by aligned_from
	 * (display name kept) and adds Reply-To: with the original From:
	 * unless the message has a Reply-To:.
	 */
	enum sender_policy policy;
	int		(*may_use)(const void *arg, const char *addr);
	const void	*may_use_arg;
	const char	*aligned_from;
};

struct message {
	int		 fd;		/* spool file, unnamed (O_TMPFILE) */
	off_t		 size;		/* bytes in the spool (CRLF form) */
	int		 eight_bit;	/* 8-bit bytes seen anywhere */
	int		 had_from;	/* the caller's message had From: */
	char		 from_addr[ADDR_MAX]; /* first address of that From:
					 * (qualified; "" if none usable) */
	int		 resent;	/* Resent-To/Cc/Bcc seen (-t uses only those) */
	struct addrlist	 header_rcpts;	/* -t: To/Cc/Bcc or Resent-* */
	size_t		 nul_bytes;	/* NUL bytes dropped */
	size_t		 lines_split;	/* lines over 998 octets split */
	char		 refused[ADDR_MAX]; /* SP_REFUSE: first address of
					 * From:/Sender: not allowed */
	char		 refused_field[16]; /* "From" or "Sender" */
	int		 aligned;	/* SP_ALIGN: From: replaced */
	int		 sender_dropped; /* SP_ALIGN: a Sender: removed */
};

/*
 * Stream in_fd to EOF (or the lone "." line without -i) into an unnamed
 * spool file in spool_dir, in wire form: CRLF line ends, not dot-stuffed.
 * The spool holds: Received:, the caller's headers minus Bcc/Resent-Bcc/
 * Return-Path/Content-Length with header addresses qualified, AddHeader
 * lines, Date/Message-ID/From when missing, a blank line, the body.
 * Memory stays bounded whatever the input. On any error no spool file
 * remains. ST_IOERR for read errors, ST_CANTCREAT for spool errors,
 * ST_DATA for a message over opts->max_size (its size counted as the
 * caller's message in CRLF form, before our own header fields; the text
 * names MaxMessageSize) and for -t headers that do not parse. Input is
 * not drained on error: the caller calls message_drain().
 */
int		 message_read(int in_fd, const char *spool_dir,
		    const struct msgopts *, struct message *, struct error *);
void		 message_free(struct message *);
/*
 * How long stdin is drained after the "." line or before an error exit:
 * long enough for a writer still sending its input down a pipe, short
 * enough for one that keeps stdin open until sendmail exits.
 */
#define MESSAGE_DRAIN_MS	5000
/*
 * Read fd to EOF and throw the bytes away, so that the writer gets our
 * exit status and not EPIPE; not a terminal, and never for longer than
 * MESSAGE_DRAIN_MS in all. The one drain (sendmail.c's error paths too).
 */
void		 message_drain(int fd);
/* RFC 5322 date of t in local time ("Sun, 22 Nov 2026 01:02:03 +0100"). */
void		 message_date(time_t t, char *buf, size_t len);
/* A fresh queue id: QID_LEN upper-case hex digits. */
void		 message_new_qid(char qid[QID_MAX]);

/*
 * The one function that makes the wire form: it turns a stream of bytes
 * into CRLF lines, optionally dot-stuffed, keeping state across calls so
 * that a CR, LF or "." split between two buffers is handled. Used for
 * stdin -> spool (normalise) and spool -> socket (dot-stuff).
 */
struct lineconv {
	int		 dot_stuff;	/* double a leading '.' */
	int		 at_line_start;
	int		 pending_cr;	/* CRs held (at most 2): LF next or not? */
	size_t		 line_len;	/* octets on the current output line */
	size_t		 split_at;	/* split lines longer than this; 0: never */
	/* Set after lineconv_init (which clears them) when wanted: */
	int		 fold;		/* split with CRLF SP (header block) */
	int		 end_at_dot;	/* a lone "." input line ends input */
	/* State and results: */
	int		 ended;		/* that "." line was seen: input over */
	int		 pending_dot;	/* "." at an input line start, undecided */
	int		 input_bol;	/* at the start of an input line */
	size_t		 splits;	/* lines split so far */
};
/* split_at 1..3 is raised to 4 (the output bound needs it). */
void		 lineconv_init(struct lineconv *, int dot_stuff,
		    size_t split_at);
/*
 * Convert in[0..inlen) and append to out (capacity outcap, which must be
 * at least 3 * inlen + 4). Returns the number of bytes written.
 */
size_t		 lineconv_feed(struct lineconv *, const char *in, size_t inlen,
		    char *out, size_t outcap);
/* End of input: complete a last line without newline. Returns bytes. */
size_t		 lineconv_finish(struct lineconv *, char *out, size_t outcap);

/* ------------------------------------------------------------ alias.c */

/* A revaliases match for the submitting login. */
struct revalias {
	int		 found;
	char		 address[ADDR_MAX];
	char		 hub_host[HOST_MAX];	/* empty: keep MailHub */
	char		 hub_port[PORT_MAX];	/* empty: keep the port */
};

/* Where and how a message goes. */
struct route {
	char		 host[HOST_MAX];
	char		 port[PORT_MAX];
};

/*
 * Scan the revaliases file for login (exact, case-sensitive; last match
 * wins; a later match without a hub keeps an earlier hub). A missing file
 * is not an error. Chains are followed: while the address has no '@' and
 * names an entry of its own ("root: admins", "admins: ops@x"), that
 * entry's address replaces it (loops and chains over 20 stop where they
 * are); the hub named nearest the login wins.
 */
int		 alias_load_revaliases(const char *path, const char *login,
		    struct revalias *, struct error *);
int		 alias_parse_revaliases(const char *buf, size_t len,
		    const char *login, struct revalias *, struct error *);
/* The mail domain: RewriteDomain > HostName > /etc/mailname > gethostname. */
void		 alias_domain(const struct config *, char *buf, size_t len);
/* The Received: / -bs greeting name: HostName > gethostname(). */
void		 alias_hostname(const struct config *, char *buf, size_t len);
/*
 * The EHLO name (and a bounce's Reporting-MTA), always qualified, never
 * localhost: HostName > /etc/mailname > gethostname() > the mail domain,
 * the first that has a dot and is no localhost name; "[127.0.0.1]" (an
 * address literal, RFC 5321 4.1.4) when none is. No DNS lookup.
 */
void		 alias_helo_name(const struct config *, char *buf, size_t len);
/*
 * The envelope sender before the message is read (used for a generated
 * From: too): revaliases > -f (fsender, NULL if not given) > login@domain.
 * The result is qualified. "" is the null sender.
 */
int		 alias_default_sender(const struct config *,
		    const struct revalias *, const char *fsender,
		    const char *login, const char *domain, char *out,
		    size_t outlen, struct error *);
/*
 * The final envelope sender once the message is read: with
 * FromLineOverride=YES and a From: header, that address (qualified);
 * otherwise default_sender.
 */
int		 alias_final_sender(const struct config *,
		    const struct message *, const char *default_sender,
		    const char *domain, char *out, size_t outlen,
		    struct error *);
/*
 * Map one recipient without alias lookup: local names (no '@',
 * @localhost, @hostname, @domain-less FQDN) go to Root= when they name
 * root or a system account (uid < 1000) and Root= is set; everything
 * without '@' is qualified. alias_expand's last step for every name.
 */
int		 alias_recipient(const struct config *, const char *rcpt,
		    const char *domain, const char *hostname, char *out,
		    size_t outlen, struct error *);
/* Hub and port: revaliases hub > MailHub; revaliases port > config port. */
void		 alias_route(const struct config *, const struct revalias *,
		    struct route *);

/*
 * The aliases file (aliases(5); AliasesFile=, default /etc/aliases):
 * "name: value, value" lines, blank-led continuation lines, '#' comment
 * lines, names case-insensitive. |command, /file and :include: values
 * and lines that are not aliases are skipped with a warning
 * ("file:line: ..."), never an error. A missing file or path "" gives an
 * empty table; unreadable, over 4 MiB or over 65536 entries: ST_CONFIG.
 */
struct aliases;
int		 alias_load_aliases(const char *path, struct aliases **out,
		    config_warn_fn *warn, void *warn_arg, struct error *);
/* The same from memory (unit and fuzz tests); name is for warnings. */
int		 alias_parse_aliases(const char *name, const char *buf,
		    size_t len, struct aliases **out, config_warn_fn *warn,
		    void *warn_arg, struct error *);
void		 alias_free_aliases(struct aliases *);
/* newaliases, -bi, -I: parse, warn, count the entries kept. */
int		 alias_check_aliases(const char *path, config_warn_fn *warn,
		    void *warn_arg, size_t *entries, struct error *);
/*
 * Add the final addresses of one recipient to out. A local recipient (no
 * '@', @localhost, @localhost.localdomain, @hostname, @its first label)
 * is looked up in al (NULL or no_alias: no lookups) recursively; every
 * name not looked up goes through Root= and gets @domain; others are
 * added unchanged. Each address is checked with addr_is_safe; duplicates
 * collapse. ST_DATA for an unusable address (out may then hold part of
 * the expansion), ST_OSERR on ENOMEM.
 */
int		 alias_expand(const struct config *, const struct aliases *al,
		    const char *rcpt, const char *domain, const char *hostname,
		    int no_alias, struct addrlist *out, struct error *);
/* One line of -bv output, without a newline. */
typedef void	 alias_line_fn(void *arg, const char *line);
/*
 * sendmail -bv for one argument (callers.md 3.10): for each address in
 * arg (a list is allowed) and each of its final addresses, emit
 * "<addr>... deliverable: mailer relay, host <MailHub>, user <final>";
 * for an unusable one "<addr>... Invalid address" and ST_DATA (exit 67).
 * ST_OSERR (nothing emitted for it) on ENOMEM.
 */
int		 alias_verify_line(const struct config *,
		    const struct aliases *al, const char *arg,
		    const char *domain, const char *hostname, int no_alias,
		    alias_line_fn *emit, void *emit_arg, struct error *);

/* ----------------------------------------------------------- sender.c */

#define SENDER_ALLOW_MAX	32	/* entries of one login's line */

/* The AllowedSendersFile line of one login (or of "*"). */
struct sender_allow {
	int		 loaded;	/* a file was read */
	int		 found;		/* 0: no line, 1: "*", 2: the login's */
	size_t		 n;
	char		 entry[SENDER_ALLOW_MAX][ADDR_MAX];
};

/*
 * Read AllowedSendersFile (path "" : none, a empty) for login: the last
 * line of that login, else the last "*" line. Bare names in it get
 * domain. ST_CONFIG "file:line: ..." for a line that does not parse or a
 * file that cannot be read.
 */
int		 sender_load_allowed(const char *path, const char *login,
		    const char *domain, struct sender_allow *, struct error *);
int		 sender_parse_allowed(const char *name, const char *buf,
		    size_t len, const char *login, const char *domain,
		    struct sender_allow *, struct error *);
/*
 * May the user use addr (qualified)? Yes for the null sender, for own
 * (the user's own address, sender_own) and for what a's entries allow.
 */
int		 sender_may_use(const struct sender_allow *, const char *own,
		    const char *addr);
/*
 * The user's own address, the one an aligned From: gets: revaliases,
 * else the first address of the user's line, else login@ the first
 * "*@domain" of it, else login@domain. Qualified.
 */
int		 sender_own(const struct sender_allow *, const struct revalias *,
		    const char *login, const char *domain, char *out,
		    size_t outlen, struct error *);
const char	*sender_policy_name(enum sender_policy);
/*
 * -bv with -f (or under align/refuse): one line telling the envelope and
 * From: the caller would get for farg (NULL: no -f) and why: allowed,
 * aligned, refused, or the user's own address.
 */
struct caller;
typedef void	 sender_line_fn(void *arg, const char *line);
void		 sender_verify_line(const struct config *,
		    const struct caller *, const char *farg,
		    sender_line_fn *emit, void *emit_arg);

/* --------------------------------------------------------- deadline.c */

/*
 * CLOCK_MONOTONIC in milliseconds: the one clock of every deadline
 * (conn steps and TLS handshakes, the stdin drain, the -bs idle limit).
 */
long long	 deadline_now_ms(void);
/* now + ms, on that clock. */
long long	 deadline_in(int ms);
/*
 * poll(2) fd until readable (want_write 0) or writable, before
 * deadline_ms; ST_TEMP "timed out after N s waiting for the hub" (N from
 * timeout_ms) after it. EINTR is retried.
 */
int		 deadline_wait(int fd, int want_write, long long deadline_ms,
		    int timeout_ms, struct error *);

/* ------------------------------------------------------------- conn.c */

/*
 * A connection to the hub: a byte transport with a plain and a TLS back
 * end, per-step deadlines and a buffered line reader. Opaque outside
 * conn.c and tls.c (src/conn_impl.h); protocol code never asks which
 * back end is in use. Only conn.c calls into tls.c.
 */
struct conn;

struct tls_params;	/* tls.c section below */

/* A connection set up for timeout_s per step, not connected; NULL: ENOMEM. */
struct conn	*conn_new(int timeout_s);
/*
 * Allocate a connection, resolve host:port and try every address in
 * order (IPv6 and IPv4) with a non-blocking connect bounded by timeout_s.
 * TCP_NODELAY is set. EAI_AGAIN, refused, unreachable, timeout ->
 * ST_TEMP; EAI_NONAME -> ST_TEMP too (a hub name that does not resolve
 * is an admin problem that must not lose mail). On failure *out is NULL
 * and nothing is left open.
 */
int		 conn_connect(struct conn **out, const char *host,
		    const char *port, int timeout_s, struct error *);
/*
 * conn_connect restricted to one address family (AF_INET, AF_INET6;
 * AF_UNSPEC: any; AddressFamily=) and bound to a local address first
 * (source, numeric; NULL or "": the kernel's choice; SourceAddress=).
 * An address of the other family than source is skipped. A name with
 * no address of the family: ST_TEMP naming AddressFamily.
 */
int		 conn_connect_from(struct conn **out, const char *host,
		    const char *port, int timeout_s, const char *source,
		    int family, struct error *);
/*
 * postino check --hub connects to every address of a hub in turn, each
 * as a delivery would: conn_resolve lists them (numeric, in the order a
 * delivery tries them, AddressFamily applied, those of another family
 * than a SourceAddress left out, at most max), conn_connect_addr
 * connects to one of them (conn_connect_from's rules) while the
 * connection keeps host's name for SNI, the certificate's name check
 * and relay=. Failures as conn_connect_from's.
 */
#define CONN_ADDR_MAX	64	/* a numeric address, scope included */
#define CONN_ADDRS_MAX	16	/* addresses of one hub looked at */
int		 conn_resolve(const char *host, const char *port, int family,
		    const char *source, int timeout_s,
		    char (*addrs)[CONN_ADDR_MAX], size_t max, size_t *n,
		    struct error *);
int		 conn_connect_addr(struct conn **out, const char *host,
		    const char *addr, const char *port, int timeout_s,
		    const char *source, int family, struct error *);
/*
 * STARTTLS or implicit TLS: the back end's handshake (tls.c for a
 * socket), under p's verification rules (a NULL p->servername means the
 * host the connection was opened to); read-ahead plaintext is dropped.
 * Failure as tls.c says (ST_TEMP with HINT_TLS_VERIFY for a refused
 * certificate, ST_CONFIG for unusable TLS files).
 */
int		 conn_start_tls(struct conn *, const struct tls_params *,
		    struct error *);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384 verified" once TLS is on, else "". */
const char	*conn_tls_info(const struct conn *);
/* The hub's certificate as the last TLS handshake saw it (even one
 * that was refused); cert->seen 0 when there was none. */
struct tls_cert;
void		 conn_tls_cert(const struct conn *, struct tls_cert *);
/* The host name the connection was opened to ("" for an attached fd). */
const char	*conn_host(const struct conn *);
/* "host[addr]:port", the relay= of a log line. */
void		 conn_relay(const struct conn *, char *buf, size_t len);
/* Start the deadline of one protocol step: now + timeout. */
void		 conn_step(struct conn *);
/* Lower the per-step timeout to at most max_ms (a courtesy QUIT). */
void		 conn_cap_timeout(struct conn *, int max_ms);
/*
 * Read one line (up to LF) into buf without the CRLF; NUL-terminated.
 * A line longer than len - 1 is an error (ST_TEMP, "reply line too
 * long"); the deadline of the current step applies.
 */
int		 conn_read_line(struct conn *, char *buf, size_t len,
		    size_t *outlen, struct error *);
/*
 * Up to len bytes, buffered ones first, else one read under the step
 * deadline; *got 0 at EOF (ST_OK). For oauth.c's HTTP response, whose
 * body need not end in a line.
 */
int		 conn_read_some(struct conn *, void *buf, size_t len,
		    size_t *got, struct error *);
/* Write all of buf before the deadline. */
int		 conn_write(struct conn *, const void *, size_t, struct error *);
/* Bytes received but not yet consumed (STARTTLS injection check). */
size_t		 conn_pending(const struct conn *);
/* Close the transport (TLS close_notify, then the socket); memory stays. */
void		 conn_close(struct conn *);
/* conn_close and free a connection from conn_new/conn_connect; NULL ok. */
void		 conn_free(struct conn *);

/* -------------------------------------------------------------- tls.c */

/* What the hub's certificate said (check --hub); seen 0: no TLS. */
struct tls_cert {
	int		 seen;
	char		 subject[256];	/* one line, RFC 2253 */
	char		 issuer[256];
	long long	 days_left;	/* until notAfter, rounded down;
					 * < 0: expired */
};

struct tls_params {
	const char	*servername;	/* SNI and host name check */
	int		 verify;
	const char	*ca_file;	/* "" or NULL: system default */
	const char	*ca_dir;
	/* SHA-256 of the hub's SPKI or certificate; pin_count 0: none */
	const unsigned char (*pins)[TLS_PIN_LEN];
	size_t		 pin_count;
	const char	*cert_file;	/* client certificate; NULL: none */
	const char	*key_file;
	/* QueueDir, where the session is kept for resumption; NULL: none */
	const char	*session_dir;
};

/*
 * tls.c is reached through conn_start_tls only: its entry points are in
 * src/conn_impl.h.
 */

/* ------------------------------------------------------------- auth.c */

/* Room for the base64 of the largest SASL response postino builds. */
#define AUTH_B64_MAX	((2 * SECRET_MAX + 2 + 2) / 3 * 4 + 1)

/*
 * Base64 (RFC 4648), auth.c's own, so that PLAIN and LOGIN never load
 * OpenSSL. encode: NUL-terminated, returns its length; decode skips
 * surrounding white space and returns the byte count. -1 when out is
 * too small or the input is not base64.
 */
int		 auth_base64_encode(const void *in, size_t len, char *out,
		    size_t outlen);
int		 auth_base64_decode(const char *in, size_t len,
		    unsigned char *out, size_t outlen);
/* HMAC-MD5 (RFC 2104) in lower-case hex; out holds 33 bytes. -1: error. */
int		 auth_hmac_md5_hex(const void *key, size_t keylen,
		    const void *msg, size_t msglen, char out[33]);
/*
 * SASL responses, base64-encoded into out (AUTH_B64_MAX bytes is always
 * enough); every intermediate copy of a secret is wiped. PLAIN (RFC
 * 4616): empty authzid, user, password. LOGIN: one of its two answers
 * (the user or the password). CRAM-MD5 (RFC 2195): from the base64
 * challenge of the hub's 334 line, "user hex-HMAC-MD5(pass, challenge)";
 * ST_TEMP when the challenge is not base64, or when libcrypto cannot be
 * loaded (hint HINT_TLS_POLICY: "OpenSSL unavailable"). ST_SOFTWARE when
 * out is too small or OpenSSL fails.
 */
int		 auth_plain_response(const char *user, const char *pass,
		    char *out, size_t outlen, struct error *);
int		 auth_login_response(const char *text, char *out,
		    size_t outlen, struct error *);
int		 auth_cram_md5_response(const char *user, const char *pass,
		    const char *challenge, size_t challenge_len, char *out,
		    size_t outlen, struct error *);
/*
 * Bearer-token SASL (token: an OAuth 2.0 access token, at most
 * OAUTH_TOKEN_MAX - 1 bytes), base64 into out (AUTH_OAUTH_B64_MAX bytes
 * is always enough), every copy wiped. XOAUTH2 (Google, Microsoft):
 * "user=U^Aauth=Bearer T^A^A". OAUTHBEARER (RFC 7628 3.1):
 * "n,a=U,^Ahost=H^Aport=P^Aauth=Bearer T^A^A". ST_SOFTWARE when out is
 * too small, ST_DATA when a value holds ^A or ',' where it may not.
 */
#define OAUTH_TOKEN_MAX	8192
#define AUTH_OAUTH_B64_MAX \
	((OAUTH_TOKEN_MAX + SECRET_MAX + HOST_MAX + PORT_MAX + 64) / 3 * 4 + 5)
int		 auth_xoauth2_response(const char *user, const char *token,
		    char *out, size_t outlen, struct error *);
int		 auth_oauthbearer_response(const char *user, const char *host,
		    const char *port, const char *token, char *out,
		    size_t outlen, struct error *);
/*
 * The JSON error of a bearer mechanism's 334 challenge (RFC 7628 3.2.2),
 * decoded and sanitised into out ("" when it is not base64).
 */
void		 auth_oauth_error(const char *challenge, char *out,
		    size_t outlen);

/* ------------------------------------------------------------- smtp.c */

/* Where a transaction ended (for the outcome table and the log). */
enum smtp_stage {
	STAGE_CONNECT = 0, STAGE_GREETING, STAGE_EHLO, STAGE_STARTTLS,
	STAGE_TLS, STAGE_AUTH, STAGE_MAIL, STAGE_RCPT, STAGE_DATA,
	STAGE_DOT, STAGE_DONE
};

/*
 * One recipient of a transaction: small, so that RCPT_MAX of them cost
 * little (issue 11: memory flat in the recipient count). addr is the
 * caller's string, not copied; reply is kept only for a refusal.
 */
struct smtp_rcpt {
	const char	*addr;
	int		 code;			/* hub's reply code, 0: not sent */
	char		*reply;			/* sanitised refusal, or NULL
						 * (smtp_envelope_clear frees) */
	enum status	 status;		/* ST_OK / ST_TEMP / ST_PERM */
};

struct envelope {
	char		 sender[ADDR_MAX];	/* "" for <> */
	struct dsn	 dsn;
	struct smtp_rcpt *rcpt;
	size_t		 nrcpt;
	int		 body_8bit;		/* -B8BITMIME or 8-bit bytes */
	int		 smtputf8;		/* set by smtp.c when needed */
	int		 spool_fd;		/* message in wire form */
	off_t		 size;
	/* Called just before the final dot (the queue records a possible
	 * duplicate there, in case the process dies waiting for the reply). */
	void		(*before_dot)(void *arg);
	void		*before_dot_arg;
};

/* What the hub said: enough for the outcome table and the log line. */
struct smtp_result {
	enum smtp_stage	 stage;		/* where it ended */
	int		 code;		/* last reply code */
	char		 reply[REPLY_TEXT_MAX];	/* last reply, sanitised */
	size_t		 accepted;	/* recipients with 2xx to RCPT */
	int		 dot_sent;	/* final "." written: a lost reply means
					 * a possible duplicate */
	char		 hub_qid[64];	/* "queued as X" from the final reply */
	char		 relay[HOST_MAX + 80]; /* "host[addr]:port" */
	char		 tls[128];	/* TLS description or "" */
	struct tls_cert	 cert;		/* the hub's certificate, when seen */
	long long	 tx_ms;		/* deliver.c: the transaction's time */
	int		 stale;		/* a reused session's pipelined RSET
					 * failed: none of this transaction
					 * was taken; a new session may */
};

/* The -v / Debug= transcript: one line sent, received, or a note. */
enum transcript_dir { TR_SENT, TR_RECEIVED, TR_INFO };
typedef void	 transcript_fn(void *arg, enum transcript_dir, const char *line,
		    size_t len);

struct smtp_params {
	const struct config *cfg;
	const char	*helo;		/* EHLO argument */
	const char	*token;		/* XOAUTH2/OAUTHBEARER: the bearer
					 * token (oauth.c); NULL otherwise */
	transcript_fn	*transcript;	/* -v / Debug=; AUTH lines redacted */
	void		*transcript_arg;
};

struct smtp;	/* a session; opaque outside smtp.c */

/*
 * The checks that need no hub (AuthUser over an unencrypted hop is
 * ST_CONFIG): called before conn_connect, so that nothing is connected
 * in vain. It also resets result to stage STAGE_CONNECT with an empty
 * relay, which is what the result must say if conn_connect then fails.
 */
int		 smtp_precheck(const struct smtp_params *, struct smtp_result *,
		    struct error *);
/*
 * Open a session over conn, a connection already open to the hub
 * (conn_connect, or a test's stub): smtp_precheck again, greeting, EHLO
 * (HELO fallback), STARTTLS or implicit TLS (conn_start_tls), AUTH.
 * result->relay is conn_relay()'s. The session owns conn from here on,
 * whatever the outcome: smtp_close (or a failed smtp_open) frees it. On
 * failure result says where and *out is NULL.
 */
int		 smtp_open(struct smtp **out, struct conn *conn,
		    const struct smtp_params *, struct smtp_result *,
		    struct error *);
/*
 * One transaction: MAIL, RCPT (pipelined when offered), DATA, the body
 * read from env->spool_fd from offset 0, dot-stuffed, the final dot.
 * Fills env->rcpt[].code/status. ST_OK when at least one recipient took
 * the message (partial rejection is the caller's to report).
 */
int		 smtp_send(struct smtp *, struct envelope *,
		    struct smtp_result *, struct error *);
/* Free the recipients' replies that smtp_send kept (env->rcpt[].reply). */
void		 smtp_envelope_clear(struct envelope *);
/*
 * RSET between transactions (queue runner). When the hub offers
 * PIPELINING it is only noted here and goes out in the next smtp_send's
 * first write, before MAIL (RFC 2920); if its reply is not 2xx that
 * smtp_send fails with result->stale set.
 */
int		 smtp_reset(struct smtp *, struct error *);
/* QUIT (best effort), then conn_free the connection and free. */
void		 smtp_close(struct smtp *);
/*
 * The strict reply reader, exported for tests: three digits, the same
 * code on every line, '-' or ' ' after it, at most REPLY_LINES_MAX lines
 * of REPLY_LINE_MAX. *code gets the code; text (sanitised, lines joined
 * with " / ") goes to text. Malformed -> ST_TEMP.
 */
int		 smtp_read_reply(struct conn *, int *code, char *text,
		    size_t textlen, struct error *);
/* Parse "queued as X" (Postfix, and "ok: X" forms) from a final reply. */
void		 smtp_parse_qid(const char *reply, char *qid, size_t len);

/* ------------------------------------------------------------ queue.c */

/*
 * The fallback queue (format in queue.c's first comment and postino(8)):
 *   QueueDir/data/QID     the message, wire form, never changed
 *   QueueDir/queue/QID    the control file: envelope and state, text
 *   QueueDir/failed/QID   control files of messages never retried
 * An entry exists once its control file is in queue/ (or failed/).
 * The data file is the entry's lock (flock), held while it is delivered.
 */
enum rcpt_state {
	RS_PENDING = 0,	/* not delivered yet */
	RS_SENT,	/* the hub accepted it: never sent again */
	RS_FAILED	/* refused for good, or expired */
};

/*
 * One recipient of an entry. The strings are the entry's own (never
 * NULL; queue_entry_free frees them): fixed arrays here cost 1.5 KiB a
 * recipient, 15 MiB for RCPT_MAX (issue 11: memory flat in the
 * recipient count). Set reply with queue_rcpt_set_reply.
 */
struct queue_rcpt {
	char		*addr;		/* shorter than ADDR_MAX */
	enum rcpt_state	 state;
	char		*reply;		/* last reply or error, < REPLY_TEXT_MAX */
	int		 notify;	/* failed in this run: bounce it (not
					 * stored) */
};

struct queue_entry {
	char		 qid[QID_MAX];
	time_t		 queued;	/* first committed */
	time_t		 next_retry;
	unsigned int	 attempts;
	uid_t		 uid;		/* submitter */
	char		 sender[ADDR_MAX];	/* "" is <> */
	off_t		 size;
	int		 body_8bit;
	int		 hold;		/* postino queue hold */
	int		 possible_dup;	/* a reply after the final dot was lost */
	struct dsn	 dsn;		/* -N, -R, -V */
	struct route	 route;		/* empty host: MailHub at delivery */
	int		 hub_default;	/* parsed "hub default" */
	struct route	 dup_hub;	/* possible_dup: the hub that may have
					 * it, the only one tried; "" unknown */
	char		 last_error[REPLY_TEXT_MAX];
	struct queue_rcpt *rcpt;
	size_t		 nrcpt;
	size_t		 rcpt_cap;
	int		 data_fd;	/* open and flock()ed while in use */
	int		 data_missing;	/* peek: the data file is gone (not
					 * stored) */
	/* Busy (peek, or a lock refused): its lock record, when there is
	 * one (not stored in the control file). lock_pid 0: unknown. */
	pid_t		 lock_pid;
	time_t		 lock_since;
	char		 lock_state[16];	/* "running", "stopped", "gone",
						 * "unknown" */
};
/* An entry locked this long, by a holder stopped or gone, is stuck. */
#define QUEUE_LOCK_STUCK	3600

/*
 * A recipient's reply is stored cut to this (terminator included), so
 * that an entry of RCPT_MAX recipients always fits the control-file
 * limit that its writer and its reader share.
 */
#define QUEUE_REPLY_KEEP	256

void		 queue_entry_init(struct queue_entry *);
void		 queue_entry_free(struct queue_entry *);	/* closes data_fd */
/* Replace r's reply with text (cut to REPLY_TEXT_MAX - 1); -1: no memory
 * (the old reply stays). */
int		 queue_rcpt_set_reply(struct queue_rcpt *, const char *text);
int		 queue_entry_add_rcpt(struct queue_entry *, const char *addr,
		    enum rcpt_state, struct error *);
/*
 * Every function below that touches QueueDir takes the group for itself
 * (priv_group_enter/leave) and gives it back before it returns.
 */
/*
 * Create data/, queue/, failed/ when missing (mode 0770, the group and
 * set-group-ID bit of QueueDir), but only as root or QueueDir's owner:
 * for anyone else a missing one is ST_CANTCREAT naming it.
 */
int		 queue_prepare(const char *dir, struct error *);
/*
 * The spool file a message is read into: unnamed, in dir (O_TMPFILE;
 * else mkostemp + unlink), mode 0660, so nothing remains if the process
 * dies. ST_CANTCREAT naming dir and the cause.
 */
int		 queue_spool_create(const char *dir, int *fd, struct error *);
/*
 * Commit: lock the spool file, name it data/QID (linkat of /proc/self/fd,
 * else a locked copy that then replaces spool_fd, same number), write the
 * control file to a temporary name, fsync, rename into queue/ (or
 * failed/ when failed is set), fsync the directories. The lock stays on
 * spool_fd until the caller closes it. After ST_OK the message survives
 * a crash. ST_CANTCREAT, with nothing half-written left, when it cannot
 * (disk, permissions, an entry of that id already there, a control file
 * over the size limit).
 */
int		 queue_commit(const char *dir, const struct queue_entry *,
		    int spool_fd, int failed, struct error *);
/*
 * Open and lock an entry for delivery: flock(data, LOCK_EX|LOCK_NB),
 * then read the control file, and write the lock record data/.lock.QID
 * (this pid and the time). ST_TEMP "busy" when another process holds
 * it (e->lock_pid, lock_since, lock_state from the holder's record); ST_DATA when the entry is malformed, unsafe (not a regular file,
 * links, owner) or over the size limit, or when its data file is missing
 * (then the control file is moved to failed/: log err); ST_PERM "gone"
 * when it vanished meanwhile.
 */
int		 queue_lock_entry(const char *dir, const char *qid,
		    struct queue_entry *, struct error *);
/* Read an entry without locking (listing). busy is set when locked
 * (with e->lock_pid, lock_since, lock_state), e->data_missing when its
 * data file is gone. */
int		 queue_peek_entry(const char *dir, const char *area,
		    const char *qid, struct queue_entry *, int *busy,
		    struct error *);
/* Rewrite the control file atomically (tmp, fsync, rename, dir fsync). */
int		 queue_update(const char *dir, const struct queue_entry *,
		    struct error *);
/* Delivered: unlink the control file, then the data, under the lock. */
int		 queue_remove(const char *dir, struct queue_entry *,
		    struct error *);
/*
 * The same without the fsync of queue/ that makes the removal durable:
 * for a queue run, where the next entry's possible-duplicate mark
 * fsyncs that directory anyway, and queue_sync at the end of the pass
 * covers the last. A power loss in between brings entries back that
 * carry their possible-duplicate mark (never a silent second delivery).
 */
int		 queue_remove_unsynced(const char *dir, struct queue_entry *,
		    struct error *);
void		 queue_sync(const char *dir);
/* Remove area/QID and its data without locking (failed entries). */
int		 queue_unlink(const char *dir, const char *area,
		    const char *qid, struct error *);
/*
 * Remove QID (queue/ or failed/) and its data without reading the control
 * file, under the data lock when there is data (ST_TEMP when busy): for
 * root, when the entry cannot be read. The caller checks who asks.
 */
int		 queue_force_remove(const char *dir, const char *qid,
		    struct error *);
/* Move to failed/ (never retried, still listed). */
int		 queue_move_failed(const char *dir, struct queue_entry *,
		    struct error *);
/* Ids in an area ("queue" or "failed"), sorted; caller frees. */
int		 queue_list_ids(const char *dir, const char *area,
		    char (**ids)[QID_MAX], size_t *n, struct error *);
/*
 * Remove orphans (data without a control file, an hour after commit,
 * unlocked, checked again under the lock) and stale temporary files.
 */
void		 queue_sweep(const char *dir);
/*
 * QueueDir/runner.lock: a queue run holds it shared for its whole pass
 * (the descriptor returned, -1 when it cannot); queue_runner_active asks
 * with an exclusive try whether one is running.
 */
int		 queue_runner_lock(const char *dir);
int		 queue_runner_active(const char *dir);
/* QueueDir/rate/UID opened read-write and flock()ed, for ratelimit_take;
 * the caller closes it. */
int		 queue_rate_open(const char *dir, uid_t uid, int *fd,
		    struct error *);
/* The control file's text form and its parser (unit and fuzz tests). */
char		*queue_format(const struct queue_entry *, size_t *len);
int		 queue_parse(const char *buf, size_t len, struct queue_entry *,
		    struct error *);
/*
 * The due index (QueueDir/due, format in queue.c): per submitter, a time
 * no later than the next retry of any of their entries. known is 0 when
 * the file is missing or damaged (then nobody knows: read the entries).
 */
struct queue_due_uid {
	uid_t		 uid;
	time_t		 due;
};
struct queue_due {
	int		 known;		/* whole: readers may trust it */
	int		 valid;		/* writers may lower it */
	unsigned long long gen;		/* bumped by every writer */
	struct queue_due_uid *v;
	size_t		 n, cap;
};
void		 queue_due_init(struct queue_due *);
void		 queue_due_free(struct queue_due *);
/* Lower uid's time to t (adding uid). -1: out of memory or too many. */
int		 queue_due_note(struct queue_due *, uid_t, time_t t);
/* 0 with d->known set, or -1 (unknown). */
int		 queue_due_read(const char *dir, struct queue_due *);
/*
 * Before reading every entry to rebuild an unknown index: a file that
 * writers lower meanwhile (readers still see unknown); *gen for the
 * store that follows.
 */
int		 queue_due_begin(const char *dir, unsigned long long *gen);
/*
 * Store what a reader of every entry computed (exact), or only lower
 * the file with it (exact 0). An exact store whose gen_seen (the gen
 * read before the entries) is no longer the file's merges instead.
 */
int		 queue_due_store(const char *dir, struct queue_due *computed,
		    unsigned long long gen_seen, int exact);
/*
 * write(2) all of buf, through short writes and EINTR; -1 on error (errno
 * set). The one write loop for files: spool, queue entries, bounces.
 */
int		 queue_write_all(int fd, const char *buf, size_t len);
/* Is qid our format (QID_LEN upper-case hex)? Guards every path built. */
int		 queue_valid_qid(const char *qid);
/*
 * Hub health (HubBackoff): remember that a route failed to connect, forget
 * it after a success, and tell how many seconds ago it last failed (-1:
 * not marked). The mark is QueueDir/hub-down.HOST.PORT, its mtime the time,
 * written and removed with the group whoever runs (a user's success
 * removes root's mark). ST_CANTCREAT when the mark cannot be changed.
 */
int		 queue_hub_mark_down(const char *dir, const struct route *,
		    const char *why, struct error *);
int		 queue_hub_mark_up(const char *dir, const struct route *,
		    struct error *);
long long	 queue_hub_down_since(const char *dir, const struct route *,
		    char *why, size_t whylen);

/*
 * Small state files of QueueDir (the OAuth token cache): QueueDir/NAME,
 * written atomically (temporary file, fsync, rename, directory fsync)
 * mode 0660 with the group, never readable by others; read refuses a
 * file that is not regular or is readable by others. ST_OK with *len 0
 * when the file does not exist; ST_CANTCREAT on any other error.
 */
int		 queue_state_write(const char *dir, const char *name,
		    const char *buf, size_t len, struct error *);
int		 queue_state_read(const char *dir, const char *name, char *buf,
		    size_t cap, size_t *len, struct error *);
/*
 * QueueDir/NAME (created 0660) opened and flock()ed exclusively, waiting
 * for a holder: one OAuth refresh at a time. The descriptor, closed by
 * the caller to unlock; -1 when it cannot (go on without the lock).
 */
int		 queue_state_lock(const char *dir, const char *name);

/* Outcome counters kept across runs (QueueDir/stats), for --metrics. */
enum stat_kind {
	STAT_SENT,	/* every recipient settled, none refused */
	STAT_DEFERRED,	/* an attempt (or HubBackoff) left it pending */
	STAT_BOUNCED,	/* recipients refused: a report to the sender */
	STAT_FAILED,	/* kept in the failed area */
	STAT_KINDS
};
struct queue_stats {
	unsigned long long count[STAT_KINDS];
	long long	 last_delivery;	/* time of the last STAT_SENT; 0 */
};
/* Count one message's outcome; last_delivery is set with STAT_SENT. */
int		 queue_stats_add(const char *dir, enum stat_kind,
		    struct error *);
/* Add every counter of delta at once (a queue run's batch). */
int		 queue_stats_merge(const char *dir, const struct queue_stats *,
		    struct error *);
/* The counters (all 0 when the file does not exist yet). */
int		 queue_stats_read(const char *dir, struct queue_stats *,
		    struct error *);
/*
 * The TLS session cache (tls.c): QueueDir/tls-session.HOST.PORT, the
 * session (DER) of the last verified connection to a hub, with the
 * binding it was made under (tls.c's one-line text) and when it expires.
 * load gives back a malloc'd copy, or *der NULL when there is none or it
 * has expired, was made under another binding or is malformed (a cache:
 * never an error); save replaces it atomically (0640); forget removes it.
 */
void		 queue_tls_session_load(const char *dir, const char *host,
		    const char *port, const char *binding,
		    unsigned char **der, size_t *len);
int		 queue_tls_session_save(const char *dir, const char *host,
		    const char *port, const char *binding, long long expires,
		    const unsigned char *der, size_t len, struct error *);
void		 queue_tls_session_forget(const char *dir, const char *host,
		    const char *port);

/* ---------------------------------------------------------- deliver.c */

/*
 * The transport seam: how a connection to a route is opened. NULL in a
 * context means TCP (conn_connect); unit tests plug in stub connections.
 */
typedef int	 conn_opener_fn(void *arg, const struct route *,
		    int timeout_s, struct conn **out, struct error *);

/* What delivering needs besides the entry: config, names, transcript. */
struct deliver_ctx {
	const struct config *cfg;
	const char	*domain;	/* for bounces: MAILER-DAEMON@domain */
	const char	*hostname;
	transcript_fn	*transcript;
	void		*transcript_arg;
	conn_opener_fn	*connect;	/* NULL: conn_connect */
	void		*connect_arg;
};

/* One SMTP session to one route, opened on demand and reused. */
struct hub_session {
	struct smtp	*smtp;
	struct route	 route;
	int		 failed;	/* could not open: skip this route */
	int		 used;		/* a transaction ran: RSET before the next */
	/* Hubs that could not take mail in this run: not tried again in it */
	struct route	 down[HUBS_MAX];
	char		 down_why[HUBS_MAX][ERR_MAX];	/* their reasons */
	size_t		 ndown;
	struct error	 err;		/* why */
	struct smtp_result res;		/* relay and TLS for the log */
	struct queue_stats stats;	/* a queue run's counts not yet in
					 * the stats file (written at
					 * deliver_session_close) */
	const char	*stats_dir;	/* whose stats file they go to */
};

/* The data of an attempt, and whether its entry is on disk already. */
struct envelope_input {
	int		 data_fd;	/* wire form, read from offset 0 */
	int		 committed;	/* a queue entry (a possible duplicate
					 * is recorded before the final dot) */
};

/* How a submission is to be settled (-od?, -oe?). */
struct submit_mode {
	int		 now;		/* try the hub now (-odi) */
	char		 error_mode;	/* p, q, m, w, e */
};

/* What became of one message: DESIGN.md's outcome table, one row. */
enum outcome_kind {
	OUT_SENT,	/* the hub took every recipient not refused */
	OUT_QUEUED,	/* committed for a later attempt */
	OUT_REFUSED,	/* every recipient refused for good (kept in failed/) */
	OUT_NOT_QUEUED,	/* neither sent nor queued: the caller keeps it */
	OUT_ERROR	/* stopped before delivery (usage, data, config...) */
};

struct outcome {
	enum outcome_kind kind;
	enum smtp_stage	 stage;		/* where the hub said no (REFUSED) */
	int		 committed;	/* on disk now (queue/ or failed/) */
	int		 possible_dup;	/* a reply after the final dot was lost */
	size_t		 sent, failed, pending;
	struct error	 err;		/* status (ST_OK: sent or safely
					 * queued), hint, text */
	const struct queue_entry *entry; /* recipients and replies */
	char		 qid[QID_MAX];
};

/*
 * A submission (entry built, not committed; its data in spool_fd): try
 * the hub unless mode or HubBackoff says queue, then settle. Returns
 * out->err.status.
 */
int		 deliver_submission(const struct deliver_ctx *,
		    struct hub_session *, struct queue_entry *, int spool_fd,
		    const struct submit_mode *, struct outcome *);
/*
 * A locked queue entry: one attempt (or expiry: every pending recipient
 * fails), then update, remove or move it, and make the report owed.
 */
void		 deliver_entry(const struct deliver_ctx *, struct hub_session *,
		    struct queue_entry *, int expired, struct outcome *);
void		 deliver_session_close(struct hub_session *);
/*
 * postino check --hub: open a session to rt exactly as a delivery would
 * (connect, greeting, EHLO, STARTTLS, AUTH), then QUIT; never MAIL,
 * RCPT or DATA. res and err say how far it got.
 */
int		 deliver_probe(const struct deliver_ctx *, const struct route *,
		    struct smtp_result *, struct error *);

/* ----------------------------------------------------------- bounce.c */

struct bounce_names {
	const char	*queue_dir;
	const char	*domain;	/* MAILER-DAEMON@domain */
	const char	*hostname;	/* Reporting-MTA */
	const char	*hub;		/* Remote-MTA when the entry has none */
};

/*
 * RFC 3464 report to e's sender for the recipients with notify set,
 * committed to the queue as a new entry from <>, owned by e's submitter.
 * None (ST_OK, *bounce_qid "") for the null sender or when the sender's
 * NOTIFY leaves out FAILURE; notify is cleared once nothing is owed.
 */
int		 bounce_create(const struct bounce_names *, struct queue_entry *,
		    int data_fd, char bounce_qid[QID_MAX], struct error *);

/* ----------------------------------------------------------- runner.c */

/*
 * Does the queue hold an entry due for delivery (of f->owner only, when
 * f->own_only)? Reads the due index (queue.c), the entries only when it
 * is unknown; may say yes early, never no when one is due.
 */
int		 runner_has_due(const char *dir, const struct runner_filter *);
/* One pass over the queue (sendmail -q). */
int		 runner_run(const struct deliver_ctx *,
		    const struct runner_filter *, struct error *);
/*
 * A detached child (new session, stdio on /dev/null, so no caller waits
 * for it) runs one pass over the entries f selects.
 */
void		 runner_spawn(const struct deliver_ctx *,
		    const struct runner_filter *);
/* The entries a run started by uid may take (see own_only). */
void		 runner_filter_for(struct runner_filter *, uid_t caller);

/* ----------------------------------------------------------- caller.c */

/* Who submits: the real uid's account and the names derived from it. */
struct caller {
	char		 qid[QID_MAX];	/* of the message being submitted */
	uid_t		 uid;
	char		 login[64];
	char		 gecos[NAME_MAX_];
	char		 domain[HOST_MAX];
	char		 hostname[HOST_MAX];
	char		 helo[HOST_MAX];	/* alias_helo_name */
	struct aliases	*aliases;	/* AliasesFile, NULL: none */
	/* revaliases, read with the group before it is dropped */
	struct revalias	 rev;
	struct error	 rev_err;	/* status ST_OK: rev is usable */
	/* AllowedSendersFile, read with the group like revaliases */
	struct sender_allow allow;
	struct error	 allow_err;	/* status ST_OK: allow is usable */
	transcript_fn	*transcript;	/* -v, Debug=: the SMTP dialogue */
	void		*transcript_arg;
};

/* The real uid's login and GECOS name, and a fresh qid. */
void		 caller_identify(struct caller *);

/* How main() wants the configuration read. */
struct caller_load_how {
	config_warn_fn	*warn;		/* each warning (log, or stderr) */
	void		*warn_arg;
	int		 strict;	/* postino check: aliases errors fatal */
	int		*auth_ignored;	/* set: -au/-am not the caller's to give */
};

/*
 * Read the configuration (-C, with -au/-am applied where allowed), open
 * LogFile, settle the names, read AliasesFile and revaliases (a
 * revaliases error is kept in c->rev_err for the send path). ST_CONFIG
 * or ST_OSERR with the reason.
 */
int		 caller_load(struct caller *, struct config *,
		    const struct options *, const struct caller_load_how *,
		    struct error *);

/* ----------------------------------------------------------- submit.c */

/* The delivery context of a caller's run: names, transcript, TCP. */
void		 submit_deliver_ctx(const struct config *, const struct caller *,
		    struct deliver_ctx *);
/*
 * The recipients named on the command line (address lists allowed);
 * the error text names the argument that does not parse.
 */
int		 submit_arg_recipients(const struct options *,
		    struct addrlist *, struct error *);
/*
 * Read a message from in_fd, settle its sender and recipients (given:
 * argv or -bs RCPT, plus -t), count it against RateLimit, and relay or
 * queue it. entry (initialised by the caller, freed by it) holds the
 * recipients' answers for the caller's report. Returns out->err.status.
 */
int		 submit_message(const struct config *, const struct caller *,
		    const struct options *, int in_fd,
		    const struct addrlist *given, struct queue_entry *entry,
		    struct outcome *);

/* ------------------------------------------------------------ modes.c */

/* -q: one pass over the queue. */
int		 mode_run_queue(const struct config *, const struct caller *,
		    const struct runner_filter *, struct error *);
/* mailq / postino queue [--json], or postino queue ACTION ID. */
int		 mode_queue_admin(const struct config *, const struct options *,
		    FILE *out, struct error *);
/* -bv: one line per argument on out; ST_PERM if one is invalid. */
int		 mode_verify(const struct config *, const struct caller *,
		    const struct options *, FILE *out, struct error *);
/* postino check: ST_CONFIG on any warning or config_check finding (told
 * through warn; err text may be empty). */
int		 mode_check(const struct config *, const struct caller *,
		    int warnings, config_warn_fn *warn, void *warn_arg,
		    FILE *out, struct error *);
/* newaliases: check AliasesFile and log what it holds. */
void		 mode_check_aliases(const struct config *);
/* postino token (root): refresh the OAuth token now, print its expiry. */
int		 mode_token(const struct config *, FILE *out, struct error *);

/* ------------------------------------------------------------- priv.c */

/*
 * The set-group-ID privilege (postino(8) SECURITY). main() calls
 * priv_drop once, right after reading the configuration; from then on
 * the group is effective only between priv_group_enter and
 * priv_group_leave, which queue.c's public functions call around their
 * work (and the readers of a group-only TLS client key and LogFile).
 * Without a set-group-ID (root's own run, a plain build, the tests)
 * enter and leave succeed and change nothing.
 */
/* Effective group := real group; the saved one keeps the privilege. */
int		 priv_drop(struct error *);
/* Effective group := saved group; nested calls counted, the outermost
 * switches. ST_OSERR when the switch fails or does not verify. */
int		 priv_group_enter(struct error *);
/* Back to the real group (outermost call only). If that fails the
 * process must not go on privileged: one LOG_CRIT line, _exit(71). */
void		 priv_group_leave(void);
/* How deep the enter/leave nesting is now (0: outside; for tests). */
unsigned int	 priv_group_depth(void);
/* Real, effective and saved := real group: no way back (-C by a user). */
int		 priv_drop_for_good(struct error *);

/*
 * Whom a delivery started by root runs as (item 12 of issue 9): the
 * RunAsUser account (pw: its getpwnam, NULL when unknown) or else the
 * owner of QueueDir (qdir: its stat, NULL when it cannot be read), with
 * QueueDir's group. stay_root when neither names anyone but root.
 * ST_CONFIG when RunAsUser is unknown or root, or the group would be
 * root's. A pure function, for the unit tests.
 */
struct passwd;
struct stat;
struct priv_target {
	int		 stay_root;
	uid_t		 uid;
	gid_t		 gid;
};
int		 priv_runner_target(const char *run_as_user,
		    const struct passwd *pw, const struct stat *qdir,
		    struct priv_target *, struct error *);
/* What a mode keeps of the privilege once the configuration is read. */
enum priv_plan {
	PRIV_PLAN_DROP,		/* the group only inside queue steps */
	PRIV_PLAN_FOR_GOOD,	/* never touches the queue again */
	PRIV_PLAN_RUNNER	/* delivers: root becomes the runner user */
};
enum priv_plan	 priv_plan_for(enum mode, uid_t real_uid);
/* How the process runs after priv_settle. */
enum priv_as {
	PRIV_AS_CALLER,		/* the caller (the group per queue step) */
	PRIV_AS_RUNNER,		/* root switched to the runner user */
	PRIV_AS_ROOT		/* root, delivering as root: log a warning */
};
/*
 * Called by main() right after the configuration and revaliases are read,
 * before the message, a queue entry or a connection: applies
 * priv_plan_for(mode, getuid()). For the runner: supplementary groups
 * cleared, real/effective/saved gid and uid set to the target, each step
 * verified; ST_OSERR (never root silently) when one fails, ST_CONFIG as
 * priv_runner_target.
 */
int		 priv_settle(enum mode, const struct config *, enum priv_as *,
		    struct error *);

/* -------------------------------------------------------- ratelimit.c */

/* The rule for login: its own, none (NULL) when exempt, else the default
 * (NULL when there is none). */
const struct rate_rule *ratelimit_rule_for(const struct rate_policy *,
		    const char *login);
/*
 * Count one message for uid/login against rule in the counter file
 * counter_fd (queue_rate_open: open and locked). Over the limit: ST_LIMIT,
 * and *warn_now is set the first time in a period so that one
 * LOG_WARNING names the uid. ST_CANTCREAT when the counter cannot be
 * written.
 */
int		 ratelimit_take(const struct rate_rule *, int counter_fd,
		    uid_t uid, const char *login, int *warn_now,
		    struct error *);

/* ----------------------------------------------------------- smtpd.c */

/*
 * sendmail -bs: an SMTP dialogue on stdin/stdout (spec/callers.md 3.8)
 * for Symfony, Laravel and SwiftMailer. smtpd.c speaks the protocol;
 * each complete transaction is handed to main()'s submit callback with
 * the un-stuffed DATA in a file (fd at offset 0, LF or CRLF lines, the
 * final "." removed), and the callback's one-line reply ("250 2.0.0 Ok:
 * queued as QID", "550 5.1.1 ...", "451 4.3.0 ...") is sent as is.
 */
typedef int	 smtpd_submit_fn(void *arg, const char *sender,
		    const struct addrlist *rcpts, int data_fd, char *reply,
		    size_t replylen);

struct smtpd_params {
	int		 in_fd;		/* STDIN_FILENO */
	int		 out_fd;	/* STDOUT_FILENO */
	const char	*hostname;	/* in the greeting and EHLO */
	const char	*spool_dir;	/* where DATA is spooled (unnamed) */
	long long	 max_size;	/* SIZE advertised; 0: none */
	int		 idle_timeout;	/* seconds; 300 */
	smtpd_submit_fn	*submit;
	void		*submit_arg;
};

/* Run the dialogue until QUIT, EOF or the idle timeout. ST_OK normally. */
int		 smtpd_run(const struct smtpd_params *, struct error *);

/* ------------------------------------------------------------ oauth.c */

/*
 * OAuth 2.0 bearer tokens for AuthMethod=XOAUTH2/OAUTHBEARER: the first
 * line of AuthTokenFile (re-read for every connection), or postino's own
 * refresher, which asks OAuthTokenURL (HTTPS, verified like the hub) with
 * the refresh-token grant (OAuthRefreshTokenFile) or else the
 * client-credentials grant, and keeps the access token and its expiry in
 * QueueDir/oauth-token. Tokens never reach a log line or an error text.
 */
#define OAUTH_MARGIN	300	/* refresh with less than this left (s) */

/* Is cfg's AuthMethod a bearer one (XOAUTH2, OAUTHBEARER)? */
int		 oauth_wanted(const struct config *);
/* Does postino refresh the token itself (OAuthTokenURL set)? */
int		 oauth_refresher(const struct config *);

struct oauth_token {
	char		 token[OAUTH_TOKEN_MAX];
	long long	 expires;	/* epoch s; 0: unknown (AuthTokenFile) */
	int		 refreshed;	/* fetched from the endpoint just now */
	const char	*key;		/* the key a refusal names */
	char		 note[ERR_MAX];	/* a warning for the log, or "" */
};
/*
 * The token for one connection: AuthTokenFile's first line, else the
 * cached one, refreshed first when it has less than margin seconds left
 * (or force). ST_TEMP with HINT_AUTH and a text naming the key when the
 * endpoint cannot be reached or refuses (invalid_client:
 * OAuthClientSecretFile, invalid_grant: OAuthRefreshTokenFile), or a
 * secret file is readable by others. Wipe t with oauth_token_wipe.
 */
int		 oauth_token_get(const struct config *, long long margin,
		    int force, struct oauth_token *, struct error *);
void		 oauth_token_wipe(struct oauth_token *);
/* The token's state in words (never the token), for check --hub. */
void		 oauth_describe(const struct config *, char *buf, size_t len);
/* check --hub's "  OAuth token: STATE" line; nothing without OAuth. */
void		 oauth_check_line(FILE *out, const struct config *);

/* What a token endpoint answered (RFC 6749 5.1, 5.2). */
struct oauth_reply {
	char		 access_token[OAUTH_TOKEN_MAX];
	char		 refresh_token[OAUTH_TOKEN_MAX];
	char		 token_type[32];
	long long	 expires_in;	/* -1: not given */
	char		 error[64];
	char		 error_description[256];
};
/*
 * The JSON object of a token response: the members above (expires_in a
 * number or a string of digits), others skipped; nesting and length
 * bounded. -1 when it is not one JSON object.
 */
int		 oauth_json_parse(const char *buf, size_t len,
		    struct oauth_reply *);
/*
 * An HTTP/1.1 response in buf[0..len): 1 when complete (status, the
 * body copied to body, de-chunked, *bodylen), 0 when more bytes are
 * needed (eof: none will come, so -1 unless the body runs to EOF), -1
 * when malformed or the body exceeds bodycap.
 */
int		 oauth_http_parse(const char *buf, size_t len, int eof,
		    int *status, char *body, size_t bodycap, size_t *bodylen);
/* application/x-www-form-urlencoded value of s appended to out. -1: full. */
int		 oauth_form_append(char *out, size_t outlen, const char *name,
		    const char *value);

/* --------------------------------------------------------- hubcheck.c */

/* The monitoring plugin's verdict; main() makes it exit 0, 1 or 2. */
enum hub_verdict { HUB_OK = 0, HUB_WARNING, HUB_CRITICAL };
/*
 * postino check --hub: open a session to the hub as a delivery does
 * (TLS, verification, AUTH), report it on out (text, or one JSON object)
 * and QUIT; never MAIL, RCPT or DATA. ST_OK with *verdict set.
 */
int		 hubcheck_run(const struct config *, const char *helo,
		    const struct options *, FILE *out, enum hub_verdict *verdict,
		    struct error *);

/* ------------------------------------------------------------ showq.c */

/* mailq / -bp (Postfix layout), or one JSON object per line. */
int		 showq_list(FILE *out, const char *dir, int json, struct error *);
/*
 * postino queue --metrics: the queue's state and the counters kept in
 * it, in Prometheus' text exposition format.
 */
int		 showq_metrics(FILE *out, const struct config *,
		    struct error *);
/* The same, replacing MetricsFile atomically (a queue run, --write). */
int		 showq_metrics_write(const struct config *, struct error *);
/* postino queue delete|hold|release ID: root or the submitter only. */
int		 showq_change(const char *dir, const char *action,
		    const char *qid, struct error *);

#endif /* POSTINO_H */
