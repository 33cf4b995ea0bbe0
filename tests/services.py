"""PostgreSQL and Redis for a test or bench run, on any Debian machine.

The suite and the benches use real servers: the ones named by ``YUNBANG_TEST_PG`` (default
``postgresql://postgres@127.0.0.1:5432/test``) and ``YUNBANG_TEST_REDIS`` (default
``redis://127.0.0.1:6379/0``) when they answer; otherwise their own, started here from Debian's
packages (``make services`` installs ``postgresql`` and ``redis-server`` when their programs are
missing) on free ports under a temporary directory, and stopped at the end. The environment
variables are then set to the servers started, for this process and its children.

Used by ``tests/conftest.py`` (so plain ``pytest`` works) and, for the benches and anything else,
as a wrapper: ``python -m tests.services -- COMMAND ...`` runs the command with both servers there.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import asyncpg

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_DEFAULT = "redis://127.0.0.1:6379/0"
START_TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_answers(url: str) -> bool:
    """A connection and a query, not only an open port: a server that refuses our user (a fresh
    Debian cluster asks for a password) is no use to the tests either."""
    async def check() -> bool:
        try:
            conn = await asyncpg.connect(url, timeout=3)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            return False
        try:
            return bool(await conn.fetchval("select 1") == 1)
        finally:
            await conn.close()

    return asyncio.run(check())


def redis_answers(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _as_postgres_user(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the packages' ``postgres`` user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise RuntimeError(f"PostgreSQL's {name} is not installed: run `make services` (Debian's postgresql package)")


def _wait(check: Callable[[], bool], what: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited at start:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer within {START_TIMEOUT_S:.0f} s:\n{log.read_text(errors='replace')[-2000:]}")


class Services:
    """The servers this run started (none when the configured ones answer)."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.scratch: Path | None = None
        self.started: list[str] = []

    def _dir(self) -> Path:
        if self.scratch is None:
            self.scratch = Path(tempfile.mkdtemp(prefix="yb-services-"))
            os.chmod(self.scratch, 0o755)
        return self.scratch

    def start_postgres(self) -> str:
        data = self._dir() / "pg"
        data.mkdir()
        log = self._dir() / "pg.log"
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
        subprocess.run(_as_postgres_user([_postgres_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                                          "-E", "UTF8", "--no-sync"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        port = _free_port()
        with log.open("wb") as out:
            proc = subprocess.Popen(_as_postgres_user([
                _postgres_bin("postgres"), "-D", str(data), "-p", str(port), "-k", str(data),
                "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off", "-c", "max_connections=200"]), stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(("PostgreSQL", proc))
        admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        _wait(lambda: postgres_answers(admin), "PostgreSQL", proc, log)

        async def create() -> None:
            conn = await asyncpg.connect(admin)
            try:
                await conn.execute("create database test")
            finally:
                await conn.close()

        asyncio.run(create())
        self.started.append(f"PostgreSQL on 127.0.0.1:{port}")
        return f"postgresql://postgres@127.0.0.1:{port}/test"

    def start_redis(self) -> str:
        program = shutil.which("redis-server")
        if program is None:
            raise RuntimeError("redis-server is not installed: run `make services` (Debian's redis-server package)")
        port = _free_port()
        log = self._dir() / "redis.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([program, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "no", "--dir", str(self._dir())],
                                    stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(("Redis", proc))
        url = f"redis://127.0.0.1:{port}/0"
        _wait(lambda: redis_answers(url), "Redis", proc, log)
        self.started.append(f"Redis on 127.0.0.1:{port}")
        return url

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs = []
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None


def ensure() -> Services:
    """Make ``YUNBANG_TEST_PG`` and ``YUNBANG_TEST_REDIS`` name servers that answer, starting our
    own for those that do not. Call ``stop()`` on the result at the end."""
    services = Services()
    try:
        pg = os.environ.get("YUNBANG_TEST_PG") or PG_DEFAULT
        if not postgres_answers(pg):
            pg = services.start_postgres()
        redis = os.environ.get("YUNBANG_TEST_REDIS") or REDIS_DEFAULT
        if not redis_answers(redis):
            redis = services.start_redis()
    except BaseException:
        services.stop()
        raise
    os.environ["YUNBANG_TEST_PG"], os.environ["YUNBANG_TEST_REDIS"] = pg, redis
    if services.started:
        print(f"tests/services.py: started {', '.join(services.started)} for this run "
              f"(the configured ones did not answer)", file=sys.stderr, flush=True)
    return services


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: python -m tests.services -- COMMAND [ARG ...]", file=sys.stderr)
        return 2
    services = ensure()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            return subprocess.call(argv)
        return 130
    finally:
        services.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
