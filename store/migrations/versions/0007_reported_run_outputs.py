"""What devices report beside the statuses: a target run's `output_data`, `error`,
`output_attachment_ids` and `run_message_history`, and the same per command event.

Revision ID: 0007
Revises: 0003
Create Date: 2026-12-01 10:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0003"
branch_labels = None
depends_on = None

# Existing rows read as empty, never null (the server default fills them).
_TARGET_RUN = [("output_data", "{}"), ("error", "[]"), ("output_attachment_ids", "[]"),
               ("run_message_history", "[]")]
_COMMAND_EVENT = [("error", "[]"), ("output_attachment_ids", "[]"),
                  ("run_message_history", "[]")]


def upgrade() -> None:
    for table, columns in (("target_run", _TARGET_RUN), ("command_event", _COMMAND_EVENT)):
        with op.batch_alter_table(table) as batch:
            for name, empty in columns:
                batch.add_column(sa.Column(name, sa.JSON(), nullable=True,
                                           server_default=sa.text(f"'{empty}'")))


def downgrade() -> None:
    for table, columns in (("target_run", _TARGET_RUN), ("command_event", _COMMAND_EVENT)):
        with op.batch_alter_table(table) as batch:
            for name, _ in columns:
                batch.drop_column(name)
