"""通话链路 — which calls suffer from a poor network, and at which extension points.

The call service samples every participant's link every few seconds (graded good / fair / poor
by the relay, signaling/relay/quality.py, with the thresholds of docs/protocol.md "Link
quality") and records it here: per ticket and participant the last grade, the worst grade and
the seconds spent poor or fair. Supervisors see, for the queues they watch, the calls in
progress with a poor link and, per extension point, how many of today's calls had one — so a
village line that fails every afternoon shows up before the complaints do. Nothing personal:
the ticket number, the extension point, the participant's role and the link's figures.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from server.domain import hours
from server.domain.access import visible_tickets
from server.domain.context import Actor, Uow
from server.domain.errors import Invalid
from server.models import CallLink, Department, ExtensionPoint, Role, Ticket

GRADES = ("good", "fair", "poor")
LIVE_S = 20  # a sample older than this no longer says how the call is now
ROLES = ("worker", "clerk", "expert")


@dataclass(frozen=True)
class LinkSample:
    """One participant's link at one moment (from the relay's ``LinkReport``)."""

    user_id: int
    role: str
    grade: str
    loss: float | None = None  # 0–1
    rtt_s: float | None = None
    bitrate_bps: int | None = None


def _worse(a: str, b: str) -> str:
    return a if GRADES.index(a) >= GRADES.index(b) else b


async def record(uow: Uow, ticket_id: int, samples: list[LinkSample], seconds: float) -> None:
    """Add one round of samples of a call (``seconds``: the time since the last round)."""
    if not samples:
        return
    for s in samples:
        if s.grade not in GRADES or s.role not in ROLES:
            raise Invalid("invalid_link_sample", "链路采样无效", grade=s.grade, role=s.role)
    now = uow.clock.now()
    rows = {r.user_id: r for r in (await uow.session.scalars(
        select(CallLink).where(CallLink.ticket_id == ticket_id))).all()}
    step = max(0, round(seconds))
    for s in samples:
        row = rows.get(s.user_id)
        if row is None:
            row = CallLink(ticket_id=ticket_id, user_id=s.user_id, role=s.role, grade=s.grade, worst_grade=s.grade,
                           poor_s=0, fair_s=0, sampled_s=0, first_at=now, last_at=now)
            uow.session.add(row)
            rows[s.user_id] = row
        else:
            row.sampled_s += step
            row.poor_s += step if s.grade == "poor" else 0
            row.fair_s += step if s.grade == "fair" else 0
            row.worst_grade = _worse(row.worst_grade, s.grade)
        row.role, row.grade, row.last_at = s.role, s.grade, now
        row.loss_pct = None if s.loss is None else round(s.loss * 100, 1)
        row.rtt_ms = None if s.rtt_s is None else round(s.rtt_s * 1000)
        row.bitrate_kbps = None if s.bitrate_bps is None else round(s.bitrate_bps / 1000)
    await uow.session.flush()


def _participant(row: CallLink) -> dict[str, Any]:
    return {"role": row.role, "grade": row.grade, "worst_grade": row.worst_grade, "poor_s": row.poor_s,
            "loss_pct": row.loss_pct, "rtt_ms": row.rtt_ms, "bitrate_kbps": row.bitrate_kbps}


async def link_wall(uow: Uow, actor: Actor, *, centre_id: int | None = None) -> dict[str, Any]:
    """For the wall: calls in progress with a poor link now, and today's calls with a poor link
    per extension point, within the queues the actor watches."""
    actor.require(Role.supervisor, Role.admin)
    now = uow.clock.now()
    day_start = hours.day_start_utc(uow.rules, hours.local_day(uow.rules, now))
    stmt = (select(CallLink, Ticket).join(Ticket, Ticket.id == CallLink.ticket_id)
            .where(CallLink.last_at >= day_start, visible_tickets(actor)))
    if centre_id is not None:
        stmt = stmt.where(Ticket.centre_id == centre_id)
    rows = (await uow.session.execute(stmt)).all()
    links: dict[int, list[CallLink]] = defaultdict(list)
    tickets: dict[int, Ticket] = {}
    for link, ticket in rows:
        links[ticket.id].append(link)
        tickets[ticket.id] = ticket
    names = await _names(uow, tickets.values())
    fresh = now - timedelta(seconds=LIVE_S)
    poor_now = []
    per_point: dict[int | None, dict[str, Any]] = {}  # None: residents on their own phone (屏对屏)
    for ticket_id, mine in links.items():
        ticket = tickets[ticket_id]
        point = per_point.setdefault(ticket.extension_point_id, {
            "extension_point_id": ticket.extension_point_id,
            "name": _point_name(names, ticket.extension_point_id),
            "centre_id": ticket.centre_id, "calls_today": 0, "poor_calls_today": 0, "poor_s_today": 0,
        })
        if min(link.first_at for link in mine) >= day_start:
            point["calls_today"] += 1
            if any(link.worst_grade == "poor" for link in mine):
                point["poor_calls_today"] += 1
            point["poor_s_today"] += max(link.poor_s for link in mine)
        poor = [link for link in mine if link.grade == "poor" and link.last_at >= fresh]
        if poor and ticket.status.in_call:
            poor_now.append({
                "ticket_id": ticket.id, "number": ticket.number, "status": ticket.status.value,
                "department": names["departments"].get(ticket.department_id, ""),
                "extension_point": _point_name(names, ticket.extension_point_id),
                "extension_point_id": ticket.extension_point_id, "centre_id": ticket.centre_id,
                "participants": [_participant(link) for link in sorted(mine, key=lambda r: ROLES.index(r.role))
                                 if link.last_at >= fresh],
            })
    points = sorted(per_point.values(), key=lambda p: (-p["poor_calls_today"], -p["calls_today"], p["name"]))
    return {"at": now.isoformat(), "poor_now": sorted(poor_now, key=lambda c: c["number"]),
            "extension_points": [p for p in points if p["calls_today"]]}


DIRECT_NAME = "屏对屏（群众自己的手机）"


def _point_name(names: dict[str, dict[int, str]], point_id: int | None) -> str:
    return DIRECT_NAME if point_id is None else names["points"].get(point_id, "")


async def _names(uow: Uow, tickets: Any) -> dict[str, dict[int, str]]:
    tickets = list(tickets)
    points = {t.extension_point_id for t in tickets if t.extension_point_id is not None}
    departments = {t.department_id for t in tickets}
    out: dict[str, dict[int, str]] = {"points": {}, "departments": {}}
    if points:
        rows = await uow.session.execute(select(ExtensionPoint.id, ExtensionPoint.name).where(ExtensionPoint.id.in_(points)))
        out["points"] = {i: name for i, name in rows}
    if departments:
        rows = await uow.session.execute(select(Department.id, Department.name).where(Department.id.in_(departments)))
        out["departments"] = {i: name for i, name in rows}
    return out

