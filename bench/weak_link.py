"""Weak-link benchmark: a real call between two Chromium pages while the worker's link is shaped.

What is measured
----------------
The real platform (``python -m server.cli serve`` from the tree under test, SQLite in a temporary
data directory, demo data, service hours ``always``, the built web client) and two Debian Chromium
browsers driven by Playwright with fake cameras (640×480, 20 fps) and microphones:

* clerk4's browser runs on this machine, at 高桥镇's 民政 window on the clerk console;
* worker1's browser runs in its own **network namespace** (``ip netns``) joined to this machine by
  a veth pair with a /30 of private test addresses; the app listens on the host end's address only,
  so every packet of the worker (page, socket.io, media) crosses the veth. The link is shaped both
  ways: the rate with ``tbf`` on each end of the veth (this kernel has ``tbf`` but no
  ``sch_netem``), the one-way delay, random loss and blackouts by ``bench/linkshaper.py`` inside
  the namespace, behind iptables' NFQUEUE (``iptables-legacy``: mangle OUTPUT ``-o`` veth → queue
  1, the uplink; PREROUTING ``-i`` veth → queue 2, the downlink). Needs root; everything made
  (namespace, veth, qdiscs, rules, processes) is removed on exit, Ctrl-C included.

Profiles (each a fresh call: the worker takes a ticket, the clerk presses 叫号, both pages decode
each other's camera; then ``--settle`` seconds (5; ``--quick`` 0.5), then a window of 60 s,
``--quick`` 3 s; the outage profile's window is longer by the blackout in ``--quick``, and goes on
at least a second past the later recovery; the link is cut 20 s into the window, ``--quick`` 0.5 s):

============  =======================================================
clean         no shaping
lossy         1.5 Mbit/s, 60 ms one way, 1 % loss, each way
constrained   600 kbit/s, 100 ms one way, 3 % loss, each way
poor          300 kbit/s, 150 ms one way, 5 % loss, each way
outage        a clean call whose link is cut both ways for 4 s
============  =======================================================

Both pages' ``RTCPeerConnection.getStats()`` are read once a second (an init script keeps a list
of the pages' peer connections, so any client version can be measured). Per direction — **W→C**
(the clerk receives the worker's camera: the worker's uplink) and **C→W** (the worker receives
the clerk's: the worker's downlink) — over the window:

* ``fps``: frames decoded by the receiver per second (inbound-rtp ``framesDecoded``);
* ``frozen_s_per_min``: seconds frozen per minute — the receiver's ``totalFreezesDuration``
  growth, plus a freeze still going on at the end of the window (Chromium counts a freeze only
  when the next frame comes), scaled to a minute; ``freezes``: ``freezeCount`` growth;
  ``no_frame_s``: seconds in which not one frame was decoded;
* ``resolution``: the receiver's most frequent ``frameWidth``×``frameHeight``; ``min_height``;
* ``sent_kbps``: the sender's video ``bytesSent`` rate (the worker's for W→C, the clerk's for
  C→W — which goes to the relay over loopback; the relay forwards it over the worker's
  downlink), ``recv_kbps``: the receiver's video ``bytesReceived`` rate, ``link_kbps``: the
  shaped rate of the worker's link in that direction; ``target_kbps``: the sender's encoder
  target (``targetBitrate``), ``limited_by``: its most frequent ``qualityLimitationReason``;
* ``loss_pct``: the receiver's ``packetsLost`` / (lost + received) of the video (for W→C that is
  what the relay passed on to the clerk); ``first_hop_loss_pct``: what the relay's receiver
  reports told the sender it lost (``remote-inbound-rtp``; for W→C the worker's uplink);
  ``nacks``, ``plis``: requests the receiver sent;
* ``audio_concealed_pct``: the receiver's audio ``concealedSamples`` / ``totalSamplesReceived``;
* ``rtt_ms``: the worker's connection's ``currentRoundTripTime`` (publishing one for W→C,
  subscribing one for C→W);
* ``connected_pct``: share of the samples in which the receiving page says the call is
  ``connected`` and its receiving connection's ICE is connected;
* ``join_s``: 叫号 → both pages decode a frame (once per profile);
* ``outage.recovery_s``: from the moment the link is back to the first newly decoded frame of a
  run that goes on (10 more frames within a second; one stale frame completed by a late packet,
  then a wait for a keyframe, is not a recovery); ``recovered``: false if not within 30 s;
* ``phase``, ``ice``: the receiving page's call phase and receiving connection's ICE state at the
  end of the window.

Per direction also ``frames_each_s`` and ``sent_kbps_each_s`` (each sample's second: where the
freezes fell), and per profile ``relay``: the relay's own counters over the window, read from its
``/metrics`` (gaps recovered and skipped, keyframe waits, PLIs and NACKs sent, retransmissions and
those refused), both directions together. ``YB_WEAK_LINK_KEEP=1`` keeps the server's log (the
relay logs its uplink caps and each subscriber's layer moves) in the scratch directory.

Besides: ``constrained.first_load_s``, the worker's first page load through the constrained link
(a fresh browser context, cold cache: ``/app/`` until the login page's username field is
visible and enabled) and ``first_load_kb`` transferred. TCP through 3 % loss each way is a lottery
(a lost SYN alone costs a 1 s retransmission timeout), so the page is loaded ``--loads`` times
(default 5; 1 with ``--quick``): ``first_load_s`` is the median, ``first_load_max_s`` the worst and
``first_loads_s`` every one.

Printed: a table per profile, then as the last line one JSON object: per profile its figures per
direction (``w2c``, ``c2w``) and the worse of the two directions at the top of the profile
(lower fps, more freezing, more concealment and loss, later recovery) — e.g.
``lossy.frozen_s_per_min``, ``constrained.fps``, ``poor.audio_concealed_pct``,
``outage.recovery_s`` — and ``constrained.first_load_s``. Targets (issue 11): lossy ≤ 0.5 s frozen
per minute; constrained ≥ 15 fps and ≤ 1 s frozen per minute; poor keeps audio (≤ 10 % concealed)
and the call connected; back ≤ 1 s after the outage; first load ≤ 5 s.

``--ref REV`` measures another revision ("before"): it is checked out with ``git worktree add``
into a temporary directory, its web client built there (``npm run build``, node_modules linked
from this tree), its server started, the same profiles run, and the worktree removed.
``--profile NAME`` (repeatable) runs only those profiles. On this 2-core machine a full run takes
about 6–7 minutes and ``--quick`` under a minute (a ``--ref`` adds ~20 s of web client build);
3 s windows are coarse — one freeze of 1 s reads as 20 s/min — so compare full runs.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import collections
import contextlib
import ipaddress
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from join import CHROMIUM, PASSWORD, Api, free_port  # bench/join.py, beside this file
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

ROOT = Path(__file__).resolve().parents[1]
SHAPER = Path(__file__).resolve().parent / "linkshaper.py"
ARGS = ["--use-fake-device-for-media-stream=fps=20", "--use-fake-ui-for-media-stream",
        "--autoplay-policy=no-user-gesture-required", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--no-first-run"]


@dataclass(frozen=True)
class Profile:
    name: str
    rate_kbit: int | None = None  # each way
    delay_ms: float = 0  # one way, each way
    loss: float = 0  # each way
    blackout_s: float = 0


PROFILES = {p.name: p for p in (
    Profile("clean"),
    Profile("lossy", 1500, 60, 0.01),
    Profile("constrained", 600, 100, 0.03),
    Profile("poor", 300, 150, 0.05),
    Profile("outage", blackout_s=4),
)}

# Kept in every page: the peer connections it makes, so their stats can be read from outside.
TRACK_PCS = """
(() => {
  const Native = window.RTCPeerConnection;
  if (!Native || window.__ybPcs) return;
  window.__ybPcs = [];
  let next = 0;
  class Tracked extends Native {
    constructor(...args) { super(...args); this.__ybId = ++next; window.__ybPcs.push(this); }
  }
  window.RTCPeerConnection = Tracked;
})();
"""

SAMPLE = """
async () => {
  const out = { phase: window.yb && window.yb.call ? window.yb.call.state.phase : null, pcs: [] };
  const pcs = (window.__ybPcs || []).filter(pc => pc.signalingState !== "closed");
  window.__ybPcs = pcs;
  for (const pc of pcs) {
    const report = await pc.getStats();
    let pair = null;
    report.forEach(s => { if (s.type === "transport" && s.selectedCandidatePairId) pair = s.selectedCandidatePairId; });
    const rows = [];
    report.forEach(s => {
      if (["inbound-rtp", "outbound-rtp", "remote-inbound-rtp"].includes(s.type) || s.id === pair) rows.push({ ...s });
    });
    out.pcs.push({ id: pc.__ybId, ice: pc.iceConnectionState, rows });
  }
  return out;
}
"""

FRAMES = """
async () => {
  const out = {};
  for (const pc of (window.__ybPcs || [])) {
    if (pc.signalingState === "closed") continue;
    (await pc.getStats()).forEach(s => {
      if (s.type === "inbound-rtp" && s.kind === "video") out[pc.__ybId + ":" + s.id] = s.framesDecoded || 0;
    });
  }
  return out;
}
"""


T0 = time.perf_counter()


def log(text: str) -> None:
    print(f"[{time.perf_counter() - T0:5.1f} s] {text}", file=sys.stderr, flush=True)


def run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), check=check, capture_output=True, text=True)


# ---------------------------------------------------------------- the shaped link


class Link:
    """A network namespace for the worker's browser, a veth pair to this machine, and its shaping."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}"
        self.ns, self.host_dev, self.ns_dev = f"ybwl{tag}", f"ybwl{tag}h", f"ybwl{tag}n"
        self.host_ip, self.ns_ip = self._free_subnet()
        self.shaper: asyncio.subprocess.Process | None = None
        self.made = False

    @staticmethod
    def _free_subnet() -> tuple[str, str]:
        used = run("ip", "-4", "-o", "addr").stdout
        for n in range(os.getpid() % 200, os.getpid() % 200 + 256):
            net = ipaddress.ip_network(f"10.213.{n % 256}.0/30")
            host, inside = (str(a) for a in net.hosts())
            if f" {host}/" not in used and f" {inside}/" not in used:
                return host, inside
        raise RuntimeError("no free 10.213.x.0/30 for the test link")

    def in_ns(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *command]

    async def open(self) -> None:
        if os.geteuid() != 0:
            raise SystemExit("bench/weak_link.py needs root (network namespaces, tc, iptables)")
        for tool in ("ip", "tc", "iptables-legacy"):
            if run("sh", "-c", f"command -v {tool}", check=False).returncode != 0:
                raise SystemExit(f"{tool} is missing (Debian: apt-get install iproute2 iptables)")
        self.made = True
        atexit.register(self.remove)  # should the event loop not get to close() (a second Ctrl-C)
        steps = [
            ("ip", "netns", "add", self.ns),
            ("ip", "link", "add", self.host_dev, "type", "veth", "peer", "name", self.ns_dev),
            ("ip", "link", "set", self.ns_dev, "netns", self.ns),
            ("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_dev),
            ("ip", "link", "set", self.host_dev, "up"),
            tuple(self.in_ns("ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_dev)),
            tuple(self.in_ns("ip", "link", "set", self.ns_dev, "up")),
            tuple(self.in_ns("ip", "link", "set", "lo", "up")),
            tuple(self.in_ns("iptables-legacy", "-t", "mangle", "-A", "OUTPUT", "-o", self.ns_dev,
                             "-j", "NFQUEUE", "--queue-num", "1", "--queue-bypass")),
            tuple(self.in_ns("iptables-legacy", "-t", "mangle", "-A", "PREROUTING", "-i", self.ns_dev,
                             "-j", "NFQUEUE", "--queue-num", "2", "--queue-bypass")),
        ]
        for step in steps:
            done = run(*step, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(step)}: {done.stderr.strip()}")
        self.shaper = await asyncio.create_subprocess_exec(
            *self.in_ns(sys.executable, str(SHAPER)), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.shaper.stdout is not None
        line = await asyncio.wait_for(self.shaper.stdout.readline(), 10)
        if line.strip() != b"ready":
            raise RuntimeError(f"linkshaper did not start: {line!r}")

    async def _tell(self, command: dict[str, Any]) -> None:
        assert self.shaper and self.shaper.stdin and self.shaper.stdout
        self.shaper.stdin.write((json.dumps(command) + "\n").encode())
        await self.shaper.stdin.drain()
        line = await asyncio.wait_for(self.shaper.stdout.readline(), 5)
        if line.strip() != b"ok":
            raise RuntimeError(f"linkshaper: {line!r}")

    async def shape(self, profile: Profile) -> None:
        for command in (["tc", "qdisc", "del", "dev", self.host_dev, "root"],
                        self.in_ns("tc", "qdisc", "del", "dev", self.ns_dev, "root")):
            run(*command, check=False)  # no qdisc of ours yet is fine
        if profile.rate_kbit:
            burst = max(4000, profile.rate_kbit * 1000 // 8 // 50)  # 20 ms of the rate, at least ~2.5 packets
            tbf = ["root", "tbf", "rate", f"{profile.rate_kbit}kbit", "burst", str(burst), "latency", "200ms"]
            run("tc", "qdisc", "replace", "dev", self.host_dev, *tbf)  # downlink: host → namespace
            run(*self.in_ns("tc", "qdisc", "replace", "dev", self.ns_dev, *tbf))  # uplink
        one_way = {"delay_ms": profile.delay_ms, "loss": profile.loss}
        await self._tell({"up": one_way, "down": one_way, "blackout": False})

    async def blackout(self, on: bool) -> None:
        await self._tell({"blackout": on})

    async def close(self) -> None:
        if self.shaper and self.shaper.returncode is None:
            with contextlib.suppress(Exception):
                assert self.shaper.stdin is not None
                self.shaper.stdin.close()
                await asyncio.wait_for(self.shaper.wait(), 3)
            if self.shaper.returncode is None:
                self.shaper.kill()
                await self.shaper.wait()
        self.remove()

    def remove(self) -> None:
        """Kill what still runs in the namespace (our own browser and shaper) and delete it."""
        if not self.made:
            return
        self.made = False
        pids = run("ip", "netns", "pids", self.ns, check=False).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        run("ip", "netns", "del", self.ns, check=False)  # takes the veth pair, its qdiscs and the rules
        run("ip", "link", "del", self.host_dev, check=False)


# ---------------------------------------------------------------- the platform


@contextlib.asynccontextmanager
async def platform(tree: Path, host: str, port: int, logs: Path) -> AsyncIterator[str]:
    """The app of ``tree`` in its own process on ``host``, with demo data; yields its base URL."""
    data = logs / "data"
    data.mkdir()
    env = {**os.environ, "YUNBANG_DATA_DIR": str(data), "YUNBANG_PORT": str(port), "YUNBANG_HOST": host,
           "YUNBANG_MEDIA_ADDRESSES": host, "YUNBANG_SERVICE_HOURS": "always", "YUNBANG_WEB_DIST": str(tree / "web-client" / "dist"),
           "YUNBANG_METRICS_TOKEN": METRICS_TOKEN}
    env.pop("YUNBANG_DATABASE_URL", None)
    env.pop("YUNBANG_REDIS_URL", None)
    cli = [sys.executable, "-m", "server.cli"]
    for step in (["migrate"], ["seed", "--demo"]):
        done = await asyncio.create_subprocess_exec(*cli, *step, env=env, cwd=tree, stdout=subprocess.PIPE,
                                                    stderr=subprocess.STDOUT)
        output, _ = await done.communicate()
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(step)}: {output.decode(errors='replace')[-2000:]}")
    with open(logs / "server.log", "wb") as out:
        server = subprocess.Popen([*cli, "serve"], env=env, cwd=tree, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://{host}:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{base}/api/health") as reply:
                        if reply.status == 200:
                            break
                if server.poll() is not None:
                    raise RuntimeError(f"the app exited: see {logs / 'server.log'}")
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the app did not start")
        yield base
    finally:
        log("stopping the app")
        server.terminate()
        try:
            server.wait(3)  # the app stops within STOP_WAIT_S (server/cli.py); nothing here needs its goodbye
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@contextlib.contextmanager
def checked_out(rev: str) -> Iterator[Path]:
    """``rev`` in a temporary git worktree with its web client built; removed afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix="yb-ref-"))
    tree = scratch / "tree"
    run("git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev)
    try:
        modules = (ROOT / "web-client" / "node_modules").resolve()
        (tree / "web-client" / "node_modules").symlink_to(modules)
        # the pages' window.yb, which the bench reads: only in the test build, once a client has one (build:test)
        scripts = json.loads((tree / "web-client" / "package.json").read_text(encoding="utf-8"))["scripts"]
        script = "build:test" if "build:test" in scripts else "build"
        log(f"building the web client of {rev} ...")
        built = subprocess.run(["npm", "run", script], cwd=tree / "web-client", capture_output=True, text=True)
        if built.returncode != 0:
            raise RuntimeError(f"npm run {script} of {rev} failed:\n{built.stdout[-3000:]}{built.stderr[-3000:]}")
        yield tree
    finally:
        run("git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree), check=False)
        run("rm", "-rf", str(scratch), check=False)


# ---------------------------------------------------------------- the pages


async def person(browser: Browser, base: str) -> BrowserContext:
    context = await browser.new_context(permissions=["camera", "microphone"], base_url=base,
                                        viewport={"width": 1366, "height": 900})
    await context.add_init_script(TRACK_PCS)
    return context


async def log_in(context: BrowserContext, username: str) -> Page:
    page = await context.new_page()
    page.set_default_timeout(30000)
    await page.goto("/app/login")
    await page.fill("input[data-testid=username]", username)
    await page.fill("input[data-testid=password]", PASSWORD)
    await page.click("[data-testid=login]")
    return page


PHASE = "window.yb && window.yb.call ? window.yb.call.state.phase : 'no call'"


async def first_frame(page: Page, track_id: str, started: float, timeout: float,
                      steps: list[str] | None = None) -> float | None:
    """Seconds from ``started`` until ``page`` decodes a frame of ``track_id``; the call's phases on
    the way are appended to ``steps`` ("joining 0.4 s", …), so a slow join shows where it waited."""
    phase = None
    while time.perf_counter() < started + timeout:
        stats = await page.evaluate("window.yb && window.yb.stats ? window.yb.stats() : {}")
        if steps is not None:
            now = await page.evaluate(PHASE)
            if now != phase:
                phase = now
                steps.append(f"{now} {time.perf_counter() - started:.1f} s")
        entry = stats.get(track_id) if isinstance(stats, dict) else None
        if entry and entry.get("framesDecoded", 0) > 0:
            return time.perf_counter() - started
        await asyncio.sleep(0.05)
    return None


LIVE_CONNECTED = "window.yb && window.yb.live && window.yb.live.status.state === 'connected'"


async def worker_waiting(page: Page) -> None:
    """(Re)load the worker's page until it shows the waiting ticket (past the device check; on a slow
    link the check's button may go away under the click, so a click is tried briefly) and its
    socket.io connection is up, so 叫号 finds the page listening (a page whose first connection
    comes up after ``ticket.called`` reads its ticket again and joins all the same, but later:
    tests/test_web_client.py; the join time measured here is the listening page's)."""
    await page.goto("/app/worker")
    for _ in range(600):
        if await page.locator("[data-testid=waiting]").is_visible():
            for _ in range(600):  # polled with evaluate: wait_for_function's polling is an eval the CSP refuses
                if await page.evaluate(LIVE_CONNECTED):
                    return
                await asyncio.sleep(0.05)
            raise RuntimeError("the worker's page never connected its socket.io")
        button = page.locator("[data-testid=check-continue]")
        with contextlib.suppress(Exception):
            if await button.is_visible() and await button.is_enabled():
                await button.click(timeout=2000)
        await asyncio.sleep(0.1)
    raise TimeoutError("the worker's page does not show the waiting ticket")


async def cold_loads(browser: Browser, base: str, times: int) -> dict[str, Any]:
    """``times`` first visits one after the other: the median, the worst, each."""
    loads = [await cold_load(browser, base) for _ in range(times)]
    seconds = sorted(load["first_load_s"] for load in loads)
    return {"first_load_s": round(statistics.median(seconds), 2), "first_load_max_s": seconds[-1],
            "first_loads_s": [load["first_load_s"] for load in loads],
            "first_load_kb": max(load["first_load_kb"] for load in loads)}


async def cold_load(browser: Browser, base: str) -> dict[str, float]:
    """The worker's first visit: a fresh context (cold cache), ``/app/`` until the login form works."""
    context = await browser.new_context(base_url=base)
    try:
        page = await context.new_page()
        started = time.perf_counter()
        await page.goto("/app/", wait_until="commit", timeout=60000)
        field = page.locator("input[data-testid=username]")
        await field.wait_for(state="visible", timeout=60000)
        while not await field.is_enabled():
            await asyncio.sleep(0.02)
        seconds = time.perf_counter() - started
        transferred = await page.evaluate(
            "performance.getEntries().reduce((n, e) => n + (e.transferSize || 0), 0)")
        return {"first_load_s": round(seconds, 2), "first_load_kb": round(transferred / 1024)}
    finally:
        await context.close()


# ---------------------------------------------------------------- figures


def _num(row: dict[str, Any], name: str) -> float:
    value = row.get(name)
    return float(value) if isinstance(value, (int, float)) else 0.0


def _rows(sample: dict[str, Any], kind_of_row: str, kind: str | None = None) -> dict[str, dict[str, Any]]:
    """Rows of one stats type (and media kind) in a page sample, keyed by connection and stats id."""
    out = {}
    for pc in sample.get("pcs", []):
        for row in pc["rows"]:
            if row.get("type") == kind_of_row and (kind is None or row.get("kind") == kind):
                out[f"{pc['id']}:{row['id']}"] = row
    return out


def _growth(samples: list[dict[str, Any]], kind_of_row: str, kind: str, field: str) -> list[float]:
    """Per interval, how much ``field`` grew, summed over rows (a row new since the last sample
    counts from zero: a new connection or stream started in the interval)."""
    out = []
    for before, after in zip(samples, samples[1:], strict=False):
        old = _rows(before, kind_of_row, kind)
        total = 0.0
        for key, row in _rows(after, kind_of_row, kind).items():
            total += _num(row, field) - (_num(old[key], field) if key in old else 0.0)
        out.append(total)
    return out


def _pair(sample: dict[str, Any], sending: bool) -> dict[str, Any] | None:
    """The selected candidate pair of the page's sending (or receiving) connection."""
    for pc in sample.get("pcs", []):
        types = {row.get("type") for row in pc["rows"]}
        if ("outbound-rtp" in types) == sending and ("inbound-rtp" in types) != sending:
            for row in pc["rows"]:
                if row.get("type") == "candidate-pair":
                    return row
    return None


def _mode(values: list[Any]) -> Any:
    return collections.Counter(values).most_common(1)[0][0] if values else None


def direction_figures(receiver: list[dict[str, Any]], sender: list[dict[str, Any]], times: list[float],
                      worker_is_sender: bool, link_kbit: int | None) -> dict[str, Any]:
    """One direction's figures from the two pages' samples taken at ``times`` (seconds)."""
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    if span <= 0:
        return {}
    intervals = [b - a for a, b in zip(times, times[1:], strict=False)]
    frames = _growth(receiver, "inbound-rtp", "video", "framesDecoded")
    frozen = sum(_growth(receiver, "inbound-rtp", "video", "totalFreezesDuration"))
    trailing = 0.0
    for count, length in zip(reversed(frames), reversed(intervals), strict=False):
        if count > 0:
            break
        trailing += length
    lost = sum(_growth(receiver, "inbound-rtp", "video", "packetsLost"))
    received = sum(_growth(receiver, "inbound-rtp", "video", "packetsReceived"))
    hop_lost = sum(_growth(sender, "remote-inbound-rtp", "video", "packetsLost"))
    hop_sent = sum(_growth(sender, "outbound-rtp", "video", "packetsSent"))
    concealed = sum(_growth(receiver, "inbound-rtp", "audio", "concealedSamples"))
    samples = sum(_growth(receiver, "inbound-rtp", "audio", "totalSamplesReceived"))
    sizes, heights = [], []
    for sample in receiver[1:]:
        rows = [r for r in _rows(sample, "inbound-rtp", "video").values() if r.get("frameHeight")]
        if rows:
            best = max(rows, key=lambda r: _num(r, "framesDecoded"))
            sizes.append(f"{best['frameWidth']}x{best['frameHeight']}")
            heights.append(int(best["frameHeight"]))
    targets = [sum(_num(r, "targetBitrate") for r in _rows(s, "outbound-rtp", "video").values()) for s in sender[1:]]
    reasons = [r.get("qualityLimitationReason") for s in sender[1:]
               for r in _rows(s, "outbound-rtp", "video").values() if r.get("qualityLimitationReason")]
    worker = sender if worker_is_sender else receiver
    rtts = [_num(p, "currentRoundTripTime") * 1000 for s in worker[1:]
            if (p := _pair(s, worker_is_sender)) and p.get("currentRoundTripTime") is not None]
    connected = 0
    for sample in receiver[1:]:
        ice_ok = any(pc["ice"] in ("connected", "completed") and any(
            r.get("type") == "inbound-rtp" and r.get("kind") == "video" for r in pc["rows"]) for pc in sample["pcs"])
        connected += sample.get("phase") == "connected" and ice_ok
    last = receiver[-1]
    receiving = [pc for pc in last.get("pcs", []) if any(r.get("type") == "inbound-rtp" for r in pc["rows"])]
    return {
        "fps": round(sum(frames) / span, 1),
        "frozen_s_per_min": round((frozen + trailing) * 60 / span, 1),
        "freezes": int(sum(_growth(receiver, "inbound-rtp", "video", "freezeCount"))),
        "no_frame_s": round(sum(length for count, length in zip(frames, intervals, strict=False) if count <= 0), 1),
        "resolution": _mode(sizes),
        "min_height": min(heights) if heights else None,
        "sent_kbps": round(sum(_growth(sender, "outbound-rtp", "video", "bytesSent")) * 8 / span / 1000),
        "recv_kbps": round(sum(_growth(receiver, "inbound-rtp", "video", "bytesReceived")) * 8 / span / 1000),
        "link_kbps": link_kbit,
        "target_kbps": round(statistics.fmean(targets) / 1000) if targets else None,
        "limited_by": _mode(reasons),
        "loss_pct": round(100 * lost / (lost + received), 1) if lost + received > 0 else None,
        "first_hop_loss_pct": round(100 * hop_lost / hop_sent, 1) if hop_sent > 0 else None,
        "nacks": int(sum(_growth(receiver, "inbound-rtp", "video", "nackCount"))),
        "plis": int(sum(_growth(receiver, "inbound-rtp", "video", "pliCount"))),
        "audio_concealed_pct": round(100 * concealed / samples, 1) if samples > 0 else 100.0,
        "rtt_ms": round(statistics.median(rtts)) if rtts else None,
        "connected_pct": round(100 * connected / (len(receiver) - 1)),
        "phase": last.get("phase"),
        "ice": receiving[-1]["ice"] if receiving else None,
        "frames_each_s": [int(f) for f in frames],  # decoded in each sample's second: where the freezes fell
        "sent_kbps_each_s": [round(b * 8 / max(i, 1e-3) / 1000) for b, i in zip(
            _growth(sender, "outbound-rtp", "video", "bytesSent"), intervals, strict=False)],
    }


SUSTAINED_FRAMES = 10


def recovered_at(polls: list[tuple[float, int]]) -> tuple[float, bool] | None:
    """From (seconds after the link came back, frames decoded since) polls: when decoding resumed
    for good (``SUSTAINED_FRAMES`` more within a second of the first frame of the run), or None
    while that cannot be told yet."""
    for i, (at, frames) in enumerate(polls):
        before = polls[i - 1][1] if i else 0
        if frames <= before:
            continue
        later = [n for t, n in polls[i:] if t - at <= 1.0]
        if later[-1] - before >= SUSTAINED_FRAMES:
            return round(at, 2), True
        if polls[-1][0] - at <= 1.0:
            return None  # this run may still make it
    return None


def fmt_s(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


WORSE = {"fps": min, "frozen_s_per_min": max, "audio_concealed_pct": max, "loss_pct": max,
         "connected_pct": min, "recovery_s": max}


def worse_of(w2c: dict[str, Any], c2w: dict[str, Any]) -> dict[str, Any]:
    """The worse of the two directions for each headline figure (a missing figure is the worse)."""
    out: dict[str, Any] = {}
    for name, pick in WORSE.items():
        values = [d.get(name) for d in (w2c, c2w) if name in d]
        if values:
            out[name] = None if any(v is None for v in values) else pick(values)
    return out


# ---------------------------------------------------------------- one profile


METRICS_TOKEN = os.urandom(12).hex()  # the bench's own server's /metrics: the relay's counters over a window
RELAY_COUNTERS = {  # figure in the JSON: metric (a revision without it: left out)
    "gaps_recovered": 'yunbang_relay_gaps_total{outcome="recovered"}',
    "gaps_skipped": 'yunbang_relay_gaps_total{outcome="skipped"}',
    "keyframe_waits": "yunbang_relay_keyframe_waits_total",
    "plis_sent": "yunbang_relay_plis_sent_total",
    "nacks_sent": "yunbang_relay_nacks_sent_total",
    "retransmitted": "yunbang_relay_retransmitted_packets_total",
    "retransmits_refused": "yunbang_relay_retransmits_refused_total",
}


async def relay_counters(base: str) -> dict[str, float]:
    """The relay's counters now (empty when the server under test has no /metrics)."""
    try:
        async with aiohttp.ClientSession() as http, http.get(
                f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}) as reply:
            if reply.status != 200:
                return {}
            text = await reply.text()
    except aiohttp.ClientError:
        return {}
    values = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {name: float(values[metric]) for name, metric in RELAY_COUNTERS.items() if metric in values}


class Bench:
    def __init__(self, link: Link, base: str, worker_api: Api, clerk_api: Api, item_id: int,
                 worker_browser: Browser, worker: Page, clerk: Page, quick: bool, window: float, settle: float, loads: int) -> None:
        self.link, self.base, self.worker_api, self.clerk_api, self.item_id = link, base, worker_api, clerk_api, item_id
        self.worker_browser, self.worker, self.clerk = worker_browser, worker, clerk
        self.quick, self.window, self.settle, self.loads = quick, window, settle, loads

    async def sample(self) -> tuple[float, dict[str, Any], dict[str, Any]]:
        at = time.perf_counter()
        clerk, worker = await asyncio.gather(self.clerk.evaluate(SAMPLE), self.worker.evaluate(SAMPLE))
        return at, clerk, worker

    async def start_call(self) -> tuple[dict[str, Any], float | None, float | None]:
        """Take a ticket, call it; seconds from 叫号 until the clerk and the worker decode each other."""
        ticket = await self.worker_api.call("POST", "/api/tickets", {"item_id": self.item_id,
                                                                      "resident": {"name": "弱网测试群众"}})
        await worker_waiting(self.worker)
        button = self.clerk.locator("[data-testid=call-next]")
        for _ in range(400):
            if await button.is_visible() and await button.is_enabled():
                break
            await asyncio.sleep(0.05)
        started = time.perf_counter()
        await button.click()
        worker_cam = f"u{self.worker_api.user['id']}:camera"
        clerk_cam = f"u{self.clerk_api.user['id']}:camera"
        limit = 20 if self.quick else 40
        clerk_steps: list[str] = []
        worker_steps: list[str] = []
        times = await asyncio.gather(first_frame(self.clerk, worker_cam, started, limit, clerk_steps),
                                     first_frame(self.worker, clerk_cam, started, limit, worker_steps))
        log(f"  join: the clerk {' → '.join(clerk_steps)}, decoded {fmt_s(times[0])}; "
            f"the worker {' → '.join(worker_steps)}, decoded {fmt_s(times[1])}")
        return ticket, times[0], times[1]

    async def end_call(self, ticket: dict[str, Any]) -> None:
        try:
            await self.clerk_api.call("POST", f"/api/tickets/{ticket['id']}/start")
            await self.clerk_api.call("POST", f"/api/tickets/{ticket['id']}/complete",
                                      {"result": "materials_incomplete"})
            await self.worker_api.call("POST", f"/api/tickets/{ticket['id']}/rating", {"score": 5})
            await self.clerk.locator("[data-testid=current-ticket]").wait_for(state="hidden", timeout=20000)
        except Exception as exc:  # a broken call must not stop the other profiles
            log(f"  ending the call: {exc}")
            await self.clerk.reload()

    async def recovery(self, page: Page, baseline: dict[str, int], back: float, limit: float) -> tuple[float, bool]:
        """Seconds from ``back`` to the first frame decoded of a run that goes on (at least
        ``SUSTAINED_FRAMES`` within the next second: one stale frame finished by a late packet and then
        a wait for a keyframe is not a recovery)."""
        polls: list[tuple[float, int]] = []
        while time.perf_counter() - back < limit + 1:
            now = await page.evaluate(FRAMES)
            polls.append((time.perf_counter() - back,
                          sum(max(0, frames - baseline.get(key, 0)) for key, frames in now.items())))
            found = recovered_at(polls)
            if found is not None:
                return found
            await asyncio.sleep(0.05)
        return round(limit, 2), False

    async def outage(self, blackout_s: float, after_s: float) -> list[Any]:
        """Cut the link both ways for ``blackout_s``; how long after it is back each page decodes again
        (the clerk's, the worker's) and when the later one did."""
        await asyncio.sleep(after_s)
        await self.link.blackout(True)
        await asyncio.sleep(blackout_s)
        baselines = await asyncio.gather(self.clerk.evaluate(FRAMES), self.worker.evaluate(FRAMES))
        await self.link.blackout(False)
        back = time.perf_counter()
        clerk, worker = await asyncio.gather(self.recovery(self.clerk, baselines[0], back, 30),
                                             self.recovery(self.worker, baselines[1], back, 30))
        return [clerk, worker, time.perf_counter()]

    async def profile(self, profile: Profile) -> dict[str, Any]:
        await self.link.shape(profile)
        result: dict[str, Any] = {}
        if profile.name == "constrained":
            result.update(await cold_loads(self.worker_browser, self.base, self.loads))
        ticket, clerk_s, worker_s = await self.start_call()
        join_s = None if clerk_s is None or worker_s is None else max(clerk_s, worker_s)
        result["join_s"] = round(join_s, 2) if join_s is not None else None
        if join_s is None:
            shots = ROOT / "var" / "weak_link"
            shots.mkdir(parents=True, exist_ok=True)
            for who, page in (("clerk", self.clerk), ("worker", self.worker)):
                with contextlib.suppress(Exception):
                    await page.screenshot(path=str(shots / f"{profile.name}-{who}.png"))
            state = await self.worker.evaluate(
                "({live: window.yb.live.status.state, reconnects: window.yb.live.status.reconnects,"
                " call: window.yb.call ? window.yb.call.state.phase : null,"
                " waiting: !!document.querySelector('[data-testid=waiting]')})")
            log(f"  the worker's page: {state}")
            seen = {"the clerk": clerk_s, "the worker": worker_s}
            log(f"  {profile.name}: within {20 if self.quick else 40} s of 叫号, "
                + "; ".join(f"{who} decoded {'nothing' if t is None else f'a frame after {t:.2f} s'}"
                            for who, t in seen.items()) + f" (screenshots in {shots})")
        else:
            log(f"  both pages decode each other ({result['join_s']} s after 叫号)")
        await asyncio.sleep(self.settle)
        counted = await relay_counters(self.base)
        samples = [await self.sample()]
        started = samples[0][0]
        outage: asyncio.Task[list[Any]] | None = None
        if profile.blackout_s:
            outage = asyncio.create_task(self.outage(profile.blackout_s, 0.5 if self.quick else 20.0))
        window = self.window + (profile.blackout_s if self.quick else 0)
        while time.perf_counter() - started < window or (outage and not outage.done()):
            await asyncio.sleep(max(0.0, samples[-1][0] + 1 - time.perf_counter()))
            samples.append(await self.sample())
            if outage and outage.done():  # the window goes on at least a second past the later recovery
                window = max(window, outage.result()[2] - started + 1)
        recovery = outage.result()[:2] if outage else []
        after = await relay_counters(self.base)
        await self.end_call(ticket)
        times = [t - started for t, _, _ in samples]
        clerk = [c for _, c, _ in samples]
        worker = [w for _, _, w in samples]
        w2c = direction_figures(clerk, worker, times, True, profile.rate_kbit)
        c2w = direction_figures(worker, clerk, times, False, profile.rate_kbit)
        if recovery:
            (w2c["recovery_s"], w2c["recovered"]), (c2w["recovery_s"], c2w["recovered"]) = recovery
        result.update(worse_of(w2c, c2w))
        result["window_s"] = round(times[-1], 1)
        result["w2c"], result["c2w"] = w2c, c2w
        if counted and after:  # both directions' streams together, over the window
            result["relay"] = {name: int(after[name] - counted.get(name, 0)) for name in after}
        return result


# ---------------------------------------------------------------- printing


COLUMNS = [("fps", "fps"), ("frozen_s_per_min", "frozen s/min"), ("freezes", "freezes"),
           ("resolution", "resolution"), ("sent_kbps", "sent kbps"), ("recv_kbps", "recv kbps"),
           ("link_kbps", "link kbps"), ("loss_pct", "loss %"), ("audio_concealed_pct", "audio concealed %"),
           ("rtt_ms", "rtt ms"), ("connected_pct", "connected %"), ("recovery_s", "recovery s")]


def table(name: str, profile: Profile, result: dict[str, Any]) -> str:
    link = "no shaping" if not profile.rate_kbit else \
        f"{profile.rate_kbit} kbit/s, {profile.delay_ms:g} ms one way, {profile.loss * 100:g} % loss, each way"
    if profile.blackout_s:
        link = f"clean, cut both ways for {profile.blackout_s:g} s"
    joined = "the pages never both decoded" if result.get("join_s") is None else f"join {result['join_s']} s"
    head = [f"{name}: {link}; window {result.get('window_s')} s, {joined}"]
    if "first_load_s" in result:
        head[0] += (f", first page load {result['first_load_s']} s median of {len(result['first_loads_s'])}, "
                    f"worst {result['first_load_max_s']} s ({result['first_load_kb']} KB)")
    columns = [(key, title) for key, title in COLUMNS if key in result["w2c"] or key in result["c2w"]]
    rows = [["", *(title for _, title in columns)]]
    for label, key in (("W→C", "w2c"), ("C→W", "c2w")):
        rows.append([label, *("-" if result[key].get(k) is None else str(result[key].get(k)) for k, _ in columns)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  " + "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=False)) for row in rows]
    if result.get("relay"):
        lines.append("  relay: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result["relay"].items()))
    return "\n".join(head + lines)


TARGETS = [("lossy", "frozen_s_per_min", "<=", 0.5), ("constrained", "fps", ">=", 15),
           ("constrained", "frozen_s_per_min", "<=", 1.0), ("constrained", "first_load_s", "<=", 5.0),
           ("poor", "audio_concealed_pct", "<=", 10), ("poor", "connected_pct", ">=", 95),
           ("outage", "recovery_s", "<=", 1.0)]


def verdicts(results: dict[str, Any]) -> list[str]:
    out = []
    for profile, key, op, limit in TARGETS:
        value = results.get(profile, {}).get(key)
        if profile not in results:
            continue
        met = value is not None and (value <= limit if op == "<=" else value >= limit)
        out.append(f"{profile}.{key} = {value} (target {op} {limit}): {'met' if met else 'NOT met'}")
    return out


# ---------------------------------------------------------------- main


async def measure(tree: Path, names: list[str], quick: bool, window: float, settle: float,
                  loads: int) -> dict[str, Any]:
    dist = tree / "web-client" / "dist"
    if not (dist / "index.html").is_file():
        raise SystemExit(f"{dist} is missing: run `make web` first")
    link = Link()
    scratch = Path(tempfile.mkdtemp(prefix="yb-weak-"))
    wrapper = scratch / "chromium-in-namespace"
    keep = True
    try:
        await link.open()
        wrapper.write_text(f"#!/bin/sh\nexec ip netns exec {link.ns} {CHROMIUM} \"$@\"\n")
        wrapper.chmod(0o755)
        port = free_port()
        origin = [f"--unsafely-treat-insecure-origin-as-secure=http://{link.host_ip}:{port}"]
        async with async_playwright() as pw:
            browsers = asyncio.gather(  # started while the app's data is made
                pw.chromium.launch(executable_path=CHROMIUM, args=ARGS + origin, headless=True),
                pw.chromium.launch(executable_path=str(wrapper), args=ARGS + origin, headless=True))
            async with platform(tree, link.host_ip, port, scratch) as base, aiohttp.ClientSession() as http:
                clerk_browser, worker_browser = await browsers
                log(f"the app listens on {base}; the worker's browser is in namespace {link.ns}")
                results = await profiles(link, base, http, clerk_browser, worker_browser, names, quick, window,
                                         settle, loads, scratch)
        keep = bool(os.environ.get("YB_WEAK_LINK_KEEP"))  # the server's log, to read what the relay did
        return results
    finally:
        if keep:
            log(f"server log and screenshots: {scratch} (kept)")
        else:
            run("rm", "-rf", str(scratch), check=False)
        await link.close()


async def profiles(link: Link, base: str, http: aiohttp.ClientSession, clerk_browser: Browser,
                   worker_browser: Browser, names: list[str], quick: bool, window: float, settle: float,
                   loads: int, scratch: Path) -> dict[str, Any]:
    worker_api = await Api(http, base).login("worker1")
    clerk_api = await Api(http, base).login("clerk4")
    item_id = (await worker_api.call("GET", "/api/items?q=gljt"))[0]["id"]
    clerk = await log_in(await person(clerk_browser, base), "clerk4")
    await clerk.wait_for_url("**/app/clerk")
    await clerk.locator("[data-testid=window-choice]", has_text="民政").click()
    await link.shape(PROFILES["clean"])
    worker = await log_in(await person(worker_browser, base), "worker1")
    await worker.wait_for_url(lambda url: "/app/login" not in url)
    log("both pages logged in")
    bench = Bench(link, base, worker_api, clerk_api, item_id, worker_browser, worker, clerk, quick, window, settle,
                  loads)
    results: dict[str, Any] = {}
    for name in names:
        log(f"profile {name} ...")
        try:
            results[name] = await bench.profile(PROFILES[name])
        except Exception:
            for who, page in (("clerk", clerk), ("worker", worker)):
                with contextlib.suppress(Exception):
                    await page.screenshot(path=str(scratch / f"{who}.png"))
            raise
        print(table(name, PROFILES[name], results[name]), flush=True)
    log("profiles measured")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s windows instead of 60 s (under a minute in all)")
    parser.add_argument("--window", type=float, help="seconds measured per profile (default 60; --quick 3)")
    parser.add_argument("--settle", type=float, help="seconds between both pages decoding and the window "
                                                     "(default 5; --quick 0.5)")
    parser.add_argument("--profile", action="append", choices=list(PROFILES), help="run only this profile (repeatable)")
    parser.add_argument("--loads", type=int, help="cold page loads through the constrained link (default 5; --quick 1)")
    parser.add_argument("--ref", help="measure this git revision instead of the working tree (e.g. the 'before')")
    args = parser.parse_args(argv)
    window = args.window or (3.0 if args.quick else 60.0)
    settle = args.settle if args.settle is not None else (0.5 if args.quick else 5.0)
    names = args.profile or list(PROFILES)
    loads = args.loads or (1 if args.quick else 5)
    started = time.perf_counter()

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    if args.ref:
        with checked_out(args.ref) as tree:
            results = asyncio.run(measure(tree, names, args.quick, window, settle, loads))
        revision = run("git", "-C", str(ROOT), "rev-parse", "--short", args.ref).stdout.strip()
    else:
        results = asyncio.run(measure(ROOT, names, args.quick, window, settle, loads))
        revision = run("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD").stdout.strip()
        if run("git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no").stdout.strip():
            revision += "+changes"
    for line in verdicts(results):
        print(line)
    elapsed = time.perf_counter() - started
    print(f"finished in {elapsed:.0f} s")
    print(json.dumps({**results, "revision": revision, "quick": args.quick, "window_s": window,
                      "duration_s": round(elapsed)}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
