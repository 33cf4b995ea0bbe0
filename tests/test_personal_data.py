"""Residents' ID and phone numbers at rest: sealed (AES-256-GCM), found by a keyed hash, never
stored or logged in the clear; a migration seals the numbers already in a database."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from server.crypto import AesGcmSealer, SealError
from server.db import Database
from server.keys import DB
from server.migrate import upgrade
from tests.conftest import Platform, _pg_admin, pg_url
from tests.helpers import district_item, take, window_of

ID_NUMBER = "33020319800101002X"
PHONE = "13900001111"


async def raw_ticket(platform: Platform, ticket_id: int) -> dict[str, object]:
    async with platform.app[DB].read() as s:
        row = (await s.execute(text("SELECT * FROM tickets WHERE id = :id"), {"id": ticket_id})).mappings().one()
    return dict(row)


async def test_numbers_are_stored_sealed_and_found_again_by_their_keyed_hash(platform: Platform) -> None:
    worker = await platform.login("worker1")
    item = await district_item(worker, "MZ")
    ticket = await take(worker, item["id"], "王五", resident_extra={"id_number": ID_NUMBER.lower(), "phone": PHONE})
    row = await raw_ticket(platform, ticket["id"])
    stored = json.dumps({k: str(v) for k, v in row.items()}, ensure_ascii=False)
    for secret in (ID_NUMBER, ID_NUMBER.lower(), PHONE, "0101002", "00001111"):
        assert secret not in stored, f"{secret} is in the ticket row in the clear"
    assert str(row["resident_sealed"]).startswith("v1.") and len(str(row["id_number_hash"])) == 64

    again = await worker.post("/api/tickets", {"item_id": item["id"], "resident": {"name": "王五", "id_number": ID_NUMBER}})
    assert again.status == 409 and again.code == "duplicate_ticket", "the same person is found through the hash"
    namesake = await worker.post("/api/tickets", {"item_id": item["id"],
                                                  "resident": {"name": "王五", "id_number": "330203198001010011"}})
    assert namesake.status == 201, "a namesake with another ID number is another person"

    clerk = await platform.login("clerk1")
    await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    full = (await clerk.get(f"/api/tickets/{ticket['id']}/resident")).body
    assert (full["id_number"], full["phone"]) == (ID_NUMBER, PHONE), "the uppercase X is kept, the rest opened"


async def test_nothing_personal_reaches_the_log(platform: Platform, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    worker = await platform.login("worker1")
    item = await district_item(worker, "MZ")
    ticket = await take(worker, item["id"], "赵六", resident_extra={"id_number": ID_NUMBER, "phone": PHONE})
    await worker.post("/api/tickets", {"item_id": item["id"], "resident": {"name": "赵六", "id_number": ID_NUMBER}})
    await worker.post("/api/tickets", {"item_id": "x", "resident": {"name": "赵六", "id_number": ID_NUMBER,
                                                                    "phone": PHONE}})
    clerk = await platform.login("clerk1")
    await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    await clerk.get(f"/api/tickets/{ticket['id']}/resident")
    assert caplog.records, "the log was captured"
    logged = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert ID_NUMBER not in logged and PHONE not in logged


def test_a_sealed_value_opens_only_with_its_key_and_untouched() -> None:
    key = os.urandom(32)
    sealed = AesGcmSealer(key).seal({"id_number": ID_NUMBER})
    assert AesGcmSealer(key).open(sealed) == {"id_number": ID_NUMBER}
    with pytest.raises(SealError):
        AesGcmSealer(os.urandom(32)).open(sealed)
    version, body = sealed.split(".")
    blob = bytearray(base64.urlsafe_b64decode(body))
    blob[-1] ^= 1
    with pytest.raises(SealError):
        AesGcmSealer(key).open(f"{version}.{base64.urlsafe_b64encode(bytes(blob)).decode()}")
    assert AesGcmSealer(key).search_hash(ID_NUMBER) == AesGcmSealer(key).search_hash(ID_NUMBER)
    assert AesGcmSealer(key).search_hash(ID_NUMBER) != AesGcmSealer(os.urandom(32)).search_hash(ID_NUMBER)


ROWS = [
    "INSERT INTO centres (id, name, level) VALUES (1, '区中心', 'district')",
    "INSERT INTO extension_points (id, name, centre_id) VALUES (1, '某村', 1)",
    "INSERT INTO departments (id, code, name) VALUES (1, 'MZ', '民政')",
    "INSERT INTO service_items (id, code, name, initials, description, department_id, level, active) "
    "VALUES (1, 'I1', '高龄津贴', '', '', 1, 'district', true)",
    "INSERT INTO users (id, username, display_name, password_hash, role, active, extension_point_id, specialties, "
    "available, parallel_consultations, created_at) VALUES (1, 'w', 'w', 'x', 'worker', true, 1, '[]', true, false, "
    "'2026-11-01 10:00:00+00')",
    "INSERT INTO tickets (id, number, service_day, centre_id, department_id, item_id, extension_point_id, worker_id, "
    "resident, callback, status, taken_at, recalls, transfers) VALUES (1, 'MZ001', '2026-11-01', 1, 1, 1, 1, 1, "
    "'{\"name\": \"老李\", \"id_number\": \"330203195001011234\", \"phone\": \"13812345678\"}', false, 'completed', "
    "'2026-11-01 10:00:00+00', 0, 0)",
    "INSERT INTO tickets (id, number, service_day, centre_id, department_id, item_id, extension_point_id, worker_id, "
    "resident, callback, status, taken_at, recalls, transfers) VALUES (2, 'MZ002', '2026-11-01', 1, 1, 1, 1, 1, "
    "'{\"name\": \"没留号码\"}', false, 'waiting', '2026-11-01 10:01:00+00', 0, 0)",
]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_the_migration_seals_the_numbers_already_stored(kind: str, tmp_path: Path) -> None:
    if kind == "sqlite":
        url, name = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}", None
    else:
        name = f"yb_mig_{uuid.uuid4().hex[:8]}"
        await _pg_admin(f'CREATE DATABASE "{name}"')
        url = pg_url(name)
    try:
        await asyncio.to_thread(upgrade, url, "0006")
        db = Database(url)
        async with db.write() as s:
            for statement in ROWS:
                await s.execute(text(statement))
        with pytest.raises(RuntimeError, match="data key"):
            await asyncio.to_thread(upgrade, url, "0007")
        key = os.urandom(32)
        await asyncio.to_thread(lambda: upgrade(url, "0007", data_key=key))
        async with db.read() as s:
            rows = {r.id: r for r in (await s.execute(text(
                "SELECT id, resident, resident_sealed, id_number_hash FROM tickets ORDER BY id"))).all()}
        await db.dispose()
        resident = rows[1].resident if isinstance(rows[1].resident, dict) else json.loads(rows[1].resident)
        assert resident == {"name": "老李", "id_number_masked": "330203********1234", "phone_masked": "138****5678"}
        sealer = AesGcmSealer(key)
        assert sealer.open(rows[1].resident_sealed) == {"id_number": "330203195001011234", "phone": "13812345678"}
        assert rows[1].id_number_hash == sealer.search_hash("330203195001011234")
        assert rows[2].resident_sealed is None and rows[2].id_number_hash is None
    finally:
        if name:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
