"""What yunbang's log lines look like: one JSON object per line for a log collector, or a
readable line on a terminal (``YUNBANG_LOG_FORMAT``: ``auto``, ``json``, ``text``).

Each line says, where they apply, which request (``request_id``), whose (``user_id``), which
case (``ticket_id``) and which call (``room_id``, ``t{ticket_id}``) it is about. Those come from
a context (``contextvars``) that the HTTP middleware and the socket.io dispatch set, so a
message never spells them out, and never carries what identifies a resident: ids only, no
names, numbers, tokens or documents (docs/operations.md, "Logs").
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any

FORMATS = ("auto", "json", "text")
#: The context a line is about; set with `bind` or `scope`, or given as ``extra=`` on one call.
CONTEXT_FIELDS = ("request_id", "user_id", "ticket_id", "room_id")
#: What an access line adds (server/weblog.py, RedactingAccessLogger).
ACCESS_FIELDS = ("method", "path", "route", "status", "duration_ms")
FIELDS = CONTEXT_FIELDS + ACCESS_FIELDS

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("yunbang_log_context", default=None)


def bind(**fields: Any) -> contextvars.Token[dict[str, Any] | None]:
    """Add fields to the current context (``None`` values are left out) until it is reset
    with the returned token, or until the task it was set in ends: an aiohttp request runs in a
    task of its own, so what its handler binds stays on its own lines, the access line included."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"not a log context field: {', '.join(sorted(unknown))}")
    return _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}})


@contextmanager
def scope(**fields: Any) -> Iterator[None]:
    """The fields for the lines written inside the block, and for tasks started in it."""
    token = bind(**fields)
    try:
        yield
    finally:
        _context.reset(token)


def current() -> dict[str, Any]:
    return dict(_context.get() or {})


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The record's own fields (``extra=``) over the context's, in `FIELDS` order."""
    context = _context.get() or {}
    found = {}
    for name in FIELDS:
        value = getattr(record, name, None)
        if value is None:
            value = context.get(name)
        if value is not None:
            found[name] = value
    return found


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``time`` (ISO 8601, UTC), ``level``, ``logger``,
    ``message``, the context fields that are set, and ``exception`` (the traceback, one string)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **fields_of(record),
        }
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``2026-11-23 10:00:00,123 INFO yunbang.calls: joined the call [request_id=… user_id=3
    ticket_id=7 room_id=t7]``: the format the server always had, the context at the end."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        context = {k: v for k, v in fields_of(record).items() if k in CONTEXT_FIELDS}
        return f"{text} [{' '.join(f'{k}={v}' for k, v in context.items())}]" if context else text


def chosen(setting: str, stream: IO[str]) -> str:
    """``json`` or ``text``: ``auto`` is text on a terminal, JSON otherwise (a pipe, journald,
    a container's log)."""
    if setting not in FORMATS:
        raise ValueError(f"log format {setting!r}: one of {', '.join(FORMATS)}")
    if setting != "auto":
        return setting
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def handler(setting: str = "auto", stream: IO[str] | None = None) -> logging.Handler:
    stream = sys.stderr if stream is None else stream
    made = logging.StreamHandler(stream)
    made.setFormatter(JsonFormatter() if chosen(setting, stream) == "json" else TextFormatter())
    return made


def configure(setting: str = "auto", stream: IO[str] | None = None, level: int = logging.INFO) -> str:
    """The root logger writes through one handler in the chosen format (as ``basicConfig``:
    unless it has handlers already, e.g. under pytest); returns that format."""
    made = handler(setting, stream)
    logging.basicConfig(level=level, handlers=[made])
    logging.captureWarnings(True)  # a library's warning is a line in the same format, not raw text
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return "json" if isinstance(made.formatter, JsonFormatter) else "text"
