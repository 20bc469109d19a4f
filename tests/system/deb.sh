#!/bin/bash
# The Debian package test: build echod's packages with scripts/deb (or take
# them from ECHOD_DEB_DIR), boot a real systemd in a container whose root
# is a throwaway overlay of this machine's own tree, install them there
# with apt-get, check that echod.service is enabled, running and echoing
# on port 7, that a reload keeps it serving and that echod.socket can take
# over, then purge them and check that nothing of theirs is left.  Skipped,
# saying why, where no container can be booted (it needs root and
# systemd-nspawn).
set -u
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
[ -x "$py" ] || py=python3

skip() { echo "SKIP: $*"; exit 77; }
fail() {
	echo "FAIL: $*"
	if container_alive; then
		run journalctl --no-pager -u echod.service -u echod.socket | tail -30
	else
		tail -20 "$T/console.log" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g'
	fi
	exit 1
}

[ "$(id -u)" -eq 0 ] || skip "needs root to mount an overlay and boot a container"
command -v systemd-nspawn >/dev/null || skip "systemd-nspawn not installed (apt-get install systemd-container)"
[ -x /lib/systemd/systemd ] || skip "no systemd to boot"

T=$(mktemp -d /tmp/echod-deb-test.XXXXXX)
root=$T/root
ns_pid=
leader=
cleanup() {
	local i
	if [ -n "$ns_pid" ]; then
		kill "$ns_pid" 2>/dev/null
		# Bounded: nspawn stops its container within seconds.
		for i in $(seq 100); do
			kill -0 "$ns_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$ns_pid" 2>/dev/null
		wait "$ns_pid" 2>/dev/null
	fi
	# Never remove files through a still mounted overlay of /.
	if mountpoint -q "$root" && ! umount "$root" && ! umount -l "$root"; then
		echo "deb.sh: cannot unmount $root; leaving $T" >&2
		return
	fi
	# A lazily detached overlay may still pin its upper layer a while.
	if mountpoint -q "$T/rw" && ! umount "$T/rw" && ! umount -l "$T/rw"; then
		echo "deb.sh: cannot unmount $T/rw; leaving $T" >&2
		return
	fi
	rm -rf --one-file-system "$T"
}
trap cleanup EXIT
run() { nsenter -t "$leader" -a "$@"; }
# A command in the container's network namespace only, run from here: the
# clients are this tree's, not the package's.
netns() { nsenter -t "$leader" -n "$@"; }
# is_pid1, container_pid1, container_alive
. "$srcdir/tests/system/container.sh"
expect() {	# what got expected
	[ "$2" = "$3" ] || fail "$1 is '$2', expected '$3'"
}
phase_start=$SECONDS
phase() {
	echo "== $* (after $((SECONDS - phase_start)) s)"
}

phase "the packages"
if [ -n "${ECHOD_DEB_DIR:-}" ]; then
	debdir=$(cd "$ECHOD_DEB_DIR" && pwd) || fail "ECHOD_DEB_DIR=$ECHOD_DEB_DIR"
else
	"$srcdir/scripts/deb" "$T/deb" >"$T/deb.log" 2>&1 ||
		{ tail -30 "$T/deb.log"; fail "scripts/deb failed"; }
	debdir=$T/deb
fi
set -- "$debdir"/echod_*.deb
[ $# -eq 1 ] && [ -f "$1" ] || fail "not one echod_*.deb in $debdir: $*"
echod_deb=$(basename "$1")
set -- "$debdir"/echoload_*.deb
[ $# -eq 1 ] && [ -f "$1" ] || fail "not one echoload_*.deb in $debdir: $*"
echoload_deb=$(basename "$1")
echo "$echod_deb $echoload_deb"

# The container's root: this machine's / under an overlay whose writes go
# to a tmpfs, so dpkg can write /usr, /etc and its database and all of it
# is gone afterwards.  (systemd-nspawn's own --volatile=overlay refuses the
# host's root directory; --volatile=yes leaves /usr read-only and /etc and
# /var empty, with no dpkg database.)
phase "booting a container over an overlay of /"
mkdir "$T/rw" "$root" || fail "cannot make $T/rw and $root"
mount -t tmpfs -o mode=0755 echod-deb "$T/rw" ||
	skip "this machine cannot mount a tmpfs (no CAP_SYS_ADMIN?)"
mkdir "$T/rw/upper" "$T/rw/work" || fail "cannot make the overlay's layers"
mount -t overlay echod-deb -o "lowerdir=/,upperdir=$T/rw/upper,workdir=$T/rw/work" "$root" ||
	skip "this machine cannot mount an overlay over /"
systemd-id128 new >"$root/etc/machine-id"
# Docker-built images ship a policy-rc.d that forbids starting services;
# the package is to start echod as on a plain Debian machine.
rm -f "$root/usr/sbin/policy-rc.d"
mkdir -p "$root/srv/echod-deb"
cp "$debdir/$echod_deb" "$debdir/$echoload_deb" "$root/srv/echod-deb/"
# basic.target: none of this machine's own enabled services (haproxy,
# prometheus, ...) starts, only what systemd itself needs.  The package's
# postinst starts echod.service itself, whatever the target.
systemd-nspawn -D "$root" --register=no --keep-unit -b --private-network \
    --machine="echod-deb-$$" systemd.unit=basic.target >"$T/console.log" 2>&1 &
ns_pid=$!
# Polling, bounded, for systemd to be PID 1 (nothing tells us when), then
# is-system-running --wait is the readiness signal.
deadline=$((SECONDS + 120))
until leader=$(container_pid1); do
	kill -0 "$ns_pid" 2>/dev/null ||
		skip "this machine cannot boot a container: $(tail -3 "$T/console.log")"
	[ "$SECONDS" -lt "$deadline" ] || fail "no systemd as the container's PID 1 after 120 s"
	sleep 0.1
done
# Until its bus is up, systemctl fails at once: retried.
while :; do
	state=$(timeout $((deadline - SECONDS > 1 ? deadline - SECONDS : 1)) \
	    nsenter -t "$leader" -a systemctl is-system-running --wait 2>/dev/null)
	case "$state" in
	running|degraded) break;;
	maintenance|stopping) fail "the container's systemd is in state $state";;
	esac
	[ "$SECONDS" -lt "$deadline" ] || fail "its systemd did not finish booting: '$state'"
	sleep 0.1
done
echo "container up: $state (PID 1 is $leader)"
run dpkg-query -W echod >/dev/null 2>&1 &&
	skip "echod's package is installed on this machine; the test needs it absent"

# What exists before, to compare with after the purge: all of /etc, /usr,
# /opt and /srv; dpkg's and deb-systemd-helper's records; and anything
# under /var named after the packages (state, logs, caches).  Not all of
# /var: the container's own systemd, man-db and apt write there too.  Read
# from here, through the overlay that is the container's root.
snapshot() {
	(cd "$root" &&
	    find etc usr opt srv var/lib/dpkg/info var/lib/systemd/deb-systemd-helper-* -xdev &&
	    find var -xdev -name '*echo*') 2>/dev/null | sed 's|^|/|' | sort -u >"$T/$1"
}
snapshot before

phase "apt-get install /srv/echod-deb/$echod_deb /srv/echod-deb/$echoload_deb"
# apt resolves the dependencies from what is installed already: all of them
# are on this machine, which built the packages.  It cannot download: the
# container has no network but loopback.  (apt's --no-download would say
# so, but apt 2.6 then refuses .deb files given by path.)
run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "/srv/echod-deb/$echod_deb" "/srv/echod-deb/$echoload_deb" \
    >"$T/install.log" 2>&1 ||
	{ tail -20 "$T/install.log"; fail "apt-get install"; }
expect "echod's status" "$(run dpkg-query -W -f='${Status}' echod)" "install ok installed"
expect "echoload's status" "$(run dpkg-query -W -f='${Status}' echoload)" "install ok installed"
run dpkg-query -W -f='${Conffiles}\n' echod | grep -q "^ /etc/echod.conf " ||
	fail "/etc/echod.conf is not a conffile"

phase "echod.service"
expect "echod.service enabled" "$(run systemctl is-enabled echod.service)" enabled
expect "echod.service active" "$(run systemctl is-active echod.service)" active
# echod.socket binds the same port: shipped, but for those who choose it.
expect "echod.socket enabled" "$(run systemctl is-enabled echod.socket)" disabled
expect "echod.socket active" "$(run systemctl is-active echod.socket)" inactive
pid=$(run systemctl show -p MainPID --value echod.service)
uid=$(run sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$pid/status")
[ -n "$uid" ] && [ "$uid" -ne 0 ] || fail "echod (PID $pid) runs as uid '$uid', not a dynamic user"
echo "echod is PID $pid, uid $uid"
# etc/echod.conf leaves listen at its default, port 7 on 127.0.0.1 and ::1.
netns "$py" "$srcdir/tests/system/nspawn_client.py" echo 7 || fail "echo on port 7"
# The packaged echoload, against the packaged echod: it checks every byte.
run echoload -c 4 -d 1s 127.0.0.1:7 >"$T/echoload.out" 2>&1 ||
	{ cat "$T/echoload.out"; fail "echoload from the package"; }
grep "^result:" "$T/echoload.out"

phase "systemctl reload echod"
run systemctl reload echod || fail "systemctl reload echod"
expect "echod.service after the reload" "$(run systemctl is-active echod.service)" active
expect "echod's PID after the reload" "$(run systemctl show -p MainPID --value echod.service)" "$pid"
run journalctl --no-pager -u echod.service | grep -q "reloaded /etc/echod.conf" ||
	fail "no reload in the journal"
netns "$py" "$srcdir/tests/system/nspawn_client.py" echo 7 || fail "echo after the reload"

phase "echod.socket instead, as the README says"
run systemctl disable --now echod.service >/dev/null 2>&1 || fail "systemctl disable --now echod.service"
run systemctl enable --now echod.socket >/dev/null 2>&1 || fail "systemctl enable --now echod.socket"
expect "echod.socket active" "$(run systemctl is-active echod.socket)" active
expect "echod.service active" "$(run systemctl is-active echod.service)" inactive
netns "$py" "$srcdir/tests/system/nspawn_client.py" echo 7 || fail "echo through echod.socket"
expect "echod.service started by its socket" "$(run systemctl is-active echod.service)" active
run journalctl --no-pager -u echod.service | grep -q "listening on tcp 127.0.0.1:7 (from systemd)" ||
	fail "echod did not take its sockets from systemd"

# The purge, with the socket enabled and both units running: the package
# must stop both and remove what enabling them made.
phase "apt-get purge echod echoload"
run dpkg -L echod echoload | sort -u >"$T/files"
run env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q echod echoload \
    >"$T/purge.log" 2>&1 ||
	{ tail -20 "$T/purge.log"; fail "apt-get purge"; }
run dpkg-query -W -f='${Status}' echod >/dev/null 2>&1 && fail "echod is still known to dpkg"
snapshot after
# Every path the packages listed is back as it was: gone, or there before
# (a directory such as /usr/sbin).  /lib is /usr/lib on Debian 12.
while read -r f; do
	case "$f" in ""|/.) continue;; esac
	c=$(readlink -m "$root$f")
	c=${c#"$root"}
	[ -e "$root$c" ] || [ -L "$root$c" ] || continue
	grep -qxF "$c" "$T/before" || fail "left by the packages: $f"
done <"$T/files"
# Nor anything else: enablement links, deb-systemd-helper's state, dpkg's
# records of the two packages.
changed=$(diff "$T/before" "$T/after")
[ -z "$changed" ] || fail "the purge left the tree changed: $changed"
[ -e "$root/etc/echod.conf" ] && fail "/etc/echod.conf is still there"
# Gone, and stopped: a unit whose file is removed while it runs stays
# active, "not-found", until stopped.
for u in echod.service echod.socket; do
	expect "$u after the purge" "$(run systemctl show -p LoadState,ActiveState --value "$u" |
	    paste -sd ' ')" "not-found inactive"
done
run pgrep -x echod >/dev/null && fail "echod still runs"
netns bash -c 'exec 3<>/dev/tcp/127.0.0.1/7' 2>/dev/null && fail "port 7 still answers"

phase "done"
echo "PASS: the Debian packages install, serve, reload and purge cleanly"
exit 0
