"""一次性告知: an item's checklist sent to a resident's phone as a link, and the link's page."""

from __future__ import annotations

from aiohttp import web

from server.api.base import actor, int_param, ok, parse, route
from server.api.responses import ChecklistSent, PublicChecklist
from server.api.schemas import ChecklistLinkIn, ResolveIn
from server.domain import checklists
from server.domain.errors import Invalid
from server.keys import DOMAIN, SETTINGS
from server.web_security import own_origin


@route("POST", "/api/items/{item_id}/checklist-links",
       "一次性告知：把事项的材料清单和办理地点以短链接短信发给群众（从办件发送时记入办件）",
       body=ChecklistLinkIn, roles=("worker", "clerk"), tag="catalog", response=ChecklistSent)
async def send_checklist(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, ChecklistLinkIn)
    settings = request.app[SETTINGS]
    # the address residents reach the app at: the first allowed origin when set (a proxy's
    # public name), else the one this request came to
    origin = settings.allowed_origins[0] if settings.allowed_origins else own_origin(request)
    if origin is None:
        raise Invalid("host_invalid", "无法确定平台地址，请联系管理员设置 YUNBANG_ALLOWED_ORIGINS")
    async with request.app[DOMAIN].unit() as uow:
        return ok(await checklists.send(uow, who, int_param(request, "item_id"), body.phone, origin=origin,
                                        ticket_id=body.ticket_id, situation_id=body.situation_id), status=201)


@route("GET", "/api/checklist-links/{token}", "一次性告知链接的内容（无需登录；过期后 410）",
       auth=False, tag="catalog", response=PublicChecklist)
async def read_checklist(request: web.Request) -> web.Response:
    async with request.app[DOMAIN].unit() as uow:
        return ok(await checklists.read(uow, request.match_info["token"][:200]))


@route("POST", "/api/checklist-links/{token}/resolve",
       "一次性告知链接：群众回答办理情形问题，看对应情形的材料、时限、收费和取件方式（无需登录）",
       body=ResolveIn, auth=False, tag="catalog", response=PublicChecklist)
async def resolve_checklist(request: web.Request) -> web.Response:
    body = await parse(request, ResolveIn)
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(await checklists.read(uow, request.match_info["token"][:200], body.answers))
