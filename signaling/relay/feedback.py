"""Bandwidth feedback: what each publisher is told to send, what a subscriber's repairs may
cost, and how long the relay waits for a lost packet.

A relay that forwards encoded media cannot shrink a picture for one subscriber; until there
are simulcast layers, the publisher must send what its *weakest* subscriber can take. Once a
second the relay works out, for every video source:

- its target: the least of a cap (camera 1.5 Mbit/s, screen 2.5 Mbit/s), what the publisher's
  uplink carries (aiortc's delay-based estimate of the packets arriving), what each subscriber
  says its link takes (its REMB), and a loss-based step for subscribers that send no REMB
  (down by half the loss past 10 %, up 5 % a second under 2 %); never under 80 kbit/s;
- and sends the publisher one REMB with the sum of its video targets plus its audio. Browsers
  treat REMB as a ceiling for everything they send on that connection.

Audio first: a subscriber whose link takes less than 120 kbit/s gets no video for a while (its
audio keeps flowing, its page says so), and its link no longer holds everyone else's picture
down; video is tried again after 10 s, then 20, 40, 60 s while the link stays that thin.

Each subscriber's repairs may take a quarter of what it receives (at least 100 kbit/s). The wait
for a lost packet follows the round trip to the publisher (1.5 × RTT + 30 ms, 80–600 ms): on a
120 ms link a repair can arrive before the relay gives up and asks for a keyframe.
"""

from __future__ import annotations

from dataclasses import dataclass

INTERVAL_S = 1.0
REMB_REFRESH_S = 5.0
CAMERA_MAX_BPS = 1_500_000
SCREEN_MAX_BPS = 2_500_000
MIN_VIDEO_BPS = 80_000
AUDIO_BPS = 64_000
ESTIMATE_FRESH_S = 5.0
HEAVY_LOSS = 0.10
LIGHT_LOSS = 0.02
GAP_WAIT_MIN_S = 0.08
GAP_WAIT_MAX_S = 0.6
PAUSE_BELOW_BPS = 120_000
RESUME_TRY_S = 10.0
RESUME_GRACE_S = 4.0
RESUME_TRY_MAX_S = 60.0
RETRANSMIT_SHARE = 0.25
RETRANSMIT_MIN_BPS = 100_000


@dataclass(frozen=True)
class Subscriber:
    """What one subscriber of a source reported: its REMB if recent, its receiver reports' loss."""

    remb_bps: int | None
    fraction_lost: float


def cap_for(source: str) -> int:
    return SCREEN_MAX_BPS if source == "screen" else CAMERA_MAX_BPS


def video_target(source: str, previous: int | None, uplink_bps: int | None,
                 subscribers: list[Subscriber]) -> int | None:
    """The most this video source should send now (bit/s); None while nothing is known yet
    (no estimate of the uplink, no subscriber's, no loss): the publisher's own start is better."""
    cap = cap_for(source)
    estimates = [s.remb_bps for s in subscribers if s.remb_bps] + ([uplink_bps] if uplink_bps else [])
    worst_loss = max((s.fraction_lost for s in subscribers), default=0.0)
    if previous is None and not estimates and worst_loss <= HEAVY_LOSS:
        return None
    target = min(cap, previous or min(estimates, default=cap))
    if worst_loss > HEAVY_LOSS:
        target = int(target * (1 - worst_loss / 2))
    elif worst_loss < LIGHT_LOSS:
        target = int(target * 1.05)
    return max(MIN_VIDEO_BPS, min([target, cap, *estimates]))


def publisher_total(video_targets: list[int], audio_sources: int) -> int:
    """The REMB a publisher gets: its video targets and room for its audio."""
    return sum(video_targets) + audio_sources * AUDIO_BPS


def remb_to_send(last: int | None, last_at: float, total: int, now: float) -> int | None:
    """The REMB to send now, or None: a fall of over 10 % at once, a rise in steps of at most
    15 %, the same value again every few seconds. Encoders restart on big jumps (aiortc's at
    every change over 10 %): a target that wanders a little each second must not reach them."""
    if last is None:
        return total
    if total < last * 0.9:
        return total
    if total > last * 1.1:
        return min(total, int(last * 1.15))
    if now - last_at >= REMB_REFRESH_S:
        return last
    return None


def video_paused(paused: bool, since: float, pauses: int, remb_bps: int | None, now: float) -> bool:
    """Whether a subscriber's video stays (or goes) paused for its link (audio first). ``since``:
    when it last changed; a resumed video gets a few seconds for the link's estimate to grow."""
    if not paused:
        return remb_bps is not None and remb_bps < PAUSE_BELOW_BPS and now - since >= RESUME_GRACE_S
    return now - since < min(RESUME_TRY_MAX_S, RESUME_TRY_S * 2 ** max(0, pauses - 1))


def gap_wait(rtt: float | None) -> float:
    """How long a gap in a source's packets may wait for the relay's NACK to bring it back."""
    if rtt is None:
        return GAP_WAIT_MIN_S
    return min(GAP_WAIT_MAX_S, max(GAP_WAIT_MIN_S, 1.5 * rtt + 0.03))


def retransmit_budget(receives_bps: int) -> int:
    """What a subscriber's repairs may take (bit/s), from what it receives."""
    return max(RETRANSMIT_MIN_BPS, int(receives_bps * RETRANSMIT_SHARE))
