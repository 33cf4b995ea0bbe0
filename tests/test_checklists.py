"""一次性告知: a worker or clerk sends a resident an item's checklist as a short link by SMS
(through the outbox); the link opens without login, shows the materials and where, and expires;
sent from a case it is recorded on the case."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import Api, Platform
from tests.helpers import district_item, take, window_of

PHONE = "13800138000"


async def sms_link(platform: Platform, notification_id: int) -> str:
    messages = (await (await platform.login("admin")).get("/api/notifications")).body["messages"]
    text = next(m["text"] for m in messages if m["id"] == notification_id)
    match = re.search(r"(https?://\S+/app/c/([A-Za-z0-9_-]+))", text)
    assert match, text
    return match.group(2)


async def outbox_size(platform: Platform) -> int:
    return len((await (await platform.login("admin")).get("/api/notifications")).body["messages"])


async def test_a_worker_sends_the_checklist_and_the_resident_opens_it_until_it_expires(platform: Platform) -> None:
    worker = await platform.login("worker1")
    item = await district_item(worker, "MZ")
    sent = await worker.post(f"/api/items/{item['id']}/checklist-links", {"phone": PHONE})
    assert sent.status == 201, sent
    assert sent.body["to"] == "138****8000" and sent.body["ticket_id"] is None
    token = await sms_link(platform, sent.body["notification_id"])
    anyone = platform.anonymous()
    shown = await anyone.get(f"/api/checklist-links/{token}")
    assert shown.status == 200, shown
    assert shown.body["item"]["name"] == item["name"]
    assert [m["name"] for m in shown.body["materials"]] == [m["name"] for m in item["materials"]]
    assert shown.body["centre"] and shown.body["department"], "where to go"
    assert (await anyone.get("/api/checklist-links/not-a-real-token-at-all")).code == "checklist_link_not_found"
    platform.clock.advance(days=31)
    expired = await anyone.get(f"/api/checklist-links/{token}")
    assert expired.status == 410 and expired.code == "checklist_link_expired", expired
    sends = (await (await platform.login("auditor1")).get("/api/audit", action="checklist.sent")).body
    assert sends[0]["target_type"] == "item" and sends[0]["target_id"] == str(item["id"])


async def test_sent_from_a_case_it_is_recorded_on_the_case_and_only_its_people_may(platform: Platform) -> None:
    worker, other, expert = await platform.login("worker1"), await platform.login("worker2"), await platform.login("expert1")
    item = await district_item(worker, "MZ")
    ticket = await take(worker, item["id"], "告知群众")
    before = await outbox_size(platform)
    refusals: list[tuple[Api, dict[str, Any], int, str]] = [
        (other, {"phone": PHONE, "ticket_id": ticket["id"]}, 404, "ticket_not_found"),
        (worker, {"phone": "1380013", "ticket_id": ticket["id"]}, 422, "phone_invalid"),
        (worker, {"phone": PHONE, "ticket_id": 999999}, 404, "ticket_not_found"),
        (expert, {"phone": PHONE}, 403, "role_forbidden"),
    ]
    for api, body, status, code in refusals:
        reply = await api.post(f"/api/items/{item['id']}/checklist-links", body)
        assert (reply.status, reply.code) == (status, code), (body, reply)
    assert (await worker.post("/api/items/999999/checklist-links", {"phone": PHONE})).code == "item_not_found"
    assert await outbox_size(platform) == before, "a refusal sends nothing"

    clerk = await platform.login("clerk1")
    assert (await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")).status == 200
    for api in (worker, clerk):
        sent = await api.post(f"/api/items/{item['id']}/checklist-links", {"phone": PHONE, "ticket_id": ticket["id"]})
        assert sent.status == 201 and sent.body["ticket_id"] == ticket["id"], sent
    on_case = (await (await platform.login("auditor1")).get("/api/audit", action="checklist.sent",
                                                            target_type="ticket", target_id=str(ticket["id"]))).body
    assert {e["actor"] for e in on_case} == {"worker1", "clerk1"}
    assert await outbox_size(platform) == before + 2


async def test_a_clerk_sends_it_to_the_number_the_resident_gave_without_seeing_it(platform: Platform) -> None:
    worker, clerk = await platform.login("worker1"), await platform.login("clerk1")
    item = await district_item(worker, "MZ")
    with_phone = await take(worker, item["id"], "留了电话的群众", {"phone": "13912345678"})
    without = await take(worker, item["id"], "没留电话的群众")
    assert (await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")).status == 200
    case = (await clerk.get(f"/api/tickets/{with_phone['id']}")).body
    assert "13912345678" not in str(case), "the clerk sees the number masked"
    sent = await clerk.post(f"/api/items/{item['id']}/checklist-links", {"ticket_id": with_phone["id"]})
    assert sent.status == 201 and sent.body["to"] == "139****5678", sent
    missing = await worker.post(f"/api/items/{item['id']}/checklist-links", {"ticket_id": without["id"]})
    assert (missing.status, missing.code) == (422, "phone_missing"), missing
    assert (await worker.post(f"/api/items/{item['id']}/checklist-links", {})).code == "phone_invalid"
    messages = (await (await platform.login("admin")).get("/api/notifications")).body["messages"]
    assert next(m for m in messages if m["id"] == sent.body["notification_id"])["to"] == "139****5678"
