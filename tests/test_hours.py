"""Service hours: after hours a ticket becomes a call-back served first the next service day."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from server.config import QueueRules, ServiceHours, Settings, SettingsError
from server.domain import hours
from tests.conftest import Platform
from tests.helpers import district_item, take, window_of

TZ = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ)


def test_default_hours_are_weekdays_nine_to_five() -> None:
    rules = QueueRules()
    assert hours.is_open(rules, at(23, 9))  # Monday
    assert not hours.is_open(rules, at(23, 8, 59))
    assert not hours.is_open(rules, at(23, 17))
    assert not hours.is_open(rules, at(28, 10))  # Saturday
    assert hours.next_service_day(rules, at(23, 18)) == date(2026, 11, 24)
    assert hours.next_service_day(rules, at(23, 7)) == date(2026, 11, 23)
    assert hours.next_service_day(rules, at(27, 18)) == date(2026, 11, 30)  # Friday evening → Monday


def test_holidays_and_always_open_centres() -> None:
    rules = QueueRules(holidays=frozenset({date(2026, 11, 24)}))
    assert not hours.is_open(rules, at(24, 10))
    assert hours.next_service_day(rules, at(23, 18)) == date(2026, 11, 25)
    always = QueueRules(service_hours=ServiceHours.parse("always"))
    assert hours.is_open(always, at(29, 3))


def test_service_hours_and_thresholds_come_from_the_environment() -> None:
    s = Settings.from_env({
        "YUNBANG_SERVICE_HOURS": "mon-fri 08:30-12:00,mon-fri 13:30-17:30,sat 09:00-12:00",
        "YUNBANG_HOLIDAYS": "2027-01-01",
        "YUNBANG_WAIT_ALERT_MINUTES": "10",
        "YUNBANG_PORT": "9000",
        "YUNBANG_DATABASE_URL": "postgresql+asyncpg://x@h/db",
    })
    assert s.port == 9000 and s.queue.wait_alert_minutes == 10
    assert s.database_url == "postgresql+asyncpg://x@h/db"
    assert hours.is_open(s.queue, at(28, 10)) and not hours.is_open(s.queue, at(23, 12, 30))
    assert date(2027, 1, 1) in s.queue.holidays
    for bad in ({"YUNBANG_SERVICE_HOURS": "weekdays"}, {"YUNBANG_PORT": "eighty"},
                {"YUNBANG_SERVICE_HOURS": "mon-fri 17:00-09:00"}, {"YUNBANG_HOLIDAYS": "tomorrow"}):
        with pytest.raises(SettingsError):
            Settings.from_env(bad)


async def test_after_hours_ticket_is_a_callback_served_first_next_morning(platform: Platform) -> None:
    worker = await platform.login("worker1")
    clerk = await platform.login("clerk1")
    supervisor = await platform.login("supervisor1")
    item = await district_item(worker, "MZ")
    platform.clock.set(at(23, 18, 30))
    evening = await take(worker, item["id"], "晚上来的群众")
    assert evening["callback"] is True and evening["service_day"] == "2026-11-24"
    late_call = await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    assert late_call.status == 204, "a call-back is not due before its service day"
    assert (await supervisor.get("/api/queues", department_id=item["department_id"])).body[0]["waiting"] == 0

    platform.clock.set(at(24, 9, 0))
    morning = await take(worker, item["id"], "早上来的群众")
    assert morning["callback"] is False and morning["position"] == 2
    first = await clerk.post(f"/api/windows/{window_of(clerk)}/call-next")
    assert first.body["id"] == evening["id"]


async def test_callback_waits_from_opening_time_not_from_the_evening(platform: Platform) -> None:
    from server.keys import MONITOR

    worker = await platform.login("worker1")
    item = await district_item(worker, "MZ")
    platform.clock.set(at(23, 18, 30))
    await take(worker, item["id"], "留言群众")
    platform.clock.set(at(24, 9, 10))
    assert [a for a in await platform.app[MONITOR].run_once() if a["kind"] == "wait_timeout"] == []
    platform.clock.set(at(24, 9, 16))
    raised = [a for a in await platform.app[MONITOR].run_once() if a["kind"] == "wait_timeout"]
    assert len(raised) == 1 and raised[0]["detail"]["waited_s"] == 16 * 60
