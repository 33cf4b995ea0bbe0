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

Audio first: a subscriber whose link takes less than 120 kbit/s for 3 s (its REMB, when under what it is
sent: a browser's REMB follows what arrives; in layers, once on the lowest) gets no video for a while (its
audio keeps flowing, its page says so), and its link no longer holds everyone else's picture
down; video is tried again after 10 s, then 20, 40, 60 s while the link stays that thin.

A publisher's uplink that cannot carry its layers (the relay's estimate of what arrives stays
under 90 % of the layers' rate for 3 s, and a packet lost on it was never repaired meanwhile: the
line is queueing and dropping — a delay-based estimate alone wavers on a busy machine) loses its top layer
for every subscriber, however good their links: dynacast then stops it at the publisher, and the
lower layers get the line to themselves. So does a top layer that stands still most of 3 s while
a lower one flows (random loss breaks every big keyframe of it, and never shows in an estimate
from arrivals): its subscribers step down to a layer that moves instead of a frozen picture.
The layer is tried again after 8 s if the estimate has
room for it, else 16 s; each try that fails at once doubles the wait, up to 64 s (`UplinkCap`).

Each subscriber's repairs may take a quarter of what it receives (at least 100 kbit/s). The wait
for a lost packet follows the round trip to the publisher: a packet still missing a round trip
after its NACK is asked for again, up to `REPAIR_ROUNDS` NACKs in all, and the relay gives it up
a round trip and a margin after the last (3.4 × RTT + 80 ms, at most 1 s; 120 ms while no round
trip is measured yet). On a 200 ms link with 3 % loss each way a NACK or its retransmission is
lost about once in 17: with three rounds a packet is given up (a keyframe wait, ~1 s frozen)
about once in 5,000 lost instead of once in 300 with two, and a repair from the third round
lands ~0.75 s after the loss, a wait the subscriber's page mostly covers by holding frames
longer (web-client playout.ts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

INTERVAL_S = 1.0
REMB_REFRESH_S = 5.0
CAMERA_MAX_BPS = 1_500_000
SCREEN_MAX_BPS = 2_500_000
MIN_VIDEO_BPS = 80_000
AUDIO_BPS = 64_000
ESTIMATE_FRESH_S = 5.0
HEAVY_LOSS = 0.10
LIGHT_LOSS = 0.02
RENACK_MIN_S = 0.04
GAP_WAIT_MAX_S = 1.0
REPAIR_ROUNDS = 3  # NACKs for one lost packet (the first from aiortc's generator)
PAUSE_BELOW_BPS = 120_000
THIN_FOR_S = 3.0  # a link's estimate must stay under PAUSE_BELOW_BPS this long before its video pauses
RESUME_TRY_S = 10.0
RESUME_GRACE_S = 4.0
RESUME_TRY_MAX_S = 60.0
PROBE_WAIT_S = 8.0
PROBE_WAIT_MAX_S = 64.0
SWITCH_WAIT_S = 15.0  # a layer asked for that has not started by then is given up (a browser's
# estimate must grow before it turns an upper layer on)
LAYER_ABSENT_S = 4.0  # a layer asked for this long that has never come is one the publisher cannot send
PROBE_CONFIRM_S = 6.0
REMB_FALL = 0.9  # an estimate 10 % under the last one: the link is congested
REMB_RISE = 1.02
LAYER_TOO_BIG = 0.5  # an estimate under half a layer's rate and not growing: it does not fit
UPLINK_CONGESTED = 0.8  # the uplink's estimate this far under what arrives: congestion
LAYER_FITS = 0.85  # a layer fits an estimate this much over 85 % of its rate
LAYER_OFF_AFTER_S = 5.0
LAYER_UP_HEADROOM = 0.8
LAYER_HOLD_S = 3.0  # a layer is held this long before going up (an estimate lags a step down: no flapping)
LAYER_NOMINAL_BPS = {2: (300_000, 1_500_000), 3: (150_000, 500_000, 1_500_000)}  # by number of layers
SIMULCAST_MAX_BPS = 2_200_000
UPLINK_TIGHT = 0.9  # the uplink's estimate under this share of its layers' rate: it does not carry them
UPLINK_HOLD_S = 3.0  # ... for this long before the top layer goes
LAYER_STALLED_SHARE = 0.5  # a layer standing still this share of the last 3 s (keyframes broken on the way) is failing
UPLINK_TRIAL_S = 15.0  # a layer back for less than this that goes again doubles the wait to the next try
UPLINK_LOSS_MIN_PACKETS = 20  # a round with fewer first transmissions expected says nothing of loss
UPLINK_CLIMB_AFTER_S = 10.0  # a loss-based cap held this long under heavy loss's threshold climbs slowly
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
    (no estimate of the uplink, no subscriber's, no loss): the publisher's own start is better.
    The weakest subscriber's link wins (a source in layers: `layered_target`)."""
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


def uplink_loss_cap(previous: int | None, losses: list[float], arriving_bps: int, held_s: float) -> int | None:
    """A ceiling on what a publisher sends, from the loss on its own uplink (the relay counts the
    first transmissions that never came; its delay-based estimate misses a line that drops rather
    than queues): GCC's loss-based rule. Over 10 % lost in each of the last two rounds (one
    round's burst is an outage's edge, not congestion): what arrives, less half the loss. Under
    2 %: up 5 % a round; between, held — and after ``UPLINK_CLIMB_AFTER_S`` up 2 % a round, so a
    line with steady random loss is probed again (its congestion shows as loss over 10 %).
    None: no ceiling (it climbed back past what any camera sends)."""
    if len(losses) >= 2 and min(losses[-2:]) > HEAVY_LOSS and arriving_bps > 0:
        base = arriving_bps if previous is None else min(previous, arriving_bps)
        return max(MIN_VIDEO_BPS, int(base * (1 - losses[-1] / 2)))
    if previous is None or not losses:
        return previous
    if losses[-1] < LIGHT_LOSS:
        raised = int(previous * 1.05)
    elif losses[-1] <= HEAVY_LOSS and held_s >= UPLINK_CLIMB_AFTER_S:
        raised = int(previous * 1.02)
    else:
        return previous
    return None if raised >= SIMULCAST_MAX_BPS else raised


def publisher_total(video_targets: list[int], audio_sources: int) -> int:
    """The REMB a publisher gets: its video targets and room for its audio."""
    return sum(video_targets) + audio_sources * AUDIO_BPS


def remb_to_send(last: int | None, last_at: float, total: int, now: float, stepped: bool = True) -> int | None:
    """The REMB to send now, or None: a fall of over 10 % at once, a rise in steps of at most
    15 %, the same value again every few seconds. Encoders restart on big jumps (aiortc's at
    every change over 10 %): a target that wanders a little each second must not reach them.
    A publisher of layers (a browser) gets a rise at once (``stepped`` False): it is only a
    ceiling, and its upper layers start only under a ceiling that has room for them."""
    if last is None:
        return total
    if total < last * 0.9:
        return total
    if total > last * 1.1:
        return min(total, int(last * 1.15)) if stepped else total
    if now - last_at >= REMB_REFRESH_S:
        return last
    return None


def link_losing(fraction_lost: float) -> bool:
    """Whether a subscriber's link loses what it is sent (its receiver reports, over the last two
    seconds): only then is an estimate under what it is sent a link too thin for it."""
    return fraction_lost >= LIGHT_LOSS


def video_paused(paused: bool, since: float, pauses: int, remb_bps: int | None, now: float) -> bool:
    """Whether a subscriber's video stays (or goes) paused for its link (audio first). ``since``:
    when it last changed; a resumed video gets a few seconds for the link's estimate to grow."""
    if not paused:
        return remb_bps is not None and remb_bps < PAUSE_BELOW_BPS and now - since >= RESUME_GRACE_S
    return now - since < min(RESUME_TRY_MAX_S, RESUME_TRY_S * 2.0 ** max(0, pauses - 1))


def gap_wait(rtt: float | None) -> float:
    """How long a gap in a source's packets may wait for the relay's NACKs to bring it back: the
    last of `REPAIR_ROUNDS` NACKs (one every `renack_after`), then a round trip and a margin."""
    last_nack = (REPAIR_ROUNDS - 1) * renack_after(rtt)
    return min(GAP_WAIT_MAX_S, last_nack + (rtt or 0.0) + 0.04)


def renack_after(rtt: float | None) -> float:
    """When a gap still open is asked for again: a round trip and a margin after the last NACK."""
    return max(RENACK_MIN_S, 1.2 * (rtt or 0.0) + 0.02)


def retransmit_budget(receives_bps: int) -> int:
    """What a subscriber's repairs may take (bit/s), from what it receives."""
    return max(RETRANSMIT_MIN_BPS, int(receives_bps * RETRANSMIT_SHARE))


def layer_rates(measured: list[int | None]) -> list[int]:
    """What each layer (lowest first) takes: measured when it is being sent, else its nominal
    rate (the layers a client publishes are described in docs/protocol.md)."""
    nominal = LAYER_NOMINAL_BPS.get(len(measured)) or (LAYER_NOMINAL_BPS[3] + (CAMERA_MAX_BPS,) * len(measured))[
        : len(measured)]
    return [m if m else n for m, n in zip(measured, nominal, strict=True)]


@dataclass(frozen=True)
class LayerChoice:
    layer: int
    trial: bool  # trying this layer: the subscriber's estimate has not shown room for it yet


def choose_layer(current: int, rates: list[int], remb_bps: int | None, last_remb_bps: int | None,
                 fraction_lost: float, since_change: float, probe_wait: float, trial: bool) -> LayerChoice:
    """The layer a subscriber should get now (index into ``rates``, lowest first).

    A receiver's estimate (REMB) follows what it receives — it hardly grows past it — so it
    cannot say that a higher layer would fit (Chrome's grows some 8 % a second after a switch
    up); it does say when the link is congested, by falling, or by staying far under the layer
    without growing. So: down on congestion (heavy loss, a falling estimate under the layer's
    rate, or one under half of it and not rising) to the layer the estimate carries; up when the
    estimate has room for the next layer and the current one has been held ``LAYER_HOLD_S`` (an
    estimate lags a step down, and each switch costs a keyframe); and after ``probe_wait`` seconds of a clean link, a *trial* of the next layer up,
    kept when ``PROBE_CONFIRM_S`` pass without congestion, ended by the first sign of it (and a
    failed trial doubles the wait, `next_probe_wait`).
    """
    top = len(rates) - 1
    rate = rates[current]
    falling = remb_bps is not None and last_remb_bps is not None and remb_bps < last_remb_bps * REMB_FALL
    steady = remb_bps is not None and last_remb_bps is not None and remb_bps <= last_remb_bps * REMB_RISE
    congested = fraction_lost > HEAVY_LOSS or (remb_bps is not None and remb_bps < rate and (
        falling or (remb_bps < rate * LAYER_TOO_BIG and steady)))
    if congested and current > 0:
        if trial or remb_bps is None:
            return LayerChoice(current - 1, False)
        fits = [i for i, r in enumerate(rates) if r * LAYER_FITS <= remb_bps]
        return LayerChoice(min(current - 1, fits[-1] if fits else 0), False)
    if trial:
        return LayerChoice(current, since_change < PROBE_CONFIRM_S)
    if remb_bps is None:
        return LayerChoice(top if fraction_lost < LIGHT_LOSS else current, False)
    if current < top and rates[current + 1] <= remb_bps * LAYER_UP_HEADROOM and since_change >= LAYER_HOLD_S:
        return LayerChoice(current + 1, False)
    if current < top and fraction_lost < LIGHT_LOSS and since_change >= probe_wait:
        return LayerChoice(current + 1, True)
    return LayerChoice(current, False)


def layered_target(rates_nominal: list[int], uplink_bps: int | None, incoming_bps: int) -> int:
    """What a publisher of layers may send: room for every layer — not what its subscribers'
    estimates say (each takes the layer it can; which layers are sent at all is dynacast's
    business, `active_layers`), and under its uplink only when that shows congestion (an
    estimate well under what arrives). A browser's own estimate grows only under a ceiling with
    room: a lower one would keep its upper layers off for good."""
    target = min(SIMULCAST_MAX_BPS, int(sum(rates_nominal) * 1.1))
    if uplink_bps is not None and uplink_bps < incoming_bps * UPLINK_CONGESTED:
        target = min(target, uplink_bps)
    return max(MIN_VIDEO_BPS, target)


def next_probe_wait(probe_wait: float, trial_failed: bool, held_s: float) -> float:
    """After a change of layer: a failed trial doubles the wait before the next one; a layer
    held a good while brings the wait back to its start."""
    if trial_failed:
        return min(PROBE_WAIT_MAX_S, probe_wait * 2)
    if held_s > PROBE_WAIT_MAX_S:
        return PROBE_WAIT_S
    return probe_wait


def active_layers(wanted: set[int], count: int) -> list[int]:
    """The layers the publisher should send (dynacast): those some subscriber gets or is moving
    to, and always the lowest, so a subscriber whose link falls has somewhere to go at once."""
    return sorted(wanted | {0}) if count > 1 else [0]


@dataclass
class UplinkCap:
    """The highest layer a publisher's uplink carries (None: all it sends), with the state of
    the decision: since when the uplink has been tight, when the cap last changed, how long to
    wait before trying the next layer up again."""

    top: int | None = None
    tight_since: float = 0.0
    changed_at: float = 0.0
    probe_wait: float = field(default=PROBE_WAIT_S)
    lifted: bool = False  # the last change let a layer back
    skipped_mark: int = 0  # gaps given up when the uplink became tight

    def update(self, uplink_bps: int | None, rates: list[int], live_top: int, incoming_bps: int,
               skipped: int, now: float, *, top_stalled: bool = False) -> int | None:
        """Once a feedback round: ``rates`` of the layers (lowest first), ``live_top`` the highest
        layer arriving now, ``incoming_bps`` what arrives of all of them, ``skipped`` how many gaps
        in them so far were given up (never repaired). Down one layer when the uplink stays tight
        and loses packets for good meanwhile (never under the lowest); up one after ``probe_wait`` of an uplink
        that is not (twice that while its estimate has no room for the layer: an estimate grows
        only so far past what arrives, so room cannot be the only way back); a layer that came
        back and went again within ``UPLINK_TRIAL_S`` doubles the wait.

        ``top_stalled``: the highest layer arriving has stood still most of the last 3 s (a gap given
        up, then a keyframe that does not get through whole) while a lower one flows — a lossy line breaks every big keyframe of it, and an estimate
        from what arrives need not show it (random loss is not queueing). That layer goes at once."""
        tight = uplink_bps is not None and incoming_bps > 0 and uplink_bps < incoming_bps * UPLINK_TIGHT
        if not tight:
            self.tight_since = 0.0
        elif not self.tight_since:
            self.tight_since, self.skipped_mark = now, skipped
        top = live_top if self.top is None else min(self.top, live_top)
        # a layer just capped goes on arriving until dynacast stops it: no second step meanwhile
        settled = self.top is None or self.lifted or now - self.changed_at >= 2 * UPLINK_HOLD_S
        stalled = top_stalled and top > 0 and top == live_top and settled
        if stalled or (tight and top > 0 and settled and now - self.tight_since >= UPLINK_HOLD_S
                       and skipped > self.skipped_mark):
            fits = [top - 1] if stalled else [i for i in range(top) if sum(rates[: i + 1]) <= (uplink_bps or 0)]
            came_back_lately = self.lifted and now - self.changed_at < UPLINK_TRIAL_S
            self.probe_wait = min(PROBE_WAIT_MAX_S, self.probe_wait * 2) if came_back_lately else PROBE_WAIT_S
            self.top, self.changed_at, self.tight_since, self.lifted = (fits[-1] if fits else 0), now, 0.0, False
        elif self.top is not None and not tight and now - self.changed_at >= self.probe_wait * (
                1 if (uplink_bps or 0) >= sum(rates[: self.top + 2]) else 2):
            self.top = None if self.top + 1 >= len(rates) - 1 else self.top + 1
            self.changed_at, self.lifted = now, True
        return self.top
