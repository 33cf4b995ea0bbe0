"""Rooms of peer connections: one publishing and one subscribing RTCPeerConnection per
participant (the publisher offers, the relay answers; for subscriptions the relay offers,
because aiortc is reliable as the offerer and can then add tracks as they come).

The relay knows rooms and participants by opaque ids; it does not know tickets, users or
the socket. It reaches clients only through a ``RelaySink``.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription, candidate_from_sdp

from signaling.relay import feedback
from signaling.relay.ice import MediaNetwork, gather_on, peer_connection
from signaling.relay.keyframes import detector
from signaling.relay.passthrough import (
    PacketSender,
    accept_simulcast,
    arrivals,
    fast_receive,
    ntp_now,
    request_keyframe,
    request_repair,
    route_by_mid,
    send_remb,
    tap_receiver,
)
from signaling.relay.sdp import accept_layers, opus_resilient, simulcast_offers
from signaling.relay.traffic import Traffic
from signaling.tasks import Tasks

log = logging.getLogger("yunbang.relay")
SOURCES = ("camera", "microphone", "screen", "side_camera", "side_microphone")
SIDE_SOURCES = ("side_camera", "side_microphone")
LAYERED_SOURCES = ("camera", "side_camera")  # a screen share keeps its resolution: one layer  # the consultation side room's own tracks
KEYFRAME_INTERVAL_S = 0.5
MAX_HELD = 256
LAYER_IDLE_S = 1.5  # a layer with no packet for this long is not being sent
STILL_SENDING_S = 0.5  # a layer measured over an interval must still be arriving at its end
STALL_ROUNDS = 3  # feedback rounds (1 s each) a layer's standing still is judged over
H264_PROFILES = ("42001f", "42e01f")


class RelayError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class RelaySink(Protocol):
    async def subscribe_offer(self, room_id: str, participant_id: str, sdp: str, tracks: list[dict[str, Any]]) -> None: ...

    async def peer_state(self, room_id: str, participant_id: str, which: str, state: str) -> None: ...

    async def video_paused(self, room_id: str, participant_id: str, track_id: str, paused: bool) -> None: ...

    async def publish_layers(self, room_id: str, participant_id: str, source: str, active: list[str]) -> None: ...


def _capabilities(kind: str) -> list[RTCRtpCodecCapability]:
    """What publishers may send: VP8 first, H.264 constrained baseline, RTX; Opus for audio."""
    caps = RTCRtpSender.getCapabilities(kind).codecs
    if kind == "audio":
        return [c for c in caps if c.mimeType.lower() == "audio/opus"]
    vp8 = [c for c in caps if c.mimeType.lower() == "video/vp8"]
    h264 = [
        c for c in caps
        if c.mimeType.lower() == "video/h264" and c.parameters.get("profile-level-id") in H264_PROFILES
        and c.parameters.get("packetization-mode") == "1"
    ]
    rtx = [c for c in caps if c.mimeType.lower() == "video/rtx"]
    return vp8 + h264 + rtx


def _matching(kind: str, codec: RTCRtpCodecParameters) -> list[RTCRtpCodecCapability]:
    """The capability equal to a publisher's codec (plus RTX): what its subscribers must use."""
    caps = RTCRtpSender.getCapabilities(kind).codecs
    same = [c for c in caps if c.mimeType.lower() == codec.mimeType.lower() and c.parameters == codec.parameters]
    if not same:
        raise RelayError("codec_unsupported", f"无法转发编码 {codec.mimeType}")
    return same + [c for c in caps if c.mimeType.lower() == "video/rtx"]


class _Placeholder(MediaStreamTrack):
    """A sender needs a track to be negotiated; packets come from the relay, never from here."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    async def recv(self) -> Any:
        raise RuntimeError("the relay never pulls frames")


class Stream:
    """One RTP stream of a source (a simulcast layer, or the only stream), forwarded in
    sequence order.

    A gap waits up to the source's ``gap_wait`` (from the round trip to the publisher,
    ``feedback.gap_wait``) for the relay's NACK to bring the packet back; if it does not come,
    the relay asks the publisher for a keyframe, drops what it held, and resumes at that
    keyframe with the numbering shifted so subscribers see no hole. Their jitter buffers never
    stall on a packet that will not come (aiortc's freezes for seconds on one), and the
    picture is back within a keyframe's trip.
    """

    def __init__(self, source: Source, index: int, rid: str | None, key: int) -> None:
        self.source = source
        self.index = index
        self.rid = rid
        self.key = key  # a subscriber's numbering is rebased whenever the key it gets changes
        self.media_ssrc: int | None = None
        self.packets = 0
        self.octets = 0
        self.rate_bps: int | None = None  # measured over whole feedback intervals it was sent in
        self.rate_at = 0.0
        self.live_since = 0.0
        self.asked_at: float | None = time.monotonic()  # since when the publisher is asked to send it
        self._octets_mark = 0
        self.last_packet_at = 0.0
        self.gaps_recovered = 0
        self.gaps_skipped = 0
        # counters for /metrics (signaling/relay/traffic.py): packets not forwarded, and why
        self.dropped_waiting = 0  # while waiting for a keyframe
        self.dropped_skipped = 0  # held behind a gap that was given up
        self.dropped_late = 0  # older than what was already forwarded or skipped
        self.keyframe_waits = 0
        self.keyframes_requested = 0
        self._expected: int | None = None
        self._shift = 0
        self._held: dict[int, RtpPacket] = {}
        self._gap_timer: asyncio.TimerHandle | None = None
        self._renack_timer: asyncio.TimerHandle | None = None
        self._renacks = 0  # NACKs of our own for the gap held now
        self._keyframe_timer: asyncio.TimerHandle | None = None
        self._last_keyframe_request = 0.0
        self._awaiting_keyframe = False
        self._awaiting_since = 0.0
        # seconds this stream stood still (a gap given up, then the wait for a keyframe), and the
        # share of each of the last feedback rounds it did (`stalled`)
        self._stalled_s = 0.0
        self._stalled_mark = (0.0, 0.0)
        self._stalled_shares: collections.deque[float] = collections.deque(maxlen=STALL_ROUNDS)

    def on_packet(self, packet: RtpPacket) -> None:
        if packet.ssrc != self.media_ssrc:
            if self.media_ssrc is not None and self.source.layered:
                self.reset()  # the publisher restarted this layer under a new SSRC
            self.media_ssrc = packet.ssrc
        self.packets += 1
        self.octets += len(packet.payload)
        now = time.monotonic()
        if now - self.last_packet_at >= LAYER_IDLE_S:
            self.live_since = now  # (re)started: a rate measured over a part of an interval is not its rate
        self.last_packet_at = now
        if self.source.kind != "video":
            self.source.emit(self, packet)
            return
        if self._awaiting_keyframe:
            if not self.source.is_keyframe(packet.payload):
                # the request, or the keyframe, may be lost on a bad line: ask again every two
                # round trips until it comes (never wait for a subscriber's own PLI)
                if now - self._last_keyframe_request >= max(KEYFRAME_INTERVAL_S, 2 * (self.source.rtt or 0.0)):
                    self.request_keyframe()
                self.dropped_waiting += 1
                return
            self._awaiting_keyframe = False
            self._stalled_s += now - self._awaiting_since
            log.debug("%s %s: keyframe in after %.1f s", self.source.track_id, self.rid, now - self._awaiting_since)
            if self._expected is not None:
                self._shift = (self._shift + (packet.sequence_number - self._expected)) & 0xFFFF
            self._expected = packet.sequence_number
        if self._expected is None:
            self._expected = packet.sequence_number
        ahead = (packet.sequence_number - self._expected) & 0xFFFF
        if ahead == 0:
            self._send(packet)
            self._expected = (self._expected + 1) & 0xFFFF
            if self._held:
                self._flush()
        elif ahead < 0x8000:
            self._held[packet.sequence_number] = packet
            if self._gap_timer is None:
                self._start_gap_wait()
            if len(self._held) > MAX_HELD:
                self._give_up()
        else:  # older than what was already forwarded or skipped: a late duplicate
            self.dropped_late += 1

    def _send(self, packet: RtpPacket) -> None:
        if self._shift:
            packet.sequence_number = (packet.sequence_number - self._shift) & 0xFFFF
        self.source.emit(self, packet)

    def _flush(self) -> None:
        while self._expected in self._held:
            self._send(self._held.pop(self._expected))
            self._expected = (self._expected + 1) & 0xFFFF
        if self._gap_timer is not None and not self._held:
            self._gap_timer.cancel()
            self._gap_timer = None
            self.gaps_recovered += 1
            if self._renack_timer is not None:
                self._renack_timer.cancel()
                self._renack_timer = None
        elif self._held and self._gap_timer is None:
            self._start_gap_wait()

    def _start_gap_wait(self) -> None:
        """A gap: wait for the repair (aiortc has sent the NACK), ask again each round trip it
        has not come (the NACK or the retransmission may be lost too), give up at ``gap_wait``."""
        loop = asyncio.get_running_loop()
        self._gap_timer = loop.call_later(self.source.gap_wait, self._give_up)
        self._renacks = 0
        self._schedule_renack()

    def _schedule_renack(self) -> None:
        if self._renack_timer is not None:
            self._renack_timer.cancel()
            self._renack_timer = None
        if self._renacks < feedback.REPAIR_ROUNDS - 1:
            loop = asyncio.get_running_loop()
            self._renack_timer = loop.call_later(feedback.renack_after(self.source.rtt), self._ask_again)

    def _ask_again(self) -> None:
        self._renack_timer = None
        if not self._held or self._expected is None or self.media_ssrc is None or self._gap_timer is None:
            return
        self._renacks += 1
        self._schedule_renack()
        newest = max((seq - self._expected) & 0xFFFF for seq in self._held)
        missing = [(self._expected + i) & 0xFFFF for i in range(min(newest, MAX_HELD))
                   if (self._expected + i) & 0xFFFF not in self._held]
        self.source.nacks_sent += 1
        self.source.tasks.spawn(request_repair(self.source.receiver, self.media_ssrc, missing), name="repair request")

    def _give_up(self) -> None:
        """The missing packet is not coming: resume at the next keyframe, shifted to close the gap."""
        if self._gap_timer is not None:
            self._gap_timer.cancel()
            self._gap_timer = None
        if self._renack_timer is not None:
            self._renack_timer.cancel()
            self._renack_timer = None
        if not self._held or self._expected is None:
            return
        self.gaps_skipped += 1
        expected = self._expected
        held = sorted(self._held.values(), key=lambda p: (p.sequence_number - expected) & 0xFFFF)
        self._held.clear()
        start = next((i for i, p in enumerate(held) if self.source.is_keyframe(p.payload)), None)
        self.dropped_skipped += len(held) if start is None else start
        if start is None:
            self.keyframe_waits += 1
            if not self._awaiting_keyframe:  # the picture stopped where the gap began
                self._awaiting_since = time.monotonic() - self.source.gap_wait
            log.debug("%s %s: gap of %s given up after %.2f s, %d held; waiting for a keyframe", self.source.track_id,
                     self.rid, self._expected, self.source.gap_wait, len(held))
            self._awaiting_keyframe = True
            self._last_keyframe_request = 0.0
            self.request_keyframe()
            return
        keyframe_seq = held[start].sequence_number
        self._shift = (self._shift + (keyframe_seq - expected)) & 0xFFFF
        self._expected = keyframe_seq
        self._held = {p.sequence_number: p for p in held[start:]}
        self._flush()

    def measure(self, now: float) -> None:
        """This stream's rate, smoothed over the feedback intervals it was sent throughout (a layer
        turned off or on within an interval keeps its last rate: a part of one says nothing)."""
        if self.rate_at and now - self.last_packet_at < STILL_SENDING_S and self.live_since <= self.rate_at:
            rate = int((self.octets - self._octets_mark) * 8 / max(now - self.rate_at, 1e-3))
            self.rate_bps = rate if self.rate_bps is None else (self.rate_bps + rate) // 2
        self.rate_at, self._octets_mark = now, self.octets
        stalled = self._stalled_s + (now - self._awaiting_since if self._awaiting_keyframe else 0.0)
        mark, at = self._stalled_mark
        if at and self.live(now):
            self._stalled_shares.append(min(1.0, (stalled - mark) / max(now - at, 1e-3)))
        elif not self.live(now):
            self._stalled_shares.clear()
        self._stalled_mark = (stalled, now)

    def live(self, now: float) -> bool:
        return now - self.last_packet_at < LAYER_IDLE_S

    def stalled(self, now: float) -> bool:
        """Arriving, yet standing still for most of the last feedback rounds (a gap given up,
        then a keyframe that does not get through whole, again and again)."""
        return (self.live(now) and len(self._stalled_shares) == STALL_ROUNDS
                and sum(self._stalled_shares) / STALL_ROUNDS >= feedback.LAYER_STALLED_SHARE)

    def starved(self, now: float) -> bool:
        """Waiting for a keyframe now, or standing still for most of the last rounds: what its
        subscribers receive of it is little or nothing, whatever their links."""
        return self._awaiting_keyframe or self.stalled(now)

    def absent(self, now: float) -> bool:
        """Asked for a while and never sent: the publisher cannot send this layer (a browser sends
        fewer layers from a small camera: two of three from VGA)."""
        return self.packets == 0 and self.asked_at is not None and now - self.asked_at >= feedback.LAYER_ABSENT_S

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe, at most one per ``KEYFRAME_INTERVAL_S``: a request
        within the interval is deferred to its end, never dropped (a subscriber that joins just
        after another would otherwise wait for a keyframe nobody asked for)."""
        if self.source.kind != "video" or self.media_ssrc is None:
            return
        wait = self._last_keyframe_request + KEYFRAME_INTERVAL_S - time.monotonic()
        if wait > 0:
            if self._keyframe_timer is None:
                self._keyframe_timer = asyncio.get_running_loop().call_later(wait, self._deferred_keyframe)
            return
        self._last_keyframe_request = time.monotonic()
        self.keyframes_requested += 1
        self.source.tasks.spawn(request_keyframe(self.source.receiver, self.media_ssrc), name="keyframe request")

    def _deferred_keyframe(self) -> None:
        self._keyframe_timer = None
        self.request_keyframe()

    def reset(self) -> None:
        self.close()
        self._expected = None
        self._shift = 0
        if self._awaiting_keyframe:
            self._stalled_s += time.monotonic() - self._awaiting_since
        self._awaiting_keyframe = False

    def close(self) -> None:
        if self._gap_timer is not None:
            self._gap_timer.cancel()
            self._gap_timer = None
        if self._renack_timer is not None:
            self._renack_timer.cancel()
            self._renack_timer = None
        if self._keyframe_timer is not None:
            self._keyframe_timer.cancel()
            self._keyframe_timer = None
        self._held.clear()


@dataclass
class Source:
    """A track one participant publishes, forwarded to every outlet subscribed to it.

    A camera may come in simulcast layers (``rids``, lowest first): each layer is a `Stream`,
    and each outlet gets one layer at a time, chosen for its subscriber's link
    (``feedback.choose_layer``) and switched only at a keyframe of the new layer, with the
    subscriber's numbering rebased so it sees one continuous stream.
    """

    track_id: str
    participant_id: str
    kind: str
    source: str
    codec: RTCRtpCodecParameters
    receiver: RTCRtpReceiver
    key: int
    tasks: Tasks  # the relay's: its requests to the publisher (keyframes, repairs) run there
    rids: tuple[str, ...] = ()
    outlets: list[Outlet] = field(default_factory=list)
    muted: bool = False
    private: bool = False  # forwarded only to participants with backstage access
    gap_wait: float = feedback.gap_wait(None)
    rtt: float | None = None  # the round trip to the publisher (measured on its own subscribing connection)
    uplink_bps: int | None = None  # what the publisher's uplink carries, estimated from arrivals
    target_bps: int | None = None  # what the publisher was last told to send for this source
    active_rids: tuple[str, ...] = ()  # the layers the publisher was last asked to send
    active_at: float = 0.0
    uplink_cap: feedback.UplinkCap = field(default_factory=feedback.UplinkCap)  # layers its uplink carries
    uplink_low_since: float = 0.0  # since when its uplink's estimate has been under what arrives
    uplink_gaps_mark: int = 0  # gaps in its packets (repaired or not) when that began
    uplink_losses: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=2))
    loss_cap_bps: int | None = None  # what its uplink's loss allows (feedback.uplink_loss_cap)
    loss_cap_at: float = 0.0  # when that was last cut
    _arrivals_mark: tuple[int, int] = (0, 0)
    nacks_sent: int = 0  # NACKs the relay sent its publisher (signaling/relay/traffic.py)
    streams: list[Stream] = field(default_factory=list)
    _by_ssrc: dict[int, Stream] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.is_keyframe = detector(self.codec.mimeType)
        if not self.streams:
            names: tuple[str | None, ...] = self.rids or (None,)
            self.streams = [Stream(self, i, rid, self.key * 8 + i) for i, rid in enumerate(names)]
        self._by_rid = {s.rid: s for s in self.streams if s.rid is not None}

    @property
    def layered(self) -> bool:
        return len(self.streams) > 1

    @property
    def media_ssrc(self) -> int | None:
        """The SSRC of the highest stream seen (what a REMB to the publisher names)."""
        return next((s.media_ssrc for s in reversed(self.streams) if s.media_ssrc is not None), None)

    @property
    def ssrcs(self) -> list[int]:
        return [s.media_ssrc for s in self.streams if s.media_ssrc is not None]

    @property
    def packets(self) -> int:
        return sum(s.packets for s in self.streams)

    @property
    def gaps_recovered(self) -> int:
        return sum(s.gaps_recovered for s in self.streams)

    @property
    def gaps_skipped(self) -> int:
        return sum(s.gaps_skipped for s in self.streams)

    def on_packet(self, packet: RtpPacket) -> None:
        """Called for every packet the publisher sends, synchronously, from the receive path."""
        stream = self._by_ssrc.get(packet.ssrc)
        if stream is None:
            if not self.layered:
                stream = self.streams[0]
            else:
                stream = self._by_rid.get(packet.extensions.rtp_stream_id or "")
                if stream is None:
                    return  # a layer's first packets carry its RID; without one it cannot be placed
            self._by_ssrc[packet.ssrc] = stream
        stream.on_packet(packet)

    def emit(self, stream: Stream, packet: RtpPacket) -> None:
        """A packet of ``stream`` in order: to every outlet on that layer, and to those waiting
        to switch to it once its keyframe starts."""
        ntp = ntp_now()
        index = stream.index
        keyframe: bool | None = None
        for outlet in self.outlets:
            if outlet.paused:
                continue
            if outlet.layer != index:
                if self.layered:
                    if outlet.want != index:
                        if outlet.layer is not None or self.stream(outlet.want).live(time.monotonic()):
                            continue
                        outlet.want = index  # not started, and the layer chosen is not being sent: start here
                    elif outlet.layer is not None:  # a switch: only where the new layer's keyframe starts
                        if keyframe is None:
                            keyframe = self.is_keyframe(packet.payload)
                        if not keyframe:
                            continue
                    outlet.want_at = time.monotonic()  # its time on the layer starts now
                    log.info("%s: a subscriber moves from layer %s to %s", self.track_id,
                             None if outlet.layer is None else self.rids[outlet.layer], self.rids[index])
                outlet.layer = index
            outlet.sender.forward(packet, stream.key, ntp)

    def nack_sent(self) -> None:
        self.nacks_sent += 1

    def on_estimate(self, bitrate: int) -> None:
        self.uplink_bps = bitrate

    def note_uplink(self, now: float) -> None:
        """Once a feedback round: whether the uplink's estimate is under what arrives."""
        arriving = sum(s.rate_bps or 0 for s in self.streams)
        if self.uplink_bps is None or arriving <= 0 or self.uplink_bps >= arriving * feedback.UPLINK_CONGESTED:
            self.uplink_low_since = 0.0
        elif not self.uplink_low_since:
            self.uplink_low_since, self.uplink_gaps_mark = now, self.gaps_recovered + self.gaps_skipped

    def note_loss(self, now: float) -> None:
        """Once a feedback round: the share of first transmissions its uplink lost since the last
        round, and the ceiling that loss sets (`feedback.uplink_loss_cap`)."""
        expected, received = arrivals(self.receiver, self.ssrcs)
        before = self._arrivals_mark
        self._arrivals_mark = (expected, received)
        if expected - before[0] < feedback.UPLINK_LOSS_MIN_PACKETS or expected < before[0]:
            self.uplink_losses.clear()  # too little sent (or a layer restarted): no figure
            return
        lost = (expected - before[0]) - (received - before[1])
        self.uplink_losses.append(max(0.0, lost / (expected - before[0])))
        cap = feedback.uplink_loss_cap(self.loss_cap_bps, list(self.uplink_losses),
                                       sum(s.rate_bps or 0 for s in self.streams if s.live(now)), now - self.loss_cap_at)
        if cap is not None and (self.loss_cap_bps is None or cap < self.loss_cap_bps):
            self.loss_cap_at = now
            log.info("%s: its uplink lost %.0f %% of the last round: sends at most %d bit/s", self.track_id,
                     100 * self.uplink_losses[-1], cap)
        self.loss_cap_bps = cap

    def uplink_congested(self, now: float) -> bool:
        """The uplink is congested: its estimate has stayed under what arrives for
        ``UPLINK_HOLD_S`` and packets were lost on it meanwhile. A delay-based estimate alone is
        not enough: a busy relay reads its own late reads as queueing on the link."""
        return (bool(self.uplink_low_since) and now - self.uplink_low_since >= feedback.UPLINK_HOLD_S
                and self.gaps_recovered + self.gaps_skipped > self.uplink_gaps_mark)

    def close(self) -> None:
        for stream in self.streams:
            stream.close()
        self.outlets = []

    def stream(self, index: int | None) -> Stream:
        return self.streams[index if index is not None and index < len(self.streams) else -1]

    def request_keyframe(self, index: int | None = None) -> None:
        """A keyframe of one layer (``index``), or of every layer."""
        for stream in ([self.stream(index)] if index is not None else self.streams):
            stream.request_keyframe()

    def initial_layer(self) -> int:
        """Where a new subscriber starts: the highest layer being sent (its link is not known yet;
        the feedback loop moves it down within a second or two if it cannot take it)."""
        now = time.monotonic()
        return next((s.index for s in reversed(self.streams) if s.live(now)), len(self.streams) - 1)

    def adopt(self, outlet: Outlet) -> None:
        """An outlet starts carrying this source (a new subscription, or the publisher's new
        connection taking over its previous one's subscribers)."""
        outlet.layer = None
        outlet.want, outlet.want_at = self.initial_layer(), time.monotonic()
        outlet.sender.keyframe_callback = functools.partial(self.keyframe_for, outlet)
        if outlet not in self.outlets:
            self.outlets.append(outlet)

    def keyframe_for(self, outlet: Outlet) -> None:
        """A subscriber asked for a keyframe (PLI/FIR): of the layer it is moving to when that
        layer is flowing (the switch brings it one), else of the layer it gets — a subscriber must
        never wait out a switch to a layer that is not coming with a picture it cannot decode."""
        index = outlet.want if outlet.want is not None else outlet.layer
        if outlet.layer is not None and index != outlet.layer and not self.stream(index).live(time.monotonic()):
            index = outlet.layer
        self.request_keyframe(index)

    def describe(self) -> dict[str, Any]:
        described = {"track_id": self.track_id, "participant_id": self.participant_id, "kind": self.kind,
                     "source": self.source, "muted": self.muted, "channel": "consultation" if self.private else "call"}
        if self.layered:
            described["layers"] = list(self.rids)
        return described


@dataclass
class Outlet:
    """One subscriber's transceiver carrying one source (or idle, ready for reuse)."""

    transceiver: RTCRtpTransceiver
    sender: PacketSender
    track_id: str | None
    kind: str
    paused: bool = False  # audio first: this subscriber's link cannot take the video now
    paused_at: float = 0.0  # when it last paused or resumed
    pauses: int = 0
    thin_since: float = 0.0  # since when its link's estimate is under what video needs (0: it is not)
    layer: int | None = None  # the layer (stream index) this subscriber gets; None: not started
    want: int | None = None  # the layer chosen for its link; switched to at that layer's keyframe
    want_at: float = 0.0  # when ``want`` last changed
    probe_wait: float = feedback.PROBE_WAIT_S  # how long a clean link waits before trying a layer up
    trial: bool = False  # ``want`` is a trial of a layer up (see feedback.choose_layer)
    last_remb: int | None = None  # the subscriber's estimate at the last choice
    sent_bps: int | None = None  # what it was really forwarded lately (a layer waiting for a keyframe sends nothing)
    remb_low_since: float = 0.0  # since when its estimate is under half what it is sent (0: it is not)
    _sent_mark: tuple[float, int] = (0.0, 0)

    def measure_sent(self, now: float) -> int | None:
        """What this outlet forwarded since the last feedback round (smoothed over two rounds)."""
        at, octets = self._sent_mark
        if at and now > at:
            rate = int((self.sender.octets - octets) * 8 / (now - at))
            self.sent_bps = rate if self.sent_bps is None else (self.sent_bps + rate) // 2
        self._sent_mark = (now, self.sender.octets)
        return self.sent_bps


@dataclass
class Participant:
    participant_id: str
    publish_pc: RTCPeerConnection | None = None
    subscribe_pc: RTCPeerConnection | None = None
    sources: dict[str, Source] = field(default_factory=dict)
    outlets: list[Outlet] = field(default_factory=list)
    offer_pending: bool = False
    renegotiate: bool = False
    private: bool = False  # what it publishes reaches backstage participants only
    backstage: bool = False  # it receives private tracks too
    remb_bps: int | None = None  # the last REMB sent to its browser
    remb_at: float = 0.0

    def sees(self, source: Source) -> bool:
        return self.backstage or not source.private


@dataclass
class RelayRoom:
    room_id: str
    participants: dict[str, Participant] = field(default_factory=dict)


class Relay:
    """Add participant, publish, subscribe, close; nothing about tickets or sockets."""

    def __init__(self, sink: RelaySink, ice_servers: list[RTCIceServer] | None = None,
                 network: MediaNetwork | None = None) -> None:
        """``network``: where the relay gathers host candidates (every address of the machine
        but loopback, on ephemeral ports, by default; ``YUNBANG_MEDIA_*``)."""
        self.sink = sink
        self.ice_servers = ice_servers or []
        self.network = network or MediaNetwork()
        self.rooms: dict[str, RelayRoom] = {}
        self._keys = 0
        self._lock: dict[str, asyncio.Lock] = {}
        self._feedback: asyncio.Task[None] | None = None
        self._retired = Traffic()  # what closed streams and subscriptions carried
        self.tasks = Tasks("relay")  # ended by shutdown

    def _config(self) -> RTCConfiguration:
        return RTCConfiguration(iceServers=list(self.ice_servers), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)

    def _room_lock(self, room_id: str) -> asyncio.Lock:
        return self._lock.setdefault(room_id, asyncio.Lock())

    def join(self, room_id: str, participant_id: str, *, private: bool = False,
             backstage: bool = False) -> list[dict[str, Any]]:
        """Enter a room (or come back to one). ``private``: what this participant publishes
        reaches only participants with ``backstage`` access (a consultation side room)."""
        room = self.rooms.setdefault(room_id, RelayRoom(room_id))
        participant = room.participants.setdefault(participant_id, Participant(participant_id))
        participant.backstage = backstage
        participant.private = private
        for source in participant.sources.values():
            source.private = private or source.source in SIDE_SOURCES
        return [s.describe() for p in room.participants.values() for s in p.sources.values() if participant.sees(s)]

    async def set_private(self, room_id: str, participant_id: str, private: bool) -> None:
        """Move a participant between the side room and the main call; everyone renegotiates."""
        room, participant = self._participant(room_id, participant_id)
        if participant.private == private:
            return
        participant.private = private
        for source in participant.sources.values():
            source.private = private or source.source in SIDE_SOURCES
            for viewer in room.participants.values():  # stop forwarding now, not after renegotiation
                if not viewer.sees(source):
                    source.outlets = [o for o in source.outlets if o not in viewer.outlets]
        await self._renegotiate_others(room, participant.participant_id)

    def _participant(self, room_id: str, participant_id: str) -> tuple[RelayRoom, Participant]:
        room = self.rooms.get(room_id)
        participant = room.participants.get(participant_id) if room else None
        if room is None or participant is None:
            raise RelayError("not_in_room", "请先加入通话")
        return room, participant

    async def publish(self, room_id: str, participant_id: str, offer_sdp: str, sources: Mapping[str, str]) -> str:
        """Take a publisher's offer (``sources`` maps each m-line's mid to camera/microphone/
        screen) and return the relay's answer. A new offer replaces the previous publishing
        connection: that is also how a client recovers from a failed ICE connection."""
        async with self._room_lock(room_id):
            room, participant = self._participant(room_id, participant_id)
            try:
                parsed = SessionDescription.parse(offer_sdp)
            except Exception as exc:  # aiortc raises assorted errors on garbage
                raise RelayError("malformed_sdp", "SDP 无法解析") from exc
            media = [m for m in parsed.media if m.kind in ("audio", "video")]
            if not media:
                raise RelayError("malformed_sdp", "SDP 中没有音视频")
            for m in media:
                if sources.get(m.rtp.muxId or "") not in SOURCES:
                    raise RelayError("unknown_track_source", f"第 {m.rtp.muxId} 路媒体未说明来源（camera/microphone/screen）")
            layered = {mid: offer for mid, offer in simulcast_offers(offer_sdp).items()
                       if sources.get(mid) in LAYERED_SOURCES}
            old_pc = participant.publish_pc
            pc = gather_on(peer_connection(self._config(), self.tasks), self.network)
            for m in media:
                transceiver = pc.addTransceiver(m.kind, direction="recvonly")
                transceiver.setCodecPreferences(_capabilities(m.kind))
            self._watch(pc, room_id, participant_id, "publish")
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
                for transceiver in pc.getTransceivers():
                    if transceiver.mid in layered:
                        accept_simulcast(transceiver, layered[transceiver.mid].extensions)
                    route_by_mid(transceiver.receiver.transport)
                await pc.setLocalDescription(await pc.createAnswer())
            except Exception as exc:
                await pc.close()
                raise RelayError("negotiation_failed", f"媒体协商失败：{exc}") from exc
            new_sources: dict[str, Source] = {}
            for transceiver in pc.getTransceivers():
                if not transceiver._codecs:
                    continue
                source_name = sources[transceiver.mid or ""]
                self._keys += 1
                source = Source(
                    track_id=f"{participant_id}:{source_name}",
                    participant_id=participant_id,
                    kind=transceiver.kind,
                    source=source_name,
                    codec=transceiver._codecs[0],
                    receiver=transceiver.receiver,
                    key=self._keys,
                    tasks=self.tasks,
                    rids=layered[transceiver.mid].rids if transceiver.mid in layered else (),
                    private=participant.private or source_name in SIDE_SOURCES,
                )
                tap_receiver(transceiver.receiver, source.on_packet,
                             source.on_estimate if source.kind == "video" else None, tasks=self.tasks,
                             on_nack=source.nack_sent)
                new_sources[source.track_id] = source
            for track_id, source in new_sources.items():
                previous = participant.sources.get(track_id)
                if previous is not None and previous.codec.mimeType == source.codec.mimeType:
                    for outlet in previous.outlets:
                        source.adopt(outlet)
                    previous.outlets = []
            self._retire(participant.sources.values(), [])
            participant.sources = new_sources
            participant.publish_pc = pc
            if old_pc is not None:
                await old_pc.close()
            answer = accept_layers(opus_resilient(pc.localDescription.sdp), layered)
        await self._renegotiate_others(room, participant_id)
        for source in new_sources.values():
            source.request_keyframe()
        self._start_feedback()
        return answer

    async def subscribe(self, room_id: str, participant_id: str) -> None:
        """Start (or refresh) a participant's subscription: the relay sends an offer."""
        room, participant = self._participant(room_id, participant_id)
        await self._renegotiate(room, participant)

    async def resubscribe(self, room_id: str, participant_id: str) -> None:
        """A client came back with a fresh page or connection: rebuild its subscription."""
        room, participant = self._participant(room_id, participant_id)
        await self._drop_subscription(room, participant)
        await self._renegotiate(room, participant)

    async def _drop_subscription(self, room: RelayRoom, participant: Participant) -> None:
        for p in room.participants.values():
            for s in p.sources.values():
                s.outlets = [o for o in s.outlets if o not in participant.outlets]
        self._retire([], participant.outlets)
        participant.outlets = []
        participant.offer_pending = participant.renegotiate = False
        if participant.subscribe_pc is not None:
            await participant.subscribe_pc.close()
            participant.subscribe_pc = None

    async def _renegotiate_others(self, room: RelayRoom, participant_id: str) -> None:
        """New offers for everyone else subscribed in the room: one whose connection cannot make
        one (closed under it, failed) is logged and left to resubscribe — the step that changed
        the room (a publish, a leave) stands."""
        for other in list(room.participants.values()):
            if other.participant_id == participant_id or other.subscribe_pc is None:
                continue
            try:
                await self._renegotiate(room, other)
            except Exception:
                other.offer_pending = False
                log.exception("a new subscription offer for %s failed", other.participant_id,
                              extra={"room_id": room.room_id})

    async def _renegotiate(self, room: RelayRoom, participant: Participant) -> None:
        if participant.offer_pending:
            participant.renegotiate = True
            return
        participant.renegotiate = False
        wanted = {
            s.track_id: s
            for p in room.participants.values() if p.participant_id != participant.participant_id
            for s in p.sources.values() if participant.sees(s)
        }
        pc = participant.subscribe_pc
        if pc is None:
            pc = participant.subscribe_pc = gather_on(peer_connection(self._config(), self.tasks), self.network)
            self._watch(pc, room.room_id, participant.participant_id, "subscribe")
        outlet: Outlet | None
        source: Source | None
        for outlet in participant.outlets:
            if outlet.track_id is not None and outlet.track_id not in wanted:
                outlet.track_id = None
                outlet.transceiver.direction = "inactive"
        carried = {o.track_id for o in participant.outlets}
        for track_id, source in wanted.items():
            if track_id in carried:
                continue
            outlet = next((o for o in participant.outlets if o.track_id is None and o.kind == source.kind), None)
            if outlet is None:
                transceiver = pc.addTransceiver(_Placeholder(source.kind), direction="sendonly")
                outlet = Outlet(transceiver, PacketSender(transceiver.sender, self.tasks), None, source.kind)
                participant.outlets.append(outlet)
            outlet.track_id = track_id
            outlet.transceiver.direction = "sendonly"
            outlet.transceiver.setCodecPreferences(_matching(source.kind, source.codec))
        if not participant.outlets:
            return
        participant.offer_pending = True
        await pc.setLocalDescription(await pc.createOffer())
        tracks = []
        for outlet in participant.outlets:
            source = wanted.get(outlet.track_id or "")
            entry = {"mid": outlet.transceiver.mid, "kind": outlet.kind, "active": source is not None}
            if source is not None:
                entry.update(source.describe())
            tracks.append(entry)
        await self.sink.subscribe_offer(room.room_id, participant.participant_id,
                                        opus_resilient(pc.localDescription.sdp), tracks)

    async def answer_subscription(self, room_id: str, participant_id: str, answer_sdp: str) -> None:
        room, participant = self._participant(room_id, participant_id)
        pc = participant.subscribe_pc
        if pc is None or not participant.offer_pending:
            raise RelayError("no_offer_pending", "没有待应答的订阅邀约")
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        except Exception as exc:
            raise RelayError("malformed_sdp", f"订阅应答无效：{exc}") from exc
        participant.offer_pending = False
        every = [s for p in room.participants.values() for s in p.sources.values()]
        sources = {s.track_id: s for s in every if participant.sees(s)}
        for outlet in participant.outlets:
            source = sources.get(outlet.track_id or "")
            for s in every:
                if outlet in s.outlets and s is not source:
                    s.outlets.remove(outlet)
            if source is None or not outlet.transceiver._codecs:
                continue
            outlet.sender.bind(outlet.transceiver._codecs[0].payloadType)
            if outlet not in source.outlets:
                source.adopt(outlet)
            source.keyframe_for(outlet)
        if participant.renegotiate:
            await self._renegotiate(room, participant)

    async def add_ice_candidate(self, room_id: str, participant_id: str, which: str, candidate: dict[str, Any]) -> None:
        _, participant = self._participant(room_id, participant_id)
        pc = participant.publish_pc if which == "publish" else participant.subscribe_pc
        if pc is None:
            raise RelayError("no_peer_connection", "该连接尚未建立")
        text = str(candidate.get("candidate") or "")
        if not text:
            return
        try:
            parsed = candidate_from_sdp(text.split(":", 1)[1] if text.startswith("candidate:") else text)
        except Exception as exc:
            raise RelayError("malformed_candidate", "ICE 候选无效") from exc
        parsed.sdpMid = candidate.get("sdpMid")
        parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
        await pc.addIceCandidate(parsed)

    def set_muted(self, room_id: str, participant_id: str, source: str, muted: bool) -> dict[str, Any]:
        _, participant = self._participant(room_id, participant_id)
        track = participant.sources.get(f"{participant_id}:{source}")
        if track is None:
            raise RelayError("track_not_found", "没有这一路媒体")
        track.muted = muted
        return track.describe()

    async def leave(self, room_id: str, participant_id: str) -> None:
        room = self.rooms.get(room_id)
        participant = room.participants.pop(participant_id, None) if room else None
        if room is None or participant is None:
            return
        await self._close_participant(participant)
        for other in list(room.participants.values()):
            for s in other.sources.values():
                s.outlets = [o for o in s.outlets if o not in participant.outlets]
        await self._renegotiate_others(room, participant_id)

    async def close_room(self, room_id: str) -> None:
        room = self.rooms.pop(room_id, None)
        self._lock.pop(room_id, None)
        if room is None:
            return
        for participant in room.participants.values():
            await self._close_participant(participant)

    async def _close_participant(self, participant: Participant) -> None:
        self._retire(participant.sources.values(), participant.outlets)
        participant.sources = {}
        participant.outlets = []
        for pc in (participant.publish_pc, participant.subscribe_pc):
            if pc is not None:
                await pc.close()
        participant.publish_pc = participant.subscribe_pc = None

    def _watch(self, pc: RTCPeerConnection, room_id: str, participant_id: str, which: str) -> None:
        @pc.on("connectionstatechange")
        async def changed() -> None:
            if which == "publish" and pc.connectionState == "connected":
                for transceiver in pc.getTransceivers():
                    fast_receive(transceiver.receiver.transport)
            await self.sink.peer_state(room_id, participant_id, which, pc.connectionState)

    # --- bandwidth feedback (signaling/relay/feedback.py) ------------------------------------

    def _start_feedback(self) -> None:
        if self._feedback is None or self._feedback.done():
            # every room's loop: its lines name their room, not the one that happened to start it
            self._feedback = self.tasks.spawn(self._feedback_loop(), name="bandwidth feedback",
                                              context=contextvars.Context())

    async def _feedback_loop(self) -> None:
        """Once a second while any room is open; ends by itself when the last room closes."""
        while self.rooms:
            await asyncio.sleep(feedback.INTERVAL_S)
            for room in list(self.rooms.values()):
                for participant in list(room.participants.values()):
                    try:
                        await self._tell_publisher(room, participant)
                    except Exception:
                        log.exception("bandwidth feedback to %s failed", participant.participant_id,
                                      extra={"room_id": room.room_id})

    async def _tell_publisher(self, room: RelayRoom, participant: Participant) -> None:
        """Targets for this participant's video (the weakest subscriber's link wins), one REMB
        to its browser, repair budgets for its subscribers, and gap waits from its round trip."""
        rtts = sorted(o.sender.rtt for o in participant.outlets if o.sender.rtt is not None)
        rtt = rtts[len(rtts) // 2] if rtts else None
        wait = feedback.gap_wait(rtt)
        now = time.monotonic()
        targets, audio, ssrcs, receiver = [], 0, [], None
        for source in participant.sources.values():
            source.gap_wait, source.rtt = wait, rtt
            if source.media_ssrc is None:
                continue
            ssrcs.extend(source.ssrcs)
            if source.kind != "video":
                audio += 1
                continue
            receiver = receiver or source.receiver
            for stream in source.streams:
                stream.measure(now)
            source.note_uplink(now)
            source.note_loss(now)
            subscribers = [
                feedback.Subscriber(o.sender.remb_bps if now - o.sender.remb_at < feedback.ESTIMATE_FRESH_S else None,
                                    o.sender.fraction_lost)
                for o in source.outlets
            ]
            await self._gate_video(room, source, subscribers, now)
            flowing = [(o, s) for o, s in zip(source.outlets, subscribers, strict=True) if not o.paused]
            if source.layered:
                self._choose_layers(source, flowing, now)
                await self._ask_layers(room, participant, source, now)
            if source.layered:
                source.target_bps = feedback.layered_target(
                    feedback.layer_rates([None] * len(source.streams)), source.uplink_bps,
                    sum(s.rate_bps or 0 for s in source.streams))
            else:
                source.target_bps = feedback.video_target(source.source, source.target_bps, source.uplink_bps,
                                                          [s for _, s in flowing])
            if source.target_bps is not None and source.loss_cap_bps is not None:
                source.target_bps = min(source.target_bps, source.loss_cap_bps)
            if source.target_bps is None:
                continue
            targets.append(source.target_bps)
            for outlet, subscriber in flowing:
                outlet.sender.retransmit_bps = feedback.retransmit_budget(
                    min(subscriber.remb_bps or source.target_bps, source.target_bps))
        if receiver is not None and targets:
            remb = feedback.remb_to_send(participant.remb_bps, participant.remb_at,
                                         feedback.publisher_total(targets, audio), now,
                                         stepped=not any(s.layered for s in participant.sources.values()))
            if remb is not None:
                participant.remb_bps, participant.remb_at = remb, now
                await send_remb(receiver, remb, ssrcs)

    def _choose_layers(self, source: Source, flowing: list[tuple[Outlet, feedback.Subscriber]], now: float) -> None:
        """Each subscriber's layer for its link (simulcast); a change waits for that layer's keyframe."""
        # the layers the publisher can send: up to the highest that is not absent, and that its
        # uplink carries
        top = max((s.index for s in source.streams if not s.absent(now)), default=0)
        rates = feedback.layer_rates([s.rate_bps for s in source.streams])[: top + 1]
        live = [s for s in source.streams if s.live(now)]
        live_top = max((s.index for s in live), default=0)
        top_stalled = source.stream(live_top).stalled(now) and any(not s.stalled(now) for s in live)
        before = source.uplink_cap.top
        cap = source.uplink_cap.update(source.uplink_bps, rates, live_top, sum(s.rate_bps or 0 for s in live),
                                       source.gaps_skipped, now, top_stalled=top_stalled)
        if cap != before:
            log.info("%s: the publisher's uplink carries %s (estimate %s bit/s, layers %s bit/s%s)", source.track_id,
                     "every layer" if cap is None else f"layers up to {source.rids[cap]}", source.uplink_bps,
                     [s.rate_bps for s in source.streams], ", the top one standing still" if top_stalled else "")
        if cap is not None and cap < top:
            top, rates = cap, rates[: cap + 1]
        for outlet, subscriber in flowing:
            current = outlet.want if outlet.want is not None else source.initial_layer()
            since = now - outlet.want_at
            if outlet.layer is not None and outlet.layer != current:  # its keyframe (or the layer) not here yet
                if since < feedback.SWITCH_WAIT_S and current <= top:
                    continue
                outlet.want, outlet.want_at, outlet.trial = outlet.layer, now, False
                outlet.probe_wait = feedback.next_probe_wait(outlet.probe_wait, True, since)
                continue
            if current > top:  # the layer is absent, or its uplink does not carry it: down to what is
                current = outlet.want = top
                outlet.want_at = now
                if outlet.layer != top:
                    source.request_keyframe(top)  # switched at its keyframe, asked for now
            choice = feedback.choose_layer(current, rates, subscriber.remb_bps, outlet.last_remb,
                                           subscriber.fraction_lost, since, outlet.probe_wait, outlet.trial)
            outlet.last_remb = subscriber.remb_bps
            if choice.layer != current:
                outlet.probe_wait = feedback.next_probe_wait(
                    outlet.probe_wait, outlet.trial and choice.layer < current, since)
                outlet.want, outlet.want_at = choice.layer, now
                source.request_keyframe(choice.layer)
            outlet.trial = choice.trial

    async def _ask_layers(self, room: RelayRoom, participant: Participant, source: Source, now: float) -> None:
        """Dynacast: the publisher sends only the layers someone gets (and the lowest). A layer is
        turned on at once, off only after it has gone unused for a few seconds."""
        wanted = {i for o in source.outlets if not o.paused for i in (o.layer, o.want) if i is not None}
        active = tuple(source.rids[i] for i in feedback.active_layers(wanted, len(source.streams)))
        if active == source.active_rids:
            source.active_at = now
            return
        if set(active) < set(source.active_rids) and now - source.active_at < feedback.LAYER_OFF_AFTER_S:
            return
        for stream in source.streams:
            on = stream.rid in active
            if on and stream.asked_at is None:
                stream.asked_at = now
            elif not on:
                stream.asked_at = None
        source.active_rids, source.active_at = active, now
        await self.sink.publish_layers(room.room_id, participant.participant_id, source.source, list(active))

    async def _gate_video(self, room: RelayRoom, source: Source, subscribers: list[feedback.Subscriber],
                          now: float) -> None:
        """Pause a subscriber's video while its link is too thin for it, try again later."""
        for outlet, subscriber in zip(source.outlets, subscribers, strict=True):
            # a browser's REMB follows what arrives: only one under what it is sent is a thin link,
            # and a subscriber in layers first goes down to the lowest. What it is sent: what the
            # relay really forwarded to it (a layer whose publisher's line loses packets waits for
            # keyframes and forwards little; the estimate falling with it says nothing of this link)
            forwarded = outlet.measure_sent(now)
            sent = source.stream(outlet.layer).rate_bps or 0 if outlet.layer is not None else 0
            sent = min(sent, forwarded) if forwarded is not None else sent
            # what it forwarded is smoothed over two rounds and falls slowly: while the layer waits
            # for a keyframe (or mostly has of late) nothing or little goes out, and an estimate
            # falling then is the publisher's line, not this one
            if outlet.layer is not None and source.stream(outlet.layer).starved(now):
                sent = 0
            # and a link that takes what it is sent without losing it carries it, whatever the
            # estimate: a browser's is held under 1.5× what arrived while little did, and climbs
            # some 8 % a second after (a clean link's estimate stays low for 20 s after a stall)
            if not feedback.link_losing(subscriber.fraction_lost):
                sent = 0
            low = subscriber.remb_bps is not None and subscriber.remb_bps < sent * feedback.LAYER_TOO_BIG
            outlet.remb_low_since = (outlet.remb_low_since or now) if low else 0.0
            thin = subscriber.remb_bps if (subscriber.remb_bps is not None and not (outlet.layer or 0) > 0
                                           and subscriber.remb_bps < sent * feedback.UPLINK_CONGESTED) else None
            # only a link that stays thin: a browser's estimate right after an outage is low for a moment
            if thin is None or thin >= feedback.PAUSE_BELOW_BPS:
                outlet.thin_since = 0.0
            elif not outlet.thin_since:
                outlet.thin_since = now
            if not outlet.thin_since or now - outlet.thin_since < feedback.THIN_FOR_S:
                thin = None
            paused = feedback.video_paused(outlet.paused, outlet.paused_at, outlet.pauses, thin, now)
            if paused == outlet.paused:
                if not paused and outlet.pauses and now - outlet.paused_at > feedback.RESUME_TRY_MAX_S * 2:
                    outlet.pauses = 0  # a good while without a pause: start the back-off again
                continue
            outlet.paused, outlet.paused_at = paused, now
            viewer = next((p for p in room.participants.values() if outlet in p.outlets), None)
            log.info("%s: video %s for %s (its estimate %s bit/s, sent %d bit/s)", source.track_id,
                     "paused" if paused else "resumed", viewer.participant_id if viewer else "?",
                     subscriber.remb_bps, sent)
            if paused:
                outlet.pauses += 1
            else:
                outlet.sender.rebase()  # its numbering goes on where it stopped: no false loss, no NACKs
                source.request_keyframe()
            if viewer is not None:
                await self.sink.video_paused(room.room_id, viewer.participant_id, source.track_id, paused)

    async def shutdown(self) -> None:
        """Close every room, then end the relay's tasks (the feedback loop, requests in flight)."""
        for room_id in list(self.rooms):
            await self.close_room(room_id)
        await self.tasks.close()
        self._feedback = None

    def _retire(self, sources: Iterable[Source], outlets: Iterable[Outlet]) -> None:
        """Sources and outlets the relay lets go of: closed, their counts kept in the totals."""
        for source in sources:
            source.close()
            self._retired.add_source(source)
        for outlet in outlets:
            self._retired.add_sender(outlet.sender)

    def traffic(self) -> Traffic:
        """Everything carried since the relay started: what closed, plus what is open now."""
        total = self._retired.copy()
        for room in self.rooms.values():
            for participant in room.participants.values():
                for source in participant.sources.values():
                    total.add_source(source)
                for outlet in participant.outlets:
                    total.add_sender(outlet.sender)
        return total

    def counts(self) -> dict[str, int]:
        pcs = sum(1 for r in self.rooms.values() for p in r.participants.values()
                  for pc in (p.publish_pc, p.subscribe_pc) if pc is not None)
        return {
            "rooms": len(self.rooms),
            "participants": sum(len(r.participants) for r in self.rooms.values()),
            "peer_connections": pcs,
        }

    def source(self, room_id: str, track_id: str) -> Source | None:
        room = self.rooms.get(room_id)
        if room is None:
            return None
        for p in room.participants.values():
            if track_id in p.sources:
                return p.sources[track_id]
        return None
