"""The first revision: the schema exactly as `create_all` made it before migrations.

A store made by `create_all` is stamped at this revision when it is adopted, so it must
never change.

Revision ID: 0001
Revises: -
Create Date: 2026-12-01 07:49:34.632513
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "command",
        sa.Column("target_run_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("operation_type", sa.String(), nullable=False),
        sa.Column("args", sa.JSON(), nullable=True),
        sa.Column("gateway", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("output", sa.JSON(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("enterprise_id", sa.Uuid(), nullable=False),
        sa.Column("last_sequence", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_command_device_id"), "command", ["device_id"], unique=False)
    op.create_index(op.f("ix_command_status"), "command", ["status"], unique=False)
    op.create_index(op.f("ix_command_target_run_id"), "command", ["target_run_id"], unique=False)

    op.create_table(
        "command_event",
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("output", sa.JSON(), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=True),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("command_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_command_event_command_id"), "command_event", ["command_id"], unique=False
    )

    op.create_table(
        "command_signal_outbox",
        sa.Column("command_event_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("command_id", sa.Uuid(), nullable=False),
        sa.Column("target_run_id", sa.Uuid(), nullable=False),
        sa.Column("at_epoch", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("command_event_id"),
    )
    op.create_index(
        op.f("ix_command_signal_outbox_command_id"),
        "command_signal_outbox",
        ["command_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_command_signal_outbox_target_run_id"),
        "command_signal_outbox",
        ["target_run_id"],
        unique=False,
    )

    op.create_table(
        "enterprise",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_enterprise_name"), "enterprise", ["name"], unique=True)

    op.create_table(
        "status_event",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("pipeline_run_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(), nullable=False),
        sa.Column("to_status", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_status_event_pipeline_run_id"), "status_event", ["pipeline_run_id"], unique=False
    )
    op.create_index(op.f("ix_status_event_run_id"), "status_event", ["run_id"], unique=False)

    op.create_table(
        "api_token",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("enterprise_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprise.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_api_token_enterprise_id"), "api_token", ["enterprise_id"], unique=False
    )
    op.create_index(op.f("ix_api_token_token_hash"), "api_token", ["token_hash"], unique=True)

    op.create_table(
        "device",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("alias", sa.String(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("enterprise_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprise.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_device_enterprise_id"), "device", ["enterprise_id"], unique=False)
    op.create_index(op.f("ix_device_name"), "device", ["name"], unique=False)

    op.create_table(
        "device_group",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("enterprise_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprise.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_device_group_enterprise_id"), "device_group", ["enterprise_id"], unique=False
    )

    op.create_table(
        "pipeline",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("enterprise_id", sa.Uuid(), nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("run_counter", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprise.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_pipeline_enterprise_id"), "pipeline", ["enterprise_id"], unique=False)
    op.create_index(op.f("ix_pipeline_name"), "pipeline", ["name"], unique=False)

    op.create_table(
        "pipeline_run",
        sa.Column("pipeline_id", sa.Uuid(), nullable=False),
        sa.Column("pipeline_name", sa.String(), nullable=False),
        sa.Column("run_number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("status_reason", sa.String(), nullable=False),
        sa.Column("trigger_type", sa.String(), nullable=False),
        sa.Column("trigger_source", sa.String(), nullable=False),
        sa.Column("previous_run_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("enterprise_id", sa.Uuid(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprise.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pipeline_id", "run_number"),
    )
    op.create_index(
        op.f("ix_pipeline_run_enterprise_id"), "pipeline_run", ["enterprise_id"], unique=False
    )
    op.create_index(
        op.f("ix_pipeline_run_pipeline_id"), "pipeline_run", ["pipeline_id"], unique=False
    )
    op.create_index(
        op.f("ix_pipeline_run_pipeline_name"), "pipeline_run", ["pipeline_name"], unique=False
    )
    op.create_index(op.f("ix_pipeline_run_status"), "pipeline_run", ["status"], unique=False)

    op.create_table(
        "device_group_member",
        sa.Column("device_group_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_group_id"],
            ["device_group.id"],
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["device.id"],
        ),
        sa.PrimaryKeyConstraint("device_group_id", "device_id"),
    )
    op.create_index(
        op.f("ix_device_group_member_device_id"), "device_group_member", ["device_id"], unique=False
    )

    op.create_table(
        "stage",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pipeline_id", sa.Uuid(), nullable=False),
        sa.Column("order", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(), nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("rollout", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipeline.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_stage_pipeline_id"), "stage", ["pipeline_id"], unique=False)

    op.create_table(
        "stage_run",
        sa.Column("pipeline_run_id", sa.Uuid(), nullable=False),
        sa.Column("stage_id", sa.Uuid(), nullable=False),
        sa.Column("stage_name", sa.String(), nullable=False),
        sa.Column("order", sa.Integer(), nullable=False),
        sa.Column("run_number", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(), nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("status_reason", sa.String(), nullable=False),
        sa.Column("device_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("enterprise_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_run_id"],
            ["pipeline_run.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_stage_run_enterprise_id"), "stage_run", ["enterprise_id"], unique=False
    )
    op.create_index(
        op.f("ix_stage_run_pipeline_run_id"), "stage_run", ["pipeline_run_id"], unique=False
    )

    op.create_table(
        "target_list",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pipeline_id", sa.Uuid(), nullable=False),
        sa.Column("target_list_type", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipeline.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_target_list_pipeline_id"), "target_list", ["pipeline_id"], unique=False
    )

    op.create_table(
        "operation_list",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pipeline_id", sa.Uuid(), nullable=False),
        sa.Column("stage_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipeline.id"],
        ),
        sa.ForeignKeyConstraint(
            ["stage_id"],
            ["stage.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_operation_list_pipeline_id"), "operation_list", ["pipeline_id"], unique=False
    )
    op.create_index(
        op.f("ix_operation_list_stage_id"), "operation_list", ["stage_id"], unique=False
    )

    op.create_table(
        "stage_run_operation",
        sa.Column("stage_run_id", sa.Uuid(), nullable=False),
        sa.Column("operation_type", sa.String(), nullable=False),
        sa.Column("args", sa.JSON(), nullable=True),
        sa.Column("order", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["stage_run_id"],
            ["stage_run.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_stage_run_operation_stage_run_id"),
        "stage_run_operation",
        ["stage_run_id"],
        unique=False,
    )

    op.create_table(
        "stage_target_list",
        sa.Column("stage_id", sa.Uuid(), nullable=False),
        sa.Column("target_list_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["stage_id"],
            ["stage.id"],
        ),
        sa.ForeignKeyConstraint(
            ["target_list_id"],
            ["target_list.id"],
        ),
        sa.PrimaryKeyConstraint("stage_id", "target_list_id"),
    )
    op.create_table(
        "target_list_device",
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("target_list_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["device.id"],
        ),
        sa.ForeignKeyConstraint(
            ["target_list_id"],
            ["target_list.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("target_list_id", "device_id"),
    )
    op.create_index(
        op.f("ix_target_list_device_target_list_id"),
        "target_list_device",
        ["target_list_id"],
        unique=False,
    )

    op.create_table(
        "target_list_group",
        sa.Column("device_group_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("target_list_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_group_id"],
            ["device_group.id"],
        ),
        sa.ForeignKeyConstraint(
            ["target_list_id"],
            ["target_list.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("target_list_id", "device_group_id"),
    )
    op.create_index(
        op.f("ix_target_list_group_target_list_id"),
        "target_list_group",
        ["target_list_id"],
        unique=False,
    )

    op.create_table(
        "target_run",
        sa.Column("stage_run_id", sa.Uuid(), nullable=False),
        sa.Column("pipeline_run_id", sa.Uuid(), nullable=False),
        sa.Column("stage_run_operation_id", sa.Uuid(), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("device_name", sa.String(), nullable=False),
        sa.Column("device_alias", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("status_reason", sa.String(), nullable=False),
        sa.Column("command_id", sa.Uuid(), nullable=True),
        sa.Column("command_status", sa.String(), nullable=True),
        sa.Column("command_meta", sa.JSON(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("retry_of", sa.Uuid(), nullable=True),
        sa.Column("superseded_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("enterprise_id", sa.Uuid(), nullable=False),
        sa.Column("operation_order", sa.Integer(), nullable=False),
        sa.Column("device_seq", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["stage_run_id"],
            ["stage_run.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stage_run_id", "target_id", "stage_run_operation_id", "generation"),
    )
    op.create_index(
        op.f("ix_target_run_pipeline_run_id"), "target_run", ["pipeline_run_id"], unique=False
    )
    op.create_index(
        "ix_target_run_stage_seq",
        "target_run",
        ["stage_run_id", "operation_order", "device_seq"],
        unique=False,
    )
    op.create_index(
        "ix_target_run_stage_status",
        "target_run",
        ["stage_run_id", "status", "operation_order", "device_seq", "superseded_by"],
        unique=False,
    )

    op.create_table(
        "operation",
        sa.Column("operation_type", sa.String(), nullable=False),
        sa.Column("args", sa.JSON(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("operation_list_id", sa.Uuid(), nullable=False),
        sa.Column("order", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["operation_list_id"],
            ["operation_list.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_operation_operation_list_id"), "operation", ["operation_list_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("operation")
    op.drop_table("target_run")
    op.drop_table("target_list_group")
    op.drop_table("target_list_device")
    op.drop_table("stage_target_list")
    op.drop_table("stage_run_operation")
    op.drop_table("operation_list")
    op.drop_table("target_list")
    op.drop_table("stage_run")
    op.drop_table("stage")
    op.drop_table("device_group_member")
    op.drop_table("pipeline_run")
    op.drop_table("pipeline")
    op.drop_table("device_group")
    op.drop_table("device")
    op.drop_table("api_token")
    op.drop_table("status_event")
    op.drop_table("enterprise")
    op.drop_table("command_signal_outbox")
    op.drop_table("command_event")
    op.drop_table("command")
