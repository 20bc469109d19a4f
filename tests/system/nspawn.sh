#!/bin/bash
# The real systemd test: boot systemd in a container (systemd-nspawn over
# this machine's own tree, with a staged 'make install' laid over /usr),
# then drive echod.service and echod.socket with systemctl and check
# states, exit status, the echo and the journal.  Skipped, saying why,
# where no container can be booted.
set -u
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
[ -x "$py" ] || py=python3

skip() { echo "SKIP: $*"; exit 77; }
fail() {
	if [ -n "$leader" ] && ! container_alive; then
		echo "FAIL: $* (the container is gone)"
	else
		echo "FAIL: $*"
	fi
	dump
	exit 1
}

[ "$(id -u)" -eq 0 ] || skip "needs root to boot a container"
command -v systemd-nspawn >/dev/null || skip "systemd-nspawn not installed (apt-get install systemd-container)"
[ -x /lib/systemd/systemd ] || skip "no systemd to boot"

T=$(mktemp -d /tmp/echod-nspawn.XXXXXX)
ns_pid=
ns_status=
leader=
why=
cleanup_container() {
	[ -n "$ns_pid" ] && kill "$ns_pid" 2>/dev/null && wait "$ns_pid" 2>/dev/null
	ns_pid=''
	leader=''
	ns_status=''
}
cleanup() {
	cleanup_container
	rm -rf "$T"
}
trap cleanup EXIT
run() {
	container_alive || { echo "run $1: the container is gone" >&2; return 125; }
	nsenter -t "$leader" -a "$@"
}
# is_pid1, container_pid1, container_alive
. "$srcdir/tests/system/container.sh"
# systemd-nspawn's exit status, once it has gone.
reap() {
	[ -n "$ns_pid" ] && [ -z "$ns_status" ] && ! kill -0 "$ns_pid" 2>/dev/null || return 0
	wait "$ns_pid" 2>/dev/null
	ns_status=$?
}
# The last lines systemd-nspawn and the container's console wrote, without
# the colours.
console_tail() {
	tail -"$1" "$T/console.log" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g'
}
dump() {
	if container_alive; then
		run journalctl --no-pager -u echod.service -u echod.socket | tail -40
		return
	fi
	reap
	[ -n "$leader" ] && echo "== the container is gone (PID 1 was $leader${ns_status:+, systemd-nspawn exit status $ns_status}); its console:"
	console_tail 20
}

# Build and stage an install for /usr and /etc.
echo "== building a /usr install in $T/stage"
mkdir -p "$T/build" && cd "$T/build" || exit 99
"$srcdir/configure" -q --prefix=/usr --sysconfdir=/etc \
    --with-systemdsystemunitdir=/usr/lib/systemd/system >/dev/null || exit 99
make -s -j"$(nproc)" >/dev/null 2>&1 && make -s install DESTDIR="$T/stage" >/dev/null 2>&1 ||
	fail "staged install failed"
systemd-id128 new > "$T/machine-id"
# The shipped config, on a port that needs CAP_NET_BIND_SERVICE: port 7.
cp "$T/stage/etc/echod.conf" "$T/echod.conf"

# Boot the container and wait for its systemd to finish booting.  Returns
# 0 when it is up; 1 when it went away right after booting, or its systemd
# did not finish booting in 300 s; 2 when it did not come up (as before:
# this machine cannot boot a container).
boot_once() {
	local deadline=$((SECONDS + 300)) pid1_by=$((SECONDS + 60)) state=
	leader=
	ns_status=
	systemd-nspawn -D / --volatile=yes --register=no --keep-unit -b \
	    --private-network --machine="echod-test-$$" \
	    --bind-ro="$T/machine-id:/etc/machine-id" \
	    --bind-ro="$T/echod.conf:/etc/echod.conf" \
	    --overlay-ro="/usr:$T/stage/usr:/usr" >"$T/console.log" 2>&1 &
	ns_pid=$!
	# Polling, bounded: nothing tells us when systemd has been exec'd as
	# the container's PID 1 and opened its private bus.  After that,
	# is-system-running --wait is the readiness signal.
	while :; do
		if ! kill -0 "$ns_pid" 2>/dev/null; then
			reap
			why="systemd-nspawn exited with status $ns_status"
			return 2
		fi
		[ -n "$leader" ] || leader=$(container_pid1)
		if [ -n "$leader" ]; then
			state=$(timeout $((deadline - SECONDS > 1 ? deadline - SECONDS : 1)) \
			    nsenter -t "$leader" -a systemctl is-system-running --wait 2>/dev/null)
			case "$state" in
			running|degraded) break;;
			maintenance|stopping) why="the container's systemd is in state $state"; return 2;;
			esac
			[ "$SECONDS" -lt "$deadline" ] ||
				{ why="its systemd did not finish booting: '$state'"; return 1; }
		elif [ "$SECONDS" -ge "$pid1_by" ]; then
			why="no systemd as the container's PID 1 after 60 s"
			return 2
		fi
		sleep 0.1
	done
	# The container must still be there now that it is up.
	if ! container_alive || ! run true; then
		reap
		why="it went away right after booting ($state)${ns_status:+, systemd-nspawn exit status $ns_status}"
		return 1
	fi
	echo "== container up: $state (PID 1 is $leader)"
	[ "$state" = running ] || run systemctl --failed --no-legend --plain
	return 0
}

boot() {
	local try
	for try in 1 2; do
		why=
		boot_once
		case $? in
		0) return 0;;
		2) skip "this machine cannot boot a container: $why: $(console_tail 3)";;
		esac
		echo "== boot $try: the container failed: $why; its console:"
		console_tail 20
		cleanup_container
		mv "$T/console.log" "$T/console.$try.log"
	done
	fail "the container failed twice: $why"
}

expect_state() {	# unit property value
	got=$(run systemctl show -p "$2" --value "$1")
	[ "$got" = "$3" ] || fail "$1: $2 is '$got', expected '$3'"
}

wait_inactive() {
	for _ in $(seq 150); do
		[ "$(run systemctl show -p ActiveState --value "$1")" = inactive ] && return 0
		sleep 0.2
	done
	fail "$1 did not stop"
}

boot

echo "== systemd-analyze verify and security on the installed units"
run systemd-analyze verify --man=no /usr/lib/systemd/system/echod.service \
    /usr/lib/systemd/system/echod.socket 2>&1 | grep -v "^$" &&
	fail "systemd-analyze verify complained"
exposure=$(run systemd-analyze security echod.service --no-pager 2>/dev/null |
	sed -n 's/.*Overall exposure level for echod.service: \([0-9.]*\).*/\1/p')
echo "exposure: $exposure"
[ -n "$exposure" ] && awk "BEGIN { exit !($exposure <= 2.0) }" ||
	fail "exposure '$exposure' is above 2.0"

echo "== echod.service"
run systemctl start echod.service || fail "systemctl start echod"
expect_state echod.service ActiveState active
expect_state echod.service SubState running
nsenter -t "$leader" -n "$py" "$srcdir/tests/system/nspawn_client.py" echo 7 || fail "echo"
run systemctl reload echod.service || fail "systemctl reload"
expect_state echod.service ActiveState active
run journalctl --no-pager -u echod.service | grep -q "echod.*reloaded /etc/echod.conf" ||
	fail "no reload in the journal"
run journalctl --no-pager -u echod.service | grep -q "Reloading echod.service" ||
	fail "the unit did not go through reloading"
nsenter -t "$leader" -n "$py" "$srcdir/tests/system/nspawn_client.py" drain 7 "$leader" echod.service ||
	fail "drain"
wait_inactive echod.service
expect_state echod.service Result success
expect_state echod.service ExecMainStatus 0
run journalctl --no-pager -u echod.service | grep -q "signal 15: stopping; draining 1 connections" ||
	fail "no drain in the journal"
run journalctl --no-pager -u echod.service | grep -q "cut" &&
	fail "the drain cut a connection"
# journalctl -p filters on the priorities echod sends.
run journalctl --no-pager -u echod.service -p notice | grep -q "listening on tcp" ||
	fail "no notice-priority lines"
run journalctl --no-pager -u echod.service -p warning | grep -q "listening on" &&
	fail "notices logged as warnings"

echo "== echod.socket"
run systemctl start echod.socket || fail "systemctl start echod.socket"
expect_state echod.socket ActiveState active
expect_state echod.service ActiveState inactive
nsenter -t "$leader" -n "$py" "$srcdir/tests/system/nspawn_client.py" echo 7 || fail "echo via socket"
expect_state echod.service ActiveState active
run journalctl --no-pager -u echod.service | grep -q "listening on tcp 127.0.0.1:7 (from systemd)" ||
	fail "echod did not take its sockets from systemd"
run systemctl reload echod.service || fail "reload under socket activation"
nsenter -t "$leader" -n "$py" "$srcdir/tests/system/nspawn_client.py" drain 7 "$leader" echod.service ||
	fail "drain under socket activation"
wait_inactive echod.service
expect_state echod.service Result success
expect_state echod.service ExecMainStatus 0
# The socket stays, and starts echod again for the next client.
expect_state echod.socket ActiveState active
nsenter -t "$leader" -n "$py" "$srcdir/tests/system/nspawn_client.py" echo 7 || fail "echo after restart"
run systemctl stop echod.socket echod.service
container_alive || fail "the container went away during the test"
dump | tail -5
echo "PASS: echod under a real systemd"
exit 0
