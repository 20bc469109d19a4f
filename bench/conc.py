#!/usr/bin/env python3
"""Concurrent A/B of server CPU per echo, 64-byte TCP ping-pong: servers A
and B both on CPU 0, each driven by its own client (echoload or
bench/epoll_client) on CPU 1 at the same time, so that both see the same
moments of a shared, noisy machine; the per-run ratio B/A then spreads by a
few percent where sequential runs spread by tens.  CPU per echo is each
server's utime+stime over its own client's measured window (run.py's
method).  The servers share CPU 0 and are not saturated: read the ratios,
not the absolute figures.  usage:

    conc.py RUNS DUR CONNS echoload|epoll A=path B=path

where a path is an echod binary or 'epoll' for bench/epoll_echo."""
import sys, os, json, time, subprocess, statistics
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R

def start(label, path):
    if path == "epoll":
        s = R.Server("epoll", "0")
    else:
        R.ECHOD = path
        s = R.Server("echod-1", "0")
    s.name = label
    return s

def cmd(client, srv, conns, dur):
    addr = "127.0.0.1:%d" % srv.port
    if client == "echoload":
        c = [R.ECHOLOAD, "--json", "-q", "-d", "%gs" % dur, "-c", str(conns), "-s", "64", addr]
    else:
        c = [R.EPOLL_CLIENT, "-c", str(conns), "-s", "64", "-d", "%g" % dur, "-w", "1", addr]
    return ["taskset", "-c", "1"] + c

def main():
    runs, dur, conns, client = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    (la, pa), (lb, pb) = [a.split("=", 1) for a in sys.argv[5:7]]
    R.raise_nofile()
    A, B = start(la, pa), start(lb, pb)
    hz = os.sysconf("SC_CLK_TCK")
    out = []
    try:
        for r in range(runs):
            srvs = [A, B] if r % 2 == 0 else [B, A]
            procs = [subprocess.Popen(cmd(client, s, conns, dur), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, preexec_fn=R.raise_nofile)
                     for s in srvs]
            t0 = time.monotonic()
            samples = []
            while any(p.poll() is None for p in procs):
                samples.append((time.monotonic(), R.cpu_ticks(srvs[0].pid), R.cpu_ticks(srvs[1].pid)))
                if time.monotonic() - t0 > dur + 60:
                    raise SystemExit("stuck")
                time.sleep(R.SAMPLE_EVERY)
            samples.append((time.monotonic(), R.cpu_ticks(srvs[0].pid), R.cpu_ticks(srvs[1].pid)))
            res = {}
            for i, (s, p) in enumerate(zip(srvs, procs)):
                rep = json.loads(p.communicate()[0])
                st = rep["ramp_seconds"] if client == "echoload" else rep["window_start"]
                ta, tb = t0 + st, t0 + st + rep["seconds"]
                cpu = (R.at(samples, tb, i + 1) - R.at(samples, ta, i + 1)) / hz
                res[s.name] = {"us": cpu * 1e6 / rep["messages"], "rt": rep["messages_per_sec"],
                               "cpu": cpu / rep["seconds"], "ok": rep["ok"]}
            out.append(res)
            print("run %d: %s %.3f us (%.0f%%)  %s %.3f us (%.0f%%)  B/A %.3f" % (
                r + 1, la, res[la]["us"], 100 * res[la]["cpu"], lb, res[lb]["us"], 100 * res[lb]["cpu"],
                res[lb]["us"] / res[la]["us"]), file=sys.stderr, flush=True)
    finally:
        A.stop(); B.stop()
    ra = [x[lb]["us"] / x[la]["us"] for x in out]
    am = statistics.median(x[la]["us"] for x in out); bm = statistics.median(x[lb]["us"] for x in out)
    print("%s x%d %-8s A=%s %.3f us  B=%s %.3f us  B/A per-run median %.3f [%.3f-%.3f]  (A cpu %.0f%%, B cpu %.0f%%)" % (
        client, conns, "", la, am, lb, bm, statistics.median(ra), min(ra), max(ra),
        100 * statistics.median(x[la]["cpu"] for x in out), 100 * statistics.median(x[lb]["cpu"] for x in out)))

main()
