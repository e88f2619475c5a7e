"""Tables for what operators define: enterprises, tokens, devices, groups and pipelines."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from domain.schemas import DEFAULT_PIPELINE_TIMEOUT_SECONDS, DEFAULT_STAGE_TIMEOUT_SECONDS
from store.types import JSONType, UTCDateTime, utcnow


def _created() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime)


class Enterprise(SQLModel, table=True):
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    name: str = Field(unique=True, index=True)
    created_at: datetime = _created()


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    enterprise_id: UUID = Field(foreign_key="enterprise.id", index=True)
    name: str = ""
    token_hash: str = Field(unique=True, index=True)  # sha256 of the key; the key is never stored
    created_at: datetime = _created()


class Device(SQLModel, table=True):
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    enterprise_id: UUID = Field(foreign_key="enterprise.id", index=True)
    name: str = Field(index=True)
    alias: str = ""
    attributes: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSONType))
    created_at: datetime = _created()
    updated_at: datetime = _created()


class DeviceGroup(SQLModel, table=True):
    __tablename__ = "device_group"
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    enterprise_id: UUID = Field(foreign_key="enterprise.id", index=True)
    name: str
    created_at: datetime = _created()
    updated_at: datetime = _created()


class DeviceGroupMember(SQLModel, table=True):
    __tablename__ = "device_group_member"
    device_group_id: UUID = Field(foreign_key="device_group.id", primary_key=True)
    device_id: UUID = Field(foreign_key="device.id", primary_key=True, index=True)


class Pipeline(SQLModel, table=True):
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    enterprise_id: UUID = Field(foreign_key="enterprise.id", index=True)
    name: str = Field(index=True)
    description: str = ""
    timeout_seconds: int = DEFAULT_PIPELINE_TIMEOUT_SECONDS
    # Last run number handed out; bumped atomically so numbers are unique under concurrent starts.
    run_counter: int = 0
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Stage(SQLModel, table=True):
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    pipeline_id: UUID = Field(foreign_key="pipeline.id", index=True)
    name: str
    description: str = ""
    order: int = 0
    trigger: str = "manual"
    timeout_seconds: int = DEFAULT_STAGE_TIMEOUT_SECONDS
    rollout: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType))
    created_at: datetime = _created()
    updated_at: datetime = _created()


class TargetList(SQLModel, table=True):
    __tablename__ = "target_list"
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    pipeline_id: UUID = Field(foreign_key="pipeline.id", index=True)
    name: str
    target_list_type: str = "DEVICES"  # DEVICES or GROUPS
    created_at: datetime = _created()
    updated_at: datetime = _created()


class TargetListDevice(SQLModel, table=True):
    __tablename__ = "target_list_device"
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    target_list_id: UUID = Field(foreign_key="target_list.id", index=True)
    device_id: UUID = Field(foreign_key="device.id")
    created_at: datetime = _created()
    __table_args__ = (UniqueConstraint("target_list_id", "device_id"),)


class TargetListGroup(SQLModel, table=True):
    __tablename__ = "target_list_group"
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    target_list_id: UUID = Field(foreign_key="target_list.id", index=True)
    device_group_id: UUID = Field(foreign_key="device_group.id")
    created_at: datetime = _created()
    __table_args__ = (UniqueConstraint("target_list_id", "device_group_id"),)


class StageTargetList(SQLModel, table=True):
    __tablename__ = "stage_target_list"
    stage_id: UUID = Field(foreign_key="stage.id", primary_key=True)
    target_list_id: UUID = Field(foreign_key="target_list.id", primary_key=True)


class OperationList(SQLModel, table=True):
    __tablename__ = "operation_list"
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    pipeline_id: UUID = Field(foreign_key="pipeline.id", index=True)
    stage_id: UUID = Field(foreign_key="stage.id", index=True)
    name: str = ""
    description: str = ""
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Operation(SQLModel, table=True):
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    operation_list_id: UUID = Field(foreign_key="operation_list.id", index=True)
    operation_type: str
    args: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType))
    order: int = 0
    created_at: datetime = _created()
    updated_at: datetime = _created()
