"""Fixtures that start real parts: a migrated, demo-seeded SQLite file or PostgreSQL database
per test (cloned from a template made once per run), and the real app on a real port."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
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
import socketio
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import update

from server.api.event_payloads import PAYLOADS
from server.app import create_app
from server.config import Settings
from server.db import Database
from server.domain.clock import ManualClock
from server.migrate import upgrade
from server.models import User
from server.seed import DEMO_PASSWORD, seed_demo
from tests import services

# `make test-fast` (YUNBANG_TEST_FAST=1): SQLite only — no PostgreSQL or Redis is looked for or
# started, and the tests marked as needing them (or a browser, media peers, or minutes) are left out.
FAST = os.environ.get("YUNBANG_TEST_FAST") == "1"
# the PostgreSQL and Redis configured when they answer, else ones started for this run (tests/services.py)
SERVICES = services.Services() if FAST else services.ensure()
PG_ADMIN = os.environ.get("YUNBANG_TEST_PG") or services.PG_DEFAULT
REDIS_URL = os.environ.get("YUNBANG_TEST_REDIS") or services.REDIS_DEFAULT
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


class Templates:
    """The migrated, demo-seeded template of each database kind, made on first use (a run that
    never touches PostgreSQL never needs one)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made: dict[str, str] = {}

    def __getitem__(self, kind: str) -> str:
        if kind not in self.made:
            # made on a thread of its own: the caller may be inside a running event loop
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                self.made[kind] = pool.submit(asyncio.run, self._make(kind)).result()
        return self.made[kind]

    async def _make(self, kind: str) -> str:
        if kind == "sqlite":
            path = self.root / "template.db"
            url, made = f"sqlite+aiosqlite:///{path}", str(path)
        else:
            made = f"yb_tpl_{RUN}"
            await _pg_admin(f'CREATE DATABASE "{made}"')
            url = pg_url(made)
        await asyncio.to_thread(upgrade, url)
        db = Database(url)
        await seed_demo(db)
        async with db.write() as session:
            await session.execute(update(User).values(password_hash=LIGHT_HASH))
        await db.dispose()
        return made

    def drop(self) -> None:
        if "postgresql" in self.made:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{self.made["postgresql"]}" WITH (FORCE)'))


# The demo accounts' password in the test databases, hashed with argon2's lightest parameters: a
# login verifies it in about a millisecond instead of ~80 ms, and the suite logs in over a
# thousand times. The login path is the same (argon2 verifies with the parameters the hash
# names); new passwords, the seeded demo and bench/login.py keep the real cost.
LIGHT_HASH = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(DEMO_PASSWORD)


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    """Migrate and demo-seed once per run and kind; each test clones the result."""
    made = Templates(tmp_path_factory.mktemp("templates"))
    yield made
    made.drop()


@asynccontextmanager
async def cloned_database(kind: str, templates: Templates, tmp_path: Path) -> AsyncIterator[str]:
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
async def database_url(request: pytest.FixtureRequest, templates: Templates, tmp_path: Path) -> AsyncIterator[str]:
    async with cloned_database(request.param, templates, tmp_path) as url:
        yield url


@pytest.fixture
async def postgresql_url(templates: Templates, tmp_path: Path) -> AsyncIterator[str]:
    async with cloned_database("postgresql", templates, tmp_path) as url:
        yield url


EVENT_PAYLOADS = {name: TypeAdapter(model) for name, model in PAYLOADS.items()}


@pytest.fixture(autouse=True)
def checked_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every socket event a test's server sends is checked against its payload model
    (server/api/event_payloads.py), as JSON on the wire: a test whose server sent one unlike it
    fails, as an HTTP answer unlike its route's model does (``check_responses``)."""
    mismatches: list[str] = []
    emit = socketio.AsyncServer.emit

    async def checked_emit(self: socketio.AsyncServer, event: str, data: Any = None, *args: Any, **kwargs: Any) -> None:
        adapter = EVENT_PAYLOADS.get(event)
        if adapter is None:
            mismatches.append(f"{event}: an event docs/protocol.md and server/api/event_payloads.py do not name")
        else:
            try:
                adapter.validate_json(json.dumps(data), strict=True)
            except ValidationError as exc:
                mismatches.append(f"{event}: {exc}")
        await emit(self, event, data, *args, **kwargs)

    monkeypatch.setattr(socketio.AsyncServer, "emit", checked_emit)
    yield mismatches
    assert not mismatches, "socket events unlike their payload models:\n" + "\n".join(mismatches)


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
        check_responses=True,  # every answer validated against its route's model: a mismatch is a 500
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

    async def put(self, path: str, json: Any = None) -> Reply:
        return await self.call("PUT", path, json=json if json is not None else {})


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


# Which tests need what (pyproject.toml's markers), so `make test-fast` can leave them out.
BROWSER_MODULES = {"test_browser_call", "test_production"}  # and every test_web_* module but these:
NO_BROWSER_MODULES = {"test_web_contract"}  # reads files and the OpenAPI document: in test-fast too
MEDIA_MODULES = {"test_bandwidth", "test_call", "test_consultation_call", "test_gstreamer_client",
                 "test_link_media", "test_mdns_candidates", "test_media_addresses", "test_rsa_peers",
                 "test_simulcast", "test_socket_fuzz"}
REDIS_MODULES = {"test_live", "test_preflight", "test_production", "test_services"}
POSTGRES_MODULES = {"test_audit_chain", "test_backup", "test_concurrency", "test_production", "test_services"}
POSTGRES_DATABASE_MODULES = {"test_logs"}  # their database_url is PostgreSQL
SLOW_MODULES = {"test_schemathesis", "test_weak_link_bench", "test_hardening", "test_reports_bench"}
SLOW_TESTS = {"test_the_matrix_holds_for_every_route_event_role_and_case",  # 12 s
              "test_one_address_cannot_try_unlimited_usernames"}  # 3 s


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if isinstance(item, pytest.Function) else ""
        names = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        if (module.startswith("test_web_") and module not in NO_BROWSER_MODULES) or module in BROWSER_MODULES \
                or "browser" in names:
            item.add_marker(pytest.mark.browser)
        if module in MEDIA_MODULES or "clients" in names:
            item.add_marker(pytest.mark.media)
        if module in REDIS_MODULES:
            item.add_marker(pytest.mark.redis)
        if (module in POSTGRES_MODULES or "postgresql_url" in names
                or (module in POSTGRES_DATABASE_MODULES and "database_url" in names)
                or (callspec is not None and "postgresql" in (callspec.params.get("database_url"),
                                                              callspec.params.get("kind")))):
            item.add_marker(pytest.mark.postgres)
        if module in SLOW_MODULES or item.name.split("[")[0] in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


def pytest_unconfigure(config: pytest.Config) -> None:
    SERVICES.stop()
