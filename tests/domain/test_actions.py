"""domain.actions: the one rule table the run-control pre-checks and the workflows' validators
read. The expected values are written out from the API's reference (which status each PUT
takes, and when), not read back from the module."""

from __future__ import annotations

import pytest

from domain.actions import (
    ACTIONS,
    CANCELLABLE_TARGET_RUN,
    NotAnAction,
    command_cancellable,
    parse_action,
    pipeline_run_actions,
    stage_run_cancellable,
    stage_run_promotable,
    stage_run_takes_targets,
    target_run_cancellable,
)
from domain.statuses import (
    CommandStatus,
    PipelineRunStatus,
    RunKind,
    StageRunStatus,
    TargetRunStatus,
)


def test_each_resource_takes_its_own_actions():
    assert ACTIONS == {
        RunKind.PIPELINE: ("cancelled", "waiting", "running"),
        RunKind.STAGE: ("queued", "cancelled"),
        RunKind.TARGET: ("cancelled",),
        RunKind.COMMAND: ("cancelled",),
    }
    assert all(type(value) is str for values in ACTIONS.values() for value in values)


@pytest.mark.parametrize(("kind", "given", "action"), [
    (RunKind.PIPELINE, "Cancelled", "cancelled"),
    (RunKind.PIPELINE, " WAITING ", "waiting"),
    (RunKind.PIPELINE, "running", "running"),
    (RunKind.STAGE, "Queued", "queued"),
    (RunKind.TARGET, "CANCELLED", "cancelled"),
    (RunKind.COMMAND, "cancelled", "cancelled"),
])
def test_an_action_is_taken_in_any_case(kind: RunKind, given: str, action: str):
    assert parse_action(kind, given) == action


def test_an_unknown_status_names_the_allowed_actions():
    with pytest.raises(NotAnAction) as refused:
        parse_action(RunKind.PIPELINE, "paused")
    assert str(refused.value) == ("unknown pipeline run status 'paused'; allowed: cancelled, "
                                  "waiting, running")
    assert refused.value.allowed == ("cancelled", "waiting", "running")


@pytest.mark.parametrize(("kind", "given", "message"), [
    (RunKind.PIPELINE, "success",
     "'success' cannot be set on a pipeline run; allowed: cancelled, waiting, running"),
    (RunKind.STAGE, "running",
     "'running' cannot be set on a stage run; allowed: queued, cancelled"),
    (RunKind.TARGET, "queued", "'queued' cannot be set on a target run; allowed: cancelled"),
    (RunKind.COMMAND, "Success", "'success' cannot be set on a command; allowed: cancelled"),
])
def test_a_status_that_is_no_action_there_is_refused(kind: RunKind, given: str, message: str):
    with pytest.raises(NotAnAction) as refused:
        parse_action(kind, given)
    assert str(refused.value) == message


_P = PipelineRunStatus


@pytest.mark.parametrize(("status", "stopping", "paused", "at_gate", "allowed"), [
    (_P.PENDING, False, False, False, ["cancelled"]),
    (_P.PROCESSING, False, False, False, ["cancelled"]),
    (_P.RUNNING, False, False, False, ["cancelled", "waiting"]),
    (_P.RUNNING, False, True, False, ["cancelled", "running"]),  # paused, not yet recorded
    (_P.WAITING, False, True, False, ["cancelled", "running"]),  # paused
    (_P.WAITING, False, False, True, ["cancelled", "waiting", "running"]),  # at a gate
    (_P.WAITING, False, True, True, ["cancelled", "running"]),  # paused at a gate
    (_P.RUNNING, True, False, False, []),  # stopping: nothing more
    (_P.SUCCESS, False, False, False, []),
    (_P.CANCELLED, False, True, True, []),
    (_P.TIMEOUT, False, False, False, []),
])
def test_what_a_pipeline_run_takes_now(status: str, stopping: bool, paused: bool, at_gate: bool,
                                       allowed: list[str]):
    assert pipeline_run_actions(status, stopping=stopping, paused=paused,
                                at_gate=at_gate) == allowed
    assert set(allowed) <= set(ACTIONS[RunKind.PIPELINE])


def test_only_the_stage_run_at_the_gate_is_promoted():
    assert stage_run_promotable("s1", waiting_for="s1", stopping=False)
    assert not stage_run_promotable("s1", waiting_for="s2", stopping=False)
    assert not stage_run_promotable("s1", waiting_for=None, stopping=False)
    assert not stage_run_promotable("s1", waiting_for="s1", stopping=True)


@pytest.mark.parametrize(("stage", "pipeline", "stopping", "cancellable"), [
    (StageRunStatus.PENDING, _P.WAITING, False, True),
    (StageRunStatus.RUNNING, _P.RUNNING, False, True),
    (StageRunStatus.RUNNING, _P.RUNNING, True, False),
    (StageRunStatus.SUCCESS, _P.RUNNING, False, False),
    (StageRunStatus.PENDING, _P.FAILURE, False, False),
])
def test_a_stage_run_is_cancelled_while_it_and_its_run_are_open(
        stage: str, pipeline: str, stopping: bool, cancellable: bool):
    assert stage_run_cancellable(stage, pipeline_status=pipeline,
                                 stopping=stopping) is cancellable


def test_a_stage_run_takes_targets_only_while_running_and_not_stopping():
    takes = {s for s in StageRunStatus if stage_run_takes_targets(s)}
    assert takes == {StageRunStatus.RUNNING}
    assert not stage_run_takes_targets(StageRunStatus.RUNNING, stopping=True)


def test_a_target_run_is_cancelled_only_before_dispatch():
    assert CANCELLABLE_TARGET_RUN == ("pending", "queued", "processing")
    assert {s for s in TargetRunStatus if target_run_cancellable(s)} == {
        TargetRunStatus.PENDING, TargetRunStatus.QUEUED, TargetRunStatus.PROCESSING}


def test_a_command_is_cancelled_until_it_ends():
    assert {s for s in CommandStatus if not command_cancellable(s)} == {
        CommandStatus.SUCCESS, CommandStatus.FAILURE, CommandStatus.TIMEOUT,
        CommandStatus.CANCELLED}
