"""Link quality with real aiortc peers: a subscriber on a thin link shows on the supervisors'
wall as a poor call, and the device check's probe echoes a browser's video over a real
connection to the relay (one at a time, bad input refused, closed when its time is up)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from server.keys import CALLS
from signaling.ids import participant_id, room_id, track_id
from signaling.relay import quality
from tests.conftest import Platform, Templates, cloned_database
from tests.helpers import ticket_called
from tests.rtc_client import CallClient, NoiseVideo


async def until(condition: Any, timeout: float, what: str) -> None:
    async def poll() -> None:
        while not await condition():
            await asyncio.sleep(0.2)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"{what} not within {timeout} s") from None


@pytest.fixture
async def database_url(templates: Templates, tmp_path: Path) -> AsyncIterator[str]:
    """Media tests run on SQLite only: the database is not what they exercise."""
    async with cloned_database("sqlite", templates, tmp_path) as url:
        yield url


async def test_a_subscriber_on_a_thin_link_shows_on_the_wall_as_a_poor_call(platform: Platform) -> None:
    ticket, worker_api, clerk_api = await ticket_called(platform, "弱网群众")
    supervisor, outsider = await platform.login("supervisor1"), await platform.login("supervisor2")
    service = platform.app[CALLS]
    service.link_sample_s = 0.5
    worker = await CallClient(platform.base, worker_api.token).connect()
    clerk = await CallClient(platform.base, clerk_api.token).connect()
    pacing: asyncio.Task[None] | None = None
    try:
        await worker.join(ticket["id"])
        await clerk.join(ticket["id"])
        await worker.publish(size=(160, 120))
        track = track_id(participant_id(worker_api.user['id']), "camera")
        await clerk.wait_frames(track, 10, timeout=30)
        await asyncio.sleep(2)
        clean = quality.room_links(service.relay, room_id(ticket['id']))
        assert {r.grade for r in clean.values()} == {"good"}, f"a clean loopback call is good: {clean}"
        clerk.quiet_estimator()
        clerk.incoming_loss = 0.3  # a link too thin for what it is sent loses it

        async def thin_link() -> None:
            while True:
                await clerk.send_remb(60_000)
                await asyncio.sleep(0.3)

        pacing = asyncio.create_task(thin_link())

        async def poor_on_the_wall() -> bool:
            wall = (await supervisor.get("/api/dashboard/links")).body
            return any(c["ticket_id"] == ticket["id"] for c in wall["poor_now"])

        await until(poor_on_the_wall, 15, "the call listed as poor")

        def clerk_report() -> quality.LinkReport:
            return quality.room_links(service.relay, room_id(ticket['id']))[participant_id(clerk_api.user['id'])]

        # poor for what it loses, its 60 kbit/s, and (once the relay pauses its video for it,
        # audio first) for that
        async def thin_counted() -> bool:
            return clerk_report().downlink_bps == 60_000 or clerk_report().video_paused == 1

        await until(thin_counted, 10, "the thin estimate or the pause counted")
        report = clerk_report()
        assert report.grade == "poor" and (report.downlink_bps == 60_000 or report.video_paused == 1), report
        wall = (await supervisor.get("/api/dashboard/links")).body
        call = next(c for c in wall["poor_now"] if c["ticket_id"] == ticket["id"])
        clerk_link = next(p for p in call["participants"] if p["role"] == "clerk")
        assert clerk_link["grade"] == "poor" and clerk_link["bitrate_kbps"] in (60, None), clerk_link
        point = next(p for p in wall["extension_points"] if p["extension_point_id"] == ticket["extension_point_id"])
        assert point["poor_calls_today"] >= 1
        assert "弱网群众" not in json.dumps(wall, ensure_ascii=False)
        assert not any(c["ticket_id"] == ticket["id"] for c in (await outsider.get("/api/dashboard/links")).body["poor_now"])
    finally:
        if pacing is not None:
            pacing.cancel()
        await worker.close()
        await clerk.close()


class ProbeClient:
    """A device check written from docs/protocol.md: one sendrecv video track, echoed back."""

    def __init__(self, client: CallClient) -> None:
        self.client = client
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.frames = 0
        self.rembs: list[int] = []
        self.readers: list[asyncio.Task[None]] = []  # end with their track, when the connection closes
        self.pc.on("track", self._on_track)

    def _on_track(self, track: Any) -> None:
        async def read() -> None:
            while True:
                await track.recv()
                self.frames += 1

        self.readers.append(asyncio.create_task(read()))

    async def offer(self) -> dict[str, Any]:
        self.pc.addTransceiver(NoiseVideo(160, 120), direction="sendrecv")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        reply = await self.client.request("net_check", {"type": "offer", "sdp": self.pc.localDescription.sdp})
        if "sdp" in reply:
            await self.pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
            self.client.publish_pc = self.pc
            self.rembs = self.client.record_remb()
        return reply


async def test_the_network_check_echoes_the_browser_video_over_a_real_connection(platform: Platform) -> None:
    worker_api = await platform.login("worker1")
    probes = platform.app[CALLS].probes
    client = await CallClient(platform.base, worker_api.token).connect()
    probe = ProbeClient(client)
    try:
        reply = await probe.offer()
        assert reply["type"] == "answer" and reply["max_s"] == probes.max_s

        async def echoed() -> bool:
            return probe.frames >= 10

        await until(echoed, 20, "ten echoed frames")
        again = await ProbeClient(client).offer()
        assert again["error"]["code"] == "net_check_busy", "one probe per user at a time"

        async def told() -> bool:
            return bool(probe.rembs)

        await until(told, 10, "a REMB telling the browser what its uplink carries")
        figures = await client.request("net_check_end", {})
        assert figures["ok"] and figures["received_packets"] > 0 and figures["echoed_packets"] > 0
        assert figures["echoed_packets"] <= figures["received_packets"]
        assert not probes.active, "closed at once"
        assert await client.request("net_check_end", {}) == {"ok": True}
    finally:
        await probe.pc.close()
        await client.close()


async def test_a_network_check_is_refused_bad_input_and_ends_on_its_own(platform: Platform) -> None:
    worker_api, clerk_api = await platform.login("worker1"), await platform.login("clerk1")
    probes = platform.app[CALLS].probes
    client = await CallClient(platform.base, worker_api.token).connect()
    other = await CallClient(platform.base, clerk_api.token).connect()
    try:
        garbage = await client.request("net_check", {"type": "offer", "sdp": "v=0\r\nthis is not sdp"})
        assert garbage["error"]["code"] == "malformed_sdp"
        audio_pc = RTCPeerConnection()
        audio_pc.addTransceiver("audio", direction="sendrecv")
        await audio_pc.setLocalDescription(await audio_pc.createOffer())
        audio = await client.request("net_check", {"type": "offer", "sdp": audio_pc.localDescription.sdp})
        await audio_pc.close()
        assert audio["error"]["code"] == "malformed_sdp", "only one sendrecv video m-line"
        assert (await client.request("net_check", {"type": "answer", "sdp": "v=0 ........"}))["error"]["code"] == "invalid_input"
        assert not probes.active, "nothing left behind by a refusal"

        probes.max_probes = 1
        first = ProbeClient(client)
        assert (await first.offer())["type"] == "answer"
        crowded = ProbeClient(other)
        assert (await crowded.offer())["error"]["code"] == "net_check_busy", "too many at once"
        await crowded.pc.close()

        probes.max_s = 2.0  # this probe's time runs out

        async def gone() -> bool:
            return not probes.active

        await until(gone, 10, "the probe closed when its time was up")
        await first.pc.close()
    finally:
        await client.close()
        await other.close()
