"""The MQTT gateway's own tables, on their own metadata: the job executions it serves and the
lease that elects the one worker answering device requests. Not production tables: the gateway
creates them when it starts (`create_tables`), so the store's schema never knows them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
)
from sqlalchemy.engine import Engine

_MQTT_METADATA = MetaData()

# One row per command: its job execution, the state devices read and change over MQTT.
JobExecutionRow = Table(
    "mqtt_job_execution", _MQTT_METADATA,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
           autoincrement=True),  # queue order
    Column("command_id", Uuid(), nullable=False, unique=True),  # the jobId
    Column("thing_name", String(), nullable=False, index=True),
    Column("status", String(), nullable=False, index=True),
    Column("job_document", JSON(), nullable=False),
    Column("status_details", JSON(), nullable=False),
    Column("version_number", Integer(), nullable=False),
    Column("execution_number", Integer(), nullable=False),
    Column("queued_at", Float(), nullable=False),
    Column("started_at", Float(), nullable=True),
    Column("last_updated_at", Float(), nullable=False),
    # The last version passed on as a command event: below version_number, one is still owed.
    Column("reported_version", Integer(), nullable=False, default=0),
)

# Who answers device requests under a topic root, until when (epoch seconds).
ResponderLease = Table(
    "mqtt_responder_lease", _MQTT_METADATA,
    Column("name", String(), primary_key=True),
    Column("holder", String(), nullable=False),
    Column("expires_at", Float(), nullable=False),
)


def create_tables(engine: Engine) -> None:
    """The gateway's tables, if missing (the production schema never includes them)."""
    _MQTT_METADATA.create_all(engine)
