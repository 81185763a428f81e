/*
 * fuzz_config.c: libFuzzer target for the ssmtp.conf parser
 * (config_parse_buffer). The input is the file's text. Besides memory
 * errors (ASan, UBSan, leaks) it checks what later stages rely on: every
 * string field is terminated inside its array, a successful parse leaves
 * values that can go into EHLO, a MAIL command or a header unchanged
 * (no control bytes, hub and port well formed, AddHeader bounded), and
 * no diagnostic carries a raw control or 8-bit byte to a terminal.
 */
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

#define TERMINATED(field) \
	CHECK(memchr((field), '\0', sizeof(field)) != NULL)

/* Text shown to a user: printable ASCII only (log_sanitize's promise). */
static int
printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < ' ' || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

/* Safe on an SMTP command line or in a header: no control bytes. */
static int
no_controls(const char *s)
{
	for (; *s != '\0'; s++)
		if (((unsigned char)*s < ' ' && *s != '\t') || *s == 0x7f)
			return 0;
	return 1;
}

/* A host name as EHLO and Received: use it: no blank, no control. */
static int
host_clean(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return 0;
	return 1;
}

static void
warned(void *arg, const char *text)
{
	size_t *count = arg;

	CHECK(text != NULL && printable(text));
	(*count)++;
}

static void
check_terminated(const struct config *cfg)
{
	TERMINATED(cfg->path);
	TERMINATED(cfg->root);
	TERMINATED(cfg->hub_host);
	TERMINATED(cfg->hub_port);
	TERMINATED(cfg->hostname);
	TERMINATED(cfg->rewrite_domain);
	TERMINATED(cfg->tls_cert);
	TERMINATED(cfg->tls_key);
	TERMINATED(cfg->tls_ca_file);
	TERMINATED(cfg->tls_ca_dir);
	TERMINATED(cfg->auth_user);
	TERMINATED(cfg->auth_pass);
	TERMINATED(cfg->revaliases);
	TERMINATED(cfg->queue_dir);
	TERMINATED(cfg->auth_pass_file);
	TERMINATED(cfg->log_file);
	TERMINATED(cfg->mailname_path);
	CHECK(cfg->add_header_count <= ADDHEADER_MAX);
}

static void
check_ok(const struct config *cfg)
{
	size_t i;

	CHECK(cfg->hub_host[0] != '\0' && host_clean(cfg->hub_host));
	CHECK(cfg->hub_port[0] != '\0' && host_clean(cfg->hub_port));
	CHECK(host_clean(cfg->hostname));
	CHECK(host_clean(cfg->rewrite_domain));
	CHECK(strchr(cfg->rewrite_domain, '@') == NULL);
	CHECK(no_controls(cfg->root));
	CHECK(no_controls(cfg->auth_user) && no_controls(cfg->auth_pass));
	CHECK(cfg->tls == TLS_NONE || cfg->tls == TLS_STARTTLS ||
	    cfg->tls == TLS_IMPLICIT);
	CHECK(cfg->auth_method >= AUTH_BEST &&
	    cfg->auth_method <= AUTH_CRAM_MD5);
	CHECK(cfg->timeout >= 1 && cfg->timeout <= 3600);
	CHECK(cfg->retry_interval >= 0 && cfg->max_retry_interval >= 0 &&
	    cfg->queue_lifetime >= 0 && cfg->hub_backoff >= 0);
	CHECK(cfg->queue_dir[0] == '/');
	CHECK(!cfg->use_tls_cert || cfg->tls_cert[0] != '\0');
	CHECK(!(cfg->auth_pass[0] != '\0' && cfg->auth_pass_file[0] != '\0'));
	for (i = 0; i < cfg->add_header_count; i++) {
		CHECK(cfg->add_header[i] != NULL);
		CHECK(strlen(cfg->add_header[i]) <= SMTP_LINE_MAX);
		CHECK(no_controls(cfg->add_header[i]));
		CHECK(strchr(cfg->add_header[i], ':') != NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg;
	struct error err;
	size_t warnings = 0;
	int rc;

	/* On the heap: ASan sees an overrun of the struct, and it is big. */
	if ((cfg = malloc(sizeof(*cfg))) == NULL)
		return 0;
	error_clear(&err);
	rc = config_parse_buffer(cfg, "fuzz.conf", (const char *)data, size,
	    warned, &warnings, &err);
	check_terminated(cfg);
	TERMINATED(err.text);
	if (rc == ST_OK)
		check_ok(cfg);
	else {
		CHECK(rc == ST_CONFIG || rc == ST_OSERR);
		CHECK((int)err.status == rc && err.text[0] != '\0');
		CHECK(printable(err.text));
	}
	config_free(cfg);
	free(cfg);
	return 0;
}
