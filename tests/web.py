"""What the browser tests of the Vue client share: Chromium with fake devices, one context
per person, logging in through the real login page, reading the pages' debug hook."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from server.config import Settings
from signaling.ids import participant_id, track_id
from tests.conftest import Platform, Templates, cloned_database

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "web-client" / "dist"
SOURCES = ROOT / "web-client" / "src"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    # three fake cameras; the third (fake_device_2, MJPEG) is the one to switch to (the second is a Y16 depth camera)
    "--use-fake-device-for-media-stream=device-count=3", "--use-fake-ui-for-media-stream",
    "--auto-select-desktop-capture-source=Entire screen", "--autoplay-policy=no-user-gesture-required",
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


SCREENSHOTS = ROOT / "var" / "screenshots"  # README: "Screenshots"; copies are kept in docs/screenshots


async def screenshot(page: Page, name: str) -> None:
    """A picture of what this person sees now, for a reviewer who does not run a browser."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def require_built_client() -> None:
    """The tests drive the built app; a missing or stale build is a failure with a fix."""
    index = DIST / "index.html"
    if not index.is_file():
        pytest.fail("web-client/dist is missing: run `make web` (make test does it)")
    newest = max(p.stat().st_mtime for p in SOURCES.rglob("*") if p.is_file() and p.name != "schema.d.ts")
    if newest > index.stat().st_mtime:
        pytest.fail("web-client/dist is older than web-client/src: run `make web`")
    if not (DIST / ".built-test").is_file():
        pytest.fail("web-client/dist is not the test build (`make run` builds the production one, without "
                    "the window.yb the tests read): run `make web`")


def web_settings(settings: Settings) -> Settings:
    return settings.with_changes(web_dist=DIST)


async def launch() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


async def person(browser: Browser, platform: Platform, *, lang: str = "zh-CN",
                 viewport: dict[str, int] | None = None) -> tuple[BrowserContext, Page]:
    """A separate browser context (own storage, own camera grant), as a separate person."""
    context = await browser.new_context(
        permissions=["camera", "microphone"], base_url=platform.base, viewport=viewport or {"width": 1366, "height": 900},
    )
    if lang != "zh-CN":
        await context.add_init_script(f"localStorage.setItem('yb.lang', {lang!r})")
    page = await context.new_page()
    page.set_default_timeout(20000)
    return context, page


async def log_in(page: Page, username: str, password: str = "demo12345") -> None:
    await page.goto("/app/login")
    await page.fill("input[data-testid=username]", username)
    await page.fill("input[data-testid=password]", password)
    await page.click("[data-testid=login]")


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20, what: str = "condition") -> None:
    async def loop() -> None:
        while not await check():
            await asyncio.sleep(0.2)

    try:
        await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def stats(page: Page) -> dict[str, Any]:
    return await page.evaluate("window.yb.stats()")


async def decoding(page: Page, track_id: str, timeout: float = 25) -> None:
    """framesDecoded (video) or samples received (audio) of that received track keep rising."""
    first: list[float] = []

    async def rising() -> bool:
        s = (await stats(page)).get(track_id)
        if s is None:
            return False
        value = s["framesDecoded"] if s["kind"] == "video" else s["totalSamplesReceived"]
        if not first:
            first.append(value)
            return False
        return value > first[0] + 10

    await eventually(rising, timeout, f"{track_id} decoding")


async def clerk_watching_worker(platform: Platform, browser: Browser, resident: str) -> tuple[dict[str, Any], str, Page]:
    """worker1 takes a ticket, clerk1 calls it, both pages join: the ticket, the worker's camera
    track id, and the clerk's page once it decodes that camera."""
    from playwright.async_api import expect

    from tests.helpers import district_item, take, window_of

    worker_api, clerk_api = await platform.login("worker1"), await platform.login("clerk1")
    ticket = await take(worker_api, (await district_item(worker_api, "MZ"))["id"], resident)
    assert (await clerk_api.post(f"/api/windows/{window_of(clerk_api)}/call-next")).status == 200
    track = track_id(participant_id(worker_api.user['id']), "camera")
    context, worker = await person(browser, platform)
    await context.add_init_script("sessionStorage.setItem('yb.deviceCheck', 'done')")
    await log_in(worker, "worker1")
    _, clerk = await person(browser, platform)
    await log_in(clerk, "clerk1")
    await expect(clerk.locator("[data-testid=current-ticket]")).to_contain_text(ticket["number"])
    await decoding(clerk, track)
    return ticket, track, clerk


# Fixtures every browser test module imports: the app on SQLite, serving the built client, and
# one Chromium per test.


@pytest.fixture
async def database_url(templates: Templates, tmp_path: Path) -> AsyncIterator[str]:
    async with cloned_database("sqlite", templates, tmp_path) as url:
        yield url


@pytest.fixture
def settings(settings: Settings) -> Settings:
    require_built_client()
    return web_settings(settings)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async for chromium in launch():
        yield chromium
