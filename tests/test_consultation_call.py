"""The consultation in the call, with real aiortc clients: experts join the case's room, first in
the private channel (never seen or heard by the extension point), then in the main call where
five participants see and hear each other through the relay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server.keys import CALLS
from signaling.ids import participant_id, room_id, track_id
from tests.conftest import Api, Platform, Templates, cloned_database
from tests.helpers import district_item, take, ticket_called, window_of
from tests.relay_internals import never_decoded, never_encoded
from tests.rtc_client import CallClient


@pytest.fixture
async def database_url(templates: Templates, tmp_path: Path) -> AsyncIterator[str]:
    """Media tests run on SQLite only: the database is not what they exercise."""
    async with cloned_database("sqlite", templates, tmp_path) as url:
        yield url


@pytest.fixture
async def clients(platform: Platform) -> AsyncIterator[Any]:
    made: list[CallClient] = []

    async def make(api: Api) -> CallClient:
        made.append(await CallClient(platform.base, api.token).connect())
        return made[-1]

    yield make
    for c in made:
        await c.close()


@pytest.fixture
async def case(platform: Platform) -> tuple[dict[str, Any], Api, Api]:
    return await ticket_called(platform, "会商群众")


async def accepted_experts(platform: Platform, clerk: Api, ticket_id: int, names: list[str]) -> list[Api]:
    experts = [await platform.login(n) for n in names]
    reply = await clerk.post(f"/api/tickets/{ticket_id}/consultations", {"expert_ids": [e.user["id"] for e in experts]})
    assert reply.status == 201, reply
    for invitation, expert in zip(reply.body["invitations"], experts, strict=True):
        assert (await expert.post(f"/api/invitations/{invitation['id']}/accept")).status == 200
    return experts


async def eventually(condition: Any, timeout: float = 5) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


def camera(api: Api) -> str:
    return track_id(participant_id(api.user['id']), "camera")


def microphone(api: Api) -> str:
    return track_id(participant_id(api.user['id']), "microphone")


async def test_five_participants_see_and_hear_each_other_through_the_relay(platform: Platform, case, clients) -> None:
    ticket, worker_api, clerk_api = case
    expert_apis = await accepted_experts(platform, clerk_api, ticket["id"], ["expert1", "expert2", "expert3"])
    assert (await clerk_api.post(f"/api/tickets/{ticket['id']}/consultations/bring-in", {})).status == 200
    people = [worker_api, clerk_api, *expert_apis]
    callers = [await clients(api) for api in people]
    roles = [(await caller.join(ticket["id"])).get("role") for caller in callers]
    assert roles == ["worker", "clerk", "expert", "expert", "expert"]
    # Small pictures at 5 frames a second: five encoders, twenty decoders and the relay share
    # this process (at 30 a second a 2-core machine lost packets to late reads and stalled; at 10
    # a second one whose cores ran at half speed — 2 s for 10 million Python additions — starved
    # a pair of its frames for a minute).
    for caller in callers:
        assert "sdp" in await caller.publish(size=(160, 120), fps=5)

    waits = [
        caller.wait_frames(camera(other), 5, timeout=90)
        for caller, me in zip(callers, people, strict=True) for other in people if other is not me
    ]
    waits += [
        caller.wait_frames(microphone(other), 8, timeout=90)
        for caller, me in zip(callers, people, strict=True) for other in people if other is not me
    ]
    await asyncio.gather(*waits)

    # Passthrough for every pair: each received camera payload is one its publisher's encoder made.
    for caller, me in zip(callers, people, strict=True):
        for other, sender in zip(people, callers, strict=True):
            if other is me:
                continue
            received = caller.received_payloads[camera(other)]
            assert received and all(p in sender.sent_payloads for p in received)
    relay = platform.app[CALLS].relay
    room = relay.rooms[room_id(ticket['id'])]
    assert len(room.participants) == 5
    for participant in room.participants.values():
        assert len(participant.outlets) == 8  # the other four's camera and microphone
        for source in participant.sources.values():
            assert never_decoded(source.receiver)
            assert len(source.outlets) == 4
        for outlet in participant.outlets:
            assert never_encoded(outlet.sender.sender)

    # An expert leaves and comes back; the others see them again.
    leaving = callers[3]
    left = await leaving.request("leave", {"ticket_id": ticket["id"]})
    assert left.get("ok"), left
    await asyncio.sleep(0.2)
    assert len(room.participants) == 4
    assert "error" not in await leaving.join(ticket["id"])
    assert "sdp" in await leaving.publish(size=(160, 120), fps=5)
    await callers[0].wait_frames(camera(expert_apis[1]), 8, timeout=60)

    # The case ends: the room and everything in it goes.
    assert (await clerk_api.post(f"/api/tickets/{ticket['id']}/start")).status == 200
    done = await clerk_api.post(f"/api/tickets/{ticket['id']}/complete", {"result": "consultation_only"})
    assert done.status == 200, done
    for _ in range(100):
        if room_id(ticket['id']) not in relay.rooms:
            break
        await asyncio.sleep(0.05)
    assert room_id(ticket['id']) not in relay.rooms
    timeline = (await clerk_api.get(f"/api/tickets/{ticket['id']}/consultations")).body["timeline"]
    kinds = [e["kind"] for e in timeline]
    assert kinds.count("joined") == 4 and kinds.count("left") == 1  # three experts, one came back


async def test_the_private_channel_never_reaches_the_extension_point(platform: Platform, case, clients) -> None:
    ticket, worker_api, clerk_api = case
    (expert_api,) = await accepted_experts(platform, clerk_api, ticket["id"], ["expert1"])
    worker, clerk, expert = await clients(worker_api), await clients(clerk_api), await clients(expert_api)
    await worker.join(ticket["id"])
    await clerk.join(ticket["id"])
    joined = await expert.join(ticket["id"])
    assert joined["role"] == "expert"
    assert {p["role"] for p in joined["participants"]} == {"worker", "clerk", "expert"}
    for caller, side in ((worker, False), (clerk, True), (expert, False)):
        # the clerk: camera + microphone for the resident, side ones for the experts
        assert "sdp" in await caller.publish(side=side, size=(160, 120))

    side_camera = track_id(participant_id(clerk_api.user['id']), "side_camera")
    await clerk.wait_frames(camera(expert_api), 10, timeout=60)
    await expert.wait_frames(side_camera, 10, timeout=60)
    await expert.wait_frames(camera(worker_api), 10, timeout=60)
    await worker.wait_frames(camera(clerk_api), 10, timeout=60)

    said = await expert.request("chat", {"ticket_id": ticket["id"], "text": "建议先核实户籍迁入时间",
                                         "channel": "consultation"})
    assert said["message"]["channel"] == "consultation"
    refused = await worker.request("chat", {"ticket_id": ticket["id"], "text": "我也看看", "channel": "consultation"})
    assert refused["error"]["code"] == "channel_forbidden"
    too_early = await expert.request("chat", {"ticket_id": ticket["id"], "text": "大家好"})
    assert too_early["error"]["code"] == "not_in_main_call"
    await asyncio.sleep(0.5)

    private = {camera(expert_api), microphone(expert_api), side_camera, track_id(participant_id(clerk_api.user['id']), "side_microphone")}
    offered = {t.get("track_id") for t in worker.track_by_mid.values() if t.get("active")}
    assert not offered & private, offered
    assert not set(worker.received) & private
    assert all(p["role"] != "expert" for p in worker.named("participant_joined"))
    assert all(m["channel"] == "call" for m in worker.named("chat_message"))
    assert any(m["text"] == "建议先核实户籍迁入时间" for m in clerk.named("chat_message"))
    history = (await worker_api.get(f"/api/tickets/{ticket['id']}/messages")).body
    assert all(m["channel"] == "call" for m in history)
    assert any(m["channel"] == "consultation" for m in (await clerk_api.get(f"/api/tickets/{ticket['id']}/messages")).body)
    record = (await clerk_api.get(f"/api/tickets/{ticket['id']}/consultations")).body["timeline"]
    assert [e["kind"] for e in record].count("joined") == 1  # a chat message is not a join

    # Brought into the main call: now the resident sees and hears the expert (never the side tracks).
    brought = await clerk_api.post(f"/api/tickets/{ticket['id']}/consultations/bring-in", {})
    assert brought.status == 200, brought
    await worker.wait_frames(camera(expert_api), 10, timeout=60)
    await worker.wait_frames(microphone(expert_api), 10, timeout=60)
    await eventually(lambda: any(p["role"] == "expert" for p in worker.named("participant_joined")))
    assert not set(worker.received) & {side_camera, track_id(participant_id(clerk_api.user['id']), "side_microphone")}

    # Sent back: the worker's subscription drops the expert's tracks at once.
    assert (await clerk_api.post(f"/api/tickets/{ticket['id']}/consultations/send-back", {})).status == 200
    relay = platform.app[CALLS].relay
    source = relay.source(room_id(ticket['id']), camera(expert_api))
    worker_outlets = relay.rooms[room_id(ticket['id'])].participants[participant_id(worker_api.user['id'])].outlets
    assert source is not None and all(o is not w for o in source.outlets for w in worker_outlets)
    await eventually(lambda: any(p["role"] == "expert" for p in worker.named("participant_left")))


async def test_experts_without_an_accepted_invitation_to_this_case_cannot_join(platform: Platform, case, clients) -> None:
    ticket, _, clerk_api = case
    expert1, expert2 = await platform.login("expert1"), await platform.login("expert2")
    stranger = await clients(expert2)
    assert (await stranger.join(ticket["id"]))["error"]["code"] == "ticket_not_found"

    invitation = (await clerk_api.post(f"/api/tickets/{ticket['id']}/consultations",
                                       {"expert_ids": [expert1.user["id"]]})).body["invitations"][0]
    pending = await clients(expert1)
    assert (await pending.join(ticket["id"]))["error"]["code"] == "ticket_not_found"
    assert (await expert1.post(f"/api/invitations/{invitation['id']}/accept")).status == 200
    assert (await pending.join(ticket["id"]))["role"] == "expert"

    # Another case of the same day: the accepted invitation does not open it.
    worker2 = await platform.login("worker2")
    clerk2 = await platform.login("clerk2")
    code = clerk2.user["windows"][0]["departments"][0]["code"]
    other = await take(worker2, (await district_item(worker2, code))["id"], "另一位群众")
    assert (await clerk2.post(f"/api/windows/{window_of(clerk2)}/call-next")).status == 200
    wrong_case = await clients(expert1)
    assert (await wrong_case.join(other["id"]))["error"]["code"] == "ticket_not_found"
