"""socket.io room names for the audiences domain events are addressed to."""

from __future__ import annotations

from server.domain.context import Actor
from server.events import Audience
from server.models import Role


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


def clerks_room(department_id: int) -> str:
    return f"dept:{department_id}"


def supervisors_room(department_id: int) -> str:
    return f"sup:{department_id}"


ADMINS = "admins"


def call_room(ticket_id: int) -> str:
    return f"call:{ticket_id}"


def consultation_room(ticket_id: int) -> str:
    """The case's private channel: its clerk and the experts in the call, not the worker."""
    return f"call:{ticket_id}:private"


def rooms_for_audience(audience: Audience) -> list[str]:
    rooms = [user_room(u) for u in audience.users]
    rooms += [clerks_room(d) for d in audience.department_clerks]
    rooms += [supervisors_room(d) for d in audience.department_supervisors]
    if audience.admins:
        rooms.append(ADMINS)
    if audience.call_of_ticket is not None:
        rooms.append(call_room(audience.call_of_ticket))
    if audience.consultation_of_ticket is not None:
        rooms.append(consultation_room(audience.consultation_of_ticket))
    return rooms


def rooms_for_actor(actor: Actor) -> set[str]:
    """The rooms a connected user listens in, from their role and bindings."""
    rooms = {user_room(actor.user_id)}
    if actor.role is Role.clerk:
        rooms |= {clerks_room(d) for d in actor.department_ids}
    elif actor.role is Role.supervisor:
        rooms |= {supervisors_room(d) for d in actor.department_ids}
    elif actor.role is Role.admin:
        rooms.add(ADMINS)
    return rooms
