"""Join-time benchmark: from the clerk's "call next" to the first decoded video frame on both pages.

What is measured
----------------
The real platform (``yunbang serve`` in its own process: SQLite in a temporary data directory,
demo data, service hours ``always``, the built web client) and Debian's Chromium driven by
Playwright with fake cameras and microphones, one browser context per person, on loopback:

* clerk4 sits at 高桥镇's 民政 window on the clerk console (``/app/clerk``);
* worker1 takes a ticket for 高龄津贴申领 (over HTTP, to keep the loop short) and the worker's page
  (``/app/worker``) is (re)loaded, so it shows the waiting ticket;
* the clock starts when the clerk's "叫号" button is clicked; the page calls
  ``POST /api/windows/{id}/call-next``, both pages are told over socket.io, join the call,
  publish camera and microphone to the relay and subscribe to each other;
* each page's time is when its ``getStats()`` (``window.yb.stats()``) first shows
  ``framesDecoded > 0`` for the other's camera, polled every 20 ms. A call's join time is the
  later of the two (both people see each other);
* the clerk then completes the case and the resident rates it (over HTTP), and the next call
  starts from a fresh worker page.

``--calls`` calls (20; ``--quick``: 5) after one untimed warm-up call. Printed: every call's
times, then p50/p95 of the join time (and of each side), and as the last line one JSON object
with ``p50_s``, ``p95_s`` and the details. Targets: p50 < 1.0 s, p95 < 2.0 s.

``--topology production``: the same calls through the production topology of
``tests/topology.py`` (the one ``tests/test_production.py`` proves): nginx terminating TLS in
front of the app, the pages on ``https://``, socket.io over nginx's WebSocket upgrade, the app on
PostgreSQL and Redis (``tests/services.py``: the configured ones, else its own) and an S3 server,
and the worker's media only through coturn (``iceTransportPolicy: "relay"``: the worker's
browser allocates on coturn for each connection, the clerk's reaches the relay directly). The
figure is then the join through TURN + TLS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "web-client" / "dist"
YUNBANG = Path(sys.executable).parent / "yunbang"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        "--autoplay-policy=no-user-gesture-required", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--no-first-run"]
PASSWORD = "demo12345"
POLL_S = 0.02


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def platform() -> AsyncIterator[str]:
    """The app in its own process, with demo data; yields its base URL."""
    with tempfile.TemporaryDirectory(prefix="yb-join-") as data:
        port = free_port()
        env = {**os.environ, "YUNBANG_DATA_DIR": data, "YUNBANG_PORT": str(port), "YUNBANG_HOST": "127.0.0.1",
               "YUNBANG_MEDIA_ADDRESSES": "127.0.0.1", "YUNBANG_SERVICE_HOURS": "always", "YUNBANG_WEB_DIST": str(DIST)}
        env.pop("YUNBANG_DATABASE_URL", None)
        for step in (["migrate"], ["seed", "--demo"]):
            subprocess.run([str(YUNBANG), *step], env=env, check=True, capture_output=True)
        server = subprocess.Popen([str(YUNBANG), "serve"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(200):
                    try:
                        async with http.get(f"{base}/api/health") as reply:
                            if reply.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    raise RuntimeError("the app did not start")
            yield base
        finally:
            server.terminate()
            server.wait(10)


@asynccontextmanager
async def production_platform() -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    """tests/topology.py's production topology on a fresh, demo-seeded PostgreSQL database
    (``main`` has made sure PostgreSQL and Redis answer); yields nginx's https:// URL and an
    HTTP client that trusts the run's CA."""
    from tests.topology import fresh_database, production

    url, drop = await fresh_database(os.environ["YUNBANG_TEST_PG"])
    try:
        with tempfile.TemporaryDirectory(prefix="yb-join-production-") as workdir:
            async with production(url, os.environ["YUNBANG_TEST_REDIS"], Path(workdir)) as topology:
                async with topology.http() as http:
                    yield topology.base, http
    finally:
        await drop()


@asynccontextmanager
async def loopback_platform() -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    async with platform() as base, aiohttp.ClientSession() as http:
        yield base, http


class Api:
    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base, self.token, self.user = http, base, "", {}

    async def login(self, username: str) -> Api:
        body = await self.call("POST", "/api/auth/login", {"username": username, "password": PASSWORD})
        self.token, self.user = body["token"], body["user"]
        return self

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as reply:
            data = await reply.json() if reply.content_type == "application/json" else None
            if reply.status >= 400:
                raise RuntimeError(f"{method} {path}: {reply.status} {data}")
            return data


async def open_page(browser: Browser, base: str, username: str) -> Page:
    # production: the run's own CA is not in Chromium's store (the HTTP client verifies it)
    context = await browser.new_context(permissions=["camera", "microphone"], base_url=base,
                                        viewport={"width": 1366, "height": 900},
                                        ignore_https_errors=base.startswith("https://"))
    page = await context.new_page()
    page.set_default_timeout(20000)
    await page.goto("/app/login")
    await page.fill("input[data-testid=username]", username)
    await page.fill("input[data-testid=password]", PASSWORD)
    await page.click("[data-testid=login]")
    return page


async def first_frame(page: Page, track_id: str, started: float, timeout: float = 30) -> float:
    """Seconds from ``started`` until the page has decoded a frame of that track."""
    deadline = started + timeout
    while time.perf_counter() < deadline:
        stats = await page.evaluate("window.yb && window.yb.stats ? window.yb.stats() : {}")
        entry = stats.get(track_id) if isinstance(stats, dict) else None
        if entry and entry.get("framesDecoded", 0) > 0:
            return time.perf_counter() - started
        await asyncio.sleep(POLL_S)
    raise TimeoutError(f"no decoded frame of {track_id} within {timeout} s")


async def worker_waiting(page: Page) -> None:
    """(Re)load the worker's page until it shows the waiting ticket (past the device check)."""
    await page.goto("/app/worker")
    for _ in range(100):
        if await page.locator("[data-testid=waiting]").is_visible():
            return
        button = page.locator("[data-testid=check-continue]")
        try:
            if await button.is_visible() and await button.is_enabled(timeout=500):
                await button.click(timeout=2000)
        except PlaywrightTimeoutError:
            pass  # the check moved on (or the page did) between looking and clicking: look again
        await asyncio.sleep(0.1)
    raise TimeoutError("the worker's page does not show the waiting ticket")


async def one_call(worker_api: Api, clerk_api: Api, item_id: int, worker: Page, clerk: Page) -> dict[str, float]:
    ticket = await worker_api.call("POST", "/api/tickets", {"item_id": item_id, "resident": {"name": "测时群众"}})
    await worker_waiting(worker)
    button = clerk.locator("[data-testid=call-next]")
    for _ in range(200):
        if await button.is_visible() and await button.is_enabled():
            break
        await asyncio.sleep(0.05)
    started = time.perf_counter()
    await clerk.click("[data-testid=call-next]")
    worker_cam, clerk_cam = f"u{worker_api.user['id']}:camera", f"u{clerk_api.user['id']}:camera"
    clerk_s, worker_s = await asyncio.gather(first_frame(clerk, worker_cam, started),
                                             first_frame(worker, clerk_cam, started))
    await clerk_api.call("POST", f"/api/tickets/{ticket['id']}/start")
    await clerk_api.call("POST", f"/api/tickets/{ticket['id']}/complete", {"result": "materials_incomplete"})
    await worker_api.call("POST", f"/api/tickets/{ticket['id']}/rating", {"score": 5})  # the worker's page moves on
    await clerk.locator("[data-testid=current-ticket]").wait_for(state="hidden")
    return {"join_s": max(clerk_s, worker_s), "clerk_sees_worker_s": clerk_s, "worker_sees_clerk_s": worker_s}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return round(ordered[k], 3)


async def run(calls: int, topology: str = "loopback") -> dict[str, Any]:
    if not (DIST / "index.html").is_file():
        raise SystemExit("web-client/dist is missing: run `make web` first")
    stack = production_platform() if topology == "production" else loopback_platform()
    async with stack as (base, http), async_playwright() as pw:
        worker_api = await Api(http, base).login("worker1")
        clerk_api = await Api(http, base).login("clerk4")
        items = await worker_api.call("GET", "/api/items?q=gljt")
        item_id = items[0]["id"]
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            clerk = await open_page(browser, base, "clerk4")
            await clerk.wait_for_url("**/app/clerk")
            await clerk.locator("[data-testid=window-choice]", has_text="民政").click()
            worker = await open_page(browser, base, "worker1")
            await worker.wait_for_url(lambda url: "/app/" in url and "/app/login" not in url)
            print("warm-up call (not timed) ...", flush=True)
            await one_call(worker_api, clerk_api, item_id, worker, clerk)
            results = []
            for n in range(1, calls + 1):
                result = await one_call(worker_api, clerk_api, item_id, worker, clerk)
                results.append(result)
                print(f"call {n:2d}: both see each other after {result['join_s']:.3f} s "
                      f"(clerk sees worker {result['clerk_sees_worker_s']:.3f} s, "
                      f"worker sees clerk {result['worker_sees_clerk_s']:.3f} s)", flush=True)
        finally:
            await browser.close()
    joins = [r["join_s"] for r in results]
    return {
        "p50_s": percentile(joins, 50), "p95_s": percentile(joins, 95),
        "mean_s": round(statistics.fmean(joins), 3), "max_s": round(max(joins), 3),
        "clerk_sees_worker_p50_s": percentile([r["clerk_sees_worker_s"] for r in results], 50),
        "worker_sees_clerk_p50_s": percentile([r["worker_sees_clerk_s"] for r in results], 50),
        "calls": len(results), "topology": topology,
    }


def _script_path() -> None:
    """Run as a script, this file's folder comes first on sys.path, where bench/queue.py would
    shadow the standard library's queue (a thread pool imports it): take it out, and put the
    project root in for ``tests.topology`` and ``deploy``. Only from ``main``: bench/weak_link.py
    imports this module with bench/ on the path and keeps it there."""
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 calls instead of 20")
    parser.add_argument("--calls", type=int, default=None, help="how many timed calls (default 20)")
    parser.add_argument("--topology", choices=("loopback", "production"), default="loopback",
                        help="production: through nginx (TLS) and coturn (the worker relay-only), "
                             "on PostgreSQL, Redis and an S3 server (tests/topology.py)")
    args = parser.parse_args(argv)
    _script_path()
    calls = args.calls or (5 if args.quick else 20)
    started = time.perf_counter()
    if args.topology == "production":
        from tests import services

        running = services.ensure()  # the configured PostgreSQL and Redis, else our own
        try:
            figures = asyncio.run(run(calls, args.topology))
        finally:
            running.stop()
    else:
        figures = asyncio.run(run(calls, args.topology))
    where = "through TLS (nginx) and TURN (coturn, the worker relay-only)" if args.topology == "production" else "on loopback"
    print(f"join time {where} over {figures['calls']} calls: p50 {figures['p50_s']} s, p95 {figures['p95_s']} s, "
          f"max {figures['max_s']} s (clerk sees worker p50 {figures['clerk_sees_worker_p50_s']} s, "
          f"worker sees clerk p50 {figures['worker_sees_clerk_p50_s']} s)")
    print(f"target p50 < 1.0 s: {'met' if figures['p50_s'] < 1.0 else 'NOT met'}; "
          f"target p95 < 2.0 s: {'met' if figures['p95_s'] < 2.0 else 'NOT met'}")
    print(f"finished in {time.perf_counter() - started:.0f} s")
    print(json.dumps({**figures, "quick": args.quick}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
