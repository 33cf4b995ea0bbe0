"""Hostile input gets a 4xx with a stable code, never a 500; every socket event gets an ack.

Each test here is one input that used to reach the database, the JSON parser or the socket
server's reader unguarded (and came back as a 500, or as silence).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio

from server.keys import STORE
from tests.conftest import Api, Platform
from tests.helpers import district_item, take, ticket_called
from tests.rtc_client import CallClient

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


# --- the socket -------------------------------------------------------------------------------

async def connect(platform: Platform, api: Api) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(platform.base, auth={"token": api.token}, socketio_path="socket.io",
                         transports=["websocket"], wait_timeout=5)
    return client


async def raw_call(client: socketio.AsyncClient, payload: str) -> Any:
    """Send one socket.io EVENT packet as raw text (what a hostile client can send) and wait
    for its ack."""
    answered: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    ack_id = client._generate_ack_id("/", lambda *args: answered.set_result(args[0] if args else None))
    await client.eio.send(f"2{ack_id}{payload}")
    return await asyncio.wait_for(answered, 5)


def code(ack: Any) -> str | None:
    return ack.get("error", {}).get("code") if isinstance(ack, dict) else None


@pytest.fixture
async def called(platform: Platform) -> tuple[dict[str, Any], Api, Api]:
    """worker1's ticket, called by clerk1."""
    return await ticket_called(platform, "视频群众")


async def test_a_socket_join_with_a_huge_id_is_answered(platform: Platform) -> None:
    client = await connect(platform, await platform.login("worker1"))
    try:
        for bad in (HUGE, 2**31, 0, "1" * 5000):
            assert code(await client.call("join", {"ticket_id": bad}, timeout=5)) == "invalid_input", bad
        assert code(await client.call("join", {"ticket_id": 2**31 - 1}, timeout=5)) == "ticket_not_found"
        # Integers Python will not read, nesting past the parser's stack, a packet that is not
        # [name, payload]: the reader used to fail and the client waited forever.
        assert code(await raw_call(client, '["join", {"ticket_id": ' + "9" * 5000 + "}]")) == "malformed_json"
        assert code(await raw_call(client, '["join", ' + "[" * 5000 + "]" * 5000 + "]")) == "malformed_json"
        assert code(await raw_call(client, '{"join": 1}')) == "malformed_json"
        assert code(await raw_call(client, "[42]")) == "malformed_json"
        assert (await client.call("ping_app", {}, timeout=5))["ok"] is True
    finally:
        await client.disconnect()


async def test_every_socket_event_is_answered_with_a_code(platform: Platform) -> None:
    client = await connect(platform, await platform.login("worker1"))
    try:
        assert code(await client.call("no_such_event", {}, timeout=5)) == "unknown_event"
        assert code(await client.call("disconnect", {}, timeout=5)) == "unknown_event"
        assert code(await client.call("join", ["not", "an", "object"], timeout=5)) == "invalid_input"
        assert code(await client.call("join", "17", timeout=5)) == "invalid_input"
        assert code(await client.call("join", ({"ticket_id": 1}, {"ticket_id": 2}), timeout=5)) == "invalid_input"
        assert code(await client.call("chat", {"ticket_id": 1, "text": "hi"}, timeout=5)) == "not_in_call"
        big = {"ticket_id": 1, "type": "offer", "sdp": "v=0\r\n" + "a=x\r\n" * 20000, "sources": {"0": "camera"}}
        assert code(await client.call("publish", big, timeout=5)) == "sdp_too_large"
        assert (await client.call("ping_app", timeout=5))["ok"] is True
    finally:
        await client.disconnect()


async def test_malformed_sdp_in_a_call_is_refused_with_its_code(platform: Platform, called) -> None:
    ticket, worker_api, _ = called
    worker = await connect(platform, worker_api)
    try:
        assert (await worker.call("join", {"ticket_id": ticket["id"]}, timeout=5))["role"] == "worker"
        offer = {"ticket_id": ticket["id"], "type": "offer", "sdp": "this is not a session description",
                 "sources": {"0": "camera"}}
        assert code(await worker.call("publish", offer, timeout=10)) == "malformed_sdp"
        answer = {"ticket_id": ticket["id"], "type": "answer", "sdp": "v=0\r\nnonsense\r\n"}
        assert code(await worker.call("subscribe_answer", answer, timeout=10)) in ("malformed_sdp", "no_offer_pending")
    finally:
        await worker.disconnect()


async def test_chat_is_refused_past_its_pace_and_opens_again_as_time_passes(platform: Platform, called) -> None:
    ticket, worker_api, clerk_api = called
    worker, clerk = await connect(platform, worker_api), await connect(platform, clerk_api)
    try:
        for client in (worker, clerk):
            await client.call("join", {"ticket_id": ticket["id"]}, timeout=5)

        async def say(client: socketio.AsyncClient, text: str) -> Any:
            return await client.call("chat", {"ticket_id": ticket["id"], "text": text}, timeout=5)

        for n in range(5):
            assert (await say(worker, f"第{n}条"))["ok"] is True
        assert code(await say(worker, "太快的一条")) == "chat_rate_limited"
        assert (await say(clerk, "云窗口照常发言"))["ok"] is True  # per person, not per call
        platform.clock.advance(seconds=2.1)
        assert (await say(worker, "过一会儿再发"))["ok"] is True

        # The minute's allowance: 60 messages, however well spaced.
        sent = 6
        while sent < 60:
            platform.clock.advance(seconds=0.45)
            assert (await say(worker, f"第{sent}条"))["ok"] is True, sent
            sent += 1
        platform.clock.advance(seconds=3)
        assert code(await say(worker, "一分钟内的第61条")) == "chat_rate_limited"
        platform.clock.advance(seconds=60)
        assert (await say(worker, "一分钟后"))["ok"] is True
        stored = [m["text"] for m in (await worker_api.get(f"/api/tickets/{ticket['id']}/messages")).body]
        assert "太快的一条" not in stored and "一分钟内的第61条" not in stored
    finally:
        await worker.disconnect()
        await clerk.disconnect()


async def test_chat_past_2000_characters_is_refused_as_too_long_and_not_stored(platform: Platform, called) -> None:
    ticket, worker_api, _ = called
    worker = await connect(platform, worker_api)
    try:
        await worker.call("join", {"ticket_id": ticket["id"]}, timeout=5)
        long = await worker.call("chat", {"ticket_id": ticket["id"], "text": "好" * 2001}, timeout=5)
        assert code(long) == "message_too_long"
        assert code(await worker.call("chat", {"ticket_id": ticket["id"], "text": "  "}, timeout=5)) == "empty_message"
        assert (await worker.call("chat", {"ticket_id": ticket["id"], "text": "好" * 2000}, timeout=5))["ok"] is True
        stored = [m["text"] for m in (await worker_api.get(f"/api/tickets/{ticket['id']}/messages")).body]
        assert stored == ["好" * 2000]
    finally:
        await worker.disconnect()


async def test_a_socket_action_is_audited_with_the_client_address(platform: Platform, called) -> None:
    ticket, worker_api, _ = called
    worker = await connect(platform, worker_api)
    try:
        assert (await worker.call("join", {"ticket_id": ticket["id"]}, timeout=5))["role"] == "worker"
    finally:
        await worker.disconnect()
    auditor = await platform.login("auditor1")
    (entry,) = (await auditor.get("/api/audit", action="call.join", target_id=str(ticket["id"]))).body
    assert entry["actor_id"] == worker_api.user["id"]
    assert entry["ip"] == "127.0.0.1"


async def test_odd_ice_candidates_get_an_answer_with_a_code(platform: Platform, called) -> None:
    ticket, worker_api, _ = called
    worker = CallClient(platform.base, worker_api.token)
    await worker.connect()
    try:
        await worker.join(ticket["id"])
        await worker.publish(audio=False)
        line = "candidate:1 1 udp 2122260223 {host} 9 typ {kind}"
        for candidate, expected in [
            ({"candidate": line.format(host="127.0.0.1", kind="host")}, "invalid_input"),  # neither mid nor index
            ({"candidate": line.format(host="999.1.1.1", kind="host"), "sdpMid": "0"}, "ok"),  # ignored by ICE
            ({"candidate": line.format(host="127.0.0.1", kind="prflx"), "sdpMid": "0"}, "ok"),
            ({"candidate": line.format(host="127.0.0.1", kind="host"), "sdpMid": "7"}, "ok"),  # no such m-line
            ({"candidate": "candidate:banana", "sdpMid": "0"}, "malformed_candidate"),
        ]:
            ack = await worker.sio.call("ice_candidate", {"ticket_id": ticket["id"], "pc": "publish",
                                                          "candidate": candidate}, timeout=10)
            assert (code(ack) or "ok") == expected, (candidate, ack)
    finally:
        await worker.close()
