"""Live tests of memory_limit: never-reading clients stay within it while
reading clients are served, the metrics count what is held, and memory goes
back to the system once a burst of clients has left."""
import os
import socket
import time

import pytest

from conftest import DEFAULT_CONFIG
from test_concurrency import (SANITIZED, TIMEOUT, config, nofile,  # noqa
                              open_many, proc_status)
from test_metrics import free_port, parse, scrape

MIB = 1024 * 1024


def metrics_config(port, **keys):
    return config(**keys) + "[metrics]\nlisten = 127.0.0.1:%d\n" % port


def fill(socks, limit_s=20):
    """Send on every socket until neither echod nor the kernel takes more
    (the clients never read); return the bytes each sent."""
    chunk = b"m" * 65536
    sent = [0] * len(socks)
    deadline = time.monotonic() + limit_s
    for s in socks:
        s.setblocking(False)
    while time.monotonic() < deadline:
        moved = 0
        for i, s in enumerate(socks):
            try:
                n = s.send(chunk)
            except BlockingIOError:
                continue
            sent[i] += n
            moved += n
        if moved == 0:
            # Give echod a moment to read what is queued, then look again.
            time.sleep(0.2)
            if all(not try_send(s) for s in socks):
                break
    return sent


def try_send(s):
    try:
        return s.send(b"m") > 0
    except BlockingIOError:
        return False


def small_rcvbuf(socks):
    for s in socks:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)


def echo_once(addr, size):
    data = os.urandom(size)
    with socket.create_connection(addr, timeout=TIMEOUT) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = bytearray()
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            got += b
    assert bytes(got) == data


def test_memory_limit_bounds_never_readers(start_echod, nofile):
    """300 clients that never read, 256k buffer_limit each, would pin
    about 80 MiB; with memory_limit = 8m echod holds at most that plus one
    read per connection, counts its pauses, and still echoes for clients
    that read."""
    port = free_port()
    n = 300
    d = start_echod(metrics_config(port, server_memory_limit="8m",
                                   server_workers="2",
                                   tcp_buffer_limit="256k"))
    echo_once(d.tcp[0], 1 << 20)        # touch the code paths first
    rss0 = proc_status(d.proc.pid, "VmRSS")
    socks = open_many(d.tcp[0], n)
    try:
        small_rcvbuf(socks)
        sent = fill(socks)
        m = parse(scrape(port))
        held = m["echod_buffered_bytes"]
        print("%d never-readers sent %d MiB; echod holds %d KiB, paused "
              "%d times" % (n, sum(sent) // MIB, held // 1024,
                            m["echod_memory_pauses_total"]))
        assert m["echod_memory_limit_bytes"] == 8 * MIB
        assert m["echod_memory_pauses_total"] > 0
        # Soft limit: each paused connection may add one 4 KiB read, and
        # the one that crosses the limit in each worker one 64 KiB read.
        assert held <= 8 * MIB + n * 4096 + 2 * 65536, held
        # A client that reads its echo is served while the limit holds.
        echo_once(d.tcp[0], 4 << 20)
        rss1 = proc_status(d.proc.pid, "VmRSS")
        growth = (rss1 - rss0) * 1024
        print("echod RSS grew %d KiB" % (growth // 1024))
        if not SANITIZED:
            assert growth < 8 * MIB + n * 12 * 1024 + 4 * MIB, growth
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
    """1,000 never-readers pin about 270 MiB; once they have left, echod's
    RSS comes back within 32 MiB of where it started (the allocator kept
    almost all of it before)."""
    if SANITIZED:
        pytest.skip("RSS means nothing under ASan or valgrind")
    n = 1000
    d = start_echod(config(server_workers="2", tcp_buffer_limit="256k",
                           server_memory_limit="0"))
    echo_once(d.tcp[0], 1 << 20)
    rss0 = proc_status(d.proc.pid, "VmRSS")
    socks = open_many(d.tcp[0], n)
    try:
        small_rcvbuf(socks)
        fill(socks)
        peak = proc_status(d.proc.pid, "VmRSS")
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
    assert peak - rss0 > 100 * 1024, "the burst did not load echod"
    assert rss - rss0 < 32 * 1024, (rss0, peak, rss)
