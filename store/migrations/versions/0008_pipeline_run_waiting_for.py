"""Why a pipeline run waits: `pipeline_run.waiting_for` (a pause and who paused, or the gate).

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-01 10:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Empty for every existing run: older runs never recorded why they wait.
    with op.batch_alter_table("pipeline_run") as batch:
        batch.add_column(sa.Column("waiting_for", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_run") as batch:
        batch.drop_column("waiting_for")
