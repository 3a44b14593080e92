"""A small HTTP/1.1 client on asyncio streams and httptools (the parser uvicorn uses), cheap enough to
drive thousands of requests per second from one Python process: keep-alive, Content-Length or chunked
bodies, and streamed bodies for server-sent events. Loopback only."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import httptools


def raw_request(method: str, path: str, host: str, headers: dict[str, str] | None = None, body: bytes = b"",
                close: bool = False) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Response:
    __slots__ = ("headers", "body", "complete", "on_chunk", "keep_body")

    def __init__(self, on_chunk: Callable[[bytes], None] | None = None) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.body = bytearray()
        self.complete = False
        self.on_chunk = on_chunk

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        if self.on_chunk is not None:
            self.on_chunk(body)
        else:
            self.body += body

    def on_message_complete(self) -> None:
        self.complete = True


class Connection:
    """One keep-alive connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        if not host.startswith("127."):
            raise ValueError("loopback targets only")
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        return cls(reader, writer)

    async def request(self, raw: bytes, on_chunk: Callable[[bytes], None] | None = None
                      ) -> tuple[int, dict[bytes, bytes], bytes, bool]:
        """Send ``raw``, read the whole response: (status, headers, body, keep_alive)."""
        response = _Response(on_chunk)
        parser = httptools.HttpResponseParser(response)
        self.writer.write(raw)
        while not response.complete:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionResetError("connection closed before the response ended")
            parser.feed_data(data)
        return parser.get_status_code(), response.headers, bytes(response.body), parser.should_keep_alive()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class SseStream:
    """A GET whose body never ends: ``on_event(name, data, t)`` for each server-sent event."""

    def __init__(self, on_event: Callable[[str, str], None]) -> None:
        self.on_event = on_event
        self.buffer = ""
        self.status = 0

    def feed(self, chunk: bytes) -> None:
        self.buffer += chunk.decode()
        while "\n\n" in self.buffer:
            block, self.buffer = self.buffer.split("\n\n", 1)
            name, data = "message", []
            for line in block.split("\n"):
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
            if data:
                self.on_event(name, "\n".join(data))
