"""checklist links: 一次性告知, an item's checklist sent to a resident's phone as a short link

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 05:50:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'checklist_links',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=True),
        sa.Column('centre_id', sa.Integer(), nullable=True),
        sa.Column('sent_by_id', sa.Integer(), nullable=False),
        sa.Column('phone_masked', sa.String(length=20), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('opens', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['centre_id'], ['centres.id'], name=op.f('fk_checklist_links_centre_id_centres')),
        sa.ForeignKeyConstraint(['item_id'], ['service_items.id'], name=op.f('fk_checklist_links_item_id_service_items')),
        sa.ForeignKeyConstraint(['sent_by_id'], ['users.id'], name=op.f('fk_checklist_links_sent_by_id_users')),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_checklist_links_ticket_id_tickets'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_checklist_links')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_checklist_links_token_hash')),
    )
    with op.batch_alter_table('checklist_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checklist_links_ticket_id'), ['ticket_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('checklist_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checklist_links_ticket_id'))
    op.drop_table('checklist_links')
