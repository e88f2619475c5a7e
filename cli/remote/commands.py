"""`fleetpipe apply` and `fleetpipe devices import`, and the operator command groups, ready for
the `fleetpipe` entry point to mount."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.remote.apply import apply_spec
from cli.remote.common import (
    ApiUrlOpt,
    Output,
    OutputOpt,
    TokenOpt,
    console,
    emit_json,
    refused,
    remote,
)
from cli.remote.devices_import import import_devices
from cli.remote.runs import runs, targets
from cli.remote.spec import SpecError, load_spec

devices = typer.Typer(help="The enterprise's devices (through the REST API).",
                      no_args_is_help=True)


def apply(
    file: Annotated[Path, typer.Option("--file", "-f", help="The pipeline file (YAML).",
                                       dir_okay=False)],
    api_url: ApiUrlOpt = None, token: TokenOpt = None, output: OutputOpt = Output.table,
) -> None:
    """Create or update the pipeline a YAML file describes (matched by name).

    Applying the same file again changes nothing; a bad file changes nothing and each problem
    is named as FILE:LINE: FIELD."""
    try:
        loaded = load_spec(file)
    except SpecError as exc:
        raise refused(exc) from None  # before any key is needed: a file is checked offline
    with remote(api_url, token) as api:
        try:
            result = apply_spec(api, loaded)
        except SpecError as exc:
            raise refused(exc) from None
    if output is Output.json:
        emit_json(result.as_json())
        return
    out = console()
    out.print(f"pipeline {result.name} {result.action} ({result.pipeline_id})")
    for change in result.changes:
        out.print(f"  {change}", soft_wrap=True)


@devices.command("import")
def devices_import(
    file: Annotated[Path, typer.Argument(help="CSV: name, alias, groups (a;b), then attribute "
                                         "columns such as esper_device_id or thing_name.",
                                         dir_okay=False)],
    api_url: ApiUrlOpt = None, token: TokenOpt = None, output: OutputOpt = Output.table,
) -> None:
    """Create or update devices from a CSV file, by name (importing it again changes nothing)."""
    with remote(api_url, token) as api:
        result = import_devices(api, file)
    if output is Output.json:
        emit_json(result.as_json())
        return
    console().print(
        f"devices: {len(result.created)} created, {len(result.updated)} updated, "
        f"{len(result.unchanged)} unchanged; groups: {len(result.groups_created)} created, "
        f"{len(result.groups_updated)} updated")


def mount(app: typer.Typer) -> None:
    app.command("apply")(apply)
    app.add_typer(runs, name="runs")
    app.add_typer(targets, name="targets")
    app.add_typer(devices, name="devices")
