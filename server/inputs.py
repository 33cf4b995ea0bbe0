"""What every input shares, over HTTP and socket.io alike: ids the database can hold and text
it can store.

Ids are INTEGER columns (32-bit on PostgreSQL): a value outside 1..2**31-1 names nothing, and
sent on to a query it fails there (PostgreSQL refuses it, SQLite overflows) instead of being
answered. Text with a NUL character or a lone surrogate cannot be stored either (PostgreSQL
refuses NUL in text; neither driver can encode a surrogate). Both are refused at the edge as
invalid input, wherever they come from: path, query, JSON body or socket message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, field_validator

MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID, description="id（1 至 2147483647）")]


def _instant(value: Any) -> datetime:
    """ISO 8601 text with an offset, as a moment in UTC (never a bare number of seconds)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value)  # ValueError: not ISO 8601
    else:
        raise ValueError("an ISO 8601 date-time")
    if moment.tzinfo is None:
        raise ValueError("an ISO 8601 date-time with its offset (Z or +08:00)")
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:59-12:00 is past year 9999 in UTC
        raise ValueError("outside the years 1 to 9999 in UTC") from exc


Instant = Annotated[datetime, BeforeValidator(_instant)]  # a moment with its offset, kept in UTC


def parse_id(raw: str) -> int | None:
    """A decimal id from a path or query string, or None when it is not one the database can
    hold (checked before ``int()``, so a number with thousands of digits costs nothing)."""
    if not raw or len(raw) > 10 or not raw.isascii() or not raw.isdigit():
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_ID else None


def unstorable(text: str) -> str | None:
    """Why the database could not store this text, or None."""
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)"
    return None


def _check(value: Any) -> Any:
    if isinstance(value, str):
        problem = unstorable(value)
        if problem:
            raise ValueError(problem)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _check(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key)
            _check(item)
    return value


class Storable(BaseModel):
    """Base of every input model: each string in it can be stored as it is."""

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return _check(value)
