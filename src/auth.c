/*
 * auth.c: SASL for AUTH. Base64 (our own, so that PLAIN and LOGIN never
 * load OpenSSL), HMAC-MD5 (libcrypto's EVP_Q_mac, loaded by ossl.c when
 * CRAM-MD5 first needs it) and the responses of the three mechanisms
 * postino speaks: PLAIN (RFC 4616), LOGIN and CRAM-MD5 (RFC 2195). The
 * dialogue itself (which mechanism, the 334 lines, redaction in the
 * transcript) is smtp.c's; here is only what turns credentials into the
 * text that goes on the wire. Every buffer that held a secret is wiped
 * before it is left.
 */
#include <sys/types.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postino.h"
#include "ossl.h"	/* last: OpenSSL's functions become ossl's pointers */

#define MD5_LEN		16

static const char b64_digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
auth_base64_encode(const void *in, size_t len, char *out, size_t outlen)
{
	const unsigned char *p = in;
	unsigned long v = 0;
	size_t i, o = 0;

	if (len > (size_t)INT_MAX / 4 * 3 - 3)
		return -1;
	if (outlen < (len + 2) / 3 * 4 + 1)
		return -1;
	for (i = 0; i < len; i += 3) {
		v = (unsigned long)p[i] << 16;
		if (i + 1 < len)
			v |= (unsigned long)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		out[o++] = b64_digits[(v >> 18) & 63];
		out[o++] = b64_digits[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64_digits[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64_digits[v & 63] : '=';
	}
	out[o] = '\0';
	explicit_bzero(&v, sizeof(v));
	return (int)o;
}

/* Is ch white space allowed around the text (a 334 line's " ", CRLF)? */
static int
b64_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* The value of a base64 digit, -1 for anything else ('=' included). */
static int
b64_value(char ch)
{
	const char *p;

	if (ch == '\0' || (p = strchr(b64_digits, ch)) == NULL)
		return -1;
	return (int)(p - b64_digits);
}

/*
 * Is in[0..len) base64 (a multiple of 4, '=' only as one or two final
 * pads)? The decoded length goes to *outn.
 */
static int
b64_check(const char *in, size_t len, size_t *outn)
{
	size_t i, pad = 0;

	if (len % 4 != 0)
		return -1;
	if (len > 0 && in[len - 1] == '=')
		pad = len > 1 && in[len - 2] == '=' ? 2 : 1;
	for (i = 0; i < len - pad; i++)
		if (b64_value(in[i]) < 0)
			return -1;
	*outn = len / 4 * 3 - pad;
	return 0;
}

int
auth_base64_decode(const char *in, size_t len, unsigned char *out,
    size_t outlen)
{
	size_t n, i, o = 0;
	unsigned long v;
	int k, d;

	if (len > (size_t)INT_MAX - 4)
		return -1;
	while (len > 0 && b64_space(in[0])) {
		in++;
		len--;
	}
	while (len > 0 && b64_space(in[len - 1]))
		len--;
	if (b64_check(in, len, &n) == -1 || n > outlen)
		return -1;
	for (i = 0; i < len; i += 4) {
		v = 0;
		for (k = 0; k < 4; k++)
			v = v << 6 | (unsigned long)((d = b64_value(in[i +
			    (size_t)k])) < 0 ? 0 : d);
		for (k = 2; k >= 0 && o < n; k--)
			out[o++] = (unsigned char)(v >> (8 * k));
	}
	explicit_bzero(&v, sizeof(v));
	return (int)n;
}

int
auth_hmac_md5_hex(const void *key, size_t keylen, const void *msg,
    size_t msglen, char out[33])
{
	/* OPENSSL_buf2hexstr writes upper case; RFC 2195 wants lower. */
	static const char digits[] = "0123456789abcdef";
	unsigned char md[MD5_LEN];
	size_t mdlen = 0, i;

	out[0] = '\0';
	if (ossl_load(OSSL_CRYPTO, NULL) != ST_OK)
		return -1;
	if (EVP_Q_mac(NULL, "HMAC", NULL, "MD5", NULL, key, keylen, msg,
	    msglen, md, sizeof(md), &mdlen) == NULL || mdlen != MD5_LEN) {
		ERR_clear_error();
		explicit_bzero(md, sizeof(md));
		return -1;
	}
	for (i = 0; i < MD5_LEN; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 0xf];
	}
	out[2 * MD5_LEN] = '\0';
	explicit_bzero(md, sizeof(md));
	return 0;
}

/* Base64 of raw into out, or ST_SOFTWARE: the caller sized out wrong. */
static int
encode(const void *raw, size_t rawlen, char *out, size_t outlen,
    struct error *err)
{
	if (auth_base64_encode(raw, rawlen, out, outlen) < 0) {
		if (outlen > 0)
			explicit_bzero(out, outlen);
		return error_set(err, ST_SOFTWARE, "AUTH response does not "
		    "fit its buffer");
	}
	return ST_OK;
}

int
auth_plain_response(const char *user, const char *pass, char *out,
    size_t outlen, struct error *err)
{
	char raw[2 * SECRET_MAX + 2];
	size_t ulen = strnlen(user, SECRET_MAX - 1);
	size_t plen = strnlen(pass, SECRET_MAX - 1);
	int rc;

	/* authzid empty, then authcid and password (RFC 4616). */
	raw[0] = '\0';
	memcpy(raw + 1, user, ulen);
	raw[1 + ulen] = '\0';
	memcpy(raw + 2 + ulen, pass, plen);
	rc = encode(raw, 2 + ulen + plen, out, outlen, err);
	explicit_bzero(raw, sizeof(raw));
	return rc;
}

int
auth_login_response(const char *text, char *out, size_t outlen,
    struct error *err)
{
	return encode(text, strnlen(text, SECRET_MAX - 1), out, outlen, err);
}

int
auth_cram_md5_response(const char *user, const char *pass,
    const char *challenge, size_t challenge_len, char *out, size_t outlen,
    struct error *err)
{
	unsigned char chal[REPLY_TEXT_MAX];
	char resp[SECRET_MAX + 40], digest[33];
	int n, rc;

	n = auth_base64_decode(challenge, challenge_len, chal, sizeof(chal));
	if (n < 0)
		return error_set(err, ST_TEMP, "hub sent a malformed "
		    "CRAM-MD5 challenge");
	/* Its own message: the message waits for an administrator. */
	if (ossl_load(OSSL_CRYPTO, err) != ST_OK) {
		error_prefix(err, "AUTH CRAM-MD5");
		return err->status;
	}
	if (auth_hmac_md5_hex(pass, strnlen(pass, SECRET_MAX - 1), chal,
	    (size_t)n, digest) != 0)
		return error_set(err, ST_SOFTWARE, "HMAC-MD5 unavailable");
	(void)snprintf(resp, sizeof(resp), "%.*s %s", SECRET_MAX - 1, user,
	    digest);
	rc = encode(resp, strlen(resp), out, outlen, err);
	explicit_bzero(resp, sizeof(resp));
	explicit_bzero(digest, sizeof(digest));
	return rc;
}

/* ---------------------------------------------- bearer tokens (oauth.c) */

/* A value of a bearer message: no ^A (it ends a key=value), none empty. */
static int
bearer_value_ok(const char *v, size_t max)
{
	size_t n = strnlen(v, max);

	return n > 0 && n < max && memchr(v, '\001', n) == NULL;
}

/* Base64 of the raw message (a secret: wiped), or the error. */
static int
bearer_encode(char *raw, int n, size_t rawlen, char *out, size_t outlen,
    struct error *err)
{
	int rc;

	if (n < 0 || (size_t)n >= rawlen) {
		explicit_bzero(raw, rawlen);
		return error_set(err, ST_SOFTWARE, "AUTH response does not "
		    "fit its buffer");
	}
	rc = encode(raw, (size_t)n, out, outlen, err);
	explicit_bzero(raw, rawlen);
	return rc;
}

int
auth_xoauth2_response(const char *user, const char *token, char *out,
    size_t outlen, struct error *err)
{
	char raw[OAUTH_TOKEN_MAX + SECRET_MAX + 32];

	if (!bearer_value_ok(user, SECRET_MAX) ||
	    !bearer_value_ok(token, OAUTH_TOKEN_MAX))
		return error_set(err, ST_DATA, "AuthUser or the OAuth token "
		    "is empty, too long or holds a ^A byte");
	return bearer_encode(raw, snprintf(raw, sizeof(raw),
	    "user=%s\001auth=Bearer %s\001\001", user, token), sizeof(raw),
	    out, outlen, err);
}

int
auth_oauthbearer_response(const char *user, const char *host,
    const char *port, const char *token, char *out, size_t outlen,
    struct error *err)
{
	char raw[OAUTH_TOKEN_MAX + SECRET_MAX + HOST_MAX + PORT_MAX + 48];

	/* RFC 7628 3.1: the gs2 authzid may not hold ',' or '=' bare. */
	if (!bearer_value_ok(user, SECRET_MAX) ||
	    !bearer_value_ok(token, OAUTH_TOKEN_MAX) ||
	    strpbrk(user, ",=") != NULL || !bearer_value_ok(host, HOST_MAX) ||
	    !bearer_value_ok(port, PORT_MAX))
		return error_set(err, ST_DATA, "AuthUser, the hub or the "
		    "OAuth token cannot go in an OAUTHBEARER message");
	return bearer_encode(raw, snprintf(raw, sizeof(raw),
	    "n,a=%s,\001host=%s\001port=%s\001auth=Bearer %s\001\001", user,
	    host, port, token), sizeof(raw), out, outlen, err);
}

void
auth_oauth_error(const char *challenge, char *out, size_t outlen)
{
	unsigned char json[REPLY_TEXT_MAX];
	int n;

	if (outlen == 0)
		return;
	out[0] = '\0';
	n = auth_base64_decode(challenge, strlen(challenge), json,
	    sizeof(json));
	if (n > 0)
		(void)log_sanitize(out, outlen, (const char *)json, (size_t)n);
}
