"""谁能看什么 — who may see a queue, a ticket and a resident's personal data.

The rules (docs/security.md has them in words):

- a **worker** sees the tickets of their own extension point and serves them;
- a **clerk** watches the queues (centre × department) their active windows serve: the waiting
  tickets there, without personal data, and serves the tickets called to their windows;
- a **supervisor** watches the queues of their departments at their centres (a district centre
  includes its town centres), without personal data;
- an **admin** administers: every ticket, without personal data;
- an **expert** sees the cases they accepted an invitation to (``calls.role_in_case``);
- an **auditor** reads the audit trail and nothing else;
- a **resident** (群众/企业 on their own phone, 屏对屏) sees the tickets they took themselves
  and sits in their calls where a worker sits for a ticket taken at an extension point.

Personal data (name, ID number, phone, note) goes in full only to the case's worker and the
clerk serving it; even they get ID number and phone masked everywhere but the one audited
read (``GET /api/tickets/{id}/resident``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.orm import selectinload

from server.domain.context import Actor, Uow
from server.models import Centre, Department, Role, Ticket, TicketStatus, User


def serves(actor: Actor, ticket: Ticket) -> Role | None:
    """``Role.worker`` or ``Role.clerk`` when the actor serves this case, else None. The resident
    who took a ticket on their own phone has the worker's seat in it (the far end of the call)."""
    if actor.role is Role.worker and ticket.extension_point_id is not None \
            and ticket.extension_point_id == actor.extension_point_id:
        return Role.worker
    if actor.role is Role.resident and ticket.source == "direct" and ticket.worker_id == actor.user_id:
        return Role.worker
    if actor.role is Role.clerk and (
        (ticket.window_id is not None and ticket.window_id in actor.window_ids) or ticket.clerk_id == actor.user_id
    ):
        return Role.clerk
    return None


def watches(actor: Actor, centre_id: int, department_id: int) -> bool:
    """Whether the actor watches this queue (its counts, its waiting tickets without personal data)."""
    if actor.role is Role.admin:
        return True
    if actor.role in (Role.clerk, Role.supervisor):
        return (centre_id, department_id) in actor.queues
    return False


def can_see(actor: Actor, ticket: Ticket) -> bool:
    if serves(actor, ticket) is not None or actor.role is Role.admin:
        return True
    if actor.role is Role.clerk:
        return ticket.status is TicketStatus.waiting and watches(actor, ticket.centre_id, ticket.department_id)
    if actor.role is Role.supervisor:
        return watches(actor, ticket.centre_id, ticket.department_id)
    return False


def visible_tickets(actor: Actor) -> ColumnElement[bool]:
    """``can_see`` as a WHERE clause, for lists."""
    if actor.role is Role.admin:
        return and_(True)
    if actor.role is Role.worker:
        if actor.extension_point_id is None:
            return false()
        return Ticket.extension_point_id == actor.extension_point_id
    if actor.role is Role.resident:
        return and_(Ticket.source == "direct", Ticket.worker_id == actor.user_id)
    queue = in_queues(actor.queues, Ticket.centre_id, Ticket.department_id)
    if actor.role is Role.clerk:
        return or_(
            Ticket.window_id.in_(actor.window_ids) if actor.window_ids else false(),
            Ticket.clerk_id == actor.user_id,
            and_(Ticket.status == TicketStatus.waiting, queue),
        )
    if actor.role is Role.supervisor:
        return queue
    return false()


def in_queues(queues: frozenset[tuple[int, int]], centre: Any, department: Any) -> ColumnElement[bool]:
    """(centre, department) ∈ queues as a WHERE clause over the two given columns."""
    by_centre: dict[int, set[int]] = {}
    for centre_id, department_id in queues:
        by_centre.setdefault(centre_id, set()).add(department_id)
    if not by_centre:
        return false()
    return or_(*(and_(centre == c, department.in_(sorted(d))) for c, d in sorted(by_centre.items())))


def watched(actor: Actor, centre: Any, department: Any) -> ColumnElement[bool]:
    """``watches`` as a WHERE clause over a centre and a department column."""
    if actor.role is Role.admin:
        return and_(True)
    return in_queues(actor.queues, centre, department)


async def supervisors_of(uow: Uow, centre_id: int, department_id: int) -> tuple[list[User], list[User]]:
    """Who answers for a queue: the department's supervisors over the centre (the department
    among theirs, not overseeing every department), and the centre's heads (over the centre,
    overseeing every department); each list falls back to the other when empty. Active ones."""
    users = list((await uow.session.scalars(
        select(User).options(selectinload(User.departments), selectinload(User.centres))
        .where(User.role == Role.supervisor, User.active.is_(True)).order_by(User.id))).all())
    every = set((await uow.session.scalars(select(Department.id))).all())
    department, heads = [], []
    for user in users:
        if centre_id not in await centre_scope(uow, {c.id for c in user.centres}):
            continue
        mine = {d.id for d in user.departments}
        if every <= mine:
            heads.append(user)
        elif department_id in mine:
            department.append(user)
    return department or heads, heads or department


async def centre_scope(uow: Uow, centre_ids: set[int]) -> frozenset[int]:
    """The centres given and every centre below them."""
    rows = (await uow.session.execute(select(Centre.id, Centre.parent_id))).all()
    children: dict[int, list[int]] = {}
    for cid, parent in rows:
        if parent is not None:
            children.setdefault(parent, []).append(cid)
    scope: set[int] = set()
    todo = list(centre_ids)
    while todo:
        cid = todo.pop()
        if cid not in scope:
            scope.add(cid)
            todo.extend(children.get(cid, ()))
    return frozenset(scope)
