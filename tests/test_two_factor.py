"""The second factor (TOTP, RFC 6238): enrolment, logging in with a code or a recovery code,
guessing and replay refused, the administrator's reset, and sessions that must enrol first."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from server import cli
from server.app import create_app
from server.config import Settings
from server.domain import two_factor
from server.domain.clock import ManualClock
from server.domain.errors import Conflict
from server.keys import DOMAIN
from server.models import User
from tests.conftest import Api, Platform, Reply

# RFC 6238 Appendix B: (time, SHA-1, SHA-256, SHA-512), eight digits, 30-second steps.
RFC_VECTORS = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]
RFC_SEEDS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}


@pytest.mark.parametrize(("at", "sha1", "sha256", "sha512"), RFC_VECTORS)
def test_codes_match_the_rfc_6238_test_vectors(at: int, sha1: str, sha256: str, sha512: str) -> None:
    for digest, expected in (("sha1", sha1), ("sha256", sha256), ("sha512", sha512)):
        assert two_factor.totp(RFC_SEEDS[digest], at, digits=8, digest=digest) == expected
    assert two_factor.totp(RFC_SEEDS["sha1"], at) == sha1[-6:]  # what the apps show: 6 digits


def test_a_sealed_secret_opens_only_for_its_account_and_with_its_key() -> None:
    keys = two_factor.Keys.derive("k" * 40)
    sealed = keys.seal(7, b"twenty-byte-secret!!")
    assert b"twenty" not in sealed.encode() and keys.open(7, sealed) == b"twenty-byte-secret!!"
    assert keys.seal(7, b"twenty-byte-secret!!") != sealed  # a fresh nonce every time
    with pytest.raises(Conflict):
        keys.open(8, sealed)
    with pytest.raises(Conflict):
        two_factor.Keys.derive("j" * 40).open(7, sealed)


# --- the story over HTTP ----------------------------------------------------------------------

def code(platform: Platform, secret: str, seconds_ahead: float = 0) -> str:
    return two_factor.totp(two_factor.secret_from_text(secret), platform.clock.now().timestamp() + seconds_ahead)


async def sign_in(platform: Platform, username: str, **second: str) -> Reply:
    return await platform.anonymous().post("/api/auth/login", {"username": username, "password": "demo12345", **second})


def as_api(platform: Platform, reply: Reply) -> Api:
    assert reply.status == 200, reply
    return Api(platform.http, platform.base, reply.body["token"], reply.body["user"])


async def enrol(platform: Platform, api: Api) -> tuple[str, list[str]]:
    """Enrol and confirm; returns the secret and the recovery codes. The clock then moves to
    the next step so the confirming code is not the one the next login needs."""
    started = await api.post("/api/auth/2fa/enrol")
    assert started.status == 200, started
    secret = started.body["secret"]
    confirmed = await api.post("/api/auth/2fa/confirm", {"otp": code(platform, secret)})
    assert confirmed.status == 200, confirmed
    platform.clock.advance(seconds=30)
    return secret, confirmed.body["recovery_codes"]


async def audit_actions(platform: Platform, action: str) -> list[dict[str, Any]]:
    auditor = await platform.login("auditor1")
    reply = await auditor.get("/api/audit", action=action)
    assert reply.status == 200, reply
    return list(reply.body)


async def test_an_enrolled_clerk_needs_the_code_from_the_app_to_log_in(platform: Platform) -> None:
    clerk = await platform.login("clerk1")
    assert clerk.user["two_factor"] == {"enrolled": False, "required": False, "available": True}
    started = await clerk.post("/api/auth/2fa/enrol")
    assert started.status == 200
    secret = started.body["secret"]
    assert started.body["otpauth_uri"].startswith("otpauth://totp/") and f"secret={secret}" in started.body["otpauth_uri"]
    assert started.body["qr_code"].startswith("data:image/svg+xml")
    wrong = await clerk.post("/api/auth/2fa/confirm", {"otp": "000000" if code(platform, secret) != "000000" else "111111"})
    assert wrong.status == 422 and wrong.code == "invalid_otp"
    assert (await sign_in(platform, "clerk1")).status == 200  # not in force before it is confirmed
    confirmed = await clerk.post("/api/auth/2fa/confirm", {"otp": code(platform, secret)})
    assert confirmed.status == 200 and len(set(confirmed.body["recovery_codes"])) == 10
    platform.clock.advance(seconds=30)

    # The secret is stored sealed and never handed out again.
    async with platform.app[DOMAIN].unit(write=False) as uow:
        row = await uow.session.get(User, clerk.user["id"])
        assert row is not None and row.totp_secret is not None and secret not in row.totp_secret
    again = await clerk.post("/api/auth/2fa/enrol")
    assert again.status == 409 and again.code == "2fa_already_enabled" and "secret" not in str(again.body)

    missing = await sign_in(platform, "clerk1")
    assert missing.status == 401 and missing.code == "otp_required"
    wrong_password = await sign_in(platform, "clerk1", password="not-the-password", otp=code(platform, secret))
    assert wrong_password.status == 401 and wrong_password.code == "invalid_credentials"
    logged_in = as_api(platform, await sign_in(platform, "clerk1", otp=code(platform, secret)))
    me = await logged_in.get("/api/me")
    assert me.body["two_factor"] == {"enrolled": True, "required": False, "available": True, "recovery_codes_left": 10}
    assert (await logged_in.get("/api/tickets")).status == 200


async def test_confirming_ends_the_other_sessions_opened_with_the_password_alone(platform: Platform) -> None:
    elsewhere = await platform.login("supervisor1")
    here = await platform.login("supervisor1")
    await enrol(platform, here)
    assert (await here.get("/api/dashboard")).status == 200
    ended = await elsewhere.get("/api/dashboard")
    assert ended.status == 401 and ended.body["error"]["detail"]["reason"] == "2fa_enabled"


async def test_wrong_codes_count_as_failed_logins_and_five_lock_the_account_here(platform: Platform) -> None:
    secret, _ = await enrol(platform, await platform.login("clerk1"))
    right = code(platform, secret)
    wrong = next(c for c in ("123456", "654321", "111111") if c not in {right, code(platform, secret, 30),
                                                                         code(platform, secret, -30)})
    for _ in range(5):
        reply = await sign_in(platform, "clerk1", otp=wrong)
        assert reply.status == 401 and reply.code == "invalid_otp"
    locked = await sign_in(platform, "clerk1", otp=right)
    assert locked.status == 429 and locked.code == "login_locked"
    failures = await audit_actions(platform, "auth.login_failed")
    assert sum(1 for f in failures if f["detail"]["reason"] == "second_factor_otp") == 5
    platform.clock.advance(minutes=6)
    assert (await sign_in(platform, "clerk1", otp=code(platform, secret))).status == 200


async def test_asking_again_and_again_without_a_code_is_counted_too(platform: Platform) -> None:
    await enrol(platform, await platform.login("clerk2"))
    for _ in range(5):
        assert (await sign_in(platform, "clerk2")).code == "otp_required"
    assert (await sign_in(platform, "clerk2")).status == 429


@pytest.fixture
async def tight(settings: Settings, clock: ManualClock) -> AsyncIterator[Platform]:
    """The platform with an address locked after three failures (a service centre's NAT)."""
    tightened = settings.with_changes(login=dataclasses.replace(settings.login, address_max_failures=3))
    server = TestServer(create_app(tightened, clock=clock, run_monitor=False))
    await server.start_server()
    async with ClientSession() as http:
        yield Platform(server, http, clock, server.app)
    await server.close()


async def test_being_asked_for_the_code_does_not_use_up_the_shared_address(tight: Platform) -> None:
    """Staff behind one address each log in in two steps (password, then code): only the
    account keeps the password-only attempt counted, not the address everyone shares."""
    secret, _ = await enrol(tight, await tight.login("clerk1"))
    for _ in range(5):
        assert (await sign_in(tight, "clerk1")).code == "otp_required"
        assert (await sign_in(tight, "clerk1", otp=code(tight, secret))).status == 200
        tight.clock.advance(seconds=30)
    assert (await sign_in(tight, "worker1")).status == 200


async def test_a_code_is_accepted_once(platform: Platform) -> None:
    secret, _ = await enrol(platform, await platform.login("clerk1"))
    used = code(platform, secret)
    assert (await sign_in(platform, "clerk1", otp=used)).status == 200
    replay = await sign_in(platform, "clerk1", otp=used)
    assert replay.status == 401 and replay.code == "invalid_otp"
    assert replay.body["error"]["detail"]["reason"] == "reused"
    # The previous step's code is older than the one used: refused as well.
    assert (await sign_in(platform, "clerk1", otp=code(platform, secret, -30))).code == "invalid_otp"
    platform.clock.advance(seconds=30)
    assert (await sign_in(platform, "clerk1", otp=code(platform, secret))).status == 200


async def test_a_phone_a_little_fast_or_slow_still_works(platform: Platform) -> None:
    secret, _ = await enrol(platform, await platform.login("admin"))
    assert (await sign_in(platform, "admin", otp=code(platform, secret, 30))).status == 200
    platform.clock.advance(seconds=90)
    assert (await sign_in(platform, "admin", otp=code(platform, secret, -30))).status == 200
    platform.clock.advance(seconds=90)
    assert (await sign_in(platform, "admin", otp=code(platform, secret, 60))).code == "invalid_otp"


async def test_a_recovery_code_works_once_and_its_use_is_audited(platform: Platform) -> None:
    _, codes = await enrol(platform, await platform.login("clerk3"))
    first = codes[0]
    recovered = as_api(platform, await sign_in(platform, "clerk3", recovery_code=first.lower().replace("-", " ")))
    assert recovered.user["two_factor"]["recovery_codes_left"] == 9
    again = await sign_in(platform, "clerk3", recovery_code=first)
    assert again.status == 401 and again.code == "invalid_recovery_code"
    used = await audit_actions(platform, "auth.recovery_code_used")
    assert [(u["actor"], u["detail"]["remaining"]) for u in used] == [("clerk3", 9)]
    assert (await sign_in(platform, "clerk3", recovery_code=codes[1])).status == 200


async def test_new_recovery_codes_replace_the_old_ones(platform: Platform) -> None:
    clerk = await platform.login("clerk1")
    secret, old = await enrol(platform, clerk)
    clerk = as_api(platform, await sign_in(platform, "clerk1", otp=code(platform, secret)))
    platform.clock.advance(seconds=30)
    wrong = await clerk.post("/api/auth/2fa/recovery-codes", {"otp": code(platform, secret, -30)})
    assert wrong.status == 422 and wrong.code == "invalid_otp"
    fresh = await clerk.post("/api/auth/2fa/recovery-codes", {"otp": code(platform, secret)})
    assert fresh.status == 200 and not set(fresh.body["recovery_codes"]) & set(old)
    assert (await sign_in(platform, "clerk1", recovery_code=old[0])).code == "invalid_recovery_code"
    assert (await sign_in(platform, "clerk1", recovery_code=fresh.body["recovery_codes"][0])).status == 200


async def test_the_owner_may_turn_it_off_with_a_code_or_the_password(platform: Platform) -> None:
    clerk = await platform.login("clerk1")
    secret, _ = await enrol(platform, clerk)
    clerk = as_api(platform, await sign_in(platform, "clerk1", otp=code(platform, secret)))
    refused = await clerk.call("DELETE", "/api/auth/2fa", json={"password": "not-my-password"})
    assert refused.status == 403 and refused.code == "wrong_password"
    both = await clerk.call("DELETE", "/api/auth/2fa", json={"password": "demo12345", "otp": "123456"})
    assert both.status == 422
    assert (await clerk.call("DELETE", "/api/auth/2fa", json={"password": "demo12345"})).status == 204
    assert (await sign_in(platform, "clerk1")).status == 200


async def test_an_admin_reset_clears_the_enrolment_and_ends_every_session(platform: Platform) -> None:
    clerk = await platform.login("clerk1")
    secret, codes = await enrol(platform, clerk)
    clerk = as_api(platform, await sign_in(platform, "clerk1", otp=code(platform, secret)))
    supervisor = await platform.login("supervisor1")
    assert (await supervisor.post(f"/api/users/{clerk.user['id']}/2fa/reset")).code == "role_forbidden"
    admin = await platform.login("admin")
    reset = await admin.post(f"/api/users/{clerk.user['id']}/2fa/reset")
    assert reset.status == 200 and reset.body["two_factor"]["enrolled"] is False
    ended = await clerk.get("/api/me")
    assert ended.status == 401 and ended.code == "session_revoked"
    assert ended.body["error"]["detail"]["reason"] == "2fa_reset"
    again = as_api(platform, await sign_in(platform, "clerk1"))  # the password alone, until enrolled again
    assert again.user["two_factor"]["enrolled"] is False
    assert (await sign_in(platform, "clerk1", recovery_code=codes[0])).status == 200  # codes ignored: none needed
    assert (await audit_actions(platform, "auth.2fa_reset"))[0]["detail"]["was_enrolled"] is True
    assert (await admin.post("/api/users/999999/2fa/reset")).code == "user_not_found"


async def test_the_last_administrator_locked_out_is_reset_from_the_command_line(
        platform: Platform, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = await platform.login("admin")
    await enrol(platform, admin)
    assert (await sign_in(platform, "admin")).code == "otp_required"
    monkeypatch.setenv("YUNBANG_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("YUNBANG_DATA_DIR", str(settings.data_dir))
    assert await asyncio.to_thread(cli.main, ["reset-2fa", "--username", "nobody"]) == 1
    assert await asyncio.to_thread(cli.main, ["reset-2fa", "--username", "admin"]) == 0
    assert (await admin.get("/api/me")).code == "session_revoked"
    assert (await sign_in(platform, "admin")).status == 200


async def test_workers_and_experts_have_no_second_factor_to_enrol(platform: Platform) -> None:
    for name in ("worker1", "expert1"):
        api = await platform.login(name)
        assert api.user["two_factor"]["available"] is False
        assert (await api.post("/api/auth/2fa/enrol")).code == "role_forbidden"


# --- YUNBANG_REQUIRE_2FA -----------------------------------------------------------------------

@pytest.fixture
async def strict(settings: Settings, clock: ManualClock) -> AsyncIterator[Platform]:
    """The platform with ``YUNBANG_REQUIRE_2FA=true``."""
    required = settings.with_changes(login=dataclasses.replace(settings.login, require_two_factor=True))
    assert Settings.from_env({"YUNBANG_REQUIRE_2FA": "true"}).login.require_two_factor
    server = TestServer(create_app(required, clock=clock, run_monitor=False))
    await server.start_server()
    async with ClientSession() as http:
        yield Platform(server, http, clock, server.app)
    await server.close()


async def connects(platform: Platform, api: Api) -> bool:
    client = socketio.AsyncClient(reconnection=False)
    try:
        await client.connect(platform.base, auth={"token": api.token}, transports=["websocket"], wait_timeout=5)
    except socketio.exceptions.ConnectionError:
        return False
    await client.disconnect()
    return True


async def test_with_2fa_required_a_clerk_who_has_not_enrolled_may_only_enrol(strict: Platform) -> None:
    clerk = await strict.login("clerk1")
    assert clerk.user["two_factor"] == {"enrolled": False, "required": True, "available": True}
    blocked = await clerk.get("/api/tickets")
    assert blocked.status == 403 and blocked.code == "2fa_enrolment_required"
    assert (await clerk.post("/api/auth/password", {"current_password": "demo12345", "new_password": "x" * 12})
            ).code == "2fa_enrolment_required"
    assert (await clerk.get("/api/me")).status == 200
    assert not await connects(strict, clerk)
    off = await clerk.call("DELETE", "/api/auth/2fa", json={"password": "demo12345"})
    assert off.code == "2fa_enrolment_required"

    started = await clerk.post("/api/auth/2fa/enrol")
    assert started.status == 200
    confirmed = await clerk.post("/api/auth/2fa/confirm", {"otp": code(strict, started.body["secret"])})
    assert confirmed.status == 200
    assert (await clerk.get("/api/tickets")).status == 200  # the same token, now a full session
    assert await connects(strict, clerk)
    still = await clerk.call("DELETE", "/api/auth/2fa", json={"password": "demo12345"})
    assert still.status == 409 and still.code == "2fa_required"
    assert (await clerk.post("/api/auth/logout")).status == 204


async def test_with_2fa_required_workers_and_experts_are_not_affected(strict: Platform) -> None:
    worker = await strict.login("worker1")
    expert = await strict.login("expert1")
    assert worker.user["two_factor"]["required"] is False
    assert (await worker.get("/api/tickets")).status == 200
    assert (await expert.get("/api/invitations")).status == 200
    assert await connects(strict, worker)


async def test_with_2fa_required_a_restricted_session_can_still_log_out(strict: Platform) -> None:
    auditor = await strict.login("auditor1")
    assert (await auditor.get("/api/audit")).code == "2fa_enrolment_required"
    assert (await auditor.post("/api/auth/logout")).status == 204
    assert (await auditor.get("/api/me")).code == "session_revoked"
