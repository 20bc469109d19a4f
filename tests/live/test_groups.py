"""Listener groups (issue 12): [tcp NAME] and [udp NAME] sections, each with
its own addresses and settings, enforced per group, named in the metrics and
the log, and added, changed and removed by a reload without touching the
other groups' connections."""

import signal
import socket
import subprocess
import time

from conftest import ECHOD
from test_guard import free_port, metrics, settled, tcp_try


def echo_on(s, payload):
    s.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = s.recv(65536)
        assert chunk, "echod closed the connection"
        got += chunk
    assert got == payload


def wait_metric(port, key, want, timeout=10):
    m = settled(port, key, want, timeout)
    assert m.get(key) == want, (key, m.get(key), want)
    return m


def two_groups(mport, small_port, big_port):
    return ("[server]\nworkers = 2\n"
            "[metrics]\nlisten = 127.0.0.1:%d\n"
            "[tcp small]\nlisten = 127.0.0.1:%d\nbuffer_limit = 16k\n"
            "allow = 127.0.0.2/32\n"
            "[tcp big]\nlisten = 127.0.0.1:%d\nallow = 127.0.0.1/32\n"
            "[tcp]\nlisten = 127.0.0.1:0\nbuffer_limit = 1m\n"
            "[udp]\nlisten = 127.0.0.1:0\n"
            % (mport, small_port, big_port))


def test_two_groups_enforce_their_own_settings(start_echod):
    mport, sport, bport = free_port(), free_port(), free_port()
    d = start_echod(two_groups(mport, sport, bport))
    assert d.groups["tcp small"] == [("127.0.0.1", sport)]
    assert d.groups["tcp big"] == [("127.0.0.1", bport)]
    assert len(d.groups["tcp default"]) == 1

    # Access lists: each group its own.
    assert tcp_try(("127.0.0.1", sport), ("127.0.0.2", 0)) == b"knock"
    assert tcp_try(("127.0.0.1", sport), ("127.0.0.1", 0)) is None
    assert tcp_try(("127.0.0.1", bport), ("127.0.0.1", 0)) == b"knock"
    assert tcp_try(("127.0.0.1", bport), ("127.0.0.2", 0)) is None
    assert tcp_try(d.groups["tcp default"][0], ("127.0.0.2", 0)) == b"knock"
    m = wait_metric(mport, 'echod_connections_rejected_total{group="big",'
                    'reason="access"}', 1)
    assert m['echod_connections_rejected_total{group="small",'
             'reason="access"}'] == 1
    assert m['echod_connections_rejected_total{group="default",'
             'reason="access"}'] == 0
    assert m['echod_connections_accepted_total{group="small"}'] == 1
    assert m['echod_connections_accepted_total{group="big"}'] == 1
    assert m['echod_connections_accepted_total{group="default"}'] == 1
    assert m['echod_group_active{group="small",proto="tcp"}'] == 1

    # buffer_limit: for a client that never reads, echod holds 16k of
    # echo in [tcp small] and 1m (inherited from [tcp]) in [tcp big],
    # then stops reading; one libevent read (4 KiB) may go past it.
    held = {}
    for name, port, src in (("small", sport, "127.0.0.2"),
                            ("big", bport, "127.0.0.1")):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        # Until nobody takes more: the kernel's buffers on both sides
        # (several MiB on loopback), then echod's, up to its limit.
        sent, stuck, deadline = 0, 0, time.monotonic() + 15
        while sent < 64 << 20 and stuck < 10 and \
                time.monotonic() < deadline:
            try:
                sent += s.send(b"b" * 65536)
                stuck = 0
            except BlockingIOError:
                stuck += 1
                time.sleep(0.05)
        # Wait until echod has taken what it will.
        last, steady = None, 0
        while steady < 5 and time.monotonic() < deadline + 10:
            m = metrics(mport)
            cur = m["echod_buffered_bytes"]
            steady = steady + 1 if cur == last else 0
            last = cur
            time.sleep(0.1)
        held[name] = (last, m['echod_backpressure_pauses_total{group="%s"}'
                            % name])
        s.close()
        wait_metric(mport, "echod_buffered_bytes", 0)
    # Each stopped reading at its own limit, and holds no more than it
    # (plus one read); what it holds after that depends on how much more
    # the kernel's buffers took meanwhile, so only the bounds are exact.
    small_held, small_pauses = held["small"]
    big_held, big_pauses = held["big"]
    assert 0 < small_held <= 16 * 1024 + 4096, held
    assert small_pauses >= 1, held
    assert 256 * 1024 < big_held <= 1024 * 1024 + 4096, held
    assert big_pauses >= 1, held
    assert d.stop() == 0


def test_per_ip_limit_counts_within_each_group(start_echod):
    mport, aport = free_port(), free_port()
    d = start_echod("[server]\nworkers = 1\n"
                    "[metrics]\nlisten = 127.0.0.1:%d\n"
                    "[tcp]\nlisten = 127.0.0.1:0\nmax_connections_per_ip = 1\n"
                    "[tcp a]\nlisten = 127.0.0.1:%d\n"
                    "[udp]\nlisten = 127.0.0.1:0\n" % (mport, aport))
    one = socket.create_connection(d.groups["tcp default"][0], timeout=5)
    two = socket.create_connection(("127.0.0.1", aport), timeout=5)
    echo_on(one, b"one")
    echo_on(two, b"two")      # another group: its own count
    assert tcp_try(("127.0.0.1", aport)) is None
    assert tcp_try(d.groups["tcp default"][0]) is None
    m = wait_metric(mport, 'echod_connections_rejected_total{group="a",'
                    'reason="per_ip"}', 1)
    assert m['echod_connections_rejected_total{group="default",'
             'reason="per_ip"}'] == 1
    one.close()
    two.close()
    assert d.stop() == 0


def test_udp_groups_rate_limit_apart(start_echod):
    mport, lport = free_port(), free_port()
    d = start_echod("[server]\nworkers = 1\n"
                    "[metrics]\nlisten = 127.0.0.1:%d\n"
                    "[tcp]\nlisten = 127.0.0.1:0\n"
                    "[udp]\nlisten = 127.0.0.1:0\n"
                    "[udp slow]\nlisten = 127.0.0.1:%d\nrate_limit = 1\n"
                    "burst = 2\n" % (mport, lport))
    fast = d.groups["udp default"][0]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        u.settimeout(0.5)
        for i in range(5):
            u.sendto(b"s%d" % i, ("127.0.0.1", lport))
        for i in range(5):
            u.sendto(b"f%d" % i, fast)
        got = []
        try:
            while True:
                got.append(u.recv(100))
        except socket.timeout:
            pass
    assert sorted(got) == sorted([b"s0", b"s1", b"f0", b"f1", b"f2", b"f3",
                                  b"f4"])
    m = wait_metric(mport, 'echod_udp_dropped_total{group="slow",'
                    'reason="rate_limit"}', 3)
    assert m['echod_udp_dropped_total{group="default",'
             'reason="rate_limit"}'] == 0
    assert m['echod_sent_messages_total{group="slow",proto="udp"}'] == 2
    assert d.stop() == 0


def test_reload_adds_and_removes_groups(start_echod):
    mport, kport, gport, nport = (free_port(), free_port(), free_port(),
                                  free_port())
    before = ("[server]\nworkers = 2\n[metrics]\nlisten = 127.0.0.1:%d\n"
              "[tcp keep]\nlisten = 127.0.0.1:%d\n"
              "[tcp gone]\nlisten = 127.0.0.1:%d\nallow = 127.0.0.0/8\n"
              "[udp]\nlisten = 127.0.0.1:0\n" % (mport, kport, gport))
    after = ("[server]\nworkers = 2\n[metrics]\nlisten = 127.0.0.1:%d\n"
             "[tcp keep]\nlisten = 127.0.0.1:%d\nallow = 127.0.0.1/32\n"
             "[tcp new]\nlisten = 127.0.0.1:%d\n"
             "[udp]\nlisten = 127.0.0.1:0\n" % (mport, kport, nport))
    d = start_echod(before)
    keep = [socket.create_connection(("127.0.0.1", kport), timeout=5)
            for _ in range(4)]
    gone = [socket.create_connection(("127.0.0.1", gport), timeout=5)
            for _ in range(4)]
    for i, s in enumerate(keep + gone):
        echo_on(s, b"before %d" % i)
    # Half-way through a message when the reload comes.
    for s in keep + gone:
        s.sendall(b"half")

    with open(d.config_path, "w") as f:
        f.write(after)
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log(r"reloaded ")
    assert "listening on tcp 127.0.0.1:%d for group new" % nport in d.log()
    assert "no longer listening on tcp 127.0.0.1:%d" % gport in d.log()

    # Every connection, of the kept group and of the removed one, goes on.
    for i, s in enumerate(keep + gone):
        s.sendall(b" after %d" % i)
        want = b"half after %d" % i
        got = b""
        while len(got) < len(want):
            chunk = s.recv(100)
            assert chunk
            got += chunk
        assert got == want
    # The removed group's address is closed, the new one's serves, and
    # the changed group takes its new access list.
    try:
        socket.create_connection(("127.0.0.1", gport), timeout=2).close()
        raise AssertionError("the removed group still listens")
    except ConnectionRefusedError:
        pass
    assert tcp_try(("127.0.0.1", nport)) == b"knock"
    assert tcp_try(("127.0.0.1", kport), ("127.0.0.2", 0)) is None
    assert tcp_try(("127.0.0.1", kport), ("127.0.0.1", 0)) == b"knock"

    m = metrics(mport)
    assert m['echod_group_active{group="gone",proto="tcp"}'] == 0
    assert m['echod_group_active{group="new",proto="tcp"}'] == 1
    assert m['echod_connections_active{group="gone"}'] == 4
    assert m['echod_connections_accepted_total{group="keep"}'] == 5
    assert m['echod_connections_accepted_total{group="new"}'] == 1
    for s in keep + gone:
        s.close()
    wait_metric(mport, 'echod_connections_active{group="gone"}', 0)
    assert d.stop() == 0


def test_check_config_lists_groups(tmp_path):
    path = tmp_path / "g.conf"
    path.write_text("[tcp web]\nlisten = 127.0.0.1:8080 [::1]:8080\n"
                    "[udp]\nlisten = 127.0.0.1:7\n")
    r = subprocess.run([ECHOD, "--config", str(path), "--check-config"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "echod: %s: configuration OK" % path,
        "tcp group default: (no listen address)",
        "udp group default: 127.0.0.1:7",
        "tcp group web: 127.0.0.1:8080 [::1]:8080",
    ]
    path.write_text("[tcp web]\nlisten = 127.0.0.1:8080\n[udp web]\n")
    r = subprocess.run([ECHOD, "--config", str(path), "--check-config"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 78     # EX_CONFIG
    assert r.stderr == ("echod: %s:3: [udp web]: the name is taken by "
                        "[tcp web] at line 1\n" % path)


def test_bad_group_names_refused_at_start(start_echod):
    d = start_echod("[tcp %s]\nlisten = 127.0.0.1:0\n" % ("x" * 40),
                    ready=False)
    assert d.stop(sig=None) == 78
    assert "a group name is 1 to 32 characters" in d.log()
