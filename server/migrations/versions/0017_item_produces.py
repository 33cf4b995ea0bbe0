"""What an item issues (service_items.produces): in a bundle, a later item's material that an
earlier item issues is passed on inside the government, not asked of the resident

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 17:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('service_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('produces', sa.JSON(), nullable=False, server_default='[]'))


def downgrade() -> None:
    with op.batch_alter_table('service_items', schema=None) as batch_op:
        batch_op.drop_column('produces')
