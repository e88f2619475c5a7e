"""The "update run" view's statuses and what a device's report may do (domain.update_run)."""

from __future__ import annotations

import pytest

from domain.statuses import STATUSES, RunKind, is_terminal
from domain.update_run import (
    MAX_REPORTED,
    DeviceReport,
    ReportRefused,
    UpdateRunStatus,
    reported_command_status,
    update_run_status,
)


@pytest.mark.parametrize(("target", "shown"), [
    ("pending", "scheduling"), ("queued", "scheduling"), ("processing", "scheduling"),
    ("dispatched", "scheduling"), ("running", "running"), ("complete", "running"),
    ("success", "success"), ("cancelled", "cancelled"), ("failure", "error"),
    ("timeout", "error"), ("invalid", "error")])
def test_every_target_run_status_has_its_view(target: str, shown: str) -> None:
    assert update_run_status(target) == shown


def test_a_command_further_along_shows_before_its_workflow_records_it() -> None:
    assert update_run_status("dispatched", "inprogress") == "running"
    assert update_run_status("running", "success") == "success"
    assert update_run_status("running", "cancelled") == "error"  # it will end failure
    # the run's own end outranks whatever its command says
    assert update_run_status("timeout", "inprogress") == "error"
    assert update_run_status("running", "queued") == "running"  # never shown backwards


@pytest.mark.parametrize(("reported", "command", "recorded"), [
    ("running", "queued", "inprogress"), ("running", "initiated", "inprogress"),
    ("running", "inprogress", "inprogress"), ("success", "inprogress", "success"),
    ("error", "queued", "failure"), ("cancelled", "acknowledged", "cancelled"),
    ("scheduling", "queued", "queued"), ("scheduling", "scheduled", "scheduled"),
    (None, "inprogress", "inprogress")])
def test_a_report_becomes_a_command_status(reported: str | None, command: str,
                                           recorded: str) -> None:
    assert reported_command_status(reported, "dispatched", command) == recorded


def test_backwards_and_finished_are_refused_naming_the_current_status() -> None:
    with pytest.raises(ReportRefused) as caught:
        reported_command_status("scheduling", "running", "inprogress")
    assert caught.value.current == "running" and "backwards" in caught.value.message
    for command in ("success", "failure", "timeout", "cancelled"):
        with pytest.raises(ReportRefused) as caught:
            reported_command_status(None, "running", command)
        assert "finished" in caught.value.message
    for target in STATUSES[RunKind.TARGET]:
        if is_terminal(RunKind.TARGET, target):
            with pytest.raises(ReportRefused) as caught:
                reported_command_status("running", target, "inprogress")
            assert caught.value.current == update_run_status(target)


def test_a_report_is_one_event_with_the_devices_words() -> None:
    report = DeviceReport(status=UpdateRunStatus.ERROR, error=["disk full", "no space"],
                          output_data={"free": 0}, output_attachment_ids=["a"],
                          run_message_history=[{"m": 1}])
    event = report.event("c1", "failure")
    assert (event.status, event.reason, event.output, event.error) == (
        "failure", "disk full; no space", {"free": 0}, ["disk full", "no space"])
    assert event.carries_data()
    assert DeviceReport(status="error").event("c1", "failure").reason == (
        "the device reported error")
    assert DeviceReport().is_empty() and not DeviceReport(status="running").is_empty()


def test_a_run_holds_a_bounded_amount_of_reports() -> None:
    report = DeviceReport(run_message_history=[{"m": i} for i in range(3)])
    assert report.overflow({"run_message_history": MAX_REPORTED["run_message_history"] - 3}
                           ) is None
    full = report.overflow({"run_message_history": MAX_REPORTED["run_message_history"] - 2})
    assert full is not None and full.startswith("run_message_history:") and "at most" in full
    assert DeviceReport(error=["x"] * (MAX_REPORTED["error"] + 1)).overflow({}) is not None
