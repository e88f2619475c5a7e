"""The retry plan of each mode, from the facts of the retried run."""

from __future__ import annotations

import pytest

from domain.retry_modes import (
    Carry,
    PastStage,
    RetryMode,
    RetryNotPossible,
    parse_mode,
    plan_retry,
)


def stage(key: str, status: str, made: bool = True, all_ok: bool = False) -> PastStage:
    return PastStage(key=key, name=key, status=status, made_targets=made, all_succeeded=all_ok)


FAILED_IN_B = [stage("a", "success", all_ok=True), stage("b", "failure"),
               stage("c", "cancelled", made=False)]


def carries(steps) -> list[str]:  # noqa: ANN001
    return [step.carry.value for step in steps]


def test_from_failed_carries_what_succeeded_and_runs_what_was_not_reached() -> None:
    steps = plan_retry(RetryMode.FROM_FAILED, FAILED_IN_B, None, 1)
    assert carries(steps) == ["stage", "targets", ""]
    assert [step.released for step in steps] == [False, True, False]


def test_from_failed_sends_again_the_failures_a_stage_succeeded_despite() -> None:
    # a success threshold below 100 %: the stage succeeded with a failed target run
    steps = plan_retry(RetryMode.FROM_FAILED, [stage("a", "success", all_ok=False),
                                               stage("b", "success", all_ok=True)], None, 1)
    assert carries(steps) == ["targets", "targets"]


def test_from_failed_with_nothing_failed_is_a_conflict() -> None:
    with pytest.raises(RetryNotPossible) as refused:
        plan_retry(RetryMode.FROM_FAILED, [stage("a", "success", all_ok=True)], None, 4)
    assert refused.value.conflict and "run 4" in str(refused.value)


def test_from_step_carries_the_stages_before_it() -> None:
    steps = plan_retry(RetryMode.FROM_STEP, [stage("a", "success", all_ok=True),
                                             stage("b", "success", all_ok=True),
                                             stage("c", "failure")], "b", 1)
    assert carries(steps) == ["stage", "", ""]
    assert [step.released for step in steps] == [False, True, False]


@pytest.mark.parametrize(("key", "conflict"), [(None, False), ("zzz", False), ("c", True)])
def test_from_step_refusals(key: str | None, conflict: bool) -> None:
    with pytest.raises(RetryNotPossible) as refused:
        plan_retry(RetryMode.FROM_STEP, FAILED_IN_B, key, 1)
    assert refused.value.field == "step_key" and refused.value.conflict is conflict
    assert refused.value.allowed == ["a", "b", "c"]


def test_full_runs_everything() -> None:
    steps = plan_retry(RetryMode.FULL, FAILED_IN_B, None, 1)
    assert carries(steps) == ["", "", ""] and steps[0].released
    assert all(step.carry == Carry.NONE for step in steps)


def test_modes_parse_in_any_case_and_default_to_from_failed() -> None:
    assert parse_mode(None) == RetryMode.FROM_FAILED
    assert parse_mode(" FULL ") == RetryMode.FULL
    with pytest.raises(RetryNotPossible) as refused:
        parse_mode("again")
    assert refused.value.field == "mode" and "from_failed" in (refused.value.allowed or [])
