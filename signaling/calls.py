"""Calls: the bridge between socket.io clients, the domain's seats and the media relay.

Room id ``t{ticket_id}``, participant id ``u{user_id}``: one place per user per call. A socket
that drops keeps its place for a grace period; the same user joining again within it (a
reloaded tab, a reconnected network) takes the place back and renegotiates its media.

Two socket.io rooms per call: ``call:{ticket}`` (everyone in it) and ``call:{ticket}:private``
(the clerk and the experts: the consultation channel). Experts who are still in the
consultation channel are announced, heard and seen only there; the relay keeps their tracks
(and anyone's ``side_*`` tracks) away from the worker.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import socketio

from server.domain import calls, documents, links
from server.domain.context import Actor
from server.domain.errors import Conflict, DomainError
from server.events import Event
from server.models import Role
from server.runtime import Domain
from signaling.audience import call_room, consultation_room
from signaling.ids import participant_id, room_id, ticket_of, user_of
from signaling.relay import quality
from signaling.relay.ice import MediaNetwork
from signaling.relay.probe import Probes
from signaling.relay.relay import Relay, RelayError
from signaling.tasks import Tasks

log = logging.getLogger("yunbang.calls")
T = TypeVar("T")
LINK_SAMPLE_S = 5.0  # how often each participant's link is graded and recorded (domain/links.py)


def socket_room(ticket_id: int) -> str:
    return call_room(ticket_id)


@dataclass
class Presence:
    seat: calls.Seat
    sid: str
    leave_task: asyncio.Task[None] | None = None


class CallService:
    def __init__(self, domain: Domain, sio: socketio.AsyncServer, grace_seconds: float = 60.0,
                 media_network: MediaNetwork | None = None) -> None:
        self.domain = domain
        self.sio = sio
        self.grace = grace_seconds
        self.relay = Relay(self, network=media_network)
        self.probes = Probes(lambda: self.relay.ice_servers, network=media_network)
        self.present: dict[tuple[int, int], Presence] = {}
        self.link_sample_s = LINK_SAMPLE_S
        self._links: asyncio.Task[None] | None = None
        self.tasks = Tasks("calls")  # ended by shutdown

    # --- RelaySink -------------------------------------------------------------------------
    async def subscribe_offer(self, room: str, participant: str, sdp: str, tracks: list[dict[str, Any]]) -> None:
        presence = self._by_ids(room, participant)
        if presence is not None:
            await self.sio.emit("subscribe_offer", {"ticket_id": presence.seat.ticket_id, "type": "offer",
                                                    "sdp": sdp, "tracks": self._label(tracks)}, to=presence.sid)

    async def peer_state(self, room: str, participant: str, which: str, state: str) -> None:
        presence = self._by_ids(room, participant)
        if presence is not None:
            await self.sio.emit("peer_state", {"ticket_id": presence.seat.ticket_id, "pc": which, "state": state},
                                to=presence.sid)

    async def video_paused(self, room: str, participant: str, track_id: str, paused: bool) -> None:
        """Audio first: this participant's link cannot take that video now (or can again)."""
        presence = self._by_ids(room, participant)
        if presence is not None:
            await self.sio.emit("video_paused", {"ticket_id": presence.seat.ticket_id, "track_id": track_id,
                                                 "paused": paused, "reason": "network"}, to=presence.sid)

    async def publish_layers(self, room: str, participant: str, source: str, active: list[str]) -> None:
        """Dynacast: which of its simulcast layers this publisher should send now."""
        presence = self._by_ids(room, participant)
        if presence is not None:
            await self.sio.emit("publish_layers", {"ticket_id": presence.seat.ticket_id, "source": source,
                                                   "active": active}, to=presence.sid)

    def _by_ids(self, room: str, participant: str) -> Presence | None:
        return self.present.get((ticket_of(room), user_of(participant)))

    def _label(self, tracks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add who publishes each track (user id, role, name) to the relay's track list."""
        people = {participant_id(k[1]): p.seat for k, p in self.present.items()}
        labelled = []
        for t in tracks:
            seat = people.get(t.get("participant_id", ""))
            extra = {"user_id": seat.user_id, "role": seat.role.value, "display_name": seat.display_name} if seat else {}
            labelled.append({**t, **extra})
        return labelled

    def in_call(self, user_id: int) -> bool:
        """Whether the user holds a place in any call (for presence: busy)."""
        return any(key[1] == user_id for key in self.present)

    def _announce_to(self, seat: calls.Seat) -> str:
        return consultation_room(seat.ticket_id) if seat.private else socket_room(seat.ticket_id)

    # --- client requests -------------------------------------------------------------------
    async def join(self, sid: str, actor: Actor, ticket_id: int) -> dict[str, Any]:
        async with self.domain.unit() as uow:
            seat = await calls.take_seat(uow, actor, ticket_id)
        key = (ticket_id, actor.user_id)
        presence = self.present.get(key)
        rejoin = presence is not None
        if presence is not None:
            if presence.leave_task is not None:
                presence.leave_task.cancel()
                presence.leave_task = None
            if presence.sid != sid:
                await self.sio.leave_room(presence.sid, socket_room(ticket_id))
                await self.sio.leave_room(presence.sid, consultation_room(ticket_id))
                await self.sio.emit("call_replaced", {"ticket_id": ticket_id}, to=presence.sid)
            presence.sid = sid
            presence.seat = seat
        else:
            presence = self.present[key] = Presence(seat, sid)
        backstage = seat.role in calls.PRIVATE_ROLES
        tracks = self.relay.join(room_id(ticket_id), participant_id(actor.user_id), private=seat.private,
                                 backstage=backstage)
        self._start_link_sampling()
        await self.sio.enter_room(sid, socket_room(ticket_id))
        if backstage:
            await self.sio.enter_room(sid, consultation_room(ticket_id))
        await self.sio.emit("participant_joined", self._participant_view(seat), to=self._announce_to(seat), skip_sid=sid)
        log.info("%s %s the call", seat.role.value, "rejoined" if rejoin else "joined")
        step = self.relay.resubscribe if rejoin else self.relay.subscribe
        self.tasks.spawn(self._guard(step(room_id(ticket_id), participant_id(actor.user_id))),
                         name=f"{'resubscribe' if rejoin else 'subscribe'} {participant_id(actor.user_id)}")
        return {
            "ticket_id": ticket_id,
            "participant_id": participant_id(actor.user_id),
            "role": seat.role.value,
            "rejoined": rejoin,
            "participants": [self._participant_view(p.seat) for k, p in self.present.items()
                             if k[0] == ticket_id and (backstage or not p.seat.private)],
            "tracks": self._label([t for t in tracks if t["participant_id"] != participant_id(actor.user_id)]),
        }

    def _participant_view(self, seat: calls.Seat) -> dict[str, Any]:
        return {"ticket_id": seat.ticket_id, "participant_id": participant_id(seat.user_id), "user_id": seat.user_id,
                "role": seat.role.value, "display_name": seat.display_name,
                "channel": "consultation" if seat.private else "call"}

    def _seat(self, sid: str, actor: Actor, ticket_id: int) -> Presence:
        presence = self.present.get((ticket_id, actor.user_id))
        if presence is None or presence.sid != sid:
            raise Conflict("not_in_call", "请先加入通话")
        return presence

    async def publish(self, sid: str, actor: Actor, ticket_id: int, sdp: str, sources: Mapping[str, str]) -> dict[str, Any]:
        self._seat(sid, actor, ticket_id)
        answer = await self._relay_call(self.relay.publish(room_id(ticket_id), participant_id(actor.user_id), sdp, sources))
        return {"ticket_id": ticket_id, "type": "answer", "sdp": answer}

    async def subscribe_answer(self, sid: str, actor: Actor, ticket_id: int, sdp: str) -> dict[str, Any]:
        self._seat(sid, actor, ticket_id)
        await self._relay_call(self.relay.answer_subscription(room_id(ticket_id), participant_id(actor.user_id), sdp))
        return {"ok": True}

    async def resubscribe(self, sid: str, actor: Actor, ticket_id: int) -> dict[str, Any]:
        self._seat(sid, actor, ticket_id)
        await self._relay_call(self.relay.resubscribe(room_id(ticket_id), participant_id(actor.user_id)))
        return {"ok": True}

    async def ice_candidate(self, sid: str, actor: Actor, ticket_id: int, pc: str, candidate: dict[str, Any]) -> dict[str, Any]:
        self._seat(sid, actor, ticket_id)
        await self._relay_call(self.relay.add_ice_candidate(room_id(ticket_id), participant_id(actor.user_id), pc, candidate))
        return {"ok": True}

    async def mute(self, sid: str, actor: Actor, ticket_id: int, source: str, muted: bool) -> dict[str, Any]:
        self._seat(sid, actor, ticket_id)
        try:
            track = self.relay.set_muted(room_id(ticket_id), participant_id(actor.user_id), source, muted)
        except RelayError as exc:
            raise DomainError(exc.code, exc.message) from exc
        to = consultation_room(ticket_id) if track["channel"] == "consultation" else socket_room(ticket_id)
        await self.sio.emit("track_muted", {"ticket_id": ticket_id, **track}, to=to)
        return {"ok": True, "track": track}

    async def chat(self, sid: str, actor: Actor, ticket_id: int, text: str, channel: str = "call") -> dict[str, Any]:
        self._seat(sid, actor, ticket_id)
        async with self.domain.unit() as uow:
            message = await calls.post_message(uow, actor, ticket_id, text, channel, self.domain.settings.chat)
        to = consultation_room(ticket_id) if channel == "consultation" else socket_room(ticket_id)
        await self.sio.emit("chat_message", message, to=to)
        return {"ok": True, "message": message}

    async def capture_request(self, sid: str, actor: Actor, ticket_id: int, material: str) -> dict[str, Any]:
        """The clerk asks the worker's browser for a camera still of one checklist line."""
        self._seat(sid, actor, ticket_id)
        async with self.domain.unit() as uow:
            request = await documents.request_capture(uow, actor, ticket_id, material)
        await self.sio.emit("capture_requested", request, to=socket_room(ticket_id), skip_sid=sid)
        return {"ok": True, **request}

    async def leave(self, sid: str, actor: Actor, ticket_id: int) -> dict[str, Any]:
        self._seat(sid, actor, ticket_id)
        await self._remove((ticket_id, actor.user_id))
        return {"ok": True}

    async def _relay_call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except RelayError as exc:
            raise DomainError(exc.code, exc.message) from exc

    async def _guard(self, call: Awaitable[object]) -> None:
        try:
            await call
        except (RelayError, DomainError) as exc:
            log.info("call negotiation step refused: %s", exc)
        except Exception:
            log.exception("call negotiation step failed")

    # --- the device check's network line (signaling/relay/probe.py) -----------------------
    async def net_check(self, actor: Actor, sdp: str) -> dict[str, Any]:
        """Answer a browser's probe offer: the relay echoes its video back for a few seconds."""
        calls.may_check_network(actor)
        answer = await self._relay_call(self.probes.start(participant_id(actor.user_id), sdp))
        return {"type": "answer", "sdp": answer, "max_s": self.probes.max_s}

    async def net_check_end(self, actor: Actor) -> dict[str, Any]:
        figures = await self.probes.stop(participant_id(actor.user_id))
        return {"ok": True, **(figures or {})}

    # --- link quality (signaling/relay/quality.py grades, server/domain/links.py records) ---
    def _start_link_sampling(self) -> None:
        if self._links is None or self._links.done():
            # every call's loop: not on the lines of the call that happened to start it
            self._links = self.tasks.spawn(self._sample_links_loop(), name="link sampling", context=contextvars.Context())

    async def _sample_links_loop(self) -> None:
        """Every few seconds while anyone is in a call; ends by itself when the last one leaves."""
        last = time.monotonic()
        while self.present:
            await asyncio.sleep(self.link_sample_s)
            now = time.monotonic()
            try:
                await self.sample_links(now - last)
            except Exception:
                log.exception("recording call links failed")
            last = now

    async def sample_links(self, seconds: float) -> None:
        """Grade every participant's link and record it on its ticket."""
        by_ticket: dict[int, list[links.LinkSample]] = defaultdict(list)
        rooms: dict[int, dict[str, quality.LinkReport]] = {}
        for (ticket_id, user_id), presence in list(self.present.items()):
            if ticket_id not in rooms:
                rooms[ticket_id] = quality.room_links(self.relay, room_id(ticket_id))
            report = rooms[ticket_id].get(participant_id(user_id))
            if report is None:
                continue
            rates = [r for r in (report.downlink_bps, report.uplink_bps) if r is not None]
            by_ticket[ticket_id].append(links.LinkSample(user_id, presence.seat.role.value, report.grade, report.loss,
                                                         report.rtt_s, min(rates) if rates else None))
        for ticket_id, samples in by_ticket.items():
            async with self.domain.unit() as uow:
                await links.record(uow, ticket_id, samples, seconds)

    # --- lifecycle -------------------------------------------------------------------------
    async def socket_gone(self, sid: str) -> None:
        """Keep the places of a dropped socket for the grace period."""
        for key, presence in list(self.present.items()):
            if presence.sid == sid and presence.leave_task is None:
                presence.leave_task = self.tasks.spawn(self._leave_later(key), name=f"grace {participant_id(key[1])}")

    async def _leave_later(self, key: tuple[int, int]) -> None:
        await asyncio.sleep(self.grace)
        presence = self.present.get(key)
        if presence is not None:
            presence.leave_task = None
            await self._remove(key)

    async def _remove(self, key: tuple[int, int]) -> None:
        presence = self.present.pop(key, None)
        if presence is None:
            return
        if presence.leave_task is not None:
            presence.leave_task.cancel()
        ticket_id, user_id = key
        log.info("%s left the call", presence.seat.role.value,
                 extra={"user_id": user_id, "ticket_id": ticket_id, "room_id": room_id(ticket_id)})
        await self.relay.leave(room_id(ticket_id), participant_id(user_id))
        await self.sio.leave_room(presence.sid, socket_room(ticket_id))
        await self.sio.leave_room(presence.sid, consultation_room(ticket_id))
        await self.sio.emit("participant_left", self._participant_view(presence.seat),
                            to=self._announce_to(presence.seat))
        if presence.seat.role is Role.expert:
            try:
                async with self.domain.unit() as uow:
                    await calls.leave_seat(uow, presence.seat)
            except Exception:
                log.exception("recording that expert %s left call %s failed", user_id, ticket_id,
                              extra={"user_id": user_id, "ticket_id": ticket_id, "room_id": room_id(ticket_id)})

    async def _stage(self, event: Event) -> None:
        """The clerk brought experts into the main call, or sent them back to the side room."""
        ticket_id, main = int(event.payload["ticket_id"]), bool(event.payload["main"])
        for invitation in event.payload["invitations"]:
            presence = self.present.get((ticket_id, int(invitation["expert_id"])))
            if presence is None or presence.seat.private == (not main):
                continue
            presence.seat = dataclasses.replace(presence.seat, private=not main)
            await self.relay.set_private(room_id(ticket_id), participant_id(presence.seat.user_id), not main)
            # Only those outside the consultation channel see the expert arrive or go: the clerk
            # and the experts keep them (they follow consultation.stage).
            backstage = [p.sid for k, p in self.present.items()
                         if k[0] == ticket_id and p.seat.role in calls.PRIVATE_ROLES]
            await self.sio.emit("participant_joined" if main else "participant_left", self._participant_view(presence.seat),
                                to=socket_room(ticket_id), skip_sid=backstage)

    async def on_event(self, event: Event) -> None:
        """A ticket that leaves service closes its call and frees everything it held."""
        if event.name == "consultation.stage":
            await self._stage(event)
            return
        if not event.name.startswith("ticket.") or "status" not in event.payload:
            return
        if calls.call_is_open(event.payload["status"]):
            return
        await self.close(int(event.payload["id"]), event.payload["status"])

    async def close(self, ticket_id: int, status: str) -> None:
        for key in [k for k in self.present if k[0] == ticket_id]:
            presence = self.present.pop(key)
            if presence.leave_task is not None:
                presence.leave_task.cancel()
        if room_id(ticket_id) in self.relay.rooms:
            await self.relay.close_room(room_id(ticket_id))
        await self.sio.emit("call_closed", {"ticket_id": ticket_id, "status": status}, to=socket_room(ticket_id))
        await self.sio.close_room(socket_room(ticket_id))
        await self.sio.close_room(consultation_room(ticket_id))

    async def shutdown(self) -> None:
        """End the service's tasks (link sampling, negotiation steps, grace periods), then the
        probes and the relay."""
        await self.tasks.close()
        self._links = None
        await self.probes.shutdown()
        await self.relay.shutdown()
        self.present.clear()
