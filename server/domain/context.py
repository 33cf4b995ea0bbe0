"""Who acts (Actor) and the unit of work a domain call runs in (Uow)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import UpdateBase

from server.config import ConsultationRules, DocumentRules, LoginPolicy, NotifyRules, QueueRules
from server.domain.clock import Clock
from server.domain.errors import Forbidden
from server.domain.personal import Sealer
from server.events import Audience, Event, QueueTouched
from server.models import Role


@dataclass(frozen=True)
class Actor:
    user_id: int
    username: str
    role: Role
    extension_point_id: int | None = None
    window_ids: frozenset[int] = frozenset()
    department_ids: frozenset[int] = frozenset()
    ip: str = ""
    centre_ids: frozenset[int] = frozenset()  # a supervisor's centres, sub-centres included
    queues: frozenset[tuple[int, int]] = frozenset()  # (centre, department) watched: clerks and supervisors
    session_id: str = ""

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            raise Forbidden(
                "role_forbidden",
                "您的角色无权执行此操作",
                role=self.role.value,
                allowed=[r.value for r in roles],
            )


SYSTEM = Actor(user_id=0, username="system", role=Role.admin)


class _NoSealer:
    """For units of work that never touch personal data (CLI reports); refuses to guess a key."""

    def seal(self, data: dict[str, str]) -> str:
        raise RuntimeError("no data key configured for this unit of work")

    def open(self, sealed: str) -> dict[str, str]:
        raise RuntimeError("no data key configured for this unit of work")

    def search_hash(self, id_number: str) -> str:
        raise RuntimeError("no data key configured for this unit of work")


@dataclass
class Uow:
    """One transaction's worth of domain work: the session, the clock, the rules, the events."""

    session: AsyncSession
    clock: Clock
    rules: QueueRules
    dialect: str = "sqlite"
    login: LoginPolicy = field(default_factory=LoginPolicy)
    documents: DocumentRules = field(default_factory=DocumentRules)
    consultations: ConsultationRules = field(default_factory=ConsultationRules)
    notify: NotifyRules = field(default_factory=NotifyRules)
    events: list[Event | QueueTouched] = field(default_factory=list)
    sealer: Sealer = field(default_factory=lambda: _NoSealer())
    link_origin: str = ""  # where links the server texts by itself open (Settings.link_origin)

    async def changed(self, statement: UpdateBase) -> int:
        """Run an UPDATE or DELETE and say how many rows it changed: a conditional update's one
        winner. (The session answers DML with a CursorResult, typed as any Result.)"""
        result = await self.session.execute(statement)
        assert isinstance(result, CursorResult)
        return result.rowcount

    async def serialize(self, key: str) -> None:
        """Hold ``key`` until this transaction ends: another transaction serializing on the same
        key waits here until this one has committed, so a read-count-then-write rule (a resend
        wait, a slot's last place) sees the other's row. PostgreSQL: a transaction-scoped
        advisory lock on the key's hash; SQLite: writes already run one at a time
        (``Database.write``), so nothing to do."""
        if self.dialect == "postgresql":
            number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
            await self.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": number})

    def emit(self, name: str, payload: dict[str, Any], audience: Audience,
             watchers_payload: dict[str, Any] | None = None) -> None:
        self.events.append(Event(name, payload, audience, watchers_payload))

    def touch_queue(self, centre_id: int, department_id: int) -> None:
        touched = QueueTouched(centre_id, department_id)
        if touched not in self.events:
            self.events.append(touched)
