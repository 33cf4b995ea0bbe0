"""Service hours (服务时间): when tickets are served live and when they become call-backs."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from server.config import QueueRules


def local(rules: QueueRules, moment: datetime) -> datetime:
    return moment.astimezone(ZoneInfo(rules.timezone))


def local_day(rules: QueueRules, moment: datetime) -> date:
    return local(rules, moment).date()


def day_start_utc(rules: QueueRules, day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(rules.timezone))


def is_service_day(rules: QueueRules, day: date) -> bool:
    if day in rules.holidays:
        return False
    hours = rules.service_hours
    return hours.always or any(day.weekday() in days for days, _, _ in hours.spans)


def is_open(rules: QueueRules, moment: datetime) -> bool:
    hours = rules.service_hours
    if hours.always:
        return True
    here = local(rules, moment)
    if here.date() in rules.holidays:
        return False
    now = here.time()
    return any(here.weekday() in days and start <= now < end for days, start, end in hours.spans)


def next_service_day(rules: QueueRules, moment: datetime) -> date:
    """The first service day that still has service hours ahead of ``moment``."""
    here = local(rules, moment)
    day = here.date()
    hours = rules.service_hours
    if is_service_day(rules, day) and not hours.always:
        if any(day.weekday() in days and here.time() < start for days, start, _ in hours.spans):
            return day
    for _ in range(400):
        day += timedelta(days=1)
        if is_service_day(rules, day):
            return day
    raise ValueError("no service day within a year: check YUNBANG_SERVICE_HOURS and holidays")
