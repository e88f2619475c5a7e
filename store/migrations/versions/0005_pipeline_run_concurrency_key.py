"""Concurrency keys: `pipeline_run.concurrency_key` (empty for a run without one), indexed with
the enterprise so a run finds the runs ahead of it in its lane.

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-01 10:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pipeline_run") as batch:
        batch.add_column(sa.Column("concurrency_key", sa.String(), nullable=True))
        batch.create_index("ix_pipeline_run_enterprise_key",
                           ["enterprise_id", "concurrency_key"])


def downgrade() -> None:
    with op.batch_alter_table("pipeline_run") as batch:
        batch.drop_index("ix_pipeline_run_enterprise_key")
        batch.drop_column("concurrency_key")
