"""A pipeline's version: 1 when it is made, +1 for every transaction that edits it or anything
it is made of (its stages, target lists and their entries, operation lists and operations).

Counted where the unit of work flushes, not in each write function, so an edit path added later
cannot forget it. A run records the version its snapshot was taken from (store.runs.creation).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import event
from sqlmodel import Session

# Per transaction: pipelines already counted (or made) in it, so an edit that flushes
# several times still counts once.
_SEEN = "fleetpipe.versioned_pipelines"


def _pipeline_of(session: Session, row: Any) -> UUID | None:
    """The pipeline a definition row belongs to, or None for rows that are not part of one."""
    from store.definitions.operation_lists import Operation, OperationList
    from store.definitions.pipelines import Stage
    from store.definitions.target_lists import (
        StageTargetList,
        TargetList,
        TargetListDevice,
        TargetListGroup,
    )

    if isinstance(row, Stage | TargetList | OperationList):
        return row.pipeline_id
    if isinstance(row, TargetListDevice | TargetListGroup):
        owner = session.get(TargetList, row.target_list_id)
        return owner.pipeline_id if owner is not None else None
    if isinstance(row, StageTargetList):
        stage = session.get(Stage, row.stage_id)
        return stage.pipeline_id if stage is not None else None
    if isinstance(row, Operation):
        operation_list = session.get(OperationList, row.operation_list_id)
        return operation_list.pipeline_id if operation_list is not None else None
    return None


def _count_edits(session: Session, _context: Any, _instances: Any) -> None:
    from store.definitions.pipelines import Pipeline

    seen: set[UUID] = session.info.setdefault(_SEEN, set())
    edited: set[UUID] = set()
    with session.no_autoflush:
        for row in session.new:
            if isinstance(row, Pipeline):
                seen.add(row.id)  # a new pipeline starts at version 1, whatever it is made with
        for row in [*session.new, *session.dirty, *session.deleted]:
            if row in session.dirty and not session.is_modified(row):
                continue
            if isinstance(row, Pipeline):
                if row not in session.deleted:
                    edited.add(row.id)
                continue
            pipeline_id = _pipeline_of(session, row)
            if pipeline_id is not None:
                edited.add(pipeline_id)
        for pipeline_id in edited - seen:
            pipeline = session.get(Pipeline, pipeline_id)
            if pipeline is not None and pipeline not in session.deleted:
                pipeline.version = (pipeline.version or 1) + 1
                session.add(pipeline)
            seen.add(pipeline_id)


def _forget(session: Session, *_: Any) -> None:
    session.info.pop(_SEEN, None)


event.listen(Session, "before_flush", _count_edits)
event.listen(Session, "after_commit", _forget)
event.listen(Session, "after_rollback", _forget)
