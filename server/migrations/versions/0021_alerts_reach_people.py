"""Alerts that reach people: alerts.notified_at / notify_count (pushed to supervisors, a red
warning again until acknowledged); users.mobile_masked (a supervisor's mobile, sealed in phone_sealed)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 18:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notified_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('notify_count', sa.Integer(), server_default='0', nullable=False))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mobile_masked', sa.String(length=20), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('mobile_masked')

    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('notify_count')
        batch_op.drop_column('notified_at')

