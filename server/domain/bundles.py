"""一事联办 — bundles: several items a resident handles as one case, with one merged checklist.

A bundle lists items in the order its case is served. Its checklist is the union of the items'
general checklists with a material several items need asked for once (lines are the same
material when their names are, after ``normalised``); what that saves is counted per case:
materials (the items' lines together minus the merged lines) and trips (one visit instead of
one per department). A bundle's case joins the district's queue when any of its items is a
district item, else the town's, like a single item's ticket (``queue.take_ticket``); serving it
department by department is ``bundle_cases``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from server.domain import audit
from server.domain.access import visible_tickets
from server.domain.context import Actor, Uow
from server.domain.errors import Conflict, Invalid, NotFound
from server.models import (
    Bundle,
    BundleItem,
    CaseItem,
    CentreLevel,
    Material,
    Role,
    ServiceItem,
    Ticket,
    TicketStatus,
)

#: Names that mean the same document across the catalogue's items (the checklists were written
#: item by item, so one card goes by several names).
ALIASES = {"居民身份证": "身份证", "本人居民身份证": "身份证"}
_SPACE = re.compile(r"\s+")


def normalised(name: str) -> str:
    """The key two checklist lines share when they ask for the same material."""
    key = _SPACE.sub("", name)
    return ALIASES.get(key, key)


@dataclass
class MergedLine:
    """One line of a merged checklist: the material, and every item (and its line) that needs it.
    ``issued_by`` names the bundle's earlier item that issues the material (its 营业执照, 居住证 …):
    the government passes it on to the later items, so the resident is not asked for it."""

    name: str
    required: bool
    note: str
    material_ids: list[int] = field(default_factory=list)
    item_ids: list[int] = field(default_factory=list)
    issued_by: int | None = None

    @property
    def asked(self) -> bool:
        """Whether the resident brings it (not issued inside the case)."""
        return self.issued_by is None


def merge(items: Iterable[tuple[int, Sequence[str], Iterable[Material]]]) -> list[MergedLine]:
    """(item id, what it issues, its checklist lines), in serving order → the merged checklist, in
    first-asked order. A merged line is required when any item requires it; its note is the first
    non-empty one. A material first asked for by an item served after the one that issues it is
    issued inside the case (``issued_by``) and is never required of the resident; one an earlier
    item already asked for stays asked."""
    merged: dict[str, MergedLine] = {}
    issued: dict[str, int] = {}
    for item_id, produces, lines in items:
        for m in lines:
            key = normalised(m.name)
            line = merged.get(key)
            if line is None:
                line = merged[key] = MergedLine(m.name, False, "", issued_by=issued.get(key))
            line.required = line.asked and (line.required or m.required)
            line.note = line.note or m.note
            line.material_ids.append(m.id)
            if item_id not in line.item_ids:
                line.item_ids.append(item_id)
        for name in produces:
            issued.setdefault(normalised(name), item_id)
    return list(merged.values())


@dataclass(frozen=True)
class Joint:
    """A bundle with its items (in serving order, each with its general checklist)."""

    bundle: Bundle
    items: tuple[ServiceItem, ...]

    @property
    def departments(self) -> list[int]:
        """The departments in the order they serve the case."""
        return list(dict.fromkeys(i.department_id for i in self.items))

    @property
    def level(self) -> CentreLevel:
        district = any(i.level is CentreLevel.district for i in self.items)
        return CentreLevel.district if district else CentreLevel.town

    @property
    def queue_item(self) -> ServiceItem:
        """The item whose level decides the case's centre: a district one when there is one."""
        return next((i for i in self.items if i.level is CentreLevel.district), self.items[0])

    def checklist(self) -> list[MergedLine]:
        return merge((i.id, i.produces, i.materials) for i in self.items)

    def figures(self) -> dict[str, int]:
        """What one case of this bundle saves the resident: the items' lines together, against the
        merged lines the resident still brings (a shared one once, an issued one never)."""
        total = sum(len(i.materials) for i in self.items)
        merged = sum(1 for line in self.checklist() if line.asked)
        return {"materials_total": total, "materials_merged": merged, "materials_saved": total - merged,
                "trips_saved": max(0, len(self.departments) - 1)}


async def _joints(uow: Uow, bundles: Sequence[Bundle]) -> list[Joint]:
    ids = {bi.item_id for b in bundles for bi in b.items}
    items = {i.id: i for i in (await uow.session.scalars(
        select(ServiceItem).options(selectinload(ServiceItem.materials)).where(ServiceItem.id.in_(ids)))).all()}
    return [Joint(b, tuple(items[bi.item_id] for bi in b.items)) for b in bundles]


async def list_bundles(uow: Uow, *, include_inactive: bool = False) -> list[Joint]:
    """The bundles on offer (active, every item of them active), or every one."""
    stmt = select(Bundle).options(selectinload(Bundle.items)).order_by(Bundle.code)
    if not include_inactive:
        stmt = stmt.where(Bundle.active.is_(True))
    joints = await _joints(uow, list((await uow.session.scalars(stmt)).all()))
    return joints if include_inactive else [j for j in joints if all(i.active for i in j.items)]


async def get_bundle(uow: Uow, bundle_id: int, *, active: bool = True) -> Joint:
    """An (active) bundle with its items: 404 ``bundle_not_found`` otherwise, or when one of its
    items has been withdrawn from service."""
    bundle = (await uow.session.scalars(
        select(Bundle).options(selectinload(Bundle.items)).where(Bundle.id == bundle_id))).first()
    if bundle is None or (active and not bundle.active) or not bundle.items:
        raise NotFound("bundle_not_found", "联办事项不存在或已停办", bundle_id=bundle_id)
    joint = (await _joints(uow, [bundle]))[0]
    if active and not all(i.active for i in joint.items):
        raise NotFound("bundle_not_found", "联办事项中有事项已停办", bundle_id=bundle_id)
    return joint


def case_items(joint: Joint, ticket_id: int) -> list[CaseItem]:
    """A new case's items, every one pending."""
    return [CaseItem(ticket_id=ticket_id, item_id=i.id, department_id=i.department_id, position=n, state="pending",
                     note="", completed_by_name="") for n, i in enumerate(joint.items)]


async def items_of_case(uow: Uow, ticket_id: int) -> list[CaseItem]:
    return list((await uow.session.scalars(
        select(CaseItem).where(CaseItem.ticket_id == ticket_id).order_by(CaseItem.position))).all())


async def case_checklist(uow: Uow, ticket_id: int) -> list[MergedLine]:
    """A bundle case's merged checklist, from its items' general checklists."""
    order = [ci.item_id for ci in await items_of_case(uow, ticket_id)]
    items = {i.id: i for i in (await uow.session.scalars(
        select(ServiceItem).options(selectinload(ServiceItem.materials)).where(ServiceItem.id.in_(order)))).all()}
    return merge((items[i].id, items[i].produces, items[i].materials) for i in order)


def bundle_view(joint: Joint) -> dict[str, Any]:
    b = joint.bundle
    return {
        "id": b.id, "code": b.code, "name": b.name, "description": b.description, "active": b.active,
        "level": joint.level.value,
        "items": [{"id": i.id, "code": i.code, "name": i.name, "department_id": i.department_id,
                   "level": i.level.value, "active": i.active} for i in joint.items],
        "department_ids": joint.departments,
        "checklist": [merged_line_view(line) for line in joint.checklist()],
        **joint.figures(),
    }


def merged_line_view(line: MergedLine) -> dict[str, Any]:
    return {"name": line.name, "required": line.required, "note": line.note, "material_ids": line.material_ids,
            "item_ids": line.item_ids, "issued_by": line.issued_by}


async def report(uow: Uow, actor: Actor) -> dict[str, Any]:
    """减材料、减跑动 — per bundle, the cases taken (not cancelled) and completed among the tickets
    the actor oversees, and what the completed ones saved their residents."""
    actor.require(Role.supervisor, Role.admin)
    counts: dict[int, dict[str, int]] = {}
    rows = (await uow.session.execute(
        select(Ticket.bundle_id, Ticket.status, func.count(Ticket.id))
        .where(Ticket.bundle_id.is_not(None), visible_tickets(actor))
        .group_by(Ticket.bundle_id, Ticket.status))).all()
    for bundle_id, status, n in rows:
        assert bundle_id is not None
        c = counts.setdefault(bundle_id, {"cases": 0, "completed": 0})
        if status is not TicketStatus.cancelled:
            c["cases"] += int(n)
        if status is TicketStatus.completed:
            c["completed"] += int(n)
    lines: list[dict[str, Any]] = []
    for joint in await list_bundles(uow, include_inactive=True):
        c = counts.get(joint.bundle.id, {"cases": 0, "completed": 0})
        f = joint.figures()
        lines.append({"bundle_id": joint.bundle.id, "code": joint.bundle.code, "name": joint.bundle.name,
                      "items": len(joint.items), "departments": len(joint.departments), **c,
                      "materials_saved_per_case": f["materials_saved"], "trips_saved_per_case": f["trips_saved"],
                      "materials_saved": c["completed"] * f["materials_saved"],
                      "trips_saved": c["completed"] * f["trips_saved"]})
    totals = {k: sum(line[k] for line in lines) for k in ("cases", "completed", "materials_saved", "trips_saved")}
    return {"bundles": lines, "totals": totals}


async def save_bundle(
    uow: Uow,
    actor: Actor,
    *,
    bundle_id: int | None,
    code: str,
    name: str,
    item_ids: Sequence[int],
    description: str = "",
    active: bool = True,
) -> Joint:
    """Create a bundle, or replace an existing one's fields and items (in serving order); the
    admin stops one with ``active`` false. Its open cases keep the items they were taken with
    (``case_items``), so an edit changes new cases only. Refused, changing nothing: an unknown
    bundle or item (404), an item twice (``duplicate_item``), fewer than two items
    (``bundle_too_small``), a stopped item in an offered bundle (``item_inactive``), a code
    another bundle has (409 ``bundle_code_taken``)."""
    actor.require(Role.admin)
    bundle: Bundle | None = None
    if bundle_id is not None:
        bundle = (await uow.session.scalars(
            select(Bundle).options(selectinload(Bundle.items)).where(Bundle.id == bundle_id))).first()
        if bundle is None:
            raise NotFound("bundle_not_found", "联办事项不存在", bundle_id=bundle_id)
    twice = next((i for n, i in enumerate(item_ids) if i in item_ids[:n]), None)
    if twice is not None:
        raise Invalid("duplicate_item", "同一事项在联办事项中出现了两次", item_id=twice)
    if len(item_ids) < 2:
        raise Invalid("bundle_too_small", "一事联办至少包含两个事项")
    found = {i.id: i for i in (await uow.session.scalars(
        select(ServiceItem).options(selectinload(ServiceItem.materials)).where(ServiceItem.id.in_(item_ids)))).all()}
    missing = next((i for i in item_ids if i not in found), None)
    if missing is not None:
        raise NotFound("item_not_found", "事项不存在", item_id=missing)
    stopped = next((found[i] for i in item_ids if not found[i].active), None)
    if active and stopped is not None:
        raise Invalid("item_inactive", f"事项「{stopped.name}」已停用，不能放入办理中的联办事项", item_id=stopped.id)
    clash = await uow.session.scalar(select(Bundle.id).where(Bundle.code == code))
    if clash is not None and clash != bundle_id:
        raise Conflict("bundle_code_taken", f"联办事项编码 {code} 已存在")
    if bundle is None:
        bundle = Bundle(code=code, items=[])
        uow.session.add(bundle)
    kept = {bi.item_id: bi for bi in bundle.items}
    bundle.items = [kept.get(item_id) or BundleItem(item_id=item_id) for item_id in item_ids]
    for position, bi in enumerate(bundle.items):
        bi.position = position
    bundle.code, bundle.name, bundle.description, bundle.active = code, name, description, active
    await uow.session.flush()
    audit.record(uow, actor, "bundle.save", "bundle", bundle.id, code=code, name=name, item_ids=list(item_ids),
                 active=active)
    return await get_bundle(uow, bundle.id, active=False)
