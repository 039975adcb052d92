/*
 * pgids.c: the process groups of the commands a daemon runs, kept in a
 * file, so that the next daemon can end what a killed one left running.
 *
 * On Linux each command also asks to be killed when the daemon dies
 * (PR_SET_PDEATHSIG, in exec.c), which ends the command at once but not
 * the processes it started: they stay in its process group.  Those, and
 * on other systems the commands themselves, are killed by the next
 * daemon that starts on the same control socket.
 *
 * The record is CONTROL_SOCKET.pgids, a regular file of the daemon's user
 * with one link (in /tmp another user could have made it first: then it
 * is not used), locked with fcntl() while its daemon lives, and
 * rewritten whenever a command starts or is reaped:
 *
 *     negotiator-pgids 1 BOOT_ID
 *     PGID SID START              one line per running command
 *
 * PGID is the command's pid and process group, SID its session and START
 * its start time (clock ticks after boot), from /proc/PID/stat; BOOT_ID
 * is /proc/sys/kernel/random/boot_id.  A recorded group is killed only
 * when the record is from this boot and every process now in that group
 * (a scan of /proc) is in the recorded session and started no earlier
 * than the command: a group number reused since then is left alone.
 * Without /proc nothing can be checked, so nothing is recorded.
 */
#include "negotiator.h"

#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PGIDS_MAGIC "negotiator-pgids 1"
#define PGIDS_MAX_FILE (4UL * 1024 * 1024)

struct pgid_rec {
	long pgid, sid;
	char start[24];              /* decimal, as /proc gives it */
	int ours, foreign;           /* processes found in the group */
};

static int pg_fd = -1;
static char pg_path[4096];
static char boot_id[40];
static struct pgid_rec *recs;
static int nrecs, caprecs;

/* "1234" and the like: all digits, not empty */
static int
all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/* a - b for decimal strings without leading zeros, of any length */
static int
dec_cmp(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la != lb)
		return la < lb ? -1 : 1;
	return strcmp(a, b);
}

/* Process group, session and start time of process pid, from
 * /proc/PID/stat; -1 when there is no such process or no /proc. */
static int
proc_stat(const char *pid, long *pgrp, long *sid, char *start, size_t startlen)
{
	char path[64], buf[1024], *p, *tok;
	ssize_t n;
	int fd, field;

	if (strlen(pid) > 20)
		return -1;
	sprintf(path, "/proc/%s/stat", pid);
	fd = compat_open(path, O_RDONLY, CX_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* "PID (COMM) STATE PPID PGRP SESSION ... STARTTIME(22) ...": the
	 * command name may hold anything, so fields count from its last ')' */
	if (!(p = strrchr(buf, ')')))
		return -1;
	p++;
	for (field = 3; field <= 22; field++) {
		while (*p == ' ')
			p++;
		tok = p;
		while (*p && *p != ' ' && *p != '\n')
			p++;
		if (tok == p)
			return -1;
		if (field == 5)
			*pgrp = strtol(tok, NULL, 10);
		else if (field == 6)
			*sid = strtol(tok, NULL, 10);
		else if (field == 22) {
			if ((size_t)(p - tok) >= startlen)
				return -1;
			memcpy(start, tok, (size_t)(p - tok));
			start[p - tok] = '\0';
		}
	}
	return all_digits(start) ? 0 : -1;
}

static void
read_boot_id(void)
{
	int fd = compat_open("/proc/sys/kernel/random/boot_id", O_RDONLY, CX_CLOEXEC);
	ssize_t n = -1;
	size_t i;

	if (fd >= 0) {
		n = read(fd, boot_id, sizeof boot_id - 1);
		close(fd);
	}
	boot_id[n > 0 ? n : 0] = '\0';
	for (i = 0; boot_id[i]; i++)
		if (!((boot_id[i] >= '0' && boot_id[i] <= '9') ||
		      (boot_id[i] >= 'a' && boot_id[i] <= 'f') || boot_id[i] == '-'))
			break;
	boot_id[i] = '\0';
	if (!boot_id[0])
		strcpy(boot_id, "unknown");
}

static void
stop_recording(const char *why)
{
	warn("%s: %s; commands left running by a daemon that gets killed will not be "
	     "ended by the next one", pg_path, why);
	if (pg_fd >= 0) {
		unlink(pg_path);   /* ours, and no longer true */
		close(pg_fd);
	}
	pg_fd = -1;
}

/* The whole record, at once: a shorter one is cut to its new length. */
static void
pgids_write(void)
{
	struct buf b;
	char line[80];
	int i, n;

	if (pg_fd < 0)
		return;
	buf_init(&b, (size_t)-1);
	n = sprintf(line, "%s %s\n", PGIDS_MAGIC, boot_id);
	buf_append(&b, line, (size_t)n);
	for (i = 0; i < nrecs; i++) {
		n = sprintf(line, "%ld %ld %s\n", recs[i].pgid, recs[i].sid, recs[i].start);
		buf_append(&b, line, (size_t)n);
	}
	if (lseek(pg_fd, 0, SEEK_SET) < 0 ||
	    write(pg_fd, buf_ptr(&b), buf_len(&b)) != (ssize_t)buf_len(&b) ||
	    ftruncate(pg_fd, (off_t)buf_len(&b)) < 0)
		stop_recording(strerror(errno));
	buf_free(&b);
}

void
pgids_add(pid_t pid)
{
	char id[24], start[24];
	long pgrp, sid;

	if (pg_fd < 0)
		return;
	sprintf(id, "%ld", (long)pid);
	if (proc_stat(id, &pgrp, &sid, start, sizeof start) < 0 || pgrp != (long)pid) {
		debug("process group %ld not recorded: /proc/%s/stat unreadable or another "
		      "group", (long)pid, id);
		return;
	}
	if (nrecs == caprecs) {
		caprecs = caprecs ? 2 * caprecs : 16;
		recs = xrealloc(recs, (size_t)caprecs * sizeof *recs);
	}
	memset(&recs[nrecs], 0, sizeof recs[nrecs]);
	recs[nrecs].pgid = (long)pid;
	recs[nrecs].sid = sid;
	strcpy(recs[nrecs].start, start);
	nrecs++;
	pgids_write();
}

void
pgids_remove(pid_t pid)
{
	int i;

	for (i = 0; i < nrecs; i++)
		if (recs[i].pgid == (long)pid) {
			recs[i] = recs[--nrecs];
			pgids_write();
			return;
		}
}

/* The groups in a record left by an earlier daemon: each is killed when
 * all its processes still look like the recorded command's. */
static void
kill_leftovers(const char *text)
{
	const char *p = text, *nl;
	char line[128], magic[32], version[8], boot[40], start[24];
	long pgid, sid, pgrp;
	DIR *d;
	struct dirent *e;
	int i;

	nrecs = 0;
	nl = strchr(p, '\n');
	if (!nl || (size_t)(nl - p) >= sizeof line)
		return;
	memcpy(line, p, (size_t)(nl - p));
	line[nl - p] = '\0';
	if (sscanf(line, "%31s %7s %39s", magic, version, boot) != 3 ||
	    strcmp(magic, "negotiator-pgids") != 0 || strcmp(version, "1") != 0)
		return;
	if (strcmp(boot, boot_id) != 0 || strcmp(boot, "unknown") == 0) {
		debug("%s: from another boot (or the boot is unknown): nothing to end", pg_path);
		return;
	}
	for (p = nl + 1; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		if ((size_t)(nl - p) >= sizeof line)
			continue;
		memcpy(line, p, (size_t)(nl - p));
		line[nl - p] = '\0';
		if (sscanf(line, "%ld %ld %23s", &pgid, &sid, start) != 3 || pgid <= 1 ||
		    !all_digits(start) || pgid == (long)getpgrp())
			continue;
		if (nrecs == caprecs) {
			caprecs = caprecs ? 2 * caprecs : 16;
			recs = xrealloc(recs, (size_t)caprecs * sizeof *recs);
		}
		memset(&recs[nrecs], 0, sizeof recs[nrecs]);
		recs[nrecs].pgid = pgid;
		recs[nrecs].sid = sid;
		strcpy(recs[nrecs].start, start);
		nrecs++;
	}
	if (!nrecs)
		return;
	if (!(d = opendir("/proc"))) {
		warn("%s: %d process group(s) left by an earlier daemon cannot be checked "
		     "(/proc: %s): left alone", pg_path, nrecs, strerror(errno));
		nrecs = 0;
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (!all_digits(e->d_name) ||
		    proc_stat(e->d_name, &pgrp, &sid, start, sizeof start) < 0)
			continue;
		for (i = 0; i < nrecs; i++) {
			if (recs[i].pgid != pgrp)
				continue;
			if (sid == recs[i].sid && dec_cmp(start, recs[i].start) >= 0 &&
			    strtol(e->d_name, NULL, 10) != (long)getpid())
				recs[i].ours++;
			else
				recs[i].foreign++;
		}
	}
	closedir(d);
	for (i = 0; i < nrecs; i++) {
		if (recs[i].foreign)
			warn("%s: process group %ld is no longer the command recorded there: "
			     "left alone", pg_path, recs[i].pgid);
		else if (recs[i].ours && kill(-(pid_t)recs[i].pgid, SIGKILL) == 0)
			logit("killed process group %ld (%d process%s), left running by an "
			      "earlier daemon", recs[i].pgid, recs[i].ours,
			      recs[i].ours == 1 ? "" : "es");
		else if (recs[i].ours)
			warn("unable to kill process group %ld, left running by an earlier "
			     "daemon: %s", recs[i].pgid, strerror(errno));
	}
	nrecs = 0;
}

static int
lock_record(int fd)
{
	struct flock fl;

	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	return fcntl(fd, F_SETLK, &fl);
}

void
pgids_start(const char *control_path)
{
	struct stat st, fst;
	struct buf b;
	char who[96], why[200];
	ssize_t n;
	int fd;

	if ((size_t)snprintf(pg_path, sizeof pg_path, "%s.pgids", control_path) >= sizeof pg_path)
		return;
	read_boot_id();
	if (lstat(pg_path, &st) < 0) {
		if (errno != ENOENT) {
			stop_recording(strerror(errno));
			return;
		}
		fd = open(pg_path, O_RDWR | O_CREAT | O_EXCL, 0600);
		if (fd < 0 || set_cloexec(fd) < 0 || lock_record(fd) < 0) {
			if (fd >= 0)
				close(fd);
			stop_recording(strerror(errno));
			return;
		}
		pg_fd = fd;
		pgids_write();
		return;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1) {
		user_label((unsigned long)st.st_uid, who, sizeof who);
		if (!S_ISREG(st.st_mode))
			snprintf(why, sizeof why, "not used: it is %s, not a regular file",
			         S_ISLNK(st.st_mode) ? "a symbolic link" : "something else");
		else if (st.st_uid != geteuid())
			snprintf(why, sizeof why, "not used: it belongs to %s", who);
		else
			snprintf(why, sizeof why, "not used: it has %lu links, not one",
			         (unsigned long)st.st_nlink);
		stop_recording(why);
		return;
	}
	fd = compat_open(pg_path, O_RDWR, CX_CLOEXEC);
	if (fd < 0 || fstat(fd, &fst) < 0 || fst.st_ino != st.st_ino || fst.st_dev != st.st_dev) {
		if (fd >= 0)
			close(fd);
		stop_recording(fd < 0 ? strerror(errno) : "replaced while it was opened");
		return;
	}
	if (lock_record(fd) < 0) {
		close(fd);
		stop_recording("in use by another daemon that is still running");
		return;
	}
	buf_init(&b, PGIDS_MAX_FILE + 1);
	while ((n = buf_read_fd(&b, fd, 65536)) > 0 && buf_len(&b) < PGIDS_MAX_FILE)
		;
	if (buf_len(&b) > PGIDS_MAX_FILE)
		b.end = b.start + PGIDS_MAX_FILE;   /* the lines in the first 4 MiB */
	buf_append(&b, "", 1);
	kill_leftovers((const char *)buf_ptr(&b));
	buf_free(&b);
	pg_fd = fd;
	pgids_write();
}

/* A clean stop: every command was killed, nothing is left to record. */
void
pgids_stop(void)
{
	if (pg_fd < 0)
		return;
	unlink(pg_path);
	close(pg_fd);
	pg_fd = -1;
}
