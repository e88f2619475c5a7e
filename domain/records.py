"""The values the run workflows and the store exchange through activities: one definition each,
used as the store's results and as the activities' inputs and results (docs/architecture.md).

Ids are strings and fields added later get defaults, so recorded histories keep decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class StatusChange:
    """Move one run row (pipeline, stage or target run) forward to `status`."""

    kind: str  # domain.statuses.RunKind value
    run_id: str
    status: str
    at: datetime
    reason: str = ""
    fields: dict[str, Any] = field(default_factory=dict)  # other columns to set with it


@dataclass
class StageRunInfo:
    """A stage run of a pipeline run, as the pipeline-run workflow drives it."""

    stage_run_id: str
    order: int
    name: str
    trigger: str
    timeout_seconds: int
    rollout: dict[str, Any]
    status: str
    # In a retry (domain.retry_modes): "stage" carries the retried run's stage run over whole,
    # "targets" its successful target runs; released: the retry itself passes its gate.
    carry: str = ""
    released: bool = False


@dataclass
class StagePlan:
    """What a stage run works through: its operations and how many devices it has."""

    operation_ids: list[str]
    device_count: int
    invalid_reason: str = ""
    carried: int = 0  # target runs carried over from a retried run (never started)
    operation_types: list[str] = field(default_factory=list)  # beside operation_ids (INSTALL...)


@dataclass
class RetriedTarget:
    """The target run a stage run starts next for a device x operation sent again."""

    target_run_id: str
    device_id: str
    operation_order: int
    generation: int
    retry_of: str | None = None  # the row it replaces; None: the given row runs as it is
    replaced_status: str = ""
    replaced_command_status: str | None = None
    device_name: str = ""
