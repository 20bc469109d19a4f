"""Live tests of the systemd integration without systemd: notifications on
a test NOTIFY_SOCKET, socket activation with passed descriptors, reload on
SIGHUP, and dropping privileges."""
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import DEFAULT_CONFIG, ECHOD

HAVE_SYSTEMD = subprocess.run(["ldd", ECHOD], capture_output=True,
                              text=True).stdout.find("libsystemd") >= 0
needs_systemd = pytest.mark.skipif(not HAVE_SYSTEMD,
                                   reason="echod built --without-systemd")


def echo_once(addr, msg=b"ping", kind=socket.SOCK_STREAM):
    fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    with socket.socket(fam, kind) as s:
        s.settimeout(5)
        s.connect(addr)
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            b = s.recv(65536)
            assert b
            got += b
        return got


class NotifySocket:
    """A NOTIFY_SOCKET that records what echod tells systemd."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.msgs = []

    def wait(self, pattern, timeout=10):
        rx = re.compile(pattern, re.M)
        for m in self.msgs:
            if rx.search(m):
                return m
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                m = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            self.msgs.append(m)
            if rx.search(m):
                return m
        raise AssertionError("no %r among %r" % (pattern, self.msgs))


@needs_systemd
def test_notify_ready_status_reload_stopping(start_echod, tmp_path):
    ns = NotifySocket(tmp_path / "notify")
    env = dict(os.environ, NOTIFY_SOCKET=ns.path)
    d = start_echod(DEFAULT_CONFIG, env=env)
    m = ns.wait(r"^READY=1$")
    assert re.search(r"^STATUS=0 connections open, 0 served", m, re.M)
    # Ready means serving.
    assert echo_once(d.tcp[0]) == b"ping"
    d.proc.send_signal(signal.SIGHUP)
    ns.wait(r"^RELOADING=1$")
    d.wait_log(r"reloaded ")
    ns.wait(r"^STATUS=0 connections open, 1 served; 4 tcp bytes")
    assert d.stop() == 0
    ns.wait(r"^STOPPING=1$")
    order = [m for m in ns.msgs if m.split("\n")[0] in
             ("READY=1", "RELOADING=1", "STOPPING=1")]
    assert [m.split("\n")[0] for m in order] == \
        ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"], ns.msgs


@needs_systemd
def test_watchdog(start_echod, tmp_path):
    ns = NotifySocket(tmp_path / "notify")
    env = dict(os.environ, NOTIFY_SOCKET=ns.path, WATCHDOG_USEC="200000")
    d = start_echod(DEFAULT_CONFIG, env=env)
    ns.wait(r"^READY=1$")
    t0 = time.monotonic()
    ns.wait(r"^WATCHDOG=1$", timeout=2)
    n0 = sum(m == "WATCHDOG=1" for m in ns.msgs)
    ns.sock.settimeout(1.0)
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        try:
            ns.msgs.append(ns.sock.recv(4096).decode())
        except socket.timeout:
            break
    n1 = sum(m == "WATCHDOG=1" for m in ns.msgs)
    assert n1 - n0 >= 5, (n0, n1, time.monotonic() - t0)   # every 100 ms
    assert d.stop() == 0


def launch_activated(start_echod, socks, config, workers="1"):
    """Start echod as systemd would for socket activation: the sockets as
    descriptors 3, 4, ... with LISTEN_FDS and LISTEN_PID set."""
    n = len(socks)
    fds = [s.fileno() for s in socks]

    def place():
        tmp = [os.dup(fd) for fd in fds]
        for i, fd in enumerate(tmp):
            os.dup2(fd, 3 + i)
        for fd in tmp:
            os.close(fd)

    script = 'LISTEN_PID=$$ LISTEN_FDS=%d exec %s --config "$0"' % (n, ECHOD)
    return start_echod(config.replace("[server]\n", "[server]\nworkers = %s"
                                      "\n" % workers),
                       argv=["/bin/sh", "-c", script, "{config}"],
                       preexec=place, pass_fds=list(range(3, 3 + n)))


@needs_systemd
@pytest.mark.parametrize("workers", ["1", "2"])
def test_socket_activation_tcp_and_udp(start_echod, workers):
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(64)
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp.bind(("::1", 0))
    try:
        d = launch_activated(start_echod, [tcp, udp], DEFAULT_CONFIG,
                             workers)
        log = d.log()
        assert "socket activation: 2 sockets from systemd" in log
        assert "listening on tcp 127.0.0.1:%d (from systemd)" % \
            tcp.getsockname()[1] in log
        assert "listening on udp [::1]:%d (from systemd)" % \
            udp.getsockname()[1] in log
        # The config's own listen addresses are not used.
        assert d.tcp == [] and d.udp == []
        tcp_addr, udp_addr = tcp.getsockname(), udp.getsockname()[:2]
    finally:
        tcp.close()         # echod holds its own copies now
        udp.close()
    for i in range(20):
        assert echo_once(tcp_addr, b"tcp %d" % i) == b"tcp %d" % i
        assert echo_once(udp_addr, b"udp %d" % i, socket.SOCK_DGRAM) == \
            b"udp %d" % i
    assert d.stop() == 0


@needs_systemd
def test_socket_activation_rejects_other_sockets(start_echod):
    a, b = socket.socketpair()
    try:
        d = launch_activated(start_echod, [a], DEFAULT_CONFIG)
    except AssertionError:
        pass
    else:
        pytest.fail("echod accepted a socketpair")
    finally:
        a.close()
        b.close()


def test_socket_activation_with_systemd_socket_activate(start_echod):
    tool = "/usr/bin/systemd-socket-activate"
    if not os.path.exists(tool) or not HAVE_SYSTEMD:
        pytest.skip("systemd-socket-activate or libsystemd missing")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = start_echod(DEFAULT_CONFIG, argv=[tool, "-l", "127.0.0.1:%d" % port,
                                          ECHOD, "--config", "{config}"],
                    ready=False)
    d.wait_log(r"Listening on 127\.0\.0\.1:%d" % port)
    # The tool starts echod when the first client connects.
    assert echo_once(("127.0.0.1", port)) == b"ping"
    d.wait_ready()
    assert "(from systemd)" in d.log()
    assert echo_once(("127.0.0.1", port), b"pong") == b"pong"
    assert d.stop() == 0


def test_reload_good_file(start_echod, tmp_path):
    d = start_echod(DEFAULT_CONFIG)
    a = d.tcp[0]
    old_conn = socket.create_connection(a, timeout=5)
    old_conn.sendall(b"before")
    assert old_conn.recv(10) == b"before"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        new_port = s.getsockname()[1]
    # Drop the first address, add a new one, raise the log level.
    text = DEFAULT_CONFIG.replace(
        "listen = 127.0.0.1:0 [::1]:0\n[udp]",
        "listen = [::1]:0 127.0.0.1:%d\n[udp]" % new_port).replace(
        "log_level = info", "log_level = debug")
    with open(d.config_path, "w") as f:
        f.write(text)
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log(r"reloaded ")
    log = d.log()
    assert "listening on tcp 127.0.0.1:%d" % new_port in log
    assert "no longer listening on tcp 127.0.0.1:0" in log
    # The existing connection is untouched; the new address serves; the
    # old one accepts no more.
    old_conn.sendall(b"after")
    assert old_conn.recv(10) == b"after"
    assert echo_once(("127.0.0.1", new_port)) == b"ping"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(a, timeout=5)
    # The new log level applies at once.
    echo_once(("127.0.0.1", new_port))
    d.wait_log(r"debug: conn \d+: accepted")
    old_conn.close()
    assert d.stop() == 0


def test_reload_bad_file_keeps_running(start_echod):
    d = start_echod(DEFAULT_CONFIG)
    with open(d.config_path, "w") as f:
        f.write("[server]\nlog_level = info\n[tcp]\nlisten = nowhere\n")
    d.proc.send_signal(signal.SIGHUP)
    m = d.wait_log(r"reload failed, keeping the running configuration: "
                   r"(\S+):4: \[tcp\] listen: bad address 'nowhere'")
    assert m.group(1) == d.config_path
    for addr in d.tcp:
        assert echo_once(addr) == b"ping"
    assert "reloaded" not in d.log()
    assert d.stop() == 0


def test_reload_applies_idle_timeout_to_open_connections(start_echod):
    d = start_echod(DEFAULT_CONFIG)
    idle = socket.create_connection(d.tcp[0], timeout=5)
    with open(d.config_path, "w") as f:
        f.write(DEFAULT_CONFIG.replace("[tcp]\n",
                                       "[tcp]\nidle_timeout = 300ms\n"))
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log(r"reloaded ")
    t0 = time.monotonic()
    assert idle.recv(1) == b""
    assert time.monotonic() - t0 < 3
    idle.close()
    assert d.stop() == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_user_drops_root(start_echod):
    d = start_echod(DEFAULT_CONFIG.replace("[server]\n",
                                           "[server]\nuser = nobody\n"))
    with open("/proc/%d/status" % d.proc.pid) as f:
        status = f.read()
    uid = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M)
    nobody = int(subprocess.run(["id", "-u", "nobody"], capture_output=True,
                                text=True).stdout)
    assert [int(x) for x in uid.groups()] == [nobody] * 4
    assert re.search(r"^Groups:\s*\d*\s*$", status, re.M)
    assert "running as user nobody" in d.log()
    assert echo_once(d.tcp[0]) == b"ping"
    assert d.stop() == 0


def test_unknown_user_exits_67(start_echod):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    d = start_echod(DEFAULT_CONFIG.replace(
        "[server]\n", "[server]\nuser = no-such-user-here\n"), ready=False)
    assert d.stop(None) == 67
    assert "user no-such-user-here: no such user" in d.log()


def test_many_reloads_do_not_grow_memory(start_echod):
    d = start_echod(DEFAULT_CONFIG.replace("[udp]\n", "[udp]\n"
                                           "deny = 10.0.0.0/8\n"))

    def rss():
        with open("/proc/%d/status" % d.proc.pid) as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    for i in range(20):
        d.proc.send_signal(signal.SIGHUP)
        d.wait_count(r"reloaded ", i + 1)
    rss0 = rss()
    for i in range(20, 420):
        d.proc.send_signal(signal.SIGHUP)
        d.wait_count(r"reloaded ", i + 1)
    growth = rss() - rss0
    # Each reload's guard settings are 8 KiB: 400 kept would be 3.2 MiB.
    if os.environ.get("ECHOD_SANITIZED") != "yes":
        assert growth < 1024, "RSS grew %d KiB over 400 reloads" % growth
    assert echo_once(d.tcp[0]) == b"ping"
    assert d.stop() == 0


@needs_systemd
def test_socket_activation_drain_serves_a_waiting_client(start_echod):
    """With sockets from systemd, at max_connections: the client another
    worker accepted and holds until a place is free is drained at SIGTERM
    like the others (it used to be reset), while the clients still in the
    listen queue stay there, for systemd's next echod."""
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(64)
    port = tcp.getsockname()[1]
    config = DEFAULT_CONFIG.replace("[tcp]\n", "[tcp]\nmax_connections = 1\n")
    try:
        d = launch_activated(start_echod, [tcp], config, workers="2")
        a = socket.create_connection(("127.0.0.1", port), timeout=10)
        a.sendall(b"a")
        assert a.recv(1) == b"a"
        d.wait_log(r"max_connections \(1\) reached")
        b = socket.create_connection(("127.0.0.1", port), timeout=10)
        b.sendall(b"held")
        deadline = time.monotonic() + 10
        while listen_queue(port) != 0:      # the other worker took it
            assert time.monotonic() < deadline, "nobody accepted the client"
            time.sleep(0.02)
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        d.proc.send_signal(signal.SIGTERM)
        got = b""
        while len(got) < 4:
            chunk = b.recv(10)
            assert chunk, "the held client got %r, then the end" % got
            got += chunk
        assert got == b"held"
        assert b.recv(10) == b""            # then echod's FIN
        assert a.recv(10) == b""
        a.close()
        b.close()
        assert d.stop(None) == 0
        assert listen_queue(port) == 1      # c waits for the next echod
        c.close()
    finally:
        tcp.close()


def listen_queue(port):
    """Clients waiting in the listen queue of 127.0.0.1:port (ss)."""
    out = subprocess.run(["ss", "-Hltn", "sport = :%d" % port],
                         capture_output=True, text=True, timeout=10).stdout
    return sum(int(line.split()[1]) for line in out.splitlines())


@needs_systemd
def test_socket_activation_chooses_groups(start_echod):
    """A passed socket whose address is in a group's listen serves that
    group's settings; any other, the unnamed group's."""
    named = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    named.bind(("127.0.0.1", 0))
    named.listen(64)
    other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    other.bind(("127.0.0.1", 0))
    other.listen(64)
    port = named.getsockname()[1]
    config = ("[server]\n[tcp]\nlisten = 127.0.0.1:0\nallow = 127.0.0.1/32\n"
              "[tcp strict]\nlisten = 127.0.0.1:%d\nallow = 127.0.0.2/32\n"
              "[udp]\nlisten =\n" % port)
    try:
        d = launch_activated(start_echod, [named, other], config)
        assert "listening on tcp 127.0.0.1:%d (from systemd) for group " \
            "strict" % port in d.log()

        def knock(addr, src):
            with socket.socket() as s:
                s.settimeout(5)
                s.bind((src, 0))
                s.connect(addr)
                s.sendall(b"knock")
                try:
                    return s.recv(10)
                except ConnectionResetError:
                    return b""

        assert knock(named.getsockname(), "127.0.0.2") == b"knock"
        assert knock(named.getsockname(), "127.0.0.1") == b""
        assert knock(other.getsockname(), "127.0.0.1") == b"knock"
        assert knock(other.getsockname(), "127.0.0.2") == b""
        assert d.stop() == 0
    finally:
        named.close()
        other.close()
