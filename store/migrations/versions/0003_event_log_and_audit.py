"""One numbered log per run for its event stream, and the audit trail of operator actions.

- `status_event.detail` (JSON, null for plain status changes): command events and operator
  actions share the log's sequence; an index on (pipeline_run_id, id) serves a stream's reads
  (it replaces the one on pipeline_run_id alone, its prefix); on SQLite the table becomes
  AUTOINCREMENT so ids of deleted rows are never reused.
- `operator_action`: every operator action with the API key that did it, the time and the
  request.

Revision ID: 0003
Revises: 0008
Create Date: 2026-12-01 10:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0008"
branch_labels = None
depends_on = None


def _serial() -> sa.Column:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                     autoincrement=True, nullable=False)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table(
        "status_event", recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": True} if sqlite else {},
    ) as batch:
        batch.add_column(sa.Column("detail", sa.JSON(), nullable=True))
        batch.drop_index("ix_status_event_pipeline_run_id")
        batch.create_index("ix_status_event_run_seq", ["pipeline_run_id", "id"], unique=False)

    op.create_table(
        "operator_action",
        _serial(),
        sa.Column("enterprise_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("pipeline_run_id", sa.Uuid(), nullable=True),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("key_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=True),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_operator_action_enterprise_id", "operator_action", ["enterprise_id"],
                    unique=False)
    op.create_index("ix_operator_action_pipeline_run_id", "operator_action",
                    ["pipeline_run_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_operator_action_pipeline_run_id", table_name="operator_action")
    op.drop_index("ix_operator_action_enterprise_id", table_name="operator_action")
    op.drop_table("operator_action")
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("status_event", recreate="always" if sqlite else "auto") as batch:
        batch.drop_index("ix_status_event_run_seq")
        batch.create_index("ix_status_event_pipeline_run_id", ["pipeline_run_id"],
                           unique=False)
        batch.drop_column("detail")
