"""Store rows to the public shapes (JSON-ready dicts), with the few related facts each shows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row
from sqlmodel import Session

from store.definitions import devices as device_store
from store.definitions import pipelines as pipeline_store
from store.definitions import target_lists as target_list_store
from store.definitions.devices import Device, DeviceGroup, DeviceGroupPublic, DevicePublic
from store.definitions.operation_lists import (
    Operation,
    OperationList,
    OperationListPublic,
    OperationPublic,
)
from store.definitions.pipelines import Pipeline, PipelinePublic, Stage, StagePublic
from store.definitions.target_lists import (
    TargetGroupPublic,
    TargetList,
    TargetListDevice,
    TargetListGroup,
    TargetListPublic,
    TargetPublic,
)
from store.definitions.whole_pipelines import stage_links
from store.runs import retry_plans
from store.runs.commands import Command, CommandEvent, CommandEventPublic, CommandPublic
from store.runs.reads import StageRunRow
from store.runs.tables import (
    PipelineRun,
    PipelineRunPublic,
    StageRunOperation,
    StageRunOperationPublic,
    StageRunPublic,
    TargetRun,
    TargetRunPublic,
)


def _dump(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json")


def device(row: Device, group_ids: Sequence[UUID] = ()) -> dict[str, Any]:
    return _dump(DevicePublic.model_validate(row, update={"group_ids": list(group_ids)}))


def devices(session: Session, rows: Sequence[Device]) -> list[dict[str, Any]]:
    groups = device_store.device_group_ids(session, [row.id for row in rows])
    return [device(row, groups[row.id]) for row in rows]


def device_group(row: DeviceGroup, count: int, device_ids: list[UUID] | None = None
                 ) -> dict[str, Any]:
    return _dump(DeviceGroupPublic.model_validate(
        row, update={"device_count": count, "device_ids": device_ids}))


def device_groups(session: Session, rows: Sequence[DeviceGroup]) -> list[dict[str, Any]]:
    counts = device_store.group_member_counts(session, [row.id for row in rows])
    return [device_group(row, counts[row.id]) for row in rows]


def device_group_detail(session: Session, row: DeviceGroup) -> dict[str, Any]:
    members = device_store.group_member_ids(session, row.id)
    return device_group(row, len(members), members)


def stages(session: Session, rows: Sequence[Stage]) -> list[dict[str, Any]]:
    links = stage_links(session, [row.id for row in rows])
    return [
        _dump(StagePublic.model_validate(row, update={
            "rollout": row.rollout or {}, **links[row.id]}))
        for row in rows
    ]


def stage(session: Session, row: Stage) -> dict[str, Any]:
    return stages(session, [row])[0]


def pipeline(row: Pipeline, stage_views: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    data = _dump(PipelinePublic.model_validate(row))
    data["stages"] = stage_views
    return data


def pipeline_detail(session: Session, row: Pipeline) -> dict[str, Any]:
    return pipeline(row, stages(session, pipeline_store.stages_of(session, row.id)))


def target_lists(session: Session, rows: Sequence[TargetList]) -> list[dict[str, Any]]:
    sizes = target_list_store.target_list_sizes(session, [row.id for row in rows])
    return [_dump(TargetListPublic.model_validate(row, update={"size": sizes[row.id]}))
            for row in rows]


def target_list(session: Session, row: TargetList) -> dict[str, Any]:
    return target_lists(session, [row])[0]


def target(row: TargetListDevice, device_row: Device | None = None) -> dict[str, Any]:
    extra = {"device_name": device_row.name, "device_alias": device_row.alias} if device_row else {}
    return _dump(TargetPublic.model_validate(row, update=extra))


def target_group(row: TargetListGroup, group: DeviceGroup | None = None) -> dict[str, Any]:
    extra = {"name": group.name} if group else {}
    return _dump(TargetGroupPublic.model_validate(row, update=extra))


def operation_list(row: OperationList) -> dict[str, Any]:
    return _dump(OperationListPublic.model_validate(row))


def operation(row: Operation) -> dict[str, Any]:
    return _dump(OperationPublic.model_validate(row))


def pipeline_run(row: PipelineRun, retries: Sequence[UUID] = ()) -> dict[str, Any]:
    """A run; `retries`: the runs that retry it (a run just made or acted on has none: only
    a finished run can be retried, and then it takes no more actions)."""
    # Only a waiting run waits for something: a value left from before is not shown.
    waiting_for = row.waiting_for if row.status == "waiting" else None
    return _dump(PipelineRunPublic.model_validate(
        row, update={"retries": list(retries), "waiting_for": waiting_for}))


def pipeline_runs(session: Session, rows: Sequence[PipelineRun]) -> list[dict[str, Any]]:
    retries = retry_plans.retries_of(session, [row.id for row in rows])
    return [pipeline_run(row, retries[row.id]) for row in rows]


def stage_run(row: StageRunRow) -> dict[str, Any]:
    stage_run = row.stage_run
    return _dump(StageRunPublic.model_validate(stage_run, update={
        "name": stage_run.stage_name, "target_run_counts": row.target_run_counts}))


def stage_run_operation(row: StageRunOperation) -> dict[str, Any]:
    return _dump(StageRunOperationPublic.model_validate(row))


_EMPTY_OUTPUTS: dict[str, Any] = {"command_meta": {}, "output_data": {}, "error": [],
                                   "output_attachment_ids": [], "run_message_history": []}


def _filled(get: Any) -> dict[str, Any]:
    """The JSON fields of a target run, empty rather than null (rows from before a column)."""
    return {name: get(name) or type(empty)() for name, empty in _EMPTY_OUTPUTS.items()}


def target_run(row: TargetRun) -> dict[str, Any]:
    return _dump(TargetRunPublic.model_validate(row, update=_filled(
        lambda name: getattr(row, name))))


def _json_value(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):  # stored in UTC; written as pydantic writes it
        return value.isoformat().replace("+00:00", "Z")
    return value


def target_runs(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """A page of target runs from plain rows: the same dicts `target_run` gives, written
    directly (pydantic validation was a fifth of the operator's poll; a test holds the two
    equal)."""
    fields = TargetRunPublic.model_fields
    return [{name: _json_value(row._mapping[name]) for name in fields}
            | _filled(row._mapping.get) for row in rows]


def _event(row: CommandEvent) -> CommandEventPublic:
    return CommandEventPublic.model_validate(row, update={
        "error": row.error or [], "output_attachment_ids": row.output_attachment_ids or [],
        "run_message_history": row.run_message_history or []})


def command(row: Command, events: Sequence[CommandEvent]) -> dict[str, Any]:
    shown = [_event(event) for event in events]
    reported = [event for event in shown if event.applied]
    attachments: list[str] = []
    for event in reported:
        attachments.extend(a for a in event.output_attachment_ids if a not in attachments)
    return _dump(CommandPublic.model_validate(row, update={
        "request_status": row.status,
        "events": shown,
        "error": [error for event in reported for error in event.error],
        "output_attachment_ids": attachments,
        "run_message_history": [m for event in reported for m in event.run_message_history],
    }))
