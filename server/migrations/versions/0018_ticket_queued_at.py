"""tickets.queued_at: when a transferred ticket or a bundle case's next department's turn entered
the queue it waits in now; its wait alert counts from there

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 17:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('queued_at')
