"""网点一览 and 延伸点管理 in the browser: the district supervisor opens the wall's 网点 tab and reads
the 17 towns, 高桥镇's silent point in red and 梁祝村 online with its calls and today's tickets,
which go up live when worker1 takes another; the administrator imports points from a CSV with one
bad row on 延伸点管理, reads that row's number and reason, adds a worker to a new point and stops
another."""

from __future__ import annotations

from datetime import timedelta

from playwright.async_api import Browser, expect
from sqlalchemy import update

from server.keys import DB
from server.models import ExtensionPoint
from server.seed import seed_demo_connections
from tests.conftest import Platform
from tests.helpers import Listener, take, window_of
from tests.test_network import town_item
from tests.web import browser, database_url, log_in, person, screenshot, settings  # noqa: F401  (fixtures of every browser test)

SILENT = "岐阳村便民服务点"  # a 高桥镇 point whose worker last connected ten days ago
CSV = "\n".join((
    "延伸点名称,所属镇街,地址,联系电话,状态",
    "高桥镇商会便民服务点,高桥镇,高桥镇商会大楼一楼,0574-88112233,",
    "无名村便民服务点,无名镇,,,",  # row 3: no such town
    "高桥镇物流园便民服务点,高桥镇便民服务中心,物流园区管理中心,0574-88114455,",
)).encode()


async def test_the_wall_shows_the_network_and_the_admin_imports_points(platform: Platform, browser: Browser) -> None:
    db = platform.app[DB]
    now = platform.clock.now()
    await seed_demo_connections(db, now)  # the points used over the last two days, a few silent
    async with db.write() as session:
        await session.execute(update(ExtensionPoint).where(ExtensionPoint.name == SILENT)
                              .values(last_connected_at=now - timedelta(days=10)))

    worker1, clerk4 = await platform.login("worker1"), await platform.login("clerk4")
    item = (await town_item(worker1, "MZ"))["id"]
    first = await take(worker1, item, "李大爷")
    await take(worker1, item, "王大妈")
    assert (await clerk4.post(f"/api/windows/{window_of(clerk4)}/call-next")).body["id"] == first["id"]

    async with Listener() as socket:
        await socket.connect(platform, worker1)  # worker1 at 梁祝村, online now
        context, wall = await person(browser, platform, viewport={"width": 1600, "height": 1000})
        await log_in(wall, "supervisor1")
        await wall.click("[data-testid=wall-tab-network]")
        await wall.wait_for_url("**/app/wall?view=network")
        tiles = wall.locator("[data-testid=town-tile]")
        await expect(tiles).to_have_count(17)
        gaoqiao = wall.locator("[data-testid=town-tile][data-town='高桥镇']")
        await expect(gaoqiao.locator("[data-testid=town-silent]")).to_contain_text("个长期未连接")
        await expect(gaoqiao.locator("[data-testid=town-tickets]")).to_have_text("今日 2 号")
        await gaoqiao.click()
        points = wall.locator("[data-testid=town-points][data-town='高桥镇']")
        silent = points.locator(f"[data-testid=point-row][data-point='{SILENT}']")
        await expect(silent.locator("[data-testid=point-last]")).to_contain_text("10 天前")
        await expect(silent.locator("[data-testid=point-silent]")).to_have_text("超过 7 天未连接")
        online = points.locator("[data-testid=point-row][data-point='梁祝村便民服务点']")
        await expect(online).to_contain_text("梁祝村便民服务点 王芳")
        await expect(online.locator("[data-testid=point-last]")).to_have_text("在线")
        await expect(online.locator("td.num").nth(0)).to_contain_text("1 / 1")
        await expect(online.locator("td.num").nth(1)).to_have_text("1")

        # worker1 takes another ticket: the wall reads the network again on the live event.
        await take(worker1, item, "赵奶奶")
        await expect(gaoqiao.locator("[data-testid=town-tickets]")).to_have_text("今日 3 号")
        await expect(online.locator("td.num").nth(2)).to_have_text("3")
        await screenshot(wall, "supervisor-network-wall")
        # fourteen days: the point silent for ten is no longer counted
        await wall.locator("[data-testid=silent-days]").click()
        await wall.locator(".el-select-dropdown__item:visible", has_text="14 天").click()
        await expect(silent.locator("[data-testid=point-silent]")).to_have_count(0)
        await context.close()

    context, admin = await person(browser, platform)
    await log_in(admin, "admin")
    await admin.click("[data-testid=nav-points]")
    await expect(admin.locator("[data-testid=point-item]")).to_have_count(288)
    await admin.set_input_files("input[data-testid=point-file]",
                                files=[{"name": "延伸点.csv", "mimeType": "text/csv", "buffer": CSV}])
    await expect(admin.locator("[data-testid=import-result]")).to_contain_text("新增 2")
    await expect(admin.locator("[data-testid=import-result]")).to_contain_text("1 行有错误")
    errors = admin.locator("[data-testid=import-errors] tbody tr")
    await expect(errors).to_have_count(1)
    await expect(errors.first).to_contain_text("第 3 行")
    await expect(errors.first).to_contain_text("所属镇街")
    await expect(errors.first).to_contain_text("没有镇（街道）便民服务中心“无名镇”")
    await expect(admin.locator("[data-testid=point-item]")).to_have_count(290)
    org = (await (await platform.login("admin")).get("/api/org")).body
    in_gaoqiao = len(next(c for c in org["centres"] if c["name"] == "高桥镇便民服务中心")["extension_points"])

    await admin.locator("[data-testid=filter-town]").click()
    await admin.locator(".el-select-dropdown__item:visible", has_text="高桥镇便民服务中心").click()
    await expect(admin.locator("[data-testid=points-total]")).to_have_text(f"共 {in_gaoqiao} 个")
    new = admin.locator("[data-testid=point-item][data-point='高桥镇商会便民服务点']")
    await expect(new).to_contain_text("0574-88112233")
    await expect(new.locator("[data-testid=point-status]")).to_have_text("长期未连接")  # never connected yet
    await new.locator("[data-testid=point-workers]").click()
    staff = admin.locator("[data-testid=point-staff]")
    await expect(staff).to_contain_text("还没有工作人员")
    await staff.locator("input[data-testid=worker-username]").fill("shanghui1")
    await staff.locator("input[data-testid=worker-name]").fill("商会服务点 林晓")
    await staff.locator("input[data-testid=worker-password]").fill("short")
    await staff.locator("[data-testid=worker-add]").click()
    await expect(staff.locator("[data-testid=worker-error]")).to_contain_text("输入有误")
    await staff.locator("input[data-testid=worker-password]").fill("shanghui-2026")
    await staff.locator("[data-testid=worker-add]").click()
    await expect(staff.locator("li[data-username=shanghui1]")).to_contain_text("商会服务点 林晓")
    await expect(new.locator("td.num")).to_have_text("1")

    logistics = admin.locator("[data-testid=point-item][data-point='高桥镇物流园便民服务点']")
    await logistics.locator("[data-testid=point-toggle]").click()
    await admin.locator(".el-message-box__btns button", has_text="停用").click()
    await expect(logistics.locator("[data-testid=point-status]")).to_have_text("已停用")
    await expect(admin.locator(".el-message")).to_have_count(0, timeout=10000)  # the toasts gone
    await screenshot(admin, "admin-points")
    await context.close()

    shanghui = await platform.login("shanghui1", "shanghui-2026")
    assert shanghui.user["extension_point_id"] is not None
