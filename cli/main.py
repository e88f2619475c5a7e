"""The `fleetpipe` command."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from cli import dev_stack
from cli.dev import run_dev
from settings import get_settings
from store.db import make_engine
from store.definitions.tenants import create_token, ensure_enterprise
from store.schema import SchemaOutOfDate, create_schema

app = typer.Typer(help="fleetpipe: durable pipeline runs over device fleets.", no_args_is_help=True)
tokens = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(tokens, name="tokens")
db = typer.Typer(help="The SQL store.", no_args_is_help=True)
app.add_typer(db, name="db")


@app.command()
def dev(
    ui_port: Annotated[
        int | None, typer.Option(help="Temporal Web UI port [default: Temporal's port + 1000]")
    ] = None,
) -> None:
    """Run the embedded stack: Temporal dev server, worker, API, demo data. Ctrl-C stops it."""
    raise typer.Exit(run_dev(get_settings(), ui_port))


@tokens.command("create")
def tokens_create(
    enterprise: Annotated[str, typer.Option(help="Enterprise name (created if missing).")],
    name: Annotated[str, typer.Option(help="A label to recognise the token by.")] = "",
) -> None:
    """Create an API token and print its key (shown only this once)."""
    engine = make_engine(get_settings().resolved_database_url())
    try:
        create_schema(engine)
        key = create_token(engine, ensure_enterprise(engine, enterprise).id, name=name)
    except SchemaOutOfDate as exc:
        raise _refused(exc) from None
    finally:
        engine.dispose()
    typer.echo(key)


@db.command("init")
def db_init() -> None:
    """Create the store's tables if they are missing (safe to run again)."""
    engine = make_engine(get_settings().resolved_database_url())
    try:
        create_schema(engine)
    except SchemaOutOfDate as exc:
        raise _refused(exc) from None
    finally:
        engine.dispose()
    typer.echo("store schema ready", err=True)


def _refused(exc: Exception) -> typer.Exit:
    typer.secho(f"fleetpipe: {exc}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


@app.command()
def worker() -> None:
    """Run the worker (as `python worker.py`) against the configured Temporal server."""
    _exec(dev_stack.worker_command())


@app.command()
def api() -> None:
    """Run the REST API (uvicorn) on FLEETPIPE_API_HOST:FLEETPIPE_API_PORT."""
    _exec(dev_stack.api_command())


def _exec(argv: list[str]) -> None:
    # Replace this process, so signals and the exit code are the server's own.
    sys.stdout.flush()
    os.execv(argv[0], argv)
