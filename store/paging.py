"""Pages of a list and their ordering: every ordering ends on a unique column, so pages
never skip or repeat a row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import case, func
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, select

from domain.statuses import STATUSES, RunKind

T = TypeVar("T")


class InvalidQuery(ValueError):
    """A filter or ordering the list does not support; names the parameter and allowed values."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Page(Generic[T]):
    count: int
    items: list[T]


def page(session: Session, stmt: Any, order_by: Sequence[Any], limit: int, offset: int,
         *, plain_rows: bool = False) -> Page:
    """One page and the total count. `plain_rows`: a select of table columns run on the
    connection, skipping the ORM's result machinery (Rows, not instances)."""
    count = session.exec(select(func.count()).select_from(stmt.order_by(None).subquery())).one()
    paged = stmt.order_by(*order_by).limit(limit).offset(offset)
    result: Any
    if plain_rows:
        result = session.connection().execute(paged)
    else:
        result = session.exec(paged)
    return Page(count=count, items=list(result.all()))


def status_rank(column: Any, kind: RunKind) -> ColumnElement[int]:
    """A status's position along its lifecycle, so `ordering=status` reads pending -> timeout."""
    return case({status: index for index, status in enumerate(STATUSES[kind])}, value=column,
                else_=len(STATUSES[kind]))


def ordering_values(columns: dict[str, Any]) -> tuple[str, ...]:
    """Every `ordering` value a list takes: each name, ascending and descending (`-name`)."""
    return tuple(value for name in columns for value in (name, f"-{name}"))


def ordering(
    value: str | None,
    columns: dict[str, Any],
    default: Sequence[Any],
    tiebreak: Any,
    then: Sequence[Any] = (),
) -> list[Any]:
    """ORDER BY terms for an `ordering` value (`field` or `-field`); NULLs always last. Ties
    fall back to `then` and finally the unique `tiebreak`, in the same direction."""
    if not value:
        return [*default, tiebreak]
    name = value.strip()
    descending = name.startswith("-")
    key = name.lstrip("-")
    if key not in columns:
        allowed = ", ".join(f"{n}, -{n}" for n in columns)
        raise InvalidQuery(
            "ordering", f"ordering {value!r} is not supported; allowed: {allowed}"
        )
    column = columns[key]
    term = column.desc() if descending else column.asc()
    # NULL started_at / ended_at (not yet started or ended) sort last in both directions.
    rest = [*then, tiebreak]
    return [term.nulls_last(), *(c.desc() if descending else c.asc() for c in rest)]
