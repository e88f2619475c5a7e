"""Tenancy, applied once: every row the API reaches belongs to one enterprise, either by its
own `enterprise_id` or through the row it belongs to (its `owner_key` column: a stage through
its pipeline, an operation through its list and that list's pipeline).

`scoped` selects only an enterprise's rows, joining up that chain; `owned` loads one row that
way. Another enterprise's row is exactly like a missing one (`NotFound`), so the API answers
404 and never tells them apart.
"""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import Table
from sqlmodel import Field, Session, select

T = TypeVar("T")
_OWNER = "owner"


class NotFound(LookupError):
    """No such object in the caller's enterprise (missing, or another enterprise's)."""

    def __init__(self, kind: str, object_id: UUID | str) -> None:
        super().__init__(f"{kind} {object_id} not found")
        self.kind = kind
        self.object_id = str(object_id)


def owner_key(foreign_key: str, **kwargs: Any) -> Any:
    """A foreign key to the row this one belongs to: the link `scoped` follows."""
    return Field(foreign_key=foreign_key, sa_column_kwargs={"info": {_OWNER: True}}, **kwargs)


def scoped(model: Any, enterprise_id: UUID, *columns: Any) -> Any:
    """`select(model)` (or of `columns` from it) limited to the enterprise's rows."""
    table: Table = model.__table__
    stmt = select(*columns).select_from(table) if columns else select(model)
    while "enterprise_id" not in table.c:
        link = next(column for column in table.c if column.info.get(_OWNER))
        parent = next(iter(link.foreign_keys)).column.table
        stmt = stmt.join(parent, parent.c.id == link)
        table = parent  # type: ignore[assignment]
    return stmt.where(table.c.enterprise_id == enterprise_id)


def owned(session: Session, model: type[T], object_id: UUID, enterprise_id: UUID, kind: str,
          **parents: UUID | None) -> T:
    """The row with this id if it is the enterprise's, and a child of each given parent
    (`pipeline_id=...`; None means any); otherwise NotFound(kind)."""
    stmt = scoped(model, enterprise_id).where(model.id == object_id)  # type: ignore[attr-defined]
    for column, value in parents.items():
        if value is not None:
            stmt = stmt.where(getattr(model, column) == value)
    row = session.exec(stmt).first()
    if row is None:
        raise NotFound(kind, object_id)
    return row
