"""What every operator command shares: the --api-url / --token / --output options, the client
they make, tables for people and JSON for scripts, and one-line refusals."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.remote.client import API_URL_ENV, TOKEN_ENV, Api, CliError, Target


class Output(StrEnum):
    table = "table"
    json = "json"


ApiUrlOpt = Annotated[str | None, typer.Option(
    "--api-url", help=f"The API's base URL [env {API_URL_ENV}; default http://127.0.0.1:8000]",
    show_default=False)]
TokenOpt = Annotated[str | None, typer.Option(
    "--token", help=f"The API key [env {TOKEN_ENV}]", show_default=False)]
OutputOpt = Annotated[Output, typer.Option(
    "--output", "-o", help="table (for people) or json (for scripts)")]

STATUS_STYLES = {
    "success": "green", "failure": "red", "timeout": "red", "invalid": "red",
    "cancelled": "magenta", "running": "yellow", "dispatched": "yellow", "processing": "yellow",
    "complete": "yellow", "waiting": "cyan", "queued": "blue", "pending": "dim",
}


def console() -> Console:
    """Standard output. Not a terminal (a pipe, a file): wide, so no id is ever cut."""
    out = Console(highlight=False, soft_wrap=False)
    if not out.is_terminal:
        out = Console(highlight=False, soft_wrap=False, width=250)
    return out


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


@contextmanager
def remote(api_url: str | None, token: str | None) -> Iterator[Api]:
    """An API client for one command; any refusal becomes `fleetpipe: ...` and its exit code."""
    try:
        with Api(Target.resolve(api_url, token)) as api:
            yield api
    except CliError as exc:
        raise refused(exc) from None


def refused(exc: CliError) -> typer.Exit:
    for line in str(exc).splitlines() or [""]:
        typer.secho(f"fleetpipe: {line}" if line else "fleetpipe: refused", fg=typer.colors.RED,
                    err=True)
    return typer.Exit(exc.exit_code)


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def styled_status(status: str) -> str:
    style = STATUS_STYLES.get(status, "")
    return f"[{style}]{status}[/{style}]" if style else status


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, Callable[[dict], Any]]],
          *, title: str | None = None) -> None:
    """Rows as a table of the given (heading, value) columns; statuses coloured."""
    grid = Table(title=title, box=None, header_style="bold", pad_edge=False)
    for heading, _ in columns:
        grid.add_column(heading, overflow="fold")  # folded, never cut with an ellipsis
    for row in rows:
        cells = []
        for heading, value in columns:
            cell = value(row)
            text = "" if cell is None else str(cell)
            cells.append(styled_status(text) if heading == "STATUS" else text)
        grid.add_row(*cells)
    console().print(grid)


def when(value: str | None) -> str:
    """An API timestamp, shortened to the second (UTC)."""
    return value[:19].replace("T", " ") if value else "-"
