/*
 * runone.c: one measured run for bench/bench.py (not part of postino).
 *
 *   runone [-i stdin] [-o outfile] [-t secs] -- argv...
 *
 * Runs argv once with stdin from a file and stdout/stderr to outfile,
 * and prints "WALL_US CPU_US MAXRSS_KIB EXIT" from clock_gettime around
 * fork .. wait4 and that child's wait4(2) rusage. Why not Python's own
 * wait4: ru_maxrss counts the memory of the process before exec, and a
 * child forked (or vforked) from Python starts at Python's 20-odd MiB;
 * forked from this small program it starts at about 1 MiB, below every
 * client measured. EXIT is the exit status, or 128 + the signal; after
 * -t secs the child is killed (SIGKILL).
 */

#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pid_t child;

static void
on_alarm(int sig)
{
	(void)sig;
	if (child > 0)
		kill(child, SIGKILL);
}

static void
redirect(const char *in, const char *out)
{
	int fd;

	if ((fd = open(in, O_RDONLY)) < 0 || dup2(fd, 0) < 0)
		_exit(126);
	if (out != NULL) {
		if ((fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0 ||
		    dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
	}
}

int
main(int argc, char **argv)
{
	const char *in = "/dev/null", *out = NULL;
	struct timespec t0, t1;
	struct rusage ru;
	int c, status, secs = 0;

	while ((c = getopt(argc, argv, "i:o:t:")) != -1) {
		switch (c) {
		case 'i': in = optarg; break;
		case 'o': out = optarg; break;
		case 't': secs = (int)strtol(optarg, NULL, 10); break;
		default: return 64;
		}
	}
	if (optind >= argc)
		return 64;
	signal(SIGALRM, on_alarm);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((child = fork()) == 0) {
		redirect(in, out);
		execv(argv[optind], argv + optind);
		_exit(127);
	}
	if (child < 0)
		return 71;
	alarm((unsigned)secs);
	while (wait4(child, &status, 0, &ru) < 0)
		if (errno != EINTR)
			return 71;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%lld %lld %ld %d\n",
	    (long long)(t1.tv_sec - t0.tv_sec) * 1000000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000,
	    (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
	    ru.ru_utime.tv_usec + ru.ru_stime.tv_usec,
	    ru.ru_maxrss,
	    WIFEXITED(status) ? WEXITSTATUS(status) :
	    128 + WTERMSIG(status));
	return 0;
}
