"""一次性告知 in the browser: a worker texts the resident an item's checklist from the take-ticket
page; the resident opens the link on a phone, without logging in, and reads the materials and
where to go; an expired link says so in words."""

from __future__ import annotations

import re

from playwright.async_api import Browser, expect

from tests.conftest import Platform
from tests.web import browser, database_url, log_in, person, screenshot, settings  # noqa: F401  (fixtures of every browser test)

PHONE_VIEWPORT = {"width": 390, "height": 844}


async def test_a_worker_texts_the_checklist_and_the_resident_reads_it_on_a_phone(platform: Platform,
                                                                                  browser: Browser) -> None:
    context, worker = await person(browser, platform)
    await context.add_init_script("sessionStorage.setItem('yb.deviceCheck', 'done')")
    await log_in(worker, "worker1")
    await worker.fill("input[data-testid=item-search]", "gljt")
    results = worker.locator("[data-testid=item-results] button")
    await expect(results.first).to_contain_text("高龄津贴申领")
    await results.first.click()
    await worker.click("[data-testid=send-checklist]")
    await expect(worker.locator("[data-testid=take-error]")).to_contain_text("11 位手机号")
    await worker.fill("input[data-testid=resident-phone]", "13800138000")
    await worker.click("[data-testid=send-checklist]")
    await expect(worker.get_by_text("已把材料清单发送到 138****8000")).to_be_visible()

    messages = (await (await platform.login("admin")).get("/api/notifications")).body["messages"]
    sms = next(m for m in messages if m["kind"] == "checklist")
    assert sms["to"] == "138****8000" and "高龄津贴申领" in sms["text"]
    link = re.search(r"https?://\S+/app/c/[A-Za-z0-9_-]+", sms["text"])
    assert link and link.group(0).startswith(platform.base), sms["text"]

    phone_context = await browser.new_context(viewport=PHONE_VIEWPORT, is_mobile=True, has_touch=True)
    phone = await phone_context.new_page()
    await phone.goto(link.group(0))
    await expect(phone.locator("[data-testid=public-checklist-item]")).to_have_text("高龄津贴申领")
    await expect(phone.locator("[data-testid=public-checklist]")).to_contain_text("户口簿")
    await expect(phone.locator("[data-testid=public-checklist-where]")).not_to_be_empty()
    assert phone.url.endswith(link.group(0).rsplit("/", 1)[1]), "no login asked"
    await screenshot(phone, "resident-checklist-link")

    platform.clock.advance(days=31)
    await phone.reload()
    await expect(phone.locator("[data-testid=public-checklist-error]")).to_contain_text("链接已过期")
    await phone_context.close()
