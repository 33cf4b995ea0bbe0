"""Backup and restore as docs/operations.md tells it: PostgreSQL with ``pg_dump -Fc`` /
``pg_restore``, the bucket with ``yunbang backup objects`` / ``yunbang restore objects``, the data
key kept apart. A district's cases go through the real HTTP API into PostgreSQL and an S3 server
(moto, its own process), both are dumped, wiped and restored, and the app started again on what
came back finds every ticket, every resident's numbers and every document, byte for byte."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.config import Settings
from server.crypto import AesGcmSealer, SealError
from server.domain.clock import ManualClock
from tests.conftest import Api, Platform, _pg_admin, cloned_database
from tests.helpers import district_item, take, window_of
from tests.media import pdf_page, phone_photo
from tests.services import _free_port
from uploads.backup import MANIFEST, BackupError, BucketBackup
from uploads.storage import minio_client

ROOT = Path(__file__).resolve().parents[1]
RESIDENTS = [("王秀英", "330203195001011234"), ("李建国", "33020319620505321X"), ("张桂兰", "330203194811110025")]


def libpq_url(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://")


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{argv[:4]} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def program(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is not installed (Debian's postgresql-client: `make services`)"
    return found


@pytest.fixture
async def database_url(templates: dict[str, str], tmp_path: Path) -> AsyncIterator[str]:
    async with cloned_database("postgresql", templates, tmp_path) as url:
        yield url


@pytest.fixture
def settings(database_url: str, moto_endpoint: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", database_url=database_url,
        secret_key="backup-test-secret-key-long-enough-0123456789",
        data_key=base64.b64encode(os.urandom(32)).decode(),
        s3_endpoint=moto_endpoint, s3_access_key="testing", s3_secret_key="testing",
        s3_bucket=f"yb-backup-{uuid.uuid4().hex[:12]}", monitor_interval_seconds=3600,
        media_addresses=("127.0.0.1",), check_responses=True,
    )


def cli_env(settings: Settings) -> dict[str, str]:
    """What an operator's shell has: the same YUNBANG_* settings as the server."""
    return {**os.environ, "YUNBANG_DATA_DIR": str(settings.data_dir), "YUNBANG_DATABASE_URL": settings.database_url,
            "YUNBANG_S3_ENDPOINT": settings.s3_endpoint, "YUNBANG_S3_ACCESS_KEY": settings.s3_access_key,
            "YUNBANG_S3_SECRET_KEY": settings.s3_secret_key, "YUNBANG_S3_BUCKET": settings.s3_bucket,
            "YUNBANG_SECRET_KEY": settings.secret_key, "YUNBANG_DATA_KEY": settings.data_key,
            "YUNBANG_REDIS_URL": "", "YUNBANG_LOG_FORMAT": "json"}


async def running(settings: Settings, clock: ManualClock) -> tuple[Platform, TestServer]:
    app = create_app(settings, clock=clock, run_monitor=False)
    server = TestServer(app)
    await server.start_server()
    return Platform(server, aiohttp.ClientSession(), clock, app), server


async def upload(api: Api, ticket_id: int, material: int, data: bytes, name: str, content_type: str) -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("material", str(material))
    form.add_field("file", data, filename=name, content_type=content_type)
    reply = await api.call("POST", f"/api/tickets/{ticket_id}/documents", data=form)
    assert reply.status == 201, reply
    return reply.body


async def what_the_app_shows(platform: Platform) -> dict[str, Any]:
    """Every ticket, each resident's full numbers, every document with its three renditions'
    bytes and content types, and the audit chain's verdict."""
    worker, clerk = await platform.login("worker1"), await platform.login("clerk1")
    shown: dict[str, Any] = {"tickets": {}, "documents": {}}
    for ticket in sorted((await worker.get("/api/tickets")).body, key=lambda t: t["id"]):
        read = (await worker.get(f"/api/tickets/{ticket['id']}")).body
        resident = (await worker.get(f"/api/tickets/{ticket['id']}/resident")).body
        shown["tickets"][ticket["id"]] = {"number": read["number"], "status": read["status"],
                                          "name": resident["name"], "id_number": resident.get("id_number")}
        listed = await clerk.get(f"/api/tickets/{ticket['id']}/documents")
        for document in listed.body if listed.status == 200 else []:
            urls = (await clerk.get(f"/api/documents/{document['id']}")).body["urls"]
            renditions = {}
            for kind in ("original", "viewing", "thumbnail"):
                async with platform.http.get(urls[kind]) as r:
                    assert r.status == 200, (kind, await r.text())
                    renditions[kind] = (r.headers["Content-Type"], await r.read())
            shown["documents"][document["id"]] = {"ticket": ticket["id"], "material": document["material_name"],
                                                  **renditions}
    auditor = await platform.login("auditor1")
    shown["audit_intact"] = (await auditor.get("/api/audit/verify")).body["intact"]
    return shown


async def test_a_dumped_wiped_and_restored_district_has_every_ticket_and_document(
        settings: Settings, clock: ManualClock, tmp_path: Path) -> None:
    platform, server = await running(settings, clock)
    try:
        worker, clerk = await platform.login("worker1"), await platform.login("clerk1")
        item = await district_item(worker, "MZ")
        materials = [m["id"] for m in item["materials"]]
        tickets = [await take(worker, item["id"], name, resident_extra={"id_number": number, "phone": "13900001111"})
                   for name, number in RESIDENTS]
        await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
        await upload(worker, tickets[0]["id"], materials[0], phone_photo("yellow"), "户口本.jpg", "image/jpeg")
        await upload(worker, tickets[0]["id"], materials[1], pdf_page(), "证明.pdf", "application/pdf")
        await clerk.post(f"/api/tickets/{tickets[0]['id']}/start")
        done = await clerk.post(f"/api/tickets/{tickets[0]['id']}/complete", {"result": "materials_incomplete"})
        assert done.status == 200, done
        await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
        await upload(worker, tickets[1]["id"], materials[0], phone_photo("green"), "身份证.jpg", "image/jpeg")
        before = await what_the_app_shows(platform)
    finally:
        await platform.http.close()
        await server.close()
    assert len(before["tickets"]) == 3 and len(before["documents"]) == 3 and before["audit_intact"]
    assert {t["id_number"] for t in before["tickets"].values()} == {number for _, number in RESIDENTS}

    # backup: the database first, then the bucket (objects written after the dump are harmless extras)
    dump, objects = tmp_path / "yunbang.dump", tmp_path / "objects-backup"
    run([program("pg_dump"), "-Fc", "--no-owner", "-f", str(dump), libpq_url(settings.database_url)])
    backed = run([sys.executable, "-m", "server.cli", "backup", "objects", str(objects)], cli_env(settings))
    assert "copied 9 objects" in backed.stdout, backed.stdout
    assert json.loads((objects / MANIFEST).read_text())["complete"] is True

    # lose both: the database dropped, every object and the bucket deleted
    name = database_name(settings.database_url)
    await _pg_admin(f'DROP DATABASE "{name}" WITH (FORCE)')
    client = minio_client(settings.s3_endpoint, "testing", "testing")
    for listed in list(client.list_objects(bucket_name=settings.s3_bucket, recursive=True)):
        client.remove_object(bucket_name=settings.s3_bucket, object_name=listed.object_name)
    client.remove_bucket(bucket_name=settings.s3_bucket)

    # restore: an empty database from the dump, the bucket from the backup, the same data key
    await _pg_admin(f'CREATE DATABASE "{name}"')
    run([program("pg_restore"), "--no-owner", "--exit-on-error", "-d", libpq_url(settings.database_url), str(dump)])
    restored = run([sys.executable, "-m", "server.cli", "restore", "objects", str(objects)], cli_env(settings))
    assert "copied 9 objects" in restored.stdout, restored.stdout
    again = run([sys.executable, "-m", "server.cli", "restore", "objects", str(objects)], cli_env(settings))
    assert "copied 0 objects (0 bytes), 9 already there" in again.stdout, "a second run finds it all there"
    run([sys.executable, "-m", "server.cli", "audit", "verify"], cli_env(settings))

    platform, server = await running(settings, clock)
    try:
        after = await what_the_app_shows(platform)
        worker = await platform.login("worker1")
        assert (await take(worker, item["id"], "新来的")) ["id"] > max(before["tickets"]), "sequences came back too"
    finally:
        await platform.http.close()
        await server.close()
    assert after["tickets"] == before["tickets"]
    assert after["documents"].keys() == before["documents"].keys()
    for document_id, shown in before["documents"].items():
        assert after["documents"][document_id] == shown, f"document {document_id} differs after the restore"
    assert after["audit_intact"]

    # without the data key the numbers stay sealed: it is backed up apart, and needed
    conn = await asyncpg.connect(libpq_url(settings.database_url))
    try:
        sealed = await conn.fetchval("SELECT resident_sealed FROM tickets WHERE id = $1", tickets[0]["id"])
    finally:
        await conn.close()
    assert RESIDENTS[0][1] not in sealed
    with pytest.raises(SealError):
        AesGcmSealer(os.urandom(32)).open(sealed)


@pytest.fixture
def bucket(moto_endpoint: str) -> tuple[Any, str]:
    client = minio_client(moto_endpoint, "testing", "testing")
    name = f"yb-mirror-{uuid.uuid4().hex[:12]}"
    client.make_bucket(bucket_name=name)
    return client, name


def put(client: Any, bucket: str, key: str, data: bytes, content_type: str = "image/jpeg",
        metadata: dict[str, str] | None = None) -> None:
    client.put_object(bucket_name=bucket, object_name=key, data=io.BytesIO(data), length=len(data),
                      content_type=content_type, metadata=metadata)


def test_a_backup_resumes_mirrors_deletions_and_a_restore_keeps_types_and_metadata(
        bucket: tuple[Any, str], tmp_path: Path) -> None:
    client, name = bucket
    big = os.urandom(20 * 1024 * 1024 + 17)  # more than one part each way
    put(client, name, "documents/original/aaa", b"a" * 1000, metadata={"origin": "phone"})
    put(client, name, "documents/thumbnail/aaa", b"t" * 10, content_type="image/webp")
    put(client, name, "documents/original/big", big, content_type="application/pdf")
    directory = tmp_path / "mirror"
    first = BucketBackup(client, name, directory).backup()
    assert (first.copied, first.unchanged, first.removed) == (3, 0, 0)

    client.remove_object(bucket_name=name, object_name="documents/thumbnail/aaa")  # retention deleted it
    put(client, name, "documents/viewing/bbb", b"v" * 100)
    second = BucketBackup(client, name, directory).backup()
    assert (second.copied, second.unchanged, second.removed) == (1, 2, 1)
    assert not (directory / "objects/documents/thumbnail/aaa").exists(), "gone from the bucket, gone from the backup"

    target = f"{name}-restored"
    restored = BucketBackup(client, target, directory).restore()
    assert restored.copied == 3 and BucketBackup(client, target, directory).restore().copied == 0
    found = {o.object_name for o in client.list_objects(bucket_name=target, recursive=True)}
    assert found == {"documents/original/aaa", "documents/original/big", "documents/viewing/bbb"}
    small = client.stat_object(bucket_name=target, object_name="documents/original/aaa")
    assert small.content_type == "image/jpeg" and small.metadata.get("x-amz-meta-origin") == "phone"
    assert client.stat_object(bucket_name=target, object_name="documents/original/big").content_type == \
        "application/pdf"
    response = client.get_object(bucket_name=target, object_name="documents/original/big")
    try:
        assert response.read() == big
    finally:
        response.close()
        response.release_conn()


def test_a_damaged_or_unfinished_backup_is_refused(bucket: tuple[Any, str], tmp_path: Path) -> None:
    client, name = bucket
    put(client, name, "documents/original/aaa", b"a" * 1000)
    directory = tmp_path / "mirror"
    BucketBackup(client, name, directory).backup()
    (directory / "objects/documents/original/aaa").write_bytes(b"b" * 1000)
    with pytest.raises(BackupError, match="damaged"):
        BucketBackup(client, f"{name}-x", directory).restore()
    manifest = json.loads((directory / MANIFEST).read_text())
    (directory / MANIFEST).write_text(json.dumps({**manifest, "complete": False}))
    with pytest.raises(BackupError, match="did not finish"):
        BucketBackup(client, f"{name}-x", directory).restore()
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    (elsewhere / "notes.txt").write_text("mine")
    with pytest.raises(BackupError, match="not empty"):
        BucketBackup(client, name, elsewhere).backup()


def test_backup_objects_says_plainly_when_there_is_no_bucket_to_copy(tmp_path: Path) -> None:
    def backup(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "server.cli", "backup", "objects", str(tmp_path / "b")],
                              cwd=ROOT, env={**os.environ, "YUNBANG_DATA_DIR": str(tmp_path / "data"), **env},
                              capture_output=True, text=True, timeout=120)

    local = backup(YUNBANG_S3_ENDPOINT="")
    assert local.returncode == 2 and "rsync" in local.stderr, "a local store: copy the data directory"
    closed = backup(YUNBANG_S3_ENDPOINT=f"127.0.0.1:{_free_port()}", YUNBANG_S3_ACCESS_KEY="yb",
                    YUNBANG_S3_SECRET_KEY="s3cretpw", YUNBANG_LOG_FORMAT="json")
    assert closed.returncode == 1 and "cannot reach the bucket" in closed.stderr, closed.stderr
    assert "Traceback" not in closed.stderr and "s3cretpw" not in closed.stderr
    assert not (tmp_path / "b").exists()
