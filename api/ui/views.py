"""What the run page shows, read from the store: plain values for the templates (which escape
every one of them), built here so the router stays parse -> call -> present."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote
from uuid import UUID

from sqlmodel import Session

from api import present
from domain.ids import pipeline_run_workflow_id
from domain.statuses import STATUSES, PipelineRunStatus, RunKind, is_terminal
from settings import Settings
from store.runs import commands, reads
from store.runs.tables import PipelineRun
from store.tenancy import NotFound

_P = PipelineRunStatus
# Failed target runs shown per stage run (the REST API lists them all).
FAILED_SHOWN = 50
FAILED_STATUSES = ("failure", "timeout")


@dataclass
class Segment:
    status: str
    count: int
    x: float  # percent of the bar's width where it starts
    width: float


@dataclass
class FailedTarget:
    device_name: str
    status: str
    reason: str
    command_status: str | None
    output: str


@dataclass
class StageView:
    id: str
    order: int
    name: str
    trigger: str
    status: str
    total: int
    counts: dict[str, int]
    segments: list[Segment]
    failed: list[FailedTarget] = field(default_factory=list)
    is_gate: bool = False


@dataclass
class RunView:
    run: dict[str, Any]
    terminal: bool
    waiting_words: str
    gate: StageView | None
    stages: list[StageView]
    actions: list[str]  # of: pause, resume, cancel (promote goes with the gate)
    temporal_url: str


def when(value: str | datetime | None) -> str:
    """A timestamp as an operator reads it: UTC to the second."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def waiting_words(waiting_for: dict[str, Any] | None) -> str:
    """`waiting_for` in words, with what passes it."""
    if not waiting_for:
        return ""
    if waiting_for["kind"] == "gate":
        return (f"Waiting at the manual gate of stage {waiting_for['stage_order']} "
                f"\u201c{waiting_for['stage_name']}\u201d: promote it to go on.")
    who = waiting_for.get("by_name") or waiting_for.get("by") or "an operator"
    key = f" (key {waiting_for['by']})" if waiting_for.get("by_name") and waiting_for.get(
        "by") else ""
    return f"Paused by {who}{key} since {when(waiting_for['at'])}: resume it to go on."


def run_actions(status: str, waiting_for: dict[str, Any] | None) -> list[str]:
    """The buttons a run shows: the same actions the REST API takes from it now."""
    if is_terminal(RunKind.PIPELINE, status):
        return []
    paused = bool(waiting_for) and waiting_for["kind"] == "pause"  # type: ignore[index]
    actions = []
    if paused:
        actions.append("resume")
    elif status in (_P.RUNNING, _P.WAITING):
        actions.append("pause")
    actions.append("cancel")
    return actions


def temporal_url(settings: Settings, run_id: UUID) -> str:
    workflow_id = pipeline_run_workflow_id(run_id)
    return (f"{settings.temporal_ui_url.rstrip('/')}/namespaces/"
            f"{quote(settings.temporal_namespace, safe='')}/workflows/"
            f"{quote(workflow_id, safe='')}")


def _segments(counts: dict[str, int], total: int) -> list[Segment]:
    segments, x = [], 0.0
    for status in STATUSES[RunKind.TARGET]:
        count = counts.get(status, 0)
        if count and total:
            width = 100.0 * count / total
            segments.append(Segment(status, count, round(x, 3), round(width, 3)))
            x += width
    return segments


def _output(command: commands.Command) -> str:
    return json.dumps(command.output, indent=2, sort_keys=True) if command.output else ""


def _failed_targets(session: Session, enterprise_id: UUID,
                    stage_run_id: UUID) -> list[FailedTarget]:
    failed: list[FailedTarget] = []
    for status in FAILED_STATUSES:
        rows = reads.list_target_runs(session, enterprise_id, stage_run_id, status=status,
                                      limit=FAILED_SHOWN, offset=0).items
        for row in rows[:FAILED_SHOWN - len(failed)]:
            reason, output = row.status_reason, ""
            if row.command_id is not None:
                try:
                    command = commands.get_command(session, enterprise_id, row.command_id)
                except NotFound:
                    command = None
                if command is not None:
                    reason = command.reason or reason
                    output = _output(command)
            failed.append(FailedTarget(row.device_name, row.status, reason,
                                       row.command_status, output))
    return failed


def run_view(session: Session, settings: Settings, enterprise_id: UUID,
             run_id: UUID) -> RunView:
    row = reads.get_pipeline_run(session, enterprise_id, run_id)
    shown = present.pipeline_run(row)
    waiting_for = shown["waiting_for"]
    stage_rows = reads.list_stage_runs(session, enterprise_id, run_id, limit=1000,
                                       offset=0).items
    gate_id = waiting_for["stage_run_id"] if waiting_for and waiting_for["kind"] == "gate" \
        else None
    stages = []
    for stage_row in stage_rows:
        stage_run, counts = stage_row.stage_run, stage_row.target_run_counts
        total = sum(counts.values())
        failed = (_failed_targets(session, enterprise_id, stage_run.id)
                  if counts.get("failure") or counts.get("timeout") else [])
        stages.append(StageView(
            id=str(stage_run.id), order=stage_run.order, name=stage_run.stage_name,
            trigger=stage_run.trigger, status=stage_run.status, total=total, counts=counts,
            segments=_segments(counts, total), failed=failed,
            is_gate=str(stage_run.id) == gate_id))
    return RunView(
        run=shown, terminal=is_terminal(RunKind.PIPELINE, row.status),
        waiting_words=waiting_words(waiting_for),
        gate=next((s for s in stages if s.is_gate), None), stages=stages,
        actions=run_actions(row.status, waiting_for), temporal_url=temporal_url(settings, run_id))


def runs_list(session: Session, enterprise_id: UUID, *, limit: int,
              offset: int) -> tuple[list[PipelineRun], int]:
    """The enterprise's runs, newest first."""
    found = reads.list_pipeline_runs(session, enterprise_id, limit=limit, offset=offset)
    return list(found.items), found.count


def run_row(session: Session, enterprise_id: UUID, run_id: UUID) -> PipelineRun:
    return reads.get_pipeline_run(session, enterprise_id, run_id)
