"""Store-wide figures the worker's metrics sample at each scrape: cheap counts only (the
in-flight count reads the target-run index by open stage run, never the whole table)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from domain.statuses import TERMINAL, RunKind, StageRunStatus, TargetRunStatus
from store.runs.events import CommandSignalOutbox
from store.runs.tables import StageRun, TargetRun

_STAGES = StageRun.__table__  # type: ignore[attr-defined]
_TARGETS = TargetRun.__table__  # type: ignore[attr-defined]
_OUTBOX = CommandSignalOutbox.__table__  # type: ignore[attr-defined]
_NOT_OPEN_STAGE = [StageRunStatus.PENDING, *TERMINAL[RunKind.STAGE]]
_NOT_IN_FLIGHT = [TargetRunStatus.PENDING, *TERMINAL[RunKind.TARGET]]


def run_gauges(engine: Engine) -> dict[str, int]:
    """Open stage runs, their target runs in flight, and the signals still owed."""
    open_stages = select(_STAGES.c.id).where(_STAGES.c.status.not_in(_NOT_OPEN_STAGE))
    with engine.connect() as conn:
        stages = conn.execute(select(func.count()).select_from(open_stages.subquery())).scalar()
        in_flight = conn.execute(
            select(func.count()).select_from(_TARGETS)
            .where(_TARGETS.c.stage_run_id.in_(open_stages),
                   _TARGETS.c.status.not_in(_NOT_IN_FLIGHT),
                   _TARGETS.c.superseded_by.is_(None))).scalar()
        owed = conn.execute(select(func.count()).select_from(_OUTBOX)).scalar()
    return {"stage_runs_running": int(stages or 0), "target_runs_in_flight": int(in_flight or 0),
            "signals_owed": int(owed or 0)}
