"""统计报表: indexes the report queries use (tickets by service day and queue, tidal windows by
when they opened, invitations by when they were sent)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 09:00:00
"""
from __future__ import annotations

from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_report', ['service_day', 'centre_id', 'department_id'], unique=False)
    with op.batch_alter_table('cloud_windows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cloud_windows_opened_at'), ['opened_at'], unique=False)
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invitations_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invitations_created_at'))
    with op.batch_alter_table('cloud_windows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cloud_windows_opened_at'))
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_report')
