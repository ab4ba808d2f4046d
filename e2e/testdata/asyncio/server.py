"""An asyncio HTTP server on the inherited socket (fd 3), the way uvicorn
and aiohttp take one: the event loop sets O_NONBLOCK on it, which every
instance shares. If anything cleared that flag, accept() would block the
whole loop whenever another instance won the race for a connection.

BOOT_DELAY_MS delays serving (a slow release); READY=1 goes to
NOTIFY_SOCKET once it serves; SIGTERM stops it cleanly.
"""
import asyncio
import os
import signal
import socket

active = set()


async def handle(reader, writer):
    active.add(asyncio.current_task())
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            if line in (b"\r\n", b"\n"):
                break
        body = ('{"lang":"python-asyncio","instance":%s,"pid":%d}\n'
                % (os.environ.get("CLUSTERRUN_INSTANCE", "-1"), os.getpid())).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
    finally:
        writer.close()
        active.discard(asyncio.current_task())


async def main():
    delay = int(os.environ.get("BOOT_DELAY_MS", "0"))
    if delay:
        await asyncio.sleep(delay / 1000)
    sock = socket.socket(fileno=3)
    server = await asyncio.start_server(handle, sock=sock)
    addr = os.environ.get("NOTIFY_SOCKET")
    if addr:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as n:
            n.sendto(b"READY=1", addr)
    print("serving on fd 3, O_NONBLOCK set by asyncio", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    # Stop accepting first, and close the server only once connections
    # accepted a moment ago have reached their handler: asyncio attaches an
    # accepted connection to its server in a later step, which fails on a
    # closed server and leaves the connection to be reset at exit (Python
    # 3.11, Server._attach). Then let every handler finish (3.11's
    # wait_closed does not wait for them).
    asyncio.get_running_loop().remove_reader(sock.fileno())
    await asyncio.sleep(0.2)
    server.close()
    if active:
        await asyncio.wait(set(active), timeout=5)


asyncio.run(main())
