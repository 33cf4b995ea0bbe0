"""一事联办 in the browser: the worker picks a bundle, reads its merged checklist ("已合并 N 项材料")
and takes one ticket; the 社保 clerk completes their item and the case goes on to the next
department's queue; the clerk of the window for 医保 and 公积金 sees what the first did and
completes the rest, and the case is completed; the wall counts what it saved. A resident takes
a bundle on their own phone (屏对屏)."""

from __future__ import annotations

from playwright.async_api import Browser, Page, expect

from tests.conftest import Platform
from tests.helpers import texted_code
from tests.test_bundles import provide
from tests.web import browser, database_url, log_in, person, screenshot, settings  # noqa: F401  (fixtures of every browser test)

RETIREMENT = "LB-004"  # 退休一件事: 社保 (clerk1's window), then 医保 and 公积金 (clerk3's)


async def clerk_page(platform: Platform, browser: Browser, username: str) -> Page:
    _, clerk = await person(browser, platform)
    await log_in(clerk, username)
    await clerk.wait_for_url("**/app/clerk")
    if await clerk.locator("[data-testid=window-choice]").count():
        await clerk.locator("[data-testid=window-choice]").first.click()
    return clerk


async def call_and_start(clerk: Page, number: str) -> None:
    await clerk.click("[data-testid=call-next]")
    await expect(clerk.locator("[data-testid=current-ticket]")).to_contain_text(number)
    await clerk.click("[data-testid=start]")
    await expect(clerk.locator("[data-testid=ticket-status]")).to_have_text("办理中")


async def test_a_bundle_ticket_is_served_by_two_departments_in_turn_each_completing_its_items(
        platform: Platform, browser: Browser) -> None:
    context, worker = await person(browser, platform)
    await context.add_init_script("sessionStorage.setItem('yb.deviceCheck', 'done')")
    await log_in(worker, "worker1")
    await worker.locator(f"[data-bundle={RETIREMENT}]").click()
    await expect(worker.locator("[data-testid=chosen-bundle]")).to_have_text("退休一件事")
    bundle = next(b for b in (await (await platform.login("worker1")).get("/api/bundles")).body
                  if b["code"] == RETIREMENT)
    await expect(worker.locator("[data-testid=bundle-merged]")).to_have_text(f"已合并 {bundle['materials_saved']} 项材料")
    await expect(worker.locator("[data-testid=bundle-items]")).to_contain_text("退休人员医保待遇核定")
    await expect(worker.locator("[data-testid=materials]")).to_contain_text("身份证")
    await worker.wait_for_timeout(300)
    await screenshot(worker, "worker-bundle")
    await worker.fill("input[data-testid=resident-name]", "退休职工老陈")
    await worker.click("[data-testid=take-ticket]")
    number = (await worker.locator("[data-testid=ticket-number]").inner_text()).strip()
    assert number.startswith("SB"), number
    await expect(worker.locator("[data-testid=waiting-item]")).to_contain_text("退休一件事（当前：职工退休申请）")
    ticket = next(t for t in (await (await platform.login("worker1")).get("/api/tickets")).body if t["number"] == number)
    sb, yb, gj = (i["id"] for i in bundle["items"])

    first = await clerk_page(platform, browser, "clerk1")
    await call_and_start(first, number)
    items = first.locator("[data-testid=bundle-item]")
    await expect(items).to_have_count(3)
    await expect(first.locator("[data-testid=bundle-item][data-item='SB-003']")).to_contain_text("本窗口办理")
    await expect(first.locator("[data-testid=bundle-item][data-item='YB-007']")).to_contain_text("待办理")
    await provide(await platform.login("clerk1"), ticket["id"], {sb})
    await first.click("[data-testid=complete-items]")
    await expect(first.locator("[data-testid=ended]")).to_contain_text("已转入下一个部门的队列")
    moved = (await (await platform.login("worker1")).get(f"/api/tickets/{ticket['id']}")).body
    assert moved["status"] == "waiting" and moved["number"].startswith("YB"), moved

    second = await clerk_page(platform, browser, "clerk3")
    await call_and_start(second, moved["number"])
    await expect(second.locator("[data-testid=bundle-item][data-item='SB-003']")).to_have_attribute("data-state", "completed")
    await expect(second.locator("[data-testid=bundle-item][data-item='SB-003'] [data-testid=bundle-item-done]")).to_contain_text(
        "区云窗口 张敏")
    await expect(second.locator("[data-testid=checklist]")).to_contain_text("已通过")  # the first clerk's documents
    await provide(await platform.login("clerk3"), ticket["id"], {yb, gj})
    await second.wait_for_timeout(300)
    await screenshot(second, "clerk-bundle-second-department")
    await second.click("[data-testid=complete-items]")
    await expect(second.locator("[data-testid=ended]")).to_contain_text("已办结")
    done = (await (await platform.login("worker1")).get(f"/api/tickets/{ticket['id']}")).body
    assert (done["status"], done["result"]) == ("completed", "done"), done
    states = [i["state"] for i in (await (await platform.login("worker1")).get(f"/api/tickets/{ticket['id']}/items")).body]
    assert states == ["completed"] * 3

    _, wall = await person(browser, platform)
    await log_in(wall, "supervisor1")
    await wall.wait_for_url("**/app/wall")
    row = wall.locator("[data-testid=bundle-report] tr[data-bundle=LB-004]")
    await expect(row).to_contain_text("退休一件事")
    await expect(row.locator("[data-testid=materials-saved]")).to_have_text(str(bundle["materials_saved"]))


async def test_a_resident_takes_a_bundle_on_their_own_phone(platform: Platform, browser: Browser) -> None:
    phone_number = "13700137001"
    context = await browser.new_context(base_url=platform.base, viewport={"width": 390, "height": 844},
                                        is_mobile=True, has_touch=True)
    phone = await context.new_page()
    phone.set_default_timeout(20000)
    await phone.goto("/app/m")
    await phone.wait_for_url("**/app/m/login")
    await phone.fill("input[data-testid=resident-phone]", phone_number)
    await phone.click("[data-testid=send-code]")
    await expect(phone.locator("[data-testid=code-sent]")).to_be_visible()
    await phone.fill("input[data-testid=resident-code]", await texted_code(platform, phone_number))
    await phone.locator("[data-testid=consent]").click()
    await phone.click("[data-testid=resident-submit]")
    await phone.wait_for_url("**/app/m")
    await phone.locator("[data-bundle=LB-003]").tap()
    await expect(phone.locator("[data-testid=chosen-bundle]")).to_have_text("开办餐饮店一件事")
    await expect(phone.locator("[data-testid=bundle-merged]")).to_contain_text("已合并")
    await expect(phone.locator("[data-testid=materials]")).to_contain_text("营业执照")
    await phone.fill("input[data-testid=resident-name]", "餐饮店老板")
    await phone.click("[data-testid=take-ticket]")
    await expect(phone.locator("[data-testid=waiting]")).to_be_visible()
    await expect(phone.locator("[data-testid=waiting-item]")).to_contain_text("开办餐饮店一件事")
    await screenshot(phone, "resident-bundle-waiting")
    number = (await phone.locator("[data-testid=ticket-number]").inner_text()).strip()
    admin = await platform.login("admin")
    ticket = next(t for t in (await admin.get("/api/tickets")).body if t["number"] == number)
    assert ticket["source"] == "direct" and ticket["bundle_id"] is not None
