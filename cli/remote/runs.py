"""`fleetpipe runs ...` and `fleetpipe targets list`: start, list, show, watch and act on runs
through the REST API. A run is named `PIPELINE#N` (its number), `PIPELINE` (its latest run) or
its id."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from cli.remote.client import Api, ApiError, CliError
from cli.remote.common import (
    ApiUrlOpt,
    Output,
    OutputOpt,
    TokenOpt,
    console,
    emit_json,
    err_console,
    refused,
    remote,
    table,
    when,
)
from cli.remote.resolve import (
    RUN_FORMS,
    find_pipeline,
    find_run,
    find_stage_run,
    run_label,
    stage_runs,
)
from cli.remote.run_view import EXIT_CODES, RunView, plain_lines
from cli.remote.watch import POLL_FIRST, POLL_GROWTH, POLL_MAX, read_view
from cli.remote.watch import watch as watch_run

runs = typer.Typer(help="Start, follow and steer pipeline runs (through the REST API). "
                   f"RUN is {RUN_FORMS}.", no_args_is_help=True)
targets = typer.Typer(help="The target runs of a run (one device x one operation).",
                      no_args_is_help=True)

RunArg = Annotated[str, typer.Argument(help=f"The run: {RUN_FORMS}.", show_default=False)]
RUN_COLUMNS = [
    ("RUN", run_label), ("STATUS", lambda r: r["status"]),
    ("STARTED", lambda r: when(r.get("started_at"))), ("ENDED", lambda r: when(r.get("ended_at"))),
    ("ID", lambda r: r["id"]),
]
EXIT_HELP = ("Exit code: 0 success, 3 failure, 4 cancelled, 5 timeout, 6 invalid "
             "(1: the command itself failed).")


def _inputs(pairs: list[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--input {pair!r}: write it as NAME=VALUE")
        values[key] = value
    return values


@runs.command("start")
def start(
    pipeline: Annotated[str, typer.Argument(help="The pipeline's name (or id).")],
    inputs: Annotated[list[str] | None, typer.Option(
        "--input", "-i", help="A run input NAME=VALUE (repeatable): the run's input_values.")
    ] = None,
    follow: Annotated[bool, typer.Option("--watch", "-w", help="Then watch it to the end. "
                                         + EXIT_HELP)] = False,
    api_url: ApiUrlOpt = None, token: TokenOpt = None, output: OutputOpt = Output.table,
) -> None:
    """Start a run of PIPELINE as it is now."""
    with remote(api_url, token) as api:
        found = find_pipeline(api, pipeline)
        body: dict[str, Any] = {}
        if inputs:
            body["input_values"] = _inputs(inputs)
        run = api.call("POST", f"/pipelines/{found['id']}/runs", json=body)
        if inputs and "input_values" not in run:
            err_console().print("fleetpipe: warning: the server did not echo input_values: it "
                                "may not support run inputs and have ignored them")
        if output is Output.json and not follow:
            emit_json(run)
            return
        # With --output json, stdout carries only the JSON: the human lines go to stderr.
        out = err_console() if output is Output.json else console()
        out.print(f"started {run_label(run)} ({run['id']})")
        out.file.flush()
        if follow:
            _watch(api, run, output)


@runs.command("list")
def list_runs(
    pipeline: Annotated[str | None, typer.Argument(help="Only this pipeline's runs.")] = None,
    status: Annotated[str | None, typer.Option(help="Only runs in this status.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
    api_url: ApiUrlOpt = None, token: TokenOpt = None, output: OutputOpt = Output.table,
) -> None:
    """Runs, newest first."""
    with remote(api_url, token) as api:
        path = f"/pipelines/{find_pipeline(api, pipeline)['id']}/runs" if pipeline else "/runs"
        found = api.get(path, status=status, limit=min(limit, 1000))["results"]
        if output is Output.json:
            emit_json(found)
        else:
            table(found, RUN_COLUMNS)


@runs.command("show")
def show(run: RunArg, api_url: ApiUrlOpt = None, token: TokenOpt = None,
         output: OutputOpt = Output.table) -> None:
    """A run, its stages with their target runs by status, and why it waits."""
    with remote(api_url, token) as api:
        found = find_run(api, run)
        stages = stage_runs(api, found)
        if output is Output.json:
            emit_json({**found, "stage_runs": stages})
            return
        for line in plain_lines(RunView(found, stages)):
            console().print(line, soft_wrap=True)


@runs.command("watch")
def watch(run: RunArg, api_url: ApiUrlOpt = None, token: TokenOpt = None,
          output: OutputOpt = Output.table) -> None:
    """Follow a run live until it ends.

    Exit code: 0 success, 3 failure, 4 cancelled, 5 timeout, 6 invalid (1: the command itself
    failed)."""
    with remote(api_url, token) as api:
        _watch(api, find_run(api, run), output)


def _watch(api: Api, run: dict[str, Any], output: Output) -> None:
    try:
        view = watch_run(api, run["id"], err_console() if output is Output.json else console())
    except KeyboardInterrupt:
        err_console().print(f"stopped watching; {run_label(run)} goes on "
                            f"(`fleetpipe runs watch {run_label(run)}` to watch again)")
        raise typer.Exit(130) from None
    if output is Output.json:
        emit_json({**view.run, "stage_runs": view.stages})
    raise typer.Exit(view.exit_code)


@runs.command("promote")
def promote(
    run: RunArg,
    stage: Annotated[str | None, typer.Argument(
        help="The stage (name or order); default: the gate the run waits at.")] = None,
    wait: Annotated[bool, typer.Option(
        "--wait", help="Wait until the run reaches a gate (or STAGE's gate), then pass it.")
    ] = False,
    api_url: ApiUrlOpt = None, token: TokenOpt = None, output: OutputOpt = Output.table,
) -> None:
    """Pass a manual gate: start STAGE (by default the one the run waits at)."""
    with remote(api_url, token) as api:
        found = find_run(api, run)
        if wait:
            found = _until_gate(api, found, stage)
        stages = stage_runs(api, found)
        if stage is not None:
            target = find_stage_run(stages, stage)
        else:
            waiting = RunView(found, stages).waiting()
            label = run_label(found)
            if waiting is not None and waiting.kind == "pause":
                raise CliError(f"{label} is paused: resume it first (`fleetpipe runs resume "
                               f"{label}`), then promote its gate")
            if waiting is None or waiting.stage is None:
                raise CliError(f"{label} waits at no gate (it is {found['status']}); name the "
                               "stage to promote it anyway")
            target = waiting.stage
        result = api.call("PUT", f"/runs/{found['id']}/stageruns/{target['id']}",
                          json={"status": "queued"})
        _done(output, result, f"promoted stage {target['order']} ({target['stage_name']}) of "
              f"{run_label(found)}")


def _until_gate(api: Api, run: dict[str, Any], stage: str | None) -> dict[str, Any]:
    """The run once it waits at a gate (STAGE's, when named); a run that ends first is refused."""
    delay = POLL_FIRST
    while True:
        view = read_view(api, run["id"])
        waiting = view.waiting()
        if waiting is not None and waiting.kind == "gate" and waiting.stage is not None and (
                stage is None or stage in (waiting.stage["stage_name"],
                                           str(waiting.stage["order"]))):
            return view.run
        if view.ended:
            raise CliError(f"{view.label} ended {view.status} before reaching "
                           + (f"the gate of {stage}" if stage else "a gate"))
        time.sleep(delay)
        delay = min(delay * POLL_GROWTH, POLL_MAX)


def _run_action(run: str, status: str, verb: str, api_url: str | None, token: str | None,
                output: Output) -> None:
    with remote(api_url, token) as api:
        found = find_run(api, run)
        said = found.get("waiting_for")
        if verb == "resumed" and isinstance(said, dict) and said.get("kind") == "gate":
            # The API's `running` also passes a gate; `resume` must never promote by surprise.
            label = run_label(found)
            raise CliError(f"{label} is not paused: it waits at the gate of stage "
                           f"{said.get('stage_order')} ({said.get('stage_name')}); pass it with "
                           f"`fleetpipe runs promote {label}`")
        result = api.call("PUT", f"/pipelines/{found['pipeline_id']}/runs/{found['id']}",
                          json={"status": status})
        _done(output, result, f"{verb} {run_label(found)} (now {result['status']})")


def _done(output: Output, result: Any, message: str) -> None:
    if output is Output.json:
        emit_json(result)
    else:
        console().print(message)


@runs.command("pause")
def pause(run: RunArg, api_url: ApiUrlOpt = None, token: TokenOpt = None,
          output: OutputOpt = Output.table) -> None:
    """Stop dispatching new targets (in-flight ones finish)."""
    _run_action(run, "waiting", "paused", api_url, token, output)


@runs.command("resume")
def resume(run: RunArg, api_url: ApiUrlOpt = None, token: TokenOpt = None,
           output: OutputOpt = Output.table) -> None:
    """Resume a paused run."""
    _run_action(run, "running", "resumed", api_url, token, output)


@runs.command("cancel")
def cancel(run: RunArg, api_url: ApiUrlOpt = None, token: TokenOpt = None,
           output: OutputOpt = Output.table) -> None:
    """Cancel the run and its open stage runs."""
    _run_action(run, "cancelled", "cancelled", api_url, token, output)


RETRY_MODES = ("from_failed", "from_step", "full")


@runs.command("retry")
def retry(
    run: RunArg,
    mode: Annotated[str, typer.Option(help="from_failed (the failed targets and the stages not "
                                      "reached), from_step (from --step) or full.")
                    ] = "from_failed",
    step: Annotated[str | None, typer.Option(
        help="from_step: the stage to start from (its name, order or key).")] = None,
    follow: Annotated[bool, typer.Option("--watch", "-w", help="Then watch the new run.")
                      ] = False,
    api_url: ApiUrlOpt = None, token: TokenOpt = None, output: OutputOpt = Output.table,
) -> None:
    """Start a new run repeating a finished one (when the server offers retries)."""
    if mode not in RETRY_MODES:
        raise refused(CliError(f"--mode {mode!r}: allowed: {', '.join(RETRY_MODES)}"))
    with remote(api_url, token) as api:
        found = find_run(api, run)
        body: dict[str, Any] = {"mode": mode}
        if step is not None:  # the API's step key is the stage's id
            chosen = next((s for s in stage_runs(api, found) if s["stage_id"] == step), None)
            body["step_key"] = (chosen or find_stage_run(stage_runs(api, found), step))["stage_id"]
        path = f"/pipelines/{found['pipeline_id']}/runs/{found['id']}/retry"
        try:
            new = api.call("POST", path, json=body)
        except ApiError as exc:
            if _route_missing(exc):
                raise CliError(f"the server at {api.target.url} does not offer retry "
                               f"(POST .../runs/{{id}}/retry answered {exc.status})") from exc
            raise
        if output is Output.json and not follow:
            emit_json(new)
            return
        out = err_console() if output is Output.json else console()
        out.print(f"retried {run_label(found)} as {run_label(new)} ({new['id']})")
        if follow:
            _watch(api, new, output)


def _route_missing(exc: ApiError) -> bool:
    """A 404 about the path (the API says "no such path"), not about the run."""
    return exc.status == 405 or "no such path" in str(exc)


@targets.command("list")
def list_targets(
    run: RunArg,
    status: Annotated[str | None, typer.Option(help="Only target runs in this status "
                                               "(e.g. failure).")] = None,
    stage: Annotated[str | None, typer.Option(help="Only this stage (name or order).")] = None,
    api_url: ApiUrlOpt = None, token: TokenOpt = None, output: OutputOpt = Output.table,
) -> None:
    """A run's target runs (current ones: a target sent again shows its latest attempt)."""
    with remote(api_url, token) as api:
        found = find_run(api, run)
        stages = stage_runs(api, found)
        if stage is not None:
            stages = [find_stage_run(stages, stage)]
        rows = []
        for stage_run in stages:
            for target in api.pages(f"/stageruns/{stage_run['id']}/targetruns", status=status):
                if target.get("superseded_by") is None:
                    rows.append({**target, "stage_name": stage_run["stage_name"]})
        if output is Output.json:
            emit_json(rows)
            return
        table(rows, [
            ("STAGE", lambda t: t["stage_name"]), ("DEVICE", lambda t: t["device_name"]),
            ("STATUS", lambda t: t["status"]), ("COMMAND", lambda t: t.get("command_status")),
            ("REASON", lambda t: t.get("status_reason") or ""), ("ID", lambda t: t["id"]),
        ], title=f"{run_label(found)}: {len(rows)} target run(s)")


__all__ = ["EXIT_CODES", "runs", "targets"]
