"""The browser client, one behaviour at a time: serving, the device check, the language
switch, the expert placeholder, and a worker page that survives a dropped connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from server.config import Settings
from tests.conftest import Platform, cloned_database
from tests.helpers import district_item, take, window_of
from tests.web import decoding, eventually, launch, log_in, person, require_built_client, web_settings


@pytest.fixture
async def database_url(templates: dict[str, str], tmp_path: Path) -> AsyncIterator[str]:
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


async def test_root_leads_to_the_app_and_its_pages_survive_a_reload(platform: Platform) -> None:
    http = platform.http
    async with http.get(platform.base + "/", allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/app/"
    for path in ("/app/", "/app/clerk", "/app/worker/check", "/app/wall"):
        async with http.get(platform.base + path) as resp:
            assert resp.status == 200, path
            assert '<div id="app">' in await resp.text()
    async with http.get(platform.base + "/app/assets/no-such-file.js") as resp:
        assert resp.status == 404
    async with http.get(platform.base + "/app/../server/config.py") as resp:
        assert resp.status == 404 or '<div id="app">' in await resp.text()
    async with http.get(platform.base + "/dev/call") as resp:
        assert resp.status == 200 and "通话测试页" in await resp.text()


async def test_device_check_is_green_with_working_camera_microphone_and_network(platform: Platform, browser: Browser) -> None:
    _, page = await person(browser, platform)
    await log_in(page, "worker1")
    await page.wait_for_url("**/app/worker/check")
    for name in ("camera", "microphone", "network"):
        await expect(page.locator(f"[data-testid=check-{name}]")).to_have_attribute("data-result", "ok")
    await expect(page.locator("[data-testid=check-camera]")).to_contain_text("正常")
    await page.click("[data-testid=check-again]")
    await expect(page.locator("[data-testid=check-camera]")).to_have_attribute("data-result", "ok")
    await expect(page.locator("[data-testid=check-network]")).to_have_attribute("data-result", "ok")
    await expect(page.locator("[data-testid=check-continue]")).to_have_text("检测通过，开始接待")
    await page.click("[data-testid=check-continue]")
    await page.wait_for_url("**/app/worker")
    await expect(page.locator("[data-testid=item-search]")).to_be_visible()
