"""call links: per ticket and participant, the worst link grade and the seconds spent poor

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 22:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'call_links',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('grade', sa.String(length=8), nullable=False),
        sa.Column('worst_grade', sa.String(length=8), nullable=False),
        sa.Column('poor_s', sa.Integer(), nullable=False),
        sa.Column('fair_s', sa.Integer(), nullable=False),
        sa.Column('sampled_s', sa.Integer(), nullable=False),
        sa.Column('loss_pct', sa.Double(), nullable=True),
        sa.Column('rtt_ms', sa.Integer(), nullable=True),
        sa.Column('bitrate_kbps', sa.Integer(), nullable=True),
        sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_call_links_ticket_id_tickets'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_call_links_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_call_links')),
    )
    with op.batch_alter_table('call_links', schema=None) as batch_op:
        batch_op.create_index('ix_call_links_ticket_user', ['ticket_id', 'user_id'], unique=True)
        batch_op.create_index(batch_op.f('ix_call_links_first_at'), ['first_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('call_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_links_first_at'))
        batch_op.drop_index('ix_call_links_ticket_user')
    op.drop_table('call_links')
