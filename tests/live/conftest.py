"""Fixtures for the live tests: start the real echod on loopback ports the
kernel picks (port 0), learn them from its log, and always stop it."""
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

ECHOD = os.environ.get("ECHOD") or os.path.join(
    os.path.dirname(__file__), "..", "..", "echod")
# A command to run echod under, e.g. "valgrind -q --error-exitcode=99".
WRAPPER = os.environ.get("ECHOD_WRAPPER", "").split()
LISTEN_RE = re.compile(r"listening on (tcp|udp|tls) (\S+)"
                       r"(?: for group ([a-z0-9_-]+))?$")


def split_addr(text):
    """'127.0.0.1:5' -> ('127.0.0.1', 5); '[::1]:5' -> ('::1', 5)."""
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class Echod:
    """One echod process and the lines it has logged so far."""

    def __init__(self, path, config_path, args=(), preexec=None, env=None,
                 pass_fds=(), argv=None):
        self.config_path = config_path
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            argv or [*WRAPPER, path, "--config", config_path, *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, errors="replace",
            preexec_fn=preexec, env=env, pass_fds=pass_fds)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.tcp = []
        self.udp = []
        self.tls = []
        self.groups = {}        # "tcp NAME" -> [addresses]

    def _read(self):
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)     # end of output
            self.cond.notify_all()

    def wait_log(self, pattern, timeout=10.0):
        """Wait for a log line matching pattern; return its match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        i = 0
        with self.cond:
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    i += 1
                    if line is None:
                        raise AssertionError(
                            "echod exited before logging %r:\n%s" %
                            (pattern, self.log()))
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no log line %r within %.0fs:\n%s"
                                         % (pattern, timeout, self.log()))
                self.cond.wait(left)

    def wait_count(self, pattern, n, timeout=10.0):
        """Wait until n log lines match pattern."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while sum(1 for l in self.lines if l and rx.search(l)) < n:
                left = deadline - time.monotonic()
                if left <= 0 or (self.lines and self.lines[-1] is None):
                    raise AssertionError("fewer than %d lines %r:\n%s" %
                                         (n, pattern, self.log()))
                self.cond.wait(left)

    def wait_ready(self):
        """Wait for the ready line, collecting the bound addresses."""
        self.wait_log(r" ready: ")
        with self.cond:
            for line in self.lines:
                m = line and LISTEN_RE.search(line)
                if m:
                    addr = split_addr(m.group(2))
                    getattr(self, m.group(1)).append(addr)
                    self.groups.setdefault("%s %s" % (
                        m.group(1), m.group(3) or "default"), []).append(addr)
        return self

    def log(self):
        with self.cond:
            return "\n".join(l for l in self.lines if l is not None)

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        """Signal echod (unless sig is None) and return its exit status."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.reader.join(5)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(5)


@pytest.fixture
def start_echod(tmp_path):
    """Factory: start_echod(config_text) -> a ready Echod."""
    started = []

    def start(config, ready=True, args=(), preexec=None, env=None,
              pass_fds=(), argv=None):
        path = tmp_path / ("echod%d.conf" % len(started))
        path.write_text(config)
        if argv is not None:
            argv = [a.replace("{config}", str(path)) for a in argv]
        d = Echod(ECHOD, str(path), args, preexec, env, pass_fds, argv)
        started.append(d)
        return d.wait_ready() if ready else d

    yield start
    for d in started:
        d.kill()


DEFAULT_CONFIG = """\
[server]
log_level = info
shutdown_timeout = 10s
[tcp]
listen = 127.0.0.1:0 [::1]:0
[udp]
listen = 127.0.0.1:0 [::1]:0
"""


@pytest.fixture
def echod(start_echod):
    """A running echod on loopback, TCP and UDP, IPv4 and IPv6."""
    return start_echod(DEFAULT_CONFIG)


def free_port():
    """A TCP port free now on 127.0.0.1, below the kernel's ephemeral
    range, so that no client connection of a test can take it as its own
    local port before the server binds it (port 0 would come from that
    range: a reload once failed to bind a port a client had taken)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rnd = random.SystemRandom()
    for _ in range(200 if low > 11000 else 0):
        port = rnd.randrange(10000, low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

