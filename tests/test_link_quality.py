"""Link quality: grades from loss, round trip and bitrate (the same in the browser and the relay),
recorded per ticket and participant, and the supervisors' wall of calls with a poor link (their
queues only, nothing personal). The media side: tests/test_link_media.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from server.domain import links
from server.keys import DOMAIN
from signaling.relay import quality
from tests.conftest import Platform
from tests.helpers import ticket_called

ROOT = Path(__file__).resolve().parents[1]


def test_grades_follow_loss_round_trip_and_bitrate() -> None:
    assert quality.grade(None, None, None) == "good", "nothing known: nothing wrong"
    assert quality.grade(0.01, 0.05, 1_500_000) == "good"
    assert quality.grade(0.05, 0.05, 1_500_000) == "fair"
    assert quality.grade(0.12, 0.05, 1_500_000) == "poor"
    assert quality.grade(0.0, 0.3, None) == "fair"
    assert quality.grade(0.0, 0.6, None) == "poor"
    assert quality.grade(0.0, None, 200_000) == "fair"
    assert quality.grade(0.0, None, 100_000) == "poor"
    assert quality.worst("good", "poor", "fair") == "poor"


def test_the_browser_grades_with_the_same_thresholds() -> None:
    """web-client/src/rtc/quality.ts and signaling/relay/quality.py name the same numbers."""
    source = (ROOT / "web-client" / "src" / "rtc" / "quality.ts").read_text(encoding="utf-8")

    def constant(name: str) -> float:
        found = re.search(rf"export const {name} = ([\d_.]+);", source)
        assert found, f"{name} not in quality.ts"
        return float(found.group(1).replace("_", ""))

    assert constant("FAIR_LOSS") == quality.FAIR_LOSS and constant("POOR_LOSS") == quality.POOR_LOSS
    assert constant("FAIR_RTT_MS") == quality.FAIR_RTT_S * 1000 and constant("POOR_RTT_MS") == quality.POOR_RTT_S * 1000
    assert constant("FAIR_BPS") == quality.FAIR_BPS and constant("POOR_BPS") == quality.POOR_BPS


async def test_recorded_links_add_up_per_call_and_point(platform: Platform) -> None:
    """The domain on its own (SQLite and PostgreSQL): seconds poor add up, the worst grade stays,
    a call is "poor now" only while its last sample is fresh and the call open."""
    ticket, worker_api, clerk_api = await ticket_called(platform, "链路群众")
    supervisor, outsider = await platform.login("supervisor1"), await platform.login("supervisor2")
    domain = platform.app[DOMAIN]
    worker_id, clerk_id = worker_api.user["id"], clerk_api.user["id"]
    for grade in ("good", "poor", "poor", "fair"):
        async with domain.unit() as uow:
            await links.record(uow, ticket["id"], [
                links.LinkSample(worker_id, "worker", grade, 0.15 if grade == "poor" else 0.0, 0.08, 90_000),
                links.LinkSample(clerk_id, "clerk", "good", 0.0, 0.02, 1_200_000),
            ], 5.0)
        platform.clock.advance(seconds=5)
    wall = (await supervisor.get("/api/dashboard/links")).body
    assert wall["poor_now"] == [], "the last sample was fair: not poor now"
    (point,) = [p for p in wall["extension_points"] if p["extension_point_id"] == ticket["extension_point_id"]]
    assert point["calls_today"] == 1 and point["poor_calls_today"] == 1 and point["poor_s_today"] == 10

    async with domain.unit() as uow:
        await links.record(uow, ticket["id"], [links.LinkSample(worker_id, "worker", "poor", 0.2, 0.3, 80_000)], 5.0)
    wall = (await supervisor.get("/api/dashboard/links")).body
    (call,) = wall["poor_now"]
    assert call["ticket_id"] == ticket["id"] and call["number"] == ticket["number"]
    worker = next(p for p in call["participants"] if p["role"] == "worker")
    assert worker == {"role": "worker", "grade": "poor", "worst_grade": "poor", "poor_s": 15, "loss_pct": 20.0,
                      "rtt_ms": 300, "bitrate_kbps": 80}
    assert "链路群众" not in json.dumps(wall, ensure_ascii=False), "no personal data on the wall"
    assert (await outsider.get("/api/dashboard/links")).body == {**wall, "poor_now": [], "extension_points": []}, \
        "a supervisor of another centre sees none of it"
    assert (await worker_api.get("/api/dashboard/links")).code == "role_forbidden"

    platform.clock.advance(seconds=links.LIVE_S + 1)
    assert (await supervisor.get("/api/dashboard/links")).body["poor_now"] == [], "an old sample is not now"
    async with domain.unit() as uow:
        with pytest.raises(Exception) as refused:
            await links.record(uow, ticket["id"], [links.LinkSample(worker_id, "worker", "awful")], 5.0)
    assert getattr(refused.value, "code", "") == "invalid_link_sample"


def test_an_uplink_estimate_counts_only_when_it_stays_low_and_packets_go_missing() -> None:
    """A busy relay reads its own late reads as queueing: on a loaded CI machine a clean
    loopback call's uplink estimate fell to 117 kbit/s and the wall listed the call as poor.
    The estimate counts once it has stayed under what arrives for 3 s while packets were lost."""
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    from signaling.relay.relay import Source
    from signaling.tasks import Tasks

    vp8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    source = Source("u1:camera", "u1", "video", "camera", vp8, None, 1, Tasks("test"))  # type: ignore[arg-type]
    (stream,) = source.streams
    stream.rate_bps = 600_000
    source.on_estimate(117_000)
    for now in (100.0, 101.0, 102.0, 103.5, 110.0):
        source.note_uplink(now)
        assert not source.uplink_congested(now), f"no packet lost: only delay, at {now}"
    stream.gaps_recovered += 1  # a packet lost on the uplink (and repaired)
    source.note_uplink(111.0)
    assert source.uplink_congested(111.0)
    source.on_estimate(590_000)  # back over 80 % of what arrives
    source.note_uplink(112.0)
    assert not source.uplink_congested(112.0)
    source.on_estimate(117_000)
    source.note_uplink(113.0)
    stream.gaps_skipped += 1
    assert not source.uplink_congested(115.0), "low again for 2 s only"
    source.note_uplink(116.0)
    assert source.uplink_congested(116.0)
