"""Queue figures shared by the queue, the alert monitor and the dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select

from server.config import QueueRules
from server.domain import hours
from server.domain.context import Uow
from server.models import Ticket, TicketStatus

LEVELS = ("green", "yellow", "red")


@dataclass(frozen=True)
class QueueStat:
    centre_id: int
    department_id: int
    waiting: int = 0
    serving: int = 0
    longest_wait_s: float = 0.0

    def level(self, rules: QueueRules) -> str:
        minutes = self.longest_wait_s / 60
        if self.waiting >= rules.red_waiting or (self.waiting and minutes >= rules.red_wait_minutes):
            return "red"
        if self.waiting >= rules.yellow_waiting or (self.waiting and minutes >= rules.yellow_wait_minutes):
            return "yellow"
        return "green"


def opening_time(rules: QueueRules, day: date) -> datetime:
    """When the first service span of ``day`` opens (midnight for a 24×7 centre), in UTC."""
    spans = rules.service_hours.spans
    start = min((s for days, s, _ in spans if day.weekday() in days), default=time(0, 0))
    return datetime.combine(day, start, tzinfo=ZoneInfo(rules.timezone))


def wait_start(rules: QueueRules, ticket_taken_at: datetime, callback: bool, today: date) -> datetime:
    """A call-back left after hours starts waiting when the centre opens, not when it was left."""
    if callback:
        return max(ticket_taken_at, opening_time(rules, today))
    return ticket_taken_at


async def queue_stats(
    uow: Uow, *, centre_id: int | None = None, department_id: int | None = None
) -> dict[tuple[int, int], QueueStat]:
    now = uow.clock.now()
    today = hours.local_day(uow.rules, now)
    opened = opening_time(uow.rules, today)
    waiting_filter = [Ticket.status == TicketStatus.waiting, Ticket.service_day <= today]
    serving_filter = [Ticket.status.in_(TicketStatus.in_call_states())]
    extra = []
    if centre_id is not None:
        extra.append(Ticket.centre_id == centre_id)
    if department_id is not None:
        extra.append(Ticket.department_id == department_id)
    waiting_rows = await uow.session.execute(
        select(
            Ticket.centre_id,
            Ticket.department_id,
            func.count(Ticket.id),
            func.min(case((Ticket.callback.is_(False), Ticket.taken_at), else_=None)),
            func.sum(case((Ticket.callback.is_(True), 1), else_=0)),
        )
        .where(*waiting_filter, *extra)
        .group_by(Ticket.centre_id, Ticket.department_id)
    )
    stats: dict[tuple[int, int], QueueStat] = {}
    for c, d, count, oldest, callbacks in waiting_rows.all():
        starts = []
        if oldest is not None:
            starts.append(_aware(oldest))
        if callbacks:
            starts.append(opened)
        longest = max(0.0, (now - min(starts)).total_seconds()) if starts else 0.0
        stats[(c, d)] = QueueStat(c, d, waiting=int(count), longest_wait_s=longest)
    serving_rows = await uow.session.execute(
        select(Ticket.centre_id, Ticket.department_id, func.count(Ticket.id))
        .where(*serving_filter, *extra)
        .group_by(Ticket.centre_id, Ticket.department_id)
    )
    for c, d, count in serving_rows.all():
        base = stats.get((c, d), QueueStat(c, d))
        stats[(c, d)] = QueueStat(c, d, base.waiting, int(count), base.longest_wait_s)
    return stats


def _aware(value: datetime | str) -> datetime:
    """Aggregates bypass the column type on SQLite and come back as text or naive values."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value
