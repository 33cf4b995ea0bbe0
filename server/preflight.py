"""Whether the servers the app depends on answer: PostgreSQL (or SQLite), Redis when configured,
and the object store. Used twice:

- at ``yunbang serve`` start (``server.cli``): a dependency that does not answer ends the start
  with one line per failure, in Chinese and English, naming what failed and the setting to check,
  and a non-zero exit — not a trace, and not a "running" banner followed by 500s;
- by ``GET /api/health``, which reports each dependency and answers 503 while one is down.

What a failure says stays generic in ``/api/health`` (it is public); the start-up line, read by the
operator on the console, carries the error's own words, never a password (URLs are shown
without their credentials).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from server.config import Settings
from uploads.storage import StoreUpkeep

TIMEOUT_S = 8.0


@dataclass(frozen=True)
class Dependency:
    key: str  # database / redis / storage
    zh: str
    en: str
    setting: str


DATABASE = Dependency("database", "数据库", "the database", "YUNBANG_DATABASE_URL")
REDIS = Dependency("redis", "Redis", "Redis", "YUNBANG_REDIS_URL")
STORAGE = Dependency("storage", "对象存储", "the object store", "YUNBANG_S3_ENDPOINT / YUNBANG_S3_ACCESS_KEY / YUNBANG_S3_BUCKET")


@dataclass(frozen=True)
class Failure:
    dependency: Dependency
    where: str
    error: str

    def line(self) -> str:
        d = self.dependency
        return (f"无法连接{d.zh}（{self.where}），请检查 {d.setting} / cannot reach {d.en} at {self.where}: "
                f"{self.error} — check {d.setting}")


def without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _error(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return f"no answer within {TIMEOUT_S:.0f} s"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text.split(" (Caused by")[0]  # urllib3's retry story adds nothing to "connection refused"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _database(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


async def _redis(url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def check_redis(url: str) -> Failure | None:
    try:
        await asyncio.wait_for(_redis(url), TIMEOUT_S)
    except Exception as exc:  # any failure to answer is the one thing reported
        return Failure(REDIS, without_credentials(url), _error(exc))
    return None


async def check_store(store: StoreUpkeep, where: str) -> Failure | None:
    try:
        await asyncio.wait_for(store.ensure_ready(), TIMEOUT_S)
    except Exception as exc:
        return Failure(STORAGE, where, _error(exc))
    return None


def store_location(settings: Settings) -> str:
    return (f"{settings.s3_endpoint}/{settings.s3_bucket}" if settings.s3_endpoint
            else str(settings.data_dir / "objects"))


async def check_start(settings: Settings, store: StoreUpkeep) -> list[Failure]:
    """Everything ``serve`` needs, checked before it migrates or listens (the object store's
    client logs each of its retries: not here, where the one line says it all)."""
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    failures: list[Failure] = []
    url = settings.effective_database_url
    if not url.startswith("sqlite"):  # SQLite is a file of ours, made by the migration that follows
        try:
            await asyncio.wait_for(_database(url), TIMEOUT_S)
        except Exception as exc:
            failures.append(Failure(DATABASE, without_credentials(url), _error(exc)))
    if settings.redis_url:
        failure = await check_redis(settings.redis_url)
        if failure:
            failures.append(failure)
    failure = await check_store(store, store_location(settings))
    if failure:
        failures.append(failure)
    logging.getLogger("urllib3").setLevel(logging.NOTSET)
    return failures
