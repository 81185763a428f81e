/*
 * ossl.h: OpenSSL reached through a table of pointers that ossl.c fills
 * at run time (dlopen by soname, dlsym), so that postino is not linked
 * with libssl and libcrypto and a plain hop never pays for them (about
 * 1 ms and 3M instructions at every exec). Included by tls.c and auth.c
 * only, after OpenSSL's headers: from here on each OpenSSL function they
 * call, including those OpenSSL's own macros expand to
 * (SSL_CTX_set_mode -> SSL_CTX_ctrl), is the table's entry. A file must
 * call ossl_load() for the part it needs before its first OpenSSL call.
 * A function missing from the lists is caught when postino is linked,
 * which has no -lssl -lcrypto (`nm -u build/tls.o` lists them).
 */
#ifndef OSSL_H
#define OSSL_H

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "postino.h"

/* Defined in libcrypto: needed by auth.c (HMAC-MD5) and tls.c. */
#define OSSL_CRYPTO_SYMBOLS(X) \
	X(ASN1_TIME_diff) X(ASN1_TIME_to_tm) X(BIO_clear_flags) X(BIO_ctrl) \
	X(BIO_free) X(BIO_get_data) X(BIO_meth_free) X(BIO_meth_new) \
	X(BIO_meth_set_create) X(BIO_meth_set_ctrl) X(BIO_meth_set_read) \
	X(BIO_meth_set_write) X(BIO_new) X(BIO_s_mem) X(BIO_set_data) \
	X(BIO_set_flags) X(BIO_set_init) X(CRYPTO_free) X(CRYPTO_memcmp) \
	X(ERR_clear_error) X(ERR_error_string_n) X(ERR_get_error) \
	X(ERR_peek_error) X(ERR_peek_last_error) X(ERR_reason_error_string) \
	X(EVP_Digest) X(EVP_Q_mac) X(EVP_sha256) X(X509_NAME_print_ex) \
	X(X509_STORE_CTX_get0_cert) X(X509_STORE_CTX_get_error) \
	X(X509_STORE_CTX_get_ex_data) X(X509_VERIFY_PARAM_set1_ip_asc) \
	X(X509_check_host) X(X509_check_ip_asc) X(X509_digest) \
	X(X509_get0_notAfter) X(X509_get_X509_PUBKEY) \
	X(X509_get_default_cert_dir) X(X509_get_issuer_name) \
	X(X509_get_subject_name) X(X509_verify_cert_error_string) \
	X(i2d_X509_PUBKEY)

/* Defined in libssl: tls.c only. */
#define OSSL_SSL_SYMBOLS(X) \
	X(SSL_CIPHER_get_name) X(SSL_CTX_check_private_key) X(SSL_CTX_ctrl) \
	X(SSL_CTX_free) X(SSL_CTX_load_verify_dir) \
	X(SSL_CTX_load_verify_file) X(SSL_CTX_new) \
	X(SSL_CTX_sess_set_new_cb) X(SSL_CTX_set_default_passwd_cb) \
	X(SSL_CTX_set_default_verify_paths) X(SSL_CTX_set_options) \
	X(SSL_CTX_set_verify) X(SSL_CTX_use_PrivateKey_file) \
	X(SSL_CTX_use_certificate_chain_file) X(SSL_SESSION_free) \
	X(SSL_SESSION_get_time) X(SSL_SESSION_get_timeout) \
	X(SSL_SESSION_is_resumable) X(SSL_connect) X(SSL_ctrl) X(SSL_free) \
	X(SSL_get0_param) X(SSL_get0_peer_certificate) \
	X(SSL_get_current_cipher) X(SSL_get_error) X(SSL_get_ex_data) \
	X(SSL_get_ex_data_X509_STORE_CTX_idx) X(SSL_get_verify_result) \
	X(SSL_get_version) X(SSL_new) X(SSL_read_ex) X(SSL_session_reused) \
	X(SSL_set1_host) X(SSL_set_bio) X(SSL_set_ex_data) \
	X(SSL_set_hostflags) X(SSL_set_session) X(SSL_shutdown) \
	X(SSL_write_ex) X(TLS_client_method) X(d2i_SSL_SESSION) \
	X(i2d_SSL_SESSION)

#define OSSL_MEMBER(f)	__typeof__(&f) f;
struct ossl {
	OSSL_CRYPTO_SYMBOLS(OSSL_MEMBER)
	OSSL_SSL_SYMBOLS(OSSL_MEMBER)
};
#undef OSSL_MEMBER

extern struct ossl ossl;

enum ossl_part {
	OSSL_CRYPTO = 1,	/* libcrypto and OSSL_CRYPTO_SYMBOLS */
	OSSL_SSL		/* both libraries, every symbol */
};

/*
 * Load the part (once per process; later calls are free). Failure, a
 * library or a function missing, is ST_TEMP with hint HINT_TLS_POLICY
 * ("OpenSSL unavailable: ..."): the hop fails as a TLS failure does and
 * the message waits in the queue for an administrator. The table stays
 * as it was (entries of a part are set only when all of them resolve).
 */
int		 ossl_load(enum ossl_part, struct error *);

#ifndef OSSL_TABLE_ONLY
#define ASN1_TIME_diff			(ossl.ASN1_TIME_diff)
#define ASN1_TIME_to_tm			(ossl.ASN1_TIME_to_tm)
#define BIO_clear_flags			(ossl.BIO_clear_flags)
#define BIO_ctrl			(ossl.BIO_ctrl)
#define BIO_free			(ossl.BIO_free)
#define BIO_get_data			(ossl.BIO_get_data)
#define BIO_meth_free			(ossl.BIO_meth_free)
#define BIO_meth_new			(ossl.BIO_meth_new)
#define BIO_meth_set_create		(ossl.BIO_meth_set_create)
#define BIO_meth_set_ctrl		(ossl.BIO_meth_set_ctrl)
#define BIO_meth_set_read		(ossl.BIO_meth_set_read)
#define BIO_meth_set_write		(ossl.BIO_meth_set_write)
#define BIO_new				(ossl.BIO_new)
#define BIO_s_mem			(ossl.BIO_s_mem)
#define BIO_set_data			(ossl.BIO_set_data)
#define BIO_set_flags			(ossl.BIO_set_flags)
#define BIO_set_init			(ossl.BIO_set_init)
#define CRYPTO_free			(ossl.CRYPTO_free)
#define CRYPTO_memcmp			(ossl.CRYPTO_memcmp)
#define ERR_clear_error			(ossl.ERR_clear_error)
#define ERR_error_string_n		(ossl.ERR_error_string_n)
#define ERR_get_error			(ossl.ERR_get_error)
#define ERR_peek_error			(ossl.ERR_peek_error)
#define ERR_peek_last_error		(ossl.ERR_peek_last_error)
#define ERR_reason_error_string		(ossl.ERR_reason_error_string)
#define EVP_Digest			(ossl.EVP_Digest)
#define EVP_Q_mac			(ossl.EVP_Q_mac)
#define EVP_sha256			(ossl.EVP_sha256)
#define X509_NAME_print_ex		(ossl.X509_NAME_print_ex)
#define X509_STORE_CTX_get0_cert	(ossl.X509_STORE_CTX_get0_cert)
#define X509_STORE_CTX_get_error	(ossl.X509_STORE_CTX_get_error)
#define X509_STORE_CTX_get_ex_data	(ossl.X509_STORE_CTX_get_ex_data)
#define X509_VERIFY_PARAM_set1_ip_asc	(ossl.X509_VERIFY_PARAM_set1_ip_asc)
#define X509_check_host			(ossl.X509_check_host)
#define X509_check_ip_asc		(ossl.X509_check_ip_asc)
#define X509_digest			(ossl.X509_digest)
#define X509_get0_notAfter		(ossl.X509_get0_notAfter)
#define X509_get_X509_PUBKEY		(ossl.X509_get_X509_PUBKEY)
#define X509_get_default_cert_dir	(ossl.X509_get_default_cert_dir)
#define X509_get_issuer_name		(ossl.X509_get_issuer_name)
#define X509_get_subject_name		(ossl.X509_get_subject_name)
#define X509_verify_cert_error_string	(ossl.X509_verify_cert_error_string)
#define i2d_X509_PUBKEY			(ossl.i2d_X509_PUBKEY)

#define SSL_CIPHER_get_name		(ossl.SSL_CIPHER_get_name)
#define SSL_CTX_check_private_key	(ossl.SSL_CTX_check_private_key)
#define SSL_CTX_ctrl			(ossl.SSL_CTX_ctrl)
#define SSL_CTX_free			(ossl.SSL_CTX_free)
#define SSL_CTX_load_verify_dir		(ossl.SSL_CTX_load_verify_dir)
#define SSL_CTX_load_verify_file	(ossl.SSL_CTX_load_verify_file)
#define SSL_CTX_new			(ossl.SSL_CTX_new)
#define SSL_CTX_sess_set_new_cb		(ossl.SSL_CTX_sess_set_new_cb)
#define SSL_CTX_set_default_passwd_cb	(ossl.SSL_CTX_set_default_passwd_cb)
#define SSL_CTX_set_default_verify_paths \
					(ossl.SSL_CTX_set_default_verify_paths)
#define SSL_CTX_set_options		(ossl.SSL_CTX_set_options)
#define SSL_CTX_set_verify		(ossl.SSL_CTX_set_verify)
#define SSL_CTX_use_PrivateKey_file	(ossl.SSL_CTX_use_PrivateKey_file)
#define SSL_CTX_use_certificate_chain_file \
					(ossl.SSL_CTX_use_certificate_chain_file)
#define SSL_SESSION_free		(ossl.SSL_SESSION_free)
#define SSL_SESSION_get_time		(ossl.SSL_SESSION_get_time)
#define SSL_SESSION_get_timeout		(ossl.SSL_SESSION_get_timeout)
#define SSL_SESSION_is_resumable	(ossl.SSL_SESSION_is_resumable)
#define SSL_connect			(ossl.SSL_connect)
#define SSL_ctrl			(ossl.SSL_ctrl)
#define SSL_free			(ossl.SSL_free)
#define SSL_get0_param			(ossl.SSL_get0_param)
#define SSL_get0_peer_certificate	(ossl.SSL_get0_peer_certificate)
#define SSL_get_current_cipher		(ossl.SSL_get_current_cipher)
#define SSL_get_error			(ossl.SSL_get_error)
#define SSL_get_ex_data			(ossl.SSL_get_ex_data)
#define SSL_get_ex_data_X509_STORE_CTX_idx \
					(ossl.SSL_get_ex_data_X509_STORE_CTX_idx)
#define SSL_get_verify_result		(ossl.SSL_get_verify_result)
#define SSL_get_version			(ossl.SSL_get_version)
#define SSL_new				(ossl.SSL_new)
#define SSL_read_ex			(ossl.SSL_read_ex)
#define SSL_session_reused		(ossl.SSL_session_reused)
#define SSL_set1_host			(ossl.SSL_set1_host)
#define SSL_set_bio			(ossl.SSL_set_bio)
#define SSL_set_ex_data			(ossl.SSL_set_ex_data)
#define SSL_set_hostflags		(ossl.SSL_set_hostflags)
#define SSL_set_session			(ossl.SSL_set_session)
#define SSL_shutdown			(ossl.SSL_shutdown)
#define SSL_write_ex			(ossl.SSL_write_ex)
#define TLS_client_method		(ossl.TLS_client_method)
#define d2i_SSL_SESSION			(ossl.d2i_SSL_SESSION)
#define i2d_SSL_SESSION			(ossl.i2d_SSL_SESSION)
#endif /* OSSL_TABLE_ONLY */

#endif /* OSSL_H */
