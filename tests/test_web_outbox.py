"""The administrators' outbox in the browser: from the wall to 消息外发, a test message sent and
shown (the number masked), a bad number refused in words; a supervisor cannot open it."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from server.domain import notify
from server.keys import DOMAIN
from tests.conftest import Platform
from tests.web import browser, database_url, log_in, person, screenshot, settings  # noqa: F401  (fixtures of every browser test)


async def test_an_administrator_reads_the_outbox_and_sends_a_test_message(platform: Platform, browser: Browser) -> None:
    async with platform.app[DOMAIN].unit() as uow:  # a message queued by the platform (a reminder, say)
        await notify.queue(uow, channel="sms", kind="reminder", to="13912345678", text="【云帮办】您的居住证将于 30 天后到期")

    _, page = await person(browser, platform)
    await log_in(page, "admin")
    await page.wait_for_url("**/app/wall")
    await page.click("[data-testid=nav-outbox]")
    await page.wait_for_url("**/app/outbox")
    rows = page.locator("[data-testid=outbox-messages] tbody tr[data-id]")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("139****5678")
    await expect(rows.first).to_contain_text("居住证将于 30 天后到期")
    await expect(rows.first).to_contain_text("仅保存")
    assert "13912345678" not in await page.content(), "the number masked"

    await page.fill("input[data-testid=outbox-test-to]", "1381234")
    await page.click("[data-testid=outbox-test-send]")
    await expect(page.locator("[data-testid=outbox-error]")).to_contain_text("11 位手机号码")
    await expect(rows).to_have_count(1)

    await page.fill("input[data-testid=outbox-test-to]", "13800138000")
    await page.click("[data-testid=outbox-test-send]")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_contain_text("测试消息")
    await expect(page.locator("[data-testid=outbox-state-held]")).to_contain_text("2")
    await expect(page.locator("[data-testid=outbox-test-send]")).to_be_enabled()
    await page.wait_for_timeout(3500)  # the “queued” notice gone: a still picture for docs/screenshots
    await screenshot(page, "admin-outbox")

    _, other = await person(browser, platform)
    await log_in(other, "supervisor1")
    await other.wait_for_url("**/app/wall")
    await expect(other.locator("[data-testid=nav-outbox]")).to_have_count(0)
    await other.goto("/app/outbox")
    await other.wait_for_url("**/app/wall")
