"""Who may do what: authentication, roles, ownership, and bad input that changes nothing."""

from __future__ import annotations

from tests.conftest import Platform
from tests.helpers import district_item, take, window_of


async def test_requests_without_or_with_a_bad_token_are_refused(platform: Platform) -> None:
    anon = platform.anonymous()
    reply = await anon.get("/api/tickets")
    assert reply.status == 401 and reply.code == "auth_required"
    anon.token = "not-a-token"
    reply = await anon.get("/api/me")
    assert reply.status == 401 and reply.code == "invalid_token"


async def test_wrong_password_is_refused_and_repeated_failures_lock_the_account(platform: Platform) -> None:
    anon = platform.anonymous()
    for _ in range(4):
        reply = await anon.post("/api/auth/login", {"username": "clerk1", "password": "wrong-password"})
        assert reply.status == 401 and reply.code == "invalid_credentials"
    fifth = await anon.post("/api/auth/login", {"username": "clerk1", "password": "wrong-password"})
    assert fifth.status == 401
    locked = await anon.post("/api/auth/login", {"username": "clerk1", "password": "demo12345"})
    assert locked.status == 429 and locked.code == "login_locked"
    platform.clock.advance(minutes=6)
    assert (await platform.login("clerk1")).token


async def test_disabled_account_token_stops_working(platform: Platform) -> None:
    admin = await platform.login("admin")
    worker = await platform.login("worker2")
    disabled = await admin.call("PATCH", f"/api/users/{worker.user['id']}", json={"active": False})
    assert disabled.status == 200 and disabled.body["active"] is False
    reply = await worker.get("/api/me")
    assert reply.status == 401 and reply.code == "session_revoked"
    assert reply.body["error"]["detail"]["reason"] == "disabled"


async def test_a_worker_sees_only_tickets_of_their_own_extension_point(platform: Platform) -> None:
    worker1 = await platform.login("worker1")
    worker2 = await platform.login("worker2")
    ticket = await take(worker1, (await district_item(worker1, "MZ"))["id"], "李大爷")
    reply = await worker2.get(f"/api/tickets/{ticket['id']}")
    assert reply.status == 404 and reply.code == "ticket_not_found"
    assert (await worker2.get("/api/tickets")).body == []
    cancel = await worker2.post(f"/api/tickets/{ticket['id']}/cancel", {})
    assert cancel.status == 404
    rate = await worker2.post(f"/api/tickets/{ticket['id']}/rating", {"score": 1})
    assert rate.status == 404
    assert (await worker1.get(f"/api/tickets/{ticket['id']}")).status == 200


async def test_a_clerk_acts_only_at_their_own_window_and_on_its_tickets(platform: Platform) -> None:
    worker = await platform.login("worker1")
    clerk1 = await platform.login("clerk1")
    clerk2 = await platform.login("clerk2")
    ticket = await take(worker, (await district_item(worker, "MZ"))["id"], "王大妈")
    foreign = await clerk2.post(f"/api/windows/{window_of(clerk1)}/call-next")
    assert foreign.status == 403 and foreign.code == "not_your_window"
    await clerk1.post(f"/api/windows/{window_of(clerk1)}/call-next")
    for action in ("start", "recall", "complete", "cancel"):
        reply = await clerk2.post(f"/api/tickets/{ticket['id']}/{action}", {})
        assert reply.status in (403, 404), (action, reply)
    assert (await clerk1.get(f"/api/tickets/{ticket['id']}")).body["status"] == "called"


async def test_roles_are_checked_on_every_endpoint(platform: Platform) -> None:
    worker = await platform.login("worker1")
    clerk = await platform.login("clerk1")
    expert = await platform.login("expert1")
    supervisor = await platform.login("supervisor1")
    item = await district_item(worker, "MZ")
    assert (await clerk.post("/api/tickets", {"item_id": item["id"], "resident": {"name": "x"}})).code == "role_forbidden"
    assert (await worker.post(f"/api/windows/{window_of(clerk)}/call-next")).code == "role_forbidden"
    assert (await worker.get("/api/dashboard")).code == "role_forbidden"
    assert (await clerk.get("/api/dashboard")).code == "role_forbidden"
    assert (await expert.get("/api/tickets")).code == "role_forbidden"
    assert (await supervisor.get("/api/audit")).code == "role_forbidden"
    assert (await supervisor.get("/api/users")).code == "role_forbidden"
    assert (await clerk.post("/api/tidal-windows", {"department_id": 1, "clerk_id": clerk.user["id"]})).status == 403
    assert (await supervisor.get("/api/dashboard")).status == 200


async def test_bad_input_gets_a_stable_code_and_changes_nothing(platform: Platform) -> None:
    worker = await platform.login("worker1")
    item = await district_item(worker, "MZ")
    malformed = await worker.call("POST", "/api/tickets", data=b"{not json",)
    assert malformed.status == 400 and malformed.code == "malformed_json"
    invalid = await worker.post("/api/tickets", {"item_id": item["id"], "resident": {"name": ""}})
    assert invalid.status == 422 and invalid.code == "invalid_input"
    bad_id = await worker.post("/api/tickets", {"item_id": item["id"], "resident": {"name": "a", "id_number": "123"}})
    assert bad_id.status == 422
    extra = await worker.post("/api/tickets", {"item_id": item["id"], "resident": {"name": "a"}, "status": "called"})
    assert extra.status == 422
    unknown = await worker.post("/api/tickets", {"item_id": 999999, "resident": {"name": "a"}})
    assert unknown.status == 404 and unknown.code == "item_not_found"
    bad_priority = await worker.post("/api/tickets", {"item_id": item["id"], "resident": {"name": "a"}, "priority": "vip"})
    assert bad_priority.status == 422
    assert (await worker.get("/api/tickets")).body == []
    assert (await worker.get("/api/tickets/abc")).code == "invalid_input"
    assert (await worker.get("/api/tickets", status="bogus")).code == "invalid_input"
    assert (await worker.get("/api/nowhere")).code == "not_found"
    big = await worker.call("POST", "/api/tickets", data=b"{" + b" " * (70 * 1024) + b"}")
    assert big.status == 400 and big.code == "body_too_large"


async def test_rating_is_only_for_completed_tickets_and_in_range(platform: Platform) -> None:
    worker = await platform.login("worker1")
    ticket = await take(worker, (await district_item(worker, "MZ"))["id"], "褚四")
    early = await worker.post(f"/api/tickets/{ticket['id']}/rating", {"score": 5})
    assert early.status == 409 and early.code == "not_completed"
    out_of_range = await worker.post(f"/api/tickets/{ticket['id']}/rating", {"score": 6})
    assert out_of_range.status == 422
