"""Pipelines and their stages: their families, reads and writes.

A pipeline made whole in one request is `store.definitions.whole_pipelines`; deleting a
pipeline or a stage (with what is in it) is `store.definitions.removal`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import field_validator
from sqlalchemy import Column, func
from sqlmodel import Field, Session, SQLModel, col, select

from domain.bounds import PipelineTimeout, Position, StageTimeout
from domain.schemas import (
    DEFAULT_PIPELINE_TIMEOUT_SECONDS,
    DEFAULT_STAGE_TIMEOUT_SECONDS,
    RolloutConfig,
    StageTrigger,
)
from store import paging
from store.definitions import versions  # noqa: F401  (counts every edit: registered on import)
from store.definitions.fields import (
    DESCRIPTION_MAX,
    apply_changes,
    lower,
    name_field,
    next_position,
    text_field,
    touch,
)
from store.paging import Page, page
from store.shapes import Public, one_of, stamp
from store.tenancy import owned, owner_key, scoped
from store.types import JSONType

# ---- stages ------------------------------------------------------------------------------------


class StageBase(SQLModel):
    name: str = name_field()
    description: str = text_field(DESCRIPTION_MAX)


class StageCreate(StageBase):
    order: Position | None = Field(default=None, description="Default: after the last stage.")
    trigger: Literal["manual", "automatic"] | None = Field(
        default=None,
        description="manual (waits for a promotion) or automatic. Default: the first stage "
        "automatic, later stages manual.",
    )
    timeout_seconds: StageTimeout | None = Field(
        default=None,
        description="Bounds the stage run and each target run (default 7 days, at most 1 year).",
    )
    rollout: RolloutConfig | None = Field(
        default=None, description="Rate, abort, retry and success-threshold controls."
    )

    _trigger_case = field_validator("trigger", mode="before")(lower)


class StageUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    order: Position | None = None
    trigger: Literal["manual", "automatic"] | None = None
    timeout_seconds: StageTimeout | None = None
    rollout: RolloutConfig | None = None

    _trigger_case = field_validator("trigger", mode="before")(lower)


class Stage(StageBase, table=True):
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    pipeline_id: UUID = owner_key("pipeline.id", index=True)
    order: int = 0
    trigger: str = "manual"
    timeout_seconds: int = DEFAULT_STAGE_TIMEOUT_SECONDS
    rollout: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType))
    created_at: datetime = stamp()
    updated_at: datetime = stamp()


class _StageKeys(SQLModel):
    id: UUID
    pipeline_id: UUID


class StagePublic(StageBase, _StageKeys, Public):
    order: int
    trigger: str = one_of(StageTrigger.ALL, "manual or automatic")
    timeout_seconds: int
    rollout: RolloutConfig
    target_list_ids: list[UUID] = Field(default_factory=list)
    operation_list_ids: list[UUID] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


# ---- pipelines ---------------------------------------------------------------------------------


class PipelineBase(SQLModel):
    name: str = name_field(index=True)
    description: str = text_field(DESCRIPTION_MAX)


class PipelineUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    timeout_seconds: PipelineTimeout | None = None


class Pipeline(PipelineBase, table=True):
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    enterprise_id: UUID = Field(foreign_key="enterprise.id", index=True)
    timeout_seconds: int = DEFAULT_PIPELINE_TIMEOUT_SECONDS
    # Last run number handed out; bumped atomically so numbers are unique under concurrent starts.
    run_counter: int = 0
    # 1, then +1 for every edit of the pipeline or its stages, targets and operations
    # (store.definitions.versions); each run records the version its snapshot was taken from.
    version: int = 1
    created_at: datetime = stamp()
    updated_at: datetime = stamp()


class _PipelineKeys(SQLModel):
    id: UUID


class PipelinePublic(PipelineBase, _PipelineKeys, Public):
    timeout_seconds: int
    version: int = Field(description="1, then +1 for every edit of the pipeline, its stages, "
                         "target lists and operations.")
    stages: list[StagePublic] | None = Field(
        default=None, description="The stages, in order (on a single pipeline).")
    created_at: datetime
    updated_at: datetime


def get_pipeline(session: Session, enterprise_id: UUID, pipeline_id: UUID) -> Pipeline:
    return owned(session, Pipeline, pipeline_id, enterprise_id, "pipeline")


_PIPELINE_ORDERING = {
    "name": col(Pipeline.name),
    "created_at": col(Pipeline.created_at),
    "updated_at": col(Pipeline.updated_at),
}
PIPELINE_ORDERINGS = paging.ordering_values(_PIPELINE_ORDERING)


def list_pipelines(
    session: Session,
    enterprise_id: UUID,
    *,
    name: str | None = None,
    ordering: str | None = None,
    limit: int,
    offset: int,
) -> Page[Pipeline]:
    stmt = scoped(Pipeline, enterprise_id)
    if name:
        stmt = stmt.where(Pipeline.name == name)
    order = paging.ordering(ordering, _PIPELINE_ORDERING, [col(Pipeline.created_at).desc()],
                             col(Pipeline.id))
    return page(session, stmt, order, limit, offset)


def update_pipeline(session: Session, enterprise_id: UUID, pipeline_id: UUID,
                    data: PipelineUpdate) -> Pipeline:
    pipeline = get_pipeline(session, enterprise_id, pipeline_id)
    apply_changes(pipeline, data.model_dump(exclude_unset=True, exclude_none=True))
    session.add(pipeline)
    return pipeline


def get_stage(
    session: Session, enterprise_id: UUID, stage_id: UUID, pipeline_id: UUID | None = None
) -> Stage:
    return owned(session, Stage, stage_id, enterprise_id, "stage", pipeline_id=pipeline_id)


def list_stages(
    session: Session, enterprise_id: UUID, pipeline_id: UUID, *, limit: int, offset: int
) -> Page[Stage]:
    get_pipeline(session, enterprise_id, pipeline_id)
    stmt = select(Stage).where(Stage.pipeline_id == pipeline_id)
    return page(session, stmt, [col(Stage.order), col(Stage.created_at), col(Stage.id)],
                limit, offset)


def stages_of(session: Session, pipeline_id: UUID) -> list[Stage]:
    return list(
        session.exec(
            select(Stage)
            .where(Stage.pipeline_id == pipeline_id)
            .order_by(col(Stage.order), col(Stage.created_at), col(Stage.id))
        ).all()
    )


def rollout_dict(rollout: RolloutConfig | None) -> dict[str, Any]:
    return rollout.model_dump(mode="json") if rollout is not None else {}


def new_stage(pipeline_id: UUID, data: StageCreate, *, order: int, first: bool) -> Stage:
    stage = Stage(
        pipeline_id=pipeline_id,
        name=data.name,
        description=data.description,
        order=order,
        trigger=data.trigger or (StageTrigger.AUTOMATIC if first else StageTrigger.MANUAL),
        rollout=rollout_dict(data.rollout),
    )
    if data.timeout_seconds is not None:
        stage.timeout_seconds = data.timeout_seconds
    return stage


def create_stage(session: Session, enterprise_id: UUID, pipeline_id: UUID,
                 data: StageCreate) -> Stage:
    pipeline = get_pipeline(session, enterprise_id, pipeline_id)
    last, lowest = session.exec(
        select(func.max(Stage.order), func.min(Stage.order)).where(Stage.pipeline_id == pipeline_id)
    ).one()
    order = data.order if data.order is not None else next_position(last, 1, "stage")
    stage = new_stage(pipeline_id, data, order=order, first=lowest is None or order < lowest)
    session.add(stage)
    touch(pipeline)
    session.add(pipeline)
    return stage


def update_stage(session: Session, enterprise_id: UUID, pipeline_id: UUID, stage_id: UUID,
                 data: StageUpdate) -> Stage:
    stage = get_stage(session, enterprise_id, stage_id, pipeline_id)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "rollout" in changes:
        changes["rollout"] = rollout_dict(data.rollout)
    apply_changes(stage, changes)
    session.add(stage)
    return stage
