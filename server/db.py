"""The engine and sessions; the only module that knows the database URL."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


class Database:
    """Engine + session factory. On SQLite, writers take turns (one writer per process)."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                private_sqlite_file(Path(path))
            self.engine: AsyncEngine = create_async_engine(
                url, echo=echo, connect_args={"timeout": 30}
            )
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            # No pre-ping: it costs a round trip per transaction on the call-next path. A
            # connection the server dropped fails one transaction and the pool is invalidated.
            self.engine = create_async_engine(
                url, echo=echo, pool_size=20, max_overflow=20, pool_recycle=1800
            )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @property
    def dialect(self) -> str:
        return "sqlite" if self.is_sqlite else "postgresql"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction, committed on success, rolled back on error.

        An error carrying ``keep_changes = True`` (a failed login that must still count)
        commits what was done before it is raised.
        """
        if self._write_lock is not None:
            async with self._write_lock:
                async with self._transaction() as session:
                    yield session
        else:
            async with self._transaction() as session:
                yield session

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            try:
                yield session
            except BaseException as exc:
                if getattr(exc, "keep_changes", False):
                    await session.commit()
                else:
                    await session.rollback()
                raise
            else:
                await session.commit()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def private_sqlite_file(path: Path) -> None:
    """The database holds residents' data: the file is owner-only (0600) whatever the umask.

    It is created empty with that mode before SQLite opens it (an empty file is an empty
    database), and SQLite gives its -wal and -shm files the database file's mode. Files of an
    older install are narrowed if we own them.
    """
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = part.stat().st_mode & 0o777
        except FileNotFoundError:
            continue
        if mode & 0o077:
            try:
                part.chmod(0o600)
            except PermissionError:
                logging.getLogger("yunbang").warning("%s is mode %o and not ours to narrow to 0600", part, mode)


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
