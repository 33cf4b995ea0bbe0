"""ICE servers for browsers, with short-lived TURN credentials (TURN REST API).

coturn's ``use-auth-secret`` mode accepts username ``"<expiry unix time>:<label>"`` with the
password ``base64(HMAC-SHA1(shared secret, username))``. The server hands these out per user
and per request, so no static TURN password ever reaches a browser, and a leaked one expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from typing import Any, Literal

from server.config import Settings

log = logging.getLogger("yunbang.turn")
_warned_missing_secret = False


def turn_credentials(secret: str, user_label: str, ttl_seconds: int, now: float) -> tuple[str, str, int]:
    """``(username, credential, expiry)`` for coturn ``use-auth-secret``; expiry is ``now + ttl``."""
    expiry = int(now) + int(ttl_seconds)
    username = f"{expiry}:{user_label}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode(), expiry


def ice_servers(settings: Settings, user_label: str, now: float) -> list[dict[str, Any]]:
    """RTCIceServer dictionaries; empty when nothing is configured (a LAN reaches the relay)."""
    global _warned_missing_secret
    servers: list[dict[str, Any]] = []
    if settings.stun_urls:
        servers.append({"urls": list(settings.stun_urls)})
    if settings.turn_urls and settings.turn_secret:
        username, credential, _ = turn_credentials(settings.turn_secret, user_label, settings.turn_ttl_seconds, now)
        servers.append({"urls": list(settings.turn_urls), "username": username, "credential": credential,
                        "credentialType": "password"})
    elif settings.turn_urls and not _warned_missing_secret:
        _warned_missing_secret = True
        log.warning("YUNBANG_TURN_URLS is set without YUNBANG_TURN_SECRET: TURN is not offered")
    return servers


def transport_policy(settings: Settings, role: str) -> Literal["all", "relay"]:
    """``iceTransportPolicy`` for a browser of ``role``: ``relay`` (media only through TURN) for
    the roles in ``YUNBANG_ICE_RELAY_ROLES`` — a network that lets only the TURN server through,
    or a rule that media crosses the DMZ there — else ``all``."""
    return "relay" if role in settings.ice_relay_roles else "all"
