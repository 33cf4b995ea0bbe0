"""A stand-in for an SMS gateway and a DingTalk group robot, as its own process: it checks each
request's signature as the real receivers do, answers as told, and keeps what it received.

    python -m tests.notify_receiver PORT WEBHOOK_SECRET DINGTALK_SECRET

- ``POST /hook``: the webhook provider. 401 when ``X-Yunbang-Signature`` is not the HMAC-SHA256
  of "<X-Yunbang-Timestamp>.<body>" or the timestamp is more than 5 minutes off.
- ``POST /robot/send?access_token=…&timestamp=…&sign=…``: the robot. ``errcode`` 310000 when the
  sign is not Base64(HMAC-SHA256("<timestamp>\\n<secret>")) or the timestamp is an hour off.
- ``POST /control`` ``{"fail": N, "status": 503}``: the next N requests fail that way (for the
  robot, ``{"errcode": 130101}``: sent too fast).
- ``GET /received``: every request, in order, with whether its signature held.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import time
from typing import Any

from aiohttp import web


def main() -> None:
    port, webhook_secret, dingtalk_secret = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    received: list[dict[str, Any]] = []
    failing = {"count": 0, "status": 503}

    def fail_now() -> bool:
        if failing["count"] > 0:
            failing["count"] -= 1
            return True
        return False

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers.get("X-Yunbang-Timestamp", "")
        expected = "sha256=" + hmac.new(webhook_secret.encode(), timestamp.encode() + b"." + body,
                                        hashlib.sha256).hexdigest()
        valid = (hmac.compare_digest(expected, request.headers.get("X-Yunbang-Signature", ""))
                 and timestamp.isdigit() and abs(time.time() - int(timestamp)) < 300)
        entry = {"path": "/hook", "valid": valid, "body": json.loads(body),
                 "idempotency_key": request.headers.get("Idempotency-Key")}
        received.append(entry)
        if not valid:
            return web.json_response({"error": "bad signature"}, status=401)
        if fail_now():
            entry["answered"] = failing["status"]
            return web.json_response({"error": "busy"}, status=failing["status"])
        entry["answered"] = 200
        return web.json_response({"ok": True})

    async def robot(request: web.Request) -> web.Response:
        body = await request.json()
        timestamp = request.query.get("timestamp", "")
        sign = request.query.get("sign", "")  # aiohttp has URL-decoded it
        expected = base64.b64encode(hmac.new(dingtalk_secret.encode(), f"{timestamp}\n{dingtalk_secret}".encode(),
                                             hashlib.sha256).digest()).decode()
        valid = (hmac.compare_digest(expected, sign) and timestamp.isdigit()
                 and abs(time.time() * 1000 - int(timestamp)) < 3_600_000
                 and request.query.get("access_token") == "robot-token")
        entry = {"path": "/robot/send", "valid": valid, "body": body}
        received.append(entry)
        if not valid:
            return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
        if fail_now():
            entry["answered"] = 130101
            return web.json_response({"errcode": 130101, "errmsg": "send too fast"})
        entry["answered"] = 0
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def control(request: web.Request) -> web.Response:
        asked = await request.json()
        failing.update(count=int(asked.get("fail", 0)), status=int(asked.get("status", 503)))
        return web.json_response(failing)

    async def show(_request: web.Request) -> web.Response:
        return web.json_response(received)

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_post("/robot/send", robot)
    app.router.add_post("/control", control)
    app.router.add_get("/received", show)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


if __name__ == "__main__":
    main()
