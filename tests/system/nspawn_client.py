"""Client side of tests/nspawn.sh, run inside the container's network
namespace: echo over TCP and UDP, or stop echod while data is in flight.

usage: nspawn_client.py echo PORT
       nspawn_client.py drain PORT LEADER-PID UNIT"""
import os
import socket
import subprocess
import sys


def echo(port):
    for host, fam in (("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)):
        data = os.urandom(100000)
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect((host, port))
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                got += b
        assert got == data, "tcp %s: %d of %d bytes" % (host, len(got),
                                                        len(data))
        with socket.socket(fam, socket.SOCK_DGRAM) as u:
            u.settimeout(5)
            u.connect((host, port))
            d = os.urandom(1400)
            u.send(d)
            assert u.recv(65536) == d, "udp %s" % host
    print("echo ok over tcp and udp, ipv4 and ipv6")


def drain(port, leader, unit):
    """Megabytes in flight when the stop comes: all must come back."""
    data = os.urandom(2 << 20)
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    # Not reading, so all of it is in socket buffers and echod's output
    # (paused at buffer_limit) when the stop comes.
    s.sendall(data)
    subprocess.run(["nsenter", "-t", leader, "-a", "systemctl", "stop",
                    "--no-block", unit], check=True)
    got = bytearray()
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        got += b
    s.close()
    assert bytes(got) == data, "drain: %d of %d bytes back" % (len(got),
                                                               len(data))
    print("drain ok: all %d bytes came back before the close" % len(data))


if sys.argv[1] == "echo":
    echo(int(sys.argv[2]))
else:
    drain(int(sys.argv[2]), sys.argv[3], sys.argv[4])
