"""组织 — centres, extension points, departments and cloud windows, tidal windows included."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, func, select
from sqlalchemy.orm import selectinload

from server.domain import audit
from server.domain.access import watches
from server.domain.context import Actor, Uow
from server.domain.errors import Conflict, Invalid, NotFound
from server.domain.views import department_view, window_view
from server.events import Audience
from server.models import (
    Centre,
    CloudWindow,
    Department,
    ExtensionPoint,
    Role,
    Ticket,
    TicketStatus,
    User,
    clerk_windows,
)
from server.models import (
    window_departments as wd,
)


async def org_tree(uow: Uow) -> dict[str, Any]:
    centres = (await uow.session.scalars(select(Centre).order_by(Centre.id))).all()
    points = (await uow.session.scalars(select(ExtensionPoint).order_by(ExtensionPoint.id))).all()
    departments = (await uow.session.scalars(select(Department).order_by(Department.id))).all()
    windows = (
        await uow.session.scalars(
            select(CloudWindow).options(selectinload(CloudWindow.departments)).order_by(CloudWindow.id)
        )
    ).all()
    by_centre: dict[int, list[dict[str, Any]]] = {}
    for p in points:
        by_centre.setdefault(p.centre_id, []).append({"id": p.id, "name": p.name})
    windows_by_centre: dict[int, list[dict[str, Any]]] = {}
    for w in windows:
        windows_by_centre.setdefault(w.centre_id, []).append(window_view(w))
    return {
        "departments": [department_view(d) for d in departments],
        "centres": [
            {
                "id": c.id,
                "name": c.name,
                "level": c.level.value,
                "parent_id": c.parent_id,
                "extension_points": by_centre.get(c.id, []),
                "windows": windows_by_centre.get(c.id, []),
            }
            for c in centres
        ],
    }


async def get_window(uow: Uow, window_id: int, *, lock: bool = False) -> CloudWindow:
    stmt = select(CloudWindow).options(selectinload(CloudWindow.departments)).where(CloudWindow.id == window_id)
    if lock:
        stmt = stmt.with_for_update(of=CloudWindow)
    window = (await uow.session.scalars(stmt)).first()
    if window is None:
        raise NotFound("window_not_found", "窗口不存在", window_id=window_id)
    return window


@dataclass(frozen=True)
class LockedWindow:
    """A window row locked for the rest of the transaction, with what call-next needs."""

    id: int
    name: str
    centre_id: int
    active: bool
    department_ids: tuple[int, ...]


async def lock_window(uow: Uow, window_id: int) -> LockedWindow:
    """One statement: the window row locked (PostgreSQL) and the departments it serves."""
    rows = (
        await uow.session.execute(
            select(CloudWindow.id, CloudWindow.name, CloudWindow.centre_id, CloudWindow.active, wd.c.department_id)
            .join(wd, wd.c.window_id == CloudWindow.id)
            .where(CloudWindow.id == window_id)
            .with_for_update(of=CloudWindow)
        )
    ).all()
    if not rows:
        raise NotFound("window_not_found", "窗口不存在", window_id=window_id)
    first = rows[0]
    return LockedWindow(first.id, first.name, first.centre_id, first.active, tuple(r.department_id for r in rows))


async def _departments(uow: Uow, ids: list[int]) -> list[Department]:
    if not ids:
        raise Invalid("departments_required", "窗口至少服务一个部门")
    found = list((await uow.session.scalars(select(Department).where(Department.id.in_(ids)))).all())
    if len(found) != len(set(ids)):
        raise NotFound("department_not_found", "部门不存在", department_ids=ids)
    return found


async def _centre(uow: Uow, centre_id: int) -> Centre:
    centre = await uow.session.get(Centre, centre_id)
    if centre is None:
        raise NotFound("centre_not_found", "服务中心不存在", centre_id=centre_id)
    return centre


async def save_window(
    uow: Uow,
    actor: Actor,
    *,
    window_id: int | None,
    name: str,
    centre_id: int,
    department_ids: list[int],
    active: bool = True,
) -> CloudWindow:
    actor.require(Role.admin)
    await _centre(uow, centre_id)
    departments = await _departments(uow, department_ids)
    if window_id is None:
        window = CloudWindow(name=name, centre_id=centre_id, active=active, tidal=False, departments=departments)
        uow.session.add(window)
    else:
        window = await get_window(uow, window_id)
        if not active and window.active:
            await _ensure_idle(uow, window)
        window.name, window.centre_id, window.active = name, centre_id, active
        window.departments = departments
    await uow.session.flush()
    audit.record(uow, actor, "window.save", "window", window.id, name=name, department_ids=department_ids)
    return window


def at_window(window_id: int | SQLColumnExpression[int]) -> ColumnElement[bool]:
    """The ticket called or being served at this window (a window has at most one): the one
    condition the queue's call-next, closing a window and the tidal sweep all ask."""
    return and_(Ticket.window_id == window_id, Ticket.status.in_(TicketStatus.in_call_states()))


async def _ensure_idle(uow: Uow, window: CloudWindow) -> None:
    busy = await uow.session.scalar(
        select(Ticket.number).where(at_window(window.id)).limit(1)
    )
    if busy is not None:
        raise Conflict("window_busy", f"窗口正在办理 {busy} 号，请先办结或转办", ticket_number=busy)


async def open_tidal_window(
    uow: Uow,
    actor: Actor,
    *,
    department_id: int,
    clerk_id: int,
    centre_id: int | None = None,
    minutes: int | None = None,
    name: str | None = None,
) -> CloudWindow:
    """开启潮汐窗口 — put one more clerk on a department's queue for a while."""
    actor.require(Role.supervisor, Role.admin)
    if actor.role is Role.supervisor and department_id not in actor.department_ids:
        raise NotFound("department_not_found", "您不负责该部门", department_id=department_id)
    (department,) = await _departments(uow, [department_id])
    if centre_id is None:
        top = select(Centre.id).where(Centre.parent_id.is_(None))
        if actor.role is Role.supervisor:  # the supervisor's own highest centre
            top = select(Centre.id).where(Centre.id.in_(actor.centre_ids)).order_by(Centre.parent_id.is_not(None))
        centre_id = await uow.session.scalar(top.order_by(Centre.id).limit(1))
        if centre_id is None:
            raise NotFound("centre_not_found", "没有区级云办中心")
    await _centre(uow, centre_id)
    if not watches(actor, centre_id, department_id):
        raise NotFound("centre_not_found", "您不负责该中心", centre_id=centre_id)
    clerk = (
        await uow.session.scalars(select(User).options(selectinload(User.windows)).where(User.id == clerk_id))
    ).first()
    if clerk is None or clerk.role is not Role.clerk or not clerk.active:
        raise NotFound("clerk_not_found", "云窗口工作人员不存在", clerk_id=clerk_id)
    if minutes is not None and not 5 <= minutes <= 12 * 60:
        raise Invalid("minutes_out_of_range", "潮汐窗口开放时长应在 5 到 720 分钟之间")
    now = uow.clock.now()
    window = CloudWindow(
        name=name or f"{department.name}潮汐窗口",
        centre_id=centre_id,
        active=True,
        tidal=True,
        opened_at=now,
        closes_at=now + timedelta(minutes=minutes) if minutes else None,
        opened_by_id=actor.user_id or None,
        departments=[department],
    )
    uow.session.add(window)
    await uow.session.flush()
    clerk.windows = [*clerk.windows, window]
    audit.record(
        uow, actor, "tidal.open", "window", window.id, department_id=department_id, clerk_id=clerk_id, minutes=minutes
    )
    payload = {**window_view(window), "clerk_id": clerk_id}
    uow.emit("tidal.opened", payload, _tidal_audience(centre_id, department_id, clerk_id))
    uow.touch_queue(centre_id, department_id)
    return window


async def close_tidal_window(uow: Uow, actor: Actor, window_id: int, *, reason: str = "manual") -> CloudWindow:
    actor.require(Role.supervisor, Role.admin)
    window = await get_window(uow, window_id, lock=True)
    department_ids = [d.id for d in window.departments]
    if not any(watches(actor, window.centre_id, d) for d in department_ids):
        raise NotFound("window_not_found", "窗口不存在", window_id=window_id)
    if not window.tidal:
        raise Conflict("not_tidal", "只能关闭潮汐窗口；常设窗口请由管理员停用")
    if not window.active:
        raise Conflict("window_closed", "该潮汐窗口已关闭")
    await _ensure_idle(uow, window)
    window.active = False
    window.closed_at = uow.clock.now()
    clerk_ids = list(
        (await uow.session.scalars(select(clerk_windows.c.user_id).where(clerk_windows.c.window_id == window.id))).all()
    )
    audit.record(uow, actor, "tidal.close", "window", window.id, reason=reason)
    for department_id in department_ids:
        uow.emit(
            "tidal.closed",
            {**window_view(window), "reason": reason},
            _tidal_audience(window.centre_id, department_id, *clerk_ids),
        )
        uow.touch_queue(window.centre_id, department_id)
    return window


async def due_tidal_windows(uow: Uow) -> list[int]:
    """Tidal windows whose time is up and that serve nobody right now."""
    now = uow.clock.now()
    rows = await uow.session.scalars(
        select(CloudWindow.id).where(
            CloudWindow.tidal.is_(True),
            CloudWindow.active.is_(True),
            CloudWindow.closes_at.is_not(None),
            CloudWindow.closes_at <= now,
            ~select(Ticket.id)
            .where(at_window(CloudWindow.id))
            .exists(),
        )
    )
    return list(rows.all())


async def tidal_windows(uow: Uow, *, since_day_start: Any) -> list[CloudWindow]:
    stmt = (
        select(CloudWindow)
        .options(selectinload(CloudWindow.departments))
        .where(CloudWindow.tidal.is_(True))
        .where((CloudWindow.active.is_(True)) | (CloudWindow.closed_at >= since_day_start))
        .order_by(CloudWindow.id)
    )
    return list((await uow.session.scalars(stmt)).all())


async def windows_serving(uow: Uow, centre_id: int, department_id: int, *, staffed: bool = False) -> int:
    """Open windows of a queue; ``staffed`` counts only those a clerk is bound to."""
    stmt = (
        select(func.count(func.distinct(CloudWindow.id)))
        .join(wd, wd.c.window_id == CloudWindow.id)
        .where(CloudWindow.centre_id == centre_id, CloudWindow.active.is_(True), wd.c.department_id == department_id)
    )
    if staffed:
        stmt = stmt.join(clerk_windows, clerk_windows.c.window_id == CloudWindow.id)
    return int(await uow.session.scalar(stmt) or 0)


def _tidal_audience(centre_id: int, department_id: int, *user_ids: int) -> Audience:
    return Audience(
        users=tuple(user_ids),
        queue_clerks=((centre_id, department_id),),
        queue_supervisors=((centre_id, department_id),),
        admins=True,
    )
