"""督办台账 — the problem ledger: what a centre follows through after the call.

A follow-up item is raised from a case (材料不全, 不符合条件, 办不成事, a resident's complaint in
chat), from an extension point (无权限, 不会办, 答不上), by a supervisor, or by a bad rating (a
score of 1 or 2 opens a 整改 work order, ``rectification``). It belongs to one queue (a centre
and a department) and has a deadline. States::

    open ──claim──▶ claimed ──answer──▶ answered ──visit (满意)──▶ visited ──close──▶ closed
      ▲                                     │
      └──────────── visit (不满意): reopened ┘

Claimed by a clerk of the department (or its supervisor); answered by who claimed it (the
answer to the resident and what was done); the return visit (回访) records the resident's
verdict, by phone, by a supervisor; a bad verdict reopens the item with a new deadline. An
item overdue and unanswered goes to the department's supervisors through the notifier, and
``ledger_escalate_hours`` later to the centre's head (``escalate_due``, the monitor's pass),
each once per reopening. Every step is audited and kept in the item's history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import and_, false, or_, select
from sqlalchemy.sql.elements import ColumnElement

from server.domain import audit, paging
from server.domain.access import in_queues, serves, supervisors_of
from server.domain.context import Actor, Uow
from server.domain.errors import Conflict, Forbidden, Invalid, NotFound
from server.events import Audience
from server.models import (
    Centre,
    Department,
    ExtensionPoint,
    LedgerItem,
    LedgerStep,
    Role,
    ServiceItem,
    Ticket,
    User,
)

OPEN, CLAIMED, ANSWERED, VISITED, CLOSED = "open", "claimed", "answered", "visited", "closed"
STATE_NAMES = {OPEN: "待认领", CLAIMED: "办理中", ANSWERED: "已答复", VISITED: "已回访", CLOSED: "已办结"}
SOURCES = {"case": "办件", "point": "延伸点", "supervisor": "监管交办", "rating": "差评整改"}
CATEGORIES = {
    "materials_incomplete": "材料不全", "not_eligible": "不符合条件", "cannot_handle": "办不成事",
    "complaint": "群众投诉", "no_permission": "无权限", "dont_know": "不会办", "cant_answer": "答不上",
    "bad_rating": "差评整改", "other": "其他",
}
CASE_CATEGORIES = ("materials_incomplete", "not_eligible", "cannot_handle", "complaint", "other")
POINT_CATEGORIES = ("no_permission", "dont_know", "cant_answer", "other")
VERDICTS = {"satisfied": "满意", "unsatisfied": "不满意"}
ACTION_NAMES = {"raise": "登记", "claim": "认领", "answer": "答复", "visit": "回访", "reopen": "重新交办",
                "close": "办结", "escalate": "超期督办"}
RAISERS = (Role.worker, Role.clerk, Role.supervisor)


@dataclass(frozen=True)
class Raised:
    """What someone raises: its source and category, what and about what."""

    source: str
    category: str
    title: str
    detail: str = ""
    ticket_id: int | None = None
    item_id: int | None = None
    centre_id: int | None = None
    department_id: int | None = None


def visible(actor: Actor) -> ColumnElement[bool]:
    """Who reads which items: supervisors and clerks their queues' (and what they raised), a
    worker their extension point's and their own, admins and auditors all."""
    if actor.role in (Role.admin, Role.auditor):
        return and_(True)
    mine = LedgerItem.raised_by_id == actor.user_id
    if actor.role is Role.worker:
        point = LedgerItem.extension_point_id == actor.extension_point_id if actor.extension_point_id else false()
        return or_(mine, point)
    if actor.role in (Role.clerk, Role.supervisor):
        return or_(mine, in_queues(actor.queues, LedgerItem.centre_id, LedgerItem.department_id))
    return false()


def _oversees(actor: Actor, item: LedgerItem) -> bool:
    return actor.role is Role.supervisor and (item.centre_id, item.department_id) in actor.queues


def _department_clerk(actor: Actor, item: LedgerItem) -> bool:
    return actor.role is Role.clerk and (item.centre_id, item.department_id) in actor.queues


async def _name(uow: Uow, actor: Actor) -> str:
    user = await uow.session.get(User, actor.user_id) if actor.user_id else None
    return (user.display_name if user else actor.username)[:50]


async def _step(uow: Uow, actor: Actor, item: LedgerItem, action: str, note: str = "") -> None:
    uow.session.add(LedgerStep(item_id=item.id, action=action, actor_id=actor.user_id or None,
                               actor_name=await _name(uow, actor) if actor.user_id else "系统", note=note,
                               at=uow.clock.now()))
    audit.record(uow, actor, f"ledger.{action}", "ledger_item", item.id, state=item.state)
    uow.emit("ledger.updated", {"id": item.id, "state": item.state, "centre_id": item.centre_id,
                                "department_id": item.department_id},
             Audience(users=tuple(u for u in (item.raised_by_id, item.claimed_by_id) if u),
                      queue_supervisors=((item.centre_id, item.department_id),)))


def _text(value: str, field: str, limit: int, *, required: bool = True) -> str:
    value = value.strip()
    if required and not value:
        raise Invalid(f"{field}_required", {"title": "请填写问题摘要", "answer": "请填写答复内容",
                                            "detail": "请填写问题说明"}.get(field, "请填写内容"))
    if len(value) > limit:
        raise Invalid(f"{field}_too_long", f"内容过长（最多 {limit} 字）")
    return value


async def raise_item(uow: Uow, actor: Actor, raised: Raised) -> LedgerItem:
    """登记督办事项. From a case: by who serves it (the worker, the clerk) or a supervisor over
    its queue, for the case's queue. From an extension point: by its worker, for the department
    (or the item) they name, at the queue that item joins from the point (the department's at
    the point's town centre when no item). By a supervisor: for a queue they oversee. Refused,
    changing nothing, otherwise."""
    actor.require(*RAISERS)
    if raised.source not in ("case", "point", "supervisor"):
        raise Invalid("ledger_source_invalid", "来源须为办件、延伸点或监管交办", allowed=["case", "point", "supervisor"])
    allowed = {"case": CASE_CATEGORIES, "point": POINT_CATEGORIES, "supervisor": tuple(CATEGORIES)}[raised.source]
    if raised.category not in allowed or raised.category == "bad_rating":
        raise Invalid("ledger_category_invalid", "问题类别不正确", allowed=[c for c in allowed if c != "bad_rating"])
    title = _text(raised.title, "title", 100)
    detail = _text(raised.detail, "detail", 2000, required=False)
    ticket_id = point_id = None
    if raised.source == "case":
        if raised.ticket_id is None:
            raise Invalid("ticket_required", "请指明办件")
        ticket = await uow.session.get(Ticket, raised.ticket_id)
        if ticket is None or (serves(actor, ticket) is None
                              and (ticket.centre_id, ticket.department_id) not in actor.queues):
            raise NotFound("ticket_not_found", "号不存在", ticket_id=raised.ticket_id)
        centre_id, department_id = ticket.centre_id, ticket.department_id
        ticket_id, point_id = ticket.id, ticket.extension_point_id
    elif raised.source == "point":
        actor.require(Role.worker)
        point = await uow.session.get(ExtensionPoint, actor.extension_point_id) if actor.extension_point_id else None
        if point is None:
            raise Forbidden("extension_point_required", "仅延伸点工作人员可登记延伸点问题")
        point_id = point.id
        centre_id, department_id = await _point_queue(uow, point, raised)
    else:
        actor.require(Role.supervisor)
        if raised.centre_id is None or raised.department_id is None:
            raise Invalid("queue_required", "请选择责任中心和部门")
        if (raised.centre_id, raised.department_id) not in actor.queues:
            raise Forbidden("not_your_queue", "只能向本人监管范围内的部门交办")
        centre_id, department_id = raised.centre_id, raised.department_id
    now = uow.clock.now()
    item = LedgerItem(
        source=raised.source, category=raised.category, title=title, detail=detail, ticket_id=ticket_id,
        extension_point_id=point_id, centre_id=centre_id, department_id=department_id,
        raised_by_id=actor.user_id, raised_by_name=await _name(uow, actor), raised_at=now,
        deadline=now + timedelta(hours=uow.rules.ledger_deadline_hours), state=OPEN, reopened=0, escalation=0,
    )
    uow.session.add(item)
    await uow.session.flush()
    await _step(uow, actor, item, "raise", title)
    return item


async def _point_queue(uow: Uow, point: ExtensionPoint, raised: Raised) -> tuple[int, int]:
    from server.domain.queue import queue_centre  # the queue rules; queue imports this module

    if raised.item_id is not None:
        service_item = await uow.session.get(ServiceItem, raised.item_id)
        if service_item is None:
            raise NotFound("item_not_found", "事项不存在", item_id=raised.item_id)
        return await queue_centre(uow, service_item, point), service_item.department_id
    if raised.department_id is None or await uow.session.get(Department, raised.department_id) is None:
        raise Invalid("department_required", "请选择需要答复的部门（或事项）")
    return point.centre_id, raised.department_id


async def rectification(uow: Uow, ticket: Ticket) -> LedgerItem | None:
    """差评整改 — a rating of 1 or 2 opens a work order for the case's department, due within
    ``rectify_deadline_hours``; once per case."""
    if ticket.rating_score is None or ticket.rating_score > 2:
        return None
    if await uow.session.scalar(select(LedgerItem.id).where(LedgerItem.ticket_id == ticket.id,
                                                            LedgerItem.source == "rating")) is not None:
        return None
    service_item = await uow.session.get(ServiceItem, ticket.item_id)
    now = uow.clock.now()
    item = LedgerItem(
        source="rating", category="bad_rating",
        title=f"差评整改：{ticket.number} {service_item.name if service_item else ''} {ticket.rating_score} 星"[:100],
        detail=ticket.rating_comment or "", ticket_id=ticket.id, extension_point_id=ticket.extension_point_id,
        centre_id=ticket.centre_id, department_id=ticket.department_id, raised_by_id=None, raised_by_name="系统",
        raised_at=now, deadline=now + timedelta(hours=uow.rules.rectify_deadline_hours), state=OPEN,
        reopened=0, escalation=0,
    )
    uow.session.add(item)
    await uow.session.flush()
    await _step(uow, SYSTEM_ACTOR, item, "raise", f"群众评价 {ticket.rating_score} 星")
    return item


SYSTEM_ACTOR = Actor(user_id=0, username="system", role=Role.admin)


async def _for_step(uow: Uow, actor: Actor, item_id: int, action: str, *states: str) -> LedgerItem:
    item = await uow.session.get(LedgerItem, item_id, with_for_update=True)
    if item is None or not await _can_read(uow, actor, item):
        raise NotFound("ledger_item_not_found", "督办事项不存在", item_id=item_id)
    if item.state not in states:
        raise Conflict("ledger_illegal_transition",
                       f"该事项{STATE_NAMES[item.state]}，不能{ACTION_NAMES[action]}",
                       state=item.state, action=action)
    return item


async def _can_read(uow: Uow, actor: Actor, item: LedgerItem) -> bool:
    return bool(await uow.session.scalar(select(LedgerItem.id).where(LedgerItem.id == item.id, visible(actor))))


async def claim(uow: Uow, actor: Actor, item_id: int) -> LedgerItem:
    """认领 — a clerk of the item's department (at its centre), or its supervisor."""
    actor.require(Role.clerk, Role.supervisor)
    item = await _for_step(uow, actor, item_id, "claim", OPEN)
    if not (_department_clerk(actor, item) or _oversees(actor, item)):
        raise Forbidden("not_your_queue", "只能认领本部门的督办事项")
    item.state, item.claimed_by_id, item.claimed_at = CLAIMED, actor.user_id, uow.clock.now()
    await _step(uow, actor, item, "claim")
    return item


async def answer(uow: Uow, actor: Actor, item_id: int, *, text: str, action_taken: str = "") -> LedgerItem:
    """答复 — who claimed it (or the department's supervisor): the answer given to the resident
    and what was done."""
    actor.require(Role.clerk, Role.supervisor)
    item = await _for_step(uow, actor, item_id, "answer", CLAIMED)
    if item.claimed_by_id != actor.user_id and not _oversees(actor, item):
        raise Forbidden("not_claimed_by_you", "该事项由他人认领，请由认领人答复")
    item.answer, item.action_taken = _text(text, "answer", 2000), _text(action_taken, "action", 2000, required=False)
    item.state, item.answered_at = ANSWERED, uow.clock.now()
    await _step(uow, actor, item, "answer", item.answer)
    return item


async def visit(uow: Uow, actor: Actor, item_id: int, *, verdict: str, note: str = "") -> LedgerItem:
    """回访 — a supervisor records the resident's verdict, asked by phone. 满意: visited; 不满意:
    reopened, to be claimed and answered again by a new deadline."""
    actor.require(Role.supervisor)
    if verdict not in VERDICTS:
        raise Invalid("verdict_invalid", "回访结果须为满意或不满意", allowed=list(VERDICTS))
    item = await _for_step(uow, actor, item_id, "visit", ANSWERED)
    if not _oversees(actor, item):
        raise Forbidden("not_your_queue", "只能回访本人监管范围内的事项")
    now = uow.clock.now()
    item.visit_verdict, item.visit_note, item.visited_at = verdict, _text(note, "note", 2000, required=False), now
    if verdict == "satisfied":
        item.state = VISITED
        await _step(uow, actor, item, "visit", f"{VERDICTS[verdict]}。{item.visit_note}".rstrip("。"))
        return item
    item.state, item.reopened = OPEN, item.reopened + 1
    item.claimed_by_id = item.claimed_at = item.answered_at = None
    item.escalation, item.escalated_at = 0, None
    hours = uow.rules.rectify_deadline_hours if item.source == "rating" else uow.rules.ledger_deadline_hours
    item.deadline = now + timedelta(hours=hours)
    await _step(uow, actor, item, "reopen", f"{VERDICTS[verdict]}。{item.visit_note}".rstrip("。"))
    return item


async def close(uow: Uow, actor: Actor, item_id: int, *, note: str = "") -> LedgerItem:
    """办结 — a supervisor closes a visited item."""
    actor.require(Role.supervisor)
    item = await _for_step(uow, actor, item_id, "close", VISITED)
    if not _oversees(actor, item):
        raise Forbidden("not_your_queue", "只能办结本人监管范围内的事项")
    item.state, item.closed_at = CLOSED, uow.clock.now()
    await _step(uow, actor, item, "close", _text(note, "note", 2000, required=False))
    return item


async def get(uow: Uow, actor: Actor, item_id: int) -> LedgerItem:
    actor.require(Role.worker, Role.clerk, Role.supervisor, Role.admin, Role.auditor)
    item = (await uow.session.scalars(select(LedgerItem).where(LedgerItem.id == item_id, visible(actor)))).first()
    if item is None:
        raise NotFound("ledger_item_not_found", "督办事项不存在", item_id=item_id)
    return item


async def steps(uow: Uow, item_id: int) -> list[LedgerStep]:
    return list((await uow.session.scalars(
        select(LedgerStep).where(LedgerStep.item_id == item_id).order_by(LedgerStep.id))).all())


async def listing(uow: Uow, actor: Actor, *, state: str | None = None, department_id: int | None = None,
                  source: str | None = None, overdue: bool | None = None, limit: int = 200) -> list[LedgerItem]:
    actor.require(Role.worker, Role.clerk, Role.supervisor, Role.admin, Role.auditor)
    stmt = select(LedgerItem).where(visible(actor)).order_by(LedgerItem.deadline, LedgerItem.id).limit(limit)
    if state is not None:
        if state not in STATE_NAMES:
            raise Invalid("ledger_state_invalid", "状态不正确", allowed=list(STATE_NAMES))
        stmt = stmt.where(LedgerItem.state == state)
    if department_id is not None:
        stmt = stmt.where(LedgerItem.department_id == department_id)
    if source is not None:
        stmt = stmt.where(LedgerItem.source == source)
    if overdue is not None:
        late = and_(LedgerItem.state.in_((OPEN, CLAIMED)), LedgerItem.deadline < uow.clock.now())
        stmt = stmt.where(late if overdue else ~late)
    return list((await uow.session.scalars(stmt)).all())


def overdue(item: LedgerItem, now: datetime) -> bool:
    """Past its deadline and not answered yet."""
    return item.state in (OPEN, CLAIMED) and item.deadline < now


async def summary(uow: Uow, actor: Actor) -> dict[str, Any]:
    """Per department: items in each state, overdue ones, the oldest unfinished one's age; and
    the bad ratings' rectification: how many, answered, answered by their deadline, the rate."""
    actor.require(Role.supervisor, Role.admin, Role.auditor)
    now = uow.clock.now()
    items = list((await uow.session.scalars(select(LedgerItem).where(visible(actor)))).all())
    names = {d.id: d.name for d in (await uow.session.scalars(select(Department))).all()}
    per: dict[int, dict[str, Any]] = {}
    for item in items:
        row = per.setdefault(item.department_id, {
            "department_id": item.department_id, "department_name": names.get(item.department_id, ""),
            **{s: 0 for s in STATE_NAMES}, "overdue": 0, "oldest_open_hours": None})
        row[item.state] += 1
        row["overdue"] += overdue(item, now)
        if item.state != CLOSED:
            age = round((now - item.raised_at).total_seconds() / 3600, 1)
            row["oldest_open_hours"] = max(row["oldest_open_hours"] or 0, age)
    rated = [i for i in items if i.source == "rating"]
    answered = [i for i in rated if i.answered_at is not None or i.state in (VISITED, CLOSED)]
    on_time = [i for i in answered if i.answered_at is not None and i.answered_at <= i.deadline]
    return {
        "departments": sorted(per.values(), key=lambda r: r["department_id"]),
        "total": len(items), "overdue": sum(r["overdue"] for r in per.values()),
        "rectification": {"bad_ratings": len(rated), "answered": len(answered), "on_time": len(on_time),
                          "on_time_rate": round(len(on_time) / len(rated), 3) if rated else None},
    }


async def escalate_due(uow: Uow) -> list[int]:
    """超期督办 — items past their deadline and unanswered: to the department's supervisors at
    once, to the centre's head ``ledger_escalate_hours`` later; each once per reopening
    (the outbox's dedupe key). The monitor's pass calls it; returns the items escalated."""
    now = uow.clock.now()
    later = timedelta(hours=uow.rules.ledger_escalate_hours)
    due = list((await uow.session.scalars(
        select(LedgerItem).where(LedgerItem.state.in_((OPEN, CLAIMED)), LedgerItem.deadline < now,
                                 LedgerItem.escalation < 2)
        .order_by(LedgerItem.deadline).limit(100).with_for_update(skip_locked=True))).all())
    escalated = []
    centres = {c.id: c.name for c in (await uow.session.scalars(select(Centre))).all()}
    for item in due:
        level = item.escalation + 1
        if level == 2 and now < item.deadline + later:
            continue
        department, heads = await supervisors_of(uow, item.centre_id, item.department_id)
        to = department if level == 1 else heads
        hours = int((now - item.deadline).total_seconds() // 3600)
        who = "、".join(u.display_name for u in to) or "负责人"
        text = (f"【督办超期】{centres.get(item.centre_id, '')} 督办事项 #{item.id}“{item.title}”"
                f"已超过办理时限{f' {hours} 小时' if hours else ''}仍未答复（{STATE_NAMES[item.state]}），"
                f"请 {{names}} 督促处理：{uow.link_origin}/app/ledger")
        await paging.page(uow, to, kind="ledger_overdue", key=f"ledger:{item.id}:{item.reopened}:{level}",
                          text=partial(_addressed, text))
        item.escalation, item.escalated_at = level, now
        await _step(uow, SYSTEM_ACTOR, item, "escalate", f"{'部门负责人' if level == 1 else '中心负责人'}：{who}")
        escalated.append(item.id)
    return escalated


def _addressed(text: str, person: User | None) -> str:
    """The message to one person (named), or to the group ("{names}": whom it names)."""
    return text.replace("{names}", person.display_name) if person is not None else text


def view(item: LedgerItem, now: datetime, *, history: Sequence[LedgerStep] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": item.id, "source": item.source, "source_name": SOURCES[item.source], "category": item.category,
        "category_name": CATEGORIES.get(item.category, item.category), "title": item.title, "detail": item.detail,
        "ticket_id": item.ticket_id, "extension_point_id": item.extension_point_id, "centre_id": item.centre_id,
        "department_id": item.department_id, "raised_by": item.raised_by_name,
        "raised_at": item.raised_at.isoformat(), "deadline": item.deadline.isoformat(), "state": item.state,
        "state_name": STATE_NAMES[item.state], "overdue": overdue(item, now), "claimed_by_id": item.claimed_by_id,
        "answer": item.answer, "action_taken": item.action_taken,
        "answered_at": item.answered_at.isoformat() if item.answered_at else None,
        "visit_verdict": item.visit_verdict, "visit_note": item.visit_note,
        "closed_at": item.closed_at.isoformat() if item.closed_at else None,
        "reopened": item.reopened, "escalation": item.escalation,
    }
    if history is not None:
        out["history"] = [{"action": s.action, "action_name": ACTION_NAMES.get(s.action, s.action),
                           "actor": s.actor_name, "note": s.note, "at": s.at.isoformat()} for s in history]
    return out
