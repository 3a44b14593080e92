"""A throw-away PostgreSQL for the fault harness: its own data folder in /tmp, a free port on 127.0.0.1,
started, stopped and restarted with the installed binaries (as the ``postgres`` OS user when we are root,
since PostgreSQL refuses to run as root), and removed at the end whatever happens.

Same recipe as scripts/postgres-for-tests.sh. The server on 127.0.0.1:5432 is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import asyncpg

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin/initdb"


def pg_bin() -> Path:
    candidates = sorted(Path("/").glob(PG_BIN_GLOB.lstrip("/")),
                        key=lambda path: [int(part) if part.isdigit() else part for part in path.parts])
    if not candidates:
        raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
    return candidates[-1].parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawayPostgres:
    """``with ThrowawayPostgres() as pg:`` a running server at ``pg.admin_url``; gone afterwards."""

    def __init__(self, *, max_connections: int = 300) -> None:
        self.bin = pg_bin()
        self.port = free_port()
        self.max_connections = max_connections
        self.folder = Path(tempfile.mkdtemp(prefix="hyperion-faults-pg."))
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self.running = False

    # URLs
    def url(self, database: str = "postgres", driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def admin_url(self) -> str:
        return self.url("postgres", "postgresql")

    # Life cycle
    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run([*self.as_postgres, *args], check=True, timeout=timeout,  # noqa: S603 - fixed binaries
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def _options(self) -> str:
        return (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                f"-c max_connections={self.max_connections} -c fsync=off")

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--no-sync")

    def start(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", self._options(), "start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def restart(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60",
                  "-o", self._options(), "-l", str(self.log), "restart")
        self.running = True

    def __enter__(self) -> ThrowawayPostgres:
        try:
            self.init()
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        if self.data.exists():
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):  # not running
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop",
                          timeout=30)
        self.running = False
        shutil.rmtree(self.folder, ignore_errors=True)

    # Helpers
    async def execute(self, statement: str, database: str = "postgres") -> None:
        connection = await asyncpg.connect(host="127.0.0.1", port=self.port, user="postgres", database=database,
                                           timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    async def accepts_connections(self) -> bool:
        try:
            connection = await asyncpg.connect(host="127.0.0.1", port=self.port, user="postgres",
                                               database="postgres", timeout=1)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            return False
        await connection.close()
        return True

    async def wait_accepting(self, within: float = 30) -> float:
        """Poll until a connection succeeds; returns the monotonic time it first did."""
        deadline = time.monotonic() + within
        while not await self.accepts_connections():
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not come back")
            await asyncio.sleep(0.02)
        return time.monotonic()
