"""统计报表 — the figures a service centre is judged by: per dimension (centre, town, extension
point, department, clerk, item) and period (day, week, month, year), each with the same period
last year and the change (docs/reports.md defines every metric).

A metric is a small definition over one source table (``Source``: tickets, alerts, tidal
windows, expert invitations): what it counts, sums, averages or takes the 90th percentile of,
and which rows. The engine runs one query per source for all of that source's additive
metrics (counts and sums, grouped by period and dimension; a total is the sum of its rows),
one per percentile metric (PostgreSQL's ``percentile_cont``; on SQLite the values are read
and interpolated the same way here), and one per-day query over tickets for the trend series.
Every query is scoped like the wall display: a supervisor sees the queues (centre ×
department) they watch, an administrator every queue.

Metrics of tables other parts add (督办台账, 差评整改, 证照到期提醒) are ``PENDING`` slots: each
becomes a ``Source`` for its table and a few ``Metric`` lines below (docs/reports.md, "Adding a
metric").
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Float,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.sql.expression import FromClause

from server.domain import hours
from server.domain.access import watched
from server.domain.context import Actor, Uow
from server.domain.errors import Invalid
from server.models import (
    Alert,
    Centre,
    CloudWindow,
    Department,
    ExtensionPoint,
    Invitation,
    Role,
    ServiceItem,
    Ticket,
    TicketStatus,
    User,
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


# --- metrics ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Metric:
    """One figure. ``kind``: ``count`` (rows where ``where``), ``total`` (sum of ``expr``),
    ``mean`` (of ``expr`` over rows where ``where``), ``share`` (per cent of the rows where
    ``where`` that also meet ``part``) or ``p90`` (percentile_cont(0.9) of ``expr`` over rows
    where ``where``). ``unit``: count, seconds or percent."""

    key: str
    label: str
    unit: str
    source: Source
    kind: str
    where: Cond | None = None
    expr: Expr | None = None
    part: Cond | None = None

    @property
    def additive(self) -> bool:
        return self.kind != "p90"

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
)

#: Slots for metrics over tables other parts of issue 15 add; docs/reports.md says how to fill them.
PENDING: tuple[tuple[str, str], ...] = (
    ("bad_ratings_rectified", "差评整改办结"),
    ("ledger_opened", "督办台账新增"),
    ("ledger_closed", "督办台账办结"),
    ("ledger_overdue", "督办台账逾期"),
    ("reminders_sent", "证照到期提醒发送"),
)
BY_KEY = {m.key: m for m in METRICS}


# --- the report ---------------------------------------------------------------------------------

Key = int | None
Sums = dict[str, float]


def _bounds(source: Source, p: Period, rules: Any) -> ColumnElement[bool]:
    if source.local_day:
        return and_(source.when >= p.start, source.when < p.end)
    return and_(source.when >= hours.day_start_utc(rules, p.start), source.when < hours.day_start_utc(rules, p.end))


def _parts(metrics: list[Metric], dialect: str) -> dict[str, ColumnElement[Any]]:
    parts: dict[str, ColumnElement[Any]] = {}
    for m in metrics:
        parts.update(m.parts(dialect))
    return parts


def _sums(names: list[str], values: Any) -> Sums:
    return {n: float(v or 0) for n, v in zip(names, values, strict=True)}


async def _additive(uow: Uow, actor: Actor, source: Source, metrics: list[Metric], dimension: str,
                    cur: Period, prev: Period, *, by_day: bool = False,
                    ) -> tuple[dict[tuple[int, Key], Sums], dict[date, Sums]]:
    """(1 this period | 0 last year, dimension key) → the metrics' sums; with ``by_day``, also
    each local day → the sums (the trend; a source placed by local day only). Two queries: one
    scan with both as GROUPING SETS measured no faster on PostgreSQL, and cannot run in parallel."""
    parts = _parts(metrics, uow.dialect)
    names = list(parts)
    in_cur, in_prev = _bounds(source, cur, uow.rules), _bounds(source, prev, uow.rules)
    flag = case((in_cur, 1), else_=0)
    key = source.dimensions.get(dimension)
    keycol = key if key is not None else literal(None)
    grouped = [flag, *([key] if key is not None else [])]
    aggregates = [p.label(f"p{i}") for i, p in enumerate(parts.values())]
    scope = and_(or_(in_cur, in_prev), watched(actor, source.centre, source.department))
    frm = source.frm(dimension)
    rows: dict[tuple[int, Key], Sums] = {}
    days: dict[date, Sums] = {}
    stmt = select(flag, keycol, *aggregates).select_from(frm).where(scope).group_by(*grouped)
    for row in (await uow.session.execute(stmt)).all():
        rows[(int(row[0]), row[1])] = _sums(names, row[2:])
    if by_day:
        by = select(source.when, *aggregates).select_from(source.frm(None)).where(scope).group_by(source.when)
        for row in (await uow.session.execute(by)).all():
            day = row[0] if isinstance(row[0], date) else date.fromisoformat(row[0])
            days[day] = _sums(names, row[1:])
    return rows, days


def percentile(values: list[float], q: float) -> float | None:
    """``percentile_cont``: linear interpolation between the two nearest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


async def _p90(uow: Uow, actor: Actor, m: Metric, dimension: str, cur: Period,
               prev: Period) -> dict[tuple[int, Key | str], float | None]:
    """(flag, key) → the 90th percentile, and (flag, "total") → over the whole scope."""
    source = m.source
    assert m.expr is not None and m.where is not None
    in_cur, in_prev = _bounds(source, cur, uow.rules), _bounds(source, prev, uow.rules)
    flag = case((in_cur, 1), else_=0)
    key = source.dimensions.get(dimension)
    keycol = key if key is not None else literal(None)
    value = m.expr(uow.dialect)
    scope = and_(or_(in_cur, in_prev), watched(actor, source.centre, source.department), m.where(uow.dialect))
    frm = source.frm(dimension)
    out: dict[tuple[int, Key | str], float | None] = {}
    if uow.dialect == "postgresql":
        agg = func.percentile_cont(0.9).within_group(value)
        sets = [tuple_(flag, key), tuple_(flag)] if key is not None else [tuple_(flag)]
        stmt = (select(flag, keycol, func.grouping(keycol) if key is not None else literal(1), agg)
                .select_from(frm).where(scope).group_by(func.grouping_sets(*sets)))
        for f, k, total, v in (await uow.session.execute(stmt)).all():
            out[(int(f), "total" if total else k)] = float(v) if v is not None else None
        return out
    groups: dict[tuple[int, Key | str], list[float]] = defaultdict(list)
    for f, k, v in (await uow.session.execute(select(flag, keycol, value).select_from(frm).where(scope))).all():
        groups[(int(f), "total")].append(float(v))
        if key is not None:
            groups[(int(f), k)].append(float(v))
    return {g: percentile(vs, 0.9) for g, vs in groups.items()}


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
    if uow.dialect == "postgresql":  # the percentile's sort of a year's waits in memory, not on disk
        await uow.session.execute(text("SET LOCAL work_mem = '64MB'"))
    cur = period_of(period, day or hours.local_day(uow.rules, uow.clock.now()))
    prev = same_period_last_year(cur)
    sums: dict[tuple[int, Key], Sums] = defaultdict(dict)
    totals: dict[int, Sums] = {1: defaultdict(float), 0: defaultdict(float)}
    keys: set[Key] = set()
    sources = list(dict.fromkeys(m.source for m in METRICS))
    days: dict[date, Sums] = {}
    for source in sources:
        mine = [m for m in METRICS if m.source is source and m.additive]
        found, by_day = await _additive(uow, actor, source, mine, dimension, cur, prev,
                                        by_day=series and source is TICKETS)
        days.update(by_day)
        for (flag, key), values in found.items():
            for n, v in values.items():
                totals[flag][n] += v
            if dimension in source.dimensions:
                sums[(flag, key)].update(values)
                keys.add(key)
    quantiles: dict[str, dict[tuple[int, Key | str], float | None]] = {}
    for m in METRICS:
        if not m.additive:
            quantiles[m.key] = await _p90(uow, actor, m, dimension, cur, prev)
            keys.update(k for (_f, k) in quantiles[m.key] if k != "total" and not isinstance(k, str))

    def cells(pick: Callable[[Metric, int], float | None]) -> dict[str, dict[str, float | None]]:
        return {m.key: _cell(pick(m, 1), pick(m, 0)) for m in METRICS}

    def row_value(key: Key) -> Callable[[Metric, int], float | None]:
        def pick(m: Metric, flag: int) -> float | None:
            if dimension not in m.source.dimensions:
                return None
            if not m.additive:
                q = quantiles[m.key].get((flag, key))
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
