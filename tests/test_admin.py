"""An admin manages users, windows and items; the API describes itself; restarts lose nothing."""

from __future__ import annotations

from aiohttp.test_utils import TestServer

from server.app import create_app
from server.config import Settings
from server.keys import MONITOR
from tests.conftest import Platform
from tests.helpers import district_item, take, window_of
from tests.media import phone_photo
from tests.test_documents import upload

DESIGN_PATHS = {
    ("get", "/api/health"), ("post", "/api/auth/login"), ("get", "/api/me"), ("get", "/api/org"),
    ("get", "/api/items"), ("get", "/api/items/{item_id}"), ("post", "/api/tickets"),
    ("get", "/api/tickets/{ticket_id}"), ("get", "/api/tickets"), ("get", "/api/queues"),
    ("post", "/api/windows/{window_id}/call-next"), ("post", "/api/tickets/{ticket_id}/recall"),
    ("post", "/api/tickets/{ticket_id}/no-show"), ("post", "/api/tickets/{ticket_id}/transfer"),
    ("post", "/api/tickets/{ticket_id}/complete"), ("post", "/api/tickets/{ticket_id}/cancel"),
    ("post", "/api/tickets/{ticket_id}/rating"), ("get", "/api/dashboard"),
}


async def test_openapi_documents_every_call_of_the_core(platform: Platform) -> None:
    doc = (await platform.anonymous().get("/api/openapi.json")).body
    present = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert DESIGN_PATHS <= present
    take_op = doc["paths"]["/api/tickets"]["post"]
    ref = take_op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "item_id" in doc["components"]["schemas"][ref]["properties"]
    index = await platform.http.get(platform.base + "/")
    assert "openapi.json" in await index.text()


async def test_admin_creates_a_clerk_window_and_item_that_work_together(platform: Platform) -> None:
    admin = await platform.login("admin")
    org = (await admin.get("/api/org")).body
    district = next(c for c in org["centres"] if c["level"] == "district")
    mz = next(d for d in org["departments"] if d["code"] == "MZ")
    window = await admin.post("/api/windows", {"name": "新开民政窗口", "centre_id": district["id"], "department_ids": [mz["id"]]})
    assert window.status == 201
    user = await admin.post("/api/users", {"username": "clerk9", "password": "long-enough-pw", "role": "clerk",
                                           "display_name": "新云窗口", "window_ids": [window.body["id"]]})
    assert user.status == 201 and user.body["windows"][0]["id"] == window.body["id"]
    dup = await admin.post("/api/users", {"username": "clerk9", "password": "long-enough-pw", "role": "clerk"})
    assert dup.status == 409 and dup.code == "username_taken"
    bad = await admin.post("/api/users", {"username": "w9", "password": "long-enough-pw", "role": "worker"})
    assert bad.status == 422 and bad.code == "extension_point_required"
    item = await admin.post("/api/items", {
        "code": "MZ-999", "name": "测试事项", "department_id": mz["id"], "level": "district",
        "materials": [{"name": "身份证", "required": True}, {"name": "委托书", "required": False, "note": "代办时"}],
    })
    assert item.status == 201 and [m["required"] for m in item.body["materials"]] == [True, False]
    changed = await admin.call("PUT", f"/api/items/{item.body['id']}", json={
        "code": "MZ-999", "name": "测试事项（新）", "department_id": mz["id"], "level": "district",
        "materials": [{"name": "户口簿"}],
    })
    assert changed.status == 200 and [m["name"] for m in changed.body["materials"]] == ["户口簿"]
    users = (await admin.get("/api/users", role="clerk")).body
    assert "clerk9" in [u["username"] for u in users]

    worker = await platform.login("worker1")
    ticket = await take(worker, item.body["id"], "新事项群众")
    clerk9 = await platform.login("clerk9", "long-enough-pw")
    called = await clerk9.post(f"/api/windows/{window_of(clerk9)}/call-next")
    assert called.status == 200 and called.body["id"] == ticket["id"]
    closing = await admin.call("PUT", f"/api/windows/{window.body['id']}", json={
        "name": "新开民政窗口", "centre_id": district["id"], "department_ids": [mz["id"]], "active": False})
    assert closing.status == 409 and closing.code == "window_busy"


async def test_a_restart_loses_no_ticket_position_alert_or_audit(platform: Platform, settings: Settings) -> None:
    worker = await platform.login("worker1")
    item = await district_item(worker, "MZ")
    first = await take(worker, item["id"], "重启前一")
    second = await take(worker, item["id"], "重启前二")
    platform.clock.advance(minutes=16)
    await platform.app[MONITOR].run_once()
    await platform.server.close()

    app = create_app(settings, clock=platform.clock, run_monitor=False)
    server = TestServer(app)
    await server.start_server()
    try:
        platform.server, platform.app = server, app
        worker = await platform.login("worker1")
        seen = await worker.get(f"/api/tickets/{second['id']}")
        assert seen.body["status"] == "waiting" and seen.body["position"] == 2
        supervisor = await platform.login("supervisor1")
        alerts = (await supervisor.get("/api/alerts")).body
        assert {a["ticket_id"] for a in alerts if a["kind"] == "wait_timeout"} == {first["id"], second["id"]}
        assert [a for a in await app[MONITOR].run_once() if a["kind"] == "wait_timeout"] == []
        auditor = await platform.login("auditor1")
        assert (await auditor.get("/api/audit", action="ticket.take")).body
        clerk = await platform.login("clerk1")
        called = await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
        assert called.body["id"] == first["id"]
        third = await take(worker, item["id"], "重启后")
        assert third["number"] == "MZ003"
    finally:
        await server.close()


async def test_editing_an_items_checklist_keeps_documents_filed_under_its_lines(platform: Platform) -> None:
    """The admin renames, reorders and adds lines of an item some case has filed documents
    under: the lines keep their ids, the case's documents stay filed; dropping a line a document
    is filed under is refused (409 material_in_use) and changes nothing. (It used to delete and
    recreate every line, which PostgreSQL refused once a document pointed at one.)"""
    admin, worker, clerk = [await platform.login(u) for u in ("admin", "worker1", "clerk1")]
    item = await district_item(worker, "MZ")
    page = (await admin.get(f"/api/items/{item['id']}")).body
    ticket = await take(worker, item["id"], "改清单群众")
    assert (await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")).body["id"] == ticket["id"]
    first = page["materials"][0]
    filed = await upload(clerk, ticket["id"], first["id"], phone_photo())
    assert filed.status == 201, filed
    fields = {k: page[k] for k in ("code", "name", "department_id", "level", "description", "initials", "active")}
    lines = [{"name": m["name"], "required": m["required"], "note": m["note"]} for m in page["materials"]]

    dropped = await admin.put(f"/api/items/{item['id']}", {**fields, "materials": lines[1:]})
    assert (dropped.status, dropped.code) == (409, "material_in_use"), dropped
    assert (await admin.get(f"/api/items/{item['id']}")).body == page, "nothing changed"

    renamed = [{**lines[0], "id": first["id"], "name": first["name"] + "（原件）"}, *lines[1:], {"name": "新增材料", "required": False}]
    changed = await admin.put(f"/api/items/{item['id']}", {**fields, "materials": renamed, "produces": ["测试证"]})
    assert changed.status == 200, changed
    assert [m["id"] for m in changed.body["materials"][:-1]] == [m["id"] for m in page["materials"]]
    assert changed.body["materials"][0]["name"] == first["name"] + "（原件）"
    assert changed.body["produces"] == ["测试证"]
    checklist = (await clerk.get(f"/api/tickets/{ticket['id']}/checklist")).body
    line = next(c for c in checklist if c["material_id"] == first["id"])
    assert line["name"] == first["name"] + "（原件）" and line["document_ids"] == [filed.body["id"]]

    unfiled = await admin.put(f"/api/items/{item['id']}", {**fields, "materials": renamed[:-1]})
    assert unfiled.status == 200 and len(unfiled.body["materials"]) == len(page["materials"]), unfiled
