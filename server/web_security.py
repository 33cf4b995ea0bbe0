"""What browsers are told and asked: security headers on every response, and the origin rule
for socket.io (docs/security.md)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from server.api.base import via_trusted_proxy
from server.config import Settings
from server.keys import SETTINGS

HSTS = "max-age=31536000"
PERMISSIONS = "camera=(self), microphone=(self), display-capture=(self), fullscreen=(self), " \
              "geolocation=(), payment=(), usb=()"
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def request_scheme(request: web.Request) -> str:
    """``https`` when TLS reached this process, or a trusted reverse proxy says its client used it."""
    if request.secure:
        return "https"
    if via_trusted_proxy(request):
        forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        if forwarded in ("http", "https"):
            return forwarded
    return "http"


def own_origin(request: web.Request) -> str | None:
    """The origin this request was addressed to (scheme and ``Host``), if the Host is sane."""
    host = request.headers.get("Host", "")
    return f"{request_scheme(request)}://{host.lower()}" if _HOST.match(host) else None


def origin_allowed(request: web.Request, origin: str | None) -> bool:
    """A page may open a socket only from the app's own origin — the one the request was sent
    to — or one listed in ``YUNBANG_ALLOWED_ORIGINS``. (engine.io lets a request without
    ``Origin``, which no browser page sends, through without asking.)"""
    if not origin:
        return False
    origin = origin.strip().lower().rstrip("/")
    return origin in request.app[SETTINGS].allowed_origins or origin == own_origin(request)


def socketio_origin_check(origin: str | None, environ: dict[str, Any]) -> bool:
    """python-socketio's ``cors_allowed_origins`` as a callable."""
    return origin_allowed(environ["aiohttp.request"], origin)


def content_security_policy(request: web.Request) -> str:
    """What the built web client (and /dev/call) need, and nothing else: own scripts only (no
    inline, no eval); Element Plus writes inline styles; camera and received media arrive as
    MediaStreams and blobs; document images come from this server or the S3 public endpoint."""
    settings: Settings = request.app[SETTINGS]
    connect = ["'self'"]
    origin = own_origin(request)
    if origin is not None:
        connect.append(origin.replace("https://", "wss://", 1).replace("http://", "ws://", 1))
    images = ["'self'", "blob:", "data:"]
    s3 = s3_origin(settings)
    if s3:
        images.append(s3)
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src " + " ".join(images),
        "media-src 'self' blob:",
        "connect-src " + " ".join(connect),
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def s3_origin(settings: Settings) -> str | None:
    """Where presigned document URLs point (the public endpoint, else the server's own one)."""
    if not settings.s3_endpoint:
        return None
    endpoint = settings.s3_public_endpoint or settings.s3_endpoint
    if "://" not in endpoint:
        endpoint = ("https://" if settings.s3_secure else "http://") + endpoint
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else None


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every response the app sends carries these."""
    headers = response.headers
    headers["Server"] = "yunbang"
    headers.setdefault("Content-Security-Policy", content_security_policy(request))
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Permissions-Policy", PERMISSIONS)
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    hsts = request.app[SETTINGS].hsts
    if hsts == "always" or (hsts == "auto" and request_scheme(request) == "https"):
        headers.setdefault("Strict-Transport-Security", HSTS)


