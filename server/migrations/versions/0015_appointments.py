"""appointments: 预约 — residents book a slot; at its time the ticket enters ahead of walk-ins

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 10:45:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'appointments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('situation_id', sa.Integer(), nullable=True),
        sa.Column('centre_id', sa.Integer(), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=False),
        sa.Column('slot_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('slot_end', sa.DateTime(timezone=True), nullable=False),
        sa.Column('name', sa.String(length=50), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('note', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['centre_id'], ['centres.id'], name=op.f('fk_appointments_centre_id_centres')),
        sa.ForeignKeyConstraint(['department_id'], ['departments.id'],
                                name=op.f('fk_appointments_department_id_departments')),
        sa.ForeignKeyConstraint(['item_id'], ['service_items.id'], name=op.f('fk_appointments_item_id_service_items')),
        sa.ForeignKeyConstraint(['situation_id'], ['situations.id'],
                                name=op.f('fk_appointments_situation_id_situations')),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_appointments_ticket_id_tickets'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_appointments_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_appointments')),
    )
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.create_index('ix_appointments_slot', ['centre_id', 'department_id', 'slot_start'], unique=False)
        batch_op.create_index(batch_op.f('ix_appointments_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_appointments_user_id'), ['user_id'], unique=False)
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('appointment_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('appointment_at')
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_appointments_user_id'))
        batch_op.drop_index(batch_op.f('ix_appointments_state'))
        batch_op.drop_index('ix_appointments_slot')
    op.drop_table('appointments')
