"""Domain events and the sink that publishes them once their transaction has committed.

An event names its audience in domain terms (a user, a department's clerks, a department's
supervisors); the socket.io adapter maps each to a room.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Audience:
    users: tuple[int, ...] = ()
    department_clerks: tuple[int, ...] = ()
    department_supervisors: tuple[int, ...] = ()
    admins: bool = False
    call_of_ticket: int | None = None
    consultation_of_ticket: int | None = None  # the clerk and the experts, never the worker


@dataclass(frozen=True)
class Event:
    name: str
    payload: dict[str, Any]
    audience: Audience = field(default_factory=Audience)


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
