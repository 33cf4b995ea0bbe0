"""视频通话 — who may sit in a ticket's call, and the chat stored on the case.

A call room exists while its ticket is called or in service. Its seats: the ticket's
community worker (any worker of that extension point), the clerk of the window it was
called to, and experts who accepted an invitation to the case (see ``experts``). Everyone
else is refused with the same answer as for an unknown ticket.

Experts start in the case's private consultation channel: what they publish reaches the
clerk and the other experts only, until the clerk brings them into the main call. Chat has
two channels: ``call`` (everyone in the call) and ``consultation`` (clerk and experts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import case, func, select

from server.config import ChatRules
from server.domain import audit
from server.domain.access import serves
from server.domain.context import Actor, Uow
from server.domain.errors import Conflict, Forbidden, Invalid, NotFound, TooManyAttempts
from server.models import (
    CaseMessage,
    Invitation,
    InvitationStatus,
    Role,
    Ticket,
    TicketStatus,
    User,
)

MAX_MESSAGE = 2000
CHANNELS = ("call", "consultation")
PRIVATE_ROLES = (Role.clerk, Role.expert)  # who may see and hear the consultation channel


@dataclass(frozen=True)
class Seat:
    """A place in a ticket's call."""

    ticket_id: int
    user_id: int
    role: Role
    display_name: str
    private: bool = False  # an expert still in the consultation channel only


def call_is_open(status: TicketStatus | str) -> bool:
    return TicketStatus(status).in_call


def may_check_network(actor: Actor) -> None:
    """The device check's probe of the media path (网络检测) is for those who take calls."""
    actor.require(Role.worker, Role.clerk, Role.expert, Role.resident)


async def _ticket(uow: Uow, ticket_id: int) -> Ticket:
    ticket = await uow.session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("ticket_not_found", "号不存在", ticket_id=ticket_id)
    return ticket


def role_in_call(actor: Actor, ticket: Ticket) -> Role | None:
    """The worker's or the clerk's part in a case (experts: see `role_in_case`)."""
    return serves(actor, ticket)


async def accepted_invitation(uow: Uow, expert_id: int, ticket_id: int) -> Invitation | None:
    """The expert's accepted invitation to this case, if any (the latest)."""
    return await uow.session.scalar(
        select(Invitation)
        .where(Invitation.ticket_id == ticket_id, Invitation.expert_id == expert_id,
               Invitation.status == InvitationStatus.accepted)
        .order_by(Invitation.id.desc())
        .limit(1)
    )


async def role_in_case(uow: Uow, actor: Actor, ticket: Ticket) -> Role | None:
    """worker / clerk / expert (with an accepted invitation to this very case), else None."""
    role = role_in_call(actor, ticket)
    if role is None and actor.role is Role.expert and await accepted_invitation(uow, actor.user_id, ticket.id):
        role = Role.expert
    return role


async def take_seat(uow: Uow, actor: Actor, ticket_id: int) -> Seat:
    """加入通话 — check the actor belongs in this ticket's call and that the call is open."""
    seat = await _seat(uow, actor, ticket_id)
    if seat.role is Role.expert:
        invitation = await accepted_invitation(uow, actor.user_id, ticket_id)
        if invitation is not None and invitation.joined_at is None:
            invitation.joined_at = uow.clock.now()  # the first join; every join is in the audit log
    audit.record(uow, actor, "call.join", "ticket", ticket_id, role=seat.role.value)
    return seat


async def _seat(uow: Uow, actor: Actor, ticket_id: int) -> Seat:
    """The actor's place in the open call of this ticket (nothing recorded)."""
    ticket = await _ticket(uow, ticket_id)
    role = await role_in_case(uow, actor, ticket)
    if role is None:
        raise NotFound("ticket_not_found", "号不存在", ticket_id=ticket_id)
    if not call_is_open(ticket.status):
        raise Conflict("call_not_open", "该号不在办理中，无法进入通话", status=ticket.status.value)
    name = await uow.session.scalar(select(User.display_name).where(User.id == actor.user_id)) or actor.username
    private = False
    if role is Role.expert:
        invitation = await accepted_invitation(uow, actor.user_id, ticket.id)
        assert invitation is not None
        private = not invitation.in_main_call
    return Seat(ticket.id, actor.user_id, role, name, private)


async def leave_seat(uow: Uow, seat: Seat) -> None:
    """离开通话 — recorded for experts (the consultation timeline shows who stayed how long)."""
    if seat.role is not Role.expert:
        return
    invitation = await accepted_invitation(uow, seat.user_id, seat.ticket_id)
    if invitation is not None:
        invitation.left_at = uow.clock.now()  # the latest leave
        who = Actor(user_id=seat.user_id, username=seat.display_name, role=Role.expert)
        audit.record(uow, who, "call.leave", "ticket", seat.ticket_id, role=Role.expert.value)


async def post_message(uow: Uow, actor: Actor, ticket_id: int, text: str, channel: str,
                       rules: ChatRules) -> dict[str, Any]:
    """发送消息 — stored on the case; refused past the chat's pace (`ChatRules`), counted from
    the messages this person already stored in this call, so every node counts the same."""
    text = text.strip()
    if not text:
        raise Invalid("empty_message", "消息不能为空")
    if len(text) > MAX_MESSAGE:
        raise Invalid("message_too_long", f"消息不超过 {MAX_MESSAGE} 字")
    if channel not in CHANNELS:
        raise Invalid("unknown_channel", "没有这个频道", channel=channel)
    seat = await _seat(uow, actor, ticket_id)
    if channel == "consultation" and seat.role not in PRIVATE_ROLES:
        raise Forbidden("channel_forbidden", "会商频道只对云窗口工作人员和专家开放")
    if channel == "call" and seat.private:
        raise Conflict("not_in_main_call", "请等云窗口工作人员邀请您进入主通话后再发言")
    await _keep_pace(uow, actor, ticket_id, rules)
    message = CaseMessage(
        ticket_id=ticket_id, author_id=actor.user_id, author_name=seat.display_name, author_role=seat.role.value,
        channel=channel, text=text, at=uow.clock.now(),
    )
    uow.session.add(message)
    await uow.session.flush()
    return message_view(message)


async def _keep_pace(uow: Uow, actor: Actor, ticket_id: int, rules: ChatRules) -> None:
    now = uow.clock.now()
    burst_start = now - timedelta(seconds=rules.burst_seconds)
    in_minute, in_burst = (await uow.session.execute(
        select(func.count(), func.coalesce(func.sum(case((CaseMessage.at > burst_start, 1), else_=0)), 0))
        .where(CaseMessage.ticket_id == ticket_id, CaseMessage.author_id == actor.user_id,
               CaseMessage.at > now - timedelta(seconds=60))
    )).one()
    if in_burst >= rules.burst or in_minute >= rules.per_minute:
        raise TooManyAttempts("chat_rate_limited", "消息发送过于频繁，请稍后再发",
                              retry_after=rules.burst_seconds if in_minute < rules.per_minute else 60)


async def messages(uow: Uow, actor: Actor, ticket_id: int) -> list[dict[str, Any]]:
    """The case's chat as this person may read it: the worker never sees the consultation."""
    ticket = await _ticket(uow, ticket_id)
    role = await role_in_case(uow, actor, ticket)
    if role is None:
        raise NotFound("ticket_not_found", "号不存在", ticket_id=ticket_id)
    query = select(CaseMessage).where(CaseMessage.ticket_id == ticket_id)
    if role is Role.worker:
        query = query.where(CaseMessage.channel == "call")
    rows = await uow.session.scalars(query.order_by(CaseMessage.id))
    return [message_view(m) for m in rows.all()]


def message_view(m: CaseMessage) -> dict[str, Any]:
    return {
        "id": m.id, "ticket_id": m.ticket_id, "author_id": m.author_id, "author_name": m.author_name,
        "author_role": m.author_role, "channel": m.channel, "text": m.text, "at": m.at.isoformat(),
    }
