"""Every client, not only browsers: GStreamer's webrtcbin (Debian's 1.22) in a call through the relay.

``tests/gst_client.py`` is a client written from docs/protocol.md on another WebRTC stack; it
runs in Debian's system Python (``make gstreamer`` installs the packages) and does its own
socket.io. webrtcbin's DTLS certificate is RSA: publishing through the relay needs the relay's
ECDHE-RSA suites (signaling/relay/dtls.py).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from server.keys import CALLS
from signaling.ids import participant_id, room_id
from tests.conftest import Platform, Templates, cloned_database
from tests.helpers import on_the_machines_address, ticket_called
from tests.rtc_client import CallClient

SYSTEM_PYTHON = "/usr/bin/python3"
SCRIPT = Path(__file__).with_name("gst_client.py")


class GstPeer:
    """tests/gst_client.py in a process of its own, one JSON command and reply a line."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc, self.log = proc, log

    @classmethod
    async def start(cls, platform: Platform, token: str, ticket_id: int, log: Path) -> GstPeer:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                SYSTEM_PYTHON, str(SCRIPT), "--base", platform.base, "--token", token, "--ticket", str(ticket_id),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err, env=env)
        peer = cls(proc, log)
        await peer._reply("ready")
        return peer

    async def _reply(self, name: str, timeout: float = 30) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not line:
                raise AssertionError(f"the webrtcbin client exited ({self.proc.returncode}): "
                                     f"{self.log.read_text(errors='replace')[-3000:]} (make gstreamer installs it)")
            message: dict[str, Any] = json.loads(line)
            if message.get("re") == name:
                return message

    async def command(self, name: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": name}).encode() + b"\n")
        await self.proc.stdin.drain()
        return await self._reply(name)

    async def wait_for(self, what: str, done: Callable[[dict[str, Any]], bool], timeout: float = 20) -> dict[str, Any]:
        """Poll the client's status until ``done`` holds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            status = await self.command("status")
            if done(status):
                return status
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{what}: {status}")
            await asyncio.sleep(0.2)

    async def wait_frames(self, track_id: str, count: int, timeout: float = 20) -> dict[str, Any]:
        """Decoded frames on the current subscribing connection reach ``count``."""
        return await self.wait_for(f"{count} frames of {track_id}",
                                   lambda s: s["frames"].get(track_id, 0) >= count, timeout)

    async def close(self) -> None:
        if self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.command("quit"), 10)
                await asyncio.wait_for(self.proc.wait(), 10)
            except (AssertionError, TimeoutError, BrokenPipeError, ConnectionResetError):
                self.proc.kill()
                await self.proc.wait()


@pytest.fixture
async def database_url(templates: Templates, tmp_path: Path) -> AsyncIterator[str]:
    async with cloned_database("sqlite", templates, tmp_path) as url:
        yield url


@pytest.fixture(autouse=True)
def relay_address(platform: Platform) -> None:
    on_the_machines_address(platform)


@pytest.fixture
async def call(platform: Platform, tmp_path: Path):
    """worker1's ticket called by clerk1; the worker on webrtcbin, the clerk on aiortc."""
    ticket, worker_api, clerk_api = await ticket_called(platform, "视频群众")
    worker = await GstPeer.start(platform, worker_api.token, ticket["id"], tmp_path / "gst_client.log")
    clerk = await CallClient(platform.base, clerk_api.token).connect()
    try:
        yield ticket, worker, clerk, participant_id(worker_api.user['id']), participant_id(clerk_api.user['id'])
    finally:
        await worker.close()
        await clerk.close()


async def test_webrtcbin_worker_publishes_to_an_aiortc_clerk_and_receives_the_clerks_camera(platform, call) -> None:
    ticket, worker, clerk, w, c = call
    assert (await worker.command("join"))["role"] == "worker"
    await clerk.join(ticket["id"])
    published = await worker.command("publish")
    assert published.get("ok"), published
    assert (published["offer_setup"], published["answer_setup"]) == ("actpass", "active"), "the relay is the DTLS client"
    await clerk.wait_frames(f"{w}:camera", 20)
    await clerk.wait_frames(f"{w}:microphone", 20)
    publisher_side = platform.app[CALLS].relay.rooms[room_id(ticket['id'])].participants[w].publish_pc
    cipher = publisher_side.getTransceivers()[0].receiver.transport._ssl.get_cipher_name()
    assert cipher.startswith("ECDHE-RSA-"), f"webrtcbin's certificate is RSA: {cipher}"

    await clerk.publish()
    status = await worker.wait_frames(f"{c}:camera", 20)
    status = await worker.wait_frames(f"{c}:microphone", 20)
    assert status["states"] == {"publish": "connected", "subscribe": "connected"}
    assert not status["errors"], status["errors"]


async def test_webrtcbin_subscriber_renegotiates_resubscribes_and_rejoins(call) -> None:
    ticket, worker, clerk, w, c = call
    await worker.command("join")
    await clerk.join(ticket["id"])
    await clerk.publish()
    status = await worker.wait_frames(f"{c}:camera", 10)
    assert [o["new_connection"] for o in status["offers"]][:1] == [True]
    assert status["offers"][0]["answer_setup"] == "active", "webrtcbin is the DTLS client: the relay the server"

    # Renegotiation: the clerk shares a screen, then stops; the same connection carries it.
    await clerk.publish(screen=True)
    status = await worker.wait_frames(f"{c}:screen", 10)
    assert not any(o["new_connection"] for o in status["offers"][1:]), "same ICE credentials: renegotiated"
    screen_mid = next(t["mid"] for t in status["offers"][-1]["tracks"] if t.get("source") == "screen")
    await clerk.publish()
    status = await worker.wait_for("the screen's m-line inactive", lambda s: any(
        t["mid"] == screen_mid and not t["active"] for t in s["offers"][-1]["tracks"]))
    assert {"mid": screen_mid, "kind": "video", "active": False} in status["offers"][-1]["tracks"], \
        "an inactive entry carries only mid, kind and active"
    before = status["frames"].get(f"{c}:camera", 0)
    status = await worker.wait_frames(f"{c}:camera", before + 10)
    assert status["subscribers_made"] == 1 and not status["errors"], status

    # resubscribe: a fresh subscribe_offer with new ICE credentials, answered on a new webrtcbin.
    assert (await worker.command("resubscribe"))["ok"]
    await worker.wait_for("a new connection", lambda s: s["subscribers_made"] == 2)
    status = await worker.wait_frames(f"{c}:camera", 10)
    assert status["offers"][-1]["new_connection"] and status["offers"][-1]["ufrag"] != status["offers"][-2]["ufrag"]

    # leave and join again: everything anew, and publishing works again.
    assert (await worker.command("leave"))["ok"]
    rejoined = await worker.command("join")
    assert rejoined["rejoined"] is False and {t["track_id"] for t in rejoined["tracks"]} >= {f"{c}:camera"}
    await worker.wait_for("a new connection after rejoining", lambda s: s["subscribers_made"] == 3)
    await worker.wait_frames(f"{c}:camera", 10)
    assert (await worker.command("publish"))["ok"]
    await clerk.wait_frames(f"{w}:camera", 10)
    assert not (await worker.command("status"))["errors"]
