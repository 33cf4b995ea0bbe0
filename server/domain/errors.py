"""Typed domain errors with stable codes (for programs) and zh-CN messages (for people)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    keep_changes = False

    def __init__(self, code: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail


class Invalid(DomainError):
    status = 422


class Unauthorized(DomainError):
    status = 401


class Forbidden(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class TooManyAttempts(DomainError):
    status = 429


class Gone(DomainError):
    """It existed and has expired (a link whose time is up)."""

    status = 410


class TooLarge(DomainError):
    status = 413
