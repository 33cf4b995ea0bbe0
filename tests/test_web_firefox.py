"""Firefox ESR in the call, as worker and as clerk, with Chromium on the other side.

Debian's ``firefox-esr`` runs headless, driven by puppeteer-core over WebDriver BiDi
(tests/firefox/driver.mjs; Playwright's own Firefox build cannot be downloaded here). With only
its fake-device prefs Firefox does not count the capture as real and offers **mDNS-only**
(``….local``) host candidates, as Safari does when it hides addresses: the worker runs that
way, so the relay must find it by its connectivity checks (peer-reflexive). The clerk's Firefox
counts its fake capture as real (``media.navigator.permission.fake``) and offers addresses.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from server.keys import CALLS
from signaling.ids import participant_id, room_id, track_id
from signaling.relay import dtls
from tests.conftest import Platform
from tests.helpers import district_item, on_the_machines_address, take
from tests.web import (  # noqa: F401
    browser,
    database_url,
    decoding,
    eventually,
    log_in,
    person,
    screenshot,
    settings,
)

DRIVER = Path(__file__).resolve().parent / "firefox"
FIREFOX = shutil.which("firefox-esr") or "/usr/bin/firefox-esr"
FAKE_MEDIA = {
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
}
#: Fake capture counted as real: Firefox then offers its addresses, not only mDNS names.
REAL_ADDRESSES = {**FAKE_MEDIA, "media.navigator.permission.fake": True}
SKIP_DEVICE_CHECK = "sessionStorage.setItem('yb.deviceCheck', 'done')"


class Firefox:
    """The driver process: one Firefox per person, named."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.ids = 0
        self.lock = asyncio.Lock()

    async def send(self, op: str, **args: Any) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        async with self.lock:
            self.ids += 1
            self.process.stdin.write((json.dumps({"id": self.ids, "op": op, **args}) + "\n").encode())
            await self.process.stdin.drain()
            line = await asyncio.wait_for(self.process.stdout.readline(), 60)
        if not line:
            raise AssertionError(f"the Firefox driver ended (op {op})")
        reply = json.loads(line)
        assert reply["id"] == self.ids, reply
        if not reply["ok"]:
            raise AssertionError(f"Firefox {op} failed: {reply['error']}")
        return reply["value"]

    async def page(self, name: str, prefs: dict[str, Any], base: str) -> FirefoxPage:
        version = await self.send("launch", name=name, prefs=prefs)
        assert version.lower().startswith("firefox/"), version
        return FirefoxPage(self, name, base)


class FirefoxPage:
    def __init__(self, firefox: Firefox, name: str, base: str) -> None:
        self.firefox, self.name, self.base = firefox, name, base

    async def init(self, script: str) -> None:
        await self.firefox.send("init", name=self.name, script=script)

    async def goto(self, path: str) -> None:
        await self.firefox.send("goto", name=self.name, url=self.base + path)

    async def fill(self, selector: str, text: str) -> None:
        await self.firefox.send("fill", name=self.name, selector=selector, text=text)

    async def click(self, selector: str) -> None:
        await self.firefox.send("click", name=self.name, selector=selector)

    async def evaluate(self, expression: str) -> Any:
        return await self.firefox.send("evaluate", name=self.name, expression=expression)

    async def text(self, selector: str) -> str:
        return str(await self.evaluate(f"document.querySelector({selector!r})?.textContent ?? ''")).strip()

    async def screenshot(self, name: str) -> None:
        path = Path(__file__).resolve().parents[1] / "var" / "screenshots" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        await self.firefox.send("screenshot", name=self.name, path=str(path))

    async def log_in(self, username: str, password: str = "demo12345") -> None:
        await self.goto("/app/login")
        await self.fill("input[data-testid=username]", username)
        await self.fill("input[data-testid=password]", password)
        await self.click("[data-testid=login]")


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 25) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last: {value!r})")
        await asyncio.sleep(0.25)


async def firefox_decoding(page: FirefoxPage, track_id: str, timeout: float = 25) -> None:
    """framesDecoded of that received track keeps rising on the Firefox page (window.yb.call.stats())."""
    expression = f"window.yb.call ? window.yb.call.stats().then((s) => s[{track_id!r}]?.framesDecoded ?? -1) : -1"
    first = await until(lambda: _positive(page, expression), f"{track_id} decoding in Firefox", timeout)
    await until(lambda: _above(page, expression, first + 10), f"{track_id} decoding in Firefox", timeout)


async def _positive(page: FirefoxPage, expression: str) -> float | None:
    value = await page.evaluate(expression)
    return value if value > 0 else None


async def _above(page: FirefoxPage, expression: str, floor: float) -> bool:
    return bool(await page.evaluate(expression) > floor)


@pytest.fixture(autouse=True)
def relay_address(platform: Platform) -> None:
    on_the_machines_address(platform)


@pytest.fixture
async def firefox() -> AsyncIterator[Firefox]:
    if not Path(FIREFOX).is_file():
        pytest.fail("firefox-esr is missing: `apt-get install firefox-esr` (make test does it)")
    if not (DRIVER / "node_modules" / "puppeteer-core").is_dir():
        pytest.fail("puppeteer-core is missing: `cd tests/firefox && npm ci` (make test does it)")
    process = await asyncio.create_subprocess_exec(
        "node", str(DRIVER / "driver.mjs"), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "FIREFOX": FIREFOX},
    )
    driver = Firefox(process)
    try:
        yield driver
    finally:
        try:
            await driver.send("close")
        except (AssertionError, OSError, TimeoutError) as exc:  # a driver already gone is killed below
            print(f"Firefox driver close: {exc}")
        assert process.stdin is not None
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


def _relay_side(platform: Platform, ticket_id: int, user_id: int) -> Any:
    return platform.app[CALLS].relay.rooms[room_id(ticket_id)].participants[participant_id(user_id)]


def _remote_types(pc: Any) -> set[str]:
    return {c.type for t in pc.getTransceivers()
            for c in t.receiver.transport.transport._connection.remote_candidates}


async def test_firefox_worker_offering_only_mdns_candidates_calls_a_chromium_clerk(
        platform: Platform, browser: Browser, firefox: Firefox) -> None:
    worker_api, clerk_api = await platform.login("worker1"), await platform.login("clerk1")
    worker_id, clerk_id = worker_api.user["id"], clerk_api.user["id"]
    ticket = await take(worker_api, (await district_item(worker_api, "MZ"))["id"], "火狐群众")

    worker = await firefox.page("worker", FAKE_MEDIA, platform.base)
    await worker.init(SKIP_DEVICE_CHECK)
    await worker.log_in("worker1")
    await until(lambda: worker.text("[data-testid=ticket-number]"), "the worker's ticket")
    assert await worker.text("[data-testid=ticket-number]") == ticket["number"]

    _, clerk = await person(browser, platform)
    await log_in(clerk, "clerk1")
    await clerk.click("[data-testid=call-next]")
    await expect(clerk.locator("[data-testid=current-ticket]")).to_contain_text(ticket["number"])

    # The call opens on the worker's Firefox; each side decodes the other's video.
    await firefox_decoding(worker, track_id(participant_id(clerk_id), "camera"))
    await decoding(clerk, track_id(participant_id(worker_id), "camera"))
    await decoding(clerk, track_id(participant_id(worker_id), "microphone"))
    # Firefox's offer named no address, only mDNS names.
    sdp = await worker.evaluate("window.yb.call.pub.localDescription.sdp")
    candidates = re.findall(r"^a=candidate:.*$", sdp, re.M)
    assert candidates and all(re.search(r" [0-9a-f-]+\.local \d+ typ host", c) for c in candidates), candidates
    relay_side = _relay_side(platform, ticket["id"], worker_id)
    assert _remote_types(relay_side.publish_pc) == {"prflx"}, "the relay found Firefox by its checks"
    assert await until(lambda: worker.evaluate("window.yb.call.state.phase === 'connected'"), "通话中 on Firefox")
    assert await worker.evaluate("window.yb.call.state.trouble") == ""
    assert await worker.text("[data-testid=call-phase]") == "通话中"
    assert "视频已接通" in await worker.text("[data-testid=called-banner]")

    # The camera selector names the camera, never its id.
    camera_id = await worker.evaluate("window.yb.call.state.cameraId")
    shown = await worker.text("[data-testid=camera-select]")
    assert camera_id and camera_id not in shown and "摄像头" in shown, (camera_id, shown)
    await worker.screenshot("firefox-worker-call")

    # The clerk ends the case; the worker's call closes.
    await clerk.click("[data-testid=start]")
    await expect(clerk.locator("[data-testid=ticket-status]")).to_have_text("办理中")  # the start's answer is in
    assert (await clerk_api.post(f"/api/tickets/{ticket['id']}/complete", {"result": "not_eligible"})).status == 200
    await until(lambda: worker.evaluate("!window.yb.call || window.yb.call.state.phase === 'closed'"), "the call closed")


async def test_firefox_clerk_calls_a_chromium_worker_and_closes_the_case(
        platform: Platform, browser: Browser, firefox: Firefox) -> None:
    worker_api, clerk_api = await platform.login("worker1"), await platform.login("clerk1")
    worker_id, clerk_id = worker_api.user["id"], clerk_api.user["id"]
    ticket = await take(worker_api, (await district_item(worker_api, "MZ"))["id"], "火狐窗口的群众")

    context, worker = await person(browser, platform)
    await context.add_init_script(SKIP_DEVICE_CHECK)
    await log_in(worker, "worker1")
    await expect(worker.locator("[data-testid=ticket-number]")).to_have_text(ticket["number"])

    clerk = await firefox.page("clerk", REAL_ADDRESSES, platform.base)
    await clerk.log_in("clerk1")
    await until(lambda: clerk.evaluate("!!document.querySelector('[data-testid=call-next]:not([disabled])')"), "叫号")
    await clerk.click("[data-testid=call-next]")
    await until(lambda: clerk.text("[data-testid=current-ticket]"), "the called ticket")
    assert ticket["number"] in await clerk.text("[data-testid=current-ticket]")

    await firefox_decoding(clerk, track_id(participant_id(worker_id), "camera"))
    await decoding(worker, track_id(participant_id(clerk_id), "camera"))
    await decoding(worker, track_id(participant_id(clerk_id), "microphone"))
    await expect(worker.locator("[data-testid=call-phase]")).to_have_attribute("data-phase", "connected")
    assert await until(lambda: clerk.evaluate("window.yb.call.state.phase === 'connected'"), "通话中 on Firefox")
    relay_side = _relay_side(platform, ticket["id"], clerk_id)
    assert "host" in _remote_types(relay_side.publish_pc), "this Firefox offered its addresses"
    await clerk.screenshot("firefox-clerk-call")
    await screenshot(worker, "firefox-clerk-call-worker")

    # The clerk starts and completes the case on the Firefox page.
    await clerk.click("[data-testid=start]")
    await until(lambda: clerk.evaluate("document.querySelector('[data-testid=ticket-status]')?.textContent?.includes('办理中')"),
                "办理中")
    await clerk.click("[data-testid=complete]")
    await clerk.click("[data-result=materials_incomplete]")
    await clerk.click("[data-testid=complete-confirm]")
    await until(lambda: clerk.text("[data-testid=ended]"), "the case ended on Firefox")
    assert ticket["number"] in await clerk.text("[data-testid=ended]")
    await eventually(lambda: worker.evaluate("!window.yb.call || window.yb.call.state.phase === 'closed'"),
                     what="the worker's call closed")


async def test_a_camera_that_does_not_get_through_is_told_and_retried_with_back_off(
        platform: Platform, browser: Browser, firefox: Firefox, monkeypatch: pytest.MonkeyPatch) -> None:
    """The field case: the relay as it was (no waiting for an mDNS-only publisher's checks) fails
    Firefox's publishing connection at once. The page must not say 通话中 and republish every few
    seconds in silence: it says the camera is not getting through, retries further and further
    apart, and once the relay can take it the call comes up by itself."""
    monkeypatch.setattr("signaling.relay.relay.peer_connection",
                        lambda configuration, tasks: dtls.peer_connection(configuration))
    worker_api, clerk_api = await platform.login("worker1"), await platform.login("clerk1")
    worker_id, clerk_id = worker_api.user["id"], clerk_api.user["id"]
    ticket = await take(worker_api, (await district_item(worker_api, "MZ"))["id"], "画面传不出去的群众")

    worker = await firefox.page("worker", FAKE_MEDIA, platform.base)
    await worker.init(SKIP_DEVICE_CHECK)
    await worker.log_in("worker1")
    await until(lambda: worker.text("[data-testid=ticket-number]"), "the worker's ticket")
    _, clerk = await person(browser, platform)
    await log_in(clerk, "clerk1")
    await clerk.click("[data-testid=call-next]")
    await expect(clerk.locator("[data-testid=current-ticket]")).to_contain_text(ticket["number"])

    # The worker is told, first that it is retrying, then after two retries to call for help.
    await until(lambda: worker.evaluate("window.yb.call?.state.trouble === 'send'"), "the worker told")
    assert "您的画面没有传出去" in await worker.text("[data-testid=media-trouble]")
    assert await worker.evaluate("window.yb.call.state.phase") != "connected"
    assert "正在接通视频" in await worker.text("[data-testid=called-banner]"), "not 视频已接通"
    await until(lambda: _contains(worker, "请联系管理员"),
                "the worker sent to the administrator", timeout=30)
    await worker.screenshot("firefox-worker-camera-blocked")
    # The clerk is offered the worker's camera, but nothing arrives: told as well.
    await expect(clerk.locator("[data-testid=media-trouble]")).to_contain_text("对方的画面没有传过来", timeout=30000)
    assert await clerk.evaluate("window.yb.call.state.phase") != "connected"

    # Back-off: over 12 s no more than two further retries (every ~6 s forever was the bug).
    before = await worker.evaluate("window.yb.call.state.troubleRetries")
    await asyncio.sleep(12)
    after = await worker.evaluate("window.yb.call.state.troubleRetries")
    assert 0 <= after - before <= 2, (before, after)

    # The relay learns to wait for the checks: the next retry gets through, on both pages.
    monkeypatch.undo()
    await until(lambda: worker.evaluate("window.yb.call.state.phase === 'connected' && window.yb.call.state.trouble === ''"),
                "the worker's call up after a retry", timeout=75)
    await decoding(clerk, track_id(participant_id(worker_id), "camera"), timeout=30)
    await firefox_decoding(worker, track_id(participant_id(clerk_id), "camera"))
    await expect(clerk.locator("[data-testid=media-trouble]")).to_have_count(0, timeout=30000)
    await expect(clerk.locator("[data-testid=call-phase]")).to_have_attribute("data-phase", "connected")


async def _contains(page: FirefoxPage, text: str) -> bool:
    return text in await page.text("[data-testid=media-trouble]")
