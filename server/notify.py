"""Delivering the outbox (`server.domain.notify`): the providers, and the dispatcher that claims
due messages, sends them and records each attempt.

Providers (docs/operations.md, "Notifications"):

- ``webhook``: ``POST`` of the message as JSON to ``YUNBANG_NOTIFY_WEBHOOK_URL``, with
  ``X-Yunbang-Timestamp`` (Unix seconds) and ``X-Yunbang-Signature: sha256=<hex HMAC-SHA256 of
  "<timestamp>.<body>" with the secret>``, and ``Idempotency-Key`` (the message id: a repeat after
  a lost answer is the same message). 2xx is delivered; 408, 429 and 5xx are tried again; another
  4xx is refused for good.
- ``dingtalk``: a DingTalk / 浙政钉 group robot, as published: ``timestamp`` (ms) and ``sign``
  (Base64 of HMAC-SHA256 of "<timestamp>\\n<secret>" with the secret, URL-encoded) added to the
  robot's URL, the body ``{"msgtype": "text", "text": {"content": …}, "at": {"atMobiles": […]}}``;
  delivered when the answer's ``errcode`` is 0.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable

import aiohttp

from server.config import NotifyRules
from server.domain import notify
from server.domain.notify import Outgoing
from server.events import Event
from server.runtime import Domain
from signaling.tasks import Tasks

log = logging.getLogger("yunbang.notify")
LEASE_SECONDS = 120  # a claimed message not recorded by then is sent again (its dispatcher died)


class DeliveryError(Exception):
    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


Send = Callable[[aiohttp.ClientSession, NotifyRules, Outgoing], Awaitable[None]]


async def send_webhook(http: aiohttp.ClientSession, rules: NotifyRules, message: Outgoing) -> None:
    body = json.dumps({"id": message.id, "channel": message.channel, "kind": message.kind, "to": message.to,
                       "text": message.text, "created_at": message.created_at.isoformat(),
                       "attempt": message.attempt}, ensure_ascii=False).encode()
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json; charset=utf-8", "X-Yunbang-Timestamp": timestamp,
               "X-Yunbang-Signature": webhook_signature(rules.webhook_secret, timestamp, body),
               "Idempotency-Key": f"yunbang-notification-{message.id}"}
    async with http.post(rules.webhook_url, data=body, headers=headers) as response:
        if 200 <= response.status < 300:
            return
        permanent = 400 <= response.status < 500 and response.status not in (408, 429)
        raise DeliveryError(f"HTTP {response.status}", permanent=permanent)


async def send_dingtalk(http: aiohttp.ClientSession, rules: NotifyRules, message: Outgoing) -> None:
    timestamp = int(time.time() * 1000)
    query = urllib.parse.urlencode({"timestamp": timestamp, "sign": dingtalk_sign(rules.dingtalk_secret, timestamp)})
    url = rules.dingtalk_url + ("&" if "?" in rules.dingtalk_url else "?") + query
    body = {"msgtype": "text", "text": {"content": message.text},
            "at": {"atMobiles": [message.to] if message.to else [], "isAtAll": False}}
    async with http.post(url, json=body) as response:
        if response.status != 200:
            raise DeliveryError(f"HTTP {response.status}", permanent=False)
        try:
            answer = await response.json(content_type=None)
        except (ValueError, aiohttp.ContentTypeError) as exc:
            raise DeliveryError("the robot's answer is not JSON") from exc
        if not isinstance(answer, dict) or answer.get("errcode") != 0:
            errcode = answer.get("errcode") if isinstance(answer, dict) else None
            errmsg = answer.get("errmsg") if isinstance(answer, dict) else None
            raise DeliveryError(f"errcode {errcode}: {errmsg}")


PROVIDERS: dict[str, Send] = {"webhook": send_webhook, "dingtalk": send_dingtalk}


class Dispatcher:
    """Sends what is due: woken when a message is queued on this node, and every ``poll_seconds``
    (messages queued on another node, attempts whose back-off has run out)."""

    def __init__(self, domain: Domain, *, poll_seconds: float = 5.0) -> None:
        self.domain = domain
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None
        self.tasks = Tasks("notifications")

    async def on_event(self, event: Event) -> None:
        if event.name == notify.QUEUED:
            self._wake.set()

    def start(self) -> None:
        self.tasks.spawn(self.run_forever(), name="notification dispatcher")

    async def run_forever(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notification pass failed; next pass in %ss", self.poll_seconds)

    async def deliver_due(self) -> int:
        """Send every message due now; returns how many were delivered."""
        rules = self.domain.settings.notify
        delivered = 0
        while True:
            async with self.domain.unit() as uow:
                batch = await notify.claim_due(uow, lease_seconds=LEASE_SECONDS)
            if not batch:
                return delivered
            for message in batch:
                delivered += await self._send(rules, message)

    async def _send(self, rules: NotifyRules, message: Outgoing) -> int:
        provider = PROVIDERS.get(rules.provider(message.channel))
        error: DeliveryError | None = None
        if provider is None:  # the outbox provider now, for a message queued for a gateway
            error = DeliveryError(f"provider {rules.provider(message.channel)} sends nothing", permanent=True)
        else:
            try:
                await provider(self._session(rules), rules, message)
            except DeliveryError as exc:
                error = exc
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = DeliveryError(f"{type(exc).__name__}: {exc}"[:200])
        async with self.domain.unit() as uow:
            if error is None:
                await notify.delivered(uow, message.id)
                return 1
            state = await notify.not_delivered(uow, message.id, str(error), permanent=error.permanent)
        # the kind and the error, never the text or the number: they may hold a code or a name
        log.warning("notification %s (%s) attempt %d not delivered: %s; now %s", message.id, message.kind,
                    message.attempt, error, state)
        return 0

    def _session(self, rules: NotifyRules) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=rules.timeout_seconds))
        return self._http

    async def close(self) -> None:
        await self.tasks.close()
        if self._http is not None:
            await self._http.close()
