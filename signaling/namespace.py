"""The socket.io namespace: token authentication and the rooms live events go to.

Thin like the HTTP handlers: it authenticates, puts the socket in its rooms and answers with
acks; everything else it needs comes through the constructor.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

import socketio

from server.auth import TokenSigner
from server.domain.errors import DomainError
from server.runtime import Domain
from signaling.audience import rooms_for_actor

log = logging.getLogger("yunbang.socket")


class LiveNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    def __init__(self, domain: Domain, tokens: TokenSigner) -> None:
        super().__init__("/")
        self.domain = domain
        self.tokens = tokens

    async def _authenticate(self, environ: dict[str, Any], auth: Any) -> Any:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not token:
            token = (parse_qs(environ.get("QUERY_STRING", "")).get("token") or [""])[0]
        if not token:
            raise DomainError("auth_required", "请先登录")
        request = environ.get("aiohttp.request")
        ip = request.remote if request is not None else ""
        return await self.domain.actor(self.tokens.user_id(token), ip or "")

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        try:
            actor = await self._authenticate(environ, auth)
        except DomainError as exc:
            raise socketio.exceptions.ConnectionRefusedError({"code": exc.code, "message": exc.message}) from exc
        rooms = rooms_for_actor(actor)
        await self.save_session(sid, {"user_id": actor.user_id, "role": actor.role.value, "rooms": sorted(rooms)})
        for room in rooms:
            await self.enter_room(sid, room)

    async def on_refresh(self, sid: str, data: Any = None) -> dict[str, Any]:
        """Re-read the user's bindings (a tidal window was opened for them) and re-join rooms."""
        session = await self.get_session(sid)
        try:
            actor = await self.domain.actor(session["user_id"])
        except DomainError as exc:
            await self.disconnect(sid)
            return {"error": {"code": exc.code, "message": exc.message}}
        rooms = rooms_for_actor(actor)
        for room in set(session["rooms"]) - rooms:
            await self.leave_room(sid, room)
        for room in rooms - set(session["rooms"]):
            await self.enter_room(sid, room)
        session["rooms"] = sorted(rooms)
        await self.save_session(sid, session)
        return {"ok": True, "rooms": sorted(rooms)}

    async def on_ping_app(self, sid: str, data: Any = None) -> dict[str, Any]:
        session = await self.get_session(sid)
        return {"ok": True, "user_id": session["user_id"]}
