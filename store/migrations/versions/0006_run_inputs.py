"""Run inputs: `pipeline_run.input_values` (plain inputs) and `sensitive_input_aliases` (the
names of its sensitive inputs; their values are never stored). Empty for older runs.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 11:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pipeline_run") as batch:
        batch.add_column(sa.Column("input_values", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("sensitive_input_aliases", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_run") as batch:
        batch.drop_column("sensitive_input_aliases")
        batch.drop_column("input_values")
