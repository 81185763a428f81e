/*
 * ossl.c: OpenSSL loaded when a TLS hop (or CRAM-MD5) first needs it.
 * postino is not linked with libssl and libcrypto: their relocations
 * and constructors cost every exec about 1 ms and 3M instructions, plain
 * hops included. The libraries are opened by soname only, never by a
 * path: under AT_SECURE (postino is set-group-ID) the dynamic loader
 * ignores LD_LIBRARY_PATH and searches the trusted directories alone,
 * and no name here comes from the environment or the configuration.
 * Every function tls.c and auth.c call is resolved into the table of
 * ossl.h at once, so a missing one is an error at load time, never a
 * NULL call later. The libraries stay loaded until exit.
 */
#include <dlfcn.h>
#include <string.h>

#define OSSL_TABLE_ONLY
#include "ossl.h"

#define OSSL_STR_(x)	#x
#define OSSL_STR(x)	OSSL_STR_(x)
/* The ABI of the headers compiled against: libssl.so.3, libcrypto.so.3. */
#define LIBCRYPTO	"libcrypto.so." OSSL_STR(OPENSSL_SHLIB_VERSION)
#define LIBSSL		"libssl.so." OSSL_STR(OPENSSL_SHLIB_VERSION)

struct ossl ossl;

struct ossl_sym {
	const char	*name;
	void		*slot;	/* the table's pointer for it */
};

#define OSSL_ENTRY(f)	{ #f, &ossl.f },
static const struct ossl_sym crypto_syms[] = {
	OSSL_CRYPTO_SYMBOLS(OSSL_ENTRY)
};
static const struct ossl_sym ssl_syms[] = {
	OSSL_SSL_SYMBOLS(OSSL_ENTRY)
};
#undef OSSL_ENTRY

static int loaded[OSSL_SSL + 1];

/*
 * Resolve every name of syms in lib, then fill the table: all or none,
 * so that a half-filled part is never taken for a loaded one.
 */
static int
resolve(const char *lib, const struct ossl_sym *syms, size_t n,
    struct error *err)
{
	void *h, *p[sizeof(ssl_syms) / sizeof(ssl_syms[0]) +
	    sizeof(crypto_syms) / sizeof(crypto_syms[0])];
	const char *why;
	size_t i;

	if (n > sizeof(p) / sizeof(p[0]))
		return error_set(err, ST_SOFTWARE, "ossl: table too small");
	(void)dlerror();
	if ((h = dlopen(lib, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		why = dlerror();
		return error_set(err, ST_TEMP, "OpenSSL unavailable: %s",
		    why != NULL ? why : lib);
	}
	for (i = 0; i < n; i++)
		if ((p[i] = dlsym(h, syms[i].name)) == NULL)
			/* Never dlclose'd: libcrypto cannot be unloaded. */
			return error_set(err, ST_TEMP, "OpenSSL unavailable: "
			    "%s has no %s", lib, syms[i].name);
	for (i = 0; i < n; i++)
		memcpy(syms[i].slot, &p[i], sizeof(p[i]));
	return ST_OK;
}

int
ossl_load(enum ossl_part part, struct error *err)
{
	int rc = ST_OK;

	if (!loaded[OSSL_CRYPTO]) {
		rc = resolve(LIBCRYPTO, crypto_syms,
		    sizeof(crypto_syms) / sizeof(crypto_syms[0]), err);
		loaded[OSSL_CRYPTO] = rc == ST_OK;
	}
	if (rc == ST_OK && part == OSSL_SSL && !loaded[OSSL_SSL]) {
		rc = resolve(LIBSSL, ssl_syms,
		    sizeof(ssl_syms) / sizeof(ssl_syms[0]), err);
		loaded[OSSL_SSL] = rc == ST_OK;
	}
	if (rc != ST_OK && err != NULL)
		err->hint = HINT_TLS_POLICY;
	return rc;
}
