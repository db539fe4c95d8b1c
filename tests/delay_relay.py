"""A TCP relay that delays every byte by a fixed time in each direction: latency for the fault tests on a
kernel without ``sch_netem``. ``python tests/delay_relay.py LISTEN_HOST:PORT UPSTREAM_HOST:PORT DELAY_MS``.

Order is kept; the delay is applied per chunk as read, so a stream keeps its pacing shifted by the delay.
"""

from __future__ import annotations

import asyncio
import sys
import time


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, chunk = await queue.get()
            if not chunk:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(deliver())
    try:
        while True:
            chunk = await reader.read(65536)
            await queue.put((time.monotonic() + delay, chunk))
            if not chunk:
                break
    except (ConnectionError, OSError):
        await queue.put((0.0, b""))
    try:
        await sender
    except (ConnectionError, OSError):
        pass


async def main(listen: str, upstream: str, delay_ms: float) -> None:
    listen_host, listen_port = listen.rsplit(":", 1)
    up_host, up_port = upstream.rsplit(":", 1)
    delay = delay_ms / 1000.0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(up_host, int(up_port))
        except OSError:
            writer.close()
            return
        await asyncio.gather(pump(reader, up_writer, delay), pump(up_reader, writer, delay),
                             return_exceptions=True)

    server = await asyncio.start_server(handle, listen_host, int(listen_port), backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
