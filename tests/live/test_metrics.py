"""Live tests of observability: /metrics adds up exactly to the traffic a
test sends, promtool accepts it, the endpoint stays bounded against hostile
clients, SIGUSR1 logs a summary, and repeated warnings are rate-limited."""
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import DEFAULT_CONFIG, free_port  # noqa: F401

ECHOLOAD = os.environ.get("ECHOLOAD") or os.path.join(
    os.path.dirname(__file__), "..", "..", "echoload")


def scrape(port, path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


GROUP_LABEL = re.compile(r'group="[^"]*",?')


def parse(text):
    """Every series by its full name, and each one with a group label also
    summed over the groups under its name without it."""
    vals = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, v = line.rsplit(" ", 1)
            vals[name] = float(v)
            if 'group="' in name and not name.startswith("echod_group_"):
                total = GROUP_LABEL.sub("", name).replace("{}", "")
                vals[total] = vals.get(total, 0.0) + float(v)
    return vals


@pytest.fixture
def mechod(start_echod):
    port = free_port()
    d = start_echod(DEFAULT_CONFIG.replace("[server]\n", "[server]\n"
                                           "workers = 2\n") +
                    "[metrics]\nlisten = 127.0.0.1:%d\n" % port)
    d.metrics_port = port
    return d


def wait_for(port, name, value, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        v = parse(scrape(port)).get(name)
        if v == value or time.monotonic() > deadline:
            return v
        time.sleep(0.02)


def test_counters_add_up(mechod):
    port = mechod.metrics_port
    m0 = parse(scrape(port))
    assert m0["echod_connections_accepted_total"] == 0
    assert m0['echod_build_info{version="0.1.0"}'] == 1
    assert m0["echod_workers"] == 2
    # TCP: 30 connections, known bytes each, all echoed.
    sent = 0
    conns = []
    for i in range(30):
        s = socket.create_connection(mechod.tcp[i % 2], timeout=5)
        data = os.urandom(1000 + i * 997)
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            got += s.recv(65536)
        assert got == data
        sent += len(data)
        conns.append(s)
    m = parse(scrape(port))
    assert m["echod_connections_active"] == 30
    assert sum(v for k, v in m.items()
               if k.startswith("echod_worker_connections")) == 30
    for s in conns:
        s.close()
    assert wait_for(port, "echod_connections_active", 0) == 0
    # UDP: 200 datagrams of known sizes, each echoed.
    udp_bytes = 0
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(5)
    u.connect(mechod.udp[0])
    for i in range(200):
        p = os.urandom(1 + i * 7)
        u.send(p)
        assert u.recv(70000) == p
        udp_bytes += len(p)
    u.close()
    # A worker counts a reply just after sending it.
    wait_for(port, 'echod_sent_messages_total{proto="udp"}', 200)
    m = parse(scrape(port))
    assert m["echod_connections_accepted_total"] == 30
    assert m['echod_received_bytes_total{proto="tcp"}'] == sent
    assert m['echod_sent_bytes_total{proto="tcp"}'] == sent
    assert m['echod_received_messages_total{proto="udp"}'] == 200
    assert m['echod_sent_messages_total{proto="udp"}'] == 200
    assert m['echod_received_bytes_total{proto="udp"}'] == udp_bytes
    assert m['echod_sent_bytes_total{proto="udp"}'] == udp_bytes
    for reason in ("reflection", "rate_limit", "access", "send_failure"):
        assert m['echod_udp_dropped_total{reason="%s"}' % reason] == 0
    assert m["echod_uptime_seconds"] >= 0
    assert mechod.stop() == 0


def test_scrape_during_load_and_promtool(mechod):
    port = mechod.metrics_port
    load = subprocess.Popen([ECHOLOAD, "-q", "--json", "-d", "2s", "-c", "50",
                             "-s", "1-2000", "127.0.0.1:%d" %
                             mechod.tcp[0][1]], stdout=subprocess.PIPE,
                            text=True)
    seen = []
    while load.poll() is None:
        text = scrape(port)
        seen.append(parse(text)['echod_received_bytes_total{proto="tcp"}'])
        time.sleep(0.1)
    load.wait()
    assert load.returncode == 0
    assert len(seen) >= 5
    assert seen == sorted(seen) and seen[-1] > seen[0]   # counters only grow
    assert wait_for(port, "echod_connections_active", 0) == 0
    m = parse(scrape(port))
    assert m['echod_received_bytes_total{proto="tcp"}'] == \
        m['echod_sent_bytes_total{proto="tcp"}']
    assert m["echod_connections_accepted_total"] == 50
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    r = subprocess.run([promtool, "check", "metrics"], input=scrape(port),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_drops_pauses_and_timeouts_counted(start_echod):
    port = free_port()
    d = start_echod(DEFAULT_CONFIG.replace("[tcp]\n", "[tcp]\nbuffer_limit = "
                                           "64k\nidle_timeout = 500ms\n") +
                    "[metrics]\nlisten = 127.0.0.1:%d\n" % port)
    # A client that never reads: paused at least once, then timed out.
    hog = socket.create_connection(d.tcp[0], timeout=5)
    hog.settimeout(1)
    try:
        while True:
            hog.send(b"x" * 65536)
    except (socket.timeout, ConnectionResetError):
        pass        # blocked by backpressure, or already cut by the timeout
    idle = socket.create_connection(d.tcp[0], timeout=5)
    assert idle.recv(1) == b""          # closed by the idle timeout
    assert wait_for(port, "echod_idle_timeouts_total", 2) == 2
    m = parse(scrape(port))
    assert m["echod_backpressure_pauses_total"] >= 1
    hog.close()
    idle.close()


def test_other_paths_and_methods(mechod):
    port = mechod.metrics_port
    with pytest.raises(urllib.error.HTTPError) as e:
        scrape(port, "/")
    assert e.value.code == 404
    req = urllib.request.Request("http://127.0.0.1:%d/metrics" % port,
                                 data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 405
    assert e.value.headers["Allow"] == "GET, HEAD"


def test_metrics_bind_failure(start_echod):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        d = start_echod(DEFAULT_CONFIG + "[metrics]\nlisten = 127.0.0.1:%d\n"
                        % port, ready=False)
        assert d.stop(None) == 69
    assert "cannot listen for metrics on 127.0.0.1:%d" % port in d.log()


def test_sigusr1_logs_summary(echod):
    with socket.create_connection(echod.tcp[0], timeout=5) as s:
        s.sendall(b"12345")
        assert s.recv(5) == b"12345"
        echod.proc.send_signal(signal.SIGUSR1)
        echod.wait_log(r"notice: 1 connections open, 1 served; 5 tcp bytes "
                       r"and 0 udp datagrams echoed; 0 udp replies dropped")


def test_repeated_warnings_are_rate_limited(echod):
    with open(echod.config_path, "w") as f:
        f.write("[server]\nlog_level = loud\n")
    t0 = time.monotonic()
    for i in range(5):      # one at a time: pending signals would merge
        echod.proc.send_signal(signal.SIGHUP)
        echod.wait_count(r"SIGHUP: reloading", i + 1)
    assert time.monotonic() - t0 < 1, "too slow to test a 1 s window"
    time.sleep(1.1)
    echod.proc.send_signal(signal.SIGHUP)
    m = echod.wait_log(r"reload failed.*\((\d+) identical messages "
                       r"suppressed\)")
    log = echod.log()
    # Shown once, held back four times, then shown again with the count.
    assert log.count("reload failed") == 2
    assert m.group(1) == "4"


def test_metrics_listener_does_not_spin_without_descriptors(start_echod):
    """Out of descriptors, a scrape waits; the main thread does not spin."""
    import resource

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))

    port = free_port()
    d = start_echod(DEFAULT_CONFIG.replace("[server]\n", "[server]\n"
                                           "workers = 1\n") +
                    "[metrics]\nlisten = 127.0.0.1:%d\n" % port,
                    preexec=low_limit)
    socks = [socket.create_connection(d.tcp[0], timeout=5) for _ in range(60)]
    d.wait_log(r"Too many open files")
    scraper = socket.create_connection(("127.0.0.1", port), timeout=5)
    scraper.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    with open("/proc/%d/stat" % d.proc.pid) as f:
        t0 = sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13])
    time.sleep(1.5)
    with open("/proc/%d/stat" % d.proc.pid) as f:
        t1 = sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13])
    cpu = (t1 - t0) / os.sysconf("SC_CLK_TCK")
    if os.environ.get("ECHOD_SANITIZED") != "yes" and \
            not os.environ.get("ECHOD_WRAPPER"):
        assert cpu < 0.15, cpu
    for s in socks:
        s.close()
    scraper.settimeout(10)
    reply = b""
    while True:                     # served once descriptors come back
        b = scraper.recv(65536)
        if not b:
            break
        reply += b
    assert reply.startswith(b"HTTP/1.0 200") or \
        reply.startswith(b"HTTP/1.1 200"), reply[:80]
    assert b"echod_connections_accepted_total" in reply
    scraper.close()


# Memory figures mean nothing under ASan or valgrind, and timings stretch.
SANITIZED = os.environ.get("ECHOD_SANITIZED") == "yes" or \
    bool(os.environ.get("ECHOD_WRAPPER"))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def metrics_config(port, metrics="", server="workers = 1\n"):
    return DEFAULT_CONFIG.replace("[server]\n", "[server]\n" + server) + \
        "[metrics]\nlisten = 127.0.0.1:%d\n%s" % (port, metrics)


def read_all(s, most=1 << 20):
    """Read from s until the peer closes (at most most bytes)."""
    data = b""
    while len(data) < most:
        b = s.recv(65536)
        if not b:
            break
        data += b
    return data


def http(port, raw, timeout=5):
    """Send raw bytes to the endpoint and read until it closes: return the
    status line, the status code, the headers (names in lower case) and
    the body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        data = read_all(s)
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, data[:200]
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return lines[0], int(lines[0].split()[1]), headers, body


def echo_ok(addr, msg=b"still echoing", timeout=3):
    """Tell whether a new TCP connection to addr echoes msg in time."""
    try:
        with socket.create_connection(addr, timeout=timeout) as s:
            s.sendall(msg)
            got = b""
            while len(got) < len(msg):
                b = s.recv(100)
                if not b:
                    return False
                got += b
            return got == msg
    except OSError:
        return False


def metrics_peers(pid, port):
    """The client ports of the connections to port that echod holds open:
    its descriptors for TCP sockets on that local port, not listening
    (those still in the backlog are not echod's yet)."""
    inodes = set()
    fddir = "/proc/%d/fd" % pid
    for fd in os.listdir(fddir):
        try:
            link = os.readlink(os.path.join(fddir, fd))
        except FileNotFoundError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    peers = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            next(f)
            for line in f:
                x = line.split()
                if x[9] in inodes and x[3] != "0A" and \
                        int(x[1].rsplit(":", 1)[1], 16) == port:
                    peers.add(int(x[2].rsplit(":", 1)[1], 16))
    return peers


class Trickle:
    """n clients of the metrics endpoint that each send one more header
    byte every interval and never end their request.  Non-blocking: the
    ones still in echod's backlog cost the test nothing."""

    REQUEST = b"GET /metrics HTTP/1.1\r\nX-Slow: "

    def __init__(self, port, n, interval=0.2):
        self.socks = []
        for _ in range(n):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            self.socks.append(s)
        self.ports = [s.getsockname()[1] for s in self.socks]
        self.sent = [0] * n
        self.closed = [None] * n        # when echod closed each one
        self.answers = [b""] * n
        self.interval = interval
        self.next = time.monotonic()

    def open(self):
        return sum(1 for t in self.closed if t is None)

    def _gone(self, i):
        if self.closed[i] is None:
            self.closed[i] = time.monotonic()

    def step(self, timeout):
        """Send the next byte when it is time; wait up to timeout for
        echod to close some, and note when it did."""
        now = time.monotonic()
        if now >= self.next:
            self.next = now + self.interval
            for i, s in enumerate(self.socks):
                if self.closed[i] is not None:
                    continue
                byte = (self.REQUEST[self.sent[i]:self.sent[i] + 1] or
                        b"a")
                try:
                    self.sent[i] += s.send(byte)
                except (BlockingIOError, InterruptedError):
                    pass        # still connecting: next time
                except OSError:
                    self._gone(i)
        live = [s for i, s in enumerate(self.socks) if self.closed[i] is None]
        if not live:
            return
        wait = max(0, min(timeout, self.next - time.monotonic()))
        readable, _, _ = select.select(live, [], [], wait)
        for s in readable:
            i = self.socks.index(s)
            try:
                b = s.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                b = b""
            if b:
                self.answers[i] += b
            else:
                self._gone(i)

    def close(self):
        for s in self.socks:
            s.close()


def test_pipelining_client_does_not_grow_memory(mechod):
    """A client that pipelines GET /metrics as fast as it can and never
    reads: echod answers one request per connection and reads nothing more
    into memory, so its RSS stays flat."""
    port = mechod.metrics_port
    pid = mechod.proc.pid
    scrape(port)                # warm up the exposition path
    rss0 = peak = rss_kib(pid)
    chunk = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 1500
    sent = conns = 0
    s = None
    start = time.monotonic()
    end = start + 5
    # Stop early past 64 MiB: evhttp would go on for gigabytes.
    while time.monotonic() < end and peak - rss0 < 64 * 1024 and \
            conns < 1000:
        if s is None:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.setblocking(False)
            conns += 1
        try:
            sent += s.send(chunk)
        except (BlockingIOError, InterruptedError):
            select.select([], [s], [], 0.02)
        except OSError:         # cut at request_timeout: again
            s.close()
            s = None
        peak = max(peak, rss_kib(pid))
    if s is not None:
        s.close()
    growth = (peak - rss0) * 1024
    print("pipelined %d bytes over %d connections in %.1f s; echod RSS grew "
          "%d KiB" % (sent, conns, time.monotonic() - start, growth // 1024))
    assert sent > 1024 * 1024, "the client could not send: nothing tested"
    if not SANITIZED:
        assert growth < 8 * 1024 * 1024, growth
    assert "echod_uptime_seconds" in scrape(port)


def test_slow_clients_are_capped_and_cut_at_the_deadline(start_echod):
    """Clients that send one header byte every 200 ms: echod has at most
    max_connections of them open at a time (the others wait in the
    backlog), closes each request_timeout after accepting it whatever it
    trickles, and goes on echoing meanwhile."""
    port = free_port()
    d = start_echod(metrics_config(port, "max_connections = 4\n"
                                   "request_timeout = 1s\n"))
    slack = 2.0 if SANITIZED else 1.0
    n = 10
    slow = Trickle(port, n)
    seen = {}           # a slow client's port -> when echod first had it
    most = echoes = failures = 0
    next_echo = time.monotonic()
    deadline = time.monotonic() + n / 4 * (1 + slack) + 5
    try:
        while slow.open() and time.monotonic() < deadline:
            slow.step(0.03)
            peers = metrics_peers(d.proc.pid, port)
            most = max(most, len(peers))
            now = time.monotonic()
            for p in peers:
                seen.setdefault(p, now)
            if now >= next_echo:
                echoes += 1
                failures += not echo_ok(d.tcp[0])
                next_echo = time.monotonic() + 0.2
    finally:
        slow.close()
    lives = [slow.closed[i] - seen[p] for i, p in enumerate(slow.ports)
             if p in seen and slow.closed[i] is not None]
    print("at most %d metrics connections open; %d of %d slow clients "
          "closed, lives %s; %d of %d echoes failed" %
          (most, n - slow.open(), n, ["%.2f" % x for x in lives], failures,
           echoes))
    assert most <= 4, "%d metrics connections open at once" % most
    assert most == 4, "never reached max_connections: nothing tested"
    assert slow.open() == 0, "%d slow clients never closed" % slow.open()
    assert len(lives) == n, "some were never seen open in echod"
    for life in lives:
        assert 0.3 < life <= 1 + slack, lives
    assert not any(slow.answers), slow.answers
    assert echoes >= 5 and failures == 0, (echoes, failures)
    m = parse(scrape(port))
    assert m["echod_metrics_timeouts_total"] == n


def test_slow_clients_do_not_starve_echo(start_echod):
    """Under a low descriptor limit, many more slow metrics clients than
    descriptors get at most max_connections (16 by default) of them, so
    echo clients are still accepted and echoed."""
    limit = 64

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    port = free_port()
    d = start_echod(metrics_config(port), preexec=low_limit)
    slow = Trickle(port, 2 * limit)
    try:
        # Let echod take what it will: its cap, or every descriptor.
        until = time.monotonic() + 5
        while time.monotonic() < until and \
                len(metrics_peers(d.proc.pid, port)) < 16 and \
                "Too many open files" not in d.log():
            slow.step(0.05)
        most = len(metrics_peers(d.proc.pid, port))
        want = {}
        for i in range(10):
            s = socket.create_connection(d.tcp[0], timeout=5)
            s.sendall(b"echo %d" % i)
            s.setblocking(False)
            want[s] = b"echo %d" % i
        got = {s: b"" for s in want}
        until = time.monotonic() + (10 if SANITIZED else 5)
        while time.monotonic() < until and \
                any(got[s] != want[s] for s in want):
            slow.step(0)
            most = max(most, len(metrics_peers(d.proc.pid, port)))
            pending = [s for s in want if len(got[s]) < len(want[s])]
            readable, _, _ = select.select(pending, [], [], 0.05)
            for s in readable:
                try:
                    b = s.recv(100)
                except BlockingIOError:
                    continue
                except OSError:
                    b = b""
                if not b:
                    want[s] = b"closed"     # echod dropped it: a failure
                    continue
                got[s] += b
        echoed = sum(1 for s in want if got[s] == want[s])
        for s in want:
            s.close()
    finally:
        slow.close()
    print("%d metrics connections open at most; %d of 10 echo clients "
          "echoed" % (most, echoed))
    assert most <= 16, most
    assert echoed == 10, echoed


def test_bad_requests(mechod):
    port = mechod.metrics_port
    cases = [
        (b"GET / HTTP/1.0\r\n\r\n", 404),
        (b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", 404),
        (b"GET /metrics/ HTTP/1.1\r\n\r\n", 404),
        (b"HEAD /other HTTP/1.1\r\n\r\n", 404),
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 405),
        (b"DELETE / HTTP/1.1\r\n\r\n", 405),
        (b"get /metrics HTTP/1.1\r\n\r\n", 405),    # methods are exact
        (b"hello\r\n\r\n", 400),
        (b"GET /metrics\r\n\r\n", 400),
        (b"GET /metrics HTTP/2.0\r\n\r\n", 400),
        (b"GET  /metrics HTTP/1.1\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400),
        (b"\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n", 400),
        (b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
         431),
        (b"GET /metrics HTTP/1.1\r\n" + b"X-Many: a\r\n" * 1000 +
         b"\r\n", 431),
    ]
    for raw, code in cases:
        line, status, headers, body = http(port, raw)
        assert status == code, (raw[:40], line)
        assert line.startswith("HTTP/1.0 %d " % code)
        assert headers["connection"] == "close"
        if raw.startswith(b"HEAD"):
            assert body == b"" and int(headers["content-length"]) > 0
        else:
            assert int(headers["content-length"]) == len(body) > 0
        if code == 405:
            assert headers["allow"] == "GET, HEAD"
    m = parse(scrape(port))
    for code, n in ((200, 0), (404, 4), (405, 3), (400, 8), (431, 2)):
        assert m['echod_metrics_requests_total{code="%d"}' % code] == n
    assert parse(scrape(port))['echod_metrics_requests_total{code="200"}'] \
        == 1


def test_head_and_http_versions(mechod):
    port = mechod.metrics_port
    _, status, h, body = http(port, b"HEAD /metrics HTTP/1.1\r\n"
                              b"Host: 127.0.0.1\r\n\r\n")
    assert status == 200 and body == b""
    assert h["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert int(h["content-length"]) > 1000
    for raw in (b"GET /metrics HTTP/1.0\r\n\r\n",
                b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Accept: text/plain\r\n\r\n",
                b"GET /metrics HTTP/1.0\nUser-Agent: lf-only\n\n"):
        _, status, h, body = http(port, raw)
        assert status == 200
        assert h["content-type"] == \
            "text/plain; version=0.0.4; charset=utf-8"
        assert len(body) == int(h["content-length"])
        assert b'\nechod_connections_accepted_total{group="default"} 0\n' \
            in body
    # A request that arrives a few bytes at a time is answered once whole.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        req = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        for i in range(0, len(req), 5):
            s.sendall(req[i:i + 5])
        data = read_all(s)
    assert data.startswith(b"HTTP/1.0 200 OK\r\n")
    assert "echod_uptime_seconds" in scrape(port)      # urllib, HTTP/1.1


def test_one_answer_per_connection_and_no_reset(mechod):
    """Pipelined requests get one answer, then echod's close; what the
    client goes on sending is read and dropped while echod lingers, so
    the answer is not lost to a reset."""
    port = mechod.metrics_port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n" * 3)
        for _ in range(16):     # 1 MiB more, which echod must discard
            s.sendall(b"x" * 65536)
        data = read_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    assert data.count(b"HTTP/1.0 ") == 1
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    assert len(body) == length
    assert body.rstrip().endswith(b"echod_metrics_timeouts_total 0")
