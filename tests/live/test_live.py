"""Live tests: the real echod on loopback, real sockets, every byte checked."""
import hashlib
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import ECHOD, DEFAULT_CONFIG

TIMEOUT = 30


def connect(addr):
    family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect(addr)
    return s


def recv_exactly(s, n):
    parts = []
    while n > 0:
        b = s.recv(min(n, 1 << 20))
        if not b:
            break
        parts.append(b)
        n -= len(b)
    return b"".join(parts)


def recv_to_eof(s):
    parts = []
    while True:
        b = s.recv(1 << 20)
        if not b:
            return b"".join(parts)
        parts.append(b)


def send_chunked(s, data, rng, max_chunk, errors, shut=False):
    """Send data in random-sized writes (meant for a thread)."""
    try:
        i = 0
        while i < len(data):
            n = rng.randint(1, max_chunk)
            s.sendall(data[i:i + n])
            i += n
        if shut:
            s.shutdown(socket.SHUT_WR)
    except OSError as e:
        errors.append(e)


def echo_stream(addr, data, seed, max_chunk=16384):
    """Send data in random chunks while reading the echo; return the echo."""
    rng = random.Random(seed)
    errors = []
    with connect(addr) as s:
        t = threading.Thread(target=send_chunked,
                             args=(s, data, rng, max_chunk, errors))
        t.start()
        got = recv_exactly(s, len(data))
        t.join(TIMEOUT)
    assert not errors, errors
    return got


def test_bom_dia(echod):
    """The classic exercise: send 'Bom dia', get 'Bom dia' back."""
    with connect(echod.tcp[0]) as s:
        s.sendall(b"Bom dia")
        assert recv_exactly(s, 7) == b"Bom dia"


def test_many_concurrent_clients_random_chunks(echod):
    """64 clients at once, random binary data in random chunk sizes."""
    nclients = 64
    results = [None] * nclients
    datas = [os.urandom(random.Random(i).randint(1, 300_000))
             for i in range(nclients)]

    def client(i):
        try:
            addr = echod.tcp[i % len(echod.tcp)]
            results[i] = echo_stream(addr, datas[i], seed=i,
                                     max_chunk=random.Random(-i).choice(
                                         [1, 7, 512, 4096, 65536]))
        except Exception as e:      # reported below, per client
            results[i] = e

    threads = [threading.Thread(target=client, args=(i,))
               for i in range(nclients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 2)
    for i in range(nclients):
        assert isinstance(results[i], bytes), (i, results[i])
        assert len(results[i]) == len(datas[i]), i
        assert results[i] == datas[i], "client %d got corrupted data" % i


def test_multi_megabyte_stream(echod):
    """64 MiB through one connection, in order and intact."""
    data = os.urandom(1 << 20) * 64
    data = bytes(b ^ (i & 0xff) for i, b in enumerate(data[:4096])) + \
        data[4096:]
    got = echo_stream(echod.tcp[0], data, seed=1, max_chunk=1 << 20)
    assert len(got) == len(data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_half_close_gets_everything_back(echod):
    """A client that sends, shuts down its write side and only then reads
    gets all of it back, then EOF."""
    data = os.urandom(3 << 20)
    errors = []
    with connect(echod.tcp[0]) as s:
        t = threading.Thread(target=send_chunked,
                             args=(s, data, random.Random(5), 100_000,
                                   errors, True))
        t.start()
        time.sleep(0)   # the reader starts at once; the echo is bounded
        got = recv_to_eof(s)
        t.join(TIMEOUT)
    assert not errors
    assert got == data


def test_half_close_small(echod):
    with connect(echod.tcp[0]) as s:
        s.sendall(b"last words")
        s.shutdown(socket.SHUT_WR)
        assert recv_to_eof(s) == b"last words"


def test_immediate_close_is_harmless(echod):
    """Clients that vanish, with or without unread echo, hurt nobody."""
    for i in range(50):
        s = connect(echod.tcp[0])
        if i % 2:
            s.sendall(os.urandom(100_000))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
        s.close()
    test_bom_dia(echod)


def udp_echo(addr, payload):
    family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as u:
        u.settimeout(5)
        u.connect(addr)
        for _ in range(3):          # loopback does not lose, but be fair
            u.send(payload)
            try:
                return u.recv(70000)
            except socket.timeout:
                continue
    raise AssertionError("no UDP echo for %d bytes" % len(payload))


@pytest.mark.parametrize("size", [0, 1, 2, 100, 1472, 1473, 9000, 32768,
                                  65506, 65507])
def test_udp_sizes_ipv4(echod, size):
    v4 = [a for a in echod.udp if ":" not in a[0]][0]
    payload = os.urandom(size)
    assert udp_echo(v4, payload) == payload


@pytest.mark.parametrize("size", [1, 1452, 65527])
def test_udp_sizes_ipv6(echod, size):
    v6 = [a for a in echod.udp if ":" in a[0]][0]
    payload = os.urandom(size)
    assert udp_echo(v6, payload) == payload


def test_udp_many_datagrams_each_to_its_sender(echod):
    """Several sockets interleave datagrams; each gets only its own back."""
    v4 = [a for a in echod.udp if ":" not in a[0]][0]
    socks = []
    for _ in range(8):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(5)
        u.connect(v4)
        socks.append(u)
    try:
        for rnd in range(20):
            sent = []
            for i, u in enumerate(socks):
                p = b"%d:%d:" % (i, rnd) + os.urandom(rnd * 50)
                u.send(p)
                sent.append(p)
            for u, p in zip(socks, sent):
                assert u.recv(70000) == p
    finally:
        for u in socks:
            u.close()


def test_ipv6_tcp(echod):
    v6 = [a for a in echod.tcp if ":" in a[0]]
    assert v6, "no IPv6 TCP listener"
    data = os.urandom(500_000)
    assert echo_stream(v6[0], data, seed=3) == data


def test_both_listeners_logged(echod):
    assert len(echod.tcp) == 2 and len(echod.udp) == 2
    assert {a[0] for a in echod.tcp} == {"127.0.0.1", "::1"}
    assert {a[0] for a in echod.udp} == {"127.0.0.1", "::1"}


def test_tcp_only_and_udp_only(start_echod):
    d = start_echod("[tcp]\nlisten = 127.0.0.1:0\n[udp]\nlisten =\n")
    assert len(d.tcp) == 1 and d.udp == []
    with connect(d.tcp[0]) as s:
        s.sendall(b"x")
        assert recv_exactly(s, 1) == b"x"
    d = start_echod("[tcp]\nlisten =\n[udp]\nlisten = 127.0.0.1:0\n")
    assert d.tcp == [] and len(d.udp) == 1
    assert udp_echo(d.udp[0], b"y") == b"y"


# Signals and shutdown.

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_zero(echod, sig):
    """An idle client gets echod's FIN after the quiet period (1 s at
    least); once it closes too, echod exits 0."""
    with connect(echod.tcp[0]) as s:
        s.sendall(b"ping")
        assert recv_exactly(s, 4) == b"ping"
        t0 = time.monotonic()
        echod.proc.send_signal(sig)
        assert recv_to_eof(s) == b""
        assert 0.9 < time.monotonic() - t0 < 5
    assert echod.stop(None) == 0
    assert time.monotonic() - t0 < 5
    assert "stopped:" in echod.log()
    assert "cut" not in echod.log()


def test_sigpipe_does_not_kill(echod):
    """Writing to a client that reset its connection must not kill echod."""
    for _ in range(20):
        s = connect(echod.tcp[0])
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(os.urandom(200_000))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    assert echod.proc.poll() is None
    test_bom_dia(echod)


def test_drain_returns_data_in_flight(echod):
    """SIGTERM while megabytes are in flight (sent, not yet read back):
    every byte comes back, then EOF, and echod exits 0."""
    data = os.urandom(2 << 20)
    errors = []
    with connect(echod.tcp[0]) as s:
        # An echo first: echod has accepted the connection, so the signal
        # cannot find it still in the listen backlog.
        s.sendall(b"accepted?")
        assert recv_exactly(s, 9) == b"accepted?"
        # The client does not read, so all of it sits in socket buffers
        # and echod's output, paused at buffer_limit, when the signal comes.
        t = threading.Thread(target=send_chunked,
                             args=(s, data, random.Random(7), 65536, errors))
        t.start()
        t.join(TIMEOUT)
        assert not t.is_alive(), "2 MiB did not fit in flight"
        echod.proc.send_signal(signal.SIGTERM)
        echod.wait_log(r"draining 1 connections")
        got = recv_to_eof(s)
    assert not errors
    assert len(got) == len(data)
    assert got == data
    assert echod.stop(None) == 0       # exits by itself once drained
    assert "cut" not in echod.log()


def test_shutdown_timeout_cuts_endless_sender(start_echod):
    d = start_echod(DEFAULT_CONFIG.replace("shutdown_timeout = 10s",
                                           "shutdown_timeout = 300ms"))
    s = connect(d.tcp[0])                  # sends, never reads
    s.settimeout(0.5)
    try:
        for _ in range(200):
            s.sendall(b"x" * 65536)
    except (socket.timeout, OSError):
        pass
    t0 = time.monotonic()
    assert d.stop() == 0
    elapsed = time.monotonic() - t0
    assert 0.25 < elapsed < 5, elapsed
    assert "shutdown timeout: cut 1 connections" in d.log()
    s.close()


# Command line and configuration errors.

def run_echod(*args, timeout=10):
    return subprocess.run([ECHOD, *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args", [["--bogus"], ["-x"], ["-c"],
                                  ["--config"], ["extra"],
                                  ["-c", "/dev/null", "extra"]])
def test_bad_flags_exit_64(args):
    r = run_echod(*args)
    assert r.returncode == 64
    assert "usage: echod [-htV] [-c file]" in r.stderr
    assert r.stderr.startswith("echod: ")
    assert r.stdout == ""


def test_help_and_version():
    r = run_echod("--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: echod")
    assert "--check-config" in r.stdout
    r = run_echod("-h")
    assert r.returncode == 0 and r.stdout.startswith("usage: echod")
    r = run_echod("--version")
    assert r.returncode == 0 and r.stdout.startswith("echod ")
    assert run_echod("-V").stdout == r.stdout


def test_check_config_ok(tmp_path):
    p = tmp_path / "ok.conf"
    p.write_text(DEFAULT_CONFIG)
    for flag in ("--check-config", "-t"):
        r = run_echod("-c", str(p), flag)
        assert r.returncode == 0, r.stderr
        assert "configuration OK" in r.stdout


def test_shipped_configs_are_valid():
    top = os.path.join(os.environ.get("TESTS_SRCDIR", "tests/live"), "..",
                       "..")
    for name in ("echod.conf", "quickstart.conf"):
        r = run_echod("-t", "-c", os.path.join(top, "etc", name))
        assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("text,where,what", [
    ("[server]\nlog_level = chatty\n", 2, "[server] log_level: 'chatty'"),
    ("[tcp]\nlisten = 127.0.0.1\n", 2, "bad address '127.0.0.1'"),
    ("[tcp]\nbuffer_limit = 1x\n", 2, "[tcp] buffer_limit: '1x'"),
    ("[server]\nlog_level = info\n[tpc]\n", 3, "unknown section [tpc]"),
    ("[udp]\n\nport = 7\n", 3, "unknown key 'port' in [udp]"),
    ("[tcp]\nlisten =\n[udp]\nlisten =\n", 4, "no listener"),
    ("[server]\n= 5\n", 2, "missing key name"),
    ("[server]\nlog_level\n", 2, "syntax error"),
])
@pytest.mark.parametrize("check", [False, True])
def test_bad_config_exit_78(tmp_path, text, where, what, check):
    p = tmp_path / "bad.conf"
    p.write_text(text)
    r = run_echod("-c", str(p), *(["-t"] if check else []))
    assert r.returncode == 78
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("echod: %s:%d: " % (p, where)), lines[0]
    assert what in lines[0]


def test_missing_config_exit_66(tmp_path):
    r = run_echod("-c", str(tmp_path / "nope.conf"))
    assert r.returncode == 66
    assert r.stderr.strip() == "echod: %s: No such file or directory" % (
        tmp_path / "nope.conf")


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_bind_failure_names_address(tmp_path, proto):
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as busy:
        busy.bind(("127.0.0.1", 0))
        if proto == "tcp":
            busy.listen()
        port = busy.getsockname()[1]
        other = "udp" if proto == "tcp" else "tcp"
        p = tmp_path / "busy.conf"
        p.write_text("[%s]\nlisten = 127.0.0.1:%d\n[%s]\nlisten = "
                     "127.0.0.1:0\n" % (proto, port, other))
        r = run_echod("-c", str(p))
    assert r.returncode == 69
    assert "cannot bind %s 127.0.0.1:%d: Address already in use" % (
        proto, port) in r.stderr
    assert " ready: " not in r.stderr


# Logging.

def test_debug_logs_connections_info_does_not(start_echod):
    quiet = start_echod(DEFAULT_CONFIG)
    loud = start_echod(DEFAULT_CONFIG.replace("log_level = info",
                                              "log_level = debug"))
    for d in (quiet, loud):
        with connect(d.tcp[0]) as s:
            s.sendall(b"hi")
            assert recv_exactly(s, 2) == b"hi"
    loud.wait_log(r"debug: conn \d+: accepted from 127\.0\.0\.1:\d+")
    loud.wait_log(r"debug: conn \d+: closed")
    assert quiet.stop() == 0
    assert "conn " not in quiet.log()
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z notice: "
                     r"listening on tcp ", quiet.log(), re.M)


def test_journal_priority_prefixes(tmp_path):
    """With stderr being the stream JOURNAL_STREAM names, lines carry <N>."""
    conf = tmp_path / "j.conf"
    conf.write_text(DEFAULT_CONFIG)
    r, w = os.pipe()
    st = os.fstat(w)
    env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
    p = subprocess.Popen([ECHOD, "-c", str(conf)], stderr=w, env=env,
                         stdin=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r, "r") as f:
        lines = []
        for line in f:
            lines.append(line)
            if " ready: " in line:
                break
        p.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0
        lines += f.readlines()
    assert any(l.startswith("<5>listening on tcp 127.0.0.1:") for l in lines)
    assert any(l.startswith("<5>stopped: ") for l in lines)
    assert all(re.match(r"<[3-7]>", l) for l in lines), lines


def test_udp_wildcard_replies_from_the_address_asked(start_echod):
    """Bound to 0.0.0.0, a datagram sent to 127.0.0.2 is answered from
    127.0.0.2, so a connected client (or a NAT) accepts the reply."""
    d = start_echod("[tcp]\nlisten =\n[udp]\nlisten = 0.0.0.0:0\n")
    port = d.udp[0][1]
    for dest in ("127.0.0.2", "127.0.0.1", "127.1.2.3"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(2)
            u.connect((dest, port))     # accepts only replies from dest
            u.send(b"to " + dest.encode())
            assert u.recv(100) == b"to " + dest.encode()


def test_udp_broadcast_answered_from_the_interface_address(start_echod):
    """A datagram sent to the loopback broadcast address 127.255.255.255
    is answered from 127.0.0.1: a reply cannot come from a broadcast
    address, and echod used to try that, so the reply failed."""
    d = start_echod("[tcp]\nlisten =\n[udp]\nlisten = 0.0.0.0:0\n")
    port = d.udp[0][1]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        u.bind(("127.0.0.1", 0))
        u.settimeout(2)
        u.sendto(b"to all", ("127.255.255.255", port))
        data, src = u.recvfrom(100)
    assert data == b"to all"
    assert src == ("127.0.0.1", port)
