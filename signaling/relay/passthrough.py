"""Forward RTP packets without decoding them: where the relay reaches deepest into aiortc.

aiortc always decodes what it receives and encodes what it sends; it has no API for
encoded media. For a relay we take received packets right after SRTP, RTX unwrapping and NACK
generation (before the jitter buffer and the decoder) and hand them to each subscriber's
sender, which rewrites SSRC, payload type, sequence number and timestamp, stamps its own
header extensions, keeps its RTP history (so the subscriber's NACKs are answered) and its
sender-report counters. PLI/FIR from a subscriber become a keyframe request to the publisher.

This touches aiortc's private, name-mangled attributes. It is written against, and pinned to,
aiortc 1.16.0 (``pyproject.toml``); ``check_aiortc()`` runs at import and the relay tests
fail loudly if an upgrade moves any of it.

It is not the only module that does: ``dtls.py`` (``RTCCertificate._create_ssl_context``,
``RTCPeerConnection.__certificates``) and ``ice.py`` (``RTCPeerConnection.__createDtlsTransport``,
``RTCIceTransport._connection`` and aioice's ``Connection`` internals) reach in too, each with
its own check at import; ``relay.py`` and ``probe.py`` read ``RTCRtpTransceiver._codecs``
(the codecs negotiated for the m-line), which ``tests/test_aiortc_pin.py`` holds in place.
"""

from __future__ import annotations

import asyncio
import collections
import importlib.metadata
import logging
import struct
import time
import types
from collections.abc import Callable, Iterable
from typing import Any

import aiortc
import pylibsrtp
from aiortc.codecs import is_rtx
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters
from aiortc.rtcrtpreceiver import NackGenerator, RTCRtpReceiver, StreamStatistics
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTP_HISTORY_SIZE,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpSrPacket,
    RtpPacket,
    is_rtcp,
    pack_remb_fci,
    unpack_remb_fci,
    unwrap_rtx,
)

from signaling.relay.sdp import REPAIRED_RID_URI, RID_URI
from signaling.tasks import Tasks

log = logging.getLogger("yunbang.relay")

AIORTC_VERSION = "1.16.0"
AIOICE_VERSION = "0.13.0"
NTP_EPOCH_OFFSET = 2208988800
_R = "_RTCRtpReceiver__"
_S = "_RTCRtpSender__"
_RECEIVER_ATTRS = ("codecs", "remote_streams", "rtx_ssrc", "nack_generator", "active_ssrc", "decoder_queue",
                   "remote_bitrate_estimator", "rtcp_ssrc")
_SENDER_ATTRS = (
    "mid", "rtp_header_extensions_map", "ntp_timestamp", "rtp_timestamp",
    "octet_count", "packet_count", "rtp_started", "rtp_exited", "encoder",
    "rtx_payload_type", "rtx_sequence_number", "rtt",
)
_DTLS_ATTRS = ("_rx_srtp", "_tx_srtp", "_rtp_router", "_rtp_header_extensions_map", "_RTCDtlsTransport__rx_packets")

PacketSink = Callable[[RtpPacket], None]
_HEADER = struct.Struct("!BBHLLHH")
DEFAULT_RETRANSMIT_BPS = 300_000  # until the relay knows what the subscriber's link carries
LOSS_WINDOW_S = 2.0  # the subscriber's loss is measured over this long
RETRANSMIT_BURST_S = 0.25
MIN_RESEND_GAP_S = 0.05
UNREPAIRABLE_BURST = 20  # repairs refused within UNREPAIRABLE_WINDOW_S: ask for a keyframe instead
UNREPAIRABLE_WINDOW_S = 0.25
_ON_RTP = "_yunbang_on_rtp"  # the tapped receiver's synchronous packet handler


class AiortcMismatch(RuntimeError):
    """The installed aiortc is not the one this module was written against."""


def check_aiortc() -> None:
    if aiortc.__version__ != AIORTC_VERSION:
        raise AiortcMismatch(f"relay passthrough is written for aiortc {AIORTC_VERSION}, found {aiortc.__version__}")
    if importlib.metadata.version("aioice") != AIOICE_VERSION:
        raise AiortcMismatch(f"relay passthrough is written for aioice {AIOICE_VERSION}")
    from aioice.ice import CandidatePair, Connection, StunProtocol

    if not hasattr(Connection(ice_controlling=True), "_nominated") or not hasattr(CandidatePair, "remote_addr"):
        raise AiortcMismatch("aioice's nominated pairs moved")
    if not hasattr(StunProtocol, "send_data"):
        raise AiortcMismatch("aioice's StunProtocol moved")
    for name in ("_handle_rtp_packet", "_send_rtcp_pli", "_send_rtcp_nack"):
        if not hasattr(RTCRtpReceiver, name):
            raise AiortcMismatch(f"RTCRtpReceiver.{name} is gone")
    for name in ("_run_rtp", "_send_keyframe", "_retransmit"):
        if not hasattr(RTCRtpSender, name):
            raise AiortcMismatch(f"RTCRtpSender.{name} is gone")
    from aiortc.rtcdtlstransport import RtpRouter

    router = RtpRouter()
    if not all(hasattr(router, name) for name in ("mid_table", "ssrc_table", "route_rtp")):
        raise AiortcMismatch("aiortc's RtpRouter moved")
    if "_headerExtensions" not in RTCRtpTransceiver("video", None, None).__dict__:  # type: ignore[arg-type]  # only its attributes are read
        raise AiortcMismatch("RTCRtpTransceiver._headerExtensions is gone")
    if not hasattr(Connection, "data_received"):
        raise AiortcMismatch("aioice's Connection.data_received is gone")


def ntp_now() -> int:
    """64-bit NTP time from time.time(): aiortc's own goes through datetime, twice a packet."""
    now = time.time() + NTP_EPOCH_OFFSET
    return (int(now) << 32) | int((now % 1) * 4294967296)


def arrivals(receiver: RTCRtpReceiver, ssrcs: Iterable[int]) -> tuple[int, int]:
    """Packets expected and received so far on these media SSRCs: first transmissions only (a
    retransmission comes on its RTX SSRC, counted apart), so their difference is what the
    publisher's uplink lost, repaired or not."""
    streams: dict[int, StreamStatistics] = getattr(receiver, _R + "remote_streams")
    expected = received = 0
    for ssrc in ssrcs:
        stream = streams.get(ssrc)
        if stream is not None and stream.base_seq is not None:
            expected += stream.packets_expected
            received += stream.packets_received
    return expected, received


def tap_receiver(receiver: RTCRtpReceiver, sink: PacketSink,
                 estimate: Callable[[int], None] | None = None, *, tasks: Tasks,
                 on_nack: Callable[[], None] | None = None) -> None:
    """Send every received RTP packet to ``sink`` instead of the jitter buffer and decoder.

    Statistics (for receiver reports), RTX unwrapping and NACKs toward the publisher are kept,
    each per SSRC: a simulcast publisher sends several streams (one per layer, told apart by
    their RID header extension, no SSRC in its SDP) on one transceiver, and their RTX streams
    name the layer they repair (repaired RID). The same handler serves aiortc's own receive
    path (until `fast_receive` is installed) and the fast path. For video, aiortc's delay-based
    estimator (abs-send-time; ≈ 3 µs a packet) keeps running, and each estimate of what the
    publisher's uplink carries goes to ``estimate``. ``on_nack`` is told of each NACK sent;
    the NACKs are sent from ``tasks``.
    """
    attrs = {name: getattr(receiver, _R + name) for name in _RECEIVER_ATTRS}
    codecs: dict[int, Any] = attrs["codecs"]
    remote_streams: dict[int, Any] = attrs["remote_streams"]
    rtx_ssrc: dict[int, int] = attrs["rtx_ssrc"]
    first_nack = attrs["nack_generator"]
    nacks: dict[int, NackGenerator] = {}
    ssrc_of_rid: dict[str, int] = {}
    estimator = attrs["remote_bitrate_estimator"] if estimate is not None else None
    monotonic = time.monotonic

    def on_rtp(packet: RtpPacket) -> None:
        if not receiver._enabled:
            return
        codec = codecs.get(packet.payload_type)
        if codec is None:
            return
        stream = remote_streams.get(packet.ssrc)
        if stream is None:
            stream = remote_streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        stream.add(packet)
        if estimator is not None and packet.extensions.abs_send_time is not None:
            remb = estimator.add(arrival_time_ms=int(monotonic() * 1000), abs_send_time=packet.extensions.abs_send_time,
                                 payload_size=len(packet.payload) + packet.padding_size, ssrc=packet.ssrc)
            if remb is not None:
                estimate(remb[0])  # type: ignore[misc]  # not None: estimator is set only with it
        if is_rtx(codec):
            original = rtx_ssrc.get(packet.ssrc)
            if original is None and packet.extensions.repaired_rtp_stream_id is not None:
                original = ssrc_of_rid.get(packet.extensions.repaired_rtp_stream_id)
                if original is not None:
                    rtx_ssrc[packet.ssrc] = original
            apt = codec.parameters.get("apt")
            if original is None or len(packet.payload) < 2 or apt not in codecs:
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original)
        elif packet.extensions.rtp_stream_id is not None:
            ssrc_of_rid[packet.extensions.rtp_stream_id] = packet.ssrc
        if first_nack is not None:
            nack = nacks.get(packet.ssrc)
            if nack is None:
                nack = nacks[packet.ssrc] = first_nack if not nacks else NackGenerator()
            if nack.add(packet):
                if on_nack is not None:
                    on_nack()
                tasks.spawn(receiver._send_rtcp_nack(packet.ssrc, sorted(nack.missing)), name="NACK")
        sink(packet)

    async def handle(self: RTCRtpReceiver, packet: RtpPacket, arrival_time_ms: int) -> None:
        on_rtp(packet)

    receiver._handle_rtp_packet = types.MethodType(handle, receiver)  # type: ignore[method-assign]  # no hook in aiortc
    setattr(receiver, _ON_RTP, on_rtp)


def accept_simulcast(transceiver: RTCRtpTransceiver, extensions: dict[str, int]) -> None:
    """Negotiate the RID header extensions a simulcast offer carries (``extensions``: URI → id
    from the offer) on this receiving transceiver, so the answer accepts them and incoming
    packets are parsed with them. Call after setRemoteDescription, before createAnswer."""
    have = {e.uri for e in transceiver._headerExtensions}
    for uri in (RID_URI, REPAIRED_RID_URI):
        if uri in extensions and uri not in have:
            transceiver._headerExtensions.append(RTCRtpHeaderExtensionParameters(id=extensions[uri], uri=uri))


def route_by_mid(dtls: RTCDtlsTransport) -> None:
    """Route packets of SSRCs nobody signalled (a simulcast layer's, and its RTX) by their MID
    header extension. aiortc 1.16 routes an unknown SSRC only by payload type, which fails as
    soon as two video transceivers share one (a camera in layers and a screen share)."""
    router = dtls._rtp_router
    if getattr(router, "_yunbang_mid", False):
        return
    by_ssrc_or_type = router.route_rtp

    def route(packet: RtpPacket) -> Any:
        receiver = router.ssrc_table.get(packet.ssrc)
        if receiver is None and packet.extensions.mid is not None:
            receiver = router.mid_table.get(packet.extensions.mid)
            if receiver is not None:
                router.ssrc_table[packet.ssrc] = receiver
                return receiver
        return by_ssrc_or_type(packet)

    router.route_rtp = route  # type: ignore[method-assign]  # aiortc has no hook for routing by MID
    router._yunbang_mid = True  # type: ignore[attr-defined]  # our mark on aiortc's router: patched once


def fast_receive(dtls: RTCDtlsTransport) -> bool:
    """Take SRTP packets straight from the sockets, once DTLS is up.

    aiortc's receive path tries to parse every datagram as STUN, queues it in aioice
    (``Connection._queue``), wakes the DTLS transport's task to fetch it, reads a ``datetime``
    clock and awaits three calls before the receiver sees the packet. Here each of the ICE
    connection's sockets (``StunProtocol.datagram_received``, and ``Connection.data_received``
    behind them) unprotects, parses and routes an RTP packet on the spot and calls the tapped
    receiver's handler; STUN, DTLS and RTCP still take aiortc's path. Returns False (and
    changes nothing) while SRTP is not set up yet.
    """
    srtp = dtls._rx_srtp
    if srtp is None or dtls._state is not State.CONNECTED:
        return False
    connection = dtls.transport._connection
    if getattr(connection, "_yunbang_fast", False):
        return True
    router = dtls._rtp_router
    extensions_map = dtls._rtp_header_extensions_map
    unprotect = srtp.unprotect
    parse = RtpPacket.parse

    def rtp_received(data: bytes) -> None:
        dtls._RTCDtlsTransport__rx_packets += 1  # type: ignore[attr-defined]  # aiortc's private count (its getStats)
        try:
            packet = parse(unprotect(data), extensions_map)
        except (pylibsrtp.Error, ValueError):
            return
        receiver = router.route_rtp(packet)
        on_rtp = getattr(receiver, _ON_RTP, None) if receiver is not None else None
        if on_rtp is not None:
            on_rtp(packet)

    def intercept(deliver: Callable[..., None]) -> Callable[..., None]:
        def received(data: bytes, where: Any) -> None:
            if 127 < data[0] < 192 and not is_rtcp(data):
                rtp_received(data)
            else:
                deliver(data, where)

        return received

    connection.data_received = intercept(connection.data_received)  # type: ignore[method-assign]  # no hook in aioice
    for protocol in connection._protocols:
        protocol.datagram_received = intercept(protocol.datagram_received)  # type: ignore[method-assign]  # no hook in aioice either
    connection._yunbang_fast = True  # type: ignore[attr-defined]  # our mark on aioice's connection: patched once
    return True


async def request_keyframe(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    await receiver._send_rtcp_pli(media_ssrc)


async def request_repair(receiver: RTCRtpReceiver, media_ssrc: int, sequence_numbers: list[int]) -> None:
    """Ask the publisher again for packets still missing (a NACK of our own: aiortc's generator
    asks once per loss, and a retransmission lost in turn is asked for only if a new loss
    happens to follow)."""
    if sequence_numbers:
        await receiver._send_rtcp_nack(media_ssrc, sequence_numbers)


async def send_remb(receiver: RTCRtpReceiver, bitrate: int, media_ssrcs: list[int]) -> None:
    """Tell a publisher the most it should send for these streams (REMB, goog-remb)."""
    rtcp_ssrc = getattr(receiver, _R + "rtcp_ssrc")
    if rtcp_ssrc is None or not media_ssrcs:
        return
    await receiver._send_rtcp(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0,
                                             fci=pack_remb_fci(int(bitrate), list(media_ssrcs))))


class PacketSender:
    """Drives one subscriber's RTCRtpSender from forwarded packets instead of an encoder.

    Sequence numbers and timestamps keep the publisher's spacing (so a loss upstream shows as
    a gap and the subscriber asks for it again) shifted by an offset chosen when the source
    (re)starts, so a re-publish continues the subscriber's numbering. The wire bytes are
    packed here directly (header and one-byte header extensions), not through aiortc's
    generic serializer: this is the per-packet path. The history the subscriber's NACKs are
    answered from keeps those bytes' parts; a packet object is built only for a retransmission.

    What the subscriber reports comes back here: its REMB (``remb_bps``: what its link takes),
    the loss its receiver reports count (``fraction_lost``, over the last two seconds) and the round trip aiortc measures from
    them (``rtt``). Retransmissions are budgeted: a packet asked for again within a round trip is
    not sent twice, and repairs take at most ``retransmit_bps`` (a token bucket of a quarter
    second), so a lossy link's NACKs never become a storm on top of the media.
    """

    def __init__(self, sender: RTCRtpSender, tasks: Tasks) -> None:
        """``tasks``: where a packet that cannot take the short way out is sent from."""
        self.sender = sender
        self.tasks = tasks
        self.keyframe_callback: Callable[[], None] = lambda: None
        self._history: list[tuple[int, int, int, bytes, bytes] | None] = [None] * RTP_HISTORY_SIZE
        self._payload_type: int | None = None
        self._mid: str | None = None
        self._started = False
        self._mid_element = b""
        self._abs_id = 0
        self._level_id = 0
        self._source: int | None = None
        self._seq_offset = 0
        self._ts_offset = 0
        self._last_seq = 0
        self._last_ts = 0
        self.forwarded = 0
        self.octets = 0  # payload bytes forwarded
        self.retransmitted = 0
        self.retransmit_refused = 0
        self.unsent = 0  # packets that came before the subscriber's connection could take them
        self.plis_received = 0  # the subscriber's keyframe requests (PLI/FIR)
        self.nacks_received = 0  # packets the subscriber asked for again
        self.remb_bps: int | None = None
        self.remb_at = 0.0
        self.fraction_lost = 0.0
        self._loss_marks: collections.deque[tuple[float, int, int]] = collections.deque()
        self.retransmit_bps = DEFAULT_RETRANSMIT_BPS
        self._tokens = DEFAULT_RETRANSMIT_BPS / 8 * RETRANSMIT_BURST_S
        self._tokens_at = time.monotonic()
        self._resent: dict[int, float] = {}
        self._burst_at = 0.0
        self._burst = 0
        self._asked_keyframe_at = 0.0
        self.keyframes_for_losses = 0
        handle_rtcp = sender._handle_rtcp_packet
        sender._run_rtp = self._run_rtp  # type: ignore[method-assign]  # no hook in aiortc: packets come by forward
        sender._send_keyframe = self._keyframe_asked  # type: ignore[method-assign]  # no hook: a PLI comes to us
        sender._retransmit = self.retransmit  # type: ignore[method-assign]  # no hook: our history answers NACKs

        async def rtcp(packet: Any) -> None:
            self._feedback(packet)
            await handle_rtcp(packet)

        sender._handle_rtcp_packet = rtcp  # type: ignore[method-assign]  # no hook for the feedback either

    def _keyframe_asked(self) -> None:
        self.plis_received += 1
        self.keyframe_callback()

    def _feedback(self, packet: Any) -> None:
        """Keep what the subscriber says of its link: its REMB and its receiver reports' loss."""
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            if self.sender._ssrc in ssrcs or not ssrcs:
                self.remb_bps, self.remb_at = bitrate, time.monotonic()
        elif isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            for report in packet.reports:
                if report.ssrc == self.sender._ssrc:
                    self._loss_over_window(report.highest_sequence, report.packets_lost)

    def _loss_over_window(self, highest: int, lost: int) -> None:
        """The loss over the last ``LOSS_WINDOW_S``, from the reports' cumulative counts — not one
        report's own fraction: browsers report several times a second, each over a few dozen
        packets, so it swings from 0 to 30 % on a link that loses 3 %, and a layer switch on each
        swing is a freeze."""
        now = time.monotonic()
        marks = self._loss_marks
        marks.append((now, highest, lost))
        while len(marks) > 2 and now - marks[1][0] >= LOSS_WINDOW_S:
            marks.popleft()
        _, first_highest, first_lost = marks[0]
        expected = highest - first_highest
        if expected > 0:
            self.fraction_lost = min(1.0, max(0.0, (lost - first_lost) / expected))

    @property
    def rtt(self) -> float | None:
        """The round trip to the subscriber, from its receiver reports (seconds), once known."""
        rtt: float | None = getattr(self.sender, _S + "rtt")
        return rtt

    def bind(self, payload_type: int | None) -> None:
        """Called once negotiation is done: the payload type to send is known."""
        self._payload_type = payload_type

    def _load_extensions(self) -> None:
        """The mid and header extension ids, known once aiortc has started the sender."""
        ids = getattr(self.sender, _S + "rtp_header_extensions_map")._HeaderExtensionsMap__ids
        self._mid = getattr(self.sender, _S + "mid")
        self._abs_id = ids.abs_send_time or 0
        self._level_id = ids.audio_level or 0
        if ids.mid and self._mid:
            mid = self._mid.encode()
            self._mid_element = bytes([(ids.mid << 4) | (len(mid) - 1)]) + mid
        self._started = True

    async def _run_rtp(self, codec: Any) -> None:
        """Replaces the sender's encode loop, which aiortc starts once the sender is configured:
        packets arrive through `forward` instead."""
        self._load_extensions()
        await _idle_rtp(self.sender, codec)

    def forward(self, packet: RtpPacket, source_key: int, ntp: int) -> None:
        """Send one packet now (``ntp``: the 64-bit NTP time, read once per incoming packet)."""
        sender = self.sender
        transport = sender.transport
        payload_type = self._payload_type
        if payload_type is None or not self._started or transport._state is not State.CONNECTED:
            self.unsent += 1
            return
        if source_key != self._source:
            self._source = source_key
            self._seq_offset = (self._last_seq + 1 - packet.sequence_number) & 0xFFFF
            self._ts_offset = (self._last_ts + 3000 - packet.timestamp) & 0xFFFFFFFF
        seq = (packet.sequence_number + self._seq_offset) & 0xFFFF
        timestamp = (packet.timestamp + self._ts_offset) & 0xFFFFFFFF
        extension = self._mid_element
        if self._abs_id:
            extension = extension + bytes([(self._abs_id << 4) | 2]) + ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big")
        level = packet.extensions.audio_level
        if self._level_id and level is not None:
            extension = extension + bytes([self._level_id << 4, (0x80 if level[0] else 0) | (level[1] & 0x7F)])
        if len(extension) % 4:
            extension = extension + bytes(4 - len(extension) % 4)
        marker = packet.marker
        payload = packet.payload
        data = _HEADER.pack(0x90, (marker << 7) | payload_type, seq, timestamp, sender._ssrc,
                            0xBEDE, len(extension) >> 2) + extension + payload
        self._history[seq % RTP_HISTORY_SIZE] = (seq, timestamp, marker, extension, payload)
        if not _send_now(transport, data):
            self.tasks.spawn(_send_later(transport, data), name="RTP send")
        if ((seq - self._last_seq) & 0xFFFF) < 0x8000 or not self.forwarded:
            self._last_seq, self._last_ts = seq, timestamp
        sender._RTCRtpSender__ntp_timestamp = ntp  # type: ignore[attr-defined]  # aiortc's private, for its SR
        sender._RTCRtpSender__rtp_timestamp = timestamp  # type: ignore[attr-defined]  # aiortc's private, for its SR
        sender._RTCRtpSender__octet_count += len(payload)  # type: ignore[attr-defined]  # private: SR and getStats
        sender._RTCRtpSender__packet_count += 1  # type: ignore[attr-defined]  # private: SR and getStats
        self.forwarded += 1
        self.octets += len(payload)

    def rebase(self) -> None:
        """The next packet continues this subscriber's numbering from the last one sent, whatever
        was skipped in between (its video was paused): no gap for it to count as lost or ask for."""
        self._source = None

    def _unrepairable(self, now: float) -> None:
        """More lost than the repair budget covers (a link back from an outage): one keyframe
        request instead of the subscriber's NACKs running out one by one (seconds of freeze);
        at most one a second per subscriber."""
        if now - self._burst_at > UNREPAIRABLE_WINDOW_S:
            self._burst_at, self._burst = now, 0
        self._burst += 1
        if self._burst >= UNREPAIRABLE_BURST and now - self._asked_keyframe_at >= 1.0:
            self._asked_keyframe_at = now
            self.keyframes_for_losses += 1
            self.keyframe_callback()

    async def retransmit(self, sequence_number: int) -> None:
        """A subscriber's NACK: send the packet again from the history (as RTX if negotiated),
        unless it was resent within a round trip or the repair budget is spent."""
        self.nacks_received += 1
        kept = self._history[sequence_number % RTP_HISTORY_SIZE]
        if kept is None or kept[0] != sequence_number or self._payload_type is None:
            return
        now = time.monotonic()
        again = self._resent.get(sequence_number)
        if again is not None and now - again < max(MIN_RESEND_GAP_S, self.rtt or 0.0):
            self.retransmit_refused += 1
            return
        burst = self.retransmit_bps / 8 * RETRANSMIT_BURST_S
        self._tokens = min(burst, self._tokens + (now - self._tokens_at) * self.retransmit_bps / 8)
        self._tokens_at = now
        if self._tokens < len(kept[4]):
            self.retransmit_refused += 1
            self._unrepairable(now)
            return
        self._tokens -= len(kept[4])
        if len(self._resent) > RTP_HISTORY_SIZE:
            self._resent = {s: t for s, t in self._resent.items() if now - t < 1.0}
        self._resent[sequence_number] = now
        seq, timestamp, marker, extension, payload = kept
        sender = self.sender
        payload_type, ssrc = self._payload_type, sender._ssrc
        rtx_payload_type = getattr(sender, _S + "rtx_payload_type")
        if rtx_payload_type is not None:
            payload = struct.pack("!H", seq) + payload
            payload_type, ssrc = rtx_payload_type, sender._rtx_ssrc
            seq = getattr(sender, _S + "rtx_sequence_number")
            setattr(sender, _S + "rtx_sequence_number", (seq + 1) & 0xFFFF)
        data = _HEADER.pack(0x90, (marker << 7) | payload_type, seq, timestamp, ssrc,
                            0xBEDE, len(extension) >> 2) + extension + payload
        self.retransmitted += 1
        if not _send_now(sender.transport, data):
            await _send_later(sender.transport, data)


async def _send_later(dtls: Any, data: bytes) -> None:
    """aiortc's own way out, for the moments before ICE has nominated a pair."""
    try:
        await dtls._send_rtp(data)
    except ConnectionError:
        pass


def _send_now(dtls: Any, data: bytes) -> bool:
    """The short way out: protect and hand the datagram to the nominated pair's socket.

    aiortc's own path awaits four calls (DTLS → ICE transport → aioice connection → protocol)
    per packet to end in the same ``transport.sendto``; this is that end, reached directly
    (aioice 0.13: ``Connection._nominated[1]`` → pair ``.protocol.transport``, ``.remote_addr``).
    Returns False when there is no nominated pair yet, so the caller takes aiortc's path.
    """
    pair = dtls.transport._connection._nominated.get(1)
    if pair is None:
        return False
    pair.protocol.transport.sendto(dtls._tx_srtp.protect(data), pair.remote_addr)
    return True


async def _idle_rtp(self: RTCRtpSender, codec: Any) -> None:
    """Replaces the sender's encode loop: packets arrive through PacketSender.forward."""
    getattr(self, _S + "rtp_started").set()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        pass
    finally:
        getattr(self, _S + "rtp_exited").set()


check_aiortc()
