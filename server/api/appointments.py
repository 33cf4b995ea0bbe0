"""预约: residents book a slot on their own phone (屏对屏); at its time it enters the queue."""

from __future__ import annotations

from aiohttp import web

from server.api.base import actor, int_param, ok, parse, query, route
from server.api.responses import Appointment, Slot
from server.api.schemas import AppointmentIn, SlotQuery
from server.domain import appointments
from server.keys import DOMAIN


@route("GET", "/api/appointments/slots", "可预约时段（群众/企业）：该事项所在队列某日（不给则今后可约的每一天）的时段及剩余名额",
       query=SlotQuery, roles=("resident",), tag="resident", response=list[Slot])
async def slots(request: web.Request) -> web.Response:
    who = await actor(request)
    q = query(request, SlotQuery)
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok(await appointments.free_slots(uow, who, item_id=q.item_id, centre_id=q.centre_id, day=q.day))


@route("POST", "/api/appointments", "预约办理：到时自动进入排队、优先于现场取号（同一时间只能有一个预约；约满 409 slot_full）",
       body=AppointmentIn, roles=("resident",), tag="resident", response=Appointment)
async def book(request: web.Request) -> web.Response:
    who = await actor(request)
    body = await parse(request, AppointmentIn)
    async with request.app[DOMAIN].unit() as uow:
        booking = await appointments.book(uow, who, item_id=body.item_id, centre_id=body.centre_id,
                                          situation_id=body.situation_id, slot_start=body.slot_start,
                                          name=body.name)
        return ok(appointments.view(booking), status=201)


@route("GET", "/api/appointments", "本人的预约（最近 20 个）", roles=("resident",), tag="resident",
       response=list[Appointment])
async def mine(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit(write=False) as uow:
        return ok([appointments.view(a) for a in await appointments.mine(uow, who)])


@route("POST", "/api/appointments/{appointment_id}/cancel", "取消预约（进入排队前）", roles=("resident",),
       tag="resident", response=Appointment)
async def cancel(request: web.Request) -> web.Response:
    who = await actor(request)
    async with request.app[DOMAIN].unit() as uow:
        return ok(appointments.view(await appointments.cancel(uow, who, int_param(request, "appointment_id"))))
