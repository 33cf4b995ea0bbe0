"""The production topology, proven on loopback with the servers a district runs, as processes:
nginx terminating TLS (deploy/nginx.conf.template, a certificate made for the run), coturn
(deploy/turnserver.conf, TURN REST credentials from the app's shared secret), the app on
PostgreSQL, Redis and an S3 server, and Chromium on https:// — the worker's browser forced to
send and receive media only through TURN (YUNBANG_ICE_RELAY_ROLES=worker).

The story: the worker takes a ticket, the clerk calls it, both decode each other's video, the
worker uploads a photo, the clerk opens its thumbnail and viewing copy (read from the bucket
through nginx with links signed for nginx's host), completes, and the resident rates.
tests/topology.py starts and stops the processes; bench/join.py --topology production times the
same join."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
import yaml
from PIL import Image
from playwright.async_api import Browser, BrowserContext, Page, expect

from deploy.render import COMPOSE, TemplateError, render
from signaling.ids import participant_id, track_id
from tests.conftest import REDIS_URL, Api
from tests.helpers import district_item, take
from tests.topology import S3_KEY, S3_SECRET, Topology, missing_programs, production
from tests.web import (
    browser,  # noqa: F401  (the browser fixture)
    decoding,
    eventually,
    require_built_client,
)

ROOT = Path(__file__).resolve().parents[1]

needs_servers = pytest.mark.skipif(
    bool(missing_programs()),
    reason=f"not installed: {', '.join(missing_programs())} — `make prodstack` installs nginx and coturn")


@pytest.fixture
async def topology(postgresql_url: str, tmp_path: Path) -> AsyncIterator[Topology]:
    require_built_client()
    async with production(postgresql_url, REDIS_URL, tmp_path / "topology") as running:
        yield running


async def person(browser: Browser, topology: Topology, username: str) -> tuple[BrowserContext, Page]:
    """A browser context on https://127.0.0.1:<nginx> (the run's own CA is not in Chromium's
    store, so certificate errors are ignored; the Python clients below verify it)."""
    context = await browser.new_context(permissions=["camera", "microphone"], base_url=topology.base,
                                        ignore_https_errors=True, viewport={"width": 1366, "height": 900})
    await context.add_init_script("sessionStorage.setItem('yb.deviceCheck', 'done')")
    page = await context.new_page()
    page.set_default_timeout(20000)
    await page.goto("/app/login")
    await page.fill("input[data-testid=username]", username)
    await page.fill("input[data-testid=password]", "demo12345")
    await page.click("[data-testid=login]")
    return context, page


async def login(http, topology: Topology, username: str) -> Api:  # type: ignore[no-untyped-def]
    api = Api(http, topology.base)
    reply = await api.post("/api/auth/login", {"username": username, "password": "demo12345"})
    assert reply.status == 200, reply
    return Api(http, topology.base, reply.body["token"], reply.body["user"])


def photo(path: Path) -> Path:
    image = Image.new("RGB", (1600, 1200), (236, 232, 220))
    for x in range(0, 1600, 40):
        image.paste((30 + x % 200, 90, 160), (x, 0, x + 20, 1200))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    path.write_bytes(buffer.getvalue())
    return path


def sigv4_signature(url: str, host: str, secret: str) -> str:
    """The signature S3 computes for a presigned GET of ``url`` arriving with ``Host: host``."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "X-Amz-Signature"]
    params = dict(query)
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query))
    assert params["X-Amz-SignedHeaders"] == "host"
    canonical = "\n".join(["GET", parts.path, canonical_query, f"host:{host}", "", "host", "UNSIGNED-PAYLOAD"])
    _, day, region, service, _ = params["X-Amz-Credential"].split("/")
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", params["X-Amz-Date"], scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def image_loaded(page: Page, selector: str):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return bool(await page.evaluate(
            "(s) => { const i = document.querySelector(s); return !!i && i.complete && i.naturalWidth > 0; }", selector))
    return check


def test_the_compose_nginx_site_is_the_template_rendered() -> None:
    """deploy/nginx.conf is generated, never edited: compose runs what the test below runs."""
    assert (ROOT / "deploy" / "nginx.conf").read_text() == render(COMPOSE), "run python -m deploy.render"
    with pytest.raises(TemplateError, match="would break"):
        render(COMPOSE.__class__(**{**COMPOSE.__dict__, "object_server": "minio:9000; evil"}))


COMPOSE_ENV = {
    "PUBLIC_HOST": "yunbang.example.gov.cn", "YUNBANG_SECRET_KEY": "k" * 48, "YUNBANG_DATA_KEY": "ZGF0YQ==",
    "POSTGRES_PASSWORD": "pg-pass", "MINIO_ROOT_USER": "root-user", "MINIO_ROOT_PASSWORD": "root-pass",
    "MINIO_APP_USER": "yunbang-app", "MINIO_APP_PASSWORD": "app-pass", "TURN_SECRET": "turn-secret",
}


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``docker compose config`` (the plugin), else Debian's ``docker-compose``."""
    plugin = shutil.which("docker") and subprocess.run(["docker", "compose", "version"],
                                                       capture_output=True).returncode == 0
    if plugin:
        argv = ["docker", "compose"]
    elif shutil.which("docker-compose"):
        argv = ["docker-compose"]
    else:
        pytest.fail("neither `docker compose` nor `docker-compose`: make prodstack installs docker-compose")
    return subprocess.run([*argv, "-f", str(ROOT / "docker-compose.yml"), "config"], capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], **env}, cwd=ROOT)


def test_the_compose_file_validates_and_has_no_default_secret() -> None:
    done = compose_config(COMPOSE_ENV)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    services = config["services"]
    for name, service in services.items():
        assert "healthcheck" in service or name == "minio-init", f"{name} has no health check"
    app = services["app"]["environment"]
    assert app["YUNBANG_S3_ACCESS_KEY"] == "yunbang-app" != services["minio"]["environment"]["MINIO_ROOT_USER"]
    assert app["YUNBANG_S3_PUBLIC_ENDPOINT"] == "https://yunbang.example.gov.cn", "links signed for nginx's host"
    assert "turns:yunbang.example.gov.cn:5349?transport=tcp" in app["YUNBANG_TURN_URLS"].split(",")
    assert services["app"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    coturn = " ".join(services["coturn"]["command"])
    assert "/etc/coturn/turnserver.conf" in coturn and "--allowed-peer-ip=172.30.0.0-172.30.0.255" in coturn
    assert config["networks"]["yunbang"]["ipam"]["config"][0]["subnet"] == "172.30.0.0/24"
    assert not app["YUNBANG_METRICS_TOKEN"], "/metrics is off unless its token is set"
    metered = yaml.safe_load(compose_config({**COMPOSE_ENV, "YUNBANG_METRICS_TOKEN": "m" * 32}).stdout)
    assert metered["services"]["app"]["environment"]["YUNBANG_METRICS_TOKEN"] == "m" * 32
    for secret in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "MINIO_APP_PASSWORD", "TURN_SECRET",
                   "YUNBANG_SECRET_KEY", "YUNBANG_DATA_KEY", "PUBLIC_HOST"):
        missing = compose_config({k: v for k, v in COMPOSE_ENV.items() if k != secret})
        assert missing.returncode != 0 and secret in missing.stderr, f"{secret} has a default"


def test_the_turn_server_denies_private_peers_and_speaks_tls() -> None:
    conf = (ROOT / "deploy" / "turnserver.conf").read_text()
    options = [line.strip() for line in conf.splitlines() if line.strip() and not line.startswith("#")]
    assert "tls-listening-port=5349" in options and "use-auth-secret" in options
    denied = {line.split("=", 1)[1] for line in options if line.startswith("denied-peer-ip=")}
    for private in ("10.0.0.0-10.255.255.255", "172.16.0.0-172.31.255.255", "192.168.0.0-192.168.255.255",
                    "127.0.0.0-127.255.255.255", "169.254.0.0-169.254.255.255", "fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"):
        assert private in denied
    assert not any(o.startswith(("static-auth-secret", "allow-loopback-peers", "allowed-peer-ip")) for o in options)


def test_the_apps_minio_user_reaches_its_bucket_only() -> None:
    policy = json.loads((ROOT / "deploy" / "minio-app-policy.json").read_text())
    assert policy["Version"] == "2012-10-17"
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    resources = {r for s in policy["Statement"] for r in s["Resource"]}
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    assert resources == {"arn:aws:s3:::yunbang", "arn:aws:s3:::yunbang/*"}
    assert not any("*" in a for a in actions), "no wildcard actions"
    # what S3Store calls: bucket_exists, put/get/stat/remove, multipart and its sweep
    assert {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
            "s3:ListBucketMultipartUploads", "s3:ListMultipartUploadParts"} <= actions
    assert not actions & {"s3:CreateBucket", "s3:DeleteBucket", "s3:PutBucketPolicy"}
    script = (ROOT / "deploy" / "minio-init.sh").read_text()
    assert "mc admin user add" in script and "mc admin policy attach root yunbang-app" in script


@needs_servers
async def test_the_story_through_tls_turn_and_the_bucket(topology: Topology, browser: Browser,
                                                         tmp_path: Path) -> None:
    async with topology.http() as http:
        worker_api, clerk_api = await login(http, topology, "worker1"), await login(http, topology, "clerk1")

        # The app hands the worker TURN REST credentials for coturn and the relay-only policy.
        ice = (await worker_api.get("/api/ice-servers")).body
        assert ice["ice_transport_policy"] == "relay"
        assert [s["urls"] for s in ice["ice_servers"]] == [list(topology.turn.urls)]
        assert ice["ice_servers"][0]["username"].endswith(f":u{worker_api.user['id']}")
        assert (await clerk_api.get("/api/ice-servers")).body["ice_transport_policy"] == "all"

        # 取号 and 叫号; both pages join through nginx (socket.io over a WebSocket upgrade).
        ticket = await take(worker_api, (await district_item(worker_api, "MZ"))["id"], "线上验证群众")
        worker_context, worker = await person(browser, topology, "worker1")
        clerk_context, clerk = await person(browser, topology, "clerk1")
        await clerk.wait_for_url("**/app/clerk")
        await clerk.click("[data-testid=call-next]")
        await expect(clerk.locator("[data-testid=current-ticket]")).to_contain_text(ticket["number"])
        worker_cam, clerk_cam = track_id(participant_id(worker_api.user['id']), "camera"), track_id(participant_id(clerk_api.user['id']), "camera")
        await asyncio.gather(decoding(clerk, worker_cam), decoding(worker, clerk_cam))

        # The worker's two connections go through coturn; the clerk's reach the relay directly.
        worker_paths = await worker.evaluate("window.yb.paths()")
        assert worker_paths["send"]["local"] == "relay" and worker_paths["receive"]["local"] == "relay", worker_paths
        assert worker_paths["send"]["relayProtocol"] == "udp"
        clerk_paths = await clerk.evaluate("window.yb.paths()")
        assert clerk_paths["send"]["local"] != "relay" and clerk_paths["receive"]["local"] != "relay", clerk_paths

        # coturn allocated a relay for the worker's credentials and let it reach the relay's
        # loopback address (allowed past deploy/turnserver.conf's denied ranges).
        label = rf"\d+:u{worker_api.user['id']}"
        log = topology.turn_log()
        assert re.search(rf"user <{label}>: incoming packet ALLOCATE processed, success", log), log[-3000:]
        assert re.search(rf"user <{label}>: incoming packet (CREATE_PERMISSION|CHANNEL_BIND) processed, success",
                         log), log[-3000:]
        assert not re.search(r"(CREATE_PERMISSION|CHANNEL_BIND) processed, error 403", log)

        # A photo of the ID card goes up; the clerk opens its thumbnail and its viewing copy, read
        # from the bucket through nginx with links signed for nginx's host.
        await clerk.click("[data-testid=start]")
        id_line = worker.locator("[data-testid=checklist] li.line", has_text="居民身份证")
        await id_line.locator("input[data-testid=upload-input]").set_input_files(str(photo(tmp_path / "id.jpg")))
        await expect(id_line.locator("[data-testid=upload-progress]")).to_have_attribute("data-phase", "done",
                                                                                        timeout=30000)
        clerk_line = clerk.locator("[data-testid=checklist] li.line", has_text="居民身份证")
        await expect(clerk_line).to_have_attribute("data-state", "provided")
        await eventually(image_loaded(clerk, "[data-testid=checklist] .thumb img"), what="the thumbnail")
        await clerk_line.locator(".thumb").first.click()
        await eventually(image_loaded(clerk, ".el-dialog .frame img"), what="the viewing copy")
        documents = (await clerk_api.get(f"/api/tickets/{ticket['id']}/documents")).body
        document = (await clerk_api.get(f"/api/documents/{documents[0]['id']}")).body
        viewing = document["urls"]["viewing"]
        assert viewing.startswith(f"{topology.base}/{topology.bucket}/"), viewing
        reads = re.findall(rf'"GET (\S+)/{topology.bucket}/(\S+) HTTP/[\d.]+" (\d+) (\d+)', topology.nginx_log())
        assert len([r for r in reads if r[2] == "200" and int(r[3]) > 1000]) >= 2, reads
        host = reads[0][0]
        assert host == urlsplit(topology.base).netloc, "nginx passes the browser's Host on, port and all"
        assert sigv4_signature(viewing, host, S3_SECRET) == dict(parse_qsl(urlsplit(viewing).query))["X-Amz-Signature"]
        assert dict(parse_qsl(urlsplit(viewing).query))["X-Amz-Credential"].startswith(f"{S3_KEY}/")
        async with http.get(viewing) as reply:
            assert reply.status == 200 and reply.headers["X-Content-Type-Options"] == "nosniff"
            assert (await reply.read())[:2] == b"\xff\xd8"
        async with http.put(viewing, data=b"x") as reply:
            assert reply.status == 403, "nothing but reading reaches the bucket through nginx"
        await clerk.keyboard.press("Escape")

        # Complete on the spot (materials incomplete) and the resident rates on the worker's page.
        await clerk.click("[data-testid=complete]")
        await clerk.locator("[data-result=materials_incomplete]").click()
        await clerk.click("[data-testid=complete-confirm]")
        await expect(clerk.locator("[data-testid=ended]")).to_contain_text(ticket["number"])
        await expect(worker.locator("[data-testid=rating]")).to_be_visible()
        await worker.click("[data-score='5']")
        await worker.click("[data-testid=rating-submit]")
        await expect(worker.locator("[data-testid=rated]")).to_contain_text("非常满意")
        done = (await clerk_api.get(f"/api/tickets/{ticket['id']}")).body
        assert done["status"] == "completed" and done["rating"]["score"] == 5

        await worker_context.close()
        await clerk_context.close()

    # What went through nginx: the pages over HTTP/2 and TLS with the run's certificate (the
    # clients here trust only its CA), socket.io upgraded to WebSockets (logged when they close).
    async def upgraded() -> bool:
        return len(re.findall(r'"GET \S+/socket\.io/ HTTP/1\.1" 101 ', topology.nginx_log())) >= 2

    await eventually(upgraded, 10, "socket.io's WebSockets through nginx")
    log = topology.nginx_log()
    assert re.search(r'"GET \S+/app/\S* HTTP/2\.0" 200 ', log), "the client was not served over HTTP/2"
    # One id per request, nginx's $request_id: the clerk's 叫号 in nginx's log and on the app's JSON lines.
    called = re.search(r'"POST \S+/api/windows/\d+/call-next HTTP/[\d.]+" 200 \d+ \S+ "[^"]*" ([0-9a-f]{32})', log)
    assert called, log[-2000:]
    app_lines = [json.loads(line) for line in topology.processes.log("app").splitlines() if line.startswith("{")]
    same = [r for r in app_lines if r.get("request_id") == called[1]]
    assert same and (same[0]["user_id"], same[0]["ticket_id"]) == (clerk_api.user["id"], ticket["id"]), same
    # coturn's TLS listener (turns:) answers with the same certificate.
    with socket.create_connection(("127.0.0.1", topology.turn.tls_port), timeout=5) as raw:
        with topology.certificates.client_context().wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    # Plain HTTP is sent to HTTPS; the health check answers on loopback.
    port = int(re.search(r"listen 127\.0\.0\.1:(\d+);", (topology.processes.folder / "site.conf").read_text())[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /app/ HTTP/1.1\r\nHost: yunbang.example\r\nConnection: close\r\n\r\n")
    head = (await reader.read()).decode(errors="replace")
    writer.close()
    assert head.startswith("HTTP/1.1 301") and "Location: https://yunbang.example/app/" in head
