"""certificates: 证照到期提醒 — certificate types with their reminder rules, the registry, the reminders sent

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02 16:54:52
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('certificate_types',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('reminder_days', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['service_items.id'], name=op.f('fk_certificate_types_item_id_service_items')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_certificate_types')),
    sa.UniqueConstraint('name', name=op.f('uq_certificate_types_name'))
    )
    op.create_table('certificates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('type_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=64), nullable=False),
    sa.Column('holder_name', sa.String(length=100), nullable=False),
    sa.Column('holder_sealed', sa.Text(), nullable=False),
    sa.Column('phone_hash', sa.String(length=64), nullable=False),
    sa.Column('phone_masked', sa.String(length=20), nullable=False),
    sa.Column('id_number_hash', sa.String(length=64), nullable=True),
    sa.Column('id_number_masked', sa.String(length=32), nullable=True),
    sa.Column('expires_on', sa.Date(), nullable=False),
    sa.Column('opted_out_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('opted_out_by', sa.String(length=10), nullable=True),
    sa.Column('renewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('renewal_source', sa.String(length=10), nullable=True),
    sa.Column('renewal_ticket_id', sa.Integer(), nullable=True),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['renewal_ticket_id'], ['tickets.id'], name=op.f('fk_certificates_renewal_ticket_id_tickets'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['type_id'], ['certificate_types.id'], name=op.f('fk_certificates_type_id_certificate_types')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_certificates'))
    )
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_certificates_expires_on'), ['expires_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_certificates_id_number_hash'), ['id_number_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_certificates_phone_hash'), ['phone_hash'], unique=False)
        batch_op.create_index('ix_certificates_type_number', ['type_id', 'number'], unique=True)

    op.create_table('certificate_reminders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('certificate_id', sa.Integer(), nullable=False),
    sa.Column('type_id', sa.Integer(), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=False),
    sa.Column('days_before', sa.Integer(), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('link_expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opens', sa.Integer(), nullable=False),
    sa.Column('renewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificates.id'], name=op.f('fk_certificate_reminders_certificate_id_certificates'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], name=op.f('fk_certificate_reminders_notification_id_notifications')),
    sa.ForeignKeyConstraint(['type_id'], ['certificate_types.id'], name=op.f('fk_certificate_reminders_type_id_certificate_types')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_certificate_reminders')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_certificate_reminders_token_hash'))
    )
    with op.batch_alter_table('certificate_reminders', schema=None) as batch_op:
        batch_op.create_index('ix_certificate_reminders_once', ['certificate_id', 'expires_on', 'days_before'], unique=True)
        batch_op.create_index(batch_op.f('ix_certificate_reminders_sent_at'), ['sent_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('certificate_reminders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_certificate_reminders_sent_at'))
        batch_op.drop_index('ix_certificate_reminders_once')

    op.drop_table('certificate_reminders')
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.drop_index('ix_certificates_type_number')
        batch_op.drop_index(batch_op.f('ix_certificates_phone_hash'))
        batch_op.drop_index(batch_op.f('ix_certificates_id_number_hash'))
        batch_op.drop_index(batch_op.f('ix_certificates_expires_on'))

    op.drop_table('certificates')
    op.drop_table('certificate_types')
