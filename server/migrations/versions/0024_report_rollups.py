"""统计报表日汇总: the report's daily rollups of settled service days (ticket figures per
dimension key and queue, waits by bucket; by day, and whole months summed) and the days and
months they cover

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02 18:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

SUMS = ("tickets_n", "served_n", "no_shows_n", "transfers_sum", "wait_sum", "wait_n",
        "handling_sum", "handling_n", "ratings_n", "good_part", "bad_n")


def _keys() -> list[sa.Column[object]]:
    return [sa.Column('service_day', sa.Date(), nullable=False),
            sa.Column('dimension', sa.String(length=20), nullable=False),
            sa.Column('key', sa.Integer(), nullable=True),
            sa.Column('centre_id', sa.Integer(), nullable=False),
            sa.Column('department_id', sa.Integer(), nullable=False),
            sa.Column('monthly', sa.Boolean(), nullable=False)]


def upgrade() -> None:
    op.create_table('report_rollups', *_keys(), *(sa.Column(name, sa.Float(), nullable=False) for name in SUMS))
    op.create_index('ix_report_rollups_day', 'report_rollups', ['dimension', 'monthly', 'service_day'], unique=False)
    op.create_table('report_rollup_waits', *_keys(),
                    sa.Column('bucket', sa.Integer(), nullable=False),
                    sa.Column('n', sa.Integer(), nullable=False),
                    sa.Column('total', sa.Float(), nullable=False))
    op.create_index('ix_report_rollup_waits_day', 'report_rollup_waits', ['dimension', 'monthly', 'service_day'], unique=False)
    op.create_table('report_rollup_month_waits',
                    sa.Column('service_day', sa.Date(), nullable=False),
                    sa.Column('dimension', sa.String(length=20), nullable=False),
                    sa.Column('key', sa.Integer(), nullable=True),
                    sa.Column('bucket', sa.Integer(), nullable=False),
                    sa.Column('n', sa.Integer(), nullable=False),
                    sa.Column('total', sa.Float(), nullable=False))
    op.create_index('ix_report_rollup_month_waits_day', 'report_rollup_month_waits', ['dimension', 'service_day'],
                    unique=False)
    op.create_table('report_rollup_days',
                    sa.Column('service_day', sa.Date(), nullable=False),
                    sa.Column('rolled_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('service_day', name=op.f('pk_report_rollup_days')))
    op.create_table('report_rollup_months',
                    sa.Column('month', sa.Date(), nullable=False),
                    sa.Column('rolled_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('month', name=op.f('pk_report_rollup_months')))


def downgrade() -> None:
    op.drop_table('report_rollup_months')
    op.drop_table('report_rollup_days')
    op.drop_index('ix_report_rollup_month_waits_day', table_name='report_rollup_month_waits')
    op.drop_table('report_rollup_month_waits')
    op.drop_index('ix_report_rollup_waits_day', table_name='report_rollup_waits')
    op.drop_table('report_rollup_waits')
    op.drop_index('ix_report_rollups_day', table_name='report_rollups')
    op.drop_table('report_rollups')
