"""A run's place among the active runs of its enterprise that share its concurrency key."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from domain.statuses import TERMINAL, RunKind
from store.db import transaction
from store.runs.tables import PipelineRun


@dataclass(frozen=True)
class LanePlace:
    created_epoch: float  # the run's created_at: its place in the lane's order
    ahead: list[str]  # active runs with the key created before it, oldest first


def lane_place(engine: Engine, pipeline_run_id: UUID) -> LanePlace:
    """LookupError for a run that is not there, or that has no concurrency key."""
    with transaction(engine) as session:
        run = session.get(PipelineRun, pipeline_run_id)
        if run is None or run.concurrency_key is None:
            raise LookupError(f"pipeline run {pipeline_run_id} with a concurrency key not found")
        ahead = session.exec(
            select(PipelineRun.id).where(
                PipelineRun.enterprise_id == run.enterprise_id,
                PipelineRun.concurrency_key == run.concurrency_key,
                col(PipelineRun.status).not_in(TERMINAL[RunKind.PIPELINE]),
                col(PipelineRun.created_at) < run.created_at,
            ).order_by(col(PipelineRun.created_at))
        ).all()
        return LanePlace(run.created_at.timestamp(), [str(i) for i in ahead])
