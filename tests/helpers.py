"""Small story helpers shared by the API tests."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import socketio

from tests.conftest import Api, Platform


async def item_named(api: Api, name: str) -> dict[str, Any]:
    reply = await api.get("/api/items", q=name)
    assert reply.status == 200, reply
    matches = [i for i in reply.body if i["name"] == name]
    assert matches, f"no item {name}"
    return matches[0]


async def district_item(api: Api, department_code: str) -> dict[str, Any]:
    org = (await api.get("/api/org")).body
    dept = next(d for d in org["departments"] if d["code"] == department_code)
    items = (await api.get("/api/items", department_id=dept["id"], level="district")).body
    assert items, f"no district item for {department_code}"
    return items[0]


async def take(api: Api, item_id: int, name: str, resident_extra: dict[str, Any] | None = None,
               **extra: Any) -> dict[str, Any]:
    reply = await api.post("/api/tickets", {"item_id": item_id, "resident": {"name": name, **(resident_extra or {})},
                                            **extra})
    assert reply.status == 201, reply
    return reply.body


def window_of(clerk: Api, index: int = 0) -> int:
    return int(clerk.user["windows"][index]["id"])


async def ticket_called(platform: Platform, resident: str) -> tuple[dict[str, Any], Api, Api]:
    """worker1 takes a ticket for a district 民政 item, clerk1 calls it: (ticket, worker, clerk).
    The call's clients: `tests.rtc_client.in_call`."""
    worker, clerk = await platform.login("worker1"), await platform.login("clerk1")
    ticket = await take(worker, (await district_item(worker, "MZ"))["id"], resident)
    assert (await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")).status == 200
    return ticket, worker, clerk


class Listener:
    """A socket.io client that keeps every event it receives."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self.client.on("*", self._record)

    async def _record(self, name: str, data: Any) -> None:
        self.events.append((name, data))

    async def connect(self, platform: Platform, api: Api) -> Listener:
        await self.client.connect(platform.base, auth={"token": api.token}, socketio_path="socket.io",
                                  transports=["websocket"], wait_timeout=5)
        return self

    async def __aenter__(self) -> Listener:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.client.disconnect()

    def named(self, name: str) -> list[Any]:
        return [d for n, d in self.events if n == name]

    async def wait_for(self, name: str, predicate: Any = lambda d: True, timeout: float = 5) -> Any:
        async def poll() -> Any:
            while True:
                for d in self.named(name):
                    if predicate(d):
                        return d
                await asyncio.sleep(0.02)

        return await asyncio.wait_for(poll(), timeout)


async def until(condition: Any, timeout: float, what: str) -> None:
    """Wait until a synchronous condition holds (a relay's state, a client's counters)."""
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.1)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"{what} not within {timeout} s") from None


def on_the_machines_address(platform: Platform) -> None:
    """The relay of ``platform`` gathers on this machine's first IPv4 address instead of the
    suite's 127.0.0.1: Firefox and GStreamer's libnice pair no loopback candidate."""
    from aioice.ice import get_host_addresses

    from server.keys import CALLS
    from signaling.relay.ice import MediaNetwork

    calls = platform.app[CALLS]
    calls.relay.network = calls.probes.network = MediaNetwork((get_host_addresses(use_ipv4=True, use_ipv6=False)[0],))


async def texted_code(platform: Platform, phone: str) -> str:
    """The newest sign-in code texted to ``phone``, read from the outbox as an admin would."""
    admin = await platform.login("admin")
    messages = (await admin.get("/api/notifications")).body["messages"]
    masked = phone[:3] + "****" + phone[-4:]
    text = next(m["text"] for m in messages if m["kind"] == "sign_in_code" and m["to"] == masked)
    match = re.search(r"验证码为 (\d{6})", text)
    assert match, text
    return match.group(1)


async def resident_sign_in(platform: Platform, phone: str = "13700137000", **extra: Any) -> Api:
    """A resident signed in on their own phone with the code texted to them (屏对屏)."""
    anyone = platform.anonymous()
    sent = await anyone.post("/api/resident/code", {"phone": phone})
    assert sent.status == 201, sent
    code = await texted_code(platform, phone)
    reply = await anyone.post("/api/resident/sign-in", {"phone": phone, "code": code, "consent": True, **extra})
    assert reply.status == 200, reply
    return Api(platform.http, platform.base, reply.body["token"], reply.body["user"])
