"""The outbox (server/domain/notify.py, server/notify.py): messages kept for administrators by
default; through a signed webhook and a DingTalk-style robot, checked by a receiver process that
verifies signatures as the real ones do; tried again with back-off, never lost on a restart."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.config import NotifyRules, Settings, SettingsError
from server.domain import notify
from server.domain.clock import ManualClock
from server.keys import DOMAIN, NOTIFY
from server.notify import LEASE_SECONDS
from tests.conftest import Platform, _free_port

WEBHOOK_SECRET = "receiver-webhook-secret-0123456789"
ROBOT_SECRET = "SECreceiver-robot-secret"
PHONE = "13800138000"


class Receiver:
    def __init__(self, base: str) -> None:
        self.base = base

    def received(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.base + "/received", timeout=5) as answer:
            result: list[dict[str, Any]] = json.load(answer)
            return result

    def fail_next(self, count: int, status: int = 503) -> None:
        request = urllib.request.Request(self.base + "/control", method="POST",
                                         data=f'{{"fail": {count}, "status": {status}}}'.encode(),
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=5).close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.notify_receiver", str(port), WEBHOOK_SECRET, ROBOT_SECRET])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(base + "/received", timeout=1).close()
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the notification receiver did not start") from None
                time.sleep(0.1)
        yield Receiver(base)
    finally:
        proc.terminate()
        proc.wait(10)


@asynccontextmanager
async def running(settings: Settings, clock: ManualClock) -> AsyncIterator[Platform]:
    """The app, its loops not started: the test runs the dispatcher's passes itself."""
    app = create_app(settings, clock=clock, run_monitor=False)
    server = TestServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield Platform(server, http, clock, app)
    finally:
        await server.close()


def webhook(settings: Settings, receiver: Receiver, secret: str = WEBHOOK_SECRET) -> Settings:
    return settings.with_changes(notify=NotifyRules(sms="webhook", webhook_url=receiver.base + "/hook",
                                                    webhook_secret=secret))


async def outbox(platform: Platform, **query: Any) -> dict[str, Any]:
    reply = await (await platform.login("admin")).get("/api/notifications", **query)
    assert reply.status == 200, reply
    result: dict[str, Any] = reply.body
    return result


async def test_by_default_messages_are_kept_for_administrators_to_read(platform: Platform) -> None:
    admin, clerk = await platform.login("admin"), await platform.login("clerk1")
    sent = await admin.post("/api/notifications/test", {"channel": "sms", "to": PHONE})
    assert sent.status == 201, sent
    assert sent.body["state"] == "held" and sent.body["provider"] == "outbox"
    assert sent.body["to"] == "138****8000", "the number masked on the page"
    shown = await outbox(platform)
    assert [m["id"] for m in shown["messages"]] == [sent.body["id"]] and shown["counts"]["held"] == 1
    assert "测试消息" in shown["messages"][0]["text"]
    # bad input changes nothing
    for body, code in (({"channel": "sms", "to": "12345"}, "phone_invalid"), ({"channel": "sms"}, "phone_invalid"),
                       ({"channel": "fax", "to": PHONE}, "invalid_input")):
        refused = await admin.post("/api/notifications/test", body)
        assert refused.status == 422 and refused.code == code, refused
    assert len((await outbox(platform))["messages"]) == 1
    assert (await clerk.get("/api/notifications")).status == 403
    assert (await admin.get("/api/notifications", state="lost")).status == 422
    assert (await admin.post(f"/api/notifications/{sent.body['id']}/resend", {})).code == "notification_not_failed"
    assert (await admin.post("/api/notifications/999999/resend", {})).status == 404
    reads = (await (await platform.login("auditor1")).get("/api/audit", action="notification.read")).body
    assert reads and reads[0]["actor"] == "admin", "reading the outbox (one-time codes) is audited"


async def test_a_webhook_message_is_signed_tried_again_with_back_off_and_survives_a_restart(
        settings: Settings, clock: ManualClock, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    settings = webhook(settings, receiver)
    before = len(receiver.received())
    receiver.fail_next(2, 503)
    caplog.set_level(logging.INFO)
    async with running(settings, clock) as platform:
        message = (await (await platform.login("admin")).post("/api/notifications/test",
                                                              {"channel": "sms", "to": PHONE})).body
        assert message["state"] == "pending"
        dispatcher = platform.app[NOTIFY]
        assert await dispatcher.deliver_due() == 0, "the gateway is busy"
        shown = (await outbox(platform))["messages"][0]
        assert shown["attempts"] == 1 and shown["last_error"] == "HTTP 503" and shown["state"] == "pending"
        assert datetime.fromisoformat(shown["next_attempt_at"]) == clock.now() + notify_delay(settings, 1)
        assert await dispatcher.deliver_due() == 0 and len(receiver.received()) == before + 1, "not before its time"
        clock.advance(seconds=10)
        assert await dispatcher.deliver_due() == 0
        shown = (await outbox(platform))["messages"][0]
        assert shown["attempts"] == 2
        assert datetime.fromisoformat(shown["next_attempt_at"]) == clock.now() + notify_delay(settings, 2)
    # the node restarts before the third attempt: the message is still there, and goes
    clock.advance(seconds=20)
    async with running(settings, clock) as platform:
        assert await platform.app[NOTIFY].deliver_due() == 1
        shown = (await outbox(platform))["messages"][0]
        assert shown["state"] == "sent" and shown["attempts"] == 3 and shown["sent_at"]
        assert await platform.app[NOTIFY].deliver_due() == 0, "sent once"
    got = receiver.received()[before:]
    assert [g["answered"] for g in got] == [503, 503, 200] and all(g["valid"] for g in got), got
    assert {g["idempotency_key"] for g in got} == {f"yunbang-notification-{message['id']}"}
    assert got[-1]["body"]["to"] == PHONE and got[-1]["body"]["kind"] == "test" and got[-1]["body"]["attempt"] == 3
    assert PHONE not in caplog.text and "测试消息" not in caplog.text, "neither the number nor the text in the log"


def notify_delay(settings: Settings, attempts: int) -> timedelta:
    return timedelta(seconds=notify.retry_delay(settings.notify, attempts))


async def test_a_refused_message_fails_and_an_administrator_sends_it_again(
        settings: Settings, clock: ManualClock, receiver: Receiver) -> None:
    before = len(receiver.received())
    async with running(webhook(settings, receiver, secret="not-the-receivers-secret"), clock) as platform:
        admin = await platform.login("admin")
        message = (await admin.post("/api/notifications/test", {"channel": "sms", "to": PHONE})).body
        await platform.app[NOTIFY].deliver_due()
        shown = (await outbox(platform, state="failed"))["messages"]
        assert [m["id"] for m in shown] == [message["id"]], "a wrong signature is refused for good: no retries"
        assert shown[0]["attempts"] == 1 and shown[0]["last_error"] == "HTTP 401"
        assert [g["valid"] for g in receiver.received()[before:]] == [False], "the receiver checks the signature"
    receiver.fail_next(1, 400)
    async with running(webhook(settings, receiver), clock) as platform:
        admin = await platform.login("admin")
        again = await admin.post(f"/api/notifications/{message['id']}/resend", {})
        assert again.status == 200 and again.body["state"] == "pending" and again.body["attempts"] == 0
        assert await platform.app[NOTIFY].deliver_due() == 0
        assert (await outbox(platform))["messages"][0]["last_error"] == "HTTP 400"
        await admin.post(f"/api/notifications/{message['id']}/resend", {})
        assert await platform.app[NOTIFY].deliver_due() == 1
        assert (await outbox(platform))["counts"]["sent"] == 1
        resends = (await (await platform.login("auditor1")).get("/api/audit", action="notification.resend")).body
        assert len(resends) == 2


async def test_a_dingtalk_robot_gets_signed_staff_messages(
        settings: Settings, clock: ManualClock, receiver: Receiver) -> None:
    robot = NotifyRules(staff="dingtalk", dingtalk_url=receiver.base + "/robot/send?access_token=robot-token",
                        dingtalk_secret=ROBOT_SECRET)
    before = len(receiver.received())
    receiver.fail_next(1)
    async with running(settings.with_changes(notify=robot), clock) as platform:
        admin = await platform.login("admin")
        held = await admin.post("/api/notifications/test", {"channel": "sms", "to": PHONE})
        assert held.body["state"] == "held", "SMS stays in the outbox: only staff messages go to the robot"
        message = (await admin.post("/api/notifications/test", {"channel": "staff", "to": "13900139000"})).body
        assert message["provider"] == "dingtalk" and message["state"] == "pending"
        assert await platform.app[NOTIFY].deliver_due() == 0
        shown = (await outbox(platform, state="pending"))["messages"][0]
        assert shown["last_error"] == "errcode 130101: send too fast"
        clock.advance(seconds=10)
        assert await platform.app[NOTIFY].deliver_due() == 1
    got = receiver.received()[before:]
    assert [g["answered"] for g in got] == [130101, 0] and all(g["valid"] for g in got), got
    assert got[-1]["body"]["msgtype"] == "text" and "测试消息" in got[-1]["body"]["text"]["content"]
    assert got[-1]["body"]["at"]["atMobiles"] == ["13900139000"]


async def test_a_message_whose_dispatcher_died_mid_send_goes_after_its_lease_and_a_key_queues_once(
        settings: Settings, clock: ManualClock, receiver: Receiver) -> None:
    before = len(receiver.received())
    async with running(webhook(settings, receiver), clock) as platform:
        domain = platform.app[DOMAIN]
        async with domain.unit() as uow:
            first = await notify.queue(uow, channel="sms", kind="reminder", to=PHONE, text="证照即将到期",
                                       dedupe_key="reminder:1:90")
            again = await notify.queue(uow, channel="sms", kind="reminder", to=PHONE, text="证照即将到期",
                                       dedupe_key="reminder:1:90")
        assert first is not None and again is None, "one message per key"
        async with domain.unit() as uow:  # a dispatcher claims it, then its node dies
            assert [m.id for m in await notify.claim_due(uow, lease_seconds=LEASE_SECONDS)] == [first.id]
        assert await platform.app[NOTIFY].deliver_due() == 0, "claimed: not sent twice meanwhile"
        clock.advance(seconds=LEASE_SECONDS)
        assert await platform.app[NOTIFY].deliver_due() == 1
    assert len(receiver.received()) == before + 1


@pytest.mark.parametrize("env, message", [
    ({"YUNBANG_NOTIFY_SMS": "webhook"}, "YUNBANG_NOTIFY_WEBHOOK_URL"),
    ({"YUNBANG_NOTIFY_SMS": "webhook", "YUNBANG_NOTIFY_WEBHOOK_URL": "https://gw.example/sms",
      "YUNBANG_NOTIFY_WEBHOOK_SECRET": "short"}, "YUNBANG_NOTIFY_WEBHOOK_SECRET"),
    ({"YUNBANG_NOTIFY_STAFF": "dingtalk", "YUNBANG_NOTIFY_DINGTALK_URL": "https://oapi.dingtalk.com/robot/send"},
     "YUNBANG_NOTIFY_DINGTALK_SECRET"),
    ({"YUNBANG_NOTIFY_SMS": "dingtalk"}, "YUNBANG_NOTIFY_SMS"),
])
def test_a_provider_without_what_it_needs_is_refused_at_start(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)
