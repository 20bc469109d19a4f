"""scripts/plot (issue 16): PNG charts of echoload's --hgrm and
--timeline files, from fixtures made by real runs (tests/live/fixtures);
and its refusals."""
import os
import shutil
import struct
import subprocess
import zlib

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("TESTS_SRCDIR", HERE)
PLOT = os.path.join(SRCDIR, "..", "..", "scripts", "plot")
FIX = os.path.join(SRCDIR, "fixtures")

pytestmark = pytest.mark.skipif(shutil.which("gnuplot") is None,
                                reason="no gnuplot (scripts/deps installs "
                                "gnuplot-nox)")


def plot(*args):
    return subprocess.run([PLOT, *args], capture_output=True, text=True,
                          timeout=60)


def png_read(path):
    """A PNG's width, height and rows of (r, g, b) pixels; only the form
    gnuplot's pngcairo writes (8-bit RGB or RGBA, not interlaced)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color, _, _, lace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and lace == 0
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], None
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(
            raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        up = prev or bytearray(stride)
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            c = up[i - bpp] if i >= bpp else 0
            b = up[i]
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pr) & 255
        rows.append([tuple(line[i:i + 3]) for i in range(0, stride, bpp)])
        prev = line
    return w, h, rows


# gnuplot's first three line colours, for the first, second, third line.
RUN_COLOURS = [(0x94, 0x00, 0xd3), (0x00, 0x9e, 0x73), (0x56, 0xb4, 0xe9)]


@pytest.mark.parametrize("kind,files,colours", [
    ("latency", ["closed.hgrm"], 1),
    ("latency", ["closed.hgrm", "open.hgrm"], 2),
    # One timeline: messages/s, then its p50, p99 and p99.9.
    ("timeline", ["closed.csv"], 3),
    ("timeline", ["closed.csv", "open.csv"], 2),
])
def test_plot_makes_a_png(tmp_path, kind, files, colours):
    out = tmp_path / "chart.png"
    r = plot("-s", "640x360", "-t", "it's a test", kind, str(out),
             *["run %d=%s" % (i, os.path.join(FIX, f))
               for i, f in enumerate(files)])
    assert r.returncode == 0, r.stderr
    w, h, rows = png_read(out)
    assert (w, h) == (640, 360)
    # Each line drawn, in its colour: many pixels of it (its key's sample
    # alone is some 40), not an empty frame.
    for colour in RUN_COLOURS[:colours]:
        assert sum(row.count(colour) for row in rows) > 200, colour


def test_plot_text(tmp_path):
    # "-": a text chart on standard output, the runs' keys in it.
    r = plot("latency", "-", "echod=" + os.path.join(FIX, "closed.hgrm"),
             "epoll=" + os.path.join(FIX, "open.hgrm"))
    assert r.returncode == 0, r.stderr
    # gnuplot's dumb terminal starts with a form feed's empty line.
    lines = r.stdout.splitlines()
    assert len(lines) in (24, 25) and max(len(x) for x in lines) <= 79
    assert "echod ****" in r.stdout and "epoll ####" in r.stdout
    assert "99.9%" in r.stdout
    # A .txt file the same.
    out = tmp_path / "chart.txt"
    r = plot("-s", "100x30", "latency", str(out),
             os.path.join(FIX, "closed.hgrm"))
    assert r.returncode == 0, r.stderr
    assert len(out.read_text().splitlines()) in (30, 31)


@pytest.mark.parametrize("args,code,msg", [
    (["latency", "OUT"], 64, "usage:"),
    (["bars", "OUT", "x"], 64, "usage:"),
    (["-s", "huge", "latency", "OUT", "FIX/closed.hgrm"], 64, "-s huge"),
    (["latency", "OUT", "/nonexistent.hgrm"], 66,
     "/nonexistent.hgrm: cannot be read"),
    (["latency", "OUT", "FIX/closed.csv"], 65, "not an .hgrm file"),
    (["timeline", "OUT", "FIX/closed.hgrm"], 65, "not a timeline file"),
])
def test_plot_refuses(tmp_path, args, code, msg):
    out = tmp_path / "chart.png"
    args = [str(out) if a == "OUT" else a.replace("FIX", FIX) for a in args]
    r = plot(*args)
    assert r.returncode == code, r.stderr
    assert msg in r.stderr
    assert not out.exists()
