"""证照到期提醒 in the browser: the administrator imports a small CSV with one bad row on the
证照到期提醒 page and reads that row's number and reason, the good rows in the registry (phones
masked); the monitor texts the reminder; the holder opens its link on a phone without login,
reads what renews the certificate, goes on to 视频办理 (the phone sign-in, then the take page
with that item chosen), and from the link stops the reminders."""

from __future__ import annotations

import re

from playwright.async_api import Browser, expect

from server.keys import MONITOR
from tests.conftest import Platform
from tests.helpers import texted_code
from tests.web import browser, database_url, log_in, person, screenshot, settings  # noqa: F401  (fixtures of every browser test)

PHONE_VIEWPORT = {"width": 390, "height": 844}
HOLDER = "13900139021"
CSV = "\n".join((
    "持证人,手机号,身份证号,证照类型,证照编号,到期日期",
    f"张晓梅,{HOLDER},,居住证,330203202400118,2026-12-05",  # 12 days after the tests' Monday: the 30-day rule
    "刘建国,1390013,,居住证,330203202400362,2026-12-20",  # row 3: the phone is short
    "鼓楼小吃店,13900139023,,食品经营许可证,JY13302030012871,2027-05-01",
)).encode()


async def test_an_admin_imports_certificates_and_the_holder_opens_the_reminder_on_a_phone(
        platform: Platform, browser: Browser) -> None:
    context, admin = await person(browser, platform)
    await log_in(admin, "admin")
    await admin.click("[data-testid=nav-certificates]")
    await expect(admin.locator("[data-testid=certificate-types] tr[data-type='食品经营许可证']")).to_have_count(1)
    await admin.set_input_files("input[data-testid=certificate-file]",
                                files=[{"name": "证照.csv", "mimeType": "text/csv", "buffer": CSV}])
    await expect(admin.locator("[data-testid=import-result]")).to_contain_text("新增 2")
    await expect(admin.locator("[data-testid=import-result]")).to_contain_text("1 行有错误")
    errors = admin.locator("[data-testid=import-errors] tbody tr")
    await expect(errors).to_have_count(1)
    await expect(errors.first).to_contain_text("第 3 行")
    await expect(errors.first).to_contain_text("手机号应为 11 位手机号码")
    registry = admin.locator("[data-testid=registry]")
    await expect(registry).to_contain_text("139****9021")
    await expect(registry).not_to_contain_text(HOLDER)

    await platform.app[MONITOR].run_once()
    await admin.click("[data-testid=registry-query]")
    await expect(admin.locator("[data-testid=registry] tr[data-number='330203202400118']")).to_contain_text("到期前 30 天")
    await admin.click("[data-testid=report-query]")
    await expect(admin.locator("[data-testid=report-types]")).to_contain_text("居住证")
    await screenshot(admin, "admin-certificates")
    await context.close()

    messages = (await (await platform.login("admin")).get("/api/notifications")).body["messages"]
    sms = next(m for m in messages if m["kind"] == "certificate_reminder")
    link = re.search(r"/app/r/[A-Za-z0-9_-]+", sms["text"])
    assert link and sms["to"] == "139****9021", sms

    phone_context = await browser.new_context(base_url=platform.base, viewport=PHONE_VIEWPORT, is_mobile=True,
                                              has_touch=True)
    phone = await phone_context.new_page()
    phone.set_default_timeout(20000)
    await phone.goto(link.group(0))
    await expect(phone.locator("[data-testid=reminder-type]")).to_have_text("居住证")
    await expect(phone.locator("[data-testid=reminder-expiry]")).to_contain_text("还有 12 天")
    await expect(phone.locator("[data-testid=reminder-item]")).to_contain_text("居住证办理")
    await expect(phone.locator("[data-testid=public-reminder]")).to_contain_text("张*")
    await expect(phone.locator("[data-testid=public-reminder]")).not_to_contain_text("张晓梅")
    await screenshot(phone, "resident-certificate-reminder")

    # 视频办理: the phone sign-in first, then the take page with the renewing item chosen.
    await phone.click("[data-testid=reminder-video]")
    await phone.wait_for_url("**/app/m/login")
    await phone.fill("input[data-testid=resident-phone]", HOLDER)
    await phone.click("[data-testid=send-code]")
    await expect(phone.locator("[data-testid=code-sent]")).to_contain_text("139****9021")
    await phone.fill("input[data-testid=resident-code]", await texted_code(platform, HOLDER))
    await phone.locator("[data-testid=consent]").click()
    await phone.click("[data-testid=resident-submit]")
    await phone.wait_for_url("**/app/m")
    await expect(phone.locator("[data-testid=chosen-item]")).to_have_text("居住证办理")

    await phone.goto(link.group(0))
    phone.once("dialog", lambda dialog: dialog.accept())
    await phone.click("[data-testid=reminder-opt-out]")
    await expect(phone.locator("[data-testid=reminder-opted-out]")).to_contain_text("不会再收到到期提醒")
    await phone_context.close()
