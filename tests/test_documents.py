"""Documents during the call: upload, processing, the checklist, review and the completion
rule, resumable uploads, refusals that store nothing, remote capture. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import os
from typing import Any

import aiohttp
import pytest
from PIL import Image, ImageChops, ImageStat

from server.config import Settings
from server.keys import MONITOR
from tests.conftest import Api, Platform
from tests.helpers import district_item, take, window_of
from tests.media import bomb_png, has_gps, pdf_page, phone_photo


@pytest.fixture
def settings(settings: Settings) -> Settings:
    docs = settings.documents.__class__(max_file_bytes=2 * 1024 * 1024, max_files_per_case=6)
    return settings.with_changes(documents=docs)


async def upload(api: Api, ticket_id: int, material: Any, data: bytes, name: str = "photo.jpg",
                 source: str | None = None) -> Any:
    form = aiohttp.FormData()
    form.add_field("material", str(material))
    if source:
        form.add_field("source", source)
    form.add_field("file", data, filename=name, content_type="image/jpeg")
    return await api.call("POST", f"/api/tickets/{ticket_id}/documents", data=form)


@pytest.fixture
async def case(platform: Platform):
    """A called ticket for a district 民政 item: (ticket, item, worker, clerk)."""
    worker = await platform.login("worker1")
    clerk = await platform.login("clerk1")
    item = await district_item(worker, "MZ")
    ticket = await take(worker, item["id"], "材料群众")
    await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    return ticket, item, worker, clerk


async def fetch(platform: Platform, url: str) -> bytes:
    async with platform.http.get(url if url.startswith("http") else platform.base + url) as r:
        assert r.status == 200, await r.text()
        return await r.read()


async def test_a_phone_photo_arrives_upright_without_gps_and_watermarked(platform: Platform, case) -> None:
    ticket, item, worker, clerk = case
    material = item["materials"][0]
    photo = phone_photo()
    reply = await upload(worker, ticket["id"], material["id"], photo)
    assert reply.status == 201, reply
    doc = reply.body
    assert doc["material_name"] == material["name"] and doc["status"] == "provided"
    assert (doc["width"], doc["height"]) == (300, 400), "orientation 6 applied"
    listed = (await clerk.get(f"/api/tickets/{ticket['id']}/documents")).body
    assert [d["id"] for d in listed] == [doc["id"]] and listed[0]["thumbnail_url"]
    shown = (await clerk.get(f"/api/documents/{doc['id']}")).body
    original = await fetch(platform, shown["urls"]["original"])
    viewing = await fetch(platform, shown["urls"]["viewing"])
    assert not has_gps(original) and not has_gps(viewing)
    upright = Image.open(io.BytesIO(original)).convert("RGB")
    assert upright.size == (300, 400)
    assert upright.getpixel((270, 20))[0] > 200 and upright.getpixel((270, 20))[1] < 80, "red block moved top-right"
    seen = Image.open(io.BytesIO(viewing)).convert("RGB").resize(upright.size)
    difference = ImageStat.Stat(ImageChops.difference(seen, upright)).mean
    assert sum(difference) > 3, "the viewing copy carries a watermark"
    auditor = await platform.login("auditor1")
    views = (await auditor.get("/api/audit", action="document.view", target_id=str(doc["id"]))).body
    assert [v["actor"] for v in views] == ["clerk1"]


async def test_completion_waits_for_every_required_material(platform: Platform, case) -> None:
    ticket, item, worker, clerk = case
    await clerk.post(f"/api/tickets/{ticket['id']}/start")
    blocked = await clerk.post(f"/api/tickets/{ticket['id']}/complete", {"result": "done"})
    assert blocked.status == 409 and blocked.code == "material_missing"
    required = [m for m in item["materials"] if m["required"]]
    colours = ["white", "yellow", "green", "blue", "gray", "pink", "orange"]
    docs = []
    for m, colour in zip(required, colours, strict=False):
        reply = await upload(worker, ticket["id"], m["id"], phone_photo(colour))
        assert reply.status == 201, reply
        docs.append(reply.body)
    assert (await clerk.post(f"/api/tickets/{ticket['id']}/complete", {"result": "done"})).code == "material_missing"
    no_reason = await clerk.post(f"/api/documents/{docs[0]['id']}/review", {"decision": "rejected"})
    assert no_reason.status == 422 and no_reason.code == "reason_required"
    by_worker = await worker.post(f"/api/documents/{docs[0]['id']}/review", {"decision": "accepted"})
    assert by_worker.status == 403
    rejected = await clerk.post(f"/api/documents/{docs[0]['id']}/review", {"decision": "rejected", "reason": "照片模糊"})
    assert rejected.body["status"] == "rejected"
    checklist = {line["name"]: line for line in (await worker.get(f"/api/tickets/{ticket['id']}/checklist")).body}
    assert checklist[required[0]["name"]]["state"] == "rejected" and checklist[required[0]["name"]]["reason"] == "照片模糊"
    for d in docs[1:]:
        await clerk.post(f"/api/documents/{d['id']}/review", {"decision": "accepted"})
    still = await clerk.post(f"/api/tickets/{ticket['id']}/complete", {"result": "done"})
    assert still.code == "material_missing" and required[0]["name"] in still.body["error"]["message"]
    again = await upload(worker, ticket["id"], required[0]["id"], phone_photo("purple"))
    await clerk.post(f"/api/documents/{again.body['id']}/review", {"decision": "accepted"})
    done = await clerk.post(f"/api/tickets/{ticket['id']}/complete", {"result": "done"})
    assert done.status == 200 and done.body["result"] == "done"


async def test_materials_incomplete_closes_a_case_with_missing_materials(case) -> None:
    ticket, _, _, clerk = case
    await clerk.post(f"/api/tickets/{ticket['id']}/start")
    closed = await clerk.post(f"/api/tickets/{ticket['id']}/complete", {"result": "materials_incomplete"})
    assert closed.status == 200 and closed.body["status"] == "completed"


async def test_refused_files_leave_nothing_behind(platform: Platform, case, settings: Settings) -> None:
    ticket, item, worker, _ = case
    line = item["materials"][0]["id"]
    script = await upload(worker, ticket["id"], line, b"#!/bin/sh\nrm -rf / --no-preserve-root\n" * 4, name="id.jpg")
    assert script.status == 422 and script.code == "unsupported_type"
    photo = phone_photo()
    truncated = await upload(worker, ticket["id"], line, photo[: len(photo) // 2])
    assert truncated.status == 422 and truncated.code == "corrupt_file"
    bomb = await upload(worker, ticket["id"], line, bomb_png(), name="bomb.png")
    assert bomb.status == 422 and bomb.code == "too_many_pixels"
    big = Image.frombytes("RGB", (1000, 1000), os.urandom(3_000_000))
    buf = io.BytesIO()
    big.save(buf, "PNG")
    assert len(buf.getvalue()) > settings.documents.max_file_bytes
    oversize = await upload(worker, ticket["id"], line, buf.getvalue(), name="big.png")
    assert oversize.status == 413 and oversize.code == "file_too_large"
    unknown = await upload(worker, ticket["id"], 999999, photo)
    assert unknown.status == 422 and unknown.code == "unknown_material"
    assert (await worker.get(f"/api/tickets/{ticket['id']}/documents")).body == []
    objects = settings.data_dir / "objects"
    assert not objects.exists() or not any(p.is_file() for p in objects.rglob("*"))
    staging = settings.data_dir / "staging"
    assert not staging.exists() or not any(staging.iterdir())


async def test_too_many_files_and_the_same_file_twice(case) -> None:
    ticket, item, worker, _ = case
    line = item["materials"][0]["id"]
    first = await upload(worker, ticket["id"], line, phone_photo("white"))
    twice = await upload(worker, ticket["id"], line, phone_photo("white"))
    assert twice.status == 200 and twice.body["duplicate"] is True and twice.body["id"] == first.body["id"]
    for colour in ("red", "green", "blue", "yellow", "gray"):
        assert (await upload(worker, ticket["id"], "other", phone_photo(colour))).status == 201
    seventh = await upload(worker, ticket["id"], "other", phone_photo("black"))
    assert seventh.status == 409 and seventh.code == "too_many_files"
    assert len((await worker.get(f"/api/tickets/{ticket['id']}/documents")).body) == 6


async def test_a_broken_upload_resumes_where_it_stopped(platform: Platform, case, settings: Settings) -> None:
    ticket, item, worker, clerk = case
    data = pdf_page()
    begun = await worker.post(f"/api/tickets/{ticket['id']}/uploads",
                              {"material": str(item["materials"][0]["id"]), "size": len(data), "filename": "户口簿.pdf"})
    assert begun.status == 201
    upload_id, half = begun.body["upload_id"], len(data) // 2

    async def put(offset: int, chunk: bytes) -> Any:
        return await worker.call("PUT", f"/api/uploads/{upload_id}", data=chunk, headers_extra={"Upload-Offset": str(offset)})

    assert (await put(0, data[:half])).body["offset"] == half
    assert (await worker.get(f"/api/uploads/{upload_id}")).body["offset"] == half
    assert (await worker.get(f"/api/tickets/{ticket['id']}/documents")).body == [], "half a document is invisible"
    early = await worker.post(f"/api/uploads/{upload_id}/complete")
    assert early.status == 400 and early.code == "upload_incomplete"
    wrong = await put(0, data[half:])
    assert wrong.status == 409 and wrong.code == "offset_mismatch" and wrong.body["error"]["detail"]["offset"] == half
    stranger = await platform.login("worker2")
    assert (await stranger.get(f"/api/uploads/{upload_id}")).status == 404
    rest = await put(half, data[half:])
    assert rest.status == 200, rest
    assert rest.body["offset"] == len(data)
    done = await worker.post(f"/api/uploads/{upload_id}/complete")
    assert done.status == 201 and done.body["content_type"] == "application/pdf" and done.body["page_count"] == 1

    abandoned = await worker.post(f"/api/tickets/{ticket['id']}/uploads",
                                  {"material": "other", "size": len(data), "filename": "x.pdf"})
    await worker.call("PUT", f"/api/uploads/{abandoned.body['upload_id']}", data=data[:100],
                      headers_extra={"Upload-Offset": "0"})
    assert any((settings.data_dir / "staging").iterdir())
    platform.clock.advance(hours=25)
    await platform.app[MONITOR].run_once()
    assert not any((settings.data_dir / "staging").iterdir()), "expired staging swept"
    assert (await worker.get(f"/api/uploads/{abandoned.body['upload_id']}")).status == 404


async def test_only_the_case_participants_upload_and_see(platform: Platform, case) -> None:
    ticket, item, worker, clerk = case
    doc = (await upload(worker, ticket["id"], item["materials"][0]["id"], phone_photo())).body
    for name in ("worker2", "clerk2"):
        stranger = await platform.login(name)
        assert (await upload(stranger, ticket["id"], "other", phone_photo("blue"))).status in (403, 404)
        assert (await stranger.get(f"/api/documents/{doc['id']}")).status == 404
        assert (await stranger.get(f"/api/tickets/{ticket['id']}/documents")).status == 404
    waiting = await take(worker, (await district_item(worker, "SB"))["id"], "还在排队")
    refused = await upload(worker, waiting["id"], "other", phone_photo("green"))
    assert refused.status == 409 and refused.code == "call_not_open"
    shown = (await clerk.get(f"/api/documents/{doc['id']}")).body
    tampered = shown["urls"]["original"].replace("sig=", "sig=0")
    async with platform.http.get(platform.base + tampered) as r:
        assert r.status == 400


async def test_clerk_asks_for_a_capture_and_the_worker_client_answers(platform: Platform, case) -> None:
    from tests.rtc_client import CallClient, in_call

    ticket, item, worker_api, clerk_api = case
    async with in_call(platform.base, ticket["id"], worker_api.token, clerk_api.token) as (worker, clerk):
        line = item["materials"][1] if len(item["materials"]) > 1 else item["materials"][0]
        asked = await clerk.request("capture_request", {"ticket_id": ticket["id"], "material": str(line["id"])})
        assert asked["ok"] and asked["material_name"] == line["name"]
        not_clerk = await worker.request("capture_request", {"ticket_id": ticket["id"], "material": "other"})
        assert not_clerk["error"]["code"] == "role_forbidden"

        async def arrived(client: CallClient, name: str) -> Any:
            while not client.named(name):
                await asyncio.sleep(0.02)
            return client.named(name)[0]

        request = await asyncio.wait_for(arrived(worker, "capture_requested"), 5)
        answer = await upload(worker_api, ticket["id"], request["material"], phone_photo("teal"), source="capture")
        assert answer.status == 201 and answer.body["source"] == "capture"
        added = await asyncio.wait_for(arrived(clerk, "document.added"), 5)
        assert added["material_id"] == line["id"] and added["source"] == "capture"


async def test_on_an_s3_server_a_document_lands_in_the_bucket_and_opens_by_presigned_url(
    settings: Settings, clock, moto_endpoint: str
) -> None:
    """The app on its S3 backend against moto's S3 server process (not MinIO itself: moto stands
    in for it, spoken to by the real ``minio`` client library that ``S3Store`` uses)."""
    from uuid import uuid4

    from aiohttp import ClientSession
    from aiohttp.test_utils import TestServer

    from server.app import create_app
    from server.keys import STORE

    bucket = f"yb-app-{uuid4().hex[:10]}"
    s3_settings = settings.with_changes(s3_endpoint=moto_endpoint, s3_public_endpoint=moto_endpoint,
                                        s3_access_key="testing", s3_secret_key="testing", s3_bucket=bucket)
    server = TestServer(create_app(s3_settings, clock=clock, run_monitor=False))
    await server.start_server()
    try:
        async with ClientSession() as http:
            platform = Platform(server, http, clock, server.app)
            worker = await platform.login("worker1")
            clerk = await platform.login("clerk1")
            item = await district_item(worker, "MZ")
            ticket = await take(worker, item["id"], "对象存储群众")
            await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
            photo = phone_photo()
            stored = await upload(worker, ticket["id"], item["materials"][0]["id"], photo)
            assert stored.status == 201, stored
            shown = (await clerk.get(f"/api/documents/{stored.body['id']}")).body
            url = shown["urls"]["original"]
            assert url.startswith(f"http://{moto_endpoint}/{bucket}/") and "X-Amz-Signature" in url
            original = await fetch(platform, url)
            assert not has_gps(original) and Image.open(io.BytesIO(original)).size == (300, 400)
            store = server.app[STORE]
            assert len([k for k in shown["urls"]]) == 3 and await store.exists(url.split(f"/{bucket}/")[1].split("?")[0])
            stranger = await platform.login("worker2")
            assert (await stranger.get(f"/api/documents/{stored.body['id']}")).status == 404
            async with http.get(f"http://{moto_endpoint}/{bucket}/{url.split(f'/{bucket}/')[1].split('?')[0]}") as r:
                assert r.status == 403, "the bucket is never public: without a signature, no bytes"
    finally:
        await server.close()
