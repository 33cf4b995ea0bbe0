"""Peers that offer only mDNS host candidates (``<uuid>.local``) publish and subscribe.

Firefox with its fake devices (or before capture is allowed) and Safari hiding its addresses
offer only names the relay cannot resolve. The relay must not give up at once: the peer's
connectivity checks reveal its address as a peer-reflexive candidate (signaling/relay/ice.py).
These aiortc clients stand in for such a browser: every candidate in their SDP is rewritten to
an unresolvable ``<uuid>.local`` name, so only their checks can tell the relay where they are.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from server.keys import CALLS
from signaling.ids import participant_id, room_id
from signaling.relay import ice
from tests.conftest import Platform, Templates, cloned_database
from tests.helpers import ticket_called
from tests.rtc_client import CallClient, NoiseVideo

CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ host.*)$", re.M)


def mdns_only(sdp: str) -> str:
    """Every host candidate's address replaced by a name nobody can resolve, as a browser that
    hides its addresses writes them; no other candidate types (no STUN server here)."""
    names: dict[str, str] = {}

    def hide(m: re.Match[str]) -> str:
        name = names.setdefault(m.group(2), f"{uuid.uuid4()}.local")
        return f"{m.group(1)}{name}{m.group(3)}"

    hidden = CANDIDATE.sub(hide, sdp)
    hidden = re.sub(r"^c=IN IP[46] \S+$", "c=IN IP4 0.0.0.0", hidden, flags=re.M)
    candidates = re.findall(r"^a=candidate:.*$", hidden, re.M)
    assert candidates and all(".local " in c for c in candidates), hidden
    return hidden


class MdnsClient(CallClient):
    """A CallClient whose offers and answers carry only mDNS candidates."""

    async def request(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        if event in ("publish", "subscribe_answer"):
            data = {**data, "sdp": mdns_only(data["sdp"])}
        return await super().request(event, data)


@pytest.fixture
async def database_url(templates: Templates, tmp_path: Path) -> AsyncIterator[str]:
    async with cloned_database("sqlite", templates, tmp_path) as url:
        yield url


@pytest.fixture
async def clients(platform: Platform):
    made: list[CallClient] = []

    async def make(api, kind: type[CallClient] = CallClient) -> CallClient:
        made.append(await kind(platform.base, api.token).connect())
        return made[-1]

    yield make
    for c in made:
        await c.close()


def _remote_types(pc: Any) -> set[str]:
    return {c.type for t in pc.getTransceivers()
            for c in t.receiver.transport.transport._connection.remote_candidates}


async def test_a_worker_offering_only_mdns_candidates_publishes_and_sees_the_clerk(platform, clients) -> None:
    ticket, worker_api, clerk_api = await ticket_called(platform, "视频群众")
    worker, clerk = await clients(worker_api, MdnsClient), await clients(clerk_api)
    await worker.join(ticket["id"])
    await clerk.join(ticket["id"])
    await worker.publish()
    await clerk.publish()
    w, c = participant_id(worker_api.user['id']), participant_id(clerk_api.user['id'])

    await clerk.wait_frames(f"{w}:camera", 15)
    await clerk.wait_frames(f"{w}:microphone", 15)
    await worker.wait_frames(f"{c}:camera", 15)

    room = platform.app[CALLS].relay.rooms[room_id(ticket['id'])]
    publisher_side = room.participants[w].publish_pc
    assert publisher_side.connectionState == "connected"
    assert _remote_types(publisher_side) == {"prflx"}, "the worker was found by its own checks"
    assert room.participants[w].sources[f"{w}:camera"].packets > 0, "the relay received the camera"
    assert _remote_types(room.participants[w].subscribe_pc) == {"prflx"}


async def test_a_peer_whose_checks_never_arrive_still_fails(platform, clients, monkeypatch) -> None:
    """Held end-of-candidates is passed on after CHECK_WAIT_S: no check, no connection."""
    monkeypatch.setattr(ice, "CHECK_WAIT_S", 1.5)
    ticket, worker_api, clerk_api = await ticket_called(platform, "视频群众")
    worker = await clients(worker_api, MdnsClient)
    await worker.join(ticket["id"])
    # An offer whose peer never checks: the answer is never applied, so it never starts.
    pc = worker.publish_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(NoiseVideo())
    await pc.setLocalDescription(await pc.createOffer())
    reply = await worker.request("publish", {"ticket_id": ticket["id"], "type": "offer",
                                             "sdp": pc.localDescription.sdp,
                                             "sources": {pc.getTransceivers()[0].mid: "camera"}})
    assert "sdp" in reply, reply
    room = platform.app[CALLS].relay.rooms[room_id(ticket['id'])]
    relay_side = room.participants[participant_id(worker_api.user['id'])].publish_pc
    await asyncio.sleep(0.5)
    assert relay_side.iceConnectionState == "checking", "waiting for checks, not failed at once"
    for _ in range(100):
        if relay_side.iceConnectionState == "failed":
            break
        await asyncio.sleep(0.1)
    assert relay_side.iceConnectionState == "failed"
