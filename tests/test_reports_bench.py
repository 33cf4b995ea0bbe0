"""bench/reports.py at a tiny size, on both databases: the synthetic year loads, every report
kind runs on it, and the year report counts every ticket loaded (this year's and last year's)."""

from __future__ import annotations

import pytest

from tests.conftest import PG_ADMIN
from tests.test_weak_link_bench import load

bench = load("reports")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_the_reports_bench_loads_a_year_and_times_every_report(kind: str) -> None:
    database = bench.sqlite_database() if kind == "sqlite" else bench.postgresql_database(PG_ADMIN)
    async with database as url:
        figures = await bench.run_backend(kind, url, 1500, 1)
    assert figures["tickets"] == figures["tickets_in_database"] == 1500
    assert figures["year_report_tickets"] == 1500
    assert figures["reports_timed"] == 24 and len(figures["table"]) == 24
    assert 0 < figures["report_p50_ms"] <= figures["report_p95_ms"] <= figures["report_max_ms"]
    assert figures["rolled_days"] >= 365 and figures["rollup_s"] > 0  # the year rolled up before timing
