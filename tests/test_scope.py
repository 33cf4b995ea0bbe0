"""Every role held to its own cases: clerks to the queues their windows serve (centre ×
department), supervisors to their departments at their centres, personal data only to those who
serve the case, masked in every list, and each full read audited."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, Platform
from tests.helpers import district_item, take, window_of

ID_NUMBER = "330203195001011234"
PHONE = "13812345678"


async def town_item(api: Api, department_code: str = "MZ") -> dict[str, Any]:
    org = (await api.get("/api/org")).body
    dept = next(d for d in org["departments"] if d["code"] == department_code)
    return (await api.get("/api/items", department_id=dept["id"], level="town")).body[0]


async def test_a_clerk_lists_only_the_queues_their_windows_serve(platform: Platform) -> None:
    worker1, worker2 = await platform.login("worker1"), await platform.login("worker2")
    district_clerk, town_clerk = await platform.login("clerk1"), await platform.login("clerk4")
    person = {"id_number": ID_NUMBER, "phone": PHONE}
    at_gaoqiao = await take(worker1, (await town_item(worker1))["id"], "高桥群众", resident_extra=person)
    elsewhere = await take(worker2, (await town_item(worker2))["id"], "别镇群众", resident_extra=person)
    at_district = await take(worker1, (await district_item(worker1, "MZ"))["id"], "区级群众", resident_extra=person)

    town_list = {t["id"]: t for t in (await town_clerk.get("/api/tickets")).body}
    assert set(town_list) == {at_gaoqiao["id"]}, "clerk4 serves 高桥镇's 民政/社保 queues only"
    district_list = {t["id"]: t for t in (await district_clerk.get("/api/tickets")).body}
    assert set(district_list) == {at_district["id"]}, "a district clerk does not list town centres' residents"
    listed = town_list[at_gaoqiao["id"]]["resident"]
    assert listed == {"name": "高***", "id_number": "330203********1234", "phone": "138****5678", "masked": True}

    for ticket in (at_gaoqiao, elsewhere):
        refused = await district_clerk.get(f"/api/tickets/{ticket['id']}")
        assert refused.status == 404 and refused.code == "ticket_not_found", "a waiting ticket of another centre"
    assert (await town_clerk.get(f"/api/tickets/{elsewhere['id']}")).status == 404
    assert (await district_clerk.get("/api/tickets", department_id=at_gaoqiao["department_id"])).body == [
        t for t in (await district_clerk.get("/api/tickets")).body if t["department_id"] == at_gaoqiao["department_id"]]


async def test_personal_data_goes_in_full_only_to_the_serving_worker_and_clerk_each_read_audited(
        platform: Platform) -> None:
    worker = await platform.login("worker1")
    clerk = await platform.login("clerk4")
    other_clerk = await platform.login("clerk1")
    supervisor = await platform.login("supervisor1")
    admin = await platform.login("admin")
    ticket = await take(worker, (await town_item(worker))["id"], "李大爷",
                        resident_extra={"id_number": ID_NUMBER, "phone": PHONE, "note": "腿脚不便"})
    assert ticket["resident"] == {"name": "李大爷", "id_number": "330203********1234", "phone": "138****5678",
                                  "note": "腿脚不便", "masked": True}, "even the taker's copy is masked"
    waiting = (await clerk.get(f"/api/tickets/{ticket['id']}")).body["resident"]
    assert waiting == {"name": "李**", "id_number": "330203********1234", "phone": "138****5678", "masked": True}
    assert (await clerk.get(f"/api/tickets/{ticket['id']}/resident")).code == "not_serving_case"

    called = await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    assert called.body["id"] == ticket["id"] and called.body["resident"]["name"] == "李大爷"
    full = await clerk.get(f"/api/tickets/{ticket['id']}/resident")
    assert full.status == 200 and full.body == {"ticket_id": ticket["id"], "masked": False, "name": "李大爷",
                                                "id_number": ID_NUMBER, "phone": PHONE, "note": "腿脚不便"}
    assert (await worker.get(f"/api/tickets/{ticket['id']}/resident")).body["id_number"] == ID_NUMBER
    assert (await other_clerk.get(f"/api/tickets/{ticket['id']}/resident")).status == 404
    for api in (supervisor, admin):
        assert (await api.get(f"/api/tickets/{ticket['id']}/resident")).code == "role_forbidden"
        seen = (await api.get(f"/api/tickets/{ticket['id']}")).body["resident"]
        assert seen["name"] == "李**" and "note" not in seen
        listed = [t for t in (await api.get("/api/tickets")).body if t["id"] == ticket["id"]]
        assert listed and listed[0]["resident"]["id_number"] == "330203********1234"
    mine = [t for t in (await clerk.get("/api/tickets")).body if t["id"] == ticket["id"]][0]
    assert mine["resident"]["id_number"] == "330203********1234", "masked in the serving clerk's own list too"

    auditor = await platform.login("auditor1")
    reads = (await auditor.get("/api/audit", action="resident.read", target_id=str(ticket["id"]))).body
    assert sorted(r["actor"] for r in reads) == ["clerk4", "worker1"]


async def test_a_supervisor_watches_their_departments_at_their_centres(platform: Platform) -> None:
    worker1 = await platform.login("worker1")
    town_supervisor = await platform.login("supervisor2")  # 高桥镇, 民政 + 社保
    district_supervisor = await platform.login("supervisor1")
    at_gaoqiao = await take(worker1, (await town_item(worker1))["id"], "镇里")
    at_district = await take(worker1, (await district_item(worker1, "MZ"))["id"], "区里")
    assert {t["id"] for t in (await town_supervisor.get("/api/tickets")).body} == {at_gaoqiao["id"]}
    assert (await town_supervisor.get(f"/api/tickets/{at_district['id']}")).status == 404
    assert {at_gaoqiao["id"], at_district["id"]} <= {t["id"] for t in (await district_supervisor.get("/api/tickets")).body}

    board = (await town_supervisor.get("/api/dashboard")).body
    assert {d["code"] for d in board["departments"]} == {"MZ", "SB"}
    assert board["totals"]["waiting"] == 1, "the district's waiting resident is not on the town's wall"
    assert (await district_supervisor.get("/api/dashboard")).body["totals"]["waiting"] == 2

    org = (await town_supervisor.get("/api/org")).body
    district = next(c for c in org["centres"] if c["parent_id"] is None)
    clerk = await platform.login("clerk2")
    opened = await town_supervisor.post("/api/tidal-windows", {"department_id": at_gaoqiao["department_id"],
                                                               "clerk_id": clerk.user["id"], "centre_id": district["id"]})
    assert opened.status == 404 and opened.code == "centre_not_found", "no tidal window outside their centres"
    here = await town_supervisor.post("/api/tidal-windows", {"department_id": at_gaoqiao["department_id"],
                                                             "clerk_id": clerk.user["id"]})
    assert here.status == 201 and here.body["centre_id"] == at_gaoqiao["centre_id"], "their own centre by default"


async def test_experts_and_auditors_see_no_tickets(platform: Platform) -> None:
    worker = await platform.login("worker1")
    ticket = await take(worker, (await district_item(worker, "MZ"))["id"], "某人")
    for name in ("expert1", "auditor1"):
        api = await platform.login(name)
        assert (await api.get("/api/tickets")).code == "role_forbidden"
        assert (await api.get(f"/api/tickets/{ticket['id']}")).code == "role_forbidden"
    expert = await platform.login("expert1")
    queues = (await expert.get("/api/queues")).body
    assert queues and all(set(q) == {"centre_id", "department_id", "windows_open", "waiting", "serving",
                                     "longest_wait_s", "warning_level"} for q in queues), "counts only"
