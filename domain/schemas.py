"""Shapes shared by the store, the workflows and the API: a run's snapshot of its pipeline."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field, Strict, model_validator

from domain.bounds import Count, Finite

DEFAULT_PIPELINE_TIMEOUT_SECONDS = 21 * 24 * 3600
DEFAULT_STAGE_TIMEOUT_SECONDS = 7 * 24 * 3600
MAX_PER_MINUTE = 1_000_000
# Dispatches per minute.
Rate = Annotated[int, Strict(), Field(ge=1, le=MAX_PER_MINUTE)]


class StageTrigger:
    MANUAL = "manual"
    AUTOMATIC = "automatic"
    ALL = (MANUAL, AUTOMATIC)


class FailureType(StrEnum):
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    ALL = "ALL"


class RateIncreaseCriteria(BaseModel):
    """Raise the rate after this many devices were notified (dispatched) or succeeded."""

    number_of_notified_things: Count | None = None
    number_of_succeeded_things: Count | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> RateIncreaseCriteria:
        given = [self.number_of_notified_things, self.number_of_succeeded_things]
        if sum(value is not None for value in given) != 1:
            raise ValueError("rate_increase_criteria needs exactly one of "
                             "number_of_notified_things, number_of_succeeded_things")
        return self


class ExponentialRate(BaseModel):
    base_rate_per_minute: Rate
    increment_factor: Finite = Field(gt=1, le=5)
    rate_increase_criteria: RateIncreaseCriteria


class AbortCriterion(BaseModel):
    failure_type: FailureType
    threshold_percentage: Finite = Field(gt=0, le=100)
    min_number_of_executed_things: Count = 1


class RetryCriterion(BaseModel):
    failure_type: FailureType
    number_of_retries: Annotated[int, Strict()] = Field(ge=0, le=10)


class RolloutConfig(BaseModel):
    """Per-stage rollout controls, with AWS IoT Jobs' meaning. The defaults dispatch as fast as
    the window allows, never abort, never retry, and need every target to succeed."""

    maximum_per_minute: Rate | None = None
    exponential_rate: ExponentialRate | None = None
    abort_criteria: list[AbortCriterion] = Field(default_factory=list)
    retry_criteria: list[RetryCriterion] = Field(default_factory=list)
    success_threshold_percentage: Finite = Field(default=100.0, ge=0, le=100)


class OperationSnapshot(BaseModel):
    operation_type: str
    args: dict[str, Any] = Field(default_factory=dict)
    order: int = 0
    name: str = ""


class StageSnapshot(BaseModel):
    stage_id: UUID
    name: str
    description: str = ""
    order: int
    trigger: str
    timeout_seconds: int = DEFAULT_STAGE_TIMEOUT_SECONDS
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    device_ids: list[UUID] = Field(default_factory=list)
    device_group_ids: list[UUID] = Field(default_factory=list)
    operations: list[OperationSnapshot] = Field(default_factory=list)


class PipelineSnapshot(BaseModel):
    pipeline_id: UUID
    name: str
    timeout_seconds: int = DEFAULT_PIPELINE_TIMEOUT_SECONDS
    stages: list[StageSnapshot] = Field(default_factory=list)
