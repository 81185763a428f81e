/*
 * test_message.c: lineconv (fixed cases, every buffer boundary, random
 * inputs against invariants) and message_read (line ends, dots, header
 * edits, -t, limits, errors, memory for huge input), message_date and
 * message_new_qid.
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"

#define HOST	"host.example.org"
#define DATE	"Tue, 14 Nov 2023 22:13:20 +0000"
#define RECV	"Received: by " HOST " (postino, from userid 1000)\r\n" \
		"\tid 0123456789; " DATE "\r\n"
#define ADATE	"Date: " DATE "\r\n"
#define AMSGID	"Message-ID: <20231114221320.0123456789@example.org>\r\n"
#define AFROM	"From: Alice User <alice@example.org>\r\n"
#define ADDED	ADATE AMSGID AFROM

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN	1
#else
#define UNDER_ASAN	0
#endif

/* ------------------------------------------------------------ lineconv */

struct lcopts {
	int	 dot_stuff, end_at_dot, fold;
	size_t	 split;
};

static void
lc_setup(struct lineconv *lc, const struct lcopts *o)
{
	lineconv_init(lc, o->dot_stuff, o->split);
	lc->fold = o->fold;
	lc->end_at_dot = o->end_at_dot;
}

/*
 * Feed in[] in pieces of the given sizes (the last takes the rest), each
 * into an output buffer of exactly the documented minimum, so that ASan
 * sees any write past it. Returns a malloc'd, NUL-terminated result.
 */
static char *
lc_convert(const struct lcopts *o, const char *in, size_t len,
    const size_t *cuts, size_t ncuts, size_t *outlen, size_t *splits)
{
	struct lineconv lc;
	size_t cap = 7 * len + 64, total = 0, off = 0, i, n, got;
	char *res = malloc(cap), *buf;

	assert_non_null(res);
	lc_setup(&lc, o);
	for (i = 0; i <= ncuts; i++) {
		n = i < ncuts ? cuts[i] : len - off;
		buf = malloc(3 * n + 4);
		assert_non_null(buf);
		got = lineconv_feed(&lc, in + off, n, buf, 3 * n + 4);
		assert_true(got <= 3 * n + 4);
		memcpy(res + total, buf, got);
		total += got;
		off += n;
		free(buf);
	}
	buf = malloc(4);
	assert_non_null(buf);
	got = lineconv_finish(&lc, buf, 4);
	memcpy(res + total, buf, got);
	total += got;
	free(buf);
	res[total] = '\0';
	*outlen = total;
	if (splits != NULL)
		*splits = lc.splits;
	return res;
}

static char *
lc_whole(const struct lcopts *o, const char *in, size_t len, size_t *outlen)
{
	return lc_convert(o, in, len, NULL, 0, outlen, NULL);
}

static void
expect_lc(const struct lcopts *o, const char *in, const char *want)
{
	size_t n;
	char *got = lc_whole(o, in, strlen(in), &n);

	if (n != strlen(want) || memcmp(got, want, n) != 0)
		fail_msg("lineconv of \"%s\" gave \"%s\"", in, got);
	free(got);
}

static void
t_lc_line_ends(void **state)
{
	const struct lcopts o = { 0, 0, 0, 0 };

	(void)state;
	expect_lc(&o, "", "");
	expect_lc(&o, "a\nb\n", "a\r\nb\r\n");
	expect_lc(&o, "a\r\nb\r\n", "a\r\nb\r\n");
	expect_lc(&o, "a\r\nb\nc", "a\r\nb\r\nc\r\n");
	expect_lc(&o, "\n\n", "\r\n\r\n");
	/* A bare CR ends a line (issue 9: no bare CR on the wire). */
	expect_lc(&o, "a\rb\n", "a\r\nb\r\n");
	expect_lc(&o, "a\rb", "a\r\nb\r\n");
	/* CRs then LF: one line end, never \r\r\n nor a blank line. */
	expect_lc(&o, "a\r\r\n", "a\r\n");
	expect_lc(&o, "a\r\r\r\r\n", "a\r\n");
	/* CRs not before LF: one line each, a longer run counts two. */
	expect_lc(&o, "a\r\rb\n", "a\r\n\r\nb\r\n");
	expect_lc(&o, "a\r\r\r\rb\n", "a\r\n\r\nb\r\n");
	expect_lc(&o, "hello\r.\r\n", "hello\r\n.\r\n");
	expect_lc(&o, "\ra", "\r\na\r\n");
	expect_lc(&o, "a\r", "a\r\n");
	expect_lc(&o, "\r", "\r\n");
	expect_lc(&o, ".\n..\n", ".\r\n..\r\n");	/* no dot rules */
}

static void
t_lc_dots(void **state)
{
	const struct lcopts end = { 0, 1, 0, 0 }, stuff = { 1, 0, 0, 0 };
	size_t n;
	char *got;
	struct lineconv lc;
	char out[64];

	(void)state;
	expect_lc(&end, "a\n.\nb\n", "a\r\n");
	expect_lc(&end, "a\r\n.\r\nb\r\n", "a\r\n");
	expect_lc(&end, ".\n", "");
	expect_lc(&end, "..\n", "..\r\n");	/* kept, not unstuffed */
	expect_lc(&end, "..x\n.x\n", "..x\r\n.x\r\n");
	expect_lc(&end, ". \n", ". \r\n");
	expect_lc(&end, "a.\n", "a.\r\n");
	expect_lc(&end, ".\r\r\n", "");
	/* After a bare CR (a line end) "." is a line of its own. */
	expect_lc(&end, ".\rx\n", "");
	expect_lc(&end, "\r.\n", "\r\n");
	expect_lc(&end, "hello\r.\r\nafter\n", "hello\r\n");
	expect_lc(&end, "a\r.\r", "a\r\n");
	/* The smuggling shape: no bare CR, the "." line stuffed. */
	expect_lc(&stuff, "hello\r.\r\n", "hello\r\n..\r\n");
	expect_lc(&stuff, "a\r.\rMAIL\r\n", "a\r\n..\r\nMAIL\r\n");
	expect_lc(&end, "a\n.", "a\r\n");		/* "." as last line */
	expect_lc(&stuff, ".a\n..b\nc.\n", "..a\r\n...b\r\nc.\r\n");
	expect_lc(&stuff, ".", "..\r\n");
	expect_lc(&stuff, "\n.\n", "\r\n..\r\n");

	/* After the "." line nothing more is taken. */
	lineconv_init(&lc, 0, 0);
	lc.end_at_dot = 1;
	n = lineconv_feed(&lc, "x\n.\nmore\n", 9, out, sizeof(out));
	assert_int_equal(n, 3);
	assert_true(lc.ended);
	assert_int_equal(lineconv_feed(&lc, "y\n", 2, out, sizeof(out)), 0);
	assert_int_equal(lineconv_finish(&lc, out, sizeof(out)), 0);

	/* end_at_dot and dot_stuff together: "." ends, ".x" is stuffed. */
	{
		const struct lcopts both = { 1, 1, 0, 0 };

		got = lc_whole(&both, ".x\n.\n", 5, &n);
		assert_string_equal(got, "..x\r\n");
		free(got);
	}
}

static void
t_lc_split(void **state)
{
	const struct lcopts body = { 0, 0, 0, 998 }, hdr = { 0, 0, 1, 998 };
	const struct lcopts stuff = { 1, 0, 0, 998 };
	char in[4000], want[4100];
	size_t n, splits;
	char *got;

	(void)state;
	memset(in, 'x', sizeof(in));
	/* Exactly 998: untouched. */
	got = lc_convert(&body, in, 998, NULL, 0, &n, &splits);
	assert_int_equal(n, 1000);
	assert_int_equal(splits, 0);
	free(got);
	/* 1000: 998 + 2, or folded with a space. */
	got = lc_convert(&body, in, 1000, NULL, 0, &n, &splits);
	memset(want, 'x', 998);
	memcpy(want + 998, "\r\nxx\r\n", 7);
	assert_string_equal(got, want);
	assert_int_equal(splits, 1);
	free(got);
	got = lc_convert(&hdr, in, 1000, NULL, 0, &n, &splits);
	memcpy(want + 998, "\r\n xx\r\n", 8);
	assert_string_equal(got, want);
	free(got);
	/* 3000 in the header: 998, then " " + 997 each. */
	got = lc_convert(&hdr, in, 3000, NULL, 0, &n, &splits);
	assert_int_equal(splits, 3);
	assert_int_equal(n, 3000 + 3 * 3 + 2);
	free(got);
	/* A CR at the split point ends the line: no split, no \r\r\n. */
	in[997] = '\r';
	got = lc_convert(&body, in, 999, NULL, 0, &n, &splits);
	assert_int_equal(splits, 0);
	memset(want, 'x', 997);
	memcpy(want + 997, "\r\nx\r\n", 6);
	assert_string_equal(got, want);
	free(got);
	in[997] = 'x';
	/* A split line starting with '.' is stuffed on the wire. */
	in[998] = '.';
	got = lc_convert(&stuff, in, 1000, NULL, 0, &n, &splits);
	memset(want, 'x', 998);
	memcpy(want + 998, "\r\n..x\r\n", 8);
	assert_string_equal(got, want);
	free(got);
	in[998] = 'x';
	/* Data and CRs: as many lines as CRs, none split. */
	for (n = 0; n < 3000; n += 2) {
		in[n] = 'a';
		in[n + 1] = '\r';
	}
	got = lc_convert(&body, in, 3000, NULL, 0, &n, &splits);
	assert_int_equal(splits, 0);
	assert_int_equal(n, 1500 * 3);
	free(got);
}

/* Output invariants whatever the input. */
static void
check_invariants(const struct lcopts *o, const char *out, size_t n)
{
	size_t i, start = 0, len;

	if (n > 0) {
		assert_true(n >= 2);
		assert_memory_equal(out + n - 2, "\r\n", 2);
	}
	for (i = 0; i < n; i++) {
		/* No bare CR and no bare LF: CR and LF come only as CRLF. */
		if (out[i] == '\r')
			assert_true(i + 1 < n && out[i + 1] == '\n');
		if (out[i] == '\n')
			assert_true(i > 0 && out[i - 1] == '\r');
		if (out[i] == '\n' && i >= 2)
			assert_false(out[i - 2] == '\r');
		if (out[i] != '\n')
			continue;
		len = i - 1 - start;
		if (o->split != 0)
			assert_true(len <= o->split + (o->dot_stuff ? 1 : 0));
		if (o->dot_stuff && len > 0 && out[start] == '.')
			assert_true(len >= 2 && out[start + 1] == '.');
		/* (a split may leave "." alone on a line: that is data) */
		if (o->end_at_dot && !o->dot_stuff && o->split == 0)
			assert_false(len == 1 && out[start] == '.');
		start = i + 1;
	}
}

/*
 * The whole input at once is the reference; byte by byte and every
 * two-piece and (for short input) three-piece cut must give the same.
 */
static void
check_boundaries(const struct lcopts *o, const char *in, size_t len)
{
	size_t ref_n, n, i, j, *cuts;
	char *ref, *got;

	ref = lc_whole(o, in, len, &ref_n);
	check_invariants(o, ref, ref_n);
	cuts = malloc((len + 1) * sizeof(*cuts));
	assert_non_null(cuts);
	for (i = 0; i < len; i++)
		cuts[i] = 1;
	got = lc_convert(o, in, len, cuts, len, &n, NULL);
	assert_int_equal(n, ref_n);
	assert_memory_equal(got, ref, n);
	free(got);
	for (i = 0; i <= len; i++) {
		cuts[0] = i;
		got = lc_convert(o, in, len, cuts, 1, &n, NULL);
		assert_int_equal(n, ref_n);
		assert_memory_equal(got, ref, n);
		free(got);
	}
	for (i = 0; len <= 40 && i <= len; i++)
		for (j = 0; i + j <= len; j++) {
			cuts[0] = i;
			cuts[1] = j;
			got = lc_convert(o, in, len, cuts, 2, &n, NULL);
			assert_int_equal(n, ref_n);
			assert_memory_equal(got, ref, n);
			free(got);
		}
	free(cuts);
	free(ref);
}

static const struct lcopts combos[] = {
	{ 0, 0, 0, 0 }, { 0, 1, 0, 0 }, { 1, 0, 0, 0 }, { 1, 1, 0, 0 },
	{ 0, 0, 0, 5 }, { 0, 0, 1, 5 }, { 1, 0, 0, 5 }, { 0, 1, 1, 5 },
	{ 1, 1, 1, 4 }, { 1, 1, 0, 7 }, { 0, 0, 1, 998 }, { 1, 0, 0, 998 },
};

static void
t_lc_boundaries(void **state)
{
	static const char *const inputs[] = {
		"a\r\nb\nc\r\rd\r\r\r\n.\r\n..\n.x\r.\n\r.\r\n\r\r\n.",
		".\n", ".\r\n", "..\r\n", ".", "\r", "\r\n", "abcd\r",
		"abcdefghij\rk\r\rlmnop\n.abcdefghij.\n",
		"x\n.\r\r\rtail\nmore\n", "\n\n.\n\n",
		"abcd.\r\n.bcde\r\r\r\r\rfghijk\n",
	};
	char long_in[3000];
	size_t i, k;

	(void)state;
	for (k = 0; k < sizeof(combos) / sizeof(combos[0]); k++)
		for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
			check_boundaries(&combos[k], inputs[i],
			    strlen(inputs[i]));
	/* Around the real split point, with CR, LF and '.' near it. */
	memset(long_in, 'x', sizeof(long_in));
	long_in[996] = '\r';
	long_in[997] = '.';
	long_in[998] = '\r';
	long_in[999] = '\n';
	long_in[1000] = '.';
	long_in[1001] = '\n';
	long_in[1997] = '\r';
	long_in[2000] = '.';
	for (k = 0; k < sizeof(combos) / sizeof(combos[0]); k++)
		check_boundaries(&combos[k], long_in, sizeof(long_in));
}

static void
t_lc_random(void **state)
{
	static const char alpha[] = "ab.\r\n\r\n. ";
	char in[200];
	size_t k, i, n, ref_n, got_n, cuts[8], left;
	char *ref, *got;
	int round;

	(void)state;
	srandom(7);
	for (round = 0; round < 20000; round++) {
		const struct lcopts *o = &combos[(size_t)random() %
		    (sizeof(combos) / sizeof(combos[0]))];

		n = (size_t)random() % sizeof(in);
		for (i = 0; i < n; i++)
			in[i] = alpha[(size_t)random() % (sizeof(alpha) - 1)];
		ref = lc_whole(o, in, n, &ref_n);
		check_invariants(o, ref, ref_n);
		left = n;
		for (k = 0; k < 8; k++) {
			cuts[k] = left == 0 ? 0 : (size_t)random() % (left + 1);
			left -= cuts[k];
		}
		got = lc_convert(o, in, n, cuts, 8, &got_n, NULL);
		assert_int_equal(got_n, ref_n);
		assert_memory_equal(got, ref, ref_n);
		free(got);
		free(ref);
	}
}

/*
 * The byte-at-a-time lineconv this file's lineconv replaced (issue 11:
 * memchr for CR and LF, CRLF in one step), kept as the reference: the
 * two must agree on every input, cut anywhere, in every mode.
 */
static void
ref_init(struct lineconv *lc, int dot_stuff, size_t split_at)
{
	memset(lc, 0, sizeof(*lc));
	lc->dot_stuff = dot_stuff;
	lc->at_line_start = 1;
	lc->input_bol = 1;
	lc->split_at = split_at != 0 && split_at < 4 ? 4 :
	    split_at;
}

/* A new output line in the middle of an input line. */
static size_t
ref_split(struct lineconv *lc, char *out, size_t o)
{
	out[o++] = '\r';
	out[o++] = '\n';
	lc->splits++;
	if (lc->fold) {
		out[o++] = ' ';
		lc->line_len = 1;
		lc->at_line_start = 0;
	} else {
		lc->line_len = 0;
		lc->at_line_start = 1;
	}
	return o;
}

/* One data byte (never CR or LF: those are line ends). */
static size_t
ref_data(struct lineconv *lc, char c, char *out, size_t o)
{
	if (lc->split_at != 0 && lc->line_len >= lc->split_at)
		o = ref_split(lc, out, o);
	if (lc->at_line_start && c == '.' && lc->dot_stuff)
		out[o++] = '.';
	out[o++] = c;
	lc->line_len++;
	lc->at_line_start = 0;
	return o;
}

/* One line end; after a held "." line (end_at_dot) it ends input. */
static size_t
ref_eol(struct lineconv *lc, char *out, size_t o)
{
	if (lc->pending_dot) {
		lc->pending_dot = 0;
		lc->pending_cr = 0;
		lc->ended = 1;
		return o;
	}
	out[o++] = '\r';
	out[o++] = '\n';
	lc->line_len = 0;
	lc->at_line_start = 1;
	lc->input_bol = 1;
	return o;
}

/*
 * The held CRs were not followed by LF: each ends a line (CR-only text
 * from old tools). At most two are held, so a longer run of CRs ends two
 * lines, which keeps the output bound without unbounded lookahead.
 */
static size_t
ref_cr_lines(struct lineconv *lc, char *out, size_t o)
{
	int n = lc->pending_cr;

	lc->pending_cr = 0;
	while (n-- > 0 && !lc->ended)
		o = ref_eol(lc, out, o);
	return o;
}

/* How many bytes from p can be copied as they are (the fast path). */
static size_t
ref_run(const struct lineconv *lc, const char *p, size_t n)
{
	size_t k = 0;

	if (lc->at_line_start && lc->dot_stuff && p[0] == '.')
		return 0;
	if (lc->split_at != 0) {
		if (lc->line_len >= lc->split_at)
			return 0;
		if (lc->split_at - lc->line_len < n)
			n = lc->split_at - lc->line_len;
	}
	while (k < n && p[k] != '\r' && p[k] != '\n')
		k++;
	return k;
}

/*
 * No CR without LF and no LF without CR leaves here (a hub that ends
 * DATA on a bare CR or LF must not see a second transaction: "SMTP
 * smuggling"). LF ends a line, and so does a run of CRs followed by LF
 * ("\r\r\n" from text written twice in text mode is one line end, not a
 * blank line that would end the header early). A CR not followed by LF
 * ends a line too, so the header scan sees exactly the lines the wire
 * carries. A CR is held until the next byte says which case it is.
 */
static size_t
ref_feed(struct lineconv *lc, const char *in, size_t inlen, char *out,
    size_t outcap)
{
	size_t i = 0, o = 0, run;
	char c;

	if (outcap < 3 * inlen + 4)
		abort();	/* a caller's bug: never write past out */
	while (i < inlen && !lc->ended) {
		c = in[i];
		if (c == '\r') {
			if (lc->pending_cr < 2)
				lc->pending_cr++;
			i++;
		} else if (c == '\n') {
			lc->pending_cr = 0;
			o = ref_eol(lc, out, o);
			i++;
		} else if (lc->pending_cr > 0) {
			o = ref_cr_lines(lc, out, o);	/* then c, again */
		} else if (c == '.' && lc->input_bol && lc->end_at_dot) {
			lc->pending_dot = 1;
			lc->input_bol = 0;
			i++;
		} else {
			if (lc->pending_dot) {
				lc->pending_dot = 0;
				o = ref_data(lc, '.', out, o);
			}
			lc->input_bol = 0;
			if ((run = ref_run(lc, in + i, inlen - i)) > 0) {
				memcpy(out + o, in + i, run);
				o += run;
				i += run;
				lc->line_len += run;
				lc->at_line_start = 0;
			} else
				o = ref_data(lc, in[i++], out, o);
		}
	}
	return o;
}

/* A "." alone on the last line ends input like ".\n"; CRs end the line. */
static size_t
ref_finish(struct lineconv *lc, char *out, size_t outcap)
{
	if (outcap < 4)
		abort();
	if (lc->ended)
		return 0;
	if (lc->pending_dot) {
		lc->pending_dot = 0;
		lc->ended = 1;
		return 0;
	}
	if (!lc->input_bol || lc->pending_cr > 0) {
		lc->pending_cr = 0;
		return ref_eol(lc, out, 0);
	}
	return 0;
}

static void
t_lc_same_as_reference(void **state)
{
	static const char alpha[] = "ab.\r\n\r\n. xyz";
	char in[300], a[3 * 300 + 8], b[3 * 300 + 8];
	size_t k, i, n, off, cut, a_n, b_n;
	struct lineconv x, y;
	int round;

	(void)state;
	srandom(11);
	for (round = 0; round < 40000; round++) {
		const struct lcopts *o = &combos[(size_t)random() %
		    (sizeof(combos) / sizeof(combos[0]))];

		n = (size_t)random() % sizeof(in);
		for (i = 0; i < n; i++)
			in[i] = alpha[(size_t)random() % (sizeof(alpha) - 1)];
		lc_setup(&x, o);
		ref_init(&y, o->dot_stuff, o->split);
		y.fold = o->fold;
		y.end_at_dot = o->end_at_dot;
		a_n = b_n = 0;
		for (off = 0, k = 0; off < n; off += cut, k++) {
			cut = 1 + (size_t)random() % (k % 3 == 0 ? 4 : n - off);
			if (cut > n - off)
				cut = n - off;
			a_n += lineconv_feed(&x, in + off, cut, a + a_n,
			    3 * cut + 4);
			b_n += ref_feed(&y, in + off, cut, b + b_n, 3 * cut + 4);
		}
		a_n += lineconv_finish(&x, a + a_n, 4);
		b_n += ref_finish(&y, b + b_n, 4);
		assert_int_equal(a_n, b_n);
		assert_memory_equal(a, b, a_n);
		assert_int_equal(x.splits, y.splits);
		assert_int_equal(x.ended, y.ended);
	}
}

/* --------------------------------------------------------- message_read */

struct fixture {
	char	 dir[64];
};

struct result {
	int		 rc;
	struct error	 err;
	struct message	 msg;
	char		*spool;
	size_t		 len;
};

static void
default_opts(struct msgopts *o)
{
	memset(o, 0, sizeof(*o));
	o->domain = "example.org";
	o->hostname = HOST;
	o->default_from = "alice@example.org";
	o->full_name = "Alice User";
	o->qid = "0123456789";
	o->uid = 1000;
	o->now = 1700000000;
}

static int
fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	(void)strlcpy(f->dir, "/tmp/test_message.XXXXXX", sizeof(f->dir));
	if (mkdtemp(f->dir) == NULL)
		return -1;
	*state = f;
	return 0;
}

static int
fixture_teardown(void **state)
{
	struct fixture *f = *state;

	(void)rmdir(f->dir);
	free(f);
	return 0;
}

/* The spool directory must be left empty: the spool file was unnamed. */
static void
assert_dir_empty(const char *dir)
{
	char cmd[128];

	(void)snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s)\"", dir);
	assert_int_equal(system(cmd), 0);
}

static void
read_spool(struct result *r)
{
	struct stat st;
	ssize_t n;

	assert_int_equal(fstat(r->msg.fd, &st), 0);
	assert_int_equal(st.st_size, r->msg.size);
	assert_int_equal(st.st_nlink, 0);
	assert_int_equal(lseek(r->msg.fd, 0, SEEK_CUR), 0);
	r->len = (size_t)st.st_size;
	r->spool = malloc(r->len + 1);
	assert_non_null(r->spool);
	n = pread(r->msg.fd, r->spool, r->len, 0);
	assert_int_equal(n, (ssize_t)r->len);
	r->spool[r->len] = '\0';
	/* No NUL (dropped) and so no early end for the string checks. */
	assert_int_equal(strlen(r->spool), r->len);
}

/* Run message_read over in[] given through a temporary file. */
static void
run_len(const struct fixture *f, const struct msgopts *o, const char *in,
    size_t len, struct result *r)
{
	char path[128];
	int fd;

	memset(r, 0, sizeof(*r));
	(void)snprintf(path, sizeof(path), "%s/in.XXXXXX", f->dir);
	assert_true((fd = mkstemp(path)) != -1);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(write(fd, in, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	error_clear(&r->err);
	r->rc = message_read(fd, f->dir, o, &r->msg, &r->err);
	(void)close(fd);
	assert_dir_empty(f->dir);
	if (r->rc == ST_OK)
		read_spool(r);
	else
		assert_int_equal(r->msg.fd, -1);
}

static void
run(const struct fixture *f, const struct msgopts *o, const char *in,
    struct result *r)
{
	run_len(f, o, in, strlen(in), r);
}

static void
result_free(struct result *r)
{
	free(r->spool);
	message_free(&r->msg);
	assert_int_equal(r->msg.fd, -1);
}

/* Run with default options and compare the whole spool. */
static void
expect_spool(void **state, const char *in, const char *want)
{
	struct msgopts o;
	struct result r;

	default_opts(&o);
	run(*state, &o, in, &r);
	if (r.rc != ST_OK)
		fail_msg("\"%s\": %s", in, r.err.text);
	assert_string_equal(r.spool, want);
	result_free(&r);
}

static size_t
count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (; (hay = strstr(hay, needle)) != NULL; hay++)
		n++;
	return n;
}

static void
t_line_ends(void **state)
{
	static const char want[] = RECV "Subject: s\r\n" ADDED "\r\n"
	    "a\r\nb\r\n";

	expect_spool(state, "Subject: s\n\na\nb\n", want);
	expect_spool(state, "Subject: s\r\n\r\na\r\nb\r\n", want);
	expect_spool(state, "Subject: s\r\n\na\r\nb\n", want);
	/* PHP >= 8: CRLF headers, LF body. */
	expect_spool(state, "Subject: s\r\n\r\na\nb\n", want);
	/* No final newline. */
	expect_spool(state, "Subject: s\n\na\nb", want);
	/* A bare CR ends a line. */
	expect_spool(state, "Subject: s\n\na\rb\n",
	    RECV "Subject: s\r\n" ADDED "\r\na\r\nb\r\n");
	/* CRs before LF are one line end: the header does not end early. */
	expect_spool(state, "Subject: s\r\r\nX-A: 1\r\r\n\r\r\nb\r\r\n",
	    RECV "Subject: s\r\nX-A: 1\r\n" ADDED "\r\nb\r\n");
}

static void
expect_rcpts(const struct result *r, const char *const *want)
{
	size_t i;

	for (i = 0; want[i] != NULL; i++) {
		if (i >= r->msg.header_rcpts.n)
			fail_msg("missing recipient %s", want[i]);
		assert_string_equal(r->msg.header_rcpts.v[i], want[i]);
	}
	assert_int_equal(r->msg.header_rcpts.n, i);
}

#define RCPTS(...)	((const char *const []){ __VA_ARGS__, NULL })

/*
 * CR-only text (old tools) is read as lines, and the header scan sees the
 * same lines as the wire: a field after a bare CR is a field (a Bcc: is
 * removed and, with -t, collected), never text only the hub would split.
 */
static void
t_cr_only(void **state)
{
	struct msgopts o;
	struct result r;
	char in[3000];
	size_t i;

	expect_spool(state, "Subject: s\rX-A: 1\r\rbody1\rbody2\r",
	    RECV "Subject: s\r\nX-A: 1\r\n" ADDED "\r\nbody1\r\nbody2\r\n");
	default_opts(&o);
	o.extract_rcpts = 1;
	run(*state, &o, "To: a@x\rBcc: evil@x\r\nSubject: s\n\nb\n", &r);
	assert_int_equal(r.rc, ST_OK);
	expect_rcpts(&r, RCPTS("a@x", "evil@x"));
	assert_null(strstr(r.spool, "evil"));
	assert_null(strstr(r.spool, "Bcc"));
	result_free(&r);

	default_opts(&o);
	memcpy(in, "Subject: s\n\n", 12);
	for (i = 12; i < sizeof(in); i += 2) {
		in[i] = 'a';
		in[i + 1] = '\r';
	}
	run_len(*state, &o, in, sizeof(in), &r);
	assert_int_equal(r.rc, ST_OK);
	/* One line per CR, none split, no CR but before LF. */
	assert_int_equal(r.msg.lines_split, 0);
	assert_int_equal(count(strstr(r.spool, "\r\n\r\n") + 4, "a\r\n"),
	    (sizeof(in) - 12) / 2);
	assert_int_equal(count(r.spool, "\r"), count(r.spool, "\r\n"));
	result_free(&r);
}

/* "hello\r.\r\n": the "." is a line; it ends input, or is data with -i. */
static void
t_cr_dot(void **state)
{
	static const char in[] = "Subject: s\n\nhello\r.\r\nMAIL FROM:<e@x>\n";
	struct msgopts o;
	struct result r;

	expect_spool(state, in, RECV "Subject: s\r\n" ADDED "\r\nhello\r\n");
	default_opts(&o);
	o.ignore_dots = 1;
	run(*state, &o, in, &r);
	assert_int_equal(r.rc, ST_OK);
	assert_string_equal(r.spool, RECV "Subject: s\r\n" ADDED
	    "\r\nhello\r\n.\r\nMAIL FROM:<e@x>\r\n");
	assert_int_equal(count(r.spool, "\r"), count(r.spool, "\r\n"));
	result_free(&r);
}

static void
t_shapes(void **state)
{
	expect_spool(state, "", RECV ADDED "\r\n");
	expect_spool(state, "Subject: s\n", RECV "Subject: s\r\n" ADDED
	    "\r\n");
	expect_spool(state, "Subject: s", RECV "Subject: s\r\n" ADDED "\r\n");
	expect_spool(state, "\n", RECV ADDED "\r\n");
	expect_spool(state, "\nbody\n", RECV ADDED "\r\nbody\r\n");
	/* No headers at all: ours, a blank line, the body. */
	expect_spool(state, "hello\nworld\n", RECV ADDED "\r\nhello\r\n"
	    "world\r\n");
	/* The header block ends at a line that is not a header. */
	expect_spool(state, "Subject: s\nthis is body\nX: y\n",
	    RECV "Subject: s\r\n" ADDED "\r\nthis is body\r\nX: y\r\n");
	expect_spool(state, "Subject: s\n\n\nb\n",
	    RECV "Subject: s\r\n" ADDED "\r\n\r\nb\r\n");
	expect_spool(state, " starts with space\n",
	    RECV ADDED "\r\n starts with space\r\n");
	expect_spool(state, ":empty name\n", RECV ADDED "\r\n:empty name\r\n");
	/* A bare CR at a line start is an empty line: the header ends. */
	expect_spool(state, "Subject: s\n\rx\n",
	    RECV "Subject: s\r\n" ADDED "\r\nx\r\n");
	/* Continuations stay with their field; obsolete "Name :" works. */
	expect_spool(state, "Subject: a\n b\n\tc\nX-A : 1\n\nb\n",
	    RECV "Subject: a\r\n b\r\n\tc\r\nX-A : 1\r\n" ADDED "\r\nb\r\n");
}

static void
t_dots(void **state)
{
	struct msgopts o;
	struct result r;

	expect_spool(state, "Subject: s\n\na\n.\nb\n",
	    RECV "Subject: s\r\n" ADDED "\r\na\r\n");
	expect_spool(state, "Subject: s\r\n\r\na\r\n.\r\nb\r\n",
	    RECV "Subject: s\r\n" ADDED "\r\na\r\n");
	expect_spool(state, "Subject: s\n\n..x\n.y\n. \n",
	    RECV "Subject: s\r\n" ADDED "\r\n..x\r\n.y\r\n. \r\n");
	/* In the header block too. */
	expect_spool(state, "Subject: s\n.\nTo: x@y\n",
	    RECV "Subject: s\r\n" ADDED "\r\n");
	/* -i: "." is data. */
	default_opts(&o);
	o.ignore_dots = 1;
	run(*state, &o, "Subject: s\n\na\n.\nb\n..c\n", &r);
	assert_int_equal(r.rc, ST_OK);
	assert_string_equal(r.spool, RECV "Subject: s\r\n" ADDED
	    "\r\na\r\n.\r\nb\r\n..c\r\n");
	result_free(&r);
}

/* The writer after "." must not die of SIGPIPE: the rest is drained. */
static void
t_dot_drain(void **state)
{
	const struct fixture *f = *state;
	struct msgopts o;
	struct message m;
	struct error err;
	char chunk[4096];
	int p[2], status;
	pid_t pid;
	size_t i;

	assert_int_equal(pipe(p), 0);
	if ((pid = fork()) == 0) {
		(void)close(p[0]);
		(void)signal(SIGPIPE, SIG_DFL);
		memset(chunk, 'z', sizeof(chunk));
		chunk[sizeof(chunk) - 1] = '\n';
		if (write(p[1], "Subject: s\n\nbody\n.\n", 19) != 19)
			_exit(2);
		for (i = 0; i < 256; i++)
			if (write(p[1], chunk, sizeof(chunk)) !=
			    (ssize_t)sizeof(chunk))
				_exit(3);
		_exit(0);
	}
	assert_true(pid > 0);
	(void)close(p[1]);
	default_opts(&o);
	error_clear(&err);
	assert_int_equal(message_read(p[0], f->dir, &o, &m, &err), ST_OK);
	(void)close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(m.size, (off_t)(strlen(RECV "Subject: s\r\n" ADDED
	    "\r\nbody\r\n")));
	message_free(&m);
}

static long long
elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - since->tv_sec) * 1000LL +
	    (now.tv_nsec - since->tv_nsec) / 1000000;
}

/*
 * A writer that keeps stdin open after "." and waits for us to exit must
 * not deadlock: the drain gives up after MESSAGE_DRAIN_MS in all, even
 * when the writer trickles a byte now and then.
 */
static void
t_dot_drain_deadline(void **state)
{
	const struct fixture *f = *state;
	struct msgopts o;
	struct message m;
	struct error err;
	struct timespec start;
	int p[2], status;
	pid_t pid;
	long long took;

	assert_int_equal(pipe(p), 0);
	if ((pid = fork()) == 0) {
		(void)close(p[0]);
		if (write(p[1], "Subject: s\n\nbody\n.\n", 19) != 19)
			_exit(2);
		for (;;) {	/* killed by the parent */
			(void)usleep(200000);
			if (write(p[1], "z", 1) != 1)
				_exit(3);
		}
	}
	assert_true(pid > 0);
	(void)close(p[1]);
	default_opts(&o);
	error_clear(&err);
	(void)clock_gettime(CLOCK_MONOTONIC, &start);
	assert_int_equal(message_read(p[0], f->dir, &o, &m, &err), ST_OK);
	took = elapsed_ms(&start);
	(void)kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	(void)close(p[0]);
	assert_true(took >= MESSAGE_DRAIN_MS - 100);
	assert_true(took < MESSAGE_DRAIN_MS + 2000);
	assert_int_equal(m.size, (off_t)(strlen(RECV "Subject: s\r\n" ADDED
	    "\r\nbody\r\n")));
	message_free(&m);
}

static void
t_mbox_from(void **state)
{
	expect_spool(state, "From foo@bar Mon Nov 13 00:00:00 2023\n"
	    "Subject: s\n\nb\n", RECV "Subject: s\r\n" ADDED "\r\nb\r\n");
	expect_spool(state, ">From foo@bar\nSubject: s\n\nb\n",
	    RECV "Subject: s\r\n" ADDED "\r\nb\r\n");
	expect_spool(state, "From x\n\nb\n", RECV ADDED "\r\nb\r\n");
	/* Only before the first header, and only the first line. */
	expect_spool(state, "Subject: s\nFrom x\n",
	    RECV "Subject: s\r\n" ADDED "\r\nFrom x\r\n");
	expect_spool(state, "From x\nFrom y\n", RECV ADDED "\r\nFrom y\r\n");
	/* "From:" is a header, not an mbox line. */
	expect_spool(state, "From: b@x\n\nb\n",
	    RECV "From: b@x\r\n" ADATE AMSGID "\r\nb\r\n");
}

static void
t_drop_headers(void **state)
{
	expect_spool(state, "To: a@x\nBcc: secret@x\nSubject: s\n"
	    "Return-Path: <r@x>\nContent-Length: 12\n\nb\n",
	    RECV "To: a@x\r\nSubject: s\r\n" ADDED "\r\nb\r\n");
	/* Resent-Bcc goes too (and makes resent mode). */
	expect_spool(state, "Resent-Bcc: rb@x\nResent-To: r@x\n\nb\n",
	    RECV "Resent-To: r@x\r\n" "Resent-Date: " DATE "\r\n"
	    "Resent-Message-ID: <20231114221320.0123456789@example.org>\r\n"
	    "Resent-From: Alice User <alice@example.org>\r\n\r\nb\r\n");
	expect_spool(state, "BCC: s@x\ncontent-length: 1\nreturn-PATH: <>\n"
	    "bcc : obsolete@x\n\nb\n", RECV ADDED "\r\nb\r\n");
	/* A folded Bcc goes whole, continuation lines included. */
	expect_spool(state, "Bcc: a@x,\n b@x,\n\tc@x\nSubject: s\n\nb\n",
	    RECV "Subject: s\r\n" ADDED "\r\nb\r\n");
	expect_spool(state, "Subject: s\nBcc: a@x,\n b@x\n",
	    RECV "Subject: s\r\n" ADDED "\r\n");
	/* Names that merely start alike are kept. */
	expect_spool(state, "Bcc-Info: x\nX-Bcc: y\n\nb\n",
	    RECV "Bcc-Info: x\r\nX-Bcc: y\r\n" ADDED "\r\nb\r\n");
}

static void
t_qualify_headers(void **state)
{
	expect_spool(state, "From: root (Cron Daemon)\nTo: root, b@x\n"
	    "Cc: \"Doe, J\" <jd>\nReply-To: Logwatch\nSender: s\n"
	    "Subject: root\nX-To: root\n\nTo: root\n",
	    RECV "From: root@example.org (Cron Daemon)\r\n"
	    "To: root@example.org, b@x\r\n"
	    "Cc: \"Doe, J\" <jd@example.org>\r\n"
	    "Reply-To: Logwatch@example.org\r\n"
	    "Sender: s@example.org\r\n"
	    "Subject: root\r\nX-To: root\r\n" ADATE AMSGID "\r\nTo: root\r\n");
	expect_spool(state, "Resent-From: r\nResent-To: a,\n b\n"
	    "Resent-Cc: undisclosed-recipients:;\nResent-Sender: s\n"
	    "Resent-Reply-To: t\nDate: d\nMessage-ID: <m@x>\nFrom: f@x\n",
	    RECV "Resent-From: r@example.org\r\n"
	    "Resent-To: a@example.org,\r\n b@example.org\r\n"
	    "Resent-Cc: undisclosed-recipients:;\r\n"
	    "Resent-Sender: s@example.org\r\n"
	    "Resent-Reply-To: t@example.org\r\n"
	    "Date: d\r\nMessage-ID: <m@x>\r\nFrom: f@x\r\n"
	    "Resent-Date: " DATE "\r\n"
	    "Resent-Message-ID: <20231114221320.0123456789@example.org>\r\n"
	    "\r\n");
	/* Unparsable: kept as written. */
	expect_spool(state, "To: John Smith\nCc: \"open\n\n",
	    RECV "To: John Smith\r\nCc: \"open\r\n" ADDED "\r\n");
	/* Empty To: (PHP with to="") stays, nothing is added to it. */
	expect_spool(state, "To: \n\n", RECV "To: \r\n" ADDED "\r\n");
}

static void
t_added_headers(void **state)
{
	static const char *const ah[] = { "X-Added: 1", "X-Two: 2" };
	struct msgopts o;
	struct result r;

	/* Present ones are kept and never duplicated; To: is never added. */
	expect_spool(state, "date: Mon, 1 Jan 2024 00:00:00 +0000\n"
	    "MESSAGE-ID: <a@b>\nfrom: b@x\n\nb\n",
	    RECV "date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	    "MESSAGE-ID: <a@b>\r\nfrom: b@x\r\n\r\nb\r\n");
	default_opts(&o);
	o.add_headers = ah;
	o.add_header_count = 2;
	run(*state, &o, "Subject: s\n\nb\n", &r);
	assert_int_equal(r.rc, ST_OK);
	assert_string_equal(r.spool, RECV "Subject: s\r\nX-Added: 1\r\n"
	    "X-Two: 2\r\n" ADDED "\r\nb\r\n");
	assert_int_equal(count(r.spool, "\nDate:"), 1);
	assert_int_equal(count(r.spool, "\nMessage-ID:"), 1);
	assert_int_equal(count(r.spool, "\nFrom:"), 1);
	assert_int_equal(count(r.spool, "To:"), 0);
	result_free(&r);
}

static void
expect_from_line(void **state, const char *full_name, const char *from,
    const char *want)
{
	struct msgopts o;
	struct result r;
	char *line, *end;

	default_opts(&o);
	o.full_name = full_name;
	o.default_from = from;
	run(*state, &o, "Subject: s\n\nb\n", &r);
	assert_int_equal(r.rc, ST_OK);
	assert_non_null(line = strstr(r.spool, "\r\nFrom: "));
	line += 2;
	assert_non_null(end = strstr(line, "\r\n"));
	*end = '\0';
	assert_string_equal(line, want);
	/* Exactly our lines: Received (2), Subject, Date, Message-ID, From. */
	*end = '\r';
	assert_int_equal(count(r.spool, "\r\n"), 6 + 2);
	result_free(&r);
}

static void
t_from_name(void **state)
{
	expect_from_line(state, "Alice User", "alice@example.org",
	    "From: Alice User <alice@example.org>");
	expect_from_line(state, "CronDaemon", "c@x", "From: CronDaemon <c@x>");
	expect_from_line(state, "John Q. Public", "j@x",
	    "From: \"John Q. Public\" <j@x>");
	expect_from_line(state, "Doe, John", "j@x",
	    "From: \"Doe, John\" <j@x>");
	expect_from_line(state, "a \"b\" \\c", "j@x",
	    "From: \"a \\\"b\\\" \\\\c\" <j@x>");
	expect_from_line(state, "(Cron Daemon)", "j@x",
	    "From: \"(Cron Daemon)\" <j@x>");
	expect_from_line(state, "  padded  ", "j@x", "From: padded <j@x>");
	expect_from_line(state, "", "j@x", "From: <j@x>");
	expect_from_line(state, NULL, "j@x", "From: <j@x>");
	expect_from_line(state, "J\xc3\xb6rg", "j@x",
	    "From: J\xc3\xb6rg <j@x>");
	/* Header injection through -F: no new line, no Bcc header. */
	expect_from_line(state, "Evil\r\nBcc: victim@x", "j@x",
	    "From: \"Evil  Bcc: victim@x\" <j@x>");
	expect_from_line(state, "Evil\nTo: v@x", "j@x",
	    "From: \"Evil To: v@x\" <j@x>");
	/* Null sender and unqualified sender. */
	expect_from_line(state, "", "", "From: <MAILER-DAEMON@example.org>");
	expect_from_line(state, "", NULL, "From: <MAILER-DAEMON@example.org>");
	expect_from_line(state, "Bob", "bob", "From: Bob <bob@example.org>");
}

static void
t_received(void **state)
{
	struct msgopts o;
	struct result r;

	default_opts(&o);
	o.hostname = "evil\r\nX-Injected: 1";
	o.uid = 0;
	run(*state, &o, "", &r);
	assert_int_equal(r.rc, ST_OK);
	assert_true(strncmp(r.spool, "Received: by evil  X-Injected: 1 "
	    "(postino, from userid 0)\r\n\tid 0123456789; " DATE "\r\n",
	    strlen("Received: by evil  X-Injected: 1 (postino, from userid "
	    "0)\r\n\tid 0123456789; " DATE "\r\n")) == 0);
	result_free(&r);
}


static void
t_extract(void **state)
{
	struct msgopts o;
	struct result r;
	static const char in[] =
	    "From: Logwatch\nTo: root\nTo: ops@x\n"
	    "Cc: a@x,\n b@y,\n\t\"Doe, John\" <jd@x>\n"
	    "cc: Team: t1@x, t2@x;, undisclosed-recipients:;\n"
	    "Bcc: hidden@x, ops@X\nSubject: s\n\nTo: body@x\n";

	default_opts(&o);
	o.extract_rcpts = 1;
	run(*state, &o, in, &r);
	assert_int_equal(r.rc, ST_OK);
	expect_rcpts(&r, RCPTS("root", "ops@x", "a@x", "b@y", "jd@x", "t1@x",
	    "t2@x", "hidden@x"));
	assert_false(r.msg.resent);
	assert_null(strstr(r.spool, "hidden"));
	assert_true(r.msg.had_from);
	assert_string_equal(r.msg.from_addr, "Logwatch@example.org");
	result_free(&r);

	/* Without -t nothing is collected; had_from still is. */
	default_opts(&o);
	run(*state, &o, in, &r);
	assert_int_equal(r.rc, ST_OK);
	assert_int_equal(r.msg.header_rcpts.n, 0);
	assert_true(r.msg.had_from);
	result_free(&r);

	/* PHPMailer's "To: undisclosed-recipients:;" plus Bcc. */
	default_opts(&o);
	o.extract_rcpts = 1;
	run(*state, &o, "To: undisclosed-recipients:;\nBcc: a@x\n\n", &r);
	assert_int_equal(r.rc, ST_OK);
	expect_rcpts(&r, RCPTS("a@x"));
	result_free(&r);
}

static void
t_extract_errors(void **state)
{
	struct msgopts o;
	struct result r;

	default_opts(&o);
	o.extract_rcpts = 1;
	run(*state, &o, "To: ok@x\nCc: John Smith\n\n", &r);
	assert_int_equal(r.rc, ST_DATA);
	assert_non_null(strstr(r.err.text, "Cc: header"));
	assert_non_null(strstr(r.err.text, "several words"));
	result_free(&r);
	run(*state, &o, "Bcc: \"open\n\n", &r);
	assert_int_equal(r.rc, ST_DATA);
	assert_non_null(strstr(r.err.text, "Bcc: header"));
	result_free(&r);
	/* Resent mode uses only Resent-*: a broken To: does not matter. */
	run(*state, &o, "To: John Smith\nResent-To: r@x\n\n", &r);
	assert_int_equal(r.rc, ST_OK);
	expect_rcpts(&r, RCPTS("r@x"));
	result_free(&r);
	run(*state, &o, "To: t@x\nResent-Cc: (open\n\n", &r);
	assert_int_equal(r.rc, ST_DATA);
	assert_non_null(strstr(r.err.text, "Resent-Cc: header"));
	result_free(&r);
}

static void
t_resent(void **state)
{
	struct msgopts o;
	struct result r;

	default_opts(&o);
	o.extract_rcpts = 1;
	run(*state, &o, "To: t@x\nCc: c@x\nResent-To: r1@x\n"
	    "Resent-Cc: r2@x,\n r1@X\nResent-Bcc: rb@x\nSubject: s\n\nb\n", &r);
	assert_int_equal(r.rc, ST_OK);
	assert_true(r.msg.resent);
	expect_rcpts(&r, RCPTS("r1@x", "r2@x", "rb@x"));
	/* Resent-* are added instead of Date/Message-ID/From. */
	assert_string_equal(r.spool, RECV "To: t@x\r\nCc: c@x\r\n"
	    "Resent-To: r1@x\r\nResent-Cc: r2@x,\r\n r1@X\r\nSubject: s\r\n"
	    "Resent-Date: " DATE "\r\n"
	    "Resent-Message-ID: <20231114221320.0123456789@example.org>\r\n"
	    "Resent-From: Alice User <alice@example.org>\r\n\r\nb\r\n");
	result_free(&r);
	/* Resent mode is noted without -t too. */
	default_opts(&o);
	run(*state, &o, "Resent-Bcc: x@y\n\n", &r);
	assert_int_equal(r.rc, ST_OK);
	assert_true(r.msg.resent);
	assert_int_equal(r.msg.header_rcpts.n, 0);
	result_free(&r);
	/* Resent-From alone is not resent mode. */
	run(*state, &o, "Resent-From: x@y\n\n", &r);
	assert_int_equal(r.rc, ST_OK);
	assert_false(r.msg.resent);
	assert_non_null(strstr(r.spool, ADDED));
	result_free(&r);
}

static void
t_from_addr(void **state)
{
	struct msgopts o;
	struct result r;

	default_opts(&o);
	run(*state, &o, "From: \"Doe, J\" <jd@x>, b@y\nFrom: second@x\n\n",
	    &r);
	assert_int_equal(r.rc, ST_OK);
	assert_true(r.msg.had_from);
	assert_string_equal(r.msg.from_addr, "jd@x");
	result_free(&r);
	/* Unparsable or empty: present, but no usable address. */
	run(*state, &o, "From: John Smith\n\n", &r);
	assert_int_equal(r.rc, ST_OK);
	assert_true(r.msg.had_from);
	assert_string_equal(r.msg.from_addr, "");
	assert_int_equal(count(r.spool, "From:"), 1);
	result_free(&r);
	run(*state, &o, "Subject: s\n\n", &r);
	assert_false(r.msg.had_from);
	assert_string_equal(r.msg.from_addr, "");
	result_free(&r);
}

static void
t_nul_bytes(void **state)
{
	static const char in[] = "Sub\0ject: s\n\nb\0o\0dy\n\0";
	struct msgopts o;
	struct result r;

	default_opts(&o);
	run_len(*state, &o, in, sizeof(in) - 1, &r);
	assert_int_equal(r.rc, ST_OK);
	assert_int_equal(r.msg.nul_bytes, 4);
	assert_string_equal(r.spool, RECV "Subject: s\r\n" ADDED
	    "\r\nbody\r\n");
	result_free(&r);
}

static void
t_long_lines(void **state)
{
	struct msgopts o;
	struct result r;
	char *in, *p, *q;
	size_t i;

	default_opts(&o);
	in = malloc(5002);
	assert_non_null(in);
	/* Header of 2000 octets: folded. Body line of 3000: split. */
	memcpy(in, "Subject: ", 9);
	memset(in + 9, 's', 1991);
	memcpy(in + 2000, "\n\n", 2);
	memset(in + 2002, 'b', 3000);
	run_len(*state, &o, in, 5002, &r);
	assert_int_equal(r.rc, ST_OK);
	assert_int_equal(r.msg.lines_split, 2 + 3);
	p = strstr(r.spool, "Subject: ");
	assert_non_null(p);
	assert_memory_equal(p + 998, "\r\n s", 4);
	assert_memory_equal(p + 998 + 2 + 998, "\r\n s", 4);
	q = strstr(r.spool, "\r\n\r\n") + 4;
	for (i = 0; i < 3; i++)
		assert_memory_equal(q + i * 1000 + 998, "\r\nb", 3);
	assert_string_equal(q + 3000, "bbbbbb\r\n");
	/* No line over 998 anywhere. */
	for (p = r.spool; (q = strstr(p, "\r\n")) != NULL; p = q + 2)
		assert_true(q - p <= SMTP_LINE_MAX);
	result_free(&r);
	free(in);
}

static void
t_eight_bit(void **state)
{
	struct msgopts o;
	struct result r;

	default_opts(&o);
	run(*state, &o, "Subject: s\n\nplain\n", &r);
	assert_false(r.msg.eight_bit);
	result_free(&r);
	run(*state, &o, "Subject: s\n\ncaf\xc3\xa9\n", &r);
	assert_true(r.msg.eight_bit);
	result_free(&r);
	run(*state, &o, "Subject: \xc3\xa9\n\n", &r);
	assert_true(r.msg.eight_bit);
	result_free(&r);
	/* An 8-bit -F name ends up in the message too. */
	o.full_name = "J\xc3\xb6rg";
	run(*state, &o, "Subject: s\n\n", &r);
	assert_true(r.msg.eight_bit);
	result_free(&r);
}

/*
 * A field of exactly n bytes: "Name:", " a@x, " items folded now and
 * then, and a bare " root" last (which qualification would change).
 */
static char *
big_field(const char *name, size_t n)
{
	char *s = malloc(n + 1);
	size_t off, k;

	assert_non_null(s);
	off = (size_t)snprintf(s, n + 1, "%s:", name);
	for (k = 0; off + 12 <= n; k++, off += 6)
		memcpy(s + off, k % 40 == 39 ? "\n a@x," : " a@x, ", 6);
	while (off < n - 6)
		s[off++] = ' ';
	memcpy(s + off, " root\n", 7);
	return s;
}

static void
t_header_keep_max(void **state)
{
	struct msgopts o;
	struct result r;
	char *to, *bcc, *in, *p;
	size_t n = HEADER_KEEP_MAX + 5000;

	to = big_field("To", n);
	bcc = big_field("Bcc", n);
	in = malloc(2 * n + 64);
	assert_non_null(in);
	(void)snprintf(in, 2 * n + 64, "%sSubject: s\n%sX-After: 1\n\nb\n",
	    to, bcc);
	default_opts(&o);
	run(*state, &o, in, &r);
	assert_int_equal(r.rc, ST_OK);
	/* The long To: passed through unrewritten ("root" unqualified)... */
	assert_non_null(p = strstr(r.spool, "To: a@x,  a@x,"));
	assert_null(strstr(r.spool, "root@example.org"));
	assert_non_null(strstr(r.spool, " root\r\nSubject: s\r\n"));
	/* ...the long Bcc: dropped whole, and what follows is intact. */
	assert_null(strstr(r.spool, "Bcc"));
	assert_non_null(strstr(r.spool, "Subject: s\r\nX-After: 1\r\n" ADDED
	    "\r\nb\r\n"));
	result_free(&r);
	/* -t cannot take recipients from it. */
	o.extract_rcpts = 1;
	run(*state, &o, in, &r);
	assert_int_equal(r.rc, ST_DATA);
	assert_non_null(strstr(r.err.text, "To: header"));
	assert_non_null(strstr(r.err.text, "too long"));
	result_free(&r);
	/* A long From: still counts as present. */
	free(to);
	to = big_field("From", n);
	o.extract_rcpts = 0;
	run(*state, &o, to, &r);
	assert_int_equal(r.rc, ST_OK);
	assert_true(r.msg.had_from);
	assert_string_equal(r.msg.from_addr, "");
	assert_int_equal(count(r.spool, "From:"), 1);
	result_free(&r);
	free(to);
	free(bcc);
	free(in);
}

static void
t_long_name_line(void **state)
{
	struct msgopts o;
	struct result r;
	size_t n = HEADER_KEEP_MAX + 100;
	char *in = malloc(n + 32);

	assert_non_null(in);
	memcpy(in, "Subject: s\n", 11);
	memset(in + 11, 'N', n);
	memcpy(in + 11 + n, ": v\n", 5);
	default_opts(&o);
	run(*state, &o, in, &r);
	assert_int_equal(r.rc, ST_OK);
	/* No field name is that long: it is the first body line. */
	assert_non_null(strstr(r.spool, "Subject: s\r\n" ADDED "\r\nNNN"));
	assert_int_equal(r.msg.lines_split, (n + 3 - 1) / SMTP_LINE_MAX);
	result_free(&r);
	free(in);
}

/* A name too long for "name:" to fit in 998 octets is no field name
 * either: folding it would cut the name and end the header early. */
static void
t_name_over_line_limit(void **state)
{
	struct msgopts o;
	struct result r;
	char in[2048];

	memcpy(in, "Subject: s\n", 11);
	memset(in + 11, 'N', 1000);
	memcpy(in + 1011, ": v\nTo: x@y\n", 13);
	default_opts(&o);
	run(*state, &o, in, &r);
	assert_int_equal(r.rc, ST_OK);
	assert_non_null(strstr(r.spool, "Subject: s\r\n" ADDED "\r\nNNN"));
	result_free(&r);
}

/*
 * MaxMessageSize: the caller's message in CRLF form (a bare LF counts
 * two), our header fields and the final "." line not counted; over it,
 * ST_DATA naming the key and no spool file (run_len checks the dir).
 */
static void
t_max_size(void **state)
{
	static const char in[] = "Subject: s\r\n\r\nbody\r\n";	/* 20 */
	struct msgopts o;
	struct result r;

	default_opts(&o);
	o.max_size = 20;
	run(*state, &o, in, &r);
	assert_int_equal(r.rc, ST_OK);
	result_free(&r);
	run(*state, &o, "Subject: s\r\n\r\nbody\r\n.\r\n", &r);
	assert_int_equal(r.rc, ST_OK);
	result_free(&r);
	o.max_size = 19;
	run(*state, &o, in, &r);
	assert_int_equal(r.rc, ST_DATA);
	assert_non_null(strstr(r.err.text, "MaxMessageSize"));
	result_free(&r);
	/* LF ends count as CRLF: 17 bytes of input, 20 counted. */
	run(*state, &o, "Subject: s\n\nbody\n", &r);
	assert_int_equal(r.rc, ST_DATA);
	result_free(&r);
	/* Far over, across many reads: refused, memory and spool bounded. */
	{
		size_t big = 3 * 65536 + 7, i;
		char *buf = malloc(big);

		assert_non_null(buf);
		for (i = 0; i < big; i++)
			buf[i] = i % 80 == 79 ? '\n' : 'x';
		o.max_size = 65536;
		run_len(*state, &o, buf, big, &r);
		assert_int_equal(r.rc, ST_DATA);
		result_free(&r);
		o.max_size = 0;		/* no limit */
		run_len(*state, &o, buf, big, &r);
		assert_int_equal(r.rc, ST_OK);
		result_free(&r);
		free(buf);
	}
}

static void
t_read_error(void **state)
{
	const struct fixture *f = *state;
	struct msgopts o;
	struct message m;
	struct error err;
	int fd;

	default_opts(&o);
	assert_true((fd = open(f->dir, O_RDONLY | O_DIRECTORY)) != -1);
	error_clear(&err);
	assert_int_equal(message_read(fd, f->dir, &o, &m, &err), ST_IOERR);
	assert_non_null(strstr(err.text, "cannot read"));
	assert_int_equal(m.fd, -1);
	(void)close(fd);
	/* A closed descriptor (a high one: a low one would be reused). */
	fd = 900;
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	error_clear(&err);
	assert_int_equal(message_read(fd, f->dir, &o, &m, &err), ST_IOERR);
	assert_non_null(strstr(err.text, "Bad file descriptor"));
	assert_int_equal(m.fd, -1);
	message_free(&m);
	assert_dir_empty(f->dir);
}

static void
expect_cantcreat(const char *dir, const char *why)
{
	struct msgopts o;
	struct message m;
	struct error err;
	char want[256];
	int p[2];

	default_opts(&o);
	assert_int_equal(pipe(p), 0);
	(void)close(p[1]);
	error_clear(&err);
	assert_int_equal(message_read(p[0], dir, &o, &m, &err), ST_CANTCREAT);
	(void)snprintf(want, sizeof(want), "cannot create spool file in %s: "
	    "%s", dir, why);
	assert_string_equal(err.text, want);
	assert_int_equal(m.fd, -1);
	(void)close(p[0]);
}

static void
t_spool_create_fails(void **state)
{
	const struct fixture *f = *state;
	char path[128];
	int fd, status;
	pid_t pid;

	(void)snprintf(path, sizeof(path), "%s/missing", f->dir);
	expect_cantcreat(path, "No such file or directory");
	(void)snprintf(path, sizeof(path), "%s/file", f->dir);
	assert_true((fd = open(path, O_CREAT | O_WRONLY, 0600)) != -1);
	(void)close(fd);
	expect_cantcreat(path, "Not a directory");
	assert_int_equal(unlink(path), 0);
	/* Permission denied, as an unprivileged caller. */
	(void)snprintf(path, sizeof(path), "%s/locked", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	if ((pid = fork()) == 0) {
		/* No cmocka assertions in a child: plain exit codes. */
		struct msgopts o;
		struct message m;
		struct error err;

		if (getuid() == 0 && setuid(65534) != 0)
			_exit(2);
		default_opts(&o);
		error_clear(&err);
		if (message_read(0, path, &o, &m, &err) != ST_CANTCREAT ||
		    m.fd != -1)
			_exit(3);
		if (strstr(err.text, "Permission denied") == NULL ||
		    strstr(err.text, path) == NULL)
			_exit(4);
		_exit(0);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(rmdir(path), 0);
}

/* A spool write that fails (here: file size limit) -> ST_CANTCREAT. */
static void
t_spool_write_fails(void **state)
{
	const struct fixture *f = *state;
	struct rlimit rl = { 100000, 100000 };
	struct msgopts o;
	struct message m;
	struct error err;
	char *in;
	int status, p[2];
	pid_t pid;
	size_t n = 300000;

	if ((pid = fork()) == 0) {
		/* No cmocka assertions in a child: plain exit codes. */
		(void)signal(SIGXFSZ, SIG_IGN);
		if (pipe(p) != 0 || setrlimit(RLIMIT_FSIZE, &rl) != 0)
			_exit(2);
		if ((in = malloc(n)) == NULL)
			_exit(3);
		memset(in, 'x', n);
		if (fork() == 0) {
			(void)close(p[0]);
			(void)signal(SIGPIPE, SIG_IGN);
			(void)!write(p[1], in, n);
			_exit(0);
		}
		(void)close(p[1]);
		default_opts(&o);
		error_clear(&err);
		if (message_read(p[0], f->dir, &o, &m, &err) != ST_CANTCREAT)
			_exit(4);
		if (m.fd != -1 || strstr(err.text, "cannot write spool file "
		    "in ") == NULL || strstr(err.text, "File too large") ==
		    NULL)
			_exit(5);
		(void)close(p[0]);
		(void)wait(NULL);
		free(in);
		_exit(0);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_dir_empty(f->dir);
}

/* No descriptor is left open by errors or by message_free. */
static void
t_no_fd_leak(void **state)
{
	const struct fixture *f = *state;
	struct msgopts o;
	struct result r;
	int before, after;

	before = dup(0);
	(void)close(before);
	default_opts(&o);
	o.extract_rcpts = 1;
	run(f, &o, "To: a b\n\n", &r);
	assert_int_equal(r.rc, ST_DATA);
	result_free(&r);
	run(f, &o, "To: a@b\n\n", &r);
	assert_int_equal(r.rc, ST_OK);
	result_free(&r);
	expect_cantcreat("/nonexistent/dir", "No such file or directory");
	after = dup(0);
	(void)close(after);
	assert_int_equal(before, after);
}

/* Feed from a child through a pipe: huge input without a huge buffer. */
static pid_t
writer(int *rfd, const char *head, char fill, size_t fill_len,
    const char *tail)
{
	char chunk[65500];	/* a multiple of 100 */
	int p[2];
	pid_t pid;
	size_t n;

	assert_int_equal(pipe(p), 0);
	if ((pid = fork()) == 0) {
		(void)close(p[0]);
		memset(chunk, fill, sizeof(chunk));
		/* 'H': 100-byte header fields "X-H: hhh...\n". */
		for (n = 0; fill == 'H' && n < sizeof(chunk); n += 100) {
			memcpy(chunk + n, "X-H: ", 5);
			memset(chunk + n + 5, 'h', 94);
			chunk[n + 99] = '\n';
		}
		if (write(p[1], head, strlen(head)) < 0)
			_exit(1);
		while (fill_len > 0) {
			n = fill_len < sizeof(chunk) ? fill_len : sizeof(chunk);
			if (write(p[1], chunk, n) != (ssize_t)n)
				_exit(1);
			fill_len -= n;
		}
		if (write(p[1], tail, strlen(tail)) < 0)
			_exit(1);
		_exit(0);
	}
	assert_true(pid > 0);
	(void)close(p[1]);
	*rfd = p[0];
	return pid;
}

static long
max_rss_kb(void)
{
	struct rusage ru;

	assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
	return ru.ru_maxrss;
}

static void
big_run(const struct fixture *f, const char *head, char fill, size_t n,
    const char *tail, struct message *m)
{
	struct msgopts o;
	struct error err;
	int fd, status;
	pid_t pid;

	default_opts(&o);
	pid = writer(&fd, head, fill, n, tail);
	error_clear(&err);
	if (message_read(fd, f->dir, &o, m, &err) != ST_OK)
		fail_msg("%s", err.text);
	(void)close(fd);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* 100 MiB body in one line (split), then 50 MB headers: memory flat. */
static void
t_huge_input(void **state)
{
	const struct fixture *f = *state;
	struct message m;
	size_t n = 100 << 20, lines;
	long before;
	off_t base;

	before = max_rss_kb();
	big_run(f, "Subject: s\n\n", 'b', n, "\n", &m);
	base = (off_t)strlen(RECV "Subject: s\r\n" ADDED "\r\n");
	lines = (n + SMTP_LINE_MAX - 1) / SMTP_LINE_MAX;
	assert_int_equal(m.lines_split, lines - 1);
	assert_int_equal(m.size, base + (off_t)n + 2 * (off_t)lines);
	assert_int_equal(m.header_rcpts.n, 0);
	message_free(&m);

	/* One 50 MB Bcc (dropped, streaming), and one 50 MB X- header. */
	big_run(f, "Bcc: ", 'x', 50000000, "\nSubject: s\n\nb\n", &m);
	assert_int_equal(m.size, base + 3);
	message_free(&m);
	big_run(f, "X-Long: ", 'x', 50000000, "\nSubject: s\n\nb\n", &m);
	lines = (8 + 50000000 - SMTP_LINE_MAX + SMTP_LINE_MAX - 2) /
	    (SMTP_LINE_MAX - 1);
	assert_int_equal(m.lines_split, lines);
	assert_int_equal(m.size, base + 3 + 8 + 50000000 + 3 * (off_t)lines +
	    2);
	message_free(&m);
	/* A 50 MB header block of 500000 fields, each kept. */
	big_run(f, "Subject: s\n", 'H', 50000000, "\nb\n", &m);
	assert_int_equal(m.size, base + 500000 * 101 + 3);
	message_free(&m);
	if (!UNDER_ASAN && max_rss_kb() - before > 16 * 1024)
		fail_msg("memory grew by %ld KiB", max_rss_kb() - before);
}

static void
t_message_date(void **state)
{
	char buf[64];

	(void)state;
	(void)setenv("TZ", "UTC-1", 1);
	tzset();
	message_date(0, buf, sizeof(buf));
	assert_string_equal(buf, "Thu, 01 Jan 1970 01:00:00 +0100");
	(void)setenv("TZ", "XYZ+5:30", 1);
	tzset();
	message_date(1700000000, buf, sizeof(buf));
	assert_string_equal(buf, "Tue, 14 Nov 2023 16:43:20 -0530");
	(void)setenv("TZ", "UTC0", 1);
	tzset();
	message_date(1700000000, buf, sizeof(buf));
	assert_string_equal(buf, DATE);
	/* Truncation is safe. */
	message_date(1700000000, buf, 8);
	assert_string_equal(buf, "Tue, 14");
}

static void
t_qid(void **state)
{
	char a[QID_MAX], b[QID_MAX];
	size_t i;

	(void)state;
	message_new_qid(a);
	message_new_qid(b);
	assert_int_equal(strlen(a), QID_LEN);
	for (i = 0; i < QID_LEN; i++)
		assert_non_null(strchr("0123456789ABCDEF", a[i]));
	assert_string_not_equal(a, b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_lc_line_ends),
		cmocka_unit_test(t_lc_dots),
		cmocka_unit_test(t_lc_split),
		cmocka_unit_test(t_lc_boundaries),
		cmocka_unit_test(t_lc_random),
		cmocka_unit_test(t_lc_same_as_reference),
		cmocka_unit_test(t_line_ends),
		cmocka_unit_test(t_cr_only),
		cmocka_unit_test(t_cr_dot),
		cmocka_unit_test(t_shapes),
		cmocka_unit_test(t_dots),
		cmocka_unit_test(t_dot_drain),
		cmocka_unit_test(t_dot_drain_deadline),
		cmocka_unit_test(t_mbox_from),
		cmocka_unit_test(t_drop_headers),
		cmocka_unit_test(t_qualify_headers),
		cmocka_unit_test(t_added_headers),
		cmocka_unit_test(t_from_name),
		cmocka_unit_test(t_received),
		cmocka_unit_test(t_extract),
		cmocka_unit_test(t_extract_errors),
		cmocka_unit_test(t_resent),
		cmocka_unit_test(t_from_addr),
		cmocka_unit_test(t_nul_bytes),
		cmocka_unit_test(t_long_lines),
		cmocka_unit_test(t_eight_bit),
		cmocka_unit_test(t_header_keep_max),
		cmocka_unit_test(t_name_over_line_limit),
		cmocka_unit_test(t_long_name_line),
		cmocka_unit_test(t_max_size),
		cmocka_unit_test(t_read_error),
		cmocka_unit_test(t_spool_create_fails),
		cmocka_unit_test(t_spool_write_fails),
		cmocka_unit_test(t_no_fd_leak),
		cmocka_unit_test(t_huge_input),
		cmocka_unit_test(t_message_date),
		cmocka_unit_test(t_qid),
	};

	(void)setenv("TZ", "UTC0", 1);
	tzset();
	return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
