"""domain.rollups: command -> target status, the stage outcome and the pipeline outcome."""

from __future__ import annotations

import pytest

from domain.rollups import pipeline_outcome, stage_outcome, target_status_for_command
from domain.statuses import STATUSES, RunKind, can_transition, transition_path

# The reference's target run statuses: what each command status means for its target.
COMMAND_TO_TARGET = {
    "scheduled": "processing",  # the command request is created while the target processes
    "queued": "dispatched",
    "initiated": "running",
    "acknowledged": "running",
    "inprogress": "running",
    "success": "success",
    "failure": "failure",
    "timeout": "failure",
    "cancelled": "failure",
}


@pytest.mark.parametrize("command_status, target_status", list(COMMAND_TO_TARGET.items()),
                         ids=[f"{c}->{t}" for c, t in COMMAND_TO_TARGET.items()])
def test_target_status_for_command(command_status, target_status):
    assert target_status_for_command(command_status) == target_status


def test_the_mapping_covers_every_command_status():
    assert set(COMMAND_TO_TARGET) == set(STATUSES[RunKind.COMMAND])


@pytest.mark.parametrize(
    "before, after",
    [(a, b) for a in STATUSES[RunKind.COMMAND] for b in STATUSES[RunKind.COMMAND]
     if can_transition(RunKind.COMMAND, a, b)],
    ids=lambda s: s,
)
def test_a_command_moving_forward_never_moves_its_target_backwards(before, after):
    target_before = target_status_for_command(before)
    target_after = target_status_for_command(after)
    if target_before != target_after:
        assert transition_path(RunKind.TARGET, target_before, target_after), (
            f"command {before}->{after} would need target {target_before}->{target_after}")


# ---- stage_outcome ---------------------------------------------------------------------------
@pytest.mark.parametrize("counts", [
    pytest.param({"success": 1}, id="one-target"),
    pytest.param({"success": 10_000}, id="ten-thousand"),
    pytest.param({"success": 3, "failure": 0}, id="zero-failure-count"),
])
def test_all_success_is_success(counts):
    assert stage_outcome(counts) == "success"


@pytest.mark.parametrize("counts", [
    pytest.param({"success": 999, "failure": 1}, id="one-failure"),
    pytest.param({"success": 999, "timeout": 1}, id="one-timeout"),
    pytest.param({"success": 999, "cancelled": 1}, id="one-cancelled"),
    pytest.param({"success": 999, "invalid": 1}, id="one-invalid"),
    pytest.param({"failure": 5}, id="all-failed"),
])
def test_any_non_success_fails_a_stage_by_default(counts):
    assert stage_outcome(counts) == "failure"


def test_a_stage_without_target_runs_is_invalid():
    assert stage_outcome({}) == "invalid"
    assert stage_outcome({"success": 0, "failure": 0}) == "invalid"


@pytest.mark.parametrize("threshold, succeeded, total, expected", [
    pytest.param(0, 0, 10, "success", id="0%-none-succeeded"),
    pytest.param(0, 10, 10, "success", id="0%-all-succeeded"),
    pytest.param(50, 5, 10, "success", id="50%-exactly-half"),
    pytest.param(50, 4, 10, "failure", id="50%-just-under"),
    pytest.param(50, 1, 2, "success", id="50%-one-of-two"),
    pytest.param(50, 49, 99, "failure", id="50%-49-of-99"),
    pytest.param(50, 50, 99, "success", id="50%-50-of-99"),
    pytest.param(99.9, 999, 1000, "success", id="99.9%-exactly"),
    pytest.param(99.9, 998, 1000, "failure", id="99.9%-one-short"),
    pytest.param(99.9, 99, 100, "failure", id="99.9%-99-of-100"),
    pytest.param(99.9, 9990, 10000, "success", id="99.9%-exactly-at-10000"),
    pytest.param(100, 1000, 1000, "success", id="100%-all"),
    pytest.param(100, 999, 1000, "failure", id="100%-one-short"),
    pytest.param(33.3, 1, 3, "success", id="33.3%-one-third-is-above"),
    pytest.param(33.34, 1, 3, "failure", id="33.34%-one-third-is-below"),
    pytest.param(66.66, 2, 3, "success", id="66.66%-two-thirds-is-above"),
    pytest.param(66.67, 2, 3, "failure", id="66.67%-two-thirds-is-below"),
])
def test_stage_outcome_threshold(threshold, succeeded, total, expected):
    counts = {"success": succeeded, "failure": total - succeeded}
    assert stage_outcome(counts, success_threshold_percentage=threshold) == expected


@pytest.mark.parametrize("threshold, succeeded, total", [
    pytest.param(32.2, 161, 500, id="32.2%-161-of-500"),
    pytest.param(8.8, 33, 375, id="8.8%-33-of-375"),
    pytest.param(2.2, 33, 1500, id="2.2%-33-of-1500"),
])
def test_stage_outcome_exactly_at_a_decimal_threshold_is_success(threshold, succeeded, total):
    counts = {"success": succeeded, "failure": total - succeeded}
    assert stage_outcome(counts, success_threshold_percentage=threshold) == "success"


# ---- pipeline_outcome ------------------------------------------------------------------------
@pytest.mark.parametrize("stages, expected", [
    pytest.param(["success"], "success", id="one-stage-succeeded"),
    pytest.param(["success", "success", "success"], "success", id="all-succeeded"),
    pytest.param(["success", "failure"], "failure", id="last-failed"),
    pytest.param(["failure", "cancelled"], "failure", id="failed-then-cancelled"),
    pytest.param(["success", "timeout"], "failure", id="one-timed-out"),
    pytest.param(["success", "cancelled"], "failure", id="one-cancelled"),
    pytest.param(["invalid", "success"], "failure", id="one-invalid"),
    pytest.param([], "invalid", id="no-stages"),
])
def test_pipeline_outcome(stages, expected):
    assert pipeline_outcome(stages) == expected


def test_pipeline_outcome_accepts_any_iterable():
    assert pipeline_outcome(status for status in ["success", "success"]) == "success"
    assert pipeline_outcome(iter(["success", "failure"])) == "failure"
