"""屏对屏: residents and firms sign in on their own phone with a code texted to them (through
the outbox), take a ticket for themselves in the same queues, see only their own tickets, and
are served by a clerk exactly like a ticket taken at an extension point."""

from __future__ import annotations

import asyncio

from server.domain import residents
from server.keys import SETTINGS
from tests.conftest import Platform
from tests.helpers import district_item, resident_sign_in, take, texted_code, window_of

PHONE = "13700137000"


def valid_credit_code(body: str) -> str:
    """``body`` (17 characters) with its GB 32100-2015 check character."""
    chars, weights = residents.CREDIT_CODE_CHARS, residents.CREDIT_CODE_WEIGHTS
    total = sum(chars.index(c) * w for c, w in zip(body, weights, strict=True))
    return body + chars[(31 - total % 31) % 31]


async def codes_sent(platform: Platform) -> int:
    messages = (await (await platform.login("admin")).get("/api/notifications")).body["messages"]
    return sum(1 for m in messages if m["kind"] == "sign_in_code")


def test_the_credit_code_check_character() -> None:
    assert residents.credit_code_valid(valid_credit_code("91330212MA2GQ3XK0"))
    assert residents.credit_code_valid("91350100M000100Y43"), "a published example code"
    assert not residents.credit_code_valid("91350100M000100Y44"), "wrong check character"
    assert not residents.credit_code_valid("91350100M000100Y4"), "17 characters"
    assert not residents.credit_code_valid("91350100M000100I43"), "I is not in the alphabet"


async def test_a_resident_signs_in_with_the_texted_code_and_the_account_is_made_once(platform: Platform) -> None:
    anyone = platform.anonymous()
    notice = await anyone.get("/api/resident/privacy")
    assert notice.status == 200 and notice.body["version"] == residents.PRIVACY_VERSION and "个人信息" in notice.body["text"]
    sent = await anyone.post("/api/resident/code", {"phone": PHONE})
    assert sent.status == 201 and sent.body == {"expires_in_s": 300, "resend_after_s": 60}, sent
    code = await texted_code(platform, PHONE)
    without_consent = await anyone.post("/api/resident/sign-in", {"phone": PHONE, "code": code})
    assert (without_consent.status, without_consent.code) == (422, "consent_required"), without_consent
    first = await anyone.post("/api/resident/sign-in", {"phone": PHONE, "code": code, "consent": True})
    assert first.status == 200, first
    user = first.body["user"]
    assert user["role"] == "resident" and user["display_name"] == "137****7000", user
    assert PHONE not in str(first.body), "the number is never shown in full"
    again = await anyone.post("/api/resident/sign-in", {"phone": PHONE, "code": code, "consent": True})
    assert (again.status, again.code) == (401, "code_invalid"), "a code works once"

    platform.clock.advance(seconds=61)
    me = await resident_sign_in(platform)  # consent given before: not asked again
    assert me.user["id"] == user["id"], "the same number is the same account"
    assert (await me.get("/api/me")).body["role"] == "resident"
    assert (await anyone.post("/api/auth/login", {"username": user["username"], "password": "!"})).status == 401, \
        "a resident's account has no password"
    audit = (await (await platform.login("auditor1")).get("/api/audit", action="resident.sign_in")).body
    assert len(audit) == 2 and all(PHONE not in str(e) for e in audit)


async def test_codes_expire_and_take_five_wrong_tries(platform: Platform) -> None:
    anyone = platform.anonymous()
    assert (await anyone.post("/api/resident/code", {"phone": PHONE})).status == 201
    code = await texted_code(platform, PHONE)
    platform.clock.advance(seconds=301)
    expired = await anyone.post("/api/resident/sign-in", {"phone": PHONE, "code": code, "consent": True})
    assert (expired.status, expired.code) == (410, "code_expired"), expired

    assert (await anyone.post("/api/resident/code", {"phone": PHONE})).status == 201
    code = await texted_code(platform, PHONE)
    wrong = "000000" if code != "000000" else "111111"
    for left in (4, 3, 2, 1, 0):
        reply = await anyone.post("/api/resident/sign-in", {"phone": PHONE, "code": wrong, "consent": True})
        assert (reply.status, reply.code) == (401, "code_invalid") and reply.body["error"]["detail"]["attempts_left"] == left, reply
    locked = await anyone.post("/api/resident/sign-in", {"phone": PHONE, "code": code, "consent": True})
    assert (locked.status, locked.code) == (429, "code_attempts"), "the right code after five wrong ones is refused"
    bad = await anyone.post("/api/resident/sign-in", {"phone": PHONE, "code": "12ab", "consent": True})
    assert (bad.status, bad.code) == (422, "code_format")


async def test_codes_are_limited_per_number_and_per_address(platform: Platform) -> None:
    anyone = platform.anonymous()
    assert (await anyone.post("/api/resident/code", {"phone": PHONE})).status == 201
    soon = await anyone.post("/api/resident/code", {"phone": PHONE})
    assert (soon.status, soon.code) == (429, "code_too_soon") and 1 <= soon.body["error"]["detail"]["retry_after"] <= 61, soon
    for _ in range(4):
        platform.clock.advance(seconds=61)
        assert (await anyone.post("/api/resident/code", {"phone": PHONE})).status == 201
    platform.clock.advance(seconds=61)
    hourly = await anyone.post("/api/resident/code", {"phone": PHONE})
    assert (hourly.status, hourly.code) == (429, "codes_per_number"), hourly
    assert await codes_sent(platform) == 5, "a refused ask sends nothing"
    for n in range(15):  # the same address, other numbers: 20 an hour in all
        assert (await anyone.post("/api/resident/code", {"phone": f"1390000{n:04d}"})).status == 201
    other = await anyone.post("/api/resident/code", {"phone": "13600000000"})
    assert (other.status, other.code) == (429, "codes_per_address"), other
    assert (await anyone.post("/api/resident/code", {"phone": "12345"})).code == "phone_invalid"
    platform.clock.advance(hours=1, seconds=1)
    assert (await anyone.post("/api/resident/code", {"phone": PHONE})).status == 201, "an hour later it may again"


async def test_a_firm_signs_in_with_its_credit_code_and_name(platform: Platform) -> None:
    anyone = platform.anonymous()
    assert (await anyone.post("/api/resident/code", {"phone": PHONE})).status == 201
    code = await texted_code(platform, PHONE)
    bad = await anyone.post("/api/resident/sign-in", {"phone": PHONE, "code": code, "consent": True,
                                                      "firm": {"credit_code": "91350100M000100Y44", "name": "某公司"}})
    assert (bad.status, bad.code) == (422, "credit_code_invalid"), bad
    firm = {"credit_code": valid_credit_code("91330212MA2GQ3XK0").lower(), "name": "宁波市海曙区云帮办餐饮有限公司"}
    good = await anyone.post("/api/resident/sign-in", {"phone": PHONE, "code": code, "consent": True, "firm": firm})
    assert good.status == 200, "the bad firm did not use up the code"
    assert good.body["user"]["display_name"] == firm["name"]


async def test_a_resident_takes_a_ticket_for_themselves_and_sees_only_their_own(platform: Platform) -> None:
    me, other = await resident_sign_in(platform), await resident_sign_in(platform, "13700137001")
    worker, clerk = await platform.login("worker1"), await platform.login("clerk1")
    item = await district_item(worker, "MZ")
    by_worker = await take(worker, item["id"], "延伸点的群众")
    ticket = await take(me, item["id"], "张三")
    assert ticket["source"] == "direct" and ticket["extension_point_id"] is None and ticket["worker_id"] == me.user["id"]
    assert ticket["position"] == 2, "the same queue as the extension points' tickets"
    twice = await me.post("/api/tickets", {"item_id": item["id"], "resident": {"name": "张三"}})
    assert (twice.status, twice.code) == (409, "open_ticket_exists"), twice
    assert [t["id"] for t in (await me.get("/api/tickets")).body] == [ticket["id"]]
    assert (await other.get("/api/tickets")).body == []
    for path in (f"/api/tickets/{by_worker['id']}", f"/api/tickets/{ticket['id']}"):
        assert (await other.get(path)).code == "ticket_not_found", path
    assert (await me.get(f"/api/tickets/{by_worker['id']}")).code == "ticket_not_found"
    assert (await other.post(f"/api/tickets/{ticket['id']}/cancel", {})).code == "ticket_not_found"
    for path, body in ((f"/api/windows/{window_of(clerk)}/call-next", {}), ("/api/notifications/test", {})):
        assert (await me.post(path, body)).code == "role_forbidden", path

    # the clerk serves both in order, and sees where each came from
    first = await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    assert first.body["id"] == by_worker["id"] and first.body["source"] == "point"
    await clerk.post(f"/api/tickets/{by_worker['id']}/start")
    done = await clerk.post(f"/api/tickets/{by_worker['id']}/complete", {"result": "consultation_only"})
    assert done.status == 200, done
    called = await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    assert called.body["id"] == ticket["id"] and called.body["source"] == "direct", called
    full = await clerk.get(f"/api/tickets/{ticket['id']}/resident")
    assert full.body["phone"] == "13700137000", "the resident's own number is on the case for the clerk's audited read"
    assert (await me.get(f"/api/tickets/{ticket['id']}/checklist")).status == 200
    assert (await clerk.post(f"/api/tickets/{ticket['id']}/start")).status == 200
    assert (await clerk.post(f"/api/tickets/{ticket['id']}/complete", {"result": "consultation_only"})).status == 200
    rated = await me.post(f"/api/tickets/{ticket['id']}/rating", {"score": 5, "comment": "不用跑腿"})
    assert rated.status == 200 and rated.body["rating"]["score"] == 5, rated
    again = await take(me, item["id"], "张三")
    assert again["id"] != ticket["id"], "a new ticket once the last is finished"
    cancelled = await me.post(f"/api/tickets/{again['id']}/cancel", {"reason": "改天再办"})
    assert cancelled.body["status"] == "cancelled", cancelled


async def test_a_town_item_needs_the_town_and_bad_input_changes_nothing(platform: Platform) -> None:
    me = await resident_sign_in(platform)
    org = (await me.get("/api/org")).body
    towns = [c for c in org["centres"] if c["level"] == "town"]
    town_items = (await me.get("/api/items", level="town")).body
    assert towns and town_items
    item = town_items[0]
    no_town = await me.post("/api/tickets", {"item_id": item["id"], "resident": {"name": "李四"}})
    assert (no_town.status, no_town.code) == (422, "centre_required"), no_town
    district = next(c for c in org["centres"] if c["level"] == "district")
    wrong = await me.post("/api/tickets", {"item_id": item["id"], "resident": {"name": "李四"}, "centre_id": district["id"]})
    assert wrong.code == "centre_required"
    assert (await me.get("/api/tickets")).body == [], "nothing was taken"
    served = [t for t in towns if (await me.post("/api/tickets", {
        "item_id": item["id"], "resident": {"name": "李四"}, "centre_id": t["id"]})).status == 201]
    assert served, "some town serves it"
    mine = (await me.get("/api/tickets")).body
    assert len(mine) == 1 and mine[0]["centre_id"] == served[0]["id"]


async def test_a_burst_of_code_requests_for_one_number_texts_one_code(platform: Platform) -> None:
    """Ten taps on 获取验证码 at once (or ten scripts) send one text: the resend wait holds
    across concurrent requests, on PostgreSQL too (each request's transaction reads the count
    before the others have written theirs)."""
    anyone = platform.anonymous()
    replies = await asyncio.gather(*(anyone.post("/api/resident/code", {"phone": PHONE}) for _ in range(10)))
    assert sorted(r.status for r in replies) == [201] + [429] * 9, replies
    assert {r.code for r in replies if r.status == 429} == {"code_too_soon"}
    assert await codes_sent(platform) == 1


async def test_a_burst_from_one_address_for_many_numbers_stops_at_the_address_limit(platform: Platform) -> None:
    anyone = platform.anonymous()
    limit = platform.app[SETTINGS].login.codes_per_address_hour
    replies = await asyncio.gather(*(anyone.post("/api/resident/code", {"phone": f"137{n:08d}"})
                                     for n in range(limit + 5)))
    assert sorted(r.status for r in replies) == [201] * limit + [429] * 5, replies
    assert {r.code for r in replies if r.status == 429} == {"codes_per_address"}
