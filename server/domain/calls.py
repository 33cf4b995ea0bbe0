"""视频通话 — who may sit in a ticket's call, and the chat stored on the case.

A call room exists while its ticket is called or in service. Its seats: the ticket's
community worker (any worker of that extension point) and the clerk of the window it was
called to. Everyone else is refused with the same answer as for an unknown ticket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from server.domain import audit
from server.domain.context import Actor, Uow
from server.domain.errors import Conflict, Invalid, NotFound
from server.models import CaseMessage, Role, Ticket, TicketStatus, User

OPEN = (TicketStatus.called, TicketStatus.in_service)
MAX_MESSAGE = 2000


@dataclass(frozen=True)
class Seat:
    """A place in a ticket's call."""

    ticket_id: int
    user_id: int
    role: str
    display_name: str


def call_is_open(status: TicketStatus | str) -> bool:
    return TicketStatus(status) in OPEN


async def _ticket(uow: Uow, ticket_id: int) -> Ticket:
    ticket = await uow.session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("ticket_not_found", "号不存在", ticket_id=ticket_id)
    return ticket


def role_in_call(actor: Actor, ticket: Ticket) -> str | None:
    if actor.role is Role.worker and ticket.extension_point_id == actor.extension_point_id:
        return "worker"
    if actor.role is Role.clerk and ticket.window_id in actor.window_ids:
        return "clerk"
    return None


async def take_seat(uow: Uow, actor: Actor, ticket_id: int) -> Seat:
    """加入通话 — check the actor belongs in this ticket's call and that the call is open."""
    ticket = await _ticket(uow, ticket_id)
    role = role_in_call(actor, ticket)
    if role is None:
        raise NotFound("ticket_not_found", "号不存在", ticket_id=ticket_id)
    if not call_is_open(ticket.status):
        raise Conflict("call_not_open", "该号不在办理中，无法进入通话", status=ticket.status.value)
    name = await uow.session.scalar(select(User.display_name).where(User.id == actor.user_id)) or actor.username
    audit.record(uow, actor, "call.join", "ticket", ticket.id, role=role)
    return Seat(ticket.id, actor.user_id, role, name)


async def post_message(uow: Uow, actor: Actor, ticket_id: int, text: str) -> dict[str, Any]:
    text = text.strip()
    if not text:
        raise Invalid("empty_message", "消息不能为空")
    if len(text) > MAX_MESSAGE:
        raise Invalid("message_too_long", f"消息不超过 {MAX_MESSAGE} 字")
    seat = await take_seat(uow, actor, ticket_id)
    message = CaseMessage(
        ticket_id=ticket_id, author_id=actor.user_id, author_name=seat.display_name, author_role=seat.role,
        channel="call", text=text, at=uow.clock.now(),
    )
    uow.session.add(message)
    await uow.session.flush()
    return message_view(message)


async def messages(uow: Uow, actor: Actor, ticket_id: int) -> list[dict[str, Any]]:
    ticket = await _ticket(uow, ticket_id)
    if role_in_call(actor, ticket) is None and actor.role is not Role.admin:
        raise NotFound("ticket_not_found", "号不存在", ticket_id=ticket_id)
    rows = await uow.session.scalars(
        select(CaseMessage).where(CaseMessage.ticket_id == ticket_id).order_by(CaseMessage.id)
    )
    return [message_view(m) for m in rows.all()]


def message_view(m: CaseMessage) -> dict[str, Any]:
    return {
        "id": m.id, "ticket_id": m.ticket_id, "author_id": m.author_id, "author_name": m.author_name,
        "author_role": m.author_role, "channel": m.channel, "text": m.text, "at": m.at.isoformat(),
    }
