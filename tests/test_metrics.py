"""Live tests of observability: /metrics adds up exactly to the traffic a
test sends, promtool accepts it, SIGUSR1 logs a summary, and repeated
warnings are rate-limited."""
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import DEFAULT_CONFIG

ECHOLOAD = os.environ.get("ECHOLOAD") or os.path.join(
    os.path.dirname(__file__), "..", "echoload")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port, path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def parse(text):
    vals = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, v = line.rsplit(" ", 1)
            vals[name] = float(v)
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
    assert e.value.code in (405, 413, 501)


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
