"""/metrics, scraped as Prometheus does: closed without its token, then followed through a real
call (aiortc clients through the relay), an upload, the queue and its alerts; never a name, an ID
or phone number, nor an id in a route. The Grafana dashboard in deploy/ uses only what is exported,
and nginx never passes /metrics on."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from deploy.render import NginxSite, render
from server.app import create_app
from server.config import Settings, SettingsError
from server.domain.clock import ManualClock
from server.keys import CALLS, MONITOR
from signaling.ids import participant_id, track_id
from tests.conftest import Platform
from tests.helpers import district_item, take, until, window_of
from tests.media import phone_photo
from tests.rtc_client import CallClient
from tests.topology import (
    Processes,
    free_port,
    make_certificates,
    missing_programs,
    nginx_main_conf,
    nginx_version,
)

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "metrics-token-for-the-test-0123456789"
RESIDENT = {"name": "钱多多", "id_number": "330203195001011234", "phone": "13912345678"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_changes(metrics_token=TOKEN)


class Scrape:
    """One exposition, parsed."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples: list[Sample] = [s for f in self.families.values() for s in f.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of that name whose labels include ``labels`` (0 if none)."""
        return sum(s.value for s in self.samples
                   if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))

    def labelled(self, name: str) -> list[dict[str, str]]:
        return [s.labels for s in self.samples if s.name == name]


async def scrape(platform: Platform, token: str | None = TOKEN) -> Scrape:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with platform.http.get(platform.base + "/metrics", headers=headers) as reply:
        assert reply.status == 200, await reply.text()
        assert reply.headers["Content-Type"].startswith("text/plain")
        return Scrape(await reply.text())


@pytest.fixture
async def closed_app(settings: Settings, clock: ManualClock) -> AsyncIterator[str]:
    """The app as it runs by default: no metrics token."""
    server = TestServer(create_app(settings.with_changes(metrics_token=""), clock=clock, run_monitor=False))
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def test_without_a_token_set_there_is_no_metrics_path(closed_app: str, platform: Platform) -> None:
    async with platform.http.get(closed_app + "/metrics") as reply:
        assert reply.status == 404
    async with platform.http.get(closed_app + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}) as reply:
        assert reply.status == 404


async def test_a_missing_or_wrong_token_is_refused_with_a_stable_code(platform: Platform) -> None:
    admin = await platform.login("admin")
    for header in ({}, {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": TOKEN},
                   {"Authorization": f"Bearer {admin.token}"}, {"Authorization": "Bearer 令牌"}):
        async with platform.http.get(platform.base + "/metrics", headers=header) as reply:
            body = await reply.json()
            assert reply.status == 401 and body["error"]["code"] == "metrics_token_invalid", (header, body)
            assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await scrape(platform)).families


def test_the_token_and_the_listener_are_checked_when_read() -> None:
    assert Settings.from_env({"YUNBANG_METRICS_TOKEN": TOKEN}).metrics_token == TOKEN
    assert Settings.from_env({"YUNBANG_METRICS_LISTEN": "10.0.0.5:9464"}).metrics_listen == ("10.0.0.5", 9464)
    assert Settings.from_env({"YUNBANG_METRICS_LISTEN": "[::1]:9464"}).metrics_listen == ("::1", 9464)
    for bad in ({"YUNBANG_METRICS_TOKEN": "short"}, {"YUNBANG_METRICS_LISTEN": "9464"},
                {"YUNBANG_METRICS_LISTEN": "metrics.local:9464"}, {"YUNBANG_METRICS_LISTEN": "10.0.0.5:99999"}):
        with pytest.raises(SettingsError):
            Settings.from_env(bad)


async def test_a_listener_of_its_own_serves_the_metrics(settings: Settings, clock: ManualClock) -> None:
    port = free_port()
    app = create_app(settings.with_changes(metrics_token="", metrics_listen=("127.0.0.1", port)), clock=clock,
                     run_monitor=False)
    server = TestServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/metrics") as reply:
                assert reply.status == 200
                assert "yunbang_queue_waiting" in await reply.text()
            async with http.get(str(server.make_url("/metrics"))) as reply:
                assert reply.status == 404, "not on the app's own address"
    finally:
        await server.close()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as http:
            await http.get(f"http://127.0.0.1:{port}/metrics")


async def test_queue_figures_ticket_outcomes_and_alerts(platform: Platform) -> None:
    worker = await platform.login("worker1")
    clerk = await platform.login("clerk1")
    mz = await district_item(worker, "MZ")
    first = await take(worker, mz["id"], RESIDENT["name"], resident_extra={"id_number": RESIDENT["id_number"]})
    second = await take(worker, mz["id"], "第二位群众")
    third = await take(worker, mz["id"], "第三位群众")
    platform.clock.advance(minutes=16)
    await platform.app[MONITOR].run_once()  # the first ticket has waited past 15 minutes: one alert
    before = await scrape(platform)
    queues = [q for q in before.labelled("yunbang_queue_waiting") if q["department"] == "MZ"]
    assert queues and {q["department_id"] for q in queues} == {str(mz["department_id"])}
    assert before.value("yunbang_queue_waiting", department="MZ") == 3
    assert 16 * 60 <= before.value("yunbang_queue_longest_wait_seconds", department="MZ") < 17 * 60
    assert before.value("yunbang_queue_figures_ok") == 1
    assert before.value("yunbang_tickets_taken_total", department_id=str(mz["department_id"])) == 3
    assert before.value("yunbang_alerts_raised_total", kind="wait_timeout") >= 1

    assert (await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")).body["id"] == first["id"]
    await clerk.post(f"/api/tickets/{first['id']}/start")
    assert (await clerk.post(f"/api/tickets/{first['id']}/complete", {"result": "consultation_only"})).status == 200
    assert (await worker.post(f"/api/tickets/{third['id']}/cancel")).status == 200
    after = await scrape(platform)
    department = str(mz["department_id"])
    assert after.value("yunbang_tickets_ended_total", department_id=department, outcome="consultation_only") == 1
    assert after.value("yunbang_tickets_ended_total", department_id=department, outcome="cancelled") == 1
    assert after.value("yunbang_queue_waiting", department="MZ") == 1
    assert second["number"] not in after.text and RESIDENT["name"] not in after.text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # media: the database is not what it tests
async def test_the_counters_follow_a_call_an_upload_and_the_end_of_the_case(platform: Platform) -> None:
    worker_api = await platform.login("worker1")
    clerk_api = await platform.login("clerk1")
    ticket = await take(worker_api, (await district_item(worker_api, "MZ"))["id"], RESIDENT["name"],
                        resident_extra={"id_number": RESIDENT["id_number"], "phone": RESIDENT["phone"]})
    assert (await clerk_api.post(f"/api/windows/{window_of(clerk_api)}/call-next")).status == 200
    idle = await scrape(platform)
    assert idle.value("yunbang_calls") == 0 and idle.value("yunbang_relay_forwarded_packets_total") == 0

    worker = await CallClient(platform.base, worker_api.token).connect()
    clerk = await CallClient(platform.base, clerk_api.token).connect()
    try:
        await worker.join(ticket["id"])
        await clerk.join(ticket["id"])
        await worker.publish(size=(160, 120))
        await clerk.publish(size=(160, 120))
        await clerk.wait_frames(track_id(participant_id(worker_api.user['id']), "camera"), 10)
        await worker.wait_frames(track_id(participant_id(clerk_api.user['id']), "camera"), 10)
        form = aiohttp.FormData()
        form.add_field("material", "other")
        form.add_field("file", phone_photo(), filename="身份证.jpg", content_type="image/jpeg")
        assert (await worker_api.call("POST", f"/api/tickets/{ticket['id']}/documents", data=form)).status == 201
        during = await scrape(platform)
    finally:
        await worker.close()
        await clerk.close()

    assert during.value("yunbang_calls") == 1 and during.value("yunbang_call_participants") == 2
    assert during.value("yunbang_relay_peer_connections") == 4
    assert during.value("yunbang_relay_received_packets_total") > 0
    assert during.value("yunbang_relay_forwarded_packets_total") > 20
    assert during.value("yunbang_relay_forwarded_bytes_total") > 1000
    assert during.value("yunbang_relay_plis_sent_total") > 0, "each new publisher is asked for a keyframe"
    for reason in ("keyframe_wait", "gap_skipped", "late", "not_connected"):
        assert [s for s in during.labelled("yunbang_relay_dropped_packets_total") if s["reason"] == reason]
    for event in ("join", "publish", "subscribe_answer"):
        assert during.value("yunbang_socket_events_total", event=event, result="ok") >= 2, event
    assert during.value("yunbang_socket_events_total", event="connect", result="ok") == 2
    assert during.value("yunbang_upload_processing_seconds_count", outcome="stored") == 1
    assert during.value("yunbang_upload_processing_seconds_sum", outcome="stored") > 0
    documents = "/api/tickets/{ticket_id}/documents"
    assert during.value("yunbang_http_request_duration_seconds_count", route=documents, method="POST",
                        status="201") == 1
    assert during.value("yunbang_http_request_duration_seconds_count", route="/api/auth/login", status="200") == 2

    # Routes are templates: no path of a ticket, a document or a user reaches a label.
    for labels in during.labelled("yunbang_http_request_duration_seconds_count"):
        assert labels["route"] == "unmatched" or not re.search(r"/\d+(/|$)", labels["route"]), labels
    assert f"/{ticket['id']}/" not in during.text
    # No personal data: not the resident's name, ID or phone number, nor who served them.
    people = [worker_api.user["display_name"], clerk_api.user["display_name"], "worker1", "clerk1",
              ticket["number"], "身份证.jpg", *RESIDENT.values()]
    for text in people:
        assert text not in during.text, text

    # The case ends: the call closes, and what it carried stays counted.
    await clerk_api.post(f"/api/tickets/{ticket['id']}/start")
    assert (await clerk_api.post(f"/api/tickets/{ticket['id']}/complete", {"result": "not_eligible"})).status == 200
    await until(lambda: not platform.app[CALLS].relay.rooms, 10, "the call closed")
    after = await scrape(platform)
    assert after.value("yunbang_calls") == 0 and after.value("yunbang_call_participants") == 0
    for counter in ("yunbang_relay_forwarded_packets_total", "yunbang_relay_forwarded_bytes_total",
                    "yunbang_relay_received_packets_total", "yunbang_relay_plis_sent_total"):
        assert after.value(counter) >= during.value(counter), counter
    assert after.value("yunbang_tickets_ended_total", outcome="not_eligible") == 1


def dashboard_metrics() -> set[str]:
    """Every metric name in the PromQL of deploy/grafana-dashboard.json."""
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    exprs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                exprs.append(node["expr"])
            if isinstance(node.get("query"), str):
                exprs.append(node["query"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(dashboard)
    assert len(exprs) >= 10
    return {name for e in exprs for name in re.findall(r"\byunbang_[a-z0-9_]+", e)}


def exported_names(scraped: Scrape) -> set[str]:
    """What a query can name: each family's samples, whether or not they have values yet."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {f.name + suffix for f in scraped.families.values() for suffix in suffixes.get(f.type, ("",))}


async def test_the_grafana_dashboard_asks_only_for_what_is_exported(platform: Platform) -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    assert dashboard["title"] and dashboard["panels"] and dashboard["schemaVersion"] >= 30
    used = dashboard_metrics()
    missing = used - exported_names(await scrape(platform))
    assert not missing, f"the dashboard asks for metrics the app does not export: {sorted(missing)}"
    for wanted in ("yunbang_queue_waiting", "yunbang_queue_longest_wait_seconds", "yunbang_calls",
                   "yunbang_call_participants", "yunbang_relay_forwarded_packets_total",
                   "yunbang_relay_dropped_packets_total", "yunbang_relay_nacks_received_total",
                   "yunbang_relay_plis_received_total", "yunbang_http_request_duration_seconds_bucket",
                   "yunbang_upload_processing_seconds_bucket", "yunbang_internal_errors_total"):
        assert wanted in used, f"the dashboard has no panel on {wanted}"


@pytest.mark.skipif(bool(missing_programs()), reason="nginx is not installed (make prodstack)")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_nginx_does_not_pass_metrics_on(platform: Platform, tmp_path: Path) -> None:
    """The production site (deploy/nginx.conf.template) in front of this app: /metrics is denied
    whatever its spelling, while the API goes through."""
    certs = make_certificates(tmp_path)
    https_port, http_port = free_port(), free_port()
    site = NginxSite(
        app_servers=(f"127.0.0.1:{platform.server.port}",), object_server=f"127.0.0.1:{free_port()}",
        bucket="yunbang", https_listen=f"127.0.0.1:{https_port}", http_listen=f"127.0.0.1:{http_port}",
        certificate=str(certs.certificate), certificate_key=str(certs.key), access_log=str(tmp_path / "access.log"),
        http2="listen" if nginx_version() < (1, 25, 1) else "directive")
    (tmp_path / "site.conf").write_text(render(site))
    (tmp_path / "nginx.conf").write_text(nginx_main_conf(tmp_path / "site.conf", tmp_path))
    nginx = next(p for p in ("/usr/sbin/nginx", "/usr/bin/nginx") if Path(p).exists())
    processes = Processes(tmp_path)
    processes.start("nginx", [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                              "-e", str(tmp_path / "nginx-error.log")])
    base = f"https://127.0.0.1:{https_port}"
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=certs.client_context())) as http:
            async def health() -> bool:
                try:
                    async with http.get(base + "/api/health") as reply:
                        return reply.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            for _ in range(100):
                processes.check()
                if await health():
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("nginx did not come up")
            for path in ("/metrics", "/metrics?x=1", "//metrics", "/./metrics", "/%6detrics", "/api/../metrics"):
                async with http.get(base + path, headers={"Authorization": f"Bearer {TOKEN}"}) as reply:
                    assert reply.status in (403, 404), (path, reply.status)
                    assert "yunbang_" not in await reply.text()
            async with platform.http.get(platform.base + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}) as ok:
                assert ok.status == 200, "the app itself serves it to whoever has the token"
    finally:
        processes.stop()
    assert "metrics" in (tmp_path / "access.log").read_text()

