"""Hostile input gets a 4xx with a stable code, never a 500.

Each test here is one input that used to reach the database, the JSON parser or the socket
server's reader unguarded (and came back as a 500, or as silence).
"""

from __future__ import annotations

from typing import Any

from server.keys import STORE
from tests.conftest import Api, Platform
from tests.helpers import district_item, take

HUGE = 2**63  # past every integer column; 2**31 is past PostgreSQL's INTEGER


async def raw_post(api: Api, path: str, text: str | bytes) -> Any:
    return await api.call("POST", path, data=text, headers_extra={"Content-Type": "application/json"})


async def test_ids_outside_the_database_range_are_invalid_input_in_path_query_and_body(platform: Platform) -> None:
    worker = await platform.login("worker1")
    clerk = await platform.login("clerk1")
    for bad in (HUGE, 2**31, 0, -1):
        assert (await worker.get(f"/api/tickets/{bad}")).code == "invalid_input", bad
        assert (await worker.get("/api/tickets", department_id=bad)).code == "invalid_input", bad
        reply = await worker.post("/api/tickets", {"item_id": bad, "resident": {"name": "张三"}})
        assert (reply.status, reply.code) == (422, "invalid_input"), bad
    ticket = await take(worker, (await district_item(worker, "MZ"))["id"], "李四")
    reply = await clerk.post(f"/api/tickets/{ticket['id']}/transfer", {"department_id": HUGE})
    assert (reply.status, reply.code) == (422, "invalid_input")
    assert (await worker.get(f"/api/tickets/{2**31 - 1}")).status == 404  # in range: simply unknown


async def test_a_number_with_thousands_of_digits_is_invalid_input(platform: Platform) -> None:
    worker = await platform.login("worker1")
    digits = "9" * 5000
    reply = await raw_post(worker, "/api/tickets", f'{{"item_id": {digits}, "resident": {{"name": "张三"}}}}')
    assert (reply.status, reply.code) == (422, "invalid_input")
    assert (await worker.get(f"/api/tickets/{digits}")).code == "invalid_input"
    assert (await worker.get("/api/tickets", limit=digits)).code == "invalid_input"


async def test_json_nested_ten_thousand_deep_is_malformed_json(platform: Platform) -> None:
    worker = await platform.login("worker1")
    reply = await raw_post(worker, "/api/tickets", "[" * 10000 + "]" * 10000)
    assert (reply.status, reply.code) == (400, "malformed_json")
    nested = '{"item_id": 1, "resident": {"name": "张三", "note": ' + "[" * 900 + "]" * 900 + "}}"
    assert (await raw_post(worker, "/api/tickets", nested)).code == "invalid_input"


async def test_text_the_database_cannot_store_is_invalid_input(platform: Platform) -> None:
    worker = await platform.login("worker1")
    item = await district_item(worker, "MZ")
    for name in ("张\x00三", "\ud800"):
        reply = await worker.post("/api/tickets", {"item_id": item["id"], "resident": {"name": name}})
        assert (reply.status, reply.code) == (422, "invalid_input"), repr(name)
    assert (await worker.get("/api/items", q="医\x00疗")).code == "invalid_input"
    assert (await worker.get("/api/uploads/abc\x00defgh")).code == "invalid_input"
    assert (await worker.get("/api/tickets")).status == 200


async def test_query_parameters_are_checked_against_their_enums_and_bounds(platform: Platform) -> None:
    admin = await platform.login("admin")
    auditor = await platform.login("auditor1")
    assert (await admin.get("/api/tickets", status="lost")).code == "invalid_input"
    assert (await admin.get("/api/users", role="king")).code == "invalid_input"
    assert (await admin.get("/api/items", level="galaxy")).code == "invalid_input"
    assert (await admin.get("/api/tickets", limit=0)).code == "invalid_input"
    assert (await admin.get("/api/alerts", limit=-5)).code == "invalid_input"
    assert [u["role"] for u in (await admin.get("/api/users", role="clerk")).body] == ["clerk"] * 4
    # A time filter names its offset, and stays within the years a database can hold.
    assert (await auditor.get("/api/audit", since="2026-11-23T10:00:00")).code == "invalid_input"
    assert (await auditor.get("/api/audit", until="9999-12-31T23:59:59-12:00")).code == "invalid_input"
    assert (await auditor.get("/api/audit", since="2026-11-23T10:00:00+08:00")).status == 200


async def test_method_not_allowed_names_the_allowed_methods(platform: Platform) -> None:
    async with platform.http.delete(platform.base + "/api/tickets") as reply:
        assert reply.status == 405
        assert set(reply.headers["Allow"].split(", ")) == {"GET", "POST"}
        assert (await reply.json())["error"]["code"] == "method_not_allowed"


async def test_a_genuine_link_to_a_removed_object_is_not_found(platform: Platform) -> None:
    link = await platform.app[STORE].url("documents/viewing/never-stored")
    async with platform.http.get(platform.base + link) as reply:
        assert reply.status == 404
        assert (await reply.json())["error"]["code"] == "object_not_found"
    async with platform.http.get(platform.base + link.replace("sig=", "sig=0")) as reply:
        assert (await reply.json())["error"]["code"] == "link_expired"
