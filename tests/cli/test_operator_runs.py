"""`fleetpipe runs ...` and `targets list` against the real stack over HTTP: a watched run stops
at its gate naming the command that passes it and ends `success` with exit 0 once promoted; a
failing run ends non-zero and its failed targets are listed; pause, resume, cancel and promote
act on the run; retry is refused clearly where the server does not offer it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.cli.operator_stack import Stack

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PIPELINE = """\
name: {name}
stages:
  - name: canary
    targets: {{devices: [{canary}]}}
    operations:
      - type: INSTALL
        args: {{package_name: com.example.app, app_version: "1.0"}}
  - name: fleet
    trigger: manual
    targets: {{devices: [{fleet}]}}
    operations:
      - type: INSTALL
        args: {{package_name: com.example.app, app_version: "1.0"}}
"""


async def _pipeline(stack: Stack, tmp_path: Path, name: str, behavior: str = "succeed",
                    gate: bool = True) -> None:
    names = []
    for n in range(3):
        device = await stack.ok("POST", "/devices", {
            "name": f"{name}-{n}", "attributes": {"sim_behavior": behavior}})
        names.append(device["name"])
    text = PIPELINE.format(name=name, canary=names[0], fleet=", ".join(names[1:]))
    if not gate:
        text = text.replace("trigger: manual", "trigger: automatic")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    applied = await stack.cli("apply", "-f", str(path))
    assert applied.exit_code == 0, applied.output


async def _run(stack: Stack, label: str) -> dict:
    shown = await stack.cli("runs", "show", label, "-o", "json")
    assert shown.exit_code == 0, shown.output
    return json.loads(shown.stdout)


async def test_start_watch_stops_at_the_gate_and_ends_success_once_promoted(
        stack: Stack, tmp_path: Path) -> None:
    await _pipeline(stack, tmp_path, "rollout")
    watching = await stack.spawn("runs", "start", "rollout", "--watch")
    assert watching.stdout is not None
    seen: list[str] = []
    gate = ("rollout#1 waiting at the gate of stage 2 (fleet); pass it with: "
            "fleetpipe runs promote rollout#1 fleet")
    try:
        async with asyncio.timeout(90):
            while gate not in seen:  # the watch stops at the gate, naming the command
                line = (await watching.stdout.readline()).decode()
                assert line, f"the watch ended before the gate: {seen}"
                seen.append(line.strip())
            assert "rollout#1 stage 1 canary: success, 1/1 success" in seen
            # The operator passes it (as the line says) while the watch goes on.
            promoted = await stack.cli(*gate.split("pass it with: fleetpipe ")[1].split())
            assert promoted.exit_code == 0, promoted.output
            rest, errors = await watching.communicate()
    finally:
        if watching.returncode is None:
            watching.kill()
    lines = seen + rest.decode().splitlines()
    assert watching.returncode == 0, (lines, errors)
    assert lines[0].startswith("started rollout#1 (")
    assert "rollout#1 stage 2 fleet: success, 2/2 success" in lines
    assert lines[-1] == "rollout#1 ended success"


async def test_promote_by_default_passes_the_gate_the_run_waits_at(stack: Stack,
                                                                  tmp_path: Path) -> None:
    await _pipeline(stack, tmp_path, "gated")
    started = await stack.cli("runs", "start", "gated", "-o", "json")
    assert started.exit_code == 0, started.output
    run_id = json.loads(started.stdout)["id"]
    early = await stack.cli("runs", "promote", "gated")
    if early.exit_code != 0:  # stage 1 may still be running: the refusal says so
        assert "gated#1 waits at no gate" in early.stderr
    await stack.until(f"/runs/{run_id}", lambda r: r["status"] == "waiting")
    promoted = await stack.cli("runs", "promote", "gated")  # PIPELINE alone: its latest run
    assert promoted.exit_code == 0, promoted.output
    assert "promoted stage 2 (fleet) of gated#1" in promoted.stdout
    watched = await stack.cli("runs", "watch", "gated#1")
    assert watched.exit_code == 0, watched.output
    assert "gated#1 ended success" in watched.stdout

    listed = await stack.cli("runs", "list", "gated", "-o", "json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [run_id]
    table = await stack.cli("runs", "list", "--status", "success")
    assert "gated#1" in table.stdout and run_id in table.stdout
    by_id = await stack.cli("runs", "show", run_id)
    assert by_id.exit_code == 0 and "gated#1 stage 2 fleet: success" in by_id.stdout


async def test_promote_wait_passes_the_gate_once_the_run_reaches_it(
        stack: Stack, tmp_path: Path) -> None:
    # One shell, pasted at once: start, promote as soon as the gate is reached, watch the end.
    await _pipeline(stack, tmp_path, "pasted")
    started = await stack.cli("runs", "start", "pasted")
    assert started.exit_code == 0, started.output
    promoted = await stack.cli("runs", "promote", "pasted", "--wait")
    assert promoted.exit_code == 0, promoted.output
    assert "promoted stage 2 (fleet) of pasted#1" in promoted.stdout
    watched = await stack.cli("runs", "watch", "pasted")
    assert watched.exit_code == 0 and "pasted#1 ended success" in watched.stdout
    again = await stack.cli("runs", "promote", "pasted", "--wait")
    assert again.exit_code == 1
    assert "pasted#1 ended success before reaching a gate" in again.stderr


async def test_a_failing_run_ends_non_zero_and_lists_its_failed_targets(
        stack: Stack, tmp_path: Path) -> None:
    await _pipeline(stack, tmp_path, "doomed", behavior="fail", gate=False)
    result = await stack.cli("runs", "start", "doomed", "--watch")
    assert result.exit_code == 3, result.output
    assert "doomed#1 stage 1 canary: failure, 0/1 success, 1 failed" in result.stdout
    assert "doomed#1 ended failure" in result.stdout
    failed = await stack.cli("targets", "list", "doomed#1", "--status", "failure", "-o", "json")
    assert failed.exit_code == 0, failed.output
    rows = json.loads(failed.stdout)
    assert [(r["stage_name"], r["device_name"], r["status"]) for r in rows] == [
        ("canary", "doomed-0", "failure")]
    shown = await stack.cli("targets", "list", "doomed#1")
    assert "doomed-0" in shown.stdout and "failure" in shown.stdout
    # For scripts: stdout is the final run as JSON, the view goes to stderr.
    scripted = await stack.cli("runs", "start", "doomed", "--watch", "-o", "json")
    assert scripted.exit_code == 3, scripted.output
    final = json.loads(scripted.stdout)
    assert final["status"] == "failure" and final["stage_runs"][0]["status"] == "failure"
    assert "doomed#2 ended failure" in scripted.stderr


async def test_pause_resume_and_cancel_then_watch_exits_cancelled(stack: Stack,
                                                                 tmp_path: Path) -> None:
    await _pipeline(stack, tmp_path, "steered")
    started = await stack.cli("runs", "start", "steered")
    assert started.exit_code == 0, started.output
    run_id = (await _run(stack, "steered#1"))["id"]
    await stack.until(f"/runs/{run_id}", lambda r: r["status"] == "waiting")
    paused = await stack.cli("runs", "pause", "steered#1")
    assert paused.exit_code == 0, paused.output
    assert "paused steered#1" in paused.stdout
    resumed = await stack.cli("runs", "resume", "steered#1")
    assert resumed.exit_code == 0, resumed.output
    cancelled = await stack.cli("runs", "cancel", "steered#1")
    assert cancelled.exit_code == 0, cancelled.output
    watched = await stack.cli("runs", "watch", "steered#1")
    assert watched.exit_code == 4, watched.output
    assert "steered#1 ended cancelled" in watched.stdout
    again = await stack.cli("runs", "cancel", "steered#1")
    assert again.exit_code == 1 and "Traceback" not in again.output


async def test_retry_and_inputs_say_what_the_server_does(stack: Stack, tmp_path: Path) -> None:
    await _pipeline(stack, tmp_path, "plain", gate=False)
    done = await stack.cli("runs", "start", "plain", "--watch")
    assert done.exit_code == 0, done.output
    retried = await stack.cli("runs", "retry", "plain#1", "--mode", "full")
    if retried.exit_code == 0:  # a server with retries: a new run of the same pipeline
        assert "retried plain#1 as plain#2" in retried.stdout
    else:
        assert retried.exit_code == 1
        assert "does not offer retry" in retried.stderr
    bad_mode = await stack.cli("runs", "retry", "plain#1", "--mode", "sideways")
    assert bad_mode.exit_code == 1 and "allowed: from_failed, from_step, full" in bad_mode.stderr
    bad_input = await stack.cli("runs", "start", "plain", "--input", "novalue")
    assert bad_input.exit_code == 1 and "write it as NAME=VALUE" in bad_input.stderr
    unknown = await stack.cli("runs", "show", "plain#9")
    assert unknown.exit_code == 1 and "pipeline 'plain' has no run #9" in unknown.stderr
