"""Live tests for concurrency and limits: workers, 15,000 clients,
backpressure, max_connections, descriptor exhaustion, idle timeout."""
import os
import subprocess
import re
import resource
import selectors
import socket
import threading
import time

import pytest

from conftest import DEFAULT_CONFIG

TIMEOUT = 60
# Memory and CPU figures mean nothing under ASan or valgrind.
SANITIZED = os.environ.get("ECHOD_SANITIZED") == "yes" or \
    bool(os.environ.get("ECHOD_WRAPPER"))


def config(**keys):
    """DEFAULT_CONFIG with 'section_key=value' set or replaced."""
    text = DEFAULT_CONFIG
    for k, v in keys.items():
        section, key = k.split("_", 1)
        line = "%s = %s\n" % (key, v)
        text, n = re.subn(r"(?m)^\[%s\]\n((?:[^[].*\n)*?)%s =.*\n" %
                          (section, key), r"[%s]\n\g<1>%s" % (section, line),
                          text)
        if n == 0:
            text = text.replace("[%s]\n" % section,
                                "[%s]\n%s" % (section, line))
    return text


def proc_status(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_many(addr, n, batch=1000):
    """Open n connections, batch by batch so the backlog never overflows."""
    sel = selectors.DefaultSelector()
    socks = []
    try:
        for start in range(0, n, batch):
            pending = 0
            for _ in range(start, min(n, start + batch)):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                socks.append(s)
                err = s.connect_ex(addr)
                assert err in (0, 115), os.strerror(err)   # EINPROGRESS
                sel.register(s, selectors.EVENT_WRITE)
                pending += 1
            deadline = time.monotonic() + TIMEOUT
            while pending:
                assert time.monotonic() < deadline, "connect timed out"
                for key, _ in sel.select(timeout=5):
                    err = key.fileobj.getsockopt(socket.SOL_SOCKET,
                                                 socket.SO_ERROR)
                    assert err == 0, os.strerror(err)
                    sel.unregister(key.fileobj)
                    pending -= 1
    except BaseException:
        for s in socks:
            s.close()
        raise
    finally:
        sel.close()
    return socks


def echo_all(socks, payload_of, timeout=TIMEOUT):
    """Send each socket its payload and check every byte that comes back."""
    sel = selectors.DefaultSelector()
    want = {}
    got = {}
    for i, s in enumerate(socks):
        p = payload_of(i)
        assert s.send(p) == len(p)
        want[s] = p
        got[s] = bytearray()
        sel.register(s, selectors.EVENT_READ)
    left = len(socks)
    deadline = time.monotonic() + timeout
    while left:
        assert time.monotonic() < deadline, "%d echoes missing" % left
        for key, _ in sel.select(timeout=5):
            s = key.fileobj
            b = s.recv(65536)
            assert b, "connection closed before its echo"
            got[s] += b
            if len(got[s]) >= len(want[s]):
                assert bytes(got[s]) == want[s]
                sel.unregister(s)
                left -= 1
    sel.close()


@pytest.fixture
def nofile():
    """Give this test process its whole descriptor limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_15000_concurrent_connections(start_echod, nofile):
    n = 15000
    if nofile < n + 200:
        pytest.skip("descriptor limit %d is below %d" % (nofile, n + 200))
    d = start_echod(config(tcp_listen="127.0.0.1:0"))
    addr = d.tcp[0]
    t0 = time.monotonic()
    socks = open_many(addr, n)
    try:
        def payload(i):
            return b"%05d:" % i + bytes((i * 7 + j) & 0xff
                                        for j in range(i % 50 + 1))
        echo_all(socks, payload)
        rss_kib = proc_status(d.proc.pid, "VmRSS")
        print("15000 connections echoed in %.1fs; echod VmRSS %d KiB" %
              (time.monotonic() - t0, rss_kib))
        assert d.proc.poll() is None
    finally:
        for s in socks:
            s.close()
    assert d.stop() == 0
    m = re.search(r"stopped: (\d+) tcp connections served", d.log())
    assert m and int(m.group(1)) == n


def test_non_reading_client_is_bounded(start_echod):
    """A client that sends and never reads costs at most buffer_limit."""
    limit = 256 * 1024
    d = start_echod(config(tcp_buffer_limit="256k", server_workers="1"))
    addr = d.tcp[0]
    with socket.create_connection(addr) as warm:      # touch the code paths
        warm.sendall(os.urandom(limit * 2))
        warm.shutdown(socket.SHUT_WR)
        while warm.recv(65536):
            pass
    rss0 = proc_status(d.proc.pid, "VmRSS")

    hog = socket.create_connection(addr)
    hog.settimeout(2)
    chunk = os.urandom(64 * 1024)
    sent = 0
    stop = threading.Event()

    def push():
        nonlocal sent
        while sent < 100 * 1024 * 1024 and not stop.is_set():
            try:
                sent += hog.send(chunk)
            except socket.timeout:
                return

    t = threading.Thread(target=push)
    t.start()
    # Meanwhile other clients are served normally.
    for i in range(20):
        with socket.create_connection(addr, timeout=5) as s:
            msg = b"other client %d" % i
            s.sendall(msg)
            got = b""
            while len(got) < len(msg):
                got += s.recv(100)
            assert got == msg
    t.join(TIMEOUT)
    stop.set()
    rss1 = proc_status(d.proc.pid, "VmRSS")
    growth = (rss1 - rss0) * 1024
    print("hog pushed %d bytes; echod RSS grew %d KiB" % (sent, growth // 1024))
    assert sent < 100 * 1024 * 1024, "echod never pushed back"
    if not SANITIZED:       # ASan's quarantine keeps freed memory resident
        assert growth < limit + 2 * 1024 * 1024, growth

    # Everything that was accepted still comes back, in order.
    hog.settimeout(10)
    got = bytearray()
    while len(got) < sent:
        b = hog.recv(1 << 20)
        assert b
        got += b
    assert len(got) == sent
    for off in range(0, sent, len(chunk)):
        assert got[off:off + len(chunk)] == chunk[:min(len(chunk),
                                                        sent - off)]
    hog.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_max_connections(start_echod, workers):
    """Clients beyond max_connections wait, with any number of workers:
    with two, the worker that did not take the last place used to accept
    the next client and close it at once."""
    d = start_echod(config(tcp_max_connections="10",
                           server_workers=str(workers),
                           tcp_listen="127.0.0.1:0"))
    addr = d.tcp[0]
    first = [socket.create_connection(addr, timeout=5) for _ in range(10)]
    for i, s in enumerate(first):
        s.sendall(b"%d" % i)
        assert s.recv(10) == b"%d" % i
    d.wait_log(r"max_connections \(10\) reached")
    # Six: with two workers, some land on each one's listen queue.
    extra = [socket.create_connection(addr, timeout=5) for _ in range(6)]
    for s in extra:         # they wait in the backlog, unanswered
        s.sendall(b"waiting")
    for s in extra:
        s.settimeout(0.3)
        with pytest.raises(socket.timeout):
            s.recv(10)
    # Logged once, however many clients knock meanwhile.
    assert d.log().count("max_connections (10) reached") == 1
    for i, s in enumerate(first[6:]):    # the existing ones are unaffected
        s.sendall(b"still %d" % i)
        assert s.recv(20) == b"still %d" % i
    for s in first[:6]:
        s.close()
    for s in extra:         # a slot each: now they are served
        s.settimeout(5)
        got = b""
        while len(got) < 7:
            got += s.recv(10)
        assert got == b"waiting"
    for s in first[6:] + extra:
        s.close()


def test_descriptor_exhaustion(start_echod, tmp_path):
    """With few descriptors echod pauses accepting, uses little CPU while
    saturated, keeps serving, and accepts again when clients leave."""
    limit = 48

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    d = start_echod(config(server_workers="1", tcp_listen="127.0.0.1:0",
                           udp_listen=""), preexec=low_limit)
    addr = d.tcp[0]
    socks = [socket.create_connection(addr, timeout=5) for _ in range(80)]
    d.wait_log(r"accept: Too many open files")
    served, waiting = [], []
    for s in socks:
        s.sendall(b"x")
    for s in socks:
        s.settimeout(0.5 if not waiting else 0.05)
        try:
            assert s.recv(1) == b"x"
            served.append(s)
        except socket.timeout:
            waiting.append(s)
    assert served and waiting, (len(served), len(waiting))
    assert len(served) < limit

    cpu0, t0 = cpu_seconds(d.proc.pid), time.monotonic()
    time.sleep(2)           # measuring idle CPU while saturated
    cpu = cpu_seconds(d.proc.pid) - cpu0
    wall = time.monotonic() - t0
    print("saturated: %.3f s CPU in %.1f s" % (cpu, wall))
    if not SANITIZED:
        assert cpu < 0.1 * wall, cpu

    for s in served[:3]:    # still serving what it has
        s.sendall(b"y")
        assert s.recv(1) == b"y"
    for s in served:
        s.close()
    for s in waiting:       # as slots free up, every one gets its echo
        s.settimeout(10)
        assert s.recv(1) == b"x"
        s.close()
    d.wait_log(r"accepting again")
    # One warning per episode of exhaustion, not one per attempt.
    log = d.log()
    assert log.count("Too many open files") <= \
        log.count("accepting again") + 1


def test_idle_timeout(start_echod):
    d = start_echod(config(tcp_idle_timeout="400ms"))
    addr = d.tcp[0]
    idle = socket.create_connection(addr, timeout=5)
    busy = socket.create_connection(addr, timeout=5)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.2:
        busy.sendall(b"tick")
        assert busy.recv(4) == b"tick"
        time.sleep(0.1)
    assert idle.recv(1) == b""          # closed by echod
    busy.sendall(b"still here")
    assert busy.recv(20) == b"still here"
    idle.close()
    busy.close()


def test_idle_timeout_off_by_default(echod):
    s = socket.create_connection(echod.tcp[0], timeout=1.5)
    with pytest.raises(socket.timeout):
        s.recv(1)
    s.sendall(b"ok")
    assert s.recv(2) == b"ok"
    s.close()


def test_two_workers_share_connections(start_echod):
    d = start_echod(config(server_workers="2", server_log_level="debug"))
    assert "ready: 2 workers" in d.log()
    socks = [socket.create_connection(d.tcp[0], timeout=5)
             for _ in range(40)]
    for s in socks:
        s.sendall(b"w")
        assert s.recv(1) == b"w"
        s.close()
    workers = set(re.findall(r"accepted from \S+ by worker (\d)", d.log()))
    assert workers == {"0", "1"}, workers


def test_second_echod_on_same_port_fails(start_echod):
    d = start_echod(config(server_workers="2", tcp_listen="127.0.0.1:0",
                           udp_listen=""))
    port = d.tcp[0][1]
    e = start_echod(config(server_workers="2",
                           tcp_listen="127.0.0.1:%d" % port, udp_listen=""),
                    ready=False)
    assert e.stop(None) == 69
    assert "cannot bind tcp 127.0.0.1:%d: Address already in use" % port \
        in e.log()


def test_nofile_raised_and_limit_warning(start_echod):
    """echod raises its soft descriptor limit to the hard one and warns
    when max_connections cannot fit under it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def low_soft():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    d = start_echod(config(tcp_max_connections=str(hard + 1000)),
                    preexec=low_soft)
    d.wait_log(r"descriptor limit %d$" % hard)
    d.wait_log(r"max_connections %d does not fit the descriptor limit of %d"
               % (hard + 1000, hard))
    with open("/proc/%d/limits" % d.proc.pid) as f:
        line = [l for l in f if l.startswith("Max open files")][0]
    assert line.split()[3] == str(hard)


def test_backlog_applies(start_echod):
    d = start_echod(config(tcp_backlog="1000", server_workers="2",
                           tcp_listen="127.0.0.1:0"))
    port = d.tcp[0][1]
    out = subprocess.run(["ss", "-ltnH", "sport = :%d" % port],
                         capture_output=True, text=True).stdout
    sizes = [int(line.split()[2]) for line in out.splitlines()]
    assert sizes == [1000, 1000], out      # Send-Q of a listener: backlog
