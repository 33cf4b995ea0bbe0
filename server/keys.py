"""Typed aiohttp application keys: the only way handlers reach shared services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from server.auth import TokenSigner
from server.config import Settings
from server.db import Database
from server.runtime import Domain

if TYPE_CHECKING:

    pass

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
DOMAIN = web.AppKey("domain", Domain)
TOKENS = web.AppKey("tokens", TokenSigner)
SIO = web.AppKey("sio", object)
MONITOR = web.AppKey("monitor", object)
