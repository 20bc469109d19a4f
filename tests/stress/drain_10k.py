#!/usr/bin/python3
"""Stress: echod's drain loses nothing with 10,000 streaming clients.

What it checks: echod (workers = 2, shutdown_timeout = 60s, TCP on
127.0.0.1 port 0, no UDP) gets --clients connections (10,000), split over
--procs client processes (4) that each drive theirs with one epoll loop.
Every connection streams without pause: it writes 16-64 KiB at a time (a
size fixed per connection) whenever its socket takes more, and reads and
checks its echo as it comes.  Byte i of connection k is (i*31 + k) & 0xff,
so checking costs no memory.  Once every connection has had --warmup bytes
echoed and all have streamed --stream-seconds more (so that the kernel's
TCP memory is under pressure), echod gets SIGTERM and at that moment every
client stops sending and reads to EOF.  Per connection, everything sent
must come back byte for byte, ending in a clean EOF; echod must exit 0.

Reported per run: connections that lost data (fewer bytes back than sent,
a reset, no EOF) and the bytes lost, connections whose echo was wrong,
echod's exit status and drain time (SIGTERM to exit), its "cut" log lines,
and the deltas of the kernel's TcpExtTCPAbortOnClose (a close with unread
input: a RST that destroys data in flight) and a few memory-pressure
counters from /proc/net/netstat over the run.  To tell why data was lost
it also records, per client, its unacknowledged send queue (SIOCOUTQ) and
retransmission state (TCP_INFO: backoff, RTO, the window echod offered)
at the moment it stops, the TCP memory in use (/proc/net/sockstat, peak
while streaming and while draining, against net.ipv4.tcp_mem), and, for a
drain still going after --snapshot-after seconds, `ss -tnoim` of the
connections left (both sides).  Those counters are for the
whole network namespace: other traffic on the machine adds to them;
--netns runs everything (echod too) in a new network namespace with its
own loopback, which keeps them to this run.

Not part of `make check`: each run takes up to about 3 minutes, uses
10,000+ descriptors per side and drives TCP memory into pressure.  Run by
hand, as root (or with `ulimit -Hn` above --clients), from the top of the
tree:

    tests/stress/drain_10k.py --echod build/echod --runs 3
    tests/stress/drain_10k.py --echod /tmp/echod-old --runs 3

Output: progress on stderr; on stdout one JSON line per run and, with
--runs above 1, a last line with the medians.  Exit status: 0 every run
met the requirement, 1 some run did not (or fewer than --clients
connected), 2 could not run (echod failed to start, bad arguments).
"""
import argparse
import errno
import fcntl
import json
import multiprocessing
import multiprocessing.connection
import os
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import struct
import termios
import threading
import time

from stress_echod import Echod  # beside this script

MAXREAD = 65536
PATLEN = 256 + MAXREAD          # any [o, o+n) slice, o < 256, n <= 64 KiB
COUNTERS = ("TCPAbortOnClose", "TCPAbortOnData", "TCPAbortOnMemory",
            "TCPMemoryPressures", "TCPMemoryPressuresChrono",
            "TCPRcvQDrop", "TCPBacklogDrop", "TCPOFODrop", "TCPZeroWindowDrop",
            "ListenOverflows", "ListenDrops", "TCPTimeouts",
            "TCPLossProbes", "PruneCalled", "RcvPruned")


def log(msg):
    print("drain_10k: " + msg, file=sys.stderr, flush=True)


def netstat():
    """The TcpExt counters of /proc/net/netstat, by name."""
    out = {}
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        n, v = names.split(), values.split()
        if n[0] == "TcpExt:":
            out.update(zip(n[1:], map(int, v[1:])))
    return out


def sockstat_tcp_mem():
    """Pages of TCP memory in use (/proc/net/sockstat), or None."""
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    f = line.split()
                    return int(f[f.index("mem") + 1])
    except (OSError, ValueError):
        pass
    return None


def tcp_mem_sysctl():
    """net.ipv4.tcp_mem (pages: low, pressure, high); None where this
    network namespace does not show it."""
    try:
        with open("/proc/sys/net/ipv4/tcp_mem") as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return None


def pattern(k):
    """The first PATLEN bytes of connection k's stream (period 256)."""
    return bytes(((i * 31) + k) & 0xff for i in range(256)) * \
        (PATLEN // 256 + 1)


def tcp_info_brief(sock):
    """Retransmission state of a socket (struct tcp_info, Linux): RTO (ms),
    backoff, retransmits, zero-window probes, unacked segments, bytes not
    yet sent, the peer's window.  None if the kernel says nothing."""
    try:
        b = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    except OSError:
        return None
    if len(b) < 104:
        return None
    ti = {"state": b[0], "retransmits": b[2], "probes": b[3], "backoff": b[4],
          "rto_ms": struct.unpack_from("I", b, 8)[0] // 1000,
          "unacked": struct.unpack_from("I", b, 24)[0]}
    if len(b) >= 148:
        ti["notsent"] = struct.unpack_from("I", b, 144)[0]
    if len(b) >= 232:
        ti["snd_wnd"] = struct.unpack_from("I", b, 228)[0]
    return ti


class Conn:
    __slots__ = ("k", "sock", "chunk", "sent", "recvd", "bad_at", "eof",
                 "err", "warm", "done", "t_eof", "pat", "mv", "t_send",
                 "outq", "ti")

    def __init__(self, k, sock, chunk, pat, mv):
        self.k = k
        self.sock = sock
        self.chunk = chunk
        self.sent = 0
        self.recvd = 0
        self.bad_at = None      # offset of the first wrong byte echoed
        self.eof = False
        self.err = None
        self.warm = False
        self.done = False
        self.t_eof = None
        self.t_send = None      # when the last send succeeded
        self.outq = None        # SIOCOUTQ when told to stop: sent, unacked
        self.ti = None          # some of TCP_INFO then (tcp_info_brief)
        self.pat = pat
        self.mv = mv


def client(ids, pipe, args):
    """One client process: connections ids, driven over pipe by the parent:
    ("connect", port) -> ("connected", n, failed); ("stream",) -> ("ready",
    ...) once each has had --warmup echoed; ("go",) -> stop sending, read
    everything to EOF -> ("result", {...})."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pats = {}
    conns = {}
    ep = select.epoll()
    pfd = pipe.fileno()
    try:
        msg = pipe.recv()
        if msg[0] != "connect":
            return
        port = msg[1]
        failed = 0
        deadline = time.monotonic() + args.connect_seconds
        i = 0
        while i < len(ids) and time.monotonic() < deadline:
            pending = {}
            for k in ids[i:i + args.batch]:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                rc = s.connect_ex(("127.0.0.1", port))
                if rc not in (0, errno.EINPROGRESS):
                    s.close()
                    failed += 1
                    continue
                pending[s.fileno()] = (k, s)
                ep.register(s.fileno(), select.EPOLLOUT)
            i += args.batch
            bdl = min(deadline, time.monotonic() + 15.0)
            while pending and time.monotonic() < bdl:
                for fd, _ in ep.poll(0.5):
                    k, s = pending.pop(fd)
                    ep.unregister(fd)
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        s.close()
                        failed += 1
                        continue
                    p = pats.get(k & 0xff)
                    if p is None:
                        p = pats[k & 0xff] = pattern(k & 0xff)
                    span = args.max_chunk - args.min_chunk + 1
                    chunk = args.min_chunk + (k * 7919) % span
                    conns[fd] = Conn(k, s, chunk, p, memoryview(p))
            for fd, (k, s) in pending.items():
                ep.unregister(fd)
                s.close()
                failed += 1
        failed += len(ids) - min(i, len(ids))
        pipe.send(("connected", len(conns), failed))

        msg = pipe.recv()
        if msg[0] != "stream":
            return
        for fd in conns:
            ep.register(fd, select.EPOLLIN | select.EPOLLOUT)
        ep.register(pfd, select.EPOLLIN)
        sending = True
        cold = len(conns)
        ready_sent = False
        wrong = 0
        hard_deadline = time.monotonic() + args.ready_seconds + \
            args.stream_seconds + args.shutdown_timeout + 60
        t_go = None
        t_term = None
        left = len(conns)
        buf = bytearray(4)
        while left > 0 and time.monotonic() < hard_deadline:
            if t_go is not None and time.monotonic() > t_go + \
                    args.shutdown_timeout + 20:
                break
            for fd, ev in ep.poll(0.2, 2048):
                if fd == pfd:
                    msg = pipe.recv()
                    if msg[0] == "go" and sending:
                        sending = False
                        t_go = time.monotonic()
                        t_term = msg[1]
                        for c in conns.values():
                            if not c.done:
                                ep.modify(c.sock.fileno(), select.EPOLLIN)
                                try:
                                    fcntl.ioctl(c.sock.fileno(),
                                                termios.TIOCOUTQ, buf)
                                    c.outq = struct.unpack("i", buf)[0]
                                except OSError:
                                    pass
                                c.ti = tcp_info_brief(c.sock)
                    continue
                c = conns[fd]
                if c.done:
                    continue
                s = c.sock
                if ev & (select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP):
                    for _ in range(4):
                        try:
                            data = s.recv(MAXREAD)
                        except BlockingIOError:
                            break
                        except OSError as e:
                            c.err = errno.errorcode.get(e.errno, str(e))
                            data = None
                        if not data:
                            if data is not None:
                                c.eof = True
                                c.t_eof = time.monotonic()
                            c.done = True
                            left -= 1
                            ep.unregister(fd)
                            s.close()
                            break
                        n = len(data)
                        o = c.recvd & 0xff
                        if c.bad_at is None and data != c.pat[o:o + n]:
                            want = c.pat[o:o + n]
                            j = next(j for j in range(n)
                                     if data[j] != want[j])
                            c.bad_at = c.recvd + j
                            wrong += 1
                        c.recvd += n
                        if not c.warm and c.recvd >= args.warmup:
                            c.warm = True
                            cold -= 1
                        if n < MAXREAD:
                            break
                    if c.done:
                        continue
                if sending and ev & select.EPOLLOUT:
                    o = c.sent & 0xff
                    try:
                        c.sent += s.send(c.mv[o:o + c.chunk])
                        c.t_send = time.monotonic()
                    except BlockingIOError:
                        pass
                    except OSError as e:
                        c.err = errno.errorcode.get(e.errno, str(e))
            if not ready_sent and (cold == 0 or not sending):
                ready_sent = True
                pipe.send(("ready", cold))
        if not ready_sent:
            pipe.send(("ready", cold))
        # Report: totals and the connections that lost data.
        # Still open: how they look at the end (state 1 = established).
        stuck = [{"k": c.k, "sent": c.sent, "recvd": c.recvd,
                  "tcp_info_now": tcp_info_brief(c.sock)}
                 for c in conns.values() if not c.done][:20]

        def since_term(t):
            return None if t is None or t_term is None else \
                round(t - t_term, 3)
        lost = []
        for c in conns.values():
            short = c.sent - c.recvd
            if short != 0 or not c.eof or c.bad_at is not None:
                lost.append({"k": c.k, "sent": c.sent, "recvd": c.recvd,
                             "eof": c.eof, "err": c.err, "bad_at": c.bad_at,
                             "outq_at_stop": c.outq, "tcp_info_at_stop": c.ti,
                             "last_send_s": since_term(c.t_send),
                             "eof_s": since_term(c.t_eof)})
        def backed_off(group):
            return sum(1 for c in group if c.ti and (c.ti["backoff"] or
                                                     c.ti["probes"]))
        def zero_window(group):
            return sum(1 for c in group if c.ti and
                       c.ti.get("snd_wnd", 1) == 0)
        lost_set = set(id(c) for c in conns.values()
                       if c.sent != c.recvd or not c.eof)
        t_sends = [c.t_send for c in conns.values() if c.t_send is not None]
        t_eofs = [c.t_eof for c in conns.values() if c.t_eof is not None]
        pipe.send(("result", {
            "conns": len(conns), "sent": sum(c.sent for c in conns.values()),
            "recvd": sum(c.recvd for c in conns.values()),
            "eof": sum(1 for c in conns.values() if c.eof),
            "reset": sum(1 for c in conns.values()
                         if c.err in ("ECONNRESET", "EPIPE")),
            "open_at_end": left, "wrong": wrong, "cold": cold,
            "last_eof": max(t_eofs) if t_eofs else None,
            "stop_delay": since_term(t_go),
            "last_send": since_term(max(t_sends)) if t_sends else None,
            "outq_at_stop": sum(c.outq or 0 for c in conns.values()),
            "backed_off_lost": backed_off(
                c for c in conns.values() if id(c) in lost_set),
            "backed_off_clean": backed_off(
                c for c in conns.values() if id(c) not in lost_set),
            "zero_window_lost": zero_window(
                c for c in conns.values() if id(c) in lost_set),
            "zero_window_clean": zero_window(
                c for c in conns.values() if id(c) not in lost_set),
            "stuck": stuck,
            "lost": lost}))
    finally:
        for c in conns.values():
            if not c.done:
                c.sock.close()
        ep.close()
        pipe.close()


def ss_snapshot(port, most=12):
    """The connections to port still open, both sides (TIME-WAIT only
    counted): ss lines with state, queues, timers, TCP_INFO and socket
    memory, the first few, after a line of counts."""
    try:
        out = subprocess.run(
            ["ss", "-tnoimH", "state", "all", "( sport = :%d or dport = :%d )"
             % (port, port)], capture_output=True, text=True,
            timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return ["ss failed: %s" % e]
    # ss -i -m put details on continuation lines: join them.
    socks, cur = [], None
    for line in out.splitlines():
        if line[:1].isspace() and cur is not None:
            cur += " |" + " ".join(line.split())
        else:
            if cur is not None:
                socks.append(cur)
            cur = " ".join(line.split())
    if cur is not None:
        socks.append(cur)
    states = {}
    for x in socks:
        states[x.split()[0]] = states.get(x.split()[0], 0) + 1
    live = [x for x in socks if not x.startswith("TIME-WAIT")]
    return ["%d sockets: %s; TCP memory %s pages" % (
        len(socks), states, sockstat_tcp_mem())] + live[:most]


class MemSampler(threading.Thread):
    """The most TCP memory (/proc/net/sockstat pages) seen, every 0.2 s,
    since the last reset()."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = 0
        self.stop = threading.Event()

    def reset(self):
        peak, self.peak = self.peak, 0
        return peak

    def run(self):
        while not self.stop.wait(0.2):
            self.peak = max(self.peak, sockstat_tcp_mem() or 0)


def recv_until(pipes, kind, timeout):
    """Collect one message of kind from each pipe, within timeout."""
    got = {}
    deadline = time.monotonic() + timeout
    while len(got) < len(pipes):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for p in multiprocessing.connection.wait(
                [p for i, p in enumerate(pipes) if i not in got], left):
            i = pipes.index(p)
            try:
                msg = p.recv()
            except EOFError:
                got[i] = None
                continue
            if msg[0] == kind:
                got[i] = msg
    return got


def one_run(args, run):
    config = ("[server]\nlog_level = info\nshutdown_timeout = %s\n"
              "workers = %s\n[tcp]\nlisten = 127.0.0.1:0\n[udp]\nlisten =\n"
              % (args.shutdown_timeout_conf, args.workers))
    ctx = multiprocessing.get_context("fork")
    shares = [list(range(i, args.clients, args.procs))
              for i in range(args.procs)]
    pipes, procs = [], []
    d = None
    before = netstat()
    try:
        # The clients fork before echod starts, so they hold none of its
        # descriptors (and no thread of this process).
        for ids in shares:
            a, b = ctx.Pipe()
            p = ctx.Process(target=client, args=(ids, b, args), daemon=True)
            p.start()
            b.close()
            pipes.append(a)
            procs.append(p)
        try:
            d = Echod(args.echod, config)
            port = d.wait_ready()
        except (OSError, RuntimeError) as e:
            log("cannot start echod: %s" % e)
            return None
        log("run %d: echod pid %d port %d" % (run, d.proc.pid, port))
        t0 = time.monotonic()
        for p in pipes:
            p.send(("connect", port))
        got = recv_until(pipes, "connected", args.connect_seconds + 20)
        connected = sum(m[1] for m in got.values() if m)
        log("run %d: %d connected, %d failed, in %.1fs" % (
            run, connected, sum(m[2] for m in got.values() if m),
            time.monotonic() - t0))
        t1 = time.monotonic()
        sampler = MemSampler()
        sampler.start()
        for p in pipes:
            p.send(("stream",))
        got = recv_until(pipes, "ready", args.ready_seconds)
        cold = sum(m[1] for m in got.values() if m) \
            if len(got) == len(pipes) else "?"
        log("run %d: streaming; warm in %.1fs (%s connections short of "
            "--warmup)" % (run, time.monotonic() - t1, cold))
        time.sleep(args.stream_seconds)
        mem_pages = sockstat_tcp_mem()
        rss = None
        try:
            with open("/proc/%d/status" % d.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
        except OSError:
            pass
        mid = netstat()
        peak_streaming = sampler.reset()
        # The signal, and at once every client stops sending.
        t_term = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        for p in pipes:
            p.send(("go", t_term))
        log("run %d: SIGTERM after %.1fs of streaming; TCP memory %s pages, "
            "echod RSS %s KiB" % (run, t_term - t1, mem_pages, rss))
        # A drain still going after --snapshot-after seconds: what echod's
        # remaining sockets look like (ss), for the report.
        lingering = None
        try:
            status = d.proc.wait(args.snapshot_after)
        except subprocess.TimeoutExpired:
            lingering = ss_snapshot(port)
            log("run %d: still draining after %gs: %s" % (
                run, args.snapshot_after, lingering[:3]))
            try:
                status = d.proc.wait(args.shutdown_timeout + 30)
            except subprocess.TimeoutExpired:
                status = None
        t_exit = time.monotonic()
        peak_draining = sampler.reset()
        sampler.stop.set()
        got = recv_until(pipes, "result", args.shutdown_timeout + 40)
        after = netstat()
        res = [m[1] for m in got.values() if m]
        lost = [c for r in res for c in r["lost"]]
        # The worst first: no EOF, reset, wrong bytes; then by index.
        lost.sort(key=lambda c: (c["eof"] and c["err"] is None and
                                 c["bad_at"] is None, c["k"]))
        last_eofs = [r["last_eof"] for r in res if r["last_eof"]]
        echod_log = d.log()
        out = {
            "run": run, "echod": args.echod, "clients": args.clients,
            "connected": connected,
            "results_from": "%d/%d processes" % (len(res), len(pipes)),
            "sent_mib": round(sum(r["sent"] for r in res) / 2**20, 1),
            "recvd_mib": round(sum(r["recvd"] for r in res) / 2**20, 1),
            "eof": sum(r["eof"] for r in res),
            "reset": sum(r["reset"] for r in res),
            "open_at_end": sum(r["open_at_end"] for r in res),
            "wrong_echo": sum(r["wrong"] for r in res),
            "conns_lost_data": sum(1 for c in lost
                                   if c["sent"] != c["recvd"]),
            "bytes_lost": sum(c["sent"] - c["recvd"] for c in lost),
            "conns_not_clean": len(lost),
            "exit_status": status,
            "drain_s": None if status is None else round(t_exit - t_term, 2),
            "last_eof_s": round(max(last_eofs) - t_term, 2)
            if last_eofs else None,
            "stream_s": round(t_term - t1, 1),
            "client_stop_delay_s": max((r["stop_delay"] for r in res
                                        if r["stop_delay"] is not None),
                                       default=None),
            "client_last_send_s": max((r["last_send"] for r in res
                                       if r["last_send"] is not None),
                                      default=None),
            "client_outq_at_stop_mib": round(sum(r["outq_at_stop"]
                                                 for r in res) / 2**20, 1),
            # Clients in RTO backoff or zero-window probing when told to
            # stop: among those that lost data, and among the others.
            "clients_backed_off_at_stop": {
                "lost": sum(r["backed_off_lost"] for r in res),
                "clean": sum(r["backed_off_clean"] for r in res)},
            # ... and those the peer (echod) offered a zero window.
            "clients_zero_window_at_stop": {
                "lost": sum(r["zero_window_lost"] for r in res),
                "clean": sum(r["zero_window_clean"] for r in res)},
            "stuck": [c for r in res for c in r["stuck"]][:20],
            "tcp_mem_pages_at_sigterm": mem_pages,
            "tcp_mem_pages_peak": {"streaming": peak_streaming,
                                   "draining": peak_draining},
            "tcp_mem_sysctl": tcp_mem_sysctl(),
            "echod_rss_kib_at_sigterm": rss,
            "counters_run": {k: after.get(k, 0) - before.get(k, 0)
                             for k in COUNTERS},
            "counters_drain": {k: after.get(k, 0) - mid.get(k, 0)
                               for k in COUNTERS},
            "echod_log": [l for l in echod_log.splitlines()
                          if re.search(r"cut|stopp|shut|drain", l)][-6:],
            "ss_while_draining": lingering,
            "lost_sample": lost[:10],
        }
        out["abort_on_close"] = out["counters_run"]["TCPAbortOnClose"]
        out["ok"] = (connected == args.clients and status == 0 and
                     len(res) == len(pipes) and out["conns_not_clean"] == 0
                     and out["wrong_echo"] == 0 and out["open_at_end"] == 0)
        return out
    finally:
        if d is not None:
            d.kill()
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)
        for p in pipes:
            p.close()


def main():
    ap = argparse.ArgumentParser(
        description="echod's drain with 10,000 streaming clients")
    ap.add_argument("--echod", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "build",
        "echod"), help="echod binary (default: build/echod)")
    ap.add_argument("--clients", type=int, default=10000)
    ap.add_argument("--procs", type=int, default=4,
                    help="client processes (default 4)")
    ap.add_argument("--workers", default="2")
    ap.add_argument("--shutdown-timeout", type=float, default=60.0,
                    help="echod's shutdown_timeout, seconds (default 60)")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=250,
                    help="connections each process opens at a time")
    ap.add_argument("--min-chunk", type=int, default=16384)
    ap.add_argument("--max-chunk", type=int, default=65536)
    ap.add_argument("--warmup", type=int, default=65536,
                    help="bytes echoed on every connection before the "
                    "clock starts (default 64 KiB)")
    ap.add_argument("--stream-seconds", type=float, default=5.0,
                    help="streaming after the warm-up, before SIGTERM")
    ap.add_argument("--ready-seconds", type=float, default=45.0,
                    help="most time for the warm-up (then SIGTERM anyway)")
    ap.add_argument("--snapshot-after", type=float, default=15.0,
                    help="a drain still going after this many seconds gets "
                    "an ss snapshot of echod's sockets in the report")
    ap.add_argument("--connect-seconds", type=float, default=60.0)
    ap.add_argument("--netns", action="store_true",
                    help="run in a new network namespace (unshare -n): its "
                    "own loopback and counters")
    ap.add_argument("--in-netns", action="store_true",
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not 1 <= args.min_chunk <= args.max_chunk <= MAXREAD:
        ap.error("need 1 <= --min-chunk <= --max-chunk <= %d" % MAXREAD)
    args.shutdown_timeout_conf = "%gs" % args.shutdown_timeout

    if args.netns and not args.in_netns:
        unshare = shutil.which("unshare")
        if unshare is None:
            log("--netns: no unshare(1)")
            return 2
        argv = [unshare, "-n", "--", sys.executable,
                os.path.abspath(__file__)] + sys.argv[1:] + ["--in-netns"]
        return subprocess.call(argv)
    if args.in_netns:
        if subprocess.call(["ip", "link", "set", "lo", "up"]) != 0:
            log("--netns: cannot bring lo up")
            return 2

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < args.clients + 100:
        log("descriptor hard limit %d is below %d clients + 100" %
            (hard, args.clients))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    results = []
    for run in range(1, args.runs + 1):
        r = one_run(args, run)
        if r is None:
            return 2
        results.append(r)
        print(json.dumps(r), flush=True)
        log("run %d: %d/%d connected; %d lost data (%d bytes), %d wrong, "
            "%d reset, %d not clean; exit %s, drain %s s; "
            "TcpExtTCPAbortOnClose +%d: %s" % (
                run, r["connected"], args.clients, r["conns_lost_data"],
                r["bytes_lost"], r["wrong_echo"], r["reset"],
                r["conns_not_clean"], r["exit_status"], r["drain_s"],
                r["abort_on_close"], "ok" if r["ok"] else "NOT met"))
        if run < args.runs:
            time.sleep(3)
    if len(results) > 1:
        def med(key):
            v = [r[key] for r in results if r[key] is not None]
            return statistics.median(v) if v else None
        print(json.dumps({
            "runs": len(results), "echod": args.echod,
            "ok_runs": sum(r["ok"] for r in results),
            "median_conns_lost_data": med("conns_lost_data"),
            "median_bytes_lost": med("bytes_lost"),
            "median_drain_s": med("drain_s"),
            "median_abort_on_close": med("abort_on_close"),
            "median_sent_mib": med("sent_mib")}), flush=True)
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
