/*
 * standin.c - a small stand-in for QEMU's virtio-serial ports, used by the
 * tests and "make demo".
 *
 * For each port it listens on two UNIX stream sockets: the host side (where
 * libvirt/QEMU would put the chardev socket) and the guest side (standing in
 * for /dev/virtio-ports/PORT).  It relays bytes between one host client and
 * one guest opener, and reproduces the virtio-serial quirks described in
 * shared/notes/virtio-serial.md:
 *   - one client per side; further connections wait in the listen backlog;
 *   - no host connected: the guest reads EOF at once (we accept and close);
 *   - host connected, no guest: host bytes are silently discarded (with
 *     --hold they wait in the socket, as with QEMU, which does not read a
 *     host socket while the guest port is closed);
 *   - guest leaves: the host notices nothing;
 *   - host leaves: the guest gets what was buffered, then EOF.
 * SIGUSR1 injects garbage into live relays, SIGHUP drops the host clients,
 * SIGTERM/SIGINT remove the sockets and exit.
 *
 * Strict C89 + POSIX, one poll() loop, nonblocking descriptors, bounded
 * buffers with backpressure.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200112L
#endif
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 600
#endif

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Relayed bytes buffered per direction.  Large enough that a benchmark
 * through the stand-in measures the agent, not the stand-in (with 64 KiB
 * the relay took a wakeup per 64 KiB and capped a stream well below what
 * the daemons do); the ring is allocated while a relay lives. */
#define SOFT_LIMIT (1024 * 1024)
#define JUNK_LEN 300            /* bytes injected per SIGUSR1 */
/* Injected junk may go beyond SOFT_LIMIT, so a SIGUSR1 never has to wait. */
#define RING_CAP (SOFT_LIMIT + 16 * JUNK_LEN)
#define DISCARD_LEN (64 * 1024) /* bytes read and dropped per read() */
#define MAX_PORTS 32
#define BACKLOG 8

struct ring {
    char *data;                 /* RING_CAP bytes, or NULL while unused */
    size_t start, len;
};

enum guest_state {
    G_NONE,     /* no guest connection */
    G_LIVE,     /* guest connected and host connected: relaying */
    G_CLOSING   /* host left: flush what is buffered toward the guest, close */
};

struct port {
    const char *name;
    char *host_path, *guest_path;
    int host_listen, guest_listen;   /* -1 until created */
    int host_fd, guest_fd;           /* -1 when not connected */
    enum guest_state gstate;
    struct ring to_guest, to_host;
};

static struct port *ports[MAX_PORTS];
static int nports;
static int verbose;
static int hold_host;   /* --hold: QEMU's way, host bytes wait for a guest */
static const char *pidfile;
static int pidfile_written;
static char *domain_dir;            /* set only if we created it */
static int sig_pipe[2] = { -1, -1 };
static char scratch[DISCARD_LEN];   /* sink for discarded bytes */
static unsigned long junk_state = 20240601UL;

/* ---------- messages and cleanup ---------- */

static void vlog(const char *prefix, const char *fmt, va_list ap)
{
    fprintf(stderr, "standin: %s", prefix);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("", fmt, ap);
    va_end(ap);
}

static void note(const char *fmt, ...)
{
    va_list ap;
    if (!verbose)
        return;
    va_start(ap, fmt);
    vlog("", fmt, ap);
    va_end(ap);
}

static void cleanup(void)
{
    int i;
    for (i = 0; i < nports; i++) {
        if (ports[i]->host_listen >= 0)
            unlink(ports[i]->host_path);
        if (ports[i]->guest_listen >= 0)
            unlink(ports[i]->guest_path);
    }
    if (pidfile_written)
        unlink(pidfile);
    if (domain_dir)
        rmdir(domain_dir);  /* fails harmlessly if something else is in it */
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("fatal: ", fmt, ap);
    va_end(ap);
    cleanup();
    exit(1);
}

static void usage(FILE *f)
{
    /* One string per line: C89 only guarantees 509-character literals. */
    static const char *const text[] = {
        "usage: standin [OPTIONS] CHANNEL_DIR GUEST_NAME GUEST_DIR",
        "Stand-in for QEMU virtio-serial ports (for tests).",
        "  --scheme old|domain|domain-id  host socket naming (default old):",
        "      old        CHANNEL_DIR/GUEST_NAME.PORT",
        "      domain     CHANNEL_DIR/domain-GUEST_NAME/PORT",
        "      domain-id  CHANNEL_DIR/domain-ID-GUEST_NAME/PORT",
        "  --id N         domain id for --scheme domain-id (default 1)",
        "  --port NAME    port to create (repeatable; default",
        "                 negotiator-host-to-guest.0 and negotiator-guest-to-host.0)",
        "  --pidfile PATH write our pid there once all sockets listen",
        "  --hold         no guest: leave host bytes unread (QEMU) instead of",
        "                 discarding them",
        "  -v, --verbose  log connects/disconnects (or STANDIN_VERBOSE=1)",
        "  -h, --help     this text",
        "Guest side sockets: GUEST_DIR/PORT.",
        "Signals: USR1 inject garbage, HUP drop host clients, TERM/INT exit.",
        NULL
    };
    const char *const *line;
    for (line = text; *line; line++)
        fprintf(f, "%s\n", *line);
}

static void usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "standin: %s%s\n", what, arg ? arg : "");
    usage(stderr);
    exit(2);
}

/* Concatenates a NULL-terminated list of strings into a new string. */
static char *concat(const char *first, ...)
{
    va_list ap;
    const char *s;
    size_t len = 0;
    char *out;

    va_start(ap, first);
    for (s = first; s; s = va_arg(ap, const char *))
        len += strlen(s);
    va_end(ap);
    out = malloc(len + 1);
    if (!out)
        die("out of memory");
    *out = '\0';
    va_start(ap, first);
    for (s = first; s; s = va_arg(ap, const char *))
        strcat(out, s);
    va_end(ap);
    return out;
}

/* ---------- descriptors ---------- */

static int would_block(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        die("fcntl: %s", strerror(errno));
    fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static int make_listener(const char *path)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd;

    if (strlen(path) >= sizeof sa.sun_path)
        die("socket path too long (%lu bytes, max %lu): %s",
            (unsigned long)strlen(path),
            (unsigned long)sizeof sa.sun_path - 1, path);
    /* Remove a stale socket, but never clobber some other kind of file. */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            die("%s exists and is not a socket", path);
        if (unlink(path) < 0)
            die("unlink %s: %s", path, strerror(errno));
    }
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        die("bind %s: %s", path, strerror(errno));
    if (listen(fd, BACKLOG) < 0)
        die("listen %s: %s", path, strerror(errno));
    set_nonblock(fd);
    return fd;
}

static int accept_nb(int lfd)
{
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) {
        if (!would_block(errno) && errno != ECONNABORTED)
            say("accept: %s", strerror(errno));
        return -1;
    }
    set_nonblock(fd);
    return fd;
}

/*
 * Reads away unread input before close(): closing a UNIX socket with unread
 * data makes the peer see ECONNRESET instead of a clean EOF.
 */
static void drain_and_close(int fd)
{
    int i;
    for (i = 0; i < 64; i++)
        if (read(fd, scratch, sizeof scratch) <= 0)
            break;
    close(fd);
}

/* ---------- ring buffers ---------- */

static size_t ring_room(const struct ring *r)
{
    return r->len < SOFT_LIMIT ? SOFT_LIMIT - r->len : 0;
}

/* The ring's storage, allocated on first use (a relay that starts). */
static char *ring_data(struct ring *r)
{
    if (!r->data && !(r->data = malloc(RING_CAP)))
        die("out of memory (a ring of %lu bytes)", (unsigned long)RING_CAP);
    return r->data;
}

/* One read() into the free space (below SOFT_LIMIT); returns read()'s result. */
static ssize_t ring_fill(struct ring *r, int fd)
{
    size_t tail = (r->start + r->len) % RING_CAP;
    size_t room = ring_room(r);
    ssize_t n;

    ring_data(r);
    if (room > RING_CAP - tail)
        room = RING_CAP - tail;
    n = read(fd, r->data + tail, room);
    if (n > 0)
        r->len += (size_t)n;
    return n;
}

/* Writes until empty or EAGAIN; returns -1 if the peer is gone. */
static int ring_flush(struct ring *r, int fd)
{
    while (r->len > 0) {
        size_t chunk = r->len;
        ssize_t n;
        if (chunk > RING_CAP - r->start)
            chunk = RING_CAP - r->start;
        n = write(fd, r->data + r->start, chunk);
        if (n < 0)
            return would_block(errno) ? 0 : -1;
        r->start = (r->start + (size_t)n) % RING_CAP;
        r->len -= (size_t)n;
    }
    r->start = 0;
    return 0;
}

/* Appends up to RING_CAP (beyond SOFT_LIMIT); returns bytes stored. */
static size_t ring_append(struct ring *r, const char *p, size_t n)
{
    size_t i;
    if (n > RING_CAP - r->len)
        n = RING_CAP - r->len;
    ring_data(r);
    for (i = 0; i < n; i++)
        r->data[(r->start + r->len + i) % RING_CAP] = p[i];
    r->len += n;
    return n;
}

static void ring_clear(struct ring *r)
{
    r->start = r->len = 0;
}

/* The relay is over: its storage goes back. */
static void ring_release(struct ring *r)
{
    free(r->data);
    r->data = NULL;
    ring_clear(r);
}

/* ---------- connection state changes ---------- */

static void guest_close(struct port *p, const char *why)
{
    note("%s: guest disconnected (%s)", p->name, why);
    drain_and_close(p->guest_fd);
    p->guest_fd = -1;
    p->gstate = G_NONE;
    ring_release(&p->to_guest);   /* a closing guest discards its input */
    if (p->to_host.len == 0)      /* what it wrote still goes to the host */
        ring_release(&p->to_host);
}

static void host_close(struct port *p, const char *why)
{
    note("%s: host disconnected (%s)", p->name, why);
    drain_and_close(p->host_fd);
    p->host_fd = -1;
    ring_release(&p->to_host);  /* QEMU drops what the host did not take */
    if (p->gstate == G_LIVE) {
        p->gstate = G_CLOSING;
        if (p->to_guest.len == 0)
            guest_close(p, "host gone");
    }
}

static void host_accept(struct port *p)
{
    int fd = accept_nb(p->host_listen);
    if (fd < 0)
        return;
    p->host_fd = fd;
    ring_clear(&p->to_host);
    note("%s: host connected", p->name);
}

static void guest_accept(struct port *p)
{
    int fd = accept_nb(p->guest_listen);
    if (fd < 0)
        return;
    /* A host that connected just before the guest may not be accepted yet. */
    if (p->host_fd < 0)
        host_accept(p);
    if (p->host_fd < 0) {
        note("%s: guest connected without host: closed (EOF)", p->name);
        drain_and_close(fd);
        return;
    }
    p->guest_fd = fd;
    p->gstate = G_LIVE;
    ring_clear(&p->to_guest);
    note("%s: guest connected", p->name);
}

/* ---------- data movement ---------- */

static void host_readable(struct port *p)
{
    ssize_t n;
    if (p->gstate == G_LIVE) {
        if (ring_room(&p->to_guest) == 0)
            return;
        n = ring_fill(&p->to_guest, p->host_fd);
    } else {
        /* No guest has the port open: QEMU loses these bytes. */
        n = read(p->host_fd, scratch, sizeof scratch);
    }
    if (n == 0)
        host_close(p, "EOF");
    else if (n < 0 && !would_block(errno))
        host_close(p, strerror(errno));
}

static void guest_readable(struct port *p)
{
    ssize_t n;
    if (p->gstate == G_LIVE) {
        if (ring_room(&p->to_host) == 0)
            return;
        n = ring_fill(&p->to_host, p->guest_fd);
    } else {
        n = read(p->guest_fd, scratch, sizeof scratch);  /* closing */
    }
    if (n == 0)
        guest_close(p, "EOF");
    else if (n < 0 && !would_block(errno))
        guest_close(p, strerror(errno));
}

static void host_writable(struct port *p)
{
    if (ring_flush(&p->to_host, p->host_fd) < 0)
        host_close(p, strerror(errno));
    else if (p->gstate == G_NONE && p->to_host.len == 0)
        ring_release(&p->to_host);  /* the guest's last bytes are out */
}

static void guest_writable(struct port *p)
{
    if (ring_flush(&p->to_guest, p->guest_fd) < 0)
        guest_close(p, strerror(errno));
    else if (p->gstate == G_CLOSING && p->to_guest.len == 0)
        guest_close(p, "host gone");
}

/* ---------- signals ---------- */

static void on_signal(int sig)
{
    int saved = errno;
    char c = (char)sig;
    ssize_t r = write(sig_pipe[1], &c, 1);
    (void)r;
    errno = saved;
}

static void setup_signals(void)
{
    static const int sigs[] = { SIGUSR1, SIGHUP, SIGTERM, SIGINT };
    struct sigaction sa;
    size_t i;

    signal(SIGPIPE, SIG_IGN);
    if (pipe(sig_pipe) < 0)
        die("pipe: %s", strerror(errno));
    set_nonblock(sig_pipe[0]);
    set_nonblock(sig_pipe[1]);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sigaction(sigs[i], &sa, NULL) < 0)
            die("sigaction: %s", strerror(errno));
}

/* Simple fixed-seed LCG, so runs are reproducible. */
static unsigned junk_byte(void)
{
    junk_state = (junk_state * 1103515245UL + 12345UL) & 0xffffffffUL;
    return (unsigned)(junk_state >> 16) & 0xffU;
}

/* Junk that looks a bit like data: a number line, words, digits, binary. */
static void make_junk(char *buf)
{
    static const char head[] = "99999999\ngarbage-";
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    size_t i;

    memcpy(buf, head, sizeof head - 1);
    for (i = sizeof head - 1; i < JUNK_LEN; i++) {
        unsigned r = junk_byte();
        if (r % 8 == 0)
            buf[i] = '\n';
        else if (r % 2)
            buf[i] = alnum[junk_byte() % (sizeof alnum - 1)];
        else
            buf[i] = (char)junk_byte();
    }
}

static void inject_junk(void)
{
    char junk[JUNK_LEN];
    int i, hits = 0;

    make_junk(junk);
    for (i = 0; i < nports; i++) {
        struct port *p = ports[i];
        size_t a, b;
        if (p->gstate != G_LIVE)
            continue;
        a = ring_append(&p->to_guest, junk, JUNK_LEN);
        b = ring_append(&p->to_host, junk, JUNK_LEN);
        say("SIGUSR1: %s: injected garbage (\"99999999\\ngarbage-\" + random,"
            " %lu bytes toward guest, %lu toward host)",
            p->name, (unsigned long)a, (unsigned long)b);
        hits++;
    }
    if (!hits)
        say("SIGUSR1: no port has both sides connected; nothing injected");
}

static void handle_signals(void)
{
    char buf[64];
    ssize_t n, i;
    int j;

    while ((n = read(sig_pipe[0], buf, sizeof buf)) > 0) {
        for (i = 0; i < n; i++) {
            switch (buf[i]) {
            case SIGUSR1:
                inject_junk();
                break;
            case SIGHUP:
                note("SIGHUP: dropping host clients");
                for (j = 0; j < nports; j++)
                    if (ports[j]->host_fd >= 0)
                        host_close(ports[j], "SIGHUP");
                break;
            default:  /* SIGTERM, SIGINT */
                note("stopping");
                cleanup();
                exit(0);
            }
        }
    }
}

/* ---------- main loop ---------- */

/* poll(), not select(): FD_SET is a checked function call under
 * _FORTIFY_SOURCE (__fdelt_chk, glibc >= 2.15), and has a size limit. */
static struct pollfd pfds[2 + 4 * MAX_PORTS];
static int npfds;

static void watch(int fd, short events)
{
    int i;
    for (i = 0; i < npfds && pfds[i].fd != fd; i++)
        ;
    if (i == npfds) {
        pfds[npfds].fd = fd;
        pfds[npfds++].events = 0;
    }
    pfds[i].events |= events;
}

static int ready(int fd, short events)
{
    int i;
    for (i = 0; i < npfds; i++)
        if (pfds[i].fd == fd)
            return (pfds[i].revents & (events | POLLERR | POLLHUP | POLLNVAL)) != 0 &&
                   (pfds[i].events & events) != 0;
    return 0;
}

static void build_sets(void)
{
    int i;
    npfds = 0;
    watch(sig_pipe[0], POLLIN);
    for (i = 0; i < nports; i++) {
        struct port *p = ports[i];
        /* Not watching a listener keeps new clients waiting in the backlog. */
        if (p->host_fd < 0)
            watch(p->host_listen, POLLIN);
        else {
            /* Backpressure: stop reading when the guest-bound buffer is full. */
            if ((p->gstate != G_LIVE && !hold_host) ||
                (p->gstate == G_LIVE && ring_room(&p->to_guest) > 0))
                watch(p->host_fd, POLLIN);
            if (p->to_host.len > 0)
                watch(p->host_fd, POLLOUT);
        }
        if (p->gstate == G_NONE)
            watch(p->guest_listen, POLLIN);
        else {
            if (p->gstate == G_CLOSING || ring_room(&p->to_host) > 0)
                watch(p->guest_fd, POLLIN);
            if (p->to_guest.len > 0)
                watch(p->guest_fd, POLLOUT);
        }
    }
}

/* Every step re-checks the state: an earlier step may have closed a side. */
static void service_port(struct port *p)
{
    if (p->host_fd < 0 && ready(p->host_listen, POLLIN))
        host_accept(p);
    if (p->gstate == G_NONE && ready(p->guest_listen, POLLIN))
        guest_accept(p);
    if (p->host_fd >= 0 && ready(p->host_fd, POLLIN))
        host_readable(p);
    if (p->gstate != G_NONE && ready(p->guest_fd, POLLIN))
        guest_readable(p);
    if (p->host_fd >= 0 && ready(p->host_fd, POLLOUT))
        host_writable(p);
    if (p->gstate != G_NONE && ready(p->guest_fd, POLLOUT))
        guest_writable(p);
}

static void run(void)
{
    int i;

    for (;;) {
        build_sets();
        if (poll(pfds, (nfds_t)npfds, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll: %s", strerror(errno));
        }
        if (ready(sig_pipe[0], POLLIN))
            handle_signals();
        for (i = 0; i < nports; i++)
            service_port(ports[i]);
    }
}

/* ---------- setup ---------- */

static void add_port(const char *name)
{
    struct port *p;
    if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        usage_error("bad port name: ", name);
    if (nports == MAX_PORTS)
        usage_error("too many ports", NULL);
    p = calloc(1, sizeof *p);
    if (!p)
        die("out of memory");
    p->name = name;
    p->host_listen = p->guest_listen = p->host_fd = p->guest_fd = -1;
    p->gstate = G_NONE;
    ports[nports++] = p;
}

/* Matches "--name VALUE" or "--name=VALUE" at argv[*i]; NULL if no match. */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t len = strlen(name);
    if (strncmp(argv[*i], name, len) != 0)
        return NULL;
    if (argv[*i][len] == '=')
        return argv[*i] + len + 1;
    if (argv[*i][len] != '\0')
        return NULL;
    if (*i + 1 >= argc)
        usage_error("missing value for ", name);
    return argv[++*i];
}

static void setup_ports(const char *scheme, const char *id, char **pos)
{
    const char *chan = pos[0], *guest = pos[1], *gdir = pos[2];
    char *dir = NULL;
    int i;

    if (strcmp(scheme, "domain") == 0)
        dir = concat(chan, "/domain-", guest, (char *)NULL);
    else if (strcmp(scheme, "domain-id") == 0)
        dir = concat(chan, "/domain-", id, "-", guest, (char *)NULL);
    if (dir) {
        if (mkdir(dir, 0755) == 0)
            domain_dir = dir;
        else if (errno != EEXIST)
            die("mkdir %s: %s", dir, strerror(errno));
    }
    for (i = 0; i < nports; i++) {
        struct port *p = ports[i];
        p->host_path = dir ? concat(dir, "/", p->name, (char *)NULL)
                           : concat(chan, "/", guest, ".", p->name, (char *)NULL);
        p->guest_path = concat(gdir, "/", p->name, (char *)NULL);
        p->host_listen = make_listener(p->host_path);
        p->guest_listen = make_listener(p->guest_path);
        note("%s: host %s, guest %s", p->name, p->host_path, p->guest_path);
    }
}

/* Written via rename() so a waiting test never reads a half-written file. */
static void write_pidfile(void)
{
    char *tmp;
    FILE *f;

    if (!pidfile)
        return;
    tmp = concat(pidfile, ".tmp", (char *)NULL);
    f = fopen(tmp, "w");
    if (!f)
        die("%s: %s", tmp, strerror(errno));
    fprintf(f, "%ld\n", (long)getpid());
    if (fclose(f) != 0 || rename(tmp, pidfile) != 0) {
        unlink(tmp);
        die("writing %s: %s", pidfile, strerror(errno));
    }
    pidfile_written = 1;
    free(tmp);
}

int main(int argc, char **argv)
{
    const char *scheme = "old", *v, *env;
    char idbuf[32], *pos[3];
    long id = 1;
    int i, npos = 0, opts = 1;

    env = getenv("STANDIN_VERBOSE");
    verbose = env && *env && strcmp(env, "0") != 0;
    for (i = 1; i < argc; i++) {
        char *end;
        if (!opts || argv[i][0] != '-' || argv[i][1] == '\0') {
            if (npos == 3)
                usage_error("too many arguments: ", argv[i]);
            pos[npos++] = argv[i];
        } else if (!strcmp(argv[i], "--")) {
            opts = 0;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--hold")) {
            hold_host = 1;
        } else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
            verbose = 1;
        } else if ((v = opt_value(argc, argv, &i, "--scheme")) != NULL) {
            if (strcmp(v, "old") && strcmp(v, "domain") && strcmp(v, "domain-id"))
                usage_error("unknown scheme: ", v);
            scheme = v;
        } else if ((v = opt_value(argc, argv, &i, "--id")) != NULL) {
            errno = 0;
            id = strtol(v, &end, 10);
            if (!*v || *end || errno || id < 0)
                usage_error("bad --id: ", v);
        } else if ((v = opt_value(argc, argv, &i, "--port")) != NULL) {
            add_port(v);
        } else if ((v = opt_value(argc, argv, &i, "--pidfile")) != NULL) {
            pidfile = v;
        } else {
            usage_error("unknown option: ", argv[i]);
        }
    }
    if (npos != 3)
        usage_error("need CHANNEL_DIR GUEST_NAME GUEST_DIR", NULL);
    if (nports == 0) {
        add_port("negotiator-host-to-guest.0");
        add_port("negotiator-guest-to-host.0");
    }
    sprintf(idbuf, "%ld", id);

    setup_signals();
    setup_ports(scheme, idbuf, pos);
    write_pidfile();
    run();
    return 0;
}
