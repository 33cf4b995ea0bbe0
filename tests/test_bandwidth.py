"""Bandwidth feedback through the relay, with real aiortc clients: the relay tells each publisher
what to send (REMB), the weakest subscriber's link wins, repairs are budgeted, and the wait for a
lost packet follows the round trip."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server.keys import CALLS
from signaling.ids import participant_id, room_id, track_id
from signaling.relay import feedback
from tests.conftest import Platform, Templates, cloned_database
from tests.helpers import ticket_called, until
from tests.rtc_client import CallClient, in_call


@pytest.fixture
async def database_url(templates: Templates, tmp_path: Path) -> AsyncIterator[str]:
    """Media tests run on SQLite only: the database is not what they exercise."""
    async with cloned_database("sqlite", templates, tmp_path) as url:
        yield url


@pytest.fixture
async def call(platform: Platform) -> AsyncIterator[tuple[CallClient, CallClient, str, Any]]:
    """The worker publishes a camera (small pictures), the clerk subscribes: (worker, clerk,
    the camera's track id, the relay's source for it)."""
    ticket, worker_api, clerk_api = await ticket_called(platform, "带宽群众")
    async with in_call(platform.base, ticket["id"], worker_api.token, clerk_api.token) as (worker, clerk):
        answer = await worker.publish(size=(160, 120))
        lines = answer["sdp"].split("\r\n")
        pt = next(line.split()[0].split(":")[1] for line in lines if line.lower().endswith("opus/48000/2"))
        opus = [line for line in lines if line.startswith(f"a=fmtp:{pt} ")]
        assert opus and "useinbandfec=1" in opus[0] and "usedtx=1" in opus[0], "Opus FEC and DTX asked of the publisher"
        track = track_id(participant_id(worker_api.user['id']), "camera")
        await clerk.wait_frames(track, 10, timeout=30)
        source = platform.app[CALLS].relay.source(room_id(ticket['id']), track)
        yield worker, clerk, track, source


async def test_the_relay_tells_the_publisher_what_its_subscriber_can_take(call) -> None:
    worker, clerk, track, source = call
    rembs = worker.record_remb()
    clerk.quiet_estimator()

    async def thin_link(bitrate: int) -> None:
        while True:
            await clerk.send_remb(bitrate)
            await asyncio.sleep(0.3)

    pacing = asyncio.create_task(thin_link(200_000))
    try:
        audio = feedback.AUDIO_BPS  # the worker's microphone: its room is added to the video's
        await until(lambda: rembs and rembs[-1] <= 200_000 + audio, 15, "a REMB down to the subscriber's 200 kbit/s")
        assert source.target_bps is not None and source.target_bps <= 200_000
        frames = clerk.received[track]
        await clerk.wait_frames(track, 5, timeout=20)
        assert clerk.received[track] > frames, "video keeps flowing at the lower rate"
        pacing.cancel()
        pacing = asyncio.create_task(thin_link(5_000_000))
        await until(lambda: rembs[-1] >= 400_000, 20, "the REMB rising again once the link is wide")
        steps = [b / a for a, b in zip(rembs, rembs[1:], strict=False) if b > a]
        assert steps and max(steps) <= 1.15 + 1e-6, "rises in steps of at most 15 %"
        assert max(rembs) <= feedback.CAMERA_MAX_BPS + audio, "never more than a camera and a microphone need"
    finally:
        pacing.cancel()


async def test_repairs_are_sent_once_a_round_trip_and_within_a_budget(call, platform: Platform) -> None:
    worker, clerk, track, source = call
    (outlet,) = source.outlets
    sender = outlet.sender
    last = clerk.last_sequence()
    lost = [(last - n) & 0xFFFF for n in range(1, 41)]
    before, refused_before = sender.retransmitted, sender.retransmit_refused
    for _ in range(5):  # a storm: the same forty packets asked for five times at once
        await clerk.send_nack(lost)
    # every one of the 200 asks answered (sent or refused): waited for, not slept on (a busy machine)
    await until(lambda: sender.retransmitted - before + sender.retransmit_refused - refused_before >= 200, 10,
                "the relay answering every NACK")
    sent = sender.retransmitted - before
    assert sent <= 40, f"each packet at most once within a round trip, sent {sent}"
    assert sender.retransmit_refused - refused_before >= 160

    sender.retransmit_bps = 8_000  # a budget of 1 kB/s: a quarter second holds 250 bytes
    await asyncio.sleep(0.5)
    before, refused = sender.retransmitted, sender.retransmit_refused
    last = clerk.last_sequence()
    await clerk.send_nack([(last - n) & 0xFFFF for n in range(1, 41)])
    await until(lambda: sender.retransmit_refused - refused >= 35, 5, "repairs refused past the budget")
    assert 1 <= sender.keyframes_for_losses <= 2, "more lost than repairs cover: a keyframe request instead (one a second)"
    assert sender.retransmitted - before <= 3


async def test_the_wait_for_a_lost_packet_follows_the_round_trip(call, platform: Platform) -> None:
    worker, clerk, track, source = call
    assert feedback.gap_wait(None) == pytest.approx(0.12), "no round trip measured yet: three NACKs 40 ms apart"
    assert feedback.renack_after(0.12) == pytest.approx(0.164)
    assert feedback.gap_wait(0.12) == pytest.approx(2 * 0.164 + 0.12 + 0.04), (
        "three NACKs a round trip apart, then a round trip and a margin: a lost repair is asked for twice more")
    assert feedback.gap_wait(2.0) == feedback.GAP_WAIT_MAX_S
    relay = platform.app[CALLS].relay
    publisher = next(p for r in relay.rooms.values() for p in r.participants.values() if track in p.sources)
    # The worker also subscribes (to the clerk's nothing yet): publish the clerk's camera so the
    # worker's own connection back measures the round trip.
    assert "sdp" in await clerk.publish(audio=False, size=(160, 120))
    await until(lambda: any(o.sender.rtt for o in publisher.outlets), 20, "a round trip measured to the publisher")
    await asyncio.sleep(feedback.INTERVAL_S * 1.5)
    rtts = sorted(o.sender.rtt for o in publisher.outlets if o.sender.rtt is not None)
    assert source.gap_wait == pytest.approx(feedback.gap_wait(rtts[len(rtts) // 2]), abs=0.05)


async def test_a_link_too_thin_for_video_keeps_the_audio_and_tries_video_again(call, monkeypatch) -> None:
    worker, clerk, track, source = call
    monkeypatch.setattr(feedback, "RESUME_TRY_S", 3.0)
    monkeypatch.setattr(feedback, "RESUME_GRACE_S", 2.0)
    (outlet,) = source.outlets
    clerk.quiet_estimator()
    link = {"bps": 60_000}
    clerk.incoming_loss = 0.3  # a link too thin for what it is sent loses it

    async def report() -> None:
        while True:
            await clerk.send_remb(link["bps"])
            clerk.incoming_loss = 0.3 if link["bps"] < 200_000 else 0.0
            await asyncio.sleep(0.3)

    pacing = asyncio.create_task(report())
    microphone = track.replace(":camera", ":microphone")
    try:
        await asyncio.sleep(feedback.THIN_FOR_S / 2)  # a moment of low estimate (a link back from an outage)
        link["bps"] = 3_000_000
        await asyncio.sleep(feedback.THIN_FOR_S)
        assert not outlet.paused and not clerk.named("video_paused"), "a moment of low estimate pauses nothing"
        link["bps"] = 60_000
        await until(lambda: outlet.paused, 10, "the video paused for a 60 kbit/s link")
        event = next(e for e in clerk.named("video_paused") if e["paused"])
        assert event["track_id"] == track and event["reason"] == "network"
        forwarded, heard = outlet.sender.forwarded, clerk.received[microphone]
        await asyncio.sleep(1.0)
        assert outlet.sender.forwarded == forwarded, "no video packet to a paused subscriber"
        assert clerk.received[microphone] > heard, "the audio keeps flowing"
        lost = clerk.video_lost()
        link["bps"] = 3_000_000
        await until(lambda: not outlet.paused, 10, "the video tried again")
        assert [e["paused"] for e in clerk.named("video_paused")][-1] is False
        frames = clerk.received[track]
        await clerk.wait_frames(track, 5, timeout=15)
        assert clerk.received[track] > frames, "pictures again after the keyframe"
        # the numbering goes on where the pause stopped it: what was not sent is not a loss to
        # count, nor to ask for (a browser would NACK every packet of the pause)
        assert clerk.video_lost() - lost < 5, (lost, clerk.video_lost())
    finally:
        pacing.cancel()


async def test_a_subscriber_starved_by_the_publishers_line_is_not_paused_for_it(call, monkeypatch) -> None:
    """The poor profile's clerk: a clean link, but the worker's line loses packets for good and the
    relay waits for keyframes, so little reaches the clerk and its browser's estimate (which
    follows what arrives) falls under 120 kbit/s. That is not the clerk's link: its video must not
    be paused (it was, for 10, 20, 40 s at a time, while the worker's picture could have come)."""
    worker, clerk, track, source = call
    (outlet,) = source.outlets
    clerk.quiet_estimator()
    keyframes = worker.ignore_keyframe_requests(10_000, remb_too=True)
    worker.drop_one_video_packet(retransmissions=None)  # the stream waits for a keyframe that does not come
    skipped = source.gaps_skipped
    await until(lambda: source.gaps_skipped > skipped, 5, "the relay giving the packet up")

    async def report() -> None:
        while True:
            await clerk.send_remb(30_000)  # what a browser says when almost nothing arrives
            await asyncio.sleep(0.3)

    pacing = asyncio.create_task(report())
    try:
        await asyncio.sleep(feedback.THIN_FOR_S + feedback.RESUME_GRACE_S + 2)
        assert source.stream(0).rate_bps, "the publisher goes on sending: its packets reach the relay"
        assert not outlet.paused and not clerk.named("video_paused"), "paused for a line that is not its own"
        keyframes["count"] = 0
        await clerk.wait_frames(track, 5, timeout=10)
    finally:
        pacing.cancel()


async def test_a_clean_link_whose_estimate_lags_what_it_takes_is_not_paused(call) -> None:
    """The poor profile's clerk again, after a stall of the worker's picture: its browser's estimate
    was held under 1.5× the little that arrived and climbs some 8 % a second, so for 20 s it says
    30 kbit/s while the clerk takes all of the 100 kbit/s it is sent and loses nothing. Its video
    was paused for 10, then 20, then 40 s. A link that loses nothing is not thin."""
    worker, clerk, track, source = call
    (outlet,) = source.outlets
    clerk.quiet_estimator()

    async def report() -> None:
        while True:
            await clerk.send_remb(30_000)
            await asyncio.sleep(0.3)

    pacing = asyncio.create_task(report())
    try:
        await asyncio.sleep(feedback.THIN_FOR_S + feedback.RESUME_GRACE_S + 2)
        assert (outlet.sent_bps or 0) > 30_000 / feedback.UPLINK_CONGESTED, "it is sent more than its estimate"
        assert outlet.sender.fraction_lost < feedback.LIGHT_LOSS
        assert not outlet.paused and not clerk.named("video_paused"), "paused on a link that loses nothing"
        assert not outlet.remb_low_since, "nor graded thin"
    finally:
        pacing.cancel()


def test_opus_gets_fec_and_dtx_in_every_sdp_the_relay_hands_out() -> None:
    from signaling.relay.sdp import opus_resilient

    with_fmtp = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 stereo=1\r\n"
    assert "a=fmtp:111 stereo=1;useinbandfec=1;usedtx=1;minptime=10" in opus_resilient(with_fmtp)
    without = "m=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 OPUS/48000/2\r\n"
    assert "a=fmtp:96 useinbandfec=1;usedtx=1;minptime=10" in opus_resilient(without)
    video = "m=video 9 UDP/TLS/RTP/SAVPF 97\r\na=rtpmap:97 VP8/90000\r\n"
    assert opus_resilient(video) == video


def test_targets_follow_the_weakest_link_and_loss() -> None:
    sub = feedback.Subscriber
    assert feedback.video_target("camera", None, None, []) is None, "nothing known: no opinion"
    assert feedback.video_target("camera", None, 900_000, [sub(400_000, 0.0)]) == 400_000
    assert feedback.video_target("camera", 400_000, None, [sub(None, 0.3)]) == 340_000, "30 % loss: down 15 %"
    assert feedback.video_target("camera", 400_000, None, [sub(None, 0.0)]) == 420_000, "clean: up 5 %"
    assert feedback.video_target("screen", 3_000_000, None, [sub(None, 0.0)]) == feedback.SCREEN_MAX_BPS
    assert feedback.video_target("camera", 90_000, None, [sub(None, 0.9)]) == feedback.MIN_VIDEO_BPS
    assert feedback.remb_to_send(None, 0, 500_000, 1.0) == 500_000
    assert feedback.remb_to_send(500_000, 0, 520_000, 1.0) is None, "a small wander is not sent"
    assert feedback.remb_to_send(500_000, 0, 520_000, 6.0) == 500_000, "the last value again after a while"
    assert feedback.remb_to_send(500_000, 0, 300_000, 1.0) == 300_000, "a fall at once"
    assert feedback.remb_to_send(500_000, 0, 900_000, 1.0) == 575_000, "a rise in a step"
    assert feedback.video_paused(False, 0.0, 0, 100_000, 100.0) is True, "too thin: pause"
    assert feedback.video_paused(False, 99.0, 1, 100_000, 100.0) is False, "just resumed: give it time"
    assert feedback.video_paused(True, 100.0, 1, None, 105.0) is True, "paused: wait before trying"
    assert feedback.video_paused(True, 100.0, 1, None, 111.0) is False, "then try again"
    assert feedback.video_paused(True, 100.0, 3, None, 135.0) is True, "longer after each pause"


def test_a_subscribers_loss_is_counted_over_two_seconds_not_per_report(monkeypatch) -> None:
    """Browsers report several times a second over a few dozen packets each: one report may say
    30 % on a link that loses 3 %. The relay reads the loss from the reports' cumulative counts
    over the last two seconds, so a layer is not switched (a freeze) on each swing."""
    from signaling.relay import passthrough

    sender = object.__new__(passthrough.PacketSender)
    sender.fraction_lost = 0.0
    sender._loss_marks = collections.deque()
    clock = {"now": 100.0}
    monkeypatch.setattr(passthrough.time, "monotonic", lambda: clock["now"])
    highest = lost = 0
    seen = []
    for i in range(40):  # 10 packets every 0.25 s, one lost in every ~third report: 3–4 %
        highest += 10
        lost += 1 if i % 3 == 0 else 0
        clock["now"] += 0.25
        sender._loss_over_window(highest, lost)
        seen.append(sender.fraction_lost)
    assert max(seen[8:]) < 0.06, seen
    for _ in range(12):  # then a congested link: 20 %
        highest += 10
        lost += 2
        clock["now"] += 0.25
        sender._loss_over_window(highest, lost)
    assert sender.fraction_lost == pytest.approx(0.2, abs=0.02)


def test_an_uplink_that_cannot_carry_the_layers_loses_the_top_one_and_tries_it_again_later() -> None:
    """The poor profile's worker: 300 kbit/s up, two layers of ~120 + ~110 kbit/s and its audio; the
    relay's estimate of the uplink stays under what the layers take, and packets are lost for good.
    After 3 s the top layer goes for everyone (dynacast stops it at the publisher); it is tried
    again 16 s later (8 s when the estimate has room for it), and a try that fails at once doubles
    the wait. A brief dip does nothing; a good uplink caps nothing, nor an estimate that wavers (a
    busy machine) while every lost packet is repaired. (The fifth argument counts the gaps given up
    so far: here one a second.)"""
    rates = [120_000, 110_000]
    cap = feedback.UplinkCap()
    for t in range(1, 20):  # tight, but every gap repaired
        assert cap.update(190_000, rates, 1, 230_000, 0, float(t)) is None
    cap = feedback.UplinkCap()
    assert cap.update(None, rates, 1, 230_000, 0, 1.0) is None  # nothing known yet
    assert cap.update(400_000, rates, 1, 230_000, 1, 2.0) is None  # room: clean and constrained links
    assert cap.update(190_000, rates, 1, 230_000, 2, 3.0) is None  # tight, not for long yet
    assert cap.update(250_000, rates, 1, 230_000, 3, 4.0) is None  # a dip, over
    for t in (5, 6, 7):
        assert cap.update(190_000, rates, 1, 230_000, t, float(t)) is None
    assert cap.update(190_000, rates, 1, 230_000, 8, 8.0) == 0  # 3 s tight: the lowest layer only
    # the top layer still arrives until dynacast stops it; nothing more to take away anyway
    assert cap.update(150_000, rates, 1, 230_000, 12, 12.0) == 0
    assert cap.update(180_000, rates, 0, 120_000, 14, 16.0) == 0  # the lowest alone fits: not tight
    assert cap.update(180_000, rates, 0, 120_000, 14, 23.0) == 0  # no room for the top layer: 16 s
    assert cap.update(180_000, rates, 0, 120_000, 14, 24.0) is None  # tried again
    for t in (25, 26, 27):
        assert cap.update(190_000, rates, 1, 230_000, t, float(t)) is None
    assert cap.update(190_000, rates, 1, 230_000, 28, 28.0) == 0  # the try failed at once
    assert cap.probe_wait == 2 * feedback.PROBE_WAIT_S
    assert cap.update(240_000, rates, 0, 120_000, 28, 28.0 + 2 * feedback.PROBE_WAIT_S - 1) == 0
    assert cap.update(240_000, rates, 0, 120_000, 28, 28.0 + 2 * feedback.PROBE_WAIT_S) is None  # room: sooner


def test_three_layers_step_down_one_at_a_time_to_what_the_uplink_carries() -> None:
    cap = feedback.UplinkCap()
    rates = [150_000, 400_000, 1_200_000]
    for t in range(1, 5):
        top = cap.update(600_000, rates, 2, 1_750_000, t, float(t))
    assert top == 1  # 150 + 400 fit 600
    # the top layer still arrives for a while: no second step until it has had time to stop
    assert cap.update(300_000, rates, 2, 1_750_000, int(5.0), 5.0) == 1
    for t in (7.0, 8.0, 9.0, 10.0):
        top = cap.update(300_000, rates, 1, 550_000, int(t), t)
    assert top == 0


def test_a_publisher_whose_uplink_drops_packets_is_capped_by_its_loss_and_climbs_back() -> None:
    """The poor profile's worker at the start of a call: the browser sends far more than its
    300 kbit/s line carries and the line drops 40 % — which a delay-based estimate need not see.
    Two rounds over 10 % lost cap it at what arrives less half the loss; one round (an outage's
    edge) does nothing; random loss of a few % holds the cap, then probes up slowly; a clean line
    lifts it."""
    cap = feedback.uplink_loss_cap
    assert cap(None, [0.4], 250_000, 0) is None  # one round: an outage's edge looks the same
    first = cap(None, [0.4, 0.4], 250_000, 0)
    assert first == 200_000  # 250 kbit/s arrive, less half of 40 %
    assert cap(first, [0.4, 0.25], 300_000, 1) == int(200_000 * (1 - 0.125))  # never above the last cap
    assert cap(first, [0.05], 150_000, 5) == first  # steady random loss: held ...
    assert cap(first, [0.05], 150_000, feedback.UPLINK_CLIMB_AFTER_S) == int(first * 1.02)  # ... then probed
    assert cap(first, [0.0], 150_000, 1) == int(first * 1.05)  # a clean line climbs at once
    assert cap(2_150_000, [0.0], 150_000, 1) is None  # past any camera: no ceiling
    assert cap(None, [0.05, 0.05], 150_000, 0) is None  # a lossy line that carries what it is sent


def test_a_top_layer_standing_still_while_a_lower_one_flows_goes_at_once() -> None:
    """Random loss breaks every keyframe of the big layer (many packets) and seldom the small
    one's, while the uplink's estimate shows no congestion: the top layer goes for everyone as
    soon as it has stood still most of 3 s, and comes back only after the probe wait."""
    rates = [120_000, 110_000]
    cap = feedback.UplinkCap()
    assert cap.update(400_000, rates, 1, 230_000, 0, 1.0) is None
    assert cap.update(400_000, rates, 1, 230_000, 0, 2.0, top_stalled=True) == 0
    assert cap.update(400_000, rates, 0, 120_000, 0, 3.0) == 0
    assert cap.update(400_000, rates, 0, 120_000, 0, 2.0 + feedback.PROBE_WAIT_S) is None  # room: tried again
    # the try stands still at once: the next waits twice as long
    assert cap.update(400_000, rates, 1, 230_000, 0, 4.0 + feedback.PROBE_WAIT_S, top_stalled=True) == 0
    assert cap.probe_wait == 2 * feedback.PROBE_WAIT_S
