"""Faults on purpose (issue 15): a group's delay and jitter, bandwidth,
slices, reset, close and stall after a while, their probabilities, UDP
delay, loss and duplicates; each checked from the client's side with
generous bounds (accuracy is the benchmark's), the bytes that do come back
exact, a plain group beside a faulty one unaffected, the counters, and the
configuration's refusals."""
import json
import os
import random
import select
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import ECHOD
from test_echoload import echoload, target
from test_guard import free_port, metrics, settled
import test_tls as tlsmod
from test_tls import certs  # noqa: F401 (a fixture)

# Scenarios of several seconds run once per CI run (ECHOD_HEAVY=1).
heavy = pytest.mark.skipif(
    os.environ.get("ECHOD_HEAVY") != "1",
    reason="heavy scenario: runs once per CI run (ECHOD_HEAVY=1)")

BASE = """\
[server]
workers = 1
log_level = info
fault_seed = 42
[tcp]
listen = 127.0.0.1:0
[udp]
listen = 127.0.0.1:0
[metrics]
listen = 127.0.0.1:%d
"""


def faulty(start_echod, tcp="", udp=""):
    """echod with a plain [tcp] and [udp], and a faulty [tcp f] with the
    keys tcp and [udp f] with udp, each on its own port."""
    mport = free_port()
    text = BASE % mport
    if tcp:
        text += "[tcp f]\nlisten = 127.0.0.1:0\n" + tcp
    if udp:
        text += "[udp f]\nlisten = 127.0.0.1:0\n" + udp
    d = start_echod(text)
    d.mport = mport
    return d


def key(name, group="f", **labels):
    lab = "".join(',%s="%s"' % kv for kv in labels.items())
    return '%s{group="%s"%s}' % (name, group, lab)


def recv_exactly(s, n, timeout=10):
    s.settimeout(timeout)
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def test_delay_never_early_and_in_order(start_echod):
    d = faulty(start_echod, tcp="delay = 200ms\njitter = 50ms\n")
    slow = d.groups["tcp f"][0]
    plain = d.groups["tcp default"][0]
    rnd = random.Random(1)
    with socket.create_connection(slow, timeout=5) as s, \
            socket.create_connection(plain, timeout=5) as p:
        for i in range(5):
            data = rnd.randbytes(1000)
            t0 = time.monotonic()
            s.sendall(data)
            # Meanwhile the plain group echoes at once.
            p.sendall(b"plain %d" % i)
            assert recv_exactly(p, len(b"plain %d" % i)) == b"plain %d" % i
            assert time.monotonic() - t0 < 0.15
            got = recv_exactly(s, len(data))
            assert got == data
            # Never before delay - jitter (150 ms) after it was sent, and
            # not much after delay + jitter (generous: a loaded machine).
            assert 0.150 <= time.monotonic() - t0 < 0.250 + 0.2
        # Chunks 5 ms apart with 50 ms of jitter each way come back in
        # order: a later chunk never overtakes an earlier one.
        sent = b""
        for i in range(40):
            chunk = rnd.randbytes(rnd.randint(1, 3000))
            s.sendall(chunk)
            sent += chunk
            time.sleep(0.005)
        assert recv_exactly(s, len(sent)) == sent
    m = metrics(d.mport)
    assert m[key("echod_faults_total", kind="delay")] >= 6
    assert m[key("echod_faults_total", group="default", kind="delay")] == 0


def test_delay_holds_count_against_buffer_limit(start_echod):
    # A client that never reads: what waits for its delay and the output
    # together stop at buffer_limit, as without a delay.
    d = faulty(start_echod, tcp="delay = 100ms\nbuffer_limit = 64k\n")
    with socket.create_connection(d.groups["tcp f"][0], timeout=5) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        # Send until a second passes with no room (or 10 s in all).
        sent, deadline = 0, time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                sent += s.send(b"x" * 65536)
            except BlockingIOError:
                if not select.select([], [s], [], 1.0)[1]:
                    break
        m = metrics(d.mport)
        assert m[key("echod_backpressure_pauses_total")] >= 1
        # Held in echod: under buffer_limit and one read more.
        assert m["echod_buffered_bytes"] <= 64 * 1024 + 65536
        assert sent < 16 * 1024 * 1024


@heavy
def test_bandwidth(start_echod):
    d = faulty(start_echod, tcp="bandwidth = 1m\n")
    data = os.urandom(4 * 1024 * 1024)
    got = []
    with socket.create_connection(d.groups["tcp f"][0], timeout=30) as s:
        t0 = time.monotonic()
        reader = threading.Thread(
            target=lambda: got.append(recv_exactly(s, len(data), 30)))
        reader.start()
        s.sendall(data)
        reader.join(40)
        took = time.monotonic() - t0
    assert got and got[0] == data
    # 4 MiB at 1 MiB/s, with a tenth of a second's bucket: >= 3.5 s.
    assert 3.5 <= took < 20, took
    m = metrics(d.mport)
    assert m[key("echod_faults_total", kind="bandwidth")] == 1


@pytest.mark.skipif(shutil.which("strace") is None, reason="no strace")
def test_slice_writes_never_larger(start_echod, tmp_path):
    d = faulty(start_echod, tcp="slice = 1-64\n")
    trace = tmp_path / "strace.out"
    st = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=write,writev",
                           "-e", "signal=none", "-o", str(trace), "-p",
                           str(d.proc.pid)], stderr=subprocess.PIPE,
                          text=True)
    try:
        # strace says nothing once attached; wait until it sees a write.
        with socket.create_connection(d.groups["tcp default"][0],
                                      timeout=5) as p:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                p.sendall(b"ping")
                assert recv_exactly(p, 4) == b"ping"
                if trace.exists() and "writev(" in trace.read_text():
                    break
                time.sleep(0.05)
        data = os.urandom(20000)
        with socket.create_connection(d.groups["tcp f"][0], timeout=5) as s:
            s.sendall(data)
            assert recv_exactly(s, len(data)) == data
    finally:
        st.terminate()
        st.wait(10)
    sizes = []
    for line in trace.read_text().splitlines():
        if ("writev(" in line or "write(" in line) and " = " in line:
            n = line.rsplit(" = ", 1)[1].split()[0]
            if n.isdigit():
                sizes.append(int(n))
    # The slice connection's writes are all there, none over 64 bytes
    # (the plain group's pings are 4; the command pipe's are tiny).
    assert sum(x for x in sizes if x <= 64) >= len(data)
    assert max(sizes) <= 64, sorted(sizes)[-5:]
    m = metrics(d.mport)
    assert m[key("echod_faults_total", kind="slice")] >= len(data) // 64


def test_reset_after(start_echod):
    d = faulty(start_echod, tcp="reset_after = 10000\n")
    data = os.urandom(30000)
    with socket.create_connection(d.groups["tcp f"][0], timeout=5) as s:
        s.sendall(data[:5000])
        got = recv_exactly(s, 5000)
        s.sendall(data[5000:])
        with pytest.raises(ConnectionResetError):
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
    # Exactly the first 10,000 bytes, then the reset.
    assert got == data[:10000]
    m = settled(d.mport, key("echod_faults_total", kind="reset"), 1)
    assert m[key("echod_faults_total", kind="reset")] == 1
    assert m[key("echod_fault_withheld_bytes_total")] <= 20000


def test_reset_probability_is_binomial(start_echod):
    # 2,000 connections, a tenth of them reset after 4 bytes: 200
    # expected, standard deviation 13.4; five of them either way.
    d = faulty(start_echod, tcp="reset_after = 4\nreset_probability = 0.1\n")
    addr = d.groups["tcp f"][0]
    resets = 0
    for _ in range(2000):
        with socket.create_connection(addr, timeout=5) as s:
            s.sendall(b"12345678")
            try:
                got = recv_exactly(s, 8)
            except ConnectionResetError:
                resets += 1
                continue
            if got != b"12345678":
                assert got == b"1234"   # reset after its 4 bytes
                try:
                    s.recv(1)
                except ConnectionResetError:
                    pass
                resets += 1
    assert 133 <= resets <= 267, resets
    m = settled(d.mport, key("echod_faults_total", kind="reset"), resets)
    assert m[key("echod_faults_total", kind="reset")] == resets


def test_stall_after(start_echod):
    d = faulty(start_echod, tcp="stall_after = 4k\n")
    data = os.urandom(64 * 1024)
    s = socket.create_connection(d.groups["tcp f"][0], timeout=5)
    s.sendall(data[:16384])
    assert recv_exactly(s, 4096) == data[:4096]
    # Nothing more comes, and the connection stays open.
    s.settimeout(1.5)
    with pytest.raises(socket.timeout):
        s.recv(1)
    m = metrics(d.mport)
    assert m[key("echod_faults_total", kind="stall")] == 1
    assert m[key("echod_connections_active")] == 1
    # Once the client goes, so does the connection (looked at each second).
    s.close()
    m = settled(d.mport, key("echod_connections_active"), 0)
    assert m[key("echod_connections_active")] == 0


def test_close_after(start_echod):
    d = faulty(start_echod, tcp="close_after = 1s\n")
    with socket.create_connection(d.groups["tcp f"][0], timeout=5) as s:
        t0 = time.monotonic()
        s.sendall(b"before")
        assert recv_exactly(s, 6) == b"before"
        s.settimeout(5)
        assert s.recv(10) == b""    # our FIN, after a second
        took = time.monotonic() - t0
    assert 0.9 <= took < 4, took
    m = settled(d.mport, key("echod_faults_total", kind="close"), 1)
    assert m[key("echod_faults_total", kind="close")] == 1


def udp_exchange(addr, n, payload_size=32, wait=5.0, quiet=0.5):
    """Send n numbered datagrams; return {number: times it came back}
    and {number: seconds until first back}, once nothing came for quiet
    seconds (the first of them counted from the last send), or after
    wait."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    u.connect(addr)
    sent_at, back, rtt = {}, {}, {}
    for i in range(n):
        sent_at[i] = time.monotonic()
        u.send(i.to_bytes(4, "big") + b"x" * (payload_size - 4))
        if i % 50 == 49:
            time.sleep(0.005)   # within the socket buffers
    u.settimeout(quiet)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            data = u.recv(65536)
        except socket.timeout:
            break
        i = int.from_bytes(data[:4], "big")
        assert data == i.to_bytes(4, "big") + b"x" * (payload_size - 4)
        back[i] = back.get(i, 0) + 1
        rtt.setdefault(i, time.monotonic() - sent_at[i])
    u.close()
    return back, rtt


def test_udp_loss_and_duplicates(start_echod):
    # 2,000 datagrams, loss 0.2 (400 expected, sd 17.9), duplicates 0.1
    # of the rest (160, sd 12.0): five sd either way.
    d = faulty(start_echod, udp="loss = 0.2\nduplicate = 0.1\n")
    back, _ = udp_exchange(d.groups["udp f"][0], 2000)
    lost = 2000 - len(back)
    dups = sum(1 for v in back.values() if v == 2)
    assert all(v in (1, 2) for v in back.values())
    assert 310 <= lost <= 490, lost
    assert 100 <= dups <= 220, dups
    m = metrics(d.mport)
    assert m[key("echod_faults_total", kind="loss")] == lost
    assert m[key("echod_faults_total", kind="duplicate")] == dups
    # The plain group beside it loses nothing.
    back, _ = udp_exchange(d.groups["udp default"][0], 200)
    assert len(back) == 200 and set(back.values()) == {1}


def test_udp_delay(start_echod):
    d = faulty(start_echod, udp="delay = 150ms\njitter = 50ms\n")
    back, rtt = udp_exchange(d.groups["udp f"][0], 200)
    assert len(back) == 200
    assert min(rtt.values()) >= 0.100
    m = metrics(d.mport)
    assert m[key("echod_faults_total", kind="delay")] == 200


def test_udp_delay_queue_full(start_echod):
    mport = free_port()
    d = start_echod(BASE.replace("[udp]\n", "[udp]\ndelay_queue = 10\n") %
                    mport + "[udp f]\nlisten = 127.0.0.1:0\ndelay = 500ms\n")
    # Quiet for 1.5 s: the first echo comes only after the 500 ms delay.
    back, _ = udp_exchange(d.groups["udp f"][0], 50, quiet=1.5)
    assert len(back) == 10
    m = metrics(mport)
    assert m[key("echod_udp_dropped_total", reason="delay_queue")] == 40


def test_fault_seed_logged(start_echod):
    d = faulty(start_echod, tcp="delay = 1ms\n")
    d.wait_log(r"fault_seed 42$")


@pytest.mark.parametrize("text,msg", [
    ("[tcp]\ndelay = 10ms\njitter = 20ms\n",
     ":3: [tcp] jitter: 20ms is more than delay (10ms)"),
    ("[tcp]\nslice_gap = 1ms\n", ":2: [tcp] slice_gap: needs slice"),
    ("[tcp]\nreset_probability = 0.5\n",
     ":2: [tcp] reset_probability: needs reset_after"),
    ("[tcp]\nreset_after = 1k\nreset_probability = 1.5\n",
     "must be a probability from 0 to 1"),
    ("[tcp]\nclose_after = 1s\nclose_probability = 0.0000001\n",
     "must be a probability from 0 to 1"),
    ("[tcp]\nslice = 64-1\n", "must be 0 (off), or a size or range"),
    ("[tcp]\nslice = 0-5\n", "must be 0 (off), or a size or range"),
    ("[udp]\nloss = -1\n", "must be a probability"),
    ("[udp lab]\nlisten = 127.0.0.1:0\ndelay_queue = 5\n",
     "delay_queue"),
    ("[server]\nfault_seed = x\n", "must be a number from 0"),
])
def test_bad_fault_keys(tmp_path, text, msg):
    conf = tmp_path / "echod.conf"
    conf.write_text(text)
    r = subprocess.run([ECHOD, "-t", "-c", str(conf)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 78, r.stderr
    assert msg in r.stderr, r.stderr


@pytest.mark.parametrize("profile,args,kind", [
    ("reset_after = 16k\nreset_probability = 0.5\n", ["-s", "1-2000"],
     "reset"),
    ("close_after = 200ms\n", [], "closed"),
    ("stall_after = 1k\nstall_probability = 0.3\n",
     ["--timeout", "300ms"], "stalled"),
    ("reset_after = 64k\n", ["-m", "stream", "-s", "4k"], "reset"),
])
def test_echoload_expects_faults(start_echod, profile, args, kind):
    """echoload --expect-faults and echod's faults test each other: the
    faults counted, not errors, every byte that came back right; without
    the flag, the same run fails."""
    d = faulty(start_echod, tcp=profile)
    addr = target(d.groups["tcp f"][0])
    r = echoload("--expect-faults", "-c", "8", "-d", "1s", "--json", *args,
                 addr)
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    assert rep["faults"]["expected"] is True
    assert rep["faults"][kind] >= 1, rep["faults"]
    assert rep["errors"]["mismatched"] == 0
    assert rep["bytes_echoed"] > 0
    # echod counted at least as many of that kind as echoload saw.
    mkind = {"reset": "reset", "closed": "close", "stalled": "stall"}[kind]
    m = metrics(d.mport)
    assert m[key("echod_faults_total", kind=mkind)] >= \
        (1 if kind == "stalled" else rep["faults"][kind])
    r = echoload("-c", "8", "-d", "1s", "--json", *args, addr)
    assert r.returncode == 1, r.stdout + r.stderr


def test_reload_changes_the_profile_for_new_connections(start_echod):
    gport = free_port()
    conf = (BASE + "[tcp f]\nlisten = 127.0.0.1:%d\ndelay = %s\n")
    mport = free_port()
    d = start_echod(conf % (mport, gport, "300ms"))
    old = socket.create_connection(("127.0.0.1", gport), timeout=5)
    with open(d.config_path, "w") as f:
        f.write(conf % (mport, gport, "0"))
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log(r"reloaded ")
    new = socket.create_connection(("127.0.0.1", gport), timeout=5)
    for s, slow in ((old, True), (new, False)):
        t0 = time.monotonic()
        s.sendall(b"profile")
        assert recv_exactly(s, 7) == b"profile"
        took = time.monotonic() - t0
        assert (took >= 0.25) if slow else (took < 0.2), (slow, took)
        s.close()


@pytest.mark.skipif(not (tlsmod.OPENSSL and tlsmod.HAVE_TLS),
                    reason="built --without-openssl, or no openssl command")
@pytest.mark.parametrize("profile", ["delay = 100ms\n", "slice = 1-100\n",
                                     "bandwidth = 256k\n"])
def test_tls_group_with_faults(start_echod, certs, profile):  # noqa: F811
    # Faults over TLS: the echo whole and exact, then the client's
    # close_notify answered with echod's (suppress_ragged_eofs off: a
    # close without one raises).
    d = start_echod(tlsmod.tls_config(certs, free_port(), profile,
                                      server="workers = 1\n"))
    data = os.urandom(100000)
    with tlsmod.connect(tlsmod.client_ctx(certs), d.tls[0],
                        ragged=False) as s:
        t0 = time.monotonic()
        s.sendall(data[:1000])
        assert recv_exactly(s, 1000) == data[:1000]
        if "delay" in profile:
            assert time.monotonic() - t0 >= 0.1
        # One thread: an SSL object is not for two at once.
        for i in range(1000, len(data), 9900):
            s.sendall(data[i:i + 9900])
            assert recv_exactly(s, len(data[i:i + 9900])) == \
                data[i:i + 9900]
        s.unwrap()          # our close_notify; echod's comes back


def test_delay_of_many_chunks_is_each_ones(start_echod):
    """Chunks 5 ms apart, more than one connection's first ring of due
    times holds: each comes back about delay after it was sent (merging
    them once made the earlier ones wait for the last: 200 ms became
    320)."""
    d = faulty(start_echod, tcp="delay = 200ms\n")
    rnd = random.Random(2)
    chunks = [rnd.randbytes(100) for _ in range(60)]
    arrivals = []               # (time, bytes received so far)
    with socket.create_connection(d.groups["tcp f"][0], timeout=5) as s:
        def reader():
            n = 0
            while n < 6000:
                b = s.recv(65536)
                if not b:
                    return
                n += len(b)
                arrivals.append((time.monotonic(), n))
        t = threading.Thread(target=reader)
        t.start()
        sent_at = []
        for c in chunks:
            sent_at.append(time.monotonic())
            s.sendall(c)
            time.sleep(0.005)
        t.join(10)
    assert arrivals and arrivals[-1][1] == 6000
    late = []
    for i, t0 in enumerate(sent_at):
        end = 100 * (i + 1)
        back = next(t for t, n in arrivals if n >= end)
        late.append(back - t0)
    assert min(late) >= 0.2
    assert max(late) < 0.2 + 0.06, max(late)


@pytest.mark.parametrize("profile", [
    "delay = 1500ms\n",
    "delay = 1500ms\nclose_after = 100ms\n",
    "delay = 1500ms\nreset_after = 1000\n",
])
def test_drain_echoes_what_faults_delay(start_echod, profile):
    """SIGTERM while echo waits for its delay, in a connection that a
    fault has begun to close or reset: what it took still comes back."""
    d = faulty(start_echod, tcp=profile)
    data = os.urandom(1000)
    with socket.create_connection(d.groups["tcp f"][0], timeout=10) as s:
        s.sendall(data)
        time.sleep(0.4)
        d.proc.send_signal(signal.SIGTERM)
        got = recv_exactly(s, 1000, timeout=10)
    assert got == data
    assert d.proc.wait(20) == 0


def test_drain_cut_counts_held_bytes(start_echod):
    mport = free_port()
    d = start_echod(BASE.replace("[server]\n", "[server]\nshutdown_timeout"
                                 " = 1s\n") % mport +
                    "[tcp f]\nlisten = 127.0.0.1:0\ndelay = 10s\n")
    socks = []
    for _ in range(2):
        s = socket.create_connection(d.groups["tcp f"][0], timeout=5)
        s.sendall(b"x" * 5000)
        socks.append(s)
    settled(mport, "echod_buffered_bytes", 10000)
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(20) == 0
    d.wait_log(r"cut 2 connections with 10000 bytes not yet echoed")
    for s in socks:
        s.close()


@heavy
def test_reload_sets_the_group_bandwidth_at_once(start_echod):
    gport, mport = free_port(), free_port()
    conf = BASE + "[tcp f]\nlisten = 127.0.0.1:%d\ngroup_bandwidth = %s\n"
    d = start_echod(conf % (mport, gport, "4m"))
    data = os.urandom(300000)
    with socket.create_connection(("127.0.0.1", gport), timeout=20) as s:
        s.sendall(b"warm")
        assert recv_exactly(s, 4) == b"warm"
        with open(d.config_path, "w") as f:
            f.write(conf % (mport, gport, "100k"))
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log(r"reloaded ")
        # The open connection now shares 100 KiB/s: 300 KB take 2.5 s
        # or more (at 4m, a tenth of a second).
        t0 = time.monotonic()
        got = []
        reader = threading.Thread(
            target=lambda: got.append(recv_exactly(s, len(data), 20)))
        reader.start()
        s.sendall(data)
        reader.join(30)
        took = time.monotonic() - t0
    assert got and got[0] == data
    assert took >= 2.0, took


@pytest.mark.skipif(not (tlsmod.OPENSSL and tlsmod.HAVE_TLS),
                    reason="built --without-openssl, or no openssl command")
@pytest.mark.parametrize("notify", [True, False])
def test_tls_half_close_under_a_rate_limit(start_echod, certs,  # noqa: F811
                                           notify):
    """A TLS client ends its side (close_notify and FIN, or a bare FIN)
    while its echo still waits for the delay and a bandwidth: the rate
    limit's refill turns reading on again and a second end of file comes;
    the echo must still all come back (it was once dropped whole, the
    connection freed at that second end)."""
    d = start_echod(tlsmod.tls_config(
        certs, free_port(), "delay = 1s\ngroup_bandwidth = 64k\n",
        server="workers = 1\n"))
    data = os.urandom(100000)
    # A second client sending as fast as it can (and reading what comes,
    # in the same thread: an SSL object is not for two) keeps the group's
    # bucket empty, so that each refill turns reading on again.
    stop = threading.Event()

    def stream():
        with tlsmod.connect(tlsmod.client_ctx(certs), d.tls[0]) as o:
            o.setblocking(False)
            while not stop.is_set():
                try:
                    o.send(b"y" * 16384)
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    pass
                try:
                    while o.recv(65536):
                        pass
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    pass
                select.select([o], [o], [], 0.01)
    other = threading.Thread(target=stream)
    other.start()
    time.sleep(0.3)
    s = tlsmod.connect(tlsmod.client_ctx(certs), d.tls[0], ragged=True)
    s.sendall(data)
    if notify:
        # Our close_notify, without waiting for theirs (non-blocking).
        s.setblocking(False)
        try:
            s.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        s.setblocking(True)
        s.settimeout(20)
    fin = socket.socket(fileno=os.dup(s.fileno()))
    fin.shutdown(socket.SHUT_WR)
    fin.close()
    try:
        got = recv_exactly(s, len(data), timeout=30)
    finally:
        stop.set()
        other.join(15)
    assert got == data
    s.close()


def test_delay_of_a_steady_stream(start_echod):
    """Reads less than a millisecond apart, for a second: each byte still
    comes back about delay after it was sent (one record's due time was
    once pushed on by every read that joined it: 200 ms became 2 s)."""
    d = faulty(start_echod, tcp="delay = 200ms\n")
    sends, arrivals = [], []    # (time, bytes so far)
    with socket.create_connection(d.groups["tcp f"][0], timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        total = [0]

        def reader():
            n = 0
            while True:
                b = s.recv(65536)
                if not b:
                    return
                n += len(b)
                arrivals.append((time.monotonic(), n))
                if n >= total[0] > 0:
                    return
        t = threading.Thread(target=reader)
        t.start()
        n, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < 1.0:
            s.sendall(b"z" * 10)
            n += 10
            sends.append((time.monotonic(), n))
            time.sleep(0.0002)
        total[0] = n
        t.join(10)
    assert arrivals[-1][1] == n
    worst, i = 0.0, 0
    for when, upto in sends[::50]:
        while arrivals[i][1] < upto:
            i += 1
        worst = max(worst, arrivals[i][0] - when)
    assert worst < 0.2 + 0.1, worst


def test_drain_echoes_a_stalled_connections_budget(start_echod):
    """SIGTERM with a stalled connection whose echo still sits in the
    socket (its client reads slowly): closed once the client has it all,
    not at once with a RST that destroys it."""
    d = faulty(start_echod, tcp="stall_after = 64k\n")
    data = os.urandom(65536 + 10000)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(d.groups["tcp f"][0])
    s.setblocking(False)
    sent, deadline = 0, time.monotonic() + 5
    while sent < len(data) and time.monotonic() < deadline:
        try:
            sent += s.send(data[sent:])
        except BlockingIOError:
            select.select([], [s], [], 0.1)
    time.sleep(0.3)
    d.proc.send_signal(signal.SIGTERM)
    s.setblocking(True)
    got = b""
    try:
        # Slowly: echo waits in echod's socket queue when its output
        # has gone out of its buffers.
        while len(got) < 65536:
            b = s.recv(1024)
            if not b:
                break
            got += b
            time.sleep(0.005)
    except ConnectionResetError:
        pass
    s.close()
    assert got == data[:65536], len(got)
    assert d.proc.wait(20) == 0
