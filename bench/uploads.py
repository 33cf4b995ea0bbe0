"""Document upload benchmark: a 12-megapixel phone JPEG from first byte to three stored renditions.

What is measured
----------------
``uploads.service.UploadPipeline`` in-process, on the event loop the server uses (uvloop when
installed, as ``server/cli.py`` runs it), with a ``LocalStore`` and a staging folder in a
temporary directory and the server's default ``DocumentRules`` limits (20 MB, 40 MP, viewing
long side 4096 px, viewing copy at most 2560 px, thumbnail 320 px). HTTP, tickets and the database are not involved.

The photo is made once per run, in a child process (so its memory does not count), before
anything is timed: 4000×3000 pixels stored sideways with EXIF orientation 6, a phone's
make/model and GPS tags, a colour-gradient background with texture, an ID-card-like panel
with Chinese text and shapes, and fine sensor noise; JPEG quality 90, about 3 MB (the size is
printed).

Every upload goes the app's way (``server/uploading.py``): ``write()`` streams the file to
staging in 256 KB chunks from an async generator, then ``finish()`` reads it back, hashes it,
validates and processes it in the pipeline's worker processes (``uploads.images.process``: decode,
orientation, sRGB, clean full-size JPEG, watermark
``仅供“高龄津贴申领”办理使用 2026-11-23`` tiled over the viewing copy, thumbnail) and stores
the three renditions (each put fsyncs). Every upload has its own id, and ``known_sha256`` is
None so the duplicate shortcut never applies. Latency runs from before the first chunk is
written until ``finish()`` returned: upload → processed and stored.

1. warm-up: one processed and one store-only upload, untimed (font lookup, first imports).
2. store only (the baseline): the same ``write()`` to staging, then what ``finish()`` does
   with image processing switched off: read the staged file, hash it, ``LocalStore.put`` the
   raw bytes as one object, remove the staging file.
3. sequential: uploads one after the other; ``p50_ms`` / ``p95_ms`` (the target) come from
   here. ``process_p50_ms`` is the time a trip through the worker pool took (``images.process``
   plus handing the bytes over; the pipeline is subclassed for that timing only).
4. concurrent: 4 uploads in flight at all times (4 tasks sharing one list of uploads);
   ``images_per_s`` = uploads ÷ wall time of the phase. The pipeline's pool has 2 worker
   processes (its default, and this machine's core count), so 2 of the 4 uploads wait for a
   worker: latencies here include that queueing.

How to read it
--------------
``ratio_vs_store_only`` = processed p50 ÷ store-only p50 (sequential phases): how many times
longer an upload takes because its image is processed, compared with just storing the bytes.

Event-loop blocking: while the phases run, a ticker task sleeps 5 ms in a loop and records how
late each wake-up is (actual − expected). ``loop_block_max_ms`` / ``loop_block_p99_ms`` cover
all timed phases; the target is max ≤ 20 ms. The loop itself does little (uvloop's timers have
1 ms steps: an idle second before the phases shows that slack). Image work runs in worker
processes: with a thread pool the loop shared the GIL with Pillow, which holds it while it
encodes a JPEG into memory, and wake-ups were up to ~30 ms late; now the loop only competes
with the workers for the 2 cores.

``loop_thread_cpu_wait_ms`` is how long the event loop's thread sat runnable but waiting
for a CPU over the phase (``/proc/thread-self/schedstat``); loop lateness beyond that is
waiting for the GIL or work on the loop itself.

``other_cpu`` is how many cores other processes kept busy during a phase (``/proc/stat``
minus this process and its workers): the machine has 2 cores, so anything much above 0 steals
from the workers and inflates every figure here; the run is then worth repeating.

Memory: ``peak_rss_mb`` is the process's peak resident set (``getrusage`` ``ru_maxrss``);
``rss_before_mb`` is the resident set before the phases and ``peak_rss_increase_mb`` the
difference. Per phase, the peak is read from ``/proc/self/status`` VmHWM after resetting it
(``/proc/self/clear_refs``) where Linux allows that.

Usage: ``python bench/uploads.py [--quick] [--sequential N] [--concurrent N]``; ``--quick``
does 5 sequential and 8 concurrent uploads (under a minute), the full run 20 and 24. Human
lines come first; the last line printed is one JSON object with ``p50_ms``, ``p95_ms``,
``images_per_s``, ``peak_rss_mb``, ``ratio_vs_store_only`` and extras. The exit status is 1
when an upload went wrong (wrong size, objects or staging files left over), not when a target
is missed.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, where this file would shadow
# the project's ``uploads`` package (and bench/queue.py the standard library's ``queue``).
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

import argparse
import asyncio
import concurrent.futures
import hashlib
import io
import json
import math
import multiprocessing
import os
import random
import re
import resource
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from server.config import DocumentRules
from uploads import images
from uploads.service import Limits, StoredFile, UploadPipeline
from uploads.storage import LocalStore, new_key

CHUNK = 256 * 1024
WIDTH, HEIGHT = 4000, 3000  # as the sensor stores it; orientation 6 shows it 3000×4000
JPEG_QUALITY = 90
WATERMARK = "仅供“高龄津贴申领”办理使用 2026-11-23"
CONCURRENCY = 4
POOL_WORKERS = 2
SEQUENTIAL, QUICK_SEQUENTIAL = 20, 5
CONCURRENT, QUICK_CONCURRENT = 24, 8
TICK = 0.005
IDLE_SECONDS = 1.0
TARGET_P50_MS = 400.0
TARGET_LOOP_BLOCK_MS = 20.0
ORIENTATION, MAKE, MODEL, GPS_IFD = 0x0112, 0x010F, 0x0110, 0x8825


# --------------------------------------------------------------------------- the photo


def make_phone_jpeg() -> bytes:
    """A 12 MP JPEG as a phone writes it; ~200 MB of drawing, so run it in a child process.

    The same bytes every run in a fresh process (Pillow's noise comes from the C library's
    unseeded ``rand()``).
    """
    from PIL import Image, ImageChops, ImageDraw, ImageFont

    rng = random.Random(20261123)
    # Soft colour fields: a small random image blown up (like an out-of-focus background).
    small = Image.new("RGB", (16, 12))
    small.putdata([tuple(rng.randrange(60, 200) for _ in range(3)) for _ in range(16 * 12)])
    img = small.resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)
    # Mid-frequency texture (paper, table grain): noise at 1/8 resolution, scaled up.
    texture = Image.merge(
        "RGB",
        [
            Image.effect_noise((WIDTH // 8, HEIGHT // 8), 40).resize(
                (WIDTH, HEIGHT), Image.Resampling.BICUBIC
            )
            for _ in range(3)
        ],
    )
    img = Image.blend(img, texture, 0.25)
    # The document: an ID-card-like panel with Chinese text, a photo box, a stamp.
    draw = ImageDraw.Draw(img)
    font_path = images.find_cjk_font()
    font = ImageFont.truetype(font_path, 90, index=images._face_index(font_path) or 0)
    draw.rounded_rectangle(
        (700, 600, 3300, 2300), radius=80, fill=(236, 232, 222), outline=(120, 110, 100), width=8
    )
    lines = [
        "中华人民共和国居民身份证",
        "姓名 张三  性别 男  民族 汉",
        "出生 1948 年 3 月 12 日",
        "住址 浙江省宁波市海曙区",
        "公民身份号码 330203194803120000",
    ]
    for i, line in enumerate(lines):
        draw.text((800, 700 + i * 160), line, font=font, fill=(30, 30, 40))
    draw.rectangle((2600, 1450, 3150, 2150), fill=(180, 160, 150))
    draw.ellipse((300, 2400, 900, 2900), fill=(40, 90, 160))
    draw.ellipse((2000, 1900, 2400, 2250), outline=(200, 30, 30), width=14)
    # Sensor noise, zero-mean, σ 6 per channel: what makes a phone JPEG ~3 MB and not 1.
    noise = Image.merge("RGB", [Image.effect_noise((WIDTH, HEIGHT), 6) for _ in range(3)])
    img = ImageChops.add(img, noise, 1.0, -128)
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[MAKE], exif[MODEL] = "HUAWEI", "ALN-AL00"
    exif[GPS_IFD] = {1: "N", 2: (29.0, 51.0, 30.0), 3: "E", 4: (121.0, 33.0, 12.0)}
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=JPEG_QUALITY, exif=exif)
    return buf.getvalue()


def phone_jpeg_in_child() -> bytes:
    """Make the photo in a spawned process, so its ~200 MB of drawing stays out of our RSS."""
    with concurrent.futures.ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        return pool.submit(make_phone_jpeg).result()


# --------------------------------------------------------------------------- measuring


def percentile_ms(samples: list[float], p: float) -> float:
    """Nearest-rank percentile of durations in seconds, in milliseconds."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return round(ordered[rank - 1] * 1000, 2)


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def _status_kb(field_name: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    found = re.search(rf"^{field_name}:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) if found else None


def busy_cpu_seconds() -> float | None:
    """CPU time all processes on the machine have used (the ``cpu`` line of /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_queue_wait() -> float | None:
    """Seconds the calling thread has spent runnable but waiting for a CPU (schedstat)."""
    try:
        return int(Path("/proc/thread-self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def rss_mb() -> float | None:
    kb = _status_kb("VmRSS")
    return round(kb / 1024, 1) if kb is not None else None


class PhasePeak:
    """Peak RSS over one phase: VmHWM after resetting it via /proc/self/clear_refs.

    The reset also lowers what ``ru_maxrss`` reports for this process afterwards, so every
    reading taken before a reset is kept in ``process_peak_mb``.
    """

    def __init__(self) -> None:
        self.process_peak_mb = max_rss_mb()
        self.resettable = True

    def start(self) -> None:
        self.process_peak_mb = max(self.process_peak_mb, max_rss_mb())
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.resettable = False

    def stop(self) -> float | None:
        self.process_peak_mb = max(self.process_peak_mb, max_rss_mb())
        kb = _status_kb("VmHWM") if self.resettable else None
        return round(kb / 1024, 1) if kb is not None else None


class LoopTicker:
    """Sleeps TICK in a loop and records how late each wake-up came (seconds)."""

    def __init__(self) -> None:
        self.lateness: list[float] = []

    async def run(self) -> None:
        # perf_counter, not loop.time(): uvloop's clock has 1 ms steps. uvloop's timers do too,
        # so up to ~1 ms of lateness is the timer's own (see the idle figure).
        while True:
            expected = time.perf_counter() + TICK
            await asyncio.sleep(TICK)
            self.lateness.append(time.perf_counter() - expected)

    def mark(self) -> int:
        return len(self.lateness)

    def since(self, mark: int) -> list[float]:
        return self.lateness[mark:]


class TimedPipeline(UploadPipeline):
    """The app's pipeline, unchanged but for timing ``images.process`` through its worker pool."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.process_seconds: list[float] = []
        self._lock = threading.Lock()

    async def _run_process(self, data: bytes, watermark: str | None) -> images.Processed:
        started = time.perf_counter()
        try:
            return await super()._run_process(data, watermark)
        finally:
            with self._lock:
                self.process_seconds.append(time.perf_counter() - started)


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    write_seconds: list[float] = field(default_factory=list)
    process_seconds: list[float] = field(default_factory=list)
    wall: float = 0.0
    cpu: float = 0.0
    loop_lateness: list[float] = field(default_factory=list)
    peak_mb: float | None = None
    other_cpu: float | None = None
    loop_cpu_wait: float | None = None

    def summary(self) -> dict[str, Any]:
        n = len(self.latencies)
        return {
            "uploads": n,
            "p50_ms": percentile_ms(self.latencies, 50),
            "p95_ms": percentile_ms(self.latencies, 95),
            "max_ms": percentile_ms(self.latencies, 100),
            "write_p50_ms": percentile_ms(self.write_seconds, 50),
            "process_p50_ms": percentile_ms(self.process_seconds, 50)
            if self.process_seconds
            else None,
            "images_per_s": round(n / self.wall, 2) if self.wall else 0.0,
            "cpu_ms_per_upload": round(self.cpu / n * 1000, 1) if n else 0.0,
            "loop_block_max_ms": percentile_ms(self.loop_lateness, 100),
            "loop_block_p99_ms": percentile_ms(self.loop_lateness, 99),
            "loop_ticks": len(self.loop_lateness),
            "loop_blocks_over_target": sum(
                1 for x in self.loop_lateness if x * 1000 > TARGET_LOOP_BLOCK_MS
            ),
            "peak_rss_mb": self.peak_mb,
            "other_cpu": self.other_cpu,
            "loop_thread_cpu_wait_ms": round(self.loop_cpu_wait * 1000, 1)
            if self.loop_cpu_wait is not None
            else None,
        }


# --------------------------------------------------------------------------- the uploads


class Bench:
    def __init__(self, root: Path, photo: bytes) -> None:
        rules = DocumentRules()
        self.photo = photo
        self.chunks = [photo[i : i + CHUNK] for i in range(0, len(photo), CHUNK)]
        self.store = LocalStore(root / "objects", b"bench-signing-key")
        self.pipeline = TimedPipeline(
            self.store,
            root / "staging",
            Limits(
                max_file_bytes=rules.max_file_bytes,
                max_pixels=rules.max_pixels,
                long_side=rules.long_side,
                viewing_side=rules.viewing_side,
                thumbnail_side=rules.thumbnail_side,
            ),
            workers=POOL_WORKERS,
        )
        self.staging = root / "staging"
        self.results: list[StoredFile] = []
        self.raw_keys: list[str] = []

    async def _chunks(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk

    @staticmethod
    def new_id(kind: str) -> str:
        return f"bench-{kind}-{uuid.uuid4().hex}"  # 8..64 of [A-Za-z0-9_-]

    async def processed(self, phase: Phase | None) -> None:
        upload_id = self.new_id("img")
        started = time.perf_counter()
        size = await self.pipeline.write(upload_id, 0, len(self.photo), self._chunks())
        written = time.perf_counter()
        result = await self.pipeline.finish(upload_id, watermark=WATERMARK, known_sha256=None)
        done = time.perf_counter()
        if size != len(self.photo) or not isinstance(result, StoredFile):
            raise RuntimeError(f"upload {upload_id} went wrong: {size} bytes, {result!r}")
        self.results.append(result)
        if phase is not None:
            phase.latencies.append(done - started)
            phase.write_seconds.append(written - started)

    async def store_only(self, phase: Phase | None) -> None:
        """The same write() and store path, with image processing switched off."""
        upload_id = self.new_id("raw")
        started = time.perf_counter()
        size = await self.pipeline.write(upload_id, 0, len(self.photo), self._chunks())
        written = time.perf_counter()
        path = self.staging / upload_id
        data = await asyncio.to_thread(path.read_bytes)
        hashlib.sha256(data).hexdigest()  # finish() hashes on the loop too
        key = new_key("documents/original")
        await self.store.put(key, data, content_type="image/jpeg")
        await self.pipeline.discard(upload_id)
        done = time.perf_counter()
        if size != len(self.photo):
            raise RuntimeError(f"store-only upload {upload_id} wrote {size} bytes")
        self.raw_keys.append(key)
        if phase is not None:
            phase.latencies.append(done - started)
            phase.write_seconds.append(written - started)

    def workers_cpu(self) -> float:
        """CPU seconds the pipeline's worker processes have used (they do the image work)."""
        total = 0.0
        for pid in list(getattr(self.pipeline.executor, "_processes", {}) or {}):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            except (OSError, IndexError, ValueError):
                continue
        return total

    def workers_peak_mb(self) -> float:
        """Sum of the worker processes' peak resident sets (VmHWM)."""
        total = 0
        for pid in list(getattr(self.pipeline.executor, "_processes", {}) or {}):
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return round(total / 1024, 1)

    async def run_phase(
        self, phase: Phase, count: int, tasks: int, upload: Any, ticker: LoopTicker, peak: PhasePeak
    ) -> Phase:
        remaining = iter(range(count))
        processed_before = len(self.pipeline.process_seconds)

        async def worker() -> None:
            for _ in remaining:
                await upload(phase)

        peak.start()
        busy, waited = busy_cpu_seconds(), run_queue_wait()  # this runs on the loop's thread
        mark, cpu, started = ticker.mark(), time.process_time() + self.workers_cpu(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(min(tasks, count))))
        phase.wall = time.perf_counter() - started
        phase.cpu = time.process_time() + self.workers_cpu() - cpu
        busy_after, waited_after = busy_cpu_seconds(), run_queue_wait()
        if waited is not None and waited_after is not None:
            phase.loop_cpu_wait = waited_after - waited
        if busy is not None and busy_after is not None:  # cores busy with other processes
            phase.other_cpu = round(max(0.0, (busy_after - busy - phase.cpu) / phase.wall), 2)
        phase.loop_lateness = ticker.since(mark)
        phase.peak_mb = peak.stop()
        phase.process_seconds = self.pipeline.process_seconds[processed_before:]
        return phase

    async def check(self) -> list[str]:
        """Everything stored, nothing left in staging, renditions as expected."""
        problems = []
        leftover = await asyncio.to_thread(lambda: sorted(p.name for p in self.staging.iterdir()))
        if leftover:
            problems.append(f"{len(leftover)} staging files left: {leftover[:3]}")
        upright = (HEIGHT, WIDTH)  # orientation 6 applied: portrait
        for r in self.results:
            if (r.width, r.height) != upright or r.content_type != "image/jpeg":
                problems.append(f"unexpected result {r.width}x{r.height} {r.content_type}")
                break
        keys = [
            k for r in self.results for k in (r.original_key, r.viewing_key, r.thumbnail_key)
        ] + self.raw_keys
        present = await asyncio.gather(*(self.store.exists(k) for k in keys))
        if not all(present):
            problems.append(f"{present.count(False)} of {len(keys)} stored objects missing")
        if self.results:
            original = await self.store.read(self.results[-1].original_key)
            if b"GPS" in original or b"HUAWEI" in original:
                problems.append("the clean original still carries EXIF/GPS")
        return problems


# --------------------------------------------------------------------------- report


def loop_kind() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


async def run(photo: bytes, sequential: int, concurrent: int, quick: bool) -> int:
    peak = PhasePeak()
    with tempfile.TemporaryDirectory(prefix="yunbang-bench-uploads-") as tmp:
        bench = Bench(Path(tmp), photo)
        try:
            await bench.store.ensure_ready()
            await bench.processed(None)  # warm-up: font lookup, first imports, thread start-up
            await bench.store_only(None)
            rss_before = rss_mb()
            peak.start()  # from here, peaks are the phases' own
            ticker = LoopTicker()
            ticking = asyncio.create_task(ticker.run())
            await asyncio.sleep(IDLE_SECONDS)
            idle = ticker.lateness[:]
            idle_peak = peak.stop()
            store_only = await bench.run_phase(
                Phase("store_only"), sequential, 1, bench.store_only, ticker, peak
            )
            seq = await bench.run_phase(
                Phase("sequential"), sequential, 1, bench.processed, ticker, peak
            )
            conc = await bench.run_phase(
                Phase("concurrent"), concurrent, CONCURRENCY, bench.processed, ticker, peak
            )
            ticking.cancel()
            peak.stop()
            problems = await bench.check()
            workers_peak = bench.workers_peak_mb()
        finally:
            await bench.pipeline.close()
        loop = loop_kind()

    timed = store_only.loop_lateness + seq.loop_lateness + conc.loop_lateness
    s, c, b = seq.summary(), conc.summary(), store_only.summary()
    # The server process plus its image workers, where the decoded pixels live.
    peak_rss = round(max(peak.process_peak_mb, max_rss_mb()) + workers_peak, 1)
    figures: dict[str, Any] = {
        "p50_ms": s["p50_ms"],
        "p95_ms": s["p95_ms"],
        "images_per_s": c["images_per_s"],
        "peak_rss_mb": peak_rss,
        "ratio_vs_store_only": round(s["p50_ms"] / b["p50_ms"], 1) if b["p50_ms"] else None,
        "store_only_p50_ms": b["p50_ms"],
        "store_only_p95_ms": b["p95_ms"],
        "loop_block_max_ms": percentile_ms(timed, 100),
        "loop_block_p99_ms": percentile_ms(timed, 99),
        "loop_block_idle_max_ms": percentile_ms(idle, 100),
        "loop_blocks_over_target": sum(1 for x in timed if x * 1000 > TARGET_LOOP_BLOCK_MS),
        "other_cpu_max": max(
            (r["other_cpu"] for r in (b, s, c) if r["other_cpu"] is not None), default=None
        ),
        "rss_before_mb": rss_before,
        "peak_rss_increase_mb": round(peak_rss - rss_before, 1) if rss_before is not None else None,
        "uploads": {
            "store_only": b["uploads"],
            "sequential": s["uploads"],
            "concurrent": c["uploads"],
        },
        "concurrency": CONCURRENCY,
        "pool_workers": POOL_WORKERS,
        "image_bytes": len(photo),
        "image_pixels": f"{WIDTH}x{HEIGHT}",
        "loop": loop,
        "phases": {"store_only": b, "sequential": s, "concurrent": c},
        "targets_met": None,
        "problems": problems,
        "quick": quick,
    }
    p50_met = figures["p50_ms"] <= TARGET_P50_MS
    loop_met = figures["loop_block_max_ms"] <= TARGET_LOOP_BLOCK_MS
    figures["targets_met"] = p50_met and loop_met

    print(
        f"photo        {WIDTH}x{HEIGHT} JPEG q{JPEG_QUALITY}, EXIF orientation 6 + GPS, "
        f"{len(photo) / 1e6:.2f} MB in {len(bench.chunks)} chunks of {CHUNK // 1024} KB; "
        f"loop: {loop}, pool: {POOL_WORKERS} worker processes",
        flush=True,
    )
    for label, r in (("store only", b), ("sequential", s), (f"{CONCURRENCY} at once", c)):
        extra = f", process p50 {r['process_p50_ms']} ms" if r["process_p50_ms"] is not None else ""
        print(
            f"{label:<12} {r['uploads']} uploads: p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, "
            f"max {r['max_ms']} ms (write p50 {r['write_p50_ms']} ms{extra}); "
            f"{r['images_per_s']} uploads/s, {r['cpu_ms_per_upload']} ms CPU each; "
            f"loop late max {r['loop_block_max_ms']} ms, p99 {r['loop_block_p99_ms']} ms; "
            f"peak RSS {r['peak_rss_mb']} MB; other processes used {r['other_cpu']} cores; "
            f"the loop's thread waited {r['loop_thread_cpu_wait_ms']} ms in all for a CPU",
            flush=True,
        )
    print(
        f"ratio        processed p50 / store-only p50 = {figures['ratio_vs_store_only']}",
        flush=True,
    )
    print(
        f"event loop   {TICK * 1000:g} ms ticker over the timed phases: late by max "
        f"{figures['loop_block_max_ms']} ms, p99 {figures['loop_block_p99_ms']} ms "
        f"({len(timed)} ticks, {figures['loop_blocks_over_target']} late by "
        f"> {TARGET_LOOP_BLOCK_MS:g} ms; "
        f"idle before: max {figures['loop_block_idle_max_ms']} ms)",
        flush=True,
    )
    print(
        f"memory       peak RSS {peak_rss} MB (before the phases {rss_before} MB, "
        f"+{figures['peak_rss_increase_mb']} MB; idle peak {idle_peak} MB)",
        flush=True,
    )
    print(
        f"target       p50 <= {TARGET_P50_MS:g} ms: {'met' if p50_met else 'NOT met'} "
        f"({figures['p50_ms']} ms)",
        flush=True,
    )
    print(
        f"target       event loop never blocked > {TARGET_LOOP_BLOCK_MS:g} ms: "
        f"{'met' if loop_met else 'NOT met'} ({figures['loop_block_max_ms']} ms)",
        flush=True,
    )
    if (figures["other_cpu_max"] or 0) > 0.2:
        print(
            f"warning      other processes kept up to {figures['other_cpu_max']} "
            f"of this machine's cores busy during a phase: the figures are inflated",
            flush=True,
        )
    for problem in problems:
        print(f"PROBLEM      {problem}", flush=True)
    print(json.dumps(figures, ensure_ascii=False), flush=True)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_SEQUENTIAL} sequential and {QUICK_CONCURRENT} concurrent uploads; "
        "under a minute",
    )
    parser.add_argument(
        "--sequential",
        type=int,
        default=None,
        help=f"uploads in the store-only and sequential phases (default {SEQUENTIAL})",
    )
    parser.add_argument(
        "--concurrent",
        type=int,
        default=None,
        help=f"uploads in the concurrent phase (default {CONCURRENT})",
    )
    args = parser.parse_args(argv)
    sequential = (
        args.sequential
        if args.sequential is not None
        else (QUICK_SEQUENTIAL if args.quick else SEQUENTIAL)
    )
    concurrent = (
        args.concurrent
        if args.concurrent is not None
        else (QUICK_CONCURRENT if args.quick else CONCURRENT)
    )
    if sequential < 1 or concurrent < 1:
        parser.error("--sequential and --concurrent must be at least 1")
    photo = phone_jpeg_in_child()
    try:  # the event loop the server runs on (server/cli.py)
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    return asyncio.run(run(photo, sequential, concurrent, args.quick))


if __name__ == "__main__":
    sys.exit(main())
