"""AES-256-GCM sealing of personal data, and the keyed hash that finds it again.

Format ``v1.<base64url(nonce ‖ ciphertext ‖ tag)>``; the associated data names the purpose, so a
sealed value cannot be passed off as another kind. Both keys are derived (HKDF-SHA256) from the
one data key (``Settings.resolved_data_key``), so the search hash reveals nothing about the
encryption key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"
PURPOSE = b"yunbang resident v1"


def derive(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


class SealError(ValueError):
    """A sealed value that does not open: another key, or tampered with."""


class AesGcmSealer:
    def __init__(self, data_key: bytes) -> None:
        if len(data_key) != 32:
            raise ValueError("the data key must be 32 bytes")
        self._aead = AESGCM(derive(data_key, b"yunbang seal"))
        self._search = derive(data_key, b"yunbang id search")

    def seal(self, data: dict[str, str]) -> str:
        nonce = os.urandom(12)
        plain = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
        blob = nonce + self._aead.encrypt(nonce, plain, PURPOSE)
        return f"{VERSION}.{base64.urlsafe_b64encode(blob).decode()}"

    def open(self, sealed: str) -> dict[str, str]:
        version, _, body = sealed.partition(".")
        if version != VERSION:
            raise SealError(f"unknown sealing version {version!r}")
        try:
            blob = base64.urlsafe_b64decode(body)
            plain = self._aead.decrypt(blob[:12], blob[12:], PURPOSE)
        except (InvalidTag, ValueError) as exc:
            raise SealError("sealed value does not open with this key") from exc
        data: dict[str, str] = json.loads(plain)
        return data

    def search_hash(self, id_number: str) -> str:
        return hmac.new(self._search, id_number.encode(), hashlib.sha256).hexdigest()


class LazySealer:
    """Reads (or generates) the data key on first use, not at start-up."""

    def __init__(self, key: Callable[[], bytes]) -> None:
        self._key = key
        self._sealer: AesGcmSealer | None = None

    def _get(self) -> AesGcmSealer:
        if self._sealer is None:
            self._sealer = AesGcmSealer(self._key())
        return self._sealer

    def seal(self, data: dict[str, str]) -> str:
        return self._get().seal(data)

    def open(self, sealed: str) -> dict[str, str]:
        return self._get().open(sealed)

    def search_hash(self, id_number: str) -> str:
        return self._get().search_hash(id_number)
