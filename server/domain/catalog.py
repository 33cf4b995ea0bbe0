"""事项目录 — service items and their materials checklists."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from server.domain import audit
from server.domain.context import Actor, Uow
from server.domain.errors import Conflict, Invalid, NotFound
from server.models import (
    CentreLevel,
    Department,
    Document,
    Material,
    Role,
    ServiceItem,
    Situation,
    UploadSession,
)

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
    produces: Sequence[str] = (),
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
    await rewrite_lines(uow, item.materials, materials, lambda: Material(item_id=item.id))
    item.produces = normalised_products(produces)
    await uow.session.flush()
    audit.record(uow, actor, "item.save", "item", item.id, code=code, name=name)
    return await get_item(uow, item.id)


async def rewrite_lines(
    uow: Uow, lines: list[Material], specs: Sequence[Mapping[str, Any]], new_line: Callable[[], Material]
) -> None:
    """Make the checklist ``lines`` (a relationship's list, changed in place) say ``specs``, in
    their order. A spec names the line it changes by ``id``; one without an id keeps the line of
    the same name, if any, else is a new line. A kept line keeps its id, so documents filed under
    it stay filed under it when it is renamed or moved. Dropping a line some case's document (or
    upload in progress) is filed under is refused with 409 ``material_in_use``; an id that is
    not one of these lines is 422 ``material_not_found``. Nothing changes when refused."""
    by_id = {m.id: m for m in lines}
    claimed: set[int] = set()
    chosen: list[Material | None] = []
    for spec in specs:
        wanted = spec.get("id")
        if wanted is not None and (wanted not in by_id or wanted in claimed):
            raise Invalid("material_not_found", "材料项不属于该清单（或重复出现）", material_id=wanted)
        if wanted is None:
            wanted = next((m.id for m in lines if m.name == spec["name"] and m.id not in claimed), None)
        if wanted is not None:
            claimed.add(wanted)
        chosen.append(by_id[wanted] if wanted is not None else None)
    dropped = [m.id for m in lines if m.id not in claimed and m.id is not None]
    if dropped and (
        await uow.session.scalar(select(Document.id).where(Document.material_id.in_(dropped)).limit(1))
        or await uow.session.scalar(select(UploadSession.id).where(UploadSession.material_id.in_(dropped)).limit(1))
    ):
        raise Conflict("material_in_use", "删去的材料项已有办件上传了材料，不能删除；可修改其名称或说明")
    kept: list[Material] = []
    for i, (spec, line) in enumerate(zip(specs, chosen, strict=True)):
        line = line if line is not None else new_line()
        line.position, line.name = i, spec["name"]
        line.required, line.note = bool(spec.get("required", True)), spec.get("note", "")
        kept.append(line)
    lines[:] = kept


def normalised_products(names: Sequence[str]) -> list[str]:
    """What an item issues (its 证照), each named once, blanks dropped, in the order given."""
    return list(dict.fromkeys(n.strip() for n in names if n.strip()))
