#!/usr/bin/env python3
"""echod's benchmark: echod beside a minimal epoll echo server (C) and a
Python asyncio echo server, same echoload settings, one run.

usage: bench/run.py [--runs N] [--duration SECONDS] [--quick]

Prints, per scenario and server, the medians over the runs of messages/s,
MB/s, p50/p99 latency and the server's CPU use, with the ratio of echod to
each reference; then system calls per echoed message (strace -c) and RSS
per idle connection.  Server and client are pinned to different CPUs
where the machine has two or more; the header says what was pinned."""
import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(TOP, "build")
ECHOD = os.environ.get("ECHOD", os.path.join(BUILD, "echod"))
ECHOLOAD = os.environ.get("ECHOLOAD", os.path.join(BUILD, "echoload"))
EPOLL = os.environ.get("EPOLL_ECHO", os.path.join(BUILD, "bench",
                                                  "epoll_echo"))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") \
    else sys.executable

SCENARIOS = [
    # name, echoload arguments
    ("tcp pingpong 64B x100", ["-c", "100", "-s", "64"]),
    ("tcp pingpong 64B x1000", ["-c", "1000", "-s", "64"]),
    ("tcp stream 16KiB x10", ["-c", "10", "-m", "stream", "-s", "16k"]),
    ("udp pingpong 64B x50", ["-u", "-c", "50", "-s", "64"]),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ticks(pid):
    """utime+stime of a process and its threads, in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Server:
    """One reference or echod instance on a fresh loopback port."""

    def __init__(self, name, pin):
        self.name = name
        self.port = free_port()
        self.tmp = tempfile.mkdtemp(prefix="echod-bench-")
        if name.startswith("echod"):
            workers = name.split("-", 1)[1]
            conf = os.path.join(self.tmp, "echod.conf")
            with open(conf, "w") as f:
                f.write("[server]\nlog_level = notice\nworkers = %s\n"
                        "[tcp]\nlisten = 127.0.0.1:%d\n[udp]\n"
                        "listen = 127.0.0.1:%d\n" % (workers, self.port,
                                                     self.port))
            cmd = [ECHOD, "-c", conf]
            ready = " ready: "
        elif name == "epoll":
            cmd = [EPOLL, str(self.port)]
            ready = "ready"
        else:
            cmd = [PYTHON, os.path.join(TOP, "bench", "asyncio_echo.py"),
                   str(self.port)]
            ready = "ready"
        if pin is not None:
            cmd = ["taskset", "-c", pin] + cmd
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True,
                                     preexec_fn=raise_nofile)
        for line in self.proc.stderr:
            if ready in line:
                break
        else:
            raise SystemExit("%s did not start" % name)
        self.pid = self.proc.pid

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def load(server, args, duration, pin):
    cmd = [ECHOLOAD, "--json", "-q", "-d", "%gs" % duration] + args + \
        ["127.0.0.1:%d" % server.port]
    if pin is not None:
        cmd = ["taskset", "-c", pin] + cmd
    t0 = cpu_ticks(server.pid)
    r = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=duration + 60, preexec_fn=raise_nofile)
    ticks = cpu_ticks(server.pid) - t0
    rep = json.loads(r.stdout)
    if not rep["ok"]:
        print("  warning: %s on %s: %s" % (" ".join(args), server.name,
                                           rep["failure"]), file=sys.stderr)
    wall = rep["seconds"] + rep["ramp_seconds"]
    rep["server_cpu"] = ticks / os.sysconf("SC_CLK_TCK") / wall
    # CPU per message, or per MB echoed where there are no messages.
    units = rep["messages"] or rep["bytes_echoed"] / 1e6
    rep["cpu_us_per_msg"] = ticks / os.sysconf("SC_CLK_TCK") * 1e6 / \
        units if units else 0
    return rep


def median(reps, key):
    return statistics.median(key(r) for r in reps)


def syscalls_per_message(server, duration, pin):
    """Attach strace -c -f to the server during a ping-pong run."""
    out = os.path.join(server.tmp, "strace.txt")
    st = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p",
                           str(server.pid)], stderr=subprocess.DEVNULL)
    time.sleep(0.5)             # strace attaches asynchronously
    rep = load(server, ["-c", "100", "-s", "64"], duration, pin)
    st.send_signal(signal.SIGINT)
    st.wait(30)
    calls = {}
    with open(out) as f:
        for line in f:
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?"
                         r"(\w+)$", line)
            if m and m.group(2) != "total":
                calls[m.group(2)] = int(m.group(1))
    # Messages echoed while traced: the whole run, ramp and drain included.
    msgs = rep["bytes_sent"] / 64
    return msgs, calls


def idle_rss(server, counts):
    """RSS growth per idle TCP connection at each count."""
    base = rss_kib(server.pid)
    socks, result = [], {}
    try:
        for n in counts:
            while len(socks) < n:
                s = socket.create_connection(("127.0.0.1", server.port))
                socks.append(s)
            # Make sure the server has accepted them all: one echo each.
            for s in socks[-min(len(socks), 50):]:
                s.sendall(b"x")
                s.recv(1)
            time.sleep(0.5)
            result[n] = (rss_kib(server.pid) - base) * 1024 / n
    finally:
        for s in socks:
            s.close()
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--quick", action="store_true",
                    help="one short run of each, to check the bench works")
    a = ap.parse_args()
    if a.quick:
        a.runs, a.duration = 1, 1.0
    for tool in (ECHOD, ECHOLOAD, EPOLL):
        if not os.path.exists(tool):
            raise SystemExit("%s is missing: run 'make bench'" % tool)
    raise_nofile()
    ncpu = len(os.sched_getaffinity(0))
    spin, cpin = ("0", "1") if ncpu >= 2 else (None, None)
    print("echod benchmark, %s" % time.strftime("%Y-%m-%d %H:%M UTC",
                                                 time.gmtime()))
    print("machine: %s, %d CPUs (%s), kernel %s" % (
        os.uname().machine, ncpu, cpu_model(), os.uname().release))
    print("pinning: servers on CPU %s, echoload on CPU %s; echod-auto is "
          "not pinned (it wants every CPU) and shares CPU %s with "
          "echoload" % (spin, cpin, cpin) if spin else "pinning: none "
          "(one CPU)")
    print("runs: median of %d, %g s each, after the ramp and a discarded "
          "1 s warm-up\n" % (a.runs, a.duration))
    servers = ["echod-1", "echod-auto", "epoll", "asyncio"]
    results = {}
    for sname, args in SCENARIOS:
        for name in servers:
            srv = Server(name, None if name == "echod-auto" else spin)
            try:
                # A discarded warm-up: some servers (asyncio) run their
                # first seconds several times slower than later ones.
                load(srv, args, 1.0, cpin)
                reps = [load(srv, args, a.duration, cpin)
                        for _ in range(a.runs)]
            finally:
                srv.stop()
            results[(sname, name)] = reps

    hdr = "%-24s %-11s %11s %9s %8s %8s %8s %9s" % (
        "scenario", "server", "msgs/s", "MB/s", "p50 us", "p99 us",
        "srv CPU", "CPU us/msg")
    print(hdr)
    print("-" * len(hdr))
    for sname, _ in SCENARIOS:
        for name in servers:
            reps = results[(sname, name)]
            print("%-24s %-11s %11.0f %9.2f %8.0f %8.0f %7.0f%% %9.2f" % (
                sname, name,
                median(reps, lambda r: r["messages_per_sec"]),
                median(reps, lambda r: r["mb_per_sec"]),
                median(reps, lambda r: r["latency_us"]["p50"]),
                median(reps, lambda r: r["latency_us"]["p99"]),
                100 * median(reps, lambda r: r["server_cpu"]),
                median(reps, lambda r: r["cpu_us_per_msg"])))
        print()

    print("stream rows count CPU us per MB echoed, and have no latencies\n")
    print("ratios (echod / reference, medians; throughput: MB/s; CPU: "
          "reference CPU per message (stream: per MB) / echod's; above 1 "
          "means echod is better)")
    for sname, _ in SCENARIOS:
        for e in ("echod-1", "echod-auto"):
            mb = median(results[(sname, e)], lambda r: r["mb_per_sec"])
            cpu = median(results[(sname, e)], lambda r: r["cpu_us_per_msg"])
            parts = []
            for ref in ("epoll", "asyncio"):
                rmb = median(results[(sname, ref)],
                             lambda r: r["mb_per_sec"])
                rcpu = median(results[(sname, ref)],
                              lambda r: r["cpu_us_per_msg"])
                parts.append("%s: throughput %.2fx, CPU/msg %.2fx" % (
                    ref, mb / rmb if rmb else 0,
                    rcpu / cpu if cpu else 0))
            print("  %-24s %-10s %s" % (sname, e, "; ".join(parts)))
    print()

    if shutil.which("strace"):
        print("system calls per echoed message (tcp pingpong 64B x100, "
              "strace -c -f on the server):")
        for name in ("echod-1", "epoll"):
            srv = Server(name, spin)
            try:
                msgs, calls = syscalls_per_message(srv, a.duration, cpin)
            finally:
                srv.stop()
            total = sum(calls.values())
            top = sorted(calls.items(), key=lambda kv: -kv[1])[:6]
            print("  %-8s %.2f per message (%s)" % (
                name, total / msgs if msgs else 0, ", ".join(
                    "%s %.2f" % (k, v / msgs) for k, v in top)))
        print()
    else:
        print("(strace not installed: no system call counts)\n")

    counts = [1000, 15000]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    counts = [n for n in counts if n + 500 < hard]
    print("RSS per idle TCP connection (server VmRSS growth / connections):")
    for name in ("echod-1", "echod-auto", "epoll"):
        srv = Server(name, spin if name != "echod-auto" else None)
        try:
            per = idle_rss(srv, counts)
        finally:
            srv.stop()
        print("  %-10s %s" % (name, ", ".join(
            "%d conns: %.0f bytes" % (n, b) for n, b in per.items())))


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
