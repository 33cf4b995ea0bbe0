"""Retention: documents deleted and residents anonymised a set number of days after a case
closed, each purge audited, `yunbang retention --dry-run` listing what would go."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from server.config import Settings
from server.keys import DB, RETENTION, STORE
from server.models import CaseMessage, Document, Ticket
from tests.conftest import Api, Platform
from tests.helpers import Listener, district_item, take, window_of
from tests.media import phone_photo
from tests.test_documents import upload


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_changes(retention_days=30)


async def served_case(platform: Platform, worker: Api, clerk: Api, name: str) -> dict:
    """A case served in full: ID and phone, a document, chat, a result note and a rated comment."""
    item = await district_item(worker, "MZ")
    ticket = await take(worker, item["id"], name, resident_extra={"id_number": "330203195001011234",
                                                                  "phone": "13812345678", "note": "独居"})
    await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    assert (await upload(worker, ticket["id"], item["materials"][0]["id"], phone_photo())).status == 201
    listener = await Listener().connect(platform, clerk)
    async with listener:
        assert "error" not in await listener.client.call("join", {"ticket_id": ticket["id"]}, timeout=10)
        await listener.client.call("chat", {"ticket_id": ticket["id"], "text": f"{name}的户口本在哪"}, timeout=5)
        await listener.client.call("leave", {"ticket_id": ticket["id"]}, timeout=10)
    await clerk.post(f"/api/tickets/{ticket['id']}/start")
    done = await clerk.post(f"/api/tickets/{ticket['id']}/complete", {"result": "materials_incomplete",
                                                                      "note": f"{name}缺户口本"})
    assert done.status == 200, done
    await worker.post(f"/api/tickets/{ticket['id']}/rating", {"score": 2, "comment": f"我是{name}，等太久"})
    return ticket


async def test_a_case_closed_past_the_retention_period_loses_documents_and_personal_data(platform: Platform) -> None:
    worker, clerk = await platform.login("worker1"), await platform.login("clerk1")
    old = await served_case(platform, worker, clerk, "老案群众")
    async with platform.app[DB].read() as s:
        keys = [k for d in (await s.scalars(select(Document).where(Document.ticket_id == old["id"]))).all()
                for k in (d.original_key, d.viewing_key, d.thumbnail_key)]
    store = platform.app[STORE]
    assert keys and all([await store.exists(k) for k in keys])

    platform.clock.advance(days=21)  # a Monday again, within service hours
    recent = await served_case(platform, worker, clerk, "新案群众")
    retention = platform.app[RETENTION]
    assert (await retention.run(dry_run=True)).cases == [], "21 days: nothing is due yet"

    platform.clock.advance(days=10)  # the old case closed 31 days ago, the recent one 10
    listed = (await retention.run(dry_run=True)).as_dict()
    assert [c["ticket_id"] for c in listed["cases"]] == [old["id"]] and listed["documents"] == 1
    assert all([await store.exists(k) for k in keys]), "a dry run deletes nothing"

    report = await retention.run()
    assert [c["ticket_id"] for c in report.cases] == [old["id"]]
    assert not any([await store.exists(k) for k in keys])
    async with platform.app[DB].read() as s:
        gone = await s.get(Ticket, old["id"])
        kept = await s.get(Ticket, recent["id"])
        assert (await s.scalars(select(Document).where(Document.ticket_id == old["id"]))).all() == []
        chat = (await s.scalars(select(CaseMessage.text).where(CaseMessage.ticket_id == old["id"]))).all()
    assert gone.resident == {"name": "已匿名"} and gone.resident_sealed is None and gone.id_number_hash is None
    assert gone.rating_comment is None and gone.result_note is None and gone.purged_at is not None
    assert (gone.rating_score, gone.result, gone.number) == (2, "materials_incomplete", old["number"]), \
        "what the centre is judged by stays"
    assert chat and all("老案群众" not in text for text in chat)
    assert kept.resident["name"] == "新案群众" and kept.resident_sealed and kept.purged_at is None

    seen = (await worker.get(f"/api/tickets/{old['id']}")).body
    assert seen["resident"] == {"name": "已匿名", "masked": True}
    assert (await worker.get(f"/api/tickets/{old['id']}/documents")).body == []
    auditor = await platform.login("auditor1")
    (entry,) = (await auditor.get("/api/audit", action="retention.purge")).body
    assert entry["target_id"] == str(old["id"]) and entry["detail"]["documents"] == 1
    assert (await retention.run()).cases == [], "a purged case is not purged twice"


async def test_the_cli_lists_what_would_go_without_changing_anything(platform: Platform, settings: Settings,
                                                                     database_url: str) -> None:
    worker, clerk = await platform.login("worker1"), await platform.login("clerk1")
    ticket = await served_case(platform, worker, clerk, "命令行群众")
    # The CLI runs on the real clock; the case closed on the test clock's Monday 2026-11-23.
    env = {**os.environ, "YUNBANG_DATABASE_URL": database_url, "YUNBANG_DATA_DIR": str(settings.data_dir),
           "YUNBANG_SECRET_KEY": settings.secret_key, "YUNBANG_RETENTION_DAYS": "1"}
    run = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "server.cli", "retention", "--dry-run"],
                                  env=env, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent)
    assert run.returncode == 0, run.stderr
    assert f'"ticket_id": {ticket["id"]}' in run.stdout and "would purge: 1" in run.stdout
    async with platform.app[DB].read() as s:
        assert (await s.get(Ticket, ticket["id"])).purged_at is None
