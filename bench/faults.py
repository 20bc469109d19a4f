#!/usr/bin/env python3
"""echod's fault profiles, measured (issue 15):

1. What the plain path pays for a faulty group beside it: two echod side
   by side on CPU 0 at the same moments (bench/conc.py's method), one with
   only [tcp], one with [tcp] and an idle [tcp f] carrying every TCP fault,
   each driven by its own echoload on CPU 1 against [tcp]; server CPU per
   echo (ping-pong) or per MB (stream), B/A per run, medians.
2. Delay accuracy: a group with delay = 20ms, echoload open loop at a
   fixed rate with 1,000 and 10,000 connections; achieved minus configured
   latency, p50/p99/max (echoload's latency includes the loopback round
   trip and its own loop: an upper bound on echod's lateness), after the
   same load on the plain group for the round trip's own share.
3. Bandwidth accuracy: bandwidth = 1m per connection, and group_bandwidth
   = 4m for the group, streams of 16 KiB writes; achieved bytes/s echoed
   per connection, or in all, over the configured.

usage: bench/faults.py [--runs N] [--duration SECONDS] [--quick] [--only 1|2|3]"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402

FAULTY = ("[tcp f]\nlisten = 127.0.0.1:%d\ndelay = 5ms\njitter = 1ms\n"
          "bandwidth = 1m\ngroup_bandwidth = 10m\nslice = 1-64\n"
          "reset_after = 1m\nreset_probability = 0.5\nclose_after = 30s\n"
          "stall_after = 4k\nstall_probability = 0.1\n")


class Echod:
    """echod with one worker on CPU 0 and the given extra sections."""

    def __init__(self, extra="", pin="0"):
        self.port = R.free_port()
        self.tmp = tempfile.mkdtemp(prefix="echod-faults-")
        conf = os.path.join(self.tmp, "echod.conf")
        with open(conf, "w") as f:
            f.write("[server]\nlog_level = notice\nworkers = 1\n"
                    "fault_seed = 1\n[tcp]\nlisten = 127.0.0.1:%d\n"
                    "[udp]\nlisten =\n%s" % (self.port, extra))
        cmd = ["taskset", "-c", pin, R.ECHOD, "-c", conf]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True,
                                     preexec_fn=R.raise_nofile)
        for line in self.proc.stderr:
            if " ready: " in line:
                break
        else:
            raise SystemExit("echod did not start")
        self.pid = self.proc.pid

    def stop(self):
        R.Server.stop(self)


def echoload(port, args, duration, pin="1"):
    return subprocess.Popen(
        ["taskset", "-c", pin, R.ECHOLOAD, "--json", "-q", "-d",
         "%gs" % duration] + args + ["127.0.0.1:%d" % port],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=R.raise_nofile)


def fast_path(runs, duration):
    """The plain group's CPU with and without a faulty group beside it."""
    print("1. The plain path beside a faulty group: server CPU, B (with an "
          "idle [tcp f]) / A (without), %d runs of %g s at the same "
          "moments, median [range]" % (runs, duration))
    hz = os.sysconf("SC_CLK_TCK")
    for name, args in (("ping-pong 64B x100", ["-c", "100", "-s", "64"]),
                       ("stream 16KiB x10", ["-c", "10", "-m", "stream",
                                             "-s", "16k"])):
        a = Echod()
        b = Echod(FAULTY % R.free_port())
        ratios, per = [], {"A": [], "B": []}
        try:
            for r in range(runs):
                order = [("A", a), ("B", b)] if r % 2 == 0 else \
                    [("B", b), ("A", a)]
                procs = [echoload(s.port, args, duration) for _, s in order]
                t0 = time.monotonic()
                samples = []
                while any(p.poll() is None for p in procs):
                    samples.append((time.monotonic(),
                                    R.cpu_ticks(order[0][1].pid),
                                    R.cpu_ticks(order[1][1].pid)))
                    time.sleep(R.SAMPLE_EVERY)
                samples.append((time.monotonic(),
                                R.cpu_ticks(order[0][1].pid),
                                R.cpu_ticks(order[1][1].pid)))
                res = {}
                for i, ((label, _), p) in enumerate(zip(order, procs)):
                    rep = json.loads(p.communicate()[0])
                    ta = t0 + rep["ramp_seconds"]
                    tb = ta + rep["seconds"]
                    cpu = (R.at(samples, tb, i + 1) -
                           R.at(samples, ta, i + 1)) / hz
                    units = rep["messages"] or rep["bytes_echoed"] / 1e6
                    res[label] = cpu * 1e6 / units
                    if not rep["ok"]:
                        print("  warning: %s: %s" % (label, rep["failure"]),
                              file=sys.stderr)
                ratios.append(res["B"] / res["A"])
                per["A"].append(res["A"])
                per["B"].append(res["B"])
        finally:
            a.stop()
            b.stop()
        unit = "us per MB" if "stream" in name else "us per echo"
        print("  %-20s A %.2f, B %.2f %s; B/A %.3f [%.3f-%.3f]" % (
            name, statistics.median(per["A"]), statistics.median(per["B"]),
            unit, statistics.median(ratios), min(ratios), max(ratios)))
    print()


def delay_accuracy(duration):
    print("2. Delay accuracy: delay = 20ms, open loop, 64-byte messages; "
          "latency minus 20 ms, us (echoload's own round trip included)")
    port = R.free_port()
    d = Echod("[tcp slow]\nlisten = 127.0.0.1:%d\ndelay = 20ms\n" % port)
    try:
        for conns, rate in ((1000, 10000), (10000, 10000)):
            # The same load on the plain group first: the round trip's own.
            for label, p, minus in (("plain", d.port, 0),
                                    ("delay", port, 20000)):
                p = echoload(p, ["-c", str(conns), "-r", str(rate), "-s",
                                 "64", "--ramp", "5000", "--timeout", "5s"],
                             duration)
                rep = json.loads(p.communicate()[0])
                lat = rep["latency_us"]
                print("  %5d connections, %d msgs/s, %-5s p50 %+6d  p99 "
                      "%+6d  max %+6d  (%d messages%s)" % (
                          conns, rate, label + ":", lat["p50"] - minus,
                          lat["p99"] - minus, lat["max"] - minus,
                          lat["count"],
                          "" if rep["ok"] else ", " + rep["failure"]))
    finally:
        d.stop()
    print()


def bandwidth_accuracy(duration):
    print("3. Bandwidth accuracy: streams of 16 KiB writes; achieved "
          "bytes/s echoed over configured")
    for label, extra, conns, want in (
            ("bandwidth = 1m, 4 connections, each", "bandwidth = 1m\n", 4,
             1 << 20),
            ("group_bandwidth = 4m, 16 connections, all",
             "group_bandwidth = 4m\n", 16, 4 << 20)):
        gport = R.free_port()
        d = Echod("[tcp thin]\nlisten = 127.0.0.1:%d\n%s" % (gport, extra))
        try:
            p = echoload(gport, ["-c", str(conns), "-m", "stream", "-s",
                                 "16k"], duration)
            rep = json.loads(p.communicate()[0])
        finally:
            d.stop()
        rate = rep["bytes_echoed"] / rep["seconds"]
        if "each" in label:
            rate /= conns
        print("  %-42s %.0f B/s: %.3fx" % (label, rate, rate / want))
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", type=int, choices=(1, 2, 3),
                    help="run only this part")
    a = ap.parse_args()
    if a.quick:
        a.runs, a.duration = 1, 1.0
    R.raise_nofile()
    print("echod fault benchmark, %s; %s, %d CPUs\n" % (
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), R.cpu_model(),
        len(os.sched_getaffinity(0))))
    if a.only in (None, 1):
        fast_path(a.runs, a.duration)
    if a.only in (None, 2):
        delay_accuracy(max(a.duration, 5.0))
    if a.only in (None, 3):
        bandwidth_accuracy(max(a.duration, 5.0))


if __name__ == "__main__":
    main()
