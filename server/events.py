"""Domain events and the sink that publishes them once their transaction has committed.

An event names its audience in domain terms (users, the clerks or the supervisors watching a
queue of a centre × department); the socket.io adapter maps each to a room. Those who watch a
queue get ``watchers_payload`` when the event has one: the same event without personal data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Audience:
    users: tuple[int, ...] = ()
    queue_clerks: tuple[tuple[int, int], ...] = ()  # (centre, department)
    queue_supervisors: tuple[tuple[int, int], ...] = ()
    admins: bool = False
    call_of_ticket: int | None = None
    consultation_of_ticket: int | None = None  # the clerk and the experts, never the worker


@dataclass(frozen=True)
class Event:
    name: str
    payload: dict[str, Any]
    audience: Audience = field(default_factory=Audience)
    watchers_payload: dict[str, Any] | None = None


@dataclass(frozen=True)
class QueueTouched:
    """A queue's order changed: waiting workers' positions should be refreshed."""

    centre_id: int
    department_id: int


class EventSink(Protocol):
    async def publish(self, events: list[Event | QueueTouched]) -> None: ...


class MemorySink:
    """Keeps what was published; used where nothing listens (CLI, benchmarks, tests)."""

    def __init__(self) -> None:
        self.published: list[Event | QueueTouched] = []

    async def publish(self, events: list[Event | QueueTouched]) -> None:
        self.published.extend(events)

    def named(self, name: str) -> list[Event]:
        return [e for e in self.published if isinstance(e, Event) and e.name == name]
