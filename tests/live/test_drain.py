"""Live tests for the drain at SIGTERM: every byte a client sent before the
signal comes back, then EOF, and echod exits 0 by itself,

 - on a lossy network: in a network namespace whose loopback drops 3% of
   the TCP segments that carry data, so retransmissions (200 ms and more
   apart) are still under way when the signal comes;
 - for clients the kernel has connected but echod has not accepted yet
   (they wait in the listen backlog at max_connections).

The lossy tests are heavy (50 clients, five echod runs each, a few seconds
a run) and run only with ECHOD_HEAVY=1; they need root for the namespace
and nft (Debian: nftables)."""
import json
import os
import random
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid

import pytest

from conftest import ECHOD, WRAPPER

TIMEOUT = 30
SHUTDOWN_TIMEOUT = 20           # seconds; generous: the drain must not need it
CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "drain_client.py")
CLIENT_DEADLINE = 60            # seconds, for one run of drain_client.py
LOSS_PERCENT = 3
# The namespace's TCP counters shown per run: retransmissions, and the
# kernel's own drops under memory pressure (which is machine-wide), which
# lengthen the gaps in a client's stream beyond what the 3% loss does.
KERNEL_STATS = ("Tcp.RetransSegs", "TcpExt.TCPTimeouts",
                "TcpExt.TCPLossProbes", "TcpExt.TCPAbortOnClose",
                "TcpExt.TCPAbortOnData", "TcpExt.TCPAbortOnMemory")
PRESSURE_STATS = ("TcpExt.TCPMemoryPressures", "TcpExt.PruneCalled",
                  "TcpExt.TCPRcvQDrop", "TcpExt.TCPOFODrop")

heavy = pytest.mark.skipif(
    os.environ.get("ECHOD_HEAVY") != "1",
    reason="heavy scenario: runs once per CI run (ECHOD_HEAVY=1)")


def drain_config(workers="auto", max_connections=0, log_level="info"):
    """TCP on 127.0.0.1 only, no UDP, a generous shutdown_timeout."""
    return """\
[server]
log_level = %s
shutdown_timeout = %ds
workers = %s
[tcp]
listen = 127.0.0.1:0
max_connections = %d
[udp]
listen =
""" % (log_level, SHUTDOWN_TIMEOUT, workers, max_connections)


def cut_lines(log):
    return [l for l in log.splitlines() if re.search(r"\bcut\b", l)]


# The lossy network.

def lossy_ruleset(percent):
    """nft rules that drop percent% of the TCP segments carrying payload,
    chosen at random, and nothing else (SYN, SYN-ACK, pure ACKs and FINs
    pass), with named counters to check it by.

    They drop at prerouting, on the receiving side of the loopback, so the
    sender has to find the loss and retransmit.  A drop at the output hook
    is not loss: the sending TCP gets it back as a local error and sends
    the segment again at its next chance, with no retransmission timeout
    (and today's echod loses nothing there).  A segment carries payload
    when the IP length exceeds the IP and TCP headers: nft cannot subtract
    header fields, so there is one rule per TCP data offset (5 to 15
    words), for IPv4 without options (Linux TCP sends none unless asked)
    and for IPv6 with TCP as the first next header."""
    rules = []
    for doff in range(5, 16):
        rules.append("ip hdrlength 5 tcp doff %d ip length > %d goto data"
                     % (doff, 20 + 4 * doff))
        rules.append("ip6 nexthdr tcp tcp doff %d ip6 length > %d goto data"
                     % (doff, 4 * doff))
    return """\
table inet echod_loss {
    counter tcp_all {}
    counter data {}
    counter data_syn {}
    counter dropped {}
    counter pure {}
    chain data {
        counter name "data"
        tcp flags syn counter name "data_syn"
        numgen random mod 100 < %d counter name "dropped" drop
    }
    chain prerouting {
        type filter hook prerouting priority -300; policy accept;
        meta l4proto tcp counter name "tcp_all"
        %s
        meta l4proto tcp counter name "pure"
    }
}
""" % (percent, "\n        ".join(rules))


class Netns:
    """A network namespace with its loopback up."""

    def __init__(self, name):
        self.name = name

    def argv(self, *cmd):
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(self, *cmd):
        r = subprocess.run(self.argv(*cmd), capture_output=True, text=True,
                           timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, "%s: %s" % (" ".join(cmd), r.stderr)
        return r.stdout

    def tcp_stats(self):
        """The namespace's TCP counters from /proc/net/netstat and snmp,
        as {"TcpExt.PruneCalled": n, ...}."""
        stats = {}
        for f in ("/proc/net/netstat", "/proc/net/snmp"):
            lines = self.run("cat", f).splitlines()
            for names, values in zip(lines[::2], lines[1::2]):
                kind = names.split(":")[0]
                for k, v in zip(names.split()[1:], values.split()[1:]):
                    stats[kind + "." + k] = int(v)
        return stats

    def reset_counters(self):
        """Return the nft counters by name (packets) and zero them."""
        out = self.run("nft", "-j", "reset", "counters", "table", "inet",
                       "echod_loss")
        return {item["counter"]["name"]: item["counter"]["packets"]
                for item in json.loads(out)["nftables"]
                if "counter" in item}


@pytest.fixture
def lossy_netns(tmp_path):
    """A fresh namespace that drops LOSS_PERCENT% of TCP data segments;
    always deleted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("a network namespace needs root")
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            if os.environ.get("CI"):
                pytest.fail("%s not found (apt-get install %s)" %
                            (tool, package))
            pytest.skip("%s not found (apt-get install %s)" % (tool, package))
    name = "echod-drain-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True,
                       text=True, timeout=TIMEOUT)
    if r.returncode != 0:
        if re.search(r"not permitted|permission denied", r.stderr, re.I):
            pytest.skip("cannot create a network namespace: %s" %
                        r.stderr.strip())
        pytest.fail("ip netns add %s: %s" % (name, r.stderr.strip()))
    try:
        ns = Netns(name)
        ns.run("ip", "link", "set", "lo", "up")
        rules = tmp_path / "loss.nft"
        rules.write_text(lossy_ruleset(LOSS_PERCENT))
        ns.run("nft", "-f", str(rules))
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", name], timeout=TIMEOUT)


def read_line(proc, timeout):
    """One line from proc's stdout within timeout ('' at EOF or timeout)."""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
    return proc.stdout.readline()


def conn_problems(conns):
    """What went wrong on each connection of a drain_client.py report."""
    out = []
    for c in conns:
        what = []
        if c["received"] < c["sent"]:
            what.append("%d bytes lost" % (c["sent"] - c["received"]))
        elif c["received"] > c["sent"]:
            what.append("%d bytes too many" % (c["received"] - c["sent"]))
        if c["mismatch_at"] is not None:
            what.append("wrong byte at offset %d" % c["mismatch_at"])
        if c["error"]:
            what.append(c["error"])
        elif not c["eof"]:
            what.append("no EOF")
        if what:
            out.append("conn %d (port %d, sent %d%s, got %d): %s" % (
                c["idx"], c["port"], c["sent"],
                ", SHUT_WR %s SIGTERM" % c["shut"] if c["shut"] else "",
                c["received"], ", ".join(what)))
    return out


def lossy_run(start_echod, ns, mode, seed, conns=50):
    """One echod in ns, conns clients streaming to it, SIGTERM while they
    do; return (summary line, [problems])."""
    d = start_echod(drain_config(),
                    argv=ns.argv(*WRAPPER, ECHOD, "--config", "{config}"))
    port = d.tcp[0][1]
    ns.reset_counters()
    stats0 = ns.tcp_stats()
    client = subprocess.Popen(
        ns.argv(sys.executable, CLIENT, "--port", str(port), "--conns",
                str(conns), "--mode", mode, "--seed", str(seed),
                "--deadline", str(CLIENT_DEADLINE)),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = read_line(client, CLIENT_DEADLINE)
        assert line == "ready\n", "drain client not ready: %r" % line
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        client.stdin.write("go\n")
        client.stdin.flush()
        out, _ = client.communicate(timeout=CLIENT_DEADLINE + 10)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    try:
        rc = d.stop(None, timeout=SHUTDOWN_TIMEOUT + 10)   # by itself
    except subprocess.TimeoutExpired:
        d.kill()
        rc = None
    elapsed = time.monotonic() - t0
    assert out.strip(), "drain client: no report (exit status %s)" % \
        client.returncode
    report = json.loads(out.splitlines()[-1])
    count = ns.reset_counters()
    stats = ns.tcp_stats()
    problems = conn_problems(report["conns"])
    if report["timed_out"]:
        problems.append("the client gave up after %ds" % CLIENT_DEADLINE)
    if rc != 0:
        problems.append("echod exit status %s" % rc)
    problems += ["echod logged %r" % l for l in cut_lines(d.log())]
    # The network must really have been lossy, and only for data.
    if count["dropped"] == 0 or count["data_syn"] != 0 or \
            not 0.01 < count["dropped"] / count["data"] < 0.06:
        problems.append("the namespace dropped %d of %d data segments "
                        "(%d SYN): not the %d%% loss wanted" % (
                            count["dropped"], count["data"],
                            count["data_syn"], LOSS_PERCENT))
    short = [c for c in report["conns"] if c["received"] < c["sent"]]
    summary = ("%s, seed %d: %d clients sent %.1f MB; %d connections lost "
               "%d bytes; echod exited %s %.2f s after SIGTERM; %d of %d "
               "data segments dropped, %d other TCP segments" % (
                   mode, seed, conns,
                   sum(c["sent"] for c in report["conns"]) / 1e6,
                   len(short), sum(c["sent"] - c["received"] for c in short),
                   rc, elapsed, count["dropped"], count["data"],
                   count["pure"]))
    kernel = ", ".join("%s %d" % (k.split(".")[1], stats[k] - stats0[k])
                       for k in KERNEL_STATS + PRESSURE_STATS
                       if stats[k] != stats0[k])
    summary += "\n  kernel: %s" % (kernel or "-")
    if any(stats[k] != stats0[k] for k in PRESSURE_STATS):
        summary += " (the kernel dropped received data itself, short " \
            "of buffer space, or of TCP memory machine-wide)"
    print(summary)
    return summary, problems


def check_runs(results):
    """results: [(summary, [problems])], one per run; all must be clean."""
    bad = [(s, p) for s, p in results if p]
    if bad:
        pytest.fail("%d of %d runs lost data or misbehaved:\n%s" % (
            len(bad), len(results), "\n".join(
                "%s\n    %s" % (s, "\n    ".join(p[:10] + (
                    ["... %d more" % (len(p) - 10)] if len(p) > 10 else [])))
                for s, p in bad)))


@heavy
def test_lossy_drain_returns_every_byte(start_echod, lossy_netns):
    """50 clients stream random bytes (reading their echo as they go) and
    stop at SIGTERM; each must get all it sent back, in order, then EOF.
    Five echod runs, zero loss in each."""
    check_runs([lossy_run(start_echod, lossy_netns, "stream", seed)
                for seed in range(1, 6)])


@heavy
def test_lossy_drain_half_close(start_echod, lossy_netns):
    """50 clients send 1-4 MiB each and shut down their write side, half
    of them just before SIGTERM and half (with up to 1 MiB still to send)
    just after; each must get exactly what it sent back, then EOF.  Five
    echod runs."""
    check_runs([lossy_run(start_echod, lossy_netns, "halfclose", seed)
                for seed in range(1, 6)])


# The listen backlog.

def connect(addr):
    s = socket.create_connection(addr, timeout=TIMEOUT)
    s.settimeout(TIMEOUT)
    return s


def echo_byte(s, b=b"a"):
    s.sendall(b)
    assert s.recv(1) == b, "no echo of %r" % b


def listen_queue(port):
    """The accept queues (Recv-Q) of every listener on 127.0.0.1:port."""
    out = subprocess.run(["ss", "-Hltn", "sport = :%d" % port],
                         capture_output=True, text=True, timeout=TIMEOUT,
                         check=True).stdout
    return [int(line.split()[1]) for line in out.splitlines()]


def wait_queued(port, n, eofs=lambda: 0):
    """Wait until n clients sit in port's backlog, or n less those that
    eofs() says were closed (bounded: 10 s); return the queue lengths."""
    deadline = time.monotonic() + 10
    while True:
        q = listen_queue(port)
        if sum(q) + eofs() == n:
            return q
        assert time.monotonic() < deadline, \
            "%d clients should wait in the backlog of port %d: Recv-Q %s" \
            % (n, port, q)
        time.sleep(0.02)


def readable(s):
    with selectors.DefaultSelector() as sel:
        sel.register(s, selectors.EVENT_READ)
        return bool(sel.select(0))


def fill(s, size, seed):
    """Send up to size bytes without blocking, whatever the kernel takes;
    return exactly what was sent."""
    data = random_bytes(size, seed)
    s.setblocking(False)
    sent = 0
    try:
        while sent < size:
            sent += s.send(data[sent:sent + 65536])
    except BlockingIOError:
        pass
    s.settimeout(TIMEOUT)
    return data[:sent]


def random_bytes(size, seed):
    return random.Random(seed).randbytes(size)


def read_to_eof(s):
    """Everything until EOF, and the error that ended it early if any."""
    parts = []
    try:
        while True:
            b = s.recv(1 << 20)
            if not b:
                return b"".join(parts), None
            parts.append(b)
    except OSError as e:
        return b"".join(parts), e


def check_echoes(clients):
    """clients: [(name, socket, bytes sent)]; read each to EOF, then
    close; every byte must come back, then EOF."""
    problems = []
    for name, s, sent in clients:
        got, err = read_to_eof(s)
        s.close()
        if got != sent or err:
            first = next((i for i in range(min(len(got), len(sent)))
                          if got[i] != sent[i]), None)
            problems.append("%s: sent %d bytes, got %d back%s%s" % (
                name, len(sent), len(got),
                ", first wrong at %d" % first if first is not None else "",
                ", then %s" % (err or "EOF")))
    return problems


def test_backlog_drained_at_sigterm(start_echod):
    """A client the kernel has connected but echod has not accepted when
    SIGTERM comes (max_connections reached) is accepted and drained too."""
    d = start_echod(drain_config(workers=1, max_connections=1))
    addr = d.tcp[0]
    a = connect(addr)
    echo_byte(a)
    d.wait_log(r"max_connections \(1\) reached")
    b = connect(addr)
    wait_queued(addr[1], 1)
    sent_b = fill(b, 256 * 1024, 1)
    sent_a = fill(a, 64 * 1024, 2)
    assert len(sent_b) > 0
    d.proc.send_signal(signal.SIGTERM)
    problems = check_echoes([("A (accepted)", a, sent_a),
                             ("B (in the backlog)", b, sent_b)])
    rc = d.stop(None, timeout=SHUTDOWN_TIMEOUT + 10)   # exits by itself
    assert not problems, "\n".join(problems) + "\n" + d.log()
    assert rc == 0, d.log()
    assert not cut_lines(d.log()), d.log()


def test_backlog_drained_at_sigterm_two_workers(start_echod):
    """Several queued clients, spread over two workers' listeners."""
    d = start_echod(drain_config(workers=2, max_connections=2,
                                 log_level="debug"))
    addr = d.tcp[0]
    # One accepted client on each worker (their positions in the
    # SO_REUSEPORT group follow a hash of the address): they reach
    # max_connections, and each serves as a barrier for its worker below.
    held = {}
    for attempt in range(40):
        s = connect(addr)
        echo_byte(s)
        m = d.wait_log(r"conn (\d+): accepted from 127\.0\.0\.1:%d by "
                       r"worker (\d+)" % s.getsockname()[1])
        fd, worker = int(m.group(1)), int(m.group(2))
        if worker not in held:
            held[worker] = s
            if len(held) == 2:
                break
            continue
        # Both on one worker: let this one go and try again, once echod
        # has closed it (else the other worker holds the next client).
        closed = r"conn %d: closed$" % fd
        n = len(re.findall("(?m)" + closed, d.log()))
        s.close()
        d.wait_count(closed, n + 1)
    assert len(held) == 2, "40 clients, all on worker %s" % list(held)
    d.wait_log(r"max_connections \(2\) reached")

    # Clients that land on the worker still accepting: it accepts one and
    # holds it, unserved, until a place is free (it used to close it),
    # and pauses too; the others wait in the backlog.
    probes = [connect(addr) for _ in range(7)]
    port = addr[1]

    def syn_recv():
        return subprocess.run(["ss", "-Htn", "state", "syn-recv",
                               "sport = :%d" % port], capture_output=True,
                              text=True, timeout=TIMEOUT).stdout.strip()
    deadline = time.monotonic() + 10
    while syn_recv():                   # every handshake complete
        assert time.monotonic() < deadline, syn_recv()
        time.sleep(0.02)
    for s in held.values():             # each worker has seen them all
        echo_byte(s, b"b")
        echo_byte(s, b"c")
    queues = listen_queue(port)
    assert not any(readable(p) for p in probes), "a client was refused"
    assert len(probes) - 2 <= sum(queues) <= len(probes), \
        "Recv-Q %s: more than one held per worker" % queues
    queued = probes

    clients = [("B%d (queued)" % i, p, fill(p, 128 * 1024, 10 + i))
               for i, p in enumerate(queued)]
    clients += [("A on worker %d" % w, s, fill(s, 64 * 1024, w))
                for w, s in held.items()]
    d.proc.send_signal(signal.SIGTERM)
    problems = check_echoes(clients)
    rc = d.stop(None, timeout=SHUTDOWN_TIMEOUT + 10)   # exits by itself
    log = "\n".join(l for l in d.log().splitlines() if ": conn " not in l
                    and not re.search(r"conn \d+:", l))
    assert not problems, "%d of %d clients:\n%s\n%s" % (
        len(problems), len(clients), "\n".join(problems), log)
    assert rc == 0, log
    assert not cut_lines(d.log()), log


# Clients that go away during the drain.

def test_reset_client_does_not_hold_the_drain(start_echod):
    """A client that half-closes while its echo is still on the way and
    then resets: echod used to wait for the acknowledgement of that echo,
    which never comes, until shutdown_timeout."""
    d = start_echod(drain_config(workers=1))
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(TIMEOUT)
    s.connect(d.tcp[0])
    echo_byte(s)
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    d.wait_log(r"draining 1 connections")
    # More echo than the client's small buffer takes, so some stays
    # unacknowledged in echod's socket, yet little enough that the socket
    # takes it all; then a half-close and a reset.
    s.sendall(random_bytes(12 * 1024, 1))
    s.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + 10
    while not echod_waits_for_ack(d.tcp[0][1]):
        assert time.monotonic() < deadline, "echod never got the half-close"
        time.sleep(0.02)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                 struct.pack("ii", 1, 0))
    s.close()                               # RST
    assert d.stop(None, timeout=SHUTDOWN_TIMEOUT + 10) == 0
    took = time.monotonic() - t0
    assert took < SHUTDOWN_TIMEOUT / 2, \
        "the drain waited %.1f s for a client that had reset" % took
    assert not re.search(r"shutdown timeout", d.log()), d.log()


def echod_waits_for_ack(port):
    """Whether echod's side of a connection on port has sent its FIN after
    the client's with data still unacknowledged (LAST-ACK, send queue not
    empty)."""
    out = subprocess.run(["ss", "-Htn", "state", "last-ack",
                          "sport = :%d" % port], capture_output=True,
                         text=True, timeout=TIMEOUT).stdout.split()
    return len(out) >= 2 and int(out[1]) > 0
