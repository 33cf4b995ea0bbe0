"""The user sees the network, in Chromium: every tile of a call grades its link (优 / 一般 / 差,
the figures in the tooltip), a video the relay pauses for the link says 网络较差，已暂停视频 and
comes back when the relay tries again (meanwhile the supervisors' wall lists the call as one
with a poor network), and the device check measures the real media path to the
relay (refused while another check of the same user runs, with a plain explanation)."""

from __future__ import annotations

import time
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from playwright.async_api import Browser, expect

from server.keys import CALLS
from signaling.ids import participant_id, room_id, track_id
from tests.conftest import Platform
from tests.helpers import district_item, take, window_of
from tests.rtc_client import CallClient, NoiseVideo
from tests.web import (  # noqa: F401  (fixtures of every browser test)
    browser,
    database_url,
    decoding,
    eventually,
    log_in,
    person,
    screenshot,
    settings,
)


async def test_tiles_show_link_quality_and_a_paused_video_says_so(platform: Platform, browser: Browser) -> None:
    worker_api, clerk_api = await platform.login("worker1"), await platform.login("clerk1")
    ticket = await take(worker_api, (await district_item(worker_api, "MZ"))["id"], "网络群众")
    assert (await clerk_api.post(f"/api/windows/{window_of(clerk_api)}/call-next")).status == 200
    worker_id, clerk_id = worker_api.user["id"], clerk_api.user["id"]
    supervisor_api = await platform.login("supervisor1")
    calls = platform.app[CALLS]
    calls.link_sample_s = 0.5

    context, worker = await person(browser, platform)
    await context.add_init_script("sessionStorage.setItem('yb.deviceCheck', 'done')")
    await log_in(worker, "worker1")
    _, clerk = await person(browser, platform)
    await log_in(clerk, "clerk1")
    await decoding(worker, track_id(participant_id(clerk_id), "camera"))
    await decoding(clerk, track_id(participant_id(worker_id), "camera"))
    _, wall = await person(browser, platform)
    await log_in(wall, "supervisor1")
    await wall.wait_for_url("**/app/wall")
    await expect(wall.locator("[data-testid=poor-calls]")).to_contain_text("目前没有网络较差的通话")

    # Both pages grade the picture they receive and their own sending link.
    for page in (worker, clerk):
        remote = page.locator("[data-testid=remote-main] ~ [data-testid=link-quality]")
        await expect(remote).to_have_attribute("data-grade", "good", timeout=15000)
        await expect(remote).to_have_text("优")
        title = await remote.get_attribute("title") or ""
        assert "丢包" in title and "往返" in title and "kbit/s" in title and "帧率" in title, title
        own = page.locator("[data-testid=self-link-quality]")
        await expect(own).to_have_attribute("data-grade", "good", timeout=15000)
    await screenshot(worker, "worker-link-quality")

    # The relay finds the worker's link too thin for the clerk's video: it pauses that video for
    # the worker (as feedback.video_paused decides on a thin REMB) and tells the page.
    room, track = room_id(ticket['id']), track_id(participant_id(clerk_id), "camera")
    source = calls.relay.source(room, track)
    viewer = calls.relay.rooms[room].participants[participant_id(worker_id)]
    (outlet,) = [o for o in source.outlets if o in viewer.outlets]
    outlet.paused, outlet.paused_at, outlet.pauses = True, time.monotonic(), 1
    await calls.video_paused(room, participant_id(worker_id), track, True)
    paused = worker.locator("[data-testid=video-paused]")
    await expect(paused).to_have_text("网络较差，已暂停视频")
    await expect(worker.locator("[data-testid=remote-main] ~ [data-testid=link-quality]")).to_have_attribute(
        "data-grade", "poor", timeout=5000)
    await screenshot(worker, "worker-video-paused")
    await expect(clerk.locator("[data-testid=video-paused]")).to_have_count(0)

    async def poor_now() -> bool:
        board = (await supervisor_api.get("/api/dashboard/links")).body
        return any(c["ticket_id"] == ticket["id"] for c in board["poor_now"])

    await eventually(poor_now, 5, "the call recorded as poor")
    await wall.reload()
    listed = wall.locator(f"[data-testid=poor-calls] li[data-ticket='{ticket['id']}']")
    await expect(listed).to_contain_text(ticket["number"])
    await expect(listed).to_contain_text("社区工作人员网络差")
    assert "网络群众" not in (await wall.locator("[data-testid=link-wall]").text_content() or "")
    point = wall.locator(f"[data-testid=link-points] tr[data-point='{ticket['extension_point_id']}']")
    await expect(point.locator("[data-testid=point-poor]")).to_have_text("1")
    await screenshot(wall, "wall-poor-links")

    # After its wait the relay tries the video again (a keyframe first); the notice goes.
    await expect(paused).to_have_count(0, timeout=20000)
    assert not outlet.paused
    await decoding(worker, track_id(participant_id(clerk_id), "camera"))


async def open_probe(client: CallClient) -> RTCPeerConnection:
    """Another window of the same user running a network check (an aiortc peer)."""
    pc = RTCPeerConnection()
    pc.addTransceiver(NoiseVideo(160, 120), direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    reply = await client.request("net_check", {"type": "offer", "sdp": pc.localDescription.sdp})
    await pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
    return pc


async def test_the_device_check_measures_the_video_path_to_the_relay(platform: Platform, browser: Browser) -> None:
    worker_api = await platform.login("worker1")
    probes = platform.app[CALLS].probes
    seen: list[dict[str, Any]] = []
    stop = probes.stop

    async def kept(key: str) -> dict[str, Any] | None:
        figures = await stop(key)
        if figures:
            seen.append(figures)
        return figures

    probes.stop = kept  # type: ignore[method-assign]
    other = await CallClient(platform.base, worker_api.token).connect()
    pc = await open_probe(other)
    try:
        _, page = await person(browser, platform)
        await log_in(page, "worker1")
        await page.wait_for_url("**/app/worker/check")
        network = page.locator("[data-testid=check-network]")
        await expect(network).to_have_attribute("data-result", "bad", timeout=25000)
        await expect(network).to_contain_text("视频通道暂时无法检测")
        await expect(network).to_contain_text("网络检测正在另一个窗口进行")
        assert (await other.request("net_check_end", {}))["ok"]
        seen.clear()

        await page.click("[data-testid=check-again]")
        await expect(network).to_have_attribute("data-result", "checking")
        await expect(network).to_contain_text("正在测量视频通道")
        await expect(network).to_have_attribute("data-result", "ok", timeout=30000)
        text = await network.text_content() or ""
        assert "视频通道正常" in text and "往返" in text and "丢包 0%" in text and "Mbit/s" in text, text
        print(f"\ndevice check on loopback: {text}; the relay's side: {seen}")
        await screenshot(page, "worker-device-check-path")
        await eventually(lambda: _true(bool(seen)), 10, "the probe closed by the page")
        assert seen[0]["received_packets"] > 50 and seen[0]["echoed_packets"] > 50, seen
        assert not probes.active
    finally:
        await pc.close()
        await other.close()


async def _true(value: bool) -> bool:
    return value


async def test_the_device_check_says_what_to_do_when_udp_to_the_relay_is_blocked(platform: Platform) -> None:
    """A browser that may not use UDP (as behind a firewall that drops it, with no TURN server
    configured) gets no media path: the network line is red and names the fix."""
    from playwright.async_api import async_playwright

    from tests.web import ARGS, CHROMIUM

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                            args=[*ARGS, "--webrtc-ip-handling-policy=disable_non_proxied_udp"])
        try:
            _, page = await person(chromium, platform)
            await log_in(page, "worker1")
            await page.wait_for_url("**/app/worker/check")
            network = page.locator("[data-testid=check-network]")
            await expect(network).to_have_attribute("data-result", "bad", timeout=30000)
            await expect(network).to_contain_text("网页能打开，但视频通道不通")
            await expect(network).to_contain_text("请网络管理员放行到视频服务器的 UDP，或为本平台配置 TURN 中继服务器")
            await screenshot(page, "worker-device-check-udp-blocked")
        finally:
            await chromium.close()
    assert not platform.app[CALLS].probes.active, "the page ended its probe"
