"""Two real Chromium pages, the worker's and the clerk's, in a call through the relay."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from server.config import Settings
from signaling.ids import participant_id
from tests.conftest import Platform, Templates, cloned_database
from tests.helpers import district_item, take, window_of

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--auto-select-desktop-capture-source=Entire screen", "--no-sandbox", "--disable-gpu",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
]


@pytest.fixture
async def database_url(templates: Templates, tmp_path: Path) -> AsyncIterator[str]:
    async with cloned_database("sqlite", templates, tmp_path) as url:
        yield url


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_changes(dev_pages=True)  # /dev/call is served only when asked


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


async def wait_until(page: Page, expression: str, timeout: float) -> None:
    """Poll an expression with ``evaluate`` (``wait_for_function`` evaluates strings with eval,
    which the app's Content-Security-Policy forbids, as it should)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await page.evaluate(expression):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{expression} still false after {timeout} s")
        await asyncio.sleep(0.1)


async def open_call(browser: Browser, platform: Platform, username: str, ticket_id: int) -> Page:
    context = await browser.new_context(permissions=["camera", "microphone"])
    page = await context.new_page()
    await page.goto(platform.base + "/dev/call")
    await page.fill("#username", username)
    await page.fill("#password", "demo12345")
    await page.fill("#ticket", str(ticket_id))
    await page.click("#join")
    await wait_until(page, "window.yb && window.yb.joined === true", timeout=20)
    return page


async def stats(page: Page) -> dict[str, Any]:
    return await page.evaluate("yb.stats()")


async def decoding(page: Page, track_id: str, timeout: float = 20) -> None:
    """The track's framesDecoded rises (video) or samples arrive (audio) on this page."""

    async def rising() -> None:
        first = None
        while True:
            s = (await stats(page)).get(track_id)
            if s is not None:
                value = s["framesDecoded"] if s["kind"] == "video" else s["totalSamplesReceived"]
                if first is None:
                    first = value
                elif value > first + 10:
                    return
            await asyncio.sleep(0.2)

    await asyncio.wait_for(rising(), timeout)


async def test_worker_and_clerk_pages_decode_each_other_and_the_screen_share(platform: Platform, browser: Browser) -> None:
    worker_api = await platform.login("worker1")
    clerk_api = await platform.login("clerk1")
    ticket = await take(worker_api, (await district_item(worker_api, "MZ"))["id"], "浏览器群众")
    await clerk_api.post(f"/api/windows/{window_of(clerk_api)}/call-next")
    worker = await open_call(browser, platform, "worker1", ticket["id"])
    clerk = await open_call(browser, platform, "clerk1", ticket["id"])
    w, c = participant_id(worker_api.user['id']), participant_id(clerk_api.user['id'])
    await decoding(clerk, f"{w}:camera")
    await decoding(worker, f"{c}:camera")
    await decoding(clerk, f"{w}:microphone")
    await decoding(worker, f"{c}:microphone")
    await clerk.evaluate("yb.shareScreen()")
    await decoding(worker, f"{c}:screen")
    screen = (await stats(worker))[f"{c}:screen"]
    assert screen["source"] == "screen" and screen["kind"] == "video"


async def test_a_reloaded_worker_tab_rejoins_the_call_by_itself(platform: Platform, browser: Browser) -> None:
    worker_api = await platform.login("worker1")
    clerk_api = await platform.login("clerk1")
    ticket = await take(worker_api, (await district_item(worker_api, "MZ"))["id"], "刷新页面的群众")
    await clerk_api.post(f"/api/windows/{window_of(clerk_api)}/call-next")
    worker = await open_call(browser, platform, "worker1", ticket["id"])
    clerk = await open_call(browser, platform, "clerk1", ticket["id"])
    w, c = participant_id(worker_api.user['id']), participant_id(clerk_api.user['id'])
    await decoding(clerk, f"{w}:camera")
    await worker.reload()
    await wait_until(worker, "window.yb && window.yb.joined === true", timeout=20)
    assert "重新加入" in await worker.text_content("#status")
    await decoding(worker, f"{c}:camera")
    await decoding(clerk, f"{w}:camera")
