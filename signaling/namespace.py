"""The socket.io namespace: token authentication and the rooms live events go to.

Thin like the HTTP handlers: it authenticates, puts the socket in its rooms and answers with
acks; everything else it needs comes through the constructor.

Every event a client sends is answered, whatever it carries: a known event with its result or
``{"error": {"code", "message"}}`` (a domain refusal's own code; ``invalid_input`` for a payload
of the wrong shape; ``internal_error``, logged once, for anything unforeseen), an unknown event
with ``unknown_event``, and a packet whose JSON cannot be read with ``malformed_json``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import socketio
from pydantic import BaseModel, ValidationError
from socketio import packet

from server import logs
from server.auth import TokenSigner
from server.domain.context import Actor
from server.domain.errors import DomainError
from server.models import Role
from server.runtime import Domain
from signaling.audience import rooms_for_actor, user_room
from signaling.calls import CallService
from signaling.ids import room_id
from signaling.messages import (
    CODED_ERRORS,
    CaptureRequest,
    Chat,
    IceCandidate,
    Join,
    Mute,
    NetCheck,
    NetCheckEnd,
    Publish,
    SubscribeAnswer,
)
from signaling.presence import LocalPresence
from signaling.tasks import Tasks

log = logging.getLogger("yunbang.socket")


M = TypeVar("M", bound=BaseModel)
# What clients may send (each an ``on_<name>`` method); connect/disconnect are the server's own.
CLIENT_EVENTS = ("refresh", "ping_app", "join", "publish", "subscribe_answer", "resubscribe", "ice_candidate",
                 "mute", "chat", "capture_request", "leave", "net_check", "net_check_end")
UNREADABLE = "\x00unreadable"  # stands in for the event of a packet whose JSON could not be read


def error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_ack(exc: DomainError) -> dict[str, Any]:
    ack = error(exc.code, exc.message)
    if exc.detail:
        ack["error"]["detail"] = exc.detail
    return ack


class TolerantPacket(packet.Packet):
    """A socket.io packet that always decodes: an event whose JSON cannot be read (past Python's
    4300-digit integers, nested past the parser's stack) or that is not ``[name, ...]`` becomes
    the event `UNREADABLE`, which the namespace answers, instead of an exception in the server's
    reader that leaves the client waiting for an ack forever."""

    def decode(self, encoded_packet: Any) -> int:
        try:
            attachments = int(super().decode(encoded_packet))
        except (ValueError, RecursionError):
            if self.packet_type == packet.CONNECT:  # unreadable credentials: none, so refused
                self.data = None
                return 0
            if self.packet_type not in (packet.EVENT, packet.BINARY_EVENT):
                raise
            self.packet_type, self.data = packet.EVENT, [UNREADABLE]
            return 0
        if self.packet_type in (packet.EVENT, packet.BINARY_EVENT) and not (
                isinstance(self.data, list) and self.data and isinstance(self.data[0], str)):
            self.packet_type, self.data = packet.EVENT, [UNREADABLE]
            return 0
        return attachments


class LiveNamespace(socketio.AsyncNamespace):
    def __init__(self, domain: Domain, tokens: TokenSigner, calls: CallService, presence: LocalPresence,
                 client_ip: Callable[[Any], str], *, observe: Callable[[str, str], None] | None = None) -> None:
        """``observe(event, result)`` hears of every event answered (result: ``ok`` or the error
        code) and of every connection (``connect``): the metrics count them."""
        super().__init__("/")
        self.domain = domain
        self.tokens = tokens
        self.calls = calls
        self.presence = presence
        self.client_ip = client_ip
        self.observe = observe or (lambda event, result: None)
        self.tasks = Tasks("socket")  # ended by close
        self.events = {name: getattr(self, f"on_{name}") for name in CLIENT_EVENTS}
        self.sockets: set[str] = set()  # connected here: a disconnect is handled once

    def _set_server(self, server: socketio.AsyncServer) -> None:
        """The server reads client packets with `TolerantPacket`, so every event reaches
        `trigger_event` and is answered."""
        super()._set_server(server)
        server.packet_class = TolerantPacket

    async def trigger_event(self, event: Any, *args: Any) -> Any:
        """Dispatch one event; the return value is the client's ack, whatever happens. What the
        handler learns (the user, the ticket and its room) is on the lines it writes, and on
        those of the tasks it starts, but not on the next event's."""
        with logs.scope():
            return await self._dispatch(event, *args)

    async def _dispatch(self, event: Any, *args: Any) -> Any:
        sid = args[0] if args else None
        if event == "connect" and len(args) >= 2 and args[1] is self._environ(sid):
            return await self.on_connect(*args)
        if event == "disconnect" and sid in self.sockets and not self.server.manager.is_connected(sid, self.namespace):
            return await self.on_disconnect(*args)
        ack = await self._answer(event, sid, args)
        known = (event if isinstance(event, str) and event in self.events
                 else "unreadable" if event == UNREADABLE else "unknown")  # names a client cannot multiply
        error_part = ack.get("error") if isinstance(ack, dict) else None
        self.observe(known, error_part["code"] if isinstance(error_part, dict) else "ok")
        return ack

    async def _answer(self, event: Any, sid: Any, args: tuple[Any, ...]) -> Any:
        if event == UNREADABLE:
            return error("malformed_json", "消息不是合法的 JSON 事件")
        handler = self.events.get(event) if isinstance(event, str) else None
        if handler is None:
            return error("unknown_event", "没有这个事件")
        if len(args) > 2:
            return error("invalid_input", "每个事件只带一个消息对象")
        try:
            return await handler(sid, args[1] if len(args) == 2 else None)
        except DomainError as exc:
            return error_ack(exc)
        except Exception:
            log.exception("socket event %s failed", event)
            return error("internal_error", "服务器内部错误，请稍后重试")

    def _environ(self, sid: Any) -> dict[str, Any] | None:
        eio_sid = self.server.manager.eio_sid_from_sid(sid, self.namespace) if isinstance(sid, str) else None
        return self.server.environ.get(eio_sid) if eio_sid else None

    async def end_sessions(self, user_id: int, session_ids: list[str]) -> int:
        """Disconnect this node's sockets of those sessions (revoked: logout, password, role…)."""
        gone = 0
        for sid, _ in list(self.server.manager.get_participants(self.namespace, user_room(user_id))):
            session = await self.get_session(sid)
            if session and session.get("auth_session") in session_ids:
                await self.disconnect(sid)
                gone += 1
        return gone

    async def _authenticate(self, environ: dict[str, Any], auth: Any) -> Actor:
        """The token comes in the handshake's ``auth`` payload only, never in the URL (where
        access logs would keep it)."""
        token = auth.get("token") if isinstance(auth, dict) else None
        if not token or not isinstance(token, str):
            raise DomainError("auth_required", "请先登录")
        request = environ.get("aiohttp.request")
        ip = self.client_ip(request) if request is not None else ""
        user_id, session_id = self.tokens.claims(token)
        actor = await self.domain.actor(user_id, ip, session_id)
        logs.bind(user_id=actor.user_id)
        return actor

    async def _actor(self, sid: str) -> Actor:
        """Who sends this event: their session is checked again (a revoked token stops here)."""
        session = await self.get_session(sid)
        if not session or "user_id" not in session:
            raise DomainError("auth_required", "请先登录")
        logs.bind(user_id=session["user_id"])
        try:
            return await self.domain.actor(session["user_id"], session.get("ip", ""), session["auth_session"])
        except DomainError:
            self._disconnect_after_ack(sid)
            raise

    def _disconnect_after_ack(self, sid: str) -> None:
        """A socket whose session ended gets its error ack, then is disconnected."""

        async def later() -> None:
            await asyncio.sleep(0.2)
            await self.disconnect(sid)

        self.tasks.spawn(later(), name="disconnect after ack")

    async def close(self) -> None:
        await self.tasks.close()

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        try:
            actor = await self._authenticate(environ, auth)
        except DomainError as exc:
            self.observe("connect", exc.code)
            raise socketio.exceptions.ConnectionRefusedError({"code": exc.code, "message": exc.message}) from exc
        self.observe("connect", "ok")
        rooms = rooms_for_actor(actor)
        point = actor.extension_point_id if actor.role is Role.worker else None
        await self.save_session(sid, {"user_id": actor.user_id, "role": actor.role.value, "rooms": sorted(rooms),
                                      "auth_session": actor.session_id, "ip": actor.ip, "point": point})
        for room in rooms:
            await self.enter_room(sid, room)
        self.sockets.add(sid)
        self.presence.connected(actor.user_id)
        if point is not None:  # the point's last connection (docs/network.md)
            await self.domain.point_seen(point)

    async def on_refresh(self, sid: str, data: Any = None) -> dict[str, Any]:
        """Re-read the user's bindings (a tidal window was opened for them) and re-join rooms."""
        session = await self.get_session(sid)
        try:
            actor = await self._actor(sid)
        except DomainError as exc:
            return error_ack(exc)
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

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        if sid not in self.sockets:
            return
        self.sockets.discard(sid)
        session = await self.get_session(sid)
        if session and "user_id" in session:
            logs.bind(user_id=session["user_id"])
            self.presence.disconnected(session["user_id"])
        await self.calls.socket_gone(sid)
        if session and session.get("point") is not None:
            await self.domain.point_seen(session["point"])

    # --- the call: every handler validates, checks who asks, and hands over ---------------
    async def _call(self, sid: str, data: Any, model: type[M], act: Callable[[Actor, M], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        if not isinstance(data, dict):
            return error("invalid_input", "消息应为一个对象")
        try:
            message = model.model_validate(data)
        except ValidationError as exc:
            coded = [e for e in exc.errors() if e["type"] in CODED_ERRORS]
            if coded:
                return error(coded[0]["type"], coded[0]["msg"])
            fields = ", ".join(".".join(str(p) for p in e["loc"]) or "message" for e in exc.errors()[:5])
            return error("invalid_input", f"消息格式不正确：{fields}")
        except RecursionError:
            return error("invalid_input", "消息嵌套过深")
        ticket_id = getattr(message, "ticket_id", None)  # a device check has none
        if ticket_id is not None:
            logs.bind(ticket_id=ticket_id, room_id=room_id(ticket_id))
        try:
            actor = await self._actor(sid)
            return await act(actor, message)
        except DomainError as exc:
            return error_ack(exc)

    async def on_join(self, sid: str, data: Any = None) -> dict[str, Any]:
        return await self._call(sid, data, Join, lambda a, m: self.calls.join(sid, a, m.ticket_id))

    async def on_publish(self, sid: str, data: Any = None) -> dict[str, Any]:
        return await self._call(sid, data, Publish,
                                lambda a, m: self.calls.publish(sid, a, m.ticket_id, m.sdp, m.sources))

    async def on_subscribe_answer(self, sid: str, data: Any = None) -> dict[str, Any]:
        return await self._call(sid, data, SubscribeAnswer,
                                lambda a, m: self.calls.subscribe_answer(sid, a, m.ticket_id, m.sdp))

    async def on_resubscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        return await self._call(sid, data, Join, lambda a, m: self.calls.resubscribe(sid, a, m.ticket_id))

    async def on_ice_candidate(self, sid: str, data: Any = None) -> dict[str, Any]:
        return await self._call(sid, data, IceCandidate, lambda a, m: self.calls.ice_candidate(
            sid, a, m.ticket_id, m.pc, m.candidate.model_dump() if m.candidate else {}))

    async def on_mute(self, sid: str, data: Any = None) -> dict[str, Any]:
        return await self._call(sid, data, Mute, lambda a, m: self.calls.mute(sid, a, m.ticket_id, m.source, m.muted))

    async def on_chat(self, sid: str, data: Any = None) -> dict[str, Any]:
        return await self._call(sid, data, Chat, lambda a, m: self.calls.chat(sid, a, m.ticket_id, m.text, m.channel))

    async def on_capture_request(self, sid: str, data: Any = None) -> dict[str, Any]:
        return await self._call(sid, data, CaptureRequest,
                                lambda a, m: self.calls.capture_request(sid, a, m.ticket_id, m.material))

    async def on_leave(self, sid: str, data: Any = None) -> dict[str, Any]:
        return await self._call(sid, data, Join, lambda a, m: self.calls.leave(sid, a, m.ticket_id))

    async def on_net_check(self, sid: str, data: Any = None) -> dict[str, Any]:
        return await self._call(sid, data, NetCheck, lambda a, m: self.calls.net_check(a, m.sdp))

    async def on_net_check_end(self, sid: str, data: Any = None) -> dict[str, Any]:
        return await self._call(sid, data, NetCheckEnd, lambda a, m: self.calls.net_check_end(a))
