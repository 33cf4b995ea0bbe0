"""Running Alembic from code: ``yunbang migrate`` and ``serve`` call upgrade()."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str, data_key: bytes | None = None) -> Config:
    """``data_key``: migrations that encrypt existing personal data need it (0007)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["data_key"] = data_key
    return cfg


def upgrade(url: str, revision: str = "head", *, data_key: bytes | None = None) -> None:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url, data_key), revision)


async def upgrade_async(url: str, *, data_key: bytes | None = None) -> None:
    """Alembic's env runs its own event loop, so it runs in a thread of its own here."""
    await asyncio.to_thread(lambda: upgrade(url, data_key=data_key))
