#!/usr/bin/python3
"""Stress: echod's RSS goes back to its start after a burst of never-readers.

What it checks: echod (loopback, port 0, TCP only) is started and its
VmRSS recorded; then --clients TCP clients (10,000 by default) connect, in
batches so that the listen backlog (4096) is never overrun, each with a
small SO_RCVBUF, and each sends 64 KiB chunks without blocking until
neither echod nor the kernel takes any more (EAGAIN on every client for
several rounds in a row; bounded in rounds and time), and never reads.
echod's RSS is sampled while they load (the peak is the largest sample;
VmHWM is reported too).  Then every client closes and RSS is polled every
0.5 s for up to --settle seconds.  The requirement: RSS after the burst
within --max-growth MiB (64) of its start.  With --max-peak MiB the peak
must also stay below that (for a run with --memory-limit).

Not part of `make check`: it takes under a minute, drives the machine's
TCP memory to its limits and needs a descriptor limit above --clients
(the script raises its soft limit to the hard one).  Run by hand, as root
or with a high enough `ulimit -Hn`, from the top of the tree:

    tests/stress/burst_rss.py --echod build/echod
    tests/stress/burst_rss.py --echod build/echod --memory-limit 256m \\
        --max-peak 512
    tests/stress/burst_rss.py --echod /tmp/echod-old   # no memory_limit key

It prints progress on stderr and one JSON line on stdout: start, peak,
VmHWM and after (KiB), after - start (MiB), bytes the clients got in, an
estimate of the echo data echod held at the peak (what the clients got
in, less the kernel's queues on both sides, from ss), with --memory-limit
echod.conf(5)'s bound for user space (limit + 5 KiB per client + start),
and whether the requirement was met.  Exit status: 0 requirement met, 1 not
met (also when fewer than --clients could connect), 2 could not run
(echod failed to start, bad arguments).
"""
import argparse
import errno
import json
import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import time

from stress_echod import Echod  # beside this script

CHUNK = 64 * 1024


def parse_size(text):
    """echod's size syntax (a number with k, m or g) in bytes; None if
    it is not one (e.g. auto)."""
    m = re.fullmatch(r"\s*(\d+)\s*([kmgKMG]?)\s*", text)
    if not m:
        return None
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[
        m.group(2).lower()]


def log(msg):
    print("burst_rss: " + msg, file=sys.stderr, flush=True)


def proc_status(pid, key):
    """A kB field of /proc/PID/status (VmRSS, VmHWM), in KiB; None if gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def nfds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def connect_all(port, n, batch, rcvbuf, pid, budget):
    """Open n non-blocking clients, batch at a time, each batch connected
    and accepted by echod before the next.  Return the connected sockets."""
    socks = []
    failed = 0
    fd0 = nfds(pid)
    deadline = time.monotonic() + budget
    ep = select.epoll()
    try:
        while len(socks) + failed < n and time.monotonic() < deadline:
            pending = {}
            for _ in range(min(batch, n - len(socks) - failed)):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
                s.setblocking(False)
                rc = s.connect_ex(("127.0.0.1", port))
                if rc not in (0, errno.EINPROGRESS):
                    s.close()
                    failed += 1
                    continue
                pending[s.fileno()] = s
                ep.register(s.fileno(), select.EPOLLOUT)
            bdl = min(deadline, time.monotonic() + 10.0)
            while pending and time.monotonic() < bdl:
                for fd, _ in ep.poll(0.5):
                    s = pending.pop(fd)
                    ep.unregister(fd)
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        s.close()
                        failed += 1
                    else:
                        socks.append(s)
            for fd, s in pending.items():       # not connected in time
                ep.unregister(fd)
                s.close()
                failed += 1
            # Let echod accept them before the next batch (bounded).
            adl = min(deadline, time.monotonic() + 5.0)
            while nfds(pid) < fd0 + len(socks) and time.monotonic() < adl:
                time.sleep(0.02)
    finally:
        ep.close()
    return socks, failed


def queues(port):
    """Bytes in the kernel's queues for port's connections, from ss:
    (echod's sockets: unread, unacknowledged; the clients': unread,
    unsent).  None if ss fails."""
    try:
        out = subprocess.run(
            ["ss", "-tnH", "state", "established"], capture_output=True,
            text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    srv_rq = srv_sq = cli_rq = cli_sq = 0
    tail = ":%d" % port
    for line in out.splitlines():
        f = line.split()
        if len(f) < 4:
            continue
        rq, sq, local, peer = int(f[0]), int(f[1]), f[2], f[3]
        if local.endswith(tail) and local.startswith("127.0.0.1"):
            srv_rq += rq
            srv_sq += sq
        elif peer.endswith(tail) and peer.startswith("127.0.0.1"):
            cli_rq += rq
            cli_sq += sq
    return srv_rq, srv_sq, cli_rq, cli_sq


def load(socks, pid, max_rounds, budget, per_round):
    """Send 64 KiB chunks on every client until none takes any more for
    3 rounds in a row (or max_rounds, or budget seconds).  Sample echod's
    RSS as it goes; return (bytes sent, peak RSS KiB, rounds, samples)."""
    chunk = bytes(CHUNK)
    live = list(socks)
    sent = 0
    peak = proc_status(pid, "VmRSS") or 0
    samples = []
    idle_rounds = 0
    rounds = 0
    t0 = time.monotonic()
    deadline = t0 + budget
    last_sample = 0.0
    for rounds in range(1, max_rounds + 1):
        got = 0
        dead = []
        for i, s in enumerate(live):
            for _ in range(per_round):
                try:
                    k = s.send(chunk)
                except BlockingIOError:
                    break
                except OSError:
                    dead.append(s)
                    break
                got += k
                if k < CHUNK:
                    break
            if i % 250 == 0:
                now = time.monotonic()
                if now - last_sample >= 0.25:
                    last_sample = now
                    rss = proc_status(pid, "VmRSS") or 0
                    peak = max(peak, rss)
                    samples.append((round(now - t0, 2), rss))
                if now > deadline:
                    break
        for s in dead:
            live.remove(s)
        sent += got
        rss = proc_status(pid, "VmRSS") or 0
        peak = max(peak, rss)
        log("round %d: %d MiB sent (total %d MiB), echod RSS %d MiB" %
            (rounds, got >> 20, sent >> 20, rss >> 10))
        idle_rounds = idle_rounds + 1 if got == 0 else 0
        if idle_rounds >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
        rss = proc_status(pid, "VmRSS") or 0
        peak = max(peak, rss)
    return sent, peak, rounds, idle_rounds >= 3, samples


def main():
    ap = argparse.ArgumentParser(
        description="echod RSS after a burst of never-reading clients")
    ap.add_argument("--echod", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "build",
        "echod"), help="echod binary (default: build/echod)")
    ap.add_argument("--clients", type=int, default=10000)
    ap.add_argument("--workers", default="2")
    ap.add_argument("--memory-limit", default=None,
                    help="[server] memory_limit (default: key omitted, so "
                    "echod's own default; old echods do not know it)")
    ap.add_argument("--batch", type=int, default=500,
                    help="clients connected at a time (default 500)")
    ap.add_argument("--rcvbuf", type=int, default=4096,
                    help="clients' SO_RCVBUF (default 4096)")
    ap.add_argument("--max-rounds", type=int, default=60)
    ap.add_argument("--load-seconds", type=float, default=90.0)
    ap.add_argument("--per-round", type=int, default=16,
                    help="64 KiB sends per client per round at most")
    ap.add_argument("--settle", type=float, default=15.0,
                    help="seconds to wait for RSS to come back (default 15)")
    ap.add_argument("--max-growth", type=float, default=64.0,
                    help="MiB RSS may stay above its start (default 64)")
    ap.add_argument("--max-peak", type=float, default=None,
                    help="MiB the peak RSS must stay below (default: "
                    "not checked)")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < args.clients + 100:
        log("descriptor hard limit %d is below %d clients + 100" %
            (hard, args.clients))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    config = "[server]\nlog_level = info\nshutdown_timeout = 5s\n" \
             "workers = %s\n" % args.workers
    if args.memory_limit is not None:
        config += "memory_limit = %s\n" % args.memory_limit
    config += "[tcp]\nlisten = 127.0.0.1:0\n[udp]\nlisten =\n"

    d = None
    socks = []
    try:
        try:
            d = Echod(args.echod, config)
            port = d.wait_ready()
        except (OSError, RuntimeError) as e:
            log("cannot start echod: %s" % e)
            return 2
        pid = d.proc.pid
        time.sleep(0.5)
        start = proc_status(pid, "VmRSS")
        log("echod pid %d port %d, start RSS %d KiB" % (pid, port, start))
        t0 = time.monotonic()
        socks, failed = connect_all(port, args.clients, args.batch,
                                    args.rcvbuf, pid, 120.0)
        log("%d clients connected, %d failed, in %.1fs; echod RSS %d KiB" %
            (len(socks), failed, time.monotonic() - t0,
             proc_status(pid, "VmRSS")))
        t1 = time.monotonic()
        sent, peak, rounds, saturated, samples = load(
            socks, pid, args.max_rounds, args.load_seconds, args.per_round)
        load_s = time.monotonic() - t1
        loaded = proc_status(pid, "VmRSS")
        hwm = proc_status(pid, "VmHWM")
        log("loaded: %d MiB in %.1fs, %d rounds, saturated %s; peak RSS "
            "%d MiB, VmHWM %d MiB" % (sent >> 20, load_s, rounds, saturated,
                                      peak >> 10, hwm >> 10))
        fds_loaded = nfds(pid)
        # What echod holds in user space, from the kernel's side: what the
        # clients got in, less what waits in the kernel in either direction
        # (an estimate: the queues move while ss reads them).
        q = queues(port)
        held = None if q is None else sent - sum(q)
        if q is not None:
            log("kernel queues (MiB): echod unread %d, unacked %d; clients "
                "unread %d, unsent %d; so echod holds about %d MiB" %
                tuple([x >> 20 for x in q] + [held >> 20]))
        t2 = time.monotonic()
        for s in socks:
            s.close()
        n_clients = len(socks)
        socks = []
        # Wait for echod to free every connection, then for RSS to come
        # back; polled every 0.5 s, at most --settle seconds.
        after = proc_status(pid, "VmRSS")
        while time.monotonic() - t2 < args.settle:
            time.sleep(0.5)
            after = proc_status(pid, "VmRSS")
            if after is None:
                break
            if nfds(pid) <= fds_loaded - n_clients and \
               after - start <= args.max_growth * 1024:
                break
        settle_s = time.monotonic() - t2
        fds_after = nfds(pid)
        alive = d.proc.poll() is None
        status = d.stop()
        cut = re.findall(r".*(?:cut|memory_limit).*", d.log())
        # echod.conf(5)'s worst case for user space: memory_limit, plus
        # one 4 KiB read and about 1 KiB of bookkeeping per connection
        # (on top of what echod had at the start).
        limit = parse_size(args.memory_limit or "")
        doc_bound = None if not limit else \
            round((limit + n_clients * 5 * 1024) / 2**20 + start / 1024, 1)
        growth_mib = (after - start) / 1024.0 if after is not None else None
        ok = (alive and after is not None and n_clients == args.clients and
              growth_mib <= args.max_growth and
              (args.max_peak is None or peak / 1024.0 <= args.max_peak))
        result = {
            "echod": args.echod, "clients": args.clients,
            "connected": n_clients, "connect_failed": failed,
            "workers": args.workers, "memory_limit": args.memory_limit,
            "sent_mib": round(sent / 2**20, 1), "load_s": round(load_s, 1),
            "rounds": rounds, "saturated": saturated,
            "doc_bound_mib": doc_bound,
            "start_kib": start, "peak_kib": peak, "vmhwm_kib": hwm,
            "loaded_kib": loaded, "held_est_mib": None if held is None
            else round(held / 2**20, 1),
            "kernel_queues_mib": None if q is None else
            [round(x / 2**20, 1) for x in q],
            "after_kib": after,
            "after_minus_start_mib": None if growth_mib is None else
            round(growth_mib, 1),
            "settle_s": round(settle_s, 1), "echod_fds_after": fds_after,
            "echod_alive": alive, "exit_status": status,
            "log": cut[-3:], "ok": bool(ok),
        }
        print(json.dumps(result), flush=True)
        log("start %.1f MiB, peak %.1f MiB (VmHWM %.1f), after %.1f MiB: "
            "after - start = %.1f MiB (limit %.0f): %s" %
            (start / 1024, peak / 1024, hwm / 1024,
             (after or 0) / 1024, growth_mib or 0, args.max_growth,
             "requirement met" if ok else "NOT met"))
        if doc_bound is not None:
            log("memory_limit %s: peak %.1f MiB against echod.conf(5)'s "
                "bound of %.1f MiB (limit + 5 KiB x %d clients + start)" %
                (args.memory_limit, peak / 1024, doc_bound, n_clients))
        return 0 if ok else 1
    finally:
        for s in socks:
            s.close()
        if d is not None:
            d.kill()


if __name__ == "__main__":
    sys.exit(main())
