"""A red warning pushed to a supervisor's phone: the link opens without login on a phone and
确认收到 acknowledges it as them; the wall shows it acknowledged."""

from __future__ import annotations

import dataclasses

import pytest
from playwright.async_api import Browser, expect

from server.config import Settings
from tests.conftest import Platform
from tests.helpers import take
from tests.test_alert_push import link_token, pushed, town_item, with_mobiles
from tests.web import browser, database_url, person, require_built_client, screenshot, web_settings  # noqa: F401


@pytest.fixture
def settings(settings: Settings) -> Settings:
    require_built_client()
    low = settings.with_changes(queue=dataclasses.replace(settings.queue, yellow_waiting=2, red_waiting=3))
    return web_settings(low)


async def test_the_pushed_link_acknowledges_a_red_warning_on_a_phone(platform: Platform, browser: Browser) -> None:
    await with_mobiles(platform)
    worker = await platform.login("worker1")
    item = await town_item(worker)
    for name in ("甲", "乙", "丙"):
        await take(worker, item["id"], name)
    message = next(m for m in await pushed(platform)
                   if m["channel"] == "sms" and m["to"] == "139****0002" and "红色预警" in m["text"])

    _, phone = await person(browser, platform, viewport={"width": 390, "height": 844})
    await phone.goto(f"/app/a/{link_token(message)}")
    await expect(phone.locator("[data-testid=alert-link-message]")).to_contain_text("民政红色预警")
    await expect(phone.locator("[data-testid=alert-link]")).to_contain_text("高桥镇中心 孔主任")
    await screenshot(phone, "supervisor-alert-link")
    await phone.click("[data-testid=alert-link-ack]")
    await expect(phone.locator("[data-testid=alert-link-done]")).to_contain_text("已确认收到")
    red = next(a for a in (await (await platform.login("supervisor2")).get("/api/alerts")).body if a["level"] == "red")
    assert red["acknowledged_at"] is not None

    await phone.goto("/app/a/1-1-forged")
    await expect(phone.locator("[data-testid=alert-link-error]")).to_contain_text("链接无效")
