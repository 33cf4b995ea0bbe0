"""Call-next is atomic across processes: two server nodes on one PostgreSQL database, many
clerks calling at once, and every ticket is called exactly once."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import ClientSession
from sqlalchemy import func, select

from server.config import QueueRules, ServiceHours, Settings
from server.db import Database
from server.domain import accounts, queue
from server.domain.clock import SystemClock
from server.events import MemorySink
from server.models import (
    AuditEntry,
    Centre,
    CentreLevel,
    CloudWindow,
    Department,
    ServiceItem,
    Ticket,
    TicketStatus,
    User,
)
from server.runtime import Domain

CLERKS = 30
TICKETS = 150
PASSWORD = "concurrency-pass"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def prepare(url: str) -> tuple[list[str], int, int]:
    """Thirty clerks, each at a 民政 window of their own; one worker's 150 waiting tickets."""
    db = Database(url)
    try:
        password_hash = await accounts.hash_password(PASSWORD)
        async with db.write() as s:
            district = await s.scalar(select(Centre).where(Centre.level == CentreLevel.district))
            mz = await s.scalar(select(Department).where(Department.code == "MZ"))
            names = []
            for i in range(CLERKS):
                window = CloudWindow(name=f"并发窗口{i}", centre_id=district.id, active=True, tidal=False, departments=[mz])
                s.add(User(username=f"load{i}", display_name=f"并发{i}", password_hash=password_hash, role="clerk",
                           active=True, specialties=[], created_at=datetime.now(UTC), windows=[window],
                           departments=[]))
                names.append(f"load{i}")
            item_id = await s.scalar(
                select(ServiceItem.id).where(ServiceItem.department_id == mz.id, ServiceItem.level == CentreLevel.district)
            )
            worker_id = await s.scalar(select(User.id).where(User.username == "worker1"))
        rules = QueueRules(service_hours=ServiceHours.parse("always"))
        domain = Domain(db, SystemClock(), Settings(queue=rules, secret_key="x" * 40), MemorySink())
        worker = await domain.actor(worker_id)
        for n in range(TICKETS):
            async with domain.unit() as uow:
                await queue.take_ticket(uow, worker, item_id=item_id, resident={"name": f"群众{n}"})
        return names, item_id, worker_id
    finally:
        await db.dispose()


async def start_node(url: str, port: int, data_dir: str) -> subprocess.Popen:
    env = {**os.environ, "YUNBANG_DATABASE_URL": url, "YUNBANG_SECRET_KEY": "k" * 48,
           "YUNBANG_SERVICE_HOURS": "always", "YUNBANG_DATA_DIR": data_dir}
    # the log to a file: a pipe nobody reads fills (64 KB of access lines) and stops the node
    log = Path(f"{data_dir}.log")
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--no-migrate", "--port", str(port)],
                                env=env, stdout=subprocess.DEVNULL, stderr=err)
    async with ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(f"http://127.0.0.1:{port}/api/health") as r:
                    if r.status == 200:
                        return proc
            except OSError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(log.read_text(errors="replace"))
            await asyncio.sleep(0.1)
    raise RuntimeError("node did not start")


async def clerk_loop(http: ClientSession, base: str, username: str) -> list[int]:
    async with http.post(f"{base}/api/auth/login", json={"username": username, "password": PASSWORD}) as r:
        login = await r.json()
    headers = {"Authorization": f"Bearer {login['token']}"}
    window = login["user"]["windows"][0]["id"]
    called: list[int] = []
    while True:
        async with http.post(f"{base}/api/windows/{window}/call-next", headers=headers) as r:
            if r.status == 204:
                return called
            assert r.status == 200, await r.text()
            ticket = (await r.json())["id"]
        called.append(ticket)
        for action, body in (("start", {}), ("complete", {"result": "consultation_only"})):
            async with http.post(f"{base}/api/tickets/{ticket}/{action}", headers=headers, json=body) as r:
                assert r.status == 200, await r.text()


async def test_many_clerks_on_two_nodes_never_get_the_same_ticket(postgresql_url: str, tmp_path) -> None:
    clerks, _, _ = await prepare(postgresql_url)
    ports = [free_port(), free_port()]
    nodes = [await start_node(postgresql_url, p, str(tmp_path / f"node{p}")) for p in ports]
    try:
        async with ClientSession() as http:
            results = await asyncio.gather(*(
                clerk_loop(http, f"http://127.0.0.1:{ports[i % 2]}", name) for i, name in enumerate(clerks)
            ))
    finally:
        for node in nodes:
            node.terminate()
            node.wait(timeout=10)
    counts = Counter(t for called in results for t in called)
    assert len(counts) == TICKETS and max(counts.values()) == 1
    assert sum(1 for called in results if called) > CLERKS // 2, "the calls were really spread over clerks"
    db = Database(postgresql_url)
    try:
        async with db.read() as s:
            statuses = dict((await s.execute(select(Ticket.status, func.count()).group_by(Ticket.status))).all())
            calls = (await s.execute(
                select(AuditEntry.target_id, func.count()).where(AuditEntry.action == "ticket.call")
                .group_by(AuditEntry.target_id)
            )).all()
        assert statuses == {TicketStatus.completed: TICKETS}
        assert len(calls) == TICKETS and {n for _, n in calls} == {1}
    finally:
        await db.dispose()
