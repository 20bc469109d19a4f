#!/usr/bin/env python3
"""echod's benchmark: echod beside a minimal epoll echo server (C) and a
Python asyncio echo server, same echoload settings, one run.

usage: bench/run.py [--runs N] [--duration SECONDS] [--quick]
                    [--clients echoload|epoll|both] [--charts DIR]

Prints, per scenario and server, the medians over the runs of messages/s,
MB/s, p50/p99 latency and the server's CPU use, with the ratio of echod to
each reference; then, for TCP ping-pong, echod's CPU per echo against the
epoll loop's as two independent clients see it (echoload and
bench/epoll_client, a minimal epoll client; --clients picks them); then
system calls per echoed message (strace -c) and RSS per idle connection.
Server and client are pinned to different CPUs where the machine has two
or more; the header says what was pinned.  The churn scenario (a
connection per message) counts CPU per connection.  With gnuplot, the
last run of each scenario with latencies is charted with scripts/plot
into --charts DIR (default bench-charts): the servers' latency by
percentile overlaid, and their messages/s and p99 over the run."""
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
EPOLL_CLIENT = os.environ.get("EPOLL_CLIENT", os.path.join(BUILD, "bench",
                                                          "epoll_client"))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") \
    else sys.executable

SCENARIOS = [
    # name, echoload arguments
    ("tcp pingpong 64B x100", ["-c", "100", "-s", "64"]),
    ("tcp pingpong 64B x1000", ["-c", "1000", "-s", "64"]),
    ("tcp stream 16KiB x10", ["-c", "10", "-m", "stream", "-s", "16k"]),
    ("udp pingpong 64B x50", ["-u", "-c", "50", "-s", "64"]),
    # The classic client: connect, 'Bom dia' (7 bytes), the echo, close.
    ("tcp churn 7B x32", ["-m", "churn", "-c", "32", "-s", "7"]),
]

# The ping-pong scenarios measured with both clients: name, connections,
# message size.
PINGPONG = [
    ("tcp pingpong 64B x100", 100, 64),
    ("tcp pingpong 64B x1000", 1000, 64),
]
CLIENT_WARMUP = 1.0     # epoll_client's own warm-up before each window
SAMPLE_EVERY = 0.02     # seconds between samples of the CPU counters


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


def load(server, args, duration, pin, keep=None):
    """One echoload run; with keep, a path prefix, its --hgrm and
    --timeline files go to keep.hgrm and keep.csv."""
    files = ["--hgrm", keep + ".hgrm", "--timeline", keep + ".csv"] \
        if keep else []
    cmd = [ECHOLOAD, "--json", "-q", "-d", "%gs" % duration] + args + \
        files + ["127.0.0.1:%d" % server.port]
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


def cpu_ticks_or_none(pid):
    try:
        return cpu_ticks(pid)
    except (OSError, IndexError, ValueError):
        return None


def at(samples, t, i):
    """Counter i of (time, counters...) samples, interpolated at time t."""
    prev = None
    for s in samples:
        if s[i] is None:
            continue
        if s[0] >= t:
            if prev is None or s[0] == prev[0]:
                return s[i]
            return prev[i] + (s[i] - prev[i]) * (t - prev[0]) / \
                (s[0] - prev[0])
        prev = s
    return prev[i] if prev else 0


def drive(client, server, conns, size, duration, pin):
    """One ping-pong run of client ("echoload" or "epoll") against server;
    the server's and the client's CPU over the client's measured window
    only, from their utime+stime sampled every SAMPLE_EVERY seconds."""
    addr = "127.0.0.1:%d" % server.port
    if client == "echoload":
        cmd = [ECHOLOAD, "--json", "-q", "-d", "%gs" % duration, "-c",
               str(conns), "-s", str(size), addr]
    else:
        cmd = [EPOLL_CLIENT, "-c", str(conns), "-s", str(size), "-d",
               "%g" % duration, "-w", "%g" % CLIENT_WARMUP, addr]
    if pin is not None:
        cmd = ["taskset", "-c", pin] + cmd
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=raise_nofile)
    t0 = time.monotonic()
    deadline = t0 + duration + CLIENT_WARMUP + 60
    samples = []
    while True:
        samples.append((time.monotonic(), cpu_ticks(server.pid),
                        cpu_ticks_or_none(proc.pid)))
        if proc.poll() is not None:
            break
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise SystemExit("%s did not finish" % " ".join(cmd))
        time.sleep(SAMPLE_EVERY)
    out, err = proc.communicate()
    try:
        rep = json.loads(out)
    except ValueError:
        raise SystemExit("%s: no report (exit %d): %s" % (
            client, proc.returncode, err.strip()))
    # The window, in our clock: both clients time it from their start.
    if client == "echoload":
        start, ok = rep["ramp_seconds"], rep["ok"]
    else:
        start, ok = rep["window_start"], rep["ok"]
    if not ok:
        print("  warning: %s -c %d -s %d on %s failed: %s" % (
            client, conns, size, server.name, out.strip()),
            file=sys.stderr)
    t_a, t_b = t0 + start, t0 + start + rep["seconds"]
    hz = os.sysconf("SC_CLK_TCK")
    srv = (at(samples, t_b, 1) - at(samples, t_a, 1)) / hz
    cli = (at(samples, t_b, 2) - at(samples, t_a, 2)) / hz
    secs = rep["seconds"] or 1
    msgs = rep["messages"]
    return {"rt_per_sec": rep["messages_per_sec"],
            "server_cpu": srv / secs,
            "client_cpu": cli / secs,
            "cpu_s_per_m": srv * 1e6 / msgs if msgs else 0,
            "ok": ok}


def two_clients(clients, runs, duration, spin, cpin):
    """echod-1 and the epoll loop, each driven by each client, the runs
    interleaved (server order alternating) so that both servers see the
    same moments of a noisy machine."""
    servers = ("echod-1", "epoll")
    res = {}
    for sname, conns, size in PINGPONG:
        srvs = {name: Server(name, spin) for name in servers}
        try:
            # echoload's discarded warm-up, as above; epoll_client warms
            # up inside every run.
            if "echoload" in clients:
                for name in servers:
                    drive("echoload", srvs[name], conns, size, 1.0, cpin)
            for r in range(runs):
                order = servers if r % 2 == 0 else servers[::-1]
                for client in clients:
                    for name in order:
                        res.setdefault((sname, client, name), []).append(
                            drive(client, srvs[name], conns, size,
                                  duration, cpin))
        finally:
            for srv in srvs.values():
                srv.stop()
    return res


def print_two_clients(res, clients, runs, spin, cpin):
    names = {"echoload": "echoload", "epoll": "epoll_client"}
    print("TCP ping-pong, echod-1 against the epoll loop with two clients "
          "(%s; runs interleaved between the servers; server CPU = its "
          "utime+stime over the client's measured window only; medians of "
          "%d):" % ("servers on CPU %s, client on CPU %s" % (spin, cpin)
                    if spin else "not pinned", runs))
    hdr = "%-24s %-13s %-8s %10s %8s %12s %10s" % (
        "scenario", "client", "server", "rt/s", "srv CPU",
        "srv CPU s/M", "client CPU")
    print(hdr)
    print("-" * len(hdr))
    for sname, _, _ in PINGPONG:
        for client in clients:
            for name in ("echod-1", "epoll"):
                reps = res[(sname, client, name)]
                print("%-24s %-13s %-8s %10.0f %7.0f%% %12.2f %9.0f%%" % (
                    sname, names[client], name,
                    median(reps, lambda r: r["rt_per_sec"]),
                    100 * median(reps, lambda r: r["server_cpu"]),
                    median(reps, lambda r: r["cpu_s_per_m"]),
                    100 * median(reps, lambda r: r["client_cpu"])))
        print()
    print("srv CPU s/M: server CPU seconds per million echoes (= us per "
          "echo)\n")
    print("efficiency: epoll's CPU per echo / echod-1's (medians; 1.0: as "
          "efficient, lower: echod costs more; per-run pairs in brackets)")
    for sname, _, _ in PINGPONG:
        parts = []
        for client in clients:
            e = res[(sname, client, "echod-1")]
            p = res[(sname, client, "epoll")]
            ecpu = median(e, lambda r: r["cpu_s_per_m"])
            pcpu = median(p, lambda r: r["cpu_s_per_m"])
            pairs = [b["cpu_s_per_m"] / a["cpu_s_per_m"]
                     for a, b in zip(e, p) if a["cpu_s_per_m"]]
            parts.append("%s %.2fx%s" % (
                names[client], pcpu / ecpu if ecpu else 0,
                " [%.2f-%.2f]" % (min(pairs), max(pairs))
                if len(pairs) > 1 else ""))
        print("  %-24s %s" % (sname, "; ".join(parts)))
    print()


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


def slug(name):
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def charts(outdir, servers):
    """Chart each scenario's kept runs with scripts/plot; say where."""
    plot = os.path.join(TOP, "scripts", "plot")
    made = []
    for sname, args in SCENARIOS:
        if "stream" in args:
            continue                    # no latencies
        base = os.path.join(outdir, slug(sname))
        runs = ["%s=%s-%s" % (n, base, n) for n in servers]
        for kind, ext, out in (("latency", ".hgrm", "-latency.png"),
                               ("latency", ".hgrm", "-latency.txt"),
                               ("timeline", ".csv", "-timeline.png")):
            r = subprocess.run([plot, "-t", sname, kind, base + out] +
                               [x + ext for x in runs],
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                print("  chart %s: %s" % (base + out, r.stderr.strip()),
                      file=sys.stderr)
            else:
                made.append(base + out)
    print("charts (the last run of each scenario, scripts/plot): %d in "
          "%s\n" % (len(made), outdir))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--quick", action="store_true",
                    help="one short run of each, to check the bench works")
    ap.add_argument("--clients", choices=("echoload", "epoll", "both"),
                    default="both", help="the clients that measure "
                    "ping-pong CPU per echo, echod-1 against the epoll "
                    "loop: echoload, bench/epoll_client, or both")
    ap.add_argument("--pingpong-only", action="store_true",
                    help="only the ping-pong comparison of echod-1 with "
                    "the epoll loop (100 and 1,000 connections, the "
                    "clients of --clients)")
    ap.add_argument("--charts", default="bench-charts", metavar="DIR",
                    help="where the charts go (default bench-charts; "
                    "needs gnuplot)")
    a = ap.parse_args()
    if a.quick:
        a.runs, a.duration = 1, 1.0
    clients = ("echoload", "epoll") if a.clients == "both" else \
        (a.clients,)
    for tool in (ECHOD, ECHOLOAD, EPOLL) + \
            ((EPOLL_CLIENT,) if "epoll" in clients else ()):
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
    if a.pingpong_only:
        res = two_clients(clients, a.runs, a.duration, spin, cpin)
        print_two_clients(res, clients, a.runs, spin, cpin)
        return
    servers = ["echod-1", "echod-auto", "epoll", "asyncio"]
    results = {}
    chart = shutil.which("gnuplot") is not None
    if chart:
        os.makedirs(a.charts, exist_ok=True)
    for sname, args in SCENARIOS:
        for name in servers:
            srv = Server(name, None if name == "echod-auto" else spin)
            keep = os.path.join(a.charts, "%s-%s" % (slug(sname), name)) \
                if chart else None
            try:
                # A discarded warm-up: some servers (asyncio) run their
                # first seconds several times slower than later ones.
                load(srv, args, 1.0, cpin)
                reps = [load(srv, args, a.duration, cpin,
                             keep if i == a.runs - 1 else None)
                        for i in range(a.runs)]
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

    print("stream rows count CPU us per MB echoed, and have no latencies; "
          "churn rows count CPU us per connection (a message each), and "
          "their latency is each connection's whole\n")
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
    if chart:
        charts(a.charts, servers)
    else:
        print("(gnuplot not installed: no charts)\n")

    res = two_clients(clients, a.runs, a.duration, spin, cpin)
    print_two_clients(res, clients, a.runs, spin, cpin)

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
