"""网点一览 (1 + 17 + 288) and 延伸点管理: the network view's figures are the hand-counted ones — who
is online (a real socket), calls in progress, today's tickets, points silent for more than N days
with the clock moved — scoped like the wall, kept across a restart, from a fixed number of queries;
the administrator adds, renames, moves, stops and imports points (bad rows reported by row, column
and reason), and a stopped point's worker cannot take a ticket."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from sqlalchemy import event

from server.app import create_app
from server.config import Settings
from server.keys import DB
from tests.conftest import Api, Platform
from tests.helpers import Listener, district_item, take, window_of

GAOQIAO = "高桥镇便民服务中心"
HEADER = "延伸点名称,所属镇街,地址,联系电话,状态"


async def town_item(api: Api, code: str) -> dict[str, Any]:
    org = (await api.get("/api/org")).body
    dept = next(d["id"] for d in org["departments"] if d["code"] == code)
    return (await api.get("/api/items", department_id=dept, level="town")).body[0]


async def network(api: Api, **query: Any) -> dict[str, Any]:
    reply = await api.get("/api/network", **query)
    assert reply.status == 200, reply
    return dict(reply.body)


def point(view: dict[str, Any], point_id: int) -> dict[str, Any]:
    return next(p for t in view["towns"] for p in t["extension_points"] if p["id"] == point_id)


def town(view: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in view["towns"] if t["name"] == name)


def figures(row: dict[str, Any]) -> tuple[int, ...]:
    keys = ("points", "online_points", "silent_points", "staff", "online", "calls_now", "tickets_today")
    return tuple(row[k] for k in keys)


async def upload(api: Api, data: bytes, content_type: str = "text/csv") -> Any:
    return await api.call("POST", "/api/extension-points/import", data=data,
                          headers_extra={"Content-Type": content_type})


async def test_the_network_shows_who_is_online_calls_todays_tickets_and_silent_points(
        platform: Platform, settings: Settings) -> None:
    # Monday 10:00: worker2 logs in at their point and takes a ticket (today is then Monday).
    worker2 = await platform.login("worker2")
    await take(worker2, (await town_item(worker2, "MZ"))["id"], "上周的群众")
    p2 = worker2.user["extension_point_id"]

    # Eight days later (Tuesday 10:00): worker1 logs in, stays connected and takes two tickets at
    # 梁祝村, one of them called by clerk4; worker3 logs in and takes one (not connected by socket).
    platform.clock.advance(days=8)
    worker1, worker3, clerk4 = [await platform.login(u) for u in ("worker1", "worker3", "clerk4")]
    p1, p3 = worker1.user["extension_point_id"], worker3.user["extension_point_id"]
    item = (await town_item(worker1, "MZ"))["id"]
    first = await take(worker1, item, "李大爷")
    await take(worker1, item, "王大妈")
    assert (await clerk4.post(f"/api/windows/{window_of(clerk4)}/call-next")).body["id"] == first["id"]
    await take(worker3, (await district_item(worker3, "SB"))["id"], "区级群众")

    admin, supervisor1, supervisor2 = [await platform.login(u) for u in ("admin", "supervisor1", "supervisor2")]
    async with Listener() as socket:
        await socket.connect(platform, worker1)
        view = await network(supervisor1)
        gaoqiao = town(view, GAOQIAO)
        k = len(gaoqiao["extension_points"])
        assert view["silent_days"] == 7 and view["service_day"] == "2026-12-01"
        assert (view["totals"]["towns"], view["totals"]["points"]) == (17, 288)
        one = point(view, p1)
        assert (one["staff"], one["online"], one["online_names"], one["calls_now"], one["tickets_today"],
                one["silent"]) == (1, 1, ["梁祝村便民服务点 王芳"], 1, 2, False)
        assert one["last_connected_at"].startswith("2026-12-01T02:00")
        two = point(view, p2)
        assert (two["online"], two["calls_now"], two["tickets_today"], two["silent"]) == (0, 0, 0, True), \
            "Monday's ticket is not today's; last connected 8 days ago"
        assert two["last_connected_at"].startswith("2026-11-23T02:00")
        three = point(view, p3)
        assert (three["online"], three["tickets_today"], three["silent"]) == (0, 1, False), "logged in today"
        never = next(p for p in gaoqiao["extension_points"] if p["id"] != p1)
        assert never["last_connected_at"] is None and never["silent"], "never connected: silent"
        # 高桥镇: k points, one online, every other silent; the district: 288 less 梁祝村 and worker3's point
        assert figures(gaoqiao) == (k, 1, k - 1, 1, 1, 1, 2)
        assert figures(view["totals"]) == (288, 1, 286, 3, 1, 1, 3)
        assert figures((await network(supervisor1, silent_days=10))["totals"]) == (288, 1, 285, 3, 1, 1, 3), \
            "eight days is not silent for ten"
        assert await network(admin) == view

        # A town supervisor sees their town only; another town's centre is not theirs.
        mine = await network(supervisor2)
        assert [t["name"] for t in mine["towns"]] == [GAOQIAO] and figures(mine["totals"]) == figures(gaoqiao)
        other = town(view, next(t["name"] for t in view["towns"] if t["name"] != GAOQIAO))
        refused = await supervisor2.get("/api/network", centre_id=other["centre_id"])
        assert (refused.status, refused.code) == (404, "centre_not_found")
        assert [t["name"] for t in (await network(supervisor1, centre_id=other["centre_id"]))["towns"]] == [other["name"]]
        for bad in (0, 366, "x"):
            assert (await supervisor1.get("/api/network", silent_days=bad)).code == "invalid_input"
        platform.clock.advance(minutes=5)

    # The socket gone five minutes later: nobody online at 梁祝村, which last connected then.
    after = await until(supervisor1, p1, lambda p: p["online"] == 0 and p["last_connected_at"].startswith(
        "2026-12-01T02:05"))
    assert after["silent"] is False

    # A restart (another app on the same database) knows when each point last connected.
    restarted = TestServer(create_app(settings, clock=platform.clock, run_monitor=False))
    await restarted.start_server()
    try:
        async with ClientSession() as http:
            fresh = Api(http, str(restarted.make_url("")).rstrip("/"))
            login = await fresh.post("/api/auth/login", {"username": "supervisor1", "password": "demo12345"})
            again = await network(Api(http, fresh.base, login.body["token"]))
            assert point(again, p2)["silent"] and point(again, p2)["last_connected_at"] == two["last_connected_at"]
            assert point(again, p1)["last_connected_at"] == after["last_connected_at"]
    finally:
        await restarted.close()


async def until(api: Api, point_id: int, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The point as the network shows it once ``check`` holds (a disconnect is handled after the ack)."""
    for _ in range(100):
        found = point(await network(api), point_id)
        if check(found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"the point is still {found}")


async def test_the_network_is_a_fixed_number_of_queries_however_many_points(platform: Platform) -> None:
    admin = await platform.login("admin")
    engine = platform.app[DB].engine.sync_engine
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    async def queries() -> int:
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            await network(admin)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    before = await queries()
    rows = "\n".join(f"新增便民服务点{i},高桥镇,,," for i in range(120))
    assert (await upload(admin, f"{HEADER}\n{rows}".encode())).body["created"] == 120
    assert (await network(admin))["totals"]["points"] == 408
    assert await queries() == before <= 12, statements


async def test_the_admin_adds_renames_moves_and_stops_a_point_and_refusals_change_nothing(platform: Platform) -> None:
    admin = await platform.login("admin")
    org = (await admin.get("/api/org")).body
    towns = {c["name"]: c["id"] for c in org["centres"] if c["level"] == "town"}
    district = next(c["id"] for c in org["centres"] if c["level"] == "district")
    gaoqiao, other = towns[GAOQIAO], next(i for n, i in towns.items() if n != GAOQIAO)

    added = await admin.post("/api/extension-points", {"name": " 高桥镇新村便民服务点 ", "centre_id": gaoqiao,
                                                       "address": "高桥镇新村路 1 号", "contact_phone": "0574-87650001"})
    assert added.status == 201, added
    new = added.body
    assert (new["name"], new["centre_id"], new["active"], new["last_connected_at"]) == (
        "高桥镇新村便民服务点", gaoqiao, True, None)
    taken_name = next(p["name"] for c in org["centres"] if c["id"] == gaoqiao for p in c["extension_points"])
    refusals = [
        ({"name": taken_name, "centre_id": gaoqiao}, 409, "extension_point_exists"),
        ({"name": "某村", "centre_id": district}, 422, "centre_not_town"),
        ({"name": "某村", "centre_id": 999999}, 404, "centre_not_found"),
        ({"name": "某村", "centre_id": gaoqiao, "contact_phone": "打电话"}, 422, "contact_phone_invalid"),
        ({"name": "", "centre_id": gaoqiao}, 422, "invalid_input"),
        ({"name": "某村", "centre_id": gaoqiao, "extra": 1}, 422, "invalid_input"),
    ]
    for body, status, code in refusals:
        reply = await admin.post("/api/extension-points", body)
        assert (reply.status, reply.code) == (status, code), (body, reply)

    path = f"/api/extension-points/{new['id']}"
    for body, status, code in [({"name": taken_name}, 409, "extension_point_exists"),
                               ({"centre_id": district}, 422, "centre_not_town"),
                               ({"contact_phone": "123"}, 422, "contact_phone_invalid")]:
        reply = await admin.call("PATCH", path, json=body)
        assert (reply.status, reply.code) == (status, code), (body, reply)
    assert (await admin.call("PATCH", "/api/extension-points/999999", json={"active": False})).code == \
        "extension_point_not_found"
    unchanged = point(await network(admin), new["id"])
    assert (unchanged["name"], unchanged["centre_id"], unchanged["contact_phone"]) == (
        "高桥镇新村便民服务点", gaoqiao, "0574-87650001"), "refusals changed nothing"

    # A worker account added to it, listed as its worker; renamed and moved, the worker goes along.
    made = await admin.post("/api/users", {"username": "xincun1", "password": "xincun-12345", "role": "worker",
                                           "display_name": "新村 周敏", "extension_point_id": new["id"]})
    assert made.status == 201, made
    listed = await admin.get("/api/users", role="worker", extension_point_id=new["id"])
    assert [u["username"] for u in listed.body] == ["xincun1"]
    moved = await admin.call("PATCH", path, json={"name": "新村便民服务点", "centre_id": other})
    assert moved.status == 200 and (moved.body["name"], moved.body["centre_id"]) == ("新村便民服务点", other)
    view = await network(admin)
    assert point(view, new["id"])["staff"] == 1 and new["id"] in {
        p["id"] for p in town(view, next(n for n, i in towns.items() if i == other))["extension_points"]}

    # Stopped: its worker cannot take a ticket; not counted among the points in use, nor silent.
    worker = await platform.login("xincun1", "xincun-12345")
    item = (await town_item(worker, "MZ"))["id"]
    stopped = await admin.call("PATCH", path, json={"active": False})
    assert stopped.status == 200 and stopped.body["active"] is False
    refused = await worker.post("/api/tickets", {"item_id": item, "resident": {"name": "张三"}})
    assert (refused.status, refused.code) == (403, "extension_point_disabled"), refused
    assert "已停用" in refused.body["error"]["message"]
    view = await network(admin)
    assert view["totals"]["points"] == 288 and view["totals"]["disabled_points"] == 1
    assert point(view, new["id"])["silent"] is False
    assert (await admin.call("PATCH", path, json={"active": True})).body["active"] is True
    assert (await worker.post("/api/tickets", {"item_id": item, "resident": {"name": "张三"}})).status == 201

    auditor = await platform.login("auditor1")
    actions = [e["action"] for e in (await auditor.get("/api/audit", target_type="extension_point")).body]
    assert actions.count("extension_point.update") == 3 and actions.count("extension_point.create") == 1, actions
    moved_entry = next(e for e in (await auditor.get("/api/audit", action="extension_point.update")).body
                       if "centre_id" in e["detail"])
    assert moved_entry["detail"]["centre_id"] == {"from": gaoqiao, "to": other}


async def test_a_csv_import_takes_the_good_rows_and_reports_each_bad_one_by_row_column_and_reason(
        platform: Platform) -> None:
    admin = await platform.login("admin")
    org = (await admin.get("/api/org")).body
    gaoqiao = next(c for c in org["centres"] if c["name"] == GAOQIAO)
    existing = gaoqiao["extension_points"][0]["name"]
    csv = "\n".join((
        HEADER,
        "高桥镇产业园便民服务点,高桥镇,高桥镇工业路 8 号,0574-88001234,",  # row 2: new, by the short town name
        f"{existing},高桥镇便民服务中心,高桥镇某路 1 号,,停用",  # row 3: an existing point updated and stopped
        "无名镇便民服务点,无名镇,,,",  # row 4: no such town
        ",高桥镇,,,",  # row 5: no name
        "高桥镇电话便民服务点,高桥镇,,打这个,",  # row 6: phone
        "高桥镇状态便民服务点,高桥镇,,,暂停",  # row 7: state
        ",,,,",  # row 8: blank, left out
        "高桥镇产业园便民服务点,高桥镇,,,",  # row 9: repeats row 2
    ))
    reply = await upload(admin, csv.encode())
    assert reply.status == 200, reply
    body = reply.body
    assert (body["rows"], body["imported"], body["created"], body["updated"], body["bad_rows"]) == (7, 2, 1, 1, 5)
    assert [(e["row"], e["column"]) for e in body["errors"]] == [
        (4, "所属镇街"), (5, "延伸点名称"), (6, "联系电话"), (7, "状态"), (9, "延伸点名称")]
    reasons = {e["row"]: e["reason"] for e in body["errors"]}
    assert "无名镇" in reasons[4] and "第 2 行" in reasons[9]

    view = await network(admin)
    points = {p["name"]: p for p in town(view, GAOQIAO)["extension_points"]}
    assert points["高桥镇产业园便民服务点"]["address"] == "高桥镇工业路 8 号" and points["高桥镇产业园便民服务点"]["active"]
    assert (points[existing]["address"], points[existing]["active"]) == ("高桥镇某路 1 号", False)
    assert "无名镇便民服务点" not in str(view) and "高桥镇电话便民服务点" not in points

    # The same file again, saved by Excel in China (GBK): nothing new, nothing changed; blank
    # address and phone cells keep what the points have; 启用 resumes the stopped one.
    again = "\n".join((HEADER, "高桥镇产业园便民服务点,高桥镇,,,", f"{existing},高桥镇,,,启用"))
    second = (await upload(admin, again.encode("gbk"))).body
    assert (second["created"], second["updated"], second["unchanged"], second["bad_rows"]) == (0, 1, 1, 0)
    points = {p["name"]: p for p in town(await network(admin), GAOQIAO)["extension_points"]}
    assert (points[existing]["address"], points[existing]["active"]) == ("高桥镇某路 1 号", True)
    assert points["高桥镇产业园便民服务点"]["contact_phone"] == "0574-88001234"

    # A file without a required column, or not a table at all, imports nothing.
    missing = await upload(admin, "延伸点名称,地址\n某村,某路".encode())
    assert (missing.status, missing.code) == (422, "import_columns") and "所属镇街" in missing.body["error"]["message"]
    assert (await upload(admin, b"\xff\xfe\x00\x01garbage")).code == "import_unreadable"
    assert (await upload(admin, HEADER.encode())).code == "import_empty"
    auditor = await platform.login("auditor1")
    imports = (await auditor.get("/api/audit", action="extension_point.import")).body
    assert [(e["detail"]["created"], e["detail"]["bad_rows"]) for e in imports] == [(0, 0), (1, 5)]
