/*
 * fuzz_aliases.c: libFuzzer target for the aliases file
 * (alias_parse_aliases) and what uses the table: recursive expansion
 * (alias_expand) and the -bv lines (alias_verify_line). The input is the
 * file's text. Expanded are a few fixed names and the first line's name
 * (the bytes before its first ':'), so that the fuzzer reaches loops and
 * chains without guessing names; the first line's value (after that
 * ':') is also given to -bv, as a caller's argument.
 *
 * Checked: parsing never fails but for ST_CONFIG/ST_OSERR limits;
 * warnings and -bv lines carry no control bytes; every final address is
 * safe for RCPT TO (addr_is_safe) and qualified.
 *
 * getpwnam_r is replaced by a fixed table: alias.c asks it for every
 * local name (Root= applies to system accounts), and NSS reading
 * /etc/passwd each time made the target 100 times slower and the result
 * depend on the host.
 */
#include <sys/types.h>

#include <errno.h>
#include <pwd.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postino.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

#define DOMAIN		"example.org"
#define HOSTNAME	"host.example.org"
#define ARG_MAX_	1024

/* The accounts alias.c may ask about; anything else does not exist. */
int
getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t len,
    struct passwd **res)
{
	static const struct {
		const char	*name;
		uid_t		 uid;
	} users[] = {
		{ "root", 0 }, { "daemon", 1 }, { "www-data", 33 },
		{ "nobody", 65534 }, { "alice", 1000 }
	};
	size_t i;

	*res = NULL;
	for (i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		if (strcmp(name, users[i].name) != 0)
			continue;
		if (strlcpy(buf, name, len) >= len)
			return ERANGE;
		memset(pw, 0, sizeof(*pw));
		pw->pw_name = buf;
		pw->pw_passwd = buf + strlen(buf);
		pw->pw_gecos = pw->pw_dir = pw->pw_shell = pw->pw_passwd;
		pw->pw_uid = pw->pw_gid = users[i].uid;
		*res = pw;
		return 0;
	}
	return 0;
}

/* Warnings are printable ASCII (file text goes through log_sanitize). */
static void
warned(void *arg, const char *text)
{
	size_t *count = arg;

	for (; *text != '\0'; text++)
		CHECK((unsigned char)*text >= ' ' &&
		    (unsigned char)*text < 0x7f);
	(*count)++;
}

/* -bv lines go to a terminal: no control bytes. */
static void
emitted(void *arg, const char *line)
{
	size_t *count = arg;

	CHECK(line[0] != '\0');
	for (; *line != '\0'; line++)
		CHECK((unsigned char)*line >= ' ' && *line != 0x7f);
	(*count)++;
}

static void
expand(const struct config *cfg, const struct aliases *al, const char *rcpt,
    int no_alias)
{
	struct addrlist out;
	struct error err;
	size_t i;
	int rc;

	addrlist_init(&out);
	error_clear(&err);
	rc = alias_expand(cfg, al, rcpt, DOMAIN, HOSTNAME, no_alias, &out,
	    &err);
	if (rc == ST_OK)
		CHECK(out.n > 0);
	else
		CHECK((rc == ST_DATA || rc == ST_OSERR) &&
		    (int)err.status == rc && err.text[0] != '\0');
	for (i = 0; i < out.n; i++) {
		CHECK(addr_is_safe(out.v[i]));
		CHECK(strchr(out.v[i], '@') != NULL);
	}
	addrlist_free(&out);
}

/* The first line's name and value, as C strings (no NUL, bounded). */
static void
first_line(const char *buf, size_t len, char *name, char *value)
{
	const char *nl, *colon;
	size_t n, v;

	name[0] = value[0] = '\0';
	nl = memchr(buf, '\n', len);
	n = nl != NULL ? (size_t)(nl - buf) : len;
	if ((colon = memchr(buf, ':', n)) == NULL)
		return;
	v = n - (size_t)(colon - buf) - 1;
	n = (size_t)(colon - buf);
	if (n >= ARG_MAX_ || v >= ARG_MAX_ || memchr(buf, '\0', n + 1 + v))
		return;
	memcpy(name, buf, n);
	name[n] = '\0';
	memcpy(value, colon + 1, v);
	value[v] = '\0';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const fixed[] = {
		"root", "postmaster", "a", "b@localhost",
		"\"A\"@host.example.org",
		"x@elsewhere.example", "www-data", "alice"
	};
	const char *buf = (const char *)data;
	char name[ARG_MAX_], value[ARG_MAX_];
	struct config *cfg;
	struct aliases *al;
	struct error err;
	size_t warnings = 0, lines = 0, i;
	int rc;

	error_clear(&err);
	rc = alias_parse_aliases("aliases", buf, size, &al, warned,
	    &warnings, &err);
	if (rc != ST_OK) {
		CHECK((rc == ST_CONFIG || rc == ST_OSERR) && al == NULL &&
		    (int)err.status == rc && err.text[0] != '\0');
		return 0;
	}
	CHECK(al != NULL);
	if ((cfg = malloc(sizeof(*cfg))) == NULL) {
		alias_free_aliases(al);
		return 0;
	}
	config_defaults(cfg);
	(void)strlcpy(cfg->root, "postmaster@" DOMAIN, sizeof(cfg->root));
	(void)strlcpy(cfg->hostname, HOSTNAME, sizeof(cfg->hostname));
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		expand(cfg, al, fixed[i], 0);
	first_line(buf, size, name, value);
	if (name[0] != '\0') {
		expand(cfg, al, name, 0);
		expand(cfg, al, name, 1);
		rc = alias_verify_line(cfg, al, value, DOMAIN, HOSTNAME, 0,
		    emitted, &lines, &err);
		CHECK(rc == ST_OK || rc == ST_DATA || rc == ST_OSERR);
		CHECK(rc == ST_OSERR || lines > 0);
	}
	config_free(cfg);
	free(cfg);
	alias_free_aliases(al);
	return 0;
}
