"""A call client written from docs/protocol.md: socket.io signalling + aiortc media.

It publishes synthetic camera (noise, so every frame differs), microphone (a tone) and
optionally a screen track, answers the relay's subscription offers, and records what it
sends and receives so tests can compare bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import socketio
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import AudioStreamTrack
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RtcpPsfbPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
)
from av import VideoFrame

from signaling.relay import ice


class NoiseVideo(VideoStreamTrack):
    def __init__(self, width: int = 320, height: int = 240, fps: int = 30) -> None:
        super().__init__()
        self.size = (height, width, 3)
        self.rng = np.random.default_rng(1)
        self.fps = fps
        self._start: float | None = None
        self._frames = 0

    async def recv(self) -> VideoFrame:
        if self.fps == 30:
            pts, time_base = await self.next_timestamp()
        else:  # paced like next_timestamp, at another rate
            if self._start is None:
                self._start = time.monotonic()
            self._frames += 1
            await asyncio.sleep(max(0.0, self._start + self._frames / self.fps - time.monotonic()))
            pts, time_base = self._frames * 90000 // self.fps, fractions.Fraction(1, 90000)
        frame = VideoFrame.from_ndarray(self.rng.integers(0, 255, self.size, dtype=np.uint8), format="bgr24")
        frame.pts, frame.time_base = pts, time_base
        return frame


class _Idle(VideoStreamTrack):
    """A track that never yields a frame: the simulcast publisher sends its layers itself."""

    async def recv(self) -> VideoFrame:
        await asyncio.Event().wait()
        raise RuntimeError("unreachable")


RID_EXT, REPAIRED_RID_EXT = 10, 11
LAYERS = (("q", 80, 60, 70_000), ("h", 160, 120, 220_000), ("f", 320, 240, 650_000))


class SimulcastCamera:
    """What a browser publishing simulcast puts on the wire, from aiortc parts: one video
    m-section with ``a=rid``/``a=simulcast:send`` and the RID header extension, and one RTP
    stream per layer (its own SSRC, its RID on every packet), each from its own VP8 encoder at
    its own size and rate, a keyframe every second (what the relay asks for) and whenever asked."""

    def __init__(self, layers: tuple[tuple[str, int, int, int], ...] = LAYERS, fps: int = 15) -> None:
        self.layers, self.fps = layers, fps
        self.active = {rid for rid, *_ in layers}
        self.held_back: set[str] = set()  # layers it stops by itself (a browser whose uplink estimate fell)
        self.sent: dict[str, int] = defaultdict(int)  # rid -> packets
        self.keyframes_asked: dict[int, int] = defaultdict(int)  # ssrc -> PLIs received
        self.ssrcs: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._force: set[int] = set()

    @staticmethod
    def offer(sdp: str) -> str:
        """Add the layers to aiortc's offer (its own SSRC of the m-section is never used)."""
        rids = [rid for rid, *_ in LAYERS]
        out = []
        for line in sdp.split("\r\n"):
            out.append(line)
            if line.startswith("a=mid:") and any(x.startswith("m=video") for x in out):
                out += [f"a=extmap:{RID_EXT} urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
                        f"a=extmap:{REPAIRED_RID_EXT} urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"]
                out += [f"a=rid:{rid} send" for rid in rids] + ["a=simulcast:send " + ";".join(rids)]
        return "\r\n".join(out)

    def start(self, transceiver: Any, answer_sdp: str) -> None:
        from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
        from aiortc.rtp import HeaderExtensionsMap

        vp8 = next(int(line.split()[0].split(":")[1]) for line in answer_sdp.split("\r\n")
                   if line.startswith("a=rtpmap:") and "VP8/90000" in line)
        extensions = HeaderExtensionsMap()
        extensions.configure(RTCRtpParameters(headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
            RTCRtpHeaderExtensionParameters(id=RID_EXT, uri="urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id")]))
        dtls = transceiver.sender.transport
        handle_rtcp = dtls._handle_rtcp_data

        async def rtcp(data: bytes) -> None:  # PLIs for the layers' SSRCs: nobody else knows them
            from aiortc.rtp import RtcpPacket
            from aiortc.rtp import RtcpPsfbPacket as Psfb

            try:
                for packet in RtcpPacket.parse(data):
                    if isinstance(packet, Psfb) and packet.fmt == 1:
                        self.keyframes_asked[packet.media_ssrc] += 1
                        self._force.add(packet.media_ssrc)
            except ValueError:
                pass
            await handle_rtcp(data)

        dtls._handle_rtcp_data = rtcp
        for rid, width, height, bitrate in self.layers:
            self._tasks.append(asyncio.ensure_future(
                self._run(dtls, extensions, vp8, transceiver.mid, rid, width, height, bitrate)))

    async def _run(self, dtls: Any, extensions: Any, payload_type: int, mid: str, rid: str,
                   width: int, height: int, bitrate: int) -> None:
        import random

        from aiortc.codecs.vpx import Vp8Encoder

        encoder = Vp8Encoder()
        encoder._Vp8Encoder__target_bitrate = bitrate  # below aiortc's 250 kbit/s floor, as a browser's low layer
        ssrc = self.ssrcs[rid] = random.randint(1, 0xFFFFFFFF)
        seq, base = random.randint(0, 0xFFFF), random.randint(0, 0xFFFFFFFF)
        rng = np.random.default_rng(hash(rid) & 0xFFFF)
        start, n = time.monotonic(), 0
        while True:
            n += 1
            await asyncio.sleep(max(0.0, start + n / self.fps - time.monotonic()))
            if rid not in self.active or rid in self.held_back:
                continue
            frame = VideoFrame.from_ndarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), format="bgr24")
            frame.pts, frame.time_base = n * 90000 // self.fps, fractions.Fraction(1, 90000)
            keyframe = n % self.fps == 1 or ssrc in self._force
            self._force.discard(ssrc)
            payloads, timestamp = encoder.encode(frame, force_keyframe=keyframe)
            for i, payload in enumerate(payloads):
                packet = RtpPacket(payload_type=payload_type, sequence_number=seq, ssrc=ssrc,
                                   timestamp=(base + timestamp) & 0xFFFFFFFF, marker=int(i == len(payloads) - 1),
                                   payload=payload)
                packet.extensions.mid = mid
                packet.extensions.rtp_stream_id = rid
                seq = (seq + 1) & 0xFFFF
                try:
                    await dtls._send_rtp(packet.serialize(extensions))
                except ConnectionError:
                    return
                self.sent[rid] += 1

    def set_active(self, rids: list[str]) -> None:
        """Dynacast: send only these layers (a browser sets ``encodings[i].active``)."""
        self.active = set(rids)

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()


class CallClient:
    def __init__(self, base: str, token: str, name: str = "") -> None:
        self.base, self.token, self.name = base, token, name
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self.publish_pc: RTCPeerConnection | None = None
        self.subscribe_pc: RTCPeerConnection | None = None
        #: where this client's connections gather host candidates (None: aioice's default,
        #: every address of the machine but loopback)
        self.network: ice.MediaNetwork | None = None
        self._offer_ufrag: str | None = None  # of the last subscribe_offer (a new one: a new connection)
        self.sent_payloads: set[bytes] = set()
        self.received: dict[str, int] = defaultdict(int)          # track_id -> decoded frames
        self.frame_times: dict[str, list[float]] = defaultdict(list)  # track_id -> when decoded
        self.received_payloads: dict[str, list[bytes]] = defaultdict(list)  # track_id -> RTP payloads
        self.received_sequences: dict[str, list[int]] = defaultdict(list)  # track_id -> RTP sequence numbers
        self.frame_sizes: dict[str, tuple[int, int]] = {}  # track_id -> the last decoded frame's size
        self.track_by_mid: dict[str, dict[str, Any]] = {}
        self.keyframe_requests = 0
        self.drop_incoming: dict[str, Any] = {}  # {"armed": True} drops the next video packet
        # the share of video packets (first sends and repairs alike) its link loses, as a thin
        # link does: its receiver reports then say so
        self.incoming_loss = 0.0
        self._loss_draw = random.Random(7)
        self.ticket_id: int | None = None
        self._readers: list[asyncio.Task[None]] = []
        # socket.io delivers each event in a task of its own: two offers must not interleave
        # on one peer connection (the second would meet a half-applied first).
        self._offers = asyncio.Lock()
        self.sio.on("*", self._record)
        self.sio.on("subscribe_offer", self._on_offer)

    def _peer_connection(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        return pc if self.network is None else ice.gather_on(pc, self.network)

    async def _record(self, name: str, data: Any) -> None:
        self.events.append((name, data))

    def named(self, name: str) -> list[Any]:
        return [d for n, d in self.events if n == name]

    async def connect(self) -> CallClient:
        await self.sio.connect(self.base, auth={"token": self.token}, transports=["websocket"], wait_timeout=5)
        return self

    async def request(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = await self.sio.call(event, data, timeout=20)
        return reply

    async def join(self, ticket_id: int) -> dict[str, Any]:
        self.ticket_id = ticket_id
        return await self.request("join", {"ticket_id": ticket_id})

    async def publish(self, *, screen: bool = False, audio: bool = True, side: bool = False,
                      size: tuple[int, int] = (320, 240), fps: int = 30) -> dict[str, Any]:
        """Camera (+ microphone, + screen share); ``side``: also the consultation side room's
        own camera and microphone (``side_camera``, ``side_microphone``)."""
        if self.publish_pc is not None:
            await self.publish_pc.close()
        pc = self.publish_pc = self._peer_connection()
        sources: dict[str, str] = {}
        tracks = [("camera", NoiseVideo(*size, fps=fps))]
        if audio:
            tracks.append(("microphone", AudioStreamTrack()))
        if screen:
            tracks.append(("screen", NoiseVideo(640, 360)))
        if side:
            tracks += [("side_camera", NoiseVideo()), ("side_microphone", AudioStreamTrack())]
        senders = [(name, pc.addTrack(track)) for name, track in tracks]
        await pc.setLocalDescription(await pc.createOffer())
        for (name, sender), transceiver in zip(senders, pc.getTransceivers(), strict=True):
            sources[transceiver.mid] = name
            self._record_sent(sender)
        reply = await self.request("publish", {"ticket_id": self.ticket_id, "type": "offer",
                                               "sdp": pc.localDescription.sdp, "sources": sources})
        if "sdp" in reply:
            await pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
        return reply

    async def publish_simulcast(self, camera: SimulcastCamera) -> dict[str, Any]:
        """Publish a camera in layers (see `SimulcastCamera`), no microphone."""
        if self.publish_pc is not None:
            await self.publish_pc.close()
        pc = self.publish_pc = self._peer_connection()
        transceiver = pc.addTransceiver(_Idle(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        reply = await self.request("publish", {"ticket_id": self.ticket_id, "type": "offer",
                                               "sdp": camera.offer(pc.localDescription.sdp),
                                               "sources": {transceiver.mid: "camera"}})
        if "sdp" in reply:
            await pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
            for _ in range(200):
                if transceiver.sender.transport.state == "connected":
                    break
                await asyncio.sleep(0.05)
            camera.start(transceiver, reply["sdp"])
            self.on("publish_layers", lambda data: camera.set_active(data["active"]))
        return reply

    def on(self, event: str, handler: Any) -> None:
        async def call(data: Any) -> None:
            handler(data)

        self.sio.on(event, call)

    def _record_sent(self, sender: Any) -> None:
        original_next = sender._next_encoded_frame
        original_keyframe = sender._send_keyframe

        async def next_encoded(codec: Any) -> Any:
            frame = await original_next(codec)
            if frame is not None and sender.track and sender.track.kind == "video":
                self.sent_payloads.update(frame.payloads)
            return frame

        def keyframe() -> None:
            self.keyframe_requests += 1
            original_keyframe()

        sender._next_encoded_frame = next_encoded
        sender._send_keyframe = keyframe

    async def _on_offer(self, data: dict[str, Any]) -> None:
        async with self._offers:
            await self._answer(data)

    async def _answer(self, data: dict[str, Any]) -> None:
        # docs/protocol.md "Subscribing": an offer whose a=ice-ufrag changed is a new connection
        ufrag = next((line.split(":", 1)[1].strip() for line in data["sdp"].splitlines()
                      if line.startswith("a=ice-ufrag:")), None)
        if self.subscribe_pc is not None and ufrag != self._offer_ufrag:
            await self.subscribe_pc.close()
            self.subscribe_pc = None
        self._offer_ufrag = ufrag
        if self.subscribe_pc is None:
            self.subscribe_pc = self._peer_connection()
            self.subscribe_pc.on("track", self._on_track)
        for t in data["tracks"]:
            self.track_by_mid[t["mid"]] = t
        await self.subscribe_pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "offer"))
        await self.subscribe_pc.setLocalDescription(await self.subscribe_pc.createAnswer())
        await self.request("subscribe_answer", {"ticket_id": data["ticket_id"], "type": "answer",
                                                "sdp": self.subscribe_pc.localDescription.sdp})

    def _on_track(self, track: Any) -> None:
        transceiver = next(t for t in self.subscribe_pc.getTransceivers() if t.receiver.track is track)
        mid = transceiver.mid
        receiver = transceiver.receiver
        original = receiver._handle_rtp_packet

        async def tap(packet: Any, arrival_time_ms: int) -> None:
            info = self.track_by_mid.get(mid, {})
            if info.get("kind") == "video" and self.incoming_loss and self._loss_draw.random() < self.incoming_loss:
                return
            if info.get("kind") == "video" and self.drop_incoming.get("armed"):
                rtx = packet.payload_type not in {c.payloadType for c in transceiver._codecs[:1]}
                if not rtx:
                    self.drop_incoming.update(armed=False, seq=packet.sequence_number)
                    return
            if self.drop_incoming.get("seq") is not None and packet.payload_type != transceiver._codecs[0].payloadType:
                self.drop_incoming["retransmitted"] = int.from_bytes(packet.payload[:2], "big")
            if info.get("kind") == "video" and packet.payload_type in {c.payloadType for c in transceiver._codecs[:1]}:
                self.received_payloads[info.get("track_id", mid)].append(packet.payload)
                self.received_sequences[info.get("track_id", mid)].append(packet.sequence_number)
            await original(packet, arrival_time_ms)

        receiver._handle_rtp_packet = tap

        async def read() -> None:
            try:
                while True:
                    frame = await track.recv()
                    info = self.track_by_mid.get(mid, {})
                    if track.kind == "video":
                        self.frame_sizes[info.get("track_id", mid)] = (frame.width, frame.height)
                    self.received[info.get("track_id", mid)] += 1
                    self.frame_times[info.get("track_id", mid)].append(time.monotonic())
            except Exception:
                return

        self._readers.append(asyncio.ensure_future(read()))

    def drop_one_video_packet(self, retransmissions: int | None = None) -> dict[str, Any]:
        """Lose the next camera packet on the way to the relay, and the first ``retransmissions``
        retransmissions of it (None: every one)."""
        assert self.publish_pc is not None
        video = next(t.sender for t in self.publish_pc.getTransceivers() if t.kind == "video")
        transport = video.transport
        original = transport._send_rtp
        lost: dict[str, Any] = {}

        async def send(data: bytes) -> None:
            if len(data) > 12 and not 192 <= data[1] <= 223:  # RTP, not RTCP
                packet = RtpPacket.parse(data)
                if packet.ssrc == video._ssrc and "seq" not in lost:
                    lost.update(seq=packet.sequence_number, at=time.monotonic())
                    return
                if packet.ssrc == video._rtx_ssrc and lost.get("seq") == int.from_bytes(packet.payload[:2], "big"):
                    dropped = lost.get("retransmissions_dropped", 0)
                    if retransmissions is None or dropped < retransmissions:
                        lost["retransmissions_dropped"] = dropped + 1
                        return
                    lost["retransmissions_sent"] = lost.get("retransmissions_sent", 0) + 1
            await original(data)

        transport._send_rtp = send
        return lost

    def ignore_keyframe_requests(self, count: int, remb_too: bool = False) -> dict[str, int]:
        """Lose the next ``count`` keyframe requests (PLI) the relay sends for the camera, as a bad
        line would; the returned counts say how many came (``asked``) and were lost (``lost``), and
        setting its ``count`` changes how many are lost in all. ``remb_too``: lose the REMBs as
        well meanwhile (aiortc's encoder starts again, with a keyframe, when its target changes)."""
        assert self.publish_pc is not None
        video = next(t.sender for t in self.publish_pc.getTransceivers() if t.kind == "video")
        original = video._handle_rtcp_packet
        seen = {"asked": 0, "lost": 0, "count": count}

        async def handle(packet: Any) -> None:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
                seen["asked"] += 1
                if seen["lost"] < seen["count"]:
                    seen["lost"] += 1
                    return
            if remb_too and seen["lost"] < seen["count"] and isinstance(packet, RtcpPsfbPacket) \
                    and packet.fmt == RTCP_PSFB_APP:
                return
            await original(packet)

        video._handle_rtcp_packet = handle
        return seen

    def record_remb(self) -> list[int]:
        """Keep every REMB the relay sends this publisher (bit/s), in order."""
        assert self.publish_pc is not None
        received: list[int] = []
        for transceiver in self.publish_pc.getTransceivers():
            sender = transceiver.sender
            original = sender._handle_rtcp_packet

            async def handle(packet: Any, original: Any = original) -> None:
                if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                    received.append(unpack_remb_fci(packet.fci)[0])
                await original(packet)

            sender._handle_rtcp_packet = handle
        return received

    def _video_receivers(self) -> list[Any]:
        assert self.subscribe_pc is not None
        return [t.receiver for t in self.subscribe_pc.getTransceivers()
                if t.kind == "video" and t.receiver._RTCRtpReceiver__remote_streams]

    def quiet_estimator(self) -> None:
        """Stop this subscriber's own REMBs (aiortc estimates and sends them), so a test decides."""
        for receiver in self._video_receivers():
            receiver._RTCRtpReceiver__remote_bitrate_estimator = None

    async def send_remb(self, bitrate: int) -> None:
        """Say, as a browser on a thin link would, that this subscriber takes ``bitrate``."""
        receivers = self._video_receivers()
        ssrcs = [s for r in receivers for s in r._RTCRtpReceiver__remote_streams]
        rtcp_ssrc = receivers[0]._RTCRtpReceiver__rtcp_ssrc
        await receivers[0]._send_rtcp(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0,
                                                     fci=pack_remb_fci(bitrate, ssrcs)))

    async def send_nack(self, lost: list[int]) -> None:
        """Ask the relay for these camera packets again (by the sequence numbers it sent)."""
        receiver = self._video_receivers()[0]
        ssrc = next(iter(receiver._RTCRtpReceiver__remote_streams))
        await receiver._send_rtcp_nack(ssrc, sorted(lost))

    def last_sequence(self) -> int:
        receiver = self._video_receivers()[0]
        stream = next(iter(receiver._RTCRtpReceiver__remote_streams.values()))
        return int(stream.max_seq)

    def video_lost(self) -> int:
        """Packets of the (first) received video its receiver counts as lost: gaps in the numbering."""
        receiver = self._video_receivers()[0]
        stream = next(iter(receiver._RTCRtpReceiver__remote_streams.values()))
        return int(stream.packets_lost)

    async def request_keyframe(self) -> None:
        """What a browser does when its decoder lost the picture: a PLI to the relay."""
        assert self.subscribe_pc is not None
        for t in self.subscribe_pc.getTransceivers():
            if t.kind == "video" and t.receiver._RTCRtpReceiver__remote_streams:
                ssrc = next(iter(t.receiver._RTCRtpReceiver__remote_streams))
                await t.receiver._send_rtcp_pli(ssrc)

    async def wait_frames(self, track_id: str, count: int, timeout: float = 15) -> int:
        async def poll() -> int:
            start = self.received.get(track_id, 0)
            while self.received.get(track_id, 0) < start + count:
                await asyncio.sleep(0.05)
            return self.received[track_id]

        return await asyncio.wait_for(poll(), timeout)

    async def close(self) -> None:
        for task in self._readers:
            task.cancel()
        for pc in (self.publish_pc, self.subscribe_pc):
            if pc is not None:
                await pc.close()
        self.publish_pc = self.subscribe_pc = None
        if self.sio.connected:
            await self.sio.disconnect()


@contextlib.asynccontextmanager
async def in_call(base: str, ticket_id: int, worker_token: str,
                  clerk_token: str) -> AsyncIterator[tuple[CallClient, CallClient]]:
    """The worker's and the clerk's clients, connected and joined to the ticket's call (the
    worker first); closed when the block ends. The called ticket: `tests.helpers.ticket_called`."""
    worker = await CallClient(base, worker_token).connect()
    clerk = await CallClient(base, clerk_token).connect()
    try:
        await worker.join(ticket_id)
        await clerk.join(ticket_id)
        yield worker, clerk
    finally:
        await worker.close()
        await clerk.close()
