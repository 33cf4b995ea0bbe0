"""Link quality — 链路质量: good / fair / poor for each participant of a room, read from what the
relay already measures (nothing is sent for it).

The grade of a link is the worst of three figures (docs/protocol.md "Link quality"; the browser
grades its own tiles with the same numbers in web-client/src/rtc/quality.ts):

========  ==============  ===========  ===================
grade     loss            round trip   bitrate
========  ==============  ===========  ===================
poor      ≥ 10 %          ≥ 500 ms     < 120 kbit/s
fair      ≥ 3 %           ≥ 250 ms     < 300 kbit/s
good      below those
========  ==============  ===========  ===================

For the relay, a participant's link is its downlink — the loss of its receiver reports, the
round trip measured from them and the REMB it sends, over every track it receives; a video
paused for its link (audio first) is poor — and its uplink, what aiortc's delay-based estimator
says its camera's packets arrive at. Both estimates follow what arrives (a picture in its low
simulcast layer, a still one, makes them small on a fine link), so they count only when they
show congestion: under half of what the relay sends that participant, or under 80 % of what
it receives from it for 3 s while packets from it go missing (a busy relay's own late reads look
like queueing to a delay-based estimator: on a loaded machine a clean loopback call's estimate
fell to 117 kbit/s for a moment).
Read-only: it changes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from signaling.relay import feedback

if TYPE_CHECKING:
    from signaling.relay.relay import Participant, Relay, Source

GOOD, FAIR, POOR = "good", "fair", "poor"
GRADES = (GOOD, FAIR, POOR)
FAIR_LOSS, POOR_LOSS = 0.03, 0.10
FAIR_RTT_S, POOR_RTT_S = 0.25, 0.5
FAIR_BPS, POOR_BPS = 300_000, feedback.PAUSE_BELOW_BPS


def worst(*grades: str) -> str:
    return max(grades, key=GRADES.index, default=GOOD)


def grade(loss: float | None, rtt_s: float | None, bitrate_bps: float | None) -> str:
    """The grade of one link from its loss (0–1), round trip (s) and bitrate (bit/s); an
    unknown figure does not count."""
    result = GOOD
    if loss is not None:
        result = worst(result, POOR if loss >= POOR_LOSS else FAIR if loss >= FAIR_LOSS else GOOD)
    if rtt_s is not None:
        result = worst(result, POOR if rtt_s >= POOR_RTT_S else FAIR if rtt_s >= FAIR_RTT_S else GOOD)
    if bitrate_bps is not None:
        result = worst(result, POOR if bitrate_bps < POOR_BPS else FAIR if bitrate_bps < FAIR_BPS else GOOD)
    return result


@dataclass(frozen=True)
class LinkReport:
    """One participant's link as the relay sees it now."""

    participant_id: str
    grade: str
    loss: float | None  # the worst receiver-report loss of what it receives (0–1)
    rtt_s: float | None  # the longest round trip to it
    downlink_bps: int | None  # its REMB, if recent
    uplink_bps: int | None  # what its camera's packets arrive at
    video_paused: int  # videos paused for its link


def _report(participant: Participant, sources: dict[str, Source], now: float) -> LinkReport:
    outlets = [o for o in participant.outlets if o.track_id is not None]
    losses = [o.sender.fraction_lost for o in outlets]
    rtts = [o.sender.rtt for o in outlets if o.sender.rtt is not None]
    sent = 0  # what the relay sends it now (bit/s), over the videos it receives
    for outlet in outlets:
        source = sources.get(outlet.track_id or "")
        if outlet.kind == "video" and not outlet.paused and source is not None and not source.muted:
            # what it was really forwarded lately, when that is less than its layer's rate: a
            # publisher that just slowed down (or a layer waiting for a keyframe) is no sign of a
            # thin link when the subscriber's estimate falls with what arrives
            rate = source.stream(outlet.layer).rate_bps or 0
            sent += rate if outlet.sent_bps is None else min(rate, outlet.sent_bps)
    # an estimate under half what it is sent, for a while: a browser's starts low and climbs in
    # the first seconds of a call, which is no thin link
    rembs = [o.sender.remb_bps for o in outlets
             if o.sender.remb_bps is not None and now - o.sender.remb_at < feedback.ESTIMATE_FRESH_S
             and o.sender.remb_bps < sent * feedback.LAYER_TOO_BIG
             and o.remb_low_since and now - o.remb_low_since >= feedback.THIN_FOR_S]
    paused = sum(1 for o in outlets if o.paused)
    uplinks = [s.uplink_bps for s in participant.sources.values()
               if s.kind == "video" and not s.muted and s.uplink_bps is not None and s.uplink_congested(now)]
    loss = max(losses) if losses else None
    rtt = max(rtts) if rtts else None
    down = min(rembs) if rembs else None
    up = min(uplinks) if uplinks else None
    result = worst(grade(loss, rtt, down), grade(None, None, up), POOR if paused else GOOD)
    return LinkReport(participant.participant_id, result, loss, rtt, down, up, paused)


def room_links(relay: Relay, room_id: str) -> dict[str, LinkReport]:
    """The link of every participant in a room that has media (empty when the room is not
    open here)."""
    room = relay.rooms.get(room_id)
    if room is None:
        return {}
    now = time.monotonic()
    sources = {s.track_id: s for p in room.participants.values() for s in p.sources.values()}
    return {pid: _report(p, sources, now) for pid, p in room.participants.items()
            if p.publish_pc is not None or p.subscribe_pc is not None}
