"""Why a run waits, as the watch view and `runs promote` read it: the server's `waiting_for`
where it gives one, else the stages' own statuses; and the exit code of each outcome."""

from __future__ import annotations

from typing import Any

from cli.remote.run_view import RunView, bar, plain_lines, tally


def _view(status: str, stages: list[tuple[str, str]], waiting_for: Any = None) -> RunView:
    run = {"id": "r", "pipeline_name": "p", "run_number": 3, "status": status,
           "waiting_for": waiting_for}
    return RunView(run, [{"id": f"s{n}", "stage_id": f"st{n}", "stage_name": name,
                          "order": n, "trigger": "manual" if n > 1 else "automatic",
                          "status": stage_status,
                          "target_run_counts": {"success": 2, "failure": 1, "running": 1}}
                         for n, (name, stage_status) in enumerate(stages, start=1)])


def test_a_gate_from_the_stages_and_from_waiting_for() -> None:
    at_gate = _view("waiting", [("canary", "success"), ("fleet", "pending")])
    gate = at_gate.waiting()
    assert gate is not None and gate.kind == "gate" and gate.stage is not None
    assert gate.stage["stage_name"] == "fleet"
    assert at_gate.hint() == ("waiting at the gate of stage 2 (fleet); pass it with",
                              "fleetpipe runs promote p#3 fleet")
    told = _view("waiting", [("canary", "success"), ("fleet", "pending"), ("last", "pending")],
                 {"kind": "gate", "stage_run_id": "s3", "stage_name": "last"})
    said = told.waiting()
    assert said is not None and said.stage is not None and said.stage["stage_name"] == "last"


def test_a_pause_from_waiting_for_comes_before_the_gate() -> None:
    paused = _view("waiting", [("canary", "success"), ("fleet", "pending")],
                   {"kind": "pause", "by": "k1", "by_name": "ci key"})
    assert paused.hint() == ("paused by ci key; resume with", "fleetpipe runs resume p#3")
    mid_stage = _view("waiting", [("canary", "running"), ("fleet", "pending")])
    assert mid_stage.hint() == ("paused; resume with", "fleetpipe runs resume p#3")
    assert _view("running", [("canary", "running")]).waiting() is None


def test_outcomes_exit_codes_and_the_bar() -> None:
    codes = {status: _view(status, []).exit_code
             for status in ("success", "failure", "cancelled", "timeout", "invalid")}
    assert codes == {"success": 0, "failure": 3, "cancelled": 4, "timeout": 5, "invalid": 6}
    stage = _view("running", [("canary", "running")]).stages[0]
    assert tally(stage) == "2/4 success, 1 failed, 1 running"
    assert len(bar(stage, width=20).plain) == 20
    assert "p#3 stage 1 canary: running, 2/4 success, 1 failed, 1 running" in plain_lines(
        _view("running", [("canary", "running")]))
