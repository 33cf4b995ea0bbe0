"""socket.io room names for the audiences domain events are addressed to."""

from __future__ import annotations

from server.domain.context import Actor
from server.events import Event
from server.models import Role


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


def queue_clerks_room(centre_id: int, department_id: int) -> str:
    return f"queue:{centre_id}:{department_id}"


def queue_supervisors_room(centre_id: int, department_id: int) -> str:
    return f"sup:{centre_id}:{department_id}"


ADMINS = "admins"


def call_room(ticket_id: int) -> str:
    return f"call:{ticket_id}"


def consultation_room(ticket_id: int) -> str:
    """The case's private channel: its clerk and the experts in the call, not the worker."""
    return f"call:{ticket_id}:private"


def deliveries(event: Event) -> list[tuple[dict[str, object], list[str]]]:
    """(payload, rooms) pairs: the event's payload to the people it names, its watchers'
    payload (no personal data) to those who watch a queue."""
    audience = event.audience
    rooms = [user_room(u) for u in audience.users]
    if audience.admins:
        rooms.append(ADMINS)
    if audience.call_of_ticket is not None:
        rooms.append(call_room(audience.call_of_ticket))
    if audience.consultation_of_ticket is not None:
        rooms.append(consultation_room(audience.consultation_of_ticket))
    watchers = [queue_clerks_room(*q) for q in audience.queue_clerks]
    watchers += [queue_supervisors_room(*q) for q in audience.queue_supervisors]
    if event.watchers_payload is None:
        return [(event.payload, rooms + watchers)] if rooms + watchers else []
    return [(p, r) for p, r in ((event.payload, rooms), (event.watchers_payload, watchers)) if r]


def rooms_for_actor(actor: Actor) -> set[str]:
    """The rooms a connected user listens in, from their role and bindings."""
    rooms = {user_room(actor.user_id)}
    if actor.role is Role.clerk:
        rooms |= {queue_clerks_room(c, d) for c, d in actor.queues}
    elif actor.role is Role.supervisor:
        rooms |= {queue_supervisors_room(c, d) for c, d in actor.queues}
    elif actor.role is Role.admin:
        rooms.add(ADMINS)
    return rooms
