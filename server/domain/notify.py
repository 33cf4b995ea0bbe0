"""The outbox: texts to residents' phones and to staff, queued in the transaction that decides
to send them (so nothing is lost on a restart, nor sent for a change that was rolled back), then
delivered by `server.notify`'s dispatcher, tried again with back-off, each state kept.

States: ``held`` (the ``outbox`` provider: kept for administrators to read, nothing is sent),
``pending`` (to be sent at ``next_attempt_at``), ``sent``, ``failed`` (given up: permanently
refused, or ``max_attempts`` reached; an administrator may send it again).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from server.config import NOTIFY_PROVIDERS, NotifyRules
from server.domain import audit
from server.domain.context import Actor, Uow
from server.domain.errors import Conflict, Invalid, NotFound
from server.domain.personal import mask_phone
from server.events import Audience
from server.models import Notification, Role

HELD, PENDING, SENT, FAILED = "held", "pending", "sent", "failed"
STATES = (HELD, PENDING, SENT, FAILED)
CHANNELS = tuple(NOTIFY_PROVIDERS)
MAX_TEXT = 500  # an SMS of a few segments; a robot's message is short too
PHONE = re.compile(r"^1\d{10}$")  # a mainland mobile number
QUEUED = "notification.queued"  # an internal event: wakes the dispatcher of this node


@dataclass(frozen=True)
class Outgoing:
    """What a provider sends: the message with its recipient unsealed."""

    id: int
    channel: str
    kind: str
    to: str
    text: str
    created_at: datetime
    attempt: int


def retry_delay(rules: NotifyRules, attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``: ``retry_seconds`` doubling, at most ``retry_max_seconds``."""
    return float(min(rules.retry_max_seconds, rules.retry_seconds * 2 ** max(0, attempts - 1)))


async def queue(uow: Uow, *, channel: str, kind: str, to: str, text: str, dedupe_key: str | None = None,
                by: Actor | None = None) -> Notification | None:
    """Queue one message (``to``: a mobile number for ``sms``; for ``staff`` a mobile number to
    mention, or "" for the group). With a ``dedupe_key`` a message is queued at most once: the
    second ask returns None. Delivered after this transaction commits."""
    if channel not in CHANNELS:
        raise Invalid("notify_channel_invalid", "消息渠道无效", channel=channel)
    to = to.strip()
    if (channel == "sms" or to) and not PHONE.match(to):
        raise Invalid("phone_invalid", "请填写正确的 11 位手机号码")
    text = text.strip()
    if not text or len(text) > MAX_TEXT:
        raise Invalid("notify_text_invalid", f"消息内容不能为空，且不超过 {MAX_TEXT} 字")
    if dedupe_key is not None and await uow.session.scalar(
            select(Notification.id).where(Notification.dedupe_key == dedupe_key)) is not None:
        return None
    provider = uow.notify.provider(channel)
    now = uow.clock.now()
    held = provider == "outbox"
    message = Notification(
        created_at=now, channel=channel, kind=kind, text=text, provider=provider,
        recipient_sealed=uow.sealer.seal({"to": to}) if to else "", recipient_masked=mask_phone(to) or "",
        state=HELD if held else PENDING, attempts=0, next_attempt_at=None if held else now, last_error="",
        dedupe_key=dedupe_key, created_by_id=by.user_id if by is not None and by.user_id else None)
    try:
        async with uow.session.begin_nested():
            uow.session.add(message)
    except IntegrityError:  # another node queued the same key meanwhile
        return None
    if not held:
        uow.emit(QUEUED, {"id": message.id}, Audience())
    return message


async def claim_due(uow: Uow, *, lease_seconds: float, limit: int = 20) -> list[Outgoing]:
    """The pending messages whose time has come, each claimed by moving its next attempt a lease
    ahead (a conditional update: on several nodes one claim wins). A dispatcher that dies while
    sending leaves the message to be sent again when the lease runs out: delivery is at least
    once, and receivers get the message id to tell a repeat."""
    now = uow.clock.now()
    rows = (await uow.session.scalars(
        select(Notification).where(Notification.state == PENDING, Notification.next_attempt_at <= now)
        .order_by(Notification.next_attempt_at, Notification.id).limit(limit))).all()
    claimed: list[Outgoing] = []
    for row in rows:
        won = await uow.changed(
            update(Notification)
            .where(Notification.id == row.id, Notification.state == PENDING,
                   Notification.next_attempt_at == row.next_attempt_at)
            .values(next_attempt_at=now + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False))
        if won != 1:
            continue
        to = uow.sealer.open(row.recipient_sealed)["to"] if row.recipient_sealed else ""
        claimed.append(Outgoing(row.id, row.channel, row.kind, to, row.text, row.created_at, row.attempts + 1))
    return claimed


async def delivered(uow: Uow, message_id: int) -> None:
    await uow.session.execute(
        update(Notification).where(Notification.id == message_id, Notification.state == PENDING)
        .values(state=SENT, sent_at=uow.clock.now(), attempts=Notification.attempts + 1, next_attempt_at=None,
                last_error="")
        .execution_options(synchronize_session=False))


async def not_delivered(uow: Uow, message_id: int, error: str, *, permanent: bool) -> str:
    """One attempt failed: try again after the back-off, or give up (``permanent``: the receiver
    refused it as it is; or the last attempt). Returns the message's new state."""
    row = await uow.session.get(Notification, message_id)
    if row is None or row.state != PENDING:
        return row.state if row is not None else FAILED
    row.attempts += 1
    row.last_error = error[:300]
    if permanent or row.attempts >= uow.notify.max_attempts:
        row.state, row.next_attempt_at = FAILED, None
    else:
        row.next_attempt_at = uow.clock.now() + timedelta(seconds=retry_delay(uow.notify, row.attempts))
    return row.state


async def send_again(uow: Uow, actor: Actor, message_id: int) -> dict[str, Any]:
    """An administrator sends a failed message again (after fixing the gateway, say): its
    attempts start over."""
    actor.require(Role.admin)
    row = await uow.session.get(Notification, message_id)
    if row is None:
        raise NotFound("notification_not_found", "消息不存在", notification_id=message_id)
    if row.state != FAILED:
        raise Conflict("notification_not_failed", "只有发送失败的消息可以重新发送", state=row.state)
    row.state, row.attempts, row.next_attempt_at = PENDING, 0, uow.clock.now()
    audit.record(uow, actor, "notification.resend", "notification", row.id, kind=row.kind, channel=row.channel)
    uow.emit(QUEUED, {"id": row.id}, Audience())
    return view(row)


async def send_test(uow: Uow, actor: Actor, channel: str, to: str) -> dict[str, Any]:
    """An administrator checks a provider: one test message through it."""
    actor.require(Role.admin)
    message = await queue(uow, channel=channel, kind="test", to=to, by=actor,
                          text="【云帮办】这是一条测试消息，收到即说明消息通道配置正确。")
    assert message is not None
    audit.record(uow, actor, "notification.test", "notification", message.id, channel=channel)
    return view(message)


def view(row: Notification) -> dict[str, Any]:
    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment is not None else None

    return {"id": row.id, "created_at": iso(row.created_at), "channel": row.channel, "kind": row.kind,
            "to": row.recipient_masked, "text": row.text, "provider": row.provider, "state": row.state,
            "attempts": row.attempts, "next_attempt_at": iso(row.next_attempt_at), "last_error": row.last_error,
            "sent_at": iso(row.sent_at)}


async def listing(uow: Uow, actor: Actor, *, state: str | None = None, limit: int = 100,
                  before_id: int | None = None) -> dict[str, Any]:
    """The outbox for administrators, newest first (recipients masked), with counts by state.
    The texts may hold one-time codes: each read is audited."""
    actor.require(Role.admin)
    if state is not None and state not in STATES:
        raise Invalid("notify_state_invalid", "消息状态无效", state=state)
    query = select(Notification).order_by(Notification.id.desc()).limit(max(1, min(limit, 500)))
    if state is not None:
        query = query.where(Notification.state == state)
    if before_id is not None:
        query = query.where(Notification.id < before_id)
    rows = (await uow.session.scalars(query)).all()
    counts: dict[str, int] = {state: count for state, count in (await uow.session.execute(
        select(Notification.state, func.count()).group_by(Notification.state))).all()}
    audit.record(uow, actor, "notification.read", "notification", "", state=state, shown=len(rows))
    return {"messages": [view(r) for r in rows], "counts": {s: int(counts.get(s, 0)) for s in STATES}}
