"""echoload -m churn (issue 16): a connection per message, closed by the
client or (--server-close) by the server, in closed loop or at an
open-loop connection --rate; the connect, first-byte and total times;
servers that corrupt, cut short or never close caught; and --timeline,
whose rows add up to the report."""
import csv
import json
import socket
import subprocess

import pytest

from test_echoload import bad_echo, echoload, target  # noqa: F401
from test_guard import config, free_port, settled


@pytest.fixture
def churnd(start_echod):
    mport = free_port()
    d = start_echod(config(metrics_port=mport))
    d.mport = mport
    return d


def churn(d, *args):
    r = echoload("-m", "churn", "--json", *args, target(d.tcp[0]))
    assert r.stdout.startswith("{"), r.stderr
    return r, json.loads(r.stdout)


def time_wait(port):
    """TIME-WAIT sockets of connections to port: (ends on the server's
    side, ends on the client's).  The side that sends the first FIN
    keeps it."""
    out = subprocess.run(["ss", "-Htan", "state", "time-wait"],
                         capture_output=True, text=True, check=True).stdout
    srv = cli = 0
    for line in out.splitlines():
        f = line.split()
        local, peer = f[-2], f[-1]
        srv += local.endswith(":%d" % port)
        cli += peer.endswith(":%d" % port)
    return srv, cli


@pytest.mark.parametrize("server_close", [False, True])
def test_churn_closed_loop(churnd, server_close):
    extra = ["--server-close"] if server_close else []
    r, rep = churn(churnd, "-c", "8", "-t", "2", "-d", "1s", "-s", "1-3000",
                   *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    c = rep["churn"]
    assert rep["mode"] == "churn" and c["server_close"] is server_close
    assert rep["errors"] == {"mismatched": 0, "reset": 0, "timed_out": 0,
                             "connect_failed": 0, "overloaded": 0}
    assert c["connections"] == rep["messages"] > 100
    assert rep["connections_up"] >= rep["messages"]
    # Each phase timed for (about) every connection of the window, in
    # order: connected, then the first byte, then the whole.
    for ph in ("connect_us", "first_byte_us"):
        assert abs(c[ph]["count"] - rep["messages"]) <= 16, ph
    assert c["connect_us"]["p50"] <= c["first_byte_us"]["p50"] <= \
        rep["latency_us"]["p50"]
    # A connection a message, each its own: echod accepted every one, and
    # those still connecting when the run ended (at most one a client).
    got = 'echod_received_bytes_total{group="default",proto="tcp"}'
    m = settled(churnd.mport, got, rep["bytes_sent"])
    assert m[got] == rep["bytes_sent"]
    key = 'echod_connections_accepted_total{group="default"}'
    assert 0 <= m[key] - rep["connections_up"] <= 8
    # The client's FIN comes first either way (after the echo, or with
    # --server-close before it, the server's close after the echo), so
    # TIME-WAIT stays on the client's side, none on echod's.
    srv, cli = time_wait(churnd.tcp[0][1])
    assert srv == 0 and cli > 0


def test_churn_open_loop_rate(churnd):
    r, rep = churn(churnd, "-r", "400", "-c", "100", "-d", "2s")
    assert r.returncode == 0, r.stdout + r.stderr
    assert rep["rate"] == 400 and rep["ramp_seconds"] < 0.5
    # Paced: as many connections as the rate asks, no more (generous
    # bounds; the accuracy is the benchmark's).
    assert 0.8 * 800 <= rep["churn"]["connections"] <= 1.05 * 800
    assert rep["errors"]["overloaded"] == 0


def test_churn_open_loop_overload():
    # A server that takes connections (its backlog does) and never reads:
    # every client stays busy, and connections due then are counted.
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(64)
        r = echoload("-m", "churn", "-r", "200", "-c", "2", "-d", "1s",
                     "--timeout", "3s", "--json",
                     "127.0.0.1:%d" % srv.getsockname()[1])
    assert r.returncode == 1
    rep = json.loads(r.stdout)
    assert rep["errors"]["overloaded"] >= 100
    assert rep["failure"] in ("connections came due while every client "
                              "was busy", "echoes did not come back in time")


@pytest.mark.parametrize("mode,args,key,why", [
    ("corrupt", ["-s", "1500"], "mismatched",
     "echoed data did not match what was sent"),
    ("short", [], "reset", "connections were reset or closed"),
    ("short", ["--server-close"], "reset", "connections were reset or "
     "closed"),
    ("linger", ["--server-close", "--timeout", "500ms"], "timed_out",
     "echoes did not come back in time"),
])
def test_churn_catches_a_failing_server(bad_echo, mode, args, key, why):  # noqa
    r = echoload("-m", "churn", "-c", "2", "-d", "1s", "--json", *args,
                 bad_echo(mode))
    assert r.returncode == 1, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    assert rep["errors"][key] >= 1
    assert rep["failure"] == why


def test_churn_client_close_needs_no_server_close(bad_echo):  # noqa: F811
    # The server that never closes fails --server-close (above), not the
    # client's own close.
    r = echoload("-m", "churn", "-c", "2", "-d", "1s", "--json",
                 bad_echo("linger"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["messages"] > 10


@pytest.mark.parametrize("args", [["-c", "4"], ["-m", "churn", "-c", "4"]])
def test_timeline_adds_up(churnd, tmp_path, args):
    path = tmp_path / "t.csv"
    r = echoload("-d", "3s", "--json", "--timeline", str(path), *args,
                 target(churnd.tcp[0]))
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["seconds", "messages", "messages_per_sec",
                             "mb_per_sec", "p50_us", "p99_us", "p999_us",
                             "errors"]
    # A row a second of the window, the last where it ends.
    assert 3 <= len(rows) <= 4
    t = [float(x["seconds"]) for x in rows]
    assert t == sorted(t) and abs(t[-1] - rep["seconds"]) < 0.01
    assert all(0.5 <= b - a <= 2.0 for a, b in zip(t, t[1:-1]))
    assert sum(int(x["messages"]) for x in rows) == rep["messages"]
    assert sum(int(x["errors"]) for x in rows) == 0
    for x in rows:
        if int(x["messages"]):
            assert 0 < int(x["p50_us"]) <= int(x["p99_us"]) <= \
                int(x["p999_us"]) <= rep["latency_us"]["max"]


def test_timeline_file_that_cannot_be_made():
    r = echoload("--timeline", "/nonexistent/dir/t.csv", "-d", "1s",
                 "127.0.0.1:9")
    assert r.returncode == 73
    assert "--timeline /nonexistent/dir/t.csv: No such file" in r.stderr


@pytest.mark.parametrize("args,msg", [
    (["-m", "churn", "-u"], "churn mode is for TCP"),
    (["--server-close"], "--server-close is for churn mode"),
    (["--reconnect", "-m", "stream"], "--reconnect is -m churn's old name"),
    (["-m", "burst"], "must be pingpong, pipeline, stream or churn"),
])
def test_churn_usage_errors(args, msg):
    r = echoload(*args, "127.0.0.1:9")
    assert r.returncode == 64, r.stderr
    assert msg in r.stderr
