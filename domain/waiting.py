"""Why a pipeline run waits (`waiting_for`): paused by someone, or at a stage's manual gate.

The status alone says `waiting` for both; an operator needs to know whether to resume or to
promote. A pause comes first: while paused, `running` resumes (the gate is passed after).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class GateStage(Protocol):
    stage_run_id: str
    name: str
    order: int


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def waiting_for_view(*, paused_since: datetime | None, paused_by: tuple[str, str],
                     gate: GateStage | None) -> dict[str, Any] | None:
    """The JSON the run row keeps: a pause {kind, by, by_name, at}, a gate {kind,
    stage_run_id, stage_name, stage_order}, or None when the run waits for nothing."""
    if paused_since is not None:
        key_id, key_name = paused_by
        return {"kind": "pause", "by": key_id or None, "by_name": key_name or None,
                "at": _iso(paused_since)}
    if gate is not None:
        return {"kind": "gate", "stage_run_id": gate.stage_run_id, "stage_name": gate.name,
                "stage_order": gate.order}
    return None
