"""Supervisors: 15-minute wait alerts, yellow/red warnings once per crossing, tidal windows,
the dashboard, the audit log — with the clock moved, never slept."""

from __future__ import annotations

import dataclasses

import pytest

from server.config import Settings
from server.keys import MONITOR
from tests.conftest import Platform
from tests.helpers import district_item, take, window_of


async def test_a_ticket_waiting_over_15_minutes_raises_one_alert(platform: Platform) -> None:
    worker = await platform.login("worker1")
    supervisor = await platform.login("supervisor1")
    ticket = await take(worker, (await district_item(worker, "MZ"))["id"], "李大爷")
    platform.clock.advance(minutes=14, seconds=50)
    assert [a for a in await platform.app[MONITOR].run_once() if a["kind"] == "wait_timeout"] == []
    platform.clock.advance(seconds=20)
    raised = [a for a in await platform.app[MONITOR].run_once() if a["kind"] == "wait_timeout"]
    assert [a["ticket_id"] for a in raised] == [ticket["id"]]
    assert "MZ001" in raised[0]["message"]
    platform.clock.advance(minutes=10)
    assert [a for a in await platform.app[MONITOR].run_once() if a["kind"] == "wait_timeout"] == []
    listed = (await supervisor.get("/api/alerts")).body
    assert [a["ticket_id"] for a in listed if a["kind"] == "wait_timeout"] == [ticket["id"]]
    ack = await supervisor.post(f"/api/alerts/{listed[0]['id']}/acknowledge")
    assert ack.status == 200 and ack.body["acknowledged_by_id"] == supervisor.user["id"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    rules = dataclasses.replace(
        settings.queue, yellow_waiting=3, red_waiting=5, yellow_wait_minutes=30, red_wait_minutes=60
    )
    return settings.with_changes(queue=rules)


async def test_warning_levels_are_raised_once_per_crossing(platform: Platform) -> None:
    worker = await platform.login("worker1")
    clerk = await platform.login("clerk1")
    supervisor = await platform.login("supervisor1")
    item = await district_item(worker, "MZ")

    def warnings(alerts: list[dict]) -> list[str]:
        return [a["level"] for a in alerts if a["kind"] == "warning"]

    for i in range(4):
        await take(worker, item["id"], f"群众{i}")
    assert warnings((await supervisor.get("/api/alerts")).body) == ["yellow"]
    await take(worker, item["id"], "群众4")
    assert warnings((await supervisor.get("/api/alerts")).body) == ["red", "yellow"]
    await take(worker, item["id"], "群众5")
    await platform.app[MONITOR].run_once()
    assert warnings((await supervisor.get("/api/alerts")).body) == ["red", "yellow"]
    queues = (await supervisor.get("/api/queues", department_id=item["department_id"])).body
    assert any(q["warning_level"] == "red" and q["waiting"] == 6 for q in queues)
    for _ in range(4):
        called = await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
        await clerk.post(f"/api/tickets/{called.body['id']}/start")
        await clerk.post(f"/api/tickets/{called.body['id']}/complete", {"result": "consultation_only"})
    await platform.app[MONITOR].run_once()
    assert warnings((await supervisor.get("/api/alerts")).body) == ["red", "yellow"]
    for i in range(6, 9):
        await take(worker, item["id"], f"群众{i}")
    assert warnings((await supervisor.get("/api/alerts")).body) == ["red", "yellow", "red", "yellow"]


async def test_supervisor_opens_and_closes_a_tidal_window(platform: Platform) -> None:
    worker = await platform.login("worker1")
    clerk2 = await platform.login("clerk2")
    supervisor = await platform.login("supervisor1")
    item = await district_item(worker, "MZ")
    ticket = await take(worker, item["id"], "潮汐群众")
    opened = await supervisor.post("/api/tidal-windows", {
        "department_id": item["department_id"], "clerk_id": clerk2.user["id"], "minutes": 60,
    })
    assert opened.status == 201 and opened.body["tidal"] is True and opened.body["active"] is True
    me = (await clerk2.get("/api/me")).body
    assert opened.body["id"] in [w["id"] for w in me["windows"]]
    called = await clerk2.post(f"/api/windows/{opened.body['id']}/call-next")
    assert called.status == 200 and called.body["id"] == ticket["id"]
    board = (await supervisor.get("/api/dashboard")).body
    assert [w["id"] for w in board["tidal_windows"]] == [opened.body["id"]]
    busy = await supervisor.post(f"/api/tidal-windows/{opened.body['id']}/close")
    assert busy.status == 409 and busy.code == "window_busy"
    await clerk2.post(f"/api/tickets/{ticket['id']}/start")
    await clerk2.post(f"/api/tickets/{ticket['id']}/complete", {"result": "consultation_only"})
    closed = await supervisor.post(f"/api/tidal-windows/{opened.body['id']}/close")
    assert closed.status == 200 and closed.body["active"] is False and closed.body["closed_at"]
    again = await clerk2.post(f"/api/windows/{opened.body['id']}/call-next")
    assert again.status == 403
    twice = await supervisor.post(f"/api/tidal-windows/{opened.body['id']}/close")
    assert twice.status == 409 and twice.code == "window_closed"
    board = (await supervisor.get("/api/dashboard")).body
    assert board["tidal_windows"][0]["closed_at"]
    auditor = await platform.login("auditor1")
    actions = [e["action"] for e in (await auditor.get("/api/audit", target_type="window")).body]
    assert "tidal.open" in actions and "tidal.close" in actions


async def test_tidal_window_closes_itself_when_its_time_is_up(platform: Platform) -> None:
    clerk2 = await platform.login("clerk2")
    supervisor = await platform.login("supervisor1")
    opened = (await supervisor.post("/api/tidal-windows", {"department_id": 1, "clerk_id": clerk2.user["id"], "minutes": 30})).body
    platform.clock.advance(minutes=31)
    await platform.app[MONITOR].run_once()
    board = (await supervisor.get("/api/dashboard")).body
    (window,) = [w for w in board["tidal_windows"] if w["id"] == opened["id"]]
    assert window["active"] is False


async def test_dashboard_counts_served_wait_handling_and_rating(platform: Platform) -> None:
    worker = await platform.login("worker1")
    clerk = await platform.login("clerk1")
    supervisor = await platform.login("supervisor1")
    item = await district_item(worker, "MZ")
    ticket = await take(worker, item["id"], "大屏群众")
    await take(worker, item["id"], "等候群众")
    before = (await supervisor.get("/api/dashboard")).body
    mz = next(d for d in before["departments"] if d["code"] == "MZ")
    assert mz["waiting"] == 2 and mz["served_today"] == 0
    platform.clock.advance(minutes=4)
    await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    await clerk.post(f"/api/tickets/{ticket['id']}/start")
    platform.clock.advance(minutes=10)
    await clerk.post(f"/api/tickets/{ticket['id']}/complete", {"result": "consultation_only"})
    await worker.post(f"/api/tickets/{ticket['id']}/rating", {"score": 4})
    after = (await supervisor.get("/api/dashboard")).body
    mz = next(d for d in after["departments"] if d["code"] == "MZ")
    assert mz["served_today"] == 1 and mz["waiting"] == 1
    assert mz["average_wait_s"] == 240 and mz["average_handling_s"] == 600
    assert mz["rating_average"] == 4 and mz["longest_wait_s"] == 840
    assert after["totals"]["served_today"] == 1


async def test_admin_reads_the_audit_of_state_changes_and_privileged_reads(platform: Platform) -> None:
    worker = await platform.login("worker1")
    clerk = await platform.login("clerk1")
    auditor = await platform.login("auditor1")
    ticket = await take(worker, (await district_item(worker, "MZ"))["id"], "审计群众")
    await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    await clerk.get(f"/api/tickets/{ticket['id']}")
    entries = (await auditor.get("/api/audit", target_type="ticket", target_id=str(ticket["id"]))).body
    actions = [e["action"] for e in reversed(entries)]
    assert actions == ["ticket.take", "ticket.call", "ticket.read"]
    assert entries[0]["actor"] == "clerk1" and entries[0]["ip"] == "127.0.0.1"
    assert (await auditor.get("/api/audit", action="auth.login")).body


async def test_audit_names_the_forwarded_client_only_behind_a_trusted_proxy(settings: Settings, clock) -> None:
    from aiohttp import ClientSession
    from aiohttp.test_utils import TestServer

    from server.app import create_app

    async def login_from(trusted: tuple[str, ...], forwarded: str) -> str:
        server = TestServer(create_app(settings.with_changes(trusted_proxies=trusted), clock=clock, run_monitor=False))
        await server.start_server()
        try:
            async with ClientSession() as http:
                platform = Platform(server, http, clock, server.app)
                reply = await http.post(platform.base + "/api/auth/login",
                                        json={"username": "worker1", "password": "demo12345"},
                                        headers={"X-Forwarded-For": forwarded})
                assert reply.status == 200
                auditor = await platform.login("auditor1")
                (entry,) = [e for e in (await auditor.get("/api/audit", action="auth.login", limit=2)).body
                            if e["actor"] == "worker1"][:1]
                return entry["ip"]
        finally:
            await server.close()

    assert await login_from((), "10.9.8.7") == "127.0.0.1", "a forged header from a stranger is ignored"
    assert await login_from(("127.0.0.0/8",), "203.0.113.5, 10.1.2.3") == "10.1.2.3"


async def test_a_supervisor_lists_the_clerks_of_their_departments_to_pick_one_for_a_tidal_window(platform) -> None:
    supervisor = await platform.login("supervisor1")
    org = (await supervisor.get("/api/org")).body
    civil = next(d for d in org["departments"] if d["code"] == "MZ")
    clerks = (await supervisor.get("/api/clerks", department_id=civil["id"])).body
    names = {c["username"] for c in clerks}
    assert "clerk1" in names and "clerk4" in names
    assert all(any(d["id"] == civil["id"] for w in c["windows"] for d in w["departments"]) for c in clerks)
    assert "password_hash" not in clerks[0]

    worker = await platform.login("worker1")
    refused = await worker.get("/api/clerks")
    assert (refused.status, refused.body["error"]["code"]) == (403, "role_forbidden")
    everyone = (await (await platform.login("admin")).get("/api/clerks")).body
    assert {"clerk1", "clerk2", "clerk3", "clerk4"} <= {c["username"] for c in everyone}


async def test_a_transferred_ticket_waits_afresh_in_its_new_queue(platform: Platform) -> None:
    """Its time in the first queue and at the window is no wait in the new one: the wait alert
    counts from the transfer (it used to fire at once, saying it had waited 30 minutes), while
    its place in line still counts from its take."""
    worker, clerk = await platform.login("worker1"), await platform.login("clerk1")
    ga = next(d for d in (await worker.get("/api/org")).body["departments"] if d["code"] == "GA")
    ticket = await take(worker, (await district_item(worker, "MZ"))["id"], "转办群众")
    platform.clock.advance(minutes=10)
    assert (await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")).body["id"] == ticket["id"]
    await clerk.post(f"/api/tickets/{ticket['id']}/start")
    platform.clock.advance(minutes=20)
    moved = await clerk.post(f"/api/tickets/{ticket['id']}/transfer", {"department_id": ga["id"]})
    assert moved.status == 200 and moved.body["taken_at"] == ticket["taken_at"], moved

    def mine(alerts: list) -> list:  # type: ignore[type-arg]
        return [a for a in alerts if a["kind"] == "wait_timeout" and a["ticket_id"] == ticket["id"]]

    assert mine(await platform.app[MONITOR].run_once()) == []
    platform.clock.advance(minutes=14, seconds=50)
    assert mine(await platform.app[MONITOR].run_once()) == []
    platform.clock.advance(seconds=20)
    raised = mine(await platform.app[MONITOR].run_once())
    assert len(raised) == 1 and "已等候 15 分钟" in raised[0]["message"], raised
