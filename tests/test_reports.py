"""统计报表: a day of the demo district played through the API (and the same week last year),
then every report figure checked against the figure computed by hand from that story, on SQLite
and PostgreSQL; the scope of a town supervisor; the CSV and XLSX exports; bad input."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from server import cli
from server.config import Settings
from server.domain import alerts, reports
from server.domain.reports import Period, percentile, period_of, same_period_last_year
from server.keys import DOMAIN, MONITOR
from tests.conftest import MONDAY_10, Api, Platform
from tests.helpers import district_item, item_named, take, window_of

LAST_YEAR_MONDAY_10 = datetime(2025, 11, 24, 10, 0, tzinfo=MONDAY_10.tzinfo)  # ISO week 48 of 2025 too


def at(platform: Platform, start: datetime, minutes: int) -> None:
    platform.clock.set(start + timedelta(minutes=minutes))


async def called(clerk: Api, expect: int, *, start: bool = True) -> None:
    reply = await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    assert reply.status == 200 and reply.body["id"] == expect, reply
    if start:
        assert (await clerk.post(f"/api/tickets/{expect}/start")).status == 200


async def completed(clerk: Api, ticket_id: int) -> None:
    reply = await clerk.post(f"/api/tickets/{ticket_id}/complete", {"result": "materials_incomplete"})
    assert reply.status == 200, reply


async def rated(worker: Api, ticket_id: int, score: int) -> None:
    assert (await worker.post(f"/api/tickets/{ticket_id}/rating", {"score": score})).status == 200


async def play_the_story(platform: Platform) -> dict[str, Any]:
    """Monday 23 November 2026 at the demo district (the clock moves; nothing sleeps):

    10:00 worker1 (高桥镇梁祝村) takes A, B, C, D for a district 民政 item and E for a town one
    10:05 clerk1 calls A (waited 5 min)            10:15 A completed (handled 10 min), rated 5
    10:16 the alert monitor runs: B, C, D and E have waited over 15 minutes (4 alerts), both
          民政 queues have waited over 10 (a yellow warning each); supervisor1 opens a tidal window
    10:20 clerk1 calls B (20 min)                  10:21 clerk1 invites expert1 and expert2
    10:22 expert1 accepts (60 s)                   10:22:30 expert2 declines (90 s)
    10:30 clerk4 calls E (30 min)                  10:36 E completed (6 min), rated 4
    10:40 B completed (20 min), rated 2            10:45 clerk1 calls C (45 min), no-show
    10:50 clerk1 calls D (50 min) and transfers it to the district's 社保 queue: still waiting, and
          since its take time goes with it, that queue's longest wait is 50 minutes: a red warning

    and the same Monday of ISO week 48 last year (24 November 2025): F called after 10 minutes,
    completed 10 minutes later, rated 5.
    """
    worker, clerk1, clerk4 = [await platform.login(n) for n in ("worker1", "clerk1", "clerk4")]
    supervisor = await platform.login("supervisor1")
    expert1, expert2 = await platform.login("expert1"), await platform.login("expert2")
    district_mz = await district_item(worker, "MZ")
    town_mz = await item_named(worker, "高龄津贴申领")
    org = (await worker.get("/api/org")).body
    sb = next(d for d in org["departments"] if d["code"] == "SB")

    start = LAST_YEAR_MONDAY_10
    at(platform, start, 0)
    f = await take(worker, district_mz["id"], "去年的群众")
    at(platform, start, 10)
    await called(clerk1, f["id"])
    at(platform, start, 20)
    await completed(clerk1, f["id"])
    await rated(worker, f["id"], 5)

    start = MONDAY_10
    at(platform, start, 0)
    a, b, c, d = [await take(worker, district_mz["id"], name) for name in ("甲", "乙", "丙", "丁")]
    e = await take(worker, town_mz["id"], "戊")
    at(platform, start, 5)
    await called(clerk1, a["id"])
    at(platform, start, 15)
    await completed(clerk1, a["id"])
    await rated(worker, a["id"], 5)
    at(platform, start, 16)
    async with platform.app[DOMAIN].unit() as uow:
        raised = await alerts.check(uow)
    assert sorted((x.kind, x.level) for x in raised) == [("wait_timeout", "yellow")] * 4 + [("warning", "yellow")] * 2
    tidal = await supervisor.post("/api/tidal-windows", {"department_id": district_mz["department_id"],
                                                         "clerk_id": clerk1.user["id"], "minutes": 60})
    assert tidal.status == 201, tidal
    at(platform, start, 20)
    await called(clerk1, b["id"])
    at(platform, start, 21)
    invited = await clerk1.post(f"/api/tickets/{b['id']}/consultations",
                                {"expert_ids": [expert1.user["id"], expert2.user["id"]]})
    assert invited.status == 201, invited
    by_expert = {i["expert_id"]: i["id"] for i in invited.body["invitations"]}
    at(platform, start, 22)
    assert (await expert1.post(f"/api/invitations/{by_expert[expert1.user['id']]}/accept")).status == 200
    platform.clock.set(start + timedelta(minutes=22, seconds=30))
    assert (await expert2.post(f"/api/invitations/{by_expert[expert2.user['id']]}/decline",
                               {"reason": "正在会商"})).status == 200
    at(platform, start, 30)
    await called(clerk4, e["id"])
    at(platform, start, 36)
    await completed(clerk4, e["id"])
    await rated(worker, e["id"], 4)
    at(platform, start, 40)
    await completed(clerk1, b["id"])
    await rated(worker, b["id"], 2)
    at(platform, start, 45)
    await called(clerk1, c["id"], start=False)
    for _ in range(2):
        assert (await clerk1.post(f"/api/tickets/{c['id']}/recall")).status == 200
    assert (await clerk1.post(f"/api/tickets/{c['id']}/no-show")).status == 200
    at(platform, start, 50)
    await called(clerk1, d["id"], start=False)
    moved = await clerk1.post(f"/api/tickets/{d['id']}/transfer", {"department_id": sb["id"]})
    assert moved.status == 200, moved
    at(platform, start, 60)
    return {"a": a["id"], "clerk1": clerk1.user["id"], "clerk4": clerk4.user["id"],
            "supervisor1": supervisor.user["id"], "supervisor2": (await platform.login("supervisor2")).user["id"], "mz": district_mz["department_id"],
            "sb": sb["id"], "district": district_mz, "town_item": town_mz["id"], "worker": worker}


def now_and_then(cell: dict[str, Any]) -> tuple[Any, Any]:
    return cell["current"], cell["previous"]


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r["values"] for r in report["rows"]}


async def test_the_report_figures_are_the_ones_counted_by_hand(platform: Platform) -> None:
    story = await play_the_story(platform)
    supervisor = await platform.login("supervisor1")

    week = await supervisor.get("/api/reports", dimension="department", period="week")
    assert week.status == 200, week
    r = week.body
    assert r["current"] == {"start": "2026-11-23", "end": "2026-11-29", "label": "2026年第48周（11月23日起）"}
    assert r["previous"]["start"] == "2025-11-24" and r["previous"]["end"] == "2025-11-30"
    total = r["total"]["values"]
    expected_total = {
        # this week: A–E; last year: F
        "tickets": (5, 1), "served": (3, 1), "no_shows": (1, 0), "transfers": (1, 0),
        # waits of A 300, B 1200, C 2700, E 1800 s (D was transferred): mean 1500; p90 is
        # interpolated at rank 0.9 × 3 = 2.7 → 1800 + 0.7 × (2700 − 1800) = 2430
        "wait_avg_s": (1500.0, 600.0), "wait_p90_s": (2430.0, 600.0),
        "handling_avg_s": (720.0, 600.0),  # A 600, B 1200, E 360
        "ratings": (3, 1), "good_rate": (66.7, 100.0), "bad_ratings": (1, 0),
        "wait_alerts": (4, 0), "yellow_warnings": (2, 0), "red_warnings": (1, 0),
        "tidal_opened": (1, 0), "experts_invited": (2, 0), "expert_response_avg_s": (75.0, None),
        # B's bad rating opened a 差评整改 work order, not answered yet; no certificate reminders
        "ledger_opened": (1, 0), "ledger_closed": (0, 0), "ledger_overdue": (0, 0), "bad_ratings_rectified": (0, 0),
        "rectified_on_time_rate": (0.0, None), "reminders_sent": (0, 0),
    }
    assert {k: now_and_then(total[k]) for k in expected_total} == expected_total
    assert total["tickets"]["change_pct"] == 400.0 and total["tickets"]["delta"] == 4
    assert total["good_rate"]["delta"] == -33.3 and total["no_shows"]["change_pct"] is None
    assert [m["key"] for m in r["metrics"]] == list(expected_total)

    rows = by_name(r)
    mz, sb = rows["民政"], rows["社保"]
    assert now_and_then(mz["tickets"]) == (4, 1) and now_and_then(sb["tickets"]) == (1, 0)
    assert now_and_then(sb["transfers"]) == (1, 0) and sb["wait_avg_s"]["current"] is None
    assert now_and_then(sb["red_warnings"]) == (1, 0) and mz["red_warnings"]["current"] == 0
    assert now_and_then(mz["wait_p90_s"]) == (2430.0, 600.0)  # the same four waits
    assert now_and_then(mz["wait_alerts"]) == (4, 0) and now_and_then(mz["tidal_opened"]) == (1, 0)
    assert now_and_then(mz["experts_invited"]) == (2, 0)

    clerks = (await supervisor.get("/api/reports", dimension="clerk", period="day")).body
    assert clerks["current"]["start"] == clerks["current"]["end"] == "2026-11-23"
    assert clerks["previous"]["start"] == "2025-11-23"  # the same date, a Sunday: nothing
    rows = {r["key"]: r["values"] for r in clerks["rows"]}
    assert now_and_then(rows[story["clerk1"]]["served"]) == (2, 0)  # A and B
    assert now_and_then(rows[story["clerk1"]]["wait_p90_s"]) == (2400.0, None)  # 300, 1200, 2700
    assert rows[story["clerk1"]]["handling_avg_s"]["current"] == 900.0
    assert now_and_then(rows[story["clerk4"]]["good_rate"]) == (100.0, None)
    assert rows[None]["tickets"]["current"] == 1  # D, waiting again since its transfer
    assert rows[story["clerk1"]]["experts_invited"]["current"] == 2
    assert rows[story["clerk1"]]["wait_alerts"]["current"] is None  # alerts know no clerk
    assert clerks["total"]["values"]["wait_alerts"]["current"] == 4  # but the total does
    assert next(r for r in clerks["rows"] if r["key"] is None)["name"] == "未叫号"

    centres = by_name((await supervisor.get("/api/reports", dimension="centre", period="month")).body)
    assert now_and_then(centres["高桥镇便民服务中心"]["tickets"]) == (1, 0)
    district = next(v for name, v in centres.items() if name != "高桥镇便民服务中心")
    assert now_and_then(district["tickets"]) == (4, 1)
    assert now_and_then(district["wait_alerts"]) == (3, 0) and centres["高桥镇便民服务中心"]["wait_alerts"]["current"] == 1

    towns = (await supervisor.get("/api/reports", dimension="town", period="year")).body
    # worker1's tickets are 高桥镇's wherever they were served; alerts and tidal windows belong
    # to the centre they were raised at
    assert [(t["name"][:3], t["values"]["tickets"]["current"], t["values"]["wait_alerts"]["current"])
            for t in towns["rows"]] == [("海曙区", 0, 3), ("高桥镇", 5, 1)]
    points = by_name((await supervisor.get("/api/reports", dimension="extension_point", period="year")).body)
    (point,) = points
    assert "梁祝" in point and now_and_then(points[point]["tickets"]) == (5, 1)
    items = {r["key"]: r["values"] for r in (await supervisor.get("/api/reports", dimension="item",
                                                                    period="year")).body["rows"]}
    assert now_and_then(items[story["town_item"]]["tickets"]) == (1, 0)
    assert now_and_then(items[story["district"]["id"]]["tickets"]) == (4, 1)

    year = (await supervisor.get("/api/reports", dimension="department", period="year")).body
    series = year["series"]
    assert series["buckets"][10] == "11月" and len(series["buckets"]) == 12
    assert series["current"]["tickets"][10] == 5 and series["previous"]["tickets"][10] == 1
    assert series["current"]["tickets"][9] == 0 and series["current"]["wait_avg_s"][10] == 1500.0
    assert series["current"]["tickets"][11] is None and series["previous"]["tickets"][11] == 0  # December: to come
    week = (await supervisor.get("/api/reports", period="week")).body["series"]
    assert week["current"]["tickets"] == [5, None, None, None, None, None, None]
    assert week["previous"]["tickets"] == [1, 0, 0, 0, 0, 0, 0]
    assert "wait_p90_s" not in series["current"]


async def test_a_town_supervisor_sees_only_their_towns_queues(platform: Platform) -> None:
    await play_the_story(platform)
    town = await platform.login("supervisor2")  # 高桥镇 only
    r = (await town.get("/api/reports", dimension="department", period="week")).body
    total = r["total"]["values"]
    assert now_and_then(total["tickets"]) == (1, 0)  # E
    assert now_and_then(total["wait_alerts"]) == (1, 0) and total["yellow_warnings"]["current"] == 1
    assert total["tidal_opened"]["current"] == 0 and total["experts_invited"]["current"] == 0
    assert [row["name"] for row in r["rows"]] == ["民政"]


async def test_the_report_downloads_as_csv_and_xlsx_with_chinese_headers(platform: Platform) -> None:
    await play_the_story(platform)
    supervisor = await platform.login("supervisor1")
    for fmt in ("csv", "xlsx"):
        async with platform.http.get(f"{platform.base}/api/reports/export",
                                     params={"dimension": "department", "period": "week", "format": fmt},
                                     headers={"Authorization": f"Bearer {supervisor.token}"}) as resp:
            assert resp.status == 200, await resp.text()
            body = await resp.read()
            disposition = resp.headers["Content-Disposition"]
        assert 'filename="report-department-week-2026-11-23.' + fmt + '"' in disposition
        assert unquote(disposition.split("filename*=UTF-8''")[1]) == f"统计报表_部门_周_2026-W48.{fmt}"
        if fmt == "csv":
            assert body.startswith("\ufeff".encode())
            lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        else:
            sheet = load_workbook(io.BytesIO(body))["统计报表"]
            lines = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        header, *rows = lines
        assert header[:4] == ["部门", "取号量本期", "取号量去年同期", "取号量同比（%）"]
        assert "等候时长P90（秒）本期" in header and "好评率（%）去年同期" in header
        total = rows[-1]
        assert total[0] == "合计"
        assert [float(total[i]) for i in (1, 2, 3)] == [5, 1, 400]
        assert float(total[header.index("等候时长P90（秒）本期")]) == 2430
        assert float(total[header.index("好评率（%）本期")]) == 66.7
    auditor = await platform.login("auditor1")
    trail = (await auditor.get("/api/audit", action="report.export")).body
    assert [e["detail"]["format"] for e in trail] == ["xlsx", "csv"]


async def test_bad_report_parameters_are_refused_and_only_overseers_read_reports(platform: Platform) -> None:
    supervisor = await platform.login("supervisor1")
    for params in ({"dimension": "planet"}, {"period": "decade"}, {"day": "2026-13-01"}, {"format": "pdf"}):
        reply = await supervisor.get("/api/reports/export", **params)
        assert (reply.status, reply.code) == (422, "invalid_input"), (params, reply)
    far = await supervisor.get("/api/reports", day="1999-01-01")
    assert (far.status, far.code) == (422, "report_day_out_of_range")
    for name in ("worker1", "clerk1", "expert1", "auditor1"):
        refused = await (await platform.login(name)).get("/api/reports")
        assert (refused.status, refused.code) == (403, "role_forbidden")


@pytest.mark.parametrize("kind, day, start, end, last_year", [
    ("day", "2028-02-29", "2028-02-29", "2028-03-01", "2027-02-28"),
    ("week", "2026-12-31", "2026-12-28", "2027-01-04", "2025-12-22"),  # ISO week 53 of 2026 → week 52 of 2025
    ("week", "2027-01-06", "2027-01-04", "2027-01-11", "2025-12-29"),  # ISO week 1 of 2027 → week 1 of 2026
    ("month", "2026-02-14", "2026-02-01", "2026-03-01", "2025-02-01"),
    ("year", "2026-07-01", "2026-01-01", "2027-01-01", "2025-01-01"),
])
def test_periods_and_the_same_period_last_year(kind: str, day: str, start: str, end: str, last_year: str) -> None:
    from datetime import date

    p = period_of(kind, date.fromisoformat(day))
    assert (p.start.isoformat(), p.end.isoformat()) == (start, end)
    earlier = same_period_last_year(p)
    assert earlier.start.isoformat() == last_year and earlier.kind == kind
    assert isinstance(earlier, Period)


def test_percentile_interpolates_like_percentile_cont() -> None:
    assert percentile([], 0.9) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([300, 1200, 1800, 2700], 0.9) == pytest.approx(2430)
    assert percentile(list(range(1, 11)), 0.9) == pytest.approx(9.1)


def test_every_metric_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "reports.md").read_text(encoding="utf-8")
    for m in reports.METRICS:
        assert f"`{m.key}`" in doc and m.label in doc, m.key
    for key, label in reports.PENDING:
        assert f"`{key}`" in doc and label in doc, key


def test_the_wait_percentile_from_buckets_is_exact_when_each_bucket_holds_alike_waits() -> None:
    """The documented bucket rule: by the minute for an hour, by ten minutes to three hours, then
    one bucket; a bucket's waits stand for their mean."""
    assert [reports.wait_bucket(s) for s in (0, 59.9, 60, 3599, 3600, 4199, 4200, 10799, 10800, 99999)] == \
        [0, 0, 1, 59, 60, 60, 61, 71, 72, 72]

    def hist(*waits: float) -> dict[int, list[float]]:
        h: dict[int, list[float]] = {}
        for w in waits:
            cell = h.setdefault(reports.wait_bucket(w), [0.0, 0.0])
            cell[0] += 1
            cell[1] += w
        return h

    assert reports.histogram_percentile({}, 0.9) is None
    assert reports.histogram_percentile(hist(300, 1200, 1800, 2700), 0.9) == pytest.approx(2430)
    # 610 and 650 share a bucket and stand for 630: percentile_cont would say 646
    assert reports.histogram_percentile(hist(100, 610, 650), 0.9) == pytest.approx(630)


async def report_of(platform: Platform, username: str, **ask: Any) -> dict[str, Any]:
    domain = platform.app[DOMAIN]
    async with domain.db.read() as s:
        user_id = (await s.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username})).scalar_one()
    actor = await domain.actor(user_id)
    async with domain.unit(write=False) as uow:
        return await reports.report(uow, actor, **ask)


async def test_a_report_from_rollups_equals_the_one_from_tickets(platform: Platform) -> None:
    story = await play_the_story(platform)
    asks = [{"dimension": d, "period": p} for d in reports.DIMENSIONS for p in reports.PERIODS]
    live = [await report_of(platform, who, **ask) for who in ("supervisor1", "supervisor2", "admin") for ask in asks]
    domain = platform.app[DOMAIN]
    async with domain.unit(write=False) as uow:
        assert await reports.rolled_days(uow, date(2025, 1, 1), date(2027, 1, 1)) == set()
    async with domain.unit() as uow:  # this day and last year's, every day between: from rollups now
        assert await reports.roll(uow, date(2025, 1, 1), date(2026, 11, 24)) == 692
        assert await reports.roll(uow, date(2025, 1, 1), date(2026, 11, 24)) == 692  # again: replaced
    async with domain.db.read() as s:
        rows = (await s.execute(text("SELECT dimension, monthly, sum(tickets_n) FROM report_rollups "
                                     "GROUP BY dimension, monthly"))).all()
    # by day: F and A–E; whole months: November 2025 (F) — November 2026 is not over
    assert sorted((d, bool(m), int(n)) for d, m, n in rows) == sorted(
        [(d, False, 6) for d in reports.DIMENSIONS] + [(d, True, 1) for d in reports.DIMENSIONS])
    async with domain.unit(write=False) as uow:  # whole months over every queue, or by queue for a town's
        assert [await reports._sees_every_queue(uow, await domain.actor(user_id))
                for user_id in (story["supervisor1"], story["supervisor2"])] == [True, False]
    rolled = [await report_of(platform, who, **ask) for who in ("supervisor1", "supervisor2", "admin") for ask in asks]
    assert rolled == live

    # the report reads the rollups, not the tickets, for rolled days ...
    async with domain.db.write() as s:
        await s.execute(text("UPDATE tickets SET status = 'cancelled' WHERE service_day = '2026-11-23'"))
    ask = {"dimension": "department", "period": "week"}
    assert (await report_of(platform, "supervisor1", **ask))["total"]["values"]["served"]["current"] == 3
    # ... until the day is rolled again
    async with domain.unit() as uow:
        await reports.roll(uow, date(2026, 11, 23), date(2026, 11, 24))
    assert (await report_of(platform, "supervisor1", **ask))["total"]["values"]["served"]["current"] == 0


async def test_a_rating_given_after_its_day_was_rolled_up_is_counted(platform: Platform) -> None:
    story = await play_the_story(platform)
    worker, clerk1 = story["worker"], await platform.login("clerk1")
    at(platform, MONDAY_10, 70)
    d = await clerk1.post(f"/api/windows/{window_of(clerk1)}/call-next")  # D, in 社保 since its transfer
    assert d.status == 200 and d.body["transfers"] == 1, d
    assert (await clerk1.post(f"/api/tickets/{d.body['id']}/start")).status == 200
    at(platform, MONDAY_10, 80)
    await completed(clerk1, d.body["id"])
    supervisor = await platform.login("supervisor1")
    platform.clock.set(MONDAY_10 + timedelta(days=4))  # Friday: Monday has settled
    ask = {"dimension": "department", "period": "week", "day": "2026-11-23"}
    first = (await supervisor.get("/api/reports", **ask)).body  # rolls Monday up on the way
    async with platform.app[DOMAIN].unit(write=False) as uow:
        assert date(2026, 11, 23) in await reports.rolled_days(uow, date(2026, 11, 23), date(2026, 11, 24))
    assert now_and_then(first["total"]["values"]["ratings"]) == (3, 1)
    await rated(worker, d.body["id"], 1)  # Friday's rating of Monday's ticket
    after = (await supervisor.get("/api/reports", **ask)).body
    assert now_and_then(after["total"]["values"]["ratings"]) == (4, 1)
    assert now_and_then(after["total"]["values"]["bad_ratings"]) == (2, 0)


async def test_the_monitor_rolls_settled_days_up_and_the_command_line_rolls_them_again(
        platform: Platform, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    await play_the_story(platform)
    domain = platform.app[DOMAIN]
    monday = date(2026, 11, 23)

    async def rolled() -> set[date]:
        async with domain.unit(write=False) as uow:
            return await reports.rolled_days(uow, monday, monday + timedelta(days=7))

    platform.clock.set(MONDAY_10 + timedelta(days=2, hours=12))
    await platform.app[MONITOR].run_once()
    assert await rolled() == set()  # Monday has not settled on Wednesday
    platform.clock.set(MONDAY_10 + timedelta(days=3))
    await platform.app[MONITOR].run_once()
    assert await rolled() == {monday}  # on Thursday it has
    ask = {"dimension": "department", "period": "day", "day": monday}
    assert (await report_of(platform, "supervisor1", **ask))["total"]["values"]["served"]["current"] == 3

    async with domain.db.write() as s:  # a fix made in the database by hand ...
        await s.execute(text("UPDATE tickets SET status = 'cancelled' WHERE service_day = '2026-11-23'"))
    monkeypatch.setenv("YUNBANG_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("YUNBANG_DATA_DIR", str(settings.data_dir))
    assert await asyncio.to_thread(cli.main, ["rollup", "--since", "2026-11-23", "--until", "2026-11-23"]) == 0
    assert (await report_of(platform, "supervisor1", **ask))["total"]["values"]["served"]["current"] == 0


async def test_the_ledger_and_reminder_figures_are_the_ones_counted_by_hand(platform: Platform) -> None:
    """After the story (B rated 2 at 10:40: a 差评整改 work order for 民政, due in 48 hours):

    11:00 clerk1 raises a 督办 item about A (due Thursday 11:00) that nobody answers
    11:10 clerk1 claims and answers B's work order (on time); 11:20 supervisor1 visits and closes it
    11:30 the monitor texts two certificate reminders (居住证, 20 and 5 days left)
    and the next Monday the week is looked at again: A's item went overdue on Thursday."""
    story = await play_the_story(platform)
    clerk1, supervisor = await platform.login("clerk1"), await platform.login("supervisor1")
    (rectify,) = (await supervisor.get("/api/ledger", source="rating")).body
    raised = await clerk1.post("/api/ledger", {"source": "case", "category": "materials_incomplete",
                                               "title": "缺少户籍证明", "ticket_id": story["a"]})
    assert raised.status == 201, raised
    at(platform, MONDAY_10, 70)
    assert (await clerk1.post(f"/api/ledger/{rectify['id']}/claim")).status == 200
    assert (await clerk1.post(f"/api/ledger/{rectify['id']}/answer", {"answer": "已向群众致歉并改进"})).status == 200
    at(platform, MONDAY_10, 80)
    assert (await supervisor.post(f"/api/ledger/{rectify['id']}/visit", {"verdict": "satisfied"})).status == 200
    assert (await supervisor.post(f"/api/ledger/{rectify['id']}/close", {})).status == 200
    at(platform, MONDAY_10, 90)
    admin = await platform.login("admin")
    imported = await admin.call("POST", "/api/certificates/import", headers_extra={"Content-Type": "text/csv"}, data=(
        "持证人,手机号,身份证号,证照类型,证照编号,到期日期\n"
        "甲,13900139001,,居住证,A-20,2026-12-13\n乙,13900139002,,居住证,B-5,2026-11-28\n").encode())
    assert imported.body["created"] == 2, imported
    await platform.app[MONITOR].run_once()

    keys = ("ledger_opened", "ledger_closed", "ledger_overdue", "bad_ratings_rectified", "rectified_on_time_rate")
    week = (await supervisor.get("/api/reports", dimension="department", period="week")).body
    total = week["total"]["values"]
    assert {k: now_and_then(total[k]) for k in keys} == {
        "ledger_opened": (2, 0), "ledger_closed": (1, 0), "ledger_overdue": (0, 0),  # nothing due yet
        "bad_ratings_rectified": (1, 0), "rectified_on_time_rate": (100.0, None)}
    assert now_and_then(by_name(week)["民政"]["ledger_opened"]) == (2, 0)
    assert week["pending"] == []
    everything = (await admin.get("/api/reports", dimension="item", period="week")).body
    assert now_and_then(everything["total"]["values"]["reminders_sent"]) == (2, 0)
    (residence,) = [r for r in everything["rows"] if r["name"] == "居住证办理"]
    assert now_and_then(residence["values"]["reminders_sent"]) == (2, 0)
    assert residence["values"]["ledger_opened"]["current"] is None  # the ledger knows no item

    platform.clock.set(MONDAY_10 + timedelta(days=7))
    later = (await supervisor.get("/api/reports", dimension="department", period="week", day="2026-11-23")).body
    assert now_and_then(later["total"]["values"]["ledger_overdue"]) == (1, 0)  # A's, since Thursday 11:00
    this_week = (await supervisor.get("/api/reports", dimension="department", period="week")).body
    assert now_and_then(this_week["total"]["values"]["ledger_overdue"]) == (1, 0)  # and still
    assert now_and_then(this_week["total"]["values"]["ledger_opened"]) == (0, 0)
