"""督办台账: a problem raised from a case, an extension point, a supervisor or a bad rating is
claimed, answered, visited and closed (reopened on a bad verdict); illegal steps change nothing;
overdue items go to the department's supervisors, then the centre's head, once each; the
rectification of bad ratings on time is reported. On SQLite and PostgreSQL, the clock moved."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from server.keys import MONITOR
from tests.conftest import Api, Platform
from tests.helpers import district_item, take, window_of


async def served_and_completed(platform: Platform, name: str) -> tuple[dict[str, Any], Api, Api]:
    """worker1's resident, a district 民政 item, served and completed by clerk1."""
    worker, clerk = await platform.login("worker1"), await platform.login("clerk1")
    ticket = await take(worker, (await district_item(worker, "MZ"))["id"], name)
    assert (await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")).body["id"] == ticket["id"]
    await clerk.post(f"/api/tickets/{ticket['id']}/start")
    done = await clerk.post(f"/api/tickets/{ticket['id']}/complete", {"result": "materials_incomplete"})
    assert done.status == 200, done
    return ticket, worker, clerk


async def staff_texts(platform: Platform) -> list[str]:
    messages = (await (await platform.login("admin")).get("/api/notifications")).body["messages"]
    return [m["text"] for m in messages if m["kind"] == "ledger_overdue"]


async def queue_of(api: Api, centre_name: str, department_code: str) -> tuple[int, int]:
    org = (await api.get("/api/org")).body
    centre = next(c for c in org["centres"] if c["name"] == centre_name)
    department = next(d for d in org["departments"] if d["code"] == department_code)
    return centre["id"], department["id"]


async def test_a_case_problem_is_claimed_answered_visited_and_closed_reopened_on_a_bad_verdict(
        platform: Platform) -> None:
    ticket, worker, clerk = await served_and_completed(platform, "督办群众")
    supervisor, other_worker = await platform.login("supervisor1"), await platform.login("worker2")
    raised = await clerk.post("/api/ledger", {"source": "case", "category": "materials_incomplete",
                                              "title": "缺少户籍证明，需协调公安出具", "ticket_id": ticket["id"],
                                              "detail": "群众户籍在外地"})
    assert raised.status == 201, raised
    item = raised.body
    assert (item["state"], item["source"], item["department_id"], item["ticket_id"]) == (
        "open", "case", ticket["department_id"], ticket["id"])
    assert item["deadline"] > item["raised_at"] and item["overdue"] is False
    assert [i["id"] for i in (await worker.get("/api/ledger")).body] == [item["id"]], "the point's worker sees it"
    assert (await other_worker.get("/api/ledger")).body == [], "another point's does not"
    assert (await other_worker.get(f"/api/ledger/{item['id']}")).code == "ledger_item_not_found"

    early = await supervisor.post(f"/api/ledger/{item['id']}/visit", {"verdict": "satisfied"})
    assert (early.status, early.code) == (409, "ledger_illegal_transition"), early
    unclaimed = await clerk.post(f"/api/ledger/{item['id']}/answer", {"answer": "已处理"})
    assert (unclaimed.status, unclaimed.code) == (409, "ledger_illegal_transition"), unclaimed
    claimed = await clerk.post(f"/api/ledger/{item['id']}/claim")
    assert claimed.status == 200 and claimed.body["state"] == "claimed", claimed
    twice = await supervisor.post(f"/api/ledger/{item['id']}/claim")
    assert (twice.status, twice.code) == (409, "ledger_illegal_transition")
    by_worker = await worker.post(f"/api/ledger/{item['id']}/answer", {"answer": "x"})
    assert (by_worker.status, by_worker.code) == (403, "role_forbidden")
    answered = await clerk.post(f"/api/ledger/{item['id']}/answer", {
        "answer": "已联系户籍地派出所开具证明，邮寄到延伸点", "action_taken": "协调公安"})
    assert answered.status == 200 and answered.body["state"] == "answered", answered
    by_clerk = await clerk.post(f"/api/ledger/{item['id']}/visit", {"verdict": "satisfied"})
    assert (by_clerk.status, by_clerk.code) == (403, "role_forbidden")

    bad = await supervisor.post(f"/api/ledger/{item['id']}/visit", {"verdict": "unsatisfied", "note": "证明未收到"})
    assert bad.status == 200 and (bad.body["state"], bad.body["reopened"], bad.body["claimed_by_id"]) == (
        "open", 1, None), bad
    platform.clock.advance(hours=2)
    await clerk.post(f"/api/ledger/{item['id']}/claim")
    await clerk.post(f"/api/ledger/{item['id']}/answer", {"answer": "证明已补寄，快递单号已告知"})
    good = await supervisor.post(f"/api/ledger/{item['id']}/visit", {"verdict": "satisfied", "note": "已收到"})
    assert good.status == 200 and good.body["state"] == "visited", good
    closed = await supervisor.post(f"/api/ledger/{item['id']}/close", {"note": "结案"})
    assert closed.status == 200 and closed.body["state"] == "closed" and closed.body["closed_at"], closed
    again = await supervisor.post(f"/api/ledger/{item['id']}/close", {})
    assert (again.status, again.code) == (409, "ledger_illegal_transition")

    page = (await supervisor.get(f"/api/ledger/{item['id']}")).body
    assert [s["action"] for s in page["history"]] == [
        "raise", "claim", "answer", "reopen", "claim", "answer", "visit", "close"]
    assert page["history"][3]["note"].startswith("不满意") and page["history"][0]["actor"] == clerk.user["display_name"]
    audit = (await (await platform.login("auditor1")).get("/api/audit", target_type="ledger_item")).body
    assert sorted(e["action"] for e in audit) == sorted(f"ledger.{s['action']}" for s in page["history"])


async def test_bad_ledger_requests_are_refused_with_stable_codes_and_change_nothing(platform: Platform) -> None:
    ticket, worker, clerk = await served_and_completed(platform, "乱填群众")
    supervisor2, clerk2 = await platform.login("supervisor2"), await platform.login("clerk2")
    district_mz = (ticket["centre_id"], ticket["department_id"])
    refusals = [
        (clerk, {"source": "case", "category": "no_permission", "title": "t", "ticket_id": ticket["id"]},
         422, "ledger_category_invalid"),
        (clerk, {"source": "case", "category": "complaint", "title": "t"}, 422, "ticket_required"),
        (clerk, {"source": "case", "category": "complaint", "title": "t", "ticket_id": 999999}, 404, "ticket_not_found"),
        (clerk, {"source": "point", "category": "dont_know", "title": "t"}, 403, "role_forbidden"),
        (worker, {"source": "point", "category": "dont_know", "title": "t"}, 422, "department_required"),
        (worker, {"source": "point", "category": "dont_know", "title": "t", "item_id": 999999}, 404, "item_not_found"),
        (supervisor2, {"source": "supervisor", "category": "other", "title": "t", "centre_id": district_mz[0],
                       "department_id": district_mz[1]}, 403, "not_your_queue"),
        (worker, {"source": "case", "category": "bad_rating", "title": "t", "ticket_id": ticket["id"]},
         422, "invalid_input"),
        (worker, {"source": "case", "category": "complaint", "title": "  ", "ticket_id": ticket["id"]},
         422, "invalid_input"),
    ]
    for who, body, status, code in refusals:
        reply = await who.post("/api/ledger", body)
        assert (reply.status, reply.code) == (status, code), (body, reply)
    assert (await (await platform.login("admin")).get("/api/ledger")).body == [], "nothing was raised"

    item = (await worker.post("/api/ledger", {"source": "case", "category": "complaint", "title": "群众反映等候太久",
                                              "ticket_id": ticket["id"]})).body
    other_queue = await clerk2.post(f"/api/ledger/{item['id']}/claim")
    assert (other_queue.status, other_queue.code) == (404, "ledger_item_not_found"), "another queue's clerk"
    assert (await clerk.post("/api/ledger/999999/claim")).code == "ledger_item_not_found"
    assert (await clerk.post(f"/api/ledger/{item['id']}/answer", {"answer": ""})).code == "invalid_input"
    assert (await worker.get(f"/api/ledger/{item['id']}")).body["state"] == "open"


async def test_an_extension_points_problem_goes_to_the_queue_its_item_joins(platform: Platform) -> None:
    worker = await platform.login("worker1")
    item = await district_item(worker, "SB")
    raised = await worker.post("/api/ledger", {"source": "point", "category": "no_permission",
                                               "title": "延伸点没有社保系统查询权限", "item_id": item["id"]})
    assert raised.status == 201 and raised.body["extension_point_id"] == worker.user["extension_point_id"], raised
    assert raised.body["department_id"] == item["department_id"]
    clerk1 = await platform.login("clerk1")  # 区 民政·社保
    assert [i["id"] for i in (await clerk1.get("/api/ledger", state="open")).body] == [raised.body["id"]]


async def test_an_overdue_item_goes_to_the_department_then_the_centre_head_once_each(platform: Platform) -> None:
    supervisor2 = await platform.login("supervisor2")  # 高桥镇 民政·社保
    centre_id, department_id = await queue_of(supervisor2, "高桥镇便民服务中心", "MZ")
    item = (await supervisor2.post("/api/ledger", {
        "source": "supervisor", "category": "other", "title": "延伸点反映高龄津贴到账慢",
        "centre_id": centre_id, "department_id": department_id})).body
    monitor = platform.app[MONITOR]
    platform.clock.advance(hours=71)
    await monitor.run_once()
    assert await staff_texts(platform) == [], "not due yet"
    platform.clock.advance(hours=2)
    await monitor.run_once()
    await monitor.run_once()
    texts = await staff_texts(platform)
    assert len(texts) == 1 and "孔主任" in texts[0] and "钱主任" not in texts[0] and f"#{item['id']}" in texts[0], texts
    supervisor2 = await platform.login("supervisor2")  # the clock moved past the session's life
    listed = await supervisor2.get("/api/ledger", overdue="true")
    assert listed.status == 200, listed
    assert listed.body[0]["escalation"] == 1, listed
    platform.clock.advance(hours=22)  # 23 hours overdue
    await monitor.run_once()
    assert len(await staff_texts(platform)) == 1
    platform.clock.advance(hours=2)
    await monitor.run_once()
    await monitor.run_once()
    texts = await staff_texts(platform)
    assert len(texts) == 2 and sum("钱主任" in t for t in texts) == 1, "then the centre's head, once"
    summary = (await (await platform.login("supervisor1")).get("/api/ledger/summary")).body
    row = next(r for r in summary["departments"] if r["department_id"] == department_id)
    assert (row["open"], row["overdue"], row["oldest_open_hours"]) == (1, 1, 97.0)

    clerk4 = await platform.login("clerk4")  # 高桥镇 民政
    await clerk4.post(f"/api/ledger/{item['id']}/claim")
    await clerk4.post(f"/api/ledger/{item['id']}/answer", {"answer": "已核查，系银行代发延迟"})
    supervisor2 = await platform.login("supervisor2")
    reopened = await supervisor2.post(f"/api/ledger/{item['id']}/visit", {"verdict": "unsatisfied"})
    assert reopened.body["escalation"] == 0 and reopened.body["overdue"] is False
    platform.clock.advance(hours=73)
    await monitor.run_once()
    assert len(await staff_texts(platform)) == 3, "overdue again after reopening: told again"


async def test_a_bad_rating_opens_a_work_order_and_its_rectification_on_time_is_reported(platform: Platform) -> None:
    first, worker, clerk = await served_and_completed(platform, "差评一")
    second, _, _ = await served_and_completed(platform, "差评二")
    fine, _, _ = await served_and_completed(platform, "好评")
    supervisor = await platform.login("supervisor1")
    assert (await worker.post(f"/api/tickets/{fine['id']}/rating", {"score": 4})).status == 200
    assert (await supervisor.get("/api/ledger", source="rating")).body == [], "a 4 opens nothing"
    rated = await worker.post(f"/api/tickets/{first['id']}/rating", {"score": 1, "comment": "材料来回跑了三次"})
    assert rated.status == 200, rated
    await worker.post(f"/api/tickets/{second['id']}/rating", {"score": 2})
    orders = (await supervisor.get("/api/ledger", source="rating")).body
    assert [(o["ticket_id"], o["category"], o["state"], o["raised_by"]) for o in orders] == [
        (first["id"], "bad_rating", "open", "系统"), (second["id"], "bad_rating", "open", "系统")]
    assert orders[0]["detail"] == "材料来回跑了三次" and "1 星" in orders[0]["title"]
    due = datetime.fromisoformat(orders[0]["deadline"]) - datetime.fromisoformat(orders[0]["raised_at"])
    assert due == timedelta(hours=48), "a bad rating is rectified within 48 hours"
    summary = (await supervisor.get("/api/ledger/summary")).body["rectification"]
    assert summary == {"bad_ratings": 2, "answered": 0, "on_time": 0, "on_time_rate": 0.0}

    await clerk.post(f"/api/ledger/{orders[0]['id']}/claim")
    await clerk.post(f"/api/ledger/{orders[0]['id']}/answer", {"answer": "已向群众致歉并说明一次性告知清单"})
    platform.clock.advance(hours=49)  # the second is answered after its 48 hours
    clerk, supervisor = await platform.login("clerk1"), await platform.login("supervisor1")
    await clerk.post(f"/api/ledger/{orders[1]['id']}/claim")
    await clerk.post(f"/api/ledger/{orders[1]['id']}/answer", {"answer": "已回电说明"})
    summary = (await supervisor.get("/api/ledger/summary")).body["rectification"]
    assert summary == {"bad_ratings": 2, "answered": 2, "on_time": 1, "on_time_rate": 0.5}
