"""network: extension points named uniquely per town centre, with an address, an office phone, an
active switch and when a worker of theirs last connected; tickets indexed by point and service day

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('extension_points', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address', sa.String(length=200), server_default='', nullable=False))
        batch_op.add_column(sa.Column('contact_phone', sa.String(length=30), server_default='', nullable=False))
        batch_op.add_column(sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('last_connected_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint('uq_extension_points_name', type_='unique')
        batch_op.create_index('ix_extension_points_centre_name', ['centre_id', 'name'], unique=True)

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_point_day', ['extension_point_id', 'service_day'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_point_day')

    with op.batch_alter_table('extension_points', schema=None) as batch_op:
        batch_op.drop_index('ix_extension_points_centre_name')
        batch_op.create_unique_constraint('uq_extension_points_name', ['name'])
        batch_op.drop_column('last_connected_at')
        batch_op.drop_column('active')
        batch_op.drop_column('contact_phone')
        batch_op.drop_column('address')
