/*
 * tests/vm/gutil.c: the few guest-side tools the test guest needs that read
 * a directory.  busybox-static is linked with Debian's glibc, whose fstat()
 * fails on kernels before 2.6.39 (fstatat with AT_EMPTY_PATH), so its
 * opendir(), ls, ps and shell globs fail on the 2.6.35 test guest; a test
 * that used them there would pass for the wrong reason.  This is built
 * static with musl, like the guest binary, and works on both kernels.
 *
 *   gutil port NAME        print /dev/vportNpM of the virtio port NAME
 *                          (exit 1 when there is none)
 *   gutil running PATTERN  exit 0 when another process's command line
 *                          contains PATTERN, 1 when none does
 *   gutil wait-port NAME SECONDS
 *                          wait until the port NAME exists, then print it
 */
#define _XOPEN_SOURCE 600
#include <sys/types.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CLASS "/sys/class/virtio-ports"

/* up to n-1 bytes of path into buf, NUL-terminated; bytes read or -1 */
static long
slurp(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY);
	long got = 0, r;

	if (fd < 0)
		return -1;
	while (got < (long)n - 1 && (r = read(fd, buf + got, n - 1 - (size_t)got)) > 0)
		got += r;
	close(fd);
	buf[got] = '\0';
	return got;
}

static int
port(const char *name)
{
	char path[512], line[300];
	struct dirent *e;
	DIR *d = opendir(CLASS);
	long n;

	if (!d)
		return 1;   /* no class (yet): no such port */
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, CLASS "/%s/name", e->d_name);
		if ((n = slurp(path, line, sizeof line)) <= 0)
			continue;
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		if (strcmp(line, name) == 0) {
			printf("/dev/%s\n", e->d_name);
			closedir(d);
			return 0;
		}
	}
	closedir(d);
	return 1;
}

static int
running(const char *pattern)
{
	char path[64], cmd[4096];
	struct dirent *e;
	DIR *d = opendir("/proc");
	long n, i;

	if (!d) {
		perror("gutil: /proc");
		return 2;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9' || atol(e->d_name) == (long)getpid())
			continue;
		snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
		if ((n = slurp(path, cmd, sizeof cmd)) <= 0)
			continue;
		for (i = 0; i < n; i++)
			if (cmd[i] == '\0')
				cmd[i] = ' ';
		if (strstr(cmd, pattern)) {
			closedir(d);
			return 0;
		}
	}
	closedir(d);
	return 1;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "port") == 0)
		return port(argv[2]);
	if (argc == 3 && strcmp(argv[1], "running") == 0)
		return running(argv[2]);
	if (argc == 4 && strcmp(argv[1], "wait-port") == 0) {
		struct timespec tenth;
		int i;

		tenth.tv_sec = 0;
		tenth.tv_nsec = 100000000L;
		for (i = 0; i < atoi(argv[3]) * 10; i++) {
			if (port(argv[2]) == 0)
				return 0;
			nanosleep(&tenth, NULL);
		}
		return 1;
	}
	fprintf(stderr, "usage: gutil port NAME | running PATTERN | wait-port NAME SECONDS\n");
	return 2;
}
