"""ICE servers for the call (STUN, TURN with short-lived credentials)."""

from __future__ import annotations

import time
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from server.api.base import CASE_PARTIES, actor, ok, route
from server.keys import SETTINGS
from signaling.ids import participant_id
from signaling.turn import ice_servers, transport_policy


class IceServer(BaseModel):
    """One W3C ``RTCIceServer`` dictionary, ready for ``new RTCPeerConnection({iceServers})``.
    STUN entries carry ``urls`` only; TURN entries add the short-lived credential."""

    model_config = ConfigDict(extra="forbid")
    urls: list[str] = Field(description="stun:/turn:/turns: URLs")
    username: str | None = Field(default=None, description="TURN only: '<expiry unix time>:u<user id>'")
    credential: str | None = Field(default=None, description="TURN only: base64(HMAC-SHA1(secret, username))")
    credentialType: Literal["password"] | None = Field(default=None, description="TURN only")


class IceServers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ice_servers: list[IceServer] = Field(description="empty when none is configured (a LAN reaches the relay)")
    ice_transport_policy: Literal["all", "relay"] = Field(
        description="the RTCConfiguration iceTransportPolicy for this user: relay = media only through TURN "
                    "(YUNBANG_ICE_RELAY_ROLES)")
    ttl_seconds: int = Field(description="how long TURN credentials are valid: fetch again before then")


@route("GET", "/api/ice-servers", "通话用 ICE 服务器（STUN；TURN 附短期凭据）", roles=CASE_PARTIES, tag="rtc",
       response=IceServers)
async def get_ice_servers(request: web.Request) -> web.Response:
    who = await actor(request)
    settings = request.app[SETTINGS]
    return ok({"ice_servers": ice_servers(settings, participant_id(who.user_id), time.time()),
               "ice_transport_policy": transport_policy(settings, who.role.value),
               "ttl_seconds": settings.turn_ttl_seconds})
