"""What the families of every entity share: timestamps, and the public shapes read from rows.

A family is `XBase` (the fields the shapes share, declared once) -> `XCreate` / `XUpdate` (the
API's input) / `X` (the table) / `XPublic` (what the API shows). A public shape lists its keys
first (`class XPublic(XBase, XKeys)`: the later base's fields come first), so the JSON keeps
the order the API always had.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ConfigDict, JsonValue
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from store.types import UTCDateTime, utcnow


class Public(SQLModel):
    # Read from rows; every field is always written, so the response schema requires each one
    # (a default shared with the table does not make it optional in the API's answers).
    model_config = ConfigDict(  # type: ignore[assignment]
        from_attributes=True, json_schema_serialization_defaults_required=True)


def one_of(values: Sequence[str], description: str = "", *, optional: bool = False,
           **kwargs: Any) -> Any:
    """A text field whose allowed values the OpenAPI lists (an enum; with `optional`, null too
    and by default), while the column and the validation stay plain text: inputs are accepted
    in any case and normalised, and a value outside the list is a 400 naming the allowed ones."""
    enum: list[JsonValue] = list(values)
    if optional:
        enum.append(None)
        kwargs.setdefault("default", None)
    return PydanticField(description=description or None, json_schema_extra={"enum": enum},
                         **kwargs)


def stamp(optional: bool = False) -> Any:
    """A UTC timestamp column: now by default, or empty until set."""
    if optional:
        return Field(default=None, sa_type=UTCDateTime)
    return Field(default_factory=utcnow, sa_type=UTCDateTime)
