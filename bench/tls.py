#!/usr/bin/env python3
"""TLS benchmark (issue 13): echod's [tls] group beside socat
(OPENSSL-LISTEN,fork with PIPE: a process per connection) and ncat --ssl
(--exec /bin/cat: a process per connection and a cat), and beside echod's
own plain TCP for the cost of TLS; one certificate (P-256, made at run
time), the same echoload settings, one run, repetitions interleaved.

usage: bench/tls.py [--runs N] [--duration SECONDS] [--version 1.2|1.3]

Scenarios: handshakes per second with a connection per message
(echoload --reconnect), full (--tls-no-resume) and resumed; 64-byte
ping-pong over 16 connections; a 16 KiB stream over 4 connections.  Each
server runs pinned to CPU 0 in a cpuacct cgroup of its own, so that the
CPU of its forked children counts too; echoload runs on CPU 1.  Printed:
medians over the runs of the rate, the server CPU per handshake, per
message or per MB, and the ratios of echod to each other server."""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402

CGROOT = "/sys/fs/cgroup/cpuacct"
SAMPLE_EVERY = 0.02

SCENARIOS = [
    # name, echoload arguments, unit ("hs": per handshake, "msg", "MB")
    ("handshakes full x16", ["--reconnect", "--tls-no-resume", "-c", "16",
                             "-s", "64"], "hs"),
    ("handshakes resumed x16", ["--reconnect", "-c", "16", "-s", "64"],
     "hs"),
    ("pingpong 64B x16", ["-c", "16", "-s", "64"], "msg"),
    ("stream 16KiB x4", ["-m", "stream", "-c", "4", "-s", "16k"], "MB"),
]


class Cpu:
    """Nanoseconds of CPU used by a process and all it forks: a cpuacct
    cgroup where the machine has one, else the process's own and its
    reaped children's (which misses children still running)."""

    def __init__(self, name):
        self.path = None
        if os.access(CGROOT, os.W_OK):
            self.path = os.path.join(CGROOT, "echod-bench-%s-%d" %
                                     (name, os.getpid()))
            os.makedirs(self.path, exist_ok=True)
        self.pid = None

    def enter(self):
        """In the child before exec: join the cgroup."""
        if self.path:
            with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        R.raise_nofile()

    def ns(self):
        if self.path:
            with open(os.path.join(self.path, "cpuacct.usage")) as f:
                return int(f.read())
        with open("/proc/%d/stat" % self.pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in v[11:15]) * 1e9 / os.sysconf(
            "SC_CLK_TCK")

    def remove(self):
        if self.path:
            try:
                os.rmdir(self.path)
            except OSError:
                pass


class Server:
    def __init__(self, name, cmd, port, ready=None):
        self.name, self.port = name, port
        self.cpu = Cpu(name)
        self.proc = subprocess.Popen(["taskset", "-c", "0"] + cmd,
                                     stderr=subprocess.PIPE, text=True,
                                     preexec_fn=self.cpu.enter)
        self.cpu.pid = self.proc.pid
        if ready:
            for line in self.proc.stderr:
                if ready in line:
                    break
            else:
                raise SystemExit("%s did not start" % name)
            threading.Thread(target=self.proc.stderr.read,
                             daemon=True).start()
        else:
            threading.Thread(target=self.proc.stderr.read,
                             daemon=True).start()
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("%s did not start" % name)
                    time.sleep(0.05)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        # Children of socat and ncat still in the cgroup go too.
        if self.cpu.path:
            with open(os.path.join(self.cpu.path, "cgroup.procs")) as f:
                for pid in f.read().split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except OSError:
                        pass
            time.sleep(0.2)
        self.cpu.remove()


class PlainView:
    """A server's other port: the same process and CPU counter."""

    def __init__(self, srv, port):
        self.name, self.port, self.cpu = srv.name + "-tcp", port, srv.cpu


def make_cert(d):
    key, crt = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", key, "-out", crt],
                   check=True, capture_output=True)
    return crt, key


def at(samples, t):
    """The counter at time t, between the samples around it."""
    for (t0, v0), (t1, v1) in zip(samples, samples[1:]):
        if t0 <= t <= t1:
            return v0 + (v1 - v0) * (t - t0) / (t1 - t0) if t1 > t0 else v1
    return samples[-1][1] if t > samples[-1][0] else samples[0][1]


def drive(srv, tls, args, duration, version):
    cmd = ["taskset", "-c", "1", R.ECHOLOAD, "--json", "-q", "-d",
           "%gs" % duration, "--timeout", "10s"]
    if tls:
        cmd += ["--tls", "--tls-no-verify", "--tls-version", version]
    else:
        args = [x for x in args if not x.startswith("--tls")]
    cmd += args + ["127.0.0.1:%d" % srv.port]
    samples = []
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, preexec_fn=R.raise_nofile)
    while p.poll() is None:
        samples.append((time.monotonic(), srv.cpu.ns()))
        if time.monotonic() - t0 > duration + 60:
            p.kill()
            raise SystemExit("echoload stuck against %s" % srv.name)
        time.sleep(SAMPLE_EVERY)
    samples.append((time.monotonic(), srv.cpu.ns()))
    out, err = p.communicate()
    try:
        rep = json.loads(out)
    except ValueError:
        raise SystemExit("echoload against %s: %s" % (srv.name, err))
    ws = t0 + rep["ramp_seconds"]
    rep["cpu_s"] = (at(samples, ws + rep["seconds"]) - at(samples, ws)) / 1e9
    return rep


def figures(rep, unit):
    """(rate, server CPU per unit in microseconds, resumed share)."""
    if unit == "hs":
        # A connection per message: the window's messages are its
        # connections (and handshakes); the resumed share is the run's.
        n, hs = rep["messages"], rep["tls"]["handshakes"]
        per = rep["cpu_s"] * 1e6 / n if n else float("nan")
        return rep["messages_per_sec"], per, \
            rep["tls"]["resumed"] / hs if hs else 0
    if unit == "msg":
        n = rep["messages"]
        return rep["messages_per_sec"], rep["cpu_s"] * 1e6 / max(n, 1), None
    mb = rep["bytes_echoed"] / 1e6
    return rep["mb_per_sec"], rep["cpu_s"] * 1e6 / max(mb, 1e-9), None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--version", default="1.3", choices=["1.2", "1.3"])
    ap.add_argument("--echod-only", action="store_true",
                    help="leave out socat and ncat (to compare builds)")
    a = ap.parse_args()
    for tool in ("socat", "ncat", "openssl", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit("bench/tls.py needs %s (apt-get install socat "
                             "ncat openssl util-linux)" % tool)
    R.raise_nofile()
    tmp = tempfile.mkdtemp(prefix="echod-tls-bench-")
    crt, key = make_cert(tmp)
    ptcp, ptls, psocat, pncat = (R.free_port() for _ in range(4))
    conf = os.path.join(tmp, "echod.conf")
    with open(conf, "w") as f:
        f.write("[server]\nlog_level = notice\nworkers = 1\n"
                "[tcp]\nlisten = 127.0.0.1:%d\n[udp]\nlisten =\n"
                "[tls]\nlisten = 127.0.0.1:%d\ncertificate = %s\nkey = %s\n"
                % (ptcp, ptls, crt, key))
    servers = []
    try:
        echod = Server("echod", [R.ECHOD, "-c", conf], ptls, " ready: ")
        servers.append(echod)
        # The same process at its plain TCP port.
        plain = PlainView(echod, ptcp)
        if not a.echod_only:
            servers.append(Server("socat", [
                "socat", "OPENSSL-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,"
                "cert=%s,key=%s,verify=0" % (psocat, crt, key), "PIPE"],
                psocat))
            servers.append(Server("ncat", [
                "ncat", "--ssl", "--ssl-cert", crt, "--ssl-key", key, "-l",
                "-k", "-m", "1000", "127.0.0.1", str(pncat), "--exec",
                "/bin/cat"], pncat))
        rows = {}
        for r in range(a.runs):
            for name, args, unit in SCENARIOS:
                targets = [(s, True) for s in servers]
                if unit != "hs" or "--tls-no-resume" in args:
                    targets.append(("plain", False))
                for s, tls in targets:
                    label = s.name if tls else "echod plain TCP"
                    if not tls:
                        s = plain
                    rep = drive(s, tls, args, a.duration, a.version)
                    rows.setdefault((name, label), []).append(
                        figures(rep, unit) + (rep["failure"],))
        report(rows, a)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def report(rows, a):
    print("bench/tls.py: TLS %s, %d runs of %gs, medians; server on CPU 0 "
          "(%s), echoload on CPU 1" % (a.version, a.runs, a.duration,
                                       "cpuacct cgroup" if os.access(
                                           CGROOT, os.W_OK) else
                                       "own + reaped children's CPU"))
    units = {"hs": ("handshakes/s", "us CPU/handshake"),
             "msg": ("msgs/s", "us CPU/msg"), "MB": ("MB/s", "ms CPU/MB")}
    for name, _, unit in SCENARIOS:
        rn, cn = units[unit]
        print("\n%s" % name)
        print("  %-18s %14s %18s %9s" % ("server", rn, cn, "resumed"))
        base = None
        for (n, label), v in rows.items():
            if n != name:
                continue
            failed = [x[3] for x in v if x[3] is not None]
            if failed:
                print("  %-18s failed %d of %d runs: %s" % (
                    label, len(failed), len(v), failed[0]))
                continue
            rate = statistics.median(x[0] for x in v)
            per = statistics.median(x[1] for x in v)
            if unit == "MB":
                per /= 1000
            resumed = "%8.0f%%" % (100 * statistics.median(
                x[2] for x in v)) if v[0][2] is not None else "%9s" % "-"
            print("  %-18s %14.1f %18.2f %s" % (label, rate, per, resumed))
            if label == "echod":
                base = (rate, per)
            elif base:
                print("  %-18s %14s %18s" % (
                    "  echod / " + label, "%.2fx" % (base[0] / rate)
                    if rate else "-", "%.2fx" % (base[1] / per)
                    if per else "-"))

if __name__ == "__main__":
    main()
