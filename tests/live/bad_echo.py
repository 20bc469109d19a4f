"""A deliberately broken echo server for testing echoload.

Usage: bad_echo.py MODE [CERT KEY]   (MODE: corrupt, reorder, close,
short (all but the last byte of the first read, then close), linger
(never close after the client's EOF), udp-corrupt, udp-drop; with CERT
and KEY the TCP modes speak TLS).  Binds
127.0.0.1 port 0, prints the port on stdout, serves until killed."""
import socket
import ssl
import sys
import threading
import time

mode = sys.argv[1]
TLS = None
if len(sys.argv) == 4:
    TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    TLS.load_cert_chain(sys.argv[2], sys.argv[3])


def tcp_client(conn):
    seen = 0
    if TLS is not None:
        try:
            conn = TLS.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            conn.close()
            return
    with conn:
        while True:
            try:
                data = conn.recv(65536)
            except (ssl.SSLError, OSError):
                return
            if not data:
                while mode == "linger":
                    time.sleep(60)
                return
            if mode == "corrupt" and seen <= 1000 < seen + len(data):
                b = bytearray(data)
                b[1000 - seen] ^= 0x20          # one flipped bit
                data = bytes(b)
            if mode == "reorder" and len(data) >= 2:
                data = data[1:2] + data[0:1] + data[2:]
            if mode == "close" and seen > 5000:
                return
            if mode == "short":
                conn.sendall(data[:-1])
                return
            seen += len(data)
            conn.sendall(data)


def tcp_main():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(128)
    print(srv.getsockname()[1], flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=tcp_client, args=(conn,), daemon=True).start()


def udp_main():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    print(u.getsockname()[1], flush=True)
    n = 0
    while True:
        data, peer = u.recvfrom(70000)
        n += 1
        if mode == "udp-drop" and n % 2 == 0:
            continue
        if mode == "udp-corrupt" and n % 5 == 0:
            data = data[:-1] + bytes([data[-1] ^ 1])
        u.sendto(data, peer)


if mode.startswith("udp"):
    udp_main()
else:
    tcp_main()
