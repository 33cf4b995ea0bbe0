"""The browser client, one behaviour at a time: serving, the device check, the language
switch, the expert's desk, a worker page that survives a dropped connection, the debug hook
only in the test build, and clock times in the service's time zone."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, expect

from server.app import create_app
from server.config import Settings
from server.domain.clock import ManualClock
from signaling.ids import participant_id, track_id
from tests.conftest import Platform
from tests.helpers import district_item, take, window_of
from tests.web import browser, database_url, decoding, eventually, log_in, person, settings  # noqa: F401  (fixtures of every browser test)

ROOT = Path(__file__).resolve().parents[1]


async def test_root_leads_to_the_app_and_its_pages_survive_a_reload(platform: Platform) -> None:
    http = platform.http
    async with http.get(platform.base + "/", allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/app/"
    for path in ("/app/", "/app/clerk", "/app/worker/check", "/app/wall"):
        async with http.get(platform.base + path) as resp:
            assert resp.status == 200, path
            assert '<div id="app">' in await resp.text()
    async with http.get(platform.base + "/app/assets/no-such-file.js") as resp:
        assert resp.status == 404
    async with http.get(platform.base + "/app/../server/config.py") as resp:
        assert resp.status == 404 or '<div id="app">' in await resp.text()


async def test_the_app_goes_out_precompressed_to_a_village_link(platform: Platform) -> None:
    """Scripts and styles leave precompressed (brotli, else gzip), about a quarter of their size,
    immutable under their hashed names; the page itself is never cached stale. A file under 1 KB
    (web-client/scripts/compress.mjs) goes as it is: compressing it would save nothing."""
    http = platform.http
    async with http.get(platform.base + "/app/") as page:
        assert page.headers["Cache-Control"] == "no-cache"
        html = await page.text()
    assets = re.findall(r'/app/(assets/[^"]+\.(?:js|css))"', html)
    assert assets, html
    plain = compressed = 0
    for asset in assets:
        for encoding in ("br", "gzip", "identity"):
            async with http.get(f"{platform.base}/app/{asset}", headers={"Accept-Encoding": encoding},
                                auto_decompress=False) as resp:
                body = await resp.read()
                assert resp.status == 200, asset
                tiny = (ROOT / "web-client" / "dist" / asset).stat().st_size < 1024
                assert resp.headers.get("Content-Encoding") == (None if encoding == "identity" or tiny else encoding), asset
                assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
                assert "Accept-Encoding" in resp.headers.get("Vary", "") or encoding == "identity" or tiny
                plain += len(body) if encoding == "identity" else 0
                compressed += len(body) if encoding == "br" else 0
    assert compressed * 3 < plain, (compressed, plain)
    # the whole of a cold visit (the login page: Vue, the router, vue-i18n, no Element Plus) stays
    # light: 97 KB in brotli when the login page became plain HTML, 140 KB before; each KB is ~20 ms
    # on the constrained link of bench/weak_link.py (constrained.first_load_s)
    assert compressed < 110 * 1024, f"the first load grew to {compressed / 1024:.0f} KB: {assets}"


async def test_device_check_is_green_with_working_camera_microphone_and_network(platform: Platform, browser: Browser) -> None:
    _, page = await person(browser, platform)
    await log_in(page, "worker1")
    await page.wait_for_url("**/app/worker/check")
    for name in ("camera", "microphone", "network"):
        await expect(page.locator(f"[data-testid=check-{name}]")).to_have_attribute("data-result", "ok")
    await expect(page.locator("[data-testid=check-camera]")).to_contain_text("正常")
    await page.click("[data-testid=check-again]")
    await expect(page.locator("[data-testid=check-camera]")).to_have_attribute("data-result", "ok")
    await expect(page.locator("[data-testid=check-network]")).to_have_attribute("data-result", "ok", timeout=25000)
    await expect(page.locator("[data-testid=check-continue]")).to_have_text("检测通过，开始接待")
    await page.click("[data-testid=check-continue]")
    await page.wait_for_url("**/app/worker")
    await expect(page.locator("[data-testid=item-search]")).to_be_visible()


async def drop_connection(context, page) -> None:  # type: ignore[no-untyped-def]
    """The network goes away: the browser is offline and the open socket is cut."""
    await context.set_offline(True)
    await page.evaluate("window.yb.drop()")
    await expect(page.locator("[data-testid=reconnecting]")).to_contain_text("重新连接中…")


async def test_worker_page_gets_its_place_and_its_call_back_after_the_network_drops(platform: Platform, browser: Browser) -> None:
    other = await platform.login("worker2")
    worker_api = await platform.login("worker1")
    clerk_api = await platform.login("clerk1")
    item = (await district_item(worker_api, "MZ"))["id"]
    first = await take(other, item, "先来的群众")
    mine = await take(worker_api, item, "断网时的群众")
    clerk_id, worker_id = clerk_api.user["id"], worker_api.user["id"]

    context, worker = await person(browser, platform)
    await context.add_init_script("sessionStorage.setItem('yb.deviceCheck', 'done')")
    await log_in(worker, "worker1")
    await expect(worker.locator("[data-testid=ticket-number]")).to_have_text(mine["number"])
    await expect(worker.locator("[data-testid=position]")).to_have_text("2")

    # Offline while the queue moves: the page learns its new place once it is back.
    await drop_connection(context, worker)
    assert (await clerk_api.post(f"/api/windows/{window_of(clerk_api)}/call-next")).body["id"] == first["id"]
    await expect(worker.locator("[data-testid=reconnecting]")).to_be_visible()
    await context.set_offline(False)
    await expect(worker.locator("[data-testid=reconnecting]")).to_be_hidden()
    await expect(worker.locator("[data-testid=position]")).to_have_text("1")

    # The ticket is called while the page is offline: the call opens once it is back.
    await clerk_api.post(f"/api/tickets/{first['id']}/cancel", {"reason": "测试"})
    await drop_connection(context, worker)
    assert (await clerk_api.post(f"/api/windows/{window_of(clerk_api)}/call-next")).body["id"] == mine["id"]
    await context.set_offline(False)
    await expect(worker.locator("[data-testid=call-phase]")).to_have_attribute("data-phase", "connected")

    _, clerk = await person(browser, platform)
    await log_in(clerk, "clerk1")
    await expect(clerk.locator("[data-testid=current-ticket]")).to_contain_text(mine["number"])
    await decoding(clerk, track_id(participant_id(worker_id), "camera"))
    await decoding(worker, track_id(participant_id(clerk_id), "camera"))

    # In the call: the socket drops and comes back; the page rejoins its place in the call
    # and media flows both ways again, without a reload.
    await drop_connection(context, worker)
    await context.set_offline(False)
    await expect(worker.locator("[data-testid=reconnecting]")).to_be_hidden()
    await eventually(lambda: worker.evaluate("window.yb.call.state.rejoins >= 1 && window.yb.call.state.phase === 'connected'"),
                     what="the call rejoined")
    await decoding(worker, track_id(participant_id(clerk_id), "camera"))
    await decoding(clerk, track_id(participant_id(worker_id), "camera"))

    # A reloaded tab finds its ticket and takes its place in the call again by itself (a new page:
    # its session, socket, both peer connections and first frames — up to 15 s on a loaded machine).
    await worker.reload()
    await expect(worker.locator("[data-testid=call-phase]")).to_have_attribute("data-phase", "connected",
                                                                               timeout=15000)
    assert await worker.evaluate("window.yb.call.state.rejoins") == 1
    await decoding(worker, track_id(participant_id(clerk_id), "camera"))
    await decoding(clerk, track_id(participant_id(worker_id), "camera"))


async def test_the_language_switch_turns_the_interface_to_english_and_back(platform: Platform, browser: Browser) -> None:
    _, page = await person(browser, platform)
    await page.goto("/app/login")
    await expect(page.locator("[data-testid=login]")).to_have_text("登录")
    await page.get_by_role("button", name="English").click()
    await expect(page.locator("[data-testid=login]")).to_have_text("Log in")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await log_in(page, "worker1")
    await page.wait_for_url("**/app/worker/check")
    await expect(page.locator("h1")).to_have_text("Device check")
    await expect(page.locator("[data-testid=check-camera]")).to_contain_text("OK")
    await page.reload()
    await expect(page.locator("h1")).to_have_text("Device check")
    await page.get_by_role("button", name="中文").click()
    await expect(page.locator("h1")).to_have_text("设备检测")
    await expect(page.locator("[data-testid=check-again]")).to_have_text("再次检测")


async def test_login_errors_are_the_servers_words_and_experts_get_their_desk(platform: Platform, browser: Browser) -> None:
    _, page = await person(browser, platform)
    await log_in(page, "worker1", "wrong-password")
    error = page.locator("[data-testid=login-error]")
    await expect(error).to_be_visible()
    reply = await platform.anonymous().post("/api/auth/login", {"username": "worker1", "password": "wrong-password"})
    await expect(error).to_contain_text(reply.body["error"]["message"])
    await log_in(page, "expert1")
    await page.wait_for_url("**/app/expert")
    await expect(page.locator("[data-testid=expert-desk]")).to_contain_text("养老服务")
    await expect(page.locator("[data-testid=no-invitations]")).to_contain_text("现在没有会商邀请")
    await page.goto("/app/clerk")
    await page.wait_for_url("**/app/expert")


async def test_wall_display_follows_the_queue_raises_the_wait_alert_and_opens_a_tidal_window(platform: Platform, browser: Browser) -> None:
    from server.keys import MONITOR

    worker_api = await platform.login("worker1")
    clerk2 = (await platform.login("clerk2")).user
    _, wall = await person(browser, platform, viewport={"width": 1920, "height": 1080})
    await log_in(wall, "supervisor1")
    await wall.wait_for_url("**/app/wall")
    await expect(wall.locator("[data-testid=total-waiting]")).to_have_text("0")
    ticket = await take(worker_api, (await district_item(worker_api, "MZ"))["id"], "久等的群众")
    await expect(wall.locator("[data-testid=total-waiting]")).to_have_text("1")

    platform.clock.advance(minutes=16)
    raised = await platform.app[MONITOR].run_once()
    assert any(a["kind"] == "wait_timeout" and a["ticket_id"] == ticket["id"] for a in raised)
    alert = wall.locator("[data-testid=alerts] li[data-kind=wait_timeout]")
    await expect(alert).to_contain_text(ticket["number"])
    await expect(wall.locator("tr[data-department=MZ]")).to_have_class("yellow")
    await alert.locator("[data-testid=acknowledge]").click()
    await expect(alert).to_have_count(0)
    alerts = (await (await platform.login("supervisor1")).get("/api/alerts")).body
    assert next(a for a in alerts if a["kind"] == "wait_timeout")["acknowledged_at"] is not None

    await wall.get_by_role("button", name="开启潮汐窗口").click()
    dialog = wall.get_by_role("dialog")
    await dialog.locator(".el-select").first.click()
    await wall.locator(".el-select-dropdown__item:visible", has_text="民政").first.click()
    await dialog.locator(".el-input-number input").first.fill(str(clerk2["id"]))
    await dialog.get_by_role("button", name="开启", exact=True).click()
    await expect(dialog).to_be_hidden()
    tidal = wall.locator("ul.tidal li", has_text="民政")
    await expect(tidal).to_have_count(1)
    await tidal.get_by_role("button", name="关闭").click()
    await expect(tidal).to_have_count(0)


async def test_a_worker_page_whose_socket_comes_up_after_the_call_still_joins_it(platform: Platform, browser: Browser) -> None:
    """On a slow village link the page's first socket.io connection may come up after 叫号: the
    ticket.called event went out before it listened, so the page reads its ticket again on every
    connect, the first one included, and joins the call instead of waiting on a ticket already called."""
    worker_api, clerk_api = await platform.login("worker1"), await platform.login("clerk1")
    ticket = await take(worker_api, (await district_item(worker_api, "MZ"))["id"], "迟连群众")
    context, page = await person(browser, platform)
    await context.add_init_script("sessionStorage.setItem('yb.deviceCheck', 'done')")
    link_up = asyncio.Event()

    async def socket_io(route) -> None:  # type: ignore[no-untyped-def]
        await link_up.wait()  # long polling: held until the link is up
        await route.continue_()

    async def socket_io_ws(ws) -> None:  # type: ignore[no-untyped-def]
        await link_up.wait()  # and WebSocket, tried first
        ws.connect_to_server()

    await context.route("**/socket.io/**", socket_io)
    await context.route_web_socket("**/socket.io/**", socket_io_ws)
    await log_in(page, "worker1")
    await expect(page.locator("[data-testid=waiting]")).to_contain_text(ticket["number"])
    assert (await clerk_api.post(f"/api/windows/{window_of(clerk_api)}/call-next")).status == 200
    link_up.set()  # the page's first connection comes up now, after the call
    await expect(page.locator("[data-testid=called-banner]")).to_be_visible(timeout=20000)
    await expect(page.locator("[data-testid=waiting]")).to_be_hidden()


@asynccontextmanager
async def serving(settings: Settings, clock: ManualClock, browser: Browser) -> AsyncIterator[Page]:
    """A second app beside the platform's (same database, other settings), and a page on it."""
    server = TestServer(create_app(settings, clock=clock, run_monitor=False))
    await server.start_server()
    context = await browser.new_context(base_url=str(server.make_url("")).rstrip("/"))
    try:
        page = await context.new_page()
        page.set_default_timeout(20000)
        yield page
    finally:
        await context.close()
        await server.close()


async def test_only_the_test_build_carries_the_debug_hook(platform: Platform, browser: Browser, settings: Settings,
                                                          clock: ManualClock, tmp_path: Path) -> None:
    """window.yb (web-client/src/debug.ts) is for the browser tests, the benches and `npm run dev`:
    the test build these tests serve (`make web`: `npm run build:test`) has it; the production
    build (`npm run build`: the Dockerfile's, `make run`'s) has not, and its pages work the same."""
    _, page = await person(browser, platform)
    await log_in(page, "supervisor1")
    await expect(page.locator("[data-testid=total-waiting]")).to_have_text("0")
    assert await page.evaluate("typeof window.yb") == "object"

    production = tmp_path / "production"
    built = await asyncio.to_thread(
        subprocess.run, ["npx", "vite", "build", "--outDir", str(production), "--emptyOutDir", "--logLevel", "error"],
        cwd=ROOT / "web-client", capture_output=True, text=True)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    async with serving(settings.with_changes(web_dist=production), clock, browser) as page:
        await log_in(page, "supervisor1")
        await expect(page.locator("[data-testid=total-waiting]")).to_have_text("0")
        assert await page.evaluate("typeof window.yb") == "undefined"


async def test_clock_times_are_in_the_service_time_zone_the_server_gives(platform: Platform, browser: Browser,
                                                                         settings: Settings, clock: ManualClock) -> None:
    """The wall's 更新于 is the server's clock, 10:00 in Shanghai, shown in YUNBANG_TIMEZONE as
    /api/me and the login answer give it (service_timezone), whatever the browser's own zone."""
    assert (await platform.login("supervisor1")).user["service_timezone"] == "Asia/Shanghai"
    _, page = await person(browser, platform)
    await log_in(page, "supervisor1")
    await expect(page.locator(".wall-head .time")).to_have_text("更新于 10:00")

    tokyo = settings.with_changes(queue=dataclasses.replace(settings.queue, timezone="Asia/Tokyo"))
    async with serving(tokyo, clock, browser) as page:
        await log_in(page, "supervisor1")
        await expect(page.locator(".wall-head .time")).to_have_text("更新于 11:00")
