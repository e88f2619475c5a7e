"""Retries of finished runs, who and what started a run, pipeline versions, gate decisions.

- pipeline.version: 1, +1 per edit (existing pipelines start at 1);
- pipeline_run: trigger_source_type, pipeline_version (0 on runs from before versions),
  retry_mode and retry_plan, and an index on previous_run_id (a run lists its retries);
- stage_run: carry and carried_from (a retry's stage carrying the retried one's results),
  promoted_by (who released its manual gate);
- target_run: carried_over_from (a retry's row carrying the retried run's result).

Revision ID: 0004
Revises: 0006
Create Date: 2026-12-01 10:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pipeline") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False,
                                   server_default="1"))
    with op.batch_alter_table("pipeline_run") as batch:
        batch.add_column(sa.Column("trigger_source_type", sa.String(), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("pipeline_version", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("retry_mode", sa.String(), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("retry_plan", sa.JSON(), nullable=True))
        batch.create_index("ix_pipeline_run_previous_run_id", ["previous_run_id"])
    with op.batch_alter_table("stage_run") as batch:
        batch.add_column(sa.Column("promoted_by", sa.String(), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("carried_from", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("carry", sa.String(), nullable=False, server_default=""))
    with op.batch_alter_table("target_run") as batch:
        batch.add_column(sa.Column("carried_over_from", sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("target_run") as batch:
        batch.drop_column("carried_over_from")
    with op.batch_alter_table("stage_run") as batch:
        batch.drop_column("carry")
        batch.drop_column("carried_from")
        batch.drop_column("promoted_by")
    with op.batch_alter_table("pipeline_run") as batch:
        batch.drop_index("ix_pipeline_run_previous_run_id")
        batch.drop_column("retry_plan")
        batch.drop_column("retry_mode")
        batch.drop_column("pipeline_version")
        batch.drop_column("trigger_source_type")
    with op.batch_alter_table("pipeline") as batch:
        batch.drop_column("version")
