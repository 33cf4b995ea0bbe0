"""situations (颗粒化): an item's questions and the situations they lead to, each with its own
checklist lines, time limit, fee and pickup place; tickets and checklist links record one

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 09:45:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'item_questions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('text', sa.String(length=200), nullable=False),
        sa.Column('options', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['item_id'], ['service_items.id'], name=op.f('fk_item_questions_item_id_service_items'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_item_questions')),
    )
    with op.batch_alter_table('item_questions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_questions_item_id'), ['item_id'], unique=False)
    op.create_table(
        'situations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('conditions', sa.JSON(), nullable=False),
        sa.Column('time_limit_days', sa.Integer(), nullable=True),
        sa.Column('fee', sa.String(length=200), nullable=False),
        sa.Column('pickup', sa.String(length=200), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['item_id'], ['service_items.id'], name=op.f('fk_situations_item_id_service_items'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_situations')),
    )
    with op.batch_alter_table('situations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_situations_item_id'), ['item_id'], unique=False)
    with op.batch_alter_table('materials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('situation_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_materials_situation_id'), ['situation_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_materials_situation_id_situations'), 'situations',
                                    ['situation_id'], ['id'], ondelete='CASCADE')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('situation_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_tickets_situation_id_situations'), 'situations',
                                    ['situation_id'], ['id'])
    with op.batch_alter_table('checklist_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('situation_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_checklist_links_situation_id_situations'), 'situations',
                                    ['situation_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('checklist_links', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_checklist_links_situation_id_situations'), type_='foreignkey')
        batch_op.drop_column('situation_id')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_tickets_situation_id_situations'), type_='foreignkey')
        batch_op.drop_column('situation_id')
    with op.batch_alter_table('materials', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_materials_situation_id_situations'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_materials_situation_id'))
        batch_op.drop_column('situation_id')
    with op.batch_alter_table('situations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_situations_item_id'))
    op.drop_table('situations')
    with op.batch_alter_table('item_questions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_questions_item_id'))
    op.drop_table('item_questions')
