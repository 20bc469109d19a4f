"""The Python reference: an asyncio echo server, TCP and UDP on one port,
where the socket-programming exercise echod grew from would go next.
usage: asyncio_echo.py PORT"""
import asyncio
import sys


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport

    def data_received(self, data):
        self.t.write(data)


class UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.t = transport

    def datagram_received(self, data, addr):
        self.t.sendto(data, addr)


async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", port, backlog=4096)
    await loop.create_datagram_endpoint(UdpEcho,
                                        local_addr=("127.0.0.1", port))
    print("asyncio_echo: ready on %d" % port, file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main(int(sys.argv[1])))
