#!/usr/bin/python3
"""Client half of tests/test_drain.py, run inside a network namespace
(ip netns exec NS /usr/bin/python3 drain_client.py ...).

It opens --conns TCP connections to echod and streams random bytes on each
while reading the echo, checking every byte against what it sent.  The
test and this client talk over stdin and stdout, one line at a time:

  client: "ready"   every connection is open and streaming (see below)
  test:   sends SIGTERM to echod, then writes "go"
  client: stops sending (stream) or finishes and shuts down the write side
          (halfclose), reads every connection to EOF, closes it, and
          prints one line of JSON: per connection what was sent and
          received, whether EOF came, and the first wrong byte.

--mode stream: each connection sends without end until "go" and then
  stops; "ready" once each has sent --warmup bytes and had some back.
--mode halfclose: each connection sends a fixed total (random between
  --min-bytes and --max-bytes) and then shutdown(SHUT_WR).  Half of them,
  chosen at random, finish just before "ready" (so just before SIGTERM);
  the others hold back a tail (random, up to --tail bytes) and send it
  and their SHUT_WR only after "go", just after SIGTERM.

Every loop is bounded by --deadline seconds; past it the JSON says
"timed_out": true and what each connection had.
"""
import argparse
import json
import os
import random
import selectors
import socket
import sys
import time

BLOCK = (1 << 20) + 7       # the pattern's period: no multiple of a chunk
CHUNK = 64 * 1024


class Conn:
    def __init__(self, idx, sock, offset, total=None, hold=0, late=False):
        self.idx = idx
        self.sock = sock
        self.port = sock.getsockname()[1]
        self.offset = offset        # where in the pattern this stream starts
        self.total = total          # halfclose: bytes to send in all
        self.limit = None if total is None else total - hold
        self.late = late            # halfclose: finish after "go"
        self.sent = 0
        self.received = 0
        self.mismatch_at = None     # first wrong byte's offset in the echo
        self.eof = False
        self.error = None
        self.shut_at = None         # "before" or "after" the go line
        self.done = False           # EOF or error: nothing more to do

    def report(self):
        return {"idx": self.idx, "port": self.port, "sent": self.sent,
                "received": self.received, "eof": self.eof,
                "mismatch_at": self.mismatch_at, "error": self.error,
                "shut": self.shut_at}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--mode", choices=("stream", "halfclose"),
                    default="stream")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=512 * 1024)
    ap.add_argument("--min-bytes", type=int, default=1 << 20)
    ap.add_argument("--max-bytes", type=int, default=4 << 20)
    ap.add_argument("--tail", type=int, default=1 << 20)
    ap.add_argument("--deadline", type=float, default=60.0)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    block = os.urandom(BLOCK)
    pattern = block + block         # any BLOCK-long slice is contiguous
    view = memoryview(pattern)
    deadline = time.monotonic() + args.deadline
    halfclose = args.mode == "halfclose"

    conns = []
    sel = selectors.DefaultSelector()
    for i in range(args.conns):
        s = socket.create_connection((args.host, args.port), timeout=10)
        s.setblocking(False)
        if halfclose:
            total = rng.randint(args.min_bytes, args.max_bytes)
            late = rng.random() < 0.5
            hold = rng.randint(1, min(args.tail, total - 1))
            # The early ones hold back a tail too, until all are at it.
            c = Conn(i, s, rng.randrange(BLOCK), total, hold, late)
        else:
            c = Conn(i, s, rng.randrange(BLOCK))
        conns.append(c)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    sel.register(sys.stdin, selectors.EVENT_READ, None)

    # stream:    warmup -> ready -> go
    # halfclose: warmup (all to their hold point) -> closing (the early
    #            ones finish and shut down) -> ready -> go
    phase = "warmup"
    timed_out = False
    left = len(conns)

    def finish(c):
        nonlocal left
        c.done = True
        left -= 1
        sel.unregister(c.sock)
        c.sock.close()

    def want_write(c):
        if c.done or c.shut_at is not None:
            return False
        if phase == "go" and not halfclose:
            return False
        return c.limit is None or c.sent < c.limit

    def update_events(c):
        if c.done:
            return
        ev = selectors.EVENT_READ
        if want_write(c):
            ev |= selectors.EVENT_WRITE
        if sel.get_key(c.sock).events != ev:
            sel.modify(c.sock, ev, c)

    def shut_if_complete(c):
        if not halfclose or c.done or c.shut_at is not None or \
                c.sent < c.total:
            return
        try:
            c.sock.shutdown(socket.SHUT_WR)
            c.shut_at = "after" if phase == "go" else "before"
        except OSError as e:
            c.error = "shutdown: %s" % e
            finish(c)

    def read(c):
        try:
            b = c.sock.recv(256 * 1024)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            c.error = "recv: %s" % e
            finish(c)
            return
        if not b:
            c.eof = True
            finish(c)
            return
        if c.mismatch_at is None:
            start = (c.offset + c.received) % BLOCK
            want = pattern[start:start + len(b)]
            if want != b:
                c.mismatch_at = c.received + next(
                    j for j in range(len(b)) if b[j] != want[j])
        c.received += len(b)

    def write(c):
        n = CHUNK if c.limit is None else min(CHUNK, c.limit - c.sent)
        start = (c.offset + c.sent) % BLOCK
        try:
            c.sent += c.sock.send(view[start:start + n])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            c.error = "send: %s" % e
            finish(c)
            return
        shut_if_complete(c)

    def go():
        nonlocal phase
        phase = "go"
        sel.unregister(sys.stdin)
        for c in conns:
            if halfclose and not c.done:
                c.limit = c.total
                shut_if_complete(c)
            update_events(c)

    while left > 0:
        if time.monotonic() > deadline:
            timed_out = True
            break
        for key, ev in sel.select(timeout=0.5):
            c = key.data
            if c is None:                       # a line from the test
                line = sys.stdin.readline()
                if line.strip() == "go" or not line:
                    go()
                continue
            if not c.done and ev & selectors.EVENT_READ:
                read(c)
            if not c.done and ev & selectors.EVENT_WRITE and want_write(c):
                write(c)
            update_events(c)

        if phase == "warmup":
            if halfclose:
                if all(c.done or c.sent >= c.limit for c in conns):
                    phase = "closing"
                    for c in conns:
                        if not c.late and not c.done:
                            c.limit = c.total
                            update_events(c)
            elif all(c.done or (c.sent >= args.warmup and c.received > 0)
                     for c in conns):
                phase = "ready"
                print("ready", flush=True)
        if phase == "closing" and all(c.done or c.late or c.shut_at
                                      for c in conns):
            phase = "ready"
            print("ready", flush=True)

    print(json.dumps({"timed_out": timed_out, "phase": phase,
                      "conns": [c.report() for c in conns]}), flush=True)


if __name__ == "__main__":
    main()
