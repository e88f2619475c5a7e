"""The `fleetpipe` command."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from pydantic import ValidationError

from cli import dev_stack
from cli.checks import worker_unready
from cli.dev import run_dev
from cli.remote.commands import mount as mount_operator_commands
from cli.stores import NoStore, open_store, refusals
from cli.tokens import tokens
from settings import get_settings, settings_problem
from store.migrations import current_revision, head_revision, upgrade

app = typer.Typer(help="fleetpipe: durable pipeline runs over device fleets.", no_args_is_help=True)
app.add_typer(tokens, name="tokens")
db = typer.Typer(help="The SQL store.", no_args_is_help=True)
app.add_typer(db, name="db")
mount_operator_commands(app)  # apply, runs, targets, devices: the REST API's client


@app.callback()
def _settings_first() -> None:
    """Refuse unusable FLEETPIPE_* settings before any command starts, in one line."""
    try:
        get_settings()
    except ValidationError as exc:
        raise _refused(RuntimeError(settings_problem(exc))) from None


@app.command()
def dev(
    ui_port: Annotated[
        int | None, typer.Option(help="Temporal Web UI port [default: Temporal's port + 1000]")
    ] = None,
) -> None:
    """Run the embedded stack: Temporal dev server, worker, API, demo data. Ctrl-C stops it."""
    raise typer.Exit(run_dev(get_settings(), ui_port))


@db.command("upgrade")
def db_upgrade() -> None:
    """Take the store's schema to this fleetpipe's revision (safe to run again). A store made
    before migrations is adopted as it is; one made by a newer fleetpipe is refused. Where
    there is no store, this makes one (and says so)."""
    with refusals():
        engine = open_store(may_create=True)
        try:
            before, head = upgrade(engine)
        finally:
            engine.dispose()
    was = "already there" if before == head else f"was {before or 'without a revision'}"
    typer.echo(f"store at revision {head} ({was})", err=True)


@db.command("current")
def db_current() -> None:
    """Print the store's revision and this fleetpipe's; exit 1 unless they are the same."""
    try:
        engine = open_store(may_create=False, how_to_create="run `fleetpipe db upgrade`")
    except NoStore as exc:
        typer.echo(f"fleetpipe: {exc}", err=True)
        revision = None  # and no file made by asking
    else:
        with refusals():
            try:
                revision = current_revision(engine)
            finally:
                engine.dispose()
    typer.echo(f"store: {revision or 'no revision'}; this fleetpipe: {head_revision()}")
    if revision != head_revision():
        raise typer.Exit(1)


def _refused(exc: Exception) -> typer.Exit:
    typer.secho(f"fleetpipe: {exc}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


@app.command()
def worker(
    check: Annotated[bool, typer.Option(
        "--check", help="Start nothing: exit 0 if the store is at head and Temporal answers, "
        "else print why and exit 1 (the container healthcheck).")] = False,
) -> None:
    """Run the worker (as `python worker.py`) against the configured Temporal server."""
    if check:
        reason = worker_unready(get_settings())
        if reason:
            raise _refused(RuntimeError(reason))
        typer.echo("worker ready: store at head, Temporal answers", err=True)
        return
    _exec(dev_stack.worker_command())


@app.command()
def api() -> None:
    """Run the REST API (uvicorn) on FLEETPIPE_API_HOST:FLEETPIPE_API_PORT."""
    _exec(dev_stack.api_command())


def _exec(argv: list[str]) -> None:
    # Replace this process, so signals and the exit code are the server's own.
    sys.stdout.flush()
    os.execv(argv[0], argv)
