"""Media relay benchmark: forwarded RTP packets per relay CPU core, against aiortc's MediaRelay.

What is measured
----------------
The relay runs in a process of its own (``--serve``), controlled over a small JSON endpoint on
127.0.0.1. This process plays the clients: N rooms, each with one publisher and k subscribers,
all real aiortc peer connections over loopback (DTLS-SRTP, ICE). Each publisher sends what a
browser sends for a VGA camera: a pre-encoded 640×480 30 fps VP8 clip at ~1.5 Mbit/s and a
20 ms Opus stream, replayed as RTP (encoding live would eat the client core). Subscribers
count what arrives without decoding it.

N grows step by step until subscribers lose more than 1 % of packets or the relay's CPU passes
95 % of one core. For each step: relay CPU (its own process time ÷ wall time), forwarded
packets per second, loss at the subscribers (missing sequence numbers ÷ expected), and the
relay's added latency: from the moment a packet leaves the receive path (SRTP, RTX, NACK
done) until it has been handed to every subscriber's transport (p50/p95).

``pps_per_core`` = forwarded packets/s ÷ relay CPU fraction, at the best step with ≤ 1 % loss;
``subscriptions_per_core`` = video subscriptions ÷ relay CPU fraction at that step. Then the
same load through aiortc's ``MediaRelay`` (decode once, re-encode per subscriber) gives the
baseline ``mediarelay_subscriptions_per_core``, and ``ratio_vs_mediarelay``.

On a 2-core machine the client side (this process) shares the machine with the relay; the
figures are per relay core. ``--quick`` finishes within a minute; the last line is JSON.
"""

from __future__ import annotations

import sys
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import fractions  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from aiohttp import ClientSession, web  # noqa: E402
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.codecs import get_encoder  # noqa: E402
from aiortc.contrib.media import MediaRelay  # noqa: E402
from aiortc.rtcrtpparameters import RTCRtpCodecParameters  # noqa: E402
from aiortc.rtp import RtpPacket  # noqa: E402
from av import AudioFrame, VideoFrame  # noqa: E402

from signaling.relay.passthrough import PacketSender, tap_receiver  # noqa: E402

FPS = 30
CLIP_FRAMES = 60
VIDEO_BITRATE = 1_500_000
TARGET_PPS = 20_000
TARGET_RATIO = 20
TARGET_LATENCY_MS = 20
UVLOOP = True


def config() -> RTCConfiguration:
    return RTCConfiguration(iceServers=[])


# ----------------------------------------------------------------------------- relay process
class OfferBox:
    """The RelaySink of the benchmark: keeps the relay's subscription offers for the client."""

    def __init__(self) -> None:
        self.offers: dict[tuple[str, str], asyncio.Future[str]] = {}

    def future(self, room: str, pid: str) -> asyncio.Future[str]:
        return self.offers.setdefault((room, pid), asyncio.get_running_loop().create_future())

    async def subscribe_offer(self, room_id: str, participant_id: str, sdp: str, tracks: list[dict[str, Any]]) -> None:
        box = self.future(room_id, participant_id)
        if not box.done():
            box.set_result(sdp)

    async def peer_state(self, *args: Any) -> None:
        return None


class PassthroughServer:
    def __init__(self) -> None:
        from signaling.relay.relay import Relay, Source

        self.box = OfferBox()
        self.relay = Relay(self.box)
        self.latencies: list[float] = []
        original = Source._send
        latencies = self.latencies

        async def timed(source: Any, packet: RtpPacket) -> None:
            started = time.perf_counter()
            await original(source, packet)
            latencies.append(time.perf_counter() - started)

        Source._send = timed  # type: ignore[method-assign]

    async def publish(self, room: str, pid: str, sdp: str) -> str:
        self.relay.join(room, pid)
        sources = {"0": "camera", "1": "microphone"}
        return await self.relay.publish(room, pid, sdp, sources)

    async def subscribe(self, room: str, pid: str) -> str:
        self.relay.join(room, pid)
        box = self.box.future(room, pid)
        await self.relay.subscribe(room, pid)
        return await asyncio.wait_for(box, 10)

    async def answer(self, room: str, pid: str, sdp: str) -> None:
        self.box.offers.pop((room, pid), None)
        await self.relay.answer_subscription(room, pid, sdp)

    def forwarded(self) -> int:
        return sum(o.sender.forwarded for r in self.relay.rooms.values() for p in r.participants.values() for o in p.outlets)

    async def reset(self) -> None:
        for room in list(self.relay.rooms):
            await self.relay.close_room(room)
        self.box.offers.clear()


class MediaRelayServer:
    """The baseline: aiortc's own way, decode once and encode per subscriber."""

    def __init__(self) -> None:
        self.media = MediaRelay()
        self.tracks: dict[str, list[MediaStreamTrack]] = {}
        self.pcs: list[RTCPeerConnection] = []
        self.latencies: list[float] = []
        self.counted: list[Any] = []

    async def publish(self, room: str, pid: str, sdp: str) -> str:
        pc = RTCPeerConnection(config())
        self.pcs.append(pc)
        received: list[MediaStreamTrack] = []
        pc.on("track", received.append)
        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        self.tracks[room] = received
        return pc.localDescription.sdp

    async def subscribe(self, room: str, pid: str) -> str:
        pc = RTCPeerConnection(config())
        self.pcs.append(pc)
        for track in self.tracks[room]:
            sender = pc.addTrack(self.media.subscribe(track))
            self.counted.append(sender)
        await pc.setLocalDescription(await pc.createOffer())
        self._pending = pc
        return pc.localDescription.sdp

    async def answer(self, room: str, pid: str, sdp: str) -> None:
        await self._pending.setRemoteDescription(RTCSessionDescription(sdp, "answer"))

    def forwarded(self) -> int:
        return sum(s._RTCRtpSender__packet_count for s in self.counted)

    async def reset(self) -> None:
        for pc in self.pcs:
            await pc.close()
        self.pcs.clear()
        self.tracks.clear()
        self.counted.clear()
        self.media = MediaRelay()


async def serve(kind: str, port: int) -> None:
    server: Any = PassthroughServer() if kind == "passthrough" else MediaRelayServer()

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        op = request.match_info["op"]
        if op == "publish":
            return web.json_response({"sdp": await server.publish(body["room"], body["pid"], body["sdp"])})
        if op == "subscribe":
            return web.json_response({"sdp": await server.subscribe(body["room"], body["pid"])})
        if op == "answer":
            await server.answer(body["room"], body["pid"], body["sdp"])
            return web.json_response({})
        if op == "stats":
            lat = server.latencies[:]
            server.latencies.clear()
            return web.json_response({"cpu": time.process_time(), "wall": time.perf_counter(),
                                      "forwarded": server.forwarded(), "latencies": lat[-20000:]})
        if op == "reset":
            await server.reset()
            return web.json_response({})
        return web.json_response({"error": op}, status=404)

    app = web.Application()
    app.router.add_post("/{op}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


# ----------------------------------------------------------------------------- client side
@dataclass
class Clip:
    video: list[list[bytes]]
    audio: list[bytes]


def encode_clip(frames: int) -> Clip:
    vp8 = get_encoder(RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96))
    vp8.target_bitrate = VIDEO_BITRATE
    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    video = []
    for i in range(frames):
        image = np.roll(base, 8 * i, axis=1)
        image[:, :, 0] = (image[:, :, 0] + rng.integers(0, 24, (480, 640), dtype=np.uint8)) % 255
        frame = VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts, frame.time_base = i * 3000, fractions.Fraction(1, 90000)
        payloads, _ = vp8.encode(frame, force_keyframe=i == 0)
        video.append(payloads)
    opus = get_encoder(RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111))
    audio = []
    for i in range(50):
        samples = (np.sin(np.arange(960) * 2 * np.pi * 440 / 48000 + i) * 8000).astype(np.int16)
        frame = AudioFrame.from_ndarray(np.repeat(samples, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = 48000, i * 960, fractions.Fraction(1, 48000)
        payloads, _ = opus.encode(frame)
        audio.extend(payloads)
    return Clip(video, audio)


class Placeholder(MediaStreamTrack):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    async def recv(self) -> Any:
        raise RuntimeError("replayed, never pulled")


@dataclass
class Counter:
    """Received packets of one subscribed stream: loss from the sequence numbers."""

    seqs: set[int] = field(default_factory=set)
    first: int | None = None
    highest: int = 0
    received: int = 0

    async def add(self, packet: RtpPacket) -> None:
        seq = packet.sequence_number
        if self.first is None:
            self.first = self.highest = seq
        unwrapped = self.highest + ((seq - self.highest + 0x8000) & 0xFFFF) - 0x8000
        self.highest = max(self.highest, unwrapped)
        self.received += 1
        self.seqs.add(unwrapped)

    def window(self) -> tuple[int, int]:
        """(received, expected) since the last call."""
        if self.first is None:
            return 0, 0
        expected = self.highest - self.first + 1
        got = len(self.seqs)
        self.seqs.clear()
        self.first = self.highest + 1
        return got, max(expected, got)


class Room:
    def __init__(self, name: str, clip: Clip, subscribers: int) -> None:
        self.name, self.clip, self.k = name, clip, subscribers
        self.pcs: list[RTCPeerConnection] = []
        self.counters: list[Counter] = []
        self.video: PacketSender | None = None
        self.audio: PacketSender | None = None

    async def start(self, http: ClientSession, base: str) -> None:
        pub = RTCPeerConnection(config())
        self.pcs.append(pub)
        senders = {}
        for kind in ("video", "audio"):
            transceiver = pub.addTransceiver(Placeholder(kind), direction="sendonly")
            senders[kind] = transceiver
        await pub.setLocalDescription(await pub.createOffer())
        reply = await (await http.post(f"{base}/publish", json={"room": self.name, "pid": "pub", "sdp": pub.localDescription.sdp})).json()
        self.video = PacketSender(senders["video"].sender)
        self.audio = PacketSender(senders["audio"].sender)
        await pub.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
        self.video.bind(senders["video"]._codecs[0].payloadType)
        self.audio.bind(senders["audio"]._codecs[0].payloadType)
        for i in range(self.k):
            sub = RTCPeerConnection(config())
            self.pcs.append(sub)
            pid = f"sub{i}"
            offer = await (await http.post(f"{base}/subscribe", json={"room": self.name, "pid": pid})).json()

            @sub.on("track")
            def on_track(track: Any, sub: RTCPeerConnection = sub) -> None:
                receiver = next(t.receiver for t in sub.getTransceivers() if t.receiver.track is track)
                if track.kind == "video":
                    counter = Counter()
                    self.counters.append(counter)
                    tap_receiver(receiver, counter.add)
                else:
                    tap_receiver(receiver, _ignore)

            await sub.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
            await sub.setLocalDescription(await sub.createAnswer())
            await http.post(f"{base}/answer", json={"room": self.name, "pid": pid, "sdp": sub.localDescription.sdp})

    async def play(self, until: float) -> None:
        assert self.video is not None and self.audio is not None
        seq_v, seq_a, ts_v, ts_a = 0, 0, 0, 0
        frame, tick = 0, 0
        start = time.perf_counter()
        while time.perf_counter() < until:
            due = start + tick * 0.02
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            payload = self.clip.audio[tick % len(self.clip.audio)]
            await self.audio.forward(RtpPacket(payload_type=111, sequence_number=seq_a & 0xFFFF, timestamp=ts_a,
                                               payload=payload), 1)
            seq_a, ts_a = seq_a + 1, (ts_a + 960) & 0xFFFFFFFF
            while start + frame / FPS <= time.perf_counter():
                payloads = self.clip.video[frame % len(self.clip.video)]
                for i, payload in enumerate(payloads):
                    await self.video.forward(RtpPacket(payload_type=96, marker=int(i == len(payloads) - 1),
                                                       sequence_number=seq_v & 0xFFFF, timestamp=ts_v,
                                                       payload=payload), 1)
                    seq_v += 1
                ts_v = (ts_v + 3000) & 0xFFFFFFFF
                frame += 1
            tick += 1

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()


async def _ignore(packet: RtpPacket) -> None:
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_relay(kind: str, uvloop: bool = False) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    extra = ["--uvloop"] if uvloop else []
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port), *extra])
    base = f"http://127.0.0.1:{port}"
    async with ClientSession() as http:
        for _ in range(100):
            try:
                await http.post(f"{base}/stats", json={})
                return proc, base
            except OSError:
                await asyncio.sleep(0.1)
    proc.kill()
    raise RuntimeError("relay process did not start")


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] * 1000, 3)


async def step(http: ClientSession, base: str, clip: Clip, rooms: int, k: int, seconds: float) -> dict[str, Any]:
    await http.post(f"{base}/reset", json={})
    made = [Room(f"r{i}", clip, k) for i in range(rooms)]
    for room in made:
        await room.start(http, base)
    warmup = 1.5
    end = time.perf_counter() + warmup + seconds
    players = [asyncio.ensure_future(room.play(end)) for room in made]
    await asyncio.sleep(warmup)
    for room in made:
        for c in room.counters:
            c.window()
    first = await (await http.post(f"{base}/stats", json={})).json()
    await asyncio.sleep(seconds)
    last = await (await http.post(f"{base}/stats", json={})).json()
    windows = [c.window() for room in made for c in room.counters]
    await asyncio.gather(*players)
    for room in made:
        await room.close()
    wall = last["wall"] - first["wall"]
    cpu = (last["cpu"] - first["cpu"]) / wall
    forwarded_pps = (last["forwarded"] - first["forwarded"]) / wall
    got = sum(g for g, _ in windows)
    expected = sum(e for _, e in windows)
    subscriptions = rooms * k
    connected = sum(1 for g, _ in windows if g)
    return {
        "rooms": rooms, "subscribers_per_room": k, "video_subscriptions": subscriptions,
        "subscriptions_receiving": connected,
        "relay_cpu": round(cpu, 3), "forwarded_pps": round(forwarded_pps), "loss_pct": round(100 * (1 - got / expected), 2) if expected else 100.0,
        "pps_per_core": round(forwarded_pps / cpu) if cpu > 0 else 0,
        "subscriptions_per_core": round(subscriptions / cpu, 1) if cpu > 0 else 0,
        "latency_p50_ms": pct(last["latencies"], 50), "latency_p95_ms": pct(last["latencies"], 95),
    }


async def run(quick: bool, k: int) -> int:
    clip = encode_clip(CLIP_FRAMES)
    packets_per_frame = statistics.mean(len(p) for p in clip.video)
    print(f"clip: {len(clip.video)} VGA VP8 frames, {packets_per_frame:.1f} packets/frame "
          f"(≈ {packets_per_frame * FPS:.0f} video packets/s) + 50 Opus packets/s", flush=True)
    seconds = 2.5 if quick else 5.0
    plan = [2, 6, 12] if quick else [2, 4, 8, 12, 16, 20, 24, 32]
    results: list[dict[str, Any]] = []
    proc, base = await start_relay("passthrough", uvloop=UVLOOP)
    try:
        async with ClientSession() as http:
            for rooms in plan:
                r = await step(http, base, clip, rooms, k, seconds)
                results.append(r)
                print(f"passthrough {rooms:>3} rooms × {k}: relay CPU {r['relay_cpu']:.2f}, "
                      f"{r['forwarded_pps']} pps forwarded, loss {r['loss_pct']} %, "
                      f"{r['pps_per_core']} pps/core, latency p50 {r['latency_p50_ms']} ms "
                      f"p95 {r['latency_p95_ms']} ms", flush=True)
                if r["loss_pct"] > 1 or r["relay_cpu"] >= 0.95:
                    break
    finally:
        proc.kill()
    good = [r for r in results if r["loss_pct"] <= 1] or results
    best = max(good, key=lambda r: r["pps_per_core"])
    proc, base = await start_relay("mediarelay")
    try:
        async with ClientSession() as http:
            baseline = await step(http, base, clip, 1, k, seconds)
    finally:
        proc.kill()
    print(f"MediaRelay    1 room × {k}: relay CPU {baseline['relay_cpu']:.2f}, "
          f"{baseline['subscriptions_per_core']} subscriptions/core", flush=True)
    ratio = round(best["subscriptions_per_core"] / baseline["subscriptions_per_core"], 1) if baseline["subscriptions_per_core"] else 0
    figures = {
        "pps_per_core": best["pps_per_core"],
        "subscriptions_per_core": best["subscriptions_per_core"],
        "loss_pct": best["loss_pct"],
        "added_latency_p50_ms": best["latency_p50_ms"],
        "added_latency_p95_ms": best["latency_p95_ms"],
        "mediarelay_subscriptions_per_core": baseline["subscriptions_per_core"],
        "ratio_vs_mediarelay": ratio,
        "steps": results,
        "baseline": baseline,
        "quick": quick,
    }
    for name, value, target, better in (("pps_per_core", figures["pps_per_core"], TARGET_PPS, "≥"),
                                         ("ratio_vs_mediarelay", ratio, TARGET_RATIO, "≥"),
                                         ("added_latency_p95_ms", figures["added_latency_p95_ms"], TARGET_LATENCY_MS, "≤")):
        met = value >= target if better == "≥" else value <= target
        print(f"target {name} {better} {target}: {value} ({'met' if met else 'NOT met'})", flush=True)
    print(json.dumps(figures), flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="three short steps and the baseline, under a minute")
    parser.add_argument("--subscribers", type=int, default=2, help="subscribers per room (default 2)")
    parser.add_argument("--serve", choices=("passthrough", "mediarelay"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--uvloop", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        if args.uvloop:
            import uvloop

            uvloop.install()
        asyncio.run(serve(args.serve, args.port))
        return 0
    return asyncio.run(run(args.quick, args.subscribers))


if __name__ == "__main__":
    sys.exit(main())
