"""一次性告知 (seed 002): a worker or a clerk sends a resident an item's checklist — its
materials and where it is handled; for a situation (办理情形) that situation's materials, time
limit, fee and pickup place — as a short link by SMS (through the outbox). The link opens a
read-only page without login until it expires; only its token's hash is kept; sending it is
audited, on the case when it is sent from one."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from server.domain import audit, catalog, notify, situations
from server.domain.access import serves
from server.domain.context import Actor, Uow
from server.domain.errors import Gone, Invalid, NotFound
from server.domain.personal import full_resident
from server.domain.queue import queue_centre
from server.models import Centre, ChecklistLink, Department, ExtensionPoint, Role, Situation, Ticket

LINK_DAYS = 30  # a resident gathers the materials in this time
PATH = "/app/c/"  # the read-only page, mobile first


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def send(uow: Uow, actor: Actor, item_id: int, phone: str | None, *, origin: str,
               ticket_id: int | None = None, situation_id: int | None = None) -> dict[str, Any]:
    """Send the checklist of ``item_id`` — of its situation ``situation_id`` when given — (or of
    the case ``ticket_id``'s item and situation) to ``phone`` (from a case, by default the number
    its resident gave: the clerk sends without seeing it);
    ``origin`` is the address residents open the app at (the link is ``origin/app/c/<token>``)."""
    actor.require(Role.worker, Role.clerk)
    ticket: Ticket | None = None
    if ticket_id is not None:
        ticket = await uow.session.get(Ticket, ticket_id)
        if ticket is None or serves(actor, ticket) is None:
            raise NotFound("ticket_not_found", "办件不存在", ticket_id=ticket_id)
        item_id, situation_id = ticket.item_id, ticket.situation_id
        if not phone:
            phone = str(full_resident(uow.sealer, ticket.resident, ticket.resident_sealed).get("phone") or "")
            if not phone:
                raise Invalid("phone_missing", "该办件没有登记群众的手机号，请填写手机号后发送")
    item = await catalog.get_item(uow, item_id)
    if not item.active:
        raise NotFound("item_not_found", "事项不存在", item_id=item_id)
    # a case's situation as the case recorded it; one chosen now must be one of the item's in use
    situation = (await uow.session.get(Situation, situation_id) if ticket is not None and situation_id is not None
                 else await situations.of_item(uow, item, situation_id))
    title = f"{item.name}（{situation.name}）" if situation is not None else item.name
    centre_id: int | None = ticket.centre_id if ticket is not None else None
    if centre_id is None and actor.extension_point_id is not None:
        point = await uow.session.get(ExtensionPoint, actor.extension_point_id)
        if point is not None:
            centre_id = await queue_centre(uow, item, point)
    token = secrets.token_urlsafe(12)  # 16 characters, 96 bits: short in an SMS, not guessable
    url = origin.rstrip("/") + PATH + token
    # the outbox checks the number (phone_invalid) and masks it
    message = await notify.queue(uow, channel="sms", kind="checklist", to=phone or "", by=actor,
                                 text=f"【云帮办】“{title}”办理须知（一次性告知）：所需材料和办理地点请见 {url} ，"
                                      f"{LINK_DAYS} 天内有效。")
    assert message is not None
    now = uow.clock.now()
    link = ChecklistLink(token_hash=_hash(token), item_id=item.id, ticket_id=ticket.id if ticket else None,
                         situation_id=situation.id if situation is not None else None,
                         centre_id=centre_id, sent_by_id=actor.user_id, phone_masked=message.recipient_masked,
                         created_at=now, expires_at=now + timedelta(days=LINK_DAYS), opens=0)
    uow.session.add(link)
    await uow.session.flush()
    target = ("ticket", ticket.id) if ticket is not None else ("item", item.id)  # on the case when from one
    audit.record(uow, actor, "checklist.sent", *target, item_id=item.id, situation_id=link.situation_id,
                 link_id=link.id, notification_id=message.id)
    return {"id": link.id, "item_id": item.id, "situation_id": link.situation_id, "ticket_id": link.ticket_id, "to": link.phone_masked,
            "expires_at": link.expires_at.isoformat(), "notification_id": message.id}


async def _open_link(uow: Uow, token: str) -> ChecklistLink:
    link = await uow.session.scalar(select(ChecklistLink).where(ChecklistLink.token_hash == _hash(token)))
    if link is None:
        raise NotFound("checklist_link_not_found", "链接无效，请向工作人员重新索取")
    if link.expires_at <= uow.clock.now():
        raise Gone("checklist_link_expired", "链接已过期，请向工作人员重新索取")
    return link


async def read(uow: Uow, token: str, answers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What the link shows, to anyone holding it: the item (and situation), its materials, where,
    until when. A situation stopped since the link was sent still shows: the resident was told it.
    A link sent for an item handled by situation but without one carries the item's questions,
    and the resident's ``answers`` lead to a situation as they do for the worker (each reading
    with answers is one more look, not one more open)."""
    link = await _open_link(uow, token)
    item = await catalog.get_item(uow, link.item_id)
    if answers is not None:
        situation: Situation | None = await situations.resolve(uow, item.id, answers)
    else:
        situation = next((x for x in item.situations if x.id == link.situation_id), None)
        await uow.session.execute(update(ChecklistLink).where(ChecklistLink.id == link.id)
                                  .values(opens=ChecklistLink.opens + 1).execution_options(synchronize_session=False))
    department = await uow.session.get(Department, item.department_id)
    centre = await uow.session.get(Centre, link.centre_id) if link.centre_id is not None else None
    asks = link.situation_id is None and any(x.active for x in item.situations)
    return {
        "item": {"name": item.name, "description": item.description},
        "situation": {"name": situation.name, "time_limit_days": situation.time_limit_days, "fee": situation.fee,
                      "pickup": situation.pickup} if situation is not None else None,
        "questions": [{"id": q.id, "text": q.text, "options": list(q.options)} for q in item.questions] if asks else [],
        "department": department.name if department is not None else "",
        "centre": centre.name if centre is not None else None,
        "materials": [{"name": m.name, "required": m.required, "note": m.note}
                      for m in (situation.materials if situation is not None else item.materials)],
        "sent_at": link.created_at.isoformat(),
        "expires_at": link.expires_at.isoformat(),
    }
