"""一事联办 bundles: bundles of items handled as one case; a bundle ticket's case items

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 10:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'bundles',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=20), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_bundles')),
        sa.UniqueConstraint('code', name=op.f('uq_bundles_code')),
    )
    op.create_table(
        'bundle_items',
        sa.Column('bundle_id', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['bundle_id'], ['bundles.id'], name=op.f('fk_bundle_items_bundle_id_bundles'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['item_id'], ['service_items.id'], name=op.f('fk_bundle_items_item_id_service_items')),
        sa.PrimaryKeyConstraint('bundle_id', 'item_id', name=op.f('pk_bundle_items')),
    )
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bundle_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_tickets_bundle_id'), ['bundle_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_tickets_bundle_id_bundles'), 'bundles', ['bundle_id'], ['id'])
    op.create_table(
        'case_items',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('result', sa.String(length=30), nullable=True),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('completed_by_id', sa.Integer(), nullable=True),
        sa.Column('completed_by_name', sa.String(length=50), nullable=False),
        sa.Column('window_id', sa.Integer(), nullable=True),
        sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['completed_by_id'], ['users.id'], name=op.f('fk_case_items_completed_by_id_users')),
        sa.ForeignKeyConstraint(['department_id'], ['departments.id'],
                                name=op.f('fk_case_items_department_id_departments')),
        sa.ForeignKeyConstraint(['item_id'], ['service_items.id'], name=op.f('fk_case_items_item_id_service_items')),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_case_items_ticket_id_tickets'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['window_id'], ['cloud_windows.id'], name=op.f('fk_case_items_window_id_cloud_windows')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_case_items')),
    )
    with op.batch_alter_table('case_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_items_ticket_id'), ['ticket_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('case_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_items_ticket_id'))
    op.drop_table('case_items')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_tickets_bundle_id_bundles'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_tickets_bundle_id'))
        batch_op.drop_column('bundle_id')
    op.drop_table('bundle_items')
    op.drop_table('bundles')
