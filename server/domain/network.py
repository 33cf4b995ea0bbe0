"""网点一览 — the district's network at a glance (1 + 17 + 288): each town centre with its extension
points, who is online there now, calls in progress, today's tickets, and the points that have not
connected for N days (docs/network.md).

- *Online now* comes from the live side (`PresenceView`: the workers with a socket connected),
  handed in by the caller; nothing about it is stored.
- *Last connected* is stored on the point (``extension_points.last_connected_at``) whenever one of
  its workers logs in, connects a socket or drops one (`seen`), so it survives restarts and other
  nodes see it. A point is *silent* when it is in use (active), nobody is online there, and it last
  connected more than N days ago, or never.
- *Calls in progress*: the point's tickets called or being served; *today's tickets*: those taken
  at the point for today's service day (a call-back taken last night for today counts today).
- Supervisors see the towns of their centres (a district supervisor every town), administrators
  all. Counts and staff names only: no resident's data.

Figures come from a fixed number of grouped queries, however many points there are.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, update

from server.domain import hours
from server.domain.access import centre_scope
from server.domain.context import Actor, Uow
from server.domain.errors import Invalid, NotFound
from server.domain.experts import PresenceView
from server.models import Centre, CentreLevel, ExtensionPoint, Role, Ticket, TicketStatus, User

DEFAULT_SILENT_DAYS = 7
MAX_SILENT_DAYS = 365
SEEN_GRANULARITY = timedelta(seconds=60)  # reconnects within a minute write nothing


async def seen(uow: Uow, point_id: int) -> bool:
    """A worker of this point logged in, connected or disconnected just now: its last connection
    is now. At most one write a minute per point (a flapping link reconnects often)."""
    now = uow.clock.now()
    p = ExtensionPoint
    changed = await uow.changed(update(p).where(
        p.id == point_id, or_(p.last_connected_at.is_(None), p.last_connected_at <= now - SEEN_GRANULARITY),
    ).values(last_connected_at=now))
    return changed > 0


async def visible_centres(uow: Uow, actor: Actor, centre_id: int | None) -> frozenset[int]:
    """The centres whose points the actor sees: an admin all, a supervisor their own and those below;
    ``centre_id`` narrows that to one centre and those below it."""
    actor.require(Role.supervisor, Role.admin)
    everything = frozenset((await uow.session.scalars(select(Centre.id))).all())
    mine = everything if actor.role is Role.admin else actor.centre_ids
    if centre_id is None:
        return mine
    if centre_id not in everything:
        raise NotFound("centre_not_found", "服务中心不存在", centre_id=centre_id)
    wanted = await centre_scope(uow, {centre_id}) & mine
    if not wanted:
        raise NotFound("centre_not_found", "您不负责该中心", centre_id=centre_id)
    return wanted


async def network(uow: Uow, actor: Actor, presence: PresenceView, *, centre_id: int | None = None,
                  silent_days: int = DEFAULT_SILENT_DAYS) -> dict[str, Any]:
    """Each town centre in the actor's view with its points and their figures, and the totals."""
    if not 1 <= silent_days <= MAX_SILENT_DAYS:
        raise Invalid("silent_days_out_of_range", f"未连接天数应在 1 到 {MAX_SILENT_DAYS} 之间")
    centres_seen = await visible_centres(uow, actor, centre_id)
    now = uow.clock.now()
    today = hours.local_day(uow.rules, now)
    since = now - timedelta(days=silent_days)
    centres = (await uow.session.scalars(
        select(Centre).where(Centre.id.in_(centres_seen)).order_by(Centre.id))).all()
    points = (await uow.session.scalars(
        select(ExtensionPoint).where(ExtensionPoint.centre_id.in_(centres_seen))
        .order_by(ExtensionPoint.centre_id, ExtensionPoint.id))).all()
    in_view = ExtensionPoint.centre_id.in_(centres_seen)
    staff: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for user_id, name, point_id in (await uow.session.execute(
        select(User.id, User.display_name, User.extension_point_id)
        .join(ExtensionPoint, ExtensionPoint.id == User.extension_point_id)
        .where(User.role == Role.worker, User.active.is_(True), in_view).order_by(User.id)
    )).all():
        staff[point_id or 0].append((user_id, name))
    calls = await _per_point(uow, in_view, Ticket.status.in_(TicketStatus.in_call_states()))
    taken = await _per_point(uow, in_view, Ticket.service_day == today)

    by_centre: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for p in points:
        workers = staff.get(p.id, [])
        online = [name for user_id, name in workers if presence.state(user_id) != "offline"]
        last = p.last_connected_at
        by_centre[p.centre_id].append({
            "id": p.id,
            "name": p.name,
            "centre_id": p.centre_id,
            "address": p.address,
            "contact_phone": p.contact_phone,
            "active": p.active,
            "staff": len(workers),
            "online": len(online),
            "online_names": online,
            "calls_now": calls.get(p.id, 0),
            "tickets_today": taken.get(p.id, 0),
            "last_connected_at": last.isoformat() if last else None,
            "silent": p.active and not online and (last is None or last < since),
        })
    towns = [_town(c, by_centre.get(c.id, [])) for c in centres
             if c.level is CentreLevel.town or by_centre.get(c.id)]
    keys = ("points", "online_points", "silent_points", "disabled_points", "staff", "online", "calls_now",
            "tickets_today")
    return {
        "at": now.isoformat(),
        "service_day": today.isoformat(),
        "silent_days": silent_days,
        "towns": towns,
        "totals": {"towns": len(towns), **{k: sum(t[k] for t in towns) for k in keys}},
    }


async def _per_point(uow: Uow, in_view: Any, condition: Any) -> dict[int, int]:
    """Tickets taken at the points in view meeting ``condition``, counted per point: one query."""
    rows = await uow.session.execute(
        select(Ticket.extension_point_id, func.count())
        .join(ExtensionPoint, ExtensionPoint.id == Ticket.extension_point_id)
        .where(in_view, condition).group_by(Ticket.extension_point_id)
    )
    return {int(point_id or 0): int(n) for point_id, n in rows.all()}


def _town(centre: Centre, points: list[dict[str, Any]]) -> dict[str, Any]:
    active = [p for p in points if p["active"]]
    return {
        "centre_id": centre.id,
        "name": centre.name,
        "points": len(active),
        "online_points": sum(1 for p in active if p["online"]),
        "silent_points": sum(1 for p in active if p["silent"]),
        "disabled_points": len(points) - len(active),
        "staff": sum(p["staff"] for p in points),
        "online": sum(p["online"] for p in points),
        "calls_now": sum(p["calls_now"] for p in points),
        "tickets_today": sum(p["tickets_today"] for p in points),
        "extension_points": points,
    }
