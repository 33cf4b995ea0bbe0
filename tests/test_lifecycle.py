"""The app leaves nothing behind: what it starts (tasks, threads, worker processes, sockets)
ends when it stops, however often it is started and stopped in one process."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.config import Settings
from server.domain.clock import ManualClock
from signaling.tasks import Tasks
from tests.conftest import Api, Platform
from tests.helpers import Listener, district_item, take, window_of
from tests.media import phone_photo

CYCLES = 20


@dataclass(frozen=True)
class Resources:
    """What this process holds that an app could leave behind."""

    tasks: frozenset[asyncio.Task[Any]]
    threads: frozenset[threading.Thread]
    children: frozenset[int]
    sockets: frozenset[str]

    @classmethod
    def now(cls) -> Resources:
        current = asyncio.current_task()
        return cls(
            tasks=frozenset(t for t in asyncio.all_tasks() if t is not current),
            # the loop's default executor (asyncio.to_thread) belongs to the loop, not to the app:
            # its idle threads are reused and end when the loop closes
            threads=frozenset(t for t in threading.enumerate() if not t.name.startswith("asyncio_")),
            children=frozenset(_child_pids()),
            sockets=frozenset(_socket_fds()),
        )

    def left_over(self, before: Resources) -> dict[str, list[str]]:
        left = {
            "tasks": sorted(f"{t.get_name()}: {t.get_coro()!r}" for t in self.tasks - before.tasks),
            "threads": sorted(t.name for t in self.threads - before.threads),
            "child processes": sorted(str(p) for p in self.children - before.children),
            "sockets": sorted(self.sockets - before.sockets),
        }
        return {kind: names for kind, names in left.items() if names}


def _child_pids() -> set[int]:
    pids = {p.pid for p in multiprocessing.active_children() if p.pid is not None}
    for task in Path("/proc/self/task").iterdir():  # children started otherwise (the kernel's list)
        try:
            pids.update(int(pid) for pid in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return pids


def _socket_fds() -> set[str]:
    sockets = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:
            continue
        if target.startswith("socket:"):
            sockets.add(target)
    return sockets


async def left_over(before: Resources, within: float = 5.0) -> dict[str, list[str]]:
    """What is still there that was not before, once threads and processes have had a moment to
    exit (a thread or a process ends a little after it is told to)."""
    deadline = time.monotonic() + within
    while (left := Resources.now().left_over(before)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return left


class Staff:
    """Who logs in, once: their tokens hold across the restarts (the sessions are in the database)."""

    def __init__(self) -> None:
        self.logged_in: dict[str, Api] = {}

    async def api(self, platform: Platform, username: str) -> Api:
        if username not in self.logged_in:
            self.logged_in[username] = await platform.login(username)
        known = self.logged_in[username]
        return Api(platform.http, platform.base, known.token, known.user)


async def one_day(settings: Settings, clock: ManualClock, staff: Staff, day: int, *, upload: bool,
                  leave_socket_open: bool) -> None:
    """Start the app, use what starts things (a socket; the queue's pushes, one still pending at
    the stop; with ``upload``, the image workers), and stop it."""
    server = TestServer(create_app(settings, clock=clock, run_monitor=True))
    await server.start_server()
    try:
        async with ClientSession() as http:
            platform = Platform(server, http, clock, server.app)
            worker = await staff.api(platform, "worker1")
            listener = await Listener().connect(platform, worker)
            item = await district_item(worker, "MZ")
            ticket = await take(worker, item["id"], f"第{day}天的群众")
            if upload:
                clerk = await staff.api(platform, "clerk1")
                assert (await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")).status == 200
                form = aiohttp.FormData()
                form.add_field("material", str(item["materials"][0]["id"]))
                form.add_field("file", phone_photo(), filename="photo.jpg", content_type="image/jpeg")
                uploaded = await worker.call("POST", f"/api/tickets/{ticket['id']}/documents", data=form)
                assert uploaded.status == 201, uploaded
                assert (await clerk.post(f"/api/tickets/{ticket['id']}/start")).status == 200
                done = await clerk.post(f"/api/tickets/{ticket['id']}/complete", {"result": "materials_incomplete"})
            else:
                done = await worker.post(f"/api/tickets/{ticket['id']}/cancel")
            assert done.status == 200, done
            if not leave_socket_open:
                await listener.client.disconnect()
    finally:
        await server.close()
    await listener.client.disconnect()  # (told by the stopping server already: its tasks end)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_twenty_starts_and_stops_leave_no_task_thread_process_or_socket(settings: Settings,
                                                                            clock: ManualClock) -> None:
    """Each start and stop serves a socket and takes and ends a ticket; every fifth processes an
    upload in the image workers, and the last stops with its socket still open."""
    # once first: what lives as long as the process (the forkserver the image workers come
    # from, the loop's executor threads) is there before counting
    staff = Staff()
    await one_day(settings, clock, staff, 0, upload=True, leave_socket_open=False)
    before = Resources.now()
    for day in range(1, CYCLES + 1):
        await one_day(settings, clock, staff, day, upload=day % 5 == 0, leave_socket_open=day == CYCLES)
        assert await left_over(before) == {}, f"after start and stop {day}"


async def test_an_owner_ends_its_tasks_logs_their_failures_and_starts_none_once_closed(
        caplog: pytest.LogCaptureFixture) -> None:
    tasks = Tasks("test")
    ran: list[str] = []

    async def fails() -> None:
        raise RuntimeError("a keyframe request that failed")

    async def cleans_up() -> None:
        try:
            await asyncio.sleep(3600)
        finally:  # a task's own cleanup may start another: it is ended too
            tasks.spawn(asyncio.sleep(3600), name="late")
            ran.append("cleanup")

    failing = tasks.spawn(fails(), name="fails")
    sleeping = tasks.spawn(cleans_up(), name="sleeps")
    await asyncio.wait([failing])
    assert "test: fails" in caplog.text and "a keyframe request that failed" in caplog.text
    assert len(tasks) == 1, "a finished task is let go"
    await tasks.close()
    assert sleeping.cancelled() and ran == ["cleanup"] and len(tasks) == 0
    after = tasks.spawn(asyncio.sleep(0, "too late"), name="after")
    await asyncio.wait([after])
    assert after.cancelled(), "nothing runs once its owner has closed"
