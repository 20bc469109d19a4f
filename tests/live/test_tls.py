"""TLS listener groups (issue 13): [tls] on libevent's OpenSSL bufferevents.
Certificates are made at test time with the openssl command.  Every byte
comes back over TLS 1.2 and 1.3, to Python's ssl and to openssl s_client;
close_notify is answered after the last echo; mTLS, resumption, the
handshake timeout, a reload that changes the certificate, bad files and a
drain are checked."""

import os
import random
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest

from conftest import ECHOD
from test_guard import free_port, metrics, settled

OPENSSL = shutil.which("openssl")
HAVE_TLS = subprocess.run(["ldd", ECHOD], capture_output=True,
                          text=True).stdout.find("libssl") >= 0
pytestmark = pytest.mark.skipif(not (OPENSSL and HAVE_TLS),
                                reason="echod built --without-openssl, or "
                                "no openssl command")


def sh(*args, cwd):
    subprocess.run(args, cwd=cwd, check=True, capture_output=True,
                   timeout=60)


def make_cert(d, name, ca=None, cn="localhost", serial=None):
    """A key and certificate for 127.0.0.1 and localhost, self-signed or
    signed by ca (a name made before)."""
    key, crt = d / (name + ".key"), d / (name + ".pem")
    sh(OPENSSL, "ecparam", "-name", "prime256v1", "-genkey", "-noout",
       "-out", str(key), cwd=d)
    ext = d / (name + ".ext")
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                   "basicConstraints=CA:%s\n" % ("TRUE" if ca is None and
                                                  name.startswith("ca")
                                                  else "FALSE"))
    sh(OPENSSL, "req", "-new", "-key", str(key), "-subj", "/CN=" + cn,
       "-out", str(d / (name + ".csr")), cwd=d)
    cmd = [OPENSSL, "x509", "-req", "-days", "2", "-in",
           str(d / (name + ".csr")), "-out", str(crt), "-extfile", str(ext),
           "-set_serial", str(serial or random.randrange(1, 2 ** 62))]
    if ca is None:
        cmd += ["-signkey", str(key)]
    else:
        cmd += ["-CA", str(d / (ca + ".pem")), "-CAkey",
                str(d / (ca + ".key"))]
    sh(*cmd, cwd=d)
    return str(crt), str(key)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    out = {"dir": d}
    out["server"] = make_cert(d, "server", serial=1001)
    out["server2"] = make_cert(d, "server2", serial=2002, cn="localhost 2")
    out["ca"] = make_cert(d, "ca", cn="echod test CA")
    out["client"] = make_cert(d, "client", ca="ca", cn="client")
    out["rogue"] = make_cert(d, "rogue", cn="rogue")
    return out


def tls_config(certs, mport, extra="", server="workers = 2\n"):
    crt, key = certs["server"]
    return ("[server]\n%s[metrics]\nlisten = 127.0.0.1:%d\n"
            "[tcp]\nlisten = 127.0.0.1:0\n[udp]\nlisten =\n"
            "[tls]\nlisten = 127.0.0.1:0\ncertificate = %s\nkey = %s\n%s"
            % (server, mport, crt, key, extra))


def client_ctx(certs, version=None, cert=None):
    ctx = ssl.create_default_context(cafile=certs["server"][0])
    ctx.load_verify_locations(certs["server2"][0])
    # Python's contexts may come with OP_IGNORE_UNEXPECTED_EOF (3.11 on
    # OpenSSL 3 does), which takes a close without close_notify for a clean
    # one: clear it, so that recv() raises then instead of returning b"".
    ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


def connect(ctx, addr, ragged=True):
    raw = socket.create_connection(addr, timeout=10)
    return ctx.wrap_socket(raw, server_hostname="localhost",
                           suppress_ragged_eofs=ragged)


def recv_ready(s, got):
    """Read into got what the non-blocking SSL socket s has; return True
    at the end (echod's close_notify)."""
    while True:
        try:
            b = s.recv(65536)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return False
        if not b:
            return True
        got.extend(b)


def echo_all(s, data, chunks=None):
    """Send data (in random chunks if asked) while reading it back, in one
    thread: an SSL socket is not to be read and written at once from two."""
    got = bytearray()
    off = 0
    s.setblocking(False)
    try:
        deadline = time.monotonic() + 120
        while len(got) < len(data) and time.monotonic() < deadline:
            want_w = off < len(data)
            r, w, _ = select.select([s], [s] if want_w else [], [], 1)
            if w:
                n = random.randint(1, chunks) if chunks else 65536
                try:
                    off += s.send(data[off:off + n])
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    pass
            if recv_ready(s, got):
                return bytes(got) == data
    finally:
        s.setblocking(True)
    return bytes(got) == data


@pytest.fixture
def tlsd(start_echod, certs, request):
    """echod with a [tls] group; with eagain.so preloaded when a test is
    parametrized with tlsd "eagain" (indirect)."""
    mport = free_port()
    eagain = getattr(request, "param", "plain") == "eagain"
    d = start_echod(tls_config(certs, mport), env=request.getfixturevalue(
        "eagain_env") if eagain else None)
    d.mport = mport
    return d


# echod's close_notify, as every write of OpenSSL's, first meets a full socket.
EAGAIN = pytest.mark.parametrize("tlsd", ["plain", "eagain"], indirect=True)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2,
                                     ssl.TLSVersion.TLSv1_3])
def test_concurrent_clients_and_a_32mib_stream(tlsd, certs, version):
    ctx = client_ctx(certs, version)
    addr = tlsd.tls[0]
    results = []

    def one(i):
        with connect(ctx, addr) as s:
            results.append(echo_all(s, os.urandom(random.randint(1, 200000)),
                                    chunks=20000))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == [True] * 64
    with connect(ctx, addr) as s:
        assert s.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                               ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
        assert echo_all(s, os.urandom(32 << 20))
    m = settled(tlsd.mport, 'echod_tls_handshakes_total{group="tls",'
                'kind="full"}', 65)
    assert m['echod_tls_handshakes_total{group="tls",kind="full"}'] == 65
    assert m['echod_connections_accepted_total{group="tls"}'] == 65


def tls_half_close(addr, ctx, data):
    """Send data and our close_notify at once, on one socket, through a
    memory BIO; read to the end.  Return (echo, whether echod sent its
    close_notify before closing)."""
    s = socket.create_connection(addr, timeout=10)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")

    def flush():
        b = out.read()
        if b:
            s.sendall(b)

    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            flush()
            inc.write(s.recv(65536))
    obj.write(data)
    try:
        obj.unwrap()
    except ssl.SSLWantReadError:
        pass
    flush()             # the data and close_notify, in one send
    got, notified = bytearray(), False
    while True:
        try:
            got.extend(obj.read(65536))
            continue
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            notified = True     # echod's close_notify, not an alert
            break
        b = s.recv(65536)
        if not b:
            break
        inc.write(b)
    s.close()
    return bytes(got), notified


@EAGAIN
def test_close_notify_after_the_last_echo(tlsd, certs):
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_ctx(certs, version)
        for size in (1, 5000, 300000):
            data = os.urandom(size)
            got, notified = tls_half_close(tlsd.tls[0], ctx, data)
            assert got == data, (version, size, len(got))
            assert notified, (version, size)


@pytest.fixture(scope="module")
def eagain_env(tmp_path_factory):
    """An environment for echod with eagain.c preloaded: every other write
    OpenSSL makes meets a full socket buffer."""
    cc = os.environ.get("CC") or shutil.which("cc")
    if not cc:
        pytest.skip("no C compiler for eagain.c")
    so = str(tmp_path_factory.mktemp("eagain") / "eagain.so")
    subprocess.run([cc, "-shared", "-fPIC", "-o", so, os.path.join(
        os.path.dirname(__file__), "eagain.c"), "-ldl"], check=True,
        timeout=60)
    env = dict(os.environ, LD_PRELOAD=so)
    # ASan wants its runtime first; eagain.so only wraps write(2).
    env["ASAN_OPTIONS"] = ":".join(o for o in (
        os.environ.get("ASAN_OPTIONS"), "verify_asan_link_order=0") if o)
    return env


def tls_slow_reader(addr, ctx, data, echoed=None):
    """Queue data and our close_notify at once through a memory BIO, then
    send them while reading the echo a little at a time, with a small
    receive buffer; call echoed() once all of it is back.  Return (echo,
    whether echod's close_notify ended it, rather than a close without
    one)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(addr)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            s.sendall(out.read())
            b = s.recv(65536)
            assert b, "closed in the handshake"
            inc.write(b)
    obj.write(data)
    with pytest.raises(ssl.SSLWantReadError):
        obj.unwrap()
    pending = memoryview(out.read())
    got = bytearray()
    s.setblocking(False)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            r, w, _ = select.select([s], [s] if pending else [], [], 1)
            if w:
                pending = pending[s.send(pending[:65536]):]
            if not r:
                continue
            b = s.recv(1024)            # a slow reader
            if not b:
                return bytes(got), False    # EOF, no close_notify
            inc.write(b)
            try:
                while True:
                    got.extend(obj.read(65536))
            except ssl.SSLWantReadError:
                if echoed and len(got) == len(data):
                    echoed()
                    echoed = None
            except ssl.SSLZeroReturnError:
                obj.unwrap()            # both sent: a clean end
                return bytes(got), True
        raise AssertionError("no end within 60 s: %d bytes" % len(got))
    finally:
        s.close()


@pytest.mark.parametrize("tlsd", ["eagain"], indirect=True)
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2,
                                     ssl.TLSVersion.TLSv1_3],
                         ids=["TLSv1.2", "TLSv1.3"])
def test_close_notify_waits_for_room(tlsd, certs, version):
    """All the echo is in the socket, which has no room for echod's
    close_notify: echod waits until it has, then sends it."""
    ctx = client_ctx(certs, version)
    for size in (1, 3 << 20):
        data = os.urandom(size)
        got, notified = tls_slow_reader(tlsd.tls[0], ctx, data)
        assert got == data, (size, len(got))
        assert notified, size
    assert tlsd.stop() == 0
    assert int(tlsd.wait_log(r"eagain.so: (\d+) writes failed").group(1)) > 0


def test_close_notify_that_finds_no_room(start_echod, certs, eagain_env):
    """A close_notify for which the socket never has room is given up
    after handshake_timeout (idle_timeout being 0): the close comes
    without it.  A drain leaves a connection in that wait alone, and its
    shutdown timeout cuts it."""
    env = dict(eagain_env, EAGAIN_STUCK="31")     # no close_notify gets out
    ctx, data = client_ctx(certs), os.urandom(1000)
    # Under valgrind the handshake alone may take half a second.
    ms = 3000 if os.environ.get("ECHOD_WRAPPER") else 500
    d = start_echod(tls_config(certs, free_port(),
                               "handshake_timeout = %dms\n" % ms), env=env)
    t0 = time.monotonic()
    assert tls_slow_reader(d.tls[0], ctx, data) == (data, False)
    assert ms * 0.0008 < time.monotonic() - t0 < ms * 0.001 + 5
    assert d.stop() == 0
    d = start_echod(tls_config(certs, free_port(), "idle_timeout = 1h\n",
                               "workers = 1\nshutdown_timeout = 1s\n"),
                    env=env)
    t0 = time.monotonic()
    assert tls_slow_reader(d.tls[0], ctx, data, echoed=lambda:
                           d.proc.send_signal(signal.SIGTERM)) == (data, False)
    assert d.stop(sig=None) == 0
    assert 0.9 < time.monotonic() - t0 < 8
    d.wait_log(r"shutdown timeout: cut 1 connections with 0 bytes")


def test_openssl_s_client(tlsd, certs):
    p = subprocess.Popen([OPENSSL, "s_client", "-quiet", "-connect",
                          "%s:%d" % tlsd.tls[0], "-CAfile", certs["server"][0],
                          "-servername", "localhost", "-verify_return_error"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        p.stdin.write(b"Bom dia\n")
        p.stdin.flush()
        assert p.stdout.readline() == b"Bom dia\n"
    finally:
        p.kill()
        p.wait(10)


def test_mtls(start_echod, certs):
    mport = free_port()
    d = start_echod(tls_config(certs, mport, "client_ca = %s\n" %
                               certs["ca"][0]))
    with connect(client_ctx(certs, cert=certs["client"]), d.tls[0]) as s:
        assert echo_all(s, b"with a good certificate")
    for cert in (None, certs["rogue"]):
        with pytest.raises((ssl.SSLError, ConnectionResetError,
                            BrokenPipeError)):
            with connect(client_ctx(certs, cert=cert), d.tls[0]) as s:
                s.sendall(b"x")
                assert s.recv(10) == b""
                raise ssl.SSLError("closed")
    m = settled(mport, 'echod_tls_handshake_failures_total{group="tls",'
                'reason="certificate"}', 2)
    assert m['echod_tls_handshake_failures_total{group="tls",'
             'reason="certificate"}'] == 2


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2,
                                     ssl.TLSVersion.TLSv1_3])
def test_resumption(tlsd, certs, version):
    ctx = client_ctx(certs, version)
    with connect(ctx, tlsd.tls[0]) as s:
        assert echo_all(s, b"first")
        sess = s.session
    raw = socket.create_connection(tlsd.tls[0], timeout=10)
    with ctx.wrap_socket(raw, server_hostname="localhost",
                         session=sess) as s:
        assert echo_all(s, b"again")
        assert s.session_reused
    m = settled(tlsd.mport, 'echod_tls_handshakes_total{group="tls",'
                'kind="resumed"}', 1)
    assert m['echod_tls_handshakes_total{group="tls",kind="resumed"}'] == 1


def test_handshake_timeout(start_echod, certs):
    mport = free_port()
    d = start_echod(tls_config(certs, mport, "handshake_timeout = 300ms\n"))
    t0 = time.monotonic()
    with socket.create_connection(d.tls[0], timeout=5) as s:
        assert s.recv(10) == b""
    assert 0.25 < time.monotonic() - t0 < 3
    # Plain text at a TLS port: a protocol failure, not an echo.
    with socket.create_connection(d.tls[0], timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        try:
            s.recv(100)
        except ConnectionResetError:
            pass
    m = settled(mport, 'echod_tls_handshake_failures_total{group="tls",'
                'reason="protocol"}', 1)
    assert m['echod_tls_handshake_failures_total{group="tls",'
             'reason="timeout"}'] == 1
    assert m['echod_connections_accepted_total{group="tls"}'] == 0


def test_reload_changes_the_certificate(start_echod, certs):
    mport = free_port()
    d = start_echod(tls_config(certs, mport))
    ctx = client_ctx(certs)
    old = connect(ctx, d.tls[0])
    assert echo_all(old, b"before")
    serial = old.getpeercert()["serialNumber"]
    assert int(serial, 16) == 1001
    sess = old.session

    def resumed():
        raw = socket.create_connection(d.tls[0], timeout=10)
        with ctx.wrap_socket(raw, server_hostname="localhost",
                             session=sess) as s:
            assert echo_all(s, b"resumed?")
            return s.session_reused

    assert resumed()
    # The same listen lines: the listeners stay, with their ports.
    crt2, key2 = certs["server2"]
    text = tls_config(certs, mport)
    with open(d.config_path, "w") as f:
        f.write(text.replace(certs["server"][0], crt2)
                .replace(certs["server"][1], key2))
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log(r"reloaded ")
    with connect(ctx, d.tls[0]) as s:
        assert int(s.getpeercert()["serialNumber"], 16) == 2002
        assert echo_all(s, b"after")
    assert echo_all(old, b"the old one goes on")
    old.close()
    # New ticket keys: a session from before the reload is not resumed.
    assert not resumed()
    # A bad key keeps the running certificate and says why.
    with open(d.config_path, "w") as f:
        f.write(text.replace(certs["server"][1], certs["rogue"][1]))
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log(r"reload failed, keeping the running configuration: .*key: "
               r"'.*rogue.key' does not match the certificate")
    with connect(ctx, d.tls[0]) as s:
        assert int(s.getpeercert()["serialNumber"], 16) == 2002


@pytest.mark.parametrize("change, what", [
    ("certificate = /nonexistent/cert.pem",
     "certificate: '/nonexistent/cert.pem': No such file or directory"),
    ("key = /nonexistent/key.pem",
     "key: '/nonexistent/key.pem': No such file or directory"),
    ("key = {rogue}", "key: '{rogue}' does not match the certificate"),
    ("client_ca = /nonexistent/ca.pem",
     "client_ca: '/nonexistent/ca.pem': No such file or directory"),
])
def test_bad_files_exit_78(tmp_path, certs, change, what):
    base = tls_config(certs, 1)
    key, val = change.split(" = ")
    val = val.format(rogue=certs["rogue"][1])
    what = what.format(rogue=certs["rogue"][1])
    lines = [l for l in base.splitlines() if not l.startswith(key + " =")]
    lines.append("%s = %s" % (key, val))
    path = tmp_path / "bad.conf"
    path.write_text("\n".join(lines) + "\n")
    lineno = len(lines)
    for args in (["-t"], []):
        r = subprocess.run([ECHOD, "-c", str(path), *args],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 78, r.stderr
        assert r.stderr.startswith("echod: %s:%d: [tls] %s" %
                                   (path, lineno, what)), r.stderr


@pytest.mark.parametrize("tlsd", [
    "plain",
    # Ten seconds: the other write path runs once per CI run.
    pytest.param("eagain", marks=pytest.mark.skipif(
        os.environ.get("ECHOD_HEAVY") != "1",
        reason="heavy scenario: runs once per CI run (ECHOD_HEAVY=1)"))],
    indirect=True)
def test_drain_loses_nothing(tlsd, certs):
    """Clients stream while SIGTERM comes: every byte they sent comes back
    before echod's close_notify.  One thread, non-blocking sockets."""
    ctx = client_ctx(certs)
    # A FIN without close_notify raises, so done means close_notify.
    socks = [connect(ctx, tlsd.tls[0], ragged=False) for _ in range(8)]
    sent = [bytearray() for _ in socks]
    got = [bytearray() for _ in socks]
    done = [False] * len(socks)
    for s in socks:
        s.setblocking(False)

    def pump(i, send):
        s = socks[i]
        if send:
            chunk = os.urandom(2000)
            try:
                n = s.send(chunk)
                sent[i].extend(chunk[:n])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                pass
        if recv_ready(s, got[i]):
            done[i] = True

    t0 = time.monotonic()
    signalled = False
    while time.monotonic() - t0 < 1.0:
        for i in range(len(socks)):
            pump(i, True)
        if not signalled and time.monotonic() - t0 > 0.4:
            tlsd.proc.send_signal(signal.SIGTERM)
            signalled = True
        time.sleep(0.005)
    deadline = time.monotonic() + 30
    while not all(done) and time.monotonic() < deadline:
        select.select(socks, [], [], 0.5)
        for i in range(len(socks)):
            if not done[i]:
                pump(i, False)
    assert all(done)
    assert all(bytes(g) == bytes(s) for g, s in zip(got, sent)), \
        [(len(g), len(s)) for g, s in zip(got, sent)]
    assert sum(len(s) for s in sent) > 100000
    assert tlsd.stop(sig=None) == 0
    assert " cut " not in tlsd.log()


@EAGAIN
def test_dirty_half_close_slow_reader(tlsd, certs):
    """A FIN without close_notify, echo still queued because the client
    reads slowly: every byte comes back, then echod's close_notify."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(20)
    raw.connect(tlsd.tls[0])
    s = client_ctx(certs).wrap_socket(raw, server_hostname="localhost",
                                      suppress_ragged_eofs=False)
    data = os.urandom(2000000)
    got = bytearray()
    s.setblocking(False)
    off = 0
    while off < len(data):
        select.select([s], [s], [], 1)
        try:
            off += s.send(data[off:off + 16384])
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            pass
        try:
            got.extend(s.recv(65536))
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
    s.setblocking(True)
    # A FIN, no close_notify: through a second descriptor of the socket,
    # since the SSL socket's shutdown() would end its TLS too.
    dup = socket.fromfd(s.fileno(), socket.AF_INET, socket.SOCK_STREAM)
    dup.shutdown(socket.SHUT_WR)
    dup.close()
    # b"" only on echod's close_notify: a bare FIN would raise.
    notified = False
    while True:
        time.sleep(0.001)               # a slow reader
        b = s.recv(65536)
        if not b:
            notified = True
            break
        got.extend(b)
    assert bytes(got) == data, (len(got), len(data))
    assert notified
    s.close()


def test_handshake_deadline_for_the_whole_handshake(start_echod, certs):
    """A ClientHello dripped a byte at a time does not restart the
    handshake timeout, nor does a reload."""
    mport = free_port()
    d = start_echod(tls_config(certs, mport, "handshake_timeout = 600ms\n"))
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx(certs).wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    t0 = time.monotonic()
    with socket.create_connection(d.tls[0], timeout=10) as s:
        try:
            for i in range(len(hello) - 1):
                s.sendall(hello[i:i + 1])
                time.sleep(0.1)
        except (ConnectionResetError, BrokenPipeError):
            pass
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
    assert time.monotonic() - t0 < 2.5
    # A reload while a handshake waits keeps its deadline.
    t0 = time.monotonic()
    with socket.create_connection(d.tls[0], timeout=10) as s:
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log(r"reloaded ")
        assert s.recv(10) == b""
    assert time.monotonic() - t0 < 2.5
    m = settled(mport, 'echod_tls_handshake_failures_total{group="tls",'
                'reason="timeout"}', 2)
    assert m['echod_tls_handshake_failures_total{group="tls",'
             'reason="timeout"}'] == 2


@pytest.mark.parametrize("extra", ["", "slice = 1-500\n"])
def test_client_reset_mid_echo_is_freed(start_echod, certs, extra):
    """A client that resets while echod still writes to it: the write
    fails (EPIPE) and comes back as an end of file; the connection is
    freed, not written to again and again (it once spun a worker at 100%
    CPU for good, about one run in three; slices, writing often, made it
    likelier)."""
    mport = free_port()
    d = start_echod(tls_config(certs, mport, extra, server="workers = 1\n"))
    ctx = client_ctx(certs)
    for i in range(40):
        s = connect(ctx, d.tls[0])
        s.sendall(os.urandom(10000 if i % 2 else 200000))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
        s.close()           # a RST, while echod echoes
    key = 'echod_connections_active{group="tls"}'
    m = settled(mport, key, 0)
    assert m[key] == 0
