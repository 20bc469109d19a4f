"""Live tests of memory_limit: never-reading clients stay within it while
reading clients are served, the metrics count what is held, and memory goes
back to the system once a burst of clients has left."""
import os
import socket
import threading
import time

import pytest

from conftest import DEFAULT_CONFIG
from test_concurrency import (SANITIZED, TIMEOUT, config, nofile,  # noqa
                              proc_status)
from test_metrics import free_port, parse, scrape

MIB = 1024 * 1024


def metrics_config(port, **keys):
    return config(**keys) + "[metrics]\nlisten = 127.0.0.1:%d\n" % port


def fill(socks, each, limit_s=20):
    """Send each socket's share, each bytes, or until neither echod nor the
    kernel takes more (the clients never read); return what each sent.
    The share keeps the kernel's own socket buffers, which grow to
    tcp_rmem's maximum, from pushing the whole machine's TCP memory to its
    limit."""
    chunk = b"m" * 65536
    sent = [0] * len(socks)
    deadline = time.monotonic() + limit_s
    for s in socks:
        s.setblocking(False)
    while time.monotonic() < deadline:
        moved = 0
        for i, s in enumerate(socks):
            if sent[i] >= each:
                continue
            try:
                n = s.send(chunk[:each - sent[i]])
            except BlockingIOError:
                continue
            sent[i] += n
            moved += n
        if moved == 0:
            if all(n >= each for n in sent):
                break
            # Give echod a moment to read what is queued, then look again.
            time.sleep(0.2)
            if all(sent[i] >= each or not try_send(s, sent, i)
                   for i, s in enumerate(socks)):
                break
    return sent


def settle(sample, key, limit_s=20):
    """Sample until key has stopped changing for half a second (echod has
    taken what it will of what the clients sent); return the last."""
    deadline = time.monotonic() + limit_s
    last = sample()
    steady = 0
    while steady < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
        m = sample()
        steady = steady + 1 if m[key] == last[key] else 0
        last = m
    return last


def try_send(s, sent, i):
    try:
        n = s.send(b"m")
    except BlockingIOError:
        return False
    sent[i] += n
    return n > 0


def open_never_readers(addr, n, batch=500):
    """Open n connections with a 4 KiB receive buffer, set before connect
    so the kernel cannot grow it: the echo stays in echod."""
    socks = []
    try:
        for start in range(0, n, batch):
            for _ in range(start, min(n, start + batch)):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.settimeout(TIMEOUT)
                s.connect(addr)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def echo_once(addr, size):
    """Send size bytes while reading the echo, as a client that reads
    does; check every byte."""
    data = os.urandom(size)
    errors = []
    with socket.create_connection(addr, timeout=TIMEOUT) as s:
        def send():
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except OSError as e:
                errors.append(e)
        t = threading.Thread(target=send)
        t.start()
        got = bytearray()
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            got += b
        t.join(TIMEOUT)
    assert not errors, errors
    assert bytes(got) == data


def test_memory_limit_bounds_never_readers(start_echod, nofile):
    """40 clients that never read, 256k buffer_limit each, would pin
    10 MiB; with memory_limit = 4m echod holds at most that plus one read
    per connection, counts its pauses, and still echoes for clients that
    read.  Each client sends 6 MiB: the kernel's socket buffers on both
    sides take the first 4-5 MiB before echod has to hold anything."""
    port = free_port()
    n = 40
    d = start_echod(metrics_config(port, server_memory_limit="4m",
                                   server_workers="2",
                                   tcp_buffer_limit="256k"))
    echo_once(d.tcp[0], 1 << 20)        # touch the code paths first
    rss0 = proc_status(d.proc.pid, "VmRSS")
    socks = open_never_readers(d.tcp[0], n)
    try:
        sent = fill(socks, 6 * MIB)
        m = settle(lambda: parse(scrape(port)), "echod_buffered_bytes")
        held = m["echod_buffered_bytes"]
        print("%d never-readers sent %d MiB; echod holds %d KiB, paused "
              "%d times" % (n, sum(sent) // MIB, held // 1024,
                            m["echod_memory_pauses_total"]))
        assert m["echod_memory_limit_bytes"] == 4 * MIB
        assert m["echod_memory_pauses_total"] > 0
        assert held >= 3 * MIB, "the clients did not load echod"
        # Soft limit: each paused connection may add one 4 KiB read, and
        # the one that crosses the limit in each worker one 64 KiB read.
        assert held <= 4 * MIB + n * 4096 + 2 * 65536, held
        # A client that reads its echo is served while the limit holds.
        echo_once(d.tcp[0], 16 << 20)
        rss1 = proc_status(d.proc.pid, "VmRSS")
        growth = (rss1 - rss0) * 1024
        print("echod RSS grew %d KiB" % (growth // 1024))
        if not SANITIZED:
            assert growth < 4 * MIB + n * 16 * 1024 + 4 * MIB, growth
    finally:
        for s in socks:
            s.close()
    # Once they are gone, nothing is held any more.
    deadline = time.monotonic() + 10
    while parse(scrape(port))["echod_buffered_bytes"] != 0:
        assert time.monotonic() < deadline, "buffered bytes never went to 0"
        time.sleep(0.05)


def test_memory_limit_off_and_auto(start_echod):
    port = free_port()
    d = start_echod(metrics_config(port, server_memory_limit="0"))
    assert parse(scrape(port))["echod_memory_limit_bytes"] == 0
    assert "memory_limit: none" in d.log()
    port = free_port()
    d = start_echod(metrics_config(port))
    auto = parse(scrape(port))["echod_memory_limit_bytes"]
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert 0 < auto <= pages // 4, auto
    assert "a quarter of" in d.log()


def test_reload_changes_memory_limit(start_echod):
    port = free_port()
    d = start_echod(metrics_config(port, server_memory_limit="64m"))
    assert parse(scrape(port))["echod_memory_limit_bytes"] == 64 * MIB
    with open(d.config_path, "w") as f:
        f.write(metrics_config(port, server_memory_limit="32m"))
    d.proc.send_signal(1)                       # SIGHUP
    d.wait_log(r"reloaded ")
    assert parse(scrape(port))["echod_memory_limit_bytes"] == 32 * MIB


def test_memory_goes_back_after_a_burst(start_echod, nofile):
    """40 never-readers with an 8m buffer_limit each pin about 320 MiB in
    echod; once they have left, its RSS comes back within 32 MiB of where
    it started (the allocator kept almost all of it before)."""
    if SANITIZED:
        pytest.skip("RSS means nothing under ASan or valgrind")
    n = 40
    d = start_echod(config(server_workers="2", tcp_buffer_limit="8m",
                           server_memory_limit="0"))
    echo_once(d.tcp[0], 1 << 20)
    rss0 = proc_status(d.proc.pid, "VmRSS")
    socks = open_never_readers(d.tcp[0], n)
    try:
        fill(socks, 14 * MIB)
        peak = settle(lambda: {"rss": proc_status(d.proc.pid, "VmRSS")},
                      "rss")["rss"]
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 15
    while True:
        rss = proc_status(d.proc.pid, "VmRSS")
        if rss - rss0 < 32 * 1024 or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    print("RSS %d KiB at start, %d KiB with %d never-readers, %d KiB after"
          % (rss0, peak, n, rss))
    assert peak - rss0 > 200 * 1024, "the burst did not load echod"
    assert rss - rss0 < 32 * 1024, (rss0, peak, rss)
