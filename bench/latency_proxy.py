"""A TCP proxy on loopback between the servers and PostgreSQL that delays every chunk coming back from
PostgreSQL by a fixed time (default 100 ms): each query round trip, BEGIN, COMMIT and connection set-up
then waits that long, as with a distant or busy database, while PostgreSQL itself does no more work.

Chunks keep their order and are delayed from the moment they arrive, so pipelined traffic is not
serialised (a chunk never waits for the previous chunk's delay on top of its own). Client→server bytes
pass at once. Only 127.0.0.1 is listened on.

    python -m bench.latency_proxy --port 6543 --upstream 127.0.0.1:5432 --delay 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections import deque


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _delayed_pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    pending: deque[tuple[float, bytes]] = deque()
    arrived = asyncio.Event()
    finished = False

    async def read() -> None:
        nonlocal finished
        try:
            while data := await reader.read(65536):
                pending.append((loop.time() + delay, data))
                arrived.set()
        except (ConnectionError, OSError):
            pass
        finally:
            finished = True
            arrived.set()

    reading = asyncio.create_task(read())
    try:
        while True:
            if not pending:
                if finished:
                    break
                arrived.clear()
                await arrived.wait()
                continue
            due, data = pending[0]
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            pending.popleft()
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        reading.cancel()
        with contextlib.suppress(Exception):
            writer.close()


async def serve(port: int, upstream_host: str, upstream_port: int, delay: float) -> None:
    async def handle(client_reader, client_writer) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(upstream_host, upstream_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, server_writer),
                             _delayed_pipe(server_reader, client_writer, delay))

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"latency proxy on 127.0.0.1:{port} -> {upstream_host}:{upstream_port}, +{delay * 1000:.0f} ms "
          f"per chunk from the database", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", default="127.0.0.1:5432", help="PostgreSQL host:port (loopback only)")
    parser.add_argument("--delay", type=float, default=0.1, help="seconds added to each chunk from the database")
    args = parser.parse_args()
    host, _, port = args.upstream.rpartition(":")
    if not host.startswith("127.") and host != "localhost":
        raise SystemExit("the latency proxy only forwards to a loopback address")
    import uvloop

    uvloop.run(serve(args.port, host, int(port), args.delay))


if __name__ == "__main__":
    main()
