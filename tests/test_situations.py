"""办理情形 (颗粒化): an item's questions lead to one situation with its own checklist, time
limit, fee and pickup place; the ticket records it, the clerk's checklist is its, 一次性告知
carries it; the admin edits questions and situations. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.conftest import Api, Platform
from tests.helpers import item_named, take, window_of
from tests.media import phone_photo
from tests.test_checklists import PHONE, sms_link

ID_CARD = "居民身份证换领"


def qid(item: dict[str, Any], text: str) -> str:
    return str(next(q["id"] for q in item["questions"] if q["text"] == text))


def answers_for_lost_adult(item: dict[str, Any]) -> dict[str, str]:
    return {qid(item, "办理原因"): "补领（遗失）", qid(item, "申请人年龄"): "年满16周岁"}


def situation_named(item: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in item["situations"] if s["name"] == name)


async def tickets_seen(api: Api) -> list[int]:
    return sorted(t["id"] for t in (await api.get("/api/tickets")).body)


async def test_the_answers_lead_to_the_one_situation_with_its_own_materials_fee_and_time(platform: Platform) -> None:
    worker = await platform.login("worker1")
    item = await item_named(worker, ID_CARD)
    assert [q["text"] for q in item["questions"]] == ["办理原因", "申请人年龄"]
    assert len(item["situations"]) == 4
    found = await worker.post(f"/api/items/{item['id']}/resolve", {"answers": answers_for_lost_adult(item)})
    assert found.status == 200, found
    assert found.body["name"] == "补领·年满16周岁"
    assert "20元" in found.body["fee"] and found.body["time_limit_days"] == 15 and found.body["pickup"]
    names = [m["name"] for m in found.body["materials"]]
    assert "原居民身份证" not in names, "补领: the lost card cannot be brought"
    assert "原居民身份证" in [m["name"] for m in situation_named(item, "换领·年满16周岁")["materials"]]
    minor = await worker.post(f"/api/items/{item['id']}/resolve", {"answers": {
        qid(item, "办理原因"): "补领（遗失）", qid(item, "申请人年龄"): "未满16周岁"}})
    assert "监护人居民身份证" in [m["name"] for m in minor.body["materials"]]
    catalogue = (await worker.get("/api/items")).body
    assert sum(1 for i in catalogue if i["situations"]) >= 15, "the demo catalogue's situations"


async def test_answers_that_lead_nowhere_are_refused_with_stable_codes(platform: Platform) -> None:
    worker = await platform.login("worker1")
    item = await item_named(worker, ID_CARD)
    why = qid(item, "办理原因")
    refusals: list[tuple[Any, int, str]] = [
        ({"answers": {"999999": "补领（遗失）"}}, 422, "unknown_question"),
        ({"answers": {"nope": "x"}}, 422, "unknown_question"),
        ({"answers": {"a-very-long-key": "x"}}, 422, "invalid_input"),
        ({"answers": {why: "丢了"}}, 422, "unknown_option"),
        ({"answers": {why: "补领（遗失）"}}, 422, "situation_not_found"),  # the age not answered yet
        ({"answers": {}}, 422, "situation_not_found"),
        ({"answers": "补领"}, 422, "invalid_input"),
    ]
    for body, status, code in refusals:
        reply = await worker.post(f"/api/items/{item['id']}/resolve", body)
        assert (reply.status, reply.code) == (status, code), (body, reply)
    assert (await worker.post("/api/items/999999/resolve", {"answers": {}})).code == "item_not_found"


async def test_the_ticket_records_the_situation_and_the_clerks_checklist_is_that_situations(
        platform: Platform) -> None:
    worker, clerk = await platform.login("worker1"), await platform.login("clerk2")
    item = await item_named(worker, ID_CARD)
    lost = situation_named(item, "补领·年满16周岁")
    ticket = await take(worker, item["id"], "补证群众", situation_id=lost["id"])
    assert ticket["situation_id"] == lost["id"]
    called = await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    assert called.status == 200 and called.body["id"] == ticket["id"], called
    assert called.body["situation_id"] == lost["id"]
    lines = (await clerk.get(f"/api/tickets/{ticket['id']}/checklist")).body
    assert [line["name"] for line in lines] == [m["name"] for m in lost["materials"]], "the situation's, not the item's"
    assert [line["name"] for line in lines] != [m["name"] for m in item["materials"]]
    general = item["materials"][0]["id"]
    refused = await clerk.post(f"/api/tickets/{ticket['id']}/uploads", {"material": str(general), "size": 100})
    assert refused.code == "unknown_material", "a line of the item's general checklist is not this case's"
    filed = await clerk.post(f"/api/tickets/{ticket['id']}/uploads",
                             {"material": str(lost["materials"][0]["id"]), "size": 100})
    assert filed.status == 201, filed
    taken = (await (await platform.login("auditor1")).get("/api/audit", action="ticket.take")).body
    assert taken[0]["detail"]["situation_id"] == lost["id"]
    expert = await platform.login("expert3")
    assert (await clerk.post(f"/api/tickets/{ticket['id']}/start")).status == 200
    invited = await clerk.post(f"/api/tickets/{ticket['id']}/consultations", {"expert_ids": [expert.user["id"]]})
    assert invited.status == 201, invited
    case = (await expert.get("/api/invitations")).body[0]["case"]
    assert case["situation"] == {"id": lost["id"], "name": lost["name"]}, "the expert is told the situation"
    assert [line["name"] for line in case["checklist"]][:3] == [m["name"] for m in lost["materials"]]


async def test_a_situation_not_of_the_item_or_stopped_is_refused_and_nothing_changes(platform: Platform) -> None:
    worker, admin = await platform.login("worker1"), await platform.login("admin")
    item = await item_named(worker, ID_CARD)
    other = await item_named(worker, "个体工商户注销")
    before = await tickets_seen(worker)
    first = await take(worker, item["id"], "甲", situation_id=item["situations"][0]["id"])
    for situation_id in (other["situations"][0]["id"], 999999):
        reply = await worker.post("/api/tickets", {"item_id": item["id"], "resident": {"name": "乙"},
                                                   "situation_id": situation_id})
        assert (reply.status, reply.code) == (422, "unknown_situation"), reply
    stopped = item["situations"][1]
    assert (await admin.put(f"/api/situations/{stopped['id']}", {**editable(stopped), "active": False})).status == 200
    reply = await worker.post("/api/tickets", {"item_id": item["id"], "resident": {"name": "丙"},
                                               "situation_id": stopped["id"]})
    assert reply.code == "unknown_situation", reply
    assert [i["id"] for i in (await item_named(worker, ID_CARD))["situations"]].count(stopped["id"]) == 0
    page = (await worker.get(f"/api/items/{item['id']}")).body
    assert {x["id"]: x["active"] for x in page["situations"]}[stopped["id"]] is False, "a case may show a stopped one"
    second = await take(worker, item["id"], "丁", situation_id=item["situations"][0]["id"])
    assert await tickets_seen(worker) == sorted([*before, first["id"], second["id"]]), "no ticket from a refusal"
    assert int(second["number"][2:]) == int(first["number"][2:]) + 1, "no number drawn for a refusal"


def editable(situation: dict[str, Any]) -> dict[str, Any]:
    """A situation as the admin sends it back."""
    return {"name": situation["name"], "conditions": situation["conditions"], "fee": situation["fee"],
            "pickup": situation["pickup"], "time_limit_days": situation["time_limit_days"],
            "active": situation["active"],
            "materials": [{"id": m["id"], "name": m["name"], "required": m["required"], "note": m["note"]}
                          for m in situation["materials"]]}


async def test_the_admin_edits_questions_and_situations_and_others_may_not(platform: Platform) -> None:
    admin, worker = await platform.login("admin"), await platform.login("worker1")
    item = await item_named(admin, "高龄津贴申领")
    assert item["questions"] == [] and item["situations"] == []
    asked = await admin.put(f"/api/items/{item['id']}/questions", {"questions": [
        {"text": "申请人年龄", "options": ["80至89周岁", "90至99周岁", "100周岁及以上"]},
        {"text": "由谁办理", "options": ["本人", "家属代办"]}]})
    assert asked.status == 200, asked
    age, who = (str(q["id"]) for q in asked.body["questions"])
    body = {"name": "本人申领", "conditions": {who: "本人"}, "time_limit_days": 20, "fee": "不收费",
            "pickup": "按月发放至社保卡", "materials": [{"name": "身份证", "note": "原件"}, {"name": "社保卡"}]}
    made = await admin.post(f"/api/items/{item['id']}/situations", body)
    assert made.status == 201, made
    overlapping = await admin.post(f"/api/items/{item['id']}/situations",
                                   {**body, "name": "80岁本人", "conditions": {age: "80至89周岁"}})
    assert (overlapping.status, overlapping.code) == (409, "situation_overlap"), overlapping
    for bad, code in (({who: "邻居"}, "unknown_option"), ({"424242": "本人"}, "unknown_question"),
                      ({}, "situation_conditions_required")):
        reply = await admin.post(f"/api/items/{item['id']}/situations", {**body, "name": "代办", "conditions": bad})
        assert (reply.status, reply.code) == (422, code), (bad, reply)
    proxy = await admin.post(f"/api/items/{item['id']}/situations", {
        **body, "name": "家属代办", "conditions": {who: "家属代办"},
        "materials": [*body["materials"], {"name": "代办人身份证"}, {"name": "委托书"}]})
    assert proxy.status == 201, proxy
    in_use = await admin.put(f"/api/items/{item['id']}/questions", {"questions": [
        {"id": int(age), "text": "申请人年龄", "options": ["80至89周岁", "90周岁及以上"]}]})
    assert (in_use.status, in_use.code) == (409, "question_in_use"), "由谁办理 is still named by both"
    renamed = await admin.put(f"/api/items/{item['id']}/questions", {"questions": [
        {"id": int(who), "text": "由谁来办理", "options": ["本人", "家属代办"]}]})
    assert renamed.status == 200 and [q["text"] for q in renamed.body["questions"]] == ["由谁来办理"], renamed
    lines = [m["id"] for m in proxy.body["materials"]]
    edited = await admin.put(f"/api/situations/{proxy.body['id']}", {**body, "name": "家属代办", "conditions": {
        who: "家属代办"}, "materials": [{"id": lines[0], "name": "老人身份证"}, {"name": "社保卡"}, {"name": "代办人身份证"}]})
    assert edited.status == 200 and [m["id"] for m in edited.body["materials"]] == lines[:3], "lines keep their ids"
    foreign = await admin.put(f"/api/situations/{proxy.body['id']}", {**body, "name": "家属代办", "conditions": {
        who: "家属代办"}, "materials": [{"id": made.body["materials"][0]["id"], "name": "别的情形的材料"}]})
    assert (foreign.status, foreign.code) == (422, "material_not_found"), "a line of another situation"
    seen = await item_named(worker, "高龄津贴申领")
    assert {s["name"] for s in seen["situations"]} == {"本人申领", "家属代办"}
    resolved = await worker.post(f"/api/items/{item['id']}/resolve", {"answers": {who: "家属代办"}})
    assert resolved.body["name"] == "家属代办" and resolved.body["time_limit_days"] == 20
    stop = await admin.put(f"/api/situations/{made.body['id']}", {**body, "active": False})
    assert stop.status == 200 and stop.body["active"] is False
    assert [s["name"] for s in (await item_named(worker, "高龄津贴申领"))["situations"]] == ["家属代办"]
    everything = (await admin.get("/api/items", q="高龄津贴", include_inactive="true")).body[0]
    assert {s["name"]: s["active"] for s in everything["situations"]} == {"本人申领": False, "家属代办": True}
    assert (await worker.get("/api/items", q="高龄津贴", include_inactive="true")).body[0]["situations"] == \
        seen["situations"][1:], "only an admin sees stopped ones"
    for refused in (await worker.post(f"/api/items/{item['id']}/situations", body),
                    await worker.put(f"/api/situations/{made.body['id']}", body),
                    await worker.put(f"/api/items/{item['id']}/questions", {"questions": []})):
        assert (refused.status, refused.code) == (403, "role_forbidden"), refused
    twice = await admin.put(f"/api/items/{item['id']}/questions", {"questions": [
        {"id": int(who), "text": "甲", "options": ["本人", "家属代办"]},
        {"id": int(who), "text": "乙", "options": ["本人", "家属代办"]}]})
    assert (twice.status, twice.code) == (422, "question_duplicate"), twice
    general = {"code": item["code"], "name": item["name"], "department_id": item["department_id"],
               "level": item["level"], "materials": [{"name": "身份证"}]}
    assert (await admin.put(f"/api/items/{item['id']}", general)).status == 200
    after = await item_named(worker, "高龄津贴申领")
    assert [m["name"] for m in after["materials"]] == ["身份证"], "the general checklist replaced"
    assert [m["name"] for m in after["situations"][0]["materials"]] == ["老人身份证", "社保卡", "代办人身份证"], \
        "the situations' own lines untouched"
    saved = (await (await platform.login("auditor1")).get("/api/audit", action="situation.save")).body
    assert len(saved) == 4 and {e["actor"] for e in saved} == {"admin"}
    assert (await admin.put("/api/situations/999999", body)).code == "situation_not_found"


async def test_the_checklist_link_carries_the_situation(platform: Platform) -> None:
    worker, clerk = await platform.login("worker1"), await platform.login("clerk2")
    item = await item_named(worker, ID_CARD)
    lost = situation_named(item, "补领·年满16周岁")
    sent = await worker.post(f"/api/items/{item['id']}/checklist-links", {"phone": PHONE, "situation_id": lost["id"]})
    assert sent.status == 201 and sent.body["situation_id"] == lost["id"], sent
    shown = (await platform.anonymous().get(f"/api/checklist-links/{await sms_link(platform, sent.body['notification_id'])}")).body
    assert shown["situation"] == {"name": lost["name"], "time_limit_days": 15, "fee": lost["fee"], "pickup": lost["pickup"]}
    assert [m["name"] for m in shown["materials"]] == [m["name"] for m in lost["materials"]]
    other = (await item_named(worker, "个体工商户注销"))["situations"][0]["id"]
    wrong = await worker.post(f"/api/items/{item['id']}/checklist-links", {"phone": PHONE, "situation_id": other})
    assert (wrong.status, wrong.code) == (422, "unknown_situation"), wrong

    renew = situation_named(item, "换领·年满16周岁")
    ticket = await take(worker, item["id"], "换证群众", {"phone": "13912345678"}, situation_id=renew["id"])
    assert (await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")).status == 200
    from_case = await clerk.post(f"/api/items/{item['id']}/checklist-links", {"ticket_id": ticket["id"]})
    assert from_case.status == 201 and from_case.body["situation_id"] == renew["id"], from_case
    shown = (await platform.anonymous().get(
        f"/api/checklist-links/{await sms_link(platform, from_case.body['notification_id'])}")).body
    assert shown["situation"]["name"] == renew["name"]
    assert [m["name"] for m in shown["materials"]] == [m["name"] for m in renew["materials"]]
    assert shown["questions"] == [], "a link for a situation asks nothing"


async def test_a_link_sent_without_a_situation_lets_the_resident_answer_the_questions(platform: Platform) -> None:
    worker, anyone = await platform.login("worker1"), platform.anonymous()
    item = await item_named(worker, ID_CARD)
    plain = await worker.post(f"/api/items/{item['id']}/checklist-links", {"phone": PHONE})
    token = await sms_link(platform, plain.body["notification_id"])
    shown = (await anyone.get(f"/api/checklist-links/{token}")).body
    assert shown["situation"] is None and [m["name"] for m in shown["materials"]] == [m["name"] for m in item["materials"]]
    assert shown["questions"] == item["questions"]
    answered = await anyone.post(f"/api/checklist-links/{token}/resolve", {"answers": answers_for_lost_adult(item)})
    assert answered.status == 200, answered
    lost = situation_named(item, "补领·年满16周岁")
    assert answered.body["situation"]["name"] == lost["name"] and answered.body["questions"] == item["questions"]
    assert [m["name"] for m in answered.body["materials"]] == [m["name"] for m in lost["materials"]]
    wrong = await anyone.post(f"/api/checklist-links/{token}/resolve", {"answers": {qid(item, "办理原因"): "丢了"}})
    assert (wrong.status, wrong.code) == (422, "unknown_option"), wrong
    unknown = await anyone.post("/api/checklist-links/no-such-token/resolve", {"answers": {}})
    assert (unknown.status, unknown.code) == (404, "checklist_link_not_found"), unknown
    plain_item = await item_named(worker, "最低生活保障申请")
    other = await worker.post(f"/api/items/{plain_item['id']}/checklist-links", {"phone": PHONE})
    assert (await anyone.get(f"/api/checklist-links/{await sms_link(platform, other.body['notification_id'])}")
            ).body["questions"] == [], "an item without situations asks nothing"
    platform.clock.advance(days=31)
    expired = await anyone.post(f"/api/checklist-links/{token}/resolve", {"answers": answers_for_lost_adult(item)})
    assert (expired.status, expired.code) == (410, "checklist_link_expired"), expired


async def test_the_clerk_corrects_the_situation_until_a_document_is_filed_under_its_checklist(
        platform: Platform) -> None:
    worker, clerk = await platform.login("worker1"), await platform.login("clerk2")
    item = await item_named(worker, ID_CARD)
    renew, lost = situation_named(item, "换领·年满16周岁"), situation_named(item, "补领·年满16周岁")
    ticket = await take(worker, item["id"], "说不清的群众")
    assert ticket["situation_id"] is None
    general = [line["name"] for line in (await worker.get(f"/api/tickets/{ticket['id']}/checklist")).body]
    assert general == [m["name"] for m in item["materials"]], "without a situation: the general checklist"
    not_yet = await clerk.put(f"/api/tickets/{ticket['id']}/situation", {"situation_id": lost["id"]})
    assert (not_yet.status, not_yet.code) == (404, "ticket_not_found"), "the clerk serves it once called"
    assert (await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")).body["id"] == ticket["id"]
    wrong = await clerk.put(f"/api/tickets/{ticket['id']}/situation",
                            {"situation_id": (await item_named(worker, "个体工商户注销"))["situations"][0]["id"]})
    assert (wrong.status, wrong.code) == (422, "unknown_situation"), wrong
    chosen = await clerk.put(f"/api/tickets/{ticket['id']}/situation", {"situation_id": renew["id"]})
    assert chosen.status == 200 and chosen.body["situation_id"] == renew["id"], chosen
    corrected = await clerk.put(f"/api/tickets/{ticket['id']}/situation", {"situation_id": lost["id"]})
    assert corrected.body["situation_id"] == lost["id"]
    lines = (await worker.get(f"/api/tickets/{ticket['id']}/checklist")).body
    assert [line["name"] for line in lines] == [m["name"] for m in lost["materials"]]
    assert (await worker.get(f"/api/tickets/{ticket['id']}")).body["situation_id"] == lost["id"]
    begun = await worker.post(f"/api/tickets/{ticket['id']}/uploads",
                              {"material": str(lines[0]["material_id"]), "size": 100})
    assert begun.status == 201, begun
    locked = await clerk.put(f"/api/tickets/{ticket['id']}/situation", {"situation_id": renew["id"]})
    assert (locked.status, locked.code) == (409, "situation_has_documents"), "an upload under way counts"
    form = aiohttp.FormData()
    form.add_field("material", str(lines[1]["material_id"]))
    form.add_field("file", phone_photo(), filename="photo.jpg", content_type="image/jpeg")
    assert (await worker.call("POST", f"/api/tickets/{ticket['id']}/documents", data=form)).status == 201
    locked = await clerk.put(f"/api/tickets/{ticket['id']}/situation", {"situation_id": renew["id"]})
    assert (locked.status, locked.code) == (409, "situation_has_documents"), locked
    assert (await worker.get(f"/api/tickets/{ticket['id']}")).body["situation_id"] == lost["id"], "unchanged"
    admin = await platform.login("admin")
    shorter = {**editable(lost), "materials": editable(lost)["materials"][:1]}
    in_use = await admin.put(f"/api/situations/{lost['id']}", shorter)
    assert (in_use.status, in_use.code) == (409, "material_in_use"), "a line a document is filed under stays"
    renamed = editable(lost)
    renamed["materials"][1]["name"] = "居民户口簿（或户籍证明）"
    assert (await admin.put(f"/api/situations/{lost['id']}", renamed)).status == 200, "renaming it is free"
    assert (await worker.get(f"/api/tickets/{ticket['id']}/checklist")).body[1]["state"] == "provided"
    changes = (await (await platform.login("auditor1")).get("/api/audit", action="ticket.situation")).body
    assert [(e["actor"], e["detail"]["situation_id"]) for e in changes] == [("clerk2", lost["id"]), ("clerk2", renew["id"])]
