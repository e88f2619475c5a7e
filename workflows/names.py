"""Names shared by the worker, the API and the tests: defined once, used everywhere."""

PIPELINE_RUN_WORKFLOW = "PipelineRunWorkflow"
STAGE_RUN_WORKFLOW = "StageRunWorkflow"
TARGET_RUN_WORKFLOW = "TargetRunWorkflow"


def targets_task_queue(task_queue: str) -> str:
    """Target runs poll a task queue of their own beside the runs' one: a stage's workflow
    tasks must not wait in line behind its thousands of targets' (docs/decisions.md)."""
    return f"{task_queue}-targets"


# PipelineRunWorkflow messages
UPDATE_SET_RUN_STATUS = "set_run_status"  # RunStatusRequest -> RunState
UPDATE_SET_STAGE_STATUS = "set_stage_status"  # StageStatusRequest -> RunState
QUERY_RUN_STATE = "run_state"  # -> RunState

# StageRunWorkflow messages
UPDATE_ADD_TARGET = "add_target"  # AddTargetRequest -> AddTargetResult
UPDATE_CANCEL_TARGET = "cancel_target"  # TargetCancelRequest -> None
UPDATE_RETRY_TARGET = "retry_target"  # TargetRetryRequest -> TargetRetryResult
SIGNAL_TARGET_FINISHED = "target_finished"  # TargetFinished
SIGNAL_STAGE_CONTROL = "stage_control"  # StageControl (pause, resume, stop)
QUERY_STAGE_STATE = "stage_state"  # -> StageState

# TargetRunWorkflow messages
SIGNAL_COMMAND_EVENTS = "command_events"  # CommandEvents
SIGNAL_TARGET_STOP = "target_stop"  # TargetStop
# From a stage run about to continue-as-new: its end can no longer reach the stage as this
# child's completion, so the target signals it (SIGNAL_TARGET_FINISHED) instead.
SIGNAL_TARGET_REPORT_BY_SIGNAL = "target_report_by_signal"  # no argument
UPDATE_CANCEL_COMMAND = "cancel_command"  # CommandCancelRequest -> None

# Custom search attributes (registered wherever a server is started or set up: cli/dev_stack.py,
# tests/conftest.py, docker-compose.yml's temporal-setup job, bench/fanout.py). Pipeline, stage
# and target runs all carry them, so the Web UI can filter any level (docs/operator-guide.md).
SA_ENTERPRISE = "FleetpipeEnterprise"  # Keyword (the enterprise's name: what an operator types)
SA_ENTERPRISE_ID = "FleetpipeEnterpriseId"  # Keyword (its id: names may repeat across stores)
SA_PIPELINE = "FleetpipePipeline"  # Keyword (pipeline name)
SA_RUN_NUMBER = "FleetpipeRunNumber"  # Int
SA_STAGE = "FleetpipeStage"  # Keyword (stage name; stage and target runs)
SA_DEVICE = "FleetpipeDevice"  # Keyword (device name; target runs)
SA_KIND = "FleetpipeKind"  # Keyword: pipeline | stage | target
SA_STATUS = "FleetpipeStatus"  # Keyword (a target run's moves only at its end: pending -> final)
SEARCH_ATTRIBUTES: dict[str, str] = {
    SA_ENTERPRISE: "Keyword",
    SA_ENTERPRISE_ID: "Keyword",
    SA_PIPELINE: "Keyword",
    SA_RUN_NUMBER: "Int",
    SA_STAGE: "Keyword",
    SA_DEVICE: "Keyword",
    SA_KIND: "Keyword",
    SA_STATUS: "Keyword",
}

# Patches (workflow.patched): code paths added after runs of the old shape were recorded.
PATCH_RETRY_CARRIES = "retry-carries-over-stages"
PATCH_GATE_DECISION = "gate-decision-recorded"
