"""等候超时提醒与红黄预警 — wait-timeout alerts and yellow/red queue warnings.

A ticket waiting longer than the threshold (15 minutes by default) raises one alert. A queue's
warning level is computed from its waiting count and longest wait; a rise in level raises one
alert per crossing (the level last raised is kept in ``queue_states``, so a restart or a
second node does not raise it again). Alerts go to the department's supervisors.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from server.domain import audit, hours, stats
from server.domain.access import watched, watches
from server.domain.context import Actor, Uow
from server.domain.errors import NotFound
from server.events import Audience
from server.models import Alert, Department, QueueState, Role, Ticket, TicketStatus

LEVEL_NAMES = {"yellow": "黄色预警", "red": "红色预警"}


def alert_view(a: Alert) -> dict[str, Any]:
    return {
        "id": a.id,
        "kind": a.kind,
        "level": a.level,
        "centre_id": a.centre_id,
        "department_id": a.department_id,
        "ticket_id": a.ticket_id,
        "message": a.message,
        "detail": a.detail,
        "created_at": a.created_at.isoformat(),
        "acknowledged_at": a.acknowledged_at.isoformat() if a.acknowledged_at else None,
        "acknowledged_by_id": a.acknowledged_by_id,
    }


def _raise(uow: Uow, alert: Alert) -> None:
    uow.session.add(alert)
    audit.record(uow, Actor(0, "system", Role.admin), f"alert.{alert.kind}", "alert", "",
                 level=alert.level, department_id=alert.department_id, ticket_id=alert.ticket_id)


async def _publish(uow: Uow, alerts: list[Alert]) -> None:
    if not alerts:
        return
    await uow.session.flush()
    for a in alerts:
        uow.emit("alert.raised", alert_view(a), Audience(queue_supervisors=((a.centre_id, a.department_id),), admins=True))


async def evaluate_queue(uow: Uow, centre_id: int, department_id: int) -> Alert | None:
    """Raise a warning if this queue's level rose since the last one raised."""
    figure = (await stats.queue_stats(uow, centre_id=centre_id, department_id=department_id)).get(
        (centre_id, department_id), stats.QueueStat(centre_id, department_id)
    )
    level = figure.level(uow.rules)
    seen = await uow.session.scalar(
        select(QueueState.level).where(QueueState.centre_id == centre_id, QueueState.department_id == department_id)
    )
    if seen == level or (seen is None and level == "green"):
        return None  # the common case: no lock taken on the hot path of taking a ticket
    insert = pg_insert if uow.dialect == "postgresql" else sqlite_insert
    await uow.session.execute(
        insert(QueueState)
        .values(centre_id=centre_id, department_id=department_id, level="green")
        .on_conflict_do_nothing()
    )
    state = (
        await uow.session.scalars(
            select(QueueState)
            .where(QueueState.centre_id == centre_id, QueueState.department_id == department_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()
    if level == state.level:
        return None
    rose = stats.LEVELS.index(level) > stats.LEVELS.index(state.level)
    state.level, state.changed_at = level, uow.clock.now()
    if not rose:
        return None
    department = await uow.session.get(Department, department_id)
    name = department.name if department else str(department_id)
    alert = Alert(
        kind="warning",
        level=level,
        centre_id=centre_id,
        department_id=department_id,
        message=(
            f"{name}{LEVEL_NAMES[level]}：{figure.waiting} 人等候，"
            f"最长已等 {int(figure.longest_wait_s // 60)} 分钟"
        ),
        detail={"waiting": figure.waiting, "longest_wait_s": int(figure.longest_wait_s)},
        created_at=uow.clock.now(),
    )
    _raise(uow, alert)
    await _publish(uow, [alert])
    return alert


async def check(uow: Uow, *, limit: int = 500) -> list[Alert]:
    """One monitoring pass: wait-timeout alerts, then every queue's warning level."""
    raised = await _wait_timeouts(uow, limit)
    queues = set(await stats.queue_stats(uow))
    queues |= {
        (c, d)
        for c, d in (
            await uow.session.execute(
                select(QueueState.centre_id, QueueState.department_id).where(QueueState.level != "green")
            )
        ).all()
    }
    for centre_id, department_id in sorted(queues):
        alert = await evaluate_queue(uow, centre_id, department_id)
        if alert is not None:
            raised.append(alert)
    return raised


async def _wait_timeouts(uow: Uow, limit: int) -> list[Alert]:
    now = uow.clock.now()
    if not hours.is_open(uow.rules, now):
        return []
    threshold = timedelta(minutes=uow.rules.wait_alert_minutes)
    cutoff = now - threshold
    today = hours.local_day(uow.rules, now)
    # A ticket handed to this queue (transfer, a bundle's next department) waits from then.
    late = and_(Ticket.callback.is_(False), func.coalesce(Ticket.queued_at, Ticket.taken_at) <= cutoff)
    if stats.opening_time(uow.rules, today) <= cutoff:
        late = or_(late, Ticket.callback.is_(True))
    tickets = (
        await uow.session.scalars(
            select(Ticket)
            .where(
                Ticket.status == TicketStatus.waiting,
                Ticket.service_day <= today,
                Ticket.wait_alerted_at.is_(None),
                late,
            )
            .order_by(Ticket.taken_at)
            .limit(limit)
        )
    ).all()
    raised: list[Alert] = []
    for t in tickets:
        claimed = await uow.changed(
            update(Ticket).where(Ticket.id == t.id, Ticket.wait_alerted_at.is_(None)).values(wait_alerted_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed != 1:
            continue
        waited = now - stats.wait_start(uow.rules, t.queued_at or t.taken_at, t.callback, today)
        alert = Alert(
            kind="wait_timeout",
            level="yellow",
            centre_id=t.centre_id,
            department_id=t.department_id,
            ticket_id=t.id,
            message=f"{t.number} 号已等候 {int(waited.total_seconds() // 60)} 分钟，超过 "
            f"{uow.rules.wait_alert_minutes:g} 分钟提醒线",
            detail={"number": t.number, "waited_s": int(waited.total_seconds())},
            created_at=now,
        )
        _raise(uow, alert)
        raised.append(alert)
    await _publish(uow, raised)
    return raised


async def list_alerts(
    uow: Uow, actor: Actor, *, since: datetime | None = None, unacknowledged: bool = False, limit: int = 100
) -> list[Alert]:
    actor.require(Role.supervisor, Role.admin)
    stmt = select(Alert).order_by(Alert.id.desc()).limit(max(1, min(limit, 500)))
    stmt = stmt.where(watched(actor, Alert.centre_id, Alert.department_id))
    if since is not None:
        stmt = stmt.where(Alert.created_at >= since)
    if unacknowledged:
        stmt = stmt.where(Alert.acknowledged_at.is_(None))
    return list((await uow.session.scalars(stmt)).all())


async def acknowledge(uow: Uow, actor: Actor, alert_id: int) -> Alert:
    actor.require(Role.supervisor, Role.admin)
    alert = await uow.session.get(Alert, alert_id)
    if alert is None or not watches(actor, alert.centre_id, alert.department_id):
        raise NotFound("alert_not_found", "提醒不存在", alert_id=alert_id)
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by_id = uow.clock.now(), actor.user_id
        audit.record(uow, actor, "alert.acknowledge", "alert", alert.id)
    return alert
