/*
 * deadline.c: time for every protocol step. The monotonic clock in
 * milliseconds, and waiting with poll(2) until a descriptor is ready
 * before an absolute deadline. conn.c (and its TLS back end, tls.c),
 * the -bs server and the stdin drain all bound their waits with it, so
 * that nothing postino waits for can hang a caller.
 */
#include <sys/types.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#include "postino.h"

long long
deadline_now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long
deadline_in(int ms)
{
	return deadline_now_ms() + ms;
}

/* Milliseconds left before deadline_ms, 0 when it has passed. */
static int
remaining_ms(long long deadline_ms)
{
	long long left = deadline_ms - deadline_now_ms();

	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

static int
timed_out(int timeout_ms, struct error *err)
{
	return error_set(err, ST_TEMP,
	    "timed out after %d s waiting for the hub",
	    (timeout_ms + 999) / 1000);
}

int
deadline_wait(int fd, int want_write, long long deadline_ms, int timeout_ms,
    struct error *err)
{
	struct pollfd pfd;
	int left, n;

	for (;;) {
		if ((left = remaining_ms(deadline_ms)) == 0)
			return timed_out(timeout_ms, err);
		pfd.fd = fd;
		pfd.events = want_write ? POLLOUT : POLLIN;
		pfd.revents = 0;
		n = poll(&pfd, 1, left);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return error_set(err, ST_TEMP, "poll: %s",
			    strerror(errno));
		if (n == 0)
			return timed_out(timeout_ms, err);
		/* Errors and hang-ups are reported by the read or write. */
		return ST_OK;
	}
}
