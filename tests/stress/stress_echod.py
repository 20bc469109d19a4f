"""What the stress scripts share: echod under a temporary configuration,
its log read by a thread, its readiness and its TCP port."""
import os
import re
import signal
import subprocess
import tempfile
import threading
import time

LISTEN_RE = re.compile(r"listening on tcp 127\.0\.0\.1:(\d+)$")


class Echod:
    """echod under a temporary config; its stderr collected by a thread."""

    def __init__(self, path, config):
        self.dir = tempfile.TemporaryDirectory(prefix="echod_stress.")
        self.conf = os.path.join(self.dir.name, "echod.conf")
        with open(self.conf, "w") as f:
            f.write(config)
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            [path, "--config", self.conf], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            errors="replace")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)
            self.cond.notify_all()

    def wait_ready(self, timeout=15.0):
        """Wait for the " ready: " line; return the TCP port."""
        deadline = time.monotonic() + timeout
        port = None
        i = 0
        with self.cond:
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    i += 1
                    if line is None:
                        raise RuntimeError("echod exited:\n" + self.log())
                    m = LISTEN_RE.search(line)
                    if m:
                        port = int(m.group(1))
                    if " ready: " in line:
                        if port is None:
                            raise RuntimeError("no tcp port logged:\n" +
                                               self.log())
                        return port
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("echod not ready in %.0fs:\n%s" %
                                       (timeout, self.log()))
                self.cond.wait(left)

    def log(self):
        with self.cond:
            return "\n".join(l for l in self.lines if l is not None)

    def stop(self, timeout=30.0):
        """SIGTERM; return the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(5)
        self.dir.cleanup()
