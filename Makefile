# negotiator: POSIX make.  `make`, `make check`, `make demo`, `make install`,
# `make static`, `make vm-check`, `make bench`, `make scale-bench`,
# `make portcheck`, `make sanitize`, `make fuzz` (the last two need clang:
# see INSTALL).
# Honours CC, CFLAGS, CPPFLAGS, LDFLAGS, LDLIBS, PREFIX, DESTDIR and COMPAT
# (and, for the service files, SYSCONFDIR, LOGDIR, HOST_DAEMON_ARGS and
# GUEST_DAEMON_ARGS: see below).  `make service-check` runs the service
# files under their managers.
# compat/probe.sh finds out what the libc has (compat/config.h, and the
# libraries to link in compat/config.libs), again whenever CC, the flags or
# COMPAT change; `make COMPAT=all` builds every compat/ fallback instead.
# The built-in commands' directory and the share directory (from PREFIX; the
# latter for --check's advice) are compiled in through the generated
# paths.h, rebuilt whenever it changes: `make install PREFIX=/usr` after a
# plain `make` rebuilds what it must.

PREFIX     = /usr/local
BINDIR     = $(PREFIX)/bin
LIBDIR     = $(PREFIX)/lib/negotiator
BUILTINDIR = $(LIBDIR)/builtin-commands
MANDIR     = $(PREFIX)/share/man
SHAREDIR   = $(PREFIX)/share/negotiator
# the user commands' directory the programs look in first (negotiator.h:
# USER_COMMANDS_DIR), created empty by make install for the operator to fill
USERCMDDIR = /usr/lib/negotiator/commands
DESTDIR    =
# Written into the installed service files (SHAREDIR/init.d, upstart,
# systemd, supervisord), not into the programs: where the init.d scripts
# read their defaults (SYSCONFDIR/default/NAME), where the supervisord
# programs log (LOGDIR/NAME.log), and arguments each daemon gets after
# --daemon (no quotes: each file splits them at spaces), e.g.
#   make install HOST_DAEMON_ARGS='--control-mode 0660 --control-group libvirt'
SYSCONFDIR = /etc
LOGDIR     = /var/log
HOST_DAEMON_ARGS  =
GUEST_DAEMON_ARGS =

CC       = cc
CFLAGS   = -O2 -std=c89 -pedantic -Wall -Wextra
CPPFLAGS =
LDFLAGS  =
LDLIBS   =
COMPAT   =
SHELL    = /bin/sh

ALL_CFLAGS = $(CPPFLAGS) $(CFLAGS)
PROBE_LIBS = `cat compat/config.libs`

COMMON_OBJS = common.o proto.o json.o python.o link.o shlex.o opts.o exec.o pgids.o loop.o daemon.o \
	client.o cli.o result.o
HOST_OBJS   = host.o discover.o hosttools.o hostcheck.o policy.o fanout.o $(COMMON_OBJS)
GUEST_OBJS  = guest.o guestcheck.o vport.o $(COMMON_OBJS)
COMPAT_OBJS = compat/compat.o compat/pipe2.o compat/accept4.o compat/socket_cloexec.o \
	compat/open_cloexec.o compat/clock_monotonic.o compat/strlcpy.o compat/setenv.o \
	compat/stat.o compat/peercred.o
# compat/ stands alone: its files include only its own headers
COMPAT_HEADERS = compat/compat.h compat/features.h compat/glibc_symbols.h compat/config.h
HEADERS     = negotiator.h $(COMPAT_HEADERS) paths.h
TEST_PROGS  = tests/unit tests/standin tests/poke tests/hostile tests/negbench tests/pypeer \
	tests/fakehost tests/jsoncheck

all: negotiator-host negotiator-guest

negotiator-host: $(HOST_OBJS) $(COMPAT_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(HOST_OBJS) $(COMPAT_OBJS) $(LDLIBS) $(PROBE_LIBS)

negotiator-guest: $(GUEST_OBJS) $(COMPAT_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(GUEST_OBJS) $(COMPAT_OBJS) $(LDLIBS) $(PROBE_LIBS)

.c.o:
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

common.o proto.o json.o python.o link.o shlex.o opts.o exec.o pgids.o loop.o daemon.o client.o result.o \
	cli.o host.o discover.o hosttools.o hostcheck.o guest.o guestcheck.o vport.o policy.o fanout.o: $(HEADERS)
$(COMPAT_OBJS): $(COMPAT_HEADERS)

# the feature probe; it does nothing while CC, the flags and COMPAT stay
compat/config.h: FORCE
	@sh compat/probe.sh '$(CC)' '$(CPPFLAGS) $(CFLAGS)' '$(LDFLAGS)' '$(COMPAT)'

paths.h: FORCE
	@{ echo '#define BUILTIN_COMMANDS_DIR "$(BUILTINDIR)"'; \
	echo '#define SHARE_DIR "$(SHAREDIR)"'; } > paths.h.new; \
	if cmp -s paths.h.new paths.h; then rm -f paths.h.new; else mv paths.h.new paths.h; fi

FORCE:

UNIT_OBJS = common.o proto.o json.o python.o link.o shlex.o opts.o vport.o policy.o loop.o \
	$(COMPAT_OBJS)
tests/unit: tests/unit.c $(UNIT_OBJS) $(HEADERS)
	$(CC) $(ALL_CFLAGS) -I. $(LDFLAGS) -o $@ tests/unit.c $(UNIT_OBJS) $(LDLIBS) $(PROBE_LIBS)

tests/standin: tests/standin.c
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ tests/standin.c

tests/hostile: tests/hostile.c common.o proto.o json.o link.o $(COMPAT_OBJS) $(HEADERS)
	$(CC) $(ALL_CFLAGS) -I. $(LDFLAGS) -o $@ tests/hostile.c common.o proto.o json.o link.o \
		$(COMPAT_OBJS) $(LDLIBS) $(PROBE_LIBS)

tests/pypeer: tests/pypeer.c common.o json.o $(COMPAT_OBJS) $(HEADERS)
	$(CC) $(ALL_CFLAGS) -I. $(LDFLAGS) -o $@ tests/pypeer.c common.o json.o \
		$(COMPAT_OBJS) $(LDLIBS) $(PROBE_LIBS)

tests/fakehost: tests/fakehost.c common.o proto.o json.o link.o $(COMPAT_OBJS) $(HEADERS)
	$(CC) $(ALL_CFLAGS) -I. $(LDFLAGS) -o $@ tests/fakehost.c common.o proto.o json.o link.o \
		$(COMPAT_OBJS) $(LDLIBS) $(PROBE_LIBS)

tests/jsoncheck: tests/jsoncheck.c
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ tests/jsoncheck.c

tests/poke: tests/poke.c
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ tests/poke.c

check: all $(TEST_PROGS)
	COMPAT='$(COMPAT)' COMPAT_CC='$(CC)' COMPAT_CFLAGS='$(ALL_CFLAGS)' sh tests/check.sh

# Static binaries for old guests, built in static/ with a fresh feature
# probe: musl-gcc when it is installed (or STATIC_CC=...), else CC -static.
# Copy static/negotiator-guest into the guest (INSTALL, "Legacy guests").
STATIC_CC =
static: FORCE
	rm -rf static && mkdir -p static/compat
	cp Makefile *.c negotiator.h static/
	cp compat/*.c compat/compat.h compat/features.h compat/glibc_symbols.h \
		compat/probe.sh static/compat/
	cc='$(STATIC_CC)'; if [ -z "$$cc" ]; then cc='$(CC)'; \
		if command -v musl-gcc >/dev/null 2>&1; then cc=musl-gcc; fi; fi; \
	cd static && $(MAKE) CC="$$cc" CFLAGS='$(CFLAGS)' CPPFLAGS='$(CPPFLAGS)' \
		LDFLAGS='-static $(LDFLAGS)' PREFIX='$(PREFIX)' negotiator-host negotiator-guest
	@echo "static binaries: static/negotiator-guest static/negotiator-host"

# The service files under the programs that run them: the init.d scripts
# (dash, busybox sh, bash --posix; with and without start-stop-daemon),
# supervisord, systemd (a real one in a PID namespace where it can run),
# upstart's grammar (tests/service.sh)
service-check: all tests/standin
	BINDIR='$(BINDIR)' SHAREDIR='$(SHAREDIR)' sh tests/service.sh

# A real QEMU guest built from Debian packages (see tests/vm/build.sh for
# what it needs installed); cached in tests/vm/cache.
vm-check: all tests/poke tests/pypeer
	sh tests/vm/build.sh
	sh tests/vm/check.sh

# negotiator against qemu-ga in the same guest; prints and writes a table
# per guest kernel; then what a new stream costs over the stand-in
# (tests/bench-standin.sh: the probe, native and python peers)
bench: all tests/poke tests/qga tests/negbench tests/standin tests/pypeer
	sh tests/vm/build.sh
	sh tests/vm/bench.sh; rc=$$?; sh tests/bench-standin.sh . && exit $$rc

# where a stream's time goes, per path: CPU, context switches and system
# calls per MiB of both daemons and the client (tests/vm/profile.sh;
# PROFILE_KERNEL=current|legacy, PROFILE_MB); needs strace (also put in the
# guest, with its libraries)
profile: all tests/negbench
	VM_STRACE=1 sh tests/vm/build.sh
	sh tests/vm/profile.sh

tests/negbench: tests/negbench.c common.o proto.o json.o link.o $(COMPAT_OBJS) $(HEADERS)
	$(CC) $(ALL_CFLAGS) -I. $(LDFLAGS) -o $@ tests/negbench.c common.o proto.o json.o link.o \
		$(COMPAT_OBJS) $(LDLIBS) $(PROBE_LIBS)

tests/scaleguests: tests/scaleguests.c common.o proto.o json.o link.o $(COMPAT_OBJS) $(HEADERS)
	$(CC) $(ALL_CFLAGS) -I. $(LDFLAGS) -o $@ tests/scaleguests.c common.o proto.o json.o link.o \
		$(COMPAT_OBJS) $(LDLIBS) $(PROBE_LIBS)

tests/qga: tests/qga.c compat/config.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ tests/qga.c $(LDLIBS) $(PROBE_LIBS)

# One host daemon with N stand-in guests (tests/scaleguests, one process for
# all of them), N = 10, 100, 500 and 1000: daemon CPU and wall time per
# call (CLI and persistent client), RSS, idle CPU, static start-up, each
# event loop backend the daemon offers; targets with PASS/MISS, appended to
# bench-results.txt (tests/scale-bench.sh).  No QEMU.  Knobs: SCALE_N,
# SCALE_CALLS, SCALE_IDLE_S.
scale-bench: all tests/scaleguests tests/negbench tests/standin
	sh tests/scale-bench.sh .

demo: all tests/standin
	sh tests/demo.sh

# gcc/clang strict, tcc, static musl, static cross builds run under
# qemu-user, glibc symbol versions, system calls; each in its own copy of
# the tree.  One PASS/FAIL line per target (tests/portcheck.sh).
portcheck:
	sh tests/portcheck.sh

# make check built with -fsanitize=address,undefined and LeakSanitizer in a
# copy of the tree (SAN_CC: clang, else gcc); any sanitizer report of any
# process fails it.  One summary line (tests/sanitize.sh).
sanitize:
	SAN_CC='$(SAN_CC)' sh tests/sanitize.sh

# the libFuzzer harnesses in tests/fuzz (clang), built in tests/fuzz/out/build,
# FUZZ_S seconds each (default 60); a crash fails it and leaves its
# reproducer in tests/fuzz/out/HARNESS/ (tests/fuzz/fuzz.sh)
fuzz:
	FUZZ_S='$(FUZZ_S)' FUZZ_JOBS='$(FUZZ_JOBS)' FUZZ_TARGETS='$(FUZZ_TARGETS)' \
		sh tests/fuzz/fuzz.sh

install: all install-services
	mkdir -p $(DESTDIR)$(BINDIR) $(DESTDIR)$(BUILTINDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(SHAREDIR) $(DESTDIR)$(USERCMDDIR)
	cp negotiator-host negotiator-guest $(DESTDIR)$(BINDIR)/
	chmod 755 $(DESTDIR)$(BINDIR)/negotiator-host $(DESTDIR)$(BINDIR)/negotiator-guest
	# cp follows the symbolic links among them: find-distribution-release
	# and find-distribution-codename become copies of find-distributor-id
	for f in scripts/commands/*; do cp $$f $(DESTDIR)$(BUILTINDIR)/; \
		chmod 755 $(DESTDIR)$(BUILTINDIR)/`basename $$f`; done
	cp man/negotiator-host.8 man/negotiator-guest.8 $(DESTDIR)$(MANDIR)/man8/
	chmod 644 $(DESTDIR)$(MANDIR)/man8/negotiator-host.8 $(DESTDIR)$(MANDIR)/man8/negotiator-guest.8

# The service files alone (no build): `make install-services SHAREDIR=DIR
# BINDIR=...` writes a set for other paths or daemon arguments.
# " @DAEMON_ARGS@" becomes " ARGS", or nothing when ARGS is empty.
install-services:
	for d in init.d upstart systemd supervisord; do mkdir -p $(DESTDIR)$(SHAREDIR)/$$d; \
		for f in scripts/$$d/*; do \
			case $$f in *host*) a='$(HOST_DAEMON_ARGS)' ;; *) a='$(GUEST_DAEMON_ARGS)' ;; esac; \
			sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
				-e 's|@LOGDIR@|$(LOGDIR)|g' -e "s| @DAEMON_ARGS@|$${a:+ $$a}|g" $$f \
				> $(DESTDIR)$(SHAREDIR)/$$d/`basename $$f`; \
			chmod 644 $(DESTDIR)$(SHAREDIR)/$$d/`basename $$f`; done; done
	chmod 755 $(DESTDIR)$(SHAREDIR)/init.d/*

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/negotiator-host $(DESTDIR)$(BINDIR)/negotiator-guest
	rm -rf $(DESTDIR)$(BUILTINDIR) $(DESTDIR)$(SHAREDIR)
	rm -f $(DESTDIR)$(MANDIR)/man8/negotiator-host.8 $(DESTDIR)$(MANDIR)/man8/negotiator-guest.8

clean:
	rm -f *.o paths.h paths.h.new negotiator-host negotiator-guest $(TEST_PROGS) tests/qga tests/negbench \
		tests/scaleguests
	rm -rf static tests/fuzz/out/build
	rm -f compat/*.o compat/config.h compat/config.h.new compat/config.libs \
		compat/config.stamp compat/config.log

.PHONY: all check service-check install-services vm-check bench profile scale-bench demo portcheck sanitize fuzz static install uninstall clean FORCE
