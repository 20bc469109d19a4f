"""Scale-out behind a real HAProxy (issue 14): three echod, each on its own
loopback address, behind HAProxy with send-proxy-v2 and a health check;
clients from other 127/8 addresses.  Every byte comes back through the
balancer, the connections spread over the three, echod's access lists and
per-IP limits see the real clients, and a backend drained with SIGTERM
loses nothing while HAProxy moves new clients to the others."""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from test_guard import free_port, metrics

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
pytestmark = pytest.mark.skipif(not os.access(HAPROXY, os.X_OK),
                                reason="haproxy is not installed "
                                "(scripts/deps installs it)")

BACKENDS = ("e1", "e2", "e3")


def backend_config(name, addr, port, mport):
    return ("[server]\nworkers = 2\nshutdown_timeout = 20s\n"
            "[metrics]\nlisten = 127.0.0.1:%d\n"
            "[tcp]\nlisten =\n"
            "[tcp %s]\nlisten = %s:%d\nproxy_protocol = v2\nbanner = on\n"
            "deny = 127.0.0.66/32\nmax_connections_per_ip = 2\n"
            "[udp]\nlisten =\n" % (mport, name, addr, port))


def haproxy_config(fport, bport, sock):
    servers = "".join(
        "    server %s 127.0.0.1%d:%d send-proxy-v2 check check-send-proxy "
        "inter 100ms fall 1 rise 1\n" % (n, i + 1, bport)
        for i, n in enumerate(BACKENDS))
    return ("global\n    maxconn 4096\n    stats socket %s level admin\n"
            "defaults\n    mode tcp\n    timeout connect 2s\n"
            "    timeout client 60s\n    timeout server 60s\n"
            "    retries 3\n    option redispatch\n"
            "frontend fe\n    bind 127.0.0.10:%d\n    default_backend be\n"
            "backend be\n    balance source\n%s" % (sock, fport, servers))


def server_states(sock):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(sock)
        s.sendall(b"show stat\n")
        text = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            text += b
    lines = text.decode().splitlines()
    cols = lines[0].lstrip("# ").split(",")
    out = {}
    for line in lines[1:]:
        f = dict(zip(cols, line.split(",")))
        if f.get("pxname") == "be" and f.get("svname") in BACKENDS:
            out[f["svname"]] = f["status"]
    return out


def wait_states(sock, want, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        st = server_states(sock)
        if all(st.get(k) == v for k, v in want.items()):
            return st
        assert time.monotonic() < deadline, st
        time.sleep(0.05)


class Client:
    """One client of the balancer from its own source address: reads the
    banner, then streams data and checks every byte of its echo."""

    def __init__(self, fport, src):
        self.s = socket.socket()
        self.s.settimeout(20)
        self.s.bind((src, 0))
        self.s.connect(("127.0.0.10", fport))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.banner = self._line()

    def _line(self):
        line = b""
        while not line.endswith(b"\n"):
            b = self.s.recv(1)
            if not b:
                return None     # closed before any banner
            line += b
        return line.decode()

    def group(self):
        return self.banner.split()[5]

    def stream(self, seconds=0.0, nbytes=0):
        """Send random data for seconds (or nbytes), reading the echo as it
        comes; then half-close and read to the end.  Return (sent, ok)."""
        sent = bytearray()
        got = bytearray()

        def reader():
            while True:
                b = self.s.recv(65536)
                if not b:
                    return
                got.extend(b)

        t = threading.Thread(target=reader)
        t.start()
        end = time.monotonic() + seconds
        while (time.monotonic() < end) if seconds else len(sent) < nbytes:
            chunk = os.urandom(4096 if seconds else
                               min(4096, nbytes - len(sent)))
            self.s.sendall(chunk)
            sent.extend(chunk)
            if seconds:
                time.sleep(0.002)
        self.s.shutdown(socket.SHUT_WR)
        t.join(30)
        self.s.close()
        return len(sent), bytes(got) == bytes(sent)


@pytest.fixture
def farm(start_echod, tmp_path):
    bport, fport = free_port(), free_port()
    mports = [free_port() for _ in BACKENDS]
    echods = [start_echod(backend_config(n, "127.0.0.1%d" % (i + 1), bport,
                                         mports[i]))
              for i, n in enumerate(BACKENDS)]
    sock = str(tmp_path / "haproxy.sock")
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(haproxy_config(fport, bport, sock))
    hap = subprocess.Popen([HAPROXY, "-f", str(cfg), "-db"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            assert hap.poll() is None, hap.stdout.read()
            assert time.monotonic() < deadline, "no haproxy stats socket"
            time.sleep(0.02)
        wait_states(sock, {n: "UP" for n in BACKENDS})
        yield fport, sock, echods, mports
    finally:
        hap.terminate()
        try:
            hap.wait(10)
        except subprocess.TimeoutExpired:
            hap.kill()


def total(mports, key, skip=()):
    return sum(metrics(p).get(key, 0) for i, p in enumerate(mports)
               if i not in skip)


def test_haproxy_in_front_of_three(farm):
    fport, sock, echods, mports = farm

    # Many concurrent clients from 30 addresses: all of their bytes back,
    # spread over the three, each seen by echod as itself.
    clients = [Client(fport, "127.0.0.%d" % (100 + i)) for i in range(30)]
    results = [None] * len(clients)
    mapping = {}
    for i, c in enumerate(clients):
        assert c.banner is not None
        f = c.banner.split()
        assert f[0] == "echod" and f[6] == "client" and f[8] == "via"
        assert f[7] == "%s:%d" % c.s.getsockname(), c.banner
        assert re.fullmatch(r"127\.0\.0\.1:\d+", f[9]), c.banner  # HAProxy
        mapping["127.0.0.%d" % (100 + i)] = c.group()

    def run(i):
        results[i] = clients[i].stream(nbytes=128 * 1024)

    threads = [threading.Thread(target=run, args=(i,))
               for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r == (128 * 1024, True) for r in results), results
    assert set(mapping.values()) == set(BACKENDS), mapping

    # The access list and the per-IP limit see the real client, not HAProxy.
    assert Client(fport, "127.0.0.66").banner is None
    held = [Client(fport, "127.0.0.77") for _ in range(2)]
    assert all(c.banner is not None for c in held)
    assert Client(fport, "127.0.0.77").banner is None
    assert Client(fport, "127.0.0.78").banner is not None
    for c in held:
        assert c.stream(nbytes=1000) == (1000, True)
    key = 'echod_connections_rejected_total{group="%s",reason="%s"}'
    assert sum(metrics(p)[key % (n, "access")]
               for n, p in zip(BACKENDS, mports)) == 1
    assert sum(metrics(p)[key % (n, "per_ip")]
               for n, p in zip(BACKENDS, mports)) == 1

    # Drain e1 while clients stream through it and the others.
    on_e1 = [ip for ip, g in mapping.items() if g == "e1"][:4]
    others = [ip for ip, g in mapping.items() if g != "e1"][:4]
    streams = [Client(fport, ip) for ip in on_e1 + others]
    assert [c.group() for c in streams[:len(on_e1)]] == ["e1"] * len(on_e1)
    results = [None] * len(streams)

    def run2(i):
        results[i] = streams[i].stream(seconds=1.5)

    threads = [threading.Thread(target=run2, args=(i,))
               for i in range(len(streams))]
    for t in threads:
        t.start()
    time.sleep(0.5)
    echods[0].proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(60)
    assert all(r is not None and r[1] and r[0] > 0 for r in results), results
    assert echods[0].stop(sig=None, timeout=30) == 0
    assert "cut" not in echods[0].log(), echods[0].log()
    # HAProxy sees e1 go and sends its clients to the others.
    wait_states(sock, {"e1": "DOWN", "e2": "UP", "e3": "UP"})
    for ip in on_e1:
        c = Client(fport, ip)
        assert c.banner is not None and c.group() in ("e2", "e3"), c.banner
        assert c.stream(nbytes=10000) == (10000, True)
