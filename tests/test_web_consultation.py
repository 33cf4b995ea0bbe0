"""Expert consultation in the browser, the answers other than "yes": an invitation declined
with a reason, one left to expire (the expert's late accept gets the server's words), both
shown live on the clerk's page, who then invites again; the pool's presence dots and the
expert's own "not taking invitations" switch. (The accepted consultation, in the call, is
part of the whole story in test_web_story.py.)"""

from __future__ import annotations

from playwright.async_api import Browser, Page, expect

from server.keys import MONITOR
from signaling.ids import participant_id, track_id
from tests.conftest import Platform
from tests.helpers import district_item, take, window_of
from tests.web import browser, database_url, decoding, eventually, log_in, person, settings  # noqa: F401  (fixtures of every browser test)


def expert_row(page: Page, expert_id: int):  # type: ignore[no-untyped-def]
    return page.locator(f"[data-testid=expert-row][data-expert-id='{expert_id}']")


def invitation_of(page: Page, expert_id: int, status: str | None = None):  # type: ignore[no-untyped-def]
    selector = f"[data-testid=invitation][data-expert-id='{expert_id}']"
    return page.locator(selector + (f"[data-status={status}]" if status else ""))


async def countdown(where) -> int:  # type: ignore[no-untyped-def]
    """Seconds left on the countdown shown there (on the server's clock, as the page estimates it)."""
    return int(await where.locator("[data-testid=countdown]").get_attribute("data-seconds") or -1)


async def rang(page: Page, times: int) -> bool:
    """The invitation sound was played that many times (window.yb.sounds counts them)."""
    return int(await page.evaluate("window.yb.sounds.invitation")) >= times


async def test_declined_and_expired_invitations_reach_the_clerk_who_invites_again(platform: Platform, browser: Browser) -> None:
    worker_api, clerk_api = await platform.login("worker1"), await platform.login("clerk1")
    item = await district_item(worker_api, "MZ")
    ticket = await take(worker_api, item["id"], "会商群众")
    assert (await clerk_api.post(f"/api/windows/{window_of(clerk_api)}/call-next")).body["id"] == ticket["id"]
    expert1 = (await platform.login("expert1")).user["id"]
    expert2 = (await platform.login("expert2")).user["id"]
    expert3 = (await platform.login("expert3")).user["id"]

    # expert1 keeps the page open and waits; expert2 is not logged in yet.
    _, sun = await person(browser, platform)
    await log_in(sun, "expert1")
    await expect(sun.locator("[data-testid=no-invitations]")).to_be_visible()

    _, clerk = await person(browser, platform)
    await log_in(clerk, "clerk1")
    await expect(clerk.locator("[data-testid=current-ticket]")).to_contain_text(ticket["number"])

    # The pool: presence dots, specialty search, pick two.
    await clerk.click("[data-testid=invite-experts]")
    await expect(expert_row(clerk, expert1)).to_have_attribute("data-presence", "online")
    await expect(expert_row(clerk, expert1).locator("[data-testid=expert-free]")).to_be_visible()
    await expect(expert_row(clerk, expert2)).to_have_attribute("data-presence", "offline")
    await expect(expert_row(clerk, expert3)).to_have_attribute("data-presence", "offline")
    await clerk.fill("input[data-testid=expert-specialty]", "医保")
    await expect(clerk.locator("[data-testid=expert-row]")).to_have_count(1)
    await expect(expert_row(clerk, expert2)).to_contain_text("吴晓燕")
    await clerk.fill("input[data-testid=expert-specialty]", "")
    await expect(clerk.locator("[data-testid=expert-row]")).to_have_count(3)
    await expert_row(clerk, expert1).locator("[data-testid=expert-pick]").click()
    await expert_row(clerk, expert2).locator("[data-testid=expert-pick]").click()
    await clerk.fill("textarea[data-testid=invite-note]", "户籍跨区迁入，能否申领？")
    await clerk.click("[data-testid=invite-send]")
    await expect(invitation_of(clerk, expert1, "pending")).to_have_count(1)
    await expect(invitation_of(clerk, expert2, "pending")).to_have_count(1)
    assert 100 <= await countdown(invitation_of(clerk, expert1)) <= 120

    # expert1 hears it arrive with the case; expert2 logs in later and finds it over HTTP.
    card = sun.locator("[data-testid=invitation-card]")
    await expect(card).to_have_attribute("data-status", "pending")
    await expect(card.locator("[data-testid=invitation-note]")).to_contain_text("户籍跨区迁入")
    await expect(card.locator("[data-testid=case-resident]")).to_have_text("会商群众")
    await eventually(lambda: rang(sun, 1), what="the invitation sound")
    assert 100 <= await countdown(card) <= 120

    _, wu = await person(browser, platform)
    await log_in(wu, "expert2")
    late_card = wu.locator("[data-testid=invitation-card]")
    await expect(late_card).to_have_attribute("data-status", "pending")
    await expect(late_card.locator("[data-testid=case-item]")).to_have_text(item["name"])
    assert 0 < await countdown(late_card) <= 120  # the PC's clock is hours off the server's here
    await late_card.locator("[data-testid=decline-invitation]").click()
    await wu.fill("input[data-testid=decline-reason]", "正在外出，无法视频")
    await wu.click("[data-testid=decline-confirm]")
    await expect(late_card).to_have_attribute("data-status", "declined")

    declined = invitation_of(clerk, expert2, "declined")
    await expect(declined.locator("[data-testid=decline-reason]")).to_contain_text("正在外出，无法视频")
    await expect(declined).to_contain_text("可以改请其他专家")

    # Two minutes pass: expert1's accept comes too late and the page says so in the server's words.
    platform.clock.advance(seconds=121)
    await card.locator("[data-testid=accept-invitation]").click()
    await expect(card.locator("[data-testid=invitation-error]")).to_contain_text("邀请已过期")
    await expect(card).to_have_attribute("data-status", "expired")
    await platform.app[MONITOR].run_once()
    expired = invitation_of(clerk, expert1, "expired")
    await expect(expired.locator("[data-testid=invitation-status]")).to_have_text("已过期")
    await expect(expired).to_contain_text("可以改请其他专家")
    timeline = (await clerk_api.get(f"/api/tickets/{ticket['id']}/consultations")).body["timeline"]
    assert sorted(e["kind"] for e in timeline) == ["declined", "expired", "invited", "invited"]

    # expert2 stops taking invitations: the pool shows it and cannot pick them.
    await wu.click("[data-testid=available-switch]")
    await expect(wu.locator("[data-testid=expert-desk]")).to_contain_text("已暂停接受会商邀请")
    listed = next(e for e in (await clerk_api.get("/api/experts")).body if e["id"] == expert2)
    assert listed["available"] is False

    # The clerk asks expert1 again; the new invitation rings once more.
    await clerk.click("[data-testid=invite-experts]")
    await expect(expert_row(clerk, expert2)).to_contain_text("暂停接受会商")
    await expect(expert_row(clerk, expert2).locator("[data-testid=expert-pick] input")).to_be_disabled()
    await expert_row(clerk, expert1).locator("[data-testid=expert-pick]").click()
    await clerk.click("[data-testid=invite-send]")
    await expect(invitation_of(clerk, expert1, "pending")).to_have_count(1)
    await expect(sun.locator("[data-testid=invitation-card][data-status=pending]")).to_have_count(1)
    await eventually(lambda: rang(sun, 2), what="a second invitation sound")


async def test_an_expert_comes_back_into_the_consultation_after_a_reload_and_after_stepping_out(
    platform: Platform, browser: Browser,
) -> None:
    worker_api, clerk_api = await platform.login("worker1"), await platform.login("clerk1")
    ticket = await take(worker_api, (await district_item(worker_api, "MZ"))["id"], "会商群众")
    assert (await clerk_api.post(f"/api/windows/{window_of(clerk_api)}/call-next")).body["id"] == ticket["id"]
    expert_api = await platform.login("expert1")
    expert_id, clerk_id = expert_api.user["id"], clerk_api.user["id"]
    invited = await clerk_api.post(f"/api/tickets/{ticket['id']}/consultations", {"expert_ids": [expert_id]})
    assert (await expert_api.post(f"/api/invitations/{invited.body['invitations'][0]['id']}/accept")).status == 200

    _, clerk = await person(browser, platform)
    await log_in(clerk, "clerk1")
    await expect(invitation_of(clerk, expert_id, "accepted")).to_have_count(1)

    # Opening the page finds the consultation and goes straight into it, in the private channel.
    _, expert = await person(browser, platform, viewport={"width": 1024, "height": 768})
    await log_in(expert, "expert1")
    room = expert.locator("[data-testid=consultation-room]")
    await expect(room).to_have_attribute("data-ticket-id", str(ticket["id"]))
    await expect(expert.locator("[data-testid=expert-channel]")).to_have_attribute("data-channel", "consultation")
    await decoding(clerk, track_id(participant_id(expert_id), "camera"))
    await decoding(expert, track_id(participant_id(clerk_id), "camera"))
    await expect(invitation_of(clerk, expert_id).locator(".where")).to_have_text("在会商频道中")

    # A reload: the same place in the call, media again.
    await expert.reload()
    await expect(expert.locator("[data-testid=expert-channel]")).to_have_attribute("data-channel", "consultation")
    await expect(expert.locator("[data-testid=call-phase]")).to_have_attribute("data-phase", "connected")
    await decoding(expert, track_id(participant_id(clerk_id), "camera"))
    await decoding(clerk, track_id(participant_id(expert_id), "camera"))

    # Stepping out of the video keeps the consultation; the clerk sees the expert gone, then back.
    await expert.click("[data-testid=leave-consultation]")
    await expect(expert.locator("[data-testid=my-consultation]")).to_contain_text(ticket["number"])
    await expect(room).to_have_count(0)
    await expect(invitation_of(clerk, expert_id).locator(".where")).to_have_text("尚未进入视频")
    await expect(expert.locator("[data-testid=my-presence]")).to_contain_text("在线")
    await expert.click("[data-testid=open-consultation]")
    await expect(expert.locator("[data-testid=call-phase]")).to_have_attribute("data-phase", "connected")
    await decoding(clerk, track_id(participant_id(expert_id), "camera"))
    await expect(invitation_of(clerk, expert_id).locator(".where")).to_have_text("在会商频道中")
    kinds = [e["kind"] for e in (await clerk_api.get(f"/api/tickets/{ticket['id']}/consultations")).body["timeline"]]
    assert kinds.count("left") == 1 and kinds.count("joined") >= 2
