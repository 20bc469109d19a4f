"""The PROXY protocol (issue 14): a group with proxy_protocol takes the
client's address from the balancer's header, for its access lists, per-IP
limits, logs and banner; the header is never echoed, and a connection
without a good one is closed and counted by reason."""

import errno
import os
import signal
import socket
import struct
import subprocess
import time

import pytest

from test_echoload import ECHOLOAD
from test_guard import free_port, metrics, settled

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(src, sport, dst, dport, cmd=0x21, fam=0x11, tlv=b""):
    addrs = (socket.inet_aton(src) + socket.inet_aton(dst) +
             struct.pack("!HH", sport, dport))
    return SIG + bytes([cmd, fam]) + struct.pack("!H", len(addrs) +
                                                 len(tlv)) + addrs + tlv


def exchange(port, chunks, src="127.0.0.1", half_close=True, timeout=5):
    """Send chunks (each its own write), half-close unless told not to,
    and read until EOF."""
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out = b""
    try:
        for c in chunks:
            s.sendall(c)
            if len(chunks) > 1:
                time.sleep(0.01)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        while True:
            b = s.recv(65536)
            if not b:
                return out
            out += b
    except (ConnectionResetError, BrokenPipeError):
        return out
    except OSError as e:
        if e.errno != errno.ENOTCONN:      # shutdown after a reset
            raise
        return out
    finally:
        s.close()


def proxy_config(mport, port, group="", server="workers = 2\n"):
    return ("[server]\n%s[metrics]\nlisten = 127.0.0.1:%d\n"
            "[tcp]\nlisten = 127.0.0.1:0\n"
            "[tcp lb]\nlisten = 127.0.0.1:%d\nproxy_protocol = any\n%s"
            "[udp]\nlisten =\n" % (server, mport, port, group))


@pytest.fixture
def lb(start_echod):
    mport, port = free_port(), free_port()
    d = start_echod(proxy_config(mport, port, "deny = 192.0.2.66/32\n"
                                 "max_connections_per_ip = 1\n"
                                 "proxy_timeout = 1s\n"))
    d.mport, d.port = mport, port
    return d


def rej(m, reason):
    return m['echod_proxy_rejected_total{group="lb",reason="%s"}' % reason]


def test_headers_taken_never_echoed(lb):
    data = os.urandom(200000)
    h1 = b"PROXY TCP4 198.51.100.7 127.0.0.1 5544 7\r\n"
    # Whole, with data in the same write; then a byte at a time.
    assert exchange(lb.port, [h1 + data]) == data
    assert exchange(lb.port, [h1[i:i + 1] for i in range(len(h1))] +
                    [b"after"]) == b"after"
    h2 = v2("198.51.100.8", 1, "127.0.0.1", 7, tlv=b"\x04\x00\x02xx")
    assert exchange(lb.port, [h2, data]) == data
    h6 = b"PROXY TCP6 2001:db8::1 ::1 1 7\r\n"
    assert exchange(lb.port, [h6 + b"six"]) == b"six"
    m = settled(lb.mport, 'echod_proxy_headers_total{group="lb",'
                'command="proxy"}', 4)
    assert m['echod_proxy_headers_total{group="lb",command="proxy"}'] == 4
    assert m['echod_connections_accepted_total{group="lb"}'] == 4
    assert m['echod_received_bytes_total{group="lb",proto="tcp"}'] == \
        2 * len(data) + 5 + 3


def test_access_and_per_ip_use_the_real_client(lb):
    denied = b"PROXY TCP4 192.0.2.66 127.0.0.1 1 7\r\nx"
    assert exchange(lb.port, [denied]) == b""
    # One connection per real client: a second from the same one is
    # refused, one from another client through the same balancer is not.
    a = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
    a.sendall(b"PROXY TCP4 198.51.100.1 127.0.0.1 1 7\r\nfirst")
    assert a.recv(10) == b"first"
    assert exchange(lb.port, [b"PROXY TCP4 198.51.100.1 127.0.0.1 2 7\r\n"
                              b"second"]) == b""
    assert exchange(lb.port, [b"PROXY TCP4 198.51.100.2 127.0.0.1 3 7\r\n"
                              b"other"]) == b"other"
    a.close()
    m = settled(lb.mport, 'echod_connections_rejected_total{group="lb",'
                'reason="per_ip"}', 1)
    assert m['echod_connections_rejected_total{group="lb",'
             'reason="per_ip"}'] == 1
    assert m['echod_connections_rejected_total{group="lb",'
             'reason="access"}'] == 1


def test_bad_headers_closed_and_counted(lb):
    assert exchange(lb.port, [b"hello, no header\r\n"]) == b""
    assert exchange(lb.port, [b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\nx"]) == \
        b""
    unix = SIG + b"\x21\x31" + struct.pack("!H", 216) + bytes(216)
    assert exchange(lb.port, [unix + b"x"]) == b""
    t0 = time.monotonic()
    assert exchange(lb.port, [b"PROXY TCP4 1.2."], half_close=False) == b""
    assert 0.9 < time.monotonic() - t0 < 3
    # A header trickled a byte at a time: the timeout is for all of it.
    h = b"PROXY TCP4 198.51.100.7 127.0.0.1 5544 7\r\n"
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", lb.port), timeout=5) as s:
        try:
            for i in range(len(h)):
                s.sendall(h[i:i + 1])
                time.sleep(0.1)
            got = s.recv(10)
        except (ConnectionResetError, BrokenPipeError):
            got = b""
    assert got == b"" and time.monotonic() - t0 < 2.5
    # 107 bytes without a line end: never a v1 header.
    assert exchange(lb.port, [b"PROXY UNKNOWN " + b"x" * 100]) == b""
    m = settled(lb.mport, 'echod_proxy_rejected_total{group="lb",'
                'reason="timeout"}', 1)
    m = settled(lb.mport, 'echod_proxy_rejected_total{group="lb",'
                'reason="timeout"}', 2)
    assert (rej(m, "missing"), rej(m, "malformed"), rej(m, "unsupported"),
            rej(m, "timeout")) == (1, 2, 1, 2)
    assert m['echod_connections_accepted_total{group="lb"}'] == 0
    assert m['echod_connections_active{group="lb"}'] == 0


def test_local_and_unknown_served_as_the_balancer(lb):
    local = v2("0.0.0.0", 0, "0.0.0.0", 0, cmd=0x20, fam=0x00)
    assert exchange(lb.port, [local + b"health"]) == b"health"
    assert exchange(lb.port, [b"PROXY UNKNOWN\r\nunknown"]) == b"unknown"
    m = settled(lb.mport, 'echod_proxy_headers_total{group="lb",'
                'command="local"}', 2)
    assert m['echod_proxy_headers_total{group="lb",command="local"}'] == 2


def test_only_from_proxy_from_and_only_versions_asked(start_echod):
    mport, port = free_port(), free_port()
    d = start_echod(proxy_config(mport, port, "proxy_from = 127.0.0.2/32\n")
                    .replace("proxy_protocol = any", "proxy_protocol = v1"))
    h1 = b"PROXY TCP4 198.51.100.7 127.0.0.1 5544 7\r\nok"
    assert exchange(port, [h1], src="127.0.0.1") == b""
    assert exchange(port, [h1], src="127.0.0.2") == b"ok"
    h2 = v2("198.51.100.8", 1, "127.0.0.1", 7)
    assert exchange(port, [h2 + b"v2"], src="127.0.0.2") == b""
    m = settled(mport, 'echod_proxy_rejected_total{group="lb",'
                'reason="missing"}', 1)
    assert m['echod_proxy_rejected_total{group="lb",reason="untrusted"}'] \
        == 1
    assert m['echod_proxy_rejected_total{group="lb",reason="missing"}'] == 1
    # The unnamed group takes no header: it echoes one like any bytes.
    plain = d.groups["tcp default"][0]
    with socket.create_connection(plain, timeout=5) as s:
        s.sendall(h1)
        got = b""
        while len(got) < len(h1):
            got += s.recv(100)
        assert got == h1
    assert d.stop() == 0


def test_banner_names_backend_client_and_balancer(start_echod):
    mport, port = free_port(), free_port()
    d = start_echod(proxy_config(mport, port, "", server="workers = 1\n")
                    .replace("[tcp]\n", "[tcp]\nbanner = on\n"))
    s = socket.socket()
    s.settimeout(5)
    s.bind(("127.0.0.3", 0))
    s.connect(("127.0.0.1", port))
    s.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 5544 7\r\nhi")
    want = ("echod %s worker 0 group lb client 192.0.2.7:5544 via "
            "127.0.0.3:%d\n" % (socket.gethostname(), s.getsockname()[1])
            ).encode() + b"hi"
    got = b""
    while len(got) < len(want):
        got += s.recv(1000)
    assert got == want
    s.close()
    # Without a PROXY header: the client as accepted, and no "via".
    with socket.create_connection(d.groups["tcp default"][0], timeout=5) as s:
        s.sendall(b"plain")
        want = ("echod %s worker 0 group default client 127.0.0.1:%d\n" %
                (socket.gethostname(), s.getsockname()[1])).encode() + \
            b"plain"
        got = b""
        while len(got) < len(want):
            got += s.recv(1000)
        assert got == want
    key = 'echod_sent_bytes_total{group="default",proto="tcp"}'
    assert settled(mport, key, len(want))[key] == len(want)
    assert d.stop() == 0


@pytest.mark.parametrize("version", ["1", "2"])
def test_echoload_sends_the_header(start_echod, version):
    mport, port = free_port(), free_port()
    d = start_echod(proxy_config(mport, port, ""))
    r = subprocess.run([ECHOLOAD, "-q", "-c", "10", "-d", "1", "-s",
                        "1-4000", "--proxy-v" + version,
                        "203.0.113.5:4444", "127.0.0.1:%d" % port],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    m = metrics(mport)
    assert m['echod_proxy_headers_total{group="lb",command="proxy"}'] == 10
    assert d.stop() == 0
    r = subprocess.run([ECHOLOAD, "--udp", "--proxy-v1", "1.2.3.4:5",
                        "127.0.0.1:7"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 64 and "TCP only" in r.stderr


def test_drain_gives_a_waiting_header_its_time(lb):
    """SIGTERM while a connection waits for the rest of its header: it
    gets the rest of proxy_timeout, is then echoed and drained; one that
    never sends it is closed at its timeout, counted so, not as cut."""
    done = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
    done.sendall(b"PROXY TCP4 198.51.100.9 127.0.0.1 1 7")
    never = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
    never.sendall(b"PROXY TCP4 198.51.1")
    time.sleep(0.1)
    lb.proc.send_signal(signal.SIGTERM)
    lb.wait_log(r"signal 15: stopping")
    done.sendall(b"\r\nlate but whole")
    done.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        b = done.recv(100)
        if not b:
            break
        got += b
    assert got == b"late but whole"
    assert never.recv(10) == b""
    assert lb.stop(sig=None) == 0
    assert " cut " not in lb.log(), lb.log()
    done.close()
    never.close()
