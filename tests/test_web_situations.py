"""办理情形 in the browser: the worker picks an item handled by situation, asks the resident its
questions, reads only that situation's materials, time limit, fee and pickup, and takes the
ticket, which records it; the clerk who calls it sees the situation and corrects it in the call. The admin keeps an item's
questions and situations on the catalogue page, and is told in words when a change breaks a rule.
A resident sent an item's checklist without a situation answers its questions on the phone."""

from __future__ import annotations

import re

from playwright.async_api import Browser, expect

from tests.conftest import Platform
from tests.web import browser, database_url, log_in, person, screenshot, settings  # noqa: F401  (fixtures of every browser test)

PHONE_VIEWPORT = {"width": 390, "height": 844}


async def test_the_worker_asks_the_questions_and_takes_a_ticket_for_that_situation(platform: Platform,
                                                                                   browser: Browser) -> None:
    context, worker = await person(browser, platform)
    await context.add_init_script("sessionStorage.setItem('yb.deviceCheck', 'done')")
    await log_in(worker, "worker1")
    await worker.fill("input[data-testid=item-search]", "jmsfz")
    await worker.locator("[data-testid=item-results] button", has_text="居民身份证换领").click()
    questions = worker.locator("[data-testid=situation-questions]")
    await expect(questions).to_contain_text("办理原因")
    await expect(questions).to_contain_text("申请人年龄")
    materials = worker.locator("[data-testid=materials]")
    await worker.click("[data-testid=take-ticket]")  # not answered yet
    await worker.fill("input[data-testid=resident-name]", "补证群众")
    await worker.click("[data-testid=take-ticket]")
    await expect(worker.locator("[data-testid=take-error]")).to_contain_text("请先回答办理情形问题")

    await worker.locator("[data-option='补领（遗失）']").click()
    await worker.locator("[data-option='年满16周岁']").click()
    await expect(worker.locator("[data-testid=situation-name]")).to_have_text("补领·年满16周岁")
    await expect(worker.locator("[data-testid=situation-fee]")).to_contain_text("20元")
    await expect(worker.locator("[data-testid=situation-time-limit]")).to_have_text("15 个工作日")
    await expect(worker.locator("[data-testid=situation-pickup]")).to_contain_text("邮政寄递")
    await expect(materials).to_contain_text("临时居民身份证申领")
    await expect(materials).not_to_contain_text("原居民身份证"), "the lost card is not asked for"
    await expect(worker.locator("[data-testid=take-error]")).to_have_count(0)
    await worker.wait_for_timeout(500)  # Element Plus's transitions settle before the picture
    await screenshot(worker, "worker-situation-questions")
    await worker.locator("[data-option='未满16周岁']").click()
    await expect(worker.locator("[data-testid=situation-name]")).to_have_text("补领·未满16周岁（监护人陪同）")
    await expect(materials).to_contain_text("监护人居民身份证")
    await worker.locator("[data-option='年满16周岁']").click()
    await expect(worker.locator("[data-testid=situation-name]")).to_have_text("补领·年满16周岁")

    await worker.click("[data-testid=take-ticket]")
    await expect(worker.locator("[data-testid=waiting-item]")).to_contain_text("居民身份证换领（补领·年满16周岁）")
    number = (await worker.locator("[data-testid=ticket-number]").inner_text()).strip()
    mine = (await (await platform.login("worker1")).get("/api/tickets")).body
    ticket = next(t for t in mine if t["number"] == number)
    item = (await (await platform.login("worker1")).get(f"/api/items/{ticket['item_id']}")).body
    assert ticket["situation_id"] == next(s["id"] for s in item["situations"] if s["name"] == "补领·年满16周岁")

    _, clerk = await person(browser, platform)
    await log_in(clerk, "clerk2")
    await clerk.wait_for_url("**/app/clerk")
    if await clerk.locator("[data-testid=window-choice]").count():
        await clerk.locator("[data-testid=window-choice]").first.click()
    await clerk.click("[data-testid=call-next]")
    await expect(clerk.locator("[data-testid=current-ticket]")).to_contain_text(number)
    await expect(clerk.locator("[data-testid=situation-name]")).to_have_text("补领·年满16周岁")
    await expect(clerk.locator("[data-testid=situation-fee]")).to_contain_text("20元")
    checklist = clerk.locator("[data-testid=checklist]")
    await expect(checklist).to_contain_text("临时居民身份证申领")
    await expect(checklist).not_to_contain_text("原居民身份证")

    # The resident had the old card after all: the clerk corrects the situation in the call, and
    # both checklists (the clerk's and the worker's) become the other situation's, live.
    await clerk.click("[data-testid=situation-select]")
    await clerk.locator(".el-select-dropdown__item", has_text="换领·年满16周岁").click()
    await expect(clerk.locator("[data-testid=situation-name]")).to_have_text("换领·年满16周岁")
    await expect(checklist).to_contain_text("原居民身份证")
    await expect(checklist).not_to_contain_text("临时居民身份证申领")
    await clerk.wait_for_timeout(500)
    await screenshot(clerk, "clerk-case-situation")
    worker_checklist = worker.locator("[data-testid=checklist]")
    await expect(worker_checklist).to_contain_text("原居民身份证")
    await expect(worker_checklist).not_to_contain_text("临时居民身份证申领")


async def test_the_admin_keeps_an_items_questions_and_situations(platform: Platform, browser: Browser) -> None:
    _, admin = await person(browser, platform)
    await log_in(admin, "admin")
    await admin.click("[data-testid=nav-catalog]")
    await admin.wait_for_url("**/app/catalog")
    await admin.fill("input[data-testid=catalog-search]", "gljt")
    await admin.locator("button[data-item='MZ-001']").click()
    await admin.click("[data-testid=add-question]")
    row = admin.locator("[data-testid=question-row]").first
    await row.locator("input").nth(0).fill("由谁办理")
    await row.locator("input").nth(1).fill("本人、家属代办")
    await admin.click("[data-testid=save-questions]")
    await expect(admin.get_by_text("问题已保存")).to_be_visible()

    async def add(name: str, option: str | None) -> None:
        await admin.click("[data-testid=add-situation]")
        await admin.fill("input[data-testid=situation-form-name]", name)
        if option:
            await admin.locator("[data-testid=situation-form] label", has_text=option).click()
        await admin.click("[data-testid=save-situation]")

    await add("家属代办", "家属代办")
    await expect(admin.locator("[data-situation='家属代办']")).to_contain_text("由谁办理：家属代办")
    await add("不分情况", None)
    await expect(admin.locator("[data-testid=situation-form-error]")).to_contain_text("请至少选择一个回答")
    await admin.locator("[data-testid=situation-form] label", has_text="家属代办").click()
    await admin.click("[data-testid=save-situation]")
    await expect(admin.locator("[data-testid=situation-form-error]")).to_contain_text("条件重叠")
    await admin.locator("[data-testid=situation-form] label", has_text="本人").first.click()
    await admin.click("[data-testid=save-situation]")
    await expect(admin.locator("[data-situation='不分情况']")).to_contain_text("由谁办理：本人")
    await admin.wait_for_timeout(500)
    await screenshot(admin, "admin-catalog-situations")

    item = (await (await platform.login("worker1")).get("/api/items", q="高龄津贴")).body[0]
    assert {s["name"] for s in item["situations"]} == {"家属代办", "不分情况"}
    await admin.locator("[data-situation='家属代办'] [data-testid=toggle-situation]").click()
    await expect(admin.locator("[data-situation='家属代办']")).to_contain_text("已停用")
    item = (await (await platform.login("worker1")).get("/api/items", q="高龄津贴")).body[0]
    assert [s["name"] for s in item["situations"]] == ["不分情况"]


async def test_the_resident_answers_the_questions_on_the_link_and_reads_that_situations_materials(
        platform: Platform, browser: Browser) -> None:
    worker = await platform.login("worker1")
    item = (await worker.get("/api/items", q="jmsfz")).body[0]
    sent = await worker.post(f"/api/items/{item['id']}/checklist-links", {"phone": "13800138000"})
    messages = (await (await platform.login("admin")).get("/api/notifications")).body["messages"]
    text = next(m["text"] for m in messages if m["id"] == sent.body["notification_id"])
    link = re.search(r"https?://\S+/app/c/[A-Za-z0-9_-]+", text)
    assert link, text
    context = await browser.new_context(viewport=PHONE_VIEWPORT, is_mobile=True, has_touch=True)
    phone = await context.new_page()
    await phone.goto(link.group(0))
    await expect(phone.locator("[data-testid=public-questions]")).to_contain_text("办理原因")
    checklist = phone.locator("[data-testid=public-checklist]")
    await phone.locator("input[data-option='换领（有效期满、损坏或信息变更）']").check()
    await phone.locator("input[data-option='未满16周岁']").check()
    await expect(phone.locator("[data-testid=situation-name]")).to_have_text("换领·未满16周岁（监护人陪同）")
    await expect(phone.locator("[data-testid=situation-fee]")).to_contain_text("20元")
    await expect(checklist).to_contain_text("监护人居民身份证")
    await phone.locator("input[data-option='年满16周岁']").check()
    await expect(phone.locator("[data-testid=situation-name]")).to_have_text("换领·年满16周岁")
    await expect(checklist).not_to_contain_text("监护人居民身份证")
    await phone.wait_for_timeout(300)
    await screenshot(phone, "resident-checklist-situation")
    await context.close()


async def test_a_resident_who_cannot_tell_gets_a_ticket_and_the_clerk_decides(platform: Platform,
                                                                             browser: Browser) -> None:
    context, worker = await person(browser, platform)
    await context.add_init_script("sessionStorage.setItem('yb.deviceCheck', 'done')")
    await log_in(worker, "worker1")
    await worker.fill("input[data-testid=item-search]", "jmsfz")
    await worker.locator("[data-testid=item-results] button", has_text="居民身份证换领").click()
    await worker.fill("input[data-testid=resident-name]", "说不清的群众")
    await worker.click("[data-testid=situation-unsure]")
    await expect(worker.locator("[data-testid=situation-undecided]")).to_contain_text("由云窗口在视频中确定")
    await worker.click("[data-testid=take-ticket]")
    await expect(worker.locator("[data-testid=ticket-number]")).not_to_be_empty()
    mine = (await (await platform.login("worker1")).get("/api/tickets")).body
    assert [t["situation_id"] for t in mine] == [None]
