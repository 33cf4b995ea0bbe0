"""一事联办: a bundle of items is one case with one merged checklist (a shared material asked
once); served by one window that serves all its departments, or department by department, each
clerk seeing the case, its documents and what the earlier ones did; the report counts what
was saved. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, Platform
from tests.helpers import item_named, resident_sign_in, take, window_of
from tests.media import phone_photo
from tests.test_documents import upload

AFTER_DEATH = "身后事一件事"
RESTAURANT = "开办餐饮店一件事"
COLOURS = iter(["red", "green", "blue", "yellow", "purple", "orange", "cyan", "magenta", "brown", "pink",
                "olive", "navy", "teal", "maroon", "gray", "silver", "gold", "coral", "khaki", "salmon"] * 5)


async def bundle_named(api: Api, name: str) -> dict[str, Any]:
    reply = await api.get("/api/bundles")
    assert reply.status == 200, reply
    return next(b for b in reply.body if b["name"] == name)


async def take_bundle(api: Api, bundle_id: int, name: str, **extra: Any) -> dict[str, Any]:
    reply = await api.post("/api/tickets", {"bundle_id": bundle_id, "resident": {"name": name}, **extra})
    assert reply.status == 201, reply
    return reply.body


async def called(clerk: Api, expect: int) -> dict[str, Any]:
    reply = await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    assert reply.status == 200 and reply.body["id"] == expect, reply
    started = await clerk.post(f"/api/tickets/{expect}/start")
    assert started.status == 200, started
    return started.body


async def provide(clerk: Api, ticket_id: int, item_ids: set[int]) -> list[str]:
    """The clerk files and accepts every required line these items need that is not accepted yet."""
    filed = []
    for line in (await clerk.get(f"/api/tickets/{ticket_id}/checklist")).body:
        if line["required"] and line["state"] != "accepted" and item_ids & set(line.get("item_ids", [])):
            added = await upload(clerk, ticket_id, line["material_id"], phone_photo(color=next(COLOURS)))
            assert added.status == 201, added
            reviewed = await clerk.post(f"/api/documents/{added.body['id']}/review", {"decision": "accepted"})
            assert reviewed.status == 200, reviewed
            filed.append(line["name"])
    return filed


def ids_of(bundle: dict[str, Any], *codes: str) -> list[int]:
    return [next(i["id"] for i in bundle["items"] if i["code"] == code) for code in codes]


async def test_the_demo_has_real_bundles_with_a_merged_checklist_asking_a_shared_material_once(
        platform: Platform) -> None:
    resident = await resident_sign_in(platform)
    bundles = (await resident.get("/api/bundles")).body
    names = {b["name"] for b in bundles}
    assert {"流动人口居住一件事", "新生儿出生一件事", RESTAURANT, "退休一件事", AFTER_DEATH} <= names
    after = await bundle_named(resident, AFTER_DEATH)
    assert [i["code"] for i in after["items"]] == ["MZ-012", "SB-011", "GA-007", "GJ-001"]
    assert len(after["department_ids"]) == 4 and after["trips_saved"] == 3 and after["level"] == "district"
    names_asked = [line["name"] for line in after["checklist"]]
    assert len(names_asked) == len(set(names_asked)), "each material once"
    card = next(line for line in after["checklist"] if line["name"] == "申领人身份证")
    assert card["item_ids"] == ids_of(after, "MZ-012", "SB-011", "GA-007") and len(card["material_ids"]) == 3
    separately = 0
    for item in after["items"]:
        separately += len((await resident.get(f"/api/items/{item['id']}")).body["materials"])
    assert after["materials_total"] == separately
    assert after["materials_saved"] == separately - len(after["checklist"]) >= 4
    assert (await resident.get(f"/api/bundles/{after['id']}")).body == after
    for bundle in bundles:
        assert bundle["materials_saved"] >= 1, bundle["name"]
    living = await bundle_named(resident, "流动人口居住一件事")
    issued = {line["name"]: line["issued_by"] for line in living["checklist"] if line["issued_by"]}
    assert issued == {"居住登记凭证": ids_of(living, "GA-002")[0], "居住证": ids_of(living, "GA-001")[0]}
    missing = await resident.get("/api/bundles/999999")
    assert (missing.status, missing.code) == (404, "bundle_not_found")


async def test_a_bundle_is_served_department_by_department_keeping_its_place_documents_and_results(
        platform: Platform) -> None:
    worker = await platform.login("worker1")
    first, second, third = [await platform.login(u) for u in ("clerk1", "clerk2", "clerk3")]
    bundle = await bundle_named(worker, AFTER_DEATH)
    mz, sb, ga, gj = ids_of(bundle, "MZ-012", "SB-011", "GA-007", "GJ-001")
    ticket = await take_bundle(worker, bundle["id"], "王家属")
    assert ticket["bundle_id"] == bundle["id"] and ticket["item_id"] == mz and ticket["number"].startswith("MZ")
    platform.clock.advance(minutes=5)
    later = await take(worker, (await item_named(worker, "居民身份证换领"))["id"], "后来的人")  # GA, taken later
    serving = await called(first, ticket["id"])
    assert serving["status"] == "in_service"
    items = (await first.get(f"/api/tickets/{ticket['id']}/items")).body
    assert [(i["item_id"], i["state"], i["mine"]) for i in items] == [
        (mz, "pending", True), (sb, "pending", True), (ga, "pending", False), (gj, "pending", False)]
    lines = (await first.get(f"/api/tickets/{ticket['id']}/checklist")).body
    assert [line["name"] for line in lines] == [line["name"] for line in bundle["checklist"]]

    refused = await first.post(f"/api/tickets/{ticket['id']}/items/complete", {"items": [{"item_id": ga}]})
    assert (refused.status, refused.code) == (403, "not_your_item"), refused
    missing = await first.post(f"/api/tickets/{ticket['id']}/items/complete", {"items": [{"item_id": mz}]})
    assert (missing.status, missing.code) == (409, "material_missing"), missing
    assert all(i["state"] == "pending" for i in (await first.get(f"/api/tickets/{ticket['id']}/items")).body)

    filed = await provide(first, ticket["id"], {mz, sb})
    assert "申领人身份证" in filed and "居民死亡医学证明" in filed
    one = await first.post(f"/api/tickets/{ticket['id']}/items/complete",
                           {"items": [{"item_id": mz, "result": "done", "note": "补助已核发"}]})
    assert one.status == 200 and one.body["status"] == "in_service", "its 社保 item is the same window's"
    again = await first.post(f"/api/tickets/{ticket['id']}/items/complete", {"items": [{"item_id": mz}]})
    assert (again.status, again.code) == (409, "item_already_completed"), again
    on = await first.post(f"/api/tickets/{ticket['id']}/items/complete", {"items": [{"item_id": sb}]})
    assert on.status == 200, on
    moved = (await worker.get(f"/api/tickets/{ticket['id']}")).body
    assert moved["status"] == "waiting" and moved["number"].startswith("GA") and moved["item_id"] == ga
    assert moved["taken_at"] == ticket["taken_at"] and moved["position"] == 1, "ahead of the later GA ticket"
    assert (await first.get(f"/api/tickets/{ticket['id']}")).status == 404, "no longer the first clerk's case"

    await called(second, ticket["id"])
    seen = (await second.get(f"/api/tickets/{ticket['id']}/items")).body
    assert [(i["state"], i["result"], i["completed_by"]) for i in seen[:2]] == [
        ("completed", "done", "区云窗口 张敏"), ("completed", "done", "区云窗口 张敏")]
    assert seen[0]["note"] == "补助已核发" and seen[0]["window_name"].startswith("区级综合云窗口1")
    assert [i["mine"] for i in seen] == [False, False, True, False]
    documents = (await second.get(f"/api/tickets/{ticket['id']}/documents")).body
    assert {d["material_name"] for d in documents} >= {"申领人身份证", "居民死亡医学证明"}
    assert await provide(second, ticket["id"], {ga}) == [], "户口注销 asks nothing the case does not already have"
    assert (await second.post(f"/api/tickets/{ticket['id']}/items/complete", {"items": [{"item_id": ga}]})).status == 200
    assert (await second.get(f"/api/tickets/{ticket['id']}/items")).status == 404

    await called(third, ticket["id"])
    done = await third.post(f"/api/tickets/{ticket['id']}/items/complete",
                            {"items": [{"item_id": gj, "result": "materials_incomplete", "note": "缺提取证明"}]})
    assert done.status == 200 and done.body["status"] == "completed", done
    assert done.body["result"] == "materials_incomplete", "done only when every item is"
    assert [i["state"] for i in (await worker.get(f"/api/tickets/{ticket['id']}/items")).body] == ["completed"] * 4
    assert (await second.post(f"/api/windows/{window_of(second)}/call-next")).body["id"] == later["id"]


async def test_a_window_serving_all_its_departments_completes_the_whole_case(platform: Platform) -> None:
    worker, clerk = await platform.login("worker1"), await platform.login("clerk2")  # 公安·市场监管
    bundle = await bundle_named(worker, RESTAURANT)
    assert len(bundle["department_ids"]) == 2
    licence = next(line for line in bundle["checklist"] if line["name"] == "营业执照")
    assert licence["item_ids"] == ids_of(bundle, "SC-004", "GA-008")
    assert (licence["issued_by"], licence["required"]) == (ids_of(bundle, "SC-001")[0], False), \
        "the 设立登记 issues the licence the later items ask for: never asked of the resident"
    brought = [line for line in bundle["checklist"] if line["issued_by"] is None]
    assert bundle["materials_merged"] == len(brought) == len(bundle["checklist"]) - 1
    ticket = await take_bundle(worker, bundle["id"], "李老板", priority="elderly")
    await called(clerk, ticket["id"])
    items = (await clerk.get(f"/api/tickets/{ticket['id']}/items")).body
    assert all(i["mine"] for i in items)
    every = {i["item_id"] for i in items}
    assert "营业执照" not in await provide(clerk, ticket["id"], every)
    case_licence = next(line for line in (await clerk.get(f"/api/tickets/{ticket['id']}/checklist")).body
                        if line["name"] == "营业执照")
    assert (case_licence["state"], case_licence["required"], case_licence["issued_by"]) == (
        "missing", False, ids_of(bundle, "SC-001")[0])
    done = await clerk.post(f"/api/tickets/{ticket['id']}/items/complete",
                            {"items": [{"item_id": i} for i in sorted(every)]})
    assert done.status == 200 and (done.body["status"], done.body["result"]) == ("completed", "done"), done
    assert done.body["transfers"] == 0


async def test_bad_bundle_requests_are_refused_with_stable_codes_and_change_nothing(platform: Platform) -> None:
    worker, clerk = await platform.login("worker1"), await platform.login("clerk2")
    bundle = await bundle_named(worker, RESTAURANT)
    item = await item_named(worker, "居民身份证换领")
    before = sorted(t["id"] for t in (await worker.get("/api/tickets")).body)
    for body, status, code in (
        ({"bundle_id": 999999}, 404, "bundle_not_found"),
        ({"bundle_id": bundle["id"], "item_id": item["id"]}, 422, "item_or_bundle"),
        ({}, 422, "item_or_bundle"),
        ({"bundle_id": bundle["id"], "situation_id": 1}, 422, "unknown_situation"),
        ({"bundle_id": "1"}, 422, "invalid_input"),
    ):
        reply = await worker.post("/api/tickets", {"resident": {"name": "甲"}, **body})
        assert (reply.status, reply.code) == (status, code), (body, reply)
    assert sorted(t["id"] for t in (await worker.get("/api/tickets")).body) == before, "no ticket from a refusal"
    ticket = await take_bundle(worker, bundle["id"], "乙")
    twice = await worker.post("/api/tickets", {"bundle_id": bundle["id"], "resident": {"name": "乙"}})
    assert (twice.status, twice.code) == (409, "duplicate_ticket"), twice
    await called(clerk, ticket["id"])
    for path, body, code in (
        ("complete", {"result": "done"}, "bundle_case"),
        ("transfer", {"department_id": (await platform.login("admin")).user["id"]}, "bundle_case"),
        ("items/complete", {"items": [{"item_id": item["id"]}]}, "unknown_case_item"),
        ("items/complete", {"items": [{"item_id": bundle["items"][0]["id"]}] * 2}, "duplicate_item"),
        ("items/complete", {"items": []}, "invalid_input"),
    ):
        reply = await clerk.post(f"/api/tickets/{ticket['id']}/{path}", body)
        assert reply.code == code, (path, body, reply)
    assert (await clerk.get(f"/api/tickets/{ticket['id']}")).body["status"] == "in_service"
    assert all(i["state"] == "pending" for i in (await clerk.get(f"/api/tickets/{ticket['id']}/items")).body)
    plain = await take(worker, item["id"], "丙")
    assert (await clerk.get(f"/api/tickets/{plain['id']}/items")).status == 404, "waiting: not the clerk's case yet"
    assert (await worker.get(f"/api/tickets/{plain['id']}/items")).body == [], "no bundle, no items"


async def test_a_resident_takes_a_bundle_on_their_own_phone(platform: Platform) -> None:
    resident = await resident_sign_in(platform)
    bundle = await bundle_named(resident, RESTAURANT)
    ticket = await take_bundle(resident, bundle["id"], "张三")
    assert (ticket["source"], ticket["bundle_id"]) == ("direct", bundle["id"])
    assert len((await resident.get(f"/api/tickets/{ticket['id']}/items")).body) == 3


async def test_the_report_counts_cases_and_what_the_completed_ones_saved(platform: Platform) -> None:
    worker, clerk = await platform.login("worker1"), await platform.login("clerk2")
    bundle = await bundle_named(worker, RESTAURANT)
    ticket = await take_bundle(worker, bundle["id"], "赵老板")
    await take_bundle(worker, bundle["id"], "钱老板")
    await called(clerk, ticket["id"])
    every = [i["id"] for i in bundle["items"]]
    reply = await clerk.post(f"/api/tickets/{ticket['id']}/items/complete",
                             {"items": [{"item_id": i, "result": "consultation_only"} for i in every]})
    assert reply.status == 200, reply
    report = await (await platform.login("supervisor1")).get("/api/bundles/report")
    assert report.status == 200, report
    line = next(b for b in report.body["bundles"] if b["bundle_id"] == bundle["id"])
    assert (line["cases"], line["completed"]) == (2, 1)
    assert line["materials_saved"] == bundle["materials_saved"] and line["trips_saved"] == 1
    assert report.body["totals"]["cases"] == 2
    assert (await worker.get("/api/bundles/report")).code == "role_forbidden"


async def items_coded(api: Api, *codes: str) -> list[int]:
    every = {i["code"]: i["id"] for i in (await api.get("/api/items", include_inactive="true")).body}
    return [every[code] for code in codes]


async def every_bundle(admin: Api) -> list[dict[str, Any]]:
    reply = await admin.get("/api/bundles", include_inactive="true")
    assert reply.status == 200, reply
    return list(reply.body)


async def test_the_admin_creates_edits_and_stops_a_bundle(platform: Platform) -> None:
    admin, worker, auditor = [await platform.login(u) for u in ("admin", "worker1", "auditor1")]
    setup, change, seal = await items_coded(admin, "SC-001", "SC-002", "GA-008")
    created = await admin.post("/api/bundles", {"code": "LB-101", "name": "个体户开业一件事",
                                                "description": "设立登记后刻制公章。", "item_ids": [setup, seal]})
    assert created.status == 201, created
    bundle = created.body
    assert [i["id"] for i in bundle["items"]] == [setup, seal] and bundle["active"] is True
    assert bundle["trips_saved"] == 1 and bundle["level"] == "district"
    licence = next(line for line in bundle["checklist"] if line["name"] == "营业执照")
    assert (licence["item_ids"], licence["issued_by"]) == ([seal], setup), "the 设立登记 issues it for the 公章"
    assert (await bundle_named(worker, "个体户开业一件事")) == bundle, "offered to the worker at once"
    ticket = await take_bundle(worker, bundle["id"], "开业的人")
    assert [i["item_id"] for i in (await worker.get(f"/api/tickets/{ticket['id']}/items")).body] == [setup, seal]

    edited = await admin.put(f"/api/bundles/{bundle['id']}", {
        "code": "LB-101", "name": "个体户开业变更一件事", "item_ids": [change, setup, seal]})
    assert edited.status == 200, edited
    assert [i["id"] for i in edited.body["items"]] == [change, setup, seal]
    assert edited.body["description"] == "" and edited.body["materials_total"] > bundle["materials_total"]
    assert (await worker.get(f"/api/bundles/{bundle['id']}")).body == edited.body

    stopped = await admin.put(f"/api/bundles/{bundle['id']}", {
        "code": "LB-101", "name": "个体户开业变更一件事", "item_ids": [change, setup, seal], "active": False})
    assert stopped.status == 200 and stopped.body["active"] is False, stopped
    assert bundle["id"] not in [b["id"] for b in (await worker.get("/api/bundles")).body]
    assert bundle["id"] not in [b["id"] for b in (await worker.get("/api/bundles", include_inactive="true")).body], \
        "stopped bundles are listed to administrators only"
    assert bundle["id"] not in [b["id"] for b in (await admin.get("/api/bundles")).body]
    assert bundle["id"] in [b["id"] for b in await every_bundle(admin)]
    assert (await worker.get(f"/api/bundles/{bundle['id']}")).code == "bundle_not_found"
    refused = await worker.post("/api/tickets", {"bundle_id": bundle["id"], "resident": {"name": "又一个人"}})
    assert (refused.status, refused.code) == (404, "bundle_not_found"), refused
    resumed = await admin.put(f"/api/bundles/{bundle['id']}", {
        "code": "LB-101", "name": "个体户开业变更一件事", "item_ids": [change, setup, seal], "active": True})
    assert resumed.status == 200 and (await bundle_named(worker, "个体户开业变更一件事"))["active"] is True

    trail = (await auditor.get("/api/audit", action="bundle.save")).body
    assert [(e["target_id"], e["detail"]["active"]) for e in sorted(trail, key=lambda e: e["seq"])] == [
        (str(bundle["id"]), True), (str(bundle["id"]), True), (str(bundle["id"]), False), (str(bundle["id"]), True)]


async def test_bad_bundle_edits_are_refused_with_stable_codes_and_change_nothing(platform: Platform) -> None:
    admin = await platform.login("admin")
    restaurant = await bundle_named(admin, RESTAURANT)
    setup, licence, seal, change = await items_coded(admin, "SC-001", "SC-004", "GA-008", "SC-002")
    mz = next(d for d in (await admin.get("/api/org")).body["departments"] if d["code"] == "MZ")
    stopped = await admin.post("/api/items", {"code": "MZ-998", "name": "已停用的事项", "department_id": mz["id"],
                                              "level": "district", "active": False})
    assert stopped.status == 201, stopped
    before = await every_bundle(admin)
    fields = {"code": "LB-102", "name": "试试", "item_ids": [setup, seal]}
    for path, body, status, code in (
        ("/api/bundles", {**fields, "item_ids": [setup, 999999]}, 404, "item_not_found"),
        ("/api/bundles", {**fields, "item_ids": [setup, seal, setup]}, 422, "duplicate_item"),
        ("/api/bundles", {**fields, "item_ids": [setup]}, 422, "bundle_too_small"),
        ("/api/bundles", {**fields, "item_ids": []}, 422, "bundle_too_small"),
        ("/api/bundles", {**fields, "item_ids": [setup, stopped.body["id"]]}, 422, "item_inactive"),
        ("/api/bundles", {**fields, "code": restaurant["code"]}, 409, "bundle_code_taken"),
        ("/api/bundles", {**fields, "item_ids": ["1", "2"]}, 422, "invalid_input"),
        ("/api/bundles", {**fields, "code": ""}, 422, "invalid_input"),
        ("/api/bundles/999999", fields, 404, "bundle_not_found"),
        (f"/api/bundles/{restaurant['id']}", {**fields, "code": "LB-001"}, 409, "bundle_code_taken"),
        (f"/api/bundles/{restaurant['id']}", {**fields, "item_ids": [change, change]}, 422, "duplicate_item"),
        (f"/api/bundles/{restaurant['id']}", {**fields, "item_ids": [licence, stopped.body["id"]]}, 422,
         "item_inactive"),
    ):
        reply = await admin.call("POST" if path == "/api/bundles" else "PUT", path, json=body)
        assert (reply.status, reply.code) == (status, code), (path, body, reply)
    assert await every_bundle(admin) == before, "nothing changed"
    for who in ("worker1", "clerk2", "supervisor1", "auditor1"):
        api = await platform.login(who)
        for method, path in (("POST", "/api/bundles"), ("PUT", f"/api/bundles/{restaurant['id']}")):
            reply = await api.call(method, path, json=fields)
            assert (reply.status, reply.code) == (403, "role_forbidden"), (who, method, reply)
    resident = await resident_sign_in(platform)
    assert (await resident.post("/api/bundles", fields)).code == "role_forbidden"
    assert await every_bundle(admin) == before

    parked = await admin.put(f"/api/bundles/{restaurant['id']}", {
        "code": restaurant["code"], "name": restaurant["name"], "item_ids": [setup, stopped.body["id"]],
        "active": False})
    assert parked.status == 200, "a stopped bundle may name a stopped item (to be resumed later)"


async def test_an_open_case_keeps_the_items_it_was_taken_with_when_its_bundle_is_edited(platform: Platform) -> None:
    admin, worker, clerk = [await platform.login(u) for u in ("admin", "worker1", "clerk2")]
    bundle = await bundle_named(worker, RESTAURANT)
    setup, licence, seal = ids_of(bundle, "SC-001", "SC-004", "GA-008")
    (change,) = await items_coded(admin, "SC-002")
    ticket = await take_bundle(worker, bundle["id"], "早来的老板")
    items_then = (await worker.get(f"/api/tickets/{ticket['id']}/items")).body
    checklist_then = (await worker.get(f"/api/tickets/{ticket['id']}/checklist")).body

    edited = await admin.put(f"/api/bundles/{bundle['id']}", {
        "code": bundle["code"], "name": bundle["name"], "description": bundle["description"],
        "item_ids": [change, seal]})
    assert edited.status == 200, edited
    assert (await worker.get(f"/api/tickets/{ticket['id']}/items")).body == items_then
    assert (await worker.get(f"/api/tickets/{ticket['id']}/checklist")).body == checklist_then
    later = await take_bundle(worker, bundle["id"], "晚来的老板")
    assert [i["item_id"] for i in (await worker.get(f"/api/tickets/{later['id']}/items")).body] == [change, seal]
    stopped = await admin.put(f"/api/bundles/{bundle['id']}", {
        "code": bundle["code"], "name": bundle["name"], "item_ids": [change, seal], "active": False})
    assert stopped.status == 200, stopped

    await called(clerk, ticket["id"])
    every = {setup, licence, seal}
    assert {i["item_id"] for i in (await clerk.get(f"/api/tickets/{ticket['id']}/items")).body} == every
    await provide(clerk, ticket["id"], every)
    done = await clerk.post(f"/api/tickets/{ticket['id']}/items/complete",
                            {"items": [{"item_id": i} for i in (setup, licence, seal)]})
    assert done.status == 200 and (done.body["status"], done.body["result"]) == ("completed", "done"), done
    assert (await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")).body["id"] == later["id"], \
        "the stopped bundle's waiting case is still served"
