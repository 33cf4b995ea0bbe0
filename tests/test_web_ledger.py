"""督办台账 in the browser: a bad rating reaches the supervisor as a 整改 work order; the clerk
claims and answers it on the ledger page; the supervisor records the return visit and closes
it, the page following each step live; a worker raises their extension point's problem."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.conftest import Platform
from tests.helpers import district_item, take, window_of
from tests.web import browser, database_url, log_in, person, screenshot, settings  # noqa: F401  (fixtures of every browser test)


async def test_a_bad_rating_is_rectified_answered_and_closed_after_a_return_visit(
        platform: Platform, browser: Browser) -> None:
    worker, clerk = await platform.login("worker1"), await platform.login("clerk1")
    ticket = await take(worker, (await district_item(worker, "MZ"))["id"], "差评群众")
    assert (await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")).status == 200
    await clerk.post(f"/api/tickets/{ticket['id']}/start")
    assert (await clerk.post(f"/api/tickets/{ticket['id']}/complete", {"result": "consultation_only"})).status == 200
    rated = await worker.post(f"/api/tickets/{ticket['id']}/rating", {"score": 1, "comment": "等了很久，材料说明不清楚"})
    assert rated.status == 200, rated

    _, boss = await person(browser, platform)
    await log_in(boss, "supervisor1")
    await boss.wait_for_url("**/app/wall")
    await boss.click("[data-testid=nav-ledger]")
    await boss.wait_for_url("**/app/ledger")
    await expect(boss.locator("[data-testid=ledger-rectification]")).to_contain_text("差评 1 件")
    order = boss.locator("[data-testid=ledger-items] tr[data-id]")
    await expect(order).to_have_count(1)
    await expect(order).to_contain_text("差评整改")
    await expect(order).to_have_attribute("data-state", "open")

    _, desk = await person(browser, platform)
    await log_in(desk, "clerk1")
    await desk.wait_for_url("**/app/clerk")
    await desk.goto("/app/ledger")
    await desk.click("[data-testid=ledger-items] tr[data-id]")
    await expect(desk.locator("[data-testid=ledger-detail]")).to_contain_text("等了很久")
    await desk.click("[data-testid=ledger-claim]")
    await desk.fill("[data-testid=ledger-answer-text]", "已电话向群众致歉，并重新说明材料要求")
    await desk.fill("[data-testid=ledger-action-text]", "窗口一次性告知清单已更新")
    await desk.click("[data-testid=ledger-answer-submit]")
    await expect(desk.locator("[data-testid=ledger-item]")).to_have_attribute("data-state", "answered")

    await expect(order).to_have_attribute("data-state", "answered")  # the supervisor's page follows live
    await order.click()
    await expect(boss.locator("[data-testid=ledger-answer]")).to_contain_text("重新说明材料要求")
    await boss.locator("[data-testid=ledger-verdict]").get_by_text("满意", exact=True).click()
    await boss.fill("[data-testid=ledger-visit-note]", "群众表示满意")
    await boss.click("[data-testid=ledger-visit]")
    await expect(boss.locator("[data-testid=ledger-item]")).to_have_attribute("data-state", "visited")
    await screenshot(boss, "supervisor-ledger")
    await boss.click("[data-testid=ledger-close]")
    await expect(boss.locator("[data-testid=ledger-item]")).to_have_attribute("data-state", "closed")
    history = boss.locator("[data-testid=ledger-history] li")
    assert await history.evaluate_all("rows => rows.map(r => r.dataset.action)") == [
        "raise", "claim", "answer", "visit", "close"]
    await expect(boss.locator("[data-testid=ledger-rectification]")).to_contain_text("整改及时率 100%")


async def test_a_worker_raises_their_extension_points_problem(platform: Platform, browser: Browser) -> None:
    _, page = await person(browser, platform)
    await log_in(page, "worker1")
    await page.wait_for_url("**/app/worker/check")  # the worker's first page: the device check
    await page.click("[data-testid=nav-ledger]")
    await page.wait_for_url("**/app/ledger")
    await page.click("[data-testid=ledger-new]")
    dialog = page.locator("[data-testid=ledger-raise]")
    await dialog.locator("[data-testid=ledger-raise-category]").click()
    await page.get_by_role("option", name="不会办").click()
    await dialog.locator("[data-testid=ledger-raise-department]").click()
    await page.get_by_role("option", name="社保", exact=True).click()
    await page.fill("[data-testid=ledger-raise-title]", "不会操作灵活就业参保登记")
    await page.click("[data-testid=ledger-raise-submit]")
    item = page.locator("[data-testid=ledger-item]")
    await expect(item).to_have_attribute("data-state", "open")
    await expect(item).to_contain_text("延伸点 · 不会办")
    raised = (await (await platform.login("worker1")).get("/api/ledger")).body
    assert [(i["source"], i["category"], i["title"]) for i in raised] == [
        ("point", "dont_know", "不会操作灵活就业参保登记")]
