"""Tokens are signed and expire; nothing secret is built in."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.auth import TokenSigner
from server.config import Settings
from server.domain.errors import Unauthorized


def test_an_expired_or_tampered_token_is_refused() -> None:
    signer = TokenSigner("s" * 40, ttl_hours=1)
    token, _ = signer.issue(7, "clerk", "session-a")
    assert signer.claims(token) == (7, "session-a")
    with pytest.raises(Unauthorized) as tampered:
        TokenSigner("t" * 40, ttl_hours=1).claims(token)
    assert tampered.value.code == "invalid_token"
    expired, _ = TokenSigner("s" * 40, ttl_hours=-1).issue(7, "clerk", "session-a")
    with pytest.raises(Unauthorized) as late:
        signer.claims(expired)
    assert late.value.code == "token_expired"


def test_without_a_configured_key_one_is_generated_once_per_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = settings.resolved_secret_key()
    assert len(first) >= 32 and settings.resolved_secret_key() == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert Settings(data_dir=tmp_path / "other").resolved_secret_key() != first
    with pytest.raises(ValueError):
        TokenSigner("short", ttl_hours=1)
