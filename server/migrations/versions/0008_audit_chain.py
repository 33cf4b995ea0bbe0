"""audit trail hash chain (seq, prev_hash, hash; audit_chain_head); audit_log append-only

Rows already in audit_log are chained here, in id order, so ``yunbang audit verify`` passes
on an upgraded database. The canonical form is copied from server/domain/audit.py as it was
when this migration was written (a migration must not change when the code does);
tests/test_audit_chain.py checks that both agree.

Triggers refuse UPDATE and DELETE on audit_log (and TRUNCATE on PostgreSQL) for everyone,
the app included. A later migration that recreates audit_log (SQLite batch mode copies the
table) drops them with it and must create them again: see ``create_guards``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:00:00
"""
from __future__ import annotations

import hashlib
import json
from datetime import UTC
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

GENESIS = '0' * 64

SQLITE_GUARDS = (
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
)
POSTGRESQL_GUARDS = (
    "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege'; "
    "END $$",
    "CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
)


def create_guards() -> None:
    for sql in SQLITE_GUARDS if op.get_bind().dialect.name == 'sqlite' else POSTGRESQL_GUARDS:
        op.execute(sql)


def drop_guards() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update_delete ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")


def _hash(row: dict[str, Any]) -> str:
    doc = {
        "seq": row["seq"],
        "at": row["at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor_id": row["actor_id"],
        "actor_name": row["actor_name"],
        "action": row["action"],
        "target_type": row["target_type"],
        "target_id": row["target_id"],
        "ip": row["ip"],
        "detail": row["detail"],
        "prev_hash": row["prev_hash"],
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('hash', sa.String(length=64), nullable=True))
    op.create_table(
        'audit_chain_head',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_chain_head')),
    )

    log = sa.table(
        'audit_log', sa.column('id', sa.Integer()), sa.column('at', sa.DateTime(timezone=True)),
        sa.column('actor_id', sa.Integer()), sa.column('actor_name', sa.String()), sa.column('action', sa.String()),
        sa.column('target_type', sa.String()), sa.column('target_id', sa.String()), sa.column('ip', sa.String()),
        sa.column('detail', sa.JSON()), sa.column('seq', sa.BigInteger()), sa.column('prev_hash', sa.String()),
        sa.column('hash', sa.String()),
    )
    bind = op.get_bind()
    seq, prev, links = 0, GENESIS, []
    for found in bind.execute(sa.select(log).order_by(log.c.id)).mappings():
        row = dict(found)
        if row["at"].tzinfo is None:  # SQLite keeps UTC without a zone
            row["at"] = row["at"].replace(tzinfo=UTC)
        seq += 1
        row["seq"], row["prev_hash"] = seq, prev
        prev = _hash(row)
        links.append({"row_id": row["id"], "seq": seq, "prev_hash": row["prev_hash"], "hash": prev})
    if links:
        bind.execute(
            log.update().where(log.c.id == sa.bindparam('row_id'))
            .values(seq=sa.bindparam('seq'), prev_hash=sa.bindparam('prev_hash'), hash=sa.bindparam('hash')),
            links,
        )
    op.bulk_insert(sa.table('audit_chain_head', sa.column('id', sa.Integer()), sa.column('seq', sa.BigInteger()),
                            sa.column('hash', sa.String())), [{"id": 1, "seq": seq, "hash": prev}])

    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column('prev_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_audit_log_seq'), ['seq'])
    create_guards()


def downgrade() -> None:
    drop_guards()
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_audit_log_seq'), type_='unique')
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('seq')
    op.drop_table('audit_chain_head')
