"""A socket.io fuzzer: hundreds of generated events (malformed, oversized, out of order, for
someone else's ticket, unknown) from the people in a call and from outsiders, while a real
call between a worker and a clerk runs. Every event gets an ack, a result or an error with a
known code; the server logs no error; and the call is still up afterwards.

The generator is a seeded `random.Random`, so a failure replays exactly. ICE candidates it
makes name loopback addresses only (or none that parse): the relay checks what it is given.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
from collections import Counter
from typing import Any

import pytest
import socketio

from signaling.ids import participant_id, track_id
from tests.conftest import Platform
from tests.helpers import district_item, take, window_of
from tests.rtc_client import CallClient

SEED = 20261123
EVENTS_PER_CLIENT = 70
EVENTS = ("refresh", "ping_app", "join", "publish", "subscribe_answer", "resubscribe", "ice_candidate", "mute",
          "chat", "capture_request", "leave")
# Every refusal a client may be given; anything else (internal_error above all) fails the test.
KNOWN_CODES = {
    "invalid_input", "malformed_json", "unknown_event", "sdp_too_large", "auth_required", "ticket_not_found",
    "call_not_open", "not_in_call", "malformed_sdp", "negotiation_failed", "unknown_track_source",
    "codec_unsupported", "no_offer_pending", "no_peer_connection", "malformed_candidate", "track_not_found",
    "empty_message", "message_too_long", "channel_forbidden", "not_in_main_call", "chat_rate_limited",
    "role_forbidden", "unknown_material",
}
SOURCES = ("camera", "microphone", "screen", "side_camera", "side_microphone")


class Fuzzer:
    """Makes events: ``(name, args)`` where args is the tuple of payloads sent (usually one)."""

    def __init__(self, rng: random.Random, tickets: list[int], own: int | None = None) -> None:
        self.rng, self.tickets, self.own = rng, tickets, own  # own: the ticket of the sender's call

    def scalar(self) -> Any:
        return self.rng.choice([
            None, True, False, 0, -1, 1, 2**31 - 1, 2**31, 2**63, -(2**63), 10**30, 3.5, float("inf"),
            "", "17", "x" * self.rng.choice([1, 100, 5000]), "张三\x00", "\ud800", "🙂" * 50,
            self.rng.randrange(-5, 10**6),
        ])

    def value(self, depth: int = 0) -> Any:
        roll = self.rng.random()
        if depth > 3 or roll < 0.5:
            return self.scalar()
        if roll < 0.75:
            return [self.value(depth + 1) for _ in range(self.rng.randrange(4))]
        return {self.rng.choice(["ticket_id", "text", "sdp", "pc", "type", "a", ""]): self.value(depth + 1)
                for _ in range(self.rng.randrange(4))}

    def ticket(self) -> Any:
        if self.own is not None and self.rng.random() < 0.6:
            return self.own
        return self.rng.choice([*self.tickets, *self.tickets, 2**31 - 1, 0, 2**63, "1", None])

    def candidate(self) -> Any:
        address = self.rng.choice(["127.0.0.1", "127.0.0.2", "::1", "999.1.1.1", "not-an-address", ""])
        return self.rng.choice([
            None, {}, {"candidate": ""},
            {"candidate": f"candidate:1 1 udp 2122260223 {address} {self.rng.randrange(70000)} typ host",
             "sdpMid": self.rng.choice(["0", "1", "9", None, "x" * 40]),
             "sdpMLineIndex": self.rng.choice([0, 1, 7, None, -1, 300])},
            {"candidate": "candidate:" + "".join(self.rng.choice("abc ") for _ in range(30)), "sdpMid": "0"},
            {"candidate": 5}, "candidate:1 1 udp",
        ])

    def near_valid(self, name: str) -> dict[str, Any]:
        """A payload of the right shape for ``name``, then one field made wrong (or not)."""
        ticket = self.ticket()
        shapes: dict[str, dict[str, Any]] = {
            "join": {"ticket_id": ticket}, "leave": {"ticket_id": ticket}, "resubscribe": {"ticket_id": ticket},
            "publish": {"ticket_id": ticket, "type": "offer", "sources": {"0": self.rng.choice(SOURCES)},
                        "sdp": self.rng.choice(["v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", "garbage" * 3,
                                                "v=0\r\n" + "a=x\r\n" * 14000])},
            "subscribe_answer": {"ticket_id": ticket, "type": "answer", "sdp": "v=0\r\nnot an answer\r\n"},
            "ice_candidate": {"ticket_id": ticket, "pc": self.rng.choice(["publish", "subscribe", "other"]),
                              "candidate": self.candidate()},
            "mute": {"ticket_id": ticket, "source": self.rng.choice([*SOURCES, "nose"]), "muted": self.rng.random() < 0.5},
            "chat": {"ticket_id": ticket, "text": self.rng.choice(["你好", " ", "x" * 2001, "好" * 2000]),
                     "channel": self.rng.choice(["call", "consultation", "secret"])},
            "capture_request": {"ticket_id": ticket, "material": self.rng.choice(["1", "other", "99999999999", ""])},
            "refresh": {}, "ping_app": {},
        }
        payload = dict(shapes[name])
        if payload and self.rng.random() < 0.4:
            key = self.rng.choice(list(payload))
            if self.rng.random() < 0.3:
                del payload[key]
            else:
                payload[key] = self.value()
        if self.rng.random() < 0.1:
            payload["extra"] = 1
        return payload

    def event(self, allowed: tuple[str, ...]) -> tuple[str, tuple[Any, ...]]:
        roll = self.rng.random()
        if roll < 0.08:
            name = self.rng.choice(["connect", "disconnect", "message", "", "on_join", "__init__", "x" * 300,
                                    "加入", "join ", "JOIN"])
            return name, (self.value(),)
        name = self.rng.choice(allowed)
        if roll < 0.12:
            return name, ()
        if roll < 0.17:
            return name, (self.near_valid(name), self.value())
        if roll < 0.3:
            return name, (self.value(),)
        return name, (self.near_valid(name),)


UNREADABLE = ['["join", {"ticket_id": ' + "9" * 5000 + "}]", '["chat", ' + "[" * 3000 + "]" * 3000 + "]",
              '{"join": 1}', "[]", "[7]", '["join", {"ticket_id": 1}', "not json at all", '["ping_app"] trailing']


async def raw_call(client: socketio.AsyncClient, text: str) -> Any:
    answered: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    ack_id = client._generate_ack_id("/", lambda *args: answered.set_result(args[0] if args else None))
    await client.eio.send(f"2{ack_id}{text}")
    return await asyncio.wait_for(answered, 10)


def verdict(ack: Any) -> str:
    """"ok" for a result, the error code for a refusal, or what was wrong with the ack."""
    if not isinstance(ack, dict):
        return f"not an object: {ack!r:.80}"
    if "error" in ack:
        code = ack["error"].get("code") if isinstance(ack["error"], dict) else None
        return code if code in KNOWN_CODES else f"unknown code {code!r}"
    return "ok"


async def fuzz(client: socketio.AsyncClient, fuzzer: Fuzzer, allowed: tuple[str, ...], seen: Counter[str]) -> int:
    sent = 0
    for _ in range(EVENTS_PER_CLIENT):
        name, args = fuzzer.event(allowed)
        try:
            ack = await client.call(name, args[0] if len(args) == 1 else (args if args else None), timeout=10)
        except socketio.exceptions.TimeoutError:
            ack = "no ack"
        seen[verdict(ack)] += 1
        sent += 1
    for text in UNREADABLE:
        seen[verdict(await raw_call(client, text))] += 1
        sent += 1
    return sent


async def test_every_fuzzed_event_is_answered_while_a_call_keeps_running(
        platform: Platform, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.WARNING)
    worker_api, clerk_api = await platform.login("worker1"), await platform.login("clerk1")
    ticket = await take(worker_api, (await district_item(worker_api, "MZ"))["id"], "视频群众")
    assert (await clerk_api.post(f"/api/windows/{window_of(clerk_api)}/call-next")).status == 200
    # Someone else's call: worker2's ticket with clerk2.
    worker2, clerk2 = await platform.login("worker2"), await platform.login("clerk2")
    foreign = await take(worker2, (await district_item(worker2, "GA"))["id"], "别处的群众")
    assert (await clerk2.post(f"/api/windows/{window_of(clerk2)}/call-next")).status == 200
    tickets = [ticket["id"], foreign["id"]]

    worker = await CallClient(platform.base, worker_api.token).connect()
    clerk = await CallClient(platform.base, clerk_api.token).connect()
    outsiders: list[socketio.AsyncClient] = []
    try:
        assert (await worker.join(ticket["id"]))["role"] == "worker"
        assert (await clerk.join(ticket["id"]))["role"] == "clerk"
        await worker.publish()
        await clerk.publish()
        worker_cam = track_id(participant_id(worker_api.user['id']), "camera")
        await clerk.wait_frames(worker_cam, 10)

        for api in [worker2, clerk2, await platform.login("expert1"), await platform.login("supervisor1"),
                    await platform.login("auditor1")]:
            client = socketio.AsyncClient(reconnection=False)
            await client.connect(platform.base, auth={"token": api.token}, transports=["websocket"], wait_timeout=5)
            outsiders.append(client)

        seen: Counter[str] = Counter()
        rng = random.Random(SEED)
        # The call's own sockets keep their seats and connections: no leave, and no join or
        # resubscribe (each renegotiates from a fresh connection, which this test client does not do).
        in_call = tuple(e for e in EVENTS if e not in ("leave", "join", "resubscribe"))
        jobs = [fuzz(c, Fuzzer(random.Random(rng.random()), tickets), EVENTS, seen) for c in outsiders]
        jobs += [fuzz(c.sio, Fuzzer(random.Random(rng.random()), tickets, own=ticket["id"]), in_call, seen)
                 for c in (worker, clerk)]
        sent = sum(await asyncio.gather(*jobs))
        with capsys.disabled():
            print(f"\nsocket fuzz: {sent} events sent, answers {dict(seen.most_common())}")

        assert sum(seen.values()) == sent
        assert {v for v in seen if v != "ok" and v not in KNOWN_CODES} == set(), seen
        assert seen["unknown_event"] and seen["invalid_input"] and seen["malformed_json"], seen

        # The call kept running: media still flows, and chat goes both ways.
        platform.clock.advance(seconds=61)  # past the chat pace the fuzzing used up
        for client in (worker, clerk):  # what the fuzzing may have muted, legitimately
            for source in ("camera", "microphone"):
                assert (await client.request("mute", {"ticket_id": ticket["id"], "source": source, "muted": False}))["ok"]
        await clerk.wait_frames(worker_cam, 10)
        said = await worker.request("chat", {"ticket_id": ticket["id"], "text": "模糊测试之后还能说话"})
        assert said["ok"] is True, said
        await asyncio.wait_for(_chat_reaches(clerk, "模糊测试之后还能说话"), 5)
        for client in outsiders:
            assert (await client.call("ping_app", {}, timeout=5))["ok"] is True
    finally:
        for client in outsiders:
            await client.disconnect()
        await worker.close()
        await clerk.close()

    gc.collect()  # a task whose exception nobody read is reported when it is collected
    errors = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], errors[:5]


async def _chat_reaches(client: CallClient, text: str) -> None:
    while not any(m.get("text") == text for m in client.named("chat_message")):
        await asyncio.sleep(0.02)

