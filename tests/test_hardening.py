"""The server towards browsers, logs and the machine: security headers, the socket.io origin
rule, dev pages only when asked, an access log without secrets, garbage frames that cost one
line, private files, and an image that does not run as root (docs/security.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import aiohttp
import pytest
import socketio
from aiohttp.test_utils import TestServer
from engineio.packet import Packet

from server.app import create_app
from server.config import Settings, SettingsError
from server.domain.clock import ManualClock
from server.migrate import upgrade
from server.weblog import ClientGarbage, RedactingAccessLogger, redact_url
from tests.conftest import Api, Platform, Templates, cloned_database
from tests.helpers import district_item, take, until, window_of
from tests.media import phone_photo

ROOT = Path(__file__).resolve().parents[1]
SECRET = "SECRET-c0ffee"


@pytest.fixture
async def database_url(templates: Templates, tmp_path: Path) -> AsyncIterator[str]:
    """SQLite only: nothing here depends on the database engine."""
    async with cloned_database("sqlite", templates, tmp_path) as url:
        yield url


@asynccontextmanager
async def running(settings: Settings, clock: ManualClock, **server_options: object) -> AsyncIterator[str]:
    server = TestServer(create_app(settings, clock=clock, run_monitor=False))
    await server.start_server(**server_options)
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


# --- security headers -------------------------------------------------------------------------

BROWSER_HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Server": "yunbang",
}


def directives(csp: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in csp.split(";")) if d}


async def test_every_response_carries_the_security_headers_and_no_server_version(
        settings: Settings, clock: ManualClock, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text('<div id="app"></div>')
    async with running(settings.with_changes(web_dist=dist), clock) as base, aiohttp.ClientSession() as http:
        host = base.removeprefix("http://")
        for path, status in (("/api/health", 200), ("/app/", 200), ("/app/assets/gone.js", 404),
                             ("/no/such/page", 404), ("/api/no-such-route", 404),
                             ("/socket.io/?EIO=4&transport=polling", 200)):
            async with http.get(base + path) as resp:
                assert resp.status == status, path
                for name, value in BROWSER_HEADERS.items():
                    assert resp.headers.get(name) == value, (path, name)
                policy = directives(resp.headers["Content-Security-Policy"])
                assert policy["frame-ancestors"] == ["'none'"], path
                assert policy["script-src"] == ["'self'"], path
                assert policy["style-src"] == ["'self'", "'unsafe-inline'"], path
                assert policy["img-src"] == ["'self'", "blob:", "data:"], path
                assert policy["media-src"] == ["'self'", "blob:"], path
                assert policy["connect-src"] == ["'self'", f"ws://{host}"], path
                assert policy["object-src"] == ["'none'"], path
                permissions = resp.headers["Permissions-Policy"]
                for feature in ("camera", "microphone", "display-capture"):
                    assert f"{feature}=(self)" in permissions, path
                assert "Strict-Transport-Security" not in resp.headers, "plain HTTP gets no HSTS"


async def test_hsts_only_over_https_from_a_trusted_proxy_or_when_configured(
        settings: Settings, clock: ManualClock) -> None:
    https = {"X-Forwarded-Proto": "https"}
    async with aiohttp.ClientSession() as http:
        async with running(settings, clock) as base:
            async with http.get(base + "/api/health", headers=https) as resp:
                assert "Strict-Transport-Security" not in resp.headers, "an untrusted caller cannot claim https"
        async with running(settings.with_changes(trusted_proxies=("127.0.0.1",)), clock) as base:
            async with http.get(base + "/api/health", headers=https) as resp:
                assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"
                assert f"wss://{base.removeprefix('http://')}" in resp.headers["Content-Security-Policy"]
            async with http.get(base + "/api/health") as resp:
                assert "Strict-Transport-Security" not in resp.headers
        async with running(settings.with_changes(hsts="always"), clock) as base:
            async with http.get(base + "/api/health") as resp:
                assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"


async def test_documents_on_s3_may_be_shown_from_its_public_endpoint(
        settings: Settings, clock: ManualClock, moto_endpoint: str) -> None:
    on_s3 = settings.with_changes(s3_endpoint=moto_endpoint, s3_public_endpoint="https://files.example.gov.cn",
                                  s3_access_key="testing", s3_secret_key="testing", s3_bucket="hardening")
    async with running(on_s3, clock) as base, aiohttp.ClientSession() as http:
        async with http.get(base + "/api/health") as resp:
            policy = directives(resp.headers["Content-Security-Policy"])
    assert policy["img-src"] == ["'self'", "blob:", "data:", "https://files.example.gov.cn"]
    assert policy["connect-src"][0] == "'self'" and "files.example.gov.cn" not in " ".join(policy["connect-src"])


# --- socket.io origins --------------------------------------------------------------------------


async def socket_from(base: str, token: str, origin: str | None, transport: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    try:
        await client.connect(base, auth={"token": token}, headers={"Origin": origin} if origin else {},
                             transports=[transport], wait_timeout=5)
    except socketio.exceptions.ConnectionError:
        if client.eio.http is not None:
            await client.eio.http.close()
        raise
    return client


async def test_a_page_on_another_origin_cannot_open_a_socket(platform: Platform) -> None:
    worker = await platform.login("worker1")
    for transport in ("websocket", "polling"):
        for origin in ("https://evil.example", "null", platform.base.replace("http://", "https://")):
            with pytest.raises(socketio.exceptions.ConnectionError):
                await socket_from(platform.base, worker.token, origin, transport)
    for origin in (platform.base, None):  # the app's own pages, and clients that are no browser page
        client = await socket_from(platform.base, worker.token, origin, "websocket")
        assert client.connected, origin
        await client.disconnect()


@pytest.fixture
def other_origin_settings(settings: Settings) -> Settings:
    return settings.with_changes(allowed_origins=("https://yunbang.example.gov.cn",))


async def test_origins_listed_in_the_settings_may_open_a_socket(
        other_origin_settings: Settings, clock: ManualClock) -> None:
    async with running(other_origin_settings, clock) as base, aiohttp.ClientSession() as http:
        async with http.post(base + "/api/auth/login", json={"username": "clerk1", "password": "demo12345"}) as r:
            token = (await r.json())["token"]
        client = await socket_from(base, token, "https://yunbang.example.gov.cn", "websocket")
        assert client.connected
        await client.disconnect()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await socket_from(base, token, "https://yunbang.example.gov.cn.evil.example", "websocket")


def test_allowed_origins_are_read_as_origins() -> None:
    settings = Settings.from_env({"YUNBANG_ALLOWED_ORIGINS": "https://Yunbang.Example.gov.cn/, http://10.0.0.5:8080"})
    assert settings.allowed_origins == ("https://yunbang.example.gov.cn", "http://10.0.0.5:8080")
    for wrong in ("yunbang.example.gov.cn", "https://yunbang.example.gov.cn/app", "ftp://x"):
        with pytest.raises(SettingsError):
            Settings.from_env({"YUNBANG_ALLOWED_ORIGINS": wrong})
    with pytest.raises(SettingsError):
        Settings.from_env({"YUNBANG_HSTS": "sometimes"})


# --- dev pages ----------------------------------------------------------------------------------


async def test_the_dev_call_page_is_served_only_when_enabled(settings: Settings, clock: ManualClock) -> None:
    assert Settings.from_env({}).dev_pages is False and Settings.from_env({"YUNBANG_DEV_PAGES": "true"}).dev_pages
    async with aiohttp.ClientSession() as http:
        async with running(settings, clock) as base:
            for path in ("/dev/call", "/dev/call.js", "/dev/socket.io.min.js"):
                async with http.get(base + path) as resp:
                    assert resp.status == 404, path
        async with running(settings.with_changes(dev_pages=True), clock) as base:
            async with http.get(base + "/dev/call") as resp:
                assert resp.status == 200 and "通话测试页" in await resp.text()
            async with http.get(base + "/dev/call.js") as resp:
                assert resp.status == 200


# --- the access log -----------------------------------------------------------------------------


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        formatter = logging.Formatter("%(levelname)s %(name)s: %(message)s")
        return "\n".join(formatter.format(r) for r in self.records)


@contextmanager
def captured(logger: logging.Logger, level: int = logging.INFO) -> Iterator[Lines]:
    lines, before = Lines(), logger.level
    logger.addHandler(lines)
    logger.setLevel(level)
    try:
        yield lines
    finally:
        logger.removeHandler(lines)
        logger.setLevel(before)


@pytest.mark.parametrize("log_format", [RedactingAccessLogger.LOG_FORMAT, '%a "%r" %s "%{Referer}i" %{Authorization}i'])
async def test_the_access_log_never_shows_tokens_signatures_or_credentials(
        settings: Settings, clock: ManualClock, log_format: str) -> None:
    access = logging.getLogger("test.access")
    with captured(access) as lines:
        async with running(settings, clock, access_log_class=RedactingAccessLogger, access_log=access,
                           access_log_format=log_format) as base, aiohttp.ClientSession() as http:
            for path in (f"/socket.io/?EIO=4&transport=polling&token={SECRET}",
                         f"/api/objects/case/1/original.jpg?expires=99&sig={SECRET}",
                         f"/api/health?access_token={SECRET}&X-Amz-Signature={SECRET}&X-Amz-Credential={SECRET}"):
                headers = {"Authorization": f"Bearer {SECRET}", "Referer": f"https://x.example/?token={SECRET}"}
                async with http.get(base + path, headers=headers) as resp:
                    await resp.read()
    logged = lines.text()
    assert len(lines.records) == 3
    assert SECRET not in logged, logged
    assert "GET /socket.io/?EIO=4&transport=polling&token=[redacted]" in logged
    assert "expires=99&sig=[redacted]" in logged


def test_redaction_keeps_everything_but_the_secret_values() -> None:
    assert redact_url("/api/items?q=gljt&department_id=3") == "/api/items?q=gljt&department_id=3"
    assert redact_url("/x?Token=1&q=2&password=3&flag") == "/x?Token=[redacted]&q=2&password=[redacted]&flag"
    assert redact_url("/x?X-Amz-Security-Token=a&refresh_token=b") == \
        "/x?X-Amz-Security-Token=[redacted]&refresh_token=[redacted]"
    assert redact_url("/no/query") == "/no/query"


# --- garbage on the socket --------------------------------------------------------------------


async def send_malformed_frames(base: str) -> None:
    """Four frames no engine.io client sends: a packet with no type, a socket.io event that is
    not JSON, a binary frame of noise (all on WebSockets), and a polling POST of empty packets."""
    async with aiohttp.ClientSession() as http:
        for frame in ("zzz not a packet", '42["join", {bad json', b"\xff\xfe\x00noise"):
            async with http.ws_connect(base + "/socket.io/?EIO=4&transport=websocket") as ws:
                assert (await ws.receive(timeout=5)).data.startswith("0{")
                await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
                try:
                    await ws.receive(timeout=1)
                except TimeoutError:
                    pass
        async with http.get(base + "/socket.io/?EIO=4&transport=polling") as r:
            sid = json.loads((await r.text())[1:])["sid"]
        async with http.post(base + f"/socket.io/?EIO=4&transport=polling&sid={sid}", data=b"\x1e\x1e9zz\x1e42[") as r:
            assert r.status in (200, 400)


async def test_four_malformed_frames_cost_at_most_four_lines_without_tracebacks(
        platform: Platform, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    await send_malformed_frames(platform.base)
    await asyncio.sleep(0.2)
    written = [r for r in caplog.records if r.name != "aiohttp.access"]
    lines = [line for r in written for line in caplog.handler.format(r).splitlines()]
    assert len(lines) <= 4, caplog.text
    assert all(r.exc_info is None and r.levelno <= logging.WARNING for r in written), caplog.text
    assert "Traceback" not in caplog.text
    worker = await platform.login("worker1")
    client = await socket_from(platform.base, worker.token, None, "websocket")
    assert client.connected, "the server still takes honest clients"
    await client.disconnect()


def garbage_record(logger: str = "engineio.server") -> logging.LogRecord:
    try:
        Packet(encoded_packet="zzz")
    except ValueError:
        return logging.getLogger(logger).makeRecord(logger, logging.ERROR, __file__, 1, "handler error", (),
                                                    sys.exc_info())
    raise AssertionError("engine.io decoded garbage")


def test_real_server_errors_keep_their_traceback_and_garbage_lines_are_bounded() -> None:
    noise = ClientGarbage(burst=3, period=60)
    try:
        int("our own bug")
    except ValueError:
        ours = logging.getLogger("engineio.server").makeRecord("engineio.server", logging.ERROR, __file__, 1,
                                                               "handler error", (), sys.exc_info())
    assert noise.filter(ours) and ours.exc_info is not None and ours.levelno == logging.ERROR
    kept = [r for r in (garbage_record() for _ in range(10)) if noise.filter(r)]
    assert len(kept) == 3 and all(r.exc_info is None and r.levelno == logging.WARNING for r in kept)
    noise._window_start -= 61  # the next minute
    later = garbage_record()
    assert noise.filter(later) and "7 more left out" in later.getMessage()


# --- files on disk -------------------------------------------------------------------------------


def open_to_others(root: Path) -> list[str]:
    found = [root, *root.rglob("*")]
    return [f"{p} {stat.filemode(p.stat().st_mode)}" for p in found if p.stat().st_mode & 0o077]


async def test_the_data_dir_and_database_are_private_whatever_the_umask(tmp_path: Path, clock: ManualClock) -> None:
    data = tmp_path / "data"
    old = os.umask(0o022)
    try:
        settings = Settings(data_dir=data, monitor_interval_seconds=3600)
        await asyncio.to_thread(upgrade, settings.effective_database_url)
        async with running(settings, clock):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("yunbang.db", "secret_key"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name


async def log_in(http: aiohttp.ClientSession, base: str, username: str) -> Api:
    reply = await Api(http, base).post("/api/auth/login", {"username": username, "password": "demo12345"})
    assert reply.status == 200, reply
    return Api(http, base, reply.body["token"], reply.body["user"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_yunbang_serve_keeps_files_private_logs_no_secrets_and_shrugs_off_garbage(
        templates: Templates, tmp_path: Path) -> None:
    """The real command, started with a permissive umask on an install whose files were left
    world-readable: after a document is stored nothing under the data dir is open to others,
    the access log shows no secret, and malformed frames cost one line each."""
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    shutil.copy(templates["sqlite"], data / "yunbang.db")
    os.chmod(data, 0o755)
    os.chmod(data / "yunbang.db", 0o644)
    port, log = free_port(), tmp_path / "serve.log"
    env = {**os.environ, "YUNBANG_DATA_DIR": str(data), "YUNBANG_SERVICE_HOURS": "always",
           "YUNBANG_SECRET_KEY": "", "YUNBANG_DATABASE_URL": ""}
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port", str(port)], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT, umask=0o022)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(base + "/api/health") as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                assert proc.poll() is None, log.read_text()
                await asyncio.sleep(0.1)
            worker, clerk = await log_in(http, base, "worker1"), await log_in(http, base, "clerk1")
            item = await district_item(worker, "MZ")
            ticket = await take(worker, item["id"], "文件群众")
            assert (await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")).status == 200
            form = aiohttp.FormData()
            form.add_field("material", str(item["materials"][0]["id"]))
            form.add_field("file", phone_photo(), filename="photo.jpg", content_type="image/jpeg")
            stored = await worker.call("POST", f"/api/tickets/{ticket['id']}/documents", data=form)
            assert stored.status == 201, stored
            shown = (await clerk.get(f"/api/documents/{stored.body['id']}")).body
            async with http.get(base + shown["urls"]["viewing"]) as r:
                assert r.status == 200
            async with http.get(base + f"/socket.io/?EIO=4&transport=polling&token={SECRET}") as r:
                assert r.status == 200
            before = len(log.read_text().splitlines())
            await send_malformed_frames(base)
            reply = await asyncio.to_thread(raw_request, port, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n")
            assert reply.startswith("HTTP/1.0 400") and "\r\nServer: yunbang\r\n" in reply, reply
            await asyncio.sleep(0.5)
            client = socketio.AsyncClient(reconnection=False)
            await client.connect(base, auth={"token": clerk.token}, transports=["websocket"], wait_timeout=5)
            proc.terminate()  # a stop with a client connected: it is told, and the server does not wait on it
            await until(lambda: not client.connected, 10, "the connected client told of the stop")
            stopped = await asyncio.to_thread(proc.wait, 15)
            assert stopped == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=20)
    assert open_to_others(data) == []
    assert any(p.is_file() for p in (data / "objects").rglob("*")), "the document is in the local store"
    text = log.read_text()
    assert SECRET not in text and re.search(r"sig=\[redacted\]", text), text
    assert "Traceback" not in text, text
    garbage = [line for line in text.splitlines()[before:] if "aiohttp.access" not in line]
    assert len(garbage) <= 5, "\n".join(garbage)  # four frames and one request that is not HTTP


def raw_request(port: int, data: bytes) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(data)
        return conn.recv(4096).decode(errors="replace")


# --- the image ----------------------------------------------------------------------------------


def test_the_docker_image_runs_as_an_unprivileged_user() -> None:
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())  # continuation lines joined
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    final_stage = lines[max(i for i, line in enumerate(lines) if line.upper().startswith("FROM ")):]
    users = [line.split(None, 1)[1] for line in final_stage if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    assert any("10001" in line and users[-1].split(":")[0] in line for line in final_stage if "useradd" in line)
    cmd = next(i for i, line in enumerate(final_stage) if line.upper().startswith("CMD"))
    assert final_stage.index(f"USER {users[-1]}") < cmd, "the server starts as that user"
