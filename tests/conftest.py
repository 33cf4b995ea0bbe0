"""Fixtures that start real parts: a migrated, demo-seeded SQLite file or PostgreSQL database
per test (cloned from a template made once per run), and the real app on a real port."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.config import Settings
from server.db import Database
from server.domain.clock import ManualClock
from server.migrate import upgrade
from server.seed import seed_demo
from tests import services

# the PostgreSQL and Redis configured when they answer, else ones started for this run (tests/services.py)
SERVICES = services.ensure()
PG_ADMIN = os.environ["YUNBANG_TEST_PG"]
REDIS_URL = os.environ["YUNBANG_TEST_REDIS"]
RUN = uuid.uuid4().hex[:8]
# Monday 2026-11-23 10:00 in Ningbo: inside default service hours.
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def pg_url(name: str) -> str:
    base = PG_ADMIN.rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server process on a free port, for the whole run."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port), "-H", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError("moto server did not answer") from None
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Migrate and demo-seed once per run; each test clones the result."""
    root = tmp_path_factory.mktemp("templates")
    sqlite_path = root / "template.db"
    pg_template = f"yb_tpl_{RUN}"

    async def build() -> None:
        sqlite_url = f"sqlite+aiosqlite:///{sqlite_path}"
        await asyncio.to_thread(upgrade, sqlite_url)
        db = Database(sqlite_url)
        await seed_demo(db)
        await db.dispose()
        await _pg_admin(f'CREATE DATABASE "{pg_template}"')
        await asyncio.to_thread(upgrade, pg_url(pg_template))
        db = Database(pg_url(pg_template))
        await seed_demo(db)
        await db.dispose()

    asyncio.run(build())
    yield {"sqlite": str(sqlite_path), "postgresql": pg_template}

    async def drop() -> None:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{pg_template}" WITH (FORCE)')

    asyncio.run(drop())


@asynccontextmanager
async def cloned_database(kind: str, templates: dict[str, str], tmp_path: Path) -> AsyncIterator[str]:
    """A private copy of the migrated, seeded template database; dropped afterwards."""
    if kind == "sqlite":
        target = tmp_path / "yunbang.db"
        shutil.copy(templates["sqlite"], target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    name = f"yb_{RUN}_{uuid.uuid4().hex[:8]}"
    await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{templates["postgresql"]}"')
    try:
        yield pg_url(name)
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, templates: dict[str, str], tmp_path: Path) -> AsyncIterator[str]:
    async with cloned_database(request.param, templates, tmp_path) as url:
        yield url


@pytest.fixture
async def postgresql_url(templates: dict[str, str], tmp_path: Path) -> AsyncIterator[str]:
    async with cloned_database("postgresql", templates, tmp_path) as url:
        yield url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONDAY_10)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key="test-secret-key-that-is-long-enough-1234567890",
        monitor_interval_seconds=3600,
        media_addresses=("127.0.0.1",),  # the relay gathers on loopback only in tests
    )


@dataclass
class Reply:
    status: int
    body: Any

    @property
    def code(self) -> str | None:
        return self.body.get("error", {}).get("code") if isinstance(self.body, dict) else None


class Api:
    """A logged-in (or anonymous) HTTP client against the real server."""

    def __init__(self, http: ClientSession, base: str, token: str | None = None, user: dict[str, Any] | None = None):
        self.http, self.base, self.token, self.user = http, base, token, user

    async def call(self, method: str, path: str, json: Any = None, data: Any = None,
                   headers_extra: dict[str, str] | None = None, **params: Any) -> Reply:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(headers_extra or {})
        query = {k: str(v) for k, v in params.items() if v is not None}
        async with self.http.request(method, self.base + path, json=json, data=data, headers=headers,
                                     params=query) as resp:
            if resp.status == 204:
                return Reply(204, None)
            text = await resp.text()
            try:
                import json as _json

                body = _json.loads(text) if text else None
            except ValueError:
                body = text
            return Reply(resp.status, body)

    async def get(self, path: str, **params: Any) -> Reply:
        return await self.call("GET", path, **params)

    async def post(self, path: str, json: Any = None, **kw: Any) -> Reply:
        return await self.call("POST", path, json=json if json is not None else ({} if "data" not in kw else None), **kw)


@dataclass
class Platform:
    """The running server plus ways to act as any demo user."""

    server: TestServer
    http: ClientSession
    clock: ManualClock
    app: Any

    @property
    def base(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def anonymous(self) -> Api:
        return Api(self.http, self.base)

    async def login(self, username: str, password: str = "demo12345") -> Api:
        reply = await self.anonymous().post("/api/auth/login", {"username": username, "password": password})
        assert reply.status == 200, reply
        return Api(self.http, self.base, reply.body["token"], reply.body["user"])


@pytest.fixture
async def platform(settings: Settings, clock: ManualClock) -> AsyncIterator[Platform]:
    app = create_app(settings, clock=clock, run_monitor=False)
    server = TestServer(app)
    await server.start_server()
    async with ClientSession() as http:
        yield Platform(server, http, clock, app)
    await server.close()


def pytest_unconfigure(config: pytest.Config) -> None:
    SERVICES.stop()
