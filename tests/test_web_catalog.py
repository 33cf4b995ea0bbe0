"""The catalogue page in the browser: the admin creates an item with its general checklist and
what it issues (told in words when its code is taken, the form kept), renames a line a case has
filed a document under (the line keeps its id, the document stays filed) and is told why a line
with a document cannot be dropped; then builds a 一事联办 bundle of that item and another one.
The worker's take page offers the bundle with its merged checklist, the line the new item
issues passed on inside the government; the clerk's checklist of the case says which items need
each line and which item issues it."""

from __future__ import annotations

from playwright.async_api import Browser, Page, expect

from tests.conftest import Platform
from tests.helpers import take, window_of
from tests.media import phone_photo
from tests.test_documents import upload
from tests.web import browser, database_url, log_in, person, screenshot, settings  # noqa: F401  (fixtures of every browser test)

ITEM = "小餐饮店登记"


async def pick(page: Page, select: str, option: str) -> None:
    """Choose an option of an Element Plus select (filterable: typed, then clicked)."""
    await page.locator(f"[data-testid={select}]").click()
    await page.keyboard.type(option)
    await page.locator(".el-select-dropdown__item:visible", has_text=option).first.click()


async def test_the_admin_edits_an_item_and_builds_a_bundle_the_worker_then_offers(platform: Platform,
                                                                                  browser: Browser) -> None:
    _, admin = await person(browser, platform)
    await log_in(admin, "admin")
    await admin.click("[data-testid=nav-catalog]")
    await admin.wait_for_url("**/app/catalog")

    await admin.click("[data-testid=new-item]")
    form = admin.locator("[data-testid=item-form]")
    await admin.fill("input[data-testid=item-form-code]", "SC-001")  # 个体工商户设立登记's
    await admin.fill("input[data-testid=item-form-name]", ITEM)
    await pick(admin, "item-form-department", "市场监管")
    await admin.click("[data-testid=guess-initials]")
    await expect(admin.locator("input[data-testid=item-form-initials]")).to_have_value("xcyddj")
    await admin.fill("input[data-testid=item-form-produces]", "营业执照")
    for name, note, required in (("经营者身份证", "原件", True), ("经营场所证明", "租赁合同或房产证", True),
                                 ("健康证明", "", False)):
        await form.locator("[data-testid=add-material]").click()
        line = form.locator("[data-testid=material-line]").last
        await line.locator("input[data-testid=material-name]").fill(name)
        await line.locator("input[data-testid=material-note]").fill(note)
        if not required:
            await line.locator("[data-testid=material-required]").click()
    await form.locator("[data-testid=material-line]").nth(2).locator("[data-testid=material-up]").click()
    await admin.click("[data-testid=save-item]")
    await expect(admin.locator("[data-testid=item-form-error]")).to_contain_text("事项编码 SC-001 已存在")
    await expect(form.locator("input[data-testid=material-name]")).to_have_count(3)  # the form as it was left
    await admin.fill("input[data-testid=item-form-code]", "SC-901")
    await admin.click("[data-testid=save-item]")
    await expect(form).to_be_hidden()
    facts = admin.locator("[data-testid=item-facts]")
    await expect(facts).to_contain_text("SC-901")
    await expect(admin.locator("[data-testid=item-produces]")).to_have_text("营业执照")
    await expect(admin.locator("[data-testid=item-materials] li strong")).to_have_text(
        ["经营者身份证", "健康证明", "经营场所证明"])

    # a case files a document under 经营场所证明 (clerk2's district window serves 市场监管 and 公安)
    worker, clerk = await platform.login("worker1"), await platform.login("clerk2")
    item = next(i for i in (await worker.get("/api/items", q=ITEM)).body if i["code"] == "SC-901")
    assert item["initials"] == "xcyddj" and item["produces"] == ["营业执照"]
    premises = next(m for m in item["materials"] if m["name"] == "经营场所证明")
    ticket = await take(worker, item["id"], "开店的人")
    assert (await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")).body["id"] == ticket["id"]
    filed = await upload(clerk, ticket["id"], premises["id"], phone_photo())
    assert filed.status == 201, filed

    await admin.click("[data-testid=edit-item]")
    premises_line = form.locator(f"[data-testid=material-line][data-line-id='{premises['id']}']")
    await premises_line.locator("[data-testid=material-remove]").click()
    await admin.click("[data-testid=save-item]")
    await expect(admin.locator("[data-testid=item-form-error]")).to_contain_text("已有办件上传了材料，不能删除")
    await expect(form.locator("[data-testid=material-line]")).to_have_count(2)  # kept as the admin left it
    await admin.locator(".el-dialog__footer button", has_text="取消").click()
    await admin.click("[data-testid=edit-item]")
    await premises_line.locator("input[data-testid=material-name]").fill("经营场所使用证明")
    await admin.wait_for_timeout(500)  # Element Plus's transitions settle before the picture
    await screenshot(admin, "admin-catalog-item")
    await admin.click("[data-testid=save-item]")
    await expect(form).to_be_hidden()
    await expect(admin.locator("[data-testid=item-materials]")).to_contain_text("经营场所使用证明")
    renamed = (await worker.get(f"/api/items/{item['id']}")).body["materials"]
    assert [m["id"] for m in renamed] == [m["id"] for m in item["materials"]], "every line keeps its id"
    line = next(c for c in (await clerk.get(f"/api/tickets/{ticket['id']}/checklist")).body
                if c["material_id"] == premises["id"])
    assert (line["name"], line["document_ids"]) == ("经营场所使用证明", [filed.body["id"]])
    assert (await clerk.post(f"/api/tickets/{ticket['id']}/start")).status == 200
    done = await clerk.post(f"/api/tickets/{ticket['id']}/complete", {"result": "materials_incomplete"})
    assert done.status == 200, done

    await admin.click("#tab-bundles")
    await admin.click("[data-testid=new-bundle]")
    await admin.fill("input[data-testid=bundle-form-code]", "LB-901")
    await admin.fill("input[data-testid=bundle-form-name]", "小餐饮开业一件事")
    await admin.fill("textarea[data-testid=bundle-form-description]", "小餐饮店登记后刻制公章。")
    await pick(admin, "bundle-item-picker", "公章刻制备案")
    await admin.click("[data-testid=bundle-add-item]")
    await admin.click("[data-testid=save-bundle]")
    await expect(admin.locator("[data-testid=bundle-form-error]")).to_contain_text("至少包含两个事项")
    await pick(admin, "bundle-item-picker", ITEM)
    await admin.click("[data-testid=bundle-add-item]")
    await admin.locator("[data-testid=bundle-form-item][data-item='SC-901'] button", has_text="↑").click()
    await expect(admin.locator("[data-testid=bundle-form-item]")).to_have_count(2)
    await expect(admin.locator("[data-testid=bundle-form-item]").first).to_have_attribute("data-item", "SC-901")
    await admin.click("[data-testid=save-bundle]")
    detail = admin.locator("[data-testid=bundle-detail]")
    await expect(detail).to_have_attribute("data-bundle", "LB-901")
    await expect(detail.locator("[data-testid=bundle-fewer-materials]")).to_have_text("减少材料 2 件")
    await expect(detail.locator("[data-testid=bundle-fewer-trips]")).to_have_text("减少跑动 1 次")
    await expect(detail.locator("[data-testid=bundle-detail-checklist] li[data-issued=yes]")).to_contain_text(
        f"营业执照由「{ITEM}」办结后内部流转")
    await admin.wait_for_timeout(500)
    await screenshot(admin, "admin-catalog-bundle")
    bundle = next(b for b in (await worker.get("/api/bundles")).body if b["code"] == "LB-901")
    assert [i["code"] for i in bundle["items"]] == ["SC-901", "GA-008"]

    context, take_page = await person(browser, platform)
    await context.add_init_script("sessionStorage.setItem('yb.deviceCheck', 'done')")
    await log_in(take_page, "worker1")
    await take_page.locator("[data-bundle=LB-901]").click()
    await expect(take_page.locator("[data-testid=chosen-bundle]")).to_have_text("小餐饮开业一件事")
    await expect(take_page.locator("[data-testid=bundle-merged]")).to_have_text("已合并 2 项材料")
    materials = take_page.locator("[data-testid=materials]")
    await expect(materials).to_contain_text("经营场所使用证明")
    await expect(materials.locator("li[data-issued=yes]")).to_contain_text("营业执照")
    await expect(materials.locator("li[data-issued=yes] [data-testid=issued]")).to_have_text("无需提交（内部流转）")
    await take_page.fill("input[data-testid=resident-name]", "小餐饮老板")
    await take_page.click("[data-testid=take-ticket]")
    await expect(take_page.locator("[data-testid=waiting-item]")).to_contain_text("小餐饮开业一件事")

    _, desk = await person(browser, platform)
    await log_in(desk, "clerk2")
    await desk.wait_for_url("**/app/clerk")
    if await desk.locator("[data-testid=window-choice]").count():
        await desk.locator("[data-testid=window-choice]").first.click()
    await desk.click("[data-testid=call-next]")
    checklist = desk.locator("[data-testid=checklist]")
    licence = checklist.locator("li.line", has_text="营业执照")
    await expect(licence.locator("[data-testid=line-issued]")).to_have_text(f"由「{ITEM}」办结后内部流转")
    await expect(licence.locator("[data-testid=line-items]")).to_have_text("公章刻制备案 需要")
    shared = checklist.locator("li.line", has_text="经营者身份证")
    await expect(shared.locator("[data-testid=line-items]")).to_have_text(f"{ITEM}、公章刻制备案 需要")


async def test_the_admin_renames_a_situations_line_a_case_filed_a_document_under(platform: Platform,
                                                                                   browser: Browser) -> None:
    """The situation editor sends each line's id: a renamed line keeps the documents filed under it
    (it used to send names only, and the server refused the rename with 409 material_in_use)."""
    worker, clerk = await platform.login("worker1"), await platform.login("clerk2")
    item = (await worker.get("/api/items", q="jmsfz")).body[0]
    situation = next(s for s in item["situations"] if s["name"] == "补领·年满16周岁")
    line = situation["materials"][0]
    ticket = await take(worker, item["id"], "补证的人", situation_id=situation["id"])
    assert (await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")).body["id"] == ticket["id"]
    filed = await upload(clerk, ticket["id"], line["id"], phone_photo())
    assert filed.status == 201, filed

    _, admin = await person(browser, platform)
    await log_in(admin, "admin")
    await admin.click("[data-testid=nav-catalog]")
    await admin.fill("input[data-testid=catalog-search]", "jmsfz")
    await admin.locator(f"button[data-item='{item['code']}']").click()
    await admin.locator(f"[data-situation='{situation['name']}'] [data-testid=edit-situation]").click()
    form = admin.locator("[data-testid=situation-form]")
    row = form.locator(f"[data-testid=material-line][data-line-id='{line['id']}']")
    await row.locator("input[data-testid=material-name]").fill(line["name"] + "（本人）")
    await row.locator("[data-testid=material-down]").click()
    await admin.click("[data-testid=save-situation]")
    await expect(form).to_be_hidden()
    await expect(admin.locator(f"[data-situation='{situation['name']}']")).to_contain_text(line["name"] + "（本人）")
    checklist = (await clerk.get(f"/api/tickets/{ticket['id']}/checklist")).body
    kept = next(c for c in checklist if c["material_id"] == line["id"])
    assert (kept["name"], kept["document_ids"]) == (line["name"] + "（本人）", [filed.body["id"]])
    await admin.locator(f"[data-situation='{situation['name']}'] [data-testid=toggle-situation]").click()
    await expect(admin.locator(f"[data-situation='{situation['name']}']")).to_contain_text("已停用")
