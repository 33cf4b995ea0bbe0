"""云窗口排队 — taking tickets, calling next and the ticket state machine.

Order of service at a window: priority tickets (elderly, disabled …) first, then call-backs
left after hours, then first come first served by the original take time, across every
department the window serves. Call-next is atomic: on PostgreSQL the window row is locked
and candidates are taken ``FOR UPDATE SKIP LOCKED``; on SQLite one writer runs at a time.
Every UPDATE is also guarded by the state it expects, so a lost race changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, literal, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from server.domain import (
    alerts,
    audit,
    bundles,
    certificates,
    documents,
    hours,
    ledger,
    org,
    personal,
    reports,
    residents,
    situations,
    stats,
)
from server.domain.access import can_see, serves, visible_tickets
from server.domain.context import Actor, Uow
from server.domain.errors import Conflict, Forbidden, Invalid, NotFound
from server.domain.views import ticket_view
from server.events import Audience
from server.models import (
    Centre,
    CentreLevel,
    CloudWindow,
    Department,
    Document,
    ExtensionPoint,
    Role,
    ServiceItem,
    Ticket,
    TicketCounter,
    TicketStatus,
    UploadSession,
    User,
    UTCDateTime,
)
from server.models import (
    window_departments as wd,
)

PRIORITIES = {
    "elderly": "老年人",
    "disabled": "残疾人",
    "pregnant": "孕妇",
    "military": "军人及优抚对象",
}
RESULTS = {
    "done": "当场办结",
    "materials_incomplete": "材料不全",
    "not_eligible": "不符合条件",
    "consultation_only": "仅咨询",
}
S = TicketStatus
#: The states each clerk action may start from (what it leads to is the action's own business).
ALLOWED_FROM: dict[str, frozenset[TicketStatus]] = {
    "start": frozenset({S.called}),
    "recall": frozenset({S.called}),
    "no_show": frozenset({S.called}),
    "transfer": frozenset({S.called, S.in_service}),
    "complete": frozenset({S.in_service}),
    "cancel": frozenset({S.waiting, S.called, S.in_service}),
}
STATUS_NAMES = {
    S.waiting: "等待中",
    S.called: "已叫号",
    S.in_service: "办理中",
    S.completed: "已办结",
    S.no_show: "过号",
    S.cancelled: "已取消",
}
RECENT_FOR_ESTIMATE = 20
#: The events of the actions that end a ticket (``record_change`` names them ``ticket.<action>``).
ENDING_EVENTS = frozenset({"ticket.complete", "ticket.no-show", "ticket.cancel"})


def outcome(event_name: str, view: dict[str, Any]) -> str | None:
    """How the ticket of this event ended: the result of a completed case (``done``,
    ``materials_incomplete`` …), ``no_show`` or ``cancelled``; None for an event that ends none.
    The operators' metrics count tickets by it (server/metrics.py)."""
    if event_name not in ENDING_EVENTS:
        return None
    if view["status"] == TicketStatus.completed.value:
        return str(view["result"])
    return str(view["status"])


@dataclass(frozen=True)
class Placement:
    """Where a waiting ticket stands: 1 = next to be called."""

    position: int
    estimated_wait_s: int

    def as_dict(self) -> dict[str, int]:
        return {"position": self.position, "estimated_wait_s": self.estimated_wait_s}


def _order_key() -> tuple[Any, ...]:
    """Priority tickets, then booked appointments (预约) whose slot has come, then call-backs,
    then everyone else first come first served (docs/queue.md, "Order of service")."""
    return (
        case((Ticket.priority.is_not(None), 0), else_=1),
        case((Ticket.appointment_at.is_not(None), 0), else_=1),
        case((Ticket.callback.is_(True), 0), else_=1),
        Ticket.taken_at,
        Ticket.id,
    )


def ticket_audience(t: Ticket, *users: int | None) -> Audience:
    """The case's worker and clerk (and any others named), and the supervisors watching its
    queue; clerks watching the queue hear of it through ``queue.updated`` counts only."""
    ids = tuple(sorted({u for u in (t.worker_id, t.clerk_id, *users) if u}))
    return Audience(users=ids, queue_supervisors=((t.centre_id, t.department_id),))


def announce(uow: Uow, name: str, t: Ticket, audience: Audience | None = None, **extra: object) -> None:
    """A ticket event: in full to the people serving the case, without personal data to watchers."""
    uow.emit(name, ticket_view(t, personal=True, **extra), audience or ticket_audience(t),
             watchers_payload=ticket_view(t, personal=False, **extra))


def view(actor: Actor, t: Ticket, **extra: Any) -> dict[str, Any]:
    """The ticket as this actor may see it (personal data only to those serving the case)."""
    return ticket_view(t, personal=serves(actor, t) is not None, **extra)


async def queue_centre(uow: Uow, item: ServiceItem, point: ExtensionPoint) -> int:
    """The centre whose queue an item taken at this extension point joins: its town's for a
    town item, the district's for a district one."""
    if item.level is CentreLevel.town:
        return point.centre_id
    root = await uow.session.scalar(
        select(Centre.id).where(Centre.level == CentreLevel.district).order_by(Centre.id).limit(1)
    )
    if root is None:
        raise NotFound("centre_not_found", "没有区级云办中心")
    return root


async def direct_centre(uow: Uow, item: ServiceItem, centre_id: int | None) -> int:
    """The centre a resident's own ticket (屏对屏) joins: the district's for a district item; for a
    town item the town centre they chose (``centre_id``)."""
    if item.level is CentreLevel.town:
        centre = await uow.session.get(Centre, centre_id) if centre_id is not None else None
        if centre is None or centre.level is not CentreLevel.town:
            raise Invalid("centre_required", f"“{item.name}”由镇（街道）便民服务中心办理，请选择您所在的镇（街道）")
        return centre.id
    root = await uow.session.scalar(
        select(Centre.id).where(Centre.level == CentreLevel.district).order_by(Centre.id).limit(1)
    )
    if root is None:
        raise NotFound("centre_not_found", "没有区级云办中心")
    return root


async def _own_phone(uow: Uow, actor: Actor) -> str:
    user = await uow.session.get(User, actor.user_id)
    return residents.phone_of(uow, user) if user is not None else ""


async def _next_number(uow: Uow, centre_id: int, department: Department, day: Any) -> str:
    """Atomic per-queue, per-day counter: one upsert ... RETURNING on both backends.

    On PostgreSQL it commits on a connection of its own, like a sequence: the counter row is
    locked for one statement instead of for the rest of the take, so takers of a busy queue
    do not wait on each other; a take that fails afterwards leaves a gap in the numbers, as a
    torn-off paper ticket does. SQLite has one writer at a time anyway.
    """
    insert = pg_insert if uow.dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(TicketCounter)
        .values(centre_id=centre_id, department_id=department.id, day=day, last=1)
        .on_conflict_do_update(
            index_elements=["centre_id", "department_id", "day"],
            set_={"last": TicketCounter.last + 1},
        )
        .returning(TicketCounter.last)
    )
    if uow.dialect == "postgresql":
        engine = uow.session.bind
        assert isinstance(engine, AsyncEngine)
        async with engine.begin() as conn:
            seq = (await conn.execute(stmt)).scalar_one()
    else:
        seq = (await uow.session.execute(stmt)).scalar_one()
    return f"{department.code}{seq:03d}"


async def take_ticket(
    uow: Uow,
    actor: Actor,
    *,
    item_id: int | None = None,
    bundle_id: int | None = None,
    resident: dict[str, Any],
    priority: str | None = None,
    centre_id: int | None = None,
    situation_id: int | None = None,
    appointment_at: datetime | None = None,
) -> tuple[Ticket, Placement]:
    """取号 — a community worker takes a ticket for a resident in the item's cloud queue, or a
    resident takes one for themselves on their own phone (屏对屏, source ``direct``: no extension
    point; a town item needs the town's ``centre_id``; one open ticket at a time). With the resident's situation (办理情形) when it was found, the
    case's checklist is that situation's; without one the case keeps the item's general checklist.
    ``appointment_at``: a resident's booked slot entering the queue (``appointments.enter_due``).

    With ``bundle_id`` instead of ``item_id`` (一事联办) the ticket is one case for all the bundle's
    items: it joins the queue of the department of the bundle's first item, at the district's
    centre when any item is a district one (``bundles``), and is served department by department
    (``bundle_cases``)."""
    actor.require(Role.worker, Role.resident)
    direct = actor.role is Role.resident
    if not direct and actor.extension_point_id is None:
        raise Forbidden("no_extension_point", "您的账号未绑定延伸点，请联系管理员")
    name = str(resident.get("name", "")).strip()
    if not name:
        raise Invalid("resident_name_required", "请填写办事人姓名" if direct else "请填写办事群众姓名")
    if priority is not None and priority not in PRIORITIES:
        raise Invalid("unknown_priority", "优先类型不正确", allowed=sorted(PRIORITIES))
    if (item_id is None) == (bundle_id is None):
        raise Invalid("item_or_bundle", "请选择一个事项或一个联办事项")
    joint = await bundles.get_bundle(uow, bundle_id) if bundle_id is not None else None
    if joint is not None:
        if situation_id is not None:
            raise Invalid("unknown_situation", "联办事项按各事项的通用材料清单办理，不选办理情形")
        item: ServiceItem | None = joint.items[0]
        where = joint.queue_item
    else:
        item = await uow.session.get(ServiceItem, item_id)
        if item is None or not item.active:
            raise NotFound("item_not_found", "事项不存在或已停办", item_id=item_id)
        where = item
    assert item is not None
    situation = await situations.of_item(uow, item, situation_id)
    department = await uow.session.get(Department, item.department_id)
    assert department is not None
    point: ExtensionPoint | None = None
    if direct:
        centre_id = await direct_centre(uow, where, centre_id)
        resident = {**resident, "phone": await _own_phone(uow, actor)}
    else:
        point = await uow.session.get(ExtensionPoint, actor.extension_point_id)
        if point is None:
            raise Forbidden("no_extension_point", "您的账号未绑定延伸点，请联系管理员")
        if not point.active:
            raise Forbidden("extension_point_disabled", f"{point.name}已停用，暂不能取号，请联系管理员",
                            extension_point_id=point.id)
        centre_id = await queue_centre(uow, where, point)
    for department_id in joint.departments if joint is not None else [department.id]:
        if await org.windows_serving(uow, centre_id, department_id) == 0:
            what = joint.bundle.name if joint is not None else item.name
            raise Conflict("no_window_for_item", f"暂无云窗口受理“{what}”，请稍后再试或联系中心",
                           department_id=department_id)
    clear, sealed, search = personal.split_resident(uow.sealer, {**resident, "name": name})
    if direct:
        duplicate = (await uow.session.execute(
            select(Ticket.id, Ticket.number).where(Ticket.source == "direct", Ticket.worker_id == actor.user_id,
                                                   Ticket.status.in_(TicketStatus.open_states())).limit(1))).first()
        if duplicate is not None:
            raise Conflict("open_ticket_exists", f"您已有一个排队或办理中的号 {duplicate.number}，办结或取消后再取号",
                           ticket_id=duplicate.id)
    else:
        assert point is not None
        duplicate = (
            await uow.session.execute(
                select(Ticket.id, Ticket.number).where(
                    Ticket.bundle_id == joint.bundle.id if joint is not None else and_(
                        Ticket.item_id == item.id, Ticket.bundle_id.is_(None)),
                    Ticket.extension_point_id == point.id,
                    Ticket.status.in_(TicketStatus.open_states()),
                    Ticket.resident["name"].as_string() == name,
                    func.coalesce(Ticket.id_number_hash, "") == (search or ""),
                ).limit(1)
            )
        ).first()
        if duplicate is not None:
            raise Conflict(
                "duplicate_ticket",
                f"{name} 已有该{'联办' if joint is not None else ''}事项的号 {duplicate.number}，无需重复取号",
                ticket_id=duplicate.id,
            )
    now = uow.clock.now()
    open_now = hours.is_open(uow.rules, now)
    day = hours.local_day(uow.rules, now) if open_now else hours.next_service_day(uow.rules, now)
    ticket = Ticket(
        number=await _next_number(uow, centre_id, department, day),
        service_day=day,
        centre_id=centre_id,
        department_id=department.id,
        item_id=item.id,
        situation_id=situation.id if situation is not None else None,
        bundle_id=joint.bundle.id if joint is not None else None,
        source="direct" if direct else "point",
        extension_point_id=point.id if point is not None else None,
        worker_id=actor.user_id,
        resident=clear,
        resident_sealed=sealed,
        id_number_hash=search,
        priority=priority,
        callback=not open_now and appointment_at is None,
        appointment_at=appointment_at,
        status=TicketStatus.waiting,
        taken_at=now,
        recalls=0,
        transfers=0,
    )
    uow.session.add(ticket)
    await uow.session.flush()
    if joint is not None:
        uow.session.add_all(bundles.case_items(joint, ticket.id))
        await uow.session.flush()
    placement = await placement_of(uow, ticket)
    audit.record(uow, actor, "ticket.take", "ticket", ticket.id, number=ticket.number, item_id=item.id,
                 situation_id=ticket.situation_id, callback=ticket.callback, priority=priority, source=ticket.source,
                 appointment=appointment_at is not None, bundle_id=ticket.bundle_id)
    announce(uow, "ticket.created", ticket, None, **placement.as_dict())
    uow.touch_queue(centre_id, department.id)
    await alerts.evaluate_queue(uow, centre_id, department.id)
    return ticket, placement


async def placement_of(uow: Uow, ticket: Ticket) -> Placement:
    if ticket.status is not TicketStatus.waiting:
        return Placement(0, 0)
    mine = (
        literal(0 if ticket.priority is not None else 1),
        literal(0 if ticket.appointment_at is not None else 1),
        literal(0 if ticket.callback else 1),
        literal(ticket.taken_at, type_=UTCDateTime()),
        literal(ticket.id),
    )
    ahead = await uow.session.scalar(
        select(func.count(Ticket.id)).where(
            Ticket.status == TicketStatus.waiting,
            Ticket.centre_id == ticket.centre_id,
            Ticket.department_id == ticket.department_id,
            Ticket.service_day <= ticket.service_day,
            tuple_(*_order_key()) < tuple_(*mine),
        )
    )
    position = int(ahead or 0) + 1
    return Placement(position, await _estimate(uow, ticket.centre_id, ticket.department_id, position))


async def _estimate(uow: Uow, centre_id: int, department_id: int, position: int) -> int:
    """Estimated wait from the recent handling times of this queue and its open windows."""
    rows = (
        await uow.session.execute(
            select(Ticket.called_at, Ticket.finished_at)
            .where(
                Ticket.centre_id == centre_id,
                Ticket.department_id == department_id,
                Ticket.status == TicketStatus.completed,
                Ticket.called_at.is_not(None),
            )
            .order_by(Ticket.finished_at.desc())
            .limit(RECENT_FOR_ESTIMATE)
        )
    ).all()
    durations = [(f - c).total_seconds() for c, f in rows if c and f and f > c]
    average = sum(durations) / len(durations) if durations else uow.rules.default_service_minutes * 60
    windows = max(1, await org.windows_serving(uow, centre_id, department_id, staffed=True))
    return int(position * average / windows)


async def waiting_placements(uow: Uow, centre_id: int, department_id: int) -> list[dict[str, Any]]:
    """Every waiting ticket of a queue with its position, for the live position push."""
    stmt = (
        select(Ticket.id, Ticket.worker_id, Ticket.number)
        .where(
            Ticket.status == TicketStatus.waiting,
            Ticket.centre_id == centre_id,
            Ticket.department_id == department_id,
        )
        .order_by(Ticket.service_day, *_order_key())
    )
    rows = (await uow.session.execute(stmt)).all()
    if not rows:
        return []
    per_position = await _estimate(uow, centre_id, department_id, 1)
    return [
        {"ticket_id": tid, "worker_id": wid, "number": number, "position": i + 1,
         "estimated_wait_s": per_position * (i + 1)}
        for i, (tid, wid, number) in enumerate(rows)
    ]


def _candidates(uow: Uow, window: org.LockedWindow, *, skip_locked: bool) -> Select[int]:
    today = hours.local_day(uow.rules, uow.clock.now())
    stmt = (
        select(Ticket.id)
        .where(
            Ticket.status == TicketStatus.waiting,
            Ticket.centre_id == window.centre_id,
            Ticket.department_id.in_(window.department_ids),
            Ticket.service_day <= today,
        )
        .order_by(*_order_key())
        .limit(1)
    )
    if uow.dialect == "postgresql":
        stmt = stmt.with_for_update(skip_locked=skip_locked)
    return stmt


async def call_next(uow: Uow, actor: Actor, window_id: int) -> Ticket | None:
    """叫号 — the next ticket for this window, or None when nobody waits."""
    actor.require(Role.clerk)
    if window_id not in actor.window_ids:
        raise Forbidden("not_your_window", "您不在该窗口值守", window_id=window_id)
    window = await org.lock_window(uow, window_id)
    if not window.active:
        raise Conflict("window_closed", "该窗口已关闭")
    # A statement of its own after the lock: on PostgreSQL it sees what the previous holder
    # of the window lock committed (a subquery in the locking statement would not).
    current = (
        await uow.session.scalars(
            select(Ticket).where(org.at_window(window.id)).limit(1)
        )
    ).first()
    if current is not None:
        raise Conflict(
            "window_busy",
            f"窗口正在办理 {current.number} 号，请先办结、过号或转办后再叫号",
            ticket_id=current.id,
            ticket_number=current.number,
        )
    now = uow.clock.now()
    for attempt in range(20):
        # Skipping rows other callers hold keeps clerks from queueing behind each other; when
        # that finds nothing, look once more waiting for the locks, so "nobody waits" is true.
        ticket_id = (await uow.session.execute(_candidates(uow, window, skip_locked=attempt == 0))).scalar()
        if ticket_id is None and attempt == 0 and uow.dialect == "postgresql":
            ticket_id = (await uow.session.execute(_candidates(uow, window, skip_locked=False))).scalar()
        if ticket_id is None:
            return None
        claimed: Ticket | None = (
            await uow.session.scalars(
                select(Ticket)
                .from_statement(
                    update(Ticket)
                    .where(Ticket.id == ticket_id, Ticket.status == TicketStatus.waiting)
                    .values(status=TicketStatus.called, window_id=window.id, clerk_id=actor.user_id,
                            called_at=now, recalls=0)
                    .returning(Ticket)
                )
                .execution_options(populate_existing=True)
            )
        ).first()
        if claimed is not None:
            break
    else:
        raise Conflict("queue_busy", "叫号繁忙，请重试")
    ticket = claimed
    audit.record(uow, actor, "ticket.call", "ticket", ticket.id, number=ticket.number, window_id=window.id)
    announce(uow, "ticket.called", ticket, window_name=window.name)
    uow.touch_queue(ticket.centre_id, ticket.department_id)
    return ticket


async def _load(uow: Uow, ticket_id: int, *, lock: bool = False, refresh: bool = False) -> Ticket:
    stmt = select(Ticket).where(Ticket.id == ticket_id)
    if lock:
        stmt = stmt.with_for_update()
    if refresh or lock:
        stmt = stmt.execution_options(populate_existing=True)
    ticket = (await uow.session.scalars(stmt)).first()
    if ticket is None:
        raise NotFound("ticket_not_found", "号不存在", ticket_id=ticket_id)
    return ticket


async def get_ticket(uow: Uow, actor: Actor, ticket_id: int) -> tuple[Ticket, dict[str, Any]]:
    """The ticket and what a reader needs beside it: place in line, estimated wait, and the
    name of the window it was called to (a reloaded worker page can say "请到 … 云窗口")."""
    ticket = await _load(uow, ticket_id)
    if not can_see(actor, ticket):
        # Same answer as an unknown id: a stranger learns nothing about other points' residents.
        raise NotFound("ticket_not_found", "号不存在", ticket_id=ticket_id)
    audit.record(uow, actor, "ticket.read", "ticket", ticket.id)
    window = await uow.session.get(CloudWindow, ticket.window_id) if ticket.window_id else None
    return ticket, {**(await placement_of(uow, ticket)).as_dict(), "window_name": window.name if window else None}


async def resident_details(uow: Uow, actor: Actor, ticket_id: int) -> dict[str, Any]:
    """办事群众完整信息 — name, ID number, phone in full, for the case's worker and clerk only;
    every such read is written to the audit log."""
    ticket = await _load(uow, ticket_id)
    if not can_see(actor, ticket):
        raise NotFound("ticket_not_found", "号不存在", ticket_id=ticket_id)
    if serves(actor, ticket) is None:
        raise Forbidden("not_serving_case", "只有办理本件的社区工作人员和云窗口工作人员可以查看完整信息")
    audit.record(uow, actor, "resident.read", "ticket", ticket.id)
    return {"ticket_id": ticket.id, "masked": False,
            **personal.full_resident(uow.sealer, ticket.resident, ticket.resident_sealed)}


async def list_tickets(
    uow: Uow,
    actor: Actor,
    *,
    status: TicketStatus | None = None,
    department_id: int | None = None,
    limit: int = 200,
) -> list[Ticket]:
    actor.require(Role.worker, Role.clerk, Role.supervisor, Role.admin, Role.resident)
    stmt = select(Ticket).where(visible_tickets(actor)).order_by(Ticket.id.desc()).limit(max(1, min(limit, 500)))
    if status is not None:
        stmt = stmt.where(Ticket.status == status)
    if department_id is not None:
        stmt = stmt.where(Ticket.department_id == department_id)
    tickets = list((await uow.session.scalars(stmt)).all())
    if actor.role not in (Role.worker, Role.resident):
        audit.record(uow, actor, "ticket.list", "ticket", "", status=status.value if status else None,
                     department_id=department_id, count=len(tickets))
    return tickets


async def for_action(uow: Uow, actor: Actor, ticket_id: int, action: str) -> Ticket:
    """Load and lock a ticket, check the actor may do ``action`` to it and that it is legal."""
    ticket = await _load(uow, ticket_id, lock=True)
    if not can_see(actor, ticket):
        raise NotFound("ticket_not_found", "号不存在", ticket_id=ticket_id)
    allowed = ALLOWED_FROM[action]
    if action == "cancel" and actor.role in (Role.worker, Role.resident):
        if ticket.status is not TicketStatus.waiting:
            raise Conflict("illegal_transition", "已叫号的业务请由云窗口取消", action=action,
                           status=ticket.status.value)
        return ticket
    if actor.role not in (Role.clerk, Role.admin) or (
        actor.role is Role.clerk and ticket.window_id not in actor.window_ids
    ):
        raise Forbidden("not_your_ticket", "该号不在您的窗口办理", ticket_id=ticket_id)
    if ticket.status not in allowed:
        raise Conflict(
            "illegal_transition",
            f"当前状态“{STATUS_NAMES[ticket.status]}”不能执行此操作",
            action=action,
            status=ticket.status.value,
        )
    return ticket


def record_change(uow: Uow, actor: Actor, ticket: Ticket, action: str, **detail: Any) -> None:
    audit.record(uow, actor, f"ticket.{action}", "ticket", ticket.id, number=ticket.number, **detail)
    announce(uow, f"ticket.{action.replace('_', '-')}", ticket)
    announce(uow, "ticket.updated", ticket)


async def start_service(uow: Uow, actor: Actor, ticket_id: int) -> Ticket:
    """开始办理 — the call is up; the clerk is serving this resident."""
    ticket = await for_action(uow, actor, ticket_id, "start")
    ticket.status = TicketStatus.in_service
    ticket.started_at = uow.clock.now()
    record_change(uow, actor, ticket, "start")
    return ticket


async def recall(uow: Uow, actor: Actor, ticket_id: int) -> Ticket:
    """重呼 — call the same ticket again."""
    ticket = await for_action(uow, actor, ticket_id, "recall")
    ticket.recalls += 1
    record_change(uow, actor, ticket, "recall", recalls=ticket.recalls)
    return ticket


async def no_show(uow: Uow, actor: Actor, ticket_id: int) -> Ticket:
    """过号 — after N recalls nobody answered at the extension point."""
    ticket = await for_action(uow, actor, ticket_id, "no_show")
    needed = uow.rules.no_show_after_recalls
    if ticket.recalls < needed:
        raise Conflict("recall_first", f"请先重呼 {needed} 次（已重呼 {ticket.recalls} 次）再标记过号",
                       recalls=ticket.recalls, needed=needed)
    ticket.status = TicketStatus.no_show
    ticket.finished_at = uow.clock.now()
    record_change(uow, actor, ticket, "no_show")
    return ticket


async def transfer(
    uow: Uow, actor: Actor, ticket_id: int, *, department_id: int, centre_id: int | None = None,
    reason: str = "",
) -> Ticket:
    """转办 — hand the case to another department's queue, keeping the original take time."""
    ticket = await for_action(uow, actor, ticket_id, "transfer")
    if ticket.bundle_id is not None:
        raise Conflict("bundle_case", "一事联办件按部门依次办理：办结本部门事项后自动转到下一个部门，不能转办")
    target = await uow.session.get(Department, department_id)
    if target is None:
        raise NotFound("department_not_found", "部门不存在", department_id=department_id)
    target_centre = centre_id if centre_id is not None else ticket.centre_id
    if (target_centre, department_id) == (ticket.centre_id, ticket.department_id):
        raise Invalid("transfer_to_same_queue", "不能转办到同一部门")
    if await org.windows_serving(uow, target_centre, department_id) == 0:
        raise Conflict("no_window_for_department", f"{target.name} 暂无云窗口受理，无法转办")
    ticket.transfers += 1
    await requeue(uow, actor, ticket, centre_id=target_centre, department=target, action="transfer", reason=reason)
    return ticket


async def requeue(uow: Uow, actor: Actor, ticket: Ticket, *, centre_id: int, department: Department,
                  item_id: int | None = None, action: str, **detail: Any) -> None:
    """Put a ticket being served into another queue (a transfer; a bundle case on to its next
    department), waiting: a new number there, the original take time kept (its place in line),
    its wait for the wait alert counted from now (``queued_at``: its time in the earlier
    queue and at the window is not a wait in this one). Audited as ``ticket.{action}``; the
    resident's worker, the clerk who let it go and both queues' supervisors are told."""
    origin = (ticket.centre_id, ticket.department_id, ticket.number)
    now = uow.clock.now()
    today = hours.local_day(uow.rules, now)
    ticket.number = await _next_number(uow, centre_id, department, today)
    ticket.centre_id, ticket.department_id = centre_id, department.id
    if item_id is not None:
        ticket.item_id = item_id
    ticket.service_day = min(ticket.service_day, today)
    ticket.status = TicketStatus.waiting
    old_clerk = ticket.clerk_id
    ticket.window_id = ticket.clerk_id = None
    ticket.called_at = ticket.started_at = None
    ticket.recalls = 0
    ticket.wait_alerted_at = None
    ticket.queued_at = now
    audit.record(uow, actor, f"ticket.{action}", "ticket", ticket.id, from_number=origin[2],
                 to_number=ticket.number, department_id=department.id, **detail)
    extra = {**(await placement_of(uow, ticket)).as_dict(), "previous_number": origin[2]}
    audience = Audience(
        users=tuple(sorted({ticket.worker_id, *((old_clerk,) if old_clerk else ())})),
        queue_supervisors=((origin[0], origin[1]), (centre_id, department.id)),
    )
    if action == "transfer":
        announce(uow, "ticket.transfer", ticket, audience, **extra)
    announce(uow, "ticket.updated", ticket, audience, **extra)
    uow.touch_queue(origin[0], origin[1])
    uow.touch_queue(centre_id, department.id)
    await alerts.evaluate_queue(uow, centre_id, department.id)


async def complete(uow: Uow, actor: Actor, ticket_id: int, *, result: str, note: str = "") -> Ticket:
    """办结 — the case is finished with a result."""
    if result not in RESULTS:
        raise Invalid("unknown_result", "办理结果不正确", allowed=sorted(RESULTS))
    ticket = await for_action(uow, actor, ticket_id, "complete")
    if ticket.bundle_id is not None:
        raise Conflict("bundle_case", "一事联办件请逐项办结本窗口的事项（POST /api/tickets/{id}/items/complete）")
    if result == "done":
        blocking = await documents.blocking_materials(uow, ticket.id)
        if blocking:
            names = "、".join(f"{m['name']}（{m['state_name']}）" for m in blocking)
            raise Conflict(
                "material_missing",
                f"必需材料未齐：{names}。可退回补正，或以“材料不全”办结",
                materials=[{"material_id": m["material_id"], "name": m["name"], "state": m["state"]} for m in blocking],
            )
    ticket.status = TicketStatus.completed
    ticket.result, ticket.result_note = result, note
    ticket.finished_at = uow.clock.now()
    record_change(uow, actor, ticket, "complete", result=result)
    if result == "done":  # 证照到期提醒: the holder's certificate this item renews
        await certificates.renewed_by_case(uow, actor, ticket, ticket.item_id)
    uow.touch_queue(ticket.centre_id, ticket.department_id)
    return ticket


async def cancel(uow: Uow, actor: Actor, ticket_id: int, *, reason: str = "") -> Ticket:
    """取消 — the worker withdraws a waiting ticket, or the clerk cancels the one at the window."""
    ticket = await for_action(uow, actor, ticket_id, "cancel")
    ticket.status = TicketStatus.cancelled
    ticket.finished_at = uow.clock.now()
    record_change(uow, actor, ticket, "cancel", reason=reason)
    uow.touch_queue(ticket.centre_id, ticket.department_id)
    return ticket


async def rate(uow: Uow, actor: Actor, ticket_id: int, *, score: int, comment: str = "") -> Ticket:
    """好差评 — the resident rates the service on the worker's screen (or their own phone), once."""
    actor.require(Role.worker, Role.resident)
    if not 1 <= score <= 5:
        raise Invalid("score_out_of_range", "评价须为 1 到 5 分")
    ticket = await _load(uow, ticket_id, lock=True)
    if not can_see(actor, ticket):
        raise NotFound("ticket_not_found", "号不存在", ticket_id=ticket_id)
    if ticket.status is not TicketStatus.completed:
        raise Conflict("not_completed", "业务办结后才能评价")
    if ticket.rating_score is not None:
        raise Conflict("already_rated", "该业务已评价")
    ticket.rating_score, ticket.rating_comment = score, comment
    ticket.rated_at = uow.clock.now()
    audit.record(uow, actor, "ticket.rate", "ticket", ticket.id, score=score)
    announce(uow, "ticket.rated", ticket)
    await ledger.rectification(uow, ticket)  # 差评 (1 or 2): a 整改 work order for the department
    await reports.unroll(uow, ticket.service_day)  # a late rating: its day's report figures live again
    return ticket


async def set_situation(uow: Uow, actor: Actor, ticket_id: int, situation_id: int | None) -> Ticket:
    """办理情形 of an open case, chosen or corrected by the people serving it (the worker who took
    it, the clerk it is called to): one of the item's situations in use, or none (the item's
    general checklist). Not once a document is filed (or being uploaded) under a line of the
    case's checklist: the lines would change under it."""
    actor.require(Role.worker, Role.clerk)
    ticket = await _load(uow, ticket_id, lock=True)
    if serves(actor, ticket) is None:
        raise NotFound("ticket_not_found", "号不存在", ticket_id=ticket_id)
    if not ticket.status.is_open:
        raise Conflict("illegal_transition", "业务已结束，不能更改办理情形", status=ticket.status.value)
    item = await uow.session.get(ServiceItem, ticket.item_id)
    assert item is not None
    situation = await situations.of_item(uow, item, situation_id)
    if ticket.situation_id == situation_id:
        return ticket
    filed = await uow.session.scalar(select(func.count(Document.id)).where(
        Document.ticket_id == ticket.id, Document.material_id.is_not(None)))
    uploading = await uow.session.scalar(select(func.count(UploadSession.id)).where(
        UploadSession.ticket_id == ticket.id, UploadSession.material_id.is_not(None),
        UploadSession.document_id.is_(None)))
    if filed or uploading:
        raise Conflict("situation_has_documents", "已按当前材料清单上传了材料，不能再更改办理情形")
    before, ticket.situation_id = ticket.situation_id, situation.id if situation is not None else None
    audit.record(uow, actor, "ticket.situation", "ticket", ticket.id, situation_id=ticket.situation_id,
                 previous_situation_id=before)
    announce(uow, "ticket.updated", ticket)
    return ticket


async def queues(uow: Uow, *, centre_id: int | None = None, department_id: int | None = None) -> list[dict[str, Any]]:
    """Every served queue (centre × department with a window) with its figures and level."""
    served = select(CloudWindow.centre_id, wd.c.department_id).join(wd, wd.c.window_id == CloudWindow.id).where(
        CloudWindow.active.is_(True)
    )
    if centre_id is not None:
        served = served.where(CloudWindow.centre_id == centre_id)
    if department_id is not None:
        served = served.where(wd.c.department_id == department_id)
    pairs: dict[tuple[int, int], int] = {}
    for c, d in (await uow.session.execute(served)).all():
        pairs[(c, d)] = pairs.get((c, d), 0) + 1
    figures = await stats.queue_stats(uow, centre_id=centre_id, department_id=department_id)
    result = []
    for key in sorted(set(pairs) | set(figures)):
        s = figures.get(key, stats.QueueStat(*key))
        result.append({
            "centre_id": key[0],
            "department_id": key[1],
            "windows_open": pairs.get(key, 0),
            "waiting": s.waiting,
            "serving": s.serving,
            "longest_wait_s": int(s.longest_wait_s),
            "warning_level": s.level(uow.rules),
        })
    return result
