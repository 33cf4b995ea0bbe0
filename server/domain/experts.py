"""专家库与多人会商 — the expert pool, invitations to a case, and the experts' opinions.

The rules:

* Experts are users with the ``expert`` role, tagged with specialties and departments, and an
  ``available`` switch of their own. Their presence (online / busy in a call / offline) is
  not stored: it comes from live connections through a `PresenceView`.
* Only the ticket's clerk, or a supervisor of its department, invites, and only while the
  ticket is called or in service; at most ``max_experts`` experts on a case at once
  (pending or accepted).
* An invitation waits ``invitation_ttl_seconds`` (2 minutes by default) for an answer, then
  expires and the inviter is told. Only the invited expert answers, once: of two accepts of
  one invitation exactly one wins; an accept after expiry is refused.
* An expert is in one consultation at a time (a case whose ticket is still open) unless
  their profile allows parallel consultations.
* An accepted expert joins only that case's call, first in the private consultation channel
  (clerk and experts); the clerk brings experts into the main call and can send them back.
* Each expert writes opinions on the case; the timeline shows who was invited by whom, who
  answered how fast, who joined and left, and what they said. All of it is audited.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select, update

from server.domain import audit
from server.domain.access import watches
from server.domain.calls import accepted_invitation, call_is_open, role_in_call
from server.domain.context import SYSTEM, Actor, Uow
from server.domain.documents import checklist
from server.domain.errors import Conflict, Forbidden, Invalid, NotFound
from server.events import Audience
from server.models import (
    AuditEntry,
    Consultation,
    Department,
    Document,
    ExpertOpinion,
    Invitation,
    InvitationStatus,
    Role,
    ServiceItem,
    Situation,
    Ticket,
    TicketStatus,
    User,
    expert_departments,
)

MAX_NOTE = 500
MAX_OPINION = 5000


class PresenceView(Protocol):
    """Who is connected and who sits in a call, from the live side (one node or several)."""

    def state(self, user_id: int) -> str:
        """``online``, ``busy`` (in a call) or ``offline``."""
        ...


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- the pool ----------------------------------------------------------------------------------


async def search(
    uow: Uow,
    actor: Actor,
    presence: PresenceView,
    *,
    specialty: str | None = None,
    department_id: int | None = None,
    online: bool | None = None,
) -> list[dict[str, Any]]:
    """专家检索 — by specialty (a tag, or part of one), department and presence."""
    actor.require(Role.clerk, Role.supervisor, Role.admin, Role.expert)
    experts = list((await uow.session.scalars(
        select(User).where(User.role == Role.expert, User.active.is_(True)).order_by(User.id)
    )).all())
    departments = await _departments_of(uow, [e.id for e in experts])
    busy_in_case = await _open_consultations(uow, [e.id for e in experts])
    wanted = (specialty or "").strip().lower()
    views = []
    for expert in experts:
        if wanted and not any(wanted in tag.lower() for tag in expert.specialties or []):
            continue
        mine = departments.get(expert.id, [])
        if department_id is not None and department_id not in {d.id for d in mine}:
            continue
        state = presence.state(expert.id)
        if online is not None and (state != "offline") != online:
            continue
        in_consultation = busy_in_case.get(expert.id, 0)
        views.append({
            "id": expert.id,
            "display_name": expert.display_name,
            "specialties": list(expert.specialties or []),
            "departments": [{"id": d.id, "name": d.name} for d in mine],
            "available": expert.available,
            "parallel_consultations": expert.parallel_consultations,
            "presence": state,
            "open_consultations": in_consultation,
            "free": expert.available and state == "online"
            and (in_consultation == 0 or expert.parallel_consultations),
        })
    return views


async def _departments_of(uow: Uow, user_ids: list[int]) -> dict[int, list[Department]]:
    if not user_ids:
        return {}
    rows = await uow.session.execute(
        select(expert_departments.c.user_id, Department)
        .join(Department, Department.id == expert_departments.c.department_id)
        .where(expert_departments.c.user_id.in_(user_ids))
        .order_by(Department.id)
    )
    found: dict[int, list[Department]] = {}
    for user_id, department in rows.all():
        found.setdefault(user_id, []).append(department)
    return found


async def _open_consultations(uow: Uow, expert_ids: list[int]) -> dict[int, int]:
    """Accepted invitations per expert whose ticket is still open."""
    if not expert_ids:
        return {}
    rows = await uow.session.execute(
        select(Invitation.expert_id, func.count(Invitation.id))
        .join(Ticket, Ticket.id == Invitation.ticket_id)
        .where(Invitation.expert_id.in_(expert_ids), Invitation.status == InvitationStatus.accepted,
               Ticket.status.in_(TicketStatus.in_call_states()))
        .group_by(Invitation.expert_id)
    )
    return {int(expert_id): int(count) for expert_id, count in rows.all()}


async def set_profile(
    uow: Uow, actor: Actor, *, available: bool | None = None, parallel_consultations: bool | None = None
) -> dict[str, Any]:
    """An expert switches themselves available / unavailable, or allows parallel consultations."""
    actor.require(Role.expert)
    user = await uow.session.get(User, actor.user_id)
    assert user is not None
    if available is not None:
        user.available = available
    if parallel_consultations is not None:
        user.parallel_consultations = parallel_consultations
    audit.record(uow, actor, "expert.profile", "user", user.id, available=user.available,
                 parallel_consultations=user.parallel_consultations)
    return {"id": user.id, "available": user.available, "parallel_consultations": user.parallel_consultations}


# --- invitations -------------------------------------------------------------------------------


async def _case(uow: Uow, actor: Actor, ticket_id: int) -> Ticket:
    """The ticket, if this actor may invite experts to it."""
    ticket = await uow.session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("ticket_not_found", "号不存在", ticket_id=ticket_id)
    if actor.role is Role.supervisor and watches(actor, ticket.centre_id, ticket.department_id):
        return ticket
    if actor.role is Role.clerk and role_in_call(actor, ticket) is Role.clerk:
        return ticket
    if actor.role in (Role.clerk, Role.supervisor):
        raise NotFound("ticket_not_found", "号不存在", ticket_id=ticket_id)
    raise Forbidden("role_forbidden", "只有本件的云窗口工作人员或部门负责人可以邀请专家")


async def invite(uow: Uow, actor: Actor, ticket_id: int, expert_ids: list[int], note: str = "") -> dict[str, Any]:
    """邀请专家会商 — one consultation, one invitation per expert, each live to its expert."""
    ticket = await _case(uow, actor, ticket_id)
    if not call_is_open(ticket.status):
        raise Conflict("call_not_open", "该号不在办理中，不能邀请专家", status=ticket.status.value)
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise Invalid("note_too_long", f"说明不超过 {MAX_NOTE} 字")
    ids = list(dict.fromkeys(expert_ids))
    if not ids:
        raise Invalid("no_experts", "请至少选择一位专家")
    experts = {u.id: u for u in (await uow.session.scalars(
        select(User).where(User.id.in_(ids), User.role == Role.expert, User.active.is_(True))
    )).all()}
    unknown = [i for i in ids if i not in experts]
    if unknown:
        raise Invalid("unknown_expert", "专家库中没有这些人", expert_ids=unknown)
    unavailable = [i for i in ids if not experts[i].available]
    if unavailable:
        raise Conflict("expert_unavailable", "所选专家暂停接受会商", expert_ids=unavailable)
    now = uow.clock.now()
    engaged = list((await uow.session.scalars(
        select(Invitation).where(
            Invitation.ticket_id == ticket.id,
            (Invitation.status == InvitationStatus.accepted)
            | ((Invitation.status == InvitationStatus.pending) & (Invitation.expires_at > now)),
        )
    )).all())
    again = sorted({i.expert_id for i in engaged} & set(ids))
    if again:
        raise Conflict("already_invited", "这些专家已受邀或已在会商中", expert_ids=again)
    limit = uow.consultations.max_experts
    if len({i.expert_id for i in engaged}) + len(ids) > limit:
        raise Conflict("too_many_experts", f"一件最多邀请 {limit} 位专家同时会商", limit=limit)

    consultation = Consultation(ticket_id=ticket.id, created_by_id=actor.user_id, note=note, created_at=now)
    uow.session.add(consultation)
    await uow.session.flush()
    expires = now + timedelta(seconds=uow.consultations.invitation_ttl_seconds)
    invitations = [
        Invitation(consultation_id=consultation.id, ticket_id=ticket.id, expert_id=i, invited_by_id=actor.user_id,
                   status=InvitationStatus.pending, created_at=now, expires_at=expires, in_main_call=False)
        for i in ids
    ]
    uow.session.add_all(invitations)
    await uow.session.flush()
    summary = await case_summary(uow, ticket)
    inviter = await _name(uow, actor.user_id)
    for invitation in invitations:
        view = invitation_view(invitation, expert_name=experts[invitation.expert_id].display_name,
                               invited_by_name=inviter, note=note)
        audit.record(uow, actor, "consultation.invite", "ticket", ticket.id, invitation_id=invitation.id,
                     expert_id=invitation.expert_id, note=note)
        uow.emit("invitation.created", {**view, "case": summary, "now": now.isoformat()},
                 Audience(users=(invitation.expert_id,)))
    return {
        "id": consultation.id, "ticket_id": ticket.id, "note": note, "created_at": now.isoformat(),
        "invitations": [invitation_view(i, expert_name=experts[i.expert_id].display_name, invited_by_name=inviter,
                                        note=note) for i in invitations],
    }


async def _name(uow: Uow, user_id: int) -> str:
    return str(await uow.session.scalar(select(User.display_name).where(User.id == user_id)) or "")


async def case_summary(uow: Uow, ticket: Ticket) -> dict[str, Any]:
    """What an invited expert needs to decide: the case, the item (and situation), the checklist,
    the documents."""
    item = await uow.session.get(ServiceItem, ticket.item_id)
    situation = await uow.session.get(Situation, ticket.situation_id) if ticket.situation_id is not None else None
    department = await uow.session.get(Department, ticket.department_id)
    documents = (await uow.session.scalars(
        select(Document).where(Document.ticket_id == ticket.id).order_by(Document.id)
    )).all()
    resident = ticket.resident or {}
    return {
        "ticket_id": ticket.id,
        "number": ticket.number,
        "status": ticket.status.value,
        "item": {"id": ticket.item_id, "name": item.name if item else ""},
        "situation": {"id": situation.id, "name": situation.name} if situation is not None else None,
        "department": {"id": ticket.department_id, "name": department.name if department else ""},
        "resident_name": resident.get("name", ""),
        "checklist": await checklist(uow, ticket.id),
        "documents": [
            {"id": d.id, "material_id": d.material_id, "material_name": d.material_name, "status": d.status,
             "content_type": d.content_type, "uploaded_at": d.uploaded_at.isoformat()}
            for d in documents
        ],
    }


def invitation_view(i: Invitation, **extra: Any) -> dict[str, Any]:
    response = (i.answered_at - i.created_at).total_seconds() if i.answered_at else None
    view: dict[str, Any] = {
        "id": i.id, "consultation_id": i.consultation_id, "ticket_id": i.ticket_id, "expert_id": i.expert_id,
        "invited_by_id": i.invited_by_id, "status": i.status.value, "created_at": i.created_at.isoformat(),
        "expires_at": i.expires_at.isoformat(), "answered_at": _iso(i.answered_at),
        "response_seconds": round(response, 1) if response is not None else None,
        "joined_at": _iso(i.joined_at), "left_at": _iso(i.left_at), "in_main_call": i.in_main_call,
        "reason": i.decline_reason,
    }
    view.update(extra)
    return view


async def _invitation_for_expert(uow: Uow, actor: Actor, invitation_id: int) -> Invitation:
    actor.require(Role.expert)
    invitation = await uow.session.get(Invitation, invitation_id)
    if invitation is None or invitation.expert_id != actor.user_id:
        raise NotFound("invitation_not_found", "邀请不存在", invitation_id=invitation_id)
    return invitation


def _answered_audience(invitation: Invitation) -> Audience:
    return Audience(users=(invitation.invited_by_id, invitation.expert_id),
                    consultation_of_ticket=invitation.ticket_id)


async def _refuse_unanswerable(uow: Uow, invitation: Invitation) -> None:
    """Explain why an invitation cannot be answered (any more). The monitor marks it expired."""
    if invitation.status is InvitationStatus.pending and invitation.expires_at <= uow.clock.now():
        raise Conflict("invitation_expired", "邀请已过期", invitation_id=invitation.id)
    if invitation.status is InvitationStatus.expired:
        raise Conflict("invitation_expired", "邀请已过期", invitation_id=invitation.id)
    if invitation.status is not InvitationStatus.pending:
        raise Conflict("invitation_answered", "邀请已答复", invitation_id=invitation.id, status=invitation.status.value)


async def _claim(uow: Uow, invitation: Invitation, status: InvitationStatus) -> bool:
    """Pending → answered, only if still pending and in time: one answer wins, on any database."""
    now = uow.clock.now()
    changed = await uow.changed(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.status == InvitationStatus.pending,
               Invitation.expires_at > now)
        .values(status=status, answered_at=now)
        .execution_options(synchronize_session=False)
    )
    if changed != 1:
        await uow.session.refresh(invitation)
        return False
    await uow.session.refresh(invitation)
    return True


async def accept(uow: Uow, actor: Actor, invitation_id: int) -> dict[str, Any]:
    """接受邀请 — the invited expert, in time, not busy in another open consultation."""
    invitation = await _invitation_for_expert(uow, actor, invitation_id)
    await _refuse_unanswerable(uow, invitation)
    ticket = await uow.session.get(Ticket, invitation.ticket_id)
    assert ticket is not None
    if not call_is_open(ticket.status):
        raise Conflict("call_not_open", "该件已办结，无需会商", status=ticket.status.value)
    user = await uow.session.get(User, actor.user_id)
    assert user is not None
    if not user.parallel_consultations:
        elsewhere = (await _open_consultations(uow, [actor.user_id])).get(actor.user_id, 0)
        if elsewhere:
            raise Conflict("expert_busy", "您正在另一件会商中；结束后再接受，或在个人设置中允许同时会商")
    if not await _claim(uow, invitation, InvitationStatus.accepted):
        await _refuse_unanswerable(uow, invitation)
        raise Conflict("invitation_answered", "邀请已答复", invitation_id=invitation.id)
    audit.record(uow, actor, "consultation.accept", "ticket", invitation.ticket_id, invitation_id=invitation.id,
                 response_seconds=invitation_view(invitation)["response_seconds"])
    view = invitation_view(invitation, expert_name=user.display_name)
    uow.emit("invitation.updated", view, _answered_audience(invitation))
    return {**view, "case": await case_summary(uow, ticket)}


async def decline(uow: Uow, actor: Actor, invitation_id: int, reason: str = "") -> dict[str, Any]:
    """婉拒邀请 — the clerk is told at once and can invite someone else."""
    invitation = await _invitation_for_expert(uow, actor, invitation_id)
    await _refuse_unanswerable(uow, invitation)
    if not await _claim(uow, invitation, InvitationStatus.declined):
        await _refuse_unanswerable(uow, invitation)
        raise Conflict("invitation_answered", "邀请已答复", invitation_id=invitation.id)
    reason = reason.strip()[:MAX_NOTE]
    invitation.decline_reason = reason or None
    audit.record(uow, actor, "consultation.decline", "ticket", invitation.ticket_id, invitation_id=invitation.id,
                 reason=reason, response_seconds=invitation_view(invitation)["response_seconds"])
    view = invitation_view(invitation, expert_name=await _name(uow, actor.user_id))
    uow.emit("invitation.updated", view, _answered_audience(invitation))
    return view


async def my_invitations(uow: Uow, actor: Actor, status: str | None = None) -> list[dict[str, Any]]:
    """An expert's invitations (a reloaded page finds the pending ones here), newest first."""
    actor.require(Role.expert)
    query = select(Invitation).where(Invitation.expert_id == actor.user_id)
    if status is not None:
        if status not in InvitationStatus.__members__:
            raise Invalid("unknown_status", "没有这种邀请状态", status=status)
        query = query.where(Invitation.status == InvitationStatus(status))
    rows = (await uow.session.scalars(query.order_by(Invitation.id.desc()).limit(100))).all()
    views = []
    for invitation in rows:
        ticket = await uow.session.get(Ticket, invitation.ticket_id)
        consultation = await uow.session.get(Consultation, invitation.consultation_id)
        assert ticket is not None and consultation is not None
        views.append(invitation_view(invitation, note=consultation.note,
                                     invited_by_name=await _name(uow, invitation.invited_by_id),
                                     case=await case_summary(uow, ticket), now=uow.clock.now().isoformat()))
    return views


async def _expire(uow: Uow, invitations: list[Invitation]) -> None:
    for invitation in invitations:
        invitation.status = InvitationStatus.expired
        audit.record(uow, SYSTEM, "consultation.expire", "ticket", invitation.ticket_id,
                     invitation_id=invitation.id, expert_id=invitation.expert_id)
        view = invitation_view(invitation, expert_name=await _name(uow, invitation.expert_id))
        uow.emit("invitation.updated", view, _answered_audience(invitation))


async def expire_due(uow: Uow) -> int:
    """Pending invitations whose time is up become expired; inviter and expert are told."""
    due = list((await uow.session.scalars(
        select(Invitation).where(Invitation.status == InvitationStatus.pending,
                                 Invitation.expires_at <= uow.clock.now())
        .with_for_update(skip_locked=True)
    )).all())
    await _expire(uow, due)
    return len(due)


# --- in the call -------------------------------------------------------------------------------


async def set_stage(uow: Uow, actor: Actor, ticket_id: int, *, main: bool,
                    expert_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """请专家进入主通话 / 回到会商频道 — the clerk moves accepted experts between the two."""
    ticket = await _case(uow, actor, ticket_id)
    if not call_is_open(ticket.status):
        raise Conflict("call_not_open", "该号不在办理中", status=ticket.status.value)
    query = select(Invitation).where(Invitation.ticket_id == ticket.id,
                                     Invitation.status == InvitationStatus.accepted)
    accepted = list((await uow.session.scalars(query.order_by(Invitation.id))).all())
    if expert_ids is not None:
        unknown = sorted(set(expert_ids) - {i.expert_id for i in accepted})
        if unknown:
            raise Invalid("expert_not_in_consultation", "这些专家没有接受本件的会商邀请", expert_ids=unknown)
        accepted = [i for i in accepted if i.expert_id in set(expert_ids)]
    if not accepted:
        raise Conflict("no_experts_accepted", "还没有专家接受邀请")
    views = []
    for invitation in accepted:
        invitation.in_main_call = main
        views.append(invitation_view(invitation, expert_name=await _name(uow, invitation.expert_id)))
    audit.record(uow, actor, "consultation.bring_in" if main else "consultation.send_back", "ticket", ticket.id,
                 expert_ids=[i.expert_id for i in accepted])
    uow.emit("consultation.stage", {"ticket_id": ticket.id, "main": main, "invitations": views},
             Audience(consultation_of_ticket=ticket.id))
    return views


async def add_opinion(uow: Uow, actor: Actor, ticket_id: int, text: str) -> dict[str, Any]:
    """专家意见 — written by an expert who accepted an invitation to this case."""
    actor.require(Role.expert)
    ticket = await uow.session.get(Ticket, ticket_id)
    if ticket is None or await accepted_invitation(uow, actor.user_id, ticket_id) is None:
        raise NotFound("ticket_not_found", "号不存在", ticket_id=ticket_id)
    text = text.strip()
    if not text:
        raise Invalid("empty_opinion", "意见不能为空")
    if len(text) > MAX_OPINION:
        raise Invalid("opinion_too_long", f"意见不超过 {MAX_OPINION} 字")
    opinion = ExpertOpinion(ticket_id=ticket_id, expert_id=actor.user_id, author_name=await _name(uow, actor.user_id),
                            text=text, at=uow.clock.now())
    uow.session.add(opinion)
    await uow.session.flush()
    audit.record(uow, actor, "consultation.opinion", "ticket", ticket_id, opinion_id=opinion.id)
    view = opinion_view(opinion)
    uow.emit("opinion.added", view, Audience(users=tuple(u for u in (ticket.clerk_id,) if u),
                                              consultation_of_ticket=ticket_id))
    return view


def opinion_view(o: ExpertOpinion) -> dict[str, Any]:
    return {"id": o.id, "ticket_id": o.ticket_id, "expert_id": o.expert_id, "author_name": o.author_name,
            "text": o.text, "at": o.at.isoformat()}


async def timeline(uow: Uow, actor: Actor, ticket_id: int) -> dict[str, Any]:
    """会商记录 — consultations, invitations (with response times), joins, opinions, in order."""
    ticket = await uow.session.get(Ticket, ticket_id)
    allowed = ticket is not None and (
        actor.role is Role.admin
        or (actor.role is Role.supervisor and watches(actor, ticket.centre_id, ticket.department_id))
        or role_in_call(actor, ticket) is Role.clerk
        or (actor.role is Role.expert and await accepted_invitation(uow, actor.user_id, ticket_id) is not None)
    )
    if ticket is None or not allowed:
        raise NotFound("ticket_not_found", "号不存在", ticket_id=ticket_id)
    consultations = (await uow.session.scalars(
        select(Consultation).where(Consultation.ticket_id == ticket_id).order_by(Consultation.id)
    )).all()
    invitations = (await uow.session.scalars(
        select(Invitation).where(Invitation.ticket_id == ticket_id).order_by(Invitation.id)
    )).all()
    opinions = (await uow.session.scalars(
        select(ExpertOpinion).where(ExpertOpinion.ticket_id == ticket_id).order_by(ExpertOpinion.id)
    )).all()
    names = {u.id: u.display_name for u in (await uow.session.scalars(
        select(User).where(User.id.in_({i.expert_id for i in invitations} | {i.invited_by_id for i in invitations}))
    )).all()}
    events: list[dict[str, Any]] = []
    for i in invitations:
        expert = names.get(i.expert_id, "")
        events.append({"at": i.created_at.isoformat(), "kind": "invited", "expert_id": i.expert_id,
                       "expert_name": expert, "by_id": i.invited_by_id, "by_name": names.get(i.invited_by_id, ""),
                       "invitation_id": i.id})
        if i.answered_at is not None:
            events.append({"at": i.answered_at.isoformat(), "kind": i.status.value, "expert_id": i.expert_id,
                           "expert_name": expert, "invitation_id": i.id,
                           "response_seconds": invitation_view(i)["response_seconds"]})
        elif i.status is InvitationStatus.expired:
            events.append({"at": i.expires_at.isoformat(), "kind": "expired", "expert_id": i.expert_id,
                           "expert_name": expert, "invitation_id": i.id})
    experts_in_case = {i.expert_id for i in invitations}
    moves = (await uow.session.scalars(
        select(AuditEntry).where(AuditEntry.target_type == "ticket", AuditEntry.target_id == str(ticket_id),
                                 AuditEntry.action.in_(("call.join", "call.leave")),
                                 AuditEntry.actor_id.in_(experts_in_case))
        .order_by(AuditEntry.id)
    )).all() if experts_in_case else []
    for m in moves:
        events.append({"at": m.at.isoformat(), "kind": "joined" if m.action == "call.join" else "left",
                       "expert_id": m.actor_id, "expert_name": names.get(m.actor_id or 0, "")})
    for o in opinions:
        events.append({"at": o.at.isoformat(), "kind": "opinion", "expert_id": o.expert_id,
                       "expert_name": o.author_name, "opinion_id": o.id, "text": o.text})
    events.sort(key=lambda e: e["at"])
    if actor.role is Role.expert:
        audit.record(uow, actor, "consultation.read", "ticket", ticket_id)
    return {
        "ticket_id": ticket_id,
        "consultations": [{"id": c.id, "note": c.note, "created_by_id": c.created_by_id,
                           "created_at": c.created_at.isoformat()} for c in consultations],
        "invitations": [invitation_view(i, expert_name=names.get(i.expert_id, "")) for i in invitations],
        "opinions": [opinion_view(o) for o in opinions],
        "timeline": events,
    }
