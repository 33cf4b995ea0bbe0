"""屏对屏 in the browser: a resident on their own phone (Chromium with a phone's viewport and touch,
fake camera) signs in with the code texted to them (read from the outbox), finds the item, takes a
ticket, is called by a clerk; both decode each other's video; the resident photographs a document
from the phone page and rates the service."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from server.keys import MONITOR
from signaling.ids import participant_id, track_id
from tests.conftest import Platform
from tests.helpers import district_item, resident_sign_in, take, texted_code
from tests.media import phone_photo
from tests.web import browser, database_url, decoding, log_in, person, screenshot, settings  # noqa: F401  (fixtures of every browser test)

PHONE = "13700137000"
PHONE_VIEWPORT = {"width": 390, "height": 844}


async def test_a_resident_is_served_on_their_own_phone(platform: Platform, browser: Browser, tmp_path: Path) -> None:
    context = await browser.new_context(permissions=["camera", "microphone"], base_url=platform.base,
                                        viewport=PHONE_VIEWPORT, is_mobile=True, has_touch=True)
    phone = await context.new_page()
    phone.set_default_timeout(20000)
    await phone.goto("/app/m")
    await phone.wait_for_url("**/app/m/login")
    await phone.fill("input[data-testid=resident-phone]", "1370013")
    await phone.click("[data-testid=send-code]")
    await expect(phone.locator("[data-testid=sign-in-error]")).to_contain_text("11 位手机号")
    await phone.fill("input[data-testid=resident-phone]", PHONE)
    await phone.click("[data-testid=send-code]")
    await expect(phone.locator("[data-testid=code-sent]")).to_contain_text("137****7000")
    await expect(phone.locator("[data-testid=send-code]")).to_contain_text("秒后重新获取")
    await phone.fill("input[data-testid=resident-code]", await texted_code(platform, PHONE))
    await phone.click("[data-testid=resident-submit]")
    await expect(phone.locator("[data-testid=sign-in-error]")).to_contain_text("个人信息保护告知书")
    await phone.click("[data-testid=show-notice]")
    await expect(phone.locator(".el-dialog")).to_contain_text("仅向为您办理本件业务的工作人员展示")
    await phone.keyboard.press("Escape")
    await phone.locator("[data-testid=consent]").click()
    await screenshot(phone, "resident-sign-in")
    await phone.click("[data-testid=resident-submit]")
    await phone.wait_for_url("**/app/m")

    # The item, asked by situation (办理情形): its questions, then exactly that situation's
    # checklist; a ticket in 高桥镇's 民政 queue.
    await phone.fill("input[data-testid=item-search]", "lnrydz")
    results = phone.locator("[data-testid=item-results] button")
    await expect(results.first).to_contain_text("老年人优待证办理")
    await results.first.tap()
    await phone.click("[data-testid=take-ticket]")
    await expect(phone.locator("[data-testid=take-error]")).to_contain_text("办理情形")
    await phone.locator("[data-option='非本市户籍']").tap()
    await expect(phone.locator("[data-testid=situation-name]")).to_have_text("非本市户籍老年人")
    await expect(phone.locator("[data-testid=materials]")).to_contain_text("本市居住证")
    await phone.click("[data-testid=take-ticket]")
    await expect(phone.locator("[data-testid=take-error]")).to_contain_text("姓名")
    await phone.fill("input[data-testid=resident-name]", "张大爷")
    await phone.click("[data-testid=take-ticket]")
    await expect(phone.locator("[data-testid=take-error]")).to_contain_text("请选择")  # a town's item: which town
    await phone.locator("[data-testid=resident-town]").click()
    await phone.locator(".el-select-dropdown__item:visible", has_text="高桥镇").click()
    await phone.click("[data-testid=take-ticket]")
    await expect(phone.locator("[data-testid=waiting]")).to_be_visible()
    await expect(phone.locator("[data-testid=position]")).to_have_text("1")
    number = (await phone.locator("[data-testid=ticket-number]").inner_text()).strip()
    await screenshot(phone, "resident-waiting")

    # 高桥镇's 民政 clerk calls it: the clerk sees it came from the resident's own phone.
    _, clerk = await person(browser, platform)
    await log_in(clerk, "clerk4")
    await clerk.wait_for_url("**/app/clerk")
    choice = clerk.locator("[data-testid=window-choice]", has_text="民政")
    if await choice.count():
        await choice.first.click()
    await clerk.click("[data-testid=call-next]")
    await expect(clerk.locator("[data-testid=current-ticket]")).to_contain_text(number)
    await expect(clerk.locator("[data-testid=ticket-source]")).to_contain_text("屏对屏")

    clerk_id = (await platform.login("clerk4")).user["id"]
    await expect(phone.locator("[data-testid=called-banner]")).to_be_visible()
    await decoding(phone, track_id(participant_id(clerk_id), "camera"))
    me = await phone.evaluate("fetch('/api/me', {headers: {Authorization: 'Bearer ' + localStorage.getItem('yb.token')}})"
                              ".then(r => r.json())")
    assert me["role"] == "resident" and me["display_name"] == "137****7000"
    await decoding(clerk, track_id(participant_id(me["id"]), "camera"))
    await clerk.click("[data-testid=start]")
    await screenshot(phone, "resident-call")

    # A photo from the phone's camera or gallery, through the same resumable upload.
    photo = tmp_path / "permit.jpg"
    photo.write_bytes(phone_photo())
    hukou = phone.locator("[data-testid=checklist] li.line", has_text="本市居住证")
    await hukou.locator("input[data-testid=upload-input]").set_input_files(str(photo))
    await expect(hukou.locator("[data-testid=upload-progress]")).to_have_attribute("data-phase", "done", timeout=60000)
    await expect(clerk.locator("[data-testid=situation-name]")).to_have_text("非本市户籍老年人")
    await expect(clerk.locator("[data-testid=checklist] li.line", has_text="本市居住证")).to_have_attribute(
        "data-state", "provided")

    await clerk.click("[data-testid=complete]")
    await clerk.locator("[data-result=materials_incomplete]").click()
    await clerk.click("[data-testid=complete-confirm]")
    await expect(clerk.locator("[data-testid=ended]")).to_contain_text(number)

    await expect(phone.locator("[data-testid=rating]")).to_be_visible()
    await phone.click("[data-score='5']")
    await phone.click("[data-testid=rating-submit]")
    await expect(phone.locator("[data-testid=rated]")).to_contain_text("非常满意")
    await expect(clerk.locator("[data-testid=ended-rating]")).to_contain_text("非常满意")
    await context.close()


async def test_a_booked_slot_enters_the_queue_ahead_of_a_walk_in(platform: Platform, browser: Browser) -> None:
    """预约 on the phone: the resident books today's next slot; a walk-in is taken meanwhile; at
    the slot (the server's clock moved on, the monitor's pass) the phone page is in the queue by
    itself, ahead of the walk-in."""
    resident = await resident_sign_in(platform, PHONE)
    worker = await platform.login("worker1")
    mz = (await district_item(worker, "MZ"))["department_id"]
    item = next(i for i in (await worker.get("/api/items", department_id=mz, level="district")).body
                if not i["situations"])
    context = await browser.new_context(base_url=platform.base, viewport=PHONE_VIEWPORT, is_mobile=True, has_touch=True)
    await context.add_init_script(f"localStorage.setItem('yb.token', {resident.token!r})")
    phone = await context.new_page()
    phone.set_default_timeout(20000)
    await phone.goto("/app/m")
    await phone.fill("input[data-testid=item-search]", item["name"])
    await phone.locator("[data-testid=item-results] button", has_text=item["name"]).first.tap()
    await phone.fill("input[data-testid=resident-name]", "预约的张三")
    await phone.click("[data-testid=book-open]")
    first = phone.locator("[data-testid=slots] button.slot").first
    await expect(first).to_contain_text("10:30")
    await expect(first).to_contain_text("余 3")
    await first.tap()
    await phone.click("[data-testid=book-confirm]")
    await expect(phone.locator("[data-testid=booking]")).to_contain_text("您已预约")
    await expect(phone.locator("[data-testid=booking-when]")).to_contain_text("10:30")
    await screenshot(phone, "resident-appointment")
    await phone.reload()
    await expect(phone.locator("[data-testid=booking]")).to_be_visible()  # kept by the server

    walk_in = await take(worker, item["id"], "现场的李四")
    platform.clock.advance(minutes=30)
    await platform.app[MONITOR].run_once()
    await expect(phone.locator("[data-testid=waiting]")).to_be_visible()
    await expect(phone.locator("[data-testid=position]")).to_have_text("1")
    assert (await worker.get(f"/api/tickets/{walk_in['id']}")).body["position"] == 2
    sms = [m for m in (await (await platform.login("admin")).get("/api/notifications")).body["messages"]
           if m["kind"] == "appointment"]
    assert any("已进入排队" in m["text"] for m in sms) and any("您已预约" in m["text"] for m in sms)
    await context.close()
