#!/bin/sh
# Word splitting of unquoted expansions is intended (globbing is off: set -f);
# "$(( $x ))" rather than "$(( x ))" on purpose: old shells need the "$";
# "$(echo $out)" joins lines on purpose; ls -l is used to read a file mode.
# shellcheck disable=SC2086,SC2004,SC2116,SC2012
#
# tests/builtins.sh: test the built-in guest commands (scripts/commands).
#
# Usage: sh tests/builtins.sh SCRIPTS_DIR
#
# SCRIPTS_DIR holds find-disk-usage, find-distribution-codename,
# find-distribution-release, find-distributor-id and find-ip-addresses.
#
# The built-ins are run against fake root file systems (NEGOTIATOR_ROOT) with
# PATH restricted to temporary bin directories holding only the tools a test
# wants (symbolic links to the real ones, or small fake tools printing canned
# output). Prints one line per assertion, "ok - ..." or "not ok - ...", then a
# final line "N passed, M failed"; exits 1 when M > 0 (2 on usage errors).
#
# Environment: TEST_SH, if set, is the shell used to run the built-ins, e.g.
# TEST_SH=dash or TEST_SH="busybox sh" (default: run them directly, which
# uses their #!/bin/sh line). A shell that runs its own applets regardless of
# PATH (busybox sh built with FEATURE_SH_STANDALONE) makes the fake ip,
# ifconfig and df tools unreachable; those checks are then reported as
# "# skip" comment lines and counted neither as passed nor as failed.
#
# Needs only /bin/sh and coreutils-level tools (mkdir, ln, rm, cat, sed, tr,
# sort, cksum, ls, mktemp); awk and lsb_release are not needed.

set -f

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "Usage: sh tests/builtins.sh SCRIPTS_DIR" >&2
    exit 2
fi
dir=$(cd "$1" && pwd) || exit 2

passed=0
failed=0

ok() {
    passed=$(( $passed + 1 ))
    echo "ok - $*"
}

not_ok() {
    failed=$(( $failed + 1 ))
    echo "not ok - $*"
}

skip() {
    echo "# skip - $*"
}

# The shell that runs the built-ins, as an absolute path plus arguments.
runner=
if [ -n "${TEST_SH-}" ]; then
    set -- $TEST_SH
    first=$(command -v "$1") || {
        echo "builtins.sh: TEST_SH=$TEST_SH: $1 not found" >&2
        exit 2
    }
    shift
    runner="$first $*"
fi

tmp=$(mktemp -d 2>/dev/null) || {
    tmp=${TMPDIR:-/tmp}/negotiator-builtins.$$
    mkdir "$tmp" || exit 2
}
trap 'rm -rf "$tmp"' 0
trap 'exit 2' HUP INT TERM

nl='
'

# findtool TOOL: the absolute path of TOOL in $PATH (or /sbin, /usr/sbin).
# (Not "command -v": in busybox sh that names applets instead of files.)
findtool() {
    _tool=$1
    _ifs=$IFS
    IFS=:
    set -- $PATH /sbin /usr/sbin
    IFS=$_ifs
    for _dir in "$@"; do
        case $_dir in /*) ;; *) continue ;; esac
        if [ -f "$_dir/$_tool" ] && [ -x "$_dir/$_tool" ]; then
            echo "$_dir/$_tool"
            return 0
        fi
    done
    return 1
}

# mkbin DIR TOOL...: make DIR holding links to the given real tools, plus
# printf (a builtin in dash, bash and busybox sh but not in every POSIX sh,
# e.g. posh).
mkbin() {
    _d=$1
    shift
    mkdir -p "$_d"
    for _t in printf "$@"; do
        if _p=$(findtool "$_t"); then
            ln -s "$_p" "$_d/$_t"
        else
            echo "# note - $_t not found, not linked into $_d"
        fi
    done
}

# fake DIR NAME: install standard input as an executable fake tool.
fake() {
    cat > "$1/$2"
    chmod 0755 "$1/$2"
}

# write FILE: create FILE (and its directory) from standard input.
write() {
    mkdir -p "${1%/*}"
    cat > "$1"
}

# run SCRIPT ROOT BINDIR: run a built-in, setting $out, $err and $rc.
run() {
    out=$(NEGOTIATOR_ROOT=$2 PATH=$3 $runner "$dir/$1" 2>"$tmp/stderr")
    rc=$?
    err=$(cat "$tmp/stderr")
}

# expect SCRIPT ROOT BINDIR EXPECTED DESCRIPTION: assert success + exact output.
expect() {
    run "$1" "$2" "$3"
    if [ "$rc" -eq 0 ] && [ "$out" = "$4" ] && [ -z "$err" ]; then
        ok "$1 $5"
    else
        not_ok "$1 $5: expected [$4], got [$out], exit status $rc, stderr [$err]"
    fi
}

# expect_failure SCRIPT ROOT BINDIR DESCRIPTION: assert a non-zero exit
# status, no output and a one line error message prefixed with the name.
expect_failure() {
    run "$1" "$2" "$3"
    case $err in
        *"$nl"*) _lines=many ;;
        "$1: "?*) _lines=one ;;
        *) _lines=bad ;;
    esac
    if [ "$rc" -ne 0 ] && [ -z "$out" ] && [ "$_lines" = one ]; then
        ok "$1 $4 (fails: $err)"
    else
        not_ok "$1 $4: expected failure with one line on stderr, got [$out], exit status $rc, stderr [$err]"
    fi
}

# Is TOOL reachable by the runner shell even with an empty PATH (applet)?
shadowed() {
    _r=$(PATH=$tmp/empty ${runner:-/bin/sh} -c "command -v $1" 2>/dev/null)
    [ -n "$_r" ]
}

mkdir "$tmp/empty"
base=$tmp/bin-base
mkbin "$base" sed cat

# ---------------------------------------------------------------------------
# The files themselves.

for name in find-disk-usage find-distribution-codename find-distribution-release \
            find-distributor-id find-ip-addresses; do
    f=$dir/$name
    if [ -f "$f" ] && [ -x "$f" ]; then
        ok "$name exists and is executable"
    else
        not_ok "$name exists and is executable"
        continue
    fi
    mode=$(ls -lL "$f" | sed 's/ .*//')
    case $mode in
        -rwxr-xr-x*) ok "$name has mode 0755" ;;
        *) not_ok "$name has mode 0755 (got $mode)" ;;
    esac
    if [ "$(sed 1q "$f")" = '#!/bin/sh' ]; then
        ok "$name starts with #!/bin/sh"
    else
        not_ok "$name starts with #!/bin/sh"
    fi
    if ${runner:-/bin/sh} -n "$f" 2>"$tmp/stderr"; then
        ok "$name passes ${runner:-/bin/sh} -n"
    else
        not_ok "$name passes ${runner:-/bin/sh} -n: $(cat "$tmp/stderr")"
    fi
done

# The three distribution commands are one script that prints what its name
# asks for: here symbolic links to find-distributor-id, installed copies of it.
sum() {
    cksum 2>/dev/null < "$1" || echo missing
}
s1=$(sum "$dir/find-distributor-id")
s2=$(sum "$dir/find-distribution-release")
s3=$(sum "$dir/find-distribution-codename")
if [ "$s1" != missing ] && [ "$s1" = "$s2" ] && [ "$s1" = "$s3" ]; then
    ok "find-distributor-id, find-distribution-release and find-distribution-codename are one script"
else
    not_ok "find-distributor-id, find-distribution-release and find-distribution-codename are one script ($s1 / $s2 / $s3)"
fi

# ---------------------------------------------------------------------------
# Distribution: every case is a fake root plus the expected id/release/codename
# ("-" means the script must fail).

# check_distro ROOT ID RELEASE CODENAME DESCRIPTION [BINDIR]
check_distro() {
    _bin=${6:-$base}
    for _pair in "find-distributor-id:$2" "find-distribution-release:$3" \
                 "find-distribution-codename:$4"; do
        _script=${_pair%%:*}
        _want=${_pair#*:}
        if [ "$_want" = - ]; then
            expect_failure "$_script" "$1" "$_bin" "$5"
        else
            expect "$_script" "$1" "$_bin" "$_want" "$5"
        fi
    done
}

r=$tmp/root-debian12
write "$r/etc/os-release" <<'EOF'
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
EOF
check_distro "$r" Debian 12 bookworm "with only a Debian 12 /etc/os-release"

# The name the script is run as decides the field, not the file it is: a
# link to another of the three names, or a copy of one under another name,
# prints the field of the name it has; any other name is refused.
names=$tmp/names
mkdir "$names"
ln -s "$dir/find-distributor-id" "$names/find-distribution-codename"
ln -s "$dir/find-distribution-codename" "$names/find-distributor-id"
cat "$dir/find-distributor-id" > "$names/find-distribution-release"
cat "$dir/find-distributor-id" > "$names/find-distribution"
chmod 0755 "$names/find-distribution-release" "$names/find-distribution"
dir_was=$dir
dir=$names
check_distro "$r" Debian 12 bookworm "run through a link or a copy under another of the three names"
expect_failure find-distribution "$r" "$base" "under a name that is none of the three"
if [ "$rc" -eq 2 ]; then
    ok "find-distribution (an unknown name) exits 2"
else
    not_ok "find-distribution (an unknown name) exits 2 (got $rc)"
fi
dir=$dir_was

r=$tmp/root-lucid
write "$r/etc/lsb-release" <<'EOF'
DISTRIB_ID=Ubuntu
DISTRIB_RELEASE=10.04
DISTRIB_CODENAME=lucid
DISTRIB_DESCRIPTION="Ubuntu 10.04.4 LTS"
EOF
check_distro "$r" Ubuntu 10.04 lucid "with only an Ubuntu 10.04 /etc/lsb-release"

# Ubuntu 10.04 for real also has /etc/debian_version "squeeze/sid": it must
# not leak Debian data into Ubuntu answers.
r=$tmp/root-lucid-full
write "$r/etc/lsb-release" <<'EOF'
DISTRIB_ID=Ubuntu
DISTRIB_RELEASE=10.04
DISTRIB_DESCRIPTION="Ubuntu 10.04.4 LTS"
EOF
write "$r/etc/debian_version" <<'EOF'
squeeze/sid
EOF
write "$r/etc/dpkg/origins/default" <<'EOF'
Vendor: Ubuntu
Vendor-URL: http://www.ubuntu.com/
Bugs: https://bugs.launchpad.net/ubuntu/+filebug
Parent: Debian
EOF
check_distro "$r" Ubuntu 10.04 - "with Ubuntu lsb-release lacking DISTRIB_CODENAME plus debian_version squeeze/sid"

r=$tmp/root-xenial
write "$r/etc/lsb-release" <<'EOF'
DISTRIB_ID=Ubuntu
DISTRIB_RELEASE=16.04
EOF
write "$r/etc/os-release" <<'EOF'
NAME="Ubuntu"
VERSION="16.04.7 LTS (Xenial Xerus)"
ID=ubuntu
ID_LIKE=debian
VERSION_ID="16.04"
UBUNTU_CODENAME=xenial
EOF
check_distro "$r" Ubuntu 16.04 xenial "with lsb-release lacking the codename and os-release having UBUNTU_CODENAME"

r=$tmp/root-mint
write "$r/etc/lsb-release" <<'EOF'
DISTRIB_ID=LinuxMint
DISTRIB_RELEASE=19.3
DISTRIB_CODENAME=tricia
EOF
write "$r/etc/os-release" <<'EOF'
NAME="Linux Mint"
ID=linuxmint
VERSION_ID="99"
VERSION_CODENAME=wrong
EOF
check_distro "$r" LinuxMint 19.3 tricia "with lsb-release taking precedence over os-release"

r=$tmp/root-jessie
write "$r/etc/os-release" <<'EOF'
PRETTY_NAME="Debian GNU/Linux 8 (jessie)"
NAME="Debian GNU/Linux"
VERSION_ID="8"
VERSION="8 (jessie)"
ID=debian
EOF
check_distro "$r" Debian 8 jessie "with a Debian 8 os-release (codename only in VERSION)"

r=$tmp/root-alpine
mkdir -p "$r/usr/lib"
printf '%s\r\n' "NAME='Alpine Linux'" "ID='alpine'" "VERSION_ID='3.18.4'  " > "$r/usr/lib/os-release"
check_distro "$r" Alpine 3.18.4 - "with only /usr/lib/os-release (single quotes, CRLF) and no codename"

r=$tmp/root-opensuse
write "$r/etc/os-release" <<'EOF'
NAME=openSUSE
ID=opensuse
VERSION_ID="13.1"
VERSION="13.1 (Bottle)"
EOF
check_distro "$r" openSUSE 13.1 Bottle "with an os-release whose NAME only differs from ID in case"

r=$tmp/root-squeeze
write "$r/etc/debian_version" <<'EOF'
6.0.10
EOF
check_distro "$r" Debian 6.0.10 squeeze "with only /etc/debian_version 6.0.10"

r=$tmp/root-testing
write "$r/etc/debian_version" <<'EOF'
trixie/sid
EOF
check_distro "$r" Debian testing/unstable trixie "with only /etc/debian_version trixie/sid"

r=$tmp/root-centos6
write "$r/etc/redhat-release" <<'EOF'
CentOS release 6.5 (Final)
EOF
check_distro "$r" CentOS 6.5 Final "with only /etc/redhat-release of CentOS 6.5"

r=$tmp/root-rhel6
write "$r/etc/redhat-release" <<'EOF'
Red Hat Enterprise Linux Server release 6.5 (Santiago)
EOF
check_distro "$r" RedHatEnterpriseServer 6.5 Santiago "with only /etc/redhat-release of RHEL 6.5"

r=$tmp/root-centos7
write "$r/etc/os-release" <<'EOF'
NAME="CentOS Linux"
VERSION="7 (Core)"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="7"
EOF
write "$r/etc/redhat-release" <<'EOF'
CentOS Linux release 7.9.2009 (Core)
EOF
check_distro "$r" CentOS 7 Core "with CentOS 7 os-release and redhat-release"

r=$tmp/root-sles
write "$r/etc/SuSE-release" <<'EOF'
SUSE Linux Enterprise Server 11 (x86_64)
VERSION = 11
PATCHLEVEL = 3
EOF
check_distro "$r" SUSE 11 - "with only /etc/SuSE-release of SLES 11"

r=$tmp/root-empty
mkdir -p "$r/etc"
check_distro "$r" - - - "with an empty root"

if shadowed sed; then
    skip "distribution scripts without sed: sed is an applet of ${runner:-/bin/sh} that PATH can't hide"
else
    mkbin "$tmp/bin-nosed"
    check_distro "$tmp/root-debian12" - - - "without sed in PATH" "$tmp/bin-nosed"
fi

# lsb_release: used when present and NEGOTIATOR_ROOT is empty, ignored (as it
# reads the real /etc) when NEGOTIATOR_ROOT is set.
lsbbin=$tmp/bin-lsb
mkbin "$lsbbin" sed cat
fake "$lsbbin" lsb_release <<'EOF'
#!/bin/sh
short=
for arg in "$@"; do
    case $arg in
        -s | --short) short=1 ;;
        -i | --id) what=Ubuntu ;;
        -r | --release) what=10.04 ;;
        -c | --codename) what=lucid ;;
        *) echo "lsb_release: unexpected argument $arg" >&2; exit 2 ;;
    esac
done
[ -n "$short" ] || { echo "lsb_release: expected -s" >&2; exit 2; }
echo "$what"
EOF
check_distro "" Ubuntu 10.04 lucid "with lsb_release in PATH and no NEGOTIATOR_ROOT" "$lsbbin"
check_distro "$tmp/root-debian12" Debian 12 bookworm "ignores lsb_release when NEGOTIATOR_ROOT is set" "$lsbbin"

# ---------------------------------------------------------------------------
# IP addresses.

cidr_lines() {
    _all=yes
    for _l in $1; do
        case $_l in
            [0-9]*.[0-9]*.[0-9]*.[0-9]*/[0-9]*) ;;
            *) _all=no ;;
        esac
    done
    [ "$_all" = yes ]
}

realbin=$tmp/bin-real
mkbin "$realbin" sed cat
for t in ip ifconfig; do
    if p=$(findtool "$t"); then
        ln -s "$p" "$realbin/$t"
    fi
done
run find-ip-addresses "" "$realbin"
if [ "$rc" -eq 0 ] && [ -z "$err" ] && cidr_lines "$out"; then
    ok "find-ip-addresses exits 0 on this machine, printing CIDR lines ($(echo $out))"
else
    not_ok "find-ip-addresses exits 0 on this machine, printing CIDR lines: got [$out], exit status $rc, stderr [$err]"
fi

# The /proc/net/fib_trie fallback on this machine must find the same
# addresses as ip (when both are available to compare).
if [ -r /proc/net/fib_trie ] && [ -x "$realbin/ip" ] && ! shadowed ip && ! shadowed ifconfig; then
    run find-ip-addresses "" "$base"
    got=$(printf '%s\n' "$out" | sed 's,/.*,,' | sort)
    want=$("$realbin/ip" -4 addr show 2>/dev/null | sed -n 's|^[[:blank:]]*inet[[:blank:]]\{1,\}\([0-9.]*\).*|\1|p' | sort)
    if [ "$rc" -eq 0 ] && cidr_lines "$out" && [ "$got" = "$want" ]; then
        ok "find-ip-addresses via this machine's /proc/net/fib_trie finds the addresses ip finds"
    else
        not_ok "find-ip-addresses via this machine's /proc/net/fib_trie finds the addresses ip finds: got [$out], ip says [$want], exit status $rc, stderr [$err]"
    fi
else
    skip "find-ip-addresses via this machine's /proc/net/fib_trie (no fib_trie, no ip to compare, or ip/ifconfig are applets of $runner)"
fi

r=$tmp/root-fib
write "$r/proc/net/fib_trie" <<'EOF'
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.1.0.0/16 2 0 2
        |-- 10.1.0.0
           /16 link UNICAST
        |-- 10.1.2.3
           /32 host LOCAL
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 192.0.2.0/24 2 0 2
        +-- 192.0.2.0/30 2 0 2
           |-- 192.0.2.0
              /24 link UNICAST
           |-- 192.0.2.2
              /32 host LOCAL
        |-- 192.0.2.255
           /32 link BROADCAST
     |-- 198.51.100.7
        /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
     +-- 192.0.2.0/24 2 0 2
           |-- 192.0.2.2
              /32 host LOCAL
EOF
fake_ip_ok=yes
if shadowed ip || shadowed ifconfig; then
    fake_ip_ok=no
fi

if [ "$fake_ip_ok" = yes ]; then
    expect find-ip-addresses "$r" "$base" \
        "10.1.2.3/16${nl}127.0.0.1/8${nl}192.0.2.2/24${nl}198.51.100.7/32" \
        "without ip and ifconfig reads a fake /proc/net/fib_trie"
    expect_failure find-ip-addresses "$tmp/root-empty" "$base" \
        "without ip, ifconfig and /proc/net/fib_trie"

    ipbin=$tmp/bin-ip
    mkbin "$ipbin" sed cat
    fake "$ipbin" ip <<'EOF'
#!/bin/sh
[ "$*" = "addr show" ] || { echo "ip: unexpected arguments $*" >&2; exit 2; }
cat <<'OUT'
1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
    inet 127.0.0.1/8 scope host lo
       valid_lft forever preferred_lft forever
    inet6 ::1/128 scope host
       valid_lft forever preferred_lft forever
2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc pfifo_fast state UP group default qlen 1000
    link/ether 52:54:00:12:34:56 brd ff:ff:ff:ff:ff:ff
    inet 192.168.122.15/24 brd 192.168.122.255 scope global eth0
    inet 192.168.122.16/24 scope global secondary eth0
    inet6 fe80::5054:ff:fe12:3456/64 scope link
3: ppp0: <POINTOPOINT,MULTICAST,NOARP,UP,LOWER_UP> mtu 1496 qdisc pfifo_fast state UNKNOWN group default qlen 3
    link/ppp
    inet 10.64.64.64 peer 10.0.0.1/32 scope global ppp0
OUT
EOF
    expect find-ip-addresses "$r" "$ipbin" \
        "127.0.0.1/8${nl}192.168.122.15/24${nl}192.168.122.16/24${nl}10.64.64.64/32" \
        "parses ip addr show (secondary and peer addresses, no IPv6)"

    oldbin=$tmp/bin-ifconfig-old
    mkbin "$oldbin" sed cat
    fake "$oldbin" ifconfig <<'EOF'
#!/bin/sh
[ "$*" = "-a" ] || { echo "ifconfig: unexpected arguments $*" >&2; exit 2; }
cat <<'OUT'
eth0      Link encap:Ethernet  HWaddr 52:54:00:12:34:56
          inet addr:192.168.122.15  Bcast:192.168.122.255  Mask:255.255.255.0
          inet6 addr: fe80::5054:ff:fe12:3456/64 Scope:Link
          UP BROADCAST RUNNING MULTICAST  MTU:1500  Metric:1

eth1      Link encap:Ethernet  HWaddr 52:54:00:12:34:57
          inet addr:172.16.5.9  Bcast:172.16.255.255  Mask:255.240.0.0
          UP BROADCAST RUNNING MULTICAST  MTU:1500  Metric:1

lo        Link encap:Local Loopback
          inet addr:127.0.0.1  Mask:255.0.0.0
          inet6 addr: ::1/128 Scope:Host
          UP LOOPBACK RUNNING  MTU:16436  Metric:1
OUT
EOF
    expect find-ip-addresses "$r" "$oldbin" \
        "192.168.122.15/24${nl}172.16.5.9/12${nl}127.0.0.1/8" \
        "falls back to old net-tools/busybox ifconfig output"

    newbin=$tmp/bin-ifconfig-new
    mkbin "$newbin" sed cat
    fake "$newbin" ifconfig <<'EOF'
#!/bin/sh
[ "$*" = "-a" ] || { echo "ifconfig: unexpected arguments $*" >&2; exit 2; }
cat <<'OUT'
eth0: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 1500
        inet 192.0.2.2  netmask 255.255.255.0  broadcast 192.0.2.255
        inet6 fd00::2  prefixlen 64  scopeid 0x0<global>
        ether 02:00:00:00:00:01  txqueuelen 1000  (Ethernet)

lo: flags=73<UP,LOOPBACK,RUNNING>  mtu 65536
        inet 127.0.0.1  netmask 255.0.0.0
        inet6 ::1  prefixlen 128  scopeid 0x10<host>
OUT
EOF
    expect find-ip-addresses "$r" "$newbin" \
        "192.0.2.2/24${nl}127.0.0.1/8" \
        "falls back to net-tools 2.x ifconfig output"

    brokenbin=$tmp/bin-ip-broken
    mkbin "$brokenbin" sed cat
    printf '#!/bin/sh\necho "ip: cannot talk to the kernel" >&2\nexit 1\n' | fake "$brokenbin" ip
    expect find-ip-addresses "$r" "$brokenbin" \
        "10.1.2.3/16${nl}127.0.0.1/8${nl}192.0.2.2/24${nl}198.51.100.7/32" \
        "falls back to /proc/net/fib_trie when ip fails"
else
    skip "find-ip-addresses with fake ip/ifconfig tools and a fake fib_trie: ip or ifconfig is an applet of $runner that PATH can't hide"
fi

# ---------------------------------------------------------------------------
# Disk usage.

dfbin=$tmp/bin-df
mkbin "$dfbin" sed cat df
run find-disk-usage "" "$dfbin"
# DEVICE MOUNT_POINT BYTES_TOTAL BYTES_USED; the mount point may hold spaces.
bad=$(printf '%s\n' "$out" | sed -e '/^$/d' -e '/^\/dev\/[^ ]* \/.* [0-9]\{1,\} [0-9]\{1,\}$/d')
if [ "$rc" -eq 0 ] && [ -z "$err" ] && [ -z "$bad" ]; then
    ok "find-disk-usage exits 0 on this machine, printing DEVICE MOUNT_POINT BYTES_TOTAL BYTES_USED lines ($(echo $out))"
else
    not_ok "find-disk-usage exits 0 on this machine, printing DEVICE MOUNT_POINT BYTES_TOTAL BYTES_USED lines: got [$out], exit status $rc, stderr [$err]"
fi

if shadowed df; then
    skip "find-disk-usage with fake df tools: df is an applet of $runner that PATH can't hide"
else
    gnubin=$tmp/bin-df-gnu
    mkbin "$gnubin" sed cat
    fake "$gnubin" df <<'EOF'
#!/bin/sh
[ "$*" = "-P -B 1" ] || { echo "df: unexpected arguments $*" >&2; exit 1; }
cat <<'OUT'
Filesystem                 1-blocks        Used   Available Capacity Mounted on
udev                     1038467072           0  1038467072       0% /dev
tmpfs                     209793024     1028096   208764928       1% /run
/dev/vda1               21003628544  5033861120 14878302208      26% /
/dev/vdb1              105555197952       61440 100166946816      1% /srv/my data
/dev/mapper/vg0-home    52710469632 10737418240 39261143040      22% /home
/dev/sr0                          -           -           -       - /media/cdrom
none                              0           0           0       - /sys/fs/fuse/connections
OUT
EOF
    expect find-disk-usage "" "$gnubin" \
        "/dev/vda1 / 21003628544 5033861120${nl}/dev/vdb1 /srv/my data 105555197952 61440${nl}/dev/mapper/vg0-home /home 52710469632 10737418240" \
        "parses df -P -B 1 output"

    kbin=$tmp/bin-df-k
    mkbin "$kbin" sed cat
    fake "$kbin" df <<'EOF'
#!/bin/sh
case "$*" in
    "-P -k") ;;
    *) echo "df: invalid option -- 'B'" >&2; exit 1 ;;
esac
cat <<'OUT'
Filesystem           1024-blocks    Used Available Capacity Mounted on
/dev/root             20511356   4915880  14529592  26% /
tmpfs                   204876      1004    203872   0% /run
/dev/vdb1            103081248        60  97819284   0% /srv
OUT
EOF
    expect find-disk-usage "" "$kbin" \
        "/dev/root / 21003628544 5033861120${nl}/dev/vdb1 /srv 105555197952 61440" \
        "falls back to df -P -k (busybox without -B) and converts to bytes"

    wrapbin=$tmp/bin-df-wrap
    mkbin "$wrapbin" sed cat
    fake "$wrapbin" df <<'EOF'
#!/bin/sh
case "$*" in
    "-k") ;;
    *) echo "df: unknown option" >&2; exit 1 ;;
esac
cat <<'OUT'
Filesystem           1K-blocks      Used Available Use% Mounted on
/dev/mapper/lucid-root
                       8256952   2311920   5525604  30% /
none                    249700       224    249476   1% /dev
/dev/vda1               233191     17904    202846   9% /boot
/dev/mapper/lucid-srv--data
                      10321208    154232   9642688   2% /srv/old  data
OUT
EOF
    expect find-disk-usage "" "$wrapbin" \
        "/dev/mapper/lucid-root / 8455118848 2367406080${nl}/dev/vda1 /boot 238787584 18333696${nl}/dev/mapper/lucid-srv--data /srv/old data 10568916992 157933568" \
        "falls back to plain df -k and joins wrapped lines"

    failbin=$tmp/bin-df-fail
    mkbin "$failbin" sed cat
    printf '#!/bin/sh\necho "df: cannot read table of mounted file systems" >&2\nexit 1\n' | fake "$failbin" df
    expect_failure find-disk-usage "" "$failbin" "when df fails"
    expect_failure find-disk-usage "" "$base" "without df"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
