"""大屏 — the supervisors' wall display figures."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select

from server.domain import alerts, hours, org, queue, stats
from server.domain.access import visible_tickets, watches
from server.domain.context import Actor, Uow
from server.domain.views import window_view
from server.models import Department, Role, Ticket, TicketStatus


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


async def dashboard(uow: Uow, actor: Actor, *, centre_id: int | None = None) -> dict[str, Any]:
    actor.require(Role.supervisor, Role.admin)
    now = uow.clock.now()
    today = hours.local_day(uow.rules, now)
    day_start = hours.day_start_utc(uow.rules, today)
    departments = (await uow.session.scalars(select(Department).order_by(Department.id))).all()
    if actor.role is Role.supervisor:
        departments = [d for d in departments if d.id in actor.department_ids]
    wanted = {d.id for d in departments}
    figures = await stats.queue_stats(uow, centre_id=centre_id)
    stmt = select(Ticket).where(
        Ticket.department_id.in_(wanted),
        visible_tickets(actor),
        or_(Ticket.called_at >= day_start, Ticket.finished_at >= day_start, Ticket.rated_at >= day_start),
    )
    if centre_id is not None:
        stmt = stmt.where(Ticket.centre_id == centre_id)
    todays = (await uow.session.scalars(stmt)).all()
    waits: dict[int, list[float]] = defaultdict(list)
    handling: dict[int, list[float]] = defaultdict(list)
    ratings: dict[int, list[float]] = defaultdict(list)
    served: dict[int, int] = defaultdict(int)
    for t in todays:
        if t.called_at and t.called_at >= day_start and t.transfers == 0:
            waits[t.department_id].append((t.called_at - t.taken_at).total_seconds())
        if t.status is TicketStatus.completed and t.finished_at and t.finished_at >= day_start:
            served[t.department_id] += 1
            if t.called_at:
                handling[t.department_id].append((t.finished_at - t.called_at).total_seconds())
        if t.rating_score is not None and t.rated_at and t.rated_at >= day_start:
            ratings[t.department_id].append(float(t.rating_score))
    rows = []
    for d in departments:
        mine = [s for (c, dep), s in figures.items() if dep == d.id and watches(actor, c, dep)]
        levels = [s.level(uow.rules) for s in mine] or ["green"]
        rows.append({
            "department_id": d.id,
            "code": d.code,
            "name": d.name,
            "waiting": sum(s.waiting for s in mine),
            "serving": sum(s.serving for s in mine),
            "longest_wait_s": int(max((s.longest_wait_s for s in mine), default=0)),
            "warning_level": max(levels, key=stats.LEVELS.index),
            "served_today": served[d.id],
            "average_wait_s": _mean(waits[d.id]),
            "average_handling_s": _mean(handling[d.id]),
            "rating_average": _mean(ratings[d.id]),
            "ratings_today": len(ratings[d.id]),
        })
    tidal = [
        window_view(w)
        for w in await org.tidal_windows(uow, since_day_start=day_start)
        if any(watches(actor, w.centre_id, d.id) for d in w.departments if d.id in wanted)
    ]
    recent = await alerts.list_alerts(uow, actor, since=now - timedelta(hours=24), limit=50)
    return {
        "at": now.isoformat(),
        "service_open": hours.is_open(uow.rules, now),
        "departments": rows,
        "totals": {
            "waiting": sum(r["waiting"] for r in rows),
            "serving": sum(r["serving"] for r in rows),
            "served_today": sum(r["served_today"] for r in rows),
        },
        "tidal_windows": tidal,
        "alerts": [alerts.alert_view(a) for a in recent],
    }


async def queue_gauges(uow: Uow) -> list[dict[str, Any]]:
    """Every served queue's figures as the wall shows them (``queue.queues``), with its
    department's code: the operators' metrics (server/metrics.py). For no actor: /metrics has
    its own token, and these figures carry no personal data."""
    codes = {d: code for d, code in (await uow.session.execute(select(Department.id, Department.code))).all()}
    return [{**q, "department_code": codes.get(q["department_id"], "")} for q in await queue.queues(uow)]
