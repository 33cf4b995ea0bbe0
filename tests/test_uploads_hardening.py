"""Uploads tried as an attacker (or a flaky network) would: racing writes and completes, many
uploads begun at once, uploads outliving their case, answers lost, leftovers on disk.
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import pytest

from server.config import Settings, SettingsError
from server.keys import MONITOR
from tests.conftest import Api, Platform, Reply
from tests.helpers import district_item, take, window_of
from tests.media import pdf_page, phone_photo

MB = 1024 * 1024


@pytest.fixture
def settings(settings: Settings) -> Settings:
    docs = dataclasses.replace(settings.documents, max_file_bytes=2 * MB, max_staged_bytes_per_case=5 * MB,
                               max_open_uploads_per_case=3)
    return settings.with_changes(documents=docs)


@pytest.fixture
async def case(platform: Platform):
    """A called ticket for a district 民政 item: (ticket, item, worker, clerk)."""
    worker = await platform.login("worker1")
    clerk = await platform.login("clerk1")
    item = await district_item(worker, "MZ")
    ticket = await take(worker, item["id"], "上传群众")
    await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    return ticket, item, worker, clerk


async def begin(api: Api, ticket_id: int, size: int, material: str = "other") -> Reply:
    return await api.post(f"/api/tickets/{ticket_id}/uploads", {"material": material, "size": size})


async def begun(api: Api, ticket_id: int, data: bytes) -> str:
    reply = await begin(api, ticket_id, len(data))
    assert reply.status == 201, reply
    return str(reply.body["upload_id"])


async def put(api: Api, upload_id: str, offset: int, data: bytes) -> Reply:
    return await api.call("PUT", f"/api/uploads/{upload_id}", data=data, headers_extra={"Upload-Offset": str(offset)})


async def complete(api: Api, upload_id: str) -> Reply:
    return await api.post(f"/api/uploads/{upload_id}/complete")


async def until(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition never came true"
        await asyncio.sleep(0.01)


async def test_an_upload_of_nothing_is_refused_before_it_begins(platform: Platform, case) -> None:
    ticket, _, worker, _ = case
    for size in (0, -5):
        refused = await begin(worker, ticket["id"], size)
        assert (refused.status, refused.code) == (422, "empty_file"), refused
    form = aiohttp.FormData()
    form.add_field("material", "other")
    form.add_field("file", b"", filename="empty.jpg", content_type="image/jpeg")
    whole = await worker.call("POST", f"/api/tickets/{ticket['id']}/documents", data=form)
    assert (whole.status, whole.code) == (422, "unsupported_type"), whole  # sent whole: judged by its (no) bytes
    assert await documents_of(worker, ticket["id"]) == []


class HeldPut:
    """A PUT whose headers are on the wire while its body is held back: the server is inside
    the write, past its checks, waiting for bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def start(cls, platform: Platform, api: Api, upload_id: str, offset: int, length: int) -> HeldPut:
        host, port = platform.server.host, platform.server.port
        reader, writer = await asyncio.open_connection(host, port)
        writer.write((
            f"PUT /api/uploads/{upload_id} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {api.token}\r\nUpload-Offset: {offset}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
        ).encode())
        await writer.drain()
        return cls(reader, writer)

    async def finish(self, body: bytes) -> Reply:
        self.writer.write(body)
        await self.writer.drain()
        raw = await asyncio.wait_for(self.reader.read(), 30)
        self.writer.close()
        head, _, text = raw.partition(b"\r\n\r\n")
        return Reply(int(head.split()[1]), json.loads(text))


async def documents_of(api: Api, ticket_id: int) -> list[dict[str, Any]]:
    reply = await api.get(f"/api/tickets/{ticket_id}/documents")
    assert reply.status == 200, reply
    return list(reply.body)


async def uploads_audited(platform: Platform, document_id: int) -> int:
    auditor = await platform.login("auditor1")
    return len((await auditor.get("/api/audit", action="document.upload", target_id=str(document_id))).body)


def staging_of(settings: Settings) -> Path:
    return settings.data_dir / "staging"


# --------------------------------------------------------------------------- one writer at a time


async def test_writes_racing_at_the_same_offset_land_once(platform: Platform, case, settings: Settings) -> None:
    ticket, _, worker, _ = case
    data = pdf_page()
    upload_id = await begun(worker, ticket["id"], data)
    staged = staging_of(settings) / upload_id
    first = await HeldPut.start(platform, worker, upload_id, 0, len(data))
    await until(staged.exists)  # the first write is under way, its offset checked, no byte yet
    racers = await asyncio.gather(*(put(worker, upload_id, 0, data) for _ in range(2)))
    assert [(r.status, r.code) for r in racers] == [(409, "upload_busy")] * 2
    assert staged.stat().st_size == 0, "a turned-away write changes nothing"
    landed = await first.finish(data)
    assert landed.status == 200 and landed.body["offset"] == len(data)
    assert staged.stat().st_size == len(data), "never more than declared"
    done = await complete(worker, upload_id)
    assert done.status == 201, done


HOLDER = """
import fcntl, os, sys
os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


async def test_an_upload_held_by_another_process_is_busy_until_let_go(platform: Platform, case, settings: Settings) -> None:
    """Another server process (or node on the shared staging folder) writing the same upload."""
    ticket, _, worker, _ = case
    data = pdf_page()
    upload_id = await begun(worker, ticket["id"], data)
    staged = staging_of(settings) / upload_id
    holder = await asyncio.create_subprocess_exec(sys.executable, "-c", HOLDER, str(staged),
                                                  stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    try:
        assert holder.stdout is not None and await holder.stdout.readline() == b"locked\n"
        busy = await put(worker, upload_id, 0, data)
        assert busy.status == 409 and busy.code == "upload_busy"
        assert "上传" in busy.body["error"]["message"]
        assert staged.stat().st_size == 0
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        await holder.wait()
    assert (await put(worker, upload_id, 0, data)).status == 200
    assert (await complete(worker, upload_id)).status == 201


# --------------------------------------------------------------------------- what a case may stage


async def test_a_case_cannot_stage_more_than_its_share(platform: Platform, case) -> None:
    ticket, _, worker, clerk = case
    assert (await begin(worker, ticket["id"], 2 * MB)).status == 201
    assert (await begin(clerk, ticket["id"], 2 * MB)).status == 201, "the clerk's uploads count for the case too"
    over = await begin(worker, ticket["id"], 2 * MB)
    assert over.status == 413 and over.code == "staged_too_large"
    assert "5 MB" in over.body["error"]["message"]
    data = pdf_page()
    small = await begun(worker, ticket["id"], data)
    full = await begin(worker, ticket["id"], 100)
    assert full.status == 409 and full.code == "too_many_uploads" and "3" in full.body["error"]["message"]
    assert (await put(worker, small, 0, data)).status == 200
    assert (await complete(worker, small)).status == 201
    assert (await begin(worker, ticket["id"], 100)).status == 201, "a filed upload no longer counts"
    platform.clock.advance(hours=25)
    for _ in range(2):
        assert (await begin(worker, ticket["id"], 2 * MB)).status == 201, "expired uploads hold nothing"


async def test_uploads_begun_all_at_once_cannot_all_pass_the_cap(case) -> None:
    ticket, _, worker, _ = case
    replies = await asyncio.gather(*(begin(worker, ticket["id"], 100) for _ in range(8)))
    assert sorted(r.status for r in replies) == [201] * 3 + [409] * 5
    assert {r.code for r in replies if r.status == 409} == {"too_many_uploads"}


# --------------------------------------------------------------------------- uploads outliving their case


async def test_an_upload_begun_in_the_call_cannot_be_filed_after_the_case_closed(
    platform: Platform, case, settings: Settings
) -> None:
    ticket, _, worker, clerk = case
    data = pdf_page()
    whole = await begun(worker, ticket["id"], data)
    assert (await put(worker, whole, 0, data)).status == 200
    half = await begun(worker, ticket["id"], data)
    assert (await put(worker, half, 0, data[:1000])).status == 200
    await clerk.post(f"/api/tickets/{ticket['id']}/start")
    closed = await clerk.post(f"/api/tickets/{ticket['id']}/complete", {"result": "materials_incomplete"})
    assert closed.status == 200, closed
    late = await complete(worker, whole)
    assert late.status == 409 and late.code == "call_not_open"
    more = await put(worker, half, 1000, data[1000:])
    assert more.status == 409 and more.code == "call_not_open"
    assert await documents_of(worker, ticket["id"]) == []
    assert not any(staging_of(settings).iterdir()), "the staged bytes went with the upload"
    assert (await complete(worker, whole)).code == "upload_not_found"


async def test_a_clerk_who_transferred_the_case_cannot_finish_an_upload_into_it(platform: Platform, case) -> None:
    ticket, _, _, clerk = case
    data = pdf_page()
    upload_id = await begun(clerk, ticket["id"], data)
    assert (await put(clerk, upload_id, 0, data[:1000])).status == 200
    org = (await clerk.get("/api/org")).body
    ga = next(d for d in org["departments"] if d["code"] == "GA")
    assert (await clerk.post(f"/api/tickets/{ticket['id']}/transfer", {"department_id": ga["id"]})).status == 200
    clerk2 = await platform.login("clerk2")
    called = await clerk2.post(f"/api/windows/{window_of(clerk2)}/call-next")
    assert called.body["id"] == ticket["id"], "the case is open again, at another window"
    more = await put(clerk, upload_id, 1000, data[1000:])
    assert more.status == 409 and more.code == "call_not_open"
    assert (await complete(clerk, upload_id)).code == "upload_not_found"


# --------------------------------------------------------------------------- completes sent again


async def test_a_complete_sent_again_answers_with_the_same_document(platform: Platform, case) -> None:
    ticket, _, worker, clerk = case
    data = phone_photo("olive")
    upload_id = await begun(worker, ticket["id"], data)
    assert (await put(worker, upload_id, 0, data)).status == 200
    first = await complete(worker, upload_id)
    assert first.status == 201, first
    again = await complete(worker, upload_id)  # the first answer was lost on the way
    assert again.status == 200 and again.body["id"] == first.body["id"] and "duplicate" not in again.body
    progress = (await worker.get(f"/api/uploads/{upload_id}")).body
    assert progress["document_id"] == first.body["id"] and progress["offset"] == len(data)
    assert [d["id"] for d in await documents_of(worker, ticket["id"])] == [first.body["id"]]
    assert await uploads_audited(platform, first.body["id"]) == 1

    same_file = await begun(worker, ticket["id"], data)
    assert (await put(worker, same_file, 0, data)).status == 200
    twice = await complete(worker, same_file)
    assert twice.status == 200 and twice.body["duplicate"] is True and twice.body["id"] == first.body["id"]
    assert (await complete(worker, same_file)).body == twice.body

    await clerk.post(f"/api/tickets/{ticket['id']}/start")
    await clerk.post(f"/api/tickets/{ticket['id']}/complete", {"result": "materials_incomplete"})
    after = await complete(worker, upload_id)
    assert after.status == 200 and after.body["id"] == first.body["id"], "a filed upload answers after the call too"
    assert len(await documents_of(worker, ticket["id"])) == 1


async def test_completes_racing_for_one_upload_file_one_document(platform: Platform, case) -> None:
    ticket, _, worker, _ = case
    data = phone_photo("navy", size=(1600, 1200))
    upload_id = await begun(worker, ticket["id"], data)
    assert (await put(worker, upload_id, 0, data)).status == 200
    replies = await asyncio.gather(*(complete(worker, upload_id) for _ in range(3)))
    assert sorted(r.status for r in replies) == [200, 200, 201], replies
    assert len({r.body["id"] for r in replies}) == 1
    assert len(await documents_of(worker, ticket["id"])) == 1
    assert await uploads_audited(platform, replies[0].body["id"]) == 1


# --------------------------------------------------------------------------- leftovers on disk


def aged(path: Path, seconds: float) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


async def test_housekeeping_removes_what_crashed_puts_and_lost_uploads_left(platform: Platform, settings: Settings) -> None:
    objects, staging = settings.data_dir / "objects", staging_of(settings)
    staging.mkdir(parents=True, exist_ok=True)
    crashed = objects / ".tmp" / f"{uuid4().hex}.tmp"
    crashed.write_bytes(b"half an object")
    aged(crashed, 2 * 3600)
    running = objects / ".tmp" / f"{uuid4().hex}.tmp"
    running.write_bytes(b"being written")
    orphan = staging / "lostupload0001"  # its session long gone
    orphan.write_bytes(b"%PDF-")
    aged(orphan, (settings.documents.upload_ttl_hours + 2) * 3600)
    recent = staging / "recentupload0001"
    recent.write_bytes(b"%PDF-")
    aged(recent, 2 * 3600)
    await platform.app[MONITOR].run_once()
    assert not crashed.exists() and not orphan.exists()
    assert running.exists() and recent.exists(), "what may still be in use stays"


async def test_housekeeping_forgets_uploads_of_a_closed_case(platform: Platform, case, settings: Settings) -> None:
    ticket, _, worker, clerk = case
    data = pdf_page()
    upload_id = await begun(worker, ticket["id"], data)
    assert (await put(worker, upload_id, 0, data[:1000])).status == 200
    await clerk.post(f"/api/tickets/{ticket['id']}/start")
    await clerk.post(f"/api/tickets/{ticket['id']}/complete", {"result": "materials_incomplete"})
    await platform.app[MONITOR].run_once()
    assert not (staging_of(settings) / upload_id).exists()
    assert (await worker.get(f"/api/uploads/{upload_id}")).status == 404


async def test_staged_and_stored_files_are_readable_by_the_server_only(platform: Platform, case, settings: Settings) -> None:
    ticket, _, worker, _ = case
    data = pdf_page()
    upload_id = await begun(worker, ticket["id"], data)
    assert (await put(worker, upload_id, 0, data[:1000])).status == 200
    staging = staging_of(settings)
    assert stat.S_IMODE(staging.stat().st_mode) == 0o700
    assert stat.S_IMODE((staging / upload_id).stat().st_mode) == 0o600
    assert (await put(worker, upload_id, 1000, data[1000:])).status == 200
    assert (await complete(worker, upload_id)).status == 201
    objects = settings.data_dir / "objects"
    stored = [p for p in objects.rglob("*") if p.is_file()]
    assert len(stored) == 3
    assert {stat.S_IMODE(p.stat().st_mode) for p in stored} == {0o600}
    folders = [objects, *(p for p in objects.rglob("*") if p.is_dir())]
    assert {stat.S_IMODE(p.stat().st_mode) for p in folders} == {0o700}


def test_the_staging_share_follows_the_file_limit_unless_set() -> None:
    assert Settings.from_env({}).documents.max_staged_bytes_per_case == 60 * MB
    bigger = Settings.from_env({"YUNBANG_MAX_UPLOAD_MB": "30"}).documents
    assert bigger.max_staged_bytes_per_case == 90 * MB and bigger.max_open_uploads_per_case == 5
    set_ = Settings.from_env({"YUNBANG_MAX_STAGED_MB_PER_CASE": "100", "YUNBANG_MAX_OPEN_UPLOADS_PER_CASE": "8"})
    assert (set_.documents.max_staged_bytes_per_case, set_.documents.max_open_uploads_per_case) == (100 * MB, 8)
    for bad in ({"YUNBANG_MAX_STAGED_MB_PER_CASE": "10"}, {"YUNBANG_MAX_OPEN_UPLOADS_PER_CASE": "0"}):
        with pytest.raises(SettingsError):
            Settings.from_env(bad)
