"""How a run reads in the Temporal Web UI: its one-line summary and its search attributes.

Every level (pipeline, stage and target run) is named the same way, so a list of workflows reads
"demo-rollout #12 · stage 2 canary · device pixel-07 · op 1 INSTALL" instead of ids, and one
visibility query finds any of them (docs/operator-guide.md). Used by the launcher (the pipeline
run's start) and by the workflows (their children's starts and their status upserts).
"""

from __future__ import annotations

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from workflows import names
from workflows.messages import RunLabels

# The values of FleetpipeKind: what an operator types, not our RunKind values.
PIPELINE = "pipeline"
STAGE = "stage"
TARGET = "target"

_ENTERPRISE = SearchAttributeKey.for_keyword(names.SA_ENTERPRISE)
_ENTERPRISE_ID = SearchAttributeKey.for_keyword(names.SA_ENTERPRISE_ID)
_PIPELINE = SearchAttributeKey.for_keyword(names.SA_PIPELINE)
_RUN_NUMBER = SearchAttributeKey.for_int(names.SA_RUN_NUMBER)
_STAGE = SearchAttributeKey.for_keyword(names.SA_STAGE)
_DEVICE = SearchAttributeKey.for_keyword(names.SA_DEVICE)
_KIND = SearchAttributeKey.for_keyword(names.SA_KIND)
_STATUS = SearchAttributeKey.for_keyword(names.SA_STATUS)


def summary(labels: RunLabels, *, device_id: str = "") -> str:
    """One line for the Web UI's list: the pipeline run, then the stage, device, operation
    (as far as this run goes down). A device without a known name shows its id; a run started
    before runs carried their names has only its own part."""
    parts = [f"{labels.pipeline_name} #{labels.run_number}"] if labels.pipeline_name else []
    if labels.stage_name:
        parts.append(f"stage {labels.stage_order} {labels.stage_name}")
    device = labels.device_name or device_id
    if device:
        parts.append(f"device {device}")
    if labels.operation:
        parts.append(f"op {labels.operation}")
    return " · ".join(parts)


def search_attributes(kind: str, labels: RunLabels,
                      status: str | None) -> TypedSearchAttributes:
    """The attributes a run starts with (`kind` is PIPELINE, STAGE or TARGET). Empty names are
    left out rather than indexed as "", and so is a status of None (a lean target's: it gets
    one only if it does not succeed)."""
    pairs: list[SearchAttributePair] = [SearchAttributePair(_KIND, kind)]
    if status is not None:
        pairs.append(SearchAttributePair(_STATUS, status))
    for key, value in ((_ENTERPRISE, labels.enterprise_name),
                       (_ENTERPRISE_ID, labels.enterprise_id),
                       (_PIPELINE, labels.pipeline_name),
                       (_STAGE, labels.stage_name),
                       (_DEVICE, labels.device_name)):
        if value:
            pairs.append(SearchAttributePair(key, value))
    if labels.run_number:
        pairs.append(SearchAttributePair(_RUN_NUMBER, labels.run_number))
    return TypedSearchAttributes(pairs)


def status_update(status: str) -> list[SearchAttributeUpdate]:
    """The upsert of a status change."""
    return [_STATUS.value_set(status)]
