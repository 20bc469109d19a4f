"""Live tests of the guards against hostile input: the UDP reflection
guard, per-source rate limits, access lists, the per-address connection
limit, 100,000 spoofed-looking sources, and malformed configurations."""
import glob
import os
import re
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import DEFAULT_CONFIG, ECHOD, free_port  # noqa: F401
from test_metrics import parse

HERE = os.path.dirname(os.path.abspath(__file__))


def config(tcp="", udp="", server="workers = 1\n", metrics_port=None):
    text = DEFAULT_CONFIG.replace("[server]\n", "[server]\n" + server)
    text = text.replace("[tcp]\n", "[tcp]\n" + tcp)
    text = text.replace("[udp]\n", "[udp]\n" + udp)
    if metrics_port:
        text += "[metrics]\nlisten = 127.0.0.1:%d\n" % metrics_port
    return text


def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=5) as r:
        return parse(r.read().decode())


def settled(port, key, want, timeout=5):
    """The metrics once key reads want: a worker counts a reply just
    after sending it, so a client can see the reply first (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        m = metrics(port)
        if m.get(key) == want or time.monotonic() > deadline:
            return m
        time.sleep(0.01)


def udp_try(dest, payload=b"hello", src=("127.0.0.1", 0), timeout=0.3):
    fam = socket.AF_INET6 if ":" in dest[0] else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as u:
        u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        u.bind(src)
        u.settimeout(timeout)
        u.sendto(payload, dest)
        try:
            return u.recv(70000)
        except socket.timeout:
            return None


def tcp_try(dest, src=None):
    """Return the echo, or None if echod closed the connection at once."""
    fam = socket.AF_INET6 if ":" in dest[0] else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        if src:
            s.bind(src)
        s.connect(dest)
        s.sendall(b"knock")
        got = s.recv(10)
        return got or None
    except (ConnectionResetError, BrokenPipeError):
        return None
    finally:
        s.close()


def v4(addrs):
    return [a for a in addrs if ":" not in a[0]][0]


def v6(addrs):
    return [a for a in addrs if ":" in a[0]][0]


@pytest.mark.skipif(os.geteuid() != 0, reason="binding port 19 needs root")
def test_reflector_source_port_dropped(start_echod):
    mp = free_port()
    d = start_echod(config(metrics_port=mp))
    dest = v4(d.udp)
    assert udp_try(dest, b"from chargen", ("127.0.0.1", 19)) is None
    assert udp_try(dest, b"from dns", ("127.0.0.1", 53)) is None
    assert udp_try(dest, b"from a client") == b"from a client"
    m = settled(mp, 'echod_sent_messages_total{proto="udp"}', 1)
    assert m['echod_udp_dropped_total{reason="reflection"}'] == 2
    assert m['echod_sent_messages_total{proto="udp"}'] == 1


def test_reflector_ports_configurable(start_echod):
    port = free_port()
    d = start_echod(config(udp="reflector_ports = %d\n" % port))
    dest = v4(d.udp)
    assert udp_try(dest, b"x", ("127.0.0.1", port)) is None
    assert udp_try(dest, b"y") == b"y"
    # "none" turns the guard off.
    d2 = start_echod(config(udp="reflector_ports = none\n"))
    assert udp_try(v4(d2.udp), b"z", ("127.0.0.1", port)) == b"z"


def test_rate_limit_holds_under_flood(start_echod):
    rate, burst, secs = 2000, 200, 2.0
    d = start_echod(config(udp="rate_limit = %d\nburst = %d\n" %
                           (rate, burst)))
    dest = v4(d.udp)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
    u.connect(dest)
    replies = 0
    stop = threading.Event()

    def count():
        nonlocal replies
        u.settimeout(0.5)
        while True:
            try:
                u.recv(100)
                replies += 1
            except socket.timeout:
                if stop.is_set():
                    return

    t = threading.Thread(target=count)
    t.start()
    sent = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < secs and sent < 2_000_000:
        try:
            u.send(b"flood")
            sent += 1
        except BlockingIOError:
            pass
    elapsed = time.monotonic() - t0
    stop.set()
    t.join(10)
    u.close()
    expect = burst + rate * elapsed
    print("sent %d in %.2fs, %d echoed, expected %.0f" % (sent, elapsed,
                                                        replies, expect))
    assert sent > 5 * expect, "the flood was too slow to test the limit"
    assert abs(replies - expect) <= 0.1 * expect, (replies, expect)


def test_rate_limit_is_per_source(start_echod):
    d = start_echod(config(udp="rate_limit = 1\nburst = 3\n"))
    dest = v4(d.udp)
    src = ("127.0.0.1", free_port())
    got = [udp_try(dest, b"%d" % i, src, 0.2) for i in range(6)]
    assert got[:3] == [b"0", b"1", b"2"] and got[3:] == [None] * 3
    # Another source address has its own bucket.
    assert udp_try(dest, b"other", ("127.0.0.2", 0)) == b"other"


def test_access_lists_both_families(start_echod):
    mp = free_port()
    d = start_echod(config(tcp="deny = ::1 127.0.0.2/32\n",
                           udp="allow = ::1/128 127.0.0.0/31\n",
                           metrics_port=mp))
    # TCP: IPv4 127.0.0.1 allowed, 127.0.0.2 and ::1 denied.
    assert tcp_try(v4(d.tcp)) == b"knock"
    assert tcp_try(v4(d.tcp), ("127.0.0.2", 0)) is None
    assert tcp_try(v6(d.tcp)) is None
    # UDP: only ::1 and 127.0.0.0-1 allowed.
    assert udp_try(v6(d.udp), b"six", ("::1", 0)) == b"six"
    assert udp_try(v4(d.udp), b"one", ("127.0.0.1", 0)) == b"one"
    assert udp_try(v4(d.udp), b"two", ("127.0.0.2", 0)) is None
    m = metrics(mp)
    assert m['echod_connections_rejected_total{reason="access"}'] == 2
    assert m['echod_udp_dropped_total{reason="access"}'] == 1


def test_max_connections_per_ip(start_echod):
    mp = free_port()
    d = start_echod(config(tcp="max_connections_per_ip = 3\n",
                           server="workers = 2\n", metrics_port=mp))
    dest = v4(d.tcp)
    held = []
    for i in range(3):
        s = socket.create_connection(dest, timeout=5)
        s.sendall(b"a")
        assert s.recv(1) == b"a"
        held.append(s)
    assert tcp_try(dest) is None                     # a fourth from .1
    assert tcp_try(dest, ("127.0.0.2", 0)) == b"knock"   # other address
    for s in held[1:]:
        s.sendall(b"b")                              # the three still work
        assert s.recv(1) == b"b"
    held.pop().close()
    deadline = time.monotonic() + 5
    while tcp_try(dest) is None:                     # a slot is free again
        assert time.monotonic() < deadline
        time.sleep(0.05)
    m = metrics(mp)
    assert m['echod_connections_rejected_total{reason="per_ip"}'] >= 1
    for s in held:
        s.close()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def test_100000_sources_stay_within_the_table(start_echod):
    """100,000 distinct source addresses (127.0.0.0/8 is all loopback)
    cannot grow memory past the rate table's fixed size."""
    mp = free_port()
    d = start_echod(config(udp="rate_limit = 1\nburst = 10\n",
                           metrics_port=mp))
    dest = v4(d.udp)
    assert udp_try(dest, b"warm") == b"warm"
    # The metrics page, polled below, has its own buffers: warm them too,
    # so that what grows is what the sources cost.
    for _ in range(20):
        metrics(mp)
    rss0 = rss_kib(d.proc.pid)
    n = 100_000
    key = 'echod_received_messages_total{proto="udp"}'
    for i in range(n):
        src = "127.%d.%d.%d" % (1 + (i >> 16), (i >> 8) & 0xff, i & 0xff)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((src, 0))
            u.sendto(b"s", dest)
        if i % 200 == 199:      # a socket buffer holds ~270 of these
            until = time.monotonic() + 3
            while metrics(mp)[key] < i - 100 and time.monotonic() < until:
                time.sleep(0.001)
    deadline = time.monotonic() + 20
    last, stable = -1, 0
    while time.monotonic() < deadline and stable < 3:   # until it settles
        got = metrics(mp)['echod_received_messages_total{proto="udp"}']
        stable = stable + 1 if got == last else 0
        last = got
        time.sleep(0.2)
    got = metrics(mp)['echod_received_messages_total{proto="udp"}']
    growth = (rss_kib(d.proc.pid) - rss0) * 1024
    table = 65536 * 32          # RATELIMIT_SLOTS * sizeof(ratelimit_slot)
    print("%d datagrams from %d sources; RSS grew %d KiB (table %d KiB)" %
          (got, n, growth // 1024, table // 1024))
    # What counts is that echod saw far more sources than its table has
    # slots (the kernel may drop a few of a fast burst).
    assert got > 0.9 * n, got
    if os.environ.get("ECHOD_SANITIZED") != "yes":   # ASan keeps freed memory
        assert growth < table + (1 << 20), growth
    # The limiter still works for a real client afterwards: a burst of 10,
    # then at most the one token a second refills.
    src = ("127.0.0.1", free_port())
    got = [udp_try(dest, b"%d" % i, src, 2.0) for i in range(10)]
    assert got == [b"%d" % i for i in range(10)]
    late = [udp_try(dest, b"over", src, 0.1) for _ in range(5)]
    assert late.count(None) >= 4, late


def test_malformed_configs_from_fuzz_corpus(tmp_path):
    corpus = sorted(glob.glob(os.path.join(HERE, "..", "..", "fuzz", "corpus",
                                           "conf", "*")))
    assert len(corpus) >= 10, "no fuzz corpus"
    for path in corpus:
        r = subprocess.run([ECHOD, "-t", "-c", path], capture_output=True,
                           text=True, errors="replace", timeout=10)
        assert r.returncode in (0, 78), (path, r.returncode, r.stderr)
        if r.returncode == 78:
            lines = r.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("echod: "), \
                (path, r.stderr)
