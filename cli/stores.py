"""The store a server-side command (`tokens`, `db`) works on: named before anything happens
(password hidden), and never made by accident. The default store is an SQLite file under the
working directory's `.fleetpipe/`, so the same command run from another folder would otherwise
make a new empty database there (and its key would be refused by the API with 401)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from settings import get_settings
from store.db import make_engine, shown_url, sqlite_file
from store.migrations import StoreNotAtHead


class NoStore(RuntimeError):
    """The command would have made a new store where there is none."""


def open_store(*, may_create: bool, how_to_create: str | None = None) -> Engine:
    """The configured store, named on stderr. A missing SQLite file is refused (saying where
    its path came from, and `how_to_create` one if the command can) unless `may_create`."""
    settings = get_settings()
    url = settings.resolved_database_url()
    path = sqlite_file(url)
    missing = path is not None and not path.exists()
    verb = "making a new store at" if missing and may_create else "using the store at"
    typer.echo(f"{verb} {shown_url(url)}", err=True)
    if path is not None and missing and not may_create:
        or_create = f", or {how_to_create}" if how_to_create else ""
        raise NoStore(f"no store at {path}: the file does not exist. {_origin()} Run this from "
                      f"the folder the stack runs in, set FLEETPIPE_DATABASE_URL to its store"
                      f"{or_create}.")
    return make_engine(url)


def _origin() -> str:
    settings = get_settings()
    if settings.database_url:
        return "The path is FLEETPIPE_DATABASE_URL's."
    return (f"FLEETPIPE_DATABASE_URL is not set, so it is the default, fleetpipe.db under "
            f"FLEETPIPE_DATA_DIR ({settings.data_dir}) in the current folder ({Path.cwd()}).")


@contextmanager
def refusals(*also: type[Exception]) -> Iterator[None]:
    """What the store refused (and the `also` errors), as one red line and exit code 1."""
    known: tuple[type[Exception], ...] = (NoStore, StoreNotAtHead, *also)
    try:
        yield
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        _refuse(f"the store does not answer ({reason}); check FLEETPIPE_DATABASE_URL")
    except known as exc:
        _refuse(str(exc))


def _refuse(message: str) -> None:
    typer.secho(f"fleetpipe: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1) from None
