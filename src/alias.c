/*
 * alias.c: who a message is from and where it goes. The revaliases
 * file (ssmtp semantics, spec/anchors.md 1b, plus chains such as
 * "root: admins" with "admins: ops@example.org"), the aliases file
 * (aliases(5), callers.md 3.5), the mail domain and host name, the
 * envelope sender (revaliases > -f > login@domain, then
 * FromLineOverride), local recipients (aliases, then Root=, then the
 * domain), the -bv lines, and the route (a revaliases entry may name
 * its own hub and port).
 *
 * Decisions where aliases(5) and the spec are silent:
 * - Only local names are looked up, by their local part, quotes removed
 *   and case folded. A name being expanded that comes up again (loops,
 *   "root: root, admins") and a name more than ALIAS_DEPTH_MAX lookups
 *   deep are not looked up again: they go on through Root= and the
 *   domain like any unaliased name. Nothing is ever dropped for a loop.
 * - "\name" stops alias lookup for that name (sendmail's meaning).
 * - |command, /file and :include: values cannot be honoured by a relay:
 *   they are skipped with a warning; an entry left with no address is
 *   skipped whole, so the name is relayed as name@domain rather than
 *   silently discarded ("nobody: /dev/null" included).
 * - A duplicate name keeps its first entry (Postfix), with a warning.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "postino.h"

#define REVALIASES_MAX	(1024 * 1024)	/* a bigger file is a mistake */
#define ALIASES_FILE_MAX (4 * 1024 * 1024)
#define ALIASES_ENTRIES_MAX 65536
#define ALIASES_VALUES_MAX 262144	/* addresses in the whole file */
#define ALIAS_DEPTH_MAX	20		/* nested lookups for one recipient */
#define CHAIN_MAX	20		/* revaliases entries followed */
#define SYSTEM_UID_MAX	999		/* ssmtp's MAXSYSUID */
#define SHOW_MAX	128		/* file text quoted in a warning */
#define VERIFY_LINE_MAX	(2 * ADDR_MAX + HOST_MAX + 64)

/* One field of a revaliases line, not NUL-terminated. */
struct field {
	const char	*s;
	size_t		 len;
};

static int
is_sep(int c)
{
	return c == ':' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Split s[0..len) into at most max fields on ':', blanks, CR and LF,
 * skipping empty fields as ssmtp's strtok did. A field opening with '['
 * runs to its ']' so that "[::1]" stays whole (our extension). Returns
 * the number of fields, or -1 for an unclosed or ill-ended '['.
 */
static int
split_fields(const char *s, size_t len, struct field *f, int max)
{
	const char *end = s + len, *close;
	int n = 0;

	while (n < max) {
		while (s < end && is_sep((unsigned char)*s))
			s++;
		if (s == end)
			break;
		f[n].s = s;
		if (*s == '[') {
			close = memchr(s, ']', (size_t)(end - s));
			if (close == NULL || (close + 1 < end &&
			    !is_sep((unsigned char)close[1])))
				return -1;
			s = close + 1;
		} else {
			while (s < end && !is_sep((unsigned char)*s))
				s++;
		}
		f[n].len = (size_t)(s - f[n].s);
		n++;
	}
	return n;
}

/* Bytes an SMTP path or host must never hold. */
static int
field_clean(const struct field *f)
{
	size_t i;

	for (i = 0; i < f->len; i++) {
		unsigned char c = (unsigned char)f->s[i];

		if (c < ' ' || c == 0x7f || c == '<' || c == '>')
			return 0;
	}
	return 1;
}

static int
field_copy(char *dst, size_t dstlen, const struct field *f)
{
	if (f->len == 0 || f->len >= dstlen || !field_clean(f))
		return -1;
	memcpy(dst, f->s, f->len);
	dst[f->len] = '\0';
	return 0;
}

/* A matching line: address, then optionally hub, then port. */
static int
apply_match(const char *name, size_t line, const char *s, size_t len,
    struct revalias *ra, struct error *err)
{
	struct field f[3];
	struct field hub;
	char addr[ADDR_MAX], host[HOST_MAX], port[PORT_MAX];
	int n;

	if ((n = split_fields(s, len, f, 3)) == -1)
		return error_set(err, ST_CONFIG, "%s:%zu: bad hub (unclosed "
		    "'[')", name, line);
	if (n == 0 || field_copy(addr, sizeof(addr), &f[0]) == -1)
		return error_set(err, ST_CONFIG, "%s:%zu: bad address", name,
		    line);
	host[0] = port[0] = '\0';
	if (n >= 2) {
		/* "[::1]" names the host ::1, as MailHub=[::1] does. */
		hub = f[1];
		if (hub.len >= 2 && hub.s[0] == '[') {
			hub.s++;
			hub.len -= 2;
		}
		if (field_copy(host, sizeof(host), &hub) == -1)
			return error_set(err, ST_CONFIG, "%s:%zu: bad hub",
			    name, line);
	}
	if (n == 3 && (field_copy(port, sizeof(port), &f[2]) == -1 ||
	    !config_port_ok(port)))
		return error_set(err, ST_CONFIG, "%s:%zu: bad port", name,
		    line);
	/* Brackets may hold blanks; an address or hub never does. */
	if (strpbrk(addr, " \t") != NULL || strpbrk(host, " \t") != NULL)
		return error_set(err, ST_CONFIG, "%s:%zu: blank inside an "
		    "address or hub", name, line);
	ra->found = 1;
	(void)strlcpy(ra->address, addr, sizeof(ra->address));
	/* A later match keeps what it does not name (ssmtp's globals). */
	if (host[0] != '\0')
		(void)strlcpy(ra->hub_host, host, sizeof(ra->hub_host));
	if (port[0] != '\0')
		(void)strlcpy(ra->hub_port, port, sizeof(ra->hub_port));
	return ST_OK;
}

/* Apply every line whose first field is key; the last match wins. */
static int
scan_revaliases(const char *name, const char *buf, size_t len,
    const char *key, struct revalias *ra, struct error *err)
{
	const char *s = buf, *end = buf + len, *nl, *hash, *colon;
	size_t line = 0, llen, keylen = strlen(key);
	int rc;

	for (; s < end; s = nl < end ? nl + 1 : end) {
		line++;
		if ((nl = memchr(s, '\n', (size_t)(end - s))) == NULL)
			nl = end;
		llen = (size_t)(nl - s);
		/* ssmtp: '#' anywhere starts a comment. */
		if ((hash = memchr(s, '#', llen)) != NULL)
			llen = (size_t)(hash - s);
		if ((colon = memchr(s, ':', llen)) == NULL)
			continue;
		/* The login field is compared as is: "root " is not "root". */
		if ((size_t)(colon - s) != keylen ||
		    memcmp(s, key, keylen) != 0)
			continue;
		rc = apply_match(name, line, colon + 1, llen - keylen - 1, ra,
		    err);
		if (rc != ST_OK)
			return rc;
	}
	return ST_OK;
}

static int
chain_seen(char (*seen)[ADDR_MAX], size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(seen[i], name) == 0)
			return 1;
	return 0;
}

/*
 * Operators write "root: admins" and "admins: ops@example.org": while
 * the address is a bare name with an entry of its own, that entry's
 * address replaces it. A hub named nearer the login wins (the login's
 * own lines first, then each step in order); host and port go together.
 * A loop or an over-long chain stops where it is; the bare name left is
 * qualified later like any other.
 */
static int
follow_chain(const char *name, const char *buf, size_t len,
    const char *login, struct revalias *ra, struct error *err)
{
	char seen[CHAIN_MAX + 1][ADDR_MAX];
	struct revalias next;
	size_t n = 0;
	int rc;

	(void)strlcpy(seen[n++], login, sizeof(seen[0]));
	while (n <= CHAIN_MAX && strchr(ra->address, '@') == NULL &&
	    !chain_seen(seen, n, ra->address)) {
		memset(&next, 0, sizeof(next));
		rc = scan_revaliases(name, buf, len, ra->address, &next, err);
		if (rc != ST_OK)
			return rc;
		if (!next.found)
			break;
		(void)strlcpy(seen[n++], ra->address, sizeof(seen[0]));
		(void)strlcpy(ra->address, next.address, sizeof(ra->address));
		if (ra->hub_host[0] == '\0') {
			(void)strlcpy(ra->hub_host, next.hub_host,
			    sizeof(ra->hub_host));
			(void)strlcpy(ra->hub_port, next.hub_port,
			    sizeof(ra->hub_port));
		}
	}
	return ST_OK;
}

static int
parse_revaliases(const char *name, const char *buf, size_t len,
    const char *login, struct revalias *ra, struct error *err)
{
	int rc;

	memset(ra, 0, sizeof(*ra));
	/* An unknown login matches nothing (not even a line ":x"). */
	if (login == NULL || login[0] == '\0')
		return ST_OK;
	if ((rc = scan_revaliases(name, buf, len, login, ra, err)) != ST_OK ||
	    !ra->found)
		return rc;
	return follow_chain(name, buf, len, login, ra, err);
}

int
alias_parse_revaliases(const char *buf, size_t len, const char *login,
    struct revalias *ra, struct error *err)
{
	return parse_revaliases("revaliases", buf, len, login, ra, err);
}

int
alias_load_revaliases(const char *path, const char *login,
    struct revalias *ra, struct error *err)
{
	struct file_text ft;
	int rc;

	memset(ra, 0, sizeof(*ra));
	if (path == NULL || path[0] == '\0')
		return ST_OK;
	/* A missing file is no entries (ssmtp). */
	if ((rc = config_read_file(path, REVALIASES_MAX, FT_MISSING_OK, &ft,
	    err)) != ST_OK || ft.buf == NULL)
		return rc;
	rc = parse_revaliases(path, ft.buf, ft.len, login, ra, err);
	config_file_free(&ft);
	return rc;
}

/* ------------------------------------------------------ the aliases file */

struct alias_entry {
	char		*name;		/* unquoted, lower case */
	char		**values;	/* addresses; "\name" stops lookup */
	size_t		 nvalues;
	size_t		 line;
};

struct aliases {
	struct alias_entry *v;		/* sorted by name once loaded */
	size_t		 n;
	size_t		 cap;
	size_t		 nvalues;	/* in all entries */
};

/* Reading one file: where we are and where warnings go. */
struct aparse {
	const char	*file;
	size_t		 line;		/* first line of the current entry */
	config_warn_fn	*warn;
	void		*warn_arg;
	struct aliases	*al;
};

/* A growable buffer for one logical line (continuations joined). */
struct text {
	char		*s;
	size_t		 len;
	size_t		 cap;
};

enum item_kind { ITEM_ADDRESS, ITEM_PIPE, ITEM_FILE, ITEM_INCLUDE };

static void
awarn(const struct aparse *p, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
awarn(const struct aparse *p, size_t line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	config_vwarn(p->warn, p->warn_arg, p->file, line, fmt, ap);
	va_end(ap);
}

static int
is_blank(int c)
{
	return c == ' ' || c == '\t';
}

/* ASCII only: the locale must not decide which names are equal. */
static void
fold_case(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/*
 * The lookup key of a local part: quotes and their backslashes removed
 * ("\"Root\"" is root), case folded. -1 if it does not fit or is empty.
 */
static int
make_key(const char *s, size_t len, char *key, size_t keylen)
{
	size_t i, k = 0;

	if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
		s++;
		len -= 2;
	}
	for (i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len)
			i++;
		if (k + 1 >= keylen)
			return -1;
		key[k++] = s[i];
	}
	if (k == 0)
		return -1;
	key[k] = '\0';
	fold_case(key);
	return 0;
}

/*
 * "name:" at the start of a logical line; the name may be quoted
 * (Postfix). Returns the offset after the ':', or 0 if there is none.
 */
static size_t
parse_name(const char *s, size_t len, char *key, size_t keylen)
{
	size_t i = 0, start;

	if (len > 0 && s[0] == '"') {
		for (i = 1; i < len && s[i] != '"'; i++)
			if (s[i] == '\\')
				i++;
		if (i >= len)
			return 0;
		i++;
	} else {
		while (i < len && s[i] != ':' && !is_blank(s[i]))
			i++;
	}
	start = i;
	while (i < len && is_blank(s[i]))
		i++;
	if (i == len || s[i] != ':' || make_key(s, start, key, keylen) == -1)
		return 0;
	return i + 1;
}

/* A name is a local part: no domain, nothing a terminal would obey. */
static int
name_ok(const char *key)
{
	for (; *key != '\0'; key++)
		if ((unsigned char)*key < ' ' || *key == 0x7f || *key == '@')
			return 0;
	return 1;
}

/*
 * The next item of a value list from s[*pos], split on ',' outside
 * quotes, <angles> and (comments), blanks trimmed. 0 at the end.
 */
static int
next_item(const char *s, size_t len, size_t *pos, struct field *item)
{
	size_t start = *pos, i = start, end;
	int quoted = 0, angle = 0, paren = 0;

	if (i >= len)
		return 0;
	for (; i < len; i++) {
		if (quoted && s[i] == '\\' && i + 1 < len)
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
		else if (quoted)
			continue;
		else if (s[i] == '(')
			paren++;
		else if (s[i] == ')' && paren > 0)
			paren--;
		else if (s[i] == '<')
			angle = 1;
		else if (s[i] == '>')
			angle = 0;
		else if (s[i] == ',' && paren == 0 && !angle)
			break;
	}
	end = i;
	*pos = i < len ? i + 1 : len;
	while (start < end && is_blank(s[start]))
		start++;
	while (end > start && is_blank(s[end - 1]))
		end--;
	item->s = s + start;
	item->len = end - start;
	return 1;
}

/* Postfix: a quoted "|command with args" is a command all the same. */
static enum item_kind
item_kind(const struct field *f)
{
	const char *s = f->s;
	size_t n = f->len;

	if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		s++;
		n -= 2;
	}
	if (n > 0 && s[0] == '|')
		return ITEM_PIPE;
	if (n > 0 && s[0] == '/')
		return ITEM_FILE;
	if (n >= 9 && strncasecmp(s, ":include:", 9) == 0)
		return ITEM_INCLUDE;
	return ITEM_ADDRESS;
}

static void
entry_free(struct alias_entry *e)
{
	size_t i;

	for (i = 0; i < e->nvalues; i++)
		free(e->values[i]);
	free(e->values);
	free(e->name);
	memset(e, 0, sizeof(*e));
}

static int
entry_push(struct alias_entry *e, char *value, struct error *err)
{
	char **v;
	size_t cap;

	/* Powers of two: grow when the count reaches one. */
	if ((e->nvalues & (e->nvalues - 1)) == 0) {
		cap = e->nvalues == 0 ? 1 : e->nvalues * 2;
		if ((v = reallocarray(e->values, cap, sizeof(*v))) == NULL) {
			free(value);
			return error_set(err, ST_OSERR, "%s", strerror(errno));
		}
		e->values = v;
	}
	e->values[e->nvalues++] = value;
	return ST_OK;
}

/* One item of name's value list: an address kept, anything else warned. */
static int
add_value(struct aparse *p, struct alias_entry *e, const char *name,
    const struct field *f, struct error *err)
{
	static const char *const why[] = {
		[ITEM_PIPE] = "a pipe to a command",
		[ITEM_FILE] = "delivery to a file",
		[ITEM_INCLUDE] = ":include:",
	};
	char text[ADDR_MAX], addr[ADDR_MAX + 1], show[SHOW_MAX], *copy;
	struct field v = *f;
	struct error perr;
	enum item_kind kind = item_kind(f);
	int stop = 0;

	if (kind != ITEM_ADDRESS) {
		awarn(p, e->line, "alias %s: %s is not supported by a relay, "
		    "'%s' ignored", name, why[kind],
		    log_sanitize(show, sizeof(show), f->s, f->len));
		return ST_OK;
	}
	if (v.len > 0 && v.s[0] == '\\') {
		stop = 1;
		v.s++;
		v.len--;
	}
	error_clear(&perr);
	if (v.len >= sizeof(text))
		(void)error_set(&perr, ST_DATA, "address too long");
	else {
		memcpy(text, v.s, v.len);
		text[v.len] = '\0';
		if (addr_parse_one(text, addr + 1, ADDR_MAX, &perr) == ST_OK &&
		    !addr_is_safe(addr + 1))
			(void)error_set(&perr, ST_DATA, "not a usable address");
	}
	if (perr.status != ST_OK) {
		awarn(p, e->line, "alias %s: bad address '%s' (%s), ignored",
		    name, log_sanitize(show, sizeof(show), f->s, f->len),
		    perr.text);
		return ST_OK;
	}
	if (e->nvalues >= RCPT_MAX || p->al->nvalues >= ALIASES_VALUES_MAX)
		return error_set(err, ST_CONFIG, "%s:%zu: too many addresses "
		    "(limit %d in one alias, %d in all)", p->file, e->line,
		    RCPT_MAX, ALIASES_VALUES_MAX);
	addr[0] = '\\';
	if ((copy = strdup(addr + (stop ? 0 : 1))) == NULL)
		return error_set(err, ST_OSERR, "%s", strerror(errno));
	p->al->nvalues++;
	return entry_push(e, copy, err);
}

static int
table_push(struct aparse *p, struct alias_entry *e, struct error *err)
{
	struct aliases *al = p->al;
	struct alias_entry *v;
	size_t cap;

	if (al->n >= ALIASES_ENTRIES_MAX)
		return error_set(err, ST_CONFIG, "%s:%zu: too many aliases "
		    "(limit %d)", p->file, e->line, ALIASES_ENTRIES_MAX);
	if (al->n == al->cap) {
		cap = al->cap == 0 ? 16 : al->cap * 2;
		if ((v = reallocarray(al->v, cap, sizeof(*v))) == NULL)
			return error_set(err, ST_OSERR, "%s", strerror(errno));
		al->v = v;
		al->cap = cap;
	}
	al->v[al->n++] = *e;
	return ST_OK;
}

/* One logical line: "name: value, value, ...". */
static int
add_entry(struct aparse *p, const char *s, size_t len, struct error *err)
{
	struct alias_entry e;
	struct field item;
	char key[ADDR_MAX], show[SHOW_MAX];
	size_t pos;
	int rc;

	if ((pos = parse_name(s, len, key, sizeof(key))) == 0) {
		awarn(p, p->line, "not an alias ('name: address, ...'): '%s', "
		    "ignored", log_sanitize(show, sizeof(show), s, len));
		return ST_OK;
	}
	(void)log_sanitize(show, sizeof(show), key, strlen(key));
	if (!name_ok(key)) {
		awarn(p, p->line, "bad alias name '%s', ignored", show);
		return ST_OK;
	}
	memset(&e, 0, sizeof(e));
	e.line = p->line;
	while (next_item(s, len, &pos, &item))
		if (item.len > 0 &&
		    (rc = add_value(p, &e, show, &item, err)) != ST_OK)
			goto fail;
	if (e.nvalues == 0) {
		awarn(p, e.line, "alias %s has no address left, ignored", show);
		entry_free(&e);
		return ST_OK;
	}
	if ((e.name = strdup(key)) == NULL) {
		rc = error_set(err, ST_OSERR, "%s", strerror(errno));
		goto fail;
	}
	if ((rc = table_push(p, &e, err)) == ST_OK)
		return ST_OK;
fail:
	entry_free(&e);
	return rc;
}

static int
text_append(struct text *t, const char *s, size_t len, struct error *err)
{
	char *bigger;
	size_t cap;

	/* NULL: a first call allocates, even in the analyzer's view. */
	if (t->s == NULL || t->len + len + 1 > t->cap) {
		cap = t->cap == 0 ? 256 : t->cap;
		while (cap < t->len + len + 1)
			cap *= 2;
		if ((bigger = realloc(t->s, cap)) == NULL)
			return error_set(err, ST_OSERR, "%s", strerror(errno));
		t->s = bigger;
		t->cap = cap;
	}
	memcpy(t->s + t->len, s, len);
	t->len += len;
	t->s[t->len] = '\0';
	return ST_OK;
}

/*
 * Physical lines to logical ones: a line starting with a blank continues
 * the entry above; blank lines and lines whose first non-blank is '#'
 * are skipped without ending it (Postfix).
 */
static int
read_entries(struct aparse *p, const char *buf, size_t len,
    struct error *err)
{
	struct text acc = { NULL, 0, 0 };
	const char *s = buf, *end = buf + len, *nl;
	size_t llen, i, line = 0;
	int have = 0, rc = ST_OK;

	for (; s < end && rc == ST_OK; s = nl < end ? nl + 1 : end) {
		line++;
		if ((nl = memchr(s, '\n', (size_t)(end - s))) == NULL)
			nl = end;
		llen = (size_t)(nl - s);
		if (llen > 0 && s[llen - 1] == '\r')
			llen--;
		if (memchr(s, '\0', llen) != NULL) {
			awarn(p, line, "NUL byte, line ignored");
			continue;
		}
		for (i = 0; i < llen && is_blank(s[i]); i++)
			continue;
		if (i == llen || s[i] == '#')
			continue;
		if (i > 0 && !have)
			awarn(p, line, "continuation line without an alias, "
			    "ignored");
		else if (i > 0) {
			if ((rc = text_append(&acc, " ", 1, err)) == ST_OK)
				rc = text_append(&acc, s + i, llen - i, err);
		} else {
			if (have)
				rc = add_entry(p, acc.s, acc.len, err);
			acc.len = 0;
			p->line = line;
			have = 1;
			if (rc == ST_OK)
				rc = text_append(&acc, s, llen, err);
		}
	}
	if (rc == ST_OK && have)
		rc = add_entry(p, acc.s, acc.len, err);
	free(acc.s);
	return rc;
}

static int
entry_order(const void *a, const void *b)
{
	const struct alias_entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int
entry_by_name(const void *key, const void *elem)
{
	const struct alias_entry *e = elem;

	return strcmp(key, e->name);
}

/* Sort for bsearch; of two entries with one name the first is kept. */
static void
sort_entries(struct aparse *p)
{
	struct aliases *al = p->al;
	char show[SHOW_MAX];
	size_t i, k = 0;

	if (al->n == 0)
		return;
	qsort(al->v, al->n, sizeof(*al->v), entry_order);
	for (i = 0; i < al->n; i++) {
		if (k > 0 && strcmp(al->v[k - 1].name, al->v[i].name) == 0) {
			awarn(p, al->v[i].line, "duplicate alias %s (first at "
			    "line %zu), ignored", log_sanitize(show,
			    sizeof(show), al->v[i].name,
			    strlen(al->v[i].name)), al->v[k - 1].line);
			entry_free(&al->v[i]);
			continue;
		}
		al->v[k++] = al->v[i];
	}
	al->n = k;
}

int
alias_parse_aliases(const char *name, const char *buf, size_t len,
    struct aliases **out, config_warn_fn *warn, void *warn_arg,
    struct error *err)
{
	struct aparse p;
	int rc;

	*out = NULL;
	memset(&p, 0, sizeof(p));
	p.file = name;
	p.warn = warn;
	p.warn_arg = warn_arg;
	if ((p.al = calloc(1, sizeof(*p.al))) == NULL)
		return error_set(err, ST_OSERR, "%s", strerror(errno));
	if ((rc = read_entries(&p, buf, len, err)) != ST_OK) {
		alias_free_aliases(p.al);
		return rc;
	}
	sort_entries(&p);
	*out = p.al;
	return ST_OK;
}

int
alias_load_aliases(const char *path, struct aliases **out,
    config_warn_fn *warn, void *warn_arg, struct error *err)
{
	struct file_text ft = { NULL, 0, 0 };
	int rc;

	*out = NULL;
	if (path != NULL && path[0] != '\0' &&
	    (rc = config_read_file(path, ALIASES_FILE_MAX, FT_MISSING_OK, &ft,
	    err)) != ST_OK)
		return rc;
	/* No file (or AliasesFile= empty): an empty table. */
	rc = alias_parse_aliases(path != NULL ? path : "", ft.buf != NULL ?
	    ft.buf : "", ft.len, out, warn, warn_arg, err);
	config_file_free(&ft);
	return rc;
}

void
alias_free_aliases(struct aliases *al)
{
	size_t i;

	if (al == NULL)
		return;
	for (i = 0; i < al->n; i++)
		entry_free(&al->v[i]);
	free(al->v);
	free(al);
}

int
alias_check_aliases(const char *path, config_warn_fn *warn, void *warn_arg,
    size_t *entries, struct error *err)
{
	struct aliases *al;
	int rc;

	if (entries != NULL)
		*entries = 0;
	if ((rc = alias_load_aliases(path, &al, warn, warn_arg, err)) !=
	    ST_OK)
		return rc;
	if (entries != NULL)
		*entries = al->n;
	alias_free_aliases(al);
	return ST_OK;
}

/* The entry for a local part, or NULL. */
static const struct alias_entry *
alias_lookup(const struct aliases *al, const char *local, size_t len)
{
	char key[ADDR_MAX];

	if (al == NULL || al->n == 0 ||
	    make_key(local, len, key, sizeof(key)) == -1)
		return NULL;
	return bsearch(key, al->v, al->n, sizeof(*al->v), entry_by_name);
}

static void
system_hostname(char *buf, size_t len)
{
	char name[HOST_MAX];

	if (gethostname(name, sizeof(name)) == -1 || name[0] == '\0')
		(void)strlcpy(name, "localhost", sizeof(name));
	name[sizeof(name) - 1] = '\0';
	(void)strlcpy(buf, name, len);
}

/* First line of /etc/mailname (Debian Policy 11.6), trimmed; 0 if none. */
static int
read_mailname(const char *path, char *buf, size_t len)
{
	char text[HOST_MAX + 2];
	struct stat st;
	ssize_t n;
	size_t i, start = 0;
	int fd;

	/* O_NONBLOCK: a FIFO planted at the path must not hang a sender. */
	if (path == NULL || path[0] == '\0' ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1)
		return 0;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		(void)close(fd);
		return 0;
	}
	n = read(fd, text, sizeof(text) - 1);
	(void)close(fd);
	if (n <= 0)
		return 0;
	text[n] = '\0';
	while (text[start] == ' ' || text[start] == '\t')
		start++;
	for (i = start; (unsigned char)text[i] > ' ' && text[i] != 0x7f; i++)
		continue;
	/* A name that runs to the end of a full buffer was cut. */
	if (i == start || i == sizeof(text) - 1)
		return 0;
	text[i] = '\0';
	(void)strlcpy(buf, text + start, len);
	return 1;
}

void
alias_domain(const struct config *cfg, char *buf, size_t len)
{
	if (len == 0)
		return;
	if (cfg->rewrite_domain[0] != '\0')
		(void)strlcpy(buf, cfg->rewrite_domain, len);
	else if (cfg->hostname[0] != '\0')
		(void)strlcpy(buf, cfg->hostname, len);
	else if (!read_mailname(cfg->mailname_path, buf, len))
		system_hostname(buf, len);
}

void
alias_hostname(const struct config *cfg, char *buf, size_t len)
{
	if (len == 0)
		return;
	if (cfg->hostname[0] != '\0')
		(void)strlcpy(buf, cfg->hostname, len);
	else
		system_hostname(buf, len);
}

/* A name fit for EHLO: qualified (a dot inside) and not localhost. */
static int
helo_fit(const char *name)
{
	const char *dot = strchr(name, '.');

	return dot != NULL && dot != name && name[strlen(name) - 1] != '.' &&
	    strncasecmp(name, "localhost", 9) != 0 &&
	    strcasecmp(dot, ".localdomain") != 0;
}

void
alias_helo_name(const struct config *cfg, char *buf, size_t len)
{
	char name[HOST_MAX];

	if (len == 0)
		return;
	if (helo_fit(cfg->hostname)) {
		(void)strlcpy(buf, cfg->hostname, len);
		return;
	}
	if (read_mailname(cfg->mailname_path, name, sizeof(name)) &&
	    helo_fit(name)) {
		(void)strlcpy(buf, name, len);
		return;
	}
	system_hostname(name, sizeof(name));
	if (!helo_fit(name))
		alias_domain(cfg, name, sizeof(name));
	/* No qualified name known: an address literal (RFC 5321 4.1.4). */
	(void)strlcpy(buf, helo_fit(name) ? name : "[127.0.0.1]", len);
}

static int
copy_addr(char *out, size_t outlen, const char *addr, struct error *err)
{
	char show[64];

	if (strlcpy(out, addr, outlen) >= outlen) {
		out[0] = '\0';
		return error_set(err, ST_DATA, "address too long: %s...",
		    log_sanitize(show, sizeof(show), addr, strlen(addr)));
	}
	return ST_OK;
}

/* Copy, qualify and check one sender address ("" passes: null sender). */
static int
sender_out(const char *addr, const char *domain, char *out, size_t outlen,
    struct error *err)
{
	char show[ADDR_MAX];
	int rc;

	if ((rc = copy_addr(out, outlen, addr, err)) != ST_OK ||
	    (rc = addr_qualify(out, outlen, domain, err)) != ST_OK)
		return rc;
	if (out[0] != '\0' && !addr_is_safe(out)) {
		rc = error_set(err, ST_DATA, "bad sender address '%s'",
		    log_sanitize(show, sizeof(show), out, strlen(out)));
		out[0] = '\0';
	}
	return rc;
}

int
alias_default_sender(const struct config *cfg, const struct revalias *ra,
    const char *fsender, const char *login, const char *domain, char *out,
    size_t outlen, struct error *err)
{
	(void)cfg;
	/* revaliases is the administrator's policy: it beats -f. */
	if (ra != NULL && ra->found)
		return sender_out(ra->address, domain, out, outlen, err);
	if (fsender != NULL)
		return sender_out(fsender, domain, out, outlen, err);
	if (login == NULL || login[0] == '\0')
		return error_set(err, ST_DATA, "no login name for the sender");
	return sender_out(login, domain, out, outlen, err);
}

int
alias_final_sender(const struct config *cfg, const struct message *msg,
    const char *default_sender, const char *domain, char *out,
    size_t outlen, struct error *err)
{
	if (cfg->from_line_override && msg != NULL && msg->had_from &&
	    msg->from_addr[0] != '\0')
		return sender_out(msg->from_addr, domain, out, outlen, err);
	return copy_addr(out, outlen, default_sender, err);
}

/* ssmtp's rule for Root=: root itself, or a system account (uid < 1000). */
static int
is_system_account(const char *name)
{
	struct passwd pw, *res = NULL;
	char buf[16384];

	if (strcmp(name, "root") == 0)
		return 1;
	if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return 0;
	return res->pw_uid <= SYSTEM_UID_MAX;
}

/* Is domain one of this host's own names? */
static int
is_local_domain(const char *domain, const char *hostname)
{
	const char *dot;
	size_t label;

	if (strcasecmp(domain, "localhost") == 0 ||
	    strcasecmp(domain, "localhost.localdomain") == 0)
		return 1;
	if (hostname[0] == '\0')
		return 0;
	if (strcasecmp(domain, hostname) == 0)
		return 1;
	/* "vm" when the host name is "vm.example.com". */
	if ((dot = strchr(hostname, '.')) == NULL)
		return 0;
	label = (size_t)(dot - hostname);
	return strlen(domain) == label &&
	    strncasecmp(domain, hostname, label) == 0;
}

int
alias_recipient(const struct config *cfg, const char *rcpt,
    const char *domain, const char *hostname, char *out, size_t outlen,
    struct error *err)
{
	char host[HOST_MAX], local[ADDR_MAX], show[ADDR_MAX];
	const char *at = strrchr(rcpt, '@');
	size_t llen;
	int rc;

	if (hostname == NULL || hostname[0] == '\0') {
		alias_hostname(cfg, host, sizeof(host));
		hostname = host;
	}
	if (at != NULL && !is_local_domain(at + 1, hostname)) {
		rc = copy_addr(out, outlen, rcpt, err);
		goto check;
	}
	llen = at != NULL ? (size_t)(at - rcpt) : strlen(rcpt);
	if (llen == 0)
		return error_set(err, ST_DATA, "empty recipient name");
	if (llen >= sizeof(local))
		return error_set(err, ST_DATA, "recipient name too long");
	memcpy(local, rcpt, llen);
	local[llen] = '\0';
	if (cfg->root[0] != '\0' && is_system_account(local))
		rc = copy_addr(out, outlen, cfg->root, err);
	else
		rc = copy_addr(out, outlen, local, err);
	if (rc == ST_OK)
		rc = addr_qualify(out, outlen, domain, err);
check:
	if (rc == ST_OK && !addr_is_safe(out)) {
		rc = error_set(err, ST_DATA, "bad recipient address '%s'",
		    log_sanitize(show, sizeof(show), out, strlen(out)));
		out[0] = '\0';
	}
	return rc;
}

/* One recipient's expansion (alias_expand). */
struct expand {
	const struct config *cfg;
	const struct aliases *al;	/* NULL: no lookups (-n) */
	const char	*domain;
	const char	*hostname;
	struct addrlist	*out;
	unsigned char	*state;		/* per entry; made on the first hit */
};

#define ENTRY_ACTIVE	1	/* being expanded: a loop if met again */
#define ENTRY_DONE	2	/* its addresses are in out already */

/* A name that is not looked up: Root=, the domain, then the list. */
static int
expand_final(struct expand *x, const char *rcpt, struct error *err)
{
	char mapped[ADDR_MAX];
	int rc;

	if ((rc = alias_recipient(x->cfg, rcpt, x->domain, x->hostname,
	    mapped, sizeof(mapped), err)) != ST_OK)
		return rc;
	return addrlist_add(x->out, mapped, err);
}

static int
expand_one(struct expand *x, const char *rcpt, int stop, int depth,
    struct error *err)
{
	const struct alias_entry *e;
	const char *at = strrchr(rcpt, '@'), *v;
	size_t i, j;
	int rc, escaped;

	if (stop || depth >= ALIAS_DEPTH_MAX ||
	    (at != NULL && !is_local_domain(at + 1, x->hostname)) ||
	    (e = alias_lookup(x->al, rcpt, at != NULL ? (size_t)(at - rcpt) :
	    strlen(rcpt))) == NULL)
		return expand_final(x, rcpt, err);
	i = (size_t)(e - x->al->v);
	if (x->state == NULL && (x->state = calloc(x->al->n, 1)) == NULL)
		return error_set(err, ST_OSERR, "%s", strerror(errno));
	/* Met again by another path: its addresses are in out already. */
	if (x->state[i] == ENTRY_DONE)
		return ST_OK;
	/* "a: b" with "b: a", or "root: root, admins": the name itself. */
	if (x->state[i] == ENTRY_ACTIVE)
		return expand_final(x, rcpt, err);
	x->state[i] = ENTRY_ACTIVE;
	for (j = 0; j < e->nvalues; j++) {
		v = e->values[j];
		escaped = v[0] == '\\';
		if ((rc = expand_one(x, v + escaped, escaped, depth + 1,
		    err)) != ST_OK)
			return rc;
	}
	x->state[i] = ENTRY_DONE;
	return ST_OK;
}

int
alias_expand(const struct config *cfg, const struct aliases *al,
    const char *rcpt, const char *domain, const char *hostname,
    int no_alias, struct addrlist *out, struct error *err)
{
	struct expand x;
	char host[HOST_MAX];
	int rc;

	if (hostname == NULL || hostname[0] == '\0') {
		alias_hostname(cfg, host, sizeof(host));
		hostname = host;
	}
	memset(&x, 0, sizeof(x));
	x.cfg = cfg;
	x.al = no_alias ? NULL : al;
	x.domain = domain;
	x.hostname = hostname;
	x.out = out;
	rc = expand_one(&x, rcpt, 0, 0, err);
	free(x.state);
	return rc;
}

/* ------------------------------------------------------------------ -bv */

/* Control bytes of a caller's argument would reach the terminal. */
static const char *
printable(char *dst, size_t len, const char *src)
{
	size_t i;

	(void)strlcpy(dst, src, len);
	for (i = 0; dst[i] != '\0'; i++)
		if ((unsigned char)dst[i] < ' ' || dst[i] == 0x7f)
			dst[i] = '?';
	return dst;
}

static void
verify_invalid(alias_line_fn *emit, void *emit_arg, const char *what)
{
	char line[VERIFY_LINE_MAX], show[ADDR_MAX];

	(void)snprintf(line, sizeof(line), "%s... Invalid address",
	    printable(show, sizeof(show), what));
	emit(emit_arg, line);
}

/* The lines of one parsed address; ST_DATA once "Invalid address". */
static int
verify_one(const struct config *cfg, const struct aliases *al,
    const char *addr, const char *domain, const char *hostname,
    int no_alias, alias_line_fn *emit, void *emit_arg, struct error *err)
{
	struct addrlist finals;
	char line[VERIFY_LINE_MAX], show[ADDR_MAX];
	size_t i;
	int rc;

	addrlist_init(&finals);
	rc = alias_expand(cfg, al, addr, domain, hostname, no_alias, &finals,
	    err);
	if (rc == ST_OK)
		for (i = 0; i < finals.n; i++) {
			(void)snprintf(line, sizeof(line), "%s... deliverable: "
			    "mailer relay, host %s, user %s", printable(show,
			    sizeof(show), addr), cfg->hub_host, finals.v[i]);
			emit(emit_arg, line);
		}
	else if (rc != ST_OSERR) {
		verify_invalid(emit, emit_arg, addr);
		rc = ST_DATA;
	}
	addrlist_free(&finals);
	return rc;
}

int
alias_verify_line(const struct config *cfg, const struct aliases *al,
    const char *arg, const char *domain, const char *hostname,
    int no_alias, alias_line_fn *emit, void *emit_arg, struct error *err)
{
	struct addrlist parsed;
	struct error one;
	size_t i;
	int rc, worst = ST_OK;

	addrlist_init(&parsed);
	rc = addr_list_parse(arg, strlen(arg), &parsed, err);
	if (rc == ST_OK && parsed.n == 0)
		rc = error_set(err, ST_DATA, "no address");
	if (rc == ST_DATA)
		verify_invalid(emit, emit_arg, arg);
	/* Every address gets its lines; err tells the first failure. */
	for (i = 0; rc == ST_OK && i < parsed.n; i++) {
		error_clear(&one);
		rc = verify_one(cfg, al, parsed.v[i], domain, hostname,
		    no_alias, emit, emit_arg, &one);
		if (rc != ST_OK && (worst == ST_OK || rc != ST_DATA) &&
		    err != NULL)
			*err = one;
		if (rc == ST_DATA) {
			if (worst == ST_OK)
				worst = rc;
			rc = ST_OK;
		}
	}
	addrlist_free(&parsed);
	return rc != ST_OK ? rc : worst;
}

void
alias_route(const struct config *cfg, const struct revalias *ra,
    struct route *route)
{
	int own = ra != NULL && ra->found;

	(void)strlcpy(route->host, own && ra->hub_host[0] != '\0' ?
	    ra->hub_host : cfg->hub_host, sizeof(route->host));
	(void)strlcpy(route->port, own && ra->hub_port[0] != '\0' ?
	    ra->hub_port : cfg->hub_port, sizeof(route->port));
}
