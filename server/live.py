"""Live delivery: domain events to socket.io rooms, coalesced position pushes, the monitor."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import socketio

from server.domain import alerts, appointments, certificates, experts, ledger, org, queue
from server.domain.context import SYSTEM
from server.domain.errors import DomainError
from server.events import Audience, Event, QueueTouched
from server.runtime import Domain
from signaling.audience import deliveries, user_room
from signaling.tasks import Tasks

log = logging.getLogger("yunbang.live")


class SocketSink:
    """Publishes committed domain events to socket.io rooms, then to its observers; a queue
    whose order changed (``QueueTouched``) goes to its queue observers."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio
        self.observers: list[Callable[[Event], Awaitable[None]]] = []
        self.queue_observers: list[Callable[[QueueTouched], None]] = []

    async def publish(self, events: list[Event | QueueTouched]) -> None:
        for event in events:
            if isinstance(event, QueueTouched):
                for touched in self.queue_observers:
                    touched(event)
                continue
            for payload, rooms in deliveries(event):
                await self.sio.emit(event.name, payload, to=rooms)
            for observer in self.observers:
                try:
                    await observer(event)
                except Exception:
                    log.exception("observer of %s failed", event.name)


class QueuePositions:
    """Pushes the figures of each queue whose order changed, and its waiting workers' positions,
    at most once per ``coalesce_seconds`` (a burst of calls and takes is one push)."""

    def __init__(self, domain: Domain, sio: socketio.AsyncServer, coalesce_seconds: float = 0.2) -> None:
        self.domain = domain
        self.sio = sio
        self._pending: set[tuple[int, int]] = set()
        self._flush: asyncio.Task[None] | None = None
        self._delay = coalesce_seconds
        self.tasks = Tasks("queue positions")  # ended by close

    def touched(self, event: QueueTouched) -> None:
        self._pending.add((event.centre_id, event.department_id))
        if self._flush is None or self._flush.done():
            # every queue's push: not on the log lines of the request that happened to start it
            self._flush = self.tasks.spawn(self._flush_later(), name="push", context=contextvars.Context())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._delay)
        pending, self._pending = self._pending, set()
        for centre_id, department_id in sorted(pending):
            try:
                async with self.domain.unit(write=False) as uow:
                    figures = await queue.queues(uow, centre_id=centre_id, department_id=department_id)
                    placements = await queue.waiting_placements(uow, centre_id, department_id)
            except Exception:
                log.exception("position push for queue %s/%s failed", centre_id, department_id)
                continue
            watchers = Audience(queue_clerks=((centre_id, department_id),),
                                queue_supervisors=((centre_id, department_id),))
            for figure in figures:
                for payload, rooms in deliveries(Event("queue.updated", figure, watchers)):
                    await self.sio.emit("queue.updated", payload, to=rooms)
            for p in placements:
                await self.sio.emit("ticket.position", {k: v for k, v in p.items() if k != "worker_id"},
                                    to=user_room(p["worker_id"]))

    async def close(self) -> None:
        """Push what is pending (the last changes before a stop still reach the screens), then end."""
        while self._flush is not None and not self._flush.done():
            await self._flush
        await self.tasks.close()


class Monitor:
    """Runs the alert checks, closes tidal windows, expires expert invitations whose time is up,
    puts booked appointments in their queue and texts certificate expiry reminders, every few
    seconds."""

    def __init__(self, domain: Domain, interval: float,
                 housekeeping: list[Callable[[], Awaitable[int]]] | None = None) -> None:
        self.domain = domain
        self.interval = interval
        self.housekeeping = housekeeping or []

    async def run_once(self) -> list[dict[str, Any]]:
        async with self.domain.unit() as uow:
            raised = [alerts.alert_view(a) for a in await alerts.check(uow)]
            due = await org.due_tidal_windows(uow)
        async with self.domain.unit() as uow:
            await experts.expire_due(uow)
        async with self.domain.unit() as uow:
            await ledger.escalate_due(uow)
        async with self.domain.unit() as uow:
            await alerts.renotify_due(uow)
        async with self.domain.unit(write=False) as uow:
            booked = await appointments.due(uow)
        for appointment_id in booked:  # 预约: each in its own transaction (one failing stops none)
            try:
                async with self.domain.unit() as uow:
                    await appointments.enter(uow, appointment_id)
            except Exception:
                log.exception("appointment %s could not enter its queue; next pass", appointment_id)
        async with self.domain.unit(write=False) as uow:
            reminders = await certificates.due(uow)
        for wanted in reminders:  # 证照到期提醒: each in its own transaction, sent once
            try:
                async with self.domain.unit() as uow:
                    await certificates.remind(uow, wanted, origin=self.domain.settings.link_origin)
            except Exception:
                log.exception("certificate %s reminder not sent; next pass", wanted.certificate_id)
        for window_id in due:
            try:
                async with self.domain.unit() as uow:
                    await org.close_tidal_window(uow, SYSTEM, window_id, reason="expired")
            except DomainError as exc:  # a clerk called a ticket meanwhile: next pass
                log.info("tidal window %s not closed yet: %s", window_id, exc.code)
        for chore in self.housekeeping:
            await chore()
        return raised

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("monitor pass failed; next pass in %ss", self.interval)


class InvitationTimers:
    """Expires each expert invitation when its time is up, so the clerk hears of it at once
    rather than at the monitor's next pass (which remains the fallback, e.g. after a restart)."""

    def __init__(self, domain: Domain) -> None:
        self.domain = domain
        self._timers: set[asyncio.TimerHandle] = set()
        self.tasks = Tasks("invitation timers")  # ended by close

    async def on_event(self, event: Event) -> None:
        if event.name != "invitation.created":
            return
        due = datetime.fromisoformat(event.payload["expires_at"])
        delay = max(0.0, (due - self.domain.clock.now()).total_seconds()) + 0.05
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            self.tasks.spawn(self._expire(), name="expire invitations")

        handle = loop.call_later(delay, fire, context=contextvars.Context())
        self._timers.add(handle)

    async def _expire(self) -> None:
        try:
            async with self.domain.unit() as uow:
                await experts.expire_due(uow)
        except Exception:
            log.exception("expiring invitations failed; the monitor will retry")

    async def close(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        await self.tasks.close()
