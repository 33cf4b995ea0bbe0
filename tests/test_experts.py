"""The expert pool, invitations and the consultation: rules on both databases, live delivery."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from typing import Any

from server.config import ConsultationRules
from server.keys import DOMAIN, MONITOR, PRESENCE
from tests.conftest import Api, Platform
from tests.helpers import Listener, district_item, take, window_of


async def called_ticket(platform: Platform, worker: str = "worker1", clerk: str = "clerk1") -> tuple[dict[str, Any], Api, Api]:
    """A ticket of the clerk's first department, taken by the worker and called by the clerk."""
    worker_api, clerk_api = await platform.login(worker), await platform.login(clerk)
    code = clerk_api.user["windows"][0]["departments"][0]["code"]
    ticket = await take(worker_api, (await district_item(worker_api, code))["id"], "会商群众")
    reply = await clerk_api.post(f"/api/windows/{window_of(clerk_api)}/call-next")
    assert reply.status == 200, reply
    assert reply.body["id"] == ticket["id"]
    return ticket, worker_api, clerk_api


async def expert_id(platform: Platform, username: str) -> int:
    return int((await platform.login(username)).user["id"])


# --- the pool ----------------------------------------------------------------------------------


async def test_the_pool_is_searched_by_specialty_department_and_presence(platform: Platform) -> None:
    clerk = await platform.login("clerk1")
    everyone = (await clerk.get("/api/experts")).body
    assert {e["display_name"] for e in everyone} == {"专家 孙建国", "专家 吴晓燕", "专家 郑伟"}

    social = (await clerk.get("/api/experts", specialty="医保")).body
    assert [e["display_name"] for e in social] == ["专家 吴晓燕"]
    org = (await clerk.get("/api/org")).body
    civil = next(d for d in org["departments"] if d["code"] == "MZ")
    assert [e["display_name"] for e in (await clerk.get("/api/experts", department=civil["id"])).body] == ["专家 孙建国"]

    assert (await clerk.get("/api/experts", online="true")).body == []
    expert1 = await platform.login("expert1")
    async with await Listener().connect(platform, expert1):
        online = (await clerk.get("/api/experts", online="true")).body
        assert [(e["display_name"], e["presence"], e["free"]) for e in online] == [("专家 孙建国", "online", True)]
    offline = {e["display_name"]: e["presence"] for e in (await clerk.get("/api/experts")).body}
    assert offline["专家 孙建国"] == "offline"

    worker = await platform.login("worker1")
    refused = await worker.get("/api/experts")
    assert (refused.status, refused.body["error"]["code"]) == (403, "role_forbidden")
    bad = await clerk.get("/api/experts", online="maybe")
    assert (bad.status, bad.body["error"]["code"]) == (422, "invalid_input")


async def test_an_expert_can_pause_and_is_then_not_invitable(platform: Platform) -> None:
    ticket, _, clerk = await called_ticket(platform)
    expert1 = await platform.login("expert1")
    assert (await expert1.call("PATCH", "/api/experts/me", {"available": False})).body["available"] is False
    assert (await expert1.get("/api/me")).body["available"] is False
    listed = next(e for e in (await clerk.get("/api/experts")).body if e["id"] == expert1.user["id"])
    assert listed["available"] is False and listed["free"] is False
    refused = await clerk.post(f"/api/tickets/{ticket['id']}/consultations", {"expert_ids": [expert1.user["id"]]})
    assert (refused.status, refused.body["error"]["code"]) == (409, "expert_unavailable")


# --- invitations -------------------------------------------------------------------------------


async def test_an_invitation_reaches_the_expert_live_with_the_case_and_the_answer_reaches_the_clerk(
    platform: Platform,
) -> None:
    ticket, _, clerk = await called_ticket(platform)
    expert1 = await platform.login("expert1")
    expert_live, clerk_live = Listener(), Listener()
    async with await expert_live.connect(platform, expert1), await clerk_live.connect(platform, clerk):
        reply = await clerk.post(f"/api/tickets/{ticket['id']}/consultations",
                                 {"expert_ids": [expert1.user["id"]], "note": "高龄津贴跨区户籍，请协助"})
        assert reply.status == 201, reply
        invitation = reply.body["invitations"][0]
        assert invitation["status"] == "pending"

        live = await expert_live.wait_for("invitation.created")
        assert live["id"] == invitation["id"] and live["note"] == "高龄津贴跨区户籍，请协助"
        assert live["invited_by_name"] == clerk.user["display_name"]
        case = live["case"]
        assert case["ticket_id"] == ticket["id"] and case["item"]["name"]
        assert case["checklist"] and all(line["state"] == "missing" for line in case["checklist"])
        assert case["documents"] == []
        assert live["now"] < live["expires_at"]  # the server's time, for the countdown

        platform.clock.advance(seconds=12)
        accepted = await expert1.post(f"/api/invitations/{invitation['id']}/accept")
        assert accepted.status == 200, accepted
        assert accepted.body["status"] == "accepted" and accepted.body["response_seconds"] == 12.0

        told = await clerk_live.wait_for("invitation.updated", lambda d: d["status"] == "accepted")
        assert told["expert_id"] == expert1.user["id"] and told["response_seconds"] == 12.0

    mine = (await expert1.get("/api/invitations", status="accepted")).body
    assert [i["id"] for i in mine] == [invitation["id"]]
    timeline = (await clerk.get(f"/api/tickets/{ticket['id']}/consultations")).body
    assert [e["kind"] for e in timeline["timeline"]] == ["invited", "accepted"]
    assert timeline["timeline"][1]["response_seconds"] == 12.0
    assert timeline["consultations"][0]["note"] == "高龄津贴跨区户籍，请协助"


async def test_an_unanswered_invitation_expires_and_the_clerk_can_invite_someone_else(platform: Platform) -> None:
    ticket, _, clerk = await called_ticket(platform)
    expert1, expert2 = await platform.login("expert1"), await platform.login("expert2")
    async with await Listener().connect(platform, clerk) as clerk_live:
        first = (await clerk.post(f"/api/tickets/{ticket['id']}/consultations",
                                  {"expert_ids": [expert1.user["id"]]})).body["invitations"][0]
        platform.clock.advance(seconds=119)
        await platform.app[MONITOR].run_once()
        assert (await expert1.get("/api/invitations", status="pending")).body[0]["id"] == first["id"]

        platform.clock.advance(seconds=2)
        late = await expert1.post(f"/api/invitations/{first['id']}/accept")  # before the monitor's pass
        assert (late.status, late.body["error"]["code"]) == (409, "invitation_expired")
        await platform.app[MONITOR].run_once()
        expired = await clerk_live.wait_for("invitation.updated", lambda d: d["status"] == "expired")
        assert expired["id"] == first["id"] and expired["expert_name"] == "专家 孙建国"
    after = await expert1.post(f"/api/invitations/{first['id']}/accept")
    assert (after.status, after.body["error"]["code"]) == (409, "invitation_expired")

    again = await clerk.post(f"/api/tickets/{ticket['id']}/consultations",
                             {"expert_ids": [expert1.user["id"], expert2.user["id"]]})
    assert again.status == 201, again
    kinds = [(e["kind"], e["expert_name"]) for e in (await clerk.get(f"/api/tickets/{ticket['id']}/consultations")).body["timeline"]]
    assert kinds[:2] == [("invited", "专家 孙建国"), ("expired", "专家 孙建国")]


async def test_the_clerk_hears_of_an_expiry_when_it_happens_not_at_the_next_monitor_pass(platform: Platform) -> None:
    domain = platform.app[DOMAIN]
    domain.settings = dataclasses.replace(domain.settings, consultations=ConsultationRules(invitation_ttl_seconds=0.3))
    ticket, _, clerk = await called_ticket(platform)
    expert2 = await platform.login("expert2")
    async with await Listener().connect(platform, clerk) as clerk_live:
        await clerk.post(f"/api/tickets/{ticket['id']}/consultations", {"expert_ids": [expert2.user["id"]]})
        platform.clock.advance(seconds=1)  # the monitor does not run in tests: only the timer can tell
        expired = await clerk_live.wait_for("invitation.updated", lambda d: d["status"] == "expired", timeout=5)
    assert expired["expert_id"] == expert2.user["id"]


async def test_a_declined_invitation_tells_the_clerk_and_cannot_then_be_accepted(platform: Platform) -> None:
    ticket, _, clerk = await called_ticket(platform)
    expert2 = await platform.login("expert2")
    async with await Listener().connect(platform, clerk) as clerk_live:
        invitation = (await clerk.post(f"/api/tickets/{ticket['id']}/consultations",
                                       {"expert_ids": [expert2.user["id"]]})).body["invitations"][0]
        declined = await expert2.post(f"/api/invitations/{invitation['id']}/decline", {"reason": "正在外出"})
        assert declined.status == 200 and declined.body["status"] == "declined"
        told = await clerk_live.wait_for("invitation.updated", lambda d: d["status"] == "declined")
        assert told["reason"] == "正在外出"
    late = await expert2.post(f"/api/invitations/{invitation['id']}/accept")
    assert (late.status, late.body["error"]["code"]) == (409, "invitation_answered")
    record = (await clerk.get(f"/api/tickets/{ticket['id']}/consultations")).body
    assert record["invitations"][0]["reason"] == "正在外出"  # still there after a reload
    join = await expert2.get(f"/api/tickets/{ticket['id']}/documents")
    assert join.status == 404


async def test_two_accepts_of_one_invitation_one_wins(platform: Platform) -> None:
    ticket, _, clerk = await called_ticket(platform)
    expert3 = await platform.login("expert3")
    invitation = (await clerk.post(f"/api/tickets/{ticket['id']}/consultations",
                                   {"expert_ids": [expert3.user["id"]]})).body["invitations"][0]
    replies = await asyncio.gather(*[expert3.post(f"/api/invitations/{invitation['id']}/accept") for _ in range(2)])
    assert sorted(r.status for r in replies) == [200, 409]
    assert next(r for r in replies if r.status == 409).body["error"]["code"] == "invitation_answered"
    timeline = (await clerk.get(f"/api/tickets/{ticket['id']}/consultations")).body["timeline"]
    assert [e["kind"] for e in timeline] == ["invited", "accepted"]


async def test_who_may_invite_answer_and_how_many(platform: Platform) -> None:
    ticket, worker, clerk = await called_ticket(platform)
    ids = [await expert_id(platform, u) for u in ("expert1", "expert2", "expert3")]
    path = f"/api/tickets/{ticket['id']}/consultations"

    by_worker = await worker.post(path, {"expert_ids": ids[:1]})
    assert (by_worker.status, by_worker.body["error"]["code"]) == (403, "role_forbidden")
    other_clerk = await platform.login("clerk2")
    by_other = await other_clerk.post(path, {"expert_ids": ids[:1]})
    assert (by_other.status, by_other.body["error"]["code"]) == (404, "ticket_not_found")
    unknown = await clerk.post(path, {"expert_ids": [worker.user["id"]]})
    assert (unknown.status, unknown.body["error"]["code"]) == (422, "unknown_expert")
    empty = await clerk.post(path, {"expert_ids": []})
    assert (empty.status, empty.body["error"]["code"]) == (422, "no_experts")
    wordy = await clerk.post(path, {"expert_ids": ids[:1], "note": "说" * 501})
    assert (wordy.status, wordy.body["error"]["code"]) == (422, "note_too_long")
    nowhere = await clerk.post("/api/tickets/999999/consultations", {"expert_ids": ids[:1]})
    assert (nowhere.status, nowhere.body["error"]["code"]) == (404, "ticket_not_found")

    supervisor = await platform.login("supervisor1")
    by_supervisor = await supervisor.post(path, {"expert_ids": ids[:1]})
    assert by_supervisor.status == 201, by_supervisor
    twice = await clerk.post(path, {"expert_ids": ids[:2]})
    assert (twice.status, twice.body["error"]["code"]) == (409, "already_invited")
    assert len((await clerk.get(path)).body["invitations"]) == 1  # nothing of the refused call stayed

    invitation = by_supervisor.body["invitations"][0]
    expert2 = await platform.login("expert2")
    not_theirs = await expert2.post(f"/api/invitations/{invitation['id']}/accept")
    assert (not_theirs.status, not_theirs.body["error"]["code"]) == (404, "invitation_not_found")
    by_clerk = await clerk.post(f"/api/invitations/{invitation['id']}/accept")
    assert (by_clerk.status, by_clerk.body["error"]["code"]) == (403, "role_forbidden")
    pending_reads = await expert2.get(path)
    assert pending_reads.status == 404

    assert (await clerk.post(f"/api/tickets/{ticket['id']}/start")).status == 200
    done = await clerk.post(f"/api/tickets/{ticket['id']}/complete", {"result": "materials_incomplete"})
    assert done.status == 200, done
    closed = await clerk.post(path, {"expert_ids": ids[1:2]})
    assert (closed.status, closed.body["error"]["code"]) == (409, "call_not_open")


async def test_an_expert_is_in_one_consultation_at_a_time_unless_they_choose_otherwise(platform: Platform) -> None:
    first, _, clerk1 = await called_ticket(platform, "worker1", "clerk1")
    second, _, clerk2 = await called_ticket(platform, "worker2", "clerk2")
    expert1 = await platform.login("expert1")
    a = (await clerk1.post(f"/api/tickets/{first['id']}/consultations",
                           {"expert_ids": [expert1.user["id"]]})).body["invitations"][0]
    b = (await clerk2.post(f"/api/tickets/{second['id']}/consultations",
                           {"expert_ids": [expert1.user["id"]]})).body["invitations"][0]
    assert (await expert1.post(f"/api/invitations/{a['id']}/accept")).status == 200
    busy = await expert1.post(f"/api/invitations/{b['id']}/accept")
    assert (busy.status, busy.body["error"]["code"]) == (409, "expert_busy")

    await expert1.call("PATCH", "/api/experts/me", {"parallel_consultations": True})
    assert (await expert1.post(f"/api/invitations/{b['id']}/accept")).status == 200


async def test_opinions_are_recorded_on_the_case_and_audited(platform: Platform) -> None:
    ticket, worker, clerk = await called_ticket(platform)
    expert1, expert2 = await platform.login("expert1"), await platform.login("expert2")
    invitation = (await clerk.post(f"/api/tickets/{ticket['id']}/consultations",
                                   {"expert_ids": [expert1.user["id"]]})).body["invitations"][0]
    path = f"/api/tickets/{ticket['id']}/opinions"
    early = await expert1.post(path, {"text": "还没接受邀请"})
    assert early.status == 404
    await expert1.post(f"/api/invitations/{invitation['id']}/accept")
    platform.clock.advance(minutes=3)
    written = await expert1.post(path, {"text": "户籍迁入满一年即可申领，建议补充户口簿首页"})
    assert written.status == 201, written
    stranger = await expert2.post(path, {"text": "我也想说"})
    assert stranger.status == 404
    blank = await expert1.post(path, {"text": "   "})
    assert (blank.status, blank.body["error"]["code"]) == (422, "empty_opinion")
    endless = await expert1.post(path, {"text": "议" * 5001})
    assert (endless.status, endless.body["error"]["code"]) == (422, "opinion_too_long")
    by_worker = await worker.post(path, {"text": "x"})
    assert by_worker.status == 403

    timeline = (await expert1.get(f"/api/tickets/{ticket['id']}/consultations")).body
    assert timeline["opinions"][0]["text"].startswith("户籍迁入满一年")
    assert [e["kind"] for e in timeline["timeline"]] == ["invited", "accepted", "opinion"]
    assert (await worker.get(f"/api/tickets/{ticket['id']}/consultations")).code == "role_forbidden"

    auditor = await platform.login("auditor1")
    audit = (await auditor.get("/api/audit", target_type="ticket", target_id=str(ticket["id"]))).body
    actions = {e["action"] for e in audit}
    assert {"consultation.invite", "consultation.accept", "consultation.opinion"} <= actions


# --- presence ----------------------------------------------------------------------------------

CLIENT = """
import asyncio, sys, socketio
async def main():
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(sys.argv[1], auth={"token": sys.argv[2]}, transports=["websocket"])
    print("connected", flush=True)
    await asyncio.sleep(600)
asyncio.run(main())
"""


async def test_presence_follows_a_browser_that_is_killed_without_a_goodbye(platform: Platform) -> None:
    expert3 = await platform.login("expert3")
    presence = platform.app[PRESENCE]
    child = subprocess.Popen([sys.executable, "-c", CLIENT, platform.base, expert3.token],
                             stdout=subprocess.PIPE, text=True)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 15)  # type: ignore[union-attr]
        assert line.strip() == "connected"

        async def state_is(wanted: str) -> None:
            while presence.state(expert3.user["id"]) != wanted:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(state_is("online"), 5)
    finally:
        child.kill()
        child.wait()
    await asyncio.wait_for(state_is("offline"), 10)
    listed = next(e for e in (await (await platform.login("clerk1")).get("/api/experts")).body
                  if e["id"] == expert3.user["id"])
    assert listed["presence"] == "offline"
