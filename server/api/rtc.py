"""ICE servers for the call (STUN, TURN with short-lived credentials)."""

from __future__ import annotations

import time

from aiohttp import web

from server.api.base import CASE_PARTIES, actor, ok, route
from server.api.responses import IceServers
from server.keys import SETTINGS
from signaling.ids import participant_id
from signaling.turn import ice_servers, transport_policy


@route("GET", "/api/ice-servers", "通话用 ICE 服务器（STUN；TURN 附短期凭据）", roles=CASE_PARTIES, tag="rtc",
       response=IceServers)
async def get_ice_servers(request: web.Request) -> web.Response:
    who = await actor(request)
    settings = request.app[SETTINGS]
    return ok({"ice_servers": ice_servers(settings, participant_id(who.user_id), time.time()),
               "ice_transport_policy": transport_policy(settings, who.role.value),
               "ttl_seconds": settings.turn_ttl_seconds})
