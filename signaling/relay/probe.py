"""网络检测 — the device check's probe of the real media path.

The browser opens a WebRTC connection to the relay exactly as a call does (the ICE servers of
``GET /api/ice-servers``, so through TURN when a call would go through TURN) and sends one
video track; the relay sends every packet straight back on the same connection, as a relay
forwards (no decoding), and tells the browser with REMB what its uplink carries. The browser
reads the round trip, the loss both ways and the throughput from its own ``getStats``.

A probe lives at most ``MAX_S`` seconds; one per user at a time and ``MAX_PROBES`` in all, so
a device check cannot become a way to load the relay.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription

from signaling.relay.dtls import peer_connection
from signaling.relay.feedback import CAMERA_MAX_BPS
from signaling.relay.ice import MediaNetwork, gather_on
from signaling.relay.passthrough import (
    PacketSender,
    fast_receive,
    ntp_now,
    request_keyframe,
    send_remb,
    tap_receiver,
)
from signaling.relay.relay import RelayError, _capabilities, _Placeholder
from signaling.tasks import Tasks

log = logging.getLogger("yunbang.relay.probe")
MAX_S = 20.0
MAX_PROBES = 4
START_S = 2.0  # the first seconds of media: the browser is told, often, it may send up to the camera's cap
KEYFRAME_INTERVAL_S = 0.5


@dataclass
class Probe:
    """One browser's echo connection."""

    key: str
    pc: RTCPeerConnection
    transceiver: RTCRtpTransceiver
    sender: PacketSender
    tasks: Tasks  # the probes': its keyframe requests run there
    started: float = field(default_factory=time.monotonic)
    packets: int = 0
    octets: int = 0
    media_ssrc: int | None = None
    first_packet_at: float | None = None
    uplink_bps: int | None = None
    task: asyncio.Task[None] | None = None
    _keyframe_at: float = 0.0

    def on_packet(self, packet: RtpPacket) -> None:
        if self.media_ssrc is None:
            self.first_packet_at = time.monotonic()
        self.media_ssrc = packet.ssrc
        self.packets += 1
        self.octets += len(packet.payload)
        self.sender.forward(packet, 1, ntp_now())

    def on_estimate(self, bitrate: int) -> None:
        self.uplink_bps = bitrate

    def keyframe(self) -> None:
        now = time.monotonic()
        if self.media_ssrc is None or now - self._keyframe_at < KEYFRAME_INTERVAL_S:
            return
        self._keyframe_at = now
        self.tasks.spawn(request_keyframe(self.transceiver.receiver, self.media_ssrc), name="keyframe request")

    def figures(self) -> dict[str, Any]:
        return {"received_packets": self.packets, "echoed_packets": self.sender.forwarded,
                "uplink_bps": self.uplink_bps, "seconds": round(time.monotonic() - self.started, 1)}


class Probes:
    """The probes open on this node, by key (one per user)."""

    def __init__(self, ice_servers: Callable[[], list[RTCIceServer]], *, max_s: float = MAX_S,
                 max_probes: int = MAX_PROBES, network: MediaNetwork | None = None) -> None:
        """``ice_servers``: the relay's own, read when a probe starts (a probe connects as a call
        does); ``network``: the relay's host addresses and ports, as the relay's."""
        self.ice_servers = ice_servers
        self.network = network or MediaNetwork()
        self.max_s = max_s
        self.max_probes = max_probes
        self.active: dict[str, Probe | None] = {}  # None: being set up
        self.tasks = Tasks("probes")  # ended by shutdown

    async def start(self, key: str, offer_sdp: str) -> str:
        """Answer a browser's offer of one video track; the echo starts once ICE connects."""
        if key in self.active:
            raise RelayError("net_check_busy", "网络检测正在进行，请等它结束")
        if len(self.active) >= self.max_probes:
            raise RelayError("net_check_busy", "同时进行的网络检测太多，请稍后再试")
        try:
            parsed = SessionDescription.parse(offer_sdp)
        except Exception as exc:  # aiortc raises assorted errors on garbage
            raise RelayError("malformed_sdp", "SDP 无法解析") from exc
        media = [m for m in parsed.media if m.kind in ("audio", "video")]
        if len(media) != 1 or media[0].kind != "video" or media[0].direction != "sendrecv":
            raise RelayError("malformed_sdp", "网络检测的 SDP 应只有一路收发视频（sendrecv）")
        self.active[key] = None
        pc = gather_on(peer_connection(RTCConfiguration(iceServers=list(self.ice_servers()))), self.network)
        try:
            transceiver = pc.addTransceiver(_Placeholder("video"), direction="sendrecv")
            transceiver.setCodecPreferences(_capabilities("video"))
            sender = PacketSender(transceiver.sender, self.tasks)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            if not transceiver._codecs:
                raise RelayError("negotiation_failed", "没有可用的视频编码")
        except RelayError:
            self.active.pop(key, None)
            await pc.close()
            raise
        except Exception as exc:
            self.active.pop(key, None)
            await pc.close()
            raise RelayError("negotiation_failed", f"媒体协商失败：{exc}") from exc
        sender.bind(transceiver._codecs[0].payloadType)
        probe = Probe(key, pc, transceiver, sender, self.tasks)
        sender.keyframe_callback = probe.keyframe
        tap_receiver(transceiver.receiver, probe.on_packet, probe.on_estimate, tasks=self.tasks)

        @pc.on("connectionstatechange")
        async def changed() -> None:
            if pc.connectionState == "connected":
                fast_receive(transceiver.receiver.transport)
            elif pc.connectionState == "failed":
                await self.stop(key)

        self.active[key] = probe
        probe.task = self.tasks.spawn(self._run(probe), name=f"probe {key}")
        return str(pc.localDescription.sdp)

    async def _run(self, probe: Probe) -> None:
        """Tell the browser what to send once a second; close the probe when its time is up."""
        try:
            while time.monotonic() - probe.started < self.max_s:
                starting = probe.first_packet_at is None or time.monotonic() - probe.first_packet_at < START_S
                await asyncio.sleep(0.25 if starting else 1.0)  # browsers trust a REMB in their first seconds
                if probe.media_ssrc is None:
                    continue
                bitrate = CAMERA_MAX_BPS if starting or probe.uplink_bps is None else min(CAMERA_MAX_BPS, probe.uplink_bps)
                await send_remb(probe.transceiver.receiver, bitrate, [probe.media_ssrc])
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("network check probe %s failed", probe.key)
        finally:
            if self.active.get(probe.key) is probe:
                self.active.pop(probe.key, None)
                await probe.pc.close()

    async def stop(self, key: str) -> dict[str, Any] | None:
        """End a probe early; its figures, or None when there was none."""
        probe = self.active.get(key)
        if probe is None:
            return None
        self.active.pop(key, None)
        if probe.task is not None and probe.task is not asyncio.current_task():
            probe.task.cancel()
        await probe.pc.close()
        return probe.figures()

    async def shutdown(self) -> None:
        for key in list(self.active):
            await self.stop(key)
        await self.tasks.close()
