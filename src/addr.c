/*
 * addr.c: RFC 5322 address and address-list syntax, as real callers write
 * it (callers.md 3.3, 3.4): plain lists, display names, quoted names with
 * commas, nested comments, groups, obsolete routes, bare local names and
 * folded header values. One tokenizer and one list parser serve three
 * uses: collecting addr-specs (argv, -t), qualifying the addr-specs of a
 * header value in place, and the single -f address. Also the addrlist
 * container and small address predicates.
 *
 * Leniencies and decisions where RFC 5322 and the callers are silent:
 * - ';' outside a group separates like ',' (Outlook style "a@x; b@y"), and
 *   a group that is still open at the end of the text is closed there.
 * - Empty list elements ("a@x,,b@y", a trailing comma) add nothing, and
 *   "<>" in a list adds nothing (it is only meaningful for -f).
 * - Anything goes in a display name before '<' or ':', even '@'
 *   ("a@x <a@x>" is common from broken MUAs).
 * - An element of several words without '<' ("John Smith") is an error,
 *   not the last word taken as the address: guessing would send mail to
 *   the wrong mailbox ("Smith"), while the error makes -t fail loudly and
 *   leaves a header unqualified. Words joined by '.' ("john . doe") are
 *   one obsolete local part, as RFC 5322 obs-local-part allows.
 * - Quoted local parts are kept as written, quotes included; CRLF of a
 *   fold inside one is removed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "postino.h"

enum tok_type {
	TOK_END,
	TOK_WORD,	/* atext and '.', 8-bit included */
	TOK_QUOTED,	/* "..." */
	TOK_LITERAL,	/* [...] */
	TOK_SPECIAL	/* one of < > , : ; @ */
};

struct token {
	enum tok_type	 type;
	char		 c;		/* TOK_SPECIAL: which one */
	size_t		 start, end;	/* its bytes in the text */
};

struct lexer {
	const char	*s;
	size_t		 len, pos;
};

/* One addr-spec found by the list parser. */
struct found {
	const char	*spec;		/* normalised; "" for "<>" */
	size_t		 end;		/* offset just after its last token */
	int		 has_at;
	int		 in_group;
};

typedef int	 found_fn(void *, const struct found *, struct error *);

static int
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static int
is_word_byte(char c)
{
	return strchr(" \t\r\n()<>[]:;@\\,\"", c) == NULL;
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* ASCII only: the locale must not decide whether domains are equal. */
static int
ascii_caseeq(const char *a, const char *b)
{
	for (; *a != '\0' && *b != '\0'; a++, b++)
		if (lower((unsigned char)*a) != lower((unsigned char)*b))
			return 0;
	return *a == *b;
}

/*
 * Checked once for the whole text so that the lexer may treat CR and LF as
 * plain white space: they can only be part of a fold (CRLF then WSP).
 */
static int
check_bytes(const char *s, size_t len, struct error *err)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] == '\0')
			return error_set(err, ST_DATA,
			    "address contains a NUL byte");
		if (s[i] == '\r' && i + 2 < len && s[i + 1] == '\n' &&
		    is_wsp(s[i + 2])) {
			i++;
			continue;
		}
		if (s[i] == '\r' || s[i] == '\n')
			return error_set(err, ST_DATA,
			    "address contains a line break");
	}
	return ST_OK;
}

/* White space, folds and (nested) comments. */
static int
skip_cfws(struct lexer *lx, struct error *err)
{
	int depth;
	char c;

	while (lx->pos < lx->len) {
		c = lx->s[lx->pos];
		if (is_wsp(c) || c == '\r' || c == '\n') {
			lx->pos++;
			continue;
		}
		if (c != '(')
			return ST_OK;
		depth = 0;
		do {
			if (lx->pos >= lx->len)
				return error_set(err, ST_DATA,
				    "unbalanced parenthesis in address");
			c = lx->s[lx->pos++];
			if (c == '\\')
				lx->pos++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
		} while (depth > 0);
	}
	return ST_OK;
}

/* From an opening quote or bracket to its closing one. */
static int
lex_delimited(struct lexer *lx, char close, const char *what,
    struct error *err)
{
	char c;

	for (lx->pos++; lx->pos < lx->len; lx->pos++) {
		c = lx->s[lx->pos];
		if (c == '\\')
			lx->pos++;
		else if (c == close) {
			lx->pos++;
			return ST_OK;
		} else if (close == ']' && c == '[')
			break;
	}
	return error_set(err, ST_DATA, "unbalanced %s in address", what);
}

static int
lex(struct lexer *lx, struct token *t, struct error *err)
{
	int rc;
	char c;

	if ((rc = skip_cfws(lx, err)) != ST_OK)
		return rc;
	t->start = lx->pos;
	t->c = '\0';
	if (lx->pos >= lx->len) {
		t->type = TOK_END;
		t->end = lx->pos;
		return ST_OK;
	}
	c = lx->s[lx->pos];
	if (c == '"') {
		t->type = TOK_QUOTED;
		rc = lex_delimited(lx, '"', "quote", err);
	} else if (c == '[') {
		t->type = TOK_LITERAL;
		rc = lex_delimited(lx, ']', "bracket", err);
	} else if (strchr("<>,:;@", c) != NULL) {
		t->type = TOK_SPECIAL;
		t->c = c;
		lx->pos++;
	} else if (c == ')' || c == ']' || c == '\\')
		return error_set(err, ST_DATA, "unexpected '%c' in address",
		    c);
	else {
		t->type = TOK_WORD;
		while (lx->pos < lx->len && is_word_byte(lx->s[lx->pos]))
			lx->pos++;
	}
	t->end = lx->pos;
	return rc;
}

static int
is_special(const struct token *t, char c)
{
	return t->type == TOK_SPECIAL && t->c == c;
}

/* Does the token end one element of a list (or the text)? */
static int
ends_element(const struct token *t)
{
	return t->type == TOK_END || is_special(t, ',') || is_special(t, ';');
}

/* Append token bytes to the spec being built, minus the CRLF of folds. */
static int
spec_append(char *spec, size_t *len, const char *p, size_t n,
    struct error *err)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\r' || p[i] == '\n')
			continue;
		if (*len + 1 >= ADDR_MAX)
			return error_set(err, ST_DATA,
			    "address too long (limit %d bytes)", ADDR_MAX - 1);
		spec[(*len)++] = p[i];
	}
	spec[*len] = '\0';
	return ST_OK;
}

/* Input is not echoed: it may hold anything a terminal would obey. */
static int
spec_unexpected(const struct token *t, int in_domain, struct error *err)
{
	if (t->type == TOK_SPECIAL)
		return error_set(err, ST_DATA, "unexpected '%c' in address",
		    t->c);
	return error_set(err, ST_DATA, "%s in the %s of an address",
	    t->type == TOK_QUOTED ? "quoted string" : "domain literal",
	    in_domain ? "domain" : "local part");
}

/*
 * One addr-spec: words (local part), '@', words or a literal (domain).
 * Stops before ',' ';' or the end (bare) or before '>' (in angles).
 * Adjacent words must be joined by a '.' on either side of the gap.
 */
static int
parse_spec(struct lexer *lx, int angle, char *spec, struct found *f,
    struct error *err)
{
	struct token t;
	size_t len = 0, save, words = 0;
	char last = '\0';
	int rc;

	spec[0] = '\0';
	f->has_at = 0;
	f->end = lx->pos;
	for (;;) {
		save = lx->pos;
		if ((rc = lex(lx, &t, err)) != ST_OK)
			return rc;
		if (angle ? (is_special(&t, '>') || t.type == TOK_END) :
		    ends_element(&t)) {
			lx->pos = save;
			break;
		}
		if (is_special(&t, '@')) {
			if (f->has_at)
				return error_set(err, ST_DATA,
				    "more than one '@' in address");
			if (len == 0)
				return error_set(err, ST_DATA,
				    "address has no local part");
			f->has_at = 1;
			words = 0;
			last = '@';
		} else if (t.type == TOK_WORD ||
		    t.type == (f->has_at ? TOK_LITERAL : TOK_QUOTED)) {
			if (words > 0 && last != '.' && lx->s[t.start] != '.')
				return error_set(err, ST_DATA, "address has "
				    "several words; write \"Name <address>\"");
			words++;
			last = lx->s[t.end - 1];
		} else
			return spec_unexpected(&t, f->has_at, err);
		if ((rc = spec_append(spec, &len, lx->s + t.start,
		    t.end - t.start, err)) != ST_OK)
			return rc;
		f->end = t.end;
	}
	if (f->has_at && words == 0)
		return error_set(err, ST_DATA, "address has no domain");
	return ST_OK;
}

/* After '<': an optional obsolete route "@a,@b:", the addr-spec, '>'. */
static int
parse_angle(struct lexer *lx, char *spec, struct found *f,
    struct error *err)
{
	struct token t;
	size_t save = lx->pos;
	int rc;

	if ((rc = lex(lx, &t, err)) != ST_OK)
		return rc;
	if (is_special(&t, '@')) {
		while (!is_special(&t, ':')) {
			if ((rc = lex(lx, &t, err)) != ST_OK)
				return rc;
			if (t.type == TOK_END || is_special(&t, '>') ||
			    is_special(&t, '<') || is_special(&t, ';') ||
			    t.type == TOK_QUOTED)
				return error_set(err, ST_DATA,
				    "bad route in address");
		}
	} else
		lx->pos = save;
	if ((rc = parse_spec(lx, 1, spec, f, err)) != ST_OK)
		return rc;
	if ((rc = lex(lx, &t, err)) != ST_OK)
		return rc;
	if (!is_special(&t, '>'))
		return error_set(err, ST_DATA,
		    "unbalanced angle bracket in address");
	return ST_OK;
}

/*
 * One element of a list: a mailbox, a bare addr-spec, nothing, or the
 * start of a group (*opened set; its members follow as elements).
 */
static int
parse_element(struct lexer *lx, int in_group, int *opened, found_fn *fn,
    void *arg, struct error *err)
{
	char spec[ADDR_MAX];
	struct found f;
	struct token t;
	size_t start = lx->pos, save, words = 0;
	int rc;

	memset(&f, 0, sizeof(f));
	f.spec = spec;
	f.in_group = in_group;
	for (;;) {
		save = lx->pos;
		if ((rc = lex(lx, &t, err)) != ST_OK)
			return rc;
		if (ends_element(&t)) {
			lx->pos = save;
			if (words == 0)
				return ST_OK;
			lx->pos = start;
			if ((rc = parse_spec(lx, 0, spec, &f, err)) != ST_OK)
				return rc;
			return fn(arg, &f, err);
		}
		if (is_special(&t, '<'))
			break;
		if (is_special(&t, ':')) {
			if (in_group)
				return error_set(err, ST_DATA,
				    "group inside a group in address");
			*opened = 1;
			return ST_OK;
		}
		if (is_special(&t, '>'))
			return error_set(err, ST_DATA,
			    "unbalanced angle bracket in address");
		words++;
	}
	if ((rc = parse_angle(lx, spec, &f, err)) != ST_OK)
		return rc;
	save = lx->pos;
	if ((rc = lex(lx, &t, err)) != ST_OK)
		return rc;
	if (!ends_element(&t))
		return error_set(err, ST_DATA,
		    "unexpected text after '>' in address");
	lx->pos = save;
	return fn(arg, &f, err);
}

static int
parse_list(const char *text, size_t len, found_fn *fn, void *arg,
    struct error *err)
{
	struct lexer lx = { text, len, 0 };
	struct token t;
	int rc, in_group = 0, opened;

	if ((rc = check_bytes(text, len, err)) != ST_OK)
		return rc;
	for (;;) {
		opened = 0;
		if ((rc = parse_element(&lx, in_group, &opened, fn, arg,
		    err)) != ST_OK)
			return rc;
		if (opened) {
			in_group = 1;
			continue;
		}
		if ((rc = lex(&lx, &t, err)) != ST_OK)
			return rc;
		if (t.type == TOK_END)
			return ST_OK;
		if (is_special(&t, ';'))
			in_group = 0;
		else if (!is_special(&t, ','))
			return error_set(err, ST_DATA,
			    "unexpected '%c' in address list", t.c);
	}
}

/* -------------------------------------------------------------- addrlist */

void
addrlist_init(struct addrlist *l)
{
	l->v = NULL;
	l->n = 0;
	l->cap = 0;
	l->slot = NULL;
	l->nslot = 0;
}

void
addrlist_free(struct addrlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	free(l->slot);
	addrlist_init(l);
}

/* Local parts compare exactly, domains without regard to ASCII case. */
static int
addr_equal(const char *a, const char *b)
{
	const char *da = strrchr(a, '@'), *db = strrchr(b, '@');

	if (da == NULL || db == NULL)
		return da == db && strcmp(a, b) == 0;
	return da - a == db - b && memcmp(a, b, (size_t)(da - a)) == 0 &&
	    ascii_caseeq(da + 1, db + 1);
}

/* FNV-1a, the domain folded to lower case: equal addresses, equal hash. */
static size_t
addr_hash(const char *a)
{
	const char *d = strrchr(a, '@');
	uint64_t h = 14695981039346656037ULL;

	for (; *a != '\0'; a++) {
		unsigned char c = (unsigned char)*a;

		if (d != NULL && a > d && c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		h = (h ^ c) * 1099511628211ULL;
	}
	return (size_t)h;
}

/* The slot that holds addr, or the empty one where it would go. */
static size_t *
find_slot(const struct addrlist *l, const char *addr)
{
	size_t i = addr_hash(addr) & (l->nslot - 1);

	while (l->slot[i] != 0 && !addr_equal(l->v[l->slot[i] - 1], addr))
		i = (i + 1) & (l->nslot - 1);
	return &l->slot[i];
}

/*
 * Keep the index at most half full. A hash index rather than a scan:
 * -t over 100,000 header lines must not cost time quadratic in them.
 */
static int
grow_index(struct addrlist *l)
{
	size_t *old = l->slot, nold = l->nslot, i;
	size_t n = l->nslot == 0 ? 16 : l->nslot * 2;

	if ((l->slot = calloc(n, sizeof(*l->slot))) == NULL) {
		l->slot = old;
		return -1;
	}
	l->nslot = n;
	for (i = 0; i < nold; i++)
		if (old[i] != 0)
			*find_slot(l, l->v[old[i] - 1]) = old[i];
	free(old);
	return 0;
}

int
addrlist_contains(const struct addrlist *l, const char *addr)
{
	return l->nslot != 0 && *find_slot(l, addr) != 0;
}

int
addrlist_add(struct addrlist *l, const char *addr, struct error *err)
{
	char **v, *copy;
	size_t cap;

	if (addrlist_contains(l, addr))
		return ST_OK;
	if (l->n >= RCPT_MAX)
		return error_set(err, ST_DATA,
		    "too many recipients (limit %d)", RCPT_MAX);
	if (l->n == l->cap) {
		cap = l->cap == 0 ? 8 : l->cap * 2;
		if ((v = reallocarray(l->v, cap, sizeof(*v))) == NULL)
			return error_set(err, ST_OSERR, "%s", strerror(errno));
		l->v = v;
		l->cap = cap;
	}
	if ((l->n + 1) * 2 > l->nslot && grow_index(l) == -1)
		return error_set(err, ST_OSERR, "%s", strerror(errno));
	if ((copy = strdup(addr)) == NULL)
		return error_set(err, ST_OSERR, "%s", strerror(errno));
	l->v[l->n++] = copy;
	*find_slot(l, copy) = l->n;
	return ST_OK;
}

/* ------------------------------------------------------------- parsing */

static int
collect(void *arg, const struct found *f, struct error *err)
{
	if (f->spec[0] == '\0')
		return ST_OK;
	return addrlist_add(arg, f->spec, err);
}

int
addr_list_parse(const char *text, size_t len, struct addrlist *out,
    struct error *err)
{
	return parse_list(text, len, collect, out, err);
}

struct one {
	size_t		 count;
	int		 group;
	char		 addr[ADDR_MAX];
};

static int
take_one(void *arg, const struct found *f, struct error *err)
{
	struct one *o = arg;

	(void)err;
	if (o->count++ == 0)
		(void)strlcpy(o->addr, f->spec, sizeof(o->addr));
	o->group |= f->in_group;
	return ST_OK;
}

int
addr_parse_one(const char *text, char *out, size_t outlen,
    struct error *err)
{
	struct one o;
	int rc;

	memset(&o, 0, sizeof(o));
	/* -f text is never a folded header: any CR or LF is an attack. */
	if (strpbrk(text, "\r\n") != NULL)
		return error_set(err, ST_DATA, "address contains a line break");
	if ((rc = parse_list(text, strlen(text), take_one, &o, err)) != ST_OK)
		return rc;
	if (o.count > 1 || o.group)
		return error_set(err, ST_DATA, "expected a single address");
	if (strlcpy(out, o.addr, outlen) >= outlen)
		return error_set(err, ST_DATA, "address too long");
	return ST_OK;
}

/*
 * The empty string is not safe: callers handle the null sender "<>"
 * themselves, and an empty recipient is always a mistake. Space is refused
 * even inside a quoted local part: too many hubs split commands on it.
 */
int
addr_is_safe(const char *addr)
{
	size_t i, len = strnlen(addr, ADDR_MAX);

	if (len == 0 || len >= ADDR_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)addr[i];

		if (c <= ' ' || c == 0x7f || c == '<' || c == '>')
			return 0;
	}
	return 1;
}

int
addr_needs_utf8(const char *addr)
{
	for (; *addr != '\0'; addr++)
		if ((unsigned char)*addr >= 0x80)
			return 1;
	return 0;
}

const char *
addr_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at == NULL ? NULL : at + 1;
}

/* ---------------------------------------------------------- qualifying */

/*
 * The one rule for adding @domain, here for one address and below for the
 * addr-specs of a header list: the null sender "" stays null, an address
 * with a domain is never re-domained, and an empty domain adds nothing.
 * The _local forms (SenderPolicy align and refuse, issue 12) also turn
 * "@localhost" and "@localhost.localdomain" into "@domain".
 */
static int
is_localhost(const char *dom)
{
	return ascii_caseeq(dom, "localhost") ||
	    ascii_caseeq(dom, "localhost.localdomain");
}

static int
qualify_one(char *addr, size_t len, const char *domain, int local,
    struct error *err)
{
	size_t alen = strlen(addr), keep;
	const char *at = strrchr(addr, '@');

	if (alen == 0 || domain == NULL || domain[0] == '\0' ||
	    (at != NULL && (!local || !is_localhost(at + 1))))
		return ST_OK;
	keep = at != NULL ? (size_t)(at - addr) : alen;
	if (keep + 1 + strlen(domain) >= len)
		return error_set(err, ST_DATA, "address too long after "
		    "adding @%s", domain);
	addr[keep] = '\0';
	(void)strlcat(addr, "@", len);
	(void)strlcat(addr, domain, len);
	return ST_OK;
}

int
addr_qualify(char *addr, size_t len, const char *domain, struct error *err)
{
	return qualify_one(addr, len, domain, 0, err);
}

int
addr_qualify_local(char *addr, size_t len, const char *domain,
    struct error *err)
{
	return qualify_one(addr, len, domain, 1, err);
}

struct qualify {
	const char	*text;
	const char	*domain;
	size_t		 dlen;
	int		 local;		/* "@localhost" too (_local) */
	size_t		 count;		/* first pass: insertions needed */
	char		*out;		/* second pass: the result */
	size_t		 olen, copied;
};

/* 1: a bare name ("@domain" added); 2: "@localhost" (domain replaced),
 * when its domain is the text's last token as written; 0: neither. */
static int
needs_domain(const struct qualify *q, const struct found *f)
{
	const char *at;
	size_t dl, i;

	if (f->spec[0] == '\0')
		return 0;
	if (!f->has_at)
		return 1;
	if (!q->local || (at = strrchr(f->spec, '@')) == NULL ||
	    !is_localhost(at + 1))
		return 0;
	dl = strlen(at + 1);
	if (f->end < dl)
		return 0;
	for (i = 0; i < dl; i++)
		if (lower((unsigned char)q->text[f->end - dl + i]) !=
		    lower((unsigned char)at[1 + i]))
			return 0;
	return 2;
}

static int
count_bare(void *arg, const struct found *f, struct error *err)
{
	struct qualify *q = arg;

	(void)err;
	if (needs_domain(q, f))
		q->count++;
	return ST_OK;
}

static int
insert_domain(void *arg, const struct found *f, struct error *err)
{
	struct qualify *q = arg;
	int kind = needs_domain(q, f);
	size_t upto = f->end, n;

	(void)err;
	if (kind == 0)
		return ST_OK;
	if (kind == 2)
		upto -= strlen(strrchr(f->spec, '@') + 1);
	n = upto - q->copied;
	memcpy(q->out + q->olen, q->text + q->copied, n);
	q->olen += n;
	if (kind == 1)
		q->out[q->olen++] = '@';
	memcpy(q->out + q->olen, q->domain, q->dlen);
	q->olen += q->dlen;
	q->copied = f->end;
	return ST_OK;
}

static char *
qualify_list(const char *value, size_t len, const char *domain, int local,
    struct error *err)
{
	struct qualify q;
	size_t size;

	memset(&q, 0, sizeof(q));
	q.local = local;
	q.text = value;
	q.domain = domain == NULL ? "" : domain;
	q.dlen = strlen(q.domain);
	if (parse_list(value, len, count_bare, &q, err) != ST_OK)
		return NULL;
	if (q.dlen == 0)
		q.count = 0;
	/* len is bounded by the caller's buffer, count by len: no overflow. */
	size = len + q.count * (q.dlen + 1) + 1;
	if ((q.out = malloc(size)) == NULL) {
		(void)error_set(err, ST_OSERR, "%s", strerror(errno));
		return NULL;
	}
	if (q.count > 0 &&
	    parse_list(value, len, insert_domain, &q, err) != ST_OK) {
		free(q.out);
		return NULL;
	}
	memcpy(q.out + q.olen, value + q.copied, len - q.copied);
	q.olen += len - q.copied;
	q.out[q.olen] = '\0';
	return q.out;
}

char *
addr_list_qualify(const char *value, size_t len, const char *domain,
    struct error *err)
{
	return qualify_list(value, len, domain, 0, err);
}

char *
addr_list_qualify_local(const char *value, size_t len, const char *domain,
    struct error *err)
{
	return qualify_list(value, len, domain, 1, err);
}
