"""residents: 群众/企业 accounts signed in with an SMS code (屏对屏), direct tickets

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 10:50:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sign_in_codes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('phone_hash', sa.String(length=64), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('ip', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in_codes')),
    )
    with op.batch_alter_table('sign_in_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sign_in_codes_phone_hash'), ['phone_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_sign_in_codes_ip'), ['ip'], unique=False)
        batch_op.create_index(batch_op.f('ix_sign_in_codes_created_at'), ['created_at'], unique=False)
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('phone_sealed', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('firm_credit_code', sa.String(length=18), nullable=True))
        batch_op.add_column(sa.Column('firm_name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('consent_version', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('consent_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_users_phone_hash'), ['phone_hash'])
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=10), server_default='point', nullable=False))
        batch_op.alter_column('extension_point_id', existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.alter_column('extension_point_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('source')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_phone_hash'), type_='unique')
        for column in ('consent_at', 'consent_version', 'firm_name', 'firm_credit_code', 'phone_sealed', 'phone_hash'):
            batch_op.drop_column(column)
    with op.batch_alter_table('sign_in_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sign_in_codes_created_at'))
        batch_op.drop_index(batch_op.f('ix_sign_in_codes_ip'))
        batch_op.drop_index(batch_op.f('ix_sign_in_codes_phone_hash'))
    op.drop_table('sign_in_codes')
