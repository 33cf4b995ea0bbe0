"""Typed aiohttp application keys: the only way handlers reach shared services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from server.auth import TokenSigner
from server.config import Settings
from server.db import Database
from server.domain.experts import PresenceView
from server.live import Monitor
from server.notify import Dispatcher
from server.retention import Retention
from server.runtime import Domain
from server.uploading import DocumentUploads
from signaling.calls import CallService
from signaling.server import SocketServer
from uploads.storage import ObjectStore

if TYPE_CHECKING:  # server.metrics reads its key from here: named for the type checker only
    from server.metrics import Metrics

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
DOMAIN = web.AppKey("domain", Domain)
TOKENS = web.AppKey("tokens", TokenSigner)
SIO = web.AppKey("sio", SocketServer)
MONITOR = web.AppKey("monitor", Monitor)
CALLS = web.AppKey("calls", CallService)
PRESENCE: web.AppKey[PresenceView] = web.AppKey("presence")  # a protocol: this node's book, or a shared one
UPLOADS = web.AppKey("uploads", DocumentUploads)
STORE: web.AppKey[ObjectStore] = web.AppKey("store")  # a protocol: named in the annotation
RETENTION = web.AppKey("retention", Retention)
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
NOTIFY = web.AppKey("notify", Dispatcher)
