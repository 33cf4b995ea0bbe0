"""The server's log: one JSON object per line for collectors (text on a terminal), each line
naming its request, user, ticket and call room where they apply, and nothing that identifies a
resident or opens an account — tokens, passwords, ID and phone numbers, names, file names."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp.test_utils import TestServer

from server import logs
from server.app import create_app
from server.config import Settings, SettingsError
from server.domain.clock import ManualClock
from server.weblog import JSON_ACCESS_FORMAT, RedactingAccessLogger, request_id_of
from signaling.ids import room_id
from tests.conftest import Api, Templates, cloned_database
from tests.helpers import district_item, take, window_of
from tests.media import phone_photo
from tests.services import _free_port

ROOT = Path(__file__).resolve().parents[1]
RESIDENT = "欧阳翠花"
ID_NUMBER = "33020319800101002X"
PHONE = "13900001111"
PASSWORD = "demo12345"
FILE_NAME = f"{RESIDENT}身份证.jpg"


@pytest.fixture
async def database_url(templates: Templates, tmp_path: Path) -> AsyncIterator[str]:
    """PostgreSQL, as in production: what is logged does not depend on the engine."""
    async with cloned_database("postgresql", templates, tmp_path) as url:
        yield url


@contextmanager
def json_log() -> Iterator[io.StringIO]:
    """Everything logged at INFO and above (the server's level), through the real JSON handler."""
    out = io.StringIO()
    handler = logs.handler("json", out)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def parsed(text: str) -> list[dict[str, Any]]:
    lines = text.splitlines()
    assert lines, "something was logged"
    records = []
    for line in lines:
        record = json.loads(line)  # every line, or this fails naming it
        assert isinstance(record, dict) and {"time", "level", "logger", "message"} <= set(record), line
        assert record["time"].endswith("Z"), line
        records.append(record)
    return records


async def login(http: aiohttp.ClientSession, base: str, username: str) -> Api:
    async with http.post(base + "/api/auth/login", json={"username": username, "password": PASSWORD}) as r:
        assert r.status == 200
        body = await r.json()
    return Api(http, base, body["token"], body["user"])


async def socket(base: str, api: Api) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(base, auth={"token": api.token}, socketio_path="socket.io", transports=["websocket"],
                         wait_timeout=5)
    return client


async def test_a_case_from_ticket_to_call_logs_json_lines_with_its_ids_and_nothing_personal(
        settings: Settings, clock: ManualClock) -> None:
    server = TestServer(create_app(settings, clock=clock, run_monitor=False))
    with json_log() as out:
        await server.start_server(access_log_class=RedactingAccessLogger, access_log_format=JSON_ACCESS_FORMAT)
        base = str(server.make_url("")).rstrip("/")
        try:
            async with aiohttp.ClientSession() as http:
                worker = await login(http, base, "worker1")
                item = await district_item(worker, "MZ")
                ticket = await take(worker, item["id"], RESIDENT, resident_extra={"id_number": ID_NUMBER,
                                                                                  "phone": PHONE})
                again = await worker.post("/api/tickets", {"item_id": item["id"], "resident": {
                    "name": RESIDENT, "id_number": ID_NUMBER}})
                assert again.code == "duplicate_ticket"
                wrong = await worker.post("/api/tickets", {"item_id": "x", "resident": {
                    "name": RESIDENT, "id_number": ID_NUMBER, "phone": PHONE}})
                assert wrong.status == 422
                clerk = await login(http, base, "clerk1")
                called = await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
                assert called.body["id"] == ticket["id"]
                assert (await clerk.get(f"/api/tickets/{ticket['id']}/resident")).body["id_number"] == ID_NUMBER
                form = aiohttp.FormData()
                form.add_field("material", str(item["materials"][0]["id"]))
                form.add_field("file", phone_photo(), filename=FILE_NAME, content_type="image/jpeg")
                document = await worker.call("POST", f"/api/tickets/{ticket['id']}/documents", data=form)
                assert document.status == 201, document
                links = (await clerk.get(f"/api/documents/{document.body['id']}")).body["urls"]
                async with http.get(base + links["original"]) as r:
                    assert r.status == 200
                async with http.get(base + "/api/health", headers={"X-Request-Id": "nginx-7f3a9c"}) as r:
                    assert r.headers["X-Request-Id"] == "nginx-7f3a9c"
                async with http.get(base + "/api/health", headers={"X-Request-Id": f"{RESIDENT} <script>"}) as r:
                    replaced = r.headers["X-Request-Id"]
                    assert replaced != f"{RESIDENT} <script>" and len(replaced) == 32
                worker_socket, clerk_socket = await socket(base, worker), await socket(base, clerk)
                try:
                    for client in (worker_socket, clerk_socket):
                        joined = await client.call("join", {"ticket_id": ticket["id"]}, timeout=10)
                        assert "error" not in joined, joined
                    said = await clerk_socket.call("chat", {"ticket_id": ticket["id"],
                                                            "text": f"{RESIDENT}，请确认手机 {PHONE}"}, timeout=5)
                    assert "error" not in said, said
                    for client in (worker_socket, clerk_socket):
                        await client.call("leave", {"ticket_id": ticket["id"]}, timeout=10)
                finally:
                    await worker_socket.disconnect()
                    await clerk_socket.disconnect()
                assert (await worker.post("/api/auth/logout")).status in (200, 204)
        finally:
            await server.close()
    text = out.getvalue()
    records = parsed(text)

    for secret in (worker.token, clerk.token, PASSWORD, ID_NUMBER, ID_NUMBER.lower(), "0101002X", PHONE,
                   "00001111", RESIDENT, FILE_NAME, links["original"].split("sig=")[-1]):
        assert secret not in text, f"{secret!r} is in the log"

    access = [r for r in records if r["logger"] == "aiohttp.access"]
    assert access and all({"request_id", "method", "path", "status", "duration_ms"} <= set(r) for r in access)
    assert len({r["request_id"] for r in access}) == len(access), "one id per request"

    def line(method: str, route: str) -> dict[str, Any]:
        found = [r for r in access if r["method"] == method and r.get("route") == route]
        assert found, f"no access line for {method} {route}"
        return found[0]

    taken = line("POST", "/api/tickets")
    assert (taken["user_id"], taken["ticket_id"], taken["status"]) == (worker.user["id"], ticket["id"], 201)
    call_next = line("POST", "/api/windows/{window_id}/call-next")
    assert (call_next["user_id"], call_next["ticket_id"]) == (clerk.user["id"], ticket["id"])
    read = line("GET", "/api/tickets/{ticket_id}/resident")
    assert (read["user_id"], read["ticket_id"]) == (clerk.user["id"], ticket["id"])
    assert read["path"] == f"/api/tickets/{ticket['id']}/resident"
    assert "user_id" not in line("POST", "/api/auth/login"), "nobody is logged in yet"
    assert "sig=[redacted]" in line("GET", "/api/objects/{key}")["path"]
    assert {r["request_id"] for r in access if r.get("route") == "/api/health"} >= {"nginx-7f3a9c", replaced}

    calls = [r for r in records if r["logger"] == "yunbang.calls"]
    for user in (worker.user, clerk.user):
        for verb in ("joined", "left"):
            mine = [r for r in calls if verb in r["message"] and r.get("user_id") == user["id"]]
            assert mine, f"no '{verb}' line for user {user['id']}:\n{text}"
            assert (mine[0]["ticket_id"], mine[0]["room_id"]) == (ticket["id"], room_id(ticket['id']))
    joined = [r for r in calls if "joined" in r["message"]]
    assert all("request_id" in r for r in joined), "the socket's own request names its events' lines"


def test_auto_is_text_on_a_terminal_and_json_elsewhere() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert logs.chosen("auto", Terminal()) == "text" and logs.chosen("auto", io.StringIO()) == "json"
    assert logs.chosen("json", Terminal()) == "json" and logs.chosen("text", io.StringIO()) == "text"
    assert Settings.from_env({}).log_format == "auto"
    assert Settings.from_env({"YUNBANG_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(SettingsError, match="YUNBANG_LOG_FORMAT"):
        Settings.from_env({"YUNBANG_LOG_FORMAT": "xml"})


def test_a_line_names_its_context_and_an_exception_stays_on_it() -> None:
    out, plain = io.StringIO(), io.StringIO()
    logger = logging.getLogger("test.logs.context")
    logger.addHandler(logs.handler("json", out))
    logger.addHandler(logs.handler("text", plain))
    logger.propagate, logger.level = False, logging.INFO
    with logs.scope(request_id="r1", user_id=3):
        with logs.scope(ticket_id=7, room_id="t7"):
            try:
                raise ZeroDivisionError("division by zero")
            except ZeroDivisionError:
                logger.exception("dividing went wrong")
        logger.info("after the call", extra={"room_id": "t9"})
    logger.info("outside")
    first, second, third = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["message"] == "dividing went wrong" and first["level"] == "ERROR"
    assert (first["request_id"], first["user_id"], first["ticket_id"], first["room_id"]) == ("r1", 3, 7, "t7")
    assert first["exception"].startswith("Traceback") and "ZeroDivisionError" in first["exception"]
    assert (second["user_id"], second["room_id"]) == (3, "t9") and "ticket_id" not in second
    assert not set(logs.CONTEXT_FIELDS) & set(third)
    assert "dividing went wrong [request_id=r1 user_id=3 ticket_id=7 room_id=t7]" in plain.getvalue()
    assert plain.getvalue().splitlines()[-1].endswith("outside")
    with pytest.raises(ValueError):
        logs.bind(token="x")


def test_an_incoming_request_id_is_kept_only_when_short_and_plain() -> None:
    assert request_id_of("0af7651916cd43dd8448eb211c80319c") == "0af7651916cd43dd8448eb211c80319c"
    assert request_id_of("req-1.2:3_4") == "req-1.2:3_4"
    for bad in (None, "", "a" * 65, "有中文", "a b", "x\r\nSet-Cookie: y", "-starts-with-dash"):
        made = request_id_of(bad)
        assert made != bad and len(made) == 32 and made.isalnum()


def test_yunbang_serve_writes_json_lines_when_its_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "YUNBANG_DATA_DIR": str(tmp_path / "data"), "YUNBANG_DATABASE_URL": "",
           "YUNBANG_REDIS_URL": "", "YUNBANG_S3_ENDPOINT": "", "YUNBANG_LOG_FORMAT": "",
           "YUNBANG_SECRET_KEY": "log-test-secret-key-that-is-long-enough-0123"}
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/api/health",
                                                 headers={"X-Request-Id": "probe-42"})
                with urllib.request.urlopen(request, timeout=2) as reply:
                    assert reply.headers["X-Request-Id"] == "probe-42"
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server did not answer within 60 s"
                time.sleep(0.2)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert out == "", "stdout and stderr are one stream in compose: nothing but JSON on either"
    records = parsed(err)
    assert any("运行于" in r["message"] for r in records), "the banner is a line of the log"
    health = [r for r in records if r["logger"] == "aiohttp.access" and r.get("request_id") == "probe-42"]
    assert health and health[0]["status"] == 200 and health[0]["route"] == "/api/health", err
    assert health[0]["message"].startswith("GET /api/health"), "no client address or user agent in the message"


async def test_the_socket_loop_started_by_one_call_does_not_carry_its_ids(settings: Settings,
                                                                          clock: ManualClock) -> None:
    """A loop shared by every call (link sampling) is started by whichever call came first; its
    lines must not name that call."""
    from server.keys import CALLS

    server = TestServer(create_app(settings, clock=clock, run_monitor=False))
    await server.start_server()
    try:
        calls = server.app[CALLS]
        seen: list[dict[str, Any]] = []

        async def sample(seconds: float) -> None:
            seen.append(logs.current())
            calls.present.clear()

        calls.sample_links = sample  # type: ignore[method-assign]
        calls.link_sample_s = 0.01
        calls.present[(1, 1)] = object()  # type: ignore[assignment]
        with logs.scope(request_id="call-1", user_id=1, ticket_id=1, room_id="t1"):
            calls._start_link_sampling()
        await asyncio.wait_for(calls._links, 5)  # type: ignore[arg-type]
        assert seen == [{}]
    finally:
        await server.close()
