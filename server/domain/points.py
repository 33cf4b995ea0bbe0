"""延伸点管理 — the administrator adds extension points, renames them, moves them to another town
centre, stops and resumes them, and imports them from a CSV or XLSX file (docs/network.md).

- A point belongs to one town centre (镇街便民服务中心) and is named uniquely within it.
- A stopped point (``active`` false) keeps its workers, its tickets and its history, but its
  workers take no tickets (``queue.take_ticket`` refuses with ``extension_point_disabled``) and
  the network view no longer counts it among the points in use.
- The import (延伸点名称, 所属镇街, 地址, 联系电话, 状态 — the first two required) checks each row on
  its own: good rows are created or updated by (town, name); a bad row is reported with its row
  number, column and reason and changes nothing. 地址 and 联系电话 left blank keep what the point
  has; 状态 is 启用 or 停用 (blank: a new point is in use, an existing one stays as it is).
- The contact phone is the point's office number, posted at its door: shown in full.
- Workers are bound to a point through their accounts (``accounts``: POST/PATCH /api/users).
Every change is audited.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from server.domain import audit, tables
from server.domain.context import Actor, Uow
from server.domain.errors import Conflict, Invalid, NotFound
from server.domain.tables import TableRow
from server.models import Centre, CentreLevel, ExtensionPoint, Role

MAX_NAME, MAX_ADDRESS = 100, 200
PHONE = re.compile(r"^[0-9][0-9\- ]{5,18}[0-9]$")
TOWN_SUFFIX = "便民服务中心"
LOCK = "extension-points"  # one writer of points at a time: (town, name) stays unique without a race

COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("延伸点名称", "延伸点", "名称", "name"),
    "town": ("所属镇街", "所属镇（街道）", "镇街", "所属中心", "town"),
    "address": ("地址", "详细地址", "address"),
    "phone": ("联系电话", "电话", "办公电话", "contact_phone"),
    "state": ("状态", "state"),
}
REQUIRED = ("name", "town")
HEADER = "延伸点名称、所属镇街、地址（可选）、联系电话（可选）、状态（可选：启用/停用）"
STATES = {"启用": True, "停用": False}


def point_view(p: ExtensionPoint) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "centre_id": p.centre_id, "address": p.address,
            "contact_phone": p.contact_phone, "active": p.active,
            "last_connected_at": p.last_connected_at.isoformat() if p.last_connected_at else None}


def _name(value: str) -> str:
    name = value.strip()
    if not name or len(name) > MAX_NAME:
        raise Invalid("point_name_invalid", f"请填写延伸点名称（不超过 {MAX_NAME} 字）")
    return name


def _address(value: str) -> str:
    address = value.strip()
    if len(address) > MAX_ADDRESS:
        raise Invalid("address_too_long", f"地址不超过 {MAX_ADDRESS} 字")
    return address


def phone_problem(value: str) -> str | None:
    """Why this is not a contact phone (blank is fine: none given), or None."""
    if value and (not PHONE.match(value) or sum(c.isdigit() for c in value) < 7):
        return "联系电话应为 7–20 位数字（可含 - 和空格），如 0574-87654321"
    return None


def _phone(value: str) -> str:
    phone = value.strip()
    reason = phone_problem(phone)
    if reason:
        raise Invalid("contact_phone_invalid", reason)
    return phone


async def _town(uow: Uow, centre_id: int) -> Centre:
    centre = await uow.session.get(Centre, centre_id)
    if centre is None:
        raise NotFound("centre_not_found", "服务中心不存在", centre_id=centre_id)
    if centre.level is not CentreLevel.town:
        raise Invalid("centre_not_town", "延伸点须属于一个镇（街道）便民服务中心", centre_id=centre_id)
    return centre


async def get_point(uow: Uow, point_id: int) -> ExtensionPoint:
    point = await uow.session.get(ExtensionPoint, point_id)
    if point is None:
        raise NotFound("extension_point_not_found", "延伸点不存在", extension_point_id=point_id)
    return point


async def _ensure_free(uow: Uow, town: Centre, name: str, point_id: int | None = None) -> None:
    same = await uow.session.scalar(select(ExtensionPoint.id).where(
        ExtensionPoint.centre_id == town.id, ExtensionPoint.name == name))
    if same is not None and same != point_id:
        raise Conflict("extension_point_exists", f"{town.name}已有延伸点“{name}”", extension_point_id=same)


async def create_point(uow: Uow, actor: Actor, *, name: str, centre_id: int, address: str = "",
                       contact_phone: str = "") -> ExtensionPoint:
    """新增延伸点 — in use at once; its workers are added as accounts bound to it."""
    actor.require(Role.admin)
    name, address, contact_phone = _name(name), _address(address), _phone(contact_phone)
    town = await _town(uow, centre_id)
    await uow.serialize(LOCK)
    await _ensure_free(uow, town, name)
    point = ExtensionPoint(name=name, centre_id=town.id, address=address, contact_phone=contact_phone, active=True)
    uow.session.add(point)
    await uow.session.flush()
    audit.record(uow, actor, "extension_point.create", "extension_point", point.id, name=name, centre_id=town.id)
    return point


async def update_point(uow: Uow, actor: Actor, point_id: int, *, name: str | None = None,
                       centre_id: int | None = None, address: str | None = None, contact_phone: str | None = None,
                       active: bool | None = None) -> ExtensionPoint:
    """改名、迁移到另一个镇街、停用或启用 — what is not given stays. Workers move with their point;
    tickets already taken stay in the queues they joined."""
    actor.require(Role.admin)
    await uow.serialize(LOCK)
    point = await get_point(uow, point_id)
    new_name = _name(name) if name is not None else point.name
    town = await _town(uow, centre_id) if centre_id is not None else await uow.session.get(Centre, point.centre_id)
    assert town is not None
    changed: dict[str, Any] = {}
    if (new_name, town.id) != (point.name, point.centre_id):
        await _ensure_free(uow, town, new_name, point.id)
    if new_name != point.name:
        changed["name"] = {"from": point.name, "to": new_name}
        point.name = new_name
    if town.id != point.centre_id:
        changed["centre_id"] = {"from": point.centre_id, "to": town.id}
        point.centre_id = town.id
    if address is not None and _address(address) != point.address:
        point.address = changed["address"] = _address(address)
    if contact_phone is not None and _phone(contact_phone) != point.contact_phone:
        point.contact_phone = changed["contact_phone"] = _phone(contact_phone)
    if active is not None and active != point.active:
        point.active = changed["active"] = active
    if changed:
        audit.record(uow, actor, "extension_point.update", "extension_point", point.id, **changed)
    return point


# --- import -----------------------------------------------------------------------------------


def read_table(data: bytes) -> list[TableRow]:
    """The points' rows of a CSV or XLSX file (``tables.read_table``). Blocking: call it in a thread."""
    return tables.read_table(data, COLUMNS, REQUIRED, HEADER)


@dataclass
class _Good:
    line: int
    town_id: int
    name: str
    address: str
    phone: str
    active: bool | None


def _check(row: TableRow, towns: dict[str, Centre]) -> tuple[_Good | None, list[tuple[str, str]]]:
    cells = row.cells
    problems: list[tuple[str, str]] = []
    name = tables.text(cells.get("name"))
    if not name or len(name) > MAX_NAME:
        problems.append(("延伸点名称", f"延伸点名称不能为空（不超过 {MAX_NAME} 字）"))
    town_name = tables.text(cells.get("town")).replace(" ", "")
    town = towns.get(town_name) or towns.get(town_name + TOWN_SUFFIX)
    if town is None:
        problems.append(("所属镇街", f"没有镇（街道）便民服务中心“{town_name[:50]}”" if town_name else "所属镇街不能为空"))
    address = tables.text(cells.get("address"))
    if len(address) > MAX_ADDRESS:
        problems.append(("地址", f"地址不超过 {MAX_ADDRESS} 字"))
    phone = tables.text(cells.get("phone"))
    if reason := phone_problem(phone):
        problems.append(("联系电话", reason))
    state = tables.text(cells.get("state"))
    if state and state not in STATES:
        problems.append(("状态", "状态应为“启用”或“停用”（或留空）"))
    if problems or town is None:
        return None, problems
    return _Good(row.line, town.id, name, address, phone, STATES.get(state)), []


async def import_rows(uow: Uow, actor: Actor, rows: Sequence[TableRow]) -> dict[str, Any]:
    """导入延伸点 — each good row creates the point of its town and name, or updates it; each bad
    row is reported (row number, column, reason) and changes nothing."""
    actor.require(Role.admin)
    await uow.serialize(LOCK)
    town_rows = (await uow.session.scalars(select(Centre).where(Centre.level == CentreLevel.town))).all()
    towns = {c.name: c for c in town_rows}
    good, errors = tables.sort_rows(rows, lambda row: _check(row, towns), lambda g: (g.town_id, g.name),
                                    "延伸点名称", "延伸点")
    existing = {(p.centre_id, p.name): p for p in (await uow.session.scalars(select(ExtensionPoint))).all()}
    created = updated = unchanged = 0
    for key, g in good.items():
        point = existing.get(key)
        if point is None:
            uow.session.add(ExtensionPoint(name=g.name, centre_id=g.town_id, address=g.address, contact_phone=g.phone,
                                           active=g.active is not False))
            created += 1
            continue
        before = (point.address, point.contact_phone, point.active)
        point.address = g.address or point.address
        point.contact_phone = g.phone or point.contact_phone
        point.active = point.active if g.active is None else g.active
        if (point.address, point.contact_phone, point.active) == before:
            unchanged += 1
        else:
            updated += 1
    await uow.session.flush()
    bad_rows = len({e["row"] for e in errors})
    audit.record(uow, actor, "extension_point.import", "extension_point", "", rows=len(rows), created=created,
                 updated=updated, unchanged=unchanged, bad_rows=bad_rows)
    return {"rows": len(rows), "imported": created + updated + unchanged, "created": created, "updated": updated,
            "unchanged": unchanged, "bad_rows": bad_rows, "errors": errors}
