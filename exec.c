/*
 * exec.c: finding, listing and starting commands.
 *
 * Commands are executable regular files (or symbolic links to one: stat()
 * follows them) in the commands directories, the first directory that has
 * a name wins (user commands shadow built-ins).
 * argv goes to execve() as is: there is never a shell in between.
 */
#include "negotiator.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if HAVE_PR_SET_PDEATHSIG
#include <sys/prctl.h>
#endif

extern char **environ;

const char *commands_dirs[16];
int ncommands_dirs;

void
commands_dir_add(const char *dir)
{
	if (ncommands_dirs == (int)(sizeof commands_dirs / sizeof commands_dirs[0]))
		usage_error("too many --commands-dir options (at most %d)", ncommands_dirs);
	commands_dirs[ncommands_dirs++] = dir;
}

void
commands_dir_defaults(void)
{
	if (ncommands_dirs == 0) {
		commands_dir_add(USER_COMMANDS_DIR);
		commands_dir_add(BUILTIN_COMMANDS_DIR);
	}
}

static int
is_executable_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	       (st.st_mode & 0111) && access(path, X_OK) == 0;
}

int
command_find(const char *name, char *path, size_t pathlen)
{
	int i, seen = 0;
	struct stat st;

	if (!valid_command_name(name, strlen(name)))
		return EXIT_NOTFOUND;
	for (i = 0; i < ncommands_dirs; i++) {
		if ((size_t)snprintf(path, pathlen, "%s/%s", commands_dirs[i], name) >= pathlen)
			continue;
		if (is_executable_file(path))
			return 0;
		if (stat(path, &st) == 0)
			seen = 1;
	}
	return seen ? EXIT_NOEXEC : EXIT_NOTFOUND;
}

/* Why command_find() failed (rc), said so that the caller on the other
 * side knows where to look: "command not found in the guest's commands:
 * NAME (searched DIR, DIR)". */
void
command_find_failure(int rc, const char *name, char *why, size_t whylen)
{
	char path[4096];
	struct stat st;
	size_t n;
	int i;

	if (rc == EXIT_NOEXEC)
		for (i = 0; i < ncommands_dirs; i++) {
			snprintf(path, sizeof path, "%s/%s", commands_dirs[i], name);
			if (stat(path, &st) == 0 && !is_executable_file(path)) {
				snprintf(why, whylen, "command not executable in the %s's commands: "
				         "%s (%s is not an executable regular file)", commands_side,
				         name, path);
				return;
			}
		}
	n = (size_t)snprintf(why, whylen, "command not found in the %s's commands: %s "
	                     "(searched ", commands_side, name);
	for (i = 0; i < ncommands_dirs && n < whylen; i++)
		n += (size_t)snprintf(why + n, whylen - n, "%s%s", i ? ", " : "", commands_dirs[i]);
	if (n < whylen)
		snprintf(why + n, whylen - n, ")");
}

static int
already_listed(char **names, int n, const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return 1;
	return 0;
}

void
commands_list(struct buf *out)
{
	char **names = NULL, path[4096];
	int n = 0, cap = 0, i;

	for (i = 0; i < ncommands_dirs; i++) {
		DIR *d = opendir(commands_dirs[i]);
		struct dirent *e;

		if (!d)
			continue;
		while ((e = readdir(d)) != NULL) {
			size_t len = strlen(e->d_name);

			if (!valid_command_name(e->d_name, len) ||
			    (size_t)snprintf(path, sizeof path, "%s/%s", commands_dirs[i],
			                     e->d_name) >= sizeof path)
				continue;
			if (!is_executable_file(path) || already_listed(names, n, e->d_name))
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 64;
				names = xrealloc(names, (size_t)cap * sizeof *names);
			}
			names[n++] = xstrdup(e->d_name);
		}
		closedir(d);
	}
	buf_put_sorted_lines(out, names, (size_t)n);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* The environment a command gets: ours, with NEGOTIATOR_GUEST set to the
 * guest that asked (host side) or removed (guest side).  Built before the
 * fork: the child of vfork() must not allocate. */
static char **
command_env(const char *guest)
{
	char **env, **e;
	size_t n = 0;

	for (e = environ; *e; e++)
		n++;
	env = xcalloc(n + 2, sizeof(char *));
	n = 0;
	for (e = environ; *e; e++)
		if (strncmp(*e, "NEGOTIATOR_GUEST=", 17) != 0)
			env[n++] = *e;
	if (guest) {
		size_t len = strlen(guest) + 18;

		env[n] = xmalloc(len);
		snprintf(env[n++], len, "NEGOTIATOR_GUEST=%s", guest);
	}
	return env;
}

static void
free_env(char **env, const char *guest)
{
	size_t n = 0;

	if (guest) {
		while (env[n])
			n++;
		free(env[n - 1]);
	}
	free(env);
}

/* A bigger stdout pipe means fewer switches between a fast command and us:
 * each one is costly in an emulated guest.  Linux >= 2.6.35 (the constant
 * is missing from older headers); an older kernel says EINVAL, and then
 * we stop asking.  EPERM (over /proc/sys/fs/pipe-max-size) is ignored. */
#if defined(__linux__) && !defined(F_SETPIPE_SZ)
#define F_SETPIPE_SZ 1031
#endif
static void
grow_pipe(int fd)
{
#ifdef F_SETPIPE_SZ
	static int refused;

	if (!refused && fcntl(fd, F_SETPIPE_SZ, 1048576) < 0 && errno == EINVAL)
		refused = 1;
#else
	(void)fd;
#endif
}

/* errno of a failed execve, written by the vfork child into our memory */
static volatile int exec_errno;
static pid_t spawn_parent;   /* our pid, for the child to compare */

/* In the child: never returns.  Only async-signal-safe calls: with vfork
 * the child borrows our memory until it execs.  On Linux the command is
 * killed when the daemon dies, even by SIGKILL (PR_SET_PDEATHSIG: the
 * command only, not the processes it starts; see pgids.c for those); a
 * daemon that died before that (fork: it runs on meanwhile) would never
 * send it, so the child then gives up at once. */
static void
child_exec(const char *path, char **argv, char **env, int fds[3])
{
	int i;

	setpgid(0, 0);
#if HAVE_PR_SET_PDEATHSIG
	prctl(PR_SET_PDEATHSIG, (unsigned long)SIGKILL);
	if (getppid() != spawn_parent)
		_exit(EXIT_AGENT);
#endif
	sig_default_all();
	for (i = 0; i < 3; i++)
		if (dup2(fds[i], i) < 0) {
			exec_errno = errno;
			_exit(EXIT_NOEXEC);
		}
	execve(path, argv, env);
	exec_errno = errno ? errno : ENOEXEC;
	_exit(EXIT_NOEXEC);
}

static void
close_pair(int p[2])
{
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
}

static int
open_pipe(int p[2])
{
	if (compat_pipe2(p, CX_CLOEXEC) < 0) {
		p[0] = p[1] = -1;
		return -1;
	}
	return 0;
}

/* vfork(): no page tables copied, which matters in a small or emulated
 * guest (fork of even a tiny daemon costs milliseconds under TCG); fork()
 * where the libc has no vfork (HAVE_VFORK 0).  All signals are blocked
 * around it so no handler runs in the child. */
static pid_t
spawn(const char *path, char **argv, char **env, int fds[3])
{
	sigset_t all, old;
	pid_t pid;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	exec_errno = 0;
	spawn_parent = getpid();
#if HAVE_VFORK
	pid = vfork();
#else
	pid = fork();
#endif
	if (pid == 0)
		child_exec(path, argv, env, fds);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return pid;
}

/* The child's ends stay blocking (commands expect that); ours do not. */
int
child_spawn(struct child *c, const char *path, char **argv, const char *guest,
            char *why, size_t whylen)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, fds[3];
	char **env;
	pid_t pid;

	if (open_pipe(in) < 0 || open_pipe(out) < 0 || open_pipe(err) < 0) {
		snprintf(why, whylen, "unable to create pipes: %s", strerror(errno));
		goto fail;
	}
	fds[0] = in[0];
	fds[1] = out[1];
	fds[2] = err[1];
	env = command_env(guest);
	pid = spawn(path, argv, env, fds);
	free_env(env, guest);
	if (pid < 0) {
		snprintf(why, whylen, "unable to fork: %s", strerror(errno));
		goto fail;
	}
	setpgid(pid, pid);   /* also here: no race with a quick kill */
	pgids_add(pid);
	close(in[0]);
	close(out[1]);
	close(err[1]);
	c->pid = pid;
	c->reaped = 0;
	c->status = 0;
	c->in = in[1];
	c->out = out[0];
	c->err = err[0];
	set_nonblock(c->in);
	set_nonblock(c->out);
	set_nonblock(c->err);
	grow_pipe(c->out);
	if (exec_errno) {
		snprintf(why, whylen, "unable to execute %s: %s", argv[0], strerror(exec_errno));
		return exec_errno == ENOENT ? EXIT_NOTFOUND : EXIT_NOEXEC;
	}
	return 0;
fail:
	close_pair(in);
	close_pair(out);
	close_pair(err);
	return EXIT_AGENT;
}

void
child_kill(struct child *c, int sig)
{
	if (c->pid > 0)
		kill(-c->pid, sig);
}
