"""A real PgBouncer (Debian's package) in transaction pooling mode, started by the tests in front of the
test PostgreSQL: the production set-up for several workers and hosts sharing one database."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import URL

from tests.support import free_port, until_sync


@contextmanager
def pgbouncer_in_front_of(server: URL):
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).exists():
        raise RuntimeError("pgbouncer is not installed (apt-get install pgbouncer): the test command installs it")
    folder = Path(tempfile.mkdtemp(prefix="hyperion-pgbouncer-"))
    port = free_port()
    (folder / "userlist.txt").write_text(f'"{server.username or "postgres"}" ""\n')
    (folder / "pgbouncer.ini").write_text(f"""
[databases]
* = host={server.host} port={server.port or 5432}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "userlist.txt"}
pool_mode = transaction
default_pool_size = 20
max_client_conn = 2000
server_reset_query =
ignore_startup_parameters = extra_float_digits,application_name,statement_timeout
logfile = {folder / "pgbouncer.log"}
pidfile = {folder / "pgbouncer.pid"}
""")
    command = [binary, str(folder / "pgbouncer.ini")]
    if os.getuid() == 0:  # PgBouncer refuses to run as root
        shutil.chown(folder, "postgres")
        for path in folder.iterdir():
            shutil.chown(path, "postgres")
        command = ["runuser", "-u", "postgres", "--", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    try:
        def listens() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited at startup: {process.stderr.read().decode()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
            except OSError:
                return False
            return True

        try:
            until_sync(listens, what="pgbouncer listening")
        except AssertionError as error:
            raise RuntimeError(f"pgbouncer did not start: {error}") from None
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(folder, ignore_errors=True)
