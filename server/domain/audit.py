"""审计日志 — every state change and every privileged read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from server.domain.context import Actor, Uow
from server.models import AuditEntry, Role


def record(
    uow: Uow,
    actor: Actor,
    action: str,
    target_type: str = "",
    target_id: object = "",
    **detail: Any,
) -> None:
    uow.session.add(
        AuditEntry(
            at=uow.clock.now(),
            actor_id=actor.user_id or None,
            actor_name=actor.username,
            action=action,
            target_type=target_type,
            target_id=str(target_id),
            ip=actor.ip,
            detail=detail,
        )
    )


async def query(
    uow: Uow,
    actor: Actor,
    *,
    action: str | None = None,
    actor_id: int | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    actor.require(Role.auditor)
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(max(1, min(limit, 1000)))
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if actor_id is not None:
        stmt = stmt.where(AuditEntry.actor_id == actor_id)
    if target_type:
        stmt = stmt.where(AuditEntry.target_type == target_type)
    if target_id:
        stmt = stmt.where(AuditEntry.target_id == target_id)
    if since:
        stmt = stmt.where(AuditEntry.at >= since)
    if until:
        stmt = stmt.where(AuditEntry.at < until)
    rows = (await uow.session.scalars(stmt)).all()
    record(uow, actor, "audit.read", "audit", "", filters={"action": action, "target_type": target_type})
    return [
        {
            "id": r.id,
            "at": r.at.isoformat(),
            "actor_id": r.actor_id,
            "actor": r.actor_name,
            "action": r.action,
            "target_type": r.target_type,
            "target_id": r.target_id,
            "ip": r.ip,
            "detail": r.detail,
        }
        for r in rows
    ]
