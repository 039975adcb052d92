/*
 * negotiator: a scriptable KVM/QEMU guest agent.
 *
 * One header for the whole program: limits, the buffer type, the wire
 * protocol, the session layer ("link"), calls, and the helpers every part
 * uses.  See PROTOCOL for the wire format and README for the big picture.
 */
#ifndef NEGOTIATOR_H
#define NEGOTIATOR_H

/* Feature macros live here, not in CFLAGS, so that a build system passing
 * its own CFLAGS (buildroot, distro packaging) still gets them. */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 600
#endif
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif
#ifndef _BSD_SOURCE
#define _BSD_SOURCE 1
#endif

#include <sys/types.h>
#include <stddef.h>
#include <stdarg.h>

#include "compat/compat.h"

#define NEGOTIATOR_VERSION "0.1.0"
#define PROTOCOL_VERSION 1

/* ---- limits ---------------------------------------------------------- */
#define MAX_PAYLOAD      65536UL   /* largest frame payload we accept or send */
#define MAX_LEN_DIGITS   5         /* digits of MAX_PAYLOAD */
#define DATA_CHUNK       32000UL   /* data bytes per out/err/in frame */
#define CALL_WINDOW      262144UL  /* unacknowledged data per call and direction */
#define MAX_CALLS        128       /* calls in flight per link */
#define OUT_HIGH_WATER   262144UL  /* stop producing data above this queue size */
#define OUT_HARD_LIMIT   (MAX_CALLS * (CALL_WINDOW + 4 * MAX_PAYLOAD))
#define IN_BUF_SIZE      (2 * (MAX_PAYLOAD + 16))
#define MAX_NAME         255       /* command and guest names */
#define MAX_ARGS         1024

/* ---- timers (milliseconds) ------------------------------------------- */
#define HELLO_INTERVAL   2000      /* repeat hello while no session */
#define PING_INTERVAL    3000      /* keepalive while calls are in flight */
#define PEER_DEAD_AFTER  12000     /* silence that ends a session with calls */
#define SCAN_INTERVAL    10000     /* host: rescan the channel directory */

/* ---- exit codes agreed with users ------------------------------------ */
#define EXIT_TIMEOUT     124
#define EXIT_AGENT       125
#define EXIT_NOEXEC      126
#define EXIT_NOTFOUND    127
#define EXIT_USAGE       2

/* ---- default paths ---------------------------------------------------- */
#ifndef USER_COMMANDS_DIR
#define USER_COMMANDS_DIR "/usr/lib/negotiator/commands"
#endif
#ifndef BUILTIN_COMMANDS_DIR
#define BUILTIN_COMMANDS_DIR "/usr/local/lib/negotiator/builtin-commands"
#endif
#ifndef CHANNELS_DIR
#define CHANNELS_DIR "/var/lib/libvirt/qemu/channel/target"
#endif
#define PORT_H2G "negotiator-host-to-guest.0"
#define PORT_G2H "negotiator-guest-to-host.0"

/* ---- logging (common.c) ---------------------------------------------- */
enum { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG, LOG_LVL_TRACE };
extern const char *progname;
extern int log_level;
void log_open(const char *prog, int use_syslog);
void fatal(const char *fmt, ...);   /* logs and exits EXIT_AGENT */
void error(const char *fmt, ...);
void warn(const char *fmt, ...);
void logit(const char *fmt, ...);
void debug(const char *fmt, ...);
void trace(const char *fmt, ...);
/* copy peer-supplied text into dst with control characters escaped */
const char *escape_text(char *dst, size_t dstlen, const void *src, size_t len);

/* ---- memory ------------------------------------------------------------ */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* ---- bounded byte queue (common.c) -------------------------------------- */
struct buf {
	unsigned char *data;
	size_t start, end, cap;
	size_t limit;               /* never grows beyond this */
};
void buf_init(struct buf *b, size_t limit);
void buf_free(struct buf *b);
size_t buf_len(const struct buf *b);
unsigned char *buf_ptr(const struct buf *b);
unsigned char *buf_reserve(struct buf *b, size_t n);  /* NULL: over limit */
void buf_commit(struct buf *b, size_t n);
int buf_append(struct buf *b, const void *p, size_t n); /* -1: over limit */
void buf_consume(struct buf *b, size_t n);
void buf_clear(struct buf *b);
ssize_t buf_read_fd(struct buf *b, int fd, size_t max);   /* read() into it */
ssize_t buf_write_fd(struct buf *b, int fd, size_t max);  /* write() from it */

/* ---- time, descriptors, signals (common.c) ------------------------------ */
typedef unsigned long mtime_t;   /* monotonic milliseconds, wraps safely */
#define TIME_BEFORE(a, b) ((long)((a) - (b)) < 0)
mtime_t now_ms(void);
int set_nonblock(int fd);
int set_cloexec(int fd);
int make_pipe(int fds[2]);         /* nonblocking, close-on-exec */
void sig_setup(const int *sigs);   /* route sigs through the self-pipe */
int sig_fd(void);                  /* read end of the self-pipe */
int sig_next(void);                /* next pending signal or 0 */
void sig_default_all(void);        /* in a child before exec */
void random_nonce(char out[17]);

/* select() sets of any size: FD_SET aborts past FD_SETSIZE under
 * _FORTIFY_SOURCE, and a host with hundreds of guests needs more. */
struct fdset { unsigned long *bits; int words; };
void fdset_zero(struct fdset *s, int maxfd);
void fdset_add(struct fdset *s, int fd);
int fdset_has(const struct fdset *s, int fd);
void fdset_free(struct fdset *s);
int select_sets(int nfds, struct fdset *r, struct fdset *w, long timeout_ms);

/* ---- names, paths, argument helpers (common.c, shlex.c) ----------------- */
int valid_command_name(const char *name, size_t len);
int valid_guest_name(const char *name, size_t len);
int unix_connect(const char *path);          /* -1 with errno */
int unix_listen(const char *path, int mode); /* -1 with errno */
int parse_seconds(const char *s, long *out);
/* shell-like word splitting (python's shlex.split); NULL on error with *err */
char **shlex_split(const char *s, const char **err);
void free_argv(char **argv);

/* ---- command line options (opts.c) ------------------------------------- */
struct opt_spec {
	const char *name;            /* long name, without "--" */
	int key;                     /* short letter, or a value >= 256 */
	int has_arg;
};
struct opt_state {
	int ind;                     /* next argv index */
	const char *bundle;          /* rest of a "-abc" group */
	const char *arg;             /* the option's argument */
	char *operands[64];          /* non-option arguments, in order */
	int noperands;
};
/* next option's key, 0 when the options end; operands may come before,
 * between or after options (GNU style) and are collected in st->operands;
 * exits with a usage error on a bad option */
int opt_next(int argc, char **argv, const struct opt_spec *specs, struct opt_state *st);

/* shared command-line checks (cli.c); they exit on bad input */
int cli_mode(const char *s);
long cli_seconds(const char *what, const char *s);
char **cli_command(const char *command);
void cli_exit_codes(void);

/* ---- protocol (proto.c) ------------------------------------------------- */
enum msg_type {
	M_NONE = 0, M_HELLO, M_SYNC, M_PING, M_PONG, M_EXEC, M_LIST, M_GUESTS,
	M_IN, M_OUT, M_ERR, M_EOF, M_ACK, M_EXIT, M_FAIL, M_CANCEL, M_ERROR
};
struct msg {
	enum msg_type type;
	unsigned long id;
	unsigned long num;           /* ack count, exit code, fail code, version */
	int signaled;                /* exit: died of signal num */
	const char *word1, *word2;   /* hello/sync nonces (not terminated) */
	const unsigned char *data;   /* data / reason / netstrings */
	size_t datalen;
};
enum { FRAME_OK, FRAME_MORE, FRAME_BAD };
/* one frame at p[0..len): payload and total bytes used, or why not */
int frame_parse(const unsigned char *p, size_t len, const unsigned char **payload,
                size_t *plen, size_t *used);
/* offset of the first plausible hello/sync frame in p, or where to keep
 * scanning from when more bytes arrive */
size_t sync_scan(const unsigned char *p, size_t len, int *found);
int msg_parse(const unsigned char *payload, size_t len, struct msg *m, const char **why);
const char *msg_name(enum msg_type t);
/* netstrings: LEN ":" BYTES "," */
int netstring_put(struct buf *b, const void *p, size_t n);
/* next netstring from *pp (advances); 0 ok, -1 malformed, 1 end of input */
int netstring_get(const unsigned char **pp, const unsigned char *end,
                  const unsigned char **s, size_t *n);
void trace_frame(const char *dir, const char *who, const unsigned char *p, size_t n);
void trace_from_env(void);                   /* NEGOTIATOR_TRACE=1 */

/* ---- session layer (link.c) --------------------------------------------- */
enum link_kind { LINK_CHANNEL, LINK_CONTROL, LINK_CLIENT };
enum link_event { EV_NONE, EV_MSG, EV_UP, EV_RESET };
struct link {
	struct link *next;
	int fd;                     /* -1 while not connected */
	enum link_kind kind;
	int serves;                 /* accepts exec/list from the peer */
	int calls;                  /* sends exec/list to the peer */
	char name[96];              /* for log messages */
	struct buf in, out;
	int initiates;              /* sends hello on its own (not control) */
	int syncing;                /* discarding until hello/sync */
	int up;                     /* session established */
	int pending_up;             /* EV_UP to report after an EV_RESET */
	int session_lost;           /* EV_RESET to report */
	int paused;                 /* guest port with no host: wait for SIGIO */
	int dead;                   /* close and free at the next chance */
	size_t consumed;            /* frame handed out, consumed on next call */
	char nonce[17], peer[17];
	mtime_t last_rx, next_hello, ping_at, retry_at;
	int ping_sent;
	int ncalls;                 /* calls currently using this link */
	void *owner;                /* host: the guest this channel belongs to */
	unsigned long next_id;
};
void link_init(struct link *l, enum link_kind kind, int fd, const char *name);
void link_attach(struct link *l, int fd);    /* new connection: new session */
void link_detach(struct link *l);            /* connection lost */
int link_send(struct link *l, const char *head, size_t headlen,
              const void *data, size_t datalen);
int link_sendf(struct link *l, const char *fmt, ...);
void link_send_hello(struct link *l);
int link_read(struct link *l);               /* 1 data, 0 EOF, -1 error */
int link_flush(struct link *l);              /* -1 on write error */
/* next event from the bytes read so far: a message (in *m), the session
 * coming up, or the session being replaced (fail the calls) */
enum link_event link_next(struct link *l, struct msg *m);
void link_timers(struct link *l, mtime_t now, int active);
mtime_t link_deadline(const struct link *l, mtime_t now, int active);
int link_out_room(const struct link *l);     /* below the high water mark */

/* ---- commands (exec.c) -------------------------------------------------- */
struct child {
	pid_t pid;                   /* 0 when not running or reaped */
	int in, out, err;            /* pipes, -1 when closed */
	int status;                  /* from waitpid, once reaped */
	int reaped;
};
extern const char *commands_dirs[16];
extern int ncommands_dirs;
void commands_dir_add(const char *dir);
void commands_dir_defaults(void);
/* 0 found (path filled), or EXIT_NOTFOUND / EXIT_NOEXEC */
int command_find(const char *name, char *path, size_t pathlen);
/* newline-separated sorted names of available commands */
void commands_list(struct buf *out);
/* start argv[0] (already resolved to path); returns 0 or an exit code with
 * a reason in why */
int child_spawn(struct child *c, const char *path, char **argv,
                const char *guest, char *why, size_t whylen);
void child_kill(struct child *c, int sig);

/* ---- the daemon core (daemon.c) ---------------------------------------- */
struct daemon_hooks {
	/* periodic work: (re)connect channels, rescan; returns next deadline */
	mtime_t (*tick)(mtime_t now);
	/* a channel's connection ended (EOF/error) */
	void (*lost)(struct link *l);
	/* route a control request to the channel serving target */
	struct link *(*route)(const char *target, char *why, size_t whylen);
	/* names of reachable peers, one per line (host: guests) */
	void (*targets)(struct buf *out);
	/* signal other than TERM/INT/CHLD arrived */
	void (*signal)(int sig);
	/* guest name given to commands as NEGOTIATOR_GUEST (host only) */
	const char *(*guest_of)(struct link *l);
};
extern struct link *links;
void daemon_add_link(struct link *l);
void daemon_remove_link(struct link *l);     /* fails its calls, closes it */
void daemon_listen(const char *path, int mode, const char *group);
int daemon_run(const struct daemon_hooks *h);
void daemon_link_lost(struct link *l, const char *why);

/* ---- clients (client.c) ------------------------------------------------- */
enum client_op { OP_EXEC, OP_LIST, OP_GUESTS };
struct client_req {
	enum client_op op;
	const char *target;          /* guest name through a host daemon, or "" */
	char **argv;
	long timeout;                /* seconds, 0 = none */
	int direct;                  /* talking straight to a channel */
	int eof_means_wait;          /* virtio port: EOF = host not there yet */
};
int client_run(int fd, const struct client_req *req);
int control_connect(const char *given, const char *which);  /* -1: no daemon */
const char *default_control_path(const char *which);

#endif
