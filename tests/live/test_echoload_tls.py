"""echoload --tls (issue 13) against echod's [tls] group, with
certificates made at test time: every mode over TLS 1.2 and 1.3, the
--reconnect handshake mode with and without resumption (checked against
echod's own counters), verification (--tls-ca, --tls-name,
--tls-no-verify), mTLS (--tls-cert, --tls-key), a TLS server that corrupts
the echo, and bad options."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import ECHOD
from test_churn import time_wait
from test_echoload import ECHOLOAD, HERE, bad_echo, echoload, target  # noqa
from test_guard import free_port, settled
from test_tls import OPENSSL, certs, tls_config  # noqa: F401 (a fixture)

HAVE_TLS = all(subprocess.run(["ldd", p], capture_output=True,
                              text=True).stdout.find("libssl") >= 0
               for p in (ECHOD, ECHOLOAD))
pytestmark = pytest.mark.skipif(not (OPENSSL and HAVE_TLS),
                                reason="built --without-openssl, or no "
                                "openssl command")


@pytest.fixture
def tlsd(start_echod, certs):  # noqa: F811
    mport = free_port()
    d = start_echod(tls_config(certs, mport))
    d.mport = mport
    return d


def tls_load(d, certs, *args):  # noqa: F811
    r = echoload("--tls", "--tls-ca", certs["server"][0], "-d", "1s",
                 "--json", *args, target(d.tls[0]))
    rep = json.loads(r.stdout) if r.stdout.startswith("{") else None
    return r, rep


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("args", [
    ["-c", "20", "-t", "2"],
    ["-m", "pipeline", "-k", "8", "-c", "8", "-s", "1-40000"],
    ["-m", "stream", "-c", "4", "-s", "1-64k"],
    ["-r", "2000", "-c", "10"],
])
def test_tls_modes(tlsd, certs, version, args):  # noqa: F811
    r, rep = tls_load(tlsd, certs, "--tls-version", version, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert rep["proto"] == "tls" and rep["ok"] is True
    assert rep["errors"] == {"mismatched": 0, "reset": 0, "timed_out": 0,
                             "connect_failed": 0, "overloaded": 0}
    conns = rep["connections"]
    assert rep["tls"] == {"handshakes": conns, "resumed": 0, "failed": 0}
    assert rep["bytes_echoed"] > 0
    # echod saw the same handshakes, all full, and the same bytes (inside
    # TLS, under proto "tls"); nothing of it counts as plain TCP.
    key = 'echod_tls_handshakes_total{group="tls",kind="full"}'
    sent = 'echod_sent_bytes_total{group="tls",proto="tls"}'
    m = settled(tlsd.mport, sent, rep["bytes_sent"])
    assert m[key] == conns
    assert m['echod_received_bytes_total{group="tls",proto="tls"}'] == \
        m[sent] == rep["bytes_sent"]
    assert m['echod_sent_bytes_total{group="default",proto="tcp"}'] == 0


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_reconnect_resumes(tlsd, certs, version):  # noqa: F811
    r, rep = tls_load(tlsd, certs, "--tls-version", version, "--reconnect",
                      "-c", "4", "-t", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    t = rep["tls"]
    # A connection per message (messages are counted after the ramp,
    # handshakes over the whole run); each client's first handshake is
    # full, the rest resume its last session.
    assert t["failed"] == 0 and t["handshakes"] > 20
    assert t["handshakes"] >= rep["messages"]
    assert t["resumed"] == t["handshakes"] - 4
    full = 'echod_tls_handshakes_total{group="tls",kind="full"}'
    resumed = 'echod_tls_handshakes_total{group="tls",kind="resumed"}'
    m = settled(tlsd.mport, resumed, t["resumed"])
    assert (m[full], m[resumed]) == (4, t["resumed"])


def test_reconnect_without_resumption(tlsd, certs):  # noqa: F811
    r, rep = tls_load(tlsd, certs, "--reconnect", "--tls-no-resume",
                      "-c", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    t = rep["tls"]
    assert t["resumed"] == 0 and t["handshakes"] > 10
    full = 'echod_tls_handshakes_total{group="tls",kind="full"}'
    m = settled(tlsd.mport, full, t["handshakes"])
    assert m[full] == t["handshakes"]


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_churn_server_close(tlsd, certs, version):  # noqa: F811
    # Our close_notify and FIN after the message, the echo, then echod's.
    r, rep = tls_load(tlsd, certs, "-m", "churn", "--server-close",
                      "--tls-version", version, "-c", "4", "-s", "1-2000")
    assert r.returncode == 0, r.stdout + r.stderr
    assert rep["churn"]["connections"] == rep["messages"] > 10
    assert rep["tls"]["handshakes"] >= rep["messages"]
    assert rep["tls"]["resumed"] >= rep["messages"] - 4
    # The client's FIN came first: TIME-WAIT on its side, none on echod's.
    srv, cli = time_wait(tlsd.tls[0][1])
    assert srv == 0 and cli > 0


def test_churn_open_loop_failed_handshakes(bad_echo):  # noqa: F811
    # A server that speaks no TLS: every handshake fails, and each idle
    # client is used again for the next connection (it crashed once: a
    # failed handshake's state carried over).
    r = echoload("--tls", "--tls-no-verify", "-m", "churn", "-r", "50", "-c",
                 "2", "-d", "1s", "--timeout", "500ms", "--json",
                 bad_echo("plain"))
    assert r.returncode == 1, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    assert rep["tls"]["failed"] >= 10
    assert rep["failure"] == "TLS handshakes failed"


def test_plain_reconnect(echod):
    r = echoload("--reconnect", "-c", "4", "-d", "1s", "--json",
                 target(echod.tcp[0]))
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    assert rep["messages"] > 20
    assert rep["connections_up"] >= rep["messages"]
    assert rep["tls"]["handshakes"] == 0


def test_reconnect_ramp(echod):
    # The window opens once every client has come up once, not after as
    # many connections (each client makes many).
    r = echoload("--reconnect", "-c", "20", "--ramp", "20", "-d", "500ms",
                 "--json", target(echod.tcp[0]))
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["ramp_seconds"] >= 0.9


def test_verification(tlsd, certs):  # noqa: F811
    addr = target(tlsd.tls[0])
    # The CA that signed echod's certificate is not this one.
    r = echoload("--tls", "--tls-ca", certs["ca"][0], "-d", "500ms",
                 "--json", addr)
    assert r.returncode == 1
    rep = json.loads(r.stdout)
    assert rep["failure"] == "TLS handshakes failed"
    assert rep["tls"]["failed"] == 1
    assert "certificate verify failed" in r.stderr
    # The right CA, but a name the certificate does not have.
    r = echoload("--tls", "--tls-ca", certs["server"][0], "--tls-name",
                 "example.com", "-d", "500ms", addr)
    assert r.returncode == 1 and "certificate verify failed" in r.stderr
    for name in ("localhost", "127.0.0.1"):
        r = echoload("--tls", "--tls-ca", certs["server"][0], "--tls-name",
                     name, "-d", "500ms", addr)
        assert r.returncode == 0, (name, r.stdout + r.stderr)
    r = echoload("--tls", "--tls-no-verify", "-d", "500ms", addr)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mtls(start_echod, certs):  # noqa: F811
    mport = free_port()
    d = start_echod(tls_config(certs, mport, "client_ca = %s\n" %
                               certs["ca"][0]))
    base = ["--tls", "--tls-ca", certs["server"][0], "-d", "500ms", "-c",
            "2", "--json"]
    r = echoload(*base, "--tls-cert", certs["client"][0], "--tls-key",
                 certs["client"][1], target(d.tls[0]))
    assert r.returncode == 0, r.stdout + r.stderr
    # Without a certificate, or with one echod's CA did not sign: TLS 1.3
    # finishes the client's side of the handshake before echod refuses it,
    # so echoload sees the refusal as an alert and a closed connection.
    for cert in ([], ["--tls-cert", certs["rogue"][0], "--tls-key",
                      certs["rogue"][1]]):
        r = echoload(*base, *cert, target(d.tls[0]))
        assert r.returncode == 1, r.stdout
        rep = json.loads(r.stdout)
        assert rep["messages"] == 0
        assert rep["tls"]["failed"] + rep["errors"]["reset"] == 2
    key = ('echod_tls_handshake_failures_total{group="tls",'
           'reason="certificate"}')
    assert settled(mport, key, 4)[key] == 4


def test_handshake_that_never_ends():
    # A listener that never accepts: the TCP connect completes in its
    # backlog, the TLS handshake never does.
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        t0 = time.monotonic()
        r = echoload("--tls", "--tls-no-verify", "-c", "2", "-d", "2s",
                     "--timeout", "500ms", "--json",
                     "127.0.0.1:%d" % srv.getsockname()[1])
        took = time.monotonic() - t0
    assert r.returncode == 1, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    assert rep["failure"] == "TLS handshakes failed"
    assert rep["tls"] == {"handshakes": 0, "resumed": 0, "failed": 2}
    assert took < 10


@pytest.fixture
def bad_tls_echo(certs):  # noqa: F811
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "bad_echo.py"),
                          "corrupt", *certs["server"]],
                         stdout=subprocess.PIPE, text=True)
    yield "127.0.0.1:%s" % p.stdout.readline().strip()
    p.kill()
    p.wait()


@pytest.mark.parametrize("args", [["-m", "stream", "-s", "4k"],
                                  ["-s", "1500", "--reconnect"],
                                  ["-s", "300"]])
def test_catches_corruption_over_tls(bad_tls_echo, certs, args):  # noqa
    r = echoload("--tls", "--tls-ca", certs["server"][0], "-d", "1s",
                 "--json", *args, bad_tls_echo)
    assert r.returncode == 1, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    assert rep["errors"]["mismatched"] >= 1


@pytest.mark.parametrize("args,code,msg", [
    (["--tls-ca", "x"], 64, "the --tls-* options need --tls"),
    (["--tls", "--tls-cert", "x"], 64, "--tls-cert and --tls-key go"),
    (["--tls", "-u"], 64, "--tls is for TCP"),
    (["--tls", "--tls-ca", "x", "--tls-no-verify"], 64, "alternatives"),
    (["--tls", "--tls-version", "1.1"], 64, "must be 1.2 or 1.3"),
    (["--reconnect", "-m", "stream"], 64, "-m churn's old name"),
    (["--tls", "--tls-ca", "/nonexistent/ca.pem"], 66,
     "--tls-ca /nonexistent/ca.pem: No such file"),
    (["--tls", "--tls-ca", "NOTPEM"], 65, "--tls-ca NOTPEM:"),
    (["--tls", "--tls-cert", "NOTPEM", "--tls-key", "NOTPEM"], 65,
     "--tls-cert NOTPEM:"),
])
def test_tls_usage_errors(tmp_path, args, code, msg):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    args = [str(bad) if a == "NOTPEM" else a for a in args]
    msg = msg.replace("NOTPEM", str(bad))
    r = echoload(*args, "127.0.0.1:9")
    assert r.returncode == code, r.stderr
    assert msg in r.stderr
