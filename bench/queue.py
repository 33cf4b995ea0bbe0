"""Cloud-window queue benchmark: take-ticket and call-next throughput and latency.

What is measured
----------------
The queue logic and the database together, in-process, through the domain layer
(``server.runtime.Domain`` with a ``MemorySink`` and the system clock; service hours
``always`` so no ticket becomes a call-back). HTTP and socket.io are not involved.
Each backend gets a fresh, migrated, demo-seeded database (a temporary SQLite file, or a
uniquely named PostgreSQL database that is dropped afterwards), plus ``--clerks`` clerks,
each with their own window at the district centre serving 民政 (MZ). Setup is not timed.

1. take: demo ``worker1`` takes ``--tickets`` tickets for one district-level MZ item, every
   resident with a unique name and id number, from 10 concurrent tasks. Each take_ticket is
   its own unit of work; its latency runs from entering the unit to the commit.
2. paced call: with the queue still ~1,000 deep, the 50 clerks call at a combined
   ``PACED_RATE`` call-next per second (each clerk after an exponential pause, so arrivals are
   Poisson), each call followed by start_service + complete (untimed). This is the latency a
   clerk sees under load: 25 calls/s is about 150 times what 50 real clerks produce (a case
   takes minutes), yet below what one process can serve. ``call_next_p50_ms`` and
   ``call_next_p99_ms`` (the target) come from this phase.
3. saturated call: every clerk loops call_next on their window (one unit, timed), then
   start_service + complete in a following unit, with no pause, until call_next answers None
   while nothing is waiting. ``ops_per_s`` is call-next operations per second of wall time
   over this phase, the capacity of one process; ``cpu_ms_per_call`` is this process's CPU
   time per call-next plus its start + complete; ``saturated_call_next_p99_ms`` is mostly
   queueing for the one event loop (Little's law: about clerks / ops_per_s).
4. solo: afterwards one clerk alone calls 50 freshly taken tickets (untimed takes), one after
   the other: ``call_next_solo_*`` is call-next's own cost, with no one to queue behind.

How to read it
--------------
Latencies are what a caller waits for: the domain call and its commit, plus every wait on the
way: for the event loop (the clerks share one process), for a pooled connection (PostgreSQL
pool: 20 + 20 overflow, fewer than 50 clerks), for the process-wide writer lock on SQLite and
for row locks on PostgreSQL. ``double_assignments`` counts tickets that
call_next handed to more than one window and must be 0; ``called`` must equal ``tickets``.
``false_empty`` counts call_next answers of None while tickets were still waiting (on
PostgreSQL, waiting rows locked by other callers are skipped); the clerk then tries again.
The target is ``call_next_p99_ms`` under 20 ms on PostgreSQL.

Usage: ``python bench/queue.py [--quick] [--backend sqlite|postgresql|both] [--tickets N]
[--clerks N]``. The last line printed is one JSON object: ``{"sqlite": {...},
"postgresql": {...}, "quick": bool}``. The exit status is 1 when a correctness check failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, where this file would shadow
# the standard library's ``queue`` (imported by concurrent.futures and logging.handlers).
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

import argparse
import asyncio
import json
import math
import os
import random
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import func, select

from server.config import QueueRules, ServiceHours, Settings
from server.db import Database
from server.domain import accounts
from server.domain import queue as ticket_queue
from server.domain.clock import SystemClock
from server.domain.context import Actor
from server.domain.errors import DomainError
from server.events import MemorySink
from server.migrate import upgrade
from server.models import (
    Centre,
    CentreLevel,
    CloudWindow,
    Department,
    Role,
    ServiceItem,
    Ticket,
    TicketStatus,
    User,
)
from server.runtime import Domain
from server.seed import seed_demo

PG_ADMIN = os.environ.get("YUNBANG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
TAKE_TASKS = 10
QUICK_TICKETS = 300
SOLO_CALLS = 50
PACED_RATE = 25.0
PACED_CALLS = 300
QUICK_PACED_CALLS = 100
TARGET_P99_MS = 20.0
MAX_ERRORS_PER_CLERK = 100


@dataclass
class Fixture:
    """What the timed phases need, created untimed in the backend's fresh database."""

    item_id: int
    worker: Actor
    clerks: list[tuple[Actor, int]]


@dataclass
class CallStats:
    latencies: list[float] = field(default_factory=list)
    called: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    false_empty: int = 0


def percentile_ms(samples: list[float], p: float) -> float:
    """Nearest-rank percentile of latencies in seconds, in milliseconds."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return round(ordered[rank - 1] * 1000, 2)


@asynccontextmanager
async def sqlite_database() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory(prefix="yunbang-bench-") as tmp:
        yield f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"


@asynccontextmanager
async def postgresql_database(admin_url: str) -> AsyncIterator[str]:
    name = f"yb_bench_{uuid.uuid4().hex[:12]}"
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


async def prepare(db: Database, domain: Domain, clerks: int) -> Fixture:
    """Seed the demo district, then add one window (MZ, district centre) per bench clerk.

    Clerk rows are inserted directly with one precomputed hash: create_user would hash
    every password with argon2, which only slows the setup down.
    """
    await seed_demo(db)
    password_hash = await accounts.hash_password(uuid.uuid4().hex)
    run = uuid.uuid4().hex[:6]
    async with db.write() as s:
        district = (await s.scalars(
            select(Centre).where(Centre.level == CentreLevel.district).order_by(Centre.id).limit(1)
        )).one()
        mz = (await s.scalars(select(Department).where(Department.code == "MZ"))).one()
        item_id = (await s.scalars(
            select(ServiceItem.id)
            .where(ServiceItem.department_id == mz.id, ServiceItem.level == CentreLevel.district,
                   ServiceItem.active.is_(True))
            .order_by(ServiceItem.id)
            .limit(1)
        )).one()
        worker_id = (await s.scalars(select(User.id).where(User.username == "worker1"))).one()
        users = []
        for n in range(1, clerks + 1):
            window = CloudWindow(name=f"压测民政云窗口{n:03d}", centre_id=district.id, active=True,
                                 tidal=False, departments=[mz])
            users.append(User(
                username=f"bench_{run}_clerk{n:03d}", display_name=f"压测窗口 {n:03d}",
                password_hash=password_hash, role=Role.clerk, active=True, specialties=[],
                created_at=datetime.now(UTC), windows=[window], departments=[],
            ))
        s.add_all(users)
        await s.flush()
        clerk_ids = [u.id for u in users]

    async with domain.unit(write=False) as uow:
        loaded_worker = await accounts.load_user(uow, worker_id)
        assert loaded_worker is not None and loaded_worker.extension_point_id is not None
        worker = accounts.actor_for(loaded_worker)
        actors = []
        for clerk_id in clerk_ids:
            loaded = await accounts.load_user(uow, clerk_id)
            assert loaded is not None
            actor = accounts.actor_for(loaded)
            (window_id,) = actor.window_ids
            actors.append((actor, window_id))
    return Fixture(item_id=item_id, worker=worker, clerks=actors)


async def take_phase(
    domain: Domain, fixture: Fixture, tickets: int, *, first: int = 1
) -> tuple[list[float], float]:
    """Take ``tickets`` tickets from TAKE_TASKS concurrent tasks; latencies and wall time.

    Residents are numbered from ``first``: names and id numbers never repeat in a run.
    """
    latencies: list[float] = []
    numbers: Iterator[int] = iter(range(first, first + tickets))

    async def taker() -> None:
        for n in numbers:
            resident = {"name": f"压测居民{n:05d}", "id_number": f"3302031980{n:08d}",
                        "phone": f"138{n:08d}"}
            started = time.perf_counter()
            async with domain.unit() as uow:
                await ticket_queue.take_ticket(uow, fixture.worker, item_id=fixture.item_id,
                                               resident=resident)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(taker() for _ in range(min(TAKE_TASKS, tickets))))
    return latencies, time.perf_counter() - started


async def waiting_count(domain: Domain) -> int:
    async with domain.unit(write=False) as uow:
        count = await uow.session.scalar(
            select(func.count(Ticket.id)).where(Ticket.status == TicketStatus.waiting)
        )
    return int(count or 0)


async def serve(domain: Domain, actor: Actor, ticket_id: int) -> None:
    """Start and complete a called ticket, so that its window may call again."""
    async with domain.unit() as uow:
        await ticket_queue.start_service(uow, actor, ticket_id)
        await ticket_queue.complete(uow, actor, ticket_id, result="consultation_only")


async def paced_phase(domain: Domain, fixture: Fixture, calls: int, stats: CallStats) -> list[float]:
    """The clerks call at a combined PACED_RATE per second until ``calls`` were made."""
    latencies: list[float] = []
    budget = [calls]
    rng = random.Random(7)

    async def clerk(actor: Actor, window_id: int) -> None:
        while True:
            await asyncio.sleep(rng.expovariate(PACED_RATE / len(fixture.clerks)))
            if budget[0] <= 0:
                return
            budget[0] -= 1
            started = time.perf_counter()
            async with domain.unit() as uow:
                ticket = await ticket_queue.call_next(uow, actor, window_id)
            latencies.append(time.perf_counter() - started)
            if ticket is None:
                raise RuntimeError("paced phase ran out of tickets: take more with --tickets")
            stats.called[ticket.id] += 1
            await serve(domain, actor, ticket.id)

    await asyncio.gather(*(clerk(actor, window_id) for actor, window_id in fixture.clerks))
    return latencies


async def call_phase(
    domain: Domain, fixture: Fixture, stats: CallStats | None = None
) -> tuple[CallStats, float, float]:
    """Every clerk calls, starts and completes tickets until nothing waits.

    Returns the stats, the wall time and the process CPU time of the phase.
    """
    stats = stats if stats is not None else CallStats()

    async def clerk(actor: Actor, window_id: int) -> None:
        errors = 0
        while True:
            started = time.perf_counter()
            try:
                async with domain.unit() as uow:
                    ticket = await ticket_queue.call_next(uow, actor, window_id)
                    ticket_id = ticket.id if ticket is not None else None
            except DomainError as exc:
                stats.errors[exc.code] += 1
                errors += 1
                if errors > MAX_ERRORS_PER_CLERK:
                    raise
                continue
            stats.latencies.append(time.perf_counter() - started)
            if ticket_id is None:
                if await waiting_count(domain) == 0:
                    return
                stats.false_empty += 1
                continue
            stats.called[ticket_id] += 1
            await serve(domain, actor, ticket_id)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(clerk(actor, window_id) for actor, window_id in fixture.clerks))
    return stats, time.perf_counter() - started, time.process_time() - cpu


async def solo_phase(domain: Domain, fixture: Fixture, calls: int, *, first: int) -> list[float]:
    """One clerk alone calls ``calls`` freshly taken tickets: call-next without contention."""
    await take_phase(domain, fixture, calls, first=first)
    actor, window_id = fixture.clerks[0]
    latencies = []
    for _ in range(calls):
        started = time.perf_counter()
        async with domain.unit() as uow:
            ticket = await ticket_queue.call_next(uow, actor, window_id)
        latencies.append(time.perf_counter() - started)
        if ticket is None:
            raise RuntimeError("call_next found nothing although tickets were just taken")
        await serve(domain, actor, ticket.id)
    return latencies


async def run_backend(backend: str, url: str, tickets: int, clerks: int, paced_calls: int) -> dict[str, Any]:
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    settings = Settings(database_url=url, queue=QueueRules(service_hours=ServiceHours.parse("always")))
    domain = Domain(db, SystemClock(), settings, MemorySink())
    try:
        fixture = await prepare(db, domain, clerks)
        take_latencies, take_wall = await take_phase(domain, fixture, tickets)
        stats = CallStats()
        paced = await paced_phase(domain, fixture, min(paced_calls, tickets // 2), stats)
        saturated_from = len(stats.latencies)
        stats, call_wall, call_cpu = await call_phase(domain, fixture, stats)
        async with domain.unit(write=False) as uow:
            rows = await uow.session.execute(
                select(Ticket.status, func.count(Ticket.id)).group_by(Ticket.status)
            )
            by_status = {status: count for status, count in rows.all()}
        solo = await solo_phase(domain, fixture, min(SOLO_CALLS, tickets), first=tickets + 1)
    finally:
        await db.dispose()
    saturated = stats.latencies[saturated_from:]
    calls = len(saturated)
    tenth = max(1, len(take_latencies) // 10)
    return {
        "tickets": tickets,
        "clerks": clerks,
        "call_next_p50_ms": percentile_ms(paced, 50),
        "call_next_p99_ms": percentile_ms(paced, 99),
        "call_next_max_ms": percentile_ms(paced, 100),
        "paced_rate_per_s": PACED_RATE,
        "paced_calls": len(paced),
        "ops_per_s": round(calls / call_wall, 1),
        "saturated_call_next_p50_ms": percentile_ms(saturated, 50),
        "saturated_call_next_p99_ms": percentile_ms(saturated, 99),
        "saturated_calls": calls,
        "cpu_ms_per_call": round(call_cpu / calls * 1000, 2),
        "call_next_solo_p50_ms": percentile_ms(solo, 50),
        "call_next_solo_p99_ms": percentile_ms(solo, 99),
        "take_ticket_p50_ms": percentile_ms(take_latencies, 50),
        "take_ticket_p99_ms": percentile_ms(take_latencies, 99),
        "take_ticket_first_tenth_p50_ms": percentile_ms(take_latencies[:tenth], 50),
        "take_ticket_last_tenth_p50_ms": percentile_ms(take_latencies[-tenth:], 50),
        "take_ticket_ops_per_s": round(len(take_latencies) / take_wall, 1),
        "called": len(stats.called),
        "double_assignments": sum(1 for seen in stats.called.values() if seen > 1),
        "completed": int(by_status.get(TicketStatus.completed, 0)),
        "false_empty": stats.false_empty,
        "errors": dict(stats.errors),
    }


def report(backend: str, r: dict[str, Any]) -> list[str]:
    take = (
        f"take_ticket  {r['tickets']} tickets, {TAKE_TASKS} tasks: p50 {r['take_ticket_p50_ms']} ms, "
        f"p99 {r['take_ticket_p99_ms']} ms, {r['take_ticket_ops_per_s']} ops/s "
        f"(p50 first tenth {r['take_ticket_first_tenth_p50_ms']} ms, "
        f"last tenth {r['take_ticket_last_tenth_p50_ms']} ms)"
    )
    call = (
        f"call_next    {r['clerks']} clerks at {r['paced_rate_per_s']:g}/s: p50 {r['call_next_p50_ms']} ms, "
        f"p99 {r['call_next_p99_ms']} ms, max {r['call_next_max_ms']} ms ({r['paced_calls']} calls)"
    )
    saturated = (
        f"call_next    {r['clerks']} clerks flat out: {r['ops_per_s']} ops/s, p50 "
        f"{r['saturated_call_next_p50_ms']} ms, p99 {r['saturated_call_next_p99_ms']} ms "
        f"({r['saturated_calls']} calls, {r['cpu_ms_per_call']} ms process CPU per call + serve)"
    )
    solo = (
        f"call_next    1 clerk alone: p50 {r['call_next_solo_p50_ms']} ms, "
        f"p99 {r['call_next_solo_p99_ms']} ms"
    )
    checks = (
        f"checks       called {r['called']}/{r['tickets']}, completed {r['completed']}, "
        f"double assignments {r['double_assignments']}, false empty {r['false_empty']}, "
        f"errors {r['errors'] or 'none'}"
    )
    lines = [take, call, saturated, solo, checks]
    if backend == "postgresql":
        met = "met" if r["call_next_p99_ms"] < TARGET_P99_MS else "NOT met"
        lines.append(f"target       call_next p99 < {TARGET_P99_MS:g} ms: {met}")
    return [f"{backend}: {line}" for line in lines]


def problems(r: dict[str, Any]) -> list[str]:
    found = []
    if r["double_assignments"]:
        found.append(f"{r['double_assignments']} tickets were called more than once")
    if r["called"] != r["tickets"]:
        found.append(f"{r['called']} of {r['tickets']} tickets were called")
    if r["completed"] != r["tickets"]:
        found.append(f"{r['completed']} of {r['tickets']} tickets were completed")
    return found


async def run(backends: list[str], tickets: int, clerks: int, pg_admin: str, quick: bool) -> int:
    paced_calls = QUICK_PACED_CALLS if quick else PACED_CALLS
    figures: dict[str, Any] = {}
    failed = False
    for backend in backends:
        started = time.perf_counter()
        database = sqlite_database() if backend == "sqlite" else postgresql_database(pg_admin)
        async with database as url:
            result = await run_backend(backend, url, tickets, clerks, paced_calls)
        figures[backend] = result
        for line in report(backend, result):
            print(line, flush=True)
        for problem in problems(result):
            failed = True
            print(f"{backend}: PROBLEM      {problem}", flush=True)
        print(f"{backend}: done in {time.perf_counter() - started:.1f} s (setup included)", flush=True)
    figures["quick"] = quick
    print(json.dumps(figures, ensure_ascii=False), flush=True)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_TICKETS} tickets unless --tickets is given; under a minute")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--tickets", type=int, default=None, help="waiting tickets (default 1000)")
    parser.add_argument("--clerks", type=int, default=50, help="concurrent clerks (default 50)")
    parser.add_argument("--pg-admin", default=PG_ADMIN,
                        help="PostgreSQL URL used to create and drop the benchmark database")
    args = parser.parse_args(argv)
    tickets = args.tickets if args.tickets is not None else (QUICK_TICKETS if args.quick else 1000)
    if tickets < 1 or args.clerks < 1:
        parser.error("--tickets and --clerks must be at least 1")
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    return asyncio.run(run(backends, tickets, args.clerks, args.pg_admin, args.quick))


if __name__ == "__main__":
    sys.exit(main())
