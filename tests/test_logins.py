"""Logging in under attack, and tokens that end: counting that holds under concurrency on both
databases, limits per address and per account-from-address that do not lock an owner out of
their own office, the hash computed outside every transaction, and sessions revoked at once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC
from typing import Any

import pytest
import socketio
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from server.app import create_app
from server.config import LoginPolicy, Settings
from server.domain import logins
from server.keys import DB
from server.models import LoginThrottle
from tests.conftest import Api, Platform, Reply


@pytest.fixture
async def proxied(settings: Settings, clock) -> AsyncIterator[Platform]:
    """The app behind a trusted reverse proxy, so each request can come from an address of its own."""
    app = create_app(settings.with_changes(trusted_proxies=("127.0.0.0/8",)), clock=clock, run_monitor=False)
    server = TestServer(app)
    await server.start_server()
    async with ClientSession() as http:
        yield Platform(server, http, clock, app)
    await server.close()


async def login_from(platform: Platform, address: str, username: str, password: str = "demo12345") -> Reply:
    return await platform.anonymous().call("POST", "/api/auth/login", json={"username": username, "password": password},
                                           headers_extra={"X-Forwarded-For": address})


async def throttle_keys(platform: Platform) -> list[str]:
    async with platform.app[DB].read() as s:
        return list((await s.scalars(select(LoginThrottle.key).order_by(LoginThrottle.key))).all())


async def test_thirty_concurrent_wrong_passwords_let_five_through_and_lock_the_pair(proxied: Platform) -> None:
    replies = await asyncio.gather(*(login_from(proxied, "10.0.0.66", "clerk1", "wrong-password") for _ in range(30)))
    statuses = Counter(r.status for r in replies)
    assert statuses == {401: 5, 429: 25}, statuses
    assert all(r.code == "login_locked" for r in replies if r.status == 429)
    right = await login_from(proxied, "10.0.0.66", "clerk1")
    assert right.status == 429 and right.code == "login_locked", "the right password waits out the lock too"
    proxied.clock.advance(minutes=6)
    assert (await login_from(proxied, "10.0.0.66", "clerk1")).status == 200


async def test_concurrent_guesses_of_an_unknown_name_are_refused_cleanly_and_add_no_rows(proxied: Platform) -> None:
    replies = await asyncio.gather(*(login_from(proxied, "10.0.0.67", "nobody-here", "x") for _ in range(20)))
    assert {r.status for r in replies} == {401}, [r.body for r in replies if r.status != 401]
    assert await throttle_keys(proxied) == ["ip:10.0.0.67"], "unknown names leave one row: the address's"


async def test_an_attacker_cannot_lock_the_owner_out_from_their_own_address(proxied: Platform) -> None:
    assert (await login_from(proxied, "10.1.1.1", "clerk1")).status == 200  # the owner's office
    for _ in range(5):
        assert (await login_from(proxied, "198.51.100.9", "clerk1", "guess")).status == 401
    attacker = await login_from(proxied, "198.51.100.9", "clerk1")
    assert attacker.status == 429 and attacker.body["error"]["detail"]["scope"] == "pair"
    owner = await login_from(proxied, "10.1.1.1", "clerk1")
    assert owner.status == 200, "the lock holds the attacker's address, not the account"


async def test_one_address_cannot_try_unlimited_usernames(proxied: Platform, settings: Settings) -> None:
    limit = LoginPolicy().address_max_failures
    names = [f"user{i}" for i in range(limit)] + ["clerk2"]
    for name in names[:limit]:
        assert (await login_from(proxied, "192.0.2.50", name, "guess")).status == 401
    refused = await login_from(proxied, "192.0.2.50", "clerk2")
    assert refused.status == 429 and refused.body["error"]["detail"]["scope"] == "address"
    assert refused.body["error"]["detail"]["retry_after"] > 0
    assert (await login_from(proxied, "192.0.2.51", "clerk2")).status == 200, "another address is not affected"


async def test_an_account_guessed_from_many_addresses_slows_strangers_not_its_owner(proxied: Platform) -> None:
    assert (await login_from(proxied, "10.2.2.2", "clerk3")).status == 200  # known address
    after = LoginPolicy().account_slowdown_after
    for i in range(after + 1):
        assert (await login_from(proxied, f"203.0.113.{i + 1}", "clerk3", "guess")).status == 401
    stranger = await login_from(proxied, "203.0.113.200", "clerk3", "guess")
    assert stranger.status == 429 and stranger.body["error"]["detail"]["scope"] == "account"
    assert (await login_from(proxied, "10.2.2.2", "clerk3")).status == 200, "the owner's known address logs in"
    proxied.clock.advance(seconds=LoginPolicy().account_max_delay_seconds + 1)
    assert (await login_from(proxied, "203.0.113.201", "clerk3")).status == 200, "the delay runs out"


async def test_the_password_hash_runs_outside_the_write_lock(platform: Platform, monkeypatch) -> None:
    """On SQLite every writer waits for the one write lock: a hash inside it stalled all writes."""
    lock = platform.app[DB]._write_lock
    if lock is None:
        pytest.skip("PostgreSQL has no process-wide write lock")
    writable_while_hashing: list[bool] = []
    real = logins.verify_password

    async def watched(hash_: str | None, password: str) -> bool:
        # Another login's short transaction may hold the lock for a moment; a hash run inside a
        # transaction would hold it until the hash is done, and this would never get it.
        try:
            await asyncio.wait_for(lock.acquire(), timeout=5)
        except TimeoutError:
            writable_while_hashing.append(False)
        else:
            lock.release()
            writable_while_hashing.append(True)
        return await real(hash_, password)

    monkeypatch.setattr(logins, "verify_password", watched)
    replies = await asyncio.gather(*(platform.anonymous().post("/api/auth/login", {"username": "worker1", "password": p})
                                     for p in ("wrong-1", "wrong-2", "demo12345")))
    assert sorted(r.status for r in replies) == [200, 401, 401]
    assert writable_while_hashing == [True, True, True]


async def test_logout_ends_the_token_at_once(platform: Platform) -> None:
    clerk = await platform.login("clerk1")
    other = await platform.login("clerk1")  # another device of the same person
    assert (await clerk.post("/api/auth/logout")).status == 204
    gone = await clerk.get("/api/me")
    assert gone.status == 401 and gone.code == "session_revoked"
    assert (await other.get("/api/me")).status == 200, "logout ends this session only"


async def listen(platform: Platform, api: Api) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(platform.base, auth={"token": api.token}, transports=["websocket"], wait_timeout=5)
    return client


async def wait_disconnected(client: socketio.AsyncClient) -> None:
    for _ in range(100):
        if not client.connected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the socket stayed connected")


@pytest.mark.parametrize("change", ["password", "role", "disable"])
async def test_an_account_change_revokes_every_token_and_disconnects_its_sockets(platform: Platform, change: str) -> None:
    admin = await platform.login("admin")
    clerk = await platform.login("clerk2")
    second = await platform.login("clerk2")
    revoked: list[Any] = []
    socket = await listen(platform, clerk)
    socket.on("session.revoked", revoked.append)
    body = {"password": {"password": "new-password-123"}, "role": {"role": "expert"},
            "disable": {"active": False}}[change]
    reply = await admin.call("PATCH", f"/api/users/{clerk.user['id']}", json=body)
    assert reply.status == 200, reply
    for api in (clerk, second):
        refused = await api.get("/api/me")
        assert refused.status == 401 and refused.code == "session_revoked"
    await wait_disconnected(socket)
    assert revoked and revoked[0]["reason"] == {"password": "password", "role": "role", "disable": "disabled"}[change]
    with pytest.raises(socketio.exceptions.ConnectionError):
        await listen(platform, clerk)


async def test_changing_ones_own_password_needs_the_current_one_and_returns_a_new_token(platform: Platform) -> None:
    worker = await platform.login("worker3")
    wrong = await worker.post("/api/auth/password", {"current_password": "not-it", "new_password": "another-pass-1"})
    assert wrong.status == 403 and wrong.code == "wrong_password"
    changed = await worker.post("/api/auth/password", {"current_password": "demo12345", "new_password": "another-pass-1"})
    assert changed.status == 200 and changed.body["token"] != worker.token
    assert (await worker.get("/api/me")).code == "session_revoked"
    fresh = Api(platform.http, platform.base, changed.body["token"])
    assert (await fresh.get("/api/me")).status == 200
    assert (await platform.anonymous().post("/api/auth/login", {"username": "worker3", "password": "demo12345"})).status == 401
    assert (await platform.login("worker3", "another-pass-1")).token


async def test_a_revoked_socket_session_cannot_act_even_before_it_is_disconnected(platform: Platform) -> None:
    """Every socket event checks the session again: a revocation on another node is enforced too."""
    worker = await platform.login("worker1")
    socket = await listen(platform, worker)
    try:
        assert (await socket.call("ping_app", {}, timeout=5))["ok"] is True
        async with platform.app[DB].write() as s:  # as another node would: the row only
            from datetime import datetime

            from server.models import AuthSession
            row = (await s.scalars(select(AuthSession).where(AuthSession.user_id == worker.user["id"]))).first()
            row.revoked_at = datetime.now(UTC)
        ack = await socket.call("refresh", {}, timeout=5)
        assert ack["error"]["code"] == "session_revoked"
        await wait_disconnected(socket)
    finally:
        await socket.disconnect()
