"""Clear failures: `yunbang serve` with a dependency that does not answer stops with one line in
Chinese and English naming what failed and the setting to check (no trace, no "running" banner,
no password), and `/api/health` reports each dependency, answering 503 while one is down."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from server.app import create_app
from tests.conftest import REDIS_URL, Platform
from tests.services import _free_port

ROOT = Path(__file__).resolve().parents[1]


def serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    full = {**os.environ, "YUNBANG_DATA_DIR": str(data), "YUNBANG_DATABASE_URL": "", "YUNBANG_REDIS_URL": "",
            "YUNBANG_S3_ENDPOINT": "", **env}
    return subprocess.run([sys.executable, "-m", "server.cli", "serve", "--port", str(_free_port())], cwd=ROOT,
                          env=full, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("dependency", ["database", "redis", "storage"])
def test_a_dependency_that_does_not_answer_stops_the_start_with_one_plain_line(tmp_path: Path, dependency: str) -> None:
    closed = _free_port()
    env, setting, name = {
        "database": ({"YUNBANG_DATABASE_URL": f"postgresql+asyncpg://yb:s3cretpw@127.0.0.1:{closed}/yunbang"},
                     "YUNBANG_DATABASE_URL", "无法连接数据库"),
        "redis": ({"YUNBANG_REDIS_URL": f"redis://:s3cretpw@127.0.0.1:{closed}/0"}, "YUNBANG_REDIS_URL", "无法连接Redis"),
        "storage": ({"YUNBANG_S3_ENDPOINT": f"127.0.0.1:{closed}", "YUNBANG_S3_ACCESS_KEY": "yb",
                     "YUNBANG_S3_SECRET_KEY": "s3cretpw"}, "YUNBANG_S3_ENDPOINT", "无法连接对象存储"),
    }[dependency]
    done = serve(tmp_path, **env)
    assert done.returncode == 3, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    failure = [line for line in lines if "cannot reach" in line]
    assert len(failure) == 1 and name in failure[0] and setting in failure[0], done.stderr
    assert f"127.0.0.1:{closed}" in failure[0], "it names where it looked"
    assert "Traceback" not in done.stderr and "s3cretpw" not in done.stderr + done.stdout
    assert "运行于" not in done.stdout, "no banner for a server that is not running"
    assert len(lines) <= 3, done.stderr  # the line, and at most a log line or two of the libraries


async def test_health_names_each_dependency_and_is_503_while_one_is_down(settings, clock) -> None:
    closed = _free_port()
    for redis_url, expected in ((REDIS_URL, 200), (f"redis://127.0.0.1:{closed}/0", 503)):
        app = create_app(settings.with_changes(redis_url=redis_url), clock=clock, run_monitor=False)
        server = TestServer(app)
        await server.start_server()
        try:
            async with ClientSession() as http:
                platform = Platform(server, http, clock, app)
                async with http.get(platform.base + "/api/health") as reply:
                    body = await reply.json()
                    assert reply.status == expected, body
        finally:
            await server.close()
        assert body["dependencies"]["database"] == "ok" and body["dependencies"]["storage"] == "ok"
        assert body["dependencies"]["redis"] == ("ok" if expected == 200 else "unavailable")
        assert body["status"] == ("ok" if expected == 200 else "unavailable")
        assert str(closed) not in str(body), "a public answer names no address"
