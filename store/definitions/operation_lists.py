"""Operation lists of a stage and the operations in them (what a stage sends to each device):
families, reads and writes. Arguments are checked by domain.operations."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Column, delete, func
from sqlmodel import Field, Session, SQLModel, col, select

from domain.bounds import MAX_JSON_DEPTH, JsonObject, Position
from domain.operations import InvalidOperation, validate_operation
from store.definitions.fields import (
    DESCRIPTION_MAX,
    InvalidDefinition,
    apply_changes,
    next_position,
    text_field,
    touch,
)
from store.definitions.pipelines import get_stage
from store.paging import Page, page
from store.shapes import Public, stamp
from store.tenancy import owned, owner_key
from store.types import JSONType

# ---- operation lists ---------------------------------------------------------------------------


class OperationListBase(SQLModel):
    name: str = text_field(255)
    description: str = text_field(DESCRIPTION_MAX)


class OperationListCreate(OperationListBase):
    pipeline_id: UUID | None = Field(
        default=None, description="Optional; when given it must be the stage's pipeline."
    )


class OperationListUpdate(SQLModel):
    name: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)


class OperationList(OperationListBase, table=True):
    __tablename__ = "operation_list"
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    pipeline_id: UUID = owner_key("pipeline.id", index=True)
    stage_id: UUID = Field(foreign_key="stage.id", index=True)
    created_at: datetime = stamp()
    updated_at: datetime = stamp()


class _ListKeys(SQLModel):
    id: UUID
    pipeline_id: UUID
    stage_id: UUID


class OperationListPublic(OperationListBase, _ListKeys, Public):
    created_at: datetime
    updated_at: datetime


# ---- operations --------------------------------------------------------------------------------

ARGS_DOC = (f"What the device needs for the operation (see operation_type): a JSON object "
            f"nested at most {MAX_JSON_DEPTH} levels.")


class OperationBase(SQLModel):
    operation_type: str = Field(
        description="INSTALL, UNINSTALL, REBOOT, UPDATE_DEVICE_CONFIG, SET_APP_STATE or WIPE "
        "(any case)."
    )
    args: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType))


class OperationCreate(OperationBase):
    args: JsonObject = Field(default_factory=dict, description=ARGS_DOC)
    order: Position | None = Field(default=None, description="Default: after the last one.")


class OperationUpdate(SQLModel):
    operation_type: str | None = None
    args: JsonObject | None = Field(default=None, description=ARGS_DOC)
    order: Position | None = None


class Operation(OperationBase, table=True):
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    operation_list_id: UUID = owner_key("operation_list.id", index=True)
    order: int = 0
    created_at: datetime = stamp()
    updated_at: datetime = stamp()


class _OperationKeys(SQLModel):
    id: UUID
    operation_list_id: UUID


class OperationPublic(OperationBase, _OperationKeys, Public):
    order: int
    created_at: datetime
    updated_at: datetime


def check_operation(operation_type: str, args: dict[str, Any] | None,
                    field: str) -> tuple[str, dict]:
    """The operation's canonical type and arguments; InvalidDefinition naming the field."""
    try:
        return validate_operation(operation_type, args)
    except InvalidOperation as exc:
        full = f"{field}.{exc.field}" if field else exc.field
        message = str(exc) if str(exc).startswith(full) else f"{full}: {exc}"
        raise InvalidDefinition(full, message) from exc


# ---- reads -------------------------------------------------------------------------------------


def get_operation_list(
    session: Session, enterprise_id: UUID, operation_list_id: UUID
) -> OperationList:
    return owned(session, OperationList, operation_list_id, enterprise_id, "operation list")


def list_stage_operation_lists(
    session: Session, enterprise_id: UUID, stage_id: UUID, *, limit: int, offset: int
) -> Page[OperationList]:
    get_stage(session, enterprise_id, stage_id)
    stmt = select(OperationList).where(OperationList.stage_id == stage_id)
    return page(session, stmt, [col(OperationList.created_at), col(OperationList.id)],
                limit, offset)


def get_operation(
    session: Session, enterprise_id: UUID, operation_list_id: UUID, operation_id: UUID
) -> Operation:
    get_operation_list(session, enterprise_id, operation_list_id)
    return owned(session, Operation, operation_id, enterprise_id, "operation",
                 operation_list_id=operation_list_id)


def list_operations(
    session: Session, enterprise_id: UUID, operation_list_id: UUID, *, limit: int, offset: int
) -> Page[Operation]:
    get_operation_list(session, enterprise_id, operation_list_id)
    stmt = select(Operation).where(Operation.operation_list_id == operation_list_id)
    return page(session, stmt, [col(Operation.order), col(Operation.created_at),
                                col(Operation.id)], limit, offset)


# ---- writes ------------------------------------------------------------------------------------


def create_operation_list(session: Session, enterprise_id: UUID, stage_id: UUID,
                          data: OperationListCreate) -> OperationList:
    stage = get_stage(session, enterprise_id, stage_id)
    if data.pipeline_id is not None and data.pipeline_id != stage.pipeline_id:
        raise InvalidDefinition(
            "pipeline_id", f"pipeline_id {data.pipeline_id} is not the stage's pipeline "
            f"({stage.pipeline_id})",
        )
    operation_list = OperationList(pipeline_id=stage.pipeline_id, stage_id=stage_id,
                                   name=data.name, description=data.description)
    session.add(operation_list)
    return operation_list


def update_operation_list(session: Session, enterprise_id: UUID, operation_list_id: UUID,
                          data: OperationListUpdate) -> OperationList:
    operation_list = get_operation_list(session, enterprise_id, operation_list_id)
    apply_changes(operation_list, data.model_dump(exclude_unset=True, exclude_none=True))
    session.add(operation_list)
    return operation_list


def remove_operation_lists(session: Session, where: Any) -> None:
    """Delete the operation lists matching `where`, with their operations."""
    list_ids = select(OperationList.id).where(where)
    session.execute(delete(Operation).where(col(Operation.operation_list_id).in_(list_ids)))
    session.execute(delete(OperationList).where(where))


def delete_operation_list(session: Session, enterprise_id: UUID,
                          operation_list_id: UUID) -> OperationList:
    operation_list = get_operation_list(session, enterprise_id, operation_list_id)
    session.execute(delete(Operation).where(
        col(Operation.operation_list_id) == operation_list_id))
    session.delete(operation_list)
    return operation_list


def create_operation(session: Session, enterprise_id: UUID, operation_list_id: UUID,
                     data: OperationCreate) -> Operation:
    operation_list = get_operation_list(session, enterprise_id, operation_list_id)
    operation_type, args = check_operation(data.operation_type, data.args, "")
    order = data.order
    if order is None:
        last = session.exec(select(func.max(Operation.order)).where(
            Operation.operation_list_id == operation_list_id)).one()
        order = next_position(last, 0, "operation")
    operation = Operation(operation_list_id=operation_list_id, operation_type=operation_type,
                          args=args, order=order)
    session.add(operation)
    touch(operation_list)
    session.add(operation_list)
    return operation


def update_operation(session: Session, enterprise_id: UUID, operation_list_id: UUID,
                     operation_id: UUID, data: OperationUpdate) -> Operation:
    operation = get_operation(session, enterprise_id, operation_list_id, operation_id)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    operation_type, args = check_operation(
        changes.get("operation_type", operation.operation_type),
        changes.get("args", operation.args), "",
    )
    changes["operation_type"], changes["args"] = operation_type, args
    apply_changes(operation, changes)
    session.add(operation)
    return operation


def delete_operation(session: Session, enterprise_id: UUID, operation_list_id: UUID,
                     operation_id: UUID) -> Operation:
    operation = get_operation(session, enterprise_id, operation_list_id, operation_id)
    session.delete(operation)
    return operation
