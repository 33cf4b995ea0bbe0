"""Media relay benchmark: forwarded RTP packets per relay CPU core, against aiortc's MediaRelay.

What is measured
----------------
Four processes on loopback (every ICE candidate is 127.0.0.1, no STUN/TURN):

* the **relay**: ``signaling.relay.relay.Relay`` on its own asyncio loop (uvloop, as
  ``server/cli.py`` runs it), driven through a small JSON endpoint on 127.0.0.1 (publish,
  subscribe, answer, ready, mark/window, reset); its RelaySink keeps the subscription offers
  for the subscriber process to fetch;
* one **publisher** process: one publishing aiortc peer connection per publishing
  participant of each of N rooms, sending what a browser sends for a VGA camera: 640×480
  30 fps VP8 at ~1.5 Mbit/s (~155 packets/s) plus Opus at 50 packets/s. A 3 s clip (moving
  patterns with fresh noise, one keyframe) and 1 s of Opus tone are encoded once by this
  script; publishers replay the payloads in real time through ``passthrough.PacketSender``
  (no encoding per publisher; the clip loops, each publisher from a random frame so that
  keyframes do not coincide);
* one **subscriber** process: one subscribing peer connection per subscribing participant of
  each room, receiving every other participant's video and audio. To leave the relay the
  CPU, packets are counted from their clear RTP header as they come off the socket, before
  SRTP and aiortc's receive path, so subscribers send no NACKs. ``--nacking`` counts them
  after aiortc's receive path instead (``passthrough.tap_receiver``: SRTP, statistics,
  NACKs), at several times the client CPU. Each stream is counted under the subscriber and
  the publisher the relay's offer names for its m-line;
* this process, which encodes the clip, orchestrates, and reads ``/proc``.

Rooms come in two shapes (``--modes`` picks passthrough, party and the baseline below):

* **passthrough**: one publisher ``pub`` and k subscribers ``sub0``… (``--subscribers``,
  default 2): a webinar-like fan-out, the relay receives one packet per k it forwards;
* **party**: P participants ``p0``…``p{P-1}``, each joining once, publishing camera (the
  clip) + audio and subscribing to everyone else: P × (P − 1) subscriptions per room, the
  relay receives one packet per P − 1 it forwards. Run for P = 2 (a 1:1 call: two
  participants, each seeing the other) and P = 5, each with a fresh relay process. A 1:1
  room forwards 2 × 205 packets/s and a 5-party room 20 × 205, so the plan steps 1:1 rooms
  at ten times the 5-party counts: the n-room 5-party step and the 10n-room 1:1 step load
  the relay with the same forwarded rate.

N grows step by step until subscribers lose more than 1 % of packets or the relay uses ≥ 95 %
of one core. A step sets up every connection (all publications before the subscriptions, so
each subscription's first offer carries every track), waits until all are connected, plays
for a warm-up and a measured window, counts, and tears everything down.

How to read it
--------------
Per step (one line each, and the dicts under ``steps`` in the JSON; party steps under
``party_steps``):

``relay_cpu``
    relay CPU time ÷ wall time over the window, in cores (``time.process_time`` inside the
    relay; ``relay_cpu_proc`` is the same from ``/proc/<pid>/stat``).
``forwarded_pps``, ``pps_per_core``, ``us_per_packet``
    packets handed to subscriber transports per second (video + audio, retransmissions not
    counted), that ÷ relay_cpu, and relay CPU µs per forwarded packet (1e6 ÷ pps_per_core).
    The relay's whole CPU is divided by the packets it sends: receiving (SRTP, parsing, NACK
    bookkeeping) is shared among the 1, k or P − 1 packets each received packet becomes,
    and each peer connection's fixed work (RTCP, ICE consent, timers) among the packets it
    carries — a 1:1 room has 4 peer connections for 410 forwarded packets/s, a 5-party room
    10 for 4100.
``subscriptions_per_core``
    subscriptions in the step (each one publisher's VGA video + its Opus audio to one
    subscriber) ÷ relay_cpu.
``loss_pct``
    1 − unique packets the subscribers received ÷ what they should have received: for each
    subscriber, the packets each of the other publishers sent (× k in a passthrough room,
    × (P − 1) in a party room), over the whole playing time. Counted against what was sent,
    not from sequence gaps (``seq_loss_pct``), because the relay renumbers to close a gap it
    gives up on. ``streams_receiving``/``streams_expected``: streams that got packets, and
    two (video, audio) per subscription; ``streams_as_routed``: every subscriber received each
    other publisher's video and audio exactly once (a step fails otherwise).
``added_latency_*``
    per forwarded video packet, from the publisher's ``sendto`` (its abs-send-time stamp; the
    processes share this machine's clock) until ``sendto`` returned for the relay's last
    subscriber of that track (of k, or of P − 1 in a party room): the loopback hop, the wait
    in the relay's socket buffer and event loop, SRTP, parsing, NACK bookkeeping,
    forwarding. ``tap_latency_*`` is only the forwarding part (from ``Source.on_packet``).
``relay_sys_share``
    the kernel's part of the relay's CPU. On loopback, ``sendto`` also runs the receiving
    side's UDP delivery and wakes the receiving process, in the sender's time: the relay
    pays for its subscribers' kernel receive work (about 11 % of its CPU in a ``perf``
    profile at 24 rooms × 2), which a NIC would not charge it. pps_per_core is therefore
    somewhat pessimistic.
``relay_cpu_wait``
    share of the window the relay was runnable but waiting for a CPU (``/proc/<pid>/schedstat``).
    Other work on this 2-core machine (``other_cpu``: busy cores not used by the relay,
    publisher or subscribers) shows up here and inflates latency; packets that queue while
    the relay waits are then handled in bigger batches, which flatters pps_per_core. The
    summary warns when that was the case. ``publisher_lag_*`` is how late publishers sent
    (late sends arrive as bursts).
``profile`` (``--profile``)
    the relay's CPU time by Python function over the window, sampled on SIGPROF; C code
    (SRTP, ``sendto``) counts toward its Python caller.

The latency probe wraps two functions of the relay and costs it a few per cent of its CPU;
it is part of what is measured.

The headline figures (``pps_per_core``, ``subscriptions_per_core``, ``loss_pct``,
``added_latency_p50_ms``/``p95``) come from the passthrough step with ≤ 1 % loss and the
highest pps_per_core, among the steps other load did not disturb (the relay waited for a CPU
≤ 20 % of the window and other processes used ≤ 0.3 core) if there is one. Near saturation
the loop's queue, and so latency, grows fast; ``latency_target_step`` is the busiest of those
steps whose added latency p95 stayed within 20 ms.

Party rooms, from the best 1:1 and the best 5-party step (the same rule: ≤ 1 % loss, every
stream as routed, undisturbed if there is one, then the highest pps_per_core, that is the
fewest µs per forwarded packet): ``one_to_one_us_per_packet``, ``five_party_us_per_packet``
and their ratio ``five_party_vs_one_to_one_cpu_per_packet``; ``five_party_rooms_per_core`` =
rooms ÷ relay_cpu of that 5-party step, with its ``five_party_loss_pct`` and
``five_party_added_latency_p95_ms``. The two best steps need not carry the same load (the
summary prints both rates) and the cost per packet falls as load grows (fixed work spread
thinner, bigger batches), so compare paired steps too. On a 2-core machine the clients run
out of CPU sooner in 1:1 rooms, whose publishers send as many packets as the relay forwards
(four times as many as in 5-party rooms at the same forwarded rate): the 1:1 series may stop
before the relay is busy. Rooms per core extrapolates linearly from the step's relay CPU, as
the other per-core figures do.

Baseline: the same load through aiortc's ``MediaRelay`` in a fresh relay process: publisher
connections decode as usual, each subscriber connection gets ``MediaRelay.subscribe(track)``
and encodes for itself (VP8 encoders start at 1.5 Mbit/s, like the publisher). Its loss is
counted from sequence gaps (it re-encodes, so counts differ), and a step also fails when a
subscriber gets under 90 % of 30 frames/s (an overloaded MediaRelay queues instead of
dropping). ``mediarelay_subscriptions_per_core`` comes from its best good step;
``ratio_vs_mediarelay`` = subscriptions_per_core ÷ mediarelay_subscriptions_per_core.

Usage: ``python bench/relay.py [--quick] [--modes passthrough,party,mediarelay]
[--subscribers K] [--rooms N,N,..] [--seconds S] [--profile] [--pin] [--nacking]
[--no-uvloop]``. ``--modes`` runs some of the three (default all); ``--quick`` takes about a
minute, a full run at most about ten (each mode stops starting steps after its time budget);
``--rooms``/``--seconds`` replace the passthrough room steps and the measured window
(``--modes passthrough --rooms 24 --seconds 20 --profile`` is a steady load to profile);
``--pin`` puts the relay on CPU 0 and the clients on CPU 1. The last line printed is one JSON
object; the exit status is 1 when a mode that ran (or either party size) has no step within
1 % loss.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, where bench/queue.py would
# shadow the standard library's ``queue`` (which aiortc and concurrent.futures import).
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

import argparse
import asyncio
import collections
import dataclasses
import fractions
import json
import os
import pickle
import random
import signal
import struct
import tempfile
import threading
import time
import traceback
import types
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aioice.ice
import numpy as np
from aiohttp import ClientError, ClientSession, ClientTimeout, web
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.codecs import get_encoder
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription
from av import AudioFrame, VideoFrame

from signaling.relay.passthrough import PacketSender, ntp_now, tap_receiver
from signaling.tasks import Tasks

FPS = 30
AUDIO_PTIME_S = 0.02
CLIP_SECONDS = 3
VIDEO_BITRATE = 1_500_000
LOSS_LIMIT_PCT = 1.0
CPU_LIMIT = 0.95
MIN_FPS_SHARE = 0.9
DRAIN_S = 0.5
READY_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 60.0
CHILD_LIFETIME_S = 900.0
LATENCY_TARGET_MS = 20
TARGETS = (  # figure, comparison, target, the modes it needs
    ("pps_per_core", ">=", 20_000, ("passthrough",)),
    ("ratio_vs_mediarelay", ">=", 20, ("passthrough", "mediarelay")),
    ("added_latency_p95_ms", "<=", LATENCY_TARGET_MS, ("passthrough",)),
)
PROFILE_TOP = 12
NOISY_WAIT = 0.2
NOISY_OTHER_CPU = 0.3
CLK_TCK = os.sysconf("SC_CLK_TCK")


def loopback_only() -> None:
    """ICE candidates on 127.0.0.1 only (aioice otherwise uses every interface but loopback)."""
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


def rtc_config() -> RTCConfiguration:
    return RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


def percentile_ms(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] * 1000, 3)


class Placeholder(MediaStreamTrack):
    """A sender needs a track to be negotiated; its packets are replayed, never pulled."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    async def recv(self) -> Any:
        raise RuntimeError("replayed, never pulled")


# ----------------------------------------------------------------------------- the clip
@dataclass
class Clip:
    video: list[list[bytes]]  # RTP payloads of each frame
    audio: list[bytes]  # one Opus payload per 20 ms

    @property
    def video_pps(self) -> float:
        return sum(len(f) for f in self.video) / len(self.video) * FPS

    @property
    def video_bitrate(self) -> float:
        return sum(len(p) for f in self.video for p in f) * 8 / (len(self.video) / FPS)


def encode_clip(seconds: int = CLIP_SECONDS) -> Clip:
    """Smooth moving patterns plus fresh sensor-like noise in every frame, so the encoder
    spends its whole bitrate on every frame and the keyframe stays browser-sized."""
    vp8 = get_encoder(RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96))
    vp8.target_bitrate = VIDEO_BITRATE  # type: ignore[attr-defined]
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
    video: list[list[bytes]] = []
    for i in range(seconds * FPS):
        image = np.stack(
            [
                128 + 100 * np.sin((xx + 6 * i) / 40) * np.cos((yy - 4 * i) / 30),
                128 + 100 * np.sin((xx - 3 * i) / 25 + yy / 50),
                (xx + yy + 8 * i) % 256,
            ],
            axis=-1,
        ) + 6 * rng.standard_normal((480, 640, 3), dtype=np.float32)
        frame = VideoFrame.from_ndarray(np.clip(image, 0, 255).astype(np.uint8), format="rgb24")
        frame.pts, frame.time_base = i * 3000, fractions.Fraction(1, 90000)
        payloads, _ = vp8.encode(frame, force_keyframe=i == 0)
        video.append(payloads)
    opus = get_encoder(
        RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
    )
    audio: list[bytes] = []
    samples = 960
    for i in range(60):
        t = (np.arange(samples) + i * samples) / 48000
        tone = (np.sin(2 * np.pi * 440 * t) * 6000).astype(np.int16)
        sound = AudioFrame.from_ndarray(
            np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo"
        )
        sound.sample_rate, sound.pts, sound.time_base = (
            48000,
            i * samples,
            fractions.Fraction(1, 48000),
        )
        payloads, _ = opus.encode(sound)
        audio.extend(payloads)
    return Clip(video=[f for f in video if f], audio=audio[-50:])


# ----------------------------------------------------------------------------- child processes
class Worker:
    """A child process's control surface: ``op_<name>(**json) -> json``."""

    async def close(self) -> None:
        return None


async def serve_worker(worker: Worker) -> None:
    """Serve ``worker`` on 127.0.0.1 (random port, printed as ``PORT n``) until stdin closes."""

    async def dispatch(request: web.Request) -> web.Response:
        method: Callable[..., Awaitable[dict[str, Any]]] | None = getattr(
            worker, "op_" + request.match_info["op"], None
        )
        if method is None:
            return web.json_response({"error": "unknown op"}, status=404)
        body = await request.json() if request.can_read_body else {}
        try:
            return web.json_response(await method(**body))
        except Exception as exc:  # noqa: BLE001 - any failure goes back to the orchestrator
            traceback.print_exc()
            return web.json_response({"error": repr(exc)}, status=500)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/{op}", dispatch)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    loop = asyncio.get_running_loop()
    closed = asyncio.Event()

    def watch_stdin() -> None:  # the orchestrator closes stdin (or dies): time to go
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(closed.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        await asyncio.wait_for(closed.wait(), CHILD_LIFETIME_S)
    except TimeoutError:
        pass
    try:
        await asyncio.wait_for(worker.close(), 5)
    finally:
        await runner.cleanup()


class LatencyProbe:
    """How long a video packet took from the publisher's ``sendto`` until the relay had handed
    it to every subscriber's socket, and how much of that was the relay's own forwarding.

    The publisher (``PacketSender``) stamps each video packet's abs-send-time header extension
    with its clock (``time.time()``, 6.18 fixed point, 3.8 µs steps) as it sends; publisher and
    relay share this machine's clock, so the packet's age when ``Source.emit`` returns covers
    the loopback hop, the wait in the relay's socket buffer and event loop, SRTP, parsing, NACK
    bookkeeping, holding for order, and forwarding. Audio carries no abs-send-time and is
    not sampled. ``tap_s`` is only the forwarding part (from ``Source.on_packet``)."""

    def __init__(self) -> None:
        self.socket_s: list[float] = []
        self.tap_s: list[float] = []

    def install(self) -> None:
        from signaling.relay.relay import Source

        probe = self
        on_packet, emit = Source.on_packet, Source.emit

        def timed_on_packet(source: Source, packet: RtpPacket) -> None:
            packet.bench_tap = time.perf_counter()  # type: ignore[attr-defined]
            on_packet(source, packet)

        def timed_emit(source: Source, stream: Any, packet: RtpPacket) -> None:
            emit(source, stream, packet)
            sent = packet.extensions.abs_send_time
            if sent is None or not source.outlets or len(probe.tap_s) >= 1_000_000:
                return
            done = time.perf_counter()
            now = (int((time.time() % 64) * (1 << 18))) & 0xFFFFFF
            probe.socket_s.append(((now - sent) & 0xFFFFFF) / (1 << 18))
            probe.tap_s.append(done - packet.bench_tap)  # type: ignore[attr-defined]

        Source.on_packet = timed_on_packet  # type: ignore[method-assign]
        Source.emit = timed_emit  # type: ignore[method-assign]

    def reset(self) -> None:
        self.socket_s, self.tap_s = [], []

    def summary(self) -> dict[str, Any]:
        return {
            "added_latency_p50_ms": percentile_ms(self.socket_s, 50),
            "added_latency_p95_ms": percentile_ms(self.socket_s, 95),
            "added_latency_max_ms": percentile_ms(self.socket_s, 100),
            "tap_latency_p50_ms": percentile_ms(self.tap_s, 50),
            "tap_latency_p95_ms": percentile_ms(self.tap_s, 95),
        }


class CpuSampler:
    """Where the relay's CPU time goes: every ``INTERVAL_S`` of process CPU time (SIGPROF), the
    running Python stack is counted. Time spent in C code (SRTP, ``sendto``, the event loop's
    own machinery) lands on the Python function that called it or runs next."""

    INTERVAL_S = 0.002

    def __init__(self) -> None:
        self.own: collections.Counter[str] = collections.Counter()
        self.inclusive: collections.Counter[str] = collections.Counter()
        self.samples = 0

    def start(self) -> None:
        self.own.clear()
        self.inclusive.clear()
        self.samples = 0
        signal.signal(signal.SIGPROF, self._sample)
        signal.setitimer(signal.ITIMER_PROF, self.INTERVAL_S, self.INTERVAL_S)

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)

    def _sample(self, signum: int, frame: types.FrameType | None) -> None:
        self.samples += 1
        seen: set[str] = set()
        while frame is not None:
            code = frame.f_code
            name = f"{code.co_qualname} ({'/'.join(code.co_filename.split('/')[-2:])})"
            if not seen:
                self.own[name] += 1
            if name not in seen:
                seen.add(name)
                self.inclusive[name] += 1
            frame = frame.f_back

    def top(self, n: int) -> dict[str, list[tuple[str, float]]]:
        """The ``n`` biggest by own time, and by inclusive time leaving out the frames that
        are on (nearly) every stack (the event loop, this script's entry points)."""
        share = 100 / max(1, self.samples)
        inclusive = [(name, c) for name, c in self.inclusive.most_common() if c * share < 90]
        return {
            "own": [(name, round(c * share, 1)) for name, c in self.own.most_common(n)],
            "inclusive": [(name, round(c * share, 1)) for name, c in inclusive[:n]],
        }


class RelayWorker(Worker):
    """The relay under test, and the RelaySink that keeps its subscription offers."""

    def __init__(self, profile: bool) -> None:
        from signaling.relay.ice import MediaNetwork
        from signaling.relay.relay import Relay

        self.probe = LatencyProbe()
        self.probe.install()
        self.sampler = CpuSampler() if profile else None
        self.relay = Relay(self, network=MediaNetwork(("127.0.0.1",)))  # on loopback only
        self.offers: dict[tuple[str, str], asyncio.Future[dict[str, Any]]] = {}
        self._mark = (0.0, 0.0, 0)

    async def subscribe_offer(
        self, room_id: str, participant_id: str, sdp: str, tracks: list[dict[str, Any]]
    ) -> None:
        waiting = self.offers.get((room_id, participant_id))
        if waiting is not None and not waiting.done():
            waiting.set_result({"sdp": sdp, "tracks": tracks})

    async def peer_state(self, room_id: str, participant_id: str, which: str, state: str) -> None:
        return None

    async def video_paused(self, room_id: str, participant_id: str, track_id: str, paused: bool) -> None:
        return None

    async def publish_layers(self, room_id: str, participant_id: str, source: str, active: list[str]) -> None:
        return None

    async def op_info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "loop": type(asyncio.get_running_loop()).__module__}

    async def op_publish(
        self, room: str, pid: str, sdp: str, sources: dict[str, str]
    ) -> dict[str, Any]:
        self.relay.join(room, pid)
        return {"sdp": await self.relay.publish(room, pid, sdp, sources)}

    async def op_subscribe(self, room: str, pid: str) -> dict[str, Any]:
        """The offer and the relay's list of what each m-line carries (``mid``,
        ``participant_id``). In a party room the participant joined to publish already and
        ``join`` keeps it: one participant publishes and subscribes."""
        self.relay.join(room, pid)
        waiting = self.offers[(room, pid)] = asyncio.get_running_loop().create_future()
        await self.relay.subscribe(room, pid)
        return await asyncio.wait_for(waiting, 20)

    async def op_answer(self, room: str, pid: str, sdp: str) -> dict[str, Any]:
        self.offers.pop((room, pid), None)
        await self.relay.answer_subscription(room, pid, sdp)
        return {}

    def _participants(self) -> list[Any]:
        return [p for r in self.relay.rooms.values() for p in r.participants.values()]

    async def op_ready(self) -> dict[str, Any]:
        pcs = [
            pc
            for p in self._participants()
            for pc in (p.publish_pc, p.subscribe_pc)
            if pc is not None
        ]
        outlets = [o for p in self._participants() for s in p.sources.values() for o in s.outlets]
        live = [
            o
            for o in outlets
            if o.sender._payload_type is not None
            and o.transceiver.sender.transport.state == "connected"
        ]
        return {
            "pcs": len(pcs),
            "connected": sum(pc.connectionState == "connected" for pc in pcs),
            "outlets": len(live),
        }

    def _forwarded(self) -> int:
        return sum(o.sender.forwarded for p in self._participants() for o in p.outlets)

    async def op_mark(self) -> dict[str, Any]:
        self.probe.reset()
        if self.sampler is not None:
            self.sampler.start()
        self._mark = (time.process_time(), time.perf_counter(), self._forwarded())
        return {}

    async def op_window(self) -> dict[str, Any]:
        cpu, wall, forwarded = time.process_time(), time.perf_counter(), self._forwarded()
        profile: dict[str, Any] = {}
        if self.sampler is not None:
            self.sampler.stop()
            profile["profile"] = self.sampler.top(PROFILE_TOP)
        sources = [s for p in self._participants() for s in p.sources.values()]
        return {
            **profile,
            "cpu_s": cpu - self._mark[0],
            "wall_s": wall - self._mark[1],
            "forwarded": forwarded - self._mark[2],
            "gaps_recovered": sum(s.gaps_recovered for s in sources),
            "gaps_skipped": sum(s.gaps_skipped for s in sources),
            **self.probe.summary(),
        }

    async def op_reset(self) -> dict[str, Any]:
        for room in list(self.relay.rooms):
            await self.relay.close_room(room)
        self.offers.clear()
        self.probe.reset()
        return {}

    async def close(self) -> None:
        await self.op_reset()
        await self.relay.shutdown()


class MediaRelayWorker(Worker):
    """The baseline: aiortc's MediaRelay, decoding each publisher once, encoding per subscriber."""

    def __init__(self) -> None:
        from aiortc.codecs import vpx
        from aiortc.contrib.media import MediaRelay

        vpx.DEFAULT_BITRATE = VIDEO_BITRATE  # what REMB would ramp a good link up to
        self._media_relay = MediaRelay
        self.media = MediaRelay()
        self.published: dict[str, tuple[str, list[MediaStreamTrack]]] = {}
        self.publish_pcs: list[RTCPeerConnection] = []
        self.subscribe_pcs: dict[tuple[str, str], RTCPeerConnection] = {}
        self._mark = (0.0, 0.0, 0)

    async def op_info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "loop": type(asyncio.get_running_loop()).__module__}

    async def op_publish(
        self, room: str, pid: str, sdp: str, sources: dict[str, str]
    ) -> dict[str, Any]:
        pc = RTCPeerConnection(rtc_config())
        self.publish_pcs.append(pc)
        tracks: list[MediaStreamTrack] = []
        self.published[room] = (pid, tracks)
        pc.on("track", tracks.append)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return {"sdp": pc.localDescription.sdp}

    async def op_subscribe(self, room: str, pid: str) -> dict[str, Any]:
        pc = self.subscribe_pcs[(room, pid)] = RTCPeerConnection(rtc_config())
        publisher, tracks = self.published[room]
        for track in tracks:
            pc.addTrack(self.media.subscribe(track))
        await pc.setLocalDescription(await pc.createOffer())
        return {
            "sdp": pc.localDescription.sdp,
            "tracks": [{"mid": t.mid, "participant_id": publisher} for t in pc.getTransceivers()],
        }

    async def op_answer(self, room: str, pid: str, sdp: str) -> dict[str, Any]:
        await self.subscribe_pcs[(room, pid)].setRemoteDescription(
            RTCSessionDescription(sdp=sdp, type="answer")
        )
        return {}

    def _senders(self) -> list[RTCRtpSender]:
        return [s for pc in self.subscribe_pcs.values() for s in pc.getSenders()]

    async def op_ready(self) -> dict[str, Any]:
        pcs = [*self.publish_pcs, *self.subscribe_pcs.values()]
        live = [
            s
            for s in self._senders()
            if s.transport is not None and s.transport.state == "connected"
        ]
        return {
            "pcs": len(pcs),
            "connected": sum(pc.connectionState == "connected" for pc in pcs),
            "outlets": len(live),
        }

    def _forwarded(self) -> int:
        return sum(s._RTCRtpSender__packet_count for s in self._senders())  # type: ignore[attr-defined]

    async def op_mark(self) -> dict[str, Any]:
        self._mark = (time.process_time(), time.perf_counter(), self._forwarded())
        return {}

    async def op_window(self) -> dict[str, Any]:
        return {
            "cpu_s": time.process_time() - self._mark[0],
            "wall_s": time.perf_counter() - self._mark[1],
            "forwarded": self._forwarded() - self._mark[2],
        }

    async def op_reset(self) -> dict[str, Any]:
        for pc in [*self.subscribe_pcs.values(), *self.publish_pcs]:
            await pc.close()
        self.subscribe_pcs.clear()
        self.publish_pcs.clear()
        self.published.clear()
        self.media = self._media_relay()
        return {}

    async def close(self) -> None:
        await self.op_reset()


async def post(http: ClientSession, url: str, **body: Any) -> dict[str, Any]:
    async with http.post(url, json=body) as response:
        reply: dict[str, Any] = await response.json()
        if response.status != 200:
            raise RuntimeError(f"{url}: {reply.get('error')}")
        return reply


@dataclass
class Publication:
    """One participant's publishing connection in one room."""

    room: str
    pid: str
    pc: RTCPeerConnection
    video: PacketSender
    audio: PacketSender
    lag_s: list[float] = field(default_factory=list)


class PublisherWorker(Worker):
    """One publishing connection per publishing participant (``pids``) of each room, replaying
    the pre-encoded clip in real time."""

    def __init__(self, clip_path: str) -> None:
        with open(clip_path, "rb") as f:
            video, audio = pickle.load(f)
        self.clip = Clip(video, audio)
        self.publications: list[Publication] = []
        self.players: list[asyncio.Task[None]] = []
        self.tasks = Tasks("publisher")  # what the publications' senders send late
        self.http: ClientSession | None = None

    async def op_setup(self, relay: str, rooms: list[str], pids: list[str]) -> dict[str, Any]:
        self.http = self.http or ClientSession(timeout=ClientTimeout(total=CALL_TIMEOUT_S))
        gate = asyncio.Semaphore(8)
        await asyncio.gather(
            *(self._publish(relay, room, pid, gate) for room in rooms for pid in pids)
        )
        return {}

    async def _publish(self, relay: str, room: str, pid: str, gate: asyncio.Semaphore) -> None:
        assert self.http is not None
        async with gate:
            pc = RTCPeerConnection(rtc_config())
            video = pc.addTransceiver(Placeholder("video"), direction="sendonly")
            audio = pc.addTransceiver(Placeholder("audio"), direction="sendonly")
            video.setCodecPreferences(
                [
                    c
                    for c in RTCRtpSender.getCapabilities("video").codecs
                    if c.mimeType.lower() in ("video/vp8", "video/rtx")
                ]
            )
            publication = Publication(
                room, pid, pc, PacketSender(video.sender, self.tasks), PacketSender(audio.sender, self.tasks)
            )
            self.publications.append(publication)
            await pc.setLocalDescription(await pc.createOffer())
            sources = {video.mid or "": "camera", audio.mid or "": "microphone"}
            reply = await post(
                self.http,
                f"{relay}/publish",
                room=room,
                pid=pid,
                sdp=pc.localDescription.sdp,
                sources=sources,
            )
            await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
            for sender, transceiver in (
                (publication.video, video),
                (publication.audio, audio),
            ):
                payload_type = transceiver._codecs[0].payloadType
                assert payload_type is not None
                sender.bind(payload_type)

    async def op_ready(self) -> dict[str, Any]:
        return {
            "pcs": len(self.publications),
            "connected": sum(p.pc.connectionState == "connected" for p in self.publications),
        }

    async def op_play(self, seconds: float, any_phase: bool) -> dict[str, Any]:
        """Publishers start within one frame time of each other; with ``any_phase`` each one
        starts at a random frame of the clip, so keyframes do not arrive all at once (a relay
        that decodes needs the keyframe first)."""
        start = time.perf_counter() + 0.05
        end = start + seconds
        self.players = [
            asyncio.ensure_future(
                self._play(
                    p,
                    start + random.uniform(0, 1 / FPS),
                    end,
                    random.randrange(len(self.clip.video)) if any_phase else 0,
                )
            )
            for p in self.publications
        ]
        return {}

    async def _play(self, publication: Publication, start: float, end: float, phase: int) -> None:
        video, audio = self.clip.video[phase:] + self.clip.video[:phase], self.clip.audio
        seq_v, seq_a = random.randrange(1 << 16), random.randrange(1 << 16)
        ts_v, ts_a = random.randrange(1 << 32), random.randrange(1 << 32)
        frame = tick = 0
        while True:
            due_v, due_a = start + frame / FPS, start + tick * AUDIO_PTIME_S
            due = min(due_v, due_a)
            if due >= end:
                return
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            publication.lag_s.append(time.perf_counter() - due)
            if due_v <= due_a:
                payloads = video[frame % len(video)]
                for i, payload in enumerate(payloads):
                    packet = RtpPacket(
                        marker=int(i == len(payloads) - 1),
                        sequence_number=seq_v & 0xFFFF,
                        timestamp=(ts_v + frame * 3000) & 0xFFFFFFFF,
                        payload=payload,
                    )
                    publication.video.forward(packet, 1, ntp_now())
                    seq_v += 1
                frame += 1
            else:
                packet = RtpPacket(
                    marker=int(tick == 0),
                    sequence_number=seq_a & 0xFFFF,
                    timestamp=(ts_a + tick * 960) & 0xFFFFFFFF,
                    payload=audio[tick % len(audio)],
                )
                publication.audio.forward(packet, 2, ntp_now())
                seq_a += 1
                tick += 1

    async def op_stats(self) -> dict[str, Any]:
        """Packets each publication sent, as ``sent[room][pid][kind]``, and how late."""
        await asyncio.gather(*self.players)
        lags = [lag for p in self.publications for lag in p.lag_s]
        sent: dict[str, dict[str, dict[str, int]]] = {}
        for p in self.publications:
            sent.setdefault(p.room, {})[p.pid] = {
                "video": p.video.forwarded,
                "audio": p.audio.forwarded,
            }
        return {
            "sent": sent,
            "lag_p95_ms": percentile_ms(lags, 95),
            "lag_max_ms": percentile_ms(lags, 100),
        }

    async def op_reset(self) -> dict[str, Any]:
        for task in self.players:
            task.cancel()
        await asyncio.gather(*(p.pc.close() for p in self.publications), return_exceptions=True)
        self.publications, self.players = [], []
        return {}

    async def close(self) -> None:
        await self.op_reset()
        await self.tasks.close()
        if self.http is not None:
            await self.http.close()


class StreamCounter:
    """What one subscriber received of one publisher's track: unique sequence numbers and
    frames."""

    def __init__(self, kind: str, subscriber: str, publisher: str) -> None:
        self.kind, self.subscriber, self.publisher = kind, subscriber, publisher
        self.seqs: set[int] = set()
        self.highest: int | None = None
        self.timestamps: set[int] = set()

    def count(self, seq: int, timestamp: int) -> None:
        if self.highest is None:
            self.highest = seq
        unwrapped = self.highest + ((seq - self.highest + 0x8000) & 0xFFFF) - 0x8000
        self.highest = max(self.highest, unwrapped)
        self.seqs.add(unwrapped)
        if self.kind == "video":
            self.timestamps.add(timestamp)

    def add(self, packet: RtpPacket) -> None:
        self.count(packet.sequence_number, packet.timestamp)

    def summary(self) -> dict[str, Any]:
        expected = max(self.seqs) - min(self.seqs) + 1 if self.seqs else 0
        return {
            "kind": self.kind,
            "subscriber": self.subscriber,
            "publisher": self.publisher,
            "received": len(self.seqs),
            "expected_by_seq": expected,
            "frames": len(self.timestamps),
        }


class SocketCounters:
    """Counts RTP packets of known SSRCs as the event loop hands them to aioice, from the clear
    RTP header of the SRTP packet: no decryption, parsing or receiver statistics, hence no NACKs.
    Everything else (STUN, DTLS, RTCP, unknown SSRCs) takes aiortc's usual path."""

    def __init__(self) -> None:
        self.by_ssrc: dict[int, StreamCounter] = {}

    def install(self) -> None:
        original = aioice.ice.StunProtocol.datagram_received
        by_ssrc = self.by_ssrc
        header = struct.Struct("!HLL")

        def datagram_received(
            protocol: aioice.ice.StunProtocol, data: bytes | str, addr: tuple[Any, ...]
        ) -> None:
            if (
                isinstance(data, bytes)
                and len(data) >= 12
                and 127 < data[0] < 192
                and not 191 < data[1] < 224
            ):
                seq, timestamp, ssrc = header.unpack_from(data, 2)  # RTP, not RTCP
                counter = by_ssrc.get(ssrc)
                if counter is not None:
                    counter.count(seq, timestamp)
                    return
            original(protocol, data, addr)

        aioice.ice.StunProtocol.datagram_received = datagram_received  # type: ignore[method-assign,assignment]


def offered_streams(sdp: str) -> list[tuple[str, str, int]]:
    """(mid, kind, media SSRC) of each m-line of an offer (the first SSRC of an RTX pair)."""
    streams = []
    for media in SessionDescription.parse(sdp).media:
        fid = [g.items for g in media.ssrc_group if g.semantic == "FID"]
        if fid:
            streams.append((media.rtp.muxId or "", media.kind, int(fid[0][0])))
        elif media.ssrc:
            streams.append((media.rtp.muxId or "", media.kind, media.ssrc[0].ssrc))
    return streams


@dataclass
class SubscriberRoom:
    name: str
    pcs: list[RTCPeerConnection] = field(default_factory=list)
    streams: list[StreamCounter] = field(default_factory=list)


class SubscriberWorker(Worker):
    """One subscribing connection per subscribing participant (``pids``) of each room; each
    stream is counted under the publisher the relay says its m-line carries. By default
    packets are counted at the socket (see SocketCounters); with ``nacking`` they take
    aiortc's receive path (SRTP, statistics, NACK generation) up to a ``tap_receiver`` tap,
    which costs the client core about 6× more."""

    def __init__(self, nacking: bool) -> None:
        self.nacking = nacking
        self.counters = SocketCounters()
        if not nacking:
            self.counters.install()
        self.rooms: list[SubscriberRoom] = []
        self.tasks = Tasks("subscriber")  # the taps' NACKs
        self.http: ClientSession | None = None

    async def op_setup(self, relay: str, rooms: list[str], pids: list[str]) -> dict[str, Any]:
        self.http = self.http or ClientSession(timeout=ClientTimeout(total=CALL_TIMEOUT_S))
        gate = asyncio.Semaphore(8)
        made = [SubscriberRoom(name) for name in rooms]
        self.rooms.extend(made)
        await asyncio.gather(
            *(self._subscribe(relay, room, pid, gate) for room in made for pid in pids)
        )
        return {}

    async def _subscribe(
        self, relay: str, room: SubscriberRoom, pid: str, gate: asyncio.Semaphore
    ) -> None:
        assert self.http is not None
        async with gate:
            offer = await post(self.http, f"{relay}/subscribe", room=room.name, pid=pid)
            publisher_of = {t["mid"]: t["participant_id"] for t in offer["tracks"]}
            pc = RTCPeerConnection(rtc_config())
            room.pcs.append(pc)
            if self.nacking:

                @pc.on("track")
                def tap(track: MediaStreamTrack) -> None:
                    transceiver = next(t for t in pc.getTransceivers() if t.receiver.track is track)
                    counter = StreamCounter(track.kind, pid, publisher_of[transceiver.mid])
                    room.streams.append(counter)
                    tap_receiver(transceiver.receiver, counter.add, tasks=self.tasks)
            else:
                for mid, kind, ssrc in offered_streams(offer["sdp"]):
                    counter = StreamCounter(kind, pid, publisher_of[mid])
                    self.counters.by_ssrc[ssrc] = counter
                    room.streams.append(counter)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await post(
                self.http, f"{relay}/answer", room=room.name, pid=pid, sdp=pc.localDescription.sdp
            )

    async def op_ready(self) -> dict[str, Any]:
        pcs = [pc for r in self.rooms for pc in r.pcs]
        return {"pcs": len(pcs), "connected": sum(pc.connectionState == "connected" for pc in pcs)}

    async def op_stats(self) -> dict[str, Any]:
        return {"rooms": {r.name: [s.summary() for s in r.streams] for r in self.rooms}}

    async def op_reset(self) -> dict[str, Any]:
        await asyncio.gather(
            *(pc.close() for r in self.rooms for pc in r.pcs), return_exceptions=True
        )
        self.rooms = []
        self.counters.by_ssrc.clear()
        return {}

    async def close(self) -> None:
        await self.op_reset()
        await self.tasks.close()
        if self.http is not None:
            await self.http.close()


def run_child(
    role: str,
    clip_path: str | None,
    use_uvloop: bool,
    cpu: int | None,
    nacking: bool,
    profile: bool,
) -> int:
    loopback_only()
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    if use_uvloop:
        try:
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            pass

    async def main() -> None:
        worker: Worker
        if role == "relay":
            worker = RelayWorker(profile)
        elif role == "mediarelay":
            worker = MediaRelayWorker()
        elif role == "publisher":
            assert clip_path is not None
            worker = PublisherWorker(clip_path)
        else:
            worker = SubscriberWorker(nacking)
        await serve_worker(worker)

    asyncio.run(main())
    return 0


# ----------------------------------------------------------------------------- orchestrator
def process_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process, all threads (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def runqueue_wait_s(pid: int) -> float:
    """Time the process's main thread was runnable but waiting for a CPU (``schedstat``)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[1]) / 1e9


def machine_busy_s() -> float:
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / CLK_TCK


def udp_rcvbuf_errors() -> int:
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")])


@dataclass
class Sample:
    """What ``/proc`` says at one instant about the relay, the clients and the machine."""

    wall: float
    relay_user: float
    relay_sys: float
    relay_wait: float
    publisher: float
    subscriber: float
    busy: float
    rcvbuf_errors: int

    @classmethod
    def take(cls, relay: int, publisher: int, subscriber: int) -> Sample:
        return cls(
            time.perf_counter(),
            *process_times(relay),
            runqueue_wait_s(relay),
            sum(process_times(publisher)),
            sum(process_times(subscriber)),
            machine_busy_s(),
            udp_rcvbuf_errors(),
        )


class Child:
    """A worker process (this file, ``--role``), reached over its JSON endpoint."""

    def __init__(self, role: str, http: ClientSession, extra: list[str], log_dir: str) -> None:
        self.role, self.http, self.extra = role, http, extra
        self.log_path = os.path.join(log_dir, f"{role}.log")
        self.proc: asyncio.subprocess.Process | None = None
        self.base = ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> None:
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--role",
                self.role,
                *self.extra,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        finally:
            os.close(log)
        assert self.proc.stdout is not None
        line = (await asyncio.wait_for(self.proc.stdout.readline(), 30)).decode()
        if not line.startswith("PORT "):
            raise RuntimeError(f"{self.role} did not start: {self.log_tail()}")
        self.base = f"http://127.0.0.1:{int(line.split()[1])}"

    async def call(self, op: str, **body: Any) -> dict[str, Any]:
        return await post(self.http, f"{self.base}/{op}", **body)

    def log_tail(self, lines: int = 15) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


@dataclass(frozen=True)
class Layout:
    """Who publishes and who subscribes in every room of a step, and through which relay."""

    mode: str  # "passthrough" or "mediarelay": one publisher, k subscribers; or "party"
    publishers: tuple[str, ...]
    subscribers: tuple[str, ...]

    @property
    def relay(self) -> str:
        return "mediarelay" if self.mode == "mediarelay" else "passthrough"

    @property
    def name(self) -> str:
        return f"{len(self.publishers)}-party" if self.mode == "party" else self.mode

    def feeds(self, subscriber: str) -> tuple[str, ...]:
        """Whose camera and microphone ``subscriber`` receives: everyone else's."""
        return tuple(p for p in self.publishers if p != subscriber)

    @property
    def subscriptions(self) -> int:
        """Per room; each is one publisher's video + audio to one subscriber."""
        return sum(len(self.feeds(s)) for s in self.subscribers)


def fan_out(mode: str, k: int) -> Layout:
    return Layout(mode, ("pub",), tuple(f"sub{i}" for i in range(k)))


def party(size: int) -> Layout:
    pids = tuple(f"p{i}" for i in range(size))
    return Layout("party", pids, pids)


@dataclass
class Plan:
    rooms: list[int]
    party_rooms: dict[int, list[int]]  # participants per room → room steps
    baseline_rooms: list[int]
    warmup_s: float
    measure_s: float
    budget_s: float  # no new passthrough step starts after this many seconds of them
    party_budget_s: float  # the same for each party size
    baseline_budget_s: float


# A 1:1 room forwards 2 × 205 packets/s, a 5-party room 20 × 205: the party steps pair a
# 5-party step of n rooms with a 1:1 step of 10 n rooms, at the same forwarded rate.
QUICK = Plan(
    rooms=[6, 16, 30],
    party_rooms={2: [10, 30], 5: [1, 3]},
    baseline_rooms=[1],
    warmup_s=1.0,
    measure_s=2.5,
    budget_s=40.0,
    party_budget_s=30.0,
    baseline_budget_s=30.0,
)
FULL = Plan(
    rooms=[1, 2, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64],
    party_rooms={2: [5, 10, 20, 30, 40, 50, 60], 5: [1, 2, 3, 4, 5, 6, 7, 8]},
    baseline_rooms=[1, 2, 3],
    warmup_s=1.5,
    measure_s=5.0,
    budget_s=210.0,
    party_budget_s=110.0,
    baseline_budget_s=50.0,
)
MODES = ("passthrough", "party", "mediarelay")
KINDS = ("video", "audio")


async def wait_ready(children: list[tuple[Child, int, int]]) -> None:
    """Poll until every child reports ``pcs`` connected (and ``outlets`` live, where given)."""
    deadline = time.perf_counter() + READY_TIMEOUT_S
    while True:
        states = [(c, await c.call("ready"), pcs, outlets) for c, pcs, outlets in children]
        if all(
            s["pcs"] == pcs
            and s["connected"] == pcs
            and (outlets < 0 or s.get("outlets") == outlets)
            for _, s, pcs, outlets in states
        ):
            return
        if time.perf_counter() > deadline:
            raise RuntimeError(
                "not connected in time: " + ", ".join(f"{c.role} {s}" for c, s, _, _ in states)
            )
        await asyncio.sleep(0.1)


async def run_step(
    layout: Layout, relay: Child, pub: Child, sub: Child, rooms: int, plan: Plan
) -> dict[str, Any]:
    """Every publication before any subscription, so that each subscription's first offer
    already carries everything it will receive."""
    names = [f"room{i}" for i in range(rooms)]
    publishers, subscribers = len(layout.publishers), len(layout.subscribers)
    began = time.perf_counter()
    try:
        await pub.call("setup", relay=relay.base, rooms=names, pids=list(layout.publishers))
        await sub.call("setup", relay=relay.base, rooms=names, pids=list(layout.subscribers))
        await wait_ready(
            [
                (relay, rooms * (publishers + subscribers), rooms * layout.subscriptions * 2),
                (pub, rooms * publishers, -1),
                (sub, rooms * subscribers, -1),
            ]
        )
        setup_s = time.perf_counter() - began
        await pub.call(
            "play",
            seconds=plan.warmup_s + plan.measure_s,
            any_phase=layout.relay == "passthrough",
        )
        await asyncio.sleep(plan.warmup_s)
        before = Sample.take(relay.pid, pub.pid, sub.pid)
        await relay.call("mark")
        await asyncio.sleep(plan.measure_s)
        window = await relay.call("window")
        after = Sample.take(relay.pid, pub.pid, sub.pid)
        sent = await pub.call("stats")
        await asyncio.sleep(DRAIN_S)
        got = await sub.call("stats")
    finally:
        for child in (sub, pub, relay):
            await child.call("reset")
    wall = after.wall - before.wall
    relay_user, relay_sys = after.relay_user - before.relay_user, after.relay_sys - before.relay_sys
    publisher_cpu = (after.publisher - before.publisher) / wall
    subscriber_cpu = (after.subscriber - before.subscriber) / wall
    other_cpu = (
        (after.busy - before.busy - relay_user - relay_sys) / wall - publisher_cpu - subscriber_cpu
    )
    relay_cpu = window["cpu_s"] / window["wall_s"]
    forwarded_pps = window["forwarded"] / window["wall_s"]
    routes = sorted(
        (room, subscriber, publisher, kind)
        for room in names
        for subscriber in layout.subscribers
        for publisher in layout.feeds(subscriber)
        for kind in KINDS
    )
    streams = [s for room in got["rooms"].values() for s in room]
    receiving = sorted(
        (room, s["subscriber"], s["publisher"], s["kind"])
        for room, counted in got["rooms"].items()
        for s in counted
        if s["received"]
    )
    video = [s for s in streams if s["kind"] == "video"]
    received = sum(s["received"] for s in streams)
    by_seq = sum(s["expected_by_seq"] for s in streams)
    if layout.relay == "passthrough":
        expected = sum(sent["sent"][room][publisher][kind] for room, _, publisher, kind in routes)
    else:
        expected = by_seq
    fps = [s["frames"] / (plan.warmup_s + plan.measure_s) for s in video]
    step: dict[str, Any] = {
        "relay": layout.relay,
        "mode": layout.mode,
        "rooms": rooms,
        "publishers_per_room": publishers,
        "subscribers_per_room": subscribers,
        "subscriptions": rooms * layout.subscriptions,
        "streams_receiving": len(receiving),
        "streams_expected": len(routes),
        "streams_as_routed": receiving == routes,
        "relay_cpu": round(relay_cpu, 3),
        "relay_cpu_proc": round((relay_user + relay_sys) / wall, 3),
        "relay_sys_share": round(relay_sys / (relay_user + relay_sys), 2)
        if relay_user + relay_sys
        else 0.0,
        "forwarded_pps": round(forwarded_pps),
        "pps_per_core": round(forwarded_pps / relay_cpu) if relay_cpu > 0 else 0,
        "us_per_packet": round(1e6 * relay_cpu / forwarded_pps, 1) if forwarded_pps else None,
        "subscriptions_per_core": round(rooms * layout.subscriptions / relay_cpu, 1)
        if relay_cpu > 0
        else 0.0,
        "loss_pct": round(max(0.0, 100 * (1 - received / expected)), 3) if expected else 100.0,
        "seq_loss_pct": round(100 * (1 - received / by_seq), 3) if by_seq else 100.0,
        "video_fps_min": round(min(fps), 1) if fps else 0.0,
        "publisher_cpu": round(publisher_cpu, 3),
        "subscriber_cpu": round(subscriber_cpu, 3),
        "other_cpu": round(max(0.0, other_cpu), 2),
        "relay_cpu_wait": round((after.relay_wait - before.relay_wait) / wall, 3),
        "udp_rcvbuf_errors": after.rcvbuf_errors - before.rcvbuf_errors,
        "publisher_lag_p95_ms": sent["lag_p95_ms"],
        "publisher_lag_max_ms": sent["lag_max_ms"],
        "setup_s": round(setup_s, 1),
    }
    for key in (
        "added_latency_p50_ms",
        "added_latency_p95_ms",
        "added_latency_max_ms",
        "tap_latency_p50_ms",
        "tap_latency_p95_ms",
        "gaps_recovered",
        "gaps_skipped",
        "profile",
    ):
        if key in window:
            step[key] = window[key]
    step["ok"] = (
        step["loss_pct"] <= LOSS_LIMIT_PCT
        and step["streams_as_routed"]
        and (layout.relay == "passthrough" or step["video_fps_min"] >= MIN_FPS_SHARE * FPS)
    )
    return step


def describe(step: dict[str, Any]) -> str:
    """Two lines: the figures, then what else was going on."""
    if step["mode"] == "party":
        rooms = f"{step['publishers_per_room']}-party {step['rooms']:>3} rooms"
    else:
        rooms = f"{step['relay']:>11} {step['rooms']:>3} rooms × {step['subscribers_per_room']}"
    head = (
        f"{rooms}: {step['forwarded_pps']} pps forwarded, relay CPU {step['relay_cpu']:.2f} "
        f"(/proc {step['relay_cpu_proc']:.2f}, {100 * step['relay_sys_share']:.0f} % kernel) "
        f"→ {step['pps_per_core']} pps/core ({step['us_per_packet']} µs/packet), "
        f"{step['subscriptions_per_core']} subs/core; loss {step['loss_pct']:.2f} %"
    )
    detail = [
        f"by seq {step['seq_loss_pct']:.2f} %",
        f"streams {step['streams_receiving']}/{step['streams_expected']}"
        + ("" if step["streams_as_routed"] else " NOT as routed"),
        f"min video {step['video_fps_min']} fps",
    ]
    if step.get("added_latency_p50_ms") is not None:
        head += (
            f"; added latency p50 {step['added_latency_p50_ms']:.2f} ms, "
            f"p95 {step['added_latency_p95_ms']:.2f} ms"
        )
        detail += [
            f"max {step['added_latency_max_ms']:.1f} ms",
            f"tap→sent p50 {step['tap_latency_p50_ms']:.3f} / p95 {step['tap_latency_p95_ms']:.3f} ms",
            f"gaps recovered/skipped {step['gaps_recovered']}/{step['gaps_skipped']}",
        ]
    detail += [
        f"relay waited for a CPU {100 * step['relay_cpu_wait']:.0f} % of the time",
        (
            f"CPU publisher {step['publisher_cpu']:.2f}, subscribers {step['subscriber_cpu']:.2f}, "
            f"other processes {step['other_cpu']:.2f}"
        ),
        f"UDP rcvbuf drops {step['udp_rcvbuf_errors']}",
        f"publisher lag p95 {step['publisher_lag_p95_ms']} ms",
        f"setup {step['setup_s']} s",
    ]
    return head + ("" if step["ok"] else "  [FAILED]") + "\n" + " " * 16 + "; ".join(detail)


def describe_profile(profile: dict[str, list[tuple[str, float]]]) -> str:
    lines = [" " * 16 + "relay CPU profile, % of samples (own time | including callees):"]
    for (own, own_pct), (incl, incl_pct) in zip(profile["own"], profile["inclusive"], strict=False):
        lines.append(" " * 18 + f"{own_pct:5.1f}  {own:<58.58} | {incl_pct:5.1f}  {incl}")
    return "\n".join(lines)


@dataclass
class Options:
    quick: bool
    plan: Plan
    modes: tuple[str, ...]
    subscribers: int
    uvloop: bool
    pin: bool
    nacking: bool
    profile: bool

    def cpu_args(self, cpu: int) -> list[str]:
        return ["--cpu", str(cpu)] if self.pin and (os.cpu_count() or 1) > cpu else []


async def run_relay(
    layout: Layout,
    rooms_plan: list[int],
    options: Options,
    pub: Child,
    sub: Child,
    http: ClientSession,
    log_dir: str,
    budget_s: float,
) -> list[dict[str, Any]]:
    """Steps through ``rooms_plan`` with a fresh relay process until one fails, saturates
    the relay, or ``budget_s`` is spent."""
    deadline = time.perf_counter() + budget_s
    args = options.cpu_args(0) + ([] if options.uvloop else ["--no-uvloop"])
    if options.profile:
        args.append("--profile")
    relay = Child("relay" if layout.relay == "passthrough" else "mediarelay", http, args, log_dir)
    steps: list[dict[str, Any]] = []
    try:
        await relay.start()
        info = await relay.call("info")
        print(f"{layout.name} relay: pid {info['pid']}, loop {info['loop']}", flush=True)
        for rooms in rooms_plan:
            if steps and time.perf_counter() > deadline:
                print(f"{layout.name}: time budget spent, no further steps", flush=True)
                break
            try:
                step = await run_step(layout, relay, pub, sub, rooms, options.plan)
            except (RuntimeError, OSError, ClientError) as exc:
                print(
                    f"{layout.name} {rooms} rooms: step failed: {exc!r}\n{relay.log_tail()}",
                    flush=True,
                )
                break
            steps.append(step)
            print(describe(step), flush=True)
            if "profile" in step:
                print(describe_profile(step["profile"]), flush=True)
            if not step["ok"] or step["relay_cpu"] >= CPU_LIMIT:
                print(f"{layout.name}: stopped, {stop_reason(step)}", flush=True)
                break
    finally:
        await relay.stop()
    return steps


async def run(options: Options) -> int:
    plan = options.plan
    started = time.perf_counter()
    clip = encode_clip()
    pinned = bool(options.cpu_args(1))
    k = options.subscribers
    shapes = [f"{m} rooms: 1 publisher, {k} subscribers" for m in options.modes if m != "party"]
    if "party" in options.modes:
        shapes.append(f"party rooms of {' and '.join(map(str, plan.party_rooms))} participants")
    print(
        f"clip: {len(clip.video)} frames 640×480 VP8, {clip.video_bitrate / 1e6:.2f} Mbit/s, "
        f"{clip.video_pps:.0f} video packets/s + {1 / AUDIO_PTIME_S:.0f} Opus packets/s (audio included), "
        f"encoded in {time.perf_counter() - started:.1f} s; {'; '.join(shapes)}; counted "
        f"{'after aiortc receive path (NACKs on)' if options.nacking else 'at the socket (no NACKs)'}; "
        f"machine {os.cpu_count()} cores, {'relay pinned to CPU 0, clients to CPU 1' if pinned else 'no CPU pinning'}, "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as log_dir:
        clip_path = os.path.join(log_dir, "clip.pickle")
        Path(clip_path).write_bytes(pickle.dumps((clip.video, clip.audio)))
        async with ClientSession(timeout=ClientTimeout(total=CALL_TIMEOUT_S)) as http:
            pub = Child("publisher", http, ["--clip", clip_path, *options.cpu_args(1)], log_dir)
            sub = Child(
                "subscriber",
                http,
                [*options.cpu_args(1), *(["--nacking"] if options.nacking else [])],
                log_dir,
            )
            steps: list[dict[str, Any]] = []
            party_steps: list[dict[str, Any]] = []
            baseline: list[dict[str, Any]] = []

            async def steps_of(
                layout: Layout, rooms: list[int], budget_s: float
            ) -> list[dict[str, Any]]:
                return await run_relay(layout, rooms, options, pub, sub, http, log_dir, budget_s)

            try:
                await asyncio.gather(pub.start(), sub.start())
                if "passthrough" in options.modes:
                    steps = await steps_of(fan_out("passthrough", k), plan.rooms, plan.budget_s)
                if "party" in options.modes:
                    for size, rooms_plan in plan.party_rooms.items():
                        party_steps += await steps_of(party(size), rooms_plan, plan.party_budget_s)
                if "mediarelay" in options.modes:
                    baseline = await steps_of(
                        fan_out("mediarelay", k), plan.baseline_rooms, plan.baseline_budget_s
                    )
            finally:
                await asyncio.gather(pub.stop(), sub.stop())
    return report(
        steps, party_steps, baseline, options.modes, options.quick, time.perf_counter() - started
    )


def stop_reason(step: dict[str, Any]) -> str:
    if step["ok"]:
        return f"relay CPU {step['relay_cpu']:.2f} ≥ {CPU_LIMIT}"
    reasons = []
    if step["loss_pct"] > LOSS_LIMIT_PCT:
        reasons.append(f"loss {step['loss_pct']:.2f} % > {LOSS_LIMIT_PCT} %")
    if not step["streams_as_routed"]:
        reasons.append(
            f"{step['streams_receiving']}/{step['streams_expected']} streams received, "
            "not each subscriber receiving each other publisher's video and audio once"
        )
    if step["video_fps_min"] < MIN_FPS_SHARE * FPS:
        reasons.append(f"video down to {step['video_fps_min']} fps")
    busy = step["relay_cpu"] + step["publisher_cpu"] + step["subscriber_cpu"] + step["other_cpu"]
    if step["relay_cpu"] < CPU_LIMIT and busy > 0.9 * (os.cpu_count() or 1):
        reasons.append(
            f"with the relay at {step['relay_cpu']:.2f} core but the machine at {busy:.2f} of "
            f"{os.cpu_count()} cores: the clients or other load ran out of CPU first"
        )
    return "; ".join(reasons)


def disturbed(step: dict[str, Any]) -> bool:
    """Other load on the machine took CPU the relay wanted during the step."""
    return bool(step["relay_cpu_wait"] > NOISY_WAIT or step["other_cpu"] > NOISY_OTHER_CPU)


def preferred(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps within 1 % loss, only the undisturbed ones if there is one."""
    good = [s for s in steps if s["ok"]]
    return [s for s in good if not disturbed(s)] or good


def best_step(steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The preferred step with the most forwarded packets per relay core, that is the fewest
    relay CPU µs per forwarded packet."""
    candidates = preferred(steps)
    return max(candidates, key=lambda s: s["pps_per_core"]) if candidates else None


def print_caution(step: dict[str, Any]) -> None:
    print(
        f"caution: other processes used {step['other_cpu']:.2f} core during that step and the "
        f"relay waited for a CPU {100 * step['relay_cpu_wait']:.0f} % of the time; a busy "
        "machine inflates latency, and packets queued while the relay waits are then handled "
        "in bigger batches, which flatters pps_per_core",
        flush=True,
    )


def report_passthrough(steps: list[dict[str, Any]], best: dict[str, Any] | None) -> None:
    if best:
        print(
            f"best {'undisturbed ' if not disturbed(best) else ''}passthrough step: "
            f"{best['rooms']} rooms × {best['subscribers_per_room']} "
            f"(relay CPU {best['relay_cpu']:.2f}): {best['pps_per_core']} forwarded packets/s per relay core, "
            f"{best['subscriptions_per_core']} VGA video (+ audio) subscriptions per core at {best['loss_pct']} % loss; "
            f"added latency p50 {best['added_latency_p50_ms']} ms, p95 {best['added_latency_p95_ms']} ms",
            flush=True,
        )
        if disturbed(best):
            print_caution(best)
    else:
        print("no passthrough step stayed within 1 % loss", flush=True)


def latency_target_step(steps: list[dict[str, Any]], best: dict[str, Any] | None) -> dict[str, Any]:
    """The busiest preferred passthrough step whose added latency p95 stayed within target."""
    within = [s for s in preferred(steps) if (s["added_latency_p95_ms"] or 0) <= LATENCY_TARGET_MS]
    latency_step = max(within, key=lambda s: s["forwarded_pps"]) if within else None
    if latency_step is not None and latency_step is not best:
        print(
            f"busiest step within p95 ≤ {LATENCY_TARGET_MS} ms: {latency_step['rooms']} rooms × "
            f"{latency_step['subscribers_per_room']} (relay CPU {latency_step['relay_cpu']:.2f}): "
            f"{latency_step['pps_per_core']} pps/core, "
            f"{latency_step['subscriptions_per_core']} subscriptions/core, "
            f"added latency p95 {latency_step['added_latency_p95_ms']} ms",
            flush=True,
        )
    if latency_step is None:
        return {}
    return {
        "latency_target_step": {
            key: latency_step[key]
            for key in ("rooms", "relay_cpu", "pps_per_core", "subscriptions_per_core")
        }
        | {"added_latency_p95_ms": latency_step["added_latency_p95_ms"]}
    }


def party_figures(one: dict[str, Any] | None, five: dict[str, Any] | None) -> dict[str, Any]:
    """From the best 1:1 and the best 5-party step."""
    return {
        "five_party_rooms_per_core": round(five["rooms"] / five["relay_cpu"], 2) if five else None,
        "five_party_us_per_packet": five["us_per_packet"] if five else None,
        "one_to_one_us_per_packet": one["us_per_packet"] if one else None,
        "five_party_vs_one_to_one_cpu_per_packet": round(
            five["us_per_packet"] / one["us_per_packet"], 2
        )
        if one and five
        else None,
        "five_party_loss_pct": five["loss_pct"] if five else None,
        "five_party_added_latency_p95_ms": five["added_latency_p95_ms"] if five else None,
    }


def report_party(one: dict[str, Any] | None, five: dict[str, Any] | None) -> None:
    for name, step in (("1:1", one), ("5-party", five)):
        if step is None:
            print(f"no {name} step stayed within 1 % loss", flush=True)
            continue
        print(
            f"best {'undisturbed ' if not disturbed(step) else ''}{name} step: {step['rooms']} rooms "
            f"(relay CPU {step['relay_cpu']:.2f}): {step['forwarded_pps']} packets/s forwarded, "
            f"{step['us_per_packet']} µs relay CPU per forwarded packet, "
            f"{step['rooms'] / step['relay_cpu']:.1f} rooms per relay core at {step['loss_pct']} % loss; "
            f"added latency p50 {step['added_latency_p50_ms']} ms, p95 {step['added_latency_p95_ms']} ms",
            flush=True,
        )
        if disturbed(step):
            print_caution(step)
    if one and five:
        print(
            f"5-party vs 1:1: relay CPU per forwarded packet × "
            f"{party_figures(one, five)['five_party_vs_one_to_one_cpu_per_packet']} "
            f"({five['us_per_packet']} vs {one['us_per_packet']} µs, at {five['forwarded_pps']} "
            f"vs {one['forwarded_pps']} packets/s forwarded)",
            flush=True,
        )


def report(
    steps: list[dict[str, Any]],
    party_steps: list[dict[str, Any]],
    baseline: list[dict[str, Any]],
    modes: tuple[str, ...],
    quick: bool,
    elapsed: float,
) -> int:
    best = best_step(steps)
    good_base = [s for s in baseline if s["ok"]]
    best_base = max(good_base, key=lambda s: s["subscriptions_per_core"]) if good_base else None
    subs = best["subscriptions_per_core"] if best else None
    base = best_base["subscriptions_per_core"] if best_base else None
    figures: dict[str, Any] = {
        "pps_per_core": best["pps_per_core"] if best else None,
        "subscriptions_per_core": subs,
        "loss_pct": best["loss_pct"] if best else None,
        "added_latency_p50_ms": best["added_latency_p50_ms"] if best else None,
        "added_latency_p95_ms": best["added_latency_p95_ms"] if best else None,
        "mediarelay_subscriptions_per_core": base,
        "ratio_vs_mediarelay": round(subs / base, 1) if subs and base else None,
    }
    if "passthrough" in modes:
        report_passthrough(steps, best)
        figures |= latency_target_step(steps, best)
    one, five = (
        best_step([s for s in party_steps if s["publishers_per_room"] == size]) for size in (2, 5)
    )
    figures |= party_figures(one, five)
    if "party" in modes:
        report_party(one, five)
    if "mediarelay" in modes:
        print(
            f"MediaRelay baseline: {base} subscriptions per core"
            if base
            else "MediaRelay baseline: no usable step",
            flush=True,
        )
    for name, op, target, needs in TARGETS:
        if not set(needs) <= set(modes):
            continue
        value = figures[name]
        met = value is not None and (value >= target if op == ">=" else value <= target)
        print(
            f"target {name} {'≥' if op == '>=' else '≤'} {target}: {value} — {'met' if met else 'NOT met'}",
            flush=True,
        )
    print(f"finished in {elapsed:.0f} s", flush=True)
    print(
        json.dumps(
            {**figures, "steps": steps + baseline, "party_steps": party_steps, "quick": quick}
        ),
        flush=True,
    )
    complete = {"passthrough": best, "party": one and five, "mediarelay": best_base}
    return 0 if all(complete[mode] for mode in modes) else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Media relay benchmark (see the module docstring)."
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer, shorter steps (three passthrough, two per party size, one baseline): "
        "about a minute",
    )
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help="comma-separated, of passthrough (1 publisher, k subscribers per room), party "
        "(1:1 and 5-party rooms: everyone publishes, everyone receives everyone else) and "
        "mediarelay (the baseline); default all",
    )
    parser.add_argument(
        "--subscribers",
        type=int,
        default=2,
        help="subscribers per passthrough and mediarelay room (default 2)",
    )
    parser.add_argument(
        "--no-uvloop", action="store_true", help="run the relay on the default asyncio loop"
    )
    parser.add_argument(
        "--pin", action="store_true", help="pin the relay to CPU 0 and the clients to CPU 1"
    )
    parser.add_argument(
        "--nacking",
        action="store_true",
        help="subscribers receive through aiortc (SRTP, NACKs): realistic, but ~6x the client CPU",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the relay's CPU time by Python function in each step's window (SIGPROF)",
    )
    parser.add_argument(
        "--rooms",
        help="comma-separated passthrough room counts to step through instead of the default "
        "plan, e.g. 24",
    )
    parser.add_argument(
        "--seconds", type=float, help="length of each step's measured window (default 5, quick 2.5)"
    )
    parser.add_argument(
        "--role", choices=("relay", "mediarelay", "publisher", "subscriber"), help=argparse.SUPPRESS
    )
    parser.add_argument("--clip", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        return run_child(
            args.role,
            args.clip,
            use_uvloop=not args.no_uvloop,
            cpu=args.cpu,
            nacking=args.nacking,
            profile=args.profile,
        )
    if args.subscribers < 1:
        parser.error("--subscribers must be at least 1")
    modes = tuple(m for m in MODES if m in args.modes.split(","))
    if not modes or set(args.modes.split(",")) - set(MODES):
        parser.error(f"--modes takes a comma-separated choice of {', '.join(MODES)}")
    plan = QUICK if args.quick else FULL
    if args.rooms:
        try:
            rooms = [int(n) for n in args.rooms.split(",")]
        except ValueError:
            parser.error("--rooms takes comma-separated integers")
        plan = dataclasses.replace(plan, rooms=rooms, budget_s=float("inf"))
    if args.seconds:
        plan = dataclasses.replace(plan, measure_s=args.seconds)
    return asyncio.run(
        run(
            Options(
                quick=args.quick,
                plan=plan,
                modes=modes,
                subscribers=args.subscribers,
                uvloop=not args.no_uvloop,
                pin=args.pin,
                nacking=args.nacking,
                profile=args.profile,
            )
        )
    )


if __name__ == "__main__":
    sys.exit(main())
