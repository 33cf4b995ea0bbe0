"""The names a call's parts go by, written and read here only.

The relay knows rooms, participants and tracks by opaque strings; the call service names them
after the ticket and the user: room ``t42`` is ticket 42's call, participant ``u7`` is user 7,
track ``u7:camera`` is user 7's camera. The TURN username (``/api/ice-servers``) is the
participant id too, so a TURN server's log names the same person the relay's does.
"""

from __future__ import annotations

from typing import NewType

RoomId = NewType("RoomId", str)
ParticipantId = NewType("ParticipantId", str)
TrackId = NewType("TrackId", str)


def room_id(ticket_id: int) -> RoomId:
    return RoomId(f"t{ticket_id}")


def participant_id(user_id: int) -> ParticipantId:
    return ParticipantId(f"u{user_id}")


def track_id(participant: str, source: str) -> TrackId:
    """A participant's track from one of its sources (camera, microphone, screen, ...)."""
    return TrackId(f"{participant}:{source}")


def _number(name: str, prefix: str) -> int:
    if not name.startswith(prefix) or not name[len(prefix):].isdigit():
        raise ValueError(f"{name!r} is not a {prefix}<number> id")
    return int(name[len(prefix):])


def ticket_of(room: str) -> int:
    """The ticket whose call a room is (ValueError for a name this module did not write)."""
    return _number(room, "t")


def user_of(participant: str) -> int:
    """The user a participant is (ValueError for a name this module did not write)."""
    return _number(participant, "u")
