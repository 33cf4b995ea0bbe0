"""预约: a resident books a slot in the service hours; at the slot's start the monitor puts the
ticket in the queue ahead of walk-ins (priority tickets still first); slots fill up; a booking is
cancelled or missed in words; bad input changes nothing."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from zoneinfo import ZoneInfo

from server.keys import MONITOR
from tests.conftest import Api, Platform
from tests.helpers import district_item, resident_sign_in, take, window_of

TZ = ZoneInfo("Asia/Shanghai")
TUESDAY = date(2026, 11, 24)  # the tests' clock stands at Monday 2026-11-23 10:00 in Ningbo


async def slots(api: Api, item_id: int, day: date) -> list[dict]:  # type: ignore[type-arg]
    reply = await api.get("/api/appointments/slots", item_id=item_id, day=day.isoformat())
    assert reply.status == 200, reply
    return list(reply.body)


async def test_slots_lie_in_the_service_hours_and_fill_up(platform: Platform) -> None:
    me = await resident_sign_in(platform)
    item = await district_item(me, "MZ")
    today = await slots(me, item["id"], date(2026, 11, 23))
    assert today[0]["start"] == datetime(2026, 11, 23, 10, 30, tzinfo=TZ).isoformat(), "only slots not begun yet"
    tuesday = await slots(me, item["id"], TUESDAY)
    assert len(tuesday) == 16 and tuesday[0]["start"].startswith("2026-11-24T09:00") and tuesday[-1]["end"].startswith(
        "2026-11-24T17:00"), "mon-fri 09:00-17:00 in 30-minute slots"
    assert all(s["left"] == 3 for s in tuesday)
    assert await slots(me, item["id"], date(2026, 11, 28)) == [], "no service on Saturday"
    assert await slots(me, item["id"], date(2026, 12, 7)) == [], "at most 7 days ahead"
    every = (await me.get("/api/appointments/slots", item_id=item["id"])).body
    assert len(every) == 13 + 5 * 16 and every[0] == today[0] and every[-1]["start"].startswith("2026-11-30T16:30"), \
        "without a day: the rest of today and the next service days to a week ahead"

    slot = tuesday[2]["start"]
    others = [await resident_sign_in(platform, f"1370013700{n}") for n in (1, 2, 3)]
    for n, who in enumerate(others[:2]):
        booked = await who.post("/api/appointments", {"item_id": item["id"], "slot_start": slot, "name": f"群众{n}"})
        assert booked.status == 201 and booked.body["state"] == "booked", booked
    assert (await slots(me, item["id"], TUESDAY))[2]["left"] == 1
    mine = await me.post("/api/appointments", {"item_id": item["id"], "slot_start": slot, "name": "张三"})
    assert mine.status == 201, mine
    full = await others[2].post("/api/appointments", {"item_id": item["id"], "slot_start": slot, "name": "晚来的"})
    assert (full.status, full.code) == (409, "slot_full"), full
    twice = await me.post("/api/appointments", {"item_id": item["id"], "slot_start": tuesday[3]["start"], "name": "张三"})
    assert (twice.status, twice.code) == (409, "appointment_exists"), "one booking at a time"

    refusals = [
        ({"slot_start": "2026-11-24T09:10:00+08:00"}, "slot_invalid"),  # not a slot's start
        ({"slot_start": "2026-11-24T18:00:00+08:00"}, "slot_invalid"),  # after hours
        ({"slot_start": "2026-11-23T09:30:00+08:00"}, "slot_unavailable"),  # past
        ({"slot_start": "2026-11-24T09:00:00"}, "invalid_input"),  # no offset
        ({"item_id": 999999}, "item_not_found"),
        ({"name": " "}, "invalid_input"),
    ]
    for change, code in refusals:
        body = {"item_id": item["id"], "slot_start": tuesday[0]["start"], "name": "李四", **change}
        reply = await others[2].post("/api/appointments", body)
        assert reply.code == code, (change, reply)
    assert [a["state"] for a in (await others[2].get("/api/appointments")).body] == [], "refusals keep nothing"
    texts = (await (await platform.login("admin")).get("/api/notifications")).body["messages"]
    assert sum(1 for m in texts if m["kind"] == "appointment") == 3, "each booking is confirmed by SMS"


async def test_at_its_slot_the_booking_enters_the_queue_ahead_of_walk_ins(platform: Platform) -> None:
    me = await resident_sign_in(platform)
    worker, clerk = await platform.login("worker1"), await platform.login("clerk1")
    item = await district_item(worker, "MZ")
    slot = (await slots(me, item["id"], date(2026, 11, 23)))[0]  # today 10:30
    booked = (await me.post("/api/appointments", {"item_id": item["id"], "slot_start": slot["start"],
                                                  "name": "预约的张三"})).body
    walk_in = await take(worker, item["id"], "现场的李四")
    elderly = await take(worker, item["id"], "高龄的王五", priority="elderly")
    monitor = platform.app[MONITOR]
    await monitor.run_once()
    assert (await me.get("/api/tickets")).body == [], "not before its slot"

    platform.clock.advance(minutes=30)
    await monitor.run_once()
    await monitor.run_once()  # a second pass (or node) enters it once
    entered = (await me.get("/api/appointments")).body[0]
    assert entered["state"] == "queued" and entered["ticket_id"], entered
    mine = (await me.get("/api/tickets")).body
    assert len(mine) == 1 and mine[0]["appointment_at"] is not None and mine[0]["source"] == "direct"
    detail = (await me.get(f"/api/tickets/{mine[0]['id']}")).body
    assert detail["position"] == 2, "after the priority ticket, ahead of the walk-in taken before it"
    assert (await worker.get(f"/api/tickets/{walk_in['id']}")).body["position"] == 3
    order = []
    for _ in range(3):
        called = await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
        order.append(called.body["id"])
        await clerk.post(f"/api/tickets/{called.body['id']}/start")
        await clerk.post(f"/api/tickets/{called.body['id']}/complete", {"result": "consultation_only"})
    assert order == [elderly["id"], mine[0]["id"], walk_in["id"]]
    assert (await me.post(f"/api/appointments/{booked['id']}/cancel")).code == "appointment_not_booked"


async def test_a_booking_is_cancelled_or_missed_and_only_its_owner_sees_it(platform: Platform) -> None:
    me, other = await resident_sign_in(platform), await resident_sign_in(platform, "13700137001")
    item = await district_item(me, "MZ")
    first = (await slots(me, item["id"], date(2026, 11, 23)))[0]
    booked = (await me.post("/api/appointments", {"item_id": item["id"], "slot_start": first["start"],
                                                  "name": "张三"})).body
    assert (await other.get("/api/appointments")).body == []
    assert (await other.post(f"/api/appointments/{booked['id']}/cancel")).code == "appointment_not_found"
    cancelled = await me.post(f"/api/appointments/{booked['id']}/cancel")
    assert cancelled.body["state"] == "cancelled", cancelled
    assert (await slots(me, item["id"], date(2026, 11, 23)))[0]["left"] == 3, "a cancelled place is free again"

    # A resident who already holds an open ticket when the slot comes: missed, in words.
    again = (await me.post("/api/appointments", {"item_id": item["id"], "slot_start": first["start"],
                                                 "name": "张三"})).body
    await take(me, item["id"], "张三")
    platform.clock.advance(minutes=31)
    await platform.app[MONITOR].run_once()
    missed = next(a for a in (await me.get("/api/appointments")).body if a["id"] == again["id"])
    assert missed["state"] == "missed" and "排队或办理中的号" in missed["note"], missed
    assert len((await me.get("/api/tickets")).body) == 1

    # The server was down through the whole slot (and the next): missed, not queued late.
    slot = (await slots(other, item["id"], date(2026, 11, 23)))[0]
    late = (await other.post("/api/appointments", {"item_id": item["id"], "slot_start": slot["start"],
                                                   "name": "李四"})).body
    platform.clock.advance(hours=2)
    await platform.app[MONITOR].run_once()
    gone = (await other.get("/api/appointments")).body[0]
    assert gone["id"] == late["id"] and gone["state"] == "missed" and gone["note"] == "预约时段已过", gone
    assert (await other.get("/api/tickets")).body == []
    staff = await platform.login("worker1")
    assert (await staff.get("/api/appointments")).code == "role_forbidden"



async def test_residents_racing_for_a_slots_last_places_never_overfill_it(platform: Platform) -> None:
    """Five residents book the same slot at once with two places left: two get it, three are
    told it is full, and the slot holds exactly its three places (PostgreSQL too)."""
    first = await resident_sign_in(platform)
    item = await district_item(first, "MZ")
    slot = (await slots(first, item["id"], TUESDAY))[4]["start"]
    assert (await first.post("/api/appointments", {"item_id": item["id"], "slot_start": slot, "name": "先约的"})).status == 201
    racing = [await resident_sign_in(platform, f"1370013701{n}") for n in range(5)]
    replies = await asyncio.gather(*(who.post("/api/appointments", {
        "item_id": item["id"], "slot_start": slot, "name": f"群众{n}"}) for n, who in enumerate(racing)))
    assert sorted(r.status for r in replies) == [201, 201, 409, 409, 409], replies
    assert {r.code for r in replies if r.status == 409} == {"slot_full"}
    assert (await slots(first, item["id"], TUESDAY))[4]["left"] == 0
    tuesday = await slots(first, item["id"], TUESDAY)
    tapper = await resident_sign_in(platform, "13700137020")
    double = await asyncio.gather(*(tapper.post("/api/appointments", {
        "item_id": item["id"], "slot_start": s["start"], "name": "连点"}) for s in tuesday[5:8]))
    assert sorted((r.status, r.code) for r in double) == [(201, None), (409, "appointment_exists"),
                                                          (409, "appointment_exists")], double
