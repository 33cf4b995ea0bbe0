"""The domain's runtime: a unit of work per call, events published after commit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cached_property

from sqlalchemy.exc import SQLAlchemyError

from server.config import Settings
from server.crypto import LazySealer
from server.db import Database
from server.domain import accounts, audit, logins, network, reports, residents, two_factor
from server.domain.clock import Clock
from server.domain.context import Actor, Uow
from server.domain.errors import Forbidden, Unauthorized
from server.events import EventSink
from server.models import AuthSession, Role, User

log = logging.getLogger("yunbang.domain")


class Domain:
    def __init__(self, db: Database, clock: Clock, settings: Settings, sink: EventSink) -> None:
        self.db, self.clock, self.settings, self.sink = db, clock, settings, sink
        self.sealer = LazySealer(settings.resolved_data_key)
        # One password hash at a time per node: argon2 is made to be costly, and a login flood
        # hashing in parallel starved the event loop and every other write (bench/login.py).
        self._hashing = asyncio.Semaphore(1)

    @asynccontextmanager
    async def unit(self, *, write: bool = True) -> AsyncIterator[Uow]:
        """One transaction. Its events reach the sink only once it has committed."""
        ctx = self.db.write() if write else self.db.read()
        async with ctx as session:
            uow = Uow(
                session=session,
                clock=self.clock,
                rules=self.settings.queue,
                dialect=self.db.dialect,
                login=self.settings.login,
                documents=self.settings.documents,
                consultations=self.settings.consultations,
                notify=self.settings.notify,
                sealer=self.sealer,
                link_origin=self.settings.link_origin,
            )
            yield uow
        if uow.events:
            await self.sink.publish(uow.events)

    @cached_property
    def two_factor_keys(self) -> two_factor.Keys:
        """Keys for the second factor, derived from the secret key when first needed."""
        return two_factor.Keys.derive(self.settings.resolved_secret_key())

    async def actor(self, user_id: int, ip: str = "", session_id: str | None = None, *,
                    enrolment_ok: bool = False) -> Actor:
        """Who acts: the token's session must still be open (``session_id``), the account active;
        a session that must first enrol a second factor only where ``enrolment_ok``."""
        async with self.unit(write=False) as uow:
            return await accounts.load_actor(uow, user_id, ip=ip, session_id=session_id, enrolment_ok=enrolment_ok)

    async def _verify(self, password_hash: str | None, password: str) -> bool:
        async with self._hashing:
            return await logins.verify_password(password_hash, password)

    async def sweep_logins(self) -> int:
        async with self.unit() as uow:
            return await logins.sweep(uow)

    async def roll_reports(self) -> int:
        """统计报表: roll up the settled days that lack rollups (docs/reports.md, "Rollups")."""
        async with self.unit() as uow:
            return await reports.roll_settled(uow)

    async def login(self, username: str, password: str, ip: str, *, otp: str | None = None,
                    recovery_code: str | None = None) -> tuple[User, AuthSession]:
        """Count, verify (outside any transaction: the hash never holds a lock), check the
        second factor of an enrolled account, then record."""
        async with self.unit() as uow:
            attempt = await logins.begin_attempt(uow, username, ip)
        ok = await self._verify(attempt.password_hash, password)
        async with self.unit() as uow:
            if ok:
                await two_factor.check_login(uow, self.two_factor_keys, attempt, otp, recovery_code)
            user = await logins.finish_attempt(uow, attempt, ok)
            session = await logins.open_session(uow, user, ip)
            if user.role is Role.worker and user.extension_point_id is not None:
                await network.seen(uow, user.extension_point_id)
            loaded = await accounts.load_user(uow, user.id)
        assert loaded is not None
        return loaded, session

    async def point_seen(self, point_id: int) -> None:
        """A worker of this point connected or disconnected a socket: its last connection is now
        (docs/network.md). Not recorded is logged, never the socket's failure: the connection
        itself does not depend on it (a disconnect while the server stops, say)."""
        try:
            async with self.unit() as uow:
                await network.seen(uow, point_id)
        except (SQLAlchemyError, OSError):
            log.warning("could not record extension point %s as connected", point_id, exc_info=True)

    async def resident_sign_in(self, phone: str, code: str, ip: str, *, consent: bool,
                               firm: dict[str, str] | None) -> tuple[User, AuthSession]:
        """群众/企业 sign in with the code texted to them (server/domain/residents.py)."""
        async with self.unit() as uow:
            user = await residents.sign_in(uow, phone, code, ip, consent=consent, firm=firm)
            session = await logins.open_session(uow, user, ip)
            loaded = await accounts.load_user(uow, user.id)
        assert loaded is not None
        return loaded, session

    async def change_password(self, actor: Actor, current: str, new: str) -> tuple[User, AuthSession]:
        """改密 — the owner, with the current password; every session ends, a new one starts."""
        async with self.unit() as uow:
            attempt = await logins.begin_attempt(uow, actor.username, actor.ip)
        ok = await self._verify(attempt.password_hash, current)
        new_hash = await accounts.checked_hash(new)
        async with self.unit() as uow:
            try:
                user = await logins.finish_attempt(uow, attempt, ok)
            except Unauthorized as exc:
                wrong = Forbidden("wrong_password", "当前密码不正确")
                wrong.keep_changes = True  # the failed attempt stays counted and audited
                raise wrong from exc
            await accounts.set_password(uow, actor, user, new_hash)
            session = await logins.open_session(uow, user, actor.ip)
            loaded = await accounts.load_user(uow, user.id)
        assert loaded is not None
        return loaded, session

    async def turn_off_two_factor(self, actor: Actor, *, otp: str | None, password: str | None) -> None:
        """关闭两步验证 — with a current code, or with the password (checked like a login)."""
        keys = self.two_factor_keys
        if password is None:
            async with self.unit() as uow:
                await two_factor.turn_off(uow, keys, actor, otp=otp or "")
            return
        async with self.unit() as uow:
            two_factor.check_may_turn_off(uow, await two_factor.own_account(uow, actor))
            attempt = await logins.begin_attempt(uow, actor.username, actor.ip)
        ok = await self._verify(attempt.password_hash, password)
        async with self.unit() as uow:
            try:
                await logins.finish_attempt(uow, attempt, ok)
            except Unauthorized as exc:
                wrong = Forbidden("wrong_password", "当前密码不正确")
                wrong.keep_changes = True
                raise wrong from exc
            await two_factor.turn_off(uow, keys, actor, otp=None)

    async def verify_audit(self, actor: Actor, anchors: dict[int, str] | None = None) -> audit.Verdict:
        """Walk the audit chain in a read-only unit (no writer waits on it), then audit the check."""
        async with self.unit(write=False) as uow:
            verdict = await audit.verify(uow, actor, anchors)
        async with self.unit() as uow:
            audit.record(uow, actor, "audit.verify", "audit", "", intact=verdict.intact, rows=verdict.rows,
                         head_seq=verdict.head_seq, problem=verdict.problem.kind if verdict.problem else None)
        return verdict
