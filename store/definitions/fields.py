"""What every definition's writes share: the error for a bad value, field limits, and stamping
a changed row."""

from __future__ import annotations

from typing import Any

from sqlmodel import AutoString, Field

from domain.bounds import INT32_MAX
from store.types import utcnow

NAME_MAX = 255
DESCRIPTION_MAX = 10_000


class InvalidDefinition(ValueError):
    """A value the definition cannot take; `field` names it (dotted for nested input)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def name_field(**kwargs: Any) -> Any:
    """A required name (1 to 255 characters); the column stays an unbounded string."""
    return Field(min_length=1, max_length=NAME_MAX, sa_type=AutoString, **kwargs)


def text_field(max_length: int, **kwargs: Any) -> Any:
    return Field(default="", max_length=max_length, sa_type=AutoString, **kwargs)


def next_position(last: int | None, first: int, what: str) -> int:
    """The position after the last one (`first` when there is none), or InvalidDefinition on
    `order` once the last one is the column's largest."""
    if last is None:
        return first
    if last >= INT32_MAX:
        raise InvalidDefinition("order", f"order: the last {what} is at {last}, the largest "
                                f"order there is; give this one an order")
    return last + 1


def lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def touch(*rows: Any) -> None:
    now = utcnow()
    for row in rows:
        row.updated_at = now


def apply_changes(row: Any, changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        setattr(row, key, value)
    touch(row)
