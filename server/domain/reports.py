"""统计报表 — the figures a service centre is judged by: per dimension (centre, town, extension
point, department, clerk, item) and period (day, week, month, year), each with the same period
last year and the change (docs/reports.md defines every metric).

A metric is a small definition over one source table (``Source``: tickets, alerts, tidal
windows, expert invitations, the 督办 ledger, certificate reminders): what it counts, sums,
averages or takes the 90th percentile of, and which rows. The engine runs one query per source
for all of that source's additive metrics (counts and sums, grouped by period and dimension; a
total is the sum of its rows), the wait percentile from waits counted by bucket, and one per-day
query for the trend series. Every query is scoped like the wall display: a supervisor sees the
queues (centre × department) they watch, an administrator every queue.

The ticket metrics of settled days come from daily rollups (and whole months summed), built by
``roll``; the other days from the tickets, merged: a year reads its rollups, not 2 million
tickets (docs/reports.md, "Rollups").
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    Float,
    Integer,
    and_,
    case,
    cast,
    delete,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.sql.expression import FromClause

from server.domain import hours
from server.domain.access import watched
from server.domain.context import Actor, Uow
from server.domain.errors import Invalid
from server.models import (
    ROLLUP_SUMS,
    Alert,
    Centre,
    CertificateReminder,
    CertificateType,
    CloudWindow,
    Department,
    ExtensionPoint,
    Invitation,
    LedgerItem,
    ReportRollupDay,
    ReportRollupMonth,
    Role,
    ServiceItem,
    Ticket,
    TicketStatus,
    User,
    report_rollup_month_waits,
    report_rollup_waits,
    report_rollups,
    window_departments,
)

PeriodKind = Literal["day", "week", "month", "year"]
PERIODS: dict[str, str] = {"day": "日", "week": "周", "month": "月", "year": "年"}
DIMENSIONS: dict[str, str] = {
    "centre": "受理中心",
    "town": "镇街",
    "extension_point": "延伸点",
    "department": "部门",
    "clerk": "云窗口人员",
    "item": "事项",
}
FIRST_YEAR, LAST_YEAR = 2001, 2099
Expr = Callable[[str], Any]  # dialect name → a SQL expression (a column or ColumnElement)
Cond = Callable[[str], ColumnElement[bool]]


# --- periods -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    """[start, end) in local service days."""

    kind: str
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def label(self) -> str:
        s = self.start
        if self.kind == "day":
            return f"{s.year}年{s.month}月{s.day}日"
        if self.kind == "week":
            iso = s.isocalendar()
            return f"{iso.year}年第{iso.week}周（{s.month}月{s.day}日起）"
        if self.kind == "month":
            return f"{s.year}年{s.month}月"
        return f"{s.year}年"

    def code(self) -> str:
        """For file names: 2026-11-23, 2026-W48, 2026-11, 2026."""
        s = self.start
        if self.kind == "day":
            return s.isoformat()
        if self.kind == "week":
            iso = s.isocalendar()
            return f"{iso.year}-W{iso.week:02d}"
        return f"{s.year}-{s.month:02d}" if self.kind == "month" else str(s.year)

    def view(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": (self.end - timedelta(days=1)).isoformat(),
                "label": self.label()}


def period_of(kind: str, day: date) -> Period:
    """The day, ISO week (Monday first), month or year that holds ``day``."""
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise Invalid("report_day_out_of_range", f"报表日期须在 {FIRST_YEAR} 年至 {LAST_YEAR} 年之间",
                      day=day.isoformat())
    if kind == "day":
        return Period(kind, day, day + timedelta(days=1))
    if kind == "week":
        monday = day - timedelta(days=day.weekday())
        return Period(kind, monday, monday + timedelta(days=7))
    if kind == "month":
        start = day.replace(day=1)
        return Period(kind, start, (start + timedelta(days=32)).replace(day=1))
    if kind == "year":
        return Period(kind, date(day.year, 1, 1), date(day.year + 1, 1, 1))
    raise Invalid("unknown_period", "统计周期须为日、周、月或年", allowed=list(PERIODS))


def same_period_last_year(p: Period) -> Period:
    """同比: the same day (29 February: the 28th), ISO week number (week 53: week 52), month or
    year, one year earlier."""
    s = p.start
    if p.kind == "week":
        iso = s.isocalendar()
        weeks = date(iso.year - 1, 12, 28).isocalendar().week
        return period_of("week", date.fromisocalendar(iso.year - 1, min(iso.week, weeks), 1))
    try:
        earlier = s.replace(year=s.year - 1)
    except ValueError:
        earlier = s.replace(year=s.year - 1, day=28)
    return period_of(p.kind, earlier)


# --- sources: one table each, with its period column, scope and dimension columns ---------------

def seconds_between(start: Any, end: Any, dialect: str) -> ColumnElement[Any]:
    """``end - start`` in seconds, as a float, on both databases (SQLite: to the millisecond)."""
    if dialect == "postgresql":
        return cast(func.extract("epoch", end - start), Float)
    return func.round((func.julianday(end) - func.julianday(start)) * 86400.0, 3)


TOWN = func.coalesce(ExtensionPoint.centre_id, Ticket.centre_id)


@dataclass(frozen=True, eq=False)
class Source:
    """A table metrics are counted over. ``when``: the column that places a row in a period —
    a local service day (``local_day``) or a UTC moment; ``centre``/``department``: the queue a
    row belongs to, for the reader's scope; ``dimensions``: each dimension's key column (a
    dimension the table does not know is left out: its metrics are blank in that report)."""

    name: str
    when: Any
    local_day: bool
    centre: Any
    department: Any
    dimensions: Mapping[str, Any]
    frm: Callable[[str | None], FromClause]


def _tickets_from(dimension: str | None) -> FromClause:
    t = Ticket.__table__
    return t.outerjoin(ExtensionPoint, ExtensionPoint.id == Ticket.extension_point_id) if dimension == "town" else t


def _invitations_from(dimension: str | None) -> FromClause:
    joined = Invitation.__table__.join(Ticket, Ticket.id == Invitation.ticket_id)
    if dimension == "town":
        return joined.outerjoin(ExtensionPoint, ExtensionPoint.id == Ticket.extension_point_id)
    return joined


TICKETS = Source(
    "tickets", Ticket.service_day, True, Ticket.centre_id, Ticket.department_id,
    {"centre": Ticket.centre_id, "town": TOWN, "extension_point": Ticket.extension_point_id,
     "department": Ticket.department_id, "clerk": Ticket.clerk_id, "item": Ticket.item_id},
    _tickets_from,
)
ALERTS = Source(
    "alerts", Alert.created_at, False, Alert.centre_id, Alert.department_id,
    {"centre": Alert.centre_id, "town": Alert.centre_id, "department": Alert.department_id},
    lambda _d: Alert.__table__,
)
TIDAL = Source(
    "tidal_windows", CloudWindow.opened_at, False, CloudWindow.centre_id, window_departments.c.department_id,
    {"centre": CloudWindow.centre_id, "town": CloudWindow.centre_id, "department": window_departments.c.department_id},
    lambda _d: CloudWindow.__table__.join(window_departments, window_departments.c.window_id == CloudWindow.id),
)
INVITATIONS = Source(
    "invitations", Invitation.created_at, False, Ticket.centre_id, Ticket.department_id,
    {"centre": Ticket.centre_id, "town": TOWN, "extension_point": Ticket.extension_point_id,
     "department": Ticket.department_id, "clerk": Invitation.invited_by_id, "item": Ticket.item_id},
    _invitations_from,
)
LEDGER_DIMENSIONS = {"centre": LedgerItem.centre_id, "town": LedgerItem.centre_id,
                     "department": LedgerItem.department_id}
LEDGER = Source("ledger_items", LedgerItem.raised_at, False, LedgerItem.centre_id, LedgerItem.department_id,
                LEDGER_DIMENSIONS, lambda _d: LedgerItem.__table__)
LEDGER_CLOSED = Source("ledger_items_closed", LedgerItem.closed_at, False, LedgerItem.centre_id,
                       LedgerItem.department_id, LEDGER_DIMENSIONS, lambda _d: LedgerItem.__table__)
#: 证照到期提醒: a certificate belongs to no queue, only to its type's item's department; a
#: supervisor sees the reminders of their departments whatever the centre (``centre`` None).
REMINDERS = Source(
    "certificate_reminders", CertificateReminder.sent_at, False, None, ServiceItem.department_id,
    {"department": ServiceItem.department_id, "item": CertificateType.item_id},
    lambda _d: CertificateReminder.__table__.join(CertificateType, CertificateType.id == CertificateReminder.type_id)
    .join(ServiceItem, ServiceItem.id == CertificateType.item_id),
)


def _watched(actor: Actor, source: Source) -> ColumnElement[bool]:
    if source.centre is not None or actor.role is Role.admin:
        return watched(actor, source.centre, source.department)
    mine: ColumnElement[bool] = source.department.in_(sorted({d for _c, d in actor.queues}))
    return mine


# --- metrics ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Metric:
    """One figure. ``kind``: ``count`` (rows where ``where``), ``total`` (sum of ``expr``),
    ``mean`` (of ``expr`` over rows where ``where``), ``share`` (per cent of the rows where
    ``where`` that also meet ``part``), ``p90`` (the 90th percentile of ``expr`` over rows
    where ``where``) or ``at_end`` (rows meeting ``at`` at each period's end — or now, if
    sooner — whenever they began). ``unit``: count, seconds or percent."""

    key: str
    label: str
    unit: str
    source: Source
    kind: str
    where: Cond | None = None
    expr: Expr | None = None
    part: Cond | None = None
    at: Callable[[datetime], ColumnElement[bool]] | None = None

    @property
    def additive(self) -> bool:
        return self.kind not in ("p90", "at_end")

    def parts(self, dialect: str) -> dict[str, ColumnElement[Any]]:
        """The sums its value is made of; a total is their sum over the rows."""
        cond = self.where(dialect) if self.where else None
        ones = case((cond, 1), else_=0) if cond is not None else None
        if self.kind == "count":
            return {f"{self.key}.n": func.sum(ones) if ones is not None else func.count()}
        if self.kind == "total":
            assert self.expr is not None
            return {f"{self.key}.sum": func.sum(self.expr(dialect))}
        if self.kind == "mean":
            assert self.expr is not None and cond is not None
            return {f"{self.key}.sum": func.sum(case((cond, self.expr(dialect)), else_=None)),
                    f"{self.key}.n": func.sum(ones)}
        if self.kind == "share":
            assert cond is not None and self.part is not None
            return {f"{self.key}.part": func.sum(case((and_(cond, self.part(dialect)), 1), else_=0)),
                    f"{self.key}.n": func.sum(ones)}
        raise ValueError(self.kind)

    def value(self, sums: Mapping[str, float]) -> float | None:
        n = sums.get(f"{self.key}.n", 0)
        if self.kind == "count":
            return int(n)
        if self.kind == "total":
            return int(sums.get(f"{self.key}.sum", 0))
        if self.kind == "mean":
            return round(sums.get(f"{self.key}.sum", 0) / n, 1) if n else None
        if self.kind == "share":
            return round(100 * sums.get(f"{self.key}.part", 0) / n, 1) if n else None
        raise ValueError(self.kind)

    def view(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "unit": self.unit, "source": self.source.name,
                "dimensions": [d for d in DIMENSIONS if d in self.source.dimensions], "series": self.in_series}

    @property
    def in_series(self) -> bool:
        return self.source is TICKETS and self.additive


def _wait(dialect: str) -> ColumnElement[Any]:
    return seconds_between(Ticket.taken_at, Ticket.called_at, dialect)


def _waited(_d: str) -> ColumnElement[bool]:
    """A wait counts when the ticket was called, taken in service hours (not a call-back left
    overnight) and never transferred (its take time is the first queue's)."""
    return and_(Ticket.called_at.is_not(None), Ticket.callback.is_(False), Ticket.transfers == 0)


def _completed(_d: str) -> ColumnElement[bool]:
    return Ticket.status == TicketStatus.completed


def _rated(_d: str) -> ColumnElement[bool]:
    return Ticket.rating_score.is_not(None)


def _answered(_d: str) -> ColumnElement[bool]:
    return Invitation.answered_at.is_not(None)


def _rectified_on_time(_d: str) -> ColumnElement[bool]:
    """A bad rating's 整改 work order answered by its deadline."""
    return and_(LedgerItem.source == "rating", LedgerItem.answered_at.is_not(None),
                LedgerItem.answered_at <= LedgerItem.deadline)


def _overdue_at(moment: datetime) -> ColumnElement[bool]:
    """督办 overdue at ``moment`` (ledger.overdue, as it stood then): raised before it, its
    deadline passed, and neither answered nor closed by then."""
    return and_(LedgerItem.raised_at < moment, LedgerItem.deadline < moment,
                or_(LedgerItem.answered_at.is_(None), LedgerItem.answered_at >= moment),
                or_(LedgerItem.closed_at.is_(None), LedgerItem.closed_at >= moment))


METRICS: tuple[Metric, ...] = (
    Metric("tickets", "取号量", "count", TICKETS, "count"),
    Metric("served", "办结量", "count", TICKETS, "count", where=_completed),
    Metric("no_shows", "过号", "count", TICKETS, "count", where=lambda _d: Ticket.status == TicketStatus.no_show),
    Metric("transfers", "转办", "count", TICKETS, "total", expr=lambda _d: Ticket.transfers),
    Metric("wait_avg_s", "平均等候时长", "seconds", TICKETS, "mean", where=_waited, expr=_wait),
    Metric("wait_p90_s", "等候时长P90", "seconds", TICKETS, "p90", where=_waited, expr=_wait),
    Metric("handling_avg_s", "平均办理时长", "seconds", TICKETS, "mean",
           where=lambda d: and_(_completed(d), Ticket.called_at.is_not(None)),
           expr=lambda d: seconds_between(Ticket.called_at, Ticket.finished_at, d)),
    Metric("ratings", "评价数", "count", TICKETS, "count", where=_rated),
    Metric("good_rate", "好评率", "percent", TICKETS, "share", where=_rated,
           part=lambda _d: Ticket.rating_score >= 4),
    Metric("bad_ratings", "差评数", "count", TICKETS, "count", where=lambda _d: Ticket.rating_score <= 2),
    Metric("wait_alerts", "等候超时提醒", "count", ALERTS, "count", where=lambda _d: Alert.kind == "wait_timeout"),
    Metric("yellow_warnings", "黄色预警", "count", ALERTS, "count",
           where=lambda _d: and_(Alert.kind == "warning", Alert.level == "yellow")),
    Metric("red_warnings", "红色预警", "count", ALERTS, "count",
           where=lambda _d: and_(Alert.kind == "warning", Alert.level == "red")),
    Metric("tidal_opened", "潮汐窗口开启", "count", TIDAL, "count"),
    Metric("experts_invited", "专家邀请", "count", INVITATIONS, "count"),
    Metric("expert_response_avg_s", "专家平均响应时长", "seconds", INVITATIONS, "mean", where=_answered,
           expr=lambda d: seconds_between(Invitation.created_at, Invitation.answered_at, d)),
    Metric("ledger_opened", "督办台账新增", "count", LEDGER, "count"),
    Metric("ledger_closed", "督办台账办结", "count", LEDGER_CLOSED, "count"),
    Metric("ledger_overdue", "督办台账逾期", "count", LEDGER, "at_end", at=_overdue_at),
    Metric("bad_ratings_rectified", "差评整改按时答复", "count", LEDGER, "count", where=_rectified_on_time),
    Metric("rectified_on_time_rate", "差评整改按时率", "percent", LEDGER, "share",
           where=lambda _d: LedgerItem.source == "rating", part=_rectified_on_time),
    Metric("reminders_sent", "证照到期提醒发送", "count", REMINDERS, "count"),
)

#: Slots for metrics over tables still to come; docs/reports.md says how to fill them.
PENDING: tuple[tuple[str, str], ...] = ()
BY_KEY = {m.key: m for m in METRICS}


# --- the report ---------------------------------------------------------------------------------

Key = int | None
Sums = dict[str, float]
Spans = list[tuple[date, date]]  # [start, end) runs of local days
Rolled = tuple[list[date], Spans]  # rolled-up months (their first days) and days outside them
Hist = dict[int, list[float]]  # wait bucket → [waits, their sum in seconds]


def _bounds(source: Source, p: Period, rules: Any) -> ColumnElement[bool]:
    if source.local_day:
        return and_(source.when >= p.start, source.when < p.end)
    return and_(source.when >= hours.day_start_utc(rules, p.start), source.when < hours.day_start_utc(rules, p.end))


def _in_spans(column: Any, spans: Spans) -> ColumnElement[bool]:
    return or_(*[and_(column >= a, column < b) for a, b in spans]) if spans else false()


def _in_rolled(c: Any, part: Rolled) -> ColumnElement[bool]:
    """The rollup rows (``c``: a rollup table's columns) of the months and days of ``part``."""
    months, spans = part
    either = [*([and_(c.monthly == true(), c.service_day.in_(months))] if months else []),
              *([and_(c.monthly == false(), _in_spans(c.service_day, spans))] if spans else [])]
    return or_(*either) if either else false()


def _any(rolled: tuple[Rolled, Rolled]) -> bool:
    return any(months or spans for months, spans in rolled)


def _parts(metrics: list[Metric], dialect: str) -> dict[str, ColumnElement[Any]]:
    parts: dict[str, ColumnElement[Any]] = {}
    for m in metrics:
        parts.update(m.parts(dialect))
    return parts


def _sums(names: list[str], values: Any) -> Sums:
    return {n: float(v or 0) for n, v in zip(names, values, strict=True)}


async def _additive(uow: Uow, actor: Actor, source: Source, metrics: list[Metric], dimension: str,
                    in_cur: ColumnElement[bool], in_prev: ColumnElement[bool], *, by_day: bool = False,
                    ) -> tuple[dict[tuple[int, Key], Sums], dict[date, Sums]]:
    """(1 this period | 0 last year, dimension key) → the metrics' sums over the rows where
    ``in_cur`` or ``in_prev``; with ``by_day``, also each local day → the sums (the trend; a
    source placed by local day only). Two queries: one scan with both as GROUPING SETS measured
    no faster on PostgreSQL, and cannot run in parallel."""
    parts = _parts(metrics, uow.dialect)
    names = list(parts)
    flag = case((in_cur, 1), else_=0)
    key = source.dimensions.get(dimension)
    keycol = key if key is not None else literal(None)
    grouped = [flag, *([key] if key is not None else [])]
    aggregates = [p.label(f"p{i}") for i, p in enumerate(parts.values())]
    scope = and_(or_(in_cur, in_prev), _watched(actor, source))
    frm = source.frm(dimension)
    rows: dict[tuple[int, Key], Sums] = {}
    days: dict[date, Sums] = {}
    stmt = select(flag, keycol, *aggregates).select_from(frm).where(scope).group_by(*grouped)
    for row in (await uow.session.execute(stmt)).all():
        rows[(int(row[0]), row[1])] = _sums(names, row[2:])
    if by_day:
        by = select(source.when, *aggregates).select_from(source.frm(None)).where(scope).group_by(source.when)
        for row in (await uow.session.execute(by)).all():
            days[_as_date(row[0])] = _sums(names, row[1:])
    return rows, days


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def percentile(values: list[float], q: float) -> float | None:
    """``percentile_cont``: linear interpolation between the two nearest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# --- waits by bucket: the 90th percentile, mergeable across days ----------------------------------

#: Waits are counted by the minute for the first hour, by ten minutes up to three hours, and
#: in one bucket beyond; a bucket's waits stand for their mean (docs/reports.md, "Rollups").
WAIT_BUCKETS = 73


def wait_bucket(seconds: float) -> int:
    """The bucket of a wait (the SQL in ``_bucket_sql`` says the same)."""
    if seconds < 3600:
        return max(0, int(seconds // 60))
    return 60 + int((seconds - 3600) // 600) if seconds < 10800 else WAIT_BUCKETS - 1


def _bucket_sql(wait: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    def floor(x: ColumnElement[Any]) -> ColumnElement[Any]:
        return cast(func.floor(x), Integer) if dialect == "postgresql" else cast(x, Integer)
    return case((wait < 60, 0), (wait < 3600, floor(wait / 60)), (wait < 10800, 60 + floor((wait - 3600) / 600)),
                else_=WAIT_BUCKETS - 1)


def histogram_percentile(hist: Mapping[int, list[float]], q: float) -> float | None:
    """``percentile_cont`` over the waits of a histogram, each wait standing for its bucket's
    mean: exact when the waits of the two buckets the rank falls in are each alike."""
    buckets = sorted((b, n, total) for b, (n, total) in hist.items() if n)
    count = sum(n for _b, n, _t in buckets)
    if not count:
        return None
    pos = q * (count - 1)
    lo, hi = math.floor(pos), math.ceil(pos)

    def at(rank: int) -> float:
        seen = 0.0
        for _b, n, total in buckets:
            seen += n
            if rank < seen:
                return total / n
        raise AssertionError(rank)

    low = at(lo)
    return low + (at(hi) - low) * (pos - lo)


def _merge(into: dict[tuple[int, Key | str], Hist], flag: int, key: Key | str, bucket: int, n: float,
           total: float) -> None:
    cell = into.setdefault((flag, key), {}).setdefault(int(bucket), [0.0, 0.0])
    cell[0] += float(n)
    cell[1] += float(total)


async def _p90(uow: Uow, actor: Actor, m: Metric, dimension: str, live: tuple[Spans, Spans],
               rolled: tuple[Rolled, Rolled], *, every_queue: bool = False,
               ) -> dict[tuple[int, Key | str], float | None]:
    """(flag, key) → the 90th percentile, and (flag, "total") → over the whole scope: from the
    waits by bucket of the live days' tickets and of the rolled days' rollups, merged."""
    source = m.source
    assert m.expr is not None and m.where is not None and source is TICKETS
    hists: dict[tuple[int, Key | str], Hist] = {}
    key = source.dimensions[dimension]
    if live[0] or live[1]:
        in_cur, in_prev = _in_spans(source.when, live[0]), _in_spans(source.when, live[1])
        flag = case((in_cur, 1), else_=0)
        value = m.expr(uow.dialect)
        bucket = _bucket_sql(value, uow.dialect)
        scope = and_(or_(in_cur, in_prev), watched(actor, source.centre, source.department), m.where(uow.dialect))
        stmt = (select(flag, key, bucket, func.count(), func.sum(value)).select_from(source.frm(dimension))
                .where(scope).group_by(flag, key, bucket))
        for f, k, b, n, total in (await uow.session.execute(stmt)).all():
            _merge(hists, int(f), k, b, n, total or 0)
    if every_queue and (rolled[0][0] or rolled[1][0]):  # whole months, over every queue: no scope to keep
        mw = report_rollup_month_waits.c
        in_cur, in_prev = mw.service_day.in_(rolled[0][0] or [None]), mw.service_day.in_(rolled[1][0] or [None])
        flag = case((in_cur, 1), else_=0)
        stmt = (select(flag, mw.key, mw.bucket, func.sum(mw.n), func.sum(mw.total))
                .where(mw.dimension == dimension, or_(in_cur, in_prev)).group_by(flag, mw.key, mw.bucket))
        for f, k, b, n, total in (await uow.session.execute(stmt)).all():
            _merge(hists, int(f), k, b, n, total or 0)
        rolled = (([], rolled[0][1]), ([], rolled[1][1]))
    if _any(rolled):
        w = report_rollup_waits.c
        in_cur, in_prev = _in_rolled(w, rolled[0]), _in_rolled(w, rolled[1])
        flag = case((in_cur, 1), else_=0)
        scope = and_(w.dimension == dimension, or_(in_cur, in_prev), watched(actor, w.centre_id, w.department_id))
        stmt = (select(flag, w.key, w.bucket, func.sum(w.n), func.sum(w.total)).where(scope)
                .group_by(flag, w.key, w.bucket))
        for f, k, b, n, total in (await uow.session.execute(stmt)).all():
            _merge(hists, int(f), k, b, n, total or 0)
    totals: dict[tuple[int, Key | str], Hist] = {}
    for (f, _k), hist in hists.items():
        for b, (n, total) in hist.items():
            _merge(totals, f, "total", b, n, total)
    return {g: histogram_percentile(h, 0.9) for g, h in {**hists, **totals}.items()}


# --- rollups: the settled days' ticket figures, kept so a year need not read its tickets ---------

#: A service day is settled — rolled up, and read from its rollups — once this many days have
#: passed: its tickets called back, completed or transferred after midnight are in by then. A
#: rating given later unrolls its day (``unroll``) until the next roll.
SETTLE_DAYS = 3
ROLLUP_TREND_DIMENSION = "centre"  # every ticket has one centre: its rows sum to the whole scope
#: The additive parts of the ticket metrics → the rollup column that keeps their sum.
ROLLUP_COLUMNS: dict[str, str] = {
    "tickets.n": "tickets_n", "served.n": "served_n", "no_shows.n": "no_shows_n", "transfers.sum": "transfers_sum",
    "wait_avg_s.sum": "wait_sum", "wait_avg_s.n": "wait_n", "handling_avg_s.sum": "handling_sum",
    "handling_avg_s.n": "handling_n", "ratings.n": "ratings_n", "good_rate.part": "good_part",
    "good_rate.n": "ratings_n", "bad_ratings.n": "bad_n",
}


def settled_before(uow: Uow) -> date:
    """The first day not settled yet: days before it are rolled up."""
    return hours.local_day(uow.rules, uow.clock.now()) - timedelta(days=SETTLE_DAYS - 1)


def _runs(days: list[date]) -> Spans:
    spans: Spans = []
    for d in sorted(days):
        if spans and spans[-1][1] == d:
            spans[-1] = (spans[-1][0], d + timedelta(days=1))
        else:
            spans.append((d, d + timedelta(days=1)))
    return spans


def _days(p: Period) -> list[date]:
    return [p.start + timedelta(days=i) for i in range(p.days)]


async def rolled_days(uow: Uow, start: date, end: date) -> set[date]:
    found = await uow.session.scalars(select(ReportRollupDay.service_day).where(
        ReportRollupDay.service_day >= start, ReportRollupDay.service_day < end))
    return {_as_date(d) for d in found}


async def roll(uow: Uow, start: date, end: date) -> int:
    """Build the rollups of the service days [start, end) from their tickets, replacing what was
    there (rolling a day again is harmless). Say how many days."""
    if end <= start:
        return 0
    # One roll at a time (monitors of several nodes, a report's lazy roll): the next one waits,
    # then replaces what this one wrote instead of colliding with it.
    await uow.serialize("report-rollup")
    t = TICKETS
    days = [start + timedelta(days=i) for i in range((end - start).days)]
    months = sorted({d.replace(day=1) for d in days})
    await _drop_months(uow, months)
    for table in (report_rollups, report_rollup_waits):
        await uow.session.execute(delete(table).where(
            table.c.monthly == false(), table.c.service_day >= start, table.c.service_day < end))
    await uow.session.execute(delete(ReportRollupDay).where(
        ReportRollupDay.service_day >= start, ReportRollupDay.service_day < end))
    metrics = [m for m in METRICS if m.source is t and m.additive]
    parts = _parts(metrics, uow.dialect)
    assert set(parts) == set(ROLLUP_COLUMNS), "every additive ticket part needs its rollup column"
    by_column = {ROLLUP_COLUMNS[name]: expr for name, expr in parts.items()}
    in_days = and_(t.when >= start, t.when < end)
    wait = BY_KEY["wait_p90_s"]
    assert wait.expr is not None and wait.where is not None
    value = wait.expr(uow.dialect)
    bucket = _bucket_sql(value, uow.dialect)
    for dimension, key in t.dimensions.items():
        head = [t.when, literal(dimension), key, t.centre, t.department, literal(False, Boolean)]
        keys = ["service_day", "dimension", "key", "centre_id", "department_id", "monthly"]
        sums = [func.coalesce(by_column[c], 0) for c in ROLLUP_SUMS]
        rows = select(*head, *sums).select_from(t.frm(dimension)).where(in_days).group_by(
            t.when, key, t.centre, t.department)
        await uow.session.execute(insert(report_rollups).from_select([*keys, *ROLLUP_SUMS], rows))
        waits = (select(*head, bucket, func.count(), func.coalesce(func.sum(value), 0))
                 .select_from(t.frm(dimension)).where(and_(in_days, wait.where(uow.dialect)))
                 .group_by(t.when, key, t.centre, t.department, bucket))
        await uow.session.execute(insert(report_rollup_waits).from_select([*keys, "bucket", "n", "total"], waits))
    now = uow.clock.now()
    uow.session.add_all([ReportRollupDay(service_day=d, rolled_at=now) for d in days])
    await uow.session.flush()
    for month in months:
        following = _next_month(month)
        if len(await rolled_days(uow, month, following)) == (following - month).days:
            await _roll_month(uow, month, following)
    return len(days)


def _next_month(month: date) -> date:
    return (month + timedelta(days=32)).replace(day=1)


async def _drop_months(uow: Uow, months: list[date]) -> None:
    for table in (report_rollups, report_rollup_waits):
        await uow.session.execute(delete(table).where(table.c.monthly == true(), table.c.service_day.in_(months)))
    await uow.session.execute(delete(report_rollup_month_waits).where(
        report_rollup_month_waits.c.service_day.in_(months)))
    await uow.session.execute(delete(ReportRollupMonth).where(ReportRollupMonth.month.in_(months)))


async def _roll_month(uow: Uow, month: date, following: date) -> None:
    """A month whose days are all rolled up: its rows summed, so a year reads 12 × its rows."""
    for table, extra in ((report_rollups, ()), (report_rollup_waits, ("bucket",))):
        c = table.c
        keys = ["dimension", "key", "centre_id", "department_id", *extra]
        summed = [name for name in (ROLLUP_SUMS if table is report_rollups else ("n", "total"))]
        rows = (select(literal(month, Date), literal(True, Boolean), *[c[k] for k in keys],
                       *[func.sum(c[name]) for name in summed])
                .where(c.monthly == false(), c.service_day >= month, c.service_day < following)
                .group_by(*[c[k] for k in keys]))
        await uow.session.execute(insert(table).from_select(["service_day", "monthly", *keys, *summed], rows))
    w = report_rollup_waits.c  # and over every queue
    keys = ["dimension", "key", "bucket"]
    rows = (select(literal(month, Date), *[w[k] for k in keys], func.sum(w.n), func.sum(w.total))
            .where(w.monthly == false(), w.service_day >= month, w.service_day < following)
            .group_by(*[w[k] for k in keys]))
    await uow.session.execute(insert(report_rollup_month_waits).from_select(["service_day", *keys, "n", "total"], rows))
    uow.session.add(ReportRollupMonth(month=month, rolled_at=uow.clock.now()))
    await uow.session.flush()


async def roll_missing(uow: Uow, start: date, end: date, *, limit: int | None = None) -> int:
    """Roll the settled days of [start, end) that have no rollups (never rolled, or unrolled
    by a late change), the newest first, at most ``limit`` of them. Say how many days."""
    end = min(end, settled_before(uow))
    if end <= start:
        return 0
    have = await rolled_days(uow, start, end)
    missing = [d for d in (start + timedelta(days=i) for i in range((end - start).days)) if d not in have]
    missing = sorted(missing, reverse=True)[:limit]
    rolled = 0
    for a, b in _runs(missing):
        rolled += await roll(uow, a, b)
    return rolled


#: How far back the monitor keeps rollups, and how many days one of its passes rolls at most.
KEEP_ROLLED_DAYS, DAYS_PER_PASS = 400, 31


async def roll_settled(uow: Uow) -> int:
    """The monitor's chore: the settled days of the last ``KEEP_ROLLED_DAYS`` that lack
    rollups (a month of them per pass, so a first pass on a long history does not hold the
    monitor up). Nothing missing: one small read."""
    end = settled_before(uow)
    return await roll_missing(uow, end - timedelta(days=KEEP_ROLLED_DAYS), end, limit=DAYS_PER_PASS)


async def roll_for_report(uow: Uow, period: str, day: date | None = None) -> int:
    """Lazily, before a report: roll the settled days it spans (and last year's) that lack rollups."""
    cur = period_of(period if period in PERIODS else "day", day or hours.local_day(uow.rules, uow.clock.now()))
    prev = same_period_last_year(cur)
    return await roll_missing(uow, prev.start, prev.end) + await roll_missing(uow, cur.start, cur.end)


async def unroll(uow: Uow, service_day: date) -> None:
    """A ticket of a rolled day changed (a late rating): its day is read live until rolled again."""
    await uow.serialize("report-rollup")
    await uow.session.execute(delete(ReportRollupDay).where(ReportRollupDay.service_day == service_day))
    await _drop_months(uow, [service_day.replace(day=1)])


async def _rolled_sums(uow: Uow, actor: Actor, dimension: str, rolled: tuple[Rolled, Rolled], *, by_day: bool,
                       ) -> tuple[dict[tuple[int, Key], Sums], dict[date, Sums]]:
    """The ticket sums of the rolled days, like ``_additive``'s, from the rollups."""
    r = report_rollups.c
    names = list(ROLLUP_COLUMNS)
    aggregates = [func.sum(r[ROLLUP_COLUMNS[n]]) for n in names]
    in_cur, in_prev = _in_rolled(r, rolled[0]), _in_rolled(r, rolled[1])
    flag = case((in_cur, 1), else_=0)
    scope = and_(or_(in_cur, in_prev), watched(actor, r.centre_id, r.department_id))
    rows: dict[tuple[int, Key], Sums] = {}
    days: dict[date, Sums] = {}
    if not _any(rolled):
        return rows, days
    stmt = select(flag, r.key, *aggregates).where(r.dimension == dimension, scope).group_by(flag, r.key)
    for row in (await uow.session.execute(stmt)).all():
        rows[(int(row[0]), row[1])] = _sums(names, row[2:])
    if by_day:
        by = (select(r.service_day, *aggregates).where(r.dimension == ROLLUP_TREND_DIMENSION, scope)
              .group_by(r.service_day))
        for row in (await uow.session.execute(by)).all():
            days[_as_date(row[0])] = _sums(names, row[1:])
    return rows, days



async def _sees_every_queue(uow: Uow, actor: Actor) -> bool:
    """Whether the reader's scope is every queue there is (an administrator, a district's
    supervisor of every department): their figures need no queue."""
    if actor.role is Role.admin:
        return True
    centres = (await uow.session.scalars(select(Centre.id))).all()
    departments = (await uow.session.scalars(select(Department.id))).all()
    return all((c, d) in actor.queues for c in centres for d in departments)


async def _at_end(uow: Uow, actor: Actor, m: Metric, dimension: str, cur: Period,
                  prev: Period) -> dict[tuple[int, Key | str], float | None]:
    """(flag, key) → the rows meeting ``m.at`` at the end of the period (now, if sooner), and
    (flag, "total")."""
    assert m.at is not None
    source = m.source
    key = source.dimensions.get(dimension)
    keycol = key if key is not None else literal(None)
    now = uow.clock.now()
    out: dict[tuple[int, Key | str], float | None] = {(1, "total"): 0, (0, "total"): 0}
    for flag, p in ((1, cur), (0, prev)):
        moment = min(now, hours.day_start_utc(uow.rules, p.end))
        stmt = (select(keycol, func.count()).select_from(source.frm(dimension))
                .where(m.at(moment), _watched(actor, source)).group_by(keycol))
        for k, n in (await uow.session.execute(stmt)).all():
            out[(flag, k)] = int(n)
            out[(flag, "total")] = (out[(flag, "total")] or 0) + int(n)
    return out


def _cell(current: float | None, previous: float | None) -> dict[str, float | None]:
    delta = round(current - previous, 1) if current is not None and previous is not None else None
    change = round(100 * (current - previous) / previous, 1) \
        if current is not None and previous not in (None, 0) else None
    return {"current": current, "previous": previous, "delta": delta, "change_pct": change}


async def _names(uow: Uow, dimension: str, keys: set[Key]) -> dict[Key, str]:
    columns: dict[str, tuple[Any, Any]] = {
        "centre": (Centre.id, Centre.name), "town": (Centre.id, Centre.name),
        "extension_point": (ExtensionPoint.id, ExtensionPoint.name), "department": (Department.id, Department.name),
        "clerk": (User.id, User.display_name), "item": (ServiceItem.id, ServiceItem.name)}
    wanted = [k for k in keys if k is not None]
    found: dict[Key, str] = {}
    if wanted:
        ident, name = columns[dimension]
        found = {k: n for k, n in (await uow.session.execute(select(ident, name).where(ident.in_(wanted)))).all()}
    found[None] = {"extension_point": "群众自助（屏对屏）", "clerk": "未叫号"}.get(dimension, "未指定")
    return found


def _bucket(p: Period, day: date) -> int:
    """The trend's bucket of a day: its month in a year, its day in a month or week."""
    if p.kind == "year":
        return day.month - 1
    return (day - p.start).days


def _bucket_labels(p: Period) -> list[str]:
    if p.kind == "year":
        return [f"{m}月" for m in range(1, 13)]
    if p.kind == "week":
        return ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]
    if p.kind == "month":
        return [f"{d}日" for d in range(1, 32)]
    return [p.label()]


def _series(metrics: list[Metric], days: Mapping[date, Sums], cur: Period, prev: Period,
            today: date) -> dict[str, Any]:
    """The ticket metrics' trend within the period (by month in a year, else by day), this year
    and last, for the whole scope; blank for days still to come."""
    labels = _bucket_labels(cur)
    sums: dict[tuple[int, int], Sums] = defaultdict(lambda: defaultdict(float))
    for day, values in days.items():
        which = 1 if cur.start <= day < cur.end else 0
        bucket = _bucket(cur if which else prev, day)
        for n, v in values.items():
            sums[(which, bucket)][n] += v
    last_day = min(cur.end - timedelta(days=1), max(today, cur.start))
    last_bucket = {1: _bucket(cur, last_day), 0: _bucket(prev, prev.end - timedelta(days=1))}

    def line(which: int, m: Metric) -> list[float | None]:
        return [m.value(sums.get((which, b), {})) if b <= last_bucket[which] else None for b in range(len(labels))]

    return {"buckets": labels,
            "current": {m.key: line(1, m) for m in metrics},
            "previous": {m.key: line(0, m) for m in metrics}}


async def report(uow: Uow, actor: Actor, *, dimension: str, period: str, day: date | None = None,
                 series: bool = True) -> dict[str, Any]:
    """The report: every metric per row of the dimension and for the whole scope (``total``),
    this period and the same period last year."""
    actor.require(Role.supervisor, Role.admin)
    if dimension not in DIMENSIONS:
        raise Invalid("unknown_dimension", "统计维度不正确", allowed=list(DIMENSIONS))
    if period not in PERIODS:
        raise Invalid("unknown_period", "统计周期须为日、周、月或年", allowed=list(PERIODS))
    cur = period_of(period, day or hours.local_day(uow.rules, uow.clock.now()))
    prev = same_period_last_year(cur)
    first, last = min(cur.start, prev.start), max(cur.end, prev.end)
    rolled_set = await rolled_days(uow, first, last)
    whole = {_as_date(m) for m in await uow.session.scalars(select(ReportRollupMonth.month).where(
        ReportRollupMonth.month >= first, ReportRollupMonth.month < last))}

    def split(p: Period) -> Rolled:
        """A year: its rolled-up months from their month rows (the trend is by month), other
        rolled days from their day rows."""
        months = sorted(m for m in whole if p.kind == "year" and p.start <= m < p.end
                        and all(d in rolled_set for d in _days(Period("month", m, _next_month(m)))))
        taken = set(months)
        return months, _runs([d for d in _days(p) if d in rolled_set and d.replace(day=1) not in taken])

    rolled = (split(cur), split(prev))
    live = (_runs([d for d in _days(cur) if d not in rolled_set]),
            _runs([d for d in _days(prev) if d not in rolled_set]))
    sums: dict[tuple[int, Key], Sums] = defaultdict(lambda: defaultdict(float))
    totals: dict[int, Sums] = {1: defaultdict(float), 0: defaultdict(float)}
    keys: set[Key] = set()
    days: dict[date, Sums] = {}

    def add(source: Source, found: Mapping[tuple[int, Key], Sums], by_day: Mapping[date, Sums]) -> None:
        days.update(by_day)
        for (flag, key), values in found.items():
            for n, v in values.items():
                totals[flag][n] += v
                if dimension in source.dimensions:
                    sums[(flag, key)][n] += v
            if dimension in source.dimensions:
                keys.add(key)

    for source in dict.fromkeys(m.source for m in METRICS):
        mine = [m for m in METRICS if m.source is source and m.additive]
        trend = series and source is TICKETS
        if source is not TICKETS:
            in_cur, in_prev = _bounds(source, cur, uow.rules), _bounds(source, prev, uow.rules)
            add(source, *await _additive(uow, actor, source, mine, dimension, in_cur, in_prev, by_day=trend))
            continue
        if live[0] or live[1]:  # today, and days not rolled up: from the tickets
            in_cur, in_prev = _in_spans(source.when, live[0]), _in_spans(source.when, live[1])
            add(source, *await _additive(uow, actor, source, mine, dimension, in_cur, in_prev, by_day=trend))
        add(source, *await _rolled_sums(uow, actor, dimension, rolled, by_day=trend))
    quantiles: dict[str, dict[tuple[int, Key | str], float | None]] = {}
    for m in METRICS:
        if not m.additive:
            quantiles[m.key] = (await _p90(uow, actor, m, dimension, live, rolled,
                                           every_queue=await _sees_every_queue(uow, actor)) if m.kind == "p90"
                                else await _at_end(uow, actor, m, dimension, cur, prev))
            if dimension in m.source.dimensions:
                keys.update(k for (_f, k) in quantiles[m.key] if k != "total" and not isinstance(k, str))

    def cells(pick: Callable[[Metric, int], float | None]) -> dict[str, dict[str, float | None]]:
        return {m.key: _cell(pick(m, 1), pick(m, 0)) for m in METRICS}

    def row_value(key: Key) -> Callable[[Metric, int], float | None]:
        def pick(m: Metric, flag: int) -> float | None:
            if dimension not in m.source.dimensions:
                return None
            if not m.additive:
                q = quantiles[m.key].get((flag, key), 0 if m.kind == "at_end" else None)
                return round(q, 1) if q is not None else None
            return m.value(sums.get((flag, key), {}))
        return pick

    def total_value(m: Metric, flag: int) -> float | None:
        if not m.additive:
            q = quantiles[m.key].get((flag, "total"))
            return round(q, 1) if q is not None else None
        return m.value(totals[flag])

    names = await _names(uow, dimension, keys)
    rows = [{"key": k, "name": names.get(k, f"#{k}"), "values": cells(row_value(k))}
            for k in sorted(keys, key=lambda k: (k is None, k or 0))]
    answer: dict[str, Any] = {
        "dimension": dimension, "dimension_label": DIMENSIONS[dimension],
        "period": period, "period_label": PERIODS[period],
        "current": cur.view(), "previous": prev.view(),
        "metrics": [m.view() for m in METRICS],
        "pending": [{"key": k, "label": label} for k, label in PENDING],
        "rows": rows,
        "total": {"key": None, "name": "合计", "values": cells(total_value)},
        "series": None,
    }
    if series:
        today = hours.local_day(uow.rules, uow.clock.now())
        answer["series"] = _series([m for m in METRICS if m.in_series], days, cur, prev, today)
    return answer


def file_stem(r: Mapping[str, Any]) -> str:
    """统计报表_部门_月_2026-11 — the export's name without extension."""
    cur = period_of(r["period"], date.fromisoformat(r["current"]["start"]))
    return f"统计报表_{r['dimension_label']}_{r['period_label']}_{cur.code()}"


def table(r: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The report as a sheet: Chinese headers, one line per row and the total last; each metric
    as this period, the same period last year and the change (per cent)."""
    units = {"count": "", "seconds": "（秒）", "percent": "（%）"}
    header = [r["dimension_label"]]
    for m in r["metrics"]:
        name = f"{m['label']}{units[m['unit']]}"
        header += [f"{name}本期", f"{name}去年同期", f"{m['label']}同比（%）"]
    lines = []
    for row in [*r["rows"], r["total"]]:
        line: list[Any] = [row["name"]]
        for m in r["metrics"]:
            cell = row["values"][m["key"]]
            line += [cell["current"], cell["previous"], cell["change_pct"]]
        lines.append(line)
    return header, lines
