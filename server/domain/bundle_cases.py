"""一事联办 — serving a bundle case department by department.

A bundle ticket waits in the queue of the department it is with (``Ticket.department_id``), so
any window serving that department calls it. The clerk completes the case's items of the
departments their window serves (each with its result); the ones of other departments stay
pending. Once none of the window's are left, the ticket goes on — like a transfer, keeping its
take time (its place in line), its documents and what was done — to the queue of the department
of the next pending item, waiting; the next clerk sees the case, its documents and the earlier
results. A window serving every department the case still needs completes it all at once. The
case is completed when every item is; its result is ``done`` when every item's is, else the
first other result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from server.domain import audit, bundles, certificates, documents
from server.domain.calls import role_in_case
from server.domain.context import Actor, Uow
from server.domain.errors import Conflict, Forbidden, Invalid, NotFound
from server.domain.queue import RESULTS, announce, for_action, record_change, requeue
from server.models import (
    CaseItem,
    CloudWindow,
    Department,
    ServiceItem,
    Ticket,
    TicketStatus,
    User,
)
from server.models import window_departments as wd

STATE_NAMES = {"pending": "待办理", "completed": "已办理"}


@dataclass(frozen=True)
class ItemResult:
    """What the clerk says of one of the case's items."""

    item_id: int
    result: str
    note: str = ""


async def _window_departments(uow: Uow, window_id: int | None) -> set[int]:
    if window_id is None:
        return set()
    return set((await uow.session.scalars(select(wd.c.department_id).where(wd.c.window_id == window_id))).all())


async def case_items(uow: Uow, actor: Actor, ticket_id: int) -> list[dict[str, Any]]:
    """The case's items with their department, state and (once handled) result, by whom and
    when; ``mine``: pending and the reader's window may complete it now. Empty for a ticket
    that is no bundle. Seen by the case's parties, like its documents."""
    ticket = await uow.session.get(Ticket, ticket_id)
    if ticket is None or await role_in_case(uow, actor, ticket) is None:
        raise NotFound("ticket_not_found", "号不存在", ticket_id=ticket_id)
    rows = await bundles.items_of_case(uow, ticket.id)
    if not rows:
        return []
    serving = ticket.window_id is not None and ticket.window_id in actor.window_ids \
        and ticket.status is TicketStatus.in_service
    mine = await _window_departments(uow, ticket.window_id) if serving else set()
    items = {i.id: i for i in (await uow.session.scalars(
        select(ServiceItem).where(ServiceItem.id.in_([r.item_id for r in rows])))).all()}
    departments = {d.id: d for d in (await uow.session.scalars(
        select(Department).where(Department.id.in_([r.department_id for r in rows])))).all()}
    windows = {w.id: w.name for w in (await uow.session.scalars(
        select(CloudWindow).where(CloudWindow.id.in_([r.window_id for r in rows if r.window_id])))).all()}
    audit.record(uow, actor, "ticket.items", "ticket", ticket.id)
    return [{
        "id": r.id, "item_id": r.item_id, "item_code": items[r.item_id].code, "item_name": items[r.item_id].name,
        "department_id": r.department_id, "department_name": departments[r.department_id].name,
        "position": r.position, "state": r.state, "state_name": STATE_NAMES[r.state], "result": r.result,
        "result_name": RESULTS.get(r.result or "", None), "note": r.note, "completed_by": r.completed_by_name or None,
        "window_name": windows.get(r.window_id) if r.window_id else None,
        "completed_at": r.completed_at.isoformat() if r.completed_at else None,
        "mine": r.state == "pending" and r.department_id in mine,
    } for r in rows]


def _overall(rows: Sequence[CaseItem]) -> str:
    return next((r.result for r in rows if r.result and r.result != "done"), "done")


async def complete_items(uow: Uow, actor: Actor, ticket_id: int, results: Sequence[ItemResult]) -> Ticket:
    """办结本窗口事项 — the clerk at the case's window completes some of its pending items of the
    departments the window serves; then the case stays (more of the window's left), goes on to
    the next department's queue, or is completed. Refused as a whole, changing nothing: a ticket
    that is no bundle, an item not of the case, already completed or of another department, a
    required material of a ``done`` item not accepted."""
    ticket = await for_action(uow, actor, ticket_id, "complete")
    if ticket.bundle_id is None:
        raise Conflict("not_a_bundle", "该号不是一事联办件，请直接办结")
    if not results:
        raise Invalid("items_required", "请选择要办结的事项")
    if len({r.item_id for r in results}) != len(results):
        raise Invalid("duplicate_item", "同一事项只能办结一次")
    for r in results:
        if r.result not in RESULTS:
            raise Invalid("unknown_result", "办理结果不正确", allowed=sorted(RESULTS))
    rows = await bundles.items_of_case(uow, ticket.id)
    by_item = {r.item_id: r for r in rows}
    mine = await _window_departments(uow, ticket.window_id)
    for r in results:
        row = by_item.get(r.item_id)
        if row is None:
            raise Invalid("unknown_case_item", "该联办件没有这个事项", item_id=r.item_id)
        if row.state != "pending":
            raise Conflict("item_already_completed", "该事项已办理", item_id=r.item_id, result=row.result)
        if row.department_id not in mine:
            raise Forbidden("not_your_item", "该事项不属于本窗口受理的部门，将转到其部门的窗口办理",
                            item_id=r.item_id, department_id=row.department_id)
    done = {r.item_id for r in results if r.result == "done"}
    if done:
        blocking = [line for line in await documents.checklist(uow, ticket.id)
                    if line["required"] and line["state"] != "accepted" and done & set(line.get("item_ids", []))]
        if blocking:
            names = "、".join(f"{m['name']}（{m['state_name']}）" for m in blocking)
            raise Conflict("material_missing", f"必需材料未齐：{names}。可退回补正，或以“材料不全”办结该事项",
                           materials=[{"material_id": m["material_id"], "name": m["name"], "state": m["state"]}
                                      for m in blocking])
    now = uow.clock.now()
    user = await uow.session.get(User, actor.user_id)
    for r in results:
        row = by_item[r.item_id]
        row.state, row.result, row.note = "completed", r.result, r.note
        row.completed_by_id, row.completed_by_name = actor.user_id, user.display_name if user else actor.username
        row.window_id, row.completed_at = ticket.window_id, now
    audit.record(uow, actor, "ticket.items_complete", "ticket", ticket.id, number=ticket.number,
                 items={str(r.item_id): r.result for r in results})
    for item_id in sorted(done):  # 证照到期提醒: the holder's certificates these items renew
        await certificates.renewed_by_case(uow, actor, ticket, item_id)
    pending = [r for r in rows if r.state == "pending"]
    if not pending:
        ticket.status = TicketStatus.completed
        ticket.result = _overall(rows)
        ticket.result_note = "；".join(r.note for r in rows if r.note)
        ticket.finished_at = now
        record_change(uow, actor, ticket, "complete", result=ticket.result)
        uow.touch_queue(ticket.centre_id, ticket.department_id)
    elif any(r.department_id in mine for r in pending):
        ticket.item_id = next(r.item_id for r in pending if r.department_id in mine)
        announce(uow, "ticket.updated", ticket)
    else:
        await _hand_on(uow, actor, ticket, pending[0])
    return ticket


async def _hand_on(uow: Uow, actor: Actor, ticket: Ticket, nxt: CaseItem) -> None:
    """To the queue of the next pending item's department, keeping the take time, waiting."""
    target = await uow.session.get(Department, nxt.department_id)
    assert target is not None
    await requeue(uow, actor, ticket, centre_id=ticket.centre_id, department=target, item_id=nxt.item_id,
                  action="bundle_next")
