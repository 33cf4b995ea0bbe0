"""个人信息 — how a resident's ID and phone numbers are kept: sealed at rest, found by a keyed
hash, shown masked.

The ticket row keeps the resident's name and note in clear (a clerk calls people by name), the
masked forms of the numbers for lists, and the numbers themselves only sealed (AES-256-GCM)
in ``resident_sealed``; ``id_number_hash`` (HMAC-SHA256 under a key derived from the data key)
finds the same person again without decrypting anything.
"""

from __future__ import annotations

from typing import Any, Protocol

SEALED_FIELDS = ("id_number", "phone")


def mask_id_number(value: str | None) -> str | None:
    """330203********1234 — the region code and the last four digits stay."""
    if not value:
        return value
    if len(value) <= 10:
        return value[:2] + "*" * (len(value) - 2)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_phone(value: str | None) -> str | None:
    """138****5678."""
    if not value:
        return value
    digits = value.replace(" ", "").replace("-", "")
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_name(value: str | None) -> str | None:
    """李*, 欧阳** — the family name's first character stays."""
    if not value:
        return value
    return value[0] + "*" * max(1, len(value) - 1)


class Sealer(Protocol):
    def seal(self, data: dict[str, str]) -> str: ...

    def open(self, sealed: str) -> dict[str, str]: ...

    def search_hash(self, id_number: str) -> str: ...


def normalise_id_number(value: str | None) -> str:
    return (value or "").strip().upper()


def split_resident(sealer: Sealer, resident: dict[str, Any]) -> tuple[dict[str, Any], str | None, str | None]:
    """(what the row keeps in clear, the sealed numbers, the ID number's search hash)."""
    clear = {k: v for k, v in resident.items() if k not in SEALED_FIELDS and v not in (None, "")}
    secret = {k: str(resident[k]).strip() for k in SEALED_FIELDS if resident.get(k)}
    if "id_number" in secret:
        secret["id_number"] = normalise_id_number(secret["id_number"])
        clear["id_number_masked"] = mask_id_number(secret["id_number"])
    if "phone" in secret:
        clear["phone_masked"] = mask_phone(secret["phone"])
    sealed = sealer.seal(secret) if secret else None
    search = sealer.search_hash(secret["id_number"]) if "id_number" in secret else None
    return clear, sealed, search


def full_resident(sealer: Sealer, clear: dict[str, Any] | None, sealed: str | None) -> dict[str, Any]:
    """The resident in full (for the one audited read)."""
    view = {k: v for k, v in (clear or {}).items() if k in ("name", "note")}
    if sealed:
        view.update(sealer.open(sealed))
    return view
