"""The domain's runtime: a unit of work per call, events published after commit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from server.config import Settings
from server.db import Database
from server.domain import accounts
from server.domain.clock import Clock
from server.domain.context import Actor, Uow
from server.domain.errors import Unauthorized
from server.events import EventSink


class Domain:
    def __init__(self, db: Database, clock: Clock, settings: Settings, sink: EventSink) -> None:
        self.db, self.clock, self.settings, self.sink = db, clock, settings, sink

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
                login_limits=(self.settings.login_max_failures, self.settings.login_lockout_seconds),
                documents=self.settings.documents,
                consultations=self.settings.consultations,
            )
            yield uow
        if uow.events:
            await self.sink.publish(uow.events)

    async def actor(self, user_id: int, ip: str = "") -> Actor:
        async with self.unit(write=False) as uow:
            user = await accounts.load_user(uow, user_id)
        if user is None or not user.active:
            raise Unauthorized("account_disabled", "账号不存在或已停用")
        return accounts.actor_for(user, ip)
