/*
 * vport.c: finding a virtio-serial port by its name, in a guest.
 *
 * The kernel names ports /dev/vportNpM and tells their channel names in
 * sysfs.  Where are they, in order:
 *   1. ROOT/sys/class/virtio-ports/vportNpM/name   (sysfs)
 *   2. ROOT/dev/virtio-ports/NAME                  (udev's symlinks)
 *   3. ROOT/dev/vportNpM, named by the first line "name: NAME" of
 *      ROOT/sys/kernel/debug/virtio-ports/vportNpM (debugfs, where sysfs
 *      shows no virtio-ports class)
 * ROOT is "" on a real system; the tests point it at a fake tree.
 * With no virtio-ports class and no vport device at all, the kernel has no
 * multiport virtio_console (before 2.6.35), or it is not loaded.
 */
#include "negotiator.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

int
vport_first_line(const char *path, char *out, size_t outlen)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -1;
	if (!fgets(out, (int)outlen, f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	n = strlen(out);
	while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
	return 0;
}

/* One way of telling a port's name: the entries of a directory (only
 * those starting with prefix), and for entry E the file FILE_FMT(root,
 * E) whose first line is LINE_PREFIX NAME. */
struct view {
	const char *dir, *prefix, *file_fmt, *line_prefix;
};

static const struct view sysfs_view = {
	"%s/sys/class/virtio-ports", "", "%s/sys/class/virtio-ports/%s/name", ""
};
static const struct view debugfs_view = {
	"%s/dev", "vport", "%s/sys/kernel/debug/virtio-ports/%s", "name: "
};

/* 1 found (ROOT/dev/E in path), 0 not; *seen counts the entries looked at,
 * -1 when the directory is missing */
static int
scan(const struct view *v, const char *root, const char *name, char *path,
     size_t pathlen, int *seen)
{
	char dir[PATH_MAX], file[PATH_MAX], line[300];
	size_t pl = strlen(v->line_prefix);
	struct dirent *e;
	DIR *d;
	int found = 0;

	snprintf(dir, sizeof dir, v->dir, root);
	*seen = -1;
	if (!(d = opendir(dir)))
		return 0;
	*seen = 0;
	while (!found && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || strncmp(e->d_name, v->prefix, strlen(v->prefix)) != 0)
			continue;
		++*seen;
		if ((size_t)snprintf(file, sizeof file, v->file_fmt, root, e->d_name) >= sizeof file ||
		    vport_first_line(file, line, sizeof line) < 0 || strncmp(line, v->line_prefix, pl) != 0 ||
		    strcmp(line + pl, name) != 0)
			continue;
		found = (size_t)snprintf(path, pathlen, "%s/dev/%s", root, e->d_name) < pathlen;
	}
	closedir(d);
	return found;
}

/* "ROOT/dir (missing)", "(empty)" or "(N, none named X)" for the report */
static void
tell(char *tried, size_t triedlen, const char *what, int seen, const char *none)
{
	size_t tl = strlen(tried);
	char count[32];

	if (seen > 0)
		snprintf(count, sizeof count, "%d", seen);
	snprintf(tried + tl, triedlen - tl, "%s%s (%s%s)", tl ? "; " : "", what,
	         seen < 0 ? "missing" : seen == 0 ? "none" : count,
	         seen > 0 ? none : "");
}

int
vport_find(const char *root, const char *name, char *path, size_t pathlen,
           char *tried, size_t triedlen)
{
	char what[PATH_MAX];
	int seen, no_class;

	tried[0] = '\0';
	if (scan(&sysfs_view, root, name, path, pathlen, &seen))
		return 0;
	no_class = seen < 0;
	snprintf(what, sizeof what, sysfs_view.dir, root);
	tell(tried, triedlen, what, seen, " ports, none named so");

	if ((size_t)snprintf(path, pathlen, "%s/dev/virtio-ports/%s", root, name) < pathlen &&
	    access(path, F_OK) == 0)
		return 0;
	snprintf(what, sizeof what, "%s/dev/virtio-ports/%s", root, name);
	tell(tried, triedlen, what, -1, "");

	if (scan(&debugfs_view, root, name, path, pathlen, &seen))
		return 0;
	snprintf(what, sizeof what, "%s/dev/vport*", root);
	tell(tried, triedlen, what, seen < 0 ? 0 : seen,
	     " devices, none named so in /sys/kernel/debug/virtio-ports");
	path[0] = '\0';
	return no_class && seen <= 0 ? -2 : -1;
}

/* 2.6.35's virtio_console refuses a second opener with EMFILE where later
 * kernels say EBUSY; EMFILE while a descriptor is still free means that. */
int
vport_busy(int err)
{
	int fd;

	if (err == EBUSY)
		return 1;
	if (err != EMFILE || (fd = open("/dev/null", O_RDONLY)) < 0)
		return 0;
	close(fd);
	return 1;
}
