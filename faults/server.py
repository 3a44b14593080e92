"""The real site under uvicorn (uvloop, httptools through hyperion/httpprotocol.py, lifespan on), in a child
process the harness can SIGTERM, SIGKILL and restart. Same command line as tests.support.uvicorn_server."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from faults.pg import free_port
from hyperion.httpprotocol import PROTOCOL as HTTP_PROTOCOL

ROOT = Path(__file__).resolve().parent.parent
TROUBLE = ("Traceback", "Event loop is closed", "was never awaited", "garbage collector is trying to clean up")


class AppServer:
    def __init__(self, log_dir: Path, *, env: dict[str, str], extra_args: list[str] | None = None,
                 port: int | None = None) -> None:
        self.log_dir = log_dir
        self.env = env
        self.extra_args = extra_args or []
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.starts = 0
        self.label = f"uvicorn-{secrets.token_hex(3)}-{self.port}"
        self.http = HTTP_PROTOCOL  # "httptools": uvicorn's own, for a comparison

    def start(self, timeout: float = 30) -> None:
        self.starts += 1
        self.log_path = self.log_dir / f"{self.label}-{self.starts}.log"
        child_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "faults.settings", "PYTHONUNBUFFERED": "1",
                     "PYTHONWARNINGS": "default", **self.env}
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "uvicorn", "hyperion.asgi:application", "--host", "127.0.0.1",
                 "--port", str(self.port), "--loop", "uvloop", "--http", self.http, "--ws", "none",
                 "--lifespan", "on",
                 *self.extra_args],
                cwd=ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited at startup:\n{self.log()}")
            try:
                httpx.get(f"{self.base_url}/static/css/site.css", timeout=1)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"uvicorn did not start:\n{self.log()}") from None
                time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def logs(self) -> str:
        """Every log of every start of this server."""
        return "".join(path.read_text(errors="replace") for path in sorted(self.log_dir.glob(f"{self.label}-*.log")))

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> int:
        """SIGKILL: no shutdown of any kind."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        return self.process.wait(10) if self.process else 0

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM and wait (SIGKILL after ``timeout``)."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> AppServer:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.terminate()
