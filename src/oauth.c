/*
 * oauth.c: OAuth 2.0 bearer tokens for AuthMethod=XOAUTH2/OAUTHBEARER.
 * The token is the first line of AuthTokenFile (an outside refresher
 * keeps it current; re-read for every connection), or postino gets it
 * itself: an HTTP/1.1 POST to OAuthTokenURL over conn.c's TLS (verified
 * as the hub is, against the system store or TLS_CA_File), with the
 * refresh-token grant when OAuthRefreshTokenFile is set and the
 * client-credentials grant otherwise (RFC 6749 6 and 4.4). The access
 * token and its expiry are kept in QueueDir/oauth-token (queue.c's
 * group-only state files); a rotated refresh token is written back to
 * its file atomically. Here too are the two small parsers this needs,
 * of the HTTP response and of its JSON object, exported for the unit and
 * fuzz tests. No token ever reaches an error text: they may be logged.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "postino.h"

#define CACHE_NAME	"oauth-token"
#define CACHE_MAX	(2 * OAUTH_TOKEN_MAX + 256)
#define HEADER_MAX	16384	/* status line and header fields */
#define BODY_MAX	65536	/* a token response */
#define FORM_MAX	(3 * (2 * OAUTH_TOKEN_MAX + 2048))
#define JSON_DEPTH	16
#define EXPIRES_DEFAULT	3600	/* a reply without expires_in */

int
oauth_wanted(const struct config *cfg)
{
	return cfg->auth_method == AUTH_XOAUTH2 ||
	    cfg->auth_method == AUTH_OAUTHBEARER;
}

int
oauth_refresher(const struct config *cfg)
{
	return oauth_wanted(cfg) && cfg->oauth_token_url[0] != '\0';
}

/* ------------------------------------------------------------- JSON */

struct json {
	const char	*p, *end;
	int		 depth;
};

static void
json_ws(struct json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
	    *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* One escape after '\': its byte ('?' for \u beyond ASCII), or -1. */
static int
json_escape(struct json *j)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *e;
	int i, v = 0, h;

	if (j->p >= j->end)
		return -1;
	if (*j->p != 'u') {
		if ((e = strchr(from, *j->p)) == NULL || *j->p == '\0')
			return -1;
		j->p++;
		return to[e - from];
	}
	if (j->end - j->p < 5)
		return -1;
	for (i = 1; i <= 4; i++) {
		if ((h = hexval((unsigned char)j->p[i])) < 0)
			return -1;
		v = v * 16 + h;
	}
	j->p += 5;
	return v >= 0x20 && v < 0x7f ? v : '?';
}

/*
 * A string into out (NULL: skipped). 0, 1 when it was cut to fit, -1
 * when it is not a JSON string.
 */
static int
json_string(struct json *j, char *out, size_t outlen)
{
	size_t n = 0;
	int cut = 0, ch;

	if (j->p >= j->end || *j->p != '"')
		return -1;
	j->p++;
	for (;;) {
		if (j->p >= j->end)
			return -1;
		ch = (unsigned char)*j->p++;
		if (ch == '"')
			break;
		if (ch < 0x20)
			return -1;
		if (ch == '\\' && (ch = json_escape(j)) < 0)
			return -1;
		if (out != NULL && n + 1 < outlen)
			out[n++] = (char)ch;
		else
			cut = 1;
	}
	if (out != NULL && outlen > 0)
		out[n] = '\0';
	return out != NULL && cut;
}

/* A number (skipped, or its integer part into *v when v is set). */
static int
json_number(struct json *j, long long *v)
{
	const char *start = j->p;
	long long n = 0;
	int digits = 0;

	if (j->p < j->end && *j->p == '-')
		j->p++;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
		if (n < 1000000000000LL)
			n = n * 10 + (*j->p - '0');
		j->p++;
		digits++;
	}
	if (digits == 0)
		return -1;
	while (j->p < j->end && strchr("0123456789.eE+-", *j->p) != NULL)
		j->p++;
	if (v != NULL)
		*v = *start == '-' ? -n : n;
	return 0;
}

static int	json_value(struct json *);

/* The members of an object or the elements of an array, skipped. */
static int
json_container(struct json *j, char close)
{
	if (++j->depth > JSON_DEPTH)
		return -1;
	j->p++;
	json_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		j->depth--;
		return 0;
	}
	for (;;) {
		json_ws(j);
		if (close == '}') {
			if (json_string(j, NULL, 0) < 0)
				return -1;
			json_ws(j);
			if (j->p >= j->end || *j->p++ != ':')
				return -1;
		}
		if (json_value(j) < 0)
			return -1;
		json_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == close) {
			j->p++;
			j->depth--;
			return 0;
		}
		return -1;
	}
}

static int
json_word(struct json *j, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0)
		return -1;
	j->p += n;
	return 0;
}

static int
json_value(struct json *j)
{
	json_ws(j);
	if (j->p >= j->end)
		return -1;
	switch (*j->p) {
	case '{':
		return json_container(j, '}');
	case '[':
		return json_container(j, ']');
	case '"':
		return json_string(j, NULL, 0) < 0 ? -1 : 0;
	case 't':
		return json_word(j, "true");
	case 'f':
		return json_word(j, "false");
	case 'n':
		return json_word(j, "null");
	default:
		return json_number(j, NULL);
	}
}

/* expires_in: a number, or (some endpoints) a string of digits. */
static int
json_expires(struct json *j, long long *v)
{
	char text[24];
	const char *errstr = NULL;

	if (j->p < j->end && *j->p != '"')
		return json_number(j, v);
	if (json_string(j, text, sizeof(text)) != 0)
		return -1;
	*v = strtonum(text, 0, 100LL * 365 * 86400, &errstr);
	return errstr != NULL ? -1 : 0;
}

/*
 * Tokens are printable ASCII without spaces (RFC 6750's b64token and
 * what providers issue): nothing that could end a line of the cache, the
 * refresh token file or the SASL message.
 */
static int
token_chars(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s > '~')
			return 0;
	return 1;
}

/* One member of the top object: a field of r, or skipped. */
static int
json_member(struct json *j, const char *name, struct oauth_reply *r)
{
	static const struct {
		const char	*name;
		size_t		 off, size;
		int		 exact;	/* tokens: cut or odd bytes refused */
	} fields[] = {
#define F(f)	#f, offsetof(struct oauth_reply, f), \
		sizeof(((struct oauth_reply *)0)->f)
		{ F(access_token), 1 }, { F(refresh_token), 1 },
		{ F(token_type), 1 }, { F(error), 0 },
		{ F(error_description), 0 },
#undef F
	};
	size_t i;
	int rc;

	if (strcmp(name, "expires_in") == 0)
		return json_expires(j, &r->expires_in);
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (strcmp(name, fields[i].name) != 0)
			continue;
		if (j->p < j->end && *j->p != '"')
			return json_value(j);	/* null, say: not given */
		rc = json_string(j, (char *)r + fields[i].off,
		    fields[i].size);
		if (rc < 0 || (fields[i].exact && (rc == 1 ||
		    !token_chars((char *)r + fields[i].off))))
			return -1;
		return 0;
	}
	return json_value(j);
}

int
oauth_json_parse(const char *buf, size_t len, struct oauth_reply *r)
{
	struct json j = { buf, buf + len, 1 };
	char name[64];
	int rc = -1;

	memset(r, 0, sizeof(*r));
	r->expires_in = -1;
	json_ws(&j);
	if (j.p >= j.end || *j.p++ != '{')
		return -1;
	json_ws(&j);
	if (j.p < j.end && *j.p == '}')
		rc = 0, j.p++;
	while (rc != 0) {
		json_ws(&j);
		if (json_string(&j, name, sizeof(name)) < 0)
			break;
		json_ws(&j);
		if (j.p >= j.end || *j.p++ != ':')
			break;
		json_ws(&j);
		if (json_member(&j, name, r) < 0)
			break;
		json_ws(&j);
		if (j.p < j.end && *j.p == ',') {
			j.p++;
			continue;
		}
		if (j.p < j.end && *j.p == '}') {
			j.p++;
			rc = 0;
		}
		break;
	}
	json_ws(&j);
	if (rc != 0 || j.p != j.end) {
		explicit_bzero(r, sizeof(*r));
		r->expires_in = -1;
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------- HTTP */

/* The end of the header block ("\r\n\r\n"), or NULL. */
static const char *
header_end(const char *buf, size_t len)
{
	size_t i;

	for (i = 0; i + 3 < len; i++)
		if (memcmp(buf + i, "\r\n\r\n", 4) == 0)
			return buf + i + 4;
	return NULL;
}

/* How the body is delimited, from the header fields. */
struct framing {
	int		 chunked;
	long long	 length;	/* -1: up to EOF */
};

static int
header_field(const char *line, size_t n, struct framing *f)
{
	const char *errstr = NULL;
	char value[32];
	size_t k, v;

	if (n > 15 && strncasecmp(line, "Content-Length:", 15) == 0)
		k = 15;
	else if (n > 18 && strncasecmp(line, "Transfer-Encoding:", 18) == 0) {
		for (v = 18; v + 7 <= n; v++)
			if (strncasecmp(line + v, "chunked", 7) == 0)
				f->chunked = 1;
		return 0;
	} else
		return 0;
	while (k < n && (line[k] == ' ' || line[k] == '\t'))
		k++;
	for (v = 0; k < n && line[k] != ' ' && line[k] != '\t' &&
	    v + 1 < sizeof(value); k++)
		value[v++] = line[k];
	value[v] = '\0';
	f->length = strtonum(value, 0, BODY_MAX, &errstr);
	return errstr != NULL ? -1 : 0;
}

/* Status line and fields of the block buf[0..len) (CRLF-ended lines). */
static int
parse_head(const char *buf, size_t len, int *status, struct framing *f)
{
	const char *line = buf, *end = buf + len, *nl;
	int first = 1;

	f->chunked = 0;
	f->length = -1;
	while (line < end && (nl = memchr(line, '\n', (size_t)(end - line)))
	    != NULL) {
		size_t n = (size_t)(nl - line);

		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n == 0)
			break;
		if (first) {
			if (n < 12 || strncmp(line, "HTTP/1.", 7) != 0 ||
			    line[8] != ' ' || !isdigit((unsigned char)line[9]) ||
			    !isdigit((unsigned char)line[10]) ||
			    !isdigit((unsigned char)line[11]))
				return -1;
			*status = (line[9] - '0') * 100 + (line[10] - '0') * 10 +
			    (line[11] - '0');
			first = 0;
		} else if (header_field(line, n, f) < 0)
			return -1;
		line = nl + 1;
	}
	return first || *status < 100 || *status > 599 ? -1 : 0;
}

/* De-chunk p[0..len) into body: 1 done, 0 more needed, -1 malformed. */
static int
dechunk(const char *p, size_t len, char *body, size_t cap, size_t *outlen)
{
	const char *end = p + len;
	size_t size, n = 0;
	int h;

	for (;;) {
		size = 0;
		if (p >= end)
			return 0;
		if (hexval((unsigned char)*p) < 0)
			return -1;
		while (p < end && (h = hexval((unsigned char)*p)) >= 0) {
			if (size > BODY_MAX)
				return -1;
			size = size * 16 + (size_t)h;
			p++;
		}
		/* A chunk extension runs to the line end. */
		while (p < end && *p != '\n')
			p++;
		if (p >= end)
			return 0;
		p++;
		if (size == 0)
			break;
		if (size > cap - n)
			return -1;
		if ((size_t)(end - p) < size + 2)
			return 0;
		memcpy(body + n, p, size);
		n += size;
		p += size;
		if (memcmp(p, "\r\n", 2) != 0)
			return -1;
		p += 2;
	}
	/* Trailer fields, then the empty line. */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (nl == NULL)
			return 0;
		if (nl == p || (nl == p + 1 && *p == '\r')) {
			*outlen = n;
			return 1;
		}
		p = nl + 1;
	}
	return 0;
}

int
oauth_http_parse(const char *buf, size_t len, int eof, int *status,
    char *body, size_t bodycap, size_t *bodylen)
{
	const char *hend;
	struct framing f;
	size_t rest;
	int rc;

	*bodylen = 0;
	for (;;) {
		if ((hend = header_end(buf, len)) == NULL)
			return len > HEADER_MAX || eof ? -1 : 0;
		if (parse_head(buf, (size_t)(hend - buf), status, &f) < 0)
			return -1;
		if (*status >= 200)
			break;
		/* 100 Continue and its kind: the real answer follows. */
		len -= (size_t)(hend - buf);
		buf = hend;
	}
	rest = len - (size_t)(hend - buf);
	if (f.chunked) {
		rc = dechunk(hend, rest, body, bodycap, bodylen);
		return rc == 0 && eof ? -1 : rc;
	}
	if (f.length >= 0) {
		if ((size_t)f.length > bodycap)
			return -1;
		if (rest < (size_t)f.length)
			return eof ? -1 : 0;
		rest = (size_t)f.length;
	} else if (!eof)
		return rest > bodycap ? -1 : 0;
	if (rest > bodycap)
		return -1;
	memcpy(body, hend, rest);
	*bodylen = rest;
	return 1;
}

int
oauth_form_append(char *out, size_t outlen, const char *name,
    const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strnlen(out, outlen);
	const unsigned char *v = (const unsigned char *)value;

	if (n >= outlen)
		return -1;
	if (n > 0)
		out[n++] = '&';
	for (; *name != '\0' && n < outlen; name++)
		out[n++] = *name;
	if (n < outlen)
		out[n++] = '=';
	for (; *v != '\0' && n + 3 < outlen; v++) {
		if (isalnum(*v) || strchr("-._~", *v) != NULL)
			out[n++] = (char)*v;
		else if (*v == ' ')
			out[n++] = '+';
		else {
			out[n++] = '%';
			out[n++] = hex[*v >> 4];
			out[n++] = hex[*v & 15];
		}
	}
	if (*v != '\0' || n >= outlen) {
		explicit_bzero(out, outlen);
		return -1;
	}
	out[n] = '\0';
	return 0;
}

/* ------------------------------------------------------ secret files */

/*
 * The first line of a secret file (with the group: it may be readable
 * only by it), white space trimmed. Refused when others may read it:
 * config_load refused that already (78), so here it changed since, and
 * the message waits (ST_TEMP) like any other token failure.
 */
static int
read_secret(const char *path, const char *key, char *out, size_t outlen,
    struct error *err)
{
	struct file_text ft;
	struct stat st;
	struct error e;
	size_t n;
	int rc;

	out[0] = '\0';
	if (priv_group_enter(err) != ST_OK)
		return err->status;
	if (stat(path, &st) == 0 && (st.st_mode & (S_IROTH | S_IWOTH))) {
		priv_group_leave();
		return error_set(err, ST_TEMP, "%s holds %s but is readable "
		    "or writable by every user: run chmod o-rw %s", path, key,
		    path);
	}
	rc = config_read_file(path, OAUTH_TOKEN_MAX + 2, 0, &ft, &e);
	priv_group_leave();
	if (rc != ST_OK)
		return error_set(err, ST_TEMP, "%s: cannot read %s", key,
		    e.text);
	for (n = 0; n < ft.len && ft.buf[n] != '\n' && ft.buf[n] != '\r'; n++)
		continue;
	while (n > 0 && (ft.buf[n - 1] == ' ' || ft.buf[n - 1] == '\t'))
		n--;
	if (n == 0 || n >= outlen || memchr(ft.buf, '\0', n) != NULL) {
		config_file_free(&ft);
		return error_set(err, ST_TEMP, "%s: %s: the first line must "
		    "be the secret (1 to %zu bytes, no NUL)", key, path,
		    outlen - 1);
	}
	memcpy(out, ft.buf, n);
	out[n] = '\0';
	config_file_free(&ft);
	return ST_OK;
}

/*
 * Replace path's content with "value\n" atomically: a temporary file
 * beside it with its mode and owner, fsync, rename. Only root or the
 * file's owner: a sender's process would leave the file its own, and
 * so readable by that sender.
 */
static int
write_secret(const char *path, const char *value, struct error *err)
{
	char tmp[PATH_MAX + 32];
	struct stat st;
	int fd, rc;

	if (stat(path, &st) == -1)
		return error_set(err, ST_CANTCREAT, "%s: %s", path,
		    strerror(errno));
	if (geteuid() != 0 && geteuid() != st.st_uid)
		return error_set(err, ST_CANTCREAT, "%s is not this user's: "
		    "only root or its owner replaces it", path);
	if (snprintf(tmp, sizeof(tmp), "%s.new.%ld", path, (long)getpid()) >=
	    (int)sizeof(tmp))
		return error_set(err, ST_CANTCREAT, "path too long");
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1)
		return error_set(err, ST_CANTCREAT, "cannot write %s: %s", tmp,
		    strerror(errno));
	rc = fchown(fd, st.st_uid, st.st_gid) == -1 ||
	    fchmod(fd, st.st_mode & 0770) == -1 ||
	    queue_write_all(fd, value, strlen(value)) == -1 ||
	    queue_write_all(fd, "\n", 1) == -1 || fsync(fd) == -1 ? -1 : 0;
	if (close(fd) == -1)
		rc = -1;
	if (rc == -1 || rename(tmp, path) == -1) {
		(void)error_set(err, ST_CANTCREAT, "cannot replace %s: %s",
		    path, strerror(errno));
		(void)unlink(tmp);
		return err->status;
	}
	return ST_OK;
}

/* ------------------------------------------------------------ cache */

/*
 * A rotated refresh token that could not be written back (a sender's
 * process may not replace the file): kept in the cache as the successor
 * of the file's content, which it replaces for the grant while the file
 * still holds that content. An administrator's new token in the file
 * has another hash, and wins.
 */
struct successor {
	unsigned long long of;		/* fnv() of the file's token */
	char		 token[OAUTH_TOKEN_MAX];	/* "": none */
};

/* FNV-1a of s, continuing from h, and a separator. */
static unsigned long long
fnv(unsigned long long h, const char *s)
{
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (h ^ 0xffu) * 1099511628211ULL;
}

#define FNV_BASIS	1469598103934665603ULL

/* Which configuration a cached token is for. */
static unsigned long long
cache_id(const struct config *cfg)
{
	const char *parts[] = { cfg->oauth_token_url, cfg->oauth_client_id,
		cfg->oauth_scope, cfg->auth_user, cfg->oauth_refresh_file };
	unsigned long long h = FNV_BASIS;
	size_t i;

	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		h = fnv(h, parts[i]);
	return h;
}

/*
 * The cached token of this configuration (*found 0 when there is none),
 * and into sc (when not NULL) the successor it keeps.
 */
static int
cache_read(const struct config *cfg, struct oauth_token *t, int *found,
    struct successor *sc, struct error *err)
{
	char *buf, *line, *next;
	unsigned long long id = 0;
	size_t len;
	int rc;

	*found = 0;
	if ((buf = calloc(1, CACHE_MAX + 1)) == NULL)
		return error_set(err, ST_OSERR, "out of memory");
	rc = queue_state_read(cfg->queue_dir, CACHE_NAME, buf, CACHE_MAX, &len,
	    err);
	buf[len] = '\0';
	for (line = buf; rc == ST_OK && line != NULL && *line != '\0';
	    line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (strncmp(line, "id ", 3) == 0)
			id = strtoull(line + 3, NULL, 16);
		else if (strncmp(line, "expires ", 8) == 0)
			t->expires = strtoll(line + 8, NULL, 10);
		else if (strncmp(line, "access ", 7) == 0)
			(void)strlcpy(t->token, line + 7, sizeof(t->token));
		else if (sc != NULL && strncmp(line, "successor-of ", 13) == 0)
			sc->of = strtoull(line + 13, NULL, 16);
		else if (sc != NULL && strncmp(line, "successor ", 10) == 0)
			(void)strlcpy(sc->token, line + 10, sizeof(sc->token));
	}
	freezero(buf, CACHE_MAX + 1);
	if (sc != NULL && (rc != ST_OK || id != cache_id(cfg)))
		explicit_bzero(sc, sizeof(*sc));
	if (rc == ST_OK && id == cache_id(cfg) && t->token[0] != '\0' &&
	    t->expires > 0)
		*found = 1;
	else {
		explicit_bzero(t->token, sizeof(t->token));
		t->expires = 0;
	}
	return rc;
}

static int
cache_write(const struct config *cfg, const struct oauth_token *t,
    const struct successor *sc, struct error *err)
{
	char *buf;
	int n, rc;

	if ((buf = malloc(CACHE_MAX)) == NULL)
		return error_set(err, ST_OSERR, "out of memory");
	n = snprintf(buf, CACHE_MAX, "postino-oauth 1\nid %016llx\n"
	    "expires %lld\naccess %s\n%s%016llx\n%s%s\n", cache_id(cfg),
	    t->expires, t->token, "successor-of ", sc->of, "successor ",
	    sc->token);
	rc = n < 0 || n >= CACHE_MAX ? error_set(err, ST_SOFTWARE, "token "
	    "cache overflow") : queue_state_write(cfg->queue_dir, CACHE_NAME,
	    buf, (size_t)n, err);
	freezero(buf, CACHE_MAX);
	return rc;
}

/* ------------------------------------------------------ the endpoint */

/* OAuthTokenURL's parts (config.c made sure it is https://...). */
struct url {
	char		 host[HOST_MAX];
	char		 port[PORT_MAX];
	char		 hostport[HOST_MAX + PORT_MAX + 4];	/* Host: */
	const char	*path;
};

static int
url_split(const char *url, struct url *u, struct error *err)
{
	char authority[HOST_MAX + PORT_MAX + 4];
	const char *a = url + 8;
	size_t n = strcspn(a, "/?#");

	if (n == 0 || n >= sizeof(authority) || memchr(a, '@', n) != NULL)
		return error_set(err, ST_CONFIG, "OAuthTokenURL: no usable "
		    "host in the URL");
	memcpy(authority, a, n);
	authority[n] = '\0';
	u->path = a[n] == '/' ? a + n : "/";
	if (config_split_hub(authority, u->host, sizeof(u->host), u->port,
	    sizeof(u->port), err) != ST_OK)
		return error_set(err, ST_CONFIG, "OAuthTokenURL: no usable "
		    "host in the URL");
	if (u->port[0] == '\0')
		(void)strlcpy(u->port, "443", sizeof(u->port));
	(void)strlcpy(u->hostport, authority, sizeof(u->hostport));
	return ST_OK;
}

/* The request: header fields and the form (wiped by the caller). */
static int
request_text(const struct url *u, const char *form, char *out,
    size_t outlen, size_t *len, struct error *err)
{
	int n = snprintf(out, outlen, "POST %s HTTP/1.1\r\nHost: %s\r\n"
	    "User-Agent: postino/%s\r\nAccept: application/json\r\n"
	    "Content-Type: application/x-www-form-urlencoded\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", u->path,
	    u->hostport, POSTINO_VERSION, strlen(form), form);

	if (n < 0 || (size_t)n >= outlen)
		return error_set(err, ST_SOFTWARE, "token request too long");
	*len = (size_t)n;
	return ST_OK;
}

/* Read the response until it is complete (the step deadline bounds it). */
static int
read_response(struct conn *c, char *buf, size_t cap, int *status,
    char *body, size_t *bodylen, struct error *err)
{
	size_t len = 0, got;
	int rc, done = 0;

	conn_step(c);
	while (done == 0) {
		if (len == cap)
			return error_set(err, ST_TEMP, "response too long");
		if ((rc = conn_read_some(c, buf + len, cap - len, &got, err)) !=
		    ST_OK)
			return rc;
		len += got;
		done = oauth_http_parse(buf, len, got == 0, status, body,
		    BODY_MAX, bodylen);
	}
	if (done < 0)
		return error_set(err, ST_TEMP, "malformed HTTP response");
	return ST_OK;
}

/*
 * POST form to the endpoint over TLS verified as the hub's is (no pins:
 * they name the hub's key) and read the answer into body.
 */
static int
http_post(const struct config *cfg, const struct url *u, const char *form,
    int *status, char *body, size_t *bodylen, struct error *err)
{
	struct tls_params tp;
	struct conn *c = NULL;
	char *buf;
	size_t len = 0, cap = FORM_MAX + 2048;
	int rc;

	if ((buf = malloc(cap)) == NULL)
		return error_set(err, ST_OSERR, "out of memory");
	memset(&tp, 0, sizeof(tp));
	tp.servername = u->host;
	tp.verify = 1;
	tp.ca_file = cfg->tls_ca_file;
	tp.ca_dir = cfg->tls_ca_dir;
	rc = conn_connect_from(&c, u->host, u->port, cfg->timeout,
	    cfg->source_address, cfg->address_family, err);
	if (rc == ST_OK)
		rc = conn_start_tls(c, &tp, err);
	if (rc == ST_OK)
		rc = request_text(u, form, buf, cap, &len, err);
	if (rc == ST_OK) {
		conn_step(c);
		rc = conn_write(c, buf, len, err);
	}
	explicit_bzero(buf, cap);
	if (rc == ST_OK)
		rc = read_response(c, buf, cap, status, body, bodylen, err);
	freezero(buf, cap);
	conn_free(c);
	return rc;
}

/*
 * The form of the grant: the refresh token when there is one (the file's,
 * or its successor: sc->of is set to the file's hash, and sc->token kept
 * only when it is that content's successor), else the client's own.
 */
static int
grant_form(const struct config *cfg, char *form, struct successor *sc,
    struct error *err)
{
	char *secret;
	int rc = ST_OK, bad = 0;

	form[0] = '\0';
	if ((secret = calloc(1, OAUTH_TOKEN_MAX)) == NULL)
		return error_set(err, ST_OSERR, "out of memory");
	if (cfg->oauth_refresh_file[0] != '\0') {
		rc = read_secret(cfg->oauth_refresh_file,
		    "OAuthRefreshTokenFile", secret, OAUTH_TOKEN_MAX, err);
		if (sc->token[0] != '\0' && sc->of != fnv(FNV_BASIS, secret))
			explicit_bzero(sc->token, sizeof(sc->token));
		sc->of = fnv(FNV_BASIS, secret);
		bad |= oauth_form_append(form, FORM_MAX, "grant_type",
		    "refresh_token");
		bad |= oauth_form_append(form, FORM_MAX, "refresh_token",
		    sc->token[0] != '\0' ? sc->token : secret);
	} else
		bad |= oauth_form_append(form, FORM_MAX, "grant_type",
		    "client_credentials");
	bad |= oauth_form_append(form, FORM_MAX, "client_id",
	    cfg->oauth_client_id);
	if (rc == ST_OK && cfg->oauth_secret_file[0] != '\0') {
		rc = read_secret(cfg->oauth_secret_file, "OAuthClientSecretFile",
		    secret, OAUTH_TOKEN_MAX, err);
		bad |= oauth_form_append(form, FORM_MAX, "client_secret",
		    secret);
	}
	if (cfg->oauth_scope[0] != '\0')
		bad |= oauth_form_append(form, FORM_MAX, "scope",
		    cfg->oauth_scope);
	freezero(secret, OAUTH_TOKEN_MAX);
	if (rc == ST_OK && bad)
		rc = error_set(err, ST_SOFTWARE, "token request too long");
	if (rc != ST_OK)
		explicit_bzero(form, FORM_MAX);
	return rc;
}

/* The key an endpoint's error names (RFC 6749 5.2). */
static const char *
error_key(const struct config *cfg, const char *error)
{
	if (strcmp(error, "invalid_client") == 0 ||
	    strcmp(error, "unauthorized_client") == 0)
		return cfg->oauth_secret_file[0] != '\0' ?
		    "OAuthClientSecretFile" : "OAuthClientID";
	if (strcmp(error, "invalid_grant") == 0 &&
	    cfg->oauth_refresh_file[0] != '\0')
		return "OAuthRefreshTokenFile";
	if (strcmp(error, "invalid_scope") == 0)
		return "OAuthScope";
	return "OAuthTokenURL";
}

/* The endpoint said no, or something we cannot use: why, naming a key. */
static int
refused(const struct config *cfg, int status, const struct oauth_reply *r,
    int parsed, struct error *err)
{
	char what[64], desc[160];

	if (parsed == 0 && status == 200)
		return error_set(err, ST_TEMP, "OAuthTokenURL: the token "
		    "endpoint's answer holds no bearer access token");
	(void)log_sanitize(what, sizeof(what), r->error, strlen(r->error));
	(void)log_sanitize(desc, sizeof(desc), r->error_description,
	    strlen(r->error_description));
	return error_set(err, ST_TEMP, "%s: the token endpoint refused "
	    "(HTTP %d%s%s%s%s)", parsed == 0 && r->error[0] != '\0' ?
	    error_key(cfg, r->error) : "OAuthTokenURL", status,
	    what[0] != '\0' ? " " : "", what, desc[0] != '\0' ? ": " : "",
	    desc);
}

/*
 * Take the reply's tokens: t, a rotated refresh token written back (or,
 * when that cannot be, kept as the file's successor), the cache.
 */
static void
take_reply(const struct config *cfg, const struct oauth_reply *r,
    struct oauth_token *t, struct successor *sc)
{
	struct error e;

	(void)strlcpy(t->token, r->access_token, sizeof(t->token));
	t->expires = (long long)time(NULL) + (r->expires_in >= 0 ?
	    r->expires_in : EXPIRES_DEFAULT);
	t->refreshed = 1;
	if (r->refresh_token[0] != '\0' && cfg->oauth_refresh_file[0] !=
	    '\0') {
		if (write_secret(cfg->oauth_refresh_file, r->refresh_token,
		    &e) == ST_OK)
			explicit_bzero(sc->token, sizeof(sc->token));
		else {
			(void)strlcpy(sc->token, r->refresh_token,
			    sizeof(sc->token));
			(void)snprintf(t->note, sizeof(t->note),
			    "OAuthRefreshTokenFile: the rotated refresh token "
			    "could not be written back (kept in the queue's "
			    "token cache): %.340s", e.text);
		}
	}
	if (cache_write(cfg, t, sc, &e) != ST_OK)
		(void)snprintf(t->note, sizeof(t->note), "OAuth token not "
		    "cached: %.400s", e.text);
}

/* Ask the endpoint for a new access token. */
static int
refresh(const struct config *cfg, struct oauth_token *t, struct error *err)
{
	struct oauth_reply *r = NULL;
	struct successor *sc = NULL;
	struct error e;
	struct url u;
	char *form = NULL, *body = NULL;
	size_t bodylen = 0;
	int rc, status = 0, parsed, found;

	if ((rc = url_split(cfg->oauth_token_url, &u, err)) != ST_OK)
		return rc;
	if ((form = calloc(1, FORM_MAX)) == NULL ||
	    (body = malloc(BODY_MAX)) == NULL ||
	    (r = malloc(sizeof(*r))) == NULL ||
	    (sc = calloc(1, sizeof(*sc))) == NULL)
		rc = error_set(err, ST_OSERR, "out of memory");
	/* Only the successor is wanted; t is refilled from the reply. */
	if (rc == ST_OK)
		(void)cache_read(cfg, t, &found, sc, &e);
	explicit_bzero(t->token, sizeof(t->token));
	if (rc == ST_OK)
		rc = grant_form(cfg, form, sc, err);
	if (rc == ST_OK && (rc = http_post(cfg, &u, form, &status, body,
	    &bodylen, err)) != ST_OK && err->status == ST_TEMP)
		error_prefix(err, "OAuthTokenURL %s", u.hostport);
	if (rc == ST_OK) {
		parsed = oauth_json_parse(body, bodylen, r);
		if (parsed == 0 && status == 200 && r->access_token[0] != '\0'
		    && (r->token_type[0] == '\0' ||
		    strcasecmp(r->token_type, "Bearer") == 0))
			take_reply(cfg, r, t, sc);
		else
			rc = refused(cfg, status, r, parsed, err);
	}
	if (form != NULL)
		freezero(form, FORM_MAX);
	if (body != NULL)
		freezero(body, BODY_MAX);
	if (r != NULL)
		freezero(r, sizeof(*r));
	if (sc != NULL)
		freezero(sc, sizeof(*sc));
	return rc;
}

/* The cached token, when it has at least margin seconds left. */
static int
cached(const struct config *cfg, long long margin, struct oauth_token *t)
{
	struct error err;
	int found = 0;

	if (cache_read(cfg, t, &found, NULL, &err) != ST_OK)
		(void)snprintf(t->note, sizeof(t->note), "OAuth token cache: "
		    "%.400s", err.text);
	if (found && t->expires - (long long)time(NULL) >= margin)
		return 1;
	explicit_bzero(t->token, sizeof(t->token));
	t->expires = 0;
	return 0;
}

int
oauth_token_get(const struct config *cfg, long long margin, int force,
    struct oauth_token *t, struct error *err)
{
	int lock, rc;

	memset(t, 0, sizeof(*t));
	if (cfg->auth_token_file[0] != '\0') {
		t->key = "AuthTokenFile";
		rc = read_secret(cfg->auth_token_file, "AuthTokenFile",
		    t->token, sizeof(t->token), err);
	} else {
		t->key = "OAuthScope";
		if (!force && cached(cfg, margin, t))
			return ST_OK;
		/*
		 * One refresh at a time: an endpoint that rotates refresh
		 * tokens takes each only once, and whoever waited here finds
		 * the token the other fetched.
		 */
		lock = queue_state_lock(cfg->queue_dir, CACHE_NAME ".lock");
		if (!force && cached(cfg, margin, t))
			rc = ST_OK;
		else
			rc = refresh(cfg, t, err);
		if (lock != -1)
			(void)close(lock);
	}
	if (rc != ST_OK) {
		explicit_bzero(t->token, sizeof(t->token));
		err->hint = HINT_AUTH;
	}
	return rc;
}

void
oauth_token_wipe(struct oauth_token *t)
{
	explicit_bzero(t->token, sizeof(t->token));
}

void
oauth_describe(const struct config *cfg, char *buf, size_t len)
{
	struct oauth_token *t;
	struct error err;
	long long left;
	int found = 0;

	if (!oauth_wanted(cfg)) {
		(void)snprintf(buf, len, "no OAuth token in use");
		return;
	}
	if (cfg->auth_token_file[0] != '\0') {
		(void)snprintf(buf, len, "from AuthTokenFile %s (expiry "
		    "unknown to postino)", cfg->auth_token_file);
		return;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    cache_read(cfg, t, &found, NULL, &err) != ST_OK) {
		(void)snprintf(buf, len, "cache unreadable: %.300s", t == NULL ?
		    "out of memory" : err.text);
		free(t);
		return;
	}
	left = t->expires - (long long)time(NULL);
	if (!found)
		(void)snprintf(buf, len, "none cached (the next delivery or "
		    "postino token asks OAuthTokenURL)");
	else if (left <= 0)
		(void)snprintf(buf, len, "expired %llds ago (refreshed at the "
		    "next delivery)", -left);
	else
		(void)snprintf(buf, len, "valid for %llds more%s", left,
		    left < OAUTH_MARGIN ? " (refreshed at the next delivery)" :
		    "");
	freezero(t, sizeof(*t));
}

void
oauth_check_line(FILE *out, const struct config *cfg)
{
	char state[ERR_MAX];

	if (!oauth_wanted(cfg))
		return;
	oauth_describe(cfg, state, sizeof(state));
	(void)fprintf(out, "  OAuth token: %s\n", state);
}
