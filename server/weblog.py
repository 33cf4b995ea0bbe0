"""What the server writes about requests: a request id on every line a request causes, an
access log without secrets or personal data, and one bounded line (not a traceback) when a
client sends engine.io / socket.io frames that do not decode."""

from __future__ import annotations

import logging
import re
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import unquote_plus

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.web import BaseRequest, StreamResponse
from aiohttp.web_log import AccessLogger

from server import logs
from server.inputs import parse_id

REDACTED = "[redacted]"
# Query parameters whose values are credentials: tokens, signatures of signed URLs (ours: sig;
# S3's X-Amz-Signature / -Credential / -Security-Token), passwords, one-time codes; or personal:
# a document's file name (local-store links carry it) may name its resident.
SECRET_PARAM = re.compile(r"token|secret|passw|signature|credential|^sig$|^auth|^key$|^api_?key$|^code$|^otp$"
                          r"|^filename$|^name$|^phone$|^id_number$", re.IGNORECASE)
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})


def redact_url(path_qs: str) -> str:
    """``/x?token=abc&q=1`` → ``/x?token=[redacted]&q=1``: names and order kept, secrets gone."""
    path, sep, query = path_qs.partition("?")
    if not sep:
        return path_qs
    parts = []
    for pair in query.split("&"):
        name, eq, _ = pair.partition("=")
        parts.append(f"{name}={REDACTED}" if eq and SECRET_PARAM.search(unquote_plus(name)) else pair)
    return f"{path}?{'&'.join(parts)}"


REQUEST_ID = web.RequestKey("request_id", str)
ROUTE = web.RequestKey("route", str)  # the path's pattern: /api/tickets/{ticket_id}
REQUEST_ID_HEADER = "X-Request-Id"
# An id a proxy (nginx's $request_id) or a client sent: kept when it is short and plain, so one
# id follows the request through every log; anything else is replaced, never logged.
INCOMING_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def request_id_of(header: str | None) -> str:
    return header if header and INCOMING_ID.fullmatch(header) else uuid.uuid4().hex


@web.middleware
async def request_context(request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """The request's id (and the ticket its path names) on every line written while it runs,
    its access line included; the route's guard adds the user (server/api/base.py). Bound, not
    scoped: aiohttp runs each request in a task of its own, which the access line is written in."""
    request[REQUEST_ID] = request_id = request_id_of(request.headers.get(REQUEST_ID_HEADER))
    resource = request.match_info.route.resource
    if resource is not None:
        request[ROUTE] = resource.canonical
    logs.bind(request_id=request_id, ticket_id=parse_id(request.match_info.get("ticket_id", "")))
    return await handler(request)


async def echo_request_id(request: web.Request, response: StreamResponse) -> None:
    """``X-Request-Id`` on every response, errors included: what a user quotes to support."""
    request_id = request.get(REQUEST_ID)
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id


#: The access line's message in JSON logs: the fields carry the rest (not the client's address
#: or user agent, which the text format, aiohttp's own, has).
JSON_ACCESS_FORMAT = "%r %s"


class RedactingAccessLogger(AccessLogger):
    """aiohttp's access log (its format, or the one given) with secret query values and
    credential headers replaced: URLs may carry signed-link signatures or tokens, and a log is
    read by many. Each line is also a structured record: method, path (redacted), route (the
    path pattern, e.g. ``/api/tickets/{ticket_id}``), status and duration_ms."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        try:
            values = tuple(value for _, value in self._format_line(request, response, time))
            # from the middleware: a request aiohttp could not parse never reached it
            self.logger.info(self._log_format % values, extra={
                "request_id": request.get(REQUEST_ID), "method": request.method, "path": redact_url(request.path_qs),
                "route": request.get(ROUTE), "status": response.status, "duration_ms": round(time * 1000, 1)})
        except Exception:
            self.logger.exception("Error in logging")

    def _format_line(
        self, request: BaseRequest, response: StreamResponse, time: float
    ) -> Iterable[tuple[str | tuple[str, str], str]]:
        return [(key, _redacted(key, value)) for key, value in super()._format_line(request, response, time)]


def _redacted(key: str | tuple[str, str], value: str) -> str:
    if key == "first_request_line":
        method, _, rest = value.partition(" ")
        target, _, version = rest.rpartition(" ")
        return f"{method} {redact_url(target)} {version}" if target else value
    if isinstance(key, tuple) and key[0] in ("request_header", "response_header"):
        if key[1].lower() in SECRET_HEADERS:
            return REDACTED if value != "-" else value
        if key[1].lower() == "referer":
            return redact_url(value)
    return value


# Where engine.io and socket.io decode what clients send: an exception raised through one of
# these is the client's garbage, not our bug.
DECODERS = frozenset({
    ("engineio.packet", "decode"), ("engineio.payload", "decode"),
    ("socketio.packet", "decode"), ("socketio.packet", "reconstruct_binary"),
})


def is_client_garbage(exc: BaseException) -> bool:
    if isinstance(exc, BadHttpMessage):  # aiohttp's parser: a request that is not HTTP (400)
        return True
    if not isinstance(exc, (ValueError, TypeError, IndexError, KeyError)):
        return False
    frames = [(f.f_globals.get("__name__"), f.f_code.co_name) for f, _ in traceback.walk_tb(exc.__traceback__)]
    if any(frame in DECODERS for frame in frames):
        return True
    # a polling POST body that is not UTF-8 fails in engine.io's own .decode() call
    return isinstance(exc, UnicodeDecodeError) and bool(frames) and frames[-1] == (
        "engineio.async_socket", "handle_post_request")


class ClientGarbage(logging.Filter):
    """engine.io logs a full traceback (two, with its own handler) for every frame a client
    sends that does not decode: four frames wrote 174 lines; aiohttp one for every request it
    cannot parse. Such a record becomes one WARNING line without the traceback or the client's
    bytes, and at most ``burst`` of them are written per ``period`` seconds (then one line
    saying how many were left out). Every other record, real server errors included, passes
    unchanged."""

    def __init__(self, burst: int = 20, period: float = 60) -> None:
        super().__init__()
        self.burst, self.period = burst, period
        self._window_start = -period
        self._in_window = 0
        self._dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or not is_client_garbage(exc):
            return True
        now = time.monotonic()
        if now - self._window_start >= self.period:
            self._window_start, self._in_window = now, 0
        self._in_window += 1
        if self._in_window > self.burst:
            self._dropped += 1
            return False
        note = f" ({self._dropped} more left out before this one)" if self._dropped else ""
        self._dropped = 0
        record.args = (record.getMessage(), type(exc).__name__, note)
        record.msg = "%s: a client sent something that does not parse (%s); ignored%s"
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


# Loggers that write what clients' garbage makes them say (aiohttp.server: unparsable requests).
GARBAGE_LOGGERS = ("socketio.server", "engineio.server", "yunbang.socket", "aiohttp.server")


def quiet_client_garbage() -> ClientGarbage:
    """One shared filter (one rate budget) on every logger in ``GARBAGE_LOGGERS``."""
    loggers = [logging.getLogger(name) for name in GARBAGE_LOGGERS]
    shared = next((f for lg in loggers for f in lg.filters if isinstance(f, ClientGarbage)), None) or ClientGarbage()
    for logger in loggers:
        if shared not in logger.filters:
            logger.addFilter(shared)
    return shared


def socketio_loggers() -> tuple[logging.Logger, logging.Logger]:
    """The loggers handed to python-socketio and engine.io. Given as objects, they get no
    handler of their own (with ``logger=False`` engine.io adds a bare StreamHandler, so every
    record was printed twice); WARNING keeps engine.io's per-packet INFO lines out."""
    quiet_client_garbage()
    loggers = logging.getLogger("socketio.server"), logging.getLogger("engineio.server")
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    return loggers
