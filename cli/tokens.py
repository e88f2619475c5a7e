"""`fleetpipe tokens create|list|revoke`: the enterprise's API keys, straight in the store (a
server-side command: it needs the store's URL, not the API)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated
from uuid import UUID

import typer
from sqlalchemy.engine import Engine

from cli.stores import open_store, refusals
from store.audit import DONE, REFUSED, ActionEntry, Actor, record_action
from store.definitions.tenants import (
    UnknownToken,
    caller_for_hash,
    create_token,
    ensure_enterprise,
    find_enterprise,
    hash_key,
    list_tokens,
    revoke_token,
)
from store.migrations import EmptyStore, head_revision, require_head, upgrade
from store.types import utcnow

tokens = typer.Typer(help="API tokens (in the store: run where the stack's store is).",
                     no_args_is_help=True)


class Refused(RuntimeError):
    """What the command could not do, in one line for the operator."""


@contextmanager
def _store(*, create: bool = False, offers_create: bool = False) -> Iterator[Engine]:
    """The store at head; with `create`, a missing or empty one is made first."""
    hint = "pass --create to make a new one there" if offers_create else None
    engine = open_store(may_create=create, how_to_create=hint)
    try:
        try:
            require_head(engine)
        except EmptyStore as exc:
            if not create:
                raise Refused(f"{exc}{' Or pass --create.' if offers_create else ''}") from None
            upgrade(engine)
            typer.echo(f"made the store's tables (revision {head_revision()})", err=True)
        yield engine
    finally:
        engine.dispose()


@tokens.command("create")
def tokens_create(
    enterprise: Annotated[str, typer.Option(help="Enterprise name (created if missing).")],
    name: Annotated[str, typer.Option(help="A label to recognise the token by.")] = "",
    create: Annotated[bool, typer.Option(
        "--create", help="Make a new store if there is none (else that is refused).")] = False,
) -> None:
    """Create an API token and print its key (shown only this once)."""
    with refusals(UnknownToken, Refused), _store(create=create, offers_create=True) as engine:
        enterprise_id = ensure_enterprise(engine, enterprise).id
        key = create_token(engine, enterprise_id, name=name)
        made = caller_for_hash(engine, hash_key(key))
        record_action(engine, ActionEntry(
            enterprise_id=enterprise_id, action="token_create", actor=Actor(),
            subject="api_token", subject_id=made.key_id if made else None,
            request={"enterprise": enterprise, "name": name}, at=utcnow()), outcome=DONE)
    typer.echo(key)


@tokens.command("list")
def tokens_list(
    enterprise: Annotated[str, typer.Option(help="Enterprise name.")],
) -> None:
    """The enterprise's tokens: id, name, when created and revoked (the keys are not kept)."""
    with refusals(UnknownToken, Refused), _store() as engine:
        found = find_enterprise(engine, enterprise)
        if found is None:
            raise Refused(f"no enterprise named {enterprise!r} in this store "
                          f"(`fleetpipe tokens create --enterprise {enterprise}` makes it)")
        listed = list_tokens(engine, found.id)
    if not listed:
        typer.echo(f"enterprise {enterprise!r} has no API tokens", err=True)
        return
    rows = [("ID", "NAME", "CREATED", "REVOKED")] + [
        (str(t.id), t.name or "-", _when(t.created_at), _when(t.revoked_at) or "-")
        for t in listed]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
                   + "  " + row[3])


@tokens.command("revoke")
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id (`tokens list`).")],
) -> None:
    """Revoke a token: every API process refuses its key from its next request."""
    with refusals(UnknownToken, Refused):
        try:
            parsed = UUID(token_id)
        except ValueError:
            raise Refused(f"{token_id!r} is not a token id: `fleetpipe tokens list "
                          "--enterprise NAME` shows them") from None
        with _store() as engine:
            token, revoked_now = revoke_token(engine, parsed)
            record_action(engine, ActionEntry(
                enterprise_id=token.enterprise_id, action="token_revoke", actor=Actor(),
                subject="api_token", subject_id=token.id, request={"token_id": token_id},
                at=utcnow()), outcome=DONE if revoked_now else REFUSED)
    label = f"token {token.id}" + (f" ({token.name})" if token.name else "")
    if revoked_now:
        typer.echo(f"revoked {label}: the API refuses its key from now on")
    else:
        typer.echo(f"{label} was already revoked at {_when(token.revoked_at)}")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""

