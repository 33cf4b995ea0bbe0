"""Simulcast in real Chromium: the worker's page publishes its camera in layers, the clerk's
page receives the layer the relay chose for its link — the low one while its link is thin,
the full picture once it is not — as one stream that keeps decoding across the switches."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, Page

from server.keys import CALLS
from signaling.ids import room_id
from tests.conftest import Platform
from tests.web import browser, clerk_watching_worker, database_url, decoding, eventually, settings  # noqa: F401  (fixtures of every browser test)


async def received_video(page: Page, track_id: str) -> dict[str, Any]:
    """The clerk page's inbound camera stats: frame size, frames decoded, its one SSRC."""
    return await page.evaluate("""async (id) => {
        const call = window.yb.call;
        for (const t of call.sub.getTransceivers()) {
            const info = call.tracksByMid.get(t.mid);
            if (!info || info.track_id !== id) continue;
            const out = {};
            (await t.receiver.getStats()).forEach((s) => {
                if (s.type === "inbound-rtp") Object.assign(out, {width: s.frameWidth || 0, decoded: s.framesDecoded || 0,
                    ssrc: s.ssrc, lost: s.packetsLost || 0});
            });
            return out;
        }
        return {};
    }""", track_id)


def cap_link(outlet: Any, bps: dict[str, int]) -> None:
    """What the clerk's link carries, as the relay hears it: the browser's own REMB, capped (a
    cap under what it gets is what a browser reports when its link is overrun)."""
    sender = outlet.sender
    feedback = sender._feedback

    def capped(packet: Any) -> None:
        feedback(packet)
        if sender.remb_bps is not None and bps["cap"]:
            sender.remb_bps = min(sender.remb_bps, bps["cap"])

    sender._feedback = capped


async def test_the_clerk_page_gets_the_layer_its_link_carries(platform: Platform, browser: Browser) -> None:
    ticket, track, clerk = await clerk_watching_worker(platform, browser, "分层群众")

    relay = platform.app[CALLS].relay
    source = relay.source(room_id(ticket['id']), track)
    assert source is not None and [s.rid for s in source.streams] == ["q", "h", "f"], "published in layers"
    await eventually(lambda: _async(sum(s.packets > 0 for s in source.streams) >= 2), 30, "two layers arriving")
    (outlet,) = source.outlets
    link = {"cap": 60_000}  # the estimate falls: the link is overrun
    cap_link(outlet, link)

    await eventually(lambda: _async(outlet.layer == 0), 20, "the thin link moved to the low layer")
    low = await received_video(clerk, track)
    await eventually(lambda: _width_is(clerk, track, lambda w: 0 < w <= 160), 20, "the low layer's picture (160 wide)")
    first_ssrc = (await received_video(clerk, track))["ssrc"]

    link["cap"] = 0
    top = max(s.index for s in source.streams if s.packets)  # Chrome sends two layers of a VGA camera
    await eventually(lambda: _async(outlet.layer == top), 45, "the top layer sent once the limit lifts")
    await eventually(lambda: _width_is(clerk, track, lambda w: w >= 320), 30, "a larger picture again")
    await decoding(clerk, track)
    after = await received_video(clerk, track)
    assert after["ssrc"] == first_ssrc, "one stream for the subscriber whatever layer it carries"
    assert after["decoded"] > low["decoded"], "it kept decoding across the switches"


async def _async(value: bool) -> bool:
    return value


async def _width_is(page: Page, track: str, ok: Any) -> bool:
    return bool(ok((await received_video(page, track)).get("width", 0)))
