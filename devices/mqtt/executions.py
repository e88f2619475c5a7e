"""Job executions in the store: every change a device or a run makes is one transaction that
locks what it changes, so several workers (and a restarted one) see one history.

Each change returns the thing's pending executions before and after it, which is what decides
the `notify` and `notify-next` publications.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, and_, insert, select, update
from sqlalchemy.engine import Engine, Row
from sqlmodel import Session

from devices.mqtt.jobs import (
    CANCELED,
    IN_PROGRESS,
    PENDING,
    QUEUED,
    RESOURCE_NOT_FOUND,
    DescribeRequest,
    Execution,
    Rejection,
    StartNextRequest,
    UpdateRequest,
    check_update,
    job_document,
    next_execution,
)
from devices.mqtt.tables import JobExecutionRow
from devices.mqtt.topics import valid_thing_name
from domain.commands import DeviceCommand
from store.db import transaction
from store.definitions.devices import Device

_E = JobExecutionRow.c
NEXT = "$next"  # the job id that means "the thing's next execution"


class NoThingName(ValueError):
    """A device whose thing name cannot be a topic level; the message says what to set."""


@dataclass
class Change:
    execution: Execution  # after the change
    before: list[Execution]  # the thing's pending executions before it
    after: list[Execution]  # ... and after it


def _execution(row: Row[Any]) -> Execution:
    return Execution(
        job_id=str(row.command_id), thing_name=row.thing_name, status=row.status,
        job_document=dict(row.job_document or {}),
        status_details=dict(row.status_details or {}), version_number=row.version_number,
        execution_number=row.execution_number, queued_at=row.queued_at,
        started_at=row.started_at, last_updated_at=row.last_updated_at)


def _lock(session: Session, where: ColumnElement[bool]) -> None:
    """Lock the rows a change reads: a no-op write takes PostgreSQL's row locks and SQLite's
    write lock before the read, so concurrent changes apply one after the other."""
    session.execute(update(JobExecutionRow).where(where)
                    .values(version_number=_E.version_number))


def _pending(session: Session, thing: str) -> list[Execution]:
    rows = session.execute(select(JobExecutionRow).where(
        _E.thing_name == thing, _E.status.in_(PENDING)).order_by(_E.id)).all()
    return [_execution(row) for row in rows]


def _job_id(job_id: str) -> UUID:
    try:
        return UUID(job_id)
    except ValueError:
        raise Rejection(RESOURCE_NOT_FOUND, f"no job {job_id!r}") from None


def _find(session: Session, thing: str, job_id: str) -> Execution:
    row = session.execute(select(JobExecutionRow).where(
        _E.command_id == _job_id(job_id), _E.thing_name == thing)).first()
    if row is None:
        raise Rejection(RESOURCE_NOT_FOUND, f"thing {thing} has no job {job_id}")
    return _execution(row)


def _write(session: Session, execution: Execution) -> None:
    session.execute(update(JobExecutionRow).where(_E.command_id == UUID(execution.job_id))
                    .values(status=execution.status, status_details=execution.status_details,
                            version_number=execution.version_number,
                            started_at=execution.started_at,
                            last_updated_at=execution.last_updated_at))


def thing_name_of(session: Session, command: DeviceCommand) -> str:
    """The device's attribute `thing_name`, else its name."""
    name = (command.device_attributes.get("thing_name") or "").strip()
    if not name:
        device = session.get(Device, UUID(command.device_id))
        name = device.name if device is not None else ""
    if not valid_thing_name(name):
        raise NoThingName(f"device {command.device_id} has no usable thing name ({name!r}): "
                          "set its attribute thing_name to the device's AWS IoT thing name")
    return name


def queue_execution(engine: Engine, command: DeviceCommand, now: float) -> Change | None:
    """The command's execution, QUEUED at version 1; None if it exists already (the command
    id is the job id, so a repeated send queues nothing)."""
    cid = UUID(command.command_id)
    with transaction(engine) as session:
        thing = thing_name_of(session, command)
        _lock(session, and_(_E.thing_name == thing, _E.status.in_(PENDING)))
        if session.execute(select(_E.id).where(_E.command_id == cid)).first() is not None:
            return None
        before = _pending(session, thing)
        session.execute(insert(JobExecutionRow).values(
            command_id=cid, thing_name=thing, status=QUEUED,
            job_document=job_document(command.operation_type, command.args),
            status_details={}, version_number=1, execution_number=1, queued_at=now,
            started_at=None, last_updated_at=now, reported_version=0))
        after = _pending(session, thing)
        return Change(_find(session, thing, command.command_id), before, after)


def pending_executions(engine: Engine, thing: str) -> list[Execution]:
    with transaction(engine) as session:
        return _pending(session, thing)


def describe_execution(engine: Engine, thing: str, job_id: str,
                       request: DescribeRequest) -> Execution | None:
    """One execution (any status); `$next` is the thing's next one, None when it has none."""
    with transaction(engine) as session:
        if job_id == NEXT:
            return next_execution(_pending(session, thing))
        execution = _find(session, thing, job_id)
    if request.execution_number not in (None, execution.execution_number):
        raise Rejection(RESOURCE_NOT_FOUND,
                        f"job {job_id} has no execution {request.execution_number}")
    return execution


def start_next_execution(engine: Engine, thing: str, request: StartNextRequest,
                         now: float) -> Change | None:
    """The thing's next execution, moved to IN_PROGRESS if it was queued; None if it has none.
    One already in progress is returned as it is."""
    with transaction(engine) as session:
        _lock(session, and_(_E.thing_name == thing, _E.status.in_(PENDING)))
        before = _pending(session, thing)
        following = next_execution(before)
        if following is None:
            return None
        if following.status == QUEUED:
            following.status = IN_PROGRESS
            following.started_at = now
            following.last_updated_at = now
            following.version_number += 1
            if request.status_details is not None:
                following.status_details = dict(request.status_details)
            _write(session, following)
        return Change(following, before, _pending(session, thing))


def update_execution(engine: Engine, thing: str, job_id: str, request: UpdateRequest,
                     now: float) -> Change:
    """A device's update, checked (version, execution number, a finished execution) and
    applied with the next version; raises Rejection with the documented code otherwise."""
    cid = _job_id(job_id)
    with transaction(engine) as session:
        _lock(session, and_(_E.thing_name == thing, _E.status.in_(PENDING)))
        _lock(session, _E.command_id == cid)
        execution = _find(session, thing, job_id)
        check_update(execution, request)
        before = _pending(session, thing)
        if request.status == IN_PROGRESS and execution.started_at is None:
            execution.started_at = now
        execution.status = request.status
        if request.status_details is not None:
            execution.status_details = dict(request.status_details)
        execution.version_number += 1
        execution.last_updated_at = now
        _write(session, execution)
        return Change(execution, before, _pending(session, thing))


def cancel_execution(engine: Engine, command_id: str, now: float) -> Change | None:
    """CANCELED, if it is still pending; None for an unknown or finished one."""
    cid = UUID(command_id)
    with transaction(engine) as session:
        _lock(session, _E.command_id == cid)
        row = session.execute(select(JobExecutionRow).where(_E.command_id == cid)).first()
        if row is None or row.status not in PENDING:
            return None
        execution = _execution(row)
        before = _pending(session, execution.thing_name)
        execution.status = CANCELED
        execution.version_number += 1
        execution.last_updated_at = now
        _write(session, execution)
        return Change(execution, before, _pending(session, execution.thing_name))


def unreported_executions(engine: Engine, limit: int = 500) -> list[Execution]:
    """Executions whose latest version has not been passed on as a command event yet."""
    with transaction(engine) as session:
        rows = session.execute(select(JobExecutionRow)
                               .where(_E.reported_version < _E.version_number)
                               .order_by(_E.id).limit(limit)).all()
        return [_execution(row) for row in rows]


def mark_reported(engine: Engine, job_id: str, version: int) -> None:
    with transaction(engine) as session:
        session.execute(update(JobExecutionRow)
                        .where(_E.command_id == UUID(job_id), _E.reported_version < version)
                        .values(reported_version=version))


def things_with_pending(engine: Engine) -> list[str]:
    with transaction(engine) as session:
        rows = session.execute(select(_E.thing_name).where(_E.status.in_(PENDING))
                               .distinct().order_by(_E.thing_name)).all()
        return [row.thing_name for row in rows]
