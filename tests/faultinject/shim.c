/*
 * shim.c: an LD_PRELOAD library for tests/e2e/test_faultinject.py. It
 * wraps the libc calls through which postino touches the disk and the
 * network, counts them, and makes the Nth call of one of them fail with a
 * chosen errno, without doing it. Built by the test itself:
 *
 *   gcc -shared -fPIC -o shim.so shim.c -ldl
 *
 * Controlled by the environment (read once, at load time):
 *
 *   FI_FUNC         the function to fail, by its family name (below)
 *   FI_NTH          which call of it fails, from 1
 *   FI_ERRNO        the errno it fails with: a name (EIO) or a number
 *   FI_STICKY=1     fail the Nth call and every later one (a full disk)
 *   FI_RECV_LINE=1  recv() returns at most one line (see recv below)
 *   FI_COUNT_FILE   at exit, one "family count" line per family
 *   FI_TRACE_FILE   one "call family n target" line per call, as it
 *                   happens (so a crash loses nothing)
 *   FI_REPORT_FILE  one "inject family n errno target" line per injected
 *                   failure, and "fork pid" for each child, so that the
 *                   test can wait for a detached queue run to end
 *   FI_NO_PROC_LINK=1  linkat() from a /proc path fails with ENOENT, in
 *                   this process and its children, neither counted nor
 *                   reported: a host without /proc (a chroot, a minimal
 *                   container), so that the queue's copy fallback runs
 *
 * target is the path, or for calls on a descriptor what /proc/self/fd
 * says it is ("socket:[123]", "/q/data/.tmp.X"...). A recv() that
 * would only say EAGAIN is neither counted nor failed (see recv below).
 *
 * Families: open (open, open64, __open_2, openat...), read (read,
 * __read_chk), pread, write, fsync (fsync, fdatasync), rename (rename,
 * renameat...), linkat (link, linkat), unlink (unlink, unlinkat), mkdir,
 * connect, send, recv, flock.
 *
 * Only the process that loaded the library counts and fails: a child
 * forked by postino (the detached queue run) gets the real calls. The
 * state below is file-scope and mutable on purpose: an interposed libc
 * function has nowhere else to keep it.
 */
#define _GNU_SOURCE
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* glibc's fortified entry points, declared only under _FORTIFY_SOURCE. */
int	 __open_2(const char *, int);
int	 __open64_2(const char *, int);
ssize_t	 __read_chk(int, void *, size_t, size_t);
ssize_t	 __pread64_chk(int, void *, size_t, off_t, size_t);

enum family {
	F_OPEN, F_READ, F_PREAD, F_WRITE, F_FSYNC, F_RENAME, F_LINKAT,
	F_UNLINK, F_MKDIR, F_CONNECT, F_SEND, F_RECV, F_FLOCK, F_COUNT
};

static const char *const family_names[F_COUNT] = {
	"open", "read", "pread", "write", "fsync", "rename", "linkat",
	"unlink", "mkdir", "connect", "send", "recv", "flock"
};

static const struct {
	const char	*name;
	int		 value;
} errno_names[] = {
	{ "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EACCES", EACCES },
	{ "EPERM", EPERM }, { "ENOENT", ENOENT }, { "EXDEV", EXDEV },
	{ "EROFS", EROFS }, { "EDQUOT", EDQUOT }, { "EMFILE", EMFILE },
	{ "ENFILE", ENFILE }, { "ENOMEM", ENOMEM }, { "EINTR", EINTR },
	{ "EAGAIN", EAGAIN }, { "ENOLCK", ENOLCK }, { "EBADF", EBADF },
	{ "ECONNREFUSED", ECONNREFUSED }, { "ECONNRESET", ECONNRESET },
	{ "ETIMEDOUT", ETIMEDOUT }, { "EPIPE", EPIPE },
	{ "ENETUNREACH", ENETUNREACH }, { "EHOSTUNREACH", EHOSTUNREACH },
	{ "EADDRNOTAVAIL", EADDRNOTAVAIL },
};

static struct {
	pid_t	 pid;		/* the process that loaded us; 0: inactive */
	int	 family;	/* to fail; -1: none */
	long	 nth;
	int	 err;
	int	 sticky;
	int	 recv_line;	/* FI_RECV_LINE: one line per recv() */
	int	 no_proc_link;	/* FI_NO_PROC_LINK: no /proc to link from */
	long	 count[F_COUNT];
	char	 count_file[PATH_MAX];
	char	 trace_file[PATH_MAX];
	char	 report_file[PATH_MAX];
} fi = { 0, -1, 0, EIO, 0, 0, 0, { 0 }, "", "", "" };

/* The real function behind name, looked up on first use. */
#define REAL(type, name, args)						\
	static type (*real_##name) args;				\
	if (real_##name == NULL)					\
		real_##name = (type (*) args)dlsym(RTLD_NEXT, #name)

/*
 * Append one line to our own file. Raw system calls, so that nothing here
 * is counted or failed; opened for each line, so that no descriptor of
 * ours lives in postino's table between calls.
 */
static void
raw_line(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
raw_line(const char *path, const char *fmt, ...)
{
	char buf[PATH_MAX + 128];
	va_list ap;
	int fd, n;

	if (path[0] == '\0')
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	fd = (int)syscall(SYS_openat, AT_FDCWD, path,
	    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd == -1)
		return;
	(void)syscall(SYS_write, fd, buf, (size_t)n);
	(void)syscall(SYS_close, fd);
}

static void
env_path(const char *name, char *buf, size_t len)
{
	const char *s = getenv(name);

	if (s != NULL && strlen(s) < len)
		memcpy(buf, s, strlen(s) + 1);
}

static int
parse_errno(const char *s)
{
	size_t i;
	char *end;
	long v;

	for (i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
		if (strcmp(s, errno_names[i].name) == 0)
			return errno_names[i].value;
	v = strtol(s, &end, 10);
	return *end == '\0' && v > 0 && v < 4096 ? (int)v : EIO;
}

static const char *
errno_name(int e)
{
	size_t i;

	for (i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
		if (errno_names[i].value == e)
			return errno_names[i].name;
	return "E?";
}

__attribute__((constructor)) static void
fi_init(void)
{
	const char *s;
	int i;

	if ((s = getenv("FI_FUNC")) != NULL && *s != '\0')
		for (i = 0; i < F_COUNT; i++)
			if (strcmp(s, family_names[i]) == 0)
				fi.family = i;
	if ((s = getenv("FI_NTH")) != NULL)
		fi.nth = strtol(s, NULL, 10);
	if ((s = getenv("FI_ERRNO")) != NULL && *s != '\0')
		fi.err = parse_errno(s);
	fi.sticky = (s = getenv("FI_STICKY")) != NULL && strcmp(s, "1") == 0;
	fi.recv_line = (s = getenv("FI_RECV_LINE")) != NULL &&
	    strcmp(s, "1") == 0;
	fi.no_proc_link = (s = getenv("FI_NO_PROC_LINK")) != NULL &&
	    strcmp(s, "1") == 0;
	env_path("FI_COUNT_FILE", fi.count_file, sizeof(fi.count_file));
	env_path("FI_TRACE_FILE", fi.trace_file, sizeof(fi.trace_file));
	env_path("FI_REPORT_FILE", fi.report_file, sizeof(fi.report_file));
	fi.pid = getpid();
}

__attribute__((destructor)) static void
fi_fini(void)
{
	int i;

	if (fi.pid != getpid())
		return;
	for (i = 0; i < F_COUNT; i++)
		raw_line(fi.count_file, "%s %ld\n", family_names[i],
		    fi.count[i]);
}

static void
fd_target(int fd, char *buf, size_t len)
{
	char proc[64];
	ssize_t n;

	(void)snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, buf, len - 1);
	if (n < 0)
		(void)snprintf(buf, len, "fd:%d", fd);
	else
		buf[n] = '\0';
}

/*
 * Count one call; 1 if it is to fail (errno is then set). path names
 * the target, or fd does when path is NULL.
 */
static int
hit(enum family f, const char *path, int fd)
{
	char target[PATH_MAX];
	long n;
	int fail;

	if (fi.pid == 0 || fi.pid != getpid())
		return 0;
	n = ++fi.count[f];
	fail = (int)f == fi.family && (fi.sticky ? n >= fi.nth :
	    n == fi.nth);
	if (fi.trace_file[0] == '\0' && !(fail && fi.report_file[0] != '\0'))
		return fail ? (errno = fi.err, 1) : 0;
	if (path != NULL)
		(void)snprintf(target, sizeof(target), "%s", path);
	else
		fd_target(fd, target, sizeof(target));
	raw_line(fi.trace_file, "call %s %ld %s\n", family_names[f], n, target);
	if (!fail)
		return 0;
	raw_line(fi.report_file, "inject %s %ld %s %s\n", family_names[f], n,
	    errno_name(fi.err), target);
	errno = fi.err;
	return 1;
}

/* ------------------------------------------------------------- open */

static mode_t
open_mode(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ?
	    (mode_t)va_arg(ap, int) : 0;
}

int
open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;
	REAL(int, open, (const char *, int, ...));

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	if (hit(F_OPEN, path, -1))
		return -1;
	return real_open(path, flags, mode);
}

int
open64(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;
	REAL(int, open64, (const char *, int, ...));

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	if (hit(F_OPEN, path, -1))
		return -1;
	return real_open64(path, flags, mode);
}

int
__open_2(const char *path, int flags)
{
	REAL(int, __open_2, (const char *, int));

	if (hit(F_OPEN, path, -1))
		return -1;
	return real___open_2(path, flags);
}

int
__open64_2(const char *path, int flags)
{
	REAL(int, __open64_2, (const char *, int));

	if (hit(F_OPEN, path, -1))
		return -1;
	return real___open64_2(path, flags);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;
	REAL(int, openat, (int, const char *, int, ...));

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	if (hit(F_OPEN, path, -1))
		return -1;
	return real_openat(dirfd, path, flags, mode);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;
	REAL(int, openat64, (int, const char *, int, ...));

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	if (hit(F_OPEN, path, -1))
		return -1;
	return real_openat64(dirfd, path, flags, mode);
}

/* ------------------------------------------------------ read, write */

ssize_t
read(int fd, void *buf, size_t len)
{
	REAL(ssize_t, read, (int, void *, size_t));

	if (hit(F_READ, NULL, fd))
		return -1;
	return real_read(fd, buf, len);
}

ssize_t
__read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	REAL(ssize_t, __read_chk, (int, void *, size_t, size_t));

	if (hit(F_READ, NULL, fd))
		return -1;
	return real___read_chk(fd, buf, len, buflen);
}

ssize_t
pread(int fd, void *buf, size_t len, off_t off)
{
	REAL(ssize_t, pread, (int, void *, size_t, off_t));

	if (hit(F_PREAD, NULL, fd))
		return -1;
	return real_pread(fd, buf, len, off);
}

ssize_t
pread64(int fd, void *buf, size_t len, off_t off)
{
	REAL(ssize_t, pread64, (int, void *, size_t, off_t));

	if (hit(F_PREAD, NULL, fd))
		return -1;
	return real_pread64(fd, buf, len, off);
}

ssize_t
__pread64_chk(int fd, void *buf, size_t len, off_t off, size_t buflen)
{
	REAL(ssize_t, __pread64_chk, (int, void *, size_t, off_t, size_t));

	if (hit(F_PREAD, NULL, fd))
		return -1;
	return real___pread64_chk(fd, buf, len, off, buflen);
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	REAL(ssize_t, write, (int, const void *, size_t));

	if (hit(F_WRITE, NULL, fd))
		return -1;
	return real_write(fd, buf, len);
}

int
fsync(int fd)
{
	REAL(int, fsync, (int));

	if (hit(F_FSYNC, NULL, fd))
		return -1;
	return real_fsync(fd);
}

int
fdatasync(int fd)
{
	REAL(int, fdatasync, (int));

	if (hit(F_FSYNC, NULL, fd))
		return -1;
	return real_fdatasync(fd);
}

/* ------------------------------------------------------ names */

int
rename(const char *from, const char *to)
{
	REAL(int, rename, (const char *, const char *));

	if (hit(F_RENAME, to, -1))
		return -1;
	return real_rename(from, to);
}

int
renameat(int fromfd, const char *from, int tofd, const char *to)
{
	REAL(int, renameat, (int, const char *, int, const char *));

	if (hit(F_RENAME, to, -1))
		return -1;
	return real_renameat(fromfd, from, tofd, to);
}

int
renameat2(int fromfd, const char *from, int tofd, const char *to,
    unsigned int flags)
{
	REAL(int, renameat2, (int, const char *, int, const char *,
	    unsigned int));

	if (hit(F_RENAME, to, -1))
		return -1;
	return real_renameat2(fromfd, from, tofd, to, flags);
}

int
link(const char *from, const char *to)
{
	REAL(int, link, (const char *, const char *));

	if (hit(F_LINKAT, to, -1))
		return -1;
	return real_link(from, to);
}

int
linkat(int fromfd, const char *from, int tofd, const char *to, int flags)
{
	REAL(int, linkat, (int, const char *, int, const char *, int));

	if (fi.no_proc_link && strncmp(from, "/proc/", 6) == 0) {
		errno = ENOENT;
		return -1;
	}
	if (hit(F_LINKAT, to, -1))
		return -1;
	return real_linkat(fromfd, from, tofd, to, flags);
}

int
unlink(const char *path)
{
	REAL(int, unlink, (const char *));

	if (hit(F_UNLINK, path, -1))
		return -1;
	return real_unlink(path);
}

int
unlinkat(int dirfd, const char *path, int flags)
{
	REAL(int, unlinkat, (int, const char *, int));

	if (hit(F_UNLINK, path, -1))
		return -1;
	return real_unlinkat(dirfd, path, flags);
}

int
mkdir(const char *path, mode_t mode)
{
	REAL(int, mkdir, (const char *, mode_t));

	if (hit(F_MKDIR, path, -1))
		return -1;
	return real_mkdir(path, mode);
}

int
flock(int fd, int op)
{
	REAL(int, flock, (int, int));

	if (hit(F_FLOCK, NULL, fd))
		return -1;
	return real_flock(fd, op);
}

/* ------------------------------------------------------ network */

int
connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	REAL(int, connect, (int, const struct sockaddr *, socklen_t));

	if (hit(F_CONNECT, NULL, fd))
		return -1;
	return real_connect(fd, sa, len);
}

ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
	REAL(ssize_t, send, (int, const void *, size_t, int));

	if (hit(F_SEND, NULL, fd))
		return -1;
	return real_send(fd, buf, len, flags);
}

/*
 * A non-blocking recv() with nothing to read only says EAGAIN, and how
 * often that happens depends on timing: such calls are not counted, so
 * that call N is the same reply from one run to the next.
 */
static int
nothing_to_read(int fd, int flags)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	int fl = fcntl(fd, F_GETFL);

	if (fl == -1 || (!(fl & O_NONBLOCK) && !(flags & MSG_DONTWAIT)))
		return 0;
	return poll(&pfd, 1, 0) == 0;
}

/*
 * With FI_RECV_LINE=1 a recv() returns at most one line, as a peer that
 * sends a segment per line would: then call N is the Nth reply line
 * however the replies were coalesced on the way.
 */
ssize_t
recv(int fd, void *buf, size_t len, int flags)
{
	REAL(ssize_t, recv, (int, void *, size_t, int));
	ssize_t n;
	char *nl;

	if (nothing_to_read(fd, flags))
		return real_recv(fd, buf, len, flags);
	if (hit(F_RECV, NULL, fd))
		return -1;
	if (fi.recv_line && fi.pid == getpid() && len > 0 &&
	    (n = real_recv(fd, buf, len, flags | MSG_PEEK)) > 0 &&
	    (nl = memchr(buf, '\n', (size_t)n)) != NULL)
		len = (size_t)(nl - (char *)buf) + 1;
	return real_recv(fd, buf, len, flags);
}

/* ------------------------------------------------------ processes */

/* Not failed: reported, so that the test can wait for the child. */
pid_t
fork(void)
{
	pid_t pid;
	REAL(pid_t, fork, (void));

	pid = real_fork();
	if (pid > 0 && fi.pid == getpid())
		raw_line(fi.report_file, "fork %ld\n", (long)pid);
	return pid;
}
