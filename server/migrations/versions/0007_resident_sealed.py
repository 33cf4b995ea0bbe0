"""residents' ID and phone numbers sealed at rest (AES-256-GCM) and found by a keyed hash;
when a closed case's personal data was purged (retention)

Existing tickets are converted: their numbers are sealed into ``resident_sealed``, the ID
number's keyed hash goes to ``id_number_hash``, and the JSON keeps only the masked forms. The
data key comes from ``yunbang migrate`` / ``serve`` (``Settings.resolved_data_key``); a database
with numbers to convert refuses to migrate without it. The sealing format (v1) is written out
here rather than imported, so this migration keeps working whatever the code does later.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 19:30:00
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import context, op

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

tickets = sa.table(
    "tickets",
    sa.column("id", sa.Integer),
    sa.column("resident", sa.JSON),
    sa.column("resident_sealed", sa.Text),
    sa.column("id_number_hash", sa.String),
)


def _keys(data_key: bytes) -> tuple[AESGCM, bytes]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    def derive(info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(data_key)

    return AESGCM(derive(b"yunbang seal")), derive(b"yunbang id search")


def _mask_id(v: str) -> str:
    return v[:2] + "*" * (len(v) - 2) if len(v) <= 10 else v[:6] + "*" * (len(v) - 10) + v[-4:]


def _mask_phone(v: str) -> str:
    d = v.replace(" ", "").replace("-", "")
    return "*" * len(d) if len(d) < 7 else d[:3] + "*" * (len(d) - 7) + d[-4:]


def upgrade() -> None:
    bind = op.get_bind()
    old = sa.table("tickets", sa.column("id", sa.Integer), sa.column("resident", sa.JSON))
    todo = []
    for ticket_id, resident in bind.execute(sa.select(old.c.id, old.c.resident)).fetchall():
        if isinstance(resident, str):
            resident = json.loads(resident)
        if resident and (resident.get("id_number") or resident.get("phone")):
            todo.append((ticket_id, resident))
    data_key: bytes | None = context.config.attributes.get("data_key")
    if todo and not data_key:  # before any change: SQLite does not roll DDL back
        raise RuntimeError("tickets hold ID/phone numbers to encrypt: run `yunbang migrate`, which passes the data key")

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resident_sealed', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('id_number_hash', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_tickets_id_number_hash'), ['id_number_hash'], unique=False)
        batch_op.add_column(sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True))
    if not todo:
        return
    assert data_key  # checked above, before the DDL
    aead, search_key = _keys(data_key)
    for ticket_id, resident in todo:
        secret = {k: str(resident[k]).strip() for k in ("id_number", "phone") if resident.get(k)}
        clear = {k: v for k, v in resident.items() if k not in ("id_number", "phone")}
        search = None
        if "id_number" in secret:
            secret["id_number"] = secret["id_number"].upper()
            clear["id_number_masked"] = _mask_id(secret["id_number"])
            search = hmac.new(search_key, secret["id_number"].encode(), hashlib.sha256).hexdigest()
        if "phone" in secret:
            clear["phone_masked"] = _mask_phone(secret["phone"])
        nonce = os.urandom(12)
        plain = json.dumps(secret, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
        sealed = "v1." + base64.urlsafe_b64encode(nonce + aead.encrypt(nonce, plain, b"yunbang resident v1")).decode()
        bind.execute(tickets.update().where(tickets.c.id == ticket_id)
                     .values(resident=clear, resident_sealed=sealed, id_number_hash=search))


def downgrade() -> None:
    # The numbers stay sealed: decrypting them back into the clear is not offered.
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('purged_at')
        batch_op.drop_index(batch_op.f('ix_tickets_id_number_hash'))
        batch_op.drop_column('id_number_hash')
        batch_op.drop_column('resident_sealed')
