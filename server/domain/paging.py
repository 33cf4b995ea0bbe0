"""Reaching people — messages to the staff who answer for something, through the notifier.

A supervisor with a mobile on their account (``User.mobile_masked``, the number sealed) gets
the message by the ``staff`` channel addressed to them (a 浙政钉-style robot @-mentions that
number), and by SMS when asked; those without one are named in one ``staff`` message to the
group. Each message has a dedupe key, so asking twice (a second node, a retried pass) sends once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from server.domain import notify
from server.domain.context import Uow
from server.models import User


def mobile_of(uow: Uow, user: User) -> str:
    """A staff member's own mobile (opened from the sealed record; never logged), or ""."""
    if not user.mobile_masked or not user.phone_sealed:
        return ""
    return str(uow.sealer.open(user.phone_sealed).get("phone", ""))


async def page(uow: Uow, people: Sequence[User], *, kind: str, key: str, text: Callable[[User | None], str],
               sms: bool = False) -> int:
    """Send ``text(person)`` to each of ``people`` with a mobile (staff channel, and SMS when
    ``sms``), and ``text(None)`` once to the group naming the others. ``key`` makes it once per
    person and channel. Returns the messages queued now."""
    sent = 0
    unreached = []
    for person in dict((p.id, p) for p in people).values():
        mobile = mobile_of(uow, person)
        if not mobile:
            unreached.append(person)
            continue
        channels = ("staff", "sms") if sms else ("staff",)
        for channel in channels:
            queued = await notify.queue(uow, channel=channel, kind=kind, to=mobile, text=text(person)[:notify.MAX_TEXT],
                                        dedupe_key=f"{key}:{channel}:{person.id}")
            sent += queued is not None
    if unreached or not people:
        names = "、".join(p.display_name for p in unreached) or "负责人"
        queued = await notify.queue(uow, channel="staff", kind=kind, to="",
                                    text=text(None).replace("{names}", names)[:notify.MAX_TEXT],
                                    dedupe_key=f"{key}:group")
        sent += queued is not None
    return sent
