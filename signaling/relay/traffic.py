"""What the relay has carried, as counters that only grow (for /metrics, server/metrics.py).

The per-packet path only adds to plain int attributes of the object it is in (a publisher's
`Stream`, a subscriber's `PacketSender`); nothing here runs per packet. When a stream or a sender
goes away (its participant left, the room closed, a re-publish replaced it) the relay adds its
counts into one `Traffic` it keeps, so a total never falls when a call ends. A scrape adds the
live objects' counts to that.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from signaling.relay.passthrough import PacketSender
    from signaling.relay.relay import Source

#: Why a packet that reached the relay was not forwarded.
DROP_REASONS = ("keyframe_wait", "gap_skipped", "late", "not_connected")


@dataclass
class Traffic:
    received_packets: int = 0  # from publishers (after SRTP and RTX unwrapping)
    received_bytes: int = 0  # RTP payload bytes
    forwarded_packets: int = 0  # to subscribers, one per subscriber
    forwarded_bytes: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    gaps_recovered: int = 0  # a lost packet came back (NACK) in time
    gaps_skipped: int = 0  # it did not: the stream resumed at a keyframe
    keyframe_waits: int = 0  # a stream stopped until the publisher's next keyframe
    plis_sent: int = 0  # keyframe requests (PLI) to publishers
    plis_received: int = 0  # keyframe requests (PLI/FIR) from subscribers
    nacks_sent: int = 0  # NACKs to publishers
    nacks_received: int = 0  # packets subscribers asked for again
    retransmitted: int = 0  # of those, sent again
    retransmit_refused: int = 0  # not sent again: within a round trip, or past the repair budget

    def add_source(self, source: Source) -> None:
        self.nacks_sent += source.nacks_sent
        for s in source.streams:
            self.received_packets += s.packets
            self.received_bytes += s.octets
            self.dropped["keyframe_wait"] += s.dropped_waiting
            self.dropped["gap_skipped"] += s.dropped_skipped
            self.dropped["late"] += s.dropped_late
            self.gaps_recovered += s.gaps_recovered
            self.gaps_skipped += s.gaps_skipped
            self.keyframe_waits += s.keyframe_waits
            self.plis_sent += s.keyframes_requested

    def add_sender(self, sender: PacketSender) -> None:
        self.forwarded_packets += sender.forwarded
        self.forwarded_bytes += sender.octets
        self.dropped["not_connected"] += sender.unsent
        self.plis_received += sender.plis_received
        self.nacks_received += sender.nacks_received
        self.retransmitted += sender.retransmitted
        self.retransmit_refused += sender.retransmit_refused

    def copy(self) -> Traffic:
        return dataclasses.replace(self, dropped=dict(self.dropped))
