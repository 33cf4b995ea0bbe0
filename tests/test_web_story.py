"""The story of the design, in four browsers: a community worker takes a ticket for an item
found by its pinyin initials, a clerk calls it, they see each other, documents go up (one of
them by remote capture, returned once and taken again) and are accepted; the clerk invites an
expert, who hears the invitation, accepts and consults in the private channel (seen and heard
by the clerk, never by the extension point), writes an opinion, and is brought into the call
where all three see each other; the clerk shares the screen and completes the case, the
resident rates it, and the supervisor's wall display counts one more served."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.async_api import Browser, Page, Request, Route, expect

from signaling.ids import participant_id, track_id
from tests.conftest import Platform
from tests.web import (  # noqa: F401  (fixtures of every browser test)
    browser,
    database_url,
    decoding,
    eventually,
    log_in,
    person,
    screenshot,
    settings,
)


def id_card_photo(path: Path) -> Path:
    """A photo large enough to take three chunks of the resumable upload (≈ 2.5 MB)."""
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 255, size=(1500, 2000, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=92)
    assert buffer.tell() > 2 * 1024 * 1024
    path.write_bytes(buffer.getvalue())
    return path


def line(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator("[data-testid=checklist] li.line", has_text=name)


async def received(page: Page) -> set[str]:
    """Track ids the page's call is offered or receives media of."""
    offered = await page.evaluate("window.yb.call ? window.yb.call.state.remote.map((r) => r.info.track_id) : []")
    return set(offered) | set(await page.evaluate("window.yb.stats().then(Object.keys)"))


async def muted_is(page: Page, track_id: str, muted: bool) -> bool:
    """The page receives that track and its sender says it is (not) muted."""
    return bool(await page.evaluate(
        "([id, muted]) => window.yb.call.state.remote.some((r) => r.info.track_id === id && r.info.muted === muted)",
        [track_id, muted]))


async def test_worker_clerk_and_supervisor_play_the_story(platform: Platform, browser: Browser, tmp_path: Path) -> None:
    worker_id = (await platform.login("worker1")).user["id"]
    clerk_id = (await platform.login("clerk4")).user["id"]
    expert_id = (await platform.login("expert1")).user["id"]

    _, wall = await person(browser, platform)
    await log_in(wall, "supervisor1")
    await wall.wait_for_url("**/app/wall")
    served_before = int(await wall.locator("[data-testid=served-today]").text_content() or "-1")

    # The worker: device check, then the item by its pinyin initials, the resident, a ticket.
    _, worker = await person(browser, platform)
    await log_in(worker, "worker1")
    await expect(worker.locator("[data-testid=check-camera]")).to_have_attribute("data-result", "ok")
    await expect(worker.locator("[data-testid=check-network]")).to_have_attribute("data-result", "ok", timeout=25000)
    await screenshot(worker, "worker-device-check")
    await worker.click("[data-testid=check-continue]")
    await worker.fill("input[data-testid=item-search]", "gljt")
    results = worker.locator("[data-testid=item-results] button")
    await expect(results.first).to_contain_text("高龄津贴申领")
    await results.first.click()
    await expect(worker.locator("[data-testid=materials]")).to_contain_text("户口簿")
    await worker.fill("input[data-testid=resident-name]", "李大爷")
    await worker.fill("input[data-testid=resident-id-number]", "330203195001011234")
    await worker.get_by_text("老年人", exact=True).click()
    await worker.click("[data-testid=take-ticket]")
    await expect(worker.locator("[data-testid=waiting]")).to_be_visible()
    number = (await worker.locator("[data-testid=ticket-number]").text_content() or "").strip()
    assert number.startswith("MZ")
    await expect(worker.locator("[data-testid=position]")).to_have_text("1")
    await expect(worker.locator("[data-testid=ahead]")).to_have_text("下一个就是您")
    await screenshot(worker, "worker-waiting")

    # The clerk picks the 民政 window of 高桥镇, sees the queue, calls next.
    _, clerk = await person(browser, platform)
    await log_in(clerk, "clerk4")
    await clerk.wait_for_url("**/app/clerk")
    await clerk.locator("[data-testid=window-choice]", has_text="民政").click()
    await expect(clerk.locator("[data-testid=queue-waiting]").first).to_have_text("1")
    await clerk.click("[data-testid=call-next]")
    await expect(clerk.locator("[data-testid=current-ticket]")).to_contain_text(number)
    # The ID number is masked on the console; the full number is one audited click away.
    await expect(clerk.locator("[data-testid=resident-id]")).to_have_text("330203********1234")
    await clerk.click("[data-testid=resident-reveal]")
    await expect(clerk.locator("[data-testid=resident-id]")).to_have_text("330203195001011234")

    # The call opens by itself on the worker's page; each side decodes the other's video.
    await expect(worker.locator("[data-testid=called-banner]")).to_be_visible()
    await decoding(clerk, track_id(participant_id(worker_id), "camera"))
    await decoding(worker, track_id(participant_id(clerk_id), "camera"))
    await clerk.click("[data-testid=start]")
    await expect(clerk.locator("[data-testid=ticket-status]")).to_have_text("办理中")

    # The worker switches to the other camera; the clerk keeps receiving the worker's video.
    await worker.locator("[data-testid=camera-select]").click()
    await worker.locator(".el-select-dropdown__item:visible", has_text="fake_device_2").click()
    await expect(worker.locator("[data-testid=camera-select]")).to_contain_text("fake_device_2")
    assert await worker.evaluate("window.yb.call.cameraTrack().label") == "fake_device_2"
    await decoding(clerk, track_id(participant_id(worker_id), "camera"))

    # They write to each other.
    await clerk.fill("input[data-testid=chat-input]", "请把身份证放到摄像头前")
    await clerk.keyboard.press("Enter")
    await expect(worker.locator("[data-testid=chat-messages]")).to_contain_text("请把身份证放到摄像头前")

    # The clerk turns the camera off for a moment; the worker's page says so.
    await clerk.click("[data-testid=mute-camera]")
    await expect(worker.locator("[data-testid=remote-muted]")).to_be_visible()
    await clerk.click("[data-testid=mute-camera]")
    await expect(worker.locator("[data-testid=remote-muted]")).to_be_hidden()

    # An ID card photo goes up in three chunks; the second is cut off once on the way and the
    # upload continues from where the server stands.
    cut: list[str] = []
    asked_where: list[str] = []

    async def flaky(route: Route, request: Request) -> None:
        if request.method == "PUT" and request.headers.get("upload-offset", "0") != "0" and not cut:
            cut.append(request.headers["upload-offset"])
            await route.abort("connectionreset")
        else:
            if request.method == "GET":
                asked_where.append(request.url)
            await route.continue_()

    await worker.route("**/api/uploads/**", flaky)
    id_line = line(worker, "身份证")
    await id_line.locator("input[data-testid=upload-input]").set_input_files(str(id_card_photo(tmp_path / "id.jpg")))
    progress = id_line.locator("[data-testid=upload-progress]")
    await expect(progress).to_have_attribute("data-phase", "done", timeout=60000)
    await expect(progress).to_have_attribute("data-percent", "100")
    assert cut and asked_where, "the upload was not interrupted and resumed"
    await expect(line(clerk, "身份证")).to_have_attribute("data-state", "provided")

    # The clerk asks for a capture of the household register; the worker allows it.
    await line(clerk, "户口簿").locator("[data-testid=capture]").click()
    await expect(worker.locator("[data-testid=capture-request]")).to_contain_text("户口簿")
    await worker.click("[data-testid=capture-allow]")
    await expect(line(clerk, "户口簿")).to_have_attribute("data-state", "provided", timeout=30000)
    await expect(line(clerk, "户口簿").locator(".thumb")).to_contain_text("远程拍照")

    # The first photo is returned with a reason, which the worker reads; a second capture follows.
    await line(clerk, "户口簿").locator(".thumb").first.click()
    await clerk.click("[data-testid=reject]")
    await clerk.fill("input[data-testid=reject-reason]", "照片不清楚，请重拍")
    await clerk.get_by_role("button", name="确认退回").click()
    await expect(clerk.locator("[data-testid=viewer-status]")).to_have_text("已退回")
    await clerk.keyboard.press("Escape")
    await expect(line(worker, "户口簿")).to_have_attribute("data-state", "rejected")
    await expect(line(worker, "户口簿")).to_contain_text("照片不清楚，请重拍")
    await line(clerk, "户口簿").locator("[data-testid=capture]").click()
    await worker.click("[data-testid=capture-allow]")
    await expect(line(clerk, "户口簿").locator(".thumb[data-status=provided]")).to_have_count(1, timeout=30000)

    # The clerk accepts both in the viewer; the worker sees it live.
    for name in ("身份证", "户口簿"):
        await line(clerk, name).locator(".thumb[data-status=provided]").click()
        await clerk.click("[data-testid=accept]")
        await expect(clerk.locator("[data-testid=viewer-status]")).to_have_text("已通过")
        await clerk.keyboard.press("Escape")
        await expect(line(clerk, name)).to_have_attribute("data-state", "accepted")
        await expect(line(worker, name)).to_have_attribute("data-state", "accepted")

    # A hard case: the clerk invites an expert from the pool. expert1 has the page open.
    _, expert = await person(browser, platform)
    await log_in(expert, "expert1")
    await expect(expert.locator("[data-testid=no-invitations]")).to_be_visible()
    await clerk.click("[data-testid=invite-experts]")
    await clerk.fill("input[data-testid=expert-specialty]", "养老")
    row = clerk.locator(f"[data-testid=expert-row][data-expert-id='{expert_id}']")
    await expect(clerk.locator("[data-testid=expert-row]")).to_have_count(1)
    await expect(row).to_have_attribute("data-presence", "online")
    await expect(row.locator("[data-testid=expert-free]")).to_have_text("空闲")
    await row.locator("[data-testid=expert-pick]").click()
    await clerk.fill("textarea[data-testid=invite-note]", "户籍从外区迁入，能否申领？")
    await clerk.click("[data-testid=invite-send]")
    invitation = clerk.locator(f"[data-testid=invitation][data-expert-id='{expert_id}']")
    await expect(invitation).to_have_attribute("data-status", "pending")
    await expect(invitation.locator("[data-testid=countdown]")).to_contain_text("剩余")

    # The invitation rings on the expert's page, with the case as it stands.
    card = expert.locator("[data-testid=invitation-card]")
    await expect(card.locator("[data-testid=case-item]")).to_have_text("高龄津贴申领")
    await expect(card.locator("[data-testid=case-resident]")).to_have_text("李大爷")
    await expect(card.locator("[data-testid=case-checklist] li[data-state=accepted]")).to_have_count(2)
    await expect(card.locator("[data-testid=case-documents]")).to_contain_text("身份证")
    await eventually(lambda: expert.evaluate("window.yb.sounds.invitation === 1"), what="the invitation sound")
    await card.locator("[data-testid=accept-invitation]").click()
    await expect(invitation).to_have_attribute("data-status", "accepted")
    await expect(invitation.locator("[data-testid=response-time]")).to_be_visible()

    # In the consultation channel: the clerk and the expert see each other and the extension
    # point; the extension point gets nothing of the expert.
    channel = expert.locator("[data-testid=expert-channel]")
    await expect(channel).to_have_attribute("data-channel", "consultation")
    await expect(channel).to_contain_text("群众看不到")
    await asyncio.gather(decoding(clerk, track_id(participant_id(expert_id), "camera")), decoding(expert, track_id(participant_id(clerk_id), "camera")),
                         decoding(expert, track_id(participant_id(worker_id), "camera")))
    tile = clerk.locator(f"[data-testid=remote-tile][data-track-id='u{expert_id}:camera']")
    await expect(tile.locator("[data-testid=private-badge]")).to_have_text("会商中（群众不可见）")
    await expect(clerk.locator("[data-testid=consult-stage]")).to_have_attribute("data-stage", "private")
    await expect(expert.locator("[data-testid=chat-input]")).to_have_count(0)  # the call's chat is not theirs yet
    await expert.fill("input[data-testid=consultation-input]", "建议先核实户籍迁入时间")
    await expert.keyboard.press("Enter")
    await expect(clerk.locator("[data-testid=consultation-messages]")).to_contain_text("建议先核实户籍迁入时间")
    await clerk.fill("input[data-testid=consultation-input]", "好的，我请社区查一下")
    await clerk.keyboard.press("Enter")
    await expect(expert.locator("[data-testid=consultation-messages]")).to_contain_text("我请社区查一下")

    # 私下交流: the clerk's voice goes to the expert only; the resident's side hears a muted microphone.
    await clerk.click("[data-testid=private-talk]")
    await expect(clerk.locator("[data-testid=private-talk-on]")).to_be_visible()
    await decoding(expert, track_id(participant_id(clerk_id), "side_microphone"))
    await eventually(lambda: muted_is(worker, track_id(participant_id(clerk_id), "microphone"), True), what="the clerk's microphone muted for the worker")
    await clerk.click("[data-testid=private-talk]")
    await expect(clerk.locator("[data-testid=private-talk-on]")).to_be_hidden()
    await eventually(lambda: muted_is(worker, track_id(participant_id(clerk_id), "microphone"), False), what="the clerk's microphone back for the worker")

    # The expert reads the case's documents (no review: that is the clerk's).
    await line(expert, "身份证").locator(".thumb").first.click()
    await expect(expert.locator("[data-testid=viewer-status]")).to_have_text("已通过")
    await expect(expert.locator("[data-testid=accept]")).to_have_count(0)
    await expert.keyboard.press("Escape")

    # The expert's opinion reaches the clerk at once.
    await expert.fill("textarea[data-testid=opinion-input]", "户籍迁入满一年即可申领，建议补充户口簿首页")
    await expert.click("[data-testid=opinion-submit]")
    await expect(clerk.locator("[data-testid=opinions]")).to_contain_text("户籍迁入满一年即可申领")

    # Nothing of it reached the extension point.
    private = {track_id(participant_id(expert_id), "camera"), track_id(participant_id(expert_id), "microphone"), track_id(participant_id(clerk_id), "side_microphone")}
    assert not (await received(worker)) & private
    assert not await worker.evaluate("window.yb.call.state.participants.some((p) => p.role === 'expert')")
    await expect(worker.locator("[data-testid=chat-messages]")).not_to_contain_text("户籍")
    assert not await worker.evaluate(
        "window.yb.live.log.some(([name, data]) => name.startsWith('invitation') || name.startsWith('opinion')"
        " || name.startsWith('consultation') || (data && data.channel === 'consultation') || (data && data.role === 'expert'))")

    # 请专家进入通话: three pages, each decoding the other two; the extension point sees "专家 孙建国".
    await clerk.click("[data-testid=bring-in]")
    await expect(channel).to_have_attribute("data-channel", "call")
    await expect(clerk.locator("[data-testid=consult-stage]")).to_have_attribute("data-stage", "main")
    await asyncio.gather(*(decoding(page, track_id(participant_id(other), "camera")) for page, others in (
        (worker, (clerk_id, expert_id)), (clerk, (worker_id, expert_id)), (expert, (worker_id, clerk_id)),
    ) for other in others))
    await decoding(worker, track_id(participant_id(expert_id), "microphone"))
    expert_tile = worker.locator(f"[data-testid=remote-tile][data-track-id='u{expert_id}:camera']")
    await expect(expert_tile).to_contain_text("专家 孙建国")
    await expect(expert_tile.locator("[data-testid=private-badge]")).to_have_count(0)
    await expect(worker.locator("[data-testid=video-stage]")).to_have_attribute("data-layout", "grid")
    await expect(tile.locator("[data-testid=private-badge]")).to_have_count(0)
    for page, name in ((worker, "worker-call"), (clerk, "clerk-console"), (expert, "expert-consultation")):
        await screenshot(page, name)
    # 一次性告知 from the case goes to the number the resident gave; 李大爷 gave none: said in words
    await clerk.click("[data-testid=case-send-checklist]")
    await expect(clerk.get_by_text("该办件没有登记群众的手机号")).to_be_visible()
    await expert.fill("input[data-testid=chat-input]", "大爷您好，我是民政专家")
    await expert.keyboard.press("Enter")
    await expect(worker.locator("[data-testid=chat-messages]")).to_contain_text("我是民政专家")
    assert track_id(participant_id(clerk_id), "side_microphone") not in await received(worker)

    # 请专家回避: the extension point loses the expert at once; clerk and expert still consult.
    await clerk.click("[data-testid=send-back]")
    await expect(channel).to_have_attribute("data-channel", "consultation")
    await expect(worker.locator(f"[data-testid=remote-tile][data-track-id='u{expert_id}:camera']")).to_have_count(0)
    await eventually(lambda: worker.evaluate("!window.yb.call.state.participants.some((p) => p.role === 'expert')"),
                     what="the expert gone from the worker's call")
    await expect(tile.locator("[data-testid=private-badge]")).to_be_visible()
    await expect(invitation.locator(".where")).to_have_attribute("data-channel", "consultation")
    await expect(invitation.locator(".where")).to_have_text("在会商频道中")  # still in the clerk's call
    await expect(expert.locator("[data-testid=chat-input]")).to_have_count(0)

    # Screen sharing: the worker's page receives the clerk's screen as a second video.
    await clerk.click("[data-testid=share-screen]")
    await decoding(worker, track_id(participant_id(clerk_id), "screen"))
    await expect(worker.locator("[data-testid=remote-main]")).to_have_attribute("data-source", "screen")
    await screenshot(worker, "worker-screen-share")

    # Completing on the spot is refused while required lines are missing; the clerk reads why
    # and closes the case as "materials incomplete".
    await clerk.click("[data-testid=complete]")
    await clerk.click("[data-testid=complete-confirm]")
    await expect(clerk.locator("[data-testid=complete-error]")).to_contain_text("必需材料未齐")
    await expect(clerk.locator("[data-testid=complete-error]")).to_contain_text("社保卡")
    await clerk.locator("[data-result=materials_incomplete]").click()
    await clerk.click("[data-testid=complete-confirm]")
    await expect(clerk.locator("[data-testid=ended]")).to_contain_text(number)
    await expect(expert.locator("[data-testid=consultation-ended]")).to_contain_text(number)

    # The resident rates on the worker's screen; the clerk and the wall display see it.
    await expect(worker.locator("[data-testid=rating]")).to_be_visible()
    await worker.click("[data-score='5']")
    await worker.click("[data-testid=rating-submit]")
    await expect(worker.locator("[data-testid=rated]")).to_contain_text("非常满意")
    await expect(clerk.locator("[data-testid=ended-rating]")).to_contain_text("非常满意")
    await expect(wall.locator("[data-testid=served-today]")).to_have_text(str(served_before + 1))
    await expect(wall.locator("[data-testid=rating-average]")).to_have_text("5.0")
    await screenshot(wall, "supervisor-wall")
    await screenshot(worker, "worker-rating")

    worker_api = await platform.login("worker1")
    tickets = (await worker_api.get("/api/tickets")).body
    mine = next(t for t in tickets if t["number"] == number)
    assert mine["status"] == "completed" and mine["result"] == "materials_incomplete"
    assert mine["rating"]["score"] == 5 and mine["priority"] == "elderly"
