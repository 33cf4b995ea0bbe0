"""登录 — password checks, throttling of guessing, sessions and their revocation.

A login is three steps so that no transaction is open while a password hash is computed
(argon2 takes tens of milliseconds; on SQLite the write lock would stall every writer):

1. ``begin_attempt`` (a short write): refuse a locked address, account-from-address pair or a
   slowed-down account, then *count the attempt before the password is checked*, in one atomic
   upsert per counter, so parallel guesses cannot all get through;
2. the caller verifies the password outside any transaction (``verify_password``);
3. ``finish_attempt`` (a short write): on success the pair's counter is cleared, the address
   and account counters are given the attempt back, the address becomes known to the account
   and a session is opened; on failure the attempt stays counted. Both are audited.

Counters (``login_throttle``): ``ip:<address>`` for every attempt, ``pair:<user>:<address>`` and
``acct:<user>`` only for existing accounts, so guessing unknown names adds no rows but still
counts against the address. The policy is ``config.LoginPolicy``.

A token names a session (``auth_sessions``); revoking sessions — logout, a password change, a
role change, disabling the account — ends those tokens at once on every node.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import and_, case, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from server.domain import audit
from server.domain.context import Actor, Uow
from server.domain.errors import TooManyAttempts, Unauthorized
from server.events import Audience
from server.models import AuthSession, KnownAddress, LoginThrottle, Role, User

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("timing-equaliser")
KNOWN_ADDRESS_DAYS = 90


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(hash_: str | None, password: str) -> bool:
    """Runs in a thread; an unknown account is checked against a dummy hash (same time)."""

    def check() -> bool:
        try:
            return _hasher.verify(hash_ or _DUMMY_HASH, password) and hash_ is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


@dataclass(frozen=True)
class Attempt:
    """What the first step learned: who is trying, from where, and the hash to check."""

    username: str
    ip: str
    user_id: int | None
    password_hash: str | None
    active: bool
    known_address: bool


def _locked(seconds: float, why: str) -> TooManyAttempts:
    wait = max(1, int(seconds) + 1)
    messages = {
        "pair": f"登录失败次数过多，请 {wait} 秒后再试",
        "address": f"该网络地址登录失败次数过多，请 {wait} 秒后再试",
        "account": f"该账号正被频繁尝试登录，请 {wait} 秒后再试（常用地址不受影响）",
    }
    return TooManyAttempts("login_locked", messages[why], retry_after=wait, scope=why)


async def begin_attempt(uow: Uow, username: str, ip: str) -> Attempt:
    """Step 1: refuse while locked, else count this attempt (atomically) and return it."""
    policy, now = uow.login, uow.clock.now()
    row = (await uow.session.execute(
        select(User.id, User.password_hash, User.active).where(User.username == username)
    )).first()
    user_id = row.id if row is not None else None
    keys = {"address": f"ip:{ip}"}
    if user_id is not None:
        keys |= {"pair": f"pair:{user_id}:{ip}", "account": f"acct:{user_id}"}
    current = {r.key: r for r in (await uow.session.scalars(
        select(LoginThrottle).where(LoginThrottle.key.in_(keys.values()))
    )).all()}
    known = user_id is not None and await uow.session.get(KnownAddress, (user_id, ip)) is not None
    for why in ("address", "pair"):
        held = current.get(keys.get(why, ""))
        if held is not None and held.locked_until is not None and held.locked_until > now:
            raise _locked((held.locked_until - now).total_seconds(), why)
    account = current.get(keys.get("account", ""))
    if account is not None and not known and account.locked_until is not None and account.locked_until > now:
        raise _locked((account.locked_until - now).total_seconds(), "account")

    counted = {why: await _count(uow, key, now, policy.max_failures if why == "pair" else
                                 policy.address_max_failures if why == "address" else None)
               for why, key in keys.items()}
    for why in ("address", "pair"):
        if why in counted and counted[why][0] > (policy.max_failures if why == "pair" else policy.address_max_failures):
            until = counted[why][1]
            raise _locked((until - now).total_seconds() if until else policy.lockout_seconds, why)
    if "account" in counted and counted["account"][0] > policy.account_slowdown_after and not known:
        delay = min(policy.account_max_delay_seconds,
                    2.0 ** min(20, counted["account"][0] - policy.account_slowdown_after))
        await uow.session.execute(
            update(LoginThrottle).where(LoginThrottle.key == keys["account"]).values(locked_until=now + timedelta(seconds=delay))
        )
    return Attempt(username, ip, user_id, row.password_hash if row is not None else None,
                   bool(row.active) if row is not None else False, known)


async def _count(uow: Uow, key: str, now: datetime, lock_at: int | None) -> tuple[int, datetime | None]:
    """One atomic upsert: +1 within the window (a new window after it, or after a lock ran
    out); the attempt that reaches ``lock_at`` locks the key for the lockout. Returns the count
    and the lock's end."""
    policy = uow.login
    cutoff = now - timedelta(seconds=policy.window_seconds)
    lock_end = now + timedelta(seconds=policy.lockout_seconds)
    t = LoginThrottle
    restart = ((t.locked_until.is_not(None)) & (t.locked_until <= now)) | (
        t.locked_until.is_(None) & (t.window_started_at < cutoff))
    if lock_at is None:
        new_lock: Any = case((restart, None), else_=t.locked_until)
    else:
        new_lock = case(
            (restart, lock_end if lock_at <= 1 else None),
            (and_(t.locked_until.is_(None), t.failures + 1 >= lock_at), lock_end),
            else_=t.locked_until,
        )
    insert = pg_insert if uow.dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(t)
        .values(key=key, failures=1, window_started_at=now, last_failure_at=now,
                locked_until=lock_end if lock_at is not None and lock_at <= 1 else None)
        .on_conflict_do_update(index_elements=["key"], set_={
            "failures": case((restart, 1), else_=t.failures + 1),
            "window_started_at": case((restart, now), else_=t.window_started_at),
            "last_failure_at": now,
            "locked_until": new_lock,
        })
        .returning(t.failures, t.locked_until)
    )
    failures, until = (await uow.session.execute(stmt)).one()
    return int(failures), until


async def finish_attempt(uow: Uow, attempt: Attempt, ok: bool) -> User:
    """Step 3: a wrong password stays counted (and audited); a right one clears the counters
    it may, remembers the address and returns the user (then ``open_session``)."""
    user = await uow.session.get(User, attempt.user_id) if attempt.user_id is not None else None
    if not ok or user is None or not user.active:
        audit.record(uow, Actor(0, attempt.username[:50], Role.worker, ip=attempt.ip), "auth.login_failed",
                     "user", user.id if user else "", reason="disabled" if ok and user is not None else "password")
        error = Unauthorized("invalid_credentials", "用户名或密码错误")
        error.keep_changes = True
        raise error
    now = uow.clock.now()
    # In begin_attempt's order (address, pair, account): a login finishing and another one
    # starting for the same account and address must not wait for each other in a circle.
    await _give_back(uow, f"ip:{attempt.ip}", uow.login.address_max_failures)
    await uow.session.execute(delete(LoginThrottle).where(LoginThrottle.key == f"pair:{user.id}:{attempt.ip}"))
    await _give_back(uow, f"acct:{user.id}", None)
    insert = pg_insert if uow.dialect == "postgresql" else sqlite_insert
    await uow.session.execute(
        insert(KnownAddress).values(user_id=user.id, ip=attempt.ip, last_success_at=now)
        .on_conflict_do_update(index_elements=["user_id", "ip"], set_={"last_success_at": now})
    )
    return user


async def _give_back(uow: Uow, key: str, lock_at: int | None) -> None:
    """A counted attempt that turned out right is taken off the counter (and a lock it set, if
    the counter falls back below ``lock_at``, lifted)."""
    t = LoginThrottle
    locked = case((t.failures - 1 < lock_at, None), else_=t.locked_until) if lock_at else t.locked_until
    await uow.session.execute(
        update(t).where(t.key == key, t.failures > 0).values(failures=t.failures - 1, locked_until=locked))


WRONG_CODE = "验证码不正确，请输入验证器上当前显示的 6 位数字"
REUSED_CODE = "该验证码已经用过，请等验证器显示新的验证码"


async def refuse_second_factor(uow: Uow, attempt: Attempt, why: str, *, reused: bool = False) -> Unauthorized:
    """The password was right but the second factor (``two_factor``) was missing (``missing``)
    or wrong (``otp``, ``recovery_code``): the attempt stays counted against the account from
    this address and the account, so codes cannot be guessed faster than passwords, and a
    password-only attempt never clears the counters between guesses. Only the address's
    counter gets a missing code's attempt back (as for any right password), so many staff
    behind one NAT address who are asked for their code do not lock that address. Answering
    ``otp_required`` tells that the password was right; that is why it stays counted."""
    audit.record(uow, Actor(attempt.user_id or 0, attempt.username[:50], Role.worker, ip=attempt.ip),
                 "auth.login_failed", "user", attempt.user_id or "", reason=f"second_factor_{why}")
    if why == "missing":
        await _give_back(uow, f"ip:{attempt.ip}", uow.login.address_max_failures)
        error = Unauthorized("otp_required", "请输入手机验证器上的 6 位验证码（或一个备用码）")
    elif why == "recovery_code":
        error = Unauthorized("invalid_recovery_code", "备用码不正确或已用过")
    else:
        error = Unauthorized("invalid_otp", REUSED_CODE if reused else WRONG_CODE,
                             reason="reused" if reused else "wrong")
    error.keep_changes = True
    return error


async def open_session(uow: Uow, user: User, ip: str) -> AuthSession:
    now = uow.clock.now()
    session = AuthSession(id=secrets.token_urlsafe(32), user_id=user.id, created_at=now,
                          expires_at=now + timedelta(hours=uow.login.token_ttl_hours), ip=ip[:64])
    uow.session.add(session)
    await uow.session.flush()
    audit.record(uow, Actor(user.id, user.username, user.role, ip=ip, session_id=session.id), "auth.login", "user",
                 user.id)
    return session


async def check_session(uow: Uow, user_id: int, session_id: str) -> None:
    """A token is good while its session is neither revoked nor someone else's."""
    row = await uow.session.get(AuthSession, session_id) if session_id else None
    if row is None or row.user_id != user_id:
        raise Unauthorized("invalid_token", "登录凭证无效，请重新登录")
    if row.revoked_at is not None:
        raise Unauthorized("session_revoked", "登录已失效（已退出、改密或账号变更），请重新登录",
                           reason=row.revoked_reason)


async def logout(uow: Uow, actor: Actor) -> None:
    """退出登录 — this session's token stops working everywhere at once."""
    now = uow.clock.now()
    await uow.session.execute(
        update(AuthSession).where(AuthSession.id == actor.session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason="logout")
    )
    audit.record(uow, actor, "auth.logout", "user", actor.user_id)
    uow.emit("session.revoked", {"user_id": actor.user_id, "session_ids": [actor.session_id], "reason": "logout"},
             Audience(users=(actor.user_id,)))


async def revoke_all(uow: Uow, user_id: int, reason: str, *, keep: str | None = None) -> int:
    """Every session of the account ends (password, role or binding changed, account disabled)
    but ``keep`` (the one that asked, if any); its open sockets are disconnected by whoever
    listens to ``session.revoked``."""
    now = uow.clock.now()
    ids = list((await uow.session.scalars(
        select(AuthSession.id).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None),
                                     AuthSession.id != (keep or ""))
    )).all())
    if ids:
        await uow.session.execute(
            update(AuthSession).where(AuthSession.id.in_(ids)).values(revoked_at=now, revoked_reason=reason)
        )
    uow.emit("session.revoked", {"user_id": user_id, "session_ids": ids, "reason": reason},
             Audience(users=(user_id,)))
    return len(ids)


async def sweep(uow: Uow) -> int:
    """Forget counters whose window has passed and that hold no lock, sessions long expired,
    and addresses not used for a long time: none of these tables grows without bound."""
    now, policy = uow.clock.now(), uow.login
    t = LoginThrottle
    cutoff = now - timedelta(seconds=policy.window_seconds)
    gone = 0
    for stmt in (
        delete(t).where(t.last_failure_at < cutoff, (t.locked_until.is_(None)) | (t.locked_until < now)),
        delete(AuthSession).where(AuthSession.expires_at < now - timedelta(days=1)),
        delete(KnownAddress).where(KnownAddress.last_success_at < now - timedelta(days=KNOWN_ADDRESS_DAYS)),
    ):
        gone += await uow.changed(stmt)
    return gone
