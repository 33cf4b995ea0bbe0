"""The core story over HTTP: a worker takes a ticket, a clerk calls and serves it, the
resident rates it — and the rules around it. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from tests.conftest import Platform
from tests.helpers import district_item, item_named, take, window_of


async def test_worker1_ticket_for_district_minzheng_item_is_called_by_clerk1(platform: Platform) -> None:
    worker = await platform.login("worker1")
    clerk = await platform.login("clerk1")
    item = await district_item(worker, "MZ")
    ticket = await take(worker, item["id"], "李大爷")
    assert ticket["number"] == "MZ001"
    assert ticket["status"] == "waiting" and ticket["position"] == 1
    assert ticket["estimated_wait_s"] > 0 and ticket["callback"] is False

    called = await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    assert called.status == 200 and called.body["id"] == ticket["id"]
    assert called.body["status"] == "called" and called.body["clerk_id"] == clerk.user["id"]

    started = await clerk.post(f"/api/tickets/{ticket['id']}/start")
    assert started.body["status"] == "in_service"
    platform.clock.advance(minutes=6)
    done = await clerk.post(f"/api/tickets/{ticket['id']}/complete", {"result": "consultation_only", "note": "政策咨询"})
    assert done.status == 200 and done.body["status"] == "completed" and done.body["result"] == "consultation_only"

    rated = await worker.post(f"/api/tickets/{ticket['id']}/rating", {"score": 5, "comment": "很方便"})
    assert rated.status == 200 and rated.body["rating"]["score"] == 5
    again = await worker.post(f"/api/tickets/{ticket['id']}/rating", {"score": 1})
    assert again.status == 409 and again.code == "already_rated"
    seen = await worker.get(f"/api/tickets/{ticket['id']}")
    assert seen.body["rating"]["score"] == 5


async def test_a_called_ticket_names_its_window_for_a_reloaded_worker_page(platform: Platform) -> None:
    worker, clerk = await platform.login("worker1"), await platform.login("clerk1")
    ticket = await take(worker, (await district_item(worker, "MZ"))["id"], "窗口名")
    assert (await worker.get(f"/api/tickets/{ticket['id']}")).body["window_name"] is None
    assert (await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")).status == 200
    read = (await worker.get(f"/api/tickets/{ticket['id']}")).body
    assert read["status"] == "called" and read["window_name"] == clerk.user["windows"][0]["name"]


async def test_me_shows_clerk_windows_with_their_departments(platform: Platform) -> None:
    clerk = await platform.login("clerk1")
    me = await clerk.get("/api/me")
    assert me.status == 200
    (window,) = me.body["windows"]
    assert sorted(d["name"] for d in window["departments"]) == ["民政", "社保"]


async def test_items_carry_department_level_and_materials_checklist(platform: Platform) -> None:
    worker = await platform.login("worker1")
    items = (await worker.get("/api/items")).body
    assert len(items) >= 40
    allowance = await item_named(worker, "高龄津贴申领")
    assert [m["name"] for m in allowance["materials"]] == ["身份证", "户口簿", "社保卡", "社区证明"]
    assert allowance["level"] in ("district", "town") and allowance["department_id"]
    by_initials = (await worker.get("/api/items", q="gljt")).body
    assert any(i["name"] == "高龄津贴申领" for i in by_initials)
    one = await worker.get(f"/api/items/{allowance['id']}")
    assert one.status == 200 and one.body["materials"] == allowance["materials"]
    missing = await worker.get("/api/items/999999")
    assert missing.status == 404 and missing.code == "item_not_found"


async def test_call_next_with_nobody_waiting_answers_204(platform: Platform) -> None:
    clerk = await platform.login("clerk1")
    reply = await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    assert reply.status == 204


async def test_priority_first_then_first_come_first_served_across_departments(platform: Platform) -> None:
    worker = await platform.login("worker1")
    clerk = await platform.login("clerk1")
    mz = await district_item(worker, "MZ")
    sb = await district_item(worker, "SB")
    first = await take(worker, mz["id"], "张三")
    platform.clock.advance(minutes=1)
    second = await take(worker, sb["id"], "李四")
    platform.clock.advance(minutes=1)
    elderly = await take(worker, mz["id"], "王奶奶", priority="elderly")
    assert elderly["position"] == 1
    assert (await worker.get(f"/api/tickets/{first['id']}")).body["position"] == 2
    order = []
    for _ in range(3):
        called = await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
        order.append(called.body["id"])
        await clerk.post(f"/api/tickets/{called.body['id']}/start")
        await clerk.post(f"/api/tickets/{called.body['id']}/complete", {"result": "consultation_only"})
    assert order == [elderly["id"], first["id"], second["id"]]


async def test_double_click_on_call_next_calls_one_ticket(platform: Platform) -> None:
    worker = await platform.login("worker1")
    clerk = await platform.login("clerk1")
    item = await district_item(worker, "MZ")
    for name in ("甲", "乙", "丙"):
        await take(worker, item["id"], name)
    window = window_of(clerk)
    replies = await asyncio.gather(*(clerk.post(f"/api/windows/{window}/call-next") for _ in range(4)))
    assert sorted(r.status for r in replies) == [200, 409, 409, 409]
    assert all(r.code == "window_busy" for r in replies if r.status == 409)
    called = (await clerk.get("/api/tickets", status="called")).body
    assert len(called) == 1


async def test_illegal_transition_is_409_and_changes_nothing(platform: Platform) -> None:
    worker = await platform.login("worker1")
    clerk = await platform.login("clerk1")
    ticket = await take(worker, (await district_item(worker, "MZ"))["id"], "赵六")
    await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    before = (await clerk.get(f"/api/tickets/{ticket['id']}")).body
    reply = await clerk.post(f"/api/tickets/{ticket['id']}/complete", {"result": "done"})
    assert reply.status == 409 and reply.code == "illegal_transition"
    after = (await clerk.get(f"/api/tickets/{ticket['id']}")).body
    assert after == before
    await clerk.post(f"/api/tickets/{ticket['id']}/start")
    await clerk.post(f"/api/tickets/{ticket['id']}/complete", {"result": "consultation_only"})
    for action in ("start", "recall", "no-show", "complete"):
        late = await clerk.post(f"/api/tickets/{ticket['id']}/{action}")
        assert late.status == 409 and late.code == "illegal_transition", action


async def test_no_show_only_after_the_configured_recalls(platform: Platform) -> None:
    worker = await platform.login("worker1")
    clerk = await platform.login("clerk1")
    ticket = await take(worker, (await district_item(worker, "MZ"))["id"], "钱七")
    await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    early = await clerk.post(f"/api/tickets/{ticket['id']}/no-show")
    assert early.status == 409 and early.code == "recall_first"
    for n in (1, 2):
        recalled = await clerk.post(f"/api/tickets/{ticket['id']}/recall")
        assert recalled.body["recalls"] == n
    gone = await clerk.post(f"/api/tickets/{ticket['id']}/no-show")
    assert gone.status == 200 and gone.body["status"] == "no_show"


async def test_transfer_keeps_the_original_take_time(platform: Platform) -> None:
    worker = await platform.login("worker1")
    clerk1 = await platform.login("clerk1")
    clerk2 = await platform.login("clerk2")
    org = (await worker.get("/api/org")).body
    ga = next(d for d in org["departments"] if d["code"] == "GA")
    early = await take(worker, (await district_item(worker, "MZ"))["id"], "孙八")
    platform.clock.advance(minutes=5)
    newer = await take(worker, (await district_item(worker, "GA"))["id"], "周九")
    await clerk1.post(f"/api/windows/{window_of(clerk1)}/call-next")
    moved = await clerk1.post(f"/api/tickets/{early['id']}/transfer", {"department_id": ga["id"], "reason": "属公安事项"})
    assert moved.status == 200 and moved.body["status"] == "waiting"
    assert moved.body["number"].startswith("GA") and moved.body["taken_at"] == early["taken_at"]
    assert moved.body["transfers"] == 1
    gone = await clerk1.get(f"/api/tickets/{early['id']}")
    assert gone.status == 404
    called = await clerk2.post(f"/api/windows/{window_of(clerk2)}/call-next")
    assert called.body["id"] == early["id"], "the transferred ticket keeps its place by take time"
    assert newer["id"] != early["id"]
    same = await clerk2.post(f"/api/tickets/{early['id']}/transfer", {"department_id": ga["id"]})
    assert same.status == 422 and same.code == "transfer_to_same_queue"


async def test_worker_cancels_waiting_ticket_but_not_a_called_one(platform: Platform) -> None:
    worker = await platform.login("worker1")
    clerk = await platform.login("clerk1")
    item = await district_item(worker, "MZ")
    a = await take(worker, item["id"], "吴一")
    b = await take(worker, item["id"], "郑二")
    cancelled = await worker.post(f"/api/tickets/{a['id']}/cancel", {"reason": "群众先回家"})
    assert cancelled.status == 200 and cancelled.body["status"] == "cancelled"
    await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    refused = await worker.post(f"/api/tickets/{b['id']}/cancel", {})
    assert refused.status == 409 and refused.code == "illegal_transition"
    by_clerk = await clerk.post(f"/api/tickets/{b['id']}/cancel", {"reason": "群众离开"})
    assert by_clerk.status == 200 and by_clerk.body["status"] == "cancelled"


async def test_same_resident_cannot_take_the_same_item_twice(platform: Platform) -> None:
    worker = await platform.login("worker1")
    item = await district_item(worker, "MZ")
    await take(worker, item["id"], "冯三")
    twice = await worker.post("/api/tickets", {"item_id": item["id"], "resident": {"name": "冯三"}})
    assert twice.status == 409 and twice.code == "duplicate_ticket"


async def test_ticket_numbers_count_per_department(platform: Platform) -> None:
    worker = await platform.login("worker1")
    mz = await district_item(worker, "MZ")
    sb = await district_item(worker, "SB")
    numbers = [
        (await take(worker, mz["id"], "陈一"))["number"],
        (await take(worker, sb["id"], "陈二"))["number"],
        (await take(worker, mz["id"], "陈三"))["number"],
    ]
    assert numbers == ["MZ001", "SB001", "MZ002"]
    supervisor = await platform.login("supervisor1")
    only_sb = (await supervisor.get("/api/tickets", department_id=sb["department_id"], status="waiting")).body
    assert [t["number"] for t in only_sb] == ["SB001"]
    assert (await supervisor.get("/api/tickets", status="called")).body == []
