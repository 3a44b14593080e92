"""The server's own HTTP protocol (hyperion/httpprotocol.py) against the real server: connections that never
finish their headers (slowloris) are closed after the header timeout, beyond a cap the oldest of them is
closed, they never count against --limit-concurrency (the site and /healthz keep answering 200 while more
of them are open than the limit), and a request beyond the limit gets the site's 503 page with Retry-After.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from tests import support

SLOW_START = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "  # a request whose headers never end


def _port(server: support.RunningServer) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


async def _closed(reader: asyncio.StreamReader) -> bytes:
    """Wait for the server to close the connection; what it sent before."""
    return await asyncio.wait_for(reader.read(), timeout=support.EVENT_WITHIN)


async def _slow_clients(port: int, count: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    clients = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(SLOW_START)
        await writer.drain()
        clients.append((reader, writer))
    return clients


async def test_slow_header_connections_beyond_the_limit_leave_the_site_and_healthz_answering(tmp_path):
    """Four times as many slow-header connections as --limit-concurrency: beyond the cap the oldest are
    closed, the others stay open (their timeout is long here), and meanwhile real requests and /healthz get
    200: connections without a request do not count against the limit."""
    limit, cap, count = 10, 25, 40
    env = {"SERVER_HEADER_TIMEOUT": "300", "SERVER_MAX_IDLE_CONNECTIONS": str(cap)}
    with support.uvicorn_server(tmp_path, env=env, extra_args=["--limit-concurrency", str(limit)]) as server:
        slow = await _slow_clients(_port(server), count)
        # Each connection past the cap closes the oldest: the server has accepted all of them when the
        # first count - cap are closed.
        shed = await asyncio.gather(*(_closed(reader) for reader, _writer in slow[:count - cap]))
        still_open = slow[count - cap:]
        for _reader, writer in still_open:  # one more header line each, as a slowloris does
            writer.write(b"x\r\nX-More: ")
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            home, health = await client.get("/"), await client.get("/healthz")
            burst = await asyncio.gather(*(client.get("/healthz") for _ in range(limit)))
        open_after = sum(not reader.at_eof() for reader, _writer in still_open)
        for _reader, writer in slow:
            writer.close()
        log = server.log()
    assert all(sent == b"" or (sent.startswith(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n")
                               and b"\r\npermissions-policy: " in sent and sent.endswith(b"\r\n\r\n"))
               for sent in shed), shed
    assert home.status_code == 200 and health.status_code == 200, (home.status_code, health.text)
    assert [response.status_code for response in burst] == [200] * limit
    # More slow connections than the limit stayed open while those requests were served. (Each real
    # request's connection, idle after its answer, joined the connections without a request and closed the
    # oldest slow one: at most limit + 1 of them.)
    assert open_after >= cap - (limit + 1) > limit, open_after
    assert "Traceback" not in log, log


async def test_a_connection_whose_headers_do_not_finish_is_closed_after_the_header_timeout(tmp_path):
    """SERVER_HEADER_TIMEOUT=1: a connection that sends nothing, one that sends a header line now and then,
    and a kept-alive connection whose next request stalls are all closed about a second after their request
    began (the ones that had begun a request get a 408); a normal request is unaffected."""
    timeout = 1.0
    with support.uvicorn_server(tmp_path, env={"SERVER_HEADER_TIMEOUT": str(timeout)}) as server:
        port = _port(server)
        opened = time.monotonic()
        silent_reader, silent = await asyncio.open_connection("127.0.0.1", port)
        dribbling_reader, dribbling = await asyncio.open_connection("127.0.0.1", port)
        dribbling.write(SLOW_START)

        async def dribble() -> None:
            while not dribbling_reader.at_eof():
                dribbling.write(b"x\r\nX-More: ")
                await asyncio.sleep(0.2)  # simulates a slowloris client: a header line every 200 ms

        dribbler = asyncio.create_task(dribble())
        silent_sent = await _closed(silent_reader)
        silent_after = time.monotonic() - opened
        dribbling_sent = await _closed(dribbling_reader)
        dribbling_after = time.monotonic() - opened
        await dribbler

        kept_reader, kept = await asyncio.open_connection("127.0.0.1", port)
        kept.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = await asyncio.wait_for(kept_reader.readuntil(b"\r\n0\r\n\r\n"),  # the chunked answer's end
                                       timeout=support.EVENT_WITHIN)
        began = time.monotonic()
        kept.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the blank line never comes
        kept_sent = await _closed(kept_reader)
        kept_after = time.monotonic() - began
        for writer in (silent, dribbling, kept):
            writer.close()

        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            served = await client.get("/healthz")
    assert first.startswith(b"HTTP/1.1 200 ")
    assert silent_sent == b"" and silent_after >= timeout * 0.9, silent_after
    assert dribbling_sent.startswith(b"HTTP/1.1 408 ") and dribbling_after >= timeout * 0.9, dribbling_after
    assert kept_sent.startswith(b"HTTP/1.1 408 ") and kept_after >= timeout * 0.9, kept_after
    assert b"\r\npermissions-policy: " in kept_sent and b"camera=()" in kept_sent
    assert b"\r\ncontent-security-policy: " in kept_sent
    assert served.status_code == 200


async def test_bytes_that_are_not_http_get_a_400_with_the_sites_security_headers(tmp_path):
    with support.uvicorn_server(tmp_path) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(server))
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        answer = await _closed(reader)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 400 ") and answer.endswith(b"Invalid HTTP request received."), answer
    assert b"\r\npermissions-policy: " in answer and b"\r\ncontent-security-policy: " in answer, answer
    assert b"\r\nx-content-type-options: nosniff\r\n" in answer, answer


async def test_beyond_the_limit_the_server_answers_the_site_503_page_with_retry_after(tmp_path):
    """With as many requests in progress as --limit-concurrency (posts whose bodies never come), the next
    request gets a 503 at once: Retry-After, the site's HTML page, the connection closed."""
    limit = 2
    # The bodies' timeout is long: the held posts must stay in progress (waiting for their body) until the
    # refused request is answered, however loaded the machine.
    env = {"SERVER_BODY_TIMEOUT": "300"}
    with support.uvicorn_server(tmp_path, env=env,
                                extra_args=["--limit-concurrency", str(limit), "--log-level", "trace"]) as server:
        arrived = server.log().count("Started scope=")
        held = []
        for _ in range(limit):
            reader, writer = await asyncio.open_connection("127.0.0.1", _port(server))
            writer.write(b"POST /account/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n")
            held.append((reader, writer))
        await support.until(lambda: server.log().count("Started scope=") >= arrived + limit,
                            what="the held requests reaching the application")
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            lost = server.log().count("HTTP connection lost")
            refused = await client.get("/healthz")
            for _reader, writer in held:
                writer.close()
            await support.until(lambda: server.log().count("HTTP connection lost") >= lost + limit + 1,
                                what="the held connections and the refused one closed")
            served = await client.get("/healthz")
    assert refused.status_code == 503
    assert refused.headers["Retry-After"].isdigit()
    assert refused.headers["Content-Type"] == "text/html; charset=utf-8"
    assert refused.headers["Connection"] == "close"
    assert refused.text.startswith("<!doctype html>") and "The site is very busy" in refused.text
    assert "/static/css/site.css" in refused.text and refused.headers["X-Content-Type-Options"] == "nosniff"
    assert served.status_code == 200
