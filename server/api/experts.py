"""Experts: the pool, invitations to a case's consultation, bringing experts into the call, opinions."""

from __future__ import annotations

from aiohttp import web

from server.api.base import actor, int_param, ok, parse, query, route
from server.api.responses import (
    AcceptedInvitation,
    ConsultationCreated,
    ConsultationRecord,
    ExpertOpinion,
    ExpertSettings,
    InvitationToMe,
    NamedInvitation,
    PoolExpert,
)
from server.api.schemas import (
    Decline,
    ExpertProfile,
    ExpertQuery,
    InvitationQuery,
    Invite,
    Opinion,
    Stage,
)
from server.domain import experts
from server.keys import DOMAIN, PRESENCE


@route("GET", "/api/experts", "专家库检索：按专长、部门、在线状态（presence: online / busy / offline）",
       query=ExpertQuery, roles=("clerk", "supervisor", "admin", "expert"), tag="experts", response=list[PoolExpert])
async def search(request: web.Request) -> web.Response:
    who = await actor(request)
    q = query(request, ExpertQuery)
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(await experts.search(uow, who, request.app[PRESENCE], specialty=q.specialty or None,
                                       department_id=q.department, online=q.online))


@route("PATCH", "/api/experts/me", "专家本人：暂停/恢复接受会商，是否允许同时参加多件会商", body=ExpertProfile,
       roles=("expert",), tag="experts", response=ExpertSettings)
async def profile(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, ExpertProfile)
    async with request.app[DOMAIN].unit() as uow:
        return ok(await experts.set_profile(uow, who, available=body.available,
                                            parallel_consultations=body.parallel_consultations))


@route("POST", "/api/tickets/{ticket_id}/consultations", "邀请专家会商（本件云窗口工作人员或部门负责人）",
       body=Invite, roles=("clerk", "supervisor"), tag="experts", response=ConsultationCreated)
async def invite(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, Invite)
    async with request.app[DOMAIN].unit() as uow:
        return ok(await experts.invite(uow, who, int_param(request, "ticket_id"), body.expert_ids, body.note), 201)


@route("GET", "/api/tickets/{ticket_id}/consultations", "会商记录：邀请、答复用时、进出、专家意见（时间线）",
       roles=("clerk", "supervisor", "admin", "expert"), tag="experts", response=ConsultationRecord)
async def timeline(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit() as uow:
        return ok(await experts.timeline(uow, who, int_param(request, "ticket_id")))


async def _stage(request: web.Request, *, main: bool) -> web.Response:
    who = await actor(request)
    body = await parse(request, Stage)
    async with request.app[DOMAIN].unit() as uow:
        return ok(await experts.set_stage(uow, who, int_param(request, "ticket_id"), main=main,
                                          expert_ids=body.expert_ids))


@route("POST", "/api/tickets/{ticket_id}/consultations/bring-in", "请已接受邀请的专家进入主通话（群众可见可听）",
       body=Stage, roles=("clerk", "supervisor"), tag="experts", response=list[NamedInvitation])
async def bring_in(request: web.Request) -> web.Response:
    return await _stage(request, main=True)


@route("POST", "/api/tickets/{ticket_id}/consultations/send-back", "请专家回到会商频道（群众不可见不可听）",
       body=Stage, roles=("clerk", "supervisor"), tag="experts", response=list[NamedInvitation])
async def send_back(request: web.Request) -> web.Response:
    return await _stage(request, main=False)


@route("GET", "/api/invitations", "专家本人的会商邀请（可按 status 筛选）", query=InvitationQuery,
       roles=("expert",), tag="experts", response=list[InvitationToMe])
async def mine(request: web.Request) -> web.Response:
    who = await actor(request)
    status = query(request, InvitationQuery).status
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(await experts.my_invitations(uow, who, status.value if status else None))


@route("POST", "/api/invitations/{invitation_id}/accept", "接受会商邀请（限时；一次只参加一件会商）",
       roles=("expert",), tag="experts", response=AcceptedInvitation)
async def accept(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit() as uow:
        return ok(await experts.accept(uow, who, int_param(request, "invitation_id")))


@route("POST", "/api/invitations/{invitation_id}/decline", "婉拒会商邀请", body=Decline, roles=("expert",),
       tag="experts", response=NamedInvitation)
async def decline(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, Decline)
    async with request.app[DOMAIN].unit() as uow:
        return ok(await experts.decline(uow, who, int_param(request, "invitation_id"), body.reason))


@route("POST", "/api/tickets/{ticket_id}/opinions", "专家意见（接受了本件邀请的专家）", body=Opinion,
       roles=("expert",), tag="experts", response=ExpertOpinion)
async def opinion(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, Opinion)
    async with request.app[DOMAIN].unit() as uow:
        return ok(await experts.add_opinion(uow, who, int_param(request, "ticket_id"), body.text), 201)
