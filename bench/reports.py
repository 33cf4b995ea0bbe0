"""统计报表 benchmark: every report over a year of a district's tickets, on PostgreSQL and SQLite.

What is measured
----------------
``server.domain.reports.report`` — the report the page and the exports ask for, every query
it runs and the Python around them — through the domain (a unit of work on the real database),
as the whole district's supervisor (``supervisor1``: every queue of the district, the scope
clause included). HTTP is not involved. Each backend gets a database of its own (a temporary
SQLite file, or a uniquely named PostgreSQL database that is dropped afterwards), migrated
(with the report indexes of migration 0017) and demo-seeded, plus ``CLERKS`` bench clerks.

Setup (not timed) then loads, for the 365 days up to today, ``--tickets`` tickets spread over
the work days (≈ 2 million by default: a district of 1 + 17 centres and 288 extension points
takes about 8,000 a work day), with waits, handling times, no-shows, cancellations, transfers,
call-backs and ratings drawn from fixed distributions (seeded: both backends get the same
rows), one wait-timeout alert or warning per 270 tickets, two tidal windows a work day and an
expert consultation (one or two invitations, most answered) per 100 tickets. PostgreSQL is
loaded with ``COPY`` (asyncpg), SQLite with ``executemany``; both are then analysed (and
PostgreSQL vacuumed, as autovacuum would).

Timed: every dimension (6) × period (4) report for today, ``--repeat`` times each, in turn.
A year report covers the whole load (this year and the same period last year); a day report
a day and its date last year. ``report_p95_ms`` is the nearest-rank 95th percentile over all
those timings; the target is under 2,000 ms on PostgreSQL at two million tickets.

Usage: ``python bench/reports.py [--quick] [--backend sqlite|postgresql|both] [--tickets N]
[--repeat N]``. ``--quick`` loads 100,000 tickets (said in its figures) and times each report
once. The last line printed is one JSON object: ``{"postgresql": {"tickets": N,
"report_p95_ms": …, …}, "sqlite": {…}, "quick": bool}``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # run as a script: this folder (where queue.py shadows the standard library's) out, the repo in
    _BENCH = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
    sys.path.insert(0, str(_BENCH.parent))

import argparse
import asyncio
import json
import math
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import numpy as np
from sqlalchemy import func, insert, select, text

from server.config import Settings
from server.db import Database
from server.domain import accounts, reports
from server.domain.clock import SystemClock
from server.events import MemorySink
from server.migrate import upgrade
from server.models import Centre, CentreLevel, ExtensionPoint, Role, ServiceItem, Ticket, User
from server.runtime import Domain
from server.seed import seed_demo

PG_ADMIN = os.environ.get("YUNBANG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
TICKETS = 2_000_000
QUICK_TICKETS = 100_000
REPEAT, QUICK_REPEAT = 3, 1
CLERKS = 150
TARGET_MS = 2000.0
TZ = ZoneInfo("Asia/Shanghai")
CHUNK = 50_000

TICKET_COLUMNS = (
    "id", "number", "service_day", "centre_id", "department_id", "item_id", "source", "extension_point_id",
    "worker_id", "resident", "callback", "status", "taken_at", "called_at", "started_at", "finished_at",
    "clerk_id", "recalls", "transfers", "result", "rating_score", "rated_at",
)
ALERT_COLUMNS = ("id", "kind", "level", "centre_id", "department_id", "message", "detail", "created_at")
WINDOW_COLUMNS = ("id", "name", "centre_id", "active", "tidal", "opened_at", "closes_at", "closed_at")
CONSULTATION_COLUMNS = ("id", "ticket_id", "created_by_id", "note", "created_at")
INVITATION_COLUMNS = ("id", "consultation_id", "ticket_id", "expert_id", "invited_by_id", "status", "created_at",
                      "expires_at", "answered_at", "in_main_call")


@dataclass
class World:
    """The seeded district the synthetic rows refer to."""

    district: int
    items: list[tuple[int, int, bool]]  # id, department, district level
    points: list[tuple[int, int]]  # id, its town centre
    towns: list[int]
    departments: list[int]
    clerks: list[int]
    experts: list[int]
    worker: int
    supervisor: int


@dataclass
class Rows:
    tickets: list[tuple[Any, ...]]
    alerts: list[tuple[Any, ...]]
    windows: list[tuple[Any, ...]]
    window_departments: list[tuple[int, int]]
    consultations: list[tuple[Any, ...]]
    invitations: list[tuple[Any, ...]]


def work_days(today: date) -> list[date]:
    return [d for d in (today - timedelta(days=n) for n in range(364, -1, -1)) if d.weekday() < 5]


def generate(world: World, total: int, today: date) -> Iterator[Rows]:
    """The year's rows, a chunk of days at a time, the same for a given world and total."""
    rng = np.random.default_rng(20261123)
    days = work_days(today)
    per_day = total // len(days)
    extra = total - per_day * len(days)
    ids = {"ticket": 1, "alert": 1, "window": 100_000, "consultation": 1, "invitation": 1}
    items = np.array([i[0] for i in world.items])
    item_department = {i[0]: i[1] for i in world.items}
    item_district = {i[0]: i[2] for i in world.items}
    points = world.points
    rows = Rows([], [], [], [], [], [])
    for n, day in enumerate(days):
        count = per_day + (1 if n < extra else 0)
        opens = datetime(day.year, day.month, day.day, 9, tzinfo=TZ).timestamp()
        taken = opens + rng.uniform(0, 8 * 3600, count)
        wait = np.minimum(rng.exponential(480, count), 3 * 3600)
        handle = rng.exponential(600, count) + 60
        roll = rng.uniform(0, 1, count)
        item_of = rng.choice(items, count)
        point_of = rng.integers(0, len(points), count)
        direct = rng.uniform(0, 1, count) < 0.1
        clerk_of = rng.choice(world.clerks, count)
        transfers = (rng.uniform(0, 1, count) < 0.03).astype(int)
        callback = rng.uniform(0, 1, count) < 0.03
        rated = rng.uniform(0, 1, count) < 0.6
        score = rng.choice([5, 4, 3, 2, 1], count, p=[0.7, 0.2, 0.05, 0.03, 0.02])
        town_of_direct = rng.choice(world.towns, count)
        for k in range(count):
            item = int(item_of[k])
            point_id, point_town = points[int(point_of[k])]
            town = int(town_of_direct[k]) if direct[k] else point_town
            centre = world.district if item_district[item] else town
            t = float(taken[k])
            r = float(roll[k])
            status = "completed" if r < 0.85 else "no_show" if r < 0.9 else "cancelled" if r < 0.95 else "completed"
            called = t + float(wait[k]) if status != "cancelled" else None
            finished = (called + float(handle[k]) if status == "completed" else
                        called + 120 if status == "no_show" else t + float(wait[k]) / 2)
            is_rated = status == "completed" and bool(rated[k])
            stamp = datetime.fromtimestamp
            rows.tickets.append((
                ids["ticket"], f"B{k:05d}", day, centre, item_department[item], item,
                "direct" if direct[k] else "point", None if direct[k] else point_id, world.worker,
                '{"name": "群众"}', bool(callback[k]), status, stamp(t, UTC),
                stamp(called, UTC) if called else None, stamp(called + 30, UTC) if status == "completed" else None,
                stamp(finished, UTC), int(clerk_of[k]) if called else None, 0, int(transfers[k]),
                "done" if status == "completed" else None, int(score[k]) if is_rated else None,
                stamp(finished + 60, UTC) if is_rated else None,
            ))
            if k % 100 == 0 and called is not None:
                created = stamp(called + 300, UTC)
                rows.consultations.append((ids["consultation"], ids["ticket"], int(clerk_of[k]), "", created))
                for e in range(1 + (k // 100) % 2):
                    answer = (k + e) % 10
                    status_i = "accepted" if answer < 7 else "declined" if answer < 9 else "expired"
                    answered = created + timedelta(seconds=10 + (k * 7 + e * 13) % 100) if answer < 9 else None
                    rows.invitations.append((
                        ids["invitation"], ids["consultation"], ids["ticket"], world.experts[(k + e) % len(world.experts)],
                        int(clerk_of[k]), status_i, created, created + timedelta(minutes=2), answered, False))
                    ids["invitation"] += 1
                ids["consultation"] += 1
            if k % 270 == 0:
                kind, level = (("wait_timeout", "yellow") if k % 3 else ("warning", "red" if k % 2 else "yellow"))
                rows.alerts.append((ids["alert"], kind, level, centre, item_department[item], "bench", "{}",
                                    stamp(t + 900, UTC)))
                ids["alert"] += 1
            ids["ticket"] += 1
        for w in range(2):
            opened = datetime.fromtimestamp(opens + 3600 * (1 + 3 * w), UTC)
            centre = world.towns[(n + w) % len(world.towns)] if w else world.district
            rows.windows.append((ids["window"], f"潮汐窗口{ids['window']}", centre, False, True, opened,
                                 opened + timedelta(hours=1), opened + timedelta(hours=1)))
            rows.window_departments.append((ids["window"], world.departments[(n + w) % len(world.departments)]))
            ids["window"] += 1
        if len(rows.tickets) >= CHUNK or n == len(days) - 1:
            yield rows
            rows = Rows([], [], [], [], [], [])


async def prepare(db: Database) -> World:
    """Seed the demo district, add the bench clerks (one precomputed hash, no argon2 per row)."""
    await seed_demo(db)
    password_hash = await accounts.hash_password(uuid.uuid4().hex)
    now = datetime.now(UTC)
    async with db.write() as s:
        await s.execute(insert(User), [
            {"username": f"bench_clerk_{n}", "display_name": f"云窗口人员{n:03d}", "password_hash": password_hash,
             "role": Role.clerk, "active": True, "specialties": [], "created_at": now} for n in range(CLERKS)])
    async with db.read() as s:
        district = (await s.scalars(select(Centre.id).where(Centre.level == CentreLevel.district))).first()
        assert district is not None
        items = [(i, d, lvl is CentreLevel.district) for i, d, lvl in (await s.execute(
            select(ServiceItem.id, ServiceItem.department_id, ServiceItem.level))).all()]
        points = [(p, c) for p, c in (await s.execute(select(ExtensionPoint.id, ExtensionPoint.centre_id))).all()]
        towns = list((await s.scalars(select(Centre.id).where(Centre.level == CentreLevel.town))).all())
        departments = sorted({d for _, d, _ in items})
        clerks = list((await s.scalars(select(User.id).where(User.role == Role.clerk))).all())
        experts = list((await s.scalars(select(User.id).where(User.role == Role.expert))).all())
        worker = (await s.scalars(select(User.id).where(User.username == "worker1"))).one()
        supervisor = (await s.scalars(select(User.id).where(User.username == "supervisor1"))).one()
    return World(district, items, points, towns, departments, clerks, experts, worker, supervisor)


async def load_postgresql(url: str, world: World, total: int, today: date) -> int:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    loaded = 0
    try:
        for rows in generate(world, total, today):
            await conn.copy_records_to_table("tickets", records=rows.tickets, columns=TICKET_COLUMNS)
            await conn.copy_records_to_table("alerts", records=rows.alerts, columns=ALERT_COLUMNS)
            await conn.copy_records_to_table("cloud_windows", records=rows.windows, columns=WINDOW_COLUMNS)
            await conn.copy_records_to_table("window_departments", records=rows.window_departments,
                                             columns=("window_id", "department_id"))
            await conn.copy_records_to_table("consultations", records=rows.consultations,
                                             columns=CONSULTATION_COLUMNS)
            await conn.copy_records_to_table("invitations", records=rows.invitations, columns=INVITATION_COLUMNS)
            loaded += len(rows.tickets)
        for table in ("tickets", "alerts", "cloud_windows", "consultations", "invitations"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return loaded


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    if isinstance(v, date):
        return v.isoformat()
    return v


def load_sqlite(path: str, world: World, total: int, today: date) -> int:
    conn = sqlite3.connect(path)
    loaded = 0
    try:
        tables = (("tickets", TICKET_COLUMNS), ("alerts", ALERT_COLUMNS), ("cloud_windows", WINDOW_COLUMNS),
                  ("window_departments", ("window_id", "department_id")),
                  ("consultations", CONSULTATION_COLUMNS), ("invitations", INVITATION_COLUMNS))
        for rows in generate(world, total, today):
            batches = (rows.tickets, rows.alerts, rows.windows, rows.window_departments, rows.consultations,
                       rows.invitations)
            for (table, columns), batch in zip(tables, batches, strict=True):
                marks = ", ".join("?" for _ in columns)
                conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                                 ([_sqlite_value(v) for v in row] for row in batch))
            conn.commit()
            loaded += len(rows.tickets)
        conn.execute("ANALYZE")
        conn.commit()
    finally:
        conn.close()
    return loaded


@asynccontextmanager
async def sqlite_database() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory(prefix="yunbang-bench-") as tmp:
        yield f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"


@asynccontextmanager
async def postgresql_database(admin_url: str) -> AsyncIterator[str]:
    name = f"yb_bench_reports_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def nearest_rank(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return round(ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1], 1)


async def roll_up(domain: Domain, today: date) -> int:
    """The seed's settled days rolled up as the monitor would, a month per transaction."""
    async with domain.unit(write=False) as uow:
        end = reports.settled_before(uow)
    start, rolled = today - timedelta(days=400), 0
    while start < end:
        stop = min(end, start + timedelta(days=31))
        async with domain.unit() as uow:
            rolled += await reports.roll(uow, start, stop)
        start = stop
    if domain.db.dialect == "postgresql":
        async with domain.db.write() as s:
            await s.execute(text("ANALYZE report_rollups"))
            await s.execute(text("ANALYZE report_rollup_waits"))
    return rolled


async def run_backend(backend: str, url: str, total: int, repeat: int) -> dict[str, Any]:
    started = time.perf_counter()
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    try:
        world = await prepare(db)
        today = datetime.now(TZ).date()
        if backend == "postgresql":
            loaded = await load_postgresql(url, world, total, today)
        else:
            loaded = await asyncio.to_thread(load_sqlite, url.split("///", 1)[1], world, total, today)
        setup_s = time.perf_counter() - started
        domain = Domain(db, SystemClock(), Settings(database_url=url), MemorySink())
        rolled_started = time.perf_counter()
        rolled_days = await roll_up(domain, today)
        rollup_s = time.perf_counter() - rolled_started
        print(f"{backend}: {rolled_days} settled days rolled up "
              f"in {rollup_s:.1f} s", flush=True)
        actor = await domain.actor(world.supervisor)
        timings: dict[tuple[str, str], list[float]] = {}
        checked: dict[str, Any] = {}
        for _ in range(repeat):
            for period in reports.PERIODS:
                for dimension in reports.DIMENSIONS:
                    t0 = time.perf_counter()
                    async with domain.unit(write=False) as uow:
                        answer = await reports.report(uow, actor, dimension=dimension, period=period, day=today)
                    timings.setdefault((dimension, period), []).append((time.perf_counter() - t0) * 1000)
                    if dimension == "department":
                        checked[period] = answer["total"]["values"]["tickets"]
        async with db.read() as s:
            in_db = int((await s.scalar(select(func.count()).select_from(Ticket))) or 0)
    finally:
        await db.dispose()
    samples = [ms for values in timings.values() for ms in values]
    by_period = {p: nearest_rank([ms for (d, q), v in timings.items() if q == p for ms in v], 95)
                 for p in reports.PERIODS}
    year = checked["year"]
    return {
        "tickets": loaded, "tickets_in_database": in_db,
        "year_report_tickets": int((year["current"] or 0) + (year["previous"] or 0)),
        "reports_timed": len(samples), "repeat": repeat,
        "report_p50_ms": nearest_rank(samples, 50), "report_p95_ms": nearest_rank(samples, 95),
        "report_max_ms": round(max(samples), 1),
        **{f"{p}_p95_ms": v for p, v in by_period.items()},
        "setup_s": round(setup_s, 1), "rollup_s": round(rollup_s, 1), "rolled_days": rolled_days,
        "table": {f"{d}/{p}": round(sorted(v)[len(v) // 2], 1) for (d, p), v in timings.items()},
    }


def print_table(backend: str, r: dict[str, Any]) -> None:
    dims = list(reports.DIMENSIONS)
    print(f"{backend}: {r['tickets']} tickets loaded in {r['setup_s']} s; median ms per report "
          f"(of {r['repeat']}), dimension × period:", flush=True)
    print(f"{backend}:   {'':16}" + "".join(f"{p:>10}" for p in reports.PERIODS), flush=True)
    for d in dims:
        cells = "".join(f"{r['table'][f'{d}/{p}']:>10.1f}" for p in reports.PERIODS)
        print(f"{backend}:   {d:16}{cells}", flush=True)
    met = "met" if r["report_p95_ms"] < TARGET_MS else "NOT met"
    print(f"{backend}: p50 {r['report_p50_ms']} ms, p95 {r['report_p95_ms']} ms, max {r['report_max_ms']} ms "
          f"over {r['reports_timed']} reports; the year report spans {r['year_report_tickets']} tickets "
          f"(target p95 < {TARGET_MS:g} ms: {met})", flush=True)


async def run(backends: list[str], total: int, repeat: int, pg_admin: str, quick: bool) -> int:
    figures: dict[str, Any] = {}
    for backend in backends:
        database = sqlite_database() if backend == "sqlite" else postgresql_database(pg_admin)
        async with database as url:
            result = await run_backend(backend, url, total, repeat)
        print_table(backend, result)
        figures[backend] = {k: v for k, v in result.items() if k != "table"}
    figures["quick"] = quick
    if quick:
        figures["note"] = f"--quick: {total} tickets seeded instead of {TICKETS}"
    print(json.dumps(figures, ensure_ascii=False), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TICKETS} tickets, each report once")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--tickets", type=int, default=None, help=f"tickets over the year (default {TICKETS})")
    parser.add_argument("--repeat", type=int, default=None, help=f"timings of each report (default {REPEAT})")
    parser.add_argument("--pg-admin", default=PG_ADMIN,
                        help="PostgreSQL URL used to create and drop the benchmark database")
    args = parser.parse_args(argv)
    total = args.tickets if args.tickets is not None else (QUICK_TICKETS if args.quick else TICKETS)
    repeat = args.repeat if args.repeat is not None else (QUICK_REPEAT if args.quick else REPEAT)
    if total < 300 or repeat < 1:
        parser.error("--tickets must be at least 300 and --repeat at least 1")
    backends = ["postgresql", "sqlite"] if args.backend == "both" else [args.backend]
    return asyncio.run(run(backends, total, repeat, args.pg_admin, args.quick))


if __name__ == "__main__":
    sys.exit(main())
