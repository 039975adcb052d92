/*
 * cli.c: command-line pieces both programs share: checking option values
 * and the -e command, and the exit-status part of --help.  Bad input ends
 * the program here with one line on stderr and the agreed exit code.
 */
#include "negotiator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
cli_mode(const char *s)
{
	char *end;
	long m = strtol(s, &end, 8);

	if (!*s || *end || m < 0 || m > 0777)
		usage_error("invalid --control-mode (octal, like 0660): %s", s);
	return (int)m;
}

long
cli_seconds(const char *what, const char *s)
{
	long v;

	if (parse_seconds(s, &v) < 0)
		usage_error("invalid %s: %s", what, s);
	return v;
}

/* --help (show 'h') or --version ('V'), once every option was parsed, so
 * that an unknown option or an operand is still a usage error. */
int
cli_show(int show, const struct opt_state *st, void (*usage)(void))
{
	if (st->noperands)
		usage_error("unexpected argument: %s", st->operands[0]);
	if (show == 'h')
		usage();
	else
		printf("%s %s (protocol %d)\n", progname, NEGOTIATOR_VERSION, PROTOCOL_VERSION);
	return 0;
}

/* The logging options, and --pid-file (the daemon's, checked by the caller).
 * --syslog and --no-syslog: the last one given wins, so that options
 * added after a service file's own (DAEMON_ARGS, a drop-in) override it. */
int
cli_log_option(int key, const char *arg)
{
	switch (key) {
	case OPT_SYSLOG:
	case OPT_NO_SYSLOG:
		log_want_syslog(key == OPT_SYSLOG);
		return 1;
	case OPT_SYSLOG_FACILITY:
		if (log_set_facility(arg) < 0)
			usage_error("unknown --syslog-facility: %s (daemon, user or local0 to local7)",
			            arg);
		return 1;
	case OPT_LOG_FILE:
		if (!*arg)
			usage_error("invalid --log-file: an empty path");
		log_set_file(arg);
		return 1;
	case OPT_PID_FILE:
		if (!*arg)
			usage_error("invalid --pid-file: an empty path");
		daemon_pid_file = arg;
		return 1;
	default:
		return 0;
	}
}

/* The -e COMMAND: split like shlex, and a valid command name first. */
char **
cli_command(const char *command)
{
	const char *err;
	char **argv = shlex_split(command, &err);

	if (!argv)
		usage_error("invalid command: %s", err);
	if (!valid_command_name(argv[0], strlen(argv[0]))) {
		error("invalid command name: %s (allowed: A-Z a-z 0-9 . _ + -, not starting with "
		      ". or -)", argv[0]);
		free_argv(argv);
		exit(EXIT_NOTFOUND);
	}
	return argv;
}

void
cli_exit_codes(void)
{
	printf("\n"
	       "Exit status: the remote command's status; 128+N if it died of signal N;\n"
	       "124 timeout; 125 agent or channel failure; 126 command not executable\n"
	       "or not allowed; 127 command not found; 2 usage error.\n"
	       "\n"
	       "Options may follow operands, and a long option may be cut short where no\n"
	       "other begins so (--exec, --list-c).  Without -d, -e or another action,\n"
	       "this help is shown (exit 0), as python-negotiator did.\n");
}
