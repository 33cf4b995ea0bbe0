"""The audit trail: a hash chain that names the first row edited, deleted or moved with SQL
behind the app's back; an auditor who reads it (and nothing else); no way to change it
through the app. Each story runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import delete, select, text, update

from server.db import Database
from server.domain import audit
from server.domain.context import SYSTEM
from server.domain.errors import Conflict
from server.keys import DB, DOMAIN
from server.migrate import upgrade
from server.models import AppendOnly, AuditEntry
from tests.conftest import MONDAY_10, RUN, Api, Platform, _pg_admin, pg_url
from tests.helpers import district_item, take, window_of

ROOT = Path(__file__).resolve().parents[1]


async def tamper(url: str, *statements: str) -> None:
    """Someone with the database owner's rights, behind the app's back: the append-only
    triggers are set aside (PostgreSQL: replica mode; SQLite: dropped) and rows changed."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.split("///", 1)[1])
        try:
            conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
            conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
            for sql in statements:
                conn.execute(sql)
            conn.commit()
        finally:
            conn.close()
        return
    pg = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        async with pg.transaction():
            await pg.execute("SET LOCAL session_replication_role = replica")
            for sql in statements:
                await pg.execute(sql)
    finally:
        await pg.close()


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "YUNBANG_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "server.cli", "audit", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


async def busy_morning(platform: Platform, takes: int = 20, logins: int = 10) -> dict[str, Any]:
    """Twenty tickets taken and ten logins at once, then one call: many writers of audit rows."""
    worker = await platform.login("worker1")
    clerk = await platform.login("clerk1")
    item = (await district_item(worker, "MZ"))["id"]
    tickets = await asyncio.gather(*(take(worker, item, f"群众{i}") for i in range(takes)),
                                   *(platform.login(f"worker{1 + i % 3}") for i in range(logins)))
    await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    return tickets[0]


async def entries(auditor: Api, **filters: Any) -> list[dict[str, Any]]:
    reply = await auditor.get("/api/audit", **filters)
    assert reply.status == 200, reply
    return reply.body


async def test_concurrent_writers_leave_one_unbroken_chain(platform: Platform, database_url: str) -> None:
    await busy_morning(platform)
    auditor = await platform.login("auditor1")
    verdict = (await auditor.get("/api/audit/verify")).body
    assert verdict["intact"] is True and verdict["problem"] is None
    assert verdict["message"] == f"审计日志完整 / audit trail intact: {verdict['rows']} rows"
    takes = await entries(auditor, action="ticket.take", limit=50)
    assert len(takes) == 20
    assert verdict["rows"] >= 20 + 10 + 1 and verdict["rows"] == verdict["head"]["seq"]
    async with platform.app[DB].read() as session:
        seqs = (await session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq))).all()
    assert seqs == list(range(1, len(seqs) + 1)), "one chain, no gap and no fork"
    done = cli(database_url, "verify")
    assert done.returncode == 0 and "audit trail intact" in done.stdout, done


async def test_a_row_changed_with_sql_is_named_by_verify(platform: Platform, database_url: str) -> None:
    ticket = await busy_morning(platform)
    auditor = await platform.login("auditor1")
    (row,) = await entries(auditor, action="ticket.take", target_type="ticket", target_id=str(ticket["id"]))
    await tamper(database_url, f"UPDATE audit_log SET detail = '{{\"number\": \"MZ999\"}}' WHERE id = {row['id']}")

    verdict = (await auditor.get("/api/audit/verify")).body
    assert verdict["intact"] is False
    assert verdict["problem"]["kind"] == "edited"
    assert (verdict["problem"]["seq"], verdict["problem"]["id"]) == (row["seq"], row["id"])
    assert verdict["rows"] == row["seq"] - 1
    done = cli(database_url, "verify")
    assert done.returncode == 1, done
    assert f"audit row seq {row['seq']} (id {row['id']}) was edited" in done.stderr
    assert "被改动" in done.stderr


async def test_a_deleted_row_is_named_by_the_row_after_the_gap(platform: Platform, database_url: str) -> None:
    await busy_morning(platform)
    auditor = await platform.login("auditor1")
    victim, after = sorted(await entries(auditor, action="ticket.take", limit=3), key=lambda e: e["seq"])[:2]
    next_seq = victim["seq"] + 1
    await tamper(database_url, f"DELETE FROM audit_log WHERE id = {victim['id']}")

    problem = (await auditor.get("/api/audit/verify")).body["problem"]
    assert problem["kind"] == "deleted" and problem["seq"] == next_seq
    done = cli(database_url, "verify")
    assert done.returncode == 1
    assert f"audit rows seq {victim['seq']} before audit row seq {next_seq}" in done.stderr, done.stderr


async def test_two_swapped_rows_are_named(platform: Platform, database_url: str) -> None:
    await busy_morning(platform)
    auditor = await platform.login("auditor1")
    first, second = sorted(await entries(auditor, action="ticket.take", limit=2), key=lambda e: e["seq"])
    await tamper(database_url,
                 f"UPDATE audit_log SET seq = -1 WHERE id = {first['id']}",
                 f"UPDATE audit_log SET seq = {first['seq']} WHERE id = {second['id']}",
                 f"UPDATE audit_log SET seq = {second['seq']} WHERE id = {first['id']}")

    problem = (await auditor.get("/api/audit/verify")).body["problem"]
    assert problem["kind"] == "reordered"
    assert (problem["seq"], problem["id"]) == (first["seq"], second["id"])
    assert cli(database_url, "verify").returncode == 1


async def test_cutting_off_the_newest_rows_is_caught_by_the_head_and_a_rewrite_by_an_anchor(
        platform: Platform, database_url: str) -> None:
    await busy_morning(platform)
    auditor = await platform.login("auditor1")
    anchor = cli(database_url, "head")
    assert anchor.returncode == 0, anchor
    head = json.loads(anchor.stdout)
    assert (await auditor.get("/api/audit/verify", anchor=f"{head['seq']}:{head['hash']}")).body["intact"]

    await tamper(database_url, f"DELETE FROM audit_log WHERE seq > {head['seq'] - 2}")
    problem = (await auditor.get("/api/audit/verify")).body["problem"]
    assert problem["kind"] == "truncated" and problem["seq"] == head["seq"] - 1

    # The head moved back too: the chain alone looks whole now; the anchor kept elsewhere does not.
    async with platform.app[DB].read() as session:
        last = (await session.execute(select(AuditEntry.seq, AuditEntry.hash)
                                      .where(AuditEntry.seq == head["seq"] - 2))).one()
    await tamper(database_url, f"UPDATE audit_chain_head SET seq = {last.seq}, hash = '{last.hash}'")
    assert cli(database_url, "verify").returncode == 0
    anchored = cli(database_url, "verify", "--anchor", f"{head['seq']}:{head['hash']}")
    assert anchored.returncode == 1 and "at the end were deleted" in anchored.stderr, anchored


async def test_the_app_cannot_change_or_delete_audit_rows(platform: Platform) -> None:
    await platform.login("worker1")
    public = {name for name, f in inspect.getmembers(audit, inspect.isfunction)
              if f.__module__ == audit.__name__ and not name.startswith("_")}
    assert {"record", "query", "verify"} <= public
    assert not {n for n in public if any(w in n for w in ("update", "delete", "edit", "remove", "purge"))}
    db: Database = platform.app[DB]
    with pytest.raises(AppendOnly):
        async with db.write() as session:
            row = await session.scalar(select(AuditEntry).limit(1))
            assert row is not None
            row.detail = {"forged": True}
    with pytest.raises(AppendOnly):
        async with db.write() as session:
            await session.delete(await session.scalar(select(AuditEntry).limit(1)))
    for statement in (update(AuditEntry).values(actor_name="nobody"), delete(AuditEntry),
                      text("UPDATE audit_log SET ip = '0.0.0.0'"), text("DELETE FROM audit_log")):
        with pytest.raises(Exception, match="append-only"):
            async with db.write() as session:
                await session.execute(statement)
    if not db.is_sqlite:
        with pytest.raises(Exception, match="append-only"):
            async with db.write() as session:
                await session.execute(text("TRUNCATE audit_log"))
    auditor = await platform.login("auditor1")
    assert (await auditor.get("/api/audit/verify")).body["intact"]


async def test_a_rolled_back_transaction_takes_its_audit_rows_with_it(platform: Platform) -> None:
    domain = platform.app[DOMAIN]
    with pytest.raises(Conflict):
        async with domain.unit() as uow:
            audit.record(uow, SYSTEM, "test.never")
            raise Conflict("test_refused", "测试：拒绝")
    async with domain.unit() as uow:
        audit.record(uow, SYSTEM, "test.kept")
    auditor = await platform.login("auditor1")
    assert not await entries(auditor, action="test.never")
    assert len(await entries(auditor, action="test.kept")) == 1
    assert (await auditor.get("/api/audit/verify")).body["intact"]


async def test_only_the_auditor_reads_and_verifies_the_log(platform: Platform) -> None:
    for name in ("worker1", "clerk1", "expert1", "supervisor1", "admin"):
        api = await platform.login(name)
        assert (await api.get("/api/audit")).code == "role_forbidden", name
        assert (await api.get("/api/audit/verify")).code == "role_forbidden", name
    auditor = await platform.login("auditor1")
    assert (await auditor.get("/api/tickets")).code == "role_forbidden"
    assert (await auditor.get("/api/dashboard")).code == "role_forbidden"


async def test_the_auditor_filters_pages_and_is_audited_reading(platform: Platform) -> None:
    await busy_morning(platform, takes=6, logins=2)
    auditor = await platform.login("auditor1")
    newest = await entries(auditor, limit=5)
    assert len(newest) == 5 and [e["id"] for e in newest] == sorted((e["id"] for e in newest), reverse=True)
    older = await entries(auditor, limit=5, before_id=newest[-1]["id"])
    assert older and max(e["id"] for e in older) < newest[-1]["id"]
    by_clerk = await entries(auditor, actor="clerk1")
    assert by_clerk and {e["actor"] for e in by_clerk} == {"clerk1"}
    takes = await entries(auditor, action="ticket.take", target_type="ticket")
    assert len(takes) == 6 and all(len(e["hash"]) == 64 for e in takes)
    now = MONDAY_10
    assert await entries(auditor, action="ticket.take", since=(now - timedelta(minutes=1)).isoformat())
    assert not await entries(auditor, action="ticket.take", until=(now - timedelta(minutes=1)).isoformat())
    reads = await entries(auditor, action="audit.read", actor="auditor1")
    assert {"action": "ticket.take", "target_type": "ticket"} in [r["detail"]["filters"] for r in reads]
    naive = await auditor.get("/api/audit", since="2026-11-23T10:00:00")
    assert naive.status == 422 and naive.code == "invalid_input"
    bad = await auditor.get("/api/audit/verify", anchor="12:nothex")
    assert bad.status == 422 and bad.code == "anchor_invalid"
    await auditor.get("/api/audit/verify")
    (check,) = await entries(auditor, action="audit.verify")
    assert check["detail"]["intact"] is True and check["actor"] == "auditor1"


@pytest.fixture
async def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of the last revision before the chain."""
    name = f"yb_{RUN}_old_{uuid.uuid4().hex[:6]}"
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}" if request.param == "sqlite" else pg_url(name)
    if request.param == "postgresql":
        await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        await asyncio.to_thread(upgrade, url, "0008-1")
        yield url
    finally:
        if request.param == "postgresql":
            await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("old_database", ["sqlite", "postgresql"], indirect=True)
async def test_rows_written_before_the_upgrade_are_chained_by_it(old_database: str) -> None:
    db = Database(old_database)
    try:
        async with db.write() as session:
            for i, (at, detail) in enumerate([("2026-11-20 01:02:03.456789", '{"n": 1, "名": "张三"}'),
                                              ("2026-11-21 01:02:03", '{"z": [1, 2.5, null], "a": {"b": true}}'),
                                              ("2026-11-19 00:00:00", "{}")]):
                await session.execute(text(
                    "INSERT INTO audit_log (at, actor_id, actor_name, action, target_type, target_id, ip, detail) "
                    f"VALUES ('{at}+00:00', NULL, 'system', 'old.{i}', 'ticket', '{i}', '', '{detail}')"
                    if not db.is_sqlite else
                    "INSERT INTO audit_log (at, actor_id, actor_name, action, target_type, target_id, ip, detail) "
                    f"VALUES ('{at}', NULL, 'system', 'old.{i}', 'ticket', '{i}', '', '{detail}')"))
    finally:
        await db.dispose()
    await asyncio.to_thread(upgrade, old_database)
    done = cli(old_database, "verify")
    assert done.returncode == 0 and "intact: 3 rows" in done.stdout, done
    # New rows continue the migrated chain: the CLI's own read is recorded, then all is checked.
    assert cli(old_database, "list").returncode == 0
    done = cli(old_database, "verify")
    assert done.returncode == 0 and "intact: 4 rows" in done.stdout, done
