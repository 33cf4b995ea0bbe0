"""Login flood benchmark: does a flood of wrong passwords stall the other writes?

What is measured
----------------
The real app (``create_app``) on SQLite in a temporary data dir, served by aiohttp's test
server, driven over HTTP on loopback. SQLite has one writer at a time per process; a login used
to compute its argon2 hash inside that write lock, so while 16 wrong passwords were being
checked every other write waited (a ticket take measured 1.97 s during such a flood, 9 ms alone).
Now the hash runs between two short transactions.

1. alone: a worker takes tickets one after another (each take is a write transaction with an
   audit row); ``take_alone_p50_ms`` / ``p95``.
2. flood: the same takes while ``--flood`` concurrent clients keep sending wrong passwords for
   other accounts (each from its own forwarded address, so throttling does not end the flood:
   the proxy is trusted for the benchmark); ``take_flood_p50_ms`` / ``p95`` / ``max``.

``ratio_flood_vs_alone`` = flood p50 ÷ alone p50: how much slower a write becomes while a login
flood runs (1.0 = not at all; the 2 cores are shared with the argon2 hashing, so some slowdown
is CPU, not locking). ``logins_per_s`` is the flood's rate of answered logins. The last line is
JSON.

Usage: ``python bench/login.py [--quick] [--takes N] [--flood N]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

# Run as a script, this file's folder comes first on sys.path, where bench/queue.py would
# shadow the standard library's queue: take it out, put the project root in.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

from server.app import create_app  # noqa: E402
from server.config import QueueRules, ServiceHours, Settings  # noqa: E402
from server.db import Database  # noqa: E402
from server.migrate import upgrade  # noqa: E402
from server.seed import seed_demo  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


async def run(takes: int, flood: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await asyncio.to_thread(upgrade, url)
        db = Database(url)
        await seed_demo(db)
        await db.dispose()
        settings = Settings(data_dir=Path(tmp) / "data", database_url=url, secret_key="b" * 40,
                            monitor_interval_seconds=3600, trusted_proxies=("127.0.0.0/8",),
                            queue=QueueRules(service_hours=ServiceHours.parse("always")))
        server = TestServer(create_app(settings, run_monitor=False))
        await server.start_server()
        base = str(server.make_url("")).rstrip("/")
        try:
            async with ClientSession() as http:
                async def post(path: str, body: object, token: str | None = None, address: str = "10.0.0.1") -> int:
                    headers = {"X-Forwarded-For": address}
                    if token:
                        headers["Authorization"] = f"Bearer {token}"
                    async with http.post(base + path, json=body, headers=headers) as r:
                        await r.read()
                        return r.status

                async with http.post(base + "/api/auth/login", json={"username": "worker1", "password": "demo12345"}) as r:
                    token = (await r.json())["token"]
                async with http.get(base + "/api/items?q=gljt", headers={"Authorization": f"Bearer {token}"}) as r:
                    item = (await r.json())[0]["id"]
                counter = iter(range(10**6))

                async def take() -> float:
                    started = time.perf_counter()
                    status = await post("/api/tickets", {"item_id": item, "resident": {"name": f"群众{next(counter)}"}}, token)
                    assert status == 201, status
                    return (time.perf_counter() - started) * 1000

                for _ in range(3):
                    await take()
                alone = [await take() for _ in range(takes)]

                stop = asyncio.Event()
                answered = 0

                async def guesser(n: int) -> None:
                    nonlocal answered
                    i = 0
                    while not stop.is_set():
                        await post("/api/auth/login", {"username": f"clerk{1 + n % 4}", "password": "wrong"},
                                   address=f"10.{n}.{i // 250}.{i % 250 + 1}")
                        answered += 1
                        i += 1

                tasks = [asyncio.create_task(guesser(n)) for n in range(flood)]
                await asyncio.sleep(1.0)
                started = time.perf_counter()
                during = [await take() for _ in range(takes)]
                elapsed = time.perf_counter() - started
                stop.set()
                await asyncio.gather(*tasks)
        finally:
            await server.close()
    return {
        "takes": takes, "flood": flood,
        "take_alone_p50_ms": pct(alone, 0.5), "take_alone_p95_ms": pct(alone, 0.95),
        "take_flood_p50_ms": pct(during, 0.5), "take_flood_p95_ms": pct(during, 0.95),
        "take_flood_max_ms": round(max(during), 2),
        "ratio_flood_vs_alone": round(statistics.median(during) / statistics.median(alone), 2),
        "logins_per_s": round(answered / (elapsed + 1.0), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="login flood vs other writes (SQLite)")
    parser.add_argument("--quick", action="store_true", help="fewer takes (done within a minute)")
    parser.add_argument("--takes", type=int)
    parser.add_argument("--flood", type=int, default=16)
    args = parser.parse_args()
    takes = args.takes or (20 if args.quick else 60)
    figures = asyncio.run(run(takes, args.flood))
    print(f"ticket take alone:            p50 {figures['take_alone_p50_ms']} ms, p95 {figures['take_alone_p95_ms']} ms")
    print(f"during {args.flood} failing logins:  p50 {figures['take_flood_p50_ms']} ms, "
          f"p95 {figures['take_flood_p95_ms']} ms, max {figures['take_flood_max_ms']} ms "
          f"({figures['logins_per_s']} logins/s answered)")
    print(f"ratio flood / alone (p50): {figures['ratio_flood_vs_alone']}")
    print(json.dumps({**figures, "quick": args.quick}))


if __name__ == "__main__":
    main()
