"""Live events over the real socket.io endpoint, authenticated with the same token."""

from __future__ import annotations

import asyncio

import pytest
import socketio

from server.keys import MONITOR
from tests.conftest import REDIS_URL, Platform
from tests.helpers import Listener, district_item, take, window_of


@pytest.fixture
async def listeners():
    made: list[Listener] = []

    def make() -> Listener:
        made.append(Listener())
        return made[-1]

    yield make
    for listener in made:
        await listener.client.disconnect()


async def test_socket_without_valid_token_is_refused(platform: Platform) -> None:
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(platform.base, auth={"token": "forged"}, transports=["websocket"], wait_timeout=5)


async def test_queue_changes_reach_the_worker_clerks_and_supervisors(platform: Platform, listeners) -> None:
    worker = await platform.login("worker1")
    other_worker = await platform.login("worker2")
    clerk = await platform.login("clerk1")
    clerk2 = await platform.login("clerk2")
    town_clerk = await platform.login("clerk4")
    supervisor = await platform.login("supervisor1")
    w = await listeners().connect(platform, worker)
    ow = await listeners().connect(platform, other_worker)
    c = await listeners().connect(platform, clerk)
    c2 = await listeners().connect(platform, clerk2)
    c4 = await listeners().connect(platform, town_clerk)
    s = await listeners().connect(platform, supervisor)
    item = await district_item(worker, "MZ")
    first = await take(worker, item["id"], "甲大爷", resident_extra={"id_number": "33020319500101123X",
                                                                   "phone": "13812345678"})
    second = await take(worker, item["id"], "乙")
    created = await w.wait_for("ticket.created", lambda d: d["id"] == first["id"])
    assert created["resident"] == {"name": "甲大爷", "id_number": "330203********123X", "phone": "138****5678",
                                   "masked": True}, "the worker gets the name; ID number and phone masked"
    watched = await s.wait_for("ticket.created", lambda d: d["id"] == first["id"])
    assert watched["resident"] == {"name": "甲**", "id_number": "330203********123X", "phone": "138****5678",
                                   "masked": True}, "a supervisor gets no personal data"
    await w.wait_for("ticket.position", lambda d: d["ticket_id"] == second["id"] and d["position"] == 2)
    await c.wait_for("queue.updated", lambda d: d["department_id"] == item["department_id"] and d["waiting"] == 2)

    await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    called = await w.wait_for("ticket.called", lambda d: d["id"] == first["id"])
    assert called["window_name"]
    served = await c.wait_for("ticket.called", lambda d: d["id"] == first["id"])
    assert served["resident"]["name"] == "甲大爷", "the clerk serving the case gets the name"
    await w.wait_for("ticket.position", lambda d: d["ticket_id"] == second["id"] and d["position"] == 1)
    # A socket's messages arrive in order: once the answer to a request sent now is back, every
    # event emitted to that socket before it has arrived (no sleep and hope).
    for listener in (ow, c2, c4, c):
        await listener.client.call("ping_app", {}, timeout=5)
    assert ow.events == [], "another extension point hears nothing of this resident"
    assert c2.events == [] and c4.events == [], "clerks of other queues (department or centre) hear nothing"
    assert {d["id"] for n, d in c.events if n.startswith("ticket.")} == {first["id"]}, \
        "a clerk watching the queue hears its counts; ticket events only of the case it serves"


async def test_wait_alert_is_pushed_to_the_department_supervisor(platform: Platform, listeners) -> None:
    worker = await platform.login("worker1")
    supervisor = await platform.login("supervisor1")
    s = await listeners().connect(platform, supervisor)
    ticket = await take(worker, (await district_item(worker, "MZ"))["id"], "等太久的群众")
    platform.clock.advance(minutes=16)
    await platform.app[MONITOR].run_once()
    alert = await s.wait_for("alert.raised", lambda d: d["kind"] == "wait_timeout")
    assert alert["ticket_id"] == ticket["id"]


async def test_clerk_hears_of_a_tidal_window_and_refreshes_its_rooms(platform: Platform, listeners) -> None:
    worker = await platform.login("worker1")
    clerk2 = await platform.login("clerk2")
    supervisor = await platform.login("supervisor1")
    c2 = await listeners().connect(platform, clerk2)
    item = await district_item(worker, "MZ")
    await supervisor.post("/api/tidal-windows", {"department_id": item["department_id"], "clerk_id": clerk2.user["id"]})
    await c2.wait_for("tidal.opened")
    ack = await c2.client.call("refresh", {}, timeout=5)
    opened = c2.named("tidal.opened")[0]
    assert f"queue:{opened['centre_id']}:{item['department_id']}" in ack["rooms"]
    await take(worker, item["id"], "潮汐")
    await c2.wait_for("queue.updated", lambda d: d["department_id"] == item["department_id"] and d["waiting"] == 1)


async def test_events_cross_nodes_through_redis(settings, clock, listeners) -> None:
    """Two app nodes share Redis: a ticket taken on node A reaches a clerk connected to node B."""
    import uuid

    from aiohttp import ClientSession
    from aiohttp.test_utils import TestServer

    from server.app import create_app

    shared = settings.with_changes(redis_url=REDIS_URL, redis_channel=f"yb-test-{uuid.uuid4().hex}")
    servers = [TestServer(create_app(shared, clock=clock, run_monitor=False)) for _ in range(2)]
    for s in servers:
        await s.start_server()
    try:
        async with ClientSession() as http:
            node_a = Platform(servers[0], http, clock, servers[0].app)
            node_b = Platform(servers[1], http, clock, servers[1].app)
            clerk_on_b = await node_b.login("clerk1")
            listener = await listeners().connect(node_b, clerk_on_b)
            await asyncio.sleep(0.3)
            worker_on_a = await node_a.login("worker1")
            item = await district_item(worker_on_a, "MZ")
            await take(worker_on_a, item["id"], "跨节点")
            await listener.wait_for("queue.updated", lambda d: d["department_id"] == item["department_id"]
                                    and d["waiting"] == 1)
            await listener.client.disconnect()
    finally:
        for s in servers:
            await s.close()
