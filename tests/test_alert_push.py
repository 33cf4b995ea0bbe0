"""Alerts that reach people: a queue's warning is pushed to who answers for it through the
notifier — the department's supervisor by the staff robot (and a red one by SMS, to the centre's
head too), each with a link that acknowledges it without logging in; once per alert; an
unacknowledged red warning is pushed again every few minutes until someone acknowledges it or
the queue falls back. On SQLite and PostgreSQL, the clock moved."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from server.config import Settings
from server.keys import MONITOR
from tests.conftest import Api, Platform
from tests.helpers import take

BOSS, HEAD = "13900000002", "13900000001"  # supervisor2 (高桥镇 民政·社保), supervisor1 (the district's head)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_changes(queue=dataclasses.replace(settings.queue, yellow_waiting=2, red_waiting=3))


async def pushed(platform: Platform) -> list[dict[str, Any]]:
    """The alert messages in the outbox, oldest first."""
    messages = (await (await platform.login("admin")).get("/api/notifications")).body["messages"]
    return [m for m in reversed(messages) if m["kind"].startswith("alert_")]


def link_token(message: dict[str, Any]) -> str:
    found = re.search(r"/app/a/([0-9]+-[0-9]+-[A-Za-z0-9_-]+)", message["text"])
    assert found, message
    return found.group(1)


async def town_item(api: Api) -> dict[str, Any]:
    org = (await api.get("/api/org")).body
    mz = next(d for d in org["departments"] if d["code"] == "MZ")
    return (await api.get("/api/items", department_id=mz["id"], level="town")).body[0]


async def with_mobiles(platform: Platform) -> Api:
    admin = await platform.login("admin")
    users = {u["username"]: u for u in (await admin.get("/api/users", role="supervisor")).body}
    bad = await admin.call("PATCH", f"/api/users/{users['supervisor2']['id']}", json={"mobile": "12345"})
    assert (bad.status, bad.code) == (422, "phone_invalid"), bad
    for name, mobile in (("supervisor2", BOSS), ("supervisor1", HEAD)):
        done = await admin.call("PATCH", f"/api/users/{users[name]['id']}", json={"mobile": mobile})
        assert done.status == 200 and done.body["mobile"] == mobile[:3] + "****" + mobile[-4:], done
    return admin


async def test_a_red_warning_reaches_the_supervisor_and_the_head_once_and_again_until_acknowledged(
        platform: Platform) -> None:
    await with_mobiles(platform)
    worker = await platform.login("worker1")
    item = await town_item(worker)
    await take(worker, item["id"], "甲")
    await take(worker, item["id"], "乙")
    yellow = await pushed(platform)
    assert [(m["channel"], m["to"]) for m in yellow] == [("staff", "139****0002")], \
        "yellow: the department's supervisor, by the robot only"
    assert "黄色预警" in yellow[0]["text"] and "高桥镇" in yellow[0]["text"]

    await take(worker, item["id"], "丙")
    red = (await pushed(platform))[1:]
    assert sorted((m["channel"], m["to"]) for m in red) == [
        ("sms", "139****0001"), ("sms", "139****0002"), ("staff", "139****0001"), ("staff", "139****0002")], red
    assert all("红色预警" in m["text"] and "/app/a/" in m["text"] for m in red)
    monitor = platform.app[MONITOR]
    await monitor.run_once()
    assert len(await pushed(platform)) == 5, "once per alert"

    platform.clock.advance(minutes=9)
    await monitor.run_once()
    assert len(await pushed(platform)) == 5
    platform.clock.advance(minutes=2)
    await monitor.run_once()
    await monitor.run_once()
    again = (await pushed(platform))[5:]
    assert len(again) == 4 and all("再次提醒" in m["text"] for m in again), again

    anyone = platform.anonymous()
    mine = next(m for m in again if m["to"] == "139****0002" and m["channel"] == "staff")
    token = link_token(mine)
    seen = await anyone.get(f"/api/alert-links/{token}")
    assert seen.status == 200 and (seen.body["level"], seen.body["acknowledged_at"]) == ("red", None), seen
    assert seen.body["sent_to"] == "高桥镇中心 孔主任" and seen.body["department_name"] == "民政"
    forged = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    assert (await anyone.get(f"/api/alert-links/{forged}")).code == "alert_link_not_found"
    other = re.sub(r"^(\d+)-(\d+)-", lambda m: f"{m[1]}-{int(m[2]) + 1}-", token)
    assert (await anyone.post(f"/api/alert-links/{other}/acknowledge")).code == "alert_link_not_found"
    acked = await anyone.post(f"/api/alert-links/{token}/acknowledge")
    assert acked.status == 200 and acked.body["acknowledged_at"], acked
    supervisor2 = await platform.login("supervisor2")
    listed = next(a for a in (await supervisor2.get("/api/alerts")).body if a["level"] == "red")
    assert listed["acknowledged_by_id"] == supervisor2.user["id"], "acknowledged as whom the link was sent to"

    platform.clock.advance(minutes=11)
    await monitor.run_once()
    after = await pushed(platform)
    assert len([m for m in after if m["kind"] == "alert_warning"]) == 9, "acknowledged: not pushed again"
    timeouts = [m for m in after if m["kind"] == "alert_wait_timeout"]
    assert len(timeouts) == 3 and {(m["channel"], m["to"]) for m in timeouts} == {("staff", "139****0002")}, \
        "each ticket past 15 minutes: its department's supervisor, by the robot (no SMS by default)"
    platform.clock.advance(hours=25)
    assert (await anyone.get(f"/api/alert-links/{token}")).code == "alert_link_expired"


async def test_without_a_mobile_the_group_hears_it_naming_who_should_act(platform: Platform) -> None:
    worker = await platform.login("worker1")
    item = await town_item(worker)
    for name in ("甲", "乙"):
        await take(worker, item["id"], name)
    (message,) = await pushed(platform)
    assert (message["channel"], message["to"]) == ("staff", "") and "高桥镇中心 孔主任" in message["text"], message
    assert "/app/wall" in message["text"]
