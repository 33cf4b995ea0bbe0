"""事项目录 — service items and their materials checklists."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from server.domain import audit
from server.domain.context import Actor, Uow
from server.domain.errors import Conflict, NotFound
from server.models import CentreLevel, Department, Material, Role, ServiceItem, Situation

# What a page shows of an item: its checklist, its questions, its situations with theirs.
_WITH_ALL = (
    selectinload(ServiceItem.materials),
    selectinload(ServiceItem.questions),
    selectinload(ServiceItem.situations).selectinload(Situation.materials),
)


def sees_inactive(actor: Actor, asked: bool) -> bool:
    """Stopped items and situations are listed to administrators who ask; others see what is offered."""
    return asked and actor.role is Role.admin


async def list_items(
    uow: Uow,
    *,
    q: str | None = None,
    department_id: int | None = None,
    level: CentreLevel | None = None,
    include_inactive: bool = False,
) -> list[ServiceItem]:
    stmt = select(ServiceItem).options(*_WITH_ALL).order_by(ServiceItem.code)
    if not include_inactive:
        stmt = stmt.where(ServiceItem.active.is_(True))
    if department_id is not None:
        stmt = stmt.where(ServiceItem.department_id == department_id)
    if level is not None:
        stmt = stmt.where(ServiceItem.level == level)
    if q:
        like = f"%{q.strip()}%"
        stmt = stmt.where(
            or_(ServiceItem.name.like(like), ServiceItem.initials.like(like.lower()), ServiceItem.code.like(like))
        )
    return list((await uow.session.scalars(stmt)).all())


async def get_item(uow: Uow, item_id: int) -> ServiceItem:
    item = (
        await uow.session.scalars(
            select(ServiceItem).options(*_WITH_ALL).where(ServiceItem.id == item_id)
        )
    ).first()
    if item is None:
        raise NotFound("item_not_found", "事项不存在", item_id=item_id)
    return item


async def save_item(
    uow: Uow,
    actor: Actor,
    *,
    item_id: int | None,
    code: str,
    name: str,
    department_id: int,
    level: CentreLevel,
    materials: list[dict[str, Any]],
    description: str = "",
    initials: str = "",
    active: bool = True,
) -> ServiceItem:
    """Create an item, or replace an existing one's fields and checklist."""
    actor.require(Role.admin)
    if await uow.session.get(Department, department_id) is None:
        raise NotFound("department_not_found", "部门不存在", department_id=department_id)
    clash = await uow.session.scalar(select(ServiceItem.id).where(ServiceItem.code == code))
    if clash is not None and clash != item_id:
        raise Conflict("item_code_taken", f"事项编码 {code} 已存在")
    if item_id is None:
        item = ServiceItem(code=code, materials=[], questions=[], situations=[])
        uow.session.add(item)
    else:
        item = await get_item(uow, item_id)
    item.code, item.name, item.department_id, item.level = code, name, department_id, level
    item.description, item.initials, item.active = description, initials, active
    item.materials = [
        Material(position=i, name=m["name"], required=bool(m.get("required", True)), note=m.get("note", ""))
        for i, m in enumerate(materials)
    ]
    await uow.session.flush()
    audit.record(uow, actor, "item.save", "item", item.id, code=code, name=name)
    return await get_item(uow, item.id)
