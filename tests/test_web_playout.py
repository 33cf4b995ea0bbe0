"""Smooth playout in real Chromium: when the worker's frames reach the clerk late (as a packet
repaired over a village link's round trip does), the clerk's page holds received frames a little
longer (RTCRtpReceiver.jitterBufferTarget, web-client/src/rtc/playout.ts), so the same late
frames stop freezing the picture — and frames late by less than a freeze raise the hold before
any freeze comes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from playwright.async_api import Browser, Page

from server.keys import CALLS
from signaling.ids import room_id
from tests.conftest import Platform
from tests.web import browser, clerk_watching_worker, database_url, eventually, settings  # noqa: F401  (fixtures of every browser test)

HOLD_EVERY_S = 1.5
HOLD_S = 0.35  # a repair over a 200 ms round trip, and the relay's wait for it


async def playout(page: Page, track_id: str) -> dict[str, Any]:
    """The receiving page's hold (ms, null: the browser's own) and freezes of one received video."""
    return await page.evaluate("""async (id) => {
        const call = window.yb.call;
        for (const t of call.sub.getTransceivers()) {
            const info = call.tracksByMid.get(t.mid);
            if (!info || info.track_id !== id) continue;
            const out = {target: t.receiver.jitterBufferTarget ?? null};
            (await t.receiver.getStats()).forEach((s) => {
                if (s.type === "inbound-rtp") Object.assign(out, {freezes: s.freezeCount || 0,
                    decoded: s.framesDecoded || 0});
            });
            return out;
        }
        return {};
    }""", track_id)


def late_frames(outlet: Any, hold_s: float = HOLD_S) -> asyncio.Task[None]:
    """Every HOLD_EVERY_S, what the relay forwards to this subscriber is held ``hold_s`` and then
    sent at once: the frames arrive late, none is lost."""
    sender = outlet.sender
    forward = sender.forward
    held: list[tuple[Any, ...]] = []
    state = {"until": 0.0}

    def holding(packet: Any, key: int, ntp: int) -> None:
        if time.monotonic() < state["until"]:
            held.append((packet, key, ntp))
        else:
            forward(packet, key, ntp)

    sender.forward = holding

    async def run() -> None:
        try:
            while True:
                await asyncio.sleep(HOLD_EVERY_S)
                state["until"] = time.monotonic() + hold_s
                await asyncio.sleep(hold_s)
                state["until"] = 0.0
                for args in held:
                    forward(*args)
                held.clear()
        finally:
            sender.forward = forward

    return asyncio.create_task(run())


async def test_late_frames_stop_freezing_once_the_page_holds_them_longer(platform: Platform, browser: Browser) -> None:
    ticket, track, clerk = await clerk_watching_worker(platform, browser, "迟到群众")
    start = await playout(clerk, track)
    assert start["target"] is None, "a clean link: the browser's own playout"

    source = platform.app[CALLS].relay.source(room_id(ticket['id']), track)
    assert source is not None
    (outlet,) = source.outlets
    holding = late_frames(outlet)
    try:
        async def held_longer() -> bool:
            return ((await playout(clerk, track)).get("target") or 0) >= HOLD_S * 1000

        await eventually(held_longer, 40, "the clerk's page holding frames longer than they are late")
        await asyncio.sleep(3.0)  # the browser moves its playout delay towards the target gradually
        before = await playout(clerk, track)
        await asyncio.sleep(HOLD_EVERY_S * 8)
        after = await playout(clerk, track)
        assert after["decoded"] > before["decoded"] + 50, "still decoding"
        assert after["freezes"] - before["freezes"] <= 1, (before, after, "eight late bursts, no freeze")
        assert start["freezes"] < before["freezes"], "the late frames froze it before the page held them"
    finally:
        holding.cancel()


NEAR_HOLD_S = 0.12  # late, but under Chromium's freeze (an inter-frame delay 150 ms over the mean)


async def test_frames_late_by_less_than_a_freeze_raise_the_hold_before_a_freeze(
        platform: Platform, browser: Browser) -> None:
    ticket, track, clerk = await clerk_watching_worker(platform, browser, "将冻群众")
    source = platform.app[CALLS].relay.source(room_id(ticket['id']), track)
    assert source is not None
    (outlet,) = source.outlets
    await asyncio.sleep(6)  # past the page's warm-up: a start is irregular
    start = await playout(clerk, track)
    assert start["target"] is None, "a clean link: the browser's own playout"
    holding = late_frames(outlet, NEAR_HOLD_S)
    try:
        async def held() -> bool:
            return ((await playout(clerk, track)).get("target") or 0) >= NEAR_HOLD_S * 1000

        await eventually(held, 30, "the clerk's page holding frames as long as they come late")
        now = await playout(clerk, track)
        assert now["freezes"] == start["freezes"], (start, now, "the hold rose before any freeze")
    finally:
        holding.cancel()
